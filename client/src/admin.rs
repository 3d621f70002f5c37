//! Administration calls (what mqadmin and the `ringmq` CLI use): topics (create/update on every
//! broker of a cluster, delete, list, route), clusters, broker runtime info, consume progress,
//! consumer connections, offset reset, message view by id, and per-queue offsets
//! (protocol.md §2.10, §2.11, §2.14, §2.15).
//!
//! ```no_run
//! # async fn demo() -> Result<(), ringmq_client::ClientError> {
//! use ringmq_client::admin::{Admin, TopicSpec};
//!
//! let admin = Admin::connect("127.0.0.1:9876");
//! admin.create_topic("DefaultCluster", &TopicSpec::new("Orders", 8)).await?;
//! for topic in admin.topic_list().await? {
//!     println!("{topic}");
//! }
//! admin.shutdown().await;
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;

use ringmq_protocol::body::{
    ClusterInfo, ConsumeStats, ConsumerConnection, JsonBody, KvTable, MessageQueue,
    TopicFilterType, TopicRouteData,
};
use ringmq_protocol::codes::{request_code, response_code};
use ringmq_protocol::command::{ExtFields, RemotingCommand};
use ringmq_protocol::ext::CommandHeader;
use ringmq_protocol::headers::{
    ConsumerGroupRequestHeader, CreateTopicRequestHeader, DeleteTopicRequestHeader,
    GetConsumeStatsRequestHeader,
};

use crate::api;
use crate::consumer::retry_topic;
use crate::core::{ClientConfig, ClientCore};
use crate::error::{ClientError, Result};
use crate::message::MessageExt;

/// A topic to create or update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    /// Topic name.
    pub topic: String,
    /// Readable queues per broker.
    pub read_queue_nums: i32,
    /// Writable queues per broker.
    pub write_queue_nums: i32,
    /// Permission bits (6 = read + write).
    pub perm: i32,
    /// Ordered topic.
    pub order: bool,
}

impl TopicSpec {
    /// `queues` read and write queues, perm 6, not ordered.
    pub fn new(topic: impl Into<String>, queues: i32) -> Self {
        TopicSpec {
            topic: topic.into(),
            read_queue_nums: queues,
            write_queue_nums: queues,
            perm: 6,
            order: false,
        }
    }
}

/// Where to reset a group's offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetTarget {
    /// An exact offset (clamped to each queue's [min, max]).
    Offset(i64),
    /// The first offset stored at or after this time (ms since the epoch).
    Timestamp(i64),
}

/// One queue's consume progress, merged over brokers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueProgress {
    /// Queue.
    pub queue: MessageQueue,
    /// Max offset of the queue.
    pub broker_offset: i64,
    /// Committed offset of the group.
    pub consumer_offset: i64,
    /// Store time of the last consumed message (ms), 0 if none.
    pub last_timestamp: i64,
}

impl QueueProgress {
    /// Messages not yet consumed.
    pub fn lag(&self) -> i64 {
        self.broker_offset
            .saturating_sub(self.consumer_offset)
            .max(0)
    }
}

/// Administration client.
#[derive(Debug, Clone)]
pub struct Admin {
    core: Arc<ClientCore>,
}

impl Admin {
    /// An admin client for `namesrv` (`"host:port[;host:port]"`); connects on first use.
    pub fn connect(namesrv: &str) -> Self {
        Self::with_config(ClientConfig::new(namesrv))
    }

    /// An admin client with full settings.
    pub fn with_config(config: ClientConfig) -> Self {
        Admin {
            core: ClientCore::new(config),
        }
    }

    /// The shared client core.
    pub fn core(&self) -> &Arc<ClientCore> {
        &self.core
    }

    async fn call(&self, addr: &str, request: RemotingCommand) -> Result<RemotingCommand> {
        self.core
            .remoting
            .invoke_ok(addr, request, self.core.config.rpc_timeout)
            .await
    }

    /// GET_BROKER_CLUSTER_INFO.
    pub async fn cluster_info(&self) -> Result<ClusterInfo> {
        self.core.routes.namesrv().cluster_info().await
    }

    /// Master addresses of every broker of `cluster`.
    pub async fn cluster_masters(&self, cluster: &str) -> Result<Vec<(String, String)>> {
        let info = self.cluster_info().await?;
        let names = info.cluster_addr_table.get(cluster).ok_or_else(|| {
            ClientError::InvalidArgument(format!(
                "cluster {cluster} is not known to the name server"
            ))
        })?;
        let mut out = Vec::new();
        for name in names {
            if let Some(addr) = info
                .broker_addr_table
                .get(name)
                .and_then(|b| b.master_addr())
            {
                out.push((name.clone(), addr.to_owned()));
            }
        }
        Ok(out)
    }

    /// UPDATE_AND_CREATE_TOPIC on one broker.
    pub async fn create_topic_on_broker(&self, addr: &str, spec: &TopicSpec) -> Result<()> {
        let header = CreateTopicRequestHeader {
            topic: spec.topic.clone(),
            default_topic: "TBW102".to_owned(),
            read_queue_nums: spec.read_queue_nums,
            write_queue_nums: spec.write_queue_nums,
            perm: spec.perm,
            topic_filter_type: TopicFilterType::SingleTag,
            topic_sys_flag: Some(0),
            order: spec.order,
            attributes: None,
            force: false,
        };
        let request =
            RemotingCommand::request(request_code::UPDATE_AND_CREATE_TOPIC, header.to_ext());
        self.call(addr, request).await.map(|_| ())
    }

    /// Creates or updates `spec` on the master of every broker of `cluster`. Returns the
    /// broker names it was created on.
    pub async fn create_topic(&self, cluster: &str, spec: &TopicSpec) -> Result<Vec<String>> {
        let masters = self.cluster_masters(cluster).await?;
        if masters.is_empty() {
            return Err(ClientError::InvalidArgument(format!(
                "cluster {cluster} has no master"
            )));
        }
        let mut done = Vec::new();
        for (name, addr) in masters {
            self.create_topic_on_broker(&addr, spec).await?;
            done.push(name);
        }
        Ok(done)
    }

    /// Deletes `topic` from every master of `cluster` (DELETE_TOPIC_IN_BROKER), then from every
    /// name server (DELETE_TOPIC_IN_NAMESRV).
    pub async fn delete_topic(&self, cluster: &str, topic: &str) -> Result<()> {
        for (_, addr) in self.cluster_masters(cluster).await? {
            let header = DeleteTopicRequestHeader {
                topic: topic.to_owned(),
                cluster_name: None,
            };
            let request =
                RemotingCommand::request(request_code::DELETE_TOPIC_IN_BROKER, header.to_ext());
            self.call(&addr, request).await?;
        }
        let header = DeleteTopicRequestHeader {
            topic: topic.to_owned(),
            cluster_name: Some(cluster.to_owned()),
        };
        let request =
            RemotingCommand::request(request_code::DELETE_TOPIC_IN_NAMESRV, header.to_ext());
        match self.core.routes.namesrv().invoke_all_ok(request).await {
            // A name server without the command still drops the route once the brokers
            // re-register without the topic.
            Err(ClientError::Broker { code, .. })
                if code == response_code::REQUEST_CODE_NOT_SUPPORTED =>
            {
                Ok(())
            }
            other => other,
        }
    }

    /// GET_ALL_TOPIC_LIST_FROM_NAMESERVER.
    pub async fn topic_list(&self) -> Result<Vec<String>> {
        self.core.routes.namesrv().topic_list().await
    }

    /// GET_ROUTEINFO_BY_TOPIC; [`ClientError::NoRoute`] when unknown.
    pub async fn topic_route(&self, topic: &str) -> Result<TopicRouteData> {
        match self.core.routes.namesrv().route(topic).await? {
            Some(route) => Ok(route),
            None => Err(ClientError::NoRoute {
                topic: topic.to_owned(),
            }),
        }
    }

    /// GET_BROKER_RUNTIME_INFO of the broker at `addr`.
    pub async fn broker_runtime_info(&self, addr: &str) -> Result<BTreeMap<String, String>> {
        let request =
            RemotingCommand::request(request_code::GET_BROKER_RUNTIME_INFO, ExtFields::new());
        let response = self.call(addr, request).await?;
        Ok(KvTable::decode(&response.body)?.table)
    }

    /// GET_CONSUME_STATS from one broker.
    pub async fn consume_stats_on_broker(
        &self,
        addr: &str,
        group: &str,
        topic: Option<&str>,
    ) -> Result<ConsumeStats> {
        let header = GetConsumeStatsRequestHeader {
            consumer_group: group.to_owned(),
            topic: topic.map(str::to_owned),
            topic_list: None,
        };
        let request = RemotingCommand::request(request_code::GET_CONSUME_STATS, header.to_ext());
        let response = self.call(addr, request).await?;
        Ok(ConsumeStats::decode(&response.body)?)
    }

    /// Master addresses of the brokers serving `topic`.
    async fn topic_masters(&self, topic: &str) -> Result<Vec<String>> {
        let route = self.topic_route(topic).await?;
        let mut addrs: Vec<String> = route
            .broker_datas
            .iter()
            .filter_map(|b| b.master_addr().map(str::to_owned))
            .collect();
        addrs.sort();
        addrs.dedup();
        Ok(addrs)
    }

    /// The group's progress on every queue, merged over the brokers of `%RETRY%group` (or of
    /// `topic` when given or when the retry topic has no route), sorted by lag, largest first.
    pub async fn consume_progress(
        &self,
        group: &str,
        topic: Option<&str>,
    ) -> Result<Vec<QueueProgress>> {
        let lookup = match topic {
            Some(t) => t.to_owned(),
            None => retry_topic(group),
        };
        let addrs = match self.topic_masters(&lookup).await {
            Ok(addrs) => addrs,
            Err(ClientError::NoRoute { .. }) if topic.is_none() => {
                return Err(ClientError::InvalidArgument(format!(
                    "group {group} has no retry topic route; name a topic"
                )))
            }
            Err(e) => return Err(e),
        };
        let mut out = Vec::new();
        for addr in addrs {
            let stats = self.consume_stats_on_broker(&addr, group, topic).await?;
            out.extend(
                stats
                    .offset_table
                    .into_iter()
                    .map(|(queue, w)| QueueProgress {
                        queue,
                        broker_offset: w.broker_offset,
                        consumer_offset: w.consumer_offset,
                        last_timestamp: w.last_timestamp,
                    }),
            );
        }
        out.sort_by(|a, b| b.lag().cmp(&a.lag()).then_with(|| a.queue.cmp(&b.queue)));
        Ok(out)
    }

    /// GET_CONSUMER_CONNECTION_LIST from a broker of `%RETRY%group` (or of `topic`).
    pub async fn consumer_connection(
        &self,
        group: &str,
        topic: Option<&str>,
    ) -> Result<ConsumerConnection> {
        let lookup = topic.map_or_else(|| retry_topic(group), str::to_owned);
        let addrs = self.topic_masters(&lookup).await?;
        let header = ConsumerGroupRequestHeader {
            consumer_group: group.to_owned(),
        };
        let mut last_error = None;
        for addr in addrs {
            let request = RemotingCommand::request(
                request_code::GET_CONSUMER_CONNECTION_LIST,
                header.to_ext(),
            );
            match self.call(&addr, request).await {
                Ok(response) => return Ok(ConsumerConnection::decode(&response.body)?),
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or(ClientError::NoRoute { topic: lookup }))
    }

    /// Resets `group`'s committed offsets on `topic` (every readable queue, or only queue id
    /// `queue_id` on each broker) with UPDATE_CONSUMER_OFFSET. Returns the offsets set.
    /// Running consumers keep their in-memory offsets: stop them first.
    pub async fn reset_offset(
        &self,
        group: &str,
        topic: &str,
        target: ResetTarget,
        queue_id: Option<i32>,
    ) -> Result<Vec<(MessageQueue, i64)>> {
        let route = self.core.routes.fetch(topic).await?;
        let mut out = Vec::new();
        for mq in route
            .subscribe
            .iter()
            .filter(|q| queue_id.is_none_or(|id| q.queue_id == id))
        {
            let offset = match target {
                ResetTarget::Offset(o) => {
                    let min = api::min_offset(&self.core, mq).await?;
                    let max = api::max_offset(&self.core, mq).await?;
                    o.clamp(min, max.max(min))
                }
                ResetTarget::Timestamp(ts) => api::search_offset(&self.core, mq, ts).await?,
            };
            api::update_consumer_offset(&self.core, group, mq, offset, false).await?;
            out.push((mq.clone(), offset));
        }
        if out.is_empty() {
            return Err(ClientError::NoQueue {
                topic: topic.to_owned(),
                what: "readable",
            });
        }
        Ok(out)
    }

    /// VIEW_MESSAGE_BY_ID for an offset msgId (the `offset_msg_id` of a send result).
    pub async fn view_message(&self, offset_msg_id: &str) -> Result<MessageExt> {
        api::view_message(&self.core, offset_msg_id).await
    }

    /// GET_MAX_OFFSET of a queue.
    pub async fn max_offset(&self, mq: &MessageQueue) -> Result<i64> {
        api::max_offset(&self.core, mq).await
    }

    /// GET_MIN_OFFSET of a queue.
    pub async fn min_offset(&self, mq: &MessageQueue) -> Result<i64> {
        api::min_offset(&self.core, mq).await
    }

    /// SEARCH_OFFSET_BY_TIMESTAMP of a queue.
    pub async fn search_offset(&self, mq: &MessageQueue, timestamp_ms: i64) -> Result<i64> {
        api::search_offset(&self.core, mq, timestamp_ms).await
    }

    /// QUERY_CONSUMER_OFFSET of a group on a queue (`None` if it has none).
    pub async fn consumer_offset(&self, group: &str, mq: &MessageQueue) -> Result<Option<i64>> {
        api::query_consumer_offset(&self.core, group, mq).await
    }

    /// The readable queues of `topic`.
    pub async fn topic_queues(&self, topic: &str) -> Result<Vec<MessageQueue>> {
        Ok(self.core.routes.fetch(topic).await?.subscribe.clone())
    }

    /// Closes connections.
    pub async fn shutdown(&self) {
        self.core.shutdown().await;
    }
}

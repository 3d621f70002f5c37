//! Topic routes: the name-server client (GET_ROUTEINFO_BY_TOPIC with failover across the
//! address list, cluster info, topic list), the route cache every client type shares, and the
//! pure rules that turn a route into queue lists (protocol.md §2.14 "How clients use the
//! route") and pick a broker address for a pull (§9.2).
//!
//! Invariant: a cached [`TopicRoute`] is immutable; a refresh replaces the whole `Arc`, so a
//! reader never sees a half-updated route.

use std::cmp::Ordering as CmpOrdering;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use ringmq_protocol::body::{
    BrokerData, ClusterInfo, JsonBody, MessageQueue, TopicList, TopicRouteData, MASTER_ID,
};
use ringmq_protocol::codes::{request_code, response_code};
use ringmq_protocol::command::{ExtFields, RemotingCommand};
use ringmq_protocol::ext::CommandHeader;
use ringmq_protocol::headers::GetRouteInfoRequestHeader;

use crate::error::{ClientError, Result};
use crate::remoting::{broker_error, RemotingClient};

/// Permission bit: queues may be read.
pub const PERM_READ: i32 = 4;
/// Permission bit: queues may be written.
pub const PERM_WRITE: i32 = 2;
/// Permission bit: new topics may inherit from this one (TBW102).
pub const PERM_INHERIT: i32 = 1;

/// Java `String.compareTo`: UTF-16 code unit order (differs from Rust's UTF-8 byte order only
/// for characters beyond the BMP against U+E000..U+FFFF, but rebalance must agree with Java
/// clients in the same group to the letter).
pub fn java_str_cmp(a: &str, b: &str) -> CmpOrdering {
    a.encode_utf16().cmp(b.encode_utf16())
}

/// Java `MessageQueue.compareTo`: topic, then broker name, then queue id.
pub fn java_queue_cmp(a: &MessageQueue, b: &MessageQueue) -> CmpOrdering {
    java_str_cmp(&a.topic, &b.topic)
        .then_with(|| java_str_cmp(&a.broker_name, &b.broker_name))
        .then_with(|| a.queue_id.cmp(&b.queue_id))
}

/// The queues a producer may send to: QueueDatas sorted by broker name, keeping those with
/// PERM_WRITE whose broker has a master, `writeQueueNums` queues each. An `orderTopicConf`
/// (`"brokerName:nums;…"`) takes precedence, as in Java.
pub fn publish_queues(topic: &str, route: &TopicRouteData) -> Vec<MessageQueue> {
    if let Some(conf) = route.order_topic_conf.as_deref().filter(|c| !c.is_empty()) {
        let mut queues = Vec::new();
        for item in conf.split(';') {
            let Some((broker, nums)) = item.split_once(':') else {
                continue;
            };
            let Ok(nums) = nums.trim().parse::<i32>() else {
                continue;
            };
            queues.extend((0..nums).map(|q| MessageQueue::new(topic, broker.trim(), q)));
        }
        return queues;
    }
    let mut datas: Vec<_> = route.queue_datas.iter().collect();
    datas.sort_by(|a, b| java_str_cmp(&a.broker_name, &b.broker_name));
    let mut queues = Vec::new();
    for qd in datas {
        if qd.perm & PERM_WRITE == 0 {
            continue;
        }
        let has_master = route
            .broker_datas
            .iter()
            .any(|bd| bd.broker_name == qd.broker_name && bd.master_addr().is_some());
        if !has_master {
            continue;
        }
        queues
            .extend((0..qd.write_queue_nums).map(|q| MessageQueue::new(topic, &qd.broker_name, q)));
    }
    queues
}

/// The queues a consumer may read: every QueueData with PERM_READ, `readQueueNums` queues
/// each, sorted like Java's `MessageQueue` (the order rebalance needs).
pub fn subscribe_queues(topic: &str, route: &TopicRouteData) -> Vec<MessageQueue> {
    let mut queues: Vec<MessageQueue> = route
        .queue_datas
        .iter()
        .filter(|qd| qd.perm & PERM_READ != 0)
        .flat_map(|qd| {
            (0..qd.read_queue_nums).map(|q| MessageQueue::new(topic, &qd.broker_name, q))
        })
        .collect();
    queues.sort_by(java_queue_cmp);
    queues
}

/// The address to pull from for broker id `broker_id` (protocol.md §9.2): that id's address;
/// else, for a slave id, id + 1; else any address of the broker (so pulls fail over).
pub fn find_broker_addr_in_subscribe(
    addrs: &BTreeMap<i64, String>,
    broker_id: i64,
) -> Option<(i64, &str)> {
    if let Some(addr) = addrs.get(&broker_id) {
        return Some((broker_id, addr));
    }
    if broker_id != MASTER_ID {
        if let Some(addr) = broker_id.checked_add(1).and_then(|id| addrs.get(&id)) {
            return Some((broker_id + 1, addr));
        }
    }
    addrs.iter().next().map(|(id, a)| (*id, a.as_str()))
}

/// One topic's route with its derived queue lists.
#[derive(Debug, Clone)]
pub struct TopicRoute {
    /// The topic.
    pub topic: String,
    /// The route as the name server sent it.
    pub data: TopicRouteData,
    /// Queues to send to ([`publish_queues`]).
    pub publish: Vec<MessageQueue>,
    /// Queues to read ([`subscribe_queues`]).
    pub subscribe: Vec<MessageQueue>,
}

impl TopicRoute {
    /// Derives the queue lists of `data`.
    pub fn new(topic: &str, data: TopicRouteData) -> Self {
        TopicRoute {
            topic: topic.to_owned(),
            publish: publish_queues(topic, &data),
            subscribe: subscribe_queues(topic, &data),
            data,
        }
    }

    /// The route of the auto-create template (TBW102) adapted to `topic`: each QueueData's
    /// read and write counts clamped to `min(queue_nums, readQueueNums)` (§2.14).
    pub fn from_default_topic(topic: &str, mut template: TopicRouteData, queue_nums: i32) -> Self {
        for qd in &mut template.queue_datas {
            let nums = queue_nums.min(qd.read_queue_nums);
            qd.read_queue_nums = nums;
            qd.write_queue_nums = nums;
        }
        TopicRoute::new(topic, template)
    }

    /// The broker data of `broker_name`.
    pub fn broker(&self, broker_name: &str) -> Option<&BrokerData> {
        self.data
            .broker_datas
            .iter()
            .find(|bd| bd.broker_name == broker_name)
    }

    /// The master address of `broker_name`.
    pub fn master_addr(&self, broker_name: &str) -> Option<&str> {
        self.broker(broker_name).and_then(BrokerData::master_addr)
    }

    /// Every broker address of the route, masters and slaves.
    pub fn all_addrs(&self) -> impl Iterator<Item = &str> {
        self.data
            .broker_datas
            .iter()
            .flat_map(|bd| bd.broker_addrs.values().map(String::as_str))
    }
}

/// Talks to the name servers, trying each address in turn (starting from the last one that
/// answered) until one answers.
#[derive(Debug)]
pub struct NameServerClient {
    addrs: Vec<String>,
    remoting: Arc<RemotingClient>,
    timeout: Duration,
    preferred: AtomicUsize,
}

impl NameServerClient {
    /// A client for `addrs` (`host:port` each) over `remoting`.
    pub fn new(addrs: Vec<String>, remoting: Arc<RemotingClient>, timeout: Duration) -> Self {
        NameServerClient {
            addrs,
            remoting,
            timeout,
            preferred: AtomicUsize::new(0),
        }
    }

    /// The configured addresses.
    pub fn addrs(&self) -> &[String] {
        &self.addrs
    }

    /// Sends `request` to the first name server that answers (any code); transport failures
    /// move on to the next address.
    pub async fn invoke(&self, request: RemotingCommand) -> Result<(String, RemotingCommand)> {
        if self.addrs.is_empty() {
            return Err(ClientError::InvalidArgument(
                "no name server address configured".to_owned(),
            ));
        }
        let start = self.preferred.load(Ordering::Relaxed);
        let mut last_error = None;
        for i in 0..self.addrs.len() {
            let index = (start + i) % self.addrs.len();
            let Some(addr) = self.addrs.get(index) else {
                continue;
            };
            match self
                .remoting
                .invoke(addr, request.clone(), self.timeout)
                .await
            {
                Ok(response) => {
                    self.preferred.store(index, Ordering::Relaxed);
                    return Ok((addr.clone(), response));
                }
                Err(e) => {
                    tracing::debug!(%addr, error = %e, "name server failed; trying the next");
                    last_error = Some(e);
                }
            }
        }
        Err(last_error.unwrap_or(ClientError::State("without name servers")))
    }

    /// Sends `request` to every name server; returns the first failure, if any.
    pub async fn invoke_all_ok(&self, request: RemotingCommand) -> Result<()> {
        let mut first_error = None;
        for addr in &self.addrs {
            let result = self
                .remoting
                .invoke_ok(addr, request.clone(), self.timeout)
                .await;
            if let Err(e) = result {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// GET_ROUTEINFO_BY_TOPIC. `Ok(None)` when the name servers know no route (TOPIC_NOT_EXIST).
    pub async fn route(&self, topic: &str) -> Result<Option<TopicRouteData>> {
        let header = GetRouteInfoRequestHeader {
            topic: topic.to_owned(),
            accept_standard_json_only: None,
        };
        let request =
            RemotingCommand::request(request_code::GET_ROUTEINFO_BY_TOPIC, header.to_ext());
        let (addr, response) = self.invoke(request).await?;
        match response.code {
            response_code::SUCCESS => Ok(Some(TopicRouteData::decode(&response.body)?)),
            response_code::TOPIC_NOT_EXIST => Ok(None),
            _ => Err(broker_error(&addr, &response)),
        }
    }

    /// GET_BROKER_CLUSTER_INFO.
    pub async fn cluster_info(&self) -> Result<ClusterInfo> {
        let request =
            RemotingCommand::request(request_code::GET_BROKER_CLUSTER_INFO, ExtFields::new());
        let (addr, response) = self.invoke(request).await?;
        let response = crate::remoting::check_success(&addr, response)?;
        Ok(ClusterInfo::decode(&response.body)?)
    }

    /// GET_ALL_TOPIC_LIST_FROM_NAMESERVER.
    pub async fn topic_list(&self) -> Result<Vec<String>> {
        let request = RemotingCommand::request(
            request_code::GET_ALL_TOPIC_LIST_FROM_NAMESERVER,
            ExtFields::new(),
        );
        let (addr, response) = self.invoke(request).await?;
        let response = crate::remoting::check_success(&addr, response)?;
        Ok(TopicList::decode(&response.body)?.topic_list)
    }
}

/// The routes a client uses, refreshed by [`RouteCache::refresh_all`] (every 30 s from the
/// client's timer).
#[derive(Debug)]
pub struct RouteCache {
    namesrv: Arc<NameServerClient>,
    routes: RwLock<HashMap<String, Arc<TopicRoute>>>,
}

impl RouteCache {
    /// An empty cache over `namesrv`.
    pub fn new(namesrv: Arc<NameServerClient>) -> Self {
        RouteCache {
            namesrv,
            routes: RwLock::new(HashMap::new()),
        }
    }

    /// The name-server client.
    pub fn namesrv(&self) -> &Arc<NameServerClient> {
        &self.namesrv
    }

    /// The cached route, if any.
    pub fn cached(&self, topic: &str) -> Option<Arc<TopicRoute>> {
        self.routes.read().ok()?.get(topic).cloned()
    }

    fn store(&self, route: TopicRoute) -> Arc<TopicRoute> {
        let route = Arc::new(route);
        if let Ok(mut routes) = self.routes.write() {
            routes.insert(route.topic.clone(), Arc::clone(&route));
        }
        route
    }

    /// The route of `topic`: cached, else fetched. [`ClientError::NoRoute`] if the name
    /// servers have none.
    pub async fn get(&self, topic: &str) -> Result<Arc<TopicRoute>> {
        if let Some(route) = self.cached(topic) {
            return Ok(route);
        }
        self.fetch(topic).await
    }

    /// Fetches and caches the route of `topic` now.
    pub async fn fetch(&self, topic: &str) -> Result<Arc<TopicRoute>> {
        match self.namesrv.route(topic).await? {
            Some(data) => Ok(self.store(TopicRoute::new(topic, data))),
            None => Err(ClientError::NoRoute {
                topic: topic.to_owned(),
            }),
        }
    }

    /// The route of `topic`, or, when the topic has none, the route of `default_topic`
    /// adapted for auto-creation (§2.14). The bool is true for the auto-create case.
    pub async fn get_for_publish(
        &self,
        topic: &str,
        default_topic: &str,
        queue_nums: i32,
    ) -> Result<(Arc<TopicRoute>, bool)> {
        if let Some(route) = self.cached(topic) {
            if !route.publish.is_empty() {
                return Ok((route, false));
            }
        }
        match self.fetch(topic).await {
            Ok(route) => Ok((route, false)),
            Err(ClientError::NoRoute { .. }) => {
                let Some(template) = self.namesrv.route(default_topic).await? else {
                    return Err(ClientError::NoRoute {
                        topic: topic.to_owned(),
                    });
                };
                let route = TopicRoute::from_default_topic(topic, template, queue_nums);
                if route.publish.is_empty() {
                    return Err(ClientError::NoRoute {
                        topic: topic.to_owned(),
                    });
                }
                // Not cached: the next send asks the name server again and finds the real
                // route once the broker has registered the created topic.
                Ok((Arc::new(route), true))
            }
            Err(e) => Err(e),
        }
    }

    /// Refetches every cached route; a topic whose fetch fails keeps its old route.
    pub async fn refresh_all(&self) {
        let topics: Vec<String> = match self.routes.read() {
            Ok(routes) => routes.keys().cloned().collect(),
            Err(_) => return,
        };
        for topic in topics {
            if let Err(e) = self.fetch(&topic).await {
                tracing::debug!(%topic, error = %e, "route refresh failed; keeping the old route");
            }
        }
    }

    /// Every broker address (masters and slaves) of every cached route.
    pub fn all_broker_addrs(&self, masters_only: bool) -> Vec<String> {
        let Ok(routes) = self.routes.read() else {
            return Vec::new();
        };
        let mut addrs: Vec<String> = routes
            .values()
            .flat_map(|r| r.data.broker_datas.iter())
            .flat_map(|bd| {
                bd.broker_addrs
                    .iter()
                    .filter(move |(id, _)| !masters_only || **id == MASTER_ID)
                    .map(|(_, a)| a.clone())
            })
            .collect();
        addrs.sort();
        addrs.dedup();
        addrs
    }

    /// The addresses of `broker_name` from any cached route.
    pub fn broker_addrs(&self, broker_name: &str) -> Option<BTreeMap<i64, String>> {
        let routes = self.routes.read().ok()?;
        routes
            .values()
            .flat_map(|r| r.data.broker_datas.iter())
            .find(|bd| bd.broker_name == broker_name)
            .map(|bd| bd.broker_addrs.clone())
    }

    /// The master address of `broker_name` from any cached route.
    pub fn master_addr(&self, broker_name: &str) -> Option<String> {
        self.broker_addrs(broker_name)
            .and_then(|addrs| addrs.get(&MASTER_ID).cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringmq_protocol::body::QueueData;

    fn broker(name: &str, addrs: &[(i64, &str)]) -> BrokerData {
        BrokerData {
            cluster: "DefaultCluster".into(),
            broker_name: name.into(),
            broker_addrs: addrs.iter().map(|(i, a)| (*i, (*a).to_owned())).collect(),
            ..Default::default()
        }
    }

    fn queue_data(name: &str, read: i32, write: i32, perm: i32) -> QueueData {
        QueueData {
            broker_name: name.into(),
            read_queue_nums: read,
            write_queue_nums: write,
            perm,
            topic_sys_flag: 0,
        }
    }

    fn route() -> TopicRouteData {
        TopicRouteData {
            queue_datas: vec![
                queue_data("broker-b", 2, 3, 6),
                queue_data("broker-a", 4, 2, 6),
                queue_data("broker-c", 2, 2, 6),
            ],
            broker_datas: vec![
                broker("broker-a", &[(0, "10.0.0.1:10911"), (1, "10.0.0.2:10911")]),
                broker("broker-b", &[(0, "10.0.0.3:10911")]),
                broker("broker-c", &[(1, "10.0.0.5:10911")]),
            ],
            ..Default::default()
        }
    }

    #[test]
    fn publish_queues_are_sorted_by_broker_and_skip_brokers_without_master() {
        let queues = publish_queues("T", &route());
        let names: Vec<(String, i32)> = queues
            .iter()
            .map(|q| (q.broker_name.clone(), q.queue_id))
            .collect();
        assert_eq!(
            names,
            vec![
                ("broker-a".to_owned(), 0),
                ("broker-a".to_owned(), 1),
                ("broker-b".to_owned(), 0),
                ("broker-b".to_owned(), 1),
                ("broker-b".to_owned(), 2),
            ]
        );
    }

    #[test]
    fn publish_queues_skip_queue_datas_without_write_permission() {
        let mut r = route();
        r.queue_datas[0].perm = PERM_READ;
        assert!(publish_queues("T", &r)
            .iter()
            .all(|q| q.broker_name != "broker-b"));
    }

    #[test]
    fn subscribe_queues_use_read_counts_of_readable_queue_datas_including_slave_only_brokers() {
        let mut r = route();
        r.queue_datas[1].perm = PERM_WRITE;
        let queues = subscribe_queues("T", &r);
        let expected: Vec<MessageQueue> = vec![
            MessageQueue::new("T", "broker-b", 0),
            MessageQueue::new("T", "broker-b", 1),
            MessageQueue::new("T", "broker-c", 0),
            MessageQueue::new("T", "broker-c", 1),
        ];
        assert_eq!(queues, expected);
    }

    #[test]
    fn order_topic_conf_defines_the_publish_queues() {
        let mut r = route();
        r.order_topic_conf = Some("broker-x:2;broker-y:1".into());
        let queues = publish_queues("T", &r);
        assert_eq!(
            queues,
            vec![
                MessageQueue::new("T", "broker-x", 0),
                MessageQueue::new("T", "broker-x", 1),
                MessageQueue::new("T", "broker-y", 0),
            ]
        );
    }

    #[test]
    fn default_topic_route_is_clamped_to_the_requested_queue_count() {
        let mut template = route();
        template.queue_datas = vec![queue_data("broker-a", 8, 8, 7)];
        let r = TopicRoute::from_default_topic("New", template, 4);
        assert_eq!(r.publish.len(), 4);
        assert!(r.publish.iter().all(|q| q.topic == "New"));
        assert_eq!(r.subscribe.len(), 4);
    }

    #[test]
    fn pull_address_prefers_the_suggested_id_then_the_next_slave_then_any() {
        let addrs: BTreeMap<i64, String> = [(0, "m".to_owned()), (2, "s2".to_owned())]
            .into_iter()
            .collect();
        assert_eq!(find_broker_addr_in_subscribe(&addrs, 0), Some((0, "m")));
        assert_eq!(find_broker_addr_in_subscribe(&addrs, 1), Some((2, "s2")));
        assert_eq!(find_broker_addr_in_subscribe(&addrs, 5), Some((0, "m")));
        assert_eq!(find_broker_addr_in_subscribe(&BTreeMap::new(), 0), None);
    }

    #[test]
    fn java_string_order_is_utf16_order() {
        // U+FF21 (fullwidth A) sorts after U+10000 in UTF-8 bytes but before it in UTF-16.
        let bmp_high = "\u{FF21}";
        let astral = "\u{10000}";
        assert_eq!(bmp_high.cmp(astral), CmpOrdering::Less);
        assert_eq!(java_str_cmp(bmp_high, astral), CmpOrdering::Greater);
    }
}

//! Typed broker calls shared by the consumers and the admin client: offsets (query, update,
//! max, min, search by time), the group's member list, pull, send-back and view-by-id.
//!
//! Each function finds the broker address from the route cache (the master for offsets and
//! send-back, §9.2) and turns a non-success answer into [`ClientError::Broker`], except where
//! a code is an expected outcome (QUERY_NOT_FOUND → `None`, pull statuses → [`PullStatus`]).

use std::sync::Arc;
use std::time::Duration;

use ringmq_protocol::body::{
    ConsumerListBody, JsonBody, LockBatchRequestBody, LockBatchResponseBody, MessageQueue,
    UnlockBatchRequestBody,
};
use ringmq_protocol::codes::{request_code, response_code};
use ringmq_protocol::command::RemotingCommand;
use ringmq_protocol::ext::CommandHeader;
use ringmq_protocol::headers::{
    BoundaryType, ConsumerGroupRequestHeader, ConsumerSendMsgBackRequestHeader,
    GetMaxOffsetRequestHeader, OffsetResponseHeader, PullMessageRequestHeader,
    PullMessageResponseHeader, QueryConsumerOffsetRequestHeader, QueueRequestHeader,
    SearchOffsetRequestHeader, UpdateConsumerOffsetRequestHeader, ViewMessageRequestHeader,
};
use ringmq_protocol::message::OffsetMsgId;

use crate::core::ClientCore;
use crate::error::{ClientError, Result};
use crate::message::{decode_pull_body, MessageExt};
use crate::remoting::{broker_error, check_success};

/// The master address of the broker holding `mq`, fetching the topic's route if needed.
pub async fn master_addr(core: &ClientCore, mq: &MessageQueue) -> Result<String> {
    if let Some(addr) = core.routes.master_addr(&mq.broker_name) {
        return Ok(addr);
    }
    let route = core.routes.fetch(&mq.topic).await?;
    route
        .master_addr(&mq.broker_name)
        .map(str::to_owned)
        .or_else(|| {
            route
                .broker(&mq.broker_name)
                .and_then(|b| b.broker_addrs.values().next().cloned())
        })
        .ok_or_else(|| ClientError::NoBrokerAddress {
            broker_name: mq.broker_name.clone(),
        })
}

async fn offset_call(
    core: &ClientCore,
    addr: &str,
    code: i32,
    ext: ringmq_protocol::command::ExtFields,
) -> Result<i64> {
    let request = RemotingCommand::request(code, ext);
    let response = core
        .remoting
        .invoke_ok(addr, request, core.config.rpc_timeout)
        .await?;
    Ok(OffsetResponseHeader::from_ext(&response.ext_fields)?.offset)
}

/// QUERY_CONSUMER_OFFSET: the group's committed offset, `None` if the broker has none (22).
pub async fn query_consumer_offset(
    core: &ClientCore,
    group: &str,
    mq: &MessageQueue,
) -> Result<Option<i64>> {
    let addr = master_addr(core, mq).await?;
    let header = QueryConsumerOffsetRequestHeader {
        consumer_group: group.to_owned(),
        topic: mq.topic.clone(),
        queue_id: mq.queue_id,
        set_zero_if_not_found: None,
    };
    let request = RemotingCommand::request(request_code::QUERY_CONSUMER_OFFSET, header.to_ext());
    let response = core
        .remoting
        .invoke(&addr, request, core.config.rpc_timeout)
        .await?;
    match response.code {
        response_code::SUCCESS => Ok(Some(
            OffsetResponseHeader::from_ext(&response.ext_fields)?.offset,
        )),
        response_code::QUERY_NOT_FOUND => Ok(None),
        _ => Err(broker_error(&addr, &response)),
    }
}

/// UPDATE_CONSUMER_OFFSET to the master; oneway (as the Java persist timer) or awaited.
pub async fn update_consumer_offset(
    core: &ClientCore,
    group: &str,
    mq: &MessageQueue,
    offset: i64,
    oneway: bool,
) -> Result<()> {
    let addr = master_addr(core, mq).await?;
    let header = UpdateConsumerOffsetRequestHeader {
        consumer_group: group.to_owned(),
        topic: mq.topic.clone(),
        queue_id: mq.queue_id,
        commit_offset: offset,
    };
    let request = RemotingCommand::request(request_code::UPDATE_CONSUMER_OFFSET, header.to_ext());
    if oneway {
        core.remoting.invoke_oneway(&addr, request).await
    } else {
        core.remoting
            .invoke_ok(&addr, request, core.config.rpc_timeout)
            .await
            .map(|_| ())
    }
}

/// GET_MAX_OFFSET: the next offset to be written in `mq`.
pub async fn max_offset(core: &ClientCore, mq: &MessageQueue) -> Result<i64> {
    let addr = master_addr(core, mq).await?;
    let header = GetMaxOffsetRequestHeader {
        topic: mq.topic.clone(),
        queue_id: mq.queue_id,
        committed: true,
    };
    offset_call(core, &addr, request_code::GET_MAX_OFFSET, header.to_ext()).await
}

/// GET_MIN_OFFSET: the first offset still stored in `mq`.
pub async fn min_offset(core: &ClientCore, mq: &MessageQueue) -> Result<i64> {
    let addr = master_addr(core, mq).await?;
    let header = QueueRequestHeader {
        topic: mq.topic.clone(),
        queue_id: mq.queue_id,
    };
    offset_call(core, &addr, request_code::GET_MIN_OFFSET, header.to_ext()).await
}

/// SEARCH_OFFSET_BY_TIMESTAMP (lower boundary): the first offset stored at or after
/// `timestamp_ms`.
pub async fn search_offset(core: &ClientCore, mq: &MessageQueue, timestamp_ms: i64) -> Result<i64> {
    let addr = master_addr(core, mq).await?;
    let header = SearchOffsetRequestHeader {
        topic: mq.topic.clone(),
        queue_id: mq.queue_id,
        timestamp_ms,
        boundary_type: BoundaryType::Lower,
    };
    offset_call(
        core,
        &addr,
        request_code::SEARCH_OFFSET_BY_TIMESTAMP,
        header.to_ext(),
    )
    .await
}

/// GET_CONSUMER_LIST_BY_GROUP from one broker of `topic` (the master if present).
pub async fn consumer_id_list(core: &ClientCore, group: &str, topic: &str) -> Result<Vec<String>> {
    let route = core.routes.get(topic).await?;
    let addr = route
        .data
        .broker_datas
        .iter()
        .find_map(|bd| bd.master_addr().map(str::to_owned))
        .or_else(|| route.all_addrs().next().map(str::to_owned))
        .ok_or_else(|| ClientError::NoRoute {
            topic: topic.to_owned(),
        })?;
    let header = ConsumerGroupRequestHeader {
        consumer_group: group.to_owned(),
    };
    let request =
        RemotingCommand::request(request_code::GET_CONSUMER_LIST_BY_GROUP, header.to_ext());
    let response = core
        .remoting
        .invoke_ok(&addr, request, core.config.rpc_timeout)
        .await?;
    Ok(ConsumerListBody::decode(&response.body)?.consumer_id_list)
}

/// What a pull found (protocol.md §2.4 response codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullStatus {
    /// SUCCESS: messages were found.
    Found,
    /// PULL_NOT_FOUND: nothing new.
    NoNewMsg,
    /// PULL_RETRY_IMMEDIATELY: entries scanned, none matched the filter.
    NoMatchedMsg,
    /// PULL_OFFSET_MOVED: the offset was illegal; use `next_begin_offset`.
    OffsetIllegal,
}

/// A pull's outcome.
#[derive(Debug, Clone)]
pub struct PullResult {
    /// Status.
    pub status: PullStatus,
    /// The offset to request next.
    pub next_begin_offset: i64,
    /// The queue's min offset.
    pub min_offset: i64,
    /// The queue's max offset.
    pub max_offset: i64,
    /// Broker id to pull this queue from next time (§9.2).
    pub suggest_which_broker_id: i64,
    /// Messages (after tag re-filtering), empty unless `Found`.
    pub messages: Vec<MessageExt>,
}

/// One pull request's parameters.
#[derive(Debug, Clone)]
pub struct PullArgs<'a> {
    /// Consumer group.
    pub group: &'a str,
    /// Queue.
    pub mq: &'a MessageQueue,
    /// Offset to read from.
    pub offset: i64,
    /// Max messages.
    pub max_msgs: i32,
    /// Pull sysFlag bits.
    pub sys_flag: i32,
    /// Committed offset carried with FLAG_COMMIT_OFFSET.
    pub commit_offset: i64,
    /// How long the broker may hold the request.
    pub suspend_timeout: Duration,
    /// The subscription expression (sent with FLAG_SUBSCRIPTION).
    pub subscription: Option<&'a str>,
    /// Tags for client-side re-filtering (empty for `*`).
    pub tags: &'a [String],
    /// Subscription version.
    pub sub_version: i64,
    /// Request code (PULL_MESSAGE or LITE_PULL_MESSAGE).
    pub code: i32,
    /// Client-side timeout (above the suspend time).
    pub timeout: Duration,
}

/// Sends one pull to `addr` and decodes its result.
pub async fn pull(core: &Arc<ClientCore>, addr: &str, args: &PullArgs<'_>) -> Result<PullResult> {
    let header = PullMessageRequestHeader {
        consumer_group: args.group.to_owned(),
        topic: args.mq.topic.clone(),
        queue_id: args.mq.queue_id,
        queue_offset: args.offset,
        max_msg_nums: args.max_msgs,
        sys_flag: ringmq_protocol::headers::PullSysFlag(args.sys_flag),
        commit_offset: args.commit_offset,
        suspend_timeout_millis: i64::try_from(args.suspend_timeout.as_millis()).unwrap_or(i64::MAX),
        subscription: args.subscription.map(str::to_owned),
        sub_version: args.sub_version,
        expression_type: args.subscription.map(|_| "TAG".to_owned()),
        max_msg_bytes: None,
        broker_name: Some(args.mq.broker_name.clone()),
    };
    let request = RemotingCommand::request(args.code, header.to_ext());
    let response = core.remoting.invoke(addr, request, args.timeout).await?;
    let status = match response.code {
        response_code::SUCCESS => PullStatus::Found,
        response_code::PULL_NOT_FOUND => PullStatus::NoNewMsg,
        response_code::PULL_RETRY_IMMEDIATELY => PullStatus::NoMatchedMsg,
        response_code::PULL_OFFSET_MOVED => PullStatus::OffsetIllegal,
        _ => return Err(broker_error(addr, &response)),
    };
    let header = PullMessageResponseHeader::from_ext(&response.ext_fields)?;
    let messages = if status == PullStatus::Found {
        decode_pull_body(&response.body, args.mq, args.tags)
    } else {
        Vec::new()
    };
    Ok(PullResult {
        status,
        next_begin_offset: header.next_begin_offset,
        min_offset: header.min_offset,
        max_offset: header.max_offset,
        suggest_which_broker_id: header.suggest_which_broker_id,
        messages,
    })
}

/// CONSUMER_SEND_MSG_BACK for a message that failed consumption (§7.5), to the master of the
/// broker it came from (the broker named in the message's queue; its store host otherwise).
pub async fn send_back(
    core: &ClientCore,
    msg: &MessageExt,
    group: &str,
    delay_level: i32,
    max_reconsume_times: i32,
) -> Result<()> {
    let addr = match core.routes.master_addr(&msg.broker_name) {
        Some(addr) => addr,
        None => msg.store_host.to_string(),
    };
    let header = ConsumerSendMsgBackRequestHeader {
        physical_offset: msg.commit_log_offset,
        group: group.to_owned(),
        delay_level,
        origin_msg_id: Some(msg.msg_id().to_owned()),
        origin_topic: Some(msg.topic.clone()),
        unit_mode: false,
        max_reconsume_times: Some(max_reconsume_times),
    };
    let request = RemotingCommand::request(request_code::CONSUMER_SEND_MSG_BACK, header.to_ext());
    core.remoting
        .invoke_ok(&addr, request, core.config.rpc_timeout)
        .await
        .map(|_| ())
}

/// VIEW_MESSAGE_BY_ID: the message with offset msgId `msg_id`, read from its store host.
pub async fn view_message(core: &ClientCore, msg_id: &str) -> Result<MessageExt> {
    let id = OffsetMsgId::decode(msg_id)?;
    let addr = id.store_host.to_string();
    let header = ViewMessageRequestHeader {
        topic: None,
        physical_offset: id.physical_offset,
    };
    let request = RemotingCommand::request(request_code::VIEW_MESSAGE_BY_ID, header.to_ext());
    let response = core
        .remoting
        .invoke(&addr, request, core.config.rpc_timeout)
        .await?;
    let response = check_success(&addr, response)?;
    let view = ringmq_protocol::message::view_record(&response.body)?;
    // The broker name is not in the record; the store address stands in for it.
    MessageExt::from_record(&view, &addr)
}

/// LOCK_BATCH_MQ to the master of the queues' broker (all of `queues` on one broker): the
/// queues this client now holds for `group` (orderly consumption).
pub async fn lock_batch(
    core: &ClientCore,
    group: &str,
    queues: &[MessageQueue],
) -> Result<Vec<MessageQueue>> {
    let Some(first) = queues.first() else {
        return Ok(Vec::new());
    };
    let addr = master_addr(core, first).await?;
    let body = LockBatchRequestBody {
        consumer_group: group.to_owned(),
        client_id: core.client_id.clone(),
        only_this_broker: false,
        mq_set: queues.iter().cloned().collect(),
    };
    let request = RemotingCommand::request(request_code::LOCK_BATCH_MQ, Default::default())
        .with_body(body.encode()?);
    let response = core
        .remoting
        .invoke_ok(&addr, request, core.config.rpc_timeout)
        .await?;
    Ok(LockBatchResponseBody::decode(&response.body)?
        .lock_ok_mq_set
        .into_iter()
        .collect())
}

/// UNLOCK_BATCH_MQ to the master of the queues' broker (all of `queues` on one broker).
pub async fn unlock_batch(core: &ClientCore, group: &str, queues: &[MessageQueue]) -> Result<()> {
    let Some(first) = queues.first() else {
        return Ok(());
    };
    let addr = master_addr(core, first).await?;
    let body = UnlockBatchRequestBody {
        consumer_group: group.to_owned(),
        client_id: core.client_id.clone(),
        only_this_broker: false,
        mq_set: queues.iter().cloned().collect(),
    };
    let request = RemotingCommand::request(request_code::UNLOCK_BATCH_MQ, Default::default())
        .with_body(body.encode()?);
    core.remoting
        .invoke_ok(&addr, request, core.config.rpc_timeout)
        .await
        .map(|_| ())
}

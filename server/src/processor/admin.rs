//! Admin commands (protocol.md §2.15): create/update and delete topics, the topic table,
//! runtime statistics.

use std::rc::Rc;

use ringmq_protocol::body::{JsonBody, KvTable, TopicConfig};
use ringmq_protocol::codes::response_code;
use ringmq_protocol::command::RemotingCommand;
use ringmq_protocol::headers::{CreateTopicRequestHeader, DeleteTopicRequestHeader};

use super::{decode_header, error_chain, error_response, success, topic_error};
use crate::broker::{now_ms, BrokerShard};
use crate::stats::BrokerStats;

/// UPDATE_AND_CREATE_TOPIC: validates, stores, persists and re-registers.
pub fn create_topic(shard: &Rc<BrokerShard>, request: &RemotingCommand) -> RemotingCommand {
    let header: CreateTopicRequestHeader = match decode_header(request) {
        Ok(header) => header,
        Err(response) => return response,
    };
    let attributes = match parse_attributes(header.attributes.as_deref()) {
        Ok(attributes) => attributes,
        Err(remark) => return error_response(request, response_code::INVALID_PARAMETER, remark),
    };
    let config = TopicConfig {
        topic_name: header.topic,
        read_queue_nums: header.read_queue_nums,
        write_queue_nums: header.write_queue_nums,
        perm: header.perm,
        topic_filter_type: header.topic_filter_type,
        topic_sys_flag: header.topic_sys_flag.unwrap_or(0),
        order: header.order,
        attributes,
    };
    match shard.shared.topics.create_or_update(config) {
        Ok(changed) => {
            if changed {
                shard.shared.topics_changed();
            }
            success(request)
        }
        Err(error) => topic_error(request, &error),
    }
}

/// `+key=value,+key2=value2` (RocketMQ 5 topic attributes); a `-key` removal is accepted
/// and dropped since nothing is stored for it.
fn parse_attributes(
    text: Option<&str>,
) -> Result<std::collections::BTreeMap<String, String>, String> {
    let mut attributes = std::collections::BTreeMap::new();
    let Some(text) = text.filter(|t| !t.trim().is_empty()) else {
        return Ok(attributes);
    };
    for item in text.split(',') {
        let item = item.trim();
        if let Some(pair) = item.strip_prefix('+') {
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| format!("attribute {item:?} is not +key=value"))?;
            attributes.insert(key.to_owned(), value.to_owned());
        } else if !item.starts_with('-') {
            return Err(format!("attribute {item:?} must start with + or -"));
        }
    }
    Ok(attributes)
}

/// DELETE_TOPIC_IN_BROKER: removes the topic from the table (its stored messages age out
/// with their segments).
pub fn delete_topic(shard: &Rc<BrokerShard>, request: &RemotingCommand) -> RemotingCommand {
    let header: DeleteTopicRequestHeader = match decode_header(request) {
        Ok(header) => header,
        Err(response) => return response,
    };
    match shard.shared.topics.delete(&header.topic) {
        Ok(changed) => {
            if changed {
                shard.shared.topics_changed();
            }
            success(request)
        }
        Err(error) => topic_error(request, &error),
    }
}

/// GET_ALL_TOPIC_CONFIG: the whole table with its data version.
pub fn all_topic_config(shard: &Rc<BrokerShard>, request: &RemotingCommand) -> RemotingCommand {
    let snapshot = shard.shared.topics.snapshot();
    match snapshot.encode() {
        Ok(bytes) => success(request).with_body(bytes),
        Err(error) => error_response(request, response_code::SYSTEM_ERROR, error_chain(&error)),
    }
}

/// GET_BROKER_RUNTIME_INFO: a KVTable with the keys `mqadmin clusterList` reads.
pub fn runtime_info(shard: &Rc<BrokerShard>, request: &RemotingCommand) -> RemotingCommand {
    let shared = &shard.shared;
    let put = BrokerStats::get(&shared.stats.messages_put);
    let got = BrokerStats::get(&shared.stats.messages_got);
    let uptime_s = (now_ms() as i64 - shared.boot_timestamp_ms).max(1) as f64 / 1000.0;
    let put_tps = put as f64 / uptime_s;
    let got_tps = got as f64 / uptime_s;
    let mut table = std::collections::BTreeMap::new();
    let mut set = |key: &str, value: String| {
        table.insert(key.to_owned(), value);
    };
    set("brokerVersionDesc", "V5_3_3".to_owned());
    set("brokerVersion", "479".to_owned());
    set("bootTimestamp", shared.boot_timestamp_ms.to_string());
    set("msgPutTotalTodayNow", put.to_string());
    set("msgGetTotalTodayNow", got.to_string());
    set("msgPutTotalTodayMorning", "0".to_owned());
    set("msgGetTotalTodayMorning", "0".to_owned());
    set("msgPutTotalYesterdayMorning", "0".to_owned());
    set("msgGetTotalYesterdayMorning", "0".to_owned());
    // RocketMQ prints three windows (10 s, 1 min, 10 min); ringmq reports the average
    // since start in all three until windowed rates are kept.
    set("putTps", format!("{put_tps:.2} {put_tps:.2} {put_tps:.2}"));
    set(
        "getTransferredTps",
        format!("{got_tps:.2} {got_tps:.2} {got_tps:.2}"),
    );
    set("sendThreadPoolQueueSize", "0".to_owned());
    set("pullThreadPoolQueueSize", "0".to_owned());
    set("sendThreadPoolQueueHeadWaitTimeMills", "0".to_owned());
    set("pullThreadPoolQueueHeadWaitTimeMills", "0".to_owned());
    set("pageCacheLockTimeMills", "0".to_owned());
    set("brokerActive", "true".to_owned());
    set("shards", shared.inboxes.shards().to_string());
    // Requests served by another shard than the one holding the connection, since start.
    set("crossShardHops", shared.inboxes.hops().to_string());
    let body = KvTable { table };
    match body.encode() {
        Ok(bytes) => success(request).with_body(bytes),
        Err(error) => error_response(request, response_code::SYSTEM_ERROR, error_chain(&error)),
    }
}

//! VIEW_MESSAGE_BY_ID (33) and CONSUMER_SEND_MSG_BACK (36): protocol.md §2.11, §2.12, §7.5.
//! Both start from a physical offset, whose top byte names the shard whose log holds it.

use std::rc::Rc;

use bytes::Bytes;
use ringmq_engine::commitlog::split_physical;
use ringmq_engine::store::PutMessage;
use ringmq_protocol::codes::response_code;
use ringmq_protocol::command::RemotingCommand;
use ringmq_protocol::headers::{ConsumerSendMsgBackRequestHeader, ViewMessageRequestHeader};
use ringmq_protocol::message::msg_id::encode_offset_msg_id;
use ringmq_protocol::message::properties::{self, keys};
use ringmq_protocol::message::record::decode_record;

use super::send::put_on_owner;
use super::{decode_header, error_chain, error_response, success, topic_error};
use crate::broker::BrokerShard;
use crate::topics::retry_topic;

/// RocketMQ's default `retryMaxTimes` of a subscription group.
const DEFAULT_MAX_RECONSUME_TIMES: i32 = 16;
/// Request version from which the header's maxReconsumeTimes is honoured (V3_4_9).
const VERSION_WITH_MAX_RECONSUME: i32 = 121;

/// The stored bytes of the record at `physical_offset`, read on the shard whose log holds it.
async fn read_record(shard: &Rc<BrokerShard>, physical_offset: i64) -> Result<Bytes, String> {
    let not_found = || format!("can not find message by the offset, {physical_offset}");
    let Some((log_shard, _)) = split_physical(physical_offset) else {
        return Err(not_found());
    };
    let log_shard = usize::from(log_shard);
    if log_shard >= shard.shared.inboxes.shards() {
        return Err(not_found());
    }
    shard
        .on_shard(log_shard, move |owner: Rc<BrokerShard>| async move {
            owner
                .store
                .read_record_at(physical_offset)
                .await
                .map_err(|error| {
                    format!(
                        "can not find message by the offset, {physical_offset}: {}",
                        error_chain(&error)
                    )
                })
        })
        .await
        .map_err(|error| error.to_string())?
}

/// VIEW_MESSAGE_BY_ID: body = the one stored record.
pub async fn view_message(shard: &Rc<BrokerShard>, request: &RemotingCommand) -> RemotingCommand {
    let header: ViewMessageRequestHeader = match decode_header(request) {
        Ok(header) => header,
        Err(response) => return response,
    };
    match read_record(shard, header.physical_offset).await {
        Ok(bytes) => success(request).with_body(bytes),
        Err(remark) => error_response(request, response_code::SYSTEM_ERROR, remark),
    }
}

/// CONSUMER_SEND_MSG_BACK: stores a copy of a failed message on `%RETRY%<group>` with its
/// reconsume count raised (or on `%DLQ%<group>` once it has been retried too often), so
/// the group receives it again. Delay levels are not applied yet: the copy is consumable
/// at once.
pub async fn send_back(shard: &Rc<BrokerShard>, request: &RemotingCommand) -> RemotingCommand {
    let header: ConsumerSendMsgBackRequestHeader = match decode_header(request) {
        Ok(header) => header,
        Err(response) => return response,
    };
    let shared = &shard.shared;
    let (retry_config, created) = match shared.topics.create_retry_topic(&header.group) {
        Ok(result) => result,
        Err(error) => return topic_error(request, &error),
    };
    if created {
        shared.topics_changed();
    }
    let bytes = match read_record(shard, header.physical_offset).await {
        Ok(bytes) => bytes,
        Err(remark) => return error_response(request, response_code::SYSTEM_ERROR, remark),
    };
    let original = match decode_record(&bytes) {
        Ok((message, _)) => message,
        Err(error) => {
            return error_response(
                request,
                response_code::SYSTEM_ERROR,
                format!("stored message at {}: {error}", header.physical_offset),
            )
        }
    };
    let max_reconsume = match header.max_reconsume_times {
        Some(max) if request.version >= VERSION_WITH_MAX_RECONSUME => max,
        _ => DEFAULT_MAX_RECONSUME_TIMES,
    };
    let mut props = original.properties.clone();
    let mut add = |key: &str, value: &str| properties::append(&mut props, key, value);
    let mut result = Ok(());
    if properties::find(&original.properties, keys::RETRY_TOPIC).is_none() {
        result = result.and(add(keys::RETRY_TOPIC, &original.topic));
    }
    if properties::find(&original.properties, keys::ORIGIN_MESSAGE_ID).is_none() {
        let origin = header
            .origin_msg_id
            .clone()
            .unwrap_or_else(|| encode_offset_msg_id(original.store_host, original.physical_offset));
        result = result.and(add(keys::ORIGIN_MESSAGE_ID, &origin));
    }
    if let Err(error) = result {
        return error_response(request, response_code::SYSTEM_ERROR, error.to_string());
    }
    let to_dlq = original.reconsume_times >= max_reconsume || header.delay_level < 0;
    let (topic, queue_id) = if to_dlq {
        match shared.topics.create_dlq_topic(&header.group) {
            Ok((dlq, created)) => {
                if created {
                    shared.topics_changed();
                }
                (dlq.topic_name.clone(), 0)
            }
            Err(error) => return topic_error(request, &error),
        }
    } else {
        let queues = retry_config.write_queue_nums.max(1);
        (
            retry_topic(&header.group),
            (original.queue_offset % i64::from(queues)) as i32,
        )
    };
    let message = PutMessage {
        topic: topic.clone(),
        queue_id,
        flag: original.flag,
        sys_flag: original.sys_flag,
        born_timestamp: original.born_timestamp,
        born_host: original.born_host,
        store_host: shared.broker_addr,
        reconsume_times: original.reconsume_times.saturating_add(1),
        prepared_transaction_offset: 0,
        body: original.body.clone(),
        properties: props,
    };
    match put_on_owner(shard, &topic, queue_id, vec![message]).await {
        Ok(_) => success(request),
        Err(failure) => error_response(request, response_code::SYSTEM_ERROR, failure.remark),
    }
}

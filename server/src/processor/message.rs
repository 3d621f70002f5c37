//! VIEW_MESSAGE_BY_ID (33) and CONSUMER_SEND_MSG_BACK (36): protocol.md §2.11, §2.12, §7.5.
//! Both start from a physical offset, whose top byte names the shard whose log holds it.

use std::rc::Rc;

use ringmq_engine::store::PutMessage;
use ringmq_protocol::command::RemotingCommand;
use ringmq_protocol::headers::{ConsumerSendMsgBackRequestHeader, ViewMessageRequestHeader};
use ringmq_protocol::message::msg_id::encode_offset_msg_id;
use ringmq_protocol::message::properties::{self, keys};
use ringmq_protocol::message::record::decode_record;

use super::{decode_header, success, Answer, Refused};
use crate::schedule::{self, Due};
use crate::shard::Shard;
use crate::topics::retry_topic;

/// VIEW_MESSAGE_BY_ID: body = the one stored record.
pub async fn view_message(shard: &Rc<Shard>, request: &RemotingCommand) -> Answer {
    let header: ViewMessageRequestHeader = decode_header(request)?;
    let bytes = shard.read_record(header.physical_offset).await?;
    Ok(success(request).with_body(bytes))
}

/// CONSUMER_SEND_MSG_BACK: stores a copy of a failed message for `%RETRY%<group>` with its
/// reconsume count raised, parked until its delay level is due (the request's level, or
/// `3 + reconsumeTimes` when it asks for 0), so the group receives it again later; once it
/// has been retried too often (or the request asks with a level < 0), on `%DLQ%<group>` at
/// once (protocol.md §7.5).
pub async fn send_back(shard: &Rc<Shard>, request: &RemotingCommand) -> Answer {
    super::refuse_on_slave(shard)?;
    let header: ConsumerSendMsgBackRequestHeader = decode_header(request)?;
    let shared = shard.shared();
    let (retry_config, created) = shared.topics.create_retry_topic(&header.group)?;
    if created {
        shared.topics_changed();
    }
    let bytes = shard.read_record(header.physical_offset).await?;
    let (original, _) = decode_record(&bytes).map_err(|source| Refused::StoredMessage {
        physical_offset: header.physical_offset,
        source,
    })?;
    let max_reconsume = super::max_reconsume_times(request, header.max_reconsume_times);
    let to_dlq = original.reconsume_times >= max_reconsume || header.delay_level < 0;
    let mut props = properties::without(&original.properties, &[keys::DELAY]);
    let mut add = |key: &str, value: &str| properties::append(&mut props, key, value);
    let mut result = Ok(());
    let real_topic = properties::find(&original.properties, keys::RETRY_TOPIC)
        .unwrap_or(&original.topic)
        .to_owned();
    if properties::find(&original.properties, keys::RETRY_TOPIC).is_none() {
        result = result.and(add(keys::RETRY_TOPIC, &original.topic));
    }
    let origin_msg_id = match properties::find(&original.properties, keys::ORIGIN_MESSAGE_ID) {
        Some(origin) => origin.to_owned(),
        None => {
            let origin = header.origin_msg_id.clone().unwrap_or_else(|| {
                encode_offset_msg_id(original.store_host, original.physical_offset)
            });
            result = result.and(add(keys::ORIGIN_MESSAGE_ID, &origin));
            origin
        }
    };
    let delay_level = if header.delay_level > 0 {
        header.delay_level
    } else {
        original.reconsume_times.saturating_add(3)
    };
    if to_dlq {
        // Where it came from, for whoever reads the dead letters (RocketMQ 5.x's keys).
        result = result
            .and(add(keys::DLQ_ORIGIN_TOPIC, &real_topic))
            .and(add(keys::DLQ_ORIGIN_MESSAGE_ID, &origin_msg_id));
    } else {
        result = result.and(add(keys::DELAY, &delay_level.to_string()));
    }
    result.map_err(Refused::SendBackProperties)?;
    let (mut topic, mut queue_id) = if to_dlq {
        let (dlq, created) = shared.topics.create_dlq_topic(&header.group)?;
        if created {
            shared.topics_changed();
        }
        (dlq.topic_name.clone(), 0)
    } else {
        let queues = retry_config.write_queue_nums.max(1);
        (
            retry_topic(&header.group),
            (original.queue_offset % i64::from(queues)) as i32,
        )
    };
    if !to_dlq {
        let schedule = &shared.config.schedule;
        let level = delay_level.min(schedule.levels.count());
        let parked = schedule::park(
            &props,
            &topic,
            queue_id,
            Due::Level { level },
            shared.clock.wall_ms(),
            schedule,
        )
        .map_err(Refused::SendBackProperties)?;
        topic = parked.topic.to_owned();
        queue_id = parked.queue_id;
        props = parked.properties;
    }
    let message = PutMessage {
        topic: topic.clone(),
        queue_id,
        flag: original.flag,
        sys_flag: original.sys_flag,
        born_timestamp: original.born_timestamp,
        born_host: original.born_host,
        store_host: shard.store_host(),
        reconsume_times: original.reconsume_times.saturating_add(1),
        prepared_transaction_offset: 0,
        body: original.body.clone(),
        properties: props,
    };
    let wait_store_msg_ok = properties::wait_store_msg_ok(&message.properties);
    let (_, replica) = shard
        .append(&topic, queue_id, vec![message], wait_store_msg_ok)
        .await?;
    if !replica.is_ok() {
        // RocketMQ answers a send-back whose put was not PUT_OK with SYSTEM_ERROR and the
        // status's name; the Java consumer then sends the message back itself, by producer.
        return Err(Refused::SendBackNotReplicated {
            status: replica.java_name(),
        });
    }
    Ok(success(request))
}

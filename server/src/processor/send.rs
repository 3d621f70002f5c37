//! SEND_MESSAGE (10), SEND_MESSAGE_V2 (310), SEND_BATCH_MESSAGE (320): protocol.md §2.3.
//!
//! Validation and topic resolution run on the connection's shard; the append runs on the
//! shard that owns the queue (design.md §4), reached through its inbox when it is another.
//! The response carries the offset msgId (STOREHOST + physical offset), queue id and queue
//! offset, plus the MSG_REGION / TRACE_ON extFields a Java broker adds. On a SYNC_MASTER the
//! same response carries SLAVE_NOT_AVAILABLE or FLUSH_SLAVE_TIMEOUT instead of SUCCESS when
//! no slave acknowledged the bytes (`shard::sync_replication`).

use std::net::SocketAddr;
use std::rc::Rc;

use bytes::Bytes;
use ringmq_engine::store::{PutMessage, PutResult};
use ringmq_protocol::codes::{request_code, response_code};
use ringmq_protocol::command::RemotingCommand;
use ringmq_protocol::ext::CommandHeader;
use ringmq_protocol::headers::{
    SendMessageRequestHeader, SendMessageResponseHeader, DEFAULT_MSG_REGION, EXT_MSG_REGION,
    EXT_TRACE_ON,
};
use ringmq_protocol::message::batch::decode_batch_bytes;
use ringmq_protocol::message::msg_id::encode_offset_msg_id;
use ringmq_protocol::message::properties::{self, keys};
use ringmq_protocol::message::sysflag::TransactionType;

use super::{Answer, Refused};
use crate::connection::Connection;
use crate::schedule::{self, Due};
use crate::shard::sync_replication::ReplicaStatus;
use crate::shard::Shard;
use crate::stats::BrokerStats;
use crate::topics::{check_queue_id, check_send_topic, is_writeable, RETRY_PREFIX};

/// Handles codes 10, 310 and 320: validate, append on the queue's owner shard, answer.
pub async fn send(
    shard: &Rc<Shard>,
    connection: &Rc<Connection>,
    request: &RemotingCommand,
) -> Answer {
    let answer = match super::refuse_on_slave(shard) {
        Ok(()) => send_inner(shard, connection, request).await,
        Err(refused) => Err(refused),
    };
    if answer.is_err() {
        BrokerStats::add(&shard.shared().stats.sends_refused, 1);
    }
    answer
}

async fn send_inner(
    shard: &Rc<Shard>,
    connection: &Rc<Connection>,
    request: &RemotingCommand,
) -> Answer {
    let header = SendMessageRequestHeader::decode_for_code(request.code, &request.ext_fields)?;
    let batch = request.code == request_code::SEND_BATCH_MESSAGE || header.batch;
    let Prepared {
        topic,
        queue_id,
        answer_queue_id,
        messages,
        topic_created,
    } = prepare(shard, request, &header, batch, connection.peer)?;
    let count = messages.len() as u64;
    let body_bytes: u64 = messages.iter().map(|m| m.body.len() as u64).sum();
    // A batch waits as its header's properties say, as in RocketMQ (MessageExtBatch).
    let wait_store_msg_ok =
        properties::wait_store_msg_ok(header.properties.as_deref().unwrap_or(""));
    let (results, replica) = shard
        .append(&topic, queue_id, messages, wait_store_msg_ok)
        .await?;
    if topic_created {
        shard.shared().topics_changed_and_registered().await;
    }
    // Stored either way: a SYNC_MASTER's status says only whether a slave has it too.
    let stats = &shard.shared().stats;
    BrokerStats::add(&stats.messages_put, count);
    BrokerStats::add(&stats.bytes_put, body_bytes);
    Ok(stored_response(
        shard,
        request,
        answer_queue_id,
        &results,
        send_response_code(replica),
    ))
}

/// The SEND response code for what replication did (RocketMQ's `handlePutMessageResult`):
/// the Java client turns 11 and 12 into a `SendResult` with that `SendStatus`, not an
/// exception, so these answers carry the full response header like SEND_OK.
fn send_response_code(replica: ReplicaStatus) -> i32 {
    match replica {
        ReplicaStatus::NotWaited | ReplicaStatus::Acked => response_code::SUCCESS,
        ReplicaStatus::SlaveNotAvailable => response_code::SLAVE_NOT_AVAILABLE,
        ReplicaStatus::FlushSlaveTimeout => response_code::FLUSH_SLAVE_TIMEOUT,
    }
}

/// Validates the request and builds the messages to append: `(topic, queue id, messages)`.
/// A validated send: where it goes and what is stored.
struct Prepared {
    /// Where the messages are appended: their topic, or a schedule topic when not due yet.
    topic: String,
    queue_id: i32,
    /// The queue id the answer names: the one the producer chose (RocketMQ answers a
    /// delayed send so too).
    answer_queue_id: i32,
    messages: Vec<PutMessage>,
    /// The send created its topic (or its DLQ): the name servers must learn it.
    topic_created: bool,
}

fn prepare(
    shard: &Shard,
    request: &RemotingCommand,
    header: &SendMessageRequestHeader,
    batch: bool,
    born_host: SocketAddr,
) -> Result<Prepared, Refused> {
    let shared = shard.shared();
    let config = &shared.config;
    check_send_topic(&header.topic)?;
    if request.body.is_empty() {
        return Err(Refused::EmptyBody);
    }
    if request.body.len() > config.max_message_size_bytes {
        return Err(Refused::BodyTooLarge {
            size_bytes: request.body.len(),
            max_bytes: config.max_message_size_bytes,
        });
    }
    if TransactionType::of(header.sys_flag) != TransactionType::NotType {
        // Stored as a plain message it would be delivered before its commit, or never:
        // refused, as a broker with transactions switched off does, until they are built.
        return Err(Refused::TransactionForbidden {
            broker: shard.broker_name(),
        });
    }
    let is_retry = header.topic.starts_with(RETRY_PREFIX);
    if batch && is_retry {
        return Err(Refused::BatchToRetryTopic);
    }
    let (topic_config, mut topic_created) = shared.topics.auto_create_for_send(
        &header.topic,
        &header.default_topic,
        header.default_topic_queue_nums,
    )?;
    if !is_writeable(topic_config.perm) {
        return Err(Refused::SendForbidden {
            topic: header.topic.clone(),
        });
    }
    let mut topic = header.topic.clone();
    let mut queue_id = header.queue_id;
    if queue_id < 0 {
        let writable = topic_config.write_queue_nums.max(1);
        queue_id = (fastrand_u32() % writable as u32) as i32;
    }
    check_queue_id(&topic_config, queue_id)?;

    let reconsume_times = header.reconsume_times.unwrap_or(0);
    let mut extra_properties: Vec<(&str, String)> = Vec::new();
    let mut to_dlq = false;
    if is_retry {
        let max = super::max_reconsume_times(request, header.max_reconsume_times);
        if reconsume_times > max {
            // Too many attempts: into the group's dead-letter queue at once (§7.5), whatever
            // delay the client's fallback re-send asked for.
            let group = header.topic.trim_start_matches(RETRY_PREFIX);
            let (dlq, created) = shared.topics.create_dlq_topic(group)?;
            topic_created |= created;
            topic = dlq.topic_name.clone();
            queue_id = 0;
            to_dlq = true;
            extra_properties.push((keys::DELAY, "0".to_owned()));
        }
    }

    let store_host = shard.store_host();
    let base = |body: Bytes, flag: i32, mut props: String| -> Result<PutMessage, Refused> {
        if to_dlq {
            props = properties::without(&props, &[keys::DELAY]);
        }
        if properties::find(&props, keys::UNIQ_KEY).is_none() {
            let mut key = String::with_capacity(32);
            shared.uniq_keys.write_next(&mut key);
            append_property(&mut props, keys::UNIQ_KEY, &key)?;
        }
        append_property(&mut props, keys::CLUSTER, &config.cluster_name)?;
        for (key, value) in &extra_properties {
            append_property(&mut props, key, value)?;
        }
        Ok(PutMessage {
            topic: topic.clone(),
            queue_id,
            flag,
            sys_flag: header.sys_flag,
            born_timestamp: header.born_timestamp_ms,
            born_host,
            store_host,
            reconsume_times,
            prepared_transaction_offset: 0,
            body,
            properties: props,
        })
    };
    let now_ms = shared.clock.wall_ms();
    let schedule = &config.schedule;
    let answer_queue_id = queue_id;
    let messages = if batch {
        let entries = decode_batch_bytes(&request.body).map_err(Refused::BatchBody)?;
        let messages = entries
            .into_iter()
            .map(|entry| base(entry.body, entry.flag, entry.properties))
            .collect::<Result<Vec<_>, _>>()?;
        for message in &messages {
            // One append puts a batch on one queue; RocketMQ refuses delayed batches too.
            if schedule::due(&message.properties, now_ms, schedule)? != Due::Now {
                return Err(Refused::DelayInBatch);
            }
        }
        messages
    } else {
        let mut message = base(
            request.body.clone(),
            header.flag,
            header.properties.clone().unwrap_or_default(),
        )?;
        let due = schedule::due(&message.properties, now_ms, schedule)?;
        if due != Due::Now {
            // Stored now (durable, counted), visible on its topic once due (schedule.rs).
            let parked =
                schedule::park(&message.properties, &topic, queue_id, due, now_ms, schedule)
                    .map_err(Refused::Properties)?;
            topic = parked.topic.to_owned();
            queue_id = parked.queue_id;
            message.topic = topic.clone();
            message.queue_id = queue_id;
            message.properties = parked.properties;
        }
        vec![message]
    };
    Ok(Prepared {
        topic,
        queue_id,
        answer_queue_id,
        messages,
        topic_created,
    })
}

fn append_property(props: &mut String, key: &str, value: &str) -> Result<(), Refused> {
    properties::append(props, key, value).map_err(Refused::Properties)
}

fn stored_response(
    shard: &Shard,
    request: &RemotingCommand,
    queue_id: i32,
    results: &[PutResult],
    code: i32,
) -> RemotingCommand {
    let store_host = shard.store_host();
    let msg_id = results
        .iter()
        .map(|r| encode_offset_msg_id(store_host, r.physical_offset))
        .collect::<Vec<_>>()
        .join(",");
    let header = SendMessageResponseHeader {
        msg_id,
        queue_id,
        queue_offset: results.first().map_or(0, |r| r.queue_offset),
        transaction_id: None,
        batch_uniq_id: None,
        recall_handle: None,
    };
    let mut response = RemotingCommand::response_to(request, code);
    header.write_ext(&mut response.ext_fields);
    response
        .ext_fields
        .insert(EXT_MSG_REGION.to_owned(), DEFAULT_MSG_REGION.to_owned());
    response
        .ext_fields
        .insert(EXT_TRACE_ON.to_owned(), "true".to_owned());
    response
}

/// A cheap pseudo-random number for picking a queue when the producer lets the broker
/// choose (queueId < 0): a thread-local xorshift seeded from the clock.
fn fastrand_u32() -> u32 {
    use std::cell::Cell;
    thread_local! {
        static STATE: Cell<u64> = Cell::new(
            (crate::clock::wall_ms() as u64 ^ 0x9E37_79B9_7F4A_7C15) | 1
        );
    }
    STATE.with(|state| {
        let mut x = state.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        state.set(x);
        (x >> 32) as u32
    })
}

//! Offsets: QUERY_CONSUMER_OFFSET (14), UPDATE_CONSUMER_OFFSET (15), GET_MAX_OFFSET (30),
//! GET_MIN_OFFSET (31), SEARCH_OFFSET_BY_TIMESTAMP (29), GET_EARLIEST_MSG_STORETIME (32):
//! protocol.md §2.5, §2.10, §6. Each is answered by the shard that owns the queue.
//!
//! **Unknown queues are refused** (docs/decisions.md, "Offsets of queues that do not
//! exist"): Java answers SUCCESS with 0 for a topic or queue id it has never heard of, and
//! stores an offset for any queue id; here every one of these requests first checks that
//! the topic exists (TOPIC_NOT_EXIST 17) and that `0 ≤ queueId < max(readQueueNums,
//! writeQueueNums)` (INVALID_PARAMETER 29), and UPDATE_CONSUMER_OFFSET refuses a negative
//! offset (INVALID_PARAMETER 29), so a typo or a hostile client cannot read a made-up 0 or
//! fill the offset table with queues that will never exist.

use std::rc::Rc;

use ringmq_engine::consumequeue::Boundary;
use ringmq_protocol::command::RemotingCommand;
use ringmq_protocol::ext::CommandHeader;
use ringmq_protocol::headers::{
    BoundaryType, GetEarliestMsgStoretimeResponseHeader, GetMaxOffsetRequestHeader,
    OffsetResponseHeader, QueryConsumerOffsetRequestHeader, QueueRequestHeader,
    SearchOffsetRequestHeader, UpdateConsumerOffsetRequestHeader,
};

use super::{decode_header, success, Answer, Refused};
use crate::shard::Shard;
use crate::topics::{check_queue_id, TopicError};

/// Refuses a topic the broker does not have, or a queue id outside its queues.
fn check_queue(shard: &Shard, topic: &str, queue_id: i32) -> Result<(), Refused> {
    let Some(config) = shard.shared().topics.get(topic) else {
        return Err(Refused::Topic(TopicError::NotExist {
            topic: topic.to_owned(),
        }));
    };
    Ok(check_queue_id(&config, queue_id)?)
}

fn offset_response(request: &RemotingCommand, offset: i64) -> RemotingCommand {
    let mut response = success(request);
    OffsetResponseHeader { offset }.write_ext(&mut response.ext_fields);
    response
}

/// QUERY_CONSUMER_OFFSET: the stored offset, else 0 for a young queue whose head was never
/// truncated (RocketMQ's "head still in memory" rule, §2.5), else QUERY_NOT_FOUND (22).
pub async fn query_consumer_offset(shard: &Rc<Shard>, request: &RemotingCommand) -> Answer {
    let header: QueryConsumerOffsetRequestHeader = decode_header(request)?;
    check_queue(shard, &header.topic, header.queue_id)?;
    let state = shard
        .queue_state(&header.topic, header.queue_id, Some(&header.consumer_group))
        .await?;
    if let Some(offset) = state.consumer_offset {
        return Ok(offset_response(request, offset));
    }
    let zero_allowed = header.set_zero_if_not_found.unwrap_or(true);
    let young = state.min_offset <= 0 && state.max_offset > 0;
    if zero_allowed && young {
        Ok(offset_response(request, 0))
    } else {
        Err(Refused::ConsumerOffsetNotFound)
    }
}

/// UPDATE_CONSUMER_OFFSET: stores the group's next offset for the queue (an existing queue,
/// a non-negative offset).
pub async fn update_consumer_offset(shard: &Rc<Shard>, request: &RemotingCommand) -> Answer {
    let header: UpdateConsumerOffsetRequestHeader = decode_header(request)?;
    check_queue(shard, &header.topic, header.queue_id)?;
    if header.commit_offset < 0 {
        return Err(Refused::NegativeOffset {
            offset: header.commit_offset,
            topic: header.topic,
            queue_id: header.queue_id,
        });
    }
    shard
        .commit_offset(
            &header.consumer_group,
            &header.topic,
            header.queue_id,
            header.commit_offset,
        )
        .await?;
    Ok(success(request))
}

pub async fn max_offset(shard: &Rc<Shard>, request: &RemotingCommand) -> Answer {
    let header: GetMaxOffsetRequestHeader = decode_header(request)?;
    check_queue(shard, &header.topic, header.queue_id)?;
    let state = shard
        .queue_state(&header.topic, header.queue_id, None)
        .await?;
    Ok(offset_response(request, state.max_offset))
}

pub async fn min_offset(shard: &Rc<Shard>, request: &RemotingCommand) -> Answer {
    let header: QueueRequestHeader = decode_header(request)?;
    check_queue(shard, &header.topic, header.queue_id)?;
    let state = shard
        .queue_state(&header.topic, header.queue_id, None)
        .await?;
    Ok(offset_response(request, state.min_offset))
}

pub async fn search_offset_by_timestamp(shard: &Rc<Shard>, request: &RemotingCommand) -> Answer {
    let header: SearchOffsetRequestHeader = decode_header(request)?;
    check_queue(shard, &header.topic, header.queue_id)?;
    let boundary = match header.boundary_type {
        BoundaryType::Lower => Boundary::Lower,
        BoundaryType::Upper => Boundary::Upper,
    };
    let offset = shard
        .search_offset_by_timestamp(
            &header.topic,
            header.queue_id,
            header.timestamp_ms,
            boundary,
        )
        .await?;
    Ok(offset_response(request, offset))
}

pub async fn earliest_msg_store_time(shard: &Rc<Shard>, request: &RemotingCommand) -> Answer {
    let header: QueueRequestHeader = decode_header(request)?;
    check_queue(shard, &header.topic, header.queue_id)?;
    let timestamp_ms = shard
        .earliest_msg_store_time(&header.topic, header.queue_id)
        .await?;
    let mut response = success(request);
    GetEarliestMsgStoretimeResponseHeader { timestamp_ms }.write_ext(&mut response.ext_fields);
    Ok(response)
}

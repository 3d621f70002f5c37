//! Offsets: QUERY_CONSUMER_OFFSET (14), UPDATE_CONSUMER_OFFSET (15), GET_MAX_OFFSET (30),
//! GET_MIN_OFFSET (31), SEARCH_OFFSET_BY_TIMESTAMP (29), GET_EARLIEST_MSG_STORETIME (32):
//! protocol.md §2.5, §2.10, §6. Each is answered by the shard that owns the queue.

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

fn offset_response(request: &RemotingCommand, offset: i64) -> RemotingCommand {
    let mut response = success(request);
    OffsetResponseHeader { offset }.write_ext(&mut response.ext_fields);
    response
}

/// QUERY_CONSUMER_OFFSET: the stored offset, else 0 for a young queue whose head was never
/// truncated (RocketMQ's "head still in memory" rule, §2.5), else QUERY_NOT_FOUND (22).
pub async fn query_consumer_offset(shard: &Rc<Shard>, request: &RemotingCommand) -> Answer {
    let header: QueryConsumerOffsetRequestHeader = decode_header(request)?;
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

/// UPDATE_CONSUMER_OFFSET: stores the group's next offset for the queue.
pub async fn update_consumer_offset(shard: &Rc<Shard>, request: &RemotingCommand) -> Answer {
    let header: UpdateConsumerOffsetRequestHeader = decode_header(request)?;
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
    let state = shard
        .queue_state(&header.topic, header.queue_id, None)
        .await?;
    Ok(offset_response(request, state.max_offset))
}

pub async fn min_offset(shard: &Rc<Shard>, request: &RemotingCommand) -> Answer {
    let header: QueueRequestHeader = decode_header(request)?;
    let state = shard
        .queue_state(&header.topic, header.queue_id, None)
        .await?;
    Ok(offset_response(request, state.min_offset))
}

pub async fn search_offset_by_timestamp(shard: &Rc<Shard>, request: &RemotingCommand) -> Answer {
    let header: SearchOffsetRequestHeader = decode_header(request)?;
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
    let timestamp_ms = shard
        .earliest_msg_store_time(&header.topic, header.queue_id)
        .await?;
    let mut response = success(request);
    GetEarliestMsgStoretimeResponseHeader { timestamp_ms }.write_ext(&mut response.ext_fields);
    Ok(response)
}

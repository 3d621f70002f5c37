//! Offsets: QUERY_CONSUMER_OFFSET (14), UPDATE_CONSUMER_OFFSET (15), GET_MAX_OFFSET (30),
//! GET_MIN_OFFSET (31), SEARCH_OFFSET_BY_TIMESTAMP (29), GET_EARLIEST_MSG_STORETIME (32):
//! protocol.md §2.5, §2.10, §6. Each runs on the shard that owns the queue.

use std::rc::Rc;

use ringmq_engine::consumequeue::Boundary;
use ringmq_protocol::codes::response_code;
use ringmq_protocol::command::RemotingCommand;
use ringmq_protocol::ext::CommandHeader;
use ringmq_protocol::headers::{
    BoundaryType, GetEarliestMsgStoretimeResponseHeader, GetMaxOffsetRequestHeader,
    OffsetResponseHeader, QueryConsumerOffsetRequestHeader, QueueRequestHeader,
    SearchOffsetRequestHeader, UpdateConsumerOffsetRequestHeader,
};

use super::{decode_header, error_chain, error_response, success};
use crate::broker::BrokerShard;

/// What the owner shard answered, before it becomes a response.
#[derive(Debug)]
enum Answer {
    Offset(i64),
    Timestamp(i64),
    NotFound,
    Done,
    Failed(String),
}

async fn on_owner<F, Fut>(
    shard: &Rc<BrokerShard>,
    request: &RemotingCommand,
    topic: &str,
    queue_id: i32,
    work: F,
) -> RemotingCommand
where
    F: FnOnce(Rc<BrokerShard>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Answer> + 'static,
{
    let owner = shard.owner_of(topic, queue_id);
    let answer = shard
        .on_shard(owner, work)
        .await
        .unwrap_or_else(|error| Answer::Failed(error.to_string()));
    match answer {
        Answer::Offset(offset) => {
            let mut response = success(request);
            OffsetResponseHeader { offset }.write_ext(&mut response.ext_fields);
            response
        }
        Answer::Timestamp(timestamp_ms) => {
            let mut response = success(request);
            GetEarliestMsgStoretimeResponseHeader { timestamp_ms }
                .write_ext(&mut response.ext_fields);
            response
        }
        Answer::NotFound => error_response(
            request,
            response_code::QUERY_NOT_FOUND,
            "Not found, V3_0_6_SNAPSHOT maybe this group consumer boot first",
        ),
        Answer::Done => success(request),
        Answer::Failed(remark) => error_response(request, response_code::SYSTEM_ERROR, remark),
    }
}

/// QUERY_CONSUMER_OFFSET: the stored offset, else 0 for a young queue whose head was never
/// truncated (RocketMQ's "head still in memory" rule, §2.5), else QUERY_NOT_FOUND (22).
pub async fn query_consumer_offset(
    shard: &Rc<BrokerShard>,
    request: &RemotingCommand,
) -> RemotingCommand {
    let header: QueryConsumerOffsetRequestHeader = match decode_header(request) {
        Ok(header) => header,
        Err(response) => return response,
    };
    let (topic, queue_id) = (header.topic.clone(), header.queue_id);
    on_owner(shard, request, &topic, queue_id, move |owner| async move {
        let stored =
            owner
                .offsets
                .borrow()
                .get(&header.consumer_group, &header.topic, header.queue_id);
        if let Some(offset) = stored {
            return Answer::Offset(offset);
        }
        let zero_allowed = header.set_zero_if_not_found.unwrap_or(true);
        let store = &owner.store;
        let young = store.min_offset(&header.topic, header.queue_id) <= 0
            && store.max_offset(&header.topic, header.queue_id) > 0;
        if zero_allowed && young {
            Answer::Offset(0)
        } else {
            Answer::NotFound
        }
    })
    .await
}

/// UPDATE_CONSUMER_OFFSET: stores the group's next offset for the queue.
pub async fn update_consumer_offset(
    shard: &Rc<BrokerShard>,
    request: &RemotingCommand,
) -> RemotingCommand {
    let header: UpdateConsumerOffsetRequestHeader = match decode_header(request) {
        Ok(header) => header,
        Err(response) => return response,
    };
    let (topic, queue_id) = (header.topic.clone(), header.queue_id);
    on_owner(shard, request, &topic, queue_id, move |owner| async move {
        owner.offsets.borrow_mut().commit(
            &header.consumer_group,
            &header.topic,
            header.queue_id,
            header.commit_offset,
        );
        Answer::Done
    })
    .await
}

pub async fn max_offset(shard: &Rc<BrokerShard>, request: &RemotingCommand) -> RemotingCommand {
    let header: GetMaxOffsetRequestHeader = match decode_header(request) {
        Ok(header) => header,
        Err(response) => return response,
    };
    let (topic, queue_id) = (header.topic.clone(), header.queue_id);
    on_owner(shard, request, &topic, queue_id, move |owner| async move {
        Answer::Offset(owner.store.max_offset(&header.topic, header.queue_id))
    })
    .await
}

pub async fn min_offset(shard: &Rc<BrokerShard>, request: &RemotingCommand) -> RemotingCommand {
    let header: QueueRequestHeader = match decode_header(request) {
        Ok(header) => header,
        Err(response) => return response,
    };
    let (topic, queue_id) = (header.topic.clone(), header.queue_id);
    on_owner(shard, request, &topic, queue_id, move |owner| async move {
        Answer::Offset(owner.store.min_offset(&header.topic, header.queue_id))
    })
    .await
}

pub async fn search_offset_by_timestamp(
    shard: &Rc<BrokerShard>,
    request: &RemotingCommand,
) -> RemotingCommand {
    let header: SearchOffsetRequestHeader = match decode_header(request) {
        Ok(header) => header,
        Err(response) => return response,
    };
    let (topic, queue_id) = (header.topic.clone(), header.queue_id);
    on_owner(shard, request, &topic, queue_id, move |owner| async move {
        let boundary = match header.boundary_type {
            BoundaryType::Lower => Boundary::Lower,
            BoundaryType::Upper => Boundary::Upper,
        };
        match owner
            .store
            .search_offset_by_timestamp(
                &header.topic,
                header.queue_id,
                header.timestamp_ms,
                boundary,
            )
            .await
        {
            Ok(offset) => Answer::Offset(offset),
            Err(error) => Answer::Failed(error_chain(&error)),
        }
    })
    .await
}

pub async fn earliest_msg_store_time(
    shard: &Rc<BrokerShard>,
    request: &RemotingCommand,
) -> RemotingCommand {
    let header: QueueRequestHeader = match decode_header(request) {
        Ok(header) => header,
        Err(response) => return response,
    };
    let (topic, queue_id) = (header.topic.clone(), header.queue_id);
    on_owner(shard, request, &topic, queue_id, move |owner| async move {
        match owner
            .store
            .earliest_msg_store_time(&header.topic, header.queue_id)
            .await
        {
            Ok(timestamp) => Answer::Timestamp(timestamp),
            Err(error) => Answer::Failed(error_chain(&error)),
        }
    })
    .await
}

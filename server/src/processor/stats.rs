//! GET_CONSUME_STATS (208): per queue of each topic a group consumes, the broker's max
//! offset, the group's committed offset and the store time of the last consumed message
//! (protocol.md §2.15), gathered from the shards that own the queues.

use std::collections::BTreeSet;
use std::rc::Rc;

use ringmq_protocol::body::{
    split_offset_table_key, ConsumeStats, JsonBody, MessageQueue, OffsetWrapper,
};
use ringmq_protocol::codes::response_code;
use ringmq_protocol::command::RemotingCommand;
use ringmq_protocol::headers::GetConsumeStatsRequestHeader;

use super::{decode_header, error_chain, error_response, success};
use crate::broker::BrokerShard;

/// Topics that have a committed offset of `group` on any shard.
async fn topics_with_offsets(shard: &Rc<BrokerShard>, group: &str) -> BTreeSet<String> {
    let mut topics = BTreeSet::new();
    for owner in 0..shard.shared.inboxes.shards() {
        let group = group.to_owned();
        let found = shard
            .on_shard(owner, move |owner: Rc<BrokerShard>| async move {
                owner
                    .offsets
                    .borrow()
                    .to_wrapper()
                    .offset_table
                    .keys()
                    .filter_map(|key| split_offset_table_key(key))
                    .filter(|(_, g)| *g == group)
                    .map(|(topic, _)| topic.to_owned())
                    .collect::<Vec<_>>()
            })
            .await
            .unwrap_or_default();
        topics.extend(found);
    }
    topics
}

/// One queue's offsets, read on its owner shard.
async fn queue_offsets(
    shard: &Rc<BrokerShard>,
    group: &str,
    topic: &str,
    queue_id: i32,
) -> OffsetWrapper {
    let owner = shard.owner_of(topic, queue_id);
    let (group, topic) = (group.to_owned(), topic.to_owned());
    shard
        .on_shard(owner, move |owner: Rc<BrokerShard>| async move {
            let broker_offset = owner.store.max_offset(&topic, queue_id);
            let consumer_offset = owner
                .offsets
                .borrow()
                .get(&group, &topic, queue_id)
                .unwrap_or(0)
                .max(0);
            OffsetWrapper {
                broker_offset,
                consumer_offset,
                pull_offset: consumer_offset,
                // Store time of the last consumed message is not tracked yet.
                last_timestamp: 0,
            }
        })
        .await
        .unwrap_or_default()
}

pub async fn consume_stats(shard: &Rc<BrokerShard>, request: &RemotingCommand) -> RemotingCommand {
    let header: GetConsumeStatsRequestHeader = match decode_header(request) {
        Ok(header) => header,
        Err(response) => return response,
    };
    let shared = &shard.shared;
    let group = header.consumer_group.as_str();
    let mut topics: BTreeSet<String> = header.topics().map(str::to_owned).collect();
    if topics.is_empty() {
        if let Some(topic) = header.topic.as_deref().filter(|t| !t.is_empty()) {
            topics.insert(topic.to_owned());
        } else {
            topics = topics_with_offsets(shard, group).await;
            topics.extend(shared.groups.subscribed_topics(group));
        }
    }
    let mut stats = ConsumeStats::default();
    for topic in topics {
        let Some(config) = shared.topics.get(&topic) else {
            continue;
        };
        for queue_id in 0..config.read_queue_nums {
            let offsets = queue_offsets(shard, group, &topic, queue_id).await;
            stats.offset_table.insert(
                MessageQueue {
                    topic: topic.clone(),
                    broker_name: shared.config.broker_name.clone(),
                    queue_id,
                },
                offsets,
            );
        }
    }
    match stats.encode() {
        Ok(bytes) => success(request).with_body(bytes),
        Err(error) => error_response(request, response_code::SYSTEM_ERROR, error_chain(&error)),
    }
}

//! GET_CONSUME_STATS (208): per queue of each topic a group consumes, the broker's max
//! offset, the group's committed offset and the store time of the last consumed message
//! (protocol.md §2.15), gathered from the shards that own the queues. GET_TOPIC_STATS_INFO
//! (202): per queue of a topic its min and max offsets and the store time of its last message.

use std::collections::BTreeSet;
use std::rc::Rc;

use ringmq_protocol::body::{
    ConsumeStats, JsonBody, MessageQueue, OffsetWrapper, TopicOffset, TopicStatsTable,
};
use ringmq_protocol::command::RemotingCommand;
use ringmq_protocol::headers::{GetConsumeStatsRequestHeader, TopicRequestHeader};

use super::{decode_header, success, Answer, Refused};
use crate::shard::Shard;

pub async fn consume_stats(shard: &Rc<Shard>, request: &RemotingCommand) -> Answer {
    let header: GetConsumeStatsRequestHeader = decode_header(request)?;
    let shared = shard.shared();
    let group = header.consumer_group.as_str();
    let mut topics: BTreeSet<String> = header.topics().map(str::to_owned).collect();
    if topics.is_empty() {
        if let Some(topic) = header.topic.as_deref().filter(|t| !t.is_empty()) {
            topics.insert(topic.to_owned());
        } else {
            topics = shard.topics_with_offsets(group).await?;
            topics.extend(shared.groups.subscribed_topics(group));
        }
    }
    let mut stats = ConsumeStats::default();
    for topic in topics {
        let Some(config) = shared.topics.get(&topic) else {
            continue;
        };
        for queue_id in 0..config.read_queue_nums {
            let state = shard.queue_state(&topic, queue_id, Some(group)).await?;
            let consumer_offset = state.consumer_offset.unwrap_or(0).max(0);
            let offsets = OffsetWrapper {
                broker_offset: state.max_offset,
                consumer_offset,
                pull_offset: consumer_offset,
                // Store time of the last consumed message is not tracked yet.
                last_timestamp: 0,
            };
            stats.offset_table.insert(
                MessageQueue {
                    topic: topic.clone(),
                    broker_name: shard.broker_name(),
                    queue_id,
                },
                offsets,
            );
        }
    }
    let bytes = stats
        .encode()
        .map_err(Refused::body("encoding the consume stats"))?;
    Ok(success(request).with_body(bytes))
}

/// GET_TOPIC_STATS_INFO (mqadmin topicStatus): each write queue's min and max offsets and the
/// store time of its last message (0 when empty), as RocketMQ answers; TOPIC_NOT_EXIST for a
/// topic the broker lacks.
pub async fn topic_stats(shard: &Rc<Shard>, request: &RemotingCommand) -> Answer {
    let header: TopicRequestHeader = decode_header(request)?;
    let topic = header.topic;
    let Some(config) = shard.shared().topics.get(&topic) else {
        return Err(Refused::TopicNotExist { topic });
    };
    let mut stats = TopicStatsTable::default();
    for queue_id in 0..config.write_queue_nums {
        let state = shard.queue_state(&topic, queue_id, None).await?;
        let last_update_timestamp = if state.max_offset > 0 {
            shard
                .msg_store_time(&topic, queue_id, state.max_offset - 1)
                .await?
        } else {
            0
        };
        stats.offset_table.insert(
            MessageQueue {
                topic: topic.clone(),
                broker_name: shard.broker_name(),
                queue_id,
            },
            TopicOffset {
                min_offset: state.min_offset,
                max_offset: state.max_offset,
                last_update_timestamp,
            },
        );
    }
    let bytes = stats
        .encode()
        .map_err(Refused::body("encoding the topic stats"))?;
    Ok(success(request).with_body(bytes))
}

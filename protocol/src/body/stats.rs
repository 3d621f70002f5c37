//! Admin statistics bodies: `KVTable` (GET_BROKER_RUNTIME_INFO 28),
//! `ConsumeStats` (GET_CONSUME_STATS 208) and `TopicStatsTable` (GET_TOPIC_STATS_INFO 202).
//!
//! `ConsumeStats.offsetTable` is a Java `Map<MessageQueue, OffsetWrapper>`,
//! which fastjson writes with **object keys**; `mqadmin` reads only that form,
//! so [`ConsumeStats`] is written with
//! [`write_object_keyed_map`](super::fastjson::write_object_keyed_map) and has
//! no `Serialize` impl that could silently write anything else.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::fastjson::write_object_keyed_map;
use super::message_queue::MessageQueue;
use super::{decode_lenient, json_body, BodyError, JsonBody};

/// A string → string table. All values are strings, TPS values included
/// (`"12.3 11.0 10.9"`); numbers sent by a peer are read as their text.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct KvTable {
    /// The entries.
    pub table: BTreeMap<String, String>,
}

json_body!(KvTable => "KVTable");

/// Offsets of one queue for one consumer group (Java `OffsetWrapper`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct OffsetWrapper {
    /// The queue's max offset.
    pub broker_offset: i64,
    /// The group's committed offset (≥ 0).
    pub consumer_offset: i64,
    /// max(committed, next offset of the group's last pull).
    pub pull_offset: i64,
    /// Store time (ms) of the message at `consumer_offset - 1`, 0 if none.
    pub last_timestamp: i64,
}

/// Consume progress of a group on one broker.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ConsumeStats {
    /// Consumed messages per second.
    pub consume_tps: f64,
    /// Per queue offsets; keys are written as JSON objects.
    pub offset_table: BTreeMap<MessageQueue, OffsetWrapper>,
}

impl ConsumeStats {
    /// Sum over queues of `broker_offset - consumer_offset` (Java `computeTotalDiff`).
    pub fn total_diff(&self) -> i64 {
        self.offset_table
            .values()
            .map(|w| w.broker_offset.saturating_sub(w.consumer_offset))
            .fold(0_i64, i64::saturating_add)
    }
}

impl JsonBody for ConsumeStats {
    const NAME: &'static str = "ConsumeStats";

    /// Reads the object-keyed form (and anything else fastjson reads).
    fn decode(bytes: &[u8]) -> Result<Self, BodyError> {
        decode_lenient(Self::NAME, bytes)
    }

    /// `{"consumeTps":1.5,"offsetTable":{{"topic":…,"brokerName":…,"queueId":0}:{…},…}}`.
    fn encode(&self) -> Result<Vec<u8>, BodyError> {
        let encode_err = |source| BodyError::Encode {
            body: Self::NAME,
            source,
        };
        let mut out = Vec::with_capacity(64 + self.offset_table.len() * 128);
        out.extend_from_slice(b"{\"consumeTps\":");
        // A non-finite TPS would be written as null, which Java cannot read
        // into a double; write 0 instead.
        let tps = if self.consume_tps.is_finite() {
            self.consume_tps
        } else {
            0.0
        };
        serde_json::to_writer(&mut out, &tps).map_err(encode_err)?;
        out.extend_from_slice(b",\"offsetTable\":");
        write_object_keyed_map(&mut out, &self.offset_table).map_err(encode_err)?;
        out.push(b'}');
        Ok(out)
    }
}

/// Offsets of one queue of a topic (Java `TopicOffset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TopicOffset {
    /// The queue's min offset.
    pub min_offset: i64,
    /// The queue's max offset.
    pub max_offset: i64,
    /// Store time (ms) of the message at `max_offset - 1`, 0 if the queue is empty.
    pub last_update_timestamp: i64,
}

/// Per queue offsets of a topic on one broker (Java `TopicStatsTable`, mqadmin topicStatus).
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TopicStatsTable {
    /// Per queue offsets; keys are written as JSON objects.
    pub offset_table: BTreeMap<MessageQueue, TopicOffset>,
}

impl JsonBody for TopicStatsTable {
    const NAME: &'static str = "TopicStatsTable";

    /// Reads the object-keyed form (and anything else fastjson reads).
    fn decode(bytes: &[u8]) -> Result<Self, BodyError> {
        decode_lenient(Self::NAME, bytes)
    }

    /// `{"offsetTable":{{"topic":…,"brokerName":…,"queueId":0}:{"minOffset":…},…}}`.
    fn encode(&self) -> Result<Vec<u8>, BodyError> {
        let mut out = Vec::with_capacity(32 + self.offset_table.len() * 128);
        out.extend_from_slice(b"{\"offsetTable\":");
        write_object_keyed_map(&mut out, &self.offset_table).map_err(|source| {
            BodyError::Encode {
                body: Self::NAME,
                source,
            }
        })?;
        out.push(b'}');
        Ok(out)
    }
}

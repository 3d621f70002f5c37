//! Offset files and their slave-sync bodies:
//!
//! - `consumerOffset.json` / GET_ALL_CONSUMER_OFFSET (43):
//!   [`ConsumerOffsetSerializeWrapper`], `"topic@group"` → queue id → offset;
//! - `delayOffset.json` / GET_ALL_DELAY_OFFSET (45):
//!   [`DelayOffsetSerializeWrapper`], delay level → offset;
//! - a broadcasting client's local `offsets.json`: [`OffsetSerializeWrapper`],
//!   `MessageQueue` → offset with object keys.
//!
//! Java writes the integer keys unquoted (`{0:1532}`); decoding accepts quoted
//! or unquoted keys and pretty or compact layout. We write quoted keys (every
//! fastjson reader accepts them), except the broadcast file, whose object keys
//! have no standard-JSON form.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::fastjson::write_object_keyed_map;
use super::message_queue::MessageQueue;
use super::topic::DataVersion;
use super::{decode_lenient, json_body, BodyError, JsonBody};

/// The key of [`ConsumerOffsetSerializeWrapper::offset_table`]: `topic@group`.
pub fn offset_table_key(topic: &str, group: &str) -> String {
    format!("{topic}@{group}")
}

/// Splits a `topic@group` key at its first `@` (topic names cannot contain
/// `@`; group names in the wild sometimes do). `None` without an `@`.
pub fn split_offset_table_key(key: &str) -> Option<(&str, &str)> {
    key.split_once('@')
}

/// Committed consumer offsets of a broker (`consumerOffset.json`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ConsumerOffsetSerializeWrapper {
    /// `topic@group` → queue id → next offset to consume.
    pub offset_table: BTreeMap<String, BTreeMap<i32, i64>>,
    /// 5.x brokers version the table; absent in 4.x files.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_version: Option<DataVersion>,
}

impl ConsumerOffsetSerializeWrapper {
    /// Indented standard JSON for the file on disk (Java writes it pretty too).
    pub fn encode_pretty(&self) -> Result<Vec<u8>, BodyError> {
        serde_json::to_vec_pretty(self).map_err(|source| BodyError::Encode {
            body: Self::NAME,
            source,
        })
    }
}

/// Progress of the delay-level queues of `SCHEDULE_TOPIC_XXXX` (`delayOffset.json`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DelayOffsetSerializeWrapper {
    /// Delay level → ConsumeQueue offset of queue `level - 1`.
    pub offset_table: BTreeMap<i32, i64>,
    /// 5.x brokers version the table; absent in 4.x files.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_version: Option<DataVersion>,
}

json_body!(
    ConsumerOffsetSerializeWrapper => "ConsumerOffsetSerializeWrapper",
    DelayOffsetSerializeWrapper => "DelayOffsetSerializeWrapper",
);

/// A broadcasting client's local offset file
/// (`~/.rocketmq_offsets/<clientId>/<group>/offsets.json`, Java
/// `OffsetSerializeWrapper`): `{"offsetTable":{{"brokerName":…,"queueId":0,"topic":…}:123}}`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct OffsetSerializeWrapper {
    /// Queue → next offset to consume.
    pub offset_table: BTreeMap<MessageQueue, i64>,
}

impl JsonBody for OffsetSerializeWrapper {
    const NAME: &'static str = "OffsetSerializeWrapper";

    fn decode(bytes: &[u8]) -> Result<Self, BodyError> {
        decode_lenient(Self::NAME, bytes)
    }

    /// Writes the object-keyed form Java's `LocalFileOffsetStore` reads.
    fn encode(&self) -> Result<Vec<u8>, BodyError> {
        let mut out = Vec::with_capacity(32 + self.offset_table.len() * 80);
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

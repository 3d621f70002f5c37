//! Messages as the caller sees them: [`Message`] to send, [`MessageExt`] received (decoded
//! from pull or VIEW_MESSAGE_BY_ID bodies, protocol.md §3.2), and the zlib body compression of
//! §3.3.
//!
//! Decoding a pull body follows the Java client: records are decoded in order and decoding
//! stops at the first bad one (what came before is kept); compressed bodies are inflated and
//! lose their COMPRESSED bit; a message from a `%RETRY%` topic gets its original topic back
//! from `RETRY_TOPIC`; messages are re-filtered by tag string when the subscription names tags.

use std::io::{Read, Write};
use std::net::SocketAddr;

use bytes::Bytes;
use flate2::read::ZlibDecoder;
use flate2::write::ZlibEncoder;
use flate2::Compression;
use ringmq_protocol::body::MessageQueue;
use ringmq_protocol::message::properties::keys;
use ringmq_protocol::message::sysflag::{CompressionType, COMPRESSED_FLAG, COMPRESSION_TYPE_MASK};
use ringmq_protocol::message::{iter_records, Properties, RecordView};

use crate::error::{ClientError, Result};

/// Prefix of a group's retry topic: `%RETRY%<group>`.
pub const RETRY_GROUP_TOPIC_PREFIX: &str = "%RETRY%";

/// Separator of several keys in the `KEYS` property.
pub const KEY_SEPARATOR: &str = " ";

/// Largest inflated body accepted from a compressed message (protects against zip bombs):
/// 4 MiB is the broker's own body limit, so 64 MiB is far above anything legitimate.
pub const MAX_INFLATED_BODY_BYTES: u64 = 64 * 1024 * 1024;

/// A message to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Target topic.
    pub topic: String,
    /// Body bytes.
    pub body: Bytes,
    /// User flag, stored as-is.
    pub flag: i32,
    /// Properties (tags, keys, user properties).
    pub properties: Properties,
}

impl Message {
    /// A message with a body and no properties.
    pub fn new(topic: impl Into<String>, body: impl Into<Bytes>) -> Self {
        Message {
            topic: topic.into(),
            body: body.into(),
            flag: 0,
            properties: Properties::new(),
        }
    }

    /// Sets the tag (`TAGS`).
    #[must_use]
    pub fn with_tags(mut self, tags: impl Into<String>) -> Self {
        self.properties.insert(keys::TAGS, tags);
        self
    }

    /// Sets the business keys (`KEYS`, space separated).
    #[must_use]
    pub fn with_keys<I, S>(mut self, keys_iter: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let joined: Vec<String> = keys_iter
            .into_iter()
            .map(|k| k.as_ref().to_owned())
            .collect();
        self.properties
            .insert(keys::KEYS, joined.join(KEY_SEPARATOR));
        self
    }

    /// Sets a user property.
    #[must_use]
    pub fn with_property(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.properties.insert(key, value);
        self
    }

    /// Sets the delay level (1..=18) for a delayed message.
    #[must_use]
    pub fn with_delay_level(mut self, level: i32) -> Self {
        self.properties.insert(keys::DELAY, level.to_string());
        self
    }

    /// Sets the user flag.
    #[must_use]
    pub fn with_flag(mut self, flag: i32) -> Self {
        self.flag = flag;
        self
    }

    /// Sets `WAIT` (wait for flush/replication before the broker answers; default true).
    #[must_use]
    pub fn with_wait_store_msg_ok(mut self, wait: bool) -> Self {
        self.properties
            .insert(keys::WAIT, if wait { "true" } else { "false" });
        self
    }

    /// The tag, if set.
    pub fn tags(&self) -> Option<&str> {
        self.properties.tags()
    }

    /// The keys, if set.
    pub fn keys(&self) -> Vec<&str> {
        self.properties.keys().collect()
    }
}

/// A received message with its broker-side metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageExt {
    /// Topic (the original topic for a message redelivered through `%RETRY%group`).
    pub topic: String,
    /// Broker name of the queue it was pulled from.
    pub broker_name: String,
    /// Queue id.
    pub queue_id: i32,
    /// Logical offset in the queue.
    pub queue_offset: i64,
    /// CommitLog physical offset (the argument of VIEW_MESSAGE_BY_ID and send-back).
    pub commit_log_offset: i64,
    /// Body, inflated if it was stored compressed.
    pub body: Bytes,
    /// User flag.
    pub flag: i32,
    /// Message sysFlag as stored, minus the COMPRESSED bit once inflated.
    pub sys_flag: i32,
    /// Properties.
    pub properties: Properties,
    /// Producer timestamp, ms.
    pub born_timestamp: i64,
    /// Producer address as the broker saw it.
    pub born_host: SocketAddr,
    /// Broker timestamp, ms.
    pub store_timestamp: i64,
    /// Broker address (`ip:port`) storing it.
    pub store_host: SocketAddr,
    /// How many times it has been redelivered.
    pub reconsume_times: i32,
    /// The offset msgId (store host + physical offset).
    pub offset_msg_id: String,
}

impl MessageExt {
    /// The client message id: UNIQ_KEY if present, else the offset msgId (Java `getMsgId`).
    pub fn msg_id(&self) -> &str {
        self.properties.uniq_key().unwrap_or(&self.offset_msg_id)
    }

    /// The tag, if any.
    pub fn tags(&self) -> Option<&str> {
        self.properties.tags()
    }

    /// The keys.
    pub fn keys(&self) -> Vec<&str> {
        self.properties.keys().collect()
    }

    /// A property.
    pub fn property(&self, key: &str) -> Option<&str> {
        self.properties.get(key)
    }

    /// The queue this message was read from.
    pub fn queue(&self) -> MessageQueue {
        MessageQueue::new(self.topic.clone(), self.broker_name.clone(), self.queue_id)
    }

    /// Builds a message from a decoded record pulled from `broker_name`.
    pub fn from_record(view: &RecordView<'_>, broker_name: &str) -> Result<Self> {
        let properties = Properties::decode(view.properties_str()?);
        let mut sys_flag = view.sys_flag;
        let body = if sys_flag & COMPRESSED_FLAG != 0 {
            sys_flag &= !COMPRESSED_FLAG;
            Bytes::from(inflate(view.body, view.sys_flag)?)
        } else {
            Bytes::copy_from_slice(view.body)
        };
        Ok(MessageExt {
            topic: view.topic.to_owned(),
            broker_name: broker_name.to_owned(),
            queue_id: view.queue_id,
            queue_offset: view.queue_offset,
            commit_log_offset: view.physical_offset,
            body,
            flag: view.flag,
            sys_flag,
            properties,
            born_timestamp: view.born_timestamp,
            born_host: view.born_host,
            store_timestamp: view.store_timestamp,
            store_host: view.store_host,
            reconsume_times: view.reconsume_times,
            offset_msg_id: view.offset_msg_id().encode(),
        })
    }
}

/// Inflates a compressed body of a message with `sys_flag` (zlib; LZ4 and ZSTD are refused).
pub fn inflate(body: &[u8], sys_flag: i32) -> Result<Vec<u8>> {
    if CompressionType::of(sys_flag) != Some(CompressionType::Zlib) {
        return Err(ClientError::Compression(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            format!(
                "compression type bits {:#x} are not supported (only zlib)",
                sys_flag & COMPRESSION_TYPE_MASK
            ),
        )));
    }
    let mut out = Vec::with_capacity(body.len().saturating_mul(4));
    ZlibDecoder::new(body)
        .take(MAX_INFLATED_BODY_BYTES + 1)
        .read_to_end(&mut out)
        .map_err(ClientError::Compression)?;
    if out.len() as u64 > MAX_INFLATED_BODY_BYTES {
        return Err(ClientError::Compression(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "inflated body exceeds 64 MiB",
        )));
    }
    Ok(out)
}

/// zlib-compresses `body` at `level` (Java's producer uses 5).
pub fn deflate(body: &[u8], level: u32) -> Result<Vec<u8>> {
    let mut encoder = ZlibEncoder::new(
        Vec::with_capacity(body.len() / 2 + 64),
        Compression::new(level),
    );
    encoder.write_all(body).map_err(ClientError::Compression)?;
    encoder.finish().map_err(ClientError::Compression)
}

/// Decodes a pull body into messages of queue `mq`. Decoding stops at the first bad record, as
/// the Java client does; the records before it are returned. When `tags` is non-empty, only
/// messages whose `TAGS` is one of them are kept (the broker filtered by hash only).
pub fn decode_pull_body(body: &[u8], mq: &MessageQueue, tags: &[String]) -> Vec<MessageExt> {
    let mut out = Vec::new();
    for record in iter_records(body) {
        let view = match record {
            Ok(view) => view,
            Err(e) => {
                tracing::warn!(error = %e, queue = ?mq, "undecodable record in pull body; stopping");
                break;
            }
        };
        let mut msg = match MessageExt::from_record(&view, &mq.broker_name) {
            Ok(msg) => msg,
            Err(e) => {
                tracing::warn!(error = %e, queue = ?mq, "undecodable message in pull body; stopping");
                break;
            }
        };
        if !tags.is_empty() && !msg.tags().is_some_and(|t| tags.iter().any(|s| s == t)) {
            continue;
        }
        // A message pulled from %RETRY%group is shown under its original topic.
        if let Some(original) = msg.property(keys::RETRY_TOPIC).map(str::to_owned) {
            if msg.topic.starts_with(RETRY_GROUP_TOPIC_PREFIX) {
                msg.topic = original;
            }
        }
        out.push(msg);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deflate_then_inflate_is_identity_and_zlib_framed() {
        let body: Vec<u8> = (0..10_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        let packed = deflate(&body, 5).unwrap();
        assert_eq!(packed.first(), Some(&0x78), "zlib header, not raw deflate");
        assert_eq!(inflate(&packed, 0x301).unwrap(), body);
    }

    #[test]
    fn inflate_refuses_lz4() {
        let packed = deflate(b"abc", 5).unwrap();
        assert!(inflate(&packed, 0x101).is_err());
    }

    #[test]
    fn keys_are_joined_with_a_space() {
        let m = Message::new("T", "b").with_keys(["k1", "k2"]);
        assert_eq!(m.keys(), vec!["k1", "k2"]);
        assert_eq!(m.properties.get(keys::KEYS), Some("k1 k2"));
    }
}

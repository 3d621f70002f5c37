//! The message properties text of protocol.md §3.4: `key \u{1} value \u{2}` repeated.
//!
//! Decoding follows Java's `MessageDecoder.string2messageProperties` exactly: split on
//! `\u{2}`, split each segment at its first `\u{1}`, keep the pair only when the key and the
//! value are both non-empty (Java's "segment ≥ 3 chars, separator neither first nor last").
//! A later duplicate key replaces an earlier one, as Java's map does. Decoding never fails:
//! malformed segments are dropped, as Java drops them.
//!
//! Encoding refuses what would not read back as the same pair: an empty key, a key holding
//! either separator, a value holding `\u{2}` (a value may hold `\u{1}`, since the reader splits
//! at the first one). An empty value is written as Java writes it, and a reader drops it.

use std::fmt;

/// Separates a key from its value.
pub const NAME_VALUE_SEPARATOR: char = '\u{1}';
/// Ends every pair.
pub const PROPERTY_SEPARATOR: char = '\u{2}';
const NAME_VALUE_SEPARATOR_BYTE: u8 = 1;
const PROPERTY_SEPARATOR_BYTE: u8 = 2;

/// Well-known property keys (`MessageConst`, protocol.md §3.5) a broker or client uses.
pub mod keys {
    /// Tag; its Java `String.hashCode` is the ConsumeQueue tagsCode.
    pub const TAGS: &str = "TAGS";
    /// Business keys, space separated.
    pub const KEYS: &str = "KEYS";
    /// Client-generated message id.
    pub const UNIQ_KEY: &str = "UNIQ_KEY";
    /// `"true"`/`"false"`: wait for flush/replication before replying (absent ⇒ true).
    pub const WAIT: &str = "WAIT";
    /// Delay level; `-1` when routed to the DLQ.
    pub const DELAY: &str = "DELAY";
    /// Original topic of a retried message.
    pub const RETRY_TOPIC: &str = "RETRY_TOPIC";
    /// Original topic of a message parked in a schedule or half topic.
    pub const REAL_TOPIC: &str = "REAL_TOPIC";
    /// Original queue id of a message parked in a schedule or half topic.
    pub const REAL_QID: &str = "REAL_QID";
    /// `"true"` for transaction half messages.
    pub const TRAN_MSG: &str = "TRAN_MSG";
    /// Producer group (transactions).
    pub const PGROUP: &str = "PGROUP";
    /// Client only: queue min offset from the pull response.
    pub const MIN_OFFSET: &str = "MIN_OFFSET";
    /// Client only: queue max offset from the pull response.
    pub const MAX_OFFSET: &str = "MAX_OFFSET";
    /// Client only: consumption start time.
    pub const CONSUME_START_TIME: &str = "CONSUME_START_TIME";
    /// Retry count on a fallback re-send.
    pub const RECONSUME_TIME: &str = "RECONSUME_TIME";
    /// Max retry count on a fallback re-send.
    pub const MAX_RECONSUME_TIMES: &str = "MAX_RECONSUME_TIMES";
    /// First msgId of a retried message.
    pub const ORIGIN_MESSAGE_ID: &str = "ORIGIN_MESSAGE_ID";
    /// Cluster name of the storing broker.
    pub const CLUSTER: &str = "CLUSTER";
    /// Trace switch (4.x adds it to messages).
    pub const TRACE_ON: &str = "TRACE_ON";
    /// Region (4.x adds it to messages).
    pub const MSG_REGION: &str = "MSG_REGION";
    /// Transaction id.
    pub const TRANSACTION_ID: &str = "__transactionId__";
    /// Inner-batch message count.
    pub const INNER_NUM: &str = "INNER_NUM";
    /// Inner-batch base offset.
    pub const INNER_BASE: &str = "INNER_BASE";
    /// Optional whole-record CRC (§3.1); ringmq leaves it off.
    pub const CRC32: &str = "__CRC32#";
    /// Queue offset of a transaction's half message.
    pub const TRAN_PREPARED_QUEUE_OFFSET: &str = "TRAN_PREPARED_QUEUE_OFFSET";
    /// Number of transaction checks so far.
    pub const TRANSACTION_CHECK_TIMES: &str = "TRANSACTION_CHECK_TIMES";
    /// Seconds before the first transaction check.
    pub const CHECK_IMMUNITY_TIME_IN_SECONDS: &str = "CHECK_IMMUNITY_TIME_IN_SECONDS";
    /// Sharding key of ordered messages.
    pub const SHARDING_KEY: &str = "__SHARDINGKEY";
    /// Request/reply correlation id.
    pub const CORRELATION_ID: &str = "CORRELATION_ID";
    /// Request/reply: the client to answer.
    pub const REPLY_TO_CLIENT: &str = "REPLY_TO_CLIENT";
    /// Request/reply time to live.
    pub const TTL: &str = "TTL";
    /// Message type (e.g. reply).
    pub const MSG_TYPE: &str = "MSG_TYPE";
    /// Original topic of a DLQ message.
    pub const DLQ_ORIGIN_TOPIC: &str = "DLQ_ORIGIN_TOPIC";
    /// Original message id of a DLQ message.
    pub const DLQ_ORIGIN_MESSAGE_ID: &str = "DLQ_ORIGIN_MESSAGE_ID";
    /// Timer: deliver at this ms timestamp.
    pub const TIMER_DELIVER_MS: &str = "TIMER_DELIVER_MS";
    /// Timer: deliver after this many seconds.
    pub const TIMER_DELAY_SEC: &str = "TIMER_DELAY_SEC";
    /// Timer: deliver after this many ms.
    pub const TIMER_DELAY_MS: &str = "TIMER_DELAY_MS";
    /// Old-style start delivery time (ms).
    pub const START_DELIVER_TIME: &str = "__STARTDELIVERTIME";
    /// Timer: the ms timestamp a timed message is due (set by the broker when it parks it).
    pub const TIMER_OUT_MS: &str = "TIMER_OUT_MS";
    /// ringmq: when the broker's schedule next looks at a parked copy (ms timestamp); the
    /// ConsumeQueue tagsCode of the copy ([`crate::message::tag_hash::queue_tags_code`]).
    pub const SCHEDULE_AT_MS: &str = "SCHEDULE_AT_MS";
}

/// A copy of `text` without the pairs whose key is in `drop_keys` (pairs kept in order).
pub fn without(text: &str, drop_keys: &[&str]) -> String {
    let mut out = String::with_capacity(text.len());
    for (key, value) in pairs(text) {
        if drop_keys.contains(&key) {
            continue;
        }
        // The pairs came out of a well-formed text, so they go back in unchanged.
        out.push_str(key);
        out.push(NAME_VALUE_SEPARATOR);
        out.push_str(value);
        out.push(PROPERTY_SEPARATOR);
    }
    out
}

/// Why a properties text could not be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PropertiesError {
    /// A key contains `\u{1}` or `\u{2}`, or a value `\u{2}`: it would not read back as one pair.
    #[error("property {key:?} contains a separator character in its {part}")]
    Separator { key: String, part: &'static str },
    /// An empty key cannot be read back.
    #[error("property key is empty")]
    EmptyKey,
}

/// Iterates the pairs of a properties text in order, duplicates included (see module docs).
#[derive(Debug, Clone)]
pub struct PairIter<'a> {
    rest: &'a [u8],
}

/// The pairs of `text` in order, duplicates included, malformed segments dropped.
pub fn pairs_bytes(text: &[u8]) -> PairIter<'_> {
    PairIter { rest: text }
}

impl<'a> Iterator for PairIter<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        while !self.rest.is_empty() {
            let (segment, rest) = match self.rest.iter().position(|&b| b == PROPERTY_SEPARATOR_BYTE)
            {
                Some(i) => (&self.rest[..i], &self.rest[i + 1..]),
                None => (self.rest, &[][..]),
            };
            self.rest = rest;
            if let Some(sep) = segment.iter().position(|&b| b == NAME_VALUE_SEPARATOR_BYTE) {
                let (key, value) = (&segment[..sep], &segment[sep + 1..]);
                if !key.is_empty() && !value.is_empty() {
                    return Some((key, value));
                }
            }
        }
        None
    }
}

/// The pairs of `text` in order, duplicates included (see [`pairs_bytes`]).
pub fn pairs(text: &str) -> impl Iterator<Item = (&str, &str)> {
    // Separators are ASCII, so splitting UTF-8 on them leaves UTF-8 on both sides.
    pairs_bytes(text.as_bytes())
        .filter_map(|(k, v)| Some((std::str::from_utf8(k).ok()?, std::str::from_utf8(v).ok()?)))
}

/// The value of `key` in `text` (the last occurrence, as Java's map keeps), without decoding
/// the rest.
pub fn find_bytes<'a>(text: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    pairs_bytes(text)
        .filter(|(k, _)| *k == key)
        .last()
        .map(|(_, v)| v)
}

/// The value of `key` in `text` (the last occurrence).
pub fn find<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    find_bytes(text.as_bytes(), key.as_bytes()).and_then(|v| std::str::from_utf8(v).ok())
}

/// Java's `Boolean.parseBoolean`: true only for "true", any case.
fn java_parse_bool(s: &str) -> bool {
    s.eq_ignore_ascii_case("true")
}

/// Whether the producer wants the reply after flush/replication: `WAIT` absent ⇒ true,
/// else Java's `Boolean.parseBoolean` of it.
pub fn wait_store_msg_ok(text: &str) -> bool {
    find(text, keys::WAIT).is_none_or(java_parse_bool)
}

/// The business keys of a `KEYS` value (space separated; empty pieces skipped).
pub fn split_keys(keys_value: &str) -> impl Iterator<Item = &str> {
    keys_value.split(' ').filter(|k| !k.is_empty())
}

fn check_pair(key: &str, value: &str) -> Result<(), PropertiesError> {
    if key.is_empty() {
        return Err(PropertiesError::EmptyKey);
    }
    if key.contains([NAME_VALUE_SEPARATOR, PROPERTY_SEPARATOR]) {
        return Err(PropertiesError::Separator {
            key: key.to_owned(),
            part: "key",
        });
    }
    // A value may hold `\u{1}`: the reader splits at the first one, which is the key's.
    if value.contains(PROPERTY_SEPARATOR) {
        return Err(PropertiesError::Separator {
            key: key.to_owned(),
            part: "value",
        });
    }
    Ok(())
}

/// Appends `key \u{1} value \u{2}` to an encoded text, first closing its last pair with
/// `\u{2}` if it lacks one (as the 4.x broker does when it joins batch properties).
pub fn append(text: &mut String, key: &str, value: &str) -> Result<(), PropertiesError> {
    check_pair(key, value)?;
    if !text.is_empty() && !text.ends_with(PROPERTY_SEPARATOR) {
        text.push(PROPERTY_SEPARATOR);
    }
    text.reserve(key.len() + value.len() + 2);
    text.push_str(key);
    text.push(NAME_VALUE_SEPARATOR);
    text.push_str(value);
    text.push(PROPERTY_SEPARATOR);
    Ok(())
}

/// Appends a whole encoded text `more` to `text`, closing `text`'s last pair with `\u{2}` first
/// if it lacks one: how a 4.x broker adds the batch-level properties to each inner message.
pub fn join(text: &mut String, more: &str) {
    if more.is_empty() {
        return;
    }
    if !text.is_empty() && !text.ends_with(PROPERTY_SEPARATOR) {
        text.push(PROPERTY_SEPARATOR);
    }
    text.push_str(more);
}

/// Decoded properties: one value per key, in first-seen order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Properties {
    entries: Vec<(String, String)>,
}

impl Properties {
    /// No properties.
    pub fn new() -> Self {
        Self::default()
    }

    /// Decodes a properties text (never fails; see module docs).
    pub fn decode(text: &str) -> Self {
        let mut props = Self::new();
        for (k, v) in pairs(text) {
            props.insert(k, v);
        }
        props
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Sets `key` to `value`, replacing the old value in place; returns the old value.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<String>) -> Option<String> {
        let (key, value) = (key.into(), value.into());
        match self.entries.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => Some(std::mem::replace(v, value)),
            None => {
                self.entries.push((key, value));
                None
            }
        }
    }

    /// Removes `key`; returns its value.
    pub fn remove(&mut self, key: &str) -> Option<String> {
        let i = self.entries.iter().position(|(k, _)| k == key)?;
        Some(self.entries.remove(i).1)
    }

    /// Number of pairs.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no pairs.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The pairs in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The `TAGS` property.
    pub fn tags(&self) -> Option<&str> {
        self.get(keys::TAGS)
    }

    /// The business keys of the `KEYS` property.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        split_keys(self.get(keys::KEYS).unwrap_or_default())
    }

    /// The `UNIQ_KEY` property.
    pub fn uniq_key(&self) -> Option<&str> {
        self.get(keys::UNIQ_KEY)
    }

    /// `WAIT` absent ⇒ true, else Java's `Boolean.parseBoolean` of it.
    pub fn wait_store_msg_ok(&self) -> bool {
        self.get(keys::WAIT).is_none_or(java_parse_bool)
    }

    /// Appends the encoded text to `out`.
    pub fn encode_into(&self, out: &mut String) -> Result<(), PropertiesError> {
        for (k, v) in &self.entries {
            append(out, k, v)?;
        }
        Ok(())
    }

    /// The encoded text.
    pub fn encode(&self) -> Result<String, PropertiesError> {
        let mut out = String::with_capacity(
            self.entries
                .iter()
                .map(|(k, v)| k.len() + v.len() + 2)
                .sum(),
        );
        self.encode_into(&mut out)?;
        Ok(out)
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Properties {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut props = Self::new();
        for (k, v) in iter {
            props.insert(k, v);
        }
        props
    }
}

impl fmt::Display for Properties {
    /// Human-readable `k=v, k=v` (not the wire encoding).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (k, v)) in self.entries.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{k}={v}")?;
        }
        Ok(())
    }
}

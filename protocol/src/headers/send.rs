//! SEND_MESSAGE (10), SEND_MESSAGE_V2 (310) and SEND_BATCH_MESSAGE (320) headers
//! (protocol.md §2.3).
//!
//! The three codes carry the same logical header. SEND_MESSAGE spells the keys with the Java
//! field names (`producerGroup`, `topic`, …); SEND_MESSAGE_V2 and SEND_BATCH_MESSAGE use the
//! one-letter keys `a`…`n` of `SendMessageRequestHeaderV2` to save bytes. The Java broker
//! decodes V2 and converts it to V1; here one struct, [`SendMessageRequestHeader`], is read from
//! and written to either spelling, losslessly ([`V1_TO_V2_KEYS`] is the mapping), and
//! [`SendMessageRequestHeader::decode_for_code`] picks the spelling from the request code.

use crate::codes::request_code;
use crate::command::ExtFields;
use crate::ext::{
    bool_or, optional_i32, optional_str, put, put_opt, required_i32, required_i64, required_str,
    CommandHeader, HeaderError,
};

/// The extFields keys of one spelling of the send header.
struct SendKeys {
    producer_group: &'static str,
    topic: &'static str,
    default_topic: &'static str,
    default_topic_queue_nums: &'static str,
    queue_id: &'static str,
    sys_flag: &'static str,
    born_timestamp: &'static str,
    flag: &'static str,
    properties: &'static str,
    reconsume_times: &'static str,
    unit_mode: &'static str,
    max_reconsume_times: &'static str,
    batch: &'static str,
    broker_name: &'static str,
}

/// SEND_MESSAGE (V1) keys: the Java field names; the broker name comes from the base class
/// `RpcRequestHeader` as `bname`.
const V1_KEYS: SendKeys = SendKeys {
    producer_group: "producerGroup",
    topic: "topic",
    default_topic: "defaultTopic",
    default_topic_queue_nums: "defaultTopicQueueNums",
    queue_id: "queueId",
    sys_flag: "sysFlag",
    born_timestamp: "bornTimestamp",
    flag: "flag",
    properties: "properties",
    reconsume_times: "reconsumeTimes",
    unit_mode: "unitMode",
    max_reconsume_times: "maxReconsumeTimes",
    batch: "batch",
    broker_name: "bname",
};

/// SEND_MESSAGE_V2 / SEND_BATCH_MESSAGE keys.
const V2_KEYS: SendKeys = SendKeys {
    producer_group: "a",
    topic: "b",
    default_topic: "c",
    default_topic_queue_nums: "d",
    queue_id: "e",
    sys_flag: "f",
    born_timestamp: "g",
    flag: "h",
    properties: "i",
    reconsume_times: "j",
    unit_mode: "k",
    max_reconsume_times: "l",
    batch: "m",
    broker_name: "n",
};

/// Every V1 key with its V2 counterpart (protocol.md §2.3 table).
pub const V1_TO_V2_KEYS: &[(&str, &str)] = &[
    (V1_KEYS.producer_group, V2_KEYS.producer_group),
    (V1_KEYS.topic, V2_KEYS.topic),
    (V1_KEYS.default_topic, V2_KEYS.default_topic),
    (
        V1_KEYS.default_topic_queue_nums,
        V2_KEYS.default_topic_queue_nums,
    ),
    (V1_KEYS.queue_id, V2_KEYS.queue_id),
    (V1_KEYS.sys_flag, V2_KEYS.sys_flag),
    (V1_KEYS.born_timestamp, V2_KEYS.born_timestamp),
    (V1_KEYS.flag, V2_KEYS.flag),
    (V1_KEYS.properties, V2_KEYS.properties),
    (V1_KEYS.reconsume_times, V2_KEYS.reconsume_times),
    (V1_KEYS.unit_mode, V2_KEYS.unit_mode),
    (V1_KEYS.max_reconsume_times, V2_KEYS.max_reconsume_times),
    (V1_KEYS.batch, V2_KEYS.batch),
    (V1_KEYS.broker_name, V2_KEYS.broker_name),
];

/// The request header of SEND_MESSAGE, SEND_MESSAGE_V2 and SEND_BATCH_MESSAGE.
///
/// [`CommandHeader`] reads and writes the V1 spelling; [`Self::from_v2_ext`] /
/// [`Self::write_v2_ext`] the V2 one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendMessageRequestHeader {
    /// `producerGroup` / `a`.
    pub producer_group: String,
    /// `topic` / `b`: the target topic.
    pub topic: String,
    /// `defaultTopic` / `c`: template for auto-creation, normally `TBW102`.
    pub default_topic: String,
    /// `defaultTopicQueueNums` / `d`: queue count wanted if the topic is auto-created.
    pub default_topic_queue_nums: i32,
    /// `queueId` / `e`: target queue; negative means "broker picks a writable queue".
    pub queue_id: i32,
    /// `sysFlag` / `f`: the message sysFlag (protocol.md §3.3).
    pub sys_flag: i32,
    /// `bornTimestamp` / `g`: ms since the epoch at the producer.
    pub born_timestamp_ms: i64,
    /// `flag` / `h`: user flag, stored as is.
    pub flag: i32,
    /// `properties` / `i`: the encoded properties string (protocol.md §3.4); empty reads as `None`.
    pub properties: Option<String>,
    /// `reconsumeTimes` / `j`: retry count of a message re-sent to `%RETRY%`.
    pub reconsume_times: Option<i32>,
    /// `unitMode` / `k`; absent reads as false.
    pub unit_mode: bool,
    /// `maxReconsumeTimes` / `l`.
    pub max_reconsume_times: Option<i32>,
    /// `batch` / `m`: true for SEND_BATCH_MESSAGE; absent reads as false.
    pub batch: bool,
    /// `bname` / `n`: the broker name the client addressed (5.x clients).
    pub broker_name: Option<String>,
}

impl SendMessageRequestHeader {
    fn decode(ext: &ExtFields, keys: &SendKeys) -> Result<Self, HeaderError> {
        Ok(Self {
            producer_group: required_str(ext, keys.producer_group)?,
            topic: required_str(ext, keys.topic)?,
            default_topic: required_str(ext, keys.default_topic)?,
            default_topic_queue_nums: required_i32(ext, keys.default_topic_queue_nums)?,
            queue_id: required_i32(ext, keys.queue_id)?,
            sys_flag: required_i32(ext, keys.sys_flag)?,
            born_timestamp_ms: required_i64(ext, keys.born_timestamp)?,
            flag: required_i32(ext, keys.flag)?,
            properties: optional_str(ext, keys.properties),
            reconsume_times: optional_i32(ext, keys.reconsume_times)?,
            unit_mode: bool_or(ext, keys.unit_mode, false),
            max_reconsume_times: optional_i32(ext, keys.max_reconsume_times)?,
            batch: bool_or(ext, keys.batch, false),
            broker_name: optional_str(ext, keys.broker_name),
        })
    }

    fn encode(&self, ext: &mut ExtFields, keys: &SendKeys) {
        put(ext, keys.producer_group, &self.producer_group);
        put(ext, keys.topic, &self.topic);
        put(ext, keys.default_topic, &self.default_topic);
        put(
            ext,
            keys.default_topic_queue_nums,
            self.default_topic_queue_nums,
        );
        put(ext, keys.queue_id, self.queue_id);
        put(ext, keys.sys_flag, self.sys_flag);
        put(ext, keys.born_timestamp, self.born_timestamp_ms);
        put(ext, keys.flag, self.flag);
        put_opt(ext, keys.properties, self.properties.as_ref());
        put_opt(ext, keys.reconsume_times, self.reconsume_times);
        // Java's V1 fields are primitive booleans and its V2 conversion copies them, so both
        // spellings always carry them.
        put(ext, keys.unit_mode, self.unit_mode);
        put_opt(ext, keys.max_reconsume_times, self.max_reconsume_times);
        put(ext, keys.batch, self.batch);
        put_opt(ext, keys.broker_name, self.broker_name.as_ref());
    }

    /// Decodes the V2 spelling (keys `a`…`n`).
    pub fn from_v2_ext(ext: &ExtFields) -> Result<Self, HeaderError> {
        Self::decode(ext, &V2_KEYS)
    }

    /// Writes the V2 spelling (keys `a`…`n`) into `ext`.
    pub fn write_v2_ext(&self, ext: &mut ExtFields) {
        self.encode(ext, &V2_KEYS);
    }

    /// The V2 spelling as a fresh map.
    #[must_use]
    pub fn to_v2_ext(&self) -> ExtFields {
        let mut ext = ExtFields::new();
        self.write_v2_ext(&mut ext);
        ext
    }

    /// Decodes the header of a send request with the spelling its code implies: V2 for
    /// SEND_MESSAGE_V2, SEND_BATCH_MESSAGE and SEND_REPLY_MESSAGE_V2, V1 otherwise.
    ///
    /// A V2-coded request that carries no V2 topic key (`b`) but a V1 `topic` is read as V1:
    /// the Java broker would reject it, but the meaning is unambiguous.
    pub fn decode_for_code(code: i32, ext: &ExtFields) -> Result<Self, HeaderError> {
        let v2_code = matches!(
            code,
            request_code::SEND_MESSAGE_V2
                | request_code::SEND_BATCH_MESSAGE
                | request_code::SEND_REPLY_MESSAGE_V2
        );
        let looks_v1 = !ext.contains_key(V2_KEYS.topic) && ext.contains_key(V1_KEYS.topic);
        if v2_code && !looks_v1 {
            Self::from_v2_ext(ext)
        } else {
            Self::from_ext(ext)
        }
    }
}

impl CommandHeader for SendMessageRequestHeader {
    fn from_ext(ext: &ExtFields) -> Result<Self, HeaderError> {
        Self::decode(ext, &V1_KEYS)
    }

    fn write_ext(&self, ext: &mut ExtFields) {
        self.encode(ext, &V1_KEYS);
    }
}

/// extFields key the Java broker adds to every send response besides the header fields: the
/// broker's region (clients copy it into trace data).
pub const EXT_MSG_REGION: &str = "MSG_REGION";
/// The value of [`EXT_MSG_REGION`] when no region is configured.
pub const DEFAULT_MSG_REGION: &str = "DefaultRegion";
/// extFields key the Java broker adds to every send response: whether message tracing is on
/// (`"true"`/`"false"`).
pub const EXT_TRACE_ON: &str = "TRACE_ON";

/// The response header of every send code (`SendMessageResponseHeader`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendMessageResponseHeader {
    /// `msgId`: the offset message id (protocol.md §3.6); for a batch, the ids of all records
    /// joined with `,`.
    pub msg_id: String,
    /// `queueId`: the queue the message was stored in.
    pub queue_id: i32,
    /// `queueOffset`: logical ConsumeQueue offset assigned (the first one for a batch).
    pub queue_offset: i64,
    /// `transactionId`: transactional messages only.
    pub transaction_id: Option<String>,
    /// `batchUniqId`: batches only (5.x).
    pub batch_uniq_id: Option<String>,
    /// `recallHandle`: handle to recall a delayed message (5.x).
    pub recall_handle: Option<String>,
}

impl CommandHeader for SendMessageResponseHeader {
    fn from_ext(ext: &ExtFields) -> Result<Self, HeaderError> {
        Ok(Self {
            msg_id: required_str(ext, "msgId")?,
            queue_id: required_i32(ext, "queueId")?,
            queue_offset: required_i64(ext, "queueOffset")?,
            transaction_id: optional_str(ext, "transactionId"),
            batch_uniq_id: optional_str(ext, "batchUniqId"),
            recall_handle: optional_str(ext, "recallHandle"),
        })
    }

    fn write_ext(&self, ext: &mut ExtFields) {
        put(ext, "msgId", &self.msg_id);
        put(ext, "queueId", self.queue_id);
        put(ext, "queueOffset", self.queue_offset);
        put_opt(ext, "transactionId", self.transaction_id.as_ref());
        put_opt(ext, "batchUniqId", self.batch_uniq_id.as_ref());
        put_opt(ext, "recallHandle", self.recall_handle.as_ref());
    }
}

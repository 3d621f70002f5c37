//! Headers of requests about one stored message, addressed by its CommitLog physical offset:
//! VIEW_MESSAGE_BY_ID (33) and CONSUMER_SEND_MSG_BACK (36) (protocol.md §2.11, §2.12).

use crate::command::ExtFields;
use crate::ext::{
    bool_or, optional_i32, optional_str, put, put_opt, required_i32, required_i64, required_str,
    CommandHeader, HeaderError,
};

/// VIEW_MESSAGE_BY_ID request (`ViewMessageRequestHeader`); the answer's body is the stored
/// record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewMessageRequestHeader {
    /// `topic`: informational, may be absent.
    pub topic: Option<String>,
    /// `offset`: CommitLog physical offset, decoded by the client from an offset message id.
    pub physical_offset: i64,
}

impl CommandHeader for ViewMessageRequestHeader {
    fn from_ext(ext: &ExtFields) -> Result<Self, HeaderError> {
        Ok(Self {
            topic: optional_str(ext, "topic"),
            physical_offset: required_i64(ext, "offset")?,
        })
    }

    fn write_ext(&self, ext: &mut ExtFields) {
        put_opt(ext, "topic", self.topic.as_ref());
        put(ext, "offset", self.physical_offset);
    }
}

/// CONSUMER_SEND_MSG_BACK request (`ConsumerSendMsgBackRequestHeader`): a consumer returns a
/// message it failed to consume, for retry or the DLQ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerSendMsgBackRequestHeader {
    /// `offset`: CommitLog physical offset of the failed message.
    pub physical_offset: i64,
    /// `group`: the consumer group.
    pub group: String,
    /// `delayLevel`: 0 lets the broker decide, < 0 sends straight to the DLQ, n > 0 is that
    /// delay level.
    pub delay_level: i32,
    /// `originMsgId`: the client's message id (UNIQ_KEY if present, else the offset id).
    pub origin_msg_id: Option<String>,
    /// `originTopic`.
    pub origin_topic: Option<String>,
    /// `unitMode`; absent reads as false.
    pub unit_mode: bool,
    /// `maxReconsumeTimes`: client default 16.
    pub max_reconsume_times: Option<i32>,
}

impl CommandHeader for ConsumerSendMsgBackRequestHeader {
    fn from_ext(ext: &ExtFields) -> Result<Self, HeaderError> {
        Ok(Self {
            physical_offset: required_i64(ext, "offset")?,
            group: required_str(ext, "group")?,
            delay_level: required_i32(ext, "delayLevel")?,
            origin_msg_id: optional_str(ext, "originMsgId"),
            origin_topic: optional_str(ext, "originTopic"),
            unit_mode: bool_or(ext, "unitMode", false),
            max_reconsume_times: optional_i32(ext, "maxReconsumeTimes")?,
        })
    }

    fn write_ext(&self, ext: &mut ExtFields) {
        put(ext, "offset", self.physical_offset);
        put(ext, "group", &self.group);
        put(ext, "delayLevel", self.delay_level);
        put_opt(ext, "originMsgId", self.origin_msg_id.as_ref());
        put_opt(ext, "originTopic", self.origin_topic.as_ref());
        put(ext, "unitMode", self.unit_mode);
        put_opt(ext, "maxReconsumeTimes", self.max_reconsume_times);
    }
}

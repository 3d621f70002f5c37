//! Consumer-offset and queue-offset headers: QUERY_CONSUMER_OFFSET (14),
//! UPDATE_CONSUMER_OFFSET (15), GET_MAX_OFFSET (30), GET_MIN_OFFSET (31),
//! SEARCH_OFFSET_BY_TIMESTAMP (29) and GET_EARLIEST_MSG_STORETIME (32)
//! (protocol.md §2.5, §2.10). All offsets here are logical ConsumeQueue offsets.

use crate::command::ExtFields;
use crate::ext::{
    bool_or, optional_bool, optional_str, put, put_opt, required_i32, required_i64, required_str,
    CommandHeader, HeaderError,
};

/// QUERY_CONSUMER_OFFSET request (`QueryConsumerOffsetRequestHeader`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryConsumerOffsetRequestHeader {
    /// `consumerGroup`.
    pub consumer_group: String,
    /// `topic`.
    pub topic: String,
    /// `queueId`.
    pub queue_id: i32,
    /// `setZeroIfNotFound`: `Some(false)` forbids answering 0 for a group with no stored
    /// offset; absent behaves like `true` on the Java broker.
    pub set_zero_if_not_found: Option<bool>,
}

impl CommandHeader for QueryConsumerOffsetRequestHeader {
    fn from_ext(ext: &ExtFields) -> Result<Self, HeaderError> {
        Ok(Self {
            consumer_group: required_str(ext, "consumerGroup")?,
            topic: required_str(ext, "topic")?,
            queue_id: required_i32(ext, "queueId")?,
            set_zero_if_not_found: optional_bool(ext, "setZeroIfNotFound"),
        })
    }

    fn write_ext(&self, ext: &mut ExtFields) {
        put(ext, "consumerGroup", &self.consumer_group);
        put(ext, "topic", &self.topic);
        put(ext, "queueId", self.queue_id);
        put_opt(ext, "setZeroIfNotFound", self.set_zero_if_not_found);
    }
}

/// A response header holding one logical `offset`: QUERY_CONSUMER_OFFSET, GET_MAX_OFFSET,
/// GET_MIN_OFFSET and SEARCH_OFFSET_BY_TIMESTAMP all answer with this shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetResponseHeader {
    /// `offset`: required; clients read it as a string and fail without it.
    pub offset: i64,
}

impl CommandHeader for OffsetResponseHeader {
    fn from_ext(ext: &ExtFields) -> Result<Self, HeaderError> {
        Ok(Self {
            offset: required_i64(ext, "offset")?,
        })
    }

    fn write_ext(&self, ext: &mut ExtFields) {
        put(ext, "offset", self.offset);
    }
}

/// QUERY_CONSUMER_OFFSET response: the group's committed offset.
pub type QueryConsumerOffsetResponseHeader = OffsetResponseHeader;
/// GET_MAX_OFFSET response: the next logical offset to be written (0 for an empty queue).
pub type GetMaxOffsetResponseHeader = OffsetResponseHeader;
/// GET_MIN_OFFSET response: the smallest logical offset still stored.
pub type GetMinOffsetResponseHeader = OffsetResponseHeader;
/// SEARCH_OFFSET_BY_TIMESTAMP response.
pub type SearchOffsetResponseHeader = OffsetResponseHeader;

/// UPDATE_CONSUMER_OFFSET request (`UpdateConsumerOffsetRequestHeader`); the response has no
/// header fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateConsumerOffsetRequestHeader {
    /// `consumerGroup`.
    pub consumer_group: String,
    /// `topic`.
    pub topic: String,
    /// `queueId`.
    pub queue_id: i32,
    /// `commitOffset`: the offset to store. Some clients send −1 to mean 0.
    pub commit_offset: i64,
}

impl CommandHeader for UpdateConsumerOffsetRequestHeader {
    fn from_ext(ext: &ExtFields) -> Result<Self, HeaderError> {
        Ok(Self {
            consumer_group: required_str(ext, "consumerGroup")?,
            topic: required_str(ext, "topic")?,
            queue_id: required_i32(ext, "queueId")?,
            commit_offset: required_i64(ext, "commitOffset")?,
        })
    }

    fn write_ext(&self, ext: &mut ExtFields) {
        put(ext, "consumerGroup", &self.consumer_group);
        put(ext, "topic", &self.topic);
        put(ext, "queueId", self.queue_id);
        put(ext, "commitOffset", self.commit_offset);
    }
}

/// GET_MAX_OFFSET request (`GetMaxOffsetRequestHeader`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetMaxOffsetRequestHeader {
    /// `topic`.
    pub topic: String,
    /// `queueId`.
    pub queue_id: i32,
    /// `committed`: true (the default when absent) asks for the max offset of dispatched,
    /// consumable entries rather than of in-flight ones.
    pub committed: bool,
}

impl CommandHeader for GetMaxOffsetRequestHeader {
    fn from_ext(ext: &ExtFields) -> Result<Self, HeaderError> {
        Ok(Self {
            topic: required_str(ext, "topic")?,
            queue_id: required_i32(ext, "queueId")?,
            committed: bool_or(ext, "committed", true),
        })
    }

    fn write_ext(&self, ext: &mut ExtFields) {
        put(ext, "topic", &self.topic);
        put(ext, "queueId", self.queue_id);
        put(ext, "committed", self.committed);
    }
}

/// A request header naming one queue by `topic` and `queueId`: GET_MIN_OFFSET and
/// GET_EARLIEST_MSG_STORETIME.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueRequestHeader {
    /// `topic`.
    pub topic: String,
    /// `queueId`.
    pub queue_id: i32,
}

impl CommandHeader for QueueRequestHeader {
    fn from_ext(ext: &ExtFields) -> Result<Self, HeaderError> {
        Ok(Self {
            topic: required_str(ext, "topic")?,
            queue_id: required_i32(ext, "queueId")?,
        })
    }

    fn write_ext(&self, ext: &mut ExtFields) {
        put(ext, "topic", &self.topic);
        put(ext, "queueId", self.queue_id);
    }
}

/// GET_MIN_OFFSET request.
pub type GetMinOffsetRequestHeader = QueueRequestHeader;
/// GET_EARLIEST_MSG_STORETIME request.
pub type GetEarliestMsgStoretimeRequestHeader = QueueRequestHeader;

/// Which side of a timestamp SEARCH_OFFSET_BY_TIMESTAMP answers with (5.x `BoundaryType`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum BoundaryType {
    /// The first offset whose store time is ≥ the timestamp (the default).
    #[default]
    Lower,
    /// The last offset whose store time is ≤ the timestamp.
    Upper,
}

impl BoundaryType {
    /// The wire form. Java writes the enum constant's name through `toString()`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            BoundaryType::Lower => "LOWER",
            BoundaryType::Upper => "UPPER",
        }
    }

    /// Parses like Java's `BoundaryType.getType`: `upper` in any case is
    /// [`BoundaryType::Upper`], anything else is [`BoundaryType::Lower`].
    #[must_use]
    pub fn parse(value: &str) -> Self {
        if value.trim().eq_ignore_ascii_case("upper") {
            BoundaryType::Upper
        } else {
            BoundaryType::Lower
        }
    }
}

/// SEARCH_OFFSET_BY_TIMESTAMP request (`SearchOffsetRequestHeader`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchOffsetRequestHeader {
    /// `topic`.
    pub topic: String,
    /// `queueId`.
    pub queue_id: i32,
    /// `timestamp`: store time to search for, ms since the epoch.
    pub timestamp_ms: i64,
    /// `boundaryType` (5.x); absent means [`BoundaryType::Lower`].
    pub boundary_type: BoundaryType,
}

impl CommandHeader for SearchOffsetRequestHeader {
    fn from_ext(ext: &ExtFields) -> Result<Self, HeaderError> {
        Ok(Self {
            topic: required_str(ext, "topic")?,
            queue_id: required_i32(ext, "queueId")?,
            timestamp_ms: required_i64(ext, "timestamp")?,
            boundary_type: optional_str(ext, "boundaryType")
                .map(|value| BoundaryType::parse(&value))
                .unwrap_or_default(),
        })
    }

    fn write_ext(&self, ext: &mut ExtFields) {
        put(ext, "topic", &self.topic);
        put(ext, "queueId", self.queue_id);
        put(ext, "timestamp", self.timestamp_ms);
        put(ext, "boundaryType", self.boundary_type.as_str());
    }
}

/// GET_EARLIEST_MSG_STORETIME response (`GetEarliestMsgStoretimeResponseHeader`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GetEarliestMsgStoretimeResponseHeader {
    /// `timestamp`: store time of the message at the queue's min offset, ms since the epoch;
    /// −1 when there is none.
    pub timestamp_ms: i64,
}

impl CommandHeader for GetEarliestMsgStoretimeResponseHeader {
    fn from_ext(ext: &ExtFields) -> Result<Self, HeaderError> {
        Ok(Self {
            timestamp_ms: required_i64(ext, "timestamp")?,
        })
    }

    fn write_ext(&self, ext: &mut ExtFields) {
        put(ext, "timestamp", self.timestamp_ms);
    }
}

//! Typed request and response headers, one struct per command header the broker serves or
//! sends, each implementing [`CommandHeader`] over extFields with
//! the exact Java field names as keys (protocol.md §2).
//!
//! Commands whose request carries no header fields (HEART_BEAT, LOCK_BATCH_MQ,
//! UNLOCK_BATCH_MQ, GET_BROKER_CLUSTER_INFO, …) use [`NoHeader`]; their payload is the body.
//!
//! Field names follow the Java ones in snake case, with the unit added where Java leaves it
//! implicit only when the Java name already carries it (`suspend_timeout_millis`); offsets are
//! logical queue offsets unless the field says `physical`.

use crate::command::ExtFields;
use crate::ext::{CommandHeader, HeaderError};

mod admin;
mod client;
mod message;
mod namesrv;
mod offset;
mod pull;
mod send;

pub use admin::{
    CreateTopicRequestHeader, DeleteTopicRequestHeader, GetAllTopicConfigResponseHeader,
    GetConsumeStatsRequestHeader, ResetOffsetRequestHeader, TopicRequestHeader,
};
pub use client::{
    ConsumerGroupRequestHeader, GetConsumerConnectionListRequestHeader,
    GetConsumerListByGroupRequestHeader, NotifyConsumerIdsChangedRequestHeader,
    UnregisterClientRequestHeader,
};
pub use message::{ConsumerSendMsgBackRequestHeader, ViewMessageRequestHeader};
pub use namesrv::{
    GetRouteInfoRequestHeader, RegisterBrokerRequestHeader, RegisterBrokerResponseHeader,
    UnregisterBrokerRequestHeader,
};
pub use offset::{
    BoundaryType, GetEarliestMsgStoretimeRequestHeader, GetEarliestMsgStoretimeResponseHeader,
    GetMaxOffsetRequestHeader, GetMaxOffsetResponseHeader, GetMinOffsetRequestHeader,
    GetMinOffsetResponseHeader, OffsetResponseHeader, QueryConsumerOffsetRequestHeader,
    QueryConsumerOffsetResponseHeader, QueueRequestHeader, SearchOffsetRequestHeader,
    SearchOffsetResponseHeader, UpdateConsumerOffsetRequestHeader,
};
pub use pull::{PullMessageRequestHeader, PullMessageResponseHeader, PullSysFlag};
pub use send::{
    SendMessageRequestHeader, SendMessageResponseHeader, DEFAULT_MSG_REGION, EXT_MSG_REGION,
    EXT_TRACE_ON, V1_TO_V2_KEYS,
};

/// The header of a command that has no header fields: decodes from any extFields (noise keys
/// such as `AccessKey` are ignored) and writes nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NoHeader;

impl CommandHeader for NoHeader {
    fn from_ext(_ext: &ExtFields) -> Result<Self, HeaderError> {
        Ok(NoHeader)
    }

    fn write_ext(&self, _ext: &mut ExtFields) {}
}

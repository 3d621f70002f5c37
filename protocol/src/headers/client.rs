//! Consumer-group membership headers: UNREGISTER_CLIENT (35), GET_CONSUMER_LIST_BY_GROUP (38)
//! and NOTIFY_CONSUMER_IDS_CHANGED (40, broker → client) (protocol.md §2.7–§2.9).
//!
//! HEART_BEAT (34), LOCK_BATCH_MQ (41) and UNLOCK_BATCH_MQ (42) carry everything in their
//! body and use [`NoHeader`](super::NoHeader).

use crate::command::ExtFields;
use crate::ext::{optional_str, put, put_opt, required_str, CommandHeader, HeaderError};

/// UNREGISTER_CLIENT request (`UnregisterClientRequestHeader`), sent on client shutdown.
///
/// Clients send an empty string for the group they do not have (`"consumerGroup": ""`);
/// that reads as `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnregisterClientRequestHeader {
    /// `clientID` (sic): the id the client used in its heartbeats.
    pub client_id: String,
    /// `producerGroup`.
    pub producer_group: Option<String>,
    /// `consumerGroup`.
    pub consumer_group: Option<String>,
}

impl CommandHeader for UnregisterClientRequestHeader {
    fn from_ext(ext: &ExtFields) -> Result<Self, HeaderError> {
        Ok(Self {
            client_id: required_str(ext, "clientID")?,
            producer_group: optional_str(ext, "producerGroup"),
            consumer_group: optional_str(ext, "consumerGroup"),
        })
    }

    fn write_ext(&self, ext: &mut ExtFields) {
        put(ext, "clientID", &self.client_id);
        put_opt(ext, "producerGroup", self.producer_group.as_ref());
        put_opt(ext, "consumerGroup", self.consumer_group.as_ref());
    }
}

/// A request header naming one consumer group: GET_CONSUMER_LIST_BY_GROUP,
/// NOTIFY_CONSUMER_IDS_CHANGED and GET_CONSUMER_CONNECTION_LIST all carry only
/// `consumerGroup`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerGroupRequestHeader {
    /// `consumerGroup`.
    pub consumer_group: String,
}

impl CommandHeader for ConsumerGroupRequestHeader {
    fn from_ext(ext: &ExtFields) -> Result<Self, HeaderError> {
        Ok(Self {
            consumer_group: required_str(ext, "consumerGroup")?,
        })
    }

    fn write_ext(&self, ext: &mut ExtFields) {
        put(ext, "consumerGroup", &self.consumer_group);
    }
}

/// GET_CONSUMER_LIST_BY_GROUP request; the answer is the body `{"consumerIdList":[…]}`.
pub type GetConsumerListByGroupRequestHeader = ConsumerGroupRequestHeader;
/// NOTIFY_CONSUMER_IDS_CHANGED request, sent oneway by the broker.
pub type NotifyConsumerIdsChangedRequestHeader = ConsumerGroupRequestHeader;
/// GET_CONSUMER_CONNECTION_LIST request (admin, protocol.md §2.15).
pub type GetConsumerConnectionListRequestHeader = ConsumerGroupRequestHeader;

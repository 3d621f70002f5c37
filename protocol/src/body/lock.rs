//! Queue-lock bodies of orderly consumption: LOCK_BATCH_MQ (41) request and
//! response, UNLOCK_BATCH_MQ (42) request.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::json_body;
use super::message_queue::MessageQueue;

/// LOCK_BATCH_MQ request: lock these queues of `consumer_group` for `client_id`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LockBatchRequestBody {
    /// The consumer group.
    pub consumer_group: String,
    /// The client asking for the locks.
    pub client_id: String,
    /// Lock only on this broker (5.x; no quorum of replicas).
    pub only_this_broker: bool,
    /// Queues to lock.
    pub mq_set: BTreeSet<MessageQueue>,
}

/// LOCK_BATCH_MQ response: the subset of queues now locked by the client.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct LockBatchResponseBody {
    /// Queues locked by the requesting client.
    #[serde(rename = "lockOKMQSet")]
    pub lock_ok_mq_set: BTreeSet<MessageQueue>,
}

/// UNLOCK_BATCH_MQ request; the same fields as a lock request.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct UnlockBatchRequestBody {
    /// The consumer group.
    pub consumer_group: String,
    /// The client releasing the locks.
    pub client_id: String,
    /// Unlock only on this broker.
    pub only_this_broker: bool,
    /// Queues to unlock.
    pub mq_set: BTreeSet<MessageQueue>,
}

json_body!(
    LockBatchRequestBody => "LockBatchRequestBody",
    LockBatchResponseBody => "LockBatchResponseBody",
    UnlockBatchRequestBody => "UnlockBatchRequestBody",
);

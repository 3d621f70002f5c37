//! JSON request and response bodies of the RocketMQ protocol (heartbeat, routes,
//! cluster info, topic configs, lock bodies, stats, offset files), read and
//! written the way Java's fastjson peers expect.
//!
//! Reading is always lenient ([`fastjson`]): unquoted number keys, object keys,
//! any key order and whitespace, unknown fields ignored, enums by name or
//! ordinal, numeric strings for numbers, missing or `null` collections as empty.
//! Writing is standard JSON with quoted keys (which every fastjson reader also
//! accepts), except where Java tools need fastjson's object-keyed maps
//! ([`ConsumeStats`], [`OffsetSerializeWrapper`]).
//!
//! Every body type implements [`JsonBody`]: `decode` never panics and returns a
//! [`BodyError`] that names the body and keeps the underlying error.

pub mod enums;
pub mod fastjson;

mod consumer;
mod heartbeat;
mod lock;
mod message_queue;
mod offsets;
mod route;
mod stats;
mod subscription_group;
mod topic;

pub use consumer::{Connection, ConsumerConnection, ConsumerListBody};
pub use enums::{ConsumeFromWhere, ConsumeType, MessageModel, TopicFilterType};
pub use heartbeat::{ConsumerData, HeartbeatData, ProducerData, SubscriptionData};
pub use lock::{LockBatchRequestBody, LockBatchResponseBody, UnlockBatchRequestBody};
pub use message_queue::MessageQueue;
pub use offsets::{
    offset_table_key, split_offset_table_key, ConsumerOffsetSerializeWrapper,
    DelayOffsetSerializeWrapper, OffsetSerializeWrapper,
};
pub use route::{BrokerData, ClusterInfo, QueueData, TopicList, TopicRouteData, MASTER_ID};
pub use stats::{ConsumeStats, KvTable, OffsetWrapper, TopicOffset, TopicStatsTable};
pub use subscription_group::{SubscriptionGroupConfig, SubscriptionGroupWrapper};
pub use topic::{
    CompressedBodyError, DataVersion, RegisterBrokerBody, TopicConfig, TopicConfigSerializeWrapper,
    TopicConfigTextError, MAX_INFLATED_BYTES,
};

use thiserror::Error;

/// A body could not be read or written.
#[derive(Debug, Error)]
pub enum BodyError {
    /// The bytes are not fastjson, or do not have the body's shape.
    #[error("cannot decode {body} body")]
    Decode {
        /// Which body type was being read.
        body: &'static str,
        /// Why.
        #[source]
        source: fastjson::FastjsonError,
    },
    /// serde_json refused to write the body.
    #[error("cannot encode {body} body")]
    Encode {
        /// Which body type was being written.
        body: &'static str,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// The compressed form of `RegisterBrokerBody` is broken.
    #[error("cannot decode compressed RegisterBrokerBody")]
    Compressed(#[from] CompressedBodyError),
}

/// A body that travels as JSON.
pub trait JsonBody: Sized {
    /// The Java class name, used in errors.
    const NAME: &'static str;

    /// Reads the body leniently from fastjson or standard JSON bytes.
    fn decode(bytes: &[u8]) -> Result<Self, BodyError>;

    /// Writes the body as a RocketMQ peer expects it.
    fn encode(&self) -> Result<Vec<u8>, BodyError>;
}

/// Lenient decode, for `JsonBody` impls: standard JSON straight into `T` first, and only if
/// that fails the [`fastjson`] tree, which also takes what fastjson writes and standard JSON
/// does not allow (unquoted keys, single quotes, ...). The direct path builds no tree: a
/// heartbeat of 10,000 groups decodes several times faster that way. Both paths run the same
/// `Deserialize` impls, so a body both accept decodes to the same value. The direct path is
/// tried only for an object body: serde would also read a struct from a JSON array (its
/// fields in order), which no RocketMQ peer sends and the tree path refuses.
fn decode_lenient<T: serde::de::DeserializeOwned>(
    body: &'static str,
    bytes: &[u8],
) -> Result<T, BodyError> {
    let is_object = bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    if is_object {
        if let Ok(value) = serde_json::from_slice(bytes) {
            return Ok(value);
        }
    }
    fastjson::from_slice(bytes).map_err(|source| BodyError::Decode { body, source })
}

/// Standard JSON encode, for `JsonBody` impls.
fn encode_json<T: serde::Serialize>(body: &'static str, value: &T) -> Result<Vec<u8>, BodyError> {
    serde_json::to_vec(value).map_err(|source| BodyError::Encode { body, source })
}

/// Implements [`JsonBody`] with lenient decode and standard JSON encode.
macro_rules! json_body {
    ($($ty:ty => $name:literal),+ $(,)?) => {$(
        impl $crate::body::JsonBody for $ty {
            const NAME: &'static str = $name;

            fn decode(bytes: &[u8]) -> Result<Self, $crate::body::BodyError> {
                $crate::body::decode_lenient(Self::NAME, bytes)
            }

            fn encode(&self) -> Result<Vec<u8>, $crate::body::BodyError> {
                $crate::body::encode_json(Self::NAME, self)
            }
        }
    )+};
}
use json_body;

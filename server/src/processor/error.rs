//! The one place where an error becomes a RocketMQ response (protocol.md §2.3-§2.15).
//!
//! A processor returns `Err(Refused)` for every request it does not serve; the router
//! turns it into a response with [`Refused::response_code`] and the error's text, its
//! sources joined ([`crate::reply::error_chain`]). Every match below is exhaustive, with no
//! wildcard: a new variant here or in a lower layer's error (store, shard, topics, header
//! decoding) fails to compile until it has a code.

use std::net::SocketAddr;

use ringmq_engine::error::StoreError;
use ringmq_engine::store::GetMessageStatus;
use ringmq_protocol::body::BodyError;
use ringmq_protocol::codes::response_code;
use ringmq_protocol::command::RemotingCommand;
use ringmq_protocol::ext::HeaderError;
use ringmq_protocol::message::batch::BatchError;
use ringmq_protocol::message::properties::PropertiesError;
use ringmq_protocol::message::record::RecordError;

use crate::offload::OffloadError;
use crate::reply::error_chain;
use crate::shard::hop::InboxError;
use crate::shard::ShardError;
use crate::subscription_groups::GroupConfigError;
use crate::topics::TopicError;

/// Why a request was not served.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// A required header field is missing or malformed (answered as Java does).
    #[error(transparent)]
    Header(#[from] HeaderError),
    /// A request or response body could not be decoded or encoded.
    #[error("{what}")]
    Body {
        what: &'static str,
        #[source]
        source: BodyError,
    },
    #[error(transparent)]
    Topic(#[from] TopicError),
    #[error(transparent)]
    Shard(#[from] ShardError),
    #[error(transparent)]
    Offload(#[from] OffloadError),
    #[error(transparent)]
    GroupConfig(#[from] GroupConfigError),

    // PULL (protocol.md §2.4)
    #[error("topic[{topic}] not exist, apply first please!")]
    TopicNotExist { topic: String },
    #[error("the topic[{topic}] pulling message is forbidden")]
    PullForbidden { topic: String },
    #[error(
        "queueId[{queue_id}] is illegal, topic:[{topic}] topicConfig.readQueueNums:[{read_queue_nums}] consumer:[{consumer}]"
    )]
    QueueIdIllegal {
        queue_id: i32,
        topic: String,
        read_queue_nums: i32,
        consumer: SocketAddr,
    },
    #[error("expression type {expression_type} is not supported (only TAG)")]
    ExpressionTypeUnsupported { expression_type: String },
    #[error("the consumer's subscription not exist, group: {group} topic: {topic}")]
    SubscriptionNotExist { group: String, topic: String },
    #[error("the consumer's subscription not latest")]
    SubscriptionNotLatest,
    #[error("subscription group no permission, {group}")]
    GroupConsumeDisabled { group: String },

    // SEND (protocol.md §2.3)
    #[error("the message body is empty")]
    EmptyBody,
    #[error("the message body size {size_bytes} exceeds the maximum of {max_bytes} bytes")]
    BodyTooLarge { size_bytes: usize, max_bytes: usize },
    #[error("batch messages cannot be sent to a retry topic")]
    BatchToRetryTopic,
    #[error("the topic[{topic}] sending is forbidden")]
    SendForbidden { topic: String },
    #[error("the broker[{broker}] sending transaction message is forbidden (transactions are not supported yet)")]
    TransactionForbidden { broker: String },
    #[error("batch body")]
    BatchBody(#[source] BatchError),
    #[error(
        "a batch cannot hold delayed or timed messages (DELAY, TIMER_*): send them one by one"
    )]
    DelayInBatch,
    #[error(transparent)]
    Due(#[from] crate::schedule::DueError),
    #[error("properties")]
    Properties(#[source] PropertiesError),

    // CONSUMER_SEND_MSG_BACK (protocol.md §2.12)
    #[error("stored message at {physical_offset}")]
    StoredMessage {
        physical_offset: i64,
        #[source]
        source: RecordError,
    },
    #[error("properties of the message sent back")]
    SendBackProperties(#[source] PropertiesError),
    /// A SYNC_MASTER stored the copy but no slave acknowledged it; the remark is Java's
    /// put status name, as RocketMQ's send-back answers it.
    #[error("{status}")]
    SendBackNotReplicated { status: &'static str },

    // Offsets, groups, admin
    #[error("Not found, V3_0_6_SNAPSHOT maybe this group consumer boot first")]
    ConsumerOffsetNotFound,
    #[error("commitOffset {offset} of topic {topic} queueId {queue_id} is negative")]
    NegativeOffset {
        offset: i64,
        topic: String,
        queue_id: i32,
    },
    #[error("no consumer for this group, {group}")]
    NoConsumer { group: String },
    #[error("the consumer group[{group}] not online")]
    ConsumerNotOnline { group: String },
    #[error("{reason}")]
    InvalidAttributes { reason: String },
    #[error("a queue lock request must name its consumerGroup and clientId")]
    LockOwnerMissing,
    /// UPDATE_BROKER_CONFIG named a key that cannot change at runtime, or a bad value.
    #[error(transparent)]
    BrokerConfig(#[from] crate::runtime_config::UpdateError),
    #[error("this broker is a slave (broker id {broker_id}): it copies its master's log and takes no writes; send to the master")]
    SlaveTakesNoWrites { broker_id: i64 },
}

impl Refused {
    /// The response code RocketMQ answers this refusal with.
    pub fn response_code(&self) -> i32 {
        match self {
            Refused::Header(error) => header_code(error),
            Refused::Body { source, .. } => body_code(source),
            Refused::Topic(error) => topic_code(error),
            Refused::Shard(error) => shard_code(error),
            Refused::Offload(OffloadError) => response_code::SYSTEM_ERROR,
            Refused::GroupConfig(error) => group_config_code(error),
            Refused::TopicNotExist { .. } => response_code::TOPIC_NOT_EXIST,
            Refused::PullForbidden { .. }
            | Refused::SendForbidden { .. }
            | Refused::TransactionForbidden { .. }
            | Refused::GroupConsumeDisabled { .. } => response_code::NO_PERMISSION,
            Refused::QueueIdIllegal { .. }
            | Refused::InvalidAttributes { .. }
            | Refused::LockOwnerMissing
            | Refused::BrokerConfig(_)
            | Refused::NegativeOffset { .. } => response_code::INVALID_PARAMETER,
            Refused::ExpressionTypeUnsupported { .. } => response_code::SUBSCRIPTION_PARSE_FAILED,
            Refused::SubscriptionNotExist { .. } => response_code::SUBSCRIPTION_NOT_EXIST,
            Refused::SubscriptionNotLatest => response_code::SUBSCRIPTION_NOT_LATEST,
            Refused::EmptyBody
            | Refused::BodyTooLarge { .. }
            | Refused::BatchToRetryTopic
            | Refused::BatchBody(_)
            | Refused::DelayInBatch
            | Refused::Due(_)
            | Refused::Properties(_) => response_code::MESSAGE_ILLEGAL,
            Refused::StoredMessage { .. }
            | Refused::SendBackProperties(_)
            | Refused::SendBackNotReplicated { .. }
            | Refused::NoConsumer { .. } => response_code::SYSTEM_ERROR,
            Refused::ConsumerOffsetNotFound => response_code::QUERY_NOT_FOUND,
            Refused::ConsumerNotOnline { .. } => response_code::CONSUMER_NOT_ONLINE,
            // RocketMQ's store answers a put on a slave SERVICE_NOT_AVAILABLE: the producer
            // tries the master (or another broker).
            Refused::SlaveTakesNoWrites { .. } => response_code::SERVICE_NOT_AVAILABLE,
        }
    }

    /// The response to `request`: this refusal's code, its text (with its sources) as the
    /// remark.
    pub fn to_response(&self, request: &RemotingCommand) -> RemotingCommand {
        RemotingCommand::response_to(request, self.response_code()).with_remark(error_chain(self))
    }

    /// A body that could not be decoded or encoded.
    pub fn body(what: &'static str) -> impl FnOnce(BodyError) -> Refused {
        move |source| Refused::Body { what, source }
    }
}

/// Java answers a missing or malformed header field with SYSTEM_ERROR and the reason.
fn header_code(error: &HeaderError) -> i32 {
    match error {
        HeaderError::MissingField { .. } | HeaderError::InvalidField { .. } => {
            response_code::SYSTEM_ERROR
        }
    }
}

fn body_code(error: &BodyError) -> i32 {
    // Whatever is wrong with a JSON body, Java answers SYSTEM_ERROR.
    let _ = error;
    response_code::SYSTEM_ERROR
}

fn group_config_code(error: &GroupConfigError) -> i32 {
    match error {
        GroupConfigError::InvalidName(_) => response_code::INVALID_PARAMETER,
        GroupConfigError::File(_)
        | GroupConfigError::Corrupt { .. }
        | GroupConfigError::Encode(_) => response_code::SYSTEM_ERROR,
    }
}

fn topic_code(error: &TopicError) -> i32 {
    match error {
        TopicError::InvalidName { .. }
        | TopicError::QueueIdOutOfRange { .. }
        | TopicError::SystemTopic { .. }
        | TopicError::InvalidConfig { .. } => response_code::INVALID_PARAMETER,
        TopicError::SendNotAllowed { .. } => response_code::NO_PERMISSION,
        TopicError::NotExist { .. } => response_code::TOPIC_NOT_EXIST,
        TopicError::Io { .. }
        | TopicError::Encode(_)
        | TopicError::Corrupt { .. }
        | TopicError::NotPersisted { .. } => response_code::SYSTEM_ERROR,
    }
}

fn shard_code(error: &ShardError) -> i32 {
    match error {
        ShardError::Hop(error) => match error {
            InboxError::NoSuchShard { .. } | InboxError::Dropped { .. } => {
                response_code::SYSTEM_ERROR
            }
        },
        ShardError::Store(error) => store_code(error),
        ShardError::NoMessageAt { .. } | ShardError::AskerGone => response_code::SYSTEM_ERROR,
    }
}

/// protocol.md §2.3 step 7: a full disk or a closed store is "service not available" (the
/// producer tries another broker), a message the store cannot take is illegal.
fn store_code(error: &StoreError) -> i32 {
    match error {
        StoreError::DiskFull { .. }
        | StoreError::NoSpace { .. }
        | StoreError::Closed
        | StoreError::LogFull { .. } => response_code::SERVICE_NOT_AVAILABLE,
        StoreError::MessageTooLarge { .. } | StoreError::Encode { .. } => {
            response_code::MESSAGE_ILLEGAL
        }
        StoreError::InvalidQueue { .. } => response_code::INVALID_PARAMETER,
        StoreError::Io { .. }
        | StoreError::Write { .. }
        | StoreError::Sync { .. }
        | StoreError::LogFailed { .. }
        | StoreError::NotFound { .. }
        | StoreError::Corrupt { .. }
        | StoreError::ConsumeQueue { .. }
        | StoreError::InvalidConfig { .. }
        | StoreError::Locked { .. }
        | StoreError::ReplicaDiverged { .. } => response_code::SYSTEM_ERROR,
    }
}

/// A pull's store status → its response code (protocol.md §2.4 table). Not an error: most
/// statuses are answers the client acts on.
pub fn pull_code(status: GetMessageStatus, request_offset: i64) -> i32 {
    match status {
        GetMessageStatus::Found => response_code::SUCCESS,
        GetMessageStatus::NoMatchedMessage | GetMessageStatus::MessageWasRemoving => {
            response_code::PULL_RETRY_IMMEDIATELY
        }
        GetMessageStatus::NoMatchedLogicQueue | GetMessageStatus::NoMessageInQueue => {
            if request_offset != 0 {
                response_code::PULL_OFFSET_MOVED
            } else {
                response_code::PULL_NOT_FOUND
            }
        }
        GetMessageStatus::OffsetTooSmall | GetMessageStatus::OffsetOverflowBadly => {
            response_code::PULL_OFFSET_MOVED
        }
        GetMessageStatus::OffsetOverflowOne | GetMessageStatus::OffsetFoundNull => {
            response_code::PULL_NOT_FOUND
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shard::may_hold;

    const ALL_STATUSES: [GetMessageStatus; 9] = [
        GetMessageStatus::Found,
        GetMessageStatus::NoMatchedMessage,
        GetMessageStatus::MessageWasRemoving,
        GetMessageStatus::OffsetFoundNull,
        GetMessageStatus::OffsetOverflowBadly,
        GetMessageStatus::OffsetOverflowOne,
        GetMessageStatus::OffsetTooSmall,
        GetMessageStatus::NoMatchedLogicQueue,
        GetMessageStatus::NoMessageInQueue,
    ];

    #[test]
    fn the_shard_holds_exactly_the_pulls_answered_pull_not_found() {
        for status in ALL_STATUSES {
            for offset in [0, 1, 1_000] {
                assert_eq!(
                    may_hold(status, offset),
                    pull_code(status, offset) == response_code::PULL_NOT_FOUND,
                    "{status:?} at offset {offset}"
                );
            }
        }
    }

    #[test]
    fn a_full_disk_is_service_not_available_so_the_producer_tries_another_broker() {
        let error = Refused::Shard(ShardError::Store(StoreError::Closed));
        assert_eq!(error.response_code(), response_code::SERVICE_NOT_AVAILABLE);
    }

    #[test]
    fn a_pull_refusal_keeps_the_java_remark() {
        let refused = Refused::TopicNotExist { topic: "T".into() };
        let request = RemotingCommand::request(11, Default::default());
        let response = refused.to_response(&request);
        assert_eq!(response.code, response_code::TOPIC_NOT_EXIST);
        assert_eq!(
            response.remark.as_deref(),
            Some("topic[T] not exist, apply first please!")
        );
    }
}

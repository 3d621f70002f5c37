//! The one error type of the client library.
//!
//! Every failure a caller can see is a [`ClientError`]: transport problems (connect, timeout,
//! a connection that died under a request), a broker or name server that answered with a
//! non-success code (kept with its code and remark), a topic without a route, and anything a
//! peer sent that could not be decoded (the decoder's error is kept as the source).

use std::time::Duration;

use ringmq_protocol::body::BodyError;
use ringmq_protocol::codes::response_code;
use ringmq_protocol::ext::HeaderError;
use ringmq_protocol::frame::{FrameEncodeError, FrameError};
use ringmq_protocol::message::{BatchError, MsgIdError, PropertiesError, RecordError};

/// Result alias used throughout the crate.
pub type Result<T, E = ClientError> = std::result::Result<T, E>;

/// Everything that can go wrong in a client call.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The TCP connection could not be opened.
    #[error("cannot connect to {addr}")]
    Connect {
        /// `host:port` that was dialled.
        addr: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// No response arrived within the request's timeout.
    #[error("request code {code} to {addr} timed out after {timeout:?}")]
    Timeout {
        /// Peer address.
        addr: String,
        /// Request code.
        code: i32,
        /// The timeout that expired.
        timeout: Duration,
    },
    /// The connection failed (read/write error, peer closed, undecodable frame) while the
    /// request was waiting; every request pending on it fails with this.
    #[error("connection to {addr} closed: {reason}")]
    ConnectionClosed {
        /// Peer address.
        addr: String,
        /// What closed it.
        reason: String,
    },
    /// The broker or name server answered with a non-success code.
    #[error("{addr} answered code {code} ({}): {remark}", response_code::name(*code).unwrap_or("?"))]
    Broker {
        /// Peer address.
        addr: String,
        /// Response code (protocol.md §2.1).
        code: i32,
        /// The response's remark (empty if none).
        remark: String,
    },
    /// The name servers know no route for the topic (and it could not be auto-created).
    #[error("no route for topic {topic}")]
    NoRoute {
        /// The topic.
        topic: String,
    },
    /// A route exists but has no queue usable for this operation (no writable queue with a
    /// master, or no readable queue).
    #[error("topic {topic} has no {what} queue")]
    NoQueue {
        /// The topic.
        topic: String,
        /// `"writable"` or `"readable"`.
        what: &'static str,
    },
    /// A broker name from a route has no address for the needed role.
    #[error("broker {broker_name} has no reachable address")]
    NoBrokerAddress {
        /// The broker name.
        broker_name: String,
    },
    /// A frame could not be encoded (too large header or frame).
    #[error("cannot encode request")]
    Encode(#[from] FrameEncodeError),
    /// A response header did not decode into its typed header.
    #[error("bad response header")]
    Header(#[from] HeaderError),
    /// A JSON body did not decode.
    #[error("bad response body")]
    Body(#[from] BodyError),
    /// A stored message in a pull or view response did not decode.
    #[error("bad stored message")]
    Record(#[from] RecordError),
    /// A frame from the peer did not decode.
    #[error("bad frame")]
    Frame(#[from] FrameError),
    /// A message id string is not a valid offset msgId.
    #[error("bad message id")]
    MsgId(#[from] MsgIdError),
    /// Message properties cannot be encoded (separator characters in a key or value).
    #[error("bad message properties")]
    Properties(#[from] PropertiesError),
    /// A batch body cannot be encoded.
    #[error("bad batch")]
    Batch(#[from] BatchError),
    /// A compressed body could not be inflated, or a body could not be deflated.
    #[error("compression failed")]
    Compression(#[source] std::io::Error),
    /// The OS refused a push consumer's listener threads.
    #[error("cannot start the listener threads")]
    ListenerThreads(#[source] std::io::Error),
    /// Local file I/O (broadcast offset store).
    #[error("{what} {path}")]
    File {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: String,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// The caller passed something unusable (empty topic, message too large, …).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The client has been shut down (or not started).
    #[error("client is {0}")]
    State(&'static str),
}

impl ClientError {
    /// The broker response code, if this is a [`ClientError::Broker`].
    pub fn broker_code(&self) -> Option<i32> {
        match self {
            ClientError::Broker { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// A transport-level failure (connect, timeout, connection lost): the request may be
    /// retried on another broker.
    pub fn is_transport(&self) -> bool {
        matches!(
            self,
            ClientError::Connect { .. }
                | ClientError::Timeout { .. }
                | ClientError::ConnectionClosed { .. }
        )
    }
}

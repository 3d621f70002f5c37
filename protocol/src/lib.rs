//! The RocketMQ remoting protocol as ringmq speaks it: no I/O, only bytes in and out.
//!
//! - [`frame`]: the outer length-prefixed frame and its size limits.
//! - [`command`]: the logical `RemotingCommand` (code, opaque, flags, extFields, body).
//! - [`header`]: the two header serializations, JSON and ROCKETMQ binary.
//! - [`codes`]: request and response code tables.
//! - [`ext`] and [`headers`]: typed request/response headers over extFields.
//! - [`body`]: JSON bodies (heartbeat, routes, cluster info, stats) with fastjson quirks.
//! - [`message`]: the stored-message (CommitLog record) codec, batch bodies,
//!   properties, message ids and the Java `String.hashCode` used for tags.
//!
//! Every decoder returns a typed error; nothing a peer sends can make it panic.

pub mod body;
pub mod codes;
pub mod command;
pub mod ext;
pub mod frame;
pub mod header;
pub mod headers;
pub mod message;

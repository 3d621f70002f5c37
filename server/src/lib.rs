//! The ringmq broker (design.md): configuration, shards, connections, processors,
//! long polling and the embedded name server.

pub mod backend;
pub mod broker;
pub mod broker_conf;
pub mod config;
pub mod connection;
pub mod groups;
pub mod inbox;
pub mod listener;
pub mod namesrv;
pub mod notify;
pub mod placement;
pub mod registration;
pub mod remoting_client;
pub mod shard;
pub mod shutdown;
pub mod topics;

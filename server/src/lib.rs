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
pub mod long_poll;
pub mod namesrv;
pub mod notify;
pub mod placement;
pub mod processor;
pub mod registration;
pub mod remoting_client;
pub mod shard;
pub mod shutdown;
pub mod stats;
pub mod timer_wheel;
pub mod topics;

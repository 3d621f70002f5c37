//! The ringmq broker (design.md): configuration, shards, connections, processors,
//! long polling and the embedded name server.
//!
//! A request's path: [`connection`] reads a frame → [`router`] picks its processor →
//! [`processor`] decodes and checks it, then calls the [`shard`] API (the hop to the
//! queue's owner, long polling, the store) → the processor encodes the answer → the
//! connection writes it.

pub mod backend;
pub mod broker_conf;
pub mod clock;
pub mod config;
pub mod connection;
pub mod durable_file;
pub mod groups;
pub mod heap;
pub mod listener;
pub mod memory;
pub mod namesrv;
pub mod notify;
pub mod offload;
pub mod placement;
pub mod processor;
pub mod queue_locks;
pub mod redirect;
pub mod registration;
pub mod remoting_client;
pub mod replication;
pub mod reply;
pub mod router;
pub mod runtime_config;
pub mod schedule;
pub mod shard;
pub mod shutdown;
pub mod stats;
pub mod subscription_groups;
pub mod timer_wheel;
pub mod topics;

//! ringmq's client library (tokio): producer, lite-pull consumer, push consumer, admin calls.
//! It speaks the RocketMQ remoting protocol through `ringmq-protocol`, so it works against
//! ringmq and against any broker that follows the RocketMQ protocol (Apache RocketMQ 4.x/5.x).
//!
//! - [`Producer`]: sync / async / oneway / batch sends with retries and queue selection.
//! - [`LitePullConsumer`]: `subscribe` (group rebalance) or `assign`, `poll`, `seek`, commits.
//! - [`PushConsumer`]: long-polling pull loops, a concurrent listener, send-back on failure,
//!   rebalance (averaging or sticky), clustering and broadcasting.
//! - [`QueuePuller`]: one queue's long-polling pull (what the consumers above run per queue),
//!   and [`start_offset`]: where a queue starts (stored offset, else `consumeFromWhere`).
//! - [`Admin`]: topic, cluster, broker and consumer-group administration.
//! - [`remoting`]: the multiplexed connection pool underneath.

pub mod admin;
pub mod allocate;
pub mod api;
pub mod consumer;
pub mod core;
pub mod error;
mod listener_pool;
pub mod message;
pub mod producer;
pub mod pull_consumer;
pub mod puller;
pub mod push_consumer;
pub mod remoting;
pub mod route;

pub use admin::Admin;
pub use allocate::AllocateStrategy;
pub use consumer::{start_offset, ConsumeFrom, OffsetStore, Subscription};
pub use core::ClientConfig;
pub use error::{ClientError, Result};
pub use message::{Message, MessageExt};
pub use producer::{Producer, ProducerConfig, QueueSelector, SendResult, SendStatus};
pub use pull_consumer::{LitePullConfig, LitePullConsumer};
pub use puller::{PullCommit, PullFlavor, Pulled, QueuePuller};
pub use push_consumer::{ConsumeStatus, PushConsumer, PushConsumerConfig};
pub use ringmq_protocol as protocol;
pub use ringmq_protocol::body::{MessageModel, MessageQueue};

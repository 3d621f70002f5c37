//! ringmq's client library (tokio): producer, pull consumer, push consumer, admin calls.
//! It speaks the RocketMQ remoting protocol through `ringmq-protocol`; written under issue 5.

pub use ringmq_protocol as protocol;

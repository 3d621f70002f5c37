//! Shared by the client's integration tests: the real `ringmq-server` binary, started on port 0
//! with a temporary store by the shared test kit (`ringmq-testkit`), and scripted peers.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod scripted;

pub use ringmq_testkit::Broker;

/// Starts a broker with an embedded name server on a fresh store (see `ringmq_testkit`).
pub fn start_broker(extra_args: &[&str]) -> Broker {
    Broker::start(extra_args)
}

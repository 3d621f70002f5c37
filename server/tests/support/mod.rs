//! The server's integration tests run the real binary through the shared test kit.
#![allow(dead_code, unused_imports)]

pub use ringmq_testkit::{pull_request, request, send_request, Broker, TestClient};

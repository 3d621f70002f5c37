//! Acceptance tests of `ringmq-server` driven by a RocketMQ client we did not write.
//!
//! This crate holds no library code: its integration tests (in `tests/`) start the real
//! `ringmq-server` binary on port 0 with a temporary store and drive it with
//! `rocketmq-client-rust` 1.0.0 from crates.io — producer, push consumers and lite-pull
//! consumer — to prove that an unmodified third-party client produces and consumes through
//! ringmq. `tests/java_client.rs` runs the Maven suite in `java/`: the official Apache RocketMQ
//! Java client (5.x and 4.9.x) and its admin API, the compatibility reference; `features.tsv`
//! and `compat-table.py` turn the results into the README's compatibility table.

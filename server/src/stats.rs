//! Broker-wide counters for GET_BROKER_RUNTIME_INFO and metrics: plain relaxed atomics,
//! bumped by every shard; readers tolerate slightly stale values.

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct BrokerStats {
    /// Messages stored since start.
    pub messages_put: AtomicU64,
    /// Messages handed to consumers since start.
    pub messages_got: AtomicU64,
    /// Body bytes stored since start.
    pub bytes_put: AtomicU64,
    /// Sends refused (any non-success answer).
    pub sends_refused: AtomicU64,
    /// Pulls answered with another broker's id than this one's as `suggestWhichBrokerId`:
    /// to a slave on a master, back to the master on a slave (design.md §8).
    pub pulls_redirected: AtomicU64,
    /// Pulls that read messages the page-cache estimator called hot.
    pub page_cache_hot_reads: AtomicU64,
    /// Pulls that read messages the page-cache estimator called cold.
    pub page_cache_cold_reads: AtomicU64,
}

impl BrokerStats {
    pub fn add(counter: &AtomicU64, value: u64) {
        counter.fetch_add(value, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

//! The typed configuration of a shard's store: [`StoreConfig`], its defaults in one place
//! ([`StoreConfig::default`]) and the checks [`crate::store::Store::open`] makes before it
//! touches the disk.
//!
//! Owns no state and persists nothing: a crash leaves nothing behind, and a store reopened
//! with a different configuration (other than `segment_size_bytes`, which the segments on
//! disk fix) simply behaves by the new one.

use crate::commitlog::flush::FlushPolicy;
use crate::commitlog::{
    DEFAULT_SEGMENT_SIZE_BYTES, MAX_SEGMENT_SIZE_BYTES, MIN_SEGMENT_SIZE_BYTES,
};
use crate::consumequeue::DEFAULT_ENTRIES_PER_FILE;
use crate::disk_guard::DiskGuardConfig;
use crate::error::StoreError;
use crate::page_cache::DEFAULT_RATIO_PERCENT;
use crate::retention::RetentionConfig;

use super::TransferLimits;

/// Default interval between checkpoints. Each one fdatasyncs every consume queue touched
/// since the last, thousands with messages spread over thousands of queues, so not every
/// second; recovery after a crash scans at most this much log (docs/decisions.md,
/// "Consume-queue writes and the checkpoint interval").
pub const DEFAULT_CHECKPOINT_INTERVAL_MS: u64 = 10_000;

/// Configuration of a shard's store; [`StoreConfig::default`] holds the defaults.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// Size of every CommitLog segment (1 GiB).
    pub segment_size_bytes: u64,
    /// When appends are answered (async flush every 500 ms).
    pub flush: FlushPolicy,
    /// How often the checkpoint is advanced, fdatasyncing the queues touched since the last
    /// one (1000 ms, RocketMQ's `flushIntervalConsumeQueue`).
    pub checkpoint_interval_ms: u64,
    /// Entries per ConsumeQueue file (300 000).
    pub cq_entries_per_file: u64,
    /// Verify body CRCs while recovering (RocketMQ `checkCRCOnRecover`, true).
    pub check_crc_on_recover: bool,
    /// Appends wait while this many bytes are appended but not yet written (64 MiB).
    pub max_pending_bytes: usize,
    /// Free-space limits for appends.
    pub disk_guard: DiskGuardConfig,
    /// `accessMessageInMemoryMaxRatio` (40).
    pub page_cache_ratio_percent: u64,
    /// RAM size for the in-memory rule; `None` reads this machine's.
    pub total_ram_bytes: Option<u64>,
    /// Ask the kernel whether pulled bytes are cached (true) besides the ratio rule.
    pub ask_kernel_page_cache: bool,
    /// Per-pull limits.
    pub transfer: TransferLimits,
    /// CommitLog retention, run by a task every `check_interval`; `None` (the default for a
    /// store opened on its own) keeps every segment. The broker sets RocketMQ's defaults.
    pub retention: Option<RetentionConfig>,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            segment_size_bytes: DEFAULT_SEGMENT_SIZE_BYTES,
            flush: FlushPolicy::default(),
            checkpoint_interval_ms: DEFAULT_CHECKPOINT_INTERVAL_MS,
            cq_entries_per_file: DEFAULT_ENTRIES_PER_FILE,
            check_crc_on_recover: true,
            max_pending_bytes: 64 << 20,
            disk_guard: DiskGuardConfig::default(),
            page_cache_ratio_percent: DEFAULT_RATIO_PERCENT,
            total_ram_bytes: None,
            ask_kernel_page_cache: true,
            transfer: TransferLimits::default(),
            retention: None,
        }
    }
}

impl StoreConfig {
    /// Refuses values the store cannot run with, for shard `shard_id`. Pure.
    pub(super) fn validate(&self, shard_id: u8) -> Result<(), StoreError> {
        if !(MIN_SEGMENT_SIZE_BYTES..=MAX_SEGMENT_SIZE_BYTES).contains(&self.segment_size_bytes) {
            return Err(StoreError::InvalidConfig {
                name: "segment_size_bytes",
                value: self.segment_size_bytes,
                expected: "4096 ..= 2^31 - 1",
            });
        }
        if shard_id > 127 {
            return Err(StoreError::InvalidConfig {
                name: "shard_id",
                value: u64::from(shard_id),
                expected: "0 ..= 127 (physical offsets must stay positive)",
            });
        }
        if let FlushPolicy::Async { interval_ms: 0 } = self.flush {
            return Err(StoreError::InvalidConfig {
                name: "flush interval_ms",
                value: 0,
                expected: "at least 1",
            });
        }
        if self.checkpoint_interval_ms == 0 {
            return Err(StoreError::InvalidConfig {
                name: "checkpoint_interval_ms",
                value: 0,
                expected: "at least 1",
            });
        }
        Ok(())
    }
}

//! Background durability of a shard's store: the flusher task (an fdatasync of the log
//! every `interval_ms` with `FlushPolicy::Async`) and checkpoints (every
//! `checkpoint_interval_ms`, on [`crate::store::Store::flush`] and at close).
//!
//! **Owns** the checkpoint file's value. A checkpoint fdatasyncs the log and the
//! ConsumeQueues touched since the last one, and only then records the dispatched end it
//! read before syncing: below it, records and their queue entries are durable. Checkpoints
//! are serialized (they share a temp file). A queue whose fdatasync fails stays dirty and
//! the checkpoint does not move; a failed log fdatasync fails the log for good.
//!
//! **Invariants.** `checkpointed ≤ dispatched_end`, and a checkpoint is written only at or
//! below `durable_end`; it never moves backwards.
//!
//! **Crash.** Before the checkpoint file is replaced, the old checkpoint stands (lower, so
//! recovery scans more); the file is replaced whole (see [`crate::commitlog::flush`]).
//! Either way recovery starts at or below the end of what is durable.

use std::rc::Rc;
use std::time::Duration;

use crate::commitlog::flush::{write_checkpoint, FlushPolicy};
use crate::error::{ErrorChain, StoreError};

use super::Inner;

/// Longest wait between two turns of the flusher, whatever the intervals.
const MAX_TICK_MS: u64 = 1000;

/// How often a failing background flush is logged (with how many failures were not).
const FAILURE_LOG_INTERVAL: Duration = Duration::from_secs(60);

/// Lets one event through per interval and counts those it held back.
#[derive(Debug)]
struct RateLimit {
    interval: Duration,
    last: Option<std::time::Instant>,
    suppressed: u64,
}

impl RateLimit {
    fn new(interval: Duration) -> Self {
        RateLimit {
            interval,
            last: None,
            suppressed: 0,
        }
    }

    /// `Some(events held back since the last one let through)` if this one may pass.
    fn allow(&mut self) -> Option<u64> {
        let now = std::time::Instant::now();
        if self
            .last
            .is_some_and(|at| now.duration_since(at) < self.interval)
        {
            self.suppressed += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.suppressed))
    }
}

impl Inner {
    /// See [`crate::store::Store::flush`].
    pub(super) async fn flush(&self) -> Result<(), StoreError> {
        self.wait_appended_written().await?;
        self.checkpoint().await
    }

    /// Waits until every append made so far is written (and dispatched).
    async fn wait_appended_written(&self) -> Result<(), StoreError> {
        // The group collecting appends if it holds any, else the last one taken (it may
        // still be in flight).
        let open = self.log.open_group_seq();
        let seq = if self.log.pending_bytes() > 0 {
            open
        } else {
            open - 1
        };
        if seq > self.progress.done() {
            self.writer_wake.notify();
            self.progress
                .wait_for(seq)
                .await
                .map_err(|source| StoreError::LogFailed { source })?;
        }
        Ok(())
    }

    /// See [`crate::store::Store::sync_log`].
    pub(super) async fn sync_log(&self) -> Result<(), StoreError> {
        self.wait_appended_written().await?;
        if self.log.written_end() > self.log.durable_end() {
            self.log.sync().await?;
        }
        Ok(())
    }

    /// Async fdatasync (with `FlushPolicy::Async`) and checkpoints, until closed.
    pub(super) async fn flusher_loop(self: Rc<Self>) {
        let flush_ms = match self.config.flush {
            FlushPolicy::Async { interval_ms } => Some(interval_ms),
            FlushPolicy::Sync => None,
        };
        // At least once a second: the next segment is preallocated on the tick.
        let tick_ms = flush_ms
            .unwrap_or(MAX_TICK_MS)
            .min(MAX_TICK_MS)
            .min(self.config.checkpoint_interval_ms);
        let mut since_checkpoint_ms = 0;
        let mut failure_log = RateLimit::new(FAILURE_LOG_INTERVAL);
        loop {
            let sleep = compio::time::sleep(Duration::from_millis(tick_ms));
            let woken = self.flusher_wake.wait();
            futures_util::future::select(std::pin::pin!(sleep), std::pin::pin!(woken)).await;
            if self.closing.get() {
                return;
            }
            since_checkpoint_ms += tick_ms;
            let result = if since_checkpoint_ms >= self.config.checkpoint_interval_ms {
                since_checkpoint_ms = 0;
                self.checkpoint().await
            } else if self.log.written_end() > self.log.durable_end() {
                self.log.sync().await.map(|_| ())
            } else {
                Ok(())
            };
            if let Err(error) = result {
                if let Some(suppressed) = failure_log.allow() {
                    tracing::error!(error = %ErrorChain(&error), shard = self.shard_id, suppressed, "background flush failed");
                }
                if let Some(source) = self.log.failure() {
                    self.progress.fail(source);
                }
            }
            self.preallocate_next_segment().await;
        }
    }

    /// Creates the segment after the one being written once that one is half full, so that
    /// appends rarely wait for a preallocation, and a disk too full for the next segment
    /// shows in the log before appends need it. A failure here refuses nothing: the append
    /// that needs the segment tries again (and is refused if the disk is still full).
    async fn preallocate_next_segment(&self) {
        let segment_size = self.config.segment_size_bytes;
        let end = self.log.appended_end();
        let next = end - end % segment_size + segment_size;
        if end % segment_size < segment_size / 2 || self.log.segment(next).is_some() {
            return;
        }
        match self.log.create_segment(next).await {
            Ok(()) => self.segment_created(),
            Err(error) => {
                if self
                    .preallocation_failures
                    .replace(self.preallocation_failures.get() + 1)
                    == 0
                {
                    tracing::warn!(error = %ErrorChain(&error), shard = self.shard_id, "could not preallocate the next commit log segment; sends that need it are refused until space is freed");
                }
                return;
            }
        }
        self.preallocation_failures.set(0);
    }

    /// fdatasyncs the log and the queues touched since the last checkpoint, then records
    /// the dispatched end as the new checkpoint.
    pub(super) async fn checkpoint(&self) -> Result<(), StoreError> {
        let _serialized = self.checkpoint_lock.lock().await;
        // Everything below `target` is written and its entries are appended to the queues.
        let target = self.dispatched_end.get();
        self.log.sync().await?;
        let slots = std::mem::take(&mut *self.dirty_slots.borrow_mut());
        let mut failed = None;
        for slot in slots {
            slot.dirty.set(false);
            if !self.queues.holds(&slot) {
                // Its topic was deleted, files and all, after the entries were appended:
                // writing them would fail on the missing directory at every checkpoint.
                continue;
            }
            let result = slot.cq.lock().await.sync().await;
            if let Err(error) = result {
                if !slot.dirty.replace(true) {
                    self.dirty_slots.borrow_mut().push(Rc::clone(&slot));
                }
                failed.get_or_insert(slot.error(error));
            }
        }
        if let Some(error) = failed {
            return Err(error);
        }
        // The checkpoint never passes what is durable: recovery trusts everything below it.
        assert!(
            target <= self.log.durable_end(),
            "checkpoint {target} past the durable end {}",
            self.log.durable_end()
        );
        if target > self.checkpointed.get() {
            write_checkpoint(self.log.dir(), target).await?;
            self.checkpointed.set(target);
        }
        self.debug_assert_log_ends();
        Ok(())
    }
}

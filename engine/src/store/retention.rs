//! Retention of a shard's store: the task that deletes the oldest CommitLog segments as
//! [`crate::retention`] decides, and moves the queues' min offsets past them.
//!
//! **Owns** the order of one deletion, chosen so that a kill at any step leaves a store
//! that opens cleanly and agrees with itself:
//! 1. only a segment that is not the log's last (active) one and lies wholly below the
//!    checkpoint is a candidate, so recovery never needs its records;
//! 2. every queue's min offset moves (in memory) to its first entry at or past the next
//!    segment's start: from here on a pull below it is answered OFFSET_TOO_SMALL with the
//!    new min, never a read of the segment;
//! 3. the segment leaves the log's map (readers holding its `Rc` finish their reads: the
//!    file stays open until they drop it), its file is unlinked through io_uring (the
//!    kernel punts unlinks to its workers, so the shard's loop never waits on the
//!    filesystem) and the log directory is fsynced;
//! 4. queue files whose entries all lie below their queue's new min are deleted (their
//!    directories are fsynced by the next checkpoint).
//!
//! **Crash.** Nothing records a deletion but the files themselves. Killed before step 3's
//! unlink: nothing changed on disk. After it: the log opens at its next segment (recovery
//! accepts a log that does not start at 0, and the checkpoint lies past the deleted
//! segment), and open repeats steps 2 and 4 from the log's first segment
//! ([`trim_queues_to_log_min`]), deleting whatever queue files are still below it.
//! A power loss may undo an unlink not yet covered by the directory's fsync; the segment
//! then comes back whole and is deleted again by a later round.
//!
//! **Bounds.** A round looks at most at `max_segments_per_round` segments (one statx each)
//! and deletes at most that many; rounds run every `check_interval` and never overlap.

use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, SystemTime};

use crate::clock::local_hour;
use crate::commitlog::sync_dir;
use crate::disk_guard::FsUsage;
use crate::error::StoreError;
use crate::queues::QueueTable;
use crate::retention::{plan_round, DeleteReason, RetentionConfig, RoundFacts, SegmentFacts};

use super::Inner;
#[cfg(doc)]
use super::Store;

/// One segment a retention round deleted.
#[derive(Debug, Clone, PartialEq)]
pub struct DeletedSegment {
    /// The segment file.
    pub path: PathBuf,
    /// Its start, a byte offset in the shard's log.
    pub start_offset: u64,
    /// Bytes its deletion frees (the file's size; preallocated).
    pub freed_bytes: u64,
    /// Which limit was hit.
    pub reason: DeleteReason,
    /// The store's min physical offset afterwards.
    pub new_min_physical_offset: i64,
}

impl Inner {
    /// Runs a round every `check_interval` until the store closes.
    pub(super) async fn retention_loop(self: Rc<Self>, config: RetentionConfig) {
        let interval = config.check_interval.max(Duration::from_millis(1));
        loop {
            let sleep = compio::time::sleep(interval);
            let woken = self.retention_wake.wait();
            futures_util::future::select(std::pin::pin!(sleep), std::pin::pin!(woken)).await;
            if self.closing.get() {
                return;
            }
            if let Err(error) = self.retention_round(&config).await {
                // The next round tries again; the log and the queues stay consistent (see the
                // module documentation), they only keep more than they should.
                tracing::error!(%error, shard = self.shard_id, "commit log retention round failed");
            }
        }
    }

    /// One round: gathers the facts, asks the policy, deletes what it says, oldest first.
    /// See [`Store::run_retention_round`].
    pub(super) async fn retention_round(
        &self,
        config: &RetentionConfig,
    ) -> Result<Vec<DeletedSegment>, StoreError> {
        let _one_round_at_a_time = self.retention_lock.lock().await;
        let candidates = self
            .deletion_candidates(config.max_segments_per_round)
            .await?;
        if candidates.is_empty() {
            return Ok(Vec::new());
        }
        let usage = match FsUsage::of(&self.root) {
            Ok(usage) => Some(usage),
            Err(error) => {
                tracing::warn!(%error, path = %self.root.display(), "statvfs failed; retention acts only at deleteWhen hours");
                None
            }
        };
        let now = SystemTime::now();
        let facts = RoundFacts {
            candidates: &candidates,
            now,
            local_hour: local_hour(now),
            usage,
        };
        let mut deleted = Vec::new();
        for deletion in plan_round(&facts, config) {
            if self.log.min_log_offset() != deletion.start_offset || self.closing.get() {
                break;
            }
            match self.delete_oldest_segment(deletion.reason).await? {
                Some(segment) => deleted.push(segment),
                None => break,
            }
        }
        Ok(deleted)
    }

    /// The segments a round may delete, oldest first, at most `limit`: every segment but
    /// the last, as long as it ends at or below the checkpoint.
    async fn deletion_candidates(&self, limit: usize) -> Result<Vec<SegmentFacts>, StoreError> {
        let checkpointed = self.checkpointed.get();
        let starts = self.log.segment_starts();
        let mut out = Vec::new();
        for start in starts
            .iter()
            .take(starts.len().saturating_sub(1))
            .take(limit)
        {
            let Some(segment) = self.log.segment(*start) else {
                break;
            };
            if segment.end_offset() > checkpointed {
                break;
            }
            let metadata = segment
                .file()
                .metadata()
                .await
                .map_err(StoreError::io("stat segment", segment.path()))?;
            let last_modified = metadata
                .modified()
                .map_err(StoreError::io("stat segment", segment.path()))?;
            out.push(SegmentFacts {
                start_offset: *start,
                size_bytes: metadata.len(),
                last_modified,
            });
        }
        Ok(out)
    }

    /// Deletes the log's oldest segment in the order of the module documentation; `None`
    /// if the log has only its active segment.
    async fn delete_oldest_segment(
        &self,
        reason: DeleteReason,
    ) -> Result<Option<DeletedSegment>, StoreError> {
        let starts = self.log.segment_starts();
        let (Some(&oldest_start), Some(&next_start)) = (starts.first(), starts.get(1)) else {
            return Ok(None);
        };
        assert!(
            next_start <= self.checkpointed.get(),
            "retention would delete a segment the checkpoint does not cover"
        );
        self.queues.advance_mins(next_start).await?;
        let Some(segment) = self.log.remove_oldest_segment() else {
            return Ok(None);
        };
        debug_assert_eq!(segment.start_offset(), oldest_start);
        let path = segment.path().to_path_buf();
        let freed_bytes = segment.size_bytes();
        drop(segment);
        match compio::fs::remove_file(&path).await {
            Ok(()) => {}
            // Gone already (removed by hand): the log no longer has it either way.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(StoreError::io("delete segment", &path)(e)),
        }
        sync_dir(self.log.dir())
            .await
            .map_err(StoreError::io("sync directory", self.log.dir()))?;
        self.update_store_bytes();
        let (trimmed, queue_files) = self.queues.delete_files_below_mins().await?;
        for slot in trimmed {
            if !slot.dirty.replace(true) {
                self.dirty_slots.borrow_mut().push(slot);
            }
        }
        let new_min_physical_offset = self.min_physical_offset();
        tracing::info!(
            shard = self.shard_id,
            segment = %path.display(),
            freed_bytes,
            new_min_physical_offset,
            queue_files_deleted = queue_files,
            "commit log segment deleted: {reason}"
        );
        Ok(Some(DeletedSegment {
            path,
            start_offset: oldest_start,
            freed_bytes,
            reason,
            new_min_physical_offset,
        }))
    }

    /// Physical offset of the first byte still stored.
    pub(super) fn min_physical_offset(&self) -> i64 {
        crate::commitlog::to_physical(self.shard_id, self.log.min_log_offset()).unwrap_or(0)
    }
}

/// At open: moves every queue's min offset past `log_min` (the log's first segment's start)
/// and deletes the queue files below it, repeating steps 2 and 4 after a crash in the
/// middle of a deletion. Not durable until the queues are synced.
pub(super) async fn trim_queues_to_log_min(
    queues: &QueueTable,
    shard_id: u8,
    log_min: u64,
) -> Result<(), StoreError> {
    let moved = queues.advance_mins(log_min).await?;
    let (_, files) = queues.delete_files_below_mins().await?;
    if moved > 0 || files > 0 {
        tracing::info!(
            shard = shard_id,
            log_min,
            queues_moved = moved,
            queue_files_deleted = files,
            "queues trimmed to the commit log's first segment"
        );
    }
    Ok(())
}

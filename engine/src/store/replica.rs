//! Replication of a shard's log (design.md §8, protocol.md §8): the master reads frames of
//! whole records from its log, the slave appends them at the same offsets.
//!
//! **Frames.** A frame is `(log offset, bytes)`: whole records (and, last, the blank record
//! that closes a segment) of one segment, exactly as they lie in the master's log. The
//! master sends only what is dispatched (written, and with `FlushPolicy::Sync` also
//! fdatasynced), so a slave never holds bytes a power cut could take from the master.
//!
//! **Slave.** [`Store::append_replicated`] checks every record of a frame (CRC, its
//! PHYSICALOFFSET field is where it lands, its queue offset is the next one of its queue)
//! before placing any, then hands the bytes to the same group writer as an append: they are
//! written, dispatched into the ConsumeQueues and announced as arrivals (long polls wake) in
//! the same way, so the slave's queue offsets are the master's. A frame that does not
//! continue this log is refused whole ([`StoreError::ReplicaDiverged`]).
//!
//! **Crash.** Nothing here is persisted beyond what the writer writes; a slave restarted on
//! its store recovers its log like any store and asks the master to continue from its end.

use bytes::Bytes;
use ringmq_protocol::message::{peek_record_kind, sysflag, RecordKind};

use crate::commitlog::{to_physical, MAX_LOG_OFFSET};
use crate::consumequeue::CqEntry;
use crate::error::StoreError;
use crate::queues::QueueSlot;
use crate::recovery::{scan_records, ScanEnd};

use super::writer::Dispatch;
use super::{Inner, Store};

/// The smallest frame a master reads at once (a record larger than this is read whole).
pub const DEFAULT_FRAME_BYTES: usize = 256 * 1024;

/// Whole records of one segment of a master's log, from `log_offset`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicationFrame {
    /// Byte offset in the shard's log of the first byte.
    pub log_offset: u64,
    /// The records' bytes, exactly as stored.
    pub bytes: Bytes,
}

impl Store {
    /// Master: the records dispatched from `log_offset` on, up to about `max_bytes` (at
    /// least one whole record), as one frame of one segment; `None` when nothing past
    /// `log_offset` is dispatched yet. A `log_offset` inside the unwritten tail of a segment
    /// closed by a blank record continues at the next segment.
    pub async fn replication_frame(
        &self,
        log_offset: u64,
        max_bytes: usize,
    ) -> Result<Option<ReplicationFrame>, StoreError> {
        let inner = &self.inner;
        let seg = inner.config.segment_size_bytes;
        let mut from = log_offset;
        // Bounded: at most one jump over a closed segment's tail, then one read that may
        // grow to the size of the record found there.
        let mut want = max_bytes.max(1);
        for _ in 0..4 {
            let end = inner.dispatched_end.get();
            if from >= end {
                return Ok(None);
            }
            let seg_start = from - from % seg;
            let seg_end = seg_start + seg;
            let len = (end.min(seg_end) - from).min(want as u64);
            let segment = inner.log.segment(seg_start).ok_or(StoreError::NotFound {
                physical_offset: to_physical(inner.shard_id, from).unwrap_or(-1),
            })?;
            let bytes = segment
                .read_exact_at(from - seg_start, len as usize)
                .await
                .map_err(StoreError::io("read segment", segment.path()))?;
            let outcome = scan_records(&bytes, from, seg_end, inner.shard_id, false);
            if outcome.valid_len > 0 {
                let mut bytes = bytes;
                bytes.truncate(outcome.valid_len);
                return Ok(Some(ReplicationFrame {
                    log_offset: from,
                    bytes: Bytes::from(bytes),
                }));
            }
            let zeros = bytes.iter().take(8).all(|&b| b == 0);
            match outcome.end {
                // The rest of a segment a blank record closed (fewer than 8 bytes of it
                // read as "need more"): continue at the next one.
                ScanEnd::EndOfData | ScanEnd::NeedMore if zeros && end > seg_end => {
                    from = seg_end;
                }
                // One record larger than what was read: read it whole.
                ScanEnd::NeedMore => match peek_record_kind(&bytes) {
                    Ok(RecordKind::Message { total_size, .. }) if total_size as usize > want => {
                        want = total_size as usize;
                    }
                    _ => return Err(corrupt(inner.shard_id, from)),
                },
                _ => return Err(corrupt(inner.shard_id, from)),
            }
        }
        Err(corrupt(inner.shard_id, from))
    }

    /// Master: waits until something past `log_offset` is dispatched; `Err` if the log
    /// failed. Returns at once if it already is.
    pub async fn wait_dispatched_past(&self, log_offset: u64) -> Result<(), StoreError> {
        let inner = &self.inner;
        // Bounded by the writer: each turn a group completes, moving the dispatched end.
        while inner.dispatched_end.get() <= log_offset {
            let next = inner.progress.done() + 1;
            inner
                .progress
                .wait_for(next)
                .await
                .map_err(|source| StoreError::LogFailed { source })?;
            if inner.closing.get() {
                return Err(StoreError::Closed);
            }
        }
        Ok(())
    }

    /// The log's bytes in `range`, which must lie in one segment and below the dispatched
    /// end (a slave's tail check at the resume point).
    pub async fn read_log_range(&self, range: std::ops::Range<u64>) -> Result<Vec<u8>, StoreError> {
        let inner = &self.inner;
        let seg = inner.config.segment_size_bytes;
        let not_found = || StoreError::NotFound {
            physical_offset: to_physical(inner.shard_id, range.start).unwrap_or(-1),
        };
        if range.is_empty() {
            return Ok(Vec::new());
        }
        let seg_start = range.start - range.start % seg;
        if range.end > inner.dispatched_end.get() || range.end > seg_start + seg {
            return Err(not_found());
        }
        let segment = inner.log.segment(seg_start).ok_or_else(not_found)?;
        segment
            .read_exact_at(range.start - seg_start, (range.end - range.start) as usize)
            .await
            .map_err(StoreError::io("read segment", segment.path()))
    }

    /// Where this log's dispatched records end: what a slave reports to its master as
    /// received (written, and with `FlushPolicy::Sync` fdatasynced, and readable).
    pub fn dispatched_log_end(&self) -> u64 {
        self.inner.dispatched_end.get()
    }

    /// Slave: appends a frame copied from the master's log at `log_offset` (see the module
    /// documentation). Returns once the frame is written (and synced with
    /// `FlushPolicy::Sync`) and dispatched.
    pub async fn append_replicated(&self, log_offset: u64, bytes: Bytes) -> Result<(), StoreError> {
        let seq = self.inner.append_replicated(log_offset, bytes).await?;
        self.inner
            .progress
            .wait_for(seq)
            .await
            .map_err(|source| StoreError::LogFailed { source })
    }
}

impl Inner {
    async fn append_replicated(&self, log_offset: u64, bytes: Bytes) -> Result<u64, StoreError> {
        let seg = self.config.segment_size_bytes;
        if log_offset > MAX_LOG_OFFSET {
            return Err(StoreError::LogFull {
                shard_id: self.shard_id,
            });
        }
        let seg_start = log_offset - log_offset % seg;
        let outcome = scan_records(&bytes, log_offset, seg_start + seg, self.shard_id, true);
        let whole = outcome.valid_len == bytes.len()
            && matches!(outcome.end, ScanEnd::NeedMore | ScanEnd::SegmentClosed);
        if !whole {
            return Err(StoreError::ReplicaDiverged {
                log_offset,
                expected_log_offset: self.log.appended_end(),
                detail: "the frame is not whole valid records of this shard's log",
            });
        }
        let mut slots = Vec::with_capacity(outcome.records.len());
        for record in &outcome.records {
            if sysflag::skipped_by_dispatch(record.sys_flag) {
                slots.push(None);
                continue;
            }
            if !self.queues.owns(&record.topic, record.queue_id) {
                return Err(StoreError::ReplicaDiverged {
                    log_offset: record.log_offset,
                    expected_log_offset: self.log.appended_end(),
                    detail:
                        "a record's queue is placed on another shard here (another shard count?)",
                });
            }
            slots.push(Some(
                self.queues.slot(&record.topic, record.queue_id).await?,
            ));
        }
        if self.log.segment(seg_start).is_none() {
            self.log.create_segment(seg_start).await?;
            self.segment_created();
        }
        if self.closing.get() {
            return Err(StoreError::Closed);
        }
        self.check_disk_guard()?;
        // From here nothing awaits: checks first, then the placement, as one step.
        // Each queue's next offset as the frame's records advance it.
        let mut next_offsets: Vec<(&QueueSlot, i64)> = Vec::new();
        for (record, slot) in outcome.records.iter().zip(&slots) {
            if let Some(slot) = slot {
                let index = next_offsets
                    .iter()
                    .position(|(s, _)| std::ptr::eq(*s, &**slot))
                    .unwrap_or_else(|| {
                        next_offsets.push((slot, slot.next_offset.get()));
                        next_offsets.len() - 1
                    });
                let expected = next_offsets[index].1;
                next_offsets[index].1 += 1;
                if record.queue_offset != expected {
                    return Err(StoreError::ReplicaDiverged {
                        log_offset: record.log_offset,
                        expected_log_offset: self.log.appended_end(),
                        detail: "a record's queue offset is not its queue's next one",
                    });
                }
            }
        }
        let seq = self.log.append_replicated(log_offset, &bytes)?;
        self.disk_guard
            .borrow_mut()
            .note_written(bytes.len() as u64);
        let mut pending = self.pending_dispatch.borrow_mut();
        for (record, slot) in outcome.records.iter().zip(slots) {
            let Some(slot) = slot else { continue };
            slot.next_offset.set(record.queue_offset + 1);
            pending.push(Dispatch::new(
                slot,
                record.queue_offset,
                CqEntry {
                    physical_offset: record.physical_offset,
                    size: i32::try_from(record.size_bytes).unwrap_or(i32::MAX),
                    tags_code: record.tags_code,
                },
            ));
        }
        drop(pending);
        self.writer_wake.notify();
        Ok(seq)
    }
}

fn corrupt(shard_id: u8, log_offset: u64) -> StoreError {
    let error = StoreError::ReplicaDiverged {
        log_offset,
        expected_log_offset: log_offset,
        detail: "the master's own log holds no valid record here",
    };
    tracing::error!(shard = shard_id, %error, "replication read found no valid record");
    error
}

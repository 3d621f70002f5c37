//! The read path of a shard's store (design.md §5): PULL (`get_messages`) and the reads
//! of single records (VIEW_MESSAGE_BY_ID). It owns RocketMQ's statuses
//! ([`GetMessageStatus`]), the per-pull limits ([`TransferLimits`]) and the read plan
//! ([`plan_reads`]) that turns the chosen ConsumeQueue entries into few positional reads;
//! those decisions are pure functions, tested here, and the I/O is done by the store's
//! `get_messages` (ConsumeQueue → CommitLog, top to bottom).
//!
//! **Invariants.** A pull reads only entries below the queue's `max_offset` (dispatched)
//! and bytes below the log's `written_end`; it returns the records' bytes exactly as on disk,
//! each checked to start a record of the size its entry claims (a mismatch is
//! [`StoreError::Corrupt`], never a panic: the disk controls those bytes). One gap-free read
//! is returned as is, without a copy.
//!
//! **Crash.** Nothing here writes or is persisted: a crash leaves nothing behind.

use std::rc::Rc;

use bytes::{Bytes, BytesMut};
use ringmq_protocol::message::{peek_record_kind, RecordKind};

use crate::commitlog::{split_physical, to_physical, Segment};
use crate::consumequeue::{CqEntry, CqError, TagFilter};
use crate::error::StoreError;
use crate::page_cache::Temperature;

use super::Inner;
#[cfg(doc)]
use super::Store;

/// Largest gap between two records of a pull that one positional read still spans.
pub const MAX_READ_GAP_BYTES: i64 = 16 * 1024;
/// Largest span of one coalesced positional read.
pub const MAX_COALESCED_READ_BYTES: i64 = 1 << 20;

/// Per-pull limits of protocol.md §4.3 (RocketMQ's MessageStoreConfig defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransferLimits {
    /// Messages per pull while the data is in memory (32).
    pub max_count_in_memory: u32,
    /// Bytes per pull while the data is in memory (256 KiB).
    pub max_bytes_in_memory: u64,
    /// Messages per pull from disk (8).
    pub max_count_on_disk: u32,
    /// Bytes per pull from disk (64 KiB).
    pub max_bytes_on_disk: u64,
}

impl TransferLimits {
    /// RocketMQ's `isTheBatchFull` (5.x, protocol.md §4.3): whether a message of
    /// `size_bytes` no longer fits a pull that holds `count` messages of `total_bytes`.
    /// Never full while empty. Pure.
    pub fn batch_is_full(
        &self,
        count: u64,
        total_bytes: u64,
        size_bytes: u64,
        in_memory: bool,
        max_msgs: u32,
        max_bytes: u64,
    ) -> bool {
        if count == 0 {
            return false;
        }
        let bytes_after = total_bytes.saturating_add(size_bytes);
        let (max_count, max_transfer_bytes) = if in_memory {
            (self.max_count_in_memory, self.max_bytes_in_memory)
        } else {
            (self.max_count_on_disk, self.max_bytes_on_disk)
        };
        count + 1 > u64::from(max_msgs)
            || bytes_after > max_bytes
            || bytes_after > max_transfer_bytes
            || count > u64::from(max_count).saturating_sub(1)
    }
}

impl Default for TransferLimits {
    fn default() -> Self {
        TransferLimits {
            max_count_in_memory: 32,
            max_bytes_in_memory: 256 * 1024,
            max_count_on_disk: 8,
            max_bytes_on_disk: 64 * 1024,
        }
    }
}

/// RocketMQ's `GetMessageStatus` (protocol.md §2.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GetMessageStatus {
    /// Messages found.
    Found,
    /// Entries scanned, none matched the filter.
    NoMatchedMessage,
    /// The CommitLog data of the matched entries is gone.
    MessageWasRemoving,
    /// The queue's file for the offset is missing.
    OffsetFoundNull,
    /// offset == max offset: nothing new.
    OffsetOverflowOne,
    /// offset > max offset.
    OffsetOverflowBadly,
    /// offset < min offset.
    OffsetTooSmall,
    /// The queue is unknown.
    NoMatchedLogicQueue,
    /// The queue is empty (max offset 0).
    NoMessageInQueue,
}

impl GetMessageStatus {
    /// The Java enum name (sent as the response remark).
    pub fn as_str(self) -> &'static str {
        match self {
            GetMessageStatus::Found => "FOUND",
            GetMessageStatus::NoMatchedMessage => "NO_MATCHED_MESSAGE",
            GetMessageStatus::MessageWasRemoving => "MESSAGE_WAS_REMOVING",
            GetMessageStatus::OffsetFoundNull => "OFFSET_FOUND_NULL",
            GetMessageStatus::OffsetOverflowOne => "OFFSET_OVERFLOW_ONE",
            GetMessageStatus::OffsetOverflowBadly => "OFFSET_OVERFLOW_BADLY",
            GetMessageStatus::OffsetTooSmall => "OFFSET_TOO_SMALL",
            GetMessageStatus::NoMatchedLogicQueue => "NO_MATCHED_LOGIC_QUEUE",
            GetMessageStatus::NoMessageInQueue => "NO_MESSAGE_IN_QUEUE",
        }
    }
}

/// One message of a pull result: where its bytes are in [`GetMessageResult::data`] and on
/// disk (for sendfile/splice).
#[derive(Debug, Clone)]
pub struct FoundMessage {
    /// Logical offset in the queue.
    pub queue_offset: i64,
    /// Physical offset.
    pub physical_offset: i64,
    /// Tags code from the ConsumeQueue entry.
    pub tags_code: i64,
    /// The segment file holding it.
    pub segment: Rc<Segment>,
    /// Byte position of the record in the segment file.
    pub pos_in_file: u64,
    /// The record's bytes within `data`.
    pub data_range: std::ops::Range<usize>,
}

/// What [`Store::get_messages`] found.
#[derive(Debug, Clone)]
pub struct GetMessageResult {
    /// Status (maps to the PULL response code).
    pub status: GetMessageStatus,
    /// Offset the consumer should ask for next.
    pub next_begin_offset: i64,
    /// The queue's min offset.
    pub min_offset: i64,
    /// The queue's max offset.
    pub max_offset: i64,
    /// The consumer lags so far (or the data is so cold) that a slave should serve it.
    pub suggest_pulling_from_slave: bool,
    /// The stored records, concatenated exactly as on disk (the PULL body).
    pub data: Bytes,
    /// Each record: its queue offset and where its bytes are.
    pub messages: Vec<FoundMessage>,
}

impl GetMessageResult {
    fn empty(status: GetMessageStatus, next: i64, min: i64, max: i64) -> Self {
        GetMessageResult {
            status,
            next_begin_offset: next,
            min_offset: min,
            max_offset: max,
            suggest_pulling_from_slave: false,
            data: Bytes::new(),
            messages: Vec::new(),
        }
    }
}

/// Groups `selected` entries (ascending physical offsets) into runs read with one positional
/// read each: neighbours in the same segment with at most [`MAX_READ_GAP_BYTES`] between
/// them (other queues' records), a run spanning at most [`MAX_COALESCED_READ_BYTES`].
/// Returns index ranges into `selected`. Pure.
pub fn plan_reads(selected: &[CqEntry], segment_size_bytes: u64) -> Vec<std::ops::Range<usize>> {
    let mut runs: Vec<std::ops::Range<usize>> = Vec::new();
    for (i, e) in selected.iter().enumerate() {
        let joins = runs.last().is_some_and(|run| {
            let (Some(first), Some(prev)) =
                (selected.get(run.start), selected.get(i.wrapping_sub(1)))
            else {
                return false;
            };
            let gap = e.physical_offset - (prev.physical_offset + i64::from(prev.size));
            (0..=MAX_READ_GAP_BYTES).contains(&gap)
                && e.physical_offset + i64::from(e.size) - first.physical_offset
                    <= MAX_COALESCED_READ_BYTES
                && same_segment(prev.physical_offset, e.physical_offset, segment_size_bytes)
        });
        match runs.last_mut() {
            Some(run) if joins => run.end = i + 1,
            _ => runs.push(i..i + 1),
        }
    }
    runs
}

fn same_segment(a: i64, b: i64, segment_size_bytes: u64) -> bool {
    match (split_physical(a), split_physical(b)) {
        (Some((sa, a)), Some((sb, b))) => {
            sa == sb && a / segment_size_bytes == b / segment_size_bytes
        }
        _ => false,
    }
}

impl Inner {
    /// Reads the record at `physical_offset`, checking its header.
    pub(super) async fn read_record_at(&self, physical_offset: i64) -> Result<Bytes, StoreError> {
        let visible = self.dispatched_end.get();
        let (segment, pos) = self.log.locate(physical_offset, 8, visible)?;
        let head = segment
            .read_exact_at(pos, 8)
            .await
            .map_err(StoreError::io("read segment", segment.path()))?;
        let size = match peek_record_kind(&head) {
            Ok(RecordKind::Message { total_size, .. }) => u64::from(total_size),
            Ok(RecordKind::Blank { .. }) => return Err(StoreError::NotFound { physical_offset }),
            Err(source) => {
                return Err(StoreError::Corrupt {
                    physical_offset,
                    source,
                })
            }
        };
        let (segment, pos) = self.log.locate(physical_offset, size, visible)?;
        let bytes = segment
            .read_exact_at(pos, size as usize)
            .await
            .map_err(StoreError::io("read segment", segment.path()))?;
        Ok(Bytes::from(bytes))
    }

    /// See [`Store::get_messages`].
    pub(super) async fn get_messages(
        &self,
        topic: &str,
        queue_id: i32,
        offset: i64,
        max_msgs: u32,
        max_bytes: u64,
        filter: &TagFilter,
    ) -> Result<GetMessageResult, StoreError> {
        use GetMessageStatus as S;
        let Some(slot) = self.queues.existing(topic, queue_id) else {
            return Ok(GetMessageResult::empty(S::NoMatchedLogicQueue, 0, 0, 0));
        };
        let (min, max) = (slot.min_offset.get(), slot.max_offset.get());
        debug_assert!(slot.offsets_in_order(), "queue offsets out of order");
        if max == 0 {
            return Ok(GetMessageResult::empty(S::NoMessageInQueue, 0, min, max));
        }
        if offset < min {
            return Ok(GetMessageResult::empty(S::OffsetTooSmall, min, min, max));
        }
        if offset == max {
            return Ok(GetMessageResult::empty(
                S::OffsetOverflowOne,
                offset,
                min,
                max,
            ));
        }
        if offset > max {
            return Ok(GetMessageResult::empty(
                S::OffsetOverflowBadly,
                max,
                min,
                max,
            ));
        }
        // CQ scan budget: max(16000, maxMsgNums × 20) bytes of entries.
        let budget = (16_000u64.max(u64::from(max_msgs) * 20) / 20) as i64;
        let want = budget.min(max - offset);
        let read = {
            let cq = slot.cq.lock().await;
            cq.read(offset, usize::try_from(want).unwrap_or(usize::MAX))
        };
        let entries = match read.await {
            Ok(entries) => entries,
            Err(CqError::MissingFile { .. }) => {
                // RocketMQ's `rollNextFile`: continue at the start of the next queue file.
                let per_file = i64::try_from(self.config.cq_entries_per_file).unwrap_or(i64::MAX);
                let next = (offset / per_file)
                    .saturating_add(1)
                    .saturating_mul(per_file);
                return Ok(GetMessageResult::empty(S::OffsetFoundNull, next, min, max));
            }
            Err(e) => return Err(slot.error(e)),
        };
        let max_phys = to_physical(self.shard_id, self.dispatched_end.get()).unwrap_or(i64::MAX);
        let limits = self.config.transfer;
        let mut selected: Vec<(i64, CqEntry)> = Vec::new();
        let mut total_bytes = 0u64;
        let mut next = offset;
        let mut last_phys = None;
        for (i, entry) in entries.iter().enumerate() {
            let size = u64::try_from(entry.size).unwrap_or(0);
            let count = selected.len() as u64;
            let in_memory = self
                .estimator
                .rule_says_hot(max_phys, entry.physical_offset);
            if limits.batch_is_full(count, total_bytes, size, in_memory, max_msgs, max_bytes) {
                break;
            }
            let queue_offset = offset + i as i64;
            next = queue_offset + 1;
            last_phys = Some(entry.physical_offset);
            if !filter.matches(entry.tags_code) {
                continue;
            }
            selected.push((queue_offset, *entry));
            total_bytes += size;
        }
        let mut result = GetMessageResult::empty(S::NoMatchedMessage, next, min, max);
        if let Some(last) = last_phys {
            result.suggest_pulling_from_slave = !self.estimator.rule_says_hot(max_phys, last);
        }
        if selected.is_empty() {
            return Ok(result);
        }
        self.read_selected(&selected, &mut result, max_phys).await?;
        Ok(result)
    }

    /// Reads the records of `selected` (coalescing neighbours in one segment into one
    /// positional read) into `result`.
    async fn read_selected(
        &self,
        selected: &[(i64, CqEntry)],
        result: &mut GetMessageResult,
        max_phys: i64,
    ) -> Result<(), StoreError> {
        // Every entry a pull can select points into a written group (entries are appended
        // only after their group's write, and sync with Sync flush), but `dispatched_end`
        // moves only once the whole group is dispatched, which awaits queue-file writes:
        // bounding by it here would skip records whose entries are already visible.
        let visible = self.log.written_end();
        self.debug_assert_log_ends();
        let entries: Vec<CqEntry> = selected.iter().map(|(_, e)| *e).collect();
        let runs: Vec<(usize, usize)> = plan_reads(&entries, self.config.segment_size_bytes)
            .into_iter()
            .map(|run| (run.start, run.end))
            .collect();
        let mut located = Vec::with_capacity(runs.len());
        for &(from, to) in &runs {
            let (Some((_, first)), Some((_, last))) = (selected.get(from), selected.get(to - 1))
            else {
                continue;
            };
            let len =
                u64::try_from(last.physical_offset + i64::from(last.size) - first.physical_offset)
                    .unwrap_or(0);
            match self.log.locate(first.physical_offset, len, visible) {
                Ok((segment, pos)) => located.push((from, to, segment, pos, len)),
                Err(StoreError::NotFound { .. }) => continue,
                Err(e) => return Err(e),
            }
        }
        if located.is_empty() {
            result.status = GetMessageStatus::MessageWasRemoving;
            return Ok(());
        }
        // design.md §8: besides RocketMQ's backlog rule, ask the kernel whether the bytes
        // about to be read are cached; cold data is better served by a slave.
        if let (Some((_, _, segment, pos, len)), Some((_, first))) =
            (located.first(), selected.first())
        {
            let temperature =
                self.estimator
                    .is_hot(max_phys, first.physical_offset, segment.file(), *pos, *len);
            result.suggest_pulling_from_slave |= temperature == Temperature::Cold;
        }
        let reads = located.iter().map(|(_, _, segment, pos, len)| {
            let segment = Rc::clone(segment);
            let (pos, len) = (*pos, *len);
            async move {
                segment
                    .read_exact_at(pos, len as usize)
                    .await
                    .map_err(StoreError::io("read segment", segment.path()))
            }
        });
        let buffers: Vec<Vec<u8>> = futures_util::future::join_all(reads)
            .await
            .into_iter()
            .collect::<Result<_, _>>()?;
        let total: usize = located
            .iter()
            .flat_map(|(from, to, ..)| selected.get(*from..*to).unwrap_or_default())
            .map(|(_, e)| usize::try_from(e.size).unwrap_or(0))
            .sum();
        // One gap-free read (a queue's messages back to back) is the body as it is.
        let gap_free = buffers.len() == 1 && buffers.first().is_some_and(|b| b.len() == total);
        let mut data = BytesMut::with_capacity(if gap_free { 0 } else { total });
        let mut cursor = 0;
        for ((from, to, segment, pos, _), buffer) in located.iter().zip(&buffers) {
            let run_start = selected.get(*from).map_or(0, |(_, e)| e.physical_offset);
            for (queue_offset, entry) in selected.get(*from..*to).unwrap_or_default() {
                let rel = usize::try_from(entry.physical_offset - run_start).unwrap_or(0);
                let size = usize::try_from(entry.size).unwrap_or(0);
                let bytes = buffer.get(rel..rel + size).unwrap_or_default();
                check_record(entry.physical_offset, size, bytes)?;
                result.messages.push(FoundMessage {
                    queue_offset: *queue_offset,
                    physical_offset: entry.physical_offset,
                    tags_code: entry.tags_code,
                    segment: Rc::clone(segment),
                    pos_in_file: pos + rel as u64,
                    data_range: cursor..cursor + size,
                });
                cursor += size;
                if !gap_free {
                    data.extend_from_slice(bytes);
                }
            }
        }
        result.data = match buffers.into_iter().next() {
            Some(buffer) if gap_free => Bytes::from(buffer),
            _ => data.freeze(),
        };
        result.status = GetMessageStatus::Found;
        Ok(())
    }
}

/// Checks that `bytes` (read for a ConsumeQueue entry of `size` bytes) start a message
/// record of exactly that size.
fn check_record(physical_offset: i64, size: usize, bytes: &[u8]) -> Result<(), StoreError> {
    match peek_record_kind(bytes) {
        Ok(RecordKind::Message { total_size, .. })
            if total_size as usize == size && bytes.len() == size =>
        {
            Ok(())
        }
        Ok(_) => Err(StoreError::Corrupt {
            physical_offset,
            source: ringmq_protocol::message::RecordError::SizeMismatch {
                declared: size,
                actual: bytes.len(),
            },
        }),
        Err(source) => Err(StoreError::Corrupt {
            physical_offset,
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(physical_offset: i64, size: i32) -> CqEntry {
        CqEntry {
            physical_offset,
            size,
            tags_code: 0,
        }
    }

    #[test]
    fn an_empty_pull_is_never_full() {
        let limits = TransferLimits::default();
        assert!(!limits.batch_is_full(0, 0, u64::MAX, false, 1, 0));
    }

    #[test]
    fn a_pull_is_full_at_max_msgs_and_max_bytes() {
        let limits = TransferLimits::default();
        assert!(limits.batch_is_full(4, 400, 100, true, 4, u64::MAX));
        assert!(!limits.batch_is_full(3, 300, 100, true, 4, u64::MAX));
        assert!(limits.batch_is_full(1, 100, 100, true, 32, 150));
    }

    #[test]
    fn in_memory_and_on_disk_pulls_have_rocketmq_limits() {
        let limits = TransferLimits::default();
        assert!(!limits.batch_is_full(31, 31_000, 1000, true, 64, u64::MAX));
        assert!(limits.batch_is_full(32, 32_000, 1000, true, 64, u64::MAX));
        assert!(limits.batch_is_full(1, 256 * 1024 - 10, 11, true, 64, u64::MAX));
        assert!(!limits.batch_is_full(7, 7000, 1000, false, 64, u64::MAX));
        assert!(limits.batch_is_full(8, 8000, 1000, false, 64, u64::MAX));
        assert!(limits.batch_is_full(1, 64 * 1024 - 10, 11, false, 64, u64::MAX));
    }

    #[test]
    fn a_zero_count_limit_does_not_underflow() {
        let limits = TransferLimits {
            max_count_in_memory: 0,
            ..TransferLimits::default()
        };
        assert!(limits.batch_is_full(1, 1, 1, true, 64, u64::MAX));
    }

    #[test]
    fn interleaved_records_of_one_segment_are_read_together() {
        let selected = [entry(0, 100), entry(300, 100), entry(600, 100)];
        assert_eq!(plan_reads(&selected, 1 << 20), vec![0..3]);
    }

    #[test]
    fn distant_records_and_segment_boundaries_split_reads() {
        let far = MAX_READ_GAP_BYTES + 101;
        let selected = [entry(0, 100), entry(far, 100), entry(4096, 100)];
        assert_eq!(plan_reads(&selected, 4096), vec![0..1, 1..2, 2..3]);
        let selected = [entry(3900, 100), entry(4096, 100)];
        assert_eq!(plan_reads(&selected, 4096), vec![0..1, 1..2]);
    }

    #[test]
    fn a_coalesced_read_is_bounded() {
        let selected: Vec<CqEntry> = (0..20).map(|i| entry(i * 100_000, 100_000)).collect();
        let runs = plan_reads(&selected, 1 << 30);
        assert!(runs.len() > 1);
        for run in runs {
            let first = selected[run.start];
            let last = selected[run.end - 1];
            assert!(
                last.physical_offset + i64::from(last.size) - first.physical_offset
                    <= MAX_COALESCED_READ_BYTES
            );
        }
    }
}

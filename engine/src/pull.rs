//! What a PULL gets from the store: RocketMQ's statuses, the per-pull limits, and the plan
//! that turns the chosen ConsumeQueue entries into few positional reads. The decisions are
//! pure functions, tested here; the store does the I/O ([`crate::store::Store::get_messages`]).
//! Nothing here is persisted.

use std::rc::Rc;

use bytes::Bytes;

use crate::commitlog::{split_physical, Segment};
use crate::consumequeue::CqEntry;

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

/// What [`crate::store::Store::get_messages`] found.
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
    pub(crate) fn empty(status: GetMessageStatus, next: i64, min: i64, max: i64) -> Self {
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

//! Recovery of a shard's CommitLog at open (design.md §11).
//!
//! The log is scanned from the checkpoint ([`crate::commitlog::flush`]) or, without one,
//! from the start of the last [`SCAN_SEGMENTS_WITHOUT_CHECKPOINT`] segments. The scan
//! stops at the first place that is not a whole, valid record: zeros (nothing was written),
//! a wrong magic, a size that is impossible or does not fit the segment, a torn record, a
//! body CRC that does not match, or a PHYSICALOFFSET field that is not the record's own
//! position (stale bytes of an earlier incarnation). The log ends there: the rest of that
//! segment is zeroed and later segments are deleted, so that stale bytes can never be taken
//! for records after the next crash. The records scanned are handed to the store, which
//! re-dispatches them into the ConsumeQueues (re-appending an entry that is present is a
//! no-op) and then truncates every ConsumeQueue at the log's end.
//!
//! The decision logic, [`scan_records`], is pure: bytes in, valid length and records out.
//!
//! **Crash during recovery.** Zeroing and deleting only remove bytes past the valid end,
//! and re-dispatch only adds ConsumeQueue entries the log proves, so a crash at any point
//! leaves a state from which the next recovery reaches the same result.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use ringmq_protocol::message::{
    peek_record_kind, queue_tags_code, view_record, RecordError, RecordKind, BLANK_RECORD_SIZE,
};

use crate::commitlog::{parse_segment_file_name, to_physical, Segment};
use crate::error::StoreError;

/// Without a checkpoint, how many trailing segments are scanned (RocketMQ: 3).
pub const SCAN_SEGMENTS_WITHOUT_CHECKPOINT: usize = 3;

/// Bytes read per step of the scan.
const SCAN_CHUNK_BYTES: u64 = 8 << 20;

/// A valid record found by the scan: what re-dispatch needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScannedRecord {
    /// Byte offset in the shard's log.
    pub log_offset: u64,
    /// Physical offset (shard bits included).
    pub physical_offset: i64,
    /// TOTALSIZE.
    pub size_bytes: u32,
    /// Topic.
    pub topic: String,
    /// Queue id.
    pub queue_id: i32,
    /// QUEUEOFFSET.
    pub queue_offset: i64,
    /// SYSFLAG (transaction type decides whether it is dispatched).
    pub sys_flag: i32,
    /// ConsumeQueue tags code of the TAGS property.
    pub tags_code: i64,
    /// STORETIMESTAMP.
    pub store_timestamp: i64,
}

/// Why a record was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InvalidRecord {
    /// The header or the fields do not decode.
    Decode(RecordError),
    /// BODYCRC does not match the body.
    BodyCrc,
    /// PHYSICALOFFSET is not where the record lies.
    WrongPhysicalOffset {
        /// The field's value.
        found: i64,
        /// The record's position.
        expected: i64,
    },
    /// The record (plus room for a blank record) runs past the segment end.
    PastSegmentEnd,
    /// A blank record whose length does not reach exactly to the segment end.
    BadBlank {
        /// Its `remaining` field.
        remaining: u32,
        /// The distance to the segment end.
        expected: u64,
    },
}

/// Where a scan of a byte range stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanEnd {
    /// A blank record closes the segment: the log continues at the next segment.
    SegmentClosed,
    /// The bytes end inside a record: read more, or, at the end of the data, it is torn.
    NeedMore,
    /// Zeros: nothing was written from here on.
    EndOfData,
    /// An invalid record: the log ends before it.
    Invalid(InvalidRecord),
}

/// Result of [`scan_records`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanOutcome {
    /// Length of the valid prefix (records, and the blank record if one closed the segment).
    pub valid_len: usize,
    /// The message records in the valid prefix.
    pub records: Vec<ScannedRecord>,
    /// Why the scan stopped.
    pub end: ScanEnd,
}

/// Scans `bytes`, which start at log offset `start_log_offset` of shard `shard_id`'s log, in
/// a segment ending at `segment_end`. Pure; never panics.
pub fn scan_records(
    bytes: &[u8],
    start_log_offset: u64,
    segment_end: u64,
    shard_id: u8,
    check_crc: bool,
) -> ScanOutcome {
    let mut pos = 0usize;
    let mut records = Vec::new();
    let end = loop {
        let Some(rest) = bytes.get(pos..) else {
            break ScanEnd::NeedMore;
        };
        let log_offset = start_log_offset + pos as u64;
        let to_segment_end = segment_end.saturating_sub(log_offset);
        if rest.len() < BLANK_RECORD_SIZE {
            break ScanEnd::NeedMore;
        }
        if rest
            .get(..BLANK_RECORD_SIZE)
            .is_some_and(|h| h.iter().all(|&b| b == 0))
        {
            break ScanEnd::EndOfData;
        }
        let total = match peek_record_kind(rest) {
            Ok(RecordKind::Blank { remaining }) => {
                if u64::from(remaining) == to_segment_end {
                    pos += BLANK_RECORD_SIZE;
                    break ScanEnd::SegmentClosed;
                }
                break ScanEnd::Invalid(InvalidRecord::BadBlank {
                    remaining,
                    expected: to_segment_end,
                });
            }
            Ok(RecordKind::Message { total_size, .. }) => total_size,
            Err(e) => break ScanEnd::Invalid(InvalidRecord::Decode(e)),
        };
        if u64::from(total) + BLANK_RECORD_SIZE as u64 > to_segment_end {
            break ScanEnd::Invalid(InvalidRecord::PastSegmentEnd);
        }
        if rest.len() < total as usize {
            break ScanEnd::NeedMore;
        }
        let view = match view_record(rest) {
            Ok(v) => v,
            Err(e) => break ScanEnd::Invalid(InvalidRecord::Decode(e)),
        };
        let expected = to_physical(shard_id, log_offset).unwrap_or(-1);
        if view.physical_offset != expected {
            break ScanEnd::Invalid(InvalidRecord::WrongPhysicalOffset {
                found: view.physical_offset,
                expected,
            });
        }
        if check_crc && !view.body_crc_matches() {
            break ScanEnd::Invalid(InvalidRecord::BodyCrc);
        }
        records.push(ScannedRecord {
            log_offset,
            physical_offset: expected,
            size_bytes: total,
            topic: view.topic.to_owned(),
            queue_id: view.queue_id,
            queue_offset: view.queue_offset,
            sys_flag: view.sys_flag,
            tags_code: queue_tags_code(view.topic, |key| view.property(key)),
            store_timestamp: view.store_timestamp,
        });
        pos += total as usize;
    };
    ScanOutcome {
        valid_len: pos,
        records,
        end,
    }
}

/// The segment files of a log directory, by start offset.
pub fn list_segments(dir: &Path) -> Result<BTreeMap<u64, PathBuf>, StoreError> {
    let mut out = BTreeMap::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(StoreError::io("list segments", dir)(e)),
    };
    for entry in entries {
        let entry = entry.map_err(StoreError::io("list segments", dir))?;
        let name = entry.file_name();
        if let Some(start) = name.to_str().and_then(parse_segment_file_name) {
            out.insert(start, entry.path());
        }
    }
    Ok(out)
}

/// True for a segment file shorter than a segment whose first record slot holds nothing:
/// what a creation interrupted before its preallocation finished leaves. Records are only
/// written to a segment after its preallocation, so such a file holds no data.
fn is_unfinished_creation(path: &Path, segment_size_bytes: u64) -> Result<bool, StoreError> {
    use std::io::Read;
    let len = std::fs::metadata(path)
        .map_err(StoreError::io("stat segment", path))?
        .len();
    if len >= segment_size_bytes {
        return Ok(false);
    }
    let mut head = Vec::with_capacity(BLANK_RECORD_SIZE);
    std::fs::File::open(path)
        .and_then(|f| f.take(BLANK_RECORD_SIZE as u64).read_to_end(&mut head))
        .map_err(StoreError::io("read segment", path))?;
    Ok(head.iter().all(|&b| b == 0))
}

/// What the scan found, once it is done.
#[derive(Debug)]
pub struct RecoveredLog {
    /// Open segments, by start offset (those past the end deleted).
    pub segments: BTreeMap<u64, Rc<Segment>>,
    /// Log offset where the valid log ends.
    pub end: u64,
    /// Where the scan started.
    pub scan_start: u64,
    /// Why the scan stopped (`None` if it ran out of segments).
    pub stop: Option<ScanEnd>,
}

/// Scans a log directory batch by batch; see the module documentation.
#[derive(Debug)]
pub struct LogScanner {
    shard_id: u8,
    segment_size_bytes: u64,
    check_crc: bool,
    segments: BTreeMap<u64, Rc<Segment>>,
    scan_start: u64,
    pos: u64,
    chunk_bytes: u64,
    stop: Option<ScanEnd>,
    done: bool,
}

impl LogScanner {
    /// Opens every segment in `dir` and positions the scan at the checkpoint (if it lies in
    /// the log) or at the start of the last segments.
    pub async fn open(
        dir: &Path,
        shard_id: u8,
        segment_size_bytes: u64,
        checkpoint: Option<u64>,
        check_crc: bool,
    ) -> Result<Self, StoreError> {
        let mut segments = BTreeMap::new();
        let mut files = list_segments(dir)?;
        if let Some((&last_start, last_path)) = files.last_key_value() {
            if is_unfinished_creation(last_path, segment_size_bytes)? {
                // A crash (or a full disk) while the segment was preallocated: nothing was
                // ever written to it, and extending it now could need space the disk does
                // not have. The append that needs it creates it again.
                compio::fs::remove_file(last_path)
                    .await
                    .map_err(StoreError::io("remove unfinished segment", last_path))?;
                tracing::warn!(path = %last_path.display(), "removed a segment whose creation never finished");
                files.remove(&last_start);
            }
        }
        for (start, path) in files {
            if start % segment_size_bytes != 0 {
                return Err(StoreError::InvalidConfig {
                    name: "segment_size_bytes (a segment name is not a multiple of it)",
                    value: segment_size_bytes,
                    expected: "the size the log was written with",
                });
            }
            let segment = Segment::open(path.clone(), start, segment_size_bytes)
                .await
                .map_err(StoreError::io("open segment", path))?;
            segments.insert(start, Rc::new(segment));
        }
        let starts: Vec<u64> = segments.keys().copied().collect();
        let fallback = starts
            .len()
            .checked_sub(SCAN_SEGMENTS_WITHOUT_CHECKPOINT)
            .and_then(|i| starts.get(i))
            .or_else(|| starts.first())
            .copied()
            .unwrap_or(0);
        let in_log = |c: u64| {
            let seg_start = c - c % segment_size_bytes;
            segments.contains_key(&seg_start)
                || (c % segment_size_bytes == 0
                    && c >= segment_size_bytes
                    && segments.contains_key(&(c - segment_size_bytes)))
        };
        let scan_start = match checkpoint {
            Some(c) if in_log(c) => c,
            Some(c) => {
                tracing::warn!(
                    checkpoint = c,
                    "checkpoint is outside the log; scanning the last segments"
                );
                fallback
            }
            None => fallback,
        };
        Ok(LogScanner {
            shard_id,
            segment_size_bytes,
            check_crc,
            segments,
            scan_start,
            pos: scan_start,
            chunk_bytes: SCAN_CHUNK_BYTES,
            stop: None,
            done: false,
        })
    }

    /// The next batch of valid records; `None` once the end of the log was found.
    pub async fn next_batch(&mut self) -> Result<Option<Vec<ScannedRecord>>, StoreError> {
        loop {
            if self.done {
                return Ok(None);
            }
            let seg_size = self.segment_size_bytes;
            let seg_start = self.pos - self.pos % seg_size;
            let Some(segment) = self.segments.get(&seg_start).cloned() else {
                self.done = true;
                return Ok(None);
            };
            let seg_end = seg_start + seg_size;
            let len = self.chunk_bytes.min(seg_end - self.pos);
            let pos_in_file = self.pos - seg_start;
            let bytes = segment
                .read_exact_at(pos_in_file, len as usize)
                .await
                .map_err(StoreError::io("read segment", segment.path()))?;
            let outcome = scan_records(&bytes, self.pos, seg_end, self.shard_id, self.check_crc);
            self.pos += outcome.valid_len as u64;
            match &outcome.end {
                ScanEnd::SegmentClosed => {
                    self.pos = seg_end;
                    self.chunk_bytes = SCAN_CHUNK_BYTES;
                }
                ScanEnd::NeedMore if pos_in_file + len < seg_size => {
                    // A record longer than what was read: read it whole next time.
                    if outcome.valid_len == 0 {
                        self.chunk_bytes = self.chunk_bytes.saturating_mul(2);
                    }
                }
                end => {
                    if !matches!(end, ScanEnd::EndOfData) {
                        tracing::warn!(shard = self.shard_id, log_offset = self.pos, reason = ?end, "commit log ends at a torn or invalid record; truncating");
                    }
                    self.stop = Some(outcome.end.clone());
                    self.done = true;
                }
            }
            if !outcome.records.is_empty() {
                return Ok(Some(outcome.records));
            }
        }
    }

    /// Cuts the log at the end found: zeroes the rest of the last segment and deletes the
    /// segments after it. Call after [`LogScanner::next_batch`] returned `None`.
    pub async fn finish(mut self) -> Result<RecoveredLog, StoreError> {
        debug_assert!(self.done, "finish before the scan ended");
        let end = self.pos;
        let seg_size = self.segment_size_bytes;
        let end_seg = end - end % seg_size;
        if let Some(segment) = self.segments.get(&end_seg) {
            segment
                .zero_tail(end - end_seg)
                .await
                .map_err(StoreError::io("zero segment tail", segment.path()))?;
        }
        let later: Vec<u64> = self
            .segments
            .range(end_seg + 1..)
            .map(|(s, _)| *s)
            .collect();
        for start in later {
            if let Some(segment) = self.segments.remove(&start) {
                tracing::warn!(path = %segment.path().display(), "deleting a segment past the end of the log");
                compio::fs::remove_file(segment.path())
                    .await
                    .map_err(StoreError::io("delete segment", segment.path()))?;
            }
        }
        Ok(RecoveredLog {
            segments: self.segments,
            end,
            scan_start: self.scan_start,
            stop: self.stop,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use bytes::Bytes;
    use ringmq_protocol::message::{encode_record, StoredMessage, BLANK_MAGIC};

    use super::*;

    fn msg(topic: &str, queue_offset: i64, physical_offset: i64, body: &[u8]) -> StoredMessage {
        let host: SocketAddr = "127.0.0.1:10911".parse().unwrap();
        StoredMessage {
            queue_id: 1,
            flag: 0,
            queue_offset,
            physical_offset,
            sys_flag: 0,
            born_timestamp: 1,
            born_host: host,
            store_timestamp: 2,
            store_host: host,
            reconsume_times: 0,
            prepared_transaction_offset: 0,
            body: Bytes::copy_from_slice(body),
            topic: topic.to_owned(),
            properties: "TAGS\u{1}TagA\u{2}".to_owned(),
            body_crc: 0,
        }
    }

    /// Three records laid out from log offset `base`; returns the bytes and record ends.
    fn log(base: u64, shard: u8) -> (Vec<u8>, Vec<usize>) {
        let mut out = Vec::new();
        let mut ends = Vec::new();
        for i in 0..3 {
            let phys = to_physical(shard, base + out.len() as u64).unwrap();
            encode_record(&msg("T", i, phys, &[i as u8; 50]), &mut out).unwrap();
            ends.push(out.len());
        }
        (out, ends)
    }

    #[test]
    fn whole_valid_records_followed_by_zeros_end_at_the_zeros() {
        let (mut bytes, ends) = log(0, 0);
        bytes.extend_from_slice(&[0u8; 64]);
        let out = scan_records(&bytes, 0, 1 << 20, 0, true);
        assert_eq!(out.valid_len, ends[2]);
        assert_eq!(out.end, ScanEnd::EndOfData);
        assert_eq!(out.records.len(), 3);
        assert_eq!(out.records[1].log_offset, ends[0] as u64);
        assert_eq!(out.records[1].queue_offset, 1);
        assert_eq!(out.records[0].tags_code, 2_598_919);
    }

    #[test]
    fn a_record_cut_short_needs_more_bytes() {
        let (bytes, ends) = log(0, 0);
        let out = scan_records(&bytes[..ends[2] - 1], 0, 1 << 20, 0, true);
        assert_eq!(out.valid_len, ends[1]);
        assert_eq!(out.end, ScanEnd::NeedMore);
    }

    #[test]
    fn a_garbled_body_fails_the_crc() {
        let (mut bytes, ends) = log(0, 0);
        bytes[ends[0] + 88 + 10] ^= 0xFF; // inside the second body (it starts at byte 88)
        let out = scan_records(&bytes, 0, 1 << 20, 0, true);
        assert_eq!(out.valid_len, ends[0]);
        assert_eq!(out.end, ScanEnd::Invalid(InvalidRecord::BodyCrc));
    }

    #[test]
    fn a_garbled_header_is_invalid_not_a_panic() {
        let (mut bytes, ends) = log(0, 0);
        bytes[ends[0] + 5] ^= 0x55; // magic of the second record
        let out = scan_records(&bytes, 0, 1 << 20, 0, true);
        assert_eq!(out.valid_len, ends[0]);
        assert!(matches!(
            out.end,
            ScanEnd::Invalid(InvalidRecord::Decode(_))
        ));
    }

    #[test]
    fn a_stale_record_at_the_wrong_position_is_invalid() {
        let (bytes, ends) = log(0, 0);
        // The same bytes seen 1000 bytes later in the log: PHYSICALOFFSET disagrees.
        let out = scan_records(&bytes, 1000, 1 << 20, 0, true);
        assert_eq!(out.valid_len, 0);
        assert!(matches!(
            out.end,
            ScanEnd::Invalid(InvalidRecord::WrongPhysicalOffset { .. })
        ));
        assert!(ends[0] > 0);
    }

    #[test]
    fn the_shard_id_is_part_of_the_expected_physical_offset() {
        let (bytes, ends) = log(0, 2);
        assert_eq!(scan_records(&bytes, 0, 1 << 20, 2, true).valid_len, ends[2]);
        assert_eq!(scan_records(&bytes, 0, 1 << 20, 0, true).valid_len, 0);
    }

    #[test]
    fn a_blank_record_reaching_the_segment_end_closes_the_segment() {
        let (mut bytes, ends) = log(0, 0);
        let segment_end = ends[2] as u64 + 100;
        bytes.extend_from_slice(&100_i32.to_be_bytes());
        bytes.extend_from_slice(&BLANK_MAGIC.to_be_bytes());
        let out = scan_records(&bytes, 0, segment_end, 0, true);
        assert_eq!(out.end, ScanEnd::SegmentClosed);
        assert_eq!(out.valid_len, ends[2] + 8);
    }

    #[test]
    fn a_blank_record_of_the_wrong_length_is_invalid() {
        let (mut bytes, ends) = log(0, 0);
        bytes.extend_from_slice(&99_i32.to_be_bytes());
        bytes.extend_from_slice(&BLANK_MAGIC.to_be_bytes());
        let out = scan_records(&bytes, 0, ends[2] as u64 + 100, 0, true);
        assert_eq!(out.valid_len, ends[2]);
        assert!(matches!(
            out.end,
            ScanEnd::Invalid(InvalidRecord::BadBlank { .. })
        ));
    }

    #[test]
    fn a_record_that_leaves_no_room_for_a_blank_is_invalid() {
        let (bytes, ends) = log(0, 0);
        let out = scan_records(&bytes, 0, ends[2] as u64 + 4, 0, true);
        assert_eq!(out.valid_len, ends[1]);
        assert_eq!(out.end, ScanEnd::Invalid(InvalidRecord::PastSegmentEnd));
    }

    proptest::proptest! {
        /// Whatever follows valid records (a torn group, stale bytes, noise), the scan keeps
        /// exactly the valid records before it and never panics.
        #[test]
        fn garbage_after_valid_records_never_costs_a_valid_record(
            garbage in proptest::collection::vec(proptest::num::u8::ANY, 0..400),
        ) {
            let (mut bytes, ends) = log(0, 0);
            bytes.extend_from_slice(&garbage);
            let out = scan_records(&bytes, 0, 1 << 20, 0, true);
            proptest::prop_assert!(out.valid_len >= ends[2]);
            proptest::prop_assert!(out.records.len() >= 3);
            proptest::prop_assert_eq!(out.records[2].log_offset, ends[1] as u64);
        }

        /// Arbitrary bytes at any offset: no panic, and the valid length stays in bounds.
        #[test]
        fn arbitrary_bytes_scan_without_panic(
            bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..600),
            start in 0u64..10_000,
        ) {
            let out = scan_records(&bytes, start, start + 4096, 1, true);
            proptest::prop_assert!(out.valid_len <= bytes.len());
        }
    }

    #[test]
    fn no_input_of_any_shape_panics() {
        let (bytes, _) = log(0, 0);
        for cut in 0..bytes.len() {
            let _ = scan_records(&bytes[..cut], 0, 1 << 20, 0, true);
            let mut garbled = bytes.clone();
            garbled[cut] = garbled[cut].wrapping_add(97);
            let _ = scan_records(&garbled, 0, 1 << 20, 0, true);
        }
    }
}

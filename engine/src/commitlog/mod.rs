//! The CommitLog of one shard: an append-only byte log split into fixed-size segments.
//!
//! **Layout.** `<root>/commitlog/<shard>/<20-digit start offset>` (see [`segment`]); the
//! file name is the segment's byte offset in this shard's log. A record's *physical offset*
//! (what ConsumeQueue entries, PHYSICALOFFSET fields and offset msgIds carry) is that log
//! offset with the shard id in the top 8 bits: `(shard << 56) | log_offset`
//! ([`to_physical`]). For shard 0 both are the same number, as in RocketMQ.
//!
//! **Invariants.** Records are placed in log order by [`CommitLog::append`], which runs
//! synchronously on the shard thread, so the order of appends is the order of the bytes. A
//! record never spans segments: when `record + 8` bytes do not fit in the rest of a segment,
//! an 8-byte blank record (`remaining`, `BLANK_MAGIC`) closes it and the record goes to the
//! start of the next one. `durable_end ≤ written_end ≤ appended end`: bytes below
//! `written_end` are in the page cache, bytes below `durable_end` were covered by an
//! fdatasync. After a failed fdatasync, or a write failed for any reason but a full disk,
//! the log refuses further appends (the state of the file is unknown after a failed fsync,
//! so retrying could acknowledge lost data). A full disk is a state the log leaves by
//! itself: a segment that cannot be preallocated is not created (the appends needing it are
//! refused, [`CommitLog::missing_segments_for`] / [`CommitLog::create_segment`]), and a
//! group whose write ran out of space is written again by the writer.
//!
//! **Crash.** Appended but unwritten bytes are lost with the process; nobody was answered for
//! them. Written but unsynced bytes survive a process kill (page cache) and may be lost, torn
//! or reordered by a power loss; recovery ([`crate::recovery`]) keeps the longest prefix of
//! whole, CRC-valid records and zeroes the rest. A segment created but not yet written holds
//! zeros, which recovery reads as the end of the log.

pub mod append;
pub mod flush;
pub mod segment;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;

use bytes::Bytes;
use ringmq_protocol::message::{
    encode_record_ref, encoded_len_ref, StoredMessageRef, BLANK_MAGIC, BLANK_RECORD_SIZE,
};

use crate::error::{is_out_of_space, StoreError};
pub use append::{AppendBuffer, WriteRun};
pub use segment::{parse_segment_file_name, segment_file_name, Segment};

/// Bit position of the shard id inside a physical offset.
pub const SHARD_SHIFT: u32 = 56;
/// Largest byte offset a shard's log can reach (56 bits).
pub const MAX_LOG_OFFSET: u64 = (1 << SHARD_SHIFT) - 1;
/// Default segment size: 1 GiB, RocketMQ's `mappedFileSizeCommitLog`.
pub const DEFAULT_SEGMENT_SIZE_BYTES: u64 = 1 << 30;
/// Smallest accepted segment size (tests use tiny segments; a record must still fit).
pub const MIN_SEGMENT_SIZE_BYTES: u64 = 4096;
/// Largest accepted segment size: a blank record's `remaining` is an int32.
pub const MAX_SEGMENT_SIZE_BYTES: u64 = i32::MAX as u64;
/// Largest write into the page cache made without letting the shard's other tasks run: a
/// group's writes are made on the shard thread (`crate::inline_write`), so this bounds how
/// long one write holds the shard (a 256 KiB copy: tens of microseconds).
pub const WRITE_CHUNK_BYTES: usize = 256 * 1024;

/// The physical offset of byte `log_offset` of shard `shard_id`'s log.
pub fn to_physical(shard_id: u8, log_offset: u64) -> Option<i64> {
    if log_offset > MAX_LOG_OFFSET {
        return None;
    }
    // Shard ids above 127 would make the offset negative, which Java clients treat as
    // invalid; the store refuses them at open.
    i64::try_from((u64::from(shard_id) << SHARD_SHIFT) | log_offset).ok()
}

/// Splits a physical offset into (shard id, byte offset in that shard's log).
pub fn split_physical(physical_offset: i64) -> Option<(u8, u64)> {
    let p = u64::try_from(physical_offset).ok()?;
    let shard = u8::try_from(p >> SHARD_SHIFT).ok()?;
    Some((shard, p & MAX_LOG_OFFSET))
}

/// Where [`CommitLog::append`] placed a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placed {
    /// Physical offset (shard bits included).
    pub physical_offset: i64,
    /// Byte offset in this shard's log.
    pub log_offset: u64,
    /// TOTALSIZE of the record.
    pub size_bytes: u32,
    /// The group the record belongs to (see [`CommitLog::take_group`]).
    pub group_seq: u64,
}

/// Everything appended since the previous group: written with positional writes as one unit.
#[derive(Debug)]
pub struct Group {
    /// Sequence number, rising by one per group.
    pub seq: u64,
    /// The bytes, in log order.
    pub bytes: Bytes,
    /// Which part of `bytes` goes where.
    pub runs: Vec<WriteRun>,
    /// The log range covered (from the first record to the end of the last).
    pub range: Range<u64>,
}

#[derive(Debug)]
struct LogState {
    pending: AppendBuffer,
    /// Sequence number of the group now collecting appends.
    open_seq: u64,
    written_end: u64,
    durable_end: u64,
    /// Segments written since their last fdatasync → a write generation, so that a sync
    /// clears only what it covered.
    unsynced: BTreeMap<u64, u64>,
    write_generation: u64,
    fdatasync_count: u64,
    group_write_count: u64,
    failed: Option<Arc<io::Error>>,
}

/// A shard's CommitLog. Single-threaded: shared by `Rc` among the shard's tasks; no borrow
/// is held across an `.await`.
#[derive(Debug)]
pub struct CommitLog {
    shard_id: u8,
    dir: PathBuf,
    segment_size_bytes: u64,
    segments: RefCell<BTreeMap<u64, Rc<Segment>>>,
    /// Held while a segment is created: an append and the preallocation ahead may ask for
    /// the same one, and a creation that fails removes its file.
    create_lock: futures_util::lock::Mutex<()>,
    state: RefCell<LogState>,
}

impl CommitLog {
    /// The directory of shard `shard_id`'s segments under the store root.
    pub fn dir_for(root: &Path, shard_id: u8) -> PathBuf {
        root.join("commitlog").join(shard_id.to_string())
    }

    /// A log whose recovered segments are `segments` and whose valid bytes end at `end`
    /// (everything below `end` is on disk and treated as durable).
    pub fn from_recovered(
        shard_id: u8,
        dir: PathBuf,
        segment_size_bytes: u64,
        segments: BTreeMap<u64, Rc<Segment>>,
        end: u64,
    ) -> Self {
        CommitLog {
            shard_id,
            dir,
            segment_size_bytes,
            segments: RefCell::new(segments),
            create_lock: futures_util::lock::Mutex::new(()),
            state: RefCell::new(LogState {
                pending: AppendBuffer::starting_at(end),
                open_seq: 1,
                written_end: end,
                durable_end: end,
                unsynced: BTreeMap::new(),
                write_generation: 0,
                fdatasync_count: 0,
                group_write_count: 0,
                failed: None,
            }),
        }
    }

    /// This log's shard.
    pub fn shard_id(&self) -> u8 {
        self.shard_id
    }

    /// Size of every segment.
    pub fn segment_size_bytes(&self) -> u64 {
        self.segment_size_bytes
    }

    /// The segments directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Log offset where the next appended record would start (appended, maybe not written).
    pub fn appended_end(&self) -> u64 {
        self.state.borrow().pending.end_offset()
    }

    /// Log offset up to which bytes are written to the page cache.
    pub fn written_end(&self) -> u64 {
        self.state.borrow().written_end
    }

    /// Log offset up to which bytes are covered by an fdatasync.
    pub fn durable_end(&self) -> u64 {
        self.state.borrow().durable_end
    }

    /// Bytes appended and not yet taken by the writer.
    pub fn pending_bytes(&self) -> usize {
        self.state.borrow().pending.len_bytes()
    }

    /// fdatasync calls made on segments so far (one per segment synced).
    pub fn fdatasync_count(&self) -> u64 {
        self.state.borrow().fdatasync_count
    }

    /// Groups written so far.
    pub fn group_write_count(&self) -> u64 {
        self.state.borrow().group_write_count
    }

    /// The error that stopped the log, if one did.
    pub fn failure(&self) -> Option<Arc<io::Error>> {
        self.state.borrow().failed.clone()
    }

    /// Places and encodes `msg` at the end of the log (closing the current segment with a
    /// blank record if it does not fit). Sets `msg.physical_offset`; the queue offset and
    /// store timestamp must already be set. Synchronous: the append order is the log order.
    pub fn append(&self, msg: &mut StoredMessageRef<'_>) -> Result<Placed, StoreError> {
        let mut st = self.state.borrow_mut();
        if let Some(source) = &st.failed {
            return Err(StoreError::LogFailed {
                source: Arc::clone(source),
            });
        }
        let len = encoded_len_ref(msg).map_err(|source| StoreError::Encode { source })? as u64;
        let seg = self.segment_size_bytes;
        if len + BLANK_RECORD_SIZE as u64 > seg {
            return Err(StoreError::MessageTooLarge {
                size_bytes: len,
                segment_size_bytes: seg,
            });
        }
        let end = st.pending.end_offset();
        let at = record_start(end, len, seg);
        let seg_start = at - at % seg;
        if at != end {
            // Closes the segment holding `end` with a blank record. `remaining ≤ segment
            // size ≤ i32::MAX` (checked at open).
            let remaining_i32 = i32::try_from(at - end).unwrap_or(i32::MAX);
            st.pending.push_with(at - seg, end, |out| {
                out.extend_from_slice(&remaining_i32.to_be_bytes());
                out.extend_from_slice(&BLANK_MAGIC.to_be_bytes());
                Ok::<_, StoreError>(BLANK_RECORD_SIZE)
            })?;
        }
        if at + len > MAX_LOG_OFFSET {
            return Err(StoreError::LogFull {
                shard_id: self.shard_id,
            });
        }
        let physical_offset = to_physical(self.shard_id, at).ok_or(StoreError::LogFull {
            shard_id: self.shard_id,
        })?;
        msg.physical_offset = physical_offset;
        let written = st
            .pending
            .push_with(seg_start, at, |out| encode_record_ref(msg, out))
            .map_err(|source| StoreError::Encode { source })?;
        debug_assert_eq!(written as u64, len);
        Ok(Placed {
            physical_offset,
            log_offset: at,
            size_bytes: u32::try_from(written).unwrap_or(u32::MAX),
            group_seq: st.open_seq,
        })
    }

    /// Sequence number of the group now collecting appends.
    pub fn open_group_seq(&self) -> u64 {
        self.state.borrow().open_seq
    }

    /// Seals and takes the group collected so far; `None` when nothing is pending.
    pub fn take_group(&self) -> Option<Group> {
        let mut st = self.state.borrow_mut();
        if st.pending.is_empty() {
            return None;
        }
        let (buf, runs, range) = st.pending.take();
        let seq = st.open_seq;
        st.open_seq += 1;
        Some(Group {
            seq,
            bytes: Bytes::from(buf),
            runs,
            range,
        })
    }

    /// Writes a group (segments created on demand) into the page cache, on the shard thread,
    /// in chunks of at most [`WRITE_CHUNK_BYTES`] with a yield to the shard's other tasks
    /// between two chunks. On error the log is marked failed.
    pub async fn write_group(&self, group: &Group) -> Result<(), StoreError> {
        if let Some(source) = self.failure() {
            return Err(StoreError::LogFailed { source });
        }
        let result = self.write_group_inner(group).await;
        let mut st = self.state.borrow_mut();
        match result {
            Ok(()) => {
                st.written_end = st.written_end.max(group.range.end);
                st.group_write_count += 1;
                st.write_generation += 1;
                let generation = st.write_generation;
                for run in &group.runs {
                    st.unsynced.insert(run.segment_start, generation);
                }
                Ok(())
            }
            Err((path, source)) => {
                let source = Arc::new(source);
                // A failed write (unlike a failed fdatasync) leaves the page cache holding
                // what it held: writing the group again once space is freed is safe.
                if !is_out_of_space(&source) {
                    st.failed = Some(Arc::clone(&source));
                }
                Err(StoreError::Write { path, source })
            }
        }
    }

    async fn write_group_inner(&self, group: &Group) -> Result<(), (PathBuf, io::Error)> {
        let mut chunks_written = 0_usize;
        for run in &group.runs {
            let segment = self.segment_or_create(run.segment_start).await?;
            let mut pos = run.buf_range.start;
            while pos < run.buf_range.end {
                if chunks_written > 0 {
                    crate::signal::yield_now().await;
                }
                let end = run.buf_range.end.min(pos + WRITE_CHUNK_BYTES);
                let pos_in_file = run.pos_in_file + (pos - run.buf_range.start) as u64;
                // Runs lie inside their group (`AppendBuffer`); a bug that broke this must
                // not be acknowledged as written.
                let chunk = group.bytes.get(pos..end).ok_or_else(|| {
                    let error = io::Error::other("a write run lies outside its group");
                    (segment.path().to_path_buf(), error)
                })?;
                segment
                    .write_into_page_cache(chunk, pos_in_file)
                    .map_err(|e| (segment.path().to_path_buf(), e))?;
                chunks_written += 1;
                pos = end;
            }
        }
        Ok(())
    }

    /// A slave's append: places `bytes` (whole records copied from the master's log, checked
    /// by the caller) at `log_offset`, which must be where this log ends, or the start of
    /// the next segment when the master closed the current one with a blank record. The
    /// bytes must lie in one segment, which must exist. Synchronous, like [`Self::append`];
    /// returns the group the bytes joined.
    pub fn append_replicated(&self, log_offset: u64, bytes: &[u8]) -> Result<u64, StoreError> {
        let mut st = self.state.borrow_mut();
        if let Some(source) = &st.failed {
            return Err(StoreError::LogFailed {
                source: Arc::clone(source),
            });
        }
        let seg = self.segment_size_bytes;
        let end = st.pending.end_offset();
        let next_segment = end - end % seg + seg;
        if log_offset != end && !(log_offset == next_segment && end % seg != 0) {
            return Err(StoreError::ReplicaDiverged {
                log_offset,
                expected_log_offset: end,
                detail: "the master's bytes do not continue this log",
            });
        }
        let seg_start = log_offset - log_offset % seg;
        if log_offset + bytes.len() as u64 > seg_start + seg {
            return Err(StoreError::ReplicaDiverged {
                log_offset,
                expected_log_offset: end,
                detail: "a replicated frame crosses a segment end (another segment size?)",
            });
        }
        if !self.segments.borrow().contains_key(&seg_start) {
            return Err(StoreError::NotFound {
                physical_offset: to_physical(self.shard_id, seg_start).unwrap_or(-1),
            });
        }
        st.pending.push_with(seg_start, log_offset, |out| {
            out.extend_from_slice(bytes);
            Ok::<_, StoreError>(bytes.len())
        })?;
        Ok(st.open_seq)
    }

    /// Start offsets of the segments that records of `record_lens` bytes, appended now in
    /// this order, would go to and that do not exist yet. Pure (reads the log's state).
    pub fn missing_segments_for(&self, record_lens: &[u64]) -> Vec<u64> {
        let seg = self.segment_size_bytes;
        let segments = self.segments.borrow();
        let mut missing = Vec::new();
        let mut end = self.appended_end();
        for &len in record_lens {
            let at = record_start(end, len, seg);
            let seg_start = at - at % seg;
            if !segments.contains_key(&seg_start) && missing.last() != Some(&seg_start) {
                missing.push(seg_start);
            }
            end = at + len;
        }
        missing
    }

    /// Creates (preallocates) the segment starting at `start` unless it exists. A full disk
    /// is [`StoreError::NoSpace`] and leaves the log as it was: appends that need the
    /// segment are refused, and the next one tries again.
    pub async fn create_segment(&self, start: u64) -> Result<(), StoreError> {
        match self.segment_or_create(start).await {
            Ok(_) => Ok(()),
            Err((path, source)) if is_out_of_space(&source) => Err(StoreError::NoSpace {
                what: "commit log segment",
                path,
                needed_bytes: self.segment_size_bytes,
                source: Arc::new(source),
            }),
            Err((path, source)) => Err(StoreError::Io {
                op: "create commit log segment",
                path,
                source,
            }),
        }
    }

    async fn segment_or_create(&self, start: u64) -> Result<Rc<Segment>, (PathBuf, io::Error)> {
        if let Some(segment) = self.segments.borrow().get(&start) {
            return Ok(Rc::clone(segment));
        }
        let _creating = self.create_lock.lock().await;
        if let Some(segment) = self.segments.borrow().get(&start) {
            return Ok(Rc::clone(segment));
        }
        let created = Segment::create(&self.dir, start, self.segment_size_bytes)
            .await
            .map_err(|e| (self.dir.join(segment_file_name(start)), e))?;
        // A new file's directory entry must be durable before data in it is acknowledged.
        sync_dir(&self.dir)
            .await
            .map_err(|e| (self.dir.clone(), e))?;
        let mut segments = self.segments.borrow_mut();
        let segment = segments.entry(start).or_insert_with(|| Rc::new(created));
        Ok(Rc::clone(segment))
    }

    /// fdatasyncs every segment written since its last sync. Afterwards every byte written
    /// before the call is durable; returns the durable end. On error the log is marked failed.
    pub async fn sync(&self) -> Result<u64, StoreError> {
        let (target, snapshot) = {
            let st = self.state.borrow();
            if let Some(source) = &st.failed {
                return Err(StoreError::LogFailed {
                    source: Arc::clone(source),
                });
            }
            (st.written_end, st.unsynced.clone())
        };
        for &start in snapshot.keys() {
            let Some(segment) = self.segment(start) else {
                continue;
            };
            let result = segment.sync_data().await;
            let mut st = self.state.borrow_mut();
            st.fdatasync_count += 1;
            if let Err(source) = result {
                let source = Arc::new(source);
                st.failed = Some(Arc::clone(&source));
                return Err(StoreError::Sync {
                    path: segment.path().to_path_buf(),
                    source,
                });
            }
        }
        let mut st = self.state.borrow_mut();
        for (start, generation) in snapshot {
            if st.unsynced.get(&start) == Some(&generation) {
                st.unsynced.remove(&start);
            }
        }
        st.durable_end = st.durable_end.max(target);
        Ok(st.durable_end)
    }

    /// The segment starting at `start`, if it exists.
    pub fn segment(&self, start: u64) -> Option<Rc<Segment>> {
        self.segments.borrow().get(&start).cloned()
    }

    /// The segment holding log offset `log_offset`, if it exists.
    pub fn segment_at(&self, log_offset: u64) -> Option<Rc<Segment>> {
        let start = log_offset - log_offset % self.segment_size_bytes;
        self.segment(start)
    }

    /// How many segments exist.
    pub fn segment_count(&self) -> usize {
        self.segments.borrow().len()
    }

    /// Start offsets of all segments, ascending.
    pub fn segment_starts(&self) -> Vec<u64> {
        self.segments.borrow().keys().copied().collect()
    }

    /// Locates `size_bytes` bytes at `physical_offset` below `visible_end`: the segment and
    /// the position in its file. Errors if the range is not in this shard's written log or
    /// crosses a segment end.
    pub fn locate(
        &self,
        physical_offset: i64,
        size_bytes: u64,
        visible_end: u64,
    ) -> Result<(Rc<Segment>, u64), StoreError> {
        let not_found = StoreError::NotFound { physical_offset };
        let (shard, log_offset) = split_physical(physical_offset).ok_or(not_found)?;
        let end = log_offset.checked_add(size_bytes);
        if shard != self.shard_id || end.is_none_or(|end| end > visible_end) {
            return Err(StoreError::NotFound { physical_offset });
        }
        let segment = self
            .segment_at(log_offset)
            .ok_or(StoreError::NotFound { physical_offset })?;
        let pos_in_file = log_offset - segment.start_offset();
        if pos_in_file + size_bytes > segment.size_bytes() {
            return Err(StoreError::NotFound { physical_offset });
        }
        Ok((segment, pos_in_file))
    }

    /// Log offset of the first byte still stored: the first segment's start (0 for a log
    /// without segments). Retention moves it forward; nothing else does.
    pub fn min_log_offset(&self) -> u64 {
        self.segments.borrow().keys().next().copied().unwrap_or(0)
    }

    /// Takes the oldest segment out of the log, if it is not the last one (the active
    /// segment is never removed), and returns it: the caller deletes its file. From then on
    /// [`CommitLog::locate`] finds nothing in it, while readers holding its `Rc` keep
    /// reading (the file stays open until the last `Rc` goes).
    pub fn remove_oldest_segment(&self) -> Option<Rc<Segment>> {
        let mut segments = self.segments.borrow_mut();
        if segments.len() < 2 {
            return None;
        }
        segments.pop_first().map(|(_, oldest)| oldest)
    }
}

/// Where a record of `len` bytes appended at log offset `end` starts: at `end`, or at the
/// next segment's start when `len` plus the closing blank record do not fit in the rest of
/// the segment (then a blank record fills `end..start`). Pure; `len + 8 ≤ segment_size`.
pub fn record_start(end: u64, len: u64, segment_size_bytes: u64) -> u64 {
    let seg_start = end - end % segment_size_bytes;
    let remaining = seg_start + segment_size_bytes - end;
    if len + BLANK_RECORD_SIZE as u64 > remaining {
        seg_start + segment_size_bytes
    } else {
        end
    }
}

/// An exclusive `flock` on `<log dir>/lock`, held while a store has the log open, so that
/// two processes never append to one log. The kernel drops it when the process dies, so a
/// crash leaves nothing to clean up.
#[derive(Debug)]
pub struct LogLock {
    _file: std::fs::File,
}

impl LogLock {
    /// Takes the lock without waiting; [`StoreError::Locked`] if someone holds it.
    pub fn acquire(log_dir: &Path) -> Result<Self, StoreError> {
        use std::os::fd::AsRawFd;
        let path = log_dir.join("lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(StoreError::io("open lock file", &path))?;
        // SAFETY: flock only reads its integer arguments; the fd is open for the call
        // because `file` is borrowed for it.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            return Err(StoreError::Locked {
                path,
                source: io::Error::last_os_error(),
            });
        }
        Ok(LogLock { _file: file })
    }
}

/// fsyncs a directory so that file creations and renames in it are durable.
pub async fn sync_dir(dir: &Path) -> io::Result<()> {
    let d = compio::fs::OpenOptions::new().read(true).open(dir).await?;
    d.sync_all().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn physical_offset_puts_the_shard_in_the_top_byte() {
        assert_eq!(to_physical(0, 8000), Some(8000));
        assert_eq!(to_physical(3, 5), Some((3_i64 << 56) | 5));
        assert_eq!(split_physical((3_i64 << 56) | 5), Some((3, 5)));
        assert_eq!(split_physical(-1), None);
        assert_eq!(to_physical(1, MAX_LOG_OFFSET + 1), None);
    }
}

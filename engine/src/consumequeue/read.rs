//! Reading a ConsumeQueue: [`ConsumeQueue::read`], [`ConsumeQueue::entry_at`] and the
//! timestamp search built on them. A read is planned synchronously (recent entries copied
//! from the memory window, older ones as positional reads of the files, handles cloned) so
//! its future borrows nothing and the shard can await it without holding the queue.
//!
//! **Invariants.** Reads never return entries at or past `max_offset`, and a planned range
//! `[from, end)` is covered exactly once: files below `window_start`, memory from there.
//!
//! **Crash.** Read-only: a crash leaves nothing behind.

use std::future::Future;
use std::path::PathBuf;

use compio::buf::{BufResult, IntoInner, IoBuf};
use compio::fs::File;
use compio::io::AsyncReadAtExt;

use super::entry::decode_all;
use super::{
    io_error, Bisection, Boundary, ConsumeQueue, CqEntry, CqError, SearchError, ENTRY_SIZE_BYTES,
    MAX_READ_ENTRIES,
};

impl ConsumeQueue {
    /// Up to `max_entries` (capped at [`MAX_READ_ENTRIES`]) entries from `from`, fewer at
    /// the end of the queue, none at `max_offset`. `from` outside `[min, max]` is
    /// [`CqError::OutOfRange`]. The returned future does not borrow the queue: recent
    /// entries are copied now, older ones are read from the files (handles cloned now) when
    /// it is polled.
    pub fn read(
        &self,
        from: i64,
        max_entries: usize,
    ) -> impl Future<Output = Result<Vec<CqEntry>, CqError>> + 'static {
        let plan = self.plan_read(from, max_entries);
        async move { plan?.execute().await }
    }

    /// The entry at `offset`, `None` outside `[min_offset, max_offset)`. Like
    /// [`ConsumeQueue::read`], the future does not borrow the queue.
    pub fn entry_at(
        &self,
        offset: i64,
    ) -> impl Future<Output = Result<Option<CqEntry>, CqError>> + 'static {
        let plan = (offset >= self.min_offset && offset < self.max_offset)
            .then(|| self.plan_read(offset, 1));
        async move {
            match plan {
                None => Ok(None),
                Some(plan) => Ok(plan?.execute().await?.first().copied()),
            }
        }
    }

    /// SEARCH_OFFSET_BY_TIMESTAMP: bisects `[min, max)` with the store time of the message
    /// each probed entry points to, which `store_time_ms_of` looks up (in the CommitLog).
    /// 5.x semantics: [`Boundary::Lower`] → the first offset whose store time is ≥ the
    /// timestamp (`max` if all are older, `min` if all are newer); [`Boundary::Upper`] → the
    /// last offset whose store time is ≤ it (`min` if all are newer). O(log n) entry reads
    /// and lookups; the pure part is [`Bisection`].
    pub async fn search_by_timestamp<F, Fut, E>(
        &self,
        timestamp_ms: i64,
        boundary: Boundary,
        mut store_time_ms_of: F,
    ) -> Result<i64, SearchError<E>>
    where
        F: FnMut(CqEntry) -> Fut,
        Fut: Future<Output = Result<i64, E>>,
        E: std::error::Error + 'static,
    {
        let mut bisection =
            Bisection::new(self.min_offset, self.max_offset, timestamp_ms, boundary);
        while let Some(offset) = bisection.probe() {
            let entry = self.entry_at(offset).await?.ok_or(CqError::OutOfRange {
                offset,
                min_offset: self.min_offset,
                max_offset: self.max_offset,
            })?;
            let store_time_ms = store_time_ms_of(entry).await.map_err(SearchError::Lookup)?;
            bisection.record(offset, store_time_ms);
        }
        Ok(bisection.answer())
    }

    pub(super) fn plan_read(&self, from: i64, max_entries: usize) -> Result<ReadPlan, CqError> {
        if from < self.min_offset || from > self.max_offset {
            return Err(CqError::OutOfRange {
                offset: from,
                min_offset: self.min_offset,
                max_offset: self.max_offset,
            });
        }
        let wanted = i64::try_from(max_entries.min(MAX_READ_ENTRIES)).unwrap_or(0);
        let end = self.max_offset.min(from.saturating_add(wanted));
        let mut plan = ReadPlan {
            runs: Vec::new(),
            memory: Vec::new(),
        };
        let mut offset = from;
        let disk_end = end.min(self.window_start);
        while offset < disk_end {
            let first = self.file_first(offset);
            let run_end = disk_end.min(first + self.entries_per_file);
            let path = self.file_path(first);
            let Some(file) = self.files.get(&first) else {
                return Err(CqError::MissingFile { offset, path });
            };
            plan.runs.push(ReadRun {
                file: file.clone(),
                path,
                position: self.position_in_file(offset),
                entries: usize::try_from(run_end - offset).unwrap_or(0),
            });
            offset = run_end;
        }
        let skip = usize::try_from(offset - self.window_start).unwrap_or(usize::MAX);
        let take = usize::try_from(end - offset).unwrap_or(0);
        plan.memory
            .extend(self.window.iter().skip(skip).take(take).copied());
        Ok(plan)
    }
}

/// A read split into file runs (older entries) and a copy of in-memory ones (newer).
#[derive(Debug)]
pub(super) struct ReadPlan {
    runs: Vec<ReadRun>,
    memory: Vec<CqEntry>,
}

impl ReadPlan {
    pub(super) async fn execute(self) -> Result<Vec<CqEntry>, CqError> {
        if self.runs.is_empty() {
            // A consumer at the tail: everything came from memory, no second copy.
            return Ok(self.memory);
        }
        let total = self.runs.iter().map(|r| r.entries).sum::<usize>() + self.memory.len();
        let mut out = Vec::with_capacity(total);
        for run in self.runs {
            run.read_into(&mut out).await?;
        }
        out.extend(self.memory);
        Ok(out)
    }
}

/// Consecutive entries in one file.
#[derive(Debug)]
pub(super) struct ReadRun {
    pub(super) file: File,
    pub(super) path: PathBuf,
    pub(super) position: u64,
    pub(super) entries: usize,
}

impl ReadRun {
    pub(super) async fn read_into(self, out: &mut Vec<CqEntry>) -> Result<(), CqError> {
        let len_bytes = self.entries * ENTRY_SIZE_BYTES;
        let buf = Vec::with_capacity(len_bytes);
        // `read_exact_at` fills the buffer's capacity, which may exceed what was asked.
        let BufResult(result, buf) = self
            .file
            .read_exact_at(buf.slice(0..len_bytes), self.position)
            .await;
        result.map_err(io_error(&self.path))?;
        out.extend(decode_all(&buf.into_inner()));
        Ok(())
    }
}

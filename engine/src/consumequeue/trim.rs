//! Trimming a ConsumeQueue's head after CommitLog retention deleted the segments its oldest
//! entries point into (see [`crate::store`]'s retention).
//!
//! **Owns** two steps, in this order: [`ConsumeQueue::advance_min_to_physical`] moves
//! `min_offset` (in memory only) to the first entry pointing at or past the log's new min
//! offset, so pulls below it are answered OFFSET_TOO_SMALL with the new min instead of
//! reading a deleted segment; [`ConsumeQueue::delete_files_below_min`] then deletes the files
//! whose entries all lie below `min_offset`. The queue's last file is always kept, whatever it
//! holds, so that a reopen finds the queue's end (its max offset) where it was.
//!
//! **Crash.** Nothing records the new min: a reopen finds the first valid entry of the first
//! remaining file (maybe below the log's min again) and the store moves it the same way from
//! the log's first segment. A crash between file deletions leaves some of them, which the
//! next trim deletes; a deletion not yet made durable by the directory's fsync (done at the
//! next [`ConsumeQueue::sync`]) may bring a file back after a power loss, trimmed again then.

use super::{io_error, ConsumeQueue, CqError};

impl ConsumeQueue {
    /// Moves `min_offset` to the first entry whose physical offset is ≥ `physical_offset`
    /// (never backwards, never past what is written); returns the new min offset. Memory
    /// only: see the module documentation.
    pub async fn advance_min_to_physical(&mut self, physical_offset: i64) -> Result<i64, CqError> {
        let first_kept = self
            .first_offset_at_or_past(physical_offset)
            .await?
            .min(self.written_offset);
        if first_kept <= self.min_offset {
            return Ok(self.min_offset);
        }
        self.min_offset = first_kept;
        while self.window_start < first_kept && self.window.pop_front().is_some() {
            self.window_start += 1;
        }
        // An empty window may start below the new min: it starts where entries would be.
        if self.window.is_empty() {
            self.window_start = self.window_start.max(first_kept);
        }
        debug_assert!(
            self.min_offset <= self.written_offset && self.written_offset <= self.max_offset,
            "queue offsets out of order after a trim"
        );
        Ok(self.min_offset)
    }

    /// Deletes every file whose entries all lie below `min_offset`, except the queue's last
    /// file; returns how many were deleted. Not durable until [`ConsumeQueue::sync`].
    pub async fn delete_files_below_min(&mut self) -> Result<usize, CqError> {
        let last_first = self.files.keys().next_back().copied();
        let below: Vec<i64> = self
            .files
            .keys()
            .copied()
            .filter(|first| {
                first.saturating_add(self.entries_per_file) <= self.min_offset
                    && Some(*first) != last_first
            })
            .collect();
        for first in &below {
            self.files.remove(first);
            self.unsynced_files.remove(first);
            let path = self.file_path(*first);
            match compio::fs::remove_file(&path).await {
                Ok(()) => {}
                // Already gone (a trim interrupted by a crash and redone): the goal holds.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_error(&path)(e)),
            }
            self.dir_unsynced = true;
        }
        Ok(below.len())
    }
}

//! The ConsumeQueue of one `(topic, queueId)`: logical offset → (physical offset, size,
//! tags hash), protocol.md §4.1, design.md §4-§5.
//!
//! **Files.** `<dir>/<20-digit byte offset>`; `<dir>` is `<root>/consumequeue/<topic>/<queueId>`
//! (the caller builds it). Each file holds `entries_per_file` 20-byte entries (300 000 by
//! default, 6 000 000 bytes); logical offset `n` lives at byte `n * 20` of the queue's byte
//! stream, so file `F` holds offsets `[F / 20, F / 20 + entries_per_file)`. Files are not
//! preallocated: a file's length is how far it was written.
//!
//! **Memory.** Appends go to an in-memory window ([`ConsumeQueue::append`], synchronous,
//! visible to reads at once). [`ConsumeQueue::write_pending`] writes what is pending with one
//! positional write per file touched, into the page cache on the shard thread (the store's
//! writer calls it once a page's worth is pending, the checkpoint for the rest);
//! [`ConsumeQueue::sync`] also fdatasyncs. The window keeps
//! the newest [`DEFAULT_MEMORY_ENTRIES`] written entries as well, so consumers at the tail
//! read from memory; older entries are read from the files with positional reads.
//!
//! **Invariants.** `min_offset ≤ written_offset ≤ max_offset`; the window holds exactly
//! `[window_start, max_offset)` and `window_start ≤ written_offset`, so every entry is either
//! in memory or in a file; entries in files below `written_offset` never change except by
//! [`ConsumeQueue::truncate_from_physical`], [`ConsumeQueue::reset_to`] and, at the head,
//! [`ConsumeQueue::delete_files_below_min`]. Physical offsets
//! rise with the logical offset (one shard's log feeds the queue).
//!
//! **Crash.** Unsynced entries may be lost, or a write may land partly (a torn 20-byte entry,
//! or a later page on disk before an earlier one). [`ConsumeQueue::open`] therefore scans
//! forward (from the last three files, as RocketMQ does) and ends the queue at the first entry
//! that is not [`CqEntry::is_valid`] or not whole, then cuts the file there and deletes later
//! files, so stale bytes past the end can never be taken for entries after the next crash.
//! Lost entries are rebuilt by recovery from the CommitLog, which is the truth: recovery
//! calls [`ConsumeQueue::truncate_from_physical`] with the log's end so a queue never points
//! past the log, then re-dispatches (re-appending an entry that is present is a no-op).
//!
//! **Use by the store.** Start: [`ConsumeQueue::open`], then
//! [`ConsumeQueue::truncate_from_physical`] with the log's end, then re-dispatch with
//! [`ConsumeQueue::append`] (a queue found empty while the log holds its messages from
//! offset `n` on is first moved there with [`ConsumeQueue::reset_to`]). Each loop turn:
//! `append` for the group's records, then [`ConsumeQueue::write_pending`] when enough is
//! pending; at checkpoints
//! [`ConsumeQueue::sync`]. Pulls: [`ConsumeQueue::read`] (its future borrows nothing, so a
//! shard can hold the queue in a `RefCell` and await outside the borrow) and
//! [`TagFilter::matches`] on each entry.
//!
//! **Modules.** This file holds the queue's state, its writes and truncations; `open`
//! finds the queue's bounds at open and repairs its tail, `read` plans and runs reads
//! (and the timestamp search), `entry` encodes entries, `search` is the pure bisection,
//! `tag_filter` the subscription filter, `trim` drops the head of the queue once the
//! CommitLog segments it points into are deleted by retention.

mod entry;
mod open;
mod read;
mod search;
mod tag_filter;
mod trim;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use compio::fs::{File, OpenOptions};

use entry::{encode_all, ENTRY_SIZE_BYTES_U64};
pub use entry::{CqEntry, ENTRY_SIZE_BYTES};
pub use search::{search_slice, Bisection, Boundary};
pub use tag_filter::TagFilter;

/// Entries per file unless configured (`mappedFileSizeConsumeQueue` / 20).
pub const DEFAULT_ENTRIES_PER_FILE: u64 = 300_000;

/// Written entries kept in memory per queue (20 KiB): a consumer at the tail never reads
/// the files.
pub const DEFAULT_MEMORY_ENTRIES: usize = 1024;

/// At most this many entries per [`ConsumeQueue::read`] (1.25 MiB); callers loop for more.
pub const MAX_READ_ENTRIES: usize = 65_536;

/// Largest accepted `entries_per_file` (a 20 TiB file): keeps byte arithmetic far from
/// overflow.
pub const MAX_ENTRIES_PER_FILE: u64 = 1 << 40;

/// What can go wrong in a ConsumeQueue. I/O errors keep their source and the file's path.
#[derive(Debug, thiserror::Error)]
pub enum CqError {
    /// A file or directory operation failed.
    #[error("consume queue I/O on {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// `entries_per_file` is 0 or absurdly large.
    #[error("entries per file must be in 1..={MAX_ENTRIES_PER_FILE}, got {entries_per_file}")]
    BadEntriesPerFile {
        /// The value given.
        entries_per_file: u64,
    },
    /// A 20-digit file name that is not a multiple of the file size: the queue was written
    /// with another `entries_per_file`.
    #[error("{path} does not start at a multiple of the file size ({file_size_bytes} bytes)")]
    MisalignedFile {
        /// The file.
        path: PathBuf,
        /// `entries_per_file * 20`.
        file_size_bytes: u64,
    },
    /// A file longer than a file may be.
    #[error("{path} holds {len_bytes} bytes, more than the file size {file_size_bytes}")]
    FileTooLong {
        /// The file.
        path: PathBuf,
        /// Its length.
        len_bytes: u64,
        /// `entries_per_file * 20`.
        file_size_bytes: u64,
    },
    /// An append that is not at `max_offset`.
    #[error("append at logical offset {offset}, but the next offset is {expected}")]
    Gap {
        /// The offset asked for.
        offset: i64,
        /// `max_offset`.
        expected: i64,
    },
    /// A re-append that contradicts what the queue holds.
    #[error("logical offset {offset} holds physical offset {existing}, the re-append says {new}")]
    Conflict {
        /// The logical offset compared.
        offset: i64,
        /// Its physical offset in the queue.
        existing: i64,
        /// The physical offset of the rejected append.
        new: i64,
    },
    /// A read outside `[min_offset, max_offset]`, or a negative offset.
    #[error("logical offset {offset} is outside [{min_offset}, {max_offset}]")]
    OutOfRange {
        /// The offset asked for.
        offset: i64,
        /// The queue's min offset.
        min_offset: i64,
        /// The queue's max offset.
        max_offset: i64,
    },
    /// The file that should hold an entry below `written_offset` is not there.
    #[error("no file holds logical offset {offset} (expected {path})")]
    MissingFile {
        /// The offset.
        offset: i64,
        /// The file it should be in.
        path: PathBuf,
    },
    /// [`ConsumeQueue::reset_to`] on a queue that has entries.
    #[error("reset_to on a queue holding entries [{min_offset}, {max_offset})")]
    NotEmpty {
        /// The queue's min offset.
        min_offset: i64,
        /// The queue's max offset.
        max_offset: i64,
    },
}

/// What [`ConsumeQueue::append`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appended {
    /// The entry is new; `max_offset` moved by one.
    New,
    /// The entry was already there (a re-dispatch during recovery); nothing changed.
    Duplicate,
}

/// Failure of [`ConsumeQueue::search_by_timestamp`]: reading the queue, or the caller's
/// store-time lookup.
#[derive(Debug, thiserror::Error)]
pub enum SearchError<E: std::error::Error + 'static> {
    /// Reading an entry failed.
    #[error(transparent)]
    Queue(#[from] CqError),
    /// The store-time lookup failed.
    #[error("store time lookup: {0}")]
    Lookup(#[source] E),
}

/// A ConsumeQueue: see the module documentation.
#[derive(Debug)]
pub struct ConsumeQueue {
    dir: PathBuf,
    entries_per_file: i64,
    min_offset: i64,
    max_offset: i64,
    /// Entries below this are in files (written, maybe not synced).
    written_offset: i64,
    /// Logical offset of `window[0]`.
    window_start: i64,
    window: VecDeque<CqEntry>,
    /// Written entries kept in the window after a write.
    memory_entries: usize,
    /// First logical offset of each file → its handle (read + write).
    files: BTreeMap<i64, File>,
    /// Files written since the last sync (by first logical offset).
    unsynced_files: BTreeSet<i64>,
    /// A file was created or deleted since the last sync.
    dir_unsynced: bool,
    /// Directories `open` created (the queue's, maybe its topic's), deepest first, whose
    /// entries their parents have not yet made durable.
    created_dirs: Vec<std::path::PathBuf>,
    /// Reused encode buffer for writes.
    encode_buf: Vec<u8>,
}

impl ConsumeQueue {
    /// Next logical offset to write (RocketMQ's maxOffset); entries end just below it.
    pub fn max_offset(&self) -> i64 {
        self.max_offset
    }

    /// First logical offset held.
    pub fn min_offset(&self) -> i64 {
        self.min_offset
    }

    /// Entries below this offset have been handed to the files (not necessarily synced).
    pub fn written_offset(&self) -> i64 {
        self.written_offset
    }

    /// Entries appended but not yet written to a file.
    pub fn pending_entries(&self) -> i64 {
        self.max_offset - self.written_offset
    }

    /// The queue's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Entries per file.
    pub fn entries_per_file(&self) -> u64 {
        self.entries_per_file.unsigned_abs()
    }

    /// How many written entries stay in memory after a write (default
    /// [`DEFAULT_MEMORY_ENTRIES`]); takes effect at the next write.
    pub fn set_memory_entries(&mut self, entries: usize) {
        self.memory_entries = entries;
    }

    /// Appends the entry for `logical_offset`, which must be `max_offset`. Re-appending an
    /// entry already held with the same physical offset (recovery re-dispatching) returns
    /// [`Appended::Duplicate`] and changes nothing; an offset below `min_offset` likewise.
    /// Below the memory window the check is that the physical offset is below the window's
    /// first one (physical offsets rise with the logical offset), since verifying exactly
    /// would need a read.
    pub fn append(&mut self, logical_offset: i64, entry: CqEntry) -> Result<Appended, CqError> {
        if logical_offset == self.max_offset {
            self.window.push_back(entry);
            self.max_offset += 1;
            return Ok(Appended::New);
        }
        if logical_offset > self.max_offset {
            return Err(CqError::Gap {
                offset: logical_offset,
                expected: self.max_offset,
            });
        }
        if logical_offset < self.min_offset {
            return Ok(Appended::Duplicate);
        }
        let (compared_offset, existing) = match self.window_get(logical_offset) {
            Some(existing) => (logical_offset, existing),
            None => match self.window.front() {
                Some(front) if entry.physical_offset < front.physical_offset => {
                    return Ok(Appended::Duplicate)
                }
                Some(front) => (self.window_start, *front),
                None => return Ok(Appended::Duplicate),
            },
        };
        if compared_offset == logical_offset && existing.physical_offset == entry.physical_offset {
            Ok(Appended::Duplicate)
        } else {
            Err(CqError::Conflict {
                offset: compared_offset,
                existing: existing.physical_offset,
                new: entry.physical_offset,
            })
        }
    }

    /// Writes every pending entry: one positional write per file touched. Trims the memory
    /// window to the newest written entries afterwards. On error the entries not written
    /// stay pending (a retry writes them again).
    pub async fn write_pending(&mut self) -> Result<(), CqError> {
        while self.written_offset < self.max_offset {
            let offset = self.written_offset;
            let first = self.file_first(offset);
            let end = self.max_offset.min(first + self.entries_per_file);
            let skip = usize::try_from(offset - self.window_start).unwrap_or(usize::MAX);
            let count = usize::try_from(end - offset).unwrap_or(0);
            let mut buf = std::mem::take(&mut self.encode_buf);
            encode_all(self.window.iter().skip(skip).take(count).copied(), &mut buf);
            debug_assert_eq!(buf.len(), count * ENTRY_SIZE_BYTES);
            let file = self.file_for_write(first).await?;
            let position = self.position_in_file(offset);
            // On the shard thread, not through io_uring: ext4 punts every buffered write
            // to an io-wq worker, and this one is a copy of a few hundred bytes.
            let result = crate::inline_write::write_all_at(file.as_fd(), &buf, position);
            self.encode_buf = buf;
            result.map_err(io_error(&self.file_path(first)))?;
            self.unsynced_files.insert(first);
            self.written_offset = end;
        }
        self.trim_window();
        Ok(())
    }

    /// Writes what is pending, then fdatasyncs every file written since the last sync and,
    /// if files were created or deleted, the directory. A durability point.
    pub async fn sync(&mut self) -> Result<(), CqError> {
        self.write_pending().await?;
        while let Some(first) = self.unsynced_files.first().copied() {
            if let Some(file) = self.files.get(&first).cloned() {
                file.sync_data()
                    .await
                    .map_err(io_error(&self.file_path(first)))?;
            }
            self.unsynced_files.remove(&first);
        }
        if self.dir_unsynced {
            sync_dir(&self.dir).await?;
            self.dir_unsynced = false;
        }
        // Directories `open` created: their entries must be durable in their parents too
        // (the topic's in `consumequeue/`, the queue's in the topic's), top down.
        while let Some(created) = self.created_dirs.last().cloned() {
            if let Some(parent) = created.parent() {
                sync_dir(parent).await?;
            }
            self.created_dirs.pop();
        }
        Ok(())
    }

    /// Drops every entry whose physical offset is ≥ `physical_offset` (recovery, after the
    /// CommitLog was cut there): memory, pending entries and file tails; files wholly past
    /// the cut are deleted. Returns how many entries were dropped. Not durable until
    /// [`ConsumeQueue::sync`].
    pub async fn truncate_from_physical(&mut self, physical_offset: i64) -> Result<i64, CqError> {
        let cut = self.first_offset_at_or_past(physical_offset).await?;
        if cut >= self.max_offset {
            return Ok(0);
        }
        let dropped = self.max_offset - cut;
        tracing::info!(dir = %self.dir.display(), cut, dropped, physical_offset, "consume queue truncated");
        if cut >= self.window_start {
            self.window
                .truncate(usize::try_from(cut - self.window_start).unwrap_or(usize::MAX));
        } else {
            self.window.clear();
            self.window_start = cut;
        }
        self.max_offset = cut;
        self.written_offset = self.written_offset.min(cut);
        self.cut_files_at(cut).await?;
        Ok(dropped)
    }

    /// Moves an empty queue to start at `offset` (recovery rebuilding a queue whose files
    /// are gone while the log still holds its messages from `offset` on). Replaces the
    /// files by one sparse file that ends at `offset`, so a reopen finds the same place.
    pub async fn reset_to(&mut self, offset: i64) -> Result<(), CqError> {
        if self.min_offset != self.max_offset {
            return Err(CqError::NotEmpty {
                min_offset: self.min_offset,
                max_offset: self.max_offset,
            });
        }
        if offset < 0 {
            return Err(CqError::OutOfRange {
                offset,
                min_offset: 0,
                max_offset: i64::MAX,
            });
        }
        for first in std::mem::take(&mut self.files).into_keys() {
            let path = self.file_path(first);
            compio::fs::remove_file(&path)
                .await
                .map_err(io_error(&path))?;
        }
        self.unsynced_files.clear();
        self.dir_unsynced = true;
        let first = self.file_first(offset);
        let file = self.file_for_write(first).await?;
        let len_bytes = self.position_in_file(offset);
        file.set_len(len_bytes)
            .await
            .map_err(io_error(&self.file_path(first)))?;
        self.unsynced_files.insert(first);
        self.window.clear();
        self.min_offset = offset;
        self.max_offset = offset;
        self.written_offset = offset;
        self.window_start = offset;
        Ok(())
    }

    // ---- internals ----

    fn window_get(&self, offset: i64) -> Option<CqEntry> {
        let index = usize::try_from(offset.checked_sub(self.window_start)?).ok()?;
        self.window.get(index).copied()
    }

    fn file_first(&self, offset: i64) -> i64 {
        offset - offset.rem_euclid(self.entries_per_file)
    }

    fn position_in_file(&self, offset: i64) -> u64 {
        (offset - self.file_first(offset)).unsigned_abs() * ENTRY_SIZE_BYTES_U64
    }

    fn file_path(&self, first: i64) -> PathBuf {
        let first_byte = first.unsigned_abs().saturating_mul(ENTRY_SIZE_BYTES_U64);
        self.dir.join(format!("{first_byte:020}"))
    }

    /// The handle of the file starting at `first`, created if missing.
    async fn file_for_write(&mut self, first: i64) -> Result<File, CqError> {
        if let Some(file) = self.files.get(&first) {
            return Ok(file.clone());
        }
        let file = open_rw(&self.file_path(first), true).await?;
        self.files.insert(first, file.clone());
        self.dir_unsynced = true;
        Ok(file)
    }

    fn trim_window(&mut self) {
        let keep_from = self
            .written_offset
            .min(
                self.max_offset
                    .saturating_sub(i64::try_from(self.memory_entries).unwrap_or(i64::MAX)),
            )
            .max(self.window_start);
        while self.window_start < keep_from && self.window.pop_front().is_some() {
            self.window_start += 1;
        }
    }

    /// The first logical offset in `[min, max)` whose physical offset is ≥ `physical`
    /// (`max` if none), by bisection: physical offsets rise with the logical offset.
    async fn first_offset_at_or_past(&self, physical: i64) -> Result<i64, CqError> {
        let in_window = self
            .window
            .partition_point(|e| e.physical_offset < physical);
        if in_window > 0 || self.window_start == self.min_offset {
            return Ok(self.window_start + i64::try_from(in_window).unwrap_or(i64::MAX));
        }
        // Every window entry is at or past `physical`: the answer is in the files.
        let (mut low, mut high) = (self.min_offset, self.window_start);
        while low < high {
            let mid = low + (high - low) / 2;
            let entry = self.plan_read(mid, 1)?.execute().await?;
            match entry.first() {
                Some(e) if e.physical_offset < physical => low = mid + 1,
                _ => high = mid,
            }
        }
        Ok(low)
    }

    /// Shortens the file holding `cut` to end there and deletes every later file.
    async fn cut_files_at(&mut self, cut: i64) -> Result<(), CqError> {
        let tail_first = self.file_first(cut);
        let later: Vec<i64> = self
            .files
            .range(tail_first + 1..)
            .map(|(first, _)| *first)
            .collect();
        for first in later {
            self.files.remove(&first);
            self.unsynced_files.remove(&first);
            let path = self.file_path(first);
            compio::fs::remove_file(&path)
                .await
                .map_err(io_error(&path))?;
            self.dir_unsynced = true;
        }
        if let Some(file) = self.files.get(&tail_first).cloned() {
            let path = self.file_path(tail_first);
            let len_bytes = self.position_in_file(cut);
            let current = file.metadata().await.map_err(io_error(&path))?.len();
            if current > len_bytes {
                file.set_len(len_bytes).await.map_err(io_error(&path))?;
                self.unsynced_files.insert(tail_first);
            }
        }
        Ok(())
    }
}

fn whole_entries(len_bytes: u64) -> i64 {
    i64::try_from(len_bytes / ENTRY_SIZE_BYTES_U64).unwrap_or(i64::MAX)
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> CqError + '_ {
    move |source| CqError::Io {
        path: path.to_path_buf(),
        source,
    }
}

async fn open_rw(path: &Path, create: bool) -> Result<File, CqError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(create)
        .open(path)
        .await
        .map_err(io_error(path))
}

async fn sync_dir(dir: &Path) -> Result<(), CqError> {
    let handle = OpenOptions::new()
        .read(true)
        .open(dir)
        .await
        .map_err(io_error(dir))?;
    handle.sync_all().await.map_err(io_error(dir))
}

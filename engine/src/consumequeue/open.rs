//! Opening a ConsumeQueue: list its files, check their names and sizes, then find where
//! the queue starts and ends and repair a torn tail (see the parent module's **Crash**).
//!
//! **Owns** the open-time scan: the first valid entry in any file is `min_offset`; from the
//! last [`RECOVERY_SCAN_FILES`] files on, the first invalid or missing entry is
//! `max_offset`. Everything past it is cut (file tail shortened, later files deleted), so
//! stale bytes can never be taken for entries after a later crash. Afterwards
//! `min_offset ≤ written_offset = max_offset` and the memory window holds the newest
//! entries scanned.
//!
//! **Crash.** The cuts are not synced here (the next [`ConsumeQueue::sync`] does it); a
//! crash before then leaves the old tail, which the next open cuts the same way.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};

use super::entry::ENTRY_SIZE_BYTES_U64;
use super::read::ReadRun;
use super::{
    io_error, open_rw, whole_entries, ConsumeQueue, CqEntry, CqError, DEFAULT_MEMORY_ENTRIES,
    MAX_ENTRIES_PER_FILE,
};

/// Entries read per chunk while scanning at open (80 KiB).
const SCAN_CHUNK_ENTRIES: i64 = 4096;

/// How many trailing files [`ConsumeQueue::open`] scans for the end (RocketMQ: 3).
const RECOVERY_SCAN_FILES: usize = 3;

impl ConsumeQueue {
    /// Opens (creating the directory if needed) the queue in `dir`, finds its min and max
    /// offsets and repairs a torn tail (see the module documentation).
    pub async fn open(dir: impl AsRef<Path>, entries_per_file: u64) -> Result<Self, CqError> {
        let dir = dir.as_ref().to_path_buf();
        if entries_per_file == 0 || entries_per_file > MAX_ENTRIES_PER_FILE {
            return Err(CqError::BadEntriesPerFile { entries_per_file });
        }
        let existed = dir.is_dir();
        // Their entries become durable at the queue's first sync, with its files.
        let created_dirs = crate::dirs::missing_dirs(&dir);
        compio::fs::create_dir_all(&dir)
            .await
            .map_err(io_error(&dir))?;
        // Listing happens once per queue at start-up; compio 0.19 has no readdir op, and
        // the std call is as fast as it gets for a directory of a few entries.
        let names = list_queue_files(&dir)?;
        let epf = i64::try_from(entries_per_file)
            .map_err(|_| CqError::BadEntriesPerFile { entries_per_file })?;
        let mut queue = Self {
            dir,
            entries_per_file: epf,
            min_offset: 0,
            max_offset: 0,
            written_offset: 0,
            window_start: 0,
            window: VecDeque::new(),
            memory_entries: DEFAULT_MEMORY_ENTRIES,
            files: BTreeMap::new(),
            unsynced_files: BTreeSet::new(),
            dir_unsynced: !existed,
            created_dirs,
            encode_buf: Vec::new(),
        };
        let mut lengths = BTreeMap::new();
        for (first_byte, path) in names {
            let file_size_bytes = entries_per_file * ENTRY_SIZE_BYTES_U64;
            if first_byte % file_size_bytes != 0 {
                return Err(CqError::MisalignedFile {
                    path,
                    file_size_bytes,
                });
            }
            let first = i64::try_from(first_byte / ENTRY_SIZE_BYTES_U64).map_err(|_| {
                CqError::MisalignedFile {
                    path: path.clone(),
                    file_size_bytes,
                }
            })?;
            let file = open_rw(&path, false).await?;
            let len_bytes = file.metadata().await.map_err(io_error(&path))?.len();
            if len_bytes > file_size_bytes {
                return Err(CqError::FileTooLong {
                    path,
                    len_bytes,
                    file_size_bytes,
                });
            }
            queue.files.insert(first, file);
            lengths.insert(first, len_bytes);
        }
        queue.recover(&lengths).await?;
        Ok(queue)
    }

    /// Finds min and max from the files (`lengths`: first offset → file length) and cuts
    /// whatever lies past the end.
    async fn recover(&mut self, lengths: &BTreeMap<i64, u64>) -> Result<(), CqError> {
        let Some((&last_first, &last_len)) = lengths.last_key_value() else {
            return Ok(());
        };
        let Some(min) = self.find_first_valid(lengths).await? else {
            // No entry at all: the position is where the last file ends (reset_to and a
            // truncation to empty leave it there).
            let position = last_first + whole_entries(last_len);
            self.set_empty_at(position);
            self.cut_files_at(position).await?;
            return Ok(());
        };
        let scan_from_first = lengths
            .keys()
            .rev()
            .nth(RECOVERY_SCAN_FILES - 1)
            .copied()
            .unwrap_or(min)
            .max(min);
        let max = self.scan_to_end(lengths, scan_from_first).await?;
        self.min_offset = min;
        self.max_offset = max;
        self.written_offset = max;
        self.window_start = max - i64::try_from(self.window.len()).unwrap_or(0);
        let expected_end = last_first + whole_entries(last_len);
        if expected_end != max {
            tracing::warn!(dir = %self.dir.display(), max, expected_end, "consume queue tail cut at the first invalid entry");
        }
        self.cut_files_at(max).await
    }

    fn set_empty_at(&mut self, position: i64) {
        self.min_offset = position;
        self.max_offset = position;
        self.written_offset = position;
        self.window_start = position;
        self.window.clear();
    }

    /// The logical offset of the first valid entry in any file, scanning forward.
    async fn find_first_valid(&self, lengths: &BTreeMap<i64, u64>) -> Result<Option<i64>, CqError> {
        for (&first, &len_bytes) in lengths {
            let mut done = 0;
            let entries = whole_entries(len_bytes);
            while done < entries {
                let count = (entries - done).min(SCAN_CHUNK_ENTRIES);
                let chunk = self.read_file_entries(first, done, count).await?;
                if let Some(index) = chunk.iter().position(CqEntry::is_valid) {
                    return Ok(Some(first + done + i64::try_from(index).unwrap_or(0)));
                }
                done += count;
            }
        }
        Ok(None)
    }

    /// Scans forward from `from` (a valid entry) to the first invalid or missing entry,
    /// filling the memory window with the newest entries seen; returns that end offset.
    async fn scan_to_end(
        &mut self,
        lengths: &BTreeMap<i64, u64>,
        from: i64,
    ) -> Result<i64, CqError> {
        let mut offset = from;
        loop {
            let first = self.file_first(offset);
            let Some(&len_bytes) = lengths.get(&first) else {
                return Ok(offset);
            };
            let data_end = first + whole_entries(len_bytes);
            while offset < data_end {
                let count = (data_end - offset).min(SCAN_CHUNK_ENTRIES);
                let chunk = self.read_file_entries(first, offset - first, count).await?;
                for entry in chunk {
                    if !entry.is_valid() {
                        return Ok(offset);
                    }
                    self.window.push_back(entry);
                    if self.window.len() > self.memory_entries {
                        self.window.pop_front();
                    }
                    offset += 1;
                }
            }
            if data_end < first + self.entries_per_file {
                return Ok(offset);
            }
        }
    }

    /// Reads `count` entries from index `index` of the file starting at `first`.
    async fn read_file_entries(
        &self,
        first: i64,
        index: i64,
        count: i64,
    ) -> Result<Vec<CqEntry>, CqError> {
        let path = self.file_path(first);
        let Some(file) = self.files.get(&first).cloned() else {
            return Err(CqError::MissingFile {
                offset: first + index,
                path,
            });
        };
        let run = ReadRun {
            file,
            path,
            position: index.unsigned_abs() * ENTRY_SIZE_BYTES_U64,
            entries: usize::try_from(count).unwrap_or(0),
        };
        let mut out = Vec::with_capacity(run.entries);
        run.read_into(&mut out).await?;
        Ok(out)
    }
}

/// The queue files in `dir` (20 ASCII digits), sorted by their byte offset. Other names
/// are ignored with a warning.
fn list_queue_files(dir: &Path) -> Result<Vec<(u64, PathBuf)>, CqError> {
    let mut files = Vec::new();
    for dirent in std::fs::read_dir(dir).map_err(io_error(dir))? {
        let dirent = dirent.map_err(io_error(dir))?;
        let name = dirent.file_name();
        let parsed = name
            .to_str()
            .filter(|n| n.len() == 20 && n.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|n| n.parse::<u64>().ok());
        match parsed {
            Some(first_byte) => files.push((first_byte, dirent.path())),
            None => {
                tracing::warn!(path = %dirent.path().display(), "not a consume queue file, ignored")
            }
        }
    }
    files.sort_unstable();
    Ok(files)
}

//! One CommitLog segment file: `<root>/commitlog/<shard>/<20-digit start offset>`.
//!
//! The file name is the segment's start as a **byte offset in the shard's own log** (the low
//! 56 bits of a physical offset, shard bits excluded), zero-padded to 20 digits; for shard 0
//! this is exactly RocketMQ's naming. Every segment has the same size and starts at a multiple
//! of it, so `start = local_offset - local_offset % segment_size_bytes`.
//!
//! Segments are preallocated to their full size at creation (`fallocate`), so the file length
//! says nothing about where the log ends: recovery finds the end by scanning records.
//! A crash during creation leaves an empty or short file (extended again at open) or a fully
//! preallocated file of zeros; neither holds a valid record, so recovery ignores it.

use std::io;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use compio::buf::BufResult;
use compio::io::{AsyncReadAtExt, AsyncWriteAtExt};

/// Length of a segment file name: 20 decimal digits.
pub const SEGMENT_NAME_LEN: usize = 20;

/// An open segment file. Shared by `Rc` between the append path and readers of the shard.
#[derive(Debug)]
pub struct Segment {
    start_offset: u64,
    size_bytes: u64,
    path: PathBuf,
    file: compio::fs::File,
}

/// The file name of the segment that starts at `start_offset` (a byte offset in the shard's log).
pub fn segment_file_name(start_offset: u64) -> String {
    format!("{start_offset:020}")
}

/// The start offset a segment file name encodes, or `None` if the name is not 20 digits.
pub fn parse_segment_file_name(name: &str) -> Option<u64> {
    if name.len() != SEGMENT_NAME_LEN || !name.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    name.parse().ok()
}

impl Segment {
    /// Creates (or reuses an empty leftover of) the segment starting at `start_offset` in `dir`
    /// and preallocates it to `size_bytes`. If the preallocation fails (a full disk) the file
    /// is removed again, so that nothing half-made is left for recovery to open: nothing was
    /// ever written to it.
    pub async fn create(dir: &Path, start_offset: u64, size_bytes: u64) -> io::Result<Segment> {
        let path = dir.join(segment_file_name(start_offset));
        let file = compio::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .open(&path)
            .await?;
        let segment = Segment {
            start_offset,
            size_bytes,
            path,
            file,
        };
        if let Err(error) = segment.ensure_allocated().await {
            let Segment { path, file, .. } = segment;
            drop(file);
            if let Err(remove_error) = compio::fs::remove_file(&path).await {
                tracing::warn!(path = %path.display(), %remove_error, "could not remove a segment whose preallocation failed");
            }
            return Err(error);
        }
        Ok(segment)
    }

    /// Opens an existing segment. A file shorter than `size_bytes` (a crash during creation)
    /// is extended; a longer one is refused, since it was written with another segment size.
    pub async fn open(path: PathBuf, start_offset: u64, size_bytes: u64) -> io::Result<Segment> {
        let file = compio::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .await?;
        let segment = Segment {
            start_offset,
            size_bytes,
            path,
            file,
        };
        let len = segment.file.metadata().await?.len();
        if len > size_bytes {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "segment {} is {len} bytes, larger than the configured segment size {size_bytes}",
                    segment.path.display()
                ),
            ));
        }
        if len < size_bytes {
            segment.ensure_allocated().await?;
        }
        Ok(segment)
    }

    async fn ensure_allocated(&self) -> io::Result<()> {
        let len = i64::try_from(self.size_bytes)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "segment size too large"))?;
        // SAFETY: fallocate only reads its integer arguments; the fd is open for the whole call
        // because `self.file` is borrowed for it.
        let rc = unsafe { libc::fallocate(self.file.as_raw_fd(), 0, 0, len) };
        if rc == 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        // Filesystems without fallocate still get a full-length (sparse) file, so the segment
        // size stays a property of the file.
        if err.raw_os_error() == Some(libc::EOPNOTSUPP) {
            return self.file.set_len(self.size_bytes).await;
        }
        Err(err)
    }

    /// Byte offset in the shard's log where this segment starts (its file name).
    pub fn start_offset(&self) -> u64 {
        self.start_offset
    }

    /// Size of the segment file in bytes.
    pub fn size_bytes(&self) -> u64 {
        self.size_bytes
    }

    /// Byte offset in the shard's log just past this segment.
    pub fn end_offset(&self) -> u64 {
        self.start_offset + self.size_bytes
    }

    /// Path of the segment file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file descriptor, for sendfile/splice by the server. Valid while the segment lives.
    pub fn raw_fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }

    /// The compio file, for zero-copy sends (splice) by the server.
    pub fn file(&self) -> &compio::fs::File {
        &self.file
    }

    /// Writes all of `data` at `pos_in_file` into the page cache, on this thread, before
    /// returning: no io_uring submission, which ext4 would punt to an io-wq worker (see
    /// `crate::inline_write` for what may block and the bound on it).
    pub fn write_into_page_cache(&self, data: &[u8], pos_in_file: u64) -> io::Result<()> {
        crate::inline_write::write_all_at(self.file.as_fd(), data, pos_in_file)
    }

    /// Writes all of `data` at `pos_in_file` (through the page cache) as an io_uring
    /// operation: for recovery's zeroing, off the append path.
    pub async fn write_all_at(&self, data: Bytes, pos_in_file: u64) -> io::Result<()> {
        let mut file = &self.file;
        let BufResult(res, _) = file.write_all_at(data, pos_in_file).await;
        res
    }

    /// Reads exactly `len` bytes at `pos_in_file` into a fresh buffer.
    pub async fn read_exact_at(&self, pos_in_file: u64, len: usize) -> io::Result<Vec<u8>> {
        let buf = Vec::with_capacity(len);
        // `read_exact_at` fills the buffer's capacity, which is exactly `len`.
        let BufResult(res, buf) = self.file.read_exact_at(buf, pos_in_file).await;
        res.map(|()| buf)
    }

    /// fdatasync: every byte written to this file before the call is durable after it.
    pub async fn sync_data(&self) -> io::Result<()> {
        self.file.sync_data().await
    }

    /// Makes `[from, size_bytes)` read as zeros: recovery's cut of a torn or garbled tail.
    /// Uses `FALLOC_FL_ZERO_RANGE` (cheap, keeps the allocation), falling back to writing zeros.
    pub async fn zero_tail(&self, from_in_file: u64) -> io::Result<()> {
        if from_in_file >= self.size_bytes {
            return Ok(());
        }
        let (Ok(offset), Ok(len)) = (
            i64::try_from(from_in_file),
            i64::try_from(self.size_bytes - from_in_file),
        ) else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "range too large",
            ));
        };
        // SAFETY: fallocate only reads its integer arguments; the fd stays open for the call.
        let rc = unsafe {
            libc::fallocate(
                self.file.as_raw_fd(),
                libc::FALLOC_FL_ZERO_RANGE,
                offset,
                len,
            )
        };
        if rc == 0 {
            return self.file.sync_data().await;
        }
        self.write_zeros(from_in_file).await
    }

    async fn write_zeros(&self, from_in_file: u64) -> io::Result<()> {
        const CHUNK_BYTES: u64 = 1 << 20;
        let zeros = Bytes::from(vec![0u8; CHUNK_BYTES as usize]);
        let mut pos = from_in_file;
        while pos < self.size_bytes {
            let n = CHUNK_BYTES.min(self.size_bytes - pos);
            self.write_all_at(zeros.slice(..n as usize), pos).await?;
            pos += n;
        }
        self.file.sync_data().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_name_is_twenty_digits_and_parses_back() {
        let name = segment_file_name(1_073_741_824);
        assert_eq!(name, "00000000001073741824");
        assert_eq!(parse_segment_file_name(&name), Some(1_073_741_824));
    }

    #[test]
    fn names_that_are_not_twenty_digits_are_not_segments() {
        assert_eq!(parse_segment_file_name("checkpoint"), None);
        assert_eq!(parse_segment_file_name("0000000000000000000"), None);
        assert_eq!(parse_segment_file_name("0000000000000000000x"), None);
        assert_eq!(parse_segment_file_name("00000000000000000000.tmp"), None);
    }
}

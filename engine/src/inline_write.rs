//! Positional writes into the page cache, made by the calling shard thread itself.
//!
//! **Why not through io_uring.** On ext4 (kernel 6.18 here) a buffered write cannot be
//! attempted without blocking (`pwritev2(RWF_NOWAIT)` answers EOPNOTSUPP), so io_uring hands
//! every buffered WRITE on such a file to an io-wq kernel worker, one inode's writes
//! serialised through one worker: per write a worker wake-up, two context switches and a
//! completion, for a copy into the page cache that takes microseconds. `pwrite` here makes
//! the copy on the shard thread and returns (docs/decisions.md, "Commit-log writes").
//!
//! **What may block, and the bound.** A buffered write waits only for memory: a page under
//! writeback, dirty-page throttling once the machine's dirty memory passes its limits, a
//! journal handle for the file's mtime update. While it waits the whole shard waits (a
//! punted write delayed only its writer). The callers keep each write to at most
//! [`crate::commitlog::WRITE_CHUNK_BYTES`] and yield to the shard's other tasks between
//! chunks, and the log's dirty bytes stay far below the kernel's limits (the async flush
//! fdatasyncs every 500 ms). On a filesystem whose writes are remote (NFS, FUSE with direct
//! I/O, as the power-cut tests use) each write waits for the server; ringmq's store is meant
//! for a local disk.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// Writes all of `data` at `pos_in_file` of `file` with `pwrite`, on this thread. Retries
/// interrupted and short writes; a write that makes no progress is [`io::ErrorKind::WriteZero`].
pub fn write_all_at(file: BorrowedFd<'_>, data: &[u8], pos_in_file: u64) -> io::Result<()> {
    let mut rest = data;
    let mut pos = pos_in_file;
    while !rest.is_empty() {
        let offset = libc::off_t::try_from(pos)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "file position too large"))?;
        // SAFETY: the kernel reads at most `rest.len()` bytes from `rest.as_ptr()`, a live,
        // initialised slice for the whole call; `file` is borrowed, so the descriptor stays
        // open until the call returns.
        let rc =
            unsafe { libc::pwrite(file.as_raw_fd(), rest.as_ptr().cast(), rest.len(), offset) };
        let written = match usize::try_from(rc) {
            Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero)),
            Ok(n) => n,
            Err(_) => {
                let error = io::Error::last_os_error();
                if error.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(error);
            }
        };
        rest = rest.get(written..).unwrap_or_default();
        pos += written as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn bytes_land_at_the_position_and_around_them_nothing_changes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, [b'.'; 16]).unwrap();
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        write_all_at(file.as_fd(), b"abc", 5).unwrap();
        write_all_at(file.as_fd(), b"z", 20).unwrap();
        let mut expected = b".....abc........".to_vec();
        expected.extend_from_slice(b"\0\0\0\0z");
        assert_eq!(std::fs::read(&path).unwrap(), expected);
    }

    #[test]
    fn a_read_only_descriptor_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"x").unwrap();
        let file = std::fs::File::open(&path).unwrap();
        assert!(write_all_at(file.as_fd(), b"y", 0).is_err());
    }
}

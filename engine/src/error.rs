//! [`StoreError`]: what the store's operations (append, read, flush, recovery) can fail with.
//! Every I/O failure keeps its `io::Error` and the path it happened on; nothing is turned
//! into a string. The server maps these to RocketMQ response codes in one place.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use ringmq_protocol::message::RecordError;

use crate::consumequeue::CqError;

/// Failure of a store operation.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file-system operation failed.
    #[error("{op} {path}")]
    Io {
        /// What was being done ("open segment", "read checkpoint", ...).
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A group write failed. Out of space ([`is_out_of_space`]) the writer retries the
    /// group until space returns; any other error fails the log for good.
    #[error("writing commit log segment {path} failed")]
    Write {
        /// The segment.
        path: PathBuf,
        /// The OS error (shared by every append of the group).
        #[source]
        source: Arc<io::Error>,
    },
    /// An fdatasync failed; the log accepts no more appends.
    #[error("fdatasync of commit log segment {path} failed")]
    Sync {
        /// The segment.
        path: PathBuf,
        /// The OS error (shared by every append waiting for it).
        #[source]
        source: Arc<io::Error>,
    },
    /// An earlier write or fdatasync failed; the log refuses appends until restarted
    /// (after a failed fsync the file's contents are unknown, so recovery must decide).
    #[error("the commit log failed earlier and accepts no more appends")]
    LogFailed {
        /// The original error.
        #[source]
        source: Arc<io::Error>,
    },
    /// The message cannot be encoded as a stored record (topic or properties too long).
    #[error("message cannot be stored")]
    Encode {
        /// Why.
        #[source]
        source: RecordError,
    },
    /// The record would not fit in one segment.
    #[error("record of {size_bytes} bytes does not fit a segment of {segment_size_bytes} bytes")]
    MessageTooLarge {
        /// The record's size.
        size_bytes: u64,
        /// The segment size.
        segment_size_bytes: u64,
    },
    /// The shard's log reached 2^56 bytes.
    #[error("commit log of shard {shard_id} is full")]
    LogFull {
        /// The shard.
        shard_id: u8,
    },
    /// The disk is too full for appends; reads keep working and appends resume by
    /// themselves once space is freed.
    #[error("disk too full for appends")]
    DiskFull {
        /// The guard's finding ([`crate::disk_guard::DiskGuardError::DiskFull`]).
        #[source]
        source: crate::disk_guard::DiskGuardError,
    },
    /// The filesystem has no room for a file the append needs (the next segment's
    /// preallocation, or a write): nothing was placed; appends resume by themselves once
    /// space is freed.
    #[error("no space for {what} {path} ({needed_bytes} bytes needed)")]
    NoSpace {
        /// What needed the space ("commit log segment").
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Bytes it needed.
        needed_bytes: u64,
        /// The OS error (ENOSPC or EDQUOT).
        #[source]
        source: Arc<io::Error>,
    },
    /// Bytes replicated from a master do not fit this log: the slave's log differs from the
    /// master's (another store, another segment size or shard count, or a log ahead of the
    /// master's). Nothing was placed.
    #[error("replicated bytes at log offset {log_offset} do not fit this log (it ends at {expected_log_offset}): {detail}")]
    ReplicaDiverged {
        /// Where the master's bytes start.
        log_offset: u64,
        /// Where this log ends.
        expected_log_offset: u64,
        /// What does not match.
        detail: &'static str,
    },
    /// No readable record at this physical offset (not in this shard, not yet visible, or
    /// past the end).
    #[error("no message at physical offset {physical_offset}")]
    NotFound {
        /// The offset asked for.
        physical_offset: i64,
    },
    /// The bytes at this physical offset are not a valid record.
    #[error("corrupt record at physical offset {physical_offset}")]
    Corrupt {
        /// The offset.
        physical_offset: i64,
        /// What is wrong with it.
        #[source]
        source: RecordError,
    },
    /// A ConsumeQueue operation failed.
    #[error("consume queue {topic}/{queue_id}")]
    ConsumeQueue {
        /// The queue's topic.
        topic: String,
        /// The queue id.
        queue_id: i32,
        /// What failed.
        #[source]
        source: CqError,
    },
    /// A configuration value is out of range.
    #[error("{name} = {value} is out of range ({expected})")]
    InvalidConfig {
        /// The setting.
        name: &'static str,
        /// The value given.
        value: u64,
        /// The accepted range.
        expected: &'static str,
    },
    /// The topic or queue id cannot name a ConsumeQueue directory.
    #[error("invalid queue {topic:?}/{queue_id}")]
    InvalidQueue {
        /// The topic.
        topic: String,
        /// The queue id.
        queue_id: i32,
    },
    /// Another process (or store) holds this shard's log open.
    #[error("{path} is locked by another store")]
    Locked {
        /// The lock file.
        path: PathBuf,
        /// The error of the non-blocking `flock`.
        #[source]
        source: io::Error,
    },
    /// The store was closed.
    #[error("the store is closed")]
    Closed,
}

impl StoreError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |source| StoreError::Io { op, path, source }
    }

    /// True for a full disk: the server answers SEND with a "disk full" status and retries
    /// later, instead of treating the store as broken.
    pub fn is_disk_full(&self) -> bool {
        matches!(
            self,
            StoreError::DiskFull { .. } | StoreError::NoSpace { .. }
        )
    }

    /// True when the OS error behind this one is a full filesystem ([`is_out_of_space`]).
    pub fn is_out_of_space(&self) -> bool {
        let mut current: Option<&(dyn std::error::Error + 'static)> = Some(self);
        while let Some(error) = current {
            let io_error = error
                .downcast_ref::<io::Error>()
                .or_else(|| error.downcast_ref::<Arc<io::Error>>().map(|e| &**e));
            if io_error.is_some_and(is_out_of_space) {
                return true;
            }
            current = error.source();
        }
        false
    }
}

/// True for the errors a full filesystem gives (ENOSPC, EDQUOT): the operation may succeed
/// once space is freed, so the store retries instead of giving up.
pub fn is_out_of_space(error: &io::Error) -> bool {
    matches!(error.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT))
}

/// Displays an error with its chain of sources (`outer: cause: root cause`), so a log line
/// says *why* (e.g. "No space left on device") and not only what failed.
#[derive(Debug, Clone, Copy)]
pub struct ErrorChain<'a>(pub &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

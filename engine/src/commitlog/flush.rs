//! Flush policies and the recovery checkpoint.
//!
//! [`FlushPolicy::Async`]: appends are answered once their group is in the page cache; a
//! background task fdatasyncs the log every `interval_ms`. [`FlushPolicy::Sync`]: the
//! writer fdatasyncs after every group write (group commit: one fdatasync covers every
//! append of the group, never one per message) and answers only then.
//!
//! The **checkpoint** (`<root>/commitlog/<shard>/checkpoint`, 20 bytes: `b"RMQCKPT1"`, the
//! log offset as u64 BE, crc32 of the first 16 bytes as u32 BE) names a record boundary
//! below which every record is durable *and* has its ConsumeQueue entry durable. Recovery
//! scans from there. It is replaced by write-temp, fsync, rename, fsync-directory, so a
//! crash leaves the old or the new checkpoint, never a mix; a checkpoint that fails its
//! CRC is ignored (recovery then scans the last segments from their start).

use std::path::{Path, PathBuf};

use compio::buf::BufResult;
use compio::io::{AsyncReadAtExt, AsyncWriteAtExt};

use crate::error::StoreError;

/// Default interval of the background flush (RocketMQ's `flushIntervalCommitLog`).
pub const DEFAULT_FLUSH_INTERVAL_MS: u64 = 500;

const CHECKPOINT_MAGIC: &[u8; 8] = b"RMQCKPT1";
const CHECKPOINT_LEN: usize = 20;
const CHECKPOINT_FILE: &str = "checkpoint";

/// When an append is answered, and who fdatasyncs (design.md §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushPolicy {
    /// Answer once written to the page cache; fdatasync in the background.
    Async {
        /// Background fdatasync interval.
        interval_ms: u64,
    },
    /// Answer once an fdatasync covering the append returned (group commit).
    Sync,
}

impl Default for FlushPolicy {
    fn default() -> Self {
        FlushPolicy::Async {
            interval_ms: DEFAULT_FLUSH_INTERVAL_MS,
        }
    }
}

/// Path of the checkpoint of the log in `log_dir`.
pub fn checkpoint_path(log_dir: &Path) -> PathBuf {
    log_dir.join(CHECKPOINT_FILE)
}

/// Encodes a checkpoint for `log_offset`. Pure.
pub fn encode_checkpoint(log_offset: u64) -> [u8; CHECKPOINT_LEN] {
    let mut out = [0u8; CHECKPOINT_LEN];
    out[..8].copy_from_slice(CHECKPOINT_MAGIC);
    out[8..16].copy_from_slice(&log_offset.to_be_bytes());
    let crc = crc32fast::hash(&out[..16]);
    out[16..].copy_from_slice(&crc.to_be_bytes());
    out
}

/// Decodes a checkpoint; `None` unless it is exactly a well-formed one. Pure.
pub fn decode_checkpoint(bytes: &[u8]) -> Option<u64> {
    let bytes: &[u8; CHECKPOINT_LEN] = bytes.try_into().ok()?;
    let (head, crc) = bytes.split_at(16);
    if &head[..8] != CHECKPOINT_MAGIC || crc32fast::hash(head).to_be_bytes() != crc {
        return None;
    }
    Some(u64::from_be_bytes(head[8..16].try_into().ok()?))
}

/// Reads the checkpoint in `log_dir`: `Ok(None)` if absent or invalid.
pub async fn read_checkpoint(log_dir: &Path) -> Result<Option<u64>, StoreError> {
    let path = checkpoint_path(log_dir);
    let file = match compio::fs::File::open(&path).await {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StoreError::io("open checkpoint", path)(e)),
    };
    let len = file
        .metadata()
        .await
        .map_err(StoreError::io("stat checkpoint", &path))?
        .len();
    // Exactly the checkpoint's size, in one positional read: no read-to-end loop, whose
    // retries of a short read some filesystems (FUSE with direct I/O under io_uring)
    // answer with the file's first bytes again.
    let decoded = if len == CHECKPOINT_LEN as u64 {
        let BufResult(res, bytes) = file
            .read_exact_at(Vec::with_capacity(CHECKPOINT_LEN), 0)
            .await;
        res.map_err(StoreError::io("read checkpoint", &path))?;
        decode_checkpoint(&bytes)
    } else {
        None
    };
    if decoded.is_none() {
        tracing::warn!(path = %path.display(), len, "ignoring an invalid checkpoint");
    }
    Ok(decoded)
}

/// Durably replaces the checkpoint in `log_dir` with `log_offset`.
pub async fn write_checkpoint(log_dir: &Path, log_offset: u64) -> Result<(), StoreError> {
    let path = checkpoint_path(log_dir);
    let tmp = log_dir.join("checkpoint.tmp");
    let file = compio::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .await
        .map_err(StoreError::io("create checkpoint", &tmp))?;
    let mut writer = &file;
    let BufResult(res, _) = writer
        .write_all_at(encode_checkpoint(log_offset).to_vec(), 0)
        .await;
    res.map_err(StoreError::io("write checkpoint", &tmp))?;
    file.sync_all()
        .await
        .map_err(StoreError::io("sync checkpoint", &tmp))?;
    drop(file);
    compio::fs::rename(&tmp, &path)
        .await
        .map_err(StoreError::io("rename checkpoint", &path))?;
    super::sync_dir(log_dir)
        .await
        .map_err(StoreError::io("sync directory", log_dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_round_trips() {
        assert_eq!(
            decode_checkpoint(&encode_checkpoint(123_456)),
            Some(123_456)
        );
    }

    #[test]
    fn a_damaged_checkpoint_is_not_trusted() {
        let mut bytes = encode_checkpoint(99);
        bytes[10] ^= 1;
        assert_eq!(decode_checkpoint(&bytes), None);
        assert_eq!(decode_checkpoint(&bytes[..19]), None);
        assert_eq!(decode_checkpoint(&[0u8; 20]), None);
    }
}

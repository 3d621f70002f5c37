//! The schedule's progress file (`config/shard-<n>/delayProgress`): where each schedule queue's
//! head is and which of its copies are held in memory, rewritten after every turn.
//!
//! **Why in place.** A turn's deliveries must not be repeated after a crash, so the file is
//! written once per turn: a write-temp-and-rename costs two fdatasyncs and a directory
//! fsync, a write in place one fdatasync. The file has two fixed slots written in turn;
//! each holds a sequence number, the payload's length and CRC, then the payload (JSON). A
//! write torn by a crash spoils only the slot being written: the other one still holds the
//! previous turn's progress, and [`decode_latest`] takes the valid slot with the higher
//! sequence.

use std::cell::Cell;
use std::io;
use std::path::{Path, PathBuf};

use compio::buf::BufResult;
use compio::io::AsyncWriteAtExt;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Bytes per slot: header and payload.
pub const SLOT_BYTES: usize = 1 << 20;
/// Marks a slot's header.
const MAGIC: &[u8; 4] = b"RSP1";
/// magic, sequence (u64), payload length (u32), payload CRC-32 (u32).
const HEADER_BYTES: usize = 4 + 8 + 4 + 4;
/// Largest payload a slot holds.
pub const MAX_PAYLOAD_BYTES: usize = SLOT_BYTES - HEADER_BYTES;

/// What the file records: RocketMQ's `delayOffset.json` table (level → offset of queue
/// level − 1), the timer queues' heads, and the offsets of timer copies held in memory
/// (below their queue's head, not delivered yet).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ScheduleProgress {
    pub offset_table: BTreeMap<i32, i64>,
    pub timer_offset_table: BTreeMap<i32, i64>,
    pub timer_held: BTreeMap<i32, Vec<i64>>,
}

/// One slot's bytes for `payload` at `sequence`.
pub fn encode_slot(sequence: u64, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_BYTES + payload.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&sequence.to_be_bytes());
    out.extend_from_slice(
        &u32::try_from(payload.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    out.extend_from_slice(&crc32fast::hash(payload).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// The sequence and payload of a slot, if it is whole.
pub fn decode_slot(slot: &[u8]) -> Option<(u64, &[u8])> {
    if slot.get(..4)? != MAGIC {
        return None;
    }
    let sequence = u64::from_be_bytes(slot.get(4..12)?.try_into().ok()?);
    let len = u32::from_be_bytes(slot.get(12..16)?.try_into().ok()?) as usize;
    let crc = u32::from_be_bytes(slot.get(16..20)?.try_into().ok()?);
    let payload = slot.get(HEADER_BYTES..HEADER_BYTES.checked_add(len)?)?;
    (crc32fast::hash(payload) == crc).then_some((sequence, payload))
}

/// The newest whole slot of a file's bytes: `(sequence, progress)`.
pub fn decode_latest(file: &[u8]) -> Option<(u64, ScheduleProgress)> {
    [0, SLOT_BYTES]
        .iter()
        .filter_map(|&start| decode_slot(file.get(start..)?))
        .filter_map(|(sequence, payload)| Some((sequence, serde_json::from_slice(payload).ok()?)))
        .max_by_key(|(sequence, _)| *sequence)
}

/// The open progress file.
#[derive(Debug)]
pub struct ProgressFile {
    path: PathBuf,
    file: compio::fs::File,
    /// Sequence of the last slot written.
    sequence: Cell<u64>,
}

impl ProgressFile {
    /// Reads the newest progress (blocking; at shard open). A missing file is no progress.
    pub fn load_blocking(path: &Path) -> io::Result<Option<(u64, ScheduleProgress)>> {
        match std::fs::read(path) {
            Ok(bytes) => {
                let latest = decode_latest(&bytes);
                if latest.is_none() && !bytes.is_empty() {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "{}: neither slot holds a whole progress record",
                            path.display()
                        ),
                    ));
                }
                Ok(latest)
            }
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Opens (creating) the file to go on after `sequence`.
    pub async fn open(path: &Path, sequence: u64) -> io::Result<Self> {
        let existed = path.exists();
        let file = compio::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .await?;
        if !existed {
            // The new name must survive a power cut as well as the slots written into it.
            if let Some(dir) = path.parent() {
                ringmq_engine::commitlog::sync_dir(dir).await?;
            }
        }
        Ok(ProgressFile {
            path: path.to_path_buf(),
            file,
            sequence: Cell::new(sequence),
        })
    }

    /// Writes `payload` into the older slot and fdatasyncs it.
    pub async fn write(&self, payload: Vec<u8>) -> io::Result<()> {
        let sequence = self.sequence.get() + 1;
        let start = if sequence % 2 == 0 { 0 } else { SLOT_BYTES };
        let mut writer = &self.file;
        let BufResult(result, _) = writer
            .write_all_at(encode_slot(sequence, &payload), start as u64)
            .await;
        result?;
        self.file.sync_data().await?;
        self.sequence.set(sequence);
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn progress(head: i64) -> ScheduleProgress {
        ScheduleProgress {
            offset_table: BTreeMap::from([(3, head)]),
            timer_offset_table: BTreeMap::from([(0, head * 2)]),
            timer_held: BTreeMap::from([(0, vec![head])]),
        }
    }

    fn file_with(slots: &[(usize, u64, ScheduleProgress)]) -> Vec<u8> {
        let mut file = vec![0_u8; 2 * SLOT_BYTES];
        for (start, sequence, p) in slots {
            let bytes = encode_slot(*sequence, &serde_json::to_vec(p).unwrap());
            file[*start..*start + bytes.len()].copy_from_slice(&bytes);
        }
        file
    }

    #[test]
    fn the_newer_whole_slot_wins() {
        let file = file_with(&[(0, 4, progress(40)), (SLOT_BYTES, 5, progress(50))]);
        assert_eq!(decode_latest(&file), Some((5, progress(50))));
        let file = file_with(&[(0, 6, progress(60)), (SLOT_BYTES, 5, progress(50))]);
        assert_eq!(decode_latest(&file), Some((6, progress(60))));
    }

    #[test]
    fn a_torn_slot_leaves_the_other_one() {
        let mut file = file_with(&[(0, 6, progress(60)), (SLOT_BYTES, 5, progress(50))]);
        // The write of slot 0 (sequence 6) was cut short: its last payload bytes are zero.
        let len = encode_slot(6, &serde_json::to_vec(&progress(60)).unwrap()).len();
        file[len - 3..len].fill(0);
        assert_eq!(decode_latest(&file), Some((5, progress(50))));
        assert_eq!(decode_latest(&[]), None);
        assert_eq!(decode_latest(&[0; 64]), None);
    }
}

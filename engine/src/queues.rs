//! The ConsumeQueues of one shard: opening them on first use, adopting those found at open,
//! and their part of recovery (re-dispatch of scanned records, truncation at the log's
//! end) and of retention (moving min offsets past deleted log segments, deleting the queue
//! files below them). Each queue sits in a [`QueueSlot`] with the offsets the shard tracks for it.
//!
//! Invariant: `min_offset ≤ max_offset ≤ next_offset`; `max_offset` is what readers may see
//! (entries dispatched), `next_offset` what appenders have been given. A crash loses nothing
//! here that recovery does not rebuild from the CommitLog (see [`crate::store`]).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::path::PathBuf;
use std::rc::Rc;

use futures_util::lock::Mutex;
use ringmq_protocol::message::sysflag;

use crate::commitlog::to_physical;
use crate::consumequeue::{Appended, ConsumeQueue, CqEntry, CqError};
use crate::error::StoreError;
use crate::recovery::ScannedRecord;

/// One ConsumeQueue and the offsets the shard tracks for it.
#[derive(Debug)]
pub(crate) struct QueueSlot {
    pub(crate) topic: Rc<str>,
    pub(crate) queue_id: i32,
    /// Async lock: the queue's writes hold `&mut` across awaits.
    pub(crate) cq: Mutex<ConsumeQueue>,
    /// Next queue offset to assign (≥ `max_offset`: assigned, maybe not yet dispatched).
    pub(crate) next_offset: Cell<i64>,
    /// Readable max offset (dispatched).
    pub(crate) max_offset: Cell<i64>,
    pub(crate) min_offset: Cell<i64>,
    /// Touched since the last checkpoint.
    pub(crate) dirty: Cell<bool>,
}

/// Which queues this shard adopts at open: `(topic, queue_id) → owned?`.
pub(crate) type Placement = Box<dyn Fn(&str, i32) -> bool>;
/// Queues by topic, then queue id.
type QueueMap = HashMap<Rc<str>, HashMap<i32, Rc<QueueSlot>>>;

/// The shard's queues by topic and queue id.
pub(crate) struct QueueTable {
    root: PathBuf,
    shard_id: u8,
    entries_per_file: u64,
    owns_queue: Placement,
    map: RefCell<QueueMap>,
    /// Held while a queue is being opened. Opening scans and repairs the queue's files, so
    /// two opens of one queue must not overlap: the second would cut entries the first
    /// one's owner has written meanwhile (seen: entries 1..16 of new queues zeroed on disk).
    opening: Mutex<()>,
}

impl std::fmt::Debug for QueueTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueueTable")
            .field("root", &self.root)
            .field("queues", &self.map.borrow().len())
            .finish_non_exhaustive()
    }
}

/// Topics name directories: only RocketMQ's topic characters are accepted.
pub(crate) fn valid_queue(topic: &str, queue_id: i32) -> bool {
    !topic.is_empty()
        && topic.len() <= 255
        && topic != "."
        && topic != ".."
        && topic
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'%' | b'|' | b'.'))
        && queue_id >= 0
}

impl QueueSlot {
    /// `min_offset ≤ max_offset ≤ next_offset` (see the module documentation). Cheap: the
    /// store asserts it on its hot paths in debug builds.
    pub(crate) fn offsets_in_order(&self) -> bool {
        let (min, max, next) = (
            self.min_offset.get(),
            self.max_offset.get(),
            self.next_offset.get(),
        );
        min <= max && max <= next
    }

    pub(crate) fn error(&self, source: CqError) -> StoreError {
        StoreError::ConsumeQueue {
            topic: self.topic.to_string(),
            queue_id: self.queue_id,
            source,
        }
    }
}

impl QueueTable {
    pub(crate) fn new(
        root: PathBuf,
        shard_id: u8,
        entries_per_file: u64,
        owns_queue: Placement,
    ) -> Self {
        QueueTable {
            root,
            shard_id,
            entries_per_file,
            owns_queue,
            map: RefCell::new(HashMap::new()),
            opening: Mutex::new(()),
        }
    }

    fn queue_dir(&self, topic: &str, queue_id: i32) -> PathBuf {
        self.root
            .join("consumequeue")
            .join(topic)
            .join(queue_id.to_string())
    }

    /// Whether `(topic, queue_id)` is a valid queue placed on this shard.
    pub(crate) fn owns(&self, topic: &str, queue_id: i32) -> bool {
        valid_queue(topic, queue_id) && (self.owns_queue)(topic, queue_id)
    }

    /// Whether `slot` is still this table's queue: false once its topic was deleted (a
    /// write in flight then may still hold it).
    pub(crate) fn holds(&self, slot: &Rc<QueueSlot>) -> bool {
        self.existing(&slot.topic, slot.queue_id)
            .is_some_and(|current| Rc::ptr_eq(&current, slot))
    }

    pub(crate) fn existing(&self, topic: &str, queue_id: i32) -> Option<Rc<QueueSlot>> {
        self.map.borrow().get(topic)?.get(&queue_id).cloned()
    }

    /// The queue's slot, opening (creating) its ConsumeQueue on first use.
    pub(crate) async fn slot(
        &self,
        topic: &str,
        queue_id: i32,
    ) -> Result<Rc<QueueSlot>, StoreError> {
        if let Some(slot) = self.existing(topic, queue_id) {
            return Ok(slot);
        }
        if !valid_queue(topic, queue_id) {
            return Err(StoreError::InvalidQueue {
                topic: topic.to_owned(),
                queue_id,
            });
        }
        let _opening = self.opening.lock().await;
        // Another task may have opened it while this one waited for the lock.
        if let Some(slot) = self.existing(topic, queue_id) {
            return Ok(slot);
        }
        let cq = ConsumeQueue::open(self.queue_dir(topic, queue_id), self.entries_per_file)
            .await
            .map_err(|source| StoreError::ConsumeQueue {
                topic: topic.to_owned(),
                queue_id,
                source,
            })?;
        let topic: Rc<str> = Rc::from(topic);
        let slot = Rc::new(QueueSlot {
            topic: Rc::clone(&topic),
            queue_id,
            next_offset: Cell::new(cq.max_offset()),
            max_offset: Cell::new(cq.max_offset()),
            min_offset: Cell::new(cq.min_offset()),
            cq: Mutex::new(cq),
            dirty: Cell::new(false),
        });
        self.map
            .borrow_mut()
            .entry(topic)
            .or_default()
            .insert(queue_id, Rc::clone(&slot));
        Ok(slot)
    }

    /// Forgets every queue of `topic` and deletes its ConsumeQueue directory; returns how
    /// many queues it had. Holds the open lock throughout, so no queue of the topic is
    /// (re)opened while its files go; a write in flight on a queue finishes first.
    pub(crate) async fn remove_topic(&self, topic: &str) -> Result<usize, StoreError> {
        if !valid_queue(topic, 0) {
            return Ok(0);
        }
        let _opening = self.opening.lock().await;
        let removed = self.map.borrow_mut().remove(topic).unwrap_or_default();
        for slot in removed.values() {
            drop(slot.cq.lock().await);
        }
        // Only this shard's queue directories: other shards' queues of the topic may share
        // the topic's directory (hop layout), and remove their own.
        let topic_dir = self.root.join("consumequeue").join(topic);
        let queue_dirs: Vec<PathBuf> = removed
            .keys()
            .map(|queue_id| topic_dir.join(queue_id.to_string()))
            .collect();
        let removing = queue_dirs.clone();
        // Unlinking files blocks: off the ring thread.
        let result = compio::runtime::spawn_blocking(move || {
            for dir in &removing {
                match std::fs::remove_dir_all(dir) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        return Err((dir.clone(), e))
                    }
                    _ => {}
                }
            }
            // Gone once the last shard's queues are; still there (not empty) otherwise.
            let _ = std::fs::remove_dir(&topic_dir);
            Ok(())
        })
        .await;
        match result {
            Ok(Ok(())) => {}
            Ok(Err((path, source))) => {
                return Err(StoreError::Io {
                    op: "remove consume queue",
                    path,
                    source,
                })
            }
            Err(_) => {
                return Err(StoreError::Io {
                    op: "remove consume queue",
                    path: queue_dirs.first().cloned().unwrap_or_default(),
                    source: std::io::Error::other("the removal thread panicked"),
                })
            }
        }
        Ok(removed.len())
    }

    pub(crate) async fn open_existing(&self) -> Result<(), StoreError> {
        let dir = self.root.join("consumequeue");
        let topics = match std::fs::read_dir(&dir) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(StoreError::io("list queues", dir)(e)),
        };
        let mut found = Vec::new();
        for topic in topics {
            let topic = topic.map_err(StoreError::io("list queues", &dir))?;
            let Some(name) = topic.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            let ids = std::fs::read_dir(topic.path())
                .map_err(StoreError::io("list queues", topic.path()))?;
            for id in ids {
                let id = id.map_err(StoreError::io("list queues", topic.path()))?;
                if let Some(queue_id) = id.file_name().to_str().and_then(|s| s.parse::<i32>().ok())
                {
                    if valid_queue(&name, queue_id) && (self.owns_queue)(&name, queue_id) {
                        found.push((name.clone(), queue_id));
                    }
                }
            }
        }
        for (topic, queue_id) in found {
            self.slot(&topic, queue_id).await?;
        }
        Ok(())
    }

    /// Recovery: re-appends the entry of a scanned record. Returns whether it was new.
    pub(crate) async fn redispatch(&self, record: &ScannedRecord) -> Result<bool, StoreError> {
        if sysflag::skipped_by_dispatch(record.sys_flag) {
            return Ok(false);
        }
        if !valid_queue(&record.topic, record.queue_id)
            || !(self.owns_queue)(&record.topic, record.queue_id)
        {
            tracing::warn!(topic = %record.topic, queue_id = record.queue_id, "recovered record of a queue not placed on this shard; not dispatched");
            return Ok(false);
        }
        let slot = self.slot(&record.topic, record.queue_id).await?;
        let entry = CqEntry {
            physical_offset: record.physical_offset,
            size: i32::try_from(record.size_bytes).unwrap_or(i32::MAX),
            tags_code: record.tags_code,
        };
        let mut cq = slot.cq.lock().await;
        let appended = match cq.append(record.queue_offset, entry) {
            Err(CqError::Gap { .. }) if cq.min_offset() == cq.max_offset() => {
                // The queue's files are gone but the log still holds its messages.
                cq.reset_to(record.queue_offset)
                    .await
                    .map_err(|e| slot.error(e))?;
                cq.append(record.queue_offset, entry)
            }
            other => other,
        }
        .map_err(|e| slot.error(e))?;
        slot.max_offset.set(cq.max_offset());
        slot.next_offset.set(cq.max_offset());
        slot.min_offset.set(cq.min_offset());
        slot.dirty.set(true);
        Ok(appended == Appended::New)
    }

    pub(crate) async fn truncate_at(&self, log_end: u64) -> Result<(), StoreError> {
        let cut = to_physical(self.shard_id, log_end).ok_or(StoreError::LogFull {
            shard_id: self.shard_id,
        })?;
        for slot in self.all() {
            let mut cq = slot.cq.lock().await;
            let dropped = cq
                .truncate_from_physical(cut)
                .await
                .map_err(|e| slot.error(e))?;
            if dropped > 0 {
                tracing::warn!(topic = %slot.topic, queue_id = slot.queue_id, dropped, "consume queue pointed past the log; truncated");
            }
            slot.max_offset.set(cq.max_offset());
            slot.next_offset.set(cq.max_offset());
            slot.min_offset.set(cq.min_offset());
        }
        Ok(())
    }

    /// Retention: moves every queue's min offset to its first entry at or past log offset
    /// `log_min` (the log's first byte still stored), in memory. Returns how many queues
    /// moved.
    pub(crate) async fn advance_mins(&self, log_min: u64) -> Result<usize, StoreError> {
        let min_physical = to_physical(self.shard_id, log_min).ok_or(StoreError::LogFull {
            shard_id: self.shard_id,
        })?;
        let mut moved = 0;
        for slot in self.all() {
            let mut cq = slot.cq.lock().await;
            let before = cq.min_offset();
            let after = cq
                .advance_min_to_physical(min_physical)
                .await
                .map_err(|e| slot.error(e))?;
            slot.min_offset.set(after);
            if after > before {
                moved += 1;
                tracing::debug!(topic = %slot.topic, queue_id = slot.queue_id, from = before, to = after, "queue min offset moved past deleted log segments");
            }
        }
        Ok(moved)
    }

    /// Retention: deletes the queue files wholly below each queue's min offset; returns the
    /// queues that lost files (their directories need a sync) and the count of files.
    pub(crate) async fn delete_files_below_mins(
        &self,
    ) -> Result<(Vec<Rc<QueueSlot>>, usize), StoreError> {
        let mut trimmed = Vec::new();
        let mut files = 0;
        for slot in self.all() {
            let deleted = slot
                .cq
                .lock()
                .await
                .delete_files_below_min()
                .await
                .map_err(|e| slot.error(e))?;
            if deleted > 0 {
                files += deleted;
                trimmed.push(slot);
            }
        }
        Ok((trimmed, files))
    }

    pub(crate) fn all(&self) -> Vec<Rc<QueueSlot>> {
        self.map
            .borrow()
            .values()
            .flat_map(|ids| ids.values().cloned())
            .collect()
    }

    pub(crate) async fn sync_all(&self) -> Result<(), StoreError> {
        for slot in self.all() {
            slot.cq
                .lock()
                .await
                .sync()
                .await
                .map_err(|e| slot.error(e))?;
            slot.dirty.set(false);
        }
        Ok(())
    }

    /// Every queue, sorted.
    pub(crate) fn list(&self) -> Vec<(String, i32)> {
        let map = self.map.borrow();
        let mut out: Vec<(String, i32)> = map
            .iter()
            .flat_map(|(topic, ids)| ids.keys().map(move |id| (topic.to_string(), *id)))
            .collect();
        out.sort();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_that_could_escape_the_queue_directory_are_refused() {
        assert!(valid_queue("TopicTest", 0));
        assert!(valid_queue("%RETRY%group-1", 3));
        assert!(!valid_queue("", 0));
        assert!(!valid_queue("..", 0));
        assert!(!valid_queue("a/b", 0));
        assert!(!valid_queue("t", -1));
    }
}

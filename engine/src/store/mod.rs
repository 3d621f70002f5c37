//! The store of one shard: its CommitLog, the ConsumeQueues of its queues, the group writer,
//! the flusher and recovery at open (design.md §4, §5, §11). Driven by one shard thread:
//! `!Send`, no locks, shared among the shard's tasks by `Rc`.
//!
//! **Write path.** [`Store::put`] / [`Store::put_batch`] assign the queue offset, the
//! physical offset and the store timestamp synchronously (so the order is fixed when the
//! call is made), encode the record into the log's append buffer and wake the writer task.
//! The writer takes everything appended since its last turn as one *group*, writes it with
//! positional writes (one per segment run, 256 KiB chunks, a few in flight), and with
//! [`FlushPolicy::Sync`] fdatasyncs once for the whole group. Then it *dispatches*: appends
//! the group's ConsumeQueue entries (readable from then on), writes them to the queue files,
//! announces [`Arrival`]s for long polls, and answers the group's appenders. So with
//! `Sync` nothing is readable or announced before it is durable (design.md §4.6); with
//! `Async` it is once written to the page cache, and a background task fdatasyncs every
//! `interval_ms`.
//!
//! **Checkpoint.** Every `checkpoint_interval_ms` (and at close) the flusher fdatasyncs the
//! log and the ConsumeQueues touched since the last checkpoint, then records the dispatched
//! log end in the checkpoint file: below it, records and their queue entries are durable.
//!
//! **Crash.** At any point a crash leaves: segments whose valid records form a prefix of
//! what was appended, possibly followed by a torn group; ConsumeQueue files that may lack the
//! newest entries or hold entries past the log's valid end; a checkpoint at or below the end
//! of what is durable. [`Store::open`] recovers from all of that (see [`crate::recovery`]):
//! it scans from the checkpoint, cuts the log at the first invalid record, re-dispatches the
//! records past the checkpoint and truncates queues that point past the log. With `Sync`
//! every acknowledged append is below the cut; with `Async` those older than the last
//! background flush are (all of them after a mere process kill, as the page cache survives).
//!
//! **Invariants.** On the log: `checkpointed ≤ dispatched_end ≤ written_end ≤
//! appended_end` and `durable_end ≤ written_end`; groups are contiguous (each starts where
//! the previous one ended). On each queue: `min_offset ≤ max_offset ≤ next_offset`.
//!
//! **Modules, one job each.** This file holds the [`Store`] handle, its shared state and
//! its thin public API; the work is done by `config` (the typed configuration and its
//! checks), `open` (open and recovery wiring), `writer` (append, the group writer, dispatch
//! into the ConsumeQueues and arrivals), `reader` (the PULL read path and record reads),
//! `time_search` (store-time lookups), `flusher` (background fdatasync and checkpoints) and
//! `retention` (deleting the oldest segments and moving the queues' min offsets past them).

mod config;
mod flusher;
mod open;
mod reader;
mod replica;
mod retention;
mod time_search;
mod writer;

use std::cell::{Cell, RefCell};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use bytes::Bytes;
use compio::runtime::JoinHandle;
use futures_util::lock::Mutex;

#[cfg(doc)]
use crate::commitlog::flush::FlushPolicy;
use crate::commitlog::{to_physical, CommitLog, LogLock};
use crate::consumequeue::{Boundary, TagFilter};
use crate::disk_guard::{DiskGuard, DiskGuardConfig};
use crate::error::StoreError;
use crate::page_cache::Estimator;
use crate::queues::{QueueSlot, QueueTable};
use crate::retention::RetentionConfig;
use crate::signal::{GroupProgress, Notify};

pub use config::{StoreConfig, DEFAULT_CHECKPOINT_INTERVAL_MS};
pub use reader::{
    plan_reads, FoundMessage, GetMessageResult, GetMessageStatus, TransferLimits,
    MAX_COALESCED_READ_BYTES, MAX_READ_GAP_BYTES,
};
pub use replica::{ReplicationFrame, DEFAULT_FRAME_BYTES};
pub use retention::DeletedSegment;
pub use writer::{AppendTicket, Arrival, PutMessage, PutResult, MAX_UNDRAINED_ARRIVALS};
use writer::{ArrivalListener, Dispatch};

/// Counters for tests, metrics and the benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreStats {
    /// fdatasync calls on CommitLog segments.
    pub log_fdatasyncs: u64,
    /// Groups written.
    pub group_writes: u64,
    /// Log offset written to the page cache.
    pub written_end: u64,
    /// Log offset covered by fdatasync.
    pub durable_end: u64,
    /// Log offset whose records are dispatched (readable).
    pub dispatched_end: u64,
}

/// The state a shard's tasks share: the writer, the flusher and every [`Store`] clone.
struct Inner {
    /// Held until closed: no second store appends to this log meanwhile.
    lock: RefCell<Option<LogLock>>,
    root: PathBuf,
    shard_id: u8,
    config: StoreConfig,
    log: CommitLog,
    queues: QueueTable,
    /// Dispatch entries of the group now collecting appends, in log order.
    pending_dispatch: RefCell<Vec<Dispatch>>,
    writer_wake: Notify,
    flusher_wake: Notify,
    retention_wake: Notify,
    /// Retention rounds never overlap (the task's and [`Store::run_retention_round`]'s).
    retention_lock: Mutex<()>,
    progress: GroupProgress,
    dispatched_end: Cell<u64>,
    checkpointed: Cell<u64>,
    /// Serializes checkpoints (the flusher's and [`Store::flush`]'s): they share a temp file.
    checkpoint_lock: Mutex<()>,
    dirty_slots: RefCell<Vec<Rc<QueueSlot>>>,
    arrivals: RefCell<Vec<Arrival>>,
    listener: RefCell<Option<ArrivalListener>>,
    disk_guard: RefCell<DiskGuard>,
    /// Set while the writer retries a group write that ran out of space: appends are
    /// refused meanwhile.
    write_stalled: RefCell<Option<std::sync::Arc<std::io::Error>>>,
    /// Failed attempts to preallocate the next segment ahead, since the last success (the
    /// first is logged).
    preallocation_failures: Cell<u64>,
    estimator: Estimator,
    closing: Cell<bool>,
    tasks: RefCell<Vec<JoinHandle<()>>>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("root", &self.root)
            .field("shard_id", &self.shard_id)
            .field("log", &self.log)
            .finish_non_exhaustive()
    }
}

/// A shard's store. Cheap to clone (an `Rc`); all clones are the same store.
#[derive(Debug, Clone)]
pub struct Store {
    inner: Rc<Inner>,
}

impl Store {
    /// Opens (creating if needed) shard `shard_id`'s store under `root`, recovers it and
    /// starts its writer and flusher tasks on the current compio runtime. Every queue found
    /// under `<root>/consumequeue` is adopted.
    pub async fn open(
        root: impl AsRef<Path>,
        shard_id: u8,
        config: StoreConfig,
    ) -> Result<Store, StoreError> {
        Self::open_with_placement(root, shard_id, config, |_, _| true).await
    }

    /// [`Store::open`], adopting only the queues `owns_queue(topic, queue_id)` accepts (the
    /// queues placed on this shard).
    pub async fn open_with_placement(
        root: impl AsRef<Path>,
        shard_id: u8,
        config: StoreConfig,
        owns_queue: impl Fn(&str, i32) -> bool + 'static,
    ) -> Result<Store, StoreError> {
        let inner = Inner::open(root.as_ref(), shard_id, config, Box::new(owns_queue)).await?;
        Ok(Store { inner })
    }

    /// Appends one message; resolves once it is written (`Async`) or durable (`Sync`), and
    /// readable.
    pub async fn put(&self, msg: PutMessage) -> Result<PutResult, StoreError> {
        let mut results = self.put_batch(vec![msg]).await?;
        results.pop().ok_or(StoreError::Closed)
    }

    /// Appends messages as one contiguous run (all or none are appended); resolves like
    /// [`Store::put`] for all of them.
    pub async fn put_batch(&self, msgs: Vec<PutMessage>) -> Result<Vec<PutResult>, StoreError> {
        self.append(msgs).await?.wait().await
    }

    /// Appends messages as one contiguous run (all or none) and returns as soon as their
    /// offsets and store timestamp are assigned and their bytes are in the append buffer,
    /// before they are written: the SEND path of a producer that does not wait
    /// (`WAIT=false`) answers from [`AppendTicket::results`]. It waits only while the queue's
    /// ConsumeQueue is opened on first use or while the append buffer is over its bound.
    /// The messages are written whether or not the ticket is awaited.
    pub async fn append(&self, msgs: Vec<PutMessage>) -> Result<AppendTicket, StoreError> {
        let (group_seq, results) = self.inner.append(msgs).await?;
        Ok(AppendTicket::new(self.clone(), group_seq, results))
    }

    /// Reads up to `max_msgs` messages (and `max_bytes`) of `(topic, queue_id)` from
    /// `offset` whose tags pass `filter`, with RocketMQ's status, next offset and limits
    /// (protocol.md §2.4, §4.3, §9.1).
    pub async fn get_messages(
        &self,
        topic: &str,
        queue_id: i32,
        offset: i64,
        max_msgs: u32,
        max_bytes: u64,
        filter: &TagFilter,
    ) -> Result<GetMessageResult, StoreError> {
        self.inner
            .get_messages(topic, queue_id, offset, max_msgs, max_bytes, filter)
            .await
    }

    /// The queue's max offset (next offset to be written and readable); 0 if unknown.
    pub fn max_offset(&self, topic: &str, queue_id: i32) -> i64 {
        self.inner
            .queues
            .existing(topic, queue_id)
            .map_or(0, |s| s.max_offset.get())
    }

    /// The queue's min offset; 0 if unknown.
    pub fn min_offset(&self, topic: &str, queue_id: i32) -> i64 {
        self.inner
            .queues
            .existing(topic, queue_id)
            .map_or(0, |s| s.min_offset.get())
    }

    /// SEARCH_OFFSET_BY_TIMESTAMP (5.x semantics, see [`Boundary`]); 0 for an unknown queue.
    pub async fn search_offset_by_timestamp(
        &self,
        topic: &str,
        queue_id: i32,
        timestamp_ms: i64,
        boundary: Boundary,
    ) -> Result<i64, StoreError> {
        self.inner
            .search_offset_by_timestamp(topic, queue_id, timestamp_ms, boundary)
            .await
    }

    /// GET_EARLIEST_MSG_STORETIME: the store time of the message at the min offset, −1 if
    /// the queue is empty or unknown.
    pub async fn earliest_msg_store_time(
        &self,
        topic: &str,
        queue_id: i32,
    ) -> Result<i64, StoreError> {
        self.inner.earliest_msg_store_time(topic, queue_id).await
    }

    /// The store time of the queue's message at `offset` (RocketMQ's
    /// `getMessageStoreTimeStamp`), −1 if there is none.
    pub async fn msg_store_time(
        &self,
        topic: &str,
        queue_id: i32,
        offset: i64,
    ) -> Result<i64, StoreError> {
        self.inner.msg_store_time(topic, queue_id, offset).await
    }

    /// The stored bytes of the record at `physical_offset` (VIEW_MESSAGE_BY_ID).
    pub async fn read_record_at(&self, physical_offset: i64) -> Result<Bytes, StoreError> {
        self.inner.read_record_at(physical_offset).await
    }

    /// Physical offset where the readable log ends (RocketMQ's max physical offset).
    pub fn max_physical_offset(&self) -> i64 {
        to_physical(self.inner.shard_id, self.inner.dispatched_end.get()).unwrap_or(i64::MAX)
    }

    /// Physical offset of the first byte still stored (retention moves it forward).
    pub fn min_physical_offset(&self) -> i64 {
        self.inner.min_physical_offset()
    }

    /// Runs one retention round now with `config` (the task runs them every
    /// `check_interval` when [`StoreConfig::retention`] is set): deletes the oldest segments
    /// the policy chooses and returns them.
    pub async fn run_retention_round(
        &self,
        config: &RetentionConfig,
    ) -> Result<Vec<DeletedSegment>, StoreError> {
        self.inner.retention_round(config).await
    }

    /// Registers a listener called (on the shard thread, by the writer) for every message
    /// that becomes readable. Without one, arrivals collect for [`Store::drain_arrivals`]
    /// (at most [`MAX_UNDRAINED_ARRIVALS`]; later ones are dropped until drained). The
    /// listener must not call `set_arrival_listener`.
    pub fn set_arrival_listener(&self, listener: impl FnMut(&Arrival) + 'static) {
        *self.inner.listener.borrow_mut() = Some(Box::new(listener));
    }

    /// Takes the arrivals collected since the last call (when no listener is set).
    pub fn drain_arrivals(&self) -> Vec<Arrival> {
        std::mem::take(&mut *self.inner.arrivals.borrow_mut())
    }

    /// Forgets `topic`'s queues and deletes their ConsumeQueue files; returns how many queues
    /// it had. Its records stay in the CommitLog until retention removes their segments. A
    /// checkpoint comes first, so that recovery does not re-dispatch those records into the
    /// queues of a topic of the same name created later.
    pub async fn delete_topic(&self, topic: &str) -> Result<usize, StoreError> {
        self.flush().await?;
        self.inner.queues.remove_topic(topic).await
    }

    /// Every queue this store holds.
    pub fn queues(&self) -> Vec<(String, i32)> {
        self.inner.queues.list()
    }

    /// Changes the page-cache rule's ratio (`accessMessageInMemoryMaxRatio`) for the pulls
    /// that follow.
    pub fn set_page_cache_ratio_percent(&self, ratio_percent: u64) {
        self.inner.estimator.set_ratio_percent(ratio_percent);
    }

    /// Replaces the disk guard's limits (applied at the next append).
    pub fn set_disk_guard_config(&self, config: DiskGuardConfig) {
        self.inner.disk_guard.borrow_mut().set_config(config);
    }

    /// Counters.
    pub fn stats(&self) -> StoreStats {
        let log = &self.inner.log;
        StoreStats {
            log_fdatasyncs: log.fdatasync_count(),
            group_writes: log.group_write_count(),
            written_end: log.written_end(),
            durable_end: log.durable_end(),
            dispatched_end: self.inner.dispatched_end.get(),
        }
    }

    /// This store's shard.
    pub fn shard_id(&self) -> u8 {
        self.inner.shard_id
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    /// Waits for everything appended so far to be written and dispatched, then makes the log
    /// and the queues durable and advances the checkpoint.
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.inner.flush().await
    }

    /// Waits for everything appended so far to be written, then fdatasyncs the log if the
    /// background flush has not covered it yet: after it, those records survive a power cut
    /// (recovery re-dispatches their queue entries). Lighter than [`Store::flush`]: no
    /// queue fdatasync, no checkpoint. With `FlushPolicy::Sync` appends are already durable
    /// when answered and this only waits.
    pub async fn sync_log(&self) -> Result<(), StoreError> {
        self.inner.sync_log().await
    }

    /// Refuses new appends, lets pending ones finish, flushes, and stops the tasks.
    pub async fn close(self) -> Result<(), StoreError> {
        let inner = &self.inner;
        inner.closing.set(true);
        let flushed = self.flush().await;
        inner.writer_wake.notify();
        inner.flusher_wake.notify();
        inner.retention_wake.notify();
        let tasks = std::mem::take(&mut *inner.tasks.borrow_mut());
        for task in tasks {
            // The tasks end on their own once `closing` is seen; a cancelled one has nothing
            // left to do.
            let _ = task.await;
        }
        // Clones may still read; nothing appends any more, so another store may open.
        inner.lock.borrow_mut().take();
        flushed
    }
}

impl Inner {
    /// Tells the disk guard how many bytes the log's segments take (they are preallocated).
    fn update_store_bytes(&self) {
        let segments = self.log.segment_count() as u64;
        self.disk_guard
            .borrow_mut()
            .set_store_bytes(segments.saturating_mul(self.config.segment_size_bytes));
    }

    /// The log's ends are ordered: `checkpointed ≤ dispatched_end ≤ written_end ≤
    /// appended_end` and `durable_end ≤ written_end`. Cheap; checked on the hot paths in
    /// debug builds.
    fn debug_assert_log_ends(&self) {
        let (durable, written, appended) = (
            self.log.durable_end(),
            self.log.written_end(),
            self.log.appended_end(),
        );
        let dispatched = self.dispatched_end.get();
        debug_assert!(
            durable <= written && written <= appended,
            "log ends out of order: durable {durable}, written {written}, appended {appended}"
        );
        debug_assert!(
            self.checkpointed.get() <= dispatched && dispatched <= written,
            "checkpointed {} ≤ dispatched {dispatched} ≤ written {written} broken",
            self.checkpointed.get()
        );
    }
}

//! The write path of a shard's store (design.md §4): append, the group writer, dispatch
//! into the ConsumeQueues and the arrivals that wake long polls.
//!
//! **Owns** the order of appends. `append` assigns queue offset, physical offset and store
//! timestamp without awaiting in between, so the order of calls is the order in the log and
//! in each queue; it records each message's ConsumeQueue entry as a pending dispatch. The
//! writer task takes everything appended since its last turn as one group, writes it (and
//! fdatasyncs it with `FlushPolicy::Sync`), then dispatches: appends the entries to the
//! queues (readable from then on), writes a queue's pending entries to its files once
//! [`CQ_WRITE_AT_PENDING_ENTRIES`] are pending (the checkpoint writes the rest), announces
//! [`Arrival`]s and answers the group's appenders.
//!
//! **Invariants.** Groups are contiguous: each starts at the previous one's end, which is
//! `dispatched_end`. A group's dispatch entries lie inside it in log order. A queue's
//! `max_offset ≤ next_offset`: `next_offset` moves at append, `max_offset` at dispatch. A
//! failed fdatasync, or a write failed for another reason than a full disk, fails the log
//! for good: its group and every later one are never dispatched, and their appenders get
//! the error. A full disk never fails the log: every segment a batch goes to is created
//! before the batch is placed (a segment that cannot be preallocated refuses the batch with
//! [`StoreError::NoSpace`]), and a group write that runs out of space anyway (a filesystem
//! without preallocation) is written again every second until it succeeds, appends being
//! refused meanwhile.
//!
//! **Crash.** Appended but unwritten messages are lost with the process; no appender was
//! answered for them. A group written but not dispatched, or dispatched while its queue
//! files are unwritten, is rebuilt by recovery from the log (see the store's documentation).

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ringmq_protocol::message::{
    encoded_len_ref, properties, queue_tags_code, sysflag, StoredMessageRef, BLANK_RECORD_SIZE,
};

use crate::clock::now_ms;
use crate::commitlog::flush::FlushPolicy;
use crate::commitlog::{split_physical, Group};
use crate::consumequeue::CqEntry;
use crate::disk_guard::DiskGuardError;
use crate::error::{is_out_of_space, ErrorChain, StoreError};
use crate::queues::QueueSlot;

use super::{Inner, Store};

/// Pending entries at which the writer writes a queue's entries to its files (a 4 KiB
/// page of 20-byte entries); below it they wait in memory, readable, for the checkpoint.
pub const CQ_WRITE_AT_PENDING_ENTRIES: i64 = 4096 / 20;

/// How often a group write that ran out of space is tried again.
pub const WRITE_RETRY_INTERVAL: Duration = Duration::from_secs(1);

/// A write stalled on a full disk is logged at most this often.
const STALL_LOG_INTERVAL: Duration = Duration::from_secs(60);

/// Arrivals kept for [`Store::drain_arrivals`] when no listener is set.
pub const MAX_UNDRAINED_ARRIVALS: usize = 65_536;

/// A message to append: what the producer sent plus the hosts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutMessage {
    /// Topic.
    pub topic: String,
    /// Queue id.
    pub queue_id: i32,
    /// User flag.
    pub flag: i32,
    /// sysFlag (the IPv6 bits are set from the hosts).
    pub sys_flag: i32,
    /// Producer timestamp, ms.
    pub born_timestamp: i64,
    /// Producer address.
    pub born_host: SocketAddr,
    /// This broker's address.
    pub store_host: SocketAddr,
    /// Times the message was re-consumed.
    pub reconsume_times: i32,
    /// For transaction commit/rollback records: the half message's physical offset.
    pub prepared_transaction_offset: i64,
    /// Body as stored.
    pub body: Bytes,
    /// Properties text (`key\u{1}value\u{2}`…).
    pub properties: String,
}

/// Where an appended message was stored: what the server builds the SEND response and the
/// offset msgId from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PutResult {
    /// Physical offset (shard id in the top 8 bits).
    pub physical_offset: i64,
    /// Logical offset in its ConsumeQueue (0 for transaction PREPARED/ROLLBACK records).
    pub queue_offset: i64,
    /// Store timestamp, ms.
    pub store_timestamp: i64,
    /// Record size in bytes.
    pub size_bytes: u32,
}

/// Messages appended by [`Store::append`]: their offsets are fixed; their group may not be
/// written yet.
#[derive(Debug)]
#[must_use = "the offsets are known, but the messages are not yet durable or readable"]
pub struct AppendTicket {
    store: Store,
    group_seq: u64,
    results: Vec<PutResult>,
}

impl AppendTicket {
    pub(super) fn new(store: Store, group_seq: u64, results: Vec<PutResult>) -> Self {
        AppendTicket {
            store,
            group_seq,
            results,
        }
    }

    /// Where each message was placed, in the order given.
    pub fn results(&self) -> &[PutResult] {
        &self.results
    }

    /// Waits until the messages are written (`Async`) or durable (`Sync`), and readable.
    pub async fn wait(self) -> Result<Vec<PutResult>, StoreError> {
        if self.group_seq > 0 {
            self.store
                .inner
                .progress
                .wait_for(self.group_seq)
                .await
                .map_err(|source| StoreError::LogFailed { source })?;
        }
        Ok(self.results)
    }
}

/// A message became readable: long polls on `(topic, queue_id)` may be answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arrival {
    /// Topic.
    pub topic: Rc<str>,
    /// Queue id.
    pub queue_id: i32,
    /// The queue's max offset after this message.
    pub max_offset: i64,
    /// The message's tags code.
    pub tags_code: i64,
}

/// A message's ConsumeQueue entry, waiting for its group to be written.
#[derive(Debug)]
pub(super) struct Dispatch {
    slot: Rc<QueueSlot>,
    queue_offset: i64,
    entry: CqEntry,
}

impl Dispatch {
    pub(super) fn new(slot: Rc<QueueSlot>, queue_offset: i64, entry: CqEntry) -> Self {
        Dispatch {
            slot,
            queue_offset,
            entry,
        }
    }
}

/// Called for every message that becomes readable.
pub(super) type ArrivalListener = Box<dyn FnMut(&Arrival)>;

impl Inner {
    /// Places `msgs` (see [`Store::append`]): returns their group's sequence number (0 for
    /// no messages) and where each one went.
    pub(super) async fn append(
        &self,
        msgs: Vec<PutMessage>,
    ) -> Result<(u64, Vec<PutResult>), StoreError> {
        if msgs.is_empty() {
            return Ok((0, Vec::new()));
        }
        // Bound the append buffer: wait for the writer to catch up.
        while self.log.pending_bytes() > self.config.max_pending_bytes {
            if self.closing.get() {
                return Err(StoreError::Closed);
            }
            let next = self.progress.done() + 1;
            self.progress
                .wait_for(next)
                .await
                .map_err(|source| StoreError::LogFailed { source })?;
        }
        let mut slots = Vec::with_capacity(msgs.len());
        for msg in &msgs {
            slots.push(self.queues.slot(&msg.topic, msg.queue_id).await?);
        }
        let mut refs: Vec<StoredMessageRef<'_>> = msgs
            .iter()
            .map(|m| StoredMessageRef {
                queue_id: m.queue_id,
                flag: m.flag,
                queue_offset: 0,
                physical_offset: 0,
                sys_flag: m.sys_flag,
                born_timestamp: m.born_timestamp,
                born_host: m.born_host,
                store_timestamp: 0,
                store_host: m.store_host,
                reconsume_times: m.reconsume_times,
                prepared_transaction_offset: m.prepared_transaction_offset,
                body: &m.body,
                topic: &m.topic,
                properties: &m.properties,
            })
            .collect();
        let record_lens = record_lens(&refs, self.config.segment_size_bytes)?;
        self.check_disk_guard()?;
        // Every segment the batch goes to exists before anything is placed: a full disk
        // refuses the batch whole instead of failing the log. Creating one awaits, so the
        // check is made again until it passes without awaiting.
        loop {
            if self.closing.get() {
                return Err(StoreError::Closed);
            }
            if let Some(source) = self.write_stalled.borrow().clone() {
                return Err(StoreError::NoSpace {
                    what: "commit log write",
                    path: self.log.dir().to_path_buf(),
                    needed_bytes: self.log.pending_bytes() as u64,
                    source,
                });
            }
            let missing = self.log.missing_segments_for(&record_lens);
            if missing.is_empty() {
                break;
            }
            for start in missing {
                self.log.create_segment(start).await?;
                self.segment_created();
            }
        }
        // From here to the end of the appends nothing awaits: the order is fixed now.
        self.disk_guard
            .borrow_mut()
            .note_written(record_lens.iter().sum());
        let store_timestamp = now_ms();
        for r in &mut refs {
            r.store_timestamp = store_timestamp;
        }
        let mut results = Vec::with_capacity(refs.len());
        let mut group_seq = 0;
        let mut batch_end: Option<u64> = None;
        for (r, slot) in refs.iter_mut().zip(&slots) {
            debug_assert!(slot.offsets_in_order(), "queue offsets out of order");
            let dispatched = !sysflag::skipped_by_dispatch(r.sys_flag);
            r.queue_offset = if dispatched {
                slot.next_offset.get()
            } else {
                0
            };
            let placed = self.log.append(r)?;
            // Nothing awaits between the appends of a batch: they join one group, back to
            // back (only a blank record closing a segment may sit between two of them).
            debug_assert!(group_seq == 0 || placed.group_seq == group_seq);
            debug_assert!(batch_end.is_none_or(|end| placed.log_offset == end
                || (placed.log_offset > end
                    && placed.log_offset % self.config.segment_size_bytes == 0)));
            batch_end = Some(placed.log_offset + u64::from(placed.size_bytes));
            group_seq = placed.group_seq;
            if dispatched {
                slot.next_offset.set(r.queue_offset + 1);
                let tags = queue_tags_code(r.topic, |key| properties::find(r.properties, key));
                self.pending_dispatch.borrow_mut().push(Dispatch {
                    slot: Rc::clone(slot),
                    queue_offset: r.queue_offset,
                    entry: CqEntry {
                        physical_offset: placed.physical_offset,
                        size: i32::try_from(placed.size_bytes).unwrap_or(i32::MAX),
                        tags_code: tags,
                    },
                });
            }
            results.push(PutResult {
                physical_offset: placed.physical_offset,
                queue_offset: r.queue_offset,
                store_timestamp,
                size_bytes: placed.size_bytes,
            });
        }
        self.writer_wake.notify();
        Ok((group_seq, results))
    }

    /// The disk guard's verdict for an append now.
    pub(super) fn check_disk_guard(&self) -> Result<(), StoreError> {
        self.disk_guard.borrow_mut().check().map_err(|e| match e {
            DiskGuardError::Statvfs { path, source } => StoreError::Io {
                op: "statvfs",
                path,
                source,
            },
            full => StoreError::DiskFull { source: full },
        })
    }

    /// Accounts for a segment just created (preallocated).
    pub(super) fn segment_created(&self) {
        self.disk_guard
            .borrow_mut()
            .note_written(self.config.segment_size_bytes);
        self.update_store_bytes();
    }

    /// Writes `group` (and fdatasyncs it with `FlushPolicy::Sync`). A write that runs out of
    /// space is tried again every [`WRITE_RETRY_INTERVAL`] until it succeeds or the store
    /// closes; meanwhile appends are refused with [`StoreError::NoSpace`] and the group's
    /// appenders wait (nobody is answered for bytes that are not written).
    async fn write_group_until_written(&self, group: &Group) -> Result<(), StoreError> {
        let mut stalled_since: Option<std::time::Instant> = None;
        let mut last_logged: Option<std::time::Instant> = None;
        loop {
            match self.log.write_group(group).await {
                Err(StoreError::Write { path, source })
                    if is_out_of_space(&source) && !self.closing.get() =>
                {
                    let now = std::time::Instant::now();
                    stalled_since.get_or_insert(now);
                    if last_logged.is_none_or(|at| now.duration_since(at) >= STALL_LOG_INTERVAL) {
                        last_logged = Some(now);
                        let error = StoreError::Write {
                            path,
                            source: Arc::clone(&source),
                        };
                        tracing::error!(error = %ErrorChain(&error), shard = self.shard_id, "commit log write ran out of space; retrying every second, sends are refused until it succeeds");
                    }
                    *self.write_stalled.borrow_mut() = Some(source);
                    compio::time::sleep(WRITE_RETRY_INTERVAL).await;
                }
                result => {
                    if let Some(since) = stalled_since {
                        self.write_stalled.borrow_mut().take();
                        if result.is_ok() {
                            tracing::info!(
                                shard = self.shard_id,
                                stalled_ms = since.elapsed().as_millis() as u64,
                                "commit log writes resumed: space was freed"
                            );
                        }
                    }
                    result?;
                    if self.config.flush == FlushPolicy::Sync {
                        self.log.sync().await?;
                    }
                    return Ok(());
                }
            }
        }
    }

    /// The group writer: see the module documentation.
    pub(super) async fn writer_loop(self: Rc<Self>) {
        loop {
            while let Some(group) = self.log.take_group() {
                let dispatch = std::mem::take(&mut *self.pending_dispatch.borrow_mut());
                let result = self.write_group_until_written(&group).await;
                if let Err(error) = result {
                    tracing::error!(error = %ErrorChain(&error), shard = self.shard_id, "commit log write failed; appends are refused from now on");
                    let source = self.log.failure().unwrap_or_else(|| {
                        std::sync::Arc::new(std::io::Error::other("commit log failed"))
                    });
                    self.progress.fail(source);
                    continue;
                }
                // Groups are contiguous, and so is each one; its entries lie in it, in log
                // order.
                // (On a slave a group may start at the next segment when the previous
                // frame ended with the blank record closing a segment.)
                debug_assert!(
                    group.range.start == self.dispatched_end.get()
                        || (group.range.start % self.config.segment_size_bytes == 0
                            && group.range.start > self.dispatched_end.get()
                            && group.range.start - self.dispatched_end.get()
                                < self.config.segment_size_bytes),
                    "group starts at {} but the log is dispatched to {}",
                    group.range.start,
                    self.dispatched_end.get()
                );
                debug_assert!(group_is_contiguous(&group, self.config.segment_size_bytes));
                debug_assert!(dispatch
                    .iter()
                    .all(|d| split_physical(d.entry.physical_offset)
                        .is_some_and(|(_, log_offset)| group.range.contains(&log_offset))));
                debug_assert!(dispatch
                    .windows(2)
                    .all(|w| w[0].entry.physical_offset < w[1].entry.physical_offset));
                // A group reaching into a later segment than the last one dispatched: every
                // queue's pending entries are written, so that the entries not yet in the
                // page cache all point into the last two segments, which recovery without a
                // checkpoint scans (it scans the last three).
                let segment_of = |end: u64| end.saturating_sub(1) / self.config.segment_size_bytes;
                let rolled = segment_of(group.range.end) != segment_of(self.dispatched_end.get());
                self.dispatch(dispatch, rolled).await;
                self.dispatched_end.set(group.range.end);
                self.debug_assert_log_ends();
                self.progress.complete(group.seq);
                self.update_store_bytes();
                // Let the appenders just answered run first: what they append next joins
                // the next group instead of waiting a whole write (and sync) for the one
                // after it. Measured: 8 → 16 appends per fdatasync with 16 in flight.
                crate::signal::yield_now().await;
            }
            if self.closing.get() {
                return;
            }
            self.writer_wake.wait().await;
        }
    }

    /// Makes a written group's entries readable, writes them to the queue files when a
    /// page's worth is pending (every queue's when `write_all`), and announces them.
    async fn dispatch(&self, dispatch: Vec<Dispatch>, write_all: bool) {
        let mut touched: Vec<Rc<QueueSlot>> = Vec::new();
        for d in &dispatch {
            let mut cq = d.slot.cq.lock().await;
            if let Err(error) = cq.append(d.queue_offset, d.entry) {
                // Offsets are assigned in order by this shard alone; this is a bug.
                tracing::error!(%error, topic = %d.slot.topic, queue_id = d.slot.queue_id, "dispatch out of order");
                debug_assert!(false, "dispatch out of order: {error}");
                continue;
            }
            d.slot.max_offset.set(cq.max_offset());
            debug_assert!(d.slot.offsets_in_order(), "queue offsets out of order");
            if !touched.last().is_some_and(|s| Rc::ptr_eq(s, &d.slot))
                && !touched.iter().any(|s| Rc::ptr_eq(s, &d.slot))
            {
                touched.push(Rc::clone(&d.slot));
            }
        }
        for slot in &touched {
            if !slot.dirty.replace(true) {
                self.dirty_slots.borrow_mut().push(Rc::clone(slot));
            }
        }
        // Below a page's worth a queue's entries wait in memory, readable, for the next
        // checkpoint (at most `checkpoint_interval_ms`): one write per message costs a
        // syscall per queue touched, the whole cost when messages are spread over thousands
        // of queues (docs/decisions.md, "Consume-queue writes and the checkpoint interval").
        let to_write = if write_all {
            let dirty = self.dirty_slots.borrow().clone();
            dirty
                .into_iter()
                .filter(|slot| self.queues.holds(slot))
                .collect()
        } else {
            touched
        };
        let writes = to_write.iter().map(|slot| async move {
            let mut cq = slot.cq.lock().await;
            let due = cq.pending_entries() >= CQ_WRITE_AT_PENDING_ENTRIES
                || (write_all && cq.pending_entries() > 0);
            (
                slot,
                if due {
                    cq.write_pending().await
                } else {
                    Ok(())
                },
            )
        });
        for (slot, result) in futures_util::future::join_all(writes).await {
            if let Err(error) = result {
                // The entries stay pending in memory (readable) and are written next time;
                // the checkpoint does not pass them until a sync succeeds.
                tracing::warn!(%error, topic = %slot.topic, queue_id = slot.queue_id, "consume queue write failed; will retry");
            }
        }
        let mut listener = self.listener.borrow_mut();
        for d in &dispatch {
            let arrival = Arrival {
                topic: Rc::clone(&d.slot.topic),
                queue_id: d.slot.queue_id,
                max_offset: d.queue_offset + 1,
                tags_code: d.entry.tags_code,
            };
            match listener.as_mut() {
                Some(listener) => listener(&arrival),
                None => {
                    let mut arrivals = self.arrivals.borrow_mut();
                    if arrivals.len() < MAX_UNDRAINED_ARRIVALS {
                        arrivals.push(arrival);
                    }
                }
            }
        }
    }
}

/// Each record's size, refusing the batch whole if one does not fit a segment (so that a
/// batch is appended whole or not at all).
fn record_lens(
    refs: &[StoredMessageRef<'_>],
    segment_size_bytes: u64,
) -> Result<Vec<u64>, StoreError> {
    refs.iter()
        .map(|r| {
            let len = encoded_len_ref(r).map_err(|source| StoreError::Encode { source })? as u64;
            if len + BLANK_RECORD_SIZE as u64 > segment_size_bytes {
                return Err(StoreError::MessageTooLarge {
                    size_bytes: len,
                    segment_size_bytes,
                });
            }
            Ok(len)
        })
        .collect()
}

/// Whether `group`'s runs tile its bytes in order and cover its log range without a gap,
/// except that a run may jump to the start of a later segment (the rest of a segment closed
/// by a blank record is never written). Pure; for assertions.
fn group_is_contiguous(group: &Group, segment_size_bytes: u64) -> bool {
    let mut buf_end = 0;
    let mut log_end = group.range.start;
    for (i, run) in group.runs.iter().enumerate() {
        let log_start = run.segment_start + run.pos_in_file;
        let jumps_to_a_segment = i > 0 && run.pos_in_file == 0 && log_start > log_end;
        if run.buf_range.start != buf_end
            || !(log_start == log_end || jumps_to_a_segment)
            || run.segment_start % segment_size_bytes != 0
        {
            return false;
        }
        buf_end = run.buf_range.end;
        log_end = log_start + (run.buf_range.end - run.buf_range.start) as u64;
    }
    buf_end == group.bytes.len() && log_end == group.range.end
}

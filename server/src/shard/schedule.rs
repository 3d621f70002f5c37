//! One shard's schedule: delivers the parked copies of the schedule queues this shard owns
//! when they come due (the rules are `crate::schedule`; protocol.md §7.4).
//!
//! **Shape.** A task on the shard's own runtime, no thread of its own and no polling: for
//! each owned queue it keeps the offset of its head and the time the head needs a look
//! (`next_at_ms`), sleeps on the shard's timer until the earliest of those, and is woken
//! early when an append puts a copy on an owned queue ([`ShardSchedule::on_arrival`]). A
//! turn reads at most [`TURN_MESSAGES`] copies per queue and appends the deliveries and
//! re-parkings (to whichever shard owns their queue); the heads move once those appends are
//! done. A timed copy due within one step (64 ms) is kept in memory until due
//! ([`ShardSchedule::held`]) rather than making its queue wait. Memory: a few words per
//! queue plus what is due within a step, whatever is parked.
//!
//! **Crash.** After each turn's appends the logs that took them are fdatasynced and the
//! progress file (`config/shard-<n>/delayProgress`, [`schedule_progress`]) is rewritten in
//! place: every queue's head and the offsets of its copies held in memory. The file never
//! runs ahead of what a power cut leaves in the logs, so nothing is lost; a restart looks
//! at the held copies again and goes on from the heads, so a crash repeats only the turn it
//! interrupted.
//!
//! [`schedule_progress`]: super::schedule_progress

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::rc::{Rc, Weak};
use std::time::Duration;

use ringmq_engine::consumequeue::TagFilter;
use ringmq_engine::store::{Arrival, GetMessageStatus, PutMessage};
use ringmq_protocol::message::record::decode_record;

use super::schedule_progress::{ProgressFile, ScheduleProgress, MAX_PAYLOAD_BYTES};
use super::{Shard, ShardError};
use crate::notify::LocalNotify;
use crate::schedule::{turn, Turn, SCHEDULE_TOPIC, TIMER_QUEUE_NUMS, TIMER_TOPIC};

/// Most copies one queue hands over per turn (one append and one fdatasync per turn).
const TURN_MESSAGES: u32 = 256;
/// Most bytes of copies read from one queue per turn.
const TURN_BYTES: u64 = 4 << 20;
/// After a failed turn (disk full, a shard gone), the queue is tried again this much later.
const RETRY_AFTER_FAILURE_MS: i64 = 1000;
/// Longest sleep without a look (a wall clock that jumped is noticed by then).
const LONGEST_SLEEP: Duration = Duration::from_secs(1);

/// One owned schedule queue.
#[derive(Debug)]
struct OwnedQueue {
    topic: &'static str,
    queue_id: i32,
    /// Offset of the first copy not handed over yet.
    head_offset: Cell<i64>,
    /// When the head needs a look (ms, wall clock); `i64::MAX`: nothing parked.
    next_at_ms: Cell<i64>,
    /// Offsets of this queue's copies held in memory until due (`ShardSchedule::held`): the
    /// recorded head stays below them, so a crash looks at them again.
    held_offsets: RefCell<BTreeSet<i64>>,
    /// Offsets the progress file says were held when the broker stopped: looked at again
    /// first.
    reexamine: RefCell<Vec<i64>>,
}

/// A delivery held in memory: when it is due, and the queue (index) and offset of its
/// copy. As the key of [`ShardSchedule::held`] it orders the deliveries by due time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct HeldKey {
    due_ms: i64,
    queue_index: usize,
    queue_offset: i64,
}

/// The schedule of one shard (module documentation).
#[derive(Debug)]
pub struct ShardSchedule {
    queues: Vec<OwnedQueue>,
    wake: LocalNotify,
    progress_path: PathBuf,
    /// The sequence of the progress file's newest slot at open.
    progress_sequence: u64,
    /// Opened by the schedule task.
    progress_file: RefCell<Option<ProgressFile>>,
    /// What the progress file holds now.
    persisted: RefCell<ScheduleProgress>,
    /// Deliveries due within a step, earliest first: what memory holds, whatever is parked.
    held: RefCell<BTreeMap<HeldKey, PutMessage>>,
    /// After a failed hand-over, held deliveries wait until then.
    held_paused_until_ms: Cell<i64>,
    /// Failures are logged once per kind until a turn succeeds again.
    failing: Cell<bool>,
}

impl ShardSchedule {
    /// The queues `shard_id` owns of both schedule topics, from where `progress_path` says
    /// they were left.
    pub fn load(
        progress_path: PathBuf,
        level_count: i32,
        owns: impl Fn(&str, i32) -> bool,
    ) -> Result<Self, std::io::Error> {
        let (progress_sequence, persisted) =
            ProgressFile::load_blocking(&progress_path)?.unwrap_or_default();
        let mut queues = Vec::new();
        for queue_id in 0..level_count {
            if owns(SCHEDULE_TOPIC, queue_id) {
                let offset = persisted.offset_table.get(&(queue_id + 1)).copied();
                queues.push(OwnedQueue::new(SCHEDULE_TOPIC, queue_id, offset));
            }
        }
        for queue_id in 0..TIMER_QUEUE_NUMS {
            if owns(TIMER_TOPIC, queue_id) {
                let offset = persisted.timer_offset_table.get(&queue_id).copied();
                let queue = OwnedQueue::new(TIMER_TOPIC, queue_id, offset);
                if let Some(held) = persisted.timer_held.get(&queue_id) {
                    queue.reexamine.borrow_mut().extend(held);
                }
                queues.push(queue);
            }
        }
        Ok(ShardSchedule {
            queues,
            wake: LocalNotify::default(),
            progress_path,
            progress_sequence,
            progress_file: RefCell::new(None),
            persisted: RefCell::new(persisted),
            held: RefCell::default(),
            held_paused_until_ms: Cell::new(0),
            failing: Cell::new(false),
        })
    }

    /// A copy was appended to a queue of this shard: if it is an owned schedule queue, its
    /// head may need a look sooner (the copy's tagsCode is when it is due).
    pub fn on_arrival(&self, arrival: &Arrival) {
        if &*arrival.topic != SCHEDULE_TOPIC && &*arrival.topic != TIMER_TOPIC {
            return;
        }
        if let Some(queue) = self
            .queues
            .iter()
            .find(|q| q.topic == &*arrival.topic && q.queue_id == arrival.queue_id)
        {
            if arrival.tags_code < queue.next_at_ms.get() {
                queue.next_at_ms.set(arrival.tags_code);
                self.wake.notify();
            }
        }
    }

    /// The delay levels' head offsets (GET_ALL_DELAY_OFFSET): level → offset, for the
    /// levels that have delivered something (as RocketMQ's table fills).
    pub fn level_offsets(&self) -> BTreeMap<i32, i64> {
        self.queues
            .iter()
            .filter(|q| q.topic == SCHEDULE_TOPIC && q.head_offset.get() > 0)
            .map(|q| (q.queue_id + 1, q.head_offset.get()))
            .collect()
    }

    /// The heads and held offsets as the progress file records them.
    fn progress(&self) -> ScheduleProgress {
        let mut progress = ScheduleProgress::default();
        for queue in &self.queues {
            let head = queue.head_offset.get();
            if queue.topic == SCHEDULE_TOPIC {
                progress.offset_table.insert(queue.queue_id + 1, head);
                continue;
            }
            progress.timer_offset_table.insert(queue.queue_id, head);
            let held = queue.held_offsets.borrow();
            if !held.is_empty() {
                progress
                    .timer_held
                    .insert(queue.queue_id, held.iter().copied().collect());
            }
        }
        progress
    }
}

impl OwnedQueue {
    fn new(topic: &'static str, queue_id: i32, head_offset: Option<i64>) -> Self {
        OwnedQueue {
            topic,
            queue_id,
            head_offset: Cell::new(head_offset.unwrap_or(0)),
            // Look at once: copies may have come due while the broker was down.
            next_at_ms: Cell::new(0),
            held_offsets: RefCell::default(),
            reexamine: RefCell::default(),
        }
    }
}

/// What one queue's turn found.
struct QueueTurn {
    /// Deliveries and re-parkings, in queue order.
    appends: Vec<PutMessage>,
    /// Deliveries due within a step: `(due, queue offset, delivery)`.
    held: Vec<(i64, i64, PutMessage)>,
    /// The head offset once they are appended.
    head_offset: i64,
    /// When the new head needs a look.
    next_at_ms: i64,
}

/// Runs `shard`'s schedule until the shard is gone.
pub async fn schedule_loop(shard: Weak<Shard>) {
    if let Some(this) = shard.upgrade() {
        this.schedule.start(&this).await;
    }
    loop {
        let Some(this) = shard.upgrade() else { return };
        let schedule = &this.schedule;
        let now_ms = this.shared.clock.wall_ms();
        let mut turns = Vec::new();
        for (index, queue) in schedule.queues.iter().enumerate() {
            if queue.next_at_ms.get() > now_ms {
                continue;
            }
            // An arrival while this turn runs lowers it again (see hand_over).
            queue.next_at_ms.set(i64::MAX);
            match read_turn(&this, queue, now_ms).await {
                Ok(turn) => turns.push((index, turn)),
                Err(error) => {
                    schedule.log_failure(&error, queue);
                    queue.next_at_ms.set(now_ms + RETRY_AFTER_FAILURE_MS);
                }
            }
        }
        let released = schedule.release_due(now_ms);
        if !turns.is_empty() || !released.is_empty() {
            hand_over(&this, turns, released, now_ms).await;
        }
        let next_at_ms = schedule
            .queues
            .iter()
            .map(|q| q.next_at_ms.get())
            .chain(schedule.next_release_ms())
            .min()
            .unwrap_or(i64::MAX);
        let now_ms = this.shared.clock.wall_ms();
        if next_at_ms <= now_ms {
            // More is due already (a full turn, or time passed while appending).
            drop(this);
            yield_once().await;
            continue;
        }
        let sleep = Duration::from_millis(u64::try_from(next_at_ms - now_ms).unwrap_or(0))
            .min(LONGEST_SLEEP);
        let wake = Rc::clone(&this);
        drop(this);
        let woken = wake.schedule.wake.notified();
        futures_util::future::select(
            std::pin::pin!(compio::time::sleep(sleep)),
            std::pin::pin!(woken),
        )
        .await;
    }
}

/// Reads the queue's due copies from its head: what to append, up to the first one not
/// due (or [`TURN_MESSAGES`]).
async fn read_turn(
    shard: &Shard,
    queue: &OwnedQueue,
    now_ms: i64,
) -> Result<QueueTurn, ShardError> {
    let mut turn_out = QueueTurn {
        appends: Vec::new(),
        held: Vec::new(),
        head_offset: queue.head_offset.get(),
        next_at_ms: i64::MAX,
    };
    let mut looked_at: u32 = 0;
    // A read returns at most a few dozen messages (RocketMQ's in-memory transfer limit),
    // so a turn reads until it meets a copy not due, the queue's end or its own limit.
    while looked_at < TURN_MESSAGES {
        let result = shard
            .store
            .get_messages(
                queue.topic,
                queue.queue_id,
                turn_out.head_offset,
                TURN_MESSAGES - looked_at,
                TURN_BYTES,
                &TagFilter::All,
            )
            .await?;
        match result.status {
            GetMessageStatus::Found => {}
            GetMessageStatus::OffsetTooSmall | GetMessageStatus::OffsetOverflowBadly => {
                // Retention deleted copies never delivered, or the queue is shorter than
                // the progress says (its log lost a tail): go on from where the queue is.
                tracing::warn!(
                    topic = queue.topic,
                    queue_id = queue.queue_id,
                    from = turn_out.head_offset,
                    to = result.next_begin_offset,
                    "schedule queue head moved: copies between these offsets are gone"
                );
                turn_out.head_offset = result.next_begin_offset;
                turn_out.next_at_ms = 0;
                return Ok(turn_out);
            }
            // Nothing parked beyond the head.
            _ => return Ok(turn_out),
        }
        for found in &result.messages {
            if found.tags_code > now_ms {
                turn_out.next_at_ms = found.tags_code;
                return Ok(turn_out);
            }
            let bytes = &result.data[found.data_range.clone()];
            let decision = decode_record(bytes)
                .map_err(|error| error.to_string())
                .and_then(|(parked, _)| turn(&parked, now_ms).map_err(|e| e.to_string()));
            match decision {
                Ok(Turn::Deliver(message)) | Ok(Turn::Repark(message)) => {
                    turn_out.appends.push(message)
                }
                Ok(Turn::Hold { due_ms, delivery }) => {
                    turn_out.held.push((due_ms, found.queue_offset, delivery))
                }
                Err(error) => {
                    // A copy that cannot be delivered never will be: skip it, loudly.
                    tracing::error!(
                        topic = queue.topic,
                        queue_id = queue.queue_id,
                        queue_offset = found.queue_offset,
                        error,
                        "parked message skipped"
                    );
                }
            }
            turn_out.head_offset = found.queue_offset + 1;
            looked_at += 1;
        }
        if result.messages.is_empty() || turn_out.head_offset >= result.max_offset {
            return Ok(turn_out);
        }
    }
    // The turn's limit: more may be due behind it.
    turn_out.next_at_ms = 0;
    Ok(turn_out)
}

/// Appends the turns' copies and the released deliveries, moves the heads, keeps the turns'
/// held deliveries, then makes the appends durable and records the progress
/// ([`ShardSchedule::record`]).
async fn hand_over(
    shard: &Rc<Shard>,
    turns: Vec<(usize, QueueTurn)>,
    released: Vec<(HeldKey, PutMessage)>,
    now_ms: i64,
) {
    let schedule = &shard.schedule;
    // One append per target queue, in the order the copies came (a queue's deliveries stay
    // in due order).
    let mut by_target: BTreeMap<(String, i32), Vec<PutMessage>> = BTreeMap::new();
    for (_, delivery) in &released {
        by_target
            .entry((delivery.topic.clone(), delivery.queue_id))
            .or_default()
            .push(delivery.clone());
    }
    let mut turns_left = Vec::with_capacity(turns.len());
    for (index, turn) in turns {
        for message in turn.appends {
            by_target
                .entry((message.topic.clone(), message.queue_id))
                .or_default()
                .push(message);
        }
        turns_left.push((index, turn.head_offset, turn.next_at_ms, turn.held));
    }
    let owners: BTreeSet<usize> = by_target
        .keys()
        .map(|(topic, queue_id)| shard.owner_of(topic, *queue_id))
        .collect();
    let appends = by_target.into_iter().map(|((topic, queue_id), messages)| {
        let shard = Rc::clone(shard);
        async move { shard.append(&topic, queue_id, messages, false).await }
    });
    let appended = futures_util::future::join_all(appends).await;
    if let Some(error) = appended.into_iter().find_map(Result::err) {
        // Nothing moves: the same copies are handed over again later (those appended
        // already are delivered twice then, as after a crash here).
        for (index, _, _, _) in &turns_left {
            if let Some(queue) = schedule.queues.get(*index) {
                schedule.log_failure(&error, queue);
                queue.next_at_ms.set(now_ms + RETRY_AFTER_FAILURE_MS);
            }
        }
        schedule
            .held_paused_until_ms
            .set(now_ms + RETRY_AFTER_FAILURE_MS);
        schedule.held.borrow_mut().extend(released);
        return;
    }
    for (key, _) in released {
        if let Some(queue) = schedule.queues.get(key.queue_index) {
            queue.held_offsets.borrow_mut().remove(&key.queue_offset);
        }
    }
    for (index, head_offset, next_at_ms, held) in turns_left {
        let Some(queue) = schedule.queues.get(index) else {
            continue;
        };
        queue.head_offset.set(head_offset);
        // An arrival during the turn may have asked for an earlier look.
        queue.next_at_ms.set(next_at_ms.min(queue.next_at_ms.get()));
        for (due_ms, queue_offset, delivery) in held {
            schedule.hold(
                HeldKey {
                    due_ms,
                    queue_index: index,
                    queue_offset,
                },
                delivery,
            );
        }
    }
    schedule.record(shard, owners).await;
}

impl ShardSchedule {
    /// Keeps `delivery` in memory until `key.due_ms`; its queue's recorded progress names
    /// it until it is delivered.
    fn hold(&self, key: HeldKey, delivery: PutMessage) {
        if let Some(queue) = self.queues.get(key.queue_index) {
            queue.held_offsets.borrow_mut().insert(key.queue_offset);
        }
        self.held.borrow_mut().insert(key, delivery);
    }

    /// The held deliveries due at `now_ms`, earliest first.
    fn release_due(&self, now_ms: i64) -> Vec<(HeldKey, PutMessage)> {
        if now_ms < self.held_paused_until_ms.get() {
            return Vec::new();
        }
        let mut held = self.held.borrow_mut();
        let mut due = Vec::new();
        while held
            .first_key_value()
            .is_some_and(|(key, _)| key.due_ms <= now_ms)
        {
            if let Some(entry) = held.pop_first() {
                due.push(entry);
            }
        }
        due
    }

    /// When the earliest held delivery is due.
    fn next_release_ms(&self) -> Option<i64> {
        let due = self
            .held
            .borrow()
            .first_key_value()
            .map(|(key, _)| key.due_ms)?;
        Some(due.max(self.held_paused_until_ms.get()))
    }
}

impl ShardSchedule {
    /// Opens the progress file and takes back the copies it says were held in memory.
    async fn start(&self, shard: &Shard) {
        match ProgressFile::open(&self.progress_path, self.progress_sequence).await {
            Ok(file) => *self.progress_file.borrow_mut() = Some(file),
            Err(error) => tracing::error!(
                path = %self.progress_path.display(),
                %error,
                "cannot open the schedule's progress file: deliveries go on, but a crash \
                 will repeat everything since the broker started"
            ),
        }
        let now_ms = shard.shared.clock.wall_ms();
        for (index, queue) in self.queues.iter().enumerate() {
            let offsets = std::mem::take(&mut *queue.reexamine.borrow_mut());
            for queue_offset in offsets {
                match self.reread(shard, queue, queue_offset, now_ms).await {
                    Ok(Some((due_ms, delivery))) => self.hold(
                        HeldKey {
                            due_ms,
                            queue_index: index,
                            queue_offset,
                        },
                        delivery,
                    ),
                    Ok(None) => {}
                    Err(error) => tracing::error!(
                        topic = queue.topic,
                        queue_id = queue.queue_id,
                        queue_offset,
                        error = %crate::reply::error_chain(&error),
                        "a copy held before the restart cannot be read: skipped"
                    ),
                }
            }
        }
    }

    /// The delivery of the copy at `queue_offset` and when it is due (now if overdue;
    /// a copy that would be parked again is parked again at once).
    async fn reread(
        &self,
        shard: &Shard,
        queue: &OwnedQueue,
        queue_offset: i64,
        now_ms: i64,
    ) -> Result<Option<(i64, PutMessage)>, ShardError> {
        let result = shard
            .store
            .get_messages(
                queue.topic,
                queue.queue_id,
                queue_offset,
                1,
                TURN_BYTES,
                &TagFilter::All,
            )
            .await?;
        let Some(found) = result.messages.first() else {
            return Ok(None);
        };
        if found.queue_offset != queue_offset {
            return Ok(None);
        }
        let bytes = &result.data[found.data_range.clone()];
        let Ok((parked, _)) = decode_record(bytes) else {
            return Ok(None);
        };
        Ok(match turn(&parked, now_ms) {
            Ok(Turn::Hold { due_ms, delivery }) => Some((due_ms, delivery)),
            Ok(Turn::Deliver(delivery)) | Ok(Turn::Repark(delivery)) => Some((now_ms, delivery)),
            Err(_) => None,
        })
    }

    /// After a turn's appends: makes them durable on the shards that took them, then
    /// records the heads and held offsets, so the file never runs ahead of the logs.
    async fn record(&self, shard: &Rc<Shard>, owners: BTreeSet<usize>) {
        let progress = self.progress();
        if owners.is_empty() && *self.persisted.borrow() == progress {
            // A look that moved nothing.
            return;
        }
        for owner in owners {
            if let Err(error) = shard.sync_log_on(owner).await {
                // Not recorded: a crash repeats these copies rather than lose them.
                tracing::error!(error = %crate::reply::error_chain(&error), "schedule: syncing the log of handed-over copies failed");
                return;
            }
        }
        let payload = match progress_payload(progress.clone()) {
            Ok(payload) => payload,
            Err(error) => {
                tracing::error!(%error, "encoding the schedule progress failed");
                return;
            }
        };
        let file = self.progress_file.borrow_mut().take();
        let Some(file) = file else { return };
        match file.write(payload).await {
            Ok(()) => {
                *self.persisted.borrow_mut() = progress;
                self.failing.set(false);
            }
            Err(error) => tracing::error!(
                path = %file.path().display(),
                %error,
                "writing the schedule progress failed; a crash would repeat deliveries"
            ),
        }
        *self.progress_file.borrow_mut() = Some(file);
    }

    fn log_failure(&self, error: &dyn std::error::Error, queue: &OwnedQueue) {
        if !self.failing.replace(true) {
            tracing::error!(
                topic = queue.topic,
                queue_id = queue.queue_id,
                error = %crate::reply::error_chain(error),
                "schedule turn failed; retrying every second"
            );
        }
    }
}

/// `progress` encoded for the file; when the held offsets do not fit a slot, each queue's
/// head is recorded at its lowest held copy instead (a crash then repeats more, loses
/// nothing).
fn progress_payload(mut progress: ScheduleProgress) -> Result<Vec<u8>, serde_json::Error> {
    let payload = serde_json::to_vec(&progress)?;
    if payload.len() <= MAX_PAYLOAD_BYTES {
        return Ok(payload);
    }
    for (queue_id, held) in std::mem::take(&mut progress.timer_held) {
        if let (Some(head), Some(lowest)) =
            (progress.timer_offset_table.get_mut(&queue_id), held.first())
        {
            *head = (*head).min(*lowest);
        }
    }
    serde_json::to_vec(&progress)
}

/// Lets the shard's other tasks run once before going on.
async fn yield_once() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            std::task::Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    })
    .await
}

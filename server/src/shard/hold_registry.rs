//! The shard's held pulls, as data (protocol.md §5, design.md §6): a PULL with the suspend
//! flag that finds nothing new waits here until a matching message is appended to its queue, its hold
//! expires, or its connection closes. Pure: no I/O, no clock; the caller passes the time in
//! and answers the payloads handed back (`T` is whatever the server needs to answer: the
//! connection handle and the original request).
//!
//! **Layout.** Each held pull lives in the shard's [`TimerWheel`], keyed by its
//! [`HoldId`] (the timer's key), so expiry is the wheel's. Two indexes point at it:
//! - by queue: `(topic, queue_id)` is interned once into a small slot table; a held pull
//!   stores its slot number, and the slot lists its pulls in hold order. An arrival finds the
//!   slot through `topic → [(queue_id, slot)]`, a `HashMap<Box<str>, _>` looked up with the
//!   `&str` it is given (`Box<str>: Borrow<str>`), so the hot path allocates no `String`;
//!   only the first hold on a topic allocates its name;
//! - by connection id, to forget a closed connection's pulls without scanning. A connection's
//!   list is compacted lazily: a released pull's key stays in it (a released key names
//!   nothing, even once the wheel reuses its slot) until the stale keys outnumber the held
//!   ones by [`STALE_KEYS_KEPT`]. One client holds thousands of pulls on one connection, and
//!   expiry releases a few at a time: compacting on every release made each expiry pass
//!   walk the whole list (measured: 7% of an idle broker's CPU with 10,000 held pulls).
//!
//! **Invariants.** A pull is held ⇔ its key is pending in the wheel ⇔ its key is in exactly
//! its queue slot's list, and in its connection's list, whose `held` counts it. A connection
//! list's other keys are stale, at most `held + STALE_KEYS_KEPT` of them. A queue slot is in
//! the index ⇔ it is in use. An in-use slot or a connection may have an empty list: they are
//! kept so that the usual churn (hold, wake, the client's next pull holds again on the same
//! queue) allocates nothing (measured: it halves the cost of a hold + wake), and swept once
//! they exceed `2 × len() + EMPTY_KEPT`, which bounds them and keeps the sweeps amortized O(1).
//! `len() ≤ capacity`.
//! An arrival wakes only pulls on that queue whose offset is below the new max offset *and*
//! whose filter takes the message's tags code: an unmatched tag leaves a pull held.
//!
//! **Costs.** An arrival looks at every pull held on its queue (as RocketMQ does), O(1) for a
//! queue with none. Every operation touches each affected list once (a compacting pass), so
//! releasing many pulls at once stays linear, never quadratic.
//!
//! Nothing here survives a crash: held pulls belong to connections, which a restart closes.

use std::collections::HashMap;
use std::fmt;

use ringmq_engine::consumequeue::TagFilter;

use crate::timer_wheel::{TimerKey, TimerWheel, WheelConfig, WheelConfigError};

/// Empty queue slots and connection lists kept beyond twice the held pulls before a sweep.
const EMPTY_KEPT: usize = 1024;

/// Stale keys a connection's list may hold beyond as many as its held pulls.
const STALE_KEYS_KEPT: usize = 64;

/// RocketMQ's default cap on a hold (`BROKER_SUSPEND_MAX_TIME_MILLIS`, 15 s).
pub const DEFAULT_MAX_HOLD_MS: u64 = 15_000;

/// When a pull held at `now_ms` must be answered: after its `suspendTimeoutMillis`, at most
/// `max_hold_ms`; a negative timeout counts as 0 (answered at the next expiry pass).
pub fn hold_deadline_ms(now_ms: u64, suspend_timeout_millis: i64, max_hold_ms: u64) -> u64 {
    let timeout_ms = u64::try_from(suspend_timeout_millis).unwrap_or(0);
    now_ms.saturating_add(timeout_ms.min(max_hold_ms))
}

/// What a held pull waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullHold<'a> {
    /// The pull's topic.
    pub topic: &'a str,
    /// The pull's queue.
    pub queue_id: i32,
    /// The logical offset the pull asked for: it wakes once the queue's max offset passes it.
    pub offset: i64,
    /// Which messages wake it: the subscription's tag filter, the one the pull scanned with.
    pub filter: TagFilter,
    /// When it is answered with "no new message" at the latest (see [`hold_deadline_ms`]).
    pub deadline_ms: u64,
    /// The connection it came on, so a close forgets it.
    pub connection_id: u64,
}

/// Names one held pull; stale once the pull was released.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HoldId(TimerKey);

/// A pull that could not be held; the payload comes back so the caller answers it at once.
#[derive(thiserror::Error)]
pub enum HoldError<T> {
    /// The shard already holds its maximum of pulls.
    #[error("long-poll registry full: {capacity} pulls held")]
    Full {
        /// The most pulls the shard holds.
        capacity: usize,
        /// The pull's payload, to answer now.
        payload: T,
    },
}

impl<T> HoldError<T> {
    /// The payload of the pull that was not held.
    pub fn into_payload(self) -> T {
        match self {
            Self::Full { payload, .. } => payload,
        }
    }
}

impl<T> fmt::Debug for HoldError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full { capacity, .. } => f
                .debug_struct("Full")
                .field("capacity", capacity)
                .finish_non_exhaustive(),
        }
    }
}

#[derive(Debug)]
struct Held<T> {
    /// Index into `HoldRegistry::queues`.
    queue: u32,
    offset: i64,
    filter: TagFilter,
    connection_id: u64,
    payload: T,
}

/// One interned `(topic, queue_id)` and its held pulls in hold order (possibly none, see
/// the module docs).
#[derive(Debug)]
struct QueueHolds {
    topic: Box<str>,
    queue_id: i32,
    held: Vec<TimerKey>,
}

/// One connection's held pulls: their keys, with stale ones (see the module docs).
#[derive(Debug, Default)]
struct ConnectionHolds {
    keys: Vec<TimerKey>,
    /// Pulls of this connection still held.
    held: usize,
}

impl ConnectionHolds {
    /// One of its pulls was released: its key is stale now, dropped in a later pass.
    fn released(&mut self, wheel: &TimerWheel<impl Sized>) {
        self.held = self.held.saturating_sub(1);
        if self.keys.len() > 2 * self.held + STALE_KEYS_KEPT {
            self.keys.retain(|&key| wheel.get(key).is_some());
        }
    }
}

/// The shard's held pulls. See the module docs.
pub struct HoldRegistry<T> {
    wheel: TimerWheel<Held<T>>,
    /// Interned queues; `None` is a free slot, listed in `free_queues`.
    queues: Vec<Option<QueueHolds>>,
    free_queues: Vec<u32>,
    /// topic → its interned queues and their slot in `queues`.
    queue_index: HashMap<Box<str>, Vec<(i32, u32)>>,
    connections: HashMap<u64, ConnectionHolds>,
}

impl<T> fmt::Debug for HoldRegistry<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HoldRegistry")
            .field("held", &self.wheel.len())
            .field("capacity", &self.wheel.capacity())
            .field("queues", &self.queues_in_use())
            .field("connections", &self.connections.len())
            .finish_non_exhaustive()
    }
}

impl<T> HoldRegistry<T> {
    /// An empty registry holding at most `wheel.capacity` pulls, its clock at `now_ms`.
    pub fn new(wheel: WheelConfig, now_ms: u64) -> Result<Self, WheelConfigError> {
        Ok(Self {
            wheel: TimerWheel::new(wheel, now_ms)?,
            queues: Vec::new(),
            free_queues: Vec::new(),
            queue_index: HashMap::new(),
            connections: HashMap::new(),
        })
    }

    /// Pulls held.
    pub fn len(&self) -> usize {
        self.wheel.len()
    }

    /// Whether no pull is held.
    pub fn is_empty(&self) -> bool {
        self.wheel.is_empty()
    }

    /// Most pulls held at once.
    pub fn capacity(&self) -> usize {
        self.wheel.capacity()
    }

    /// The earliest hold deadline, so the shard knows how long it may park.
    pub fn next_deadline(&self) -> Option<u64> {
        self.wheel.next_deadline()
    }

    /// Holds a pull until [`HoldRegistry::on_arrival`], [`HoldRegistry::expire`],
    /// [`HoldRegistry::drop_connection`] or [`HoldRegistry::drain_all`] releases it.
    /// Refused when full: the caller answers the pull at once instead.
    pub fn hold(&mut self, pull: PullHold<'_>, payload: T) -> Result<HoldId, HoldError<T>> {
        if self.wheel.len() >= self.wheel.capacity() {
            return Err(HoldError::Full {
                capacity: self.wheel.capacity(),
                payload,
            });
        }
        let queue = self.intern_queue(pull.topic, pull.queue_id);
        let held = Held {
            queue,
            offset: pull.offset,
            filter: pull.filter,
            connection_id: pull.connection_id,
            payload,
        };
        let key = match self.wheel.insert(pull.deadline_ms, held) {
            Ok(key) => key,
            Err(full) => {
                self.sweep_if_many_empty();
                return Err(HoldError::Full {
                    capacity: full.capacity,
                    payload: full.value.payload,
                });
            }
        };
        if let Some(Some(slot)) = self.queues.get_mut(queue as usize) {
            slot.held.push(key);
        }
        let connection = self.connections.entry(pull.connection_id).or_default();
        connection.keys.push(key);
        connection.held += 1;
        Ok(HoldId(key))
    }

    /// A message with `tags_code` was appended to `(topic, queue_id)`, whose max offset is now
    /// `new_max_offset`: releases, in hold order, every pull held on that queue whose offset
    /// is below `new_max_offset` and whose filter takes `tags_code`. The others stay held.
    pub fn on_arrival(
        &mut self,
        topic: &str,
        queue_id: i32,
        new_max_offset: i64,
        tags_code: i64,
    ) -> Vec<T> {
        let mut released = Vec::new();
        let Some(queue) = self.find_queue(topic, queue_id) else {
            return released;
        };
        let Some(Some(slot)) = self.queues.get_mut(queue as usize) else {
            return released;
        };
        // One compacting pass (hold order kept); the released pulls' connections are told
        // afterwards, so a wake of many pulls stays linear.
        let wheel = &mut self.wheel;
        let mut touched_connections = Vec::new();
        slot.held.retain(|&key| {
            let Some(held) = wheel.get(key) else {
                debug_assert!(false, "a queue list holds a released pull");
                return false;
            };
            if held.offset >= new_max_offset || !held.filter.matches(tags_code) {
                return true;
            }
            if let Some(held) = wheel.cancel(key) {
                touched_connections.push(held.connection_id);
                released.push(held.payload);
            }
            false
        });
        self.release_from_connections(&touched_connections);
        self.sweep_if_many_empty();
        released
    }

    /// Releases, in deadline order, every pull whose deadline is at or before `now_ms`: they
    /// are answered "no new message".
    pub fn expire(&mut self, now_ms: u64) -> Vec<T> {
        let fired = self.wheel.advance_keyed(now_ms);
        if fired.is_empty() {
            return Vec::new();
        }
        let mut touched_queues = Vec::with_capacity(fired.len());
        let mut touched_connections = Vec::with_capacity(fired.len());
        let released = fired
            .into_iter()
            .map(|(_, held)| {
                touched_queues.push(held.queue);
                touched_connections.push(held.connection_id);
                held.payload
            })
            .collect();
        self.compact_queues(touched_queues);
        self.release_from_connections(&touched_connections);
        self.sweep_if_many_empty();
        released
    }

    /// Releases one held pull; `None` if it was already released.
    pub fn cancel(&mut self, id: HoldId) -> Option<T> {
        let held = self.wheel.cancel(id.0)?;
        self.unindex_queue(held.queue, id.0);
        self.release_from_connections(&[held.connection_id]);
        self.sweep_if_many_empty();
        Some(held.payload)
    }

    /// Forgets every pull held for a closed connection (nobody is left to answer); returns
    /// how many.
    pub fn drop_connection(&mut self, connection_id: u64) -> usize {
        let Some(connection) = self.connections.remove(&connection_id) else {
            return 0;
        };
        let mut touched_queues = Vec::with_capacity(connection.held);
        // Stale keys cancel nothing.
        for key in connection.keys {
            if let Some(held) = self.wheel.cancel(key) {
                touched_queues.push(held.queue);
            }
        }
        let dropped = touched_queues.len();
        self.compact_queues(touched_queues);
        self.sweep_if_many_empty();
        dropped
    }

    /// Releases every held pull (shutdown answers them all), in deadline order.
    pub fn drain_all(&mut self) -> Vec<T> {
        self.queues.clear();
        self.free_queues.clear();
        self.queue_index.clear();
        self.connections.clear();
        self.wheel
            .drain()
            .into_iter()
            .map(|held| held.payload)
            .collect()
    }

    fn find_queue(&self, topic: &str, queue_id: i32) -> Option<u32> {
        self.queue_index
            .get(topic)?
            .iter()
            .find(|&&(id, _)| id == queue_id)
            .map(|&(_, queue)| queue)
    }

    /// The slot of `(topic, queue_id)`, interned if it has none.
    fn intern_queue(&mut self, topic: &str, queue_id: i32) -> u32 {
        if let Some(queue) = self.find_queue(topic, queue_id) {
            return queue;
        }
        let holds = QueueHolds {
            topic: topic.into(),
            queue_id,
            held: Vec::new(),
        };
        let queue = match self.free_queues.pop() {
            Some(queue) => {
                if let Some(slot) = self.queues.get_mut(queue as usize) {
                    *slot = Some(holds);
                }
                queue
            }
            None => {
                // Slots stay within 2 × capacity + EMPTY_KEPT + 1 (see `sweep_if_many_empty`).
                let queue = self.queues.len() as u32;
                self.queues.push(Some(holds));
                queue
            }
        };
        match self.queue_index.get_mut(topic) {
            Some(queues) => queues.push((queue_id, queue)),
            None => {
                self.queue_index
                    .insert(topic.into(), vec![(queue_id, queue)]);
            }
        }
        queue
    }

    /// Takes `key` out of its queue's list (the slot stays in use, see the module docs).
    fn unindex_queue(&mut self, queue: u32, key: TimerKey) {
        if let Some(Some(slot)) = self.queues.get_mut(queue as usize) {
            if let Some(at) = slot.held.iter().position(|&k| k == key) {
                // Keeps hold order for the pulls that remain.
                slot.held.remove(at);
            } else {
                debug_assert!(false, "a held pull missing from its queue list");
            }
        }
    }

    /// Drops the keys of released pulls (no longer pending in the wheel) from these queues'
    /// lists, one pass per queue, keeping hold order.
    fn compact_queues(&mut self, mut queues: Vec<u32>) {
        queues.sort_unstable();
        queues.dedup();
        for queue in queues {
            if let Some(Some(slot)) = self.queues.get_mut(queue as usize) {
                slot.held.retain(|&key| self.wheel.get(key).is_some());
            }
        }
    }

    /// One pull of each of these connections (an id once per pull) was released.
    fn release_from_connections(&mut self, connection_ids: &[u64]) {
        for connection_id in connection_ids {
            if let Some(connection) = self.connections.get_mut(connection_id) {
                connection.released(&self.wheel);
            }
        }
    }

    fn queues_in_use(&self) -> usize {
        self.queues.len() - self.free_queues.len()
    }

    /// Frees empty queue slots and forgets empty connection lists once they exceed
    /// `2 × len() + EMPTY_KEPT`: after a sweep at least `len() + EMPTY_KEPT` releases pass
    /// before the next, so its O(slots) cost is amortized O(1).
    fn sweep_if_many_empty(&mut self) {
        let bound = self.len().saturating_mul(2).saturating_add(EMPTY_KEPT);
        if self.queues_in_use() > bound {
            for queue in 0..self.queues.len() {
                self.free_queue_if_empty(queue);
            }
        }
        if self.connections.len() > bound {
            self.connections.retain(|_, connection| connection.held > 0);
        }
    }

    fn free_queue_if_empty(&mut self, queue: usize) {
        let Some(slot) = self.queues.get_mut(queue) else {
            return;
        };
        if slot.as_ref().is_none_or(|holds| !holds.held.is_empty()) {
            return;
        }
        let Some(QueueHolds {
            topic, queue_id, ..
        }) = slot.take()
        else {
            return;
        };
        if let Some(queues) = self.queue_index.get_mut(&*topic) {
            queues.retain(|&(id, _)| id != queue_id);
            if queues.is_empty() {
                self.queue_index.remove(&*topic);
            }
        }
        // Slots in use stay within 2 × capacity + EMPTY_KEPT + 1, far below u32::MAX
        // for any capacity a shard can hold in memory.
        self.free_queues.push(queue as u32);
    }
}

#[cfg(test)]
impl<T> HoldRegistry<T> {
    /// Asserts the module's invariants: the wheel, the queue index and the connection index
    /// name exactly the same held pulls, and no index keeps an empty list.
    fn assert_invariants(&self) {
        let mut by_queue = 0;
        for (topic, queues) in &self.queue_index {
            assert!(!queues.is_empty(), "topic {topic} indexed with no queue");
            for &(queue_id, queue) in queues {
                let holds = self.queues[queue as usize].as_ref().unwrap();
                assert_eq!((&*holds.topic, holds.queue_id), (&**topic, queue_id));
                for &key in &holds.held {
                    assert_eq!(self.wheel.get(key).unwrap().queue, queue);
                }
                by_queue += holds.held.len();
            }
        }
        let in_use = self.queues.iter().filter(|q| q.is_some()).count();
        let indexed: usize = self.queue_index.values().map(Vec::len).sum();
        assert_eq!(in_use, indexed, "a queue slot in use but not indexed");
        assert_eq!(in_use + self.free_queues.len(), self.queues.len());
        let mut by_connection = 0;
        for (&connection_id, connection) in &self.connections {
            let mut live = 0;
            for &key in &connection.keys {
                if let Some(held) = self.wheel.get(key) {
                    assert_eq!(held.connection_id, connection_id);
                    live += 1;
                }
            }
            assert_eq!(live, connection.held, "connection {connection_id}'s count");
            assert!(connection.keys.len() <= 2 * connection.held + STALE_KEYS_KEPT);
            by_connection += live;
        }
        assert_eq!(by_queue, self.wheel.len());
        assert_eq!(by_connection, self.wheel.len());
        let bound = 2 * self.len() + EMPTY_KEPT;
        assert!(
            in_use <= bound,
            "{in_use} queue slots for {} pulls",
            self.len()
        );
        assert!(self.connections.len() <= bound);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TAG_A: i32 = 2_598_919; // "TagA".hashCode()
    const TAG_B: i32 = 2_598_920; // "TagB".hashCode()

    fn registry(capacity: usize) -> HoldRegistry<&'static str> {
        let config = WheelConfig {
            capacity,
            ..WheelConfig::default()
        };
        HoldRegistry::new(config, 0).unwrap()
    }

    fn pull(topic: &str, queue_id: i32, offset: i64, filter: TagFilter) -> PullHold<'_> {
        PullHold {
            topic,
            queue_id,
            offset,
            filter,
            deadline_ms: 15_000,
            connection_id: 1,
        }
    }

    fn tag_a() -> TagFilter {
        TagFilter::from_subscription("tags", [TAG_A])
    }

    #[test]
    fn a_held_pull_is_released_when_a_matching_message_arrives() {
        let mut pulls = registry(16);
        pulls.hold(pull("T", 0, 5, tag_a()), "p").unwrap();
        assert_eq!(pulls.on_arrival("T", 0, 6, i64::from(TAG_A)), ["p"]);
        assert!(pulls.is_empty());
    }

    #[test]
    fn an_unmatched_tag_does_not_wake_a_held_pull() {
        let mut pulls = registry(16);
        pulls.hold(pull("T", 0, 5, tag_a()), "p").unwrap();
        assert!(pulls.on_arrival("T", 0, 6, i64::from(TAG_B)).is_empty());
        assert!(
            pulls.on_arrival("T", 0, 7, 0).is_empty(),
            "untagged message"
        );
        assert_eq!(pulls.len(), 1);
        assert_eq!(pulls.on_arrival("T", 0, 8, i64::from(TAG_A)), ["p"]);
    }

    #[test]
    fn an_arrival_not_past_the_requested_offset_does_not_wake() {
        let mut pulls = registry(16);
        pulls.hold(pull("T", 0, 5, TagFilter::All), "p").unwrap();
        assert!(pulls.on_arrival("T", 0, 4, 0).is_empty());
        assert!(pulls.on_arrival("T", 0, 5, 0).is_empty());
        assert_eq!(pulls.on_arrival("T", 0, 6, 0), ["p"]);
    }

    #[test]
    fn an_all_filter_wakes_on_any_tag_or_none() {
        for tags_code in [0, i64::from(TAG_A), i64::from(TAG_B), -7] {
            let mut pulls = registry(16);
            pulls.hold(pull("T", 0, 0, TagFilter::All), "p").unwrap();
            assert_eq!(pulls.on_arrival("T", 0, 1, tags_code), ["p"]);
        }
    }

    #[test]
    fn an_arrival_on_another_queue_or_topic_does_not_wake() {
        let mut pulls = registry(16);
        pulls.hold(pull("T", 1, 0, TagFilter::All), "p").unwrap();
        assert!(pulls.on_arrival("T", 0, 1, 0).is_empty());
        assert!(pulls.on_arrival("U", 1, 1, 0).is_empty());
        assert!(pulls.on_arrival("", 1, 1, 0).is_empty());
        assert_eq!(pulls.on_arrival("T", 1, 1, 0), ["p"]);
    }

    #[test]
    fn pulls_on_one_queue_are_released_together_in_hold_order() {
        let mut pulls = registry(16);
        pulls
            .hold(pull("T", 0, 3, TagFilter::All), "first")
            .unwrap();
        pulls
            .hold(
                pull("T", 0, 3, TagFilter::from_subscription("tags", [TAG_B])),
                "other tag",
            )
            .unwrap();
        pulls
            .hold(pull("T", 0, 9, TagFilter::All), "further")
            .unwrap();
        pulls.hold(pull("T", 0, 1, tag_a()), "second").unwrap();
        pulls
            .hold(pull("T", 0, 0, TagFilter::All), "third")
            .unwrap();
        assert_eq!(
            pulls.on_arrival("T", 0, 4, i64::from(TAG_A)),
            ["first", "second", "third"]
        );
        assert_eq!(pulls.len(), 2);
        assert_eq!(
            pulls.on_arrival("T", 0, 10, i64::from(TAG_B)),
            ["other tag", "further"]
        );
    }

    #[test]
    fn a_pull_released_by_an_arrival_does_not_expire_later() {
        let mut pulls = registry(16);
        pulls.hold(pull("T", 0, 0, TagFilter::All), "p").unwrap();
        assert_eq!(pulls.on_arrival("T", 0, 1, 0), ["p"]);
        assert_eq!(pulls.next_deadline(), None);
        assert!(pulls.expire(60_000).is_empty());
    }

    #[test]
    fn expiry_releases_only_the_expired_pulls_in_deadline_order() {
        let mut pulls = registry(16);
        for (deadline_ms, payload) in [(300, "late"), (100, "early"), (200, "middle")] {
            let hold = PullHold {
                deadline_ms,
                ..pull("T", 0, 0, TagFilter::All)
            };
            pulls.hold(hold, payload).unwrap();
        }
        assert_eq!(pulls.next_deadline(), Some(100));
        assert!(pulls.expire(99).is_empty());
        assert_eq!(pulls.expire(200), ["early", "middle"]);
        assert_eq!(pulls.len(), 1);
        assert_eq!(pulls.next_deadline(), Some(300));
        assert_eq!(
            pulls.on_arrival("T", 0, 1, 0),
            ["late"],
            "the rest stays indexed"
        );
    }

    #[test]
    fn an_expired_pull_is_not_released_again_by_an_arrival() {
        let mut pulls = registry(16);
        pulls.hold(pull("T", 0, 0, TagFilter::All), "p").unwrap();
        assert_eq!(pulls.expire(15_000), ["p"]);
        assert!(pulls.on_arrival("T", 0, 1, 0).is_empty());
    }

    #[test]
    fn dropping_a_connection_forgets_only_its_pulls() {
        let mut pulls = registry(16);
        for (connection_id, payload) in [(7, "a"), (8, "b"), (7, "c")] {
            let hold = PullHold {
                connection_id,
                ..pull("T", 0, 0, TagFilter::All)
            };
            pulls.hold(hold, payload).unwrap();
        }
        assert_eq!(pulls.drop_connection(7), 2);
        assert_eq!(pulls.drop_connection(7), 0);
        assert_eq!(pulls.drop_connection(99), 0);
        assert_eq!(pulls.len(), 1);
        assert_eq!(pulls.on_arrival("T", 0, 1, 0), ["b"]);
        assert!(pulls.expire(u64::MAX).is_empty());
    }

    #[test]
    fn a_full_registry_refuses_and_gives_the_payload_back() {
        let mut pulls = registry(2);
        pulls.hold(pull("T", 0, 0, TagFilter::All), "a").unwrap();
        pulls.hold(pull("U", 0, 0, TagFilter::All), "b").unwrap();
        let refused = pulls
            .hold(pull("V", 0, 0, TagFilter::All), "c")
            .unwrap_err();
        assert!(matches!(refused, HoldError::Full { capacity: 2, .. }));
        assert_eq!(refused.into_payload(), "c");
        assert!(
            pulls.on_arrival("V", 0, 1, 0).is_empty(),
            "nothing of the refused pull stays"
        );
        assert_eq!(pulls.on_arrival("T", 0, 1, 0), ["a"]);
        assert!(pulls.hold(pull("V", 0, 0, TagFilter::All), "c").is_ok());
    }

    #[test]
    fn cancel_releases_one_pull_and_a_stale_id_nothing() {
        let mut pulls = registry(16);
        let id = pulls.hold(pull("T", 0, 0, TagFilter::All), "gone").unwrap();
        pulls
            .hold(pull("T", 0, 0, TagFilter::All), "stays")
            .unwrap();
        assert_eq!(pulls.cancel(id), Some("gone"));
        assert_eq!(pulls.cancel(id), None);
        assert_eq!(pulls.on_arrival("T", 0, 1, 0), ["stays"]);
    }

    #[test]
    fn drain_all_releases_everything_and_leaves_a_usable_registry() {
        let mut pulls = registry(16);
        pulls.hold(pull("T", 0, 0, TagFilter::All), "a").unwrap();
        pulls.hold(pull("U", 3, 0, tag_a()), "b").unwrap();
        let mut drained = pulls.drain_all();
        drained.sort_unstable();
        assert_eq!(drained, ["a", "b"]);
        assert!(pulls.is_empty());
        assert_eq!(pulls.next_deadline(), None);
        assert!(pulls.on_arrival("T", 0, 1, 0).is_empty());
        pulls.hold(pull("T", 0, 0, TagFilter::All), "c").unwrap();
        assert_eq!(pulls.on_arrival("T", 0, 1, 0), ["c"]);
    }

    #[test]
    fn thousands_of_pulls_of_one_connection_on_one_queue_are_released_in_one_pass() {
        const PULLS: usize = 20_000;
        let config = WheelConfig {
            capacity: PULLS,
            ..WheelConfig::default()
        };
        let mut pulls: HoldRegistry<usize> = HoldRegistry::new(config, 0).unwrap();
        for payload in 0..PULLS {
            pulls
                .hold(pull("T", 0, 0, TagFilter::All), payload)
                .unwrap();
        }
        let released = pulls.on_arrival("T", 0, 1, 0);
        assert!(released.iter().copied().eq(0..PULLS), "all, in hold order");
        for payload in 0..PULLS {
            pulls
                .hold(pull("T", 0, 0, TagFilter::All), payload)
                .unwrap();
        }
        assert_eq!(pulls.expire(15_000).len(), PULLS);
        for payload in 0..PULLS {
            pulls
                .hold(pull("T", 0, 0, TagFilter::All), payload)
                .unwrap();
        }
        assert_eq!(pulls.drop_connection(1), PULLS);
        pulls.assert_invariants();
        assert!(pulls.is_empty());
    }

    /// One connection's 4,000 pulls on as many queues expire a few at a time while the client
    /// holds each again (as an idle consumer does): its key list stays within twice its held
    /// pulls plus the slack, and a close still forgets exactly the held ones.
    #[test]
    fn a_connection_list_stays_bounded_while_its_pulls_expire_a_few_at_a_time() {
        const PULLS: u64 = 4_000;
        let config = WheelConfig {
            capacity: 2 * PULLS as usize,
            ..WheelConfig::default()
        };
        let mut pulls: HoldRegistry<u64> = HoldRegistry::new(config, 0).unwrap();
        let topics: Vec<String> = (0..PULLS).map(|q| format!("T{q}")).collect();
        let hold = |pulls: &mut HoldRegistry<u64>, q: u64, deadline_ms: u64| {
            let mut held = pull(&topics[q as usize], 0, 0, TagFilter::All);
            held.deadline_ms = deadline_ms;
            pulls.hold(held, q).unwrap();
        };
        for q in 0..PULLS {
            hold(&mut pulls, q, 1_000 + q);
        }
        for now_ms in 1_000..1_000 + 2 * PULLS {
            for q in pulls.expire(now_ms) {
                hold(&mut pulls, q, now_ms + PULLS);
            }
            if now_ms % 500 == 0 {
                pulls.assert_invariants();
            }
        }
        pulls.assert_invariants();
        assert_eq!(pulls.drop_connection(1), PULLS as usize);
        assert!(pulls.is_empty());
    }

    #[test]
    fn empty_queue_slots_and_connection_lists_stay_bounded_under_churn() {
        let mut pulls = registry(4);
        let topics: Vec<String> = (0..3 * EMPTY_KEPT).map(|i| format!("topic-{i}")).collect();
        for (i, topic) in topics.iter().enumerate() {
            let hold = PullHold {
                connection_id: i as u64,
                ..pull(topic, 0, 0, TagFilter::All)
            };
            pulls.hold(hold, "p").unwrap();
            assert_eq!(pulls.on_arrival(topic, 0, 1, 0), ["p"]);
            pulls.assert_invariants();
        }
        assert!(
            pulls.queues.len() <= EMPTY_KEPT + 1,
            "freed slots are reused"
        );
    }

    #[test]
    fn the_hold_deadline_is_the_suspend_timeout_capped_at_the_maximum() {
        assert_eq!(hold_deadline_ms(1_000, 5_000, DEFAULT_MAX_HOLD_MS), 6_000);
        assert_eq!(hold_deadline_ms(1_000, 30_000, DEFAULT_MAX_HOLD_MS), 16_000);
        assert_eq!(hold_deadline_ms(1_000, -1, DEFAULT_MAX_HOLD_MS), 1_000);
        assert_eq!(
            hold_deadline_ms(u64::MAX - 1, 5_000, DEFAULT_MAX_HOLD_MS),
            u64::MAX
        );
    }

    /// xorshift64*: a fixed-seed generator, so a failure replays exactly.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, bound: u64) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % bound
        }
    }

    /// A held pull as the model keeps it.
    #[derive(Debug, Clone)]
    struct ModelPull {
        topic: &'static str,
        queue_id: i32,
        offset: i64,
        filter: TagFilter,
        deadline_ms: u64,
        connection_id: u64,
        payload: u32,
    }

    /// The registry against a plain list in hold order under random hold / arrival / expiry
    /// / connection close / cancel, including a full registry.
    #[test]
    fn the_registry_behaves_like_a_plain_list_under_random_operations() {
        const TOPICS: [&str; 3] = ["A", "B", "%RETRY%g"];
        let mut rng = Rng(0x5EED_0000_0000_0004);
        let config = WheelConfig {
            tick_ms: 10,
            slot_count: 16,
            capacity: 48,
        };
        let mut pulls: HoldRegistry<u32> = HoldRegistry::new(config, 0).unwrap();
        let mut model: Vec<ModelPull> = Vec::new();
        let mut ids: Vec<(HoldId, u32)> = Vec::new();
        let mut now_ms = 0;
        let mut next_payload = 0;
        let mut released_by_arrival = 0;
        for _ in 0..20_000 {
            match rng.below(12) {
                0..=4 => {
                    let filter = match rng.below(3) {
                        0 => TagFilter::All,
                        _ => TagFilter::from_subscription("tags", [rng.below(4) as i32]),
                    };
                    let held = ModelPull {
                        topic: TOPICS[rng.below(3) as usize],
                        queue_id: rng.below(3) as i32,
                        offset: rng.below(10) as i64,
                        filter,
                        deadline_ms: now_ms + rng.below(400),
                        connection_id: rng.below(5),
                        payload: next_payload,
                    };
                    next_payload += 1;
                    let hold = PullHold {
                        topic: held.topic,
                        queue_id: held.queue_id,
                        offset: held.offset,
                        filter: held.filter.clone(),
                        deadline_ms: held.deadline_ms,
                        connection_id: held.connection_id,
                    };
                    match pulls.hold(hold, held.payload) {
                        Ok(id) => {
                            ids.push((id, held.payload));
                            model.push(held);
                        }
                        Err(refused) => {
                            assert_eq!(model.len(), 48);
                            assert_eq!(refused.into_payload(), held.payload);
                        }
                    }
                }
                5..=7 => {
                    let topic = TOPICS[rng.below(3) as usize];
                    let queue_id = rng.below(3) as i32;
                    let max_offset = rng.below(12) as i64;
                    let tags_code = rng.below(4) as i64;
                    let (woken, kept): (Vec<_>, Vec<_>) = model.drain(..).partition(|p| {
                        p.topic == topic
                            && p.queue_id == queue_id
                            && p.offset < max_offset
                            && p.filter.matches(tags_code)
                    });
                    model = kept;
                    let expected: Vec<u32> = woken.iter().map(|p| p.payload).collect();
                    released_by_arrival += expected.len();
                    assert_eq!(
                        pulls.on_arrival(topic, queue_id, max_offset, tags_code),
                        expected
                    );
                }
                8 | 9 => {
                    now_ms += rng.below(60);
                    let (mut due, kept): (Vec<_>, Vec<_>) =
                        model.drain(..).partition(|p| p.deadline_ms <= now_ms);
                    model = kept;
                    // Deadline order; equal deadlines in hold order (payloads rise with it).
                    due.sort_by_key(|p| (p.deadline_ms, p.payload));
                    let expected: Vec<u32> = due.iter().map(|p| p.payload).collect();
                    assert_eq!(pulls.expire(now_ms), expected);
                }
                10 => {
                    let connection_id = rng.below(5);
                    let before = model.len();
                    model.retain(|p| p.connection_id != connection_id);
                    assert_eq!(pulls.drop_connection(connection_id), before - model.len());
                }
                _ => {
                    if !ids.is_empty() {
                        let (id, payload) = ids.swap_remove(rng.below(ids.len() as u64) as usize);
                        let was_held = model.iter().position(|p| p.payload == payload);
                        assert_eq!(
                            pulls.cancel(id),
                            was_held.map(|at| model.remove(at).payload)
                        );
                    }
                }
            }
            pulls.assert_invariants();
            assert_eq!(pulls.len(), model.len());
            assert_eq!(
                pulls.next_deadline(),
                model.iter().map(|p| p.deadline_ms).min()
            );
        }
        assert!(released_by_arrival > 1_000, "the run exercised arrivals");
        let mut rest: Vec<u32> = model.iter().map(|p| p.payload).collect();
        let mut drained = pulls.drain_all();
        rest.sort_unstable();
        drained.sort_unstable();
        assert_eq!(drained, rest);
    }
}

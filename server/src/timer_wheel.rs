//! A hashed timer wheel: the per-shard clock for held pulls (design.md §6). Pure: time is
//! passed in as milliseconds from an arbitrary epoch and never read from the clock here, so
//! the wheel is unit-testable and deterministic.
//!
//! **Shape.** `slot_count` slots of `tick_ms` each (default 10 ms × 2048 = 20.48 s, more than
//! the 15 s default hold). A timer lives in the slot of its *tick*, `deadline_ms / tick_ms`,
//! modulo `slot_count`; the timers of one slot form an intrusive doubly linked list threaded
//! through a slab, so insert and cancel are O(1) and allocate nothing once the slab has grown.
//! A timer further away than one revolution shares a slot with nearer ones and is skipped
//! (its absolute tick is stored) until its own revolution comes: no rounds counter to keep.
//! A bitmap of non-empty slots lets [`TimerWheel::next_deadline`] skip empty slots by words.
//!
//! **Keys.** A [`TimerKey`] is a slab index plus that slab entry's generation, which grows
//! every time the entry is freed. A key that outlived its timer (fired or cancelled) no longer
//! matches and cancels nothing, even after the index is reused (a `u64` generation never wraps
//! in practice).
//!
//! **Invariants.**
//! - `cursor_tick` is the tick of the latest `now_ms` seen; every ticking slot before it was
//!   fully processed, and the cursor's own slot may still hold timers due later in that tick.
//! - Every pending timer's stored tick is `≥ cursor_tick` (a deadline already in the past at
//!   insert is stored at the cursor, so it fires at the next [`TimerWheel::advance`]).
//! - A timer fires at the first advance with `now_ms ≥ deadline_ms`, never earlier: firing
//!   compares milliseconds, ticks only choose which slots to look at.
//! - `len ≤ capacity`; a slot's bit is set exactly when its list is non-empty.
//!
//! Nothing here survives a crash, by design: held pulls belong to connections, which a
//! restart closes anyway.

use std::fmt;

/// Default tick: the granularity at which the shard looks for due timers.
pub const DEFAULT_TICK_MS: u64 = 10;
/// Default slot count: 2048 × 10 ms = 20.48 s, one revolution covers the 15 s default hold.
pub const DEFAULT_SLOT_COUNT: usize = 2048;
/// Default bound on pending timers per wheel (per shard).
pub const DEFAULT_CAPACITY: usize = 65_536;

/// Shape and bound of a [`TimerWheel`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WheelConfig {
    /// Width of one slot in milliseconds (≥ 1).
    pub tick_ms: u64,
    /// Number of slots (≥ 1). `tick_ms × slot_count` should exceed the usual timeout so a
    /// timer is looked at about once.
    pub slot_count: usize,
    /// Most timers pending at once; [`TimerWheel::insert`] refuses beyond it.
    pub capacity: usize,
}

impl Default for WheelConfig {
    fn default() -> Self {
        Self {
            tick_ms: DEFAULT_TICK_MS,
            slot_count: DEFAULT_SLOT_COUNT,
            capacity: DEFAULT_CAPACITY,
        }
    }
}

/// A [`WheelConfig`] that cannot make a wheel.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WheelConfigError {
    /// `tick_ms` was 0.
    #[error("timer wheel tick must be at least 1 ms")]
    ZeroTick,
    /// `slot_count` was 0.
    #[error("timer wheel needs at least one slot")]
    ZeroSlots,
    /// `capacity` does not fit the `u32` slab index of a [`TimerKey`].
    #[error("timer wheel capacity {capacity} exceeds the {max} timers a key can address")]
    CapacityTooLarge {
        /// The capacity asked for.
        capacity: usize,
        /// The largest capacity allowed.
        max: usize,
    },
}

/// [`TimerWheel::insert`] on a full wheel; gives the value back so the caller can act on it
/// at once (for a pull: answer it instead of holding it).
#[derive(thiserror::Error)]
#[error("timer wheel full: {capacity} timers pending")]
pub struct WheelFull<T> {
    /// The wheel's capacity.
    pub capacity: usize,
    /// The value that was not inserted.
    pub value: T,
}

impl<T> fmt::Debug for WheelFull<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WheelFull")
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

/// Names one pending timer. Stale once the timer fired or was cancelled: it then matches
/// nothing, even if its slab slot holds a newer timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimerKey {
    index: u32,
    generation: u64,
}

/// Link value meaning "no entry".
const NIL: u32 = u32::MAX;
/// Bits per word of the occupancy bitmap.
const WORD_BITS: usize = 64;

#[derive(Debug)]
struct Pending<T> {
    deadline_ms: u64,
    /// The tick whose slot holds this timer: `max(deadline_ms / tick_ms, cursor at insert)`.
    tick: u64,
    /// Insertion order, to fire timers with equal deadlines in the order they were set.
    seq: u64,
    prev: u32,
    next: u32,
    value: T,
}

#[derive(Debug)]
enum State<T> {
    Pending(Pending<T>),
    Free { next_free: u32 },
}

#[derive(Debug)]
struct Entry<T> {
    generation: u64,
    state: State<T>,
}

/// A bounded hashed timer wheel holding one `T` per timer. See the module docs.
pub struct TimerWheel<T> {
    tick_ms: u64,
    /// Head entry of each slot's list, or [`NIL`].
    heads: Box<[u32]>,
    /// Bit `s` set ⇔ `heads[s] != NIL`.
    occupied: Box<[u64]>,
    entries: Vec<Entry<T>>,
    free_head: u32,
    len: usize,
    capacity: usize,
    cursor_tick: u64,
    now_ms: u64,
    next_seq: u64,
}

impl<T> fmt::Debug for TimerWheel<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimerWheel")
            .field("tick_ms", &self.tick_ms)
            .field("slot_count", &self.heads.len())
            .field("len", &self.len)
            .field("capacity", &self.capacity)
            .field("now_ms", &self.now_ms)
            .finish_non_exhaustive()
    }
}

impl<T> TimerWheel<T> {
    /// An empty wheel whose clock starts at `now_ms`.
    pub fn new(config: WheelConfig, now_ms: u64) -> Result<Self, WheelConfigError> {
        if config.tick_ms == 0 {
            return Err(WheelConfigError::ZeroTick);
        }
        if config.slot_count == 0 {
            return Err(WheelConfigError::ZeroSlots);
        }
        // Index NIL is reserved as the end-of-list marker.
        let max = NIL as usize;
        if config.capacity > max {
            return Err(WheelConfigError::CapacityTooLarge {
                capacity: config.capacity,
                max,
            });
        }
        Ok(Self {
            tick_ms: config.tick_ms,
            heads: vec![NIL; config.slot_count].into_boxed_slice(),
            occupied: vec![0; config.slot_count.div_ceil(WORD_BITS)].into_boxed_slice(),
            entries: Vec::new(),
            free_head: NIL,
            len: 0,
            capacity: config.capacity,
            cursor_tick: now_ms / config.tick_ms,
            now_ms,
            next_seq: 0,
        })
    }

    /// Pending timers.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no timer is pending.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Most timers pending at once.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The latest time passed to [`TimerWheel::advance`] (or to [`TimerWheel::new`]).
    pub fn now_ms(&self) -> u64 {
        self.now_ms
    }

    /// Sets a timer firing at `deadline_ms` (a deadline not after the wheel's current time
    /// fires at the next advance). O(1). Refused, with the value given back, when
    /// [`TimerWheel::capacity`] timers are pending.
    pub fn insert(&mut self, deadline_ms: u64, value: T) -> Result<TimerKey, WheelFull<T>> {
        if self.len >= self.capacity {
            return Err(WheelFull {
                capacity: self.capacity,
                value,
            });
        }
        let tick = (deadline_ms / self.tick_ms).max(self.cursor_tick);
        let seq = self.next_seq;
        self.next_seq += 1;
        let pending = Pending {
            deadline_ms,
            tick,
            seq,
            prev: NIL,
            next: NIL,
            value,
        };
        let index = if self.free_head == NIL {
            // len < capacity ≤ NIL and no free entry, so entries.len() == len < NIL.
            let index = self.entries.len();
            self.entries.push(Entry {
                generation: 0,
                state: State::Pending(pending),
            });
            index as u32
        } else {
            let index = self.free_head;
            let Some(entry) = self.entries.get_mut(index as usize) else {
                unreachable!("free list points past the slab");
            };
            let State::Free { next_free } = entry.state else {
                unreachable!("free list points at a pending timer");
            };
            self.free_head = next_free;
            entry.state = State::Pending(pending);
            index
        };
        self.link(index, tick);
        self.len += 1;
        let generation = self.entry(index).generation;
        Ok(TimerKey { index, generation })
    }

    /// Removes a pending timer and returns its value; `None` for a key that fired, was
    /// cancelled, or was never this wheel's. O(1).
    pub fn cancel(&mut self, key: TimerKey) -> Option<T> {
        self.get(key)?;
        Some(self.remove(key.index).value)
    }

    /// The value of a pending timer.
    pub fn get(&self, key: TimerKey) -> Option<&T> {
        match self.entries.get(key.index as usize) {
            Some(Entry {
                generation,
                state: State::Pending(pending),
            }) if *generation == key.generation => Some(&pending.value),
            _ => None,
        }
    }

    /// The value of a pending timer, mutably.
    pub fn get_mut(&mut self, key: TimerKey) -> Option<&mut T> {
        match self.entries.get_mut(key.index as usize) {
            Some(Entry {
                generation,
                state: State::Pending(pending),
            }) if *generation == key.generation => Some(&mut pending.value),
            _ => None,
        }
    }

    /// Moves the clock to `now_ms` and returns every timer with `deadline_ms ≤ now_ms`,
    /// in deadline order (equal deadlines in insertion order). A `now_ms` earlier than the
    /// wheel's time is taken as the wheel's time: the clock never goes back. Looks at most
    /// one revolution of slots however far the clock jumps.
    pub fn advance(&mut self, now_ms: u64) -> Vec<T> {
        self.advance_keyed(now_ms)
            .into_iter()
            .map(|(_, value)| value)
            .collect()
    }

    /// [`TimerWheel::advance`], with the key each fired timer had.
    pub fn advance_keyed(&mut self, now_ms: u64) -> Vec<(TimerKey, T)> {
        let now_ms = now_ms.max(self.now_ms);
        let now_tick = now_ms / self.tick_ms;
        self.now_ms = now_ms;
        if self.len == 0 {
            self.cursor_tick = now_tick;
            return Vec::new();
        }
        let slot_count = self.heads.len();
        // Ticks cursor..=now_tick; beyond one revolution every slot is looked at once.
        let ticks = now_tick - self.cursor_tick;
        let slots_to_visit = usize::try_from(ticks)
            .ok()
            .and_then(|t| t.checked_add(1))
            .map_or(slot_count, |t| t.min(slot_count));
        let first_slot = self.slot_of(self.cursor_tick);
        let mut fired = Vec::new();
        for step in 0..slots_to_visit {
            let slot = (first_slot + step) % slot_count;
            let mut index = self.heads.get(slot).copied().unwrap_or(NIL);
            while index != NIL {
                let (next, due) = match &self.entry(index).state {
                    State::Pending(p) => (p.next, p.deadline_ms <= now_ms),
                    State::Free { .. } => unreachable!("slot list holds a free entry"),
                };
                if due {
                    let generation = self.entry(index).generation;
                    let pending = self.remove(index);
                    let key = TimerKey { index, generation };
                    fired.push((pending.deadline_ms, pending.seq, key, pending.value));
                }
                index = next;
            }
        }
        self.cursor_tick = now_tick;
        fired.sort_unstable_by_key(|&(deadline_ms, seq, _, _)| (deadline_ms, seq));
        fired
            .into_iter()
            .map(|(_, _, key, value)| (key, value))
            .collect()
    }

    /// The earliest pending deadline (possibly already past), so the shard knows how long
    /// it may park; `None` when nothing is pending. Skips empty slots a word at a time; only
    /// when every timer is more than one revolution away does it look at them all.
    pub fn next_deadline(&self) -> Option<u64> {
        if self.len == 0 {
            return None;
        }
        let slot_count = self.heads.len();
        let first_slot = self.slot_of(self.cursor_tick);
        let mut step = 0;
        while let Some(found) = self.next_occupied_step(first_slot, step) {
            // The slot `found` steps ahead of the cursor serves tick cursor + found in this
            // revolution; its timers of exactly that tick are due before any later tick's
            // (only the cursor's own tick can hold deadlines from before it).
            let tick = self.cursor_tick + found as u64;
            let slot = (first_slot + found) % slot_count;
            let earliest = self
                .slot_timers(slot)
                .filter(|p| p.tick == tick)
                .map(|p| p.deadline_ms)
                .min();
            if earliest.is_some() {
                return earliest;
            }
            step = found + 1;
        }
        // Every timer is at least one revolution away.
        self.entries
            .iter()
            .filter_map(|e| match &e.state {
                State::Pending(p) => Some(p.deadline_ms),
                State::Free { .. } => None,
            })
            .min()
    }

    /// Removes every pending timer, returning them in deadline order (for shutdown).
    pub fn drain(&mut self) -> Vec<T> {
        let mut all: Vec<(u64, u64, T)> = Vec::with_capacity(self.len);
        for entry in std::mem::take(&mut self.entries) {
            if let State::Pending(p) = entry.state {
                all.push((p.deadline_ms, p.seq, p.value));
            }
        }
        self.heads.fill(NIL);
        self.occupied.fill(0);
        self.free_head = NIL;
        self.len = 0;
        all.sort_unstable_by_key(|&(deadline_ms, seq, _)| (deadline_ms, seq));
        all.into_iter().map(|(_, _, value)| value).collect()
    }

    fn slot_of(&self, tick: u64) -> usize {
        // The remainder is below slot_count, a usize.
        (tick % self.heads.len() as u64) as usize
    }

    fn entry(&self, index: u32) -> &Entry<T> {
        match self.entries.get(index as usize) {
            Some(entry) => entry,
            None => unreachable!("timer index {index} past the slab"),
        }
    }

    fn pending_mut(&mut self, index: u32) -> &mut Pending<T> {
        match self.entries.get_mut(index as usize) {
            Some(Entry {
                state: State::Pending(pending),
                ..
            }) => pending,
            _ => unreachable!("timer index {index} is not pending"),
        }
    }

    fn slot_timers(&self, slot: usize) -> impl Iterator<Item = &Pending<T>> + '_ {
        let mut index = self.heads.get(slot).copied().unwrap_or(NIL);
        std::iter::from_fn(move || {
            if index == NIL {
                return None;
            }
            match &self.entry(index).state {
                State::Pending(p) => {
                    index = p.next;
                    Some(p)
                }
                State::Free { .. } => unreachable!("slot list holds a free entry"),
            }
        })
    }

    /// Pushes pending entry `index` at the head of `tick`'s slot.
    fn link(&mut self, index: u32, tick: u64) {
        let slot = self.slot_of(tick);
        let old_head = self.heads.get(slot).copied().unwrap_or(NIL);
        {
            let pending = self.pending_mut(index);
            pending.prev = NIL;
            pending.next = old_head;
        }
        if old_head != NIL {
            self.pending_mut(old_head).prev = index;
        }
        if let Some(head) = self.heads.get_mut(slot) {
            *head = index;
        }
        self.set_occupied(slot, true);
    }

    /// Unlinks pending entry `index`, frees it (bumping its generation) and returns it.
    fn remove(&mut self, index: u32) -> Pending<T> {
        let (prev, next, tick) = {
            let p = self.pending_mut(index);
            (p.prev, p.next, p.tick)
        };
        if prev == NIL {
            let slot = self.slot_of(tick);
            if let Some(head) = self.heads.get_mut(slot) {
                debug_assert_eq!(*head, index, "a list head must have no predecessor");
                *head = next;
            }
            if next == NIL {
                self.set_occupied(slot, false);
            }
        } else {
            self.pending_mut(prev).next = next;
        }
        if next != NIL {
            self.pending_mut(next).prev = prev;
        }
        let free_head = self.free_head;
        let Some(entry) = self.entries.get_mut(index as usize) else {
            unreachable!("timer index {index} past the slab");
        };
        entry.generation += 1;
        let state = std::mem::replace(
            &mut entry.state,
            State::Free {
                next_free: free_head,
            },
        );
        self.free_head = index;
        self.len -= 1;
        match state {
            State::Pending(pending) => pending,
            State::Free { .. } => unreachable!("removed a free entry"),
        }
    }

    fn set_occupied(&mut self, slot: usize, occupied: bool) {
        let bit = 1u64 << (slot % WORD_BITS);
        if let Some(word) = self.occupied.get_mut(slot / WORD_BITS) {
            if occupied {
                *word |= bit;
            } else {
                *word &= !bit;
            }
        }
    }

    /// The smallest `s ≥ from_step`, `s < slot_count`, such that the slot `s` steps after
    /// `first_slot` (wrapping) is non-empty.
    fn next_occupied_step(&self, first_slot: usize, from_step: usize) -> Option<usize> {
        let slot_count = self.heads.len();
        if from_step >= slot_count {
            return None;
        }
        let start = (first_slot + from_step) % slot_count;
        // Steps run over slots [first_slot, slot_count) and then [0, first_slot).
        let wrapped_step = |slot: usize| slot + slot_count - first_slot;
        if start >= first_slot {
            if let Some(slot) = self.next_set_bit(start, slot_count) {
                return Some(slot - first_slot);
            }
            return self.next_set_bit(0, first_slot).map(wrapped_step);
        }
        self.next_set_bit(start, first_slot).map(wrapped_step)
    }

    /// The first set bit in `[from, to)`.
    fn next_set_bit(&self, from: usize, to: usize) -> Option<usize> {
        let mut word_index = from / WORD_BITS;
        let mut mask = u64::MAX << (from % WORD_BITS);
        while word_index * WORD_BITS < to {
            let word = self.occupied.get(word_index).copied().unwrap_or(0) & mask;
            if word != 0 {
                let bit = word_index * WORD_BITS + word.trailing_zeros() as usize;
                return (bit < to).then_some(bit);
            }
            word_index += 1;
            mask = u64::MAX;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 10 ms × 8 slots: one revolution is 80 ms, small enough to cross in tests.
    fn small_wheel<T>(capacity: usize, now_ms: u64) -> TimerWheel<T> {
        let config = WheelConfig {
            tick_ms: 10,
            slot_count: 8,
            capacity,
        };
        TimerWheel::new(config, now_ms).unwrap()
    }

    #[test]
    fn a_timer_fires_at_its_deadline_and_not_a_millisecond_before() {
        let mut wheel = small_wheel(16, 1_000);
        wheel.insert(1_015, "a").unwrap();
        assert!(wheel.advance(1_010).is_empty());
        assert!(wheel.advance(1_014).is_empty());
        assert_eq!(wheel.advance(1_015), ["a"]);
        assert!(wheel.is_empty());
    }

    #[test]
    fn a_late_advance_fires_a_timer_once() {
        let mut wheel = small_wheel(16, 0);
        wheel.insert(25, 1).unwrap();
        assert_eq!(wheel.advance(47), [1]);
        assert!(wheel.advance(60).is_empty());
    }

    #[test]
    fn many_timers_in_one_slot_fire_in_deadline_then_insertion_order() {
        let mut wheel = small_wheel(64, 0);
        // All in tick 3 (30..40 ms), plus one 8 ticks later sharing the slot.
        for (deadline_ms, value) in [(35, "c"), (31, "a"), (35, "d"), (110, "far"), (33, "b")] {
            wheel.insert(deadline_ms, value).unwrap();
        }
        assert!(wheel.advance(30).is_empty());
        assert_eq!(wheel.advance(33), ["a", "b"]);
        assert_eq!(wheel.advance(39), ["c", "d"]);
        assert_eq!(wheel.len(), 1, "the timer one revolution later stays");
        assert_eq!(wheel.advance(110), ["far"]);
    }

    #[test]
    fn a_timer_several_revolutions_away_fires_only_at_its_deadline() {
        let mut wheel = small_wheel(16, 0);
        wheel.insert(255, "far").unwrap();
        let mut now_ms = 0;
        while now_ms < 250 {
            now_ms += 10;
            assert!(wheel.advance(now_ms).is_empty(), "fired early at {now_ms}");
        }
        assert!(wheel.advance(254).is_empty());
        assert_eq!(wheel.advance(255), ["far"]);
    }

    #[test]
    fn a_jump_over_many_revolutions_fires_exactly_the_due_timers() {
        let mut wheel = small_wheel(16, 0);
        for deadline_ms in [5, 79, 80, 400, 1_000, 1_001] {
            wheel.insert(deadline_ms, deadline_ms).unwrap();
        }
        assert_eq!(wheel.advance(1_000), [5, 79, 80, 400, 1_000]);
        assert_eq!(wheel.advance(1_001), [1_001]);
    }

    #[test]
    fn a_deadline_already_past_fires_at_the_next_advance() {
        let mut wheel = small_wheel(16, 500);
        wheel.insert(100, "past").unwrap();
        wheel.insert(500, "now").unwrap();
        assert_eq!(wheel.next_deadline(), Some(100));
        assert_eq!(wheel.advance(500), ["past", "now"]);
    }

    #[test]
    fn the_clock_never_goes_back() {
        let mut wheel = small_wheel(16, 0);
        assert!(wheel.advance(100).is_empty());
        wheel.insert(90, "x").unwrap();
        assert_eq!(
            wheel.advance(50),
            ["x"],
            "now 50 is taken as the wheel's 100"
        );
        assert_eq!(wheel.now_ms(), 100);
    }

    #[test]
    fn a_cancelled_timer_returns_its_value_and_never_fires() {
        let mut wheel = small_wheel(16, 0);
        let key = wheel.insert(20, "gone").unwrap();
        wheel.insert(20, "stays").unwrap();
        assert_eq!(wheel.cancel(key), Some("gone"));
        assert_eq!(wheel.len(), 1);
        assert_eq!(wheel.advance(100), ["stays"]);
    }

    #[test]
    fn a_stale_key_cancels_nothing_even_after_its_entry_is_reused() {
        let mut wheel = small_wheel(1, 0);
        let fired_key = wheel.insert(10, "first").unwrap();
        assert_eq!(wheel.advance(10), ["first"]);
        let cancelled_key = wheel.insert(50, "second").unwrap();
        assert_eq!(wheel.cancel(cancelled_key), Some("second"));
        let live_key = wheel.insert(60, "third").unwrap();

        assert_eq!(wheel.cancel(fired_key), None);
        assert_eq!(wheel.cancel(cancelled_key), None);
        assert_eq!(wheel.get(fired_key), None);
        assert_eq!(wheel.get(live_key), Some(&"third"));
        assert_eq!(wheel.len(), 1);
    }

    #[test]
    fn a_full_wheel_refuses_and_gives_the_value_back() {
        let mut wheel = small_wheel(2, 0);
        let first = wheel.insert(10, "a").unwrap();
        wheel.insert(10, "b").unwrap();
        let full = wheel.insert(10, "c").unwrap_err();
        assert_eq!((full.capacity, full.value), (2, "c"));
        assert_eq!(wheel.len(), 2);
        wheel.cancel(first).unwrap();
        assert!(wheel.insert(10, "c").is_ok(), "room again after a cancel");
    }

    #[test]
    fn next_deadline_is_the_earliest_pending_deadline() {
        let mut wheel = small_wheel(16, 0);
        assert_eq!(wheel.next_deadline(), None);
        wheel.insert(500, 500).unwrap(); // beyond one revolution
        assert_eq!(wheel.next_deadline(), Some(500));
        wheel.insert(95, 95).unwrap(); // slot of tick 9 = slot 1, one revolution later than 15
        let near = wheel.insert(15, 15).unwrap();
        assert_eq!(wheel.next_deadline(), Some(15));
        wheel.cancel(near).unwrap();
        assert_eq!(wheel.next_deadline(), Some(95));
        assert_eq!(wheel.advance(95), [95]);
        assert_eq!(wheel.next_deadline(), Some(500));
    }

    #[test]
    fn drain_returns_every_pending_timer_in_deadline_order() {
        let mut wheel = small_wheel(16, 0);
        for deadline_ms in [300, 10, 75] {
            wheel.insert(deadline_ms, deadline_ms).unwrap();
        }
        assert_eq!(wheel.drain(), [10, 75, 300]);
        assert!(wheel.is_empty());
        assert_eq!(wheel.next_deadline(), None);
        wheel.insert(20, 20).unwrap();
        assert_eq!(wheel.advance(20), [20], "the wheel works after a drain");
    }

    #[test]
    fn a_config_that_cannot_make_a_wheel_is_refused() {
        let base = WheelConfig::default();
        let zero_tick = WheelConfig { tick_ms: 0, ..base };
        let zero_slots = WheelConfig {
            slot_count: 0,
            ..base
        };
        let huge = WheelConfig {
            capacity: usize::MAX,
            ..base
        };
        assert_eq!(
            TimerWheel::<()>::new(zero_tick, 0).unwrap_err(),
            WheelConfigError::ZeroTick
        );
        assert_eq!(
            TimerWheel::<()>::new(zero_slots, 0).unwrap_err(),
            WheelConfigError::ZeroSlots
        );
        assert!(matches!(
            TimerWheel::<()>::new(huge, 0).unwrap_err(),
            WheelConfigError::CapacityTooLarge { .. }
        ));
    }

    #[test]
    fn the_default_wheel_covers_the_default_15_s_hold_in_one_revolution() {
        let config = WheelConfig::default();
        assert!(config.tick_ms * config.slot_count as u64 > 15_000);
    }

    /// xorshift64*: a fixed-seed generator, so a failure replays exactly.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }

        fn below(&mut self, bound: u64) -> u64 {
            self.next() % bound
        }
    }

    /// The wheel against a plain list under random insert / cancel / advance, with slot
    /// counts that are and are not powers of two and clock jumps within and beyond one
    /// revolution.
    #[test]
    fn the_wheel_behaves_like_a_sorted_list_under_random_operations() {
        for (seed, slot_count) in [(1_u64, 8_usize), (2, 7), (3, 64), (4, 1), (5, 100)] {
            let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ seed);
            let config = WheelConfig {
                tick_ms: 10,
                slot_count,
                capacity: 64,
            };
            let revolution_ms = 10 * slot_count as u64;
            let start_ms = rng.below(1_000);
            let mut wheel = TimerWheel::new(config, start_ms).unwrap();
            // (deadline_ms, insertion number, key): the model's pending timers.
            let mut model: Vec<(u64, u64, TimerKey)> = Vec::new();
            let mut dead_keys: Vec<TimerKey> = Vec::new();
            let mut now_ms = start_ms;
            let mut inserted = 0_u64;
            for _ in 0..20_000 {
                match rng.below(10) {
                    0..=4 => {
                        let deadline_ms =
                            (now_ms + rng.below(3 * revolution_ms + 50)).saturating_sub(50);
                        match wheel.insert(deadline_ms, inserted) {
                            Ok(key) => model.push((deadline_ms, inserted, key)),
                            Err(full) => {
                                assert_eq!(model.len(), 64);
                                assert_eq!(full.value, inserted);
                            }
                        }
                        inserted += 1;
                    }
                    5 | 6 => {
                        if !model.is_empty() && rng.below(4) != 0 {
                            let at = rng.below(model.len() as u64) as usize;
                            let (_, value, key) = model.remove(at);
                            assert_eq!(wheel.cancel(key), Some(value));
                            dead_keys.push(key);
                        } else if !dead_keys.is_empty() {
                            let at = rng.below(dead_keys.len() as u64) as usize;
                            assert_eq!(wheel.cancel(dead_keys[at]), None);
                        }
                    }
                    _ => {
                        now_ms += match rng.below(20) {
                            0 => rng.below(5 * revolution_ms),
                            _ => rng.below(25),
                        };
                        let fired = wheel.advance_keyed(now_ms);
                        let mut due: Vec<_> = model
                            .iter()
                            .copied()
                            .filter(|&(deadline_ms, _, _)| deadline_ms <= now_ms)
                            .collect();
                        due.sort_unstable_by_key(|&(deadline_ms, value, _)| (deadline_ms, value));
                        model.retain(|&(deadline_ms, _, _)| deadline_ms > now_ms);
                        let expected: Vec<_> =
                            due.iter().map(|&(_, value, key)| (key, value)).collect();
                        assert_eq!(fired, expected, "seed {seed}, now {now_ms}");
                        dead_keys.extend(due.iter().map(|&(_, _, key)| key));
                    }
                }
                assert_eq!(wheel.len(), model.len());
                assert_eq!(
                    wheel.next_deadline(),
                    model.iter().map(|&(deadline_ms, _, _)| deadline_ms).min(),
                    "seed {seed}, now {now_ms}"
                );
            }
            assert!(inserted > 5_000, "the run exercised the wheel");
        }
    }
}

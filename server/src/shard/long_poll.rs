//! Long polling on one shard (protocol.md §5, design.md §6), all of it: a PULL that finds
//! nothing new is held here until a matching message is appended to its queue
//! ([`LongPoll::on_arrival`], called by the store's arrival listener in the same loop turn
//! as the write, after the fdatasync with `--flush sync`), its hold expires (the shard's
//! one expiry task, [`LongPoll::run_expiry`], driven by the timer wheel), its connection
//! closes ([`LongPoll::drop_connection`]), or the broker shuts down
//! ([`LongPoll::release_all`]).
//!
//! Deadlines are on the monotonic clock ([`crate::clock`]): a wall-clock step neither fires
//! a hold early nor stalls it. A held pull arms no timer of its own: the wheel in
//! [`HoldRegistry`] is the only one, and the expiry task sleeps until its earliest deadline
//! (at most [`MAX_EXPIRY_SLEEP_MS`]) or until a new hold may expire sooner.
//!
//! **Expiry in steps.** Deadlines are served at the next multiple of [`EXPIRY_STEP_MS`] of
//! the monotonic clock, so a hold ends up to one step late. Idle consumers re-pull as their
//! holds end, spread over the 15 s: served one by one, each end is a wake-up of the shard
//! (tens of µs on these VMs), and the re-pulls come back one by one too. In steps, the holds
//! ending within one are answered together and their re-pulls arrive together. (RocketMQ
//! looks at its held pulls every 5 s under long polling.)
//!
//! Nothing here survives a crash: held pulls belong to connections, which a restart closes.

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};
use std::time::Duration;

use futures_channel::oneshot;
use futures_util::future::select;
use ringmq_engine::store::Arrival;

use super::hold_registry::{hold_deadline_ms, HoldId, HoldRegistry, PullHold};
use crate::clock::ClockRef;
use crate::notify::LocalNotify;
use crate::timer_wheel::{WheelConfig, WheelConfigError};

/// Longest the expiry task sleeps without looking at the wheel.
const MAX_EXPIRY_SLEEP_MS: u64 = 1_000;

/// Holds end at multiples of this many ms of the monotonic clock (see the module docs).
pub const EXPIRY_STEP_MS: u64 = 100;

/// When the expiry task serves `deadline_ms`: the step it falls in ends.
fn expiry_at_ms(deadline_ms: u64) -> u64 {
    deadline_ms
        .div_ceil(EXPIRY_STEP_MS)
        .saturating_mul(EXPIRY_STEP_MS)
}

/// What wakes a held pull: fired by an arrival, its deadline or shutdown; dropped (which
/// also wakes it) when its connection closes.
type Waker = oneshot::Sender<()>;

/// A pull now held; await [`HeldPull::released`] or give it back with [`LongPoll::cancel`].
#[derive(Debug)]
pub struct HeldPull {
    id: HoldId,
    released: oneshot::Receiver<()>,
}

impl HeldPull {
    /// Waits until an arrival, the deadline, a connection close or shutdown releases it.
    pub async fn released(self) {
        // Err means the waker was dropped (connection closed): released all the same.
        let _ = self.released.await;
    }
}

/// One shard's held pulls and their expiry.
#[derive(Debug)]
pub struct LongPoll {
    registry: RefCell<HoldRegistry<Waker>>,
    /// A pull that ends before `next_expiry_ms` was held: the expiry task recomputes.
    held_changed: LocalNotify,
    /// When the expiry task looks at the wheel next (monotonic ms).
    next_expiry_ms: Cell<u64>,
    clock: ClockRef,
}

impl LongPoll {
    pub fn new(clock: ClockRef, wheel: WheelConfig) -> Result<Self, WheelConfigError> {
        let registry = HoldRegistry::new(wheel, clock.monotonic_ms())?;
        Ok(LongPoll {
            registry: RefCell::new(registry),
            held_changed: LocalNotify::default(),
            next_expiry_ms: Cell::new(0),
            clock,
        })
    }

    /// The monotonic deadline of a pull held now with `suspend_timeout_ms`, at most
    /// `max_hold_ms` away ([`hold_deadline_ms`]).
    pub fn deadline_ms(&self, suspend_timeout_ms: i64, max_hold_ms: u64) -> u64 {
        hold_deadline_ms(self.clock.monotonic_ms(), suspend_timeout_ms, max_hold_ms)
    }

    /// Holds `pull`; `None` when the shard already holds its maximum (answer at once: the
    /// client pulls again).
    pub fn hold(&self, pull: PullHold<'_>) -> Option<HeldPull> {
        let (waker, released) = oneshot::channel();
        let expiry_ms = expiry_at_ms(pull.deadline_ms);
        let id = self.registry.borrow_mut().hold(pull, waker).ok()?;
        if expiry_ms < self.next_expiry_ms.get() {
            self.held_changed.notify();
        }
        Some(HeldPull { id, released })
    }

    /// Gives a held pull back without waiting (a message arrived before it was held).
    pub fn cancel(&self, held: HeldPull) {
        self.registry.borrow_mut().cancel(held.id);
    }

    /// A message was appended: release the pulls it matches.
    pub fn on_arrival(&self, arrival: &Arrival) {
        let released = self.registry.borrow_mut().on_arrival(
            &arrival.topic,
            arrival.queue_id,
            arrival.max_offset,
            arrival.tags_code,
        );
        wake(released);
    }

    /// Forgets the pulls of a closed connection (nobody is left to answer).
    pub fn drop_connection(&self, connection_id: u64) {
        self.registry.borrow_mut().drop_connection(connection_id);
    }

    /// Releases every held pull (shutdown answers them all).
    pub fn release_all(&self) {
        let released = self.registry.borrow_mut().drain_all();
        wake(released);
    }

    /// Pulls held now.
    pub fn len(&self) -> usize {
        self.registry.borrow().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The expiry task: answers held pulls whose deadline passed. Sleeps until the step of
    /// the earliest deadline ends, or until a pull ending in an earlier step is held. Ends once the
    /// [`LongPoll`] is dropped.
    pub async fn run_expiry(this: Weak<LongPoll>) {
        loop {
            let Some(long_poll) = this.upgrade() else {
                return;
            };
            let now_ms = long_poll.clock.monotonic_ms();
            let wait_ms = long_poll.registry.borrow().next_deadline().map_or(
                MAX_EXPIRY_SLEEP_MS,
                |deadline| {
                    expiry_at_ms(deadline)
                        .saturating_sub(now_ms)
                        .clamp(1, MAX_EXPIRY_SLEEP_MS)
                },
            );
            long_poll.next_expiry_ms.set(now_ms.saturating_add(wait_ms));
            {
                let sleep = std::pin::pin!(compio::time::sleep(Duration::from_millis(wait_ms)));
                let changed = std::pin::pin!(long_poll.held_changed.notified());
                let _ = select(sleep, changed).await;
            }
            let now_ms = long_poll.clock.monotonic_ms();
            let expired = long_poll.registry.borrow_mut().expire(now_ms);
            wake(expired);
        }
    }

    /// Spawns [`LongPoll::run_expiry`] on the current runtime.
    pub fn spawn_expiry(this: &Rc<LongPoll>) {
        compio::runtime::spawn(LongPoll::run_expiry(Rc::downgrade(this))).detach();
    }
}

fn wake(released: Vec<Waker>) {
    for waker in released {
        // The pull's task may be gone (its connection closed): nothing to answer then.
        let _ = waker.send(());
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicI64, Ordering};
    use std::sync::Arc;
    use std::time::Instant;

    use ringmq_engine::consumequeue::TagFilter;

    use super::*;
    use crate::clock::{self, Clock};

    /// The real monotonic clock, and a wall clock an operator can step.
    #[derive(Debug, Default)]
    struct SteppedWallClock {
        wall_step_ms: AtomicI64,
    }

    impl Clock for SteppedWallClock {
        fn monotonic_ms(&self) -> u64 {
            clock::monotonic_ms()
        }
        fn wall_ms(&self) -> i64 {
            clock::wall_ms() + self.wall_step_ms.load(Ordering::Relaxed)
        }
    }

    fn hold_for(long_poll: &LongPoll, hold_ms: u64) -> HeldPull {
        long_poll
            .hold(PullHold {
                topic: "T",
                queue_id: 0,
                offset: 0,
                filter: TagFilter::from_subscription("*", []),
                deadline_ms: long_poll.deadline_ms(hold_ms as i64, 15_000),
                connection_id: 1,
            })
            .unwrap()
    }

    /// Holds a 400 ms pull, steps the wall clock by `step_ms` 50 ms in, and returns how
    /// long the hold lasted.
    fn hold_across_wall_step(step_ms: i64) -> Duration {
        let clock = Arc::new(SteppedWallClock::default());
        let runtime = compio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            let long_poll = Rc::new(LongPoll::new(clock.clone(), WheelConfig::default()).unwrap());
            LongPoll::spawn_expiry(&long_poll);
            let started = Instant::now();
            let held = hold_for(&long_poll, 400);
            let stepper = clock.clone();
            compio::runtime::spawn(async move {
                compio::time::sleep(Duration::from_millis(50)).await;
                stepper.wall_step_ms.store(step_ms, Ordering::Relaxed);
            })
            .detach();
            held.released().await;
            let lasted = started.elapsed();
            assert!(long_poll.is_empty());
            lasted
        })
    }

    #[test]
    fn a_hold_is_unaffected_by_the_wall_clock_jumping_forward() {
        let lasted = hold_across_wall_step(3_600_000);
        assert!(
            lasted >= Duration::from_millis(390) && lasted < Duration::from_millis(1_500),
            "a 400 ms hold lasted {lasted:?} across a +1 h wall-clock step"
        );
    }

    #[test]
    fn a_hold_is_unaffected_by_the_wall_clock_jumping_back() {
        let lasted = hold_across_wall_step(-3_600_000);
        assert!(
            lasted >= Duration::from_millis(390) && lasted < Duration::from_millis(1_500),
            "a 400 ms hold lasted {lasted:?} across a -1 h wall-clock step"
        );
    }

    #[test]
    fn a_deadline_is_served_when_its_step_ends() {
        assert_eq!(expiry_at_ms(15_000), 15_000);
        assert_eq!(expiry_at_ms(15_001), 15_000 + EXPIRY_STEP_MS);
        assert_eq!(expiry_at_ms(0), 0);
        assert_eq!(expiry_at_ms(u64::MAX), u64::MAX, "saturates, never wraps");
    }

    #[test]
    fn an_arrival_releases_a_matching_hold_at_once() {
        let runtime = compio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            let long_poll =
                Rc::new(LongPoll::new(clock::system(), WheelConfig::default()).unwrap());
            LongPoll::spawn_expiry(&long_poll);
            let held = hold_for(&long_poll, 10_000);
            let started = Instant::now();
            long_poll.on_arrival(&Arrival {
                topic: "T".into(),
                queue_id: 0,
                max_offset: 1,
                tags_code: 0,
            });
            held.released().await;
            assert!(started.elapsed() < Duration::from_millis(100));
        });
    }

    #[test]
    fn a_closed_connection_releases_its_holds_without_waiting_for_the_deadline() {
        let runtime = compio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            let long_poll =
                Rc::new(LongPoll::new(clock::system(), WheelConfig::default()).unwrap());
            let held = hold_for(&long_poll, 10_000);
            long_poll.drop_connection(1);
            held.released().await;
            assert!(long_poll.is_empty());
        });
    }
}

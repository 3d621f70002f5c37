//! The broker's two clocks, in one place.
//!
//! - **Monotonic** milliseconds ([`Clock::monotonic_ms`]) for every deadline the broker
//!   keeps: long-poll holds, member expiry, idle timeouts. They count from an arbitrary
//!   origin and never step, so a wall-clock change (NTP slew, an operator's `date -s`, a VM
//!   resumed from a snapshot) neither fires a hold early nor stalls it.
//! - **Wall-clock** milliseconds since the Unix epoch ([`Clock::wall_ms`]) only where the
//!   protocol carries a timestamp: the broker's boot time, data versions, runtime info.
//!
//! The shard reads both through a [`Clock`] handle so tests can inject a clock whose wall
//! time jumps (`shard::long_poll` tests do).

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Where the broker reads time. `Send + Sync` so one instance serves every shard.
pub trait Clock: Send + Sync + fmt::Debug {
    /// Milliseconds on a clock that never goes back and never jumps.
    fn monotonic_ms(&self) -> u64;
    /// Milliseconds since the Unix epoch (0 if the system clock is before it).
    fn wall_ms(&self) -> i64;
}

/// A shared clock handle.
pub type ClockRef = Arc<dyn Clock>;

/// The operating system's clocks: `Instant` and `SystemTime`.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn monotonic_ms(&self) -> u64 {
        monotonic_ms()
    }

    fn wall_ms(&self) -> i64 {
        wall_ms()
    }
}

/// The system clock as a shared handle.
pub fn system() -> ClockRef {
    Arc::new(SystemClock)
}

/// Milliseconds since the first call in this process, on the monotonic clock.
pub fn monotonic_ms() -> u64 {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    let origin = *ORIGIN.get_or_init(Instant::now);
    u64::try_from(origin.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Milliseconds since the Unix epoch (0 if the system clock is before it).
pub fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_monotonic_clock_never_goes_back() {
        let mut last = monotonic_ms();
        for _ in 0..1000 {
            let now = monotonic_ms();
            assert!(now >= last);
            last = now;
        }
    }

    #[test]
    fn wall_time_is_after_2020() {
        assert!(SystemClock.wall_ms() > 1_577_836_800_000);
    }
}

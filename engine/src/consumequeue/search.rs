//! Offset lookup by store timestamp (SEARCH_OFFSET_BY_TIMESTAMP, protocol.md §2.10), the
//! pure half: a bisection over logical offsets that asks its caller for one probe at a time,
//! so the same code runs over files (through [`super::ConsumeQueue::search_by_timestamp`])
//! and over a slice in unit tests.
//!
//! RocketMQ 5.x semantics, which assume store times rise with the offset:
//! - [`Boundary::Lower`]: the first offset whose store time is ≥ the timestamp; `max` when
//!   every message is older; `min` when every message is newer.
//! - [`Boundary::Upper`]: the last offset whose store time is ≤ the timestamp; `min` when
//!   every message is newer (nothing is ≤, the earliest is the closest); `max - 1` when every
//!   message is older.
//! - An empty queue answers `min` (= `max`) for both.

/// Which side of a run of equal timestamps a search lands on (`boundaryType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Boundary {
    /// First offset with storeTime ≥ ts (the default, and the 5.x client's choice).
    #[default]
    Lower,
    /// Last offset with storeTime ≤ ts.
    Upper,
}

impl Boundary {
    /// Parses the `boundaryType` header value (`lower`/`upper`, any case); `None` otherwise.
    pub fn parse(value: &str) -> Option<Self> {
        if value.eq_ignore_ascii_case("lower") {
            Some(Self::Lower)
        } else if value.eq_ignore_ascii_case("upper") {
            Some(Self::Upper)
        } else {
            None
        }
    }
}

/// Bisection for the first offset in `[min, max)` whose store time is past the target
/// (≥ ts for `Lower`, > ts for `Upper`). Drive it with [`Bisection::probe`] and
/// [`Bisection::record`], then read [`Bisection::answer`].
#[derive(Debug, Clone)]
pub struct Bisection {
    min: i64,
    /// Every offset below `low` is known to be before the target.
    low: i64,
    /// Every offset at or above `high` is known to be past it.
    high: i64,
    target_ms: i64,
    boundary: Boundary,
}

impl Bisection {
    /// Searches `[min_offset, max_offset)` for `target_ms`. A `max_offset` below
    /// `min_offset` is treated as an empty range.
    pub fn new(min_offset: i64, max_offset: i64, target_ms: i64, boundary: Boundary) -> Self {
        Self {
            min: min_offset,
            low: min_offset,
            high: max_offset.max(min_offset),
            target_ms,
            boundary,
        }
    }

    /// The next offset whose store time is needed, or `None` when the answer is known.
    pub fn probe(&self) -> Option<i64> {
        (self.low < self.high).then(|| self.low + (self.high - self.low) / 2)
    }

    /// Feeds the store time of the message at the last probed offset.
    pub fn record(&mut self, probed_offset: i64, store_time_ms: i64) {
        debug_assert!(probed_offset >= self.low && probed_offset < self.high);
        let past = match self.boundary {
            Boundary::Lower => store_time_ms >= self.target_ms,
            Boundary::Upper => store_time_ms > self.target_ms,
        };
        if past {
            self.high = probed_offset;
        } else {
            self.low = probed_offset + 1;
        }
    }

    /// The answer, once [`Bisection::probe`] returns `None` (before that: the best so far).
    pub fn answer(&self) -> i64 {
        let first_past = self.low;
        match self.boundary {
            Boundary::Lower => first_past,
            Boundary::Upper => (first_past - 1).max(self.min),
        }
    }
}

/// Runs a [`Bisection`] to the end over store times held in a slice (`times_ms[i]` is the
/// store time of offset `min_offset + i`). For tests and for callers with times in memory.
pub fn search_slice(min_offset: i64, times_ms: &[i64], target_ms: i64, boundary: Boundary) -> i64 {
    let max_offset = min_offset.saturating_add(i64::try_from(times_ms.len()).unwrap_or(i64::MAX));
    let mut bisection = Bisection::new(min_offset, max_offset, target_ms, boundary);
    while let Some(offset) = bisection.probe() {
        let index = usize::try_from(offset - min_offset).ok();
        match index.and_then(|i| times_ms.get(i)) {
            Some(&time_ms) => bisection.record(offset, time_ms),
            None => break,
        }
    }
    bisection.answer()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The answer by definition, by a linear scan, for comparison.
    fn by_definition(min: i64, times: &[i64], ts: i64, boundary: Boundary) -> i64 {
        let max = min + times.len() as i64;
        match boundary {
            Boundary::Lower => times
                .iter()
                .position(|&t| t >= ts)
                .map_or(max, |i| min + i as i64),
            Boundary::Upper => times
                .iter()
                .rposition(|&t| t <= ts)
                .map_or(min, |i| min + i as i64),
        }
    }

    const TIMES: [i64; 8] = [100, 200, 200, 200, 300, 400, 400, 500];

    #[test]
    fn lower_finds_the_first_of_an_equal_run() {
        assert_eq!(search_slice(10, &TIMES, 200, Boundary::Lower), 11);
        assert_eq!(search_slice(10, &TIMES, 400, Boundary::Lower), 15);
    }

    #[test]
    fn upper_finds_the_last_of_an_equal_run() {
        assert_eq!(search_slice(10, &TIMES, 200, Boundary::Upper), 13);
        assert_eq!(search_slice(10, &TIMES, 400, Boundary::Upper), 16);
    }

    #[test]
    fn between_two_times_lower_takes_the_later_and_upper_the_earlier() {
        assert_eq!(search_slice(10, &TIMES, 250, Boundary::Lower), 14);
        assert_eq!(search_slice(10, &TIMES, 250, Boundary::Upper), 13);
    }

    #[test]
    fn all_older_lower_answers_max_and_upper_the_last_offset() {
        assert_eq!(search_slice(10, &TIMES, 999, Boundary::Lower), 18);
        assert_eq!(search_slice(10, &TIMES, 999, Boundary::Upper), 17);
    }

    #[test]
    fn all_newer_both_answer_min() {
        assert_eq!(search_slice(10, &TIMES, 50, Boundary::Lower), 10);
        assert_eq!(search_slice(10, &TIMES, 50, Boundary::Upper), 10);
    }

    #[test]
    fn an_empty_queue_answers_its_min() {
        assert_eq!(search_slice(42, &[], 1, Boundary::Lower), 42);
        assert_eq!(search_slice(42, &[], 1, Boundary::Upper), 42);
    }

    #[test]
    fn boundary_parses_header_values() {
        assert_eq!(Boundary::parse("lower"), Some(Boundary::Lower));
        assert_eq!(Boundary::parse("UPPER"), Some(Boundary::Upper));
        assert_eq!(Boundary::parse("middle"), None);
    }

    #[test]
    fn probes_are_logarithmic() {
        let times: Vec<i64> = (0..1_000_000).collect();
        let mut bisection = Bisection::new(0, 1_000_000, 765_432, Boundary::Lower);
        let mut probes = 0;
        while let Some(offset) = bisection.probe() {
            bisection.record(offset, times[offset as usize]);
            probes += 1;
        }
        assert_eq!(bisection.answer(), 765_432);
        assert!(probes <= 21, "{probes} probes");
    }

    proptest::proptest! {
        #[test]
        fn bisection_agrees_with_the_definition(
            mut times in proptest::collection::vec(0_i64..50, 0..64),
            ts in -5_i64..60,
            min in 0_i64..1000,
        ) {
            times.sort_unstable();
            for boundary in [Boundary::Lower, Boundary::Upper] {
                proptest::prop_assert_eq!(
                    search_slice(min, &times, ts, boundary),
                    by_definition(min, &times, ts, boundary)
                );
            }
        }
    }
}

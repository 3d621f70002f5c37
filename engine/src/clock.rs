//! The engine's one wall clock: milliseconds since the Unix epoch.
//!
//! Wall-clock time (not a monotonic clock) is what belongs here: it is stored in every
//! record (STORETIMESTAMP, searched by SEARCH_OFFSET_BY_TIMESTAMP) and in the offsets file's
//! data version, both read back by other processes and after restarts. Nothing here is
//! persisted by itself; a clock set backwards only makes new timestamps smaller.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch; 0 if the clock is before it, `i64::MAX` past 2^63 ms.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

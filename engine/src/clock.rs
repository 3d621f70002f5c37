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

/// The hour of the day (0..=23) at `at` in the process's local time zone, as RocketMQ's
/// `deleteWhen` hours are meant; UTC's hour if the local time cannot be computed.
pub(crate) fn local_hour(at: SystemTime) -> u8 {
    let secs = at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let utc_hour = u8::try_from(secs / 3600 % 24).unwrap_or(0);
    let Ok(time) = libc::time_t::try_from(secs) else {
        return utc_hour;
    };
    // SAFETY: `tm` is plain old data; all-zero is a valid value of it.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are valid for the call: `time` is read, `tm` is exclusively
    // borrowed and filled; localtime_r is the thread-safe variant (no shared buffer).
    let filled = unsafe { libc::localtime_r(&time, &mut tm) };
    if filled.is_null() {
        return utc_hour;
    }
    u8::try_from(tm.tm_hour).unwrap_or(utc_hour)
}

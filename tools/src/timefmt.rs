//! Times on the command line and in output, without a date library: UTC civil dates to and
//! from milliseconds since the Unix epoch (Howard Hinnant's days-from-civil algorithm), and
//! the forms `--to-time` / `--from` accept.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// (year, month, day) of a day count since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// `2026-11-24 07:52:28.123` (UTC) for a time in ms; `-` for 0 (RocketMQ's "none").
pub fn format_ms(ms: i64) -> String {
    if ms <= 0 {
        return "-".to_owned();
    }
    let days = ms.div_euclid(86_400_000);
    let in_day = ms.rem_euclid(86_400_000);
    let (y, mo, d) = civil_from_days(days);
    let (h, mi, s, milli) = (
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1000 % 60,
        in_day % 1000,
    );
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}.{milli:03}")
}

/// Parses a time given on the command line into ms since the epoch:
/// - `now`, or relative to now: `-30s`, `-15m`, `-2h`, `-1d`;
/// - `YYYY-MM-DDTHH:MM:SS[.mmm]` or with a space instead of `T`, optional `Z` (UTC);
/// - `yyyyMMddHHmmss` (RocketMQ's form, UTC);
/// - any other all-digit value: milliseconds since the epoch.
pub fn parse_time(text: &str, now: i64) -> Result<i64, String> {
    let t = text.trim();
    if t == "now" {
        return Ok(now);
    }
    if let Some(rel) = t.strip_prefix('-') {
        let (num, unit_ms) = match rel.char_indices().last() {
            Some((i, 's')) => (rel.get(..i), 1000),
            Some((i, 'm')) => (rel.get(..i), 60_000),
            Some((i, 'h')) => (rel.get(..i), 3_600_000),
            Some((i, 'd')) => (rel.get(..i), 86_400_000),
            _ => (None, 0),
        };
        let n: i64 = num
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| format!("bad relative time {text:?} (like -30s, -15m, -2h, -1d)"))?;
        return Ok(now.saturating_sub(n.saturating_mul(unit_ms)));
    }
    if t.len() == 14 && t.bytes().all(|b| b.is_ascii_digit()) {
        let field = |a: usize, b: usize| t.get(a..b).and_then(|s| s.parse::<i64>().ok());
        return civil_ms(
            field(0, 4),
            field(4, 6),
            field(6, 8),
            field(8, 10),
            field(10, 12),
            field(12, 14),
            Some(0),
        )
        .ok_or_else(|| format!("bad time {text:?}"));
    }
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        return t.parse().map_err(|_| format!("bad time {text:?}"));
    }
    parse_iso(t).ok_or_else(|| {
        format!(
            "bad time {text:?}: use now, -15m, 2026-11-24T07:52:28[.123], yyyyMMddHHmmss or epoch ms"
        )
    })
}

fn parse_iso(t: &str) -> Option<i64> {
    let t = t.strip_suffix('Z').unwrap_or(t);
    let (date, time) = t.split_once(['T', ' '])?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (year, month, day) = (d.next()??, d.next()??, d.next()??);
    let (hms, millis) = match time.split_once('.') {
        Some((hms, frac)) => {
            let digits: String = frac.chars().chain("000".chars()).take(3).collect();
            (hms, digits.parse::<i64>().ok())
        }
        None => (time, Some(0)),
    };
    let mut h = hms.split(':').map(|p| p.parse::<i64>().ok());
    civil_ms(
        Some(year),
        Some(month),
        Some(day),
        h.next()?,
        h.next()?,
        h.next().unwrap_or(Some(0)),
        millis,
    )
}

fn civil_ms(
    year: Option<i64>,
    month: Option<i64>,
    day: Option<i64>,
    hour: Option<i64>,
    minute: Option<i64>,
    second: Option<i64>,
    millis: Option<i64>,
) -> Option<i64> {
    let (y, mo, d, h, mi, s, ms) = (year?, month?, day?, hour?, minute?, second?, millis?);
    let valid = (1..=12).contains(&mo)
        && (1..=31).contains(&d)
        && (0..24).contains(&h)
        && (0..60).contains(&mi)
        && (0..=60).contains(&s);
    if !valid {
        return None;
    }
    Some(((days_from_civil(y, mo, d) * 24 + h) * 60 + mi) * 60_000 + s * 1000 + ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_formats_as_utc_civil_time() {
        assert_eq!(format_ms(1), "1970-01-01 00:00:00.001");
        assert_eq!(format_ms(1_700_000_000_123), "2023-11-14 22:13:20.123");
        assert_eq!(format_ms(0), "-");
    }

    #[test]
    fn iso_rocketmq_and_epoch_forms_parse_to_the_same_instant() {
        let want = 1_700_000_000_000;
        assert_eq!(parse_time("2023-11-14T22:13:20", 0), Ok(want));
        assert_eq!(parse_time("2023-11-14 22:13:20.000Z", 0), Ok(want));
        assert_eq!(parse_time("20231114221320", 0), Ok(want));
        assert_eq!(parse_time("1700000000000", 0), Ok(want));
    }

    #[test]
    fn relative_times_count_back_from_now() {
        assert_eq!(parse_time("-15m", 1_000_000), Ok(100_000));
        assert_eq!(parse_time("now", 42), Ok(42));
    }

    #[test]
    fn nonsense_is_rejected_with_the_accepted_forms() {
        let err = parse_time("yesterday", 0).unwrap_err();
        assert!(err.contains("epoch ms"), "{err}");
        assert!(parse_time("2023-13-01T00:00:00", 0).is_err());
        assert!(parse_time("-5x", 0).is_err());
    }

    #[test]
    fn civil_round_trip_over_leap_days() {
        for days in [-1, 0, 59, 60, 11_016, 20_000, 30_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}

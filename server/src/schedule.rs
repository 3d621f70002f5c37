//! Delayed and timed messages: the rules, pure (protocol.md §7.4; the running part is
//! `shard::schedule`).
//!
//! **One mechanism for both.** A message that is not due yet is stored as a *parked copy*
//! on a schedule topic, with its real topic and queue in `REAL_TOPIC` / `REAL_QID` and the
//! time its schedule looks at it next in `SCHEDULE_AT_MS`, which is also its ConsumeQueue
//! tagsCode (`queue_tags_code`). Every schedule queue is appended in the order its copies
//! come due, so its schedule only ever looks at the queue's head:
//!
//! - a delay level `L` (the `DELAY` property, RocketMQ 4.x) parks on `SCHEDULE_TOPIC_XXXX`
//!   queue `L - 1`, due `delay(L)` after it was parked: one fixed delay per queue, so the
//!   queue is in due order, and the copy is delivered when its head turn comes;
//! - a timed message (`TIMER_DELIVER_MS`, `TIMER_DELAY_SEC`, `TIMER_DELAY_MS`, RocketMQ 5.x)
//!   is due at `TIMER_OUT_MS`, any time up to the configured maximum. It parks on
//!   `rmq_sys_wheel_timer` queue `k`, the largest with `TIMER_STEP_MS × 2^k` ≤ the time
//!   left, to be looked at again after exactly that wait: again one fixed wait per queue,
//!   so each queue is in order. When its turn comes, the time left is less than the wait
//!   it just had, and the copy parks again on a lower queue (at most one copy per halving
//!   of the time left: 22 for 3 days), or, with less than one step left, is held in memory
//!   until due. Memory holds only what is due within a step.
//!
//! **Accuracy.** A level copy is delivered at its head turn, exact up to the shard's timer.
//! A timed copy is delivered at its due time from memory, unless its last look came late;
//! queues never wait at their heads (a head waiting for its own due time would hold back
//! copies behind it that are due sooner, and under load those waits compound).

use std::time::Duration;

use ringmq_engine::store::PutMessage;
use ringmq_protocol::message::properties::{self, keys, PropertiesError};
use ringmq_protocol::message::record::StoredMessage;
pub use ringmq_protocol::message::{SCHEDULE_TOPIC, TIMER_TOPIC};

/// RocketMQ's `messageDelayLevel`.
pub const DEFAULT_DELAY_LEVELS: &str = "1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h";
/// RocketMQ 5.x's `timerMaxDelaySec`: 3 days.
pub const DEFAULT_TIMER_MAX_DELAY: Duration = Duration::from_secs(3 * 24 * 3600);
/// The wait of timer queue 0; queue k waits `TIMER_STEP_MS << k`. Also the most a timed
/// message can be late by waiting behind another (module documentation).
pub const TIMER_STEP_MS: i64 = 64;
/// Queues of [`TIMER_TOPIC`]: queue 31 waits 64 ms × 2^31 ≈ 4.4 years, beyond any maximum.
pub const TIMER_QUEUE_NUMS: i32 = 32;

/// The delay of each level, 1-based as clients number them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DelayLevels {
    delays_ms: Vec<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DelayLevelsError {
    #[error("no delay levels: expected a list such as \"1s 5s 10s 30s 1m\"")]
    Empty,
    #[error(
        "delay level {level} {text:?}: expected a positive number followed by ms, s, m, h or d"
    )]
    Bad { level: usize, text: String },
}

impl DelayLevels {
    /// Parses RocketMQ's `messageDelayLevel`: space-separated durations with a unit `s`, `m`,
    /// `h` or `d` (and `ms`, which RocketMQ does not have, for tests that cannot wait).
    pub fn parse(text: &str) -> Result<Self, DelayLevelsError> {
        let delays_ms = text
            .split_whitespace()
            .enumerate()
            .map(|(index, item)| {
                parse_duration_ms(item).ok_or_else(|| DelayLevelsError::Bad {
                    level: index + 1,
                    text: item.to_owned(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if delays_ms.is_empty() {
            return Err(DelayLevelsError::Empty);
        }
        Ok(DelayLevels { delays_ms })
    }

    /// Number of levels: the queues of [`SCHEDULE_TOPIC`].
    pub fn count(&self) -> i32 {
        i32::try_from(self.delays_ms.len()).unwrap_or(i32::MAX)
    }

    /// The delay of `level` (1-based); levels above the last are the last, as in RocketMQ.
    pub fn delay_ms(&self, level: i32) -> i64 {
        let index = usize::try_from(level.clamp(1, self.count()) - 1).unwrap_or(0);
        self.delays_ms.get(index).copied().unwrap_or(0)
    }
}

impl Default for DelayLevels {
    fn default() -> Self {
        match DelayLevels::parse(DEFAULT_DELAY_LEVELS) {
            Ok(levels) => levels,
            // The constant parses (unit test); never reached.
            Err(_) => DelayLevels {
                delays_ms: vec![1000],
            },
        }
    }
}

fn parse_duration_ms(item: &str) -> Option<i64> {
    let (number, unit_ms) = if let Some(n) = item.strip_suffix("ms") {
        (n, 1)
    } else if let Some(n) = item.strip_suffix('s') {
        (n, 1000)
    } else if let Some(n) = item.strip_suffix('m') {
        (n, 60_000)
    } else if let Some(n) = item.strip_suffix('h') {
        (n, 3_600_000)
    } else if let Some(n) = item.strip_suffix('d') {
        (n, 86_400_000)
    } else {
        return None;
    };
    let value: i64 = number.parse().ok()?;
    (value > 0).then(|| value.checked_mul(unit_ms)).flatten()
}

/// The broker's schedule settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleConfig {
    pub levels: DelayLevels,
    /// Timed messages due further away than this are refused (`timerMaxDelaySec`).
    pub timer_max_delay_ms: i64,
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        ScheduleConfig {
            levels: DelayLevels::default(),
            timer_max_delay_ms: DEFAULT_TIMER_MAX_DELAY.as_millis() as i64,
        }
    }
}

/// When a message sent now is delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// Now: stored on its own topic.
    Now,
    /// After delay level `level` (already capped to the levels there are).
    Level { level: i32 },
    /// At this ms timestamp.
    At { due_ms: i64 },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DueError {
    #[error("timer message illegal: property {key}={value:?} is not a number")]
    NotANumber { key: &'static str, value: String },
    #[error("timer message illegal: the delay time {delay_ms} ms should not be bigger than the max delay {max_ms} ms (timerMaxDelaySec)")]
    TooFar { delay_ms: i64, max_ms: i64 },
}

/// When the message with these properties, sent at `now_ms`, is due: a timer property
/// first (RocketMQ 5.x order: `TIMER_DELIVER_MS`, `TIMER_DELAY_SEC`, `TIMER_DELAY_MS`), then
/// `DELAY` > 0. A due time already past, a level ≤ 0 or not a number (RocketMQ reads it as
/// 0 then) deliver now.
pub fn due(props: &str, now_ms: i64, config: &ScheduleConfig) -> Result<Due, DueError> {
    // One pass over the properties, as this runs for every message sent; a key's last value
    // wins, as in `properties::find`.
    let (mut deliver_at, mut delay_sec, mut delay_ms, mut level) = (None, None, None, None);
    for (key, value) in properties::pairs(props) {
        match key {
            keys::TIMER_DELIVER_MS => deliver_at = Some(value),
            keys::TIMER_DELAY_SEC => delay_sec = Some(value),
            keys::TIMER_DELAY_MS => delay_ms = Some(value),
            keys::DELAY => level = Some(value),
            _ => {}
        }
    }
    let number = |key: &'static str, value: Option<&str>| -> Result<Option<i64>, DueError> {
        value
            .map(|v| {
                v.trim().parse::<i64>().map_err(|_| DueError::NotANumber {
                    key,
                    value: v.to_owned(),
                })
            })
            .transpose()
    };
    let due_ms = if let Some(at) = number(keys::TIMER_DELIVER_MS, deliver_at)? {
        Some(at)
    } else if let Some(secs) = number(keys::TIMER_DELAY_SEC, delay_sec)? {
        Some(now_ms.saturating_add(secs.saturating_mul(1000)))
    } else {
        number(keys::TIMER_DELAY_MS, delay_ms)?.map(|ms| now_ms.saturating_add(ms))
    };
    if let Some(due_ms) = due_ms {
        let delay_ms = due_ms.saturating_sub(now_ms);
        if delay_ms > config.timer_max_delay_ms {
            return Err(DueError::TooFar {
                delay_ms,
                max_ms: config.timer_max_delay_ms,
            });
        }
        return Ok(if delay_ms > 0 {
            Due::At { due_ms }
        } else {
            Due::Now
        });
    }
    let level = level
        .and_then(|value| value.trim().parse::<i32>().ok())
        .unwrap_or(0);
    Ok(if level > 0 {
        Due::Level {
            level: level.min(config.levels.count()),
        }
    } else {
        Due::Now
    })
}

/// Where a parked copy goes: topic, queue and its properties.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parked {
    pub topic: &'static str,
    pub queue_id: i32,
    pub properties: String,
}

/// The parked copy of a message for `(real_topic, real_queue_id)` that is `due` (not
/// [`Due::Now`]), parked at `now_ms`. Properties a previous parking left (a retried
/// message delivered from the schedule before) are replaced, not repeated.
pub fn park(
    props: &str,
    real_topic: &str,
    real_queue_id: i32,
    due: Due,
    now_ms: i64,
    config: &ScheduleConfig,
) -> Result<Parked, PropertiesError> {
    let mut out = properties::without(
        props,
        &[
            keys::REAL_TOPIC,
            keys::REAL_QID,
            keys::SCHEDULE_AT_MS,
            keys::TIMER_OUT_MS,
        ],
    );
    properties::append(&mut out, keys::REAL_TOPIC, real_topic)?;
    properties::append(&mut out, keys::REAL_QID, &real_queue_id.to_string())?;
    let (topic, queue_id, at_ms) = match due {
        Due::Level { level } => (
            SCHEDULE_TOPIC,
            level - 1,
            now_ms.saturating_add(config.levels.delay_ms(level)),
        ),
        Due::At { due_ms } => {
            properties::append(&mut out, keys::TIMER_OUT_MS, &due_ms.to_string())?;
            let (queue_id, at_ms) = timer_stage(due_ms, now_ms);
            (TIMER_TOPIC, queue_id, at_ms)
        }
        // Not parked; callers do not ask. Delivered at once if they do.
        Due::Now => (SCHEDULE_TOPIC, 0, now_ms),
    };
    properties::append(&mut out, keys::SCHEDULE_AT_MS, &at_ms.to_string())?;
    Ok(Parked {
        topic,
        queue_id,
        properties: out,
    })
}

/// The timer queue for a copy due at `due_ms` parked at `now_ms`, and when it is looked at
/// next: queue k, the largest with `TIMER_STEP_MS << k` ≤ the time left, after that wait;
/// with less than a step left, queue 0 at the due time itself.
pub fn timer_stage(due_ms: i64, now_ms: i64) -> (i32, i64) {
    let left_ms = due_ms.saturating_sub(now_ms);
    if left_ms < TIMER_STEP_MS {
        return (0, due_ms);
    }
    let steps = left_ms / TIMER_STEP_MS; // ≥ 1
    let stage = (63 - steps.leading_zeros() as i32).min(TIMER_QUEUE_NUMS - 1);
    (stage, now_ms + (TIMER_STEP_MS << stage))
}

/// What the schedule does with a parked copy whose look-at time has come.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Turn {
    /// Append this to its real queue.
    Deliver(PutMessage),
    /// Park it again, on a lower timer queue.
    Repark(PutMessage),
    /// Due in less than a step: keep this delivery in memory until `due_ms` (the queue goes
    /// on; waiting at its head would hold back copies due before it).
    Hold { due_ms: i64, delivery: PutMessage },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TurnError {
    #[error("parked message without {key}: it cannot be delivered")]
    Missing { key: &'static str },
    #[error("parked message: {key}={value:?} is not a number")]
    NotANumber { key: &'static str, value: String },
    #[error("parked message properties")]
    Properties(#[from] PropertiesError),
}

/// The turn of a parked copy (decoded) at `now_ms`.
pub fn turn(parked: &StoredMessage, now_ms: i64) -> Result<Turn, TurnError> {
    let props = parked.properties.as_str();
    let number = |key: &'static str| -> Result<Option<i64>, TurnError> {
        properties::find(props, key)
            .map(|value| {
                value.parse::<i64>().map_err(|_| TurnError::NotANumber {
                    key,
                    value: value.to_owned(),
                })
            })
            .transpose()
    };
    let due_ms = number(keys::TIMER_OUT_MS)?;
    if let Some(due_ms) = due_ms {
        let left_ms = due_ms - now_ms;
        if left_ms >= TIMER_STEP_MS {
            let (queue_id, at_ms) = timer_stage(due_ms, now_ms);
            let mut out = properties::without(props, &[keys::SCHEDULE_AT_MS]);
            properties::append(&mut out, keys::SCHEDULE_AT_MS, &at_ms.to_string())?;
            return Ok(Turn::Repark(copy_of(parked, TIMER_TOPIC, queue_id, out)));
        }
    }
    let real_topic = properties::find(props, keys::REAL_TOPIC).ok_or(TurnError::Missing {
        key: keys::REAL_TOPIC,
    })?;
    let real_queue_id = number(keys::REAL_QID)?.ok_or(TurnError::Missing {
        key: keys::REAL_QID,
    })?;
    // As RocketMQ delivers: the delay and timer requests are gone, REAL_TOPIC / REAL_QID
    // (and TIMER_OUT_MS) stay.
    let out = properties::without(
        props,
        &[
            keys::DELAY,
            keys::TIMER_DELIVER_MS,
            keys::TIMER_DELAY_SEC,
            keys::TIMER_DELAY_MS,
            keys::SCHEDULE_AT_MS,
        ],
    );
    let delivery = copy_of(
        parked,
        real_topic,
        i32::try_from(real_queue_id).unwrap_or(0),
        out,
    );
    Ok(match due_ms {
        Some(due_ms) if due_ms > now_ms => Turn::Hold { due_ms, delivery },
        _ => Turn::Deliver(delivery),
    })
}

/// The parked record again, for another topic and queue: body, flag, sysFlag, born
/// time and host, store host and reconsume count kept.
fn copy_of(parked: &StoredMessage, topic: &str, queue_id: i32, properties: String) -> PutMessage {
    PutMessage {
        topic: topic.to_owned(),
        queue_id,
        flag: parked.flag,
        sys_flag: parked.sys_flag,
        born_timestamp: parked.born_timestamp,
        born_host: parked.born_host,
        store_host: parked.store_host,
        reconsume_times: parked.reconsume_times,
        prepared_transaction_offset: 0,
        body: parked.body.clone(),
        properties,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> String {
        let mut out = String::new();
        for (k, v) in pairs {
            properties::append(&mut out, k, v).unwrap();
        }
        out
    }

    #[test]
    fn levels_parse_rocketmq_units_and_ms() {
        let levels = DelayLevels::default();
        assert_eq!(levels.count(), 18);
        assert_eq!(levels.delay_ms(1), 1000);
        assert_eq!(levels.delay_ms(3), 10_000);
        assert_eq!(levels.delay_ms(18), 7_200_000);
        assert_eq!(levels.delay_ms(99), 7_200_000, "capped at the last level");
        let test = DelayLevels::parse("100ms 2s 1d").unwrap();
        assert_eq!(
            (test.delay_ms(1), test.delay_ms(2), test.delay_ms(3)),
            (100, 2000, 86_400_000)
        );
        assert_eq!(DelayLevels::parse("  "), Err(DelayLevelsError::Empty));
        assert!(matches!(
            DelayLevels::parse("1s 5x"),
            Err(DelayLevelsError::Bad { level: 2, .. })
        ));
        assert!(DelayLevels::parse("0s").is_err());
        assert!(DelayLevels::parse("-1s").is_err());
    }

    #[test]
    fn due_prefers_timer_properties_and_refuses_beyond_the_max() {
        let config = ScheduleConfig::default();
        let now = 1_000_000;
        assert_eq!(due("", now, &config), Ok(Due::Now));
        assert_eq!(
            due(&props(&[("DELAY", "3")]), now, &config),
            Ok(Due::Level { level: 3 })
        );
        assert_eq!(
            due(&props(&[("DELAY", "40")]), now, &config),
            Ok(Due::Level { level: 18 })
        );
        assert_eq!(due(&props(&[("DELAY", "-1")]), now, &config), Ok(Due::Now));
        assert_eq!(due(&props(&[("DELAY", "x")]), now, &config), Ok(Due::Now));
        assert_eq!(
            due(
                &props(&[("TIMER_DELAY_SEC", "5"), ("DELAY", "3")]),
                now,
                &config
            ),
            Ok(Due::At { due_ms: now + 5000 })
        );
        assert_eq!(
            due(&props(&[("TIMER_DELAY_MS", "250")]), now, &config),
            Ok(Due::At { due_ms: now + 250 })
        );
        assert_eq!(
            due(&props(&[("TIMER_DELIVER_MS", "999")]), now, &config),
            Ok(Due::Now),
            "a due time in the past is now"
        );
        assert!(matches!(
            due(&props(&[("TIMER_DELAY_SEC", "259201")]), now, &config),
            Err(DueError::TooFar { .. })
        ));
        assert!(matches!(
            due(&props(&[("TIMER_DELIVER_MS", "soon")]), now, &config),
            Err(DueError::NotANumber { .. })
        ));
    }

    #[test]
    fn timer_stages_halve_the_time_left() {
        assert_eq!(timer_stage(1_000, 1_000), (0, 1_000));
        assert_eq!(timer_stage(1_063, 1_000), (0, 1_063));
        assert_eq!(timer_stage(1_064, 1_000), (0, 1_064));
        assert_eq!(timer_stage(1_127, 1_000), (0, 1_064));
        assert_eq!(timer_stage(1_128, 1_000), (1, 1_128));
        assert_eq!(timer_stage(1_000 + 10_000, 1_000), (7, 1_000 + 64 * 128));
        // Three days need 22 queues.
        let (stage, _) = timer_stage(259_200_000, 0);
        assert_eq!(stage, 21);
        assert_eq!(timer_stage(i64::MAX, 0).0, TIMER_QUEUE_NUMS - 1);
        // However long, a copy is reparked at most once per halving, and never early.
        let (mut now, due_ms, mut parks) = (0_i64, 259_200_000_i64, 0);
        loop {
            let (_, at) = timer_stage(due_ms, now);
            assert!(at <= due_ms);
            parks += 1;
            if due_ms - at < TIMER_STEP_MS {
                break;
            }
            now = at;
        }
        assert!(parks <= 23, "{parks}");
    }

    fn stored(props: String) -> StoredMessage {
        let host: std::net::SocketAddr = "127.0.0.1:1".parse().unwrap();
        StoredMessage {
            topic: TIMER_TOPIC.to_owned(),
            queue_id: 3,
            flag: 7,
            queue_offset: 0,
            physical_offset: 0,
            sys_flag: 0,
            born_timestamp: 5,
            born_host: host,
            store_timestamp: 6,
            store_host: host,
            reconsume_times: 2,
            prepared_transaction_offset: 0,
            body: bytes::Bytes::from_static(b"body"),
            properties: props,
            body_crc: 0,
        }
    }

    #[test]
    fn a_parked_copy_reparks_waits_then_delivers_with_its_properties_restored() {
        let config = ScheduleConfig::default();
        let original = props(&[
            ("TAGS", "a"),
            ("TIMER_DELAY_SEC", "10"),
            ("REAL_TOPIC", "old"),
        ]);
        let parked = park(&original, "T", 5, Due::At { due_ms: 10_000 }, 0, &config).unwrap();
        assert_eq!((parked.topic, parked.queue_id), (TIMER_TOPIC, 7));
        assert_eq!(
            properties::find(&parked.properties, "REAL_TOPIC"),
            Some("T")
        );
        assert_eq!(
            properties::pairs(&parked.properties)
                .filter(|(k, _)| *k == "REAL_TOPIC")
                .count(),
            1
        );
        let message = stored(parked.properties);
        let Ok(Turn::Repark(again)) = turn(&message, 8_192) else {
            panic!("expected a repark");
        };
        assert_eq!((again.topic.as_str(), again.queue_id), (TIMER_TOPIC, 4));
        assert_eq!(
            properties::find(&again.properties, "SCHEDULE_AT_MS"),
            Some("9216")
        );
        let Ok(Turn::Hold { due_ms, delivery }) = turn(&message, 9_990) else {
            panic!("expected a hold");
        };
        assert_eq!((due_ms, delivery.topic.as_str()), (10_000, "T"));
        let Ok(Turn::Deliver(delivered)) = turn(&message, 10_000) else {
            panic!("expected a delivery");
        };
        assert_eq!((delivered.topic.as_str(), delivered.queue_id), ("T", 5));
        assert_eq!(
            (
                delivered.flag,
                delivered.reconsume_times,
                delivered.born_timestamp
            ),
            (7, 2, 5)
        );
        assert_eq!(properties::find(&delivered.properties, "TAGS"), Some("a"));
        assert_eq!(
            properties::find(&delivered.properties, "TIMER_DELAY_SEC"),
            None
        );
        assert_eq!(
            properties::find(&delivered.properties, "SCHEDULE_AT_MS"),
            None
        );
        assert_eq!(
            properties::find(&delivered.properties, "TIMER_OUT_MS"),
            Some("10000")
        );
    }

    #[test]
    fn a_level_copy_is_delivered_at_its_turn() {
        let config = ScheduleConfig::default();
        let parked = park(
            &props(&[("DELAY", "2")]),
            "T",
            1,
            Due::Level { level: 2 },
            100,
            &config,
        )
        .unwrap();
        assert_eq!((parked.topic, parked.queue_id), (SCHEDULE_TOPIC, 1));
        assert_eq!(
            properties::find(&parked.properties, "SCHEDULE_AT_MS"),
            Some("5100")
        );
        let Ok(Turn::Deliver(delivered)) = turn(&stored(parked.properties), 5_100) else {
            panic!("expected a delivery");
        };
        assert_eq!((delivered.topic.as_str(), delivered.queue_id), ("T", 1));
        assert_eq!(properties::find(&delivered.properties, "DELAY"), None);
        assert!(matches!(
            turn(&stored(String::new()), 0),
            Err(TurnError::Missing { key: "REAL_TOPIC" })
        ));
    }
}

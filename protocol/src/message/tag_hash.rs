//! Java's `String.hashCode`, the ConsumeQueue tagsCode of protocol.md §4.1.
//!
//! Java hashes UTF-16 code units, so a character outside the Basic Multilingual Plane
//! contributes its two surrogates; the arithmetic wraps at 32 bits. Consumers compare these
//! codes with the ones their own client computed, so the function must match Java bit for bit.

/// `h = 31*h + c` over the UTF-16 code units of `s`, wrapping: Java's `String.hashCode`.
pub fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16().fold(0_i32, |h, unit| {
        h.wrapping_mul(31).wrapping_add(i32::from(unit))
    })
}

/// The tagsCode of a ConsumeQueue entry: 0 without tags (absent or empty), else the Java
/// hash of the tags sign-extended to 64 bits.
pub fn tags_code(tags: Option<&str>) -> i64 {
    match tags {
        Some(t) if !t.is_empty() => i64::from(java_string_hash(t)),
        _ => 0,
    }
}

/// The topic of messages parked until a delay level is due (protocol.md §7.4): queue
/// `level - 1`.
pub const SCHEDULE_TOPIC: &str = "SCHEDULE_TOPIC_XXXX";
/// The topic of timed messages (`TIMER_*` properties) parked by ringmq's schedule: queue `k`
/// holds copies looked at again 2^k steps after they were written.
pub const TIMER_TOPIC: &str = "rmq_sys_wheel_timer";

/// The ConsumeQueue tagsCode of a record: for a copy parked on [`SCHEDULE_TOPIC`] or
/// [`TIMER_TOPIC`] the time (ms) its schedule looks at it next (its `SCHEDULE_AT_MS`
/// property), as RocketMQ keeps the delivery time there, so that the schedule reads when
/// each copy is due from the queue alone; for every other record the hash of its tags.
/// The writer, recovery and a slave's dispatch all derive it here, so they agree.
pub fn queue_tags_code<'a>(topic: &str, property: impl Fn(&str) -> Option<&'a str>) -> i64 {
    if topic == SCHEDULE_TOPIC || topic == TIMER_TOPIC {
        if let Some(at_ms) = property(crate::message::properties::keys::SCHEDULE_AT_MS)
            .and_then(|value| value.parse::<i64>().ok())
        {
            return at_ms;
        }
    }
    tags_code(property(crate::message::properties::keys::TAGS))
}

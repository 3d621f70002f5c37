//! Topic and group names, permissions and the reserved topics (protocol.md §2.3 steps 1-3,
//! §10.3): pure rules, no state.

use ringmq_protocol::body::TopicConfig;

use super::TopicError;

/// Permission bit: messages may be pulled (`PermName.PERM_READ`).
pub const PERM_READ: i32 = 4;
/// Permission bit: messages may be sent (`PermName.PERM_WRITE`).
pub const PERM_WRITE: i32 = 2;
/// Permission bit: new topics may be auto-created from this one (`PermName.PERM_INHERIT`).
pub const PERM_INHERIT: i32 = 1;
/// Largest valid perm value (PRIORITY | READ | WRITE | INHERIT).
pub const PERM_MAX: i32 = 15;

/// The template topic producers name as `defaultTopic` for auto-creation.
pub const AUTO_CREATE_TOPIC: &str = "TBW102";
/// Topic brokers answer self-test sends on.
pub const SELF_TEST_TOPIC: &str = "SELF_TEST_TOPIC";
/// Topic of offset-moved events.
pub const OFFSET_MOVED_EVENT: &str = "OFFSET_MOVED_EVENT";
/// Topic delayed messages wait on, one queue per delay level.
pub const SCHEDULE_TOPIC: &str = "SCHEDULE_TOPIC_XXXX";
/// Transaction half-message topic.
pub const TRANS_HALF_TOPIC: &str = "RMQ_SYS_TRANS_HALF_TOPIC";
/// Transaction op-half topic.
pub const TRANS_OP_HALF_TOPIC: &str = "RMQ_SYS_TRANS_OP_HALF_TOPIC";
/// Topic of transactions that exceeded their check count.
pub const TRANS_CHECK_MAX_TIME_TOPIC: &str = "TRANS_CHECK_MAX_TIME_TOPIC";
/// Message-trace topic (a system topic name; not created by this broker).
pub const TRACE_TOPIC: &str = "RMQ_SYS_TRACE_TOPIC";
/// Benchmark topic name RocketMQ reserves (not created here: 1,024 queues nobody uses).
pub const BENCHMARK_TOPIC: &str = "BenchmarkTest";
/// Prefix of retry topics: `%RETRY%<group>`.
pub const RETRY_PREFIX: &str = "%RETRY%";
/// Prefix of dead-letter topics: `%DLQ%<group>`.
pub const DLQ_PREFIX: &str = "%DLQ%";
/// Prefix RocketMQ reserves for system topics.
pub const SYSTEM_TOPIC_PREFIX: &str = "rmq_sys_";
/// Suffix of the request-reply topic, `<cluster>_REPLY_TOPIC`.
pub const REPLY_TOPIC_SUFFIX: &str = "_REPLY_TOPIC";

/// Longest ordinary topic name.
pub const TOPIC_MAX_LENGTH: usize = 127;
/// Longest `%RETRY%`/`%DLQ%` topic name.
pub const RETRY_DLQ_TOPIC_MAX_LENGTH: usize = 255;
/// Queue count of `%RETRY%<group>` (`retryQueueNums`) and `%DLQ%<group>`.
pub const RETRY_QUEUE_NUMS: i32 = 1;
/// Delay levels, one `SCHEDULE_TOPIC_XXXX` queue each (protocol.md §7.4).
pub const SCHEDULE_QUEUE_NUMS: i32 = 18;
/// Most read or write queues an admin may give a topic (a bound, not a RocketMQ rule:
/// each queue costs a ConsumeQueue and a registration entry).
pub const MAX_QUEUE_NUMS: i32 = 4096;

/// Topics clients may not send to (protocol.md §2.3 step 1): answered NO_PERMISSION.
pub const NOT_ALLOWED_SEND_TOPICS: [&str; 6] = [
    SCHEDULE_TOPIC,
    TRANS_HALF_TOPIC,
    TRANS_OP_HALF_TOPIC,
    TRANS_CHECK_MAX_TIME_TOPIC,
    SELF_TEST_TOPIC,
    OFFSET_MOVED_EVENT,
];

/// RocketMQ's system topic names: admins may neither create nor delete them.
const SYSTEM_TOPICS: [&str; 9] = [
    AUTO_CREATE_TOPIC,
    SCHEDULE_TOPIC,
    BENCHMARK_TOPIC,
    TRANS_HALF_TOPIC,
    TRANS_OP_HALF_TOPIC,
    TRACE_TOPIC,
    TRANS_CHECK_MAX_TIME_TOPIC,
    SELF_TEST_TOPIC,
    OFFSET_MOVED_EVENT,
];

/// Why a topic or group name is refused (→ INVALID_PARAMETER).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Empty or only whitespace.
    #[error("the name is blank")]
    Blank,
    /// Longer than allowed.
    #[error("the name is {length} characters long, more than {max}")]
    TooLong {
        /// Its length.
        length: usize,
        /// The limit for this kind of name.
        max: usize,
    },
    /// A character outside `[%|a-zA-Z0-9_-]`.
    #[error("the name contains {character:?}; allowed are letters, digits, %, |, _ and -")]
    IllegalCharacter {
        /// The first offending character.
        character: char,
    },
}

/// Checks a topic name: `^[%|a-zA-Z0-9_-]+$`, at most 127 characters, or 255 for names
/// starting with `%RETRY%` or `%DLQ%`.
pub fn validate_topic_name(topic: &str) -> Result<(), NameError> {
    let max = if topic.starts_with(RETRY_PREFIX) || topic.starts_with(DLQ_PREFIX) {
        RETRY_DLQ_TOPIC_MAX_LENGTH
    } else {
        TOPIC_MAX_LENGTH
    };
    validate_name(topic, max)
}

/// Checks a group name: the topic character set, at most 255 characters, so that
/// `%RETRY%<group>` stays a usable topic name when it fits.
pub fn validate_group_name(group: &str) -> Result<(), NameError> {
    validate_name(group, RETRY_DLQ_TOPIC_MAX_LENGTH)
}

fn validate_name(name: &str, max: usize) -> Result<(), NameError> {
    if name.trim().is_empty() {
        return Err(NameError::Blank);
    }
    if let Some(character) = name.chars().find(|c| !is_name_char(*c)) {
        return Err(NameError::IllegalCharacter { character });
    }
    // Every allowed character is ASCII, so bytes are characters here.
    if name.len() > max {
        return Err(NameError::TooLong {
            length: name.len(),
            max,
        });
    }
    Ok(())
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '%' | '|' | '_' | '-')
}

/// Checks a SEND's topic (protocol.md §2.3 step 1): a valid name, not on the
/// not-allowed-send list.
pub fn check_send_topic(topic: &str) -> Result<(), TopicError> {
    validate_topic_name(topic).map_err(|source| TopicError::InvalidName {
        topic: topic.to_owned(),
        source,
    })?;
    if NOT_ALLOWED_SEND_TOPICS.contains(&topic) {
        return Err(TopicError::SendNotAllowed {
            topic: topic.to_owned(),
        });
    }
    Ok(())
}

/// True for RocketMQ's reserved system topic names (and the `rmq_sys_` prefix).
pub fn is_system_topic(topic: &str) -> bool {
    SYSTEM_TOPICS.contains(&topic) || topic.starts_with(SYSTEM_TOPIC_PREFIX)
}

/// `%RETRY%<group>`.
pub fn retry_topic(group: &str) -> String {
    format!("{RETRY_PREFIX}{group}")
}

/// `%DLQ%<group>`.
pub fn dlq_topic(group: &str) -> String {
    format!("{DLQ_PREFIX}{group}")
}

/// Checks a queue id against a topic (protocol.md §2.3 step 3): valid ids are
/// `0 ≤ queue_id < max(readQueueNums, writeQueueNums)`. A SEND's negative queue id
/// ("broker picks") must be resolved before calling this.
pub fn check_queue_id(config: &TopicConfig, queue_id: i32) -> Result<(), TopicError> {
    let queue_nums = config.read_queue_nums.max(config.write_queue_nums);
    if queue_id < 0 || queue_id >= queue_nums {
        return Err(TopicError::QueueIdOutOfRange {
            topic: config.topic_name.clone(),
            queue_id,
            queue_nums,
        });
    }
    Ok(())
}

/// True when the perm bits allow sending.
pub fn is_writeable(perm: i32) -> bool {
    perm & PERM_WRITE != 0
}

/// True when the perm bits allow pulling.
pub fn is_readable(perm: i32) -> bool {
    perm & PERM_READ != 0
}

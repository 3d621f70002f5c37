//! PULL_MESSAGE (11) and LITE_PULL_MESSAGE (361) headers and the pull sysFlag bits
//! (protocol.md §2.4). Both codes share the request and response headers.

use std::ops::{BitOr, BitOrAssign};

use crate::command::ExtFields;
use crate::ext::{
    optional_i32, optional_i64, optional_str, put, put_opt, required_i32, required_i64,
    required_str, CommandHeader, HeaderError,
};

/// The `sysFlag` of a pull request (`PullSysFlag`): what the consumer allows the broker to do.
///
/// Unknown bits are kept as sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct PullSysFlag(pub i32);

impl PullSysFlag {
    /// Bit 0: store `commitOffset` as the group's consumer offset.
    pub const COMMIT_OFFSET: Self = Self(0x1);
    /// Bit 1: the broker may hold the request (long polling) when there is no message.
    pub const SUSPEND: Self = Self(0x2);
    /// Bit 2: `subscription` / `expressionType` of this request are authoritative; otherwise
    /// the subscription registered by HEART_BEAT applies.
    pub const SUBSCRIPTION: Self = Self(0x4);
    /// Bit 3: legacy filter-server (class filter) mode.
    pub const CLASS_FILTER: Self = Self(0x8);
    /// Bit 4: set by DefaultLitePullConsumer.
    pub const LITE_PULL_MESSAGE: Self = Self(0x10);

    /// The raw bits.
    #[must_use]
    pub const fn bits(self) -> i32 {
        self.0
    }

    /// Whether every bit of `other` is set.
    #[must_use]
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// These flags with every bit of `other` cleared (e.g. COMMIT_OFFSET when pulling from a
    /// slave).
    #[must_use]
    pub const fn without(self, other: Self) -> Self {
        Self(self.0 & !other.0)
    }
}

impl BitOr for PullSysFlag {
    type Output = Self;

    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

impl BitOrAssign for PullSysFlag {
    fn bitor_assign(&mut self, rhs: Self) {
        self.0 |= rhs.0;
    }
}

/// The request header of PULL_MESSAGE and LITE_PULL_MESSAGE (`PullMessageRequestHeader`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullMessageRequestHeader {
    /// `consumerGroup`.
    pub consumer_group: String,
    /// `topic`.
    pub topic: String,
    /// `queueId`: must be below the topic's readQueueNums.
    pub queue_id: i32,
    /// `queueOffset`: logical offset to read from.
    pub queue_offset: i64,
    /// `maxMsgNums`: most messages wanted (push default 32, lite pull 10).
    pub max_msg_nums: i32,
    /// `sysFlag`.
    pub sys_flag: PullSysFlag,
    /// `commitOffset`: the consumer's consumed offset; meaningful only with
    /// [`PullSysFlag::COMMIT_OFFSET`].
    pub commit_offset: i64,
    /// `suspendTimeoutMillis`: how long the broker may hold the request.
    pub suspend_timeout_millis: i64,
    /// `subscription`: the expression, authoritative only with [`PullSysFlag::SUBSCRIPTION`].
    pub subscription: Option<String>,
    /// `subVersion`: version (ms timestamp) of the client's subscription.
    pub sub_version: i64,
    /// `expressionType`: `TAG` (when absent) or `SQL92`.
    pub expression_type: Option<String>,
    /// `maxMsgBytes` (5.x); the Java broker ignores it and applies its own limits.
    pub max_msg_bytes: Option<i32>,
    /// `bname`: the broker name the client addressed (5.x clients).
    pub broker_name: Option<String>,
}

impl CommandHeader for PullMessageRequestHeader {
    fn from_ext(ext: &ExtFields) -> Result<Self, HeaderError> {
        Ok(Self {
            consumer_group: required_str(ext, "consumerGroup")?,
            topic: required_str(ext, "topic")?,
            queue_id: required_i32(ext, "queueId")?,
            queue_offset: required_i64(ext, "queueOffset")?,
            max_msg_nums: required_i32(ext, "maxMsgNums")?,
            sys_flag: PullSysFlag(required_i32(ext, "sysFlag")?),
            commit_offset: required_i64(ext, "commitOffset")?,
            suspend_timeout_millis: required_i64(ext, "suspendTimeoutMillis")?,
            subscription: optional_str(ext, "subscription"),
            sub_version: required_i64(ext, "subVersion")?,
            expression_type: optional_str(ext, "expressionType"),
            max_msg_bytes: optional_i32(ext, "maxMsgBytes")?,
            broker_name: optional_str(ext, "bname"),
        })
    }

    fn write_ext(&self, ext: &mut ExtFields) {
        put(ext, "consumerGroup", &self.consumer_group);
        put(ext, "topic", &self.topic);
        put(ext, "queueId", self.queue_id);
        put(ext, "queueOffset", self.queue_offset);
        put(ext, "maxMsgNums", self.max_msg_nums);
        put(ext, "sysFlag", self.sys_flag.bits());
        put(ext, "commitOffset", self.commit_offset);
        put(ext, "suspendTimeoutMillis", self.suspend_timeout_millis);
        put_opt(ext, "subscription", self.subscription.as_ref());
        put(ext, "subVersion", self.sub_version);
        put_opt(ext, "expressionType", self.expression_type.as_ref());
        put_opt(ext, "maxMsgBytes", self.max_msg_bytes);
        put_opt(ext, "bname", self.broker_name.as_ref());
    }
}

/// The response header of PULL_MESSAGE and LITE_PULL_MESSAGE (`PullMessageResponseHeader`).
///
/// The four required fields are always written: a Java client unboxes them for codes
/// 0/19/20/21 and throws if one is missing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullMessageResponseHeader {
    /// `suggestWhichBrokerId`: broker id the client should pull this queue from next (§9).
    pub suggest_which_broker_id: i64,
    /// `nextBeginOffset`: the offset the client should request next.
    pub next_begin_offset: i64,
    /// `minOffset`: ConsumeQueue min logical offset.
    pub min_offset: i64,
    /// `maxOffset`: ConsumeQueue max logical offset (the next one to be written).
    pub max_offset: i64,
    /// `offsetDelta`: static topics only.
    pub offset_delta: Option<i64>,
    /// `topicSysFlag` (5.x).
    pub topic_sys_flag: Option<i32>,
    /// `groupSysFlag` (5.x).
    pub group_sys_flag: Option<i32>,
    /// `forbiddenType`: with NO_PERMISSION.
    pub forbidden_type: Option<i32>,
}

impl CommandHeader for PullMessageResponseHeader {
    fn from_ext(ext: &ExtFields) -> Result<Self, HeaderError> {
        Ok(Self {
            suggest_which_broker_id: required_i64(ext, "suggestWhichBrokerId")?,
            next_begin_offset: required_i64(ext, "nextBeginOffset")?,
            min_offset: required_i64(ext, "minOffset")?,
            max_offset: required_i64(ext, "maxOffset")?,
            offset_delta: optional_i64(ext, "offsetDelta")?,
            topic_sys_flag: optional_i32(ext, "topicSysFlag")?,
            group_sys_flag: optional_i32(ext, "groupSysFlag")?,
            forbidden_type: optional_i32(ext, "forbiddenType")?,
        })
    }

    fn write_ext(&self, ext: &mut ExtFields) {
        put(ext, "suggestWhichBrokerId", self.suggest_which_broker_id);
        put(ext, "nextBeginOffset", self.next_begin_offset);
        put(ext, "minOffset", self.min_offset);
        put(ext, "maxOffset", self.max_offset);
        put_opt(ext, "offsetDelta", self.offset_delta);
        put_opt(ext, "topicSysFlag", self.topic_sys_flag);
        put_opt(ext, "groupSysFlag", self.group_sys_flag);
        put_opt(ext, "forbiddenType", self.forbidden_type);
    }
}

#[cfg(test)]
mod tests {
    use super::PullSysFlag;

    #[test]
    fn push_consumer_flags_6_mean_suspend_and_subscription() {
        let flags = PullSysFlag(6);
        assert!(flags.contains(PullSysFlag::SUSPEND));
        assert!(flags.contains(PullSysFlag::SUBSCRIPTION));
        assert!(!flags.contains(PullSysFlag::COMMIT_OFFSET));
        assert!(!flags.contains(PullSysFlag::LITE_PULL_MESSAGE));
    }

    #[test]
    fn without_clears_only_the_given_bits() {
        let flags = PullSysFlag::COMMIT_OFFSET | PullSysFlag::SUSPEND | PullSysFlag(0x40);
        assert_eq!(flags.without(PullSysFlag::COMMIT_OFFSET), PullSysFlag(0x42));
    }
}

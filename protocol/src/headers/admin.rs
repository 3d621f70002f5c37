//! Admin headers used by mqadmin and the ringmq CLI (protocol.md §2.15):
//! UPDATE_AND_CREATE_TOPIC (17), DELETE_TOPIC_IN_BROKER (215) / DELETE_TOPIC_IN_NAMESRV (216),
//! GET_CONSUME_STATS (208), GET_ALL_TOPIC_CONFIG (21), INVOKE_BROKER_TO_RESET_OFFSET (222),
//! GET_TOPIC_CONFIG (351) and GET_TOPIC_STATS_INFO (202).
//! GET_CONSUMER_CONNECTION_LIST (203) carries only `consumerGroup`; see
//! [`GetConsumerConnectionListRequestHeader`](super::GetConsumerConnectionListRequestHeader).

use crate::body::TopicFilterType;
use crate::command::ExtFields;
use crate::ext::{
    bool_or, i32_or, optional_i32, optional_i64, optional_str, put, put_opt, required_bool,
    required_i32, required_i64, required_str, CommandHeader, HeaderError, InvalidValue,
};

/// UPDATE_AND_CREATE_TOPIC request (`CreateTopicRequestHeader`).
///
/// Required-ness follows the Java header: everything but `topicSysFlag`, `attributes` and
/// `force` must be present, and `topicFilterType` must name a filter type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateTopicRequestHeader {
    /// `topic`.
    pub topic: String,
    /// `defaultTopic`: unused by the broker; mqadmin sends `TBW102`.
    pub default_topic: String,
    /// `readQueueNums`.
    pub read_queue_nums: i32,
    /// `writeQueueNums`.
    pub write_queue_nums: i32,
    /// `perm`: PERM_READ 4 | PERM_WRITE 2 | PERM_INHERIT 1.
    pub perm: i32,
    /// `topicFilterType`: `SINGLE_TAG` or `MULTI_TAG`.
    pub topic_filter_type: TopicFilterType,
    /// `topicSysFlag`.
    pub topic_sys_flag: Option<i32>,
    /// `order`: the topic is ordered.
    pub order: bool,
    /// `attributes`: `+key=value,…` (5.x).
    pub attributes: Option<String>,
    /// `force`: apply attribute changes that are otherwise refused; absent reads as false.
    pub force: bool,
}

/// The accepted `topicFilterType` names, for error messages.
const TOPIC_FILTER_TYPE_NAMES: &str = "SINGLE_TAG, MULTI_TAG";

impl CommandHeader for CreateTopicRequestHeader {
    fn from_ext(ext: &ExtFields) -> Result<Self, HeaderError> {
        let filter_type_name = required_str(ext, "topicFilterType")?;
        let topic_filter_type = TopicFilterType::from_java_name(filter_type_name.trim())
            .ok_or_else(|| {
                HeaderError::invalid(
                    "topicFilterType",
                    &filter_type_name,
                    InvalidValue::UnknownName {
                        expected: TOPIC_FILTER_TYPE_NAMES,
                    },
                )
            })?;
        Ok(Self {
            topic: required_str(ext, "topic")?,
            default_topic: required_str(ext, "defaultTopic")?,
            read_queue_nums: required_i32(ext, "readQueueNums")?,
            write_queue_nums: required_i32(ext, "writeQueueNums")?,
            perm: required_i32(ext, "perm")?,
            topic_filter_type,
            topic_sys_flag: optional_i32(ext, "topicSysFlag")?,
            order: required_bool(ext, "order")?,
            attributes: optional_str(ext, "attributes"),
            force: bool_or(ext, "force", false),
        })
    }

    fn write_ext(&self, ext: &mut ExtFields) {
        put(ext, "topic", &self.topic);
        put(ext, "defaultTopic", &self.default_topic);
        put(ext, "readQueueNums", self.read_queue_nums);
        put(ext, "writeQueueNums", self.write_queue_nums);
        put(ext, "perm", self.perm);
        put(ext, "topicFilterType", self.topic_filter_type.java_name());
        put_opt(ext, "topicSysFlag", self.topic_sys_flag);
        put(ext, "order", self.order);
        put_opt(ext, "attributes", self.attributes.as_ref());
        put(ext, "force", self.force);
    }
}

/// DELETE_TOPIC_IN_BROKER / DELETE_TOPIC_IN_NAMESRV request (`DeleteTopicRequestHeader`,
/// `DeleteTopicFromNamesrvRequestHeader`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteTopicRequestHeader {
    /// `topic`.
    pub topic: String,
    /// `clusterName`: name-server variant only; limits the deletion to one cluster.
    pub cluster_name: Option<String>,
}

impl CommandHeader for DeleteTopicRequestHeader {
    fn from_ext(ext: &ExtFields) -> Result<Self, HeaderError> {
        Ok(Self {
            topic: required_str(ext, "topic")?,
            cluster_name: optional_str(ext, "clusterName"),
        })
    }

    fn write_ext(&self, ext: &mut ExtFields) {
        put(ext, "topic", &self.topic);
        put_opt(ext, "clusterName", self.cluster_name.as_ref());
    }
}

/// GET_TOPIC_CONFIG (351, `GetTopicConfigRequestHeader`) and GET_TOPIC_STATS_INFO (202,
/// `GetTopicStatsInfoRequestHeader`) requests: one topic. GET_TOPIC_CONFIG's `lo` (add the
/// static-topic queue mapping) is not read: ringmq has no static topics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicRequestHeader {
    /// `topic`.
    pub topic: String,
}

impl CommandHeader for TopicRequestHeader {
    fn from_ext(ext: &ExtFields) -> Result<Self, HeaderError> {
        Ok(Self {
            topic: required_str(ext, "topic")?,
        })
    }

    fn write_ext(&self, ext: &mut ExtFields) {
        put(ext, "topic", &self.topic);
    }
}

/// GET_CONSUME_STATS request (`GetConsumeStatsRequestHeader`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetConsumeStatsRequestHeader {
    /// `consumerGroup`.
    pub consumer_group: String,
    /// `topic`: only this topic; absent means every topic the group has offsets for.
    pub topic: Option<String>,
    /// `topicList` (5.x): comma-separated topics; when present, exactly those.
    pub topic_list: Option<String>,
}

impl GetConsumeStatsRequestHeader {
    /// The topics of `topicList`, trimmed, empty entries dropped.
    pub fn topics(&self) -> impl Iterator<Item = &str> {
        self.topic_list
            .as_deref()
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|topic| !topic.is_empty())
    }
}

impl CommandHeader for GetConsumeStatsRequestHeader {
    fn from_ext(ext: &ExtFields) -> Result<Self, HeaderError> {
        Ok(Self {
            consumer_group: required_str(ext, "consumerGroup")?,
            topic: optional_str(ext, "topic"),
            topic_list: optional_str(ext, "topicList"),
        })
    }

    fn write_ext(&self, ext: &mut ExtFields) {
        put(ext, "consumerGroup", &self.consumer_group);
        put_opt(ext, "topic", self.topic.as_ref());
        put_opt(ext, "topicList", self.topic_list.as_ref());
    }
}

/// GET_ALL_TOPIC_CONFIG response (`GetAllTopicConfigResponseHeader`); the configs are the
/// body.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GetAllTopicConfigResponseHeader {
    /// `totalTopicNum` (5.x).
    pub total_topic_num: Option<i32>,
}

impl CommandHeader for GetAllTopicConfigResponseHeader {
    fn from_ext(ext: &ExtFields) -> Result<Self, HeaderError> {
        Ok(Self {
            total_topic_num: optional_i32(ext, "totalTopicNum")?,
        })
    }

    fn write_ext(&self, ext: &mut ExtFields) {
        put_opt(ext, "totalTopicNum", self.total_topic_num);
    }
}

/// INVOKE_BROKER_TO_RESET_OFFSET request (`ResetOffsetRequestHeader`; the broker forwards the
/// same header to clients as RESET_CONSUMER_CLIENT_OFFSET).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResetOffsetRequestHeader {
    /// `topic`.
    pub topic: String,
    /// `group`: the consumer group.
    pub group: String,
    /// `queueId`: one queue, or −1 (also when absent) for all.
    pub queue_id: i32,
    /// `offset` (5.x): reset to this logical offset instead of searching by timestamp.
    pub offset: Option<i64>,
    /// `timestamp`: reset to the first message stored at or after it, ms since the epoch.
    pub timestamp_ms: i64,
    /// `isForce`: also move offsets forward (otherwise only backward).
    pub is_force: bool,
}

impl CommandHeader for ResetOffsetRequestHeader {
    fn from_ext(ext: &ExtFields) -> Result<Self, HeaderError> {
        Ok(Self {
            topic: required_str(ext, "topic")?,
            group: required_str(ext, "group")?,
            queue_id: i32_or(ext, "queueId", -1)?,
            offset: optional_i64(ext, "offset")?,
            timestamp_ms: required_i64(ext, "timestamp")?,
            is_force: required_bool(ext, "isForce")?,
        })
    }

    fn write_ext(&self, ext: &mut ExtFields) {
        put(ext, "topic", &self.topic);
        put(ext, "group", &self.group);
        put(ext, "queueId", self.queue_id);
        put_opt(ext, "offset", self.offset);
        put(ext, "timestamp", self.timestamp_ms);
        put(ext, "isForce", self.is_force);
    }
}

//! What the broker's configuration says about topics, and the system topics it creates.

use ringmq_protocol::body::TopicConfig;

use super::names::{
    AUTO_CREATE_TOPIC, OFFSET_MOVED_EVENT, PERM_INHERIT, PERM_READ, PERM_WRITE, REPLY_TOPIC_SUFFIX,
    SCHEDULE_QUEUE_NUMS, SCHEDULE_TOPIC, SELF_TEST_TOPIC, TRANS_HALF_TOPIC, TRANS_OP_HALF_TOPIC,
};

/// What the broker's configuration says about topics (protocol.md §10.2 defaults in
/// [`TopicSettings::new`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSettings {
    /// `brokerClusterName`; a topic of that name is created.
    pub cluster_name: String,
    /// `brokerName`; a topic of that name is created.
    pub broker_name: String,
    /// `autoCreateTopicEnable`: TBW102 carries PERM_INHERIT, so SEND creates unknown topics.
    pub auto_create_topics: bool,
    /// `defaultTopicQueueNums`: TBW102's queue count (8).
    pub default_topic_queue_nums: i32,
    /// `clusterTopicEnable`: the cluster topic is readable and writable.
    pub cluster_topic_enable: bool,
    /// `brokerTopicEnable`: the broker topic is readable and writable.
    pub broker_topic_enable: bool,
}

impl TopicSettings {
    /// RocketMQ's defaults for a broker of `cluster_name`/`broker_name`.
    pub fn new(cluster_name: impl Into<String>, broker_name: impl Into<String>) -> Self {
        TopicSettings {
            cluster_name: cluster_name.into(),
            broker_name: broker_name.into(),
            auto_create_topics: true,
            default_topic_queue_nums: 8,
            cluster_topic_enable: true,
            broker_topic_enable: true,
        }
    }

    /// The topics every broker has from its first start (protocol.md §10.3). Left out:
    /// `BenchmarkTest` (1,024 queues for a Java benchmark), the trace topic (off by
    /// default), and the 5.x POP revive and controller topics (not implemented).
    pub fn system_topics(&self) -> Vec<TopicConfig> {
        let rw = PERM_READ | PERM_WRITE;
        let sized = |name: &str, queue_nums: i32, perm: i32| TopicConfig {
            read_queue_nums: queue_nums,
            write_queue_nums: queue_nums,
            perm,
            ..TopicConfig::new(name)
        };
        let tbw102_perm = if self.auto_create_topics {
            PERM_INHERIT | rw
        } else {
            rw
        };
        let cluster_perm = PERM_INHERIT | if self.cluster_topic_enable { rw } else { 0 };
        let broker_perm = PERM_INHERIT | if self.broker_topic_enable { rw } else { 0 };
        vec![
            sized(
                AUTO_CREATE_TOPIC,
                self.default_topic_queue_nums,
                tbw102_perm,
            ),
            sized(SELF_TEST_TOPIC, 1, rw),
            // Java's `new TopicConfig(name)` defaults: 16 queues.
            TopicConfig {
                perm: cluster_perm,
                ..TopicConfig::new(self.cluster_name.as_str())
            },
            sized(&self.broker_name, 1, broker_perm),
            sized(OFFSET_MOVED_EVENT, 1, rw),
            sized(SCHEDULE_TOPIC, SCHEDULE_QUEUE_NUMS, rw),
            sized(&format!("{}{REPLY_TOPIC_SUFFIX}", self.cluster_name), 1, rw),
            sized(TRANS_HALF_TOPIC, 1, rw),
            sized(TRANS_OP_HALF_TOPIC, 1, rw),
        ]
    }
}

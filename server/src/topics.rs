//! Topic configurations of the broker (protocol.md §2.3 steps 1–3, §2.15, §6.1, §10.3):
//! name rules, the system topics created at start, auto-creation from `TBW102` on send,
//! `%RETRY%`/`%DLQ%` topics, admin create/update/delete, and `config/topics.json`.
//!
//! **Sharing.** The broker runs one thread per shard, and every SEND and PULL on every
//! shard reads a topic's config, so reads must not hop threads or take a contended lock.
//! [`Topics`] therefore publishes an immutable snapshot, `Arc<TopicTable>`: a reader
//! ([`Topics::table`], [`Topics::get`]) takes a read lock only long enough to clone the
//! `Arc` (no writer ever holds that lock for longer than a pointer swap), then reads the
//! snapshot without any lock. Writers (auto-create, admin create/delete, retry and DLQ
//! topics) are rare: they serialise on a writer mutex, build a new table from the current
//! one, bump its [`DataVersion`], persist it, and only then publish it. A write that
//! changed something says so (`created`/`changed`), and the caller re-registers the
//! broker with the name servers; this module does no networking.
//!
//! **Invariants.** Every name in a published table passes [`validate_topic_name`] except
//! names loaded from a Java broker's file (kept as they are, never refused at load). The
//! published table is the one on disk: a write whose persist fails is not published.
//! The data-version counter grows by one per published change.
//!
//! **File and crash.** `<store>/config/topics.json` holds a `TopicConfigSerializeWrapper`
//! (`{"topicConfigTable":{…},"dataVersion":{…}}`), read leniently so a file written by
//! a Java broker (fastjson: unquoted keys, enum ordinals, numeric strings, 5.x extra
//! fields) loads. A write goes to `topics.json.tmp`, is fsynced, renamed over
//! `topics.json`, and the directory is fsynced. A crash leaves either the old or the
//! new file whole; a leftover `.tmp` is ignored at load and replaced by the next write.
//! The writes use blocking `std::fs` on the calling (shard) thread: they happen once per
//! topic created or changed, RocketMQ does the same, and the file is small; a broker
//! creating thousands of topics per second would want this moved off the shard.
//!
//! System topics are added at start only when the file lacks them: as in RocketMQ the
//! file wins, so an operator's change to, say, `TBW102` survives restarts.

use std::collections::HashMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use ringmq_protocol::body::{
    BodyError, DataVersion, JsonBody, TopicConfig, TopicConfigSerializeWrapper, TopicFilterType,
};

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

/// Why a topic operation failed. The caller maps each variant to a response code.
#[derive(Debug, thiserror::Error)]
pub enum TopicError {
    /// The name breaks the naming rules (→ INVALID_PARAMETER 29).
    #[error("topic {topic:?} is not a valid name")]
    InvalidName {
        /// The name as given.
        topic: String,
        /// The rule it breaks.
        #[source]
        source: NameError,
    },
    /// The topic is on the not-allowed-send list (→ NO_PERMISSION 16).
    #[error("sending to topic {topic} is forbidden")]
    SendNotAllowed {
        /// The topic.
        topic: String,
    },
    /// The topic is unknown and could not be auto-created (→ TOPIC_NOT_EXIST 17).
    #[error("topic[{topic}] not exist, apply first please!")]
    NotExist {
        /// The topic.
        topic: String,
    },
    /// The queue id is outside the topic's queues (→ INVALID_PARAMETER 29).
    #[error("queueId[{queue_id}] is illegal, topic {topic} has {queue_nums} queues")]
    QueueIdOutOfRange {
        /// The topic.
        topic: String,
        /// The queue id asked for.
        queue_id: i32,
        /// max(readQueueNums, writeQueueNums).
        queue_nums: i32,
    },
    /// An admin tried to create, change or delete a system topic (→ INVALID_PARAMETER 29).
    #[error("the topic[{topic}] is conflict with system topic")]
    SystemTopic {
        /// The topic.
        topic: String,
    },
    /// Queue counts or perm out of range in an admin request (→ INVALID_PARAMETER 29).
    #[error("invalid config for topic {topic}: {reason}")]
    InvalidConfig {
        /// The topic.
        topic: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// `topics.json` could not be written or read (→ SYSTEM_ERROR 1).
    #[error("topics.json I/O on {path}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The table could not be encoded (→ SYSTEM_ERROR 1).
    #[error("cannot encode the topic table")]
    Encode(#[source] BodyError),
    /// `topics.json` exists but does not decode; refusing to start with no topics.
    #[error("{path} is not a topic config file")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Why it does not decode.
        #[source]
        source: BodyError,
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

/// One immutable version of the topic table. Obtained from [`Topics::table`]; never
/// changes after publication.
#[derive(Debug, Clone, Default)]
pub struct TopicTable {
    topics: HashMap<String, Arc<TopicConfig>>,
    data_version: DataVersion,
}

impl TopicTable {
    /// The config of `topic`, if the broker has it.
    pub fn get(&self, topic: &str) -> Option<&Arc<TopicConfig>> {
        self.topics.get(topic)
    }

    /// The version of this table.
    pub fn data_version(&self) -> DataVersion {
        self.data_version
    }

    /// Number of topics.
    pub fn len(&self) -> usize {
        self.topics.len()
    }

    /// True when there is no topic (never the case once system topics exist).
    pub fn is_empty(&self) -> bool {
        self.topics.is_empty()
    }

    /// Every topic config, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<TopicConfig>> {
        self.topics.values()
    }

    /// The GET_ALL_TOPIC_CONFIG body and the core of a REGISTER_BROKER body.
    pub fn to_wrapper(&self) -> TopicConfigSerializeWrapper {
        TopicConfigSerializeWrapper {
            topic_config_table: self
                .topics
                .iter()
                .map(|(name, config)| (name.clone(), TopicConfig::clone(config)))
                .collect(),
            data_version: self.data_version,
            ..TopicConfigSerializeWrapper::default()
        }
    }

    fn from_wrapper(wrapper: TopicConfigSerializeWrapper) -> Self {
        TopicTable {
            topics: wrapper
                .topic_config_table
                .into_iter()
                .map(|(name, mut config)| {
                    // fastjson keys win over a missing or stale inner name.
                    config.topic_name.clone_from(&name);
                    (name, Arc::new(config))
                })
                .collect(),
            data_version: wrapper.data_version,
        }
    }
}

/// The broker's topic configs: lock-free snapshot reads, serialised persisted writes
/// (module documentation).
#[derive(Debug)]
pub struct Topics {
    settings: TopicSettings,
    /// Path of `topics.json`; `None` keeps the table in memory only (tests, tools).
    path: Option<PathBuf>,
    current: RwLock<Arc<TopicTable>>,
    /// Held by writers from reading `current` until publishing, so no change is lost.
    writer: Mutex<()>,
}

impl Topics {
    /// Loads `<config_dir>/topics.json` (if present), adds the missing system topics,
    /// and persists when it added any. `config_dir = None` keeps everything in memory.
    pub fn open(settings: TopicSettings, config_dir: Option<&Path>) -> Result<Self, TopicError> {
        let path = config_dir.map(|dir| dir.join("topics.json"));
        let mut table = match &path {
            Some(path) => load(path)?.unwrap_or_default(),
            None => TopicTable::default(),
        };
        let mut added = false;
        for config in settings.system_topics() {
            if !table.topics.contains_key(&config.topic_name) {
                table
                    .topics
                    .insert(config.topic_name.clone(), Arc::new(config));
                added = true;
            }
        }
        if added {
            table.data_version.next_version(now_ms());
        }
        let topics = Topics {
            settings,
            path,
            current: RwLock::new(Arc::new(TopicTable::default())),
            writer: Mutex::new(()),
        };
        if added {
            topics.persist(&table)?;
        }
        topics.publish(table);
        Ok(topics)
    }

    /// The settings this table was opened with.
    pub fn settings(&self) -> &TopicSettings {
        &self.settings
    }

    /// The current snapshot: one `Arc` clone under a read lock no writer holds for long.
    pub fn table(&self) -> Arc<TopicTable> {
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// The config of `topic` in the current snapshot.
    pub fn get(&self, topic: &str) -> Option<Arc<TopicConfig>> {
        self.table().get(topic).cloned()
    }

    /// The current version of the table.
    pub fn data_version(&self) -> DataVersion {
        self.table().data_version()
    }

    /// The GET_ALL_TOPIC_CONFIG body / name-server registration content.
    pub fn snapshot(&self) -> TopicConfigSerializeWrapper {
        self.table().to_wrapper()
    }

    /// The topic a SEND targets, auto-created when unknown (protocol.md §2.3 step 2):
    /// from `default_topic` when that exists and carries PERM_INHERIT (TBW102 loses the
    /// bit when auto-creation is off) with `min(requested_queue_nums, template write
    /// queues)` queues, the template's perm without INHERIT and its filter type;
    /// otherwise a `%RETRY%` topic gets 1 queue RW; otherwise [`TopicError::NotExist`].
    /// Returns the config and whether it was created (then re-register with the name
    /// server). The topic name must have passed [`check_send_topic`].
    pub fn auto_create_for_send(
        &self,
        topic: &str,
        default_topic: &str,
        requested_queue_nums: i32,
    ) -> Result<(Arc<TopicConfig>, bool), TopicError> {
        if let Some(config) = self.get(topic) {
            return Ok((config, false));
        }
        validate_topic_name(topic).map_err(|source| TopicError::InvalidName {
            topic: topic.to_owned(),
            source,
        })?;
        self.create_if_absent(topic, |table| {
            if let Some(config) = table.get(default_topic).and_then(|template| {
                self.derive_from_template(topic, template, requested_queue_nums)
            }) {
                return Ok(config);
            }
            if topic.starts_with(RETRY_PREFIX) {
                return Ok(single_queue_topic(topic));
            }
            Err(TopicError::NotExist {
                topic: topic.to_owned(),
            })
        })
    }

    fn derive_from_template(
        &self,
        topic: &str,
        template: &TopicConfig,
        requested_queue_nums: i32,
    ) -> Option<TopicConfig> {
        let mut template_perm = template.perm;
        if template.topic_name == AUTO_CREATE_TOPIC && !self.settings.auto_create_topics {
            template_perm &= !PERM_INHERIT;
        }
        if template_perm & PERM_INHERIT == 0 {
            return None;
        }
        // RocketMQ clamps a negative request to 0 rather than refusing it.
        let queue_nums = requested_queue_nums.min(template.write_queue_nums).max(0);
        Some(TopicConfig {
            read_queue_nums: queue_nums,
            write_queue_nums: queue_nums,
            perm: template_perm & !PERM_INHERIT,
            topic_filter_type: template.topic_filter_type,
            ..TopicConfig::new(topic)
        })
    }

    /// Creates `%RETRY%<group>` (1 queue, RW) if absent (HEART_BEAT step 2,
    /// CONSUMER_SEND_MSG_BACK). Returns it and whether it was created.
    pub fn create_retry_topic(&self, group: &str) -> Result<(Arc<TopicConfig>, bool), TopicError> {
        self.create_group_topic(&retry_topic(group))
    }

    /// Creates `%DLQ%<group>` (1 queue, RW) if absent. Returns it and whether it was
    /// created.
    pub fn create_dlq_topic(&self, group: &str) -> Result<(Arc<TopicConfig>, bool), TopicError> {
        self.create_group_topic(&dlq_topic(group))
    }

    fn create_group_topic(&self, topic: &str) -> Result<(Arc<TopicConfig>, bool), TopicError> {
        if let Some(config) = self.get(topic) {
            return Ok((config, false));
        }
        validate_topic_name(topic).map_err(|source| TopicError::InvalidName {
            topic: topic.to_owned(),
            source,
        })?;
        self.create_if_absent(topic, |_| Ok(single_queue_topic(topic)))
    }

    /// UPDATE_AND_CREATE_TOPIC: stores `config` as given (after validation) and
    /// returns whether anything changed (then re-register with the name server).
    /// System topics are refused.
    pub fn create_or_update(&self, config: TopicConfig) -> Result<bool, TopicError> {
        let topic = config.topic_name.clone();
        validate_topic_name(&topic).map_err(|source| TopicError::InvalidName {
            topic: topic.clone(),
            source,
        })?;
        if is_system_topic(&topic) {
            return Err(TopicError::SystemTopic { topic });
        }
        let queues_ok = |n: i32| (0..=MAX_QUEUE_NUMS).contains(&n);
        if !queues_ok(config.read_queue_nums) || !queues_ok(config.write_queue_nums) {
            return Err(TopicError::InvalidConfig {
                topic,
                reason: "queue counts must be between 0 and 4096",
            });
        }
        if !(0..=PERM_MAX).contains(&config.perm) {
            return Err(TopicError::InvalidConfig {
                topic,
                reason: "perm must be between 0 and 15",
            });
        }
        let _writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let current = self.table();
        if current.get(&topic).is_some_and(|old| **old == config) {
            return Ok(false);
        }
        let mut next = TopicTable::clone(&current);
        next.topics.insert(topic, Arc::new(config));
        self.commit(next)?;
        Ok(true)
    }

    /// DELETE_TOPIC: removes `topic`; returns whether it existed (then re-register).
    /// System topics are refused. The topic's stored messages are the caller's business.
    pub fn delete(&self, topic: &str) -> Result<bool, TopicError> {
        if is_system_topic(topic) {
            return Err(TopicError::SystemTopic {
                topic: topic.to_owned(),
            });
        }
        let _writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let current = self.table();
        if current.get(topic).is_none() {
            return Ok(false);
        }
        let mut next = TopicTable::clone(&current);
        next.topics.remove(topic);
        self.commit(next)?;
        Ok(true)
    }

    /// Under the writer lock: returns the topic if another writer created it meanwhile,
    /// else builds it with `make` from the current table, persists and publishes it.
    fn create_if_absent(
        &self,
        topic: &str,
        make: impl FnOnce(&TopicTable) -> Result<TopicConfig, TopicError>,
    ) -> Result<(Arc<TopicConfig>, bool), TopicError> {
        let _writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let current = self.table();
        if let Some(config) = current.get(topic) {
            return Ok((Arc::clone(config), false));
        }
        let config = Arc::new(make(&current)?);
        let mut next = TopicTable::clone(&current);
        next.topics.insert(topic.to_owned(), Arc::clone(&config));
        self.commit(next)?;
        tracing::info!(
            topic,
            queues = config.write_queue_nums,
            perm = config.perm,
            "topic created"
        );
        Ok((config, true))
    }

    /// Bumps the version, persists, publishes. Caller holds the writer lock.
    fn commit(&self, mut next: TopicTable) -> Result<(), TopicError> {
        next.data_version.next_version(now_ms());
        self.persist(&next)?;
        self.publish(next);
        Ok(())
    }

    fn publish(&self, table: TopicTable) {
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(table);
    }

    fn persist(&self, table: &TopicTable) -> Result<(), TopicError> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let bytes = table.to_wrapper().encode().map_err(TopicError::Encode)?;
        write_atomically(path, &bytes)
    }
}

fn single_queue_topic(topic: &str) -> TopicConfig {
    TopicConfig {
        read_queue_nums: RETRY_QUEUE_NUMS,
        write_queue_nums: RETRY_QUEUE_NUMS,
        perm: PERM_READ | PERM_WRITE,
        topic_filter_type: TopicFilterType::SingleTag,
        ..TopicConfig::new(topic)
    }
}

/// `Ok(None)` when the file does not exist.
fn load(path: &Path) -> Result<Option<TopicTable>, TopicError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(TopicError::Io {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let wrapper =
        TopicConfigSerializeWrapper::decode(&bytes).map_err(|source| TopicError::Corrupt {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(Some(TopicTable::from_wrapper(wrapper)))
}

/// Writes `<path>.tmp`, fsyncs it, renames it over `path`, fsyncs the directory.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), TopicError> {
    let io_error = |path: &Path| {
        let path = path.to_path_buf();
        move |source| TopicError::Io { path, source }
    };
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).map_err(io_error(dir))?;
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(".tmp");
    let tmp = PathBuf::from(tmp_name);
    let mut file = std::fs::File::create(&tmp).map_err(io_error(&tmp))?;
    file.write_all(bytes).map_err(io_error(&tmp))?;
    file.sync_all().map_err(io_error(&tmp))?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(io_error(path))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error(dir))
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests;

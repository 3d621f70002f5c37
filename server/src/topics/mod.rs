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
//! one, bump its [`DataVersion`], publish it, and hand it to the writer thread
//! ([`persist`]), which writes the newest table it has (many changes, one write). A write
//! that changed something says so (`created`/`changed`), and the caller re-registers the
//! broker with the name servers; this module does no networking. A caller that must answer
//! only once the change is on disk awaits [`TopicChange::durable`].
//!
//! **Invariants.** Every name in a published table passes [`validate_topic_name`] except
//! names loaded from a Java broker's file (kept as they are, never refused at load). The
//! data-version counter grows by one per published change, and so does the change's
//! sequence number the writer thread reports durability by. The file on disk is a table
//! published earlier (or the current one).
//!
//! **File and crash.** `<store>/config/topics.json` holds a `TopicConfigSerializeWrapper`
//! (`{"topicConfigTable":{…},"dataVersion":{…}}`), read leniently so a file written by
//! a Java broker (fastjson: unquoted keys, enum ordinals, numeric strings, 5.x extra
//! fields) loads. How it is written, and what a crash leaves, is [`persist`]'s business.
//!
//! System topics are added at start only when the file lacks them: as in RocketMQ the
//! file wins, so an operator's change to, say, `TBW102` survives restarts.

mod names;
pub mod persist;
mod settings;

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use ringmq_protocol::body::{
    BodyError, DataVersion, JsonBody, TopicConfig, TopicConfigSerializeWrapper, TopicFilterType,
};

pub use self::names::*;
use self::persist::Persister;
pub use self::settings::TopicSettings;
use crate::clock::wall_ms as now_ms;

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
    /// The change is in memory but its write to `topics.json` failed (→ SYSTEM_ERROR 1).
    #[error("the topic table could not be written to {path}: {reason}")]
    NotPersisted {
        /// The file.
        path: PathBuf,
        /// The failed write's error, as text (one write answers many waiters).
        reason: String,
    },
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

/// The broker's topic configs: lock-free snapshot reads, serialised writes persisted off
/// the ring threads (module documentation).
#[derive(Debug)]
pub struct Topics {
    settings: TopicSettings,
    /// Writes `topics.json`; `None` keeps the table in memory only (tests, tools).
    persister: Option<Persister>,
    current: RwLock<Arc<TopicTable>>,
    /// Held by writers from reading `current` until publishing, so no change is lost; holds
    /// the sequence number of the last change.
    writer: Mutex<u64>,
}

/// What a topic-table write did.
pub struct TopicChange {
    /// Something changed (re-register with the name servers).
    pub changed: bool,
    /// Resolves once the change is on disk (at once when nothing changed or nothing is
    /// persisted).
    durable: Pin<Box<dyn Future<Output = Result<(), TopicError>> + Send>>,
}

impl std::fmt::Debug for TopicChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TopicChange")
            .field("changed", &self.changed)
            .finish_non_exhaustive()
    }
}

impl TopicChange {
    fn unchanged() -> Self {
        TopicChange {
            changed: false,
            durable: Box::pin(std::future::ready(Ok(()))),
        }
    }

    /// Waits until the change is in `topics.json`.
    pub async fn durable(self) -> Result<(), TopicError> {
        self.durable.await
    }
}

impl Topics {
    /// Loads `<config_dir>/topics.json` (if present), adds the missing system topics,
    /// and persists when it added any. `config_dir = None` keeps everything in memory.
    pub fn open(settings: TopicSettings, config_dir: Option<&Path>) -> Result<Self, TopicError> {
        let path = config_dir.map(|dir| dir.join("topics.json"));
        let mut table = match &path {
            Some(path) => persist::load(path)?.unwrap_or_default(),
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
        // At start, before any shard runs: write what was added before serving.
        let persister = match path {
            Some(path) => {
                if added {
                    let bytes = table.to_wrapper().encode().map_err(TopicError::Encode)?;
                    persist::write_atomically(&path, &bytes)?;
                }
                Some(Persister::start(path, 0)?)
            }
            None => None,
        };
        let topics = Topics {
            settings,
            persister,
            current: RwLock::new(Arc::new(TopicTable::default())),
            writer: Mutex::new(0),
        };
        topics.publish(Arc::new(table));
        Ok(topics)
    }

    /// Blocks until every change so far was written (or its write failed once). Shutdown
    /// calls it after the shards stopped.
    pub fn flush(&self) {
        if let Some(persister) = &self.persister {
            persister.flush();
        }
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
    pub fn create_or_update(&self, config: TopicConfig) -> Result<TopicChange, TopicError> {
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
        let mut writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let current = self.table();
        if current.get(&topic).is_some_and(|old| **old == config) {
            return Ok(TopicChange::unchanged());
        }
        let mut next = TopicTable::clone(&current);
        next.topics.insert(topic, Arc::new(config));
        Ok(self.commit(&mut writer, next))
    }

    /// DELETE_TOPIC: removes `topic`; returns whether it existed (then re-register).
    /// System topics are refused. The topic's stored messages are the caller's business.
    pub fn delete(&self, topic: &str) -> Result<TopicChange, TopicError> {
        if is_system_topic(topic) {
            return Err(TopicError::SystemTopic {
                topic: topic.to_owned(),
            });
        }
        let mut writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let current = self.table();
        if current.get(topic).is_none() {
            return Ok(TopicChange::unchanged());
        }
        let mut next = TopicTable::clone(&current);
        next.topics.remove(topic);
        Ok(self.commit(&mut writer, next))
    }

    /// Creates the `%RETRY%<group>` topics missing among `groups` (HEART_BEAT step 2) in one
    /// change. Returns whether any was created.
    pub fn create_retry_topics<'a>(
        &self,
        groups: impl IntoIterator<Item = &'a str>,
    ) -> Result<bool, TopicError> {
        let current = self.table();
        let mut missing = Vec::new();
        for group in groups {
            let topic = retry_topic(group);
            if current.get(&topic).is_none() {
                validate_topic_name(&topic).map_err(|source| TopicError::InvalidName {
                    topic: topic.clone(),
                    source,
                })?;
                missing.push(topic);
            }
        }
        if missing.is_empty() {
            return Ok(false);
        }
        let mut writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let current = self.table();
        let mut next = TopicTable::clone(&current);
        for topic in missing {
            let config = single_queue_topic(&topic);
            next.topics.entry(topic).or_insert_with(|| Arc::new(config));
        }
        if next.topics.len() == current.topics.len() {
            return Ok(false);
        }
        tracing::info!(
            created = next.topics.len() - current.topics.len(),
            "retry topics created"
        );
        // Durability is the writer thread's: nothing waits for it on this path.
        drop(self.commit(&mut writer, next));
        Ok(true)
    }

    /// A slave's copy of its master's table (protocol.md §8.4): every topic of `master`
    /// whose config differs here is taken as the master has it, in one change; topics only
    /// this broker has stay. Returns whether anything changed.
    pub fn adopt_master_table(&self, master: &TopicConfigSerializeWrapper) -> TopicChange {
        let mut writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let current = self.table();
        let mut next = TopicTable::clone(&current);
        let mut adopted = 0usize;
        for (name, config) in &master.topic_config_table {
            if current.get(name).is_some_and(|mine| **mine == *config) {
                continue;
            }
            next.topics.insert(name.clone(), Arc::new(config.clone()));
            adopted += 1;
        }
        if adopted == 0 {
            return TopicChange::unchanged();
        }
        tracing::info!(adopted, "topic configs copied from the master");
        self.commit(&mut writer, next)
    }

    /// Start-up: recreates the topics the store holds messages for but the table lacks (a
    /// topic auto-created just before a crash, its config not yet written), with as many
    /// queues as the log proves existed, readable and writable. Returns their names.
    pub fn recover_from_log(&self, queues: &[(String, i32)]) -> Vec<String> {
        let mut queue_nums: BTreeMap<&str, i32> = BTreeMap::new();
        for (topic, queue_id) in queues {
            let count = queue_nums.entry(topic.as_str()).or_insert(0);
            *count = (*count).max(queue_id.saturating_add(1));
        }
        let mut writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let current = self.table();
        let mut next = TopicTable::clone(&current);
        let mut recovered = Vec::new();
        for (topic, queue_nums) in queue_nums {
            if current.get(topic).is_some() || validate_topic_name(topic).is_err() {
                continue;
            }
            let config = TopicConfig {
                read_queue_nums: queue_nums,
                write_queue_nums: queue_nums,
                perm: PERM_READ | PERM_WRITE,
                ..TopicConfig::new(topic)
            };
            tracing::warn!(topic, queues = queue_nums, "topic recreated from the log");
            next.topics.insert(topic.to_owned(), Arc::new(config));
            recovered.push(topic.to_owned());
        }
        if !recovered.is_empty() {
            drop(self.commit(&mut writer, next));
        }
        recovered
    }

    /// Slave: makes sure `topic` exists with queue `queue_id` readable, as a message
    /// replicated from the master proves, without waiting for the next copy of the master's
    /// table (every 3 s): if the master dies before that copy, the slave still serves what
    /// it holds. The copy then brings the master's exact config. Returns whether the table
    /// changed.
    pub fn ensure_from_replicated(&self, topic: &str, queue_id: i32) -> bool {
        let known = |table: &TopicTable| {
            table
                .get(topic)
                .is_some_and(|config| queue_id < config.read_queue_nums)
        };
        if known(&self.table()) || queue_id < 0 || validate_topic_name(topic).is_err() {
            return false;
        }
        let mut writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let current = self.table();
        if known(&current) {
            return false;
        }
        let queue_nums = queue_id.saturating_add(1);
        let config = match current.get(topic) {
            Some(config) => TopicConfig {
                read_queue_nums: queue_nums,
                write_queue_nums: config.write_queue_nums.max(queue_nums),
                ..TopicConfig::clone(config)
            },
            None => TopicConfig {
                read_queue_nums: queue_nums,
                write_queue_nums: queue_nums,
                perm: PERM_READ | PERM_WRITE,
                ..TopicConfig::new(topic)
            },
        };
        tracing::info!(
            topic,
            queues = queue_nums,
            "topic taken from the replicated log ahead of the master's table"
        );
        let mut next = TopicTable::clone(&current);
        next.topics.insert(topic.to_owned(), Arc::new(config));
        drop(self.commit(&mut writer, next));
        true
    }

    /// Under the writer lock: returns the topic if another writer created it meanwhile,
    /// else builds it with `make` from the current table and commits it (published at once,
    /// written by the writer thread).
    fn create_if_absent(
        &self,
        topic: &str,
        make: impl FnOnce(&TopicTable) -> Result<TopicConfig, TopicError>,
    ) -> Result<(Arc<TopicConfig>, bool), TopicError> {
        let mut writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let current = self.table();
        if let Some(config) = current.get(topic) {
            return Ok((Arc::clone(config), false));
        }
        let config = Arc::new(make(&current)?);
        let mut next = TopicTable::clone(&current);
        next.topics.insert(topic.to_owned(), Arc::clone(&config));
        // Sends go on at once; the writer thread makes the topic durable (`persist`).
        drop(self.commit(&mut writer, next));
        tracing::info!(
            topic,
            queues = config.write_queue_nums,
            perm = config.perm,
            "topic created"
        );
        Ok((config, true))
    }

    /// Bumps the version, publishes, hands the table to the writer thread. Caller holds
    /// the writer lock (`last_seq` is its content).
    fn commit(&self, last_seq: &mut u64, mut next: TopicTable) -> TopicChange {
        next.data_version.next_version(now_ms());
        *last_seq += 1;
        let next = Arc::new(next);
        self.publish(Arc::clone(&next));
        let durable: Pin<Box<dyn Future<Output = Result<(), TopicError>> + Send>> =
            match &self.persister {
                Some(persister) => {
                    persister.submit(*last_seq, next);
                    Box::pin(persister.durable(*last_seq))
                }
                None => Box::pin(std::future::ready(Ok(()))),
            };
        TopicChange {
            changed: true,
            durable,
        }
    }

    fn publish(&self, table: Arc<TopicTable>) {
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = table;
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

#[cfg(test)]
mod tests;

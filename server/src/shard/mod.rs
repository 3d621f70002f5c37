//! A shard: one pinned thread with its own io_uring runtime ([`thread`]) that owns, without
//! locks, its CommitLog and the ConsumeQueues of the queues placed on it, their consumer
//! offsets, their held pulls ([`long_poll`]) and the connections it accepted
//! ([`connections`]) (design.md §3).
//!
//! [`Shard`] is the narrow API processors call: each operation names a queue (or a physical
//! offset) and runs on the shard that owns it, reached through its inbox when that is
//! another shard ([`hop`]); errors come back typed ([`ShardError`]). Processors decode
//! requests and encode answers; the shard never imports a processor, and processors never
//! touch its store, offsets or held pulls directly.

pub mod connections;
pub mod hold_registry;
pub mod hop;
pub mod log_replica;
pub mod long_poll;
pub mod schedule;
pub mod schedule_progress;
pub mod shared;
pub mod sync_replication;
pub mod thread;

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ringmq_engine::commitlog::flush::FlushPolicy;
use ringmq_engine::commitlog::split_physical;
use ringmq_engine::consumequeue::{Boundary, TagFilter};
use ringmq_engine::disk_guard::DiskGuardConfig;
use ringmq_engine::error::StoreError;
use ringmq_engine::offsets::{ConsumerOffsets, OffsetsError};
use ringmq_engine::store::{Arrival, GetMessageStatus, PutMessage, PutResult, Store, StoreConfig};
use ringmq_protocol::body::{split_offset_table_key, ConsumerOffsetSerializeWrapper};

use self::connections::Connections;
use self::hold_registry::PullHold;
use self::hop::InboxError;
use self::long_poll::LongPoll;
use self::schedule::ShardSchedule;
pub use self::shared::{BrokerShared, TopicsChanged};
use self::sync_replication::ReplicaStatus;
use crate::config::{BrokerConfig, FlushMode};
use crate::memory::{BudgetPermit, MemoryBudget};
use crate::placement::{owned_by, shard_for_queue};
use crate::redirect::{Follower, ReadVerdict};
use crate::timer_wheel::WheelConfig;

/// How often consumer offsets are persisted (RocketMQ `flushConsumerOffsetInterval`).
const OFFSETS_PERSIST_INTERVAL: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum ShardOpenError {
    #[error("shard {shard_id}: opening its store")]
    Store {
        shard_id: usize,
        #[source]
        source: StoreError,
    },
    #[error("shard {shard_id}: loading consumer offsets")]
    Offsets {
        shard_id: usize,
        #[source]
        source: OffsetsError,
    },
    #[error("shard {shard_id}: loading the schedule's progress")]
    Schedule {
        shard_id: usize,
        #[source]
        source: std::io::Error,
    },
    #[error("shard {shard_id}: timer wheel: {source}")]
    Wheel {
        shard_id: usize,
        #[source]
        source: crate::timer_wheel::WheelConfigError,
    },
}

/// Why an operation on a queue's owner shard failed. Crosses shards as it is.
#[derive(Debug, thiserror::Error)]
pub enum ShardError {
    /// The owner shard could not be reached or dropped the work (shutting down).
    #[error("reaching the queue's shard")]
    Hop(#[source] InboxError),
    /// The owner's store refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The asking connection closed while the pull waited for room: nobody would read
    /// the answer, so nothing is read.
    #[error("the asking connection is gone")]
    AskerGone,
    /// No stored message at that physical offset.
    #[error("can not find message by the offset, {physical_offset}")]
    NoMessageAt {
        physical_offset: i64,
        #[source]
        source: Option<StoreError>,
    },
}

impl From<InboxError> for ShardError {
    fn from(error: InboxError) -> Self {
        ShardError::Hop(error)
    }
}

/// One pull as the owner shard reads it (all `Send`: it may cross shards).
#[derive(Debug)]
pub struct PullQuery {
    pub topic: String,
    pub queue_id: i32,
    pub offset: i64,
    pub max_msgs: u32,
    pub max_bytes: u64,
    pub filter: TagFilter,
    /// The pull's `suspendTimeoutMillis` when it may be held (None: answer at once); the
    /// shard caps the hold at `--max-hold` (RocketMQ: 15 s).
    pub suspend_timeout_ms: Option<i64>,
    pub connection_id: u64,
    /// The asking connection's budget: the answer's bytes are taken from it and from the
    /// broker's before the read (memory.rs).
    pub connection_memory: Arc<MemoryBudget>,
    /// Store `(group, offset)` as the group's consumer offset first (FLAG_COMMIT_OFFSET).
    pub commit: Option<(String, i64)>,
}

/// The owner's answer to a pull.
#[derive(Debug)]
pub struct PullOutcome {
    pub status: GetMessageStatus,
    pub next_begin_offset: i64,
    pub min_offset: i64,
    pub max_offset: i64,
    pub messages: usize,
    /// The stored records, as they are in the CommitLog.
    pub body: Bytes,
    /// The memory `body` holds (the connection's and the broker's): give it back (drop
    /// it) once the body is written.
    pub memory: Vec<BudgetPermit>,
    /// The page-cache estimator's opinion of what was read (design.md §8).
    pub verdict: ReadVerdict,
    /// The slaves following this queue's log, when the read was cold (empty otherwise:
    /// only a cold read may be redirected).
    pub followers: Vec<Follower>,
}

/// A queue's bounds and, when asked, one group's committed offset on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueState {
    pub min_offset: i64,
    pub max_offset: i64,
    pub consumer_offset: Option<i64>,
}

/// One shard's state. See the module docs.
#[derive(Debug)]
pub struct Shard {
    id: usize,
    shared: Arc<BrokerShared>,
    /// The CommitLog and ConsumeQueues of the queues placed on this shard.
    store: Store,
    /// Pulls waiting for messages on this shard's queues.
    long_poll: Rc<LongPoll>,
    /// Delivers the parked copies of the schedule queues placed on this shard.
    schedule: Rc<ShardSchedule>,
    /// Consumer offsets of this shard's queues.
    offsets: RefCell<ConsumerOffsets>,
    offsets_path: PathBuf,
    /// Live connections accepted by this shard.
    connections: Connections,
    /// Slaves following this shard's log (on a master).
    followers: log_replica::Followers,
    /// Offsets clients committed here that the master has not been given yet (on a slave).
    hand_back: log_replica::HandBack,
}

impl Shard {
    /// Opens this shard's store (recovering it), loads its offsets and starts its
    /// background tasks (held-pull expiry, offset persistence) on the current runtime.
    pub async fn open(
        shard_id: usize,
        shared: Arc<BrokerShared>,
    ) -> Result<Rc<Self>, ShardOpenError> {
        let config = &shared.config;
        let shards = shared.shards();
        let addressed = shared.shard_addressed();
        // Shard-addressed, the shard is a broker of its own: it owns every queue id of its
        // topics, so its ConsumeQueues need a directory of their own.
        let store_root = if addressed {
            config.store_dir.join(format!("shard-{shard_id}"))
        } else {
            config.store_dir.clone()
        };
        let store = Store::open_with_placement(
            &store_root,
            u8::try_from(shard_id).unwrap_or(u8::MAX),
            store_config(config),
            owned_by(shard_id, shards, addressed),
        )
        .await
        .map_err(|source| ShardOpenError::Store { shard_id, source })?;
        let offsets_dir = config
            .store_dir
            .join("config")
            .join(format!("shard-{shard_id}"));
        ringmq_engine::dirs::create_dir_all_durable_blocking(&offsets_dir).map_err(|source| {
            ShardOpenError::Offsets {
                shard_id,
                source: OffsetsError::Io {
                    path: offsets_dir.clone(),
                    source,
                },
            }
        })?;
        let offsets_path = offsets_dir.join("consumerOffset.json");
        let offsets = ConsumerOffsets::load(&offsets_path)
            .map_err(|source| ShardOpenError::Offsets { shard_id, source })?;
        let long_poll = LongPoll::new(Arc::clone(&shared.clock), WheelConfig::default())
            .map_err(|source| ShardOpenError::Wheel { shard_id, source })?;
        let schedule = ShardSchedule::load(
            offsets_dir.join("delayProgress"),
            config.schedule.levels.count(),
            owned_by(shard_id, shards, addressed),
        )
        .map_err(|source| ShardOpenError::Schedule { shard_id, source })?;
        let shard = Rc::new(Shard {
            id: shard_id,
            shared,
            store,
            long_poll: Rc::new(long_poll),
            schedule: Rc::new(schedule),
            offsets: RefCell::new(offsets),
            offsets_path,
            connections: Connections::default(),
            followers: log_replica::Followers::default(),
            hand_back: log_replica::HandBack::default(),
        });
        let long_poll = Rc::downgrade(&shard.long_poll);
        let schedule = Rc::downgrade(&shard.schedule);
        // A slave's messages come from the master's log, possibly ahead of its copy of the
        // master's topic table.
        let replicated_topics = (shard.shared.config.role == crate::config::Role::Slave)
            .then(|| Arc::clone(&shard.shared));
        shard.store.set_arrival_listener(move |arrival: &Arrival| {
            if let Some(shared) = &replicated_topics {
                if shared
                    .topics
                    .ensure_from_replicated(&arrival.topic, arrival.queue_id)
                {
                    shared.topics_changed();
                }
            }
            if let Some(long_poll) = long_poll.upgrade() {
                long_poll.on_arrival(arrival);
            }
            if let Some(schedule) = schedule.upgrade() {
                schedule.on_arrival(arrival);
            }
        });
        LongPoll::spawn_expiry(&shard.long_poll);
        // Every shard gives its thread's heap back to the OS after bursts.
        compio::runtime::spawn(crate::heap::trim_when_idle(Arc::clone(
            &shard.shared.memory,
        )))
        .detach();
        if shard_id == 0 {
            // Control plane: one shard scans group membership for the whole broker.
            compio::runtime::spawn(connections::member_expiry_loop(Rc::downgrade(&shard))).detach();
        }
        compio::runtime::spawn(offsets_loop(Rc::downgrade(&shard))).detach();
        if shard.shared.config.role != crate::config::Role::Slave {
            // A slave's log already holds its master's deliveries.
            compio::runtime::spawn(schedule::schedule_loop(Rc::downgrade(&shard))).detach();
        }
        Ok(shard)
    }

    pub fn id(&self) -> usize {
        self.id
    }

    /// The process-wide state: configuration, topics, groups, counters, clock.
    pub fn shared(&self) -> &Arc<BrokerShared> {
        &self.shared
    }

    pub fn config(&self) -> &BrokerConfig {
        &self.shared.config
    }

    /// The `(topic, queue id)`s this shard's store holds data for.
    pub fn stored_queues(&self) -> Vec<(String, i32)> {
        self.store.queues()
    }

    /// The address this shard's queues are reached at (STOREHOST of what it stores).
    pub fn store_host(&self) -> std::net::SocketAddr {
        self.shared.store_host(self.id)
    }

    /// The broker name this shard answers as.
    pub fn broker_name(&self) -> String {
        self.shared.broker_name(self.id)
    }

    /// The shard owning `(topic, queue_id)`: the placement function's choice, or, when
    /// shard-addressed, this shard (the client reached it through its own broker address).
    fn owner_of(&self, topic: &str, queue_id: i32) -> usize {
        if self.shared.shard_addressed() {
            return self.id;
        }
        shard_for_queue(topic, queue_id, self.shared.shards())
    }

    /// PULL on the queue's owner: commit the offset the request carries, read, and when
    /// nothing is there and the pull may be held, hold it and read again once released.
    pub async fn pull(self: &Rc<Self>, query: PullQuery) -> Result<PullOutcome, ShardError> {
        let owner = self.owner_of(&query.topic, query.queue_id);
        self.on_shard(owner, move |owner: Rc<Shard>| async move {
            owner.pull_here(query).await
        })
        .await?
    }

    async fn pull_here(&self, query: PullQuery) -> Result<PullOutcome, ShardError> {
        if let Some((group, offset)) = &query.commit {
            self.commit_here(group, &query.topic, query.queue_id, *offset);
        }
        let outcome = self.read(&query).await?;
        let Some(suspend_timeout_ms) = query.suspend_timeout_ms else {
            return Ok(outcome);
        };
        if !may_hold(outcome.status, query.offset) {
            return Ok(outcome);
        }
        let held = self.long_poll.hold(PullHold {
            topic: &query.topic,
            queue_id: query.queue_id,
            offset: query.offset,
            filter: query.filter.clone(),
            deadline_ms: self.long_poll.deadline_ms(
                suspend_timeout_ms,
                self.config().max_hold.as_millis() as u64,
            ),
            connection_id: query.connection_id,
        });
        let Some(held) = held else {
            // Too many pulls held on this shard: answer now; the client pulls again.
            return Ok(outcome);
        };
        // A message may have become readable while the first read was in flight: its arrival
        // went by before the hold existed. Re-check before waiting.
        if self.store.max_offset(&query.topic, query.queue_id) > query.offset {
            self.long_poll.cancel(held);
        } else {
            held.released().await;
        }
        self.read(&query).await
    }

    async fn read(&self, query: &PullQuery) -> Result<PullOutcome, ShardError> {
        // Room for the answer first, the connection's then the broker's: at a budget the
        // pull waits rather than the broker growing (memory.rs). An answer is at most the
        // request's byte budget, or one whole message when its first is bigger.
        let answer_bytes = usize::try_from(query.max_bytes)
            .unwrap_or(usize::MAX)
            .max(self.config().max_message_size_bytes);
        let connection_permit = query
            .connection_memory
            .acquire(answer_bytes)
            .await
            .ok_or(ShardError::AskerGone)?;
        let broker_permit = self
            .shared
            .memory
            .acquire(answer_bytes)
            .await
            .ok_or(ShardError::AskerGone)?;
        let mut memory = vec![connection_permit, broker_permit];
        let result = self
            .store
            .get_messages(
                &query.topic,
                query.queue_id,
                query.offset,
                query.max_msgs,
                query.max_bytes,
                &query.filter,
            )
            .await?;
        let verdict = read_verdict(&result);
        let followers = match verdict {
            ReadVerdict::Cold { .. } => self
                .followers
                .list()
                .iter()
                .map(|f| Follower {
                    broker_id: f.broker_id,
                    acked_log_end: f.acked_log_end,
                })
                .collect(),
            ReadVerdict::Hot | ReadVerdict::NothingRead => Vec::new(),
        };
        Ok(PullOutcome {
            verdict,
            followers,
            status: result.status,
            next_begin_offset: result.next_begin_offset,
            min_offset: result.min_offset,
            max_offset: result.max_offset,
            messages: result.messages.len(),
            memory: {
                for permit in &mut memory {
                    permit.resize(result.data.len());
                }
                memory
            },
            body: result.data,
        })
    }

    /// Appends `messages` (all of one queue) on the shard that owns the queue. On a
    /// SYNC_MASTER, when the producer waits for the store (`wait_store_msg_ok`, RocketMQ's
    /// `WAIT` property), it then waits there for a slave's ack of the records
    /// ([`sync_replication`]); the status says how that went.
    pub async fn append(
        self: &Rc<Self>,
        topic: &str,
        queue_id: i32,
        messages: Vec<PutMessage>,
        wait_store_msg_ok: bool,
    ) -> Result<(Vec<PutResult>, ReplicaStatus), ShardError> {
        let owner = self.owner_of(topic, queue_id);
        self.on_shard(owner, move |owner: Rc<Shard>| async move {
            let results = owner
                .store
                .put_batch(messages)
                .await
                .map_err(ShardError::from)?;
            if !(wait_store_msg_ok && owner.is_sync_master()) {
                return Ok((results, ReplicaStatus::NotWaited));
            }
            // The end of the last record in this shard's log: a slave that acked it has all.
            let log_end = results
                .iter()
                .filter_map(|r| {
                    split_physical(r.physical_offset)
                        .map(|(_, log_offset)| log_offset + u64::from(r.size_bytes))
                })
                .max();
            let Some(log_end) = log_end else {
                return Ok((results, ReplicaStatus::NotWaited));
            };
            let status = owner.wait_replicated(log_end).await;
            Ok((results, status))
        })
        .await?
    }

    /// Makes everything appended so far on shard `owner`'s log durable
    /// ([`Store::sync_log`]).
    pub async fn sync_log_on(self: &Rc<Self>, owner: usize) -> Result<(), ShardError> {
        self.on_shard(owner, |owner: Rc<Shard>| async move {
            owner.store.sync_log().await.map_err(ShardError::from)
        })
        .await?
    }

    /// The delay levels' progress on every shard (GET_ALL_DELAY_OFFSET): level → offset.
    pub async fn delay_level_offsets(self: &Rc<Self>) -> Result<BTreeMap<i32, i64>, ShardError> {
        let mut all = BTreeMap::new();
        for owner in 0..self.shared.shards() {
            let offsets = self
                .on_shard(owner, |owner: Rc<Shard>| async move {
                    owner.schedule.level_offsets()
                })
                .await?;
            all.extend(offsets);
        }
        Ok(all)
    }

    /// The queue's bounds and `group`'s committed offset on it.
    pub async fn queue_state(
        self: &Rc<Self>,
        topic: &str,
        queue_id: i32,
        group: Option<&str>,
    ) -> Result<QueueState, ShardError> {
        let owner = self.owner_of(topic, queue_id);
        let (topic, group) = (topic.to_owned(), group.map(str::to_owned));
        let state = self
            .on_shard(owner, move |owner: Rc<Shard>| async move {
                QueueState {
                    min_offset: owner.store.min_offset(&topic, queue_id),
                    max_offset: owner.store.max_offset(&topic, queue_id),
                    consumer_offset: group
                        .and_then(|group| owner.offsets.borrow().get(&group, &topic, queue_id)),
                }
            })
            .await?;
        debug_assert!(state.min_offset <= state.max_offset, "{state:?}");
        Ok(state)
    }

    /// Stores `offset` as `group`'s next offset on the queue.
    pub async fn commit_offset(
        self: &Rc<Self>,
        group: &str,
        topic: &str,
        queue_id: i32,
        offset: i64,
    ) -> Result<(), ShardError> {
        let owner = self.owner_of(topic, queue_id);
        let (group, topic) = (group.to_owned(), topic.to_owned());
        self.on_shard(owner, move |owner: Rc<Shard>| async move {
            owner.commit_here(&group, &topic, queue_id, offset);
        })
        .await?;
        Ok(())
    }

    /// A client's commit, on the queue's owner. A slave also keeps it to hand back to its
    /// master (a consumer commits to the slave while the master is away).
    fn commit_here(&self, group: &str, topic: &str, queue_id: i32, offset: i64) {
        self.offsets
            .borrow_mut()
            .commit(group, topic, queue_id, offset);
        if self.shared.config.role == crate::config::Role::Slave {
            self.hand_back.note(group, topic, queue_id, offset);
        }
    }

    /// The queue offset of the first (`Lower`) or last (`Upper`) message stored at
    /// `timestamp_ms` or later / earlier.
    pub async fn search_offset_by_timestamp(
        self: &Rc<Self>,
        topic: &str,
        queue_id: i32,
        timestamp_ms: i64,
        boundary: Boundary,
    ) -> Result<i64, ShardError> {
        let owner = self.owner_of(topic, queue_id);
        let topic = topic.to_owned();
        self.on_shard(owner, move |owner: Rc<Shard>| async move {
            owner
                .store
                .search_offset_by_timestamp(&topic, queue_id, timestamp_ms, boundary)
                .await
        })
        .await?
        .map_err(ShardError::from)
    }

    /// Store time of the queue's first message.
    pub async fn earliest_msg_store_time(
        self: &Rc<Self>,
        topic: &str,
        queue_id: i32,
    ) -> Result<i64, ShardError> {
        let owner = self.owner_of(topic, queue_id);
        let topic = topic.to_owned();
        self.on_shard(owner, move |owner: Rc<Shard>| async move {
            owner.store.earliest_msg_store_time(&topic, queue_id).await
        })
        .await?
        .map_err(ShardError::from)
    }

    /// Store time of the queue's message at `offset`, −1 if there is none.
    pub async fn msg_store_time(
        self: &Rc<Self>,
        topic: &str,
        queue_id: i32,
        offset: i64,
    ) -> Result<i64, ShardError> {
        let owner = self.owner_of(topic, queue_id);
        let topic = topic.to_owned();
        self.on_shard(owner, move |owner: Rc<Shard>| async move {
            owner.store.msg_store_time(&topic, queue_id, offset).await
        })
        .await?
        .map_err(ShardError::from)
    }

    /// The stored bytes of the record at `physical_offset`, read on the shard whose log
    /// holds it (the offset's top byte names it).
    pub async fn read_record(self: &Rc<Self>, physical_offset: i64) -> Result<Bytes, ShardError> {
        let not_found = |source| ShardError::NoMessageAt {
            physical_offset,
            source,
        };
        let log_shard = split_physical(physical_offset)
            .map(|(log_shard, _)| usize::from(log_shard))
            .filter(|&log_shard| log_shard < self.shared.shards())
            .ok_or_else(|| not_found(None))?;
        self.on_shard(log_shard, move |owner: Rc<Shard>| async move {
            owner.store.read_record_at(physical_offset).await
        })
        .await?
        .map_err(|error| not_found(Some(error)))
    }

    /// Sets the page-cache rule's ratio of every shard's store (UPDATE_BROKER_CONFIG).
    pub async fn set_page_cache_ratio_percent(
        self: &Rc<Self>,
        ratio_percent: u64,
    ) -> Result<(), ShardError> {
        for owner in 0..self.shared.shards() {
            self.on_shard(owner, move |owner: Rc<Shard>| async move {
                owner.store.set_page_cache_ratio_percent(ratio_percent);
            })
            .await?;
        }
        Ok(())
    }

    /// DELETE_TOPIC's data part, on every shard of this broker: the topic's ConsumeQueues and
    /// consumer offsets go (its records stay in the logs until retention), so a topic created
    /// again under the name starts empty. Returns how many queues were removed.
    pub async fn delete_topic_data(self: &Rc<Self>, topic: &str) -> Result<usize, ShardError> {
        let mut removed = 0;
        for owner in 0..self.shared.shards() {
            let topic = topic.to_owned();
            removed += self
                .on_shard(owner, move |owner: Rc<Shard>| async move {
                    owner.offsets.borrow_mut().remove_topic(&topic);
                    owner.store.delete_topic(&topic).await
                })
                .await??;
        }
        Ok(removed)
    }

    /// Every committed offset of every shard as one table (GET_ALL_CONSUMER_OFFSET: what a
    /// slave copies and mqadmin exports). Each queue lives on one shard, so the union has
    /// no conflicting entries.
    pub async fn all_consumer_offsets(
        self: &Rc<Self>,
    ) -> Result<ConsumerOffsetSerializeWrapper, ShardError> {
        let mut all = ConsumerOffsetSerializeWrapper::default();
        for owner in 0..self.shared.shards() {
            let table = self
                .on_shard(owner, |owner: Rc<Shard>| async move {
                    owner.offsets.borrow().to_wrapper()
                })
                .await?;
            for (key, queues) in table.offset_table {
                all.offset_table.entry(key).or_default().extend(queues);
            }
            all.data_version = match (all.data_version.take(), table.data_version) {
                (Some(a), Some(b)) => Some(if b.counter > a.counter { b } else { a }),
                (a, b) => a.or(b),
            };
        }
        Ok(all)
    }

    /// Topics on which `group` has a committed offset, on any shard.
    pub async fn topics_with_offsets(
        self: &Rc<Self>,
        group: &str,
    ) -> Result<BTreeSet<String>, ShardError> {
        let mut topics = BTreeSet::new();
        for owner in 0..self.shared.shards() {
            let group = group.to_owned();
            let found = self
                .on_shard(owner, move |owner: Rc<Shard>| async move {
                    owner
                        .offsets
                        .borrow()
                        .to_wrapper()
                        .offset_table
                        .keys()
                        .filter_map(|key| split_offset_table_key(key))
                        .filter(|(_, g)| *g == group)
                        .map(|(topic, _)| topic.to_owned())
                        .collect::<Vec<_>>()
                })
                .await?;
            topics.extend(found);
        }
        Ok(topics)
    }

    /// Shutdown work: answer every held pull, flush the store, persist offsets.
    pub async fn shut_down(&self) {
        self.long_poll.release_all();
        if let Err(error) = self.store.flush().await {
            tracing::error!(
                shard_id = self.id,
                error = %crate::reply::error_chain(&error),
                "flush at shutdown failed"
            );
        }
        self.persist_offsets().await;
    }

    async fn persist_offsets(&self) {
        let mut snapshot = self.offsets.borrow().clone();
        if snapshot.is_empty() && !self.offsets_path.exists() {
            return;
        }
        if let Err(error) = snapshot.persist(&self.offsets_path).await {
            tracing::error!(
                shard_id = self.id,
                error = %crate::reply::error_chain(&error),
                "persisting consumer offsets failed"
            );
        }
    }
}

/// The estimator's opinion of a read, with where its bytes end in this shard's log.
fn read_verdict(result: &ringmq_engine::store::GetMessageResult) -> ReadVerdict {
    let Some(last) = result.messages.last() else {
        return ReadVerdict::NothingRead;
    };
    if !result.suggest_pulling_from_slave {
        return ReadVerdict::Hot;
    }
    let end_physical = last.physical_offset + last.data_range.len() as i64;
    match split_physical(end_physical) {
        Some((_, read_log_end)) => ReadVerdict::Cold { read_log_end },
        // Not an offset of this store's logs: no slave can be shown to hold it.
        None => ReadVerdict::Cold {
            read_log_end: u64::MAX,
        },
    }
}

/// Whether a read with this status may be held: PULL_NOT_FOUND, nothing at or after the
/// offset yet (protocol.md §2.4 table). The processor's status → code mapping agrees (its
/// tests check every status).
pub fn may_hold(status: GetMessageStatus, request_offset: i64) -> bool {
    match status {
        GetMessageStatus::OffsetOverflowOne | GetMessageStatus::OffsetFoundNull => true,
        GetMessageStatus::NoMatchedLogicQueue | GetMessageStatus::NoMessageInQueue => {
            request_offset == 0
        }
        GetMessageStatus::Found
        | GetMessageStatus::NoMatchedMessage
        | GetMessageStatus::MessageWasRemoving
        | GetMessageStatus::OffsetTooSmall
        | GetMessageStatus::OffsetOverflowBadly => false,
    }
}

fn store_config(config: &BrokerConfig) -> StoreConfig {
    StoreConfig {
        segment_size_bytes: config.commitlog_segment_size_bytes,
        flush: match config.flush {
            FlushMode::Async => FlushPolicy::Async {
                interval_ms: config.flush_interval.as_millis() as u64,
            },
            FlushMode::Sync => FlushPolicy::Sync,
        },
        disk_guard: DiskGuardConfig {
            max_used_ratio: config.disk_warning_ratio,
            ..DiskGuardConfig::default()
        },
        retention: Some(config.retention),
        page_cache_ratio_percent: config.access_message_in_memory_max_ratio,
        ..StoreConfig::default()
    }
}

/// Persists consumer offsets every few seconds.
async fn offsets_loop(shard: Weak<Shard>) {
    loop {
        compio::time::sleep(OFFSETS_PERSIST_INTERVAL).await;
        let Some(this) = shard.upgrade() else { return };
        this.persist_offsets().await;
    }
}

#[cfg(test)]
mod store_config_tests {
    use super::*;

    #[test]
    fn sends_are_refused_at_the_warning_ratio_and_retention_runs_with_the_cleanup_ratios() {
        let config = BrokerConfig {
            disk_warning_ratio: 0.93,
            ..BrokerConfig::default()
        };
        let store = store_config(&config);
        assert_eq!(store.disk_guard.max_used_ratio, 0.93);
        let retention = store.retention.expect("the broker runs retention");
        assert_eq!(retention.cleanup_used_ratio, 0.75);
        assert_eq!(retention.forced_used_ratio, 0.85);
    }
}

//! The process-wide part of the broker every shard reads (`Send + Sync`): configuration,
//! the topic table, consumer-group membership, the inboxes, counters and the clock
//! (docs/decisions.md: control-plane state is shared, not owned by shard 0).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use ringmq_protocol::message::msg_id::UniqKeyGenerator;

use super::hop::Inboxes;
use super::Shard;
use crate::clock::ClockRef;
use crate::config::BrokerConfig;
use crate::groups::ConsumerGroups;
use crate::memory::MemoryBudget;
use crate::offload::Offload;
use crate::queue_locks::QueueLocks;
use crate::runtime_config::RuntimeConfig;
use crate::stats::BrokerStats;
use crate::subscription_groups::SubscriptionGroups;
use crate::topics::Topics;

/// Called when the topic table changed so the name servers learn it at once; returns a
/// predicate that tells when they have (the registration round it asked for is done).
pub type TopicsChanged = Box<dyn Fn() -> Box<dyn Fn() -> bool + Send + Sync> + Send + Sync>;

/// Where the master's HA port is, asked afresh before every connection attempt (on a
/// slave; the name server's answer may name it only after the first registration).
pub type MasterHaAddr = Arc<dyn Fn() -> Option<String> + Send + Sync>;

/// Longest a send to a topic it just created waits for the name servers to learn it.
const REGISTRATION_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// State shared by every shard of the broker process.
pub struct BrokerShared {
    pub config: Arc<BrokerConfig>,
    /// This broker's address as clients reach it: STOREHOST of stored messages and the
    /// address inside offset msgIds.
    pub broker_addr: SocketAddr,
    /// Shard-addressed layout: each shard's own address (the STOREHOST of what it stores);
    /// empty otherwise.
    shard_addrs: Vec<SocketAddr>,
    pub topics: Topics,
    pub groups: ConsumerGroups,
    /// Consumer-group configs (`subscriptionGroup.json`).
    pub subscription_groups: SubscriptionGroups,
    /// Queue locks of orderly consumption.
    pub queue_locks: QueueLocks,
    pub inboxes: Inboxes<Shard>,
    pub stats: BrokerStats,
    /// The settings changeable while the broker runs (read redirection).
    pub runtime: RuntimeConfig,
    /// Generates UNIQ_KEY for messages sent without one.
    pub uniq_keys: UniqKeyGenerator,
    /// Monotonic time for deadlines, wall time for what the protocol carries.
    pub clock: ClockRef,
    pub boot_timestamp_ms: i64,
    /// The memory pull answers draw from (`config.max_memory_bytes`).
    pub memory: Arc<MemoryBudget>,
    /// Runs control-plane work too big for a ring thread (a heartbeat of many groups).
    pub offload: Offload,
    /// Client connections open on all shards (bounded by `config.max_connections`).
    open_connections: AtomicUsize,
    topics_changed: TopicsChanged,
    /// On a slave: where its master's HA port is (set once at start).
    pub master_ha_addr: std::sync::OnceLock<MasterHaAddr>,
    /// Why the broker must stop (a slave its master refused); the process exits with it.
    pub fatal: std::sync::Mutex<Option<String>>,
}

impl std::fmt::Debug for BrokerShared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerShared")
            .field("broker_addr", &self.broker_addr)
            .field("shards", &self.inboxes.shards())
            .finish_non_exhaustive()
    }
}

impl BrokerShared {
    pub fn new(
        config: Arc<BrokerConfig>,
        broker_addr: SocketAddr,
        shard_addrs: Vec<SocketAddr>,
        topics: Topics,
        inboxes: Inboxes<Shard>,
        clock: ClockRef,
        topics_changed: TopicsChanged,
    ) -> Self {
        BrokerShared {
            memory: MemoryBudget::new(config.max_memory_bytes),
            offload: Offload::start(),
            runtime: RuntimeConfig::new(&config),
            config,
            broker_addr,
            shard_addrs,
            topics,
            groups: ConsumerGroups::new(),
            subscription_groups: SubscriptionGroups::in_memory(),
            queue_locks: QueueLocks::default(),
            inboxes,
            stats: BrokerStats::default(),
            uniq_keys: UniqKeyGenerator::new(broker_addr.ip()),
            boot_timestamp_ms: clock.wall_ms(),
            clock,
            open_connections: AtomicUsize::new(0),
            topics_changed,
            master_ha_addr: std::sync::OnceLock::new(),
            fatal: std::sync::Mutex::new(None),
        }
    }

    /// Uses `groups` (the store's file) for the consumer-group configs.
    pub fn with_subscription_groups(mut self, groups: SubscriptionGroups) -> Self {
        self.subscription_groups = groups;
        self
    }

    /// Tells the registration loop that the topic table changed.
    pub fn topics_changed(&self) {
        drop((self.topics_changed)());
    }

    /// Tells the registration loop that the topic table changed and waits (at most
    /// [`REGISTRATION_WAIT`]) until the name servers have the new table, as Apache RocketMQ
    /// registers a topic it auto-creates before it answers the send: a client that looks
    /// up the route right after SEND_OK then finds it.
    pub async fn topics_changed_and_registered(&self) {
        let registered = (self.topics_changed)();
        let deadline = std::time::Instant::now() + REGISTRATION_WAIT;
        while !registered() && std::time::Instant::now() < deadline {
            compio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
    }

    /// Whether each shard is a broker of its own (`--shard-addressed`).
    pub fn shard_addressed(&self) -> bool {
        self.config.shard_addressed
    }

    /// The address clients reach shard `shard_id`'s queues at.
    pub fn store_host(&self, shard_id: usize) -> SocketAddr {
        self.shard_addrs
            .get(shard_id)
            .copied()
            .unwrap_or(self.broker_addr)
    }

    /// The broker name shard `shard_id` answers as: `<name>-<shard>` when shard-addressed.
    pub fn broker_name(&self, shard_id: usize) -> String {
        broker_name_of(&self.config, shard_id)
    }

    /// Counts a new connection in; `false` (and nothing counted) when the broker already
    /// has its maximum open.
    pub fn admit_connection(&self) -> bool {
        let max = self.config.max_connections;
        self.open_connections
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| {
                (open < max).then_some(open + 1)
            })
            .is_ok()
    }

    /// A connection counted in by [`BrokerShared::admit_connection`] closed.
    pub fn connection_gone(&self) {
        let _ = self
            .open_connections
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| {
                open.checked_sub(1)
            });
    }

    /// Client connections open now, on all shards.
    pub fn open_connections(&self) -> usize {
        self.open_connections.load(Ordering::Acquire)
    }

    /// Queued answers one connection may hold: 64 MiB, or an eighth of the memory budget
    /// when that is smaller, so that a few clients that never read cannot take it all.
    pub fn outbox_limit_bytes(&self) -> usize {
        crate::connection::MAX_OUTBOX_BYTES.min(self.memory.capacity_bytes() / 8)
    }

    /// Shards of this broker.
    pub fn shards(&self) -> usize {
        self.inboxes.shards()
    }
}

/// The broker name of shard `shard_id` under `config` (registration uses it before any
/// shard runs).
pub fn broker_name_of(config: &BrokerConfig, shard_id: usize) -> String {
    if config.shard_addressed {
        format!("{}-{shard_id}", config.broker_name)
    } else {
        config.broker_name.clone()
    }
}

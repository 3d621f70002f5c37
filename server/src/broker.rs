//! The broker's state and its request router.
//!
//! [`BrokerShared`] is the process-wide part every shard reads (`Send + Sync`): the
//! configuration, the topic table, consumer-group membership, the inboxes and counters.
//! [`BrokerShard`] is one shard's part (`!Send`, owned by its thread): its connections (so
//! broker-initiated requests such as NOTIFY_CONSUMER_IDS_CHANGED can be written to them)
//! and, as they land, its store and held pulls. [`BrokerShard`] is the connection layer's
//! [`Service`]: [`processor::dispatch`] maps each request code to its processor.

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::future::{select, Either};
use ringmq_engine::commitlog::flush::FlushPolicy;
use ringmq_engine::disk_guard::DiskGuardConfig;
use ringmq_engine::offsets::{ConsumerOffsets, OffsetsError};
use ringmq_engine::store::{Arrival, Store, StoreConfig};

use ringmq_protocol::codes::{request_code, response_code};
use ringmq_protocol::command::{ExtFields, RemotingCommand};
use ringmq_protocol::message::msg_id::UniqKeyGenerator;

use crate::config::{BrokerConfig, FlushMode};
use crate::connection::{Connection, Response, Service};
use crate::groups::{ConnectionRef, ConsumerGroups, NotifyTarget};
use crate::inbox::{InboxError, Inboxes};
use crate::long_poll::LongPollRegistry;
use crate::notify::LocalNotify;
use crate::placement::shard_for_queue;
use crate::processor;
use crate::stats::BrokerStats;
use crate::timer_wheel::WheelConfig;
use crate::topics::Topics;

/// Called when the topic table changed so the name servers learn it at once.
pub type TopicsChanged = Box<dyn Fn() + Send + Sync>;

/// State shared by every shard of the broker process.
pub struct BrokerShared {
    pub config: Arc<BrokerConfig>,
    /// This broker's address as clients reach it: STOREHOST of stored messages and the
    /// address inside offset msgIds.
    pub broker_addr: SocketAddr,
    pub topics: Topics,
    pub groups: ConsumerGroups,
    pub inboxes: Inboxes<BrokerShard>,
    pub stats: BrokerStats,
    /// Generates UNIQ_KEY for messages sent without one.
    pub uniq_keys: UniqKeyGenerator,
    pub boot_timestamp_ms: i64,
    topics_changed: TopicsChanged,
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
        topics: Topics,
        inboxes: Inboxes<BrokerShard>,
        topics_changed: TopicsChanged,
    ) -> Self {
        BrokerShared {
            config,
            broker_addr,
            topics,
            groups: ConsumerGroups::new(),
            inboxes,
            stats: BrokerStats::default(),
            uniq_keys: UniqKeyGenerator::new(broker_addr.ip()),
            boot_timestamp_ms: now_ms() as i64,
            topics_changed,
        }
    }

    /// Tells the registration loop that the topic table changed.
    pub fn topics_changed(&self) {
        (self.topics_changed)();
    }
}

/// What a held pull waits on: fired by an arrival on its queue, its deadline, or shutdown.
pub type HeldPull = futures_channel::oneshot::Sender<()>;

/// How often consumer offsets are persisted (RocketMQ `flushConsumerOffsetInterval`).
const OFFSETS_PERSIST_INTERVAL: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum ShardOpenError {
    #[error("shard {shard_id}: opening its store")]
    Store {
        shard_id: usize,
        #[source]
        source: ringmq_engine::error::StoreError,
    },
    #[error("shard {shard_id}: loading consumer offsets")]
    Offsets {
        shard_id: usize,
        #[source]
        source: OffsetsError,
    },
    #[error("shard {shard_id}: timer wheel: {reason}")]
    Wheel { shard_id: usize, reason: String },
}

/// One shard's view of the broker.
#[derive(Debug)]
pub struct BrokerShard {
    pub shard_id: usize,
    pub shared: Arc<BrokerShared>,
    /// The CommitLog and ConsumeQueues of the queues placed on this shard.
    pub store: Store,
    /// Pulls waiting for messages on this shard's queues.
    pub held: RefCell<LongPollRegistry<HeldPull>>,
    /// A pull was held: the expiry task recomputes its next deadline.
    held_changed: LocalNotify,
    /// Consumer offsets of this shard's queues.
    pub offsets: RefCell<ConsumerOffsets>,
    offsets_path: PathBuf,
    /// Live connections of this shard that broker-initiated requests may be written to.
    connections: RefCell<HashMap<u64, Weak<Connection>>>,
}

impl BrokerShard {
    /// Opens this shard's store (recovering it), loads its offsets and starts its
    /// background tasks (held-pull expiry, offset persistence) on the current runtime.
    pub async fn open(
        shard_id: usize,
        shared: Arc<BrokerShared>,
    ) -> Result<Rc<Self>, ShardOpenError> {
        let config = &shared.config;
        let shards = shared.inboxes.shards();
        let store_config = StoreConfig {
            segment_size_bytes: config.commitlog_segment_size_bytes,
            flush: match config.flush {
                FlushMode::Async => FlushPolicy::Async {
                    interval_ms: config.flush_interval.as_millis() as u64,
                },
                FlushMode::Sync => FlushPolicy::Sync,
            },
            disk_guard: DiskGuardConfig {
                max_used_ratio: config.disk_max_used_ratio,
                ..DiskGuardConfig::default()
            },
            ..StoreConfig::default()
        };
        let shard_byte = u8::try_from(shard_id).unwrap_or(u8::MAX);
        let store = Store::open_with_placement(
            &config.store_dir,
            shard_byte,
            store_config,
            move |topic, queue_id| shard_for_queue(topic, queue_id, shards) == shard_id,
        )
        .await
        .map_err(|source| ShardOpenError::Store { shard_id, source })?;
        let offsets_dir = config
            .store_dir
            .join("config")
            .join(format!("shard-{shard_id}"));
        std::fs::create_dir_all(&offsets_dir).map_err(|source| ShardOpenError::Offsets {
            shard_id,
            source: OffsetsError::Io {
                path: offsets_dir.clone(),
                source,
            },
        })?;
        let offsets_path = offsets_dir.join("consumerOffset.json");
        let offsets = ConsumerOffsets::load(&offsets_path)
            .map_err(|source| ShardOpenError::Offsets { shard_id, source })?;
        let held = LongPollRegistry::new(WheelConfig::default(), now_ms()).map_err(|e| {
            ShardOpenError::Wheel {
                shard_id,
                reason: e.to_string(),
            }
        })?;
        let shard = Rc::new(BrokerShard {
            shard_id,
            shared,
            store,
            held: RefCell::new(held),
            held_changed: LocalNotify::default(),
            offsets: RefCell::new(offsets),
            offsets_path,
            connections: RefCell::new(HashMap::new()),
        });
        let weak = Rc::downgrade(&shard);
        shard.store.set_arrival_listener(move |arrival: &Arrival| {
            if let Some(shard) = weak.upgrade() {
                shard.wake_held(arrival);
            }
        });
        compio::runtime::spawn(expiry_loop(Rc::downgrade(&shard))).detach();
        if shard_id == 0 {
            // Control plane: one shard scans group membership for the whole broker.
            compio::runtime::spawn(member_expiry_loop(Rc::downgrade(&shard))).detach();
        }
        compio::runtime::spawn(offsets_loop(Rc::downgrade(&shard))).detach();
        Ok(shard)
    }

    fn wake_held(&self, arrival: &Arrival) {
        let released = self.held.borrow_mut().on_arrival(
            &arrival.topic,
            arrival.queue_id,
            arrival.max_offset,
            arrival.tags_code,
        );
        for waiter in released {
            let _ = waiter.send(());
        }
    }

    /// A pull was just held: let the expiry task see its deadline.
    pub fn held_changed(&self) {
        self.held_changed.notify();
    }

    /// Runs `work` on shard `owner`: directly when that is this shard, through its inbox
    /// otherwise.
    pub async fn on_shard<T, F, Fut>(
        self: &Rc<Self>,
        owner: usize,
        work: F,
    ) -> Result<T, InboxError>
    where
        T: Send + 'static,
        F: FnOnce(Rc<BrokerShard>) -> Fut + Send + 'static,
        Fut: Future<Output = T> + 'static,
    {
        if owner == self.shard_id {
            Ok(work(Rc::clone(self)).await)
        } else {
            self.shared.inboxes.call(owner, work).await
        }
    }

    /// The shard owning `(topic, queue_id)`.
    pub fn owner_of(&self, topic: &str, queue_id: i32) -> usize {
        shard_for_queue(topic, queue_id, self.shared.inboxes.shards())
    }

    /// Shutdown work: answer every held pull, flush the store, persist offsets.
    pub async fn shut_down(&self) {
        let held = self.held.borrow_mut().drain_all();
        for waiter in held {
            let _ = waiter.send(());
        }
        if let Err(error) = self.store.flush().await {
            tracing::error!(
                shard_id = self.shard_id,
                error = %processor::error_chain(&error),
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
                shard_id = self.shard_id,
                error = %processor::error_chain(&error),
                "persisting consumer offsets failed"
            );
        }
    }

    /// Forgets the held pulls of a closed connection (each shard holds its own).
    pub fn drop_held_pulls(&self, connection_id: u64) {
        self.held.borrow_mut().drop_connection(connection_id);
    }

    pub fn config(&self) -> &BrokerConfig {
        &self.shared.config
    }

    /// The group table's handle for a connection of this shard.
    pub fn connection_ref(&self, connection: &Connection) -> ConnectionRef {
        ConnectionRef {
            shard_id: self.shard_id,
            connection_id: connection.id,
        }
    }

    /// Remembers a connection so NOTIFY_CONSUMER_IDS_CHANGED can reach it later.
    pub fn track_connection(&self, connection: &Rc<Connection>) {
        self.connections
            .borrow_mut()
            .entry(connection.id)
            .or_insert_with(|| Rc::downgrade(connection));
    }

    /// Closes connection `connection_id` of this shard if it is still open.
    pub fn close_connection(&self, connection_id: u64) {
        let connection = self
            .connections
            .borrow()
            .get(&connection_id)
            .and_then(Weak::upgrade);
        if let Some(connection) = connection {
            connection.close();
        }
    }

    fn notify_local(&self, connection_id: u64, group: &str) {
        let connection = self
            .connections
            .borrow()
            .get(&connection_id)
            .and_then(Weak::upgrade);
        if let Some(connection) = connection {
            let mut ext = ExtFields::new();
            ext.insert("consumerGroup".to_owned(), group.to_owned());
            let request =
                RemotingCommand::request(request_code::NOTIFY_CONSUMER_IDS_CHANGED, ext).oneway();
            connection.send(Response::Command(request));
        }
    }
}

impl Service for BrokerShard {
    async fn handle(
        self: Rc<Self>,
        connection: Rc<Connection>,
        request: RemotingCommand,
    ) -> Option<Response> {
        processor::dispatch(&self, &connection, request).await
    }

    fn connection_closed(&self, connection: &Connection) {
        self.connections.borrow_mut().remove(&connection.id);
        // Its pulls may be held on any shard.
        self.drop_held_pulls(connection.id);
        let connection_id = connection.id;
        for shard in 0..self.shared.inboxes.shards() {
            if shard == self.shard_id {
                continue;
            }
            let inboxes = self.shared.inboxes.clone();
            compio::runtime::spawn(async move {
                let job: crate::inbox::ShardJob<BrokerShard> =
                    Box::new(move |owner: &Rc<BrokerShard>| owner.drop_held_pulls(connection_id));
                let _ = inboxes.post(shard, job).await;
            })
            .detach();
        }
        let notify = self
            .shared
            .groups
            .connection_closed(self.connection_ref(connection));
        if notify.is_empty() {
            return;
        }
        // Notifications may go through other shards' inboxes: send them from a task.
        compio::runtime::spawn(notify_consumer_ids_changed(
            Arc::clone(&self.shared),
            notify,
        ))
        .detach();
    }
}

/// Sends NOTIFY_CONSUMER_IDS_CHANGED (oneway) to each target through the inbox of the shard
/// that owns its connection (this shard's own inbox included: one path for all).
pub async fn notify_consumer_ids_changed(shared: Arc<BrokerShared>, targets: Vec<NotifyTarget>) {
    for target in targets {
        let shard = target.shard_id;
        let posted = shared
            .inboxes
            .post(
                shard,
                Box::new(move |owner: &Rc<BrokerShard>| {
                    owner.notify_local(target.connection_id, &target.group);
                }),
            )
            .await;
        if let Err(error) = posted {
            tracing::warn!(%error, "cannot route a consumer-ids-changed notification");
        }
    }
}

/// The answer to a request code this broker does not serve.
pub fn not_supported(request: &RemotingCommand) -> RemotingCommand {
    RemotingCommand::response_to(request, response_code::REQUEST_CODE_NOT_SUPPORTED)
        .with_remark(format!(" request type {} not supported", request.code))
}

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Answers held pulls whose hold expired. Sleeps until the earliest deadline, or until a
/// new pull is held (it may expire sooner).
async fn expiry_loop(shard: Weak<BrokerShard>) {
    loop {
        let Some(this) = shard.upgrade() else { return };
        let now = now_ms();
        let wait_ms = this
            .held
            .borrow()
            .next_deadline()
            .map_or(1000, |deadline| deadline.saturating_sub(now).clamp(1, 1000));
        {
            let sleep = std::pin::pin!(compio::time::sleep(Duration::from_millis(wait_ms)));
            let changed = std::pin::pin!(this.held_changed.notified());
            let _ = select(sleep, changed).await;
        }
        let expired = this.held.borrow_mut().expire(now_ms());
        for waiter in expired {
            let _ = waiter.send(());
        }
    }
}

/// How often group members are checked for silence (RocketMQ's ClientHousekeepingService).
const MEMBER_SCAN_INTERVAL: Duration = Duration::from_secs(10);

/// Removes group members silent for 120 s, notifies the rest of their groups and closes
/// their connections (protocol.md §7.3).
async fn member_expiry_loop(shard: Weak<BrokerShard>) {
    loop {
        compio::time::sleep(MEMBER_SCAN_INTERVAL).await;
        let Some(this) = shard.upgrade() else { return };
        let expired = this
            .shared
            .groups
            .expire(now_ms(), crate::groups::CHANNEL_EXPIRED_TIMEOUT_MS);
        for connection in expired.connections {
            let job: crate::inbox::ShardJob<BrokerShard> =
                Box::new(move |owner: &Rc<BrokerShard>| {
                    owner.close_connection(connection.connection_id)
                });
            if let Err(error) = this.shared.inboxes.post(connection.shard_id, job).await {
                tracing::warn!(%error, "cannot close an expired connection");
            }
        }
        if !expired.notify.is_empty() {
            notify_consumer_ids_changed(Arc::clone(&this.shared), expired.notify).await;
        }
    }
}

/// Persists consumer offsets every few seconds.
async fn offsets_loop(shard: Weak<BrokerShard>) {
    loop {
        compio::time::sleep(OFFSETS_PERSIST_INTERVAL).await;
        let Some(this) = shard.upgrade() else { return };
        this.persist_offsets().await;
    }
}

/// Waits for `fut`, but at most `limit`.
pub async fn with_limit<F: Future>(fut: F, limit: Duration) -> Option<F::Output> {
    let fut = std::pin::pin!(fut);
    let sleep = std::pin::pin!(compio::time::sleep(limit));
    match select(fut, sleep).await {
        Either::Left((value, _)) => Some(value),
        Either::Right(_) => None,
    }
}

//! The lite-pull consumer (Java `DefaultLitePullConsumer`): the caller polls batches.
//! Queues come from group rebalance (`subscribe`) or from the caller (`assign`). One background
//! task per queue long-polls the broker (LITE_PULL_MESSAGE, suspend 20 s) and hands batches to
//! a bounded channel that `poll` drains; the channel bound is the flow control.
//!
//! Offsets: polling a batch advances the queue's consumed offset to one past its last message;
//! `commit_sync` persists them (awaited), auto commit persists them every 5 s. A seek bumps the
//! queue's generation: batches pulled before the seek are discarded by `poll`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), ringmq_client::ClientError> {
//! use std::time::Duration;
//! use ringmq_client::{LitePullConfig, LitePullConsumer};
//!
//! let consumer = LitePullConsumer::new(LitePullConfig::new("127.0.0.1:9876", "my-pullers"));
//! consumer.subscribe("TopicTest", "*")?;
//! consumer.start().await?;
//! let batch = consumer.poll(Duration::from_secs(1)).await;
//! for m in &batch {
//!     println!("{}:{} {:?}", m.queue_id, m.queue_offset, m.body);
//! }
//! consumer.commit_sync().await;
//! consumer.shutdown().await;
//! # Ok(()) }
//! ```

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use ringmq_protocol::body::{ConsumeType, ConsumerData, MessageModel, MessageQueue};
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinHandle;

use crate::allocate::AllocateStrategy;
use crate::api;
use crate::consumer::{
    compute_assignment, rebalance_on_notify, start_offset_for, ConsumeFrom, OffsetStore,
    Subscription,
};
use crate::core::{periodic, ClientConfig, ClientCore};
use crate::error::{ClientError, Result};
use crate::message::MessageExt;
use crate::puller::{PullFlavor, Pulled, QueuePuller};

/// Lite-pull settings (defaults from protocol.md §10.4).
#[derive(Debug, Clone)]
pub struct LitePullConfig {
    /// Shared client settings.
    pub client: ClientConfig,
    /// Consumer group.
    pub group: String,
    /// Clustering (default) or broadcasting.
    pub model: MessageModel,
    /// Where to start without a stored offset.
    pub consume_from: ConsumeFrom,
    /// Allocation strategy for `subscribe`.
    pub strategy: AllocateStrategy,
    /// Messages per pull. Default 10.
    pub pull_batch_size: i32,
    /// Persist polled offsets every `auto_commit_interval`. Default true.
    pub auto_commit: bool,
    /// Default 5 s.
    pub auto_commit_interval: Duration,
    /// Batches buffered ahead of `poll` (over all queues). Default 64.
    pub buffered_batches: usize,
    /// How long the broker may hold a pull. Default 20 s.
    pub suspend_timeout: Duration,
    /// Client-side pull timeout. Default 30 s.
    pub pull_timeout: Duration,
    /// Rebalance period for `subscribe`. Default 20 s.
    pub rebalance_interval: Duration,
    /// Base directory of the broadcasting offset file.
    pub offset_store_dir: Option<PathBuf>,
}

impl LitePullConfig {
    /// Defaults for `namesrv` and `group`.
    pub fn new(namesrv: &str, group: impl Into<String>) -> Self {
        LitePullConfig {
            client: ClientConfig::new(namesrv),
            group: group.into(),
            model: MessageModel::Clustering,
            consume_from: ConsumeFrom::LastOffset,
            strategy: AllocateStrategy::Averagely,
            pull_batch_size: 10,
            auto_commit: true,
            auto_commit_interval: Duration::from_secs(5),
            buffered_batches: 64,
            suspend_timeout: Duration::from_secs(20),
            pull_timeout: Duration::from_secs(30),
            rebalance_interval: Duration::from_secs(20),
            offset_store_dir: None,
        }
    }
}

#[derive(Debug)]
struct Batch {
    mq: MessageQueue,
    generation: u64,
    messages: Vec<MessageExt>,
}

#[derive(Debug)]
struct QueueState {
    generation: u64,
    task: JoinHandle<()>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Mode {
    Unset,
    Subscribe(BTreeMap<String, Subscription>),
    Assign(Vec<MessageQueue>),
}

struct Inner {
    core: Arc<ClientCore>,
    config: LitePullConfig,
    mode: Mutex<Mode>,
    queues: Mutex<HashMap<MessageQueue, QueueState>>,
    offsets: Mutex<Option<Arc<OffsetStore>>>,
    tx: mpsc::Sender<Batch>,
    rx: tokio::sync::Mutex<mpsc::Receiver<Batch>>,
    generation: AtomicU64,
    rebalance_wakeup: Notify,
    rebalance_lock: tokio::sync::Mutex<()>,
    started: AtomicBool,
    stopping: AtomicBool,
}

/// A lite-pull consumer. Cheap to clone.
#[derive(Clone)]
pub struct LitePullConsumer {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for LitePullConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LitePullConsumer")
            .field("group", &self.inner.config.group)
            .field("client_id", &self.inner.core.client_id)
            .finish()
    }
}

impl LitePullConsumer {
    /// A consumer (not started).
    pub fn new(config: LitePullConfig) -> Self {
        let (tx, rx) = mpsc::channel(config.buffered_batches.max(1));
        LitePullConsumer {
            inner: Arc::new(Inner {
                core: ClientCore::new(config.client.clone()),
                config,
                mode: Mutex::new(Mode::Unset),
                queues: Mutex::new(HashMap::new()),
                offsets: Mutex::new(None),
                tx,
                rx: tokio::sync::Mutex::new(rx),
                generation: AtomicU64::new(1),
                rebalance_wakeup: Notify::new(),
                rebalance_lock: tokio::sync::Mutex::new(()),
                started: AtomicBool::new(false),
                stopping: AtomicBool::new(false),
            }),
        }
    }

    /// The client id.
    pub fn client_id(&self) -> &str {
        &self.inner.core.client_id
    }

    /// Subscribes `topic` (queues come from group rebalance). Not allowed after `assign`.
    pub fn subscribe(&self, topic: &str, expression: &str) -> Result<()> {
        let mut mode = self
            .inner
            .mode
            .lock()
            .map_err(|_| ClientError::State("poisoned"))?;
        match &mut *mode {
            Mode::Assign(_) => Err(ClientError::InvalidArgument(
                "subscribe and assign cannot be mixed".into(),
            )),
            Mode::Subscribe(subs) => {
                subs.insert(topic.to_owned(), Subscription::new(topic, expression));
                self.inner.rebalance_wakeup.notify_one();
                Ok(())
            }
            Mode::Unset => {
                let mut subs = BTreeMap::new();
                subs.insert(topic.to_owned(), Subscription::new(topic, expression));
                *mode = Mode::Subscribe(subs);
                Ok(())
            }
        }
    }

    /// Assigns queues explicitly (no rebalance). May be called again to change the set.
    pub async fn assign(&self, queues: Vec<MessageQueue>) -> Result<()> {
        {
            let mut mode = self
                .inner
                .mode
                .lock()
                .map_err(|_| ClientError::State("poisoned"))?;
            if let Mode::Subscribe(_) = &*mode {
                return Err(ClientError::InvalidArgument(
                    "subscribe and assign cannot be mixed".into(),
                ));
            }
            *mode = Mode::Assign(queues.clone());
        }
        if self.inner.started.load(Ordering::Acquire) {
            self.inner.apply_assignment(None, queues).await;
        }
        Ok(())
    }

    /// The queues this consumer reads now.
    pub fn assignment(&self) -> Vec<MessageQueue> {
        let mut queues: Vec<MessageQueue> = self
            .inner
            .queues
            .lock()
            .map(|q| q.keys().cloned().collect())
            .unwrap_or_default();
        queues.sort();
        queues
    }

    /// Starts pulling (and, in subscribe mode, heartbeats and rebalancing).
    pub async fn start(&self) -> Result<()> {
        let inner = &self.inner;
        let config = &inner.config;
        if config.group.is_empty() {
            return Err(ClientError::InvalidArgument(
                "consumer group is empty".into(),
            ));
        }
        let mode = inner
            .mode
            .lock()
            .map_err(|_| ClientError::State("poisoned"))?
            .clone();
        if mode == Mode::Unset {
            return Err(ClientError::InvalidArgument(
                "subscribe or assign before start".into(),
            ));
        }
        if inner.started.swap(true, Ordering::AcqRel) {
            return Err(ClientError::State("already started"));
        }
        let store = OffsetStore::for_model(
            config.model,
            &config.group,
            config.offset_store_dir.as_deref(),
            &inner.core.client_id,
        )?;
        if let Ok(mut slot) = inner.offsets.lock() {
            *slot = Some(Arc::new(store));
        }
        let weak = Arc::downgrade(inner);
        inner.core.set_consumer_data(Arc::new(move || {
            weak.upgrade()
                .map(|i| vec![i.consumer_data()])
                .unwrap_or_default()
        }));
        rebalance_on_notify(
            &inner.core,
            config.group.clone(),
            Arc::downgrade(inner),
            |inner| &inner.rebalance_wakeup,
        );
        match mode {
            Mode::Subscribe(subs) => {
                for topic in subs.keys() {
                    inner.core.routes.fetch(topic).await?;
                }
                inner.core.heartbeat_all().await;
                inner.core.start_timers();
                Inner::rebalance(inner).await;
                let weak = Arc::downgrade(inner);
                inner.core.add_task(tokio::spawn(rebalance_loop(weak)));
            }
            Mode::Assign(queues) => {
                for topic in queues
                    .iter()
                    .map(|q| q.topic.clone())
                    .collect::<std::collections::BTreeSet<_>>()
                {
                    inner.core.routes.fetch(&topic).await?;
                }
                inner.core.start_timers();
                inner.apply_assignment(None, queues).await;
            }
            Mode::Unset => {}
        }
        if config.auto_commit {
            let weak = Arc::downgrade(inner);
            inner.core.add_task(tokio::spawn(periodic(
                Arc::downgrade(&inner.core),
                config.auto_commit_interval,
                move |_core| {
                    let weak = weak.clone();
                    async move {
                        if let Some(inner) = weak.upgrade() {
                            inner.commit(true).await;
                        }
                    }
                },
            )));
        }
        Ok(())
    }

    /// Up to one pulled batch per call, waiting up to `timeout` for one; empty on timeout.
    /// The queue's consumed offset moves past the returned messages.
    pub async fn poll(&self, timeout: Duration) -> Vec<MessageExt> {
        let inner = &self.inner;
        let deadline = tokio::time::Instant::now() + timeout;
        let mut rx = inner.rx.lock().await;
        loop {
            let batch = match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(batch)) => batch,
                Ok(None) | Err(_) => return Vec::new(),
            };
            let current = inner
                .queues
                .lock()
                .ok()
                .and_then(|q| q.get(&batch.mq).map(|s| s.generation));
            if current != Some(batch.generation) {
                continue; // pulled before a seek or for a queue no longer assigned
            }
            if let (Some(last), Some(store)) = (batch.messages.last(), inner.offsets()) {
                store.update(&batch.mq, last.queue_offset + 1, false);
            }
            return batch.messages;
        }
    }

    /// Restarts reading `mq` at `offset` (and makes it the consumed offset).
    pub async fn seek(&self, mq: &MessageQueue, offset: i64) -> Result<()> {
        let inner = &self.inner;
        let assigned = inner
            .queues
            .lock()
            .map(|q| q.contains_key(mq))
            .unwrap_or(false);
        if !assigned {
            return Err(ClientError::InvalidArgument(format!(
                "{mq:?} is not assigned to this consumer"
            )));
        }
        if let Some(store) = inner.offsets() {
            store.update(mq, offset, false);
        }
        inner.start_queue(mq.clone(), offset);
        Ok(())
    }

    /// Seeks `mq` to the first message stored at or after `timestamp_ms`.
    pub async fn seek_to_timestamp(&self, mq: &MessageQueue, timestamp_ms: i64) -> Result<()> {
        let offset = api::search_offset(&self.inner.core, mq, timestamp_ms).await?;
        self.seek(mq, offset).await
    }

    /// Seeks `mq` to its first stored message.
    pub async fn seek_to_begin(&self, mq: &MessageQueue) -> Result<()> {
        let offset = api::min_offset(&self.inner.core, mq).await?;
        self.seek(mq, offset).await
    }

    /// Seeks `mq` to its end (only new messages).
    pub async fn seek_to_end(&self, mq: &MessageQueue) -> Result<()> {
        let offset = api::max_offset(&self.inner.core, mq).await?;
        self.seek(mq, offset).await
    }

    /// The consumed (next) offset of `mq` in memory.
    pub fn committed_position(&self, mq: &MessageQueue) -> Option<i64> {
        self.inner.offsets().and_then(|s| s.get(mq))
    }

    /// Persists the consumed offsets of the assigned queues now (awaited).
    pub async fn commit_sync(&self) {
        self.inner.commit(false).await;
    }

    /// Stops pulling, commits (when auto commit is on), unregisters and closes.
    pub async fn shutdown(&self) {
        let inner = &self.inner;
        if inner.stopping.swap(true, Ordering::AcqRel) {
            return;
        }
        if let Ok(queues) = inner.queues.lock() {
            for state in queues.values() {
                state.task.abort();
            }
        }
        if inner.config.auto_commit {
            inner.commit(false).await;
        }
        inner.core.unregister(None, Some(&inner.config.group)).await;
        inner.core.shutdown().await;
    }
}

async fn rebalance_loop(inner: Weak<Inner>) {
    let every = match inner.upgrade() {
        Some(i) => i.config.rebalance_interval,
        None => return,
    };
    loop {
        let Some(strong) = inner.upgrade() else {
            return;
        };
        let _ = tokio::time::timeout(every, strong.rebalance_wakeup.notified()).await;
        if strong.stopping.load(Ordering::Acquire) {
            return;
        }
        Inner::rebalance(&strong).await;
    }
}

impl Inner {
    fn offsets(&self) -> Option<Arc<OffsetStore>> {
        self.offsets.lock().ok()?.clone()
    }

    fn subscriptions(&self) -> BTreeMap<String, Subscription> {
        match self.mode.lock().map(|m| m.clone()) {
            Ok(Mode::Subscribe(subs)) => subs,
            _ => BTreeMap::new(),
        }
    }

    fn subscription_for(&self, topic: &str) -> Subscription {
        self.subscriptions()
            .remove(topic)
            .unwrap_or_else(|| Subscription::new(topic, "*"))
    }

    fn consumer_data(&self) -> ConsumerData {
        ConsumerData {
            group_name: self.config.group.clone(),
            consume_type: ConsumeType::ConsumeActively,
            message_model: self.config.model,
            consume_from_where: self.config.consume_from.java(),
            subscription_data_set: self
                .subscriptions()
                .values()
                .map(Subscription::data)
                .collect(),
            unit_mode: false,
        }
    }

    async fn commit(&self, oneway: bool) {
        let Some(store) = self.offsets() else {
            return;
        };
        let queues: Vec<MessageQueue> = self
            .queues
            .lock()
            .map(|q| q.keys().cloned().collect())
            .unwrap_or_default();
        store.persist_all(&self.core, Some(&queues), oneway).await;
    }

    async fn rebalance(self: &Arc<Self>) {
        if self.stopping.load(Ordering::Acquire) {
            return;
        }
        let _guard = self.rebalance_lock.lock().await;
        for topic in self.subscriptions().keys() {
            if let Some(assigned) = compute_assignment(
                &self.core,
                &self.config.group,
                topic,
                self.config.model,
                self.config.strategy,
            )
            .await
            {
                self.apply_assignment(Some(topic), assigned).await;
            }
        }
    }

    /// Makes the queues of `topic` (all queues when `None`) exactly `assigned`.
    async fn apply_assignment(self: &Arc<Self>, topic: Option<&str>, assigned: Vec<MessageQueue>) {
        let Some(store) = self.offsets() else {
            return;
        };
        let removed: Vec<MessageQueue> = self
            .queues
            .lock()
            .map(|q| {
                q.keys()
                    .filter(|mq| topic.is_none_or(|t| mq.topic == t) && !assigned.contains(mq))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        for mq in removed {
            if let Ok(mut queues) = self.queues.lock() {
                if let Some(state) = queues.remove(&mq) {
                    state.task.abort();
                }
            }
            if let Err(e) = store.persist(&self.core, &mq, false).await {
                tracing::debug!(queue = ?mq, error = %e, "offset commit on queue removal failed");
            }
            store.remove(&mq);
        }
        for mq in assigned {
            let present = self
                .queues
                .lock()
                .map(|q| q.contains_key(&mq))
                .unwrap_or(true);
            if present {
                continue;
            }
            let Some(start) =
                start_offset_for(&self.core, &store, &mq, self.config.consume_from).await
            else {
                continue;
            };
            store.update(&mq, start, false);
            self.start_queue(mq, start);
        }
    }

    /// (Re)starts the pull task of `mq` at `offset` under a new generation.
    fn start_queue(self: &Arc<Self>, mq: MessageQueue, offset: i64) {
        let generation = self.generation.fetch_add(1, Ordering::Relaxed);
        let task = tokio::spawn(pull_loop(
            Arc::downgrade(self),
            mq.clone(),
            generation,
            offset,
        ));
        if let Ok(mut queues) = self.queues.lock() {
            if let Some(old) = queues.insert(mq, QueueState { generation, task }) {
                old.task.abort();
            }
        }
    }

    /// The puller of `mq` from `start` (LITE_PULL_MESSAGE; offsets are committed by `poll`
    /// and the commit calls, not with the pulls).
    fn puller(&self, mq: &MessageQueue, start: i64) -> QueuePuller {
        let config = &self.config;
        let sub = self.subscription_for(&mq.topic);
        QueuePuller::new(
            Arc::clone(&self.core),
            &config.group,
            mq.clone(),
            sub,
            start,
        )
        .with_flavor(PullFlavor::LitePull)
        .with_batch_size(config.pull_batch_size)
        .with_suspend_timeout(config.suspend_timeout)
        .with_pull_timeout(config.pull_timeout)
    }
}

async fn pull_loop(inner: Weak<Inner>, mq: MessageQueue, generation: u64, start: i64) {
    let Some(mut puller) = inner.upgrade().map(|inner| inner.puller(&mq, start)) else {
        return;
    };
    loop {
        let Some(inner) = inner.upgrade() else {
            return;
        };
        if inner.stopping.load(Ordering::Acquire) {
            return;
        }
        puller.set_subscription(inner.subscription_for(&mq.topic));
        match puller.next_batch().await {
            Ok(Pulled::Messages(messages)) => {
                let tx = inner.tx.clone();
                drop(inner);
                let batch = Batch {
                    mq: mq.clone(),
                    generation,
                    messages,
                };
                // Blocks while `poll` is behind: this is the flow control.
                if tx.send(batch).await.is_err() {
                    return;
                }
            }
            Ok(Pulled::OffsetMoved { to, .. }) => {
                tracing::warn!(queue = ?mq, next = to, "pull offset illegal; moved");
            }
            Ok(Pulled::CaughtUp | Pulled::Filtered) => {}
            Err(e) => {
                tracing::debug!(queue = ?mq, error = %e, "lite pull failed");
                drop(inner);
                tokio::time::sleep(Duration::from_secs(3)).await;
            }
        }
    }
}

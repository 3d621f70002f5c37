//! The push consumer: a long-polling pull loop per assigned queue, a process queue per queue
//! with flow control, a listener called concurrently on a bounded pool of blocking threads,
//! send-back of failed messages, rebalance, offset commits, and graceful shutdown
//! (protocol.md §2.4, §6, §7, §9.2).
//!
//! Offsets: the committed offset of a queue is the lowest offset still in flight (see
//! [`InFlight`]); it is persisted every 5 s (oneway UPDATE_CONSUMER_OFFSET, or the local file in
//! broadcasting), awaited when a queue is taken away by rebalance, and at shutdown. Delivery is
//! at least once: a crash or a queue moving to another member redelivers what was in flight.
//!
//! ```no_run
//! # async fn demo() -> Result<(), ringmq_client::ClientError> {
//! use ringmq_client::{ConsumeStatus, MessageExt, PushConsumer, PushConsumerConfig};
//!
//! let consumer = PushConsumer::new(
//!     PushConsumerConfig::new("127.0.0.1:9876", "my-group"),
//!     |msgs: &[MessageExt]| {
//!         for m in msgs {
//!             println!("{} {:?}", m.msg_id(), m.body);
//!         }
//!         ConsumeStatus::Success
//!     },
//! );
//! consumer.subscribe("TopicTest", "TagA || TagB")?;
//! consumer.start().await?;
//! // ... later
//! consumer.shutdown().await;
//! # Ok(()) }
//! ```

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use ringmq_protocol::body::{ConsumeType, ConsumerData, MessageModel, MessageQueue};
use ringmq_protocol::codes::response_code;
use ringmq_protocol::message::properties::keys;
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinHandle;

use crate::allocate::AllocateStrategy;
use crate::api;
use crate::consumer::{
    compute_assignment, rebalance_on_notify, retry_topic, start_offset_for, ConsumeFrom, InFlight,
    OffsetStore, Subscription,
};
use crate::core::{periodic, ClientConfig, ClientCore};
use crate::error::{ClientError, Result};
use crate::listener_pool::ListenerPool;
use crate::message::{Message, MessageExt};
use crate::producer::{Producer, ProducerConfig};
use crate::puller::{PullCommit, PullFlavor, Pulled, QueuePuller};

/// How often an orderly member renews its queue locks (Java's 20 s; the broker's locks live
/// 60 s).
const LOCK_RENEW_INTERVAL: Duration = Duration::from_secs(20);

/// What the listener says about a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumeStatus {
    /// Consumed; the offset may advance past it.
    Success,
    /// Failed; redeliver later (sent back to the broker's retry topic in clustering mode).
    ReconsumeLater,
}

/// The user's message handler. Called on a blocking thread, possibly concurrently for
/// different batches. A panic counts as [`ConsumeStatus::ReconsumeLater`].
pub trait MessageListener: Send + Sync + 'static {
    /// Handles a batch (of at most `consume_batch_size` messages, all from one queue).
    fn consume(&self, msgs: &[MessageExt]) -> ConsumeStatus;
}

impl<F> MessageListener for F
where
    F: Fn(&[MessageExt]) -> ConsumeStatus + Send + Sync + 'static,
{
    fn consume(&self, msgs: &[MessageExt]) -> ConsumeStatus {
        self(msgs)
    }
}

/// Push-consumer settings (defaults from protocol.md §10.4 and §7.3).
#[derive(Debug, Clone)]
pub struct PushConsumerConfig {
    /// Shared client settings.
    pub client: ClientConfig,
    /// Consumer group.
    pub group: String,
    /// Clustering (default) or broadcasting.
    pub model: MessageModel,
    /// Where to start without a stored offset. Default last offset.
    pub consume_from: ConsumeFrom,
    /// Allocation strategy. Default averagely.
    pub strategy: AllocateStrategy,
    /// Messages per pull. Default 32.
    pub pull_batch_size: i32,
    /// Stop pulling a queue with this many messages in flight. Default 1000.
    pub pull_threshold_for_queue: usize,
    /// Stop pulling a queue with this many body bytes in flight. Default 100 MiB.
    pub pull_threshold_size_for_queue: usize,
    /// Stop pulling a queue whose in-flight offsets span more than this. Default 2000.
    pub consume_concurrently_max_span: i64,
    /// Messages per listener call. Default 1.
    pub consume_batch_size: usize,
    /// Concurrent listener calls. Default 20.
    pub consume_threads: usize,
    /// How long the broker may hold a pull. Default 15 s.
    pub suspend_timeout: Duration,
    /// Client-side pull timeout (above the hold). Default 30 s.
    pub pull_timeout: Duration,
    /// Rebalance period. Default 20 s.
    pub rebalance_interval: Duration,
    /// Offset persist period. Default 5 s.
    pub persist_interval: Duration,
    /// Deliveries before the broker moves a message to the DLQ. Default 16.
    pub max_reconsume_times: i32,
    /// How long shutdown waits for running listener calls. Default 10 s.
    pub shutdown_timeout: Duration,
    /// Send the subscription with every pull (`postSubscriptionWhenPull`). Default false.
    pub post_subscription_when_pull: bool,
    /// Base directory of the broadcasting offset file (default `~/.rocketmq_offsets`).
    pub offset_store_dir: Option<PathBuf>,
    /// Orderly consumption (Java's `MessageListenerOrderly`): in clustering, a queue is
    /// consumed only while this member holds its lock on the broker (LOCK_BATCH_MQ, renewed
    /// every 20 s), one batch at a time in queue order; a batch the listener answers
    /// [`ConsumeStatus::ReconsumeLater`] is retried in place after
    /// `suspend_current_queue` (Java's SUSPEND_CURRENT_QUEUE_A_MOMENT), and after
    /// `max_reconsume_times` failures moved to the group's DLQ. Default false.
    pub orderly: bool,
    /// Orderly: how long a queue pauses after a failed batch. Default 1 s.
    pub suspend_current_queue: Duration,
}

impl PushConsumerConfig {
    /// Defaults for `namesrv` and `group`.
    pub fn new(namesrv: &str, group: impl Into<String>) -> Self {
        PushConsumerConfig {
            client: ClientConfig::new(namesrv),
            group: group.into(),
            model: MessageModel::Clustering,
            consume_from: ConsumeFrom::LastOffset,
            strategy: AllocateStrategy::Averagely,
            pull_batch_size: 32,
            pull_threshold_for_queue: 1000,
            pull_threshold_size_for_queue: 100 * 1024 * 1024,
            consume_concurrently_max_span: 2000,
            consume_batch_size: 1,
            consume_threads: 20,
            suspend_timeout: Duration::from_secs(15),
            pull_timeout: Duration::from_secs(30),
            rebalance_interval: Duration::from_secs(20),
            persist_interval: Duration::from_secs(5),
            max_reconsume_times: 16,
            shutdown_timeout: Duration::from_secs(10),
            post_subscription_when_pull: false,
            offset_store_dir: None,
            orderly: false,
            suspend_current_queue: Duration::from_secs(1),
        }
    }
}

/// One assigned queue: its in-flight messages and its pull task.
#[derive(Debug, Default)]
struct ProcessQueue {
    in_flight: Mutex<InFlight>,
    dropped: AtomicBool,
    pull_task: Mutex<Option<JoinHandle<()>>>,
    /// Orderly: the pulled messages not yet consumed, in queue order.
    orderly: Mutex<OrderlyBuffer>,
    /// Orderly: held for each listener call, so a queue given up waits for the call running
    /// on it before its lock is released.
    consuming: tokio::sync::Mutex<()>,
}

/// Orderly consumption's per-queue buffer.
#[derive(Debug, Default)]
struct OrderlyBuffer {
    messages: std::collections::VecDeque<MessageExt>,
    /// A task is draining `messages`.
    draining: bool,
}

impl ProcessQueue {
    fn drop_queue(&self) {
        self.dropped.store(true, Ordering::Release);
        if let Ok(mut task) = self.pull_task.lock() {
            if let Some(task) = task.take() {
                task.abort();
            }
        }
    }

    fn is_dropped(&self) -> bool {
        self.dropped.load(Ordering::Acquire)
    }
}

struct Inner {
    core: Arc<ClientCore>,
    config: PushConsumerConfig,
    listener: Arc<dyn MessageListener>,
    subscriptions: Mutex<BTreeMap<String, Subscription>>,
    offsets: Mutex<Option<Arc<OffsetStore>>>,
    queues: Mutex<HashMap<MessageQueue, Arc<ProcessQueue>>>,
    /// Orderly consumption's listener calls (one per permit, `consume_threads`).
    consume_permits: Arc<Semaphore>,
    /// Concurrent consumption's listener threads, started by [`PushConsumer::start`].
    listener_pool: OnceLock<ListenerPool<ConsumeJob>>,
    rebalance_wakeup: Notify,
    rebalance_lock: tokio::sync::Mutex<()>,
    started: AtomicBool,
    stopping: AtomicBool,
    retry_producer: tokio::sync::OnceCell<Producer>,
}

/// A push consumer. Cheap to clone.
#[derive(Clone)]
pub struct PushConsumer {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for PushConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushConsumer")
            .field("group", &self.inner.config.group)
            .field("client_id", &self.inner.core.client_id)
            .finish()
    }
}

impl PushConsumer {
    /// A consumer (not started) calling `listener`.
    pub fn new(config: PushConsumerConfig, listener: impl MessageListener) -> Self {
        let core = ClientCore::new(config.client.clone());
        let permits = config.consume_threads.max(1);
        PushConsumer {
            inner: Arc::new(Inner {
                core,
                listener: Arc::new(listener),
                subscriptions: Mutex::new(BTreeMap::new()),
                offsets: Mutex::new(None),
                queues: Mutex::new(HashMap::new()),
                consume_permits: Arc::new(Semaphore::new(permits)),
                listener_pool: OnceLock::new(),
                rebalance_wakeup: Notify::new(),
                rebalance_lock: tokio::sync::Mutex::new(()),
                started: AtomicBool::new(false),
                stopping: AtomicBool::new(false),
                retry_producer: tokio::sync::OnceCell::new(),
                config,
            }),
        }
    }

    /// The client id (what the group's member list shows).
    pub fn client_id(&self) -> &str {
        &self.inner.core.client_id
    }

    /// Subscribes `topic` with a tag expression (`*`, `TagA || TagB`). May be called after
    /// start; the next rebalance picks it up (one is triggered at once).
    pub fn subscribe(&self, topic: &str, expression: &str) -> Result<()> {
        if topic.is_empty() {
            return Err(ClientError::InvalidArgument("topic is empty".into()));
        }
        if let Ok(mut subs) = self.inner.subscriptions.lock() {
            subs.insert(topic.to_owned(), Subscription::new(topic, expression));
        }
        if self.inner.started.load(Ordering::Acquire) {
            // The broker must learn the new subscription before pulls can use it (pulls carry
            // none by default): fetch the route, heartbeat, then rebalance, as Java does.
            let inner = Arc::clone(&self.inner);
            let topic = topic.to_owned();
            tokio::spawn(async move {
                let _ = inner.core.routes.fetch(&topic).await;
                inner.core.heartbeat_all().await;
                inner.rebalance_wakeup.notify_one();
            });
        }
        Ok(())
    }

    /// The queues currently assigned to this member.
    pub fn assignment(&self) -> Vec<MessageQueue> {
        let mut queues: Vec<MessageQueue> = match self.inner.queues.lock() {
            Ok(q) => q.keys().cloned().collect(),
            Err(_) => Vec::new(),
        };
        queues.sort();
        queues
    }

    /// Starts: registers with the brokers (heartbeat), rebalances once, starts pulling, and
    /// starts the timers (heartbeat 30 s, route refresh 30 s, rebalance 20 s, persist 5 s).
    pub async fn start(&self) -> Result<()> {
        let inner = &self.inner;
        let config = &inner.config;
        if config.group.is_empty() {
            return Err(ClientError::InvalidArgument(
                "consumer group is empty".into(),
            ));
        }
        if inner.started.swap(true, Ordering::AcqRel) {
            return Err(ClientError::State("already started"));
        }
        let user_topics: Vec<String> = inner.subscribed_topics();
        if user_topics.is_empty() {
            return Err(ClientError::InvalidArgument(
                "subscribe to a topic before start".into(),
            ));
        }
        if config.model == MessageModel::Clustering {
            let retry = retry_topic(&config.group);
            if let Ok(mut subs) = inner.subscriptions.lock() {
                subs.entry(retry.clone())
                    .or_insert_with(|| Subscription::new(&retry, "*"));
            }
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
        // Routes first (their brokers are where the heartbeat goes), then the heartbeat
        // (which makes the broker create %RETRY%group), then the retry topic's route.
        let mut found_any = false;
        for topic in &user_topics {
            match inner.core.routes.fetch(topic).await {
                Ok(_) => found_any = true,
                Err(e) => tracing::warn!(%topic, error = %e, "no route at start"),
            }
        }
        if !found_any {
            inner.started.store(false, Ordering::Release);
            return Err(ClientError::NoRoute {
                topic: user_topics.join(","),
            });
        }
        inner.core.heartbeat_all().await;
        if config.model == MessageModel::Clustering {
            let _ = inner.core.routes.fetch(&retry_topic(&config.group)).await;
        }
        if !config.orderly && inner.listener_pool.get().is_none() {
            let pool =
                ListenerPool::start(config.consume_threads, "ringmq-consume", run_consume_job);
            match pool {
                Ok(pool) => {
                    let _ = inner.listener_pool.set(pool);
                }
                Err(e) => {
                    inner.started.store(false, Ordering::Release);
                    return Err(ClientError::ListenerThreads(e));
                }
            }
        }
        inner.core.start_timers();
        Inner::rebalance(inner).await;
        let weak = Arc::downgrade(inner);
        inner.core.add_task(tokio::spawn(rebalance_loop(weak)));
        if inner.locks_queues() {
            let weak = Arc::downgrade(inner);
            inner.core.add_task(tokio::spawn(periodic(
                Arc::downgrade(&inner.core),
                LOCK_RENEW_INTERVAL,
                move |_core| {
                    let weak = weak.clone();
                    async move {
                        if let Some(inner) = weak.upgrade() {
                            inner.renew_locks().await;
                        }
                    }
                },
            )));
        }
        let weak_core = Arc::downgrade(&inner.core);
        let weak = Arc::downgrade(inner);
        inner.core.add_task(tokio::spawn(periodic(
            weak_core,
            config.persist_interval,
            move |_core| {
                let weak = weak.clone();
                async move {
                    if let Some(inner) = weak.upgrade() {
                        inner.persist_offsets(true).await;
                    }
                }
            },
        )));
        Ok(())
    }

    /// Runs a rebalance now (normally driven by the 20 s timer and broker notifications).
    pub async fn rebalance_now(&self) {
        Inner::rebalance(&self.inner).await;
    }

    /// Graceful shutdown: stop pulling, let running listener calls finish (bounded by
    /// `shutdown_timeout`), commit offsets (awaited), unregister from the brokers, close.
    pub async fn shutdown(&self) {
        let inner = &self.inner;
        if inner.stopping.swap(true, Ordering::AcqRel) {
            return;
        }
        let queues: Vec<Arc<ProcessQueue>> = match inner.queues.lock() {
            Ok(q) => q.values().cloned().collect(),
            Err(_) => Vec::new(),
        };
        for pq in &queues {
            if let Ok(mut task) = pq.pull_task.lock() {
                if let Some(task) = task.take() {
                    task.abort();
                }
            }
        }
        let all = u32::try_from(inner.config.consume_threads.max(1)).unwrap_or(u32::MAX);
        let deadline = tokio::time::Instant::now() + inner.config.shutdown_timeout;
        let orderly_drained =
            tokio::time::timeout_at(deadline, inner.consume_permits.acquire_many(all))
                .await
                .is_ok();
        let pool_drained = match inner.listener_pool.get() {
            Some(pool) => {
                pool.close();
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                pool.wait_closed(left).await
            }
            None => true,
        };
        if !(orderly_drained && pool_drained) {
            tracing::warn!("shutdown: listener calls still running after the timeout");
        }
        inner.persist_offsets(false).await;
        for pq in &queues {
            pq.drop_queue();
        }
        inner.core.unregister(None, Some(&inner.config.group)).await;
        if let Some(producer) = inner.retry_producer.get() {
            producer.shutdown().await;
        }
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
        let woken = tokio::time::timeout(every, strong.rebalance_wakeup.notified()).await;
        drop(woken);
        if strong.stopping.load(Ordering::Acquire) {
            return;
        }
        Inner::rebalance(&strong).await;
    }
}

impl Inner {
    fn subscribed_topics(&self) -> Vec<String> {
        self.subscriptions
            .lock()
            .map(|s| s.keys().cloned().collect())
            .unwrap_or_default()
    }

    fn subscription(&self, topic: &str) -> Option<Subscription> {
        self.subscriptions.lock().ok()?.get(topic).cloned()
    }

    fn offsets(&self) -> Option<Arc<OffsetStore>> {
        self.offsets.lock().ok()?.clone()
    }

    fn consumer_data(&self) -> ConsumerData {
        let subscription_data_set = self
            .subscriptions
            .lock()
            .map(|s| s.values().map(Subscription::data).collect())
            .unwrap_or_default();
        ConsumerData {
            group_name: self.config.group.clone(),
            consume_type: ConsumeType::ConsumePassively,
            message_model: self.config.model,
            consume_from_where: self.config.consume_from.java(),
            subscription_data_set,
            unit_mode: false,
        }
    }

    async fn persist_offsets(&self, oneway: bool) {
        let Some(store) = self.offsets() else {
            return;
        };
        let queues: Vec<MessageQueue> = match self.queues.lock() {
            Ok(q) => q.keys().cloned().collect(),
            Err(_) => return,
        };
        store.persist_all(&self.core, Some(&queues), oneway).await;
    }

    async fn rebalance(self: &Arc<Self>) {
        if self.stopping.load(Ordering::Acquire) {
            return;
        }
        let _guard = self.rebalance_lock.lock().await;
        for topic in self.subscribed_topics() {
            let Some(assigned) = compute_assignment(
                &self.core,
                &self.config.group,
                &topic,
                self.config.model,
                self.config.strategy,
            )
            .await
            else {
                continue;
            };
            self.apply_assignment(&topic, assigned).await;
        }
    }

    async fn apply_assignment(self: &Arc<Self>, topic: &str, assigned: Vec<MessageQueue>) {
        let Some(store) = self.offsets() else {
            return;
        };
        let removed: Vec<(MessageQueue, Arc<ProcessQueue>)> = match self.queues.lock() {
            Ok(queues) => queues
                .iter()
                .filter(|(mq, _)| mq.topic == topic && !assigned.contains(mq))
                .map(|(mq, pq)| (mq.clone(), Arc::clone(pq)))
                .collect(),
            Err(_) => return,
        };
        for (mq, pq) in removed {
            self.give_up_queue(&store, &mq, &pq).await;
            tracing::debug!(queue = ?mq, "queue removed by rebalance");
        }
        let assigned = if self.locks_queues() {
            let new: Vec<MessageQueue> = assigned
                .into_iter()
                .filter(|mq| {
                    !self
                        .queues
                        .lock()
                        .map(|q| q.contains_key(mq))
                        .unwrap_or(true)
                })
                .collect();
            self.lock_queues(&new).await
        } else {
            assigned
        };
        for mq in assigned {
            let present = self
                .queues
                .lock()
                .map(|q| q.contains_key(&mq))
                .unwrap_or(true);
            if present || self.stopping.load(Ordering::Acquire) {
                continue;
            }
            let Some(start) =
                start_offset_for(&self.core, &store, &mq, self.config.consume_from).await
            else {
                continue;
            };
            store.update(&mq, start, false);
            let pq = Arc::new(ProcessQueue::default());
            let task = tokio::spawn(pull_loop(
                Arc::downgrade(self),
                mq.clone(),
                Arc::clone(&pq),
                start,
            ));
            if let Ok(mut slot) = pq.pull_task.lock() {
                *slot = Some(task);
            }
            if let Ok(mut queues) = self.queues.lock() {
                queues.insert(mq.clone(), pq);
            }
            tracing::debug!(queue = ?mq, start, "queue added by rebalance");
        }
    }

    /// Orderly consumption in clustering locks its queues on the broker.
    fn locks_queues(&self) -> bool {
        self.config.orderly && self.config.model == MessageModel::Clustering
    }

    /// Orderly: locks `queues` (grouped by broker) and returns those this member now holds.
    async fn lock_queues(&self, queues: &[MessageQueue]) -> Vec<MessageQueue> {
        let mut by_broker: BTreeMap<&str, Vec<MessageQueue>> = BTreeMap::new();
        for mq in queues {
            by_broker
                .entry(mq.broker_name.as_str())
                .or_default()
                .push(mq.clone());
        }
        let mut held = Vec::new();
        for (broker, queues) in by_broker {
            match api::lock_batch(&self.core, &self.config.group, &queues).await {
                Ok(locked) => held.extend(locked),
                Err(e) => tracing::debug!(%broker, error = %e, "locking queues failed"),
            }
        }
        held
    }

    /// Stops a queue: no more pulls, its offset committed (awaited, so the next owner starts
    /// from it), and, orderly, its lock released once the listener call running on it ends.
    async fn give_up_queue(&self, store: &OffsetStore, mq: &MessageQueue, pq: &ProcessQueue) {
        pq.drop_queue();
        if let Err(e) = store.persist(&self.core, mq, false).await {
            tracing::debug!(queue = ?mq, error = %e, "offset commit on queue removal failed");
        }
        store.remove(mq);
        if let Ok(mut queues) = self.queues.lock() {
            queues.remove(mq);
        }
        if self.locks_queues() {
            let running = tokio::time::timeout(Duration::from_secs(1), pq.consuming.lock()).await;
            if running.is_err() {
                tracing::warn!(queue = ?mq, "a listener call still runs on a queue given up; its lock is released anyway");
            }
            if let Err(e) =
                api::unlock_batch(&self.core, &self.config.group, std::slice::from_ref(mq)).await
            {
                tracing::debug!(queue = ?mq, error = %e, "unlocking a queue failed (it lapses on the broker)");
            }
        }
    }

    /// Orderly: renews the locks of every held queue; a queue whose lock another member now
    /// holds is given up, and a rebalance looks for work again.
    async fn renew_locks(self: &Arc<Self>) {
        if !self.locks_queues() || self.stopping.load(Ordering::Acquire) {
            return;
        }
        let held: Vec<MessageQueue> = match self.queues.lock() {
            Ok(q) => q.keys().cloned().collect(),
            Err(_) => return,
        };
        let renewed = self.lock_queues(&held).await;
        let Some(store) = self.offsets() else {
            return;
        };
        let mut lost = false;
        for mq in held.iter().filter(|mq| !renewed.contains(mq)) {
            let pq = self.queues.lock().ok().and_then(|q| q.get(mq).cloned());
            if let Some(pq) = pq {
                tracing::warn!(queue = ?mq, "queue lock lost; consumption of the queue stops");
                self.give_up_queue(&store, mq, &pq).await;
                lost = true;
            }
        }
        if lost {
            self.rebalance_wakeup.notify_one();
        }
    }

    /// The puller of `mq` from `start`, carrying the committed offset with its pulls in
    /// clustering (the broker's offset store); `None` before start.
    fn puller(&self, mq: &MessageQueue, start: i64) -> Option<QueuePuller> {
        let config = &self.config;
        let sub = self.subscription(&mq.topic)?;
        let commit = match config.model {
            MessageModel::Clustering => PullCommit::Stored(self.offsets()?),
            MessageModel::Broadcasting => PullCommit::Nothing,
        };
        Some(
            QueuePuller::new(
                Arc::clone(&self.core),
                &config.group,
                mq.clone(),
                sub,
                start,
            )
            .with_flavor(PullFlavor::Push {
                post_subscription: config.post_subscription_when_pull,
            })
            .with_commit(commit)
            .with_batch_size(config.pull_batch_size)
            .with_suspend_timeout(config.suspend_timeout)
            .with_pull_timeout(config.pull_timeout),
        )
    }

    /// Hands a batch to the listener pool; after shutdown closed it, the batch stays in
    /// flight (the committed offset stays below it, so it is delivered again).
    fn submit(&self, job: ConsumeJob) {
        if let Some(pool) = self.listener_pool.get() {
            let _ = pool.submit(job);
        }
    }

    async fn retry_producer(&self) -> Result<&Producer> {
        self.retry_producer
            .get_or_try_init(|| async {
                let mut config = ProducerConfig::new("", crate::core::CLIENT_INNER_PRODUCER_GROUP);
                config.client = self.config.client.clone();
                config.client.instance_name = format!("{}-retry", self.core.client_id);
                Producer::start(config).await
            })
            .await
    }

    /// Sends a failed message back; on failure re-sends a copy to `%RETRY%group` (§7.5).
    async fn send_back(&self, msg: &MessageExt) -> Result<()> {
        let group = &self.config.group;
        let max = self.config.max_reconsume_times;
        match api::send_back(&self.core, msg, group, 0, max).await {
            Ok(()) => Ok(()),
            Err(e) => {
                tracing::debug!(error = %e, "send-back failed; re-sending to the retry topic");
                let mut copy = Message::new(retry_topic(group), msg.body.clone());
                copy.flag = msg.flag;
                copy.properties = msg.properties.clone();
                copy.properties.remove(keys::TRAN_MSG);
                if copy.properties.get(keys::RETRY_TOPIC).is_none() {
                    copy.properties.insert(keys::RETRY_TOPIC, msg.topic.clone());
                }
                if copy.properties.get(keys::ORIGIN_MESSAGE_ID).is_none() {
                    copy.properties
                        .insert(keys::ORIGIN_MESSAGE_ID, msg.msg_id().to_owned());
                }
                copy.properties
                    .insert(keys::DELAY, (3 + msg.reconsume_times).to_string());
                let producer = self.retry_producer().await?;
                producer
                    .send_retry_copy(copy, msg.reconsume_times + 1, max)
                    .await
                    .map(|_| ())
            }
        }
    }
}

async fn pull_loop(inner: Weak<Inner>, mq: MessageQueue, pq: Arc<ProcessQueue>, start: i64) {
    let Some(mut puller) = inner.upgrade().and_then(|inner| inner.puller(&mq, start)) else {
        return;
    };
    loop {
        let Some(inner) = inner.upgrade() else {
            return;
        };
        if pq.is_dropped() || inner.stopping.load(Ordering::Acquire) {
            return;
        }
        let config = &inner.config;
        let (count, bytes, span) = match pq.in_flight.lock() {
            Ok(f) => (f.count(), f.bytes(), f.span()),
            Err(_) => return,
        };
        if count > config.pull_threshold_for_queue
            || bytes > config.pull_threshold_size_for_queue
            || span > config.consume_concurrently_max_span
        {
            // Flow control: the listener is behind; Java waits 50 ms before pulling again.
            drop(inner);
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        }
        let Some(sub) = inner.subscription(&mq.topic) else {
            return;
        };
        puller.set_subscription(sub);
        match puller.next_batch().await {
            Ok(pulled) => {
                if pq.is_dropped() {
                    return;
                }
                match pulled {
                    Pulled::Messages(msgs) => dispatch(&inner, &mq, &pq, msgs),
                    Pulled::CaughtUp | Pulled::Filtered => {
                        // Nothing in flight: the committed offset may follow the pull offset
                        // past filtered-out messages (Java's correctTagsOffset).
                        let idle = pq.in_flight.lock().map(|f| f.count() == 0).unwrap_or(false);
                        if let (true, Some(store)) = (idle, inner.offsets()) {
                            store.update(&mq, puller.next_offset(), true);
                        }
                    }
                    Pulled::OffsetMoved { to, .. } => {
                        tracing::warn!(queue = ?mq, next = to, "pull offset illegal; resetting");
                        pq.dropped.store(true, Ordering::Release);
                        if let Some(store) = inner.offsets() {
                            store.update(&mq, to, false);
                            let _ = store.persist(&inner.core, &mq, false).await;
                        }
                        if let Ok(mut queues) = inner.queues.lock() {
                            queues.remove(&mq);
                        }
                        inner.rebalance_wakeup.notify_one();
                        return;
                    }
                }
            }
            Err(e) => {
                let delay = if e.broker_code() == Some(response_code::FLOW_CONTROL) {
                    Duration::from_millis(20)
                } else {
                    Duration::from_secs(3)
                };
                tracing::debug!(queue = ?mq, error = %e, ?delay, "pull failed");
                drop(inner);
                tokio::time::sleep(delay).await;
            }
        }
    }
}

fn dispatch(inner: &Arc<Inner>, mq: &MessageQueue, pq: &Arc<ProcessQueue>, msgs: Vec<MessageExt>) {
    if let Ok(mut f) = pq.in_flight.lock() {
        f.add(msgs.iter().map(|m| (m.queue_offset, m.body.len())));
    }
    if inner.config.orderly {
        let start = match pq.orderly.lock() {
            Ok(mut buffer) => {
                buffer.messages.extend(msgs);
                !std::mem::replace(&mut buffer.draining, true)
            }
            Err(_) => false,
        };
        if start {
            tokio::spawn(consume_orderly(
                Arc::clone(inner),
                mq.clone(),
                Arc::clone(pq),
            ));
        }
        return;
    }
    let batch = inner.config.consume_batch_size.max(1);
    let mut msgs = msgs.into_iter().peekable();
    while msgs.peek().is_some() {
        let chunk: Vec<MessageExt> = msgs.by_ref().take(batch).collect();
        inner.submit(ConsumeJob {
            inner: Arc::clone(inner),
            mq: mq.clone(),
            pq: Arc::clone(pq),
            msgs: chunk,
        });
    }
}

/// One batch for the listener pool: the listener's call on `msgs`, then its settlement.
struct ConsumeJob {
    inner: Arc<Inner>,
    mq: MessageQueue,
    pq: Arc<ProcessQueue>,
    msgs: Vec<MessageExt>,
}

/// Runs on a listener-pool thread: calls the listener on one batch and settles its offsets
/// there, so the batch costs no further hop. A failed batch is sent back from this thread
/// (blocking on the client's runtime); one that cannot be sent back is queued again in 5 s.
fn run_consume_job(job: ConsumeJob) {
    let ConsumeJob {
        inner,
        mq,
        pq,
        msgs,
    } = job;
    if pq.is_dropped() || inner.stopping.load(Ordering::Acquire) {
        // Left in flight: the committed offset stays below it, so it is delivered again.
        return;
    }
    let listener = &inner.listener;
    let status =
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| listener.consume(&msgs))) {
            Ok(status) => status,
            Err(_) => {
                tracing::warn!("listener panicked; the batch will be redelivered");
                ConsumeStatus::ReconsumeLater
            }
        };
    if pq.is_dropped() {
        return;
    }
    let mut done: Vec<i64> = Vec::with_capacity(msgs.len());
    let mut retry_locally = Vec::new();
    match status {
        ConsumeStatus::Success => done.extend(msgs.iter().map(|m| m.queue_offset)),
        ConsumeStatus::ReconsumeLater if inner.config.model == MessageModel::Broadcasting => {
            tracing::warn!(
                count = msgs.len(),
                "broadcast consumption failed; messages dropped"
            );
            done.extend(msgs.iter().map(|m| m.queue_offset));
        }
        ConsumeStatus::ReconsumeLater => {
            let runtime = tokio::runtime::Handle::current();
            for msg in msgs {
                match runtime.block_on(inner.send_back(&msg)) {
                    Ok(()) => done.push(msg.queue_offset),
                    Err(e) => {
                        tracing::warn!(error = %e, msg_id = msg.msg_id(), "send-back failed; retrying locally in 5 s");
                        retry_locally.push(msg);
                    }
                }
            }
        }
    }
    let commit = pq.in_flight.lock().ok().and_then(|mut f| f.remove(done));
    if let (Some(offset), Some(store)) = (commit, inner.offsets()) {
        store.update(&mq, offset, true);
    }
    if !retry_locally.is_empty() {
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(5)).await;
            if !pq.is_dropped() && !inner.stopping.load(Ordering::Acquire) {
                let inner2 = Arc::clone(&inner);
                inner2.submit(ConsumeJob {
                    inner,
                    mq,
                    pq,
                    msgs: retry_locally,
                });
            }
        });
    }
}

/// Orderly: consumes the queue's buffer one batch at a time, in queue order, until it is
/// empty or the queue is given up. A failed batch is retried in place after
/// `suspend_current_queue`; past `max_reconsume_times` failures its messages go to the DLQ.
async fn consume_orderly(inner: Arc<Inner>, mq: MessageQueue, pq: Arc<ProcessQueue>) {
    let batch_size = inner.config.consume_batch_size.max(1);
    let mut failures = 0;
    loop {
        let batch: Vec<MessageExt> = {
            let Ok(mut buffer) = pq.orderly.lock() else {
                return;
            };
            if buffer.messages.is_empty()
                || pq.is_dropped()
                || inner.stopping.load(Ordering::Acquire)
            {
                buffer.draining = false;
                return;
            }
            buffer.messages.iter().take(batch_size).cloned().collect()
        };
        let consuming = pq.consuming.lock().await;
        let Ok(permit) = Arc::clone(&inner.consume_permits).acquire_owned().await else {
            return;
        };
        if pq.is_dropped() {
            // Left in flight: the committed offset stays below it, so it is delivered again.
            if let Ok(mut buffer) = pq.orderly.lock() {
                buffer.draining = false;
            }
            return;
        }
        let listener = Arc::clone(&inner.listener);
        let msgs = Arc::new(batch);
        let for_listener = Arc::clone(&msgs);
        let status =
            match tokio::task::spawn_blocking(move || listener.consume(&for_listener)).await {
                Ok(status) => status,
                Err(e) => {
                    tracing::warn!(error = %e, "listener panicked; the batch will be retried");
                    ConsumeStatus::ReconsumeLater
                }
            };
        drop(permit);
        drop(consuming);
        let settled = match status {
            ConsumeStatus::Success => true,
            ConsumeStatus::ReconsumeLater if failures >= inner.config.max_reconsume_times => {
                // Java's orderly consumer gives up the same way: to the DLQ, then on.
                let mut all_moved = true;
                for msg in msgs.iter() {
                    if let Err(e) =
                        api::send_back(&inner.core, msg, &inner.config.group, -1, 0).await
                    {
                        tracing::warn!(error = %e, msg_id = msg.msg_id(), "moving a message to the DLQ failed; retrying the batch");
                        all_moved = false;
                        break;
                    }
                }
                all_moved
            }
            ConsumeStatus::ReconsumeLater => false,
        };
        if settled {
            failures = 0;
            if let Ok(mut buffer) = pq.orderly.lock() {
                let consumed = msgs.len().min(buffer.messages.len());
                buffer.messages.drain(..consumed);
            }
            let done: Vec<i64> = msgs.iter().map(|m| m.queue_offset).collect();
            let commit = pq.in_flight.lock().ok().and_then(|mut f| f.remove(done));
            if let (Some(offset), Some(store)) = (commit, inner.offsets()) {
                store.update(&mq, offset, true);
            }
        } else {
            failures += 1;
            tokio::time::sleep(inner.config.suspend_current_queue).await;
        }
    }
}

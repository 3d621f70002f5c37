//! The consume side of the bench: `consumers` clients, the topic's readable queues dealt out
//! among them round robin, one long-polling pull loop per queue (PULL_MESSAGE with SUSPEND and
//! the subscription `*` in the request, so no heartbeat is needed) handing each batch to a
//! callback as it arrives.
//!
//! This drives the client's per-queue puller (`ringmq_client::QueuePuller`) directly rather
//! than the push consumer: the bench wants every queue pulled from the moment it starts and the
//! callback run on the receiving task, with no rebalance delay or listener thread hop in the
//! measured latency. Offsets are committed with each pull (FLAG_COMMIT_OFFSET) and once more,
//! awaited, when the loop stops.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use ringmq_client::api;
use ringmq_client::core::ClientCore;
use ringmq_client::{
    start_offset, ClientConfig, ConsumeFrom, MessageExt, MessageQueue, OffsetStore, PullCommit,
    QueuePuller, Subscription,
};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::recorder::Recorder;

/// Where a queue's pull loop starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartAt {
    /// The group's committed offset, or the queue's first offset when it has none.
    CommittedElseFirst,
    /// The queue's max offset at start: only messages stored from now on.
    Last,
}

/// The consume side's settings.
#[derive(Debug, Clone)]
pub struct PullOptions {
    /// Name servers.
    pub namesrv: String,
    /// Topic.
    pub topic: String,
    /// Consumer group (offsets are committed for it).
    pub group: String,
    /// Number of clients (connections); queues are dealt out among them.
    pub consumers: usize,
    /// Where to start.
    pub start_at: StartAt,
    /// Messages per pull.
    pub pull_batch: i32,
    /// How long the broker may hold an empty pull.
    pub suspend: Duration,
}

/// Called with each batch a pull returns.
pub type OnMessages = Arc<dyn Fn(&[MessageExt]) + Send + Sync>;

/// Running pull loops; stop them with [`Consumers::stop`].
#[derive(Debug)]
pub struct Consumers {
    stop_tx: watch::Sender<bool>,
    loops: Vec<JoinHandle<()>>,
    cores: Vec<Arc<ClientCore>>,
    /// Queues being pulled.
    pub queues: usize,
}

impl Consumers {
    /// Resolves the topic's queues, the start offset of each, and starts one pull loop per
    /// queue. Returns once every loop has its start offset (so messages sent afterwards are
    /// seen even with [`StartAt::Last`]).
    pub async fn start(
        opts: &PullOptions,
        recorder: Arc<Recorder>,
        on_messages: OnMessages,
    ) -> anyhow::Result<Consumers> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let consumers = opts.consumers.max(1);
        let mut cores = Vec::with_capacity(consumers);
        for _ in 0..consumers {
            cores.push(ClientCore::new(ClientConfig::new(&opts.namesrv)));
        }
        let first = cores.first().context("no consumer")?;
        let route = first
            .routes
            .fetch(&opts.topic)
            .await
            .with_context(|| format!("route of topic {}", opts.topic))?;
        let queues = route.subscribe.clone();
        anyhow::ensure!(
            !queues.is_empty(),
            "topic {} has no readable queue",
            opts.topic
        );
        let mut loops = Vec::with_capacity(queues.len());
        for (i, mq) in queues.iter().enumerate() {
            let core = cores.get(i % consumers).context("consumer index")?.clone();
            let offset = queue_start(&core, &opts.group, mq, opts.start_at).await?;
            let queue = QueueLoop {
                core: Arc::clone(&core),
                group: opts.group.clone(),
                puller: QueuePuller::new(
                    core,
                    opts.group.clone(),
                    mq.clone(),
                    Subscription::new(&opts.topic, "*"),
                    offset,
                )
                .with_commit(PullCommit::NextOffset)
                .with_batch_size(opts.pull_batch)
                .with_suspend_timeout(opts.suspend),
            };
            let stop = stop_rx.clone();
            let recorder = Arc::clone(&recorder);
            let on_messages = Arc::clone(&on_messages);
            loops.push(tokio::spawn(async move {
                queue.run(stop, recorder, on_messages).await;
            }));
        }
        Ok(Consumers {
            stop_tx,
            loops,
            cores,
            queues: queues.len(),
        })
    }

    /// Stops every loop (a held pull is abandoned), commits offsets, closes connections.
    pub async fn stop(self) {
        let _ = self.stop_tx.send(true);
        for handle in self.loops {
            let _ = handle.await;
        }
        for core in self.cores {
            core.shutdown().await;
        }
    }
}

/// The start offset of `mq` (see [`StartAt`]).
async fn queue_start(
    core: &ClientCore,
    group: &str,
    mq: &MessageQueue,
    start_at: StartAt,
) -> anyhow::Result<i64> {
    let (store, from) = match start_at {
        StartAt::Last => (None, ConsumeFrom::LastOffset),
        StartAt::CommittedElseFirst => (Some(OffsetStore::remote(group)), ConsumeFrom::FirstOffset),
    };
    start_offset(core, store.as_ref(), mq, from)
        .await
        .with_context(|| format!("start offset of {}:{}", mq.broker_name, mq.queue_id))
}

struct QueueLoop {
    core: Arc<ClientCore>,
    group: String,
    puller: QueuePuller,
}

/// Pause after a failed pull, so a dead broker is not hammered.
const PULL_ERROR_BACKOFF: Duration = Duration::from_millis(200);

impl QueueLoop {
    async fn run(
        mut self,
        mut stop: watch::Receiver<bool>,
        recorder: Arc<Recorder>,
        on_messages: OnMessages,
    ) {
        let mut errors_logged = 0u32;
        while !*stop.borrow() {
            let result = tokio::select! {
                r = self.puller.next_batch() => r,
                _ = stop.changed() => break,
            };
            match result {
                Ok(pulled) => {
                    let messages = pulled.messages();
                    if !messages.is_empty() {
                        on_messages(messages);
                    }
                }
                Err(e) => {
                    recorder.add_errors(1);
                    if errors_logged < 3 {
                        errors_logged += 1;
                        let mq = self.puller.queue();
                        eprintln!(
                            "pull {}:{} at {}: {e:#}",
                            mq.broker_name,
                            mq.queue_id,
                            self.puller.next_offset()
                        );
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(PULL_ERROR_BACKOFF) => {}
                        _ = stop.changed() => break,
                    }
                }
            }
        }
        let (mq, offset) = (self.puller.queue(), self.puller.next_offset());
        if let Err(e) =
            api::update_consumer_offset(&self.core, &self.group, mq, offset, false).await
        {
            eprintln!(
                "commit offset {offset} of {}:{}: {e:#}",
                mq.broker_name, mq.queue_id
            );
        }
    }
}

//! The consume side through the client's push consumer (`ringmq_client::PushConsumer`), the
//! way applications consume: `consumers` members of one group, rebalance, long-polling pull
//! loops, and the listener called on the consumer's worker threads. End-to-end latency here
//! includes the client's hand-off to its listener; `--api pull` (see `pull.rs`) leaves that
//! out.
//!
//! Start position: for "only new messages" the group's committed offsets are first set to
//! each queue's max offset (UPDATE_CONSUMER_OFFSET through the admin API), because a broker
//! may start a new group at offset 0 on a young topic (protocol.md §6.3).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use ringmq_client::admin::{Admin, ResetTarget};
use ringmq_client::{
    ConsumeFrom, ConsumeStatus, MessageExt, MessageQueue, PushConsumer, PushConsumerConfig,
};

use crate::pull::{OnMessages, PullOptions, StartAt};

/// Messages per listener call: the bench's listener only timestamps, so batches keep the
/// hand-off cost per message low.
const CONSUME_BATCH: usize = 32;

/// How long start waits for the group to be assigned every queue of the topic.
const ASSIGN_TIMEOUT: Duration = Duration::from_secs(15);

/// Running push consumers.
#[derive(Debug)]
pub struct PushSide {
    consumers: Vec<PushConsumer>,
    /// Queues of the topic.
    pub queues: usize,
}

/// Whether every queue of the topic is empty (max offset 0); false if one cannot be read.
async fn empty(admin: &Admin, queues: &[MessageQueue]) -> bool {
    for mq in queues {
        if !matches!(admin.max_offset(mq).await, Ok(0)) {
            return false;
        }
    }
    true
}

impl PushSide {
    /// Positions the group, starts `opts.consumers` members and waits until the topic's
    /// queues are all assigned.
    pub async fn start(opts: &PullOptions, on_messages: OnMessages) -> anyhow::Result<Self> {
        let admin = Admin::connect(&opts.namesrv);
        let queues = admin
            .topic_queues(&opts.topic)
            .await
            .with_context(|| format!("queues of topic {}", opts.topic));
        let positioned = match (&queues, opts.start_at) {
            (Ok(qs), StartAt::Last) => match admin
                .reset_offset(
                    &opts.group,
                    &opts.topic,
                    ResetTarget::Offset(i64::MAX),
                    None,
                )
                .await
            {
                Ok(_) => Ok(()),
                // Apache RocketMQ refuses offsets for a group it does not know yet
                // (SUBSCRIPTION_GROUP_NOT_EXIST; it creates the group at the first heartbeat).
                // On an empty topic every start position is the tail, so nothing to move.
                Err(_) if empty(&admin, qs).await => Ok(()),
                Err(e) => {
                    Err(e).with_context(|| format!("moving group {} to the tail", opts.group))
                }
            },
            _ => Ok(()),
        };
        admin.shutdown().await;
        let queues = queues?.len();
        positioned?;
        let mut consumers = Vec::new();
        for _ in 0..opts.consumers.max(1) {
            let mut config = PushConsumerConfig::new(&opts.namesrv, opts.group.clone());
            config.consume_from = match opts.start_at {
                StartAt::Last => ConsumeFrom::LastOffset,
                StartAt::CommittedElseFirst => ConsumeFrom::FirstOffset,
            };
            config.pull_batch_size = opts.pull_batch;
            config.consume_batch_size = CONSUME_BATCH;
            config.suspend_timeout = opts.suspend;
            let on_messages = Arc::clone(&on_messages);
            let consumer = PushConsumer::new(config, move |msgs: &[MessageExt]| {
                on_messages(msgs);
                ConsumeStatus::Success
            });
            consumer
                .subscribe(&opts.topic, "*")
                .context("subscribing")?;
            consumer.start().await.context("starting a push consumer")?;
            consumers.push(consumer);
        }
        let side = PushSide { consumers, queues };
        side.wait_assigned(&opts.topic).await?;
        Ok(side)
    }

    async fn wait_assigned(&self, topic: &str) -> anyhow::Result<()> {
        let deadline = Instant::now() + ASSIGN_TIMEOUT;
        loop {
            let assigned: usize = self
                .consumers
                .iter()
                .map(|c| c.assignment().iter().filter(|q| q.topic == topic).count())
                .sum();
            if assigned >= self.queues {
                return Ok(());
            }
            if Instant::now() >= deadline {
                anyhow::bail!(
                    "only {assigned} of {} queues of {topic} were assigned after {:?}",
                    self.queues,
                    ASSIGN_TIMEOUT
                );
            }
            for c in &self.consumers {
                c.rebalance_now().await;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Shuts every member down (offsets are committed by the consumer).
    pub async fn stop(self) {
        for c in self.consumers {
            c.shutdown().await;
        }
    }
}

//! One queue's puller: the long-polling read of a single `MessageQueue` that the lite-pull
//! consumer, the push consumer, `ringmq-bench --api pull` and `ringmq consume` all run.
//!
//! It owns the queue's next offset and the broker node the last answer suggested (§9.2), fills
//! the pull request for its [`PullFlavor`], and turns the broker's status into a [`Pulled`]:
//! FOUND → messages, NO_NEW_MSG → caught up, NO_MATCHED_MSG (or a batch emptied by the
//! client-side tag filter) → filtered, OFFSET_MOVED → the offset the broker names. Every
//! answer moves the next offset to the broker's nextBeginOffset; an error leaves it alone, so
//! the caller may simply pull again (after a pause of its choosing).
//!
//! Where to start is [`crate::consumer::start_offset`]; what to do with a batch (and when to
//! persist offsets beyond the one a pull may carry, [`PullCommit`]) stays with the caller.

use std::sync::Arc;
use std::time::Duration;

use ringmq_protocol::body::{MessageQueue, MASTER_ID};
use ringmq_protocol::codes::request_code;
use ringmq_protocol::headers::PullSysFlag;

use crate::api::{self, PullArgs, PullStatus};
use crate::consumer::{OffsetStore, Subscription};
use crate::core::ClientCore;
use crate::error::{ClientError, Result};
use crate::message::MessageExt;
use crate::route::find_broker_addr_in_subscribe;

/// Messages per pull unless set. Java's default `pullBatchSize`.
pub const DEFAULT_BATCH_SIZE: i32 = 32;

/// How long the broker may hold an empty pull unless set (Java lite pull's 20 s).
pub const DEFAULT_SUSPEND_TIMEOUT: Duration = Duration::from_secs(20);

/// The client-side timeout of a pull is the hold plus this, unless set.
pub const PULL_TIMEOUT_MARGIN: Duration = Duration::from_secs(5);

/// Which kind of pull request is sent (the request code, flags and subscription fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PullFlavor {
    /// A reader outside any group rebalance: PULL_MESSAGE carrying the subscription
    /// (FLAG_SUBSCRIPTION, version 0), so the broker needs no heartbeat from this client.
    #[default]
    Reader,
    /// The lite-pull consumer: LITE_PULL_MESSAGE carrying the subscription, version 0 (as
    /// Java's lite pull sends for TAG subscriptions).
    LitePull,
    /// The push consumer: PULL_MESSAGE with the subscription's version; the expression itself
    /// only with `post_subscription` (otherwise the broker has it from the heartbeat).
    Push {
        /// Send the subscription with every pull (`postSubscriptionWhenPull`).
        post_subscription: bool,
    },
}

/// The group offset a pull carries for the broker to store (FLAG_COMMIT_OFFSET, §2.4). It is
/// carried only when above 0 and only to the master, as the Java client does.
#[derive(Debug, Clone, Default)]
pub enum PullCommit {
    /// Carry none (a reader, or a consumer persisting offsets on its own schedule).
    #[default]
    Nothing,
    /// The puller's next offset: every batch counts as consumed once the next pull is made
    /// (a caller that finishes each batch before pulling again).
    NextOffset,
    /// The offset `store` holds for the queue (the push consumer's lowest offset in flight).
    Stored(Arc<OffsetStore>),
}

/// What one pull brought.
#[derive(Debug, Clone)]
pub enum Pulled {
    /// Messages in offset order (after the client-side tag filter); never empty.
    Messages(Vec<MessageExt>),
    /// Nothing new arrived while the broker held the pull: the queue is read to its end.
    CaughtUp,
    /// Entries were read but none matched the subscription; the offset moved past them.
    Filtered,
    /// The requested offset was outside the queue; the puller moved to the one the broker
    /// named.
    OffsetMoved {
        /// The offset that was requested.
        from: i64,
        /// The broker's nextBeginOffset, now the puller's next offset.
        to: i64,
    },
}

impl Pulled {
    /// The messages brought (empty unless [`Pulled::Messages`]).
    pub fn messages(&self) -> &[MessageExt] {
        match self {
            Pulled::Messages(msgs) => msgs,
            _ => &[],
        }
    }
}

/// The long-polling reader of one queue. See the module doc.
#[derive(Debug)]
pub struct QueuePuller {
    core: Arc<ClientCore>,
    group: String,
    mq: MessageQueue,
    subscription: Subscription,
    flavor: PullFlavor,
    commit: PullCommit,
    batch_size: i32,
    suspend_timeout: Duration,
    pull_timeout: Option<Duration>,
    next_offset: i64,
    /// The node the last answer suggested for the next pull (§9.2); the master at first.
    broker_id: i64,
}

impl QueuePuller {
    /// A [`PullFlavor::Reader`] of `mq` for `group`, starting at `start_offset`, with the
    /// defaults above and no offset carried with its pulls.
    pub fn new(
        core: Arc<ClientCore>,
        group: impl Into<String>,
        mq: MessageQueue,
        subscription: Subscription,
        start_offset: i64,
    ) -> Self {
        QueuePuller {
            core,
            group: group.into(),
            mq,
            subscription,
            flavor: PullFlavor::default(),
            commit: PullCommit::default(),
            batch_size: DEFAULT_BATCH_SIZE,
            suspend_timeout: DEFAULT_SUSPEND_TIMEOUT,
            pull_timeout: None,
            next_offset: start_offset,
            broker_id: MASTER_ID,
        }
    }

    /// Sets the kind of request sent.
    pub fn with_flavor(mut self, flavor: PullFlavor) -> Self {
        self.flavor = flavor;
        self
    }

    /// Sets the offset carried with each pull.
    pub fn with_commit(mut self, commit: PullCommit) -> Self {
        self.commit = commit;
        self
    }

    /// Sets the most messages one pull may bring (at least 1).
    pub fn with_batch_size(mut self, batch_size: i32) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }

    /// Sets how long the broker may hold a pull that finds nothing new.
    pub fn with_suspend_timeout(mut self, suspend_timeout: Duration) -> Self {
        self.suspend_timeout = suspend_timeout;
        self
    }

    /// Sets the client-side timeout of a pull (default: the hold plus
    /// [`PULL_TIMEOUT_MARGIN`]). Keep it above the hold.
    pub fn with_pull_timeout(mut self, pull_timeout: Duration) -> Self {
        self.pull_timeout = Some(pull_timeout);
        self
    }

    /// The queue read.
    pub fn queue(&self) -> &MessageQueue {
        &self.mq
    }

    /// The offset the next pull asks for.
    pub fn next_offset(&self) -> i64 {
        self.next_offset
    }

    /// The subscription pulls use.
    pub fn subscription(&self) -> &Subscription {
        &self.subscription
    }

    /// Replaces the subscription (a consumer whose topic was subscribed again).
    pub fn set_subscription(&mut self, subscription: Subscription) {
        self.subscription = subscription;
    }

    /// One pull: held by the broker up to the suspend timeout when nothing is new. Moves the
    /// next offset to the broker's nextBeginOffset on every answer; on an error nothing moves.
    pub async fn next_batch(&mut self) -> Result<Pulled> {
        let (broker_id, addr) = self.broker().await?;
        let commit_offset = self.commit_offset().unwrap_or(0);
        let mut sys_flag = PullSysFlag::SUSPEND.bits();
        if commit_offset > 0 && broker_id == MASTER_ID {
            sys_flag |= PullSysFlag::COMMIT_OFFSET.bits();
        }
        let (code, subscription, sub_version) = match self.flavor {
            PullFlavor::Reader => (request_code::PULL_MESSAGE, true, 0),
            PullFlavor::LitePull => {
                sys_flag |= PullSysFlag::LITE_PULL_MESSAGE.bits();
                (request_code::LITE_PULL_MESSAGE, true, 0)
            }
            PullFlavor::Push { post_subscription } => (
                request_code::PULL_MESSAGE,
                post_subscription,
                self.subscription.version,
            ),
        };
        if subscription {
            sys_flag |= PullSysFlag::SUBSCRIPTION.bits();
        }
        let args = PullArgs {
            group: &self.group,
            mq: &self.mq,
            offset: self.next_offset,
            max_msgs: self.batch_size,
            sys_flag,
            commit_offset,
            suspend_timeout: self.suspend_timeout,
            subscription: subscription.then_some(self.subscription.expression.as_str()),
            tags: &self.subscription.tags,
            sub_version,
            code,
            timeout: self
                .pull_timeout
                .unwrap_or(self.suspend_timeout + PULL_TIMEOUT_MARGIN),
        };
        let result = api::pull(&self.core, &addr, &args).await?;
        self.broker_id = result.suggest_which_broker_id;
        let from = self.next_offset;
        self.next_offset = result.next_begin_offset;
        Ok(match result.status {
            PullStatus::Found if result.messages.is_empty() => Pulled::Filtered,
            PullStatus::Found => Pulled::Messages(result.messages),
            PullStatus::NoNewMsg => Pulled::CaughtUp,
            PullStatus::NoMatchedMsg => Pulled::Filtered,
            PullStatus::OffsetIllegal => Pulled::OffsetMoved {
                from,
                to: result.next_begin_offset,
            },
        })
    }

    fn commit_offset(&self) -> Option<i64> {
        match &self.commit {
            PullCommit::Nothing => None,
            PullCommit::NextOffset => Some(self.next_offset),
            PullCommit::Stored(store) => store.get(&self.mq),
        }
    }

    /// The node to pull from: the suggested one if the route has it (else its neighbour or
    /// any node), fetching the topic's route once when no route holds the broker.
    async fn broker(&self) -> Result<(i64, String)> {
        if let Some(found) = self.broker_in_routes() {
            return Ok(found);
        }
        self.core.routes.fetch(&self.mq.topic).await?;
        self.broker_in_routes()
            .ok_or_else(|| ClientError::NoBrokerAddress {
                broker_name: self.mq.broker_name.clone(),
            })
    }

    fn broker_in_routes(&self) -> Option<(i64, String)> {
        let addrs = self.core.routes.broker_addrs(&self.mq.broker_name)?;
        find_broker_addr_in_subscribe(&addrs, self.broker_id).map(|(id, a)| (id, a.to_owned()))
    }
}

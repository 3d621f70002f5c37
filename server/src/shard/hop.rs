//! The hop to another shard (design.md §3): [`Shard::on_shard`] runs work on the shard that
//! owns a queue, directly when that is this shard. Each shard has an inbox, a bounded lock-free queue
//! of closures that run on that shard's thread, plus a waker that breaks the shard's
//! runtime out of its io_uring wait when something is posted from another thread.
//!
//! A closure receives the target shard's context (`Rc<C>`, not `Send`) and may spawn local
//! tasks; answers travel back through a oneshot channel whose waker wakes the asking task on
//! its own shard ([`Inboxes::call`]). Nothing else is shared between shards.
//!
//! Waking an idle core costs ≈70 µs on these VMs (compio-notes.md), so the receiver keeps
//! polling its inbox for a bounded number of loop turns after the last message before it
//! parks ([`Inboxes::spin_turns`]), and callers batch where they can.

use std::future::{poll_fn, Future};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use crossbeam_queue::ArrayQueue;
use futures_util::task::AtomicWaker;

use super::Shard;

/// A unit of work for a shard of context `C`.
pub type ShardJob<C> = Box<dyn FnOnce(&Rc<C>) + Send>;

/// Messages one inbox holds before posting waits.
pub const INBOX_CAPACITY: usize = 65_536;

/// Most inbox jobs one loop turn runs before the shard's other tasks get their turn.
const TURN_JOBS_MAX: usize = 1024;
/// Longest one loop turn spends on inbox jobs (checked every [`TURN_CLOCK_EVERY_JOBS`]).
const TURN_TIME_MAX: Duration = Duration::from_millis(2);
/// Jobs between two reads of the clock within a turn.
const TURN_CLOCK_EVERY_JOBS: usize = 16;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InboxError {
    #[error("no shard {shard}")]
    NoSuchShard { shard: usize },
    #[error("shard {shard} dropped the request without answering (shutting down?)")]
    Dropped { shard: usize },
}

struct Inbox<C> {
    queue: ArrayQueue<ShardJob<C>>,
    waker: AtomicWaker,
}

/// The inboxes of every shard; cheap to clone (one `Arc`).
pub struct Inboxes<C> {
    inboxes: Arc<Vec<Inbox<C>>>,
    /// Jobs posted since start: the cross-shard hops benchmarks report beside latencies.
    hops: Arc<AtomicU64>,
    spin_turns: usize,
}

impl<C> Clone for Inboxes<C> {
    fn clone(&self) -> Self {
        Inboxes {
            inboxes: Arc::clone(&self.inboxes),
            hops: Arc::clone(&self.hops),
            spin_turns: self.spin_turns,
        }
    }
}

impl<C> std::fmt::Debug for Inboxes<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inboxes")
            .field("shards", &self.inboxes.len())
            .field("spin_turns", &self.spin_turns)
            .finish()
    }
}

impl<C: 'static> Inboxes<C> {
    /// One inbox per shard. `spin_turns`: loop turns a receiver keeps polling after its last
    /// message before it parks (0 = park at once).
    pub fn new(shards: usize, spin_turns: usize) -> Self {
        Inboxes {
            inboxes: Arc::new(
                (0..shards)
                    .map(|_| Inbox {
                        queue: ArrayQueue::new(INBOX_CAPACITY),
                        waker: AtomicWaker::new(),
                    })
                    .collect(),
            ),
            hops: Arc::new(AtomicU64::new(0)),
            spin_turns,
        }
    }

    /// Cross-shard jobs posted since start.
    pub fn hops(&self) -> u64 {
        self.hops.load(Ordering::Relaxed)
    }

    pub fn shards(&self) -> usize {
        self.inboxes.len()
    }

    pub fn spin_turns(&self) -> usize {
        self.spin_turns
    }

    /// Queues `job` to run on `shard`. When the inbox is full the calling task waits
    /// (a millisecond at a time) rather than dropping work.
    pub async fn post(&self, shard: usize, job: ShardJob<C>) -> Result<(), InboxError> {
        let inbox = self
            .inboxes
            .get(shard)
            .ok_or(InboxError::NoSuchShard { shard })?;
        let mut job = job;
        loop {
            match inbox.queue.push(job) {
                Ok(()) => {
                    self.hops.fetch_add(1, Ordering::Relaxed);
                    inbox.waker.wake();
                    return Ok(());
                }
                Err(returned) => {
                    job = returned;
                    inbox.waker.wake();
                    compio::time::sleep(std::time::Duration::from_millis(1)).await;
                }
            }
        }
    }

    /// Runs `work` on `shard` and returns its result to the calling task.
    pub async fn call<T, F, Fut>(&self, shard: usize, work: F) -> Result<T, InboxError>
    where
        T: Send + 'static,
        F: FnOnce(Rc<C>) -> Fut + Send + 'static,
        Fut: Future<Output = T> + 'static,
    {
        let (tx, rx) = futures_channel::oneshot::channel();
        self.post(
            shard,
            Box::new(move |context: &Rc<C>| {
                let context = Rc::clone(context);
                compio::runtime::spawn(async move {
                    let result = work(context).await;
                    // The asker may have gone away (connection closed); nothing to do then.
                    let _ = tx.send(result);
                })
                .detach();
            }),
        )
        .await?;
        rx.await.map_err(|_| InboxError::Dropped { shard })
    }

    /// The receiving loop of `shard`: runs every job posted to it, forever. Spawn it once per
    /// shard; it ends when the shard's runtime is dropped.
    pub async fn receive(&self, shard: usize, context: Rc<C>) -> Result<(), InboxError> {
        let inbox = self
            .inboxes
            .get(shard)
            .ok_or(InboxError::NoSuchShard { shard })?;
        let mut idle_turns = 0usize;
        loop {
            let mut ran = 0usize;
            let turn_started = Instant::now();
            while let Some(job) = inbox.queue.pop() {
                job(&context);
                ran += 1;
                // Bound one turn's work, in jobs and in time (a job may encode a frame: 10,000
                // notifications after a big heartbeat are ~400 ms in a debug build), so the
                // connections on this shard are served in between.
                if ran == TURN_JOBS_MAX
                    || (ran % TURN_CLOCK_EVERY_JOBS == 0 && turn_started.elapsed() >= TURN_TIME_MAX)
                {
                    break;
                }
            }
            if ran > 0 {
                idle_turns = 0;
                yield_now().await;
                continue;
            }
            if idle_turns < self.spin_turns {
                idle_turns += 1;
                yield_now().await;
                continue;
            }
            idle_turns = 0;
            poll_fn(|cx| {
                inbox.waker.register(cx.waker());
                // Re-check after registering so a post between pop and register is not lost.
                if inbox.queue.is_empty() {
                    Poll::Pending
                } else {
                    Poll::Ready(())
                }
            })
            .await;
        }
    }
}

impl Shard {
    /// Runs `work` on shard `owner`: directly when that is this shard, through its inbox
    /// otherwise.
    pub(super) async fn on_shard<T, F, Fut>(
        self: &Rc<Self>,
        owner: usize,
        work: F,
    ) -> Result<T, InboxError>
    where
        T: Send + 'static,
        F: FnOnce(Rc<Shard>) -> Fut + Send + 'static,
        Fut: Future<Output = T> + 'static,
    {
        if owner == self.id {
            Ok(work(Rc::clone(self)).await)
        } else {
            self.shared.inboxes.call(owner, work).await
        }
    }

    /// Starts `work` as a task of its own on shard `owner` and returns once it is posted
    /// (a long-lived service, such as a slave's replication connection, moving to the
    /// shard it serves).
    pub async fn spawn_on_shard<F, Fut>(&self, owner: usize, work: F) -> Result<(), InboxError>
    where
        F: FnOnce(Rc<Shard>) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        self.post_to(
            owner,
            Box::new(move |shard: &Rc<Shard>| {
                compio::runtime::spawn(work(Rc::clone(shard))).detach();
            }),
        )
        .await
    }

    /// Runs `job` on shard `target` without waiting for it (always through the inbox, this
    /// shard's own included: one path for all).
    pub(super) async fn post_to(
        &self,
        target: usize,
        job: ShardJob<Shard>,
    ) -> Result<(), InboxError> {
        self.shared.inboxes.post(target, job).await
    }
}

/// Lets the runtime run other ready tasks and poll for I/O completions once.
async fn yield_now() {
    let mut yielded = false;
    poll_fn(|cx| {
        if yielded {
            Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[derive(Debug, Default)]
    struct Counter {
        thread: Cell<Option<std::thread::ThreadId>>,
        hits: Cell<u64>,
    }

    #[test]
    fn call_runs_on_the_target_shard_thread_and_returns_the_result() {
        let inboxes: Inboxes<Counter> = Inboxes::new(2, 4);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let target = {
            let inboxes = inboxes.clone();
            std::thread::spawn(move || {
                let runtime = compio::runtime::Runtime::new().unwrap();
                runtime.block_on(async move {
                    let context = Rc::new(Counter::default());
                    context.thread.set(Some(std::thread::current().id()));
                    ready_tx.send(std::thread::current().id()).unwrap();
                    let receiver = inboxes.receive(1, Rc::clone(&context));
                    let stop = async {
                        while context.hits.get() < 100 {
                            compio::time::sleep(std::time::Duration::from_millis(1)).await;
                        }
                    };
                    futures_util::future::select(Box::pin(receiver), Box::pin(stop)).await;
                    context.hits.get()
                })
            })
        };
        let target_thread = ready_rx.recv().unwrap();
        let runtime = compio::runtime::Runtime::new().unwrap();
        let answers = runtime.block_on(async {
            let mut answers = Vec::new();
            for i in 0..100u64 {
                let answer = inboxes
                    .call(1, move |context: Rc<Counter>| async move {
                        context.hits.set(context.hits.get() + 1);
                        (i * 2, std::thread::current().id())
                    })
                    .await
                    .unwrap();
                answers.push(answer);
            }
            answers
        });
        assert_eq!(target.join().unwrap(), 100);
        for (i, (doubled, thread)) in answers.into_iter().enumerate() {
            assert_eq!(doubled, i as u64 * 2);
            assert_eq!(thread, target_thread, "job ran on the wrong thread");
        }
    }

    #[test]
    fn posting_to_a_missing_shard_is_an_error() {
        let inboxes: Inboxes<Counter> = Inboxes::new(1, 0);
        let runtime = compio::runtime::Runtime::new().unwrap();
        let result = runtime.block_on(inboxes.post(3, Box::new(|_| {})));
        assert_eq!(result, Err(InboxError::NoSuchShard { shard: 3 }));
    }
}

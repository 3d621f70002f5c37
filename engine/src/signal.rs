//! Single-threaded wake-ups between the shard's tasks: [`Notify`] (wake the group writer)
//! and [`GroupProgress`] (appenders wait until their group is written, or synced). No locks:
//! everything lives on one shard thread. Nothing here is persisted.

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::io;
use std::sync::Arc;
use std::task::{Poll, Waker};

/// A level-triggered wake-up for one waiting task: a `notify` before the `wait` is not lost.
#[derive(Debug, Default)]
pub struct Notify {
    notified: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

impl Notify {
    /// Marks the signal and wakes the waiter, if any.
    pub fn notify(&self) {
        self.notified.set(true);
        if let Some(waker) = self.waker.borrow_mut().take() {
            waker.wake();
        }
    }

    /// Waits until notified (at once if notified since the last wait), then clears it.
    pub async fn wait(&self) {
        poll_fn(|cx| {
            if self.notified.replace(false) {
                Poll::Ready(())
            } else {
                *self.waker.borrow_mut() = Some(cx.waker().clone());
                Poll::Pending
            }
        })
        .await;
    }
}

/// How far the group writer got: every group with `seq ≤ done` is complete; after a
/// failure, every later group fails with the same error.
#[derive(Debug, Default)]
pub struct GroupProgress {
    done: Cell<u64>,
    failed: RefCell<Option<Arc<io::Error>>>,
    waiters: RefCell<Vec<(u64, Waker)>>,
}

impl GroupProgress {
    /// The last completed group.
    pub fn done(&self) -> u64 {
        self.done.get()
    }

    /// Marks groups up to `seq` complete and wakes their waiters.
    pub fn complete(&self, seq: u64) {
        self.done.set(self.done.get().max(seq));
        self.wake_up_to(seq);
    }

    /// Marks every group from now on failed and wakes all waiters.
    pub fn fail(&self, error: Arc<io::Error>) {
        *self.failed.borrow_mut() = Some(error);
        self.wake_up_to(u64::MAX);
    }

    fn wake_up_to(&self, seq: u64) {
        let ready: Vec<Waker> = {
            let mut waiters = self.waiters.borrow_mut();
            let mut ready = Vec::new();
            waiters.retain(|(s, w)| {
                if *s <= seq {
                    ready.push(w.clone());
                    false
                } else {
                    true
                }
            });
            ready
        };
        for waker in ready {
            waker.wake();
        }
    }

    /// Waits until group `seq` completed (`Ok`) or the writer failed (`Err`).
    pub async fn wait_for(&self, seq: u64) -> Result<(), Arc<io::Error>> {
        poll_fn(|cx| {
            if self.done.get() >= seq {
                return Poll::Ready(Ok(()));
            }
            if let Some(error) = self.failed.borrow().as_ref() {
                return Poll::Ready(Err(Arc::clone(error)));
            }
            self.waiters.borrow_mut().push((seq, cx.waker().clone()));
            Poll::Pending
        })
        .await
    }
}

/// Gives the other ready tasks of the shard a turn before continuing.
pub async fn yield_now() {
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
    .await;
}

//! A single-threaded "something changed" signal between tasks of one shard.
//!
//! One task waits, any number of tasks notify. A notification that arrives while nobody
//! waits is remembered (one bit), so a wake-up is never lost between a check and a wait.

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::task::{Poll, Waker};

#[derive(Debug, Default)]
pub struct LocalNotify {
    pending: Cell<bool>,
    waiter: RefCell<Option<Waker>>,
}

impl LocalNotify {
    pub fn notify(&self) {
        self.pending.set(true);
        if let Some(waker) = self.waiter.borrow_mut().take() {
            waker.wake();
        }
    }

    /// Resolves at the first notification since the last one was consumed.
    pub async fn notified(&self) {
        poll_fn(|cx| {
            if self.pending.replace(false) {
                Poll::Ready(())
            } else {
                *self.waiter.borrow_mut() = Some(cx.waker().clone());
                Poll::Pending
            }
        })
        .await
    }
}

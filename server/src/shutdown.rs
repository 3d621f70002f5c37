//! Process-wide shutdown signal: set once by the signal thread, awaited by every shard.
//!
//! Each shard registers its task's waker in an `AtomicWaker`; waking it from the signal
//! thread breaks that shard's runtime out of its io_uring wait (compio-notes.md).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::task::AtomicWaker;

#[derive(Debug)]
pub struct Shutdown {
    requested: AtomicBool,
    wakers: Vec<AtomicWaker>,
}

impl Shutdown {
    /// One waker slot per shard.
    pub fn new(shards: usize) -> Arc<Self> {
        Arc::new(Shutdown {
            requested: AtomicBool::new(false),
            wakers: (0..shards).map(|_| AtomicWaker::new()).collect(),
        })
    }

    pub fn request(&self) {
        self.requested.store(true, Ordering::SeqCst);
        for waker in &self.wakers {
            waker.wake();
        }
    }

    pub fn is_requested(&self) -> bool {
        self.requested.load(Ordering::SeqCst)
    }

    /// Resolves once shutdown is requested. Only one task per shard may await it at a time.
    pub fn wait(self: &Arc<Self>, shard: usize) -> ShutdownWait {
        ShutdownWait {
            shutdown: Arc::clone(self),
            shard,
        }
    }
}

/// Future returned by [`Shutdown::wait`].
#[derive(Debug)]
pub struct ShutdownWait {
    shutdown: Arc<Shutdown>,
    shard: usize,
}

impl Future for ShutdownWait {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.shutdown.is_requested() {
            return Poll::Ready(());
        }
        if let Some(waker) = self.shutdown.wakers.get(self.shard) {
            waker.register(cx.waker());
        }
        // Checked again after registering so a request between the two checks is not lost.
        if self.shutdown.is_requested() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

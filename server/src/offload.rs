//! Control-plane work too big for a ring thread: one worker thread, not pinned, that runs
//! jobs in the order they were handed over and hands each result back to the task waiting
//! for it.
//!
//! Why: a shard's ring thread serves every connection it owns, so a request that computes
//! for 300 ms (a HEART_BEAT listing 10,000 groups, in a debug build) stalls all of them for
//! 300 ms. Handed to this thread, the same work leaves the ring thread free to serve the
//! others; the requester alone waits for it. The thread is spawned by the main thread,
//! before any shard pins itself, so it inherits no shard's CPU and the kernel may run it on
//! whichever core is idle.
//!
//! **Bounds.** At most [`QUEUED_JOBS_MAX`] jobs wait; past that (or if the thread could not
//! be started, or has gone) a job runs inline on the caller's thread, as it would without
//! this module: slower for the others, never refused.
//!
//! **Crash.** Nothing is kept: a job is in memory only.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex, PoisonError};

use futures_channel::oneshot;

/// Jobs that may wait for the worker before callers run their own inline.
pub const QUEUED_JOBS_MAX: usize = 64;

type Job = Box<dyn FnOnce() + Send>;

/// A job ended without a result: it panicked on the worker thread.
#[derive(Debug, thiserror::Error)]
#[error("the offloaded work ended without a result (it panicked; see the log)")]
pub struct OffloadError;

/// The worker (module documentation).
#[derive(Debug)]
pub struct Offload {
    /// `None` when the thread could not be started: every job runs inline.
    jobs: Option<Mutex<Sender<Job>>>,
    /// Jobs handed over and not finished; bounded by [`QUEUED_JOBS_MAX`].
    queued: Arc<AtomicUsize>,
}

impl Offload {
    /// Starts the worker thread. Call it before the shards pin their threads.
    pub fn start() -> Offload {
        let (sender, receiver) = mpsc::channel::<Job>();
        let queued = Arc::new(AtomicUsize::new(0));
        let worker_queued = Arc::clone(&queued);
        let spawned = std::thread::Builder::new()
            .name("ringmq-offload".to_owned())
            .spawn(move || {
                // Ends when every sender is gone (the broker is shutting down).
                while let Ok(job) = receiver.recv() {
                    job();
                    worker_queued.fetch_sub(1, Ordering::Relaxed);
                }
            });
        let jobs = match spawned {
            Ok(_detached) => Some(Mutex::new(sender)),
            Err(error) => {
                tracing::warn!(%error, "cannot start the offload thread; big control-plane requests run on the shards");
                None
            }
        };
        Offload { jobs, queued }
    }

    /// Runs `work` on the worker thread and waits (asynchronously) for its result; runs
    /// it inline when the worker is busy past its bound or gone.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, OffloadError> {
        let (result_tx, result_rx) = oneshot::channel();
        let job: Job = Box::new(move || {
            // The waiting task may be gone (its connection closed): nothing to hand back.
            let _ = result_tx.send(work());
        });
        match &self.jobs {
            Some(jobs) if self.queued.fetch_add(1, Ordering::Relaxed) < QUEUED_JOBS_MAX => {
                let sent = jobs
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .send(job);
                if let Err(mpsc::SendError(job)) = sent {
                    self.queued.fetch_sub(1, Ordering::Relaxed);
                    job();
                }
            }
            Some(_) => {
                self.queued.fetch_sub(1, Ordering::Relaxed);
                job();
            }
            None => job(),
        }
        result_rx.await.map_err(|oneshot::Canceled| OffloadError)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_runs_on_another_thread_and_its_result_comes_back() {
        let offload = Offload::start();
        let caller = std::thread::current().id();
        let ran_on = futures_executor_block_on(offload.run(|| std::thread::current().id()));
        assert_ne!(ran_on.unwrap(), caller);
    }

    fn futures_executor_block_on<F: std::future::Future>(future: F) -> F::Output {
        compio::runtime::Runtime::new().unwrap().block_on(future)
    }
}

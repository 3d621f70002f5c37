//! The listener pool: a fixed set of OS threads that run a push consumer's listener on the
//! batches it is handed, in the order handed, each job run to completion by one thread
//! (Java's `consumeExecutor`, `consumeThreadMin` threads).
//!
//! **Owns** the threads and the job channel. A job is settled by the thread that ran it, so a
//! message costs one hand-off (the pull task's send waking an idle thread), not three (spawning
//! a task, spawning a blocking call, waking the task with its result): on a busy two-core
//! machine each wake-up is tens of microseconds of CPU and a scheduling delay on the tail
//! (BENCHMARKS.md, "The push consumer's listener hand-off").
//!
//! The threads run inside the client's tokio runtime context, so a job may
//! `Handle::current().block_on` the client's async calls (sending a failed message back) and
//! `tokio::spawn` timers. [`ListenerPool::close`] stops taking jobs; the threads finish the
//! jobs already queued and exit; [`ListenerPool::wait_closed`] waits for that.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Semaphore;

/// A fixed pool of threads running `run(job)` for every job submitted.
pub(crate) struct ListenerPool<J: Send + 'static> {
    jobs: Mutex<Option<crossbeam_channel::Sender<J>>>,
    /// One permit per thread that has exited.
    exited: Arc<Semaphore>,
    threads: u32,
}

impl<J: Send + 'static> ListenerPool<J> {
    /// Starts `threads` threads named `{name}-{i}` in the current tokio runtime's context.
    ///
    /// Fails when the OS refuses a thread; the threads already started exit with the pool.
    pub(crate) fn start(threads: usize, name: &str, run: fn(J)) -> std::io::Result<Self> {
        let threads = u32::try_from(threads.max(1)).unwrap_or(u32::MAX);
        let (sender, receiver) = crossbeam_channel::unbounded::<J>();
        let exited = Arc::new(Semaphore::new(0));
        let runtime = tokio::runtime::Handle::current();
        for i in 0..threads {
            let receiver = receiver.clone();
            let exited = Arc::clone(&exited);
            let runtime = runtime.clone();
            std::thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn(move || {
                    let _exit = ExitSignal(exited);
                    let _context = runtime.enter();
                    for job in receiver.iter() {
                        run(job);
                    }
                })?;
        }
        Ok(ListenerPool {
            jobs: Mutex::new(Some(sender)),
            exited,
            threads,
        })
    }

    /// Queues `job`; gives it back when the pool is closed.
    pub(crate) fn submit(&self, job: J) -> Result<(), J> {
        let Ok(jobs) = self.jobs.lock() else {
            return Err(job);
        };
        match jobs.as_ref() {
            Some(sender) => sender.send(job).map_err(|e| e.into_inner()),
            None => Err(job),
        }
    }

    /// Takes no more jobs: the threads run what is queued, then exit.
    pub(crate) fn close(&self) {
        if let Ok(mut jobs) = self.jobs.lock() {
            jobs.take();
        }
    }

    /// Waits up to `timeout` for every thread to exit after [`Self::close`]; false if some
    /// were still running a job.
    pub(crate) async fn wait_closed(&self, timeout: Duration) -> bool {
        let all = tokio::time::timeout(timeout, self.exited.acquire_many(self.threads)).await;
        matches!(all, Ok(Ok(_)))
    }
}

/// Counts a thread out when it exits, even by a panic outside the listener.
struct ExitSignal(Arc<Semaphore>);

impl Drop for ExitSignal {
    fn drop(&mut self) {
        self.0.add_permits(1);
    }
}

//! Writing `config/topics.json` off the shard threads.
//!
//! A topic change is published in memory at once (sends and pulls see it) and handed here
//! with its sequence number; one thread of its own (`ringmq-topics-writer`) writes the
//! newest table it was handed, so a burst of changes (a heartbeat naming 2,000 new groups,
//! a producer auto-creating topics) costs one write, not one per change. No shard thread
//! ever blocks on a file rewrite or an fsync.
//!
//! A caller that must answer only once the change is durable (UPDATE_AND_CREATE_TOPIC)
//! awaits [`Persister::durable`]: it resolves when a write covering its sequence number has
//! been renamed into place and the directory fsynced, or fails with that write's error.
//! A failed write is retried after [`RETRY_AFTER`]; every later write rewrites the whole
//! table, so nothing is lost while the process lives.
//!
//! **Crash.** Each write is `topics.json.tmp` → fsync → rename → directory fsync, so a
//! crash leaves the old or the new file whole. A topic auto-created just before a crash may
//! be missing from the file: its messages are in the log, and start-up recreates their
//! topics from the queues the store recovered ([`super::Topics::recover_from_log`]).

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use futures_channel::oneshot;
use ringmq_protocol::body::JsonBody;

use super::{TopicError, TopicTable};

/// How long the writer waits before retrying a failed write.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// The outcome a durability waiter is given: `Err` carries the failed write's text.
type WriteOutcome = Result<(), String>;

#[derive(Default)]
struct State {
    /// The newest table handed over and not yet written, with its sequence number.
    pending: Option<(u64, Arc<TopicTable>)>,
    /// Highest sequence number known to be on disk.
    durable_seq: u64,
    waiters: Vec<(u64, oneshot::Sender<WriteOutcome>)>,
    /// A write is in progress (its table was taken out of `pending`).
    writing: bool,
    /// Write attempts so far, and whether the last one failed.
    attempts: u64,
    last_failed: bool,
    stopping: bool,
}

struct Shared {
    path: PathBuf,
    state: Mutex<State>,
    /// Signalled when a table is handed over or the writer should stop.
    wake: Condvar,
    /// Signalled after each write attempt (for [`Persister::flush`]).
    written: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The topic table's writer thread.
pub struct Persister {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Persister {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Persister")
            .field("path", &self.shared.path)
            .finish_non_exhaustive()
    }
}

impl Persister {
    /// Starts the writer of `path`; `durable_seq` is the sequence number of what the file
    /// already holds.
    pub fn start(path: PathBuf, durable_seq: u64) -> Result<Self, TopicError> {
        let shared = Arc::new(Shared {
            path: path.clone(),
            state: Mutex::new(State {
                durable_seq,
                ..State::default()
            }),
            wake: Condvar::new(),
            written: Condvar::new(),
        });
        let writer = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("ringmq-topics-writer".to_owned())
            .spawn(move || write_loop(&writer))
            .map_err(|source| TopicError::Io { path, source })?;
        Ok(Persister {
            shared,
            thread: Some(thread),
        })
    }

    /// Hands over the table of change `seq` (newer than any handed over before).
    pub fn submit(&self, seq: u64, table: Arc<TopicTable>) {
        let mut state = self.shared.lock();
        debug_assert!(state.pending.as_ref().is_none_or(|(old, _)| *old < seq));
        state.pending = Some((seq, table));
        drop(state);
        self.shared.wake.notify_one();
    }

    /// Resolves once change `seq` is on disk, or with the error of the write that failed to
    /// put it there.
    pub fn durable(&self, seq: u64) -> impl std::future::Future<Output = Result<(), TopicError>> {
        let (tx, rx) = oneshot::channel();
        {
            let mut state = self.shared.lock();
            if state.durable_seq >= seq {
                let _ = tx.send(Ok(()));
            } else {
                state.waiters.push((seq, tx));
            }
        }
        let path = self.shared.path.clone();
        async move {
            match rx.await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(reason)) => Err(TopicError::NotPersisted { path, reason }),
                Err(_) => Err(TopicError::NotPersisted {
                    path,
                    reason: "the topic writer stopped".to_owned(),
                }),
            }
        }
    }

    /// Blocks until everything handed over was written, or a write after this call failed.
    pub fn flush(&self) {
        let mut state = self.shared.lock();
        let attempts_before = state.attempts;
        while (state.pending.is_some() || state.writing)
            && !(state.attempts > attempts_before && state.last_failed)
        {
            state = self
                .shared
                .written
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

impl Drop for Persister {
    /// Writes what is pending, then stops the thread.
    fn drop(&mut self) {
        self.flush();
        self.shared.lock().stopping = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn write_loop(shared: &Shared) {
    loop {
        let (seq, table) = {
            let mut state = shared.lock();
            loop {
                // Stopping comes after a flush, which gave everything pending its attempt.
                if state.stopping {
                    return;
                }
                if let Some(pending) = state.pending.take() {
                    state.writing = true;
                    break pending;
                }
                state = shared
                    .wake
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
            }
        };
        let result = table
            .to_wrapper()
            .encode()
            .map_err(TopicError::Encode)
            .and_then(|bytes| write_atomically(&shared.path, &bytes));
        let failed = result.is_err();
        let mut state = shared.lock();
        state.writing = false;
        state.attempts += 1;
        state.last_failed = failed;
        match result {
            Ok(()) => {
                state.durable_seq = state.durable_seq.max(seq);
                let durable_seq = state.durable_seq;
                resolve(&mut state.waiters, durable_seq, &Ok(()));
            }
            Err(error) => {
                let reason = crate::reply::error_chain(&error);
                tracing::error!(error = %reason, "writing the topic table failed; retrying");
                resolve(&mut state.waiters, seq, &Err(reason));
                // Retry unless a newer table arrived meanwhile (it is written instead).
                state.pending.get_or_insert((seq, table));
            }
        }
        drop(state);
        shared.written.notify_all();
        if failed {
            std::thread::sleep(RETRY_AFTER);
        }
    }
}

/// Answers the waiters of every change up to `seq`.
fn resolve(
    waiters: &mut Vec<(u64, oneshot::Sender<WriteOutcome>)>,
    seq: u64,
    outcome: &WriteOutcome,
) {
    let mut kept = Vec::with_capacity(waiters.len());
    for (waiting_for, tx) in waiters.drain(..) {
        if waiting_for <= seq {
            // The asker may be gone (its connection closed): nothing to do then.
            let _ = tx.send(outcome.clone());
        } else {
            kept.push((waiting_for, tx));
        }
    }
    *waiters = kept;
}

/// `Ok(None)` when the file does not exist.
pub fn load(path: &Path) -> Result<Option<TopicTable>, TopicError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(TopicError::Io {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let wrapper =
        ringmq_protocol::body::TopicConfigSerializeWrapper::decode(&bytes).map_err(|source| {
            TopicError::Corrupt {
                path: path.to_path_buf(),
                source,
            }
        })?;
    Ok(Some(TopicTable::from_wrapper(wrapper)))
}

/// Writes `<path>.tmp`, fsyncs it, renames it over `path`, fsyncs the directory
/// ([`crate::durable_file::replace`]).
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), TopicError> {
    crate::durable_file::replace(path, bytes).map_err(|e| TopicError::Io {
        path: e.path,
        source: e.source,
    })
}

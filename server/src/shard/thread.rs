//! Shards: one pinned OS thread per shard, each running its own compio runtime
//! (io_uring, or epoll when io_uring is unavailable), accepting connections on its own
//! `SO_REUSEPORT` listener (design.md §2-§3).
//!
//! A shard owns its state without locks; nothing here is shared between shards except the
//! read-only configuration and the shutdown signal. A shard runs until shutdown is
//! requested, then stops accepting and returns from its thread.

use std::collections::HashSet;
use std::net::TcpListener as StdTcpListener;
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;

use futures_util::future::{select, Either};

use std::rc::Rc;

use super::{BrokerShared, Shard, ShardOpenError};
use crate::backend::describe_driver;
use crate::connection::{serve, ConnectionTable, Service};
use crate::shutdown::Shutdown;

/// Makes the connection-facing [`Service`] of one shard (the request router).
pub type ServiceFactory<S> = fn(Rc<Shard>) -> Rc<S>;

/// Starts a shard's background services once its store is open (replication): given the
/// shard, the HA listener (shard 0 of a master only) and the shutdown signal.
pub type StartHook = fn(&Rc<Shard>, Option<StdTcpListener>, &Arc<Shutdown>) -> std::io::Result<()>;

/// What a shard reports once its runtime is built.
#[derive(Debug)]
pub struct ShardStarted {
    pub shard_id: usize,
    pub driver: &'static str,
    pub cpu: usize,
    /// The `(topic, queue id)`s its store recovered data for (start-up recreates topics
    /// the table lacks from them).
    pub stored_queues: Vec<(String, i32)>,
}

#[derive(Debug, thiserror::Error)]
pub enum ShardError {
    #[error("shard {shard_id}: cannot build its runtime: {source}")]
    Runtime {
        shard_id: usize,
        #[source]
        source: std::io::Error,
    },
    #[error("shard {shard_id}: cannot spawn its thread: {source}")]
    Spawn {
        shard_id: usize,
        #[source]
        source: std::io::Error,
    },
    #[error("shard {shard_id}: listener: {source}")]
    Listener {
        shard_id: usize,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Open {
        #[from]
        source: ShardOpenError,
    },
    #[error("shard {shard_id} stopped before reporting that it started")]
    Vanished { shard_id: usize },
}

/// Running shards; join them after requesting shutdown.
#[derive(Debug)]
pub struct Shards {
    threads: Vec<JoinHandle<Result<(), ShardError>>>,
}

impl Shards {
    /// Starts one thread per listener and waits until each runtime is built.
    pub fn start<S: Service>(
        shared: Arc<BrokerShared>,
        listeners: Vec<StdTcpListener>,
        ha_listener: Option<StdTcpListener>,
        shutdown: Arc<Shutdown>,
        service: ServiceFactory<S>,
        on_start: StartHook,
    ) -> Result<(Shards, Vec<ShardStarted>), ShardError> {
        let mut ha_listener = ha_listener;
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        let (started_tx, started_rx) = mpsc::channel();
        let mut threads = Vec::with_capacity(listeners.len());
        for (shard_id, listener) in listeners.into_iter().enumerate() {
            let cpu = shard_id % cores;
            let started_tx = started_tx.clone();
            let shutdown = Arc::clone(&shutdown);
            let shared = Arc::clone(&shared);
            // Shard 0 accepts the slaves' connections and hands each to its shard.
            let ha_listener = if shard_id == 0 {
                ha_listener.take()
            } else {
                None
            };
            let thread = std::thread::Builder::new()
                .name(format!("ringmq-shard-{shard_id}"))
                .spawn(move || {
                    let start = ShardStart {
                        shard_id,
                        cpu,
                        shared,
                        listener,
                        ha_listener,
                        shutdown,
                        started: started_tx,
                        service,
                        on_start,
                    };
                    run_shard(start)
                })
                .map_err(|source| ShardError::Spawn { shard_id, source })?;
            threads.push(thread);
        }
        drop(started_tx);
        let mut started = Vec::with_capacity(threads.len());
        for shard_id in 0..threads.len() {
            match started_rx.recv() {
                Ok(report) => started.push(report),
                Err(_) => {
                    // A shard failed before reporting: surface its error.
                    return Err(Shards { threads }
                        .join_first_error()
                        .unwrap_or(ShardError::Vanished { shard_id }));
                }
            }
        }
        started.sort_by_key(|s| s.shard_id);
        Ok((Shards { threads }, started))
    }

    /// Waits for every shard to finish; returns the first error.
    pub fn join(self) -> Result<(), ShardError> {
        match self.join_first_error() {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    fn join_first_error(self) -> Option<ShardError> {
        let mut first = None;
        for (shard_id, thread) in self.threads.into_iter().enumerate() {
            let result = thread
                .join()
                .unwrap_or(Err(ShardError::Vanished { shard_id }));
            if let Err(error) = result {
                first.get_or_insert(error);
            }
        }
        first
    }
}

/// Connections refused at the limit, logged at most once per [`REFUSAL_LOG_INTERVAL`].
#[derive(Debug, Default)]
struct RefusalLog {
    since_last_log: u64,
    last_log: Option<std::time::Instant>,
}

const REFUSAL_LOG_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);

impl RefusalLog {
    fn refused(&mut self, shard_id: usize, max_connections: usize) {
        self.since_last_log += 1;
        let due = self
            .last_log
            .is_none_or(|last| last.elapsed() >= REFUSAL_LOG_INTERVAL);
        if due {
            tracing::warn!(
                shard_id,
                max_connections,
                refused = self.since_last_log,
                "connection limit reached: new connections are closed (--max-connections)"
            );
            self.since_last_log = 0;
            self.last_log = Some(std::time::Instant::now());
        }
    }
}

/// What a shard thread starts from.
struct ShardStart<S> {
    shard_id: usize,
    cpu: usize,
    shared: Arc<BrokerShared>,
    listener: StdTcpListener,
    ha_listener: Option<StdTcpListener>,
    shutdown: Arc<Shutdown>,
    started: mpsc::Sender<ShardStarted>,
    service: ServiceFactory<S>,
    on_start: StartHook,
}

fn run_shard<S: Service>(start: ShardStart<S>) -> Result<(), ShardError> {
    let shard_id = start.shard_id;
    let runtime = compio::runtime::RuntimeBuilder::new()
        .thread_affinity(HashSet::from([start.cpu]))
        .build()
        .map_err(|source| ShardError::Runtime { shard_id, source })?;
    let driver = describe_driver(runtime.driver_type());
    runtime.block_on(shard_main(start, driver))
}

async fn shard_main<S: Service>(
    start: ShardStart<S>,
    driver: &'static str,
) -> Result<(), ShardError> {
    let ShardStart {
        shard_id,
        cpu,
        shared,
        listener,
        ha_listener,
        shutdown,
        started,
        service,
        on_start,
    } = start;
    let listener = compio::net::TcpListener::from_std(listener)
        .map_err(|source| ShardError::Listener { shard_id, source })?;
    let shard = Shard::open(shard_id, Arc::clone(&shared))
        .await
        .map_err(|source| ShardError::Open { source })?;
    // Reported only once the store is recovered: the broker announces its port after this.
    // The receiver only goes away if start-up already failed elsewhere; nothing to do then.
    let _ = started.send(ShardStarted {
        shard_id,
        driver,
        cpu,
        stored_queues: shard.stored_queues(),
    });
    let inboxes = shared.inboxes.clone();
    let receiver_context = Rc::clone(&shard);
    compio::runtime::spawn(async move {
        if let Err(error) = inboxes.receive(shard_id, receiver_context).await {
            tracing::error!(shard_id, %error, "inbox receiver stopped");
        }
    })
    .detach();
    on_start(&shard, ha_listener, &shutdown)
        .map_err(|source| ShardError::Listener { shard_id, source })?;
    let service = service(Rc::clone(&shard));
    let connections = Rc::new(ConnectionTable::new(shared.outbox_limit_bytes()));
    compio::runtime::spawn(ConnectionTable::sweep_idle(
        Rc::downgrade(&connections),
        shared.config.idle_timeout,
    ))
    .detach();
    let mut refusals = RefusalLog::default();
    loop {
        let accept = std::pin::pin!(listener.accept());
        let stop = shutdown.wait(shard_id);
        match select(accept, stop).await {
            Either::Left((Ok((stream, peer)), _)) => {
                if !shared.admit_connection() {
                    // At the limit: close it at once, so the process keeps descriptors for
                    // the connections it serves, the store and the name server.
                    drop(stream);
                    refusals.refused(shard_id, shared.config.max_connections);
                    continue;
                }
                tracing::debug!(shard_id, %peer, "connection accepted");
                let (service, connections, shared) = (
                    Rc::clone(&service),
                    Rc::clone(&connections),
                    Arc::clone(&shared),
                );
                compio::runtime::spawn(async move {
                    serve(stream, peer, service, connections).await;
                    shared.connection_gone();
                })
                .detach();
            }
            Either::Left((Err(error), _)) => {
                // EMFILE and friends: keep serving the connections we have, retry shortly.
                tracing::warn!(shard_id, %error, "accept failed");
                compio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            Either::Right(((), _)) => break,
        }
    }
    tracing::info!(shard_id, "shard stopped accepting");
    shard.shut_down().await;
    // Let the answers to the pulls released above reach their sockets.
    compio::time::sleep(std::time::Duration::from_millis(100)).await;
    Ok(())
}

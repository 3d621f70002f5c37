//! Runs the name server: one thread, one compio runtime, one listener (not shared with the
//! broker's shards; the name server's load is a few requests per client per 30 s).
//!
//! The [`RouteTable`] lives on that thread only, behind a `RefCell`: requests are answered
//! one at a time without awaiting, so no borrow is ever held across an await. A scan every
//! [`NamesrvConfig::scan_interval`] drops brokers silent past their timeout; a broker's
//! registering connection closing drops it at once. Stopping ([`NameServerHandle::stop`])
//! stops accepting and drops every connection; nothing is persisted.

use std::cell::RefCell;
use std::net::{SocketAddr, TcpListener as StdTcpListener};
use std::rc::Rc;
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Duration;

use futures_util::future::{select, Either};
use ringmq_protocol::command::RemotingCommand;

use super::processor::process;
use super::route_table::RouteTable;
use crate::connection::{serve, Connection, ConnectionTable, Response, Service};
use crate::listener::bind_single;
use crate::shutdown::Shutdown;

/// A client connection with no read or write for this long is closed (RocketMQ's
/// `serverChannelMaxIdleTimeSeconds`).
const IDLE_TIMEOUT: Duration = Duration::from_secs(120);

/// How the name server runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamesrvConfig {
    /// Address to listen on; port 0 picks a free port.
    pub listen: SocketAddr,
    /// How often silent brokers are looked for (RocketMQ: 5 s).
    pub scan_interval: Duration,
}

impl NamesrvConfig {
    /// RocketMQ's timing on `listen`.
    pub fn new(listen: SocketAddr) -> Self {
        NamesrvConfig {
            listen,
            scan_interval: Duration::from_secs(5),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum NamesrvError {
    #[error("name server: cannot listen on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("name server: cannot start its thread or runtime")]
    Start(#[source] std::io::Error),
    #[error("name server: cannot use its listener")]
    Listener(#[source] std::io::Error),
    #[error("name server thread panicked")]
    Panicked,
}

/// A running name server.
#[derive(Debug)]
pub struct NameServerHandle {
    local_addr: SocketAddr,
    shutdown: Arc<Shutdown>,
    thread: JoinHandle<Result<(), NamesrvError>>,
}

impl NameServerHandle {
    /// The bound address (the real port when the configuration asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting, drops the connections, and waits for the thread.
    pub fn stop(self) -> Result<(), NamesrvError> {
        self.shutdown.request();
        self.thread.join().map_err(|_| NamesrvError::Panicked)?
    }
}

/// Binds the listener on the calling thread (so the port is known when this returns), then
/// serves on a thread of its own. Returns once that thread's runtime is up.
pub fn start(config: NamesrvConfig) -> Result<NameServerHandle, NamesrvError> {
    let listener = bind_single(config.listen).map_err(|source| NamesrvError::Bind {
        addr: config.listen,
        source,
    })?;
    let local_addr = listener.local_addr().map_err(NamesrvError::Listener)?;
    let shutdown = Shutdown::new(1);
    let (ready_tx, ready_rx) = mpsc::channel();
    let thread_shutdown = Arc::clone(&shutdown);
    let thread = std::thread::Builder::new()
        .name("namesrv".to_owned())
        .spawn(move || run(config, listener, thread_shutdown, ready_tx))
        .map_err(NamesrvError::Start)?;
    match ready_rx.recv() {
        Ok(()) => Ok(NameServerHandle {
            local_addr,
            shutdown,
            thread,
        }),
        // The thread ended before its runtime was up: its result says why.
        Err(_) => match thread.join() {
            Ok(Err(error)) => Err(error),
            Ok(Ok(())) | Err(_) => Err(NamesrvError::Panicked),
        },
    }
}

fn run(
    config: NamesrvConfig,
    listener: StdTcpListener,
    shutdown: Arc<Shutdown>,
    ready: mpsc::Sender<()>,
) -> Result<(), NamesrvError> {
    let runtime = compio::runtime::RuntimeBuilder::new()
        .build()
        .map_err(NamesrvError::Start)?;
    // The receiver waits in `start` until this arrives.
    let _ = ready.send(());
    runtime.block_on(serve_forever(config, listener, shutdown))
}

async fn serve_forever(
    config: NamesrvConfig,
    listener: StdTcpListener,
    shutdown: Arc<Shutdown>,
) -> Result<(), NamesrvError> {
    let listener = compio::net::TcpListener::from_std(listener).map_err(NamesrvError::Listener)?;
    let service = Rc::new(NamesrvService {
        table: RefCell::new(RouteTable::new()),
    });
    let scanner = compio::runtime::spawn(scan_loop(Rc::clone(&service), config.scan_interval));
    let connections = Rc::new(ConnectionTable::default());
    compio::runtime::spawn(ConnectionTable::sweep_idle(
        Rc::downgrade(&connections),
        IDLE_TIMEOUT,
    ))
    .detach();
    loop {
        let accept = std::pin::pin!(listener.accept());
        let stop = shutdown.wait(0);
        match select(accept, stop).await {
            Either::Left((Ok((stream, peer)), _)) => {
                let connections = Rc::clone(&connections);
                compio::runtime::spawn(serve(stream, peer, Rc::clone(&service), connections))
                    .detach();
            }
            Either::Left((Err(error), _)) => {
                // EMFILE and friends: keep serving the connections we have, retry shortly.
                tracing::warn!(%error, "name server: accept failed");
                compio::time::sleep(Duration::from_millis(50)).await;
            }
            Either::Right(((), _)) => break,
        }
    }
    drop(scanner);
    tracing::info!("name server stopped");
    Ok(())
}

async fn scan_loop(service: Rc<NamesrvService>, interval: Duration) {
    loop {
        compio::time::sleep(interval).await;
        let now_ms = service.now_ms();
        let gone = service.table.borrow_mut().expire(now_ms);
        for addr in gone {
            tracing::warn!(broker = %addr, "broker silent past its timeout: routes removed");
        }
    }
}

/// The name server as a connection [`Service`].
#[derive(Debug)]
struct NamesrvService {
    table: RefCell<RouteTable>,
}

impl NamesrvService {
    /// Monotonic milliseconds ([`crate::clock`]), so a wall-clock jump cannot expire every
    /// broker at once.
    fn now_ms(&self) -> i64 {
        i64::try_from(crate::clock::monotonic_ms()).unwrap_or(i64::MAX)
    }
}

impl Service for NamesrvService {
    async fn handle(
        self: Rc<Self>,
        connection: Rc<Connection>,
        request: RemotingCommand,
    ) -> Option<Response> {
        let now_ms = self.now_ms();
        let response = process(
            &mut self.table.borrow_mut(),
            connection.id,
            &request,
            now_ms,
        );
        Some(Response::Command(response))
    }

    fn connection_closed(&self, connection: &Connection) {
        let gone = self.table.borrow_mut().connection_closed(connection.id);
        for addr in gone {
            tracing::info!(broker = %addr, peer = %connection.peer, "broker connection closed: routes removed");
        }
    }
}

#[cfg(test)]
mod tests {
    use ringmq_protocol::body::{TopicConfig, TopicConfigSerializeWrapper};
    use ringmq_protocol::codes::{request_code, response_code};
    use ringmq_protocol::command::ExtFields;

    use std::time::Instant;

    use super::*;
    use crate::registration::{register_request, RegistrationConfig};
    use crate::remoting_client::RemotingClient;

    #[test]
    fn the_periodic_scan_drops_a_broker_silent_past_its_timeout() {
        let mut config = NamesrvConfig::new("127.0.0.1:0".parse().unwrap());
        config.scan_interval = Duration::from_millis(20);
        let server = start(config).unwrap();
        let addr = server.local_addr().to_string();
        let mut registration =
            RegistrationConfig::new(vec![addr.clone()], "C", "b", "10.0.0.1:1", 0, "10.0.0.1:2");
        registration.heartbeat_timeout_ms = 200;
        let mut topics = TopicConfigSerializeWrapper::default();
        topics
            .topic_config_table
            .insert("T".to_owned(), TopicConfig::new("T"));
        let timeout = Duration::from_secs(5);
        compio::runtime::Runtime::new().unwrap().block_on(async {
            // The connection stays open: only the silence can drop the broker.
            let client = RemotingClient::connect(&addr, timeout).await.unwrap();
            let request = register_request(&registration, topics).unwrap();
            let response = client.call(request, timeout).await.unwrap();
            assert_eq!(response.code, response_code::SUCCESS);
            let mut ext = ExtFields::new();
            ext.insert("topic".to_owned(), "T".to_owned());
            let route = RemotingCommand::request(request_code::GET_ROUTEINFO_BY_TOPIC, ext);
            let first = client.call(route.clone(), timeout).await.unwrap();
            assert_eq!(first.code, response_code::SUCCESS);
            let begun = Instant::now();
            loop {
                let answer = client.call(route.clone(), timeout).await.unwrap();
                if answer.code == response_code::TOPIC_NOT_EXIST {
                    break;
                }
                assert!(begun.elapsed() < timeout, "route still served");
                compio::time::sleep(Duration::from_millis(20)).await;
            }
            assert!(begun.elapsed() >= Duration::from_millis(100));
        });
        server.stop().unwrap();
    }
}

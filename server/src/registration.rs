//! The broker's side of the name server (protocol.md §2.14, design.md §9): REGISTER_BROKER to
//! every name server at start, every [`RegistrationConfig::period`] (30 s) and at once when
//! asked ([`RegistrationHandle::register_now`], e.g. after a topic is created);
//! UNREGISTER_BROKER to each at [`Registration::stop`].
//!
//! It runs on a thread of its own with a small compio runtime and one [`RemotingClient`] per
//! name server, so no shard ever waits on a name server. The topics registered come from a
//! [`TopicSnapshot`] closure called on that thread at every round: whoever owns the topic
//! table (the topic manager) provides it, and nothing else is shared. A slave keeps what the
//! name server answers (its master's HA and main address, protocol.md §8.1); read it with
//! [`RegistrationHandle::master`].
//!
//! A failed registration (name server down, timeout, refusal) is logged and retried at the
//! next round; a broken connection is replaced by a new one then. Nothing is persisted.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::select;
use futures_util::task::AtomicWaker;
use ringmq_protocol::body::{
    BodyError, CompressedBodyError, JsonBody, RegisterBrokerBody, TopicConfigSerializeWrapper,
};
use ringmq_protocol::codes::{request_code, response_code};
use ringmq_protocol::command::RemotingCommand;
use ringmq_protocol::ext::{CommandHeader, HeaderError};
use ringmq_protocol::headers::{
    RegisterBrokerRequestHeader, RegisterBrokerResponseHeader, UnregisterBrokerRequestHeader,
};
use ringmq_protocol::message::record::body_crc;

use crate::config::BrokerConfig;
use crate::remoting_client::{ClientError, RemotingClient};
use crate::reply::error_chain;

/// Gives the broker's current topic table. Called on the registration thread before every
/// registration, so it must be cheap enough to run every 30 s and after each topic change,
/// and must not block for long (a lock held briefly is fine). `Topics::snapshot` fits.
pub type TopicSnapshot = Arc<dyn Fn() -> TopicConfigSerializeWrapper + Send + Sync>;

/// Who the broker is and how it registers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrationConfig {
    /// `host:port` of each name server.
    pub name_servers: Vec<String>,
    pub cluster_name: String,
    pub broker_name: String,
    /// `ip:port` clients use to reach the broker.
    pub broker_addr: String,
    /// 0 for a master.
    pub broker_id: i64,
    /// `ip:port` of the broker's HA listener (handed to its slaves).
    pub ha_server_addr: String,
    /// Time between periodic registrations (RocketMQ: 30 s).
    pub period: Duration,
    /// Bound on connecting to one name server.
    pub connect_timeout: Duration,
    /// Bound on one request's response.
    pub request_timeout: Duration,
    /// `heartbeatTimeoutMillis`: silence after which the name server drops the broker.
    pub heartbeat_timeout_ms: i64,
    /// Send the zlib form of the body (large topic tables).
    pub compressed: bool,
}

impl RegistrationConfig {
    /// RocketMQ's timing (30 s period, 120 s timeout) and the JSON body.
    pub fn new(
        name_servers: Vec<String>,
        cluster_name: impl Into<String>,
        broker_name: impl Into<String>,
        broker_addr: impl Into<String>,
        broker_id: i64,
        ha_server_addr: impl Into<String>,
    ) -> Self {
        RegistrationConfig {
            name_servers,
            cluster_name: cluster_name.into(),
            broker_name: broker_name.into(),
            broker_addr: broker_addr.into(),
            broker_id,
            ha_server_addr: ha_server_addr.into(),
            period: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(3),
            request_timeout: Duration::from_secs(6),
            heartbeat_timeout_ms: 120_000,
            compressed: false,
        }
    }
}

impl RegistrationConfig {
    /// The registration of the broker configured by `config`, reachable at `broker_addr`
    /// (the bound address: the real port when the configuration said 0), with the name
    /// servers at `name_servers`. The HA address is `--ha-listen`, else the broker's port + 1
    /// (protocol.md §8.1). An unspecified IP (0.0.0.0, ::) is not an address a client can
    /// use, so it is registered as loopback.
    pub fn for_broker(
        config: &BrokerConfig,
        broker_addr: SocketAddr,
        name_servers: Vec<String>,
    ) -> Self {
        let broker_addr = reachable(broker_addr);
        let ha_addr = match config.ha_listen {
            Some(addr) => reachable(addr),
            None => SocketAddr::new(broker_addr.ip(), broker_addr.port().wrapping_add(1)),
        };
        RegistrationConfig::new(
            name_servers,
            config.cluster_name.clone(),
            config.broker_name.clone(),
            broker_addr.to_string(),
            config.broker_id,
            ha_addr.to_string(),
        )
    }
}

/// `addr` with an unspecified IP replaced by loopback of the same family.
pub fn reachable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), addr.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), addr.port())
        }
        _ => addr,
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RegistrationError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("cannot encode the RegisterBrokerBody")]
    Body(#[from] BodyError),
    #[error("cannot compress the RegisterBrokerBody")]
    Compress(#[from] CompressedBodyError),
    #[error("name server {addr} refused: code {code}, {remark}")]
    Refused {
        addr: String,
        code: i32,
        remark: String,
    },
    #[error("name server {addr} answered an unreadable header")]
    Header {
        addr: String,
        #[source]
        source: HeaderError,
    },
    #[error("cannot start the registration thread or runtime")]
    Start(#[source] std::io::Error),
    #[error("the registration thread panicked")]
    Panicked,
}

/// Asks for a registration round; the predicate it returns says when that round is done.
pub type TopicsChangedHook = Box<dyn Fn() -> Box<dyn Fn() -> bool + Send + Sync> + Send + Sync>;

/// State shared between the registration thread and its handles.
#[derive(Debug, Default)]
struct Shared {
    register_now: AtomicBool,
    /// Rounds asked for by [`RegistrationHandle::register_now`] / completed by the loop: a
    /// round that starts after request n covers it.
    requested_rounds: AtomicU64,
    completed_rounds: AtomicU64,
    stop: AtomicBool,
    waker: AtomicWaker,
    /// The last master addresses a name server answered (slaves only).
    master: Mutex<Option<RegisterBrokerResponseHeader>>,
}

impl Shared {
    fn wake(&self) {
        self.waker.wake();
    }
}

/// Asks the registration loop for things; cheap to clone, usable from any thread. One
/// handle drives at most one [`Registration`].
#[derive(Debug, Clone)]
pub struct RegistrationHandle {
    shared: Arc<Shared>,
}

impl Default for RegistrationHandle {
    fn default() -> Self {
        Self::new()
    }
}

impl RegistrationHandle {
    /// A handle for a registration not started yet ([`Registration::start`]); a
    /// [`register_now`](Self::register_now) before the start is folded into the first round.
    pub fn new() -> Self {
        RegistrationHandle {
            shared: Arc::new(Shared::default()),
        }
    }

    /// Registers with every name server as soon as possible (requests arriving meanwhile
    /// are folded into one round). Call after the topic table changed.
    /// Returns the request's number for [`RegistrationHandle::registered`].
    pub fn register_now(&self) -> u64 {
        let ticket = self.shared.requested_rounds.fetch_add(1, Ordering::SeqCst) + 1;
        self.shared.register_now.store(true, Ordering::SeqCst);
        self.shared.wake();
        ticket
    }

    /// Whether a registration round that started after request `ticket` has finished
    /// (successfully or not) with every name server.
    pub fn registered(&self, ticket: u64) -> bool {
        self.shared.completed_rounds.load(Ordering::SeqCst) >= ticket
    }

    /// The shape of a "topics changed" hook: asks for a round and returns a predicate that
    /// tells when that round is done.
    pub fn topics_changed_hook(&self) -> TopicsChangedHook {
        let handle = self.clone();
        Box::new(move || {
            let ticket = handle.register_now();
            let handle = handle.clone();
            Box::new(move || handle.registered(ticket))
        })
    }

    /// For a slave: the master's HA and main addresses from the last registration answer
    /// that had them (`None` before, and always for a master).
    pub fn master(&self) -> Option<RegisterBrokerResponseHeader> {
        match self.shared.master.lock() {
            Ok(master) => master.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

/// The running registration loop.
#[derive(Debug)]
pub struct Registration {
    shared: Arc<Shared>,
    thread: JoinHandle<Result<(), RegistrationError>>,
}

impl Registration {
    /// Starts the loop for `handle` (made beforehand with [`RegistrationHandle::new`], so
    /// that the topic table's "changed" hook can exist before the loop does) and returns
    /// after the first round: one registration attempt with every name server, each bounded
    /// by the connect and request timeouts. A broker announcing itself afterwards is
    /// therefore already known to its reachable name servers.
    pub fn start(
        config: RegistrationConfig,
        snapshot: TopicSnapshot,
        handle: &RegistrationHandle,
    ) -> Result<Registration, RegistrationError> {
        let shared = Arc::clone(&handle.shared);
        let (first_round_tx, first_round_rx) = mpsc::channel();
        let thread_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("registration".to_owned())
            .spawn(move || run(config, snapshot, thread_shared, first_round_tx))
            .map_err(RegistrationError::Start)?;
        if first_round_rx.recv().is_err() {
            // The thread ended before its first round: its result says why.
            return Err(match thread.join() {
                Ok(Err(error)) => error,
                Ok(Ok(())) | Err(_) => RegistrationError::Panicked,
            });
        }
        Ok(Registration { shared, thread })
    }

    /// Another handle on this registration.
    pub fn handle(&self) -> RegistrationHandle {
        RegistrationHandle {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Unregisters from every name server (bounded by the timeouts) and ends the thread.
    pub fn stop(self) -> Result<(), RegistrationError> {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.wake();
        self.thread
            .join()
            .map_err(|_| RegistrationError::Panicked)?
    }
}

fn run(
    config: RegistrationConfig,
    snapshot: TopicSnapshot,
    shared: Arc<Shared>,
    first_round: mpsc::Sender<()>,
) -> Result<(), RegistrationError> {
    let runtime = compio::runtime::RuntimeBuilder::new()
        .build()
        .map_err(RegistrationError::Start)?;
    runtime.block_on(registration_loop(config, snapshot, shared, first_round));
    Ok(())
}

async fn registration_loop(
    config: RegistrationConfig,
    snapshot: TopicSnapshot,
    shared: Arc<Shared>,
    first_round: mpsc::Sender<()>,
) {
    let mut clients: HashMap<String, RemotingClient> = HashMap::new();
    let mut first_round = Some(first_round);
    while !shared.stop.load(Ordering::SeqCst) {
        shared.register_now.store(false, Ordering::SeqCst);
        let covers = shared.requested_rounds.load(Ordering::SeqCst);
        let topics = snapshot();
        for addr in &config.name_servers {
            match register_with(&mut clients, addr, &config, topics.clone()).await {
                Ok(answer) => {
                    if answer.master_addr.is_some() || answer.ha_server_addr.is_some() {
                        match shared.master.lock() {
                            Ok(mut master) => *master = Some(answer),
                            Err(poisoned) => *poisoned.into_inner() = Some(answer),
                        }
                    }
                }
                Err(error) => {
                    tracing::warn!(name_server = %addr, error = %error_chain(&error), "registration failed")
                }
            }
        }
        shared.completed_rounds.fetch_max(covers, Ordering::SeqCst);
        if let Some(sender) = first_round.take() {
            // `start` waits for this; if it is gone, nobody needs it.
            let _ = sender.send(());
        }
        let sleep = std::pin::pin!(compio::time::sleep(config.period));
        let woken = Woken { shared: &shared };
        let _ = select(sleep, woken).await;
    }
    for addr in &config.name_servers {
        if let Err(error) = unregister_with(&mut clients, addr, &config).await {
            tracing::warn!(name_server = %addr, error = %error_chain(&error), "unregistration failed");
        }
    }
}

/// Resolves when a registration is asked for or the loop must stop.
struct Woken<'a> {
    shared: &'a Shared,
}

impl Future for Woken<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let ready = |shared: &Shared| {
            shared.register_now.load(Ordering::SeqCst) || shared.stop.load(Ordering::SeqCst)
        };
        if ready(self.shared) {
            return Poll::Ready(());
        }
        self.shared.waker.register(cx.waker());
        // Checked again after registering so a wake between the two checks is not lost.
        if ready(self.shared) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

/// The client for `addr`, connecting (again) if there is none or it is closed.
async fn client_for<'a>(
    clients: &'a mut HashMap<String, RemotingClient>,
    addr: &str,
    config: &RegistrationConfig,
) -> Result<&'a RemotingClient, ClientError> {
    if clients.get(addr).is_some_and(RemotingClient::is_closed) {
        clients.remove(addr);
    }
    if !clients.contains_key(addr) {
        let client = RemotingClient::connect(addr, config.connect_timeout).await?;
        clients.insert(addr.to_owned(), client);
    }
    clients.get(addr).ok_or_else(|| ClientError::Closed {
        addr: addr.to_owned(),
    })
}

async fn register_with(
    clients: &mut HashMap<String, RemotingClient>,
    addr: &str,
    config: &RegistrationConfig,
    topics: TopicConfigSerializeWrapper,
) -> Result<RegisterBrokerResponseHeader, RegistrationError> {
    let request = register_request(config, topics)?;
    let client = client_for(clients, addr, config).await?;
    let result = client.call(request, config.request_timeout).await;
    let response = match result {
        Ok(response) => response,
        Err(error) => {
            // A connection in an unknown state (e.g. a late answer may still come): start over.
            clients.remove(addr);
            return Err(error.into());
        }
    };
    if response.code != response_code::SUCCESS {
        return Err(RegistrationError::Refused {
            addr: addr.to_owned(),
            code: response.code,
            remark: response.remark.unwrap_or_default(),
        });
    }
    RegisterBrokerResponseHeader::from_ext(&response.ext_fields).map_err(|source| {
        RegistrationError::Header {
            addr: addr.to_owned(),
            source,
        }
    })
}

async fn unregister_with(
    clients: &mut HashMap<String, RemotingClient>,
    addr: &str,
    config: &RegistrationConfig,
) -> Result<(), RegistrationError> {
    let header = UnregisterBrokerRequestHeader {
        broker_name: config.broker_name.clone(),
        broker_addr: config.broker_addr.clone(),
        cluster_name: config.cluster_name.clone(),
        broker_id: config.broker_id,
    };
    let request = RemotingCommand::request(request_code::UNREGISTER_BROKER, header.to_ext());
    let client = client_for(clients, addr, config).await?;
    let response = client.call(request, config.request_timeout).await?;
    if response.code != response_code::SUCCESS {
        return Err(RegistrationError::Refused {
            addr: addr.to_owned(),
            code: response.code,
            remark: response.remark.unwrap_or_default(),
        });
    }
    Ok(())
}

/// The REGISTER_BROKER request for `topics`, with the body's CRC in the header.
pub fn register_request(
    config: &RegistrationConfig,
    topics: TopicConfigSerializeWrapper,
) -> Result<RemotingCommand, RegistrationError> {
    let body = RegisterBrokerBody {
        topic_config_serialize_wrapper: topics,
        filter_server_list: Vec::new(),
    };
    let bytes = if config.compressed {
        body.encode_compressed()?
    } else {
        body.encode()?
    };
    let header = RegisterBrokerRequestHeader {
        broker_name: config.broker_name.clone(),
        broker_addr: config.broker_addr.clone(),
        cluster_name: config.cluster_name.clone(),
        ha_server_addr: config.ha_server_addr.clone(),
        broker_id: config.broker_id,
        heartbeat_timeout_millis: Some(config.heartbeat_timeout_ms),
        enable_acting_master: Some(false),
        compressed: config.compressed,
        body_crc32: body_crc(&bytes),
    };
    Ok(
        RemotingCommand::request(request_code::REGISTER_BROKER, header.to_ext())
            .with_body(Bytes::from(bytes)),
    )
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::time::Instant;

    use ringmq_protocol::body::{TopicConfig, TopicRouteData};
    use ringmq_protocol::command::ExtFields;

    use super::*;
    use crate::namesrv::{self, NamesrvConfig};

    fn config_for(namesrv: SocketAddr, broker_addr: &str, id: i64) -> RegistrationConfig {
        let mut config = RegistrationConfig::new(
            vec![namesrv.to_string()],
            "DefaultCluster",
            "broker-t",
            broker_addr,
            id,
            format!("{broker_addr}-ha"),
        );
        config.period = Duration::from_millis(100);
        config
    }

    fn topics(names: &[&str]) -> TopicConfigSerializeWrapper {
        let mut wrapper = TopicConfigSerializeWrapper::default();
        for name in names {
            wrapper
                .topic_config_table
                .insert((*name).to_owned(), TopicConfig::new(*name));
        }
        wrapper
    }

    fn route(namesrv: SocketAddr, topic: &str) -> RemotingCommand {
        compio::runtime::Runtime::new().unwrap().block_on(async {
            let client = RemotingClient::connect(&namesrv.to_string(), Duration::from_secs(5))
                .await
                .unwrap();
            let mut ext = ExtFields::new();
            ext.insert("topic".to_owned(), topic.to_owned());
            client
                .call(
                    RemotingCommand::request(request_code::GET_ROUTEINFO_BY_TOPIC, ext),
                    Duration::from_secs(5),
                )
                .await
                .unwrap()
        })
    }

    fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !condition() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn the_first_round_is_done_when_start_returns_and_stop_unregisters() {
        let server = namesrv::start(NamesrvConfig::new("127.0.0.1:0".parse().unwrap())).unwrap();
        let addr = server.local_addr();
        let registration = Registration::start(
            config_for(addr, "127.0.0.1:1", 0),
            Arc::new(|| topics(&["T"])),
            &RegistrationHandle::new(),
        )
        .unwrap();
        let response = route(addr, "T");
        assert_eq!(response.code, response_code::SUCCESS);
        let route_data = TopicRouteData::decode(&response.body).unwrap();
        assert_eq!(
            route_data.broker_datas[0].master_addr(),
            Some("127.0.0.1:1")
        );
        registration.stop().unwrap();
        assert_eq!(route(addr, "T").code, response_code::TOPIC_NOT_EXIST);
        server.stop().unwrap();
    }

    #[test]
    fn register_now_sends_the_new_topic_table_before_the_period() {
        let server = namesrv::start(NamesrvConfig::new("127.0.0.1:0".parse().unwrap())).unwrap();
        let addr = server.local_addr();
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&calls);
        let mut config = config_for(addr, "127.0.0.1:1", 0);
        config.period = Duration::from_secs(3600);
        let handle = RegistrationHandle::new();
        let registration = Registration::start(
            config,
            Arc::new(move || {
                if counted.fetch_add(1, Ordering::SeqCst) == 0 {
                    topics(&["T"])
                } else {
                    topics(&["T", "NEW"])
                }
            }),
            &handle,
        )
        .unwrap();
        assert_eq!(route(addr, "NEW").code, response_code::TOPIC_NOT_EXIST);
        handle.register_now();
        wait_for("NEW to be routed", || {
            route(addr, "NEW").code == response_code::SUCCESS
        });
        registration.stop().unwrap();
        server.stop().unwrap();
    }

    #[test]
    fn a_slave_learns_its_master_from_the_answer() {
        let server = namesrv::start(NamesrvConfig::new("127.0.0.1:0".parse().unwrap())).unwrap();
        let addr = server.local_addr();
        let master = Registration::start(
            config_for(addr, "127.0.0.1:1", 0),
            Arc::new(|| topics(&["T"])),
            &RegistrationHandle::new(),
        )
        .unwrap();
        let mut slave_config = config_for(addr, "127.0.0.1:2", 1);
        slave_config.compressed = true;
        let handle = RegistrationHandle::new();
        let slave =
            Registration::start(slave_config, Arc::new(|| topics(&["T"])), &handle).unwrap();
        let answer = handle.master().unwrap();
        assert_eq!(answer.master_addr.as_deref(), Some("127.0.0.1:1"));
        assert_eq!(answer.ha_server_addr.as_deref(), Some("127.0.0.1:1-ha"));
        slave.stop().unwrap();
        master.stop().unwrap();
        server.stop().unwrap();
    }

    #[test]
    fn registration_resumes_after_the_name_server_restarts() {
        let server = namesrv::start(NamesrvConfig::new("127.0.0.1:0".parse().unwrap())).unwrap();
        let addr = server.local_addr();
        let registration = Registration::start(
            config_for(addr, "127.0.0.1:1", 0),
            Arc::new(|| topics(&["T"])),
            &RegistrationHandle::new(),
        )
        .unwrap();
        server.stop().unwrap();
        // The old listener's port is released when io_uring finishes tearing down its
        // cancelled accept, which the kernel does asynchronously: retry the bind briefly.
        let deadline = Instant::now() + Duration::from_secs(10);
        let server = loop {
            match namesrv::start(NamesrvConfig::new(addr)) {
                Ok(server) => break server,
                Err(error) => assert!(Instant::now() < deadline, "{error}"),
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        wait_for(
            "the periodic registration to reach the new name server",
            || route(addr, "T").code == response_code::SUCCESS,
        );
        registration.stop().unwrap();
        server.stop().unwrap();
    }

    #[test]
    fn an_unreachable_name_server_does_not_block_start_past_the_timeouts() {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let begun = Instant::now();
        let handle = RegistrationHandle::new();
        let registration = Registration::start(
            config_for(
                format!("127.0.0.1:{port}").parse().unwrap(),
                "127.0.0.1:1",
                0,
            ),
            Arc::new(|| topics(&[])),
            &handle,
        )
        .unwrap();
        assert!(begun.elapsed() < Duration::from_secs(10));
        assert!(handle.master().is_none());
        registration.stop().unwrap();
    }

    #[test]
    fn a_broker_registers_its_bound_address_and_port_plus_one_for_ha() {
        let config = BrokerConfig::default();
        let registration = RegistrationConfig::for_broker(
            &config,
            "0.0.0.0:20911".parse().unwrap(),
            vec!["127.0.0.1:9876".to_owned()],
        );
        assert_eq!(registration.broker_addr, "127.0.0.1:20911");
        assert_eq!(registration.ha_server_addr, "127.0.0.1:20912");
        assert_eq!(registration.broker_id, 0);
        assert_eq!(registration.cluster_name, "DefaultCluster");
        assert_eq!(registration.period, Duration::from_secs(30));
    }
}

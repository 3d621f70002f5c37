//! The machinery every client type shares: its identity (`clientID`), the connection pool,
//! the name-server client and route cache, the UNIQ_KEY generator, and the two timers every
//! RocketMQ client runs: route refresh (30 s) and heartbeat (30 s) (protocol.md §7.3).
//!
//! Each producer or consumer owns one [`ClientCore`]. Timers hold only a weak reference, so a
//! dropped client stops its timers at their next tick; [`ClientCore::shutdown`] stops them at
//! once and closes the connections.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ringmq_protocol::body::{ConsumerData, HeartbeatData, JsonBody, ProducerData};
use ringmq_protocol::codes::request_code;
use ringmq_protocol::command::{ExtFields, RemotingCommand};
use ringmq_protocol::ext::CommandHeader;
use ringmq_protocol::headers::UnregisterClientRequestHeader;
use ringmq_protocol::message::UniqKeyGenerator;
use tokio::task::JoinHandle;

use crate::remoting::{RemotingClient, RemotingConfig};
use crate::route::{NameServerClient, RouteCache};

/// Internal producer group every Java client instance lists in its heartbeats.
pub const CLIENT_INNER_PRODUCER_GROUP: &str = "CLIENT_INNER_PRODUCER";

/// Settings shared by every client type.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Name-server addresses, `host:port` each.
    pub namesrv_addrs: Vec<String>,
    /// `DEFAULT` (replaced by `<pid>#<nanos>` to make the client id unique, as Java does in
    /// clustering mode) or a fixed instance name.
    pub instance_name: String,
    /// The IP in the client id and in UNIQ_KEYs; discovered from the route to the first name
    /// server when `None`.
    pub client_ip: Option<IpAddr>,
    /// Timeout of admin, offset and heartbeat RPCs (`mqClientApiTimeout`, 3 s).
    pub rpc_timeout: Duration,
    /// Route refresh period (`pollNameServerInterval`, 30 s).
    pub route_refresh_interval: Duration,
    /// Heartbeat period (`heartbeatBrokerInterval`, 30 s).
    pub heartbeat_interval: Duration,
    /// Remoting settings (connect timeout, frame limits, header serialization).
    pub remoting: RemotingConfig,
}

impl ClientConfig {
    /// Defaults with the given name-server list (`"a:9876;b:9876"` or `"a:9876,b:9876"`).
    pub fn new(namesrv: &str) -> Self {
        ClientConfig {
            namesrv_addrs: namesrv
                .split([';', ','])
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            instance_name: "DEFAULT".to_owned(),
            client_ip: None,
            rpc_timeout: Duration::from_secs(3),
            route_refresh_interval: Duration::from_secs(30),
            heartbeat_interval: Duration::from_secs(30),
            remoting: RemotingConfig::default(),
        }
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The local IP used to reach the first resolvable name server (a UDP `connect` only picks a
/// route; no packet is sent), or 127.0.0.1.
pub fn discover_local_ip(namesrv_addrs: &[String]) -> IpAddr {
    for addr in namesrv_addrs {
        let Ok(mut resolved) = addr.to_socket_addrs() else {
            continue;
        };
        let Some(target) = resolved.next() else {
            continue;
        };
        let bind: SocketAddr = match target {
            SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
            SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        let Ok(socket) = UdpSocket::bind(bind) else {
            continue;
        };
        if socket.connect(target).is_ok() {
            if let Ok(local) = socket.local_addr() {
                return local.ip();
            }
        }
    }
    IpAddr::V4(Ipv4Addr::LOCALHOST)
}

static INSTANCE_COUNTER: AtomicU64 = AtomicU64::new(0);

fn client_id(ip: IpAddr, instance_name: &str) -> String {
    if instance_name == "DEFAULT" {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let n = INSTANCE_COUNTER.fetch_add(1, Ordering::Relaxed);
        format!("{ip}@{}#{}{n}", std::process::id(), nanos)
    } else {
        format!("{ip}@{instance_name}")
    }
}

type ConsumerDataFn = Arc<dyn Fn() -> Vec<ConsumerData> + Send + Sync>;

/// Identity, connections, routes and timers of one client.
pub struct ClientCore {
    /// Settings.
    pub config: ClientConfig,
    /// `clientIP@instance`.
    pub client_id: String,
    /// The IP in the client id.
    pub client_ip: IpAddr,
    /// The connection pool.
    pub remoting: Arc<RemotingClient>,
    /// Routes from the name servers.
    pub routes: Arc<RouteCache>,
    /// UNIQ_KEY generator.
    pub uniq: UniqKeyGenerator,
    producer_groups: Mutex<Vec<String>>,
    consumer_data: Mutex<Option<ConsumerDataFn>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl std::fmt::Debug for ClientCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCore")
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

impl ClientCore {
    /// A core for `config`; no connection is opened yet.
    pub fn new(config: ClientConfig) -> Arc<Self> {
        let client_ip = config
            .client_ip
            .unwrap_or_else(|| discover_local_ip(&config.namesrv_addrs));
        let remoting = Arc::new(RemotingClient::new(config.remoting.clone()));
        let namesrv = Arc::new(NameServerClient::new(
            config.namesrv_addrs.clone(),
            Arc::clone(&remoting),
            config.rpc_timeout,
        ));
        Arc::new(ClientCore {
            client_id: client_id(client_ip, &config.instance_name),
            client_ip,
            routes: Arc::new(RouteCache::new(namesrv)),
            uniq: UniqKeyGenerator::new(client_ip),
            remoting,
            config,
            producer_groups: Mutex::new(Vec::new()),
            consumer_data: Mutex::new(None),
            tasks: Mutex::new(Vec::new()),
        })
    }

    /// Lists `group` in this client's heartbeats.
    pub fn register_producer_group(&self, group: &str) {
        if let Ok(mut groups) = self.producer_groups.lock() {
            if !groups.iter().any(|g| g == group) {
                groups.push(group.to_owned());
            }
        }
    }

    /// Installs the function that describes this client's consumer groups in heartbeats.
    pub fn set_consumer_data(&self, f: ConsumerDataFn) {
        if let Ok(mut slot) = self.consumer_data.lock() {
            *slot = Some(f);
        }
    }

    /// The heartbeat body as of now.
    pub fn heartbeat_data(&self) -> HeartbeatData {
        let mut producer_data_set = vec![ProducerData {
            group_name: CLIENT_INNER_PRODUCER_GROUP.to_owned(),
        }];
        if let Ok(groups) = self.producer_groups.lock() {
            producer_data_set.extend(
                groups
                    .iter()
                    .filter(|g| *g != CLIENT_INNER_PRODUCER_GROUP)
                    .map(|g| ProducerData {
                        group_name: g.clone(),
                    }),
            );
        }
        let consumer_data_set = self
            .consumer_data
            .lock()
            .ok()
            .and_then(|f| f.clone())
            .map(|f| f())
            .unwrap_or_default();
        HeartbeatData {
            client_id: self.client_id.clone(),
            producer_data_set,
            consumer_data_set,
            heartbeat_fingerprint: None,
            without_sub: None,
        }
    }

    fn has_consumers(&self) -> bool {
        self.consumer_data
            .lock()
            .map(|slot| slot.is_some())
            .unwrap_or(false)
    }

    /// Sends a heartbeat to every broker of every cached route (masters only for a client
    /// without consumers, as Java does). Returns how many brokers accepted it.
    pub async fn heartbeat_all(&self) -> usize {
        let data = self.heartbeat_data();
        let body = match data.encode() {
            Ok(body) => body,
            Err(e) => {
                tracing::warn!(error = %e, "cannot encode heartbeat");
                return 0;
            }
        };
        let addrs = self.routes.all_broker_addrs(!self.has_consumers());
        let mut ok = 0;
        for addr in addrs {
            let request = RemotingCommand::request(request_code::HEART_BEAT, ExtFields::new())
                .with_body(body.clone());
            match self
                .remoting
                .invoke_ok(&addr, request, self.config.rpc_timeout)
                .await
            {
                Ok(_) => ok += 1,
                Err(e) => tracing::debug!(%addr, error = %e, "heartbeat failed"),
            }
        }
        ok
    }

    /// UNREGISTER_CLIENT to every broker, for the given groups.
    pub async fn unregister(&self, producer_group: Option<&str>, consumer_group: Option<&str>) {
        let header = UnregisterClientRequestHeader {
            client_id: self.client_id.clone(),
            producer_group: producer_group.map(str::to_owned),
            consumer_group: consumer_group.map(str::to_owned),
        };
        for addr in self.routes.all_broker_addrs(consumer_group.is_none()) {
            let request =
                RemotingCommand::request(request_code::UNREGISTER_CLIENT, header.to_ext());
            if let Err(e) = self
                .remoting
                .invoke_ok(&addr, request, self.config.rpc_timeout)
                .await
            {
                tracing::debug!(%addr, error = %e, "unregister failed");
            }
        }
    }

    /// Keeps `task` to be aborted at shutdown.
    pub fn add_task(&self, task: JoinHandle<()>) {
        if let Ok(mut tasks) = self.tasks.lock() {
            tasks.push(task);
        }
    }

    /// Starts the route-refresh and heartbeat timers.
    pub fn start_timers(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        let every = self.config.route_refresh_interval;
        self.add_task(tokio::spawn(periodic(weak, every, |core| async move {
            core.routes.refresh_all().await;
        })));
        let weak = Arc::downgrade(self);
        let every = self.config.heartbeat_interval;
        self.add_task(tokio::spawn(periodic(weak, every, |core| async move {
            core.heartbeat_all().await;
        })));
    }

    /// Stops the timers and closes every connection.
    pub async fn shutdown(&self) {
        let tasks: Vec<_> = match self.tasks.lock() {
            Ok(mut tasks) => tasks.drain(..).collect(),
            Err(_) => Vec::new(),
        };
        for task in tasks {
            task.abort();
        }
        self.remoting.shutdown().await;
    }
}

/// Runs `f` every `every` while the core is alive.
pub async fn periodic<F, Fut>(core: Weak<ClientCore>, every: Duration, f: F)
where
    F: Fn(Arc<ClientCore>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let Some(core) = core.upgrade() else {
            return;
        };
        f(core).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn core() -> Arc<ClientCore> {
        let mut config = ClientConfig::new("127.0.0.1:9876; 127.0.0.2:9876");
        config.client_ip = Some(IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3)));
        ClientCore::new(config)
    }

    #[test]
    fn namesrv_list_accepts_semicolons_and_commas() {
        let config = ClientConfig::new("a:1; b:2,c:3,");
        assert_eq!(config.namesrv_addrs, vec!["a:1", "b:2", "c:3"]);
    }

    #[test]
    fn default_instance_client_ids_are_ip_at_pid_hash_and_unique() {
        let (a, b) = (core(), core());
        let prefix = format!("10.1.2.3@{}#", std::process::id());
        assert!(a.client_id.starts_with(&prefix), "{}", a.client_id);
        assert_ne!(a.client_id, b.client_id);
    }

    #[test]
    fn a_named_instance_has_a_stable_client_id() {
        let mut config = ClientConfig::new("127.0.0.1:9876");
        config.client_ip = Some(IpAddr::V4(Ipv4Addr::LOCALHOST));
        config.instance_name = "m1".into();
        assert_eq!(ClientCore::new(config).client_id, "127.0.0.1@m1");
    }

    #[test]
    fn heartbeat_lists_the_inner_producer_group_once_then_the_registered_groups() {
        let c = core();
        c.register_producer_group("pg");
        c.register_producer_group(CLIENT_INNER_PRODUCER_GROUP);
        c.register_producer_group("pg");
        let groups: Vec<String> = c
            .heartbeat_data()
            .producer_data_set
            .into_iter()
            .map(|p| p.group_name)
            .collect();
        assert_eq!(
            groups,
            vec![CLIENT_INNER_PRODUCER_GROUP.to_owned(), "pg".to_owned()]
        );
        assert!(c.heartbeat_data().consumer_data_set.is_empty());
    }
}

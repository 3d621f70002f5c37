//! The broker's configuration: one typed struct, defaults in one place
//! ([`BrokerConfig::default`]), filled from RocketMQ's `broker.conf` (`--config`) and then
//! from command-line flags, which win (design.md §10). Printed at start-up.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use ringmq_engine::disk_guard::DEFAULT_MAX_USED_RATIO;
use ringmq_engine::retention::{DeleteWhen, RetentionConfig};

use crate::broker_conf::{self, ConfEntry};

/// When an append is acknowledged (protocol.md §8.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FlushMode {
    /// Answer once the bytes are in the page cache; a background flush bounds the loss window.
    Async,
    /// Answer only after an fdatasync covering the message (group commit).
    Sync,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Role {
    Master,
    Slave,
}

/// Whether a master waits for its slave before answering a send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReplicationMode {
    Async,
    Sync,
}

/// Where the broker finds its name server(s).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameServer {
    /// Run one inside this process, listening on this address.
    Embedded(SocketAddr),
    /// Register with these external name servers.
    External(Vec<String>),
}

/// ringmq broker: RocketMQ-compatible, thread-per-core on io_uring.
///
/// Starts a broker with an embedded name server and a local store. Flags override the
/// values of a RocketMQ broker.conf given with --config.
#[derive(Debug, Parser)]
// A flag given twice takes its last value (scripts and the test kit append overrides).
#[command(name = "ringmq-server", version, about, long_about = None, args_override_self = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub broker: BrokerArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run only a name server.
    Namesrv {
        /// Address to listen on (port 0 picks a free port).
        #[arg(long, default_value = "127.0.0.1:9876")]
        listen: SocketAddr,
    },
}

/// Broker flags. Every one is optional so that broker.conf values apply where a flag is absent.
#[derive(Debug, Default, clap::Args)]
pub struct BrokerArgs {
    /// RocketMQ broker.conf (key=value: brokerName, brokerId, listenPort, namesrvAddr,
    /// storePathRootDir, flushDiskType, autoCreateTopicEnable, brokerRole, ...).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Broker address [default: 127.0.0.1:10911]. Port 0 picks a free port.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Run an embedded name server on this address [default: 127.0.0.1:9876].
    #[arg(long, value_name = "ADDR", conflicts_with = "namesrv")]
    pub namesrv_listen: Option<SocketAddr>,
    /// Register with external name server(s) instead of embedding one: "host:port;host:port".
    #[arg(long, value_name = "ADDR[;ADDR]")]
    pub namesrv: Option<String>,
    /// Store root directory [default: ./store].
    #[arg(long, value_name = "DIR")]
    pub store: Option<PathBuf>,
    /// Number of shards (pinned threads, one io_uring each) [default: online cores].
    #[arg(long, value_name = "N")]
    pub shards: Option<usize>,
    /// async: acknowledge once written to the page cache; sync: after fdatasync (group commit)
    /// [default: async].
    #[arg(long, value_enum)]
    pub flush: Option<FlushMode>,
    /// master or slave [default: master]. A slave (with --broker-id N ≥ 1 and --master)
    /// copies its master's logs shard by shard, serves pulls and refuses sends.
    #[arg(long, value_enum)]
    pub role: Option<Role>,
    /// A slave's master: the master broker's address (host:port). The slave connects to the
    /// master's HA port, which the name server names (or, until it answers, that port + 1).
    #[arg(long, value_name = "HOST:PORT")]
    pub master: Option<String>,
    /// Broker name shared by a master and its slaves [default: host name].
    #[arg(long, value_name = "NAME")]
    pub broker_name: Option<String>,
    /// 0 for a master, > 0 for a slave [default: 0].
    #[arg(long, value_name = "N")]
    pub broker_id: Option<i64>,
    /// async (ASYNC_MASTER): answer sends without waiting for the slave; sync (SYNC_MASTER):
    /// answer SEND_OK only once a slave has acknowledged the message's bytes, else
    /// SLAVE_NOT_AVAILABLE (no slave) or FLUSH_SLAVE_TIMEOUT (no ack in time) [default: async].
    #[arg(long, value_enum)]
    pub replication: Option<ReplicationMode>,
    /// With --replication sync, how long a send waits for a slave's ack before it is answered
    /// FLUSH_SLAVE_TIMEOUT (broker.conf syncFlushTimeout) [default: 5000].
    #[arg(long, value_name = "MS")]
    pub sync_replication_timeout_ms: Option<u64>,
    /// A master's HA listen address, where its slaves connect [default: the listen port + 1;
    /// a free port when the listen port is 0].
    #[arg(long, value_name = "ADDR")]
    pub ha_listen: Option<SocketAddr>,
    /// Metrics (Prometheus text) listen address [default: off]. Not supported yet: refused at
    /// start.
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,
    /// Serve pulls from slaves (slaveReadEnable): a master tells a consumer whose read is
    /// cold to pull from a slave that has the data; a slave sends consumers back once their
    /// reads are hot. Off: every consumer reads from the master, and a slave answers pulls
    /// with "retry at the master" [default: true]. Changeable at runtime (UPDATE_BROKER_CONFIG).
    #[arg(long, value_name = "true|false")]
    pub slave_read_enable: Option<bool>,
    /// The page-cache rule (accessMessageInMemoryMaxRatio): a consumer's unread backlog
    /// larger than this percentage of RAM counts as cold (0: every non-empty backlog)
    /// [default: 40]. Changeable at runtime.
    #[arg(long, value_name = "PERCENT")]
    pub access_message_in_memory_max_ratio: Option<u64>,
    /// The slave a master prefers for cold reads (whichBrokerWhenConsumeSlowly), when it is
    /// connected and has the data; otherwise another such slave [default: 1]. Changeable at
    /// runtime.
    #[arg(long, value_name = "BROKER_ID")]
    pub which_broker_when_consume_slowly: Option<i64>,
    /// Create unknown topics on first send from TBW102 [default: true].
    #[arg(long, value_name = "true|false")]
    pub auto_create_topics: Option<bool>,
    /// Retention's cleanup trigger (broker.conf diskMaxUsedSpaceRatio): while the store's
    /// filesystem is fuller than this percentage, CommitLog segments older than
    /// --file-reserved-time are deleted at any hour, not only at --delete-when [default: 75].
    /// It does not refuse sends: that is --disk-warning-percent.
    #[arg(long, value_name = "PERCENT")]
    pub disk_max_used_percent: Option<f64>,
    /// Forced retention (diskSpaceCleanForciblyRatio): while the filesystem is fuller than
    /// this percentage, the oldest CommitLog segments are deleted whatever their age (never
    /// the one being written), as many as it takes to get below it [default: 85].
    #[arg(long, value_name = "PERCENT")]
    pub disk_clean_forcibly_percent: Option<f64>,
    /// Refuse sends while the store's filesystem is fuller than this percentage
    /// (diskSpaceWarningLevelRatio); they resume by themselves once space is freed
    /// [default: 90].
    #[arg(long, value_name = "PERCENT")]
    pub disk_warning_percent: Option<f64>,
    /// Keep CommitLog segments at least this many hours after their last write
    /// (fileReservedTime); older ones are deleted at --delete-when hours, or at once above
    /// --disk-max-used-percent [default: 72].
    #[arg(long, value_name = "HOURS", conflicts_with = "file_reserved_time_secs")]
    pub file_reserved_time: Option<u64>,
    /// --file-reserved-time in seconds, for tests and demonstrations of retention (no
    /// broker.conf key).
    #[arg(long, value_name = "SECONDS")]
    pub file_reserved_time_secs: Option<u64>,
    /// Local hours when expired CommitLog segments are deleted (deleteWhen): "04", or
    /// several as "01;02;03" [default: 04].
    #[arg(long, value_name = "HH[;HH]")]
    pub delete_when: Option<String>,
    /// How often retention checks the disk and the segments' ages (cleanResourceInterval)
    /// [default: 10000].
    #[arg(long, value_name = "MS")]
    pub clean_resource_interval_ms: Option<u64>,
    /// Delay levels (messageDelayLevel): level n of a message's DELAY property is the n-th
    /// duration; units ms, s, m, h, d
    /// [default: "1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h"].
    #[arg(long, value_name = "LIST")]
    pub message_delay_level: Option<String>,
    /// Timed messages (TIMER_DELIVER_MS, TIMER_DELAY_SEC, TIMER_DELAY_MS) due further away
    /// than this are refused (timerMaxDelaySec) [default: 259200, 3 days].
    #[arg(long, value_name = "SECONDS")]
    pub timer_max_delay_secs: Option<u64>,
    /// Size of each CommitLog segment file in bytes [default: 1073741824 (1 GiB)].
    /// Small values are for tests.
    #[arg(long, value_name = "BYTES")]
    pub segment_size: Option<u64>,
    /// Bytes of pull answers the broker holds at once, read but not yet written to their
    /// sockets; a pull waits for room before it reads [default: a quarter of RAM].
    #[arg(long, value_name = "BYTES")]
    pub max_memory: Option<usize>,
    /// Most client connections the broker keeps open; above it a new connection is closed at
    /// once (logged at most every 10 s) [default: the process's open-file limit minus 256,
    /// so the embedded name server and the store always have descriptors left].
    #[arg(long, value_name = "N")]
    pub max_connections: Option<usize>,
    /// Close a connection with no read or write for this long; 0 never [default: 120, as
    /// RocketMQ's serverChannelMaxIdleTimeSeconds].
    #[arg(long, value_name = "SECONDS")]
    pub idle_timeout_secs: Option<u64>,
    /// Each shard listens on its own port and registers as its own broker
    /// `<broker-name>-<shard>` with its own queues of every topic, so clients send each
    /// request straight to the core that owns its queue (no cross-shard hop; see
    /// docs/decisions.md). Off: one port and one broker per process, requests hop.
    #[arg(long)]
    pub shard_addressed: bool,
    /// With --shard-addressed, shard s listens on the --listen port + s × STEP (port 0: each
    /// shard picks a free port) [default: 10].
    #[arg(long, value_name = "STEP")]
    pub shard_port_step: Option<u16>,
}

/// The effective broker configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct BrokerConfig {
    pub listen: SocketAddr,
    pub name_server: NameServer,
    pub store_dir: PathBuf,
    pub shards: usize,
    pub flush: FlushMode,
    pub role: Role,
    pub master: Option<String>,
    /// A slave's master HA address as broker.conf's `haMasterAddress` gives it (used as is,
    /// not derived from `master`).
    pub ha_master_address: Option<String>,
    pub cluster_name: String,
    pub broker_name: String,
    pub broker_id: i64,
    pub replication: ReplicationMode,
    /// SYNC_MASTER: longest a send waits for a slave's ack (syncFlushTimeout).
    pub sync_replication_timeout: Duration,
    /// None: listen port + 1, resolved once the main port is known.
    pub ha_listen: Option<SocketAddr>,
    pub metrics_listen: Option<SocketAddr>,
    pub auto_create_topics: bool,
    /// slaveReadEnable: pulls may be redirected to slaves (design.md §8).
    pub slave_read_enable: bool,
    /// accessMessageInMemoryMaxRatio: the page-cache rule's percentage of RAM.
    pub access_message_in_memory_max_ratio: u64,
    /// whichBrokerWhenConsumeSlowly: the slave preferred for cold reads.
    pub which_broker_when_consume_slowly: i64,
    /// Queues of topics auto-created from TBW102 are capped at this (TBW102's write queues).
    pub default_topic_queue_nums: i32,
    pub max_message_size_bytes: usize,
    pub commitlog_segment_size_bytes: u64,
    pub flush_interval: Duration,
    /// Longest a pull is held for long polling, whatever the client asks.
    pub max_hold: Duration,
    /// Appends are refused above this fraction of the store's disk in use
    /// (diskSpaceWarningLevelRatio).
    pub disk_warning_ratio: f64,
    /// CommitLog retention: fileReservedTime, deleteWhen, diskMaxUsedSpaceRatio (cleanup
    /// trigger), diskSpaceCleanForciblyRatio, cleanResourceInterval.
    pub retention: RetentionConfig,
    /// Bytes of pull answers held at once (read, not yet written): the memory budget.
    pub max_memory_bytes: usize,
    /// Most client connections open at once (all shards together).
    pub max_connections: usize,
    /// A connection idle this long is closed (zero: never).
    pub idle_timeout: Duration,
    /// One port and one broker name per shard (`--shard-addressed`).
    pub shard_addressed: bool,
    /// Port distance between consecutive shards' listeners when shard-addressed.
    pub shard_port_step: u16,
    /// Delay levels and the timed messages' maximum (messageDelayLevel, timerMaxDelaySec).
    pub schedule: crate::schedule::ScheduleConfig,
    /// Config keys read from broker.conf that ringmq does not use (reported at start).
    pub ignored_conf_keys: Vec<String>,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 10911)),
            name_server: NameServer::Embedded(SocketAddr::from(([127, 0, 0, 1], 9876))),
            store_dir: PathBuf::from("store"),
            shards: online_cores(),
            flush: FlushMode::Async,
            role: Role::Master,
            master: None,
            ha_master_address: None,
            cluster_name: "DefaultCluster".to_owned(),
            broker_name: host_name(),
            broker_id: 0,
            replication: ReplicationMode::Async,
            sync_replication_timeout: Duration::from_secs(5),
            ha_listen: None,
            metrics_listen: None,
            auto_create_topics: true,
            slave_read_enable: true,
            access_message_in_memory_max_ratio: ringmq_engine::page_cache::DEFAULT_RATIO_PERCENT,
            which_broker_when_consume_slowly: 1,
            default_topic_queue_nums: 8,
            max_message_size_bytes: 4 * 1024 * 1024,
            commitlog_segment_size_bytes: 1 << 30,
            flush_interval: Duration::from_millis(500),
            max_hold: Duration::from_secs(15),
            disk_warning_ratio: DEFAULT_MAX_USED_RATIO,
            retention: RetentionConfig::default(),
            schedule: crate::schedule::ScheduleConfig::default(),
            ignored_conf_keys: Vec::new(),
            shard_addressed: false,
            shard_port_step: 10,
            max_connections: default_max_connections(),
            max_memory_bytes: crate::memory::default_budget_bytes(),
            idle_timeout: Duration::from_secs(120),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(transparent)]
    File(#[from] broker_conf::BrokerConfError),
    #[error("{file}:{line}: {key}={value}: {reason}")]
    BadValue {
        file: String,
        line: usize,
        key: String,
        value: String,
        reason: String,
    },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl BrokerConfig {
    /// Defaults, then broker.conf, then flags.
    pub fn from_args(args: &BrokerArgs) -> Result<Self, ConfigError> {
        let mut config = BrokerConfig::default();
        if let Some(path) = &args.config {
            let entries = broker_conf::read(path)?;
            config.apply_conf(path, &entries)?;
        }
        config.apply_flags(args)?;
        if args.shard_port_step.is_some() && !config.shard_addressed {
            // It places the shards' ports only in the shard-addressed layout.
            return Err(ConfigError::Invalid(
                "--shard-port-step applies only with --shard-addressed".to_owned(),
            ));
        }
        config.validate()?;
        Ok(config)
    }

    fn apply_conf(&mut self, path: &Path, entries: &[ConfEntry]) -> Result<(), ConfigError> {
        let mut listen_ip = None;
        let mut listen_port = None;
        for entry in entries {
            let bad = |reason: &str| ConfigError::BadValue {
                file: path.display().to_string(),
                line: entry.line,
                key: entry.key.clone(),
                value: entry.value.clone(),
                reason: reason.to_owned(),
            };
            let value = entry.value.as_str();
            match entry.key.as_str() {
                "brokerClusterName" => self.cluster_name = value.to_owned(),
                "brokerName" => self.broker_name = value.to_owned(),
                "brokerId" => self.broker_id = value.parse().map_err(|_| bad("not an integer"))?,
                "listenPort" => {
                    listen_port = Some(value.parse::<u16>().map_err(|_| bad("not a port"))?)
                }
                "brokerIP1" if !value.is_empty() => {
                    listen_ip = Some(
                        value
                            .parse::<std::net::IpAddr>()
                            .map_err(|_| bad("not an IP address"))?,
                    )
                }
                "namesrvAddr" => {
                    self.name_server = NameServer::External(split_namesrv_list(value));
                }
                "storePathRootDir" => self.store_dir = PathBuf::from(value),
                "flushDiskType" => {
                    self.flush = match value {
                        "ASYNC_FLUSH" => FlushMode::Async,
                        "SYNC_FLUSH" => FlushMode::Sync,
                        _ => return Err(bad("expected ASYNC_FLUSH or SYNC_FLUSH")),
                    }
                }
                "brokerRole" => match value {
                    "ASYNC_MASTER" => {
                        self.role = Role::Master;
                        self.replication = ReplicationMode::Async;
                    }
                    "SYNC_MASTER" => {
                        self.role = Role::Master;
                        self.replication = ReplicationMode::Sync;
                    }
                    "SLAVE" => self.role = Role::Slave,
                    _ => return Err(bad("expected ASYNC_MASTER, SYNC_MASTER or SLAVE")),
                },
                "haMasterAddress" => self.ha_master_address = Some(value.to_owned()),
                // RocketMQ 4.x waits this long for the slave (CommitLog.handleHA) as well as
                // for a sync flush; ringmq's sync flush has no timeout, so only the slave's.
                "syncFlushTimeout" => {
                    self.sync_replication_timeout =
                        Duration::from_millis(value.parse().map_err(|_| bad("not milliseconds"))?)
                }
                "autoCreateTopicEnable" => self.auto_create_topics = parse_java_bool(value),
                "slaveReadEnable" => self.slave_read_enable = parse_java_bool(value),
                "accessMessageInMemoryMaxRatio" => {
                    self.access_message_in_memory_max_ratio =
                        parse_ratio_percent(value).map_err(bad)?
                }
                "whichBrokerWhenConsumeSlowly" => {
                    self.which_broker_when_consume_slowly =
                        value.parse().map_err(|_| bad("not a broker id"))?
                }
                "defaultTopicQueueNums" => {
                    self.default_topic_queue_nums =
                        value.parse().map_err(|_| bad("not an integer"))?
                }
                "maxMessageSize" => {
                    self.max_message_size_bytes =
                        value.parse().map_err(|_| bad("not a size in bytes"))?
                }
                "mappedFileSizeCommitLog" => {
                    self.commitlog_segment_size_bytes =
                        value.parse().map_err(|_| bad("not a size in bytes"))?
                }
                "flushIntervalCommitLog" => {
                    self.flush_interval =
                        Duration::from_millis(value.parse().map_err(|_| bad("not milliseconds"))?)
                }
                "diskMaxUsedSpaceRatio" => {
                    let percent: f64 = value.parse().map_err(|_| bad("not a percentage"))?;
                    self.retention.cleanup_used_ratio = percent / 100.0;
                }
                "diskSpaceCleanForciblyRatio" => {
                    let percent: f64 = value.parse().map_err(|_| bad("not a percentage"))?;
                    self.retention.forced_used_ratio = percent / 100.0;
                }
                "diskSpaceWarningLevelRatio" => {
                    let percent: f64 = value.parse().map_err(|_| bad("not a percentage"))?;
                    self.disk_warning_ratio = percent / 100.0;
                }
                "fileReservedTime" => {
                    let hours: u64 = value.parse().map_err(|_| bad("not a number of hours"))?;
                    self.retention.file_reserved_time = hours_to_duration(hours);
                }
                "deleteWhen" => {
                    self.retention.delete_when =
                        DeleteWhen::parse(value).map_err(|e| bad(&e.to_string()))?
                }
                "messageDelayLevel" => {
                    self.schedule.levels = crate::schedule::DelayLevels::parse(value)
                        .map_err(|e| bad(&e.to_string()))?
                }
                "timerMaxDelaySec" => {
                    let secs: i64 = value.parse().map_err(|_| bad("not seconds"))?;
                    self.schedule.timer_max_delay_ms = secs.saturating_mul(1000);
                }
                "cleanResourceInterval" => {
                    self.retention.check_interval =
                        Duration::from_millis(value.parse().map_err(|_| bad("not milliseconds"))?)
                }
                _ => self.ignored_conf_keys.push(entry.key.clone()),
            }
        }
        if listen_ip.is_some() || listen_port.is_some() {
            let ip = listen_ip.unwrap_or(self.listen.ip());
            let port = listen_port.unwrap_or(self.listen.port());
            self.listen = SocketAddr::new(ip, port);
        }
        Ok(())
    }

    fn apply_flags(&mut self, args: &BrokerArgs) -> Result<(), ConfigError> {
        if let Some(hours) = &args.delete_when {
            self.retention.delete_when = DeleteWhen::parse(hours)
                .map_err(|e| ConfigError::Invalid(format!("--delete-when: {e}")))?;
        }
        if let Some(listen) = args.listen {
            self.listen = listen;
        }
        if let Some(addr) = args.namesrv_listen {
            self.name_server = NameServer::Embedded(addr);
        }
        if let Some(list) = &args.namesrv {
            self.name_server = NameServer::External(split_namesrv_list(list));
        }
        if let Some(dir) = &args.store {
            self.store_dir = dir.clone();
        }
        if let Some(shards) = args.shards {
            self.shards = shards;
        }
        if let Some(flush) = args.flush {
            self.flush = flush;
        }
        if let Some(role) = args.role {
            self.role = role;
        }
        if let Some(master) = &args.master {
            self.master = Some(master.clone());
        }
        if let Some(name) = &args.broker_name {
            self.broker_name = name.clone();
        }
        if let Some(id) = args.broker_id {
            self.broker_id = id;
        }
        if let Some(replication) = args.replication {
            self.replication = replication;
        }
        if let Some(ms) = args.sync_replication_timeout_ms {
            self.sync_replication_timeout = Duration::from_millis(ms);
        }
        if let Some(addr) = args.ha_listen {
            self.ha_listen = Some(addr);
        }
        if let Some(addr) = args.metrics_listen {
            self.metrics_listen = Some(addr);
        }
        if let Some(auto) = args.auto_create_topics {
            self.auto_create_topics = auto;
        }
        if let Some(on) = args.slave_read_enable {
            self.slave_read_enable = on;
        }
        if let Some(percent) = args.access_message_in_memory_max_ratio {
            self.access_message_in_memory_max_ratio = percent;
        }
        if let Some(id) = args.which_broker_when_consume_slowly {
            self.which_broker_when_consume_slowly = id;
        }
        if let Some(percent) = args.disk_max_used_percent {
            self.retention.cleanup_used_ratio = percent / 100.0;
        }
        if let Some(percent) = args.disk_clean_forcibly_percent {
            self.retention.forced_used_ratio = percent / 100.0;
        }
        if let Some(percent) = args.disk_warning_percent {
            self.disk_warning_ratio = percent / 100.0;
        }
        if let Some(hours) = args.file_reserved_time {
            self.retention.file_reserved_time = hours_to_duration(hours);
        }
        if let Some(secs) = args.file_reserved_time_secs {
            self.retention.file_reserved_time = Duration::from_secs(secs);
        }
        if let Some(ms) = args.clean_resource_interval_ms {
            self.retention.check_interval = Duration::from_millis(ms);
        }
        if let Some(list) = &args.message_delay_level {
            self.schedule.levels = crate::schedule::DelayLevels::parse(list)
                .map_err(|e| ConfigError::Invalid(format!("--message-delay-level: {e}")))?;
        }
        if let Some(secs) = args.timer_max_delay_secs {
            self.schedule.timer_max_delay_ms =
                i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX);
        }
        if let Some(size) = args.segment_size {
            self.commitlog_segment_size_bytes = size;
        }
        if args.shard_addressed {
            self.shard_addressed = true;
        }
        if let Some(bytes) = args.max_memory {
            self.max_memory_bytes = bytes;
        }
        if let Some(max) = args.max_connections {
            self.max_connections = max;
        }
        if let Some(secs) = args.idle_timeout_secs {
            self.idle_timeout = Duration::from_secs(secs);
        }
        if let Some(step) = args.shard_port_step {
            self.shard_port_step = step;
        }
        Ok(())
    }

    fn validate(&self) -> Result<(), ConfigError> {
        for (name, ratio) in [
            (
                "the send refusal limit (--disk-warning-percent, diskSpaceWarningLevelRatio)",
                self.disk_warning_ratio,
            ),
            (
                "the cleanup trigger (--disk-max-used-percent, diskMaxUsedSpaceRatio)",
                self.retention.cleanup_used_ratio,
            ),
            (
                "the forced cleanup limit (--disk-clean-forcibly-percent, diskSpaceCleanForciblyRatio)",
                self.retention.forced_used_ratio,
            ),
        ] {
            if !(ratio > 0.0 && ratio <= 1.0) {
                return Err(ConfigError::Invalid(format!(
                    "{name} must be above 0% and at most 100%, got {}%",
                    ratio * 100.0
                )));
            }
        }
        if self.access_message_in_memory_max_ratio > 100 {
            return Err(ConfigError::Invalid(format!(
                "--access-message-in-memory-max-ratio (accessMessageInMemoryMaxRatio) is a percentage from 0 to 100, got {}",
                self.access_message_in_memory_max_ratio
            )));
        }
        if self.which_broker_when_consume_slowly < 0 {
            return Err(ConfigError::Invalid(format!(
                "--which-broker-when-consume-slowly (whichBrokerWhenConsumeSlowly) is a broker id, got {}",
                self.which_broker_when_consume_slowly
            )));
        }
        if self.sync_replication_timeout.is_zero() {
            return Err(ConfigError::Invalid(
                "--sync-replication-timeout-ms (syncFlushTimeout) must be at least 1".to_owned(),
            ));
        }
        if self.retention.check_interval.is_zero() {
            return Err(ConfigError::Invalid(
                "--clean-resource-interval-ms (cleanResourceInterval) must be at least 1"
                    .to_owned(),
            ));
        }
        if self.shards == 0 || self.shards > 255 {
            return Err(ConfigError::Invalid(format!(
                "--shards must be between 1 and 255 (the shard id is the top byte of a physical offset), got {}",
                self.shards
            )));
        }
        if self.max_memory_bytes < 1 << 20 {
            return Err(ConfigError::Invalid(format!(
                "--max-memory must be at least 1 MiB (1048576), got {}",
                self.max_memory_bytes
            )));
        }
        if self.max_connections == 0 {
            return Err(ConfigError::Invalid(
                "--max-connections must be at least 1".to_owned(),
            ));
        }
        if self.shard_addressed && self.listen.port() != 0 {
            let last = u64::from(self.listen.port())
                + u64::from(self.shard_port_step) * (self.shards as u64 - 1);
            if self.shard_port_step == 0 || last > u64::from(u16::MAX) {
                return Err(ConfigError::Invalid(format!(
                    "--shard-addressed: {} shards from port {} in steps of {} do not fit in 1..=65535 (and the step must be > 0)",
                    self.shards,
                    self.listen.port(),
                    self.shard_port_step
                )));
            }
        }
        if let NameServer::External(list) = &self.name_server {
            if list.is_empty() {
                return Err(ConfigError::Invalid(
                    "--namesrv needs at least one host:port".to_owned(),
                ));
            }
        }
        match (self.role, self.broker_id) {
            (Role::Master, id) if id != 0 => Err(ConfigError::Invalid(format!(
                "a master has --broker-id 0, got {id}"
            ))),
            (Role::Slave, id) if id <= 0 => Err(ConfigError::Invalid(format!(
                "a slave needs --broker-id > 0, got {id}"
            ))),
            (Role::Slave, _) if self.master.is_none() && self.ha_master_address.is_none() => Err(
                ConfigError::Invalid("a slave needs --master HOST:PORT".to_owned()),
            ),
            _ => Ok(()),
        }
    }

    /// Refuses settings the broker accepts in its configuration but does not act on yet, so
    /// that nobody runs, say, a "slave" that is in fact a second master taking sends.
    pub fn refuse_unbuilt(&self) -> Result<(), ConfigError> {
        let not_yet = |what: &str, why: &str| {
            Err(ConfigError::Invalid(format!(
                "{what} is not supported yet: {why}"
            )))
        };
        if self.metrics_listen.is_some() {
            return not_yet("--metrics-listen", "the metrics endpoint is not built");
        }
        Ok(())
    }

    /// One line per setting, printed at start-up.
    pub fn describe(&self) -> String {
        let name_server = match &self.name_server {
            NameServer::Embedded(addr) => format!("embedded on {addr}"),
            NameServer::External(list) => format!("external {}", list.join(";")),
        };
        let mut text = format!(
            "cluster={} broker={} id={} role={:?} listen={} name-server=({}) store={} shards={} \
             flush={:?} flush-interval={}ms replication={:?} sync-replication-timeout={}ms \
             auto-create-topics={} \
             max-message-size={}B segment-size={}B max-hold={}ms disk-warning={:.0}% \
             retention=(file-reserved-time={}s delete-when={} disk-max-used={:.0}% \
             disk-clean-forcibly={:.0}% interval={}ms) \
             shard-addressed={} max-connections={} idle-timeout={}s max-memory={}B \
             slave-read-enable={} access-message-in-memory-max-ratio={}% \
             which-broker-when-consume-slowly={} delay-levels={} timer-max-delay={}ms",
            self.cluster_name,
            self.broker_name,
            self.broker_id,
            self.role,
            self.listen,
            name_server,
            self.store_dir.display(),
            self.shards,
            self.flush,
            self.flush_interval.as_millis(),
            self.replication,
            self.sync_replication_timeout.as_millis(),
            self.auto_create_topics,
            self.max_message_size_bytes,
            self.commitlog_segment_size_bytes,
            self.max_hold.as_millis(),
            self.disk_warning_ratio * 100.0,
            self.retention.file_reserved_time.as_secs(),
            self.retention.delete_when,
            self.retention.cleanup_used_ratio * 100.0,
            self.retention.forced_used_ratio * 100.0,
            self.retention.check_interval.as_millis(),
            self.shard_addressed,
            self.max_connections,
            self.idle_timeout.as_secs(),
            self.max_memory_bytes,
            self.slave_read_enable,
            self.access_message_in_memory_max_ratio,
            self.which_broker_when_consume_slowly,
            self.schedule.levels.count(),
            self.schedule.timer_max_delay_ms,
        );
        if !self.ignored_conf_keys.is_empty() {
            text.push_str(&format!(
                " (broker.conf keys not used by ringmq: {})",
                self.ignored_conf_keys.join(", ")
            ));
        }
        text
    }
}

fn hours_to_duration(hours: u64) -> Duration {
    Duration::from_secs(hours.saturating_mul(3600))
}

/// Checks a percentage of RAM for the page-cache rule (broker.conf and UPDATE_BROKER_CONFIG
/// share it).
pub fn parse_ratio_percent(value: &str) -> Result<u64, &'static str> {
    match value.trim().parse::<u64>() {
        Ok(percent) if percent <= 100 => Ok(percent),
        _ => Err("expected a whole percentage from 0 to 100"),
    }
}

fn split_namesrv_list(list: &str) -> Vec<String> {
    list.split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Java's `Boolean.parseBoolean`: only "true" (any case) is true.
fn parse_java_bool(value: &str) -> bool {
    value.eq_ignore_ascii_case("true")
}

fn online_cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(255)
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "DEFAULT_BROKER".to_owned())
}

/// Descriptors kept for the store, the embedded name server and outgoing connections.
const RESERVED_FDS: u64 = 256;

/// The open-file limit minus [`RESERVED_FDS`] (at least 64; 10,000 when the limit is
/// unknown or unlimited).
fn default_max_connections() -> usize {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own and passes; RLIMIT_NOFILE is valid.
    let read = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0;
    if !read || limit.rlim_cur == libc::RLIM_INFINITY {
        return 10_000;
    }
    let usable = limit.rlim_cur.saturating_sub(RESERVED_FDS).max(64);
    usize::try_from(usable).unwrap_or(10_000).min(1_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> BrokerArgs {
        let mut full = vec!["ringmq-server"];
        full.extend_from_slice(list);
        Cli::parse_from(full).broker
    }

    #[test]
    fn defaults_follow_rocketmq() {
        let config = BrokerConfig::from_args(&args(&[])).unwrap();
        assert_eq!(config.listen, "127.0.0.1:10911".parse().unwrap());
        assert_eq!(
            config.name_server,
            NameServer::Embedded("127.0.0.1:9876".parse().unwrap())
        );
        assert_eq!(config.flush, FlushMode::Async);
        assert_eq!(config.max_message_size_bytes, 4 * 1024 * 1024);
        assert_eq!(config.max_hold, Duration::from_secs(15));
        assert!(config.auto_create_topics);
    }

    #[test]
    fn broker_conf_values_apply_and_flags_win() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("broker.conf");
        std::fs::write(
            &path,
            "brokerClusterName=C1\nbrokerName=broker-x\nlistenPort=20911\n\
             namesrvAddr=10.0.0.1:9876;10.0.0.2:9876\nstorePathRootDir=/data/rmq\n\
             flushDiskType=SYNC_FLUSH\nautoCreateTopicEnable=false\nmessageDelayLevel=1s 2m\n\
             transactionTimeOut=6000\n",
        )
        .unwrap();
        let path_text = path.to_str().unwrap();
        let config = BrokerConfig::from_args(&args(&["--config", path_text])).unwrap();
        assert_eq!(config.cluster_name, "C1");
        assert_eq!(config.broker_name, "broker-x");
        assert_eq!(config.listen.port(), 20911);
        assert_eq!(
            config.name_server,
            NameServer::External(vec!["10.0.0.1:9876".into(), "10.0.0.2:9876".into()])
        );
        assert_eq!(config.store_dir, PathBuf::from("/data/rmq"));
        assert_eq!(config.flush, FlushMode::Sync);
        assert!(!config.auto_create_topics);
        assert_eq!(config.schedule.levels.count(), 2);
        assert_eq!(config.schedule.levels.delay_ms(2), 120_000);
        assert_eq!(
            config.ignored_conf_keys,
            vec!["transactionTimeOut".to_owned()]
        );

        let config = BrokerConfig::from_args(&args(&[
            "--config",
            path_text,
            "--flush",
            "async",
            "--listen",
            "127.0.0.1:0",
            "--namesrv-listen",
            "127.0.0.1:0",
        ]))
        .unwrap();
        assert_eq!(config.flush, FlushMode::Async);
        assert_eq!(config.listen.port(), 0);
        assert!(matches!(config.name_server, NameServer::Embedded(_)));
    }

    #[test]
    fn a_bad_value_names_file_line_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("broker.conf");
        std::fs::write(&path, "brokerName=a\nflushDiskType=SOMETIMES\n").unwrap();
        let error = BrokerConfig::from_args(&args(&["--config", path.to_str().unwrap()]))
            .unwrap_err()
            .to_string();
        assert!(error.contains(":2: flushDiskType=SOMETIMES"), "{error}");
    }

    #[test]
    fn a_slave_needs_an_id_and_a_master() {
        assert!(BrokerConfig::from_args(&args(&["--role", "slave"])).is_err());
        assert!(BrokerConfig::from_args(&args(&["--role", "slave", "--broker-id", "1"])).is_err());
        assert!(BrokerConfig::from_args(&args(&[
            "--role",
            "slave",
            "--broker-id",
            "1",
            "--master",
            "127.0.0.1:10912"
        ]))
        .is_ok());
    }

    #[test]
    fn settings_not_built_yet_are_refused_at_start() {
        let metrics = BrokerConfig::from_args(&args(&["--metrics-listen", "127.0.0.1:0"])).unwrap();
        let error = metrics.refuse_unbuilt().unwrap_err().to_string();
        assert!(error.contains("not supported yet"), "{error}");
        let plain = BrokerConfig::from_args(&args(&[])).unwrap();
        assert!(plain.refuse_unbuilt().is_ok());
        let slave = BrokerConfig::from_args(&args(&[
            "--role",
            "slave",
            "--broker-id",
            "1",
            "--master",
            "127.0.0.1:10911",
            "--ha-listen",
            "127.0.0.1:0",
        ]))
        .unwrap();
        assert!(slave.refuse_unbuilt().is_ok(), "replication is built");
        let sync = BrokerConfig::from_args(&args(&["--replication", "sync"])).unwrap();
        assert!(sync.refuse_unbuilt().is_ok(), "sync replication is built");
    }

    #[test]
    fn the_sync_replication_timeout_comes_from_the_flag_or_sync_flush_timeout() {
        let default = BrokerConfig::from_args(&args(&[])).unwrap();
        assert_eq!(default.sync_replication_timeout, Duration::from_secs(5));
        let flag = BrokerConfig::from_args(&args(&["--sync-replication-timeout-ms", "750"]));
        assert_eq!(
            flag.unwrap().sync_replication_timeout,
            Duration::from_millis(750)
        );
        assert!(BrokerConfig::from_args(&args(&["--sync-replication-timeout-ms", "0"])).is_err());
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("broker.conf");
        std::fs::write(&conf, "brokerRole=SYNC_MASTER\nsyncFlushTimeout=1234\n").unwrap();
        let config = BrokerConfig::from_args(&args(&["--config", conf.to_str().unwrap()])).unwrap();
        assert_eq!(config.replication, ReplicationMode::Sync);
        assert_eq!(config.sync_replication_timeout, Duration::from_millis(1234));
    }

    #[test]
    fn shard_addressed_ports_must_fit_below_65536() {
        let fits = [
            "--shard-addressed",
            "--shards",
            "4",
            "--listen",
            "127.0.0.1:10911",
        ];
        assert!(BrokerConfig::from_args(&args(&fits)).is_ok());
        let past_the_end = [
            "--shard-addressed",
            "--shards",
            "2",
            "--listen",
            "127.0.0.1:65530",
        ];
        assert!(BrokerConfig::from_args(&args(&past_the_end)).is_err());
        let step_alone = ["--shard-port-step", "20"];
        assert!(BrokerConfig::from_args(&args(&step_alone)).is_err());
        let zero_step = [
            "--shard-addressed",
            "--shards",
            "2",
            "--shard-port-step",
            "0",
        ];
        assert!(BrokerConfig::from_args(&args(&zero_step)).is_err());
    }

    #[test]
    fn disk_ratios_mean_what_they_mean_in_rocketmq() {
        let defaults = BrokerConfig::from_args(&args(&[])).unwrap();
        assert_eq!(defaults.disk_warning_ratio, 0.90);
        assert_eq!(defaults.retention.cleanup_used_ratio, 0.75);
        assert_eq!(defaults.retention.forced_used_ratio, 0.85);
        assert_eq!(
            defaults.retention.file_reserved_time,
            Duration::from_secs(72 * 3600)
        );
        assert_eq!(defaults.retention.delete_when.to_string(), "04");
        assert_eq!(defaults.retention.check_interval, Duration::from_secs(10));

        // A stock broker.conf: diskMaxUsedSpaceRatio=75 is the cleanup trigger, sends are
        // refused only above diskSpaceWarningLevelRatio.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("broker.conf");
        std::fs::write(
            &path,
            "diskMaxUsedSpaceRatio=75\ndiskSpaceCleanForciblyRatio=80\n\
             diskSpaceWarningLevelRatio=95\nfileReservedTime=48\ndeleteWhen=01;02\n\
             cleanResourceInterval=5000\n",
        )
        .unwrap();
        let config = BrokerConfig::from_args(&args(&["--config", path.to_str().unwrap()])).unwrap();
        assert_eq!(config.retention.cleanup_used_ratio, 0.75);
        assert_eq!(config.retention.forced_used_ratio, 0.80);
        assert_eq!(config.disk_warning_ratio, 0.95);
        assert_eq!(
            config.retention.file_reserved_time,
            Duration::from_secs(48 * 3600)
        );
        assert_eq!(config.retention.delete_when.to_string(), "01;02");
        assert_eq!(config.retention.check_interval, Duration::from_secs(5));
        assert!(config.ignored_conf_keys.is_empty());

        let flags = BrokerConfig::from_args(&args(&[
            "--disk-max-used-percent",
            "60",
            "--disk-clean-forcibly-percent",
            "70",
            "--disk-warning-percent",
            "80",
            "--file-reserved-time-secs",
            "5",
            "--delete-when",
            "00;12",
        ]))
        .unwrap();
        assert_eq!(flags.retention.cleanup_used_ratio, 0.60);
        assert_eq!(flags.retention.forced_used_ratio, 0.70);
        assert_eq!(flags.disk_warning_ratio, 0.80);
        assert_eq!(flags.retention.file_reserved_time, Duration::from_secs(5));
        assert!(flags.retention.delete_when.contains(12));
    }

    #[test]
    fn bad_retention_values_are_refused() {
        assert!(BrokerConfig::from_args(&args(&["--delete-when", "25"])).is_err());
        assert!(BrokerConfig::from_args(&args(&["--disk-warning-percent", "0"])).is_err());
        assert!(BrokerConfig::from_args(&args(&["--disk-clean-forcibly-percent", "101"])).is_err());
        assert!(BrokerConfig::from_args(&args(&["--clean-resource-interval-ms", "0"])).is_err());
    }

    #[test]
    fn a_flag_given_twice_takes_its_last_value() {
        let config =
            BrokerConfig::from_args(&args(&["--segment-size", "8192", "--segment-size", "4096"]))
                .unwrap();
        assert_eq!(config.commitlog_segment_size_bytes, 4096);
    }

    #[test]
    fn zero_shards_is_refused() {
        assert!(BrokerConfig::from_args(&args(&["--shards", "0"])).is_err());
    }
}

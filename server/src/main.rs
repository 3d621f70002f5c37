//! `ringmq-server`: the broker binary. The command line is the contract of design.md §10.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use ringmq_engine::disk_guard::FsUsage;
use ringmq_server::backend::{probe_io_uring, IoUringProbe};
use ringmq_server::config::{BrokerConfig, Cli, Command, NameServer, Role};
use ringmq_server::listener::{bind_per_shard, bind_reuseport_group, bind_single};
use ringmq_server::namesrv::{self, NameServerHandle, NamesrvConfig};
use ringmq_server::registration::{
    reachable, Registration, RegistrationConfig, RegistrationHandle, TopicSnapshot,
};
use ringmq_server::replication;
use ringmq_server::router::Router;
use ringmq_server::shard::hop::Inboxes;
use ringmq_server::shard::shared::{broker_name_of, MasterHaAddr};
use ringmq_server::shard::thread::Shards;
use ringmq_server::shard::BrokerShared;
use ringmq_server::shutdown::Shutdown;
use ringmq_server::topics::{TopicSettings, Topics};
use signal_hook::consts::{SIGINT, SIGTERM};

/// Loop turns a shard keeps polling its inbox after the last cross-shard message before
/// it parks: short bursts of hops then cost no wake-up (design.md §3).
const INBOX_SPIN_TURNS: usize = 64;

/// The process heap is mimalloc (docs/decisions.md, "The allocator"); `heap::trim_when_idle`
/// returns its free memory to the OS after bursts.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // Colour codes only for a terminal: a log file or a journal gets plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    if let Some(Command::Namesrv { listen }) = cli.command {
        return run_namesrv(listen);
    }
    let config = BrokerConfig::from_args(&cli.broker)?;
    config.refuse_unbuilt()?;
    let config = Arc::new(config);
    run_broker(config)
}

fn run_broker(config: Arc<BrokerConfig>) -> anyhow::Result<()> {
    let probe = probe_io_uring();
    if probe != IoUringProbe::Available {
        eprintln!("io_uring not in use: {probe}; shards fall back to epoll");
    }
    warn_about_disk_limits(&config);
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT])
        .context("installing SIGTERM/SIGINT handlers")?;
    // The name server first, so that the broker's first registration finds it.
    let embedded_namesrv = start_embedded_namesrv(&config)?;
    let name_servers = match (&embedded_namesrv, &config.name_server) {
        (Some(server), _) => vec![reachable(server.local_addr()).to_string()],
        (None, NameServer::External(list)) => list.clone(),
        (None, NameServer::Embedded(_)) => Vec::new(),
    };
    let listeners = if config.shard_addressed {
        bind_per_shard(config.listen, config.shards, config.shard_port_step)
    } else {
        bind_reuseport_group(config.listen, config.shards)
    }
    .with_context(|| format!("binding the broker port {}", config.listen))?;
    let bound_addrs = listeners
        .iter()
        .map(|listener| listener.local_addr().map(reachable))
        .collect::<Result<Vec<_>, _>>()
        .context("reading the bound broker addresses")?;
    let bound = *bound_addrs.first().context("no listener")?;
    // One broker per process, or (shard-addressed) one per shard, each with its address.
    let brokers: Vec<(String, std::net::SocketAddr)> = if config.shard_addressed {
        (0..config.shards)
            .map(|shard| (broker_name_of(&config, shard), bound_addrs[shard]))
            .collect()
    } else {
        vec![(config.broker_name.clone(), bound)]
    };
    let topics = Topics::open(
        topic_settings(&config),
        Some(&config.store_dir.join("config")),
    )
    .context("loading the topic table")?;
    let subscription_groups = ringmq_server::subscription_groups::SubscriptionGroups::open(Some(
        &config.store_dir.join("config"),
    ))
    .context("loading the subscription groups")?;
    let inboxes = Inboxes::new(config.shards, INBOX_SPIN_TURNS);
    // Made before the loop runs so that topic changes can ask for a registration at once.
    let registration_handles: Vec<RegistrationHandle> =
        brokers.iter().map(|_| RegistrationHandle::new()).collect();
    let topics_changed_hooks: Vec<_> = registration_handles
        .iter()
        .map(RegistrationHandle::topics_changed_hook)
        .collect();
    let shared = Arc::new(
        BrokerShared::new(
            Arc::clone(&config),
            bound,
            if config.shard_addressed {
                bound_addrs.clone()
            } else {
                Vec::new()
            },
            topics,
            inboxes,
            ringmq_server::clock::system(),
            Box::new(move || {
                let rounds: Vec<_> = topics_changed_hooks.iter().map(|hook| hook()).collect();
                Box::new(move || rounds.iter().all(|done| done()))
            }),
        )
        .with_subscription_groups(subscription_groups),
    );
    let ha_listener = bind_ha_listener(&config)?;
    let ha_addr = match &ha_listener {
        Some(listener) => Some(reachable(
            listener
                .local_addr()
                .context("reading the bound HA address")?,
        )),
        None => None,
    };
    if config.role == Role::Slave {
        let master = config.master.clone().unwrap_or_default();
        let configured_ha = config.ha_master_address.clone();
        let handle = registration_handles
            .first()
            .cloned()
            .context("no registration")?;
        let master_ha: MasterHaAddr = Arc::new(move || {
            // The name server hands out the master's HA address (protocol.md §8.1); before
            // its first answer, RocketMQ's rule: the master's port + 1.
            configured_ha.clone().or_else(|| {
                handle
                    .master()
                    .and_then(|answer| answer.ha_server_addr)
                    .filter(|addr| !addr.is_empty())
                    .or_else(|| default_ha_addr(&master))
            })
        });
        let _ = shared.master_ha_addr.set(master_ha);
    }
    let snapshot_shared = Arc::clone(&shared);
    let topic_snapshot: TopicSnapshot = Arc::new(move || snapshot_shared.topics.snapshot());
    let shutdown = Shutdown::new(config.shards);
    let (shards, started) = Shards::start(
        Arc::clone(&shared),
        listeners,
        ha_listener,
        Arc::clone(&shutdown),
        Router::for_shard,
        replication::start_on_shard,
    )?;
    for shard in &started {
        eprintln!(
            "shard {} on cpu {}: backend {}",
            shard.shard_id, shard.cpu, shard.driver
        );
    }
    // Before the first registration: topics whose messages the log holds but whose config
    // a crash kept from reaching topics.json.
    let stored_queues: Vec<(String, i32)> = started
        .into_iter()
        .flat_map(|shard| shard.stored_queues)
        .collect();
    for topic in shared.topics.recover_from_log(&stored_queues) {
        eprintln!("topic {topic} recreated from the log (its config was not on disk)");
    }
    eprintln!("config: {}", config.describe());
    let mut registrations = Vec::with_capacity(brokers.len());
    for ((broker_name, addr), handle) in brokers.iter().zip(&registration_handles) {
        let mut registration_config =
            RegistrationConfig::for_broker(&config, *addr, name_servers.clone());
        registration_config.broker_name = broker_name.clone();
        if let Some(ha_addr) = ha_addr {
            registration_config.ha_server_addr = ha_addr.to_string();
        }
        registrations.push(
            Registration::start(registration_config, Arc::clone(&topic_snapshot), handle)
                .context("starting the name-server registration")?,
        );
    }
    // Tests and scripts read the chosen ports from these lines on stdout (design.md §10).
    for (_, addr) in &brokers {
        println!("listening broker {addr}");
    }
    if let Some(signal) = signals.forever().next() {
        eprintln!("signal {signal}: shutting down");
    }
    // Unregister first: clients stop being routed here while the shards finish.
    for registration in registrations {
        if let Err(error) = registration.stop() {
            eprintln!("name-server registration: {error:#}");
        }
    }
    shutdown.request();
    shards.join()?;
    shared.topics.flush();
    if let Some(server) = embedded_namesrv {
        if let Err(error) = server.stop() {
            eprintln!("{error:#}");
        }
    }
    let fatal = match shared.fatal.lock() {
        Ok(fatal) => fatal.clone(),
        Err(poisoned) => poisoned.into_inner().clone(),
    };
    if let Some(reason) = fatal {
        anyhow::bail!("stopped: {reason}");
    }
    eprintln!("stopped");
    Ok(())
}

/// Says at start when the store's filesystem is already past a disk limit, which a broker
/// on a shared disk meets for reasons of its own: otherwise the first sign is a refused send
/// (or a deleted segment) with nothing pointing at the disk.
fn warn_about_disk_limits(config: &BrokerConfig) {
    // Absolute first: the ancestors of a relative path such as the default `store` end
    // at "", which names no directory.
    let store_dir =
        std::path::absolute(&config.store_dir).unwrap_or_else(|_| config.store_dir.clone());
    let Some(existing) = store_dir.ancestors().find(|path| path.exists()) else {
        return;
    };
    let usage = match FsUsage::of(existing) {
        Ok(usage) => usage,
        Err(error) => {
            tracing::warn!(path = %existing.display(), %error, "cannot tell how full the store's filesystem is");
            return;
        }
    };
    let Some(used) = usage.used_ratio() else {
        return;
    };
    let limits = [
        (
            config.disk_warning_ratio,
            "--disk-warning-percent",
            "every send is refused until space is freed",
        ),
        (
            config.retention.forced_used_ratio,
            "--disk-clean-forcibly-percent",
            "the oldest CommitLog segments are deleted whatever their age",
        ),
        (
            config.retention.cleanup_used_ratio,
            "--disk-max-used-percent",
            "CommitLog segments past --file-reserved-time are deleted at any hour",
        ),
    ];
    if let Some((ratio, flag, consequence)) = limits.iter().find(|(ratio, _, _)| used > *ratio) {
        tracing::warn!(
            "the store's filesystem ({}) is {:.1}% full, above {flag} {:.0}%: {consequence}",
            existing.display(),
            used * 100.0,
            ratio * 100.0
        );
    }
}

/// A master's HA listener: `--ha-listen`, else the broker's port + 1 as RocketMQ forces it
/// (port 0 when the broker's port is 0: tests pick free ports). A slave has none.
fn bind_ha_listener(config: &BrokerConfig) -> anyhow::Result<Option<std::net::TcpListener>> {
    if config.role == Role::Slave {
        return Ok(None);
    }
    let addr = config.ha_listen.unwrap_or_else(|| {
        let port = match config.listen.port() {
            0 => 0,
            port => port.wrapping_add(1),
        };
        SocketAddr::new(config.listen.ip(), port)
    });
    let listener = bind_single(addr).with_context(|| {
        format!("binding the HA port {addr} (--ha-listen; default: the broker's port + 1)")
    })?;
    Ok(Some(listener))
}

/// RocketMQ's default HA address of a master at `master` (`host:port`): its port + 1.
fn default_ha_addr(master: &str) -> Option<String> {
    let (host, port) = master.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    Some(format!("{host}:{}", port.checked_add(1)?))
}

/// Starts the embedded name server when the configuration asks for one, and prints its
/// bound address.
fn start_embedded_namesrv(config: &BrokerConfig) -> anyhow::Result<Option<NameServerHandle>> {
    let NameServer::Embedded(listen) = config.name_server else {
        return Ok(None);
    };
    let server = namesrv::start(NamesrvConfig::new(listen))
        .with_context(|| format!("starting the embedded name server on {listen}"))?;
    println!("listening namesrv {}", server.local_addr());
    Ok(Some(server))
}

/// `ringmq-server namesrv`: only a name server, until SIGTERM/SIGINT.
fn run_namesrv(listen: SocketAddr) -> anyhow::Result<()> {
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT])
        .context("installing SIGTERM/SIGINT handlers")?;
    let server = namesrv::start(NamesrvConfig::new(listen))
        .with_context(|| format!("starting the name server on {listen}"))?;
    println!("listening namesrv {}", server.local_addr());
    if let Some(signal) = signals.forever().next() {
        eprintln!("signal {signal}: shutting down");
    }
    server.stop()?;
    eprintln!("stopped");
    Ok(())
}

fn topic_settings(config: &BrokerConfig) -> TopicSettings {
    let mut settings = TopicSettings::new(&config.cluster_name, &config.broker_name);
    settings.auto_create_topics = config.auto_create_topics;
    settings.default_topic_queue_nums = config.default_topic_queue_nums;
    settings
}

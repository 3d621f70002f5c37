//! `ringmq-server`: the broker binary. The command line is the contract of design.md §10.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use ringmq_protocol::body::{TopicConfig, TopicConfigSerializeWrapper};
use ringmq_server::backend::{probe_io_uring, IoUringProbe};
use ringmq_server::config::{BrokerConfig, Cli, Command, NameServer};
use ringmq_server::listener::bind_reuseport_group;
use ringmq_server::namesrv::{self, NameServerHandle, NamesrvConfig};
use ringmq_server::registration::{
    reachable, Registration, RegistrationConfig, RegistrationHandle, TopicSnapshot,
};
use ringmq_server::shard::Shards;
use ringmq_server::shutdown::Shutdown;
use signal_hook::consts::{SIGINT, SIGTERM};

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    if let Some(Command::Namesrv { listen }) = cli.command {
        return run_namesrv(listen);
    }
    let config = Arc::new(BrokerConfig::from_args(&cli.broker)?);
    run_broker(config)
}

fn run_broker(config: Arc<BrokerConfig>) -> anyhow::Result<()> {
    let probe = probe_io_uring();
    if probe != IoUringProbe::Available {
        eprintln!("io_uring not in use: {probe}; shards fall back to epoll");
    }
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT])
        .context("installing SIGTERM/SIGINT handlers")?;
    // The name server first, so that the broker's first registration finds it.
    let embedded_namesrv = start_embedded_namesrv(&config)?;
    let name_servers = match (&embedded_namesrv, &config.name_server) {
        (Some(server), _) => vec![reachable(server.local_addr()).to_string()],
        (None, NameServer::External(list)) => list.clone(),
        (None, NameServer::Embedded(_)) => Vec::new(),
    };
    let listeners = bind_reuseport_group(config.listen, config.shards)
        .with_context(|| format!("binding the broker port {}", config.listen))?;
    let bound = listeners
        .first()
        .context("no listener")?
        .local_addr()
        .context("reading the bound broker address")?;
    let shutdown = Shutdown::new(config.shards);
    let (shards, started) = Shards::start(Arc::clone(&config), listeners, Arc::clone(&shutdown))?;
    for shard in &started {
        eprintln!(
            "shard {} on cpu {}: backend {}",
            shard.shard_id, shard.cpu, shard.driver
        );
    }
    eprintln!("config: {}", config.describe());
    let registration_handle = RegistrationHandle::new();
    let registration = Registration::start(
        RegistrationConfig::for_broker(&config, bound, name_servers),
        interim_topic_snapshot(&config),
        &registration_handle,
    )
    .context("starting the name-server registration")?;
    // Tests and scripts read the chosen ports from these lines on stdout (design.md §10).
    println!("listening broker {bound}");
    if let Some(signal) = signals.forever().next() {
        eprintln!("signal {signal}: shutting down");
    }
    // Unregister first: clients stop being routed here while the shards finish.
    if let Err(error) = registration.stop() {
        eprintln!("name-server registration: {error:#}");
    }
    shutdown.request();
    shards.join()?;
    if let Some(server) = embedded_namesrv {
        if let Err(error) = server.stop() {
            eprintln!("{error:#}");
        }
    }
    eprintln!("stopped");
    Ok(())
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

/// Until the topic manager registers its table: TBW102 (perm 7, the default queue count)
/// when auto-creation is on, so producers can create topics through it.
fn interim_topic_snapshot(config: &BrokerConfig) -> TopicSnapshot {
    let mut wrapper = TopicConfigSerializeWrapper::default();
    if config.auto_create_topics {
        let mut tbw102 = TopicConfig::new("TBW102");
        tbw102.read_queue_nums = config.default_topic_queue_nums;
        tbw102.write_queue_nums = config.default_topic_queue_nums;
        tbw102.perm = 7;
        wrapper
            .topic_config_table
            .insert("TBW102".to_owned(), tbw102);
    }
    Arc::new(move || wrapper.clone())
}

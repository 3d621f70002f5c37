//! `ringmq-server`: the broker binary. The command line is the contract of design.md §10.

use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use ringmq_server::backend::{probe_io_uring, IoUringProbe};
use ringmq_server::config::{BrokerConfig, Cli, Command};
use ringmq_server::listener::bind_reuseport_group;
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
        anyhow::bail!("ringmq-server namesrv --listen {listen}: not implemented yet (issue 4)");
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
    // Tests and scripts read the chosen ports from these lines on stdout (design.md §10).
    println!("listening broker {bound}");
    if let Some(signal) = signals.forever().next() {
        eprintln!("signal {signal}: shutting down");
    }
    shutdown.request();
    shards.join()?;
    eprintln!("stopped");
    Ok(())
}

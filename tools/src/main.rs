//! `ringmq`: admin CLI; its commands arrive with issue 6.

use clap::Parser;

/// Admin and everyday commands for RocketMQ-compatible brokers.
#[derive(Debug, Parser)]
#[command(name = "ringmq", version, about)]
struct Args {}

fn main() -> anyhow::Result<()> {
    let _args = Args::parse();
    anyhow::bail!("ringmq: not implemented yet (issue 6)")
}

//! `ringmq-bench`: load generator; produce/consume/e2e modes arrive with issue 6.

use clap::Parser;

/// RocketMQ load generator with latency histograms.
#[derive(Debug, Parser)]
#[command(name = "ringmq-bench", version, about)]
struct Args {}

fn main() -> anyhow::Result<()> {
    let _args = Args::parse();
    anyhow::bail!("ringmq-bench: not implemented yet (issue 6)")
}

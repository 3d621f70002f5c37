//! `ringmq-server`: the broker binary. The command line is the contract of design.md §10;
//! the shards, processors and name server arrive with issue 4.

use clap::Parser;

/// ringmq broker: RocketMQ-compatible, thread-per-core on io_uring.
#[derive(Debug, Parser)]
#[command(name = "ringmq-server", version, about)]
struct Args {
    /// Address the broker listens on.
    #[arg(long, default_value = "127.0.0.1:10911")]
    listen: String,
    /// Address of the embedded name server.
    #[arg(long, default_value = "127.0.0.1:9876")]
    namesrv_listen: String,
    /// Store root directory.
    #[arg(long, default_value = "store")]
    store: String,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    eprintln!(
        "ringmq-server: not implemented yet (would listen on {}, name server {}, store {})",
        args.listen, args.namesrv_listen, args.store
    );
    Ok(())
}

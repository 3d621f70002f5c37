//! `ringmq`: admin and everyday commands for RocketMQ-compatible brokers (ringmq or any
//! other), through `ringmq-client`: topics, clusters, broker stats, consumer progress and
//! connections, offset resets, sending, consuming and viewing messages.
//!
//! Output is a human table by default and JSON with `--json`. A failure prints what was
//! being done and why (for a broker refusal: its address, response code and remark) on
//! stderr and exits with status 1; usage errors exit with 2.

mod commands;
mod consume;
mod dlq;
mod output;
mod table;
mod timefmt;

use clap::{Args, Parser, Subcommand};

/// Admin and everyday commands for RocketMQ-compatible brokers.
///
/// Every command talks to the name server given by --namesrv (or NAMESRV_ADDR), prints a
/// table, or JSON with --json, and exits non-zero with the broker's code and remark when
/// something fails.
#[derive(Debug, Parser)]
#[command(name = "ringmq", version)]
pub struct Cli {
    /// Name server address(es), `host:port[;host:port]`.
    #[arg(
        long,
        global = true,
        env = "NAMESRV_ADDR",
        default_value = "127.0.0.1:9876"
    )]
    pub namesrv: String,
    /// Print JSON instead of tables (for scripts).
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create, update, delete, list topics and show their routes.
    #[command(subcommand)]
    Topic(TopicCmd),
    /// Clusters and their brokers.
    #[command(subcommand)]
    Cluster(ClusterCmd),
    /// Broker runtime statistics.
    #[command(subcommand)]
    Broker(BrokerCmd),
    /// Consumer groups: progress (lag) and connections.
    #[command(subcommand)]
    Consumer(ConsumerCmd),
    /// Consumer offsets.
    #[command(subcommand)]
    Offset(OffsetCmd),
    /// Send message(s) to a topic and print where they were stored.
    Send(SendArgs),
    /// Read messages of a topic and print them.
    Consume(ConsumeArgs),
    /// Messages by id.
    #[command(subcommand)]
    Message(MessageCmd),
    /// A consumer group's dead letters (%DLQ%<group>): list them, send them back.
    #[command(subcommand)]
    Dlq(DlqCmd),
}

/// `ringmq dlq ...`
#[derive(Debug, Subcommand)]
pub enum DlqCmd {
    /// Every dead letter of the group: msg id, the topic it came from, how often it was
    /// redelivered, tags, keys, when it was stored, body.
    List {
        /// Consumer group.
        group: String,
        /// Stop reading once every queue has been idle this long.
        #[arg(long, default_value_t = 1000)]
        wait_ms: u64,
    },
    /// Send copies of the group's dead letters (or of one, --msg-id) back to the topics they
    /// came from, with their body, tags, keys, properties and msg id; the dead letters stay.
    Resend {
        /// Consumer group.
        group: String,
        /// Only the dead letter with this msg id (or offset msg id).
        #[arg(long, value_name = "ID")]
        msg_id: Option<String>,
        /// Stop reading once every queue has been idle this long.
        #[arg(long, default_value_t = 1000)]
        wait_ms: u64,
    },
}

/// `ringmq topic ...`
#[derive(Debug, Subcommand)]
pub enum TopicCmd {
    /// Create a topic on the master of every broker of the cluster(s) (all clusters unless
    /// --cluster or --broker is given).
    Create(TopicSpecArgs),
    /// Change an existing topic's queue counts, permission or order flag; what is not given
    /// keeps its current value.
    Update(TopicSpecArgs),
    /// Delete a topic from the brokers of the cluster(s) and from the name servers.
    Delete {
        /// Topic.
        topic: String,
        /// Only this cluster (default: every cluster).
        #[arg(long)]
        cluster: Option<String>,
    },
    /// List every topic the name servers know.
    List,
    /// Show a topic's route: brokers (with addresses) and queues per broker.
    Route {
        /// Topic.
        topic: String,
    },
}

/// Topic settings for create/update.
#[derive(Debug, Args)]
pub struct TopicSpecArgs {
    /// Topic.
    pub topic: String,
    /// Only the brokers of this cluster (default: every cluster).
    #[arg(long, conflicts_with = "broker")]
    pub cluster: Option<String>,
    /// Only the broker at this address.
    #[arg(long, value_name = "ADDR")]
    pub broker: Option<String>,
    /// Read and write queues per broker (create default 8).
    #[arg(long)]
    pub queues: Option<i32>,
    /// Read queues per broker (overrides --queues).
    #[arg(long)]
    pub read_queues: Option<i32>,
    /// Write queues per broker (overrides --queues).
    #[arg(long)]
    pub write_queues: Option<i32>,
    /// Permission bits: 6 read+write, 4 read only, 2 write only (create default 6).
    #[arg(long)]
    pub perm: Option<i32>,
    /// Ordered topic.
    #[arg(long)]
    pub order: Option<bool>,
}

/// `ringmq cluster ...`
#[derive(Debug, Subcommand)]
pub enum ClusterCmd {
    /// Every broker of every cluster: name, id, address, version, put/get TPS, messages today.
    List,
}

/// `ringmq broker ...`
#[derive(Debug, Subcommand)]
pub enum BrokerCmd {
    /// Runtime statistics (GET_BROKER_RUNTIME_INFO) of one broker or of every broker.
    Stats {
        /// Only the broker at this address (default: every broker the name server knows).
        #[arg(long, value_name = "ADDR")]
        broker: Option<String>,
    },
}

/// `ringmq consumer ...`
#[derive(Debug, Subcommand)]
pub enum ConsumerCmd {
    /// Per queue: broker offset, consumer offset, lag, last consume time; totals; sorted by
    /// lag, largest first.
    Progress {
        /// Consumer group.
        group: String,
        /// Only this topic (default: the topics the group has offsets for; needs the group's
        /// %RETRY% topic, which exists once a consumer of the group has sent a heartbeat).
        #[arg(long)]
        topic: Option<String>,
    },
    /// The group's online clients, their subscriptions and consume settings.
    Connections {
        /// Consumer group.
        group: String,
        /// Ask the brokers of this topic (default: the group's %RETRY% topic).
        #[arg(long)]
        topic: Option<String>,
    },
}

/// `ringmq offset ...`
#[derive(Debug, Subcommand)]
pub enum OffsetCmd {
    /// Set a group's committed offsets on a topic: to the first message stored at or after a
    /// time, or to an exact offset (clamped to each queue's [min, max]). Stop the group's
    /// consumers first: running consumers keep their in-memory offsets.
    Reset {
        /// Consumer group.
        group: String,
        /// Topic.
        topic: String,
        /// Time: now, -15m, 2026-11-24T07:52:28[.123] (UTC), yyyyMMddHHmmss or epoch ms.
        #[arg(long, value_name = "TIME", required_unless_present = "to_offset")]
        to_time: Option<String>,
        /// Exact offset.
        #[arg(long, value_name = "N", conflicts_with = "to_time")]
        to_offset: Option<i64>,
        /// Only this queue id (on every broker).
        #[arg(long, value_name = "Q")]
        queue: Option<i32>,
    },
}

/// `ringmq send`
#[derive(Debug, Args)]
pub struct SendArgs {
    /// Topic.
    pub topic: String,
    /// Message body (UTF-8 text).
    pub body: String,
    /// Tag.
    #[arg(long)]
    pub tag: Option<String>,
    /// Key (repeat for several).
    #[arg(long)]
    pub key: Vec<String>,
    /// Send the message this many times.
    #[arg(long, default_value_t = 1)]
    pub count: u32,
    /// Producer group.
    #[arg(long, default_value = "ringmq-cli-producer")]
    pub group: String,
}

/// `ringmq consume`
#[derive(Debug, Args)]
pub struct ConsumeArgs {
    /// Topic.
    pub topic: String,
    /// Consumer group: start at its committed offsets (unless --from is given) and commit
    /// past the printed messages at the end. Without it nothing is committed.
    #[arg(long)]
    pub group: Option<String>,
    /// Where to start: first, last (only new messages), or a time (see offset reset).
    /// Default: the group's committed offset, else first.
    #[arg(long, value_name = "first|last|TIME")]
    pub from: Option<String>,
    /// Stop after this many messages.
    #[arg(long)]
    pub count: Option<usize>,
    /// Tag filter expression (`TagA || TagB`).
    #[arg(long, default_value = "*")]
    pub tag: String,
    /// Stop when no message arrived for this long (milliseconds).
    #[arg(long, default_value_t = 3000)]
    pub wait_ms: u64,
}

/// `ringmq message ...`
#[derive(Debug, Subcommand)]
pub enum MessageCmd {
    /// Show a message by its offset message id (the broker's msgId, as `send` prints it).
    View {
        /// Offset message id (32 hex digits for IPv4 brokers).
        msg_id: String,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // The client logs what it drops or retries (undecodable records, failed heartbeats)
    // through tracing: show warnings on stderr unless RUST_LOG says otherwise.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ringmq: error: cannot start the tokio runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ringmq: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

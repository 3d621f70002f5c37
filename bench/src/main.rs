//! `ringmq-bench`: a load generator for RocketMQ-compatible brokers (ringmq or any other),
//! speaking the protocol through `ringmq-client`.
//!
//! Modes: `produce` (send latency and throughput), `consume` (drain a topic), `e2e` (produce
//! and consume at once: send latency and end-to-end latency from the born time carried in
//! each body to the consumer's callback), `longpoll` (an idle consumer whose pulls are held by
//! the broker, one message every `--interval-ms`: the wake-up latency). A progress line goes
//! to stderr every second, the final table to stdout, and with `--json FILE` the same figures
//! as JSON.

mod body;
mod cpu;
mod produce;
mod pull;
mod push;
mod recorder;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand, ValueEnum};
use ringmq_client::admin::{Admin, TopicSpec};
use ringmq_client::{ClientError, MessageExt};

use crate::produce::{ProduceOptions, Producers};
use crate::pull::{Consumers, PullOptions, StartAt};
use crate::recorder::{human_us, now_unix_us, Recorder, Report};

/// The same allocator as the broker's (docs/decisions.md, "The allocator"): the load
/// generator's CPU per message is part of what a run measures.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Load generator for RocketMQ-compatible brokers, with HdrHistogram latency percentiles.
///
/// Prints a progress line every second on stderr and a final table on stdout; `--json FILE`
/// writes {"mode","messages","errors","seconds","msgs_per_sec","mb_per_sec",
/// "latency_us":{"p50","p90","p99","p999","p9999","max"},"e2e_latency_us":{...},
/// "broker_cpu_us_per_msg","bench_cpu_us_per_msg"} (a latency the mode does not measure is
/// null; the broker's CPU is null without --broker-pid).
#[derive(Debug, Parser)]
#[command(name = "ringmq-bench", version)]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Debug, Subcommand)]
enum Mode {
    /// Send as fast as possible (or at --rate) and report send latency (request → ack).
    Produce(Common),
    /// Consume the topic from the group's committed offset (else its first offset) and report
    /// throughput, plus end-to-end latency of messages written by ringmq-bench.
    Consume(Common),
    /// Produce and consume at once: send latency and end-to-end latency (born time in the
    /// body → consumer callback). Messages sent but not received count as errors.
    E2e(Common),
    /// Wake-up latency of long polling: a consumer idles until its pulls are held by the
    /// broker, then one message is sent every --interval-ms; reports send → receive latency.
    Longpoll(LongPoll),
}

#[derive(Debug, Clone, Args)]
struct Common {
    /// Name server address(es), `host:port[;host:port]`.
    #[arg(long, env = "NAMESRV_ADDR", default_value = "127.0.0.1:9876")]
    namesrv: String,
    /// Topic (created with --queues queues per broker on every cluster if the name server
    /// has no route for it; the bench never relies on the broker's auto-create).
    #[arg(long, default_value = "BenchTopic")]
    topic: String,
    /// Body size in bytes (bodies of 12 bytes or more carry the born time).
    #[arg(long, default_value_t = 1024)]
    size: usize,
    /// Producer clients (each its own connection).
    #[arg(long, default_value_t = 1)]
    producers: usize,
    /// Consumer clients (the topic's queues are dealt out among them).
    #[arg(long, default_value_t = 1)]
    consumers: usize,
    /// Messages per send (above 1, one SEND_BATCH_MESSAGE per batch).
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// Sends in flight per producer.
    #[arg(long, default_value_t = 64)]
    inflight: usize,
    /// Target rate in messages per second over all producers; 0 = as fast as possible. In
    /// open loop, latency is measured from each send's scheduled time
    /// (coordinated-omission correction).
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Length of the measured phase in seconds (default 10 unless --messages is given).
    #[arg(long, conflicts_with = "messages")]
    duration: Option<f64>,
    /// Stop after this many messages (sent, or received for consume).
    #[arg(long)]
    messages: Option<u64>,
    /// With --messages: give up, exiting non-zero, when the count has not moved for this many
    /// seconds (every send refused, fewer messages stored than asked for). 0: wait forever.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    stall_timeout_secs: u64,
    /// Seconds of load before measuring starts (not reported).
    #[arg(long, default_value_t = 0.0)]
    warmup: f64,
    /// Consumer group (producer group: <group>-producer).
    #[arg(long, default_value = "ringmq-bench")]
    group: String,
    /// Queues per broker when the bench creates the topic.
    #[arg(long, default_value_t = 8)]
    queues: i32,
    /// Consume side: `push` (the client's push consumer, as applications consume) or `pull`
    /// (the bench's own long-polling pull loop per queue: no rebalance, no listener hand-off).
    #[arg(long, value_enum, default_value_t = Api::Push)]
    api: Api,
    /// Send timed messages (RocketMQ 5.x `TIMER_DELIVER_MS`): each is due at its send time
    /// plus a random delay below this many ms, and its body carries the due time instead of
    /// the born time, so the e2e latency is how late it was consumed past its due time.
    /// Needs --batch 1 (a broker refuses delayed batches). 0: plain messages.
    #[arg(long, value_name = "MS", default_value_t = 0)]
    deliver_within_ms: u64,
    /// Write the final figures as JSON to this file.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Process id(s) of the broker (comma-separated, or repeated): their CPU time (user +
    /// system, from /proc) during the measured phase is reported per message, beside the
    /// bench's own.
    #[arg(long, value_name = "PID", value_delimiter = ',')]
    broker_pid: Vec<u32>,
}

/// Which client API consumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Api {
    Push,
    Pull,
}

/// The running consume side, whichever API drives it.
#[derive(Debug)]
enum ConsumeSide {
    Push(push::PushSide),
    Pull(Consumers),
}

impl ConsumeSide {
    async fn start(
        api: Api,
        opts: &PullOptions,
        recorder: &Arc<Recorder>,
    ) -> anyhow::Result<ConsumeSide> {
        let on_messages = receiver(recorder);
        Ok(match api {
            Api::Push => ConsumeSide::Push(push::PushSide::start(opts, on_messages).await?),
            Api::Pull => {
                ConsumeSide::Pull(Consumers::start(opts, Arc::clone(recorder), on_messages).await?)
            }
        })
    }

    fn queues(&self) -> usize {
        match self {
            ConsumeSide::Push(p) => p.queues,
            ConsumeSide::Pull(c) => c.queues,
        }
    }

    async fn stop(self) {
        match self {
            ConsumeSide::Push(p) => p.stop().await,
            ConsumeSide::Pull(c) => c.stop().await,
        }
    }
}

#[derive(Debug, Clone, Args)]
struct LongPoll {
    #[command(flatten)]
    common: Common,
    /// Milliseconds between two messages.
    #[arg(long, default_value_t = 100)]
    interval_ms: u64,
    /// Milliseconds the consumer idles before the first message, so its pulls are held.
    #[arg(long, default_value_t = 1000)]
    idle_ms: u64,
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
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ringmq-bench: cannot start the tokio runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.mode)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ringmq-bench: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(mode: Mode) -> anyhow::Result<()> {
    // A wrong --broker-pid is a usage error: say so before any load runs.
    let common = match &mode {
        Mode::Produce(c) | Mode::Consume(c) | Mode::E2e(c) => c,
        Mode::Longpoll(l) => &l.common,
    };
    cpu::CpuMeter::start(&common.broker_pid)?;
    let (name, report, json) = match mode {
        Mode::Produce(c) => ("produce", run_produce(&c).await?, c.json),
        Mode::Consume(c) => ("consume", run_consume(&c).await?, c.json),
        Mode::E2e(c) => ("e2e", run_e2e(&c).await?, c.json),
        Mode::Longpoll(l) => ("longpoll", run_longpoll(&l).await?, l.common.json),
    };
    debug_assert_eq!(report.mode, name);
    print!("{}", report.table());
    if let Some(path) = json {
        let text = serde_json::to_string_pretty(&report).context("encoding the report")?;
        std::fs::write(&path, text + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

impl Common {
    fn produce_options(&self, limit: Option<u64>) -> ProduceOptions {
        ProduceOptions {
            namesrv: self.namesrv.clone(),
            topic: self.topic.clone(),
            group: format!("{}-producer", self.group),
            size_bytes: self.size,
            producers: self.producers,
            batch: self.batch,
            inflight: self.inflight,
            rate: self.rate,
            limit,
            deliver_within_ms: self.deliver_within_ms,
        }
    }

    fn pull_options(&self, start_at: StartAt, consumers: usize) -> PullOptions {
        PullOptions {
            namesrv: self.namesrv.clone(),
            topic: self.topic.clone(),
            group: self.group.clone(),
            consumers,
            start_at,
            pull_batch: 32,
            suspend: Duration::from_secs(15),
        }
    }

    /// The measured phase's end condition: a duration, or a message count.
    fn stop_rule(&self) -> StopRule {
        match (self.messages, self.duration) {
            (Some(n), _) => StopRule::Messages(n),
            (None, Some(s)) => StopRule::Duration(Duration::from_secs_f64(s.max(0.0))),
            (None, None) => StopRule::Duration(Duration::from_secs(10)),
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum StopRule {
    Duration(Duration),
    Messages(u64),
}

/// Records each received message: its bytes, and its end-to-end latency if it carries a born
/// time.
fn receiver(recorder: &Arc<Recorder>) -> pull::OnMessages {
    let recorder = Arc::clone(recorder);
    Arc::new(move |msgs: &[MessageExt]| {
        let now = now_unix_us();
        let mut bytes = 0u64;
        for m in msgs {
            bytes += m.body.len() as u64;
            if let Some(born) = body::born_us(&m.body) {
                recorder.record_e2e_us(now.saturating_sub(born));
                recorder.receive_born(born);
            }
        }
        recorder.add_received(msgs.len() as u64, bytes);
    })
}

/// A recorder for a run: in warm-up if there is one, else measuring from now. Made before
/// the load starts, so nothing received early is reset away.
fn new_recorder(warmup: f64) -> anyhow::Result<Arc<Recorder>> {
    let recorder = Recorder::new()?;
    if warmup > 0.0 {
        recorder.start_warmup();
    }
    Ok(Arc::new(recorder))
}

/// Runs warm-up (the recorder is already in it, see [`new_recorder`]), then the measured
/// phase with a progress line every second, until `finished` says so or the stop rule is
/// met. Returns the measured seconds and the CPU time the phase cost.
async fn drive(
    recorder: &Arc<Recorder>,
    c: &Common,
    rule: StopRule,
    counted: impl Fn(&Recorder) -> u64,
    finished: impl Fn() -> bool,
) -> anyhow::Result<(f64, cpu::CpuUsed)> {
    let warmup = Duration::from_secs_f64(c.warmup.max(0.0));
    if !warmup.is_zero() {
        eprintln!("warming up for {:.1} s", warmup.as_secs_f64());
        tokio::time::sleep(warmup).await;
        recorder.start_measuring();
    }
    let cpu = cpu::CpuMeter::start(&c.broker_pid)?;
    let mut progress = Progress::new();
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    let mut next_line = Instant::now() + Duration::from_secs(1);
    let stall_timeout = Duration::from_secs(c.stall_timeout_secs);
    let mut last_count = counted(recorder);
    let mut last_moved_at = Instant::now();
    loop {
        tick.tick().await;
        let count = counted(recorder);
        let done = match rule {
            StopRule::Duration(d) => recorder.elapsed() >= d,
            StopRule::Messages(n) => count >= n,
        };
        if done || finished() {
            break;
        }
        if count != last_count {
            last_count = count;
            last_moved_at = Instant::now();
        } else if let StopRule::Messages(n) = rule {
            anyhow::ensure!(
                stall_timeout.is_zero() || last_moved_at.elapsed() < stall_timeout,
                "stalled: {count} of {n} messages after {:.0} s, none for {} s (--stall-timeout-secs), {} errors (the first are printed above)",
                recorder.elapsed().as_secs_f64(),
                stall_timeout.as_secs(),
                recorder.errors()
            );
        }
        if Instant::now() >= next_line {
            next_line += Duration::from_secs(1);
            eprintln!("{}", progress.line(recorder, &counted));
        }
    }
    Ok((recorder.elapsed().as_secs_f64(), cpu.stop()))
}

/// The per-second progress line.
struct Progress {
    last_at: Instant,
    last_count: u64,
    last_bytes: u64,
}

impl Progress {
    fn new() -> Self {
        Progress {
            last_at: Instant::now(),
            last_count: 0,
            last_bytes: 0,
        }
    }

    fn line(&mut self, r: &Recorder, counted: &impl Fn(&Recorder) -> u64) -> String {
        let now = Instant::now();
        let secs = now.duration_since(self.last_at).as_secs_f64().max(1e-9);
        let count = counted(r);
        let bytes = if r.messages() > 0 {
            r.bytes()
        } else {
            r.received_bytes()
        };
        let rate = count.saturating_sub(self.last_count) as f64 / secs;
        let mb = bytes.saturating_sub(self.last_bytes) as f64 / secs / (1024.0 * 1024.0);
        self.last_at = now;
        self.last_count = count;
        self.last_bytes = bytes;
        let p99 = |v: Option<u64>| v.map_or_else(|| "-".to_owned(), human_us);
        format!(
            "[{:>5.0}s] {:>10.0} msgs/s {:>8.2} MB/s  send p99 {:>9}  e2e p99 {:>9}  errors {}",
            r.elapsed().as_secs_f64(),
            rate,
            mb,
            p99(r.send_p99_us()),
            p99(r.e2e_p99_us()),
            r.errors()
        )
    }
}

/// Creates `topic` on every cluster if the name server knows no route for it, and waits
/// until the route is visible.
async fn ensure_topic(namesrv: &str, topic: &str, queues: i32) -> anyhow::Result<()> {
    let admin = Admin::connect(namesrv);
    let result = ensure_topic_with(&admin, topic, queues).await;
    admin.shutdown().await;
    result
}

async fn ensure_topic_with(admin: &Admin, topic: &str, queues: i32) -> anyhow::Result<()> {
    match admin.topic_route(topic).await {
        Ok(_) => return Ok(()),
        Err(ClientError::NoRoute { .. }) => {}
        Err(e) => return Err(anyhow::Error::new(e).context(format!("route of topic {topic}"))),
    }
    let info = admin.cluster_info().await.context("cluster list")?;
    anyhow::ensure!(
        !info.cluster_addr_table.is_empty(),
        "the name server knows no cluster to create topic {topic} on"
    );
    for cluster in info.cluster_addr_table.keys() {
        admin
            .create_topic(cluster, &TopicSpec::new(topic, queues))
            .await
            .with_context(|| format!("creating topic {topic} on cluster {cluster}"))?;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if admin.topic_route(topic).await.is_ok() {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "topic {topic} was created but its route did not appear within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn run_produce(c: &Common) -> anyhow::Result<Report> {
    ensure_topic(&c.namesrv, &c.topic, c.queues).await?;
    let recorder = new_recorder(c.warmup)?;
    let rule = c.stop_rule();
    let limit = match rule {
        StopRule::Messages(n) => Some(n),
        StopRule::Duration(_) => None,
    };
    let producers = Producers::start(&c.produce_options(limit), Arc::clone(&recorder)).await?;
    let (seconds, cpu) = drive(&recorder, c, rule, Recorder::messages, || {
        producers.finished()
    })
    .await?;
    producers.stop().await?;
    // With --messages the run ends when the last ack is in.
    let seconds = match rule {
        StopRule::Messages(_) => recorder.elapsed().as_secs_f64(),
        StopRule::Duration(_) => seconds,
    };
    Ok(recorder.report("produce", seconds).with_cpu(cpu))
}

async fn run_consume(c: &Common) -> anyhow::Result<Report> {
    ensure_topic(&c.namesrv, &c.topic, c.queues).await?;
    let recorder = new_recorder(c.warmup)?;
    let opts = c.pull_options(StartAt::CommittedElseFirst, c.consumers);
    let consumers = ConsumeSide::start(c.api, &opts, &recorder).await?;
    let (seconds, cpu) = drive(&recorder, c, c.stop_rule(), Recorder::received, || false).await?;
    consumers.stop().await;
    Ok(recorder.report_received("consume", seconds).with_cpu(cpu))
}

/// After the producers stop, how long consumers may take to receive what was sent (bodies
/// of fewer than 12 bytes carry no born time and are not checked).
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

async fn drain(recorder: &Recorder, c: &Common) {
    // Timed messages sent last are due up to --deliver-within-ms later.
    let deadline = Instant::now() + DRAIN_TIMEOUT + Duration::from_millis(c.deliver_within_ms);
    while recorder.lost() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn run_e2e(c: &Common) -> anyhow::Result<Report> {
    ensure_topic(&c.namesrv, &c.topic, c.queues).await?;
    let recorder = new_recorder(c.warmup)?;
    let opts = c.pull_options(StartAt::Last, c.consumers);
    let consumers = ConsumeSide::start(c.api, &opts, &recorder).await?;
    let rule = c.stop_rule();
    let limit = match rule {
        StopRule::Messages(n) => Some(n),
        StopRule::Duration(_) => None,
    };
    let producers = Producers::start(&c.produce_options(limit), Arc::clone(&recorder)).await?;
    let (seconds, cpu) = drive(&recorder, c, rule, Recorder::messages, || {
        producers.finished()
    })
    .await?;
    producers.stop().await?;
    let seconds = match rule {
        StopRule::Messages(_) => recorder.elapsed().as_secs_f64(),
        StopRule::Duration(_) => seconds,
    };
    drain(&recorder, c).await;
    consumers.stop().await;
    Ok(recorder.report_with_lost("e2e", seconds).with_cpu(cpu))
}

async fn run_longpoll(l: &LongPoll) -> anyhow::Result<Report> {
    let c = &l.common;
    ensure_topic(&c.namesrv, &c.topic, c.queues).await?;
    let recorder = new_recorder(c.warmup)?;
    let consumers = ConsumeSide::start(c.api, &c.pull_options(StartAt::Last, 1), &recorder).await?;
    eprintln!(
        "{} queues pulled; idling {} ms so the pulls are held",
        consumers.queues(),
        l.idle_ms
    );
    tokio::time::sleep(Duration::from_millis(l.idle_ms)).await;
    // One sync send at a time, each at its own tick: the consumer is idle between messages.
    let mut opts = c.produce_options(None);
    opts.producers = 1;
    opts.inflight = 1;
    opts.batch = 1;
    opts.rate = 1000 / l.interval_ms.max(1);
    let rule = match (c.messages, c.duration) {
        (Some(n), _) => StopRule::Messages(n),
        (None, Some(s)) => StopRule::Duration(Duration::from_secs_f64(s.max(0.0))),
        (None, None) => StopRule::Messages(100),
    };
    opts.limit = match rule {
        StopRule::Messages(n) => Some(n),
        StopRule::Duration(_) => None,
    };
    let interval = Duration::from_millis(l.interval_ms.max(1));
    let recorder_for_sender = Arc::clone(&recorder);
    let sender = tokio::spawn(longpoll_sender(opts, interval, recorder_for_sender));
    let (seconds, cpu) = drive(&recorder, c, rule, Recorder::messages, || {
        sender.is_finished()
    })
    .await?;
    sender.abort();
    let _ = sender.await;
    drain(&recorder, c).await;
    consumers.stop().await;
    Ok(recorder.report_with_lost("longpoll", seconds).with_cpu(cpu))
}

/// Sends one message per `interval` with a sync send (no pipelining: each message must wake a
/// held pull on its own).
async fn longpoll_sender(
    opts: ProduceOptions,
    interval: Duration,
    recorder: Arc<Recorder>,
) -> anyhow::Result<()> {
    let mut config = ringmq_client::ProducerConfig::new(&opts.namesrv, opts.group.clone());
    config.compress_over_bytes = usize::MAX;
    let producer = ringmq_client::Producer::start(config).await?;
    let template = body::BodyTemplate::new(opts.size_bytes);
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut sent = 0u64;
    loop {
        tick.tick().await;
        if opts
            .limit
            .is_some_and(|n| recorder.is_measuring() && sent >= n)
        {
            break;
        }
        let started = Instant::now();
        let born_us = now_unix_us();
        let msg = ringmq_client::Message::new(opts.topic.clone(), template.make(born_us));
        match producer.send(msg).await {
            Ok(_) => {
                recorder.record_send(started.elapsed());
                recorder.add_messages(1, opts.size_bytes as u64);
                if opts.size_bytes >= body::STAMP_BYTES {
                    recorder.ack_born(1, born_us);
                }
                if recorder.is_measuring() {
                    sent += 1;
                }
            }
            Err(e) => {
                recorder.add_errors(1);
                eprintln!("send: {:#}", anyhow::Error::new(e));
            }
        }
    }
    producer.shutdown().await;
    Ok(())
}

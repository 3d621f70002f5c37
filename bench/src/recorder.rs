//! What a run measured: message, byte and error counters and two latency histograms (send:
//! request → ack; end-to-end: born timestamp in the body → consumer callback), shared by every
//! producer and consumer task of the run.
//!
//! Invariants: latencies are recorded in microseconds, clamped into the histogram's range
//! (1 µs .. [`MAX_LATENCY_US`]) so a recording never fails; [`Recorder::start_measuring`]
//! clears everything recorded during warm-up, so the report covers the measured phase only.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;
use serde::Serialize;

/// Largest latency a histogram holds (one hour); longer ones are recorded as this.
pub const MAX_LATENCY_US: u64 = 3_600_000_000;

/// Microseconds since the Unix epoch (the clock the born timestamp in a body uses).
pub fn now_unix_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn new_histogram() -> Result<Histogram<u64>, hdrhistogram::CreationError> {
    // 3 significant digits over 1 µs .. 1 h.
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3)
}

/// Counters and histograms of one run.
#[derive(Debug)]
pub struct Recorder {
    messages: AtomicU64,
    bytes: AtomicU64,
    errors: AtomicU64,
    received: AtomicU64,
    received_bytes: AtomicU64,
    measure_start_us: AtomicU64,
    sent_born_measuring: AtomicU64,
    received_born_measuring: AtomicU64,
    send_us: Mutex<Histogram<u64>>,
    e2e_us: Mutex<Histogram<u64>>,
    measuring: AtomicBool,
    started: Mutex<Instant>,
}

impl Recorder {
    /// An empty recorder, measuring from now (call [`Recorder::start_measuring`] after a warm-up).
    pub fn new() -> Result<Self, hdrhistogram::CreationError> {
        Ok(Recorder {
            messages: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            received: AtomicU64::new(0),
            received_bytes: AtomicU64::new(0),
            measure_start_us: AtomicU64::new(now_unix_us()),
            sent_born_measuring: AtomicU64::new(0),
            received_born_measuring: AtomicU64::new(0),
            send_us: Mutex::new(new_histogram()?),
            e2e_us: Mutex::new(new_histogram()?),
            measuring: AtomicBool::new(true),
            started: Mutex::new(Instant::now()),
        })
    }

    /// Marks the warm-up as running: nothing recorded from now on counts until
    /// [`Recorder::start_measuring`].
    pub fn start_warmup(&self) {
        self.measuring.store(false, Ordering::Release);
    }

    /// Ends the warm-up: clears what was recorded and restarts the clock.
    pub fn start_measuring(&self) {
        self.messages.store(0, Ordering::Release);
        self.bytes.store(0, Ordering::Release);
        self.errors.store(0, Ordering::Release);
        self.received.store(0, Ordering::Release);
        self.received_bytes.store(0, Ordering::Release);
        self.sent_born_measuring.store(0, Ordering::Release);
        self.received_born_measuring.store(0, Ordering::Release);
        self.measure_start_us
            .store(now_unix_us(), Ordering::Release);
        if let Ok(mut h) = self.send_us.lock() {
            h.reset();
        }
        if let Ok(mut h) = self.e2e_us.lock() {
            h.reset();
        }
        if let Ok(mut started) = self.started.lock() {
            *started = Instant::now();
        }
        self.measuring.store(true, Ordering::Release);
    }

    /// Is the measured phase running (warm-up over)?
    pub fn is_measuring(&self) -> bool {
        self.measuring.load(Ordering::Acquire)
    }

    /// Time since measuring started.
    pub fn elapsed(&self) -> Duration {
        self.started.lock().map(|s| s.elapsed()).unwrap_or_default()
    }

    /// `count` messages of `bytes` bytes in total were acknowledged (or consumed).
    pub fn add_messages(&self, count: u64, bytes: u64) {
        self.messages.fetch_add(count, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// A consumer received `count` messages of `bytes` body bytes in total.
    pub fn add_received(&self, count: u64, bytes: u64) {
        self.received.fetch_add(count, Ordering::Relaxed);
        self.received_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Messages received so far.
    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    /// Body bytes received so far.
    pub fn received_bytes(&self) -> u64 {
        self.received_bytes.load(Ordering::Relaxed)
    }

    /// `count` acknowledged messages born at `born_us`: counted for the loss check only if
    /// born in the measured phase (see [`Recorder::lost`]).
    pub fn ack_born(&self, count: u64, born_us: u64) {
        if born_us >= self.measure_start_us.load(Ordering::Acquire) {
            self.sent_born_measuring.fetch_add(count, Ordering::Relaxed);
        }
    }

    /// A received message born at `born_us` (same rule as [`Recorder::ack_born`]).
    pub fn receive_born(&self, born_us: u64) {
        if born_us >= self.measure_start_us.load(Ordering::Acquire) {
            self.received_born_measuring.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Acknowledged messages born in the measured phase that no consumer has received.
    /// Keyed by birth, not by when the ack or the receipt was counted: a message can reach
    /// its consumer before its ack reaches the producer, so counting acks and receipts from
    /// the end of the warm-up would see messages straddling it as lost.
    pub fn lost(&self) -> u64 {
        let sent = self.sent_born_measuring.load(Ordering::Relaxed);
        let received = self.received_born_measuring.load(Ordering::Relaxed);
        sent.saturating_sub(received)
    }

    /// `count` messages failed.
    pub fn add_errors(&self, count: u64) {
        self.errors.fetch_add(count, Ordering::Relaxed);
    }

    /// One send's latency (request → ack, or intended start → ack in open loop).
    pub fn record_send(&self, latency: Duration) {
        record(&self.send_us, latency_us(latency), 1);
    }

    /// One message's end-to-end latency.
    pub fn record_e2e_us(&self, latency_us: u64) {
        record(&self.e2e_us, latency_us, 1);
    }

    /// Messages counted so far.
    pub fn messages(&self) -> u64 {
        self.messages.load(Ordering::Relaxed)
    }

    /// Bytes counted so far.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Errors counted so far.
    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    /// p99 of the send histogram so far, if it holds anything.
    pub fn send_p99_us(&self) -> Option<u64> {
        quantile(&self.send_us, 0.99)
    }

    /// p99 of the end-to-end histogram so far, if it holds anything.
    pub fn e2e_p99_us(&self) -> Option<u64> {
        quantile(&self.e2e_us, 0.99)
    }

    /// The final report of a producing run: messages and bytes acknowledged.
    pub fn report(&self, mode: &str, seconds: f64) -> Report {
        self.build_report(mode, seconds, self.messages(), self.bytes(), self.errors())
    }

    /// The final report of a consuming run: messages and bytes received.
    pub fn report_received(&self, mode: &str, seconds: f64) -> Report {
        let (messages, bytes) = (self.received(), self.received_bytes());
        self.build_report(mode, seconds, messages, bytes, self.errors())
    }

    /// The final report of a run that both sends and receives: messages acknowledged, and
    /// every acknowledged message not received counted as an error (see [`Recorder::lost`]).
    pub fn report_with_lost(&self, mode: &str, seconds: f64) -> Report {
        let lost = self.lost();
        let errors = self.errors().saturating_add(lost);
        self.build_report(mode, seconds, self.messages(), self.bytes(), errors)
    }

    fn build_report(
        &self,
        mode: &str,
        seconds: f64,
        messages: u64,
        bytes: u64,
        errors: u64,
    ) -> Report {
        let seconds = if seconds > 0.0 { seconds } else { f64::EPSILON };
        Report {
            mode: mode.to_owned(),
            messages,
            errors,
            seconds,
            msgs_per_sec: messages as f64 / seconds,
            mb_per_sec: bytes as f64 / seconds / (1024.0 * 1024.0),
            latency_us: percentiles(&self.send_us),
            e2e_latency_us: percentiles(&self.e2e_us),
            broker_cpu_us_per_msg: None,
            bench_cpu_us_per_msg: None,
        }
    }
}

fn latency_us(latency: Duration) -> u64 {
    u64::try_from(latency.as_micros()).unwrap_or(u64::MAX)
}

fn record(histogram: &Mutex<Histogram<u64>>, value_us: u64, count: u64) {
    let value = value_us.clamp(1, MAX_LATENCY_US);
    if let Ok(mut h) = histogram.lock() {
        // In range by the clamp above; saturating so a recording never fails.
        h.saturating_record_n(value, count);
    }
}

fn quantile(histogram: &Mutex<Histogram<u64>>, q: f64) -> Option<u64> {
    let h = histogram.lock().ok()?;
    if h.is_empty() {
        None
    } else {
        Some(h.value_at_quantile(q))
    }
}

fn percentiles(histogram: &Mutex<Histogram<u64>>) -> Option<Percentiles> {
    let h = histogram.lock().ok()?;
    if h.is_empty() {
        return None;
    }
    Some(Percentiles {
        p50: h.value_at_quantile(0.50),
        p90: h.value_at_quantile(0.90),
        p99: h.value_at_quantile(0.99),
        p999: h.value_at_quantile(0.999),
        p9999: h.value_at_quantile(0.9999),
        max: h.max(),
    })
}

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Percentiles {
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// 99.99th percentile.
    pub p9999: u64,
    /// Largest value recorded.
    pub max: u64,
}

/// The result of a run, as printed and as written by `--json` (a histogram with no samples
/// is `null`: produce has no end-to-end latency, consume and longpoll no send latency).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// `produce`, `consume`, `e2e` or `longpoll`.
    pub mode: String,
    /// Messages acknowledged (produce, e2e) or received (consume, longpoll).
    pub messages: u64,
    /// Failed sends, plus (e2e, longpoll) messages sent but never received.
    pub errors: u64,
    /// Length of the measured phase.
    pub seconds: f64,
    /// `messages / seconds`.
    pub msgs_per_sec: f64,
    /// Body MiB per second.
    pub mb_per_sec: f64,
    /// Send latency (request → ack).
    pub latency_us: Option<Percentiles>,
    /// End-to-end latency (born timestamp → consumer callback).
    pub e2e_latency_us: Option<Percentiles>,
    /// Broker CPU time (user + system, every `--broker-pid`) per message in the measured
    /// phase; null without `--broker-pid`.
    pub broker_cpu_us_per_msg: Option<f64>,
    /// The bench's own CPU time per message in the measured phase.
    pub bench_cpu_us_per_msg: Option<f64>,
}

/// `1234` µs as `1.23 ms`, `56` as `56 µs`.
pub fn human_us(us: u64) -> String {
    if us >= 1_000_000 {
        format!("{:.2} s", us as f64 / 1e6)
    } else if us >= 1_000 {
        format!("{:.2} ms", us as f64 / 1e3)
    } else {
        format!("{us} µs")
    }
}

impl Report {
    /// Adds the CPU time the measured phase cost, per message.
    pub fn with_cpu(mut self, cpu: crate::cpu::CpuUsed) -> Report {
        let per_message = |used: Option<Duration>| {
            used.filter(|_| self.messages > 0)
                .map(|used| used.as_secs_f64() * 1e6 / self.messages as f64)
        };
        self.broker_cpu_us_per_msg = per_message(cpu.broker);
        self.bench_cpu_us_per_msg = per_message(cpu.bench);
        self
    }

    /// The human table printed at the end of a run.
    pub fn table(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let _ = writeln!(out, "mode       {}", self.mode);
        let _ = writeln!(out, "messages   {}", self.messages);
        let _ = writeln!(out, "errors     {}", self.errors);
        let _ = writeln!(out, "seconds    {:.2}", self.seconds);
        let _ = writeln!(out, "msgs/s     {:.1}", self.msgs_per_sec);
        let _ = writeln!(out, "MB/s       {:.2}", self.mb_per_sec);
        for (name, value) in [
            ("broker CPU", self.broker_cpu_us_per_msg),
            ("bench CPU ", self.bench_cpu_us_per_msg),
        ] {
            if let Some(us) = value {
                let _ = writeln!(out, "{name} {us:.2} µs/msg");
            }
        }
        let _ = writeln!(
            out,
            "{:<12} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}",
            "latency µs", "p50", "p90", "p99", "p99.9", "p99.99", "max"
        );
        for (name, p) in [("send", self.latency_us), ("e2e", self.e2e_latency_us)] {
            if let Some(p) = p {
                let _ = writeln!(
                    out,
                    "{:<12} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}",
                    name, p.p50, p.p90, p.p99, p.p999, p.p9999, p.max
                );
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_samples_are_dropped_when_measuring_starts() {
        let r = Recorder::new().unwrap();
        r.start_warmup();
        r.add_messages(10, 10_240);
        r.record_send(Duration::from_millis(500));
        r.start_measuring();
        r.add_messages(1, 1024);
        r.record_send(Duration::from_micros(100));
        let report = r.report("produce", 1.0);
        assert_eq!(report.messages, 1);
        let p = report.latency_us.expect("one send recorded");
        assert!(p.max < 200, "warm-up latency leaked into the report: {p:?}");
    }

    #[test]
    fn empty_histogram_reports_null_in_json() {
        let r = Recorder::new().unwrap();
        r.record_send(Duration::from_micros(10));
        let json = serde_json::to_value(r.report("produce", 2.0)).expect("serialize");
        assert!(json["e2e_latency_us"].is_null());
        assert_eq!(json["latency_us"]["p50"].as_u64().map(|v| v / 10), Some(1));
    }

    #[test]
    fn latency_beyond_the_range_is_clamped_not_lost() {
        let r = Recorder::new().unwrap();
        r.record_e2e_us(u64::MAX);
        r.record_e2e_us(0);
        let p = r.report("e2e", 1.0).e2e_latency_us.unwrap();
        assert!(p.max >= MAX_LATENCY_US / 100 * 99, "{p:?}");
        assert!(p.p50 <= 1, "{p:?}");
    }

    #[test]
    fn acknowledged_messages_never_received_count_as_errors() {
        let r = Recorder::new().unwrap();
        let born = now_unix_us();
        r.add_messages(10, 10_240);
        r.ack_born(10, born);
        r.add_received(7, 7_168);
        for _ in 0..7 {
            r.receive_born(born);
        }
        r.add_errors(1);
        assert_eq!(r.report_with_lost("e2e", 1.0).errors, 4);
        assert_eq!(r.report_received("consume", 1.0).messages, 7);
    }

    #[test]
    fn a_message_received_before_warmup_ends_and_acked_after_is_not_lost() {
        let r = Recorder::new().unwrap();
        r.start_warmup();
        let born_in_warmup = now_unix_us();
        r.receive_born(born_in_warmup);
        std::thread::sleep(Duration::from_millis(2));
        r.start_measuring();
        r.ack_born(1, born_in_warmup);
        assert_eq!(r.lost(), 0);
    }

    #[test]
    fn rates_divide_by_the_measured_seconds() {
        let r = Recorder::new().unwrap();
        r.add_messages(2048, 2 * 1024 * 1024);
        let report = r.report("produce", 2.0);
        assert!((report.msgs_per_sec - 1024.0).abs() < 1e-9);
        assert!((report.mb_per_sec - 1.0).abs() < 1e-9);
    }
}

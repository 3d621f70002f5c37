//! The produce side of the bench: `producers` clients, each keeping up to `inflight` sends
//! (of `batch` messages each) outstanding.
//!
//! Closed loop (`rate` 0): a new send starts as soon as an in-flight slot frees up; latency is
//! request → ack. Open loop (`rate` > 0): send k of a producer is *scheduled* at
//! `start + k × batch / (rate / producers)`, and its latency is measured from that scheduled
//! time, not from when it actually left. A broker that stalls therefore charges the stall to
//! every send that should have gone out meanwhile (coordinated-omission correction), instead
//! of the stall silently slowing the load down.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use ringmq_client::{Message, Producer, ProducerConfig};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::body::BodyTemplate;
use crate::recorder::{now_unix_us, Recorder};

/// The produce side's settings.
#[derive(Debug, Clone)]
pub struct ProduceOptions {
    /// Name servers.
    pub namesrv: String,
    /// Topic.
    pub topic: String,
    /// Producer group.
    pub group: String,
    /// Body size.
    pub size_bytes: usize,
    /// Number of clients (connections).
    pub producers: usize,
    /// Messages per send (SEND_BATCH_MESSAGE above 1).
    pub batch: usize,
    /// Sends in flight per producer.
    pub inflight: usize,
    /// Total target rate in messages per second; 0 = as fast as possible.
    pub rate: u64,
    /// Stop after this many messages are issued in the measured phase.
    pub limit: Option<u64>,
    /// Timed messages due within this many ms of their send (0: plain messages).
    pub deliver_within_ms: u64,
}

/// Running producers; stop them with [`Producers::stop`].
#[derive(Debug)]
pub struct Producers {
    stop_tx: watch::Sender<bool>,
    tasks: Vec<JoinHandle<anyhow::Result<()>>>,
}

/// Counts messages issued in the measured phase against `--messages`.
#[derive(Debug, Default)]
pub struct Tickets {
    issued: AtomicU64,
}

impl Tickets {
    /// Takes `n` tickets; false once `limit` is reached. Unlimited while warming up.
    fn take(&self, n: u64, limit: Option<u64>, measuring: bool) -> bool {
        match (limit, measuring) {
            (Some(limit), true) => self.issued.fetch_add(n, Ordering::Relaxed) < limit,
            _ => true,
        }
    }
}

impl Producers {
    /// Starts every producer (their routes are fetched by the first send).
    pub async fn start(opts: &ProduceOptions, recorder: Arc<Recorder>) -> anyhow::Result<Self> {
        if opts.deliver_within_ms > 0 && opts.batch > 1 {
            anyhow::bail!("--deliver-within-ms sends timed messages one by one: use --batch 1 (brokers refuse delayed batches)");
        }
        let (stop_tx, stop_rx) = watch::channel(false);
        let producers = opts.producers.max(1);
        let tickets = Arc::new(Tickets::default());
        let template = BodyTemplate::new(opts.size_bytes);
        let mut tasks = Vec::with_capacity(producers);
        for _ in 0..producers {
            let mut config = ProducerConfig::new(&opts.namesrv, opts.group.clone());
            // The bench measures the bytes it asks for: no compression of large bodies.
            config.compress_over_bytes = usize::MAX;
            let producer = Producer::start(config)
                .await
                .context("starting a producer")?;
            let one = OneProducer {
                producer,
                opts: opts.clone(),
                interval: send_interval(opts.rate, producers, opts.batch),
                template: template.clone(),
                tickets: Arc::clone(&tickets),
            };
            let recorder = Arc::clone(&recorder);
            let stop = stop_rx.clone();
            tasks.push(tokio::spawn(async move { one.run(recorder, stop).await }));
        }
        Ok(Producers { stop_tx, tasks })
    }

    /// Have all producers finished by themselves (`--messages` reached)?
    pub fn finished(&self) -> bool {
        self.tasks.iter().all(JoinHandle::is_finished)
    }

    /// Stops issuing, waits for the sends in flight, shuts the producers down.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop_tx.send(true);
        for task in self.tasks {
            task.await.context("producer task")??;
        }
        Ok(())
    }
}

/// Time between two sends of one producer in open loop; `None` in closed loop.
pub fn send_interval(rate: u64, producers: usize, batch: usize) -> Option<Duration> {
    if rate == 0 {
        return None;
    }
    let per_producer = rate as f64 / producers.max(1) as f64;
    Some(Duration::from_secs_f64(batch.max(1) as f64 / per_producer))
}

/// tokio's timer wakes a sleeper up to a millisecond after its deadline; a send that leaves
/// less than this after its schedule is measured from when it left, so the timer's slack is
/// not charged to the broker. Later than this, the producer is really behind (a stall, or
/// all in-flight slots taken) and the send is measured from its schedule.
pub const TIMER_SLACK: Duration = Duration::from_millis(1);

/// The instant a send's latency is measured from.
pub fn measure_from(scheduled: Option<Instant>, now: Instant) -> Instant {
    match scheduled {
        Some(at) if now.saturating_duration_since(at) > TIMER_SLACK => at,
        _ => now,
    }
}

struct OneProducer {
    producer: Producer,
    opts: ProduceOptions,
    interval: Option<Duration>,
    template: BodyTemplate,
    tickets: Arc<Tickets>,
}

impl OneProducer {
    async fn run(
        self,
        recorder: Arc<Recorder>,
        mut stop: watch::Receiver<bool>,
    ) -> anyhow::Result<()> {
        let inflight = self.opts.inflight.max(1);
        let batch = self.opts.batch.max(1);
        let slots = Arc::new(Semaphore::new(inflight));
        let errors_logged = Arc::new(AtomicU64::new(0));
        let start = Instant::now();
        let mut k: u32 = 0;
        let mut seed = now_unix_us() | 1;
        loop {
            if *stop.borrow() {
                break;
            }
            let scheduled = self.interval.map(|every| start + every.saturating_mul(k));
            if let Some(at) = scheduled {
                tokio::select! {
                    _ = tokio::time::sleep_until(at) => {}
                    _ = stop.changed() => break,
                }
            }
            if !self
                .tickets
                .take(batch as u64, self.opts.limit, recorder.is_measuring())
            {
                break;
            }
            let slot = tokio::select! {
                s = Arc::clone(&slots).acquire_owned() => s.context("in-flight slots closed")?,
                _ = stop.changed() => break,
            };
            let started = measure_from(scheduled, Instant::now());
            let producer = self.producer.clone();
            // A timed message carries its due time where a plain one carries its born time:
            // the consumer side then measures lateness past due.
            let (born_us, timer) = match self.opts.deliver_within_ms {
                0 => (now_unix_us(), None),
                within_ms => {
                    let due_us = now_unix_us() + random_below(&mut seed, within_ms * 1000);
                    (due_us, Some((due_us / 1000).to_string()))
                }
            };
            let msgs: Vec<Message> = (0..batch)
                .map(|_| {
                    let msg = Message::new(self.opts.topic.clone(), self.template.make(born_us));
                    match &timer {
                        Some(due_ms) => msg.with_property("TIMER_DELIVER_MS", due_ms.clone()),
                        None => msg,
                    }
                })
                .collect();
            let recorder = Arc::clone(&recorder);
            let errors_logged = Arc::clone(&errors_logged);
            let bytes = (batch * self.opts.size_bytes) as u64;
            // Bodies too small for a born time cannot be matched with their receipt.
            let stamped = self.opts.size_bytes >= crate::body::STAMP_BYTES;
            tokio::spawn(async move {
                let result = if msgs.len() == 1 {
                    match msgs.into_iter().next() {
                        Some(msg) => producer.send(msg).await.map(|_| ()),
                        None => Ok(()),
                    }
                } else {
                    producer.send_batch(msgs).await.map(|_| ())
                };
                match result {
                    Ok(()) => {
                        recorder.record_send(started.elapsed());
                        recorder.add_messages(batch as u64, bytes);
                        if stamped {
                            recorder.ack_born(batch as u64, born_us);
                        }
                    }
                    Err(e) => {
                        recorder.add_errors(batch as u64);
                        if errors_logged.fetch_add(1, Ordering::Relaxed) < 3 {
                            eprintln!("send: {:#}", anyhow::Error::new(e));
                        }
                    }
                }
                drop(slot);
            });
            k = k.saturating_add(1);
        }
        // Wait for every send in flight: all slots free again.
        let all = u32::try_from(inflight).unwrap_or(u32::MAX);
        let _drained = slots.acquire_many(all).await.context("draining sends")?;
        self.producer.shutdown().await;
        Ok(())
    }
}

/// A pseudo-random number below `bound` (xorshift; spreading due times needs no more).
fn random_below(seed: &mut u64, bound: u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed % bound.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closed_loop_has_no_schedule() {
        assert_eq!(send_interval(0, 4, 1), None);
    }

    #[test]
    fn open_loop_spreads_the_rate_over_producers_and_batches() {
        // 1000 msgs/s over 2 producers in batches of 10: each producer sends 50 batches/s.
        assert_eq!(send_interval(1000, 2, 10), Some(Duration::from_millis(20)));
    }

    #[test]
    fn a_send_far_behind_its_schedule_is_measured_from_the_schedule() {
        let at = Instant::now();
        let now = at + Duration::from_millis(50);
        assert_eq!(measure_from(Some(at), now), at);
    }

    #[test]
    fn timer_slack_is_not_charged_to_the_broker() {
        let at = Instant::now();
        let now = at + Duration::from_micros(400);
        assert_eq!(measure_from(Some(at), now), now);
        assert_eq!(measure_from(None, now), now);
    }

    #[test]
    fn tickets_stop_at_the_limit_only_when_measuring() {
        let t = Tickets::default();
        assert!(t.take(5, Some(5), false), "warm-up is unlimited");
        assert!(t.take(5, Some(5), true));
        assert!(!t.take(1, Some(5), true));
    }
}

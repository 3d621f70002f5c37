//! Shared by the compatibility tests: run the real `ringmq-server` binary (ringmq-testkit), and
//! wire up `rocketmq-client-rust` 1.0.0 (runtime, producer, consumers)
//! against its embedded name server.
//!
//! Each test binary holds exactly one test: the client installs process-global telemetry, so
//! one process per test keeps the tests independent of each other.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rocketmq_client_rust::{
    ClientConfig, ClientRuntime, ClientRuntimeConfig, ConsumeConcurrentlyContext,
    ConsumeConcurrentlyStatus, DefaultMQProducer, DefaultMQPushConsumer, MQPushConsumer,
};
use rocketmq_model::common::consumer::consume_from_where::ConsumeFromWhere;
use rocketmq_model::common::message::message_ext::MessageExt;
use rocketmq_model::common::message::message_single::Message;
use rocketmq_model::result::{SendResult, SendStatus};
use rocketmq_protocol::protocol::heartbeat::message_model::MessageModel;
use rocketmq_runtime::{RuntimeConfig, RuntimeOwner};

/// A running broker with its embedded name server (started through `ringmq-testkit`:
/// port 0, temporary store, small segments, registration awaited); killed when dropped.
pub struct Broker(ringmq_testkit::Broker);

impl Broker {
    pub fn start() -> Broker {
        Broker(ringmq_testkit::Broker::start(&[]))
    }

    /// The name server address in the `host:port` form the client expects.
    pub fn namesrv(&self) -> String {
        self.0.namesrv().to_string()
    }
}

/// The client's runtime wiring (as in the crate's `examples/support/mod.rs`).
pub struct ClientEnv {
    owner: RuntimeOwner,
    runtime: Arc<ClientRuntime>,
    telemetry: rocketmq_observability::TelemetryRuntimeGuard,
}

impl ClientEnv {
    /// Builds the runtime. The client logs to stdout; its filter is `COMPAT_CLIENT_LOG`
    /// (default `warn`) since it ignores `RUST_LOG`.
    pub fn new(scope: &str) -> ClientEnv {
        let mut config = RuntimeConfig {
            thread_name: format!("compat-{scope}"),
            ..Default::default()
        };
        // On 2 cores the default blocking lanes queue at most 8-32 tasks; the push consumer
        // runs its listener there and, with thousands of messages pulled at once, is refused
        // admission ("runtime.capacity.exhausted") and falls back to redelivery. Deeper
        // queues keep the client from tripping over itself.
        for lane in [
            &mut config.blocking_lane_policies.storage_io,
            &mut config.blocking_lane_policies.metadata_io,
            &mut config.blocking_lane_policies.cpu_crypto,
        ] {
            lane.max_queue_depth = 65_536;
        }
        let owner = RuntimeOwner::plan(config)
            .expect("valid runtime configuration")
            .build()
            .expect("client runtime owner");
        let mut telemetry_config = rocketmq_observability::TelemetryBootstrapConfig::default();
        telemetry_config.logging.filter =
            std::env::var("COMPAT_CLIENT_LOG").unwrap_or_else(|_| "warn".to_owned());
        let telemetry = rocketmq_observability::install_global(&telemetry_config)
            .expect("client telemetry installs");
        let runtime = ClientRuntime::try_new(
            owner.root_context().component("client"),
            ClientRuntimeConfig::default(),
            telemetry.handle(),
        )
        .expect("client runtime");
        ClientEnv {
            owner,
            runtime,
            telemetry,
        }
    }

    pub fn runtime(&self) -> Arc<ClientRuntime> {
        Arc::clone(&self.runtime)
    }

    /// Shuts the client runtime down, bounded in time; health reports are not asserted
    /// (they are about the client, not the broker).
    pub async fn shutdown(self) {
        let _ = tokio::time::timeout(Duration::from_secs(10), async {
            let _ = self.runtime.shutdown().await;
            let _ = self.owner.shutdown_tasks().await;
        })
        .await;
        let _ = self.owner.shutdown_background();
        let _ = self.telemetry.shutdown();
    }
}

/// A started producer of the given group.
pub async fn start_producer(env: &ClientEnv, broker: &Broker, group: &str) -> DefaultMQProducer {
    let mut producer = DefaultMQProducer::builder(env.runtime())
        .producer_group(group.to_owned())
        .name_server_addr(broker.namesrv())
        .send_msg_timeout(10_000)
        .build();
    producer.start().await.expect("producer starts");
    producer
}

/// A message with the given topic, tag, key and UTF-8 body.
pub fn message(topic: &str, tag: &str, key: &str, body: &str) -> Message {
    Message::builder()
        .topic(topic)
        .tags(tag)
        .key(key)
        .body_slice(body.as_bytes())
        .build_unchecked()
}

/// Sends each message synchronously from `concurrency` tasks (each task one send in flight),
/// so at most `concurrency` requests are pending — far below the client's 512 limit.
/// Every send must return SEND_OK; returns the results in message order.
pub async fn send_all(
    producer: &DefaultMQProducer,
    messages: Vec<Message>,
    concurrency: usize,
) -> Vec<SendResult> {
    let total = messages.len();
    let queue: Arc<Mutex<Vec<(usize, Message)>>> =
        Arc::new(Mutex::new(messages.into_iter().enumerate().rev().collect()));
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let producer = producer.clone();
        let queue = Arc::clone(&queue);
        tasks.push(tokio::spawn(async move {
            let mut done = Vec::new();
            loop {
                let next = queue.lock().unwrap().pop();
                let Some((index, message)) = next else { break };
                let result = producer
                    .send_with_timeout(message, 10_000)
                    .await
                    .unwrap_or_else(|e| panic!("send #{index} failed: {}", error_chain(&e)))
                    .unwrap_or_else(|| panic!("send #{index} returned no result"));
                assert_eq!(
                    result.send_status,
                    SendStatus::SendOk,
                    "send #{index} status: {result:?}"
                );
                done.push((index, result));
            }
            done
        }));
    }
    let mut results: Vec<Option<SendResult>> = (0..total).map(|_| None).collect();
    for task in tasks {
        for (index, result) in task.await.expect("send task") {
            results[index] = Some(result);
        }
    }
    results
        .into_iter()
        .enumerate()
        .map(|(i, r)| r.unwrap_or_else(|| panic!("message #{i} has no send result")))
        .collect()
}

/// One message as a consumer saw it.
#[derive(Clone, Debug)]
pub struct Received {
    pub body: String,
    pub tags: Option<String>,
    pub queue_id: i32,
    pub queue_offset: i64,
}

/// Everything one consumer received, in arrival order.
#[derive(Clone, Default)]
pub struct Inbox {
    messages: Arc<Mutex<Vec<Received>>>,
}

impl Inbox {
    pub fn record(&self, msg: &MessageExt) {
        let body = msg
            .body()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        let received = Received {
            body,
            tags: msg.get_tags().map(|t| t.to_string()),
            queue_id: msg.queue_id(),
            queue_offset: msg.queue_offset(),
        };
        self.messages.lock().unwrap().push(received);
    }

    pub fn snapshot(&self) -> Vec<Received> {
        self.messages.lock().unwrap().clone()
    }

    pub fn len(&self) -> usize {
        self.messages.lock().unwrap().len()
    }

    /// Distinct bodies received.
    pub fn distinct_bodies(&self) -> BTreeSet<String> {
        self.snapshot().into_iter().map(|r| r.body).collect()
    }

    /// Bodies received more than once, with their counts.
    pub fn duplicates(&self) -> BTreeMap<String, usize> {
        let mut counts: HashMap<String, usize> = HashMap::new();
        for r in self.snapshot() {
            *counts.entry(r.body).or_default() += 1;
        }
        counts.into_iter().filter(|(_, n)| *n > 1).collect()
    }

    /// Queue ids this consumer received messages from.
    pub fn queue_ids(&self) -> BTreeSet<i32> {
        self.snapshot().into_iter().map(|r| r.queue_id).collect()
    }

    /// Waits until `done(self)` holds or `limit` passes; returns whether it held.
    pub async fn wait_until(&self, limit: Duration, done: impl Fn(&Inbox) -> bool) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            if done(self) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A started clustering push consumer of `group` on `topic` with `expression`, consuming
/// from the first offset, recording everything into the returned inbox.
pub async fn start_push_consumer(
    env: &ClientEnv,
    broker: &Broker,
    group: &str,
    instance: &str,
    topic: &str,
    expression: &str,
) -> (DefaultMQPushConsumer, Inbox) {
    let mut client_config = ClientConfig::default();
    client_config.set_instance_name(instance.into());
    let mut consumer = DefaultMQPushConsumer::builder(env.runtime())
        .client_config(client_config)
        .name_server_addr(broker.namesrv())
        .consumer_group(group.to_owned())
        .message_model(MessageModel::Clustering)
        .consume_from_where(ConsumeFromWhere::ConsumeFromFirstOffset)
        .build();
    consumer
        .subscribe(topic, expression)
        .await
        .expect("subscribe");
    let inbox = Inbox::default();
    let sink = inbox.clone();
    consumer.register_message_listener_concurrently(
        move |msgs: &[&MessageExt], _context: &ConsumeConcurrentlyContext| {
            for msg in msgs {
                sink.record(msg);
            }
            Ok(ConsumeConcurrentlyStatus::ConsumeSuccess)
        },
    );
    consumer.start().await.expect("push consumer starts");
    (consumer, inbox)
}

/// Bodies `prefix-0 .. prefix-(count-1)`.
pub fn bodies(prefix: &str, count: usize) -> BTreeSet<String> {
    (0..count).map(|i| format!("{prefix}-{i}")).collect()
}

/// A short description of what is missing from `got` compared to `want`.
pub fn describe_missing(want: &BTreeSet<String>, got: &BTreeSet<String>) -> String {
    let missing: Vec<&String> = want.difference(got).collect();
    let unexpected: Vec<&String> = got.difference(want).collect();
    format!(
        "missing {} (first: {:?}), unexpected {} (first: {:?})",
        missing.len(),
        missing.iter().take(10).collect::<Vec<_>>(),
        unexpected.len(),
        unexpected.iter().take(10).collect::<Vec<_>>()
    )
}

/// An error and its sources, one after the other (the client's Debug output redacts them).
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut chain = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        chain.push_str(&format!(" <- {cause}"));
        source = cause.source();
    }
    chain
}

/// Where the broker said each missing body was stored (`queue id`, `queue offset`), so a
/// failure names the exact slots that were never delivered.
pub fn missing_slots(
    prefix: &str,
    results: &[SendResult],
    got: &BTreeSet<String>,
) -> Vec<(String, i32, u64)> {
    results
        .iter()
        .enumerate()
        .map(|(i, r)| (format!("{prefix}-{i}"), r))
        .filter(|(body, _)| !got.contains(body))
        .map(|(body, r)| {
            let queue_id = r.message_queue.as_ref().map_or(-1, |q| q.queue_id());
            (body, queue_id, r.queue_offset)
        })
        .take(20)
        .collect()
}

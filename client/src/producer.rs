//! The producer: sends messages to a topic's queues, chosen round robin, by key hash or by a
//! caller's selector; retries on another queue (preferably another broker) for transport
//! failures and the retryable broker codes of protocol.md §2.3; stamps a UNIQ_KEY on each
//! message; compresses bodies above 4 KiB with zlib; falls back to the TBW102 route for
//! topics that have none, so the broker auto-creates them (§2.14).
//!
//! ```no_run
//! # async fn demo() -> Result<(), ringmq_client::ClientError> {
//! use ringmq_client::{Message, Producer, ProducerConfig};
//!
//! let producer = Producer::start(ProducerConfig::new("127.0.0.1:9876", "my-producers")).await?;
//! let result = producer
//!     .send(Message::new("TopicTest", "hello").with_tags("TagA").with_keys(["order-1"]))
//!     .await?;
//! println!("stored as {} at {:?} offset {}", result.msg_id, result.queue, result.queue_offset);
//! producer.shutdown().await;
//! # Ok(()) }
//! ```

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ringmq_protocol::body::MessageQueue;
use ringmq_protocol::codes::{request_code, response_code};
use ringmq_protocol::command::RemotingCommand;
use ringmq_protocol::ext::CommandHeader;
use ringmq_protocol::headers::{SendMessageRequestHeader, SendMessageResponseHeader};
use ringmq_protocol::message::batch::encode_batch_entry;
use ringmq_protocol::message::java_string_hash;
use ringmq_protocol::message::properties::keys;
use ringmq_protocol::message::sysflag::{COMPRESSED_FLAG, COMPRESSION_ZLIB_TYPE};

use crate::core::{now_ms, ClientConfig, ClientCore};
use crate::error::{ClientError, Result};
use crate::message::{deflate, Message};
use crate::remoting::broker_error;
use crate::route::TopicRoute;

/// Broker codes after which the Java 5.x producer retries on another broker (§2.3).
pub const RETRY_RESPONSE_CODES: &[i32] = &[
    response_code::TOPIC_NOT_EXIST,
    response_code::SERVICE_NOT_AVAILABLE,
    response_code::SYSTEM_ERROR,
    response_code::SYSTEM_BUSY,
    response_code::NO_PERMISSION,
    response_code::NO_BUYER_ID,
    response_code::NOT_IN_CURRENT_UNIT,
    1500, // GO_AWAY
];

/// Producer settings (defaults from protocol.md §10.4).
#[derive(Debug, Clone)]
pub struct ProducerConfig {
    /// Shared client settings (name servers, timeouts).
    pub client: ClientConfig,
    /// Producer group.
    pub group: String,
    /// Overall time budget of one send, retries included. Default 3 s.
    pub send_timeout: Duration,
    /// Extra attempts after a failed send. Default 2.
    pub retry_times: u32,
    /// Bodies larger than this are zlib-compressed (not batches). Default 4096.
    pub compress_over_bytes: usize,
    /// zlib level. Default 5.
    pub compress_level: u32,
    /// Largest body accepted. Default 4 MiB.
    pub max_message_bytes: usize,
    /// Template topic for auto-creation. Default `TBW102`.
    pub create_topic_key: String,
    /// Queues wanted for an auto-created topic. Default 4.
    pub default_topic_queue_nums: i32,
    /// Use SEND_MESSAGE_V2 (short header keys). Default true, as Java.
    pub send_v2: bool,
}

impl ProducerConfig {
    /// Defaults for `namesrv` (`"host:port[;host:port]"`) and `group`.
    pub fn new(namesrv: &str, group: impl Into<String>) -> Self {
        ProducerConfig {
            client: ClientConfig::new(namesrv),
            group: group.into(),
            send_timeout: Duration::from_secs(3),
            retry_times: 2,
            compress_over_bytes: 4096,
            compress_level: 5,
            max_message_bytes: 4 * 1024 * 1024,
            create_topic_key: "TBW102".to_owned(),
            default_topic_queue_nums: 4,
            send_v2: true,
        }
    }
}

/// Outcome of a successful send (the broker stored the message).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendStatus {
    /// Stored (and flushed/replicated as configured).
    SendOk,
    /// Stored, but the flush did not finish in time.
    FlushDiskTimeout,
    /// Stored, but the slave did not confirm in time.
    FlushSlaveTimeout,
    /// Stored, but no slave is available.
    SlaveNotAvailable,
}

/// What a send returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendResult {
    /// Status.
    pub status: SendStatus,
    /// The client id (UNIQ_KEY); for a batch, the keys joined with commas.
    pub msg_id: String,
    /// The broker's offset msgId(s) (comma separated for a batch).
    pub offset_msg_id: String,
    /// Queue the message went to.
    pub queue: MessageQueue,
    /// Logical offset assigned (the first one for a batch).
    pub queue_offset: i64,
}

/// A caller's queue choice: the index of the queue to use among the writable queues.
pub type SelectorFn = Arc<dyn Fn(&[MessageQueue], &Message) -> usize + Send + Sync>;

/// How to choose a queue.
#[derive(Clone)]
pub enum QueueSelector {
    /// Round robin over the writable queues (the default), avoiding the broker that just
    /// failed when retrying.
    RoundRobin,
    /// The queue at `hash(key) % n` (Java `String.hashCode`): messages with the same key
    /// keep their order on one queue. No retry on another queue.
    ByKeyHash(String),
    /// The caller's choice among the writable queues (index into the slice). No retry on
    /// another queue.
    Custom(SelectorFn),
}

impl std::fmt::Debug for QueueSelector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            QueueSelector::RoundRobin => f.write_str("RoundRobin"),
            QueueSelector::ByKeyHash(k) => f.debug_tuple("ByKeyHash").field(k).finish(),
            QueueSelector::Custom(_) => f.write_str("Custom(..)"),
        }
    }
}

/// Index of the queue for `key` among `n` queues (non-negative Java hash modulo n).
pub fn queue_index_by_key(key: &str, n: usize) -> usize {
    if n == 0 {
        return 0;
    }
    let hash = i64::from(java_string_hash(key)).unsigned_abs();
    (hash % n as u64) as usize
}

/// Round-robin choice: the first queue from `start` whose broker is not `avoid_broker`, or the
/// queue at `start` if every queue is on that broker.
pub fn select_round_robin<'a>(
    queues: &'a [MessageQueue],
    start: usize,
    avoid_broker: Option<&str>,
) -> Option<&'a MessageQueue> {
    if queues.is_empty() {
        return None;
    }
    let n = queues.len();
    if let Some(avoid) = avoid_broker {
        for i in 0..n {
            if let Some(q) = queues.get((start + i) % n) {
                if q.broker_name != avoid {
                    return Some(q);
                }
            }
        }
    }
    queues.get(start % n)
}

struct Inner {
    core: Arc<ClientCore>,
    config: ProducerConfig,
    round_robin: AtomicUsize,
}

/// A started producer. Cheap to clone; clones share connections and routes.
#[derive(Clone)]
pub struct Producer {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer")
            .field("group", &self.inner.config.group)
            .field("client_id", &self.inner.core.client_id)
            .finish()
    }
}

/// The message as it goes on the wire: body (maybe compressed), sysFlag, properties text.
struct Prepared {
    topic: String,
    body: Bytes,
    sys_flag: i32,
    flag: i32,
    properties: String,
    msg_id: String,
    batch: bool,
    reconsume_times: Option<i32>,
    max_reconsume_times: Option<i32>,
}

impl Producer {
    /// Starts a producer: no connection is opened until the first send, but the route-refresh
    /// and heartbeat timers run from now on.
    pub async fn start(config: ProducerConfig) -> Result<Producer> {
        if config.group.is_empty() {
            return Err(ClientError::InvalidArgument(
                "producer group is empty".into(),
            ));
        }
        let core = ClientCore::new(config.client.clone());
        core.register_producer_group(&config.group);
        core.start_timers();
        Ok(Producer {
            inner: Arc::new(Inner {
                core,
                config,
                round_robin: AtomicUsize::new(rand_seed()),
            }),
        })
    }

    /// The client id of this producer.
    pub fn client_id(&self) -> &str {
        &self.inner.core.client_id
    }

    /// The shared client core (connections and routes), for admin-style calls.
    pub fn core(&self) -> &Arc<ClientCore> {
        &self.inner.core
    }

    /// Sends and waits for the broker's answer, choosing queues round robin.
    pub async fn send(&self, msg: Message) -> Result<SendResult> {
        self.send_with(msg, &QueueSelector::RoundRobin).await
    }

    /// Sends with a queue selector.
    pub async fn send_with(&self, msg: Message, selector: &QueueSelector) -> Result<SendResult> {
        let prepared = self.prepare(msg.clone())?;
        self.send_prepared(prepared, Some(&msg), selector, false)
            .await
    }

    /// Sends to one given queue (no retry on another queue).
    pub async fn send_to_queue(&self, msg: Message, queue: &MessageQueue) -> Result<SendResult> {
        let queue = queue.clone();
        let selector =
            QueueSelector::Custom(Arc::new(move |queues: &[MessageQueue], _: &Message| {
                queues
                    .iter()
                    .position(|q| *q == queue)
                    .unwrap_or(usize::MAX)
            }));
        self.send_with(msg, &selector).await
    }

    /// Starts a send in the background and returns its handle (await it for the result).
    pub fn send_async(&self, msg: Message) -> tokio::task::JoinHandle<Result<SendResult>> {
        let producer = self.clone();
        tokio::spawn(async move { producer.send(msg).await })
    }

    /// Sends without waiting for an answer (oneway; no retry, no result).
    pub async fn send_oneway(&self, msg: Message) -> Result<()> {
        let prepared = self.prepare(msg.clone())?;
        self.send_prepared(prepared, Some(&msg), &QueueSelector::RoundRobin, true)
            .await
            .map(|_| ())
    }

    /// Sends several messages of one topic as one SEND_BATCH_MESSAGE; they land on one queue
    /// with consecutive offsets.
    pub async fn send_batch(&self, msgs: Vec<Message>) -> Result<SendResult> {
        let prepared = self.prepare_batch(msgs)?;
        self.send_prepared(prepared, None, &QueueSelector::RoundRobin, false)
            .await
    }

    /// Sends a batch with a queue selector (applied to the first message).
    pub async fn send_batch_with(
        &self,
        msgs: Vec<Message>,
        selector: &QueueSelector,
    ) -> Result<SendResult> {
        let first = msgs.first().cloned();
        let prepared = self.prepare_batch(msgs)?;
        self.send_prepared(prepared, first.as_ref(), selector, false)
            .await
    }

    /// Stops timers, unregisters from the brokers and closes connections.
    pub async fn shutdown(&self) {
        let core = &self.inner.core;
        core.unregister(Some(&self.inner.config.group), None).await;
        core.shutdown().await;
    }

    /// Sends a prepared message to `%RETRY%group` style targets: used by the push consumer's
    /// send-back fallback (keeps reconsume counts in the header).
    #[allow(dead_code)] // used by the push consumer's send-back fallback
    pub(crate) async fn send_retry_copy(
        &self,
        mut msg: Message,
        reconsume_times: i32,
        max_reconsume_times: i32,
    ) -> Result<SendResult> {
        msg.properties.remove(keys::RECONSUME_TIME);
        msg.properties.remove(keys::MAX_RECONSUME_TIMES);
        let mut prepared = self.prepare(msg)?;
        prepared.reconsume_times = Some(reconsume_times);
        prepared.max_reconsume_times = Some(max_reconsume_times);
        self.send_prepared(prepared, None, &QueueSelector::RoundRobin, false)
            .await
    }

    fn check_topic(topic: &str) -> Result<()> {
        let valid = !topic.is_empty()
            && topic.len() <= 255
            && topic.bytes().all(|b| {
                b.is_ascii_alphanumeric() || b == b'%' || b == b'|' || b == b'_' || b == b'-'
            });
        if valid {
            Ok(())
        } else {
            Err(ClientError::InvalidArgument(format!(
                "topic {topic:?} must match ^[%|a-zA-Z0-9_-]+$ and be at most 255 characters"
            )))
        }
    }

    fn prepare(&self, mut msg: Message) -> Result<Prepared> {
        let config = &self.inner.config;
        Self::check_topic(&msg.topic)?;
        if msg.body.is_empty() {
            return Err(ClientError::InvalidArgument("message body is empty".into()));
        }
        if msg.body.len() > config.max_message_bytes {
            return Err(ClientError::InvalidArgument(format!(
                "message body of {} bytes exceeds the limit of {}",
                msg.body.len(),
                config.max_message_bytes
            )));
        }
        let msg_id = match msg.properties.uniq_key() {
            Some(id) => id.to_owned(),
            None => {
                let id = self.inner.core.uniq.next_key();
                msg.properties.insert(keys::UNIQ_KEY, id.clone());
                id
            }
        };
        let mut sys_flag = 0;
        let mut body = msg.body.clone();
        if body.len() > config.compress_over_bytes {
            body = Bytes::from(deflate(&body, config.compress_level)?);
            sys_flag |= COMPRESSED_FLAG | COMPRESSION_ZLIB_TYPE;
        }
        Ok(Prepared {
            topic: msg.topic,
            body,
            sys_flag,
            flag: msg.flag,
            properties: msg.properties.encode()?,
            msg_id,
            batch: false,
            reconsume_times: None,
            max_reconsume_times: None,
        })
    }

    fn prepare_batch(&self, msgs: Vec<Message>) -> Result<Prepared> {
        let config = &self.inner.config;
        let Some(first) = msgs.first() else {
            return Err(ClientError::InvalidArgument("batch is empty".into()));
        };
        let topic = first.topic.clone();
        Self::check_topic(&topic)?;
        if topic.starts_with(crate::consumer::RETRY_GROUP_TOPIC_PREFIX) {
            return Err(ClientError::InvalidArgument(
                "a batch cannot go to a retry topic".into(),
            ));
        }
        let wait = first.properties.wait_store_msg_ok();
        let mut body = Vec::new();
        let mut ids = Vec::with_capacity(msgs.len());
        for mut msg in msgs {
            if msg.topic != topic {
                return Err(ClientError::InvalidArgument(
                    "all messages of a batch must have the same topic".into(),
                ));
            }
            if msg.properties.wait_store_msg_ok() != wait {
                return Err(ClientError::InvalidArgument(
                    "all messages of a batch must have the same WAIT flag".into(),
                ));
            }
            if msg.properties.get(keys::DELAY).is_some() {
                return Err(ClientError::InvalidArgument(
                    "delayed messages cannot be batched".into(),
                ));
            }
            let id = match msg.properties.uniq_key() {
                Some(id) => id.to_owned(),
                None => {
                    let id = self.inner.core.uniq.next_key();
                    msg.properties.insert(keys::UNIQ_KEY, id.clone());
                    id
                }
            };
            ids.push(id);
            encode_batch_entry(msg.flag, &msg.body, &msg.properties.encode()?, &mut body)?;
        }
        if body.len() > config.max_message_bytes {
            return Err(ClientError::InvalidArgument(format!(
                "batch of {} bytes exceeds the limit of {}",
                body.len(),
                config.max_message_bytes
            )));
        }
        // The batch itself carries a UNIQ_KEY (and WAIT) in the header properties, as Java's.
        let mut properties = ringmq_protocol::message::Properties::new();
        properties.insert(keys::UNIQ_KEY, self.inner.core.uniq.next_key());
        if !wait {
            properties.insert(keys::WAIT, "false");
        }
        Ok(Prepared {
            topic,
            body: Bytes::from(body),
            sys_flag: 0,
            flag: 0,
            properties: properties.encode()?,
            msg_id: ids.join(","),
            batch: true,
            reconsume_times: None,
            max_reconsume_times: None,
        })
    }

    async fn send_prepared(
        &self,
        prepared: Prepared,
        msg: Option<&Message>,
        selector: &QueueSelector,
        oneway: bool,
    ) -> Result<SendResult> {
        let inner = &self.inner;
        let config = &inner.config;
        let started = Instant::now();
        let (route, _auto_create) = inner
            .core
            .routes
            .get_for_publish(
                &prepared.topic,
                &config.create_topic_key,
                config.default_topic_queue_nums,
            )
            .await?;
        if route.publish.is_empty() {
            return Err(ClientError::NoQueue {
                topic: prepared.topic.clone(),
                what: "writable",
            });
        }
        let attempts = match selector {
            QueueSelector::RoundRobin if !oneway => 1 + config.retry_times,
            _ => 1,
        };
        let mut last_broker: Option<String> = None;
        let mut last_error = None;
        for _attempt in 0..attempts {
            let elapsed = started.elapsed();
            if elapsed >= config.send_timeout {
                break;
            }
            let queue = self.choose_queue(&route, selector, msg, last_broker.as_deref())?;
            let remaining = config.send_timeout - elapsed;
            match self
                .send_to(&route, &queue, &prepared, oneway, remaining)
                .await
            {
                Ok(result) => return Ok(result),
                Err(e) => {
                    let retryable = e.is_transport()
                        || e.broker_code()
                            .is_some_and(|c| RETRY_RESPONSE_CODES.contains(&c));
                    tracing::debug!(error = %e, queue = ?queue, retryable, "send attempt failed");
                    last_broker = Some(queue.broker_name.clone());
                    if !retryable {
                        return Err(e);
                    }
                    last_error = Some(e);
                }
            }
        }
        Err(last_error.unwrap_or(ClientError::Timeout {
            addr: String::new(),
            code: request_code::SEND_MESSAGE_V2,
            timeout: config.send_timeout,
        }))
    }

    fn choose_queue(
        &self,
        route: &TopicRoute,
        selector: &QueueSelector,
        msg: Option<&Message>,
        avoid_broker: Option<&str>,
    ) -> Result<MessageQueue> {
        let queues = &route.publish;
        let chosen = match selector {
            QueueSelector::RoundRobin => {
                let start = self.inner.round_robin.fetch_add(1, Ordering::Relaxed);
                select_round_robin(queues, start, avoid_broker)
            }
            QueueSelector::ByKeyHash(key) => queues.get(queue_index_by_key(key, queues.len())),
            QueueSelector::Custom(f) => {
                let placeholder;
                let m = match msg {
                    Some(m) => m,
                    None => {
                        placeholder = Message::new(route.topic.clone(), Bytes::new());
                        &placeholder
                    }
                };
                queues.get(f(queues, m))
            }
        };
        chosen.cloned().ok_or_else(|| {
            ClientError::InvalidArgument("the queue selector chose no queue of the route".into())
        })
    }

    async fn send_to(
        &self,
        route: &TopicRoute,
        queue: &MessageQueue,
        prepared: &Prepared,
        oneway: bool,
        timeout: Duration,
    ) -> Result<SendResult> {
        let inner = &self.inner;
        let config = &inner.config;
        let addr = route
            .master_addr(&queue.broker_name)
            .ok_or_else(|| ClientError::NoBrokerAddress {
                broker_name: queue.broker_name.clone(),
            })?
            .to_owned();
        let header = SendMessageRequestHeader {
            producer_group: config.group.clone(),
            topic: prepared.topic.clone(),
            default_topic: config.create_topic_key.clone(),
            default_topic_queue_nums: config.default_topic_queue_nums,
            queue_id: queue.queue_id,
            sys_flag: prepared.sys_flag,
            born_timestamp_ms: now_ms(),
            flag: prepared.flag,
            properties: Some(prepared.properties.clone()).filter(|p| !p.is_empty()),
            reconsume_times: prepared.reconsume_times.or(Some(0)),
            unit_mode: false,
            max_reconsume_times: prepared.max_reconsume_times,
            batch: prepared.batch,
            broker_name: Some(queue.broker_name.clone()),
        };
        let (code, ext) = if prepared.batch {
            (request_code::SEND_BATCH_MESSAGE, header.to_v2_ext())
        } else if config.send_v2 {
            (request_code::SEND_MESSAGE_V2, header.to_v2_ext())
        } else {
            (request_code::SEND_MESSAGE, header.to_ext())
        };
        let request = RemotingCommand::request(code, ext).with_body(prepared.body.clone());
        let remoting = &inner.core.remoting;
        if oneway {
            remoting.invoke_oneway(&addr, request).await?;
            return Ok(SendResult {
                status: SendStatus::SendOk,
                msg_id: prepared.msg_id.clone(),
                offset_msg_id: String::new(),
                queue: queue.clone(),
                queue_offset: -1,
            });
        }
        let response = remoting.invoke(&addr, request, timeout).await?;
        let status = match response.code {
            response_code::SUCCESS => SendStatus::SendOk,
            response_code::FLUSH_DISK_TIMEOUT => SendStatus::FlushDiskTimeout,
            response_code::FLUSH_SLAVE_TIMEOUT => SendStatus::FlushSlaveTimeout,
            response_code::SLAVE_NOT_AVAILABLE => SendStatus::SlaveNotAvailable,
            _ => return Err(broker_error(&addr, &response)),
        };
        let header = SendMessageResponseHeader::from_ext(&response.ext_fields)?;
        Ok(SendResult {
            status,
            msg_id: prepared.msg_id.clone(),
            offset_msg_id: header.msg_id,
            queue: MessageQueue::new(
                prepared.topic.clone(),
                queue.broker_name.clone(),
                header.queue_id,
            ),
            queue_offset: header.queue_offset,
        })
    }
}

fn rand_seed() -> usize {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(now_ms() as u64);
    (h.finish() % 1024) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queues(spec: &[(&str, i32)]) -> Vec<MessageQueue> {
        spec.iter()
            .map(|(b, q)| MessageQueue::new("T", *b, *q))
            .collect()
    }

    #[test]
    fn round_robin_walks_the_queues_in_order() {
        let qs = queues(&[("a", 0), ("a", 1), ("b", 0)]);
        let picked: Vec<_> = (0..6)
            .map(|i| select_round_robin(&qs, i, None).unwrap().clone())
            .collect();
        assert_eq!(picked[..3], qs[..]);
        assert_eq!(picked[3..], qs[..]);
    }

    #[test]
    fn round_robin_retry_avoids_the_broker_that_failed() {
        let qs = queues(&[("a", 0), ("a", 1), ("b", 0)]);
        for start in 0..3 {
            let q = select_round_robin(&qs, start, Some("a")).unwrap();
            assert_eq!(q.broker_name, "b");
        }
    }

    #[test]
    fn round_robin_retry_falls_back_when_only_the_failed_broker_has_queues() {
        let qs = queues(&[("a", 0), ("a", 1)]);
        assert_eq!(select_round_robin(&qs, 1, Some("a")), qs.get(1));
        assert_eq!(select_round_robin(&[], 0, None), None);
    }

    #[test]
    fn key_hash_selection_is_stable_and_within_range() {
        for key in [
            "",
            "order-1",
            "order-2",
            "ç",
            "a-much-longer-key-than-usual",
        ] {
            let i = queue_index_by_key(key, 7);
            assert!(i < 7);
            assert_eq!(i, queue_index_by_key(key, 7));
        }
        // Java's SelectMessageQueueByHash: value = hashCode % n; if negative, Math.abs(value).
        for key in ["order-1", "negative?", "zz"] {
            let java = (java_string_hash(key) % 4).abs();
            assert_eq!(queue_index_by_key(key, 4) as i32, java);
        }
    }
}

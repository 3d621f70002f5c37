//! The remoting layer: one multiplexed TCP connection per peer address, and a pool of them.
//!
//! A [`Connection`] owns two tasks. The writer drains a channel of encoded frames and writes
//! everything queued in one `write_all` (requests issued together leave in one syscall). The
//! reader decodes frames: a response completes the pending request with its `opaque` (a
//! oneshot per request), a request from the peer (NOTIFY_CONSUMER_IDS_CHANGED, …) goes to the
//! pool's [`InboundHandler`]. Invariant: when either task fails, the connection is marked
//! closed and every pending request fails at once with [`ClientError::ConnectionClosed`]; no
//! request is left waiting for its timeout on a dead socket. A closed connection is replaced on
//! the next call for its address.
//!
//! Frames are written as the Java client writes them: JSON header with `language`, `version`
//! 479 and `serializeTypeCurrentRPC` (the protocol crate's encoder). Responses may use either
//! header serialization.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use ringmq_protocol::codes::{request_code, response_code};
use ringmq_protocol::command::RemotingCommand;
use ringmq_protocol::frame::{decode_frame, encode_frame, FrameLimits};
use ringmq_protocol::header::SerializeType;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};

use crate::error::{ClientError, Result};

/// Called for every request a peer sends us (broker → client commands). Returns the response
/// to send, or `None`; a non-oneway request left unanswered gets REQUEST_CODE_NOT_SUPPORTED.
pub type InboundHandler =
    Arc<dyn Fn(&str, RemotingCommand) -> Option<RemotingCommand> + Send + Sync>;

type Pending = Mutex<HashMap<i32, oneshot::Sender<Result<RemotingCommand>>>>;

/// Settings of a [`RemotingClient`].
#[derive(Debug, Clone)]
pub struct RemotingConfig {
    /// TCP connect timeout. Default 3 s.
    pub connect_timeout: Duration,
    /// Frame limits applied to what peers send. Default: Java's 16 MiB.
    pub frame_limits: FrameLimits,
    /// Header serialization of requests. Default JSON (what Java clients send).
    pub serialize_type: SerializeType,
}

impl Default for RemotingConfig {
    fn default() -> Self {
        RemotingConfig {
            connect_timeout: Duration::from_secs(3),
            frame_limits: FrameLimits::default(),
            serialize_type: SerializeType::Json,
        }
    }
}

/// One multiplexed connection to one peer address.
#[derive(Debug)]
pub struct Connection {
    addr: String,
    outbound: mpsc::UnboundedSender<Bytes>,
    pending: Arc<Pending>,
    closed: Arc<AtomicBool>,
}

impl Connection {
    /// Is this connection still usable?
    pub fn is_open(&self) -> bool {
        !self.closed.load(Ordering::Acquire)
    }

    /// The peer address.
    pub fn addr(&self) -> &str {
        &self.addr
    }
}

struct Shared {
    addr: String,
    pending: Arc<Pending>,
    closed: Arc<AtomicBool>,
}

impl Shared {
    /// Marks the connection closed and fails every pending request.
    fn close(&self, reason: &str) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        tracing::debug!(addr = %self.addr, reason, "connection closed");
        let waiters: Vec<_> = match self.pending.lock() {
            Ok(mut map) => map.drain().collect(),
            Err(poisoned) => poisoned.into_inner().drain().collect(),
        };
        for (_, waiter) in waiters {
            let _ = waiter.send(Err(ClientError::ConnectionClosed {
                addr: self.addr.clone(),
                reason: reason.to_owned(),
            }));
        }
    }
}

/// A pool of connections keyed by address, with request/response matching, timeouts and
/// oneway sends. Cheap to share (`Arc`).
pub struct RemotingClient {
    config: RemotingConfig,
    connections: tokio::sync::Mutex<HashMap<String, Arc<Connection>>>,
    next_opaque: AtomicI32,
    inbound: Mutex<Option<InboundHandler>>,
    shut_down: AtomicBool,
}

impl std::fmt::Debug for RemotingClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemotingClient")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Default for RemotingClient {
    fn default() -> Self {
        Self::new(RemotingConfig::default())
    }
}

impl RemotingClient {
    /// A pool with no connection yet.
    pub fn new(config: RemotingConfig) -> Self {
        RemotingClient {
            config,
            connections: tokio::sync::Mutex::new(HashMap::new()),
            next_opaque: AtomicI32::new(0),
            inbound: Mutex::new(None),
            shut_down: AtomicBool::new(false),
        }
    }

    /// Installs the handler for requests peers send us (applies to connections opened later
    /// and to existing ones).
    pub fn set_inbound_handler(&self, handler: InboundHandler) {
        if let Ok(mut slot) = self.inbound.lock() {
            *slot = Some(handler);
        }
    }

    fn inbound_handler(&self) -> Option<InboundHandler> {
        self.inbound.lock().ok().and_then(|slot| slot.clone())
    }

    /// The open connection to `addr`, dialling it if there is none (or the old one died).
    pub async fn connection(self: &Arc<Self>, addr: &str) -> Result<Arc<Connection>> {
        if self.shut_down.load(Ordering::Acquire) {
            return Err(ClientError::State("shut down"));
        }
        {
            let connections = self.connections.lock().await;
            if let Some(conn) = connections.get(addr) {
                if conn.is_open() {
                    return Ok(Arc::clone(conn));
                }
            }
        }
        // Dial without holding the pool lock, so a slow or dead address does not stall calls
        // to the others. Two callers racing to dial the same address keep the first
        // connection stored; the other one is dropped (its tasks end with it).
        let dialled = Arc::new(self.dial(addr).await?);
        let mut connections = self.connections.lock().await;
        if let Some(conn) = connections.get(addr) {
            if conn.is_open() {
                return Ok(Arc::clone(conn));
            }
        }
        connections.insert(addr.to_owned(), Arc::clone(&dialled));
        Ok(dialled)
    }

    async fn dial(self: &Arc<Self>, addr: &str) -> Result<Connection> {
        let connect = TcpStream::connect(addr);
        let stream = match tokio::time::timeout(self.config.connect_timeout, connect).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(source)) => {
                return Err(ClientError::Connect {
                    addr: addr.to_owned(),
                    source,
                })
            }
            Err(_) => {
                return Err(ClientError::Connect {
                    addr: addr.to_owned(),
                    source: std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!("connect timed out after {:?}", self.config.connect_timeout),
                    ),
                })
            }
        };
        let _ = stream.set_nodelay(true);
        let (read_half, write_half) = stream.into_split();
        let (outbound, outbound_rx) = mpsc::unbounded_channel();
        let pending: Arc<Pending> = Arc::new(Mutex::new(HashMap::new()));
        let closed = Arc::new(AtomicBool::new(false));
        let shared = Arc::new(Shared {
            addr: addr.to_owned(),
            pending: Arc::clone(&pending),
            closed: Arc::clone(&closed),
        });
        tokio::spawn(write_loop(write_half, outbound_rx, Arc::clone(&shared)));
        tokio::spawn(read_loop(
            read_half,
            Arc::downgrade(self),
            outbound.downgrade(),
            shared,
            self.config.frame_limits,
            self.config.serialize_type,
        ));
        Ok(Connection {
            addr: addr.to_owned(),
            outbound,
            pending,
            closed,
        })
    }

    fn next_opaque(&self) -> i32 {
        // Wraps like Java's int counter; an opaque is only ever compared for equality.
        self.next_opaque.fetch_add(1, Ordering::Relaxed)
    }

    fn encode(&self, request: &RemotingCommand) -> Result<Bytes> {
        let mut out = BytesMut::with_capacity(256 + request.body.len());
        encode_frame(request, self.config.serialize_type, &mut out)?;
        Ok(out.freeze())
    }

    /// Sends `request` to `addr` and waits up to `timeout` for its response (any code).
    pub async fn invoke(
        self: &Arc<Self>,
        addr: &str,
        mut request: RemotingCommand,
        timeout: Duration,
    ) -> Result<RemotingCommand> {
        let conn = self.connection(addr).await?;
        let opaque = self.next_opaque();
        request.opaque = opaque;
        let code = request.code;
        let frame = self.encode(&request)?;
        let (tx, rx) = oneshot::channel();
        {
            let mut pending = conn
                .pending
                .lock()
                .map_err(|_| ClientError::State("poisoned"))?;
            pending.insert(opaque, tx);
        }
        // Re-check after registering: a close that ran before the insert would not have
        // failed this waiter.
        if !conn.is_open() || conn.outbound.send(frame).is_err() {
            remove_pending(&conn.pending, opaque);
            return Err(ClientError::ConnectionClosed {
                addr: addr.to_owned(),
                reason: "closed before the request was written".to_owned(),
            });
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(ClientError::ConnectionClosed {
                addr: addr.to_owned(),
                reason: "connection dropped".to_owned(),
            }),
            Err(_) => {
                remove_pending(&conn.pending, opaque);
                Err(ClientError::Timeout {
                    addr: addr.to_owned(),
                    code,
                    timeout,
                })
            }
        }
    }

    /// Like [`invoke`](Self::invoke), but a response code other than SUCCESS becomes
    /// [`ClientError::Broker`].
    pub async fn invoke_ok(
        self: &Arc<Self>,
        addr: &str,
        request: RemotingCommand,
        timeout: Duration,
    ) -> Result<RemotingCommand> {
        let response = self.invoke(addr, request, timeout).await?;
        check_success(addr, response)
    }

    /// Sends `request` marked oneway; no response is awaited.
    pub async fn invoke_oneway(
        self: &Arc<Self>,
        addr: &str,
        request: RemotingCommand,
    ) -> Result<()> {
        let conn = self.connection(addr).await?;
        let request = request.oneway().with_opaque(self.next_opaque());
        let frame = self.encode(&request)?;
        conn.outbound
            .send(frame)
            .map_err(|_| ClientError::ConnectionClosed {
                addr: addr.to_owned(),
                reason: "closed before the request was written".to_owned(),
            })
    }

    /// Addresses with an open connection.
    pub async fn connected_addrs(&self) -> Vec<String> {
        let connections = self.connections.lock().await;
        connections
            .iter()
            .filter(|(_, c)| c.is_open())
            .map(|(a, _)| a.clone())
            .collect()
    }

    /// Closes every connection (pending requests fail) and refuses new ones.
    pub async fn shutdown(&self) {
        self.shut_down.store(true, Ordering::Release);
        let mut connections = self.connections.lock().await;
        // Dropping the senders ends each writer, which shuts the socket's write side; the
        // reader then sees EOF from the peer (or errors) and fails what is pending.
        connections.clear();
    }
}

/// `Ok(response)` for SUCCESS, else [`ClientError::Broker`] with its code and remark.
pub fn check_success(addr: &str, response: RemotingCommand) -> Result<RemotingCommand> {
    if response.code == response_code::SUCCESS {
        Ok(response)
    } else {
        Err(broker_error(addr, &response))
    }
}

/// The [`ClientError::Broker`] for a non-success response.
pub fn broker_error(addr: &str, response: &RemotingCommand) -> ClientError {
    ClientError::Broker {
        addr: addr.to_owned(),
        code: response.code,
        remark: response.remark.clone().unwrap_or_default(),
    }
}

fn remove_pending(pending: &Pending, opaque: i32) {
    if let Ok(mut map) = pending.lock() {
        map.remove(&opaque);
    }
}

/// Writes queued frames, coalescing whatever is already queued into one write.
async fn write_loop(
    mut socket: OwnedWriteHalf,
    mut frames: mpsc::UnboundedReceiver<Bytes>,
    shared: Arc<Shared>,
) {
    let mut batch = BytesMut::new();
    while let Some(frame) = frames.recv().await {
        let result = match frames.try_recv() {
            // A lone frame (the common case when idle, and every large send) goes out as is.
            Err(_) => socket.write_all(&frame).await,
            Ok(second) => {
                batch.clear();
                batch.extend_from_slice(&frame);
                batch.extend_from_slice(&second);
                // Bounded coalescing: enough to merge a burst, small enough to start soon.
                while batch.len() < 256 * 1024 {
                    match frames.try_recv() {
                        Ok(more) => batch.extend_from_slice(&more),
                        Err(_) => break,
                    }
                }
                socket.write_all(&batch).await
            }
        };
        if let Err(e) = result {
            shared.close(&format!("write failed: {e}"));
            return;
        }
        if shared.closed.load(Ordering::Acquire) {
            break;
        }
    }
    let _ = socket.shutdown().await;
}

async fn read_loop(
    mut socket: OwnedReadHalf,
    client: std::sync::Weak<RemotingClient>,
    outbound: mpsc::WeakUnboundedSender<Bytes>,
    shared: Arc<Shared>,
    limits: FrameLimits,
    serialize_type: SerializeType,
) {
    let mut buffer = BytesMut::with_capacity(64 * 1024);
    let reason = loop {
        match decode_frame(&mut buffer, &limits) {
            Ok(Some(command)) => {
                if command.is_response() {
                    let waiter = shared
                        .pending
                        .lock()
                        .ok()
                        .and_then(|mut map| map.remove(&command.opaque));
                    if let Some(waiter) = waiter {
                        let _ = waiter.send(Ok(command));
                    }
                } else {
                    handle_inbound(&client, &outbound, &shared.addr, command, serialize_type);
                }
                continue;
            }
            Ok(None) => {}
            Err(e) => break format!("undecodable frame: {e}"),
        }
        if buffer.capacity() - buffer.len() < 8 * 1024 {
            buffer.reserve(64 * 1024);
        }
        match socket.read_buf(&mut buffer).await {
            Ok(0) => break "peer closed the connection".to_owned(),
            Ok(_) => {}
            Err(e) => break format!("read failed: {e}"),
        }
        if shared.closed.load(Ordering::Acquire) {
            break "closed".to_owned();
        }
    };
    shared.close(&reason);
}

fn handle_inbound(
    client: &std::sync::Weak<RemotingClient>,
    outbound: &mpsc::WeakUnboundedSender<Bytes>,
    addr: &str,
    request: RemotingCommand,
    serialize_type: SerializeType,
) {
    let oneway = request.is_oneway();
    // The skeleton of any answer: same opaque, response flag set.
    let skeleton =
        RemotingCommand::response_to(&request, response_code::REQUEST_CODE_NOT_SUPPORTED);
    let code = request.code;
    let handler = client.upgrade().and_then(|c| c.inbound_handler());
    let reply = handler.and_then(|handler| handler(addr, request));
    // NOTIFY_CONSUMER_IDS_CHANGED is never answered, even when a broker forgets the oneway
    // bit (protocol.md §13.4): the Java client returns no response for it.
    if oneway || (reply.is_none() && code == request_code::NOTIFY_CONSUMER_IDS_CHANGED) {
        return;
    }
    let reply = match reply {
        Some(mut reply) => {
            reply.opaque = skeleton.opaque;
            reply.flag |= skeleton.flag;
            reply
        }
        None => skeleton.with_remark(format!(" request type {code} not supported")),
    };
    let mut out = BytesMut::new();
    if encode_frame(&reply, serialize_type, &mut out).is_ok() {
        // Weak: the reader must not keep the writer alive once the connection is dropped.
        if let Some(outbound) = outbound.upgrade() {
            let _ = outbound.send(out.freeze());
        }
    }
}

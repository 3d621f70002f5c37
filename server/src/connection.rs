//! One client connection: read frames, hand each request to the [`Service`], write the
//! responses (design.md §3, §11).
//!
//! A reader loop decodes frames from one growing buffer (bodies are zero-copy slices of it)
//! and spawns one task per request, so pipelined requests of one connection (e.g. 256 async
//! sends in flight) are served concurrently and can share one group commit. Responses may
//! complete in any order; clients match them by `opaque`. A writer task drains the
//! connection's outbox with one vectored write per batch.
//!
//! Bounds: at most [`MAX_IN_FLIGHT_REQUESTS`] unanswered requests holding at most
//! [`MAX_IN_FLIGHT_BYTES`] of request frames, and [`MAX_OUTBOX_BYTES`] of queued responses
//! per connection; past any of them, the reader stops reading (TCP back-pressure) until the
//! backlog drains. A frame that cannot be decoded
//! closes the connection; other connections are unaffected. A held request (long polling)
//! keeps a [`Connection`] handle and writes its response later through [`Connection::send`];
//! once the connection is closed, sends are dropped.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::net::SocketAddr;
use std::rc::{Rc, Weak};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use compio::io::{AsyncReadExt, AsyncWriteExt};
use compio::net::TcpStream;
use compio::BufResult;
use futures_util::future::{select, Either};
use ringmq_protocol::command::RemotingCommand;
use ringmq_protocol::frame::{
    decode_frame, encode_frame, encode_frame_prefix, peek_frame_prefix, FrameLimits,
};
use ringmq_protocol::header::SerializeType;

use crate::memory::{BudgetPermit, MemoryBudget};
use crate::notify::LocalNotify;

/// Unanswered requests per connection before the reader pauses.
pub const MAX_IN_FLIGHT_REQUESTS: usize = 4096;
/// Bytes of unanswered request frames per connection before the reader pauses (a count
/// alone would let 4,096 requests of 4 MiB each pin 16 GiB).
pub const MAX_IN_FLIGHT_BYTES: usize = 64 * 1024 * 1024;
/// Queued response bytes per connection before the reader pauses.
pub const MAX_OUTBOX_BYTES: usize = 64 * 1024 * 1024;
/// How much the read buffer grows by when it is full.
const READ_CHUNK_BYTES: usize = 64 * 1024;
/// Most buffers one vectored write carries.
const MAX_WRITE_BATCH: usize = 256;

static NEXT_CONNECTION_ID: AtomicU64 = AtomicU64::new(1);

/// What a service does with one request.
pub trait Service: 'static {
    /// Handles one request. `Some(response)` is written back (unless the request was
    /// oneway); `None` means there is nothing to send now — a oneway request, or a request
    /// held to be answered later through [`Connection::send`].
    fn handle(
        self: Rc<Self>,
        connection: Rc<Connection>,
        request: RemotingCommand,
    ) -> impl Future<Output = Option<Response>>;

    /// The connection is gone: forget whatever refers to it (held pulls, group membership).
    fn connection_closed(&self, connection: &Connection) {
        let _ = connection;
    }
}

/// A response ready to be written.
#[derive(Debug)]
pub enum Response {
    /// A whole command, body included.
    Command(RemotingCommand),
    /// A command whose body is the concatenation of `body_parts` (e.g. stored messages
    /// sliced out of the CommitLog), written without copying them into one buffer.
    Parts {
        header: RemotingCommand,
        body_parts: Vec<Bytes>,
        /// The memory the body holds ([`crate::memory`]: the connection's and the broker's),
        /// given back once written.
        memory: Vec<BudgetPermit>,
    },
}

/// A live connection as seen by request handlers.
#[derive(Debug)]
pub struct Connection {
    pub id: u64,
    pub peer: SocketAddr,
    /// Serialization of the last request read; responses mirror it (protocol.md §1.4).
    serialize_type: Cell<SerializeType>,
    outbox: RefCell<VecDeque<Bytes>>,
    outbox_bytes: Cell<usize>,
    /// Past this many queued response bytes the reader pauses and pulls wait.
    outbox_limit_bytes: usize,
    /// Bytes ever queued / ever written: a permit goes back once the bytes queued up to
    /// and including its answer are written.
    queued_total_bytes: Cell<u64>,
    written_total_bytes: Cell<u64>,
    /// Memory permits of queued answers, by the queued total that releases them.
    permits: RefCell<VecDeque<(u64, Vec<BudgetPermit>)>>,
    /// What this connection's answers may hold at once, read or queued: a pull takes its
    /// share before it reads, so a client that does not read its answers gets no more read
    /// for it, and cannot take the whole broker budget.
    memory: Arc<MemoryBudget>,
    in_flight: Cell<usize>,
    in_flight_bytes: Cell<usize>,
    closed: Cell<bool>,
    writer_wake: LocalNotify,
    /// Backlog drained (a request finished or the outbox shrank): the reader may go on.
    reader_wake: LocalNotify,
    /// The connection was closed from the write side: abandon the pending read.
    close_wake: LocalNotify,
    /// The connection was closed: abandon a write the peer is not reading.
    writer_close_wake: LocalNotify,
    /// Monotonic time of the last read or write ([`crate::clock`]), for the idle timeout.
    last_active_ms: Cell<u64>,
}

impl Connection {
    fn new(peer: SocketAddr, outbox_limit_bytes: usize) -> Self {
        Connection {
            id: NEXT_CONNECTION_ID.fetch_add(1, Ordering::Relaxed),
            peer,
            serialize_type: Cell::new(SerializeType::Json),
            outbox: RefCell::new(VecDeque::new()),
            outbox_bytes: Cell::new(0),
            outbox_limit_bytes,
            queued_total_bytes: Cell::new(0),
            written_total_bytes: Cell::new(0),
            permits: RefCell::new(VecDeque::new()),
            memory: MemoryBudget::new(outbox_limit_bytes),
            in_flight: Cell::new(0),
            in_flight_bytes: Cell::new(0),
            closed: Cell::new(false),
            writer_wake: LocalNotify::default(),
            reader_wake: LocalNotify::default(),
            close_wake: LocalNotify::default(),
            writer_close_wake: LocalNotify::default(),
            last_active_ms: Cell::new(crate::clock::monotonic_ms()),
        }
    }

    fn touch(&self) {
        self.last_active_ms.set(crate::clock::monotonic_ms());
    }

    pub fn is_closed(&self) -> bool {
        self.closed.get()
    }

    /// Queues a response (or a broker-initiated request such as
    /// NOTIFY_CONSUMER_IDS_CHANGED) for writing. Dropped if the connection is closed or the
    /// command cannot be encoded (logged: that is a bug on our side, not the peer's).
    pub fn send(&self, response: Response) {
        if self.closed.get() {
            return;
        }
        let serialize_type = self.serialize_type.get();
        let mut prefix = BytesMut::new();
        let mut memory = Vec::new();
        let encoded = match response {
            Response::Command(command) => {
                encode_frame(&command, serialize_type, &mut prefix).map(|()| vec![prefix.freeze()])
            }
            Response::Parts {
                header,
                body_parts,
                memory: permit,
            } => {
                memory = permit;
                let body_len = body_parts.iter().map(Bytes::len).sum();
                encode_frame_prefix(&header, body_len, serialize_type, &mut prefix).map(|()| {
                    let mut parts = Vec::with_capacity(body_parts.len() + 1);
                    parts.push(prefix.freeze());
                    parts.extend(body_parts);
                    parts
                })
            }
        };
        match encoded {
            Ok(parts) => {
                let mut outbox = self.outbox.borrow_mut();
                for part in parts {
                    self.outbox_bytes.set(self.outbox_bytes.get() + part.len());
                    self.queued_total_bytes
                        .set(self.queued_total_bytes.get() + part.len() as u64);
                    outbox.push_back(part);
                }
                drop(outbox);
                if !memory.is_empty() {
                    self.permits
                        .borrow_mut()
                        .push_back((self.queued_total_bytes.get(), memory));
                }
                self.writer_wake.notify();
            }
            Err(error) => tracing::error!(connection = self.id, %error, "cannot encode response"),
        }
    }

    fn is_backlogged(&self) -> bool {
        self.in_flight.get() >= MAX_IN_FLIGHT_REQUESTS
            || self.in_flight_bytes.get() >= MAX_IN_FLIGHT_BYTES
            || self.outbox_is_full()
    }

    fn outbox_is_full(&self) -> bool {
        self.outbox_bytes.get() >= self.outbox_limit_bytes
    }

    /// The budget this connection's answers draw from (besides the broker's).
    pub fn memory(&self) -> &Arc<MemoryBudget> {
        &self.memory
    }

    /// `written` more bytes reached the socket: give back the memory of the answers now
    /// written whole.
    fn written(&self, written: usize) {
        self.outbox_bytes
            .set(self.outbox_bytes.get().saturating_sub(written));
        let total = self.written_total_bytes.get() + written as u64;
        self.written_total_bytes.set(total);
        let mut permits = self.permits.borrow_mut();
        while permits.front().is_some_and(|(mark, _)| *mark <= total) {
            permits.pop_front();
        }
    }

    /// Closes the connection from our side (e.g. a group member silent for too long): the
    /// reader stops, queued responses are dropped, the socket closes.
    pub fn close(&self) {
        self.closed.set(true);
        self.outbox.borrow_mut().clear();
        self.outbox_bytes.set(0);
        self.permits.borrow_mut().clear();
        // Pulls waiting for this connection's room give up: nobody reads their answers.
        self.memory.close();
        self.writer_wake.notify();
        self.reader_wake.notify();
        self.close_wake.notify();
        self.writer_close_wake.notify();
    }
}

/// The live connections of one runtime (a shard, the name server), so that those idle for
/// longer than the idle timeout are closed (RocketMQ closes a channel after 120 s without a
/// read or a write; clients reconnect on their next request, and their heartbeats every 30 s
/// keep a consumer's connection busy).
#[derive(Debug)]
pub struct ConnectionTable {
    live: RefCell<HashMap<u64, Weak<Connection>>>,
    /// Each connection's bound on queued answers.
    outbox_limit_bytes: usize,
}

impl Default for ConnectionTable {
    fn default() -> Self {
        ConnectionTable::new(MAX_OUTBOX_BYTES)
    }
}

impl ConnectionTable {
    /// A table whose connections queue at most `outbox_limit_bytes` of answers each.
    pub fn new(outbox_limit_bytes: usize) -> Self {
        ConnectionTable {
            live: RefCell::new(HashMap::new()),
            outbox_limit_bytes,
        }
    }

    /// Connections open now.
    pub fn len(&self) -> usize {
        self.live.borrow().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Closes every connection with no read or write for `idle_ms`; returns how many.
    pub fn close_idle(&self, now_ms: u64, idle_ms: u64) -> usize {
        let idle: Vec<Rc<Connection>> = self
            .live
            .borrow()
            .values()
            .filter_map(Weak::upgrade)
            .filter(|c| now_ms.saturating_sub(c.last_active_ms.get()) >= idle_ms)
            .collect();
        for connection in &idle {
            tracing::info!(connection = connection.id, peer = %connection.peer, idle_ms, "closing an idle connection");
            connection.close();
        }
        idle.len()
    }

    /// Closes idle connections every `idle / 4` (at most every 10 s) until the table is
    /// dropped. `idle` of zero: never.
    pub async fn sweep_idle(table: Weak<ConnectionTable>, idle: Duration) {
        if idle.is_zero() {
            return;
        }
        let period = (idle / 4).clamp(Duration::from_millis(50), Duration::from_secs(10));
        let idle_ms = u64::try_from(idle.as_millis()).unwrap_or(u64::MAX);
        loop {
            compio::time::sleep(period).await;
            let Some(table) = table.upgrade() else {
                return;
            };
            table.close_idle(crate::clock::monotonic_ms(), idle_ms);
        }
    }
}

/// Serves one connection until the peer closes it, a frame cannot be decoded, I/O fails or
/// it stays idle past the table's sweep.
pub async fn serve<S: Service>(
    stream: TcpStream,
    peer: SocketAddr,
    service: Rc<S>,
    table: Rc<ConnectionTable>,
) {
    // Small responses must not wait for Nagle; batching is done by the writer.
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%peer, %error, "set_nodelay failed");
    }
    let connection = Rc::new(Connection::new(peer, table.outbox_limit_bytes));
    table
        .live
        .borrow_mut()
        .insert(connection.id, Rc::downgrade(&connection));
    let writer = compio::runtime::spawn(write_loop(stream.clone(), Rc::clone(&connection)));
    read_loop(stream, &connection, &service).await;
    connection.close();
    table.live.borrow_mut().remove(&connection.id);
    service.connection_closed(&connection);
    let _ = writer.await;
}

async fn read_loop<S: Service>(
    mut stream: TcpStream,
    connection: &Rc<Connection>,
    service: &Rc<S>,
) {
    let limits = FrameLimits::default();
    let mut buffer = BytesMut::with_capacity(READ_CHUNK_BYTES);
    loop {
        // Decode the complete frames already buffered, while the connection has room.
        while !connection.is_backlogged() {
            let (serialize_type, frame_bytes) = match peek_frame_prefix(&buffer, &limits) {
                Ok(Some(prefix)) => (prefix.serialize_type, prefix.frame_bytes),
                Ok(None) => break,
                Err(error) => {
                    tracing::info!(connection = connection.id, peer = %connection.peer, %error, "bad frame; closing");
                    return;
                }
            };
            match decode_frame(&mut buffer, &limits) {
                Ok(Some(request)) => {
                    connection.serialize_type.set(serialize_type);
                    dispatch(connection, service, request, frame_bytes);
                }
                Ok(None) => break,
                Err(error) => {
                    tracing::info!(connection = connection.id, peer = %connection.peer, %error, "undecodable frame; closing");
                    return;
                }
            }
        }
        if connection.is_backlogged() {
            while connection.is_backlogged() && !connection.is_closed() {
                connection.reader_wake.notified().await;
            }
            // Frames may be buffered already: decode them before reading more.
            if !connection.is_closed() {
                continue;
            }
        }
        if connection.is_closed() {
            return;
        }
        if buffer.capacity() - buffer.len() < READ_CHUNK_BYTES / 4 {
            buffer.reserve(READ_CHUNK_BYTES);
        }
        let read = stream.append(buffer);
        let closed = connection.close_wake.notified();
        let read = std::pin::pin!(read);
        let closed = std::pin::pin!(closed);
        let BufResult(result, returned) = match select(read, closed).await {
            Either::Left((result, _)) => result,
            // Closed by the writer (write error): stop reading.
            Either::Right(_) => return,
        };
        buffer = returned;
        match result {
            Ok(0) => return,
            Ok(_) => connection.touch(),
            Err(error) => {
                tracing::debug!(connection = connection.id, %error, "read failed");
                return;
            }
        }
    }
}

fn dispatch<S: Service>(
    connection: &Rc<Connection>,
    service: &Rc<S>,
    request: RemotingCommand,
    frame_bytes: usize,
) {
    if request.is_response() {
        // Answers to broker-initiated requests (we send those oneway); nothing waits for them.
        return;
    }
    let oneway = request.is_oneway();
    let connection = Rc::clone(connection);
    let service = Rc::clone(service);
    connection.in_flight.set(connection.in_flight.get() + 1);
    connection
        .in_flight_bytes
        .set(connection.in_flight_bytes.get() + frame_bytes);
    compio::runtime::spawn(async move {
        let response = Rc::clone(&service)
            .handle(Rc::clone(&connection), request)
            .await;
        connection
            .in_flight
            .set(connection.in_flight.get().saturating_sub(1));
        connection
            .in_flight_bytes
            .set(connection.in_flight_bytes.get().saturating_sub(frame_bytes));
        if let (Some(response), false) = (response, oneway) {
            connection.send(response);
        }
        connection.reader_wake.notify();
    })
    .detach();
}

async fn write_loop(mut stream: TcpStream, connection: Rc<Connection>) {
    loop {
        let batch: Vec<Bytes> = {
            let mut outbox = connection.outbox.borrow_mut();
            let count = outbox.len().min(MAX_WRITE_BATCH);
            outbox.drain(..count).collect()
        };
        if batch.is_empty() {
            if connection.is_closed() {
                return;
            }
            connection.writer_wake.notified().await;
            continue;
        }
        let written: usize = batch.iter().map(Bytes::len).sum();
        let write = std::pin::pin!(stream.write_vectored_all(batch));
        let closed = std::pin::pin!(connection.writer_close_wake.notified());
        let BufResult(result, _) = match select(write, closed).await {
            Either::Left((result, _)) => result,
            // Closed (idle timeout, a silent member) while the peer reads nothing: drop
            // the write, so the socket and its slot are given back.
            Either::Right(_) => return,
        };
        connection.touch();
        connection.written(written);
        connection.reader_wake.notify();
        if let Err(error) = result {
            tracing::debug!(connection = connection.id, %error, "write failed; closing");
            connection.close();
            return;
        }
    }
}

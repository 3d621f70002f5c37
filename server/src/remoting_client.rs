//! A small remoting client on one TCP connection, for the broker's own outgoing requests:
//! REGISTER_BROKER / UNREGISTER_BROKER to name servers, and later a slave's config sync with
//! its master.
//!
//! Runs on the compio runtime of the thread that created it (`!Send`). Requests may be in
//! flight concurrently; each gets a fresh `opaque` and waits for the response carrying it.
//! A reader task owns the receiving side and hands each response to its waiter; writes are
//! serialised by an async mutex so frames never interleave. Invariants: an opaque is in
//! `pending` only while its caller waits (a timed-out or dropped call removes it); once the
//! connection is closed (EOF, read or write error, undecodable frame) every waiter fails
//! with [`ClientError::Closed`] and the client stays closed — make a new one to reconnect.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use bytes::BytesMut;
use compio::io::{AsyncReadExt, AsyncWriteExt};
use compio::net::TcpStream;
use compio::BufResult;
use futures_util::lock::Mutex;
use ringmq_protocol::command::RemotingCommand;
use ringmq_protocol::frame::{decode_frame, encode_frame, FrameEncodeError, FrameLimits};
use ringmq_protocol::header::SerializeType;

use crate::notify::LocalNotify;

/// How much the read buffer grows by when it is full.
const READ_CHUNK_BYTES: usize = 64 * 1024;

/// Why a request got no response.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot connect to {addr}")]
    Connect {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("connecting to {addr} timed out after {timeout_ms} ms")]
    ConnectTimeout { addr: String, timeout_ms: u128 },
    #[error("cannot encode request code {code}")]
    Encode {
        code: i32,
        #[source]
        source: FrameEncodeError,
    },
    #[error("writing to {addr} failed")]
    Write {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("connection to {addr} is closed")]
    Closed { addr: String },
    #[error("request code {code} to {addr}: no response within {timeout_ms} ms")]
    Timeout {
        addr: String,
        code: i32,
        timeout_ms: u128,
    },
}

/// One connection to a remoting server.
#[derive(Debug)]
pub struct RemotingClient {
    inner: Rc<Inner>,
    /// Dropping the handle cancels the reader task, which closes the socket with the writer.
    _reader: compio::runtime::JoinHandle<()>,
}

#[derive(Debug)]
struct Inner {
    addr: String,
    writer: Mutex<TcpStream>,
    pending: RefCell<HashMap<i32, Rc<PendingCall>>>,
    next_opaque: Cell<i32>,
    closed: Cell<bool>,
}

#[derive(Debug, Default)]
struct PendingCall {
    response: RefCell<Option<RemotingCommand>>,
    done: LocalNotify,
}

/// Removes a call from `pending` however its future ends (response, timeout, drop).
struct PendingGuard<'a> {
    inner: &'a Inner,
    opaque: i32,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        self.inner.pending.borrow_mut().remove(&self.opaque);
    }
}

impl RemotingClient {
    /// Connects to `addr` (`host:port`) within `timeout`.
    pub async fn connect(addr: &str, timeout: Duration) -> Result<Self, ClientError> {
        let stream = match compio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(source)) => {
                return Err(ClientError::Connect {
                    addr: addr.to_owned(),
                    source,
                })
            }
            Err(_) => {
                return Err(ClientError::ConnectTimeout {
                    addr: addr.to_owned(),
                    timeout_ms: timeout.as_millis(),
                })
            }
        };
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%addr, %error, "set_nodelay failed");
        }
        let inner = Rc::new(Inner {
            addr: addr.to_owned(),
            writer: Mutex::new(stream.clone()),
            pending: RefCell::new(HashMap::new()),
            next_opaque: Cell::new(1),
            closed: Cell::new(false),
        });
        let reader = compio::runtime::spawn(read_loop(stream, Rc::clone(&inner)));
        Ok(RemotingClient {
            inner,
            _reader: reader,
        })
    }

    /// The address this client connected to.
    pub fn addr(&self) -> &str {
        &self.inner.addr
    }

    /// Whether the connection is gone (every further call fails at once).
    pub fn is_closed(&self) -> bool {
        self.inner.closed.get()
    }

    /// Sends `request` (its opaque is replaced by a fresh one) and waits up to `timeout` for
    /// the response. Any response code is `Ok`: what it means is the caller's business.
    pub async fn call(
        &self,
        mut request: RemotingCommand,
        timeout: Duration,
    ) -> Result<RemotingCommand, ClientError> {
        let inner = &*self.inner;
        if inner.closed.get() {
            return Err(inner.closed_error());
        }
        let opaque = inner.fresh_opaque();
        request.opaque = opaque;
        let code = request.code;
        let call = Rc::new(PendingCall::default());
        inner.pending.borrow_mut().insert(opaque, Rc::clone(&call));
        let _guard = PendingGuard { inner, opaque };
        let exchange = async {
            inner.write(&request).await?;
            loop {
                if let Some(response) = call.response.borrow_mut().take() {
                    return Ok(response);
                }
                if inner.closed.get() {
                    return Err(inner.closed_error());
                }
                call.done.notified().await;
            }
        };
        match compio::time::timeout(timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(ClientError::Timeout {
                addr: inner.addr.clone(),
                code,
                timeout_ms: timeout.as_millis(),
            }),
        }
    }

    /// Sends `request` as oneway: flagged so, and nothing is awaited but the write.
    pub async fn send_oneway(&self, request: RemotingCommand) -> Result<(), ClientError> {
        let inner = &*self.inner;
        if inner.closed.get() {
            return Err(inner.closed_error());
        }
        let request = request.with_opaque(inner.fresh_opaque()).oneway();
        inner.write(&request).await
    }
}

impl Inner {
    fn fresh_opaque(&self) -> i32 {
        let opaque = self.next_opaque.get();
        self.next_opaque.set(opaque.wrapping_add(1));
        opaque
    }

    fn closed_error(&self) -> ClientError {
        ClientError::Closed {
            addr: self.addr.clone(),
        }
    }

    async fn write(&self, request: &RemotingCommand) -> Result<(), ClientError> {
        let mut frame = BytesMut::new();
        encode_frame(request, SerializeType::Json, &mut frame).map_err(|source| {
            ClientError::Encode {
                code: request.code,
                source,
            }
        })?;
        let mut stream = self.writer.lock().await;
        let BufResult(result, _) = stream.write_all(frame.freeze()).await;
        if let Err(source) = result {
            self.close();
            return Err(ClientError::Write {
                addr: self.addr.clone(),
                source,
            });
        }
        Ok(())
    }

    fn close(&self) {
        self.closed.set(true);
        for call in self.pending.borrow().values() {
            call.done.notify();
        }
    }

    fn deliver(&self, response: RemotingCommand) {
        let call = self.pending.borrow().get(&response.opaque).cloned();
        match call {
            Some(call) => {
                *call.response.borrow_mut() = Some(response);
                call.done.notify();
            }
            // The caller gave up (timeout) before the answer came.
            None => {
                tracing::debug!(addr = %self.addr, opaque = response.opaque, "late response dropped")
            }
        }
    }
}

async fn read_loop(mut stream: TcpStream, inner: Rc<Inner>) {
    let limits = FrameLimits::default();
    let mut buffer = BytesMut::with_capacity(READ_CHUNK_BYTES);
    loop {
        loop {
            match decode_frame(&mut buffer, &limits) {
                Ok(Some(command)) if command.is_response() => inner.deliver(command),
                Ok(Some(command)) => {
                    tracing::debug!(addr = %inner.addr, code = command.code, "request from server ignored")
                }
                Ok(None) => break,
                Err(error) => {
                    tracing::warn!(addr = %inner.addr, %error, "undecodable frame; closing");
                    inner.close();
                    return;
                }
            }
        }
        if buffer.capacity() - buffer.len() < READ_CHUNK_BYTES / 4 {
            buffer.reserve(READ_CHUNK_BYTES);
        }
        let BufResult(result, returned) = stream.append(buffer).await;
        buffer = returned;
        match result {
            Ok(0) => break,
            Ok(_) => {}
            Err(error) => {
                tracing::debug!(addr = %inner.addr, %error, "read failed");
                break;
            }
        }
    }
    inner.close();
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use ringmq_protocol::codes::response_code;
    use ringmq_protocol::command::ExtFields;

    use super::*;

    fn run<F: std::future::Future>(future: F) -> F::Output {
        compio::runtime::Runtime::new().unwrap().block_on(future)
    }

    /// A server thread that reads one frame and answers with the given frames, then waits
    /// for the peer to close.
    fn one_shot_server(
        answer: impl FnOnce(RemotingCommand) -> Vec<RemotingCommand> + Send + 'static,
    ) -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        std::thread::spawn(move || {
            let (mut socket, _) = listener.accept().unwrap();
            let mut buffer = BytesMut::new();
            let request = loop {
                if let Some(command) = decode_frame(&mut buffer, &FrameLimits::default()).unwrap() {
                    break command;
                }
                let mut chunk = [0u8; 4096];
                let n = socket.read(&mut chunk).unwrap();
                if n == 0 {
                    return;
                }
                buffer.extend_from_slice(&chunk[..n]);
            };
            let mut out = BytesMut::new();
            for response in answer(request) {
                encode_frame(&response, SerializeType::Json, &mut out).unwrap();
            }
            socket.write_all(&out).unwrap();
            let mut rest = [0u8; 64];
            let _ = socket.read(&mut rest);
        });
        addr
    }

    #[test]
    fn a_call_gets_the_response_with_its_opaque() {
        let addr = one_shot_server(|request| {
            let stray = RemotingCommand::response_to(&request, response_code::SYSTEM_ERROR)
                .with_opaque(request.opaque.wrapping_add(100));
            let answer =
                RemotingCommand::response_to(&request, response_code::SUCCESS).with_remark("mine");
            vec![stray, answer]
        });
        let response = run(async {
            let client = RemotingClient::connect(&addr, Duration::from_secs(5))
                .await
                .unwrap();
            client
                .call(
                    RemotingCommand::request(106, ExtFields::new()),
                    Duration::from_secs(5),
                )
                .await
        })
        .unwrap();
        assert_eq!(response.code, response_code::SUCCESS);
        assert_eq!(response.remark.as_deref(), Some("mine"));
    }

    #[test]
    fn a_call_without_an_answer_times_out() {
        let addr = one_shot_server(|_| Vec::new());
        let error = run(async {
            let client = RemotingClient::connect(&addr, Duration::from_secs(5))
                .await
                .unwrap();
            client
                .call(
                    RemotingCommand::request(106, ExtFields::new()),
                    Duration::from_millis(100),
                )
                .await
        })
        .unwrap_err();
        assert!(
            matches!(error, ClientError::Timeout { code: 106, .. }),
            "{error}"
        );
    }

    #[test]
    fn a_connection_closed_by_the_server_fails_the_call() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        std::thread::spawn(move || {
            let (socket, _) = listener.accept().unwrap();
            drop(socket);
        });
        let error = run(async {
            let client = RemotingClient::connect(&addr, Duration::from_secs(5))
                .await
                .unwrap();
            client
                .call(
                    RemotingCommand::request(106, ExtFields::new()),
                    Duration::from_secs(5),
                )
                .await
        })
        .unwrap_err();
        assert!(
            matches!(
                error,
                ClientError::Closed { .. } | ClientError::Write { .. }
            ),
            "{error}"
        );
    }

    #[test]
    fn connecting_to_a_closed_port_is_a_connect_error() {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let error = run(RemotingClient::connect(
            &format!("127.0.0.1:{port}"),
            Duration::from_secs(5),
        ))
        .unwrap_err();
        assert!(matches!(error, ClientError::Connect { .. }), "{error}");
    }
}

//! Shared by the server's integration tests: start the real `ringmq-server` binary on
//! port 0 with a temporary store, and talk to it over real TCP with the protocol crate.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use ringmq_protocol::command::{ExtFields, RemotingCommand};
use ringmq_protocol::frame::{decode_frame, encode_frame, FrameLimits};
use ringmq_protocol::header::SerializeType;

/// A running broker process; killed when dropped.
pub struct Broker {
    pub child: Child,
    pub broker_addr: SocketAddr,
    pub namesrv_addr: Option<SocketAddr>,
    pub store: tempfile::TempDir,
    lines: mpsc::Receiver<String>,
}

impl Broker {
    /// Starts the broker with a fresh store and the given extra flags.
    pub fn start(extra_args: &[&str]) -> Broker {
        let store = tempfile::tempdir().unwrap();
        Broker::start_on_store(store, extra_args)
    }

    /// Starts the broker on an existing store directory (restarts).
    pub fn start_on_store(store: tempfile::TempDir, extra_args: &[&str]) -> Broker {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ringmq-server"))
            .args(["--listen", "127.0.0.1:0", "--namesrv-listen", "127.0.0.1:0"])
            // Small segments: tests must not preallocate a GiB per shard.
            .args(["--segment-size", "16777216"])
            .arg("--store")
            .arg(store.path())
            .args(extra_args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut broker_addr = None;
        let mut namesrv_addr = None;
        while broker_addr.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = lines
                .recv_timeout(left)
                .expect("broker did not print its listening line within 30 s");
            if let Some(addr) = line.strip_prefix("listening broker ") {
                broker_addr = Some(addr.trim().parse().unwrap());
            } else if let Some(addr) = line.strip_prefix("listening namesrv ") {
                namesrv_addr = Some(addr.trim().parse().unwrap());
            }
        }
        Broker {
            child,
            broker_addr: broker_addr.unwrap(),
            namesrv_addr,
            store,
            lines,
        }
    }

    pub fn connect(&self) -> TestClient {
        TestClient::connect(self.broker_addr)
    }

    /// Sends SIGTERM and waits (bounded) for the exit status.
    pub fn terminate(mut self) -> (std::process::ExitStatus, tempfile::TempDir) {
        // SAFETY: kill(2) with a pid we spawned and still own (not yet reaped).
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let status = wait_bounded(&mut self.child, Duration::from_secs(30));
        let store = std::mem::replace(&mut self.store, tempfile::tempdir().unwrap());
        (status, store)
    }

    /// SIGKILL: no shutdown work at all.
    pub fn kill9(mut self) -> tempfile::TempDir {
        self.child.kill().unwrap();
        let _ = self.child.wait();
        std::mem::replace(&mut self.store, tempfile::tempdir().unwrap())
    }

    /// Is the process still running?
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_bounded(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "broker did not exit within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A blocking remoting client for tests: one request at a time unless told otherwise.
pub struct TestClient {
    pub stream: TcpStream,
    buffer: BytesMut,
    next_opaque: i32,
}

impl TestClient {
    pub fn connect(addr: SocketAddr) -> TestClient {
        let stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        stream.set_nodelay(true).unwrap();
        TestClient {
            stream,
            buffer: BytesMut::new(),
            next_opaque: 1,
        }
    }

    /// Writes a request with a fresh opaque; returns that opaque.
    pub fn send(&mut self, mut request: RemotingCommand, serialize_type: SerializeType) -> i32 {
        let opaque = self.next_opaque;
        self.next_opaque += 1;
        request.opaque = opaque;
        let mut out = BytesMut::new();
        encode_frame(&request, serialize_type, &mut out).unwrap();
        self.stream.write_all(&out).unwrap();
        opaque
    }

    /// Reads the next frame, or None if the server closed the connection (or timed out).
    pub fn receive(&mut self) -> Option<RemotingCommand> {
        let limits = FrameLimits::default();
        loop {
            if let Some(command) = decode_frame(&mut self.buffer, &limits).unwrap() {
                return Some(command);
            }
            let mut chunk = [0u8; 64 * 1024];
            match self.stream.read(&mut chunk) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buffer.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Sends a request and waits for the response with its opaque.
    pub fn call(&mut self, request: RemotingCommand) -> RemotingCommand {
        self.call_with(request, SerializeType::Json)
    }

    pub fn call_with(
        &mut self,
        request: RemotingCommand,
        serialize_type: SerializeType,
    ) -> RemotingCommand {
        let opaque = self.send(request, serialize_type);
        loop {
            let response = self
                .receive()
                .expect("connection closed before the response");
            if response.is_response() && response.opaque == opaque {
                return response;
            }
        }
    }

    /// Has the server closed this connection (read returns EOF or reset within `within`)?
    pub fn is_closed_by_server(&mut self, within: Duration) -> bool {
        self.stream.set_read_timeout(Some(within)).unwrap();
        let mut chunk = [0u8; 4096];
        let deadline = Instant::now() + within;
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut =>
                {
                    return false
                }
                Err(_) => return true,
            }
            if Instant::now() >= deadline {
                return false;
            }
        }
    }
}

/// A request with the given code and string extFields.
pub fn request(code: i32, fields: &[(&str, &str)]) -> RemotingCommand {
    let ext: ExtFields = fields
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    RemotingCommand::request(code, ext)
}

//! Test support shared by ringmq's integration tests (server, client, bench, tools, compat):
//! start the real `ringmq-server` binary on port 0 with a temporary store, learn the ports it
//! chose from its `listening …` lines, wait for its name-server registration, and stop it
//! with SIGTERM or SIGKILL.
//!
//! The binary is `$RINGMQ_SERVER_BIN` if set, else `target/<profile>/ringmq-server` next to the
//! test executable (`cargo test --workspace` builds it). A missing binary fails the test with
//! the command that builds it; nothing is ever skipped silently.
//!
//! Only for tests: failures panic with a message saying what went wrong.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod powercut;
pub mod tmpfs;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use ringmq_protocol::body::{ClusterInfo, JsonBody};
use ringmq_protocol::codes::{request_code, response_code};
use ringmq_protocol::command::{ExtFields, RemotingCommand};
use ringmq_protocol::frame::{decode_frame, encode_frame, FrameLimits};
use ringmq_protocol::header::SerializeType;

/// Segment size tests run with: a broker must not preallocate a GiB per shard per test.
pub const TEST_SEGMENT_SIZE: &str = "16777216";

/// Disk limits tests run with: the store is a temporary directory on the machine's shared
/// disk, whose fullness is not the test's. With the defaults (sends refused above 90%, old
/// segments deleted above 75% / 85%) a test would fail, or lose messages, whenever other
/// users filled that disk. Tests of the disk limits pass their own (a flag given twice takes
/// its last value).
pub const TEST_DISK_LIMIT_ARGS: [&str; 6] = [
    "--disk-warning-percent",
    "100",
    "--disk-max-used-percent",
    "100",
    "--disk-clean-forcibly-percent",
    "100",
];

/// How long a broker may take to print its listening lines or register.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Says what a test did where CI's log shows it: on stderr (shown for failing tests, or with
/// `--nocapture`) and, when `$RINGMQ_TEST_REPORT` names a file, appended to it as one line
/// (`.ci/run` prints that file after the tests, so a skipped test is visible as skipped).
pub fn report(line: &str) {
    eprintln!("{line}");
    if let Some(path) = std::env::var_os("RINGMQ_TEST_REPORT") {
        let appended = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut file| writeln!(file, "{line}"));
        if let Err(e) = appended {
            eprintln!("could not append to RINGMQ_TEST_REPORT {path:?}: {e}");
        }
    }
}

/// The `ringmq-server` binary these tests run.
pub fn server_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("RINGMQ_SERVER_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("current_exe");
    // target/<profile>/deps/<test> → target/<profile>/ringmq-server
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test executable is not in target/<profile>/deps");
    let server = profile_dir.join("ringmq-server");
    assert!(
        server.is_file(),
        "{} is missing: build it with `cargo build -p ringmq-server` (same profile and target \
         dir as the tests; `cargo test --workspace` builds it), or set RINGMQ_SERVER_BIN",
        server.display()
    );
    server
}

/// A running broker process; killed when dropped.
#[derive(Debug)]
pub struct Broker {
    pub child: Child,
    pub broker_addr: SocketAddr,
    /// The embedded name server (absent when started with `--namesrv`).
    pub namesrv_addr: Option<SocketAddr>,
    pub store: tempfile::TempDir,
}

impl Broker {
    /// Starts a broker with an embedded name server on a fresh store; `extra_args` are added
    /// after the defaults (port 0 everywhere, small segments) and may override them.
    pub fn start(extra_args: &[&str]) -> Broker {
        Broker::start_on_store(tempfile::tempdir().expect("tempdir"), extra_args)
    }

    /// Starts a broker on an existing store directory (a restart).
    pub fn start_on_store(store: tempfile::TempDir, extra_args: &[&str]) -> Broker {
        let stderr = if std::env::var_os("RINGMQ_TEST_BROKER_LOG").is_some() {
            Stdio::inherit()
        } else {
            Stdio::null()
        };
        Broker::spawn(store, extra_args, stderr)
    }

    /// Starts a broker on a fresh store whose log (its stderr) goes to `log_file`, for tests
    /// that check what the broker logs.
    pub fn start_logging_to(log_file: &Path, extra_args: &[&str]) -> Broker {
        let log = std::fs::File::create(log_file).expect("creating the broker log file");
        Broker::spawn(
            tempfile::tempdir().expect("tempdir"),
            extra_args,
            log.into(),
        )
    }

    fn spawn(store: tempfile::TempDir, extra_args: &[&str], stderr: Stdio) -> Broker {
        let embedded = !extra_args.contains(&"--namesrv");
        let mut command = Command::new(server_binary());
        command.args(["--listen", "127.0.0.1:0"]);
        if !extra_args.contains(&"--segment-size") {
            command.args(["--segment-size", TEST_SEGMENT_SIZE]);
        }
        if embedded {
            command.args(["--namesrv-listen", "127.0.0.1:0"]);
        }
        command.args(TEST_DISK_LIMIT_ARGS);
        let mut child = command
            .arg("--store")
            .arg(store.path())
            .args(extra_args)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawning ringmq-server");
        let stdout = child.stdout.take().expect("stdout");
        let lines = line_channel(stdout);
        let deadline = Instant::now() + START_TIMEOUT;
        let mut broker_addr = None;
        let mut namesrv_addr = None;
        while broker_addr.is_none() || (embedded && namesrv_addr.is_none()) {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = lines
                .recv_timeout(left)
                .expect("ringmq-server did not print its listening lines within 30 s");
            if let Some(addr) = line.strip_prefix("listening broker ") {
                broker_addr = Some(addr.trim().parse().expect("broker address"));
            } else if let Some(addr) = line.strip_prefix("listening namesrv ") {
                namesrv_addr = Some(addr.trim().parse().expect("namesrv address"));
            }
        }
        let broker = Broker {
            child,
            broker_addr: broker_addr.expect("broker address"),
            namesrv_addr,
            store,
        };
        if embedded {
            broker.wait_registered();
        }
        broker
    }

    /// The flags that make a broker slave 1 of this one: `--role slave --broker-id 1
    /// --master <this broker> --namesrv <its embedded name server>`. A slave must also be
    /// given the master's `--shards`, `--segment-size` and `--broker-name`.
    pub fn slave_flags(&self) -> Vec<String> {
        [
            "--role",
            "slave",
            "--broker-id",
            "1",
            "--master",
            &self.broker_addr.to_string(),
            "--namesrv",
            &self.namesrv().to_string(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    /// A protocol-level client connected to the broker.
    pub fn connect(&self) -> TestClient {
        TestClient::connect(self.broker_addr)
    }

    /// The embedded name server's address.
    pub fn namesrv(&self) -> SocketAddr {
        self.namesrv_addr
            .expect("this broker was started without an embedded name server")
    }

    /// Waits until the embedded name server lists this broker (routes need it).
    pub fn wait_registered(&self) {
        let deadline = Instant::now() + START_TIMEOUT;
        let me = self.broker_addr.to_string();
        loop {
            if let Some(info) = cluster_info(self.namesrv()) {
                let registered = info
                    .broker_addr_table
                    .values()
                    .any(|b| b.broker_addrs.values().any(|a| *a == me));
                if registered {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "broker never registered with its name server"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, then waits (bounded) for the exit status; returns the store for a restart.
    pub fn terminate(mut self) -> (ExitStatus, tempfile::TempDir) {
        let pid = libc::pid_t::try_from(self.child.id()).expect("pid");
        // SAFETY: kill(2) on a child we spawned and have not reaped: the pid is still ours.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let deadline = Instant::now() + START_TIMEOUT;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "broker did not exit within 30 s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        (status, self.take_store())
    }

    /// SIGKILL: no shutdown work at all. Returns the store for a restart.
    pub fn kill9(mut self) -> tempfile::TempDir {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.take_store()
    }

    /// Is the process still running?
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }

    fn take_store(&mut self) -> tempfile::TempDir {
        std::mem::replace(&mut self.store, tempfile::tempdir().expect("tempdir"))
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The lines a child prints, read on a thread of their own (so the child never blocks on a
/// full pipe while the test waits for one line).
fn line_channel(stdout: std::process::ChildStdout) -> mpsc::Receiver<String> {
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    lines
}

/// A name server of its own (`ringmq-server namesrv`), for tests where brokers come and go
/// while clients keep finding routes; killed when dropped.
#[derive(Debug)]
pub struct NameServer {
    pub child: Child,
    pub addr: SocketAddr,
}

impl NameServer {
    /// Starts one on 127.0.0.1, port 0.
    pub fn start() -> NameServer {
        let mut child = Command::new(server_binary())
            .args(["namesrv", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawning ringmq-server namesrv");
        let stdout = child.stdout.take();
        // Owned from here: a failed start below still kills and reaps the process.
        let mut name_server = NameServer {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        };
        let stdout = stdout.expect("stdout");
        let lines = line_channel(stdout);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = lines
                .recv_timeout(left)
                .expect("the name server did not print its listening line within 30 s");
            if let Some(addr) = line.strip_prefix("listening namesrv ") {
                name_server.addr = addr.trim().parse().expect("namesrv address");
                return name_server;
            }
        }
    }

    /// Waits (bounded) until the name server lists a broker at `broker_addr`.
    pub fn wait_registered(&self, broker_addr: SocketAddr) {
        let deadline = Instant::now() + START_TIMEOUT;
        let me = broker_addr.to_string();
        loop {
            if let Some(info) = cluster_info(self.addr) {
                if info
                    .broker_addr_table
                    .values()
                    .any(|b| b.broker_addrs.values().any(|a| *a == me))
                {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "{me} never registered with the name server"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for NameServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free port whose successor is free too (a broker's HA port defaults to its port + 1),
/// for a broker that must come back on the same address after a restart.
pub fn free_port_pair() -> u16 {
    for _ in 0..50 {
        let first = std::net::TcpListener::bind("127.0.0.1:0").expect("binding port 0");
        let port = first.local_addr().expect("local_addr").port();
        if port < u16::MAX && std::net::TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return port;
        }
    }
    panic!("no two adjacent free ports in 50 tries");
}

/// GET_BROKER_CLUSTER_INFO from a name server, or None if it cannot be asked yet.
fn cluster_info(namesrv: SocketAddr) -> Option<ClusterInfo> {
    let mut client = TestClient::try_connect(namesrv)?;
    let response = client.try_call(RemotingCommand::request(
        request_code::GET_BROKER_CLUSTER_INFO,
        ExtFields::new(),
    ))?;
    if response.code != response_code::SUCCESS {
        return None;
    }
    ClusterInfo::decode(&response.body).ok()
}

/// A blocking remoting client for protocol-level tests.
#[derive(Debug)]
pub struct TestClient {
    pub stream: TcpStream,
    buffer: BytesMut,
    next_opaque: i32,
}

impl TestClient {
    pub fn connect(addr: SocketAddr) -> TestClient {
        TestClient::try_connect(addr).expect("connecting to the broker")
    }

    fn try_connect(addr: SocketAddr) -> Option<TestClient> {
        let stream = TcpStream::connect(addr).ok()?;
        stream.set_read_timeout(Some(START_TIMEOUT)).ok()?;
        stream.set_nodelay(true).ok()?;
        Some(TestClient {
            stream,
            buffer: BytesMut::new(),
            next_opaque: 1,
        })
    }

    /// Writes a request with a fresh opaque; returns that opaque.
    pub fn send(&mut self, mut request: RemotingCommand, serialize_type: SerializeType) -> i32 {
        let opaque = self.next_opaque;
        self.next_opaque += 1;
        request.opaque = opaque;
        let mut out = BytesMut::new();
        encode_frame(&request, serialize_type, &mut out).expect("encoding a test request");
        self.stream.write_all(&out).expect("writing a test request");
        opaque
    }

    /// Reads the next frame, or None if the server closed the connection (or timed out).
    pub fn receive(&mut self) -> Option<RemotingCommand> {
        let limits = FrameLimits::default();
        loop {
            if let Some(command) = decode_frame(&mut self.buffer, &limits).expect("bad frame") {
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
        self.response_to(opaque)
            .expect("connection closed before the response")
    }

    /// Sends a request and waits for its response; None if the connection is gone (the
    /// broker was killed) before either.
    pub fn try_call(&mut self, mut request: RemotingCommand) -> Option<RemotingCommand> {
        let opaque = self.next_opaque;
        self.next_opaque += 1;
        request.opaque = opaque;
        let mut out = BytesMut::new();
        encode_frame(&request, SerializeType::Json, &mut out).expect("encoding a test request");
        self.stream.write_all(&out).ok()?;
        self.response_to(opaque)
    }

    fn response_to(&mut self, opaque: i32) -> Option<RemotingCommand> {
        loop {
            let response = self.receive()?;
            if response.is_response() && response.opaque == opaque {
                return Some(response);
            }
        }
    }

    /// Has the server closed this connection (EOF or reset within `within`)?
    pub fn is_closed_by_server(&mut self, within: Duration) -> bool {
        self.stream.set_read_timeout(Some(within)).expect("timeout");
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

/// SEND_MESSAGE_V2 of `body` to `(topic, queue_id)` from producer group `PG`, auto-creating
/// the topic from TBW102 with 4 queues; `properties` in RocketMQ's `k\u{1}v\u{2}` form.
pub fn send_request(topic: &str, queue_id: i32, properties: &str, body: &[u8]) -> RemotingCommand {
    let queue = queue_id.to_string();
    request(
        request_code::SEND_MESSAGE_V2,
        &[
            ("a", "PG"),
            ("b", topic),
            ("c", "TBW102"),
            ("d", "4"),
            ("e", &queue),
            ("f", "0"),
            ("g", "1700000000000"),
            ("h", "0"),
            ("i", properties),
        ],
    )
    .with_body(bytes::Bytes::copy_from_slice(body))
}

/// PULL_MESSAGE of up to 32 messages of `(topic, queue_id)` from `offset` for `group`, with
/// its own subscription `*`; held up to `suspend_ms` when that is positive.
pub fn pull_request(
    group: &str,
    topic: &str,
    queue_id: i32,
    offset: i64,
    suspend_ms: i64,
) -> RemotingCommand {
    // FLAG_SUBSCRIPTION, plus FLAG_SUSPEND when the pull may be held.
    let flags = if suspend_ms > 0 { 0x2 | 0x4 } else { 0x4 };
    request(
        request_code::PULL_MESSAGE,
        &[
            ("consumerGroup", group),
            ("topic", topic),
            ("queueId", &queue_id.to_string()),
            ("queueOffset", &offset.to_string()),
            ("maxMsgNums", "32"),
            ("sysFlag", &flags.to_string()),
            ("commitOffset", "0"),
            ("suspendTimeoutMillis", &suspend_ms.to_string()),
            ("subscription", "*"),
            ("subVersion", "0"),
        ],
    )
}

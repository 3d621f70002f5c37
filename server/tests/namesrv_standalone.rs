//! `ringmq-server namesrv --listen ADDR` on its own, and a broker registering with it as an
//! external name server (`--namesrv ADDR`): real processes, real sockets, port 0.
// Helpers outside #[test] fns unwrap too: clippy only exempts the test functions.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ringmq_protocol::codes::{request_code, response_code};
use support::{request, TestClient};

/// A child process killed when dropped, whose stdout lines are read on a thread.
struct Process {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Process {
    fn spawn(args: &[&str]) -> Process {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ringmq-server"))
            .args(args)
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
        Process { child, lines }
    }

    /// The address on the first stdout line starting with `prefix`.
    fn address(&self, prefix: &str) -> SocketAddr {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no `{prefix}` line within 30 s"));
            if let Some(addr) = line.strip_prefix(prefix) {
                return addr.trim().parse().unwrap();
            }
        }
    }

    fn terminate(mut self) -> ExitStatus {
        // SAFETY: kill(2) on a child we spawned and have not reaped.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "no exit within 30 s of SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn route_code(client: &mut TestClient, topic: &str) -> i32 {
    client
        .call(request(
            request_code::GET_ROUTEINFO_BY_TOPIC,
            &[("topic", topic)],
        ))
        .code
}

#[test]
fn a_standalone_name_server_answers_and_exits_0_on_sigterm() {
    let namesrv = Process::spawn(&["namesrv", "--listen", "127.0.0.1:0"]);
    let addr = namesrv.address("listening namesrv ");
    assert_ne!(addr.port(), 0);
    let mut client = TestClient::connect(addr);
    let response = client.call(request(request_code::GET_BROKER_CLUSTER_INFO, &[]));
    assert_eq!(response.code, response_code::SUCCESS);
    let info: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
    assert_eq!(info["brokerAddrTable"], serde_json::json!({}));
    assert_eq!(
        route_code(&mut client, "TBW102"),
        response_code::TOPIC_NOT_EXIST
    );
    assert!(namesrv.terminate().success());
}

#[test]
fn a_broker_registers_with_an_external_name_server_and_unregisters_at_shutdown() {
    let namesrv = Process::spawn(&["namesrv", "--listen", "127.0.0.1:0"]);
    let namesrv_addr = namesrv.address("listening namesrv ").to_string();
    let store = tempfile::tempdir().unwrap();
    let broker = Process::spawn(&[
        "--listen",
        "127.0.0.1:0",
        "--namesrv",
        &namesrv_addr,
        "--store",
        store.path().to_str().unwrap(),
        "--shards",
        "1",
        "--broker-name",
        "external-broker",
    ]);
    let broker_addr = broker.address("listening broker ");
    let mut client = TestClient::connect(namesrv_addr.parse().unwrap());
    let response = client.call(request(
        request_code::GET_ROUTEINFO_BY_TOPIC,
        &[("topic", "TBW102")],
    ));
    assert_eq!(
        response.code,
        response_code::SUCCESS,
        "{:?}",
        response.remark
    );
    let route: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
    assert_eq!(
        route["brokerDatas"][0]["brokerAddrs"]["0"],
        broker_addr.to_string()
    );
    assert!(broker.terminate().success());
    assert_eq!(
        route_code(&mut client, "TBW102"),
        response_code::TOPIC_NOT_EXIST
    );
    assert!(namesrv.terminate().success());
}

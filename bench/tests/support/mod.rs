//! Test support: start the real `ringmq-server` binary (found next to the test executable,
//! in target/<profile>/) on port 0 with a temporary store, and run a built binary of this
//! crate against its embedded name server.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// target/<profile>/ringmq-server, next to the test executable (target/<profile>/deps/…).
pub fn server_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("test executable is not in target/<profile>/deps");
    let server = profile_dir.join("ringmq-server");
    assert!(
        server.is_file(),
        "{} is missing: build it first with `cargo build -p ringmq-server` \
         (same profile and target dir as these tests; `cargo test --workspace` builds it)",
        server.display()
    );
    server
}

/// A running broker with an embedded name server; killed when dropped.
pub struct Broker {
    child: Child,
    pub broker_addr: String,
    pub namesrv_addr: String,
    _store: tempfile::TempDir,
}

impl Broker {
    pub fn start() -> Broker {
        Broker::start_with(&[])
    }

    pub fn start_with(extra_args: &[&str]) -> Broker {
        let store = tempfile::tempdir().unwrap();
        let mut child = Command::new(server_binary())
            .args(["--listen", "127.0.0.1:0", "--namesrv-listen", "127.0.0.1:0"])
            .args(["--segment-size", "16777216", "--shards", "1"])
            .arg("--store")
            .arg(store.path())
            .args(extra_args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
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
        let (mut broker_addr, mut namesrv_addr) = (None, None);
        while broker_addr.is_none() || namesrv_addr.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = lines
                .recv_timeout(left)
                .expect("ringmq-server did not print its listening lines within 30 s");
            if let Some(addr) = line.strip_prefix("listening broker ") {
                broker_addr = Some(addr.trim().to_owned());
            } else if let Some(addr) = line.strip_prefix("listening namesrv ") {
                namesrv_addr = Some(addr.trim().to_owned());
            }
        }
        let broker = Broker {
            child,
            broker_addr: broker_addr.unwrap(),
            namesrv_addr: namesrv_addr.unwrap(),
            _store: store,
        };
        broker.wait_registered();
        broker
    }

    /// Waits until the broker's registration reached the name server (routes need it).
    fn wait_registered(&self) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let admin = ringmq_client::Admin::connect(&self.namesrv_addr);
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if let Ok(info) = admin.cluster_info().await {
                    let registered = info
                        .broker_addr_table
                        .values()
                        .any(|b| b.broker_addrs.values().any(|a| *a == self.broker_addr));
                    if registered {
                        break;
                    }
                }
                assert!(
                    Instant::now() < deadline,
                    "broker never registered with its name server"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            admin.shutdown().await;
        });
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

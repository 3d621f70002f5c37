//! Shared by the client's integration tests: start the real `ringmq-server` binary on port 0
//! with a temporary store (the binary is found next to the test executable:
//! `target/<profile>/ringmq-server`, built by `cargo build -p ringmq-server` or by
//! `cargo test --workspace`).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod scripted;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The server binary beside the test executable, if it was built.
pub fn server_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    // target/<profile>/deps/<test> → target/<profile>/ringmq-server
    let profile_dir = exe.parent()?.parent()?;
    let bin = profile_dir.join("ringmq-server");
    bin.is_file().then_some(bin)
}

/// Starts a broker, or prints why the test is skipped and returns `None` (only when the
/// binary is missing).
pub fn start_broker(extra_args: &[&str]) -> Option<Broker> {
    match server_binary() {
        Some(bin) => Some(Broker::start(&bin, extra_args)),
        None => {
            eprintln!(
                "SKIPPED: ringmq-server binary not found next to the test executable; \
                 run `cargo build -p ringmq-server` (or `cargo test --workspace`) first"
            );
            None
        }
    }
}

/// A running broker process; killed when dropped.
pub struct Broker {
    pub child: Child,
    pub broker_addr: SocketAddr,
    pub namesrv_addr: Option<SocketAddr>,
    pub store: tempfile::TempDir,
    lines: mpsc::Receiver<String>,
}

impl Broker {
    fn start(bin: &std::path::Path, extra_args: &[&str]) -> Broker {
        let store = tempfile::tempdir().unwrap();
        let mut child = Command::new(bin)
            .args(["--listen", "127.0.0.1:0", "--namesrv-listen", "127.0.0.1:0"])
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
        // The name-server line may follow the broker line.
        while namesrv_addr.is_none() {
            match lines.recv_timeout(Duration::from_millis(300)) {
                Ok(line) => {
                    if let Some(addr) = line.strip_prefix("listening namesrv ") {
                        namesrv_addr = Some(addr.trim().parse().unwrap());
                    }
                }
                Err(_) => break,
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

    /// SIGKILL.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

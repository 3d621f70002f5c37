//! Pull send paths (issue 14, "zero copy on the read path"). Not a test:
//! `cargo bench -p ringmq-engine --bench pull_send`.
//!
//! A pull answer is a header and a run of stored records. The broker sends the run as the
//! store reads it: one positional read of the segment into a buffer, then one vectored write of
//! header + buffer to the socket ("copy"). The alternative is to never bring the bytes into
//! user space: splice the segment range into a pipe and the pipe into the socket ("splice").
//! This prints, for pulls of 32 × 1 KiB and of 4 MiB from a page-cached file to a loopback
//! socket drained by another thread: pulls/s, MB/s, and the **sending side's CPU per pull**
//! (the process's utime + stime, io_uring's kernel workers included, minus the receiving
//! thread's own), each path in turn, for several rounds.
//!
//! Bounded: each phase stops after `PHASE` or `MAX_PULLS`, whichever comes first.
//! `RINGMQ_BENCH_DIR` chooses the directory of the file (default: the system temp dir).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Read;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use compio::fs::File;
use compio::io::{AsyncReadAtExt, AsyncWriteExt};
use compio::net::TcpStream;
use compio::BufResult;

const FILE_BYTES: u64 = 64 << 20;
const HEADER_BYTES: usize = 200;
const PHASE: Duration = Duration::from_secs(2);
const MAX_PULLS: u64 = 1_000_000;
const ROUNDS: usize = 3;
/// Pipe capacity asked for with F_SETPIPE_SZ (the default 64 KiB would take 64 round trips
/// through the pipe for a 4 MiB pull; 1 MiB is the unprivileged maximum).
const PIPE_BYTES: usize = 1 << 20;

#[derive(Clone, Copy, PartialEq)]
enum Path {
    Copy,
    Splice,
}

impl Path {
    fn name(self) -> &'static str {
        match self {
            Path::Copy => "copy (read_at + writev)",
            Path::Splice => "splice (file -> pipe -> socket)",
        }
    }
}

/// utime + stime in µs of the process (`RUSAGE_SELF`) or the calling thread.
fn cpu_us(who: libc::c_int) -> u64 {
    // SAFETY: getrusage writes into the zeroed struct we own and reads nothing else.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        assert_eq!(libc::getrusage(who, &mut usage), 0);
        usage
    };
    let us = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    us(usage.ru_utime) + us(usage.ru_stime)
}

/// Accepts one connection, drains it to EOF and returns (bytes, this thread's CPU µs).
fn receiver(listener: std::net::TcpListener) -> std::thread::JoinHandle<(u64, u64)> {
    std::thread::spawn(move || {
        let start = cpu_us(libc::RUSAGE_THREAD);
        let (mut conn, _) = listener.accept().unwrap();
        let mut buf = vec![0u8; 1 << 20];
        let mut total = 0u64;
        loop {
            match conn.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => total += n as u64,
                Err(e) => panic!("receiver: {e}"),
            }
        }
        (total, cpu_us(libc::RUSAGE_THREAD) - start)
    })
}

struct Phase {
    pulls: u64,
    bytes: u64,
    elapsed: Duration,
    sender_cpu_us: u64,
}

async fn run_phase(file: &File, path: Path, pull_bytes: usize) -> Phase {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let drain = receiver(listener);
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let (pipe_rx, pipe_tx) = compio::fs::pipe::anonymous().await.unwrap();
    // SAFETY: fcntl on a pipe descriptor we own; F_SETPIPE_SZ reads only its int argument.
    let set = unsafe { libc::fcntl(pipe_tx.as_raw_fd(), libc::F_SETPIPE_SZ, PIPE_BYTES as i32) };
    assert!(set >= PIPE_BYTES as i32, "F_SETPIPE_SZ: {set}");
    let header = vec![7u8; HEADER_BYTES];
    let span = FILE_BYTES - pull_bytes as u64;
    let cpu_before = cpu_us(libc::RUSAGE_SELF);
    let start = Instant::now();
    let mut pulls = 0u64;
    while pulls < MAX_PULLS && start.elapsed() < PHASE {
        // Spread over the file (odd, unaligned offsets, as records fall) so no pull re-sends
        // the previous one's pages.
        let offset = (pulls * (pull_bytes as u64 + 4093)) % span;
        match path {
            Path::Copy => {
                let BufResult(read, body) = file
                    .read_exact_at(Vec::with_capacity(pull_bytes), offset)
                    .await;
                read.unwrap();
                let BufResult(written, _) = stream.write_vectored_all([header.clone(), body]).await;
                written.unwrap();
            }
            Path::Splice => {
                let BufResult(written, _) = stream.write_all(header.clone()).await;
                written.unwrap();
                let mut sent = 0usize;
                while sent < pull_bytes {
                    let want = (pull_bytes - sent).min(PIPE_BYTES);
                    let mut in_pipe = compio::fs::pipe::splice(file, &pipe_tx, want)
                        .offset_in((offset + sent as u64) as i64)
                        .await
                        .unwrap();
                    assert!(in_pipe > 0, "splice from the file returned 0");
                    sent += in_pipe;
                    while in_pipe > 0 {
                        let out = compio::fs::pipe::splice(&pipe_rx, &stream, in_pipe)
                            .await
                            .unwrap();
                        assert!(out > 0, "splice to the socket returned 0");
                        in_pipe -= out;
                    }
                }
            }
        }
        pulls += 1;
    }
    stream.close().await.unwrap();
    let (received, receiver_cpu_us) = drain.join().unwrap();
    let elapsed = start.elapsed();
    let sender_cpu_us = cpu_us(libc::RUSAGE_SELF) - cpu_before - receiver_cpu_us;
    assert_eq!(received, pulls * (HEADER_BYTES + pull_bytes) as u64);
    Phase {
        pulls,
        bytes: received,
        elapsed,
        sender_cpu_us,
    }
}

fn main() {
    let dir = std::env::var_os("RINGMQ_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let tmp = tempfile::tempdir_in(dir).unwrap();
    let path = tmp.path().join("segment");
    {
        let mut f = std::fs::File::create(&path).unwrap();
        let chunk: Vec<u8> = (0..1 << 20).map(|i: u32| (i * 31 % 251) as u8).collect();
        for _ in 0..FILE_BYTES >> 20 {
            std::io::Write::write_all(&mut f, &chunk).unwrap();
        }
    }
    // Into the page cache, as a tail being consumed is.
    std::io::copy(
        &mut std::fs::File::open(&path).unwrap(),
        &mut std::io::sink(),
    )
    .unwrap();
    compio::runtime::Runtime::new().unwrap().block_on(async {
        let file = File::open(&path).await.unwrap();
        println!(
            "{:<34} {:>10} {:>10} {:>9} {:>12} {:>14}",
            "path", "pull bytes", "pulls/s", "MB/s", "CPU us/pull", "CPU us/MiB"
        );
        for round in 1..=ROUNDS {
            println!("# round {round}");
            for pull_bytes in [32 * 1024, 4 << 20] {
                for path in [Path::Copy, Path::Splice] {
                    let p = run_phase(&file, path, pull_bytes).await;
                    let secs = p.elapsed.as_secs_f64();
                    println!(
                        "{:<34} {:>10} {:>10.0} {:>9.0} {:>12.1} {:>14.1}",
                        path.name(),
                        pull_bytes,
                        p.pulls as f64 / secs,
                        p.bytes as f64 / secs / 1e6,
                        p.sender_cpu_us as f64 / p.pulls as f64,
                        p.sender_cpu_us as f64 / (p.bytes as f64 / f64::from(1u32 << 20)),
                    );
                }
            }
        }
    });
}

//! Store benchmark (issue 3, item 2). Not a test: `cargo bench -p ringmq-engine`.
//!
//! Prints, for one shard on a temp directory:
//! - append throughput of 1 KiB messages with async flush, beside a plain
//!   `std::fs::File::write_all` loop writing the same record bytes, and their ratio;
//! - sync-flush (group commit) throughput with 1, 16 and 256 appends in flight, beside a
//!   `write_all` + `sync_data` per message loop;
//! - read throughput of 32-message pulls from the page cache.
//!
//! Bounded: every phase stops after a fixed count or time, well under a minute in all.
//! `RINGMQ_BENCH_DIR` chooses the directory (default: the system temp dir).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::cell::Cell;
use std::io::Write;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ringmq_engine::commitlog::flush::FlushPolicy;
use ringmq_engine::consumequeue::TagFilter;
use ringmq_engine::store::{GetMessageStatus, PutMessage, Store, StoreConfig};

const BODY_BYTES: usize = 1024;
const ASYNC_MESSAGES: u64 = 300_000;
const QUEUES: i32 = 4;

fn message(queue_id: i32, body: &Bytes) -> PutMessage {
    let host: SocketAddr = "127.0.0.1:10911".parse().unwrap();
    PutMessage {
        topic: "BenchTopic".to_owned(),
        queue_id,
        flag: 0,
        sys_flag: 0,
        born_timestamp: 1_700_000_000_000,
        born_host: host,
        store_host: host,
        reconsume_times: 0,
        prepared_transaction_offset: 0,
        body: body.clone(),
        properties: "TAGS\u{1}TagA\u{2}UNIQ_KEY\u{1}0A0000010000000000000000000000\u{2}".to_owned(),
    }
}

fn config(flush: FlushPolicy) -> StoreConfig {
    StoreConfig {
        flush,
        ..StoreConfig::default()
    }
}

struct Rate {
    messages: u64,
    bytes: u64,
    elapsed: Duration,
}

impl Rate {
    fn msgs_per_s(&self) -> f64 {
        self.messages as f64 / self.elapsed.as_secs_f64()
    }
    fn mb_per_s(&self) -> f64 {
        self.bytes as f64 / self.elapsed.as_secs_f64() / 1e6
    }
    fn line(&self, what: &str) -> String {
        format!(
            "{what:<44} {:>10.0} msgs/s {:>9.1} MB/s  ({} msgs in {:.2} s)",
            self.msgs_per_s(),
            self.mb_per_s(),
            self.messages,
            self.elapsed.as_secs_f64()
        )
    }
}

/// `in_flight` tasks append until `max_messages` or `max_time`; returns the rate and the
/// store's counters.
async fn append_run(store: &Store, in_flight: u64, max_messages: u64, max_time: Duration) -> Rate {
    let body = Bytes::from(vec![0x5A; BODY_BYTES]);
    let sent = Rc::new(Cell::new(0u64));
    let bytes = Rc::new(Cell::new(0u64));
    let start = Instant::now();
    let tasks: Vec<_> = (0..in_flight)
        .map(|t| {
            let (store, sent, bytes, body) = (
                store.clone(),
                Rc::clone(&sent),
                Rc::clone(&bytes),
                body.clone(),
            );
            compio::runtime::spawn(async move {
                let mut i = t;
                while sent.get() < max_messages && start.elapsed() < max_time {
                    sent.set(sent.get() + 1);
                    let r = store
                        .put(message((i % QUEUES as u64) as i32, &body))
                        .await
                        .unwrap();
                    bytes.set(bytes.get() + u64::from(r.size_bytes));
                    i += in_flight;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    Rate {
        messages: sent.get(),
        bytes: bytes.get(),
        elapsed: start.elapsed(),
    }
}

fn std_write_loop(dir: &std::path::Path, record: &[u8], count: u64) -> Rate {
    let path = dir.join("std-write-all");
    let mut file = std::fs::File::create(&path).unwrap();
    let start = Instant::now();
    for _ in 0..count {
        file.write_all(record).unwrap();
    }
    let elapsed = start.elapsed();
    drop(file);
    std::fs::remove_file(path).unwrap();
    Rate {
        messages: count,
        bytes: count * record.len() as u64,
        elapsed,
    }
}

/// `write_all` + `sync_data` per message: the sync-flush baseline without group commit.
fn std_write_sync_loop(dir: &std::path::Path, record: &[u8], max_time: Duration) -> Rate {
    let path = dir.join("std-write-sync");
    let mut file = std::fs::File::create(&path).unwrap();
    let start = Instant::now();
    let mut count = 0;
    while start.elapsed() < max_time {
        file.write_all(record).unwrap();
        file.sync_data().unwrap();
        count += 1;
    }
    let elapsed = start.elapsed();
    drop(file);
    std::fs::remove_file(path).unwrap();
    Rate {
        messages: count,
        bytes: count * record.len() as u64,
        elapsed,
    }
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument is not supported and ignored.
    let base = std::env::var_os("RINGMQ_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let rt = compio::runtime::Runtime::new().unwrap();
    println!(
        "ringmq-engine store benchmark: 1 shard, {BODY_BYTES}-byte bodies, driver {:?}, dir {}",
        rt.driver_type(),
        base.display()
    );

    // Async flush vs std write_all of the same bytes.
    let dir = tempfile::tempdir_in(&base).unwrap();
    let (async_rate, record) = rt.block_on(async {
        let store = Store::open(dir.path(), 0, config(FlushPolicy::default()))
            .await
            .unwrap();
        let rate = append_run(&store, 256, ASYNC_MESSAGES, Duration::from_secs(10)).await;
        let record = store.read_record_at(0).await.unwrap();
        (rate, record)
    });
    let std_rate = std_write_loop(dir.path(), &record, async_rate.messages);
    println!("record size {} bytes", record.len());
    println!("{}", async_rate.line("append, async flush, 256 in flight"));
    println!(
        "{}",
        std_rate.line("std::fs::File::write_all loop, same bytes")
    );
    println!(
        "ratio store/std: {:.2} (msgs/s)",
        async_rate.msgs_per_s() / std_rate.msgs_per_s()
    );

    // Pulls of 32 messages from the page cache, over what was just written.
    rt.block_on(async {
        let store = Store::open(dir.path(), 0, config(FlushPolicy::default()))
            .await
            .unwrap();
        let filter = TagFilter::All;
        let start = Instant::now();
        let (mut pulls, mut msgs, mut bytes) = (0u64, 0u64, 0u64);
        'outer: for round in 0.. {
            for q in 0..QUEUES {
                let max = store.max_offset("BenchTopic", q);
                let mut offset = 0;
                while offset < max {
                    let r = store
                        .get_messages("BenchTopic", q, offset, 32, u64::MAX, &filter)
                        .await
                        .unwrap();
                    assert_eq!(r.status, GetMessageStatus::Found);
                    pulls += 1;
                    msgs += r.messages.len() as u64;
                    bytes += r.data.len() as u64;
                    offset = r.next_begin_offset;
                    if start.elapsed() > Duration::from_secs(5) {
                        break 'outer;
                    }
                }
            }
            if round >= 2 {
                break;
            }
        }
        let rate = Rate {
            messages: msgs,
            bytes,
            elapsed: start.elapsed(),
        };
        println!(
            "{}  ({:.0} pulls/s)",
            rate.line("pull 32 msgs, page cache"),
            pulls as f64 / rate.elapsed.as_secs_f64()
        );
        store.close().await.unwrap();
    });
    let sync_baseline = std_write_sync_loop(dir.path(), &record, Duration::from_secs(2));
    println!(
        "{}",
        sync_baseline.line("std write_all + fdatasync per message")
    );
    drop(dir);

    // Sync flush: group commit with 1, 16, 256 appends in flight.
    for in_flight in [1u64, 16, 256] {
        let dir = tempfile::tempdir_in(&base).unwrap();
        rt.block_on(async {
            let store = Store::open(dir.path(), 0, config(FlushPolicy::Sync))
                .await
                .unwrap();
            let before = store.stats();
            let rate = append_run(&store, in_flight, 200_000, Duration::from_secs(4)).await;
            let after = store.stats();
            let syncs = after.log_fdatasyncs - before.log_fdatasyncs;
            println!(
                "{}  {} fdatasyncs, {:.1} msgs/fdatasync",
                rate.line(&format!("append, sync flush, {in_flight} in flight")),
                syncs,
                rate.messages as f64 / syncs.max(1) as f64
            );
            store.close().await.unwrap();
        });
    }
}

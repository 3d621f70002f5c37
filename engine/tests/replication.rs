//! Log replication between two real stores: the master's frames applied on the slave give
//! a byte-identical log and the same queue offsets, across segment ends (blank records),
//! across a slave restart, and a frame that does not continue the slave's log is refused.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::path::Path;

use bytes::Bytes;
use ringmq_engine::error::StoreError;
use ringmq_engine::store::{PutMessage, Store, StoreConfig};

mod support;

const SEGMENT_BYTES: u64 = 4096;

fn run<F: std::future::Future>(f: F) -> F::Output {
    compio::runtime::Runtime::new().unwrap().block_on(f)
}

fn config() -> StoreConfig {
    StoreConfig {
        segment_size_bytes: SEGMENT_BYTES,
        total_ram_bytes: Some(1 << 30),
        disk_guard: support::unlimited_disk_guard(),
        ..StoreConfig::default()
    }
}

fn msg(queue_id: i32, i: usize) -> PutMessage {
    let host: SocketAddr = "127.0.0.1:10911".parse().unwrap();
    PutMessage {
        topic: "Rep".to_owned(),
        queue_id,
        flag: 0,
        sys_flag: 0,
        born_timestamp: 1,
        born_host: host,
        store_host: host,
        reconsume_times: 0,
        prepared_transaction_offset: 0,
        // Sizes vary so that records end at odd places and segments close with blanks.
        body: Bytes::from(vec![(i % 251) as u8; 50 + (i * 37) % 700]),
        properties: format!("TAGS\u{1}t{}\u{2}", i % 3),
    }
}

/// Copies everything the master has dispatched past the slave's end; returns frames sent.
async fn replicate(master: &Store, slave: &Store, from: &mut u64) -> usize {
    // Bounded: far more frames than the test's few segments need.
    for frames in 0..10_000 {
        let Some(frame) = master.replication_frame(*from, 1024).await.unwrap() else {
            return frames;
        };
        let next = frame.log_offset + frame.bytes.len() as u64;
        slave
            .append_replicated(frame.log_offset, frame.bytes)
            .await
            .unwrap();
        *from = next;
    }
    panic!("replication did not catch up");
}

fn segment_bytes(root: &Path) -> Vec<(String, Vec<u8>)> {
    let dir = root.join("commitlog/0");
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name().len() == 20)
        .map(|e| {
            (
                e.file_name().into_string().unwrap(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

/// The master's segments that hold data equal the slave's (a preallocated empty segment
/// ahead may exist on one side only).
fn assert_logs_identical(master: &Path, slave: &Path) {
    let non_empty = |segments: Vec<(String, Vec<u8>)>| -> Vec<(String, Vec<u8>)> {
        segments
            .into_iter()
            .filter(|(_, bytes)| bytes.iter().any(|&b| b != 0))
            .collect()
    };
    let (m, s) = (
        non_empty(segment_bytes(master)),
        non_empty(segment_bytes(slave)),
    );
    assert_eq!(
        m.iter().map(|(n, _)| n).collect::<Vec<_>>(),
        s.iter().map(|(n, _)| n).collect::<Vec<_>>()
    );
    for ((name, mb), (_, sb)) in m.iter().zip(&s) {
        assert!(mb == sb, "segment {name} differs");
    }
}

#[test]
fn a_slave_fed_the_masters_frames_holds_the_same_log_and_queues() {
    let master_dir = tempfile::tempdir().unwrap();
    let slave_dir = tempfile::tempdir().unwrap();
    run(async {
        let master = Store::open(master_dir.path(), 0, config()).await.unwrap();
        let slave = Store::open(slave_dir.path(), 0, config()).await.unwrap();
        for i in 0..60 {
            master.put(msg((i % 3) as i32, i)).await.unwrap();
        }
        let mut from = slave.dispatched_log_end();
        let frames = replicate(&master, &slave, &mut from).await;
        assert!(frames > 5, "several frames and segments: {frames}");
        assert_eq!(slave.dispatched_log_end(), master.dispatched_log_end());
        for q in 0..3 {
            assert_eq!(slave.max_offset("Rep", q), master.max_offset("Rep", q));
        }
        master.flush().await.unwrap();
        slave.flush().await.unwrap();
        assert_logs_identical(master_dir.path(), slave_dir.path());

        // The slave restarts on its store and continues from its own end.
        slave.close().await.unwrap();
        let slave = Store::open(slave_dir.path(), 0, config()).await.unwrap();
        for i in 60..90 {
            master.put(msg((i % 3) as i32, i)).await.unwrap();
        }
        let mut from = slave.dispatched_log_end();
        let resumed_at = from;
        replicate(&master, &slave, &mut from).await;
        assert!(resumed_at > 0, "resumed from its tail, not from the start");
        for q in 0..3 {
            assert_eq!(slave.max_offset("Rep", q), master.max_offset("Rep", q));
        }
        master.flush().await.unwrap();
        slave.flush().await.unwrap();
        assert_logs_identical(master_dir.path(), slave_dir.path());
        master.close().await.unwrap();
        slave.close().await.unwrap();
    });
}

#[test]
fn a_frame_that_does_not_continue_the_slaves_log_is_refused_whole() {
    let master_dir = tempfile::tempdir().unwrap();
    let slave_dir = tempfile::tempdir().unwrap();
    run(async {
        let master = Store::open(master_dir.path(), 0, config()).await.unwrap();
        let slave = Store::open(slave_dir.path(), 0, config()).await.unwrap();
        for i in 0..5 {
            master.put(msg(0, i)).await.unwrap();
        }
        // The slave has a message of its own: its log is not a prefix of the master's.
        slave.put(msg(0, 999)).await.unwrap();
        let frame = master.replication_frame(0, 1 << 20).await.unwrap().unwrap();
        let err = slave
            .append_replicated(frame.log_offset, frame.bytes.clone())
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::ReplicaDiverged { .. }), "{err:?}");
        // A damaged frame is refused too, and nothing of it is placed.
        let fresh_dir = tempfile::tempdir().unwrap();
        let fresh = Store::open(fresh_dir.path(), 0, config()).await.unwrap();
        let mut damaged = frame.bytes.to_vec();
        damaged[4] ^= 0xFF; // the first record's magic
        let err = fresh
            .append_replicated(0, Bytes::from(damaged))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::ReplicaDiverged { .. }), "{err:?}");
        assert_eq!(fresh.dispatched_log_end(), 0);
        assert_eq!(fresh.max_offset("Rep", 0), 0);
        for store in [master, slave, fresh] {
            store.close().await.unwrap();
        }
    });
}

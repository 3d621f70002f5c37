//! Recovery at open, on real files: a clean reopen continues where the log ended; a torn,
//! cut or garbled tail is truncated (never fatal); ConsumeQueues that point past the log are
//! cut and missing entries are rebuilt from the log, so queues always agree with the log.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use ringmq_engine::commitlog::flush::{checkpoint_path, FlushPolicy};
use ringmq_engine::consumequeue::TagFilter;
use ringmq_engine::store::{GetMessageStatus, PutMessage, PutResult, Store, StoreConfig};
use ringmq_protocol::message::view_record;

mod support;

const SEGMENT: u64 = 4096;

fn run<F: std::future::Future>(f: F) -> F::Output {
    compio::runtime::Runtime::new().unwrap().block_on(f)
}

fn config() -> StoreConfig {
    StoreConfig {
        segment_size_bytes: SEGMENT,
        flush: FlushPolicy::Sync,
        total_ram_bytes: Some(1 << 30),
        disk_guard: support::unlimited_disk_guard(),
        ..StoreConfig::default()
    }
}

fn msg(queue_id: i32, i: u32) -> PutMessage {
    let host: SocketAddr = "127.0.0.1:10911".parse().unwrap();
    PutMessage {
        topic: "T".to_owned(),
        queue_id,
        flag: 0,
        sys_flag: 0,
        born_timestamp: 1,
        born_host: host,
        store_host: host,
        reconsume_times: 0,
        prepared_transaction_offset: 0,
        body: Bytes::from(vec![(i % 251) as u8; 300 + (i as usize % 7) * 10]),
        properties: String::new(),
    }
}

fn segment_path(root: &Path, start: u64) -> PathBuf {
    root.join("commitlog/0").join(format!("{start:020}"))
}

/// Writes `n` messages over two queues and closes the store.
fn fill(root: &Path, n: u32) -> Vec<PutResult> {
    run(async {
        let store = Store::open(root, 0, config()).await.unwrap();
        let mut out = Vec::new();
        for i in 0..n {
            out.push(store.put(msg((i % 2) as i32, i)).await.unwrap());
        }
        store.close().await.unwrap();
        out
    })
}

/// Simulates a crash before any checkpoint covered the damaged bytes.
fn forget_checkpoint(root: &Path) {
    std::fs::remove_file(checkpoint_path(&root.join("commitlog/0"))).unwrap();
}

fn modify_segment(root: &Path, physical_offset: i64, f: impl FnOnce(&mut [u8])) {
    let start = physical_offset as u64 / SEGMENT * SEGMENT;
    let path = segment_path(root, start);
    let mut bytes = std::fs::read(&path).unwrap();
    f(&mut bytes[(physical_offset as u64 - start) as usize..]);
    std::fs::write(&path, bytes).unwrap();
}

/// Every entry of every queue points to a valid record of that queue and offset.
async fn assert_queues_agree_with_log(store: &Store) {
    for (topic, queue_id) in store.queues() {
        let (min, max) = (
            store.min_offset(&topic, queue_id),
            store.max_offset(&topic, queue_id),
        );
        let mut offset = min;
        while offset < max {
            let r = store
                .get_messages(&topic, queue_id, offset, 32, u64::MAX, &TagFilter::All)
                .await
                .unwrap();
            assert_eq!(
                r.status,
                GetMessageStatus::Found,
                "{topic}/{queue_id} at {offset}"
            );
            for m in &r.messages {
                let view = view_record(&r.data[m.data_range.clone()]).unwrap();
                assert_eq!(view.topic, topic);
                assert_eq!(view.queue_id, queue_id);
                assert_eq!(view.queue_offset, m.queue_offset);
                assert_eq!(view.physical_offset, m.physical_offset);
                assert!(view.body_crc_matches());
            }
            offset = r.next_begin_offset;
        }
    }
}

#[test]
fn a_clean_reopen_continues_both_offsets_where_the_log_ended() {
    let dir = tempfile::tempdir().unwrap();
    let written = fill(dir.path(), 30);
    let last = written.last().unwrap();
    run(async {
        let store = Store::open(dir.path(), 0, config()).await.unwrap();
        assert_eq!(store.max_offset("T", 0), 15);
        assert_eq!(store.max_offset("T", 1), 15);
        assert_eq!(
            store.max_physical_offset(),
            last.physical_offset + i64::from(last.size_bytes)
        );
        let next = store.put(msg(0, 30)).await.unwrap();
        assert_eq!(next.queue_offset, 15);
        assert!(next.physical_offset >= store.max_physical_offset() - i64::from(next.size_bytes));
        assert_queues_agree_with_log(&store).await;
        store.close().await.unwrap();
    });
}

#[test]
fn a_garbled_last_record_is_cut_off_and_its_queue_entry_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let written = fill(dir.path(), 30);
    let last = *written.last().unwrap();
    forget_checkpoint(dir.path());
    modify_segment(dir.path(), last.physical_offset, |b| b[100] ^= 0xFF);
    run(async {
        let store = Store::open(dir.path(), 0, config()).await.unwrap();
        assert_eq!(
            store.max_offset("T", 1),
            14,
            "the garbled message's entry is gone"
        );
        assert_eq!(store.max_offset("T", 0), 15);
        assert_eq!(store.max_physical_offset(), last.physical_offset);
        for r in &written[..29] {
            store.read_record_at(r.physical_offset).await.unwrap();
        }
        assert!(store.read_record_at(last.physical_offset).await.is_err());
        assert_queues_agree_with_log(&store).await;
        // The log continues at the cut, the queue at the dropped offset.
        let again = store.put(msg(1, 99)).await.unwrap();
        assert_eq!(
            (again.queue_offset, again.physical_offset),
            (14, last.physical_offset)
        );
        store.close().await.unwrap();
    });
}

#[test]
fn a_record_cut_short_by_a_crash_is_truncated_and_its_bytes_zeroed() {
    let dir = tempfile::tempdir().unwrap();
    let written = fill(dir.path(), 30);
    let last = *written.last().unwrap();
    forget_checkpoint(dir.path());
    // Only the first 50 bytes of the last record reached the disk.
    modify_segment(dir.path(), last.physical_offset, |b| {
        b[50..last.size_bytes as usize].fill(0)
    });
    run(async {
        let store = Store::open(dir.path(), 0, config()).await.unwrap();
        assert_eq!(store.max_physical_offset(), last.physical_offset);
        assert_eq!(store.max_offset("T", 1), 14);
        store.close().await.unwrap();
    });
    let start = last.physical_offset as u64 / SEGMENT * SEGMENT;
    let bytes = std::fs::read(segment_path(dir.path(), start)).unwrap();
    let cut = (last.physical_offset as u64 - start) as usize;
    assert!(
        bytes[cut..].iter().all(|&b| b == 0),
        "the torn bytes are zeroed"
    );
}

#[test]
fn corruption_in_an_earlier_segment_cuts_there_and_deletes_later_segments() {
    let dir = tempfile::tempdir().unwrap();
    let written = fill(dir.path(), 30);
    let in_second = *written
        .iter()
        .find(|r| r.physical_offset as u64 >= SEGMENT && r.physical_offset as u64 % SEGMENT > 0)
        .unwrap();
    assert!(
        written.last().unwrap().physical_offset as u64 >= 2 * SEGMENT,
        "needs 3 segments"
    );
    forget_checkpoint(dir.path());
    modify_segment(dir.path(), in_second.physical_offset, |b| b[4] ^= 0x01); // the magic
    run(async {
        let store = Store::open(dir.path(), 0, config()).await.unwrap();
        assert_eq!(store.max_physical_offset(), in_second.physical_offset);
        assert_queues_agree_with_log(&store).await;
        let kept = written
            .iter()
            .filter(|r| r.physical_offset < in_second.physical_offset)
            .count();
        assert_eq!(
            (store.max_offset("T", 0) + store.max_offset("T", 1)) as usize,
            kept
        );
        store.close().await.unwrap();
    });
    assert!(!segment_path(dir.path(), 2 * SEGMENT).exists());
}

#[test]
fn lost_consume_queue_entries_are_rebuilt_from_the_log() {
    let dir = tempfile::tempdir().unwrap();
    fill(dir.path(), 30);
    forget_checkpoint(dir.path());
    std::fs::remove_dir_all(dir.path().join("consumequeue/T/1")).unwrap();
    run(async {
        let store = Store::open(dir.path(), 0, config()).await.unwrap();
        assert_eq!(store.max_offset("T", 1), 15);
        assert_queues_agree_with_log(&store).await;
        store.close().await.unwrap();
    });
}

#[test]
fn a_damaged_checkpoint_falls_back_to_scanning_the_last_segments() {
    let dir = tempfile::tempdir().unwrap();
    let written = fill(dir.path(), 30);
    std::fs::write(checkpoint_path(&dir.path().join("commitlog/0")), b"garbage").unwrap();
    let last = written.last().unwrap();
    run(async {
        let store = Store::open(dir.path(), 0, config()).await.unwrap();
        assert_eq!(
            store.max_physical_offset(),
            last.physical_offset + i64::from(last.size_bytes)
        );
        assert_queues_agree_with_log(&store).await;
        store.close().await.unwrap();
    });
}

#[test]
fn a_shard_above_zero_keeps_its_id_in_physical_offsets_across_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let first = run(async {
        let store = Store::open(dir.path(), 3, config()).await.unwrap();
        let r = store.put(msg(0, 1)).await.unwrap();
        store.close().await.unwrap();
        r
    });
    assert_eq!(first.physical_offset >> 56, 3);
    assert!(dir.path().join("commitlog/3/00000000000000000000").exists());
    run(async {
        let store = Store::open(dir.path(), 3, config()).await.unwrap();
        let bytes = store.read_record_at(first.physical_offset).await.unwrap();
        assert_eq!(
            view_record(&bytes).unwrap().physical_offset,
            first.physical_offset
        );
        let second = store.put(msg(0, 2)).await.unwrap();
        assert_eq!(second.queue_offset, 1);
        assert_eq!(
            second.physical_offset,
            first.physical_offset + i64::from(first.size_bytes)
        );
        assert!(store
            .read_record_at(first.physical_offset & ((1 << 56) - 1))
            .await
            .is_err());
        store.close().await.unwrap();
    });
}

#[test]
fn a_torn_blank_record_ends_the_log_at_the_segment_tail() {
    let dir = tempfile::tempdir().unwrap();
    let written = fill(dir.path(), 30);
    // The blank record closing the segment before the last one (inside the scanned tail).
    let last_segment = written.last().unwrap().physical_offset as u64 / SEGMENT * SEGMENT;
    let closing = *written
        .iter()
        .rfind(|r| (r.physical_offset as u64) < last_segment)
        .unwrap();
    let blank_at = closing.physical_offset + i64::from(closing.size_bytes);
    forget_checkpoint(dir.path());
    modify_segment(dir.path(), blank_at, |b| b[..8].fill(0));
    run(async {
        let store = Store::open(dir.path(), 0, config()).await.unwrap();
        assert_eq!(store.max_physical_offset(), blank_at);
        assert!(
            !segment_path(dir.path(), last_segment).exists(),
            "the segment after the cut is deleted"
        );
        assert_queues_agree_with_log(&store).await;
        // Appends resume where the blank record was.
        let r = store.put(msg(0, 77)).await.unwrap();
        assert!(r.physical_offset == blank_at || r.physical_offset as u64 == last_segment);
        store.close().await.unwrap();
    });
}

//! CommitLog retention on real files: deleting the oldest segments moves the store's and the
//! queues' min offsets, trims ConsumeQueue files, never takes the active segment, keeps
//! readers of a deleted segment reading, and a reopen after a kill in the middle of a
//! deletion (segment gone, queues not yet trimmed; some queue files gone) agrees with
//! itself. Forced deletion is driven by a real, nearly full tmpfs when one can be mounted.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use ringmq_engine::commitlog::flush::FlushPolicy;
use ringmq_engine::consumequeue::TagFilter;
use ringmq_engine::disk_guard::DiskGuardConfig;
use ringmq_engine::retention::{DeleteReason, DeleteWhen, RetentionConfig};
use ringmq_engine::store::{GetMessageStatus, PutMessage, PutResult, Store, StoreConfig};

mod support;

const SEGMENT: u64 = 4096;
/// Small queue files so that trimming has whole files to delete.
const CQ_ENTRIES_PER_FILE: u64 = 4;

fn run<F: std::future::Future>(f: F) -> F::Output {
    compio::runtime::Runtime::new().unwrap().block_on(f)
}

fn config() -> StoreConfig {
    StoreConfig {
        segment_size_bytes: SEGMENT,
        flush: FlushPolicy::Sync,
        cq_entries_per_file: CQ_ENTRIES_PER_FILE,
        total_ram_bytes: Some(1 << 30),
        disk_guard: support::unlimited_disk_guard(),
        ..StoreConfig::default()
    }
}

/// Every segment is expired and every hour is a deletion hour.
fn expire_everything(max_segments_per_round: usize) -> RetentionConfig {
    RetentionConfig {
        file_reserved_time: Duration::ZERO,
        delete_when: DeleteWhen::every_hour(),
        // Never over a ratio, whatever the test machine's disk: only expiry acts.
        cleanup_used_ratio: 1.0,
        forced_used_ratio: 1.0,
        check_interval: Duration::from_secs(3600),
        max_segments_per_round,
    }
}

fn msg(topic: &str, queue_id: i32, body_len: usize) -> PutMessage {
    let host: SocketAddr = "127.0.0.1:10911".parse().unwrap();
    PutMessage {
        topic: topic.to_owned(),
        queue_id,
        flag: 0,
        sys_flag: 0,
        born_timestamp: 1,
        born_host: host,
        store_host: host,
        reconsume_times: 0,
        prepared_transaction_offset: 0,
        body: Bytes::from(vec![7u8; body_len]),
        properties: String::new(),
    }
}

fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.len() == 20)
        .collect();
    names.sort();
    names
}

fn segment_files(root: &Path) -> Vec<String> {
    files(&root.join("commitlog/0"))
}

fn queue_files(root: &Path, topic: &str, queue_id: i32) -> Vec<String> {
    files(
        &root
            .join("consumequeue")
            .join(topic)
            .join(queue_id.to_string()),
    )
}

/// 60 messages of ~400 bytes into queue T:0 (about 10 per segment, 6+ segments), with
/// every fifth one in queue Early:0 among the first 20 only.
async fn fill(store: &Store) -> Vec<PutResult> {
    let mut results = Vec::new();
    for i in 0..60 {
        if i < 20 && i % 5 == 0 {
            store.put(msg("Early", 0, 300)).await.unwrap();
        }
        results.push(store.put(msg("T", 0, 300)).await.unwrap());
    }
    store.flush().await.unwrap();
    results
}

/// The first queue offset of `results` stored at or after log offset `log_min`.
fn first_offset_at_or_past(results: &[PutResult], log_min: i64) -> i64 {
    results
        .iter()
        .find(|r| r.physical_offset >= log_min)
        .map(|r| r.queue_offset)
        .unwrap()
}

async fn pull(store: &Store, topic: &str, offset: i64) -> (GetMessageStatus, i64, usize) {
    let got = store
        .get_messages(topic, 0, offset, 32, 1 << 20, &TagFilter::All)
        .await
        .unwrap();
    (got.status, got.next_begin_offset, got.messages.len())
}

#[test]
fn deleting_the_oldest_segments_moves_the_min_offsets_and_trims_queue_files() {
    let dir = tempfile::tempdir().unwrap();
    run(async {
        let store = Store::open(dir.path(), 0, config()).await.unwrap();
        let results = fill(&store).await;
        let segments_before = segment_files(dir.path());
        assert!(segments_before.len() >= 6, "{segments_before:?}");
        let queue_files_before = queue_files(dir.path(), "T", 0).len();

        let deleted = store
            .run_retention_round(&expire_everything(2))
            .await
            .unwrap();

        assert_eq!(deleted.len(), 2);
        assert_eq!(deleted[0].start_offset, 0);
        assert_eq!(deleted[1].start_offset, SEGMENT);
        assert!(matches!(deleted[0].reason, DeleteReason::Expired { .. }));
        assert_eq!(deleted[1].freed_bytes, SEGMENT);
        assert_eq!(segment_files(dir.path()), segments_before[2..].to_vec());
        let log_min = 2 * SEGMENT as i64;
        assert_eq!(store.min_physical_offset(), log_min);
        assert_eq!(deleted[1].new_min_physical_offset, log_min);
        let min = first_offset_at_or_past(&results, log_min);
        assert_eq!(store.min_offset("T", 0), min);
        assert_eq!(store.max_offset("T", 0), 60);
        // Whole queue files below the new min are gone; the one holding it stays.
        let first_file_kept = min - min % CQ_ENTRIES_PER_FILE as i64;
        assert_eq!(
            queue_files(dir.path(), "T", 0).len(),
            queue_files_before - (first_file_kept / CQ_ENTRIES_PER_FILE as i64) as usize
        );
        assert_eq!(
            pull(&store, "T", 0).await.0,
            GetMessageStatus::OffsetTooSmall
        );
        let (status, next, count) = pull(&store, "T", min).await;
        assert_eq!(status, GetMessageStatus::Found);
        assert!(count > 0 && next > min);
        store.close().await.unwrap();
    });
}

#[test]
fn a_pull_below_the_min_offset_is_told_the_new_min_so_the_consumer_skips_forward() {
    let dir = tempfile::tempdir().unwrap();
    run(async {
        let store = Store::open(dir.path(), 0, config()).await.unwrap();
        fill(&store).await;
        store
            .run_retention_round(&expire_everything(3))
            .await
            .unwrap();
        let min = store.min_offset("T", 0);
        assert!(min > 0);
        // A consumer that follows nextBeginOffset: one OFFSET_TOO_SMALL, then messages.
        let (status, next, _) = pull(&store, "T", 1).await;
        assert_eq!(status, GetMessageStatus::OffsetTooSmall);
        assert_eq!(next, min);
        let (status, _, count) = pull(&store, "T", next).await;
        assert_eq!(status, GetMessageStatus::Found);
        assert!(count > 0);
        store.close().await.unwrap();
    });
}

#[test]
fn the_active_segment_and_unflushed_bytes_are_never_deleted() {
    let dir = tempfile::tempdir().unwrap();
    run(async {
        let store = Store::open(dir.path(), 0, config()).await.unwrap();
        fill(&store).await;
        let last = segment_files(dir.path()).last().cloned().unwrap();
        while !store
            .run_retention_round(&expire_everything(100))
            .await
            .unwrap()
            .is_empty()
        {}
        assert_eq!(segment_files(dir.path()), vec![last.clone()]);
        assert_eq!(
            store.min_physical_offset(),
            last.parse::<i64>().unwrap(),
            "the min physical offset is the active segment's start"
        );
        // Early's messages were all in deleted segments: empty at its old end, still usable.
        assert_eq!(store.min_offset("Early", 0), 4);
        assert_eq!(store.max_offset("Early", 0), 4);
        assert_eq!(
            store.put(msg("Early", 0, 10)).await.unwrap().queue_offset,
            4
        );
        store.close().await.unwrap();
    });
}

#[test]
fn a_reader_holding_a_deleted_segment_keeps_reading_it() {
    let dir = tempfile::tempdir().unwrap();
    run(async {
        let store = Store::open(dir.path(), 0, config()).await.unwrap();
        fill(&store).await;
        let got = store
            .get_messages("T", 0, 0, 4, 1 << 20, &TagFilter::All)
            .await
            .unwrap();
        let held = got.messages.first().unwrap().clone();
        store
            .run_retention_round(&expire_everything(1))
            .await
            .unwrap();
        assert!(!held.segment.path().exists());
        let bytes = held
            .segment
            .read_exact_at(held.pos_in_file, held.data_range.len())
            .await
            .unwrap();
        assert_eq!(&bytes[..], &got.data[held.data_range.clone()]);
        store.close().await.unwrap();
    });
}

#[test]
fn a_reopen_after_a_completed_deletion_keeps_every_offset() {
    let dir = tempfile::tempdir().unwrap();
    run(async {
        let store = Store::open(dir.path(), 0, config()).await.unwrap();
        fill(&store).await;
        store
            .run_retention_round(&expire_everything(100))
            .await
            .unwrap();
        let (min, early_max) = (store.min_offset("T", 0), store.max_offset("Early", 0));
        let min_physical = store.min_physical_offset();
        store.close().await.unwrap();

        let store = Store::open(dir.path(), 0, config()).await.unwrap();
        assert_eq!(store.min_physical_offset(), min_physical);
        assert_eq!(store.min_offset("T", 0), min);
        assert_eq!(store.max_offset("T", 0), 60);
        assert_eq!(store.max_offset("Early", 0), early_max);
        assert_eq!(store.min_offset("Early", 0), early_max);
        assert_eq!(store.put(msg("T", 0, 10)).await.unwrap().queue_offset, 60);
        store.close().await.unwrap();
    });
}

/// A kill after the segment's unlink, before any queue was trimmed: the files on disk are
/// exactly those of a store whose oldest segments were removed and nothing else.
#[test]
fn a_reopen_after_a_kill_between_segment_unlink_and_queue_trim_moves_the_queues() {
    let dir = tempfile::tempdir().unwrap();
    let results = run(async {
        let store = Store::open(dir.path(), 0, config()).await.unwrap();
        let results = fill(&store).await;
        store.close().await.unwrap();
        results
    });
    let queue_files_before = queue_files(dir.path(), "T", 0);
    for name in &segment_files(dir.path())[..3] {
        std::fs::remove_file(dir.path().join("commitlog/0").join(name)).unwrap();
    }
    run(async {
        let store = Store::open(dir.path(), 0, config()).await.unwrap();
        let log_min = 3 * SEGMENT as i64;
        assert_eq!(store.min_physical_offset(), log_min);
        let min = first_offset_at_or_past(&results, log_min);
        assert_eq!(store.min_offset("T", 0), min);
        assert_eq!(store.max_offset("T", 0), 60);
        assert!(queue_files(dir.path(), "T", 0).len() < queue_files_before.len());
        let (status, next, _) = pull(&store, "T", 0).await;
        assert_eq!((status, next), (GetMessageStatus::OffsetTooSmall, min));
        assert_eq!(pull(&store, "T", min).await.0, GetMessageStatus::Found);
        assert_eq!(store.put(msg("T", 0, 10)).await.unwrap().queue_offset, 60);
        store.close().await.unwrap();
    });
}

/// A kill in the middle of the queue trim: the segment and the first queue file are gone,
/// later queue files below the min are still there.
#[test]
fn a_reopen_after_a_kill_in_the_middle_of_the_queue_trim_finishes_it() {
    let dir = tempfile::tempdir().unwrap();
    let results = run(async {
        let store = Store::open(dir.path(), 0, config()).await.unwrap();
        let results = fill(&store).await;
        store.close().await.unwrap();
        results
    });
    for name in &segment_files(dir.path())[..2] {
        std::fs::remove_file(dir.path().join("commitlog/0").join(name)).unwrap();
    }
    let queue_dir = dir.path().join("consumequeue/T/0");
    let first_queue_file = queue_files(dir.path(), "T", 0).first().cloned().unwrap();
    std::fs::remove_file(queue_dir.join(first_queue_file)).unwrap();
    run(async {
        let store = Store::open(dir.path(), 0, config()).await.unwrap();
        let min = first_offset_at_or_past(&results, 2 * SEGMENT as i64);
        assert_eq!(store.min_offset("T", 0), min);
        let first_kept = (min - min % CQ_ENTRIES_PER_FILE as i64) as u64 * 20;
        assert_eq!(
            queue_files(dir.path(), "T", 0).first().cloned().unwrap(),
            format!("{first_kept:020}")
        );
        assert_eq!(pull(&store, "T", min).await.0, GetMessageStatus::Found);
        store.close().await.unwrap();
    });
}

/// Mounts a tmpfs of `size` at `dir`; false (and a message) if this machine does not allow
/// it.
fn mount_tmpfs(dir: &Path, size: &str) -> bool {
    let status = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(dir)
        .status();
    match status {
        Ok(s) if s.success() => true,
        other => {
            eprintln!(
                "SKIPPED: cannot mount a tmpfs at {} ({other:?})",
                dir.display()
            );
            false
        }
    }
}

struct Unmount<'a>(&'a Path);

impl Drop for Unmount<'_> {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(self.0).status();
    }
}

#[test]
fn over_the_forced_ratio_young_segments_go_until_the_disk_is_below_it() {
    let dir = tempfile::tempdir().unwrap();
    if !mount_tmpfs(dir.path(), "2m") {
        return;
    }
    let _unmount = Unmount(dir.path());
    eprintln!("RAN: forced retention on a 2 MiB tmpfs");
    run(async {
        let cfg = StoreConfig {
            segment_size_bytes: 64 * 1024,
            // One queue file: tmpfs pages of many small ones would blur the arithmetic.
            cq_entries_per_file: 300_000,
            // Sends stay allowed up to 98 %: this test is about retention.
            disk_guard: DiskGuardConfig {
                max_used_ratio: 0.98,
                ..DiskGuardConfig::default()
            },
            ..config()
        };
        let store = Store::open(dir.path(), 0, cfg).await.unwrap();
        // Fill past 90 %: 28 segments of 64 KiB on 2 MiB.
        let usage = |p: &Path| ringmq_engine::disk_guard::FsUsage::of(p).unwrap();
        let ratio = |p: &Path| {
            let u = usage(p);
            u.used_bytes as f64 / u.total_bytes() as f64
        };
        while ratio(dir.path()) < 0.90 {
            store.put(msg("T", 0, 8000)).await.unwrap();
        }
        store.flush().await.unwrap();
        let before = segment_files(dir.path()).len();
        let retention = RetentionConfig {
            // Nothing is expired: only the forced ratio can delete.
            delete_when: DeleteWhen::every_hour(),
            ..RetentionConfig::default()
        };
        let deleted = store.run_retention_round(&retention).await.unwrap();
        assert!(!deleted.is_empty());
        assert!(deleted
            .iter()
            .all(|d| matches!(d.reason, DeleteReason::DiskOverForcedRatio { .. })));
        let after = ratio(dir.path());
        assert!(after <= 0.85, "still {after} used");
        // Only what the limit needed: one segment fewer would have left it above 85 %.
        assert!(
            after + 64.0 * 1024.0 / usage(dir.path()).total_bytes() as f64 > 0.85,
            "deleted more than needed: {after}"
        );
        assert_eq!(segment_files(dir.path()).len(), before - deleted.len());
        assert_eq!(
            store.min_physical_offset(),
            deleted.last().unwrap().new_min_physical_offset
        );
        store.close().await.unwrap();
    });
}

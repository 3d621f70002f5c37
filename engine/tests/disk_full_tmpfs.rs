//! A really full filesystem (a small tmpfs the test fills, ENOSPC from the kernel): the
//! store refuses what it cannot place, keeps serving reads, resumes by itself once space is
//! freed, and opens (for reads) when restarted on the full disk. Skipped, with the reason
//! printed, where a tmpfs cannot be mounted.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use ringmq_engine::disk_guard::DiskGuardConfig;
use ringmq_engine::error::StoreError;
use ringmq_engine::store::{PutMessage, PutResult, Store, StoreConfig};
use ringmq_protocol::message::view_record;
use ringmq_testkit::tmpfs::Tmpfs;

const SEGMENT_BYTES: u64 = 256 * 1024;
const BODY_BYTES: usize = 1000;

fn run<F: std::future::Future>(f: F) -> F::Output {
    compio::runtime::Runtime::new().unwrap().block_on(f)
}

fn config() -> StoreConfig {
    StoreConfig {
        segment_size_bytes: SEGMENT_BYTES,
        total_ram_bytes: Some(1 << 30),
        // The guard would refuse first; this test is about the kernel's ENOSPC.
        disk_guard: DiskGuardConfig {
            max_used_ratio: 1.0,
            ..DiskGuardConfig::default()
        },
        ..StoreConfig::default()
    }
}

fn msg(i: u32) -> PutMessage {
    let host: SocketAddr = "127.0.0.1:10911".parse().unwrap();
    let mut body = vec![(i % 251) as u8; BODY_BYTES];
    body[..4].copy_from_slice(&i.to_be_bytes());
    PutMessage {
        topic: "Full".to_owned(),
        queue_id: 0,
        flag: 0,
        sys_flag: 0,
        born_timestamp: 1,
        born_host: host,
        store_host: host,
        reconsume_times: 0,
        prepared_transaction_offset: 0,
        body: Bytes::from(body),
        properties: String::new(),
    }
}

/// Puts until the store refuses; returns what was acknowledged and the refusal.
async fn put_until_refused(store: &Store, first: u32) -> (Vec<(u32, PutResult)>, StoreError) {
    let mut acked = Vec::new();
    // Bounded: the tmpfs holds far fewer messages than this.
    for i in first..first + 100_000 {
        match store.put(msg(i)).await {
            Ok(r) => acked.push((i, r)),
            Err(e) => return (acked, e),
        }
    }
    panic!("the store never refused on a full tmpfs");
}

async fn assert_readable(store: &Store, acked: &[(u32, PutResult)]) {
    for (i, r) in acked {
        let bytes = store.read_record_at(r.physical_offset).await.unwrap();
        let view = view_record(&bytes).unwrap();
        assert_eq!(&view.body[..4], &i.to_be_bytes(), "message {i}");
    }
}

#[test]
fn enospc_refuses_sends_keeps_reads_and_resumes_when_space_returns() {
    let Some(fs) = Tmpfs::mount_or_skip("enospc_refuses_sends", 4 << 20) else {
        return;
    };
    let root = fs.path().join("store");
    run(async {
        let store = Store::open(&root, 0, config()).await.unwrap();
        let first = store.put(msg(0)).await.unwrap();
        // Leave less than a segment: the next segment cannot be preallocated.
        let filler = fs.fill_leaving(SEGMENT_BYTES / 2).unwrap();
        let (acked, refusal) = put_until_refused(&store, 1).await;
        assert!(
            matches!(refusal, StoreError::NoSpace { .. }) && refusal.is_disk_full(),
            "a full disk is a 'no space' refusal, not a failed log: {refusal:?}"
        );
        let text = ringmq_engine::error::ErrorChain(&refusal).to_string();
        assert!(text.contains("No space left on device"), "{text}");
        let mut all = vec![(0, first)];
        all.extend(acked);
        assert_readable(&store, &all).await;
        // Refused again while full, and nothing half-made is left behind.
        assert!(store.put(msg(999_999)).await.unwrap_err().is_disk_full());

        std::fs::remove_file(&filler).unwrap();
        let next = all.len() as u32;
        let resumed = store
            .put(msg(next))
            .await
            .expect("sends resume without a restart");
        all.push((next, resumed));
        assert_readable(&store, &all).await;
        store.close().await.unwrap();

        // Restart on a full disk: open succeeds and serves every acknowledged message.
        let _filler = fs.fill_leaving(0).unwrap();
        let store = Store::open(&root, 0, config())
            .await
            .expect("a store on a full disk opens for reads");
        assert_readable(&store, &all).await;
        assert_eq!(store.max_offset("Full", 0), all.len() as i64);
        store.close().await.unwrap();
    });
}

#[test]
fn a_segment_whose_creation_never_finished_is_removed_at_open() {
    let Some(fs) = Tmpfs::mount_or_skip("a_segment_whose_creation_never_finished", 4 << 20) else {
        return;
    };
    let root = fs.path().join("store");
    run(async {
        let store = Store::open(&root, 0, config()).await.unwrap();
        let r = store.put(msg(1)).await.unwrap();
        store.close().await.unwrap();
        // What a kill during the next segment's fallocate leaves: a short file of zeros.
        let log_dir = root.join("commitlog/0");
        let leftover = log_dir.join(format!("{:020}", SEGMENT_BYTES));
        std::fs::write(&leftover, vec![0_u8; 4096]).unwrap();
        let _filler = fs.fill_leaving(0).unwrap();
        let store = Store::open(&root, 0, config())
            .await
            .expect("no need to extend the leftover on a full disk");
        assert!(!leftover.exists(), "the leftover is removed");
        assert_readable(&store, &[(1, r)]).await;
        store.close().await.unwrap();
    });
}

#[test]
fn the_guard_counts_what_the_store_writes_between_statvfs_calls() {
    // 16 MiB tmpfs, limit 50%: the store alone must not carry it past the limit by more
    // than one segment plus the margin, however fast it writes within the 1 s statvfs cache.
    let Some(fs) = Tmpfs::mount_or_skip("the_guard_is_accurate_to_its_margin", 16 << 20) else {
        return;
    };
    let root = fs.path().join("store");
    let margin_bytes = 256 * 1024;
    run(async {
        let mut cfg = config();
        cfg.disk_guard = DiskGuardConfig {
            max_used_ratio: 0.5,
            margin_bytes,
            check_interval: Duration::from_secs(3600),
            ..DiskGuardConfig::default()
        };
        let store = Store::open(&root, 0, cfg).await.unwrap();
        let (_acked, refusal) = put_until_refused(&store, 0).await;
        assert!(
            matches!(refusal, StoreError::DiskFull { .. }),
            "the guard refuses before the kernel does: {refusal:?}"
        );
        let total = 16_u64 << 20;
        let used = total - fs.available_bytes().unwrap();
        let limit = total / 2;
        assert!(
            used <= limit + SEGMENT_BYTES + margin_bytes,
            "used {used} bytes, limit {limit}: overshoot past a segment plus the margin"
        );
        store.close().await.unwrap();
    });
}

//! The store's write and read paths on real files: offsets, segment roll-over with blank
//! records, group commit, visibility, arrivals, pull statuses and limits, disk guard.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::cell::RefCell;
use std::net::SocketAddr;
use std::path::Path;
use std::rc::Rc;

use bytes::Bytes;
use ringmq_engine::commitlog::flush::FlushPolicy;
use ringmq_engine::consumequeue::{Boundary, TagFilter};
use ringmq_engine::disk_guard::DiskGuardConfig;
use ringmq_engine::store::{GetMessageStatus, PutMessage, Store, StoreConfig};
use ringmq_protocol::message::{java_string_hash, view_record, BLANK_MAGIC, BLANK_RECORD_SIZE};

mod support;

fn run<F: std::future::Future>(f: F) -> F::Output {
    compio::runtime::Runtime::new().unwrap().block_on(f)
}

fn config(flush: FlushPolicy) -> StoreConfig {
    StoreConfig {
        segment_size_bytes: 4096,
        flush,
        total_ram_bytes: Some(1 << 30),
        disk_guard: support::unlimited_disk_guard(),
        ..StoreConfig::default()
    }
}

fn msg(topic: &str, queue_id: i32, body: &[u8], tag: Option<&str>) -> PutMessage {
    let host: SocketAddr = "127.0.0.1:10911".parse().unwrap();
    let mut properties = String::new();
    if let Some(tag) = tag {
        properties.push_str(&format!("TAGS\u{1}{tag}\u{2}"));
    }
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
        body: Bytes::copy_from_slice(body),
        properties,
    }
}

fn segment_files(root: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root.join("commitlog/0"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.len() == 20)
        .collect();
    names.sort();
    names
}

#[test]
fn appends_get_consecutive_queue_offsets_and_read_back_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    run(async {
        let store = Store::open(dir.path(), 0, config(FlushPolicy::default()))
            .await
            .unwrap();
        let mut results = Vec::new();
        for i in 0..5u8 {
            results.push(store.put(msg("T", 1, &[i; 100], None)).await.unwrap());
        }
        for (i, r) in results.iter().enumerate() {
            assert_eq!(r.queue_offset, i as i64);
            let bytes = store.read_record_at(r.physical_offset).await.unwrap();
            assert_eq!(bytes.len(), r.size_bytes as usize);
            let view = view_record(&bytes).unwrap();
            assert_eq!(view.body, &[i as u8; 100][..]);
            assert_eq!(view.queue_offset, i as i64);
            assert_eq!(view.physical_offset, r.physical_offset);
            assert_eq!(view.store_timestamp, r.store_timestamp);
            assert!(view.body_crc_matches());
        }
        assert_eq!(store.max_offset("T", 1), 5);
        assert_eq!(store.min_offset("T", 1), 0);
        store.close().await.unwrap();
    });
}

#[test]
fn a_record_that_does_not_fit_closes_the_segment_with_a_blank_record() {
    let dir = tempfile::tempdir().unwrap();
    run(async {
        let store = Store::open(dir.path(), 0, config(FlushPolicy::default()))
            .await
            .unwrap();
        let mut results = Vec::new();
        for i in 0..20u8 {
            results.push(store.put(msg("T", 0, &[i; 700], None)).await.unwrap());
        }
        // Records never span segments.
        for r in &results {
            let start = r.physical_offset as u64;
            assert_eq!(start / 4096, (start + u64::from(r.size_bytes) - 1) / 4096);
        }
        let first_in_second = results.iter().find(|r| r.physical_offset >= 4096).unwrap();
        assert_eq!(
            first_in_second.physical_offset, 4096,
            "the next segment starts with the record"
        );
        let last_in_first = results.iter().rfind(|r| r.physical_offset < 4096).unwrap();
        let blank_at = last_in_first.physical_offset as usize + last_in_first.size_bytes as usize;
        store.close().await.unwrap();

        let files = segment_files(dir.path());
        assert_eq!(files[0], "00000000000000000000");
        assert_eq!(files[1], "00000000000000004096");
        let seg0 = std::fs::read(dir.path().join("commitlog/0").join(&files[0])).unwrap();
        assert_eq!(
            seg0.len(),
            4096,
            "segments are preallocated to their full size"
        );
        let remaining = i32::from_be_bytes(seg0[blank_at..blank_at + 4].try_into().unwrap());
        let magic = i32::from_be_bytes(seg0[blank_at + 4..blank_at + 8].try_into().unwrap());
        assert_eq!(magic, BLANK_MAGIC);
        assert_eq!(remaining as usize, 4096 - blank_at);
        assert!(remaining as usize >= BLANK_RECORD_SIZE);
    });
}

#[test]
fn pulls_cross_segment_boundaries_in_queue_order() {
    let dir = tempfile::tempdir().unwrap();
    run(async {
        let store = Store::open(dir.path(), 0, config(FlushPolicy::default()))
            .await
            .unwrap();
        for i in 0..30u8 {
            store.put(msg("T", 0, &[i; 300], None)).await.unwrap();
        }
        let mut offset = 0;
        let mut seen = Vec::new();
        while offset < 30 {
            let r = store
                .get_messages("T", 0, offset, 32, u64::MAX, &TagFilter::All)
                .await
                .unwrap();
            assert_eq!(r.status, GetMessageStatus::Found);
            for m in &r.messages {
                let bytes = &r.data[m.data_range.clone()];
                let view = view_record(bytes).unwrap();
                assert_eq!(view.queue_offset, m.queue_offset);
                // The region on disk holds the same bytes.
                let on_disk = std::fs::read(m.segment.path()).unwrap();
                let pos = m.pos_in_file as usize;
                assert_eq!(&on_disk[pos..pos + bytes.len()], bytes);
                seen.push(view.body[0]);
            }
            offset = r.next_begin_offset;
        }
        assert_eq!(seen, (0..30).collect::<Vec<u8>>());
        store.close().await.unwrap();
    });
}

#[test]
fn sync_flush_group_commits_concurrent_appends_with_fewer_fdatasyncs_than_appends() {
    let dir = tempfile::tempdir().unwrap();
    run(async {
        let mut cfg = config(FlushPolicy::Sync);
        cfg.segment_size_bytes = 1 << 20;
        let store = Store::open(dir.path(), 0, cfg).await.unwrap();
        let before = store.stats().log_fdatasyncs;
        let n = 64;
        let puts = (0..n).map(|i| {
            let store = store.clone();
            async move { store.put(msg("T", i % 4, &[7; 100], None)).await.unwrap() }
        });
        let results = futures_util::future::join_all(puts).await;
        let syncs = store.stats().log_fdatasyncs - before;
        assert!(syncs >= 1);
        assert!(syncs < n as u64, "{syncs} fdatasyncs for {n} appends");
        let end = results
            .iter()
            .map(|r| r.physical_offset as u64 + u64::from(r.size_bytes))
            .max()
            .unwrap();
        assert!(
            store.stats().durable_end >= end,
            "every acknowledged append is durable"
        );
        store.close().await.unwrap();
    });
}

/// Runs `n` concurrent puts while a task checks, at every scheduling point, that what is
/// readable is also durable (Sync) or written (Async).
fn check_visibility(flush: FlushPolicy) {
    let dir = tempfile::tempdir().unwrap();
    run(async {
        let store = Store::open(dir.path(), 0, config(flush)).await.unwrap();
        let done = Rc::new(RefCell::new(false));
        let violations = Rc::new(RefCell::new(0));
        let checker = {
            let (store, done, violations) =
                (store.clone(), Rc::clone(&done), Rc::clone(&violations));
            compio::runtime::spawn(async move {
                let mut samples = 0u64;
                while !*done.borrow() {
                    let s = store.stats();
                    let limit = match flush {
                        FlushPolicy::Sync => s.durable_end,
                        FlushPolicy::Async { .. } => s.written_end,
                    };
                    let readable = store.max_physical_offset() as u64;
                    if readable > limit {
                        *violations.borrow_mut() += 1;
                    }
                    samples += 1;
                    compio::runtime::time::sleep(std::time::Duration::from_micros(50)).await;
                }
                samples
            })
        };
        let puts = (0..200).map(|i| {
            let store = store.clone();
            async move { store.put(msg("T", i % 2, &[1; 200], None)).await.unwrap() }
        });
        futures_util::future::join_all(puts).await;
        *done.borrow_mut() = true;
        let samples = checker.await.unwrap();
        assert!(samples > 0);
        assert_eq!(*violations.borrow(), 0);
        store.close().await.unwrap();
    });
}

#[test]
fn with_sync_flush_nothing_is_readable_before_it_is_durable() {
    check_visibility(FlushPolicy::Sync);
}

#[test]
fn with_async_flush_nothing_is_readable_before_it_is_written() {
    check_visibility(FlushPolicy::Async { interval_ms: 500 });
}

#[test]
fn arrivals_announce_each_readable_message_with_its_queue_and_tags() {
    let dir = tempfile::tempdir().unwrap();
    run(async {
        let store = Store::open(dir.path(), 0, config(FlushPolicy::Sync))
            .await
            .unwrap();
        store.put(msg("T", 2, b"a", Some("TagA"))).await.unwrap();
        store.put(msg("T", 2, b"b", None)).await.unwrap();
        let arrivals = store.drain_arrivals();
        assert_eq!(arrivals.len(), 2);
        assert_eq!(&*arrivals[0].topic, "T");
        assert_eq!(arrivals[0].queue_id, 2);
        assert_eq!(arrivals[0].max_offset, 1);
        assert_eq!(arrivals[0].tags_code, i64::from(java_string_hash("TagA")));
        assert_eq!(arrivals[1].max_offset, 2);
        assert_eq!(arrivals[1].tags_code, 0);
        assert!(store.drain_arrivals().is_empty());

        let seen = Rc::new(RefCell::new(Vec::new()));
        let sink = Rc::clone(&seen);
        store.set_arrival_listener(move |a| sink.borrow_mut().push(a.max_offset));
        store.put(msg("T", 2, b"c", None)).await.unwrap();
        assert_eq!(*seen.borrow(), vec![3]);
        store.close().await.unwrap();
    });
}

#[test]
fn pull_statuses_follow_rocketmq_for_unknown_empty_and_out_of_range_offsets() {
    let dir = tempfile::tempdir().unwrap();
    run(async {
        let store = Store::open(dir.path(), 0, config(FlushPolicy::Sync))
            .await
            .unwrap();
        let r = store
            .get_messages("Nope", 0, 5, 32, u64::MAX, &TagFilter::All)
            .await
            .unwrap();
        assert_eq!(r.status, GetMessageStatus::NoMatchedLogicQueue);
        assert_eq!(r.next_begin_offset, 0);
        for i in 0..3u8 {
            store.put(msg("T", 0, &[i], None)).await.unwrap();
        }
        let r = store
            .get_messages("T", 0, 3, 32, u64::MAX, &TagFilter::All)
            .await
            .unwrap();
        assert_eq!(
            (r.status, r.next_begin_offset),
            (GetMessageStatus::OffsetOverflowOne, 3)
        );
        let r = store
            .get_messages("T", 0, 9, 32, u64::MAX, &TagFilter::All)
            .await
            .unwrap();
        assert_eq!(
            (r.status, r.next_begin_offset),
            (GetMessageStatus::OffsetOverflowBadly, 3)
        );
        assert_eq!((r.min_offset, r.max_offset), (0, 3));
        let r = store
            .get_messages("T", 0, -1, 32, u64::MAX, &TagFilter::All)
            .await
            .unwrap();
        assert_eq!(
            (r.status, r.next_begin_offset),
            (GetMessageStatus::OffsetTooSmall, 0)
        );
        store.close().await.unwrap();
    });
}

#[test]
fn a_tag_filter_skips_entries_and_reports_no_match_with_the_next_offset() {
    let dir = tempfile::tempdir().unwrap();
    run(async {
        let store = Store::open(dir.path(), 0, config(FlushPolicy::default()))
            .await
            .unwrap();
        for _ in 0..3 {
            store.put(msg("T", 0, b"x", Some("TagA"))).await.unwrap();
        }
        store.put(msg("T", 0, b"y", Some("TagB"))).await.unwrap();
        let only_b = TagFilter::from_subscription("TagB", [java_string_hash("TagB")]);
        let r = store
            .get_messages("T", 0, 0, 32, u64::MAX, &only_b)
            .await
            .unwrap();
        assert_eq!(r.status, GetMessageStatus::Found);
        assert_eq!(r.messages.len(), 1);
        assert_eq!(r.messages[0].queue_offset, 3);
        assert_eq!(r.next_begin_offset, 4);
        let only_c = TagFilter::from_subscription("TagC", [java_string_hash("TagC")]);
        let r = store
            .get_messages("T", 0, 0, 32, u64::MAX, &only_c)
            .await
            .unwrap();
        assert_eq!(r.status, GetMessageStatus::NoMatchedMessage);
        assert_eq!(r.next_begin_offset, 4);
        store.close().await.unwrap();
    });
}

#[test]
fn a_pull_stops_at_max_msgs_at_max_bytes_and_at_the_in_memory_limit() {
    let dir = tempfile::tempdir().unwrap();
    run(async {
        let mut cfg = config(FlushPolicy::default());
        cfg.segment_size_bytes = 1 << 20;
        let store = Store::open(dir.path(), 0, cfg).await.unwrap();
        let mut size = 0;
        for _ in 0..40 {
            size = store
                .put(msg("T", 0, &[0; 100], None))
                .await
                .unwrap()
                .size_bytes as u64;
        }
        let r = store
            .get_messages("T", 0, 0, 5, u64::MAX, &TagFilter::All)
            .await
            .unwrap();
        assert_eq!((r.messages.len(), r.next_begin_offset), (5, 5));
        assert_eq!(r.data.len() as u64, 5 * size);
        let r = store
            .get_messages("T", 0, 0, 64, 3 * size, &TagFilter::All)
            .await
            .unwrap();
        assert_eq!(r.messages.len(), 3);
        let r = store
            .get_messages("T", 0, 0, 64, u64::MAX, &TagFilter::All)
            .await
            .unwrap();
        assert_eq!(r.messages.len(), 32, "maxTransferCountOnMessageInMemory");
        assert!(!r.suggest_pulling_from_slave);
        store.close().await.unwrap();
    });
}

#[test]
fn a_consumer_lagging_past_the_memory_share_gets_disk_limits_and_the_slave_suggestion() {
    let dir = tempfile::tempdir().unwrap();
    run(async {
        let mut cfg = config(FlushPolicy::default());
        cfg.segment_size_bytes = 1 << 20;
        cfg.total_ram_bytes = Some(100); // 40% of 100 bytes: everything is "on disk"
        let store = Store::open(dir.path(), 0, cfg).await.unwrap();
        for _ in 0..40 {
            store.put(msg("T", 0, &[0; 100], None)).await.unwrap();
        }
        let r = store
            .get_messages("T", 0, 0, 32, u64::MAX, &TagFilter::All)
            .await
            .unwrap();
        assert_eq!(r.messages.len(), 8, "maxTransferCountOnMessageInDisk");
        assert!(r.suggest_pulling_from_slave);
        store.close().await.unwrap();
    });
}

#[test]
fn search_by_timestamp_and_earliest_store_time_use_the_log_store_times() {
    let dir = tempfile::tempdir().unwrap();
    run(async {
        let store = Store::open(dir.path(), 0, config(FlushPolicy::default()))
            .await
            .unwrap();
        assert_eq!(store.earliest_msg_store_time("T", 0).await.unwrap(), -1);
        let first = store.put(msg("T", 0, b"a", None)).await.unwrap();
        compio::runtime::time::sleep(std::time::Duration::from_millis(5)).await;
        let second = store.put(msg("T", 0, b"b", None)).await.unwrap();
        assert!(second.store_timestamp > first.store_timestamp);
        assert_eq!(
            store.earliest_msg_store_time("T", 0).await.unwrap(),
            first.store_timestamp
        );
        let found = store
            .search_offset_by_timestamp("T", 0, second.store_timestamp, Boundary::Lower)
            .await
            .unwrap();
        assert_eq!(found, 1);
        let found = store
            .search_offset_by_timestamp("T", 0, first.store_timestamp - 1000, Boundary::Lower)
            .await
            .unwrap();
        assert_eq!(found, 0);
        store.close().await.unwrap();
    });
}

#[test]
fn a_full_disk_refuses_appends_with_a_typed_error_and_reads_keep_working() {
    let dir = tempfile::tempdir().unwrap();
    run(async {
        let mut cfg = config(FlushPolicy::default());
        cfg.disk_guard = DiskGuardConfig {
            quota_bytes: Some(1),
            ..support::unlimited_disk_guard()
        };
        let store = Store::open(dir.path(), 0, cfg).await.unwrap();
        // No segment yet: the store holds 0 bytes, under the quota.
        let r = store.put(msg("T", 0, b"a", None)).await.unwrap();
        let err = store.put(msg("T", 0, b"b", None)).await.unwrap_err();
        assert!(err.is_disk_full(), "{err:?}");
        assert!(store.read_record_at(r.physical_offset).await.is_ok());
        store.set_disk_guard_config(support::unlimited_disk_guard());
        store.put(msg("T", 0, b"c", None)).await.unwrap();
        store.close().await.unwrap();
    });
}

#[test]
fn a_message_larger_than_a_segment_is_refused_and_the_log_continues() {
    let dir = tempfile::tempdir().unwrap();
    run(async {
        let store = Store::open(dir.path(), 0, config(FlushPolicy::Sync))
            .await
            .unwrap();
        let err = store.put(msg("T", 0, &[0; 5000], None)).await.unwrap_err();
        assert!(
            matches!(
                err,
                ringmq_engine::error::StoreError::MessageTooLarge { .. }
            ),
            "{err:?}"
        );
        let ok = store.put(msg("T", 0, b"fits", None)).await.unwrap();
        assert_eq!(ok.queue_offset, 0);
        store.close().await.unwrap();
    });
}

#[test]
fn a_pull_of_an_interleaved_queue_returns_only_its_own_records() {
    let dir = tempfile::tempdir().unwrap();
    run(async {
        let mut cfg = config(FlushPolicy::default());
        cfg.segment_size_bytes = 1 << 20;
        let store = Store::open(dir.path(), 0, cfg).await.unwrap();
        for i in 0..60u8 {
            store
                .put(msg("T", i32::from(i % 3), &[i; 50], None))
                .await
                .unwrap();
        }
        let r = store
            .get_messages("T", 1, 0, 32, u64::MAX, &TagFilter::All)
            .await
            .unwrap();
        assert_eq!(r.messages.len(), 20);
        let mut end = 0;
        for (k, m) in r.messages.iter().enumerate() {
            assert_eq!(
                m.data_range.start, end,
                "records are back to back in the body"
            );
            end = m.data_range.end;
            let view = view_record(&r.data[m.data_range.clone()]).unwrap();
            assert_eq!((view.queue_id, view.queue_offset), (1, k as i64));
            assert_eq!(view.body, &[(3 * k + 1) as u8; 50][..]);
        }
        assert_eq!(end, r.data.len());
        store.close().await.unwrap();
    });
}

#[test]
fn append_returns_the_offsets_before_the_messages_are_readable() {
    let dir = tempfile::tempdir().unwrap();
    run(async {
        let store = Store::open(dir.path(), 0, config(FlushPolicy::Sync))
            .await
            .unwrap();
        store.put(msg("T", 0, b"first", None)).await.unwrap();
        let ticket = store
            .append(vec![msg("T", 0, b"a", None), msg("T", 0, b"b", None)])
            .await
            .unwrap();
        let offsets: Vec<i64> = ticket.results().iter().map(|r| r.queue_offset).collect();
        assert_eq!(offsets, vec![1, 2]);
        assert_eq!(
            store.max_offset("T", 0),
            1,
            "not readable before its group is synced"
        );
        let results = ticket.wait().await.unwrap();
        assert_eq!(results.len(), 2);
        assert_eq!(store.max_offset("T", 0), 3);
        assert!(store.stats().durable_end >= store.max_physical_offset() as u64);
        store.close().await.unwrap();
    });
}

#[test]
fn with_async_flush_the_background_task_makes_written_bytes_durable() {
    let dir = tempfile::tempdir().unwrap();
    run(async {
        let store = Store::open(
            dir.path(),
            0,
            config(FlushPolicy::Async { interval_ms: 20 }),
        )
        .await
        .unwrap();
        store.put(msg("T", 0, b"a", None)).await.unwrap();
        let written = store.stats().written_end;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while store.stats().durable_end < written {
            assert!(
                std::time::Instant::now() < deadline,
                "no background fdatasync"
            );
            compio::runtime::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert!(store.stats().log_fdatasyncs >= 1);
        store.close().await.unwrap();
    });
}

#[test]
fn close_writes_appends_nobody_waited_for_and_refuses_new_ones() {
    let dir = tempfile::tempdir().unwrap();
    run(async {
        let store = Store::open(dir.path(), 0, config(FlushPolicy::default()))
            .await
            .unwrap();
        let ticket = store
            .append(vec![msg("T", 0, b"unawaited", None)])
            .await
            .unwrap();
        let physical_offset = ticket.results()[0].physical_offset;
        drop(ticket);
        let other = store.clone();
        store.close().await.unwrap();
        assert!(matches!(
            other.put(msg("T", 0, b"late", None)).await,
            Err(ringmq_engine::error::StoreError::Closed)
        ));
        let store = Store::open(dir.path(), 0, config(FlushPolicy::default()))
            .await
            .unwrap();
        assert_eq!(store.max_offset("T", 0), 1);
        let bytes = store.read_record_at(physical_offset).await.unwrap();
        assert_eq!(view_record(&bytes).unwrap().body, b"unawaited");
        store.close().await.unwrap();
    });
}

#[test]
fn a_second_store_on_the_same_log_is_refused_until_the_first_closes() {
    let dir = tempfile::tempdir().unwrap();
    run(async {
        let first = Store::open(dir.path(), 0, config(FlushPolicy::default()))
            .await
            .unwrap();
        let second = Store::open(dir.path(), 0, config(FlushPolicy::default())).await;
        assert!(
            matches!(second, Err(ringmq_engine::error::StoreError::Locked { .. })),
            "{second:?}"
        );
        // Another shard's log in the same root is independent.
        let other_shard = Store::open(dir.path(), 1, config(FlushPolicy::default()))
            .await
            .unwrap();
        other_shard.close().await.unwrap();
        first.close().await.unwrap();
        let again = Store::open(dir.path(), 0, config(FlushPolicy::default()))
            .await
            .unwrap();
        again.close().await.unwrap();
    });
}

#[test]
fn a_deleted_topic_starts_empty_when_used_again_and_stays_gone_after_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    run(async {
        let store = Store::open(dir.path(), 0, config(FlushPolicy::default()))
            .await
            .unwrap();
        for i in 0..3u8 {
            store.put(msg("Gone", 0, &[i; 10], None)).await.unwrap();
        }
        store.put(msg("Kept", 0, b"k", None)).await.unwrap();
        assert_eq!(store.delete_topic("Gone").await.unwrap(), 1);
        assert_eq!(store.max_offset("Gone", 0), 0);
        assert!(!dir.path().join("consumequeue").join("Gone").exists());
        store.close().await.unwrap();

        let store = Store::open(dir.path(), 0, config(FlushPolicy::default()))
            .await
            .unwrap();
        assert_eq!(store.queues(), vec![("Kept".to_owned(), 0)]);
        let again = store.put(msg("Gone", 0, b"new", None)).await.unwrap();
        assert_eq!(
            again.queue_offset, 0,
            "a topic created again starts at offset 0"
        );
        store.close().await.unwrap();
    });
}

//! ConsumeQueue on real files (tiny files of 16 entries so every test crosses file
//! boundaries), driven by a compio runtime.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::future::Future;
use std::path::Path;

use ringmq_engine::consumequeue::{
    Appended, Boundary, ConsumeQueue, CqEntry, CqError, ENTRY_SIZE_BYTES,
};

const EPF: u64 = 16;
const FILE_BYTES: u64 = EPF * ENTRY_SIZE_BYTES as u64;

fn run<F: Future>(future: F) -> F::Output {
    compio::runtime::Runtime::new().unwrap().block_on(future)
}

/// The entry of logical offset `i` in these tests: 100-byte records laid end to end.
fn entry(i: i64) -> CqEntry {
    CqEntry {
        physical_offset: 1000 + i * 100,
        size: 100,
        tags_code: i % 3,
    }
}

fn entries(range: std::ops::Range<i64>) -> Vec<CqEntry> {
    range.map(entry).collect()
}

async fn filled(dir: &Path, count: i64) -> ConsumeQueue {
    let mut cq = ConsumeQueue::open(dir, EPF).await.unwrap();
    for i in cq.max_offset()..count {
        assert_eq!(cq.append(i, entry(i)).unwrap(), Appended::New);
    }
    cq
}

fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|d| d.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

fn file_len(dir: &Path, first_byte: u64) -> u64 {
    std::fs::metadata(dir.join(format!("{first_byte:020}")))
        .unwrap()
        .len()
}

#[test]
fn a_new_queue_is_empty_at_zero() {
    let tmp = tempfile::tempdir().unwrap();
    run(async {
        let cq = ConsumeQueue::open(tmp.path().join("T/0"), EPF)
            .await
            .unwrap();
        assert_eq!((cq.min_offset(), cq.max_offset()), (0, 0));
        assert_eq!(cq.read(0, 10).await.unwrap(), vec![]);
    });
}

#[test]
fn appended_entries_are_readable_before_any_write() {
    let tmp = tempfile::tempdir().unwrap();
    run(async {
        let cq = filled(tmp.path(), 5).await;
        assert_eq!(cq.pending_entries(), 5);
        assert_eq!(cq.read(0, 100).await.unwrap(), entries(0..5));
        assert_eq!(cq.entry_at(3).await.unwrap(), Some(entry(3)));
        assert!(file_names(tmp.path()).is_empty(), "nothing written yet");
    });
}

#[test]
fn written_entries_land_in_files_named_by_byte_offset() {
    let tmp = tempfile::tempdir().unwrap();
    run(async {
        let mut cq = filled(tmp.path(), 40).await;
        cq.write_pending().await.unwrap();
        assert_eq!(cq.written_offset(), 40);
        assert_eq!(
            file_names(tmp.path()),
            vec![
                "00000000000000000000",
                "00000000000000000320",
                "00000000000000000640"
            ]
        );
        assert_eq!(file_len(tmp.path(), 0), FILE_BYTES);
        assert_eq!(file_len(tmp.path(), 640), 8 * 20);
        let bytes = std::fs::read(tmp.path().join("00000000000000000320")).unwrap();
        assert_eq!(&bytes[..20], &entry(16).encode());
    });
}

#[test]
fn entries_survive_reopen_with_min_and_max() {
    let tmp = tempfile::tempdir().unwrap();
    run(async {
        let mut cq = filled(tmp.path(), 37).await;
        cq.sync().await.unwrap();
        drop(cq);
        let cq = ConsumeQueue::open(tmp.path(), EPF).await.unwrap();
        assert_eq!((cq.min_offset(), cq.max_offset()), (0, 37));
        assert_eq!(cq.read(0, 100).await.unwrap(), entries(0..37));
    });
}

#[test]
fn reads_from_files_cross_file_boundaries() {
    let tmp = tempfile::tempdir().unwrap();
    run(async {
        let mut cq = filled(tmp.path(), 50).await;
        cq.set_memory_entries(0);
        cq.write_pending().await.unwrap();
        assert_eq!(cq.read(10, 30).await.unwrap(), entries(10..40));
        assert_eq!(
            cq.read(45, 30).await.unwrap(),
            entries(45..50),
            "stops at max"
        );
        assert_eq!(cq.entry_at(16).await.unwrap(), Some(entry(16)));
        assert_eq!(cq.entry_at(50).await.unwrap(), None);
    });
}

#[test]
fn a_read_mixes_file_and_memory_entries() {
    let tmp = tempfile::tempdir().unwrap();
    run(async {
        let mut cq = filled(tmp.path(), 30).await;
        cq.set_memory_entries(4);
        cq.write_pending().await.unwrap();
        for i in 30..35 {
            cq.append(i, entry(i)).unwrap();
        }
        assert_eq!(cq.read(20, 100).await.unwrap(), entries(20..35));
    });
}

#[test]
fn a_read_future_does_not_borrow_the_queue() {
    let tmp = tempfile::tempdir().unwrap();
    run(async {
        let mut cq = filled(tmp.path(), 20).await;
        cq.set_memory_entries(0);
        cq.write_pending().await.unwrap();
        let pending_read = cq.read(0, 100);
        cq.append(20, entry(20)).unwrap();
        assert_eq!(
            pending_read.await.unwrap(),
            entries(0..20),
            "the read covers the range at the call"
        );
    });
}

#[test]
fn reading_outside_min_max_is_out_of_range() {
    let tmp = tempfile::tempdir().unwrap();
    run(async {
        let cq = filled(tmp.path(), 5).await;
        assert!(matches!(
            cq.read(6, 1).await,
            Err(CqError::OutOfRange { offset: 6, .. })
        ));
        assert!(matches!(
            cq.read(-1, 1).await,
            Err(CqError::OutOfRange { .. })
        ));
        assert_eq!(
            cq.read(5, 1).await.unwrap(),
            vec![],
            "reading at max is empty, not an error"
        );
    });
}

#[test]
fn an_append_past_max_is_a_gap() {
    let tmp = tempfile::tempdir().unwrap();
    run(async {
        let mut cq = filled(tmp.path(), 3).await;
        assert!(matches!(
            cq.append(4, entry(4)),
            Err(CqError::Gap {
                offset: 4,
                expected: 3
            })
        ));
        assert_eq!(cq.max_offset(), 3);
    });
}

#[test]
fn re_appending_a_present_entry_is_an_idempotent_no_op() {
    let tmp = tempfile::tempdir().unwrap();
    run(async {
        let mut cq = filled(tmp.path(), 10).await;
        assert_eq!(cq.append(4, entry(4)).unwrap(), Appended::Duplicate);
        assert_eq!(cq.max_offset(), 10);
        assert_eq!(cq.read(0, 100).await.unwrap(), entries(0..10));
    });
}

#[test]
fn re_appending_a_different_entry_is_a_conflict() {
    let tmp = tempfile::tempdir().unwrap();
    run(async {
        let mut cq = filled(tmp.path(), 10).await;
        let wrong = CqEntry {
            physical_offset: 99_999,
            ..entry(4)
        };
        assert!(matches!(
            cq.append(4, wrong),
            Err(CqError::Conflict {
                offset: 4,
                existing: 1400,
                new: 99_999
            })
        ));
    });
}

#[test]
fn re_dispatch_after_reopen_is_a_no_op() {
    let tmp = tempfile::tempdir().unwrap();
    run(async {
        let mut cq = filled(tmp.path(), 40).await;
        cq.sync().await.unwrap();
        drop(cq);
        let mut cq = ConsumeQueue::open(tmp.path(), EPF).await.unwrap();
        for i in 0..40 {
            assert_eq!(
                cq.append(i, entry(i)).unwrap(),
                Appended::Duplicate,
                "offset {i}"
            );
        }
        assert_eq!(cq.append(40, entry(40)).unwrap(), Appended::New);
    });
}

#[test]
fn a_torn_last_entry_is_ignored_and_cut_off() {
    let tmp = tempfile::tempdir().unwrap();
    run(async {
        let mut cq = filled(tmp.path(), 20).await;
        cq.sync().await.unwrap();
        drop(cq);
        let last = tmp.path().join(format!("{FILE_BYTES:020}"));
        let mut bytes = std::fs::read(&last).unwrap();
        bytes.extend_from_slice(&entry(20).encode()[..11]);
        std::fs::write(&last, &bytes).unwrap();

        let mut cq = ConsumeQueue::open(tmp.path(), EPF).await.unwrap();
        assert_eq!(cq.max_offset(), 20);
        assert_eq!(
            std::fs::metadata(&last).unwrap().len(),
            4 * 20,
            "the partial entry is cut"
        );
        cq.append(20, entry(20)).unwrap();
        cq.sync().await.unwrap();
        drop(cq);
        let cq = ConsumeQueue::open(tmp.path(), EPF).await.unwrap();
        assert_eq!(cq.read(0, 100).await.unwrap(), entries(0..21));
    });
}

#[test]
fn the_queue_ends_at_the_first_zeroed_entry_and_stale_entries_past_it_are_removed() {
    let tmp = tempfile::tempdir().unwrap();
    run(async {
        let mut cq = filled(tmp.path(), 40).await;
        cq.sync().await.unwrap();
        drop(cq);
        // A crash that lost one page but kept a later one: entry 20 is zeroes, 21.. survive,
        // and the third file (32..40) survives too.
        let second = tmp.path().join(format!("{FILE_BYTES:020}"));
        let mut bytes = std::fs::read(&second).unwrap();
        bytes[4 * 20..5 * 20].fill(0);
        std::fs::write(&second, &bytes).unwrap();

        let mut cq = ConsumeQueue::open(tmp.path(), EPF).await.unwrap();
        assert_eq!(cq.max_offset(), 20);
        assert_eq!(
            file_names(tmp.path()).len(),
            2,
            "the file past the end is deleted"
        );
        // Re-dispatch two entries and reopen: nothing stale may reappear after them.
        cq.append(20, entry(20)).unwrap();
        cq.append(21, entry(21)).unwrap();
        cq.sync().await.unwrap();
        drop(cq);
        let cq = ConsumeQueue::open(tmp.path(), EPF).await.unwrap();
        assert_eq!(cq.max_offset(), 22);
    });
}

#[test]
fn truncate_from_physical_drops_entries_in_memory_and_files() {
    let tmp = tempfile::tempdir().unwrap();
    run(async {
        let mut cq = filled(tmp.path(), 50).await;
        cq.set_memory_entries(0);
        cq.write_pending().await.unwrap();
        for i in 50..55 {
            cq.append(i, entry(i)).unwrap();
        }
        // Everything from the record of offset 20 on is gone from the log.
        let dropped = cq
            .truncate_from_physical(entry(20).physical_offset)
            .await
            .unwrap();
        assert_eq!(dropped, 35);
        assert_eq!(cq.max_offset(), 20);
        assert_eq!(cq.read(0, 100).await.unwrap(), entries(0..20));
        cq.sync().await.unwrap();
        assert_eq!(file_names(tmp.path()).len(), 2);
        assert_eq!(file_len(tmp.path(), FILE_BYTES), 4 * 20);
        drop(cq);
        let cq = ConsumeQueue::open(tmp.path(), EPF).await.unwrap();
        assert_eq!((cq.min_offset(), cq.max_offset()), (0, 20));
    });
}

#[test]
fn truncate_inside_a_record_drops_that_record() {
    let tmp = tempfile::tempdir().unwrap();
    run(async {
        let mut cq = filled(tmp.path(), 10).await;
        cq.truncate_from_physical(entry(7).physical_offset + 1)
            .await
            .unwrap();
        assert_eq!(cq.max_offset(), 8, "a record starting before the cut stays");
    });
}

#[test]
fn truncate_past_the_last_entry_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    run(async {
        let mut cq = filled(tmp.path(), 10).await;
        assert_eq!(
            cq.truncate_from_physical(entry(10).physical_offset)
                .await
                .unwrap(),
            0
        );
        assert_eq!(cq.max_offset(), 10);
    });
}

#[test]
fn truncating_to_empty_keeps_the_position_across_reopen() {
    let tmp = tempfile::tempdir().unwrap();
    run(async {
        let mut cq = ConsumeQueue::open(tmp.path(), EPF).await.unwrap();
        cq.reset_to(21).await.unwrap();
        for i in 21..30 {
            cq.append(i, entry(i)).unwrap();
        }
        cq.sync().await.unwrap();
        cq.truncate_from_physical(0).await.unwrap();
        assert_eq!((cq.min_offset(), cq.max_offset()), (21, 21));
        cq.sync().await.unwrap();
        drop(cq);
        let cq = ConsumeQueue::open(tmp.path(), EPF).await.unwrap();
        assert_eq!((cq.min_offset(), cq.max_offset()), (21, 21));
    });
}

#[test]
fn reset_to_starts_an_empty_queue_mid_stream() {
    let tmp = tempfile::tempdir().unwrap();
    run(async {
        let mut cq = ConsumeQueue::open(tmp.path(), EPF).await.unwrap();
        cq.reset_to(21).await.unwrap();
        assert_eq!((cq.min_offset(), cq.max_offset()), (21, 21));
        cq.append(21, entry(21)).unwrap();
        cq.append(22, entry(22)).unwrap();
        cq.sync().await.unwrap();
        drop(cq);
        let cq = ConsumeQueue::open(tmp.path(), EPF).await.unwrap();
        assert_eq!((cq.min_offset(), cq.max_offset()), (21, 23));
        assert_eq!(cq.read(21, 10).await.unwrap(), entries(21..23));
        assert!(matches!(
            cq.read(20, 1).await,
            Err(CqError::OutOfRange { .. })
        ));
    });
}

#[test]
fn reset_to_refuses_a_queue_with_entries() {
    let tmp = tempfile::tempdir().unwrap();
    run(async {
        let mut cq = filled(tmp.path(), 3).await;
        assert!(matches!(
            cq.reset_to(10).await,
            Err(CqError::NotEmpty {
                min_offset: 0,
                max_offset: 3
            })
        ));
    });
}

#[test]
fn a_file_name_off_the_file_size_grid_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("00000000000000000100"), [0_u8; 20]).unwrap();
    run(async {
        let opened = ConsumeQueue::open(tmp.path(), EPF).await;
        assert!(matches!(opened, Err(CqError::MisalignedFile { .. })));
    });
}

#[test]
fn entries_per_file_must_be_positive() {
    let tmp = tempfile::tempdir().unwrap();
    run(async {
        assert!(matches!(
            ConsumeQueue::open(tmp.path(), 0).await,
            Err(CqError::BadEntriesPerFile { .. })
        ));
    });
}

/// Store times per physical offset, as the CommitLog would answer them.
fn store_times(times: &[i64]) -> HashMap<i64, i64> {
    times
        .iter()
        .enumerate()
        .map(|(i, t)| (entry(i as i64).physical_offset, *t))
        .collect()
}

async fn search(cq: &ConsumeQueue, times: &HashMap<i64, i64>, ts: i64, boundary: Boundary) -> i64 {
    cq.search_by_timestamp(ts, boundary, |e: CqEntry| {
        let found = times.get(&e.physical_offset).copied();
        async move { found.ok_or(std::io::Error::other("no such record")) }
    })
    .await
    .unwrap()
}

#[test]
fn search_by_timestamp_over_files_honours_both_boundaries() {
    let tmp = tempfile::tempdir().unwrap();
    // 40 entries, three files; times rise in steps of 10 with runs of equal times.
    let times: Vec<i64> = (0..40).map(|i| 1_000 + (i / 4) * 10).collect();
    let lookup = store_times(&times);
    run(async {
        let mut cq = filled(tmp.path(), 40).await;
        cq.set_memory_entries(0);
        cq.write_pending().await.unwrap();
        assert_eq!(
            search(&cq, &lookup, 1_050, Boundary::Lower).await,
            20,
            "first of the equal run"
        );
        assert_eq!(
            search(&cq, &lookup, 1_050, Boundary::Upper).await,
            23,
            "last of the equal run"
        );
        assert_eq!(search(&cq, &lookup, 1_055, Boundary::Lower).await, 24);
        assert_eq!(search(&cq, &lookup, 1_055, Boundary::Upper).await, 23);
        assert_eq!(
            search(&cq, &lookup, 9_999, Boundary::Lower).await,
            40,
            "all older: max"
        );
        assert_eq!(
            search(&cq, &lookup, 9_999, Boundary::Upper).await,
            39,
            "all older: the last"
        );
        assert_eq!(
            search(&cq, &lookup, 10, Boundary::Lower).await,
            0,
            "all newer: min"
        );
        assert_eq!(
            search(&cq, &lookup, 10, Boundary::Upper).await,
            0,
            "all newer: min"
        );
    });
}

#[test]
fn search_by_timestamp_reports_a_failed_lookup() {
    let tmp = tempfile::tempdir().unwrap();
    run(async {
        let cq = filled(tmp.path(), 5).await;
        let result = cq
            .search_by_timestamp(5, Boundary::Lower, |_| async {
                Err::<i64, _>(std::io::Error::other("gone"))
            })
            .await;
        assert!(matches!(
            result,
            Err(ringmq_engine::consumequeue::SearchError::Lookup(_))
        ));
    });
}

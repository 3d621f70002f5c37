//! The disk guard against the real filesystem of a temp dir (no statvfs mock): forced to
//! refuse by a ratio of 0 or a tiny quota, and back to accepting when the limit or the
//! store's bytes allow it again.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use ringmq_engine::disk_guard::{DiskGuard, DiskGuardConfig, DiskGuardError, FsUsage, FullCause};

fn config(max_used_ratio: f64, quota_bytes: Option<u64>) -> DiskGuardConfig {
    DiskGuardConfig {
        max_used_ratio,
        quota_bytes,
        check_interval: Duration::from_secs(3600),
        ..DiskGuardConfig::default()
    }
}

/// A temp dir holding one 64 KiB file, so its filesystem has used bytes for sure.
fn store_with_a_segment() -> (tempfile::TempDir, u64) {
    let tmp = tempfile::tempdir().unwrap();
    let segment = vec![7_u8; 64 * 1024];
    std::fs::write(tmp.path().join("segment"), &segment).unwrap();
    (tmp, segment.len() as u64)
}

#[test]
fn statvfs_reports_a_used_and_sized_filesystem() {
    let (tmp, _) = store_with_a_segment();
    let usage = FsUsage::of(tmp.path()).unwrap();
    assert!(usage.used_bytes > 0);
    assert!(usage.total_bytes() >= usage.used_bytes);
}

#[test]
fn ratio_zero_refuses_appends_on_a_real_filesystem() {
    let (tmp, _) = store_with_a_segment();
    let mut guard = DiskGuard::new(tmp.path(), config(0.0, None));
    match guard.check() {
        Err(DiskGuardError::DiskFull {
            cause: FullCause::UsedRatio,
            used_bytes,
            limit_bytes,
            ..
        }) => {
            assert_eq!(limit_bytes, 0);
            assert!(used_bytes > 0);
        }
        other => panic!("expected DiskFull, got {other:?}"),
    }
}

#[test]
fn ratio_one_accepts_appends_on_a_real_filesystem() {
    let (tmp, _) = store_with_a_segment();
    let mut guard = DiskGuard::new(tmp.path(), config(1.0, None));
    guard.check().unwrap();
}

#[test]
fn raising_the_limit_resumes_appends_at_the_next_check() {
    let (tmp, _) = store_with_a_segment();
    let mut guard = DiskGuard::new(tmp.path(), config(0.0, None));
    assert!(guard.check().is_err());
    guard.set_config(config(1.0, None));
    guard.check().unwrap();
    assert_eq!(
        guard.statvfs_calls(),
        1,
        "the cached figures were judged again, no new statvfs"
    );
}

#[test]
fn a_tiny_quota_refuses_and_freed_store_bytes_resume_appends() {
    let (tmp, segment_bytes) = store_with_a_segment();
    let mut guard = DiskGuard::new(tmp.path(), config(1.0, Some(4096)));
    let on_disk = std::fs::metadata(tmp.path().join("segment")).unwrap().len();
    assert_eq!(on_disk, segment_bytes);
    guard.set_store_bytes(on_disk);
    match guard.check() {
        Err(DiskGuardError::DiskFull {
            cause: FullCause::StoreQuota,
            used_bytes,
            limit_bytes,
            ..
        }) => {
            assert_eq!((used_bytes, limit_bytes), (segment_bytes, 4096));
        }
        other => panic!("expected DiskFull, got {other:?}"),
    }
    // The store deletes the segment and says so: appends go ahead again by themselves.
    std::fs::remove_file(tmp.path().join("segment")).unwrap();
    guard.set_store_bytes(0);
    guard.check().unwrap();
}

#[test]
fn statvfs_runs_once_per_interval_however_many_checks() {
    let (tmp, _) = store_with_a_segment();
    let mut guard = DiskGuard::new(tmp.path(), config(1.0, None));
    let start = Instant::now();
    for _ in 0..10_000 {
        guard.check_at(start).unwrap();
    }
    assert_eq!(guard.statvfs_calls(), 1);
    guard.check_at(start + Duration::from_secs(3601)).unwrap();
    assert_eq!(guard.statvfs_calls(), 2, "a stale answer is refreshed");
}

#[test]
fn a_missing_store_directory_is_a_statvfs_error() {
    let tmp = tempfile::tempdir().unwrap();
    let mut guard = DiskGuard::new(tmp.path().join("absent"), DiskGuardConfig::default());
    assert!(matches!(guard.check(), Err(DiskGuardError::Statvfs { .. })));
}

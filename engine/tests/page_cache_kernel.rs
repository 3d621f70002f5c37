//! The page-cache estimator against the real kernel: a range evicted with
//! `posix_fadvise(POSIX_FADV_DONTNEED)` is cold, the same range read back is hot, by
//! cachestat(2) and by the mincore(2) fallback; the rule forces cold with a ratio of 0.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::path::Path;

use ringmq_engine::page_cache::{
    cachestat_residency, mincore_residency, Estimator, Probe, Residency, Temperature,
};

const FILE_BYTES: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// A synced 1 MiB file, entirely evicted from the page cache.
fn evicted_file(dir: &Path) -> File {
    let path = dir.join("segment");
    let mut file = File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .unwrap();
    let bytes: Vec<u8> = (0..FILE_BYTES).map(|i| (i * 31 % 251) as u8).collect();
    file.write_all(&bytes).unwrap();
    file.sync_all().unwrap();
    evict(&file, 0, FILE_BYTES);
    // No readahead: a read must cache exactly the pages it covers.
    // SAFETY: plain advice on an open descriptor; no memory is involved.
    let rc = unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_RANDOM) };
    assert_eq!(rc, 0);
    file
}

fn evict(file: &File, offset: u64, len: u64) {
    // SAFETY: plain advice on an open descriptor; no memory is involved.
    let rc = unsafe {
        libc::posix_fadvise(
            file.as_raw_fd(),
            offset as libc::off_t,
            len as libc::off_t,
            libc::POSIX_FADV_DONTNEED,
        )
    };
    assert_eq!(rc, 0);
}

fn read_back(file: &mut File, offset: u64, len: u64) {
    let mut buf = vec![0_u8; len as usize];
    file.seek(SeekFrom::Start(offset)).unwrap();
    file.read_exact(&mut buf).unwrap();
}

fn none_resident(r: Residency) -> bool {
    r.resident_pages == 0 && r.total_pages > 0
}

#[test]
fn cachestat_sees_an_evicted_range_as_not_resident_and_a_read_range_as_resident() {
    let tmp = tempfile::tempdir().unwrap();
    let mut file = evicted_file(tmp.path());
    let before = cachestat_residency(&file, 0, FILE_BYTES).unwrap();
    assert!(none_resident(before), "{before:?}");
    read_back(&mut file, 0, FILE_BYTES);
    let after = cachestat_residency(&file, 0, FILE_BYTES).unwrap();
    assert!(after.is_fully_resident(), "{after:?}");
    assert_eq!(after.total_pages, FILE_BYTES / 4096);
}

#[test]
fn mincore_sees_an_evicted_range_as_not_resident_and_a_read_range_as_resident() {
    let tmp = tempfile::tempdir().unwrap();
    let mut file = evicted_file(tmp.path());
    let before = mincore_residency(&file, 0, FILE_BYTES).unwrap();
    assert!(none_resident(before), "{before:?}");
    read_back(&mut file, 0, FILE_BYTES);
    let after = mincore_residency(&file, 0, FILE_BYTES).unwrap();
    assert!(after.is_fully_resident(), "{after:?}");
}

#[test]
fn mincore_handles_an_unaligned_range() {
    let tmp = tempfile::tempdir().unwrap();
    let mut file = evicted_file(tmp.path());
    read_back(&mut file, 8192, 4096);
    let inside = mincore_residency(&file, 8192 + 100, 3000).unwrap();
    assert_eq!((inside.resident_pages, inside.total_pages), (1, 1));
    let straddling = mincore_residency(&file, 8192 + 100, 4096).unwrap();
    assert_eq!((straddling.resident_pages, straddling.total_pages), (1, 2));
}

#[test]
fn a_partly_evicted_range_is_cold_and_its_resident_part_hot() {
    let tmp = tempfile::tempdir().unwrap();
    let mut file = evicted_file(tmp.path());
    read_back(&mut file, 0, FILE_BYTES);
    evict(&file, FILE_BYTES / 2, FILE_BYTES / 2);
    let estimator = Estimator::new(64 * GIB, 100);
    assert_eq!(
        estimator.is_hot(100, 0, &file, 0, FILE_BYTES),
        Temperature::Cold
    );
    assert_eq!(
        estimator.is_hot(100, 0, &file, 0, FILE_BYTES / 2),
        Temperature::Hot
    );
}

#[test]
fn the_estimator_is_cold_for_evicted_data_and_hot_once_it_is_read() {
    let tmp = tempfile::tempdir().unwrap();
    let mut file = evicted_file(tmp.path());
    let estimator = Estimator::new(64 * GIB, 100);
    assert_eq!(
        estimator.is_hot(FILE_BYTES as i64, 0, &file, 0, 64 * 1024),
        Temperature::Cold
    );
    read_back(&mut file, 0, 64 * 1024);
    assert_eq!(
        estimator.is_hot(FILE_BYTES as i64, 0, &file, 0, 64 * 1024),
        Temperature::Hot
    );
    let (_, probe) = estimator.kernel_residency(&file, 0, 4096).unwrap();
    assert_eq!(probe, Probe::Cachestat, "this kernel (6.5+) has cachestat");
}

#[test]
fn ratio_zero_is_cold_even_for_cached_data() {
    let tmp = tempfile::tempdir().unwrap();
    let mut file = evicted_file(tmp.path());
    read_back(&mut file, 0, FILE_BYTES);
    let estimator = Estimator::new(64 * GIB, 0);
    assert_eq!(estimator.is_hot(1, 0, &file, 0, 4096), Temperature::Cold);
}

#[test]
fn without_the_kernel_probe_the_rule_alone_decides() {
    let tmp = tempfile::tempdir().unwrap();
    let file = evicted_file(tmp.path());
    let estimator = Estimator::new(64 * GIB, 100).with_kernel_probe(false);
    assert_eq!(estimator.is_hot(1, 0, &file, 0, 4096), Temperature::Hot);
}

#[test]
fn the_estimator_works_on_a_compio_file() {
    let tmp = tempfile::tempdir().unwrap();
    let mut std_file = evicted_file(tmp.path());
    read_back(&mut std_file, 0, 4096);
    compio::runtime::Runtime::new().unwrap().block_on(async {
        let file = compio::fs::File::open(tmp.path().join("segment"))
            .await
            .unwrap();
        let estimator = Estimator::for_this_machine(40).unwrap();
        assert_eq!(estimator.is_hot(4096, 0, &file, 0, 4096), Temperature::Hot);
        assert_eq!(
            estimator.is_hot(4096, 0, &file, 4096, 4096),
            Temperature::Cold
        );
    });
}

#[test]
fn the_estimator_answers_through_the_mincore_fallback() {
    let tmp = tempfile::tempdir().unwrap();
    let mut file = evicted_file(tmp.path());
    let estimator = Estimator::new(64 * GIB, 100).with_probe(Probe::Mincore);
    assert_eq!(
        estimator.is_hot(100, 0, &file, 0, 64 * 1024),
        Temperature::Cold
    );
    read_back(&mut file, 0, 64 * 1024);
    assert_eq!(
        estimator.is_hot(100, 0, &file, 0, 64 * 1024),
        Temperature::Hot
    );
    let (_, probe) = estimator.kernel_residency(&file, 0, 4096).unwrap();
    assert_eq!(probe, Probe::Mincore);
}

//! The power-cut filesystem drops what it should, through a real FUSE mount: unsynced files
//! and bytes are gone after a cut, synced ones stay, a rename without a directory fsync may
//! revert, a torn write leaves a prefix, and the backing directory holds the durable state.
//! Skipped (with the reason reported) where FUSE cannot be mounted.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::Path;

use ringmq_testkit::powercut::{CutMode, PowerCutFs};

fn mount(test: &str) -> Option<(PowerCutFs, tempfile::TempDir)> {
    let backing = tempfile::tempdir().unwrap();
    let fs = PowerCutFs::mount_or_skip(test, backing.path())?;
    Some((fs, backing))
}

fn sync_dir(dir: &Path) {
    File::open(dir).unwrap().sync_all().unwrap();
}

fn write_file(path: &Path, data: &[u8]) -> File {
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .read(true)
        .open(path)
        .unwrap();
    file.write_all(data).unwrap();
    file
}

#[test]
fn a_file_written_and_not_synced_is_gone_after_a_cut() {
    let Some((fs, _backing)) = mount("a_file_written_and_not_synced_is_gone_after_a_cut") else {
        return;
    };
    let path = fs.path().join("unsynced");
    drop(write_file(&path, b"never synced"));
    assert_eq!(fs::read(&path).unwrap(), b"never synced");
    let report = fs.cut(CutMode::DropAllPending).unwrap();
    assert!(
        report.bytes_dropped >= 12 && report.dir_ops_dropped >= 1,
        "{report:?}"
    );
    assert!(!path.exists());
    assert!(!fs.backing_dir().join("unsynced").exists());
}

#[test]
fn synced_bytes_stay_and_later_ones_go() {
    let Some((fs, _backing)) = mount("synced_bytes_stay_and_later_ones_go") else {
        return;
    };
    let path = fs.path().join("log");
    let mut file = write_file(&path, b"durable");
    file.sync_data().unwrap();
    sync_dir(fs.path());
    file.write_all(b" and lost").unwrap();
    assert_eq!(fs::read(&path).unwrap(), b"durable and lost");
    drop(file);
    fs.cut(CutMode::DropAllPending).unwrap();
    assert_eq!(fs::read(&path).unwrap(), b"durable");
    assert_eq!(fs::read(fs.backing_dir().join("log")).unwrap(), b"durable");
}

#[test]
fn an_fsynced_file_in_an_unsynced_directory_is_gone() {
    let Some((fs, _backing)) = mount("an_fsynced_file_in_an_unsynced_directory_is_gone") else {
        return;
    };
    let path = fs.path().join("new");
    write_file(&path, b"data").sync_all().unwrap();
    fs.cut(CutMode::DropAllPending).unwrap();
    assert!(
        !path.exists(),
        "the strict model: only a directory fsync makes a name durable"
    );
}

#[test]
fn a_rename_not_followed_by_a_directory_fsync_reverts() {
    let Some((fs, _backing)) = mount("a_rename_not_followed_by_a_directory_fsync_reverts") else {
        return;
    };
    let name = fs.path().join("config.json");
    let tmp = fs.path().join("config.json.tmp");
    write_file(&name, b"old").sync_all().unwrap();
    sync_dir(fs.path());
    write_file(&tmp, b"new").sync_all().unwrap();
    fs::rename(&tmp, &name).unwrap();
    assert_eq!(fs::read(&name).unwrap(), b"new");
    fs.cut(CutMode::DropAllPending).unwrap();
    assert_eq!(fs::read(&name).unwrap(), b"old");
    assert!(!tmp.exists());

    // With the directory fsync, the new version is what stays.
    write_file(&tmp, b"new").sync_all().unwrap();
    fs::rename(&tmp, &name).unwrap();
    sync_dir(fs.path());
    fs.cut(CutMode::DropAllPending).unwrap();
    assert_eq!(fs::read(&name).unwrap(), b"new");
}

#[test]
fn a_rename_survives_whole_or_not_at_all_under_random_cuts() {
    let Some((fs, _backing)) = mount("a_rename_survives_whole_or_not_at_all_under_random_cuts")
    else {
        return;
    };
    let name = fs.path().join("offsets.json");
    let tmp = fs.path().join("offsets.json.tmp");
    write_file(&name, b"version 0").sync_all().unwrap();
    sync_dir(fs.path());
    let mut seen = std::collections::BTreeSet::new();
    for seed in 0..32u64 {
        let current = fs::read(&name).unwrap();
        let next = format!("version {}", seed + 1);
        write_file(&tmp, next.as_bytes()).sync_all().unwrap();
        fs::rename(&tmp, &name).unwrap();
        fs.cut(CutMode::KeepRandomPrefix { seed }).unwrap();
        let after = fs::read(&name).unwrap();
        assert!(
            after == current || after == next.as_bytes(),
            "seed {seed}: {after:?}"
        );
        seen.insert(after == current);
    }
    assert_eq!(
        seen.len(),
        2,
        "32 random cuts kept the rename some times and not others"
    );
}

#[test]
fn a_torn_write_leaves_a_prefix_in_whole_sectors() {
    let Some((fs, _backing)) = mount("a_torn_write_leaves_a_prefix_in_whole_sectors") else {
        return;
    };
    let path = fs.path().join("segment");
    write_file(&path, b"").sync_all().unwrap();
    sync_dir(fs.path());
    let pattern: Vec<u8> = (0..16384u32).map(|i| (i % 251) as u8 + 1).collect();
    let mut torn = 0;
    for seed in 0..16 {
        let mut file = OpenOptions::new().write(true).open(&path).unwrap();
        file.write_all(&pattern).unwrap();
        drop(file);
        let report = fs.cut(CutMode::TornPage { seed }).unwrap();
        let after = fs::read(&path).unwrap();
        assert!(
            after.len() < pattern.len(),
            "seed {seed}: nothing was synced"
        );
        assert_eq!(after.len() % 512, 0, "seed {seed}: not cut at a sector");
        assert_eq!(
            after[..],
            pattern[..after.len()],
            "seed {seed}: not a prefix"
        );
        torn += report.writes_torn;
    }
    assert!(torn > 0, "no cut tore a write");
}

#[test]
fn fallocate_and_truncate_are_pending_like_writes() {
    let Some((fs, _backing)) = mount("fallocate_and_truncate_are_pending_like_writes") else {
        return;
    };
    let path = fs.path().join("prealloc");
    let file = write_file(&path, &[9u8; 8192]);
    file.sync_all().unwrap();
    sync_dir(fs.path());
    // SAFETY: fallocate only reads its integer arguments; the fd is open for the call.
    let rc = unsafe { libc::fallocate(file.as_raw_fd(), 0, 0, 1 << 20) };
    assert_eq!(rc, 0, "{}", std::io::Error::last_os_error());
    // SAFETY: as above.
    let rc = unsafe { libc::fallocate(file.as_raw_fd(), libc::FALLOC_FL_ZERO_RANGE, 4096, 4096) };
    assert_eq!(rc, 0, "{}", std::io::Error::last_os_error());
    assert_eq!(fs::metadata(&path).unwrap().len(), 1 << 20);
    assert_eq!(fs::read(&path).unwrap()[4096..8192], [0u8; 4096]);
    drop(file);
    fs.cut(CutMode::DropAllPending).unwrap();
    assert_eq!(fs::read(&path).unwrap(), vec![9u8; 8192]);
}

#[test]
fn a_remount_serves_what_the_backing_directory_holds() {
    let Some((fs, backing)) = mount("a_remount_serves_what_the_backing_directory_holds") else {
        return;
    };
    fs::create_dir(fs.path().join("dir")).unwrap();
    drop(write_file(
        &fs.path().join("dir/file"),
        b"kept by a clean unmount",
    ));
    fs.unmount().unwrap();
    assert_eq!(
        fs::read(backing.path().join("dir/file")).unwrap(),
        b"kept by a clean unmount"
    );
    let fs = PowerCutFs::mount(backing.path()).unwrap();
    assert_eq!(
        fs::read(fs.path().join("dir/file")).unwrap(),
        b"kept by a clean unmount"
    );
    // What was loaded is durable.
    fs.cut(CutMode::DropAllPending).unwrap();
    assert!(fs.path().join("dir/file").exists());
}

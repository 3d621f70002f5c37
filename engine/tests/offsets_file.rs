//! consumerOffset.json on real files: round trip, RocketMQ's unquoted keys, the `.bak`
//! fallback and what a crash mid-persist leaves behind.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::future::Future;
use std::path::{Path, PathBuf};

use ringmq_engine::offsets::{ConsumerOffsets, OffsetsError};

fn run<F: Future>(future: F) -> F::Output {
    compio::runtime::Runtime::new().unwrap().block_on(future)
}

fn offsets_path(dir: &Path) -> PathBuf {
    dir.join("consumerOffset.json")
}

fn with_path(path: &Path, suffix: &str) -> PathBuf {
    PathBuf::from(format!("{}{suffix}", path.display()))
}

fn sample() -> ConsumerOffsets {
    let mut offsets = ConsumerOffsets::new();
    offsets.commit("cg1", "TopicTest", 0, 1532);
    offsets.commit("cg1", "TopicTest", 1, 1530);
    offsets.commit("cg1", "%RETRY%cg1", 0, 0);
    offsets.commit("cg2", "TopicTest", 3, 7);
    offsets
}

#[test]
fn persisted_offsets_load_back() {
    let tmp = tempfile::tempdir().unwrap();
    let path = offsets_path(tmp.path());
    let mut offsets = sample();
    run(offsets.persist(&path)).unwrap();
    assert!(!offsets.is_dirty());
    let loaded = ConsumerOffsets::load(&path).unwrap();
    assert_eq!(loaded.len(), 4);
    assert_eq!(loaded.get("cg1", "TopicTest", 0), Some(1532));
    assert_eq!(loaded.get("cg1", "%RETRY%cg1", 0), Some(0));
    assert_eq!(loaded.get("cg2", "TopicTest", 3), Some(7));
}

#[test]
fn the_file_is_standard_json_in_rocketmq_shape() {
    let tmp = tempfile::tempdir().unwrap();
    let path = offsets_path(tmp.path());
    run(sample().persist(&path)).unwrap();
    let value: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(value["offsetTable"]["TopicTest@cg1"]["1"], 1530);
    assert!(value["dataVersion"]["counter"].is_i64());
}

#[test]
fn a_java_written_file_with_unquoted_keys_loads() {
    let tmp = tempfile::tempdir().unwrap();
    let path = offsets_path(tmp.path());
    let java = "{\n\t\"offsetTable\":{\n\t\t\"TopicTest@cg1\":{0:1532,1:1530,2:1529,3:1533},\n\t\t\
                \"%RETRY%cg1@cg1\":{0:0}\n\t},\n\t\"dataVersion\":{\"counter\":42,\"stateVersion\":0,\
                \"timestamp\":1715000000000}\n}";
    std::fs::write(&path, java).unwrap();
    let loaded = ConsumerOffsets::load(&path).unwrap();
    assert_eq!(loaded.get("cg1", "TopicTest", 3), Some(1533));
    assert_eq!(loaded.get("cg1", "%RETRY%cg1", 0), Some(0));
    assert_eq!(loaded.data_version().counter, 42);
}

#[test]
fn no_file_at_all_loads_an_empty_table() {
    let tmp = tempfile::tempdir().unwrap();
    assert!(ConsumerOffsets::load(&offsets_path(tmp.path()))
        .unwrap()
        .is_empty());
}

#[test]
fn each_persist_keeps_the_previous_file_as_bak() {
    let tmp = tempfile::tempdir().unwrap();
    let path = offsets_path(tmp.path());
    let mut offsets = sample();
    run(offsets.persist(&path)).unwrap();
    offsets.commit("cg1", "TopicTest", 0, 2000);
    run(offsets.persist(&path)).unwrap();
    let bak = ConsumerOffsets::load(&with_path(&path, ".bak")).unwrap();
    assert_eq!(
        bak.get("cg1", "TopicTest", 0),
        Some(1532),
        "the .bak is the previous version"
    );
    assert_eq!(
        ConsumerOffsets::load(&path)
            .unwrap()
            .get("cg1", "TopicTest", 0),
        Some(2000)
    );
}

#[test]
fn a_missing_file_falls_back_to_the_bak() {
    let tmp = tempfile::tempdir().unwrap();
    let path = offsets_path(tmp.path());
    let mut offsets = sample();
    run(offsets.persist(&path)).unwrap();
    offsets.commit("cg1", "TopicTest", 0, 2000);
    run(offsets.persist(&path)).unwrap();
    std::fs::remove_file(&path).unwrap();
    let loaded = ConsumerOffsets::load(&path).unwrap();
    assert_eq!(loaded.get("cg1", "TopicTest", 0), Some(1532));
}

#[test]
fn a_broken_file_falls_back_to_the_bak() {
    let tmp = tempfile::tempdir().unwrap();
    let path = offsets_path(tmp.path());
    let mut offsets = sample();
    run(offsets.persist(&path)).unwrap();
    offsets.commit("cg1", "TopicTest", 0, 2000);
    run(offsets.persist(&path)).unwrap();
    std::fs::write(&path, b"{\"offsetTable\":{\"TopicTest@cg1\":{0:15").unwrap();
    let loaded = ConsumerOffsets::load(&path).unwrap();
    assert_eq!(loaded.get("cg1", "TopicTest", 0), Some(1532));
}

#[test]
fn a_broken_file_without_a_bak_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let path = offsets_path(tmp.path());
    std::fs::write(&path, b"not json").unwrap();
    assert!(matches!(
        ConsumerOffsets::load(&path),
        Err(OffsetsError::Corrupt { .. })
    ));
}

#[test]
fn a_leftover_temp_file_from_a_crash_is_ignored_and_replaced() {
    let tmp = tempfile::tempdir().unwrap();
    let path = offsets_path(tmp.path());
    let mut offsets = sample();
    run(offsets.persist(&path)).unwrap();
    // A crash while writing the next version: a half-written temp file stays behind.
    std::fs::write(
        with_path(&path, ".tmp"),
        b"{\"offsetTable\":{\"TopicTest@cg1\":{0:99",
    )
    .unwrap();
    std::fs::write(with_path(&path, ".bak.tmp"), b"garbage").unwrap();
    let loaded = ConsumerOffsets::load(&path).unwrap();
    assert_eq!(loaded.get("cg1", "TopicTest", 0), Some(1532));

    offsets.commit("cg1", "TopicTest", 0, 1600);
    run(offsets.persist(&path)).unwrap();
    assert!(!with_path(&path, ".tmp").exists());
    assert_eq!(
        ConsumerOffsets::load(&path)
            .unwrap()
            .get("cg1", "TopicTest", 0),
        Some(1600)
    );
}

#[test]
fn persisting_a_change_bumps_the_data_version() {
    let tmp = tempfile::tempdir().unwrap();
    let path = offsets_path(tmp.path());
    let mut offsets = sample();
    run(offsets.persist(&path)).unwrap();
    let first = offsets.data_version().counter;
    run(offsets.persist(&path)).unwrap();
    assert_eq!(
        offsets.data_version().counter,
        first,
        "no change, no new version"
    );
    offsets.commit("cg1", "TopicTest", 0, 1);
    run(offsets.persist(&path)).unwrap();
    assert_eq!(offsets.data_version().counter, first + 1);
    assert_eq!(
        ConsumerOffsets::load(&path).unwrap().data_version().counter,
        first + 1
    );
}

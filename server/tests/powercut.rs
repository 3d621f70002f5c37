//! Power cuts under the broker (issue 16): the store lives on testkit's [`PowerCutFs`], which
//! drops everything not fsynced when the power is cut. A kill -9 alone keeps the page cache,
//! so only these tests can catch an fdatasync that is missing or in the wrong place.
//!
//! Each round: restart the broker on the store the last cut left, check it (every message
//! acknowledged before is there, byte for byte, at its acknowledged offset; every queue is
//! a gapless run of CRC-valid records whose queue offsets are their ConsumeQueue positions;
//! consumer offsets are not newer than what was committed; the checkpoint, topics and
//! offsets files are whole), then send from four threads, kill -9 the broker at a random
//! moment and cut the power. The seed is printed; `RINGMQ_POWERCUT_SEED=<n>` replays it.
//! Skipped, with the reason reported, where FUSE cannot be mounted.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use ringmq_protocol::codes::{request_code, response_code};
use ringmq_protocol::message::record::iter_records;
use ringmq_testkit::powercut::{CutMode, CutReport, PowerCutFs, SplitMix64};
use ringmq_testkit::report;
use support::{request, Broker, TestClient};

const TOPIC: &str = "PowerCutTopic";
const GROUP: &str = "PowerCutGroup";
const QUEUES: i32 = 4;
/// 1 MiB segments: a few rounds fill one, so rounds also cut across segment rolls.
const SEGMENT_SIZE: &str = "1048576";
/// The broker's default background flush interval with `--flush async`.
const ASYNC_FLUSH_INTERVAL: Duration = Duration::from_millis(500);

/// (queue id, queue offset) → body.
type Messages = BTreeMap<(i32, i64), Vec<u8>>;

/// Acknowledged sends: (queue id, queue offset) → body and when the acknowledgement arrived.
type AckedSends = BTreeMap<(i32, i64), (Vec<u8>, Instant)>;
/// The same, shared with the sender threads.
type Acked = Arc<Mutex<AckedSends>>;

fn seed() -> u64 {
    match std::env::var("RINGMQ_POWERCUT_SEED") {
        Ok(value) => value.parse().expect("RINGMQ_POWERCUT_SEED is a u64"),
        Err(_) => u64::from(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .subsec_nanos(),
        ),
    }
}

fn sync_dir(dir: &Path) {
    std::fs::File::open(dir).unwrap().sync_all().unwrap();
}

/// A body of 64..1,088 bytes that says where it was sent, the rest pseudo-random.
fn body(seed: u64, round: u32, queue_id: i32, index: u64) -> Vec<u8> {
    let mut rng =
        SplitMix64::new(seed ^ (u64::from(round) << 40) ^ ((queue_id as u64) << 32) ^ index);
    let mut out = format!("r{round}-q{queue_id}-m{index}-").into_bytes();
    let len = 64 + rng.below(1024) as usize;
    while out.len() < len {
        out.push(b'a' + (rng.next_u64() % 26) as u8);
    }
    out
}

fn send_until_refused(
    addr: std::net::SocketAddr,
    seed: u64,
    round: u32,
    queue_id: i32,
    acked: Acked,
) {
    let mut client = TestClient::connect(addr);
    client
        .stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let queue = queue_id.to_string();
    for index in 0..100_000u64 {
        let body = body(seed, round, queue_id, index);
        let command = request(
            request_code::SEND_MESSAGE_V2,
            &[
                ("a", "PG"),
                ("b", TOPIC),
                ("c", "TBW102"),
                ("d", "4"),
                ("e", &queue),
                ("f", "0"),
                ("g", "1700000000000"),
                ("h", "0"),
            ],
        )
        .with_body(Bytes::from(body.clone()));
        let opaque = client.send(command, ringmq_protocol::header::SerializeType::Json);
        let Some(response) = client.receive() else {
            return; // the broker died: this send is not acknowledged
        };
        assert_eq!(response.opaque, opaque);
        if response.code != response_code::SUCCESS {
            return;
        }
        let offset: i64 = response.ext("queueOffset").unwrap().parse().unwrap();
        let previous = acked
            .lock()
            .unwrap()
            .insert((queue_id, offset), (body, Instant::now()));
        assert!(
            previous.is_none(),
            "queue {queue_id} offset {offset} acknowledged twice"
        );
    }
}

/// Every record of the queue through its ConsumeQueue, checked: CRC-valid, of this queue,
/// and at the queue offset it was pulled from (the log agrees with the ConsumeQueue), with
/// no gap from the queue's first offset to its end.
fn pull_queue(client: &mut TestClient, queue_id: i32) -> Messages {
    let mut found = Messages::new();
    let mut offset = 0i64;
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let response = client.call(support::pull_request("CHECK", TOPIC, queue_id, offset, 0));
        if response.code != response_code::SUCCESS {
            assert!(
                response.code == response_code::PULL_NOT_FOUND
                    // Before the first send (or after a cut took all of it) the auto-created
                    // topic may not exist; the baseline check says whether that is a loss.
                    || (response.code == response_code::TOPIC_NOT_EXIST && found.is_empty())
                    || (response.code == response_code::PULL_OFFSET_MOVED && found.is_empty()),
                "queue {queue_id} at {offset}: code {} {:?}",
                response.code,
                response.remark
            );
            let next: i64 = response
                .ext("nextBeginOffset")
                .map_or(offset, |v| v.parse().unwrap());
            if response.code == response_code::PULL_OFFSET_MOVED && next != offset {
                offset = next;
                continue;
            }
            return found;
        }
        for record in iter_records(&response.body) {
            let record = record.unwrap();
            assert!(
                record.body_crc_matches(),
                "queue {queue_id} at {offset}: a corrupt record was served"
            );
            assert_eq!((record.topic, record.queue_id), (TOPIC, queue_id));
            assert_eq!(
                record.queue_offset, offset,
                "queue {queue_id}: the ConsumeQueue entry at {offset} points at a record of offset {}",
                record.queue_offset
            );
            found.insert((queue_id, offset), record.body.to_vec());
            offset += 1;
        }
        let next: i64 = response.ext("nextBeginOffset").unwrap().parse().unwrap();
        assert_eq!(
            next, offset,
            "queue {queue_id}: a gap after offset {offset}"
        );
    }
    panic!("pulling queue {queue_id} did not finish within 60 s");
}

fn consumer_offset(client: &mut TestClient, queue_id: i32) -> Option<i64> {
    let response = client.call(request(
        request_code::QUERY_CONSUMER_OFFSET,
        &[
            ("consumerGroup", GROUP),
            ("topic", TOPIC),
            ("queueId", &queue_id.to_string()),
            ("setZeroIfNotFound", "false"),
        ],
    ));
    (response.code == response_code::SUCCESS)
        .then(|| response.ext("offset").unwrap().parse().unwrap())
}

fn commit_offset(client: &mut TestClient, queue_id: i32, offset: i64) {
    let response = client.call(request(
        request_code::UPDATE_CONSUMER_OFFSET,
        &[
            ("consumerGroup", GROUP),
            ("topic", TOPIC),
            ("queueId", &queue_id.to_string()),
            ("commitOffset", &offset.to_string()),
        ],
    ));
    assert_eq!(
        response.code,
        response_code::SUCCESS,
        "{:?}",
        response.remark
    );
}

/// The files written by write-temp-fsync-rename are whole: each present one decodes.
fn check_whole_files(store: &Path) {
    let topics = store.join("config/topics.json");
    if let Ok(text) = std::fs::read(&topics) {
        serde_json::from_slice::<serde_json::Value>(&text)
            .unwrap_or_else(|e| panic!("{} is torn: {e}", topics.display()));
    }
    for shard in 0..2 {
        let offsets = store.join(format!("config/shard-{shard}/consumerOffset.json"));
        if let Ok(text) = std::fs::read(&offsets) {
            serde_json::from_slice::<serde_json::Value>(&text)
                .unwrap_or_else(|e| panic!("{} is torn: {e}", offsets.display()));
        }
        let checkpoint = store.join(format!("commitlog/{shard}/checkpoint"));
        if let Ok(bytes) = std::fs::read(&checkpoint) {
            assert!(
                ringmq_engine::commitlog::flush::decode_checkpoint(&bytes).is_some(),
                "{} is torn: {bytes:?}",
                checkpoint.display()
            );
        }
    }
}

/// The store a run starts from, and what must be in it.
struct Run {
    seed: u64,
    rng: SplitMix64,
    flags: Vec<&'static str>,
    /// Every message that must be in the store (acknowledged, or found after a cut).
    baseline: Messages,
    /// The newest offset committed per queue.
    committed: BTreeMap<i32, i64>,
    acked_total: usize,
}

impl Run {
    fn new(flush: &'static str, seed: u64) -> Run {
        Run {
            seed,
            rng: SplitMix64::new(seed),
            flags: vec![
                "--flush",
                flush,
                "--shards",
                "2",
                "--segment-size",
                SEGMENT_SIZE,
            ],
            baseline: Messages::new(),
            committed: BTreeMap::new(),
            acked_total: 0,
        }
    }

    /// A store on `fs` whose base directories are durable, as on a machine where the broker
    /// was first started long ago: the broker creates them and stops, the test syncs all.
    fn prepare_store(&self, fs: &PowerCutFs) -> tempfile::TempDir {
        let store = tempfile::tempdir_in(fs.path()).unwrap();
        let broker = Broker::start_on_store(store, &self.flags);
        // The topic exists before any round: offsets are committed only for known topics.
        let queues = QUEUES.to_string();
        let created = broker.connect().call(request(
            request_code::UPDATE_AND_CREATE_TOPIC,
            &[
                ("topic", TOPIC),
                ("defaultTopic", "TBW102"),
                ("readQueueNums", &queues),
                ("writeQueueNums", &queues),
                ("perm", "6"),
                ("topicFilterType", "SINGLE_TAG"),
                ("order", "false"),
            ],
        ));
        assert_eq!(created.code, response_code::SUCCESS, "{:?}", created.remark);
        let (status, store) = broker.terminate();
        assert!(status.success(), "{status:?}");
        fs.sync_all();
        store
    }

    /// Checks the restarted broker against the baseline; returns what it holds.
    fn verify(&mut self, broker: &Broker, round: u32) -> Messages {
        check_whole_files(broker.store.path());
        let mut client = broker.connect();
        let mut stored = Messages::new();
        for queue_id in 0..QUEUES {
            stored.extend(pull_queue(&mut client, queue_id));
            if let Some(offset) = consumer_offset(&mut client, queue_id) {
                let committed = self.committed.get(&queue_id).copied().unwrap_or(-1);
                assert!(
                    offset <= committed,
                    "round {round} seed {}: queue {queue_id} consumer offset {offset} is newer \
                     than the newest committed, {committed}",
                    self.seed
                );
            }
        }
        stored
    }

    /// Commits, per queue, an offset somewhere in what the consumer has seen.
    fn commit_some(&mut self, broker: &Broker, stored: &Messages) {
        let mut client = broker.connect();
        for queue_id in 0..QUEUES {
            let count = stored.range((queue_id, 0)..(queue_id + 1, 0)).count() as i64;
            let offset = self.rng.below(count as u64 + 1) as i64;
            commit_offset(&mut client, queue_id, offset);
            let newest = self.committed.entry(queue_id).or_insert(offset);
            *newest = (*newest).max(offset);
        }
    }

    /// Sends from four threads, kills the broker `kill_after` in, returns what was
    /// acknowledged and when the kill happened.
    fn send_and_kill(
        &mut self,
        broker: Broker,
        round: u32,
        kill_after: Duration,
    ) -> (tempfile::TempDir, AckedSends, Instant) {
        let kill_at = Instant::now() + kill_after;
        self.send_and_kill_when(broker, round, |_| Instant::now() >= kill_at)
    }

    /// Sends from four threads and kills the broker once `kill_now(store)` holds (looked at
    /// continuously, at most 10 s).
    fn send_and_kill_when(
        &mut self,
        broker: Broker,
        round: u32,
        mut kill_now: impl FnMut(&Path) -> bool,
    ) -> (tempfile::TempDir, AckedSends, Instant) {
        let acked: Acked = Arc::default();
        let senders: Vec<_> = (0..QUEUES)
            .map(|queue_id| {
                let acked = Arc::clone(&acked);
                let addr = broker.broker_addr;
                let seed = self.seed;
                std::thread::spawn(move || send_until_refused(addr, seed, round, queue_id, acked))
            })
            .collect();
        let limit = Instant::now() + Duration::from_secs(10);
        while !kill_now(broker.store.path()) && Instant::now() < limit {
            std::thread::yield_now();
        }
        let killed_at = Instant::now();
        let store = broker.kill9();
        for sender in senders {
            sender.join().unwrap();
        }
        let acked = std::mem::take(&mut *acked.lock().unwrap());
        self.acked_total += acked.len();
        (store, acked, killed_at)
    }
}

fn missing(expected: &Messages, stored: &Messages) -> Vec<(i32, i64)> {
    expected
        .iter()
        .filter(|(key, body)| stored.get(key) != Some(body))
        .map(|(key, _)| *key)
        .collect()
}

/// `rounds` rounds of send, kill -9, cut (`mode_of(round, seed)`), restart and check with
/// `--flush sync`: nothing acknowledged may be lost.
fn sync_flush_rounds(test: &str, rounds: u32, mode_of: fn(u32, u64) -> CutMode) {
    let backing = tempfile::tempdir().unwrap();
    let Some(fs) = PowerCutFs::mount_or_skip(test, backing.path()) else {
        return;
    };
    let seed = seed();
    let mut run = Run::new("sync", seed);
    let mut store = run.prepare_store(&fs);
    let started = Instant::now();
    let mut cuts = CutReport::default();
    for round in 0..rounds {
        let broker = Broker::start_on_store(store, &run.flags);
        let stored = run.verify(&broker, round);
        let lost = missing(&run.baseline, &stored);
        assert!(
            lost.is_empty(),
            "{test} round {round} seed {seed}: {} of {} acknowledged messages lost or changed \
             by the last cut, first: {:?}",
            lost.len(),
            run.baseline.len(),
            lost.first()
        );
        run.baseline = stored;
        run.commit_some(&broker, &run.baseline.clone());
        let kill_after = Duration::from_millis(100 + run.rng.below(500));
        let (killed_store, acked, _) = run.send_and_kill(broker, round, kill_after);
        let mode = mode_of(round, run.rng.next_u64());
        let report = fs.cut(mode).unwrap();
        eprintln!(
            "{test} round {round}: {} acknowledged, killed after {kill_after:?}, {mode:?}: {report:?}",
            acked.len()
        );
        cuts.bytes_dropped += report.bytes_dropped;
        cuts.writes_torn += report.writes_torn;
        cuts.file_ops_dropped += report.file_ops_dropped;
        run.baseline
            .extend(acked.into_iter().map(|(key, (body, _))| (key, body)));
        store = killed_store;
    }
    let broker = Broker::start_on_store(store, &run.flags);
    let stored = run.verify(&broker, rounds);
    let lost = missing(&run.baseline, &stored);
    assert!(
        lost.is_empty(),
        "{test} last round seed {seed}: {} of {} lost, first: {:?}",
        lost.len(),
        run.baseline.len(),
        lost.first()
    );
    let syncs = fs.sync_counts();
    assert!(
        cuts.file_ops_dropped > 0,
        "the cuts never dropped anything: the test proves nothing"
    );
    report(&format!(
        "RAN {test}: seed {seed}, {rounds} rounds, {} messages acknowledged ({} per round), all \
         {} stored verified; cuts dropped {} file ops, {} bytes, tore {} writes; {} file and {} \
         directory syncs; {:.1} s",
        run.acked_total,
        run.acked_total / rounds as usize,
        stored.len(),
        cuts.file_ops_dropped,
        cuts.bytes_dropped,
        cuts.writes_torn,
        syncs.file_syncs,
        syncs.dir_syncs,
        started.elapsed().as_secs_f64()
    ));
    drop(broker);
}

#[test]
fn sync_flush_keeps_every_acknowledged_message_through_power_cuts() {
    sync_flush_rounds(
        "sync_flush_keeps_every_acknowledged_message_through_power_cuts",
        20,
        |round, seed| {
            if round % 2 == 0 {
                CutMode::DropAllPending
            } else {
                CutMode::KeepRandomPrefix { seed }
            }
        },
    );
}

#[test]
fn sync_flush_keeps_every_acknowledged_message_through_torn_writes() {
    sync_flush_rounds(
        "sync_flush_keeps_every_acknowledged_message_through_torn_writes",
        10,
        |_, seed| CutMode::TornPage { seed },
    );
}

/// With `--flush async`, a cut may take what was acknowledged in the last flush interval,
/// but only that, and only as a suffix of each queue; what is left recovers cleanly.
#[test]
fn async_flush_loses_at_most_the_last_flush_interval() {
    let test = "async_flush_loses_at_most_the_last_flush_interval";
    let backing = tempfile::tempdir().unwrap();
    let Some(fs) = PowerCutFs::mount_or_skip(test, backing.path()) else {
        return;
    };
    let seed = seed();
    let mut run = Run::new("async", seed);
    let mut store = run.prepare_store(&fs);
    let started = Instant::now();
    let rounds = 6;
    // The flush interval, plus room for a busy machine to run the flush and the fdatasync.
    let window = ASYNC_FLUSH_INTERVAL * 2;
    let mut lost_total = 0;
    for round in 0..rounds {
        let broker = Broker::start_on_store(store, &run.flags);
        run.baseline = run.verify(&broker, round);
        let kill_after = Duration::from_millis(600 + run.rng.below(900));
        let (killed_store, acked, killed_at) = run.send_and_kill(broker, round, kill_after);
        let mode = if round % 2 == 0 {
            CutMode::DropAllPending
        } else {
            CutMode::TornPage {
                seed: run.rng.next_u64(),
            }
        };
        fs.cut(mode).unwrap();
        let broker = Broker::start_on_store(killed_store, &run.flags);
        let stored = run.verify(&broker, round + 1);
        let lost = missing(&run.baseline, &stored);
        assert!(
            lost.is_empty(),
            "round {round} seed {seed}: lost {} of {} messages that were durable before the \
             round, first {:?}",
            lost.len(),
            run.baseline.len(),
            lost.first()
        );
        for queue_id in 0..QUEUES {
            let mut gone = false;
            for ((_, offset), (body, acked_at)) in acked.range((queue_id, 0)..(queue_id + 1, 0)) {
                let kept = stored.get(&(queue_id, *offset)) == Some(body);
                if !kept {
                    assert!(
                        killed_at.saturating_duration_since(*acked_at) < window,
                        "round {round} seed {seed}: queue {queue_id} offset {offset}, \
                         acknowledged {:?} before the cut, was lost (window {window:?})",
                        killed_at.saturating_duration_since(*acked_at)
                    );
                    lost_total += 1;
                }
                assert!(
                    !(gone && kept),
                    "round {round} seed {seed}: queue {queue_id} kept offset {offset} after \
                     losing an earlier one: not a prefix"
                );
                gone |= !kept;
            }
        }
        eprintln!(
            "{test} round {round}: {} acknowledged, killed after {kill_after:?}",
            acked.len()
        );
        let (status, killed_store) = broker.terminate();
        assert!(status.success());
        store = killed_store;
    }
    report(&format!(
        "RAN {test}: seed {seed}, {rounds} rounds, {} acknowledged, {lost_total} lost within the \
         last {window:?}; {:.1} s",
        run.acked_total,
        started.elapsed().as_secs_f64()
    ));
}

/// A store created and written with `--flush sync` and cut before anything else was synced:
/// its acknowledged messages must be there. The directories the broker creates at its first
/// start must be durable before it acknowledges anything in them.
#[test]
fn a_fresh_store_keeps_its_first_acknowledged_messages() {
    let test = "a_fresh_store_keeps_its_first_acknowledged_messages";
    let backing = tempfile::tempdir().unwrap();
    let Some(fs) = PowerCutFs::mount_or_skip(test, backing.path()) else {
        return;
    };
    let mut run = Run::new("sync", seed());
    let store = tempfile::tempdir_in(fs.path()).unwrap();
    // The test's own directory is durable; everything under it is the broker's doing.
    sync_dir(fs.path());
    let broker = Broker::start_on_store(store, &run.flags);
    let (store, acked, _) = run.send_and_kill(broker, 0, Duration::from_millis(300));
    assert!(!acked.is_empty());
    fs.cut(CutMode::DropAllPending).unwrap();
    let broker = Broker::start_on_store(store, &run.flags);
    let stored = run.verify(&broker, 1);
    let expected: Messages = acked
        .into_iter()
        .map(|(key, (body, _))| (key, body))
        .collect();
    let lost = missing(&expected, &stored);
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged messages lost by a cut on a fresh store, first {:?}",
        lost.len(),
        expected.len(),
        lost.first()
    );
    report(&format!(
        "RAN {test}: {} acknowledged, all kept",
        expected.len()
    ));
}

/// The consumer offsets file, persisted every 5 s by write-temp-fsync-rename, survives cuts
/// in the middle of its rewrites (the broker killed while its temporary file exists) whole,
/// old or new, never newer than committed.
#[test]
fn consumer_offsets_survive_cuts_during_their_persistence() {
    let test = "consumer_offsets_survive_cuts_during_their_persistence";
    let backing = tempfile::tempdir().unwrap();
    let Some(fs) = PowerCutFs::mount_or_skip(test, backing.path()) else {
        return;
    };
    let seed = seed();
    let mut run = Run::new("sync", seed);
    let mut store = run.prepare_store(&fs);
    let started = Instant::now();
    let rounds = 3;
    let mut persisted_seen = 0;
    let mut kills_mid_write = 0;
    for round in 0..rounds {
        let broker = Broker::start_on_store(store, &run.flags);
        let stored = run.verify(&broker, round);
        assert!(
            missing(&run.baseline, &stored).is_empty(),
            "round {round} seed {seed}"
        );
        run.baseline = stored;
        if consumer_offset(&mut broker.connect(), 0).is_some() {
            persisted_seen += 1;
        }
        // Commit new offsets continuously across the 5 s persistence tick, then cut at a
        // random moment around it.
        let (killed_store, acked, _) = {
            let deadline = Instant::now() + Duration::from_millis(4_500 + run.rng.below(1_500));
            let mut client = broker.connect();
            let mut commits = 0;
            while Instant::now() < deadline {
                for queue_id in 0..QUEUES {
                    let offset = commits + i64::from(round) * 1_000;
                    commit_offset(&mut client, queue_id, offset);
                    run.committed.insert(queue_id, offset);
                }
                commits += 1;
                std::thread::sleep(Duration::from_millis(5));
            }
            // Killed while a shard's offsets file is being rewritten (its temporary file
            // exists), when that moment comes within the bounded wait.
            let offsets_tmp = |store: &Path| {
                (0..2).any(|shard| {
                    store
                        .join(format!("config/shard-{shard}/consumerOffset.json.tmp"))
                        .exists()
                })
            };
            let killed = run.send_and_kill_when(broker, round, offsets_tmp);
            if offsets_tmp(killed.0.path()) {
                kills_mid_write += 1;
            }
            killed
        };
        fs.cut(CutMode::KeepRandomPrefix {
            seed: run.rng.next_u64(),
        })
        .unwrap();
        run.baseline
            .extend(acked.into_iter().map(|(key, (body, _))| (key, body)));
        store = killed_store;
    }
    let broker = Broker::start_on_store(store, &run.flags);
    let stored = run.verify(&broker, rounds);
    assert!(missing(&run.baseline, &stored).is_empty(), "seed {seed}");
    report(&format!(
        "RAN {test}: seed {seed}, {rounds} rounds ({kills_mid_write} killed while an offsets \
         file's temporary file existed), offsets found persisted after {persisted_seen} of the \
         cuts; {:.1} s",
        started.elapsed().as_secs_f64()
    ));
}

/// The topics named in `config/topics.json`, which must decode (a torn file fails the test).
fn topics_in_file(store: &Path) -> std::collections::BTreeSet<String> {
    let path = store.join("config/topics.json");
    let text = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let json: serde_json::Value =
        serde_json::from_slice(&text).unwrap_or_else(|e| panic!("{} is torn: {e}", path.display()));
    json["topicConfigTable"]
        .as_object()
        .unwrap_or_else(|| panic!("{} has no topicConfigTable", path.display()))
        .keys()
        .cloned()
        .collect()
}

/// The topic table, rewritten by write-temp-fsync-rename on every change, survives cuts in
/// the middle of its writes: after each cut the file is whole and holds every topic whose
/// creation was answered (UPDATE_AND_CREATE_TOPIC answers once the change is durable), so
/// the file is the new version or one at least as new as the last answer — never torn,
/// never older.
#[test]
fn the_topic_table_survives_cuts_in_the_middle_of_its_rewrites() {
    let test = "the_topic_table_survives_cuts_in_the_middle_of_its_rewrites";
    let backing = tempfile::tempdir().unwrap();
    let Some(fs) = PowerCutFs::mount_or_skip(test, backing.path()) else {
        return;
    };
    let seed = seed();
    let mut run = Run::new("sync", seed);
    let mut store = run.prepare_store(&fs);
    let started = Instant::now();
    let rounds = 8;
    let mut answered = std::collections::BTreeSet::new();
    let mut dropped = CutReport::default();
    let mut kills_mid_write = 0;
    for round in 0..rounds {
        let on_disk = topics_in_file(store.path());
        let lost: Vec<_> = answered.difference(&on_disk).collect();
        assert!(
            lost.is_empty(),
            "round {round} seed {seed}: answered topics missing from topics.json: {lost:?}"
        );
        let broker = Broker::start_on_store(store, &run.flags);
        // Two clients create topics back to back, so that a rewrite is nearly always under
        // way when the broker is killed and the power cut, at a random moment.
        let answered_now: Arc<Mutex<Vec<String>>> = Arc::default();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let creators: Vec<_> = (0..2)
            .map(|thread| {
                let (answered_now, stop) = (Arc::clone(&answered_now), Arc::clone(&stop));
                let addr = broker.broker_addr;
                std::thread::spawn(move || {
                    let mut client = TestClient::connect(addr);
                    for index in 0..10_000 {
                        if stop.load(std::sync::atomic::Ordering::Relaxed) {
                            return;
                        }
                        let topic = format!("CutTopic_{round}_{thread}_{index}");
                        let Some(created) = client.try_call(request(
                            request_code::UPDATE_AND_CREATE_TOPIC,
                            &[
                                ("topic", &topic),
                                ("defaultTopic", "TBW102"),
                                ("readQueueNums", "2"),
                                ("writeQueueNums", "2"),
                                ("perm", "6"),
                                ("topicFilterType", "SINGLE_TAG"),
                                ("order", "false"),
                            ],
                        )) else {
                            return; // killed
                        };
                        assert_eq!(created.code, response_code::SUCCESS, "{:?}", created.remark);
                        answered_now.lock().unwrap().push(topic);
                    }
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(200 + run.rng.below(800)));
        // Then the moment a rewrite is between its temporary file's creation and its
        // rename (bounded: at most 500 ms of looking).
        let tmp = broker.store.path().join("config/topics.json.tmp");
        let looking_until = Instant::now() + Duration::from_millis(500);
        while !tmp.exists() && Instant::now() < looking_until {
            std::thread::yield_now();
        }
        if tmp.exists() {
            kills_mid_write += 1;
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        store = broker.kill9();
        for creator in creators {
            creator.join().unwrap();
        }
        answered.extend(std::mem::take(&mut *answered_now.lock().unwrap()));
        let report = fs
            .cut(CutMode::KeepRandomPrefix {
                seed: run.rng.next_u64(),
            })
            .unwrap();
        dropped.file_ops_dropped += report.file_ops_dropped;
        dropped.dir_ops_dropped += report.dir_ops_dropped;
        dropped.dir_ops_kept += report.dir_ops_kept;
    }
    let on_disk = topics_in_file(store.path());
    assert!(
        answered.is_subset(&on_disk),
        "seed {seed}: after the last cut"
    );
    report(&format!(
        "RAN {test}: seed {seed}, {rounds} rounds ({kills_mid_write} killed while a rewrite's \
         temporary file existed), {} topic creations answered, all in the file after each cut; \
         cuts dropped {} file ops and {} directory ops (kept {}); {:.1} s",
        answered.len(),
        dropped.file_ops_dropped,
        dropped.dir_ops_dropped,
        dropped.dir_ops_kept,
        started.elapsed().as_secs_f64()
    ));
}

/// The checkpoint, replaced every second by write-temp-fsync-rename, survives cuts in the
/// middle of its rewrites: the broker is killed while `checkpoint.tmp` exists; before each
/// restart every checkpoint present decodes, and the restarted broker holds every
/// acknowledged message (a checkpoint ahead of the durable log would lose some).
#[test]
fn the_checkpoint_survives_cuts_in_the_middle_of_its_rewrites() {
    let test = "the_checkpoint_survives_cuts_in_the_middle_of_its_rewrites";
    let backing = tempfile::tempdir().unwrap();
    let Some(fs) = PowerCutFs::mount_or_skip(test, backing.path()) else {
        return;
    };
    let seed = seed();
    let mut run = Run::new("sync", seed);
    let mut store = run.prepare_store(&fs);
    let started = Instant::now();
    let rounds = 5;
    let mut kills_mid_write = 0;
    for round in 0..rounds {
        check_whole_files(store.path());
        let broker = Broker::start_on_store(store, &run.flags);
        let stored = run.verify(&broker, round);
        let lost = missing(&run.baseline, &stored);
        assert!(lost.is_empty(), "round {round} seed {seed}: lost {lost:?}");
        run.baseline = stored;
        // Some load first, then the moment a checkpoint rewrite is under way.
        let load_until = Instant::now() + Duration::from_millis(100 + run.rng.below(400));
        let shard = run.rng.below(2);
        let (killed_store, acked, _) = run.send_and_kill_when(broker, round, |store| {
            Instant::now() >= load_until
                && store
                    .join(format!("commitlog/{shard}/checkpoint.tmp"))
                    .exists()
        });
        if killed_store
            .path()
            .join(format!("commitlog/{shard}/checkpoint.tmp"))
            .exists()
        {
            kills_mid_write += 1;
        }
        fs.cut(CutMode::KeepRandomPrefix {
            seed: run.rng.next_u64(),
        })
        .unwrap();
        run.baseline
            .extend(acked.into_iter().map(|(key, (body, _))| (key, body)));
        store = killed_store;
    }
    check_whole_files(store.path());
    let broker = Broker::start_on_store(store, &run.flags);
    let stored = run.verify(&broker, rounds);
    assert!(missing(&run.baseline, &stored).is_empty(), "seed {seed}");
    report(&format!(
        "RAN {test}: seed {seed}, {rounds} rounds ({kills_mid_write} killed while a checkpoint's \
         temporary file existed), {} acknowledged, all kept; {:.1} s",
        run.acked_total,
        started.elapsed().as_secs_f64()
    ));
}

/// A SYNC_MASTER's acknowledgement means its slave has the bytes: the master's store is on
/// the power-cut filesystem with `--flush async` (a cut takes its last flush interval), the
/// slave's on an ordinary disk; after kill -9 and a cut of the master's power, the slave
/// serves every message the master acknowledged. A fresh pair each round.
#[test]
fn a_sync_slave_holds_every_message_its_master_acknowledged_before_a_power_cut() {
    let test = "a_sync_slave_holds_every_message_its_master_acknowledged_before_a_power_cut";
    let backing = tempfile::tempdir().unwrap();
    let Some(fs) = PowerCutFs::mount_or_skip(test, backing.path()) else {
        return;
    };
    let seed = seed();
    let started = Instant::now();
    let rounds = 3;
    let mut acked_total = 0;
    let mut lost_by_master = 0;
    for round in 0..rounds {
        let mut run = Run::new("async", seed ^ u64::from(round));
        run.flags.extend(["--replication", "sync"]);
        let store = run.prepare_store(&fs);
        let master = Broker::start_on_store(store, &run.flags);
        let flags = master.slave_flags();
        let mut slave_args: Vec<&str> = flags.iter().map(String::as_str).collect();
        slave_args.extend([
            "--flush",
            "async",
            "--shards",
            "2",
            "--segment-size",
            SEGMENT_SIZE,
        ]);
        let slave = Broker::start(&slave_args);
        // Sends are acknowledged once the slave follows every shard's log.
        let mut probe = master.connect();
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut probes = 0;
        loop {
            let answer = probe.call(
                request(
                    request_code::SEND_MESSAGE_V2,
                    &[
                        ("a", "PG"),
                        ("b", TOPIC),
                        ("c", "TBW102"),
                        ("d", "4"),
                        ("e", &(probes % QUEUES).to_string()),
                        ("f", "0"),
                        ("g", "1700000000000"),
                        ("h", "0"),
                    ],
                )
                .with_body(Bytes::from_static(b"probe")),
            );
            probes += 1;
            if answer.code == response_code::SUCCESS && probes >= QUEUES {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "round {round}: the slave never followed: {:?}",
                answer.remark
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        drop(probe);
        let kill_after = Duration::from_millis(300 + run.rng.below(1_200));
        let (master_store, acked, _) = run.send_and_kill(master, round, kill_after);
        fs.cut(CutMode::DropAllPending).unwrap();
        acked_total += acked.len();
        let mut client = slave.connect();
        let mut on_slave = Messages::new();
        for queue_id in 0..QUEUES {
            on_slave.extend(pull_queue(&mut client, queue_id));
        }
        let expected: Messages = acked
            .into_iter()
            .map(|(key, (body, _))| (key, body))
            .collect();
        let lost = missing(&expected, &on_slave);
        assert!(
            lost.is_empty(),
            "round {round} seed {seed}: {} acknowledged messages are not on the slave, e.g. {:?}",
            lost.len(),
            &lost[..lost.len().min(5)]
        );
        // What the master itself kept after the cut, to show the slave was needed.
        let master = Broker::start_on_store(master_store, &run.flags);
        let mut to_master = master.connect();
        let mut on_master = Messages::new();
        for queue_id in 0..QUEUES {
            on_master.extend(pull_queue(&mut to_master, queue_id));
        }
        lost_by_master += missing(&expected, &on_master).len();
        drop(slave);
    }
    report(&format!(
        "RAN {test}: seed {seed}, {rounds} rounds, {acked_total} acknowledged, all on the slave \
         after the master's power cut ({lost_by_master} of them lost by the master itself); \
         {:.1} s",
        started.elapsed().as_secs_f64()
    ));
}

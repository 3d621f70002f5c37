//! Read redirection between two real broker processes (issue 13, design.md §8): a master
//! tells a consumer whose read is cold to pull from its caught-up slave, the slave sends it
//! back once its reads are hot, the settings change at runtime by UPDATE_BROKER_CONFIG, and
//! the kernel's page-cache verdict alone (pages evicted) is enough to redirect.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use ringmq_protocol::body::{JsonBody, KvTable};
use ringmq_protocol::codes::{request_code, response_code};
use ringmq_protocol::command::RemotingCommand;
use ringmq_protocol::message::record::iter_records;
use support::{pull_request, request, send_request, Broker, TestClient};

const TOPIC: &str = "RedirectTopic";
const GROUP: &str = "RedirectGroup";
const SEGMENT: &str = "65536";
const SLAVE_ID: i64 = 1;

fn master(extra: &[&str]) -> Broker {
    let mut args = vec![
        "--shards",
        "1",
        "--segment-size",
        SEGMENT,
        "--broker-name",
        "redir",
    ];
    args.extend_from_slice(extra);
    Broker::start(&args)
}

fn slave(master: &Broker, extra: &[&str]) -> Broker {
    let flags = master.slave_flags();
    let mut args = vec![
        "--shards",
        "1",
        "--segment-size",
        SEGMENT,
        "--broker-name",
        "redir",
    ];
    args.extend(flags.iter().map(String::as_str));
    args.extend_from_slice(extra);
    Broker::start(&args)
}

fn send_many(client: &mut TestClient, count: usize) {
    for i in 0..count {
        let body = format!("message-{i:05}-{}", "x".repeat(400));
        let response = client.call(send_request(TOPIC, 0, "", body.as_bytes()));
        assert_eq!(
            response.code,
            response_code::SUCCESS,
            "{:?}",
            response.remark
        );
    }
}

fn runtime_info(client: &mut TestClient) -> BTreeMap<String, String> {
    let response = client.call(request(request_code::GET_BROKER_RUNTIME_INFO, &[]));
    assert_eq!(response.code, response_code::SUCCESS);
    KvTable::decode(&response.body).unwrap().table
}

fn counter(info: &BTreeMap<String, String>, key: &str) -> u64 {
    info.get(key)
        .unwrap_or_else(|| panic!("runtime info has no {key}: {info:?}"))
        .parse()
        .unwrap()
}

/// UPDATE_BROKER_CONFIG with a Properties body, as `mqadmin updateBrokerConfig` sends it.
fn update_config(client: &mut TestClient, properties: &str) -> RemotingCommand {
    let update = request(request_code::UPDATE_BROKER_CONFIG, &[])
        .with_body(bytes::Bytes::copy_from_slice(properties.as_bytes()));
    client.call(update)
}

fn broker_config(client: &mut TestClient) -> String {
    let response = client.call(request(request_code::GET_BROKER_CONFIG, &[]));
    assert_eq!(response.code, response_code::SUCCESS);
    String::from_utf8(response.body.to_vec()).unwrap()
}

fn max_offset(client: &mut TestClient) -> Option<i64> {
    let response = client.call(request(
        request_code::GET_MAX_OFFSET,
        &[("topic", TOPIC), ("queueId", "0")],
    ));
    (response.code == response_code::SUCCESS)
        .then(|| response.ext("offset").and_then(|o| o.parse().ok()))
        .flatten()
}

/// Waits (bounded) until the master counts the slave as holding all of its log, and the
/// slave knows the topic (topics are copied every few seconds) and serves the whole queue.
fn wait_slave_caught_up(to_master: &mut TestClient, to_slave: &mut TestClient) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let info = runtime_info(to_master);
        if info.get("slaveFallBehindMuch").map(String::as_str) == Some("0")
            && info.contains_key(&format!("haSlave.{SLAVE_ID}.addr"))
            && max_offset(to_slave).is_some()
            && max_offset(to_slave) == max_offset(to_master)
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the slave did not catch up within 30 s: {info:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One pull's answer as a consumer sees it.
struct Pulled {
    code: i32,
    messages: u64,
    next_begin_offset: i64,
    suggested: i64,
}

fn pull(client: &mut TestClient, offset: i64) -> Pulled {
    let response = client.call(pull_request(GROUP, TOPIC, 0, offset, 0));
    let field = |name: &str| -> i64 {
        response
            .ext(name)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {response:?}"))
    };
    Pulled {
        code: response.code,
        messages: iter_records(&response.body).count() as u64,
        next_begin_offset: field("nextBeginOffset"),
        suggested: field("suggestWhichBrokerId"),
    }
}

/// A consumer of queue 0 that pulls from the broker the last answer suggested, as RocketMQ's
/// client does (protocol.md §9.2), counting the messages each broker served.
struct FollowingConsumer {
    offset: i64,
    broker_id: i64,
    served_by_master: u64,
    served_by_slave: u64,
}

impl FollowingConsumer {
    /// Pulls until `done` holds, at most 500 pulls or 30 s.
    fn pull_until(
        &mut self,
        to_master: &mut TestClient,
        to_slave: &mut TestClient,
        done: impl Fn(&FollowingConsumer) -> bool,
    ) {
        let deadline = Instant::now() + Duration::from_secs(30);
        for _ in 0..500 {
            if done(self) {
                return;
            }
            assert!(Instant::now() < deadline, "pulls did not finish in 30 s");
            let from_slave = self.broker_id == SLAVE_ID;
            let pulled = pull(
                if from_slave {
                    &mut *to_slave
                } else {
                    &mut *to_master
                },
                self.offset,
            );
            if from_slave {
                self.served_by_slave += pulled.messages;
            } else {
                self.served_by_master += pulled.messages;
            }
            if pulled.code == response_code::SUCCESS
                || pulled.code == response_code::PULL_RETRY_IMMEDIATELY
            {
                self.offset = pulled.next_begin_offset;
            }
            self.broker_id = pulled.suggested;
        }
        panic!("500 pulls did not finish");
    }
}

#[test]
fn a_cold_consumer_reads_from_the_slave_and_goes_back_to_the_master_once_hot() {
    const MESSAGES: i64 = 200;
    let master = master(&["--access-message-in-memory-max-ratio", "0"]);
    let slave = slave(&master, &["--access-message-in-memory-max-ratio", "0"]);
    let (mut to_master, mut to_slave) = (master.connect(), slave.connect());
    send_many(&mut to_master, MESSAGES as usize);
    wait_slave_caught_up(&mut to_master, &mut to_slave);
    assert!(broker_config(&mut to_master).contains("accessMessageInMemoryMaxRatio=0"));

    // Ratio 0: every read with a backlog is cold, so the master sends the consumer to the
    // slave, and the slave keeps it.
    let mut consumer = FollowingConsumer {
        offset: 0,
        broker_id: 0,
        served_by_master: 0,
        served_by_slave: 0,
    };
    consumer.pull_until(&mut to_master, &mut to_slave, |c| {
        c.offset >= MESSAGES / 2 && c.broker_id == SLAVE_ID
    });
    let (master_cold, slave_cold) = (consumer.served_by_master, consumer.served_by_slave);
    assert!(slave_cold > 0, "the slave served nothing");
    let master_info = runtime_info(&mut to_master);
    let slave_info = runtime_info(&mut to_slave);
    assert!(counter(&master_info, "pullsRedirected") >= 1);
    assert!(counter(&master_info, "pageCacheColdReads") >= 1);
    assert!(counter(&slave_info, "msgGetTotalTodayNow") >= slave_cold);
    assert_eq!(
        counter(&master_info, &format!("haSlave.{SLAVE_ID}.diff")),
        0
    );

    // Back to 40% of RAM on both, without a restart: the slave's reads are hot now, so it
    // sends the consumer back, and the master keeps it.
    for client in [&mut to_master, &mut to_slave] {
        let answer = update_config(client, "accessMessageInMemoryMaxRatio=40\n");
        assert_eq!(answer.code, response_code::SUCCESS, "{:?}", answer.remark);
        assert!(broker_config(client).contains("accessMessageInMemoryMaxRatio=40"));
    }
    let master_got_before = counter(&runtime_info(&mut to_master), "msgGetTotalTodayNow");
    consumer.pull_until(&mut to_master, &mut to_slave, |c| {
        c.offset >= MESSAGES && c.broker_id == 0
    });
    let master_hot = consumer.served_by_master - master_cold;
    assert!(master_hot > 0, "the master served nothing after the change");
    let master_info = runtime_info(&mut to_master);
    let slave_info = runtime_info(&mut to_slave);
    assert!(counter(&master_info, "msgGetTotalTodayNow") >= master_got_before + master_hot);
    assert!(
        counter(&slave_info, "pullsRedirected") >= 1,
        "the slave sent the consumer back"
    );
    assert!(counter(&slave_info, "pageCacheHotReads") >= 1);
    ringmq_testkit::report(&format!(
        "RAN read_redirect: {MESSAGES} messages; ratio 0: master served {master_cold}, slave {slave_cold}; \
         ratio 40: slave {} more, master {master_hot}; master pullsRedirected={}, slave pullsRedirected={}",
        consumer.served_by_slave - slave_cold,
        counter(&master_info, "pullsRedirected"),
        counter(&slave_info, "pullsRedirected"),
    ));

    // Slave reads off: the master keeps even a cold consumer, and the slave refuses to read.
    for client in [&mut to_master, &mut to_slave] {
        let answer = update_config(
            client,
            "slaveReadEnable=false\naccessMessageInMemoryMaxRatio=0\n",
        );
        assert_eq!(answer.code, response_code::SUCCESS, "{:?}", answer.remark);
    }
    let from_master = pull(&mut to_master, 0);
    assert_eq!(from_master.code, response_code::SUCCESS);
    assert_eq!(from_master.suggested, 0);
    let from_slave = pull(&mut to_slave, 5);
    assert_eq!(from_slave.code, response_code::PULL_RETRY_IMMEDIATELY);
    assert_eq!((from_slave.suggested, from_slave.next_begin_offset), (0, 5));

    // A topic the slave has not copied yet sends the consumer back instead of failing.
    let unknown = to_slave.call(pull_request(GROUP, "NotCopiedYet", 0, 7, 0));
    assert_eq!(unknown.code, response_code::PULL_RETRY_IMMEDIATELY);
    assert_eq!(unknown.ext("suggestWhichBrokerId"), Some("0"));
    assert_eq!(unknown.ext("nextBeginOffset"), Some("7"));
}

#[test]
fn a_master_without_a_slave_never_redirects_and_refuses_unchangeable_keys() {
    let master = master(&["--access-message-in-memory-max-ratio", "0"]);
    let mut client = master.connect();
    send_many(&mut client, 20);
    let pulled = pull(&mut client, 0);
    assert_eq!(pulled.code, response_code::SUCCESS);
    assert!(pulled.messages > 0);
    assert_eq!(pulled.suggested, 0, "no slave to send the consumer to");
    let info = runtime_info(&mut client);
    assert_eq!(counter(&info, "pullsRedirected"), 0);
    assert!(counter(&info, "pageCacheColdReads") >= 1);
    assert!(!info.contains_key("slaveFallBehindMuch"));

    for body in ["brokerId=3\n", "slaveReadEnable=true\nnoSuchKey=1\n"] {
        let refused = update_config(&mut client, body);
        assert_eq!(refused.code, response_code::INVALID_PARAMETER, "{body}");
        assert!(
            refused
                .remark
                .unwrap_or_default()
                .contains("cannot be changed"),
            "{body}"
        );
    }
    let refused = update_config(&mut client, "accessMessageInMemoryMaxRatio=250");
    assert_eq!(refused.code, response_code::INVALID_PARAMETER);
    let config = broker_config(&mut client);
    assert!(
        config.contains("accessMessageInMemoryMaxRatio=0")
            && config.contains("slaveReadEnable=true"),
        "a refused update changes nothing: {config}"
    );
}

/// Drops the page cache of every CommitLog segment of a store (its pages are clean: the
/// broker runs with sync flush). Returns the segment files.
fn evict_commitlog(store: &Path) -> Vec<std::fs::File> {
    let dir = store.join("commitlog").join("0");
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let file = std::fs::File::open(entry.unwrap().path()).unwrap();
        use std::os::fd::AsRawFd;
        // SAFETY: the descriptor is open for the call; fadvise only advises the kernel.
        let rc = unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
        assert_eq!(rc, 0, "posix_fadvise failed");
        files.push(file);
    }
    files
}

#[test]
fn a_pull_of_pages_the_kernel_has_evicted_goes_to_the_slave() {
    let master = master(&["--flush", "sync"]);
    let slave = slave(&master, &[]);
    let (mut to_master, mut to_slave) = (master.connect(), slave.connect());
    send_many(&mut to_master, 50);
    wait_slave_caught_up(&mut to_master, &mut to_slave);

    let hot = pull(&mut to_master, 0);
    assert_eq!(hot.code, response_code::SUCCESS);
    assert_eq!(hot.suggested, 0, "freshly written pages are hot");

    let segments = evict_commitlog(master.store.path());
    let estimator = ringmq_engine::page_cache::Estimator::new(1 << 30, 40);
    let evicted = segments
        .first()
        .map(|file| estimator.kernel_residency(file, 0, 4096));
    match evicted {
        Some(Ok((residency, _))) if residency.resident_pages == 0 => {}
        other => {
            ringmq_testkit::report(&format!(
                "SKIPPED read_redirect kernel verdict: the page cache could not be probed or evicted here ({other:?})"
            ));
            return;
        }
    }
    let cold = pull(&mut to_master, 0);
    assert_eq!(cold.code, response_code::SUCCESS);
    assert_eq!(
        cold.suggested, SLAVE_ID,
        "evicted pages are cold: read them from the slave"
    );
    ringmq_testkit::report(
        "RAN read_redirect kernel verdict: evicted pages sent the pull to the slave",
    );
    drop(slave);
}

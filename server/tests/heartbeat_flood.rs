//! A hostile heartbeat (issue 12): one HEART_BEAT listing 10,000 new consumer groups is
//! answered within a second, and while the broker registers those groups and creates their
//! 10,000 `%RETRY%` topics (then writes the topic table and re-registers it with the name
//! server), no other client waits more than 100 ms for a SEND, a PULL, or a route lookup at
//! the embedded name server. Run on one shard, the worst case: the flood and the other
//! client share the shard's ring thread. Debug builds (what CI runs) must pass too.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ringmq_protocol::codes::{request_code, response_code};
use ringmq_protocol::command::RemotingCommand;
use support::{pull_request, request, send_request, Broker, TestClient};

const GROUPS: usize = 10_000;
const TOPIC: &str = "SteadyTopic";
const HEARTBEAT_ANSWER_MAX: Duration = Duration::from_secs(1);
const STALL_MAX: Duration = Duration::from_millis(100);
/// How long the other client keeps probing after the heartbeat's answer: the topic-table
/// write and the name-server registration it starts run after the answer.
const PROBE_AFTER_ANSWER: Duration = Duration::from_millis(1_500);

/// A Java push consumer's heartbeat entry per group: clustering, one tag subscription and
/// the group's retry topic.
fn flood_heartbeat(groups: usize) -> RemotingCommand {
    let consumers: Vec<String> = (0..groups)
        .map(|i| {
            format!(
                r#"{{"groupName":"flood-{i}","consumeType":"CONSUME_PASSIVELY","messageModel":"CLUSTERING","consumeFromWhere":"CONSUME_FROM_LAST_OFFSET","unitMode":false,"subscriptionDataSet":[{{"classFilterMode":false,"topic":"{TOPIC}","subString":"*","tagsSet":[],"codeSet":[],"subVersion":1715000000123,"expressionType":"TAG"}},{{"classFilterMode":false,"topic":"%RETRY%flood-{i}","subString":"*","tagsSet":[],"codeSet":[],"subVersion":1715000000124,"expressionType":"TAG"}}]}}"#
            )
        })
        .collect();
    let body = format!(
        r#"{{"clientID":"127.0.0.1@flood","producerDataSet":[{{"groupName":"CLIENT_INNER_PRODUCER"}}],"consumerDataSet":[{}],"heartbeatFingerprint":0,"withoutSub":false}}"#,
        consumers.join(",")
    );
    request(request_code::HEART_BEAT, &[]).with_body(body.into_bytes())
}

/// What the other client saw: the slowest answer of each kind while it probed.
#[derive(Debug, Default)]
struct Probes {
    count: usize,
    send_max: Duration,
    pull_max: Duration,
    route_max: Duration,
}

fn timed(client: &mut TestClient, command: RemotingCommand, expect: i32) -> Duration {
    let started = Instant::now();
    let response = client.call(command);
    let took = started.elapsed();
    assert_eq!(response.code, expect, "{:?}", response.remark);
    took
}

/// SEND, PULL and GET_ROUTEINFO_BY_TOPIC one after another until `stop`.
fn probe(broker: &mut TestClient, namesrv: &mut TestClient, stop: &AtomicBool) -> Probes {
    let mut probes = Probes::default();
    let mut offset = 1;
    while !stop.load(Ordering::Relaxed) {
        let send = send_request(TOPIC, 0, "WAIT\u{1}true\u{2}", b"probe");
        probes.send_max = probes
            .send_max
            .max(timed(broker, send, response_code::SUCCESS));
        let pull = pull_request("ProbeGroup", TOPIC, 0, offset, 0);
        probes.pull_max = probes
            .pull_max
            .max(timed(broker, pull, response_code::SUCCESS));
        offset += 1;
        let route = request(request_code::GET_ROUTEINFO_BY_TOPIC, &[("topic", TOPIC)]);
        probes.route_max = probes
            .route_max
            .max(timed(namesrv, route, response_code::SUCCESS));
        probes.count += 1;
        std::thread::sleep(Duration::from_millis(2));
    }
    probes
}

#[test]
fn a_heartbeat_of_10000_new_groups_is_answered_in_1_s_and_stalls_no_other_client_100_ms() {
    let broker = Broker::start(&["--shards", "1"]);
    let mut other = broker.connect();
    let mut namesrv = TestClient::connect(broker.namesrv());
    // The topic exists and is routed before the probes start.
    let first = send_request(TOPIC, 0, "WAIT\u{1}true\u{2}", b"first");
    timed(&mut other, first, response_code::SUCCESS);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let route = namesrv.call(request(
            request_code::GET_ROUTEINFO_BY_TOPIC,
            &[("topic", TOPIC)],
        ));
        if route.code == response_code::SUCCESS {
            break;
        }
        assert!(Instant::now() < deadline, "the topic was never routed");
        std::thread::sleep(Duration::from_millis(20));
    }

    let heartbeat = flood_heartbeat(GROUPS);
    let mut flooder = broker.connect();
    let stop = Arc::new(AtomicBool::new(false));
    let prober = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || probe(&mut other, &mut namesrv, &stop))
    };
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    let answer = flooder.call(heartbeat);
    let answered_in = started.elapsed();
    std::thread::sleep(PROBE_AFTER_ANSWER);
    stop.store(true, Ordering::Relaxed);
    let probes = prober.join().expect("the probing client");
    eprintln!("heartbeat answered in {answered_in:?}; other client: {probes:?}");

    assert_eq!(answer.code, response_code::SUCCESS, "{:?}", answer.remark);
    assert!(
        answered_in < HEARTBEAT_ANSWER_MAX,
        "the heartbeat of {GROUPS} groups took {answered_in:?}"
    );
    assert!(probes.count > 10, "the other client hardly ran: {probes:?}");
    let slowest = probes.send_max.max(probes.pull_max).max(probes.route_max);
    assert!(
        slowest < STALL_MAX,
        "another client waited {slowest:?} during the heartbeat: {probes:?}"
    );
    // Every group is in: its retry topic exists.
    let config = flooder.call(request(
        request_code::GET_TOPIC_CONFIG,
        &[("topic", &format!("%RETRY%flood-{}", GROUPS - 1))],
    ));
    assert_eq!(config.code, response_code::SUCCESS, "{:?}", config.remark);
}

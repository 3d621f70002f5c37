//! Connection limits with the real binary (issue 12, item 4): above `--max-connections` a
//! new connection is closed at once while the name server and the connections already open
//! go on; a connection idle past `--idle-timeout-secs` is closed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::{Duration, Instant};

use ringmq_protocol::codes::{request_code, response_code};
use support::{request, Broker, TestClient};

fn runtime_info_ok(client: &mut TestClient) -> bool {
    client
        .call(request(request_code::GET_BROKER_RUNTIME_INFO, &[]))
        .code
        == response_code::SUCCESS
}

#[test]
fn above_the_limit_new_connections_are_closed_and_the_name_server_still_answers() {
    let broker = Broker::start(&["--max-connections", "3"]);
    let mut open: Vec<TestClient> = (0..3).map(|_| broker.connect()).collect();
    for client in &mut open {
        assert!(runtime_info_ok(client));
    }
    let mut refused = broker.connect();
    assert!(
        refused.is_closed_by_server(Duration::from_secs(5)),
        "a fourth connection was kept open with --max-connections 3"
    );
    // The name server is not starved, and the open connections keep working.
    let mut namesrv = TestClient::connect(broker.namesrv_addr.unwrap());
    let cluster = namesrv.call(request(request_code::GET_BROKER_CLUSTER_INFO, &[]));
    assert_eq!(cluster.code, response_code::SUCCESS);
    assert!(runtime_info_ok(&mut open[0]));
    // A slot freed is a slot to take again.
    drop(open.pop());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut again = broker.connect();
        if !again.is_closed_by_server(Duration::from_secs(1)) {
            assert!(runtime_info_ok(&mut again));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the freed slot was never given back"
        );
    }
}

#[test]
fn an_idle_connection_is_closed_and_a_busy_one_is_not() {
    let broker = Broker::start(&["--idle-timeout-secs", "1"]);
    let mut idle = broker.connect();
    let mut busy = broker.connect();
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(2_500) {
        assert!(runtime_info_ok(&mut busy), "a busy connection was closed");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        idle.is_closed_by_server(Duration::from_secs(3)),
        "a connection idle for over 2.5 s stayed open with --idle-timeout-secs 1"
    );
}

/// A client that asks for big answers and never reads them is idle once its socket is full:
/// the idle timeout closes it for real (socket, descriptor and connection slot given back,
/// its waiting pulls dropped), so it cannot keep other clients out.
#[test]
fn a_slow_reader_closed_as_idle_gives_its_slot_back() {
    let broker = Broker::start(&[
        "--shards",
        "1",
        "--idle-timeout-secs",
        "1",
        "--max-connections",
        "2",
    ]);
    let big = vec![b'x'; 3 << 20];
    {
        let mut producer = broker.connect();
        let sent = producer.call(support::send_request("Big", 0, "", &big));
        assert_eq!(sent.code, response_code::SUCCESS);
    }
    let fds_before = open_fds(broker.child.id());
    // Two slow readers take both slots, each with far more answers than its socket holds.
    let mut slow: Vec<TestClient> = (0..2).map(|_| broker.connect()).collect();
    for client in &mut slow {
        for _ in 0..200 {
            client.send(
                support::pull_request("Slow", "Big", 0, 0, 0),
                ringmq_protocol::header::SerializeType::Json,
            );
        }
    }
    // Within a few idle timeouts both are closed and a new client is served.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let mut fresh = broker.connect();
        fresh
            .stream
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        fresh.send(
            request(request_code::GET_BROKER_RUNTIME_INFO, &[]),
            ringmq_protocol::header::SerializeType::Json,
        );
        // Above the limit the broker closes it at once: no answer.
        let served = fresh
            .receive()
            .is_some_and(|answer| answer.code == response_code::SUCCESS);
        if served {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the slow readers' slots were never given back"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let fds_after = open_fds(broker.child.id());
    assert!(
        fds_after <= fds_before + 1,
        "descriptors: {fds_before} before the slow readers, {fds_after} after they were closed"
    );
    drop(slow);
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|entries| entries.count())
        .unwrap_or(0)
}

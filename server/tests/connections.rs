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

//! Queue locks of orderly consumption over real TCP: LOCK_BATCH_MQ gives a client the queues
//! no other member holds and renews its own, UNLOCK_BATCH_MQ gives them back, and a closed
//! connection's locks are free at once.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use ringmq_protocol::body::{JsonBody, LockBatchResponseBody};
use ringmq_protocol::codes::{request_code, response_code};
use support::{request, Broker, TestClient};

fn body(group: &str, client_id: &str, queues: &[i32]) -> Vec<u8> {
    let mqs: Vec<String> = queues
        .iter()
        .map(|q| format!(r#"{{"topic":"LockTopic","brokerName":"lk","queueId":{q}}}"#))
        .collect();
    format!(
        r#"{{"consumerGroup":"{group}","clientId":"{client_id}","onlyThisBroker":false,"mqSet":[{}]}}"#,
        mqs.join(",")
    )
    .into_bytes()
}

fn lock(client: &mut TestClient, client_id: &str, queues: &[i32]) -> BTreeSet<i32> {
    let response = client.call(request(request_code::LOCK_BATCH_MQ, &[]).with_body(body(
        "LockGroup",
        client_id,
        queues,
    )));
    assert_eq!(
        response.code,
        response_code::SUCCESS,
        "{:?}",
        response.remark
    );
    LockBatchResponseBody::decode(&response.body)
        .unwrap()
        .lock_ok_mq_set
        .into_iter()
        .map(|mq| mq.queue_id)
        .collect()
}

fn unlock(client: &mut TestClient, client_id: &str, queues: &[i32]) {
    let response = client.call(request(request_code::UNLOCK_BATCH_MQ, &[]).with_body(body(
        "LockGroup",
        client_id,
        queues,
    )));
    assert_eq!(
        response.code,
        response_code::SUCCESS,
        "{:?}",
        response.remark
    );
}

#[test]
fn each_queue_is_locked_by_one_member_and_a_closed_connection_frees_its_queues() {
    let broker = Broker::start(&["--broker-name", "lk"]);
    let mut a = broker.connect();
    let mut b = broker.connect();
    assert_eq!(lock(&mut a, "A", &[0, 1]), BTreeSet::from([0, 1]));
    assert_eq!(
        lock(&mut b, "B", &[1, 2]),
        BTreeSet::from([2]),
        "queue 1 is A's"
    );
    assert_eq!(
        lock(&mut a, "A", &[0, 1, 2]),
        BTreeSet::from([0, 1]),
        "renewed, not 2"
    );
    unlock(&mut a, "A", &[0]);
    unlock(&mut b, "B", &[1]); // not B's: nothing happens
    assert_eq!(lock(&mut b, "B", &[0, 1]), BTreeSet::from([0]));

    // A's process dies: its connection closes and queue 1 is free at once (RocketMQ waits
    // for the 60 s lock lifetime).
    drop(a);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if lock(&mut b, "B", &[1]) == BTreeSet::from([1]) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "A's lock outlived its connection"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    let broken = b.call(request(request_code::LOCK_BATCH_MQ, &[]).with_body(b"{not json".to_vec()));
    assert_eq!(broken.code, response_code::SYSTEM_ERROR);
    let anonymous =
        b.call(request(request_code::LOCK_BATCH_MQ, &[]).with_body(body("", "B", &[0])));
    assert_eq!(
        anonymous.code,
        response_code::INVALID_PARAMETER,
        "{:?}",
        anonymous.remark
    );
}

//! Offset requests name a queue; a queue that does not exist gets a clear refusal instead of
//! a made-up 0 (docs/decisions.md, "Offsets of queues that do not exist"), and the paths
//! the Java client uses in normal consumption keep working.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use ringmq_protocol::codes::{request_code, response_code};
use ringmq_protocol::command::RemotingCommand;
use support::{request, send_request, Broker, TestClient};

const TOPIC: &str = "OffsetsTopic";

/// Sends one message to `queue_id` of `topic`, auto-creating it with 4 queues.
fn send(client: &mut TestClient, topic: &str, queue_id: i32) {
    let response = client.call(send_request(topic, queue_id, "WAIT\u{1}true\u{2}", b"m"));
    assert_eq!(
        response.code,
        response_code::SUCCESS,
        "{:?}",
        response.remark
    );
}

/// Each per-queue offset request for `(topic, queue_id)`, named for the failure messages.
fn offset_requests(topic: &str, queue_id: i32) -> Vec<(&'static str, RemotingCommand)> {
    let queue = queue_id.to_string();
    let queue_fields = [("topic", topic), ("queueId", queue.as_str())];
    vec![
        (
            "GET_MAX_OFFSET",
            request(request_code::GET_MAX_OFFSET, &queue_fields),
        ),
        (
            "GET_MIN_OFFSET",
            request(request_code::GET_MIN_OFFSET, &queue_fields),
        ),
        (
            "GET_EARLIEST_MSG_STORETIME",
            request(request_code::GET_EARLIEST_MSG_STORETIME, &queue_fields),
        ),
        (
            "SEARCH_OFFSET_BY_TIMESTAMP",
            request(
                request_code::SEARCH_OFFSET_BY_TIMESTAMP,
                &[
                    ("topic", topic),
                    ("queueId", &queue),
                    ("timestamp", "1700000000000"),
                ],
            ),
        ),
        (
            "QUERY_CONSUMER_OFFSET",
            request(
                request_code::QUERY_CONSUMER_OFFSET,
                &[
                    ("consumerGroup", "G"),
                    ("topic", topic),
                    ("queueId", &queue),
                ],
            ),
        ),
        (
            "UPDATE_CONSUMER_OFFSET",
            update_offset("G", topic, queue_id, 1),
        ),
    ]
}

fn update_offset(group: &str, topic: &str, queue_id: i32, offset: i64) -> RemotingCommand {
    request(
        request_code::UPDATE_CONSUMER_OFFSET,
        &[
            ("consumerGroup", group),
            ("topic", topic),
            ("queueId", &queue_id.to_string()),
            ("commitOffset", &offset.to_string()),
        ],
    )
}

fn query_offset(client: &mut TestClient, group: &str, topic: &str, queue_id: i32) -> Option<i64> {
    let response = client.call(request(
        request_code::QUERY_CONSUMER_OFFSET,
        &[
            ("consumerGroup", group),
            ("topic", topic),
            ("queueId", &queue_id.to_string()),
        ],
    ));
    if response.code == response_code::QUERY_NOT_FOUND {
        return None;
    }
    assert_eq!(
        response.code,
        response_code::SUCCESS,
        "{:?}",
        response.remark
    );
    Some(response.ext("offset").unwrap().parse().unwrap())
}

#[test]
fn offset_requests_for_an_unknown_topic_are_answered_topic_not_exist() {
    let broker = Broker::start(&[]);
    let mut client = broker.connect();
    for (name, command) in offset_requests("NoSuchTopic", 0) {
        let response = client.call(command);
        assert_eq!(
            response.code,
            response_code::TOPIC_NOT_EXIST,
            "{name}: {:?}",
            response.remark
        );
        let remark = response.remark.unwrap_or_default();
        assert!(
            remark.contains("NoSuchTopic"),
            "{name}: the remark names the topic: {remark:?}"
        );
    }
}

#[test]
fn offset_requests_for_a_queue_id_outside_the_topic_are_answered_invalid_parameter() {
    let broker = Broker::start(&[]);
    let mut client = broker.connect();
    send(&mut client, TOPIC, 0);
    for queue_id in [-1, 4, 1_000_000] {
        for (name, command) in offset_requests(TOPIC, queue_id) {
            let response = client.call(command);
            assert_eq!(
                response.code,
                response_code::INVALID_PARAMETER,
                "{name} queue {queue_id}: {:?}",
                response.remark
            );
            let remark = response.remark.unwrap_or_default();
            assert!(
                remark.contains(&format!("queueId[{queue_id}]")) && remark.contains(TOPIC),
                "{name}: the remark names the queue and the topic: {remark:?}"
            );
        }
    }
}

#[test]
fn offsets_of_existing_queues_are_answered_as_before() {
    let broker = Broker::start(&[]);
    let mut client = broker.connect();
    send(&mut client, TOPIC, 3);
    send(&mut client, TOPIC, 3);
    let max = client.call(request(
        request_code::GET_MAX_OFFSET,
        &[("topic", TOPIC), ("queueId", "3")],
    ));
    assert_eq!(max.code, response_code::SUCCESS, "{:?}", max.remark);
    assert_eq!(max.ext("offset"), Some("2"));
    // An existing queue that never got a message: 0, as Java answers.
    let empty = client.call(request(
        request_code::GET_MAX_OFFSET,
        &[("topic", TOPIC), ("queueId", "0")],
    ));
    assert_eq!(empty.code, response_code::SUCCESS, "{:?}", empty.remark);
    assert_eq!(empty.ext("offset"), Some("0"));

    let response = client.call(update_offset("G", TOPIC, 3, 2));
    assert_eq!(
        response.code,
        response_code::SUCCESS,
        "{:?}",
        response.remark
    );
    assert_eq!(query_offset(&mut client, "G", TOPIC, 3), Some(2));
}

#[test]
fn a_negative_commit_offset_is_refused_and_the_stored_offset_kept() {
    let broker = Broker::start(&[]);
    let mut client = broker.connect();
    send(&mut client, TOPIC, 0);
    let response = client.call(update_offset("G", TOPIC, 0, 1));
    assert_eq!(
        response.code,
        response_code::SUCCESS,
        "{:?}",
        response.remark
    );
    let response = client.call(update_offset("G", TOPIC, 0, -1));
    assert_eq!(
        response.code,
        response_code::INVALID_PARAMETER,
        "{:?}",
        response.remark
    );
    let remark = response.remark.unwrap_or_default();
    assert!(
        remark.contains("-1") && remark.contains(TOPIC),
        "{remark:?}"
    );
    assert_eq!(query_offset(&mut client, "G", TOPIC, 0), Some(1));
}

#[test]
fn a_push_consumer_commits_its_retry_topic_offset_after_its_heartbeat() {
    let broker = Broker::start(&[]);
    let mut client = broker.connect();
    // What a Java push consumer sends: a heartbeat (creating %RETRY%<group> with one
    // queue), then its 5 s offset persist for queue 0 of the retry topic.
    let body = r#"{"clientID":"127.0.0.1@push","producerDataSet":[],"consumerDataSet":[{"groupName":"PushGroup","consumeType":"CONSUME_PASSIVELY","messageModel":"CLUSTERING","consumeFromWhere":"CONSUME_FROM_LAST_OFFSET","unitMode":false,"subscriptionDataSet":[]}]}"#;
    let heartbeat =
        client.call(request(request_code::HEART_BEAT, &[]).with_body(body.as_bytes().to_vec()));
    assert_eq!(
        heartbeat.code,
        response_code::SUCCESS,
        "{:?}",
        heartbeat.remark
    );
    let response = client.call(update_offset("PushGroup", "%RETRY%PushGroup", 0, 0));
    assert_eq!(
        response.code,
        response_code::SUCCESS,
        "{:?}",
        response.remark
    );
    assert_eq!(
        query_offset(&mut client, "PushGroup", "%RETRY%PushGroup", 0),
        Some(0)
    );
    let beyond = client.call(update_offset("PushGroup", "%RETRY%PushGroup", 1, 0));
    assert_eq!(
        beyond.code,
        response_code::INVALID_PARAMETER,
        "{:?}",
        beyond.remark
    );
}

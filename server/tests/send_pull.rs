//! SEND, PULL and long polling over real TCP with the real binary (issue 4): what a
//! RocketMQ client relies on, checked at the protocol level.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::{Duration, Instant};

use bytes::Bytes;
use ringmq_protocol::codes::{request_code, response_code};
use ringmq_protocol::command::RemotingCommand;
use ringmq_protocol::header::SerializeType;
use ringmq_protocol::message::batch::encode_batch_body;
use ringmq_protocol::message::batch::BatchEntry;
use ringmq_protocol::message::record::iter_records;
use support::{request, Broker, TestClient};

const TOPIC: &str = "SendPullTopic";

fn send(
    client: &mut TestClient,
    topic: &str,
    queue_id: i32,
    tag: &str,
    body: &str,
) -> RemotingCommand {
    let properties = format!("TAGS\u{1}{tag}\u{2}WAIT\u{1}true\u{2}");
    let queue = queue_id.to_string();
    let command = request(
        request_code::SEND_MESSAGE_V2,
        &[
            ("a", "PG"),
            ("b", topic),
            ("c", "TBW102"),
            ("d", "4"),
            ("e", &queue),
            ("f", "0"),
            ("g", "1700000000000"),
            ("h", "0"),
            ("i", &properties),
        ],
    )
    .with_body(Bytes::copy_from_slice(body.as_bytes()));
    let response = client.call(command);
    assert_eq!(
        response.code,
        response_code::SUCCESS,
        "{:?}",
        response.remark
    );
    response
}

fn pull_request(
    topic: &str,
    queue_id: i32,
    offset: i64,
    flags: i32,
    subscription: &str,
    suspend_ms: i64,
) -> RemotingCommand {
    request(
        request_code::PULL_MESSAGE,
        &[
            ("consumerGroup", "CG"),
            ("topic", topic),
            ("queueId", &queue_id.to_string()),
            ("queueOffset", &offset.to_string()),
            ("maxMsgNums", "32"),
            ("sysFlag", &flags.to_string()),
            ("commitOffset", "0"),
            ("suspendTimeoutMillis", &suspend_ms.to_string()),
            ("subscription", subscription),
            ("subVersion", "0"),
            ("expressionType", "TAG"),
        ],
    )
}

const FLAG_SUSPEND: i32 = 0x2;
const FLAG_SUBSCRIPTION: i32 = 0x4;

fn bodies(response: &RemotingCommand) -> Vec<String> {
    iter_records(&response.body)
        .map(|record| String::from_utf8(record.unwrap().body.to_vec()).unwrap())
        .collect()
}

fn ext_i64(response: &RemotingCommand, key: &str) -> i64 {
    response
        .ext(key)
        .unwrap_or_else(|| panic!("missing {key}"))
        .parse()
        .unwrap()
}

#[test]
fn sent_messages_are_pulled_back_in_order_with_offsets() {
    let broker = Broker::start(&[]);
    let mut client = broker.connect();
    let first = send(&mut client, TOPIC, 1, "TagA", "m0");
    assert_eq!(first.ext("queueId"), Some("1"));
    assert_eq!(first.ext("queueOffset"), Some("0"));
    assert_eq!(first.ext("msgId").map(str::len), Some(32));
    let second = send(&mut client, TOPIC, 1, "TagA", "m1");
    assert_eq!(second.ext("queueOffset"), Some("1"));

    let response = client.call(pull_request(TOPIC, 1, 0, FLAG_SUBSCRIPTION, "*", 0));
    assert_eq!(
        response.code,
        response_code::SUCCESS,
        "{:?}",
        response.remark
    );
    assert_eq!(bodies(&response), vec!["m0", "m1"]);
    assert_eq!(ext_i64(&response, "nextBeginOffset"), 2);
    assert_eq!(ext_i64(&response, "maxOffset"), 2);
    assert_eq!(ext_i64(&response, "minOffset"), 0);
    assert_eq!(ext_i64(&response, "suggestWhichBrokerId"), 0);

    // At the tail without suspension: "no new message" and the same offset back.
    let response = client.call(pull_request(TOPIC, 1, 2, FLAG_SUBSCRIPTION, "*", 0));
    assert_eq!(response.code, response_code::PULL_NOT_FOUND);
    assert_eq!(ext_i64(&response, "nextBeginOffset"), 2);
    // Beyond the tail: offset moved back to the max.
    let response = client.call(pull_request(TOPIC, 1, 9, FLAG_SUBSCRIPTION, "*", 0));
    assert_eq!(response.code, response_code::PULL_OFFSET_MOVED);
    assert_eq!(ext_i64(&response, "nextBeginOffset"), 2);

    // The offset msgId of the send response finds the message.
    let msg_id = first.ext("msgId").unwrap();
    let offset = i64::from_str_radix(&msg_id[16..], 16).unwrap();
    let response = client.call(request(
        request_code::VIEW_MESSAGE_BY_ID,
        &[("offset", &offset.to_string())],
    ));
    assert_eq!(
        response.code,
        response_code::SUCCESS,
        "{:?}",
        response.remark
    );
    assert_eq!(bodies(&response), vec!["m0"]);
}

#[test]
fn a_held_pull_is_answered_when_a_matching_message_arrives_and_not_before() {
    let broker = Broker::start(&[]);
    let mut producer = broker.connect();
    send(&mut producer, TOPIC, 0, "TagA", "first");
    let mut consumer = broker.connect();
    let opaque = consumer.send(
        pull_request(
            TOPIC,
            0,
            1,
            FLAG_SUSPEND | FLAG_SUBSCRIPTION,
            "TagA",
            10_000,
        ),
        SerializeType::Json,
    );
    assert!(
        nothing_within(&mut consumer, Duration::from_millis(500)),
        "answered before any message arrived"
    );
    let sent_at = Instant::now();
    send(&mut producer, TOPIC, 0, "TagA", "second");
    let response = consumer.receive().expect("held pull not answered");
    let waited = sent_at.elapsed();
    assert_eq!(response.opaque, opaque);
    assert_eq!(response.code, response_code::SUCCESS);
    assert_eq!(bodies(&response), vec!["second"]);
    assert!(waited < Duration::from_secs(2), "woken after {waited:?}");
}

#[test]
fn an_unmatched_tag_does_not_wake_a_held_pull() {
    let broker = Broker::start(&[]);
    let mut producer = broker.connect();
    send(&mut producer, TOPIC, 2, "TagA", "a0");
    let mut consumer = broker.connect();
    consumer.send(
        pull_request(
            TOPIC,
            2,
            1,
            FLAG_SUSPEND | FLAG_SUBSCRIPTION,
            "TagA",
            10_000,
        ),
        SerializeType::Json,
    );
    std::thread::sleep(Duration::from_millis(200));
    send(&mut producer, TOPIC, 2, "TagB", "b1");
    assert!(
        nothing_within(&mut consumer, Duration::from_millis(700)),
        "a TagB message woke a TagA pull"
    );
    send(&mut producer, TOPIC, 2, "TagA", "a2");
    let response = consumer.receive().expect("held pull not answered");
    assert_eq!(response.code, response_code::SUCCESS);
    assert_eq!(bodies(&response), vec!["a2"]);
    assert_eq!(ext_i64(&response, "nextBeginOffset"), 3);
}

#[test]
fn a_held_pull_times_out_with_no_new_message() {
    let broker = Broker::start(&[]);
    let mut producer = broker.connect();
    send(&mut producer, TOPIC, 3, "TagA", "only");
    let mut consumer = broker.connect();
    let started = Instant::now();
    let response = consumer.call(pull_request(
        TOPIC,
        3,
        1,
        FLAG_SUSPEND | FLAG_SUBSCRIPTION,
        "*",
        1_000,
    ));
    let held = started.elapsed();
    assert_eq!(response.code, response_code::PULL_NOT_FOUND);
    assert_eq!(response.remark.as_deref(), Some("OFFSET_OVERFLOW_ONE"));
    assert_eq!(ext_i64(&response, "nextBeginOffset"), 1);
    assert!(
        held >= Duration::from_millis(900) && held < Duration::from_millis(3000),
        "held {held:?} for a 1 s suspend"
    );
}

#[test]
fn consumer_offsets_are_unknown_until_committed() {
    let broker = Broker::start(&[]);
    let mut client = broker.connect();
    // Offsets are kept only for queues that exist: the first send creates the topic.
    send(&mut client, "OffsetTopic", 1, "t", "x");
    let query = |client: &mut TestClient| {
        client.call(request(
            request_code::QUERY_CONSUMER_OFFSET,
            &[
                ("consumerGroup", "CG1"),
                ("topic", "OffsetTopic"),
                ("queueId", "0"),
            ],
        ))
    };
    assert_eq!(query(&mut client).code, response_code::QUERY_NOT_FOUND);
    let response = client.call(request(
        request_code::UPDATE_CONSUMER_OFFSET,
        &[
            ("consumerGroup", "CG1"),
            ("topic", "OffsetTopic"),
            ("queueId", "0"),
            ("commitOffset", "42"),
        ],
    ));
    assert_eq!(response.code, response_code::SUCCESS);
    let response = query(&mut client);
    assert_eq!(response.code, response_code::SUCCESS);
    assert_eq!(response.ext("offset"), Some("42"));

    let response = client.call(request(
        request_code::GET_MAX_OFFSET,
        &[("topic", "OffsetTopic"), ("queueId", "1")],
    ));
    assert_eq!(response.ext("offset"), Some("1"));
    // A young queue whose head is still there: a new group starts at 0.
    let response = client.call(request(
        request_code::QUERY_CONSUMER_OFFSET,
        &[
            ("consumerGroup", "NEW"),
            ("topic", "OffsetTopic"),
            ("queueId", "1"),
        ],
    ));
    assert_eq!(response.ext("offset"), Some("0"));
}

#[test]
fn a_batch_is_stored_as_consecutive_messages() {
    let broker = Broker::start(&[]);
    let mut client = broker.connect();
    let entries: Vec<BatchEntry> = (0..3)
        .map(|i| BatchEntry {
            flag: 0,
            body: Bytes::from(format!("b{i}")),
            properties: format!("UNIQ_KEY\u{1}K{i}\u{2}"),
        })
        .collect();
    let mut body = Vec::new();
    encode_batch_body(&entries, &mut body).unwrap();
    let command = request(
        request_code::SEND_BATCH_MESSAGE,
        &[
            ("a", "PG"),
            ("b", "BatchTopic"),
            ("c", "TBW102"),
            ("d", "4"),
            ("e", "0"),
            ("f", "0"),
            ("g", "1700000000000"),
            ("h", "0"),
            ("m", "true"),
        ],
    )
    .with_body(Bytes::from(body));
    let response = client.call(command);
    assert_eq!(
        response.code,
        response_code::SUCCESS,
        "{:?}",
        response.remark
    );
    assert_eq!(response.ext("msgId").unwrap().split(',').count(), 3);
    let response = client.call(pull_request("BatchTopic", 0, 0, FLAG_SUBSCRIPTION, "*", 0));
    assert_eq!(bodies(&response), vec!["b0", "b1", "b2"]);
}

#[test]
fn a_send_missing_required_fields_is_refused_and_the_broker_keeps_serving() {
    let broker = Broker::start(&[]);
    let mut client = broker.connect();
    let response = client.call(
        request(request_code::SEND_MESSAGE_V2, &[("b", TOPIC)]).with_body(Bytes::from_static(b"x")),
    );
    assert_eq!(response.code, response_code::SYSTEM_ERROR);
    assert!(response.remark.unwrap().contains("is null"));
    send(&mut client, TOPIC, 0, "t", "still works");
}

#[test]
fn a_message_over_the_size_limit_is_illegal() {
    let broker = Broker::start(&[]);
    let mut client = broker.connect();
    let big = "x".repeat(4 * 1024 * 1024 + 1);
    let command = request(
        request_code::SEND_MESSAGE_V2,
        &[
            ("a", "PG"),
            ("b", TOPIC),
            ("c", "TBW102"),
            ("d", "4"),
            ("e", "0"),
            ("f", "0"),
            ("g", "1700000000000"),
            ("h", "0"),
        ],
    )
    .with_body(Bytes::from(big));
    let response = client.call(command);
    assert_eq!(response.code, response_code::MESSAGE_ILLEGAL);
}

#[test]
fn auto_create_off_refuses_unknown_topics() {
    let broker = Broker::start(&["--auto-create-topics", "false"]);
    let mut client = broker.connect();
    let command = request(
        request_code::SEND_MESSAGE_V2,
        &[
            ("a", "PG"),
            ("b", "NoSuchTopic"),
            ("c", "TBW102"),
            ("d", "4"),
            ("e", "0"),
            ("f", "0"),
            ("g", "1700000000000"),
            ("h", "0"),
        ],
    )
    .with_body(Bytes::from_static(b"x"));
    let response = client.call(command);
    assert_eq!(response.code, response_code::TOPIC_NOT_EXIST);
}

/// True if no frame arrives within `window`.
fn nothing_within(client: &mut TestClient, window: Duration) -> bool {
    client.stream.set_read_timeout(Some(window)).unwrap();
    let got = client.receive();
    client
        .stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    got.is_none()
}

#[test]
fn consume_stats_report_broker_and_consumer_offsets_per_queue() {
    let broker = Broker::start(&[]);
    let mut client = broker.connect();
    for i in 0..3 {
        send(&mut client, "StatsTopic", 0, "t", &format!("s{i}"));
    }
    let response = client.call(request(
        request_code::UPDATE_CONSUMER_OFFSET,
        &[
            ("consumerGroup", "SG"),
            ("topic", "StatsTopic"),
            ("queueId", "0"),
            ("commitOffset", "1"),
        ],
    ));
    assert_eq!(response.code, response_code::SUCCESS);
    let response = client.call(request(
        request_code::GET_CONSUME_STATS,
        &[("consumerGroup", "SG")],
    ));
    assert_eq!(
        response.code,
        response_code::SUCCESS,
        "{:?}",
        response.remark
    );
    // mqadmin reads the fastjson object-keyed form.
    let text = String::from_utf8(response.body.to_vec()).unwrap();
    assert!(
        text.contains("\"offsetTable\":{{"),
        "not object-keyed: {text}"
    );
    let stats = <ringmq_protocol::body::ConsumeStats as ringmq_protocol::body::JsonBody>::decode(
        &response.body,
    )
    .unwrap();
    let queue0 = stats
        .offset_table
        .iter()
        .find(|(mq, _)| mq.topic == "StatsTopic" && mq.queue_id == 0)
        .map(|(_, offsets)| *offsets)
        .expect("queue 0 of StatsTopic");
    assert_eq!(queue0.broker_offset, 3);
    assert_eq!(queue0.consumer_offset, 1);
    assert_eq!(stats.total_diff(), 2);
}

#[test]
fn a_transactional_half_message_is_refused_until_transactions_are_built() {
    let broker = Broker::start(&[]);
    let mut client = broker.connect();
    let mut half = ringmq_testkit::send_request("TxTopic", 0, "", b"half");
    // "f" is SEND_MESSAGE_V2's sysFlag: TRANSACTION_PREPARED_TYPE
    half.ext_fields.insert("f".to_owned(), "4".to_owned());
    let response = client.call(half);
    assert_eq!(response.code, response_code::NO_PERMISSION);
    assert!(
        response
            .remark
            .as_deref()
            .is_some_and(|r| r.contains("transaction message is forbidden")),
        "{:?}",
        response.remark
    );
}

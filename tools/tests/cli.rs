//! The `ringmq` binary against a real `ringmq-server` (port 0, temporary store): each command
//! is run as a user would run it, and its output (mostly `--json`) and exit code checked.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;
use support::Broker;

fn ringmq(broker: &Broker, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ringmq"))
        .args(["--namesrv", &broker.namesrv_addr])
        .args(args)
        .output()
        .unwrap()
}

/// Runs a command that must succeed and returns its stdout.
fn ok(broker: &Broker, args: &[&str]) -> String {
    let out = ringmq(broker, args);
    assert!(
        out.status.success(),
        "ringmq {args:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs a command with `--json` that must succeed and parses its output.
fn json(broker: &Broker, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let text = ok(broker, &all);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("ringmq {args:?}: {e}: {text}"))
}

fn create_topic(broker: &Broker, topic: &str, queues: &str) {
    ok(broker, &["topic", "create", topic, "--queues", queues]);
}

/// Sends `count` messages and returns the send results.
fn send(broker: &Broker, topic: &str, body: &str, count: &str) -> Vec<Value> {
    json(
        broker,
        &[
            "send", topic, body, "--count", count, "--tag", "TagA", "--key", "k1",
        ],
    )
    .as_array()
    .unwrap()
    .clone()
}

fn queue_counts(route: &Value) -> (i64, i64) {
    let q = &route["queueDatas"][0];
    (
        q["readQueueNums"].as_i64().unwrap(),
        q["writeQueueNums"].as_i64().unwrap(),
    )
}

#[test]
fn help_of_every_command_exits_zero_and_explains_it() {
    let commands: &[&[&str]] = &[
        &[],
        &["topic"],
        &["topic", "create"],
        &["topic", "update"],
        &["topic", "delete"],
        &["topic", "list"],
        &["topic", "route"],
        &["cluster"],
        &["cluster", "list"],
        &["broker"],
        &["broker", "stats"],
        &["consumer"],
        &["consumer", "progress"],
        &["consumer", "connections"],
        &["offset"],
        &["offset", "reset"],
        &["send"],
        &["consume"],
        &["message"],
        &["message", "view"],
        &["dlq"],
        &["dlq", "list"],
        &["dlq", "resend"],
    ];
    for command in commands {
        let out = Command::new(env!("CARGO_BIN_EXE_ringmq"))
            .args(*command)
            .arg("--help")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "ringmq {command:?} --help: {}",
            out.status
        );
        assert!(
            text.contains("Usage: ringmq"),
            "ringmq {command:?} --help: {text}"
        );
        assert!(
            text.lines().count() > 3,
            "ringmq {command:?} --help says little: {text}"
        );
    }
}

#[test]
fn topic_create_shows_in_list_and_route() {
    let broker = Broker::start();
    create_topic(&broker, "Orders", "3");
    let list = json(&broker, &["topic", "list"]);
    assert!(
        list.as_array().unwrap().iter().any(|t| t == "Orders"),
        "{list}"
    );
    let route = json(&broker, &["topic", "route", "Orders"]);
    assert_eq!(queue_counts(&route), (3, 3));
    assert_eq!(
        route["brokerDatas"][0]["brokerAddrs"]["0"].as_str(),
        Some(broker.broker_addr.as_str())
    );
    let table = ok(&broker, &["topic", "route", "Orders"]);
    assert!(table.contains(&broker.broker_addr), "{table}");
}

#[test]
fn topic_update_changes_only_what_is_given() {
    let broker = Broker::start();
    create_topic(&broker, "Orders", "4");
    ok(
        &broker,
        &["topic", "update", "Orders", "--write-queues", "2"],
    );
    let route = json(&broker, &["topic", "route", "Orders"]);
    assert_eq!(queue_counts(&route), (4, 2));
}

#[test]
fn topic_update_of_an_unknown_topic_fails_and_says_so() {
    let broker = Broker::start();
    let out = ringmq(&broker, &["topic", "update", "Missing", "--queues", "2"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("topic Missing does not exist"), "{err}");
}

#[test]
fn topic_delete_removes_the_topic() {
    let broker = Broker::start();
    create_topic(&broker, "Doomed", "2");
    ok(&broker, &["topic", "delete", "Doomed"]);
    let list = json(&broker, &["topic", "list"]);
    assert!(
        !list.as_array().unwrap().iter().any(|t| t == "Doomed"),
        "{list}"
    );
    let out = ringmq(&broker, &["topic", "route", "Doomed"]);
    assert!(!out.status.success());
}

#[test]
fn cluster_list_shows_the_broker_with_its_version() {
    let broker = Broker::start();
    let rows = json(&broker, &["cluster", "list"]);
    let row = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["addr"] == broker.broker_addr.as_str())
        .unwrap_or_else(|| panic!("broker missing from {rows}"));
    assert_eq!(row["id"], 0);
    assert!(!row["version"].as_str().unwrap().is_empty(), "{row}");
}

#[test]
fn broker_stats_prints_the_runtime_table() {
    let broker = Broker::start();
    let stats = json(&broker, &["broker", "stats"]);
    let table = &stats[broker.broker_addr.as_str()];
    assert!(table["brokerVersionDesc"].is_string(), "{stats}");
    let text = ok(
        &broker,
        &["broker", "stats", "--broker", &broker.broker_addr],
    );
    assert!(text.contains("msgPutTotalTodayNow"), "{text}");
}

#[test]
fn send_then_message_view_returns_the_stored_message() {
    let broker = Broker::start();
    create_topic(&broker, "Orders", "2");
    let sent = send(&broker, "Orders", "hello view", "1");
    let id = sent[0]["offset_msg_id"].as_str().unwrap();
    let msg = json(&broker, &["message", "view", id]);
    assert_eq!(msg["body"], "hello view");
    assert_eq!(msg["tags"], "TagA");
    assert_eq!(msg["keys"][0], "k1");
    assert_eq!(msg["queue_offset"], sent[0]["queue_offset"]);
}

#[test]
fn send_count_sends_that_many() {
    let broker = Broker::start();
    create_topic(&broker, "Orders", "2");
    let sent = send(&broker, "Orders", "x", "5");
    assert_eq!(sent.len(), 5);
    assert!(sent.iter().all(|r| r["status"] == "SendOk"), "{sent:?}");
}

#[test]
fn consume_prints_messages_and_stops_at_count() {
    let broker = Broker::start();
    create_topic(&broker, "Orders", "2");
    send(&broker, "Orders", "payload", "3");
    let msgs = json(
        &broker,
        &["consume", "Orders", "--count", "2", "--wait-ms", "500"],
    );
    let msgs = msgs.as_array().unwrap();
    assert_eq!(msgs.len(), 2);
    assert!(msgs.iter().all(|m| m["body"] == "payload"), "{msgs:?}");
    let text = ok(&broker, &["consume", "Orders", "--wait-ms", "500"]);
    assert_eq!(text.matches("body=payload").count(), 3, "{text}");
}

#[test]
fn consume_from_last_sees_no_old_messages() {
    let broker = Broker::start();
    create_topic(&broker, "Orders", "2");
    send(&broker, "Orders", "old", "2");
    let msgs = json(
        &broker,
        &["consume", "Orders", "--from", "last", "--wait-ms", "300"],
    );
    assert_eq!(msgs.as_array().unwrap().len(), 0, "{msgs}");
}

/// Progress rows as (queue id, broker offset, consumer offset, lag), in printed order.
fn progress(broker: &Broker, group: &str, topic: &str) -> (Vec<(i64, i64, i64, i64)>, i64) {
    let p = json(broker, &["consumer", "progress", group, "--topic", topic]);
    let rows = p["queues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| {
            (
                q["queue"].as_i64().unwrap(),
                q["broker_offset"].as_i64().unwrap(),
                q["consumer_offset"].as_i64().unwrap(),
                q["lag"].as_i64().unwrap(),
            )
        })
        .collect();
    (rows, p["total_lag"].as_i64().unwrap())
}

#[test]
fn consume_with_a_group_commits_so_progress_shows_no_lag() {
    let broker = Broker::start();
    create_topic(&broker, "Orders", "4");
    send(&broker, "Orders", "m", "6");
    ok(
        &broker,
        &["consume", "Orders", "--group", "g1", "--wait-ms", "300"],
    );
    let (rows, total_lag) = progress(&broker, "g1", "Orders");
    assert_eq!(rows.len(), 4);
    assert_eq!(total_lag, 0, "{rows:?}");
    assert_eq!(rows.iter().map(|r| r.2).sum::<i64>(), 6);
    // Nothing left: the group's next consume prints nothing.
    let again = json(
        &broker,
        &["consume", "Orders", "--group", "g1", "--wait-ms", "300"],
    );
    assert_eq!(again.as_array().unwrap().len(), 0);
}

#[test]
fn offset_reset_to_an_exact_offset_rewinds_and_progress_sorts_by_lag() {
    let broker = Broker::start();
    create_topic(&broker, "Orders", "4");
    send(&broker, "Orders", "m", "6");
    ok(
        &broker,
        &["consume", "Orders", "--group", "g1", "--wait-ms", "300"],
    );
    ok(
        &broker,
        &["offset", "reset", "g1", "Orders", "--to-offset", "0"],
    );
    let (rows, total_lag) = progress(&broker, "g1", "Orders");
    assert_eq!(total_lag, 6, "{rows:?}");
    let lags: Vec<i64> = rows.iter().map(|r| r.3).collect();
    assert!(
        lags.windows(2).all(|w| w[0] >= w[1]),
        "not sorted by lag: {rows:?}"
    );
    let table = ok(
        &broker,
        &["consumer", "progress", "g1", "--topic", "Orders"],
    );
    assert!(
        table.lines().last().unwrap().starts_with("total"),
        "{table}"
    );
}

#[test]
fn offset_reset_of_one_queue_to_a_time_leaves_the_others() {
    let broker = Broker::start();
    create_topic(&broker, "Orders", "2");
    send(&broker, "Orders", "m", "4");
    ok(
        &broker,
        &["consume", "Orders", "--group", "g1", "--wait-ms", "300"],
    );
    let reset = json(
        &broker,
        &[
            "offset",
            "reset",
            "g1",
            "Orders",
            "--to-time",
            "2000-01-01T00:00:00",
            "--queue",
            "1",
        ],
    );
    assert_eq!(reset.as_array().unwrap().len(), 1, "{reset}");
    assert_eq!(reset[0]["offset"], 0);
    let (rows, _) = progress(&broker, "g1", "Orders");
    let q1 = rows.iter().find(|r| r.0 == 1).unwrap();
    let q0 = rows.iter().find(|r| r.0 == 0).unwrap();
    assert_eq!(q1.2, 0, "queue 1 rewound: {rows:?}");
    assert_eq!(q0.3, 0, "queue 0 untouched: {rows:?}");
}

#[test]
fn consumer_connections_lists_an_online_push_consumer() {
    use ringmq_client::{ConsumeStatus, MessageExt, PushConsumer, PushConsumerConfig};
    let broker = Broker::start();
    create_topic(&broker, "Orders", "2");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let consumer = runtime.block_on(async {
        let consumer = PushConsumer::new(
            PushConsumerConfig::new(&broker.namesrv_addr, "online-group"),
            |_: &[MessageExt]| ConsumeStatus::Success,
        );
        consumer.subscribe("Orders", "TagA").unwrap();
        consumer.start().await.unwrap();
        consumer
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let conn = loop {
        let out = ringmq(
            &broker,
            &["--json", "consumer", "connections", "online-group"],
        );
        if out.status.success() {
            break serde_json::from_slice::<Value>(&out.stdout).unwrap();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "consumer never showed up"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(conn["connectionSet"].as_array().unwrap().len(), 1, "{conn}");
    assert_eq!(conn["subscriptionTable"]["Orders"]["subString"], "TagA");
    let table = ok(&broker, &["consumer", "connections", "online-group"]);
    assert!(table.contains(consumer.client_id()), "{table}");
    runtime.block_on(consumer.shutdown());
}

#[test]
fn broker_refusal_exits_one_with_the_code_and_remark() {
    let broker = Broker::start();
    create_topic(&broker, "Orders", "2");
    let sent = send(&broker, "Orders", "x", "1");
    // Same store host, a physical offset far past the end of the log.
    let id = sent[0]["offset_msg_id"].as_str().unwrap();
    let bogus = format!("{}00000000000FFFF0", &id[..16]);
    let out = ringmq(&broker, &["message", "view", &bogus]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("viewing message {bogus}")), "{err}");
    assert!(err.contains("answered code"), "no broker code in: {err}");
}

#[test]
fn unreachable_name_server_exits_one_and_names_the_address() {
    let out = Command::new(env!("CARGO_BIN_EXE_ringmq"))
        .args(["--namesrv", "127.0.0.1:1", "topic", "list"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("127.0.0.1:1"), "{err}");
}

#[test]
fn namesrv_addr_comes_from_the_environment() {
    let broker = Broker::start();
    let out = Command::new(env!("CARGO_BIN_EXE_ringmq"))
        .env("NAMESRV_ADDR", &broker.namesrv_addr)
        .args(["--json", "cluster", "list"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(&broker.broker_addr));
}

#[test]
fn dlq_list_shows_a_dead_letter_and_resend_sends_it_back_to_its_topic() {
    use ringmq_client::protocol::codes::{request_code, response_code};
    use ringmq_client::protocol::message::msg_id::decode_offset_msg_id;

    let broker = Broker::start();
    create_topic(&broker, "DlqSource", "1");
    let sent = send(&broker, "DlqSource", "poison", "1");
    let offset_msg_id = sent[0]["offset_msg_id"].as_str().unwrap();
    let (_, physical_offset) = decode_offset_msg_id(offset_msg_id).unwrap();
    // A consumer gives up on it: delay level -1 sends it straight to %DLQ%DlqGroup.
    let mut client = ringmq_testkit::TestClient::connect(broker.broker_addr.parse().unwrap());
    let back = client.call(ringmq_testkit::request(
        request_code::CONSUMER_SEND_MSG_BACK,
        &[
            ("offset", &physical_offset.to_string()),
            ("group", "DlqGroup"),
            ("delayLevel", "-1"),
            ("originTopic", "DlqSource"),
            ("maxReconsumeTimes", "16"),
        ],
    ));
    assert_eq!(back.code, response_code::SUCCESS, "{:?}", back.remark);

    // The DLQ topic's route is registered with its first message; list once it is there.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let letters = loop {
        let letters = json(&broker, &["dlq", "list", "DlqGroup", "--wait-ms", "300"]);
        if !letters.as_array().unwrap().is_empty() || std::time::Instant::now() > deadline {
            break letters;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let letters = letters.as_array().unwrap();
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0]["original_topic"], "DlqSource");
    assert_eq!(letters[0]["body"], "poison");
    let text = ok(&broker, &["dlq", "list", "DlqGroup", "--wait-ms", "300"]);
    assert!(
        text.contains("1 dead letter(s)") && text.contains("DlqSource"),
        "{text}"
    );

    let missing = ringmq(&broker, &["dlq", "resend", "DlqGroup", "--msg-id", "NOPE"]);
    assert!(!missing.status.success());
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("no dead letter of group DlqGroup"),
        "{}",
        String::from_utf8_lossy(&missing.stderr)
    );
    let resent = json(&broker, &["dlq", "resend", "DlqGroup", "--wait-ms", "300"]);
    let resent = resent.as_array().unwrap();
    assert_eq!(resent.len(), 1, "{resent:?}");
    assert_eq!(resent[0]["topic"], "DlqSource");
    let msgs = json(
        &broker,
        &[
            "consume",
            "DlqSource",
            "--from",
            "first",
            "--wait-ms",
            "500",
        ],
    );
    let bodies: Vec<&Value> = msgs
        .as_array()
        .unwrap()
        .iter()
        .map(|m| &m["body"])
        .collect();
    assert_eq!(
        bodies,
        ["poison", "poison"],
        "the original and the resent copy"
    );
    // The dead letter stays; a group without dead letters has none.
    assert_eq!(
        json(&broker, &["dlq", "list", "DlqGroup", "--wait-ms", "300"])
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert!(
        json(&broker, &["dlq", "list", "NoSuchGroup", "--wait-ms", "300"])
            .as_array()
            .unwrap()
            .is_empty()
    );
}

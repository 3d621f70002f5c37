//! Consumer groups over real TCP (issue 4): HEART_BEAT registers members and creates the
//! retry topic, GET_CONSUMER_LIST_BY_GROUP lists exact client ids, membership changes send
//! NOTIFY_CONSUMER_IDS_CHANGED to every member, a closed connection leaves its groups.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Duration;

use ringmq_protocol::body::{
    ConsumerConnection, ConsumerListBody, JsonBody, TopicConfigSerializeWrapper,
};
use ringmq_protocol::codes::{request_code, response_code};
use ringmq_protocol::command::RemotingCommand;
use support::{request, Broker, TestClient};

fn heartbeat_body(client_id: &str, group: &str, model: &str) -> String {
    format!(
        r#"{{"clientID":"{client_id}","producerDataSet":[{{"groupName":"CLIENT_INNER_PRODUCER"}}],
        "consumerDataSet":[{{"groupName":"{group}","consumeType":"CONSUME_PASSIVELY",
        "messageModel":"{model}","consumeFromWhere":"CONSUME_FROM_LAST_OFFSET","unitMode":false,
        "subscriptionDataSet":[{{"classFilterMode":false,"topic":"T1","subString":"*",
        "tagsSet":[],"codeSet":[],"subVersion":1715000000123,"expressionType":"TAG"}}]}}]}}"#
    )
}

fn heartbeat(client: &mut TestClient, client_id: &str, group: &str, model: &str) {
    let command = request(request_code::HEART_BEAT, &[])
        .with_body(heartbeat_body(client_id, group, model).into_bytes());
    let response = client.call(command);
    assert_eq!(
        response.code,
        response_code::SUCCESS,
        "{:?}",
        response.remark
    );
}

fn consumer_list(client: &mut TestClient, group: &str) -> RemotingCommand {
    client.call(request(
        request_code::GET_CONSUMER_LIST_BY_GROUP,
        &[("consumerGroup", group)],
    ))
}

fn ids(response: &RemotingCommand) -> Vec<String> {
    assert_eq!(
        response.code,
        response_code::SUCCESS,
        "{:?}",
        response.remark
    );
    let mut ids = ConsumerListBody::decode(&response.body)
        .unwrap()
        .consumer_id_list;
    ids.sort();
    ids
}

/// Reads frames until a NOTIFY_CONSUMER_IDS_CHANGED for `group` arrives (bounded).
fn expect_notify(client: &mut TestClient, group: &str) {
    client
        .stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let frame = client.receive().expect("no notification within 10 s");
    assert_eq!(frame.code, request_code::NOTIFY_CONSUMER_IDS_CHANGED);
    assert!(frame.is_oneway(), "notifications are oneway");
    assert!(!frame.is_response());
    assert_eq!(frame.ext("consumerGroup"), Some(group));
}

#[test]
fn members_are_listed_and_notified_when_others_join_and_leave() {
    let broker = Broker::start(&[]);
    let mut a = broker.connect();
    heartbeat(&mut a, "10.0.0.1@a", "G1", "CLUSTERING");
    expect_notify(&mut a, "G1");
    assert_eq!(ids(&consumer_list(&mut a, "G1")), vec!["10.0.0.1@a"]);

    let mut b = broker.connect();
    heartbeat(&mut b, "10.0.0.2@b", "G1", "CLUSTERING");
    expect_notify(&mut a, "G1");
    expect_notify(&mut b, "G1");
    assert_eq!(
        ids(&consumer_list(&mut a, "G1")),
        vec!["10.0.0.1@a", "10.0.0.2@b"]
    );

    // A repeated heartbeat of a known member changes nothing and notifies nobody.
    heartbeat(&mut b, "10.0.0.2@b", "G1", "CLUSTERING");

    drop(b);
    expect_notify(&mut a, "G1");
    assert_eq!(ids(&consumer_list(&mut a, "G1")), vec!["10.0.0.1@a"]);
}

#[test]
fn broadcast_groups_are_never_notified() {
    let broker = Broker::start(&[]);
    let mut a = broker.connect();
    heartbeat(&mut a, "c1", "GB", "BROADCASTING");
    let mut b = broker.connect();
    heartbeat(&mut b, "c2", "GB", "BROADCASTING");
    // The next frame a sees must be the answer to its own request, not a notification.
    let response = consumer_list(&mut a, "GB");
    assert_eq!(ids(&response), vec!["c1", "c2"]);
}

#[test]
fn an_unknown_group_has_no_consumers() {
    let broker = Broker::start(&[]);
    let response = consumer_list(&mut broker.connect(), "NOBODY");
    assert_eq!(response.code, response_code::SYSTEM_ERROR);
    assert_eq!(
        response.remark.as_deref(),
        Some("no consumer for this group, NOBODY")
    );
}

#[test]
fn unregister_removes_the_member_and_notifies_the_rest() {
    let broker = Broker::start(&[]);
    let mut a = broker.connect();
    heartbeat(&mut a, "ca", "G2", "CLUSTERING");
    expect_notify(&mut a, "G2");
    let mut b = broker.connect();
    heartbeat(&mut b, "cb", "G2", "CLUSTERING");
    expect_notify(&mut a, "G2");
    expect_notify(&mut b, "G2");
    let response = b.call(request(
        request_code::UNREGISTER_CLIENT,
        &[
            ("clientID", "cb"),
            ("producerGroup", ""),
            ("consumerGroup", "G2"),
        ],
    ));
    assert_eq!(response.code, response_code::SUCCESS);
    expect_notify(&mut a, "G2");
    assert_eq!(ids(&consumer_list(&mut a, "G2")), vec!["ca"]);
}

#[test]
fn heartbeat_creates_the_retry_topic_and_connection_list_reports_the_group() {
    let broker = Broker::start(&[]);
    let mut a = broker.connect();
    heartbeat(&mut a, "ca", "G3", "CLUSTERING");
    let response = a.call(request(request_code::GET_ALL_TOPIC_CONFIG, &[]));
    assert_eq!(response.code, response_code::SUCCESS);
    let topics = TopicConfigSerializeWrapper::decode(&response.body).unwrap();
    let retry = topics
        .topic_config_table
        .get("%RETRY%G3")
        .expect("retry topic");
    assert_eq!((retry.read_queue_nums, retry.write_queue_nums), (1, 1));

    let response = a.call(request(
        request_code::GET_CONSUMER_CONNECTION_LIST,
        &[("consumerGroup", "G3")],
    ));
    assert_eq!(
        response.code,
        response_code::SUCCESS,
        "{:?}",
        response.remark
    );
    let connections = ConsumerConnection::decode(&response.body).unwrap();
    assert_eq!(connections.connection_set.len(), 1);
    assert_eq!(connections.connection_set[0].client_id, "ca");
    assert!(connections.subscription_table.contains_key("T1"));

    let response = a.call(request(
        request_code::GET_CONSUMER_CONNECTION_LIST,
        &[("consumerGroup", "OFFLINE")],
    ));
    assert_eq!(response.code, response_code::CONSUMER_NOT_ONLINE);
}

#[test]
fn admin_creates_and_deletes_topics() {
    let broker = Broker::start(&[]);
    let mut admin = broker.connect();
    let response = admin.call(request(
        request_code::UPDATE_AND_CREATE_TOPIC,
        &[
            ("topic", "AdminTopic"),
            ("defaultTopic", "TBW102"),
            ("readQueueNums", "8"),
            ("writeQueueNums", "8"),
            ("perm", "6"),
            ("topicFilterType", "SINGLE_TAG"),
            ("order", "false"),
        ],
    ));
    assert_eq!(
        response.code,
        response_code::SUCCESS,
        "{:?}",
        response.remark
    );
    let all = |admin: &mut TestClient| {
        let response = admin.call(request(request_code::GET_ALL_TOPIC_CONFIG, &[]));
        TopicConfigSerializeWrapper::decode(&response.body).unwrap()
    };
    assert_eq!(
        all(&mut admin).topic_config_table["AdminTopic"].read_queue_nums,
        8
    );
    let response = admin.call(request(
        request_code::UPDATE_AND_CREATE_TOPIC,
        &[
            ("topic", "bad topic!"),
            ("defaultTopic", "TBW102"),
            ("readQueueNums", "8"),
            ("writeQueueNums", "8"),
            ("perm", "6"),
            ("topicFilterType", "SINGLE_TAG"),
            ("order", "false"),
        ],
    ));
    assert_eq!(response.code, response_code::INVALID_PARAMETER);

    let response = admin.call(request(
        request_code::DELETE_TOPIC_IN_BROKER,
        &[("topic", "AdminTopic")],
    ));
    assert_eq!(response.code, response_code::SUCCESS);
    assert!(!all(&mut admin)
        .topic_config_table
        .contains_key("AdminTopic"));
}

#[test]
fn runtime_info_has_the_keys_mqadmin_reads() {
    let broker = Broker::start(&[]);
    let response = broker
        .connect()
        .call(request(request_code::GET_BROKER_RUNTIME_INFO, &[]));
    assert_eq!(response.code, response_code::SUCCESS);
    let table = ringmq_protocol::body::KvTable::decode(&response.body)
        .unwrap()
        .table;
    for key in [
        "msgPutTotalTodayNow",
        "msgGetTotalTodayNow",
        "putTps",
        "brokerVersionDesc",
    ] {
        assert!(table.contains_key(key), "missing {key}");
    }
}

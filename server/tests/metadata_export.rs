//! The metadata tables a slave copies from its master (and mqadmin exports), read whole:
//! GET_ALL_CONSUMER_OFFSET gathers every shard's committed offsets into one
//! `consumerOffset.json`-shaped table; GET_ALL_DELAY_OFFSET answers the (empty) delay table;
//! GET_ALL_SUBSCRIPTIONGROUP_CONFIG the consumer-group configs, which heartbeats create and
//! UPDATE_AND_CREATE_SUBSCRIPTIONGROUP / DELETE_SUBSCRIPTIONGROUP change.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use ringmq_protocol::body::{
    ConsumerOffsetSerializeWrapper, DelayOffsetSerializeWrapper, JsonBody, SubscriptionGroupConfig,
    SubscriptionGroupWrapper,
};
use ringmq_protocol::codes::{request_code, response_code};
use support::{pull_request, request, send_request, Broker, TestClient};

#[test]
fn all_consumer_offsets_of_every_shard_come_back_in_one_table() {
    let broker = Broker::start(&["--shards", "2"]);
    let mut client = broker.connect();
    // Queues 0..4 of two topics: with two shards they live on both.
    for topic in ["ExportA", "ExportB"] {
        for queue_id in 0..4 {
            let sent = client.call(send_request(topic, queue_id, "", b"x"));
            assert_eq!(sent.code, response_code::SUCCESS, "{:?}", sent.remark);
            let offset = (10 + queue_id).to_string();
            let committed = client.call(request(
                request_code::UPDATE_CONSUMER_OFFSET,
                &[
                    ("consumerGroup", "ExportGroup"),
                    ("topic", topic),
                    ("queueId", &queue_id.to_string()),
                    ("commitOffset", &offset),
                ],
            ));
            assert_eq!(
                committed.code,
                response_code::SUCCESS,
                "{:?}",
                committed.remark
            );
        }
    }
    let answer = client.call(request(request_code::GET_ALL_CONSUMER_OFFSET, &[]));
    assert_eq!(answer.code, response_code::SUCCESS, "{:?}", answer.remark);
    let table = ConsumerOffsetSerializeWrapper::decode(&answer.body).unwrap();
    for topic in ["ExportA", "ExportB"] {
        let queues = &table.offset_table[&format!("{topic}@ExportGroup")];
        let expected: std::collections::BTreeMap<i32, i64> =
            (0..4).map(|q| (q, i64::from(10 + q))).collect();
        assert_eq!(queues, &expected, "{topic}");
    }

    let delay = client.call(request(request_code::GET_ALL_DELAY_OFFSET, &[]));
    assert_eq!(delay.code, response_code::SUCCESS, "{:?}", delay.remark);
    let delay = DelayOffsetSerializeWrapper::decode(&delay.body).unwrap();
    assert!(delay.offset_table.is_empty());
}

fn subscription_groups(client: &mut TestClient) -> SubscriptionGroupWrapper {
    let answer = client.call(request(request_code::GET_ALL_SUBSCRIPTIONGROUP_CONFIG, &[]));
    assert_eq!(answer.code, response_code::SUCCESS, "{:?}", answer.remark);
    SubscriptionGroupWrapper::decode(&answer.body).unwrap()
}

#[test]
fn subscription_groups_are_created_by_heartbeats_changed_by_admin_and_persist() {
    let broker = Broker::start(&[]);
    let mut client = broker.connect();
    let heartbeat = r#"{"clientID":"127.0.0.1@sg","producerDataSet":[],
        "consumerDataSet":[{"groupName":"SgGroup","consumeType":"CONSUME_PASSIVELY",
        "messageModel":"CLUSTERING","consumeFromWhere":"CONSUME_FROM_LAST_OFFSET",
        "unitMode":false,"subscriptionDataSet":[{"classFilterMode":false,"topic":"SgTopic",
        "subString":"*","tagsSet":[],"codeSet":[],"subVersion":1,"expressionType":"TAG"}]}]}"#;
    let answer = client
        .call(request(request_code::HEART_BEAT, &[]).with_body(heartbeat.as_bytes().to_vec()));
    assert_eq!(answer.code, response_code::SUCCESS, "{:?}", answer.remark);
    let table = subscription_groups(&mut client);
    let created = &table.subscription_group_table["SgGroup"];
    assert!(created.consume_enable);
    assert_eq!(created.retry_max_times, 16);

    // An operator stops the group: its pulls are refused as RocketMQ refuses them.
    let sent = client.call(send_request("SgTopic", 0, "", b"x"));
    assert_eq!(sent.code, response_code::SUCCESS, "{:?}", sent.remark);
    let mut stopped = SubscriptionGroupConfig::new("SgGroup");
    stopped.consume_enable = false;
    let answer = client.call(
        request(request_code::UPDATE_AND_CREATE_SUBSCRIPTIONGROUP, &[])
            .with_body(stopped.encode().unwrap()),
    );
    assert_eq!(answer.code, response_code::SUCCESS, "{:?}", answer.remark);
    let pulled = client.call(pull_request("SgGroup", "SgTopic", 0, 0, 0));
    assert_eq!(
        pulled.code,
        response_code::NO_PERMISSION,
        "{:?}",
        pulled.remark
    );

    // A config created by admin alone, and the stopped one, survive a restart.
    let other = SubscriptionGroupConfig::new("AdminGroup");
    let answer = client.call(
        request(request_code::UPDATE_AND_CREATE_SUBSCRIPTIONGROUP, &[])
            .with_body(other.encode().unwrap()),
    );
    assert_eq!(answer.code, response_code::SUCCESS, "{:?}", answer.remark);
    drop(client);
    let (_, store) = broker.terminate();
    let broker = Broker::start_on_store(store, &[]);
    let mut client = broker.connect();
    let table = subscription_groups(&mut client);
    assert!(!table.subscription_group_table["SgGroup"].consume_enable);
    assert!(table.subscription_group_table.contains_key("AdminGroup"));

    let answer = client.call(request(
        request_code::DELETE_SUBSCRIPTIONGROUP,
        &[("groupName", "AdminGroup")],
    ));
    assert_eq!(answer.code, response_code::SUCCESS, "{:?}", answer.remark);
    assert!(!subscription_groups(&mut client)
        .subscription_group_table
        .contains_key("AdminGroup"));
    let bad = client.call(
        request(request_code::UPDATE_AND_CREATE_SUBSCRIPTIONGROUP, &[])
            .with_body(b"{not json".to_vec()),
    );
    assert_eq!(bad.code, response_code::SYSTEM_ERROR);
}

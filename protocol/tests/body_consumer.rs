//! Consumer-group and queue-lock bodies.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};

use ringmq_protocol::body::{
    Connection, ConsumeFromWhere, ConsumeType, ConsumerConnection, ConsumerListBody, JsonBody,
    LockBatchRequestBody, LockBatchResponseBody, MessageModel, MessageQueue, SubscriptionData,
    UnlockBatchRequestBody,
};

#[test]
fn consumer_list_has_the_java_shape_and_round_trips() {
    let body = ConsumerListBody {
        consumer_id_list: vec!["cid1".to_owned(), "192.0.2.2@28806".to_owned()],
    };
    let bytes = body.encode().unwrap();
    assert_eq!(bytes, br#"{"consumerIdList":["cid1","192.0.2.2@28806"]}"#);
    assert_eq!(ConsumerListBody::decode(&bytes).unwrap(), body);
}

#[test]
fn lock_request_from_protocol_reference_decodes() {
    let body = br#"{"consumerGroup":"cg","clientId":"cid","onlyThisBroker":false,"mqSet":[{"topic":"T","brokerName":"broker-a","queueId":0},{"brokerName":"broker-a","queueId":1,"topic":"T"}]}"#;
    let req = LockBatchRequestBody::decode(body).unwrap();
    assert_eq!(req.consumer_group, "cg");
    assert_eq!(req.client_id, "cid");
    assert!(!req.only_this_broker);
    assert_eq!(
        req.mq_set,
        BTreeSet::from([
            MessageQueue::new("T", "broker-a", 0),
            MessageQueue::new("T", "broker-a", 1)
        ])
    );
}

#[test]
fn lock_bodies_round_trip() {
    let mq_set = BTreeSet::from([
        MessageQueue::new("T", "b", 3),
        MessageQueue::new("T", "a", 1),
    ]);
    let lock = LockBatchRequestBody {
        consumer_group: "cg".to_owned(),
        client_id: "cid".to_owned(),
        only_this_broker: true,
        mq_set: mq_set.clone(),
    };
    assert_eq!(
        LockBatchRequestBody::decode(&lock.encode().unwrap()).unwrap(),
        lock
    );
    let unlock = UnlockBatchRequestBody {
        consumer_group: "cg".to_owned(),
        client_id: "cid".to_owned(),
        only_this_broker: false,
        mq_set: mq_set.clone(),
    };
    assert_eq!(
        UnlockBatchRequestBody::decode(&unlock.encode().unwrap()).unwrap(),
        unlock
    );
    let response = LockBatchResponseBody {
        lock_ok_mq_set: mq_set,
    };
    let bytes = response.encode().unwrap();
    assert!(bytes.starts_with(br#"{"lockOKMQSet":[{"topic":"T","brokerName":"a","queueId":1}"#));
    assert_eq!(LockBatchResponseBody::decode(&bytes).unwrap(), response);
}

#[test]
fn consumer_connection_round_trips_with_enum_names() {
    let conn = ConsumerConnection {
        connection_set: vec![Connection {
            client_id: "cid".to_owned(),
            client_addr: "127.0.0.1:50000".to_owned(),
            language: "JAVA".to_owned(),
            version: 479,
        }],
        subscription_table: BTreeMap::from([(
            "T".to_owned(),
            SubscriptionData {
                topic: "T".to_owned(),
                sub_string: "*".to_owned(),
                sub_version: 1,
                ..SubscriptionData::default()
            },
        )]),
        consume_type: ConsumeType::ConsumePassively,
        message_model: MessageModel::Clustering,
        consume_from_where: ConsumeFromWhere::ConsumeFromFirstOffset,
    };
    let bytes = conn.encode().unwrap();
    let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(json["consumeType"], "CONSUME_PASSIVELY");
    assert_eq!(json["consumeFromWhere"], "CONSUME_FROM_FIRST_OFFSET");
    assert_eq!(json["connectionSet"][0]["version"], 479);
    assert_eq!(ConsumerConnection::decode(&bytes).unwrap(), conn);
}

//! HEART_BEAT bodies: every captured client heartbeat decodes, Java-style and
//! integer-enum forms agree, and our encoding is what the Java client sends.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ringmq_protocol::body::{
    ConsumeFromWhere, ConsumeType, ConsumerData, HeartbeatData, JsonBody, MessageModel,
    ProducerData, SubscriptionData,
};

const FIXTURES: &str = include_str!("fixtures/client-requests.jsonl");

/// (client, body) of every captured code-34 request that has a body.
fn captured_heartbeats() -> Vec<(String, String)> {
    FIXTURES
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
        .filter(|req| req["header"]["code"] == 34)
        .filter_map(|req| {
            let body = req.get("body")?.as_str()?.to_owned();
            Some((req["client"].as_str().unwrap().to_owned(), body))
        })
        .collect()
}

fn captured(client: &str) -> HeartbeatData {
    let (_, body) = captured_heartbeats()
        .into_iter()
        .find(|(c, _)| c == client)
        .unwrap();
    HeartbeatData::decode(body.as_bytes()).unwrap()
}

#[test]
fn every_captured_heartbeat_decodes() {
    let heartbeats = captured_heartbeats();
    assert!(heartbeats.len() >= 2, "fixture lost its heartbeats");
    for (client, body) in heartbeats {
        let hb = HeartbeatData::decode(body.as_bytes())
            .unwrap_or_else(|e| panic!("client {client}: {e:?}"));
        assert!(!hb.client_id.is_empty(), "client {client}");
        assert!(!hb.consumer_data_set.is_empty(), "client {client}");
    }
}

#[test]
fn integer_enum_heartbeat_decodes_to_named_values() {
    let hb = captured("a");
    assert_eq!(hb.client_id, "27684-127.0.0.1@DEFAULT");
    assert!(
        hb.producer_data_set.is_empty(),
        "missing array reads as empty"
    );
    let group = &hb.consumer_data_set[0];
    assert_eq!(group.group_name, "CG_CAP");
    assert_eq!(group.consume_type, ConsumeType::ConsumePassively);
    assert_eq!(group.message_model, MessageModel::Clustering);
    assert_eq!(
        group.consume_from_where,
        ConsumeFromWhere::ConsumeFromLastOffset
    );
    assert!(!group.unit_mode);
}

#[test]
fn string_sub_version_and_missing_sets_decode() {
    let hb = captured("a");
    let subs = &hb.consumer_data_set[0].subscription_data_set;
    assert_eq!(subs.len(), 2);
    let retry = &subs[0];
    assert_eq!(retry.topic, "%RETRY%CG_CAP");
    assert_eq!(retry.sub_string, "*");
    assert_eq!(retry.sub_version, 1_795_502_332_779);
    assert!(retry.tags_set.is_empty() && retry.code_set.is_empty());
    assert_eq!(
        retry.expression_type, "TAG",
        "missing expressionType is TAG"
    );
    let tagged = &subs[1];
    assert_eq!(tagged.topic, "T_CAP");
    assert_eq!(tagged.tags_set, ["tagA", "tagB"]);
    assert_eq!(tagged.code_set, [0, 0]);
}

#[test]
fn named_enum_heartbeat_decodes() {
    let hb = captured("b");
    assert_eq!(hb.client_id, "192.0.2.2@28806");
    assert_eq!(
        hb.producer_data_set,
        [ProducerData {
            group_name: "PG_ONS".to_owned()
        }]
    );
    let group = &hb.consumer_data_set[0];
    assert_eq!(group.group_name, "CG_ONS");
    assert_eq!(group.consume_type, ConsumeType::ConsumePassively);
    assert_eq!(group.message_model, MessageModel::Clustering);
    assert_eq!(
        group.consume_from_where,
        ConsumeFromWhere::ConsumeFromLastOffset
    );
    let tagged = &group.subscription_data_set[0];
    assert_eq!(tagged.topic, "T_CAP");
    assert_eq!(tagged.code_set, [3_552_231, 3_552_232]);
    assert_eq!(tagged.sub_version, 1_795_502_423_289);
    assert_eq!(group.subscription_data_set[1].topic, "%RETRY%CG_ONS");
    assert_eq!(hb.heartbeat_fingerprint, None);
    assert_eq!(hb.without_sub, None);
}

#[test]
fn java_client_heartbeat_from_protocol_reference_decodes() {
    let body = br#"{"clientID":"192.168.1.10@12345#1715000000000",
 "producerDataSet":[{"groupName":"CLIENT_INNER_PRODUCER"},{"groupName":"pg1"}],
 "consumerDataSet":[{"groupName":"cg1","consumeType":"CONSUME_PASSIVELY","messageModel":"CLUSTERING",
   "consumeFromWhere":"CONSUME_FROM_LAST_OFFSET","unitMode":false,
   "subscriptionDataSet":[
     {"classFilterMode":false,"topic":"TopicTest","subString":"TagA || TagB","tagsSet":["TagA","TagB"],
      "codeSet":[2598919,2598920],"subVersion":1715000000123,"expressionType":"TAG"},
     {"classFilterMode":false,"topic":"%RETRY%cg1","subString":"*","tagsSet":[],"codeSet":[],
      "subVersion":1715000000124,"expressionType":"TAG"}]}],
 "heartbeatFingerprint":0,"withoutSub":false}"#;
    let hb = HeartbeatData::decode(body).unwrap();
    assert_eq!(hb.producer_data_set.len(), 2);
    assert_eq!(hb.heartbeat_fingerprint, Some(0));
    assert_eq!(hb.without_sub, Some(false));
    let sub = &hb.consumer_data_set[0].subscription_data_set[0];
    assert_eq!(sub.code_set, [2_598_919, 2_598_920]);
    assert_eq!(sub.sub_version, 1_715_000_000_123);
}

#[test]
fn enum_ordinals_match_java_declaration_order() {
    let ordinals = |text: &str| {
        let body = format!(r#"{{"clientID":"c","consumerDataSet":[{{"groupName":"g",{text}}}]}}"#);
        HeartbeatData::decode(body.as_bytes())
            .unwrap()
            .consumer_data_set[0]
            .clone()
    };
    let g = ordinals(r#""consumeType":0,"messageModel":0,"consumeFromWhere":4"#);
    assert_eq!(g.consume_type, ConsumeType::ConsumeActively);
    assert_eq!(g.message_model, MessageModel::Broadcasting);
    assert_eq!(
        g.consume_from_where,
        ConsumeFromWhere::ConsumeFromFirstOffset
    );
    let g = ordinals(r#""consumeType":"2","consumeFromWhere":5"#);
    assert_eq!(g.consume_type, ConsumeType::ConsumePop);
    assert_eq!(g.consume_from_where, ConsumeFromWhere::ConsumeFromTimestamp);
    for (i, v) in ConsumeFromWhere::ALL.iter().enumerate() {
        assert_eq!(v.ordinal() as usize, i);
        assert_eq!(ConsumeFromWhere::from_ordinal(i as u64), Some(*v));
    }
}

#[test]
fn out_of_range_ordinal_is_an_error() {
    let body = br#"{"clientID":"c","consumerDataSet":[{"groupName":"g","consumeType":3}]}"#;
    assert!(HeartbeatData::decode(body).is_err());
    let body =
        br#"{"clientID":"c","consumerDataSet":[{"groupName":"g","messageModel":"SOMETIMES"}]}"#;
    assert!(HeartbeatData::decode(body).is_err());
}

#[test]
fn null_collections_and_string_scalars_read_leniently() {
    let body = br#"{"clientID":"c","producerDataSet":null,"consumerDataSet":[{"groupName":"g","unitMode":"false","subscriptionDataSet":[{"topic":"T","subString":"*","tagsSet":null,"codeSet":null,"subVersion":"7","expressionType":null}]}]}"#;
    let hb = HeartbeatData::decode(body).unwrap();
    assert!(hb.producer_data_set.is_empty());
    let group = &hb.consumer_data_set[0];
    assert!(!group.unit_mode);
    let sub = &group.subscription_data_set[0];
    assert!(sub.tags_set.is_empty() && sub.code_set.is_empty());
    assert_eq!(sub.sub_version, 7);
    // A Java null String reads as empty; the broker treats empty as TAG.
    assert_eq!(sub.expression_type, "");
}

#[test]
fn garbage_body_is_an_error_not_a_panic() {
    assert!(HeartbeatData::decode(b"\x00\x01").is_err());
    assert!(HeartbeatData::decode(b"[]").is_err());
}

#[test]
fn encoding_writes_enum_names_and_every_array() {
    let hb = HeartbeatData {
        client_id: "10.0.0.1@1".to_owned(),
        producer_data_set: vec![],
        consumer_data_set: vec![ConsumerData {
            group_name: "g".to_owned(),
            consume_type: ConsumeType::ConsumeActively,
            message_model: MessageModel::Broadcasting,
            consume_from_where: ConsumeFromWhere::ConsumeFromTimestamp,
            subscription_data_set: vec![SubscriptionData {
                topic: "T".to_owned(),
                sub_string: "*".to_owned(),
                sub_version: 5,
                ..SubscriptionData::default()
            }],
            unit_mode: false,
        }],
        heartbeat_fingerprint: None,
        without_sub: None,
    };
    let json: serde_json::Value = serde_json::from_slice(&hb.encode().unwrap()).unwrap();
    assert_eq!(json["clientID"], "10.0.0.1@1");
    assert_eq!(json["producerDataSet"], serde_json::json!([]));
    let group = &json["consumerDataSet"][0];
    assert_eq!(group["consumeType"], "CONSUME_ACTIVELY");
    assert_eq!(group["messageModel"], "BROADCASTING");
    assert_eq!(group["consumeFromWhere"], "CONSUME_FROM_TIMESTAMP");
    let sub = &group["subscriptionDataSet"][0];
    assert_eq!(sub["expressionType"], "TAG");
    assert_eq!(sub["tagsSet"], serde_json::json!([]));
    assert_eq!(sub["subVersion"], 5);
    assert!(json.get("heartbeatFingerprint").is_none());
}

#[test]
fn heartbeat_round_trips() {
    for (_, body) in captured_heartbeats() {
        let hb = HeartbeatData::decode(body.as_bytes()).unwrap();
        let again = HeartbeatData::decode(&hb.encode().unwrap()).unwrap();
        assert_eq!(again, hb);
    }
}

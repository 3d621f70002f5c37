use ringmq_protocol::body::{ConsumerData, JsonBody, ProducerData};

use super::*;

const TIMEOUT: u64 = CHANNEL_EXPIRED_TIMEOUT_MS;

fn conn(shard_id: usize, connection_id: u64) -> ConnectionRef {
    ConnectionRef {
        shard_id,
        connection_id,
    }
}

fn channel() -> ClientChannel {
    ClientChannel {
        language: "JAVA".into(),
        version: 479,
        remote_addr: "127.0.0.1:50000".into(),
    }
}

fn sub(topic: &str, sub_string: &str, sub_version: i64) -> SubscriptionData {
    SubscriptionData {
        topic: topic.into(),
        sub_string: sub_string.into(),
        sub_version,
        ..SubscriptionData::default()
    }
}

fn consumer(group: &str, model: MessageModel, subs: Vec<SubscriptionData>) -> HeartbeatData {
    HeartbeatData {
        client_id: format!("10.0.0.1@{group}-client"),
        consumer_data_set: vec![ConsumerData {
            group_name: group.into(),
            message_model: model,
            subscription_data_set: subs,
            ..ConsumerData::default()
        }],
        ..HeartbeatData::default()
    }
}

fn with_client_id(mut data: HeartbeatData, client_id: &str) -> HeartbeatData {
    data.client_id = client_id.into();
    data
}

fn targets(group: &str, conns: &[ConnectionRef]) -> Vec<NotifyTarget> {
    conns
        .iter()
        .map(|c| NotifyTarget {
            shard_id: c.shard_id,
            connection_id: c.connection_id,
            group: group.into(),
        })
        .collect()
}

fn cg1(subs: Vec<SubscriptionData>) -> HeartbeatData {
    consumer("cg1", MessageModel::Clustering, subs)
}

#[test]
fn first_heartbeat_notifies_the_new_member() {
    let groups = ConsumerGroups::new();
    let out = groups.heartbeat(conn(0, 1), &channel(), &cg1(vec![sub("T", "*", 1)]), 0);
    assert_eq!(out.notify, targets("cg1", &[conn(0, 1)]));
}

#[test]
fn a_new_connection_notifies_every_member_including_itself() {
    let groups = ConsumerGroups::new();
    groups.heartbeat(conn(0, 1), &channel(), &cg1(vec![sub("T", "*", 1)]), 0);
    let second = with_client_id(cg1(vec![sub("T", "*", 1)]), "10.0.0.2@x");
    let out = groups.heartbeat(conn(1, 7), &channel(), &second, 5);
    assert_eq!(out.notify, targets("cg1", &[conn(0, 1), conn(1, 7)]));
}

#[test]
fn a_repeated_heartbeat_does_not_notify() {
    let groups = ConsumerGroups::new();
    let data = cg1(vec![sub("T", "*", 1)]);
    groups.heartbeat(conn(0, 1), &channel(), &data, 0);
    let out = groups.heartbeat(conn(0, 1), &channel(), &data, 30_000);
    assert!(out.notify.is_empty());
}

#[test]
fn an_added_topic_notifies() {
    let groups = ConsumerGroups::new();
    groups.heartbeat(conn(0, 1), &channel(), &cg1(vec![sub("T", "*", 1)]), 0);
    let out = groups.heartbeat(
        conn(0, 1),
        &channel(),
        &cg1(vec![sub("T", "*", 1), sub("U", "*", 2)]),
        1,
    );
    assert_eq!(out.notify, targets("cg1", &[conn(0, 1)]));
    assert!(groups.subscription("cg1", "U").is_some());
}

#[test]
fn a_removed_topic_notifies_and_disappears() {
    let groups = ConsumerGroups::new();
    groups.heartbeat(
        conn(0, 1),
        &channel(),
        &cg1(vec![sub("T", "*", 1), sub("U", "*", 1)]),
        0,
    );
    let out = groups.heartbeat(conn(0, 1), &channel(), &cg1(vec![sub("T", "*", 1)]), 1);
    assert_eq!(out.notify, targets("cg1", &[conn(0, 1)]));
    assert!(groups.subscription("cg1", "U").is_none());
    assert_eq!(groups.subscribed_topics("cg1"), vec!["T".to_owned()]);
}

#[test]
fn a_newer_sub_version_replaces_without_notifying() {
    let groups = ConsumerGroups::new();
    groups.heartbeat(conn(0, 1), &channel(), &cg1(vec![sub("T", "TagA", 1)]), 0);
    let out = groups.heartbeat(conn(0, 1), &channel(), &cg1(vec![sub("T", "TagB", 2)]), 1);
    assert!(out.notify.is_empty());
    let current = groups.subscription("cg1", "T").unwrap();
    assert_eq!(
        (current.sub_string.as_str(), current.sub_version),
        ("TagB", 2)
    );
}

#[test]
fn an_older_or_equal_sub_version_is_ignored() {
    let groups = ConsumerGroups::new();
    groups.heartbeat(conn(0, 1), &channel(), &cg1(vec![sub("T", "TagA", 5)]), 0);
    groups.heartbeat(conn(0, 1), &channel(), &cg1(vec![sub("T", "TagB", 5)]), 1);
    groups.heartbeat(conn(0, 1), &channel(), &cg1(vec![sub("T", "TagC", 4)]), 2);
    assert_eq!(groups.subscription("cg1", "T").unwrap().sub_string, "TagA");
}

#[test]
fn the_latest_heartbeat_sets_the_group_modes() {
    let groups = ConsumerGroups::new();
    groups.heartbeat(conn(0, 1), &channel(), &cg1(vec![]), 0);
    let mut data = cg1(vec![]);
    data.consumer_data_set[0].consume_type = ConsumeType::ConsumeActively;
    data.consumer_data_set[0].consume_from_where = ConsumeFromWhere::ConsumeFromFirstOffset;
    groups.heartbeat(conn(0, 1), &channel(), &data, 1);
    let info = groups.connection_info("cg1").unwrap();
    assert_eq!(info.consume_type, ConsumeType::ConsumeActively);
    assert_eq!(
        info.consume_from_where,
        ConsumeFromWhere::ConsumeFromFirstOffset
    );
}

#[test]
fn broadcasting_groups_never_notify() {
    let groups = ConsumerGroups::new();
    let data = consumer("bc", MessageModel::Broadcasting, vec![sub("T", "*", 1)]);
    assert!(groups
        .heartbeat(conn(0, 1), &channel(), &data, 0)
        .notify
        .is_empty());
    let second = with_client_id(data.clone(), "other");
    assert!(groups
        .heartbeat(conn(0, 2), &channel(), &second, 0)
        .notify
        .is_empty());
    assert!(groups.connection_closed(conn(0, 1)).is_empty());
    assert_eq!(groups.message_model("bc"), Some(MessageModel::Broadcasting));
    assert_eq!(groups.consumer_ids("bc"), Some(vec!["other".to_owned()]));
}

#[test]
fn heartbeat_returns_the_retry_topic_of_each_consumer_group() {
    let groups = ConsumerGroups::new();
    let mut data = cg1(vec![]);
    data.consumer_data_set.push(ConsumerData {
        group_name: "cg2".into(),
        ..ConsumerData::default()
    });
    data.consumer_data_set.push(ConsumerData {
        group_name: "bad group".into(),
        ..ConsumerData::default()
    });
    let out = groups.heartbeat(conn(0, 1), &channel(), &data, 0);
    assert_eq!(out.retry_topics, vec!["%RETRY%cg1", "%RETRY%cg2"]);
}

#[test]
fn producer_groups_register_without_notifying() {
    let groups = ConsumerGroups::new();
    let data = HeartbeatData {
        client_id: "p1".into(),
        producer_data_set: vec![ProducerData {
            group_name: "pg".into(),
        }],
        ..HeartbeatData::default()
    };
    let out = groups.heartbeat(conn(2, 3), &channel(), &data, 0);
    assert!(out.notify.is_empty() && out.retry_topics.is_empty());
    let members = groups.producer_connections("pg").unwrap();
    assert_eq!(members.len(), 1);
    assert_eq!(members[0].0, conn(2, 3));
    assert_eq!(members[0].1.client_id, "p1");
    assert!(groups.consumer_ids("pg").is_none());

    assert!(groups
        .unregister(conn(2, 3), "p1", Some("pg"), Some(""))
        .is_empty());
    assert!(groups.producer_connections("pg").is_none());
}

#[test]
fn unregister_removes_the_member_and_notifies_the_rest() {
    let groups = ConsumerGroups::new();
    groups.heartbeat(conn(0, 1), &channel(), &with_client_id(cg1(vec![]), "a"), 0);
    groups.heartbeat(conn(0, 2), &channel(), &with_client_id(cg1(vec![]), "b"), 0);
    let notify = groups.unregister(conn(0, 1), "a", None, Some("cg1"));
    assert_eq!(notify, targets("cg1", &[conn(0, 2)]));
    assert_eq!(groups.consumer_ids("cg1"), Some(vec!["b".to_owned()]));
}

#[test]
fn unregister_by_client_id_from_another_connection() {
    let groups = ConsumerGroups::new();
    groups.heartbeat(conn(0, 1), &channel(), &with_client_id(cg1(vec![]), "a"), 0);
    groups.heartbeat(conn(0, 2), &channel(), &with_client_id(cg1(vec![]), "b"), 0);
    let notify = groups.unregister(conn(1, 99), "a", Some(""), Some("cg1"));
    assert_eq!(notify, targets("cg1", &[conn(0, 2)]));
}

#[test]
fn unregister_with_empty_group_names_changes_nothing() {
    let groups = ConsumerGroups::new();
    groups.heartbeat(conn(0, 1), &channel(), &with_client_id(cg1(vec![]), "a"), 0);
    assert!(groups
        .unregister(conn(0, 1), "a", Some(""), Some(""))
        .is_empty());
    assert!(groups.unregister(conn(0, 1), "a", None, None).is_empty());
    assert_eq!(groups.consumer_ids("cg1"), Some(vec!["a".to_owned()]));
}

#[test]
fn the_last_member_leaving_drops_the_group() {
    let groups = ConsumerGroups::new();
    groups.heartbeat(conn(0, 1), &channel(), &cg1(vec![sub("T", "*", 1)]), 0);
    assert!(groups
        .unregister(conn(0, 1), "", None, Some("cg1"))
        .is_empty());
    assert!(groups.consumer_ids("cg1").is_none());
    assert!(groups.connection_info("cg1").is_none());
    assert!(groups.subscription("cg1", "T").is_none());
    assert!(groups.groups_subscribed_to("T").is_empty());
}

#[test]
fn connection_close_leaves_every_group_and_notifies_their_members() {
    let groups = ConsumerGroups::new();
    let mut both = with_client_id(cg1(vec![]), "a");
    both.consumer_data_set.push(ConsumerData {
        group_name: "cg2".into(),
        ..ConsumerData::default()
    });
    both.producer_data_set.push(ProducerData {
        group_name: "pg".into(),
    });
    groups.heartbeat(conn(0, 1), &channel(), &both, 0);
    groups.heartbeat(conn(1, 1), &channel(), &with_client_id(cg1(vec![]), "b"), 0);

    let mut notify = groups.connection_closed(conn(0, 1));
    notify.sort();
    assert_eq!(notify, targets("cg1", &[conn(1, 1)]));
    assert!(groups.consumer_ids("cg2").is_none());
    assert!(groups.producer_connections("pg").is_none());
    assert_eq!(groups.consumer_ids("cg1"), Some(vec!["b".to_owned()]));
}

#[test]
fn members_expire_after_120_seconds_of_silence() {
    let groups = ConsumerGroups::new();
    groups.heartbeat(
        conn(0, 1),
        &channel(),
        &with_client_id(cg1(vec![]), "old"),
        0,
    );
    groups.heartbeat(
        conn(0, 2),
        &channel(),
        &with_client_id(cg1(vec![]), "new"),
        60_000,
    );

    let early = groups.expire(TIMEOUT - 1, TIMEOUT);
    assert_eq!(early, Expired::default());

    let expired = groups.expire(TIMEOUT, TIMEOUT);
    assert_eq!(expired.connections, vec![conn(0, 1)]);
    assert_eq!(expired.notify, targets("cg1", &[conn(0, 2)]));
    assert_eq!(groups.consumer_ids("cg1"), Some(vec!["new".to_owned()]));
}

#[test]
fn a_heartbeat_postpones_expiry() {
    let groups = ConsumerGroups::new();
    let data = cg1(vec![]);
    groups.heartbeat(conn(0, 1), &channel(), &data, 0);
    groups.heartbeat(conn(0, 1), &channel(), &data, 100_000);
    assert!(groups.expire(150_000, TIMEOUT).connections.is_empty());
    assert_eq!(
        groups.expire(220_000, TIMEOUT).connections,
        vec![conn(0, 1)]
    );
}

#[test]
fn expiry_timeout_is_a_parameter_and_covers_producers() {
    let groups = ConsumerGroups::new();
    let data = HeartbeatData {
        client_id: "p".into(),
        producer_data_set: vec![ProducerData {
            group_name: "pg".into(),
        }],
        ..HeartbeatData::default()
    };
    groups.heartbeat(conn(0, 5), &channel(), &data, 1_000);
    assert!(groups.expire(1_999, 1_000).connections.is_empty());
    let expired = groups.expire(2_000, 1_000);
    assert_eq!(expired.connections, vec![conn(0, 5)]);
    assert!(expired.notify.is_empty());
    assert!(groups.producer_connections("pg").is_none());
}

#[test]
fn consumer_ids_are_the_exact_client_id_strings() {
    let groups = ConsumerGroups::new();
    let ids = [
        "192.168.1.10@12345#1715000000000",
        "27684-127.0.0.1@DEFAULT",
    ];
    for (i, id) in ids.iter().enumerate() {
        groups.heartbeat(
            conn(0, i as u64),
            &channel(),
            &with_client_id(cg1(vec![]), id),
            0,
        );
    }
    let mut expected: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
    expected.sort();
    assert_eq!(groups.consumer_ids("cg1"), Some(expected));
    assert_eq!(groups.consumer_ids("unknown"), None);
}

#[test]
fn a_client_id_on_two_connections_is_listed_once() {
    let groups = ConsumerGroups::new();
    let data = with_client_id(cg1(vec![]), "same");
    groups.heartbeat(conn(0, 1), &channel(), &data, 0);
    groups.heartbeat(conn(0, 2), &channel(), &data, 0);
    assert_eq!(groups.consumer_ids("cg1"), Some(vec!["same".to_owned()]));
}

#[test]
fn connection_info_lists_members_and_subscriptions() {
    let groups = ConsumerGroups::new();
    let data = with_client_id(cg1(vec![sub("T", "TagA || TagB", 1)]), "a");
    let channel = ClientChannel {
        language: "CPP".into(),
        version: 63,
        remote_addr: "10.1.2.3:40000".into(),
    };
    groups.heartbeat(conn(0, 1), &channel, &data, 0);
    let info = groups.connection_info("cg1").unwrap();
    assert_eq!(
        info.connection_set,
        vec![Connection {
            client_id: "a".into(),
            client_addr: "10.1.2.3:40000".into(),
            language: "CPP".into(),
            version: 63,
        }]
    );
    assert_eq!(info.subscription_table["T"].tags_set, vec!["TagA", "TagB"]);
    assert_eq!(info.message_model, MessageModel::Clustering);
    assert!(groups.connection_info("nobody").is_none());
}

#[test]
fn tag_subscriptions_get_codes_from_their_tags() {
    let groups = ConsumerGroups::new();
    let mut wrong = sub("T", " TagA ||TagB|| ", 1);
    wrong.tags_set = vec!["TagA".into(), "TagB".into()];
    wrong.code_set = vec![0, 0];
    groups.heartbeat(conn(0, 1), &channel(), &cg1(vec![wrong]), 0);
    let current = groups.subscription("cg1", "T").unwrap();
    assert_eq!(current.tags_set, vec!["TagA", "TagB"]);
    assert_eq!(
        current.code_set,
        vec![java_string_hash("TagA"), java_string_hash("TagB")]
    );
}

#[test]
fn star_and_blank_subscriptions_have_no_tags() {
    let groups = ConsumerGroups::new();
    groups.heartbeat(
        conn(0, 1),
        &channel(),
        &cg1(vec![sub("T", "*", 1), sub("U", "", 1)]),
        0,
    );
    for topic in ["T", "U"] {
        let current = groups.subscription("cg1", topic).unwrap();
        assert_eq!(current.sub_string, "*");
        assert!(current.tags_set.is_empty() && current.code_set.is_empty());
    }
}

#[test]
fn sql92_subscriptions_are_kept_as_sent() {
    let groups = ConsumerGroups::new();
    let sql = SubscriptionData {
        expression_type: "SQL92".into(),
        ..sub("T", "a > 5", 1)
    };
    groups.heartbeat(conn(0, 1), &channel(), &cg1(vec![sql.clone()]), 0);
    assert_eq!(*groups.subscription("cg1", "T").unwrap(), sql);
}

#[test]
fn groups_subscribed_to_a_topic_are_listed() {
    let groups = ConsumerGroups::new();
    groups.heartbeat(conn(0, 1), &channel(), &cg1(vec![sub("T", "*", 1)]), 0);
    let other = consumer("cg0", MessageModel::Clustering, vec![sub("T", "*", 1)]);
    groups.heartbeat(conn(0, 2), &channel(), &other, 0);
    let unrelated = consumer("cg9", MessageModel::Clustering, vec![sub("U", "*", 1)]);
    groups.heartbeat(conn(0, 3), &channel(), &unrelated, 0);
    assert_eq!(groups.groups_subscribed_to("T"), vec!["cg0", "cg1"]);
}

/// Heartbeat bodies two real non-Java clients sent (protocol/tests/fixtures).
fn fixture_heartbeats() -> Vec<(String, i32, HeartbeatData)> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../protocol/tests/fixtures/client-requests.jsonl"
    );
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter_map(|line| {
            let request: serde_json::Value = serde_json::from_str(line).unwrap();
            (request["header"]["code"] == 34).then(|| {
                let body = request["body"].as_str().unwrap();
                (
                    request["header"]["language"].as_str().unwrap().to_owned(),
                    i32::try_from(request["header"]["version"].as_i64().unwrap()).unwrap(),
                    HeartbeatData::decode(body.as_bytes()).unwrap(),
                )
            })
        })
        .collect()
}

#[test]
fn captured_client_heartbeats_register_their_groups() {
    let beats = fixture_heartbeats();
    assert_eq!(beats.len(), 2);
    let groups = ConsumerGroups::new();
    for (i, (language, version, data)) in beats.iter().enumerate() {
        let channel = ClientChannel {
            language: language.clone(),
            version: *version,
            remote_addr: format!("127.0.0.1:{}", 40000 + i),
        };
        let out = groups.heartbeat(conn(i, 1), &channel, data, 0);
        let group = &data.consumer_data_set[0].group_name;
        assert_eq!(out.notify, targets(group, &[conn(i, 1)]));
        assert_eq!(out.retry_topics, vec![format!("%RETRY%{group}")]);
        assert_eq!(
            groups.consumer_ids(group),
            Some(vec![data.client_id.clone()])
        );
        let info = groups.connection_info(group).unwrap();
        assert_eq!(info.connection_set[0].language, *language);
        assert_eq!(info.message_model, MessageModel::Clustering);
        assert_eq!(info.consume_type, ConsumeType::ConsumePassively);

        let tagged = groups.subscription(group, "T_CAP").unwrap();
        assert_eq!(tagged.tags_set, vec!["tagA", "tagB"]);
        assert_eq!(tagged.code_set, vec![3552231, 3552232]);
        assert!([1795502332779, 1795502423289].contains(&tagged.sub_version));
        assert!(groups
            .subscription(group, &format!("%RETRY%{group}"))
            .is_some());
    }
    assert_eq!(
        groups.consumer_ids("CG_CAP"),
        Some(vec!["27684-127.0.0.1@DEFAULT".to_owned()])
    );
    assert_eq!(
        groups.consumer_ids("CG_ONS"),
        Some(vec!["192.0.2.2@28806".to_owned()])
    );
    assert!(groups.producer_connections("PG_ONS").is_some());
    assert_eq!(
        groups.groups_subscribed_to("T_CAP"),
        vec!["CG_CAP", "CG_ONS"]
    );
}

#[test]
fn a_captured_heartbeat_repeated_does_not_notify() {
    let groups = ConsumerGroups::new();
    for (i, (_, _, data)) in fixture_heartbeats().iter().enumerate() {
        groups.heartbeat(conn(0, i as u64), &channel(), data, 0);
        let again = groups.heartbeat(conn(0, i as u64), &channel(), data, 30_000);
        assert!(again.notify.is_empty());
    }
}

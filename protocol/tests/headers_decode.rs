//! Decoding rules of typed headers, one behaviour per test: required fields, invalid numbers,
//! Java defaults, empty strings, noise keys, and the V1/V2 send spellings.

// Test helpers outside #[test] functions may fail loudly too.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use ringmq_protocol::body::TopicFilterType;
use ringmq_protocol::codes::request_code;
use ringmq_protocol::command::ExtFields;
use ringmq_protocol::ext::{CommandHeader, HeaderError, InvalidValue};
use ringmq_protocol::headers::*;

fn ext(pairs: &[(&str, &str)]) -> ExtFields {
    pairs
        .iter()
        .map(|&(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn pull_ext() -> ExtFields {
    ext(&[
        ("consumerGroup", "cg"),
        ("topic", "T"),
        ("queueId", "1"),
        ("queueOffset", "10"),
        ("maxMsgNums", "32"),
        ("sysFlag", "3"),
        ("commitOffset", "9"),
        ("suspendTimeoutMillis", "15000"),
        ("subVersion", "1700000000000"),
    ])
}

fn send_v1_ext() -> ExtFields {
    ext(&[
        ("producerGroup", "pg"),
        ("topic", "T"),
        ("defaultTopic", "TBW102"),
        ("defaultTopicQueueNums", "4"),
        ("queueId", "2"),
        ("sysFlag", "0"),
        ("bornTimestamp", "1700000000001"),
        ("flag", "0"),
    ])
}

fn send_v2_ext() -> ExtFields {
    ext(&[
        ("a", "pg"),
        ("b", "T"),
        ("c", "TBW102"),
        ("d", "4"),
        ("e", "2"),
        ("f", "0"),
        ("g", "1700000000001"),
        ("h", "0"),
    ])
}

/// Removing any one required key from a valid map fails with `MissingField` naming that key.
fn assert_each_required_field_is_checked<H: CommandHeader + std::fmt::Debug>(
    valid: &ExtFields,
    required: &[&'static str],
) {
    H::from_ext(valid).expect("the valid map decodes");
    for &field in required {
        let mut without = valid.clone();
        assert!(without.remove(field).is_some(), "{field} is in the map");
        assert_eq!(
            H::from_ext(&without).unwrap_err(),
            HeaderError::MissingField { field },
            "removing {field}"
        );
    }
}

/// Replacing the value of `field` with text fails with `InvalidField` naming that key.
fn assert_number_is_checked<H: CommandHeader + std::fmt::Debug>(
    valid: &ExtFields,
    field: &'static str,
) {
    let mut bad = valid.clone();
    bad.insert(field.to_owned(), "twelve".to_owned());
    match H::from_ext(&bad).unwrap_err() {
        HeaderError::InvalidField {
            field: reported,
            value,
            source: InvalidValue::Integer(_),
        } => {
            assert_eq!(reported, field);
            assert_eq!(value, "twelve");
        }
        other => panic!("expected InvalidField for {field}, got {other:?}"),
    }
}

#[test]
fn pull_request_requires_every_java_notnull_field() {
    assert_each_required_field_is_checked::<PullMessageRequestHeader>(
        &pull_ext(),
        &[
            "consumerGroup",
            "topic",
            "queueId",
            "queueOffset",
            "maxMsgNums",
            "sysFlag",
            "commitOffset",
            "suspendTimeoutMillis",
            "subVersion",
        ],
    );
}

#[test]
fn pull_request_rejects_non_numeric_numbers() {
    for field in [
        "queueId",
        "queueOffset",
        "maxMsgNums",
        "sysFlag",
        "commitOffset",
        "suspendTimeoutMillis",
        "subVersion",
    ] {
        assert_number_is_checked::<PullMessageRequestHeader>(&pull_ext(), field);
    }
}

#[test]
fn pull_request_keeps_bname_and_ignores_other_noise_keys() {
    let mut noisy = pull_ext();
    for (k, v) in [
        ("bname", "broker-a"),
        ("ns", "namespace"),
        ("nsd", "true"),
        ("oway", "false"),
        ("lo", "true"),
        ("AccessKey", ""),
        ("Signature", "sig="),
        ("OnsChannel", "ALIYUN"),
        ("proxyFrowardClientId", "x"),
    ] {
        noisy.insert(k.to_owned(), v.to_owned());
    }
    let quiet = PullMessageRequestHeader::from_ext(&pull_ext()).unwrap();
    let decoded = PullMessageRequestHeader::from_ext(&noisy).unwrap();
    assert_eq!(decoded.broker_name.as_deref(), Some("broker-a"));
    assert_eq!(
        PullMessageRequestHeader {
            broker_name: None,
            ..decoded
        },
        quiet
    );
}

#[test]
fn pull_response_requires_the_four_offsets() {
    let valid = ext(&[
        ("suggestWhichBrokerId", "0"),
        ("nextBeginOffset", "5"),
        ("minOffset", "0"),
        ("maxOffset", "5"),
    ]);
    assert_each_required_field_is_checked::<PullMessageResponseHeader>(
        &valid,
        &[
            "suggestWhichBrokerId",
            "nextBeginOffset",
            "minOffset",
            "maxOffset",
        ],
    );
}

#[test]
fn pull_response_always_writes_the_four_offsets_and_omits_absent_options() {
    let header = PullMessageResponseHeader {
        suggest_which_broker_id: 0,
        next_begin_offset: 7,
        min_offset: 0,
        max_offset: 7,
        offset_delta: None,
        topic_sys_flag: None,
        group_sys_flag: None,
        forbidden_type: None,
    };
    assert_eq!(
        header.to_ext(),
        ext(&[
            ("suggestWhichBrokerId", "0"),
            ("nextBeginOffset", "7"),
            ("minOffset", "0"),
            ("maxOffset", "7"),
        ])
    );
}

#[test]
fn send_v1_requires_every_java_notnull_field() {
    assert_each_required_field_is_checked::<SendMessageRequestHeader>(
        &send_v1_ext(),
        &[
            "producerGroup",
            "topic",
            "defaultTopic",
            "defaultTopicQueueNums",
            "queueId",
            "sysFlag",
            "bornTimestamp",
            "flag",
        ],
    );
}

#[test]
fn send_v2_missing_field_names_the_short_key() {
    let mut v2 = send_v2_ext();
    v2.remove("g");
    assert_eq!(
        SendMessageRequestHeader::from_v2_ext(&v2),
        Err(HeaderError::MissingField { field: "g" })
    );
}

#[test]
fn send_v2_and_v1_of_the_same_request_decode_equal() {
    let v1 = SendMessageRequestHeader::from_ext(&send_v1_ext()).unwrap();
    let v2 = SendMessageRequestHeader::from_v2_ext(&send_v2_ext()).unwrap();
    assert_eq!(v1, v2);
    assert_eq!(v1.queue_id, 2);
    assert_eq!(v1.born_timestamp_ms, 1_700_000_000_001);
    assert!(!v1.batch && !v1.unit_mode);
}

#[test]
fn send_v2_maps_every_optional_short_key() {
    let mut v2 = send_v2_ext();
    for (k, v) in [
        ("i", "TAGS\u{1}t\u{2}"),
        ("j", "3"),
        ("k", "true"),
        ("l", "16"),
        ("m", "true"),
        ("n", "broker-a"),
    ] {
        v2.insert(k.to_owned(), v.to_owned());
    }
    let header = SendMessageRequestHeader::from_v2_ext(&v2).unwrap();
    assert_eq!(header.properties.as_deref(), Some("TAGS\u{1}t\u{2}"));
    assert_eq!(header.reconsume_times, Some(3));
    assert!(header.unit_mode);
    assert_eq!(header.max_reconsume_times, Some(16));
    assert!(header.batch);
    assert_eq!(header.broker_name.as_deref(), Some("broker-a"));

    let v1 = header.to_ext();
    assert_eq!(
        v1.get("properties").map(String::as_str),
        Some("TAGS\u{1}t\u{2}")
    );
    assert_eq!(v1.get("reconsumeTimes").map(String::as_str), Some("3"));
    assert_eq!(v1.get("maxReconsumeTimes").map(String::as_str), Some("16"));
    assert_eq!(v1.get("batch").map(String::as_str), Some("true"));
    assert_eq!(v1.get("bname").map(String::as_str), Some("broker-a"));
}

#[test]
fn send_code_selects_the_spelling() {
    let from_v1 =
        SendMessageRequestHeader::decode_for_code(request_code::SEND_MESSAGE, &send_v1_ext());
    let from_v2 =
        SendMessageRequestHeader::decode_for_code(request_code::SEND_MESSAGE_V2, &send_v2_ext());
    let batch =
        SendMessageRequestHeader::decode_for_code(request_code::SEND_BATCH_MESSAGE, &send_v2_ext());
    assert_eq!(from_v1, from_v2);
    assert_eq!(from_v2, batch);
    assert!(
        SendMessageRequestHeader::decode_for_code(request_code::SEND_MESSAGE, &send_v2_ext())
            .is_err(),
        "SEND_MESSAGE never reads short keys"
    );
}

#[test]
fn v2_code_with_long_keys_is_read_as_v1() {
    let decoded =
        SendMessageRequestHeader::decode_for_code(request_code::SEND_MESSAGE_V2, &send_v1_ext());
    assert_eq!(decoded, SendMessageRequestHeader::from_ext(&send_v1_ext()));
    assert!(decoded.is_ok());
}

#[test]
fn send_response_writes_required_fields_as_strings() {
    let header = SendMessageResponseHeader {
        msg_id: "7F00000100002A9F0000000000000000".to_owned(),
        queue_id: 3,
        queue_offset: 42,
        transaction_id: None,
        batch_uniq_id: None,
        recall_handle: None,
    };
    assert_eq!(
        header.to_ext(),
        ext(&[
            ("msgId", "7F00000100002A9F0000000000000000"),
            ("queueId", "3"),
            ("queueOffset", "42"),
        ])
    );
}

#[test]
fn offset_response_requires_offset() {
    assert_eq!(
        OffsetResponseHeader::from_ext(&ext(&[])),
        Err(HeaderError::MissingField { field: "offset" })
    );
    assert_eq!(
        OffsetResponseHeader { offset: -1 }.to_ext(),
        ext(&[("offset", "-1")])
    );
}

#[test]
fn get_max_offset_committed_defaults_to_true() {
    let base = ext(&[("topic", "T"), ("queueId", "0")]);
    assert!(
        GetMaxOffsetRequestHeader::from_ext(&base)
            .unwrap()
            .committed
    );
    let mut not_committed = base.clone();
    not_committed.insert("committed".to_owned(), "false".to_owned());
    assert!(
        !GetMaxOffsetRequestHeader::from_ext(&not_committed)
            .unwrap()
            .committed
    );
}

#[test]
fn search_offset_boundary_defaults_to_lower_and_reads_any_case() {
    let base = ext(&[
        ("topic", "T"),
        ("queueId", "0"),
        ("timestamp", "1700000000000"),
    ]);
    let boundary = |value: Option<&str>| {
        let mut map = base.clone();
        if let Some(value) = value {
            map.insert("boundaryType".to_owned(), value.to_owned());
        }
        SearchOffsetRequestHeader::from_ext(&map)
            .unwrap()
            .boundary_type
    };
    assert_eq!(boundary(None), BoundaryType::Lower);
    assert_eq!(boundary(Some("upper")), BoundaryType::Upper);
    assert_eq!(boundary(Some("UPPER")), BoundaryType::Upper);
    assert_eq!(boundary(Some("lower")), BoundaryType::Lower);
    assert_eq!(boundary(Some("sideways")), BoundaryType::Lower);
}

#[test]
fn query_consumer_offset_set_zero_is_tri_state() {
    let base = ext(&[("consumerGroup", "cg"), ("topic", "T"), ("queueId", "0")]);
    let read = |value: Option<&str>| {
        let mut map = base.clone();
        if let Some(value) = value {
            map.insert("setZeroIfNotFound".to_owned(), value.to_owned());
        }
        QueryConsumerOffsetRequestHeader::from_ext(&map)
            .unwrap()
            .set_zero_if_not_found
    };
    assert_eq!(read(None), None);
    assert_eq!(read(Some("false")), Some(false));
    assert_eq!(read(Some("true")), Some(true));
}

#[test]
fn unregister_client_reads_empty_groups_as_absent() {
    let header = UnregisterClientRequestHeader::from_ext(&ext(&[
        ("clientID", "127.0.0.1@1"),
        ("producerGroup", ""),
        ("consumerGroup", "cg"),
    ]))
    .unwrap();
    assert_eq!(header.producer_group, None);
    assert_eq!(header.consumer_group.as_deref(), Some("cg"));
    assert_eq!(
        UnregisterClientRequestHeader::from_ext(&ext(&[("consumerGroup", "cg")])),
        Err(HeaderError::MissingField { field: "clientID" })
    );
}

#[test]
fn send_back_requires_offset_group_and_delay_level() {
    let valid = ext(&[("offset", "4096"), ("group", "cg"), ("delayLevel", "0")]);
    assert_each_required_field_is_checked::<ConsumerSendMsgBackRequestHeader>(
        &valid,
        &["offset", "group", "delayLevel"],
    );
    let header = ConsumerSendMsgBackRequestHeader::from_ext(&valid).unwrap();
    assert_eq!(header.physical_offset, 4096);
    assert!(!header.unit_mode);
    assert_eq!(header.max_reconsume_times, None);
}

#[test]
fn view_message_needs_only_the_physical_offset() {
    let header = ViewMessageRequestHeader::from_ext(&ext(&[("offset", "123")])).unwrap();
    assert_eq!(header.physical_offset, 123);
    assert_eq!(header.topic, None);
    assert_number_is_checked::<ViewMessageRequestHeader>(&ext(&[("offset", "1")]), "offset");
}

#[test]
fn register_broker_defaults_compressed_false_and_crc_zero() {
    let valid = ext(&[
        ("brokerName", "broker-a"),
        ("brokerAddr", "10.0.0.1:10911"),
        ("clusterName", "DefaultCluster"),
        ("haServerAddr", "10.0.0.1:10912"),
        ("brokerId", "0"),
    ]);
    assert_each_required_field_is_checked::<RegisterBrokerRequestHeader>(
        &valid,
        &[
            "brokerName",
            "brokerAddr",
            "clusterName",
            "haServerAddr",
            "brokerId",
        ],
    );
    let header = RegisterBrokerRequestHeader::from_ext(&valid).unwrap();
    assert!(!header.compressed);
    assert_eq!(header.body_crc32, 0);
    assert_eq!(header.heartbeat_timeout_millis, None);
    assert_number_is_checked::<RegisterBrokerRequestHeader>(&valid, "bodyCrc32");
}

#[test]
fn register_broker_response_for_a_master_is_empty() {
    assert_eq!(
        RegisterBrokerResponseHeader::default().to_ext(),
        ExtFields::new()
    );
}

#[test]
fn no_header_ignores_everything_and_writes_nothing() {
    let acl_only = ext(&[
        ("AccessKey", ""),
        ("Signature", "s"),
        ("OnsChannel", "ALIYUN"),
    ]);
    assert_eq!(NoHeader::from_ext(&acl_only), Ok(NoHeader));
    assert!(NoHeader.to_ext().is_empty());
}

#[test]
fn write_ext_keeps_unrelated_keys_already_present() {
    let mut map = ext(&[("MSG_REGION", "DefaultRegion")]);
    OffsetResponseHeader { offset: 1 }.write_ext(&mut map);
    assert_eq!(
        map,
        ext(&[("MSG_REGION", "DefaultRegion"), ("offset", "1")])
    );
}

fn create_topic_ext() -> ExtFields {
    ext(&[
        ("topic", "T"),
        ("defaultTopic", "TBW102"),
        ("readQueueNums", "8"),
        ("writeQueueNums", "8"),
        ("perm", "6"),
        ("topicFilterType", "SINGLE_TAG"),
        ("order", "false"),
    ])
}

#[test]
fn create_topic_requires_every_java_notnull_field() {
    assert_each_required_field_is_checked::<CreateTopicRequestHeader>(
        &create_topic_ext(),
        &[
            "topic",
            "defaultTopic",
            "readQueueNums",
            "writeQueueNums",
            "perm",
            "topicFilterType",
            "order",
        ],
    );
    for field in ["readQueueNums", "writeQueueNums", "perm"] {
        assert_number_is_checked::<CreateTopicRequestHeader>(&create_topic_ext(), field);
    }
}

#[test]
fn create_topic_rejects_an_unknown_filter_type() {
    let mut bad = create_topic_ext();
    bad.insert("topicFilterType".to_owned(), "REGEX".to_owned());
    assert!(matches!(
        CreateTopicRequestHeader::from_ext(&bad),
        Err(HeaderError::InvalidField {
            field: "topicFilterType",
            source: InvalidValue::UnknownName { .. },
            ..
        })
    ));
}

#[test]
fn create_topic_reads_mqadmin_defaults() {
    let mut map = create_topic_ext();
    map.insert("attributes".to_owned(), "+message.type=NORMAL".to_owned());
    let header = CreateTopicRequestHeader::from_ext(&map).unwrap();
    assert_eq!(header.read_queue_nums, 8);
    assert_eq!(header.perm, 6);
    assert_eq!(header.topic_filter_type, TopicFilterType::SingleTag);
    assert!(!header.order);
    assert!(!header.force, "absent force is false");
    assert_eq!(header.attributes.as_deref(), Some("+message.type=NORMAL"));
    assert_eq!(
        header.to_ext().get("topicFilterType").map(String::as_str),
        Some("SINGLE_TAG")
    );
}

#[test]
fn consume_stats_topic_list_splits_on_commas() {
    let header = GetConsumeStatsRequestHeader::from_ext(&ext(&[
        ("consumerGroup", "cg"),
        ("topicList", "T1, T2,,T3"),
    ]))
    .unwrap();
    assert_eq!(header.topic, None);
    assert_eq!(header.topics().collect::<Vec<_>>(), ["T1", "T2", "T3"]);
}

#[test]
fn reset_offset_queue_defaults_to_all_queues() {
    let valid = ext(&[
        ("topic", "T"),
        ("group", "cg"),
        ("timestamp", "1700000000000"),
        ("isForce", "true"),
    ]);
    assert_each_required_field_is_checked::<ResetOffsetRequestHeader>(
        &valid,
        &["topic", "group", "timestamp", "isForce"],
    );
    let header = ResetOffsetRequestHeader::from_ext(&valid).unwrap();
    assert_eq!(header.queue_id, -1);
    assert_eq!(header.offset, None);
    assert!(header.is_force);
}

#[test]
fn get_all_topic_config_response_may_be_empty() {
    assert_eq!(
        GetAllTopicConfigResponseHeader::from_ext(&ExtFields::new()),
        Ok(GetAllTopicConfigResponseHeader {
            total_topic_num: None
        })
    );
}

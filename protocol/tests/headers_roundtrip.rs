//! Property tests for every typed header: encoding then decoding is the identity, and decoding
//! arbitrary string maps never panics and always yields a value that re-encodes to itself.

// Test helpers outside #[test] functions may fail loudly too.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use proptest::collection::btree_map;
use proptest::option;
use proptest::prelude::*;
use ringmq_protocol::body::TopicFilterType;
use ringmq_protocol::command::ExtFields;
use ringmq_protocol::ext::{CommandHeader, HeaderError};
use ringmq_protocol::headers::*;

// ---------------------------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------------------------

/// Any string: required string fields are kept verbatim, even empty.
fn any_str() -> impl Strategy<Value = String> {
    any::<String>()
}

/// Optional strings: an empty or blank value reads back as `None` by design, so generated
/// `Some` values are never blank.
fn opt_str() -> impl Strategy<Value = Option<String>> {
    option::of(any::<String>().prop_filter("non-blank", |s| !s.trim().is_empty()))
}

fn send_request() -> impl Strategy<Value = SendMessageRequestHeader> {
    (
        (any_str(), any_str(), any_str(), any::<i32>(), any::<i32>()),
        (any::<i32>(), any::<i64>(), any::<i32>(), opt_str()),
        (
            option::of(any::<i32>()),
            any::<bool>(),
            option::of(any::<i32>()),
            any::<bool>(),
            opt_str(),
        ),
    )
        .prop_map(
            |(
                (producer_group, topic, default_topic, default_topic_queue_nums, queue_id),
                (sys_flag, born_timestamp_ms, flag, properties),
                (reconsume_times, unit_mode, max_reconsume_times, batch, broker_name),
            )| SendMessageRequestHeader {
                producer_group,
                topic,
                default_topic,
                default_topic_queue_nums,
                queue_id,
                sys_flag,
                born_timestamp_ms,
                flag,
                properties,
                reconsume_times,
                unit_mode,
                max_reconsume_times,
                batch,
                broker_name,
            },
        )
}

fn send_response() -> impl Strategy<Value = SendMessageResponseHeader> {
    (
        any_str(),
        any::<i32>(),
        any::<i64>(),
        opt_str(),
        opt_str(),
        opt_str(),
    )
        .prop_map(
            |(msg_id, queue_id, queue_offset, transaction_id, batch_uniq_id, recall_handle)| {
                SendMessageResponseHeader {
                    msg_id,
                    queue_id,
                    queue_offset,
                    transaction_id,
                    batch_uniq_id,
                    recall_handle,
                }
            },
        )
}

fn pull_request() -> impl Strategy<Value = PullMessageRequestHeader> {
    (
        (
            any_str(),
            any_str(),
            any::<i32>(),
            any::<i64>(),
            any::<i32>(),
        ),
        (any::<i32>(), any::<i64>(), any::<i64>(), opt_str()),
        (any::<i64>(), opt_str(), option::of(any::<i32>()), opt_str()),
    )
        .prop_map(
            |(
                (consumer_group, topic, queue_id, queue_offset, max_msg_nums),
                (sys_flag, commit_offset, suspend_timeout_millis, subscription),
                (sub_version, expression_type, max_msg_bytes, broker_name),
            )| PullMessageRequestHeader {
                consumer_group,
                topic,
                queue_id,
                queue_offset,
                max_msg_nums,
                sys_flag: PullSysFlag(sys_flag),
                commit_offset,
                suspend_timeout_millis,
                subscription,
                sub_version,
                expression_type,
                max_msg_bytes,
                broker_name,
            },
        )
}

fn pull_response() -> impl Strategy<Value = PullMessageResponseHeader> {
    (
        (any::<i64>(), any::<i64>(), any::<i64>(), any::<i64>()),
        (
            option::of(any::<i64>()),
            option::of(any::<i32>()),
            option::of(any::<i32>()),
            option::of(any::<i32>()),
        ),
    )
        .prop_map(
            |(
                (suggest_which_broker_id, next_begin_offset, min_offset, max_offset),
                (offset_delta, topic_sys_flag, group_sys_flag, forbidden_type),
            )| PullMessageResponseHeader {
                suggest_which_broker_id,
                next_begin_offset,
                min_offset,
                max_offset,
                offset_delta,
                topic_sys_flag,
                group_sys_flag,
                forbidden_type,
            },
        )
}

fn query_consumer_offset_request() -> impl Strategy<Value = QueryConsumerOffsetRequestHeader> {
    (
        any_str(),
        any_str(),
        any::<i32>(),
        option::of(any::<bool>()),
    )
        .prop_map(|(consumer_group, topic, queue_id, set_zero_if_not_found)| {
            QueryConsumerOffsetRequestHeader {
                consumer_group,
                topic,
                queue_id,
                set_zero_if_not_found,
            }
        })
}

fn offset_response() -> impl Strategy<Value = OffsetResponseHeader> {
    any::<i64>().prop_map(|offset| OffsetResponseHeader { offset })
}

fn update_consumer_offset_request() -> impl Strategy<Value = UpdateConsumerOffsetRequestHeader> {
    (any_str(), any_str(), any::<i32>(), any::<i64>()).prop_map(
        |(consumer_group, topic, queue_id, commit_offset)| UpdateConsumerOffsetRequestHeader {
            consumer_group,
            topic,
            queue_id,
            commit_offset,
        },
    )
}

fn get_max_offset_request() -> impl Strategy<Value = GetMaxOffsetRequestHeader> {
    (any_str(), any::<i32>(), any::<bool>()).prop_map(|(topic, queue_id, committed)| {
        GetMaxOffsetRequestHeader {
            topic,
            queue_id,
            committed,
        }
    })
}

fn queue_request() -> impl Strategy<Value = QueueRequestHeader> {
    (any_str(), any::<i32>()).prop_map(|(topic, queue_id)| QueueRequestHeader { topic, queue_id })
}

fn search_offset_request() -> impl Strategy<Value = SearchOffsetRequestHeader> {
    (
        any_str(),
        any::<i32>(),
        any::<i64>(),
        prop_oneof![Just(BoundaryType::Lower), Just(BoundaryType::Upper)],
    )
        .prop_map(
            |(topic, queue_id, timestamp_ms, boundary_type)| SearchOffsetRequestHeader {
                topic,
                queue_id,
                timestamp_ms,
                boundary_type,
            },
        )
}

fn earliest_msg_storetime_response() -> impl Strategy<Value = GetEarliestMsgStoretimeResponseHeader>
{
    any::<i64>().prop_map(|timestamp_ms| GetEarliestMsgStoretimeResponseHeader { timestamp_ms })
}

fn view_message_request() -> impl Strategy<Value = ViewMessageRequestHeader> {
    (opt_str(), any::<i64>()).prop_map(|(topic, physical_offset)| ViewMessageRequestHeader {
        topic,
        physical_offset,
    })
}

fn send_back_request() -> impl Strategy<Value = ConsumerSendMsgBackRequestHeader> {
    (
        any::<i64>(),
        any_str(),
        any::<i32>(),
        opt_str(),
        opt_str(),
        any::<bool>(),
        option::of(any::<i32>()),
    )
        .prop_map(
            |(
                physical_offset,
                group,
                delay_level,
                origin_msg_id,
                origin_topic,
                unit_mode,
                max_reconsume_times,
            )| ConsumerSendMsgBackRequestHeader {
                physical_offset,
                group,
                delay_level,
                origin_msg_id,
                origin_topic,
                unit_mode,
                max_reconsume_times,
            },
        )
}

fn unregister_client_request() -> impl Strategy<Value = UnregisterClientRequestHeader> {
    (any_str(), opt_str(), opt_str()).prop_map(|(client_id, producer_group, consumer_group)| {
        UnregisterClientRequestHeader {
            client_id,
            producer_group,
            consumer_group,
        }
    })
}

fn consumer_group_request() -> impl Strategy<Value = ConsumerGroupRequestHeader> {
    any_str().prop_map(|consumer_group| ConsumerGroupRequestHeader { consumer_group })
}

fn route_request() -> impl Strategy<Value = GetRouteInfoRequestHeader> {
    (any_str(), option::of(any::<bool>())).prop_map(|(topic, accept_standard_json_only)| {
        GetRouteInfoRequestHeader {
            topic,
            accept_standard_json_only,
        }
    })
}

fn register_broker_request() -> impl Strategy<Value = RegisterBrokerRequestHeader> {
    (
        (any_str(), any_str(), any_str(), any_str(), any::<i64>()),
        (
            option::of(any::<i64>()),
            option::of(any::<bool>()),
            any::<bool>(),
            any::<i32>(),
        ),
    )
        .prop_map(
            |(
                (broker_name, broker_addr, cluster_name, ha_server_addr, broker_id),
                (heartbeat_timeout_millis, enable_acting_master, compressed, body_crc32),
            )| RegisterBrokerRequestHeader {
                broker_name,
                broker_addr,
                cluster_name,
                ha_server_addr,
                broker_id,
                heartbeat_timeout_millis,
                enable_acting_master,
                compressed,
                body_crc32,
            },
        )
}

fn register_broker_response() -> impl Strategy<Value = RegisterBrokerResponseHeader> {
    (opt_str(), opt_str()).prop_map(
        |(ha_server_addr, master_addr)| RegisterBrokerResponseHeader {
            ha_server_addr,
            master_addr,
        },
    )
}

fn unregister_broker_request() -> impl Strategy<Value = UnregisterBrokerRequestHeader> {
    (any_str(), any_str(), any_str(), any::<i64>()).prop_map(
        |(broker_name, broker_addr, cluster_name, broker_id)| UnregisterBrokerRequestHeader {
            broker_name,
            broker_addr,
            cluster_name,
            broker_id,
        },
    )
}

fn create_topic_request() -> impl Strategy<Value = CreateTopicRequestHeader> {
    (
        (
            any_str(),
            any_str(),
            any::<i32>(),
            any::<i32>(),
            any::<i32>(),
        ),
        (
            prop_oneof![
                Just(TopicFilterType::SingleTag),
                Just(TopicFilterType::MultiTag)
            ],
            option::of(any::<i32>()),
            any::<bool>(),
            opt_str(),
            any::<bool>(),
        ),
    )
        .prop_map(
            |(
                (topic, default_topic, read_queue_nums, write_queue_nums, perm),
                (topic_filter_type, topic_sys_flag, order, attributes, force),
            )| CreateTopicRequestHeader {
                topic,
                default_topic,
                read_queue_nums,
                write_queue_nums,
                perm,
                topic_filter_type,
                topic_sys_flag,
                order,
                attributes,
                force,
            },
        )
}

fn delete_topic_request() -> impl Strategy<Value = DeleteTopicRequestHeader> {
    (any_str(), opt_str()).prop_map(|(topic, cluster_name)| DeleteTopicRequestHeader {
        topic,
        cluster_name,
    })
}

fn consume_stats_request() -> impl Strategy<Value = GetConsumeStatsRequestHeader> {
    (any_str(), opt_str(), opt_str()).prop_map(|(consumer_group, topic, topic_list)| {
        GetConsumeStatsRequestHeader {
            consumer_group,
            topic,
            topic_list,
        }
    })
}

fn all_topic_config_response() -> impl Strategy<Value = GetAllTopicConfigResponseHeader> {
    option::of(any::<i32>())
        .prop_map(|total_topic_num| GetAllTopicConfigResponseHeader { total_topic_num })
}

fn reset_offset_request() -> impl Strategy<Value = ResetOffsetRequestHeader> {
    (
        any_str(),
        any_str(),
        any::<i32>(),
        option::of(any::<i64>()),
        any::<i64>(),
        any::<bool>(),
    )
        .prop_map(|(topic, group, queue_id, offset, timestamp_ms, is_force)| {
            ResetOffsetRequestHeader {
                topic,
                group,
                queue_id,
                offset,
                timestamp_ms,
                is_force,
            }
        })
}

// ---------------------------------------------------------------------------------------------
// Round trips
// ---------------------------------------------------------------------------------------------

macro_rules! round_trip {
    ($($test:ident: $ty:ty = $strategy:expr;)*) => {
        proptest! {
            $(
                #[test]
                fn $test(header in $strategy) {
                    let ext = header.to_ext();
                    prop_assert_eq!(<$ty as CommandHeader>::from_ext(&ext), Ok(header));
                }
            )*
        }
    };
}

round_trip! {
    send_request_round_trips_through_v1_keys: SendMessageRequestHeader = send_request();
    send_response_round_trips: SendMessageResponseHeader = send_response();
    pull_request_round_trips: PullMessageRequestHeader = pull_request();
    pull_response_round_trips: PullMessageResponseHeader = pull_response();
    query_consumer_offset_request_round_trips: QueryConsumerOffsetRequestHeader =
        query_consumer_offset_request();
    offset_response_round_trips: OffsetResponseHeader = offset_response();
    update_consumer_offset_request_round_trips: UpdateConsumerOffsetRequestHeader =
        update_consumer_offset_request();
    get_max_offset_request_round_trips: GetMaxOffsetRequestHeader = get_max_offset_request();
    queue_request_round_trips: QueueRequestHeader = queue_request();
    search_offset_request_round_trips: SearchOffsetRequestHeader = search_offset_request();
    earliest_msg_storetime_response_round_trips: GetEarliestMsgStoretimeResponseHeader =
        earliest_msg_storetime_response();
    view_message_request_round_trips: ViewMessageRequestHeader = view_message_request();
    send_back_request_round_trips: ConsumerSendMsgBackRequestHeader = send_back_request();
    unregister_client_request_round_trips: UnregisterClientRequestHeader =
        unregister_client_request();
    consumer_group_request_round_trips: ConsumerGroupRequestHeader = consumer_group_request();
    route_request_round_trips: GetRouteInfoRequestHeader = route_request();
    register_broker_request_round_trips: RegisterBrokerRequestHeader = register_broker_request();
    register_broker_response_round_trips: RegisterBrokerResponseHeader =
        register_broker_response();
    unregister_broker_request_round_trips: UnregisterBrokerRequestHeader =
        unregister_broker_request();
    create_topic_request_round_trips: CreateTopicRequestHeader = create_topic_request();
    delete_topic_request_round_trips: DeleteTopicRequestHeader = delete_topic_request();
    consume_stats_request_round_trips: GetConsumeStatsRequestHeader = consume_stats_request();
    all_topic_config_response_round_trips: GetAllTopicConfigResponseHeader =
        all_topic_config_response();
    reset_offset_request_round_trips: ResetOffsetRequestHeader = reset_offset_request();
}

proptest! {
    #[test]
    fn send_request_round_trips_through_v2_keys(header in send_request()) {
        let ext = header.to_v2_ext();
        prop_assert_eq!(SendMessageRequestHeader::from_v2_ext(&ext), Ok(header));
    }

    #[test]
    fn v1_and_v2_spellings_carry_the_same_values_under_mapped_keys(header in send_request()) {
        let v1 = header.to_ext();
        let v2 = header.to_v2_ext();
        prop_assert_eq!(v1.len(), v2.len());
        for &(v1_key, v2_key) in V1_TO_V2_KEYS {
            prop_assert_eq!(v1.get(v1_key), v2.get(v2_key), "{} / {}", v1_key, v2_key);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Arbitrary input
// ---------------------------------------------------------------------------------------------

/// Every key some header reads, so that random maps hit real fields often.
const KNOWN_KEYS: &[&str] = &[
    "producerGroup",
    "topic",
    "defaultTopic",
    "defaultTopicQueueNums",
    "queueId",
    "sysFlag",
    "bornTimestamp",
    "flag",
    "properties",
    "reconsumeTimes",
    "unitMode",
    "maxReconsumeTimes",
    "batch",
    "bname",
    "a",
    "b",
    "c",
    "d",
    "e",
    "f",
    "g",
    "h",
    "i",
    "j",
    "k",
    "l",
    "m",
    "n",
    "msgId",
    "queueOffset",
    "transactionId",
    "batchUniqId",
    "recallHandle",
    "consumerGroup",
    "maxMsgNums",
    "commitOffset",
    "suspendTimeoutMillis",
    "subscription",
    "subVersion",
    "expressionType",
    "maxMsgBytes",
    "suggestWhichBrokerId",
    "nextBeginOffset",
    "minOffset",
    "maxOffset",
    "offsetDelta",
    "topicSysFlag",
    "groupSysFlag",
    "forbiddenType",
    "setZeroIfNotFound",
    "offset",
    "committed",
    "timestamp",
    "boundaryType",
    "clientID",
    "group",
    "delayLevel",
    "originMsgId",
    "originTopic",
    "acceptStandardJsonOnly",
    "brokerName",
    "brokerAddr",
    "clusterName",
    "haServerAddr",
    "brokerId",
    "heartbeatTimeoutMillis",
    "enableActingMaster",
    "compressed",
    "bodyCrc32",
    "masterAddr",
    "readQueueNums",
    "writeQueueNums",
    "perm",
    "topicFilterType",
    "order",
    "attributes",
    "force",
    "topicList",
    "totalTopicNum",
    "isForce",
    "AccessKey",
    "Signature",
    "OnsChannel",
    "ns",
    "nsd",
    "oway",
    "lo",
];

fn arbitrary_key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::sample::select(KNOWN_KEYS).prop_map(str::to_owned),
        1 => any::<String>(),
    ]
}

fn arbitrary_value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<i128>().prop_map(|n| n.to_string()),
        any::<i32>().prop_map(|n| format!(" {n} ")),
        proptest::sample::select(
            &[
                "",
                " ",
                "true",
                "false",
                "TRUE",
                "0",
                "1",
                "-",
                "+",
                "SINGLE_TAG",
                "MULTI_TAG",
                "upper",
                "LOWER",
                "*",
            ][..]
        )
        .prop_map(str::to_owned),
    ]
}

fn arbitrary_ext() -> impl Strategy<Value = ExtFields> {
    btree_map(arbitrary_key(), arbitrary_value(), 0..24)
}

/// Decoding never panics, and whatever decodes re-encodes to a map that decodes to the same
/// value (decoding normalizes: blanks to `None`, numbers to canonical decimal).
fn decode_is_stable<H: CommandHeader + PartialEq + std::fmt::Debug>(
    ext: &ExtFields,
) -> Result<(), TestCaseError> {
    if let Ok(header) = H::from_ext(ext) {
        prop_assert_eq!(H::from_ext(&header.to_ext()), Ok(header));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn decoding_arbitrary_maps_never_panics_and_is_stable(ext in arbitrary_ext()) {
        decode_is_stable::<NoHeader>(&ext)?;
        decode_is_stable::<SendMessageRequestHeader>(&ext)?;
        decode_is_stable::<SendMessageResponseHeader>(&ext)?;
        decode_is_stable::<PullMessageRequestHeader>(&ext)?;
        decode_is_stable::<PullMessageResponseHeader>(&ext)?;
        decode_is_stable::<QueryConsumerOffsetRequestHeader>(&ext)?;
        decode_is_stable::<OffsetResponseHeader>(&ext)?;
        decode_is_stable::<UpdateConsumerOffsetRequestHeader>(&ext)?;
        decode_is_stable::<GetMaxOffsetRequestHeader>(&ext)?;
        decode_is_stable::<QueueRequestHeader>(&ext)?;
        decode_is_stable::<SearchOffsetRequestHeader>(&ext)?;
        decode_is_stable::<GetEarliestMsgStoretimeResponseHeader>(&ext)?;
        decode_is_stable::<ViewMessageRequestHeader>(&ext)?;
        decode_is_stable::<ConsumerSendMsgBackRequestHeader>(&ext)?;
        decode_is_stable::<UnregisterClientRequestHeader>(&ext)?;
        decode_is_stable::<ConsumerGroupRequestHeader>(&ext)?;
        decode_is_stable::<GetRouteInfoRequestHeader>(&ext)?;
        decode_is_stable::<RegisterBrokerRequestHeader>(&ext)?;
        decode_is_stable::<RegisterBrokerResponseHeader>(&ext)?;
        decode_is_stable::<UnregisterBrokerRequestHeader>(&ext)?;
        decode_is_stable::<CreateTopicRequestHeader>(&ext)?;
        decode_is_stable::<DeleteTopicRequestHeader>(&ext)?;
        decode_is_stable::<GetConsumeStatsRequestHeader>(&ext)?;
        decode_is_stable::<GetAllTopicConfigResponseHeader>(&ext)?;
        decode_is_stable::<ResetOffsetRequestHeader>(&ext)?;
        if let Ok(header) = SendMessageRequestHeader::from_v2_ext(&ext) {
            prop_assert_eq!(SendMessageRequestHeader::from_v2_ext(&header.to_v2_ext()), Ok(header));
        }
    }

    #[test]
    fn decode_errors_name_a_key_the_header_reads(ext in arbitrary_ext()) {
        // An error must point at a real field, so a remark built from it is actionable.
        let errors: Vec<HeaderError> = [
            PullMessageRequestHeader::from_ext(&ext).err(),
            SendMessageRequestHeader::from_ext(&ext).err(),
            SendMessageRequestHeader::from_v2_ext(&ext).err(),
            ConsumerSendMsgBackRequestHeader::from_ext(&ext).err(),
        ]
        .into_iter()
        .flatten()
        .collect();
        for error in errors {
            prop_assert!(KNOWN_KEYS.contains(&error.field()), "{}", error);
        }
    }
}

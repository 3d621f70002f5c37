//! Every request captured from real non-Java clients (tests/fixtures/client-requests.jsonl)
//! decodes into its typed header, with the values the client meant.
//!
//! The captured JSON headers carry numbers and booleans where Java sends strings; the JSON
//! header decoder coerces them to their string form before typed decoding, and this test does
//! the same coercion with serde_json.

// Test helpers outside #[test] functions may fail loudly too.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use ringmq_protocol::codes::request_code;
use ringmq_protocol::command::ExtFields;
use ringmq_protocol::ext::{CommandHeader, HeaderError};
use ringmq_protocol::headers::*;
use serde_json::Value;

const FIXTURE: &str = include_str!("fixtures/client-requests.jsonl");

/// One captured request: which client sent it, its code and its extFields as strings.
#[derive(Debug)]
struct Captured {
    client: String,
    code: i32,
    ext: ExtFields,
}

/// Scalar → its Java string form: numbers in decimal, booleans `true`/`false`, strings as is.
fn coerce(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        other => Some(other.to_string()),
    }
}

fn captured() -> Vec<Captured> {
    FIXTURE
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let record: Value = serde_json::from_str(line).expect("fixture line is JSON");
            let header = &record["header"];
            let code = header["code"].as_i64().expect("code is a number");
            let ext = header["extFields"]
                .as_object()
                .map(|fields| {
                    fields
                        .iter()
                        .filter_map(|(k, v)| coerce(v).map(|v| (k.clone(), v)))
                        .collect()
                })
                .unwrap_or_default();
            Captured {
                client: record["client"].as_str().expect("client").to_owned(),
                code: i32::try_from(code).expect("code fits i32"),
                ext,
            }
        })
        .collect()
}

/// The typed request header of each code the fixture contains.
#[derive(Debug)]
enum Request {
    Send(SendMessageRequestHeader),
    Pull(PullMessageRequestHeader),
    QueryConsumerOffset(QueryConsumerOffsetRequestHeader),
    UpdateConsumerOffset(UpdateConsumerOffsetRequestHeader),
    GetMaxOffset(GetMaxOffsetRequestHeader),
    UnregisterClient(UnregisterClientRequestHeader),
    GetConsumerListByGroup(GetConsumerListByGroupRequestHeader),
    GetRouteInfo(GetRouteInfoRequestHeader),
    /// A request whose payload is its body (HEART_BEAT, …).
    NoHeader,
}

fn decode(code: i32, ext: &ExtFields) -> Result<Request, HeaderError> {
    Ok(match code {
        request_code::SEND_MESSAGE
        | request_code::SEND_MESSAGE_V2
        | request_code::SEND_BATCH_MESSAGE => {
            Request::Send(SendMessageRequestHeader::decode_for_code(code, ext)?)
        }
        request_code::PULL_MESSAGE | request_code::LITE_PULL_MESSAGE => {
            Request::Pull(PullMessageRequestHeader::from_ext(ext)?)
        }
        request_code::QUERY_CONSUMER_OFFSET => {
            Request::QueryConsumerOffset(QueryConsumerOffsetRequestHeader::from_ext(ext)?)
        }
        request_code::UPDATE_CONSUMER_OFFSET => {
            Request::UpdateConsumerOffset(UpdateConsumerOffsetRequestHeader::from_ext(ext)?)
        }
        request_code::GET_MAX_OFFSET => {
            Request::GetMaxOffset(GetMaxOffsetRequestHeader::from_ext(ext)?)
        }
        request_code::UNREGISTER_CLIENT => {
            Request::UnregisterClient(UnregisterClientRequestHeader::from_ext(ext)?)
        }
        request_code::GET_CONSUMER_LIST_BY_GROUP => {
            Request::GetConsumerListByGroup(GetConsumerListByGroupRequestHeader::from_ext(ext)?)
        }
        request_code::GET_ROUTEINFO_BY_TOPIC => {
            Request::GetRouteInfo(GetRouteInfoRequestHeader::from_ext(ext)?)
        }
        request_code::HEART_BEAT => {
            NoHeader::from_ext(ext)?;
            Request::NoHeader
        }
        other => panic!("fixture has code {other} that this test does not route"),
    })
}

#[test]
fn fixture_is_not_empty() {
    assert!(captured().len() >= 18);
}

#[test]
fn every_captured_request_code_is_known() {
    for request in captured() {
        assert!(
            request_code::name(request.code).is_some(),
            "unknown code {}",
            request.code
        );
    }
}

#[test]
fn every_captured_request_decodes_into_its_typed_header() {
    for request in captured() {
        if let Err(error) = decode(request.code, &request.ext) {
            panic!(
                "client {} code {}: {error} in {:?}",
                request.client, request.code, request.ext
            );
        }
    }
}

/// The decoded headers of one client for one code.
fn decoded(client: &str, code: i32) -> Vec<Request> {
    captured()
        .into_iter()
        .filter(|r| r.client == client && r.code == code)
        .map(|r| decode(r.code, &r.ext).expect("decodes"))
        .collect()
}

fn only(client: &str, code: i32) -> Request {
    let mut found = decoded(client, code);
    assert_eq!(found.len(), 1, "client {client} code {code}");
    found.remove(0)
}

#[test]
fn client_a_pull_of_retry_topic_carries_push_defaults() {
    let Request::Pull(pull) = only("a", request_code::PULL_MESSAGE) else {
        panic!("not a pull");
    };
    assert_eq!(pull.consumer_group, "CG_CAP");
    assert_eq!(pull.topic, "%RETRY%CG_CAP");
    assert_eq!(pull.queue_id, 0);
    assert_eq!(pull.queue_offset, 0);
    assert_eq!(pull.sys_flag, PullSysFlag(6));
    assert!(pull
        .sys_flag
        .contains(PullSysFlag::SUSPEND | PullSysFlag::SUBSCRIPTION));
    assert_eq!(pull.max_msg_nums, 32);
    assert_eq!(pull.commit_offset, -1);
    assert_eq!(pull.suspend_timeout_millis, 15_000);
    assert_eq!(pull.subscription.as_deref(), Some("*"));
    assert_eq!(pull.sub_version, 1_795_502_332_779);
    assert_eq!(pull.expression_type, None);
}

#[test]
fn client_b_pull_with_numeric_fields_decodes_the_same_way() {
    let Request::Pull(pull) = only("b", request_code::PULL_MESSAGE) else {
        panic!("not a pull");
    };
    assert_eq!(pull.topic, "T_CAP");
    assert_eq!(pull.queue_offset, 3);
    assert_eq!(pull.commit_offset, -1);
    assert_eq!(pull.suspend_timeout_millis, 15_000);
    assert_eq!(pull.subscription.as_deref(), Some("tagA || tagB"));
    assert_eq!(pull.sub_version, 1_795_502_423_289);
}

#[test]
fn client_a_v1_send_reads_zero_booleans_as_false() {
    let Request::Send(send) = only("a", request_code::SEND_MESSAGE) else {
        panic!("not a send");
    };
    assert_eq!(send.producer_group, "PG_CAP");
    assert_eq!(send.topic, "T_CAP");
    assert_eq!(send.default_topic, "TBW102");
    assert_eq!(send.default_topic_queue_nums, 4);
    assert_eq!(send.queue_id, 0);
    assert_eq!(send.sys_flag, 0);
    assert_eq!(send.born_timestamp_ms, 1_795_502_332_775);
    assert_eq!(send.reconsume_times, Some(0));
    assert!(!send.batch, "\"batch\":\"0\" is false");
    assert!(!send.unit_mode, "\"unitMode\":\"0\" is false");
    let properties = send.properties.expect("properties");
    assert!(properties.contains("UNIQ_KEY\u{1}0100007F00007CF10000E7BD3C7D0100\u{2}"));
}

#[test]
fn client_b_v2_send_maps_short_keys() {
    let Request::Send(send) = only("b", request_code::SEND_MESSAGE_V2) else {
        panic!("not a send");
    };
    assert_eq!(send.producer_group, "PG_ONS");
    assert_eq!(send.topic, "T_CAP");
    assert_eq!(send.default_topic, "TBW102");
    assert_eq!(send.default_topic_queue_nums, 4);
    assert_eq!(send.born_timestamp_ms, 1_795_502_423_286);
    assert_eq!(
        send.properties.as_deref(),
        Some("TAGS\u{1}tagA\u{2}KEYS\u{1}k1 k2\u{2}")
    );
    assert_eq!(send.reconsume_times, Some(0));
    assert!(!send.unit_mode);
    assert!(!send.batch, "absent `m` is false");
    assert_eq!(send.max_reconsume_times, None);
}

#[test]
fn unregister_with_empty_consumer_group_reads_as_producer_only() {
    let Request::UnregisterClient(a) = only("a", request_code::UNREGISTER_CLIENT) else {
        panic!("not an unregister");
    };
    assert_eq!(a.client_id, "27684-127.0.0.1@DEFAULT");
    assert_eq!(a.producer_group.as_deref(), Some("PG_CAP"));
    assert_eq!(a.consumer_group, None);

    let Request::UnregisterClient(b) = only("b", request_code::UNREGISTER_CLIENT) else {
        panic!("not an unregister");
    };
    assert_eq!(b.producer_group, None);
    assert_eq!(b.consumer_group.as_deref(), Some("CG_ONS"));
}

#[test]
fn offset_requests_carry_group_topic_and_queue() {
    let Request::QueryConsumerOffset(query) = only("b", request_code::QUERY_CONSUMER_OFFSET) else {
        panic!("not a query");
    };
    assert_eq!(
        (
            query.consumer_group.as_str(),
            query.topic.as_str(),
            query.queue_id
        ),
        ("CG_ONS", "T_CAP", 0)
    );
    assert_eq!(query.set_zero_if_not_found, None);

    for client in ["a", "b"] {
        let Request::UpdateConsumerOffset(update) =
            only(client, request_code::UPDATE_CONSUMER_OFFSET)
        else {
            panic!("not an update");
        };
        assert_eq!(update.commit_offset, 3);
        let Request::GetMaxOffset(max) = only(client, request_code::GET_MAX_OFFSET) else {
            panic!("not a max offset");
        };
        assert!(max.committed, "absent `committed` defaults to true");
        assert_eq!(max.topic, "T_CAP");
    }
}

#[test]
fn route_and_consumer_list_requests_name_their_topic_and_group() {
    for client in ["a", "b"] {
        let Request::GetRouteInfo(route) = only(client, request_code::GET_ROUTEINFO_BY_TOPIC)
        else {
            panic!("not a route request");
        };
        assert_eq!(route.topic, "T_CAP");
        assert_eq!(route.accept_standard_json_only, None);
    }
    let Request::GetConsumerListByGroup(list) = only("a", request_code::GET_CONSUMER_LIST_BY_GROUP)
    else {
        panic!("not a consumer list request");
    };
    assert_eq!(list.consumer_group, "CG_CAP");
}

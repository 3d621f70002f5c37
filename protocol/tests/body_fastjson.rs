//! The lenient fastjson reader: the non-standard forms Java peers write, its
//! bounds, and the object-keyed map writer.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use proptest::prelude::*;
use ringmq_protocol::body::fastjson::{
    self, parse, write_object_keyed_map, Number, ParseErrorKind, Value, MAX_DEPTH,
};
use ringmq_protocol::body::MessageQueue;
use serde::Deserialize;

fn s(text: &str) -> Value {
    Value::String(text.to_owned())
}

fn int(n: i64) -> Value {
    Value::Number(Number::I64(n))
}

#[test]
fn standard_json_parses_into_ordered_entries() {
    let value = parse(br#"{"b":[1,-2.5,true,null],"a":"x"}"#).unwrap();
    assert_eq!(
        value,
        Value::Object(vec![
            (
                s("b"),
                Value::Array(vec![
                    int(1),
                    Value::Number(Number::F64(-2.5)),
                    Value::Bool(true),
                    Value::Null
                ])
            ),
            (s("a"), s("x")),
        ])
    );
}

#[test]
fn unquoted_numeric_keys_are_number_keys() {
    let value = parse(br#"{0:"10.0.0.1:10911",1:"10.0.0.2:10911"}"#).unwrap();
    assert_eq!(
        value,
        Value::Object(vec![
            (int(0), s("10.0.0.1:10911")),
            (int(1), s("10.0.0.2:10911")),
        ])
    );
}

#[test]
fn object_keys_are_kept_as_objects() {
    let value = parse(br#"{{"brokerName":"b","queueId":0,"topic":"T"}:123}"#).unwrap();
    let Value::Object(entries) = value else {
        panic!("not an object")
    };
    assert_eq!(entries.len(), 1);
    assert_eq!(
        entries[0].0,
        Value::Object(vec![
            (s("brokerName"), s("b")),
            (s("queueId"), int(0)),
            (s("topic"), s("T")),
        ])
    );
    assert_eq!(entries[0].1, int(123));
}

#[test]
fn pretty_output_with_tabs_and_newlines_parses() {
    let text = "{\n\t\"offsetTable\":{\r\n\t\t\"T@g\":{0:1532,1:1530}\n\t}\n}\n";
    let value = parse(text.as_bytes()).unwrap();
    let table = value.get("offsetTable").and_then(|t| t.get("T@g")).unwrap();
    assert_eq!(
        table,
        &Value::Object(vec![(int(0), int(1532)), (int(1), int(1530))])
    );
}

#[test]
fn bare_identifier_keys_and_single_quotes_are_accepted() {
    let value = parse(b"{topic:'T',queueId:3}").unwrap();
    assert_eq!(value.get("topic"), Some(&s("T")));
    assert_eq!(value.get("queueId"), Some(&int(3)));
}

#[test]
fn escapes_decode_including_surrogate_pairs() {
    let value = parse(br#""a\"\\\/\n\t\u00e9\ud83d\ude00\x41""#).unwrap();
    assert_eq!(value, s("a\"\\/\n\té😀A"));
}

#[test]
fn lone_surrogate_becomes_replacement_character() {
    assert_eq!(parse(br#""\ud800x""#).unwrap(), s("\u{fffd}x"));
}

#[test]
fn large_integers_stay_exact() {
    assert_eq!(
        parse(b"18446744073709551615").unwrap(),
        Value::Number(Number::U64(u64::MAX))
    );
    assert_eq!(
        parse(b"-9223372036854775808").unwrap(),
        Value::Number(Number::I64(i64::MIN))
    );
}

#[test]
fn trailing_garbage_is_a_typed_error() {
    let err = parse(b"{} x").unwrap_err();
    assert_eq!(err.kind, ParseErrorKind::TrailingCharacters);
    assert_eq!(err.offset, 3);
}

#[test]
fn truncated_input_is_a_typed_error() {
    for text in [&b"{\"a\":"[..], b"[1,", b"\"abc", b"{0", b"", b"tru"] {
        let err = parse(text).unwrap_err();
        assert_eq!(err.kind, ParseErrorKind::UnexpectedEnd, "{text:?}");
    }
}

#[test]
fn invalid_utf8_in_a_string_is_a_typed_error() {
    let err = parse(b"\"\xff\"").unwrap_err();
    assert!(matches!(err.kind, ParseErrorKind::InvalidUtf8(_)));
}

#[test]
fn unknown_escape_is_a_typed_error() {
    assert_eq!(
        parse(br#""\q""#).unwrap_err().kind,
        ParseErrorKind::InvalidEscape
    );
}

#[test]
fn depth_bomb_is_rejected_without_overflowing_the_stack() {
    let bomb = "[".repeat(1_000_000);
    let err = parse(bomb.as_bytes()).unwrap_err();
    assert_eq!(err.kind, ParseErrorKind::DepthExceeded { max: MAX_DEPTH });
    assert_eq!(err.offset, MAX_DEPTH);

    let key_bomb = "{".repeat(100_000);
    assert_eq!(
        parse(key_bomb.as_bytes()).unwrap_err().kind,
        ParseErrorKind::DepthExceeded { max: MAX_DEPTH }
    );
}

#[test]
fn nesting_up_to_the_limit_is_accepted() {
    let text = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
    assert!(parse(text.as_bytes()).is_ok());
}

#[test]
fn integer_map_reads_quoted_and_unquoted_keys() {
    let unquoted: BTreeMap<i64, String> = fastjson::from_slice(br#"{0:"a",1:"b"}"#).unwrap();
    let quoted: BTreeMap<i64, String> = fastjson::from_slice(br#"{"0":"a","1":"b"}"#).unwrap();
    assert_eq!(unquoted, quoted);
    assert_eq!(unquoted.get(&1).map(String::as_str), Some("b"));
}

#[test]
fn struct_keyed_map_reads_object_keys() {
    let map: BTreeMap<MessageQueue, i64> =
        fastjson::from_slice(br#"{{"brokerName":"b","queueId":2,"topic":"T"}:123}"#).unwrap();
    assert_eq!(map.get(&MessageQueue::new("T", "b", 2)), Some(&123));
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
struct Coerced {
    as_int: i64,
    as_string: String,
    as_bool: bool,
    as_list: Vec<i32>,
    as_float: f64,
    null_string: String,
}

#[test]
fn scalars_are_coerced_like_fastjson() {
    let value: Coerced = fastjson::from_slice(
        br#"{"asInt":"42","asString":7,"asBool":"true","asList":null,"asFloat":"1.5","nullString":null,"extra":{}}"#,
    )
    .unwrap();
    assert_eq!(
        value,
        Coerced {
            as_int: 42,
            as_string: "7".to_owned(),
            as_bool: true,
            as_list: vec![],
            as_float: 1.5,
            null_string: String::new(),
        }
    );
}

#[test]
fn integral_floats_fill_integer_fields_but_fractions_do_not() {
    let n: i32 = fastjson::from_slice(b"3.0").unwrap();
    assert_eq!(n, 3);
    assert!(fastjson::from_slice::<i32>(b"3.5").is_err());
    assert!(fastjson::from_slice::<i64>(b"1e300").is_err());
}

#[test]
fn structs_are_read_only_from_objects() {
    assert!(fastjson::from_slice::<MessageQueue>(br#"["T","b",0]"#).is_err());
    assert!(fastjson::from_slice::<MessageQueue>(b"null").is_err());
}

#[test]
fn wrong_shape_is_a_convert_error_naming_the_problem() {
    let err = fastjson::from_slice::<Coerced>(br#"{"asInt":"x"}"#).unwrap_err();
    assert!(matches!(err, fastjson::FastjsonError::Convert(_)));
}

#[test]
fn object_keyed_writer_emits_fastjson_map_form_that_reads_back() {
    let mut map = BTreeMap::new();
    map.insert(MessageQueue::new("T", "b", 0), 5_i64);
    map.insert(MessageQueue::new("T", "b", 1), 7_i64);
    let mut out = Vec::new();
    write_object_keyed_map(&mut out, &map).unwrap();
    assert_eq!(
        std::str::from_utf8(&out).unwrap(),
        r#"{{"topic":"T","brokerName":"b","queueId":0}:5,{"topic":"T","brokerName":"b","queueId":1}:7}"#
    );
    let back: BTreeMap<MessageQueue, i64> = fastjson::from_slice(&out).unwrap();
    assert_eq!(back, map);
}

#[test]
fn fastjson_writer_keeps_number_keys_unquoted() {
    let value = parse(br#"{"t":{0:1,"x":[1.0,"s\n"]}}"#).unwrap();
    let mut out = Vec::new();
    value.write_fastjson(&mut out);
    assert_eq!(out, br#"{"t":{0:1,"x":[1.0,"s\n"]}}"#);
}

fn arb_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| Value::Number(Number::I64(n))),
        ".{0,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((inner.clone(), inner), 0..4).prop_map(Value::Object),
        ]
    })
}

proptest! {
    #[test]
    fn arbitrary_strings_never_panic(text in ".{0,200}") {
        let _ = parse(text.as_bytes());
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = parse(&bytes);
    }

    #[test]
    fn json_like_soup_never_panics(text in r#"[\[\]{}:,"'0-9a-z\\ .eE+-]{0,120}"#) {
        let _ = parse(text.as_bytes());
    }

    #[test]
    fn written_trees_read_back_equal(value in arb_value()) {
        let mut out = Vec::new();
        value.write_fastjson(&mut out);
        prop_assert_eq!(parse(&out).unwrap(), value);
    }
}

//! The JSON header (protocol.md §1.3, §13): lenient decoding of what real clients send,
//! the exact shape we write, the captured client fixtures, round trips and no-panic.

// Helpers shared by the tests below unwrap like the tests do.
#![allow(clippy::unwrap_used, clippy::panic)]

use bytes::BytesMut;
use proptest::prelude::*;
use ringmq_protocol::command::{ExtFields, LanguageCode, RemotingCommand, FLAG_RESPONSE};
use ringmq_protocol::header::json::{decode, encode, JsonHeaderError};

fn decoded(text: &str) -> RemotingCommand {
    decode(text.as_bytes()).unwrap_or_else(|e| panic!("{text}: {e:?}"))
}

fn encoded(command: &RemotingCommand) -> String {
    let mut out = BytesMut::new();
    encode(command, &mut out).unwrap();
    String::from_utf8(out.to_vec()).unwrap()
}

#[test]
fn java_shaped_header_decodes_to_its_fields() {
    let cmd = decoded(
        r#"{"code":34,"extFields":{"k":"v"},"flag":0,"language":"JAVA","opaque":12,"remark":"r","serializeTypeCurrentRPC":"JSON","version":479}"#,
    );
    assert_eq!(cmd.code, 34);
    assert_eq!(cmd.language, LanguageCode::Java);
    assert_eq!((cmd.opaque, cmd.flag, cmd.version), (12, 0, 479));
    assert_eq!(cmd.remark.as_deref(), Some("r"));
    assert_eq!(cmd.ext("k"), Some("v"));
    assert!(cmd.body.is_empty());
}

#[test]
fn key_order_does_not_matter_and_unknown_keys_are_skipped() {
    let cmd = decoded(
        r#"{"version":121,"nested":{"a":[1,{"b":null}]},"opaque":5,"extFields":{},"code":11,"serializeTypeCurrentRPC":"JSON","language":"RUST","flag":1}"#,
    );
    assert_eq!(
        (cmd.code, cmd.opaque, cmd.flag, cmd.version),
        (11, 5, 1, 121)
    );
    assert_eq!(cmd.language, LanguageCode::Rust);
}

#[test]
fn missing_remark_and_ext_fields_decode_as_none_and_empty() {
    let cmd = decoded(r#"{"code":38,"flag":0,"language":"GO","opaque":0,"version":317}"#);
    assert_eq!(cmd.remark, None);
    assert!(cmd.ext_fields.is_empty());
}

#[test]
fn null_remark_and_ext_fields_decode_as_none_and_empty() {
    let cmd = decoded(r#"{"code":38,"remark":null,"extFields":null}"#);
    assert_eq!(cmd.remark, None);
    assert!(cmd.ext_fields.is_empty());
}

#[test]
fn missing_fields_take_java_defaults() {
    let cmd = decoded("{}");
    assert_eq!((cmd.code, cmd.opaque, cmd.flag, cmd.version), (0, 0, 0, 0));
    assert_eq!(cmd.language, LanguageCode::Java);
}

#[test]
fn numeric_strings_are_accepted_for_int_fields() {
    let cmd = decoded(r#"{"code":"12","opaque":" -3 ","flag":"1","version":"479"}"#);
    assert_eq!(
        (cmd.code, cmd.opaque, cmd.flag, cmd.version),
        (12, -3, 1, 479)
    );
}

/// The error names the field and the kind of value it takes, in its own text (what a log
/// line shows), not only in its source.
fn assert_invalid_field(header: &str, field: &str, expected: &str) {
    let err = decode(header.as_bytes()).unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(&err, JsonHeaderError::InvalidField { field: f, .. } if *f == field),
        "{header}: {err:?}"
    );
    assert!(
        text.contains(&format!("`{field}`")) && text.contains(expected),
        "{header}: {text}"
    );
}

#[test]
fn non_numeric_code_is_an_invalid_field_error_naming_code() {
    assert_invalid_field(r#"{"code":"twelve"}"#, "code", "an int or a numeric string");
}

#[test]
fn opaque_outside_i32_is_an_invalid_field_error_naming_opaque() {
    assert_invalid_field(
        r#"{"code":10,"opaque":2147483648}"#,
        "opaque",
        "an int or a numeric string",
    );
}

#[test]
fn each_field_with_an_unusable_value_is_named() {
    assert_invalid_field(
        r#"{"code":1,"version":true}"#,
        "version",
        "an int or a numeric string",
    );
    assert_invalid_field(r#"{"flag":[1]}"#, "flag", "an int or a numeric string");
    assert_invalid_field(
        r#"{"language":1.5}"#,
        "language",
        "a language name or number",
    );
}

#[test]
fn language_may_be_a_name_or_a_number() {
    assert_eq!(decoded(r#"{"language":"CPP"}"#).language, LanguageCode::Cpp);
    assert_eq!(
        decoded(r#"{"language":"NODE_JS"}"#).language,
        LanguageCode::NodeJs
    );
    assert_eq!(decoded(r#"{"language":12}"#).language, LanguageCode::Rust);
    assert_eq!(
        decoded(r#"{"language":99}"#).language,
        LanguageCode::Unknown(99)
    );
}

#[test]
fn unknown_language_name_is_kept_as_other() {
    assert_eq!(
        decoded(r#"{"language":"COBOL"}"#).language,
        LanguageCode::Other
    );
}

#[test]
fn ext_scalars_are_coerced_to_java_to_string_text() {
    let cmd = decoded(
        r#"{"extFields":{"queueId":3,"unitMode":false,"k":true,"neg":-1,"big":1795502423289,"u":18446744073709551615,"d":2.5,"s":"x","gone":null}}"#,
    );
    let expected: ExtFields = [
        ("queueId", "3"),
        ("unitMode", "false"),
        ("k", "true"),
        ("neg", "-1"),
        ("big", "1795502423289"),
        ("u", "18446744073709551615"),
        ("d", "2.5"),
        ("s", "x"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    assert_eq!(cmd.ext_fields, expected);
}

#[test]
fn duplicate_ext_key_keeps_last_value() {
    let cmd = decoded(r#"{"extFields":{"a":"1","a":"2"}}"#);
    assert_eq!(cmd.ext("a"), Some("2"));
}

#[test]
fn escaped_strings_are_unescaped() {
    let cmd = decoded(r#"{"remark":"a\"b\u00e9","extFields":{"p":"K\u0001v\u0002"}}"#);
    assert_eq!(cmd.remark.as_deref(), Some("a\"bé"));
    assert_eq!(cmd.ext("p"), Some("K\u{1}v\u{2}"));
}

#[test]
fn non_object_header_is_rejected() {
    for text in ["[1,2]", "\"code\"", "12", "null", "", "   "] {
        let err = decode(text.as_bytes()).unwrap_err();
        assert!(
            matches!(err, JsonHeaderError::NotAnObject),
            "{text:?}: {err:?}"
        );
    }
}

#[test]
fn ext_fields_that_is_not_an_object_is_rejected() {
    assert_invalid_field(r#"{"extFields":"k=v"}"#, "extFields", "an object or null");
}

#[test]
fn invalid_utf8_is_rejected_with_its_cause() {
    let err = decode(b"{\"remark\":\"\xff\"}").unwrap_err();
    assert!(matches!(err, JsonHeaderError::InvalidUtf8(_)), "{err:?}");
}

#[test]
fn truncated_json_is_malformed() {
    let err = decode(br#"{"code":34,"extFields":{"#).unwrap_err();
    assert!(matches!(err, JsonHeaderError::Malformed(_)), "{err:?}");
}

#[test]
fn response_is_written_like_the_java_broker_with_keys_sorted() {
    let request = decoded(r#"{"code":14,"opaque":42}"#);
    let mut response = RemotingCommand::response_to(&request, 0);
    response.ext_fields.insert("offset".into(), "0".into());
    assert_eq!(
        encoded(&response),
        r#"{"code":0,"extFields":{"offset":"0"},"flag":1,"language":"JAVA","opaque":42,"serializeTypeCurrentRPC":"JSON","version":479}"#
    );
}

#[test]
fn empty_ext_fields_are_written_as_an_empty_object() {
    let cmd = RemotingCommand::request(34, ExtFields::new());
    assert!(encoded(&cmd).contains(r#""extFields":{}"#));
}

#[test]
fn absent_remark_is_left_out_and_present_remark_is_written() {
    let cmd = RemotingCommand::request(34, ExtFields::new());
    assert!(!encoded(&cmd).contains("remark"));
    assert!(encoded(&cmd.with_remark("FOUND")).contains(r#""remark":"FOUND""#));
}

#[test]
fn control_characters_are_escaped_as_fastjson_does() {
    let mut ext = ExtFields::new();
    ext.insert("i".into(), "TAGS\u{1}a\u{2}".into());
    assert!(encoded(&RemotingCommand::request(310, ext)).contains(r#""i":"TAGS\u0001a\u0002""#));
}

#[test]
fn unknown_language_code_is_written_as_its_number() {
    let mut cmd = RemotingCommand::request(34, ExtFields::new());
    cmd.language = LanguageCode::Unknown(77);
    assert!(encoded(&cmd).contains(r#""language":77"#));
}

/// Java's `toString` of a JSON scalar, to compare fixture values with what we decode.
fn java_text(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

#[test]
fn every_captured_client_request_header_decodes() {
    let fixtures = include_str!("fixtures/client-requests.jsonl");
    let mut lines = 0;
    for line in fixtures.lines().filter(|l| !l.trim().is_empty()) {
        let record: serde_json::Value = serde_json::from_str(line).unwrap();
        let header = &record["header"];
        let cmd = decoded(&header.to_string());
        assert_eq!(
            i64::from(cmd.code),
            header["code"].as_i64().unwrap(),
            "{line}"
        );
        assert_eq!(
            i64::from(cmd.opaque),
            header["opaque"].as_i64().unwrap(),
            "{line}"
        );
        assert_eq!(
            i64::from(cmd.version),
            header["version"].as_i64().unwrap(),
            "{line}"
        );
        assert_eq!(
            Some(cmd.language.name().unwrap()),
            header["language"].as_str(),
            "{line}"
        );
        let expected: ExtFields = header["extFields"]
            .as_object()
            .unwrap()
            .iter()
            .filter_map(|(k, v)| java_text(v).map(|v| (k.clone(), v)))
            .collect();
        assert_eq!(cmd.ext_fields, expected, "{line}");
        lines += 1;
    }
    assert_eq!(lines, 18);
}

#[test]
fn captured_numeric_and_boolean_ext_values_become_java_text() {
    let fixtures = include_str!("fixtures/client-requests.jsonl");
    let send_v2 = fixtures
        .lines()
        .find(|l| l.contains(r#""code": 310"#))
        .unwrap();
    let record: serde_json::Value = serde_json::from_str(send_v2).unwrap();
    let cmd = decoded(&record["header"].to_string());
    assert_eq!(cmd.ext("e"), Some("0")); // queueId sent as the number 0
    assert_eq!(cmd.ext("g"), Some("1795502423286")); // bornTimestamp, a long
    assert_eq!(cmd.ext("k"), Some("false")); // batch, a boolean
    assert_eq!(cmd.ext("i"), Some("TAGS\u{1}tagA\u{2}KEYS\u{1}k1 k2\u{2}"));
}

#[test]
fn captured_cpp_client_empty_remark_is_kept() {
    let fixtures = include_str!("fixtures/client-requests.jsonl");
    let pull = fixtures
        .lines()
        .find(|l| l.contains(r#""language": "CPP""#))
        .unwrap();
    let record: serde_json::Value = serde_json::from_str(pull).unwrap();
    let cmd = decoded(&record["header"].to_string());
    assert_eq!(cmd.language, LanguageCode::Cpp);
    assert_eq!(cmd.remark.as_deref(), Some(""));
    assert_eq!(cmd.flag & FLAG_RESPONSE, 0);
}

fn json_command() -> impl Strategy<Value = RemotingCommand> {
    (
        any::<i32>(),
        any::<u8>(),
        any::<i32>(),
        any::<i32>(),
        any::<i32>(),
        proptest::option::of(any::<String>()),
        proptest::collection::btree_map(any::<String>(), any::<String>(), 0..8),
    )
        .prop_map(
            |(code, lang, version, opaque, flag, remark, ext)| RemotingCommand {
                code,
                language: LanguageCode::from_u8(lang),
                version,
                opaque,
                flag,
                remark,
                ext_fields: ext,
                body: bytes::Bytes::new(),
            },
        )
}

proptest! {
    #[test]
    fn encode_then_decode_is_identity(cmd in json_command()) {
        let text = encoded(&cmd);
        prop_assert_eq!(decode(text.as_bytes()).unwrap(), cmd);
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = decode(&bytes);
    }

    #[test]
    fn decoding_arbitrary_object_text_never_panics(text in r#"\{[ -~]{0,200}"#) {
        let _ = decode(text.as_bytes());
    }

    #[test]
    fn decoding_json_values_of_any_shape_never_panics(
        key in prop::sample::select(vec!["code", "language", "remark", "extFields", "opaque", "x"]),
        value in r#"(null|true|-?[0-9]{1,25}(\.[0-9]{1,5})?(e[0-9]{1,3})?|"[a-z0-9]{0,5}"|\[\]|\{"a":[0-9]\})"#,
    ) {
        let text = format!(r#"{{"{key}":{value},"extFields":{{"v":{value}}}}}"#);
        let _ = decode(text.as_bytes());
    }
}

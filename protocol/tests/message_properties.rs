//! The properties text of protocol.md §3.4 and the property helpers of §3.5.

use proptest::prelude::*;
use ringmq_protocol::message::properties::{
    append, find, find_bytes, join, keys, pairs, wait_store_msg_ok, Properties, PropertiesError,
};

#[test]
fn encodes_each_pair_as_key_soh_value_stx() {
    let props: Properties = [("TAGS", "TagA"), ("KEYS", "k1 k2")].into_iter().collect();
    assert_eq!(
        props.encode().unwrap(),
        "TAGS\u{1}TagA\u{2}KEYS\u{1}k1 k2\u{2}"
    );
}

#[test]
fn decodes_pairs_in_order() {
    let props = Properties::decode("TAGS\u{1}TagA\u{2}KEYS\u{1}k1 k2\u{2}");
    let got: Vec<_> = props.iter().collect();
    assert_eq!(got, [("TAGS", "TagA"), ("KEYS", "k1 k2")]);
}

#[test]
fn decodes_a_last_pair_without_its_trailing_separator() {
    assert_eq!(
        Properties::decode("a\u{1}1\u{2}b\u{1}2").get("b"),
        Some("2")
    );
}

#[test]
fn drops_segments_with_empty_key_or_empty_value_or_no_separator() {
    let props = Properties::decode("\u{1}v\u{2}k\u{1}\u{2}novalue\u{2}ab\u{2}ok\u{1}1\u{2}\u{2}");
    let got: Vec<_> = props.iter().collect();
    assert_eq!(got, [("ok", "1")]);
}

#[test]
fn splits_at_the_first_name_value_separator() {
    assert_eq!(
        Properties::decode("k\u{1}a\u{1}b\u{2}").get("k"),
        Some("a\u{1}b")
    );
}

#[test]
fn later_duplicate_replaces_earlier_value_in_place() {
    let props = Properties::decode("a\u{1}1\u{2}b\u{1}2\u{2}a\u{1}3\u{2}");
    let got: Vec<_> = props.iter().collect();
    assert_eq!(got, [("a", "3"), ("b", "2")]);
    assert_eq!(find("a\u{1}1\u{2}b\u{1}2\u{2}a\u{1}3\u{2}", "a"), Some("3"));
}

#[test]
fn find_reads_one_key_without_decoding_the_rest() {
    let text = "TAGS\u{1}TagA\u{2}UNIQ_KEY\u{1}0A00\u{2}";
    assert_eq!(find(text, keys::UNIQ_KEY), Some("0A00"));
    assert_eq!(find(text, "MISSING"), None);
    assert_eq!(find_bytes(text.as_bytes(), b"TAGS"), Some(&b"TagA"[..]));
}

#[test]
fn keys_are_split_on_spaces() {
    let props = Properties::decode("KEYS\u{1}order-1  order-2\u{2}");
    assert_eq!(props.keys().collect::<Vec<_>>(), ["order-1", "order-2"]);
}

#[test]
fn wait_defaults_to_true_and_follows_java_parse_boolean() {
    assert!(wait_store_msg_ok(""));
    assert!(wait_store_msg_ok("WAIT\u{1}true\u{2}"));
    assert!(wait_store_msg_ok("WAIT\u{1}TRUE\u{2}"));
    assert!(!wait_store_msg_ok("WAIT\u{1}false\u{2}"));
    assert!(!wait_store_msg_ok("WAIT\u{1}yes\u{2}"));
    assert!(!Properties::decode("WAIT\u{1}false\u{2}").wait_store_msg_ok());
}

#[test]
fn typed_getters_read_the_well_known_keys() {
    let props = Properties::decode("TAGS\u{1}t\u{2}UNIQ_KEY\u{1}u\u{2}");
    assert_eq!(props.tags(), Some("t"));
    assert_eq!(props.uniq_key(), Some("u"));
}

#[test]
fn insert_replaces_and_remove_deletes() {
    let mut props = Properties::decode("a\u{1}1\u{2}b\u{1}2\u{2}");
    assert_eq!(props.insert("a", "9"), Some("1".to_owned()));
    assert_eq!(props.insert("c", "3"), None);
    assert_eq!(props.remove("b"), Some("2".to_owned()));
    assert_eq!(props.encode().unwrap(), "a\u{1}9\u{2}c\u{1}3\u{2}");
}

#[test]
fn append_closes_an_unterminated_last_pair_first() {
    let mut text = "a\u{1}1".to_owned();
    append(&mut text, "CLUSTER", "DefaultCluster").unwrap();
    assert_eq!(text, "a\u{1}1\u{2}CLUSTER\u{1}DefaultCluster\u{2}");
    let mut empty = String::new();
    append(&mut empty, "k", "v").unwrap();
    assert_eq!(empty, "k\u{1}v\u{2}");
}

#[test]
fn value_holding_the_name_value_separator_reads_back_whole() {
    let mut text = String::new();
    append(&mut text, "k", "a\u{1}b").unwrap();
    assert_eq!(find(&text, "k"), Some("a\u{1}b"));
}

#[test]
fn join_adds_a_whole_text_closing_the_first_if_needed() {
    let mut text = "a\u{1}1".to_owned();
    join(&mut text, "CLUSTER\u{1}c\u{2}");
    assert_eq!(text, "a\u{1}1\u{2}CLUSTER\u{1}c\u{2}");
    let mut closed = "a\u{1}1\u{2}".to_owned();
    join(&mut closed, "b\u{1}2\u{2}");
    assert_eq!(closed, "a\u{1}1\u{2}b\u{1}2\u{2}");
    join(&mut closed, "");
    assert_eq!(closed, "a\u{1}1\u{2}b\u{1}2\u{2}");
}

#[test]
fn separators_inside_keys_or_values_are_refused() {
    let mut text = String::new();
    assert!(matches!(
        append(&mut text, "a\u{2}b", "v"),
        Err(PropertiesError::Separator { part: "key", .. })
    ));
    assert!(matches!(
        append(&mut text, "k", "v\u{2}"),
        Err(PropertiesError::Separator { part: "value", .. })
    ));
    assert_eq!(append(&mut text, "", "v"), Err(PropertiesError::EmptyKey));
    assert!(text.is_empty());
}

fn key() -> impl Strategy<Value = String> {
    "[^\u{1}\u{2}]{1,20}"
}

fn value() -> impl Strategy<Value = String> {
    "[^\u{2}]{1,20}"
}

proptest! {
    #[test]
    fn encode_then_decode_is_identity(pairs_in in prop::collection::vec((key(), value()), 0..12)) {
        let props: Properties = pairs_in.into_iter().collect();
        let text = props.encode().unwrap();
        prop_assert_eq!(Properties::decode(&text), props);
    }

    #[test]
    fn decode_is_total_and_its_result_re_encodes_stably(text in "[a-c\u{1}\u{2}é]{0,40}") {
        let once = Properties::decode(&text);
        let again = Properties::decode(&once.encode().unwrap());
        prop_assert_eq!(again, once);
    }

    #[test]
    fn find_agrees_with_the_decoded_map(text in "[ab\u{1}\u{2}]{0,30}", key in "[ab]{1,2}") {
        let decoded = Properties::decode(&text);
        prop_assert_eq!(find(&text, &key), decoded.get(&key));
    }

    #[test]
    fn decode_never_panics_on_arbitrary_text(text in ".{0,200}") {
        let _ = Properties::decode(&text);
        let _ = pairs(&text).count();
    }
}

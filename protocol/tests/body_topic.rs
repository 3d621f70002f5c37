//! Topic configs and REGISTER_BROKER bodies, JSON and compressed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::io::{Read, Write};

use flate2::read::ZlibDecoder;
use flate2::write::ZlibEncoder;
use flate2::Compression;
use ringmq_protocol::body::{
    BodyError, CompressedBodyError, DataVersion, JsonBody, RegisterBrokerBody, TopicConfig,
    TopicConfigSerializeWrapper, TopicConfigTextError, TopicFilterType, MAX_INFLATED_BYTES,
};

fn sample_body() -> RegisterBrokerBody {
    let mut ordered = TopicConfig::new("OrderT");
    ordered.read_queue_nums = 8;
    ordered.write_queue_nums = 4;
    ordered.perm = 7;
    ordered.topic_filter_type = TopicFilterType::MultiTag;
    ordered
        .attributes
        .insert("+message.type".to_owned(), "FIFO".to_owned());
    let table = BTreeMap::from([
        ("TBW102".to_owned(), TopicConfig::new("TBW102")),
        ("OrderT".to_owned(), ordered),
        ("%RETRY%cg".to_owned(), {
            let mut t = TopicConfig::new("%RETRY%cg");
            t.read_queue_nums = 1;
            t.write_queue_nums = 1;
            t
        }),
    ]);
    RegisterBrokerBody {
        topic_config_serialize_wrapper: TopicConfigSerializeWrapper {
            topic_config_table: table,
            data_version: DataVersion {
                counter: 42,
                state_version: 0,
                timestamp: 1_715_000_000_000,
            },
            topic_queue_mapping_info_map: BTreeMap::new(),
        },
        filter_server_list: vec![],
    }
}

fn frame(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as i32).to_be_bytes());
    out.extend_from_slice(bytes);
}

fn zlib(raw: &[u8]) -> Vec<u8> {
    let mut enc = ZlibEncoder::new(Vec::new(), Compression::best());
    enc.write_all(raw).unwrap();
    enc.finish().unwrap()
}

#[test]
fn topic_config_defaults_match_java() {
    let t = TopicConfig::new("T");
    assert_eq!((t.read_queue_nums, t.write_queue_nums, t.perm), (16, 16, 6));
    assert_eq!(t.topic_filter_type, TopicFilterType::SingleTag);
    assert!(!t.order && t.topic_sys_flag == 0 && t.attributes.is_empty());
}

#[test]
fn topic_text_form_is_space_separated_with_attributes_json() {
    let mut t = TopicConfig::new("T");
    t.read_queue_nums = 8;
    t.write_queue_nums = 4;
    assert_eq!(t.to_text(), "T 8 4 6 SINGLE_TAG {}");
    t.attributes
        .insert("+message.type".to_owned(), "NORMAL".to_owned());
    assert_eq!(
        t.to_text(),
        r#"T 8 4 6 SINGLE_TAG {"+message.type":"NORMAL"}"#
    );
    assert_eq!(TopicConfig::from_text(&t.to_text()).unwrap(), t);
}

#[test]
fn topic_text_form_of_4x_broker_without_attributes_reads() {
    // 4.x writes five fields and a trailing separator, or exactly five.
    for text in ["T 8 8 6 MULTI_TAG", "T 8 8 6 MULTI_TAG "] {
        let t = TopicConfig::from_text(text).unwrap();
        assert_eq!(t.topic_name, "T");
        assert_eq!(t.topic_filter_type, TopicFilterType::MultiTag);
        assert!(t.attributes.is_empty());
    }
}

#[test]
fn broken_topic_text_is_a_typed_error() {
    assert_eq!(
        TopicConfig::from_text("T 8 8"),
        Err(TopicConfigTextError::MissingField { field: "perm" })
    );
    assert!(matches!(
        TopicConfig::from_text("T x 8 6 SINGLE_TAG"),
        Err(TopicConfigTextError::InvalidNumber {
            field: "readQueueNums",
            ..
        })
    ));
    assert!(matches!(
        TopicConfig::from_text("T 8 8 6 NO_TAG"),
        Err(TopicConfigTextError::UnknownFilterType(_))
    ));
}

#[test]
fn register_body_json_round_trips_with_mapping_map_present() {
    let body = sample_body();
    let bytes = body.encode().unwrap();
    let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let wrapper = &json["topicConfigSerializeWrapper"];
    assert_eq!(wrapper["topicQueueMappingInfoMap"], serde_json::json!({}));
    assert_eq!(wrapper["dataVersion"]["counter"], 42);
    let tbw = &wrapper["topicConfigTable"]["TBW102"];
    assert_eq!(tbw["topicFilterType"], "SINGLE_TAG");
    assert_eq!(tbw["readQueueNums"], 16);
    assert_eq!(json["filterServerList"], serde_json::json!([]));
    assert_eq!(RegisterBrokerBody::decode(&bytes).unwrap(), body);
}

#[test]
fn compressed_register_body_round_trips_except_sys_flag_and_order() {
    let mut body = sample_body();
    let decoded =
        RegisterBrokerBody::decode_compressed(&body.encode_compressed().unwrap()).unwrap();
    assert_eq!(decoded, body);

    // The text form does not carry these two; Java loses them the same way.
    let t = body
        .topic_config_serialize_wrapper
        .topic_config_table
        .get_mut("OrderT")
        .unwrap();
    t.order = true;
    t.topic_sys_flag = 1;
    let decoded =
        RegisterBrokerBody::decode_with(&body.encode_compressed().unwrap(), true).unwrap();
    let t = &decoded.topic_config_serialize_wrapper.topic_config_table["OrderT"];
    assert!(!t.order);
    assert_eq!(t.topic_sys_flag, 0);
}

#[test]
fn compressed_stream_has_java_section_layout() {
    let body = sample_body();
    let mut raw = Vec::new();
    ZlibDecoder::new(&body.encode_compressed().unwrap()[..])
        .read_to_end(&mut raw)
        .unwrap();
    let len = i32::from_be_bytes(raw[0..4].try_into().unwrap()) as usize;
    let dv: serde_json::Value = serde_json::from_slice(&raw[4..4 + len]).unwrap();
    assert_eq!(dv["counter"], 42);
    let count = i32::from_be_bytes(raw[4 + len..8 + len].try_into().unwrap());
    assert_eq!(count, 3);
    // The stream ends with the mapping count 0 after `[]`.
    assert!(raw.ends_with(&[0, 0, 0, 2, b'[', b']', 0, 0, 0, 0]));
}

#[test]
fn compressed_body_of_a_4x_broker_without_mapping_section_decodes() {
    let mut raw = Vec::new();
    frame(&mut raw, br#"{"counter":7,"timestamp":1700000000000}"#);
    raw.extend_from_slice(&2_i32.to_be_bytes());
    frame(&mut raw, b"TopicA 4 4 6 SINGLE_TAG");
    frame(&mut raw, b"TopicB 8 8 6 SINGLE_TAG ");
    frame(&mut raw, b"[]");
    let body = RegisterBrokerBody::decode_compressed(&zlib(&raw)).unwrap();
    let wrapper = &body.topic_config_serialize_wrapper;
    assert_eq!(wrapper.data_version.counter, 7);
    assert_eq!(wrapper.topic_config_table.len(), 2);
    assert_eq!(wrapper.topic_config_table["TopicB"].read_queue_nums, 8);
    assert!(wrapper.topic_queue_mapping_info_map.is_empty());
}

#[test]
fn compressed_mapping_info_is_kept_by_topic() {
    let mut raw = Vec::new();
    frame(&mut raw, br#"{"counter":1,"stateVersion":0,"timestamp":1}"#);
    raw.extend_from_slice(&0_i32.to_be_bytes());
    frame(&mut raw, b"[]");
    raw.extend_from_slice(&1_i32.to_be_bytes());
    frame(
        &mut raw,
        br#"{"topic":"S","bname":"b","epoch":1,"totalQueues":2}"#,
    );
    let body = RegisterBrokerBody::decode_compressed(&zlib(&raw)).unwrap();
    let map = &body
        .topic_config_serialize_wrapper
        .topic_queue_mapping_info_map;
    assert_eq!(map["S"]["totalQueues"], 2);
    let again = RegisterBrokerBody::decode_compressed(&body.encode_compressed().unwrap()).unwrap();
    assert_eq!(again, body);
}

#[test]
fn truncated_compressed_stream_is_a_typed_error() {
    let mut raw = Vec::new();
    frame(&mut raw, br#"{"counter":1}"#);
    raw.extend_from_slice(&5_i32.to_be_bytes());
    frame(&mut raw, b"T 1 1 6 SINGLE_TAG");
    let err = RegisterBrokerBody::decode_compressed(&zlib(&raw)).unwrap_err();
    assert!(
        matches!(
            err,
            CompressedBodyError::Truncated {
                section: "topicConfig",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn oversized_length_and_negative_count_are_typed_errors() {
    let mut raw = Vec::new();
    raw.extend_from_slice(&i32::MAX.to_be_bytes());
    assert!(matches!(
        RegisterBrokerBody::decode_compressed(&zlib(&raw)),
        Err(CompressedBodyError::Truncated {
            section: "dataVersion",
            ..
        })
    ));
    let mut raw = Vec::new();
    frame(&mut raw, b"{}");
    raw.extend_from_slice(&(-1_i32).to_be_bytes());
    assert!(matches!(
        RegisterBrokerBody::decode_compressed(&zlib(&raw)),
        Err(CompressedBodyError::NegativeLength { length: -1, .. })
    ));
}

#[test]
fn corrupt_zlib_is_a_typed_error() {
    let err = RegisterBrokerBody::decode_with(b"not zlib at all", true).unwrap_err();
    assert!(matches!(
        err,
        BodyError::Compressed(CompressedBodyError::Zlib(_))
    ));
}

#[test]
fn zlib_bomb_is_bounded() {
    let zeros = vec![0u8; MAX_INFLATED_BYTES + 1024];
    let bomb = zlib(&zeros);
    assert!(matches!(
        RegisterBrokerBody::decode_compressed(&bomb),
        Err(CompressedBodyError::TooLarge { .. })
    ));
}

#[test]
fn java_topics_json_with_extra_fields_decodes() {
    let text = b"{\n\t\"dataVersion\":{\n\t\t\"counter\":2,\n\t\t\"stateVersion\":0,\n\t\t\"timestamp\":1393729865073\n\t},\n\t\"topicConfigTable\":{\n\t\t\"TopicTest\":{\n\t\t\t\"attributes\":{},\n\t\t\t\"order\":false,\n\t\t\t\"perm\":6,\n\t\t\t\"readQueueNums\":8,\n\t\t\t\"topicFilterType\":\"SINGLE_TAG\",\n\t\t\t\"topicMessageType\":\"NORMAL\",\n\t\t\t\"topicName\":\"TopicTest\",\n\t\t\t\"topicSysFlag\":0,\n\t\t\t\"writeQueueNums\":8\n\t\t}\n\t}\n}";
    let wrapper = TopicConfigSerializeWrapper::decode(text).unwrap();
    assert_eq!(wrapper.data_version.counter, 2);
    assert_eq!(wrapper.topic_config_table["TopicTest"].write_queue_nums, 8);
}

#[test]
fn data_version_counts_changes() {
    let mut v = DataVersion::new(10);
    v.next_version(20);
    v.next_version(30);
    assert_eq!((v.counter, v.timestamp), (2, 30));
    assert_eq!(DataVersion::decode(&v.encode().unwrap()).unwrap(), v);
}

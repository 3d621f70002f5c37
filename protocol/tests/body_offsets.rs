//! Offset files: consumerOffset.json and delayOffset.json as Java writes them
//! (pretty, tabs, unquoted integer keys), and a broadcasting client's local
//! offsets.json with MessageQueue object keys.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use ringmq_protocol::body::{
    offset_table_key, split_offset_table_key, ConsumerOffsetSerializeWrapper, DataVersion,
    DelayOffsetSerializeWrapper, JsonBody, MessageQueue, OffsetSerializeWrapper,
};

const JAVA_CONSUMER_OFFSET_JSON: &str = "{\n\t\"offsetTable\":{\n\t\t\"TopicTest@cg1\":{0:1532,1:1530,2:1529,3:1533},\n\t\t\"%RETRY%cg1@cg1\":{0:0}\n\t},\n\t\"dataVersion\":{\"counter\":42,\"stateVersion\":0,\"timestamp\":1715000000000}\n}\n";

#[test]
fn java_consumer_offset_file_with_unquoted_keys_decodes() {
    let file =
        ConsumerOffsetSerializeWrapper::decode(JAVA_CONSUMER_OFFSET_JSON.as_bytes()).unwrap();
    let queues = &file.offset_table[&offset_table_key("TopicTest", "cg1")];
    assert_eq!(
        queues,
        &BTreeMap::from([(0, 1532), (1, 1530), (2, 1529), (3, 1533)])
    );
    assert_eq!(file.offset_table["%RETRY%cg1@cg1"][&0], 0);
    assert_eq!(
        file.data_version,
        Some(DataVersion {
            counter: 42,
            state_version: 0,
            timestamp: 1_715_000_000_000
        })
    );
}

#[test]
fn consumer_offsets_encode_with_quoted_keys_and_round_trip() {
    let file =
        ConsumerOffsetSerializeWrapper::decode(JAVA_CONSUMER_OFFSET_JSON.as_bytes()).unwrap();
    for bytes in [file.encode().unwrap(), file.encode_pretty().unwrap()] {
        // Standard JSON: a strict parser reads it, so keys are quoted.
        let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(json["offsetTable"]["TopicTest@cg1"]["3"], 1533);
        assert_eq!(
            ConsumerOffsetSerializeWrapper::decode(&bytes).unwrap(),
            file
        );
    }
}

#[test]
fn consumer_offsets_of_4x_without_data_version_decode() {
    let file =
        ConsumerOffsetSerializeWrapper::decode(br#"{"offsetTable":{"T@g":{"0":5}}}"#).unwrap();
    assert_eq!(file.offset_table["T@g"][&0], 5);
    assert_eq!(file.data_version, None);
    assert!(!std::str::from_utf8(&file.encode().unwrap())
        .unwrap()
        .contains("dataVersion"));
}

#[test]
fn offset_table_key_splits_at_first_at_sign() {
    assert_eq!(offset_table_key("T", "g"), "T@g");
    assert_eq!(split_offset_table_key("T@g@x"), Some(("T", "g@x")));
    assert_eq!(split_offset_table_key("nogroup"), None);
}

#[test]
fn java_delay_offset_file_decodes_and_round_trips() {
    let file = DelayOffsetSerializeWrapper::decode(b"{\n\t\"offsetTable\":{1:0,3:15}\n}").unwrap();
    assert_eq!(file.offset_table, BTreeMap::from([(1, 0), (3, 15)]));
    assert_eq!(
        DelayOffsetSerializeWrapper::decode(&file.encode().unwrap()).unwrap(),
        file
    );
}

#[test]
fn broadcast_offset_file_with_object_keys_decodes() {
    let text = "{\n\t\"offsetTable\":{{\n\t\t\t\"brokerName\":\"b\",\n\t\t\t\"queueId\":0,\n\t\t\t\"topic\":\"T\"\n\t\t}:123,{\"brokerName\":\"b\",\"queueId\":1,\"topic\":\"T\"}:7\n\t}\n}";
    let file = OffsetSerializeWrapper::decode(text.as_bytes()).unwrap();
    assert_eq!(file.offset_table[&MessageQueue::new("T", "b", 0)], 123);
    assert_eq!(file.offset_table[&MessageQueue::new("T", "b", 1)], 7);
}

#[test]
fn broadcast_offset_file_encodes_object_keys_and_round_trips() {
    let file = OffsetSerializeWrapper {
        offset_table: BTreeMap::from([(MessageQueue::new("T", "b", 0), 123)]),
    };
    let bytes = file.encode().unwrap();
    assert_eq!(
        bytes,
        br#"{"offsetTable":{{"topic":"T","brokerName":"b","queueId":0}:123}}"#
    );
    assert_eq!(OffsetSerializeWrapper::decode(&bytes).unwrap(), file);
}

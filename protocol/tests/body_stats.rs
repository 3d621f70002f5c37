//! Admin statistics: KVTable and ConsumeStats with fastjson's object-keyed
//! `offsetTable`, the form `mqadmin consumerProgress` reads.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use ringmq_protocol::body::fastjson::{self, Value};
use ringmq_protocol::body::{ConsumeStats, JsonBody, KvTable, MessageQueue, OffsetWrapper};

#[test]
fn kv_table_round_trips_and_reads_numbers_as_text() {
    let table = KvTable {
        table: BTreeMap::from([
            ("putTps".to_owned(), "12.3 11.0 10.9".to_owned()),
            ("brokerVersionDesc".to_owned(), "V5_3_3".to_owned()),
        ]),
    };
    let bytes = table.encode().unwrap();
    assert_eq!(KvTable::decode(&bytes).unwrap(), table);

    let lenient = KvTable::decode(br#"{"table":{"bootTimestamp":1715000000000}}"#).unwrap();
    assert_eq!(lenient.table["bootTimestamp"], "1715000000000");
}

#[test]
fn java_consume_stats_with_object_keys_decodes() {
    let body = br#"{"consumeTps":1.5,"offsetTable":{{"brokerName":"broker-a","queueId":0,"topic":"T"}:{"brokerOffset":120,"consumerOffset":20,"lastTimestamp":1700000000000,"pullOffset":80}}}"#;
    let stats = ConsumeStats::decode(body).unwrap();
    assert_eq!(stats.consume_tps, 1.5);
    assert_eq!(
        stats.offset_table[&MessageQueue::new("T", "broker-a", 0)],
        OffsetWrapper {
            broker_offset: 120,
            consumer_offset: 20,
            pull_offset: 80,
            last_timestamp: 1_700_000_000_000,
        }
    );
    assert_eq!(stats.total_diff(), 100);
}

fn sample_stats() -> ConsumeStats {
    let wrapper = |b, c| OffsetWrapper {
        broker_offset: b,
        consumer_offset: c,
        pull_offset: c,
        last_timestamp: 0,
    };
    ConsumeStats {
        consume_tps: 0.0,
        offset_table: BTreeMap::from([
            (MessageQueue::new("T", "broker-a", 0), wrapper(10, 5)),
            (MessageQueue::new("T", "broker-a", 1), wrapper(7, 7)),
        ]),
    }
}

#[test]
fn consume_stats_encodes_object_keys() {
    let bytes = sample_stats().encode().unwrap();
    let text = std::str::from_utf8(&bytes).unwrap();
    assert!(
        text.starts_with(r#"{"consumeTps":0.0,"offsetTable":{{"topic":"T","brokerName":"broker-a","queueId":0}:{"brokerOffset":10,"#),
        "{text}"
    );
    // Every key of offsetTable is an object, as fastjson writes it.
    let tree = fastjson::parse(&bytes).unwrap();
    let Some(Value::Object(entries)) = tree.get("offsetTable") else {
        panic!("offsetTable missing")
    };
    assert_eq!(entries.len(), 2);
    assert!(entries.iter().all(|(k, _)| matches!(k, Value::Object(_))));
}

#[test]
fn consume_stats_round_trips() {
    let stats = sample_stats();
    assert_eq!(
        ConsumeStats::decode(&stats.encode().unwrap()).unwrap(),
        stats
    );
}

#[test]
fn non_finite_tps_is_written_as_zero() {
    let stats = ConsumeStats {
        consume_tps: f64::NAN,
        offset_table: BTreeMap::new(),
    };
    assert_eq!(
        stats.encode().unwrap(),
        br#"{"consumeTps":0.0,"offsetTable":{}}"#
    );
}

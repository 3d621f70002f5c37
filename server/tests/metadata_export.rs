//! The metadata tables a slave copies from its master (and mqadmin exports), read whole:
//! GET_ALL_CONSUMER_OFFSET gathers every shard's committed offsets into one
//! `consumerOffset.json`-shaped table; GET_ALL_DELAY_OFFSET answers the (empty) delay table.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use ringmq_protocol::body::{
    ConsumerOffsetSerializeWrapper, DelayOffsetSerializeWrapper, JsonBody,
};
use ringmq_protocol::codes::{request_code, response_code};
use support::{request, send_request, Broker};

#[test]
fn all_consumer_offsets_of_every_shard_come_back_in_one_table() {
    let broker = Broker::start(&["--shards", "2"]);
    let mut client = broker.connect();
    // Queues 0..4 of two topics: with two shards they live on both.
    for topic in ["ExportA", "ExportB"] {
        for queue_id in 0..4 {
            let sent = client.call(send_request(topic, queue_id, "", b"x"));
            assert_eq!(sent.code, response_code::SUCCESS, "{:?}", sent.remark);
            let offset = (10 + queue_id).to_string();
            let committed = client.call(request(
                request_code::UPDATE_CONSUMER_OFFSET,
                &[
                    ("consumerGroup", "ExportGroup"),
                    ("topic", topic),
                    ("queueId", &queue_id.to_string()),
                    ("commitOffset", &offset),
                ],
            ));
            assert_eq!(
                committed.code,
                response_code::SUCCESS,
                "{:?}",
                committed.remark
            );
        }
    }
    let answer = client.call(request(request_code::GET_ALL_CONSUMER_OFFSET, &[]));
    assert_eq!(answer.code, response_code::SUCCESS, "{:?}", answer.remark);
    let table = ConsumerOffsetSerializeWrapper::decode(&answer.body).unwrap();
    for topic in ["ExportA", "ExportB"] {
        let queues = &table.offset_table[&format!("{topic}@ExportGroup")];
        let expected: std::collections::BTreeMap<i32, i64> =
            (0..4).map(|q| (q, i64::from(10 + q))).collect();
        assert_eq!(queues, &expected, "{topic}");
    }

    let delay = client.call(request(request_code::GET_ALL_DELAY_OFFSET, &[]));
    assert_eq!(delay.code, response_code::SUCCESS, "{:?}", delay.remark);
    let delay = DelayOffsetSerializeWrapper::decode(&delay.body).unwrap();
    assert!(delay.offset_table.is_empty());
}

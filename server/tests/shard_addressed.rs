//! `--shard-addressed`: every shard its own port and broker `<name>-<shard>` in the routes,
//! every request served by the shard that received it (docs/decisions.md), with the real
//! binary.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ringmq_protocol::codes::{request_code, response_code};
use ringmq_protocol::command::RemotingCommand;
use ringmq_protocol::message::msg_id::decode_offset_msg_id;
use ringmq_protocol::message::record::iter_records;
use support::{pull_request, request, send_request, Broker, TestClient};

const TOPIC: &str = "AddressedTopic";

fn send(client: &mut TestClient, queue_id: i32, body: &str) -> RemotingCommand {
    let response = client.call(send_request(
        TOPIC,
        queue_id,
        "WAIT\u{1}true\u{2}",
        body.as_bytes(),
    ));
    assert_eq!(
        response.code,
        response_code::SUCCESS,
        "{:?}",
        response.remark
    );
    response
}

fn pull_bodies(client: &mut TestClient, queue_id: i32) -> Vec<String> {
    let response = client.call(pull_request("CG", TOPIC, queue_id, 0, 0));
    assert_eq!(
        response.code,
        response_code::SUCCESS,
        "{:?}",
        response.remark
    );
    iter_records(&response.body)
        .map(|record| String::from_utf8(record.unwrap().body.to_vec()).unwrap())
        .collect()
}

/// `brokerName → master address` of the topic's route, once both shard-brokers are in it.
fn shard_brokers(broker: &Broker) -> Vec<(String, SocketAddr)> {
    let mut namesrv = TestClient::connect(broker.namesrv_addr.unwrap());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let response = namesrv.call(request(
            request_code::GET_ROUTEINFO_BY_TOPIC,
            &[("topic", TOPIC)],
        ));
        if response.code == response_code::SUCCESS {
            let route: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
            let mut brokers: Vec<(String, SocketAddr)> = route["brokerDatas"]
                .as_array()
                .unwrap()
                .iter()
                .map(|data| {
                    let name = data["brokerName"].as_str().unwrap().to_owned();
                    let addr = data["brokerAddrs"]["0"].as_str().unwrap().parse().unwrap();
                    (name, addr)
                })
                .collect();
            if brokers.len() == 2 {
                brokers.sort();
                return brokers;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the route never showed both shard-brokers"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn cross_shard_hops(client: &mut TestClient) -> u64 {
    let response = client.call(request(request_code::GET_BROKER_RUNTIME_INFO, &[]));
    use ringmq_protocol::body::JsonBody;
    let table = ringmq_protocol::body::KvTable::decode(&response.body)
        .unwrap()
        .table;
    table["crossShardHops"].parse().unwrap()
}

#[test]
fn each_shard_is_a_broker_of_its_own_and_serves_its_queues_without_a_hop() {
    let broker = Broker::start(&["--shards", "2", "--shard-addressed", "--broker-name", "sa"]);
    let mut first = broker.connect();
    // Auto-create the topic through shard 0; both shard-brokers then register it.
    send(&mut first, 0, "on shard 0");
    let brokers = shard_brokers(&broker);
    assert_eq!(brokers[0].0, "sa-0");
    assert_eq!(brokers[1].0, "sa-1");
    assert_eq!(brokers[0].1, broker.broker_addr);
    assert_ne!(brokers[1].1, broker.broker_addr);

    let mut second = TestClient::connect(brokers[1].1);
    let sent = send(&mut second, 0, "on shard 1");
    // The offset msgId names the shard-broker that stored it.
    let (store_host, _) = decode_offset_msg_id(sent.ext("msgId").unwrap()).unwrap();
    assert_eq!(store_host, brokers[1].1);

    // Queue 0 of each shard-broker is its own queue.
    assert_eq!(pull_bodies(&mut first, 0), ["on shard 0"]);
    assert_eq!(pull_bodies(&mut second, 0), ["on shard 1"]);
    let (_, physical_offset) = decode_offset_msg_id(sent.ext("msgId").unwrap()).unwrap();
    let view = second.call(request(
        request_code::VIEW_MESSAGE_BY_ID,
        &[("offset", &physical_offset.to_string())],
    ));
    assert_eq!(view.code, response_code::SUCCESS, "{:?}", view.remark);
    assert_eq!(cross_shard_hops(&mut first), 0, "no request hopped");
}

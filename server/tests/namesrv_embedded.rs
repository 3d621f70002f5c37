//! The embedded name server of a real `ringmq-server` process (port 0, temp store): the
//! broker's own registration, routes, cluster info, and brokers registering by hand over
//! real sockets (protocol.md §2.14).
// Helpers outside #[test] fns unwrap too: clippy only exempts the test functions.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::{Duration, Instant};

use bytes::Bytes;
use ringmq_protocol::body::{JsonBody, RegisterBrokerBody, TopicConfig};
use ringmq_protocol::codes::{request_code, response_code};
use ringmq_protocol::command::RemotingCommand;
use ringmq_protocol::ext::CommandHeader;
use ringmq_protocol::headers::RegisterBrokerRequestHeader;
use ringmq_protocol::message::record::body_crc;
use support::{request, Broker, TestClient};

const BROKER_NAME: &str = "broker-under-test";

fn start() -> Broker {
    Broker::start(&["--broker-name", BROKER_NAME, "--shards", "1"])
}

fn namesrv(broker: &Broker) -> TestClient {
    TestClient::connect(broker.namesrv_addr.expect("no `listening namesrv` line"))
}

fn json(response: &RemotingCommand) -> serde_json::Value {
    serde_json::from_slice(&response.body).expect("body is not standard JSON")
}

fn route(client: &mut TestClient, topic: &str) -> RemotingCommand {
    client.call(request(
        request_code::GET_ROUTEINFO_BY_TOPIC,
        &[("topic", topic)],
    ))
}

fn body_with(topic: &str) -> RegisterBrokerBody {
    let mut body = RegisterBrokerBody::default();
    body.topic_config_serialize_wrapper
        .topic_config_table
        .insert(topic.to_owned(), TopicConfig::new(topic));
    body
}

fn register(
    name: &str,
    addr: &str,
    id: i64,
    body: Vec<u8>,
    compressed: bool,
    crc: i32,
) -> RemotingCommand {
    let header = RegisterBrokerRequestHeader {
        broker_name: name.to_owned(),
        broker_addr: addr.to_owned(),
        cluster_name: "DefaultCluster".to_owned(),
        ha_server_addr: format!("{addr}-ha"),
        broker_id: id,
        heartbeat_timeout_millis: None,
        enable_acting_master: None,
        compressed,
        body_crc32: crc,
    };
    RemotingCommand::request(request_code::REGISTER_BROKER, header.to_ext())
        .with_body(Bytes::from(body))
}

#[test]
fn the_brokers_own_registration_routes_tbw102_with_perm_7() {
    let broker = start();
    let mut client = namesrv(&broker);
    let response = route(&mut client, "TBW102");
    assert_eq!(
        response.code,
        response_code::SUCCESS,
        "{:?}",
        response.remark
    );
    assert_eq!(response.version, 479);
    let route = json(&response);
    let broker_data = &route["brokerDatas"][0];
    assert_eq!(broker_data["brokerName"], BROKER_NAME);
    assert_eq!(
        broker_data["brokerAddrs"]["0"],
        broker.broker_addr.to_string()
    );
    assert_eq!(route["queueDatas"][0]["perm"], 7);
    assert!(route["queueDatas"][0]["writeQueueNums"].as_i64().unwrap() > 0);
}

#[test]
fn an_unknown_topic_is_17_with_the_java_remark() {
    let broker = start();
    let mut client = namesrv(&broker);
    let response = route(&mut client, "NoSuchTopic");
    assert_eq!(response.code, response_code::TOPIC_NOT_EXIST);
    assert_eq!(
        response.remark.as_deref(),
        Some("No topic route info in name server for the topic: NoSuchTopic")
    );
}

#[test]
fn responses_always_carry_an_ext_fields_object() {
    use std::io::{Read, Write};
    let broker = start();
    let mut client = namesrv(&broker);
    let mut frame = bytes::BytesMut::new();
    let request = request(request_code::GET_BROKER_CLUSTER_INFO, &[]).with_opaque(5);
    ringmq_protocol::frame::encode_frame(
        &request,
        ringmq_protocol::header::SerializeType::Json,
        &mut frame,
    )
    .unwrap();
    client.stream.write_all(&frame).unwrap();
    let mut prefix = [0u8; 8];
    client.stream.read_exact(&mut prefix).unwrap();
    let header_len = (u32::from_be_bytes(prefix[4..8].try_into().unwrap()) & 0x00FF_FFFF) as usize;
    let mut header = vec![0u8; header_len];
    client.stream.read_exact(&mut header).unwrap();
    let header: serde_json::Value = serde_json::from_slice(&header).unwrap();
    assert!(header["extFields"].is_object(), "{header}");
    assert_eq!(header["version"], 479);
}

#[test]
fn cluster_info_lists_the_broker_under_default_cluster() {
    let broker = start();
    let mut client = namesrv(&broker);
    let response = client.call(request(request_code::GET_BROKER_CLUSTER_INFO, &[]));
    assert_eq!(response.code, response_code::SUCCESS);
    let info = json(&response);
    let names = info["clusterAddrTable"]["DefaultCluster"]
        .as_array()
        .unwrap();
    assert!(names.iter().any(|name| name == BROKER_NAME), "{info}");
    assert_eq!(
        info["brokerAddrTable"][BROKER_NAME]["brokerAddrs"]["0"],
        broker.broker_addr.to_string()
    );
}

#[test]
fn a_second_broker_registers_by_hand_with_json_and_compressed_bodies() {
    let broker = start();
    let mut fake = namesrv(&broker);

    let json_body = body_with("JsonTopic").encode().unwrap();
    let response = fake.call(register("fake", "10.9.9.9:10911", 0, json_body, false, 0));
    assert_eq!(
        response.code,
        response_code::SUCCESS,
        "{:?}",
        response.remark
    );
    let mut client = namesrv(&broker);
    let routed = json(&route(&mut client, "JsonTopic"));
    assert_eq!(
        routed["brokerDatas"][0]["brokerAddrs"]["0"],
        "10.9.9.9:10911"
    );

    // A newer registration, compressed with a correct CRC, replaces the topic list.
    let compressed = body_with("ZipTopic").encode_compressed().unwrap();
    let crc = body_crc(&compressed);
    let response = fake.call(register("fake", "10.9.9.9:10911", 0, compressed, true, crc));
    assert_eq!(
        response.code,
        response_code::SUCCESS,
        "{:?}",
        response.remark
    );
    let routed = json(&route(&mut client, "ZipTopic"));
    assert_eq!(routed["queueDatas"][0]["brokerName"], "fake");
    assert_eq!(
        route(&mut client, "JsonTopic").code,
        response_code::TOPIC_NOT_EXIST
    );

    let topics = json(&client.call(request(
        request_code::GET_ALL_TOPIC_LIST_FROM_NAMESERVER,
        &[],
    )));
    let list = topics["topicList"].as_array().unwrap();
    assert!(list.iter().any(|t| t == "ZipTopic") && list.iter().any(|t| t == "TBW102"));
}

#[test]
fn a_registration_with_a_wrong_crc_is_refused() {
    let broker = start();
    let mut fake = namesrv(&broker);
    let body = body_with("CrcTopic").encode().unwrap();
    let wrong = body_crc(&body) ^ 0x55;
    let response = fake.call(register("fake", "10.9.9.9:10911", 0, body, false, wrong));
    assert_eq!(response.code, response_code::SYSTEM_ERROR);
    assert_eq!(response.remark.as_deref(), Some("crc32 not match"));
    assert_eq!(
        route(&mut fake, "CrcTopic").code,
        response_code::TOPIC_NOT_EXIST
    );
}

#[test]
fn a_slave_registration_is_answered_with_the_masters_addresses() {
    let broker = start();
    let mut slave = namesrv(&broker);
    let body = RegisterBrokerBody::default().encode().unwrap();
    let response = slave.call(register(BROKER_NAME, "10.9.9.8:10911", 1, body, false, 0));
    assert_eq!(
        response.code,
        response_code::SUCCESS,
        "{:?}",
        response.remark
    );
    let master = broker.broker_addr;
    assert_eq!(
        response.ext("masterAddr"),
        Some(master.to_string().as_str())
    );
    // With --listen port 0 the HA port is picked by the system too (not port + 1): the
    // address handed out must be the master's, and the master must be listening there.
    let ha: std::net::SocketAddr = response
        .ext("haServerAddr")
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("haServerAddr {:?}", response.ext("haServerAddr")));
    assert_eq!(ha.ip(), master.ip());
    assert_ne!(ha.port(), 0);
    std::net::TcpStream::connect_timeout(&ha, Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("the master's HA port {ha} does not accept: {e}"));
}

#[test]
fn a_broker_whose_connection_closes_loses_its_routes() {
    let broker = start();
    let mut fake = namesrv(&broker);
    let body = body_with("GoneTopic").encode().unwrap();
    let response = fake.call(register("fake", "10.9.9.9:10911", 0, body, false, 0));
    assert_eq!(response.code, response_code::SUCCESS);
    let mut client = namesrv(&broker);
    assert_eq!(route(&mut client, "GoneTopic").code, response_code::SUCCESS);
    drop(fake);
    let deadline = Instant::now() + Duration::from_secs(5);
    while route(&mut client, "GoneTopic").code != response_code::TOPIC_NOT_EXIST {
        assert!(
            Instant::now() < deadline,
            "route still served after the close"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(route(&mut client, "TBW102").code, response_code::SUCCESS);
}

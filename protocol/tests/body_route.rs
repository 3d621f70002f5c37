//! Name-server bodies: routes and cluster info read from Java name servers
//! (unquoted numeric keys) and written with quoted keys and numeric counts.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use ringmq_protocol::body::{
    BrokerData, ClusterInfo, JsonBody, QueueData, TopicList, TopicRouteData,
};

fn sample_route() -> TopicRouteData {
    TopicRouteData {
        order_topic_conf: None,
        queue_datas: vec![QueueData {
            broker_name: "broker-a".to_owned(),
            read_queue_nums: 4,
            write_queue_nums: 4,
            perm: 6,
            topic_sys_flag: 0,
        }],
        broker_datas: vec![BrokerData {
            cluster: "DefaultCluster".to_owned(),
            broker_name: "broker-a".to_owned(),
            broker_addrs: BTreeMap::from([
                (0, "10.0.0.1:10911".to_owned()),
                (1, "10.0.0.2:10911".to_owned()),
            ]),
            enable_acting_master: false,
            zone_name: None,
        }],
        filter_server_table: BTreeMap::new(),
    }
}

#[test]
fn legacy_java_route_with_unquoted_keys_decodes() {
    let body = br#"{"brokerDatas":[{"brokerAddrs":{0:"10.0.0.1:10911",1:"10.0.0.2:10911"},"brokerName":"broker-a",
                 "cluster":"DefaultCluster","enableActingMaster":false}],
 "filterServerTable":{},
 "queueDatas":[{"brokerName":"broker-a","perm":6,"readQueueNums":4,"topicSysFlag":0,"writeQueueNums":4}]}"#;
    assert_eq!(TopicRouteData::decode(body).unwrap(), sample_route());
}

#[test]
fn standard_route_with_quoted_keys_decodes() {
    let body = br#"{"brokerDatas":[{"brokerAddrs":{"0":"10.0.0.1:10911","1":"10.0.0.2:10911"},"brokerName":"broker-a","cluster":"DefaultCluster","enableActingMaster":false}],"filterServerTable":{},"queueDatas":[{"brokerName":"broker-a","perm":6,"readQueueNums":4,"topicSysFlag":0,"writeQueueNums":4}]}"#;
    let route = TopicRouteData::decode(body).unwrap();
    assert_eq!(route, sample_route());
    assert_eq!(route.broker_datas[0].master_addr(), Some("10.0.0.1:10911"));
}

#[test]
fn route_encodes_quoted_keys_and_numeric_counts() {
    let bytes = sample_route().encode().unwrap();
    let text = std::str::from_utf8(&bytes).unwrap();
    assert!(
        text.contains(r#""brokerAddrs":{"0":"10.0.0.1:10911","1":"10.0.0.2:10911"}"#),
        "{text}"
    );
    // Standard JSON: a strict parser reads it.
    let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let queue = &json["queueDatas"][0];
    assert!(queue["readQueueNums"].is_number());
    assert!(queue["writeQueueNums"].is_number());
    assert!(queue["perm"].is_number());
    assert!(json.get("orderTopicConf").is_none());
    assert_eq!(json["filterServerTable"], serde_json::json!({}));
}

#[test]
fn route_round_trips() {
    let mut route = sample_route();
    route.order_topic_conf = Some("broker-a:4".to_owned());
    route.broker_datas[0].zone_name = Some("z1".to_owned());
    assert_eq!(
        TopicRouteData::decode(&route.encode().unwrap()).unwrap(),
        route
    );
}

#[test]
fn route_with_null_order_conf_decodes_as_absent() {
    let body = br#"{"orderTopicConf":null,"queueDatas":[],"brokerDatas":[]}"#;
    let route = TopicRouteData::decode(body).unwrap();
    assert_eq!(route.order_topic_conf, None);
}

#[test]
fn java_cluster_info_with_unquoted_keys_decodes_and_round_trips() {
    let body = br#"{"brokerAddrTable":{"broker-a":{"brokerAddrs":{0:"10.0.0.1:10911"},"brokerName":"broker-a","cluster":"DefaultCluster"}},"clusterAddrTable":{"DefaultCluster":["broker-a"]}}"#;
    let info = ClusterInfo::decode(body).unwrap();
    let broker = &info.broker_addr_table["broker-a"];
    assert_eq!(broker.master_addr(), Some("10.0.0.1:10911"));
    assert!(info.cluster_addr_table["DefaultCluster"].contains("broker-a"));
    assert_eq!(ClusterInfo::decode(&info.encode().unwrap()).unwrap(), info);
}

#[test]
fn topic_list_round_trips() {
    let list = TopicList {
        topic_list: vec!["T1".to_owned(), "T2".to_owned()],
        broker_addr: None,
    };
    let bytes = list.encode().unwrap();
    assert_eq!(bytes, br#"{"topicList":["T1","T2"]}"#);
    assert_eq!(TopicList::decode(&bytes).unwrap(), list);
}

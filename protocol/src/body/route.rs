//! Name-server bodies: `TopicRouteData` (GET_ROUTEINFO_BY_TOPIC 105),
//! `ClusterInfo` (GET_BROKER_CLUSTER_INFO 106) and `TopicList` (206).
//!
//! `brokerAddrs` is a Java `HashMap<Long, String>`: Java name servers may write
//! its keys unquoted (`{0:"10.0.0.1:10911"}`), which decoding accepts. We always
//! write quoted keys (`{"0":…}`), which every client accepts (protocol.md
//! §2.14, §13 item 11); queue counts and perm are written as JSON numbers.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::json_body;

/// Broker id of a master in `brokerAddrs`.
pub const MASTER_ID: i64 = 0;

/// The route of one topic.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TopicRouteData {
    /// `"brokerName:queueNums;…"` for ordered topics; absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_topic_conf: Option<String>,
    /// Queue counts and permissions per broker.
    pub queue_datas: Vec<QueueData>,
    /// Addresses per broker name.
    pub broker_datas: Vec<BrokerData>,
    /// Filter servers per broker address (unused; written as `{}`).
    pub filter_server_table: BTreeMap<String, Vec<String>>,
}

/// A topic's queues on one broker (Java `QueueData`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct QueueData {
    /// Broker name.
    pub broker_name: String,
    /// Number of readable queues (consumers use this).
    pub read_queue_nums: i32,
    /// Number of writable queues (producers use this).
    pub write_queue_nums: i32,
    /// Permission bits: 2 write, 4 read, 1 inherit.
    pub perm: i32,
    /// Topic system flag bits.
    pub topic_sys_flag: i32,
}

/// The addresses of one broker group (Java `BrokerData`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct BrokerData {
    /// Cluster name.
    pub cluster: String,
    /// Broker name.
    pub broker_name: String,
    /// Broker id → `ip:port`; id [`MASTER_ID`] is the master.
    pub broker_addrs: BTreeMap<i64, String>,
    /// 5.x: a slave may act as master when the master is gone.
    pub enable_acting_master: bool,
    /// 5.x zone name; absent unless set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zone_name: Option<String>,
}

impl BrokerData {
    /// The master's address, if the group has one.
    pub fn master_addr(&self) -> Option<&str> {
        self.broker_addrs.get(&MASTER_ID).map(String::as_str)
    }
}

/// All brokers and clusters known to a name server.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ClusterInfo {
    /// Broker name → its addresses.
    pub broker_addr_table: BTreeMap<String, BrokerData>,
    /// Cluster name → broker names in it.
    pub cluster_addr_table: BTreeMap<String, BTreeSet<String>>,
}

/// A list of topic names.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TopicList {
    /// Topic names.
    pub topic_list: Vec<String>,
    /// Set by some broker-side variants; absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub broker_addr: Option<String>,
}

json_body!(
    TopicRouteData => "TopicRouteData",
    ClusterInfo => "ClusterInfo",
    TopicList => "TopicList",
);

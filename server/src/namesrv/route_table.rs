//! The name server's state: which brokers are alive, which topics each master serves, and
//! which cluster each broker group belongs to (protocol.md §2.14, design.md §9).
//!
//! Pure data, no I/O and no clock: every operation that depends on time takes `now_ms`, so
//! expiry is unit-tested with made-up times. Nothing is persisted; a restarted name server
//! learns everything again from the brokers' next registrations (at most 30 s later).
//!
//! Invariants kept by every operation:
//! - each address in `live` appears in the `broker_addrs` of its group in `groups`, and the
//!   reverse;
//! - a group in `groups` has at least one address and is listed under its cluster;
//! - a topic in `topics` has at least one queue entry, and every queue entry names a group
//!   present in `groups` (a group's queue entries go when its last address goes).
//!
//! Only a master (broker id 0) decides a group's topics, as in RocketMQ: a slave's
//! registration keeps the slave alive and adds its address, nothing more.

use std::collections::{BTreeMap, BTreeSet};

use ringmq_protocol::body::{
    BrokerData, ClusterInfo, QueueData, TopicConfigSerializeWrapper, TopicList, TopicRouteData,
    MASTER_ID,
};

/// How long a broker stays registered without a new registration, unless its request says
/// otherwise (`heartbeatTimeoutMillis`).
pub const DEFAULT_BROKER_TIMEOUT_MS: i64 = 120_000;

/// One REGISTER_BROKER request, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerRegistration {
    pub cluster_name: String,
    pub broker_name: String,
    /// `ip:port` clients connect to.
    pub broker_addr: String,
    /// 0 for the master.
    pub broker_id: i64,
    /// The broker's HA address, handed to its slaves.
    pub ha_server_addr: String,
    /// Silence after which the broker is dropped.
    pub timeout_ms: i64,
    pub enable_acting_master: bool,
    /// The connection the registration came on; closing it drops the broker.
    pub connection_id: Option<u64>,
    /// The broker's topics (only a master's are used).
    pub topics: TopicConfigSerializeWrapper,
}

/// What the name server tells a registering broker.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistrationAnswer {
    /// For a slave: its master's main address, when the master is registered.
    pub master_addr: Option<String>,
    /// For a slave: its master's HA address, when the master is registered.
    pub ha_server_addr: Option<String>,
}

/// A registered broker address and its liveness.
#[derive(Debug, Clone, PartialEq, Eq)]
struct LiveBroker {
    cluster_name: String,
    broker_name: String,
    broker_id: i64,
    ha_server_addr: String,
    last_update_ms: i64,
    timeout_ms: i64,
    connection_id: Option<u64>,
}

/// The name server's tables.
#[derive(Debug, Default)]
pub struct RouteTable {
    /// Cluster name → broker (group) names.
    clusters: BTreeMap<String, BTreeSet<String>>,
    /// Broker name → the group's addresses.
    groups: BTreeMap<String, BrokerData>,
    /// Topic → broker name → that group's queues of the topic.
    topics: BTreeMap<String, BTreeMap<String, QueueData>>,
    /// Broker address → liveness.
    live: BTreeMap<String, LiveBroker>,
}

impl RouteTable {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a registration at `now_ms`. A master's topic list replaces the group's
    /// previous one: topics it no longer lists lose this group's queues.
    pub fn register(
        &mut self,
        registration: BrokerRegistration,
        now_ms: i64,
    ) -> RegistrationAnswer {
        let BrokerRegistration {
            cluster_name,
            broker_name,
            broker_addr,
            broker_id,
            ha_server_addr,
            timeout_ms,
            enable_acting_master,
            connection_id,
            topics,
        } = registration;

        // The same address may have come back under another id or group (a slave promoted,
        // a broker renamed): forget its old place first.
        if let Some(previous) = self.live.get(&broker_addr) {
            if previous.broker_name != broker_name || previous.broker_id != broker_id {
                let (name, id) = (previous.broker_name.clone(), previous.broker_id);
                self.remove_address(&broker_addr, &name, id);
            }
        }

        self.clusters
            .entry(cluster_name.clone())
            .or_default()
            .insert(broker_name.clone());
        let group = self
            .groups
            .entry(broker_name.clone())
            .or_insert_with(|| BrokerData {
                cluster: cluster_name.clone(),
                broker_name: broker_name.clone(),
                ..BrokerData::default()
            });
        group.enable_acting_master = enable_acting_master;
        if group.cluster != cluster_name {
            // The group moved to another cluster.
            let old_cluster = std::mem::replace(&mut group.cluster, cluster_name.clone());
            remove_from_cluster(&mut self.clusters, &old_cluster, &broker_name);
        }
        if let Some(old_addr) = group.broker_addrs.insert(broker_id, broker_addr.clone()) {
            if old_addr != broker_addr {
                // Another process held this id before: it is replaced.
                self.live.remove(&old_addr);
            }
        }

        if broker_id == MASTER_ID {
            self.replace_topics(&broker_name, &topics);
        }

        self.live.insert(
            broker_addr,
            LiveBroker {
                cluster_name,
                broker_name: broker_name.clone(),
                broker_id,
                ha_server_addr,
                last_update_ms: now_ms,
                timeout_ms,
                connection_id,
            },
        );

        if broker_id == MASTER_ID {
            return RegistrationAnswer::default();
        }
        let master_addr = self
            .groups
            .get(&broker_name)
            .and_then(|group| group.master_addr())
            .map(str::to_owned);
        let ha_server_addr = master_addr
            .as_ref()
            .and_then(|addr| self.live.get(addr))
            .map(|master| master.ha_server_addr.clone());
        RegistrationAnswer {
            master_addr,
            ha_server_addr,
        }
    }

    /// UNREGISTER_BROKER: forgets one address. Returns whether it was registered.
    pub fn unregister(&mut self, broker_addr: &str, broker_name: &str, broker_id: i64) -> bool {
        let known = self.live.contains_key(broker_addr);
        self.remove_address(broker_addr, broker_name, broker_id);
        known
    }

    /// DELETE_TOPIC_IN_NAMESRV: forgets `topic`'s queues, of every broker group or, with a
    /// cluster name, of that cluster's groups only. Returns whether any were known. A broker
    /// that still has the topic registers it again (operators delete it in the brokers
    /// first, as mqadmin deleteTopic does).
    pub fn delete_topic(&mut self, topic: &str, cluster: Option<&str>) -> bool {
        let Some(queues) = self.topics.get_mut(topic) else {
            return false;
        };
        let before = queues.len();
        match cluster.and_then(|name| self.clusters.get(name)) {
            Some(groups) => queues.retain(|group, _| !groups.contains(group)),
            None if cluster.is_some() => {}
            None => queues.clear(),
        }
        let removed = queues.len() < before;
        if queues.is_empty() {
            self.topics.remove(topic);
        }
        removed
    }

    /// Drops every broker registered through `connection_id` (its channel closed).
    /// Returns the addresses dropped.
    pub fn connection_closed(&mut self, connection_id: u64) -> Vec<String> {
        let gone: Vec<String> = self
            .live
            .iter()
            .filter(|(_, broker)| broker.connection_id == Some(connection_id))
            .map(|(addr, _)| addr.clone())
            .collect();
        self.remove_all(&gone);
        gone
    }

    /// Drops every broker silent for longer than its timeout at `now_ms`.
    /// Returns the addresses dropped.
    pub fn expire(&mut self, now_ms: i64) -> Vec<String> {
        let gone: Vec<String> = self
            .live
            .iter()
            .filter(|(_, broker)| now_ms.saturating_sub(broker.last_update_ms) > broker.timeout_ms)
            .map(|(addr, _)| addr.clone())
            .collect();
        self.remove_all(&gone);
        gone
    }

    /// GET_ROUTEINFO_BY_TOPIC: `None` when no live group serves the topic.
    pub fn route(&self, topic: &str) -> Option<TopicRouteData> {
        let queues = self.topics.get(topic)?;
        let queue_datas: Vec<QueueData> = queues.values().cloned().collect();
        let broker_datas: Vec<BrokerData> = queues
            .keys()
            .filter_map(|name| self.groups.get(name).cloned())
            .collect();
        if queue_datas.is_empty() || broker_datas.is_empty() {
            return None;
        }
        Some(TopicRouteData {
            order_topic_conf: None,
            queue_datas,
            broker_datas,
            filter_server_table: BTreeMap::new(),
        })
    }

    /// GET_BROKER_CLUSTER_INFO.
    pub fn cluster_info(&self) -> ClusterInfo {
        ClusterInfo {
            broker_addr_table: self.groups.clone(),
            cluster_addr_table: self.clusters.clone(),
        }
    }

    /// GET_ALL_TOPIC_LIST_FROM_NAMESERVER.
    pub fn topic_list(&self) -> TopicList {
        TopicList {
            topic_list: self.topics.keys().cloned().collect(),
            broker_addr: None,
        }
    }

    /// GET_TOPICS_BY_CLUSTER: topics with queues on a group of `cluster`.
    pub fn topics_of_cluster(&self, cluster: &str) -> TopicList {
        let groups = self.clusters.get(cluster);
        let topic_list = self
            .topics
            .iter()
            .filter(|(_, queues)| {
                groups.is_some_and(|names| queues.keys().any(|name| names.contains(name)))
            })
            .map(|(topic, _)| topic.clone())
            .collect();
        TopicList {
            topic_list,
            broker_addr: None,
        }
    }

    /// Number of live broker addresses.
    pub fn live_broker_count(&self) -> usize {
        self.live.len()
    }

    fn replace_topics(&mut self, broker_name: &str, wrapper: &TopicConfigSerializeWrapper) {
        let listed = &wrapper.topic_config_table;
        self.topics.retain(|topic, queues| {
            if !listed.contains_key(topic) {
                queues.remove(broker_name);
            }
            !queues.is_empty()
        });
        for (topic, config) in listed {
            // The table's key is authoritative; a config whose name disagrees is still
            // served under the key the broker filed it under.
            self.topics.entry(topic.clone()).or_default().insert(
                broker_name.to_owned(),
                QueueData {
                    broker_name: broker_name.to_owned(),
                    read_queue_nums: config.read_queue_nums,
                    write_queue_nums: config.write_queue_nums,
                    perm: config.perm,
                    topic_sys_flag: config.topic_sys_flag,
                },
            );
        }
    }

    fn remove_all(&mut self, addrs: &[String]) {
        for addr in addrs {
            if let Some(broker) = self.live.get(addr) {
                let (name, id) = (broker.broker_name.clone(), broker.broker_id);
                self.remove_address(addr, &name, id);
            }
        }
    }

    /// Removes `broker_addr` as `broker_id` of group `broker_name`; a group left without
    /// addresses goes, with its queues and its cluster entry.
    fn remove_address(&mut self, broker_addr: &str, broker_name: &str, broker_id: i64) {
        self.live.remove(broker_addr);
        let Some(group) = self.groups.get_mut(broker_name) else {
            return;
        };
        if group.broker_addrs.get(&broker_id).map(String::as_str) == Some(broker_addr) {
            group.broker_addrs.remove(&broker_id);
        }
        if !group.broker_addrs.is_empty() {
            return;
        }
        let cluster = group.cluster.clone();
        self.groups.remove(broker_name);
        remove_from_cluster(&mut self.clusters, &cluster, broker_name);
        self.topics.retain(|_, queues| {
            queues.remove(broker_name);
            !queues.is_empty()
        });
    }
}

fn remove_from_cluster(
    clusters: &mut BTreeMap<String, BTreeSet<String>>,
    cluster: &str,
    broker_name: &str,
) {
    if let Some(names) = clusters.get_mut(cluster) {
        names.remove(broker_name);
        if names.is_empty() {
            clusters.remove(cluster);
        }
    }
}

#[cfg(test)]
mod tests {
    use ringmq_protocol::body::TopicConfig;

    use super::*;

    fn topics(list: &[(&str, i32, i32)]) -> TopicConfigSerializeWrapper {
        let mut wrapper = TopicConfigSerializeWrapper::default();
        for (name, queues, perm) in list {
            let mut config = TopicConfig::new(*name);
            config.read_queue_nums = *queues;
            config.write_queue_nums = *queues;
            config.perm = *perm;
            wrapper
                .topic_config_table
                .insert((*name).to_owned(), config);
        }
        wrapper
    }

    fn registration(
        name: &str,
        addr: &str,
        id: i64,
        list: &[(&str, i32, i32)],
    ) -> BrokerRegistration {
        BrokerRegistration {
            cluster_name: "DefaultCluster".to_owned(),
            broker_name: name.to_owned(),
            broker_addr: addr.to_owned(),
            broker_id: id,
            ha_server_addr: format!("{addr}-ha"),
            timeout_ms: 1_000,
            enable_acting_master: false,
            connection_id: Some(7),
            topics: topics(list),
        }
    }

    #[test]
    fn a_registered_master_serves_its_topics() {
        let mut table = RouteTable::new();
        table.register(registration("a", "10.0.0.1:10911", 0, &[("T", 4, 6)]), 0);
        let route = table.route("T").unwrap();
        assert_eq!(route.queue_datas.len(), 1);
        assert_eq!(route.queue_datas[0].write_queue_nums, 4);
        assert_eq!(route.queue_datas[0].perm, 6);
        assert_eq!(route.broker_datas[0].master_addr(), Some("10.0.0.1:10911"));
        assert!(table.route("U").is_none());
    }

    #[test]
    fn a_broker_silent_past_its_timeout_expires_with_its_routes() {
        let mut table = RouteTable::new();
        table.register(
            registration("a", "10.0.0.1:10911", 0, &[("T", 4, 6)]),
            10_000,
        );
        assert!(
            table.expire(11_000).is_empty(),
            "exactly at the timeout it is kept"
        );
        assert!(table.route("T").is_some());
        assert_eq!(table.expire(11_001), vec!["10.0.0.1:10911".to_owned()]);
        assert!(table.route("T").is_none());
        assert!(table.cluster_info().broker_addr_table.is_empty());
        assert!(table.cluster_info().cluster_addr_table.is_empty());
        assert!(table.topic_list().topic_list.is_empty());
    }

    #[test]
    fn a_new_registration_restarts_the_timeout() {
        let mut table = RouteTable::new();
        table.register(registration("a", "10.0.0.1:10911", 0, &[("T", 4, 6)]), 0);
        table.register(registration("a", "10.0.0.1:10911", 0, &[("T", 4, 6)]), 900);
        assert!(table.expire(1_500).is_empty());
        assert_eq!(table.expire(1_901).len(), 1);
    }

    #[test]
    fn closing_the_registering_connection_drops_the_broker() {
        let mut table = RouteTable::new();
        table.register(registration("a", "10.0.0.1:10911", 0, &[("T", 4, 6)]), 0);
        assert!(table.connection_closed(8).is_empty());
        assert_eq!(table.connection_closed(7).len(), 1);
        assert!(table.route("T").is_none());
    }

    #[test]
    fn a_newer_registration_replaces_the_topic_list() {
        let mut table = RouteTable::new();
        table.register(
            registration("a", "10.0.0.1:10911", 0, &[("T", 4, 6), ("U", 2, 6)]),
            0,
        );
        table.register(registration("b", "10.0.0.2:10911", 0, &[("U", 8, 6)]), 0);
        table.register(registration("a", "10.0.0.1:10911", 0, &[("T", 4, 6)]), 1);
        let u = table.route("U").unwrap();
        assert_eq!(u.queue_datas.len(), 1);
        assert_eq!(u.queue_datas[0].broker_name, "b");
        assert_eq!(u.broker_datas.len(), 1);
        assert!(table.route("T").is_some());
        table.register(registration("b", "10.0.0.2:10911", 0, &[]), 2);
        assert!(table.route("U").is_none());
    }

    #[test]
    fn a_slave_learns_its_masters_addresses_and_changes_no_topics() {
        let mut table = RouteTable::new();
        let answer = table.register(registration("a", "10.0.0.2:10911", 1, &[("S", 4, 6)]), 0);
        assert_eq!(answer, RegistrationAnswer::default(), "no master yet");
        let answer = table.register(registration("a", "10.0.0.1:10911", 0, &[("T", 4, 6)]), 0);
        assert_eq!(
            answer,
            RegistrationAnswer::default(),
            "a master gets nothing"
        );
        let answer = table.register(registration("a", "10.0.0.2:10911", 1, &[("S", 4, 6)]), 1);
        assert_eq!(answer.master_addr.as_deref(), Some("10.0.0.1:10911"));
        assert_eq!(answer.ha_server_addr.as_deref(), Some("10.0.0.1:10911-ha"));
        assert!(table.route("S").is_none());
        let route = table.route("T").unwrap();
        assert_eq!(route.broker_datas[0].broker_addrs.len(), 2);
    }

    #[test]
    fn a_group_keeps_its_queues_while_a_slave_lives() {
        let mut table = RouteTable::new();
        table.register(registration("a", "10.0.0.1:10911", 0, &[("T", 4, 6)]), 0);
        let mut slave = registration("a", "10.0.0.2:10911", 1, &[]);
        slave.connection_id = Some(9);
        table.register(slave, 0);
        table.connection_closed(7);
        let route = table.route("T").unwrap();
        assert_eq!(route.broker_datas[0].master_addr(), None);
        assert_eq!(route.broker_datas[0].broker_addrs.len(), 1);
        table.unregister("10.0.0.2:10911", "a", 1);
        assert!(table.route("T").is_none());
    }

    #[test]
    fn topics_of_a_cluster_are_those_with_queues_on_its_groups() {
        let mut table = RouteTable::new();
        table.register(registration("a", "10.0.0.1:10911", 0, &[("T", 4, 6)]), 0);
        let mut other = registration("b", "10.0.0.2:10911", 0, &[("U", 4, 6)]);
        other.cluster_name = "Other".to_owned();
        table.register(other, 0);
        assert_eq!(
            table.topics_of_cluster("DefaultCluster").topic_list,
            vec!["T"]
        );
        assert_eq!(table.topics_of_cluster("Other").topic_list, vec!["U"]);
        assert!(table.topics_of_cluster("None").topic_list.is_empty());
    }

    #[test]
    fn a_deleted_topic_has_no_route_in_any_cluster_or_only_in_the_one_named() {
        let mut table = RouteTable::new();
        table.register(registration("a", "10.0.0.1:10911", 0, &[("T", 4, 6)]), 0);
        let mut other = registration("b", "10.0.0.2:10911", 0, &[("T", 4, 6)]);
        other.cluster_name = "Other".to_owned();
        table.register(other, 0);
        assert!(table.delete_topic("T", Some("Other")));
        let route = table.route("T").unwrap();
        assert_eq!(
            route.queue_datas.len(),
            1,
            "only cluster Other's queues went"
        );
        assert!(!table.delete_topic("T", Some("NoSuchCluster")));
        assert!(table.delete_topic("T", None));
        assert!(table.route("T").is_none());
        assert!(!table.delete_topic("T", None), "already gone");
    }

    #[test]
    fn unregister_removes_the_group_from_its_cluster() {
        let mut table = RouteTable::new();
        table.register(registration("a", "10.0.0.1:10911", 0, &[("T", 4, 6)]), 0);
        table.register(registration("b", "10.0.0.2:10911", 0, &[("T", 4, 6)]), 0);
        assert!(table.unregister("10.0.0.1:10911", "a", 0));
        let info = table.cluster_info();
        let names: Vec<&String> = info.cluster_addr_table["DefaultCluster"].iter().collect();
        assert_eq!(names, vec!["b"]);
        assert_eq!(table.route("T").unwrap().queue_datas.len(), 1);
        assert!(!table.unregister("10.0.0.1:10911", "a", 0));
    }

    #[test]
    fn an_address_reused_under_a_new_id_leaves_its_old_place() {
        let mut table = RouteTable::new();
        table.register(registration("a", "10.0.0.2:10911", 1, &[]), 0);
        table.register(registration("a", "10.0.0.2:10911", 0, &[("T", 4, 6)]), 1);
        let route = table.route("T").unwrap();
        let addrs = &route.broker_datas[0].broker_addrs;
        assert_eq!(addrs.len(), 1);
        assert_eq!(addrs.get(&0).map(String::as_str), Some("10.0.0.2:10911"));
        assert_eq!(table.live_broker_count(), 1);
    }
}

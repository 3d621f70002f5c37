//! Consumer-group configs: `SubscriptionGroupConfig` and the table a broker
//! keeps in `subscriptionGroup.json` and sends to slaves with
//! GET_ALL_SUBSCRIPTIONGROUP_CONFIG (201).
//!
//! Defaults are Java's (apache/rocketmq `SubscriptionGroupConfig`), so a group
//! auto-created from a heartbeat and a group read from a file that omits fields
//! agree. Nested 5.x objects ringmq does not interpret (`groupRetryPolicy`,
//! `subscriptionDataSet`) are kept as opaque JSON.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::json_body;
use super::topic::DataVersion;

/// The configuration of one consumer group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SubscriptionGroupConfig {
    /// The group.
    pub group_name: String,
    /// Whether the group may consume at all.
    pub consume_enable: bool,
    /// Whether a new group may start from the minimum offset.
    pub consume_from_min_enable: bool,
    /// Whether broadcasting consumption is allowed.
    pub consume_broadcast_enable: bool,
    /// Whether the group consumes orderly.
    pub consume_message_orderly: bool,
    /// Queues of the group's `%RETRY%` topic.
    pub retry_queue_nums: i32,
    /// Redeliveries before a message goes to the DLQ.
    pub retry_max_times: i32,
    /// 5.x retry policy, opaque.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_retry_policy: Option<serde_json::Value>,
    /// Broker id the group reads from normally (0 = master).
    pub broker_id: i64,
    /// Broker id suggested when the group consumes slowly.
    pub which_broker_when_consume_slowly: i64,
    /// Whether NOTIFY_CONSUMER_IDS_CHANGED is sent for this group.
    pub notify_consumer_ids_changed_enable: bool,
    /// Group system flag bits.
    pub group_sys_flag: i32,
    /// Push consumers' consume timeout, minutes.
    pub consume_timeout_minute: i32,
    /// 5.x static subscriptions, opaque.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscription_data_set: Option<serde_json::Value>,
    /// 5.x attributes.
    pub attributes: BTreeMap<String, String>,
}

impl Default for SubscriptionGroupConfig {
    fn default() -> Self {
        SubscriptionGroupConfig {
            group_name: String::new(),
            consume_enable: true,
            consume_from_min_enable: true,
            consume_broadcast_enable: true,
            consume_message_orderly: false,
            retry_queue_nums: 1,
            retry_max_times: 16,
            group_retry_policy: None,
            broker_id: 0,
            which_broker_when_consume_slowly: 1,
            notify_consumer_ids_changed_enable: true,
            group_sys_flag: 0,
            consume_timeout_minute: 15,
            subscription_data_set: None,
            attributes: BTreeMap::new(),
        }
    }
}

impl SubscriptionGroupConfig {
    /// A group with Java's defaults.
    pub fn new(group_name: impl Into<String>) -> Self {
        SubscriptionGroupConfig {
            group_name: group_name.into(),
            ..SubscriptionGroupConfig::default()
        }
    }
}

/// All consumer-group configs of a broker (`subscriptionGroup.json`, and the
/// body of GET_ALL_SUBSCRIPTIONGROUP_CONFIG).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SubscriptionGroupWrapper {
    /// Group name → config.
    pub subscription_group_table: BTreeMap<String, SubscriptionGroupConfig>,
    /// Group → topic → forbidden permission bits (5.x file only).
    pub forbidden_table: BTreeMap<String, BTreeMap<String, i32>>,
    /// Version of the table.
    pub data_version: DataVersion,
}

json_body!(
    SubscriptionGroupConfig => "SubscriptionGroupConfig",
    SubscriptionGroupWrapper => "SubscriptionGroupWrapper",
);

//! `HeartbeatData`, the body of HEART_BEAT (34): who the client is, which
//! producer groups it runs, and each consumer group with its subscriptions.
//!
//! Decoding absorbs what real clients send (protocol.md §2.6, §13): enums by
//! name or ordinal, `subVersion` as a number or a string, missing arrays and
//! fields, unknown fields. Encoding writes what the Java client writes (enum
//! names, every array present).

use serde::{Deserialize, Serialize};

use super::enums::{ConsumeFromWhere, ConsumeType, MessageModel};
use super::json_body;

/// Expression type of a tag subscription, the default of `expressionType`.
pub const EXPRESSION_TYPE_TAG: &str = "TAG";

/// The HEART_BEAT body.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HeartbeatData {
    /// `clientIP@instanceName[@unitName]`; rebalance sorts on this string, and
    /// GET_CONSUMER_LIST_BY_GROUP must return it unchanged.
    #[serde(rename = "clientID")]
    pub client_id: String,
    /// Producer groups this client runs.
    pub producer_data_set: Vec<ProducerData>,
    /// Consumer groups this client runs.
    pub consumer_data_set: Vec<ConsumerData>,
    /// 5.x heartbeat v2 fingerprint; absent from 4.x and most non-Java clients.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heartbeat_fingerprint: Option<i32>,
    /// 5.x heartbeat v2: `true` when subscriptions were left out as unchanged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub without_sub: Option<bool>,
}

/// One producer group of a heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ProducerData {
    /// The producer group.
    pub group_name: String,
}

/// One consumer group of a heartbeat. Missing enum fields take the Java
/// client defaults (push, clustering, last offset).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ConsumerData {
    /// The consumer group.
    pub group_name: String,
    /// Pull, push or pop.
    pub consume_type: ConsumeType,
    /// Clustering or broadcasting.
    pub message_model: MessageModel,
    /// Where to start without a stored offset.
    pub consume_from_where: ConsumeFromWhere,
    /// One entry per subscribed topic (push consumers include `%RETRY%<group>`).
    pub subscription_data_set: Vec<SubscriptionData>,
    /// Unit mode (a rarely used Alibaba extension).
    pub unit_mode: bool,
}

/// A consumer's subscription to one topic (Java `SubscriptionData`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SubscriptionData {
    /// Class filter mode (removed feature; kept for the wire).
    pub class_filter_mode: bool,
    /// Subscribed topic.
    pub topic: String,
    /// `*` or tags joined with `||`, or an SQL92 expression.
    pub sub_string: String,
    /// The trimmed tags of `sub_string` (empty for `*`).
    pub tags_set: Vec<String>,
    /// Java `String.hashCode` of each tag, as the client computed it.
    pub code_set: Vec<i32>,
    /// Version of this subscription, ms time; newer replaces older.
    pub sub_version: i64,
    /// `TAG` (default) or `SQL92`.
    pub expression_type: String,
}

impl Default for SubscriptionData {
    fn default() -> Self {
        SubscriptionData {
            class_filter_mode: false,
            topic: String::new(),
            sub_string: String::new(),
            tags_set: Vec::new(),
            code_set: Vec::new(),
            sub_version: 0,
            expression_type: EXPRESSION_TYPE_TAG.to_owned(),
        }
    }
}

json_body!(HeartbeatData => "HeartbeatData", SubscriptionData => "SubscriptionData");

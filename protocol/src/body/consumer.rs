//! Consumer-group bodies: `ConsumerListBody` (GET_CONSUMER_LIST_BY_GROUP 38)
//! and `ConsumerConnection` (GET_CONSUMER_CONNECTION_LIST 203).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::enums::{ConsumeFromWhere, ConsumeType, MessageModel};
use super::heartbeat::SubscriptionData;
use super::json_body;

/// The client ids of a consumer group, exactly as their heartbeats named them.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ConsumerListBody {
    /// `clientID` strings (any order; clients sort them).
    pub consumer_id_list: Vec<String>,
}

/// One client channel of a group (Java `Connection`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Connection {
    /// The client's `clientID`.
    pub client_id: String,
    /// Remote `ip:port` of the channel.
    pub client_addr: String,
    /// `LanguageCode` name from the request header (`JAVA`, `CPP`, …).
    pub language: String,
    /// The client's protocol version ordinal.
    pub version: i32,
}

/// The online state of a consumer group, for `mqadmin consumerConnection`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ConsumerConnection {
    /// Every channel of the group.
    pub connection_set: Vec<Connection>,
    /// Topic → the group's subscription to it.
    pub subscription_table: BTreeMap<String, SubscriptionData>,
    /// From the latest heartbeat.
    pub consume_type: ConsumeType,
    /// From the latest heartbeat.
    pub message_model: MessageModel,
    /// From the latest heartbeat.
    pub consume_from_where: ConsumeFromWhere,
}

json_body!(
    ConsumerListBody => "GetConsumerListByGroupResponseBody",
    ConsumerConnection => "ConsumerConnection",
);

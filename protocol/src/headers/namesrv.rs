//! Name-server headers: GET_ROUTEINFO_BY_TOPIC (105), REGISTER_BROKER (103) and
//! UNREGISTER_BROKER (104) (protocol.md §2.14). GET_BROKER_CLUSTER_INFO (106) and
//! GET_ALL_TOPIC_LIST_FROM_NAMESERVER (206) have no header fields.

use crate::command::ExtFields;
use crate::ext::{
    bool_or, i32_or, optional_bool, optional_i64, optional_str, put, put_opt, required_i64,
    required_str, CommandHeader, HeaderError,
};

/// GET_ROUTEINFO_BY_TOPIC request (`GetRouteInfoRequestHeader`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetRouteInfoRequestHeader {
    /// `topic`.
    pub topic: String,
    /// `acceptStandardJsonOnly`: asks for quoted map keys in the route JSON (ringmq always
    /// quotes them).
    pub accept_standard_json_only: Option<bool>,
}

impl CommandHeader for GetRouteInfoRequestHeader {
    fn from_ext(ext: &ExtFields) -> Result<Self, HeaderError> {
        Ok(Self {
            topic: required_str(ext, "topic")?,
            accept_standard_json_only: optional_bool(ext, "acceptStandardJsonOnly"),
        })
    }

    fn write_ext(&self, ext: &mut ExtFields) {
        put(ext, "topic", &self.topic);
        put_opt(
            ext,
            "acceptStandardJsonOnly",
            self.accept_standard_json_only,
        );
    }
}

/// REGISTER_BROKER request (`RegisterBrokerRequestHeader`), sent by a broker to every name
/// server periodically and whenever its topics change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterBrokerRequestHeader {
    /// `brokerName`.
    pub broker_name: String,
    /// `brokerAddr`: `brokerIP1:listenPort`.
    pub broker_addr: String,
    /// `clusterName`.
    pub cluster_name: String,
    /// `haServerAddr`: `brokerIP2:haListenPort`.
    pub ha_server_addr: String,
    /// `brokerId`: 0 is the master.
    pub broker_id: i64,
    /// `heartbeatTimeoutMillis`: how long the name server keeps the broker without a new
    /// registration (default 120 000 when absent).
    pub heartbeat_timeout_millis: Option<i64>,
    /// `enableActingMaster`.
    pub enable_acting_master: Option<bool>,
    /// `compressed`: the body is the zlib-compressed form; absent reads as false.
    pub compressed: bool,
    /// `bodyCrc32`: CRC32 of the body & 0x7FFF_FFFF; 0 (also when absent) means unchecked.
    pub body_crc32: i32,
}

impl CommandHeader for RegisterBrokerRequestHeader {
    fn from_ext(ext: &ExtFields) -> Result<Self, HeaderError> {
        Ok(Self {
            broker_name: required_str(ext, "brokerName")?,
            broker_addr: required_str(ext, "brokerAddr")?,
            cluster_name: required_str(ext, "clusterName")?,
            ha_server_addr: required_str(ext, "haServerAddr")?,
            broker_id: required_i64(ext, "brokerId")?,
            heartbeat_timeout_millis: optional_i64(ext, "heartbeatTimeoutMillis")?,
            enable_acting_master: optional_bool(ext, "enableActingMaster"),
            compressed: bool_or(ext, "compressed", false),
            body_crc32: i32_or(ext, "bodyCrc32", 0)?,
        })
    }

    fn write_ext(&self, ext: &mut ExtFields) {
        put(ext, "brokerName", &self.broker_name);
        put(ext, "brokerAddr", &self.broker_addr);
        put(ext, "clusterName", &self.cluster_name);
        put(ext, "haServerAddr", &self.ha_server_addr);
        put(ext, "brokerId", self.broker_id);
        put_opt(ext, "heartbeatTimeoutMillis", self.heartbeat_timeout_millis);
        put_opt(ext, "enableActingMaster", self.enable_acting_master);
        put(ext, "compressed", self.compressed);
        put(ext, "bodyCrc32", self.body_crc32);
    }
}

/// REGISTER_BROKER response (`RegisterBrokerResponseHeader`): filled only for a slave, which
/// learns from it where its master is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegisterBrokerResponseHeader {
    /// `haServerAddr`: the master's HA address.
    pub ha_server_addr: Option<String>,
    /// `masterAddr`: the master's main address.
    pub master_addr: Option<String>,
}

impl CommandHeader for RegisterBrokerResponseHeader {
    fn from_ext(ext: &ExtFields) -> Result<Self, HeaderError> {
        Ok(Self {
            ha_server_addr: optional_str(ext, "haServerAddr"),
            master_addr: optional_str(ext, "masterAddr"),
        })
    }

    fn write_ext(&self, ext: &mut ExtFields) {
        put_opt(ext, "haServerAddr", self.ha_server_addr.as_ref());
        put_opt(ext, "masterAddr", self.master_addr.as_ref());
    }
}

/// UNREGISTER_BROKER request (`UnRegisterBrokerRequestHeader`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnregisterBrokerRequestHeader {
    /// `brokerName`.
    pub broker_name: String,
    /// `brokerAddr`.
    pub broker_addr: String,
    /// `clusterName`.
    pub cluster_name: String,
    /// `brokerId`.
    pub broker_id: i64,
}

impl CommandHeader for UnregisterBrokerRequestHeader {
    fn from_ext(ext: &ExtFields) -> Result<Self, HeaderError> {
        Ok(Self {
            broker_name: required_str(ext, "brokerName")?,
            broker_addr: required_str(ext, "brokerAddr")?,
            cluster_name: required_str(ext, "clusterName")?,
            broker_id: required_i64(ext, "brokerId")?,
        })
    }

    fn write_ext(&self, ext: &mut ExtFields) {
        put(ext, "brokerName", &self.broker_name);
        put(ext, "brokerAddr", &self.broker_addr);
        put(ext, "clusterName", &self.cluster_name);
        put(ext, "brokerId", self.broker_id);
    }
}

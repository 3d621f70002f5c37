//! Name-server requests → responses (protocol.md §2.14): REGISTER_BROKER (103),
//! UNREGISTER_BROKER (104), GET_ROUTEINFO_BY_TOPIC (105), GET_BROKER_CLUSTER_INFO (106),
//! GET_ALL_TOPIC_LIST_FROM_NAMESERVER (206) and GET_TOPICS_BY_CLUSTER (224, mqadmin
//! `topicList -c`). Anything else gets REQUEST_CODE_NOT_SUPPORTED.
//!
//! Synchronous and clock-free: the caller passes the [`RouteTable`], the connection the
//! request came on and the time. Every answer is built with `RemotingCommand::response_to`,
//! so it carries version 479 and an extFields object (empty when there are no fields).
//! Bad input from a peer (missing header fields, a broken body, a CRC mismatch) is answered
//! with an error code and a remark, never a panic.

use ringmq_protocol::body::{JsonBody, RegisterBrokerBody};
use ringmq_protocol::codes::{request_code, response_code};
use ringmq_protocol::command::RemotingCommand;
use ringmq_protocol::ext::{CommandHeader, HeaderError};
use ringmq_protocol::headers::{
    GetRouteInfoRequestHeader, RegisterBrokerRequestHeader, RegisterBrokerResponseHeader,
    UnregisterBrokerRequestHeader,
};
use ringmq_protocol::message::record::body_crc;

use super::route_table::{BrokerRegistration, RouteTable, DEFAULT_BROKER_TIMEOUT_MS};
use crate::reply::error_chain;
use crate::reply::not_supported;

/// Answers one request against `table` at `now_ms`. `connection_id` is the connection the
/// request arrived on (a registering broker is dropped when it closes).
pub fn process(
    table: &mut RouteTable,
    connection_id: u64,
    request: &RemotingCommand,
    now_ms: i64,
) -> RemotingCommand {
    match request.code {
        request_code::REGISTER_BROKER => register_broker(table, connection_id, request, now_ms),
        request_code::UNREGISTER_BROKER => unregister_broker(table, request),
        request_code::GET_ROUTEINFO_BY_TOPIC => route_info(table, request),
        request_code::GET_BROKER_CLUSTER_INFO => encoded(
            request,
            table.cluster_info().encode().map_err(|e| e.to_string()),
        ),
        request_code::GET_ALL_TOPIC_LIST_FROM_NAMESERVER => encoded(
            request,
            table.topic_list().encode().map_err(|e| e.to_string()),
        ),
        request_code::DELETE_TOPIC_IN_NAMESRV => match request.ext("topic") {
            Some(topic) => {
                let cluster = request.ext("clusterName").filter(|c| !c.is_empty());
                if table.delete_topic(topic, cluster) {
                    tracing::info!(topic, cluster, "topic deleted from the routes");
                }
                RemotingCommand::response_to(request, response_code::SUCCESS)
            }
            None => system_error(request, "the request header has no field topic"),
        },
        request_code::GET_TOPICS_BY_CLUSTER => match request.ext("cluster") {
            Some(cluster) => encoded(
                request,
                table
                    .topics_of_cluster(cluster)
                    .encode()
                    .map_err(|e| e.to_string()),
            ),
            None => system_error(request, "the request header has no field cluster"),
        },
        _ => not_supported(request),
    }
}

fn register_broker(
    table: &mut RouteTable,
    connection_id: u64,
    request: &RemotingCommand,
    now_ms: i64,
) -> RemotingCommand {
    let header = match RegisterBrokerRequestHeader::from_ext(&request.ext_fields) {
        Ok(header) => header,
        Err(error) => return header_error(request, &error),
    };
    if header.body_crc32 != 0 && body_crc(&request.body) != header.body_crc32 {
        return system_error(request, "crc32 not match");
    }
    // A registration without a body lists no topics (Java reads it the same way).
    let body = if request.body.is_empty() {
        RegisterBrokerBody::default()
    } else {
        match RegisterBrokerBody::decode_with(&request.body, header.compressed) {
            Ok(body) => body,
            Err(error) => return system_error(request, &error_chain(&error)),
        }
    };
    let timeout_ms = header
        .heartbeat_timeout_millis
        .filter(|ms| *ms > 0)
        .unwrap_or(DEFAULT_BROKER_TIMEOUT_MS);
    let answer = table.register(
        BrokerRegistration {
            cluster_name: header.cluster_name,
            broker_name: header.broker_name,
            broker_addr: header.broker_addr,
            broker_id: header.broker_id,
            ha_server_addr: header.ha_server_addr,
            timeout_ms,
            enable_acting_master: header.enable_acting_master.unwrap_or(false),
            connection_id: Some(connection_id),
            topics: body.topic_config_serialize_wrapper,
        },
        now_ms,
    );
    let response_header = RegisterBrokerResponseHeader {
        ha_server_addr: answer.ha_server_addr,
        master_addr: answer.master_addr,
    };
    RemotingCommand::response_to(request, response_code::SUCCESS)
        .with_ext_fields(response_header.to_ext())
}

fn unregister_broker(table: &mut RouteTable, request: &RemotingCommand) -> RemotingCommand {
    match UnregisterBrokerRequestHeader::from_ext(&request.ext_fields) {
        Ok(header) => {
            let known =
                table.unregister(&header.broker_addr, &header.broker_name, header.broker_id);
            tracing::info!(broker = %header.broker_addr, known, "broker unregistered");
            RemotingCommand::response_to(request, response_code::SUCCESS)
        }
        Err(error) => header_error(request, &error),
    }
}

fn route_info(table: &RouteTable, request: &RemotingCommand) -> RemotingCommand {
    let header = match GetRouteInfoRequestHeader::from_ext(&request.ext_fields) {
        Ok(header) => header,
        Err(error) => return header_error(request, &error),
    };
    match table.route(&header.topic) {
        // Keys of brokerAddrs are always quoted, whatever the request's version asks:
        // every client reads that form (protocol.md §2.14).
        Some(route) => encoded(request, route.encode().map_err(|e| e.to_string())),
        None => RemotingCommand::response_to(request, response_code::TOPIC_NOT_EXIST).with_remark(
            format!(
                "No topic route info in name server for the topic: {}",
                header.topic
            ),
        ),
    }
}

fn encoded(request: &RemotingCommand, body: Result<Vec<u8>, String>) -> RemotingCommand {
    match body {
        Ok(bytes) => RemotingCommand::response_to(request, response_code::SUCCESS).with_body(bytes),
        Err(error) => system_error(request, &error),
    }
}

fn header_error(request: &RemotingCommand, error: &HeaderError) -> RemotingCommand {
    system_error(request, &error_chain(error))
}

fn system_error(request: &RemotingCommand, remark: &str) -> RemotingCommand {
    RemotingCommand::response_to(request, response_code::SYSTEM_ERROR).with_remark(remark)
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use ringmq_protocol::body::{TopicConfig, TopicRouteData};
    use ringmq_protocol::command::ExtFields;

    use super::*;

    fn register_request(
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

    fn body_with(topic: &str) -> RegisterBrokerBody {
        let mut body = RegisterBrokerBody::default();
        body.topic_config_serialize_wrapper
            .topic_config_table
            .insert(topic.to_owned(), TopicConfig::new(topic));
        body
    }

    fn route_request(topic: &str) -> RemotingCommand {
        let mut ext = ExtFields::new();
        ext.insert("topic".to_owned(), topic.to_owned());
        RemotingCommand::request(request_code::GET_ROUTEINFO_BY_TOPIC, ext)
    }

    #[test]
    fn a_compressed_registration_with_its_crc_is_served() {
        let mut table = RouteTable::new();
        let bytes = body_with("T").encode_compressed().unwrap();
        let crc = body_crc(&bytes);
        let response = process(
            &mut table,
            1,
            &register_request("a", "h:1", 0, bytes, true, crc),
            0,
        );
        assert_eq!(
            response.code,
            response_code::SUCCESS,
            "{:?}",
            response.remark
        );
        let route = process(&mut table, 1, &route_request("T"), 0);
        assert_eq!(route.code, response_code::SUCCESS);
        let route = TopicRouteData::decode(&route.body).unwrap();
        assert_eq!(route.queue_datas[0].broker_name, "a");
    }

    #[test]
    fn a_wrong_crc_is_refused_and_registers_nothing() {
        let mut table = RouteTable::new();
        let bytes = body_with("T").encode().unwrap();
        let crc = body_crc(&bytes) ^ 1;
        let response = process(
            &mut table,
            1,
            &register_request("a", "h:1", 0, bytes, false, crc),
            0,
        );
        assert_eq!(response.code, response_code::SYSTEM_ERROR);
        assert_eq!(response.remark.as_deref(), Some("crc32 not match"));
        assert_eq!(table.live_broker_count(), 0);
    }

    #[test]
    fn a_broken_body_is_a_system_error() {
        let mut table = RouteTable::new();
        let request = register_request("a", "h:1", 0, b"\x78\x9c garbage".to_vec(), true, 0);
        let response = process(&mut table, 1, &request, 0);
        assert_eq!(response.code, response_code::SYSTEM_ERROR);
        assert!(response.remark.is_some());
        assert_eq!(table.live_broker_count(), 0);
    }

    #[test]
    fn a_registration_missing_its_broker_name_is_refused() {
        let mut table = RouteTable::new();
        let mut request = register_request("a", "h:1", 0, Vec::new(), false, 0);
        request.ext_fields.remove("brokerName");
        let response = process(&mut table, 1, &request, 0);
        assert_eq!(response.code, response_code::SYSTEM_ERROR);
        assert!(response.remark.unwrap_or_default().contains("brokerName"));
    }

    #[test]
    fn an_unknown_topic_is_topic_not_exist_with_javas_remark() {
        let mut table = RouteTable::new();
        let response = process(&mut table, 1, &route_request("nope"), 0);
        assert_eq!(response.code, response_code::TOPIC_NOT_EXIST);
        assert_eq!(
            response.remark.as_deref(),
            Some("No topic route info in name server for the topic: nope")
        );
    }

    #[test]
    fn routes_have_quoted_broker_ids_and_numeric_counts() {
        let mut table = RouteTable::new();
        let bytes = body_with("T").encode().unwrap();
        process(
            &mut table,
            1,
            &register_request("a", "h:1", 0, bytes, false, 0),
            0,
        );
        let response = process(&mut table, 1, &route_request("T"), 0);
        let json: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
        assert_eq!(json["brokerDatas"][0]["brokerAddrs"]["0"], "h:1");
        assert!(json["queueDatas"][0]["perm"].is_number());
        assert!(json["queueDatas"][0]["readQueueNums"].is_number());
        assert!(json["queueDatas"][0]["writeQueueNums"].is_number());
    }

    #[test]
    fn topics_by_cluster_lists_the_clusters_topics() {
        let mut table = RouteTable::new();
        let bytes = body_with("T").encode().unwrap();
        process(
            &mut table,
            1,
            &register_request("a", "h:1", 0, bytes, false, 0),
            0,
        );
        let mut ext = ExtFields::new();
        ext.insert("cluster".to_owned(), "DefaultCluster".to_owned());
        let request = RemotingCommand::request(request_code::GET_TOPICS_BY_CLUSTER, ext);
        let response = process(&mut table, 1, &request, 0);
        assert_eq!(response.code, response_code::SUCCESS);
        let json: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
        assert_eq!(json["topicList"], serde_json::json!(["T"]));
    }

    #[test]
    fn other_codes_are_not_supported() {
        let mut table = RouteTable::new();
        let request = RemotingCommand::request(request_code::SEND_MESSAGE, ExtFields::new());
        let response = process(&mut table, 1, &request, 0);
        assert_eq!(response.code, response_code::REQUEST_CODE_NOT_SUPPORTED);
    }
}

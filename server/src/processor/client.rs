//! Client-session commands: HEART_BEAT, UNREGISTER_CLIENT, GET_CONSUMER_LIST_BY_GROUP,
//! GET_CONSUMER_CONNECTION_LIST (protocol.md §2.6-§2.8, §2.15).

use std::rc::Rc;
use std::sync::Arc;

use ringmq_protocol::body::{ConsumerListBody, HeartbeatData, JsonBody};
use ringmq_protocol::codes::response_code;
use ringmq_protocol::command::RemotingCommand;
use ringmq_protocol::headers::{
    GetConsumerConnectionListRequestHeader, GetConsumerListByGroupRequestHeader,
    UnregisterClientRequestHeader,
};

use super::{decode_header, error_chain, error_response, success, topic_error};
use crate::broker::{notify_consumer_ids_changed, now_ms, BrokerShard};
use crate::connection::Connection;
use crate::groups::ClientChannel;

/// HEART_BEAT: registers the connection in its producer and consumer groups, creates
/// `%RETRY%<group>` topics, and notifies group members when membership changed.
pub async fn heartbeat(
    shard: &Rc<BrokerShard>,
    connection: &Rc<Connection>,
    request: &RemotingCommand,
) -> RemotingCommand {
    let data = match HeartbeatData::decode(&request.body) {
        Ok(data) => data,
        Err(error) => {
            return error_response(
                request,
                response_code::SYSTEM_ERROR,
                format!("heartbeat body: {}", error_chain(&error)),
            )
        }
    };
    shard.track_connection(connection);
    let channel = ClientChannel {
        language: request
            .language
            .name()
            .map(str::to_owned)
            .unwrap_or_else(|| "OTHER".to_owned()),
        version: request.version,
        remote_addr: connection.peer.to_string(),
    };
    let shared = &shard.shared;
    let outcome =
        shared
            .groups
            .heartbeat(shard.connection_ref(connection), &channel, &data, now_ms());
    let mut created = false;
    for retry_topic in &outcome.retry_topics {
        let group = retry_topic.trim_start_matches("%RETRY%");
        match shared.topics.create_retry_topic(group) {
            Ok((_, was_created)) => created |= was_created,
            Err(error) => return topic_error(request, &error),
        }
    }
    if created {
        shared.topics_changed();
    }
    if !outcome.notify.is_empty() {
        notify_consumer_ids_changed(Arc::clone(shared), outcome.notify).await;
    }
    success(request)
}

/// UNREGISTER_CLIENT: removes the client from the named groups; always SUCCESS.
pub async fn unregister(
    shard: &Rc<BrokerShard>,
    connection: &Rc<Connection>,
    request: &RemotingCommand,
) -> RemotingCommand {
    let header: UnregisterClientRequestHeader = match decode_header(request) {
        Ok(header) => header,
        Err(response) => return response,
    };
    let notify = shard.shared.groups.unregister(
        shard.connection_ref(connection),
        &header.client_id,
        header.producer_group.as_deref(),
        header.consumer_group.as_deref(),
    );
    if !notify.is_empty() {
        notify_consumer_ids_changed(Arc::clone(&shard.shared), notify).await;
    }
    success(request)
}

/// GET_CONSUMER_LIST_BY_GROUP: the members' client ids, or SYSTEM_ERROR when none.
pub fn consumer_list(shard: &Rc<BrokerShard>, request: &RemotingCommand) -> RemotingCommand {
    let header: GetConsumerListByGroupRequestHeader = match decode_header(request) {
        Ok(header) => header,
        Err(response) => return response,
    };
    let Some(ids) = shard.shared.groups.consumer_ids(&header.consumer_group) else {
        return error_response(
            request,
            response_code::SYSTEM_ERROR,
            format!("no consumer for this group, {}", header.consumer_group),
        );
    };
    let body = ConsumerListBody {
        consumer_id_list: ids,
    };
    match body.encode() {
        Ok(bytes) => success(request).with_body(bytes),
        Err(error) => error_response(request, response_code::SYSTEM_ERROR, error_chain(&error)),
    }
}

/// GET_CONSUMER_CONNECTION_LIST: the group's connections and subscriptions, or
/// CONSUMER_NOT_ONLINE.
pub fn connection_list(shard: &Rc<BrokerShard>, request: &RemotingCommand) -> RemotingCommand {
    let header: GetConsumerConnectionListRequestHeader = match decode_header(request) {
        Ok(header) => header,
        Err(response) => return response,
    };
    let Some(info) = shard.shared.groups.connection_info(&header.consumer_group) else {
        return error_response(
            request,
            response_code::CONSUMER_NOT_ONLINE,
            format!("the consumer group[{}] not online", header.consumer_group),
        );
    };
    match info.encode() {
        Ok(bytes) => success(request).with_body(bytes),
        Err(error) => error_response(request, response_code::SYSTEM_ERROR, error_chain(&error)),
    }
}

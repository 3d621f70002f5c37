//! Request processors: one module per family of commands, each a function from a decoded
//! request to a response. [`dispatch`] is the one table from request code to processor,
//! and the helpers here are the one place where errors become RocketMQ response codes.

mod admin;
mod client;
mod message;
mod offset;
mod pull;
mod send;
mod stats;

use std::rc::Rc;

use ringmq_protocol::codes::{request_code, response_code};
use ringmq_protocol::command::RemotingCommand;
use ringmq_protocol::ext::{CommandHeader, HeaderError};

use crate::broker::{not_supported, BrokerShard};
use crate::connection::{Connection, Response};
use crate::topics::TopicError;

/// Routes one request to its processor.
pub async fn dispatch(
    shard: &Rc<BrokerShard>,
    connection: &Rc<Connection>,
    request: RemotingCommand,
) -> Option<Response> {
    let response = match request.code {
        request_code::SEND_MESSAGE
        | request_code::SEND_MESSAGE_V2
        | request_code::SEND_BATCH_MESSAGE => send::send(shard, connection, &request).await,
        request_code::PULL_MESSAGE | request_code::LITE_PULL_MESSAGE => {
            return Some(pull::pull(shard, connection, &request).await)
        }
        request_code::QUERY_CONSUMER_OFFSET => offset::query_consumer_offset(shard, &request).await,
        request_code::UPDATE_CONSUMER_OFFSET => {
            offset::update_consumer_offset(shard, &request).await
        }
        request_code::GET_MAX_OFFSET => offset::max_offset(shard, &request).await,
        request_code::GET_MIN_OFFSET => offset::min_offset(shard, &request).await,
        request_code::SEARCH_OFFSET_BY_TIMESTAMP => {
            offset::search_offset_by_timestamp(shard, &request).await
        }
        request_code::GET_EARLIEST_MSG_STORETIME => {
            offset::earliest_msg_store_time(shard, &request).await
        }
        request_code::VIEW_MESSAGE_BY_ID => message::view_message(shard, &request).await,
        request_code::CONSUMER_SEND_MSG_BACK => message::send_back(shard, &request).await,
        request_code::HEART_BEAT => client::heartbeat(shard, connection, &request).await,
        request_code::UNREGISTER_CLIENT => client::unregister(shard, connection, &request).await,
        request_code::GET_CONSUMER_LIST_BY_GROUP => client::consumer_list(shard, &request),
        request_code::GET_CONSUMER_CONNECTION_LIST => client::connection_list(shard, &request),
        request_code::UPDATE_AND_CREATE_TOPIC => admin::create_topic(shard, &request),
        request_code::DELETE_TOPIC_IN_BROKER => admin::delete_topic(shard, &request),
        request_code::GET_ALL_TOPIC_CONFIG => admin::all_topic_config(shard, &request),
        request_code::GET_BROKER_RUNTIME_INFO => admin::runtime_info(shard, &request),
        request_code::GET_CONSUME_STATS => stats::consume_stats(shard, &request).await,
        _ => not_supported(&request),
    };
    Some(Response::Command(response))
}

/// Decodes a typed header, or answers the way Java does when a required field is missing
/// or malformed: SYSTEM_ERROR with the reason.
pub fn decode_header<H: CommandHeader>(request: &RemotingCommand) -> Result<H, RemotingCommand> {
    H::from_ext(&request.ext_fields).map_err(|error| header_error(request, &error))
}

pub fn header_error(request: &RemotingCommand, error: &HeaderError) -> RemotingCommand {
    error_response(request, response_code::SYSTEM_ERROR, error.to_string())
}

/// A response with `code` and `remark`, nothing else.
pub fn error_response(
    request: &RemotingCommand,
    code: i32,
    remark: impl Into<String>,
) -> RemotingCommand {
    RemotingCommand::response_to(request, code).with_remark(remark)
}

pub fn success(request: &RemotingCommand) -> RemotingCommand {
    RemotingCommand::response_to(request, response_code::SUCCESS)
}

/// The response code for a topic error (protocol.md §2.3).
pub fn topic_error_code(error: &TopicError) -> i32 {
    match error {
        TopicError::InvalidName { .. }
        | TopicError::QueueIdOutOfRange { .. }
        | TopicError::SystemTopic { .. }
        | TopicError::InvalidConfig { .. } => response_code::INVALID_PARAMETER,
        TopicError::SendNotAllowed { .. } => response_code::NO_PERMISSION,
        TopicError::NotExist { .. } => response_code::TOPIC_NOT_EXIST,
        TopicError::Io { .. } | TopicError::Encode(_) | TopicError::Corrupt { .. } => {
            response_code::SYSTEM_ERROR
        }
    }
}

pub fn topic_error(request: &RemotingCommand, error: &TopicError) -> RemotingCommand {
    error_response(request, topic_error_code(error), error_chain(error))
}

/// An error and its sources, joined: "what failed: why".
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

//! The request router: each shard's [`Service`], the one table from request code to
//! processor. A processor's refusal becomes its response here ([`Refused::to_response`]).
//!
//! It sits above both the shard and the processors (connection → router → processor →
//! shard), so neither imports the other's caller.

use std::rc::Rc;

use ringmq_protocol::codes::request_code;
use ringmq_protocol::command::RemotingCommand;

use crate::connection::{Connection, Response, Service};
use crate::processor::{admin, client, message, metadata, offset, pull, send, stats, Answer};
use crate::reply::not_supported;
use crate::shard::Shard;

/// One shard's request router.
#[derive(Debug)]
pub struct Router {
    shard: Rc<Shard>,
}

impl Router {
    /// The [`crate::shard::thread::ServiceFactory`] of the broker.
    pub fn for_shard(shard: Rc<Shard>) -> Rc<Router> {
        Rc::new(Router { shard })
    }
}

impl Service for Router {
    async fn handle(
        self: Rc<Self>,
        connection: Rc<Connection>,
        request: RemotingCommand,
    ) -> Option<Response> {
        let shard = &self.shard;
        let answer: Answer = match request.code {
            request_code::SEND_MESSAGE
            | request_code::SEND_MESSAGE_V2
            | request_code::SEND_BATCH_MESSAGE => send::send(shard, &connection, &request).await,
            request_code::PULL_MESSAGE | request_code::LITE_PULL_MESSAGE => {
                let response = pull::pull(shard, &connection, &request).await;
                return Some(
                    response
                        .unwrap_or_else(|refused| Response::Command(refused.to_response(&request))),
                );
            }
            request_code::QUERY_CONSUMER_OFFSET => {
                offset::query_consumer_offset(shard, &request).await
            }
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
            request_code::HEART_BEAT => client::heartbeat(shard, &connection, &request).await,
            request_code::UNREGISTER_CLIENT => {
                client::unregister(shard, &connection, &request).await
            }
            request_code::GET_CONSUMER_LIST_BY_GROUP => client::consumer_list(shard, &request),
            request_code::LOCK_BATCH_MQ => client::lock_batch(shard, &connection, &request),
            request_code::UNLOCK_BATCH_MQ => client::unlock_batch(shard, &request),
            request_code::GET_CONSUMER_CONNECTION_LIST => client::connection_list(shard, &request),
            request_code::UPDATE_AND_CREATE_TOPIC => admin::create_topic(shard, &request).await,
            request_code::DELETE_TOPIC_IN_BROKER => admin::delete_topic(shard, &request).await,
            request_code::GET_ALL_TOPIC_CONFIG => admin::all_topic_config(shard, &request),
            request_code::GET_ALL_CONSUMER_OFFSET => {
                metadata::all_consumer_offsets(shard, &request).await
            }
            request_code::GET_ALL_DELAY_OFFSET => {
                metadata::all_delay_offsets(shard, &request).await
            }
            request_code::GET_ALL_SUBSCRIPTIONGROUP_CONFIG => {
                metadata::all_subscription_groups(shard, &request)
            }
            request_code::UPDATE_AND_CREATE_SUBSCRIPTIONGROUP => {
                metadata::update_subscription_group(shard, &request).await
            }
            request_code::DELETE_SUBSCRIPTIONGROUP => {
                metadata::delete_subscription_group(shard, &request).await
            }
            request_code::GET_BROKER_RUNTIME_INFO => admin::runtime_info(shard, &request).await,
            request_code::UPDATE_BROKER_CONFIG => {
                admin::update_broker_config(shard, &request).await
            }
            request_code::GET_BROKER_CONFIG => admin::broker_config(shard, &request),
            request_code::GET_TOPIC_CONFIG => admin::topic_config(shard, &request),
            request_code::GET_CONSUME_STATS => stats::consume_stats(shard, &request).await,
            request_code::GET_TOPIC_STATS_INFO => stats::topic_stats(shard, &request).await,
            _ => Ok(not_supported(&request)),
        };
        let response = answer.unwrap_or_else(|refused| refused.to_response(&request));
        Some(Response::Command(response))
    }

    fn connection_closed(&self, connection: &Connection) {
        self.shard.connection_closed(connection);
    }
}

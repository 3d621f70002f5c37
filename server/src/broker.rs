//! The broker's request router on one shard: maps each request code to its processor.
//! Codes not served get REQUEST_CODE_NOT_SUPPORTED with Java's remark (protocol.md §1.7).

use std::rc::Rc;
use std::sync::Arc;

use ringmq_protocol::codes::response_code;
use ringmq_protocol::command::RemotingCommand;

use crate::config::BrokerConfig;
use crate::connection::{Connection, Response, Service};

/// One shard's view of the broker.
#[derive(Debug)]
pub struct BrokerShard {
    pub shard_id: usize,
    pub config: Arc<BrokerConfig>,
}

impl Service for BrokerShard {
    async fn handle(
        self: Rc<Self>,
        _connection: Rc<Connection>,
        request: RemotingCommand,
    ) -> Option<Response> {
        Some(Response::Command(not_supported(&request)))
    }
}

/// The answer to a request code this broker does not serve.
pub fn not_supported(request: &RemotingCommand) -> RemotingCommand {
    RemotingCommand::response_to(request, response_code::REQUEST_CODE_NOT_SUPPORTED)
        .with_remark(format!(" request type {} not supported", request.code))
}

//! Request processors: one module per family of commands, each a function from a decoded
//! request to its answer or a typed refusal ([`Refused`], mapped to a response code in one
//! place, [`error`]). Processors call the shard's narrow API ([`crate::shard::Shard`]) and
//! the shared control plane (topics, groups); they never touch a store directly.

pub mod admin;
pub mod client;
pub mod error;
pub mod message;
pub mod metadata;
pub mod offset;
pub mod pull;
pub mod send;
pub mod stats;

use ringmq_protocol::codes::response_code;
use ringmq_protocol::command::RemotingCommand;
use ringmq_protocol::ext::CommandHeader;

pub use self::error::Refused;

/// What a processor answers: a response, or a refusal the router turns into one.
pub type Answer = Result<RemotingCommand, Refused>;

/// Decodes a typed header; a missing or malformed field is a [`Refused::Header`].
pub fn decode_header<H: CommandHeader>(request: &RemotingCommand) -> Result<H, Refused> {
    Ok(H::from_ext(&request.ext_fields)?)
}

pub fn success(request: &RemotingCommand) -> RemotingCommand {
    RemotingCommand::response_to(request, response_code::SUCCESS)
}

/// RocketMQ's default `retryMaxTimes` of a subscription group.
const DEFAULT_MAX_RECONSUME_TIMES: i32 = 16;
/// Request version from which the header's maxReconsumeTimes is honoured (V3_4_9).
const VERSION_WITH_MAX_RECONSUME: i32 = 121;

/// How many times a message may be consumed again before it goes to the DLQ: the request
/// header's maxReconsumeTimes from version V3_4_9 on, else RocketMQ's default (16). SEND to
/// a `%RETRY%` topic and CONSUMER_SEND_MSG_BACK both decide with it (protocol.md §7.5).
pub fn max_reconsume_times(request: &RemotingCommand, header_value: Option<i32>) -> i32 {
    match header_value {
        Some(max) if request.version >= VERSION_WITH_MAX_RECONSUME => max,
        _ => DEFAULT_MAX_RECONSUME_TIMES,
    }
}

/// Refuses a request that writes to the log on a slave: its log is a copy of its master's.
pub fn refuse_on_slave(shard: &crate::shard::Shard) -> Result<(), Refused> {
    let config = shard.config();
    if config.role == crate::config::Role::Slave {
        return Err(Refused::SlaveTakesNoWrites {
            broker_id: config.broker_id,
        });
    }
    Ok(())
}

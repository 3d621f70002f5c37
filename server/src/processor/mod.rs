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

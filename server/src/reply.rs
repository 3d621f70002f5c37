//! What every service of the process (broker shards, name server) answers the same way.

use ringmq_protocol::codes::response_code;
use ringmq_protocol::command::RemotingCommand;

/// The answer to a request code this process does not serve (Java's remark, with its
/// leading space).
pub fn not_supported(request: &RemotingCommand) -> RemotingCommand {
    RemotingCommand::response_to(request, response_code::REQUEST_CODE_NOT_SUPPORTED)
        .with_remark(format!(" request type {} not supported", request.code))
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

//! A slave's copy of its master's metadata (protocol.md §8.4): every few seconds it asks
//! the master for its topic table, its subscription groups and its committed consumer
//! offsets, adopts the topics (so it serves pulls and registers routes for them) and the
//! groups, hands back the offsets clients
//! committed here that are ahead of the master's, and raises its own where the master's
//! are ahead. Runs on shard 0 of a slave.

use std::rc::Rc;
use std::time::Duration;

use ringmq_engine::error::ErrorChain;
use ringmq_protocol::body::{
    offset_table_key, ConsumerOffsetSerializeWrapper, JsonBody, SubscriptionGroupWrapper,
    TopicConfigSerializeWrapper,
};
use ringmq_protocol::codes::{request_code, response_code};
use ringmq_protocol::command::RemotingCommand;
use ringmq_protocol::ext::CommandHeader;
use ringmq_protocol::headers::UpdateConsumerOffsetRequestHeader;

use crate::remoting_client::RemotingClient;
use crate::shard::Shard;
use crate::shutdown::Shutdown;

/// Time between two copies (RocketMQ 5.x checks every 3 s).
pub const SYNC_INTERVAL: Duration = Duration::from_secs(3);

const CALL_TIMEOUT: Duration = Duration::from_secs(3);

/// Copies the master's metadata every [`SYNC_INTERVAL`] until shutdown.
pub async fn run(shard: Rc<Shard>, master_addr: String, shutdown: std::sync::Arc<Shutdown>) {
    let mut client: Option<RemotingClient> = None;
    let mut last_error = String::new();
    while !shutdown.is_requested() {
        match copy_once(&shard, &master_addr, &mut client).await {
            Ok(()) => last_error.clear(),
            Err(error) => {
                client = None;
                if error != last_error {
                    tracing::warn!(master = %master_addr, %error, "copying the master's topics and offsets failed; retrying");
                    last_error = error;
                }
            }
        }
        compio::time::sleep(SYNC_INTERVAL).await;
    }
}

async fn copy_once(
    shard: &Rc<Shard>,
    master_addr: &str,
    client: &mut Option<RemotingClient>,
) -> Result<(), String> {
    if client.as_ref().is_none_or(RemotingClient::is_closed) {
        *client = Some(
            RemotingClient::connect(master_addr, CALL_TIMEOUT)
                .await
                .map_err(|e| ErrorChain(&e).to_string())?,
        );
    }
    let Some(client) = client.as_ref() else {
        return Err("no connection".to_owned());
    };
    let topics = call(client, request_code::GET_ALL_TOPIC_CONFIG).await?;
    let topics = TopicConfigSerializeWrapper::decode(&topics.body)
        .map_err(|e| format!("the master's topic table: {}", ErrorChain(&e)))?;
    let shared = shard.shared();
    if shared.topics.adopt_master_table(&topics).changed {
        shared.topics_changed();
    }
    let groups = call(client, request_code::GET_ALL_SUBSCRIPTIONGROUP_CONFIG).await?;
    let groups = SubscriptionGroupWrapper::decode(&groups.body)
        .map_err(|e| format!("the master's subscription groups: {}", ErrorChain(&e)))?;
    let writer = std::sync::Arc::clone(shared);
    shared
        .offload
        .run(move || writer.subscription_groups.adopt_master_blocking(&groups))
        .await
        .map_err(|e| ErrorChain(&e).to_string())?
        .map_err(|e| {
            format!(
                "adopting the master's subscription groups: {}",
                ErrorChain(&e)
            )
        })?;
    let offsets = call(client, request_code::GET_ALL_CONSUMER_OFFSET).await?;
    let offsets = ConsumerOffsetSerializeWrapper::decode(&offsets.body)
        .map_err(|e| format!("the master's offsets: {}", ErrorChain(&e)))?;
    hand_back(shard, client, &offsets).await?;
    shard
        .raise_offsets(&offsets)
        .await
        .map_err(|e| format!("applying the master's offsets: {}", ErrorChain(&e)))?;
    Ok(())
}

/// Gives the master the offsets clients committed here that are ahead of its own (a
/// consumer that moved to this slave while the master was away keeps its progress when it
/// returns: the higher offset wins). What cannot be delivered is kept for the next round.
async fn hand_back(
    shard: &Rc<Shard>,
    client: &RemotingClient,
    master_offsets: &ConsumerOffsetSerializeWrapper,
) -> Result<(), String> {
    let entries = shard
        .take_hand_back()
        .await
        .map_err(|e| format!("collecting offsets to hand back: {}", ErrorChain(&e)))?;
    let mut pending = entries.into_iter();
    while let Some(((group, topic, queue_id), offset)) = pending.next() {
        let masters = master_offsets
            .offset_table
            .get(&offset_table_key(&topic, &group))
            .and_then(|queues| queues.get(&queue_id))
            .copied();
        if masters.is_some_and(|m| m >= offset) {
            continue;
        }
        let header = UpdateConsumerOffsetRequestHeader {
            consumer_group: group.clone(),
            topic: topic.clone(),
            queue_id,
            commit_offset: offset,
        };
        let mut request =
            RemotingCommand::request(request_code::UPDATE_CONSUMER_OFFSET, Default::default());
        header.write_ext(&mut request.ext_fields);
        let delivered = match client.call(request, CALL_TIMEOUT).await {
            Ok(response) if response.code == response_code::SUCCESS => Ok(()),
            Ok(response) => Err(format!(
                "the master answered {} to an offset handed back: {}",
                response.code,
                response.remark.unwrap_or_default()
            )),
            Err(error) => Err(ErrorChain(&error).to_string()),
        };
        if let Err(error) = delivered {
            let mut rest = vec![((group, topic, queue_id), offset)];
            rest.extend(pending);
            shard
                .restore_hand_back(rest)
                .await
                .map_err(|e| format!("keeping offsets to hand back: {}", ErrorChain(&e)))?;
            return Err(error);
        }
        tracing::info!(%group, %topic, queue_id, offset, "handed a consumer offset back to the master");
    }
    Ok(())
}

async fn call(client: &RemotingClient, code: i32) -> Result<RemotingCommand, String> {
    let request = RemotingCommand::request(code, Default::default());
    let response = client
        .call(request, CALL_TIMEOUT)
        .await
        .map_err(|e| ErrorChain(&e).to_string())?;
    if response.code != response_code::SUCCESS {
        return Err(format!(
            "request {code} answered {}: {}",
            response.code,
            response.remark.unwrap_or_default()
        ));
    }
    Ok(response)
}

//! Client-session commands: HEART_BEAT, UNREGISTER_CLIENT, GET_CONSUMER_LIST_BY_GROUP,
//! GET_CONSUMER_CONNECTION_LIST (protocol.md §2.6-§2.8, §2.15).

use std::rc::Rc;
use std::sync::Arc;

use ringmq_protocol::body::{
    ConsumerListBody, HeartbeatData, JsonBody, LockBatchRequestBody, LockBatchResponseBody,
    UnlockBatchRequestBody,
};
use ringmq_protocol::command::RemotingCommand;
use ringmq_protocol::headers::{
    GetConsumerConnectionListRequestHeader, GetConsumerListByGroupRequestHeader,
    UnregisterClientRequestHeader,
};

use super::{decode_header, success, Answer, Refused};
use crate::connection::Connection;
use crate::groups::{ClientChannel, ConnectionRef, NotifyTarget};
use crate::shard::shared::BrokerShared;
use crate::shard::Shard;

/// HEART_BEAT: registers the connection in its producer and consumer groups, creates
/// `%RETRY%<group>` topics, and notifies group members when membership changed.
///
/// Decoding the body, updating the groups and creating the retry topics run on the offload
/// thread ([`crate::offload`]): a heartbeat may list thousands of groups (hundreds of ms in
/// a debug build), and the other connections of this shard must not wait for it.
pub async fn heartbeat(
    shard: &Rc<Shard>,
    connection: &Rc<Connection>,
    request: &RemotingCommand,
) -> Answer {
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
    let shared = shard.shared();
    let member = shard.connection_ref(connection);
    let now_ms = shared.clock.monotonic_ms();
    let body = request.body.clone();
    let worker_shared = Arc::clone(shared);
    let (mut notify, topics_created) = shared
        .offload
        .run(move || register_heartbeat(&worker_shared, member, &channel, &body, now_ms))
        .await??;
    if topics_created {
        shared.topics_changed();
    }
    if connection.is_closed() {
        // Closed while the worker registered it: its close may have run first, so remove
        // what this heartbeat added rather than keep a member nobody can reach.
        notify = shared.groups.connection_closed(member);
    }
    if !notify.is_empty() {
        shard.notify_consumer_ids_changed(notify).await;
    }
    Ok(success(request))
}

/// The heavy part of HEART_BEAT (off the ring thread): decodes the body, registers the
/// member, creates the missing retry topics in one table change. Returns who to notify and
/// whether topics were created.
fn register_heartbeat(
    shared: &BrokerShared,
    member: ConnectionRef,
    channel: &ClientChannel,
    body: &[u8],
    now_ms: u64,
) -> Result<(Vec<NotifyTarget>, bool), Refused> {
    let data = HeartbeatData::decode(body).map_err(Refused::body("heartbeat body"))?;
    let outcome = shared.groups.heartbeat(member, channel, &data, now_ms);
    // RocketMQ's autoCreateSubscriptionGroup: every group a client runs has a config.
    let named = data.consumer_data_set.iter().map(|c| c.group_name.as_str());
    if let Err(error) = shared.subscription_groups.ensure_blocking(named) {
        tracing::error!(error = %crate::reply::error_chain(&error), "creating the heartbeat's subscription groups failed");
    }
    let groups = outcome
        .retry_topics
        .iter()
        .map(|retry_topic| retry_topic.trim_start_matches("%RETRY%"));
    // One topic-table change (and one write of the file) for all of this heartbeat's groups.
    let created = shared.topics.create_retry_topics(groups)?;
    Ok((outcome.notify, created))
}

/// UNREGISTER_CLIENT: removes the client from the named groups; always SUCCESS.
pub async fn unregister(
    shard: &Rc<Shard>,
    connection: &Rc<Connection>,
    request: &RemotingCommand,
) -> Answer {
    let header: UnregisterClientRequestHeader = decode_header(request)?;
    let notify = shard.shared().groups.unregister(
        shard.connection_ref(connection),
        &header.client_id,
        header.producer_group.as_deref(),
        header.consumer_group.as_deref(),
    );
    if !notify.is_empty() {
        shard.notify_consumer_ids_changed(notify).await;
    }
    Ok(success(request))
}

/// GET_CONSUMER_LIST_BY_GROUP: the members' client ids, or SYSTEM_ERROR when none.
pub fn consumer_list(shard: &Shard, request: &RemotingCommand) -> Answer {
    let header: GetConsumerListByGroupRequestHeader = decode_header(request)?;
    let Some(ids) = shard.shared().groups.consumer_ids(&header.consumer_group) else {
        return Err(Refused::NoConsumer {
            group: header.consumer_group,
        });
    };
    let bytes = ConsumerListBody {
        consumer_id_list: ids,
    }
    .encode()
    .map_err(Refused::body("encoding the consumer list"))?;
    Ok(success(request).with_body(bytes))
}

/// GET_CONSUMER_CONNECTION_LIST: the group's connections and subscriptions, or
/// CONSUMER_NOT_ONLINE.
pub fn connection_list(shard: &Shard, request: &RemotingCommand) -> Answer {
    let header: GetConsumerConnectionListRequestHeader = decode_header(request)?;
    let Some(info) = shard
        .shared()
        .groups
        .connection_info(&header.consumer_group)
    else {
        return Err(Refused::ConsumerNotOnline {
            group: header.consumer_group,
        });
    };
    let bytes = info
        .encode()
        .map_err(Refused::body("encoding the consumer connections"))?;
    Ok(success(request).with_body(bytes))
}

/// LOCK_BATCH_MQ (41): locks (or renews) for the client those of the queues no other member
/// of its group holds, and answers the set it now holds (`crate::queue_locks`).
pub fn lock_batch(shard: &Shard, connection: &Rc<Connection>, request: &RemotingCommand) -> Answer {
    let body =
        LockBatchRequestBody::decode(&request.body).map_err(Refused::body("LOCK_BATCH_MQ body"))?;
    check_lock_owner(&body.consumer_group, &body.client_id)?;
    let shared = shard.shared();
    let held = shared.queue_locks.try_lock(
        &body.consumer_group,
        &body.client_id,
        shard.connection_ref(connection),
        body.mq_set,
        shared.clock.monotonic_ms(),
    );
    let answer = LockBatchResponseBody {
        lock_ok_mq_set: held.into_iter().collect(),
    };
    let bytes = answer
        .encode()
        .map_err(Refused::body("LOCK_BATCH_MQ answer"))?;
    Ok(success(request).with_body(bytes))
}

/// UNLOCK_BATCH_MQ (42): releases the client's locks on the queues named.
pub fn unlock_batch(shard: &Shard, request: &RemotingCommand) -> Answer {
    let body = UnlockBatchRequestBody::decode(&request.body)
        .map_err(Refused::body("UNLOCK_BATCH_MQ body"))?;
    check_lock_owner(&body.consumer_group, &body.client_id)?;
    shard
        .shared()
        .queue_locks
        .unlock(&body.consumer_group, &body.client_id, body.mq_set);
    Ok(success(request))
}

fn check_lock_owner(group: &str, client_id: &str) -> Result<(), Refused> {
    if group.is_empty() || client_id.is_empty() {
        return Err(Refused::LockOwnerMissing);
    }
    Ok(())
}

//! The broker's metadata tables, whole: GET_ALL_CONSUMER_OFFSET (43),
//! GET_ALL_DELAY_OFFSET (45) and GET_ALL_SUBSCRIPTIONGROUP_CONFIG (201), and the changes to
//! the subscription groups (UPDATE_AND_CREATE_SUBSCRIPTIONGROUP, DELETE_SUBSCRIPTIONGROUP).
//! A slave copies the tables from its master every few seconds (protocol.md §8.4) and
//! mqadmin exports them; GET_ALL_TOPIC_CONFIG (21) is in [`super::admin`].

use std::rc::Rc;

use ringmq_protocol::body::{DelayOffsetSerializeWrapper, JsonBody, SubscriptionGroupConfig};
use ringmq_protocol::command::RemotingCommand;

use super::{success, Answer, Refused};
use crate::shard::Shard;

/// GET_ALL_CONSUMER_OFFSET: every committed offset, gathered from the shards that own the
/// queues, in `consumerOffset.json`'s form.
pub async fn all_consumer_offsets(shard: &Rc<Shard>, request: &RemotingCommand) -> Answer {
    let bytes = shard
        .all_consumer_offsets()
        .await?
        .encode()
        .map_err(Refused::body("encoding the consumer offsets"))?;
    Ok(success(request).with_body(bytes))
}

/// GET_ALL_DELAY_OFFSET: the delay-level queues' progress (`delayOffset.json`'s form:
/// level → offset of the next parked copy to deliver), gathered from the shards.
pub async fn all_delay_offsets(shard: &Rc<Shard>, request: &RemotingCommand) -> Answer {
    let wrapper = DelayOffsetSerializeWrapper {
        offset_table: shard.delay_level_offsets().await?,
        data_version: None,
    };
    let bytes = wrapper
        .encode()
        .map_err(Refused::body("encoding the delay offsets"))?;
    Ok(success(request).with_body(bytes))
}

/// GET_ALL_SUBSCRIPTIONGROUP_CONFIG: the consumer-group configs with their version, in
/// `subscriptionGroup.json`'s form.
pub fn all_subscription_groups(shard: &Shard, request: &RemotingCommand) -> Answer {
    let bytes = shard
        .shared()
        .subscription_groups
        .snapshot()
        .encode()
        .map_err(Refused::body("encoding the subscription groups"))?;
    Ok(success(request).with_body(bytes))
}

/// UPDATE_AND_CREATE_SUBSCRIPTIONGROUP: the body is the group's config (JSON); answered
/// once the table is on disk (written on the offload thread).
pub async fn update_subscription_group(shard: &Shard, request: &RemotingCommand) -> Answer {
    let config = SubscriptionGroupConfig::decode(&request.body)
        .map_err(Refused::body("subscription group config"))?;
    let shared = std::sync::Arc::clone(shard.shared());
    shard
        .shared()
        .offload
        .run(move || shared.subscription_groups.upsert_blocking(config))
        .await??;
    Ok(success(request))
}

/// DELETE_SUBSCRIPTIONGROUP: removes the group's config (`groupName`); answered once the
/// table is on disk. Deleting a group that has none succeeds, as in RocketMQ.
pub async fn delete_subscription_group(shard: &Shard, request: &RemotingCommand) -> Answer {
    let group = request
        .ext_fields
        .get("groupName")
        .filter(|g| !g.is_empty())
        .cloned()
        .ok_or(ringmq_protocol::ext::HeaderError::MissingField { field: "groupName" })?;
    let shared = std::sync::Arc::clone(shard.shared());
    shard
        .shared()
        .offload
        .run(move || shared.subscription_groups.delete_blocking(&group))
        .await??;
    Ok(success(request))
}

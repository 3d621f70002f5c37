//! The broker's metadata tables, whole: GET_ALL_CONSUMER_OFFSET (43) and
//! GET_ALL_DELAY_OFFSET (45). A slave copies them from its master every few seconds
//! (protocol.md §8.4) and mqadmin exports them; GET_ALL_TOPIC_CONFIG (21) is in
//! [`super::admin`].

use std::rc::Rc;

use ringmq_protocol::body::{DelayOffsetSerializeWrapper, JsonBody};
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

/// GET_ALL_DELAY_OFFSET: the delay-level queues' progress. ringmq does not schedule delay
/// levels yet (a message's DELAY property is stored but not acted on), so no delay queue
/// has progress: an empty table, what a RocketMQ broker that never delayed a message
/// answers too.
pub fn all_delay_offsets(request: &RemotingCommand) -> Answer {
    let bytes = DelayOffsetSerializeWrapper::default()
        .encode()
        .map_err(Refused::body("encoding the delay offsets"))?;
    Ok(success(request).with_body(bytes))
}

//! Admin commands (protocol.md §2.15): create/update and delete topics, the topic table,
//! runtime statistics, the broker settings changeable at runtime.

use std::rc::Rc;

use ringmq_protocol::body::{JsonBody, KvTable, TopicConfig};
use ringmq_protocol::command::RemotingCommand;
use ringmq_protocol::headers::{
    CreateTopicRequestHeader, DeleteTopicRequestHeader, TopicRequestHeader,
};

use super::{decode_header, success, Answer, Refused};
use crate::config::{ReplicationMode, Role};
use crate::runtime_config::Change;
use crate::shard::log_replica::LogReplication;
use crate::shard::Shard;
use crate::stats::BrokerStats;

/// UPDATE_AND_CREATE_TOPIC: validates, stores, re-registers, and answers once the topic
/// table is on disk.
pub async fn create_topic(shard: &Rc<Shard>, request: &RemotingCommand) -> Answer {
    let header: CreateTopicRequestHeader = decode_header(request)?;
    let attributes = parse_attributes(header.attributes.as_deref())
        .map_err(|reason| Refused::InvalidAttributes { reason })?;
    let config = TopicConfig {
        topic_name: header.topic,
        read_queue_nums: header.read_queue_nums,
        write_queue_nums: header.write_queue_nums,
        perm: header.perm,
        topic_filter_type: header.topic_filter_type,
        topic_sys_flag: header.topic_sys_flag.unwrap_or(0),
        order: header.order,
        attributes,
    };
    let shared = shard.shared();
    let change = shared.topics.create_or_update(config)?;
    if change.changed {
        shared.topics_changed();
    }
    change.durable().await?;
    Ok(success(request))
}

/// `+key=value,+key2=value2` (RocketMQ 5 topic attributes); a `-key` removal is accepted
/// and dropped since nothing is stored for it.
fn parse_attributes(
    text: Option<&str>,
) -> Result<std::collections::BTreeMap<String, String>, String> {
    let mut attributes = std::collections::BTreeMap::new();
    let Some(text) = text.filter(|t| !t.trim().is_empty()) else {
        return Ok(attributes);
    };
    for item in text.split(',') {
        let item = item.trim();
        if let Some(pair) = item.strip_prefix('+') {
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| format!("attribute {item:?} is not +key=value"))?;
            attributes.insert(key.to_owned(), value.to_owned());
        } else if !item.starts_with('-') {
            return Err(format!("attribute {item:?} must start with + or -"));
        }
    }
    Ok(attributes)
}

/// DELETE_TOPIC_IN_BROKER: removes the topic from the table, then its ConsumeQueues and
/// consumer offsets on every shard (its records age out of the log with their segments).
pub async fn delete_topic(shard: &Rc<Shard>, request: &RemotingCommand) -> Answer {
    let header: DeleteTopicRequestHeader = decode_header(request)?;
    let shared = shard.shared();
    let change = shared.topics.delete(&header.topic)?;
    if change.changed {
        shared.topics_changed();
    }
    // The config first, so that no send or pull is accepted for it any more; then its queues
    // and offsets. A crash between the two leaves queues without a config, which start-up
    // turns back into a topic (Topics::recover_from_log); deleting it again finishes the job.
    change.durable().await?;
    shard.delete_topic_data(&header.topic).await?;
    Ok(success(request))
}

/// GET_ALL_TOPIC_CONFIG: the whole table with its data version.
pub fn all_topic_config(shard: &Shard, request: &RemotingCommand) -> Answer {
    let bytes = shard
        .shared()
        .topics
        .snapshot()
        .encode()
        .map_err(Refused::body("encoding the topic table"))?;
    Ok(success(request).with_body(bytes))
}

/// GET_TOPIC_CONFIG (351): one topic's config, as RocketMQ 5 answers it
/// (`TopicConfigAndQueueMapping`: the config's fields, its `mappingDetail` null and so left
/// out, since ringmq has no static topics); TOPIC_NOT_EXIST for a topic the broker lacks. The
/// 5.x admin asks it in `examineTopicConfig` and on the way of `examineConsumeStats`
/// (mqadmin consumerProgress).
pub fn topic_config(shard: &Shard, request: &RemotingCommand) -> Answer {
    let header: TopicRequestHeader = decode_header(request)?;
    let Some(config) = shard.shared().topics.get(&header.topic) else {
        return Err(Refused::TopicNotExist {
            topic: header.topic,
        });
    };
    let bytes = config
        .encode()
        .map_err(Refused::body("encoding the topic config"))?;
    Ok(success(request).with_body(bytes))
}

/// UPDATE_BROKER_CONFIG (25): a `java.util.Properties` body of settings to change now
/// (`runtime_config`). Every key is checked before anything changes; a key that cannot
/// change at runtime refuses the whole update with INVALID_PARAMETER naming it.
pub async fn update_broker_config(shard: &Rc<Shard>, request: &RemotingCommand) -> Answer {
    let text = String::from_utf8_lossy(&request.body);
    let changes = crate::runtime_config::parse_update(&text)?;
    let shared = shard.shared();
    shared.runtime.apply(&changes);
    for change in &changes {
        if let Change::AccessMessageInMemoryMaxRatio(percent) = change {
            shard.set_page_cache_ratio_percent(*percent).await?;
        }
    }
    tracing::info!(?changes, "broker settings changed at runtime");
    Ok(success(request))
}

/// GET_BROKER_CONFIG (26): the broker's identity and the settings changeable at runtime,
/// as `java.util.Properties` text (what `mqadmin getBrokerConfig` prints).
pub fn broker_config(shard: &Shard, request: &RemotingCommand) -> Answer {
    let shared = shard.shared();
    let config = &shared.config;
    let role = match (config.role, config.replication) {
        (Role::Slave, _) => "SLAVE",
        (Role::Master, ReplicationMode::Sync) => "SYNC_MASTER",
        (Role::Master, ReplicationMode::Async) => "ASYNC_MASTER",
    };
    let mut text = format!(
        "brokerClusterName={}\nbrokerName={}\nbrokerId={}\nbrokerRole={role}\n",
        config.cluster_name, config.broker_name, config.broker_id
    );
    for (key, value) in shared.runtime.properties() {
        text.push_str(&format!("{key}={value}\n"));
    }
    let mut response = success(request).with_body(bytes::Bytes::from(text));
    // Java's GetBrokerConfigResponseHeader carries the config's data version.
    response.ext_fields.insert(
        "version".to_owned(),
        format!(
            "{{\"counter\":0,\"timestamp\":{}}}",
            shared.boot_timestamp_ms
        ),
    );
    Ok(response)
}

/// GET_BROKER_RUNTIME_INFO: a KVTable with the keys `mqadmin clusterList` reads, and the
/// read-redirect figures (docs/decisions.md: read redirection).
pub async fn runtime_info(shard: &Rc<Shard>, request: &RemotingCommand) -> Answer {
    let shared = shard.shared();
    // Counted before this request asks the other shards for their followers: the figure is
    // about the requests the broker served, not about reading it.
    let hops = shared.inboxes.hops();
    let replication = shard.replication_of_all_shards().await?;
    let put = BrokerStats::get(&shared.stats.messages_put);
    let got = BrokerStats::get(&shared.stats.messages_got);
    let uptime_s = (shared.clock.wall_ms() - shared.boot_timestamp_ms).max(1) as f64 / 1000.0;
    let put_tps = put as f64 / uptime_s;
    let got_tps = got as f64 / uptime_s;
    let mut table = std::collections::BTreeMap::new();
    let mut set = |key: &str, value: String| {
        table.insert(key.to_owned(), value);
    };
    set("brokerVersionDesc", "V5_3_3".to_owned());
    set("brokerVersion", "479".to_owned());
    set("bootTimestamp", shared.boot_timestamp_ms.to_string());
    set("msgPutTotalTodayNow", put.to_string());
    set("msgGetTotalTodayNow", got.to_string());
    set("msgPutTotalTodayMorning", "0".to_owned());
    set("msgGetTotalTodayMorning", "0".to_owned());
    set("msgPutTotalYesterdayMorning", "0".to_owned());
    set("msgGetTotalYesterdayMorning", "0".to_owned());
    // RocketMQ prints three windows (10 s, 1 min, 10 min); ringmq reports the average
    // since start in all three until windowed rates are kept.
    set("putTps", format!("{put_tps:.2} {put_tps:.2} {put_tps:.2}"));
    set(
        "getTransferredTps",
        format!("{got_tps:.2} {got_tps:.2} {got_tps:.2}"),
    );
    set("sendThreadPoolQueueSize", "0".to_owned());
    set("pullThreadPoolQueueSize", "0".to_owned());
    set("sendThreadPoolQueueHeadWaitTimeMills", "0".to_owned());
    set("pullThreadPoolQueueHeadWaitTimeMills", "0".to_owned());
    set("pageCacheLockTimeMills", "0".to_owned());
    set("brokerActive", "true".to_owned());
    set("shards", shared.inboxes.shards().to_string());
    // Requests served by another shard than the one holding the connection, since start.
    set("crossShardHops", hops.to_string());
    let stats = &shared.stats;
    set(
        "pullsRedirected",
        BrokerStats::get(&stats.pulls_redirected).to_string(),
    );
    set(
        "pageCacheHotReads",
        BrokerStats::get(&stats.page_cache_hot_reads).to_string(),
    );
    set(
        "pageCacheColdReads",
        BrokerStats::get(&stats.page_cache_cold_reads).to_string(),
    );
    let slaves = slave_lags(&replication);
    if let Some(best) = slaves.values().map(|slave| slave.lag_bytes).min() {
        // RocketMQ's figure: the master's log end minus the furthest slave's.
        set("slaveFallBehindMuch", best.to_string());
    }
    for (broker_id, slave) in &slaves {
        set(&format!("haSlave.{broker_id}.addr"), slave.addr.to_string());
        set(
            &format!("haSlave.{broker_id}.diff"),
            slave.lag_bytes.to_string(),
        );
        set(
            &format!("haSlave.{broker_id}.shardsFollowed"),
            slave.shards.to_string(),
        );
    }
    let bytes = KvTable { table }
        .encode()
        .map_err(Refused::body("encoding the runtime info"))?;
    Ok(success(request).with_body(bytes))
}

/// One slave as the runtime info reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SlaveLag {
    /// Its HA connection's address (of the first shard log it follows).
    addr: std::net::SocketAddr,
    /// Bytes of the master's logs it has not acknowledged, over the shards it follows.
    lag_bytes: u64,
    /// How many shard logs it follows now.
    shards: usize,
}

/// Each connected slave's lag, by broker id.
fn slave_lags(replication: &[LogReplication]) -> std::collections::BTreeMap<i64, SlaveLag> {
    let mut slaves = std::collections::BTreeMap::new();
    for shard in replication {
        for follower in &shard.followers {
            let lag_bytes = shard.log_end.saturating_sub(follower.acked_log_end);
            slaves
                .entry(follower.broker_id)
                .and_modify(|slave: &mut SlaveLag| {
                    slave.lag_bytes += lag_bytes;
                    slave.shards += 1;
                })
                .or_insert(SlaveLag {
                    addr: follower.peer,
                    lag_bytes,
                    shards: 1,
                });
        }
    }
    slaves
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shard::log_replica::FollowerState;

    #[test]
    fn a_slaves_lag_is_summed_over_the_shard_logs_it_follows() {
        let addr = |port| std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let follower = |port, broker_id, acked_log_end| FollowerState {
            peer: addr(port),
            broker_id,
            acked_log_end,
        };
        let replication = [
            LogReplication {
                log_end: 1000,
                followers: vec![follower(5001, 1, 900), follower(5003, 2, 1000)],
            },
            LogReplication {
                log_end: 500,
                followers: vec![follower(5002, 1, 400)],
            },
        ];
        let lags = slave_lags(&replication);
        assert_eq!(
            lags.get(&1),
            Some(&SlaveLag {
                addr: addr(5001),
                lag_bytes: 200,
                shards: 2
            })
        );
        assert_eq!(lags.get(&2).map(|s| s.lag_bytes), Some(0));
    }
}

//! Consumer- and producer-group membership (protocol.md §2.6–§2.9, §2.15
//! GET_CONSUMER_CONNECTION_LIST, §7.3 expiry; design.md §7).
//!
//! **Owns** who is in which group, each consumer group's subscriptions and its
//! consumeType / messageModel / consumeFromWhere, and the time of each member's last
//! heartbeat. A member is a connection, identified by [`ConnectionRef`] (the shard that
//! owns the socket and the connection's id on that shard), with the client's `clientID`,
//! language, version and remote address.
//!
//! **Sharing.** Membership changes on heartbeats (every 30 s per client), on
//! UNREGISTER_CLIENT, on connection close and on expiry: rare enough for one `Mutex`
//! over the whole table. The hot read is a pull without a subscription of its own asking
//! for the group's subscription to a topic; [`ConsumerGroups::subscription`] holds the
//! lock for two hash lookups and an `Arc` clone, nothing more.
//!
//! **No I/O.** Connections live on their shard's thread, so this module sends nothing:
//! every operation that changes a group returns the [`NotifyTarget`]s that must receive
//! NOTIFY_CONSUMER_IDS_CHANGED (and a heartbeat also the `%RETRY%<group>` topics to
//! create); the caller routes the frames to the owning shards. Time is a parameter
//! (`now_ms`, any monotonic millisecond clock), so expiry is testable without sleeping.
//!
//! **Rules** (RocketMQ's `ConsumerManager`/`ConsumerGroupInfo`): a "change" is a
//! connection the group had not seen, or a subscribed topic added or removed; a larger
//! `subVersion` replaces a subscription without being a change; the subscription table
//! is the group's, so the latest heartbeat of any member defines it. A change notifies
//! every member of the group, the new one included. Removing a member (unregister,
//! close, expiry) notifies the members left. Broadcasting groups never notify: their
//! members do not rebalance. A group without members is dropped.
//!
//! **Departures from RocketMQ, on purpose.** Tag subscriptions are normalised from
//! `subString` (tags trimmed, `codeSet` recomputed with Java `String.hashCode`) because
//! some clients send a wrong `codeSet` (`[0,0]` seen on the wire), and broker-side tag
//! filtering of pulls without their own subscription uses it. [`ConsumerGroups::consumer_ids`]
//! lists a `clientID` once even when two connections carry it (a client reconnecting
//! before its old socket is closed); a duplicate would make every member's averaging
//! leave queues unassigned until the old socket expires.
//!
//! **Crash.** Nothing is persisted: clients heartbeat again within 30 s of a restart.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use ringmq_protocol::body::{
    Connection, ConsumeFromWhere, ConsumeType, ConsumerConnection, ConsumerData, HeartbeatData,
    MessageModel, SubscriptionData,
};
use ringmq_protocol::message::java_string_hash;

use crate::topics::{retry_topic, validate_topic_name};

/// RocketMQ's `channelExpiredTimeout`: a member silent this long is removed.
pub const CHANNEL_EXPIRED_TIMEOUT_MS: u64 = 120_000;

/// Groups of one heartbeat registered under one take of the lock (a few ms of work in a
/// debug build, well under a ms in release).
pub const HEARTBEAT_GROUPS_PER_LOCK: usize = 256;

/// The `subString` meaning "every tag".
const SUB_ALL: &str = "*";

/// A client connection: the shard owning its socket and its id on that shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnectionRef {
    /// Shard (thread) that owns the connection.
    pub shard_id: usize,
    /// The connection's id, unique on its shard.
    pub connection_id: u64,
}

/// Who is at the other end of a connection, from the request header and the socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientChannel {
    /// Header `language` (`JAVA`, `CPP`, `GO`, …).
    pub language: String,
    /// Header `version` (the client's protocol version ordinal).
    pub version: i32,
    /// The socket's remote `ip:port`.
    pub remote_addr: String,
}

/// A NOTIFY_CONSUMER_IDS_CHANGED frame to send: header `consumerGroup` = `group`, on the
/// connection `connection_id` of shard `shard_id`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NotifyTarget {
    /// Shard owning the connection.
    pub shard_id: usize,
    /// The connection.
    pub connection_id: u64,
    /// The group whose members changed.
    pub group: String,
}

/// What a heartbeat asks of the caller.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeartbeatOutcome {
    /// NOTIFY_CONSUMER_IDS_CHANGED frames to send.
    pub notify: Vec<NotifyTarget>,
    /// `%RETRY%<group>` of every consumer group in the heartbeat whose retry topic is
    /// a valid name: create each if absent (`Topics::create_retry_topic`), then
    /// re-register with the name server if one was created.
    pub retry_topics: Vec<String>,
}

/// What an expiry scan removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expired {
    /// NOTIFY_CONSUMER_IDS_CHANGED frames to send to the members left.
    pub notify: Vec<NotifyTarget>,
    /// Connections removed from at least one group; RocketMQ closes them.
    pub connections: Vec<ConnectionRef>,
}

#[derive(Debug, Clone)]
struct Member {
    client_id: String,
    channel: ClientChannel,
    last_heartbeat_ms: u64,
}

#[derive(Debug)]
struct ConsumerGroup {
    /// Ordered, so member lists and notify order are deterministic.
    members: BTreeMap<ConnectionRef, Member>,
    consume_type: ConsumeType,
    message_model: MessageModel,
    consume_from_where: ConsumeFromWhere,
    subscriptions: HashMap<String, Arc<SubscriptionData>>,
}

impl ConsumerGroup {
    fn notify_all(&self, group: &str) -> Vec<NotifyTarget> {
        if self.message_model == MessageModel::Broadcasting {
            return Vec::new();
        }
        self.members
            .keys()
            .map(|conn| NotifyTarget {
                shard_id: conn.shard_id,
                connection_id: conn.connection_id,
                group: group.to_owned(),
            })
            .collect()
    }

    /// Applies one heartbeat's subscriptions (§2.6 step 4); true when a topic was added
    /// or removed.
    fn update_subscriptions(&mut self, incoming: &[SubscriptionData]) -> bool {
        let mut changed = false;
        for sub in incoming {
            match self.subscriptions.get(&sub.topic) {
                None => {
                    self.subscriptions
                        .insert(sub.topic.clone(), Arc::new(normalized(sub)));
                    changed = true;
                }
                Some(old) if sub.sub_version > old.sub_version => {
                    self.subscriptions
                        .insert(sub.topic.clone(), Arc::new(normalized(sub)));
                }
                Some(_) => {}
            }
        }
        let before = self.subscriptions.len();
        self.subscriptions
            .retain(|topic, _| incoming.iter().any(|sub| &sub.topic == topic));
        changed || self.subscriptions.len() != before
    }
}

#[derive(Debug, Default)]
struct Inner {
    consumers: HashMap<String, ConsumerGroup>,
    producers: HashMap<String, BTreeMap<ConnectionRef, Member>>,
}

impl Inner {
    /// One consumer group of a heartbeat (§2.6 steps 2-5).
    fn register_consumer(
        &mut self,
        conn: ConnectionRef,
        member: &Member,
        consumer: &ConsumerData,
        outcome: &mut HeartbeatOutcome,
    ) {
        let group = consumer.group_name.as_str();
        if group.is_empty() {
            return;
        }
        let retry = retry_topic(group);
        if validate_topic_name(&retry).is_ok() {
            outcome.retry_topics.push(retry);
        }
        let state = self
            .consumers
            .entry(group.to_owned())
            .or_insert_with(|| ConsumerGroup {
                members: BTreeMap::new(),
                consume_type: consumer.consume_type,
                message_model: consumer.message_model,
                consume_from_where: consumer.consume_from_where,
                subscriptions: HashMap::new(),
            });
        state.consume_type = consumer.consume_type;
        state.message_model = consumer.message_model;
        state.consume_from_where = consumer.consume_from_where;
        // A known connection keeps its place; RocketMQ does not count a changed
        // clientID on the same channel as a change either.
        let new_member = state.members.insert(conn, member.clone()).is_none();
        let topics_changed = state.update_subscriptions(&consumer.subscription_data_set);
        if new_member || topics_changed {
            tracing::debug!(group, new_member, topics_changed, "consumer group changed");
            outcome.notify.extend(state.notify_all(group));
        }
    }

    /// Removes `matches` members of consumer group `group`; returns who to notify.
    fn remove_consumers(
        &mut self,
        group: &str,
        mut matches: impl FnMut(&ConnectionRef, &Member) -> bool,
    ) -> Vec<NotifyTarget> {
        let Some(state) = self.consumers.get_mut(group) else {
            return Vec::new();
        };
        let before = state.members.len();
        state.members.retain(|conn, member| !matches(conn, member));
        if state.members.len() == before {
            return Vec::new();
        }
        let notify = state.notify_all(group);
        if state.members.is_empty() {
            self.consumers.remove(group);
        }
        notify
    }

    fn remove_producers(
        &mut self,
        group: &str,
        mut matches: impl FnMut(&ConnectionRef, &Member) -> bool,
    ) {
        if let Some(members) = self.producers.get_mut(group) {
            members.retain(|conn, member| !matches(conn, member));
            if members.is_empty() {
                self.producers.remove(group);
            }
        }
    }
}

/// Every consumer and producer group of the broker (module documentation).
#[derive(Debug, Default)]
pub struct ConsumerGroups {
    inner: Mutex<Inner>,
}

impl ConsumerGroups {
    /// No groups.
    pub fn new() -> Self {
        ConsumerGroups::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The table stays consistent across a panic in another thread: every mutation
        // is a handful of map operations with no invariant spanning them.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// HEART_BEAT (§2.6): registers or refreshes `conn` in every producer and consumer
    /// group the body lists, with the body's `clientID` and the header's `channel`.
    /// Groups with an empty name are skipped.
    ///
    /// The lock is taken per [`HEARTBEAT_GROUPS_PER_LOCK`] groups, not for the whole
    /// heartbeat: groups are independent (RocketMQ registers each on its own too), and a
    /// heartbeat listing thousands must not keep every pull that looks up a subscription
    /// waiting.
    pub fn heartbeat(
        &self,
        conn: ConnectionRef,
        channel: &ClientChannel,
        data: &HeartbeatData,
        now_ms: u64,
    ) -> HeartbeatOutcome {
        let member = Member {
            client_id: data.client_id.clone(),
            channel: channel.clone(),
            last_heartbeat_ms: now_ms,
        };
        let mut outcome = HeartbeatOutcome::default();
        for consumers in data.consumer_data_set.chunks(HEARTBEAT_GROUPS_PER_LOCK) {
            let mut inner = self.lock();
            for consumer in consumers {
                inner.register_consumer(conn, &member, consumer, &mut outcome);
            }
        }
        for producers in data.producer_data_set.chunks(HEARTBEAT_GROUPS_PER_LOCK) {
            let mut inner = self.lock();
            for producer in producers {
                if producer.group_name.is_empty() {
                    continue;
                }
                inner
                    .producers
                    .entry(producer.group_name.clone())
                    .or_default()
                    .insert(conn, member.clone());
            }
        }
        outcome
    }

    /// UNREGISTER_CLIENT (§2.7): removes from the named groups the member on `conn` and
    /// any member with the same non-empty `client_id` (a client unregistering from a new
    /// connection after a reconnect). `None` or `Some("")` means the group is absent.
    /// Returns who to notify.
    pub fn unregister(
        &self,
        conn: ConnectionRef,
        client_id: &str,
        producer_group: Option<&str>,
        consumer_group: Option<&str>,
    ) -> Vec<NotifyTarget> {
        let matches = |member_conn: &ConnectionRef, member: &Member| {
            *member_conn == conn || (!client_id.is_empty() && member.client_id == client_id)
        };
        let mut inner = self.lock();
        if let Some(group) = producer_group.filter(|g| !g.is_empty()) {
            inner.remove_producers(group, matches);
        }
        match consumer_group.filter(|g| !g.is_empty()) {
            Some(group) => inner.remove_consumers(group, matches),
            None => Vec::new(),
        }
    }

    /// The connection closed: removes it from every group; returns who to notify.
    pub fn connection_closed(&self, conn: ConnectionRef) -> Vec<NotifyTarget> {
        let mut inner = self.lock();
        let groups: Vec<String> = inner
            .consumers
            .iter()
            .filter(|(_, state)| state.members.contains_key(&conn))
            .map(|(group, _)| group.clone())
            .collect();
        let mut notify = Vec::new();
        for group in groups {
            notify.extend(inner.remove_consumers(&group, |c, _| *c == conn));
        }
        let producer_groups: Vec<String> = inner
            .producers
            .iter()
            .filter(|(_, members)| members.contains_key(&conn))
            .map(|(group, _)| group.clone())
            .collect();
        for group in producer_groups {
            inner.remove_producers(&group, |c, _| *c == conn);
        }
        notify
    }

    /// Removes members whose last heartbeat in a group is `timeout_ms` or more before
    /// `now_ms` (RocketMQ: [`CHANNEL_EXPIRED_TIMEOUT_MS`], scanned every 10 s).
    pub fn expire(&self, now_ms: u64, timeout_ms: u64) -> Expired {
        let is_stale =
            |member: &Member| now_ms.saturating_sub(member.last_heartbeat_ms) >= timeout_ms;
        let mut inner = self.lock();
        let mut removed = BTreeSet::new();
        let mut notify = Vec::new();
        let groups: Vec<String> = inner.consumers.keys().cloned().collect();
        for group in groups {
            notify.extend(inner.remove_consumers(&group, |conn, member| {
                let stale = is_stale(member);
                if stale {
                    removed.insert(*conn);
                }
                stale
            }));
        }
        let producer_groups: Vec<String> = inner.producers.keys().cloned().collect();
        for group in producer_groups {
            inner.remove_producers(&group, |conn, member| {
                let stale = is_stale(member);
                if stale {
                    removed.insert(*conn);
                }
                stale
            });
        }
        if !removed.is_empty() {
            tracing::info!(connections = removed.len(), "expired silent group members");
        }
        Expired {
            notify,
            connections: removed.into_iter().collect(),
        }
    }

    /// GET_CONSUMER_LIST_BY_GROUP (§2.8): the members' `clientID`s exactly as their
    /// heartbeats named them, sorted, each once. `None` when the group has no member
    /// (answer SYSTEM_ERROR `"no consumer for this group, <g>"`).
    pub fn consumer_ids(&self, group: &str) -> Option<Vec<String>> {
        let inner = self.lock();
        let state = inner.consumers.get(group)?;
        let ids: BTreeSet<&str> = state
            .members
            .values()
            .map(|m| m.client_id.as_str())
            .collect();
        if ids.is_empty() {
            return None;
        }
        Some(ids.into_iter().map(str::to_owned).collect())
    }

    /// The group's subscription to `topic` (its `sub_version` included), for a pull that
    /// carries none. `None` when the group is offline or does not subscribe the topic
    /// (answer SUBSCRIPTION_NOT_EXIST).
    pub fn subscription(&self, group: &str, topic: &str) -> Option<Arc<SubscriptionData>> {
        self.lock()
            .consumers
            .get(group)?
            .subscriptions
            .get(topic)
            .cloned()
    }

    /// GET_CONSUMER_CONNECTION_LIST (§2.15) body. `None` when the group is not online
    /// (answer CONSUMER_NOT_ONLINE 206).
    pub fn connection_info(&self, group: &str) -> Option<ConsumerConnection> {
        let inner = self.lock();
        let state = inner.consumers.get(group)?;
        Some(ConsumerConnection {
            connection_set: state.members.values().map(to_connection).collect(),
            subscription_table: state
                .subscriptions
                .iter()
                .map(|(topic, sub)| (topic.clone(), SubscriptionData::clone(sub)))
                .collect(),
            consume_type: state.consume_type,
            message_model: state.message_model,
            consume_from_where: state.consume_from_where,
        })
    }

    /// The group's message model from its latest heartbeat, if it is online.
    pub fn message_model(&self, group: &str) -> Option<MessageModel> {
        self.lock().consumers.get(group).map(|s| s.message_model)
    }

    /// Online consumer groups subscribing `topic`, sorted (consume stats, "consumed by whom").
    pub fn groups_subscribed_to(&self, topic: &str) -> Vec<String> {
        let inner = self.lock();
        let mut groups: Vec<String> = inner
            .consumers
            .iter()
            .filter(|(_, state)| state.subscriptions.contains_key(topic))
            .map(|(group, _)| group.clone())
            .collect();
        groups.sort_unstable();
        groups
    }

    /// The topics an online group subscribes, sorted (consume stats topic selection).
    pub fn subscribed_topics(&self, group: &str) -> Vec<String> {
        let inner = self.lock();
        let mut topics: Vec<String> = inner
            .consumers
            .get(group)
            .map(|state| state.subscriptions.keys().cloned().collect())
            .unwrap_or_default();
        topics.sort_unstable();
        topics
    }

    /// The connections of a producer group (GET_PRODUCER_CONNECTION_LIST, transaction
    /// checks). `None` when the group has no member.
    pub fn producer_connections(&self, group: &str) -> Option<Vec<(ConnectionRef, Connection)>> {
        let inner = self.lock();
        let members = inner.producers.get(group)?;
        Some(
            members
                .iter()
                .map(|(conn, member)| (*conn, to_connection(member)))
                .collect(),
        )
    }
}

fn to_connection(member: &Member) -> Connection {
    Connection {
        client_id: member.client_id.clone(),
        client_addr: member.channel.remote_addr.clone(),
        language: member.channel.language.clone(),
        version: member.channel.version,
    }
}

/// A tag subscription rebuilt from its `subString` (module documentation); SQL92 and
/// other expression types are kept as sent.
fn normalized(sub: &SubscriptionData) -> SubscriptionData {
    let is_tag = sub.expression_type.is_empty() || sub.expression_type.eq_ignore_ascii_case("TAG");
    if !is_tag {
        return sub.clone();
    }
    let expression = sub.sub_string.trim();
    let tags: Vec<String> = if expression.is_empty() || expression == SUB_ALL {
        Vec::new()
    } else {
        expression
            .split("||")
            .map(str::trim)
            .filter(|tag| !tag.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let sub_string = if expression.is_empty() {
        SUB_ALL.to_owned()
    } else {
        sub.sub_string.clone()
    };
    SubscriptionData {
        code_set: tags.iter().map(|tag| java_string_hash(tag)).collect(),
        tags_set: tags,
        sub_string,
        ..sub.clone()
    }
}

#[cfg(test)]
mod tests;

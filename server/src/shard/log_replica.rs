//! The shard's side of log replication (design.md §8): what the master's HA connection and
//! the slave's link (`crate::replication`) need from this shard's store, and which slaves
//! are following this shard's log. Everything runs on the shard that owns the log: a
//! replication connection is handed to its shard once its hello names the shard.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;

use bytes::Bytes;
use ringmq_engine::error::StoreError;
use ringmq_engine::store::ReplicationFrame;
use ringmq_protocol::body::{split_offset_table_key, ConsumerOffsetSerializeWrapper};

use super::sync_replication::{AckWaiters, MAX_GAP_NOT_IN_SYNC_BYTES};
use super::Shard;

/// A slave following this shard's log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowerState {
    /// Its HA connection's peer address.
    pub peer: SocketAddr,
    /// Its `--broker-id`, from its hello.
    pub broker_id: i64,
    /// Where its log ends, as it last reported.
    pub acked_log_end: u64,
}

/// One shard log's end and the slaves following it (GET_BROKER_RUNTIME_INFO).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogReplication {
    /// Where the shard's dispatched log ends.
    pub log_end: u64,
    /// The slaves following it now.
    pub followers: Vec<FollowerState>,
}

/// The slaves following this shard's log, by connection.
#[derive(Debug, Default)]
pub struct Followers {
    links: RefCell<Vec<(u64, FollowerState)>>,
    next_id: std::cell::Cell<u64>,
    /// Sends waiting for an ack (SYNC_MASTER): acks and disconnects answer them.
    waiters: AckWaiters,
}

impl Followers {
    /// Registers a new follower; returns its id.
    pub fn add(&self, peer: SocketAddr, broker_id: i64, log_end: u64) -> u64 {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        self.links.borrow_mut().push((
            id,
            FollowerState {
                peer,
                broker_id,
                acked_log_end: log_end,
            },
        ));
        id
    }

    /// A follower reported where its log ends.
    pub fn acked(&self, id: u64, log_end: u64) {
        if let Some((_, state)) = self.links.borrow_mut().iter_mut().find(|(i, _)| *i == id) {
            state.acked_log_end = state.acked_log_end.max(log_end);
        }
        self.waiters.acked(log_end);
    }

    /// Where a follower's log ends, as it last reported.
    pub fn acked_end(&self, id: u64) -> Option<u64> {
        let links = self.links.borrow();
        links
            .iter()
            .find(|(i, _)| *i == id)
            .map(|(_, s)| s.acked_log_end)
    }

    /// A follower's connection closed.
    pub fn remove(&self, id: u64) {
        self.links.borrow_mut().retain(|(i, _)| *i != id);
        if self.links.borrow().is_empty() {
            self.waiters.followers_gone();
        }
    }

    /// The followers now connected.
    pub fn list(&self) -> Vec<FollowerState> {
        self.links.borrow().iter().map(|(_, s)| *s).collect()
    }

    /// Whether a connected follower has acknowledged `log_end` or more.
    pub fn acked_at_least(&self, log_end: u64) -> bool {
        self.links
            .borrow()
            .iter()
            .any(|(_, s)| s.acked_log_end >= log_end)
    }

    /// Whether a connected follower is close enough to `log_end` to be waited for
    /// (RocketMQ's `isSlaveOK`).
    pub fn may_ack(&self, log_end: u64) -> bool {
        self.links
            .borrow()
            .iter()
            .any(|(_, s)| log_end.saturating_sub(s.acked_log_end) < MAX_GAP_NOT_IN_SYNC_BYTES)
    }

    /// The sends waiting for an ack.
    pub fn waiters(&self) -> &AckWaiters {
        &self.waiters
    }
}

/// Slave: offsets clients committed to this shard since they were last handed to the
/// master, newest per queue. Handed back by the slave's metadata copy
/// (`crate::replication::config_sync`), where the higher of the two offsets wins.
#[derive(Debug, Default)]
pub struct HandBack {
    entries: RefCell<HashMap<OffsetKey, i64>>,
}

/// (group, topic, queue id).
pub type OffsetKey = (String, String, i32);

impl HandBack {
    /// A client committed `offset`.
    pub fn note(&self, group: &str, topic: &str, queue_id: i32, offset: i64) {
        self.entries
            .borrow_mut()
            .insert((group.to_owned(), topic.to_owned(), queue_id), offset);
    }

    /// Takes every entry; what is not delivered goes back with [`HandBack::restore`].
    pub fn take(&self) -> Vec<(OffsetKey, i64)> {
        self.entries.borrow_mut().drain().collect()
    }

    /// Puts back entries that could not be delivered, unless a newer commit replaced them.
    pub fn restore(&self, entries: Vec<(OffsetKey, i64)>) {
        let mut mine = self.entries.borrow_mut();
        for (key, offset) in entries {
            mine.entry(key).or_insert(offset);
        }
    }
}

impl Shard {
    /// Slave: takes the offsets clients committed on every shard since the last call.
    pub async fn take_hand_back(
        self: &Rc<Self>,
    ) -> Result<Vec<(OffsetKey, i64)>, super::ShardError> {
        let mut all = Vec::new();
        for owner in 0..self.shared.shards() {
            all.extend(
                self.on_shard(
                    owner,
                    |owner: Rc<Shard>| async move { owner.hand_back.take() },
                )
                .await?,
            );
        }
        Ok(all)
    }

    /// Slave: puts back offsets the master was not given (each to the shard of its queue).
    pub async fn restore_hand_back(
        self: &Rc<Self>,
        entries: Vec<(OffsetKey, i64)>,
    ) -> Result<(), super::ShardError> {
        let mut by_owner: Vec<Vec<(OffsetKey, i64)>> = vec![Vec::new(); self.shared.shards()];
        for (key, offset) in entries {
            let owner = self.owner_of(&key.1, key.2);
            if let Some(list) = by_owner.get_mut(owner) {
                list.push((key, offset));
            }
        }
        for (owner, entries) in by_owner.into_iter().enumerate() {
            if !entries.is_empty() {
                self.on_shard(owner, move |owner: Rc<Shard>| async move {
                    owner.hand_back.restore(entries);
                })
                .await?;
            }
        }
        Ok(())
    }

    /// Master: the next frame of this shard's log from `log_offset` (see
    /// [`ringmq_engine::store::Store::replication_frame`]).
    pub async fn replication_frame(
        &self,
        log_offset: u64,
        max_bytes: usize,
    ) -> Result<Option<ReplicationFrame>, StoreError> {
        self.store.replication_frame(log_offset, max_bytes).await
    }

    /// Master: waits until this shard's log has records past `log_offset`.
    pub async fn wait_log_past(&self, log_offset: u64) -> Result<(), StoreError> {
        self.store.wait_dispatched_past(log_offset).await
    }

    /// Where this shard's dispatched log ends.
    pub fn log_end(&self) -> u64 {
        self.store.dispatched_log_end()
    }

    /// CRC-32 of the log's bytes in `range` (within one segment, below the log's end).
    pub async fn log_crc(&self, range: std::ops::Range<u64>) -> Result<u32, StoreError> {
        let bytes = self.store.read_log_range(range).await?;
        Ok(crc32fast::hash(&bytes))
    }

    /// Slave: appends a frame of the master's log.
    pub async fn append_replicated(&self, log_offset: u64, bytes: Bytes) -> Result<(), StoreError> {
        self.store.append_replicated(log_offset, bytes).await
    }

    /// Slave: takes the master's committed offsets where they are ahead of this broker's
    /// (a consumer that committed here while the master was away keeps its progress: the
    /// higher offset wins). Each queue's offset goes to the shard that owns the queue.
    pub async fn raise_offsets(
        self: &Rc<Self>,
        table: &ConsumerOffsetSerializeWrapper,
    ) -> Result<usize, super::ShardError> {
        let mut by_owner: Vec<Vec<(String, String, i32, i64)>> =
            vec![Vec::new(); self.shared.shards()];
        for (key, queues) in &table.offset_table {
            let Some((topic, group)) = split_offset_table_key(key) else {
                continue;
            };
            for (&queue_id, &offset) in queues {
                let owner = self.owner_of(topic, queue_id);
                if let Some(list) = by_owner.get_mut(owner) {
                    list.push((group.to_owned(), topic.to_owned(), queue_id, offset));
                }
            }
        }
        let mut raised = 0;
        for (owner, entries) in by_owner.into_iter().enumerate() {
            if entries.is_empty() {
                continue;
            }
            raised += self
                .on_shard(owner, move |owner: Rc<Shard>| async move {
                    let mut offsets = owner.offsets.borrow_mut();
                    let mut raised = 0;
                    for (group, topic, queue_id, offset) in entries {
                        if offsets
                            .get(&group, &topic, queue_id)
                            .is_none_or(|mine| mine < offset)
                        {
                            offsets.commit(&group, &topic, queue_id, offset);
                            raised += 1;
                        }
                    }
                    raised
                })
                .await?;
        }
        Ok(raised)
    }

    /// Master: the slaves following this shard's log.
    pub fn followers(&self) -> &Followers {
        &self.followers
    }

    /// Every shard log's end and followers, shard by shard.
    pub async fn replication_of_all_shards(
        self: &Rc<Self>,
    ) -> Result<Vec<LogReplication>, super::ShardError> {
        let mut all = Vec::with_capacity(self.shared.shards());
        for owner in 0..self.shared.shards() {
            all.push(
                self.on_shard(owner, |owner: Rc<Shard>| async move {
                    LogReplication {
                        log_end: owner.log_end(),
                        followers: owner.followers.list(),
                    }
                })
                .await?,
            );
        }
        Ok(all)
    }
}

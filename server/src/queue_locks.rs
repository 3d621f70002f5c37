//! Queue locks of orderly consumption (RocketMQ's `RebalanceLockManager`, protocol.md §7.5):
//! LOCK_BATCH_MQ gives a client those queues of its group that no other client holds, and
//! renews the ones it already holds; UNLOCK_BATCH_MQ gives them back. An orderly consumer
//! consumes a queue only while it holds the queue's lock, so each queue is consumed by one
//! member at a time, in order.
//!
//! A lock lapses [`LOCK_MAX_LIVE`] after its last renewal (RocketMQ's
//! `rocketmq.broker.rebalance.lockMaxLiveTime`, 60 s; clients renew every 20 s). Unlike
//! RocketMQ, a lock also goes when the connection that took it closes: a member killed with
//! SIGKILL frees its queues as soon as the broker sees its socket close, not 60 s later.
//!
//! Broker-wide and in memory only (as in RocketMQ): after a restart clients lock again.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use ringmq_protocol::body::MessageQueue;

use crate::groups::ConnectionRef;

/// How long a lock lives without a renewal.
pub const LOCK_MAX_LIVE: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
struct Lock {
    client_id: String,
    /// The connection whose request took or last renewed it.
    connection: ConnectionRef,
    renewed_ms: u64,
}

impl Lock {
    fn is_live(&self, now_ms: u64) -> bool {
        now_ms.saturating_sub(self.renewed_ms) <= LOCK_MAX_LIVE.as_millis() as u64
    }
}

/// The locks, by group and queue (module documentation).
#[derive(Debug, Default)]
pub struct QueueLocks {
    groups: Mutex<HashMap<String, HashMap<MessageQueue, Lock>>>,
}

impl QueueLocks {
    /// LOCK_BATCH_MQ: locks or renews each of `queues` for `client_id` where no other client
    /// holds a live lock; returns the queues the client now holds, in the order asked.
    pub fn try_lock(
        &self,
        group: &str,
        client_id: &str,
        connection: ConnectionRef,
        queues: impl IntoIterator<Item = MessageQueue>,
        now_ms: u64,
    ) -> Vec<MessageQueue> {
        let mut groups = self.groups.lock().unwrap_or_else(PoisonError::into_inner);
        let locks = groups.entry(group.to_owned()).or_default();
        let mut held = Vec::new();
        for queue in queues {
            let free = match locks.get(&queue) {
                Some(lock) => lock.client_id == client_id || !lock.is_live(now_ms),
                None => true,
            };
            if free {
                locks.insert(
                    queue.clone(),
                    Lock {
                        client_id: client_id.to_owned(),
                        connection,
                        renewed_ms: now_ms,
                    },
                );
                held.push(queue);
            }
        }
        held
    }

    /// UNLOCK_BATCH_MQ: releases those of `queues` that `client_id` holds (another client's
    /// locks are left alone).
    pub fn unlock(
        &self,
        group: &str,
        client_id: &str,
        queues: impl IntoIterator<Item = MessageQueue>,
    ) {
        let mut groups = self.groups.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(locks) = groups.get_mut(group) else {
            return;
        };
        for queue in queues {
            if locks
                .get(&queue)
                .is_some_and(|lock| lock.client_id == client_id)
            {
                locks.remove(&queue);
            }
        }
        if locks.is_empty() {
            groups.remove(group);
        }
    }

    /// A connection closed: the locks it took go with it. Returns how many.
    pub fn connection_closed(&self, connection: ConnectionRef) -> usize {
        let mut groups = self.groups.lock().unwrap_or_else(PoisonError::into_inner);
        let mut released = 0;
        groups.retain(|_, locks| {
            let before = locks.len();
            locks.retain(|_, lock| lock.connection != connection);
            released += before - locks.len();
            !locks.is_empty()
        });
        released
    }

    /// The client holding a live lock on `queue` for `group`, if any.
    pub fn holder(&self, group: &str, queue: &MessageQueue, now_ms: u64) -> Option<String> {
        let groups = self.groups.lock().unwrap_or_else(PoisonError::into_inner);
        groups
            .get(group)?
            .get(queue)
            .filter(|lock| lock.is_live(now_ms))
            .map(|lock| lock.client_id.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mq(queue_id: i32) -> MessageQueue {
        MessageQueue {
            topic: "T".to_owned(),
            broker_name: "b".to_owned(),
            queue_id,
        }
    }

    fn conn(connection_id: u64) -> ConnectionRef {
        ConnectionRef {
            shard_id: 0,
            connection_id,
        }
    }

    #[test]
    fn a_held_queue_is_refused_to_another_client_until_it_lapses() {
        let locks = QueueLocks::default();
        assert_eq!(
            locks.try_lock("G", "A", conn(1), [mq(0), mq(1)], 0),
            [mq(0), mq(1)]
        );
        assert_eq!(
            locks.try_lock("G", "B", conn(2), [mq(1), mq(2)], 1_000),
            [mq(2)]
        );
        // A renews queue 0 at 30 s; queue 1 lapses at 60 s after its lock at 0.
        assert_eq!(locks.try_lock("G", "A", conn(1), [mq(0)], 30_000), [mq(0)]);
        let lapse = LOCK_MAX_LIVE.as_millis() as u64 + 1;
        assert_eq!(
            locks.try_lock("G", "B", conn(2), [mq(0), mq(1)], lapse),
            [mq(1)]
        );
        assert_eq!(locks.holder("G", &mq(0), lapse).as_deref(), Some("A"));
        // Another group locks the same queues independently.
        assert_eq!(locks.try_lock("H", "C", conn(3), [mq(0)], lapse), [mq(0)]);
    }

    #[test]
    fn unlock_releases_only_the_callers_locks() {
        let locks = QueueLocks::default();
        locks.try_lock("G", "A", conn(1), [mq(0), mq(1)], 0);
        locks.unlock("G", "B", [mq(0)]);
        assert_eq!(locks.holder("G", &mq(0), 0).as_deref(), Some("A"));
        locks.unlock("G", "A", [mq(0)]);
        assert_eq!(locks.holder("G", &mq(0), 0), None);
        assert_eq!(
            locks.try_lock("G", "B", conn(2), [mq(0), mq(1)], 0),
            [mq(0)]
        );
    }

    #[test]
    fn a_closed_connection_gives_its_locks_back() {
        let locks = QueueLocks::default();
        locks.try_lock("G", "A", conn(1), [mq(0), mq(1)], 0);
        locks.try_lock("H", "A", conn(1), [mq(0)], 0);
        locks.try_lock("G", "B", conn(2), [mq(2)], 0);
        assert_eq!(locks.connection_closed(conn(1)), 3);
        assert_eq!(
            locks.try_lock("G", "B", conn(2), [mq(0), mq(1)], 0),
            [mq(0), mq(1)]
        );
        assert_eq!(locks.holder("H", &mq(0), 0), None);
    }
}

//! SYNC_MASTER (`--replication sync`, protocol.md §8.5): a send is answered SEND_OK only once
//! a slave has acknowledged a log end at or past the end of its records in this shard's log.
//!
//! **Owns** the sends of this shard waiting for an ack ([`AckWaiters`]), keyed by the log end
//! they need. Everything runs on the shard that owns the log: the append, the slave's acks
//! (its HA connection was handed to this shard) and the wait. The wait is event-driven: an
//! ack that raises a follower's acknowledged end completes every waiter at or below it
//! (one ordered-map split, no polling), and the last follower's disconnect fails the rest at
//! once, since no ack can come over a closed connection.
//!
//! **Statuses**, as RocketMQ 4.x's `CommitLog.handleHA` gives them:
//! - no follower connected, or every one is `haMaxGapNotInSync` (256 MiB) or more behind the
//!   records' end, when the append completes: SLAVE_NOT_AVAILABLE, at once;
//! - no ack within `--sync-replication-timeout-ms` (`syncFlushTimeout`, 5 s), or every
//!   follower disconnected during the wait: FLUSH_SLAVE_TIMEOUT. Java keeps waiting for the
//!   timeout after a disconnect and then answers FLUSH_SLAVE_TIMEOUT; ringmq gives that
//!   status as soon as the last follower is gone.
//!
//! Either way the records stay in the master's log (and reach the slave when it returns):
//! the status tells the producer they may not survive the master's loss, as in RocketMQ.
//!
//! **Crash.** Nothing here is persisted: a waiting send whose master dies is never
//! answered, and its producer times out.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::time::Duration;

use futures_channel::oneshot;

use super::Shard;
use crate::config::{ReplicationMode, Role};

/// A follower this far or further behind a send's records does not count as a slave that
/// could acknowledge it (RocketMQ's `haMaxGapNotInSync`): the send is answered
/// SLAVE_NOT_AVAILABLE at once instead of waiting out the timeout.
pub const MAX_GAP_NOT_IN_SYNC_BYTES: u64 = 256 * 1024 * 1024;

/// What the master's replication did for an append, as the producer is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicaStatus {
    /// ASYNC_MASTER, or the producer asked not to wait (`WAIT=false`): answered at once.
    NotWaited,
    /// A slave acknowledged the records.
    Acked,
    /// No slave could acknowledge the records (RocketMQ's SLAVE_NOT_AVAILABLE, code 11).
    SlaveNotAvailable,
    /// No acknowledgement within the timeout, or the slaves went away meanwhile
    /// (FLUSH_SLAVE_TIMEOUT, code 12).
    FlushSlaveTimeout,
}

impl ReplicaStatus {
    /// Java's `PutMessageStatus` name, which send-back puts in its SYSTEM_ERROR remark.
    pub fn java_name(self) -> &'static str {
        match self {
            ReplicaStatus::NotWaited | ReplicaStatus::Acked => "PUT_OK",
            ReplicaStatus::SlaveNotAvailable => "SLAVE_NOT_AVAILABLE",
            ReplicaStatus::FlushSlaveTimeout => "FLUSH_SLAVE_TIMEOUT",
        }
    }

    /// Whether the producer may be told SEND_OK.
    pub fn is_ok(self) -> bool {
        matches!(self, ReplicaStatus::NotWaited | ReplicaStatus::Acked)
    }
}

/// How a wait ended, as the waiter learns it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Woken {
    Acked,
    FollowersGone,
}

/// The sends of one shard waiting for a follower's ack, by the log end each needs. Pure
/// bookkeeping over channels: no I/O, no clock.
#[derive(Debug, Default)]
pub struct AckWaiters {
    /// `(log end needed, waiter id)`: the id keeps equal ends apart.
    waiting: RefCell<BTreeMap<(u64, u64), oneshot::Sender<Woken>>>,
    next_id: Cell<u64>,
}

/// One registered waiter; dropping it (answered, timed out or cancelled) forgets it, so a
/// silent follower cannot make the table grow past the sends in flight.
#[derive(Debug)]
pub struct AckWait<'a> {
    waiters: &'a AckWaiters,
    key: (u64, u64),
    woken: oneshot::Receiver<Woken>,
}

impl AckWaiters {
    /// Registers a send that needs a follower's ack of `log_end`.
    pub fn register(&self, log_end: u64) -> AckWait<'_> {
        let id = self.next_id.get();
        self.next_id.set(id.wrapping_add(1));
        let (tx, rx) = oneshot::channel();
        let key = (log_end, id);
        self.waiting.borrow_mut().insert(key, tx);
        AckWait {
            waiters: self,
            key,
            woken: rx,
        }
    }

    /// A follower acknowledged `acked_log_end`: every send needing no more is answered.
    pub fn acked(&self, acked_log_end: u64) {
        let mut waiting = self.waiting.borrow_mut();
        let first_unacked = (acked_log_end.saturating_add(1), 0);
        let still_waiting = waiting.split_off(&first_unacked);
        let done = std::mem::replace(&mut *waiting, still_waiting);
        drop(waiting);
        for (_, tx) in done {
            // A waiter that is gone (its request was dropped) needs no answer.
            let _ = tx.send(Woken::Acked);
        }
    }

    /// No follower is connected any more: nobody can acknowledge, fail every waiter now.
    pub fn followers_gone(&self) {
        let done = std::mem::take(&mut *self.waiting.borrow_mut());
        for (_, tx) in done {
            let _ = tx.send(Woken::FollowersGone);
        }
    }

    /// Sends waiting now.
    pub fn len(&self) -> usize {
        self.waiting.borrow().len()
    }

    /// Whether no send is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl AckWait<'_> {
    /// Waits up to `timeout` for the ack.
    pub async fn wait(mut self, timeout: Duration) -> ReplicaStatus {
        match compio::time::timeout(timeout, &mut self.woken).await {
            Ok(Ok(Woken::Acked)) => ReplicaStatus::Acked,
            // Followers gone, the table dropped (shutdown), or the timeout.
            Ok(Ok(Woken::FollowersGone)) | Ok(Err(oneshot::Canceled)) | Err(_) => {
                ReplicaStatus::FlushSlaveTimeout
            }
        }
    }
}

impl Drop for AckWait<'_> {
    fn drop(&mut self) {
        if let Ok(mut waiting) = self.waiters.waiting.try_borrow_mut() {
            waiting.remove(&self.key);
        }
    }
}

impl Shard {
    /// Whether this broker answers sends only after a slave has their bytes.
    pub fn is_sync_master(&self) -> bool {
        let config = &self.shared.config;
        config.role == Role::Master && config.replication == ReplicationMode::Sync
    }

    /// SYNC_MASTER: waits until a follower has acknowledged this shard's log up to
    /// `log_end` (the end of a send's last record), bounded by the configured timeout.
    /// Runs on this shard (its followers and their acks are here).
    pub async fn wait_replicated(&self, log_end: u64) -> ReplicaStatus {
        let followers = self.followers();
        if followers.acked_at_least(log_end) {
            return ReplicaStatus::Acked;
        }
        if !followers.may_ack(log_end) {
            return ReplicaStatus::SlaveNotAvailable;
        }
        let timeout = self.shared.config.sync_replication_timeout;
        followers.waiters().register(log_end).wait(timeout).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn woken(wait: &mut AckWait<'_>) -> Option<Woken> {
        wait.woken.try_recv().unwrap()
    }

    #[test]
    fn an_ack_answers_exactly_the_sends_it_covers() {
        let waiters = AckWaiters::default();
        let mut low = waiters.register(100);
        let mut same = waiters.register(100);
        let mut high = waiters.register(200);
        waiters.acked(99);
        assert_eq!(woken(&mut low), None);
        waiters.acked(100);
        assert_eq!(woken(&mut low), Some(Woken::Acked));
        assert_eq!(woken(&mut same), Some(Woken::Acked));
        assert_eq!(woken(&mut high), None);
        assert_eq!(waiters.len(), 1);
        waiters.acked(u64::MAX);
        assert_eq!(woken(&mut high), Some(Woken::Acked));
        assert!(waiters.is_empty());
    }

    #[test]
    fn the_last_followers_disconnect_fails_every_waiter() {
        let waiters = AckWaiters::default();
        let mut a = waiters.register(10);
        let mut b = waiters.register(20);
        waiters.followers_gone();
        assert_eq!(woken(&mut a), Some(Woken::FollowersGone));
        assert_eq!(woken(&mut b), Some(Woken::FollowersGone));
        assert!(waiters.is_empty());
    }

    #[test]
    fn a_waiter_dropped_before_its_ack_is_forgotten() {
        let waiters = AckWaiters::default();
        let wait = waiters.register(10);
        assert_eq!(waiters.len(), 1);
        drop(wait);
        assert!(waiters.is_empty());
    }

    #[test]
    fn only_acked_and_async_answers_are_send_ok() {
        assert!(ReplicaStatus::Acked.is_ok());
        assert!(ReplicaStatus::NotWaited.is_ok());
        assert!(!ReplicaStatus::SlaveNotAvailable.is_ok());
        assert!(!ReplicaStatus::FlushSlaveTimeout.is_ok());
        assert_eq!(
            ReplicaStatus::FlushSlaveTimeout.java_name(),
            "FLUSH_SLAVE_TIMEOUT"
        );
    }
}

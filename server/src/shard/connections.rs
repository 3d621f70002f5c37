//! The connections a shard accepted, and what the broker says to them unasked: a shard
//! remembers its live connections so that broker-initiated requests
//! (NOTIFY_CONSUMER_IDS_CHANGED) and closes (a group member silent for 120 s) reach them
//! from any shard, through the owning shard's inbox (protocol.md §7.3).
//!
//! Membership itself is the shared [`crate::groups::ConsumerGroups`] table; this module
//! only routes its consequences to connections.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::time::Duration;

use ringmq_protocol::codes::request_code;
use ringmq_protocol::command::{ExtFields, RemotingCommand};

use super::hop::ShardJob;
use super::{BrokerShared, Shard};
use crate::connection::{Connection, Response};
use crate::groups::{ConnectionRef, NotifyTarget, CHANNEL_EXPIRED_TIMEOUT_MS};

/// How often group members are checked for silence (RocketMQ's ClientHousekeepingService).
const MEMBER_SCAN_INTERVAL: Duration = Duration::from_secs(10);

/// Live connections of one shard, by id.
#[derive(Debug, Default)]
pub struct Connections {
    live: RefCell<HashMap<u64, Weak<Connection>>>,
}

impl Connections {
    fn get(&self, connection_id: u64) -> Option<Rc<Connection>> {
        self.live
            .borrow()
            .get(&connection_id)
            .and_then(Weak::upgrade)
    }
}

impl Shard {
    /// The group table's handle for a connection of this shard.
    pub fn connection_ref(&self, connection: &Connection) -> ConnectionRef {
        ConnectionRef {
            shard_id: self.id,
            connection_id: connection.id,
        }
    }

    /// Remembers a connection so NOTIFY_CONSUMER_IDS_CHANGED can reach it later.
    pub fn track_connection(&self, connection: &Rc<Connection>) {
        self.connections
            .live
            .borrow_mut()
            .entry(connection.id)
            .or_insert_with(|| Rc::downgrade(connection));
    }

    /// A connection of this shard closed: forget it, its held pulls on every shard and its
    /// group memberships (notifying the rest of its groups).
    pub fn connection_closed(&self, connection: &Connection) {
        let connection_id = connection.id;
        self.connections.live.borrow_mut().remove(&connection_id);
        self.long_poll.drop_connection(connection_id);
        let shared = Arc::clone(&self.shared);
        let this_shard = self.id;
        let notify = self
            .shared
            .groups
            .connection_closed(self.connection_ref(connection));
        // Its orderly queues are free for the group's other members at once.
        let released = self
            .shared
            .queue_locks
            .connection_closed(self.connection_ref(connection));
        if released > 0 {
            tracing::debug!(released, "queue locks of a closed connection released");
        }
        // Its pulls may be held on any shard; notifications may go through other shards'
        // inboxes: both from a task.
        compio::runtime::spawn(async move {
            // Shard-addressed, a connection's pulls are held on its own shard only.
            let others = if shared.shard_addressed() {
                0
            } else {
                shared.shards()
            };
            for shard in (0..others).filter(|&shard| shard != this_shard) {
                let job: ShardJob<Shard> = Box::new(move |owner: &Rc<Shard>| {
                    owner.long_poll.drop_connection(connection_id)
                });
                let _ = shared.inboxes.post(shard, job).await;
            }
            notify_consumer_ids_changed(&shared, notify).await;
        })
        .detach();
    }

    /// Tells the members of a group, on whichever shard holds their connections, that its
    /// membership changed.
    pub async fn notify_consumer_ids_changed(&self, targets: Vec<NotifyTarget>) {
        notify_consumer_ids_changed(&self.shared, targets).await;
    }

    fn notify_local(&self, connection_id: u64, group: &str) {
        if let Some(connection) = self.connections.get(connection_id) {
            let mut ext = ExtFields::new();
            ext.insert("consumerGroup".to_owned(), group.to_owned());
            let request =
                RemotingCommand::request(request_code::NOTIFY_CONSUMER_IDS_CHANGED, ext).oneway();
            connection.send(Response::Command(request));
        }
    }

    /// Closes connection `connection_id` of this shard if it is still open.
    fn close_connection(&self, connection_id: u64) {
        if let Some(connection) = self.connections.get(connection_id) {
            connection.close();
        }
    }
}

/// Sends NOTIFY_CONSUMER_IDS_CHANGED (oneway) to each target through the inbox of the shard
/// that owns its connection.
async fn notify_consumer_ids_changed(shared: &BrokerShared, targets: Vec<NotifyTarget>) {
    for target in targets {
        let job: ShardJob<Shard> = Box::new(move |owner: &Rc<Shard>| {
            owner.notify_local(target.connection_id, &target.group);
        });
        if let Err(error) = shared.inboxes.post(target.shard_id, job).await {
            tracing::warn!(%error, "cannot route a consumer-ids-changed notification");
        }
    }
}

/// Removes group members silent for 120 s, notifies the rest of their groups and closes
/// their connections (protocol.md §7.3). Runs on shard 0 for the whole broker.
pub(super) async fn member_expiry_loop(shard: Weak<Shard>) {
    loop {
        compio::time::sleep(MEMBER_SCAN_INTERVAL).await;
        let Some(this) = shard.upgrade() else { return };
        let now_ms = this.shared.clock.monotonic_ms();
        let expired = this
            .shared
            .groups
            .expire(now_ms, CHANNEL_EXPIRED_TIMEOUT_MS);
        for connection in expired.connections {
            let job: ShardJob<Shard> =
                Box::new(move |owner: &Rc<Shard>| owner.close_connection(connection.connection_id));
            if let Err(error) = this.post_to(connection.shard_id, job).await {
                tracing::warn!(%error, "cannot close an expired connection");
            }
        }
        if !expired.notify.is_empty() {
            this.notify_consumer_ids_changed(expired.notify).await;
        }
    }
}

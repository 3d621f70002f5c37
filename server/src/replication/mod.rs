//! Master/slave replication of the shards' logs (design.md §8, protocol.md §8).
//!
//! One TCP connection per shard log, on the master's HA port ([`wire`] is the format). The
//! master accepts on shard 0 ([`master::accept_loop`]), reads the slave's hello and hands the
//! connection to the shard it names, which checks that the slave's log is a prefix of its
//! own and streams its records from where the slave's log ends ([`master::serve_follower`]).
//! On the slave every shard runs a link ([`slave::run_link`]) that connects, says where its
//! log ends, appends what comes through the shard's store (so its ConsumeQueues, long polls
//! and offsets behave as on a master) and reports its new end. A refused slave stops the
//! broker with the master's reason: its log is not the master's, and going on would
//! diverge.

use std::rc::Rc;
use std::sync::Arc;

use crate::shard::Shard;
use crate::shutdown::Shutdown;

pub mod config_sync;
pub mod master;
pub mod slave;
pub mod wire;

/// How often each side sends something when it has nothing else to send.
pub const HEARTBEAT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

/// A connection that read nothing for this long is closed (RocketMQ's
/// `haHousekeepingInterval`).
pub const IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

/// Starts replication on a shard once its store is open (the shard thread's start hook):
/// a master's shard 0 accepts its slaves' HA connections; every shard of a slave follows
/// the master's log of the same shard.
pub fn start_on_shard(
    shard: &Rc<Shard>,
    ha_listener: Option<std::net::TcpListener>,
    shutdown: &Arc<Shutdown>,
) -> std::io::Result<()> {
    let shard_id = shard.id();
    let shared = shard.shared();
    if let Some(listener) = ha_listener {
        let listener = compio::net::TcpListener::from_std(listener)?;
        compio::runtime::spawn(master::accept_loop(
            listener,
            Rc::clone(shard),
            Arc::clone(shared),
            Arc::clone(shutdown),
        ))
        .detach();
    }
    if let (0, Some(master)) = (shard_id, shared.config.master.clone()) {
        compio::runtime::spawn(config_sync::run(
            Rc::clone(shard),
            master,
            Arc::clone(shutdown),
        ))
        .detach();
    }
    if let Some(master_ha) = shared.master_ha_addr.get() {
        let (shard, shared, master_ha, shutdown) = (
            Rc::clone(shard),
            Arc::clone(shared),
            Arc::clone(master_ha),
            Arc::clone(shutdown),
        );
        compio::runtime::spawn(async move {
            if let slave::LinkEnd::Refused(reason) =
                slave::run_link(shard, master_ha, shutdown).await
            {
                tracing::error!(shard_id, %reason, "the master refused this slave's log; stopping");
                if let Ok(mut fatal) = shared.fatal.lock() {
                    fatal.get_or_insert(reason);
                }
                // The main thread waits for a signal: this one stops the broker.
                if let Err(error) = signal_hook::low_level::raise(signal_hook::consts::SIGTERM) {
                    tracing::error!(%error, "could not stop the broker");
                }
            }
        })
        .detach();
    }
    Ok(())
}

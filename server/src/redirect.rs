//! Read redirection (design.md §8, protocol.md §9): which broker of its master/slave set a
//! consumer should pull a queue from next, the `suggestWhichBrokerId` of a PULL answer.
//!
//! The store gives each pull a verdict from the page-cache estimator (RocketMQ's backlog
//! rule, and the kernel's residency of the bytes read); the shard adds where its log's
//! slaves have acknowledged to. [`suggest_broker_id`] turns those into the suggestion, pure:
//!
//! - **master**: a cold read is sent to a slave whose acknowledged log end is at or past the
//!   end of the bytes this pull read (a slave that lags would answer "not found yet", or
//!   worse hold the pull): `whichBrokerWhenConsumeSlowly` when that slave qualifies, else
//!   the qualifying slave with the lowest id. A hot read, a pull that read nothing, or no
//!   qualifying slave: 0, stay.
//! - **slave**: a cold read stays here (this broker's id); anything else, a hot read or a
//!   consumer that has caught up, goes back to the master (0).
//! - `slaveReadEnable` off: always 0 (a slave also refuses the read, see `processor::pull`).
//!
//! Nothing here is stored; the inputs are read per pull.

use crate::config::Role;

/// A slave following the shard log that holds the pulled queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Follower {
    /// Its `--broker-id` (from its replication hello).
    pub broker_id: i64,
    /// Where its copy of the log ends, as it last acknowledged.
    pub acked_log_end: u64,
}

/// The store's opinion of one pull's read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadVerdict {
    /// No message was read (nothing new, filtered out, offset moved).
    NothingRead,
    /// The bytes read were in memory.
    Hot,
    /// The bytes read were (or the backlog behind them probably is) on disk.
    Cold {
        /// End of the bytes this pull read, in the shard log's offsets (which a slave's
        /// copy of that log shares).
        read_log_end: u64,
    },
}

/// The operator's redirect settings (changeable at runtime, `runtime_config`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedirectSettings {
    /// `slaveReadEnable`.
    pub slave_read_enable: bool,
    /// `whichBrokerWhenConsumeSlowly`: the slave a master prefers for cold reads.
    pub which_broker_when_consume_slowly: i64,
}

/// The broker id the consumer should pull this queue from next. Pure; see the module docs.
pub fn suggest_broker_id(
    role: Role,
    own_broker_id: i64,
    settings: RedirectSettings,
    verdict: ReadVerdict,
    followers: &[Follower],
) -> i64 {
    const MASTER_ID: i64 = 0;
    if !settings.slave_read_enable {
        return MASTER_ID;
    }
    match (role, verdict) {
        (Role::Slave, ReadVerdict::Cold { .. }) => own_broker_id,
        (Role::Slave, _) => MASTER_ID,
        (Role::Master, ReadVerdict::Cold { read_log_end }) => {
            let caught_up = || {
                followers
                    .iter()
                    .filter(move |f| f.broker_id > MASTER_ID && f.acked_log_end >= read_log_end)
            };
            let preferred = settings.which_broker_when_consume_slowly;
            if caught_up().any(|f| f.broker_id == preferred) {
                return preferred;
            }
            caught_up().map(|f| f.broker_id).min().unwrap_or(MASTER_ID)
        }
        (Role::Master, _) => MASTER_ID,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ON: RedirectSettings = RedirectSettings {
        slave_read_enable: true,
        which_broker_when_consume_slowly: 1,
    };
    const OFF: RedirectSettings = RedirectSettings {
        slave_read_enable: false,
        which_broker_when_consume_slowly: 1,
    };

    fn cold(read_log_end: u64) -> ReadVerdict {
        ReadVerdict::Cold { read_log_end }
    }

    fn slave(broker_id: i64, acked_log_end: u64) -> Follower {
        Follower {
            broker_id,
            acked_log_end,
        }
    }

    #[test]
    fn a_cold_read_on_a_master_goes_to_a_caught_up_slave() {
        let followers = [slave(1, 5000)];
        assert_eq!(
            suggest_broker_id(Role::Master, 0, ON, cold(5000), &followers),
            1
        );
        assert_eq!(
            suggest_broker_id(Role::Master, 0, ON, cold(4000), &followers),
            1
        );
    }

    #[test]
    fn a_master_never_redirects_to_a_slave_behind_the_bytes_read() {
        let followers = [slave(1, 4999)];
        assert_eq!(
            suggest_broker_id(Role::Master, 0, ON, cold(5000), &followers),
            0
        );
    }

    #[test]
    fn a_master_without_slaves_keeps_its_consumers() {
        assert_eq!(suggest_broker_id(Role::Master, 0, ON, cold(10), &[]), 0);
    }

    #[test]
    fn hot_reads_and_empty_pulls_stay_on_the_master() {
        let followers = [slave(1, u64::MAX)];
        for verdict in [ReadVerdict::Hot, ReadVerdict::NothingRead] {
            assert_eq!(
                suggest_broker_id(Role::Master, 0, ON, verdict, &followers),
                0
            );
        }
    }

    #[test]
    fn the_preferred_slave_wins_when_caught_up_else_the_lowest_caught_up_id() {
        let settings = RedirectSettings {
            which_broker_when_consume_slowly: 2,
            ..ON
        };
        let both = [slave(3, 100), slave(2, 100)];
        assert_eq!(
            suggest_broker_id(Role::Master, 0, settings, cold(100), &both),
            2
        );
        let preferred_lags = [slave(3, 100), slave(2, 50), slave(4, 100)];
        assert_eq!(
            suggest_broker_id(Role::Master, 0, settings, cold(100), &preferred_lags),
            3
        );
    }

    #[test]
    fn a_follower_claiming_the_master_id_is_never_chosen() {
        let followers = [slave(0, u64::MAX)];
        assert_eq!(
            suggest_broker_id(Role::Master, 0, ON, cold(1), &followers),
            0
        );
    }

    #[test]
    fn a_slave_keeps_cold_readers_and_sends_the_others_back() {
        assert_eq!(suggest_broker_id(Role::Slave, 2, ON, cold(1), &[]), 2);
        assert_eq!(
            suggest_broker_id(Role::Slave, 2, ON, ReadVerdict::Hot, &[]),
            0
        );
        assert_eq!(
            suggest_broker_id(Role::Slave, 2, ON, ReadVerdict::NothingRead, &[]),
            0
        );
    }

    #[test]
    fn slave_read_disabled_always_answers_the_master() {
        let followers = [slave(1, u64::MAX)];
        assert_eq!(
            suggest_broker_id(Role::Master, 0, OFF, cold(1), &followers),
            0
        );
        assert_eq!(suggest_broker_id(Role::Slave, 1, OFF, cold(1), &[]), 0);
    }
}

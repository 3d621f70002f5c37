//! Queue allocation strategies for clustering consumers: which of a topic's queues this client
//! takes, given every queue and every client id of the group. Every member runs the same
//! function on the same sorted inputs, so the members agree without talking to each other.
//!
//! - [`AllocateStrategy::Averagely`]: `AllocateMessageQueueAveragely`, exactly the arithmetic
//!   of protocol.md §7.1 (the Java default; mixed Java/Rust groups split identically).
//! - [`AllocateStrategy::Sticky`]: rendezvous (highest-random-weight) hashing with a load cap
//!   of ⌈n/c⌉: each queue goes to the member that ranks it highest among those not yet full.
//!   A queue's ranking of members does not depend on who else is in the group, so a member
//!   joining or leaving moves few queues besides its own; loads differ by at most the cap.
//!
//! Inputs need not be sorted: both functions sort (Java string order) before allocating.

use ringmq_protocol::body::MessageQueue;

use crate::route::{java_queue_cmp, java_str_cmp};

/// An allocation strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AllocateStrategy {
    /// Contiguous ranges, Java's default (§7.1).
    #[default]
    Averagely,
    /// Rendezvous hashing with a load cap; moves few queues when membership changes.
    Sticky,
}

impl AllocateStrategy {
    /// The queues of `mq_all` that `current_cid` takes among `cid_all`.
    pub fn allocate(
        self,
        current_cid: &str,
        mq_all: &[MessageQueue],
        cid_all: &[String],
    ) -> Vec<MessageQueue> {
        match self {
            AllocateStrategy::Averagely => allocate_averagely(current_cid, mq_all, cid_all),
            AllocateStrategy::Sticky => allocate_sticky(current_cid, mq_all, cid_all),
        }
    }
}

fn sorted_inputs(mq_all: &[MessageQueue], cid_all: &[String]) -> (Vec<MessageQueue>, Vec<String>) {
    let mut mqs = mq_all.to_vec();
    mqs.sort_by(java_queue_cmp);
    mqs.dedup();
    let mut cids = cid_all.to_vec();
    cids.sort_by(|a, b| java_str_cmp(a, b));
    cids.dedup();
    (mqs, cids)
}

/// `AllocateMessageQueueAveragely` (§7.1), on Java-sorted inputs.
pub fn allocate_averagely(
    current_cid: &str,
    mq_all: &[MessageQueue],
    cid_all: &[String],
) -> Vec<MessageQueue> {
    let (mqs, cids) = sorted_inputs(mq_all, cid_all);
    let Some(index) = cids.iter().position(|c| c == current_cid) else {
        return Vec::new();
    };
    let n = mqs.len();
    let c = cids.len();
    let modulo = n % c;
    let average = if n <= c {
        1
    } else if modulo > 0 && index < modulo {
        n / c + 1
    } else {
        n / c
    };
    let start = if modulo > 0 && index < modulo {
        index * average
    } else {
        index * average + modulo
    };
    let range = average.min(n.saturating_sub(start));
    mqs.get(start..start + range)
        .map(<[MessageQueue]>::to_vec)
        .unwrap_or_default()
}

/// FNV-1a 64 over the parts with a separator: a fixed hash every member computes alike
/// (std's hasher is randomly seeded per process, so it cannot be used).
fn weight(cid: &str, mq: &MessageQueue) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01B3);
        }
    };
    eat(cid.as_bytes());
    eat(&[0]);
    eat(mq.topic.as_bytes());
    eat(&[0]);
    eat(mq.broker_name.as_bytes());
    eat(&[0]);
    eat(&mq.queue_id.to_be_bytes());
    // Final avalanche (splitmix64) so that near-identical inputs spread.
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// The sticky strategy: every queue's owner among `cid_all` (see the module doc).
pub fn sticky_assignment(
    mq_all: &[MessageQueue],
    cid_all: &[String],
) -> Vec<(MessageQueue, String)> {
    let (mqs, cids) = sorted_inputs(mq_all, cid_all);
    if cids.is_empty() {
        return Vec::new();
    }
    let cap = mqs.len().div_ceil(cids.len());
    let mut load = vec![0usize; cids.len()];
    let mut out = Vec::with_capacity(mqs.len());
    for mq in mqs {
        let mut ranked: Vec<(u64, usize)> = cids
            .iter()
            .enumerate()
            .map(|(i, cid)| (weight(cid, &mq), i))
            .collect();
        // Highest weight first; ties broken by the (sorted) member index.
        ranked.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        let owner = ranked
            .iter()
            .map(|(_, i)| *i)
            .find(|i| load.get(*i).is_some_and(|l| *l < cap));
        if let Some(i) = owner {
            if let (Some(l), Some(cid)) = (load.get_mut(i), cids.get(i)) {
                *l += 1;
                out.push((mq, cid.clone()));
            }
        }
    }
    out
}

/// The queues `current_cid` owns under [`sticky_assignment`].
pub fn allocate_sticky(
    current_cid: &str,
    mq_all: &[MessageQueue],
    cid_all: &[String],
) -> Vec<MessageQueue> {
    if !cid_all.iter().any(|c| c == current_cid) {
        return Vec::new();
    }
    sticky_assignment(mq_all, cid_all)
        .into_iter()
        .filter(|(_, cid)| cid == current_cid)
        .map(|(mq, _)| mq)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, BTreeSet};

    fn queues(n: i32) -> Vec<MessageQueue> {
        (0..n)
            .map(|q| MessageQueue::new("T", "broker-a", q))
            .collect()
    }

    fn cids(c: usize) -> Vec<String> {
        (0..c).map(|i| format!("10.0.0.{i}@cid")).collect()
    }

    fn ids(v: &[MessageQueue]) -> Vec<i32> {
        v.iter().map(|q| q.queue_id).collect()
    }

    #[test]
    fn averagely_eight_queues_three_clients_is_3_3_2() {
        let (mqs, c) = (queues(8), cids(3));
        assert_eq!(ids(&allocate_averagely(&c[0], &mqs, &c)), vec![0, 1, 2]);
        assert_eq!(ids(&allocate_averagely(&c[1], &mqs, &c)), vec![3, 4, 5]);
        assert_eq!(ids(&allocate_averagely(&c[2], &mqs, &c)), vec![6, 7]);
    }

    #[test]
    fn averagely_three_queues_five_clients_leaves_the_last_two_empty() {
        let (mqs, c) = (queues(3), cids(5));
        assert_eq!(ids(&allocate_averagely(&c[0], &mqs, &c)), vec![0]);
        assert_eq!(ids(&allocate_averagely(&c[1], &mqs, &c)), vec![1]);
        assert_eq!(ids(&allocate_averagely(&c[2], &mqs, &c)), vec![2]);
        assert!(allocate_averagely(&c[3], &mqs, &c).is_empty());
        assert!(allocate_averagely(&c[4], &mqs, &c).is_empty());
    }

    #[test]
    fn averagely_sorts_unsorted_inputs_first() {
        let mut mqs = queues(8);
        mqs.reverse();
        let mut c = cids(3);
        c.reverse();
        let sorted = cids(3);
        assert_eq!(
            ids(&allocate_averagely(&sorted[0], &mqs, &c)),
            vec![0, 1, 2]
        );
    }

    #[test]
    fn averagely_an_unknown_client_gets_nothing() {
        assert!(allocate_averagely("stranger", &queues(4), &cids(2)).is_empty());
    }

    #[test]
    fn averagely_sorts_queues_by_broker_name_then_id_across_brokers() {
        let mut mqs = vec![
            MessageQueue::new("T", "broker-b", 0),
            MessageQueue::new("T", "broker-a", 1),
            MessageQueue::new("T", "broker-a", 0),
            MessageQueue::new("T", "broker-b", 1),
        ];
        mqs.rotate_left(1);
        let c = cids(2);
        assert_eq!(
            allocate_averagely(&c[0], &mqs, &c),
            vec![
                MessageQueue::new("T", "broker-a", 0),
                MessageQueue::new("T", "broker-a", 1)
            ]
        );
    }

    /// Every queue is owned by exactly one member, for many group shapes.
    fn assert_partition(strategy: AllocateStrategy, n: i32, c: usize) {
        let (mqs, cs) = (queues(n), cids(c));
        let mut seen = BTreeMap::new();
        for cid in &cs {
            for q in strategy.allocate(cid, &mqs, &cs) {
                assert!(
                    seen.insert(q.queue_id, cid.clone()).is_none(),
                    "{q:?} twice"
                );
            }
        }
        assert_eq!(seen.len(), n as usize, "n={n} c={c}");
    }

    #[test]
    fn both_strategies_partition_the_queues() {
        for n in 0..20 {
            for c in 1..8 {
                assert_partition(AllocateStrategy::Averagely, n, c);
                assert_partition(AllocateStrategy::Sticky, n, c);
            }
        }
    }

    #[test]
    fn sticky_loads_never_exceed_the_ceiling_share() {
        for n in 1..40 {
            for c in 1..9 {
                let (mqs, cs) = (queues(n), cids(c));
                let cap = (n as usize).div_ceil(c);
                for cid in &cs {
                    assert!(allocate_sticky(cid, &mqs, &cs).len() <= cap);
                }
            }
        }
    }

    fn owners(n: i32, cs: &[String]) -> BTreeMap<i32, String> {
        sticky_assignment(&queues(n), cs)
            .into_iter()
            .map(|(q, c)| (q.queue_id, c))
            .collect()
    }

    #[test]
    fn sticky_moves_fewer_queues_than_averagely_when_a_member_leaves() {
        let mut sticky_moved = 0;
        let mut average_moved = 0;
        for c in 3..7 {
            let before = cids(c);
            let after: Vec<String> = before.iter().skip(1).cloned().collect();
            let n = 32;
            let (b, a) = (owners(n, &before), owners(n, &after));
            sticky_moved += (0..n).filter(|q| b[q] != before[0] && b[q] != a[q]).count();
            let mqs = queues(n);
            for cid in &after {
                let old: BTreeSet<i32> = ids(&allocate_averagely(cid, &mqs, &before))
                    .into_iter()
                    .collect();
                let new: BTreeSet<i32> = ids(&allocate_averagely(cid, &mqs, &after))
                    .into_iter()
                    .collect();
                average_moved += old.difference(&new).count();
            }
        }
        assert!(
            sticky_moved < average_moved,
            "sticky moved {sticky_moved} survivor queues, averagely {average_moved}"
        );
    }

    #[test]
    fn sticky_is_the_same_whatever_the_input_order() {
        let mqs = queues(12);
        let cs = cids(4);
        let mut rev_mqs = mqs.clone();
        rev_mqs.reverse();
        let mut rev_cs = cs.clone();
        rev_cs.reverse();
        for cid in &cs {
            assert_eq!(
                allocate_sticky(cid, &mqs, &cs),
                allocate_sticky(cid, &rev_mqs, &rev_cs)
            );
        }
    }
}

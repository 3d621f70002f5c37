//! Which shard owns a queue (design.md §3): a stable function of (topic, queue id) and the
//! shard count, so every shard computes the same answer without asking anyone, and a
//! restart with the same `--shards` finds each queue's data on the same shard.
//!
//! Queues of one topic are spread round-robin from a per-topic starting shard, so a topic
//! with at least as many queues as shards loads every shard. Kept in one small module so it
//! can become a table later (e.g. to rebalance hot queues).
//!
//! Changing the shard count of an existing store moves queues between shards; their old
//! data stays readable only on the old shard, so the store remembers its shard count and
//! refuses to start with another one (see the server's start-up).

use ringmq_protocol::message::tag_hash::java_string_hash;

/// The shard that owns `(topic, queue_id)` among `shards` shards.
pub fn shard_for_queue(topic: &str, queue_id: i32, shards: usize) -> usize {
    debug_assert!(shards > 0);
    if shards <= 1 {
        return 0;
    }
    // Java's String.hashCode: stable across builds and platforms (unlike std's hasher).
    let topic_start = java_string_hash(topic).unsigned_abs() as usize;
    let queue = queue_id.unsigned_abs() as usize;
    topic_start.wrapping_add(queue) % shards
}

/// Whether shard `shard_id` of `shards` owns `(topic, queue_id)`: the placement's choice,
/// or every queue when shard-addressed (each shard is then a broker of its own).
pub fn owned_by(shard_id: usize, shards: usize, addressed: bool) -> impl Fn(&str, i32) -> bool {
    move |topic, queue_id| addressed || shard_for_queue(topic, queue_id, shards) == shard_id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_shard_owns_everything() {
        assert_eq!(shard_for_queue("T", 3, 1), 0);
    }

    #[test]
    fn a_topic_with_as_many_queues_as_shards_uses_every_shard() {
        for shards in 2..8 {
            let mut owners: Vec<usize> = (0..shards as i32)
                .map(|q| shard_for_queue("TopicTest", q, shards))
                .collect();
            owners.sort_unstable();
            owners.dedup();
            assert_eq!(owners.len(), shards);
        }
    }

    #[test]
    fn placement_is_stable_across_calls_and_within_range() {
        for q in 0..64 {
            let a = shard_for_queue("%RETRY%group", q, 3);
            assert_eq!(a, shard_for_queue("%RETRY%group", q, 3));
            assert!(a < 3);
        }
    }
}

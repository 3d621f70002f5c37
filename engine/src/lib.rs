//! ringmq's store, driven by the server's shards (design.md §4, §5, §8, §11).
//! No sockets here: CommitLog, ConsumeQueue, consumer offsets, recovery, the disk
//! guard and the page-cache estimator. Being written under issue 3.

pub mod commitlog;
pub mod consumequeue;
pub mod disk_guard;
pub mod error;
pub mod offsets;
pub mod page_cache;
pub mod recovery;
pub mod signal;
pub mod store;

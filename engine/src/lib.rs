//! ringmq's store, driven by the server's shards (design.md §4, §5, §8, §11).
//! No sockets here: CommitLog, ConsumeQueue, consumer offsets, recovery and the
//! page-cache estimator. Being written under issue 3.

//! ringmq's store, driven by the server's shards (design.md §4, §5, §8, §11). No sockets.
//!
//! - [`store`]: the facade a shard owns: `open` (with recovery), `put`/`put_batch`,
//!   `get_messages` (PULL) with its statuses, per-pull limits and read plan, offsets,
//!   timestamp search, `read_record_at`, flush and close.
//! - [`commitlog`]: the shard's segmented append-only log, its group writes, flush policies
//!   and checkpoint.
//! - [`recovery`]: the scan that finds where the log's valid records end after a crash.
//! - [`consumequeue`]: per-(topic, queue) index of 20-byte entries, tag filter, time search.
//! - [`offsets`]: consumer offsets, persisted crash-safely.
//! - [`disk_guard`], [`page_cache`]: the free-space limit and the hot/cold estimator.
//! - [`retention`]: which old CommitLog segments to delete, and why (the store's
//!   retention task deletes them).
//! - [`error`], [`signal`]: the store's error type and its task wake-ups; `clock`: the
//!   wall clock stored in records and offsets files; `inline_write`: the page-cache writes
//!   of the log and the queues, made on the shard thread instead of an io-wq worker.

mod clock;
pub mod commitlog;
pub mod consumequeue;
pub mod dirs;
pub mod disk_guard;
pub mod error;
mod inline_write;
pub mod offsets;
pub mod page_cache;
mod queues;
pub mod recovery;
pub mod retention;
pub mod signal;
pub mod store;

//! Pulls racing the writer at the tail never skip a message: every entry a pull can see is
//! readable from the log, even while the group it belongs to is still being dispatched to
//! other queues (found by ringmq-bench: e2e lost messages near the tail).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;

use bytes::Bytes;
use ringmq_engine::commitlog::flush::FlushPolicy;
use ringmq_engine::consumequeue::TagFilter;
use ringmq_engine::store::{GetMessageStatus, PutMessage, Store, StoreConfig};

mod support;

const QUEUES: i32 = 8;
const PER_QUEUE: i64 = 300;

fn msg(queue_id: i32, i: i64) -> PutMessage {
    let host: SocketAddr = "127.0.0.1:10911".parse().unwrap();
    PutMessage {
        topic: "Tail".to_owned(),
        queue_id,
        flag: 0,
        sys_flag: 0,
        born_timestamp: 1,
        born_host: host,
        store_host: host,
        reconsume_times: 0,
        prepared_transaction_offset: 0,
        body: Bytes::from(format!("q{queue_id}-{i}")),
        properties: String::new(),
    }
}

fn tail_pulls_see_every_message(flush: FlushPolicy) {
    compio::runtime::Runtime::new().unwrap().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let config = StoreConfig {
            segment_size_bytes: 1 << 20,
            flush,
            total_ram_bytes: Some(1 << 30),
            disk_guard: support::unlimited_disk_guard(),
            ..StoreConfig::default()
        };
        let store = Store::open(dir.path(), 0, config).await.unwrap();
        let done = Rc::new(Cell::new(0));
        // Writers: every queue gets messages in many small groups, so groups span queues.
        for queue_id in 0..QUEUES {
            let store = store.clone();
            let done = Rc::clone(&done);
            compio::runtime::spawn(async move {
                for i in 0..PER_QUEUE {
                    store.put(msg(queue_id, i)).await.unwrap();
                }
                done.set(done.get() + 1);
            })
            .detach();
        }
        // Readers: one per queue, pulling at the tail as fast as they can.
        let readers: Vec<_> = (0..QUEUES)
            .map(|queue_id| {
                let store = store.clone();
                compio::runtime::spawn(async move {
                    let mut next = 0i64;
                    let mut rounds = 0u64;
                    while next < PER_QUEUE {
                        rounds += 1;
                        assert!(rounds < 2_000_000, "queue {queue_id} stuck at {next}");
                        let result = store
                            .get_messages("Tail", queue_id, next, 32, 1 << 20, &TagFilter::All)
                            .await
                            .unwrap();
                        match result.status {
                            GetMessageStatus::Found => {
                                for (k, found) in result.messages.iter().enumerate() {
                                    assert_eq!(found.queue_offset, next + k as i64);
                                }
                                let count = result.messages.len() as i64;
                                assert_eq!(
                                    result.next_begin_offset,
                                    next + count,
                                    "queue {queue_id}: a pull at {next} found {count} but moved on to {}",
                                    result.next_begin_offset
                                );
                                next += count;
                            }
                            GetMessageStatus::OffsetOverflowOne
                            | GetMessageStatus::NoMatchedLogicQueue
                            | GetMessageStatus::NoMessageInQueue => {
                                assert_eq!(result.next_begin_offset.max(next), next);
                                // Yield to the writers before asking again.
                                let _ = compio::runtime::spawn(async {}).await;
                            }
                            other => panic!(
                                "queue {queue_id}: pull at {next} answered {other:?} (next {})",
                                result.next_begin_offset
                            ),
                        }
                    }
                    next
                })
            })
            .collect();
        for reader in readers {
            assert_eq!(reader.await.unwrap(), PER_QUEUE);
        }
        assert_eq!(done.get(), QUEUES);
    });
}

#[test]
fn tail_pulls_see_every_message_with_async_flush() {
    tail_pulls_see_every_message(FlushPolicy::Async { interval_ms: 500 });
}

#[test]
fn tail_pulls_see_every_message_with_sync_flush() {
    tail_pulls_see_every_message(FlushPolicy::Sync);
}

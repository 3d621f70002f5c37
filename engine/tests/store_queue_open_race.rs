//! Many appends racing to the first message of new queues: every queue's ConsumeQueue on
//! disk holds every entry after a reopen (found by ringmq-bench: entries 1..16 of new queues
//! were zero on disk because a second, concurrent open of the same queue repaired its file
//! while the first one's owner was writing it).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;

use bytes::Bytes;
use ringmq_engine::commitlog::flush::FlushPolicy;
use ringmq_engine::consumequeue::TagFilter;
use ringmq_engine::store::{GetMessageStatus, PutMessage, Store, StoreConfig};
use ringmq_protocol::message::record::iter_records;

mod support;

const QUEUES: i32 = 4;
const TASKS_PER_QUEUE: i64 = 16;
const PER_TASK: i64 = 8;

fn msg(queue_id: i32, body: String) -> PutMessage {
    let host: SocketAddr = "127.0.0.1:10911".parse().unwrap();
    PutMessage {
        topic: "Fresh".to_owned(),
        queue_id,
        flag: 0,
        sys_flag: 0,
        born_timestamp: 1,
        born_host: host,
        store_host: host,
        reconsume_times: 0,
        prepared_transaction_offset: 0,
        body: Bytes::from(body),
        properties: String::new(),
    }
}

fn config() -> StoreConfig {
    StoreConfig {
        segment_size_bytes: 1 << 20,
        flush: FlushPolicy::Async { interval_ms: 50 },
        total_ram_bytes: Some(1 << 30),
        disk_guard: support::unlimited_disk_guard(),
        ..StoreConfig::default()
    }
}

#[test]
fn racing_first_appends_leave_complete_consume_queues_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    compio::runtime::Runtime::new().unwrap().block_on(async {
        let store = Store::open(dir.path(), 0, config()).await.unwrap();
        let mut tasks = Vec::new();
        for queue_id in 0..QUEUES {
            for task in 0..TASKS_PER_QUEUE {
                let store = store.clone();
                tasks.push(compio::runtime::spawn(async move {
                    for i in 0..PER_TASK {
                        store
                            .put(msg(queue_id, format!("q{queue_id}-t{task}-{i}")))
                            .await
                            .unwrap();
                    }
                }));
            }
        }
        for task in tasks {
            task.await.unwrap();
        }
        store.close().await.unwrap();
    });
    // Reopen: reads now come from the queue files, not from the first store's memory.
    compio::runtime::Runtime::new().unwrap().block_on(async {
        let store = Store::open(dir.path(), 0, config()).await.unwrap();
        let expected = TASKS_PER_QUEUE * PER_TASK;
        for queue_id in 0..QUEUES {
            assert_eq!(store.max_offset("Fresh", queue_id), expected);
            let mut next = 0;
            while next < expected {
                let result = store
                    .get_messages("Fresh", queue_id, next, 32, 1 << 20, &TagFilter::All)
                    .await
                    .unwrap_or_else(|e| panic!("queue {queue_id} at {next}: {e}"));
                assert_eq!(
                    result.status,
                    GetMessageStatus::Found,
                    "queue {queue_id} at {next}"
                );
                for (k, record) in iter_records(&result.data).enumerate() {
                    let record = record.unwrap();
                    assert_eq!(record.queue_id, queue_id);
                    assert_eq!(record.queue_offset, next + k as i64);
                }
                next = result.next_begin_offset;
            }
        }
    });
}

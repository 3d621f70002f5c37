//! ringmq-client's orderly push consumer against a real broker: two members of a group each
//! consume the queues whose broker locks they hold, every queue in send order; a listener
//! that fails a message gets the same message again (the queue pauses, nothing overtakes it);
//! when a member shuts down, the other locks its queues and goes on in order.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ringmq_client::{
    Admin, ConsumeFrom, ConsumeStatus, Message, MessageExt, Producer, ProducerConfig, PushConsumer,
    PushConsumerConfig, QueueSelector,
};

const TOPIC: &str = "OrderlyTopic";
const KEYS: usize = 4;

/// (member, queue id, sequence number) in the order the listeners saw them.
type Seen = Arc<Mutex<Vec<(usize, i32, usize)>>>;

fn member(ns: &str, index: usize, seen: Seen, fail_once: Arc<AtomicBool>) -> PushConsumer {
    let mut config = PushConsumerConfig::new(ns, "orderly_group");
    config.orderly = true;
    config.consume_from = ConsumeFrom::FirstOffset;
    config.client.instance_name = format!("orderly-{index}");
    config.client.heartbeat_interval = Duration::from_secs(1);
    config.rebalance_interval = Duration::from_secs(1);
    config.suspend_current_queue = Duration::from_millis(100);
    config.suspend_timeout = Duration::from_secs(1);
    PushConsumer::new(config, move |msgs: &[MessageExt]| {
        for m in msgs {
            let body = String::from_utf8_lossy(&m.body).into_owned();
            let sequence: usize = body.split(':').nth(1).unwrap().parse().unwrap();
            // One failure on message 5 of key 0: it must come back before message 6.
            if body == "0:5" && fail_once.swap(false, Ordering::SeqCst) {
                return ConsumeStatus::ReconsumeLater;
            }
            seen.lock().unwrap().push((index, m.queue_id, sequence));
        }
        ConsumeStatus::Success
    })
}

async fn send_keys(producer: &Producer, from: usize, to: usize) {
    for sequence in from..to {
        for key in 0..KEYS {
            let msg = Message::new(TOPIC, format!("{key}:{sequence}").into_bytes());
            // Queue `key` of the topic: one key, one queue, in send order.
            let selector = QueueSelector::Custom(Arc::new(move |queues, _| key % queues.len()));
            producer.send_with(msg, &selector).await.unwrap();
        }
    }
}

/// The member's queues of the test topic (its %RETRY% queue left out).
fn held(consumer: &PushConsumer) -> Vec<ringmq_client::MessageQueue> {
    consumer
        .assignment()
        .into_iter()
        .filter(|q| q.topic == TOPIC)
        .collect()
}

/// Per queue, the sequence numbers seen, in order, and who consumed them.
fn by_queue(seen: &Seen) -> BTreeMap<i32, Vec<(usize, usize)>> {
    let mut out: BTreeMap<i32, Vec<(usize, usize)>> = BTreeMap::new();
    for &(member, queue, sequence) in seen.lock().unwrap().iter() {
        out.entry(queue).or_default().push((member, sequence));
    }
    out
}

async fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    done()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orderly_members_split_the_queues_and_consume_each_in_order() {
    let broker = support::start_broker(&[]);
    let ns = broker.namesrv_addr.unwrap().to_string();
    let admin = Admin::connect(&ns);
    support::create_routed_topic(&admin, TOPIC, KEYS as i32).await;
    let producer = Producer::start(ProducerConfig::new(&ns, "orderly_producer"))
        .await
        .unwrap();
    send_keys(&producer, 0, 10).await;

    let seen: Seen = Arc::default();
    let fail_once = Arc::new(AtomicBool::new(true));
    let first = member(&ns, 0, Arc::clone(&seen), Arc::clone(&fail_once));
    first.subscribe(TOPIC, "*").unwrap();
    first.start().await.unwrap();
    let second = member(&ns, 1, Arc::clone(&seen), Arc::clone(&fail_once));
    second.subscribe(TOPIC, "*").unwrap();
    second.start().await.unwrap();
    // Both members hold queues, none the same.
    assert!(
        wait_until(Duration::from_secs(20), || {
            let (a, b) = (held(&first), held(&second));
            a.len() == KEYS / 2 && b.len() == KEYS / 2 && a.iter().all(|q| !b.contains(q))
        })
        .await,
        "split: {:?} / {:?}",
        held(&first),
        held(&second)
    );
    send_keys(&producer, 10, 20).await;
    let all = |n: usize| {
        let seen = Arc::clone(&seen);
        move || {
            let queues = by_queue(&seen);
            queues.len() == KEYS
                && queues
                    .values()
                    .all(|s| s.iter().any(|&(_, sequence)| sequence == n - 1))
        }
    };
    assert!(
        wait_until(Duration::from_secs(30), all(20)).await,
        "{:?}",
        by_queue(&seen)
    );
    assert!(
        !fail_once.load(Ordering::SeqCst),
        "the failure was exercised"
    );

    // One member leaves: the other locks its queues and goes on.
    first.shutdown().await;
    assert!(
        wait_until(Duration::from_secs(20), || held(&second).len() == KEYS).await,
        "takeover: {:?}",
        held(&second)
    );
    send_keys(&producer, 20, 30).await;
    assert!(
        wait_until(Duration::from_secs(30), all(30)).await,
        "{:?}",
        by_queue(&seen)
    );
    second.shutdown().await;
    producer.shutdown().await;

    for (queue, consumed) in by_queue(&seen) {
        // In order per queue: each sequence number after the one before it (a redelivery
        // after a member change may repeat a suffix, never reorder).
        let sequences: Vec<usize> = consumed.iter().map(|&(_, s)| s).collect();
        let mut expected_next = 0;
        for &s in &sequences {
            assert!(
                s <= expected_next,
                "queue {queue}: {s} came before {expected_next}: {sequences:?}"
            );
            expected_next = expected_next.max(s + 1);
        }
        assert_eq!(expected_next, 30, "queue {queue}: {sequences:?}");
    }
}

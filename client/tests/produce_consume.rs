//! Producer, lite-pull consumer, push consumer and admin calls end to end against a real
//! ringmq-server process (broker + embedded name server on port 0).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ringmq_client::admin::{ResetTarget, TopicSpec};
use ringmq_client::{
    Admin, ConsumeFrom, ConsumeStatus, LitePullConfig, LitePullConsumer, Message, MessageExt,
    MessageModel, Producer, ProducerConfig, PushConsumer, PushConsumerConfig, SendStatus,
};

fn namesrv(broker: &support::Broker) -> String {
    broker
        .namesrv_addr
        .expect("the server printed no name-server address")
        .to_string()
}

async fn producer(ns: &str) -> Producer {
    Producer::start(ProducerConfig::new(ns, "test-producers"))
        .await
        .unwrap()
}

/// Creates `topic` with `queues` queues on every broker of the (only) cluster.
async fn create_topic(ns: &str, topic: &str, queues: i32) {
    let admin = Admin::connect(ns);
    let info = admin.cluster_info().await.unwrap();
    let cluster = info.cluster_addr_table.keys().next().unwrap().clone();
    admin
        .create_topic(&cluster, &TopicSpec::new(topic, queues))
        .await
        .unwrap();
    // The route reaches the name server with the broker's re-registration.
    let deadline = Instant::now() + Duration::from_secs(10);
    while admin.topic_route(topic).await.is_err() {
        assert!(Instant::now() < deadline, "route of {topic} never appeared");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    admin.shutdown().await;
}

async fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

type Seen = Arc<Mutex<Vec<MessageExt>>>;

/// Message id → (topic, reconsume count) of each delivery.
type Attempts = Arc<Mutex<BTreeMap<String, Vec<(String, i32)>>>>;

fn recording_consumer(ns: &str, group: &str, from: ConsumeFrom) -> (PushConsumer, Seen) {
    let seen: Seen = Arc::default();
    let sink = Arc::clone(&seen);
    let mut config = PushConsumerConfig::new(ns, group);
    config.consume_from = from;
    let consumer = PushConsumer::new(config, move |msgs: &[MessageExt]| {
        sink.lock().unwrap().extend(msgs.iter().cloned());
        ConsumeStatus::Success
    });
    (consumer, seen)
}

fn ids(seen: &Seen) -> BTreeSet<String> {
    seen.lock()
        .unwrap()
        .iter()
        .map(|m| m.msg_id().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_to_a_new_topic_auto_creates_it_and_the_message_reads_back_by_id() {
    let broker = support::start_broker(&[]);
    let ns = namesrv(&broker);
    let producer = producer(&ns).await;
    let result = producer
        .send(
            Message::new("AutoCreated", "hello ringmq")
                .with_tags("TagA")
                .with_keys(["k1", "k2"])
                .with_property("color", "blue"),
        )
        .await
        .unwrap();
    assert_eq!(result.status, SendStatus::SendOk);
    assert_eq!(result.msg_id.len(), 32, "a UNIQ_KEY");
    let admin = Admin::connect(&ns);
    let msg = admin.view_message(&result.offset_msg_id).await.unwrap();
    assert_eq!(&msg.body[..], b"hello ringmq");
    assert_eq!(msg.tags(), Some("TagA"));
    assert_eq!(msg.keys(), vec!["k1", "k2"]);
    assert_eq!(msg.property("color"), Some("blue"));
    assert_eq!(msg.msg_id(), result.msg_id);
    assert_eq!(msg.queue_offset, result.queue_offset);
    let route = admin.topic_route("AutoCreated").await.unwrap();
    let queues: i32 = route.queue_datas.iter().map(|q| q.write_queue_nums).sum();
    assert_eq!(queues, 4, "auto-created with the producer's 4 queues");
    producer.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_above_4_kib_is_compressed_and_reads_back_inflated() {
    let broker = support::start_broker(&[]);
    let ns = namesrv(&broker);
    let producer = producer(&ns).await;
    let body: Vec<u8> = (0..20_000u32).map(|i| (i % 7) as u8 + b'a').collect();
    let result = producer
        .send(Message::new("Big", body.clone()))
        .await
        .unwrap();
    let msg = Admin::connect(&ns)
        .view_message(&result.offset_msg_id)
        .await
        .unwrap();
    assert_eq!(&msg.body[..], &body[..]);
    assert_eq!(msg.sys_flag & 0x1, 0, "COMPRESSED cleared once inflated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_lands_on_one_queue_with_consecutive_offsets_and_lite_pull_reads_it_from_that_offset(
) {
    let broker = support::start_broker(&[]);
    let ns = namesrv(&broker);
    create_topic(&ns, "Batched", 2).await;
    let producer = producer(&ns).await;
    producer
        .send(Message::new("Batched", "before"))
        .await
        .unwrap();
    let batch: Vec<Message> = (0..5)
        .map(|i| Message::new("Batched", format!("m{i}")).with_tags("B"))
        .collect();
    let result = producer.send_batch(batch).await.unwrap();
    assert_eq!(result.msg_id.split(',').count(), 5);

    let consumer = LitePullConsumer::new(LitePullConfig::new(&ns, "lite-readers"));
    consumer.assign(vec![result.queue.clone()]).await.unwrap();
    consumer.start().await.unwrap();
    consumer
        .seek(&result.queue, result.queue_offset)
        .await
        .unwrap();
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while got.len() < 5 && Instant::now() < deadline {
        got.extend(consumer.poll(Duration::from_millis(500)).await);
    }
    let bodies: Vec<String> = got
        .iter()
        .map(|m| String::from_utf8(m.body.to_vec()).unwrap())
        .collect();
    assert_eq!(bodies, vec!["m0", "m1", "m2", "m3", "m4"]);
    let offsets: Vec<i64> = got.iter().map(|m| m.queue_offset).collect();
    let first = result.queue_offset;
    assert_eq!(offsets, (first..first + 5).collect::<Vec<_>>());
    assert_eq!(consumer.committed_position(&result.queue), Some(first + 5));
    consumer.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_groups_on_one_topic_each_receive_every_message() {
    let broker = support::start_broker(&[]);
    let ns = namesrv(&broker);
    create_topic(&ns, "Fanout", 4).await;
    let (a, seen_a) = recording_consumer(&ns, "group-a", ConsumeFrom::FirstOffset);
    let (b, seen_b) = recording_consumer(&ns, "group-b", ConsumeFrom::FirstOffset);
    a.subscribe("Fanout", "*").unwrap();
    b.subscribe("Fanout", "*").unwrap();
    a.start().await.unwrap();
    b.start().await.unwrap();
    let producer = producer(&ns).await;
    let mut sent = BTreeSet::new();
    for i in 0..200 {
        let r = producer
            .send(Message::new("Fanout", format!("msg-{i}")))
            .await
            .unwrap();
        sent.insert(r.msg_id);
    }
    wait_until(
        "both groups to get all 200",
        Duration::from_secs(20),
        || ids(&seen_a) == sent && ids(&seen_b) == sent,
    )
    .await;
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tag_subscription_receives_only_its_tags() {
    let broker = support::start_broker(&[]);
    let ns = namesrv(&broker);
    create_topic(&ns, "Tagged", 2).await;
    let (c, seen) = recording_consumer(&ns, "tag-group", ConsumeFrom::FirstOffset);
    c.subscribe("Tagged", "TagA || TagC").unwrap();
    c.start().await.unwrap();
    let producer = producer(&ns).await;
    for i in 0..30 {
        let tag = ["TagA", "TagB", "TagC"][i % 3];
        producer
            .send(Message::new("Tagged", format!("{i}")).with_tags(tag))
            .await
            .unwrap();
    }
    wait_until("20 tagged messages", Duration::from_secs(15), || {
        seen.lock().unwrap().len() >= 20
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 20);
        assert!(seen.iter().all(|m| m.tags() != Some("TagB")));
    }
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_members_split_the_queues_averagely_and_each_message_is_consumed_once() {
    let broker = support::start_broker(&[]);
    let ns = namesrv(&broker);
    create_topic(&ns, "Shared", 8).await;
    let mut members = Vec::new();
    for _ in 0..3 {
        let (c, seen) = recording_consumer(&ns, "shared-group", ConsumeFrom::FirstOffset);
        c.subscribe("Shared", "*").unwrap();
        c.start().await.unwrap();
        members.push((c, seen));
    }
    let user_queues = |c: &PushConsumer| {
        c.assignment()
            .into_iter()
            .filter(|q| q.topic == "Shared")
            .collect::<Vec<_>>()
    };
    // The exact split of §7.1: sorted client ids take q0-2, q3-5, q6-7. Membership
    // notifications trigger rebalances; nudge them so the test does not wait for the 20 s timer.
    let split = || -> Vec<Vec<i32>> {
        let mut by_cid: Vec<(String, Vec<i32>)> = members
            .iter()
            .map(|(c, _)| {
                (
                    c.client_id().to_owned(),
                    user_queues(c).iter().map(|q| q.queue_id).collect(),
                )
            })
            .collect();
        by_cid.sort();
        by_cid.into_iter().map(|(_, q)| q).collect()
    };
    let expected = vec![vec![0, 1, 2], vec![3, 4, 5], vec![6, 7]];
    let deadline = Instant::now() + Duration::from_secs(20);
    while split() != expected {
        assert!(
            Instant::now() < deadline,
            "assignment never settled: {:?}",
            split()
        );
        for (c, _) in &members {
            c.rebalance_now().await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let producer = producer(&ns).await;
    let mut sent = BTreeSet::new();
    for i in 0..240 {
        sent.insert(
            producer
                .send(Message::new("Shared", format!("{i}")))
                .await
                .unwrap()
                .msg_id,
        );
    }
    let total = || -> usize { members.iter().map(|(_, s)| s.lock().unwrap().len()).sum() };
    wait_until("240 messages consumed", Duration::from_secs(20), || {
        total() >= 240
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut count: HashMap<String, usize> = HashMap::new();
    for (_, seen) in &members {
        for m in seen.lock().unwrap().iter() {
            *count.entry(m.msg_id().to_owned()).or_default() += 1;
        }
    }
    assert_eq!(count.keys().cloned().collect::<BTreeSet<_>>(), sent);
    assert!(
        count.values().all(|n| *n == 1),
        "a message was consumed twice"
    );
    for (c, _) in &members {
        c.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_offsets_survive_a_consumer_restart_and_show_in_consume_progress() {
    let broker = support::start_broker(&[]);
    let ns = namesrv(&broker);
    create_topic(&ns, "Resume", 2).await;
    let producer = producer(&ns).await;
    for i in 0..20 {
        producer
            .send(Message::new("Resume", format!("{i}")))
            .await
            .unwrap();
    }
    let (c, seen) = recording_consumer(&ns, "resume-group", ConsumeFrom::FirstOffset);
    c.subscribe("Resume", "*").unwrap();
    c.start().await.unwrap();
    wait_until("20 messages", Duration::from_secs(15), || {
        seen.lock().unwrap().len() >= 20
    })
    .await;
    c.shutdown().await;

    let admin = Admin::connect(&ns);
    let progress = admin
        .consume_progress("resume-group", Some("Resume"))
        .await
        .unwrap();
    let consumed: i64 = progress.iter().map(|p| p.consumer_offset).sum();
    assert_eq!(consumed, 20, "{progress:?}");
    assert!(progress.iter().all(|p| p.lag() == 0));

    for i in 20..30 {
        producer
            .send(Message::new("Resume", format!("{i}")))
            .await
            .unwrap();
    }
    let (c2, seen2) = recording_consumer(&ns, "resume-group", ConsumeFrom::FirstOffset);
    c2.subscribe("Resume", "*").unwrap();
    c2.start().await.unwrap();
    wait_until("10 new messages", Duration::from_secs(15), || {
        seen2.lock().unwrap().len() >= 10
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let bodies: BTreeSet<String> = seen2
        .lock()
        .unwrap()
        .iter()
        .map(|m| String::from_utf8(m.body.to_vec()).unwrap())
        .collect();
    let expected: BTreeSet<String> = (20..30).map(|i| i.to_string()).collect();
    assert_eq!(bodies, expected, "only what was not consumed before");
    c2.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_offset_to_an_exact_offset_rewinds_the_group() {
    let broker = support::start_broker(&[]);
    let ns = namesrv(&broker);
    create_topic(&ns, "Rewind", 1).await;
    let producer = producer(&ns).await;
    for i in 0..10 {
        producer
            .send(Message::new("Rewind", format!("{i}")))
            .await
            .unwrap();
    }
    let admin = Admin::connect(&ns);
    let set = admin
        .reset_offset("rewind-group", "Rewind", ResetTarget::Offset(7), None)
        .await
        .unwrap();
    assert_eq!(set.len(), 1);
    assert_eq!(set[0].1, 7);
    assert_eq!(
        admin
            .consumer_offset("rewind-group", &set[0].0)
            .await
            .unwrap(),
        Some(7)
    );
    let (c, seen) = recording_consumer(&ns, "rewind-group", ConsumeFrom::FirstOffset);
    c.subscribe("Rewind", "*").unwrap();
    c.start().await.unwrap();
    wait_until("3 messages", Duration::from_secs(15), || {
        seen.lock().unwrap().len() >= 3
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let offsets: Vec<i64> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|m| m.queue_offset)
        .collect();
    assert_eq!(
        offsets.iter().copied().collect::<BTreeSet<_>>(),
        [7, 8, 9].into()
    );
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconsume_later_redelivers_the_message_through_the_retry_topic() {
    let broker = support::start_broker(&[]);
    let ns = namesrv(&broker);
    create_topic(&ns, "Flaky", 1).await;
    let attempts: Attempts = Arc::default();
    let sink = Arc::clone(&attempts);
    let mut config = PushConsumerConfig::new(&ns, "flaky-group");
    config.consume_from = ConsumeFrom::FirstOffset;
    let c = PushConsumer::new(config, move |msgs: &[MessageExt]| {
        let mut a = sink.lock().unwrap();
        let mut status = ConsumeStatus::Success;
        for m in msgs {
            let tries = a.entry(m.msg_id().to_owned()).or_default();
            tries.push((m.topic.clone(), m.reconsume_times));
            if tries.len() == 1 {
                status = ConsumeStatus::ReconsumeLater;
            }
        }
        status
    });
    c.subscribe("Flaky", "*").unwrap();
    c.start().await.unwrap();
    let producer = producer(&ns).await;
    let sent = producer.send(Message::new("Flaky", "x")).await.unwrap();
    wait_until("a redelivery", Duration::from_secs(30), || {
        attempts
            .lock()
            .unwrap()
            .get(&sent.msg_id)
            .is_some_and(|t| t.len() >= 2)
    })
    .await;
    let tries = attempts.lock().unwrap().get(&sent.msg_id).cloned().unwrap();
    assert_eq!(tries[0], ("Flaky".to_owned(), 0));
    assert_eq!(
        tries[1],
        ("Flaky".to_owned(), 1),
        "original topic restored, count 1"
    );
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_members_each_get_every_message_and_resume_from_their_local_offsets() {
    let broker = support::start_broker(&[]);
    let ns = namesrv(&broker);
    create_topic(&ns, "Everyone", 2).await;
    let dir = tempfile::tempdir().unwrap();
    let make = |instance: &str| {
        let seen: Seen = Arc::default();
        let sink = Arc::clone(&seen);
        let mut config = PushConsumerConfig::new(&ns, "bcast-group");
        config.model = MessageModel::Broadcasting;
        config.consume_from = ConsumeFrom::FirstOffset;
        config.client.instance_name = instance.to_owned();
        config.offset_store_dir = Some(dir.path().to_path_buf());
        let c = PushConsumer::new(config, move |msgs: &[MessageExt]| {
            sink.lock().unwrap().extend(msgs.iter().cloned());
            ConsumeStatus::Success
        });
        c.subscribe("Everyone", "*").unwrap();
        (c, seen)
    };
    let members: Vec<(PushConsumer, Seen)> = ["m1", "m2", "m3"].iter().map(|i| make(i)).collect();
    for (c, _) in &members {
        c.start().await.unwrap();
    }
    let producer = producer(&ns).await;
    let mut sent = BTreeSet::new();
    for i in 0..30 {
        sent.insert(
            producer
                .send(Message::new("Everyone", format!("{i}")))
                .await
                .unwrap()
                .msg_id,
        );
    }
    wait_until(
        "every member to get all 30",
        Duration::from_secs(15),
        || members.iter().all(|(_, s)| ids(s) == sent),
    )
    .await;
    for (c, _) in &members {
        c.shutdown().await;
    }
    // m1 restarts: it resumes from its file, so it gets only what was sent meanwhile.
    let mut later = BTreeSet::new();
    for i in 30..35 {
        later.insert(
            producer
                .send(Message::new("Everyone", format!("{i}")))
                .await
                .unwrap()
                .msg_id,
        );
    }
    let (again, seen) = make("m1");
    again.start().await.unwrap();
    wait_until("the 5 later messages", Duration::from_secs(15), || {
        ids(&seen) == later
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(ids(&seen), later);
    again.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lite_pull_members_of_one_group_split_the_queues_and_poll_every_message_once() {
    let broker = support::start_broker(&[]);
    let ns = namesrv(&broker);
    create_topic(&ns, "Polled", 4).await;
    let make = || {
        let mut config = LitePullConfig::new(&ns, "lite-group");
        config.consume_from = ConsumeFrom::FirstOffset;
        let c = LitePullConsumer::new(config);
        c.subscribe("Polled", "*").unwrap();
        c
    };
    let (c1, c2) = (make(), make());
    c1.start().await.unwrap();
    c2.start().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (a1, a2) = (c1.assignment(), c2.assignment());
        if a1.len() == 2 && a2.len() == 2 && a1.iter().all(|q| !a2.contains(q)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "split never settled: {a1:?} {a2:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let producer = producer(&ns).await;
    let mut sent = BTreeSet::new();
    for i in 0..40 {
        sent.insert(
            producer
                .send(Message::new("Polled", format!("{i}")))
                .await
                .unwrap()
                .msg_id,
        );
    }
    let mut got: Vec<String> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    while got.len() < 40 && Instant::now() < deadline {
        for c in [&c1, &c2] {
            got.extend(
                c.poll(Duration::from_millis(100))
                    .await
                    .iter()
                    .map(|m| m.msg_id().to_owned()),
            );
        }
    }
    assert_eq!(got.len(), 40, "each message polled exactly once");
    assert_eq!(got.into_iter().collect::<BTreeSet<_>>(), sent);
    c1.shutdown().await;
    c2.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_listener_gets_the_message_again() {
    let broker = support::start_broker(&[]);
    let ns = namesrv(&broker);
    create_topic(&ns, "Panicky", 1).await;
    let deliveries: Arc<Mutex<Vec<i32>>> = Arc::default();
    let sink = Arc::clone(&deliveries);
    let mut config = PushConsumerConfig::new(&ns, "panicky-group");
    config.consume_from = ConsumeFrom::FirstOffset;
    let c = PushConsumer::new(config, move |msgs: &[MessageExt]| {
        let first = {
            let mut d = sink.lock().unwrap();
            d.extend(msgs.iter().map(|m| m.reconsume_times));
            d.len() == 1
        };
        if first {
            panic!("listener failure on the first delivery");
        }
        ConsumeStatus::Success
    });
    c.subscribe("Panicky", "*").unwrap();
    c.start().await.unwrap();
    producer(&ns)
        .await
        .send(Message::new("Panicky", "x"))
        .await
        .unwrap();
    wait_until("the redelivery", Duration::from_secs(30), || {
        deliveries.lock().unwrap().len() >= 2
    })
    .await;
    assert_eq!(deliveries.lock().unwrap()[..2], [0, 1]);
    c.shutdown().await;
}

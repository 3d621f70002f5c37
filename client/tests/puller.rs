//! The per-queue puller (`QueuePuller`) and the start-offset lookup (`start_offset`): against a
//! real ringmq-server process, and the request it sends against a scripted broker.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ringmq_client::admin::TopicSpec;
use ringmq_client::core::ClientCore;
use ringmq_client::protocol::codes::{request_code, response_code};
use ringmq_client::protocol::command::{ExtFields, RemotingCommand};
use ringmq_client::{
    start_offset, Admin, ClientConfig, ConsumeFrom, Message, MessageQueue, OffsetStore, Producer,
    ProducerConfig, PullCommit, PullFlavor, Pulled, QueuePuller, Subscription,
};
use support::scripted::{namesrv as scripted_namesrv, reply, route, Peer};

fn namesrv(broker: &support::Broker) -> String {
    broker
        .namesrv_addr
        .expect("the server printed no name-server address")
        .to_string()
}

/// Creates `topic` with one queue and returns that queue.
async fn one_queue_topic(ns: &str, topic: &str) -> MessageQueue {
    let admin = Admin::connect(ns);
    let info = admin.cluster_info().await.unwrap();
    let cluster = info.cluster_addr_table.keys().next().unwrap().clone();
    admin
        .create_topic(&cluster, &TopicSpec::new(topic, 1))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let queues = loop {
        if let Ok(queues) = admin.topic_queues(topic).await {
            break queues;
        }
        assert!(Instant::now() < deadline, "route of {topic} never appeared");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    admin.shutdown().await;
    assert_eq!(queues.len(), 1);
    queues.into_iter().next().unwrap()
}

async fn send_all(ns: &str, msgs: Vec<Message>) {
    let producer = Producer::start(ProducerConfig::new(ns, "puller-test-producers"))
        .await
        .unwrap();
    for msg in msgs {
        producer.send(msg).await.unwrap();
    }
    producer.shutdown().await;
}

fn bodies(msgs: &[ringmq_client::MessageExt]) -> Vec<String> {
    msgs.iter()
        .map(|m| String::from_utf8(m.body.to_vec()).unwrap())
        .collect()
}

fn reader(core: &Arc<ClientCore>, mq: &MessageQueue, expression: &str, at: i64) -> QueuePuller {
    QueuePuller::new(
        Arc::clone(core),
        "puller-test-group",
        mq.clone(),
        Subscription::new(&mq.topic, expression),
        at,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_puller_started_at_the_start_offset_resumes_after_what_the_last_one_committed() {
    let broker = support::start_broker(&[]);
    let ns = namesrv(&broker);
    let mq = one_queue_topic(&ns, "Resume").await;
    send_all(
        &ns,
        (0..5)
            .map(|i| Message::new("Resume", format!("m{i}")))
            .collect(),
    )
    .await;
    let core = ClientCore::new(ClientConfig::new(&ns));
    let store = OffsetStore::remote("puller-test-group");

    // The first puller reads 3, then commits offset 3 with its next pull.
    let mut first = reader(&core, &mq, "*", 0)
        .with_commit(PullCommit::NextOffset)
        .with_batch_size(3);
    let batch = first.next_batch().await.unwrap();
    assert_eq!(bodies(batch.messages()), vec!["m0", "m1", "m2"]);
    assert_eq!(first.next_offset(), 3);
    let batch = first.next_batch().await.unwrap();
    assert_eq!(bodies(batch.messages()), vec!["m3", "m4"]);

    let start = start_offset(&core, Some(&store), &mq, ConsumeFrom::LastOffset)
        .await
        .unwrap();
    assert_eq!(start, 3, "the committed offset wins over consumeFromWhere");
    let mut second = reader(&core, &mq, "*", start);
    let batch = second.next_batch().await.unwrap();
    assert_eq!(bodies(batch.messages()), vec!["m3", "m4"]);
    assert_eq!(second.next_offset(), 5);
    core.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_store_the_start_offset_is_where_consume_from_says() {
    let broker = support::start_broker(&[]);
    let ns = namesrv(&broker);
    let mq = one_queue_topic(&ns, "Fresh").await;
    send_all(
        &ns,
        (0..4)
            .map(|i| Message::new("Fresh", format!("m{i}")))
            .collect(),
    )
    .await;
    let core = ClientCore::new(ClientConfig::new(&ns));
    let last = start_offset(&core, None, &mq, ConsumeFrom::LastOffset).await;
    assert_eq!(last.unwrap(), 4);
    let first = start_offset(&core, None, &mq, ConsumeFrom::FirstOffset).await;
    assert_eq!(first.unwrap(), 0);
    core.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_at_an_illegal_offset_adopts_the_brokers_next_begin_offset() {
    let broker = support::start_broker(&[]);
    let ns = namesrv(&broker);
    let mq = one_queue_topic(&ns, "Moved").await;
    send_all(
        &ns,
        (0..2)
            .map(|i| Message::new("Moved", format!("m{i}")))
            .collect(),
    )
    .await;
    let core = ClientCore::new(ClientConfig::new(&ns));
    let mut puller = reader(&core, &mq, "*", 100).with_suspend_timeout(Duration::from_millis(200));
    match puller.next_batch().await.unwrap() {
        Pulled::OffsetMoved { from, to } => assert_eq!((from, to), (100, 2)),
        other => panic!("expected the offset to move, got {other:?}"),
    }
    assert_eq!(puller.next_offset(), 2);
    send_all(&ns, vec![Message::new("Moved", "after")]).await;
    let batch = puller.next_batch().await.unwrap();
    assert_eq!(bodies(batch.messages()), vec!["after"]);
    assert_eq!(batch.messages()[0].queue_offset, 2);
    core.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_pull_returns_as_soon_as_a_message_arrives() {
    let broker = support::start_broker(&[]);
    let ns = namesrv(&broker);
    let mq = one_queue_topic(&ns, "Held").await;
    send_all(&ns, vec![Message::new("Held", "old")]).await;
    let core = ClientCore::new(ClientConfig::new(&ns));
    let mut puller = reader(&core, &mq, "*", 1).with_suspend_timeout(Duration::from_secs(20));
    let started = Instant::now();
    let pull = tokio::spawn(async move {
        let pulled = puller.next_batch().await;
        (pulled, puller)
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    send_all(&ns, vec![Message::new("Held", "new")]).await;
    let (pulled, puller) = tokio::time::timeout(Duration::from_secs(10), pull)
        .await
        .expect("the held pull was not answered")
        .unwrap();
    assert_eq!(bodies(pulled.unwrap().messages()), vec!["new"]);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "answered by the arrival, not the 20 s hold"
    );
    assert_eq!(puller.next_offset(), 2);
    core.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_pull_with_nothing_new_reports_caught_up_after_the_hold() {
    let broker = support::start_broker(&[]);
    let ns = namesrv(&broker);
    let mq = one_queue_topic(&ns, "Quiet").await;
    send_all(&ns, vec![Message::new("Quiet", "only")]).await;
    let core = ClientCore::new(ClientConfig::new(&ns));
    let mut puller = reader(&core, &mq, "*", 1).with_suspend_timeout(Duration::from_millis(300));
    let started = Instant::now();
    let pulled = puller.next_batch().await.unwrap();
    assert!(matches!(pulled, Pulled::CaughtUp), "{pulled:?}");
    assert!(started.elapsed() >= Duration::from_millis(250), "held");
    assert_eq!(puller.next_offset(), 1);
    core.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tag_subscription_brings_only_its_tags_and_moves_past_the_others() {
    let broker = support::start_broker(&[]);
    let ns = namesrv(&broker);
    let mq = one_queue_topic(&ns, "Tagged").await;
    send_all(
        &ns,
        (0..6)
            .map(|i| {
                let tag = if i % 2 == 0 { "A" } else { "B" };
                Message::new("Tagged", format!("m{i}")).with_tags(tag)
            })
            .collect(),
    )
    .await;
    let core = ClientCore::new(ClientConfig::new(&ns));
    let mut puller = reader(&core, &mq, "B", 0).with_suspend_timeout(Duration::from_millis(200));
    let mut got = Vec::new();
    for _ in 0..10 {
        match puller.next_batch().await.unwrap() {
            Pulled::Messages(msgs) => got.extend(msgs),
            Pulled::Filtered => {}
            Pulled::CaughtUp => break,
            moved @ Pulled::OffsetMoved { .. } => panic!("{moved:?}"),
        }
    }
    assert_eq!(bodies(&got), vec!["m1", "m3", "m5"]);
    assert_eq!(puller.next_offset(), 6);
    core.shutdown().await;
}

/// A scripted broker answering every pull with nothing new at the requested offset.
async fn recording_broker() -> (Peer, Peer) {
    let broker = Peer::start(Arc::new(|req: &RemotingCommand| match req.code {
        request_code::PULL_MESSAGE | request_code::LITE_PULL_MESSAGE => {
            let offset = req.ext("queueOffset").unwrap().to_owned();
            let ext: ExtFields = [
                ("suggestWhichBrokerId", "0".to_owned()),
                ("nextBeginOffset", offset),
                ("minOffset", "0".to_owned()),
                ("maxOffset", "100".to_owned()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
            reply(response_code::PULL_NOT_FOUND, "").with_ext_fields(ext)
        }
        _ => reply(0, ""),
    }))
    .await;
    let ns = scripted_namesrv(BTreeMap::from([(
        "T".to_owned(),
        route(&[("broker-a", &broker.addr)], 1, 6),
    )]))
    .await;
    (broker, ns)
}

#[tokio::test]
async fn a_reader_pull_carries_its_subscription_and_its_next_offset_as_the_commit() {
    let (broker, ns) = recording_broker().await;
    let core = ClientCore::new(ClientConfig::new(&ns.addr));
    let mq = MessageQueue::new("T", "broker-a", 0);
    let mut puller = QueuePuller::new(
        Arc::clone(&core),
        "g",
        mq,
        Subscription::new("T", "TagA || TagB"),
        7,
    )
    .with_commit(PullCommit::NextOffset)
    .with_batch_size(16)
    .with_suspend_timeout(Duration::from_millis(1500));
    assert!(matches!(
        puller.next_batch().await.unwrap(),
        Pulled::CaughtUp
    ));
    let pull = &broker.requests(request_code::PULL_MESSAGE)[0];
    // SUSPEND | SUBSCRIPTION | COMMIT_OFFSET.
    assert_eq!(pull.ext("sysFlag"), Some("7"));
    assert_eq!(pull.ext("commitOffset"), Some("7"));
    assert_eq!(pull.ext("queueOffset"), Some("7"));
    assert_eq!(pull.ext("maxMsgNums"), Some("16"));
    assert_eq!(pull.ext("subscription"), Some("TagA || TagB"));
    assert_eq!(pull.ext("subVersion"), Some("0"));
    assert_eq!(pull.ext("suspendTimeoutMillis"), Some("1500"));
    core.shutdown().await;
}

#[tokio::test]
async fn a_reader_pull_at_offset_zero_carries_no_commit() {
    let (broker, ns) = recording_broker().await;
    let core = ClientCore::new(ClientConfig::new(&ns.addr));
    let mq = MessageQueue::new("T", "broker-a", 0);
    let mut puller = QueuePuller::new(Arc::clone(&core), "g", mq, Subscription::new("T", "*"), 0)
        .with_commit(PullCommit::NextOffset)
        .with_flavor(PullFlavor::Reader);
    puller.next_batch().await.unwrap();
    let pull = &broker.requests(request_code::PULL_MESSAGE)[0];
    // SUSPEND | SUBSCRIPTION.
    assert_eq!(pull.ext("sysFlag"), Some("6"));
    assert_eq!(pull.ext("subscription"), Some("*"));
    core.shutdown().await;
}

/// Read redirection end to end (issue 13): a master whose every read is cold (ratio 0) tells
/// the puller to read from its caught-up slave, and the puller follows it (§9.2).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_puller_follows_the_masters_suggestion_to_read_from_the_slave() {
    const TOPIC: &str = "Redirected";
    let common = [
        "--shards",
        "1",
        "--segment-size",
        "65536",
        "--broker-name",
        "cr",
    ];
    let ratio = ["--access-message-in-memory-max-ratio", "0"];
    let master = support::start_broker(&[&common[..], &ratio[..]].concat());
    let ns = namesrv(&master);
    let master_addr = master.broker_addr.to_string();
    let slave_args = ["--role", "slave", "--broker-id", "1"];
    let link = ["--master", &master_addr, "--namesrv", &ns];
    let slave =
        support::start_broker(&[&common[..], &ratio[..], &slave_args[..], &link[..]].concat());
    let slave_addr = slave.broker_addr.to_string();
    let mq = one_queue_topic(&ns, TOPIC).await;
    send_all(
        &ns,
        (0..40)
            .map(|i| Message::new(TOPIC, format!("m{i:02}-{}", "x".repeat(300))))
            .collect(),
    )
    .await;

    // Until the route lists the slave, and the slave holds all 40 (copied log and topic).
    let admin = Admin::connect(&ns);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut to_slave = ringmq_testkit::TestClient::connect(slave.broker_addr);
    loop {
        let route = admin.topic_route(TOPIC).await.unwrap();
        let listed = route
            .broker_datas
            .iter()
            .any(|b| b.broker_addrs.contains_key(&1));
        let max = to_slave.call(ringmq_testkit::request(
            request_code::GET_MAX_OFFSET,
            &[("topic", TOPIC), ("queueId", "0")],
        ));
        let caught_up = max.code == response_code::SUCCESS && max.ext("offset") == Some("40");
        let info = admin.broker_runtime_info(&master_addr).await.unwrap();
        let acked = info.get("slaveFallBehindMuch").map(String::as_str) == Some("0");
        if listed && caught_up && acked {
            break;
        }
        assert!(Instant::now() < deadline, "the slave never caught up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let core = ClientCore::new(ClientConfig::new(&ns));
    let mut puller = reader(&core, &mq, "*", 0);
    let mut got = Vec::new();
    for _ in 0..100 {
        if got.len() >= 40 {
            break;
        }
        if let Pulled::Messages(msgs) = puller.next_batch().await.unwrap() {
            got.extend(bodies(&msgs));
        }
    }
    let expected: Vec<String> = (0..40)
        .map(|i| format!("m{i:02}-{}", "x".repeat(300)))
        .collect();
    assert_eq!(got, expected, "every message once, in order");
    let served_by_slave: u64 = admin.broker_runtime_info(&slave_addr).await.unwrap()
        ["msgGetTotalTodayNow"]
        .parse()
        .unwrap();
    let redirected: u64 = admin.broker_runtime_info(&master_addr).await.unwrap()["pullsRedirected"]
        .parse()
        .unwrap();
    assert!(served_by_slave > 0, "the puller never read from the slave");
    assert!(redirected >= 1);
    ringmq_testkit::report(&format!(
        "RAN client read redirect: slave served {served_by_slave} of 40, master redirected {redirected} pulls"
    ));
    admin.shutdown().await;
    core.shutdown().await;
}

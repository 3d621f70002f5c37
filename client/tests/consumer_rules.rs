//! Consumer rules checked against scripted brokers: where a queue starts without a stored
//! offset (protocol.md §6.3) and which node the next pull goes to (§9.2).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ringmq_client::protocol::body::{ConsumerListBody, JsonBody, MessageQueue};
use ringmq_client::protocol::codes::{request_code, response_code};
use ringmq_client::protocol::command::{ExtFields, RemotingCommand};
use ringmq_client::{
    ConsumeFrom, ConsumeStatus, LitePullConfig, LitePullConsumer, MessageExt, PushConsumer,
    PushConsumerConfig,
};
use support::scripted::{namesrv, reply, route, Handler, Peer, DELAY_MS};

fn ext(pairs: &[(&str, String)]) -> ExtFields {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

/// A pull answer with nothing new, held `hold_ms`, suggesting `suggest` for the next pull.
fn not_found(req: &RemotingCommand, suggest: i64, hold_ms: u64) -> RemotingCommand {
    let offset = req.ext("queueOffset").unwrap().to_owned();
    reply(response_code::PULL_NOT_FOUND, "OFFSET_OVERFLOW_ONE").with_ext_fields(ext(&[
        ("suggestWhichBrokerId", suggest.to_string()),
        ("nextBeginOffset", offset),
        ("minOffset", "0".into()),
        ("maxOffset", "100".into()),
        (DELAY_MS, hold_ms.to_string()),
    ]))
}

/// A broker with no stored offset for anyone: max offset 100, search → 50.
fn offsetless_broker() -> Handler {
    Arc::new(|req: &RemotingCommand| match req.code {
        request_code::QUERY_CONSUMER_OFFSET => reply(response_code::QUERY_NOT_FOUND, "not found"),
        request_code::GET_MAX_OFFSET => {
            reply(0, "").with_ext_fields(ext(&[("offset", "100".into())]))
        }
        request_code::SEARCH_OFFSET_BY_TIMESTAMP => {
            reply(0, "").with_ext_fields(ext(&[("offset", "50".into())]))
        }
        request_code::LITE_PULL_MESSAGE | request_code::PULL_MESSAGE => not_found(req, 0, 200),
        _ => reply(0, ""),
    })
}

async fn first_pull_offset(from: ConsumeFrom, topic: &str) -> (i64, Peer) {
    let broker = Peer::start(offsetless_broker()).await;
    let ns = namesrv(BTreeMap::from([(
        topic.to_owned(),
        route(&[("broker-a", &broker.addr)], 1, 6),
    )]))
    .await;
    let mut config = LitePullConfig::new(&ns.addr, "g");
    config.consume_from = from;
    config.auto_commit = false;
    let consumer = LitePullConsumer::new(config);
    consumer
        .assign(vec![MessageQueue::new(topic, "broker-a", 0)])
        .await
        .unwrap();
    consumer.start().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let offset = loop {
        if let Some(pull) = broker.requests(request_code::LITE_PULL_MESSAGE).first() {
            break pull.ext("queueOffset").unwrap().parse().unwrap();
        }
        assert!(Instant::now() < deadline, "no pull");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    consumer.shutdown().await;
    (offset, broker)
}

#[tokio::test]
async fn without_a_stored_offset_last_offset_starts_at_the_queue_max() {
    assert_eq!(first_pull_offset(ConsumeFrom::LastOffset, "T").await.0, 100);
}

#[tokio::test]
async fn without_a_stored_offset_first_offset_starts_at_zero() {
    assert_eq!(first_pull_offset(ConsumeFrom::FirstOffset, "T").await.0, 0);
}

#[tokio::test]
async fn without_a_stored_offset_timestamp_starts_where_the_search_by_time_says() {
    let (offset, broker) = first_pull_offset(ConsumeFrom::Timestamp(1_700_000_000_000), "T").await;
    assert_eq!(offset, 50);
    let search = broker.requests(request_code::SEARCH_OFFSET_BY_TIMESTAMP);
    assert_eq!(search[0].ext("timestamp"), Some("1700000000000"));
}

#[tokio::test]
async fn a_retry_topic_without_a_stored_offset_starts_at_zero_for_last_offset() {
    assert_eq!(
        first_pull_offset(ConsumeFrom::LastOffset, "%RETRY%g")
            .await
            .0,
        0
    );
}

#[tokio::test]
async fn a_retry_topic_without_a_stored_offset_starts_at_the_max_for_timestamp() {
    assert_eq!(
        first_pull_offset(ConsumeFrom::Timestamp(1), "%RETRY%g")
            .await
            .0,
        100
    );
}

#[tokio::test]
async fn a_stored_offset_wins_over_consume_from() {
    let broker = Peer::start(Arc::new(|req: &RemotingCommand| match req.code {
        request_code::QUERY_CONSUMER_OFFSET => {
            reply(0, "").with_ext_fields(ext(&[("offset", "7".into())]))
        }
        request_code::LITE_PULL_MESSAGE => not_found(req, 0, 200),
        _ => reply(0, ""),
    }))
    .await;
    let ns = namesrv(BTreeMap::from([(
        "T".to_owned(),
        route(&[("broker-a", &broker.addr)], 1, 6),
    )]))
    .await;
    let consumer = LitePullConsumer::new(LitePullConfig::new(&ns.addr, "g"));
    consumer
        .assign(vec![MessageQueue::new("T", "broker-a", 0)])
        .await
        .unwrap();
    consumer.start().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while broker.requests(request_code::LITE_PULL_MESSAGE).is_empty() {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let pull = &broker.requests(request_code::LITE_PULL_MESSAGE)[0];
    assert_eq!(pull.ext("queueOffset"), Some("7"));
    // Lite pull: SUBSCRIPTION | SUSPEND | LITE_PULL, code 361, suspend 20 s.
    assert_eq!(pull.ext("sysFlag"), Some("22"));
    assert_eq!(pull.ext("suspendTimeoutMillis"), Some("20000"));
    consumer.shutdown().await;
}

#[tokio::test]
async fn push_pulls_follow_suggest_which_broker_id_and_drop_commit_offset_on_a_slave() {
    let cid: Arc<Mutex<String>> = Arc::default();
    let members = Arc::clone(&cid);
    // The master holds the queue's offset 5 and tells the client to read from slave 1.
    let master = Peer::start(Arc::new(move |req: &RemotingCommand| match req.code {
        request_code::GET_CONSUMER_LIST_BY_GROUP => {
            let body = ConsumerListBody {
                consumer_id_list: vec![members.lock().unwrap().clone()],
            };
            reply(0, "").with_body(body.encode().unwrap())
        }
        request_code::QUERY_CONSUMER_OFFSET => {
            reply(0, "").with_ext_fields(ext(&[("offset", "5".into())]))
        }
        request_code::PULL_MESSAGE => not_found(req, 1, 0),
        _ => reply(0, ""),
    }))
    .await;
    let slave = Peer::start(Arc::new(|req: &RemotingCommand| match req.code {
        request_code::PULL_MESSAGE => not_found(req, 1, 300),
        _ => reply(0, ""),
    }))
    .await;
    let mut r = route(&[("broker-a", &master.addr)], 1, 6);
    r.broker_datas[0].broker_addrs.insert(1, slave.addr.clone());
    let ns = namesrv(BTreeMap::from([("T".to_owned(), r)])).await;
    let consumer = PushConsumer::new(
        PushConsumerConfig::new(&ns.addr, "g"),
        |_: &[MessageExt]| ConsumeStatus::Success,
    );
    *cid.lock().unwrap() = consumer.client_id().to_owned();
    consumer.subscribe("T", "*").unwrap();
    consumer.start().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while slave.requests(request_code::PULL_MESSAGE).is_empty() {
        assert!(Instant::now() < deadline, "no pull reached the slave");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let first = &master.requests(request_code::PULL_MESSAGE)[0];
    // Push: SUSPEND | COMMIT_OFFSET (offset 5 > 0, on the master), no subscription, 15 s hold.
    assert_eq!(first.ext("sysFlag"), Some("3"));
    assert_eq!(first.ext("commitOffset"), Some("5"));
    assert_eq!(first.ext("suspendTimeoutMillis"), Some("15000"));
    assert_eq!(first.ext("subscription"), None);
    let on_slave = &slave.requests(request_code::PULL_MESSAGE)[0];
    assert_eq!(
        on_slave.ext("sysFlag"),
        Some("2"),
        "COMMIT_OFFSET cleared on a slave"
    );
    assert_eq!(master.requests(request_code::PULL_MESSAGE).len(), 1);
    // The heartbeat went to both nodes (consumers heartbeat slaves too).
    assert!(!master.requests(request_code::HEART_BEAT).is_empty());
    assert!(!slave.requests(request_code::HEART_BEAT).is_empty());
    consumer.shutdown().await;
}

//! Producer rules a healthy single broker cannot show on demand (refusals, two brokers, the
//! auto-create route), checked against scripted name-server and broker peers on loopback.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::BTreeMap;

use ringmq_client::protocol::codes::{request_code, response_code};
use ringmq_client::protocol::message::Properties;
use ringmq_client::{ClientError, Message, Producer, ProducerConfig, QueueSelector};
use support::scripted::{accepting, namesrv, refusing, route, Peer};

async fn producer(ns: &Peer, retries: u32) -> Producer {
    let mut config = ProducerConfig::new(&ns.addr, "pg");
    config.retry_times = retries;
    Producer::start(config).await.unwrap()
}

#[tokio::test]
async fn a_retryable_refusal_is_retried_on_the_other_broker() {
    let a = Peer::start(refusing(response_code::SYSTEM_BUSY, "[REJECTREQUEST]busy")).await;
    let b = Peer::start(accepting()).await;
    let ns = namesrv(BTreeMap::from([(
        "T".to_owned(),
        route(&[("broker-a", &a.addr), ("broker-b", &b.addr)], 2, 6),
    )]))
    .await;
    let p = producer(&ns, 2).await;
    for _ in 0..6 {
        let r = p.send(Message::new("T", "x")).await.unwrap();
        assert_eq!(r.queue.broker_name, "broker-b");
    }
    assert!(!a.sends().is_empty(), "round robin never tried broker-a");
    assert_eq!(b.sends().len(), 6);
}

#[tokio::test]
async fn a_non_retryable_refusal_fails_at_once_with_its_code_and_remark() {
    let a = Peer::start(refusing(response_code::MESSAGE_ILLEGAL, "message too big")).await;
    let ns = namesrv(BTreeMap::from([(
        "T".to_owned(),
        route(&[("broker-a", &a.addr)], 4, 6),
    )]))
    .await;
    let p = producer(&ns, 2).await;
    let err = p.send(Message::new("T", "x")).await.unwrap_err();
    match err {
        ClientError::Broker { code, remark, .. } => {
            assert_eq!(code, response_code::MESSAGE_ILLEGAL);
            assert_eq!(remark, "message too big");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(a.sends().len(), 1);
}

#[tokio::test]
async fn retries_stop_after_the_configured_count() {
    let a = Peer::start(refusing(response_code::SYSTEM_ERROR, "boom")).await;
    let ns = namesrv(BTreeMap::from([(
        "T".to_owned(),
        route(&[("broker-a", &a.addr)], 4, 6),
    )]))
    .await;
    let p = producer(&ns, 3).await;
    let err = p.send(Message::new("T", "x")).await.unwrap_err();
    assert_eq!(err.broker_code(), Some(response_code::SYSTEM_ERROR));
    assert_eq!(a.sends().len(), 4, "1 attempt + 3 retries");
}

#[tokio::test]
async fn a_send_is_send_message_v2_with_uniq_key_tags_and_keys_in_its_properties() {
    let b = Peer::start(accepting()).await;
    let ns = namesrv(BTreeMap::from([(
        "T".to_owned(),
        route(&[("broker-b", &b.addr)], 4, 6),
    )]))
    .await;
    let p = producer(&ns, 2).await;
    let r = p
        .send(
            Message::new("T", "body")
                .with_tags("TagA")
                .with_keys(["k1", "k2"]),
        )
        .await
        .unwrap();
    let sends = b.sends();
    let req = &sends[0];
    assert_eq!(req.code, request_code::SEND_MESSAGE_V2);
    assert_eq!(req.ext("a"), Some("pg"));
    assert_eq!(req.ext("b"), Some("T"));
    assert_eq!(req.ext("c"), Some("TBW102"));
    assert_eq!(req.ext("f"), Some("0"));
    assert_eq!(req.ext("n"), Some("broker-b"));
    let props = Properties::decode(req.ext("i").unwrap());
    assert_eq!(props.tags(), Some("TagA"));
    assert_eq!(props.get("KEYS"), Some("k1 k2"));
    assert_eq!(props.uniq_key(), Some(r.msg_id.as_str()));
    assert_eq!(&req.body[..], b"body");
    assert_eq!(r.queue_offset, 41);
}

#[tokio::test]
async fn a_body_above_4_kib_is_sent_zlib_compressed_with_sysflag_0x301() {
    let b = Peer::start(accepting()).await;
    let ns = namesrv(BTreeMap::from([(
        "T".to_owned(),
        route(&[("broker-b", &b.addr)], 1, 6),
    )]))
    .await;
    let p = producer(&ns, 2).await;
    let body = vec![b'z'; 5000];
    p.send(Message::new("T", body.clone())).await.unwrap();
    let small = vec![b'z'; 4096];
    p.send(Message::new("T", small.clone())).await.unwrap();
    let sends = b.sends();
    assert_eq!(sends[0].ext("f"), Some("769"));
    assert!(sends[0].body.len() < 5000);
    assert_eq!(
        ringmq_client::message::inflate(&sends[0].body, 0x301).unwrap(),
        body
    );
    assert_eq!(
        sends[1].ext("f"),
        Some("0"),
        "4096 bytes is not above the threshold"
    );
    assert_eq!(&sends[1].body[..], &small[..]);
}

#[tokio::test]
async fn key_hash_selection_sends_equal_keys_to_one_queue_without_retry() {
    let a = Peer::start(refusing(response_code::SYSTEM_BUSY, "busy")).await;
    let ns = namesrv(BTreeMap::from([(
        "T".to_owned(),
        route(&[("broker-a", &a.addr)], 8, 6),
    )]))
    .await;
    let p = producer(&ns, 2).await;
    let sel = QueueSelector::ByKeyHash("order-42".into());
    assert!(p.send_with(Message::new("T", "1"), &sel).await.is_err());
    assert!(p.send_with(Message::new("T", "2"), &sel).await.is_err());
    let sends = a.sends();
    assert_eq!(sends.len(), 2, "no retry with a selector");
    let expected = ringmq_client::producer::queue_index_by_key("order-42", 8).to_string();
    assert!(sends.iter().all(|s| s.ext("e") == Some(expected.as_str())));
}

#[tokio::test]
async fn a_topic_without_route_is_sent_through_the_tbw102_route_for_auto_creation() {
    let b = Peer::start(accepting()).await;
    let ns = namesrv(BTreeMap::from([(
        "TBW102".to_owned(),
        route(&[("broker-b", &b.addr)], 8, 7),
    )]))
    .await;
    let p = producer(&ns, 2).await;
    for _ in 0..8 {
        p.send(Message::new("Fresh", "x")).await.unwrap();
    }
    let sends = b.sends();
    assert!(sends
        .iter()
        .all(|s| s.ext("b") == Some("Fresh") && s.ext("c") == Some("TBW102")));
    assert!(sends.iter().all(|s| s.ext("d") == Some("4")));
    let queue_ids: std::collections::BTreeSet<i32> = sends
        .iter()
        .map(|s| s.ext("e").unwrap().parse().unwrap())
        .collect();
    assert_eq!(queue_ids, (0..4).collect(), "clamped to min(4, 8) queues");
}

#[tokio::test]
async fn a_topic_without_any_route_is_a_no_route_error() {
    let ns = namesrv(BTreeMap::new()).await;
    let p = producer(&ns, 2).await;
    let err = p.send(Message::new("Nowhere", "x")).await.unwrap_err();
    assert!(
        matches!(err, ClientError::NoRoute { ref topic } if topic == "Nowhere"),
        "{err:?}"
    );
}

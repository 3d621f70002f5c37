//! Producer rules a healthy single broker cannot show on demand (refusals, two brokers, the
//! auto-create route), checked against scripted name-server and broker peers on loopback.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use bytes::BytesMut;
use ringmq_client::protocol::body::{BrokerData, JsonBody, QueueData, TopicRouteData};
use ringmq_client::protocol::codes::{request_code, response_code};
use ringmq_client::protocol::command::{ExtFields, RemotingCommand};
use ringmq_client::protocol::frame::{decode_frame, encode_frame, FrameLimits};
use ringmq_client::protocol::header::SerializeType;
use ringmq_client::protocol::message::Properties;
use ringmq_client::{ClientError, Message, Producer, ProducerConfig, QueueSelector};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

type Handler = Arc<dyn Fn(&RemotingCommand) -> RemotingCommand + Send + Sync>;

/// A scripted peer: answers every request with `handler` and records what it received.
struct Peer {
    addr: String,
    received: Arc<Mutex<Vec<RemotingCommand>>>,
}

impl Peer {
    async fn start(handler: Handler) -> Peer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let received: Arc<Mutex<Vec<RemotingCommand>>> = Arc::default();
        let log = Arc::clone(&received);
        tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                let handler = Arc::clone(&handler);
                let log = Arc::clone(&log);
                tokio::spawn(async move {
                    let mut buf = BytesMut::new();
                    loop {
                        while let Some(cmd) =
                            decode_frame(&mut buf, &FrameLimits::default()).unwrap()
                        {
                            log.lock().unwrap().push(cmd.clone());
                            if cmd.is_oneway() {
                                continue;
                            }
                            let mut out = BytesMut::new();
                            let mut reply = handler(&cmd);
                            reply.opaque = cmd.opaque;
                            reply.flag |= 1;
                            encode_frame(&reply, SerializeType::Json, &mut out).unwrap();
                            if stream.write_all(&out).await.is_err() {
                                return;
                            }
                        }
                        match stream.read_buf(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(_) => {}
                        }
                    }
                });
            }
        });
        Peer { addr, received }
    }

    fn sends(&self) -> Vec<RemotingCommand> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .filter(|c| {
                matches!(
                    c.code,
                    request_code::SEND_MESSAGE
                        | request_code::SEND_MESSAGE_V2
                        | request_code::SEND_BATCH_MESSAGE
                )
            })
            .cloned()
            .collect()
    }
}

fn reply(code: i32, remark: &str) -> RemotingCommand {
    RemotingCommand::response_to(&RemotingCommand::request(0, ExtFields::new()), code)
        .with_remark(remark)
}

/// A broker that stores everything: SUCCESS with the send response header.
fn accepting() -> Handler {
    Arc::new(|req: &RemotingCommand| {
        let mut ext = ExtFields::new();
        ext.insert("msgId".into(), "0A00000100002A9F0000000000001F40".into());
        ext.insert("queueId".into(), req.ext("e").unwrap_or("0").into());
        ext.insert("queueOffset".into(), "41".into());
        reply(response_code::SUCCESS, "").with_ext_fields(ext)
    })
}

fn refusing(code: i32, remark: &'static str) -> Handler {
    Arc::new(move |_: &RemotingCommand| reply(code, remark))
}

fn route(brokers: &[(&str, &str)], queues: i32, perm: i32) -> TopicRouteData {
    TopicRouteData {
        queue_datas: brokers
            .iter()
            .map(|(name, _)| QueueData {
                broker_name: (*name).into(),
                read_queue_nums: queues,
                write_queue_nums: queues,
                perm,
                topic_sys_flag: 0,
            })
            .collect(),
        broker_datas: brokers
            .iter()
            .map(|(name, addr)| BrokerData {
                cluster: "C".into(),
                broker_name: (*name).into(),
                broker_addrs: BTreeMap::from([(0, (*addr).to_owned())]),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

/// A name server answering GET_ROUTEINFO_BY_TOPIC from `routes` (17 for others).
async fn namesrv(routes: BTreeMap<String, TopicRouteData>) -> Peer {
    Peer::start(Arc::new(move |req: &RemotingCommand| {
        match req.ext("topic").and_then(|t| routes.get(t)) {
            Some(r) => reply(response_code::SUCCESS, "").with_body(r.encode().unwrap()),
            None => reply(response_code::TOPIC_NOT_EXIST, "No topic route info"),
        }
    }))
    .await
}

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

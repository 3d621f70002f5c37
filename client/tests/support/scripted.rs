//! Scripted peers for rule tests: a name server answering routes from a table and brokers
//! answering every request with a handler, on loopback.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use ringmq_client::protocol::body::{BrokerData, JsonBody, QueueData, TopicRouteData};
use ringmq_client::protocol::codes::{request_code, response_code};
use ringmq_client::protocol::command::{ExtFields, RemotingCommand};
use ringmq_client::protocol::frame::{decode_frame, encode_frame, FrameLimits};
use ringmq_client::protocol::header::SerializeType;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Extension key a handler may set on its reply: the peer waits that many ms before sending
/// it (a held long poll). Removed before sending.
pub const DELAY_MS: &str = "__test_delay_ms";

pub type Handler = Arc<dyn Fn(&RemotingCommand) -> RemotingCommand + Send + Sync>;

/// A scripted peer: answers every request with `handler` and records what it received.
pub struct Peer {
    pub addr: String,
    pub received: Arc<Mutex<Vec<RemotingCommand>>>,
}

impl Peer {
    pub async fn start(handler: Handler) -> Peer {
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
                            if let Some(ms) = reply.ext_fields.remove(DELAY_MS) {
                                tokio::time::sleep(Duration::from_millis(ms.parse().unwrap()))
                                    .await;
                            }
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

    pub fn sends(&self) -> Vec<RemotingCommand> {
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

pub fn reply(code: i32, remark: &str) -> RemotingCommand {
    RemotingCommand::response_to(&RemotingCommand::request(0, ExtFields::new()), code)
        .with_remark(remark)
}

/// A broker that stores everything: SUCCESS with the send response header.
pub fn accepting() -> Handler {
    Arc::new(|req: &RemotingCommand| {
        let mut ext = ExtFields::new();
        ext.insert("msgId".into(), "0A00000100002A9F0000000000001F40".into());
        ext.insert("queueId".into(), req.ext("e").unwrap_or("0").into());
        ext.insert("queueOffset".into(), "41".into());
        reply(response_code::SUCCESS, "").with_ext_fields(ext)
    })
}

pub fn refusing(code: i32, remark: &'static str) -> Handler {
    Arc::new(move |_: &RemotingCommand| reply(code, remark))
}

pub fn route(brokers: &[(&str, &str)], queues: i32, perm: i32) -> TopicRouteData {
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
pub async fn namesrv(routes: BTreeMap<String, TopicRouteData>) -> Peer {
    Peer::start(Arc::new(move |req: &RemotingCommand| {
        match req.ext("topic").and_then(|t| routes.get(t)) {
            Some(r) => reply(response_code::SUCCESS, "").with_body(r.encode().unwrap()),
            None => reply(response_code::TOPIC_NOT_EXIST, "No topic route info"),
        }
    }))
    .await
}

impl Peer {
    /// Requests received with `code`.
    pub fn requests(&self, code: i32) -> Vec<RemotingCommand> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .filter(|c| c.code == code)
            .cloned()
            .collect()
    }
}

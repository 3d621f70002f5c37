//! The remoting layer against a real ringmq-server and against a scripted peer on loopback
//! (for behaviours a healthy broker does not show on demand: dying mid-request, silence,
//! broker-initiated requests, binary headers).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use ringmq_client::protocol::codes::{request_code, response_code};
use ringmq_client::protocol::command::{ExtFields, RemotingCommand};
use ringmq_client::protocol::frame::{decode_frame, encode_frame, FrameLimits};
use ringmq_client::protocol::header::SerializeType;
use ringmq_client::remoting::RemotingClient;
use ringmq_client::ClientError;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

async fn read_command(stream: &mut TcpStream, buf: &mut BytesMut) -> Option<RemotingCommand> {
    loop {
        if let Some(cmd) = decode_frame(buf, &FrameLimits::default()).unwrap() {
            return Some(cmd);
        }
        if stream.read_buf(buf).await.ok()? == 0 {
            return None;
        }
    }
}

async fn write_command(stream: &mut TcpStream, cmd: &RemotingCommand, st: SerializeType) {
    let mut out = BytesMut::new();
    encode_frame(cmd, st, &mut out).unwrap();
    stream.write_all(&out).await.unwrap();
}

async fn peer() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    (listener, addr)
}

fn request(code: i32) -> RemotingCommand {
    RemotingCommand::request(code, ExtFields::new())
}

#[tokio::test]
async fn an_unsupported_request_to_ringmq_server_is_a_broker_error_with_its_code_and_remark() {
    let broker = support::start_broker(&[]);
    let client = Arc::new(RemotingClient::default());
    let addr = broker.broker_addr.to_string();
    let err = client
        .invoke_ok(&addr, request(9999), Duration::from_secs(5))
        .await
        .unwrap_err();
    match err {
        ClientError::Broker { code, remark, .. } => {
            assert_eq!(code, response_code::REQUEST_CODE_NOT_SUPPORTED);
            assert!(remark.contains("9999"), "remark {remark:?}");
        }
        other => panic!("expected a broker error, got {other:?}"),
    }
}

#[tokio::test]
async fn concurrent_requests_on_one_connection_each_get_their_own_response() {
    let broker = support::start_broker(&[]);
    let client = Arc::new(RemotingClient::default());
    let addr = broker.broker_addr.to_string();
    let mut tasks = Vec::new();
    for code in 9000..9200 {
        let client = Arc::clone(&client);
        let addr = addr.clone();
        tasks.push(tokio::spawn(async move {
            let response = client
                .invoke(&addr, request(code), Duration::from_secs(10))
                .await
                .unwrap();
            (code, response)
        }));
    }
    for task in tasks {
        let (code, response) = task.await.unwrap();
        let remark = response.remark.unwrap_or_default();
        assert!(remark.contains(&code.to_string()), "{code}: {remark:?}");
    }
    assert_eq!(client.connected_addrs().await, vec![addr]);
}

#[tokio::test]
async fn requests_are_json_framed_like_the_java_client() {
    let (listener, addr) = peer().await;
    let client = Arc::new(RemotingClient::default());
    let call = tokio::spawn({
        let client = Arc::clone(&client);
        async move {
            client
                .invoke(&addr, request(34), Duration::from_secs(5))
                .await
        }
    });
    let (mut stream, _) = listener.accept().await.unwrap();
    let mut raw = vec![0u8; 8];
    stream.read_exact(&mut raw).await.unwrap();
    let header_field = u32::from_be_bytes(raw[4..8].try_into().unwrap());
    assert_eq!(header_field >> 24, 0, "JSON serialize type");
    let mut header = vec![0u8; (header_field & 0xFF_FFFF) as usize];
    stream.read_exact(&mut header).await.unwrap();
    let text = String::from_utf8(header).unwrap();
    for needle in [
        "\"serializeTypeCurrentRPC\":\"JSON\"",
        "\"language\":\"JAVA\"",
        "\"version\":479",
        "\"code\":34",
    ] {
        assert!(text.contains(needle), "{needle} missing from {text}");
    }
    drop(stream);
    assert!(call.await.unwrap().is_err());
}

#[tokio::test]
async fn a_response_with_a_binary_header_is_accepted() {
    let (listener, addr) = peer().await;
    let client = Arc::new(RemotingClient::default());
    let call = tokio::spawn({
        let client = Arc::clone(&client);
        async move {
            client
                .invoke(&addr, request(30), Duration::from_secs(5))
                .await
        }
    });
    let (mut stream, _) = listener.accept().await.unwrap();
    let mut buf = BytesMut::new();
    let req = read_command(&mut stream, &mut buf).await.unwrap();
    let mut ext = ExtFields::new();
    ext.insert("offset".into(), "77".into());
    let resp = RemotingCommand::response_to(&req, 0).with_ext_fields(ext);
    write_command(&mut stream, &resp, SerializeType::RocketMq).await;
    let got = call.await.unwrap().unwrap();
    assert_eq!(got.ext("offset"), Some("77"));
}

#[tokio::test]
async fn a_peer_closing_the_connection_fails_every_pending_request_at_once() {
    let (listener, addr) = peer().await;
    let client = Arc::new(RemotingClient::default());
    let started = Instant::now();
    let mut calls = Vec::new();
    for _ in 0..3 {
        let client = Arc::clone(&client);
        let addr = addr.clone();
        calls.push(tokio::spawn(async move {
            client
                .invoke(&addr, request(11), Duration::from_secs(30))
                .await
        }));
    }
    let (mut stream, _) = listener.accept().await.unwrap();
    let mut buf = BytesMut::new();
    for _ in 0..3 {
        read_command(&mut stream, &mut buf).await.unwrap();
    }
    drop(stream);
    for call in calls {
        let err = call.await.unwrap().unwrap_err();
        assert!(
            matches!(err, ClientError::ConnectionClosed { .. }),
            "{err:?}"
        );
    }
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn a_request_without_an_answer_times_out_and_the_connection_stays_usable() {
    let (listener, addr) = peer().await;
    let client = Arc::new(RemotingClient::default());
    let server = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut buf = BytesMut::new();
        let _ignored = read_command(&mut stream, &mut buf).await.unwrap();
        let second = read_command(&mut stream, &mut buf).await.unwrap();
        write_command(
            &mut stream,
            &RemotingCommand::response_to(&second, 0),
            SerializeType::Json,
        )
        .await;
        stream
    });
    let err = client
        .invoke(&addr, request(11), Duration::from_millis(200))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ClientError::Timeout { code: 11, .. }),
        "{err:?}"
    );
    let ok = client
        .invoke(&addr, request(12), Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(ok.code, 0);
    drop(server.await.unwrap());
}

#[tokio::test]
async fn broker_initiated_requests_reach_the_handler_and_only_two_way_ones_are_answered() {
    let (listener, addr) = peer().await;
    let client = Arc::new(RemotingClient::default());
    let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel();
    client.set_inbound_handler(Arc::new(move |_addr: &str, cmd: RemotingCommand| {
        let _ = seen_tx.send(cmd.code);
        None
    }));
    let first = tokio::spawn({
        let client = Arc::clone(&client);
        let addr = addr.clone();
        async move {
            client
                .invoke(&addr, request(34), Duration::from_secs(5))
                .await
        }
    });
    let (mut stream, _) = listener.accept().await.unwrap();
    let mut buf = BytesMut::new();
    let hb = read_command(&mut stream, &mut buf).await.unwrap();
    let mut notify_ext = ExtFields::new();
    notify_ext.insert("consumerGroup".into(), "g".into());
    let notify = RemotingCommand::request(request_code::NOTIFY_CONSUMER_IDS_CHANGED, notify_ext)
        .oneway()
        .with_opaque(500);
    write_command(&mut stream, &notify, SerializeType::Json).await;
    let unknown = RemotingCommand::request(999, ExtFields::new()).with_opaque(501);
    write_command(&mut stream, &unknown, SerializeType::Json).await;
    write_command(
        &mut stream,
        &RemotingCommand::response_to(&hb, 0),
        SerializeType::Json,
    )
    .await;
    first.await.unwrap().unwrap();
    assert_eq!(
        seen_rx.recv().await,
        Some(request_code::NOTIFY_CONSUMER_IDS_CHANGED)
    );
    assert_eq!(seen_rx.recv().await, Some(999));
    // Only the two-way request is answered, with its opaque.
    let answer = read_command(&mut stream, &mut buf).await.unwrap();
    assert!(answer.is_response());
    assert_eq!(answer.opaque, 501);
    assert_eq!(answer.code, response_code::REQUEST_CODE_NOT_SUPPORTED);
}

#[tokio::test]
async fn connecting_to_a_closed_port_is_a_connect_error() {
    let (listener, addr) = peer().await;
    drop(listener);
    let client = Arc::new(RemotingClient::default());
    let err = client
        .invoke(&addr, request(34), Duration::from_secs(2))
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Connect { .. }), "{err:?}");
}

#[tokio::test]
async fn shutdown_closes_the_sockets() {
    let (listener, addr) = peer().await;
    let client = Arc::new(RemotingClient::default());
    let call = tokio::spawn({
        let client = Arc::clone(&client);
        async move {
            client
                .invoke(&addr, request(34), Duration::from_secs(5))
                .await
        }
    });
    let (mut stream, _) = listener.accept().await.unwrap();
    let mut buf = BytesMut::new();
    let req = read_command(&mut stream, &mut buf).await.unwrap();
    write_command(
        &mut stream,
        &RemotingCommand::response_to(&req, 0),
        SerializeType::Json,
    )
    .await;
    call.await.unwrap().unwrap();
    client.shutdown().await;
    let mut byte = [0u8; 1];
    let eof = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut byte))
        .await
        .expect("the client kept its socket open after shutdown");
    assert_eq!(eof.unwrap(), 0);
}

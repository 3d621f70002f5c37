//! Bad input never takes the broker down: each case below either gets an answer or gets
//! its own connection closed, and a fresh connection is served afterwards (issue 4).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::io::Write;
use std::time::Duration;

use ringmq_protocol::codes::response_code;
use ringmq_protocol::header::SerializeType;
use support::{request, Broker};

/// A request code no RocketMQ broker serves.
const UNKNOWN_CODE: i32 = 9999;

fn assert_still_serving(broker: &Broker) {
    let mut client = broker.connect();
    let response = client.call(request(UNKNOWN_CODE, &[]));
    assert_eq!(response.code, response_code::REQUEST_CODE_NOT_SUPPORTED);
}

fn write_raw_and_expect_close(broker: &Broker, bytes: &[u8]) {
    let mut client = broker.connect();
    client.stream.write_all(bytes).unwrap();
    assert!(
        client.is_closed_by_server(Duration::from_secs(5)),
        "connection was not closed after {} bad bytes",
        bytes.len()
    );
}

#[test]
fn unknown_code_is_answered_not_supported_with_the_same_opaque() {
    let broker = Broker::start(&[]);
    let mut client = broker.connect();
    for serialize_type in [SerializeType::Json, SerializeType::RocketMq] {
        let response = client.call_with(request(UNKNOWN_CODE, &[("k", "v")]), serialize_type);
        assert_eq!(response.code, response_code::REQUEST_CODE_NOT_SUPPORTED);
        assert!(response.is_response());
        assert_eq!(
            response.remark.as_deref(),
            Some(" request type 9999 not supported")
        );
    }
}

#[test]
fn oneway_requests_are_never_answered() {
    let broker = Broker::start(&[]);
    let mut client = broker.connect();
    let oneway = client.send(request(UNKNOWN_CODE, &[]).oneway(), SerializeType::Json);
    let normal = client.send(request(UNKNOWN_CODE, &[]), SerializeType::Json);
    let response = client.receive().unwrap();
    assert_eq!(
        response.opaque, normal,
        "only the two-way request is answered"
    );
    assert_ne!(response.opaque, oneway);
}

#[test]
fn random_bytes_close_only_that_connection() {
    let broker = Broker::start(&[]);
    // Deterministic pseudo-random bytes whose first word is a negative length.
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let bytes: Vec<u8> = (0..4096)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect();
    let mut garbage = vec![0xFF, 0xFF, 0xFF, 0xF0];
    garbage.extend_from_slice(&bytes);
    write_raw_and_expect_close(&broker, &garbage);
    assert_still_serving(&broker);
}

#[test]
fn a_frame_claiming_2_gib_is_refused_without_allocating() {
    let broker = Broker::start(&[]);
    write_raw_and_expect_close(&broker, &[0x7F, 0xFF, 0xFF, 0xFF, 0, 0, 0, 10]);
    assert_still_serving(&broker);
}

#[test]
fn a_header_longer_than_its_frame_closes_the_connection() {
    let broker = Broker::start(&[]);
    // length 8: header field says 100 header bytes.
    write_raw_and_expect_close(&broker, &[0, 0, 0, 8, 0, 0, 0, 100, 1, 2, 3, 4]);
    assert_still_serving(&broker);
}

#[test]
fn an_invalid_json_header_closes_the_connection() {
    let broker = Broker::start(&[]);
    let header = b"{\"code\":10,";
    let mut frame = Vec::new();
    frame.extend_from_slice(&((4 + header.len()) as i32).to_be_bytes());
    frame.extend_from_slice(&(header.len() as i32).to_be_bytes());
    frame.extend_from_slice(header);
    write_raw_and_expect_close(&broker, &frame);
    assert_still_serving(&broker);
}

#[test]
fn a_json_header_field_with_an_unusable_value_is_named_in_the_log() {
    let log_dir = tempfile::tempdir().unwrap();
    let log_file = log_dir.path().join("broker.log");
    let broker = Broker::start_logging_to(&log_file, &[]);
    let header = br#"{"code":10,"opaque":"not a number","extFields":{}}"#;
    let mut frame = Vec::new();
    frame.extend_from_slice(&((4 + header.len()) as i32).to_be_bytes());
    frame.extend_from_slice(&(header.len() as i32).to_be_bytes());
    frame.extend_from_slice(header);
    write_raw_and_expect_close(&broker, &frame);
    assert_still_serving(&broker);
    // The close is logged before the next connection is served; allow the write to land.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let log = std::fs::read_to_string(&log_file).unwrap_or_default();
        if log.contains("field `opaque` has an unusable value: expected an int or a numeric string")
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the broker log does not name the field: {log}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn two_thousand_connections_opened_and_closed_leave_the_broker_serving() {
    let broker = Broker::start(&[]);
    for batch in 0..20 {
        let clients: Vec<_> = (0..100)
            .map(|_| std::net::TcpStream::connect(broker.broker_addr).unwrap())
            .collect();
        if batch % 2 == 0 {
            // Half of the batches send a partial frame before closing.
            for mut client in &clients {
                let _ = client.write_all(&[0, 0, 0, 50, 0, 0]);
            }
        }
        drop(clients);
    }
    assert_still_serving(&broker);
}

#[test]
fn sigterm_stops_the_broker_with_exit_code_zero() {
    let broker = Broker::start(&[]);
    assert_still_serving(&broker);
    let (status, _store) = broker.terminate();
    assert!(status.success(), "{status:?}");
}

//! The CommitLog record codec against protocol.md §3.1: golden records written out by hand
//! from the layout table, and one test per decoding failure.
// Helpers outside #[test] fns unwrap fixed, known-good inputs.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;

use bytes::Bytes;
use ringmq_protocol::message::record::{
    body_crc, decode_record, encode_record, encoded_len, iter_records, patch_offsets,
    peek_record_kind, view_record, RecordError, RecordKind, StoredMessage, BLANK_MAGIC, MAGIC_V1,
    MAGIC_V2, MIN_RECORD_SIZE,
};

/// §3.1 with IPv4 hosts and a v1 magic, field by field. TOTALSIZE = 91 + 5 + 9 + 10 = 115.
#[rustfmt::skip]
const GOLDEN_V1_IPV4: [u8; 115] = [
    0x00, 0x00, 0x00, 0x73,                         // 1 TOTALSIZE 115
    0xDA, 0xA3, 0x20, 0xA7,                         // 2 MAGICCODE v1
    0x36, 0x10, 0xA6, 0x86,                         // 3 BODYCRC crc32("hello") & 0x7FFFFFFF
    0x00, 0x00, 0x00, 0x03,                         // 4 QUEUEID 3
    0x00, 0x00, 0x00, 0x07,                         // 5 FLAG 7
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2A, // 6 QUEUEOFFSET 42
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1F, 0x40, // 7 PHYSICALOFFSET 8000
    0x00, 0x00, 0x00, 0x00,                         // 8 SYSFLAG 0
    0x00, 0x00, 0x01, 0x8B, 0xCF, 0xE5, 0x68, 0x00, // 9 BORNTIMESTAMP 1700000000000
    0xC0, 0xA8, 0x01, 0x0A, 0x00, 0x00, 0xD4, 0x31, // 10 BORNHOST 192.168.1.10:54321
    0x00, 0x00, 0x01, 0x8B, 0xCF, 0xE5, 0x68, 0x7B, // 11 STORETIMESTAMP 1700000000123
    0x0A, 0x00, 0x00, 0x01, 0x00, 0x00, 0x2A, 0x9F, // 12 STOREHOST 10.0.0.1:10911
    0x00, 0x00, 0x00, 0x01,                         // 13 RECONSUMETIMES 1
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 14 PREPARED TRANSACTION OFFSET 0
    0x00, 0x00, 0x00, 0x05, b'h', b'e', b'l', b'l', b'o', // 15 BODY
    0x09, b'T', b'o', b'p', b'i', b'c', b'T', b'e', b's', b't', // 16 TOPIC (1-byte length)
    0x00, 0x0A, b'T', b'A', b'G', b'S', 0x01, b'T', b'a', b'g', b'A', 0x02, // 17 PROPERTIES
];

/// The same message with an IPv6 store host [2001:db8::1]:10911: SYSFLAG bit 5, STOREHOST is
/// 16 + 4 bytes, TOTALSIZE = 115 + 12 = 127.
#[rustfmt::skip]
const GOLDEN_V1_IPV6_STORE: [u8; 127] = [
    0x00, 0x00, 0x00, 0x7F,                         // 1 TOTALSIZE 127
    0xDA, 0xA3, 0x20, 0xA7,                         // 2 MAGICCODE v1
    0x36, 0x10, 0xA6, 0x86,                         // 3 BODYCRC
    0x00, 0x00, 0x00, 0x03,                         // 4 QUEUEID 3
    0x00, 0x00, 0x00, 0x07,                         // 5 FLAG 7
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2A, // 6 QUEUEOFFSET 42
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1F, 0x40, // 7 PHYSICALOFFSET 8000
    0x00, 0x00, 0x00, 0x20,                         // 8 SYSFLAG STOREHOSTADDRESS_V6_FLAG
    0x00, 0x00, 0x01, 0x8B, 0xCF, 0xE5, 0x68, 0x00, // 9 BORNTIMESTAMP
    0xC0, 0xA8, 0x01, 0x0A, 0x00, 0x00, 0xD4, 0x31, // 10 BORNHOST 192.168.1.10:54321
    0x00, 0x00, 0x01, 0x8B, 0xCF, 0xE5, 0x68, 0x7B, // 11 STORETIMESTAMP
    0x20, 0x01, 0x0D, 0xB8, 0x00, 0x00, 0x00, 0x00, // 12 STOREHOST 2001:db8::1 ...
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
    0x00, 0x00, 0x2A, 0x9F,                         //    ... port 10911
    0x00, 0x00, 0x00, 0x01,                         // 13 RECONSUMETIMES 1
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 14 PREPARED TRANSACTION OFFSET
    0x00, 0x00, 0x00, 0x05, b'h', b'e', b'l', b'l', b'o', // 15 BODY
    0x09, b'T', b'o', b'p', b'i', b'c', b'T', b'e', b's', b't', // 16 TOPIC
    0x00, 0x0A, b'T', b'A', b'G', b'S', 0x01, b'T', b'a', b'g', b'A', 0x02, // 17 PROPERTIES
];

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn golden_message(store_host: &str, sys_flag: i32) -> StoredMessage {
    StoredMessage {
        queue_id: 3,
        flag: 7,
        queue_offset: 42,
        physical_offset: 8000,
        sys_flag,
        born_timestamp: 1_700_000_000_000,
        born_host: addr("192.168.1.10:54321"),
        store_timestamp: 1_700_000_000_123,
        store_host: addr(store_host),
        reconsume_times: 1,
        prepared_transaction_offset: 0,
        body: Bytes::from_static(b"hello"),
        topic: "TopicTest".to_owned(),
        properties: "TAGS\u{1}TagA\u{2}".to_owned(),
        body_crc: 0x3610_A686,
    }
}

#[test]
fn golden_body_crc_is_crc32_of_hello_masked() {
    assert_eq!(crc32fast::hash(b"hello") & 0x7FFF_FFFF, 0x3610_A686);
    assert_eq!(body_crc(b"hello"), 0x3610_A686);
}

#[test]
fn golden_v1_ipv4_record_decodes_to_every_field() {
    let (msg, used) = decode_record(&GOLDEN_V1_IPV4).unwrap();
    assert_eq!(used, 115);
    assert_eq!(msg, golden_message("10.0.0.1:10911", 0));
}

#[test]
fn golden_v1_ipv4_record_view_exposes_every_field() {
    let v = view_record(&GOLDEN_V1_IPV4).unwrap();
    assert_eq!(v.total_size, 115);
    assert_eq!(v.magic, MAGIC_V1);
    assert_eq!(v.body_crc, 0x3610_A686);
    assert_eq!(v.queue_id, 3);
    assert_eq!(v.flag, 7);
    assert_eq!(v.queue_offset, 42);
    assert_eq!(v.physical_offset, 8000);
    assert_eq!(v.sys_flag, 0);
    assert_eq!(v.born_timestamp, 1_700_000_000_000);
    assert_eq!(v.born_host, addr("192.168.1.10:54321"));
    assert_eq!(v.store_timestamp, 1_700_000_000_123);
    assert_eq!(v.store_host, addr("10.0.0.1:10911"));
    assert_eq!(v.reconsume_times, 1);
    assert_eq!(v.prepared_transaction_offset, 0);
    assert_eq!(v.body, b"hello");
    assert_eq!(v.topic, "TopicTest");
    assert_eq!(v.properties, b"TAGS\x01TagA\x02");
    assert_eq!(v.record, &GOLDEN_V1_IPV4[..]);
    assert!(v.body_crc_matches());
    assert_eq!(v.tags(), Some("TagA"));
}

#[test]
fn golden_v1_ipv4_record_is_reproduced_by_the_encoder() {
    let msg = golden_message("10.0.0.1:10911", 0);
    assert_eq!(encoded_len(&msg).unwrap(), 115);
    let mut out = Vec::new();
    assert_eq!(encode_record(&msg, &mut out).unwrap(), 115);
    assert_eq!(out, GOLDEN_V1_IPV4);
}

#[test]
fn golden_ipv6_store_host_record_decodes_to_every_field() {
    let (msg, used) = decode_record(&GOLDEN_V1_IPV6_STORE).unwrap();
    assert_eq!(used, 127);
    assert_eq!(msg, golden_message("[2001:db8::1]:10911", 0x20));
}

#[test]
fn golden_ipv6_store_host_record_is_reproduced_by_the_encoder() {
    // The caller's sysFlag lacks bit 5: the encoder derives it from the address family.
    let msg = golden_message("[2001:db8::1]:10911", 0);
    let mut out = Vec::new();
    assert_eq!(encode_record(&msg, &mut out).unwrap(), 127);
    assert_eq!(out, GOLDEN_V1_IPV6_STORE);
}

#[test]
fn ipv6_born_host_moves_store_timestamp_to_68() {
    let mut msg = golden_message("10.0.0.1:10911", 0);
    msg.born_host = addr("[::1]:1234");
    let mut out = Vec::new();
    encode_record(&msg, &mut out).unwrap();
    assert_eq!(out[36..40], 0x10_i32.to_be_bytes());
    assert_eq!(out[68..76], 1_700_000_000_123_i64.to_be_bytes());
}

/// A v2 record laid out by hand: a 200-byte topic with a 2-byte length, IPv4 hosts, empty body
/// and properties. TOTALSIZE = 91 + 1 + 200 = 292.
#[test]
fn golden_v2_long_topic_record_decodes_and_is_reproduced() {
    let topic = "%RETRY%".to_owned() + &"g".repeat(193);
    let mut golden = Vec::new();
    golden.extend_from_slice(&[0x00, 0x00, 0x01, 0x24]); // TOTALSIZE 292
    golden.extend_from_slice(&[0xDA, 0xA3, 0x20, 0xAB]); // MAGICCODE v2
    golden.extend_from_slice(&[0x00, 0x00, 0x00, 0x00]); // BODYCRC of the empty body
    golden.extend_from_slice(&[0x00, 0x00, 0x00, 0x00]); // QUEUEID 0
    golden.extend_from_slice(&[0x00, 0x00, 0x00, 0x00]); // FLAG 0
    golden.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0x05]); // QUEUEOFFSET 5
    golden.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0x01, 0x00]); // PHYSICALOFFSET 256
    golden.extend_from_slice(&[0x00, 0x00, 0x00, 0x00]); // SYSFLAG
    golden.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0x01]); // BORNTIMESTAMP 1
    golden.extend_from_slice(&[127, 0, 0, 1, 0, 0, 0x30, 0x39]); // BORNHOST 127.0.0.1:12345
    golden.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0x02]); // STORETIMESTAMP 2
    golden.extend_from_slice(&[127, 0, 0, 1, 0, 0, 0x2A, 0x9F]); // STOREHOST 127.0.0.1:10911
    golden.extend_from_slice(&[0x00, 0x00, 0x00, 0x00]); // RECONSUMETIMES
    golden.extend_from_slice(&[0; 8]); // PREPARED TRANSACTION OFFSET
    golden.extend_from_slice(&[0x00, 0x00, 0x00, 0x00]); // BODY length 0
    golden.extend_from_slice(&[0x00, 0xC8]); // TOPIC length 200, two bytes
    golden.extend_from_slice(topic.as_bytes());
    golden.extend_from_slice(&[0x00, 0x00]); // PROPERTIES length 0
    assert_eq!(golden.len(), 292);

    let (msg, used) = decode_record(&golden).unwrap();
    assert_eq!(used, 292);
    assert_eq!(msg.topic, topic);
    assert_eq!(msg.queue_offset, 5);
    assert_eq!(msg.physical_offset, 256);
    assert_eq!(msg.born_host, addr("127.0.0.1:12345"));
    assert_eq!(msg.store_host, addr("127.0.0.1:10911"));
    assert!(msg.body.is_empty());
    assert!(msg.properties.is_empty());
    assert_eq!(view_record(&golden).unwrap().magic, MAGIC_V2);

    let mut out = Vec::new();
    encode_record(&msg, &mut out).unwrap();
    assert_eq!(out, golden);
}

#[test]
fn topic_of_127_bytes_stays_v1_and_128_bytes_switches_to_v2() {
    let mut msg = golden_message("10.0.0.1:10911", 0);
    msg.topic = "t".repeat(127);
    let mut out = Vec::new();
    encode_record(&msg, &mut out).unwrap();
    assert_eq!(view_record(&out).unwrap().magic, MAGIC_V1);
    msg.topic = "t".repeat(128);
    out.clear();
    encode_record(&msg, &mut out).unwrap();
    assert_eq!(view_record(&out).unwrap().magic, MAGIC_V2);
}

#[test]
fn encoder_appends_after_existing_bytes() {
    let msg = golden_message("10.0.0.1:10911", 0);
    let mut out = vec![0xEE; 3];
    encode_record(&msg, &mut out).unwrap();
    assert_eq!(out[..3], [0xEE; 3]);
    assert_eq!(out[3..], GOLDEN_V1_IPV4);
}

#[test]
fn encoder_recomputes_body_crc_and_ignores_the_stored_one() {
    let mut msg = golden_message("10.0.0.1:10911", 0);
    msg.body_crc = 12345;
    let mut out = Vec::new();
    encode_record(&msg, &mut out).unwrap();
    assert_eq!(out, GOLDEN_V1_IPV4);
}

#[test]
fn encoder_clears_ipv6_bits_that_the_hosts_do_not_justify() {
    let msg = golden_message("10.0.0.1:10911", 0x30 | 0x1);
    let mut out = Vec::new();
    encode_record(&msg, &mut out).unwrap();
    assert_eq!(view_record(&out).unwrap().sys_flag, 0x1);
}

#[test]
fn encoder_refuses_properties_longer_than_32767_bytes() {
    let mut msg = golden_message("10.0.0.1:10911", 0);
    msg.properties = "a".repeat(32_768);
    let mut out = Vec::new();
    assert_eq!(
        encode_record(&msg, &mut out),
        Err(RecordError::PropertiesTooLong { len: 32_768 })
    );
    assert!(out.is_empty(), "nothing is appended on error");
    msg.properties = "a".repeat(32_767);
    assert!(encode_record(&msg, &mut out).is_ok());
}

#[test]
fn encoder_refuses_topic_longer_than_32767_bytes() {
    let mut msg = golden_message("10.0.0.1:10911", 0);
    msg.topic = "t".repeat(32_768);
    assert_eq!(
        encoded_len(&msg),
        Err(RecordError::TopicTooLong { len: 32_768 })
    );
}

#[test]
fn blank_record_is_reported_as_blank_with_its_remaining_size() {
    let mut blank = Vec::new();
    blank.extend_from_slice(&4096_i32.to_be_bytes());
    blank.extend_from_slice(&BLANK_MAGIC.to_be_bytes());
    assert_eq!(blank, [0x00, 0x00, 0x10, 0x00, 0xCB, 0xD4, 0x31, 0x94]);
    assert_eq!(
        view_record(&blank).unwrap_err(),
        RecordError::Blank { remaining: 4096 }
    );
    assert_eq!(
        decode_record(&blank).unwrap_err(),
        RecordError::Blank { remaining: 4096 }
    );
    assert_eq!(
        peek_record_kind(&blank).unwrap(),
        RecordKind::Blank { remaining: 4096 }
    );
}

#[test]
fn peek_reports_a_message_with_its_size_and_magic() {
    assert_eq!(
        peek_record_kind(&GOLDEN_V1_IPV4).unwrap(),
        RecordKind::Message {
            total_size: 115,
            magic: MAGIC_V1
        }
    );
}

#[test]
fn zeroed_preallocated_space_is_a_bad_magic_not_a_record() {
    assert_eq!(
        view_record(&[0u8; 128]).unwrap_err(),
        RecordError::BadMagic { magic: 0 }
    );
}

#[test]
fn fewer_than_eight_bytes_is_truncated() {
    assert_eq!(
        view_record(&GOLDEN_V1_IPV4[..7]).unwrap_err(),
        RecordError::Truncated {
            needed: 8,
            available: 7
        }
    );
}

#[test]
fn torn_record_is_truncated() {
    assert_eq!(
        view_record(&GOLDEN_V1_IPV4[..100]).unwrap_err(),
        RecordError::Truncated {
            needed: 115,
            available: 100
        }
    );
}

#[test]
fn total_size_below_the_minimum_is_invalid() {
    let mut rec = GOLDEN_V1_IPV4;
    rec[..4].copy_from_slice(&90_i32.to_be_bytes());
    assert_eq!(
        view_record(&rec).unwrap_err(),
        RecordError::InvalidTotalSize { total_size: 90 }
    );
    rec[..4].copy_from_slice(&(-1_i32).to_be_bytes());
    assert_eq!(
        view_record(&rec).unwrap_err(),
        RecordError::InvalidTotalSize { total_size: -1 }
    );
    assert_eq!(MIN_RECORD_SIZE, 91);
}

#[test]
fn total_size_larger_than_the_fields_is_a_size_mismatch() {
    let mut rec = GOLDEN_V1_IPV4.to_vec();
    rec.push(0);
    rec[..4].copy_from_slice(&116_i32.to_be_bytes());
    assert_eq!(
        view_record(&rec).unwrap_err(),
        RecordError::SizeMismatch {
            declared: 116,
            actual: 115
        }
    );
}

#[test]
fn total_size_smaller_than_the_fields_is_a_field_overrun() {
    let mut rec = GOLDEN_V1_IPV4;
    rec[..4].copy_from_slice(&114_i32.to_be_bytes());
    assert!(matches!(
        view_record(&rec).unwrap_err(),
        RecordError::FieldOverrun {
            field: "properties",
            ..
        }
    ));
}

#[test]
fn negative_body_length_is_an_error() {
    let mut rec = GOLDEN_V1_IPV4;
    rec[84..88].copy_from_slice(&(-5_i32).to_be_bytes());
    assert_eq!(
        view_record(&rec).unwrap_err(),
        RecordError::NegativeLength {
            field: "body",
            len: -5
        }
    );
}

#[test]
fn negative_v1_topic_length_byte_is_an_error() {
    let mut rec = GOLDEN_V1_IPV4;
    rec[93] = 0x89; // the signed byte reads -119
    assert_eq!(
        view_record(&rec).unwrap_err(),
        RecordError::NegativeLength {
            field: "topic",
            len: -119
        }
    );
}

#[test]
fn non_utf8_topic_is_an_error() {
    let mut rec = GOLDEN_V1_IPV4;
    rec[94] = 0xFF;
    assert!(matches!(
        view_record(&rec).unwrap_err(),
        RecordError::TopicUtf8(_)
    ));
}

#[test]
fn non_utf8_properties_are_viewable_but_not_decodable() {
    let mut rec = GOLDEN_V1_IPV4;
    rec[110] = 0xFF; // first byte of the value "TagA"
    let view = view_record(&rec).unwrap();
    assert!(view.properties_str().is_err());
    assert_eq!(view.tags(), None, "a non-UTF-8 tag is no tag");
    assert!(matches!(
        decode_record(&rec).unwrap_err(),
        RecordError::PropertiesUtf8(_)
    ));
}

#[test]
fn port_above_65535_is_an_error() {
    let mut rec = GOLDEN_V1_IPV4;
    rec[52..56].copy_from_slice(&65_536_i32.to_be_bytes());
    assert_eq!(
        view_record(&rec).unwrap_err(),
        RecordError::BadPort {
            field: "born host",
            port: 65_536
        }
    );
}

#[test]
fn unknown_magic_is_an_error() {
    let mut rec = GOLDEN_V1_IPV4;
    rec[4..8].copy_from_slice(&0x1234_5678_i32.to_be_bytes());
    assert_eq!(
        view_record(&rec).unwrap_err(),
        RecordError::BadMagic { magic: 0x1234_5678 }
    );
}

#[test]
fn corrupted_body_fails_the_crc_check_but_still_views() {
    let mut rec = GOLDEN_V1_IPV4;
    rec[88] = b'j';
    let view = view_record(&rec).unwrap();
    assert_eq!(view.body, b"jello");
    assert!(!view.body_crc_matches());
}

#[test]
fn view_of_a_longer_buffer_covers_only_the_record() {
    let mut buf = GOLDEN_V1_IPV4.to_vec();
    buf.extend_from_slice(&[0xAB; 40]);
    let view = view_record(&buf).unwrap();
    assert_eq!(view.record.len(), 115);
}

#[test]
fn iter_records_walks_a_pull_body_and_stops_at_the_first_error() {
    let mut body = GOLDEN_V1_IPV4.to_vec();
    body.extend_from_slice(&GOLDEN_V1_IPV6_STORE);
    body.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0]);
    body.extend_from_slice(&GOLDEN_V1_IPV4);
    let items: Vec<_> = iter_records(&body).collect();
    assert_eq!(items.len(), 3);
    assert_eq!(items[0].as_ref().unwrap().total_size, 115);
    assert_eq!(items[1].as_ref().unwrap().total_size, 127);
    assert_eq!(items[2], Err(RecordError::BadMagic { magic: 0 }));
}

#[test]
fn offset_msg_id_of_a_record_is_store_host_and_physical_offset() {
    let view = view_record(&GOLDEN_V1_IPV4).unwrap();
    assert_eq!(
        view.offset_msg_id().to_string(),
        "0A00000100002A9F0000000000001F40"
    );
    let (msg, _) = decode_record(&GOLDEN_V1_IPV4).unwrap();
    assert_eq!(msg.offset_msg_id(), view.offset_msg_id());
    assert_eq!(msg.tags(), Some("TagA"));
}

#[test]
fn patch_offsets_rewrites_queue_and_physical_offset_only() {
    let mut rec = GOLDEN_V1_IPV4;
    patch_offsets(&mut rec, 43, 9000).unwrap();
    let (msg, _) = decode_record(&rec).unwrap();
    let mut expected = golden_message("10.0.0.1:10911", 0);
    expected.queue_offset = 43;
    expected.physical_offset = 9000;
    assert_eq!(msg, expected);
}

#[test]
fn patch_offsets_on_a_short_buffer_is_an_error() {
    let mut short = [0u8; 30];
    assert!(matches!(
        patch_offsets(&mut short, 1, 2),
        Err(RecordError::Truncated { .. })
    ));
}

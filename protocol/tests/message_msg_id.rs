//! Offset msgIds and UNIQ_KEYs of protocol.md §3.6.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use proptest::prelude::*;
use ringmq_protocol::message::msg_id::{
    decode_offset_msg_id, encode_offset_msg_id, month_start_ms, MsgIdError, OffsetMsgId,
    UniqKeyGenerator,
};

#[test]
fn protocol_example_decodes_to_host_and_offset() {
    let (host, offset) = decode_offset_msg_id("0A00000100002A9F0000000000001F40").unwrap();
    assert_eq!(host, "10.0.0.1:10911".parse::<SocketAddr>().unwrap());
    assert_eq!(offset, 8000);
}

#[test]
fn protocol_example_is_reproduced_by_the_encoder() {
    let host = "10.0.0.1:10911".parse().unwrap();
    assert_eq!(
        encode_offset_msg_id(host, 8000),
        "0A00000100002A9F0000000000001F40"
    );
}

#[test]
fn ipv6_id_is_56_upper_case_hex_characters() {
    let host: SocketAddr = "[2001:db8::ab]:10911".parse().unwrap();
    let id = encode_offset_msg_id(host, 255);
    assert_eq!(
        id,
        "20010DB80000000000000000000000AB00002A9F00000000000000FF"
    );
    assert_eq!(decode_offset_msg_id(&id).unwrap(), (host, 255));
}

#[test]
fn lower_case_hex_is_accepted() {
    assert_eq!(
        decode_offset_msg_id("0a00000100002a9f0000000000001f40")
            .unwrap()
            .1,
        8000
    );
}

#[test]
fn other_lengths_are_refused() {
    assert_eq!(
        decode_offset_msg_id(""),
        Err(MsgIdError::BadLength { len: 0 })
    );
    assert_eq!(
        decode_offset_msg_id("0A00000100002A9F0000000000001F4"),
        Err(MsgIdError::BadLength { len: 31 })
    );
}

#[test]
fn non_hex_character_is_refused_with_its_position() {
    assert_eq!(
        decode_offset_msg_id("0A00000100002A9F0000000000001FG0"),
        Err(MsgIdError::BadHex { position: 30 })
    );
}

#[test]
fn multibyte_characters_are_refused_not_split() {
    // 16 two-byte characters make 32 bytes: a valid length, invalid hex.
    assert!(matches!(
        decode_offset_msg_id(&"é".repeat(16)),
        Err(MsgIdError::BadHex { .. })
    ));
}

#[test]
fn port_outside_u16_is_refused() {
    assert_eq!(
        decode_offset_msg_id("0A000001000100000000000000001F40"),
        Err(MsgIdError::BadPort { port: 65536 })
    );
}

#[test]
fn offset_msg_id_parses_and_displays() {
    let id: OffsetMsgId = "0A00000100002A9F0000000000001F40".parse().unwrap();
    assert_eq!(id.to_string(), "0A00000100002A9F0000000000001F40");
}

#[test]
fn uniq_key_lays_out_ip_pid_hash_time_and_counter() {
    let generator =
        UniqKeyGenerator::with_parts(IpAddr::V4(Ipv4Addr::new(192, 168, 0, 1)), 0x1_2345, -2);
    // 2024-03-05T00:00:01.500Z: the month started 4 days and 1.5 s earlier = 345_601_500 ms
    // = 0x149975DC. The pid keeps its low 16 bits (0x2345); the hash -2 is FFFFFFFE.
    let now_ms = 1_709_596_801_500;
    let mut key = String::new();
    generator.write_next_at(now_ms, &mut key);
    assert_eq!(key, "C0A800012345FFFFFFFE149975DC0000");
    key.clear();
    generator.write_next_at(now_ms, &mut key);
    assert_eq!(&key[28..], "0001", "the counter advances");
}

#[test]
fn uniq_key_with_ipv6_is_56_characters() {
    let generator = UniqKeyGenerator::with_parts(IpAddr::V6(Ipv6Addr::LOCALHOST), 1, 1);
    assert_eq!(generator.next_key().len(), 56);
}

#[test]
fn uniq_keys_from_one_generator_are_distinct() {
    let generator = UniqKeyGenerator::new(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let keys: HashSet<String> = (0..10_000).map(|_| generator.next_key()).collect();
    assert_eq!(keys.len(), 10_000);
    assert!(keys.iter().all(|k| k.len() == 32
        && k.bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())));
}

#[test]
fn month_start_of_known_dates() {
    assert_eq!(month_start_ms(0), 0); // 1970-01-01
    assert_eq!(month_start_ms(1_709_596_801_500), 1_709_251_200_000); // 2024-03-01
    assert_eq!(month_start_ms(1_709_251_199_999), 1_706_745_600_000); // 2024-02-29 23:59:59.999 → 2024-02-01
    assert_eq!(month_start_ms(-1), -2_678_400_000); // 1969-12-31 → 1969-12-01
}

fn socket_addr() -> impl Strategy<Value = SocketAddr> {
    prop_oneof![
        (any::<[u8; 4]>(), any::<u16>())
            .prop_map(|(ip, port)| SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::from(ip), port))),
        (any::<[u8; 16]>(), any::<u16>()).prop_map(|(ip, port)| SocketAddr::V6(SocketAddrV6::new(
            Ipv6Addr::from(ip),
            port,
            0,
            0
        ))),
    ]
}

proptest! {
    #[test]
    fn encode_then_decode_is_identity(host in socket_addr(), offset in any::<i64>()) {
        let id = encode_offset_msg_id(host, offset);
        prop_assert_eq!(id.len(), if host.is_ipv4() { 32 } else { 56 });
        prop_assert!(id.bytes().all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b)));
        prop_assert_eq!(decode_offset_msg_id(&id).unwrap(), (host, offset));
    }

    #[test]
    fn decode_never_panics_on_arbitrary_text(s in ".{0,60}") {
        let _ = decode_offset_msg_id(&s);
    }

    #[test]
    fn decode_never_panics_on_hex_like_text(s in "[0-9a-fA-FxX]{32}|[0-9a-fA-F]{56}") {
        let _ = decode_offset_msg_id(&s);
    }
}

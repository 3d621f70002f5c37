//! Property tests for the record codec: encode→decode is the identity (after the two fields
//! the encoder owns, BODYCRC and the IPv6 sysFlag bits), and no input makes a decoder panic.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use bytes::Bytes;
use proptest::prelude::*;
use ringmq_protocol::message::record::{
    decode_record, encode_record, encoded_len, iter_records, peek_record_kind, view_record,
    StoredMessage, MAGIC_V1, MAGIC_V2,
};

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

fn topic() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9_%|-]{0,127}",   // v1
        "[a-zA-Z0-9_%|-]{128,400}", // v2
        ".{0,40}",                  // any UTF-8
    ]
}

prop_compose! {
    fn stored_message()(
        queue_id in any::<i32>(),
        flag in any::<i32>(),
        queue_offset in any::<i64>(),
        physical_offset in any::<i64>(),
        sys_flag in any::<i32>(),
        born_timestamp in any::<i64>(),
        born_host in socket_addr(),
        store_timestamp in any::<i64>(),
        store_host in socket_addr(),
        reconsume_times in any::<i32>(),
        prepared_transaction_offset in any::<i64>(),
        body in prop::collection::vec(any::<u8>(), 0..600),
        topic in topic(),
        properties in ".{0,120}",
        body_crc in any::<i32>(),
    ) -> StoredMessage {
        StoredMessage {
            queue_id, flag, queue_offset, physical_offset, sys_flag, born_timestamp, born_host,
            store_timestamp, store_host, reconsume_times, prepared_transaction_offset,
            body: Bytes::from(body), topic, properties, body_crc,
        }
    }
}

/// What the decoder must give back: the encoder recomputes BODYCRC and derives sysFlag bits
/// 4 and 5 from the host families (§3.1, §3.3).
fn as_stored(msg: &StoredMessage) -> StoredMessage {
    let mut expected = msg.clone();
    expected.body_crc = (crc32fast::hash(&msg.body) & 0x7FFF_FFFF) as i32;
    expected.sys_flag &= !0x30;
    if msg.born_host.is_ipv6() {
        expected.sys_flag |= 0x10;
    }
    if msg.store_host.is_ipv6() {
        expected.sys_flag |= 0x20;
    }
    expected
}

proptest! {
    #[test]
    fn encode_then_decode_is_identity(msg in stored_message()) {
        let mut out = Vec::new();
        let written = encode_record(&msg, &mut out).unwrap();
        prop_assert_eq!(written, out.len());
        prop_assert_eq!(encoded_len(&msg).unwrap(), out.len());
        let (decoded, used) = decode_record(&out).unwrap();
        prop_assert_eq!(used, out.len());
        prop_assert_eq!(decoded, as_stored(&msg));
    }

    #[test]
    fn view_agrees_with_decode_and_checks_its_crc(msg in stored_message()) {
        let mut out = Vec::new();
        encode_record(&msg, &mut out).unwrap();
        let view = view_record(&out).unwrap();
        prop_assert!(view.body_crc_matches());
        prop_assert_eq!(view.magic, if msg.topic.len() > 127 { MAGIC_V2 } else { MAGIC_V1 });
        prop_assert_eq!(view.record, &out[..]);
        prop_assert_eq!(view.to_owned_message().unwrap(), as_stored(&msg));
    }

    #[test]
    fn decode_then_encode_reproduces_the_bytes(msg in stored_message()) {
        let mut first = Vec::new();
        encode_record(&msg, &mut first).unwrap();
        let (decoded, _) = decode_record(&first).unwrap();
        let mut second = Vec::new();
        encode_record(&decoded, &mut second).unwrap();
        prop_assert_eq!(first, second);
    }

    #[test]
    fn records_laid_end_to_end_iterate_back_in_order(msgs in prop::collection::vec(stored_message(), 0..6)) {
        let mut out = Vec::new();
        for m in &msgs {
            encode_record(m, &mut out).unwrap();
        }
        let decoded: Vec<StoredMessage> =
            iter_records(&out).map(|v| v.unwrap().to_owned_message().unwrap()).collect();
        let expected: Vec<StoredMessage> = msgs.iter().map(as_stored).collect();
        prop_assert_eq!(decoded, expected);
    }

    #[test]
    fn decoders_never_panic_on_arbitrary_bytes(buf in prop::collection::vec(any::<u8>(), 0..400)) {
        let _ = decode_record(&buf);
        let _ = view_record(&buf);
        let _ = peek_record_kind(&buf);
        let _ = iter_records(&buf).count();
    }

    #[test]
    fn decoders_never_panic_on_mutated_records(
        msg in stored_message(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
    ) {
        let mut out = Vec::new();
        encode_record(&msg, &mut out).unwrap();
        for (at, byte) in edits {
            let i = at.index(out.len());
            out[i] = byte;
        }
        let _ = decode_record(&out);
        if let Ok(view) = view_record(&out) {
            // Whatever a mutated record decodes to, it stays inside the buffer.
            prop_assert!(view.record.len() <= out.len());
            let _ = view.tags();
        }
    }

    #[test]
    fn every_strict_prefix_of_a_record_is_an_error(msg in stored_message(), cut in any::<prop::sample::Index>()) {
        let mut out = Vec::new();
        encode_record(&msg, &mut out).unwrap();
        let torn = &out[..cut.index(out.len())];
        prop_assert!(view_record(torn).is_err());
    }
}

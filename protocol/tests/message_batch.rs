//! The SEND_BATCH_MESSAGE body of protocol.md §2.3: a golden body written out by hand, one
//! test per failure, and property tests (round trip, no panics).

use bytes::Bytes;
use proptest::prelude::*;
use ringmq_protocol::message::batch::{
    decode_batch_body, decode_batch_bytes, decode_batch_bytes_with_limit, encode_batch_body,
    encode_batch_entry, iter_batch_body, BatchEntry, BatchError, BATCH_ENTRY_FIXED_LEN,
};

/// Two entries as a client writes them: TOTALSIZE = 4+4+4+4+4+bodyLen+2+propLen,
/// MAGICCODE 0, BODYCRC 0.
#[rustfmt::skip]
const GOLDEN_TWO_ENTRIES: [u8; 57] = [
    // entry 0: flag 1, body "ab", properties "KEYS\u{1}k1\u{2}" (8 bytes); 22 + 2 + 8 = 32
    0x00, 0x00, 0x00, 0x20,             // TOTALSIZE 32
    0x00, 0x00, 0x00, 0x00,             // MAGICCODE
    0x00, 0x00, 0x00, 0x00,             // BODYCRC
    0x00, 0x00, 0x00, 0x01,             // FLAG 1
    0x00, 0x00, 0x00, 0x02, b'a', b'b', // BODY
    0x00, 0x08, b'K', b'E', b'Y', b'S', 0x01, b'k', b'1', 0x02, // PROPERTIES
    // entry 1: flag -1, body "xyz", no properties; 22 + 3 = 25
    0x00, 0x00, 0x00, 0x19,             // TOTALSIZE 25
    0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00,
    0xFF, 0xFF, 0xFF, 0xFF,             // FLAG -1
    0x00, 0x00, 0x00, 0x03, b'x', b'y', b'z',
    0x00, 0x00,
];

fn golden_entries() -> Vec<BatchEntry> {
    vec![
        BatchEntry {
            flag: 1,
            body: Bytes::from_static(b"ab"),
            properties: "KEYS\u{1}k1\u{2}".to_owned(),
        },
        BatchEntry {
            flag: -1,
            body: Bytes::from_static(b"xyz"),
            properties: String::new(),
        },
    ]
}

#[test]
fn golden_batch_decodes_to_its_entries() {
    assert_eq!(
        decode_batch_body(&GOLDEN_TWO_ENTRIES).unwrap(),
        golden_entries()
    );
}

#[test]
fn golden_batch_is_reproduced_by_the_encoder() {
    let mut out = Vec::new();
    assert_eq!(encode_batch_body(&golden_entries(), &mut out).unwrap(), 57);
    assert_eq!(out, GOLDEN_TWO_ENTRIES);
}

#[test]
fn decoding_from_bytes_slices_bodies_without_copying() {
    let buf = Bytes::from_static(&GOLDEN_TWO_ENTRIES);
    let entries = decode_batch_bytes(&buf).unwrap();
    assert_eq!(entries, golden_entries());
    assert_eq!(entries[0].body.as_ptr(), buf[20..].as_ptr());
}

#[test]
fn magic_and_crc_written_by_a_client_are_ignored() {
    let mut body = GOLDEN_TWO_ENTRIES;
    body[4..12].copy_from_slice(&[0xDA, 0xA3, 0x20, 0xA7, 1, 2, 3, 4]);
    assert_eq!(decode_batch_body(&body).unwrap(), golden_entries());
}

#[test]
fn empty_body_is_an_error() {
    assert_eq!(decode_batch_body(&[]), Err(BatchError::Empty));
}

#[test]
fn entry_cut_short_is_truncated_with_its_index() {
    let err = decode_batch_body(&GOLDEN_TWO_ENTRIES[..50]).unwrap_err();
    assert!(
        matches!(
            err,
            BatchError::Truncated {
                index: 1,
                offset: 32,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn total_size_that_disagrees_with_the_fields_is_an_error() {
    let mut body = GOLDEN_TWO_ENTRIES;
    body[3] = 0x21;
    assert_eq!(
        decode_batch_body(&body),
        Err(BatchError::SizeMismatch {
            index: 0,
            declared: 33,
            actual: 32
        })
    );
}

#[test]
fn negative_body_length_is_an_error() {
    let mut body = GOLDEN_TWO_ENTRIES;
    body[16..20].copy_from_slice(&(-2_i32).to_be_bytes());
    assert_eq!(
        decode_batch_body(&body),
        Err(BatchError::NegativeLength {
            index: 0,
            field: "body",
            len: -2
        })
    );
}

#[test]
fn negative_properties_length_is_an_error() {
    let mut body = GOLDEN_TWO_ENTRIES;
    body[22..24].copy_from_slice(&[0x80, 0x00]);
    assert_eq!(
        decode_batch_body(&body),
        Err(BatchError::NegativeLength {
            index: 0,
            field: "properties",
            len: -32768
        })
    );
}

#[test]
fn non_utf8_properties_are_an_error() {
    let mut body = GOLDEN_TWO_ENTRIES;
    body[24] = 0xFF;
    assert!(matches!(
        decode_batch_body(&body),
        Err(BatchError::PropertiesUtf8 { index: 0, .. })
    ));
}

#[test]
fn entry_count_is_bounded() {
    let buf = Bytes::from_static(&GOLDEN_TWO_ENTRIES);
    assert_eq!(
        decode_batch_bytes_with_limit(&buf, 1),
        Err(BatchError::TooManyEntries { max: 1 })
    );
    assert_eq!(decode_batch_bytes_with_limit(&buf, 2).unwrap().len(), 2);
}

#[test]
fn encoder_refuses_properties_longer_than_32767_bytes() {
    let mut out = vec![7];
    let props = "p".repeat(32_768);
    assert_eq!(
        encode_batch_entry(0, b"x", &props, &mut out),
        Err(BatchError::PropertiesTooLong { len: 32_768 })
    );
    assert_eq!(out, [7], "nothing appended on error");
}

#[test]
fn smallest_entry_is_22_bytes() {
    let mut out = Vec::new();
    assert_eq!(
        encode_batch_entry(0, b"", "", &mut out).unwrap(),
        BATCH_ENTRY_FIXED_LEN
    );
    assert_eq!(BATCH_ENTRY_FIXED_LEN, 22);
}

fn batch_entry() -> impl Strategy<Value = BatchEntry> {
    (
        any::<i32>(),
        prop::collection::vec(any::<u8>(), 0..300),
        ".{0,80}",
    )
        .prop_map(|(flag, body, properties)| BatchEntry {
            flag,
            body: Bytes::from(body),
            properties,
        })
}

proptest! {
    #[test]
    fn encode_then_decode_is_identity(entries in prop::collection::vec(batch_entry(), 1..20)) {
        let mut out = Vec::new();
        let len = encode_batch_body(&entries, &mut out).unwrap();
        prop_assert_eq!(len, out.len());
        prop_assert_eq!(&decode_batch_body(&out).unwrap(), &entries);
        prop_assert_eq!(&decode_batch_bytes(&Bytes::from(out)).unwrap(), &entries);
    }

    #[test]
    fn decoder_never_panics_on_arbitrary_bytes(buf in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = decode_batch_body(&buf);
        let _ = iter_batch_body(&buf).count();
    }

    #[test]
    fn decoder_never_panics_on_mutated_batches(
        entries in prop::collection::vec(batch_entry(), 1..6),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
    ) {
        let mut out = Vec::new();
        encode_batch_body(&entries, &mut out).unwrap();
        for (at, byte) in edits {
            let i = at.index(out.len());
            out[i] = byte;
        }
        if let Ok(decoded) = decode_batch_body(&out) {
            let total: usize = decoded.iter().map(|e| BATCH_ENTRY_FIXED_LEN + e.body.len() + e.properties.len()).sum();
            prop_assert_eq!(total, out.len(), "accepted entries account for every byte");
        }
    }
}

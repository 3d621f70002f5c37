//! The ROCKETMQ binary header (protocol.md §1.4): golden bytes, Java's decoding rules,
//! bounds checks, encode refusals, round trips and no-panic on arbitrary bytes.

// Helpers shared by the tests below unwrap like the tests do.
#![allow(clippy::unwrap_used, clippy::panic)]

use bytes::BytesMut;
use proptest::prelude::*;
use ringmq_protocol::command::{ExtFields, LanguageCode, RemotingCommand};
use ringmq_protocol::header::binary::{decode, encode, BinaryHeaderError};

/// protocol.md §1.4's HEART_BEAT example, header part only, written out from the layout:
/// code 0x0022, language 0 (JAVA), version 0x01df (479), opaque 7, flag 0, remark length 0,
/// ext region of 8 bytes holding `a` → `b`.
const HEART_BEAT_HEADER: [u8; 29] = [
    0x00, 0x22, // code 34
    0x00, // language JAVA
    0x01, 0xdf, // version 479
    0x00, 0x00, 0x00, 0x07, // opaque 7
    0x00, 0x00, 0x00, 0x00, // flag 0
    0x00, 0x00, 0x00, 0x00, // remark length 0
    0x00, 0x00, 0x00, 0x08, // ext region length 8
    0x00, 0x01, 0x61, // key length 1, "a"
    0x00, 0x00, 0x00, 0x01, 0x62, // value length 1, "b"
];

fn heart_beat() -> RemotingCommand {
    let mut ext = ExtFields::new();
    ext.insert("a".into(), "b".into());
    RemotingCommand {
        code: 34,
        language: LanguageCode::Java,
        version: 479,
        opaque: 7,
        flag: 0,
        remark: None,
        ext_fields: ext,
        body: bytes::Bytes::new(),
    }
}

fn encoded(command: &RemotingCommand) -> Result<Vec<u8>, BinaryHeaderError> {
    let mut out = BytesMut::new();
    encode(command, &mut out)?;
    Ok(out.to_vec())
}

/// Fixed part of a hand-built header: code 10, language CPP, version 121, opaque 3, flag 0.
fn fixed_part() -> Vec<u8> {
    vec![0x00, 0x0a, 0x01, 0x00, 0x79, 0, 0, 0, 3, 0, 0, 0, 0]
}

/// A hand-built header: the fixed part, no remark, then the given ext region bytes.
fn header_with_ext_region(region: &[u8]) -> Vec<u8> {
    let mut h = fixed_part();
    h.extend_from_slice(&[0, 0, 0, 0]);
    h.extend_from_slice(&(region.len() as i32).to_be_bytes());
    h.extend_from_slice(region);
    h
}

#[test]
fn golden_heart_beat_header_decodes_to_its_fields() {
    assert_eq!(decode(&HEART_BEAT_HEADER).unwrap(), heart_beat());
}

#[test]
fn encoder_reproduces_golden_heart_beat_header() {
    assert_eq!(encoded(&heart_beat()).unwrap(), HEART_BEAT_HEADER);
}

#[test]
fn remark_bytes_decode_as_utf8_text() {
    let mut h = fixed_part();
    h.extend_from_slice(&[0, 0, 0, 5]);
    h.extend_from_slice("héll".as_bytes()); // 5 bytes: é is two
    h.extend_from_slice(&[0, 0, 0, 0]);
    let cmd = decode(&h).unwrap();
    assert_eq!(cmd.remark.as_deref(), Some("héll"));
    assert_eq!(
        (cmd.code, cmd.language, cmd.version, cmd.opaque, cmd.flag),
        (10, LanguageCode::Cpp, 121, 3, 0)
    );
}

#[test]
fn empty_remark_is_written_as_length_zero_and_decodes_as_none() {
    let bytes = encoded(&heart_beat().with_remark("")).unwrap();
    assert_eq!(bytes, HEART_BEAT_HEADER);
    assert_eq!(decode(&bytes).unwrap().remark, None);
}

#[test]
fn duplicate_ext_key_keeps_last_value() {
    let h = header_with_ext_region(&[
        0, 1, b'q', 0, 0, 0, 1, b'1', //
        0, 1, b'q', 0, 0, 0, 1, b'2',
    ]);
    let cmd = decode(&h).unwrap();
    assert_eq!(cmd.ext("q"), Some("2"));
    assert_eq!(cmd.ext_fields.len(), 1);
}

#[test]
fn zero_length_key_or_value_makes_the_entry_absent() {
    let h = header_with_ext_region(&[
        0, 0, 0, 0, 0, 1, b'v', // empty key
        0, 1, b'k', 0, 0, 0, 0, // empty value
        0, 1, b'x', 0, 0, 0, 1, b'y',
    ]);
    let mut expected = ExtFields::new();
    expected.insert("x".into(), "y".into());
    assert_eq!(decode(&h).unwrap().ext_fields, expected);
}

#[test]
fn entries_with_empty_key_or_value_are_left_out_on_encode() {
    let mut cmd = heart_beat();
    cmd.ext_fields.insert(String::new(), "v".into());
    cmd.ext_fields.insert("k".into(), String::new());
    assert_eq!(encoded(&cmd).unwrap(), HEART_BEAT_HEADER);
}

#[test]
fn bytes_after_the_ext_region_are_ignored_like_java() {
    let mut h = HEART_BEAT_HEADER.to_vec();
    h.extend_from_slice(&[0xde, 0xad]);
    assert_eq!(decode(&h).unwrap(), heart_beat());
}

#[test]
fn header_shorter_than_fixed_part_is_truncated_error() {
    let err = decode(&HEART_BEAT_HEADER[..8]).unwrap_err();
    assert!(
        matches!(
            err,
            BinaryHeaderError::Truncated {
                field: "opaque",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn remark_length_past_the_end_is_truncated_error() {
    let mut h = fixed_part();
    h.extend_from_slice(&[0x7f, 0xff, 0xff, 0xff]); // remark claims 2 GiB
    h.extend_from_slice(b"abc");
    let err = decode(&h).unwrap_err();
    assert!(
        matches!(
            err,
            BinaryHeaderError::Truncated {
                field: "remark",
                remaining_bytes: 3,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn negative_remark_length_is_rejected() {
    let mut h = fixed_part();
    h.extend_from_slice(&(-1i32).to_be_bytes());
    let err = decode(&h).unwrap_err();
    assert!(
        matches!(
            err,
            BinaryHeaderError::NegativeLength {
                field: "remark",
                length: -1
            }
        ),
        "{err:?}"
    );
}

#[test]
fn ext_region_longer_than_header_is_truncated_error() {
    let mut h = HEART_BEAT_HEADER.to_vec();
    h[20] = 9; // region claims 9 bytes, 8 remain
    let err = decode(&h).unwrap_err();
    assert!(
        matches!(
            err,
            BinaryHeaderError::Truncated {
                field: "extFields",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn ext_entry_running_past_its_region_is_truncated_error() {
    // The value claims 2 bytes but the region holds only 1 after it.
    let h = header_with_ext_region(&[0, 1, b'a', 0, 0, 0, 2, b'b']);
    let err = decode(&h).unwrap_err();
    assert!(
        matches!(
            err,
            BinaryHeaderError::Truncated {
                field: "extFields value",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn negative_ext_key_length_is_rejected() {
    let h = header_with_ext_region(&[0xff, 0xff, 0, 0, 0, 0]);
    let err = decode(&h).unwrap_err();
    assert!(
        matches!(
            err,
            BinaryHeaderError::NegativeLength {
                field: "extFields key",
                length: -1
            }
        ),
        "{err:?}"
    );
}

#[test]
fn invalid_utf8_key_is_rejected_with_its_cause() {
    let h = header_with_ext_region(&[0, 1, 0xff, 0, 0, 0, 1, b'b']);
    let err = decode(&h).unwrap_err();
    assert!(
        matches!(
            err,
            BinaryHeaderError::InvalidUtf8 {
                field: "extFields key",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(std::error::Error::source(&err).is_some());
}

#[test]
fn unknown_language_byte_is_kept() {
    let mut h = HEART_BEAT_HEADER.to_vec();
    h[2] = 200;
    assert_eq!(decode(&h).unwrap().language, LanguageCode::Unknown(200));
}

#[test]
fn code_outside_i16_is_refused_on_encode_not_truncated() {
    let mut cmd = heart_beat();
    cmd.code = 200_001; // a POP code, which Java's (short) cast would garble
    let err = encoded(&cmd).unwrap_err();
    assert!(
        matches!(err, BinaryHeaderError::CodeOutOfRange { code: 200_001 }),
        "{err:?}"
    );
}

#[test]
fn version_outside_i16_is_refused_on_encode() {
    let mut cmd = heart_beat();
    cmd.version = 40_000;
    let err = encoded(&cmd).unwrap_err();
    assert!(
        matches!(
            err,
            BinaryHeaderError::VersionOutOfRange { version: 40_000 }
        ),
        "{err:?}"
    );
}

#[test]
fn key_longer_than_i16_is_refused_on_encode() {
    let mut cmd = heart_beat();
    cmd.ext_fields.insert("k".repeat(32_768), "v".into());
    let err = encoded(&cmd).unwrap_err();
    assert!(
        matches!(err, BinaryHeaderError::KeyTooLong { key_bytes: 32_768 }),
        "{err:?}"
    );
}

#[test]
fn failed_encode_writes_nothing() {
    let mut cmd = heart_beat();
    cmd.code = -40_000;
    let mut out = BytesMut::from(&b"keep"[..]);
    assert!(encode(&cmd, &mut out).is_err());
    assert_eq!(&out[..], b"keep");
}

/// Commands the binary header can carry exactly: i16 code and version, non-empty remark
/// and ext strings (empty ones decode as absent), any language byte.
fn binary_command() -> impl Strategy<Value = RemotingCommand> {
    (
        any::<i16>(),
        any::<u8>(),
        any::<i16>(),
        any::<i32>(),
        any::<i32>(),
        proptest::option::of(".+"),
        proptest::collection::btree_map(".{1,20}", ".{1,40}", 0..8),
    )
        .prop_map(
            |(code, lang, version, opaque, flag, remark, ext)| RemotingCommand {
                code: i32::from(code),
                language: LanguageCode::from_u8(lang),
                version: i32::from(version),
                opaque,
                flag,
                remark,
                ext_fields: ext,
                body: bytes::Bytes::new(),
            },
        )
}

proptest! {
    #[test]
    fn encode_then_decode_is_identity(cmd in binary_command()) {
        let bytes = encoded(&cmd).unwrap();
        prop_assert_eq!(decode(&bytes).unwrap(), cmd);
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = decode(&bytes);
    }

    #[test]
    fn decoding_arbitrary_ext_regions_never_panics(region in proptest::collection::vec(any::<u8>(), 0..128)) {
        let _ = decode(&header_with_ext_region(&region));
    }
}

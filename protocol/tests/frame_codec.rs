//! The outer frame (protocol.md §1.1): golden frames for both serialize types, incremental
//! decoding from a read buffer, zero-copy bodies, the size limits (checked before anything
//! is allocated), the sendfile-style prefix, round trips and no-panic on arbitrary bytes.

// Helpers shared by the tests below unwrap like the tests do.
#![allow(clippy::unwrap_used, clippy::panic)]

use bytes::{BufMut, Bytes, BytesMut};
use proptest::prelude::*;
use ringmq_protocol::command::{ExtFields, LanguageCode, RemotingCommand, FLAG_RESPONSE};
use ringmq_protocol::frame::{
    decode_frame, encode_frame, encode_frame_prefix, peek_frame_prefix, FrameEncodeError,
    FrameError, FrameLimits, FramePrefix, DEFAULT_MAX_FRAME_BYTES,
};
use ringmq_protocol::header::{BinaryHeaderError, HeaderCodecError, SerializeType};

/// protocol.md §1.4's HEART_BEAT example as a whole frame, copied from the text:
/// `00000021 0100001d | 0022 00 01df 00000007 00000000 00000000 00000008 | 0001 61 00000001 62`.
const HEART_BEAT_FRAME: [u8; 37] = [
    0x00, 0x00, 0x00, 0x21, // length 33 = 4 + 29
    0x01, 0x00, 0x00, 0x1d, // serialize type 1, header 29 bytes
    0x00, 0x22, 0x00, 0x01, 0xdf, 0x00, 0x00, 0x00, 0x07, 0x00, 0x00, 0x00, 0x00, //
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x08, //
    0x00, 0x01, 0x61, 0x00, 0x00, 0x00, 0x01, 0x62,
];

/// A JSON response header, 110 bytes counted by hand:
/// `{"code":0,` 10, `"extFields":{},` 15, `"flag":1,` 9, `"language":"JAVA",` 18,
/// `"opaque":7,` 11, `"serializeTypeCurrentRPC":"JSON",` 33, `"version":479}` 14.
const JSON_RESPONSE_HEADER: &[u8] = br#"{"code":0,"extFields":{},"flag":1,"language":"JAVA","opaque":7,"serializeTypeCurrentRPC":"JSON","version":479}"#;

/// The frame around it with a 5-byte body "hello": length 4 + 110 + 5 = 119 = 0x77,
/// header field 0x0000006e (type 0, 110 bytes).
fn json_response_frame() -> Vec<u8> {
    let mut frame = vec![0x00, 0x00, 0x00, 0x77, 0x00, 0x00, 0x00, 0x6e];
    frame.extend_from_slice(JSON_RESPONSE_HEADER);
    frame.extend_from_slice(b"hello");
    frame
}

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
        body: Bytes::new(),
    }
}

fn json_response() -> RemotingCommand {
    RemotingCommand {
        code: 0,
        language: LanguageCode::Java,
        version: 479,
        opaque: 7,
        flag: FLAG_RESPONSE,
        remark: None,
        ext_fields: ExtFields::new(),
        body: Bytes::from_static(b"hello"),
    }
}

fn decode_all(bytes: &[u8]) -> Result<Option<RemotingCommand>, FrameError> {
    decode_frame(&mut BytesMut::from(bytes), &FrameLimits::default())
}

fn encoded(command: &RemotingCommand, serialize_type: SerializeType) -> Vec<u8> {
    let mut out = BytesMut::new();
    encode_frame(command, serialize_type, &mut out).unwrap();
    out.to_vec()
}

/// A frame prefix claiming `length` and a header field of `header_field`.
fn prefix(length: i32, header_field: u32) -> BytesMut {
    let mut buf = BytesMut::with_capacity(8);
    buf.put_i32(length);
    buf.put_u32(header_field);
    buf
}

#[test]
fn golden_binary_frame_decodes_to_heart_beat() {
    assert_eq!(decode_all(&HEART_BEAT_FRAME).unwrap(), Some(heart_beat()));
}

#[test]
fn encoder_reproduces_golden_binary_frame() {
    assert_eq!(
        encoded(&heart_beat(), SerializeType::RocketMq),
        HEART_BEAT_FRAME
    );
}

#[test]
fn golden_json_frame_decodes_to_response_with_body() {
    assert_eq!(
        decode_all(&json_response_frame()).unwrap(),
        Some(json_response())
    );
}

#[test]
fn encoder_reproduces_golden_json_frame() {
    assert_eq!(
        encoded(&json_response(), SerializeType::Json),
        json_response_frame()
    );
}

#[test]
fn frame_without_body_decodes_with_empty_body() {
    let cmd = decode_all(&HEART_BEAT_FRAME).unwrap().unwrap();
    assert!(cmd.body.is_empty());
}

#[test]
fn incomplete_frame_yields_none_until_its_last_byte_arrives() {
    let frame = json_response_frame();
    let mut buf = BytesMut::new();
    for (i, byte) in frame.iter().enumerate() {
        buf.put_u8(*byte);
        let got = decode_frame(&mut buf, &FrameLimits::default()).unwrap();
        if i + 1 < frame.len() {
            assert_eq!(got, None, "after {} bytes", i + 1);
        } else {
            assert_eq!(got, Some(json_response()));
        }
    }
    assert!(buf.is_empty());
}

#[test]
fn back_to_back_frames_decode_one_at_a_time_leaving_the_rest() {
    let mut buf = BytesMut::new();
    buf.extend_from_slice(&HEART_BEAT_FRAME);
    buf.extend_from_slice(&json_response_frame());
    buf.extend_from_slice(&HEART_BEAT_FRAME[..5]);
    let limits = FrameLimits::default();
    assert_eq!(decode_frame(&mut buf, &limits).unwrap(), Some(heart_beat()));
    assert_eq!(
        decode_frame(&mut buf, &limits).unwrap(),
        Some(json_response())
    );
    assert_eq!(decode_frame(&mut buf, &limits).unwrap(), None);
    assert_eq!(&buf[..], &HEART_BEAT_FRAME[..5]);
}

#[test]
fn decoded_body_points_into_the_read_buffer() {
    let mut buf = BytesMut::from(&json_response_frame()[..]);
    let range = buf.as_ptr_range();
    let cmd = decode_frame(&mut buf, &FrameLimits::default())
        .unwrap()
        .unwrap();
    assert!(range.contains(&cmd.body.as_ptr()), "body was copied");
}

#[test]
fn frame_claiming_two_gib_is_rejected_from_its_length_alone() {
    let mut buf = BytesMut::new();
    buf.put_i32(i32::MAX);
    let capacity = buf.capacity();
    let err = decode_frame(&mut buf, &FrameLimits::default()).unwrap_err();
    assert!(
        matches!(
            err,
            FrameError::FrameTooLarge {
                frame_bytes: 2_147_483_651,
                max_frame_bytes: DEFAULT_MAX_FRAME_BYTES
            }
        ),
        "{err:?}"
    );
    assert_eq!((buf.len(), buf.capacity()), (4, capacity));
}

#[test]
fn incomplete_frame_within_limits_reserves_nothing() {
    let limits = FrameLimits {
        max_frame_bytes: usize::MAX,
        ..FrameLimits::default()
    };
    let mut buf = prefix(i32::MAX, 0x0000_0010);
    let capacity = buf.capacity();
    assert_eq!(decode_frame(&mut buf, &limits).unwrap(), None);
    assert_eq!((buf.len(), buf.capacity()), (8, capacity));
}

#[test]
fn frame_of_exactly_the_limit_is_accepted_and_one_more_byte_is_not() {
    let limits = FrameLimits {
        max_frame_bytes: 37,
        max_header_bytes: 29,
    };
    assert!(
        decode_frame(&mut BytesMut::from(&HEART_BEAT_FRAME[..]), &limits)
            .unwrap()
            .is_some()
    );
    let tight = FrameLimits {
        max_frame_bytes: 36,
        ..limits
    };
    let err = decode_frame(&mut BytesMut::from(&HEART_BEAT_FRAME[..]), &tight).unwrap_err();
    assert!(
        matches!(
            err,
            FrameError::FrameTooLarge {
                frame_bytes: 37,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn negative_length_is_rejected() {
    let err = decode_frame(&mut prefix(-1, 0), &FrameLimits::default()).unwrap_err();
    assert!(
        matches!(err, FrameError::NegativeLength { length: -1 }),
        "{err:?}"
    );
}

#[test]
fn length_too_small_for_the_header_field_is_rejected() {
    let err = decode_frame(&mut prefix(3, 0), &FrameLimits::default()).unwrap_err();
    assert!(
        matches!(err, FrameError::LengthTooSmall { length: 3 }),
        "{err:?}"
    );
}

#[test]
fn header_longer_than_frame_is_rejected_before_the_frame_arrives() {
    let err = decode_frame(&mut prefix(20, 17), &FrameLimits::default()).unwrap_err();
    assert!(
        matches!(
            err,
            FrameError::HeaderLongerThanFrame {
                header_bytes: 17,
                length: 20
            }
        ),
        "{err:?}"
    );
}

#[test]
fn header_over_the_header_limit_is_rejected() {
    let limits = FrameLimits {
        max_header_bytes: 100,
        ..FrameLimits::default()
    };
    let err = decode_frame(&mut prefix(1000, 101), &limits).unwrap_err();
    assert!(
        matches!(
            err,
            FrameError::HeaderTooLarge {
                header_bytes: 101,
                max_header_bytes: 100
            }
        ),
        "{err:?}"
    );
}

#[test]
fn unknown_serialize_type_is_rejected() {
    let err = decode_frame(&mut prefix(10, 0x0200_0006), &FrameLimits::default()).unwrap_err();
    assert!(
        matches!(err, FrameError::UnknownSerializeType { serialize_type: 2 }),
        "{err:?}"
    );
}

#[test]
fn prefix_error_consumes_nothing() {
    let mut buf = prefix(10, 0x0200_0006);
    assert!(decode_frame(&mut buf, &FrameLimits::default()).is_err());
    assert_eq!(buf.len(), 8);
}

#[test]
fn bad_header_consumes_its_frame_and_keeps_the_stream_in_step() {
    let mut buf = BytesMut::new();
    buf.extend_from_slice(&[0, 0, 0, 7, 0, 0, 0, 3]);
    buf.extend_from_slice(b"[1]");
    buf.extend_from_slice(&HEART_BEAT_FRAME);
    let limits = FrameLimits::default();
    let err = decode_frame(&mut buf, &limits).unwrap_err();
    assert!(
        matches!(err, FrameError::Header(HeaderCodecError::Json(_))),
        "{err:?}"
    );
    assert_eq!(decode_frame(&mut buf, &limits).unwrap(), Some(heart_beat()));
}

#[test]
fn peek_reports_sizes_of_a_valid_prefix() {
    let got = peek_frame_prefix(&json_response_frame()[..8], &FrameLimits::default()).unwrap();
    let expected = FramePrefix {
        frame_bytes: 123,
        serialize_type: SerializeType::Json,
        header_bytes: 110,
    };
    assert_eq!(got, Some(expected));
    assert_eq!(expected.body_bytes(), 5);
}

#[test]
fn frame_prefix_plus_separate_body_equals_whole_frame() {
    let whole = json_response();
    let mut out = BytesMut::new();
    encode_frame_prefix(&whole, whole.body.len(), SerializeType::Json, &mut out).unwrap();
    out.extend_from_slice(&whole.body);
    assert_eq!(out.to_vec(), json_response_frame());
}

#[test]
fn frame_prefix_ignores_the_commands_own_body() {
    let mut out = BytesMut::new();
    encode_frame_prefix(&json_response(), 1000, SerializeType::Json, &mut out).unwrap();
    let got = peek_frame_prefix(&out, &FrameLimits::default())
        .unwrap()
        .unwrap();
    assert_eq!((got.header_bytes, got.body_bytes()), (110, 1000));
    assert_eq!(out.len(), 8 + 110);
}

#[test]
fn body_too_large_for_the_length_field_is_refused_and_writes_nothing() {
    let mut out = BytesMut::from(&b"prior"[..]);
    let err = encode_frame_prefix(
        &heart_beat(),
        i32::MAX as usize,
        SerializeType::RocketMq,
        &mut out,
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            FrameEncodeError::FrameTooLarge {
                header_bytes: 29,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(&out[..], b"prior");
}

#[test]
fn header_encode_error_writes_nothing() {
    let mut cmd = heart_beat();
    cmd.code = 200_000;
    let mut out = BytesMut::from(&b"prior"[..]);
    let err = encode_frame(&cmd, SerializeType::RocketMq, &mut out).unwrap_err();
    assert!(
        matches!(
            err,
            FrameEncodeError::Header(HeaderCodecError::Binary(
                BinaryHeaderError::CodeOutOfRange { .. }
            ))
        ),
        "{err:?}"
    );
    assert_eq!(&out[..], b"prior");
}

#[test]
fn header_beyond_24_bits_is_refused() {
    let mut cmd = heart_beat();
    cmd.ext_fields.insert("v".into(), "x".repeat(1 << 24));
    let err = encode_frame(&cmd, SerializeType::Json, &mut BytesMut::new()).unwrap_err();
    assert!(
        matches!(err, FrameEncodeError::HeaderTooLarge { .. }),
        "{err:?}"
    );
}

fn command(binary: bool) -> impl Strategy<Value = RemotingCommand> {
    let code = if binary {
        any::<i16>().prop_map(i32::from).boxed()
    } else {
        any::<i32>().boxed()
    };
    let version = if binary {
        any::<i16>().prop_map(i32::from).boxed()
    } else {
        any::<i32>().boxed()
    };
    // The binary header cannot tell an empty string from an absent one.
    let text = if binary { ".{1,30}" } else { ".{0,30}" };
    (
        code,
        any::<u8>(),
        version,
        any::<i32>(),
        any::<i32>(),
        proptest::option::of(text),
        proptest::collection::btree_map(text, text, 0..6),
        proptest::collection::vec(any::<u8>(), 0..200),
    )
        .prop_map(
            |(code, lang, version, opaque, flag, remark, ext, body)| RemotingCommand {
                code,
                language: LanguageCode::from_u8(lang),
                version,
                opaque,
                flag,
                remark,
                ext_fields: ext,
                body: Bytes::from(body),
            },
        )
}

proptest! {
    #[test]
    fn json_frame_round_trips(cmd in command(false)) {
        let bytes = encoded(&cmd, SerializeType::Json);
        prop_assert_eq!(decode_all(&bytes).unwrap(), Some(cmd));
    }

    #[test]
    fn binary_frame_round_trips(cmd in command(true)) {
        let bytes = encoded(&cmd, SerializeType::RocketMq);
        prop_assert_eq!(decode_all(&bytes).unwrap(), Some(cmd));
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let limits = FrameLimits { max_frame_bytes: 256, max_header_bytes: 128 };
        let mut buf = BytesMut::from(&bytes[..]);
        while let Ok(Some(_)) = decode_frame(&mut buf, &limits) {}
    }

    #[test]
    fn decoding_arbitrary_headers_behind_a_valid_prefix_never_panics(
        binary in any::<bool>(),
        header in proptest::collection::vec(any::<u8>(), 0..120),
        body_len in 0usize..20,
    ) {
        let mut buf = BytesMut::new();
        buf.put_i32((4 + header.len() + body_len) as i32);
        buf.put_u32((u32::from(binary) << 24) | header.len() as u32);
        buf.extend_from_slice(&header);
        buf.put_bytes(0xab, body_len);
        let _ = decode_frame(&mut buf, &FrameLimits::default());
    }
}

//! `decode_frame` on arbitrary bytes, as a connection's read buffer would hold them.
//! Every frame that decodes must survive encode → decode unchanged in its serialize type.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use ringmq_protocol::frame::{decode_frame, encode_frame, peek_frame_prefix, FrameLimits};

fuzz_target!(|data: &[u8]| {
    // Small limits so that the limit checks, not just the happy path, are reached.
    let limits = FrameLimits {
        max_frame_bytes: 4096,
        max_header_bytes: 2048,
    };
    let mut buf = BytesMut::from(data);
    loop {
        let prefix = peek_frame_prefix(&buf, &limits);
        match decode_frame(&mut buf, &limits) {
            Ok(Some(command)) => {
                let serialize_type = prefix.ok().flatten().map(|p| p.serialize_type);
                let Some(serialize_type) = serialize_type else {
                    panic!("a frame decoded without a valid prefix");
                };
                let mut out = BytesMut::new();
                encode_frame(&command, serialize_type, &mut out).unwrap();
                let again = decode_frame(&mut out, &FrameLimits::default()).unwrap();
                assert_eq!(again.as_ref(), Some(&command));
                assert!(out.is_empty());
            }
            Ok(None) => break,
            // A header error consumed its frame: keep going like a connection could.
            Err(ringmq_protocol::frame::FrameError::Header(_)) => continue,
            Err(_) => break,
        }
    }
});

//! The ROCKETMQ binary header decoder on arbitrary bytes; what decodes must re-encode
//! and decode to the same command.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use ringmq_protocol::header::binary::{decode, encode};

fuzz_target!(|data: &[u8]| {
    if let Ok(command) = decode(data) {
        let mut out = BytesMut::new();
        encode(&command, &mut out).unwrap();
        assert_eq!(decode(&out).unwrap(), command);
    }
});

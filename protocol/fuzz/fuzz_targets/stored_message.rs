//! The stored-message (CommitLog record) decoders on arbitrary bytes: owned decode,
//! zero-copy view and the record iterator a pull body is read with. A record that decodes
//! must re-encode and decode to the same message, BODYCRC aside.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringmq_protocol::message::{
    body_crc, decode_record, encode_record, iter_records, view_record, StoredMessage,
};

fuzz_target!(|data: &[u8]| {
    if let Ok((message, _len)) = decode_record(data) {
        let mut out = Vec::new();
        encode_record(&message, &mut out).unwrap();
        // The encoder recomputes BODYCRC (documented), so a record stored with a wrong CRC
        // comes back with the right one; everything else must survive as decoded.
        let expected = StoredMessage {
            body_crc: body_crc(&message.body),
            ..message
        };
        assert_eq!(decode_record(&out).unwrap().0, expected);
    }
    if let Ok(view) = view_record(data) {
        let _ = view.to_owned_message();
    }
    for record in iter_records(data).take(64) {
        if record.is_err() {
            break;
        }
    }
});

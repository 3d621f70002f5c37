//! The SEND_BATCH_MESSAGE body decoders on arbitrary bytes: the owned decode and the
//! borrowing iterator must agree (except that decode refuses an empty batch), and what decodes must re-encode and decode to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringmq_protocol::message::batch::iter_batch_body;
use ringmq_protocol::message::{decode_batch_body, encode_batch_body};

fuzz_target!(|data: &[u8]| {
    let decoded = decode_batch_body(data);
    let iterated: Result<Vec<_>, _> = iter_batch_body(data).collect();
    match (&decoded, &iterated) {
        (Ok(entries), Ok(refs)) => assert_eq!(entries.len(), refs.len()),
        (Ok(_), Err(e)) => panic!("decode accepted what the iterator rejects: {e}"),
        // An empty body iterates to nothing but is refused by decode (BatchError::Empty).
        (Err(_), Ok(refs)) => assert!(refs.is_empty()),
        (Err(_), Err(_)) => {}
    }
    if let Ok(entries) = decoded {
        let mut out = Vec::new();
        encode_batch_body(&entries, &mut out).unwrap();
        assert_eq!(decode_batch_body(&out).unwrap(), entries);
    }
});

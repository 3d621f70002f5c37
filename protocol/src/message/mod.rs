//! The stored-message codec (protocol.md §3) and the small formats around it.
//!
//! - [`record`]: the CommitLog record (= pull body entry = VIEW_MESSAGE_BY_ID body), owned
//!   encode/decode and a zero-copy view; the blank end-of-segment record.
//! - [`properties`]: the `key\u{1}value\u{2}` properties text and the well-known keys.
//! - [`batch`]: the SEND_BATCH_MESSAGE body (§2.3), bounded decode and encode.
//! - [`msg_id`]: offset msgIds and the UNIQ_KEY generator (§3.6).
//! - [`tag_hash`]: Java `String.hashCode`, the ConsumeQueue tagsCode (§4.1).
//! - [`sysflag`]: sysFlag bits, transaction and compression types (§3.3).
//!
//! Everything here is pure: bytes in, bytes out, typed errors, no panics on any input.

pub mod batch;
pub mod msg_id;
pub mod properties;
pub mod record;
pub mod sysflag;
pub mod tag_hash;

pub use batch::{
    decode_batch_body, decode_batch_bytes, encode_batch_body, BatchEntry, BatchEntryRef, BatchError,
};
pub use msg_id::{
    decode_offset_msg_id, encode_offset_msg_id, MsgIdError, OffsetMsgId, UniqKeyGenerator,
};
pub use properties::{keys, Properties, PropertiesError};
pub use record::{
    body_crc, decode_record, encode_record, encode_record_ref, encoded_len, encoded_len_ref,
    iter_records, patch_offsets, peek_record_kind, view_record, RecordError, RecordIter,
    RecordKind, RecordView, StoredMessage, StoredMessageRef, BLANK_MAGIC, BLANK_RECORD_SIZE,
    MAGIC_V1, MAGIC_V2, MIN_RECORD_SIZE,
};
pub use tag_hash::{java_string_hash, queue_tags_code, tags_code, SCHEDULE_TOPIC, TIMER_TOPIC};

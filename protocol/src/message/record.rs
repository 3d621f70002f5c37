//! The CommitLog record: one stored message, byte-exact to protocol.md §3.1.
//!
//! The same bytes are the CommitLog entry, the body of a PULL response and the body of a
//! VIEW_MESSAGE_BY_ID response, so this is the one encoder and decoder for all three.
//!
//! Invariants of every record this module writes or accepts:
//! - `TOTALSIZE` equals the sum of the field widths (a record that claims more or less is an
//!   error, never silently re-framed);
//! - the magic is [`MAGIC_V1`] (1-byte topic length) or [`MAGIC_V2`] (2-byte topic length);
//!   the encoder picks v2 only for topics longer than 127 bytes, as RocketMQ does;
//! - host widths follow sysFlag bits 4 (born host) and 5 (store host); the encoder derives those
//!   bits from the address families so they can never disagree with the bytes;
//! - `BODYCRC` is `crc32(body) & 0x7FFFFFFF`, recomputed by the encoder, verified only on
//!   request ([`RecordView::body_crc_matches`]) because clients never check it.
//!
//! The end-of-segment blank record (`int32 remaining`, `int32 BLANK_MAGIC`) is reported as
//! [`RecordError::Blank`] so that a recovery scan can tell "the rest of this segment is empty"
//! apart from garbage. Nothing here does I/O or allocates on the view path.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use bytes::Bytes;

use super::msg_id::OffsetMsgId;
use super::properties;
use super::sysflag::{BORNHOST_V6_FLAG, STOREHOST_V6_FLAG};

/// Magic of a v1 record: 1-byte (signed) topic length. `0xDAA320A7`.
pub const MAGIC_V1: i32 = 0xDAA3_20A7_u32 as i32;
/// Magic of a v2 record: 2-byte (signed) topic length. `0xDAA320AB`.
pub const MAGIC_V2: i32 = 0xDAA3_20AB_u32 as i32;
/// Magic of the blank record that closes a CommitLog segment. `0xCBD43194`.
pub const BLANK_MAGIC: i32 = 0xCBD4_3194_u32 as i32;
/// Size of a blank record: `int32 remaining` + `int32 BLANK_MAGIC`.
pub const BLANK_RECORD_SIZE: usize = 8;

/// Longest topic a v1 record can hold (its length byte is signed).
pub const MAX_TOPIC_LEN_V1: usize = i8::MAX as usize;
/// Longest topic a v2 record can hold (its length field is a signed int16).
pub const MAX_TOPIC_LEN_V2: usize = i16::MAX as usize;
/// Longest properties text (its length field is a signed int16).
pub const MAX_PROPERTIES_LEN: usize = i16::MAX as usize;

/// Byte position of QUEUEOFFSET in every record.
pub const POS_QUEUE_OFFSET: usize = 20;
/// Byte position of PHYSICALOFFSET in every record.
pub const POS_PHYSICAL_OFFSET: usize = 28;
/// Byte position of SYSFLAG in every record.
pub const POS_SYS_FLAG: usize = 36;
/// Byte position of BORNTIMESTAMP in every record.
pub const POS_BORN_TIMESTAMP: usize = 40;
/// Byte position of BORNHOST in every record.
pub const POS_BORN_HOST: usize = 48;

/// Width of a host field: IPv4 address + int32 port.
const HOST_V4_LEN: usize = 4 + 4;
/// Width of a host field: IPv6 address + int32 port.
const HOST_V6_LEN: usize = 16 + 4;

/// Every fixed-width field, hosts and the topic length excluded:
/// total, magic, crc, queue id, flag, queue offset, physical offset, sysflag, born ts,
/// store ts, reconsume times, prepared offset, body length, properties length.
const FIXED_LEN: usize = 4 + 4 + 4 + 4 + 4 + 8 + 8 + 4 + 8 + 8 + 4 + 8 + 4 + 2;

/// Smallest possible record: v1, IPv4 hosts, empty body, topic and properties (91 bytes).
pub const MIN_RECORD_SIZE: usize = FIXED_LEN + 2 * HOST_V4_LEN + 1;

/// Why a record could not be encoded or decoded. One variant per failure; decoders never panic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// The buffer ends before the record does (a torn tail, or a short read).
    #[error("record truncated: need {needed} bytes, have {available}")]
    Truncated { needed: usize, available: usize },
    /// The end-of-segment blank record: the rest of the segment holds no messages.
    #[error("blank end-of-segment record ({remaining} bytes to the segment end)")]
    Blank { remaining: u32 },
    /// The magic is neither a message magic nor the blank magic.
    #[error("bad magic code {magic:#010x}")]
    BadMagic { magic: i32 },
    /// TOTALSIZE is negative or below the smallest possible record.
    #[error("invalid total size {total_size} (minimum {MIN_RECORD_SIZE})")]
    InvalidTotalSize { total_size: i32 },
    /// A length field is negative.
    #[error("{field} length {len} is negative")]
    NegativeLength { field: &'static str, len: i32 },
    /// A field extends past the end of the record as declared by TOTALSIZE.
    #[error("{field} needs {needed} bytes but only {remaining} remain in the record")]
    FieldOverrun {
        field: &'static str,
        needed: usize,
        remaining: usize,
    },
    /// The fields end before TOTALSIZE does.
    #[error("total size {declared} but the fields take {actual} bytes")]
    SizeMismatch { declared: usize, actual: usize },
    /// A host port is outside 0..=65535.
    #[error("{field} port {port} is out of range")]
    BadPort { field: &'static str, port: i32 },
    /// The topic bytes are not UTF-8.
    #[error("topic is not valid UTF-8")]
    TopicUtf8(#[source] std::str::Utf8Error),
    /// The properties bytes are not UTF-8.
    #[error("properties are not valid UTF-8")]
    PropertiesUtf8(#[source] std::str::Utf8Error),
    /// Encoding: the topic does not fit a v2 record.
    #[error("topic of {len} bytes is longer than {MAX_TOPIC_LEN_V2}")]
    TopicTooLong { len: usize },
    /// Encoding: the properties text does not fit its int16 length.
    #[error("properties of {len} bytes are longer than {MAX_PROPERTIES_LEN}")]
    PropertiesTooLong { len: usize },
    /// Encoding: the record would not fit its int32 TOTALSIZE.
    #[error("record of {len} bytes does not fit an int32 total size")]
    RecordTooLarge { len: usize },
}

/// A stored message, owned. Used by encoders (the broker's append path) and by the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    pub queue_id: i32,
    /// User flag from the producer, stored as-is.
    pub flag: i32,
    /// Logical offset in the ConsumeQueue of (topic, queue_id).
    pub queue_offset: i64,
    /// Byte offset of this record in the CommitLog.
    pub physical_offset: i64,
    /// §3.3. The encoder overwrites bits 4 and 5 from the host address families.
    pub sys_flag: i32,
    pub born_timestamp: i64,
    pub born_host: SocketAddr,
    pub store_timestamp: i64,
    pub store_host: SocketAddr,
    pub reconsume_times: i32,
    pub prepared_transaction_offset: i64,
    pub body: Bytes,
    pub topic: String,
    /// The encoded properties text of §3.4 (`key\u{1}value\u{2}...`).
    pub properties: String,
    /// BODYCRC as stored. Ignored by the encoder, which always recomputes it.
    pub body_crc: i32,
}

/// A stored message whose variable parts are borrowed: what the append path encodes from
/// without building owned strings. Same meaning as [`StoredMessage`]'s fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredMessageRef<'a> {
    pub queue_id: i32,
    pub flag: i32,
    pub queue_offset: i64,
    pub physical_offset: i64,
    pub sys_flag: i32,
    pub born_timestamp: i64,
    pub born_host: SocketAddr,
    pub store_timestamp: i64,
    pub store_host: SocketAddr,
    pub reconsume_times: i32,
    pub prepared_transaction_offset: i64,
    pub body: &'a [u8],
    pub topic: &'a str,
    pub properties: &'a str,
}

impl StoredMessage {
    /// The offset msgId of this message: store host + physical offset (§3.6).
    pub fn offset_msg_id(&self) -> OffsetMsgId {
        OffsetMsgId {
            store_host: self.store_host,
            physical_offset: self.physical_offset,
        }
    }

    /// The value of property `key` (last occurrence wins).
    pub fn property(&self, key: &str) -> Option<&str> {
        properties::find(&self.properties, key)
    }

    /// The `TAGS` property.
    pub fn tags(&self) -> Option<&str> {
        self.property(properties::keys::TAGS)
    }

    /// Borrows this message for [`encode_record_ref`].
    pub fn borrowed(&self) -> StoredMessageRef<'_> {
        StoredMessageRef {
            queue_id: self.queue_id,
            flag: self.flag,
            queue_offset: self.queue_offset,
            physical_offset: self.physical_offset,
            sys_flag: self.sys_flag,
            born_timestamp: self.born_timestamp,
            born_host: self.born_host,
            store_timestamp: self.store_timestamp,
            store_host: self.store_host,
            reconsume_times: self.reconsume_times,
            prepared_transaction_offset: self.prepared_transaction_offset,
            body: &self.body,
            topic: &self.topic,
            properties: &self.properties,
        }
    }
}

/// `CRC32(body) & 0x7FFFFFFF`: the BODYCRC field.
pub fn body_crc(body: &[u8]) -> i32 {
    // The mask keeps the value non-negative, as Java's `UtilAll.crc32` does.
    (crc32fast::hash(body) & 0x7FFF_FFFF) as i32
}

/// The sysFlag actually written for `sys_flag` with these hosts: bits 4 and 5 follow the
/// address families, every other bit is kept.
pub fn sys_flag_for_hosts(sys_flag: i32, born_host: SocketAddr, store_host: SocketAddr) -> i32 {
    let mut flag = sys_flag & !(BORNHOST_V6_FLAG | STOREHOST_V6_FLAG);
    if born_host.is_ipv6() {
        flag |= BORNHOST_V6_FLAG;
    }
    if store_host.is_ipv6() {
        flag |= STOREHOST_V6_FLAG;
    }
    flag
}

fn host_len(addr: SocketAddr) -> usize {
    match addr {
        SocketAddr::V4(_) => HOST_V4_LEN,
        SocketAddr::V6(_) => HOST_V6_LEN,
    }
}

/// Width of the topic length field (1 for v1, 2 for v2), or an error if the topic cannot fit.
fn topic_len_width(topic_len: usize) -> Result<usize, RecordError> {
    if topic_len <= MAX_TOPIC_LEN_V1 {
        Ok(1)
    } else if topic_len <= MAX_TOPIC_LEN_V2 {
        Ok(2)
    } else {
        Err(RecordError::TopicTooLong { len: topic_len })
    }
}

/// Size in bytes of the record `msg` encodes to.
pub fn encoded_len(msg: &StoredMessage) -> Result<usize, RecordError> {
    encoded_len_ref(&msg.borrowed())
}

/// Size in bytes of the record `msg` encodes to.
pub fn encoded_len_ref(msg: &StoredMessageRef<'_>) -> Result<usize, RecordError> {
    let topic_width = topic_len_width(msg.topic.len())?;
    if msg.properties.len() > MAX_PROPERTIES_LEN {
        return Err(RecordError::PropertiesTooLong {
            len: msg.properties.len(),
        });
    }
    let len = FIXED_LEN
        + host_len(msg.born_host)
        + host_len(msg.store_host)
        + topic_width
        + msg.topic.len()
        + msg.properties.len();
    // The body is the only part whose length is not bounded above by now.
    match len.checked_add(msg.body.len()) {
        Some(total) if total <= i32::MAX as usize => Ok(total),
        _ => Err(RecordError::RecordTooLarge {
            len: len.saturating_add(msg.body.len()),
        }),
    }
}

/// Appends the record of `msg` to `out` and returns its size. BODYCRC is recomputed and the
/// IPv6 sysFlag bits are set from the hosts; `msg.body_crc` is ignored. On error nothing is
/// appended.
pub fn encode_record(msg: &StoredMessage, out: &mut Vec<u8>) -> Result<usize, RecordError> {
    encode_record_ref(&msg.borrowed(), out)
}

/// [`encode_record`] for a borrowed message: the broker's hot append path.
pub fn encode_record_ref(
    msg: &StoredMessageRef<'_>,
    out: &mut Vec<u8>,
) -> Result<usize, RecordError> {
    let total = encoded_len_ref(msg)?;
    let start = out.len();
    out.reserve(total);
    let sys_flag = sys_flag_for_hosts(msg.sys_flag, msg.born_host, msg.store_host);
    let magic = if msg.topic.len() <= MAX_TOPIC_LEN_V1 {
        MAGIC_V1
    } else {
        MAGIC_V2
    };
    // `encoded_len_ref` bounded `total` by i32::MAX and the topic/properties by their fields,
    // so the narrowing casts below are exact.
    out.extend_from_slice(&(total as i32).to_be_bytes());
    out.extend_from_slice(&magic.to_be_bytes());
    out.extend_from_slice(&body_crc(msg.body).to_be_bytes());
    out.extend_from_slice(&msg.queue_id.to_be_bytes());
    out.extend_from_slice(&msg.flag.to_be_bytes());
    out.extend_from_slice(&msg.queue_offset.to_be_bytes());
    out.extend_from_slice(&msg.physical_offset.to_be_bytes());
    out.extend_from_slice(&sys_flag.to_be_bytes());
    out.extend_from_slice(&msg.born_timestamp.to_be_bytes());
    put_host(out, msg.born_host);
    out.extend_from_slice(&msg.store_timestamp.to_be_bytes());
    put_host(out, msg.store_host);
    out.extend_from_slice(&msg.reconsume_times.to_be_bytes());
    out.extend_from_slice(&msg.prepared_transaction_offset.to_be_bytes());
    out.extend_from_slice(&(msg.body.len() as i32).to_be_bytes());
    out.extend_from_slice(msg.body);
    if magic == MAGIC_V1 {
        out.push(msg.topic.len() as u8);
    } else {
        out.extend_from_slice(&(msg.topic.len() as i16).to_be_bytes());
    }
    out.extend_from_slice(msg.topic.as_bytes());
    out.extend_from_slice(&(msg.properties.len() as i16).to_be_bytes());
    out.extend_from_slice(msg.properties.as_bytes());
    debug_assert_eq!(
        out.len() - start,
        total,
        "encoded_len_ref disagrees with the encoder"
    );
    Ok(total)
}

fn put_host(out: &mut Vec<u8>, addr: SocketAddr) {
    match addr {
        SocketAddr::V4(a) => out.extend_from_slice(&a.ip().octets()),
        SocketAddr::V6(a) => out.extend_from_slice(&a.ip().octets()),
    }
    out.extend_from_slice(&i32::from(addr.port()).to_be_bytes());
}

/// Overwrites QUEUEOFFSET and PHYSICALOFFSET of an encoded record in place: the append path
/// can encode before it knows where the record lands.
pub fn patch_offsets(
    record: &mut [u8],
    queue_offset: i64,
    physical_offset: i64,
) -> Result<(), RecordError> {
    let available = record.len();
    let truncated = RecordError::Truncated {
        needed: POS_PHYSICAL_OFFSET + 8,
        available,
    };
    record
        .get_mut(POS_QUEUE_OFFSET..POS_QUEUE_OFFSET + 8)
        .ok_or(truncated.clone())?
        .copy_from_slice(&queue_offset.to_be_bytes());
    record
        .get_mut(POS_PHYSICAL_OFFSET..POS_PHYSICAL_OFFSET + 8)
        .ok_or(truncated)?
        .copy_from_slice(&physical_offset.to_be_bytes());
    Ok(())
}

/// What the next 8 bytes of a CommitLog say is there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    /// A message record of `total_size` bytes (not yet validated past its magic and size).
    Message { total_size: u32, magic: i32 },
    /// The blank record: `remaining` bytes from here to the segment end are unused.
    Blank { remaining: u32 },
}

/// Reads TOTALSIZE and the magic. Errors: fewer than 8 bytes, an unknown magic, a size that is
/// negative or (for a message) below [`MIN_RECORD_SIZE`].
pub fn peek_record_kind(buf: &[u8]) -> Result<RecordKind, RecordError> {
    let (Some(size), Some(magic)) = (read_i32(buf, 0), read_i32(buf, 4)) else {
        return Err(RecordError::Truncated {
            needed: BLANK_RECORD_SIZE,
            available: buf.len(),
        });
    };
    let invalid = RecordError::InvalidTotalSize { total_size: size };
    match magic {
        BLANK_MAGIC => {
            let remaining = u32::try_from(size).map_err(|_| invalid)?;
            Ok(RecordKind::Blank { remaining })
        }
        MAGIC_V1 | MAGIC_V2 => match u32::try_from(size) {
            Ok(total_size) if total_size as usize >= MIN_RECORD_SIZE => {
                Ok(RecordKind::Message { total_size, magic })
            }
            _ => Err(invalid),
        },
        _ => Err(RecordError::BadMagic { magic }),
    }
}

fn read_i32(buf: &[u8], pos: usize) -> Option<i32> {
    let bytes: [u8; 4] = buf.get(pos..pos + 4)?.try_into().ok()?;
    Some(i32::from_be_bytes(bytes))
}

/// A zero-copy view of one record. Produced by [`view_record`]; BODYCRC is not verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordView<'a> {
    pub total_size: u32,
    pub magic: i32,
    pub body_crc: i32,
    pub queue_id: i32,
    pub flag: i32,
    pub queue_offset: i64,
    pub physical_offset: i64,
    pub sys_flag: i32,
    pub born_timestamp: i64,
    pub born_host: SocketAddr,
    pub store_timestamp: i64,
    pub store_host: SocketAddr,
    pub reconsume_times: i32,
    pub prepared_transaction_offset: i64,
    pub body: &'a [u8],
    pub topic: &'a str,
    /// The properties text, not checked for UTF-8 (use [`RecordView::properties_str`]).
    pub properties: &'a [u8],
    /// The whole record, `total_size` bytes: what a pull sends as is.
    pub record: &'a [u8],
}

impl<'a> RecordView<'a> {
    /// The offset msgId of this record: store host + physical offset (§3.6).
    pub fn offset_msg_id(&self) -> OffsetMsgId {
        OffsetMsgId {
            store_host: self.store_host,
            physical_offset: self.physical_offset,
        }
    }

    /// Whether the stored BODYCRC matches the body: the recovery scan's integrity check.
    pub fn body_crc_matches(&self) -> bool {
        body_crc(self.body) == self.body_crc
    }

    /// The `TAGS` property, if present and UTF-8.
    pub fn tags(&self) -> Option<&'a str> {
        self.property(properties::keys::TAGS)
    }

    /// The value of property `key` (last occurrence wins, as in Java's map), if present and UTF-8.
    pub fn property(&self, key: &str) -> Option<&'a str> {
        properties::find_bytes(self.properties, key.as_bytes())
            .and_then(|v| std::str::from_utf8(v).ok())
    }

    /// The properties text, checked for UTF-8.
    pub fn properties_str(&self) -> Result<&'a str, RecordError> {
        std::str::from_utf8(self.properties).map_err(RecordError::PropertiesUtf8)
    }

    /// Copies the view into an owned message (checks the properties are UTF-8).
    pub fn to_owned_message(&self) -> Result<StoredMessage, RecordError> {
        Ok(StoredMessage {
            queue_id: self.queue_id,
            flag: self.flag,
            queue_offset: self.queue_offset,
            physical_offset: self.physical_offset,
            sys_flag: self.sys_flag,
            born_timestamp: self.born_timestamp,
            born_host: self.born_host,
            store_timestamp: self.store_timestamp,
            store_host: self.store_host,
            reconsume_times: self.reconsume_times,
            prepared_transaction_offset: self.prepared_transaction_offset,
            body: Bytes::copy_from_slice(self.body),
            topic: self.topic.to_owned(),
            properties: self.properties_str()?.to_owned(),
            body_crc: self.body_crc,
        })
    }
}

/// Reads fixed-width fields off the front of a record, failing (never panicking) on overrun.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, field: &'static str, n: usize) -> Result<&'a [u8], RecordError> {
        if n > self.rest.len() {
            return Err(RecordError::FieldOverrun {
                field,
                needed: n,
                remaining: self.rest.len(),
            });
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], RecordError> {
        match self.rest.split_first_chunk::<N>() {
            Some((head, tail)) => {
                self.rest = tail;
                Ok(*head)
            }
            None => Err(RecordError::FieldOverrun {
                field,
                needed: N,
                remaining: self.rest.len(),
            }),
        }
    }

    fn i16(&mut self, field: &'static str) -> Result<i16, RecordError> {
        self.array(field).map(i16::from_be_bytes)
    }

    fn i32(&mut self, field: &'static str) -> Result<i32, RecordError> {
        self.array(field).map(i32::from_be_bytes)
    }

    fn i64(&mut self, field: &'static str) -> Result<i64, RecordError> {
        self.array(field).map(i64::from_be_bytes)
    }

    /// A length field that must not be negative.
    fn len(&mut self, field: &'static str, len: i32) -> Result<usize, RecordError> {
        usize::try_from(len).map_err(|_| RecordError::NegativeLength { field, len })
    }

    fn host(&mut self, field: &'static str, v6: bool) -> Result<SocketAddr, RecordError> {
        let ip = if v6 {
            SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(self.array::<16>(field)?),
                0,
                0,
                0,
            ))
        } else {
            SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(self.array::<4>(field)?),
                0,
            ))
        };
        let port = self.i32(field)?;
        let port16 = u16::try_from(port).map_err(|_| RecordError::BadPort { field, port })?;
        let mut addr = ip;
        addr.set_port(port16);
        Ok(addr)
    }
}

/// Views the record at the start of `buf` without copying or checking BODYCRC.
/// `buf` may extend past the record; the view covers exactly `total_size` bytes.
/// A blank record is [`RecordError::Blank`].
pub fn view_record(buf: &[u8]) -> Result<RecordView<'_>, RecordError> {
    let (total_size, magic) = match peek_record_kind(buf)? {
        RecordKind::Message { total_size, magic } => (total_size, magic),
        RecordKind::Blank { remaining } => return Err(RecordError::Blank { remaining }),
    };
    let total = total_size as usize;
    let record = buf.get(..total).ok_or(RecordError::Truncated {
        needed: total,
        available: buf.len(),
    })?;
    let mut r = Reader { rest: record };
    r.array::<8>("total size and magic")?;
    let body_crc = r.i32("body crc")?;
    let queue_id = r.i32("queue id")?;
    let flag = r.i32("flag")?;
    let queue_offset = r.i64("queue offset")?;
    let physical_offset = r.i64("physical offset")?;
    let sys_flag = r.i32("sys flag")?;
    let born_timestamp = r.i64("born timestamp")?;
    let born_host = r.host("born host", sys_flag & BORNHOST_V6_FLAG != 0)?;
    let store_timestamp = r.i64("store timestamp")?;
    let store_host = r.host("store host", sys_flag & STOREHOST_V6_FLAG != 0)?;
    let reconsume_times = r.i32("reconsume times")?;
    let prepared_transaction_offset = r.i64("prepared transaction offset")?;
    let body_len = r.i32("body length")?;
    let body_len = r.len("body", body_len)?;
    let body = r.take("body", body_len)?;
    let topic_len = if magic == MAGIC_V1 {
        i32::from(i8::from_be_bytes(r.array::<1>("topic length")?))
    } else {
        i32::from(r.i16("topic length")?)
    };
    let topic_len = r.len("topic", topic_len)?;
    let topic = std::str::from_utf8(r.take("topic", topic_len)?).map_err(RecordError::TopicUtf8)?;
    let properties_len = i32::from(r.i16("properties length")?);
    let properties_len = r.len("properties", properties_len)?;
    let properties = r.take("properties", properties_len)?;
    if !r.rest.is_empty() {
        return Err(RecordError::SizeMismatch {
            declared: total,
            actual: total - r.rest.len(),
        });
    }
    Ok(RecordView {
        total_size,
        magic,
        body_crc,
        queue_id,
        flag,
        queue_offset,
        physical_offset,
        sys_flag,
        born_timestamp,
        born_host,
        store_timestamp,
        store_host,
        reconsume_times,
        prepared_transaction_offset,
        body,
        topic,
        properties,
        record,
    })
}

/// Decodes the record at the start of `buf` into an owned message; returns it and the bytes
/// used. BODYCRC is returned as stored, not verified (clients never verify it).
pub fn decode_record(buf: &[u8]) -> Result<(StoredMessage, usize), RecordError> {
    let view = view_record(buf)?;
    Ok((view.to_owned_message()?, view.total_size as usize))
}

/// Iterates the records of a pull (or VIEW_MESSAGE_BY_ID) body. Stops after the first error,
/// which it yields, as the Java client stops decoding at the first bad record.
#[derive(Debug, Clone)]
pub struct RecordIter<'a> {
    rest: &'a [u8],
    failed: bool,
}

/// Views each record of `buf` in turn (see [`RecordIter`]).
pub fn iter_records(buf: &[u8]) -> RecordIter<'_> {
    RecordIter {
        rest: buf,
        failed: false,
    }
}

impl<'a> Iterator for RecordIter<'a> {
    type Item = Result<RecordView<'a>, RecordError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.rest.is_empty() {
            return None;
        }
        match view_record(self.rest) {
            Ok(view) => {
                self.rest = self.rest.get(view.record.len()..).unwrap_or_default();
                Some(Ok(view))
            }
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

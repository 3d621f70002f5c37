//! The replication wire format between a ringmq master and its slave: one TCP connection
//! per shard log, on the master's HA port. Modelled on RocketMQ's HA protocol (protocol.md
//! §8: 8-byte offset reports up, 12-byte-header data frames down), with a hello that names
//! the shard and lets the master check that the slave's log is a prefix of its own, and a
//! refusal the master sends before closing. All integers are big-endian. Pure: bytes in,
//! values out; never panics on what a peer sends.
//!
//! | direction | message | bytes |
//! |---|---|---|
//! | slave → master | hello | magic `RMQHA2\0\0` (8), shard id (1), shard count (1), segment size (8), log end (8), tail length (4), tail CRC-32 (4), broker id (8) |
//! | slave → master | ack | log end it holds (8), at once after each frame and every 5 s |
//! | master → slave | data | log offset (8), length (4, < 2^31), whole records (length) |
//! | master → slave | heartbeat | log offset (8), length 0 (4) |
//! | master → slave | refusal | 0 (8), `u32::MAX` (4), reason length (4), UTF-8 reason |

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// First bytes of a hello: "RMQHA2" and two zeros (version 2: the hello names the slave's
/// broker id, which a master needs to redirect reads to it). A version-1 slave's hello is
/// not one: the master closes the connection.
pub const HELLO_MAGIC: [u8; 8] = *b"RMQHA2\0\0";
/// Bytes of a hello.
pub const HELLO_BYTES: usize = 8 + 1 + 1 + 8 + 8 + 4 + 4 + 8;
/// Bytes of an ack.
pub const ACK_BYTES: usize = 8;
/// Bytes of a frame header.
pub const FRAME_HEADER_BYTES: usize = 12;
/// Largest data frame accepted (a frame holds at most one record larger than the frame
/// size the master reads, and records are at most a segment).
pub const MAX_FRAME_BYTES: u32 = i32::MAX as u32;
/// The length value that marks a refusal.
const REFUSAL_MARK: u32 = u32::MAX;
/// Longest refusal reason accepted.
const MAX_REASON_BYTES: u32 = 4096;
/// Bytes of the log's tail a hello checksums (fewer at the start of a log).
pub const TAIL_CHECK_BYTES: u64 = 64;

/// What a slave says when it connects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hello {
    /// The shard whose log this connection replicates.
    pub shard_id: u8,
    /// The slave's shard count (must equal the master's: queue placement depends on it).
    pub shards: u8,
    /// The slave's segment size (must equal the master's: offsets depend on it).
    pub segment_size_bytes: u64,
    /// Where the slave's log ends: the master continues from here.
    pub log_end: u64,
    /// How many bytes before `log_end` the CRC covers.
    pub tail_len: u32,
    /// CRC-32 of the slave's `tail_len` bytes before `log_end`.
    pub tail_crc: u32,
    /// The slave's `--broker-id`: what a master suggests to consumers it sends there.
    pub broker_id: i64,
}

impl Hello {
    /// The hello's bytes.
    pub fn encode(&self) -> [u8; HELLO_BYTES] {
        let mut out = BytesMut::with_capacity(HELLO_BYTES);
        out.put_slice(&HELLO_MAGIC);
        out.put_u8(self.shard_id);
        out.put_u8(self.shards);
        out.put_u64(self.segment_size_bytes);
        out.put_u64(self.log_end);
        out.put_u32(self.tail_len);
        out.put_u32(self.tail_crc);
        out.put_i64(self.broker_id);
        let mut bytes = [0u8; HELLO_BYTES];
        bytes.copy_from_slice(&out);
        bytes
    }

    /// Decodes a hello; `None` unless the bytes are one (another protocol on the HA port).
    pub fn decode(bytes: &[u8; HELLO_BYTES]) -> Option<Hello> {
        let mut buf = &bytes[..];
        if buf.get(..8)? != HELLO_MAGIC {
            return None;
        }
        buf.advance(8);
        Some(Hello {
            shard_id: buf.get_u8(),
            shards: buf.get_u8(),
            segment_size_bytes: buf.get_u64(),
            log_end: buf.get_u64(),
            tail_len: buf.get_u32(),
            tail_crc: buf.get_u32(),
            broker_id: buf.get_i64(),
        })
    }
}

/// The bytes a hello's tail check covers for a log ending at `log_end`: up to
/// [`TAIL_CHECK_BYTES`] before it, within the segment holding byte `log_end - 1`.
pub fn tail_range(log_end: u64, segment_size_bytes: u64) -> std::ops::Range<u64> {
    if log_end == 0 || segment_size_bytes == 0 {
        return 0..0;
    }
    let last = log_end - 1;
    let seg_start = last - last % segment_size_bytes;
    log_end.saturating_sub(TAIL_CHECK_BYTES).max(seg_start)..log_end
}

/// The header of what the master sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MasterHeader {
    /// `len` bytes of records at `log_offset` follow (0: a heartbeat).
    Data {
        /// Where they go in the slave's log.
        log_offset: u64,
        /// How many bytes follow.
        len: u32,
    },
    /// The master refuses this slave: the reason's length (4 bytes, see
    /// [`refusal_reason_len`]) and the reason follow, then the close.
    Refusal,
}

/// Errors decoding what a peer sent.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WireError {
    /// A data frame longer than any frame a master sends.
    #[error("frame of {len} bytes is larger than {MAX_FRAME_BYTES}")]
    FrameTooLarge {
        /// The length field.
        len: u32,
    },
    /// A refusal reason longer than allowed.
    #[error("refusal reason of {len} bytes is larger than {MAX_REASON_BYTES}")]
    ReasonTooLarge {
        /// The length field.
        len: u32,
    },
}

impl MasterHeader {
    /// Decodes the 12-byte header.
    pub fn decode(bytes: &[u8; FRAME_HEADER_BYTES]) -> Result<MasterHeader, WireError> {
        let mut buf = &bytes[..];
        let log_offset = buf.get_u64();
        let len = buf.get_u32();
        match len {
            REFUSAL_MARK => Ok(MasterHeader::Refusal),
            _ if len > MAX_FRAME_BYTES => Err(WireError::FrameTooLarge { len }),
            _ => Ok(MasterHeader::Data { log_offset, len }),
        }
    }
}

/// The header of a data frame of `len` bytes at `log_offset` (0 bytes: a heartbeat).
pub fn data_header(log_offset: u64, len: u32) -> [u8; FRAME_HEADER_BYTES] {
    let mut out = [0u8; FRAME_HEADER_BYTES];
    out[..8].copy_from_slice(&log_offset.to_be_bytes());
    out[8..].copy_from_slice(&len.to_be_bytes());
    out
}

/// A whole refusal: header, reason length, reason (cut to the allowed length).
pub fn refusal(reason: &str) -> Bytes {
    let mut reason = reason.as_bytes();
    reason = &reason[..reason.len().min(MAX_REASON_BYTES as usize)];
    let mut out = BytesMut::with_capacity(FRAME_HEADER_BYTES + 4 + reason.len());
    out.put_u64(0);
    out.put_u32(REFUSAL_MARK);
    out.put_u32(reason.len() as u32);
    out.put_slice(reason);
    out.freeze()
}

/// The length of a refusal's reason, from the 4 bytes after its header.
pub fn refusal_reason_len(bytes: [u8; 4]) -> Result<u32, WireError> {
    let len = u32::from_be_bytes(bytes);
    if len > MAX_REASON_BYTES {
        return Err(WireError::ReasonTooLarge { len });
    }
    Ok(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hello_round_trips_and_another_protocol_is_not_one() {
        let hello = Hello {
            shard_id: 3,
            shards: 4,
            segment_size_bytes: 1 << 30,
            log_end: 123_456,
            tail_len: 64,
            tail_crc: 0xDEAD_BEEF,
            broker_id: 2,
        };
        assert_eq!(Hello::decode(&hello.encode()), Some(hello));
        let mut other = hello.encode();
        other[0] = b'X';
        assert_eq!(Hello::decode(&other), None);
    }

    #[test]
    fn headers_decode_data_heartbeats_and_refusals() {
        assert_eq!(
            MasterHeader::decode(&data_header(4096, 100)),
            Ok(MasterHeader::Data {
                log_offset: 4096,
                len: 100
            })
        );
        assert_eq!(
            MasterHeader::decode(&data_header(7, 0)),
            Ok(MasterHeader::Data {
                log_offset: 7,
                len: 0
            })
        );
        let refused = refusal("your log is ahead of mine");
        let header: [u8; FRAME_HEADER_BYTES] = refused[..12].try_into().unwrap();
        assert_eq!(MasterHeader::decode(&header), Ok(MasterHeader::Refusal));
        let len = refusal_reason_len(refused[12..16].try_into().unwrap()).unwrap();
        assert_eq!(
            &refused[16..16 + len as usize],
            b"your log is ahead of mine"
        );
        assert_eq!(
            MasterHeader::decode(&data_header(0, u32::MAX - 1)),
            Err(WireError::FrameTooLarge { len: u32::MAX - 1 })
        );
        assert!(refusal_reason_len(u32::MAX.to_be_bytes()).is_err());
    }

    #[test]
    fn the_tail_check_stays_inside_the_last_segment() {
        assert_eq!(tail_range(0, 4096), 0..0);
        assert_eq!(tail_range(10, 4096), 0..10);
        assert_eq!(tail_range(4096 + 10, 4096), 4096..4106);
        assert_eq!(tail_range(5000, 4096), 4936..5000);
        // A log ending exactly at a segment end checks that segment's last bytes.
        assert_eq!(tail_range(8192, 4096), 8128..8192);
    }
}

//! The outer remoting frame (protocol.md §1.1) and its size limits.
//!
//! ```text
//! int32 length | int32 (serializeType << 24 | headerLen) | header | body
//! ```
//!
//! `length` counts everything after itself; the body length is what is left after the
//! header. This module owns the framing only; the header bytes are [`crate::header`]'s.
//!
//! Invariants: [`decode_frame`] validates the 8-byte prefix (length sign and minimum, total
//! size against [`FrameLimits::max_frame_bytes`], serialize type, header length against the
//! frame and against [`FrameLimits::max_header_bytes`]) before it waits for, copies or
//! allocates anything, so a peer's claimed size never turns into memory. A decoded body is a
//! zero-copy slice of the connection's read buffer. Encoders either append a whole frame (or
//! frame prefix) to the output or leave it exactly as it was.

use bytes::{BufMut, BytesMut};

use crate::command::RemotingCommand;
use crate::header::{decode_header, encode_header, HeaderCodecError, SerializeType};

/// Java's frame limit (`com.rocketmq.remoting.frameMaxLength`): 16 MiB, counted like Netty's
/// `LengthFieldBasedFrameDecoder` does, length field included.
pub const DEFAULT_MAX_FRAME_BYTES: usize = 16 * 1024 * 1024;

/// Default header limit: 256 KiB. Java has none besides the frame's, but the biggest header a
/// legitimate client sends is a SEND whose `properties` string is at the stored format's
/// 32 767-byte limit; fastjson writes its `\u0001`/`\u0002` separators as 6-byte escapes, so
/// even a properties string made only of escapes (≈192 KiB) plus the other fields fits.
/// Bounding it caps the JSON parsing and extFields allocations one frame can cost.
pub const DEFAULT_MAX_HEADER_BYTES: usize = 256 * 1024;

/// The largest header the 24-bit header-length field can describe.
pub const MAX_HEADER_FIELD_BYTES: usize = (1 << 24) - 1;

/// Bytes before the header: the length field and the header field.
pub const FRAME_PREFIX_BYTES: usize = 8;

const LENGTH_FIELD_BYTES: usize = 4;

/// Size limits applied to every frame a peer sends, checked before any allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameLimits {
    /// Largest frame accepted, length field included. Default [`DEFAULT_MAX_FRAME_BYTES`].
    pub max_frame_bytes: usize,
    /// Largest header accepted; must be below 2^24. Default [`DEFAULT_MAX_HEADER_BYTES`].
    pub max_header_bytes: usize,
}

impl Default for FrameLimits {
    fn default() -> Self {
        Self {
            max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
            max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
        }
    }
}

/// A frame a peer sent that cannot be decoded. Prefix errors (every variant but
/// [`FrameError::Header`]) mean the stream can no longer be framed: close the connection.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The length field is negative (a Java peer cannot send that).
    #[error("frame length {length} is negative")]
    NegativeLength {
        /// The length field as sent.
        length: i32,
    },
    /// The length field is too small to hold the header-length field.
    #[error("frame length {length} is below the 4 bytes of the header-length field")]
    LengthTooSmall {
        /// The length field as sent.
        length: i32,
    },
    /// The frame is larger than [`FrameLimits::max_frame_bytes`].
    #[error("frame of {frame_bytes} bytes exceeds the limit of {max_frame_bytes}")]
    FrameTooLarge {
        /// Claimed frame size, length field included.
        frame_bytes: usize,
        /// The limit in force.
        max_frame_bytes: usize,
    },
    /// The serialize type (top byte of the header field) is neither JSON (0) nor ROCKETMQ (1).
    #[error("unknown serialize type {serialize_type}")]
    UnknownSerializeType {
        /// The byte as sent.
        serialize_type: u8,
    },
    /// The header length runs past the end of the frame.
    #[error("header of {header_bytes} bytes does not fit a frame length of {length}")]
    HeaderLongerThanFrame {
        /// Claimed header length.
        header_bytes: usize,
        /// The frame's length field.
        length: i32,
    },
    /// The header is larger than [`FrameLimits::max_header_bytes`].
    #[error("header of {header_bytes} bytes exceeds the limit of {max_header_bytes}")]
    HeaderTooLarge {
        /// Claimed header length.
        header_bytes: usize,
        /// The limit in force.
        max_header_bytes: usize,
    },
    /// The frame was well-formed but its header did not decode. The frame has been consumed,
    /// so the stream is still in step.
    #[error("frame header: {0}")]
    Header(#[from] HeaderCodecError),
}

/// A frame that cannot be encoded. The output buffer is left as it was.
#[derive(Debug, thiserror::Error)]
pub enum FrameEncodeError {
    /// The header could not be encoded.
    #[error("frame header: {0}")]
    Header(#[from] HeaderCodecError),
    /// The header does not fit the 24-bit header-length field.
    #[error("header of {header_bytes} bytes does not fit the 24-bit header length")]
    HeaderTooLarge {
        /// Encoded header length.
        header_bytes: usize,
    },
    /// The frame does not fit the int32 length field.
    #[error(
        "frame of {header_bytes} header and {body_bytes} body bytes does not fit the int32 length"
    )]
    FrameTooLarge {
        /// Encoded header length.
        header_bytes: usize,
        /// Body length.
        body_bytes: usize,
    },
}

/// What the 8-byte prefix of a frame says, once validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FramePrefix {
    /// Whole frame size on the wire, length field included.
    pub frame_bytes: usize,
    /// Serialization of the header.
    pub serialize_type: SerializeType,
    /// Header length.
    pub header_bytes: usize,
}

impl FramePrefix {
    /// Body length: what the frame holds after the header.
    pub fn body_bytes(&self) -> usize {
        self.frame_bytes - FRAME_PREFIX_BYTES - self.header_bytes
    }
}

fn be_i32(buf: &[u8], at: usize) -> Option<i32> {
    let bytes = buf.get(at..at.checked_add(4)?)?;
    let mut word = [0u8; 4];
    word.copy_from_slice(bytes);
    Some(i32::from_be_bytes(word))
}

/// Validates the prefix at the start of `buf` without consuming anything.
///
/// `Ok(None)` while fewer than 8 bytes are there; a length field alone (4 bytes or more) is
/// already checked. Lets a connection learn how many bytes the next frame needs, after the
/// limits have accepted the claim.
pub fn peek_frame_prefix(
    buf: &[u8],
    limits: &FrameLimits,
) -> Result<Option<FramePrefix>, FrameError> {
    let Some(length) = be_i32(buf, 0) else {
        return Ok(None);
    };
    let length_bytes =
        usize::try_from(length).map_err(|_| FrameError::NegativeLength { length })?;
    if length_bytes < 4 {
        return Err(FrameError::LengthTooSmall { length });
    }
    // Cannot overflow: length_bytes <= i32::MAX.
    let frame_bytes = LENGTH_FIELD_BYTES + length_bytes;
    if frame_bytes > limits.max_frame_bytes {
        return Err(FrameError::FrameTooLarge {
            frame_bytes,
            max_frame_bytes: limits.max_frame_bytes,
        });
    }
    let Some(header_field) = be_i32(buf, LENGTH_FIELD_BYTES) else {
        return Ok(None);
    };
    let header_field = header_field as u32;
    let serialize_type_byte = (header_field >> 24) as u8;
    let serialize_type =
        SerializeType::from_u8(serialize_type_byte).ok_or(FrameError::UnknownSerializeType {
            serialize_type: serialize_type_byte,
        })?;
    let header_bytes = (header_field & 0x00FF_FFFF) as usize;
    if header_bytes > length_bytes - 4 {
        return Err(FrameError::HeaderLongerThanFrame {
            header_bytes,
            length,
        });
    }
    if header_bytes > limits.max_header_bytes {
        return Err(FrameError::HeaderTooLarge {
            header_bytes,
            max_header_bytes: limits.max_header_bytes,
        });
    }
    Ok(Some(FramePrefix {
        frame_bytes,
        serialize_type,
        header_bytes,
    }))
}

/// Takes the next whole frame off the front of a connection's read buffer.
///
/// `Ok(None)` while the frame is incomplete (nothing is consumed or reserved; the prefix is
/// validated as soon as its bytes are there). On a prefix error nothing is consumed and the
/// connection should be closed. On [`FrameError::Header`] the frame has been consumed. The
/// returned body shares the buffer's memory: no copy.
pub fn decode_frame(
    buf: &mut BytesMut,
    limits: &FrameLimits,
) -> Result<Option<RemotingCommand>, FrameError> {
    let Some(prefix) = peek_frame_prefix(buf, limits)? else {
        return Ok(None);
    };
    if buf.len() < prefix.frame_bytes {
        return Ok(None);
    }
    let frame = buf.split_to(prefix.frame_bytes).freeze();
    let body_start = FRAME_PREFIX_BYTES + prefix.header_bytes;
    // The prefix check guarantees body_start <= frame_bytes; `get` keeps that a non-panic.
    let header =
        frame
            .get(FRAME_PREFIX_BYTES..body_start)
            .ok_or(FrameError::HeaderLongerThanFrame {
                header_bytes: prefix.header_bytes,
                length: i32::MAX,
            })?;
    let mut command = decode_header(prefix.serialize_type, header)?;
    if body_start < frame.len() {
        command.body = frame.slice(body_start..);
    }
    Ok(Some(command))
}

/// Appends `command` as a whole frame (prefix, header, body) to `out`.
pub fn encode_frame(
    command: &RemotingCommand,
    serialize_type: SerializeType,
    out: &mut BytesMut,
) -> Result<(), FrameEncodeError> {
    encode_frame_prefix(command, command.body.len(), serialize_type, out)?;
    out.extend_from_slice(&command.body);
    Ok(())
}

/// Appends the length, header field and header of a frame whose `body_len` body bytes the
/// caller sends separately (sendfile-style pull responses). `command.body` is neither written
/// nor counted.
pub fn encode_frame_prefix(
    command: &RemotingCommand,
    body_len: usize,
    serialize_type: SerializeType,
    out: &mut BytesMut,
) -> Result<(), FrameEncodeError> {
    let start = out.len();
    out.put_u64(0); // length and header field, patched once the header length is known
    let result = encode_header(serialize_type, command, out)
        .map_err(FrameEncodeError::from)
        .and_then(|()| {
            let header_bytes = out.len() - start - FRAME_PREFIX_BYTES;
            patch_prefix(out, start, header_bytes, body_len, serialize_type)
        });
    if result.is_err() {
        out.truncate(start);
    }
    result
}

fn patch_prefix(
    out: &mut BytesMut,
    start: usize,
    header_bytes: usize,
    body_len: usize,
    serialize_type: SerializeType,
) -> Result<(), FrameEncodeError> {
    if header_bytes > MAX_HEADER_FIELD_BYTES {
        return Err(FrameEncodeError::HeaderTooLarge { header_bytes });
    }
    let too_large = FrameEncodeError::FrameTooLarge {
        header_bytes,
        body_bytes: body_len,
    };
    let length = (4 + header_bytes)
        .checked_add(body_len)
        .and_then(|n| i32::try_from(n).ok())
        .ok_or(too_large)?;
    // header_bytes < 2^24, so it fits the low 24 bits of a u32.
    let header_field = (u32::from(serialize_type.as_u8()) << 24) | header_bytes as u32;
    let mut prefix = [0u8; FRAME_PREFIX_BYTES];
    prefix[..4].copy_from_slice(&length.to_be_bytes());
    prefix[4..].copy_from_slice(&header_field.to_be_bytes());
    let slot = out.get_mut(start..start + FRAME_PREFIX_BYTES);
    debug_assert!(
        slot.is_some(),
        "the prefix placeholder was written at `start`"
    );
    if let Some(slot) = slot {
        slot.copy_from_slice(&prefix);
    }
    Ok(())
}

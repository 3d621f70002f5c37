//! The two header serializations of a remoting frame (protocol.md §1.3, §1.4): JSON
//! ([`json`]) and ROCKETMQ binary ([`binary`]), behind one pair of functions that
//! [`crate::frame`] calls with the serialize type found in the frame.
//!
//! A header is a [`RemotingCommand`] without its body: decoders return one with an empty
//! body, encoders ignore the body. Decoders take peer bytes and never panic; every failure
//! is a typed error that keeps its cause.

pub mod binary;
pub mod json;

use bytes::BytesMut;

use crate::command::RemotingCommand;

pub use binary::BinaryHeaderError;
pub use json::JsonHeaderError;

/// Which header serialization a frame uses: the top byte of the frame's header-length field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum SerializeType {
    /// fastjson text (protocol.md §1.3); what Java clients and brokers use by default.
    Json = 0,
    /// `RocketMQSerializable` binary (protocol.md §1.4).
    RocketMq = 1,
}

impl SerializeType {
    /// The serialize type for the top byte of a frame's header field, if known.
    pub fn from_u8(code: u8) -> Option<Self> {
        match code {
            0 => Some(SerializeType::Json),
            1 => Some(SerializeType::RocketMq),
            _ => None,
        }
    }

    /// The wire byte of this serialize type.
    pub fn as_u8(self) -> u8 {
        self as u8
    }
}

/// A header that could not be decoded or encoded, by serialization.
#[derive(Debug, thiserror::Error)]
pub enum HeaderCodecError {
    /// The JSON header failed.
    #[error("JSON header: {0}")]
    Json(#[from] JsonHeaderError),
    /// The ROCKETMQ binary header failed.
    #[error("ROCKETMQ binary header: {0}")]
    Binary(#[from] BinaryHeaderError),
}

/// Decodes a header of serialize type `serialize_type` from exactly the header bytes.
/// The returned command has an empty body.
pub fn decode_header(
    serialize_type: SerializeType,
    header: &[u8],
) -> Result<RemotingCommand, HeaderCodecError> {
    Ok(match serialize_type {
        SerializeType::Json => json::decode(header)?,
        SerializeType::RocketMq => binary::decode(header)?,
    })
}

/// Appends the header of `command` (not its body) to `out` in serialize type
/// `serialize_type`. On error `out` may hold a partial header; [`crate::frame`] truncates it.
pub fn encode_header(
    serialize_type: SerializeType,
    command: &RemotingCommand,
    out: &mut BytesMut,
) -> Result<(), HeaderCodecError> {
    match serialize_type {
        SerializeType::Json => json::encode(command, out)?,
        SerializeType::RocketMq => binary::encode(command, out)?,
    }
    Ok(())
}

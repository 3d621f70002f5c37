//! The logical remoting command: what a frame's header and body mean, independent of
//! which header serialization carried them (protocol.md §1.2).

use std::collections::BTreeMap;

use bytes::Bytes;

/// The "custom header" map. Every value is a string on the wire (protocol.md §1.5).
/// Ordered so that encodings are deterministic.
pub type ExtFields = BTreeMap<String, String>;

/// Flag bit 0: this command is a response.
pub const FLAG_RESPONSE: i32 = 0x1;
/// Flag bit 1: this request is oneway and must never be answered.
pub const FLAG_ONEWAY: i32 = 0x2;

/// `version` ringmq puts in every command it writes: `MQVersion.V5_3_3` (protocol.md §1.6).
pub const RINGMQ_VERSION: i32 = 479;

/// A decoded remoting command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemotingCommand {
    pub code: i32,
    pub language: LanguageCode,
    pub version: i32,
    pub opaque: i32,
    pub flag: i32,
    pub remark: Option<String>,
    pub ext_fields: ExtFields,
    /// Empty when the frame carried no body.
    pub body: Bytes,
}

/// Language of the sender (protocol.md §1.2). Unknown values are kept, not rejected:
/// clients do not check it and neither do we.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LanguageCode {
    Java,
    Cpp,
    Dotnet,
    Python,
    Delphi,
    Erlang,
    Ruby,
    Other,
    Http,
    Go,
    Php,
    Oms,
    Rust,
    NodeJs,
    /// A code this table does not know, kept as sent.
    Unknown(u8),
}

//! The logical remoting command: what a frame's header and body mean, independent of
//! which header serialization carried them (protocol.md §1.2).
//!
//! This module owns the in-memory shape only; the bytes live in [`crate::header`] (the two
//! header serializations) and [`crate::frame`] (the outer length-prefixed frame).
//! Invariant kept by the constructors here: a response echoes its request's `opaque` and
//! has [`FLAG_RESPONSE`] set; everything ringmq writes carries [`RINGMQ_VERSION`] and
//! [`RINGMQ_LANGUAGE`].

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

/// `language` ringmq puts in every command it writes.
///
/// `JAVA`, not `RUST`: Java clients before 5.x have no `RUST` constant in their
/// `LanguageCode` enum, and fastjson then fails (or nulls the field) when it meets the name.
/// The Java broker answers with `JAVA`, and clients do not look at the value otherwise.
pub const RINGMQ_LANGUAGE: LanguageCode = LanguageCode::Java;

/// A decoded remoting command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemotingCommand {
    /// Request code for a request, response code for a response (protocol.md §2).
    pub code: i32,
    /// Language of the sender; informational only.
    pub language: LanguageCode,
    /// Ordinal of the sender's `MQVersion.Version` (protocol.md §1.6).
    pub version: i32,
    /// Request id; a response echoes its request's value.
    pub opaque: i32,
    /// Bit field: [`FLAG_RESPONSE`], [`FLAG_ONEWAY`].
    pub flag: i32,
    /// Free text, usually an error message. `None` and `Some("")` are the same thing
    /// to the binary header (both travel as length 0 and decode as `None`).
    pub remark: Option<String>,
    /// The custom header.
    pub ext_fields: ExtFields,
    /// Empty when the frame carried no body.
    pub body: Bytes,
}

impl RemotingCommand {
    /// A request as ringmq writes it: `opaque` 0 (the caller assigns the real one), no
    /// flags, no remark, no body.
    pub fn request(code: i32, ext_fields: ExtFields) -> Self {
        Self {
            code,
            language: RINGMQ_LANGUAGE,
            version: RINGMQ_VERSION,
            opaque: 0,
            flag: 0,
            remark: None,
            ext_fields,
            body: Bytes::new(),
        }
    }

    /// The response to `request` with response code `code`: same opaque, response flag set,
    /// empty extFields and body (fill them in with the `with_*` methods or the fields).
    pub fn response_to(request: &RemotingCommand, code: i32) -> Self {
        Self {
            code,
            language: RINGMQ_LANGUAGE,
            version: RINGMQ_VERSION,
            opaque: request.opaque,
            flag: FLAG_RESPONSE,
            remark: None,
            ext_fields: ExtFields::new(),
            body: Bytes::new(),
        }
    }

    /// Sets the remark.
    #[must_use]
    pub fn with_remark(mut self, remark: impl Into<String>) -> Self {
        self.remark = Some(remark.into());
        self
    }

    /// Sets the body.
    #[must_use]
    pub fn with_body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    /// Replaces the extFields.
    #[must_use]
    pub fn with_ext_fields(mut self, ext_fields: ExtFields) -> Self {
        self.ext_fields = ext_fields;
        self
    }

    /// Sets the opaque (request id).
    #[must_use]
    pub fn with_opaque(mut self, opaque: i32) -> Self {
        self.opaque = opaque;
        self
    }

    /// Marks a request as oneway (no response may be sent).
    #[must_use]
    pub fn oneway(mut self) -> Self {
        self.flag |= FLAG_ONEWAY;
        self
    }

    /// Flag bit 0: this is a response.
    pub fn is_response(&self) -> bool {
        self.flag & FLAG_RESPONSE != 0
    }

    /// Flag bit 1: this is a oneway request. Some clients send oneway requests without the
    /// bit (protocol.md §13.4), so its absence does not mean an answer is awaited.
    pub fn is_oneway(&self) -> bool {
        self.flag & FLAG_ONEWAY != 0
    }

    /// The extFields value under `key`, if present.
    pub fn ext(&self, key: &str) -> Option<&str> {
        self.ext_fields.get(key).map(String::as_str)
    }
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

/// Enum names by wire byte (the Java enum's ordinal order).
const LANGUAGE_NAMES: [&str; 14] = [
    "JAVA", "CPP", "DOTNET", "PYTHON", "DELPHI", "ERLANG", "RUBY", "OTHER", "HTTP", "GO", "PHP",
    "OMS", "RUST", "NODE_JS",
];

impl LanguageCode {
    /// The language for a wire byte; codes outside the table become [`LanguageCode::Unknown`].
    pub fn from_u8(code: u8) -> Self {
        match code {
            0 => LanguageCode::Java,
            1 => LanguageCode::Cpp,
            2 => LanguageCode::Dotnet,
            3 => LanguageCode::Python,
            4 => LanguageCode::Delphi,
            5 => LanguageCode::Erlang,
            6 => LanguageCode::Ruby,
            7 => LanguageCode::Other,
            8 => LanguageCode::Http,
            9 => LanguageCode::Go,
            10 => LanguageCode::Php,
            11 => LanguageCode::Oms,
            12 => LanguageCode::Rust,
            13 => LanguageCode::NodeJs,
            other => LanguageCode::Unknown(other),
        }
    }

    /// The wire byte of this language (the binary header's field, the enum ordinal).
    pub fn as_u8(self) -> u8 {
        match self {
            LanguageCode::Java => 0,
            LanguageCode::Cpp => 1,
            LanguageCode::Dotnet => 2,
            LanguageCode::Python => 3,
            LanguageCode::Delphi => 4,
            LanguageCode::Erlang => 5,
            LanguageCode::Ruby => 6,
            LanguageCode::Other => 7,
            LanguageCode::Http => 8,
            LanguageCode::Go => 9,
            LanguageCode::Php => 10,
            LanguageCode::Oms => 11,
            LanguageCode::Rust => 12,
            LanguageCode::NodeJs => 13,
            LanguageCode::Unknown(code) => code,
        }
    }

    /// The Java enum name (`"JAVA"`, `"NODE_JS"`, …) used by the JSON header;
    /// `None` for a code the table does not know.
    pub fn name(self) -> Option<&'static str> {
        LANGUAGE_NAMES.get(usize::from(self.as_u8())).copied()
    }

    /// The language for a Java enum name, exact and case-sensitive as fastjson matches it.
    pub fn from_name(name: &str) -> Option<Self> {
        let code = LANGUAGE_NAMES.iter().position(|n| *n == name)?;
        u8::try_from(code).ok().map(Self::from_u8)
    }
}

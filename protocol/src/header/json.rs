//! The JSON header (serializeType 0), protocol.md §1.3: a fastjson object such as
//!
//! ```text
//! {"code":34,"extFields":{"k":"v"},"flag":0,"language":"JAVA","opaque":12,"remark":"...","serializeTypeCurrentRPC":"JSON","version":479}
//! ```
//!
//! Decoding is lenient the way fastjson is, because real clients differ (protocol.md §13):
//! key order does not matter and unknown keys are skipped; `remark` and `extFields` may be
//! null or missing; `code`/`opaque`/`flag`/`version` may be numbers or numeric strings;
//! `language` may be the enum name or its number; extFields values may be any scalar and are
//! turned into the text Java's `toString` gives (`3`, `-1`, `false`), null values dropped.
//! A key that appears twice keeps its last value. Known divergence from fastjson, for values
//! no client sends: a fractional number prints in Rust's shortest form (`1.5`, `1e21`), an
//! integer beyond 64 bits goes through `f64`, and a nested object/array value is kept as its
//! compact JSON text.
//!
//! Encoding writes what the Java broker writes, keys in fastjson's alphabetical order, always
//! an `extFields` object (`{}` when empty: some clients crash without one) whose values are
//! all strings, and no `remark` key when there is none. It streams straight into the output
//! buffer through serde's derive; no intermediate `serde_json::Value` is built.

use std::cell::Cell;
use std::fmt;

use bytes::{BufMut, BytesMut};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use crate::command::{ExtFields, LanguageCode, RemotingCommand};

/// A JSON header that could not be decoded or encoded.
#[derive(Debug, thiserror::Error)]
pub enum JsonHeaderError {
    /// The header bytes are not UTF-8 (JSON text must be).
    #[error("JSON header is not UTF-8")]
    InvalidUtf8(#[source] std::str::Utf8Error),
    /// The header is valid text but does not start with `{`.
    #[error("JSON header is not an object")]
    NotAnObject,
    /// The header is not well-formed JSON (syntax error or cut short).
    #[error("JSON header is malformed")]
    Malformed(#[source] serde_json::Error),
    /// The JSON is well-formed but a field has a value we cannot use (e.g. a non-numeric
    /// `code`, an `opaque` outside i32, an `extFields` that is not an object). The source
    /// says what the value was and where.
    #[error("JSON header field `{field}` has an unusable value: expected {expected}")]
    InvalidField {
        /// The header key whose value was refused.
        field: &'static str,
        /// The kind of value that key takes.
        expected: &'static str,
        #[source]
        source: serde_json::Error,
    },
    /// Writing the header failed (cannot happen with an in-memory buffer; kept typed).
    #[error("JSON header could not be written")]
    Encode(#[source] serde_json::Error),
}

/// Decodes a JSON header from exactly its bytes. The returned command has an empty body.
pub fn decode(header: &[u8]) -> Result<RemotingCommand, JsonHeaderError> {
    let text = std::str::from_utf8(header).map_err(JsonHeaderError::InvalidUtf8)?;
    let first = text
        .trim_start_matches([' ', '\t', '\n', '\r'])
        .as_bytes()
        .first();
    if first != Some(&b'{') {
        return Err(JsonHeaderError::NotAnObject);
    }
    // serde's error knows the value and position but not which key it belonged to: the
    // visitor notes the key it is decoding, so the error can name it.
    let field_being_read = Cell::new(FieldKind::HEADER);
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let parsed = HeaderSeed(&field_being_read)
        .deserialize(&mut deserializer)
        .and_then(|header| deserializer.end().map(|()| header))
        .map_err(|e| {
            if e.is_data() {
                let FieldKind { field, expected } = field_being_read.get();
                JsonHeaderError::InvalidField {
                    field,
                    expected,
                    source: e,
                }
            } else {
                JsonHeaderError::Malformed(e)
            }
        })?;
    Ok(RemotingCommand {
        code: parsed.code,
        language: parsed.language,
        version: parsed.version,
        opaque: parsed.opaque,
        flag: parsed.flag,
        remark: parsed.remark,
        ext_fields: parsed.ext_fields,
        body: bytes::Bytes::new(),
    })
}

/// Appends the JSON header of `command` (not its body) to `out`.
pub fn encode(command: &RemotingCommand, out: &mut BytesMut) -> Result<(), JsonHeaderError> {
    let header = JsonHeaderOut {
        code: command.code,
        ext_fields: &command.ext_fields,
        flag: command.flag,
        language: LanguageOut(command.language),
        opaque: command.opaque,
        remark: command.remark.as_deref(),
        serialize_type_current_rpc: "JSON",
        version: command.version,
    };
    // One reservation instead of growth steps: fixed keys and numbers take ~140 bytes,
    // each ext entry its text plus 6 bytes of quotes, colon and comma (escapes aside).
    let ext_bytes: usize = command
        .ext_fields
        .iter()
        .map(|(k, v)| k.len() + v.len() + 6)
        .sum();
    let remark_bytes = command.remark.as_ref().map_or(0, |r| r.len() + 12);
    out.reserve(144 + ext_bytes + remark_bytes);
    serde_json::to_writer(out.writer(), &header).map_err(JsonHeaderError::Encode)
}

/// The header as written; field order is the output order (fastjson's alphabetical one).
#[derive(Serialize)]
struct JsonHeaderOut<'a> {
    code: i32,
    #[serde(rename = "extFields")]
    ext_fields: &'a ExtFields,
    flag: i32,
    language: LanguageOut,
    opaque: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    remark: Option<&'a str>,
    #[serde(rename = "serializeTypeCurrentRPC")]
    serialize_type_current_rpc: &'static str,
    version: i32,
}

/// A language as its enum name, or as its number when the table has no name for it.
struct LanguageOut(LanguageCode);

impl Serialize for LanguageOut {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0.name() {
            Some(name) => serializer.serialize_str(name),
            None => serializer.serialize_u8(self.0.as_u8()),
        }
    }
}

/// The header as read. Missing fields take Java's defaults (0, `JAVA`, null).
struct JsonHeaderIn {
    code: i32,
    language: LanguageCode,
    version: i32,
    opaque: i32,
    flag: i32,
    remark: Option<String>,
    ext_fields: ExtFields,
}

/// A header key and the kind of value it takes, for [`JsonHeaderError::InvalidField`].
#[derive(Debug, Clone, Copy)]
struct FieldKind {
    field: &'static str,
    expected: &'static str,
}

impl FieldKind {
    /// Before any key: the header itself.
    const HEADER: FieldKind = FieldKind {
        field: "(header)",
        expected: "an object",
    };
    const INT: &'static str = "an int or a numeric string";

    fn of(key: &Key) -> FieldKind {
        let (field, expected) = match key {
            Key::Code => ("code", Self::INT),
            Key::Version => ("version", Self::INT),
            Key::Opaque => ("opaque", Self::INT),
            Key::Flag => ("flag", Self::INT),
            Key::Language => ("language", "a language name or number"),
            Key::Remark => ("remark", "a string or another JSON scalar"),
            Key::ExtFields => ("extFields", "an object or null"),
            Key::Other => ("(unknown key)", "any JSON value"),
        };
        FieldKind { field, expected }
    }
}

/// The keys we read; everything else is skipped.
enum Key {
    Code,
    Language,
    Version,
    Opaque,
    Flag,
    Remark,
    ExtFields,
    Other,
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a header key")
            }
            fn visit_str<E: de::Error>(self, key: &str) -> Result<Key, E> {
                Ok(match key {
                    "code" => Key::Code,
                    "language" => Key::Language,
                    "version" => Key::Version,
                    "opaque" => Key::Opaque,
                    "flag" => Key::Flag,
                    "remark" => Key::Remark,
                    "extFields" => Key::ExtFields,
                    _ => Key::Other,
                })
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

/// Decodes a [`JsonHeaderIn`], noting in the cell the key whose value it is reading.
struct HeaderSeed<'a>(&'a Cell<FieldKind>);

impl<'de> DeserializeSeed<'de> for HeaderSeed<'_> {
    type Value = JsonHeaderIn;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<JsonHeaderIn, D::Error> {
        struct HeaderVisitor<'a>(&'a Cell<FieldKind>);
        impl<'de> Visitor<'de> for HeaderVisitor<'_> {
            type Value = JsonHeaderIn;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a remoting header object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<JsonHeaderIn, A::Error> {
                let mut header = JsonHeaderIn {
                    code: 0,
                    language: LanguageCode::Java,
                    version: 0,
                    opaque: 0,
                    flag: 0,
                    remark: None,
                    ext_fields: ExtFields::new(),
                };
                while let Some(key) = map.next_key::<Key>()? {
                    self.0.set(FieldKind::of(&key));
                    match key {
                        Key::Code => header.code = map.next_value_seed(LenientI32("code"))?,
                        Key::Version => {
                            header.version = map.next_value_seed(LenientI32("version"))?;
                        }
                        Key::Opaque => {
                            header.opaque = map.next_value_seed(LenientI32("opaque"))?;
                        }
                        Key::Flag => header.flag = map.next_value_seed(LenientI32("flag"))?,
                        Key::Language => header.language = map.next_value_seed(LenientLanguage)?,
                        Key::Remark => header.remark = map.next_value_seed(ScalarText)?,
                        Key::ExtFields => header.ext_fields = map.next_value_seed(LenientExt)?,
                        Key::Other => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(header)
            }
        }
        deserializer.deserialize_map(HeaderVisitor(self.0))
    }
}

/// An int field that may arrive as a number or a numeric string; null means 0.
struct LenientI32(&'static str);

impl<'de> DeserializeSeed<'de> for LenientI32 {
    type Value = i32;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<i32, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl Visitor<'_> for LenientI32 {
    type Value = i32;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "`{}` as an int or a numeric string", self.0)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<i32, E> {
        i32::try_from(v).map_err(|_| E::custom(format_args!("`{}` {v} is outside i32", self.0)))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<i32, E> {
        i32::try_from(v).map_err(|_| E::custom(format_args!("`{}` {v} is outside i32", self.0)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<i32, E> {
        v.trim()
            .parse()
            .map_err(|_| E::custom(format_args!("`{}` {v:?} is not an i32", self.0)))
    }
    fn visit_unit<E: de::Error>(self) -> Result<i32, E> {
        Ok(0)
    }
}

/// `language` as an enum name or number. Names and codes we do not know are kept as
/// `OTHER`/[`LanguageCode::Unknown`]: the field is informational and never worth a rejection.
struct LenientLanguage;

impl<'de> DeserializeSeed<'de> for LenientLanguage {
    type Value = LanguageCode;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<LanguageCode, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl Visitor<'_> for LenientLanguage {
    type Value = LanguageCode;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("`language` as a name or a number")
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<LanguageCode, E> {
        Ok(u8::try_from(v).map_or(LanguageCode::Other, LanguageCode::from_u8))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<LanguageCode, E> {
        Ok(u8::try_from(v).map_or(LanguageCode::Other, LanguageCode::from_u8))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<LanguageCode, E> {
        if let Some(language) = LanguageCode::from_name(v) {
            return Ok(language);
        }
        Ok(v.parse::<u8>()
            .map_or(LanguageCode::Other, LanguageCode::from_u8))
    }
    fn visit_unit<E: de::Error>(self) -> Result<LanguageCode, E> {
        Ok(LanguageCode::Java)
    }
}

/// A value that should be a string but may be any scalar: the text Java's `toString`
/// prints for it. Null is `None`; an object or array is kept as compact JSON text.
struct ScalarText;

impl<'de> DeserializeSeed<'de> for ScalarText {
    type Value = Option<String>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ScalarText {
    type Value = Option<String>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string or another JSON scalar")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Some(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Some(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Some(v.to_string()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Some(v.to_string()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        // `{:?}` keeps a trailing `.0` as Java's Double.toString does (`100.0`).
        Ok(Some(format!("{v:?}")))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Some(if v { "true" } else { "false" }.to_owned()))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        let value = serde_json::Value::deserialize(de::value::MapAccessDeserializer::new(map))?;
        Ok(Some(value.to_string()))
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        let value = serde_json::Value::deserialize(de::value::SeqAccessDeserializer::new(seq))?;
        Ok(Some(value.to_string()))
    }
}

/// `extFields`: an object (values coerced by [`ScalarText`], nulls dropped) or null.
struct LenientExt;

impl<'de> DeserializeSeed<'de> for LenientExt {
    type Value = ExtFields;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<ExtFields, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for LenientExt {
    type Value = ExtFields;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("`extFields` as an object or null")
    }
    fn visit_unit<E: de::Error>(self) -> Result<ExtFields, E> {
        Ok(ExtFields::new())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ExtFields, A::Error> {
        let mut ext = ExtFields::new();
        while let Some(key) = map.next_key::<String>()? {
            match map.next_value_seed(ScalarText)? {
                Some(value) => {
                    ext.insert(key, value);
                }
                // A null value is an absent field to Java; a later duplicate null removes
                // an earlier value the same way fastjson's map put would.
                None => {
                    ext.remove(&key);
                }
            }
        }
        Ok(ext)
    }
}

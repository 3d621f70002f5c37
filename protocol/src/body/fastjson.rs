//! A small lenient JSON reader for what Java's fastjson writes, and the one
//! non-standard form we must write back.
//!
//! RocketMQ's Java side serialises bodies and config files with fastjson, which
//! departs from JSON in ways a peer of Java brokers, name servers and admin tools
//! has to accept:
//!
//! - map keys that are numbers, written **unquoted** (`{0:"10.0.0.1:10911"}`);
//! - map keys that are **objects** (`{{"brokerName":"b","queueId":0,"topic":"T"}:123}`);
//! - pretty output with tabs and newlines, keys in any order.
//!
//! Design: [`parse`] builds a [`Value`] tree whose objects are ordered
//! `Vec<(Value, Value)>`, so keys may be any value. Typed bodies are then read
//! straight from the tree through serde: `&Value` implements
//! [`serde::Deserializer`], so a `BTreeMap<i64, String>` accepts `0` and `"0"` as
//! keys and a `BTreeMap<MessageQueue, OffsetWrapper>` accepts object keys. The
//! deserializer also coerces scalars the way fastjson does (see
//! [`Value`]'s `Deserializer` impl): numeric strings into integer fields, numbers
//! into string fields, `null` into empty sequences and maps.
//!
//! Invariants: nesting is bounded by [`MAX_DEPTH`] (a `[[[[…` bomb is a typed
//! [`ParseErrorKind::DepthExceeded`], never a stack overflow); no input can make
//! the reader panic; the whole input must be one value (trailing bytes other
//! than whitespace are an error).
//!
//! Writing: ordinary bodies are written with `serde_json` (standard JSON, quoted
//! keys). [`write_object_keyed_map`] writes the object-keyed map form that
//! `mqadmin` requires for `ConsumeStats`, and [`Value::write_fastjson`] writes any
//! tree back as fastjson would (number keys unquoted).

use std::fmt;

use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, Visitor};
use serde::Serialize;
use thiserror::Error;

/// Deepest nesting of arrays and objects (object keys included) accepted.
/// RocketMQ bodies nest at most about 6 levels; 128 leaves room and keeps the
/// recursion far from any thread's stack limit.
pub const MAX_DEPTH: usize = 128;

/// A parsed fastjson value. Objects keep their entries in input order and allow
/// non-string keys; duplicate keys are kept as they appear.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// Any number.
    Number(Number),
    /// A string (double- or single-quoted in the input), or a bare identifier key.
    String(String),
    /// `[…]`.
    Array(Vec<Value>),
    /// `{…}` with keys of any kind, in input order.
    Object(Vec<(Value, Value)>),
}

/// A JSON number: integers stay exact, anything else is an `f64`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Number {
    /// An integer that fits `i64`.
    I64(i64),
    /// A non-negative integer above `i64::MAX` that fits `u64`.
    U64(u64),
    /// A number with a fraction or exponent, or an integer too large for `u64`.
    F64(f64),
}

impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Number::I64(n) => write!(f, "{n}"),
            Number::U64(n) => write!(f, "{n}"),
            Number::F64(x) => write!(f, "{x}"),
        }
    }
}

/// Where and why the input is not fastjson.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("invalid fastjson at byte {offset}: {kind}")]
pub struct ParseError {
    /// Byte offset into the input where the problem was found.
    pub offset: usize,
    /// What was wrong.
    #[source]
    pub kind: ParseErrorKind,
}

/// The kinds of [`ParseError`].
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ParseErrorKind {
    /// The input ended inside a value.
    #[error("unexpected end of input")]
    UnexpectedEnd,
    /// A byte that cannot start or continue the expected token.
    #[error("unexpected byte 0x{0:02x}")]
    UnexpectedByte(u8),
    /// Arrays/objects nested deeper than the limit.
    #[error("nesting deeper than {max} levels")]
    DepthExceeded {
        /// The limit, [`MAX_DEPTH`].
        max: usize,
    },
    /// A backslash escape that fastjson does not define.
    #[error("invalid escape sequence")]
    InvalidEscape,
    /// A malformed number.
    #[error("invalid number")]
    InvalidNumber,
    /// A string whose bytes are not UTF-8.
    #[error("string is not UTF-8")]
    InvalidUtf8(#[source] std::str::Utf8Error),
    /// Bytes after the top-level value.
    #[error("trailing characters after the value")]
    TrailingCharacters,
}

/// The tree parsed but does not have the shape the target type needs
/// (missing field, wrong type, unknown enum name, …).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("{message}")]
pub struct ConvertError {
    message: String,
}

impl de::Error for ConvertError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        ConvertError {
            message: msg.to_string(),
        }
    }
}

/// Parsing or converting a fastjson document failed.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum FastjsonError {
    /// The bytes are not fastjson.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// The document does not fit the target type.
    #[error(transparent)]
    Convert(#[from] ConvertError),
}

/// Parses one fastjson (or standard JSON) document.
pub fn parse(input: &[u8]) -> Result<Value, ParseError> {
    let mut parser = Parser { input, pos: 0 };
    // A UTF-8 byte-order mark may lead a file written by an editor.
    if input.starts_with(&[0xEF, 0xBB, 0xBF]) {
        parser.pos = 3;
    }
    let value = parser.value(0)?;
    parser.skip_whitespace();
    if parser.pos < input.len() {
        return Err(parser.error(ParseErrorKind::TrailingCharacters));
    }
    Ok(value)
}

/// Reads a typed value from a parsed tree.
pub fn from_value<'de, T: de::Deserialize<'de>>(value: &'de Value) -> Result<T, ConvertError> {
    T::deserialize(value)
}

/// Parses `input` leniently and reads a typed value from it.
pub fn from_slice<T: DeserializeOwned>(input: &[u8]) -> Result<T, FastjsonError> {
    let value = parse(input)?;
    Ok(from_value(&value)?)
}

/// Writes `{key:value,…}` with each key written as its own JSON (an object for a
/// struct key). This is fastjson's encoding of a `Map` whose keys are objects,
/// which standard JSON cannot express and `mqadmin` requires for `offsetTable`.
pub fn write_object_keyed_map<'a, K, V, I>(
    out: &mut Vec<u8>,
    entries: I,
) -> Result<(), serde_json::Error>
where
    K: Serialize + 'a,
    V: Serialize + 'a,
    I: IntoIterator<Item = (&'a K, &'a V)>,
{
    out.push(b'{');
    for (index, (key, value)) in entries.into_iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        serde_json::to_writer(&mut *out, key)?;
        out.push(b':');
        serde_json::to_writer(&mut *out, value)?;
    }
    out.push(b'}');
    Ok(())
}

impl Value {
    /// The entry for string key `key` if this is an object (first match).
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Object(entries) => entries
                .iter()
                .find(|(k, _)| matches!(k, Value::String(s) if s == key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// Writes the tree compactly the way fastjson does by default: string keys
    /// quoted, number keys unquoted, object keys as objects. Non-finite floats
    /// are written as `null`.
    pub fn write_fastjson(&self, out: &mut Vec<u8>) {
        match self {
            Value::Null => out.extend_from_slice(b"null"),
            Value::Bool(true) => out.extend_from_slice(b"true"),
            Value::Bool(false) => out.extend_from_slice(b"false"),
            Value::Number(Number::F64(x)) if !x.is_finite() => out.extend_from_slice(b"null"),
            Value::Number(Number::F64(x)) => {
                // `{:?}` keeps a ".0" on integral floats so they read back as floats.
                out.extend_from_slice(format!("{x:?}").as_bytes());
            }
            Value::Number(n) => out.extend_from_slice(n.to_string().as_bytes()),
            Value::String(s) => write_json_string(out, s),
            Value::Array(items) => {
                out.push(b'[');
                for (index, item) in items.iter().enumerate() {
                    if index > 0 {
                        out.push(b',');
                    }
                    item.write_fastjson(out);
                }
                out.push(b']');
            }
            Value::Object(entries) => {
                out.push(b'{');
                for (index, (key, value)) in entries.iter().enumerate() {
                    if index > 0 {
                        out.push(b',');
                    }
                    key.write_fastjson(out);
                    out.push(b':');
                    value.write_fastjson(out);
                }
                out.push(b'}');
            }
        }
    }
}

fn write_json_string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            c if (c as u32) < 0x20 => {
                out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes());
            }
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out.push(b'"');
}

// ---------------------------------------------------------------------------
// Parser
// ---------------------------------------------------------------------------

struct Parser<'a> {
    input: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn error(&self, kind: ParseErrorKind) -> ParseError {
        ParseError {
            offset: self.pos,
            kind,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c) = self.peek() {
            self.pos += 1;
        }
    }

    /// The next non-whitespace byte, not consumed.
    fn peek_token(&mut self) -> Result<u8, ParseError> {
        self.skip_whitespace();
        self.peek()
            .ok_or_else(|| self.error(ParseErrorKind::UnexpectedEnd))
    }

    fn value(&mut self, depth: usize) -> Result<Value, ParseError> {
        match self.peek_token()? {
            b'{' => self.object(depth),
            b'[' => self.array(depth),
            quote @ (b'"' | b'\'') => Ok(Value::String(self.string(quote)?)),
            b'-' | b'0'..=b'9' => Ok(Value::Number(self.number()?)),
            b't' => self.literal(b"true", Value::Bool(true)),
            b'f' => self.literal(b"false", Value::Bool(false)),
            b'n' => self.literal(b"null", Value::Null),
            other => Err(self.error(ParseErrorKind::UnexpectedByte(other))),
        }
    }

    fn enter(&self, depth: usize) -> Result<usize, ParseError> {
        if depth >= MAX_DEPTH {
            return Err(self.error(ParseErrorKind::DepthExceeded { max: MAX_DEPTH }));
        }
        Ok(depth + 1)
    }

    fn literal(&mut self, word: &[u8], value: Value) -> Result<Value, ParseError> {
        let end = self.pos.saturating_add(word.len());
        match self.input.get(self.pos..end) {
            Some(found) if found == word => {
                self.pos = end;
                Ok(value)
            }
            Some(_) => Err(self.error(ParseErrorKind::UnexpectedByte(
                self.peek().unwrap_or_default(),
            ))),
            None => Err(self.error(ParseErrorKind::UnexpectedEnd)),
        }
    }

    fn array(&mut self, depth: usize) -> Result<Value, ParseError> {
        let depth = self.enter(depth)?;
        self.pos += 1; // '['
        let mut items = Vec::new();
        loop {
            if self.peek_token()? == b']' {
                self.pos += 1;
                return Ok(Value::Array(items));
            }
            items.push(self.value(depth)?);
            match self.peek_token()? {
                // A trailing comma before ']' is tolerated, as fastjson does.
                b',' => self.pos += 1,
                b']' => {}
                other => return Err(self.error(ParseErrorKind::UnexpectedByte(other))),
            }
        }
    }

    fn object(&mut self, depth: usize) -> Result<Value, ParseError> {
        let depth = self.enter(depth)?;
        self.pos += 1; // '{'
        let mut entries = Vec::new();
        loop {
            if self.peek_token()? == b'}' {
                self.pos += 1;
                return Ok(Value::Object(entries));
            }
            let key = self.key(depth)?;
            match self.peek_token()? {
                b':' => self.pos += 1,
                other => return Err(self.error(ParseErrorKind::UnexpectedByte(other))),
            }
            let value = self.value(depth)?;
            entries.push((key, value));
            match self.peek_token()? {
                b',' => self.pos += 1,
                b'}' => {}
                other => return Err(self.error(ParseErrorKind::UnexpectedByte(other))),
            }
        }
    }

    /// An object key: a string, a number, an object or array, or a bare
    /// identifier (fastjson's default `AllowUnQuotedFieldNames`).
    fn key(&mut self, depth: usize) -> Result<Value, ParseError> {
        match self.peek_token()? {
            b'a'..=b'z' | b'A'..=b'Z' | b'_' | b'$' => {
                let start = self.pos;
                while let Some(b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'$') = self.peek()
                {
                    self.pos += 1;
                }
                let ident = self.input.get(start..self.pos).unwrap_or_default();
                // Only ASCII bytes were taken, so this cannot fail.
                let ident = std::str::from_utf8(ident).map_err(|e| ParseError {
                    offset: start,
                    kind: ParseErrorKind::InvalidUtf8(e),
                })?;
                // fastjson reads these words as literals in key position too.
                Ok(match ident {
                    "null" => Value::Null,
                    "true" => Value::Bool(true),
                    "false" => Value::Bool(false),
                    _ => Value::String(ident.to_owned()),
                })
            }
            _ => self.value(depth),
        }
    }

    fn string(&mut self, quote: u8) -> Result<String, ParseError> {
        let start = self.pos;
        self.pos += 1; // opening quote
        let mut bytes = Vec::new();
        loop {
            let run_start = self.pos;
            while let Some(b) = self.peek() {
                if b == quote || b == b'\\' {
                    break;
                }
                self.pos += 1;
            }
            bytes.extend_from_slice(self.input.get(run_start..self.pos).unwrap_or_default());
            match self.peek() {
                None => return Err(self.error(ParseErrorKind::UnexpectedEnd)),
                Some(b'\\') => {
                    self.pos += 1;
                    self.escape(&mut bytes)?;
                }
                Some(_) => {
                    self.pos += 1; // closing quote
                    break;
                }
            }
        }
        String::from_utf8(bytes).map_err(|e| ParseError {
            offset: start,
            kind: ParseErrorKind::InvalidUtf8(e.utf8_error()),
        })
    }

    /// One escape after a backslash; appends its UTF-8 bytes.
    fn escape(&mut self, out: &mut Vec<u8>) -> Result<(), ParseError> {
        let Some(b) = self.peek() else {
            return Err(self.error(ParseErrorKind::UnexpectedEnd));
        };
        self.pos += 1;
        let c = match b {
            b'"' => '"',
            b'\'' => '\'',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            // fastjson also reads `\xHH` (a Latin-1 code point).
            b'x' => char::from_u32(self.hex(2)?).unwrap_or(char::REPLACEMENT_CHARACTER),
            b'u' => self.unicode_escape()?,
            _ => {
                self.pos -= 1;
                return Err(self.error(ParseErrorKind::InvalidEscape));
            }
        };
        let mut buf = [0u8; 4];
        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        Ok(())
    }

    /// `\uXXXX`, pairing surrogates; a lone surrogate becomes U+FFFD because a
    /// Rust string cannot hold it (Java's can).
    fn unicode_escape(&mut self) -> Result<char, ParseError> {
        let first = self.hex(4)?;
        if (0xD800..0xDC00).contains(&first) {
            let rest = self.input.get(self.pos..).unwrap_or_default();
            if rest.starts_with(b"\\u") {
                let saved = self.pos;
                self.pos += 2;
                let second = self.hex(4)?;
                if (0xDC00..0xE000).contains(&second) {
                    let code = 0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00);
                    return Ok(char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER));
                }
                // Not a low surrogate: leave it to be read as its own escape.
                self.pos = saved;
            }
            return Ok(char::REPLACEMENT_CHARACTER);
        }
        Ok(char::from_u32(first).unwrap_or(char::REPLACEMENT_CHARACTER))
    }

    fn hex(&mut self, digits: usize) -> Result<u32, ParseError> {
        let mut code = 0u32;
        for _ in 0..digits {
            let Some(b) = self.peek() else {
                return Err(self.error(ParseErrorKind::UnexpectedEnd));
            };
            let digit = char::from(b)
                .to_digit(16)
                .ok_or_else(|| self.error(ParseErrorKind::InvalidEscape))?;
            code = code * 16 + digit;
            self.pos += 1;
        }
        Ok(code)
    }

    fn number(&mut self) -> Result<Number, ParseError> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        let int_digits = self.digits();
        if int_digits == 0 {
            return Err(self.error(ParseErrorKind::InvalidNumber));
        }
        let mut is_float = false;
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if self.digits() == 0 {
                return Err(self.error(ParseErrorKind::InvalidNumber));
            }
            is_float = true;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return Err(self.error(ParseErrorKind::InvalidNumber));
            }
            is_float = true;
        }
        let text = self.input.get(start..self.pos).unwrap_or_default();
        // Only ASCII digits, signs, '.', 'e' were taken.
        let text = std::str::from_utf8(text).map_err(|e| ParseError {
            offset: start,
            kind: ParseErrorKind::InvalidUtf8(e),
        })?;
        // fastjson's WriteClassName adds a type suffix (`1L`, `1.5D`); skip it.
        if let Some(b'L' | b'S' | b'B' | b'F' | b'D') = self.peek() {
            self.pos += 1;
        }
        let invalid = || ParseError {
            offset: start,
            kind: ParseErrorKind::InvalidNumber,
        };
        if !is_float {
            if let Ok(n) = text.parse::<i64>() {
                return Ok(Number::I64(n));
            }
            if let Ok(n) = text.parse::<u64>() {
                return Ok(Number::U64(n));
            }
        }
        text.parse::<f64>().map(Number::F64).map_err(|_| invalid())
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
        self.pos - start
    }
}

// ---------------------------------------------------------------------------
// Deserializer over the tree
// ---------------------------------------------------------------------------

impl Value {
    fn unexpected(&self) -> de::Unexpected<'_> {
        match self {
            Value::Null => de::Unexpected::Unit,
            Value::Bool(b) => de::Unexpected::Bool(*b),
            Value::Number(Number::I64(n)) => de::Unexpected::Signed(*n),
            Value::Number(Number::U64(n)) => de::Unexpected::Unsigned(*n),
            Value::Number(Number::F64(x)) => de::Unexpected::Float(*x),
            Value::String(s) => de::Unexpected::Str(s),
            Value::Array(_) => de::Unexpected::Seq,
            Value::Object(_) => de::Unexpected::Map,
        }
    }
}

impl Number {
    fn visit<'de, V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConvertError> {
        match self {
            Number::I64(n) => visitor.visit_i64(n),
            Number::U64(n) => visitor.visit_u64(n),
            Number::F64(x) => visitor.visit_f64(x),
        }
    }
}

macro_rules! deserialize_integer {
    ($($method:ident)*) => {$(
        /// Integers also accept numeric strings (`"1795502332779"`), as fastjson does.
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConvertError> {
            if let Value::String(s) = self {
                let s = s.trim();
                if let Ok(n) = s.parse::<i64>() {
                    return visitor.visit_i64(n);
                }
                if let Ok(n) = s.parse::<u64>() {
                    return visitor.visit_u64(n);
                }
            }
            // An integral float (`3.0`) fills an integer field, as in fastjson.
            if let Value::Number(Number::F64(x)) = self {
                if x.fract() == 0.0 && *x >= -9.0e18 && *x <= 9.0e18 {
                    #[allow(clippy::cast_possible_truncation)] // range checked above
                    return visitor.visit_i64(*x as i64);
                }
            }
            self.deserialize_any(visitor)
        }
    )*};
}

/// Reads typed values from a parsed tree with fastjson's coercions:
///
/// - integer and float targets accept numeric strings; integers accept
///   integral floats (`3.0`);
/// - string targets accept numbers and booleans (their text), and `null` as `""`;
/// - `bool` accepts `"true"`/`"false"` and the numbers 0/1;
/// - sequence and map targets read `null` as empty; `Option` reads `null` as `None`;
/// - map keys are read with the same rules, so `{0:…}` and `{"0":…}` both fill
///   a map keyed by integers, and `{{…}:…}` fills a map keyed by a struct;
/// - unit enum variants are read from their name;
/// - structs are read only from objects.
///
/// Unknown object fields are ignored by serde's derive (no `deny_unknown_fields`
/// in this crate).
impl<'de> de::Deserializer<'de> for &'de Value {
    type Error = ConvertError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConvertError> {
        match self {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Number(n) => n.visit(visitor),
            Value::String(s) => visitor.visit_borrowed_str(s),
            Value::Array(items) => visitor.visit_seq(SeqAccess {
                items: items.iter(),
            }),
            Value::Object(entries) => visitor.visit_map(MapAccess {
                entries: entries.iter(),
                value: None,
            }),
        }
    }

    deserialize_integer!(
        deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_i128
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_u128
    );

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConvertError> {
        self.deserialize_f64(visitor)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConvertError> {
        if let Value::String(s) = self {
            if let Ok(x) = s.trim().parse::<f64>() {
                return visitor.visit_f64(x);
            }
        }
        self.deserialize_any(visitor)
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConvertError> {
        match self {
            Value::String(s) if s.trim().eq_ignore_ascii_case("true") => visitor.visit_bool(true),
            Value::String(s) if s.trim().eq_ignore_ascii_case("false") => visitor.visit_bool(false),
            Value::Number(Number::I64(0)) => visitor.visit_bool(false),
            Value::Number(Number::I64(1)) => visitor.visit_bool(true),
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConvertError> {
        self.deserialize_any(visitor)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConvertError> {
        match self {
            Value::Number(n) => visitor.visit_string(n.to_string()),
            Value::Bool(b) => visitor.visit_str(if *b { "true" } else { "false" }),
            // Java writes a null String field as `null`; read it as empty.
            Value::Null => visitor.visit_str(""),
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConvertError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConvertError> {
        self.deserialize_any(visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConvertError> {
        self.deserialize_any(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConvertError> {
        match self {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConvertError> {
        self.deserialize_any(visitor)
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, ConvertError> {
        self.deserialize_any(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, ConvertError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConvertError> {
        match self {
            Value::Null => visitor.visit_seq(SeqAccess { items: [].iter() }),
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, ConvertError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, ConvertError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConvertError> {
        match self {
            Value::Null => visitor.visit_map(MapAccess {
                entries: [].iter(),
                value: None,
            }),
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ConvertError> {
        // Only an object fills a struct (serde would also take an array).
        match self {
            Value::Object(_) => self.deserialize_any(visitor),
            _ => Err(de::Error::invalid_type(self.unexpected(), &visitor)),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ConvertError> {
        match self {
            Value::String(s) => {
                let access: de::value::StrDeserializer<'_, ConvertError> =
                    s.as_str().into_deserializer();
                visitor.visit_enum(access)
            }
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConvertError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(
        self,
        visitor: V,
    ) -> Result<V::Value, ConvertError> {
        visitor.visit_unit()
    }
}

struct SeqAccess<'de> {
    items: std::slice::Iter<'de, Value>,
}

impl<'de> de::SeqAccess<'de> for SeqAccess<'de> {
    type Error = ConvertError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, ConvertError> {
        match self.items.next() {
            Some(item) => seed.deserialize(item).map(Some),
            None => Ok(None),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

struct MapAccess<'de> {
    entries: std::slice::Iter<'de, (Value, Value)>,
    value: Option<&'de Value>,
}

impl<'de> de::MapAccess<'de> for MapAccess<'de> {
    type Error = ConvertError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, ConvertError> {
        match self.entries.next() {
            Some((key, value)) => {
                self.value = Some(value);
                seed.deserialize(key).map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, ConvertError> {
        match self.value.take() {
            Some(value) => seed.deserialize(value),
            None => Err(de::Error::custom("map value requested before its key")),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

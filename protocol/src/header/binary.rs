//! The ROCKETMQ binary header (serializeType 1, Java's `RocketMQSerializable`),
//! protocol.md §1.4. All integers big-endian:
//!
//! ```text
//! int16 code | u8 language | int16 version | int32 opaque | int32 flag
//! | int32 remarkLen | remark bytes
//! | int32 extLen    | extLen bytes of entries: int16 keyLen | key | int32 valLen | val
//! ```
//!
//! Decoding follows Java: a zero remark length is `None`; a zero-length key or value makes
//! its entry absent; a key seen twice keeps its last value (`FastCodesHeader` classes write
//! some keys twice); bytes after the ext region are ignored. Every length is checked against
//! the bytes that remain before anything is sliced, and a negative length is an error.
//! Encoding refuses, with an error rather than Java's silent `(short)` cast, a code or
//! version outside `i16` and a key longer than `i16::MAX` bytes; entries with an empty key
//! or value are left out since they would decode as absent anyway.

use bytes::{BufMut, BytesMut};

use crate::command::{ExtFields, LanguageCode, RemotingCommand};

/// Bytes of the fixed part: code, language, version, opaque, flag.
const FIXED_BYTES: usize = 2 + 1 + 2 + 4 + 4;

/// A binary header that could not be decoded or encoded.
#[derive(Debug, thiserror::Error)]
pub enum BinaryHeaderError {
    /// A field, or the bytes a length promised, run past the end of the header.
    #[error(
        "binary header truncated in {field}: needs {needed_bytes} bytes, {remaining_bytes} remain"
    )]
    Truncated {
        /// The field being read.
        field: &'static str,
        /// Bytes the field needs.
        needed_bytes: usize,
        /// Bytes left in the header (or in the ext region, for ext entries).
        remaining_bytes: usize,
    },
    /// A length prefix is negative.
    #[error("binary header {field} length is negative: {length}")]
    NegativeLength {
        /// The field whose length is negative.
        field: &'static str,
        /// The length as sent.
        length: i64,
    },
    /// A string is not UTF-8.
    #[error("binary header {field} is not UTF-8")]
    InvalidUtf8 {
        /// The field that holds the bad bytes.
        field: &'static str,
        /// Where the bytes went wrong.
        #[source]
        source: std::str::Utf8Error,
    },
    /// Encode: the code does not fit the header's int16.
    #[error("code {code} does not fit the binary header's int16")]
    CodeOutOfRange {
        /// The code that was to be written.
        code: i32,
    },
    /// Encode: the version does not fit the header's int16.
    #[error("version {version} does not fit the binary header's int16")]
    VersionOutOfRange {
        /// The version that was to be written.
        version: i32,
    },
    /// Encode: an ext key is longer than the int16 length allows.
    #[error("extFields key of {key_bytes} bytes is longer than the binary header's int16 length")]
    KeyTooLong {
        /// The key's length in bytes.
        key_bytes: usize,
    },
    /// Encode: a string or the ext region is longer than an int32 length allows.
    #[error("{field} of {size_bytes} bytes is longer than the binary header's int32 length")]
    TooLong {
        /// The field that is too long.
        field: &'static str,
        /// Its length in bytes.
        size_bytes: usize,
    },
}

/// Reads fields front to back from the header bytes, bounds-checking every step.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], BinaryHeaderError> {
        let Some((head, tail)) = self.rest.split_at_checked(n) else {
            return Err(BinaryHeaderError::Truncated {
                field,
                needed_bytes: n,
                remaining_bytes: self.rest.len(),
            });
        };
        self.rest = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], BinaryHeaderError> {
        let bytes = self.take(N, field)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    fn u8(&mut self, field: &'static str) -> Result<u8, BinaryHeaderError> {
        Ok(u8::from_be_bytes(self.array(field)?))
    }

    fn i16(&mut self, field: &'static str) -> Result<i16, BinaryHeaderError> {
        Ok(i16::from_be_bytes(self.array(field)?))
    }

    fn i32(&mut self, field: &'static str) -> Result<i32, BinaryHeaderError> {
        Ok(i32::from_be_bytes(self.array(field)?))
    }

    /// A UTF-8 string of `len` bytes; `None` when `len` is 0.
    fn string(
        &mut self,
        len: usize,
        field: &'static str,
    ) -> Result<Option<String>, BinaryHeaderError> {
        let bytes = self.take(len, field)?;
        if bytes.is_empty() {
            return Ok(None);
        }
        let text = std::str::from_utf8(bytes)
            .map_err(|source| BinaryHeaderError::InvalidUtf8 { field, source })?;
        Ok(Some(text.to_owned()))
    }
}

/// A length prefix of either width as a size; negative is an error.
fn non_negative(length: i64, field: &'static str) -> Result<usize, BinaryHeaderError> {
    usize::try_from(length).map_err(|_| BinaryHeaderError::NegativeLength { field, length })
}

/// Decodes a binary header from exactly its bytes. The returned command has an empty body.
pub fn decode(header: &[u8]) -> Result<RemotingCommand, BinaryHeaderError> {
    let mut r = Reader { rest: header };
    let code = i32::from(r.i16("code")?);
    let language = LanguageCode::from_u8(r.u8("language")?);
    let version = i32::from(r.i16("version")?);
    let opaque = r.i32("opaque")?;
    let flag = r.i32("flag")?;
    let remark_len = r.i32("remark length")?;
    let remark_len = non_negative(i64::from(remark_len), "remark")?;
    let remark = r.string(remark_len, "remark")?;
    let ext_len = r.i32("extFields length")?;
    let ext_len = non_negative(i64::from(ext_len), "extFields")?;
    let ext_region = r.take(ext_len, "extFields")?;
    let ext_fields = decode_ext(ext_region)?;
    // Anything after the ext region is ignored, as Java's decoder does.
    Ok(RemotingCommand {
        code,
        language,
        version,
        opaque,
        flag,
        remark,
        ext_fields,
        body: bytes::Bytes::new(),
    })
}

fn decode_ext(region: &[u8]) -> Result<ExtFields, BinaryHeaderError> {
    let mut r = Reader { rest: region };
    let mut ext = ExtFields::new();
    while !r.rest.is_empty() {
        let key_len = r.i16("extFields key length")?;
        let key_len = non_negative(i64::from(key_len), "extFields key")?;
        let key = r.string(key_len, "extFields key")?;
        let value_len = r.i32("extFields value length")?;
        let value_len = non_negative(i64::from(value_len), "extFields value")?;
        let value = r.string(value_len, "extFields value")?;
        if let (Some(key), Some(value)) = (key, value) {
            ext.insert(key, value);
        }
    }
    Ok(ext)
}

/// Bytes one ext entry takes on the wire, or `None` when it is left out (empty key or value).
fn entry_bytes(key: &str, value: &str) -> Option<usize> {
    if key.is_empty() || value.is_empty() {
        return None;
    }
    Some(2 + key.len() + 4 + value.len())
}

fn i32_len(len: usize, field: &'static str) -> Result<i32, BinaryHeaderError> {
    i32::try_from(len).map_err(|_| BinaryHeaderError::TooLong {
        field,
        size_bytes: len,
    })
}

/// Appends the binary header of `command` (not its body) to `out`. Nothing is written when
/// an error is returned.
pub fn encode(command: &RemotingCommand, out: &mut BytesMut) -> Result<(), BinaryHeaderError> {
    let code = i16::try_from(command.code)
        .map_err(|_| BinaryHeaderError::CodeOutOfRange { code: command.code })?;
    let version =
        i16::try_from(command.version).map_err(|_| BinaryHeaderError::VersionOutOfRange {
            version: command.version,
        })?;
    let remark = command.remark.as_deref().unwrap_or("");
    let remark_len = i32_len(remark.len(), "remark")?;
    let mut ext_bytes: usize = 0;
    for (key, value) in &command.ext_fields {
        if key.len() > i16::MAX as usize {
            return Err(BinaryHeaderError::KeyTooLong {
                key_bytes: key.len(),
            });
        }
        // Saturating: a sum past usize is past i32 too, and i32_len reports it.
        ext_bytes = ext_bytes.saturating_add(entry_bytes(key, value).unwrap_or(0));
    }
    let ext_len = i32_len(ext_bytes, "extFields")?;

    out.reserve(FIXED_BYTES + 4 + remark.len() + 4 + ext_bytes);
    out.put_i16(code);
    out.put_u8(command.language.as_u8());
    out.put_i16(version);
    out.put_i32(command.opaque);
    out.put_i32(command.flag);
    out.put_i32(remark_len);
    out.put_slice(remark.as_bytes());
    out.put_i32(ext_len);
    for (key, value) in &command.ext_fields {
        if entry_bytes(key, value).is_none() {
            continue;
        }
        // Both casts are in range: checked by the loop above (key) and by i32_len on the
        // sum of all entries (value).
        out.put_i16(key.len() as i16);
        out.put_slice(key.as_bytes());
        out.put_i32(value.len() as i32);
        out.put_slice(value.as_bytes());
    }
    Ok(())
}

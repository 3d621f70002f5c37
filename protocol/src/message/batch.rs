//! The SEND_BATCH_MESSAGE body (protocol.md §2.3): inner messages laid end to end, each
//! `TOTALSIZE, MAGICCODE, BODYCRC, FLAG, int32 body length + body, int16 properties length +
//! properties`.
//!
//! Every length is checked against the buffer and TOTALSIZE must equal the entry's real size
//! (every client computes it exactly; a mismatch means the body is not what it claims).
//! MAGICCODE and BODYCRC are ignored, as the Java broker ignores them: clients write 0 and the
//! broker computes the CRC when it stores each entry as its own record. The number of entries
//! is bounded ([`MAX_BATCH_ENTRIES`] by default) so a body of many tiny entries cannot make
//! the broker build an unbounded list.

use std::str::Utf8Error;

use bytes::Bytes;

/// Fixed bytes of one entry: total size, magic, crc, flag, body length, properties length.
pub const BATCH_ENTRY_FIXED_LEN: usize = 4 + 4 + 4 + 4 + 4 + 2;

/// Default bound on entries per batch. A 4 MiB batch of the smallest messages a Java producer
/// can send (1-byte body plus a UNIQ_KEY property) holds about 63 000.
pub const MAX_BATCH_ENTRIES: usize = 65_536;

/// Longest properties text of an entry (signed int16 length).
pub const MAX_ENTRY_PROPERTIES_LEN: usize = i16::MAX as usize;

/// One inner message of a batch, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchEntry {
    pub flag: i32,
    pub body: Bytes,
    /// Properties text (§3.4).
    pub properties: String,
}

/// One inner message of a batch, borrowed from the batch body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchEntryRef<'a> {
    pub flag: i32,
    pub body: &'a [u8],
    pub properties: &'a str,
    /// Where `body` starts in the batch body (lets a `Bytes` owner slice it without a copy).
    pub body_start: usize,
}

/// Why a batch body could not be decoded or encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// The body holds no entries.
    #[error("batch body is empty")]
    Empty,
    /// More entries than the bound allows.
    #[error("batch has more than {max} entries")]
    TooManyEntries { max: usize },
    /// The body ends inside entry `index`.
    #[error(
        "batch entry {index} at byte {offset}: {field} needs {needed} bytes, {available} remain"
    )]
    Truncated {
        index: usize,
        offset: usize,
        field: &'static str,
        needed: usize,
        available: usize,
    },
    /// A length field of entry `index` is negative.
    #[error("batch entry {index}: {field} length {len} is negative")]
    NegativeLength {
        index: usize,
        field: &'static str,
        len: i32,
    },
    /// TOTALSIZE of entry `index` disagrees with its fields.
    #[error("batch entry {index}: total size {declared} but the fields take {actual} bytes")]
    SizeMismatch {
        index: usize,
        declared: i32,
        actual: usize,
    },
    /// The properties of entry `index` are not UTF-8.
    #[error("batch entry {index}: properties are not valid UTF-8")]
    PropertiesUtf8 {
        index: usize,
        #[source]
        source: Utf8Error,
    },
    /// Encoding: properties longer than their int16 length allows.
    #[error("batch entry properties of {len} bytes are longer than {MAX_ENTRY_PROPERTIES_LEN}")]
    PropertiesTooLong { len: usize },
    /// Encoding: the entry does not fit its int32 TOTALSIZE.
    #[error("batch entry of {len} bytes does not fit an int32 total size")]
    EntryTooLarge { len: usize },
}

/// Iterates the entries of a batch body without copying. Yields at most `max_entries` entries
/// and stops after the first error, which it yields.
#[derive(Debug, Clone)]
pub struct BatchIter<'a> {
    buf: &'a [u8],
    pos: usize,
    index: usize,
    max_entries: usize,
    failed: bool,
}

/// The entries of `buf`, bounded by [`MAX_BATCH_ENTRIES`]. An empty `buf` yields nothing.
pub fn iter_batch_body(buf: &[u8]) -> BatchIter<'_> {
    iter_batch_body_with_limit(buf, MAX_BATCH_ENTRIES)
}

/// The entries of `buf`, bounded by `max_entries`.
pub fn iter_batch_body_with_limit(buf: &[u8], max_entries: usize) -> BatchIter<'_> {
    BatchIter {
        buf,
        pos: 0,
        index: 0,
        max_entries,
        failed: false,
    }
}

impl<'a> BatchIter<'a> {
    fn take(
        &mut self,
        field: &'static str,
        start: usize,
        n: usize,
    ) -> Result<&'a [u8], BatchError> {
        let available = self.buf.len().saturating_sub(self.pos);
        match self.buf.get(self.pos..).and_then(|rest| rest.get(..n)) {
            Some(bytes) => {
                self.pos += n;
                Ok(bytes)
            }
            None => Err(BatchError::Truncated {
                index: self.index,
                offset: start,
                field,
                needed: n,
                available,
            }),
        }
    }

    fn array<const N: usize>(
        &mut self,
        field: &'static str,
        start: usize,
    ) -> Result<[u8; N], BatchError> {
        let bytes = self.take(field, start, N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    fn entry(&mut self) -> Result<BatchEntryRef<'a>, BatchError> {
        let index = self.index;
        if index >= self.max_entries {
            return Err(BatchError::TooManyEntries {
                max: self.max_entries,
            });
        }
        let start = self.pos;
        let declared = i32::from_be_bytes(self.array("total size", start)?);
        // MAGICCODE and BODYCRC: written as 0 by clients, ignored by the broker.
        self.array::<8>("magic and body crc", start)?;
        let flag = i32::from_be_bytes(self.array("flag", start)?);
        let body_len = i32::from_be_bytes(self.array("body length", start)?);
        let body_len = usize::try_from(body_len).map_err(|_| BatchError::NegativeLength {
            index,
            field: "body",
            len: body_len,
        })?;
        let body_start = self.pos;
        let body = self.take("body", start, body_len)?;
        let props_len = i32::from(i16::from_be_bytes(self.array("properties length", start)?));
        let props_len = usize::try_from(props_len).map_err(|_| BatchError::NegativeLength {
            index,
            field: "properties",
            len: props_len,
        })?;
        let props = self.take("properties", start, props_len)?;
        let actual = self.pos - start;
        if usize::try_from(declared).ok() != Some(actual) {
            return Err(BatchError::SizeMismatch {
                index,
                declared,
                actual,
            });
        }
        let properties = std::str::from_utf8(props)
            .map_err(|source| BatchError::PropertiesUtf8 { index, source })?;
        self.index += 1;
        Ok(BatchEntryRef {
            flag,
            body,
            properties,
            body_start,
        })
    }
}

impl<'a> Iterator for BatchIter<'a> {
    type Item = Result<BatchEntryRef<'a>, BatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.buf.len() {
            return None;
        }
        let entry = self.entry();
        self.failed = entry.is_err();
        Some(entry)
    }
}

/// Decodes a batch body, copying each body. At most [`MAX_BATCH_ENTRIES`] entries; an empty
/// body is [`BatchError::Empty`].
pub fn decode_batch_body(buf: &[u8]) -> Result<Vec<BatchEntry>, BatchError> {
    decode_with(buf, MAX_BATCH_ENTRIES, |e| Bytes::copy_from_slice(e.body))
}

/// Decodes a batch body held in `Bytes`; the entries' bodies are slices of it (no copy).
pub fn decode_batch_bytes(buf: &Bytes) -> Result<Vec<BatchEntry>, BatchError> {
    decode_batch_bytes_with_limit(buf, MAX_BATCH_ENTRIES)
}

/// [`decode_batch_bytes`] with an explicit entry bound.
pub fn decode_batch_bytes_with_limit(
    buf: &Bytes,
    max_entries: usize,
) -> Result<Vec<BatchEntry>, BatchError> {
    decode_with(buf, max_entries, |e| {
        buf.slice(e.body_start..e.body_start + e.body.len())
    })
}

fn decode_with(
    buf: &[u8],
    max_entries: usize,
    body_of: impl Fn(&BatchEntryRef<'_>) -> Bytes,
) -> Result<Vec<BatchEntry>, BatchError> {
    let mut entries = Vec::new();
    for entry in iter_batch_body_with_limit(buf, max_entries) {
        let entry = entry?;
        entries.push(BatchEntry {
            flag: entry.flag,
            body: body_of(&entry),
            properties: entry.properties.to_owned(),
        });
    }
    if entries.is_empty() {
        return Err(BatchError::Empty);
    }
    Ok(entries)
}

/// Size of one encoded entry.
pub fn encoded_entry_len(body_len: usize, properties_len: usize) -> Result<usize, BatchError> {
    if properties_len > MAX_ENTRY_PROPERTIES_LEN {
        return Err(BatchError::PropertiesTooLong {
            len: properties_len,
        });
    }
    let len = BATCH_ENTRY_FIXED_LEN
        .saturating_add(body_len)
        .saturating_add(properties_len);
    if len > i32::MAX as usize {
        return Err(BatchError::EntryTooLarge { len });
    }
    Ok(len)
}

/// Appends one entry as a client writes it (MAGICCODE and BODYCRC 0); returns its size.
/// On error nothing is appended.
pub fn encode_batch_entry(
    flag: i32,
    body: &[u8],
    properties: &str,
    out: &mut Vec<u8>,
) -> Result<usize, BatchError> {
    let len = encoded_entry_len(body.len(), properties.len())?;
    out.reserve(len);
    // `encoded_entry_len` bounded every length by its field's width.
    out.extend_from_slice(&(len as i32).to_be_bytes());
    out.extend_from_slice(&0_i32.to_be_bytes());
    out.extend_from_slice(&0_i32.to_be_bytes());
    out.extend_from_slice(&flag.to_be_bytes());
    out.extend_from_slice(&(body.len() as i32).to_be_bytes());
    out.extend_from_slice(body);
    out.extend_from_slice(&(properties.len() as i16).to_be_bytes());
    out.extend_from_slice(properties.as_bytes());
    Ok(len)
}

/// Appends a whole batch body; returns its size. On error `out` is left as it was.
pub fn encode_batch_body(entries: &[BatchEntry], out: &mut Vec<u8>) -> Result<usize, BatchError> {
    let start = out.len();
    for e in entries {
        if let Err(err) = encode_batch_entry(e.flag, &e.body, &e.properties, out) {
            out.truncate(start);
            return Err(err);
        }
    }
    Ok(out.len() - start)
}

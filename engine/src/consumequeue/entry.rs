//! One ConsumeQueue entry: 20 big-endian bytes (protocol.md §4.1).
//!
//! `commitLogOffset i64 | size i32 | tagsCode i64`. Encoding and decoding are pure; an
//! all-zero entry is what a preallocated or sparse file holds where nothing was written,
//! so [`CqEntry::is_valid`] is the test that ends a queue during recovery.

/// Bytes per entry on disk (`CQ_STORE_UNIT_SIZE`).
pub const ENTRY_SIZE_BYTES: usize = 20;

/// [`ENTRY_SIZE_BYTES`] as a u64, for byte positions in files.
pub(crate) const ENTRY_SIZE_BYTES_U64: u64 = ENTRY_SIZE_BYTES as u64;

/// One ConsumeQueue entry: where a message of this queue lives in the CommitLog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CqEntry {
    /// Physical offset of the record in the CommitLog (shard id in the top 8 bits).
    pub physical_offset: i64,
    /// The record's TOTALSIZE in bytes.
    pub size: i32,
    /// Java `String.hashCode` of the TAGS (sign-extended), 0 without tags; the delivery
    /// time in ms for `SCHEDULE_TOPIC_XXXX`.
    pub tags_code: i64,
}

impl CqEntry {
    /// The 20 on-disk bytes, big-endian like Java's `ByteBuffer`.
    pub fn encode(&self) -> [u8; ENTRY_SIZE_BYTES] {
        let mut out = [0_u8; ENTRY_SIZE_BYTES];
        out[0..8].copy_from_slice(&self.physical_offset.to_be_bytes());
        out[8..12].copy_from_slice(&self.size.to_be_bytes());
        out[12..20].copy_from_slice(&self.tags_code.to_be_bytes());
        out
    }

    /// Decodes exactly 20 bytes. Any bit pattern is an entry; whether it is a real one is
    /// [`CqEntry::is_valid`]'s question.
    pub fn decode(bytes: &[u8; ENTRY_SIZE_BYTES]) -> Self {
        let mut physical = [0_u8; 8];
        let mut size = [0_u8; 4];
        let mut tags = [0_u8; 8];
        physical.copy_from_slice(&bytes[0..8]);
        size.copy_from_slice(&bytes[8..12]);
        tags.copy_from_slice(&bytes[12..20]);
        Self {
            physical_offset: i64::from_be_bytes(physical),
            size: i32::from_be_bytes(size),
            tags_code: i64::from_be_bytes(tags),
        }
    }

    /// Decodes the first 20 bytes of `bytes`; `None` when fewer are there (a torn entry).
    pub fn decode_prefix(bytes: &[u8]) -> Option<Self> {
        let head: &[u8; ENTRY_SIZE_BYTES] = bytes.get(..ENTRY_SIZE_BYTES)?.try_into().ok()?;
        Some(Self::decode(head))
    }

    /// RocketMQ's recovery test: a written entry has a non-negative offset and a positive
    /// size. Zeroes (never written) fail it, so does a size torn to 0.
    pub fn is_valid(&self) -> bool {
        self.physical_offset >= 0 && self.size > 0
    }
}

/// Encodes `entries` back to back into `out` (cleared first).
pub(crate) fn encode_all(entries: impl IntoIterator<Item = CqEntry>, out: &mut Vec<u8>) {
    out.clear();
    for entry in entries {
        out.extend_from_slice(&entry.encode());
    }
}

/// Decodes every whole entry of `bytes`; a trailing partial entry is ignored.
pub(crate) fn decode_all(bytes: &[u8]) -> impl Iterator<Item = CqEntry> + '_ {
    bytes
        .chunks_exact(ENTRY_SIZE_BYTES)
        .filter_map(CqEntry::decode_prefix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_is_big_endian_in_field_order() {
        let entry = CqEntry {
            physical_offset: 0x0102_0304_0506_0708,
            size: 0x0A0B_0C0D,
            tags_code: -2,
        };
        let bytes = entry.encode();
        assert_eq!(&bytes[0..8], &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(&bytes[8..12], &[0x0A, 0x0B, 0x0C, 0x0D]);
        assert_eq!(
            &bytes[12..20],
            &[0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFE]
        );
    }

    #[test]
    fn decode_inverts_encode() {
        let entry = CqEntry {
            physical_offset: 1 << 56 | 4096,
            size: 1234,
            tags_code: i64::from(2_598_919_i32),
        };
        assert_eq!(CqEntry::decode(&entry.encode()), entry);
    }

    #[test]
    fn zeroes_and_zero_size_are_not_valid_entries() {
        assert!(!CqEntry::decode(&[0; ENTRY_SIZE_BYTES]).is_valid());
        assert!(!CqEntry {
            physical_offset: 10,
            size: 0,
            tags_code: 0
        }
        .is_valid());
        assert!(!CqEntry {
            physical_offset: -1,
            size: 10,
            tags_code: 0
        }
        .is_valid());
        assert!(CqEntry {
            physical_offset: 0,
            size: 10,
            tags_code: 0
        }
        .is_valid());
    }

    #[test]
    fn decode_prefix_refuses_a_torn_entry() {
        let bytes = CqEntry {
            physical_offset: 1,
            size: 2,
            tags_code: 3,
        }
        .encode();
        assert_eq!(CqEntry::decode_prefix(&bytes[..19]), None);
    }

    #[test]
    fn decode_all_ignores_a_trailing_partial_entry() {
        let a = CqEntry {
            physical_offset: 1,
            size: 2,
            tags_code: 3,
        };
        let b = CqEntry {
            physical_offset: 4,
            size: 5,
            tags_code: 6,
        };
        let mut bytes = Vec::new();
        encode_all([a, b], &mut bytes);
        bytes.extend_from_slice(&[9; 7]);
        assert_eq!(decode_all(&bytes).collect::<Vec<_>>(), vec![a, b]);
    }

    proptest::proptest! {
        #[test]
        fn any_20_bytes_round_trip(bytes in proptest::array::uniform20(proptest::num::u8::ANY)) {
            proptest::prop_assert_eq!(CqEntry::decode(&bytes).encode(), bytes);
        }
    }
}

//! Message sysFlag bits (protocol.md §3.3) and helpers to read the packed sub-fields
//! (transaction type in bits 2–3, compression type in bits 8–10).
//!
//! The flag is an `i32` because that is its wire type; every helper is total over all values.

/// Bit 0: the body is compressed (type in bits 8–10).
pub const COMPRESSED_FLAG: i32 = 0x1;
/// Bit 1: the topic's filter type is MULTI_TAG (set by the broker).
pub const MULTI_TAGS_FLAG: i32 = 0x2;
/// Bits 2–3: transaction type mask.
pub const TRANSACTION_TYPE_MASK: i32 = 0xC;
/// Transaction type: not a transactional message.
pub const TRANSACTION_NOT_TYPE: i32 = 0x0;
/// Transaction type: half (prepared) message.
pub const TRANSACTION_PREPARED_TYPE: i32 = 0x4;
/// Transaction type: commit record.
pub const TRANSACTION_COMMIT_TYPE: i32 = 0x8;
/// Transaction type: rollback record.
pub const TRANSACTION_ROLLBACK_TYPE: i32 = 0xC;
/// Bit 4: the born host is a 16-byte IPv6 address.
pub const BORNHOST_V6_FLAG: i32 = 0x10;
/// Bit 5: the store host is a 16-byte IPv6 address.
pub const STOREHOST_V6_FLAG: i32 = 0x20;
/// Bit 6: inner-batch record the client must unwrap.
pub const NEED_UNWRAP_FLAG: i32 = 0x40;
/// Bit 7: the record body is itself a batch body (§2.3 layout).
pub const INNER_BATCH_FLAG: i32 = 0x80;
/// Bits 8–10: compression type mask.
pub const COMPRESSION_TYPE_MASK: i32 = 0x700;
/// Compression type LZ4.
pub const COMPRESSION_LZ4_TYPE: i32 = 0x100;
/// Compression type ZSTD.
pub const COMPRESSION_ZSTD_TYPE: i32 = 0x200;
/// Compression type ZLIB (0 also means ZLIB: older clients set no type).
pub const COMPRESSION_ZLIB_TYPE: i32 = 0x300;

/// Transaction type carried in bits 2–3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransactionType {
    NotType,
    Prepared,
    Commit,
    Rollback,
}

impl TransactionType {
    /// The type in `sys_flag` (all four bit patterns are meaningful).
    pub fn of(sys_flag: i32) -> Self {
        match sys_flag & TRANSACTION_TYPE_MASK {
            TRANSACTION_PREPARED_TYPE => Self::Prepared,
            TRANSACTION_COMMIT_TYPE => Self::Commit,
            TRANSACTION_ROLLBACK_TYPE => Self::Rollback,
            _ => Self::NotType,
        }
    }

    /// The bits of this type, to OR into a sysFlag with the old type cleared.
    pub fn bits(self) -> i32 {
        match self {
            Self::NotType => TRANSACTION_NOT_TYPE,
            Self::Prepared => TRANSACTION_PREPARED_TYPE,
            Self::Commit => TRANSACTION_COMMIT_TYPE,
            Self::Rollback => TRANSACTION_ROLLBACK_TYPE,
        }
    }

    /// `sys_flag` with its transaction type replaced by `self`.
    pub fn apply(self, sys_flag: i32) -> i32 {
        (sys_flag & !TRANSACTION_TYPE_MASK) | self.bits()
    }
}

/// Compression type carried in bits 8–10 (meaningful only with [`COMPRESSED_FLAG`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CompressionType {
    Zlib,
    Lz4,
    Zstd,
}

impl CompressionType {
    /// The type in `sys_flag`; `None` for the four bit patterns no client defines
    /// (0x400..=0x700). 0 means ZLIB, as older clients set no type.
    pub fn of(sys_flag: i32) -> Option<Self> {
        match sys_flag & COMPRESSION_TYPE_MASK {
            0 | COMPRESSION_ZLIB_TYPE => Some(Self::Zlib),
            COMPRESSION_LZ4_TYPE => Some(Self::Lz4),
            COMPRESSION_ZSTD_TYPE => Some(Self::Zstd),
            _ => None,
        }
    }

    /// The bits of this type (ZLIB is written as 0x300, as current clients do).
    pub fn bits(self) -> i32 {
        match self {
            Self::Zlib => COMPRESSION_ZLIB_TYPE,
            Self::Lz4 => COMPRESSION_LZ4_TYPE,
            Self::Zstd => COMPRESSION_ZSTD_TYPE,
        }
    }
}

/// Whether the body is compressed.
pub fn is_compressed(sys_flag: i32) -> bool {
    sys_flag & COMPRESSED_FLAG != 0
}

/// The compression of the body: `None` if it is not compressed, `Some(None)` if it is, with a
/// type this table does not know.
pub fn compression(sys_flag: i32) -> Option<Option<CompressionType>> {
    is_compressed(sys_flag).then(|| CompressionType::of(sys_flag))
}

/// Whether ConsumeQueue dispatch skips this record (half messages and rollbacks, §3.3).
pub fn skipped_by_dispatch(sys_flag: i32) -> bool {
    matches!(
        TransactionType::of(sys_flag),
        TransactionType::Prepared | TransactionType::Rollback
    )
}

/// Whether the born host is IPv6.
pub fn born_host_is_v6(sys_flag: i32) -> bool {
    sys_flag & BORNHOST_V6_FLAG != 0
}

/// Whether the store host is IPv6.
pub fn store_host_is_v6(sys_flag: i32) -> bool {
    sys_flag & STOREHOST_V6_FLAG != 0
}

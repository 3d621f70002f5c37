//! Message ids (protocol.md §3.6): the offset msgId and the client UNIQ_KEY.
//!
//! An offset msgId is the store host (4- or 16-byte IP, int32 port) and the int64 physical
//! offset, as upper-case hex: 32 characters for IPv4, 56 for IPv6. Decoding accepts either
//! case (Java upper-cases before parsing) and no other length.
//!
//! A UNIQ_KEY is IP + int16 pid + int32 per-process hash + int32 ms since the start of the
//! month + int16 counter, also upper-case hex (32 or 56 characters). [`UniqKeyGenerator`] is
//! shared by reference (one per process, like Java's static state) so that the counter, not
//! the shard, keeps ids from one millisecond apart. The month is taken in UTC, not local time
//! as Java does: the field only has to move forward and stay unique, and nothing reads a
//! wall-clock time back out of it.

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::str::FromStr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Characters of an IPv4 offset msgId.
pub const OFFSET_MSG_ID_V4_LEN: usize = 32;
/// Characters of an IPv6 offset msgId.
pub const OFFSET_MSG_ID_V6_LEN: usize = 56;

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

/// Why a msgId could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MsgIdError {
    /// Neither 32 (IPv4) nor 56 (IPv6) characters.
    #[error(
        "msgId has {len} characters, expected {OFFSET_MSG_ID_V4_LEN} or {OFFSET_MSG_ID_V6_LEN}"
    )]
    BadLength { len: usize },
    /// A character that is not a hex digit.
    #[error("msgId has a non-hex character at byte {position}")]
    BadHex { position: usize },
    /// The port field is outside 0..=65535.
    #[error("msgId port {port} is out of range")]
    BadPort { port: i32 },
}

/// An offset msgId: where a stored message lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OffsetMsgId {
    pub store_host: SocketAddr,
    pub physical_offset: i64,
}

fn push_hex(out: &mut String, bytes: &[u8]) {
    out.reserve(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(HEX_UPPER[usize::from(b >> 4)]));
        out.push(char::from(HEX_UPPER[usize::from(b & 0xF)]));
    }
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'A'..=b'F' => Some(c - b'A' + 10),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

/// Decodes hex into `out` (exactly `2 * out.len()` characters expected by the caller).
fn parse_hex(s: &[u8], out: &mut [u8]) -> Result<(), MsgIdError> {
    for (i, (pair, byte)) in s.chunks_exact(2).zip(out.iter_mut()).enumerate() {
        let &[hi, lo] = pair else {
            return Err(MsgIdError::BadLength { len: s.len() });
        };
        let hi = hex_val(hi).ok_or(MsgIdError::BadHex { position: 2 * i })?;
        let lo = hex_val(lo).ok_or(MsgIdError::BadHex {
            position: 2 * i + 1,
        })?;
        *byte = hi << 4 | lo;
    }
    Ok(())
}

impl OffsetMsgId {
    /// Appends the upper-case hex id to `out`.
    pub fn encode_into(&self, out: &mut String) {
        match self.store_host {
            SocketAddr::V4(a) => push_hex(out, &a.ip().octets()),
            SocketAddr::V6(a) => push_hex(out, &a.ip().octets()),
        }
        push_hex(out, &i32::from(self.store_host.port()).to_be_bytes());
        push_hex(out, &self.physical_offset.to_be_bytes());
    }

    /// The upper-case hex id.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(OFFSET_MSG_ID_V6_LEN);
        self.encode_into(&mut out);
        out
    }

    /// Parses a 32- or 56-character hex id (either case).
    pub fn decode(s: &str) -> Result<Self, MsgIdError> {
        let raw = s.as_bytes();
        let mut bytes = [0u8; OFFSET_MSG_ID_V6_LEN / 2];
        let ip_len = match raw.len() {
            OFFSET_MSG_ID_V4_LEN => 4,
            OFFSET_MSG_ID_V6_LEN => 16,
            len => return Err(MsgIdError::BadLength { len }),
        };
        let bytes = &mut bytes[..raw.len() / 2];
        parse_hex(raw, bytes)?;
        let (ip, rest) = bytes.split_at(ip_len);
        let (port, offset) = rest.split_at(4);
        let port = i32::from_be_bytes(
            port.try_into()
                .map_err(|_| MsgIdError::BadLength { len: raw.len() })?,
        );
        let port = u16::try_from(port).map_err(|_| MsgIdError::BadPort { port })?;
        let physical_offset = i64::from_be_bytes(
            offset
                .try_into()
                .map_err(|_| MsgIdError::BadLength { len: raw.len() })?,
        );
        let store_host = match <[u8; 4]>::try_from(ip) {
            Ok(v4) => SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::from(v4), port)),
            Err(_) => {
                let v6 = <[u8; 16]>::try_from(ip)
                    .map_err(|_| MsgIdError::BadLength { len: raw.len() })?;
                SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::from(v6), port, 0, 0))
            }
        };
        Ok(Self {
            store_host,
            physical_offset,
        })
    }
}

impl fmt::Display for OffsetMsgId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.encode())
    }
}

impl FromStr for OffsetMsgId {
    type Err = MsgIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::decode(s)
    }
}

/// The offset msgId of the record at `physical_offset` stored by `store_host`.
pub fn encode_offset_msg_id(store_host: SocketAddr, physical_offset: i64) -> String {
    OffsetMsgId {
        store_host,
        physical_offset,
    }
    .encode()
}

/// Store host and physical offset of an offset msgId.
pub fn decode_offset_msg_id(s: &str) -> Result<(SocketAddr, i64), MsgIdError> {
    OffsetMsgId::decode(s).map(|id| (id.store_host, id.physical_offset))
}

/// Milliseconds since the Unix epoch of 00:00 UTC on the first day of the month holding
/// `now_ms` (proleptic Gregorian calendar, days-from-civil arithmetic).
pub fn month_start_ms(now_ms: i64) -> i64 {
    const DAY_MS: i64 = 86_400_000;
    let days = now_ms.div_euclid(DAY_MS);
    days_from_civil_first_of_month(days) * DAY_MS
}

/// The day number (since 1970-01-01) of the first day of the month containing day `days`.
fn days_from_civil_first_of_month(days: i64) -> i64 {
    // Shift the epoch to 0000-03-01 so leap days fall at the end of each 400-year era.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097; // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // month, March = 0
    let day_of_month0 = doy - (153 * mp + 2) / 5; // [0, 30]
    days - day_of_month0
}

/// Generates UNIQ_KEYs for one process. Share one instance (e.g. in an `Arc`) across threads.
#[derive(Debug)]
pub struct UniqKeyGenerator {
    /// Hex of IP + pid + per-process hash: the fixed first part of every key.
    prefix_hex: String,
    counter: AtomicU16,
}

impl UniqKeyGenerator {
    /// A generator for this process on `ip`, with a random per-process hash.
    pub fn new(ip: IpAddr) -> Self {
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u32(std::process::id());
        hasher.write_u128(now_ms_u128());
        // Java uses a class loader's identity hash here: any per-process 32-bit value.
        Self::with_parts(ip, std::process::id(), hasher.finish() as i32)
    }

    /// A generator with every fixed part given (tests; reproducible ids).
    pub fn with_parts(ip: IpAddr, pid: u32, process_hash: i32) -> Self {
        let mut prefix_hex = String::with_capacity(OFFSET_MSG_ID_V6_LEN);
        match ip {
            IpAddr::V4(v4) => push_hex(&mut prefix_hex, &v4.octets()),
            IpAddr::V6(v6) => push_hex(&mut prefix_hex, &v6.octets()),
        }
        // Only the low 16 bits of the pid fit, as in Java.
        push_hex(&mut prefix_hex, &((pid & 0xFFFF) as u16).to_be_bytes());
        push_hex(&mut prefix_hex, &process_hash.to_be_bytes());
        Self {
            prefix_hex,
            counter: AtomicU16::new(0),
        }
    }

    /// Appends the next key, for the current time, to `out`.
    pub fn write_next(&self, out: &mut String) {
        self.write_next_at(now_ms(), out);
    }

    /// Appends the next key as of `now_ms` (ms since the Unix epoch) to `out`.
    pub fn write_next_at(&self, now_ms: i64, out: &mut String) {
        // The field is int32: from day 25 of a month the millisecond count passes i32::MAX and
        // wraps negative, exactly as Java's `(int)` cast does.
        let since_month_ms = now_ms.wrapping_sub(month_start_ms(now_ms)) as i32;
        let counter = self.counter.fetch_add(1, Ordering::Relaxed);
        out.reserve(self.prefix_hex.len() + 12);
        out.push_str(&self.prefix_hex);
        push_hex(out, &since_month_ms.to_be_bytes());
        push_hex(out, &counter.to_be_bytes());
    }

    /// The next key for the current time.
    pub fn next_key(&self) -> String {
        let mut out = String::with_capacity(OFFSET_MSG_ID_V6_LEN);
        self.write_next(&mut out);
        out
    }
}

fn now_ms_u128() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

fn now_ms() -> i64 {
    i64::try_from(now_ms_u128()).unwrap_or(i64::MAX)
}

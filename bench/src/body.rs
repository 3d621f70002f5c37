//! The bench's message body: a 4-byte magic, the born time in microseconds since the Unix
//! epoch (big-endian u64), then filler up to the requested size. The consumer side reads the
//! born time back to measure end-to-end latency; bodies without the magic (messages from
//! other producers) are counted but carry no latency.

use bytes::{BufMut, Bytes, BytesMut};

/// Marks a body written by ringmq-bench.
pub const MAGIC: &[u8; 4] = b"rmqb";
/// Bytes taken by the magic and the born time; smaller bodies carry no timestamp.
pub const STAMP_BYTES: usize = 12;

/// A reusable body template of `size_bytes` bytes.
#[derive(Debug, Clone)]
pub struct BodyTemplate {
    filler: Bytes,
}

impl BodyTemplate {
    /// A template for bodies of `size_bytes` bytes.
    pub fn new(size_bytes: usize) -> Self {
        // Printable filler, so `ringmq consume` shows something readable.
        let filler: Vec<u8> = (0..size_bytes).map(|i| b'a' + (i % 26) as u8).collect();
        BodyTemplate {
            filler: Bytes::from(filler),
        }
    }

    /// A body stamped with `born_us` (when the size leaves room for the stamp).
    pub fn make(&self, born_us: u64) -> Bytes {
        let size = self.filler.len();
        if size < STAMP_BYTES {
            return self.filler.clone();
        }
        let mut body = BytesMut::with_capacity(size);
        body.put_slice(MAGIC);
        body.put_u64(born_us);
        body.put_slice(self.filler.get(STAMP_BYTES..).unwrap_or_default());
        body.freeze()
    }
}

/// The born time stamped in a bench body, if it is one.
pub fn born_us(body: &[u8]) -> Option<u64> {
    if body.get(..4)? != MAGIC {
        return None;
    }
    let raw: [u8; 8] = body.get(4..STAMP_BYTES)?.try_into().ok()?;
    Some(u64::from_be_bytes(raw))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn born_time_round_trips_through_a_body_of_the_requested_size() {
        let body = BodyTemplate::new(1024).make(1_700_000_000_123_456);
        assert_eq!(body.len(), 1024);
        assert_eq!(born_us(&body), Some(1_700_000_000_123_456));
    }

    #[test]
    fn bodies_too_small_for_a_stamp_keep_their_size_and_carry_none() {
        let body = BodyTemplate::new(8).make(42);
        assert_eq!(body.len(), 8);
        assert_eq!(born_us(&body), None);
    }

    #[test]
    fn foreign_bodies_carry_no_born_time() {
        assert_eq!(born_us(b"hello world, a plain message"), None);
        assert_eq!(born_us(b"rmqb"), None);
    }
}

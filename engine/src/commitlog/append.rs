//! The shard's append buffer: records encoded in log order, waiting for the group write.
//!
//! Every record appended in one loop turn lands here, already carrying its final physical
//! offset, queue offset and store timestamp. The writer takes the whole buffer as one group
//! and writes it with positional writes, one run per segment it touches (a group that crosses a
//! segment boundary has two runs: the old segment's tail ending in its blank record, and the
//! new segment's head). Nothing here does I/O.
//!
//! A crash loses the buffer; no caller has been answered for it, so nothing acknowledged is lost.

use std::ops::Range;

/// A contiguous piece of a group that goes to one segment file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteRun {
    /// Start offset (byte offset in the shard's log) of the segment this run goes to.
    pub segment_start: u64,
    /// Byte position of the run inside the segment file.
    pub pos_in_file: u64,
    /// The run's bytes inside the group buffer.
    pub buf_range: Range<usize>,
}

/// Records waiting to be written, in log order, and where each run of them goes.
#[derive(Debug, Default)]
pub struct AppendBuffer {
    buf: Vec<u8>,
    runs: Vec<WriteRun>,
    /// Log offset (shard-local) of the first byte in `buf`, meaningful when not empty.
    start_offset: u64,
    /// Log offset just past the last byte in `buf`.
    end_offset: u64,
}

impl AppendBuffer {
    /// An empty buffer whose next byte will be at `log_offset`.
    pub fn starting_at(log_offset: u64) -> Self {
        AppendBuffer {
            buf: Vec::new(),
            runs: Vec::new(),
            start_offset: log_offset,
            end_offset: log_offset,
        }
    }

    /// True when no record is waiting.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Bytes waiting.
    pub fn len_bytes(&self) -> usize {
        self.buf.len()
    }

    /// Log offset where the next appended byte goes.
    pub fn end_offset(&self) -> u64 {
        self.end_offset
    }

    /// Appends bytes that `encode` writes, placed at `log_offset` (≥ the current end: a jump
    /// skips the rest of a closed segment) inside the segment starting at `segment_start`.
    /// Returns how many bytes `encode` wrote, or its error (in which case nothing is kept).
    pub fn push_with<E>(
        &mut self,
        segment_start: u64,
        log_offset: u64,
        encode: impl FnOnce(&mut Vec<u8>) -> Result<usize, E>,
    ) -> Result<usize, E> {
        debug_assert!(log_offset >= self.end_offset, "appends go forward");
        debug_assert!(log_offset >= segment_start);
        if self.buf.is_empty() {
            self.start_offset = log_offset;
            self.end_offset = log_offset;
        }
        let buf_start = self.buf.len();
        let written = match encode(&mut self.buf) {
            Ok(n) => n,
            Err(e) => {
                self.buf.truncate(buf_start);
                return Err(e);
            }
        };
        debug_assert_eq!(self.buf.len() - buf_start, written);
        let contiguous = log_offset == self.end_offset;
        match self.runs.last_mut() {
            Some(run) if contiguous && run.segment_start == segment_start => {
                run.buf_range.end = self.buf.len();
            }
            _ => self.runs.push(WriteRun {
                segment_start,
                pos_in_file: log_offset - segment_start,
                buf_range: buf_start..self.buf.len(),
            }),
        }
        self.end_offset = log_offset + written as u64;
        Ok(written)
    }

    /// Takes everything waiting: the bytes, their runs, and the log range they cover.
    pub fn take(&mut self) -> (Vec<u8>, Vec<WriteRun>, Range<u64>) {
        let range = self.start_offset..self.end_offset;
        let buf = std::mem::take(&mut self.buf);
        let runs = std::mem::take(&mut self.runs);
        self.start_offset = self.end_offset;
        (buf, runs, range)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push(b: &mut AppendBuffer, seg: u64, at: u64, bytes: &[u8]) {
        b.push_with(seg, at, |out| {
            out.extend_from_slice(bytes);
            Ok::<_, ()>(bytes.len())
        })
        .unwrap();
    }

    #[test]
    fn contiguous_records_in_one_segment_are_one_run() {
        let mut b = AppendBuffer::starting_at(100);
        push(&mut b, 0, 100, b"abc");
        push(&mut b, 0, 103, b"de");
        let (buf, runs, range) = b.take();
        assert_eq!(buf, b"abcde");
        assert_eq!(range, 100..105);
        assert_eq!(
            runs,
            vec![WriteRun {
                segment_start: 0,
                pos_in_file: 100,
                buf_range: 0..5
            }]
        );
    }

    #[test]
    fn a_jump_to_the_next_segment_starts_a_new_run() {
        let mut b = AppendBuffer::starting_at(90);
        push(&mut b, 0, 90, b"12345678");
        push(&mut b, 128, 128, b"xy");
        let (_, runs, range) = b.take();
        assert_eq!(range, 90..130);
        assert_eq!(runs.len(), 2);
        assert_eq!(runs[1].segment_start, 128);
        assert_eq!(runs[1].pos_in_file, 0);
        assert_eq!(runs[1].buf_range, 8..10);
    }

    #[test]
    fn a_failed_encode_leaves_the_buffer_unchanged() {
        let mut b = AppendBuffer::starting_at(0);
        push(&mut b, 0, 0, b"ok");
        let r = b.push_with(0, 2, |out| {
            out.extend_from_slice(b"partial");
            Err::<usize, &str>("bad")
        });
        assert_eq!(r, Err("bad"));
        assert_eq!(b.len_bytes(), 2);
        assert_eq!(b.end_offset(), 2);
    }

    #[test]
    fn take_leaves_an_empty_buffer_that_continues_at_the_end() {
        let mut b = AppendBuffer::starting_at(0);
        push(&mut b, 0, 0, b"ok");
        let _ = b.take();
        assert!(b.is_empty());
        push(&mut b, 0, 2, b"z");
        let (_, runs, range) = b.take();
        assert_eq!(range, 2..3);
        assert_eq!(runs[0].pos_in_file, 2);
    }
}

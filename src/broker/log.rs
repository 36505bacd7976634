//! The room log: every line the room relays to more than one reader (the
//! clients' lines, the server's lines, notices), each stored once, in the
//! order the room said them, and read by every reader through its own
//! cursor (see [`super::queue`]).
//!
//! A position in the log is a byte offset from the room's start (`u64`,
//! never reused): [`Log::head`] is where the next line goes. The bytes are
//! kept in segments of about [`SEGMENT`] bytes (64 KiB), appended to in
//! place; a line never spans two segments, so a segment is also a run of
//! whole lines. [`Log::trim`] frees the segments that every reader has
//! passed, so the log holds the bytes between the slowest reader and the
//! head, plus at most one segment: the room keeps that distance under
//! `--max-queue` (see [`super::room`]).
//!
//! This is the structure of Kafka's partitions and of the LMAX disruptor's
//! ring, without persistence: one writer, many readers, each a number.
//!
//! **History** (`--history N`): the log can also keep its last N lines,
//! however far every reader is, up to a number of bytes
//! ([`Log::keep_history`]); a newcomer then starts reading at
//! [`Log::history`] instead of the head (see [`super::room`]).

use std::collections::VecDeque;
use std::ops::Range;

/// Bytes in a segment before the next line starts a new one: 64 KiB. A
/// segment holds more only when one line alone is longer.
pub const SEGMENT: usize = 64 * 1024;

/// The relayed lines of a room, from the oldest still needed to the head.
#[derive(Debug, Default)]
pub struct Log {
    segments: VecDeque<Segment>,
    head: u64,
    /// The start of each of the last lines kept as history, oldest first.
    history: VecDeque<u64>,
    /// At most this many lines are kept as history...
    history_lines: usize,
    /// ... and at most this many bytes.
    history_bytes: u64,
}

#[derive(Debug)]
struct Segment {
    /// The position of `bytes[0]`.
    start: u64,
    bytes: Vec<u8>,
}

impl Segment {
    fn end(&self) -> u64 {
        self.start + self.bytes.len() as u64
    }
}

impl Log {
    /// An empty log: head and tail at position 0.
    pub fn new() -> Log {
        Log::default()
    }

    /// The position the next line will have.
    pub fn head(&self) -> u64 {
        self.head
    }

    /// The oldest position still held (the head when nothing is held).
    pub fn tail(&self) -> u64 {
        self.segments.front().map_or(self.head, |s| s.start)
    }

    /// Keeps the last `lines` lines appended from now on, as long as they
    /// take at most `bytes` bytes, whether or not a reader still needs
    /// them: [`Log::trim`] does not free them.
    pub fn keep_history(&mut self, lines: usize, bytes: usize) {
        self.history_lines = lines;
        self.history_bytes = bytes as u64;
        self.forget_history();
    }

    /// The start of the oldest line kept as history, and how many lines
    /// are kept from there to the head; `None` when none is.
    pub fn history(&self) -> Option<(u64, usize)> {
        self.history
            .front()
            .map(|&start| (start, self.history.len()))
    }

    /// Drops the history lines beyond the count or the bytes allowed.
    fn forget_history(&mut self) {
        while self.history.len() > self.history_lines
            || self
                .history
                .front()
                .is_some_and(|&start| self.head - start > self.history_bytes)
        {
            self.history.pop_front();
        }
    }

    /// The bytes of memory the segments hold (capacity, not length).
    pub fn footprint(&self) -> usize {
        self.segments.iter().map(|s| s.bytes.capacity()).sum()
    }

    /// Appends one line, written by `write` into the buffer it is given
    /// (which it must only extend), and returns the line's range of
    /// positions.
    pub fn append_with(&mut self, write: impl FnOnce(&mut Vec<u8>)) -> Range<u64> {
        let start = self.head;
        let full = self
            .segments
            .back()
            .is_none_or(|s| s.bytes.len() >= SEGMENT);
        if full {
            self.segments.push_back(Segment {
                start,
                bytes: Vec::with_capacity(SEGMENT),
            });
        }
        let Some(segment) = self.segments.back_mut() else {
            unreachable!("a segment was just pushed");
        };
        let before = segment.bytes.len();
        write(&mut segment.bytes);
        self.head += (segment.bytes.len() - before) as u64;
        if self.history_lines > 0 {
            self.history.push_back(start);
            self.forget_history();
        }
        start..self.head
    }

    /// Appends the concatenation of `parts` as one line (the caller ends
    /// it with a newline) and returns its range.
    pub fn append(&mut self, parts: &[&[u8]]) -> Range<u64> {
        self.append_with(|out| {
            for part in parts {
                out.extend_from_slice(part);
            }
        })
    }

    /// The bytes from position `from` up to `to` or to the end of `from`'s
    /// segment, whichever comes first: one contiguous slice, empty when
    /// `from >= to`.
    ///
    /// # Panics
    ///
    /// If `from` was trimmed away or lies past the head.
    pub fn slice(&self, from: u64, to: u64) -> &[u8] {
        if from >= to {
            return &[];
        }
        assert!(
            from >= self.tail() && from < self.head,
            "position {from} not in the log"
        );
        let i = self.segments.partition_point(|s| s.end() <= from);
        let segment = &self.segments[i];
        let at = (from - segment.start) as usize;
        let stop = (to.min(segment.end()) - segment.start) as usize;
        &segment.bytes[at..stop]
    }

    /// The position just after the first newline at or after `from`
    /// (before `to`), or `to` if there is none: where the line that
    /// `from` is in ends.
    pub fn line_end(&self, mut from: u64, to: u64) -> u64 {
        while from < to {
            let bytes = self.slice(from, to);
            match memchr::memchr(b'\n', bytes) {
                Some(i) => return from + i as u64 + 1,
                None => from += bytes.len() as u64,
            }
        }
        to
    }

    /// How many newlines lie in `range` (lines dropped for a reader).
    pub fn count_lines(&self, range: Range<u64>) -> u64 {
        let mut from = range.start.max(self.tail());
        let mut count = 0;
        while from < range.end {
            let bytes = self.slice(from, range.end);
            count += memchr::memchr_iter(b'\n', bytes).count() as u64;
            from += bytes.len() as u64;
        }
        count
    }

    /// Forgets the bytes before `keep` (or before the history, if it
    /// begins earlier): every segment that ends at or before it, except
    /// the last (the one being appended to), which is
    /// only replaced when a long line made it larger than two segments.
    pub fn trim(&mut self, keep: u64) {
        let keep = self.history.front().map_or(keep, |&start| keep.min(start));
        while self.segments.len() > 1 && self.segments[0].end() <= keep {
            self.segments.pop_front();
        }
        if let [last] = self.segments.make_contiguous()
            && last.end() <= keep
            && last.bytes.capacity() > 2 * SEGMENT
        {
            self.segments.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_get_consecutive_positions_and_read_back() {
        let mut log = Log::new();
        assert_eq!(log.append(&[b"[a] ", b"one\n"]), 0..8);
        assert_eq!(log.append(&[b"two\n"]), 8..12);
        assert_eq!(log.head(), 12);
        assert_eq!(log.slice(0, 12), b"[a] one\ntwo\n");
        assert_eq!(log.slice(4, 10), b"one\ntw");
        assert_eq!(log.slice(5, 5), b"");
        assert_eq!(log.line_end(5, 12), 8);
        assert_eq!(log.line_end(8, 11), 11);
        assert_eq!(log.count_lines(0..12), 2);
    }

    #[test]
    fn segments_hold_whole_lines_and_are_freed_once_passed() {
        let mut log = Log::new();
        let line = vec![b'x'; 1000];
        for _ in 0..200 {
            log.append(&[&line, b"\n"]);
        }
        assert!(log.segments.len() >= 3);
        for s in &log.segments {
            assert_eq!(s.bytes.last(), Some(&b'\n'), "a segment ends a line");
        }
        // A slice stops at the end of its segment.
        let first_end = log.segments[0].end();
        assert_eq!(log.slice(0, log.head()).len() as u64, first_end);
        log.trim(first_end);
        assert_eq!(log.tail(), first_end);
        log.trim(log.head());
        assert_eq!(log.segments.len(), 1, "the segment being appended to stays");
        let kept = log.head() - log.tail();
        assert_eq!(log.count_lines(log.tail()..log.head()), kept / 1001);
    }

    #[test]
    fn history_keeps_the_last_lines_within_its_bytes() {
        let mut log = Log::new();
        log.append(&[b"before\n"]);
        log.keep_history(3, 100);
        assert_eq!(log.history(), None);
        for i in 0..5 {
            log.append(&[format!("line {i}\n").as_bytes()]);
        }
        let (start, lines) = log.history().unwrap();
        assert_eq!(lines, 3);
        assert_eq!(log.slice(start, log.head()), b"line 2\nline 3\nline 4\n");
        // Every reader passed them: they stay.
        log.trim(log.head());
        assert_eq!(log.tail(), log.segments[0].start);
        assert!(log.tail() <= start);
        assert_eq!(log.slice(start, log.head()), b"line 2\nline 3\nline 4\n");
        // A line larger than the bytes allowed leaves no history.
        log.append(&[&[b'x'; 200], b"\n"]);
        assert_eq!(log.history(), None);
        log.append(&[b"after\n"]);
        assert_eq!(log.history().map(|(_, n)| n), Some(1));
    }

    #[test]
    fn a_long_line_is_one_segment_and_its_memory_goes_when_passed() {
        let mut log = Log::new();
        let long = vec![b'y'; 3 * SEGMENT];
        let range = log.append(&[&long, b"\n"]);
        assert_eq!(log.slice(range.start, range.end).len(), 3 * SEGMENT + 1);
        log.trim(range.end);
        assert_eq!(log.footprint(), 0);
        assert_eq!(log.tail(), log.head());
        assert_eq!(log.append(&[b"next\n"]), range.end..range.end + 5);
    }
}

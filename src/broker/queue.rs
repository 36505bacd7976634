//! A client's send queue: the lines waiting to be written to its socket,
//! bounded in bytes (`--max-queue`).
//!
//! A relayed line is formatted once, into an [`Rc<[u8]>`](Rc), and the same
//! allocation is pushed on the queue of every client that receives it
//! (Redis's shared reply objects): relaying a line to N clients costs N
//! reference-count increments and N queue slots, not N copies. A slot may
//! also hold a range of a shared chunk of whole lines
//! ([`SendQueue::push_range`]): the room relays the lines of a turn as one
//! chunk, and a client that spoke in it gets the ranges around its own
//! lines.
//!
//! The bound is on the bytes not yet written, counted in full for each
//! queue that holds a line (as Redis's `client-output-buffer-limit` counts
//! shared replies): a client that does not read fills only its own queue,
//! and [`SendQueue::push`] refuses the line that would take it past the
//! bound. The room then disconnects that client (IRC's "SendQ exceeded")
//! instead of waiting for it or letting its queue grow.

use std::collections::VecDeque;
use std::io::IoSlice;
use std::rc::Rc;

/// Slots an empty queue keeps; a larger capacity is freed when the queue
/// empties.
const KEEP_SLOTS: usize = 64;

/// A line refused by [`SendQueue::push`]: the queue would exceed its bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overflow;

/// Lines waiting to be written to one client, at most `limit` bytes.
#[derive(Debug, Clone)]
pub struct SendQueue {
    /// Shared chunks and the range of each still to write (the front one's
    /// start advances as it is written).
    lines: VecDeque<(Rc<[u8]>, usize, usize)>,
    /// Bytes not yet written, over all lines.
    bytes: usize,
    limit: usize,
}

impl SendQueue {
    /// An empty queue that holds at most `limit` unwritten bytes.
    pub fn new(limit: usize) -> SendQueue {
        SendQueue {
            lines: VecDeque::new(),
            bytes: 0,
            limit,
        }
    }

    /// Appends `line` (shared, not copied). Errors: [`Overflow`] if the
    /// unwritten bytes would exceed the limit; the queue is then unchanged.
    pub fn push(&mut self, line: &Rc<[u8]>) -> Result<(), Overflow> {
        self.push_range(line, 0..line.len())
    }

    /// Appends the bytes `range` of `chunk` (shared, not copied). Errors:
    /// [`Overflow`] as [`SendQueue::push`].
    ///
    /// # Panics
    ///
    /// If `range` is not within `chunk`.
    pub fn push_range(
        &mut self,
        chunk: &Rc<[u8]>,
        range: std::ops::Range<usize>,
    ) -> Result<(), Overflow> {
        assert!(range.start <= range.end && range.end <= chunk.len());
        if range.is_empty() {
            return Ok(());
        }
        let bytes = self.bytes + range.len();
        if bytes > self.limit {
            return Err(Overflow);
        }
        self.bytes = bytes;
        self.lines
            .push_back((Rc::clone(chunk), range.start, range.end));
        Ok(())
    }

    /// Whether every byte was written.
    pub fn is_empty(&self) -> bool {
        self.bytes == 0
    }

    /// Bytes not yet written.
    pub fn len(&self) -> usize {
        self.bytes
    }

    /// The bound, in bytes.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Changes the bound (`usize::MAX`: none, for a queue its owner empties
    /// by itself as it fills, such as standard output to a file).
    pub fn set_limit(&mut self, limit: usize) {
        self.limit = limit;
    }

    /// Fills `out` with the unwritten bytes, front first, for one
    /// `writev(2)`/`sendmsg(2)`, stopping after `max_bytes` bytes (the last
    /// slice is cut) or when `out` is full. Returns how many slices it set.
    pub fn io_slices<'a>(&'a self, out: &mut [IoSlice<'a>], max_bytes: usize) -> usize {
        let mut n = 0;
        let mut total = 0;
        for (chunk, start, end) in &self.lines {
            if n == out.len() || total >= max_bytes {
                break;
            }
            let bytes = &chunk[*start..*end];
            let take = bytes.len().min(max_bytes - total);
            out[n] = IoSlice::new(&bytes[..take]);
            n += 1;
            total += take;
        }
        n
    }

    /// Marks `n` more bytes as written (what `writev` returned), dropping
    /// the lines written in full.
    ///
    /// # Panics
    ///
    /// If `n` is more than [`SendQueue::len`].
    pub fn advance(&mut self, mut n: usize) {
        assert!(n <= self.bytes, "advance past the end of the queue");
        self.bytes -= n;
        while n > 0 {
            let Some((_, start, end)) = self.lines.front_mut() else {
                break;
            };
            let front = *end - *start;
            if n < front {
                *start += n;
                return;
            }
            n -= front;
            self.lines.pop_front();
        }
        if self.lines.is_empty() && self.lines.capacity() > KEEP_SLOTS {
            // A burst is over: give its slots back (an idle client holds a
            // few bytes, not the high-water mark of every burst).
            self.lines = VecDeque::new();
        }
    }

    /// Forgets every line (the client is gone).
    pub fn clear(&mut self) {
        self.lines = VecDeque::new();
        self.bytes = 0;
    }

    /// The unwritten bytes, concatenated (for tests).
    pub fn contents(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.bytes);
        for (chunk, start, end) in &self.lines {
            out.extend_from_slice(&chunk[*start..*end]);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(text: &str) -> Rc<[u8]> {
        Rc::from(text.as_bytes())
    }

    #[test]
    fn lines_are_shared_not_copied() {
        let shared = line("[a] hello\n");
        let mut one = SendQueue::new(100);
        let mut two = SendQueue::new(100);
        one.push(&shared).unwrap();
        two.push(&shared).unwrap();
        assert_eq!(Rc::strong_count(&shared), 3);
        one.advance(shared.len());
        assert_eq!(Rc::strong_count(&shared), 2);
    }

    #[test]
    fn the_bound_refuses_the_line_that_would_pass_it() {
        let mut q = SendQueue::new(10);
        q.push(&line("12345\n")).unwrap();
        assert_eq!(q.push(&line("1234\n")), Err(Overflow));
        assert_eq!(q.len(), 6);
        q.push(&line("123\n")).unwrap();
        assert_eq!(q.len(), 10);
        q.advance(7);
        assert_eq!(q.contents(), b"23\n");
        q.push(&line("abcdefg")).unwrap();
        assert_eq!(q.len(), 10);
    }

    #[test]
    fn ranges_of_a_shared_chunk() {
        let chunk = line("[a] x\n[b] y\n[a] z\n");
        let mut q = SendQueue::new(100);
        q.push_range(&chunk, 6..12).unwrap();
        q.push_range(&chunk, 18..18).unwrap();
        assert_eq!(q.contents(), b"[b] y\n");
        assert_eq!(Rc::strong_count(&chunk), 2);
        q.advance(2);
        assert_eq!(q.contents(), b"] y\n");
    }

    #[test]
    fn slices_follow_partial_writes() {
        let mut q = SendQueue::new(100);
        for text in ["ab\n", "cd\n", "ef\n"] {
            q.push(&line(text)).unwrap();
        }
        q.advance(4);
        let mut iov = [IoSlice::new(&[]); 8];
        let n = q.io_slices(&mut iov, usize::MAX);
        let got: Vec<u8> = iov[..n].iter().flat_map(|s| s.to_vec()).collect();
        assert_eq!(got, b"d\nef\n");
        let n = q.io_slices(&mut iov, 3);
        let got: Vec<u8> = iov[..n].iter().flat_map(|s| s.to_vec()).collect();
        assert_eq!(got, b"d\ne");
        let mut two = [IoSlice::new(&[]); 1];
        assert_eq!(q.io_slices(&mut two, usize::MAX), 1);
        q.advance(5);
        assert!(q.is_empty());
        let mut none = [IoSlice::new(&[]); 8];
        assert_eq!(q.io_slices(&mut none, usize::MAX), 0);
    }
}

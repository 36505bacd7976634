//! A reader's send queue: what waits to be written to one client (or to
//! the server's standard output), as a cursor into the room's
//! [`Log`] plus a small private queue.
//!
//! - **The log part.** The reader's next byte is at `cursor`; everything
//!   from there to the head of the log is for it, except its *own* ranges:
//!   the lines it said itself (no echo) and the notices about itself,
//!   which the queue skips. A line relayed to N readers is stored once and
//!   costs each reader nothing until it is written: a backlog is a
//!   distance, not a list, and the room's memory is its distinct bytes,
//!   not clients × lines.
//! - **The private part.** What goes to this reader alone (answers to its
//!   commands, `/msg`, its greeting, its own `too slow` notice) is queued
//!   here, each line tagged with the log position it was said at, so that
//!   it is written between the same lines as it was said: every reader
//!   sees one order. Lines are shared [`Rc`] buffers (Redis's shared reply
//!   objects): a line for several readers is one allocation.
//! - **Line ends.** A reader whose own lines end in CRLF receives CRLF: each
//!   newline is written as `\r\n`, at write time, so the log stays one copy.
//!
//! [`SendQueue::pending`] is the reader's backlog in bytes, the figure the
//! room compares with its high- and low-water marks and with
//! `--max-queue`; [`SendQueue::waiting_since`] is how long the reader has
//! accepted nothing while lines waited for it, the figure compared with
//! `--stall-timeout` (see [`super::pace`]).

use std::collections::VecDeque;
use std::io::IoSlice;
use std::rc::Rc;
use std::time::Instant;

use super::log::Log;

/// A line (or the rest of one) for this reader alone.
#[derive(Debug, Clone)]
struct Private {
    /// The log position it was said at: it is written once the cursor
    /// reaches it, before the log bytes from there.
    at: u64,
    bytes: Rc<[u8]>,
    /// The unwritten part, `bytes[start..end]`.
    start: usize,
    end: usize,
}

/// What waits to be written to one reader: see the [module
/// documentation](self).
#[derive(Debug, Clone)]
pub struct SendQueue {
    cursor: u64,
    /// No log byte from here on is for this reader (it left the room).
    end: Option<u64>,
    /// Ranges of the log ahead of the cursor that are not for this reader,
    /// in order, disjoint.
    own: VecDeque<(u64, u64)>,
    own_bytes: u64,
    private: VecDeque<Private>,
    private_bytes: usize,
    /// Newlines are written as `\r\n`.
    crlf: bool,
    /// The `\r` of a `\r\n` was written, not yet its `\n`.
    half_crlf: bool,
    /// Since when lines wait for this reader without it accepting a byte
    /// (`None` when nothing waits).
    waiting_since: Option<Instant>,
    /// Its socket was full after the last write attempt.
    full: bool,
    /// It made room in its socket after it filled, since lines began to
    /// wait (it reads).
    drained: bool,
    /// Whether its kernel took bytes was asked, and it had not, since it
    /// last made room (see [`super::pace::should_ask`]).
    asked: bool,
}

/// The newline of a CRLF reader, and its second half.
const CRLF: &[u8] = b"\r\n";
const LF: &[u8] = b"\n";

/// Where the walk over a queue's bytes stands (a copy of the queue's
/// state, advanced as the bytes are taken).
#[derive(Debug, Clone, Copy)]
struct Walk {
    pos: u64,
    /// Own ranges and private lines passed.
    own: usize,
    private: usize,
    /// The start of the unwritten part of private line `private`.
    pstart: usize,
    half: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Bytes of the log (`Walk::pos` advances by as many).
    Log,
    /// Bytes of a private line (`Walk::pstart` advances).
    Private,
    /// `\r\n` for one newline of the source.
    Crlf,
    /// The `\n` of a half-written `\r\n`.
    Lf,
}

impl SendQueue {
    /// An empty queue whose reader starts at log position `at` (the head
    /// when it arrives: what was said before is not for it).
    pub fn new(at: u64) -> SendQueue {
        SendQueue {
            cursor: at,
            end: None,
            own: VecDeque::new(),
            own_bytes: 0,
            private: VecDeque::new(),
            private_bytes: 0,
            crlf: false,
            half_crlf: false,
            waiting_since: None,
            full: false,
            drained: false,
            asked: false,
        }
    }

    /// The log position of the reader's next byte.
    pub fn cursor(&self) -> u64 {
        self.cursor
    }

    /// Moves a reader that has not started yet (nothing written, nothing
    /// private) to log position `at`.
    pub fn start_at(&mut self, at: u64) {
        debug_assert!(self.private.is_empty() && self.own.is_empty());
        self.cursor = at;
    }

    /// Whether this reader still needs log bytes (its cursor holds the log
    /// back): it has not left, or has left with log bytes still to write.
    pub fn reads_log(&self) -> bool {
        self.end.is_none_or(|end| self.cursor < end)
    }

    /// The log position it stops reading at, if it left the room.
    pub fn end(&self) -> Option<u64> {
        self.end
    }

    /// Stops the reader's log at `at` (it left the room at that point).
    pub fn stop_at(&mut self, at: u64) {
        let at = at.max(self.cursor);
        self.end = Some(self.end.map_or(at, |end| end.min(at)));
    }

    /// Writes newlines as `\r\n` from now on.
    pub fn set_crlf(&mut self) {
        self.crlf = true;
    }

    /// Whether newlines are written as `\r\n`.
    pub fn crlf(&self) -> bool {
        self.crlf
    }

    /// The log range `range` is not for this reader (a line it said, a
    /// notice about itself). Ranges come in order, at the head.
    pub fn exclude(&mut self, range: std::ops::Range<u64>) {
        if range.is_empty() {
            return;
        }
        self.own_bytes += range.end - range.start;
        match self.own.back_mut() {
            Some((_, last)) if *last == range.start => *last = range.end,
            _ => self.own.push_back((range.start, range.end)),
        }
    }

    /// Queues `line` (shared, not copied) for this reader alone, at log
    /// position `at` (the head when it was said).
    pub fn push(&mut self, at: u64, line: &Rc<[u8]>) {
        if line.is_empty() {
            return;
        }
        self.private_bytes += line.len();
        // Past its end (it left), a line comes right after what is left.
        let at = at.max(self.cursor).min(self.end.unwrap_or(u64::MAX));
        self.private.push_back(Private {
            at,
            bytes: Rc::clone(line),
            start: 0,
            end: line.len(),
        });
    }

    /// Bytes waiting for this reader, log head `head`: the log from its
    /// cursor (to its end, if it left) without its own ranges, and its
    /// private lines. A CRLF reader receives one byte more per line.
    pub fn pending(&self, head: u64) -> usize {
        let limit = self.end.map_or(head, |end| end.min(head));
        let log = limit
            .saturating_sub(self.cursor)
            .saturating_sub(self.own_bytes);
        usize::try_from(log).unwrap_or(usize::MAX) + self.private_bytes
    }

    /// The reader's backlog, the figure the room's marks and `--max-queue`
    /// apply to: its distance behind the head of the log (its own ranges
    /// included: they hold the log as much as the others' lines) plus its
    /// private lines.
    pub fn backlog(&self, head: u64) -> usize {
        let limit = self.end.map_or(head, |end| end.min(head));
        let log = limit.saturating_sub(self.cursor);
        usize::try_from(log).unwrap_or(usize::MAX) + self.private_bytes
    }

    /// Whether nothing waits for this reader.
    pub fn is_empty(&self, head: u64) -> bool {
        self.pending(head) == 0
    }

    /// The log bytes it is behind the head (its own ranges included): how
    /// much of the log its cursor holds.
    pub fn behind(&self, head: u64) -> u64 {
        head.saturating_sub(self.cursor)
    }

    /// Since when lines wait for this reader without it accepting a byte.
    pub fn waiting_since(&self) -> Option<Instant> {
        self.waiting_since
    }

    /// Whether it made room in its socket after the socket filled, since
    /// lines began to wait (see [`super::pace::moving`]).
    pub fn drained(&self) -> bool {
        self.drained
    }

    /// Records a write attempt at `now` that took `written` bytes, after
    /// which the socket is `full` (it took less than offered): the stall
    /// clock restarts on progress, starts when lines begin to wait, and
    /// stops when nothing waits; bytes taken by a socket that was full
    /// mean the reader reads.
    pub fn note_write(&mut self, head: u64, written: usize, full: bool, now: Instant) {
        if self.is_empty(head) {
            self.waiting_since = None;
            self.drained = false;
            self.asked = false;
        } else if written > 0 || self.waiting_since.is_none() {
            if written > 0 && self.full {
                self.drained = true;
            }
            self.waiting_since = Some(now);
            self.asked = false;
        }
        self.full = full && !self.is_empty(head);
    }

    /// Records that, while lines waited, the reader's kernel took bytes of
    /// its socket's send queue at `now` without a write of ours (it
    /// acknowledged them: `SIOCOUTQ` went down): the reader reads, as if
    /// it had made room (see [`super::pace::should_ask`]). Nothing changes
    /// when nothing waits.
    pub fn note_taken(&mut self, now: Instant) {
        if self.waiting_since.is_some() {
            self.waiting_since = Some(now);
            self.drained = true;
            self.asked = false;
        }
    }

    /// Records that the room asked whether the reader's kernel took bytes,
    /// and it had not.
    pub fn note_asked(&mut self) {
        self.asked = true;
    }

    /// Whether the room asked whether its kernel took bytes, and it had
    /// not, since it last made room.
    pub fn asked(&self) -> bool {
        self.asked
    }

    /// Forgets everything but the rest of the line being written (so that
    /// the reader never receives half a line followed by something else),
    /// and stops the log there: the reader no longer holds the log. What
    /// is pushed afterwards follows that rest.
    pub fn detach(&mut self, log: &Log) {
        let limit = self.end.map_or(log.head(), |end| end.min(log.head()));
        // A private line begun is finished; otherwise a log line begun.
        let mut keep = VecDeque::new();
        let mut kept = 0;
        if let Some(front) = self.private.front()
            && front.at <= self.cursor
            && front.start > 0
        {
            kept += front.end - front.start;
            keep.push_back(front.clone());
        } else if self.cursor < limit && !self.at_line_start(log) {
            let end = log.line_end(self.cursor, limit);
            let mut rest = Vec::with_capacity((end - self.cursor) as usize);
            let mut at = self.cursor;
            while at < end {
                let bytes = log.slice(at, end);
                rest.extend_from_slice(bytes);
                at += bytes.len() as u64;
            }
            kept += rest.len();
            let len = rest.len();
            keep.push_back(Private {
                at: self.cursor,
                bytes: Rc::from(rest),
                start: 0,
                end: len,
            });
        } else {
            self.half_crlf = false;
        }
        self.private = keep;
        self.private_bytes = kept;
        self.own.clear();
        self.own_bytes = 0;
        self.end = Some(self.cursor);
    }

    /// Whether the cursor is at the start of a log line (nothing of the
    /// line at the cursor was written).
    fn at_line_start(&self, log: &Log) -> bool {
        if self.half_crlf {
            return false;
        }
        self.cursor == 0
            || self.cursor <= log.tail()
            || log.slice(self.cursor - 1, self.cursor) == b"\n"
    }

    /// Skips (without writing) the reader's own ranges at its cursor.
    pub fn settle(&mut self) {
        let due = self.private.front().is_some_and(|p| p.at <= self.cursor);
        if due || self.half_crlf {
            return;
        }
        while let Some(&(a, b)) = self.own.front() {
            if a > self.cursor {
                break;
            }
            self.cursor = self.cursor.max(b);
            self.own_bytes -= b - a;
            self.own.pop_front();
            if self.private.front().is_some_and(|p| p.at <= self.cursor) {
                break;
            }
        }
    }

    /// Drops the whole log part for a reader that cannot keep up (the
    /// server's standard output): the cursor jumps to the head, after the
    /// rest of the line being written. Returns how many lines were dropped.
    pub fn skip_to_head(&mut self, log: &Log) -> u64 {
        let head = log.head();
        let limit = self.end.map_or(head, |end| end.min(head));
        if self.cursor >= limit {
            return 0;
        }
        let mut from = self.cursor;
        let mut rest = Vec::new();
        if !self.at_line_start(log) && self.private.front().is_none_or(|p| p.at > from) {
            let end = log.line_end(from, limit);
            while from < end {
                let bytes = log.slice(from, end);
                rest.extend_from_slice(bytes);
                from += bytes.len() as u64;
            }
        }
        let mut dropped = 0;
        let mut at = from;
        for &(a, b) in &self.own {
            if a >= limit {
                break;
            }
            if a > at {
                dropped += log.count_lines(at..a);
            }
            at = at.max(b);
        }
        if at < limit {
            dropped += log.count_lines(at..limit);
        }
        if !rest.is_empty() {
            let len = rest.len();
            self.private_bytes += len;
            self.private.push_front(Private {
                at: self.cursor,
                bytes: Rc::from(rest),
                start: 0,
                end: len,
            });
        } else {
            self.half_crlf = false;
        }
        // Private lines said within the dropped part are still written,
        // after the rest of the line begun.
        for p in &mut self.private {
            p.at = limit;
        }
        self.own.clear();
        self.own_bytes = 0;
        self.cursor = limit;
        dropped
    }

    /// Fills `out` with the unwritten bytes, front first, for one
    /// `writev(2)`, stopping after `max_bytes` bytes (the last slice is
    /// cut) or when `out` is full. Returns how many slices it set.
    pub fn io_slices<'a>(
        &'a self,
        log: &'a Log,
        out: &mut [IoSlice<'a>],
        max_bytes: usize,
    ) -> usize {
        let mut walk = self.walk();
        let mut n = 0;
        let mut total = 0;
        while n < out.len() && total < max_bytes {
            let Some((bytes, _, _)) = self.step(log, &mut walk) else {
                break;
            };
            let take = bytes.len().min(max_bytes - total);
            out[n] = IoSlice::new(&bytes[..take]);
            n += 1;
            total += take;
        }
        n
    }

    /// Marks `n` more bytes as written (what `writev` returned, after
    /// [`SendQueue::io_slices`]).
    ///
    /// # Panics
    ///
    /// If `n` is more than was offered.
    pub fn advance(&mut self, log: &Log, mut n: usize) {
        let mut walk = self.walk();
        while n > 0 {
            let Some((bytes, kind, start)) = self.step(log, &mut walk) else {
                panic!("advance past the end of the queue");
            };
            if n >= bytes.len() {
                n -= bytes.len();
                continue;
            }
            walk = partial(start, kind, n);
            n = 0;
        }
        self.apply(walk);
        self.settle();
    }

    /// The unwritten bytes, concatenated (for tests).
    pub fn contents(&self, log: &Log) -> Vec<u8> {
        let mut walk = self.walk();
        let mut out = Vec::new();
        while let Some((bytes, _, _)) = self.step(log, &mut walk) {
            out.extend_from_slice(bytes);
        }
        out
    }

    fn walk(&self) -> Walk {
        Walk {
            pos: self.cursor,
            own: 0,
            private: 0,
            pstart: self.private.front().map_or(0, |p| p.start),
            half: self.half_crlf,
        }
    }

    /// Makes the queue's state that of `walk`.
    fn apply(&mut self, walk: Walk) {
        for _ in 0..walk.own {
            if let Some((a, b)) = self.own.pop_front() {
                self.own_bytes -= b - a;
            }
        }
        for _ in 0..walk.private {
            if let Some(p) = self.private.pop_front() {
                self.private_bytes -= p.end - p.start;
            }
        }
        if let Some(front) = self.private.front_mut() {
            self.private_bytes -= walk.pstart - front.start;
            front.start = walk.pstart;
            if front.start == front.end {
                self.private.pop_front();
            }
        }
        self.cursor = walk.pos;
        self.half_crlf = walk.half;
    }

    /// The next bytes to write after `walk`, what they are, and the walk
    /// just before them; advances `walk` past them. `None` when everything
    /// is written.
    fn step<'a>(&'a self, log: &'a Log, walk: &mut Walk) -> Option<(&'a [u8], Kind, Walk)> {
        let limit = self.end.map_or(log.head(), |end| end.min(log.head()));
        loop {
            // A private line said at this position comes first.
            if let Some(p) = self.private.get(walk.private)
                && p.at <= walk.pos
            {
                let rest = &p.bytes[walk.pstart..p.end];
                if rest.is_empty() {
                    walk.private += 1;
                    walk.pstart = self.private.get(walk.private).map_or(0, |p| p.start);
                    walk.half = false;
                    continue;
                }
                let start = *walk;
                let (bytes, kind) = self.text(rest, walk, false);
                return Some((bytes, kind, start));
            }
            if let Some(&(a, b)) = self.own.get(walk.own)
                && a <= walk.pos
                && !walk.half
            {
                walk.pos = walk.pos.max(b);
                walk.own += 1;
                continue;
            }
            let mut stop = limit;
            if let Some(p) = self.private.get(walk.private) {
                stop = stop.min(p.at);
            }
            if let Some(&(a, _)) = self.own.get(walk.own) {
                stop = stop.min(a.max(walk.pos + u64::from(walk.half)));
            }
            if walk.pos >= stop {
                if walk.pos >= limit {
                    return None;
                }
                continue;
            }
            let start = *walk;
            let (bytes, kind) = self.text(log.slice(walk.pos, stop), walk, true);
            return Some((bytes, kind, start));
        }
    }

    /// The next piece of `rest` (the unwritten bytes of the current
    /// source, log or private) for this reader: with CRLF line ends, the
    /// text up to a newline, or the newline as `\r\n` (or its `\n` alone
    /// after a half-written one).
    fn text<'a>(&self, rest: &'a [u8], walk: &mut Walk, log: bool) -> (&'a [u8], Kind) {
        let mut forward = |n: usize| {
            if log {
                walk.pos += n as u64;
            } else {
                walk.pstart += n;
            }
        };
        if !self.crlf {
            forward(rest.len());
            return (rest, if log { Kind::Log } else { Kind::Private });
        }
        if walk.half {
            walk.half = false;
            forward(1);
            return (LF, Kind::Lf);
        }
        match memchr::memchr(b'\n', rest) {
            Some(0) => {
                forward(1);
                (CRLF, Kind::Crlf)
            }
            found => {
                let text = &rest[..found.unwrap_or(rest.len())];
                forward(text.len());
                (text, if log { Kind::Log } else { Kind::Private })
            }
        }
    }
}

/// The walk `start` of a piece of kind `kind`, advanced by `n` bytes of
/// it (fewer than the whole piece).
fn partial(mut start: Walk, kind: Kind, n: usize) -> Walk {
    match kind {
        Kind::Log => start.pos += n as u64,
        Kind::Private => start.pstart += n,
        // `\r` written, `\n` still to write: the source stays on it.
        Kind::Crlf => start.half = n > 0,
        Kind::Lf => {}
    }
    start
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(text: &str) -> Rc<[u8]> {
        Rc::from(text.as_bytes())
    }

    fn said(log: &mut Log, text: &str) -> std::ops::Range<u64> {
        log.append(&[text.as_bytes()])
    }

    /// Writes at most `max` bytes at a time, as a socket might take them;
    /// returns everything written.
    fn drain(q: &mut SendQueue, log: &Log, max: usize) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let mut iov = [IoSlice::new(&[]); 4];
            let n = q.io_slices(log, &mut iov, max);
            let bytes: Vec<u8> = iov[..n].iter().flat_map(|s| s.to_vec()).collect();
            if bytes.is_empty() {
                return out;
            }
            q.advance(log, bytes.len());
            out.extend_from_slice(&bytes);
        }
    }

    #[test]
    fn a_reader_gets_the_log_from_its_cursor_without_its_own_lines() {
        let mut log = Log::new();
        said(&mut log, "before\n");
        let mut q = SendQueue::new(log.head());
        said(&mut log, "[b] hi\n");
        let own = said(&mut log, "[a] mine\n");
        q.exclude(own);
        said(&mut log, "[b] bye\n");
        assert_eq!(q.pending(log.head()), 15);
        assert_eq!(q.contents(&log), b"[b] hi\n[b] bye\n");
        assert_eq!(drain(&mut q, &log, 3), b"[b] hi\n[b] bye\n");
        assert!(q.is_empty(log.head()));
        assert_eq!(q.cursor(), log.head());
    }

    #[test]
    fn private_lines_come_between_the_lines_they_were_said_between() {
        let mut log = Log::new();
        let mut q = SendQueue::new(0);
        said(&mut log, "one\n");
        q.push(log.head(), &line("* answer\n"));
        said(&mut log, "two\n");
        q.push(log.head(), &line("* last\n"));
        assert_eq!(q.pending(log.head()), 24);
        assert_eq!(drain(&mut q, &log, 5), b"one\n* answer\ntwo\n* last\n");
        assert_eq!(q.pending(log.head()), 0);
    }

    #[test]
    fn crlf_readers_get_crlf_whatever_the_cuts() {
        let mut log = Log::new();
        for max in 1..8 {
            let mut q = SendQueue::new(log.head());
            q.set_crlf();
            said(&mut log, "ab\n");
            q.push(log.head(), &line("c\n\n"));
            said(&mut log, "d\n");
            assert_eq!(
                drain(&mut q, &log, max),
                b"ab\r\nc\r\n\r\nd\r\n",
                "cut {max}"
            );
        }
    }

    #[test]
    fn the_stall_clock_runs_only_while_lines_wait_and_nothing_is_taken() {
        let mut log = Log::new();
        let mut q = SendQueue::new(0);
        let t0 = Instant::now();
        q.note_write(log.head(), 0, false, t0);
        assert_eq!(q.waiting_since(), None, "nothing waits");
        said(&mut log, "line\n");
        q.note_write(log.head(), 0, true, t0);
        assert_eq!(q.waiting_since(), Some(t0));
        let t1 = t0 + std::time::Duration::from_secs(1);
        q.note_write(log.head(), 0, true, t1);
        assert_eq!(q.waiting_since(), Some(t0), "no progress: the clock runs");
        assert!(!q.drained());
        q.advance(&log, 2);
        q.note_write(log.head(), 2, true, t1);
        assert_eq!(q.waiting_since(), Some(t1), "progress restarts it");
        assert!(q.drained(), "room made in a full socket: it reads");
        q.advance(&log, 3);
        q.note_write(log.head(), 3, false, t1);
        assert_eq!(q.waiting_since(), None);
        assert!(!q.drained());
    }

    #[test]
    fn detach_keeps_the_rest_of_the_line_begun_and_what_follows() {
        let mut log = Log::new();
        let mut q = SendQueue::new(0);
        said(&mut log, "first line\n");
        said(&mut log, "second\n");
        q.advance(&log, 4);
        q.detach(&log);
        assert!(!q.reads_log());
        said(&mut log, "later\n");
        q.push(log.head(), &line("* a left (too slow)\n"));
        assert_eq!(q.contents(&log), b"t line\n* a left (too slow)\n");
        // At a line start, nothing of the log is kept.
        let mut q = SendQueue::new(0);
        q.advance(&log, 11);
        q.detach(&log);
        assert_eq!(q.pending(log.head()), 0);
    }

    #[test]
    fn skipping_to_the_head_counts_the_lines_dropped() {
        let mut log = Log::new();
        let mut q = SendQueue::new(0);
        said(&mut log, "abc\n");
        let own = said(&mut log, "[chatd] mine\n");
        q.exclude(own);
        said(&mut log, "def\n");
        said(&mut log, "ghi\n");
        q.advance(&log, 1);
        assert_eq!(q.skip_to_head(&log), 2, "def and ghi; abc is finished");
        assert_eq!(q.contents(&log), b"bc\n");
        said(&mut log, "new\n");
        assert_eq!(q.contents(&log), b"bc\nnew\n");
    }

    #[test]
    fn lines_are_shared_not_copied() {
        let shared = line("[a] hello\n");
        let mut one = SendQueue::new(0);
        let mut two = SendQueue::new(0);
        one.push(0, &shared);
        two.push(0, &shared);
        assert_eq!(Rc::strong_count(&shared), 3);
        let log = Log::new();
        one.advance(&log, shared.len());
        assert_eq!(Rc::strong_count(&shared), 2);
    }
}

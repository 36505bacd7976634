//! Line framing for the room: a byte stream, read in chunks of any size,
//! cut into lines that are relayed whole.
//!
//! # The rule
//!
//! A *line* is what comes before a `\n`; one `\r` just before that `\n` is
//! not part of it (CRLF clients such as `telnet` are accepted, and the `\r`
//! is not relayed). The last line of a stream counts even without its `\n`
//! once the end is known ([`Framer::finish`]), as if the `\n` were there.
//!
//! A line is given as one [`Piece`] when it has at most `max_line` bytes
//! (`--max-line`). A longer line is given as pieces of exactly `max_line`
//! bytes, the last one shorter or equal, each relayed as its own line (as an
//! IRC server cuts at its maximum line length, except that nothing is
//! lost). An empty line is one empty piece.
//!
//! The pieces depend only on the bytes, never on how they were split across
//! reads (the property tests of this module check it against the rule
//! applied to the whole stream at once).
//!
//! # Memory
//!
//! A [`Framer`] keeps at most `max_line` bytes of an unfinished line, plus
//! one flag for a `\r` that may still be the first half of a CRLF: the
//! bytes of a line are handed on as soon as `max_line` of them are known to
//! be followed by more of the same line. Complete lines that arrive in one
//! chunk are handed on straight from that chunk, without a copy.

use std::ops::ControlFlow;

/// Part of a line, as [`Framer`] hands it on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Piece<'a> {
    /// The bytes, without `\n` and without the `\r` of a CRLF; at most
    /// `max_line` bytes.
    pub text: &'a [u8],
    /// This piece is the beginning of its line.
    pub starts_line: bool,
    /// This piece is the end of its line. A line of at most `max_line`
    /// bytes is one piece that both starts and ends it.
    pub ends_line: bool,
    /// The line ended with `\r\n` (only on a piece that ends its line).
    pub crlf: bool,
}

impl Piece<'_> {
    /// Whether this piece is a whole line (it both starts and ends it).
    pub fn is_whole_line(&self) -> bool {
        self.starts_line && self.ends_line
    }
}

/// Cuts one byte stream into [`Piece`]s of at most `max_line` bytes; see
/// the [module documentation](self) for the rule.
#[derive(Debug, Clone)]
pub struct Framer {
    max_line: usize,
    /// The unfinished line (or its unfinished piece): at most `max_line`
    /// bytes.
    buf: Vec<u8>,
    /// `buf` is full and a `\r` followed it: the `\r` belongs to the line
    /// if anything but `\n` comes next.
    cr: bool,
    /// Pieces of the current line were already handed on.
    continued: bool,
}

impl Framer {
    /// A framer for lines of at most `max_line` bytes (at least 1).
    ///
    /// # Panics
    ///
    /// If `max_line` is 0 (the command line refuses it before).
    pub fn new(max_line: usize) -> Framer {
        assert!(max_line > 0, "max_line must be at least 1");
        Framer {
            max_line,
            buf: Vec::new(),
            cr: false,
            continued: false,
        }
    }

    /// How many bytes of an unfinished line are held (at most `max_line`).
    pub fn held(&self) -> usize {
        self.buf.len() + usize::from(self.cr)
    }

    /// Hands `each` the pieces that `input` completes, in order. `input`
    /// continues the stream given to earlier calls. If `each` breaks, the
    /// rest of `input` is dropped and the framer should not be used again
    /// (its client is leaving).
    pub fn push(
        &mut self,
        mut input: &[u8],
        mut each: impl FnMut(Piece<'_>) -> ControlFlow<()>,
    ) -> ControlFlow<()> {
        let max = self.max_line;
        while !input.is_empty() {
            if self.cr {
                // The buffer is full and a `\r` followed it.
                self.cr = false;
                if input[0] == b'\n' {
                    input = &input[1..];
                    self.emit(&mut each, Text::Held, End::Line { crlf: true })?;
                } else {
                    // The `\r` was part of the line: it starts the next piece.
                    let flow = self.emit(&mut each, Text::Held, End::Piece);
                    self.buf.push(b'\r');
                    flow?;
                }
                continue;
            }
            if self.buf.len() == max {
                // The buffer is full: the next byte says whether the line
                // ends here or goes on in another piece.
                // `\n`: the line ends (a `\r` ending the buffer was the
                // first half of a CRLF); `\r\n`: it ends, with the buffer.
                let ends = match input {
                    [b'\n', ..] => Some((1, Text::HeldLine, self.buf.ends_with(b"\r"))),
                    [b'\r', b'\n', ..] => Some((2, Text::Held, true)),
                    _ => None,
                };
                if let Some((used, text, crlf)) = ends {
                    input = &input[used..];
                    self.emit(&mut each, text, End::Line { crlf })?;
                    continue;
                }
                if input == b"\r" {
                    // Maybe the first half of a CRLF: the next chunk decides.
                    self.cr = true;
                    return ControlFlow::Continue(());
                }
                self.emit(&mut each, Text::Held, End::Piece)?;
                continue;
            }
            match memchr(b'\n', input) {
                Some(i) if self.buf.is_empty() => {
                    // A complete line in this chunk: no copy.
                    let crlf = input[..i].ends_with(b"\r");
                    let line = strip_cr(&input[..i]);
                    input = &input[i + 1..];
                    let mut chunks = line.chunks(max).peekable();
                    if chunks.peek().is_none() {
                        self.emit(&mut each, Text::Input(&[]), End::Line { crlf })?;
                        continue;
                    }
                    while let Some(text) = chunks.next() {
                        let end = match chunks.peek() {
                            None => End::Line { crlf },
                            Some(_) => End::Piece,
                        };
                        self.emit(&mut each, Text::Input(text), end)?;
                    }
                }
                Some(i) if self.buf.len() + i <= max => {
                    // The end of the held line, and it fits.
                    self.buf.extend_from_slice(&input[..i]);
                    input = &input[i + 1..];
                    let crlf = self.buf.ends_with(b"\r");
                    self.emit(&mut each, Text::HeldLine, End::Line { crlf })?;
                }
                _ => {
                    // No end of line within reach: fill the buffer (the
                    // full-buffer case above then decides).
                    let room = max - self.buf.len();
                    let take = room.min(input.len());
                    self.buf.extend_from_slice(&input[..take]);
                    input = &input[take..];
                }
            }
        }
        ControlFlow::Continue(())
    }

    /// End of the stream: hands `each` the last line if it had no `\n`
    /// (a trailing `\r` is dropped as if the `\n` followed), then forgets
    /// everything, ready for a new stream.
    pub fn finish(
        &mut self,
        mut each: impl FnMut(Piece<'_>) -> ControlFlow<()>,
    ) -> ControlFlow<()> {
        if self.buf.is_empty() && !self.cr && !self.continued {
            return ControlFlow::Continue(());
        }
        let text = if self.cr { Text::Held } else { Text::HeldLine };
        self.emit(&mut each, text, End::Line { crlf: false })
    }

    /// Hands `each` the next piece of the current line (its first unless
    /// pieces of it were handed on already), then moves on: after the end
    /// of a line to a fresh one ([`Framer::reset`]), after a piece to the
    /// rest of the line, with an empty buffer. Returns what `each` said.
    fn emit(
        &mut self,
        each: &mut impl FnMut(Piece<'_>) -> ControlFlow<()>,
        text: Text<'_>,
        end: End,
    ) -> ControlFlow<()> {
        let text = match text {
            Text::Held => &self.buf[..],
            Text::HeldLine => strip_cr(&self.buf),
            Text::Input(text) => text,
        };
        let flow = each(Piece {
            text,
            starts_line: !self.continued,
            ends_line: matches!(end, End::Line { .. }),
            crlf: matches!(end, End::Line { crlf: true }),
        });
        match end {
            End::Line { .. } => self.reset(),
            End::Piece => {
                self.buf.clear();
                self.continued = true;
            }
        }
        flow
    }

    /// A line ended: start the next one afresh, giving back the memory of
    /// an unusually long buffer.
    fn reset(&mut self) {
        self.buf.clear();
        self.cr = false;
        self.continued = false;
        if self.buf.capacity() > SHRINK_ABOVE {
            self.buf = Vec::new();
        }
    }
}

/// The bytes of a piece, for [`Framer::emit`].
#[derive(Debug, Clone, Copy)]
enum Text<'a> {
    /// The held buffer, whole.
    Held,
    /// The held buffer without one trailing `\r` (the line ended with
    /// `\n`, and that `\r` was the first half of a CRLF).
    HeldLine,
    /// Bytes of the chunk being pushed, handed on without a copy.
    Input(&'a [u8]),
}

/// How a piece ends, for [`Framer::emit`].
#[derive(Debug, Clone, Copy)]
enum End {
    /// More of the line follows in other pieces.
    Piece,
    /// The line ends, with `\r\n` if `crlf`.
    Line {
        /// The line ended with `\r\n`.
        crlf: bool,
    },
}

/// A line buffer with more capacity than this (bytes) is freed when its
/// line ends, so that one long line does not keep its memory for the life
/// of the connection.
const SHRINK_ABOVE: usize = 4096;

/// `line` without one trailing `\r`.
fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// The index of the first `needle` in `haystack` (the standard library's
/// slice search, which the compiler vectorises).
#[inline]
fn memchr(needle: u8, haystack: &[u8]) -> Option<usize> {
    haystack.iter().position(|&b| b == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A piece as owned data, for comparisons.
    #[derive(Debug, Clone, PartialEq, Eq)]
    struct Owned {
        text: Vec<u8>,
        starts: bool,
        ends: bool,
    }

    fn frame(max: usize, chunks: &[&[u8]], finish: bool) -> Vec<Owned> {
        let mut framer = Framer::new(max);
        let mut out = Vec::new();
        let mut keep = |p: Piece<'_>| {
            out.push(Owned {
                text: p.text.to_vec(),
                starts: p.starts_line,
                ends: p.ends_line,
            });
            ControlFlow::Continue(())
        };
        for chunk in chunks {
            let _ = framer.push(chunk, &mut keep);
            assert!(framer.held() <= max + 1);
        }
        if finish {
            let _ = framer.finish(&mut keep);
        }
        out
    }

    /// The rule of the module documentation, applied to the whole stream.
    fn model(max: usize, stream: &[u8]) -> Vec<Owned> {
        let mut out = Vec::new();
        let mut lines: Vec<&[u8]> = stream.split(|&b| b == b'\n').collect();
        let last = lines.pop().unwrap_or_default();
        if !last.is_empty() {
            lines.push(last);
        }
        for line in lines {
            let line = strip_cr(line);
            if line.is_empty() {
                out.push(Owned {
                    text: Vec::new(),
                    starts: true,
                    ends: true,
                });
                continue;
            }
            let n = line.len().div_ceil(max);
            for (i, chunk) in line.chunks(max).enumerate() {
                out.push(Owned {
                    text: chunk.to_vec(),
                    starts: i == 0,
                    ends: i + 1 == n,
                });
            }
        }
        out
    }

    fn texts(pieces: &[Owned]) -> Vec<&[u8]> {
        pieces.iter().map(|p| &p.text[..]).collect()
    }

    #[test]
    fn lines_whole_and_crlf() {
        let out = frame(100, &[b"hello\nbonjour\r\n\nlast"], true);
        assert_eq!(texts(&out), [&b"hello"[..], b"bonjour", b"", b"last"]);
        assert!(out.iter().all(|p| p.starts && p.ends));
    }

    #[test]
    fn a_line_split_across_reads_is_one_piece() {
        let out = frame(100, &[b"hel", b"lo wor", b"ld\r", b"\nnext"], false);
        assert_eq!(texts(&out), [&b"hello world"[..]]);
    }

    #[test]
    fn long_lines_come_in_pieces_of_max_line() {
        let out = frame(4, &[b"abcdefghij\n"], false);
        assert_eq!(texts(&out), [&b"abcd"[..], b"efgh", b"ij"]);
        assert_eq!(
            out.iter().map(|p| (p.starts, p.ends)).collect::<Vec<_>>(),
            [(true, false), (false, false), (false, true)]
        );
        // Exactly max_line: one piece, no empty tail.
        assert_eq!(texts(&frame(4, &[b"abcd\r\n"], false)), [&b"abcd"[..]]);
        assert_eq!(
            texts(&frame(4, &[b"abcd", b"\r", b"\n"], false)),
            [&b"abcd"[..]]
        );
    }

    #[test]
    fn a_cr_after_a_full_buffer_waits_for_the_next_byte() {
        // "abcd" then CR: CRLF ends the line, CR then x belongs to it.
        assert_eq!(
            texts(&frame(4, &[b"abcd", b"\r", b"x\n"], false)),
            [&b"abcd"[..], b"\rx"]
        );
        assert_eq!(texts(&frame(4, &[b"abcd", b"\r"], true)), [&b"abcd"[..]]);
        // A full buffer that ends in CR, then CRLF: that first CR is text.
        assert_eq!(texts(&frame(1, &[b"\r", b"\r\n"], false)), [&b"\r"[..]]);
    }

    #[test]
    fn a_lone_cr_inside_a_line_is_kept() {
        assert_eq!(texts(&frame(10, &[b"a\rb\r\r\n"], false)), [&b"a\rb\r"[..]]);
    }

    #[test]
    fn memory_is_bounded_by_max_line() {
        let mut framer = Framer::new(64);
        let big = vec![b'x'; 10_000];
        let mut pieces = 0;
        let _ = framer.push(&big, |p| {
            assert_eq!(p.text.len(), 64);
            pieces += 1;
            ControlFlow::Continue(())
        });
        assert!(framer.held() <= 64);
        assert_eq!(pieces, 10_000 / 64 - 1 + usize::from(10_000 % 64 != 0));
    }

    #[test]
    fn break_stops_at_once() {
        let mut framer = Framer::new(10);
        let mut seen = Vec::new();
        let flow = framer.push(b"a\nbye\nc\n", |p| {
            seen.push(p.text.to_vec());
            if p.text == b"bye" {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        });
        assert!(flow.is_break());
        assert_eq!(seen, [b"a".to_vec(), b"bye".to_vec()]);
    }

    /// Bytes rich in the characters that matter: newlines, CRs, a letter.
    fn stream() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(
            prop_oneof![
                Just(b'\n'),
                Just(b'\r'),
                Just(b'a'),
                Just(b'b'),
                any::<u8>()
            ],
            0..200,
        )
    }

    proptest! {
        /// Splitting the stream anywhere gives the pieces of the rule.
        #[test]
        fn any_split_gives_the_pieces_of_the_rule(
            data in stream(),
            max in 1usize..12,
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..8),
        ) {
            let mut at: Vec<usize> = cuts.iter().map(|c| c.index(data.len() + 1)).collect();
            at.push(0);
            at.push(data.len());
            at.sort_unstable();
            let chunks: Vec<&[u8]> = at.windows(2).map(|w| &data[w[0]..w[1]]).collect();
            prop_assert_eq!(frame(max, &chunks, true), model(max, &data));
        }

        /// Byte by byte too (every split point at once).
        #[test]
        fn byte_by_byte_gives_the_pieces_of_the_rule(data in stream(), max in 1usize..12) {
            let chunks: Vec<&[u8]> = data.chunks(1).collect();
            prop_assert_eq!(frame(max, &chunks, true), model(max, &data));
        }
    }
}

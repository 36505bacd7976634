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
//! (`--max-line`). A longer line is given as several pieces of at most
//! `max_line` bytes, each relayed as its own line (as an IRC server cuts at
//! its maximum line length, except that nothing is lost). An empty line is
//! one empty piece.
//!
//! # Where a long line is cut
//!
//! A piece never ends inside what a reader sees as one character: not
//! inside a UTF-8 sequence, and not between a base character and the
//! combining marks that follow it (`e` and U+0301 of a decomposed `é`), nor
//! inside any other *extended grapheme cluster* of Unicode's UAX #29 (an
//! emoji and its skin tone, a ZWJ family, the two halves of a flag, a
//! Hangul syllable in conjoining jamo), which `unicode-segmentation`
//! finds. A piece is cut as near to `max_line` bytes as that allows: at the
//! last cluster boundary, at most [`MAX_SHORTER`] (32) bytes before
//! `max_line`, and never below half of `max_line`. So a piece may be up to
//! 32 bytes shorter than `max_line`, never longer, and a line of `n` bytes
//! comes in at most `n / (max_line - 32) + 1` pieces (`max_line / 2` for a
//! small `max_line`): the room's bounds on its queues and its log hold as
//! they were. A cluster longer than that (a letter under 40 combining
//! marks) is cut at the last character boundary instead, and a character
//! longer than `max_line` (with `--max-line 2`) where it must.
//!
//! Invalid UTF-8 bytes are cut around as single bytes; the clusters of the
//! valid text between them are found from the start of the piece. Each
//! piece is cleaned for the terminal on its own by the room, so a piece
//! that begins where the previous ended begins with a whole character.
//!
//! The pieces depend only on the bytes, never on how they were split across
//! reads (the property tests of this module check it against the rule
//! applied to the whole stream at once).
//!
//! # Memory
//!
//! A [`Framer`] keeps at most `max_line + 3` bytes of an unfinished line:
//! a piece is handed on as soon as the 4 bytes after its `max_line` bytes
//! are known (the longest UTF-8 character: they decide whether a cluster
//! goes on past `max_line`), and what follows its cut is kept for the
//! next. Complete lines that arrive in one chunk are handed on straight
//! from that chunk, without a copy.

use std::ops::ControlFlow;

use unicode_segmentation::GraphemeCursor;

/// The most bytes a piece of a long line may be cut short of `max_line` so
/// that it ends at a grapheme cluster boundary (see the [module
/// documentation](self)): room for a letter with several combining marks,
/// a flag (8 bytes), an emoji family joined by ZWJs (25 bytes) or a
/// subdivision flag (28 bytes). Never more than half of `max_line`.
pub const MAX_SHORTER: usize = 32;

/// Bytes past `max_line` that decide a cut: the longest UTF-8 character.
const LOOKAHEAD: usize = 4;

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
    /// The bytes of the unfinished line not handed on yet: fewer than
    /// `max_line` + [`LOOKAHEAD`]. A `\r` at its end may still be the first
    /// half of a CRLF.
    buf: Vec<u8>,
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
            continued: false,
        }
    }

    /// How many bytes of an unfinished line are held (at most `max_line`
    /// + 3).
    pub fn held(&self) -> usize {
        self.buf.len()
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
        let decide = self.max_line + LOOKAHEAD;
        while !input.is_empty() {
            if self.buf.is_empty() {
                match memchr(b'\n', input) {
                    Some(i) => {
                        // A complete line in this chunk: no copy.
                        let line = &input[..i];
                        input = &input[i + 1..];
                        self.line(line, &mut each)?;
                    }
                    None => {
                        // The line goes on past this chunk: hand on the
                        // pieces that are decided, keep the rest.
                        let mut rest = input;
                        input = &[];
                        while rest.len() >= decide {
                            let cut = cut(rest, self.max_line);
                            self.piece(&mut each, &rest[..cut])?;
                            rest = &rest[cut..];
                        }
                        self.buf.extend_from_slice(rest);
                    }
                }
                continue;
            }
            // The start of the line is held: fill it up to the bytes that
            // decide the next cut, or to the end of the line.
            let room = decide - self.buf.len();
            let reach = &input[..room.min(input.len())];
            if let Some(i) = memchr(b'\n', reach) {
                self.buf.extend_from_slice(&input[..i]);
                input = &input[i + 1..];
                self.held_line(&mut each)?;
                continue;
            }
            self.buf.extend_from_slice(reach);
            input = &input[reach.len()..];
            if self.buf.len() == decide {
                let cut = cut(&self.buf, self.max_line);
                let held = std::mem::take(&mut self.buf);
                let flow = self.piece(&mut each, &held[..cut]);
                self.buf = held;
                self.buf.drain(..cut);
                flow?;
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
        if self.buf.is_empty() && !self.continued {
            return ControlFlow::Continue(());
        }
        self.held_line(&mut each)
    }

    /// Hands `each` the held bytes as the rest of the current line (see
    /// [`Framer::line`]), then empties the buffer, giving back the memory
    /// of an unusually long one.
    fn held_line(
        &mut self,
        each: &mut impl FnMut(Piece<'_>) -> ControlFlow<()>,
    ) -> ControlFlow<()> {
        let held = std::mem::take(&mut self.buf);
        let flow = self.line(&held, each);
        if held.capacity() <= SHRINK_ABOVE {
            self.buf = held;
            self.buf.clear();
        }
        flow
    }

    /// Hands `each` the rest of the current line, `line` (its `\n` gone,
    /// its `\r` of a CRLF not yet): in pieces if it is longer than
    /// `max_line`, the last one ending the line. Then the next line starts.
    fn line(
        &mut self,
        line: &[u8],
        each: &mut impl FnMut(Piece<'_>) -> ControlFlow<()>,
    ) -> ControlFlow<()> {
        let crlf = line.ends_with(b"\r");
        let mut rest = strip_cr(line);
        while rest.len() > self.max_line {
            let cut = cut(rest, self.max_line);
            self.piece(each, &rest[..cut])?;
            rest = &rest[cut..];
        }
        let flow = each(Piece {
            text: rest,
            starts_line: !self.continued,
            ends_line: true,
            crlf,
        });
        self.continued = false;
        flow
    }

    /// Hands `each` a piece that does not end its line.
    fn piece(
        &mut self,
        each: &mut impl FnMut(Piece<'_>) -> ControlFlow<()>,
        text: &[u8],
    ) -> ControlFlow<()> {
        let flow = each(Piece {
            text,
            starts_line: !self.continued,
            ends_line: false,
            crlf: false,
        });
        self.continued = true;
        flow
    }
}

/// Where the next piece of `text` ends: the length of that piece, from 1
/// to `max`, by the rule of the [module documentation](self).
///
/// `text` is longer than `max`, and holds at least the [`LOOKAHEAD`] bytes
/// after the first `max` (or the whole rest of its line), so that the
/// character that follows a cut is known.
fn cut(text: &[u8], max: usize) -> usize {
    debug_assert!(text.len() > max);
    let window = &text[..text.len().min(max + LOOKAHEAD)];
    // The shortest piece a cluster boundary may give.
    let shortest = (max - MAX_SHORTER.min(max / 2)).max(1);
    let mut start = 0;
    for chunk in window.utf8_chunks() {
        let valid = chunk.valid();
        let end = start + valid.len();
        if max <= end {
            if max == start || max == end {
                // Next to an invalid byte: a boundary.
                return max;
            }
            let at = max - start;
            if let Some(b) = last_boundary(valid, at)
                && start + b >= shortest
            {
                return start + b;
            }
            // A cluster too long to keep whole: the last character
            // boundary, or the invalid byte before this text.
            return match (1..=at).rev().find(|&i| valid.is_char_boundary(i)) {
                Some(i) => start + i,
                None if start > 0 => start,
                None => max,
            };
        }
        let after = end + chunk.invalid().len();
        if max < after {
            // Among invalid bytes: each stands alone.
            return max;
        }
        start = after;
    }
    max
}

/// The last grapheme cluster boundary of `text` at or before `at` (which
/// lies strictly inside `text`), the start of `text` counting as one.
fn last_boundary(text: &str, at: usize) -> Option<usize> {
    // A cluster boundary is a character boundary first.
    let at = (0..=at).rev().find(|&i| text.is_char_boundary(i))?;
    if at == 0 {
        return Some(0);
    }
    let mut cursor = GraphemeCursor::new(at, text.len(), true);
    // The whole text is one chunk: the cursor never asks for another.
    match cursor.is_boundary(text, 0) {
        Ok(true) => Some(at),
        Ok(false) => cursor.prev_boundary(text, 0).ok().flatten(),
        Err(_) => None,
    }
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
            assert!(framer.held() < max + LOOKAHEAD);
        }
        if finish {
            let _ = framer.finish(&mut keep);
        }
        out
    }

    /// The rule of the module documentation, applied to the whole stream:
    /// each line at once, cut by [`cut`] while it is longer than `max`.
    fn model(max: usize, stream: &[u8]) -> Vec<Owned> {
        let mut out = Vec::new();
        let mut lines: Vec<&[u8]> = stream.split(|&b| b == b'\n').collect();
        let last = lines.pop().unwrap_or_default();
        if !last.is_empty() {
            lines.push(last);
        }
        for line in lines {
            let mut rest = strip_cr(line);
            let mut starts = true;
            while rest.len() > max {
                let n = cut(rest, max);
                out.push(Owned {
                    text: rest[..n].to_vec(),
                    starts,
                    ends: false,
                });
                rest = &rest[n..];
                starts = false;
            }
            out.push(Owned {
                text: rest.to_vec(),
                starts,
                ends: true,
            });
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

    /// The pieces of one line pushed whole and ended, as texts.
    fn cut_line(max: usize, line: &str) -> Vec<String> {
        frame(max, &[line.as_bytes()], true)
            .iter()
            .map(|p| String::from_utf8(p.text.clone()).expect("cut at a character boundary"))
            .collect()
    }

    #[test]
    fn a_combining_mark_stays_with_its_base() {
        // A decomposed é (e, U+0301) across the 4th byte goes whole to the
        // next piece: the first piece is one byte short.
        assert_eq!(cut_line(4, "abce\u{301}fg"), ["abc", "e\u{301}f", "g"]);
        // Several marks (ệ as e, U+0323, U+0302) and a precomposed letter.
        let x = "x".repeat(60);
        assert_eq!(
            cut_line(64, &format!("{x}ae\u{323}\u{302}!")),
            [format!("{x}a"), "e\u{323}\u{302}!".to_owned()]
        );
        assert_eq!(cut_line(4, "abcé"), ["abc", "é"]);
    }

    #[test]
    fn clusters_of_several_characters_stay_whole() {
        let x = "x".repeat(36);
        // A flag is two regional indicators; an emoji with its skin tone; a
        // family joined by ZWJs (25 bytes); a Hangul syllable in jamo.
        for cluster in [
            "\u{1F1EB}\u{1F1F7}",
            "\u{1F44D}\u{1F3FD}",
            "\u{1F468}\u{200D}\u{1F469}\u{200D}\u{1F467}\u{200D}\u{1F466}",
            "\u{1100}\u{1161}\u{11A8}",
        ] {
            assert_eq!(
                cut_line(40, &format!("{x}{cluster}yz")),
                [x.clone(), format!("{cluster}yz")],
                "{cluster:?}"
            );
        }
    }

    #[test]
    fn a_cluster_too_long_to_keep_whole_is_cut_between_characters() {
        // A letter under 40 combining marks (81 bytes) cannot fit in 64: it
        // is cut at the last character boundary, never inside one.
        let zalgo = format!("e{}", "\u{301}".repeat(40));
        let pieces = cut_line(64, &zalgo);
        assert_eq!(pieces.iter().map(String::len).collect::<Vec<_>>(), [63, 18]);
        assert_eq!(pieces.concat(), zalgo);
        // Nor is a piece ever longer than max_line, even when it must cut a
        // character: with --max-line 2, a 3-byte character is cut.
        let tiny = frame(2, &[b"\xe2\x82\xac"], true);
        assert_eq!(texts(&tiny), [&b"\xe2\x82"[..], b"\xac"]);
    }

    #[test]
    fn invalid_bytes_stand_alone() {
        // An invalid byte is a boundary on both sides; the valid text
        // after it is cut by clusters again.
        assert_eq!(
            texts(&frame(4, &[b"ab\xffe\xcc\x81z\n"], false)),
            [&b"ab\xff"[..], b"e\xcc\x81z"]
        );
    }

    #[test]
    fn a_piece_is_decided_by_the_bytes_after_it() {
        // max_line bytes, then the start of a combining mark in the next
        // read: nothing is handed on before the mark is known.
        let mut framer = Framer::new(4);
        let mut seen = Vec::new();
        let mut keep = |p: Piece<'_>| {
            seen.push(p.text.to_vec());
            ControlFlow::Continue(())
        };
        let _ = framer.push(b"abce\xcc", &mut keep);
        let _ = framer.push(b"\x81fgh", &mut keep);
        assert_eq!(seen, [b"abc".to_vec()]);
        assert!(framer.held() < 4 + LOOKAHEAD);
    }

    /// Bytes rich in the characters that matter: newlines, CRs, a letter,
    /// the bytes that start and continue UTF-8 characters.
    fn stream() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(
            prop_oneof![
                Just(b'\n'),
                Just(b'\r'),
                Just(b'a'),
                Just(b'b'),
                0xc2u8..0xf5,
                0x80u8..0xc0,
                any::<u8>()
            ],
            0..200,
        )
    }

    /// Clusters that matter for cutting (each at most 28 bytes), and the
    /// bytes that matter for lines.
    const CLUSTERS: &[&str] = &[
        "a",
        "b",
        " ",
        "\r",
        "\u{e9}",
        "e\u{301}",
        "e\u{323}\u{302}",
        "\u{6f22}",
        "\u{1F1EB}\u{1F1F7}",
        "\u{1F44D}\u{1F3FD}",
        "\u{1F468}\u{200D}\u{1F469}\u{200D}\u{1F467}\u{200D}\u{1F466}",
        "\u{1100}\u{1161}\u{11A8}",
        "\u{915}\u{94D}\u{937}\u{93F}",
        "\u{1F3F4}\u{E0067}\u{E0062}\u{E0065}\u{E006E}\u{E0067}\u{E007F}",
    ];

    /// A line of text made of [`CLUSTERS`], no newline, ending in a dot
    /// (not in a `\r`, which the line's end would drop).
    fn text_line() -> impl Strategy<Value = String> {
        proptest::collection::vec(proptest::sample::select(CLUSTERS), 0..120)
            .prop_map(|parts| parts.concat() + ".")
    }

    /// Text with newlines, and now and then a byte that is not UTF-8.
    fn text_stream() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(
            prop_oneof![
                8 => proptest::sample::select(CLUSTERS).prop_map(|c| c.as_bytes().to_vec()),
                1 => Just(b"\n".to_vec()),
                1 => any::<u8>().prop_map(|b| vec![b]),
            ],
            0..150,
        )
        .prop_map(|parts| parts.concat())
    }

    /// `data` cut at the places `cuts` choose, in order.
    fn split<'a>(data: &'a [u8], cuts: &[prop::sample::Index]) -> Vec<&'a [u8]> {
        let mut at: Vec<usize> = cuts.iter().map(|c| c.index(data.len() + 1)).collect();
        at.push(0);
        at.push(data.len());
        at.sort_unstable();
        at.windows(2).map(|w| &data[w[0]..w[1]]).collect()
    }

    proptest! {
        /// Splitting the stream anywhere gives the pieces of the rule.
        #[test]
        fn any_split_gives_the_pieces_of_the_rule(
            data in stream(),
            max in 1usize..12,
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..8),
        ) {
            let chunks = split(&data, &cuts);
            prop_assert_eq!(frame(max, &chunks, true), model(max, &data));
        }

        /// Byte by byte too (every split point at once).
        #[test]
        fn byte_by_byte_gives_the_pieces_of_the_rule(data in stream(), max in 1usize..12) {
            let chunks: Vec<&[u8]> = data.chunks(1).collect();
            prop_assert_eq!(frame(max, &chunks, true), model(max, &data));
        }

        /// The same with text: clusters, invalid bytes, lines longer than
        /// max_line by far.
        #[test]
        fn any_split_of_text_gives_the_pieces_of_the_rule(
            data in text_stream(),
            max in 1usize..80,
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..8),
        ) {
            let chunks = split(&data, &cuts);
            prop_assert_eq!(frame(max, &chunks, true), model(max, &data));
            let chunks: Vec<&[u8]> = data.chunks(1).collect();
            prop_assert_eq!(frame(max, &chunks, true), model(max, &data));
        }

        /// Checked against unicode-segmentation on the whole line: every
        /// piece ends at a cluster boundary and holds as many whole
        /// clusters as fit in max_line (so it is at most 28 bytes, the
        /// longest cluster here less one, short of max_line); nothing is
        /// lost or reordered.
        #[test]
        fn text_is_cut_at_the_last_cluster_boundary_that_fits(
            line in text_line(),
            max in 64usize..160,
        ) {
            use unicode_segmentation::UnicodeSegmentation;
            let pieces = cut_line(max, &line);
            prop_assert_eq!(pieces.concat(), line.clone());
            // The greedy packing of the line's own clusters.
            let mut expected = vec![String::new()];
            for cluster in line.graphemes(true) {
                let last = expected.last_mut().unwrap();
                if last.len() + cluster.len() > max {
                    expected.push(cluster.to_owned());
                } else {
                    last.push_str(cluster);
                }
            }
            prop_assert_eq!(pieces, expected);
        }

        /// On any bytes: no piece is longer than max_line, none is empty
        /// unless its line is, and with max_line >= 4 no piece ends inside
        /// a valid UTF-8 character.
        #[test]
        fn pieces_are_bounded_and_never_cut_a_character(data in stream(), max in 4usize..40) {
            let pieces = frame(max, &[&data], true);
            for p in &pieces {
                prop_assert!(p.text.len() <= max);
                prop_assert!(!p.text.is_empty() || (p.starts && p.ends));
            }
            let mut line = Vec::new();
            let mut ends = Vec::new();
            for p in pieces {
                line.extend_from_slice(&p.text);
                if !p.ends {
                    ends.push(line.len());
                    continue;
                }
                // The character starts of this line.
                let mut starts = vec![false; line.len() + 1];
                let mut at = 0;
                for chunk in line.utf8_chunks() {
                    for (i, _) in chunk.valid().char_indices() {
                        starts[at + i] = true;
                    }
                    at += chunk.valid().len();
                    for i in 0..=chunk.invalid().len() {
                        starts[at + i] = true;
                    }
                    at += chunk.invalid().len();
                }
                starts[line.len()] = true;
                for &end in &ends {
                    prop_assert!(starts[end], "cut at {} inside a character: {:?}", end, line);
                }
                line.clear();
                ends.clear();
            }
        }
    }
}

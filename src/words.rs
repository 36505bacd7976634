//! The protocol words `bye` and `arret`.
//!
//! The rule comes from the worksheet exercises: "bye stops the client but
//! not the server; arret stops the client and the server". A *protocol word*
//! is a line that is exactly `bye` or exactly `arret`:
//!
//! * the line ends at a `\n`; one `\r` just before that `\n` is ignored, so
//!   `bye\n` and `bye\r\n` both count;
//! * nothing else may be on the line: ` bye`, `bye `, `BYE`, `byebye`,
//!   `hello bye` and `bye\r\r\n` are not words;
//! * a `\r` alone does not end a line;
//! * the last line of a stream counts even without its `\n`, but only once
//!   the end of the stream is known ([`LineScanner::finish`]). This holds
//!   in every mode and both directions (one-to-one, lockstep, the echo
//!   words, the room), as a last line without a newline is a line
//!   everywhere else: the room relays it, lockstep takes it as a turn, and
//!   `printf arret | chat host port` means the word (PROTOCOL WORDS in the
//!   man pages).
//!
//! Data arrives from `read(2)` in arbitrary chunks, so a word line may be
//! split anywhere, even between its `\r` and its `\n`. [`WordScanner`]
//! recognises words across such splits while keeping at most
//! [`MAX_WORD_LINE`] bytes of state, never a whole line.
//!
//! The same rules and the same scanner serve the words of `chatd --echo`,
//! `bye` and `fin` (the word of the worksheet's echo exercise): see
//! [`EchoWord`] and [`EchoScanner`]. Any set of words whose lines fit in
//! [`MAX_WORD_LINE`] bytes can be recognised by implementing [`LineWord`].
//!
//! # Cost, and why this scan
//!
//! A word line is short: a `\n`, at most [`MAX_WORD_LINE`] bytes, a `\n`.
//! The scanner takes each chunk's first newline with `memchr` (it ends the
//! line carried from earlier chunks), then checks every line start of the
//! rest at once, 64 at a time: for each position, "a `\n` before it, then
//! `bye` or `arret`, then `\n` or `\r\n`" is a handful of byte comparisons
//! at fixed distances, with no branch. That loop is plain Rust; the
//! compiler turns it into vector compares (SSE2 on any x86-64, a second
//! copy for AVX2 chosen at run time when the CPU has it, NEON on AArch64,
//! scalar code elsewhere): no intrinsics, and no CPU feature needed. Only
//! a block of 64 starts that holds a word line is looked at again, line by
//! line, to find where it ends. So the cost per byte is the same on any
//! text: it does not grow with near misses (`bye!`, `arret?`, `byebye`,
//! `j'arrete`), which are what real chat text is full of.
//!
//! The scans that search for the words and check each hit slow down as
//! such hits get frequent: `memmem` for `bye` and `arret` (this module's
//! earlier scan), `memmem` for the four whole word lines, `aho-corasick`'s
//! packed (Teddy) searcher for those lines or for their last 4 bytes,
//! `memchr` over every newline. A substring searcher's prefilter sees at
//! most 4 bytes of a needle, and every 4 bytes of a word line also start
//! or end a near miss, so each of them stops on near misses; this scan
//! never stops. Its 64-start blocks overlap by the 7 bytes a word line
//! reaches past its start. Its instruction count per byte is the same on
//! every corpus; a first pass looking only for short lines would be
//! cheaper on random letters but make the cost depend on the text again:
//! not taken.
//!
//! `examples/wordscan.rs` (`scripts/bench scan`) times this scan beside
//! each of those on the benchmark's corpora (`scripts/bench.d/data.sh`:
//! random letters, chat prose where half the lines hold a near miss, lines
//! of 2 to 7 bytes) and on lines that are all near misses; the figures,
//! and the instruction counts, are in docs/PERFORMANCE.md.

use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, Ordering};

/// Longest line, without its `\n`, that can still be a protocol word:
/// `arret` plus an optional `\r`, i.e. 6 bytes. This is also the bound on
/// the bytes a [`LineScanner`] keeps between chunks, and on the word lines
/// of every [`LineWord`] (the echo words are at most `bye\r`, 4 bytes).
pub const MAX_WORD_LINE: usize = 6;

/// A set of words that count only as a whole line, under the rules of the
/// module documentation (one `\r` before the `\n` ignored, nothing else on
/// the line). [`LineScanner`] finds them in a stream.
///
/// Implemented by [`Word`] (`bye`, `arret`: the chat sessions) and
/// [`EchoWord`] (`bye`, `fin`: `chatd --echo`): a set of words is its
/// table, [`WORDS`](Self::WORDS); everything else follows from it.
pub trait LineWord: Copy + PartialEq + 'static {
    /// Each word as written on the wire, without line ending, and its
    /// value. A word is 1 to [`MAX_WORD_LINE`]` - 1` bytes (room for its
    /// optional `\r`) and holds no `\r`, `\n` or NUL byte; checked by a
    /// unit test for every implementation.
    const WORDS: &'static [(&'static str, Self)];

    /// The word as it is written on the wire, without line ending.
    fn as_str(self) -> &'static str {
        Self::WORDS
            .iter()
            .find(|&&(_, word)| word == self)
            .map_or("", |&(text, _)| text)
    }

    /// Classifies one line given *without* its `\n`: the word whose line it
    /// is, one trailing `\r` ignored.
    fn from_line(line: &[u8]) -> Option<Self> {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        Self::WORDS
            .iter()
            .find(|&&(text, _)| text.as_bytes() == line)
            .map(|&(_, word)| word)
    }

    /// Whether `head`, the start of a line (no `\n`), can still grow into a
    /// word line, `\r` included.
    fn is_prefix(head: &[u8]) -> bool {
        let (text, cr) = match head.split_last() {
            Some((b'\r', text)) => (text, true),
            _ => (head, false),
        };
        Self::WORDS.iter().any(|&(word, _)| {
            let word = word.as_bytes();
            if cr {
                word == text
            } else {
                word.starts_with(text)
            }
        })
    }
}

/// A protocol word, from the worksheet exercises: "bye stops the client but
/// not the server; arret stops the client and the server".
///
/// [`Word::Bye`] ends the client's session; [`Word::Arret`] also stops the
/// server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Word {
    /// The line `bye`: stops the client but not the server.
    Bye,
    /// The line `arret`: stops the client and the server.
    Arret,
}

impl Word {
    /// The word as it is written on the wire, without line ending:
    /// `"bye"` or `"arret"` (from [`LineWord::WORDS`]).
    pub fn as_str(self) -> &'static str {
        LineWord::as_str(self)
    }
}

impl LineWord for Word {
    const WORDS: &'static [(&'static str, Word)] = &[("bye", Word::Bye), ("arret", Word::Arret)];
}

/// A word of `chatd --echo`: the line is echoed, then that connection is
/// closed (the server goes on). `fin` is the word of the worksheet's echo
/// exercise; `bye` is accepted too, as in every other mode. `arret` is not
/// an echo word: one client never stops a server that serves many.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EchoWord {
    /// The line `bye`.
    Bye,
    /// The line `fin`.
    Fin,
}

impl EchoWord {
    /// The word as it is written on the wire, without line ending:
    /// `"bye"` or `"fin"` (from [`LineWord::WORDS`]).
    pub fn as_str(self) -> &'static str {
        LineWord::as_str(self)
    }
}

impl LineWord for EchoWord {
    const WORDS: &'static [(&'static str, EchoWord)] =
        &[("bye", EchoWord::Bye), ("fin", EchoWord::Fin)];
}

/// Is this one complete line a protocol word?
///
/// `line` is a single line with or without its line ending: `b"bye"`,
/// `b"bye\n"`, `b"bye\r\n"` and `b"bye\r"` all give `Some(Word::Bye)`. At
/// most one `\n` and then one `\r` are stripped from the end; anything else
/// (`b" bye"`, `b"bye "`, `b"BYE"`, `b"bye\r\r\n"`, `b"bye\n\n"`) gives
/// `None`. The rule is the one of the worksheet exercises: "bye stops the
/// client but not the server; arret stops the client and the server".
pub fn line_word(line: &[u8]) -> Option<Word> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    Word::from_line(line)
}

/// Streaming recogniser of word lines in a byte stream: the words of `W`
/// ([`WordScanner`] for `bye`/`arret`, [`EchoScanner`] for `bye`/`fin`).
///
/// Feed it the stream chunk by chunk with [`scan`](Self::scan), in order and
/// without gaps, then call [`finish`](Self::finish) at end of stream. Lines
/// may be split across chunks anywhere, including between `\r` and `\n`.
///
/// Memory bound: the scanner stores only the start of the current
/// unterminated line, and only while that start is at most
/// [`MAX_WORD_LINE`] (6) bytes long and can still become a word line
/// (`bye`, `bye\r`, `arret` or `arret\r` for [`Word`]); otherwise a flag
/// records that the current line is not a word. Its size is a few bytes,
/// whatever the line lengths.
///
/// ```
/// use chatd::words::{Word, WordScanner};
///
/// let mut s = WordScanner::new();
/// assert_eq!(s.scan(b"hello\nby"), None);
/// // `bye\r\n` completed: deliver `chunk[..3]`, then stop or go on.
/// let chunk = b"e\r\narret\nmore";
/// assert_eq!(s.scan(chunk), Some((Word::Bye, 3)));
/// assert_eq!(s.scan(&chunk[3..]), Some((Word::Arret, 6)));
/// assert_eq!(s.scan(&chunk[9..]), None);
/// assert_eq!(s.finish(), None); // `more` is not a word
/// ```
#[derive(Debug, Clone)]
pub struct LineScanner<W> {
    /// Start of the current line: `head[..len]`, meaningful unless `dead`.
    head: [u8; MAX_WORD_LINE],
    /// Number of valid bytes in `head`.
    len: u8,
    /// The current line is already too long or not a word prefix.
    dead: bool,
    /// The words looked for (no data: a type only).
    words: PhantomData<fn() -> W>,
}

/// The scanner of the protocol words `bye` and `arret`, for the chat
/// sessions. The rule is the one of the worksheet exercises: "bye stops the
/// client but not the server; arret stops the client and the server".
pub type WordScanner = LineScanner<Word>;

/// The scanner of the echo words `bye` and `fin`, for `chatd --echo`.
///
/// ```
/// use chatd::words::{EchoScanner, EchoWord};
///
/// let mut s = EchoScanner::new();
/// assert_eq!(s.scan(b"hello\nfi"), None);
/// assert_eq!(s.scan(b"n\r\nmore"), Some((EchoWord::Fin, 3)));
/// ```
pub type EchoScanner = LineScanner<EchoWord>;

impl<W> Default for LineScanner<W> {
    fn default() -> Self {
        LineScanner {
            head: [0; MAX_WORD_LINE],
            len: 0,
            dead: false,
            words: PhantomData,
        }
    }
}

impl<W: LineWord> LineScanner<W> {
    /// A scanner positioned at the start of a line (start of the stream).
    pub fn new() -> Self {
        Self::default()
    }

    /// Scans the next chunk of the stream.
    ///
    /// Returns the first word whose line ends (its `\n`) inside `chunk`,
    /// with the offset just past that `\n`, so the caller can deliver
    /// `chunk[..offset]` and stop. The word line may have begun in earlier
    /// chunks. After a hit the scanner is positioned just after that `\n`:
    /// calling `scan(&chunk[offset..])` continues with the rest of the chunk.
    /// Without a hit the whole chunk is consumed and `None` is returned.
    ///
    /// Cost: one `memchr` for the first newline, the block loop of the
    /// module documentation over the rest, one `memrchr` over the last 7
    /// bytes.
    pub fn scan(&mut self, chunk: &[u8]) -> Option<(W, usize)> {
        // The first newline ends the line carried from earlier chunks.
        let Some(first) = memchr::memchr(b'\n', chunk) else {
            self.extend(chunk);
            return None;
        };
        let word = self.complete(&chunk[..first]);
        *self = Self::default();
        if let Some(word) = word {
            return Some((word, first + 1));
        }
        // Later lines lie wholly in the chunk, from a line start.
        let rest = &chunk[first + 1..];
        if let Some((word, end)) = first_word_line::<W>(rest) {
            return Some((word, first + 1 + end));
        }
        // Carry the bytes after the last newline into the next chunk. They
        // matter only if there are at most 6, so look at the last 7 bytes.
        let from = chunk.len().saturating_sub(MAX_WORD_LINE + 1);
        match memchr::memrchr(b'\n', &chunk[from..]) {
            Some(nl) => self.extend(&chunk[from + nl + 1..]),
            None => self.dead = true,
        }
        None
    }

    /// End of stream: returns the word if the unterminated last line is
    /// exactly a word (for [`Word`]: `bye`, `arret`, or either followed by
    /// one `\r`), and
    /// resets the scanner to the start of a new stream.
    ///
    /// After a stream that ended with `\n` (or an empty stream) it returns
    /// `None`: that last line was already reported by [`scan`](Self::scan).
    pub fn finish(&mut self) -> Option<W> {
        let word = if self.dead {
            None
        } else {
            W::from_line(&self.head[..usize::from(self.len)])
        };
        *self = Self::default();
        word
    }

    /// Classifies the current line ended by a `\n` after `tail`.
    #[inline]
    fn complete(&self, tail: &[u8]) -> Option<W> {
        let len = usize::from(self.len);
        if self.dead || tail.len() > MAX_WORD_LINE - len {
            return None;
        }
        let mut line = [0u8; MAX_WORD_LINE];
        line[..len].copy_from_slice(&self.head[..len]);
        line[len..len + tail.len()].copy_from_slice(tail);
        W::from_line(&line[..len + tail.len()])
    }

    /// Appends `bytes` (which hold no `\n`) to the current line.
    #[inline]
    fn extend(&mut self, bytes: &[u8]) {
        let len = usize::from(self.len);
        if self.dead || bytes.is_empty() {
            return;
        }
        if bytes.len() > MAX_WORD_LINE - len {
            self.dead = true;
            self.len = 0;
            return;
        }
        let end = len + bytes.len();
        self.head[len..end].copy_from_slice(bytes);
        // `end <= MAX_WORD_LINE`, which fits in a `u8`.
        self.len = end as u8;
        if !W::is_prefix(&self.head[..end]) {
            self.dead = true;
            self.len = 0;
        }
    }
}

/// Line starts looked at together.
const BLOCK: usize = 64;

/// Bytes a block reads: the byte before its first start, its starts, and
/// the longest word line (`\r` and `\n` included) from its last start.
const SPAN: usize = 1 + BLOCK + MAX_WORD_LINE;

/// The first complete word line of `text`, which starts at a line start:
/// the word and the offset just past its `\n`. A line still open at the end
/// of `text` is not looked at (the caller carries it).
fn first_word_line<W: LineWord>(text: &[u8]) -> Option<(W, usize)> {
    #[cfg(target_arch = "x86_64")]
    if !PORTABLE_ONLY.load(Ordering::Relaxed) && std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2, checked just above, which is all that
        // `first_block_avx2` requires beyond what every x86-64 CPU has.
        let base = unsafe { first_block_avx2::<W>(text) };
        return base.and_then(|base| locate::<W>(text, base));
    }
    first_block::<W>(text).and_then(|base| locate::<W>(text, base))
}

/// For benchmarks only (`examples/wordscan.rs`): when set, every scanner
/// of the process uses the portable loop of [`first_block`] even where the
/// CPU has AVX2. The results are the same either way.
#[doc(hidden)]
pub static PORTABLE_ONLY: AtomicBool = AtomicBool::new(false);

/// [`first_block`] compiled for AVX2 (32-byte compares instead of 16).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn first_block_avx2<W: LineWord>(text: &[u8]) -> Option<usize> {
    first_block::<W>(text)
}

/// The start of the first block of [`BLOCK`] line starts in `text` where a
/// word line starts, if any.
#[inline(always)]
fn first_block<W: LineWord>(text: &[u8]) -> Option<usize> {
    let mut base = 0;
    while base < text.len() {
        let hit = if base > 0 && base - 1 + SPAN <= text.len() {
            let span = text[base - 1..base - 1 + SPAN]
                .try_into()
                .expect("SPAN bytes");
            block_has_word_line::<W>(span)
        } else {
            // Before `text`: a line start; after it: NUL bytes, no newline.
            // `span[j]` is `text[base + j - 1]`.
            let mut span = [0u8; SPAN];
            let skip = usize::from(base == 0);
            let (from, to) = (base + skip - 1, text.len().min(base + SPAN - 1));
            span[skip..skip + to - from].copy_from_slice(&text[from..to]);
            if base == 0 {
                span[0] = b'\n';
            }
            block_has_word_line::<W>(&span)
        };
        if hit {
            return Some(base);
        }
        base += BLOCK;
    }
    None
}

/// Whether a word line starts at one of bytes 1 to [`BLOCK`] of `span`.
///
/// Every start is checked the same way, by comparisons of bytes at fixed
/// distances, with no branch: a loop the compiler turns into vector
/// compares (16 bytes at a time with SSE2, 32 with AVX2, NEON on AArch64,
/// scalar code elsewhere). Its cost does not depend on the text.
#[inline(always)]
fn block_has_word_line<W: LineWord>(span: &[u8; SPAN]) -> bool {
    let mut any = false;
    for i in 0..BLOCK {
        let line = &span[i..i + 1 + MAX_WORD_LINE + 1];
        let mut hit = false;
        for &(word, _) in W::WORDS {
            let word = word.as_bytes();
            let len = word.len();
            let mut m = line[0] == b'\n';
            for (j, &byte) in word.iter().enumerate() {
                m &= line[1 + j] == byte;
            }
            m &= (line[1 + len] == b'\n') | ((line[1 + len] == b'\r') & (line[2 + len] == b'\n'));
            hit |= m;
        }
        any |= hit;
    }
    any
}

/// The first word line starting in the block at `base` (found there by
/// [`first_block`]) or later: the word and the offset just past its `\n`.
fn locate<W: LineWord>(text: &[u8], base: usize) -> Option<(W, usize)> {
    let mut start = base;
    if start > 0 && text[start - 1] != b'\n' {
        start += memchr::memchr(b'\n', &text[start..])? + 1;
    }
    loop {
        let nl = start + memchr::memchr(b'\n', &text[start..])?;
        if nl - start <= MAX_WORD_LINE
            && let Some(word) = W::from_line(&text[start..nl])
        {
            return Some((word, nl + 1));
        }
        start = nl + 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Feeds `chunks` in order, continuing after each hit as a caller
    /// would, then finishes. Returns each word with the absolute offset just
    /// past its `\n` (the stream length for a word found by `finish`).
    fn scan_chunks<C: AsRef<[u8]>>(chunks: &[C]) -> Vec<(Word, usize)> {
        scan_chunks_for(chunks)
    }

    /// [`scan_chunks`] for any set of words.
    fn scan_chunks_for<W: LineWord, C: AsRef<[u8]>>(chunks: &[C]) -> Vec<(W, usize)> {
        let mut scanner = LineScanner::<W>::new();
        let mut found = Vec::new();
        let mut base = 0;
        for chunk in chunks {
            let chunk = chunk.as_ref();
            let mut pos = 0;
            while let Some((word, offset)) = scanner.scan(&chunk[pos..]) {
                assert!(offset >= 1 && pos + offset <= chunk.len());
                assert_eq!(chunk[pos + offset - 1], b'\n');
                pos += offset;
                found.push((word, base + pos));
            }
            base += chunk.len();
        }
        if let Some(word) = scanner.finish() {
            found.push((word, base));
        }
        found
    }

    fn scan_whole(stream: &[u8]) -> Vec<(Word, usize)> {
        scan_chunks(&[stream])
    }

    /// Reference: split the whole stream on `\n`, strip one `\r`, and
    /// ask `word` about each line (spelled out by each caller, not taken
    /// from the code under test).
    fn reference_with<W>(stream: &[u8], word: impl Fn(&[u8]) -> Option<W>) -> Vec<(W, usize)> {
        let mut found = Vec::new();
        let mut start = 0;
        let lines: Vec<&[u8]> = stream.split(|&b| b == b'\n').collect();
        let last = lines.len() - 1;
        for (i, line) in lines.into_iter().enumerate() {
            let end = if i == last {
                stream.len()
            } else {
                start + line.len() + 1
            };
            if let Some(word) = word(line.strip_suffix(b"\r").unwrap_or(line)) {
                found.push((word, end));
            }
            start = end;
        }
        found
    }

    /// The reference for `bye` and `arret`.
    fn reference(stream: &[u8]) -> Vec<(Word, usize)> {
        reference_with(stream, |line| match line {
            b"bye" => Some(Word::Bye),
            b"arret" => Some(Word::Arret),
            _ => None,
        })
    }

    /// `stream` cut at `cuts` (indices into it, in any order).
    fn cut<'a>(stream: &'a [u8], cuts: &[prop::sample::Index]) -> Vec<&'a [u8]> {
        let mut at: Vec<usize> = cuts.iter().map(|c| c.index(stream.len() + 1)).collect();
        at.push(0);
        at.push(stream.len());
        at.sort_unstable();
        at.windows(2).map(|w| &stream[w[0]..w[1]]).collect()
    }

    /// Every split of `stream` into two chunks, and byte by byte, agree
    /// with `expected`.
    fn check_all_splits(stream: &[u8], expected: &[(Word, usize)]) {
        assert_eq!(reference(stream), expected, "reference disagrees");
        assert_eq!(scan_whole(stream), expected, "whole");
        for cut in 0..=stream.len() {
            let (a, b) = stream.split_at(cut);
            assert_eq!(scan_chunks(&[a, b]), expected, "cut at {cut}");
        }
        let bytes: Vec<[u8; 1]> = stream.iter().map(|&b| [b]).collect();
        assert_eq!(scan_chunks(&bytes), expected, "byte by byte");
    }

    #[test]
    fn as_str_spells_the_words() {
        assert_eq!(Word::Bye.as_str(), "bye");
        assert_eq!(Word::Arret.as_str(), "arret");
    }

    #[test]
    fn bye_line() {
        let mut s = WordScanner::new();
        assert_eq!(s.scan(b"bye\n"), Some((Word::Bye, 4)));
        assert_eq!(s.finish(), None);
    }

    #[test]
    fn arret_line() {
        let mut s = WordScanner::new();
        assert_eq!(s.scan(b"arret\n"), Some((Word::Arret, 6)));
        assert_eq!(s.finish(), None);
    }

    #[test]
    fn bye_crlf() {
        let mut s = WordScanner::new();
        assert_eq!(s.scan(b"bye\r\n"), Some((Word::Bye, 5)));
        assert_eq!(s.scan(b"arret\r\n"), Some((Word::Arret, 7)));
    }

    #[test]
    fn word_at_end_of_stream_needs_finish() {
        let mut s = WordScanner::new();
        assert_eq!(s.scan(b"hello\nbye"), None);
        assert_eq!(s.finish(), Some(Word::Bye));
        // `finish` resets: the scanner serves a new stream.
        assert_eq!(s.finish(), None);
        assert_eq!(s.scan(b"arr"), None);
        assert_eq!(s.scan(b"et"), None);
        assert_eq!(s.finish(), Some(Word::Arret));
        assert_eq!(s.scan(b"bye\r"), None);
        assert_eq!(s.finish(), Some(Word::Bye));
    }

    #[test]
    fn finish_without_word() {
        let mut s = WordScanner::new();
        assert_eq!(s.finish(), None);
        assert_eq!(s.scan(b"bye\n"), Some((Word::Bye, 4)));
        assert_eq!(s.finish(), None);
        assert_eq!(s.scan(b"byebye"), None);
        assert_eq!(s.finish(), None);
        assert_eq!(s.scan(b"by"), None);
        assert_eq!(s.finish(), None);
    }

    #[test]
    fn word_in_the_middle_of_a_chunk() {
        let chunk = b"hello\nworld\r\nbye\nafter\n";
        let mut s = WordScanner::new();
        assert_eq!(s.scan(chunk), Some((Word::Bye, 17)));
        assert_eq!(&chunk[..17], b"hello\nworld\r\nbye\n");
        assert_eq!(s.scan(&chunk[17..]), None);
        assert_eq!(s.finish(), None);
    }

    #[test]
    fn word_after_a_long_carried_line() {
        let mut s = WordScanner::new();
        assert_eq!(s.scan(b"a long line that spans"), None);
        assert_eq!(s.scan(b" chunks\narret\r\n"), Some((Word::Arret, 15)));
    }

    #[test]
    fn split_at_every_position() {
        check_all_splits(b"bye\n", &[(Word::Bye, 4)]);
        check_all_splits(b"bye\r\n", &[(Word::Bye, 5)]);
        check_all_splits(b"arret\r\n", &[(Word::Arret, 7)]);
        check_all_splits(
            b"hello\nbye\r\nrest of it\narret\nbye",
            &[(Word::Bye, 11), (Word::Arret, 28), (Word::Bye, 31)],
        );
        check_all_splits(
            b"xbye\nbye \narret\r\r\nbye\nbyebye\nbye\r\n",
            &[(Word::Bye, 22), (Word::Bye, 34)],
        );
        check_all_splits(b"byee\nby\nBYE\narrets\n ar\n", &[]);
    }

    #[test]
    fn near_misses_are_not_words() {
        for line in [
            &b"bye \n"[..],
            b" bye\n",
            b"byee\n",
            b"by\n",
            b"BYE\n",
            b"Bye\n",
            b"arrets\n",
            b"arre\n",
            b"xbye\n",
            b"bye\r\r\n",
            b"\rbye\n",
            b"byebye\n",
            b"bye\0\n",
            b"\n",
            b"\r\n",
        ] {
            assert_eq!(line_word(line), None, "{line:?}");
            check_all_splits(line, &[]);
        }
    }

    #[test]
    fn long_line_ending_in_bye_is_not_a_word() {
        check_all_splits(b"hello bye\n", &[]);
        check_all_splits(b"hello arret\r\n", &[]);
        let mut s = WordScanner::new();
        assert_eq!(s.scan(b"hello "), None);
        assert_eq!(s.scan(b"bye\n"), None);
        assert_eq!(s.scan(b"bye\n"), Some((Word::Bye, 4)));
    }

    #[test]
    fn lone_cr_does_not_end_a_line() {
        check_all_splits(b"bye\rbye\n", &[]);
        check_all_splits(b"x\rbye\n", &[]);
        check_all_splits(b"bye\r", &[(Word::Bye, 4)]);
        let mut s = WordScanner::new();
        assert_eq!(s.scan(b"bye\r"), None);
        assert_eq!(s.scan(b"x\n"), None);
    }

    #[test]
    fn split_between_cr_and_lf() {
        let mut s = WordScanner::new();
        assert_eq!(s.scan(b"text\nbye\r"), None);
        assert_eq!(s.scan(b"\nmore"), Some((Word::Bye, 1)));
    }

    #[test]
    fn two_words_in_one_chunk() {
        let chunk = b"bye\narret\r\n";
        let mut s = WordScanner::new();
        assert_eq!(s.scan(chunk), Some((Word::Bye, 4)));
        assert_eq!(s.scan(&chunk[4..]), Some((Word::Arret, 7)));
        assert_eq!(s.scan(&chunk[11..]), None);
        assert_eq!(s.finish(), None);
    }

    #[test]
    fn line_word_accepts_any_line_ending() {
        for line in [&b"bye"[..], b"bye\n", b"bye\r\n", b"bye\r"] {
            assert_eq!(line_word(line), Some(Word::Bye), "{line:?}");
        }
        for line in [&b"arret"[..], b"arret\n", b"arret\r\n", b"arret\r"] {
            assert_eq!(line_word(line), Some(Word::Arret), "{line:?}");
        }
        for line in [&b""[..], b"bye\n\n", b"bye\nbye", b"\nbye", b"hello bye"] {
            assert_eq!(line_word(line), None, "{line:?}");
        }
    }

    #[test]
    fn state_stays_within_the_bound() {
        assert!(std::mem::size_of::<WordScanner>() <= MAX_WORD_LINE + 2);
        let mut s = WordScanner::new();
        // A prefix that cannot become a word is dropped at once.
        s.scan(b"x");
        assert!(s.dead && s.len == 0);
        s.scan(&[b'y'; 100_000]);
        assert!(s.dead && s.len == 0);
        assert_eq!(s.scan(b"\n"), None);
        assert!(!s.dead && s.len == 0);
        s.scan(b"arret\r");
        assert_eq!(usize::from(s.len), MAX_WORD_LINE);
        s.scan(b"\r");
        assert!(s.dead && s.len == 0);
    }

    #[test]
    fn hits_that_are_not_whole_lines_are_skipped() {
        check_all_splits(b"xbye\nabye\nbyex\nbye\n", &[(Word::Bye, 19)]);
        check_all_splits(b"barret\narretbye\narret\r\n", &[(Word::Arret, 23)]);
        // The earlier word wins, whichever is searched first.
        check_all_splits(b"x\narret\nbye\n", &[(Word::Arret, 8), (Word::Bye, 12)]);
        check_all_splits(b"x\nbye\narret\n", &[(Word::Bye, 6), (Word::Arret, 12)]);
        check_all_splits(&b"byebye".repeat(50), &[]);
    }

    #[test]
    fn long_chunks_of_text_lines() {
        // Lines of 10 to 80 bytes, as the benchmark's text, with a word
        // line somewhere inside a large chunk.
        let mut text = Vec::new();
        let mut len = 10;
        while text.len() < 300_000 {
            text.extend(std::iter::repeat_n(b'a' + (len % 26) as u8, len));
            text.push(b'\n');
            len = 10 + (len * 7 + 3) % 71;
        }
        assert_eq!(scan_whole(&text), []);
        let at = text.len() / 2;
        let at = at + memchr::memchr(b'\n', &text[at..]).unwrap() + 1;
        text.splice(at..at, b"arret\r\n".iter().copied());
        let expected = [(Word::Arret, at + 7)];
        assert_eq!(scan_whole(&text), expected);
        for size in [1, 7, 4096, 65536, 131072] {
            let chunks: Vec<&[u8]> = text.chunks(size).collect();
            assert_eq!(scan_chunks(&chunks), expected, "chunks of {size}");
        }
    }

    /// Streams rich in words, near misses and line endings.
    fn stream_strategy() -> impl Strategy<Value = Vec<u8>> {
        const TOKENS: [&[u8]; 14] = [
            b"bye",
            b"arret",
            b"\n",
            b"\r\n",
            b"\r",
            b"b",
            b"y",
            b"e",
            b"ar",
            b"ret",
            b" ",
            b"BYE",
            b"\x8a",
            b"hello world",
        ];
        const BYTES: &[u8] = b"\n\rbyeart";
        // Indices rather than `prop_oneof!` values: much cheaper to generate.
        let tokens = prop::collection::vec(0..TOKENS.len(), 0..250)
            .prop_map(|ix| ix.iter().flat_map(|&i| TOKENS[i]).copied().collect());
        // Mostly bytes of the words and line endings, some arbitrary bytes.
        let bytes = prop::collection::vec(any::<u16>(), 0..600).prop_map(|v| {
            v.iter()
                .map(|&x| BYTES.get(usize::from(x % 12)).copied().unwrap_or(x as u8))
                .collect()
        });
        prop_oneof![tokens, bytes, prop::collection::vec(any::<u8>(), 0..1000),]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn any_chunking_matches_reference(
            stream in stream_strategy(),
            cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..12),
        ) {
            let chunks = cut(&stream, &cuts);
            prop_assert_eq!(scan_chunks(&chunks), reference(&stream));
        }

        #[test]
        fn line_word_matches_reference(line in stream_strategy()) {
            let line = line.strip_suffix(b"\n").unwrap_or(&line);
            let expected = if line.contains(&b'\n') {
                None
            } else {
                reference(line).first().map(|&(w, _)| w)
            };
            prop_assert_eq!(line_word(line), expected);
        }
    }

    /// The reference for the echo words.
    fn echo_reference(stream: &[u8]) -> Vec<(EchoWord, usize)> {
        reference_with(stream, |line| match line {
            b"bye" => Some(EchoWord::Bye),
            b"fin" => Some(EchoWord::Fin),
            _ => None,
        })
    }

    #[test]
    fn echo_words_are_bye_and_fin_not_arret() {
        assert_eq!(EchoWord::Bye.as_str(), "bye");
        assert_eq!(EchoWord::Fin.as_str(), "fin");
        let stream = b"hello\nfin\r\narret\nbye\nfine\nFIN\n fin\nfin \nfi\nfin";
        let expected = vec![
            (EchoWord::Fin, 11),
            (EchoWord::Bye, 21),
            (EchoWord::Fin, stream.len()),
        ];
        assert_eq!(echo_reference(stream), expected);
        assert_eq!(scan_chunks_for::<EchoWord, _>(&[stream]), expected);
        for cut in 0..=stream.len() {
            let (a, b) = stream.split_at(cut);
            assert_eq!(
                scan_chunks_for::<EchoWord, _>(&[a, b]),
                expected,
                "cut {cut}"
            );
        }
        let bytes: Vec<[u8; 1]> = stream.iter().map(|&b| [b]).collect();
        assert_eq!(scan_chunks_for::<EchoWord, _>(&bytes), expected);
        // And `fin` is no protocol word of the chat sessions.
        assert_eq!(scan_chunks(&[b"fin\n"]), vec![]);
    }

    /// Every word line fits in `MAX_WORD_LINE`, and each of its prefixes
    /// is recognised as one (the scanner drops a line as soon as it is not).
    #[test]
    fn word_lines_fit_and_their_prefixes_are_prefixes() {
        fn check<W: LineWord + std::fmt::Debug + PartialEq>(words: &[(W, &str)]) {
            for &(word, text) in words {
                for line in [text.to_owned(), format!("{text}\r")] {
                    let line = line.as_bytes();
                    assert!(line.len() <= MAX_WORD_LINE, "{text}");
                    assert_eq!(W::from_line(line), Some(word));
                    for end in 0..=line.len() {
                        assert!(W::is_prefix(&line[..end]), "{:?}", &line[..end]);
                    }
                }
            }
        }
        check(&[(Word::Bye, "bye"), (Word::Arret, "arret")]);
        check(&[(EchoWord::Bye, "bye"), (EchoWord::Fin, "fin")]);
        assert!(!EchoWord::is_prefix(b"a"));
        assert!(!Word::is_prefix(b"f"));
        assert!(!Word::is_prefix(b"bye\r\r"));
        assert!(!Word::is_prefix(b"by\r"));
    }

    /// What `LineWord::WORDS` promises: 1 to `MAX_WORD_LINE - 1` bytes,
    /// no `\r`, `\n` or NUL (the block loop pads with NUL bytes and needs
    /// room for the `\r`), each value once, spelled by `as_str`.
    #[test]
    fn word_tables_keep_their_promises() {
        fn check<W: LineWord + std::fmt::Debug>() {
            for (i, &(text, word)) in W::WORDS.iter().enumerate() {
                assert!((1..MAX_WORD_LINE).contains(&text.len()), "{text:?}");
                assert!(
                    !text.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)),
                    "{text:?}"
                );
                assert_eq!(word.as_str(), text);
                assert!(W::WORDS[..i].iter().all(|&(t, w)| w != word && t != text));
            }
        }
        check::<Word>();
        check::<EchoWord>();
        assert_eq!(Word::Arret.as_str(), "arret");
        assert_eq!(EchoWord::Fin.as_str(), "fin");
    }

    /// Chat text where the words and their near misses are frequent: lines
    /// drawn from `LINES` (a few of them words), ended by `\n` or `\r\n`,
    /// long enough to span many 64-byte blocks.
    fn near_miss_text() -> impl Strategy<Value = Vec<u8>> {
        const LINES: [&[u8]; 24] = [
            b"bye!",
            b"arret?",
            b"bye bye",
            b"byebye",
            b"j'arrete",
            b"ok bye!",
            b"Bye",
            b"bye ",
            b" bye",
            b"byee",
            b"by",
            b"arre",
            b"arrets",
            b"bye\r",
            b"\rbye",
            b"",
            b"ok",
            b"oui",
            b"non",
            b"lol",
            b"salut, on se voit demain ?",
            b"bye",
            b"arret",
            b"fin",
        ];
        prop::collection::vec((0..LINES.len(), any::<bool>(), 0..8u8), 0..400).prop_map(|lines| {
            let mut text = Vec::new();
            for (i, crlf, rare) in lines {
                // Word lines one time in eight, near misses otherwise.
                let i = if rare == 0 || i < LINES.len() - 3 {
                    i
                } else {
                    i - 3
                };
                text.extend_from_slice(LINES[i]);
                text.extend_from_slice(if crlf { b"\r\n" } else { b"\n" });
            }
            text
        })
    }

    /// The first word line of `text` (at a line start) by the reference,
    /// as `first_word_line` answers: its end must be a `\n` in `text`.
    fn reference_first(text: &[u8]) -> Option<(Word, usize)> {
        reference(text)
            .into_iter()
            .find(|&(_, end)| text[end - 1] == b'\n')
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        #[test]
        fn near_miss_text_in_any_chunking_matches_reference(
            stream in near_miss_text(),
            cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..12),
        ) {
            let chunks = cut(&stream, &cuts);
            prop_assert_eq!(scan_chunks(&chunks), reference(&stream));
        }

        /// The portable loop and the AVX2 one (where the CPU has it) find
        /// the same first word line as the reference, from every start.
        #[test]
        fn both_block_loops_match_reference(text in near_miss_text(), from in any::<prop::sample::Index>()) {
            // From a line start: the start of the text or just after a `\n`.
            let from = from.index(text.len() + 1);
            let from = text[..from].iter().rposition(|&b| b == b'\n').map_or(0, |nl| nl + 1);
            let text = &text[from..];
            let expected = reference_first(text);
            let portable = first_block::<Word>(text).and_then(|base| locate::<Word>(text, base));
            prop_assert_eq!(portable, expected);
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: AVX2 is there, checked just above.
                let avx2 = unsafe { first_block_avx2::<Word>(text) };
                prop_assert_eq!(avx2.and_then(|base| locate::<Word>(text, base)), expected);
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        #[test]
        fn echo_any_chunking_matches_reference(
            tokens in prop::collection::vec(0..9usize, 0..300),
            cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..12),
        ) {
            const TOKENS: [&[u8]; 9] =
                [b"fin", b"bye", b"\n", b"\r\n", b"\r", b"f", b"in", b"x", b"arret"];
            let stream: Vec<u8> = tokens.iter().flat_map(|&i| TOKENS[i]).copied().collect();
            let chunks = cut(&stream, &cuts);
            prop_assert_eq!(scan_chunks_for::<EchoWord, _>(&chunks), echo_reference(&stream));
        }
    }
}

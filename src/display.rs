//! Making bytes received from a peer safe to print on a terminal.
//!
//! A chat prints whatever a remote person sends. When standard output is a
//! terminal, bytes that would drive it (escape sequences, C0/C1 controls,
//! 8-bit CSI, bidirectional overrides) must be shown visibly instead, so that
//! *a peer cannot take over your terminal* (the rule this module
//! implements; the README's section of that name). [`Sanitizer`] is a
//! streaming filter: input arrives in arbitrary chunks from `read(2)`, so
//! any sequence may be split across calls, and the output does not depend
//! on how the stream was chunked.
//!
//! # Notation
//!
//! | input                                             | shown as                          |
//! |---------------------------------------------------|-----------------------------------|
//! | `\n`, `\t`                                        | unchanged                         |
//! | `\r\n`                                            | `\n`                              |
//! | lone `\r` (not followed by `\n`)                  | `^M`                              |
//! | other C0 controls 0x00–0x1F, DEL 0x7F             | caret notation: `^@`, `^G`, `^[` (ESC), `^_`, `^?` |
//! | valid UTF-8 (accents, CJK, emoji, …)              | unchanged                         |
//! | C1 controls U+0080–U+009F encoded as UTF-8        | `<U+XXXX>`, e.g. `<U+009B>`       |
//! | bidi controls listed in [`BIDI_CONTROLS`]         | `<U+XXXX>`, e.g. `<U+202E>`       |
//! | each byte that is not part of valid UTF-8         | `\xNN` (two lowercase hex digits), e.g. `\x9b` |
//!
//! `<U+XXXX>` uses uppercase hex with at least four digits, like the Unicode
//! standard. Invalid UTF-8 is split into ill-formed subsequences by the
//! "maximal subpart" practice of the Unicode standard (§3.9, the one
//! [`String::from_utf8_lossy`] follows), except that every byte of such a
//! subsequence is shown as `\xNN` instead of one U+FFFD for the subsequence:
//! invalid bytes are never dropped.
//!
//! Showing ESC as `^[` is enough to neutralise escape sequences: the rest of
//! a CSI/OSC sequence is printable ASCII, harmless once its ESC is gone.
//!
//! The output is always valid UTF-8 and never contains a byte in 0x00–0x1F
//! other than `\n` and `\t`, nor 0x7F.

use std::io::Write as _;

pub mod looks;
pub mod starts;

/// The Unicode bidirectional embedding/override/isolate controls that are
/// shown as `<U+XXXX>` instead of being passed to the terminal, because they
/// reorder how the following text is displayed ("Trojan Source" spoofing,
/// CVE-2021-42574): U+202A LRE, U+202B RLE, U+202C PDF, U+202D LRO,
/// U+202E RLO, U+2066 LRI, U+2067 RLI, U+2068 FSI, U+2069 PDI.
///
/// The implicit marks (U+200E LRM, U+200F RLM, U+061C ALM) are not listed:
/// they cannot reorder other text, and are passed unchanged.
pub const BIDI_CONTROLS: [char; 9] = [
    '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{202E}', '\u{2066}', '\u{2067}', '\u{2068}',
    '\u{2069}',
];

/// Lowercase hex digits for the `\xNN` notation.
const HEX: &[u8; 16] = b"0123456789abcdef";

/// Bytes held between calls to [`Sanitizer::push`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Held {
    /// Nothing held.
    #[default]
    Nothing,
    /// A `\r` ended the last chunk: it becomes `\n` if a `\n` follows, `^M`
    /// otherwise.
    Cr,
    /// A valid but incomplete UTF-8 prefix (1 to 3 bytes) ended the last
    /// chunk.
    Utf8 { buf: [u8; 3], len: u8 },
}

/// Streaming filter that makes bytes from a peer safe to print on a terminal.
///
/// Feed the received bytes with [`push`](Self::push) as they arrive, in
/// chunks of any size, and call [`finish`](Self::finish) at end of stream.
/// The output is the same however the stream is split into chunks.
///
/// Rules (a peer cannot take over your terminal), see the [module
/// documentation](self) for the full table:
/// `\n` and `\t` pass; `\r\n` becomes `\n` and a lone `\r` is `^M`; other C0
/// controls and DEL are shown in caret notation (`^[` for ESC, `^?` for DEL);
/// valid UTF-8 passes unchanged, except C1 controls (U+0080–U+009F) and the
/// [`BIDI_CONTROLS`], shown as `<U+XXXX>`; every byte that is not valid UTF-8
/// is shown as `\xNN`.
///
/// Memory bound: holds at most 3 bytes between calls (an incomplete UTF-8
/// sequence of up to 3 bytes, or one pending `\r`), never the input.
/// Unchanged runs of bytes are copied to the output in bulk.
///
/// ```
/// use chatd::display::Sanitizer;
///
/// let mut s = Sanitizer::new();
/// let mut out = Vec::new();
/// s.push(b"\x1b]0;pwned\x07caf\xc3", &mut out); // 'é' split across reads
/// s.push(b"\xa9\r", &mut out);
/// s.push(b"\n", &mut out);
/// s.finish(&mut out);
/// assert_eq!(out, "^[]0;pwned^Gcafé\n".as_bytes());
/// ```
#[derive(Debug, Clone, Default)]
pub struct Sanitizer {
    held: Held,
}

impl Sanitizer {
    /// Creates a filter with nothing held (the same as [`Default`]).
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends the displayable form of `input` to `out`.
    ///
    /// `input` continues the stream given to previous calls: a `\r` or an
    /// incomplete UTF-8 sequence at the end of `input` is held (at most 3
    /// bytes) until the next call or [`finish`](Self::finish) decides how it
    /// is shown. Runs of bytes that need no change are copied with one
    /// `extend_from_slice` each.
    pub fn push(&mut self, input: &[u8], out: &mut Vec<u8>) {
        let mut input = input;
        match std::mem::take(&mut self.held) {
            Held::Nothing => {}
            Held::Cr => match input.first() {
                None => {
                    self.held = Held::Cr;
                    return;
                }
                Some(b'\n') => {
                    out.push(b'\n');
                    input = &input[1..];
                }
                Some(_) => out.extend_from_slice(b"^M"),
            },
            Held::Utf8 { buf, len } => {
                let mut seq = [0u8; 4];
                let mut n = usize::from(len);
                seq[..n].copy_from_slice(&buf[..n]);
                let need = utf8_len(seq[0]);
                while n < need {
                    match input.first() {
                        None => {
                            self.hold_utf8(&seq[..n]);
                            return;
                        }
                        Some(&b) if is_valid_continuation(&seq[..n], b) => {
                            seq[n] = b;
                            n += 1;
                            input = &input[1..];
                        }
                        // A maximal subpart followed by a byte that cannot
                        // continue it: the held bytes are ill-formed, and the
                        // byte starts afresh below.
                        Some(_) => break,
                    }
                }
                if n == need {
                    emit_char(&seq[..n], out);
                } else {
                    emit_hex(&seq[..n], out);
                }
            }
        }
        self.scan(input, out);
    }

    /// End of stream: appends the visible form of any held bytes (a pending
    /// `\r` as `^M`, each byte of an incomplete UTF-8 sequence as `\xNN`),
    /// then forgets them, so the filter can be reused for a new stream.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        match std::mem::take(&mut self.held) {
            Held::Nothing => {}
            Held::Cr => out.extend_from_slice(b"^M"),
            Held::Utf8 { buf, len } => emit_hex(&buf[..usize::from(len)], out),
        }
    }

    /// Holds an incomplete but so far valid UTF-8 prefix of 1 to 3 bytes.
    fn hold_utf8(&mut self, prefix: &[u8]) {
        debug_assert!((1..=3).contains(&prefix.len()));
        let mut buf = [0u8; 3];
        buf[..prefix.len()].copy_from_slice(prefix);
        self.held = Held::Utf8 {
            buf,
            len: prefix.len() as u8,
        };
    }

    /// Filters `input` with nothing held before it, holding what its end
    /// leaves undecided.
    fn scan(&mut self, input: &[u8], out: &mut Vec<u8>) {
        // `input[run..i]` is copied unchanged, in bulk, when something that
        // needs work is found at `i` (or at the end).
        let mut run = 0;
        let mut i = 0;
        while i < input.len() {
            i += plain_ascii_prefix(&input[i..]);
            let Some(&b) = input.get(i) else { break };
            if b >= 0x80 {
                match utf8_sequence(&input[i..]) {
                    Utf8Seq::Valid(n) => {
                        let seq = &input[i..i + n];
                        if !needs_escape(decode(seq)) {
                            i += n; // stays in the unchanged run
                            continue;
                        }
                        out.extend_from_slice(&input[run..i]);
                        emit_char(seq, out);
                        i += n;
                    }
                    Utf8Seq::Invalid(n) => {
                        out.extend_from_slice(&input[run..i]);
                        emit_hex(&input[i..i + n], out);
                        i += n;
                    }
                    Utf8Seq::Incomplete => {
                        out.extend_from_slice(&input[run..i]);
                        self.hold_utf8(&input[i..]);
                        return;
                    }
                }
            } else {
                out.extend_from_slice(&input[run..i]);
                if b == b'\r' {
                    match input.get(i + 1) {
                        None => {
                            self.held = Held::Cr;
                            return;
                        }
                        Some(b'\n') => {
                            out.push(b'\n');
                            i += 2;
                        }
                        Some(_) => {
                            out.extend_from_slice(b"^M");
                            i += 1;
                        }
                    }
                } else {
                    // C0 control other than \n, \t, \r; or DEL.
                    out.extend_from_slice(&[b'^', b ^ 0x40]);
                    i += 1;
                }
            }
            run = i;
        }
        out.extend_from_slice(&input[run..]);
    }
}

/// Whether `b` is ASCII that passes unchanged: printable, `\n` or `\t`.
#[inline]
fn is_plain_ascii(b: u8) -> bool {
    (0x20..0x7f).contains(&b) || b == b'\n' || b == b'\t'
}

/// Length of the longest prefix of `bytes` made of [`is_plain_ascii`] bytes.
#[inline]
fn plain_ascii_prefix(bytes: &[u8]) -> usize {
    // Whole blocks are tested without early exit so the compiler can
    // vectorise the test; the block that fails is then searched bytewise.
    const BLOCK: usize = 16;
    let mut i = 0;
    for block in bytes.chunks_exact(BLOCK) {
        if !block.iter().fold(true, |ok, &b| ok & is_plain_ascii(b)) {
            break;
        }
        i += BLOCK;
    }
    i + bytes[i..]
        .iter()
        .position(|&b| !is_plain_ascii(b))
        .unwrap_or(bytes.len() - i)
}

/// Length of the UTF-8 sequence that lead byte `lead` starts, or 1 for a byte
/// that cannot start one (continuation bytes, C0, C1, F5–FF).
fn utf8_len(lead: u8) -> usize {
    match lead {
        0xc2..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf4 => 4,
        _ => 1,
    }
}

/// Whether `b` can follow the valid, incomplete prefix `prefix` (1 to 3
/// bytes) of a UTF-8 sequence, per Table 3-7 of the Unicode standard: the
/// second byte's range excludes overlong forms (E0, F0), surrogates (ED) and
/// code points above U+10FFFF (F4).
fn is_valid_continuation(prefix: &[u8], b: u8) -> bool {
    let range = match (prefix.len(), prefix[0]) {
        (1, 0xe0) => 0xa0..=0xbf,
        (1, 0xed) => 0x80..=0x9f,
        (1, 0xf0) => 0x90..=0xbf,
        (1, 0xf4) => 0x80..=0x8f,
        _ => 0x80..=0xbf,
    };
    range.contains(&b)
}

/// What starts at a non-ASCII byte.
#[derive(Debug, PartialEq, Eq)]
enum Utf8Seq {
    /// A valid sequence of this many bytes.
    Valid(usize),
    /// An ill-formed maximal subpart of this many bytes (at least 1).
    Invalid(usize),
    /// A valid prefix that reaches the end of the input (1 to 3 bytes).
    Incomplete,
}

/// Classifies the UTF-8 sequence at the start of `bytes` (not empty, first
/// byte 0x80 or above).
fn utf8_sequence(bytes: &[u8]) -> Utf8Seq {
    let need = utf8_len(bytes[0]);
    if need == 1 {
        return Utf8Seq::Invalid(1);
    }
    for n in 1..need {
        match bytes.get(n) {
            None => return Utf8Seq::Incomplete,
            Some(&b) if is_valid_continuation(&bytes[..n], b) => {}
            Some(_) => return Utf8Seq::Invalid(n),
        }
    }
    Utf8Seq::Valid(need)
}

/// Decodes one complete, valid UTF-8 sequence.
fn decode(seq: &[u8]) -> char {
    let cp = match *seq {
        [a, b] => (u32::from(a & 0x1f) << 6) | u32::from(b & 0x3f),
        [a, b, c] => (u32::from(a & 0x0f) << 12) | (u32::from(b & 0x3f) << 6) | u32::from(c & 0x3f),
        [a, b, c, d] => {
            (u32::from(a & 0x07) << 18)
                | (u32::from(b & 0x3f) << 12)
                | (u32::from(c & 0x3f) << 6)
                | u32::from(d & 0x3f)
        }
        _ => unreachable!("decode takes a 2- to 4-byte sequence"),
    };
    char::from_u32(cp).expect("validated UTF-8 decodes to a char")
}

/// Whether a valid non-ASCII character is shown as `<U+XXXX>`: C1 controls
/// and [`BIDI_CONTROLS`].
fn needs_escape(c: char) -> bool {
    ('\u{80}'..='\u{9f}').contains(&c) || BIDI_CONTROLS.contains(&c)
}

/// Appends a complete, valid non-ASCII sequence: unchanged, or `<U+XXXX>`.
fn emit_char(seq: &[u8], out: &mut Vec<u8>) {
    let c = decode(seq);
    if needs_escape(c) {
        write!(out, "<U+{:04X}>", u32::from(c)).expect("writing to a Vec cannot fail");
    } else {
        out.extend_from_slice(seq);
    }
}

/// Appends each byte of `bytes` as `\xNN`.
fn emit_hex(bytes: &[u8], out: &mut Vec<u8>) {
    for &b in bytes {
        out.extend_from_slice(&[
            b'\\',
            b'x',
            HEX[usize::from(b >> 4)],
            HEX[usize::from(b & 0xf)],
        ]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The output for `input` given as one chunk, then `finish`.
    fn show(input: &[u8]) -> Vec<u8> {
        let mut s = Sanitizer::new();
        let mut out = Vec::new();
        s.push(input, &mut out);
        s.finish(&mut out);
        out
    }

    /// The output for `input` given one byte per `push`, then `finish`.
    fn show_bytewise(input: &[u8]) -> Vec<u8> {
        let mut s = Sanitizer::new();
        let mut out = Vec::new();
        for b in input {
            s.push(std::slice::from_ref(b), &mut out);
        }
        s.finish(&mut out);
        out
    }

    /// The output for `input` split at the given offsets (any order, any
    /// value; taken modulo the length), with empty pushes in between.
    fn show_split(input: &[u8], cuts: &[usize]) -> Vec<u8> {
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
        cuts.sort_unstable();
        let mut s = Sanitizer::new();
        let mut out = Vec::new();
        let mut start = 0;
        for c in cuts {
            s.push(&input[start..c], &mut out);
            s.push(&[], &mut out);
            start = c;
        }
        s.push(&input[start..], &mut out);
        s.finish(&mut out);
        out
    }

    /// Checks one-chunk and byte-by-byte output against `expected`.
    #[track_caller]
    fn check(input: &[u8], expected: &str) {
        let got = show(input);
        assert_eq!(
            String::from_utf8_lossy(&got),
            expected,
            "one chunk: {input:?}"
        );
        let got = show_bytewise(input);
        assert_eq!(
            String::from_utf8_lossy(&got),
            expected,
            "byte by byte: {input:?}"
        );
    }

    /// An independent model of the rules, on the whole stream at once, built
    /// on the standard library's UTF-8 validation (`utf8_chunks`, maximal
    /// subparts).
    fn model(input: &[u8]) -> Vec<u8> {
        let mut out = String::new();
        for chunk in input.utf8_chunks() {
            let mut chars = chunk.valid().chars().peekable();
            while let Some(c) = chars.next() {
                match c {
                    '\n' | '\t' => out.push(c),
                    '\r' if chars.peek() == Some(&'\n') => {
                        chars.next();
                        out.push('\n');
                    }
                    '\0'..='\x1f' | '\x7f' => {
                        out.push('^');
                        out.push(char::from(c as u8 ^ 0x40));
                    }
                    c if ('\u{80}'..='\u{9f}').contains(&c) || BIDI_CONTROLS.contains(&c) => {
                        out += &format!("<U+{:04X}>", c as u32);
                    }
                    c => out.push(c),
                }
            }
            for b in chunk.invalid() {
                out += &format!("\\x{b:02x}");
            }
        }
        out.into_bytes()
    }

    #[test]
    fn osc_title_setting_is_visible() {
        check(b"\x1b]0;pwned\x07", "^[]0;pwned^G");
        check(b"\x1b]2;pwned\x1b\\after", "^[]2;pwned^[\\after");
    }

    #[test]
    fn cursor_movement_and_clear_screen_are_visible() {
        check(b"\x1b[2J\x1b[H", "^[[2J^[[H");
        check(b"a\x1b[1;1Hb\x1b[Kc\x1bcd", "a^[[1;1Hb^[[Kc^[cd");
        check(b"\x0c", "^L"); // form feed
    }

    #[test]
    fn bracketed_paste_is_visible() {
        check(b"\x1b[200~rm -rf ~\x1b[201~", "^[[200~rm -rf ~^[[201~");
    }

    #[test]
    fn eight_bit_csi_is_visible() {
        check(b"\x9b2J", "\\x9b2J");
        check(b"\x9d0;pwned\x9c", "\\x9d0;pwned\\x9c");
    }

    #[test]
    fn c1_as_utf8_is_visible() {
        check(b"\xc2\x9b2J", "<U+009B>2J");
        check("\u{80}\u{85}\u{9f}".as_bytes(), "<U+0080><U+0085><U+009F>");
        // U+00A0, the first code point after C1, passes.
        check("\u{a0}".as_bytes(), "\u{a0}");
    }

    #[test]
    fn caret_notation_for_all_c0_and_del() {
        check(b"\x00", "^@");
        check(b"\x07", "^G");
        check(b"\x08", "^H");
        check(b"\x1b", "^[");
        check(b"\x1f", "^_");
        check(b"\x7f", "^?");
        for b in (0u8..0x20).chain([0x7f]) {
            let out = show(&[b]);
            if b == b'\n' || b == b'\t' {
                assert_eq!(out, [b]);
            } else {
                assert_eq!(out, [b'^', b ^ 0x40], "byte {b:#04x}");
            }
        }
    }

    #[test]
    fn tab_and_newline_unchanged() {
        check(b"a\tb\nc\n\n\t", "a\tb\nc\n\n\t");
    }

    #[test]
    fn crlf_becomes_newline() {
        check(b"hello\r\nworld\r\n", "hello\nworld\n");
        check(b"\r\r\n", "^M\n");
        check(b"\r\n\r\n", "\n\n");
    }

    #[test]
    fn crlf_split_between_chunks() {
        let mut s = Sanitizer::new();
        let mut out = Vec::new();
        s.push(b"hello\r", &mut out);
        assert_eq!(out, b"hello", "the CR is held");
        s.push(b"", &mut out);
        assert_eq!(out, b"hello", "an empty chunk decides nothing");
        s.push(b"\nworld", &mut out);
        s.finish(&mut out);
        assert_eq!(out, b"hello\nworld");
    }

    #[test]
    fn lone_cr_is_visible() {
        check(b"100%\rpwned", "100%^Mpwned");
        check(b"\r\r", "^M^M");
        check(b"\ra", "^Ma");
        let mut s = Sanitizer::new();
        let mut out = Vec::new();
        s.push(b"a\r", &mut out);
        s.push(b"b", &mut out);
        s.finish(&mut out);
        assert_eq!(out, b"a^Mb");
    }

    #[test]
    fn cr_at_end_of_stream() {
        check(b"bye\r", "bye^M");
        let mut s = Sanitizer::new();
        let mut out = Vec::new();
        s.push(b"bye\r", &mut out);
        s.finish(&mut out);
        assert_eq!(out, b"bye^M");
        // finish forgets what it flushed.
        s.finish(&mut out);
        s.push(b"\n", &mut out);
        assert_eq!(out, b"bye^M\n");
    }

    #[test]
    fn utf8_text_unchanged() {
        let text = "café naïve Ærøskøbing, 日本語のテキスト, 😀👍🏽 𝄞 \u{10FFFF}, \u{200F}ok";
        check(text.as_bytes(), text);
        // A joined emoji sequence (ZWJ) passes too.
        check("👩\u{200d}💻".as_bytes(), "👩\u{200d}💻");
    }

    #[test]
    fn utf8_split_across_chunks() {
        let text = "é日😀";
        let bytes = text.as_bytes();
        for cut in 0..=bytes.len() {
            assert_eq!(show_split(bytes, &[cut]), bytes, "cut at {cut}");
        }
        let mut s = Sanitizer::new();
        let mut out = Vec::new();
        s.push(b"\xf0\x9f", &mut out);
        s.push(b"\x98", &mut out);
        assert_eq!(out, b"", "an incomplete character is held");
        s.push(b"\x80!", &mut out);
        assert_eq!(out, "😀!".as_bytes());
    }

    #[test]
    fn bidi_controls_are_visible() {
        check("access\u{202E}txt.exe".as_bytes(), "access<U+202E>txt.exe");
        let all: String = BIDI_CONTROLS.iter().collect();
        check(
            all.as_bytes(),
            "<U+202A><U+202B><U+202C><U+202D><U+202E><U+2066><U+2067><U+2068><U+2069>",
        );
        // Neighbours pass.
        check(
            "\u{2029}\u{202F}\u{2065}\u{206A}".as_bytes(),
            "\u{2029}\u{202F}\u{2065}\u{206A}",
        );
    }

    #[test]
    fn invalid_bytes_are_visible() {
        // Stray continuation bytes, impossible bytes.
        check(
            b"a\x80b\xbf\xc0\xc1\xf5\xff",
            "a\\x80b\\xbf\\xc0\\xc1\\xf5\\xff",
        );
        // Overlong encodings: C0/C1 and E0 80..9F / F0 80..8F never start a
        // valid sequence, so each byte is its own subpart.
        check(b"\xc0\xaf", "\\xc0\\xaf");
        check(b"\xe0\x80\xaf", "\\xe0\\x80\\xaf");
        check(b"\xf0\x80\x80\xaf", "\\xf0\\x80\\x80\\xaf");
        // A surrogate (U+D800) encoded in UTF-8.
        check(b"\xed\xa0\x80", "\\xed\\xa0\\x80");
        // Above U+10FFFF.
        check(b"\xf4\x90\x80\x80", "\\xf4\\x90\\x80\\x80");
        // Truncated sequences followed by a non-continuation byte: the
        // maximal subpart is one unit, the next byte starts afresh.
        check(b"\xe6\x97a", "\\xe6\\x97a");
        check(b"\xf0\x9f\x98\r\n", "\\xf0\\x9f\\x98\n");
        check(b"\xe6\x97\xe6\x97\xa5", "\\xe6\\x97日");
        check(b"\xc3\x1b[H", "\\xc3^[[H");
        // Truncated at end of stream.
        check(b"ok\xf0\x9f\x98", "ok\\xf0\\x9f\\x98");
        check(b"\xc3", "\\xc3");
    }

    #[test]
    fn invalid_bytes_count_like_from_utf8_lossy() {
        // Same subparts as the standard library: one U+FFFD per subpart.
        let input = b"\xe0\x80\xaf\xed\xa0\x80\xf4\x90\x80\x80\xe6\x97a\xf0\x9f\x98";
        let lossy = String::from_utf8_lossy(input);
        let escaped = String::from_utf8(show(input)).unwrap();
        assert_eq!(lossy.matches('\u{FFFD}').count(), 12);
        assert_eq!(escaped.matches("\\x").count(), input.len() - 1);
        assert_eq!(show(input), model(input));
    }

    #[test]
    fn backslash_passes_unchanged() {
        // A literal "\x9b" sent as text is shown as the same text; the
        // notation is for display only, not an unambiguous encoding.
        check(b"\\x9b", "\\x9b");
    }

    #[test]
    fn empty_input_and_reuse() {
        let mut s = Sanitizer::default();
        let mut out = Vec::new();
        s.push(b"", &mut out);
        s.finish(&mut out);
        assert!(out.is_empty());
        s.push(b"\xe6\x97", &mut out);
        s.finish(&mut out);
        s.push(b"\xa5", &mut out);
        s.finish(&mut out);
        assert_eq!(out, b"\\xe6\\x97\\xa5");
    }

    #[test]
    fn appends_to_existing_output() {
        let mut s = Sanitizer::new();
        let mut out = b"prefix: ".to_vec();
        s.push(b"\x1b[31mred", &mut out);
        assert_eq!(out, b"prefix: ^[[31mred");
    }

    #[test]
    fn large_plain_ascii_is_unchanged() {
        let text: Vec<u8> = (0..10_000u32)
            .map(|i| b" abcdefghijklmnopqrstuvwxyz0123456789\n\t~"[i as usize % 40])
            .collect();
        assert_eq!(show(&text), text);
        let mut with_esc = text.clone();
        with_esc[5_000] = 0x1b;
        let out = show(&with_esc);
        assert_eq!(out.len(), text.len() + 1);
        assert_eq!(&out[5_000..5_002], b"^[");
    }

    /// Byte strings rich in the cases that matter: raw bytes, encodings of
    /// any char (whole or truncated), controls, C1 and bidi controls.
    fn adversarial_bytes() -> impl Strategy<Value = Vec<u8>> {
        let atom = prop_oneof![
            any::<u8>().prop_map(|b| vec![b]),
            prop::sample::select(vec![
                b'\r', b'\n', b'\t', 0x1b, 0x7f, 0x9b, 0xc2, 0xe2, 0xed, 0xf0, 0xf4, 0x80, 0xbf,
                b'a'
            ])
            .prop_map(|b| vec![b]),
            (any::<char>(), 0usize..4).prop_map(|(c, cut)| {
                let mut buf = [0; 4];
                let bytes = c.encode_utf8(&mut buf).as_bytes();
                // Usually whole, sometimes truncated.
                let keep = if cut == 0 {
                    bytes.len().saturating_sub(1).max(1)
                } else {
                    bytes.len()
                };
                bytes[..keep].to_vec()
            }),
            prop::sample::select(vec![
                "\u{85}", "\u{9b}", "\u{202e}", "\u{2066}", "\r\n", "\x1b[2J", "é", "日", "😀"
            ])
            .prop_map(|s| s.as_bytes().to_vec()),
        ];
        prop::collection::vec(atom, 0..64).prop_map(|atoms| atoms.concat())
    }

    /// Strings with no control characters (C0, DEL, C1) nor bidi controls,
    /// plus `\n` and `\t`, which also pass unchanged.
    fn harmless_text() -> impl Strategy<Value = String> {
        let c = prop_oneof![
            any::<char>().prop_filter("harmless", |c| !c.is_control()
                && !BIDI_CONTROLS.contains(c)),
            prop::sample::select(vec!['\n', '\t', 'é', '日', '😀', 'a']),
        ];
        prop::collection::vec(c, 0..100).prop_map(|cs| cs.into_iter().collect())
    }

    proptest! {
        #[test]
        fn any_split_gives_one_chunk_output(
            input in adversarial_bytes(),
            cuts in prop::collection::vec(any::<usize>(), 0..8),
        ) {
            prop_assert_eq!(show_split(&input, &cuts), show(&input));
        }

        #[test]
        fn any_split_of_random_bytes_gives_one_chunk_output(
            input in prop::collection::vec(any::<u8>(), 0..256),
            cuts in prop::collection::vec(any::<usize>(), 0..8),
        ) {
            prop_assert_eq!(show_split(&input, &cuts), show(&input));
            prop_assert_eq!(show_bytewise(&input), show(&input));
        }

        #[test]
        fn output_is_safe(
            input in prop_oneof![adversarial_bytes(), prop::collection::vec(any::<u8>(), 0..256)],
            cuts in prop::collection::vec(any::<usize>(), 0..4),
        ) {
            let out = show_split(&input, &cuts);
            for &b in &out {
                prop_assert!(b >= 0x20 || b == b'\n' || b == b'\t', "control byte {:#04x}", b);
                prop_assert_ne!(b, 0x7f);
            }
            let text = std::str::from_utf8(&out);
            prop_assert!(text.is_ok(), "output is not UTF-8");
            for c in text.unwrap().chars() {
                prop_assert!(!('\u{80}'..='\u{9f}').contains(&c), "C1 {:?}", c);
                prop_assert!(!BIDI_CONTROLS.contains(&c), "bidi {:?}", c);
            }
        }

        // Cleaning twice is cleaning once (what it shows is printable
        // already).
        #[test]
        fn cleaning_is_idempotent(
            input in prop_oneof![adversarial_bytes(), prop::collection::vec(any::<u8>(), 0..256)],
        ) {
            let once = show(&input);
            prop_assert_eq!(show(&once), once);
        }

        // Nothing is lost: every printable character of the input (valid
        // UTF-8, not a control, not a bidi control) is in the output, in
        // order.
        #[test]
        fn no_printable_character_is_dropped(
            input in prop_oneof![adversarial_bytes(), prop::collection::vec(any::<u8>(), 0..256)],
        ) {
            let out = String::from_utf8(show(&input)).expect("output is UTF-8");
            let mut rest = out.as_str();
            for chunk in input.utf8_chunks() {
                for c in chunk.valid().chars() {
                    if c.is_control() || BIDI_CONTROLS.contains(&c) {
                        continue;
                    }
                    let at = rest.find(c);
                    prop_assert!(at.is_some(), "{:?} dropped from {:?}", c, out);
                    rest = &rest[at.unwrap() + c.len_utf8()..];
                }
            }
        }

        #[test]
        fn harmless_text_is_unchanged(
            text in harmless_text(),
            cuts in prop::collection::vec(any::<usize>(), 0..4),
        ) {
            prop_assert_eq!(show_split(text.as_bytes(), &cuts), text.as_bytes());
        }

        #[test]
        fn matches_independent_model(
            input in prop_oneof![adversarial_bytes(), prop::collection::vec(any::<u8>(), 0..256)],
        ) {
            let got = String::from_utf8(show(&input)).expect("output is UTF-8");
            let expected = String::from_utf8(model(&input)).expect("model is UTF-8");
            prop_assert_eq!(got, expected);
        }
    }
}

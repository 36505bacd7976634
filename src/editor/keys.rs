//! Decoding what a terminal sends for keys in non-canonical mode: text,
//! control characters and the escape sequences of the cursor keys (ECMA-48
//! CSI `ESC [ … final`, and SS3 `ESC O x` in application cursor mode, as
//! xterm, tmux and the Linux console send them). Input arrives in
//! arbitrary pieces from `read(2)`: an escape sequence or a UTF-8
//! character cut between two reads is held until its end arrives.

/// One key, or a run of text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    /// Text to insert: printable bytes (UTF-8 or not) and tabs.
    Text(Vec<u8>),
    /// Enter (`\r` or `\n`; `\r\n` is one Enter).
    Enter,
    /// Backspace (DEL or Ctrl-H).
    Backspace,
    /// Delete (`ESC [ 3 ~`).
    Delete,
    /// Ctrl-D: end of input on an empty line, else Delete (as readline).
    CtrlD,
    /// Left arrow, Ctrl-B.
    Left,
    /// Right arrow, Ctrl-F.
    Right,
    /// Home, Ctrl-A.
    Home,
    /// End, Ctrl-E.
    End,
    /// Up arrow, Ctrl-P.
    Up,
    /// Down arrow, Ctrl-N.
    Down,
    /// Ctrl-U.
    KillToStart,
    /// Ctrl-K.
    KillToEnd,
    /// Ctrl-W.
    KillWord,
    /// Ctrl-L: redraw.
    Redraw,
}

/// The decoder: bytes in, keys out, holding an unfinished sequence.
#[derive(Debug, Default, Clone)]
pub struct Decoder {
    held: Vec<u8>,
    /// The last byte was `\r` (a `\n` right after it is the same Enter).
    after_cr: bool,
}

/// The longest escape sequence held before it is dropped as garbage.
const SEQ_MAX: usize = 32;

impl Decoder {
    /// A decoder with nothing held.
    pub fn new() -> Decoder {
        Decoder::default()
    }

    /// Decodes `bytes`, appending the keys to `keys`.
    pub fn feed(&mut self, bytes: &[u8], keys: &mut Vec<Key>) {
        let mut data = std::mem::take(&mut self.held);
        data.extend_from_slice(bytes);
        let mut i = 0;
        while i < data.len() {
            let b = data[i];
            if b != b'\n' {
                self.after_cr = false;
            }
            match b {
                0x1b => match escape(&data[i..]) {
                    Seq::Key(key, len) => {
                        keys.extend(key);
                        i += len;
                    }
                    Seq::Incomplete => {
                        self.held = data[i..].to_vec();
                        return;
                    }
                },
                b'\r' => {
                    keys.push(Key::Enter);
                    self.after_cr = true;
                    i += 1;
                }
                b'\n' => {
                    if !std::mem::replace(&mut self.after_cr, false) {
                        keys.push(Key::Enter);
                    }
                    i += 1;
                }
                0x7f | 0x08 => push(keys, Key::Backspace, &mut i),
                0x01 => push(keys, Key::Home, &mut i),
                0x02 => push(keys, Key::Left, &mut i),
                0x04 => push(keys, Key::CtrlD, &mut i),
                0x05 => push(keys, Key::End, &mut i),
                0x06 => push(keys, Key::Right, &mut i),
                0x0b => push(keys, Key::KillToEnd, &mut i),
                0x0c => push(keys, Key::Redraw, &mut i),
                0x0e => push(keys, Key::Down, &mut i),
                0x10 => push(keys, Key::Up, &mut i),
                0x15 => push(keys, Key::KillToStart, &mut i),
                0x17 => push(keys, Key::KillWord, &mut i),
                b'\t' | 0x20..=0xff => {
                    let start = i;
                    while i < data.len()
                        && (data[i] == b'\t' || (data[i] >= 0x20 && data[i] != 0x7f))
                    {
                        i += 1;
                    }
                    let mut end = i;
                    if i == data.len() {
                        // A UTF-8 character cut by the read: hold its start.
                        end = start + complete_prefix(&data[start..i]);
                    }
                    if end > start {
                        match keys.last_mut() {
                            Some(Key::Text(t)) => t.extend_from_slice(&data[start..end]),
                            _ => keys.push(Key::Text(data[start..end].to_vec())),
                        }
                    }
                    if end < i {
                        self.held = data[end..i].to_vec();
                        return;
                    }
                }
                // Other control characters mean nothing here.
                _ => i += 1,
            }
        }
    }
}

fn push(keys: &mut Vec<Key>, key: Key, i: &mut usize) {
    keys.push(key);
    *i += 1;
}

/// The length of `text` without an unfinished UTF-8 sequence at its end
/// (at most 3 bytes that a later read may complete).
fn complete_prefix(text: &[u8]) -> usize {
    let n = text.len();
    for back in 1..=3.min(n) {
        let b = text[n - back];
        if b & 0xc0 == 0x80 {
            continue;
        }
        let need = match b {
            0xc2..=0xdf => 2,
            0xe0..=0xef => 3,
            0xf0..=0xf4 => 4,
            _ => return n,
        };
        return if back < need { n - back } else { n };
    }
    n
}

enum Seq {
    /// The key (or nothing, for a sequence we do not use) and the length.
    Key(Option<Key>, usize),
    Incomplete,
}

/// Decodes the escape sequence at the start of `data` (`data[0]` is ESC).
fn escape(data: &[u8]) -> Seq {
    let Some(&kind) = data.get(1) else {
        return Seq::Incomplete;
    };
    match kind {
        b'[' => {
            let mut j = 2;
            while j < data.len() && (0x20..0x40).contains(&data[j]) {
                j += 1;
            }
            if j >= SEQ_MAX {
                return Seq::Key(None, j);
            }
            let Some(&last) = data.get(j) else {
                return Seq::Incomplete;
            };
            if !(0x40..0x7f).contains(&last) {
                // Not a sequence after all: drop the ESC [.
                return Seq::Key(None, j);
            }
            let params = &data[2..j];
            let first: &[u8] = params.split(|&b| b == b';').next().unwrap_or(b"");
            let key = match last {
                b'A' => Some(Key::Up),
                b'B' => Some(Key::Down),
                b'C' => Some(Key::Right),
                b'D' => Some(Key::Left),
                b'H' => Some(Key::Home),
                b'F' => Some(Key::End),
                b'~' => match first {
                    b"1" | b"7" => Some(Key::Home),
                    b"4" | b"8" => Some(Key::End),
                    b"3" => Some(Key::Delete),
                    _ => None,
                },
                _ => None,
            };
            Seq::Key(key, j + 1)
        }
        b'O' => {
            let Some(&last) = data.get(2) else {
                return Seq::Incomplete;
            };
            let key = match last {
                b'A' => Some(Key::Up),
                b'B' => Some(Key::Down),
                b'C' => Some(Key::Right),
                b'D' => Some(Key::Left),
                b'H' => Some(Key::Home),
                b'F' => Some(Key::End),
                _ => None,
            };
            Seq::Key(key, 3)
        }
        // Alt-x and a lone ESC followed by a key: the ESC is dropped, the
        // key goes on.
        _ => Seq::Key(None, 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn keys(pieces: &[&[u8]]) -> Vec<Key> {
        let mut d = Decoder::new();
        let mut out = Vec::new();
        for p in pieces {
            d.feed(p, &mut out);
        }
        out
    }

    fn text(s: &str) -> Key {
        Key::Text(s.as_bytes().to_vec())
    }

    #[test]
    fn text_controls_and_enter() {
        assert_eq!(
            keys(&[b"hi\x7f\x01\x05\x15\x17\x0b\x0c\x04\r"]),
            vec![
                text("hi"),
                Key::Backspace,
                Key::Home,
                Key::End,
                Key::KillToStart,
                Key::KillWord,
                Key::KillToEnd,
                Key::Redraw,
                Key::CtrlD,
                Key::Enter
            ]
        );
        assert_eq!(
            keys(&[b"a\r\nb\n\n"]),
            vec![text("a"), Key::Enter, text("b"), Key::Enter, Key::Enter]
        );
        assert_eq!(keys(&[b"a\tb"]), vec![text("a\tb")]);
    }

    #[test]
    fn cursor_keys_in_both_modes_and_vt_home_end_delete() {
        assert_eq!(
            keys(&[b"\x1b[A\x1b[B\x1b[C\x1b[D\x1bOH\x1bOF\x1b[1~\x1b[4~\x1b[3~\x1b[H\x1b[F"]),
            vec![
                Key::Up,
                Key::Down,
                Key::Right,
                Key::Left,
                Key::Home,
                Key::End,
                Key::Home,
                Key::End,
                Key::Delete,
                Key::Home,
                Key::End
            ]
        );
        // Modified keys (Ctrl-Left: ESC [ 1 ; 5 D) still move.
        assert_eq!(keys(&[b"\x1b[1;5D"]), vec![Key::Left]);
        // Unknown sequences and Alt-x are dropped, what follows is kept.
        assert_eq!(keys(&[b"\x1b[15~x\x1bxy"]), vec![text("xxy")]);
    }

    #[test]
    fn sequences_and_characters_cut_by_reads_are_held() {
        assert_eq!(keys(&[b"\x1b", b"[", b"D"]), vec![Key::Left]);
        assert_eq!(keys(&[b"\x1b[", b"3~"]), vec![Key::Delete]);
        let e = "é".as_bytes();
        assert_eq!(keys(&[&e[..1], &e[1..]]), vec![text("é")]);
        let emoji = "🙂".as_bytes();
        assert_eq!(
            keys(&[b"a", &emoji[..2], &emoji[2..], b"b"]),
            vec![text("a🙂b")]
        );
        // Not UTF-8 at all: passed on as typed.
        // (a last byte that may start a character waits for the next key).
        assert_eq!(
            keys(&[b"\xe9t\xe9\r"]),
            vec![Key::Text(b"\xe9t\xe9".to_vec()), Key::Enter]
        );
    }

    proptest! {
        /// However the bytes are cut, the keys are the same.
        #[test]
        fn cuts_do_not_change_the_keys(
            bytes in proptest::collection::vec(proptest::sample::select(vec![
                b'a', b'\r', b'\n', 0x1b, b'[', b'O', b'3', b'~', b'A', b'D', 0x7f, 0x15,
                0xc3, 0xa9, 0xf0, 0x9f, 0x99, 0x82, b';',
            ]), 0..40),
            cuts in proptest::collection::vec(0usize..40, 0..6),
        ) {
            let whole = keys(&[&bytes]);
            let mut cuts: Vec<usize> = cuts.into_iter().filter(|&c| c <= bytes.len()).collect();
            cuts.sort_unstable();
            let mut pieces = Vec::new();
            let mut at = 0;
            for c in cuts {
                pieces.push(&bytes[at..c]);
                at = c;
            }
            pieces.push(&bytes[at..]);
            // Text split in several Text keys is the same text.
            let join = |ks: Vec<Key>| {
                let mut out: Vec<Key> = Vec::new();
                for k in ks {
                    match (out.last_mut(), k) {
                        (Some(Key::Text(a)), Key::Text(b)) => a.extend(b),
                        (_, k) => out.push(k),
                    }
                }
                out
            };
            prop_assert_eq!(join(whole), join(keys(&pieces)));
        }
    }
}

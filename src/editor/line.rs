//! The line being typed: its bytes, the cursor, and the history of the
//! lines sent, without a terminal (pure logic, unit and property tested).
//!
//! The buffer holds bytes, not a `String`: what a person types on a
//! terminal that is not UTF-8 (a Latin-1 `é`, 0xE9) is sent as typed, as
//! canonical mode sent it, and shown as `\xe9`, the notation
//! [`crate::display`] uses for received invalid UTF-8. Control characters
//! (a pasted tab) are kept and shown in caret notation (`^I`).
//!
//! The cursor moves by *clusters*: a character together with the
//! zero-width characters that follow it (combining marks such as U+0301,
//! variation selectors, U+200D), so that `e` + U+0301 is one step, one
//! Backspace, as on screen. Display widths are those of `unicode-width`
//! (East Asian Wide and emoji: 2 columns).

use unicode_width::UnicodeWidthChar;

use super::keys::Key;
use crate::terminal::glyph::{Glyph, glyph, glyphs};
pub use crate::terminal::shared::LINE_MAX;

/// How many sent lines Up/Down can recall.
pub const HISTORY_MAX: usize = 500;

fn zero_width(g: Glyph) -> bool {
    matches!(g, Glyph::Char(c) if c.width() == Some(0))
}

/// The line under edit and the history of sent lines.
#[derive(Debug, Default, Clone)]
pub struct Line {
    buf: Vec<u8>,
    /// Byte offset of the cursor, always on a cluster boundary.
    cursor: usize,
    history: Vec<Vec<u8>>,
    /// While Up/Down browse the history: the entry shown.
    browsing: Option<usize>,
    /// The line being typed before browsing began (Down past the newest
    /// entry brings it back).
    stash: Vec<u8>,
}

impl Line {
    /// An empty line with an empty history.
    pub fn new() -> Line {
        Line::default()
    }

    /// The bytes of the line.
    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// The cursor, as a byte offset into [`Line::bytes`].
    pub fn cursor(&self) -> usize {
        self.cursor
    }

    /// Whether the line is empty.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Inserts `text` at the cursor and moves the cursor after it. Returns
    /// `false` (inserting nothing) when the line would exceed [`LINE_MAX`]
    /// bytes.
    pub fn insert(&mut self, text: &[u8]) -> bool {
        if self.buf.len() + text.len() > LINE_MAX {
            return false;
        }
        self.buf
            .splice(self.cursor..self.cursor, text.iter().copied());
        self.cursor += text.len();
        // A combining mark typed after the cursor's cluster joins it; the
        // cursor stays on a boundary.
        self.cursor = self.boundary_after(self.cursor.min(self.buf.len()));
        self.snap();
        true
    }

    /// Moves the cursor back to the start of the glyph it is inside, when
    /// an edit joined the bytes around it into one UTF-8 sequence: a lone
    /// 0xC3 and a 0x80 that a deleted byte kept apart become `À`.
    fn snap(&mut self) {
        if self.cursor >= self.buf.len() {
            return;
        }
        let start = glyphs(&self.buf)
            .map(|(at, _)| at)
            .take_while(|&at| at <= self.cursor)
            .last()
            .unwrap_or(0);
        self.cursor = start;
    }

    /// The cluster boundary at or after `at` (skipping zero-width glyphs
    /// that belong to the cluster before `at`).
    fn boundary_after(&self, mut at: usize) -> usize {
        if at == 0 {
            return 0;
        }
        while at < self.buf.len() {
            let (g, len) = glyph(&self.buf[at..]);
            if !zero_width(g) {
                break;
            }
            at += len;
        }
        at
    }

    /// The start of the cluster after the one at `at`.
    fn next(&self, at: usize) -> usize {
        if at >= self.buf.len() {
            return self.buf.len();
        }
        let (_, len) = glyph(&self.buf[at..]);
        self.boundary_after(at + len)
    }

    /// The start of the cluster that ends at `at`.
    fn prev(&self, at: usize) -> usize {
        let starts: Vec<(usize, Glyph)> = glyphs(&self.buf[..at]).collect();
        let mut i = starts.len();
        while i > 0 {
            i -= 1;
            if !zero_width(starts[i].1) || i == 0 {
                return starts[i].0;
            }
        }
        0
    }

    /// Backspace: deletes the cluster before the cursor.
    pub fn backspace(&mut self) -> bool {
        if self.cursor == 0 {
            return false;
        }
        let from = self.prev(self.cursor);
        self.buf.drain(from..self.cursor);
        self.cursor = from;
        self.snap();
        true
    }

    /// Delete: deletes the cluster under the cursor.
    pub fn delete(&mut self) -> bool {
        if self.cursor >= self.buf.len() {
            return false;
        }
        let to = self.next(self.cursor);
        self.buf.drain(self.cursor..to);
        self.snap();
        true
    }

    /// Ctrl-U: deletes from the start of the line to the cursor (readline's
    /// `unix-line-discard`).
    pub fn kill_to_start(&mut self) -> bool {
        let any = self.cursor > 0;
        self.buf.drain(..self.cursor);
        self.cursor = 0;
        any
    }

    /// Ctrl-K: deletes from the cursor to the end of the line.
    pub fn kill_to_end(&mut self) -> bool {
        let any = self.cursor < self.buf.len();
        self.buf.truncate(self.cursor);
        any
    }

    /// Ctrl-W: deletes the word before the cursor, and the blanks after it
    /// (readline's `unix-word-rubout`: words end at white space).
    pub fn kill_word(&mut self) -> bool {
        let mut from = self.cursor;
        while from > 0 && self.buf[from - 1].is_ascii_whitespace() {
            from -= 1;
        }
        while from > 0 && !self.buf[from - 1].is_ascii_whitespace() {
            from -= 1;
        }
        let any = from < self.cursor;
        self.buf.drain(from..self.cursor);
        self.cursor = from;
        self.snap();
        any
    }

    /// Left: one cluster back.
    pub fn left(&mut self) -> bool {
        let any = self.cursor > 0;
        self.cursor = self.prev(self.cursor);
        any
    }

    /// Right: one cluster forward.
    pub fn right(&mut self) -> bool {
        let any = self.cursor < self.buf.len();
        self.cursor = self.next(self.cursor);
        any
    }

    /// Home, Ctrl-A: to the start of the line.
    pub fn home(&mut self) -> bool {
        std::mem::replace(&mut self.cursor, 0) != 0
    }

    /// End, Ctrl-E: to the end of the line.
    pub fn end(&mut self) -> bool {
        let end = self.buf.len();
        std::mem::replace(&mut self.cursor, end) != end
    }

    /// Up: the previous sent line (the line being typed is kept for Down).
    pub fn up(&mut self) -> bool {
        let at = match self.browsing {
            None if self.history.is_empty() => return false,
            None => {
                self.stash = std::mem::take(&mut self.buf);
                self.history.len() - 1
            }
            Some(0) => return false,
            Some(i) => i - 1,
        };
        self.browsing = Some(at);
        self.buf = self.history[at].clone();
        self.cursor = self.buf.len();
        true
    }

    /// Down: the next sent line, then the line that was being typed.
    pub fn down(&mut self) -> bool {
        let Some(at) = self.browsing else {
            return false;
        };
        if at + 1 < self.history.len() {
            self.browsing = Some(at + 1);
            self.buf = self.history[at + 1].clone();
        } else {
            self.browsing = None;
            self.buf = std::mem::take(&mut self.stash);
        }
        self.cursor = self.buf.len();
        true
    }

    /// Enter: takes the line out (the buffer is empty again) and records
    /// it in the history, unless it is empty or repeats the last entry.
    pub fn take(&mut self) -> Vec<u8> {
        let line = std::mem::take(&mut self.buf);
        self.cursor = 0;
        self.browsing = None;
        self.stash.clear();
        if !line.is_empty() && self.history.last() != Some(&line) {
            if self.history.len() == HISTORY_MAX {
                self.history.remove(0);
            }
            self.history.push(line.clone());
        }
        line
    }

    /// Applies one key to the line (the keys of readline's emacs mode;
    /// [`Key`]) and says what else the editor has to do.
    pub fn apply(&mut self, key: Key) -> Applied {
        match key {
            Key::Text(text) if self.insert(&text) => {}
            Key::Text(_) => return Applied::Bell,
            Key::Enter => return Applied::Line(self.take()),
            Key::CtrlD if self.is_empty() => return Applied::Eof,
            Key::Delete | Key::CtrlD => {
                self.delete();
            }
            Key::Backspace => {
                self.backspace();
            }
            Key::Left => {
                self.left();
            }
            Key::Right => {
                self.right();
            }
            Key::Home => {
                self.home();
            }
            Key::End => {
                self.end();
            }
            Key::Up => {
                self.up();
            }
            Key::Down => {
                self.down();
            }
            Key::KillToStart => {
                self.kill_to_start();
            }
            Key::KillToEnd => {
                self.kill_to_end();
            }
            Key::KillWord => {
                self.kill_word();
            }
            Key::Redraw => return Applied::Redraw,
        }
        Applied::Edited
    }
}

/// What [`Line::apply`] leaves to the editor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// The line was edited (or the key did nothing to it): redraw it.
    Edited,
    /// The text did not fit ([`LINE_MAX`]): ring the bell.
    Bell,
    /// Enter: this line is finished (without its newline).
    Line(Vec<u8>),
    /// Ctrl-D on an empty line: end of input.
    Eof,
    /// Ctrl-L: clear the screen and draw the region again.
    Redraw,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn typed(text: &str) -> Line {
        let mut line = Line::new();
        assert!(line.insert(text.as_bytes()));
        line
    }

    fn text(line: &Line) -> &str {
        std::str::from_utf8(line.bytes()).unwrap()
    }

    #[test]
    fn keys_apply_as_readline_does() {
        let mut line = Line::new();
        assert_eq!(line.apply(Key::CtrlD), Applied::Eof);
        assert_eq!(line.apply(Key::Text(b"helo".to_vec())), Applied::Edited);
        assert_eq!(line.apply(Key::Left), Applied::Edited);
        assert_eq!(line.apply(Key::Text(b"l".to_vec())), Applied::Edited);
        assert_eq!(line.apply(Key::Home), Applied::Edited);
        // Ctrl-D on a line that is not empty deletes, as Delete does.
        assert_eq!(line.apply(Key::CtrlD), Applied::Edited);
        assert_eq!(text(&line), "ello");
        assert_eq!(line.apply(Key::Redraw), Applied::Redraw);
        assert_eq!(line.apply(Key::Enter), Applied::Line(b"ello".to_vec()));
        assert!(line.is_empty());
        assert_eq!(line.apply(Key::Up), Applied::Edited);
        assert_eq!(text(&line), "ello");
        assert_eq!(line.apply(Key::KillToStart), Applied::Edited);
        assert!(line.is_empty());
        assert_eq!(
            line.apply(Key::Text(vec![b'x'; LINE_MAX + 1])),
            Applied::Bell
        );
    }

    #[test]
    fn insert_in_the_middle_and_move() {
        let mut line = typed("helo");
        assert!(line.left());
        assert!(line.insert(b"l"));
        assert_eq!(text(&line), "hello");
        assert_eq!(line.cursor(), 4);
        assert!(line.home());
        assert!(!line.left());
        assert!(line.insert(b">"));
        assert!(line.end());
        assert!(!line.right());
        assert_eq!(text(&line), ">hello");
    }

    #[test]
    fn a_combining_mark_moves_and_deletes_with_its_base() {
        let mut line = typed("ae\u{301}b");
        line.left();
        assert_eq!(line.cursor(), 4, "before b");
        line.left();
        assert_eq!(line.cursor(), 1, "before e + accent");
        line.delete();
        assert_eq!(text(&line), "ab");
        let mut line = typed("e\u{301}");
        assert!(line.backspace());
        assert!(line.is_empty());
    }

    #[test]
    fn wide_characters_are_one_step() {
        let mut line = typed("日本語");
        line.left();
        assert_eq!(line.cursor(), 6);
        line.backspace();
        assert_eq!(text(&line), "日語");
    }

    #[test]
    fn backspace_delete_at_the_ends_do_nothing() {
        let mut line = typed("ab");
        assert!(!line.delete());
        line.home();
        assert!(!line.backspace());
        assert_eq!(text(&line), "ab");
    }

    #[test]
    fn ctrl_u_kills_to_the_start_ctrl_k_to_the_end() {
        let mut line = typed("hello world");
        for _ in 0..5 {
            line.left();
        }
        assert!(line.kill_to_start());
        assert_eq!(text(&line), "world");
        assert_eq!(line.cursor(), 0);
        line.right();
        assert!(line.kill_to_end());
        assert_eq!(text(&line), "w");
    }

    #[test]
    fn ctrl_w_kills_the_word_before_the_cursor_and_its_blanks() {
        let mut line = typed("one two  three  ");
        assert!(line.kill_word());
        assert_eq!(text(&line), "one two  ");
        assert!(line.kill_word());
        assert_eq!(text(&line), "one ");
        line.kill_word();
        assert!(!line.kill_word());
        assert!(line.is_empty());
    }

    #[test]
    fn history_up_down_keeps_the_line_being_typed() {
        let mut line = Line::new();
        for sent in ["first", "second", "second", ""] {
            line.insert(sent.as_bytes());
            line.take();
        }
        line.insert(b"draft");
        assert!(line.up());
        assert_eq!(text(&line), "second");
        assert!(line.up());
        assert_eq!(text(&line), "first", "a repeated line is recorded once");
        assert!(!line.up());
        assert!(line.down());
        assert_eq!(text(&line), "second");
        assert!(line.down());
        assert_eq!(text(&line), "draft");
        assert!(!line.down());
        assert_eq!(line.cursor(), 5);
    }

    // Found by the property test below on a clean clone (its seed is kept
    // in proptest-regressions/editor/line.txt): removing the byte between
    // a lone 0xC3 and a 0x80 makes them one character, `À`.
    #[test]
    fn an_edit_that_joins_bytes_into_a_character_keeps_the_cursor_on_it() {
        let mut line = Line::new();
        line.insert(&[0xc3, 0x00, 0x80]);
        line.left();
        assert_eq!(line.cursor(), 2);
        line.backspace();
        assert_eq!(line.bytes(), "À".as_bytes());
        assert_eq!(line.cursor(), 0, "not inside the character");
        let mut line = Line::new();
        line.insert(&[0xc3, 0x00, 0x80]);
        line.home();
        line.right();
        line.delete();
        assert_eq!(line.cursor(), 0);
    }

    #[test]
    fn the_line_has_a_limit() {
        let mut line = Line::new();
        assert!(line.insert(&vec![b'x'; LINE_MAX]));
        assert!(!line.insert(b"y"));
        assert_eq!(line.bytes().len(), LINE_MAX);
    }

    proptest! {
        /// Any sequence of edits keeps the cursor on a glyph boundary
        /// inside the buffer, and Left/Right visit the same boundaries.
        #[test]
        fn the_cursor_stays_on_a_boundary(
            ops in proptest::collection::vec((0u8..10, proptest::sample::select(vec![
                "a", "é", "e\u{301}", "日", "🙂", "\u{301}", "\t", "\u{fe0f}", " ",
            ])), 0..60),
            bad in proptest::collection::vec(any::<u8>(), 0..4),
        ) {
            let mut line = Line::new();
            line.insert(&bad);
            for (op, s) in ops {
                match op {
                    0..=2 => { line.insert(s.as_bytes()); }
                    3 => { line.backspace(); }
                    4 => { line.delete(); }
                    5 => { line.left(); }
                    6 => { line.right(); }
                    7 => { line.kill_word(); }
                    8 => { line.home(); }
                    _ => { line.end(); }
                }
                let starts: Vec<usize> = glyphs(line.bytes()).map(|(i, _)| i).collect();
                prop_assert!(line.cursor() <= line.bytes().len());
                prop_assert!(line.cursor() == line.bytes().len() || starts.contains(&line.cursor()));
            }
            // Right from the start reaches the end; Left from the end the start.
            line.home();
            let mut forward = vec![0];
            while line.right() { forward.push(line.cursor()); }
            prop_assert_eq!(line.cursor(), line.bytes().len());
            let mut backward = vec![line.cursor()];
            while line.left() { backward.push(line.cursor()); }
            backward.reverse();
            prop_assert_eq!(forward, backward);
        }
    }
}

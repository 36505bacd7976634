//! The bytes that draw and clear the *region*, the bottom of the screen
//! that changes: the unfinished line the peer is sending (if any), the
//! lines typed ahead and not sent yet (lockstep, or `chatd` with nobody
//! connected), then the prompt and the line under edit. Everything else on
//! the screen is written once and never touched again. Pure functions,
//! without a terminal: the tests check the bytes and a small model of a
//! terminal replays them.
//!
//! As in rlwrap and linenoise, only relative moves are used (`CUU`
//! `ESC [ n A`, `CR`, `CUF` `ESC [ n C`) and `ED` `ESC [ J` to clear: the
//! region is always the last thing on the screen, so clearing from its
//! first row to the end of the screen erases exactly it, whatever scrolled.
//! Rows of the region are broken by `\r\n`, never by the terminal's own
//! wrapping, so the layout is ours: a character that does not fit at the
//! end of a row starts the next one (a wide character never straddles),
//! as xterm and tmux place it.
//!
//! A region taller than the screen shows only the rows around the cursor
//! (a window), since the cursor cannot move above the screen's first row.

use super::glyph::{Glyph, glyphs};

/// SGR of the peer's text when colour is on: cyan (`ESC [ 36 m`).
pub const PEER_COLOUR: &[u8] = b"\x1b[36m";
/// SGR of the prompt when colour is on: bold (`ESC [ 1 m`).
pub const PROMPT_COLOUR: &[u8] = b"\x1b[1m";
/// SGR reset (`ESC [ m`).
pub const RESET: &[u8] = b"\x1b[m";

/// How many rows above the cursor [`Drawn`] remembers the widths of (more
/// than any screen is tall: the region is never taller than the screen).
pub const ROWS_MAX: usize = 256;

/// What the region shows.
#[derive(Debug, Clone, Copy, Default)]
pub struct View<'a> {
    /// The peer's unfinished line (text cleaned by [`crate::display`], no
    /// newline), at most one row: [`full_rows`] is printed for good first.
    pub partial: &'a [u8],
    /// Typed lines not sent yet, each ending with `\n`, shown after the
    /// prompt.
    pub pending: &'a [u8],
    /// The prompt (`chat> `); its line is shown only while `editing`.
    pub prompt: &'a [u8],
    /// The line under edit.
    pub line: &'a [u8],
    /// The cursor, a byte offset into `line`.
    pub cursor: usize,
    /// Whether the prompt and the line are shown.
    pub editing: bool,
    /// Whether to use colours (a terminal, and `NO_COLOR` not set).
    pub colour: bool,
}

/// Where the last draw left the cursor, enough to clear the region even
/// after the terminal was resized. `#[repr(C)]` and plain data: it lives
/// in the shared mapping.
#[derive(Debug, Clone, Copy)]
#[repr(C)]
pub struct Drawn {
    /// Whether a region is on the screen.
    pub shown: bool,
    /// The terminal's width when it was drawn, in columns.
    pub cols: u16,
    /// The cursor's row, counted from the region's first row.
    pub row: u16,
    /// The cursor's column.
    pub col: u16,
    /// How many rows of the region are below the cursor's.
    pub rows_below: u16,
    /// The widths of the rows above the cursor, in columns.
    pub widths: [u16; ROWS_MAX],
}

impl Default for Drawn {
    fn default() -> Drawn {
        Drawn {
            shown: false,
            cols: 0,
            row: 0,
            col: 0,
            rows_below: 0,
            widths: [0; ROWS_MAX],
        }
    }
}

impl Drawn {
    /// How many rows the cursor is below the region's first row on a
    /// terminal now `cols` wide. When the terminal got narrower, the rows
    /// above the cursor were rewrapped (xterm's successors, VTE, tmux,
    /// kitty reflow): each takes `ceil(width / cols)` rows, and the
    /// cursor's own row is split too.
    pub fn rows_up(&self, cols: usize) -> usize {
        let cols = cols.max(1);
        let row = usize::from(self.row);
        if cols >= usize::from(self.cols) {
            return row;
        }
        let above: usize = self.widths[..row.min(ROWS_MAX)]
            .iter()
            .map(|&w| usize::from(w).div_ceil(cols).max(1))
            .sum();
        above + usize::from(self.col) / cols
    }
}

/// Appends to `out` the bytes that erase the region drawn as `drawn`, on a
/// terminal now `cols` wide, leaving the cursor where its first row began.
pub fn clear(drawn: &mut Drawn, cols: usize, out: &mut Vec<u8>) {
    if !drawn.shown {
        return;
    }
    let up = drawn.rows_up(cols);
    if up > 0 {
        csi(out, up, b'A');
    }
    out.extend_from_slice(b"\r\x1b[J");
    drawn.shown = false;
}

/// Appends to `out` the bytes that move the cursor from where it is in the
/// region to a fresh line just below it (the region stays on the screen,
/// as a finished line stays in a shell).
pub fn leave(drawn: &mut Drawn, out: &mut Vec<u8>) {
    if !drawn.shown {
        return;
    }
    let rows_below = usize::from(drawn.rows_below);
    if rows_below > 0 {
        csi(out, rows_below, b'B');
    }
    out.extend_from_slice(b"\r\n");
    drawn.shown = false;
}

fn csi(out: &mut Vec<u8>, n: usize, command: u8) {
    out.extend_from_slice(b"\x1b[");
    out.extend_from_slice(n.to_string().as_bytes());
    out.push(command);
}

/// One row of the region being laid out.
#[derive(Debug, Default)]
struct Row {
    bytes: Vec<u8>,
    width: usize,
    /// Shown in the peer's colour.
    peer: bool,
}

/// The rows of the region, filled glyph by glyph.
struct Rows {
    cols: usize,
    rows: Vec<Row>,
}

impl Rows {
    fn new(cols: usize) -> Rows {
        Rows {
            cols: cols.max(1),
            rows: vec![Row::default()],
        }
    }

    fn last(&mut self) -> &mut Row {
        let n = self.rows.len();
        &mut self.rows[n - 1]
    }

    /// Puts something `width` columns wide; it starts a new row if it does
    /// not fit on this one.
    fn put(&mut self, shown: &[u8], width: usize) {
        let cols = self.cols;
        let peer = self.last().peer;
        if width > 0 && self.last().width + width > cols && self.last().width > 0 {
            self.rows.push(Row {
                peer,
                ..Row::default()
            });
        }
        let row = self.last();
        row.bytes.extend_from_slice(shown);
        row.width += width;
    }

    /// Where the next glyph would go: the row after a full one.
    fn pos(&self) -> (usize, usize) {
        let r = self.rows.len() - 1;
        let w = self.rows[r].width;
        if w >= self.cols { (r + 1, 0) } else { (r, w) }
    }

    fn break_row(&mut self) {
        self.rows.push(Row::default());
    }
}

/// Puts the glyphs of `text` (tabs to the next multiple of 8 columns).
fn put_text(rows: &mut Rows, text: &[u8], mut at_cursor: impl FnMut(&Rows, usize)) {
    let mut shown = Vec::with_capacity(8);
    for (offset, g) in glyphs(text) {
        at_cursor(rows, offset);
        shown.clear();
        let width = glyph_width(g, rows.pos().1, rows.cols);
        match g {
            Glyph::Control(b'\t') => shown.resize(width, b' '),
            g => g.show(&mut shown),
        }
        rows.put(&shown, width);
    }
    at_cursor(rows, text.len());
}

/// Lays out and draws `view` on a terminal of `cols` × `lines` cells,
/// appending the bytes to `out`, starting where the region's first row
/// begins (after [`clear`]), and returns where the cursor was left.
pub fn draw(view: &View<'_>, cols: usize, lines: usize, out: &mut Vec<u8>) -> Drawn {
    let mut rows = Rows::new(cols);
    let mut cursor = None;
    if !view.partial.is_empty() {
        rows.last().peer = view.colour;
        put_text(&mut rows, view.partial, |_, _| {});
        rows.break_row();
    }
    let prompt = |rows: &mut Rows| {
        if view.colour {
            rows.put(PROMPT_COLOUR, 0);
        }
        put_text(rows, view.prompt, |_, _| {});
        if view.colour {
            rows.put(RESET, 0);
        }
    };
    for line in view.pending.split_inclusive(|&b| b == b'\n') {
        prompt(&mut rows);
        put_text(
            &mut rows,
            line.strip_suffix(b"\n").unwrap_or(line),
            |_, _| {},
        );
        rows.break_row();
    }
    if view.editing {
        prompt(&mut rows);
        put_text(&mut rows, view.line, |rows, offset| {
            if offset == view.cursor {
                cursor = Some(rows.pos());
            }
        });
    } else if rows.rows.len() > 1 && rows.rows[rows.rows.len() - 1].bytes.is_empty() {
        rows.rows.pop();
    }
    let (crow, ccol) = cursor.unwrap_or_else(|| rows.pos());
    if crow == rows.rows.len() {
        rows.break_row();
    }
    // The window: all rows, or the screen's height of them ending with
    // the cursor's.
    let lines = lines.max(1);
    let start = if rows.rows.len() > lines && crow + 1 > lines {
        (crow + 1 - lines).min(rows.rows.len() - lines)
    } else {
        0
    };
    let end = rows.rows.len().min(start + lines);
    for (i, row) in rows.rows[start..end].iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b"\r\n");
        }
        if row.peer {
            out.extend_from_slice(PEER_COLOUR);
        }
        out.extend_from_slice(&row.bytes);
        if row.peer {
            out.extend_from_slice(RESET);
        }
    }
    let crow = crow - start;
    let last = end - start - 1;
    if last > crow {
        csi(out, last - crow, b'A');
    }
    out.push(b'\r');
    if ccol > 0 {
        csi(out, ccol, b'C');
    }
    let mut drawn = Drawn {
        shown: true,
        cols: u16::try_from(cols).unwrap_or(u16::MAX),
        row: u16::try_from(crow).unwrap_or(u16::MAX),
        col: u16::try_from(ccol).unwrap_or(u16::MAX),
        rows_below: 0,
        widths: [0; ROWS_MAX],
    };
    for (w, row) in drawn.widths.iter_mut().zip(&rows.rows[start..start + crow]) {
        *w = u16::try_from(row.width).unwrap_or(u16::MAX);
    }
    drawn.rows_below = u16::try_from(last - crow).unwrap_or(u16::MAX);
    drawn
}

/// The byte length of the start of `partial` (the peer's unfinished line,
/// starting in the first column) that fills whole rows of a terminal
/// `cols` wide: it is printed for good, and the region keeps the rest,
/// less than a row.
pub fn full_rows(partial: &[u8], cols: usize) -> usize {
    let cols = cols.max(1);
    let (mut col, mut last_start) = (0, 0);
    for (offset, g) in glyphs(partial) {
        let w = glyph_width(g, col, cols);
        if col + w > cols && col > 0 {
            (col, last_start) = (0, offset);
        }
        col += glyph_width(g, col, cols);
    }
    if col >= cols {
        partial.len()
    } else {
        last_start
    }
}

/// The columns `g` takes when it starts at column `col` of a row `cols`
/// wide: a tab goes to the next multiple of 8 (at least one column).
fn glyph_width(g: Glyph, col: usize, cols: usize) -> usize {
    match g {
        Glyph::Control(b'\t') => (8 - col % 8).min(cols.saturating_sub(col)).max(1),
        g => g.width(),
    }
}

/// Appends the peer's finished text `text` (cleaned, lines ending with
/// `\n`, or a part of a line) to `out`, each line in the peer's colour
/// when `colour` is set; a reset always ends a coloured line before its
/// newline, so the region below is never coloured.
pub fn peer_text(text: &[u8], colour: bool, out: &mut Vec<u8>) {
    if !colour {
        out.extend_from_slice(text);
        return;
    }
    for line in text.split_inclusive(|&b| b == b'\n') {
        let (body, newline) = match line.strip_suffix(b"\n") {
            Some(body) => (body, true),
            None => (line, false),
        };
        if !body.is_empty() {
            out.extend_from_slice(PEER_COLOUR);
            out.extend_from_slice(body);
            out.extend_from_slice(RESET);
        }
        if newline {
            out.push(b'\n');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small model of a terminal: a grid of cells, the cursor, and the
    /// handful of controls the region uses (CR, LF, CUU, CUB, CUF, ED,
    /// SGR ignored), with xterm's deferred wrap at the last column and
    /// scrolling at the bottom.
    struct Screen {
        cols: usize,
        lines: usize,
        cells: Vec<Vec<String>>,
        row: usize,
        col: usize,
        /// The deferred-wrap flag: the last column was just written.
        wrap: bool,
    }

    impl Screen {
        fn new(cols: usize, lines: usize) -> Screen {
            Screen {
                cols,
                lines,
                cells: vec![vec![String::new(); cols]; lines],
                row: 0,
                col: 0,
                wrap: false,
            }
        }

        fn newline(&mut self) {
            if self.row + 1 == self.lines {
                self.cells.remove(0);
                self.cells.push(vec![String::new(); self.cols]);
            } else {
                self.row += 1;
            }
        }

        fn feed(&mut self, bytes: &[u8]) {
            let text = std::str::from_utf8(bytes).unwrap();
            let mut chars = text.chars().peekable();
            while let Some(c) = chars.next() {
                match c {
                    '\r' => (self.col, self.wrap) = (0, false),
                    // The tty's ONLCR (kept on) makes it CR LF.
                    '\n' => {
                        (self.col, self.wrap) = (0, false);
                        self.newline();
                    }
                    '\x1b' => {
                        assert_eq!(chars.next(), Some('['));
                        let mut n = String::new();
                        let cmd = loop {
                            let c = chars.next().unwrap();
                            if c.is_ascii_digit() || c == ';' {
                                n.push(c);
                            } else {
                                break c;
                            }
                        };
                        let n: usize = n.parse().unwrap_or(1);
                        self.wrap = false;
                        match cmd {
                            'A' => self.row = self.row.saturating_sub(n),
                            'B' => self.row = (self.row + n).min(self.lines - 1),
                            'C' => self.col = (self.col + n).min(self.cols - 1),
                            'D' => self.col = self.col.saturating_sub(n),
                            'J' => {
                                for c in self.col..self.cols {
                                    self.cells[self.row][c].clear();
                                }
                                for r in self.row + 1..self.lines {
                                    self.cells[r] = vec![String::new(); self.cols];
                                }
                            }
                            'm' => {}
                            other => panic!("unexpected CSI {other}"),
                        }
                    }
                    c => {
                        let w = unicode_width::UnicodeWidthChar::width(c).unwrap_or(0);
                        if w == 0 {
                            let (r, c0) = (self.row, self.col.saturating_sub(1));
                            self.cells[r][c0].push(c);
                            continue;
                        }
                        if self.wrap || self.col + w > self.cols {
                            self.col = 0;
                            self.wrap = false;
                            self.newline();
                        }
                        self.cells[self.row][self.col] = c.to_string();
                        if w == 2 {
                            self.cells[self.row][self.col + 1] = "\0".into();
                        }
                        if self.col + w == self.cols {
                            self.col = self.cols - 1;
                            self.wrap = true;
                        } else {
                            self.col += w;
                        }
                    }
                }
            }
        }

        fn text(&self) -> Vec<String> {
            self.cells
                .iter()
                .map(|r| {
                    let s: String = r
                        .iter()
                        .map(|c| {
                            if c.is_empty() {
                                " "
                            } else if c == "\0" {
                                ""
                            } else {
                                c
                            }
                        })
                        .collect();
                    s.trim_end().to_owned()
                })
                .collect()
        }

        /// The cursor as a (row, column) pair; a deferred wrap counts as
        /// being past the last column.
        fn cursor(&self) -> (usize, usize) {
            (self.row, if self.wrap { self.cols } else { self.col })
        }
    }

    fn view<'a>(line: &'a str, cursor: usize) -> View<'a> {
        View {
            prompt: b"chat> ",
            line: line.as_bytes(),
            cursor,
            editing: true,
            ..View::default()
        }
    }

    /// Draws `v` on `screen` after clearing the previous draw.
    fn redraw(screen: &mut Screen, drawn: &mut Drawn, v: &View<'_>) {
        let mut out = Vec::new();
        clear(drawn, screen.cols, &mut out);
        *drawn = draw(v, screen.cols, screen.lines, &mut out);
        screen.feed(&out);
    }

    /// Prints `text` above the region, as the receiving side does.
    fn above(screen: &mut Screen, drawn: &mut Drawn, text: &str, v: &View<'_>) {
        let mut out = Vec::new();
        clear(drawn, screen.cols, &mut out);
        peer_text(text.as_bytes(), v.colour, &mut out);
        *drawn = draw(v, screen.cols, screen.lines, &mut out);
        screen.feed(&out);
    }

    #[test]
    fn the_bytes_of_a_simple_draw_and_clear() {
        let mut out = Vec::new();
        let mut drawn = draw(&view("hello", 2), 80, 24, &mut out);
        assert_eq!(out, b"chat> hello\r\x1b[8C");
        assert_eq!((drawn.row, drawn.col), (0, 8));
        out.clear();
        clear(&mut drawn, 80, &mut out);
        assert_eq!(out, b"\r\x1b[J");
        out.clear();
        clear(&mut drawn, 80, &mut out);
        assert!(out.is_empty(), "cleared twice");
    }

    #[test]
    fn the_half_typed_line_survives_lines_arriving() {
        let mut screen = Screen::new(40, 10);
        let mut drawn = Drawn::default();
        let v = view("oui, je suis en train de tap", 28);
        redraw(&mut screen, &mut drawn, &v);
        for i in 0..100 {
            above(&mut screen, &mut drawn, &format!("line {i}\n"), &v);
        }
        let text = screen.text();
        assert_eq!(text[8], "line 99");
        assert_eq!(text[9], "chat> oui, je suis en train de tap");
        assert_eq!(screen.cursor(), (9, 34));
    }

    #[test]
    fn a_long_line_wraps_and_the_cursor_is_put_back() {
        let mut screen = Screen::new(10, 6);
        let mut drawn = Drawn::default();
        let line = "abcdefghijklmnopqrstuvwxyz";
        let v = view(line, 5);
        redraw(&mut screen, &mut drawn, &v);
        assert_eq!(
            &screen.text()[..3],
            ["chat> abcd", "efghijklmn", "opqrstuvwx"]
        );
        assert_eq!(screen.cursor(), (1, 1), "the cursor before f");
        above(&mut screen, &mut drawn, "hi\n", &v);
        assert_eq!(
            &screen.text()[..5],
            ["hi", "chat> abcd", "efghijklmn", "opqrstuvwx", "yz"]
        );
        assert_eq!(screen.cursor(), (2, 1));
    }

    #[test]
    fn a_line_that_fills_its_last_row_puts_the_cursor_on_the_next() {
        let mut screen = Screen::new(10, 6);
        let mut drawn = Drawn::default();
        let v = view("abcd", 4);
        redraw(&mut screen, &mut drawn, &v);
        assert_eq!(screen.cursor(), (1, 0));
        above(&mut screen, &mut drawn, "x\n", &v);
        assert_eq!(&screen.text()[..3], ["x", "chat> abcd", ""]);
        assert_eq!(screen.cursor(), (2, 0));
    }

    #[test]
    fn a_wide_character_does_not_straddle_two_rows() {
        let mut screen = Screen::new(10, 6);
        let mut drawn = Drawn::default();
        let v = view("abc日本", "abc日".len());
        redraw(&mut screen, &mut drawn, &v);
        assert_eq!(&screen.text()[..2], ["chat> abc", "日本"]);
        assert_eq!(screen.cursor(), (1, 2));
        let v = view("e\u{301}t\u{e9}", 3);
        redraw(&mut screen, &mut drawn, &v);
        assert_eq!(&screen.text()[..2], ["chat> e\u{301}t\u{e9}", ""]);
        assert_eq!(screen.cursor(), (0, 7));
    }

    #[test]
    fn the_partial_peer_line_is_shown_above_the_prompt_then_completed() {
        let mut screen = Screen::new(30, 6);
        let mut drawn = Drawn::default();
        let mut v = view("typing", 6);
        v.partial = b"no newline yet";
        redraw(&mut screen, &mut drawn, &v);
        assert_eq!(&screen.text()[..2], ["no newline yet", "chat> typing"]);
        v.partial = b"";
        above(&mut screen, &mut drawn, "no newline yet, now one\n", &v);
        assert_eq!(
            &screen.text()[..3],
            ["no newline yet, now one", "chat> typing", ""]
        );
        assert_eq!(screen.cursor(), (1, 12));
    }

    #[test]
    fn full_rows_of_a_partial_line_are_printed_for_good() {
        assert_eq!(full_rows(b"short", 10), 0);
        assert_eq!(full_rows(b"0123456789", 10), 10);
        assert_eq!(full_rows(b"0123456789ab", 10), 10);
        assert_eq!(full_rows("012345678日x".as_bytes(), 10), 9);
        // What stays is less than a row, and the screen shows it all.
        let mut screen = Screen::new(10, 6);
        let mut drawn = Drawn::default();
        let text = "0123456789abcdefghijKL";
        let cut = full_rows(text.as_bytes(), 10);
        let mut v = view("x", 1);
        v.partial = &text.as_bytes()[cut..];
        above(&mut screen, &mut drawn, &text[..cut], &v);
        assert_eq!(
            &screen.text()[..4],
            ["0123456789", "abcdefghij", "KL", "chat> x"]
        );
    }

    #[test]
    fn a_region_taller_than_the_screen_shows_the_rows_of_the_cursor() {
        let mut screen = Screen::new(10, 3);
        let mut drawn = Drawn::default();
        let line: String = ('a'..='z').chain('A'..='Z').collect();
        let v = view(&line, 0);
        redraw(&mut screen, &mut drawn, &v);
        assert_eq!(screen.text(), ["chat> abcd", "efghijklmn", "opqrstuvwx"]);
        assert_eq!(screen.cursor(), (0, 6));
        let v = view(&line, line.len());
        redraw(&mut screen, &mut drawn, &v);
        assert_eq!(screen.text(), ["yzABCDEFGH", "IJKLMNOPQR", "STUVWXYZ"]);
        assert_eq!(screen.cursor(), (2, 8));
    }

    #[test]
    fn a_narrower_terminal_is_cleared_as_it_reflowed() {
        let mut drawn = draw(&view(&"x".repeat(30), 30), 20, 24, &mut Vec::new());
        // chat> + 30 x: rows of 20 and 16; the cursor at (1, 16).
        assert_eq!((drawn.row, drawn.col), (1, 16));
        assert_eq!(drawn.rows_up(20), 1);
        assert_eq!(drawn.rows_up(30), 1);
        // At 10 columns the first row is two, the cursor's row splits.
        assert_eq!(drawn.rows_up(10), 3);
        let mut out = Vec::new();
        clear(&mut drawn, 10, &mut out);
        assert_eq!(out, b"\x1b[3A\r\x1b[J");
    }

    #[test]
    fn pending_lines_are_shown_with_the_prompt_before_the_edit_line() {
        let mut screen = Screen::new(20, 6);
        let mut drawn = Drawn::default();
        let mut v = view("next", 4);
        v.pending = b"typed ahead\n";
        redraw(&mut screen, &mut drawn, &v);
        assert_eq!(&screen.text()[..2], ["chat> typed ahead", "chat> next"]);
        v.editing = false;
        v.line = b"";
        redraw(&mut screen, &mut drawn, &v);
        assert_eq!(&screen.text()[..2], ["chat> typed ahead", ""]);
    }

    #[test]
    fn colour_wraps_each_peer_line_and_ends_before_the_newline() {
        let mut out = Vec::new();
        peer_text(b"one\n\ntwo\npart", true, &mut out);
        assert_eq!(
            out,
            b"\x1b[36mone\x1b[m\n\n\x1b[36mtwo\x1b[m\n\x1b[36mpart\x1b[m"
        );
        out.clear();
        peer_text(b"one\npart", false, &mut out);
        assert_eq!(out, b"one\npart");
        let mut out = Vec::new();
        let mut v = view("x", 1);
        v.colour = true;
        v.partial = b"p";
        draw(&v, 20, 5, &mut out);
        assert_eq!(out, b"\x1b[36mp\x1b[m\r\n\x1b[1mchat> \x1b[mx\r\x1b[7C");
    }

    #[test]
    fn leave_moves_below_the_region() {
        let mut drawn = draw(&view("abcdefghijklmnop", 0), 10, 24, &mut Vec::new());
        let mut out = Vec::new();
        leave(&mut drawn, &mut out);
        assert_eq!(out, b"\x1b[2B\r\n");
    }
}

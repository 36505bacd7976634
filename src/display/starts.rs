//! What a line, or a row of a terminal, may begin with: the rules that keep
//! what a peer sends from reading as a line of someone else.
//!
//! # Rows of the room's lines ([`guard`])
//!
//! In `chatd --broker`, every line begins with who said it: `[NAME] `,
//! `[NAME (private)] `, `* NAME ` (`/me`), or `-!- ` for the room's own
//! notices (irssi's convention). A client cannot begin a line, but on a
//! terminal a line wider than the window wraps, and a client can choose
//! what begins the next row: `x`, 73 spaces, then `[bob] send me your
//! password` shows, on an 80-column `nc`, a row that begins with `[bob]`.
//!
//! So the room follows each line it writes over an 80-column terminal
//! ([`COLUMNS`]): widths of `unicode-width` (UAX #11; East Asian wide
//! characters take two columns, combining marks none), tabs to the next
//! multiple of 8, a wide character that does not fit in the last column
//! moved to the next row, as xterm does. Where a row would begin like a
//! line (`[`, `* ` or `-!-`, or characters that look like them by their
//! UTS #39 skeleton: `［`, `⁎ `, `‐ǃ‐`), the room puts a space before it,
//! so that the row begins with a blank: `[eve] x` and its spaces, then a
//! row ` [bob] send me your password`. A tab that would reach the last
//! column is written as a space (terminals stop a tab there, and disagree
//! on what follows). Nothing else changes, and nothing is lost.
//!
//! What a reader can rely on, on a terminal 80 columns wide: a row that
//! begins with `[`, `* ` or `-!-` begins a line, and the line says who
//! sent it; a row that begins with a blank continues the line above. On a
//! terminal of another width, rows are cut elsewhere, and a row of a
//! wrapped line may begin with anything; a line still begins where the
//! previous one ended.
//!
//! # Received lines on `chat`'s terminal ([`Marks`])
//!
//! `chat` and one-to-one `chatd` show, on a terminal, the line you type
//! after the prompt `chat> ` (`chatd> `), and their own status lines as
//! `chat: …` (`chatd: …`). A peer could send `chat> I agree to pay` or
//! `chat: 127.0.0.1:1 closed the connection`, which, without colour
//! (`NO_COLOR`), would look like your typed line or a real status line. A
//! received line that begins like one of those (ignoring case and
//! look-alike characters: `сhat>` with a Cyrillic с) is shown after the
//! mark [`MARK`], `| `. On a pipe, nothing is marked: the bytes are exact.

use unicode_normalization::UnicodeNormalization;
use unicode_width::UnicodeWidthChar;

use super::looks;

/// The width of the terminal the room's lines are laid out for: 80
/// columns, the width of a VT100 and of most terminal windows as opened.
pub const COLUMNS: usize = 80;

/// Tab stops every this many columns (the terminals' default).
const TAB: usize = 8;

/// Whether a row of a terminal that begins with `rest` reads as the start
/// of a room's line: `[`, `* ` or `-!-`, or look-alikes of them.
pub fn begins_like_a_line(rest: &str) -> bool {
    // The skeleton maps no other ASCII character to `[`, `*` or `-`.
    match rest.as_bytes().first() {
        None => return false,
        Some(b'[') => return true,
        Some(b'*' | b'-') => {}
        Some(b) if b.is_ascii() => return false,
        Some(_) => {}
    }
    let head: String = rest.chars().take(4).collect::<String>().nfkc().collect();
    let shape = looks::skeleton(&head);
    shape.starts_with('[') || shape.starts_with("* ") || shape.starts_with("-!-")
}

/// A change [`guard`] makes to a line's text, at a byte offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edit {
    /// A space before the character there: it would begin a row and
    /// looks like the start of a line.
    Space,
    /// The tab there is written as a space: it would reach the last
    /// column.
    TabAsSpace,
}

/// The changes that keep every row but the first of a line from beginning
/// like a line: for a line made of a prefix `prefix_width` columns wide
/// followed by `text`, laid out on a terminal of [`COLUMNS`] columns (see
/// the [module documentation](self)), the byte offsets in `text` and what
/// to do there, in order. Empty when the line needs nothing (always when
/// it fits in one row). At most two spaces for every row of the line.
pub fn edits(prefix_width: usize, text: &str) -> Vec<(usize, Edit)> {
    let mut edits = Vec::new();
    // The column of the next character; COLUMNS after the last column was
    // written (the next printable character wraps).
    let mut x = prefix_width;
    // Places a character `w` columns wide at `x`.
    let place = |x: usize, w: usize| if x + w > COLUMNS { w } else { x + w };
    for (i, c) in text.char_indices() {
        if c == '\t' {
            let stop = (x / TAB + 1) * TAB;
            if stop >= COLUMNS {
                edits.push((i, Edit::TabAsSpace));
                x = place(x, 1);
            } else {
                x = stop;
            }
            continue;
        }
        let w = c.width().unwrap_or(0);
        if w == 0 {
            continue;
        }
        // A wide character in the last column needs two spaces to move
        // off the row start; a narrow one, one.
        while x + w > COLUMNS && begins_like_a_line(&text[i..]) {
            edits.push((i, Edit::Space));
            x = place(x, 1);
        }
        x = place(x, w);
    }
    edits
}

/// The display width of `prefix`, in columns.
fn width(prefix: &[u8]) -> usize {
    String::from_utf8_lossy(prefix)
        .chars()
        .map(|c| c.width().unwrap_or(0))
        .sum()
}

/// Makes the line that begins at `out[start..]` (a prefix of `prefix_len`
/// bytes, then text, without its newline) safe to wrap on an 80-column
/// terminal: applies the [`edits`] of its text, so that no row but its
/// first begins like a line. The caller adds the newline. Costs one pass
/// over a line wider than a row, and nothing otherwise; adds at most two
/// bytes for every 80 columns of text (10 bytes at the least: tabs).
pub fn guard(out: &mut Vec<u8>, start: usize, prefix_len: usize) {
    let line = &out[start..];
    // A character is never wider than its UTF-8 bytes, except a tab.
    if line.len() <= COLUMNS && memchr::memchr(b'\t', line).is_none() {
        return;
    }
    let text = &line[prefix_len..];
    // The room guards what it cleaned, which is UTF-8; were it not, the
    // text up to the first invalid byte is followed.
    let valid = match std::str::from_utf8(text) {
        Ok(text) => text,
        Err(e) => std::str::from_utf8(&text[..e.valid_up_to()]).unwrap_or(""),
    };
    let edits = edits(width(&line[..prefix_len]), valid);
    if edits.is_empty() {
        return;
    }
    let text = text.to_vec();
    out.truncate(start + prefix_len);
    let mut from = 0;
    for (at, edit) in edits {
        out.extend_from_slice(&text[from..at]);
        out.push(b' ');
        from = match edit {
            Edit::Space => at,
            Edit::TabAsSpace => at + 1,
        };
    }
    out.extend_from_slice(&text[from..]);
}

/// The mark shown before a received line that begins like the prompt or
/// a status line (see the [module documentation](self)).
pub const MARK: &[u8] = b"| ";

/// The starts of what `chat` and `chatd` show of their own on a terminal:
/// the prompts and the status lines.
const OURS: [&str; 4] = ["chat>", "chatd>", "chat:", "chatd:"];

/// Text reduced to how it looks: NFKC, skeleton, caseless.
fn shape(text: &str) -> String {
    let compat: String = text.nfkc().collect();
    looks::caseless(&looks::skeleton(&compat))
}

/// Whether a received line that begins with `head` (all of the line, or
/// as much of it as has arrived when `complete` is false) reads as a
/// prompt or status line of ours. A line that has not arrived far enough
/// to tell is taken as one when it could become one.
fn begins_like_ours(head: &[u8], complete: bool) -> bool {
    let head = &head[..head.len().min(4 * 8)];
    let ascii = head.iter().take(8).all(u8::is_ascii);
    if ascii {
        // The skeleton maps no other ASCII character to those of `OURS`:
        // comparing ASCII letters without case is comparing shapes.
        let head = &head[..head.len().min(8)];
        return OURS.iter().any(|ours| {
            let ours = ours.as_bytes();
            match head.len().cmp(&ours.len()) {
                std::cmp::Ordering::Less => {
                    !complete && ours[..head.len()].eq_ignore_ascii_case(head)
                }
                _ => head[..ours.len()].eq_ignore_ascii_case(ours),
            }
        });
    }
    let head = String::from_utf8_lossy(head);
    let head: String = head.chars().take(8).collect();
    let seen = shape(&head);
    OURS.iter().any(|ours| {
        let ours = shape(ours);
        seen.starts_with(&ours) || (!complete && ours.starts_with(&seen))
    })
}

/// A streaming filter for what a peer sends to a terminal: puts [`MARK`]
/// before each line that begins like the prompt or a status line. Holds
/// nothing between calls: a line whose first bytes arrive alone is marked
/// when they could begin such a line.
#[derive(Debug, Clone)]
pub struct Marks {
    /// The next byte begins a line.
    at_start: bool,
}

impl Default for Marks {
    fn default() -> Self {
        Marks { at_start: true }
    }
}

impl Marks {
    /// A filter at the start of a line.
    pub fn new() -> Marks {
        Marks::default()
    }

    /// Appends `input` to `out`, with [`MARK`] before the lines that need
    /// it.
    pub fn push(&mut self, input: &[u8], out: &mut Vec<u8>) {
        let mut rest = input;
        while !rest.is_empty() {
            let end = memchr::memchr(b'\n', rest).map(|i| i + 1);
            let line = &rest[..end.unwrap_or(rest.len())];
            if self.at_start && begins_like_ours(line, end.is_some()) {
                out.extend_from_slice(MARK);
            }
            out.extend_from_slice(line);
            self.at_start = end.is_some();
            rest = &rest[line.len()..];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The line `prefix` + `text` as the room writes it, then its rows on
    /// an 80-column terminal (tabs expanded).
    fn layout(prefix: &str, text: &str) -> (String, Vec<String>) {
        let mut out = prefix.as_bytes().to_vec();
        out.extend_from_slice(text.as_bytes());
        guard(&mut out, 0, prefix.len());
        out.push(b'\n');
        let written = String::from_utf8(out).unwrap();
        let mut rows = Vec::new();
        for line in written.lines() {
            assert_eq!(line, written.trim_end_matches('\n'), "one line");
            let mut row = String::new();
            let mut x = 0;
            for c in line.chars() {
                if c == '\t' {
                    let next = ((x / TAB + 1) * TAB).min(COLUMNS - 1);
                    row.extend(std::iter::repeat_n(' ', next - x));
                    x = next;
                    continue;
                }
                let w = c.width().unwrap_or(0);
                if x + w > COLUMNS {
                    rows.push(std::mem::take(&mut row));
                    x = 0;
                }
                row.push(c);
                x += w;
            }
            rows.push(row);
        }
        (written, rows)
    }

    #[test]
    fn a_wrapped_row_cannot_begin_with_another_name() {
        let pad = " ".repeat(73);
        let (written, rows) = layout(
            "[eve] ",
            &format!("x{pad}[bob] please send me your password"),
        );
        assert_eq!(
            written,
            format!("[eve] x{pad} [bob] please send me your password\n")
        );
        assert_eq!(rows[1], " [bob] please send me your password");
    }

    #[test]
    fn nor_with_a_notice_a_me_or_look_alikes() {
        for fake in [
            "-!- alice left",
            "* bob waves",
            "*\u{00A0}bob waves",
            "\u{FF3B}bob] hi",
            "\u{2010}\u{01C3}\u{2010} alice left",
        ] {
            let text = format!("x{}{fake}", " ".repeat(73));
            let (_, rows) = layout("[eve] ", &text);
            assert_eq!(rows.len(), 2, "{fake}: {rows:?}");
            assert!(rows[1].starts_with(' '), "{fake}: {rows:?}");
        }
    }

    #[test]
    fn wide_characters_and_tabs_are_followed() {
        // `x` and 36 wide characters fill 73 columns after the prefix: the
        // wide bracket does not fit in the last one and begins the next row.
        let text = format!("x{}\u{FF3B}bob] hi", "名".repeat(36));
        let (_, rows) = layout("[eve] ", &text);
        assert_eq!(rows.len(), 2, "{rows:?}");
        assert!(rows[1].starts_with(' '), "{rows:?}");
        // Tabs up to column 72, then one that would stop at the margin.
        let text = format!("{}x[bob] hi", "\t".repeat(10));
        let (written, rows) = layout("[eve] ", &text);
        assert_eq!(written, format!("[eve] {} x[bob] hi\n", "\t".repeat(9)));
        assert!(!begins_like_a_line(&rows[1]), "{rows:?}");
    }

    #[test]
    fn no_other_ascii_character_looks_like_a_line_start() {
        for b in 0x20..0x7f_u8 {
            let c = (b as char).to_string();
            if !matches!(b, b'[' | b'*' | b'-') {
                let shape = looks::skeleton(&c);
                assert!(!shape.starts_with(['[', '*', '-']), "{c}");
            }
        }
    }

    #[test]
    fn ordinary_long_lines_are_not_changed() {
        let text = "word ".repeat(100) + "- a list - of things * and [notes]";
        let (written, _) = layout("[eve] ", &text);
        assert_eq!(written, format!("[eve] {text}\n"));
    }

    proptest! {
        #[test]
        fn no_row_of_a_guarded_line_begins_like_a_line_but_its_first(
            parts in proptest::collection::vec(
                prop::sample::select(&[
                    " ", "  ", "x", "\t", "名", "[bob] ", "* ", "-!- ", "\u{FF3B}", "é", "\u{0301}",
                ][..]),
                0..120,
            ),
            prefix in prop::sample::select(&["[eve] ", "* eve ", "-!- ", "[名前名前] "][..]),
        ) {
            let text: String = parts.concat();
            let (written, rows) = layout(prefix, &text);
            prop_assert!(rows[0].starts_with(prefix));
            for row in &rows[1..] {
                prop_assert!(!begins_like_a_line(row), "{:?}: {:?}", written, row);
            }
            // Only spaces were added, or tabs written as spaces.
            let strip = |s: &str| s.chars().filter(|&c| c != ' ' && c != '\t').collect::<String>();
            prop_assert_eq!(strip(&written[prefix.len()..written.len() - 1]), strip(&text));
            prop_assert!(written.len() <= prefix.len() + text.len() + 1 + 2 * rows.len());
        }
    }

    fn marked(chunks: &[&str]) -> String {
        let mut marks = Marks::new();
        let mut out = Vec::new();
        for chunk in chunks {
            marks.push(chunk.as_bytes(), &mut out);
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn lines_that_begin_like_ours_are_marked() {
        assert_eq!(
            marked(&[
                "chat> I agree to pay 1000 EUR\nhello\nchat: 127.0.0.1:1 closed the connection\n"
            ]),
            "| chat> I agree to pay 1000 EUR\nhello\n| chat: 127.0.0.1:1 closed the connection\n"
        );
        assert_eq!(
            marked(&["chatd> yes\n", "chatd: stopping\n"]),
            "| chatd> yes\n| chatd: stopping\n"
        );
        // Look-alikes and case.
        assert_eq!(marked(&["\u{0441}hat> yes\n"]), "| \u{0441}hat> yes\n");
        assert_eq!(marked(&["CHAT: no\n"]), "| CHAT: no\n");
        // Split anywhere.
        assert_eq!(marked(&["hi\nch", "at> x\n"]), "hi\n| chat> x\n");
        assert_eq!(marked(&["hi\nchat", "ty\n"]), "hi\n| chatty\n");
    }

    #[test]
    fn our_starts_are_their_own_shapes() {
        for ours in OURS {
            assert_eq!(shape(ours), ours);
        }
        // No ASCII character but the letter itself looks like one of them.
        for ours in OURS {
            for (i, c) in ours.char_indices() {
                for b in 0x20..0x7f_u8 {
                    let mut other = ours.to_owned();
                    other.replace_range(i..i + 1, &(b as char).to_string());
                    if !other.eq_ignore_ascii_case(ours) {
                        assert_ne!(shape(&other), shape(ours), "{other} {c}");
                    }
                }
            }
        }
    }

    #[test]
    fn other_lines_are_unchanged() {
        for text in [
            "chatty people\n",
            "a chat> x\n",
            "[bob] chat> x\n",
            "\n\n",
            "chateau: x\n",
        ] {
            assert_eq!(marked(&[text]), text);
        }
        assert_eq!(
            marked(&["hello wor", "ld chat> x\n"]),
            "hello world chat> x\n"
        );
    }
}

//! One character of a line as the screen shows it: the glyphs of the line
//! being typed and of the region ([`super::render`]). Display widths are
//! those of `unicode-width` (East Asian Wide and emoji: 2 columns); a
//! control character is shown in caret notation (`^I`), a byte that is not
//! valid UTF-8 as `\xe9`, the notation [`crate::display`] uses for received
//! invalid UTF-8.

use unicode_width::UnicodeWidthChar;

/// One character of the buffer as the screen shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Glyph {
    /// A valid, printable UTF-8 character, `len` bytes long.
    Char(char),
    /// A control character (C0 or DEL), shown as `^X` (2 columns).
    Control(u8),
    /// A byte that is not part of valid UTF-8, shown as `\xNN` (4 columns).
    Byte(u8),
}

impl Glyph {
    /// The columns it takes on screen.
    pub fn width(self) -> usize {
        match self {
            Glyph::Char(c) => c.width().unwrap_or(0),
            Glyph::Control(_) => 2,
            Glyph::Byte(_) => 4,
        }
    }

    /// Appends what the screen shows for it to `out`.
    pub fn show(self, out: &mut Vec<u8>) {
        match self {
            Glyph::Char(c) => {
                let mut tmp = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut tmp).as_bytes());
            }
            Glyph::Control(b) => out.extend_from_slice(&[b'^', b ^ 0x40]),
            Glyph::Byte(b) => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(&[
                    b'\\',
                    b'x',
                    HEX[(b >> 4) as usize],
                    HEX[(b & 15) as usize],
                ]);
            }
        }
    }
}

/// The glyph that starts at `bytes[0]` and its length in bytes. `bytes`
/// must not be empty.
pub fn glyph(bytes: &[u8]) -> (Glyph, usize) {
    let b = bytes[0];
    if b < 0x20 || b == 0x7f {
        return (Glyph::Control(b), 1);
    }
    if b < 0x80 {
        return (Glyph::Char(b as char), 1);
    }
    let len = match b {
        0xc2..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf4 => 4,
        _ => return (Glyph::Byte(b), 1),
    };
    match bytes.get(..len).map(std::str::from_utf8) {
        Some(Ok(s)) => {
            let c = s.chars().next().unwrap_or('\u{fffd}');
            // C1 controls are controls even in UTF-8: shown as bytes.
            if ('\u{80}'..='\u{9f}').contains(&c) {
                return (Glyph::Byte(b), 1);
            }
            (Glyph::Char(c), len)
        }
        _ => (Glyph::Byte(b), 1),
    }
}

/// Iterates over the glyphs of `bytes` with their byte offsets.
pub fn glyphs(bytes: &[u8]) -> impl Iterator<Item = (usize, Glyph)> + '_ {
    let mut at = 0;
    std::iter::from_fn(move || {
        if at >= bytes.len() {
            return None;
        }
        let (g, len) = glyph(&bytes[at..]);
        let start = at;
        at += len;
        Some((start, g))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The display width of `bytes` in columns.
    fn width(bytes: &[u8]) -> usize {
        glyphs(bytes).map(|(_, g)| g.width()).sum()
    }

    #[test]
    fn widths_of_ascii_cjk_emoji_combining_controls_and_bad_bytes() {
        assert_eq!(width(b"abc"), 3);
        assert_eq!(width("日本".as_bytes()), 4);
        assert_eq!(width("🙂".as_bytes()), 2);
        assert_eq!(width("e\u{301}".as_bytes()), 1);
        assert_eq!(width(b"a\tb"), 4);
        assert_eq!(width(b"\xe9t\xe9"), 9);
        // A C1 control in UTF-8 is shown byte by byte.
        assert_eq!(width("\u{9b}".as_bytes()), 8);
    }

    #[test]
    fn glyphs_show_controls_and_bad_bytes_visibly() {
        let mut out = Vec::new();
        for (_, g) in glyphs(b"a\t\x7f\xe9") {
            g.show(&mut out);
        }
        assert_eq!(out, b"a^I^?\\xe9");
    }
}

//! How text looks to a person: which characters show as nothing, and when
//! two strings look the same. The room's names ([`crate::broker::name`]),
//! the rows of its lines and the marks of `chat`'s terminal
//! ([`super::starts`]) compare text this way, as people see it, not as
//! bytes.
//!
//! - **Visible characters** ([`is_visible`]): a character that a terminal
//!   draws as something. White space, controls (Cc), format characters
//!   (Cf), default-ignorable code points (Unicode's
//!   `Default_Ignorable_Code_Point`, which includes the variation
//!   selectors and the Hangul fillers), unassigned and private-use code
//!   points, the Braille blank and zero-width characters other than
//!   combining marks are not.
//! - **Caseless form** ([`caseless`]): Unicode's compatibility caseless
//!   match (The Unicode Standard, §3.13, D146): `josé` written with one
//!   code point or as `e` + U+0301, `ｂｏｂ` (fullwidth), `BOB` and `bob` have
//!   one caseless form.
//! - **Look-alike keys** ([`look_keys`]): the confusable skeleton of Unicode
//!   Technical Standard #39 (§4), computed by the `unicode-security` crate,
//!   then put in caseless form: `bob` and `bоb` (Cyrillic о), `chatd` and
//!   `chаtd` (Cyrillic а), `Ian` and `lan`, `B0B` and `BOB` share a key.
//!
//! Case folding is approximated by lower case of upper case of lower case
//! (Rust's `char` mappings, Unicode's full mappings): it is Unicode's full
//! case folding for every letter but a handful (Cherokee, which folds to
//! upper case, and the Turkic dotless i), none of which makes two names
//! that look different compare equal.

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::{is_combining_mark, is_public_assigned};
use unicode_width::UnicodeWidthChar;

/// The format characters (general category Cf) that are not
/// default-ignorable, and so not dropped by the UTS #39 skeleton: from
/// Unicode's `DerivedGeneralCategory.txt` (16.0), less
/// `Default_Ignorable_Code_Point`. The other format characters (U+00AD,
/// U+200B–U+200F, U+2060–U+206F, U+FEFF, the tags U+E0001–U+E007F…) are
/// default-ignorable.
const FORMAT_NOT_IGNORABLE: &[(char, char)] = &[
    ('\u{0600}', '\u{0605}'),   // Arabic number sign … number mark above
    ('\u{06DD}', '\u{06DD}'),   // Arabic end of ayah
    ('\u{070F}', '\u{070F}'),   // Syriac abbreviation mark
    ('\u{0890}', '\u{0891}'),   // Arabic pound and piastre mark above
    ('\u{08E2}', '\u{08E2}'),   // Arabic disputed end of ayah
    ('\u{110BD}', '\u{110BD}'), // Kaithi number sign
    ('\u{110CD}', '\u{110CD}'), // Kaithi number sign above
    ('\u{13430}', '\u{1343F}'), // Egyptian hieroglyph format controls
    ('\u{FFF9}', '\u{FFFB}'),   // interlinear annotation anchor … terminator
];

/// Characters that are assigned and not format characters, but that
/// terminals draw as an empty cell.
const BLANK: &[char] = &[
    '\u{2800}', // Braille pattern blank
];

/// Whether `c` is a default-ignorable code point (Unicode's
/// `Default_Ignorable_Code_Point`: soft hyphen, zero-width spaces and
/// joiners, bidirectional controls, variation selectors, Hangul fillers,
/// tags…). The UTS #39 skeleton drops exactly these, so a character whose
/// skeleton is empty is one (`unicode-security` keeps its table private).
pub fn is_default_ignorable(c: char) -> bool {
    let mut buf = [0; 4];
    unicode_security::skeleton(c.encode_utf8(&mut buf))
        .next()
        .is_none()
}

/// Whether `c` is a format character (general category Cf).
pub fn is_format(c: char) -> bool {
    FORMAT_NOT_IGNORABLE
        .iter()
        .any(|&(first, last)| (first..=last).contains(&c))
        || (is_default_ignorable(c) && is_format_ignorable(c))
}

/// The default-ignorable code points that are format characters (Cf), as
/// opposed to those that are marks, letters or unassigned (U+034F, the
/// variation selectors, the Hangul fillers, U+FFF0–U+FFF8, …).
fn is_format_ignorable(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{061C}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0001}'
            | '\u{E0020}'..='\u{E007F}'
    )
}

/// Whether a terminal draws `c` as something a person can see and tell
/// from nothing: see the [module documentation](self). A combining mark
/// is visible (it changes the character before it); a name, say, must
/// still not begin with one.
pub fn is_visible(c: char) -> bool {
    if c.is_whitespace() || c.is_control() || !is_public_assigned(c) {
        return false;
    }
    if is_default_ignorable(c) || is_format(c) || BLANK.contains(&c) {
        return false;
    }
    match c.width() {
        Some(0) => is_combining_mark(c),
        Some(_) => true,
        None => false,
    }
}

/// Whether `c` is a combining mark (general category M): it draws on the
/// character before it.
pub fn is_mark(c: char) -> bool {
    is_combining_mark(c)
}

/// Full case folding, approximated (see the [module
/// documentation](self)).
fn fold(c: char) -> impl Iterator<Item = char> {
    c.to_lowercase()
        .flat_map(char::to_uppercase)
        .flat_map(char::to_lowercase)
}

/// The compatibility caseless form of `text` (Unicode §3.13, D146:
/// NFKD(fold(NFKD(fold(NFD(text))))), composed again as NFKC): two
/// strings are the same text, ignoring case and the ways Unicode has of
/// writing one character, when their forms are equal.
pub fn caseless(text: &str) -> String {
    let once: String = text.nfd().flat_map(fold).collect();
    once.nfkd().flat_map(fold).nfkc().collect()
}

/// The UTS #39 skeleton of `text` (its confusable prototype, NFD), as a
/// string.
pub fn skeleton(text: &str) -> String {
    unicode_security::skeleton(text).collect()
}

/// The keys under which `text` looks like other text: the caseless form
/// of its skeleton, taken as written and taken after case folding (`Ian`
/// looks like `lan` as written; `Ivan` is `ivan` once folded, which looks
/// like `іvan`, Cyrillic і). Two strings that share a key look alike.
/// One or two keys, without repeats.
pub fn look_keys(text: &str) -> Vec<String> {
    let compat: String = text.nfkc().collect();
    let mut keys = vec![caseless(&skeleton(&compat))];
    let folded = caseless(&skeleton(&caseless(text)));
    if folded != keys[0] {
        keys.push(folded);
    }
    keys
}

/// Whether `a` and `b` look alike to a person: the same caseless form, or
/// a look-alike key in common.
pub fn alike(a: &str, b: &str) -> bool {
    if caseless(a) == caseless(b) {
        return true;
    }
    let keys = look_keys(b);
    look_keys(a).iter().any(|k| keys.contains(k))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Every format character (Cf) of Unicode 16.0, from
    /// `DerivedGeneralCategory.txt`.
    const FORMAT: &[(u32, u32)] = &[
        (0x00AD, 0x00AD),
        (0x0600, 0x0605),
        (0x061C, 0x061C),
        (0x06DD, 0x06DD),
        (0x070F, 0x070F),
        (0x0890, 0x0891),
        (0x08E2, 0x08E2),
        (0x180E, 0x180E),
        (0x200B, 0x200F),
        (0x202A, 0x202E),
        (0x2060, 0x2064),
        (0x2066, 0x206F),
        (0xFEFF, 0xFEFF),
        (0xFFF9, 0xFFFB),
        (0x110BD, 0x110BD),
        (0x110CD, 0x110CD),
        (0x13430, 0x1343F),
        (0x1BCA0, 0x1BCA3),
        (0x1D173, 0x1D17A),
        (0xE0001, 0xE0001),
        (0xE0020, 0xE007F),
    ];

    /// Every default-ignorable code point, from
    /// `DerivedCoreProperties.txt` (16.0).
    const IGNORABLE: &[(u32, u32)] = &[
        (0x00AD, 0x00AD),
        (0x034F, 0x034F),
        (0x061C, 0x061C),
        (0x115F, 0x1160),
        (0x17B4, 0x17B5),
        (0x180B, 0x180F),
        (0x200B, 0x200F),
        (0x202A, 0x202E),
        (0x2060, 0x206F),
        (0x3164, 0x3164),
        (0xFE00, 0xFE0F),
        (0xFEFF, 0xFEFF),
        (0xFFA0, 0xFFA0),
        (0xFFF0, 0xFFF8),
        (0x1BCA0, 0x1BCA3),
        (0x1D173, 0x1D17A),
        (0xE0000, 0xE0FFF),
    ];

    fn chars(ranges: &[(u32, u32)]) -> impl Iterator<Item = char> + '_ {
        ranges
            .iter()
            .flat_map(|&(a, b)| a..=b)
            .filter_map(char::from_u32)
    }

    #[test]
    fn no_format_character_is_visible() {
        for c in chars(FORMAT) {
            assert!(is_format(c), "U+{:04X} is Cf", u32::from(c));
            assert!(!is_visible(c), "U+{:04X} is Cf", u32::from(c));
        }
    }

    #[test]
    fn no_default_ignorable_is_visible() {
        for c in chars(IGNORABLE) {
            assert!(is_default_ignorable(c), "U+{:04X}", u32::from(c));
            assert!(!is_visible(c), "U+{:04X}", u32::from(c));
        }
        assert!(!is_default_ignorable('a'));
        assert!(!is_default_ignorable('\u{0301}'));
    }

    #[test]
    fn the_invisible_characters_found_accepted_are_not_visible() {
        // Format characters, default-ignorables, variation selectors,
        // Hangul fillers, unassigned and private-use code points, blanks.
        for c in [
            '\u{E0001}',
            '\u{E0020}',
            '\u{E007F}',
            '\u{206A}',
            '\u{206F}',
            '\u{FFF9}',
            '\u{FFFB}',
            '\u{1D173}',
            '\u{1BCA0}',
            '\u{13430}',
            '\u{0600}',
            '\u{2065}',
            '\u{034F}',
            '\u{FE00}',
            '\u{FE0F}',
            '\u{E0100}',
            '\u{180B}',
            '\u{17B4}',
            '\u{17B5}',
            '\u{115F}',
            '\u{1160}',
            '\u{3164}',
            '\u{FFA0}',
            '\u{0378}',
            '\u{E000}',
            '\u{10FFFD}',
            '\u{FDD0}',
            '\u{2800}',
            '\u{3000}',
            '\u{00A0}',
        ] {
            assert!(!is_visible(c), "U+{:04X}", u32::from(c));
        }
    }

    #[test]
    fn letters_digits_symbols_and_marks_are_visible() {
        for c in [
            'a', 'É', 'ï', '名', 'ж', '7', '*', '-', '_', '😀', '\u{0301}',
        ] {
            assert!(is_visible(c), "{c}");
        }
    }

    #[test]
    fn caseless_forms() {
        assert_eq!(caseless("Bob"), caseless("bOB"));
        assert_eq!(caseless("jose\u{301}"), caseless("josé"));
        assert_eq!(caseless("ｂｏｂ"), "bob");
        assert_eq!(caseless("STRASSE"), caseless("straße"));
        assert_eq!(caseless("ΣΟΦΟΣ"), caseless("σοφος"));
        assert_ne!(caseless("bob"), caseless("bоb"));
    }

    #[test]
    fn look_alikes() {
        for (a, b) in [
            ("bob", "bоb"),
            ("chatd", "chаtd"),
            ("Ian", "lan"),
            ("B0B", "BOB"),
            ("b0b", "bob"),
            ("Ivan", "іvan"),
            ("josé", "jose\u{301}"),
            ("alice", "ALICE"),
            ("chatd", "ｃｈａｔｄ"),
        ] {
            assert!(alike(a, b), "{a} {b}");
            assert!(alike(b, a), "{b} {a}");
        }
        for (a, b) in [("bob", "rob"), ("alice", "alicia"), ("名前", "名")] {
            assert!(!alike(a, b), "{a} {b}");
        }
    }

    /// Letters with look-alikes in other scripts, and those look-alikes.
    const SWAPS: &[(char, char)] = &[
        ('a', 'а'),
        ('o', 'о'),
        ('e', 'е'),
        ('p', 'р'),
        ('c', 'с'),
        ('x', 'х'),
        ('y', 'у'),
        ('i', 'і'),
        ('l', 'I'),
        ('O', '0'),
        ('A', 'Α'),
        ('B', 'В'),
        ('H', 'Н'),
    ];

    /// Names made of letters of a few scripts, digits, marks.
    fn name() -> impl Strategy<Value = String> {
        proptest::string::string_regex("[a-zA-Z0-9_.éèÉïçßσΣΔλжЖ名前\u{0301}\u{0308}]{1,12}")
            .unwrap()
    }

    proptest! {
        #[test]
        fn a_name_and_its_variants_look_alike(
            text in name(),
            swaps in proptest::collection::vec(any::<prop::sample::Index>(), 0..4),
        ) {
            let nfd: String = text.nfd().collect();
            let nfc: String = text.nfc().collect();
            let nfkd: String = text.nfkd().collect();
            prop_assert!(alike(&text, &nfd));
            prop_assert!(alike(&text, &nfc));
            prop_assert!(alike(&text, &nfkd));
            prop_assert!(alike(&text, &text.to_uppercase()));
            prop_assert!(alike(&text, &text.to_lowercase()));
            prop_assert_eq!(caseless(&text.to_uppercase()), caseless(&text));
            let mut swapped: Vec<char> = text.chars().collect();
            for i in swaps {
                let at = i.index(swapped.len());
                if let Some(&(_, to)) = SWAPS.iter().find(|(from, _)| *from == swapped[at]) {
                    swapped[at] = to;
                }
            }
            let swapped: String = swapped.into_iter().collect();
            prop_assert!(alike(&text, &swapped), "{} {}", text, swapped);
        }

        #[test]
        fn forms_are_stable(text in name()) {
            let form = caseless(&text);
            prop_assert_eq!(caseless(&form), form.clone());
        }

        #[test]
        fn a_visible_character_is_no_format_nor_ignorable_one(c in any::<char>()) {
            if is_visible(c) {
                let code = u32::from(c);
                let listed = |ranges: &[(u32, u32)]| {
                    ranges.iter().any(|&(a, b)| (a..=b).contains(&code))
                };
                prop_assert!(!listed(FORMAT) && !listed(IGNORABLE), "U+{:04X}", code);
                prop_assert!(!c.is_whitespace() && !c.is_control());
                prop_assert!(c.width().is_some());
            }
        }
    }
}

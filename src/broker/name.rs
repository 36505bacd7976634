//! Names in the room: the name a client has when it arrives (its address)
//! and the rules for the names it may take with `/nick`.
//!
//! # Address names
//!
//! | peer                                  | name                  | a line from it               |
//! |---------------------------------------|-----------------------|------------------------------|
//! | IPv4                                  | `192.168.1.7:51234`   | `[192.168.1.7:51234] hello`  |
//! | IPv4 on an IPv6 socket (`-b ::`)      | `192.168.1.7:51234`   | `[192.168.1.7:51234] hello`  |
//! | IPv6                                  | `2001:db8::7.51234`   | `[2001:db8::7.51234] hello`  |
//! | IPv6 link-local, interface index 2    | `fe80::1%2.51234`     | `[fe80::1%2.51234] hello`    |
//!
//! For IPv6 the port follows the address after a dot, as BSD `netstat` and
//! `tcpdump` print it: the usual `[2001:db8::7]:51234` would put brackets
//! inside the brackets of the prefix (`[[2001:db8::7]:51234] hello`), and
//! the address without brackets followed by `:51234` could not be told from
//! an address that ends in `:51234`. An IPv6 address (in RFC 5952 text)
//! never holds a dot except in a trailing dotted IPv4 part, so the port is
//! what follows the last dot. IPv4 clients of a server bound to `::` arrive
//! as IPv4-mapped addresses (`::ffff:192.168.1.7`) and are shown as the
//! IPv4 address they are.
//!
//! # Nicknames
//!
//! A name taken with `/nick` (the rules of IRC's RFC 2812 §2.3.1, made for
//! UTF-8 and for this room) has:
//! - 1 to [`MAX_NAME`] characters (Unicode scalar values, so `Éloïse` is
//!   6), in valid UTF-8;
//! - only visible characters ([`crate::display::looks::is_visible`]): no
//!   white space, no control character, no format character (Cf: the
//!   bidirectional controls, zero-width spaces and joiners, the tags…), no
//!   default-ignorable code point (variation selectors, Hangul fillers…),
//!   no unassigned or private-use code point; and it does not begin with
//!   a combining mark (which would draw on the `[` before it). What one
//!   sees is the name: `[bob\u{E0001}]` would look exactly like `[bob]`;
//! - no `[` or `]` (the prefix `[NAME]` stays unambiguous) and no `:`, so
//!   that a name can never pass for an address name, nor any character
//!   that looks like one of them (`［`, `∶`: their UTS #39 skeleton is
//!   one);
//! - not `chatd`, nor any name that looks like it ([`SERVER`]): the
//!   server's own lines are `[chatd] …`.
//!
//! Names are unique in the room as people see them ([`Keys`]): two
//! names are the same when their compatibility caseless forms are equal
//! (`Alice` and `alice`, `josé` and `jose` + U+0301, fullwidth `ｂｏｂ`
//! and `bob`), or when they share a look-alike key, their confusable
//! skeleton of Unicode Technical Standard #39 (`bob` and `bоb` with a
//! Cyrillic о): see [`crate::display::looks`].
//!
//! A name never begins a line: every line a client causes begins with
//! `[` (`[NAME] text`, `[NAME (private)] text`) or `* ` (`/me`), and the
//! room's notices begin with `-!- `, which no client can write at the
//! start of a line. So a name may begin with `-` or hold `!` or `*`.

use std::fmt;
use std::net::SocketAddr;

use unicode_normalization::UnicodeNormalization;

use crate::display::looks;

/// The longest name `/nick` accepts, in characters.
pub const MAX_NAME: usize = 32;

/// The server's own name: its standard input is relayed as `[chatd] …`,
/// and `/msg chatd TEXT` writes to its standard output.
pub const SERVER: &str = "chatd";

/// The name of a client at `addr` until it takes another with `/nick`;
/// see the [module documentation](self) for the forms.
pub fn address_name(addr: SocketAddr) -> String {
    match crate::net::canonical(addr) {
        SocketAddr::V4(v4) => format!("{}:{}", v4.ip(), v4.port()),
        SocketAddr::V6(v6) if v6.scope_id() != 0 => {
            format!("{}%{}.{}", v6.ip(), v6.scope_id(), v6.port())
        }
        SocketAddr::V6(v6) => format!("{}.{}", v6.ip(), v6.port()),
    }
}

/// Why `/nick` refused a name. Displayed as the reason given to the
/// client, after `/nick: `.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No name after `/nick`.
    Empty,
    /// More than [`MAX_NAME`] characters.
    TooLong,
    /// Not valid UTF-8.
    NotUtf8,
    /// White space, a control or invisible character, a bracket or a
    /// colon (or a look-alike of one), or a combining mark first.
    BadCharacter,
    /// The server's name, [`SERVER`], or a name that looks like it.
    Reserved,
    /// Another client has it, or a name that looks like it.
    Taken,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Refusal::Empty => "usage: /nick NAME",
            Refusal::TooLong => "a name has at most 32 characters",
            Refusal::NotUtf8 => "a name must be valid UTF-8",
            Refusal::BadCharacter => {
                "a name has only visible characters, no spaces, brackets or colons"
            }
            Refusal::Reserved => "chatd is the server's name",
            Refusal::Taken => "that name, or one that looks like it, is taken",
        })
    }
}

/// Checks `name` against the rules of the [module documentation](self),
/// except uniqueness (the room's to check, with [`Keys`]). Returns it as
/// text.
///
/// Errors: the first rule it breaks, as a [`Refusal`].
pub fn check(name: &[u8]) -> Result<&str, Refusal> {
    if name.is_empty() {
        return Err(Refusal::Empty);
    }
    let name = std::str::from_utf8(name).map_err(|_| Refusal::NotUtf8)?;
    let composed: String = name.nfc().collect();
    if composed
        .chars()
        .any(|c| !looks::is_visible(c) || forbidden(c))
        || composed.chars().next().is_some_and(looks::is_mark)
    {
        return Err(Refusal::BadCharacter);
    }
    let compat: String = name.nfkc().collect();
    if looks::skeleton(&compat).chars().any(forbidden) {
        return Err(Refusal::BadCharacter);
    }
    if name.chars().count() > MAX_NAME {
        return Err(Refusal::TooLong);
    }
    if looks::alike(name, SERVER) {
        return Err(Refusal::Reserved);
    }
    Ok(name)
}

/// The key under which a name is found by `/msg NAME`: its compatibility
/// caseless form ([`looks::caseless`]).
pub fn key(name: &str) -> String {
    looks::caseless(name)
}

/// Every key under which a name is unique in the room: its caseless form
/// ([`key`]) and its look-alike keys ([`looks::look_keys`]). Two names are
/// the same name when they share a key of the same kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    /// The caseless form.
    pub caseless: String,
    /// The look-alike keys (one or two).
    pub looks: Vec<String>,
}

impl Keys {
    /// The keys of `name`.
    pub fn of(name: &str) -> Keys {
        Keys {
            caseless: key(name),
            looks: looks::look_keys(name),
        }
    }

    /// Every key of `name` in one list, each tagged with its kind (`=`
    /// before the caseless form, `~` before a look-alike key), so that a
    /// key of one kind never meets a key of the other: two names are the
    /// same name when their lists share an element. The names bound to
    /// certificates are compared this way
    /// ([`crate::tls::names::Keys`]).
    pub fn list(name: &str) -> Vec<String> {
        let keys = Keys::of(name);
        let mut list = Vec::with_capacity(1 + keys.looks.len());
        list.push(format!("={}", keys.caseless));
        list.extend(keys.looks.iter().map(|k| format!("~{k}")));
        list
    }
}

/// Characters a name may not contain, besides the invisible ones.
fn forbidden(c: char) -> bool {
    c.is_whitespace() || c.is_control() || matches!(c, '[' | ']' | ':')
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::{Ipv6Addr, SocketAddrV6};

    #[test]
    fn address_names() {
        let v4: SocketAddr = "192.168.1.7:51234".parse().unwrap();
        assert_eq!(address_name(v4), "192.168.1.7:51234");
        let v6: SocketAddr = "[2001:db8::7]:51234".parse().unwrap();
        assert_eq!(address_name(v6), "2001:db8::7.51234");
        let mapped: SocketAddr = "[::ffff:192.168.1.7]:51234".parse().unwrap();
        assert_eq!(address_name(mapped), "192.168.1.7:51234");
        let local = SocketAddr::V6(SocketAddrV6::new("fe80::1".parse().unwrap(), 80, 0, 2));
        assert_eq!(address_name(local), "fe80::1%2.80");
        let lo = SocketAddr::new(Ipv6Addr::LOCALHOST.into(), 9);
        assert_eq!(address_name(lo), "::1.9");
    }

    #[test]
    fn good_names() {
        for name in ["alice", "Éloïse", "bob_2", "x", "名前", "a.b-c", "/x", "*"] {
            assert_eq!(check(name.as_bytes()), Ok(name), "{name}");
        }
        let longest = "é".repeat(MAX_NAME);
        assert!(check(longest.as_bytes()).is_ok());
    }

    #[test]
    fn refused_names() {
        let cases: &[(&[u8], Refusal)] = &[
            (b"", Refusal::Empty),
            (b"a b", Refusal::BadCharacter),
            (b"[a]", Refusal::BadCharacter),
            (b"1.2.3.4:5", Refusal::BadCharacter),
            (b"a\x1b[2J", Refusal::BadCharacter),
            (b"a\tb", Refusal::BadCharacter),
            ("a\u{202E}b".as_bytes(), Refusal::BadCharacter),
            ("a\u{200B}b".as_bytes(), Refusal::BadCharacter),
            ("a\u{0085}".as_bytes(), Refusal::BadCharacter),
            (b"\xff", Refusal::NotUtf8),
            (b"ChatD", Refusal::Reserved),
        ];
        for (name, why) in cases {
            assert_eq!(check(name), Err(*why), "{name:?}");
        }
        let long = "a".repeat(MAX_NAME + 1);
        assert_eq!(check(long.as_bytes()), Err(Refusal::TooLong));
    }

    /// `bob` followed by `c`, as bytes.
    fn bob(c: char) -> Vec<u8> {
        format!("bob{c}").into_bytes()
    }

    fn refused(chars: impl IntoIterator<Item = char>) {
        for c in chars {
            assert_eq!(
                check(&bob(c)),
                Err(Refusal::BadCharacter),
                "U+{:04X}",
                u32::from(c)
            );
        }
    }

    #[test]
    fn format_characters_are_refused() {
        refused([
            '\u{E0001}',
            '\u{E0020}',
            '\u{E007F}',
            '\u{1D173}',
            '\u{1BCA0}',
        ]);
        refused('\u{206A}'..='\u{206F}');
        refused('\u{FFF9}'..='\u{FFFB}');
        refused(['\u{13430}', '\u{0600}', '\u{00AD}', '\u{FEFF}', '\u{2061}']);
    }

    #[test]
    fn default_ignorables_are_refused() {
        refused(['\u{2065}', '\u{034F}', '\u{17B4}', '\u{17B5}', '\u{FFF0}']);
    }

    #[test]
    fn variation_selectors_are_refused() {
        refused('\u{FE00}'..='\u{FE0F}');
        refused([
            '\u{E0100}',
            '\u{E01EF}',
            '\u{180B}',
            '\u{180C}',
            '\u{180D}',
            '\u{180F}',
        ]);
    }

    #[test]
    fn hangul_fillers_are_refused() {
        refused(['\u{115F}', '\u{1160}', '\u{3164}', '\u{FFA0}']);
        assert_eq!(check("\u{3164}".as_bytes()), Err(Refusal::BadCharacter));
    }

    #[test]
    fn unassigned_and_private_code_points_are_refused() {
        refused([
            '\u{0378}',
            '\u{E000}',
            '\u{F8FF}',
            '\u{FDD0}',
            '\u{10FFFF}',
            '\u{2800}',
        ]);
    }

    #[test]
    fn look_alikes_of_brackets_and_colons_are_refused() {
        for name in [
            "\u{FF3B}x\u{FF3D}",
            "1.2.3.4\u{2236}5",
            "a\u{A789}b",
            "\u{0301}bob",
        ] {
            assert_eq!(check(name.as_bytes()), Err(Refusal::BadCharacter), "{name}");
        }
    }

    #[test]
    fn names_that_look_like_the_server_s_are_reserved() {
        for name in [
            "chatd",
            "CHATD",
            "ch\u{0430}td",
            "\u{FF43}\u{FF48}\u{FF41}\u{FF54}\u{FF44}",
        ] {
            assert_eq!(check(name.as_bytes()), Err(Refusal::Reserved), "{name}");
        }
    }

    #[test]
    fn keys_are_shared_by_names_that_look_alike() {
        let same = |a: &str, b: &str| {
            let (a, b) = (Keys::of(a), Keys::of(b));
            a.caseless == b.caseless || a.looks.iter().any(|k| b.looks.contains(k))
        };
        assert!(same("Alice", "aLICE"));
        assert!(same("bob", "b\u{043E}b"));
        assert!(same("jose\u{301}", "jos\u{E9}"));
        assert!(!same("bob", "rob"));
        assert_eq!(key("É"), key("é"));
    }

    proptest! {
        #[test]
        fn a_name_with_an_invisible_character_is_refused(
            before in "[a-zé]{0,5}",
            after in "[a-zé]{0,5}",
            invisible in prop::sample::select(INVISIBLE),
        ) {
            let name = format!("{before}{invisible}{after}");
            prop_assert_eq!(check(name.as_bytes()), Err(Refusal::BadCharacter));
        }

        #[test]
        fn an_accepted_name_holds_only_visible_characters(name in "\\PC{1,8}") {
            if let Ok(name) = check(name.as_bytes()) {
                prop_assert!(name.chars().all(crate::display::looks::is_visible));
            }
        }
    }

    /// One character of each class of invisible ones.
    const INVISIBLE: &[char] = &[
        '\u{E0001}',
        '\u{E0020}',
        '\u{206A}',
        '\u{FFF9}',
        '\u{1D173}',
        '\u{1BCA0}',
        '\u{13430}',
        '\u{0600}',
        '\u{2065}',
        '\u{034F}',
        '\u{FE0F}',
        '\u{E0100}',
        '\u{180B}',
        '\u{17B4}',
        '\u{115F}',
        '\u{1160}',
        '\u{3164}',
        '\u{FFA0}',
        '\u{0378}',
        '\u{E000}',
        '\u{200B}',
        '\u{200D}',
        '\u{00AD}',
    ];
}

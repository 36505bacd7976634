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
//! - no white space, no control character (C0, DEL, C1), no invisible
//!   formatting character (the bidirectional controls of
//!   [`crate::display::BIDI_CONTROLS`], zero-width spaces and joiners, the
//!   soft hyphen, the byte-order mark), so that what one sees is the name;
//! - no `[` or `]` (the prefix `[NAME]` stays unambiguous) and no `:`, so
//!   that a name can never pass for an address name;
//! - not `chatd`, in any case: the server's own lines are `[chatd] …`.
//!
//! Names are unique in the room, ignoring ASCII case (`Alice` and `alice`
//! are the same name), as on IRC.

use std::fmt;
use std::net::SocketAddr;

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
    /// White space, a control or invisible character, a bracket or a colon.
    BadCharacter,
    /// The server's name, [`SERVER`].
    Reserved,
    /// Another client has it (ignoring ASCII case).
    Taken,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Refusal::Empty => "usage: /nick NAME",
            Refusal::TooLong => "a name has at most 32 characters",
            Refusal::NotUtf8 => "a name must be valid UTF-8",
            Refusal::BadCharacter => {
                "a name has no spaces, brackets, colons, control or invisible characters"
            }
            Refusal::Reserved => "chatd is the server's name",
            Refusal::Taken => "that name is taken",
        })
    }
}

/// Checks `name` against the rules of the [module documentation](self),
/// except uniqueness (the room's to check). Returns it as text.
///
/// Errors: the first rule it breaks, as a [`Refusal`].
pub fn check(name: &[u8]) -> Result<&str, Refusal> {
    if name.is_empty() {
        return Err(Refusal::Empty);
    }
    let name = std::str::from_utf8(name).map_err(|_| Refusal::NotUtf8)?;
    if name.chars().any(forbidden) {
        return Err(Refusal::BadCharacter);
    }
    if name.chars().count() > MAX_NAME {
        return Err(Refusal::TooLong);
    }
    if name.eq_ignore_ascii_case(SERVER) {
        return Err(Refusal::Reserved);
    }
    Ok(name)
}

/// The key under which a name is unique: ASCII letters folded to lower
/// case.
pub fn key(name: &str) -> String {
    name.to_ascii_lowercase()
}

/// Characters a name may not contain.
fn forbidden(c: char) -> bool {
    c.is_whitespace()
        || c.is_control()
        || matches!(c, '[' | ']' | ':')
        || crate::display::BIDI_CONTROLS.contains(&c)
        || matches!(
            c,
            '\u{00AD}'                  // soft hyphen
            | '\u{061C}'                // Arabic letter mark
            | '\u{180E}'                // Mongolian vowel separator
            | '\u{200B}'..='\u{200F}'   // zero-width space, joiners, LRM, RLM
            | '\u{2060}'..='\u{2064}'   // word joiner, invisible operators
            | '\u{FEFF}' // byte-order mark, zero-width no-break space
        )
}

#[cfg(test)]
mod tests {
    use super::*;
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

    #[test]
    fn keys_ignore_ascii_case() {
        assert_eq!(key("Alice"), key("aLICE"));
        assert_ne!(key("É"), key("é"));
    }
}

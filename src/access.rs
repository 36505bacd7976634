//! Who may connect: `chatd --allow`/`--deny` (and `--allowfile`/
//! `--denyfile`), with the semantics of `ncat --allow/--deny` (issue 10):
//! when any allow entry is given, a peer must match one; a peer that
//! matches a deny entry is refused, whatever the allow list says (ncat's
//! `allow_access()` in `ncat_core.c` checks the allow set, then the deny
//! set). A refused peer is closed at once, before a byte is sent, in every
//! mode; the caller logs it with its address.
//!
//! Entries are `ADDR` or `ADDR/PREFIX`, IPv4 or IPv6 (`192.168.1.0/24`,
//! `10.0.0.7`, `fd00::/8`, `::1`). An IPv4 peer seen through an IPv6
//! socket (`::ffff:192.0.2.7`, when `chatd -b ::` accepts IPv4 clients) is
//! matched as the IPv4 address it is. A file holds one entry a line; blank
//! lines and text after `#` are ignored.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;

/// A block of addresses: `ADDR/PREFIX`, or one address (`PREFIX` = 32 or
/// 128). Host bits beyond the prefix are ignored (`192.168.1.7/24` is
/// `192.168.1.0/24`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Net {
    addr: IpAddr,
    prefix: u8,
}

impl Net {
    /// Whether `ip` lies in this block. IPv4 and IPv6 blocks never match
    /// each other's addresses, except that an IPv4-mapped IPv6 address is
    /// taken as its IPv4 address.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                same_prefix(&net.octets(), &ip.octets(), self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                same_prefix(&net.octets(), &ip.octets(), self.prefix)
            }
            _ => false,
        }
    }
}

/// Whether the first `prefix` bits of `a` and `b` are equal.
fn same_prefix(a: &[u8], b: &[u8], prefix: u8) -> bool {
    let bits = usize::from(prefix);
    let (whole, rest) = (bits / 8, bits % 8);
    if a[..whole] != b[..whole] {
        return false;
    }
    if rest == 0 {
        return true;
    }
    let mask = 0xffu8 << (8 - rest);
    a[whole] & mask == b[whole] & mask
}

impl FromStr for Net {
    type Err = String;

    /// Parses `ADDR` or `ADDR/PREFIX`; an IPv6 `ADDR` may be in brackets
    /// (`[fd00::]/8`). Errors: a one-line reason, which the caller prefixes
    /// with the text (`the prefix of an IPv4 address is 0 to 32`).
    fn from_str(text: &str) -> Result<Net, String> {
        let (addr_text, prefix_text) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let not_an_address = || "not an IPv4 or IPv6 address, or ADDR/PREFIX".to_owned();
        let addr: IpAddr = match addr_text.strip_prefix('[') {
            Some(inner) => inner
                .strip_suffix(']')
                .and_then(|a| a.parse::<std::net::Ipv6Addr>().ok())
                .map(IpAddr::V6)
                .ok_or_else(not_an_address)?,
            None => addr_text.parse().map_err(|_| not_an_address())?,
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix_text {
            None => max,
            Some(p) => match p.parse::<u8>() {
                Ok(n) if n <= max => n,
                _ => {
                    let family = if addr.is_ipv4() { "IPv4" } else { "IPv6" };
                    return Err(format!("the prefix of an {family} address is 0 to {max}"));
                }
            },
        };
        // `::ffff:a.b.c.d/P` with P >= 96 is the IPv4 block `a.b.c.d/(P-96)`,
        // since peers are matched as IPv4 (see `crate::net::canonical`).
        match addr.to_canonical() {
            IpAddr::V4(v4) if addr.is_ipv6() && prefix >= 96 => Ok(Net {
                addr: IpAddr::V4(v4),
                prefix: prefix - 96,
            }),
            _ => Ok(Net { addr, prefix }),
        }
    }
}

impl fmt::Display for Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// The allow and deny lists of a server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Access {
    /// `None` when no `--allow`/`--allowfile` was given: everyone may.
    allow: Option<Vec<Net>>,
    deny: Vec<Net>,
}

/// Why [`Access::check`] refused a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// An allow list exists and the peer is not on it.
    NotAllowed,
    /// The peer matches a deny entry.
    Denied,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Refusal::NotAllowed => "not in --allow",
            Refusal::Denied => "in --deny",
        })
    }
}

impl Access {
    /// The lists from the command line (`allow`, `deny`) and the files
    /// (`allowfile`, `denyfile`, read when the command line was parsed). An
    /// allow list exists when either `--allow` or `--allowfile` was given,
    /// even if the file is empty (then nobody may connect, as with ncat).
    pub fn new(
        allow: &[Net],
        deny: &[Net],
        allowfile: Option<&NetFile>,
        denyfile: Option<&NetFile>,
    ) -> Access {
        let mut access = Access {
            allow: (!allow.is_empty() || allowfile.is_some()).then(|| allow.to_vec()),
            deny: deny.to_vec(),
        };
        if let Some(file) = allowfile {
            let list = access.allow.get_or_insert_with(Vec::new);
            list.extend_from_slice(&file.nets);
        }
        if let Some(file) = denyfile {
            access.deny.extend_from_slice(&file.nets);
        }
        access
    }

    /// Whether `ip` may connect; `Err` says why not.
    pub fn check(&self, ip: IpAddr) -> Result<(), Refusal> {
        if let Some(allow) = &self.allow
            && !allow.iter().any(|net| net.contains(ip))
        {
            return Err(Refusal::NotAllowed);
        }
        if self.deny.iter().any(|net| net.contains(ip)) {
            return Err(Refusal::Denied);
        }
        Ok(())
    }

    /// Checks an accepted `peer` against the lists, for every mode (the
    /// 1-to-1 server, the room, the services): a refused peer is logged
    /// with its address on standard error (a status line,
    /// `refused ADDR: in --deny`), and its connection, dropped by the
    /// caller, is closed before a byte is sent. Returns whether it may
    /// stay.
    pub fn admit(&self, peer: SocketAddr) -> bool {
        match self.check(peer.ip()) {
            Ok(()) => true,
            Err(why) => {
                crate::status!("refused {peer}: {why}");
                false
            }
        }
    }
}

/// An `--allowfile`/`--denyfile`: its path and its entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetFile {
    /// The file, as given.
    pub path: PathBuf,
    /// Its entries, in order.
    pub nets: Vec<Net>,
}

impl NetFile {
    /// Reads and parses the file at `path` (see [`parse_list`]).
    ///
    /// Errors: a one-line reason, which the caller prefixes with the
    /// option and the path: the file cannot be read (`No such file or
    /// directory`), or an entry is not an address (`line 3: 'x': not an
    /// IPv4 or IPv6 address, or ADDR/PREFIX`).
    pub fn read(path: PathBuf) -> Result<NetFile, String> {
        let text = std::fs::read_to_string(&path).map_err(|e| match e.raw_os_error() {
            Some(code) => nix::errno::Errno::from_raw(code).desc().to_owned(),
            None => e.to_string(),
        })?;
        let nets = parse_list(&text).map_err(|(line, why)| format!("line {line}: {why}"))?;
        Ok(NetFile { path, nets })
    }
}

/// Parses the text of an allow or deny file: one entry a line; blank lines
/// and text after `#` ignored. Errors name the line (1-based) and the
/// entry.
pub fn parse_list(text: &str) -> Result<Vec<Net>, (usize, String)> {
    let mut nets = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let entry = line.split('#').next().unwrap_or("").trim();
        if entry.is_empty() {
            continue;
        }
        nets.push(
            entry
                .parse()
                .map_err(|why| (i + 1, format!("'{entry}': {why}")))?,
        );
    }
    Ok(nets)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn net(text: &str) -> Net {
        text.parse().unwrap()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn blocks_match_their_addresses_only() {
        assert!(net("192.168.1.0/24").contains(ip("192.168.1.200")));
        assert!(!net("192.168.1.0/24").contains(ip("192.168.2.1")));
        assert!(
            net("192.168.1.7/24").contains(ip("192.168.1.1")),
            "host bits ignored"
        );
        assert!(net("10.0.0.7").contains(ip("10.0.0.7")));
        assert!(!net("10.0.0.7").contains(ip("10.0.0.8")));
        assert!(net("0.0.0.0/0").contains(ip("203.0.113.9")));
        assert!(!net("0.0.0.0/0").contains(ip("::1")), "families apart");
        assert!(net("172.16.0.0/12").contains(ip("172.31.255.255")));
        assert!(!net("172.16.0.0/12").contains(ip("172.32.0.0")));
        assert!(net("fd00::/8").contains(ip("fd12:3456::1")));
        assert!(!net("fd00::/8").contains(ip("fe80::1")));
        assert!(net("::1").contains(ip("::1")));
    }

    #[test]
    fn ipv4_mapped_peers_match_ipv4_entries() {
        assert!(net("127.0.0.0/8").contains(ip("::ffff:127.0.0.1")));
        assert!(net("::ffff:10.0.0.0/104").contains(ip("10.1.2.3")));
    }

    #[test]
    fn bad_entries_are_refused_with_a_reason() {
        for (text, why) in [
            ("10.0.0.0/33", "the prefix of an IPv4 address is 0 to 32"),
            ("::/129", "the prefix of an IPv6 address is 0 to 128"),
            ("10.0.0.0/x", "0 to 32"),
            ("example.com", "not an IPv4 or IPv6 address"),
            ("10.0.0", "not an IPv4 or IPv6 address"),
            ("[10.0.0.1]", "not an IPv4 or IPv6 address"),
            ("", "not an IPv4 or IPv6 address"),
        ] {
            let err = text.parse::<Net>().unwrap_err();
            assert!(err.contains(why), "{text}: {err}");
        }
    }

    #[test]
    fn ipv6_entries_may_be_in_brackets() {
        assert_eq!(net("[::1]"), net("::1"));
        assert_eq!(net("[fd00::]/8"), net("fd00::/8"));
    }

    #[test]
    fn ncat_semantics_deny_wins_and_allow_restricts() {
        let open = Access::default();
        assert_eq!(open.check(ip("203.0.113.1")), Ok(()));
        let lan = Access::new(&[net("192.168.0.0/16")], &[net("192.168.1.66")], None, None);
        assert_eq!(lan.check(ip("192.168.7.7")), Ok(()));
        assert_eq!(lan.check(ip("192.168.1.66")), Err(Refusal::Denied));
        assert_eq!(lan.check(ip("10.0.0.1")), Err(Refusal::NotAllowed));
        let deny_only = Access::new(&[], &[net("10.0.0.0/8")], None, None);
        assert_eq!(deny_only.check(ip("10.9.9.9")), Err(Refusal::Denied));
        assert_eq!(deny_only.check(ip("127.0.0.1")), Ok(()));
    }

    #[test]
    fn files_hold_one_entry_a_line_with_comments() {
        let text = "# the lab\n192.168.1.0/24   # room 101\n\n  ::1\n";
        assert_eq!(
            parse_list(text).unwrap(),
            vec![net("192.168.1.0/24"), net("::1")]
        );
        let (line, why) = parse_list("10.0.0.1\nnot-an-address\n").unwrap_err();
        assert_eq!(line, 2);
        assert!(why.contains("'not-an-address'"), "{why}");
    }

    #[test]
    fn an_empty_allowfile_lets_nobody_in() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("allow");
        std::fs::write(&path, "# nobody yet\n").unwrap();
        let file = NetFile::read(path).unwrap();
        let access = Access::new(&[], &[], Some(&file), None);
        assert_eq!(access.check(ip("127.0.0.1")), Err(Refusal::NotAllowed));
        let missing = NetFile::read(dir.path().join("none")).unwrap_err();
        assert_eq!(missing, "No such file or directory");
    }

    proptest! {
        // A block contains an address exactly when their first PREFIX bits
        // agree, computed here on integers.
        #[test]
        fn v4_blocks_agree_with_integer_masks(a: u32, b: u32, prefix in 0u8..=32) {
            let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - u32::from(prefix)) };
            let block = Net { addr: IpAddr::V4(Ipv4Addr::from(a)), prefix };
            prop_assert_eq!(block.contains(IpAddr::V4(Ipv4Addr::from(b))), a & mask == b & mask);
        }

        #[test]
        fn v6_blocks_agree_with_integer_masks(a: u128, b: u128, prefix in 0u8..=128) {
            let mask = if prefix == 0 { 0 } else { u128::MAX << (128 - u32::from(prefix)) };
            let block = Net { addr: IpAddr::V6(Ipv6Addr::from(a)), prefix };
            let b6 = Ipv6Addr::from(b);
            prop_assume!(b6.to_ipv4_mapped().is_none());
            prop_assert_eq!(block.contains(IpAddr::V6(b6)), a & mask == b & mask);
        }

        // What Display prints parses back to the same block.
        #[test]
        fn display_round_trips(a: u32, prefix in 0u8..=32) {
            let block = Net { addr: IpAddr::V4(Ipv4Addr::from(a)), prefix };
            prop_assert_eq!(block.to_string().parse::<Net>().unwrap(), block);
        }
    }
}

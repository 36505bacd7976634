//! Trust on first use, as OpenSSH does it (`hostfile.c`, `sshconnect.c`):
//! the servers `chat --tls` has seen, and what to do with the fingerprint
//! a server shows.
//!
//! # The file
//!
//! `$XDG_CONFIG_HOME/chat/known_hosts` ([`crate::tls::identity::config_dir`]),
//! one server a line, keyed by host and port in OpenSSH's form:
//!
//! ```text
//! # comment
//! [localhost]:8080 SHA256:0C:E6:…:F1
//! [::1]:8080,[127.0.0.1]:8080 SHA256:0C:E6:…:F1
//! chat.example.org SHA256:…
//! ```
//!
//! - the first field lists the hosts, separated by commas, each
//!   `[HOST]:PORT`, or a bare `HOST` for the default port 8080 (as OpenSSH
//!   writes a bare host for port 22); host names are compared ignoring
//!   ASCII case, as DNS does;
//! - the second field is the fingerprint ([`Fingerprint::parse`] forms);
//! - anything after it is a comment; blank lines and lines starting with
//!   `#` are ignored; a line that cannot be read is kept aside
//!   ([`KnownHosts::malformed`]) and never matches.
//!
//! A host may have several lines (a key being replaced): the server is
//! known when any of them matches, as in OpenSSH.

use std::fmt;
use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::tls::Fingerprint;

/// The port a bare host means: `chat`'s default port (the worksheet's 8080).
pub const DEFAULT_PORT: u16 = 8080;

/// The name of the file under [`crate::tls::identity::config_dir`].
pub const FILE_NAME: &str = "known_hosts";

/// A host and port, shown in OpenSSH's form `[HOST]:PORT`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostPort {
    /// The host as given on the command line, ASCII letters in lower case
    /// (an IPv6 address without brackets).
    pub host: String,
    /// The TCP port.
    pub port: u16,
}

impl HostPort {
    /// `host` (lower-cased, brackets around an IPv6 address removed) and
    /// `port`.
    pub fn new(host: &str, port: u16) -> HostPort {
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        HostPort {
            host: host.to_ascii_lowercase(),
            port,
        }
    }

    /// Parses one host of the first field: `[HOST]:PORT` or a bare `HOST`
    /// (port [`DEFAULT_PORT`]). `None` if it is neither.
    fn parse(text: &str) -> Option<HostPort> {
        let valid = |host: &str| {
            !host.is_empty()
                && !host.contains(['[', ']', ','])
                && !host.contains(char::is_whitespace)
        };
        if let Some(rest) = text.strip_prefix('[') {
            let (host, port) = rest.split_once("]:")?;
            if !valid(host) || port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            return Some(HostPort::new(host, port.parse().ok()?));
        }
        // A bare host has no port: an IPv6 address needs the brackets form
        // when it has one, and a name never holds a colon.
        if !valid(text) || (text.contains(':') && text.parse::<std::net::Ipv6Addr>().is_err()) {
            return None;
        }
        Some(HostPort::new(text, DEFAULT_PORT))
    }
}

impl fmt::Display for HostPort {
    /// `[HOST]:PORT`, always with brackets and port (as OpenSSH writes a
    /// host on a port other than 22).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}]:{}", self.host, self.port)
    }
}

/// One line of the file that was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The hosts of the line.
    pub hosts: Vec<HostPort>,
    /// The fingerprint they are known by.
    pub fingerprint: Fingerprint,
    /// The line number, from 1 (what "remove line N" names).
    pub line: usize,
}

/// The known hosts file, read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KnownHosts {
    /// The lines that name hosts, in order.
    pub entries: Vec<Entry>,
    /// The lines that could not be read: (line number, why).
    pub malformed: Vec<(usize, String)>,
    /// The number of lines in the file (the next line added is this + 1).
    pub lines: usize,
    /// Whether the file's last byte is not a newline (the next line added
    /// starts with one).
    pub unterminated: bool,
}

impl KnownHosts {
    /// Parses the text of a known hosts file; never fails: a line that
    /// cannot be read goes to [`KnownHosts::malformed`]. Bytes that are not
    /// UTF-8 make their line malformed (no host name or fingerprint holds
    /// one).
    pub fn parse(text: &[u8]) -> KnownHosts {
        let mut known = KnownHosts {
            unterminated: text.last().is_some_and(|&b| b != b'\n'),
            ..KnownHosts::default()
        };
        for (i, raw) in text.split(|&b| b == b'\n').enumerate() {
            let number = i + 1;
            let Ok(line) = std::str::from_utf8(raw) else {
                known.malformed.push((number, "not UTF-8".to_owned()));
                continue;
            };
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            match parse_line(line) {
                Ok((hosts, fingerprint)) => known.entries.push(Entry {
                    hosts,
                    fingerprint,
                    line: number,
                }),
                Err(why) => known.malformed.push((number, why)),
            }
        }
        known.lines = memchr::memchr_iter(b'\n', text).count() + usize::from(known.unterminated);
        known
    }

    /// Reads the file at `path`; a file that does not exist is empty.
    ///
    /// Errors: [`Error::Sys`] naming the file when it cannot be read.
    pub fn read(path: &Path) -> Result<KnownHosts, Error> {
        match fs::read(path) {
            Ok(text) => Ok(KnownHosts::parse(&text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(KnownHosts::default()),
            Err(e) => Err(Error::io(format!("read {}", path.display()), e)),
        }
    }

    /// What the file says of `host` showing `seen`: known with that
    /// fingerprint (on some line), unknown, or known with another one.
    pub fn check(&self, host: &HostPort, seen: &Fingerprint) -> Check {
        let mut changed = None;
        for entry in self.entries.iter().filter(|e| e.hosts.contains(host)) {
            if entry.fingerprint == *seen {
                return Check::Known { line: entry.line };
            }
            changed.get_or_insert(Check::Changed {
                known: entry.fingerprint,
                line: entry.line,
            });
        }
        changed.unwrap_or(Check::Unknown)
    }
}

/// Parses a line that is not blank nor a comment: the hosts and the
/// fingerprint.
fn parse_line(line: &str) -> Result<(Vec<HostPort>, Fingerprint), String> {
    let mut fields = line.split_whitespace();
    let hosts_field = fields.next().unwrap_or("");
    let Some(fp_field) = fields.next() else {
        return Err("no fingerprint after the host".to_owned());
    };
    let hosts = hosts_field
        .split(',')
        .map(|h| HostPort::parse(h).ok_or_else(|| format!("not a host: {h:?}")))
        .collect::<Result<Vec<_>, _>>()?;
    let fingerprint = Fingerprint::parse(fp_field)?;
    Ok((hosts, fingerprint))
}

/// What the known hosts file says of a server ([`KnownHosts::check`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Known with the fingerprint it showed, on this line.
    Known {
        /// The line number, from 1.
        line: usize,
    },
    /// Not in the file.
    Unknown,
    /// In the file with another fingerprint (the first such line).
    Changed {
        /// The fingerprint the file holds.
        known: Fingerprint,
        /// Its line number, from 1.
        line: usize,
    },
}

/// The line that records `host` with `fingerprint`, newline included.
pub fn line(host: &HostPort, fingerprint: &Fingerprint) -> String {
    format!("{host} {fingerprint}\n")
}

/// Appends the line of `host` with `fingerprint` to the file at `path`
/// (creating it, mode 0644, and its directory, mode 0700, as OpenSSH's
/// `~/.ssh`). Returns the number of the line written.
///
/// Errors: [`Error::Sys`] naming the file or directory.
pub fn add(path: &Path, host: &HostPort, fingerprint: &Fingerprint) -> Result<usize, Error> {
    if let Some(dir) = path.parent() {
        crate::tls::identity::make_dir(dir)?;
    }
    let known = KnownHosts::read(path)?;
    let mut text = String::new();
    if known.unterminated {
        text.push('\n');
    }
    text.push_str(&line(host, fingerprint));
    let what = || format!("write {}", path.display());
    let mut file = fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o644)
        .open(path)
        .map_err(|e| Error::io(what(), e))?;
    file.write_all(text.as_bytes())
        .map_err(|e| Error::io(what(), e))?;
    file.sync_all().map_err(|e| Error::io(what(), e))?;
    Ok(known.lines + 1)
}

/// How the client decides whether to trust the server, from its options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trust {
    /// `--pin FINGERPRINT`: exactly this server, whatever the file says.
    Pin(Fingerprint),
    /// `--insecure`: anyone (encrypted, but not authenticated).
    Insecure,
    /// Trust on first use, by the known hosts file. `accept_new`
    /// (`--accept-new`, OpenSSH's `StrictHostKeyChecking=accept-new`):
    /// an unknown server is trusted and saved without asking; a changed
    /// one is still refused.
    FirstUse {
        /// Trust and save an unknown server without asking.
        accept_new: bool,
    },
}

/// What to do with the server's fingerprint ([`decide`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Go on: the pin matches, or the file knows this fingerprint.
    Trusted,
    /// Go on, and say that the server was not verified (`--insecure`).
    Unverified,
    /// Go on, after saving the server in the file and saying so.
    Save,
    /// Ask the person at the terminal; save if they say yes.
    Ask,
    /// Stop before sending a byte.
    Refuse(Refusal),
}

/// Why a server is refused ([`Verdict::Refuse`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// It is not the server `--pin` names.
    PinMismatch {
        /// The fingerprint `--pin` gave.
        pinned: Fingerprint,
    },
    /// Its fingerprint is not the one the file holds.
    Changed {
        /// The fingerprint of the file.
        known: Fingerprint,
        /// Its line number, from 1.
        line: usize,
    },
    /// The file does not know it, and nobody can be asked (no terminal,
    /// no `--pin`, no `--accept-new`).
    Unknown,
}

/// The trust-on-first-use decision: what `trust` (the options) makes of a
/// server whose fingerprint the known hosts file judged `check`, with a
/// person at the terminal or not (`terminal`). The rules of OpenSSH's
/// `StrictHostKeyChecking`: a changed fingerprint is always refused (only
/// `--pin` or `--insecure` override the file), an unknown one is asked on
/// a terminal, saved with `--accept-new`, refused in a script.
pub fn decide(trust: Trust, check: Check, seen: &Fingerprint, terminal: bool) -> Verdict {
    match (trust, check) {
        (Trust::Insecure, _) => Verdict::Unverified,
        (Trust::Pin(pinned), _) if pinned == *seen => Verdict::Trusted,
        (Trust::Pin(pinned), _) => Verdict::Refuse(Refusal::PinMismatch { pinned }),
        (Trust::FirstUse { .. }, Check::Known { .. }) => Verdict::Trusted,
        (Trust::FirstUse { .. }, Check::Changed { known, line }) => {
            Verdict::Refuse(Refusal::Changed { known, line })
        }
        (Trust::FirstUse { accept_new: true }, Check::Unknown) => Verdict::Save,
        (Trust::FirstUse { accept_new: false }, Check::Unknown) if terminal => Verdict::Ask,
        (Trust::FirstUse { accept_new: false }, Check::Unknown) => {
            Verdict::Refuse(Refusal::Unknown)
        }
    }
}

impl Refusal {
    /// The one-line error for a refused `server` that showed `seen`, the
    /// known hosts file being `file`: both fingerprints, and for a changed
    /// one the line to remove (OpenSSH's "Offending key in FILE:N").
    pub fn message(&self, server: &HostPort, seen: &Fingerprint, file: &Path) -> String {
        match self {
            Refusal::PinMismatch { pinned } => format!(
                "{server} is not the pinned server: it showed TLS fingerprint {seen}, \
                 --pin gave {pinned}; nothing was sent"
            ),
            Refusal::Changed { known, line } => format!(
                "WARNING: the TLS fingerprint of {server} has changed: it showed {seen}, \
                 {file}:{line} holds {known}; someone may be intercepting the connection, \
                 or the server has a new key; nothing was sent; if you know the key changed, \
                 remove line {line} of {file}",
                file = file.display()
            ),
            Refusal::Unknown => format!(
                "{server} is not in {file} (TLS fingerprint {seen}); nothing was sent; \
                 check the fingerprint with the server's owner, then give --pin {seen}, \
                 or --accept-new to trust and save it",
                file = file.display()
            ),
        }
    }
}

/// The known hosts file of this user: [`FILE_NAME`] under
/// [`crate::tls::identity::config_dir`].
pub fn path() -> Result<PathBuf, Error> {
    Ok(crate::tls::identity::config_dir()?.join(FILE_NAME))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(byte: u8) -> Fingerprint {
        Fingerprint([byte; 32])
    }

    #[test]
    fn hosts_are_keyed_by_host_and_port() {
        let text = format!(
            "# servers\n\n[localhost]:8080 {}\n[LocalHost]:9000 {} a comment\n[::1]:8080,127.0.0.1 {}\n",
            fp(1),
            fp(2),
            fp(3)
        );
        let known = KnownHosts::parse(text.as_bytes());
        assert!(known.malformed.is_empty(), "{:?}", known.malformed);
        assert_eq!(known.lines, 5);
        let local = HostPort::new("localhost", 8080);
        assert_eq!(known.check(&local, &fp(1)), Check::Known { line: 3 });
        assert_eq!(
            known.check(&local, &fp(2)),
            Check::Changed {
                known: fp(1),
                line: 3
            }
        );
        assert_eq!(
            known.check(&HostPort::new("LOCALHOST", 9000), &fp(2)),
            Check::Known { line: 4 }
        );
        assert_eq!(
            known.check(&HostPort::new("localhost", 9001), &fp(2)),
            Check::Unknown
        );
        assert_eq!(
            known.check(&HostPort::new("[::1]", 8080), &fp(3)),
            Check::Known { line: 5 }
        );
        // A bare host is the default port.
        assert_eq!(
            known.check(&HostPort::new("127.0.0.1", 8080), &fp(3)),
            Check::Known { line: 5 }
        );
        assert_eq!(
            known.check(&HostPort::new("127.0.0.1", 80), &fp(3)),
            Check::Unknown
        );
    }

    #[test]
    fn any_matching_line_makes_a_host_known() {
        let text = format!("[h]:1 {}\n[h]:1 {}\n", fp(1), fp(2));
        let known = KnownHosts::parse(text.as_bytes());
        let h = HostPort::new("h", 1);
        assert_eq!(known.check(&h, &fp(2)), Check::Known { line: 2 });
        assert_eq!(
            known.check(&h, &fp(9)),
            Check::Changed {
                known: fp(1),
                line: 1
            }
        );
    }

    #[test]
    fn malformed_lines_are_set_aside_and_never_match() {
        let text = format!(
            "[h]:1\n[h]:x {f}\n[h] {f}\nh:1 {f}\n[h]:1 SHA256:AB\n\u{ff}\n[h]:1 {f}\n",
            f = fp(1)
        );
        let mut bytes = text.into_bytes();
        // A byte that is not UTF-8 on line 6.
        let at = bytes.iter().position(|&b| b == 0xc3).unwrap();
        bytes[at] = 0xff;
        let known = KnownHosts::parse(&bytes);
        let bad: Vec<usize> = known.malformed.iter().map(|(n, _)| *n).collect();
        assert_eq!(bad, [1, 2, 3, 4, 5, 6]);
        assert_eq!(known.entries.len(), 1);
        assert_eq!(known.entries[0].line, 7);
    }

    #[test]
    fn lines_are_added_with_their_number() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join(FILE_NAME);
        let h = HostPort::new("localhost", 4242);
        assert_eq!(add(&path, &h, &fp(1)).unwrap(), 1);
        assert_eq!(add(&path, &HostPort::new("::1", 1), &fp(2)).unwrap(), 2);
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            format!("[localhost]:4242 {}\n[::1]:1 {}\n", fp(1), fp(2))
        );
        // A file edited by hand without a final newline.
        fs::write(&path, format!("# mine\n[a]:1 {}", fp(3))).unwrap();
        assert_eq!(add(&path, &h, &fp(1)).unwrap(), 3);
        let known = KnownHosts::read(&path).unwrap();
        assert_eq!(known.check(&h, &fp(1)), Check::Known { line: 3 });
        assert_eq!(
            known.check(&HostPort::new("a", 1), &fp(3)),
            Check::Known { line: 2 }
        );
        assert!(known.malformed.is_empty());
        assert_eq!(
            KnownHosts::read(&dir.path().join("none")).unwrap(),
            KnownHosts::default()
        );
    }

    #[test]
    fn line_counts_follow_the_text() {
        assert_eq!(KnownHosts::parse(b"").lines, 0);
        assert_eq!(KnownHosts::parse(b"\n").lines, 1);
        assert_eq!(KnownHosts::parse(b"a").lines, 1);
        assert_eq!(KnownHosts::parse(b"a\nb").lines, 2);
        assert_eq!(KnownHosts::parse(b"a\nb\n").lines, 2);
    }

    #[test]
    fn the_decision_follows_openssh() {
        use Verdict::*;
        let seen = fp(1);
        let known = Check::Known { line: 1 };
        let changed = Check::Changed {
            known: fp(2),
            line: 4,
        };
        let first = Trust::FirstUse { accept_new: false };
        let accept = Trust::FirstUse { accept_new: true };
        for terminal in [false, true] {
            assert_eq!(decide(first, known, &seen, terminal), Trusted);
            assert_eq!(
                decide(first, changed, &seen, terminal),
                Refuse(Refusal::Changed {
                    known: fp(2),
                    line: 4
                })
            );
            // accept-new never accepts a changed key (OpenSSH's rule).
            assert_eq!(
                decide(accept, changed, &seen, terminal),
                Refuse(Refusal::Changed {
                    known: fp(2),
                    line: 4
                })
            );
            assert_eq!(decide(accept, Check::Unknown, &seen, terminal), Save);
            for check in [known, changed, Check::Unknown] {
                assert_eq!(decide(Trust::Insecure, check, &seen, terminal), Unverified);
                assert_eq!(decide(Trust::Pin(seen), check, &seen, terminal), Trusted);
                assert_eq!(
                    decide(Trust::Pin(fp(3)), check, &seen, terminal),
                    Refuse(Refusal::PinMismatch { pinned: fp(3) })
                );
            }
        }
        assert_eq!(decide(first, Check::Unknown, &seen, true), Ask);
        assert_eq!(
            decide(first, Check::Unknown, &seen, false),
            Refuse(Refusal::Unknown)
        );
    }

    #[test]
    fn a_changed_key_names_both_fingerprints_and_the_line() {
        let file = Path::new("/home/u/.config/chat/known_hosts");
        let msg = Refusal::Changed {
            known: fp(2),
            line: 4,
        }
        .message(&HostPort::new("localhost", 8080), &fp(1), file);
        assert!(msg.contains(&fp(1).to_string()), "{msg}");
        assert!(msg.contains(&fp(2).to_string()), "{msg}");
        assert!(
            msg.contains("remove line 4 of /home/u/.config/chat/known_hosts"),
            "{msg}"
        );
        assert!(msg.contains("[localhost]:8080"), "{msg}");
        assert!(!msg.contains('\n'));
        let msg = Refusal::Unknown.message(&HostPort::new("h", 1), &fp(1), file);
        assert!(msg.contains("--pin SHA256:01:01"), "{msg}");
    }
}

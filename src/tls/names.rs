//! Names bound to certificates in the room (`chatd --broker --tls`), as
//! IRC's CertFP binds a nickname to a client certificate's fingerprint:
//! the name a certificate took is reserved for it, and another client that
//! claims it is refused. The reservations persist in a file, so they
//! survive a restart.
//!
//! # The file
//!
//! `$XDG_CONFIG_HOME/chat/names` ([`crate::tls::identity::config_dir`]) of
//! the user running `chatd`, one reservation a line:
//!
//! ```text
//! # comment
//! alice SHA256:0C:E6:…:F1
//! ```
//!
//! - the name (no white space: a room name has none), then the
//!   certificate's fingerprint ([`Fingerprint::parse`] forms); anything
//!   after is a comment; blank lines are ignored, and so are lines whose
//!   first word is `#` alone (`# comment`): a name may begin with `#`;
//! - names are compared through the key function the room gives
//!   ([`Reservations::parse`]: the room's own comparison, so that `Alice`
//!   and `alice` are one name); a name or a fingerprint already reserved on
//!   an earlier line makes a later line malformed, and a malformed line is
//!   kept aside ([`Reservations::malformed`]), never used.
//!
//! A certificate holds one name at a time: taking another moves its
//! reservation, so that one client cannot hoard names.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::tls::Fingerprint;

/// The name of the file under [`crate::tls::identity::config_dir`].
pub const FILE_NAME: &str = "names";

/// How the room compares names: equal keys, same name.
pub type Key = fn(&str) -> String;

/// One reserved name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    /// The name, as it was taken.
    pub name: String,
    /// The certificate it is reserved for.
    pub fingerprint: Fingerprint,
}

/// What [`Reservations::claim`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The name is this certificate's already: nothing changed.
    Held,
    /// The name is now reserved for this certificate (and the name it held
    /// before, if any, is free): the file must be saved.
    Reserved {
        /// The name the certificate held before, now free.
        released: Option<String>,
    },
    /// Another certificate holds the name.
    Taken {
        /// That certificate.
        by: Fingerprint,
    },
}

/// The reservations of the room.
#[derive(Debug, Clone)]
pub struct Reservations {
    entries: Vec<Reservation>,
    key: Key,
    /// The lines of the file that could not be used: (line number from 1,
    /// why).
    pub malformed: Vec<(usize, String)>,
}

impl Reservations {
    /// No reservations; names compared by `key`.
    pub fn new(key: Key) -> Reservations {
        Reservations {
            entries: Vec::new(),
            key,
            malformed: Vec::new(),
        }
    }

    /// Parses the text of a reservation file, names compared by `key`;
    /// never fails: a line that cannot be used goes to
    /// [`Reservations::malformed`].
    pub fn parse(text: &[u8], key: Key) -> Reservations {
        let mut res = Reservations::new(key);
        for (i, raw) in text.split(|&b| b == b'\n').enumerate() {
            let number = i + 1;
            let Ok(line) = std::str::from_utf8(raw) else {
                res.malformed.push((number, "not UTF-8".to_owned()));
                continue;
            };
            let line = line.trim();
            let mut fields = line.split_whitespace();
            let name = fields.next().unwrap_or("");
            // A comment is `#` alone as the first word: a name may begin
            // with `#` (the room allows it).
            if name.is_empty() || name == "#" {
                continue;
            }
            let Some(fp) = fields.next() else {
                res.malformed
                    .push((number, "no fingerprint after the name".to_owned()));
                continue;
            };
            let fingerprint = match Fingerprint::parse(fp) {
                Ok(fingerprint) => fingerprint,
                Err(why) => {
                    res.malformed.push((number, why));
                    continue;
                }
            };
            if res.holder(name).is_some() {
                res.malformed
                    .push((number, format!("{name} is reserved on an earlier line")));
            } else if res.name_of(&fingerprint).is_some() {
                res.malformed.push((
                    number,
                    "this certificate holds a name on an earlier line".to_owned(),
                ));
            } else {
                res.entries.push(Reservation {
                    name: name.to_owned(),
                    fingerprint,
                });
            }
        }
        res
    }

    /// Reads the file at `path`; a missing file holds no reservation.
    ///
    /// Errors: [`Error::Sys`] naming the file when it cannot be read.
    pub fn load(path: &Path, key: Key) -> Result<Reservations, Error> {
        match fs::read(path) {
            Ok(text) => Ok(Reservations::parse(&text, key)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Reservations::new(key)),
            Err(e) => Err(Error::io(format!("read {}", path.display()), e)),
        }
    }

    /// The certificate `name` is reserved for, if any.
    pub fn holder(&self, name: &str) -> Option<Fingerprint> {
        let key = (self.key)(name);
        self.entries
            .iter()
            .find(|r| (self.key)(&r.name) == key)
            .map(|r| r.fingerprint)
    }

    /// The name reserved for `fingerprint`, if any.
    pub fn name_of(&self, fingerprint: &Fingerprint) -> Option<&str> {
        self.entries
            .iter()
            .find(|r| r.fingerprint == *fingerprint)
            .map(|r| r.name.as_str())
    }

    /// The certificate `fingerprint` claims `name`: refused when another
    /// holds it, else reserved for it (its previous name released).
    pub fn claim(&mut self, name: &str, fingerprint: &Fingerprint) -> Claim {
        match self.holder(name) {
            Some(by) if by != *fingerprint => return Claim::Taken { by },
            Some(_) if self.name_of(fingerprint) == Some(name) => return Claim::Held,
            _ => {}
        }
        let released = self
            .entries
            .iter()
            .position(|r| r.fingerprint == *fingerprint)
            .map(|at| self.entries.remove(at).name)
            .filter(|old| (self.key)(old) != (self.key)(name));
        self.entries.push(Reservation {
            name: name.to_owned(),
            fingerprint: *fingerprint,
        });
        Claim::Reserved { released }
    }

    /// The reservations, in the order of the file and then of claims.
    pub fn iter(&self) -> impl Iterator<Item = &Reservation> {
        self.entries.iter()
    }

    /// The text of the file: a comment line, then one reservation a line.
    pub fn render(&self) -> String {
        let mut text = String::from(
            "# chatd --broker --tls: names reserved for client certificates (NAME FINGERPRINT)\n",
        );
        for r in &self.entries {
            text.push_str(&format!("{} {}\n", r.name, r.fingerprint));
        }
        text
    }

    /// Writes [`Reservations::render`] to `path` (mode 0600, its directory
    /// made with mode 0700), replacing the file at once: the text goes to
    /// a temporary file beside it, which is then renamed, so that a reader
    /// or a crash never sees half a file.
    ///
    /// Errors: [`Error::Sys`] naming the file.
    pub fn save(&self, path: &Path) -> Result<(), Error> {
        let dir = path.parent().unwrap_or(Path::new("."));
        crate::tls::identity::make_dir(dir)?;
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(format!(".{}.tmp", std::process::id()));
        let tmp = PathBuf::from(tmp);
        let what = || format!("write {}", path.display());
        let result = (|| {
            let mut file = fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            file.write_all(self.render().as_bytes())?;
            file.sync_all()?;
            fs::rename(&tmp, path)
        })();
        result.map_err(|e| {
            let _ = fs::remove_file(&tmp);
            Error::io(what(), e)
        })
    }
}

/// The reservation file of this user: [`FILE_NAME`] under
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

    fn fold(name: &str) -> String {
        name.to_ascii_lowercase()
    }

    #[test]
    fn a_name_is_kept_for_its_certificate() {
        let mut res = Reservations::new(fold);
        assert_eq!(
            res.claim("alice", &fp(1)),
            Claim::Reserved { released: None }
        );
        assert_eq!(res.claim("Alice", &fp(2)), Claim::Taken { by: fp(1) });
        assert_eq!(res.claim("alice", &fp(1)), Claim::Held);
        assert_eq!(res.holder("ALICE"), Some(fp(1)));
        // Another name moves the reservation and frees the old one.
        assert_eq!(
            res.claim("alicia", &fp(1)),
            Claim::Reserved {
                released: Some("alice".to_owned())
            }
        );
        assert_eq!(res.holder("alice"), None);
        assert_eq!(
            res.claim("alice", &fp(2)),
            Claim::Reserved { released: None }
        );
        // Another case of one's own name: kept, spelled as now taken.
        assert_eq!(
            res.claim("ALICIA", &fp(1)),
            Claim::Reserved { released: None }
        );
        assert_eq!(res.name_of(&fp(1)), Some("ALICIA"));
    }

    #[test]
    fn reservations_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("conf").join(FILE_NAME);
        let mut res = Reservations::load(&path, fold).unwrap();
        assert_eq!(res.iter().count(), 0);
        res.claim("alice", &fp(1));
        res.claim("bob", &fp(2));
        res.save(&path).unwrap();
        let again = Reservations::load(&path, fold).unwrap();
        assert!(again.malformed.is_empty(), "{:?}", again.malformed);
        assert_eq!(again.holder("Bob"), Some(fp(2)));
        assert_eq!(again.name_of(&fp(1)), Some("alice"));
        use std::os::unix::fs::MetadataExt;
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        let leftovers: Vec<_> = fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(leftovers.len(), 1);
    }

    #[test]
    fn malformed_lines_are_set_aside() {
        let text = format!(
            "# c\n\nalice {a}\nbob\nbob SHA256:12\nALICE {b}\ncarol {a}\ndave {b} comment\n\u{e9}\n#\n",
            a = fp(1),
            b = fp(2)
        );
        let res = Reservations::parse(text.as_bytes(), fold);
        let bad: Vec<usize> = res.malformed.iter().map(|(n, _)| *n).collect();
        assert_eq!(bad, [4, 5, 6, 7, 9]);
        assert_eq!(res.holder("dave"), Some(fp(2)));
        assert_eq!(res.holder("alice"), Some(fp(1)));
        assert_eq!(res.holder("carol"), None);
        // Bytes that are not UTF-8.
        let res = Reservations::parse(b"\xff\xfe x\n", fold);
        assert_eq!(res.malformed.len(), 1);
    }

    #[test]
    fn what_is_rendered_parses_back_the_same() {
        let mut res = Reservations::new(fold);
        for (i, name) in ["a", "Éloïse", "z9", "#general"].iter().enumerate() {
            res.claim(name, &fp(u8::try_from(i).unwrap()));
        }
        let back = Reservations::parse(res.render().as_bytes(), fold);
        assert!(back.malformed.is_empty());
        assert_eq!(
            back.iter().collect::<Vec<_>>(),
            res.iter().collect::<Vec<_>>()
        );
    }
}

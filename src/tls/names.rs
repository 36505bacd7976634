//! Names bound to certificates in the room (`chatd --broker --tls`), as
//! IRC's CertFP binds a nickname to a client certificate's fingerprint:
//! the name a certificate took is reserved for it, and another client that
//! claims it, or a name the room takes for the same (one that looks like
//! it), is refused. The reservations persist in a file, so they
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
//! - names are compared through the keys the room gives
//!   ([`Reservations::parse`], [`Keys`]): the room's own comparison, so
//!   that `Alice` and `alice` are one name, and so are `alice` and
//!   `аlice` (Cyrillic а), which look alike; a name that shares a key
//!   with a name reserved on an earlier line, or a fingerprint already
//!   reserved on an earlier line, makes a later line malformed (the first
//!   line keeps the name), and a malformed line is kept aside
//!   ([`Reservations::malformed`]), never used.
//!
//! A certificate holds one name at a time: taking another moves its
//! reservation, so that one client cannot hoard names.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::tls::Fingerprint;

/// The name of the file under [`crate::tls::identity::config_dir`].
pub const FILE_NAME: &str = "names";

/// How the room compares names: the keys of a name, each a string; two
/// names are the same name when they share a key. The room gives every
/// key it compares names by (the caseless form and the look-alike keys,
/// each tagged with its kind so that keys of two kinds never meet:
/// [`crate::broker`] is above this layer, so it passes the function in).
/// A name has at least one key.
pub type Keys = fn(&str) -> Vec<String>;

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
        /// The name the certificate held before, now free (none when it
        /// shares a key with the new one: `Alice` for `alice`).
        released: Option<String>,
    },
    /// Another certificate holds the name, or one that shares a key with
    /// it.
    Taken {
        /// That certificate.
        by: Fingerprint,
    },
}

/// The reservations of the room.
#[derive(Debug, Clone)]
pub struct Reservations {
    entries: Vec<Reservation>,
    /// Every key of every reserved name, to the certificate the name is
    /// reserved for. No key belongs to two reserved names.
    index: HashMap<String, Fingerprint>,
    keys: Keys,
    /// The lines of the file that could not be used: (line number from 1,
    /// why).
    pub malformed: Vec<(usize, String)>,
}

impl Reservations {
    /// No reservations; names compared by `keys`.
    pub fn new(keys: Keys) -> Reservations {
        Reservations {
            entries: Vec::new(),
            index: HashMap::new(),
            keys,
            malformed: Vec::new(),
        }
    }

    /// Parses the text of a reservation file, names compared by `keys`;
    /// never fails: a line that cannot be used goes to
    /// [`Reservations::malformed`].
    pub fn parse(text: &[u8], keys: Keys) -> Reservations {
        let mut res = Reservations::new(keys);
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
            let keys = (res.keys)(name);
            if let Some(earlier) = res.holder_by(&keys).and_then(|by| res.name_of(&by)) {
                let why = if earlier == name {
                    format!("{name} is reserved on an earlier line")
                } else {
                    format!("{name} looks like {earlier}, reserved on an earlier line")
                };
                res.malformed.push((number, why));
            } else if res.name_of(&fingerprint).is_some() {
                res.malformed.push((
                    number,
                    "this certificate holds a name on an earlier line".to_owned(),
                ));
            } else {
                res.insert(name, keys, fingerprint);
            }
        }
        res
    }

    /// Reads the file at `path`; a missing file holds no reservation.
    ///
    /// Errors: [`Error::Sys`] naming the file when it cannot be read.
    pub fn load(path: &Path, keys: Keys) -> Result<Reservations, Error> {
        match fs::read(path) {
            Ok(text) => Ok(Reservations::parse(&text, keys)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Reservations::new(keys)),
            Err(e) => Err(Error::io(format!("read {}", path.display()), e)),
        }
    }

    /// The certificate for which `name`, or a name that shares a key with
    /// it, is reserved, if any (the first of its keys that is reserved
    /// decides, when they are reserved for several).
    pub fn holder(&self, name: &str) -> Option<Fingerprint> {
        self.holder_by(&(self.keys)(name))
    }

    /// A certificate other than `fingerprint` (none: a client without a
    /// certificate) for which `name`, or a name that shares a key with it,
    /// is reserved: the one that makes a claim of `name` by `fingerprint`
    /// [`Claim::Taken`].
    pub fn held_by_another(
        &self,
        name: &str,
        fingerprint: Option<&Fingerprint>,
    ) -> Option<Fingerprint> {
        self.holder_other_than(&(self.keys)(name), fingerprint)
    }

    /// The name reserved for `fingerprint`, if any.
    pub fn name_of(&self, fingerprint: &Fingerprint) -> Option<&str> {
        self.entries
            .iter()
            .find(|r| r.fingerprint == *fingerprint)
            .map(|r| r.name.as_str())
    }

    /// The certificate `fingerprint` claims `name`: refused when another
    /// holds it or a name that shares a key with it, else reserved for it
    /// (its previous name released).
    pub fn claim(&mut self, name: &str, fingerprint: &Fingerprint) -> Claim {
        let keys = (self.keys)(name);
        if let Some(by) = self.holder_other_than(&keys, Some(fingerprint)) {
            return Claim::Taken { by };
        }
        if self.name_of(fingerprint) == Some(name) {
            return Claim::Held;
        }
        let released = self
            .entries
            .iter()
            .position(|r| r.fingerprint == *fingerprint)
            .map(|at| self.entries.remove(at).name)
            .and_then(|old| {
                let old_keys = (self.keys)(&old);
                for key in &old_keys {
                    self.index.remove(key);
                }
                let shared = old_keys.iter().any(|k| keys.contains(k));
                (!shared).then_some(old)
            });
        self.insert(name, keys, *fingerprint);
        Claim::Reserved { released }
    }

    /// Reserves `name`, whose keys are `keys` (none of them reserved), for
    /// `fingerprint` (which holds no name).
    fn insert(&mut self, name: &str, keys: Vec<String>, fingerprint: Fingerprint) {
        for key in keys {
            self.index.insert(key, fingerprint);
        }
        self.entries.push(Reservation {
            name: name.to_owned(),
            fingerprint,
        });
    }

    /// The certificate for which one of `keys` is reserved, if any.
    fn holder_by(&self, keys: &[String]) -> Option<Fingerprint> {
        self.holder_other_than(keys, None)
    }

    /// The certificate other than `fingerprint` for which one of `keys` is
    /// reserved, if any.
    fn holder_other_than(
        &self,
        keys: &[String],
        fingerprint: Option<&Fingerprint>,
    ) -> Option<Fingerprint> {
        keys.iter()
            .filter_map(|key| self.index.get(key))
            .find(|&by| Some(by) != fingerprint)
            .copied()
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

    /// Keys of two kinds, as the room's: the name in lower case, and a
    /// look-alike key of the name as written (`0` looks like `o`, `1` and
    /// `I` like `l`), tagged apart.
    fn keys(name: &str) -> Vec<String> {
        let looks = name
            .chars()
            .map(|c| match c {
                '0' => 'o',
                '1' | 'I' => 'l',
                c => c.to_ascii_lowercase(),
            })
            .collect::<String>();
        vec![
            format!("={}", name.to_ascii_lowercase()),
            format!("~{looks}"),
        ]
    }

    #[test]
    fn a_name_is_kept_for_its_certificate() {
        let mut res = Reservations::new(keys);
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
    fn a_name_that_looks_like_a_reserved_one_is_refused() {
        let mut res = Reservations::new(keys);
        res.claim("alice", &fp(1));
        // Another certificate, or none: the look-alike is hers too.
        for name in ["a1ice", "A1iCE", "aIice"] {
            assert_eq!(
                res.claim(name, &fp(2)),
                Claim::Taken { by: fp(1) },
                "{name}"
            );
            assert_eq!(res.held_by_another(name, Some(&fp(2))), Some(fp(1)));
            assert_eq!(res.held_by_another(name, None), Some(fp(1)));
            assert_eq!(res.holder(name), Some(fp(1)));
            // Her own certificate may take it.
            assert_eq!(res.held_by_another(name, Some(&fp(1))), None);
        }
        assert_eq!(res.holder("bob"), None);
        // Taking a look-alike of her own name moves her reservation and
        // releases nothing: the old name looks like the new one.
        assert_eq!(
            res.claim("a1ice", &fp(1)),
            Claim::Reserved { released: None }
        );
        assert_eq!(res.name_of(&fp(1)), Some("a1ice"));
        assert_eq!(res.claim("alice", &fp(2)), Claim::Taken { by: fp(1) });
        // Another name frees every key of the old one.
        assert_eq!(
            res.claim("carol", &fp(1)),
            Claim::Reserved {
                released: Some("a1ice".to_owned())
            }
        );
        assert_eq!(res.holder("alice"), None);
        assert_eq!(
            res.claim("alice", &fp(2)),
            Claim::Reserved { released: None }
        );
    }

    #[test]
    fn a_name_with_keys_of_two_certificates_is_refused_to_both() {
        // `ian` and `lan` share no key; `Ian` shares its caseless key with
        // `ian` and its look-alike key with `lan`.
        let mut res = Reservations::new(keys);
        res.claim("ian", &fp(1));
        res.claim("lan", &fp(2));
        assert_eq!(res.claim("Ian", &fp(1)), Claim::Taken { by: fp(2) });
        assert_eq!(res.claim("Ian", &fp(2)), Claim::Taken { by: fp(1) });
        assert_eq!(res.held_by_another("Ian", Some(&fp(1))), Some(fp(2)));
        assert_eq!(res.held_by_another("Ian", Some(&fp(2))), Some(fp(1)));
        assert_eq!(res.name_of(&fp(1)), Some("ian"));
        assert_eq!(res.name_of(&fp(2)), Some("lan"));
    }

    #[test]
    fn reservations_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("conf").join(FILE_NAME);
        let mut res = Reservations::load(&path, keys).unwrap();
        assert_eq!(res.iter().count(), 0);
        res.claim("alice", &fp(1));
        res.claim("bob", &fp(2));
        res.save(&path).unwrap();
        let again = Reservations::load(&path, keys).unwrap();
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
            "# c\n\nalice {a}\nbob\nbob SHA256:12\nALICE {b}\ncarol {a}\ndave {b} comment\n\u{e9}\n#\nA1ice {c}\n",
            a = fp(1),
            b = fp(2),
            c = fp(3)
        );
        let res = Reservations::parse(text.as_bytes(), keys);
        let bad: Vec<usize> = res.malformed.iter().map(|(n, _)| *n).collect();
        assert_eq!(bad, [4, 5, 6, 7, 9, 11]);
        assert_eq!(
            res.malformed[2].1,
            "ALICE looks like alice, reserved on an earlier line"
        );
        assert_eq!(
            res.malformed[5].1,
            "A1ice looks like alice, reserved on an earlier line"
        );
        assert_eq!(res.name_of(&fp(3)), None);
        assert_eq!(res.holder("dave"), Some(fp(2)));
        assert_eq!(res.holder("alice"), Some(fp(1)));
        assert_eq!(res.holder("carol"), None);
        // Bytes that are not UTF-8.
        let res = Reservations::parse(b"\xff\xfe x\n", keys);
        assert_eq!(res.malformed.len(), 1);
    }

    #[test]
    fn what_is_rendered_parses_back_the_same() {
        let mut res = Reservations::new(keys);
        for (i, name) in ["a", "Éloïse", "z9", "#general"].iter().enumerate() {
            res.claim(name, &fp(u8::try_from(i).unwrap()));
        }
        let back = Reservations::parse(res.render().as_bytes(), keys);
        assert!(back.malformed.is_empty());
        assert_eq!(
            back.iter().collect::<Vec<_>>(),
            res.iter().collect::<Vec<_>>()
        );
    }
}

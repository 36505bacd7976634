//! The history of typed lines, kept from one run to the next: a file of
//! one line per entry, oldest first, under `$XDG_STATE_HOME/chat/` (the
//! XDG Base Directory Specification's place for "state data that should
//! persist between application restarts": `~/.local/state/chat/` when
//! the variable is unset, empty or not an absolute path), `history` for
//! `chat` and `chatd_history` for `chatd`, as `rlwrap nc` keeps
//! `~/.nc_history`. The file is created with mode 0600 in a directory of
//! mode 0700, holds at most [`HISTORY_MAX`] entries, and is plain text:
//! what was typed, readable by whoever can read the file.
//!
//! Each line typed is appended to the file at once (`O_APPEND`: two
//! programs that append at the same time never mix their lines), so a
//! program killed loses none; once the file holds more than
//! [`HISTORY_MAX`] entries, it is written again with the last ones only
//! (a new file renamed over the old one, so that a crash leaves one or
//! the other whole). [`set_up`] chooses the file, once per program
//! (`--no-history`: none); the line editor ([`super::Editor`]) reads it
//! when it starts and appends every line it records.

use std::ffi::OsStr;
use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use super::line::HISTORY_MAX;
use crate::terminal::shared::LINE_MAX;

/// The file chosen by [`set_up`]; `None` inside: no history file.
static FILE: OnceLock<Option<PathBuf>> = OnceLock::new();

/// How a failure to read or write the file is said (a status line: a
/// hook of the layer that writes them, given to [`set_up`]).
static WARN: OnceLock<fn(&str)> = OnceLock::new();

/// The most bytes read from the end of a history file: room for
/// [`HISTORY_MAX`] lines of [`LINE_MAX`] bytes. What comes before is
/// older than the entries kept anyway.
const READ_MAX: u64 = (HISTORY_MAX * (LINE_MAX + 1)) as u64;

/// The directory of the history files: `$XDG_STATE_HOME/chat`, or
/// `$HOME/.local/state/chat`. `None` when neither variable gives an
/// absolute path.
pub fn directory(state_home: Option<&OsStr>, home: Option<&OsStr>) -> Option<PathBuf> {
    let absolute = |v: Option<&OsStr>| {
        v.map(Path::new)
            .filter(|p| p.is_absolute())
            .map(Path::to_path_buf)
    };
    let state = absolute(state_home).or_else(|| absolute(home).map(|h| h.join(".local/state")))?;
    Some(state.join("chat"))
}

/// Chooses the history file of this program, once: `name` (`history`,
/// `chatd_history`) in [`directory`] of the environment, or no file when
/// `enabled` is false (`--no-history`) or no directory can be named.
/// `warn` writes a status line when the file cannot be read or written
/// (the program goes on without it).
pub fn set_up(name: &str, enabled: bool, warn: fn(&str)) {
    let _ = WARN.set(warn);
    let path = enabled
        .then(|| {
            directory(
                std::env::var_os("XDG_STATE_HOME").as_deref(),
                std::env::var_os("HOME").as_deref(),
            )
        })
        .flatten()
        .map(|dir| dir.join(name));
    let _ = FILE.set(path);
}

/// Says `what` failed with `err`, and what follows, through the hook of
/// [`set_up`].
pub(crate) fn warn(what: &str, err: io::Error, then: &str) {
    if let Some(warn) = WARN.get() {
        let err = crate::Error::io(what, err);
        warn(&format!("{err}; {then} (--no-history: keep none)"));
    }
}

/// The history file of this program, if it keeps one.
pub(crate) fn chosen() -> Option<&'static Path> {
    FILE.get().and_then(Option::as_deref)
}

/// A history file in use: its path and how many entries it holds.
#[derive(Debug)]
pub struct History {
    path: PathBuf,
    /// Entries in the file (lines), as last read or written.
    lines: usize,
}

impl History {
    /// Opens the history at `path` and returns it with its entries,
    /// oldest first, at most [`HISTORY_MAX`] of them. A file that does not
    /// exist is an empty history (it is created at the first line).
    /// Errors: reading the file failed.
    pub fn open(path: &Path) -> io::Result<(History, Vec<Vec<u8>>)> {
        let entries = match File::open(path) {
            Ok(file) => read_entries(file)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        let history = History {
            path: path.to_path_buf(),
            lines: entries.len(),
        };
        Ok((history, entries))
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `line` (without newline, never containing one) to the file,
    /// creating it and its directory if needed (modes 0600 and 0700);
    /// when the file then holds more than [`HISTORY_MAX`] entries, writes
    /// it again with the last ones of `entries` (the editor's history,
    /// `line` last). Errors: creating, writing or renaming failed.
    pub fn append(&mut self, line: &[u8], entries: &[Vec<u8>]) -> io::Result<()> {
        if let Some(dir) = self.path.parent() {
            DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
        }
        let mut file = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(&self.path)?;
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line);
        bytes.push(b'\n');
        file.write_all(&bytes)?;
        self.lines += 1;
        if self.lines > HISTORY_MAX {
            self.rewrite(entries)?;
        }
        Ok(())
    }

    /// Writes the file again with the last [`HISTORY_MAX`] of `entries`:
    /// a new file beside it (mode 0600), renamed over it.
    fn rewrite(&mut self, entries: &[Vec<u8>]) -> io::Result<()> {
        let keep = &entries[entries.len().saturating_sub(HISTORY_MAX)..];
        let mut bytes = Vec::new();
        for entry in keep {
            bytes.extend_from_slice(entry);
            bytes.push(b'\n');
        }
        let mut name = self.path.file_name().unwrap_or_default().to_owned();
        name.push(format!(".{}.tmp", std::process::id()));
        let tmp = self.path.with_file_name(name);
        let written = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .and_then(|mut f| f.write_all(&bytes))
            .and_then(|()| std::fs::rename(&tmp, &self.path));
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        written?;
        self.lines = keep.len();
        Ok(())
    }
}

/// The last [`HISTORY_MAX`] entries of a history file, oldest first: its
/// last [`READ_MAX`] bytes at most (less a first line cut there), split at
/// newlines; empty lines are skipped.
fn read_entries(mut file: File) -> io::Result<Vec<Vec<u8>>> {
    let len = file.metadata()?.len();
    let from = len.saturating_sub(READ_MAX);
    file.seek(SeekFrom::Start(from))?;
    let mut bytes = Vec::new();
    file.take(READ_MAX).read_to_end(&mut bytes)?;
    let mut text = &bytes[..];
    if from > 0 {
        // The first line was cut by the seek.
        text = memchr::memchr(b'\n', text).map_or(&[][..], |i| &text[i + 1..]);
    }
    let mut entries: Vec<Vec<u8>> = text
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| l[..l.len().min(LINE_MAX)].to_vec())
        .collect();
    let extra = entries.len().saturating_sub(HISTORY_MAX);
    entries.drain(..extra);
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_directory_follows_xdg_state_home_then_home() {
        let dir = |state: Option<&str>, home: Option<&str>| {
            directory(state.map(OsStr::new), home.map(OsStr::new))
        };
        assert_eq!(dir(Some("/s"), Some("/h")), Some(PathBuf::from("/s/chat")));
        assert_eq!(
            dir(None, Some("/h")),
            Some(PathBuf::from("/h/.local/state/chat"))
        );
        // Empty or relative: ignored, as the XDG specification says.
        assert_eq!(
            dir(Some(""), Some("/h")),
            Some(PathBuf::from("/h/.local/state/chat"))
        );
        assert_eq!(
            dir(Some("rel"), Some("/h")),
            Some(PathBuf::from("/h/.local/state/chat"))
        );
        assert_eq!(dir(None, None), None);
        assert_eq!(dir(Some("rel"), Some("also-rel")), None);
    }

    #[test]
    fn lines_are_appended_in_a_private_file_and_read_back() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("state/chat/history");
        let (mut history, entries) = History::open(&path).unwrap();
        assert!(entries.is_empty());
        let mut all = Vec::new();
        for line in [&b"first"[..], b"caf\xe9 \t x", b"third"] {
            all.push(line.to_vec());
            history.append(line, &all).unwrap();
        }
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        let (_, entries) = History::open(&path).unwrap();
        assert_eq!(entries, all);
    }

    #[test]
    fn the_file_keeps_the_last_entries_only() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("history");
        let (mut history, _) = History::open(&path).unwrap();
        let mut all = Vec::new();
        for i in 0..HISTORY_MAX + 5 {
            all.push(format!("line {i}").into_bytes());
            history.append(&all[all.len() - 1], &all).unwrap();
            let keep = all.len().saturating_sub(HISTORY_MAX);
            all.drain(..keep);
        }
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), HISTORY_MAX);
        assert_eq!(text.lines().next(), Some("line 5"));
        assert_eq!(
            text.lines().last(),
            Some(format!("line {}", HISTORY_MAX + 4).as_str())
        );
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the file written again is private too");
        // A longer file (written by something else) is read to its last
        // entries.
        let mut long = String::new();
        for i in 0..HISTORY_MAX * 2 {
            long.push_str(&format!("old {i}\n\n"));
        }
        std::fs::write(&path, long).unwrap();
        let (_, entries) = History::open(&path).unwrap();
        assert_eq!(entries.len(), HISTORY_MAX);
        assert_eq!(entries[0], format!("old {HISTORY_MAX}").into_bytes());
    }
}

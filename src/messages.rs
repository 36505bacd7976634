//! Status and error lines on standard error, prefixed with the program name
//! (`chatd: connection from 127.0.0.1:51234`), as `nc`, ripgrep and every Unix
//! tool do. Standard output never carries them: it is reserved for what the
//! peer sent.
//!
//! Each line is written with a single `write(2)` on file descriptor 2, so
//! the lines of the two processes of a session never interleave, and the
//! forked child can use them without any lock inherited from its parent.

use std::fmt;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

static PROGRAM: OnceLock<&'static str> = OnceLock::new();
static QUIET: AtomicBool = AtomicBool::new(false);

/// Sets the program name used as prefix and whether status lines are
/// silenced (`-q`). Call once at the start of `main`.
pub fn init(program: &'static str, quiet: bool) {
    let _ = PROGRAM.set(program);
    QUIET.store(quiet, Ordering::Relaxed);
}

/// The program name given to [`init`] (`"chat"` before it is called).
pub fn program() -> &'static str {
    PROGRAM.get().copied().unwrap_or("chat")
}

/// Whether status lines are silenced (`-q`).
pub fn quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}

/// Writes `PROGRAM: message` on standard error, unless `-q` was given.
pub fn status(args: fmt::Arguments<'_>) {
    if !quiet() {
        line(args);
    }
}

/// Writes `PROGRAM: message` on standard error, even with `-q` (errors).
pub fn error(args: fmt::Arguments<'_>) {
    line(args);
}

fn line(args: fmt::Arguments<'_>) {
    let text = format!("{}: {}\n", program(), args);
    // On a terminal, through the line editor's lock, on a fresh line.
    if let Some(terminal) = crate::editor::terminal().filter(|t| t.takes_status()) {
        terminal.status(text.as_bytes());
        return;
    }
    // Errors writing to stderr have nowhere to be reported: ignore them.
    let _ = crate::pump::write_all(std::io::stderr(), text.as_bytes());
}

/// The status line of a session that a protocol word ended (issue 7):
/// `WHO said WORD: session ended`, where WHO is `you` when the word was
/// ours, and `peer` (how the program names its peer: `peer` in `chat`, its
/// address in `chatd`) when it was theirs.
pub fn said(word: crate::words::Word, by: crate::session::Side, peer: &dyn fmt::Display) -> String {
    let word = word.as_str();
    match by {
        crate::session::Side::Local => format!("you said {word}: session ended"),
        crate::session::Side::Peer => format!("{peer} said {word}: session ended"),
    }
}

/// `status!("connection from {peer}")`: a status line (silenced by `-q`).
#[macro_export]
macro_rules! status {
    ($($arg:tt)*) => { $crate::messages::status(format_args!($($arg)*)) };
}

/// `report!("receiver: {err}")`: an error line (never silenced).
#[macro_export]
macro_rules! report {
    ($($arg:tt)*) => { $crate::messages::error(format_args!($($arg)*)) };
}

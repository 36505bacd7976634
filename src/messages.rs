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
static VERBOSE: AtomicBool = AtomicBool::new(false);

/// Sets the program name used as prefix (first call only: the command
/// line parser calls it before parsing, so that usage errors carry it).
pub(crate) fn set_program(program: &'static str) {
    let _ = PROGRAM.set(program);
}

/// Sets the program name used as prefix, whether status lines are
/// silenced (`-q`), and whether the details of `-v` are added to them.
/// `-q` wins over `-v`. Call once at the start of `main`.
pub fn init(program: &'static str, quiet: bool, verbose: bool) {
    set_program(program);
    QUIET.store(quiet, Ordering::Relaxed);
    VERBOSE.store(verbose, Ordering::Relaxed);
}

/// The program name given to [`init`] (`"chat"` before it is called).
pub(crate) fn program() -> &'static str {
    PROGRAM.get().copied().unwrap_or("chat")
}

/// The line editor's prompt: the program name and `> ` (`chat> `).
pub(crate) fn prompt() -> String {
    format!("{}> ", program())
}

/// Whether status lines are silenced (`-q`).
pub(crate) fn quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}

/// Writes `PROGRAM: message` on standard error, unless `-q` was given.
pub(crate) fn status(args: fmt::Arguments<'_>) {
    if !quiet() {
        line(args);
    }
}

/// Whether the details of `-v` are written (`-v` given, `-q` not).
pub(crate) fn verbose() -> bool {
    VERBOSE.load(Ordering::Relaxed) && !quiet()
}

/// Writes `PROGRAM: message` on standard error with `-v` only (and not
/// `-q`): the detail `nc -v` users look for, such as each address tried.
pub(crate) fn detail(args: fmt::Arguments<'_>) {
    if verbose() {
        line(args);
    }
}

/// Writes `PROGRAM: message` on standard error, even with `-q` (errors).
pub(crate) fn error(args: fmt::Arguments<'_>) {
    line(args);
}

fn line(args: fmt::Arguments<'_>) {
    let text = format!("{}: {}\n", program(), args);
    // On a terminal, through the screen's lock, on a fresh line.
    if let Some(terminal) = crate::terminal::terminal().filter(|t| t.takes_status()) {
        terminal.status(text.as_bytes());
        return;
    }
    // Errors writing to stderr have nowhere to be reported: ignore them.
    let _ = crate::pump::write_all(std::io::stderr(), text.as_bytes());
}

/// The end of a status line for input that was read from standard input
/// and will not be sent, because the program stops: `""` when `held` is 0,
/// else `; N bytes of input were not sent` (the project's rule: a byte read
/// is delivered, or the program says it was not and exits non-zero).
pub(crate) fn unsent(held: usize) -> String {
    match held {
        0 => String::new(),
        1 => "; 1 byte of input was not sent".to_owned(),
        n => format!("; {n} bytes of input were not sent"),
    }
}

// The three macros are the crate's own, used as `crate::status!` (lib.rs
// re-exports them): nothing outside the crate writes status lines. Their
// definitions have names of their own, as a macro and a function cannot
// share one in the same module.

/// `status!("connection from {peer}")`: a status line (silenced by `-q`).
macro_rules! status_line {
    ($($arg:tt)*) => { $crate::messages::status(format_args!($($arg)*)) };
}

/// `report!("receiver: {err}")`: an error line (never silenced).
macro_rules! error_line {
    ($($arg:tt)*) => { $crate::messages::error(format_args!($($arg)*)) };
}

/// `detail!("connect to {host} ({ip}) port {port} failed: {why}")`: a
/// status line written with `-v` only.
macro_rules! detail_line {
    ($($arg:tt)*) => { $crate::messages::detail(format_args!($($arg)*)) };
}

pub(crate) use {detail_line as detail, error_line as report, status_line as status};

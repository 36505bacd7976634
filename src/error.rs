//! One error type for the whole crate, and the one place that turns an error
//! into a message line and an exit status (0 normal, 1 runtime failure,
//! 2 usage error from clap, 128+N for signal N; see the EXIT STATUS section of
//! `chat(1)`).

use std::fmt;
use std::io;

use nix::errno::Errno;

/// Why a run of `chatd` or `chat` did not end normally.
#[derive(Debug)]
pub enum Error {
    /// A system call failed. `what` names the operation and its target, in
    /// the style of OpenBSD `nc`'s `err(1, "bind")`: `"bind 0.0.0.0:8080"`,
    /// `"connect to localhost:8080"`. Displayed as `what: strerror(errno)`.
    Sys {
        /// The operation and its target.
        what: String,
        /// The `errno` the call failed with.
        errno: Errno,
    },
    /// A failure described by a whole sentence (`"unknown host x.invalid"`).
    Msg(String),
    /// A failure whose message line was already written (by the receiving
    /// child process, which reports its own read and write errors).
    Reported,
    /// The program was asked to stop by signal N (SIGINT, SIGTERM, SIGHUP):
    /// exit status 128+N, as a shell reports a process killed by N.
    Signal(i32),
}

impl Error {
    /// Builds [`Error::Sys`] from an operation name and an `errno`.
    pub fn sys(what: impl Into<String>, errno: Errno) -> Error {
        Error::Sys {
            what: what.into(),
            errno,
        }
    }

    /// Builds [`Error::Sys`] from an operation name and a `std::io::Error`;
    /// an error without an OS code becomes [`Error::Msg`].
    pub fn io(what: impl Into<String>, err: io::Error) -> Error {
        match err.raw_os_error() {
            Some(code) => Error::sys(what, Errno::from_raw(code)),
            None => Error::Msg(format!("{}: {}", what.into(), err)),
        }
    }

    /// The same error with what to do about it at the end of its line,
    /// after a semicolon: `bind 127.0.0.1:8080: Address already in use;
    /// another program has this port: ...`; unchanged when `hint` is
    /// `None`. The hints themselves are written where the failure is
    /// understood (see `net`).
    pub fn hint(self, hint: Option<impl fmt::Display>) -> Error {
        match hint {
            Some(hint) => Error::Msg(format!("{self}; {hint}")),
            None => self,
        }
    }

    /// The process exit status this error maps to: 128+N for signal N, 1
    /// for everything else (2, the usage error, is clap's to return).
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Signal(n) => 128u8.saturating_add(u8::try_from(*n).unwrap_or(127)),
            _ => 1,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Sys { what, errno } => write!(f, "{what}: {}", errno.desc()),
            Error::Msg(msg) => f.write_str(msg),
            Error::Reported => f.write_str("failed"),
            Error::Signal(n) => write!(f, "stopped by signal {n}"),
        }
    }
}

impl std::error::Error for Error {}

/// The `errno` inside a `std::io::Error`, or `EIO` if it has none.
pub(crate) fn errno_of(err: &io::Error) -> Errno {
    err.raw_os_error().map_or(Errno::EIO, Errno::from_raw)
}

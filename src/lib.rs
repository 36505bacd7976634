//! `chatd` and `chat`: the two-terminal TCP chat of the French networking
//! worksheet ("fiche"), built the way OpenBSD `nc` is: one function per job,
//! one-line errors, half-close on end of file.
//!
//! - [`access`]: who may connect (`--allow`, `--deny`, as ncat);
//! - [`net`]: the listening socket (`SO_REUSEADDR` before `bind`) and the
//!   connecting one (every resolved address in order, `--retry`);
//! - [`session::duplex`]: after `accept`/`connect`, `fork()`: the parent
//!   copies stdin to the socket, the child copies the socket to stdout;
//! - [`session::lockstep`]: `-a`, turns of one line each, no fork;
//! - [`words`]: the protocol words `bye` and `arret`, across read boundaries;
//! - [`display`]: received bytes made safe for a terminal;
//! - [`editor`]: the line editor of a person at a terminal, shared by the
//!   two processes of a session (a `MAP_SHARED` mapping and a lock);
//! - [`signals`]: signal-hook's self-pipe, `SIGCHLD` reaping, 128+N statuses;
//! - [`fork`]: `fork()` in a single-threaded process only, and the child's
//!   set-up (signals, death of the parent);
//! - [`pump`]: `read`/`write` loops that retry `EINTR` and partial writes;
//! - [`zerocopy`]: the kernel paths (`splice`, `sendfile`, `MSG_PEEK`) of both
//!   modes;
//! - [`error`] and [`messages`]: `PROGRAM: what: why` on stderr, exit statuses;
//! - [`broker`]: `chatd --broker`, the discussion room (one process, one
//!   thread, an `epoll` loop, a room state machine without sockets);
//! - [`tls`]: `--tls`: identity, fingerprints, trust on first use, the
//!   rustls configurations and the TLS pump;
//! - [`service`]: `chatd --echo` and `chatd --sum`, one forked child per
//!   connection;
//! - [`server`] and [`client`]: what the `chatd` and `chat` binaries run.

pub mod access;
pub mod broker;
pub mod cli;
pub mod client;
pub mod display;
pub mod editor;
pub mod error;
pub mod fork;
pub mod messages;
pub mod net;
pub mod pump;
pub mod server;
pub mod service;
pub mod session;
pub mod signals;
pub mod tls;
pub mod words;
pub mod zerocopy;

pub use error::Error;

use std::process::ExitCode;

/// Maps the result of a run to the process exit status, writing the error
/// line if there is one: 0 for a normal end, 1 for a runtime failure,
/// 128+N after signal N. (Usage errors exit 2 inside clap's `parse`.)
pub fn exit_status(result: Result<(), Error>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            match &err {
                Error::Signal(_) | Error::Reported => {}
                other => report!("{other}"),
            }
            ExitCode::from(err.exit_code())
        }
    }
}

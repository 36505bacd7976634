//! `chatd` and `chat`: the two-terminal TCP chat of the French networking
//! worksheet ("fiche"), built the way OpenBSD `nc` is: one function per job,
//! one-line errors, half-close on end of file.
//!
//! # Layers
//!
//! Each module uses only the modules of its own layer and of the layers
//! below it, never one above (`tests/layers.rs` reads this list and the
//! sources, and fails on an import that goes up or a cycle). Where a low
//! layer must reach a higher one, the higher one registers a hook at set-up
//! (what the signal pipe does after a wake-up:
//! `signals::Signals::after_drain`). From the bottom:
//!
//! 1. [`error`], [`words`], [`display`]: the error type and its exit
//!    statuses; the protocol words `bye` and `arret`, across read
//!    boundaries; received bytes made safe for a terminal.
//! 2. `signals`: signal-hook's self-pipe, for one `poll(2)` that waits
//!    for input and signals at once, and the terminating signal recorded
//!    for the 128+N status (children are reaped where they are waited
//!    for: `session::duplex`, [`service`]).
//! 3. `pump`: `read`/`write` loops that retry `EINTR` and partial writes.
//! 4. `zerocopy`: the kernel paths (`splice`, `sendfile`, `MSG_PEEK`) of
//!    both modes.
//! 5. `terminal`: the terminal's modes, the screen the two processes of
//!    a session share (a `MAP_SHARED` mapping and a lock), and the modes
//!    restored on every way out (exit, signals, the parent's death).
//! 6. `editor`: the line editor of a person at a terminal (keys, the
//!    line being typed, its history).
//! 7. [`messages`], [`fork`], `session`: `PROGRAM: what: why` status
//!    lines on stderr; `fork()` in a single-threaded process only, and the
//!    child's set-up; one-to-one sessions after `accept`/`connect`
//!    (`session::duplex`: `fork()`, one process per direction;
//!    `session::lockstep`: `-a`, turns of one line each, no fork), where
//!    children are reaped.
//! 8. `net`, `access`, [`tls`]: the listening socket (`SO_REUSEADDR`
//!    before `bind`) and the connecting one (every resolved address in
//!    order, `--retry`); who may connect (`--allow`, `--deny`, as ncat);
//!    `--tls`: identity, fingerprints, trust on first use, the rustls
//!    configurations, the TLS pump and the room's TLS state.
//! 9. [`broker`], [`service`]: `chatd --broker`, the discussion room (one
//!    process, one thread, an `epoll` loop, a room state machine without
//!    sockets); `chatd --echo` and `chatd --sum`, one forked child per
//!    connection (reaped by the server). Each takes its own `Config`.
//! 10. [`cli`]: the command lines (clap), turned into each mode's
//!     `Config`.
//! 11. [`server`], [`client`]: what the `chatd` and `chat` binaries
//!     (`src/bin/`) run.

// 1.
pub mod display;
pub mod error;
pub mod words;

// 2.
pub(crate) mod signals;

// 3.
pub(crate) mod pump;

// 4.
pub(crate) mod zerocopy;

// 5.
pub(crate) mod terminal;

// 6.
pub(crate) mod editor;

// 7.
pub mod fork;
pub mod messages;
pub(crate) mod session;

// 8.
pub(crate) mod access;
pub(crate) mod net;
pub mod tls;

// 9.
pub mod broker;
pub mod service;

// 10.
pub mod cli;

// 11.
pub mod client;
pub mod server;

pub use error::Error;
pub(crate) use messages::{detail, report, status};

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

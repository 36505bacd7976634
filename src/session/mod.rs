//! Sessions: what happens on one connection, from `accept`/`connect` to its
//! end. One file per kind of session ([`duplex`], [`lockstep`]); this file
//! holds what they share: how a session ends, its options and policy. The
//! copy has one file per end:
//! - `input.rs`: [`Input`], standard input's buffer, which outlives a
//!   session, the pieces it is sent in, and how its bytes leave standard
//!   input (copied, or moved by the kernel: [`crate::zerocopy`]);
//! - `outbound.rs`: [`Outbound`], the sending direction on the socket
//!   (counts, half-close, what a reset lost) and [`send_rest`];
//! - `output.rs`: [`Output`], the socket to standard output, where the
//!   protocol words are recognised ([`crate::words`]) and received bytes
//!   made safe for a terminal ([`crate::display`]).
//!
//! [`notice`] holds the lines a busy `chatd` sends a client waiting for its
//! turn, and how `chat` recognises them.

pub mod duplex;
mod input;
pub mod lockstep;
pub mod notice;
mod outbound;
mod output;

pub use input::{Fill, Input};
pub use outbound::{Moved, Outbound, Rest, send_rest};
pub use output::Output;

use std::net::{SocketAddr, TcpStream};
use std::os::fd::RawFd;
use std::time::Duration;

use nix::poll::{PollFd, PollFlags};

use crate::error::Error;
use crate::pump::{stdin, stdout};
use crate::signals::Signals;
use crate::words::Word;

/// Which side of the connection did something.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// This program: typed on its standard input.
    Local,
    /// The other end of the connection.
    Peer,
}

/// The status line of a session that a protocol word ended:
/// `WHO said WORD: session ended`, where WHO is `you` when the word was
/// ours, and `peer` (how the program names its peer: `peer` in `chat`, its
/// address in `chatd`) when it was theirs.
pub fn said(word: Word, by: Side, peer: &dyn std::fmt::Display) -> String {
    let word = word.as_str();
    match by {
        Side::Local => format!("you said {word}: session ended"),
        Side::Peer => format!("{peer} said {word}: session ended"),
    }
}

/// How a session ended normally. Failures are [`crate::Error`]s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The peer's direction ended (end of file on the socket), and ours
    /// too, or the [`Policy`] ends the session on the peer's end of file.
    PeerClosed,
    /// The peer closed the connection before either side sent a byte (the
    /// duplex session tells it apart; elsewhere it is [`End::PeerClosed`]).
    /// A server that refuses the client's address does that: `chatd
    /// --allow/--deny` (like `ncat --allow`) closes at once without a word,
    /// and TCP has no way to say why; the status line says what can be said.
    Silent,
    /// Standard output is a closed pipe (`chat host | head -1`): the program
    /// ends quietly with status 0, as ripgrep does on `BrokenPipe`.
    StdoutClosed,
    /// A protocol word ended the session: `bye` ends the session, `arret`
    /// also stops `chatd` (the worksheet exercises).
    Word {
        /// The word.
        word: Word,
        /// Who said it.
        by: Side,
    },
}

/// What a session interprets. `--raw` turns all of it off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Recognise the protocol words `bye` and `arret` (off with `--raw`).
    pub words: bool,
    /// Send line ends as `\r\n` (`--crlf`).
    pub crlf: bool,
    /// Show received control bytes visibly: on when standard output is a
    /// terminal and `--raw` is not given.
    pub sanitize: bool,
    /// Take the notices of a busy `chatd` ([`notice`]) out of the start of
    /// what is received and say them on standard error: `chat` without
    /// `--raw`.
    pub notices: bool,
}

impl Options {
    /// The options for `--raw` = `raw` and `--crlf` = `crlf`, sanitising
    /// only when standard output is a terminal.
    pub fn new(raw: bool, crlf: bool) -> Options {
        Options {
            words: !raw,
            crlf,
            sanitize: !raw && nix::unistd::isatty(stdout()).unwrap_or(false),
            notices: false,
        }
    }
}

/// When a session ends (WHEN A SESSION ENDS in the man pages). A session
/// has two directions and ends when both have ended, as TCP itself does:
/// ours when standard input reaches end of file (we half-close with
/// `shutdown(SHUT_WR)`) or the peer refuses more data (a reset); theirs
/// when the peer's end of file or a reset arrives. It ends earlier on a
/// protocol word, a terminating signal, standard output gone, and when
/// [`Policy::peer_eof_ends`] says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// `-d`/`--recv-only` (as `nc -d`, `ncat --recv-only`): standard input
    /// is never read; the session ends when the peer's direction ends.
    pub recv_only: bool,
    /// The peer's end of file ends the session at once, even while we still
    /// have something to send: standard input is a terminal (a person is
    /// typing and the other person left), or `chatd` serves one client after
    /// another (what it could not send stays for the next client).
    pub peer_eof_ends: bool,
    /// The program runs one session only (`chat`, `chatd -1`): in the duplex
    /// session the process that copies standard input gives up its standard
    /// output, so whoever reads it sees end of file as soon as the peer's
    /// direction ends.
    pub single: bool,
    /// `--idle-timeout SECS` (the name ncat uses): the connection is closed
    /// when nothing has been received on it for that long, per connection.
    pub idle: Option<Duration>,
}

impl Policy {
    /// The policy of a program that runs one session (`single`) or serves
    /// one client after another, with `-d` = `recv_only` and
    /// `--idle-timeout` = `idle`.
    pub fn new(recv_only: bool, single: bool, idle: Option<Duration>) -> Policy {
        Policy {
            recv_only,
            peer_eof_ends: !single || nix::unistd::isatty(stdin()).unwrap_or(false),
            single,
            idle,
        }
    }
}

/// Which kind of session runs on each connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Both directions at once, one process each (the default).
    Duplex,
    /// Lockstep turns, one line each (`-a`).
    Lockstep {
        /// Who takes the first turn.
        first: lockstep::First,
        /// Show the turn indicator on standard error.
        prompt: bool,
    },
}

impl Kind {
    /// The kind for the `-a` flag `alternating`, with `first` taking the
    /// first turn in lockstep; the turn indicator is shown when
    /// [`prompting`].
    pub fn new(alternating: bool, first: lockstep::First) -> Kind {
        if alternating {
            Kind::Lockstep {
                first,
                prompt: prompting(),
            }
        } else {
            Kind::Duplex
        }
    }
}

/// What every session of a program shares: the signal pipe, what it
/// interprets, when it ends, and (for the duplex child) the descriptors the
/// child must close: the listening socket of `chatd`.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The signal self-pipe.
    pub signals: &'a Signals,
    /// What the session interprets.
    pub options: Options,
    /// When the session ends.
    pub policy: Policy,
    /// Descriptors the duplex child closes after `fork`.
    pub close_in_child: &'a [RawFd],
}

/// Runs one session of `kind` on `stream`, connected to `peer`; see
/// [`duplex::run`] and [`lockstep::run`] for what each returns.
pub fn run(
    kind: Kind,
    stream: TcpStream,
    peer: SocketAddr,
    cx: &Context<'_>,
    input: &mut Input,
) -> Result<End, Error> {
    if !cx.policy.recv_only
        && let Some(editor) = input.editor()
    {
        // The prompt at once, and typing never echoed by the terminal.
        editor.start();
    }
    match kind {
        Kind::Duplex => duplex::run(stream, peer, cx, input),
        Kind::Lockstep { first, prompt } => lockstep::run(stream, peer, cx, input, first, prompt),
    }
}

/// Ctrl-D on an empty line at the line editor ended our direction while
/// the peer's goes on: one status line says so, and how to leave
/// (`chat: input ended; still receiving from 127.0.0.1:8080 (Ctrl-C to
/// quit)`). Nothing for a pipe or a file: scripts get no extra line.
pub(crate) fn still_receiving(input: &mut Input, peer: SocketAddr) {
    if input.editor().is_some() {
        crate::status!("input ended; still receiving from {peer} (Ctrl-C to quit)");
    }
}

/// How long the side that said a protocol word waits for the peer to close
/// after its half-close, in seconds (bounded, so that a peer that never
/// closes cannot hold the program), so that nothing the peer had in
/// flight is lost.
pub const WORD_LINGER: std::time::Duration = std::time::Duration::from_secs(2);

/// Whether to show the lockstep turn indicator: standard input is a
/// terminal (a person types) and `-q` was not given. Never for scripts.
pub fn prompting() -> bool {
    !crate::messages::quiet() && nix::unistd::isatty(stdin()).unwrap_or(false)
}

/// A `poll(2)` entry that asks nothing of standard output, so that only
/// `POLLERR`/`POLLHUP` come back: a pipe whose reader is gone reports
/// `POLLERR` (`chat host | head -1` after `head` exits), a hung-up terminal
/// `POLLHUP`. `None` when descriptor 1 is not open (a write will say so).
pub fn stdout_watch() -> Option<PollFd<'static>> {
    nix::fcntl::fcntl(stdout(), nix::fcntl::FcntlArg::F_GETFD)
        .ok()
        .map(|_| PollFd::new(stdout(), PollFlags::empty()))
}

/// Whether a [`stdout_watch`] entry says the reader of standard output is
/// gone, after `poll(2)` returned.
pub fn stdout_gone(watch: &PollFd<'_>) -> bool {
    watch
        .revents()
        .is_some_and(|r| r.intersects(PollFlags::POLLERR | PollFlags::POLLHUP))
}

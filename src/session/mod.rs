//! Sessions: what happens on one connection, from `accept`/`connect` to its
//! end. One file per kind of session ([`duplex`], [`lockstep`]); this file
//! holds what they share: how a session ends, its options, and the two ends
//! of the copy, [`Input`] (standard input to the socket) and [`Output`] (the
//! socket to standard output), where the protocol words are recognised
//! ([`crate::words`]) and received bytes made safe for a terminal
//! ([`crate::display`]).

pub mod duplex;
pub mod lockstep;

use std::net::{SocketAddr, TcpStream};
use std::os::fd::{BorrowedFd, RawFd};

use nix::errno::Errno;

use crate::display::Sanitizer;
use crate::error::Error;
use crate::pump::{self, BUF_SIZE};
use crate::signals::Signals;
use crate::words::{Word, WordScanner};

/// Which side of the connection did something.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// This program: typed on its standard input.
    Local,
    /// The other end of the connection.
    Peer,
}

/// How a session ended normally. Failures are [`crate::Error`]s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The peer closed the connection (end of file on the socket).
    PeerClosed,
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
}

impl Options {
    /// The options for `--raw` = `raw` and `--crlf` = `crlf`, sanitising
    /// only when standard output is a terminal.
    pub fn new(raw: bool, crlf: bool) -> Options {
        Options {
            words: !raw,
            crlf,
            sanitize: !raw && nix::unistd::isatty(stdout()).unwrap_or(false),
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

/// Runs one session of `kind` on `stream`, connected to `peer`; see
/// [`duplex::run`] and [`lockstep::run`] for what each returns.
/// `close_in_child` is for the duplex child (the listening socket).
pub fn run(
    kind: Kind,
    stream: TcpStream,
    peer: SocketAddr,
    signals: &Signals,
    input: &mut Input,
    options: Options,
    close_in_child: &[RawFd],
) -> Result<End, Error> {
    match kind {
        Kind::Duplex => duplex::run(stream, peer, signals, input, options, close_in_child),
        Kind::Lockstep { first, prompt } => {
            lockstep::run(stream, peer, signals, input, options, first, prompt)
        }
    }
}

/// How long the side that said a protocol word waits for the peer to close
/// after its half-close, in seconds (the issue: "bounded, about 2 s"), so
/// that nothing the peer had in flight is lost.
pub const WORD_LINGER: std::time::Duration = std::time::Duration::from_secs(2);

/// Whether to show the lockstep turn indicator: standard input is a
/// terminal (a person types) and `-q` was not given. Never for scripts.
pub fn prompting() -> bool {
    !crate::messages::quiet() && nix::unistd::isatty(stdin()).unwrap_or(false)
}

/// Standard input, borrowed for the life of the process.
pub fn stdin() -> BorrowedFd<'static> {
    // SAFETY: descriptor 0 is never closed by the parent process (a closed
    // one shows up as EBADF/POLLNVAL and is treated as end of file).
    unsafe { BorrowedFd::borrow_raw(libc::STDIN_FILENO) }
}

/// Standard output, borrowed for the life of the process.
pub fn stdout() -> BorrowedFd<'static> {
    // SAFETY: descriptor 1 is never closed by this program.
    unsafe { BorrowedFd::borrow_raw(libc::STDOUT_FILENO) }
}

/// What [`Input::fill`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fill {
    /// Bytes are buffered, ready for [`Input::take`].
    Ready,
    /// End of file (or a closed descriptor 0), and nothing buffered.
    Eof,
    /// Nothing to read now (a non-blocking descriptor).
    Again,
}

/// A piece of standard input ready to send.
#[derive(Debug)]
pub struct Piece<'a> {
    /// The bytes to send (line ends converted with `--crlf`).
    pub bytes: &'a [u8],
    /// The protocol word whose line ends this piece, if any.
    pub word: Option<Word>,
    /// Whether the piece ends with a newline (a turn ends in lockstep).
    pub line_end: bool,
}

/// Standard input, read in chunks of [`BUF_SIZE`] bytes into a buffer that
/// outlives a session: bytes read but not sent when a session ends (after a
/// protocol word, or one line at a time in lockstep) go to the next one, so
/// `chatd < script` loses nothing between clients.
#[derive(Debug)]
pub struct Input {
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    scanner: Option<WordScanner>,
    crlf: Option<Crlf>,
    wire: Vec<u8>,
}

impl Input {
    /// An empty buffer for standard input, with `options`' words and CRLF.
    pub fn new(options: Options) -> Input {
        Input {
            buf: vec![0; BUF_SIZE].into_boxed_slice(),
            start: 0,
            end: 0,
            scanner: options.words.then(WordScanner::new),
            crlf: options.crlf.then(Crlf::default),
            wire: Vec::new(),
        }
    }

    /// Whether bytes are buffered, waiting for [`Input::take`].
    pub fn buffered(&self) -> bool {
        self.start < self.end
    }

    /// Reads standard input into the buffer if it is empty (one `read(2)`).
    /// Errors: the `errno` of `read(2)` other than `EINTR`, `EAGAIN` and
    /// `EBADF`.
    pub fn fill(&mut self) -> Result<Fill, Errno> {
        if self.buffered() {
            return Ok(Fill::Ready);
        }
        match pump::read(stdin(), &mut self.buf) {
            Ok(0) | Err(Errno::EBADF) => Ok(Fill::Eof),
            Ok(n) => {
                (self.start, self.end) = (0, n);
                Ok(Fill::Ready)
            }
            Err(Errno::EAGAIN) => Ok(Fill::Again),
            Err(e) => Err(e),
        }
    }

    /// Takes the next piece of the buffer: all of it, or with `one_line`
    /// only up to and including the next newline. A piece stops after the
    /// line of a protocol word.
    pub fn take(&mut self, one_line: bool) -> Piece<'_> {
        let pending = &self.buf[self.start..self.end];
        let mut len = pending.len();
        let mut line_end = false;
        if one_line && let Some(i) = pending.iter().position(|&b| b == b'\n') {
            len = i + 1;
            line_end = true;
        }
        let mut word = None;
        if let Some(scanner) = &mut self.scanner
            && let Some((found, offset)) = scanner.scan(&pending[..len])
        {
            (word, len, line_end) = (Some(found), offset, true);
        }
        let piece = &self.buf[self.start..self.start + len];
        self.start += len;
        let bytes = match &mut self.crlf {
            Some(crlf) => {
                self.wire.clear();
                crlf.convert(piece, &mut self.wire);
                &self.wire[..]
            }
            None => piece,
        };
        Piece {
            bytes,
            word,
            line_end,
        }
    }

    /// At end of file: the protocol word on the last line, if it had no
    /// newline (the issue: "a last line without a newline still counts").
    pub fn finish(&mut self) -> Option<Word> {
        self.scanner.as_mut().and_then(WordScanner::finish)
    }
}

/// `--crlf`: a `\n` not already preceded by `\r` is sent as `\r\n` (as
/// `ncat --crlf` does), remembering the last byte across pieces.
#[derive(Debug, Default, Clone, Copy)]
struct Crlf {
    after_cr: bool,
}

impl Crlf {
    fn convert(&mut self, piece: &[u8], out: &mut Vec<u8>) {
        let mut rest = piece;
        while let Some(i) = rest.iter().position(|&b| b == b'\n') {
            let before_cr = if i == 0 {
                self.after_cr
            } else {
                rest[i - 1] == b'\r'
            };
            out.extend_from_slice(&rest[..i]);
            out.extend_from_slice(if before_cr { b"\n" } else { b"\r\n" });
            self.after_cr = false;
            rest = &rest[i + 1..];
        }
        if let Some(&last) = rest.last() {
            self.after_cr = last == b'\r';
        }
        out.extend_from_slice(rest);
    }
}

/// Standard output: received bytes go through the protocol-word scanner
/// and, on a terminal, the [`Sanitizer`], then out with `write(2)`.
#[derive(Debug)]
pub struct Output {
    scanner: Option<WordScanner>,
    sanitizer: Option<Sanitizer>,
    scratch: Vec<u8>,
}

impl Output {
    /// Standard output with `options`' words and sanitising.
    pub fn new(options: Options) -> Output {
        Output {
            scanner: options.words.then(WordScanner::new),
            sanitizer: options.sanitize.then(Sanitizer::new),
            scratch: Vec::new(),
        }
    }

    /// Writes `bytes` from the peer, stopping after the line of a protocol
    /// word. Returns how many bytes of `bytes` were consumed and the word.
    /// Errors: the `errno` of `write(2)` (`EPIPE`: stdout is closed).
    pub fn deliver(&mut self, bytes: &[u8]) -> Result<(usize, Option<Word>), Errno> {
        let (len, word) = match self.scanner.as_mut().and_then(|s| s.scan(bytes)) {
            Some((word, offset)) => (offset, Some(word)),
            None => (bytes.len(), None),
        };
        self.print(&bytes[..len])?;
        Ok((len, word))
    }

    /// At end of stream: flushes the sanitizer and returns the word of an
    /// unterminated last line, if it is one.
    pub fn finish(&mut self) -> Result<Option<Word>, Errno> {
        if let Some(sanitizer) = &mut self.sanitizer {
            self.scratch.clear();
            sanitizer.finish(&mut self.scratch);
            pump::write_all(stdout(), &self.scratch)?;
        }
        Ok(self.scanner.as_mut().and_then(WordScanner::finish))
    }

    /// Writes `bytes` from the peer without looking for protocol words
    /// (after a session's word, what the peer still sends is only shown).
    pub fn print(&mut self, bytes: &[u8]) -> Result<(), Errno> {
        match &mut self.sanitizer {
            Some(sanitizer) => {
                self.scratch.clear();
                sanitizer.push(bytes, &mut self.scratch);
                pump::write_all(stdout(), &self.scratch)
            }
            None => pump::write_all(stdout(), bytes),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Crlf;

    fn crlf(pieces: &[&[u8]]) -> Vec<u8> {
        let mut state = Crlf::default();
        let mut out = Vec::new();
        for piece in pieces {
            state.convert(piece, &mut out);
        }
        out
    }

    #[test]
    fn crlf_converts_bare_newlines_only() {
        assert_eq!(crlf(&[b"a\nb\r\nc\n"]), b"a\r\nb\r\nc\r\n");
        assert_eq!(crlf(&[b"\n\n"]), b"\r\n\r\n");
        assert_eq!(crlf(&[b"no newline"]), b"no newline");
    }

    #[test]
    fn crlf_remembers_a_cr_across_pieces() {
        assert_eq!(crlf(&[b"a\r", b"\nb\n"]), b"a\r\nb\r\n");
        assert_eq!(crlf(&[b"a", b"\n"]), b"a\r\n");
    }
}

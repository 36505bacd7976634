//! Sessions: what happens on one connection, from `accept`/`connect` to its
//! end. One file per kind of session ([`duplex`], [`lockstep`]); this file
//! holds what they share: how a session ends, its options, and the two ends
//! of the copy, [`Input`] (standard input to the socket) and [`Output`] (the
//! socket to standard output), where the protocol words are recognised
//! ([`crate::words`]) and received bytes made safe for a terminal
//! ([`crate::display`]).

pub mod duplex;
pub mod lockstep;

use std::cell::Cell;
use std::net::{SocketAddr, TcpStream};
use std::ops::Range;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::time::Duration;

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{Shutdown, shutdown};

use crate::display::Sanitizer;
use crate::error::Error;
use crate::pump::{self, BUF_SIZE, Sent};
use crate::signals::Signals;
use crate::words::{Word, WordScanner};
use crate::zerocopy::{self, FdKind};

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
    /// The peer's direction ended (end of file on the socket), and ours
    /// too, or the [`Policy`] ends the session on the peer's end of file.
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

/// When a session ends (issue 7, "when a session really ends"). A session
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
    match kind {
        Kind::Duplex => duplex::run(stream, peer, cx, input),
        Kind::Lockstep { first, prompt } => lockstep::run(stream, peer, cx, input, first, prompt),
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
    // SAFETY: descriptor 1 is never closed by this program (the duplex
    // parent of a single session replaces it with /dev/null, see
    // `duplex::run`).
    unsafe { BorrowedFd::borrow_raw(libc::STDOUT_FILENO) }
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

/// What [`Input::fill`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fill {
    /// Bytes are buffered, ready for [`Input::piece`].
    Ready,
    /// End of file (or a closed descriptor 0), and nothing buffered.
    Eof,
    /// Nothing to read now (a non-blocking descriptor).
    Again,
}

/// What ends the piece of standard input being sent ([`Input::piece`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Mark {
    /// The protocol word whose line ends this piece, if any.
    pub word: Option<Word>,
    /// Whether the piece ends with a newline (a turn ends in lockstep).
    pub line_end: bool,
}

/// Standard input, read in chunks of [`BUF_SIZE`] bytes into a buffer that
/// outlives a session: bytes read but not sent when a session ends (after a
/// protocol word, when `chatd`'s client leaves in the middle of a piece, or
/// one line at a time in lockstep) go to the next one, so `chatd < script`
/// loses nothing between clients.
///
/// Sending goes piece by piece: [`Input::piece`] cuts the next piece (or
/// returns the one under way), [`Input::unsent`] is what the socket has not
/// accepted yet, and [`Input::advance`] records what it accepted. A piece
/// leaves the buffer only once wholly sent.
///
/// In `--raw` mode without `--crlf`, a pipe or a regular file on standard
/// input skips the buffer: [`Outbound::send_direct`] moves its bytes to the
/// socket in the kernel ([`crate::zerocopy`]), and bytes leave standard
/// input only once the socket accepted them.
#[derive(Debug)]
pub struct Input {
    buf: Box<[u8]>,
    /// Bytes read and not yet cut into a piece: `buf[start..end]`.
    start: usize,
    end: usize,
    scanner: Option<WordScanner>,
    crlf: Option<Crlf>,
    /// The current piece's bytes as sent, when `--crlf` converts them.
    wire: Vec<u8>,
    /// The unsent bytes of the current piece: in `wire` with `--crlf`,
    /// in `buf` otherwise.
    unsent: Range<usize>,
    /// What ends the current piece.
    mark: Mark,
    /// End of file was read. It stays (an empty `< /dev/null` or a finished
    /// pipe is not read again by the next session), except on a terminal,
    /// where Ctrl-D ends only the current session's input.
    ended: bool,
    terminal: bool,
    /// How bytes leave standard input.
    path: Path,
    /// How [`Input::fill`] reads without waiting, on the copy path.
    read: ReadMode,
    /// The pipe that [`Path::TeeSplice`] reads its copy of standard input
    /// from.
    scan: Option<zerocopy::ScanPipe>,
    /// The bytes in `buf` from the current piece's unsent part to `end`
    /// are a copy: the same bytes are still at the head of standard input,
    /// and [`Outbound::send`] moves them from there ([`Path::TeeSplice`],
    /// [`Path::PreadSendfile`]).
    peeked: bool,
}

/// How standard input's bytes reach the socket, chosen once from what it
/// is and the options (see [`crate::zerocopy`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Path {
    /// `read(2)` into the buffer, then `send(2)`: terminals, `--crlf`
    /// (the bytes sent differ from those read), lockstep, and wherever the
    /// kernel refuses the other paths.
    Copy,
    /// `--raw`: `splice(2)` from the pipe on standard input to the socket.
    Splice,
    /// `--raw`: `sendfile(2)` from the regular file on standard input.
    Sendfile,
    /// Default mode, a pipe: `tee(2)` standard input into the scan pipe,
    /// read that copy and look for the words in it, then `splice(2)` the
    /// original to the socket, up to the end of a word's line. One copy of
    /// each byte instead of two.
    TeeSplice,
    /// Default mode, a regular file: `pread(2)` at the file offset (which
    /// does not move) and look for the words, then `sendfile(2)` the same
    /// bytes, which moves it. One copy of each byte instead of two.
    PreadSendfile,
}

/// How [`Input::fill`] reads standard input without waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReadMode {
    /// `preadv2(RWF_NOWAIT)`: one system call (pipes, sockets).
    NoWait,
    /// `poll(2)` with a zero timeout, then `read(2)` (terminals, and what
    /// refuses `RWF_NOWAIT`).
    Poll,
    /// `read(2)` (regular files: they are always ready).
    Plain,
}

impl Input {
    /// An empty buffer for standard input, with `options`' words and CRLF.
    pub fn new(options: Options) -> Input {
        let kind = zerocopy::kind(stdin());
        let path = match kind {
            _ if options.crlf => Path::Copy,
            FdKind::Pipe if !options.words => Path::Splice,
            FdKind::File if !options.words => Path::Sendfile,
            FdKind::Pipe => Path::TeeSplice,
            FdKind::File => Path::PreadSendfile,
            _ => Path::Copy,
        };
        let scan = match path {
            Path::TeeSplice => zerocopy::ScanPipe::new(BUF_SIZE).ok(),
            _ => None,
        };
        let path = match path {
            Path::TeeSplice if scan.is_none() => Path::Copy,
            path => path,
        };
        if matches!(path, Path::Splice | Path::TeeSplice) {
            // Room for the producer to run ahead: fewer wake-ups on both
            // sides of the pipe, and up to 1 MiB per splice.
            zerocopy::grow_pipe(stdin(), zerocopy::RELAY_SIZE);
        }
        Input {
            buf: vec![0; BUF_SIZE].into_boxed_slice(),
            start: 0,
            end: 0,
            scanner: options.words.then(WordScanner::new),
            crlf: options.crlf.then(Crlf::default),
            wire: Vec::new(),
            unsent: 0..0,
            mark: Mark::default(),
            ended: false,
            terminal: kind == FdKind::Terminal,
            path,
            read: match kind {
                FdKind::File => ReadMode::Plain,
                FdKind::Terminal => ReadMode::Poll,
                _ => ReadMode::NoWait,
            },
            scan,
            peeked: false,
        }
    }

    /// Whether the next bytes go straight from standard input to the
    /// socket ([`Outbound::send_direct`]): nothing is buffered, and
    /// standard input is a pipe or a regular file in `--raw` mode.
    pub fn direct(&self) -> bool {
        matches!(self.path, Path::Splice | Path::Sendfile) && !self.buffered()
    }

    /// Makes the buffered bytes ordinary again after the default mode
    /// looked at them in place (`tee(2)` of a pipe, `pread(2)` of a file,
    /// see [`Input::fill`]): takes out of standard input (with
    /// `read(2)`, the same bytes) what the buffer holds a copy of and the
    /// socket did not accept. Called when a session ends, so that the next
    /// one sends them from the buffer, as the copy path leaves them, and
    /// the word scanner, which has seen them, does not see them twice.
    pub fn settle(&mut self) {
        if !self.peeked {
            return;
        }
        self.peeked = false;
        let from = if self.unsent.is_empty() {
            self.start
        } else {
            self.unsent.start
        };
        let mut at = from;
        while at < self.end {
            match pump::read(stdin(), &mut self.buf[at..self.end]) {
                Ok(n) if n > 0 => at += n,
                // Cannot happen while this process is the only reader:
                // the bytes were there. Keep what was taken.
                _ => break,
            }
        }
        if at < self.end {
            self.end = at;
            self.start = self.start.min(at);
            self.unsent.end = self.unsent.end.min(at);
        }
    }

    /// Whether bytes are buffered, waiting to be sent.
    pub fn buffered(&self) -> bool {
        !self.unsent.is_empty() || self.start < self.end
    }

    /// How many bytes read from standard input are not sent yet, in bytes
    /// (on the wire for the piece under way, as read for the rest).
    pub fn held(&self) -> usize {
        if self.peeked && self.path == Path::PreadSendfile {
            // Still in the file: counted as the file's unread part.
            return 0;
        }
        self.unsent.len() + (self.end - self.start)
    }

    /// Reads standard input into the buffer if it is empty, never waiting
    /// for it: [`Fill::Again`] when nothing is there now (the caller waits
    /// in `poll(2)`, where signals are seen). One `preadv2(RWF_NOWAIT)` on a
    /// pipe or socket, one `read(2)` on a regular file, `poll` then `read`
    /// on a terminal. In the default mode without `--crlf`, a pipe is
    /// looked at without taking the bytes out (`tee(2)` into a scan pipe,
    /// then `read(2)` of that copy) and a regular file read with `pread(2)`
    /// (the offset stays): [`Outbound::send`] then moves the bytes
    /// themselves from standard input. Errors: the `errno` of `read(2)`,
    /// `tee(2)` or `pread(2)` other than `EINTR`, `EAGAIN` and `EBADF`.
    pub fn fill(&mut self) -> Result<Fill, Errno> {
        if self.buffered() {
            return Ok(Fill::Ready);
        }
        if self.ended && !self.terminal {
            return Ok(Fill::Eof);
        }
        match self.path {
            Path::TeeSplice => return self.fill_tee(),
            Path::PreadSendfile => return self.fill_pread(),
            _ => {}
        }
        let got = match self.read {
            ReadMode::Plain => pump::read(stdin(), &mut self.buf),
            ReadMode::NoWait => match pump::read_nowait(stdin(), &mut self.buf) {
                Err(Errno::EOPNOTSUPP | Errno::EINVAL) => {
                    self.read = ReadMode::Poll;
                    return self.fill();
                }
                other => other,
            },
            ReadMode::Poll => {
                let mut fds = [PollFd::new(stdin(), PollFlags::POLLIN)];
                match nix::poll::poll(&mut fds, PollTimeout::ZERO) {
                    Ok(_) if fds[0].any() == Some(true) => pump::read(stdin(), &mut self.buf),
                    Ok(_) | Err(Errno::EINTR) => Err(Errno::EAGAIN),
                    Err(e) => Err(e),
                }
            }
        };
        match got {
            Ok(0) | Err(Errno::EBADF) => {
                self.ended = true;
                Ok(Fill::Eof)
            }
            Ok(n) => {
                (self.start, self.end) = (0, n);
                Ok(Fill::Ready)
            }
            Err(Errno::EAGAIN) => Ok(Fill::Again),
            Err(e) => Err(e),
        }
    }

    /// [`Input::fill`] for [`Path::TeeSplice`]: `tee(2)` what standard
    /// input holds (up to the buffer's size) into the scan pipe, without
    /// taking it out, and read that copy.
    fn fill_tee(&mut self) -> Result<Fill, Errno> {
        let Some(scan) = &self.scan else {
            self.path = Path::Copy;
            return self.fill();
        };
        match scan.copy(stdin(), &mut self.buf) {
            Ok(0) | Err(Errno::EBADF) => {
                self.ended = true;
                Ok(Fill::Eof)
            }
            Ok(n) => {
                (self.start, self.end, self.peeked) = (0, n, true);
                Ok(Fill::Ready)
            }
            Err(Errno::EAGAIN) => Ok(Fill::Again),
            Err(e) if zerocopy::unsupported(e) => {
                self.path = Path::Copy;
                self.fill()
            }
            Err(e) => Err(e),
        }
    }

    /// [`Input::fill`] for [`Path::PreadSendfile`]: `pread(2)` at the file
    /// offset, which stays where it is.
    fn fill_pread(&mut self) -> Result<Fill, Errno> {
        let at = nix::unistd::lseek(stdin(), 0, nix::unistd::Whence::SeekCur);
        match at.and_then(|at| nix::sys::uio::pread(stdin(), &mut self.buf, at)) {
            Ok(0) | Err(Errno::EBADF) => {
                self.ended = true;
                Ok(Fill::Eof)
            }
            Ok(n) => {
                (self.start, self.end, self.peeked) = (0, n, true);
                Ok(Fill::Ready)
            }
            Err(Errno::EINTR) => Ok(Fill::Again),
            Err(_) => {
                self.path = Path::Copy;
                self.fill()
            }
        }
    }

    /// The piece being sent: the one under way if [`Input::unsent`] is not
    /// empty, else the next one cut from the buffer: all of it, or with
    /// `one_line` only up to and including the next newline. A piece stops
    /// after the line of a protocol word. `None` when nothing is buffered.
    pub fn piece(&mut self, one_line: bool) -> Option<Mark> {
        if !self.unsent.is_empty() {
            return Some(self.mark);
        }
        if self.start == self.end {
            return None;
        }
        if one_line && self.peeked {
            // Lockstep sends a line at a time: copying is simpler there,
            // and a turn is one short line.
            self.settle();
            self.path = Path::Copy;
        }
        let pending = &self.buf[self.start..self.end];
        let mut len = pending.len();
        let mut line_end = false;
        if one_line && let Some(i) = memchr::memchr(b'\n', pending) {
            len = i + 1;
            line_end = true;
        }
        let mut word = None;
        if let Some(scanner) = &mut self.scanner
            && let Some((found, offset)) = scanner.scan(&pending[..len])
        {
            (word, len, line_end) = (Some(found), offset, true);
        }
        let cut = self.start..self.start + len;
        self.start += len;
        if self.peeked && word.is_some() {
            // What follows the word's line stays in standard input, unseen.
            self.end = self.start;
        }
        self.unsent = match &mut self.crlf {
            Some(crlf) => {
                self.wire.clear();
                crlf.convert(&self.buf[cut], &mut self.wire);
                0..self.wire.len()
            }
            None => cut,
        };
        self.mark = Mark { word, line_end };
        Some(self.mark)
    }

    /// The bytes of the current piece that the socket has not accepted yet.
    pub fn unsent(&self) -> &[u8] {
        match self.crlf {
            Some(_) => &self.wire[self.unsent.clone()],
            None => &self.buf[self.unsent.clone()],
        }
    }

    /// Records that the first `n` bytes of [`Input::unsent`] were sent.
    pub fn advance(&mut self, n: usize) {
        self.unsent.start = (self.unsent.start + n).min(self.unsent.end);
    }

    /// At end of file: the protocol word on the last line, if it had no
    /// newline (the issue: "a last line without a newline still counts").
    pub fn finish(&mut self) -> Option<Word> {
        self.scanner.as_mut().and_then(WordScanner::finish)
    }
}

/// The sending direction of a session on its socket: sends [`Input`]'s
/// pieces, counts the bytes sent, half-closes, and says what a reset lost.
#[derive(Debug)]
pub struct Outbound<'a> {
    stream: &'a TcpStream,
    peer: SocketAddr,
    /// Bytes the socket accepted in this session.
    sent: Cell<u64>,
    /// The socket is non-blocking: [`Outbound::send_direct`] may be used.
    nonblocking: bool,
}

impl<'a> Outbound<'a> {
    /// The sending direction of `stream`, connected to `peer`.
    pub fn new(stream: &'a TcpStream, peer: SocketAddr) -> Outbound<'a> {
        Outbound {
            stream,
            peer,
            sent: Cell::new(0),
            nonblocking: false,
        }
    }

    /// The sending direction of `stream`, connected to `peer`, whose
    /// socket the caller made non-blocking ([`zerocopy::set_nonblocking`]),
    /// so that [`Outbound::send_direct`] never blocks.
    pub fn nonblocking(stream: &'a TcpStream, peer: SocketAddr) -> Outbound<'a> {
        let mut out = Outbound::new(stream, peer);
        out.nonblocking = true;
        out
    }

    /// Whether the next bytes of `input` go straight to the socket with
    /// [`Outbound::send_direct`]: [`Input::direct`], on a non-blocking
    /// socket.
    pub fn direct(&self, input: &Input) -> bool {
        self.nonblocking && input.direct()
    }

    /// Sends the unsent bytes of `input`'s current piece with
    /// [`pump::send_watching`] (never blocking; `wake` is the signal pipe),
    /// recording what the socket accepted. A piece that [`Input::fill`]
    /// only looked at, still at the head of standard input, goes with
    /// `splice(2)` or `sendfile(2)` instead, on a non-blocking socket (on a
    /// blocking one it is first taken out: [`Input::settle`]). Errors:
    /// those of `send(2)`, `splice(2)`, `sendfile(2)` (`EPIPE`,
    /// `ECONNRESET`: the peer reset the connection).
    pub fn send(&self, input: &mut Input, wake: BorrowedFd<'_>) -> Result<Sent, Errno> {
        if input.peeked {
            if self.nonblocking {
                return self.send_peeked(input, wake);
            }
            input.settle();
        }
        let mut rest = input.unsent();
        let before = rest.len();
        let result = pump::send_watching(self.stream.as_fd(), &mut rest, wake);
        let n = before - rest.len();
        input.advance(n);
        self.sent.set(self.sent.get() + n as u64);
        result
    }

    /// [`Outbound::send`] for a piece whose bytes are still at the head of
    /// standard input ([`Path::TeeSplice`], [`Path::PreadSendfile`]): moves
    /// exactly those bytes with `splice(2)` or `sendfile(2)`, waiting in
    /// `poll(2)` for room or for `wake`.
    fn send_peeked(&self, input: &mut Input, wake: BorrowedFd<'_>) -> Result<Sent, Errno> {
        let sock = self.stream.as_fd();
        while !input.unsent.is_empty() {
            let len = input.unsent.len();
            let moved = match input.path {
                Path::TeeSplice => zerocopy::splice(stdin(), sock, len),
                Path::PreadSendfile => zerocopy::sendfile(sock, stdin(), len),
                _ => Err(Errno::EINVAL),
            };
            match moved {
                // Someone else took the bytes out of standard input.
                Ok(0) => return Err(Errno::EIO),
                Ok(n) => {
                    input.advance(n);
                    self.sent.set(self.sent.get() + n as u64);
                }
                Err(Errno::EAGAIN) => {
                    let mut fds = [
                        PollFd::new(wake, PollFlags::POLLIN),
                        PollFd::new(sock, PollFlags::POLLOUT),
                    ];
                    match nix::poll::poll(&mut fds, PollTimeout::NONE) {
                        Ok(_) | Err(Errno::EINTR) => {}
                        Err(e) => return Err(e),
                    }
                    if fds[0].any() == Some(true) {
                        return Ok(Sent::Woken);
                    }
                }
                Err(e) if zerocopy::unsupported(e) => {
                    input.settle();
                    input.path = Path::Copy;
                    return self.send(input, wake);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(Sent::All)
    }

    /// Moves bytes from standard input straight to the socket, for an
    /// [`Input::direct`] input: one `splice(2)` (a pipe) or `sendfile(2)`
    /// (a regular file) of at most [`zerocopy::CHUNK`] bytes, never
    /// waiting (the duplex session's socket is non-blocking). Bytes leave
    /// standard input only once the socket accepted them. When the kernel
    /// refuses the call (`EINVAL`, `ENOSYS`, `EOPNOTSUPP`), `input` falls
    /// back to the copy path for good, silently.
    ///
    /// Errors: those of `splice(2)`/`sendfile(2)` on the socket (`EPIPE`,
    /// `ECONNRESET`: the peer reset the connection).
    pub fn send_direct(&self, input: &mut Input) -> Result<Moved, Errno> {
        if input.ended {
            return Ok(Moved::Eof);
        }
        let sock = self.stream.as_fd();
        let moved = match input.path {
            Path::Splice => zerocopy::splice(stdin(), sock, zerocopy::CHUNK),
            Path::Sendfile => zerocopy::sendfile(sock, stdin(), zerocopy::CHUNK),
            _ => return Ok(Moved::Some),
        };
        match moved {
            Ok(0) | Err(Errno::EBADF) => {
                input.ended = true;
                Ok(Moved::Eof)
            }
            Ok(n) => {
                self.sent.set(self.sent.get() + n as u64);
                Ok(Moved::Some)
            }
            Err(Errno::EAGAIN) => Ok(Moved::Blocked),
            Err(e) if zerocopy::unsupported(e) => {
                input.path = Path::Copy;
                Ok(Moved::Some)
            }
            Err(e) => Err(e),
        }
    }

    /// After [`Moved::Blocked`]: waits until standard input has bytes and
    /// the socket has room, or a signal arrives (`Ok(true)`: the caller
    /// checks [`Signals`]). Errors: those of `poll(2)`.
    pub fn wait_direct(&self, signals: &Signals) -> Result<bool, Errno> {
        let woken = zerocopy::wait(Some(signals.fd()), stdin(), self.stream.as_fd(), None)?;
        Ok(woken == zerocopy::Wait::Woken)
    }

    /// Our direction ended at end of file. If this session sent anything,
    /// half-close (`shutdown(SHUT_WR)`: "I have nothing more to send"). A
    /// session that had nothing to send from its start is receive-only: it
    /// does not half-close early, so that a peer that takes end of file
    /// for "the other side left" keeps talking; the connection closes when
    /// the peer's direction ends.
    pub fn end(&self) {
        if self.sent.get() > 0 {
            self.half_close();
        }
    }

    /// `shutdown(SHUT_WR)`. `ENOTCONN` (the peer already reset the
    /// connection) is not an error here: the receiving side reports it.
    pub fn half_close(&self) {
        let _ = shutdown(self.stream.as_raw_fd(), Shutdown::Write);
    }

    /// The error for a failed send with `errno`: one line saying that the
    /// peer reset the connection and how many bytes were not delivered,
    /// when it did (`EPIPE`, `ECONNRESET`), else `write to PEER: REASON`.
    pub fn failed(&self, errno: Errno, input: &Input) -> Error {
        match errno {
            Errno::EPIPE | Errno::ECONNRESET => self.reset(input),
            e => Error::sys(format!("write to {}", self.peer), e),
        }
    }

    /// The peer reset the connection: `connection reset by PEER`, with a
    /// lower bound of the input bytes not delivered when it is not zero:
    /// those sent but never acknowledged (`TCP_INFO`'s `tcpi_bytes_acked`),
    /// those read from standard input and not sent, and, for a regular
    /// file, those not read yet. (Acknowledged bytes may still have been
    /// lost unread in the peer's buffer, hence "at least".)
    pub fn reset(&self, input: &Input) -> Error {
        let unacked = bytes_acked(self.stream).map_or(0, |a| self.sent.get().saturating_sub(a));
        let lost = unacked + input.held() as u64 + unread_stdin();
        if lost == 0 {
            Error::Msg(format!("connection reset by {}", self.peer))
        } else {
            Error::Msg(format!(
                "connection reset by {}: at least {lost} bytes of input not delivered",
                self.peer
            ))
        }
    }
}

impl Outbound<'_> {
    /// The error that ends a connection on which nothing was received for
    /// `idle` (`--idle-timeout`): `nothing received from PEER for N s:
    /// connection closed (--idle-timeout)`.
    pub fn idle(&self, idle: Option<Duration>) -> Error {
        let secs = idle.map_or(0.0, |d| d.as_secs_f64());
        Error::Msg(format!(
            "nothing received from {} for {secs} s: connection closed (--idle-timeout)",
            self.peer
        ))
    }
}

/// What [`Outbound::send_direct`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moved {
    /// Bytes were sent, or the path fell back to copying: call again.
    Some,
    /// Nothing now: standard input is empty or the socket full; wait with
    /// [`Outbound::wait_direct`].
    Blocked,
    /// Standard input reached end of file.
    Eof,
}

/// Bytes of standard input not read yet, when it is a regular file (its
/// size less the file offset); 0 for anything else.
fn unread_stdin() -> u64 {
    let Ok(stat) = nix::sys::stat::fstat(stdin()) else {
        return 0;
    };
    if stat.st_mode & libc::S_IFMT != libc::S_IFREG {
        return 0;
    }
    let offset = nix::unistd::lseek(stdin(), 0, nix::unistd::Whence::SeekCur).unwrap_or(0);
    u64::try_from(stat.st_size.saturating_sub(offset)).unwrap_or(0)
}

/// Bytes of data the peer acknowledged on `stream` (`TCP_INFO`'s
/// `tcpi_bytes_acked`, Linux 4.1 and later); `None` where unknown.
fn bytes_acked(stream: &TcpStream) -> Option<u64> {
    // SAFETY: tcp_info is a plain C struct for which all-zero is valid.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: info and len are valid for writes of len bytes; the kernel
    // writes at most len bytes and stores the length it wrote.
    let rc = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&raw mut info).cast(),
            &mut len,
        )
    };
    let needed = std::mem::offset_of!(libc::tcp_info, tcpi_bytes_acked) + 8;
    (rc == 0 && len as usize >= needed).then_some(info.tcpi_bytes_acked)
}

/// How [`send_rest`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rest {
    /// Standard input reached end of file; our direction is over.
    Ended,
    /// A protocol word was sent (and the socket half-closed).
    Word(Word),
}

/// Sends the rest of standard input once the peer's direction has ended,
/// until end of file (then [`Outbound::end`]) or a protocol word's line
/// (then a half-close). Waits in `poll(2)` on standard input and the signal
/// pipe, so an idle pipe keeps the session open until it ends, and Ctrl-C
/// still works.
///
/// Errors: [`Error::Signal`]; a reset by the peer ([`Outbound::reset`]);
/// reading standard input failed.
pub fn send_rest(out: &Outbound<'_>, input: &mut Input, signals: &Signals) -> Result<Rest, Error> {
    loop {
        if signals.pending() {
            signals.check()?;
        }
        if out.direct(input) {
            match out.send_direct(input) {
                Ok(Moved::Some) => {}
                Ok(Moved::Blocked) => {
                    if out
                        .wait_direct(signals)
                        .map_err(|e| Error::sys("poll", e))?
                    {
                        signals.check()?;
                    }
                }
                Ok(Moved::Eof) => {
                    out.end();
                    return Ok(Rest::Ended);
                }
                Err(e) => return Err(out.failed(e, input)),
            }
            continue;
        }
        match input.fill().map_err(|e| Error::sys("read from stdin", e))? {
            Fill::Ready => {}
            Fill::Again => {
                let mut fds = [
                    PollFd::new(signals.fd(), PollFlags::POLLIN),
                    PollFd::new(stdin(), PollFlags::POLLIN),
                ];
                signals.poll(&mut fds, PollTimeout::NONE)?;
                continue;
            }
            Fill::Eof => {
                out.end();
                return Ok(input.finish().map_or(Rest::Ended, Rest::Word));
            }
        }
        let Some(mark) = input.piece(false) else {
            continue;
        };
        loop {
            match out.send(input, signals.fd()) {
                Ok(Sent::All) => break,
                Ok(Sent::Woken) => signals.check()?,
                Err(e) => return Err(out.failed(e, input)),
            }
        }
        if let Some(word) = mark.word {
            out.half_close();
            return Ok(Rest::Word(word));
        }
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
        while let Some(i) = memchr::memchr(b'\n', rest) {
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

    /// Looks for a protocol word in `bytes` from the peer without writing
    /// them (the child's `MSG_PEEK` and `splice` path): returns how many of
    /// them to deliver, up to the end of a word's line, and the word.
    pub fn scan(&mut self, bytes: &[u8]) -> (usize, Option<Word>) {
        match self.scanner.as_mut().and_then(|s| s.scan(bytes)) {
            Some((word, offset)) => (offset, Some(word)),
            None => (bytes.len(), None),
        }
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

//! The lockstep (half-duplex) session, `-a/--alternating` (worksheet
//! question 3). No fork: one process walks the worksheet's cycle.
//!
//! - `chat -a` speaks first: 1) read a line from standard input, 2) send it,
//!   3) wait for one line from the server, 4) print it; repeat.
//! - `chatd -a` listens first: 5) wait for one line from the client, 6)
//!   print it, 7) read a line from standard input, 8) send it; repeat.
//!
//! `chatd --speak-first` and `chat --listen-first` swap the order. Both
//! speaking first works (the two lines cross); both listening first waits
//! forever, the deadlock the worksheet asks about, which the turn indicator
//! makes visible.
//!
//! A line may be long and arrive in pieces: each piece is printed (or sent)
//! as it comes, through buffers of [`BUF_SIZE`] bytes, and the turn changes
//! at the newline; no line is ever held whole in memory. A last line
//! without a newline at end of file still counts.
//!
//! A session ends as a duplex one does ([`crate::session::Policy`]), with
//! one difference: end of file on standard input always half-closes, even
//! when nothing was sent, because that end of file is how the peer learns
//! that the turns are over (a receive-only side that kept quiet would leave
//! the peer waiting for its turn forever; `-d` is refused with `-a`). Then
//! what the peer still sends is printed until it closes. When the peer's
//! direction ends first, a side whose standard input is not a terminal
//! sends the rest of it, without turns, then half-closes; a terminal ends
//! the session at once. The protocol words, signals and standard output
//! gone end the session as in [`crate::session::duplex`].

use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsFd;
use std::time::Instant;

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{setsockopt, sockopt};
use nix::sys::time::{TimeVal, TimeValLike};

use crate::error::Error;
use crate::messages;
use crate::pump::{self, BUF_SIZE, Drained, Sent, stdin};
use crate::session::{
    Context, End, Fill, Input, Outbound, Output, Policy, Rest, Side, WORD_LINGER, send_rest,
    stdout_gone, stdout_watch,
};
use crate::signals::{self, Signals};
use crate::words::Word;

/// Who takes the first turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum First {
    /// Send a line first (the default of `chat -a`; `chatd --speak-first`).
    Speak,
    /// Wait for a line first (the default of `chatd -a`; `chat --listen-first`).
    Listen,
}

impl First {
    /// `self`, the program's default, or the other turn when `swap` (the
    /// option that swaps it: `chat --listen-first`, `chatd --speak-first`).
    pub fn swapped_if(self, swap: bool) -> First {
        match (self, swap) {
            (_, false) => self,
            (First::Speak, true) => First::Listen,
            (First::Listen, true) => First::Speak,
        }
    }
}

/// Runs one lockstep session on `stream`, connected to `peer`, taking the
/// `first` turn, reading standard input through `input` (whose unsent
/// lines carry over to the next session).
///
/// When `prompt` is set (standard input is a terminal and `-q` is not
/// given), a turn indicator goes to standard error: `PROGRAM> ` when it is
/// your turn to type, `(waiting for peer...)` when it is the peer's.
///
/// Returns how the session ended. Errors: [`Error::Signal`]; a reset by
/// the peer ([`Outbound::reset`]); [`Error::Sys`] when reading stdin, the
/// socket, or writing fails.
pub fn run(
    stream: TcpStream,
    peer: SocketAddr,
    cx: &Context<'_>,
    input: &mut Input,
    first: First,
    prompt: bool,
) -> Result<End, Error> {
    // One short line per turn: Nagle's algorithm would hold the second
    // piece of a long line until the peer's delayed ACK (up to 40 ms).
    let _ = setsockopt(&stream, sockopt::TcpNoDelay, &true);
    // The peer's line is waited for in a blocking read (see
    // `Lockstep::receive_waiting`), which this timeout keeps interruptible.
    // With the line editor, keys are read during the peer's turn too: the
    // wait is a poll on the socket and the terminal, not a timed read.
    let editing = input.editor().is_some();
    let timed = !editing
        && setsockopt(
            &stream,
            sockopt::ReceiveTimeout,
            &TimeVal::milliseconds(RECV_TICK.as_millis() as i64),
        )
        .is_ok();
    Lockstep {
        stream: &stream,
        out: Outbound::new(&stream, peer),
        peer,
        signals: cx.signals,
        policy: cx.policy,
        output: Output::new(cx.options),
        rx: vec![0; BUF_SIZE].into_boxed_slice(),
        rx_start: 0,
        rx_end: 0,
        peer_eof: false,
        peer_reset: false,
        last_rx: Instant::now(),
        prompt,
        timed,
        editing,
        watch: stdout_watch(),
    }
    .run(input, first)
}

/// The receive timeout (`SO_RCVTIMEO`) of a lockstep socket: how often a
/// read waiting for the peer's line wakes up to see whether the reader of
/// standard output left (250 ms). A signal interrupts the read at once:
/// socket calls with a timeout are never restarted (`signal(7)`).
pub const RECV_TICK: std::time::Duration = std::time::Duration::from_millis(250);

/// One turn's result.
enum Turn {
    /// The turn ended at a newline: the other side's turn.
    Next,
    /// Our standard input reached end of file (socket half-closed).
    InputEnded,
    /// The session is over.
    Over(End),
}

struct Lockstep<'a> {
    stream: &'a TcpStream,
    out: Outbound<'a>,
    peer: SocketAddr,
    signals: &'a Signals,
    policy: Policy,
    output: Output,
    /// Bytes received from the peer and not printed yet: `rx[rx_start..rx_end]`.
    rx: Box<[u8]>,
    rx_start: usize,
    rx_end: usize,
    /// The socket reached end of file.
    peer_eof: bool,
    /// The peer reset the connection (`ECONNRESET`): its end of file, and
    /// a failure reported as [`Outbound::reset`] once the turn is over.
    peer_reset: bool,
    /// When bytes last arrived (or the session began), for
    /// `--idle-timeout`.
    last_rx: Instant,
    prompt: bool,
    /// The socket has its [`RECV_TICK`] receive timeout.
    timed: bool,
    /// Standard input has the line editor ([`crate::editor`]): its prompt
    /// is the turn indicator, and typing goes on during the peer's turn.
    editing: bool,
    /// [`stdout_watch`], looked up once.
    watch: Option<PollFd<'static>>,
}

impl Lockstep<'_> {
    fn run(&mut self, input: &mut Input, first: First) -> Result<End, Error> {
        let mut speaking = first == First::Speak;
        let mut input_open = true;
        loop {
            let turn = if speaking && input_open {
                if !self.editing {
                    self.indicate(&format!("{}> ", messages::program()));
                }
                self.speak(input)?
            } else {
                if input_open {
                    self.indicate("(waiting for peer...)\n");
                }
                self.listen(input)?
            };
            match turn {
                Turn::Next => speaking = !speaking,
                Turn::InputEnded => input_open = false,
                // The peer's failure after our own word does not spoil the
                // session (as in the duplex session).
                Turn::Over(
                    end @ End::Word {
                        by: Side::Local, ..
                    },
                ) => return Ok(end),
                Turn::Over(_) if self.peer_reset => return Err(self.out.reset(input)),
                Turn::Over(end) if input_open => return self.after_peer(end, input),
                Turn::Over(end) => return Ok(end),
            }
        }
    }

    /// The session would end with `end` while our input is still open. If
    /// that is because the peer's direction ended, standard input is not a
    /// terminal and the program serves one session, the rest of standard
    /// input is still sent, without turns ([`send_rest`]).
    fn after_peer(&self, end: End, input: &mut Input) -> Result<End, Error> {
        if end != End::PeerClosed || self.policy.peer_eof_ends {
            return Ok(end);
        }
        Ok(match send_rest(&self.out, input, self.signals)? {
            Rest::Ended => End::PeerClosed,
            Rest::Word(word) => End::Word {
                word,
                by: Side::Local,
            },
        })
    }

    /// The turn indicator, on standard error, only when prompting.
    fn indicate(&self, text: &str) {
        if !self.prompt {
            return;
        }
        match crate::terminal::terminal().filter(|t| t.takes_status()) {
            // Its own line, above the line being typed.
            Some(terminal) => terminal.status(text.as_bytes()),
            None => {
                let _ = pump::write_all(std::io::stderr(), text.as_bytes());
            }
        }
    }

    /// Our turn: sends one line of standard input, piece by piece.
    fn speak(&mut self, input: &mut Input) -> Result<Turn, Error> {
        loop {
            if !input.buffered() {
                // A line typed ahead with the editor is sent without waiting.
                let typed_ahead = input.editor().is_some_and(|e| e.has_lines());
                if !typed_ahead && let Some(end) = self.wait_for_input()? {
                    return Ok(Turn::Over(end));
                }
                match input.fill().map_err(|e| Error::sys("read from stdin", e))? {
                    Fill::Ready => {}
                    Fill::Again => continue,
                    Fill::Eof => {
                        self.out.half_close();
                        return match input.finish() {
                            Some(word) => self.linger(word),
                            None => Ok(Turn::InputEnded),
                        };
                    }
                }
            }
            let Some(mark) = input.piece(true) else {
                continue;
            };
            self.send(input)?;
            if let Some(word) = mark.word {
                return self.linger(word);
            }
            if mark.line_end {
                return Ok(Turn::Next);
            }
        }
    }

    /// Waits until standard input is readable, watching the socket too: the
    /// peer's close ends the session at once (its last bytes printed), and
    /// what it sends out of turn is kept for our next listening turn.
    fn wait_for_input(&mut self) -> Result<Option<End>, Error> {
        loop {
            let room = self.rx_end < self.rx.len() && !self.peer_eof;
            let mut fds = vec![
                PollFd::new(self.signals.fd(), PollFlags::POLLIN),
                PollFd::new(stdin(), PollFlags::POLLIN),
            ];
            if room {
                fds.push(PollFd::new(self.stream.as_fd(), PollFlags::POLLIN));
            }
            fds.extend(self.watch.clone());
            self.signals.poll(&mut fds, self.idle_wait()?)?;
            if fds.len() > 2 + usize::from(room) && stdout_gone(&fds[fds.len() - 1]) {
                return Ok(Some(End::StdoutClosed));
            }
            if room && fds[2].any() == Some(true) {
                self.receive()?;
                if self.peer_eof {
                    // End the `PROGRAM> ` line first: what the peer sent last
                    // must not look typed.
                    if !self.editing {
                        self.indicate("\n");
                    }
                    return self.drain_rx().map(Some);
                }
            }
            if fds[1].any() == Some(true) {
                return Ok(None);
            }
        }
    }

    /// The peer's turn: prints one line, piece by piece.
    fn listen(&mut self, input: &mut Input) -> Result<Turn, Error> {
        loop {
            if self.rx_start == self.rx_end {
                if self.peer_eof {
                    return self.finish_output().map(Turn::Over);
                }
                if self.timed {
                    if let Some(end) = self.receive_waiting()? {
                        return Ok(Turn::Over(end));
                    }
                    continue;
                }
                let mut fds = vec![
                    PollFd::new(self.signals.fd(), PollFlags::POLLIN),
                    PollFd::new(self.stream.as_fd(), PollFlags::POLLIN),
                ];
                fds.extend(self.watch.clone());
                let watched = fds.len() == 3;
                if self.editing {
                    // Typing goes on during the peer's turn.
                    fds.push(PollFd::new(stdin(), PollFlags::POLLIN));
                }
                self.signals.poll(&mut fds, self.idle_wait()?)?;
                if self.editing
                    && fds[fds.len() - 1].any() == Some(true)
                    && let Some(editor) = input.editor()
                {
                    editor
                        .pump()
                        .map_err(|e| Error::sys("read from stdin", e))?;
                }
                if fds[1].any() == Some(true) {
                    self.receive()?;
                } else if watched && stdout_gone(&fds[2]) {
                    return Ok(Turn::Over(End::StdoutClosed));
                }
                continue;
            }
            let pending = &self.rx[self.rx_start..self.rx_end];
            let (len, line_end) = match memchr::memchr(b'\n', pending) {
                Some(i) => (i + 1, true),
                None => (pending.len(), false),
            };
            let (used, word) = match self.output.deliver(&pending[..len]) {
                Ok(done) => done,
                Err(Errno::EPIPE) => return Ok(Turn::Over(End::StdoutClosed)),
                Err(e) => return Err(Error::sys("write to stdout", e)),
            };
            self.rx_start += used;
            if let Some(word) = word {
                return Ok(Turn::Over(End::Word {
                    word,
                    by: Side::Peer,
                }));
            }
            if line_end {
                return Ok(Turn::Next);
            }
        }
    }

    /// The `poll(2)` timeout until `--idle-timeout` runs out; the idle
    /// error ([`Outbound::idle`]) once it has. In lockstep the clock runs
    /// during our own turns too: the option counts time without receiving.
    fn idle_wait(&self) -> Result<PollTimeout, Error> {
        let Some(idle) = self.policy.idle else {
            return Ok(PollTimeout::NONE);
        };
        match (self.last_rx + idle).checked_duration_since(Instant::now()) {
            Some(left) if !left.is_zero() => Ok(signals::timeout(left)),
            _ => Err(self.out.idle(self.policy.idle)),
        }
    }

    /// Makes room at the end of `rx` (compacting it).
    fn compact(&mut self) {
        if self.rx_start == self.rx_end {
            (self.rx_start, self.rx_end) = (0, 0);
        } else if self.rx_end == self.rx.len() && self.rx_start > 0 {
            self.rx.copy_within(self.rx_start..self.rx_end, 0);
            (self.rx_start, self.rx_end) = (0, self.rx_end - self.rx_start);
        }
    }

    /// Waits for the peer's bytes in a blocking `read(2)`: one system call
    /// per line where `poll` then `read` took two. The socket's
    /// [`RECV_TICK`] timeout makes a signal interrupt the read (`EINTR`,
    /// then [`Signals::check`]) and wakes it to see whether the reader of
    /// standard output left (`Some(End::StdoutClosed)`) or whether
    /// `--idle-timeout` ran out. A signal that arrives just before the read
    /// starts is seen at the next tick.
    ///
    /// Errors: [`Error::Signal`]; [`Outbound::idle`]; reading the socket
    /// failed (a reset is the peer's end, reported once the turn is over).
    fn receive_waiting(&mut self) -> Result<Option<End>, Error> {
        loop {
            if self.signals.pending() {
                self.signals.check()?;
            }
            self.compact();
            match nix::unistd::read(self.stream, &mut self.rx[self.rx_end..]) {
                Ok(0) => self.peer_eof = true,
                Ok(n) => {
                    self.rx_end += n;
                    self.last_rx = Instant::now();
                }
                Err(Errno::EINTR) => continue,
                Err(Errno::ECONNRESET) => (self.peer_eof, self.peer_reset) = (true, true),
                Err(Errno::EAGAIN) => {
                    // A tick: `--idle-timeout` may have run out.
                    self.idle_wait()?;
                    let mut fds: Vec<_> = self.watch.clone().into_iter().collect();
                    let _ = nix::poll::poll(&mut fds, PollTimeout::ZERO);
                    if fds.first().is_some_and(stdout_gone) {
                        return Ok(Some(End::StdoutClosed));
                    }
                    continue;
                }
                Err(e) => return Err(Error::sys(format!("read from {}", self.peer), e)),
            }
            return Ok(None);
        }
    }

    /// Reads from the socket into the free end of `rx` (compacting first).
    fn receive(&mut self) -> Result<(), Error> {
        self.compact();
        match pump::read(self.stream, &mut self.rx[self.rx_end..]) {
            Ok(0) => self.peer_eof = true,
            Err(Errno::ECONNRESET) => (self.peer_eof, self.peer_reset) = (true, true),
            Ok(n) => {
                self.rx_end += n;
                self.last_rx = Instant::now();
            }
            Err(Errno::EAGAIN) => {}
            Err(e) => return Err(Error::sys(format!("read from {}", self.peer), e)),
        }
        Ok(())
    }

    /// The peer closed: prints what it sent before, whatever the turn.
    fn drain_rx(&mut self) -> Result<End, Error> {
        while self.rx_start < self.rx_end {
            let pending = &self.rx[self.rx_start..self.rx_end];
            match self.output.deliver(pending) {
                Ok((_, Some(word))) => {
                    return Ok(End::Word {
                        word,
                        by: Side::Peer,
                    });
                }
                Ok((used, None)) => self.rx_start += used,
                Err(Errno::EPIPE) => return Ok(End::StdoutClosed),
                Err(e) => return Err(Error::sys("write to stdout", e)),
            }
        }
        self.finish_output()
    }

    /// End of file from the peer, all printed: the last line's word counts.
    fn finish_output(&mut self) -> Result<End, Error> {
        match self.output.finish() {
            Ok(Some(word)) => Ok(End::Word {
                word,
                by: Side::Peer,
            }),
            Ok(None) => Ok(End::PeerClosed),
            Err(Errno::EPIPE) => Ok(End::StdoutClosed),
            Err(e) => Err(Error::sys("write to stdout", e)),
        }
    }

    /// We said `word` (and half-closed): prints what the peer still sends
    /// until it closes, for at most [`WORD_LINGER`].
    fn linger(&mut self, word: Word) -> Result<Turn, Error> {
        self.out.half_close();
        let deadline = Instant::now() + WORD_LINGER;
        let pending = &self.rx[self.rx_start..self.rx_end];
        let printed = self.output.print(pending);
        self.rx_start = self.rx_end;
        if printed.is_ok() && !self.peer_eof {
            let mut buf = [0u8; 4096];
            let output = &mut self.output;
            let mut print = |bytes: &[u8]| output.print(bytes);
            let (sock, signals) = (self.stream.as_fd(), self.signals);
            let wake = Some(signals.fd());
            while pump::drain(sock, wake, deadline, &mut buf, &mut print) == Drained::Woken {
                signals.check()?;
            }
        }
        Ok(Turn::Over(End::Word {
            word,
            by: Side::Local,
        }))
    }

    /// Sends the current piece of `input`, stopping for terminating
    /// signals. Errors: [`Error::Signal`]; [`Outbound::failed`].
    fn send(&self, input: &mut Input) -> Result<(), Error> {
        loop {
            match self.out.send(input, self.signals.fd()) {
                Ok(Sent::All) => return Ok(()),
                Ok(Sent::Woken) => self.signals.check()?,
                Err(e) => return Err(self.out.failed(e, input)),
            }
        }
    }
}

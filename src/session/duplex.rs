//! The full-duplex session with `fork()` (worksheet question 4).
//!
//! After `accept` (server) or `connect` (client) the process forks:
//! - the **parent** copies standard input to the socket. On end of file it
//!   calls `shutdown(SHUT_WR)` (half-close: the peer sees end of file, and
//!   the other direction stays open; `close` would send nothing, since the
//!   child still holds the socket);
//! - the **child** copies the socket to standard output, and exits when the
//!   socket reaches end of file or a protocol word arrives, with a status
//!   code that tells the parent why ([`ReceiverExit`]): `fork` + `waitpid`
//!   carry it for free, no extra channel needed.
//!
//! The parent waits in `poll(2)` on standard input and the signal self-pipe
//! ([`crate::signals`]), so the child's exit (`SIGCHLD`) ends the session at
//! once even while nobody types; it then reaps the child with `waitpid`.
//! No zombie is left behind, and the child asks the kernel to send it
//! `SIGTERM` should the parent die first (`PR_SET_PDEATHSIG`), so no orphan
//! keeps printing either.

use std::cell::Cell;
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::time::Instant;

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{Signal, kill};
use nix::sys::socket::{Shutdown, shutdown};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork, getpid, getppid};

use crate::error::Error;
use crate::pump::{self, BUF_SIZE};
use crate::report;
use crate::session::{End, Fill, Input, Options, Output, Side, WORD_LINGER, stdin};
use crate::signals::{self, Signals};
use crate::words::Word;

/// Exit status of the receiving child: how the parent learns why the
/// socket-to-stdout direction ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum ReceiverExit {
    /// End of file on the socket: the peer closed.
    PeerClosed = 0,
    /// A read or write failed; the child wrote the error line itself.
    Failed = 1,
    /// Standard output is a closed pipe (`EPIPE`).
    StdoutClosed = 3,
    /// The peer sent the line `bye`.
    Bye = 4,
    /// The peer sent the line `arret`.
    Arret = 5,
}

impl ReceiverExit {
    fn from_code(code: i32) -> Option<ReceiverExit> {
        [
            Self::PeerClosed,
            Self::Failed,
            Self::StdoutClosed,
            Self::Bye,
            Self::Arret,
        ]
        .into_iter()
        .find(|e| *e as i32 == code)
    }

    fn word(word: Word) -> ReceiverExit {
        match word {
            Word::Bye => ReceiverExit::Bye,
            Word::Arret => ReceiverExit::Arret,
        }
    }
}

/// Runs one duplex session on `stream`, connected to `peer`, reading
/// standard input through `input` (whose unsent bytes carry over to the
/// next session).
///
/// `close_in_child` lists descriptors the child must not keep (the
/// listening socket of `chatd`, so that only the parent holds the port).
///
/// Returns how the session ended. Errors: [`Error::Signal`] when a
/// terminating signal arrived (the child is stopped and reaped first);
/// [`Error::Sys`] when reading stdin, writing the socket or `fork` failed;
/// [`Error::Reported`] when the child failed and said why;
/// [`Error::Msg`] when the child was killed from outside.
pub fn run(
    stream: TcpStream,
    peer: SocketAddr,
    signals: &Signals,
    input: &mut Input,
    options: Options,
    close_in_child: &[RawFd],
) -> Result<End, Error> {
    let parent = getpid();
    // SAFETY: the binaries are single-threaded (no thread is ever spawned:
    // signal-hook's pipe and flag actions need none), so the child gets a
    // consistent copy of the whole process. The child only makes system
    // calls and formats messages, then leaves through `_exit`.
    match unsafe { fork() }.map_err(|e| Error::sys("fork", e))? {
        ForkResult::Child => {
            let code = receive(&stream, peer, parent, signals, options, close_in_child);
            // SAFETY: _exit ends the child without running the parent's
            // destructors or atexit handlers a second time.
            unsafe { libc::_exit(code as i32) }
        }
        ForkResult::Parent { child } => Sender {
            stream: &stream,
            peer,
            child,
            ended: Cell::new(None),
            reaped: Cell::new(false),
            signals,
        }
        .run(input),
    }
}

/// The child: socket to standard output until end of file or a word.
fn receive(
    stream: &TcpStream,
    peer: SocketAddr,
    parent: Pid,
    signals: &Signals,
    options: Options,
    close_in_child: &[RawFd],
) -> ReceiverExit {
    signals::reset_in_child();
    // Die with the parent, and catch the case where it died before the
    // request was made.
    if nix::sys::prctl::set_pdeathsig(Signal::SIGTERM).is_err() || getppid() != parent {
        return ReceiverExit::Failed;
    }
    // SAFETY: these descriptors belong to the parent's objects, which the
    // child never uses again (it leaves through _exit): closing our copies
    // releases the listening port and stdin to the parent alone.
    unsafe {
        libc::close(libc::STDIN_FILENO);
        libc::close(signals.fd().as_raw_fd());
        for fd in close_in_child {
            libc::close(*fd);
        }
    }
    let mut output = Output::new(options);
    let mut buf = vec![0u8; BUF_SIZE];
    let written = loop {
        let n = match pump::read(stream, &mut buf) {
            Ok(0) => break output.finish(),
            Ok(n) => n,
            Err(e) => {
                report!("read from {peer}: {}", e.desc());
                return ReceiverExit::Failed;
            }
        };
        match output.deliver(&buf[..n]) {
            Ok((_, None)) => {}
            Ok((_, Some(word))) => return ReceiverExit::word(word),
            Err(e) => break Err(e),
        }
    };
    match written {
        Ok(None) => ReceiverExit::PeerClosed,
        Ok(Some(word)) => ReceiverExit::word(word),
        Err(Errno::EPIPE) => ReceiverExit::StdoutClosed,
        Err(e) => {
            report!("write to stdout: {}", e.desc());
            ReceiverExit::Failed
        }
    }
}

/// The parent: standard input to the socket, watching for the child's end.
struct Sender<'a> {
    stream: &'a TcpStream,
    peer: SocketAddr,
    child: Pid,
    /// How the child ended normally, once it is reaped.
    ended: Cell<Option<End>>,
    /// Whether the child is reaped (it may have ended in failure).
    reaped: Cell<bool>,
    signals: &'a Signals,
}

impl Sender<'_> {
    fn run(&self, input: &mut Input) -> Result<End, Error> {
        let mut stdin_open = true;
        loop {
            if let Some(end) = self.ended.get() {
                if end == End::PeerClosed && stdin_open {
                    return self.send_ready_input(input);
                }
                return Ok(end);
            }
            let mut fds = [
                PollFd::new(self.signals.fd(), PollFlags::POLLIN),
                PollFd::new(stdin(), PollFlags::POLLIN),
            ];
            let watched = if stdin_open && !input.buffered() {
                2
            } else {
                1
            };
            let wait = if stdin_open && input.buffered() {
                PollTimeout::ZERO
            } else {
                PollTimeout::NONE
            };
            match poll(&mut fds[..watched], wait) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(e) => return self.fail(Error::sys("poll", e)),
            }
            if fds[0].any() == Some(true) {
                self.check()?;
                continue;
            }
            if !stdin_open || (watched == 2 && fds[1].any() != Some(true)) {
                continue;
            }
            match self.forward(input)? {
                Forwarded::Some => {}
                Forwarded::Eof => stdin_open = false,
                Forwarded::Word(word) => return self.linger(word),
                Forwarded::Failed(err) => return self.await_child(err),
            }
        }
    }

    /// Reads standard input if nothing is buffered, and sends what is; at
    /// end of file, half-closes.
    fn forward(&self, input: &mut Input) -> Result<Forwarded, Error> {
        match input.fill() {
            Ok(Fill::Ready) => {}
            Ok(Fill::Again) => return Ok(Forwarded::Some),
            Ok(Fill::Eof) => {
                // shutdown(SHUT_WR): the peer reads end of file and we keep
                // reading. ENOTCONN means the peer already reset the
                // connection, which the child reports.
                let _ = shutdown(self.stream.as_raw_fd(), Shutdown::Write);
                return Ok(match input.finish() {
                    Some(word) => Forwarded::Word(word),
                    None => Forwarded::Eof,
                });
            }
            Err(e) => return self.fail(Error::sys("read from stdin", e)),
        }
        let piece = input.take(false);
        let word = piece.word;
        match self.send_all(piece.bytes)? {
            Forwarded::Some => Ok(word.map_or(Forwarded::Some, Forwarded::Word)),
            other => Ok(other),
        }
    }

    /// The peer closed first: sends what standard input already holds (a
    /// file is sent to its end, as `nc` does), then half-closes. Stops at
    /// once when standard input has nothing ready, so an idle terminal or
    /// pipe does not keep a finished session waiting for a keystroke.
    fn send_ready_input(&self, input: &mut Input) -> Result<End, Error> {
        loop {
            let mut fds = [PollFd::new(stdin(), PollFlags::POLLIN)];
            if !input.buffered() {
                match poll(&mut fds, PollTimeout::ZERO) {
                    Ok(_) | Err(Errno::EINTR) => {}
                    Err(e) => return Err(Error::sys("poll", e)),
                }
                if fds[0].any() != Some(true) {
                    return Ok(End::PeerClosed);
                }
            }
            if let Some(sig) = self.signals.terminated() {
                return Err(Error::Signal(sig));
            }
            match self.forward(input)? {
                Forwarded::Some => {}
                Forwarded::Eof => return Ok(End::PeerClosed),
                Forwarded::Word(word) => return Ok(self.said(word)),
                Forwarded::Failed(err) => return Err(err),
            }
        }
    }

    /// Sends all of `buf` ([`pump::send_watching`]), reaping the child
    /// when a signal wakes the wait. A peer that half-closed may still read,
    /// so its end of file does not stop the send; any other end does.
    fn send_all(&self, mut buf: &[u8]) -> Result<Forwarded, Error> {
        loop {
            match pump::send_watching(self.stream.as_fd(), &mut buf, self.signals.fd()) {
                Ok(pump::Sent::All) => return Ok(Forwarded::Some),
                Ok(pump::Sent::Woken) => {
                    self.check()?;
                    if matches!(self.ended.get(), Some(end) if end != End::PeerClosed) {
                        return Ok(Forwarded::Some);
                    }
                }
                Err(e) => {
                    let err = Error::sys(format!("write to {}", self.peer), e);
                    return Ok(Forwarded::Failed(err));
                }
            }
        }
    }

    /// We sent a protocol word (and half-closed): waits up to
    /// [`WORD_LINGER`] for the peer to close, so what it had in flight is
    /// still printed, then stops the child.
    fn linger(&self, word: Word) -> Result<End, Error> {
        let _ = shutdown(self.stream.as_raw_fd(), Shutdown::Write);
        // The peer's failure after our word does not spoil the session.
        if let Err(err @ Error::Signal(_)) = self.wait_for_child(Some(Instant::now() + WORD_LINGER))
        {
            return Err(err);
        }
        self.stop_child();
        Ok(self.said(word))
    }

    /// How a session that we ended with `word` ends: an `arret` from the
    /// peer at the same time wins, since it also stops the server.
    fn said(&self, word: Word) -> End {
        match self.ended.get() {
            Some(
                end @ End::Word {
                    word: Word::Arret, ..
                },
            ) => end,
            _ => End::Word {
                word,
                by: Side::Local,
            },
        }
    }

    /// Sending failed (the connection is gone): lets the child finish
    /// printing what the peer sent before, then returns `err`.
    fn await_child(&self, err: Error) -> Result<End, Error> {
        self.wait_for_child(None)?;
        Err(err)
    }

    /// Waits on the signal pipe until the child is reaped, or until
    /// `deadline` if one is given. Errors: those of [`Sender::check`].
    fn wait_for_child(&self, deadline: Option<Instant>) -> Result<(), Error> {
        while !self.reaped.get() {
            let timeout = match deadline {
                None => PollTimeout::NONE,
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    signals::timeout(left)
                }
            };
            let mut fds = [PollFd::new(self.signals.fd(), PollFlags::POLLIN)];
            match poll(&mut fds, timeout) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(e) => return self.fail(Error::sys("poll", e)),
            }
            self.check()?;
        }
        Ok(())
    }

    /// After the signal pipe woke us: drains it, stops on a terminating
    /// signal, and reaps the child if it has ended, recording how in
    /// `ended`. Errors: [`Error::Signal`], or the child's failure.
    fn check(&self) -> Result<(), Error> {
        self.signals.drain();
        if let Some(sig) = self.signals.terminated() {
            return self.fail(Error::Signal(sig));
        }
        if self.reaped.get() {
            return Ok(());
        }
        let status = waitpid(self.child, Some(WaitPidFlag::WNOHANG));
        if !matches!(status, Ok(WaitStatus::StillAlive) | Err(Errno::EINTR)) {
            self.reaped.set(true);
        }
        let peer_said = |word| End::Word {
            word,
            by: Side::Peer,
        };
        let end = match status {
            Ok(WaitStatus::Exited(_, code)) => match ReceiverExit::from_code(code) {
                Some(ReceiverExit::PeerClosed) => End::PeerClosed,
                Some(ReceiverExit::StdoutClosed) => End::StdoutClosed,
                Some(ReceiverExit::Bye) => peer_said(Word::Bye),
                Some(ReceiverExit::Arret) => peer_said(Word::Arret),
                Some(ReceiverExit::Failed) => Err(Error::Reported)?,
                None => Err(Error::Msg(format!(
                    "receiving process exited with status {code}"
                )))?,
            },
            Ok(WaitStatus::Signaled(_, sig, _)) => Err(Error::Msg(format!(
                "receiving process killed by signal {} ({})",
                sig as i32,
                sig.as_str()
            )))?,
            Ok(_) | Err(Errno::EINTR) => return Ok(()),
            Err(e) => Err(Error::sys("waitpid", e))?,
        };
        self.ended.set(Some(end));
        Ok(())
    }

    /// Ends the session early on our side: stops and reaps the child, if it
    /// still runs, then returns `err`.
    fn fail<T>(&self, err: Error) -> Result<T, Error> {
        self.stop_child();
        Err(err)
    }

    /// Stops the child with SIGTERM, if it still runs, and reaps it.
    fn stop_child(&self) {
        if !self.reaped.replace(true) {
            let _ = kill(self.child, Signal::SIGTERM);
            while let Err(Errno::EINTR) = waitpid(self.child, None) {}
        }
    }
}

/// What one step of copying standard input to the socket did.
enum Forwarded {
    /// Bytes were sent (or there was nothing to read yet).
    Some,
    /// Standard input reached end of file; the socket is half-closed.
    Eof,
    /// A protocol word was sent, ending its line.
    Word(Word),
    /// Sending failed: the connection is gone.
    Failed(Error),
}

//! The full-duplex session with `fork()` (worksheet question 4).
//!
//! After `accept` (server) or `connect` (client) the process forks:
//! - the **parent** copies standard input to the socket. On end of file it
//!   calls `shutdown(SHUT_WR)` (half-close: the peer sees end of file, and
//!   the other direction stays open; `close` would send nothing, since the
//!   child still holds the socket);
//! - the **child** copies the socket to standard output, and exits when the
//!   socket reaches end of file, with a status code that tells the parent
//!   why ([`ReceiverExit`]).
//!
//! The parent waits in `poll(2)` on standard input and the signal self-pipe
//! ([`crate::signals`]), so the child's exit (`SIGCHLD`) ends the session at
//! once even while nobody types; it then reaps the child with `waitpid`.
//! No zombie is left behind, and the child asks the kernel to send it
//! `SIGTERM` should the parent die first (`PR_SET_PDEATHSIG`), so no orphan
//! keeps printing either.

use std::cell::Cell;
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{Signal, kill};
use nix::sys::socket::{MsgFlags, Shutdown, send, shutdown};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork, getpid, getppid};

use crate::error::Error;
use crate::pump::{self, BUF_SIZE};
use crate::report;
use crate::session::End;
use crate::signals::{self, Signals};

/// Exit status of the receiving child: how the parent learns why the
/// socket-to-stdout direction ended (`fork` + `waitpid` carry it for free).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum ReceiverExit {
    /// End of file on the socket: the peer closed.
    PeerClosed = 0,
    /// A read or write failed; the child wrote the error line itself.
    Failed = 1,
    /// Standard output is a closed pipe (`EPIPE`).
    StdoutClosed = 3,
}

impl ReceiverExit {
    fn from_code(code: i32) -> Option<ReceiverExit> {
        [Self::PeerClosed, Self::Failed, Self::StdoutClosed]
            .into_iter()
            .find(|e| *e as i32 == code)
    }
}

/// Runs one duplex session on `stream`, connected to `peer`.
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
    close_in_child: &[RawFd],
) -> Result<End, Error> {
    let parent = getpid();
    // SAFETY: the binaries are single-threaded (no thread is ever spawned:
    // signal-hook's pipe and flag actions need none), so the child gets a
    // consistent copy of the whole process. The child only makes system
    // calls and formats messages, then leaves through `_exit`.
    match unsafe { fork() }.map_err(|e| Error::sys("fork", e))? {
        ForkResult::Child => {
            let code = receive(&stream, peer, parent, signals, close_in_child);
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
        .run(),
    }
}

/// The child: socket to standard output until end of file.
fn receive(
    stream: &TcpStream,
    peer: SocketAddr,
    parent: Pid,
    signals: &Signals,
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
    // SAFETY: descriptor 1 stays open for the whole life of the child.
    let stdout = unsafe { BorrowedFd::borrow_raw(libc::STDOUT_FILENO) };
    let mut buf = vec![0u8; BUF_SIZE];
    loop {
        let n = match pump::read(stream, &mut buf) {
            Ok(0) => return ReceiverExit::PeerClosed,
            Ok(n) => n,
            Err(e) => {
                report!("read from {peer}: {}", e.desc());
                return ReceiverExit::Failed;
            }
        };
        match pump::write_all(stdout, &buf[..n]) {
            Ok(()) => {}
            Err(Errno::EPIPE) => return ReceiverExit::StdoutClosed,
            Err(e) => {
                report!("write to stdout: {}", e.desc());
                return ReceiverExit::Failed;
            }
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
    fn run(&self) -> Result<End, Error> {
        // SAFETY: descriptor 0 stays open for the life of the process (a
        // closed one shows up as POLLNVAL and is treated as end of file).
        let stdin = unsafe { BorrowedFd::borrow_raw(libc::STDIN_FILENO) };
        let mut buf = vec![0u8; BUF_SIZE];
        let mut stdin_open = true;
        loop {
            if let Some(end) = self.ended.get() {
                if end == End::PeerClosed && stdin_open {
                    self.send_ready_input(stdin, &mut buf)?;
                }
                return Ok(end);
            }
            let mut fds = [
                PollFd::new(self.signals.fd(), PollFlags::POLLIN),
                PollFd::new(stdin, PollFlags::POLLIN),
            ];
            let watched = if stdin_open { 2 } else { 1 };
            match poll(&mut fds[..watched], PollTimeout::NONE) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(e) => return self.fail(Error::sys("poll", e)),
            }
            if fds[0].any() == Some(true) {
                self.check()?;
                continue;
            }
            if !stdin_open || fds[1].any() != Some(true) {
                continue;
            }
            match self.read_and_send(stdin, &mut buf)? {
                Forwarded::Some => {}
                Forwarded::Eof => stdin_open = false,
                Forwarded::Failed(err) => return self.await_child(err),
            }
        }
    }

    /// Reads one chunk of standard input and sends it; at end of file,
    /// half-closes.
    fn read_and_send(&self, stdin: BorrowedFd<'_>, buf: &mut [u8]) -> Result<Forwarded, Error> {
        let n = match pump::read(stdin, buf) {
            Ok(n) => n,
            Err(Errno::EAGAIN) => return Ok(Forwarded::Some),
            Err(Errno::EBADF) => 0,
            Err(e) => return self.fail(Error::sys("read from stdin", e)),
        };
        if n == 0 {
            // shutdown(SHUT_WR): the peer reads end of file and we keep
            // reading. ENOTCONN means the peer already reset the
            // connection, which the child reports.
            let _ = shutdown(self.stream.as_raw_fd(), Shutdown::Write);
            return Ok(Forwarded::Eof);
        }
        self.send_all(&buf[..n])
    }

    /// The peer closed first: sends what standard input already holds (a
    /// file is sent to its end, as `nc` does), then half-closes. Stops at
    /// once when standard input has nothing ready, so an idle terminal or
    /// pipe does not keep a finished session waiting for a keystroke.
    fn send_ready_input(&self, stdin: BorrowedFd<'_>, buf: &mut [u8]) -> Result<(), Error> {
        loop {
            let mut fds = [PollFd::new(stdin, PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::ZERO) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(e) => return Err(Error::sys("poll", e)),
            }
            if let Some(sig) = self.signals.terminated() {
                return Err(Error::Signal(sig));
            }
            if fds[0].any() != Some(true) {
                return Ok(());
            }
            match self.read_and_send(stdin, buf)? {
                Forwarded::Some => {}
                Forwarded::Eof => return Ok(()),
                Forwarded::Failed(err) => return Err(err),
            }
        }
    }

    /// Sends all of `buf` without blocking in `send`: `MSG_DONTWAIT` leaves
    /// the shared socket blocking for the child, and when the peer does not
    /// read (backpressure) we wait in `poll` for room or a signal. A peer
    /// that half-closed may still read, so its end of file does not stop the
    /// send; any other end of the child does.
    fn send_all(&self, mut buf: &[u8]) -> Result<Forwarded, Error> {
        let flags = MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL;
        while !buf.is_empty() {
            match send(self.stream.as_raw_fd(), buf, flags) {
                Ok(n) => buf = &buf[n..],
                Err(Errno::EINTR) => {}
                Err(Errno::EAGAIN) => {
                    let mut fds = [
                        PollFd::new(self.signals.fd(), PollFlags::POLLIN),
                        PollFd::new(self.stream.as_fd(), PollFlags::POLLOUT),
                    ];
                    match poll(&mut fds, PollTimeout::NONE) {
                        Ok(_) | Err(Errno::EINTR) => {}
                        Err(e) => return self.fail(Error::sys("poll", e)),
                    }
                    if fds[0].any() == Some(true) {
                        self.check()?;
                        if matches!(self.ended.get(), Some(end) if end != End::PeerClosed) {
                            return Ok(Forwarded::Some);
                        }
                    }
                }
                Err(e) => {
                    return Ok(Forwarded::Failed(Error::sys(
                        format!("write to {}", self.peer),
                        e,
                    )));
                }
            }
        }
        Ok(Forwarded::Some)
    }

    /// Sending failed (the connection is gone): lets the child finish
    /// printing what the peer sent before, then returns `err`.
    fn await_child(&self, err: Error) -> Result<End, Error> {
        while self.ended.get().is_none() {
            let mut fds = [PollFd::new(self.signals.fd(), PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(e) => return self.fail(Error::sys("poll", e)),
            }
            self.check()?;
        }
        Err(err)
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
        let end = match status {
            Ok(WaitStatus::Exited(_, code)) => match ReceiverExit::from_code(code) {
                Some(ReceiverExit::PeerClosed) => End::PeerClosed,
                Some(ReceiverExit::StdoutClosed) => End::StdoutClosed,
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
        if !self.reaped.replace(true) {
            let _ = kill(self.child, Signal::SIGTERM);
            while let Err(Errno::EINTR) = waitpid(self.child, None) {}
        }
        Err(err)
    }
}

/// What one step of copying standard input to the socket did.
enum Forwarded {
    /// Bytes were sent (or there was nothing to read yet).
    Some,
    /// Standard input reached end of file; the socket is half-closed.
    Eof,
    /// Sending failed: the connection is gone.
    Failed(Error),
}

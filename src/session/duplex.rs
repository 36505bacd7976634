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
    signals: &'a Signals,
}

impl Sender<'_> {
    fn run(&self) -> Result<End, Error> {
        // SAFETY: descriptor 0 stays open for the life of the process (a
        // closed one shows up as POLLNVAL and is treated as end of file).
        let stdin = unsafe { BorrowedFd::borrow_raw(libc::STDIN_FILENO) };
        let mut buf = vec![0u8; BUF_SIZE];
        let mut stdin_open = true;
        let mut send_error = None;
        loop {
            let mut fds = [
                PollFd::new(self.signals.fd(), PollFlags::POLLIN),
                PollFd::new(stdin, PollFlags::POLLIN),
            ];
            let watched = if stdin_open { 2 } else { 1 };
            match poll(&mut fds[..watched], PollTimeout::NONE) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(e) => return self.fail(Error::sys("poll", e)),
            }
            if fds[0].any() == Some(true)
                && let Some(end) = self.check()?
            {
                return match send_error {
                    Some(err) => Err(err),
                    None => Ok(end),
                };
            }
            if !stdin_open || fds[1].any() != Some(true) {
                continue;
            }
            let n = match pump::read(stdin, &mut buf) {
                Ok(n) => n,
                Err(Errno::EAGAIN) => continue,
                Err(Errno::EBADF) => 0,
                Err(e) => return self.fail(Error::sys("read from stdin", e)),
            };
            if n == 0 {
                stdin_open = false;
                self.half_close();
                continue;
            }
            match self.send_all(&buf[..n])? {
                Sent::All => {}
                Sent::Ended(end) => return Ok(end),
                Sent::Failed(err) => {
                    // The connection is gone; what the peer sent before
                    // is still being printed by the child: let it finish.
                    stdin_open = false;
                    send_error = Some(err);
                }
            }
        }
    }

    /// `shutdown(SHUT_WR)`: the peer reads end of file, and we keep reading.
    fn half_close(&self) {
        // ENOTCONN: the peer already reset the connection; the child reports it.
        let _ = shutdown(self.stream.as_raw_fd(), Shutdown::Write);
    }

    /// Sends all of `buf` without blocking in `send`: `MSG_DONTWAIT` leaves
    /// the shared socket blocking for the child, and when the peer does not
    /// read (backpressure) we wait in `poll` for room or a signal.
    fn send_all(&self, mut buf: &[u8]) -> Result<Sent, Error> {
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
                    if fds[0].any() == Some(true)
                        && let Some(end) = self.check()?
                    {
                        return Ok(Sent::Ended(end));
                    }
                }
                Err(e) => {
                    return Ok(Sent::Failed(Error::sys(
                        format!("write to {}", self.peer),
                        e,
                    )));
                }
            }
        }
        Ok(Sent::All)
    }

    /// After the signal pipe woke us: drains it, stops on a terminating
    /// signal, and reaps the child if it has ended.
    fn check(&self) -> Result<Option<End>, Error> {
        self.signals.drain();
        if let Some(sig) = self.signals.terminated() {
            self.stop_child();
            return Err(Error::Signal(sig));
        }
        match waitpid(self.child, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, code)) => match ReceiverExit::from_code(code) {
                Some(ReceiverExit::PeerClosed) => Ok(Some(End::PeerClosed)),
                Some(ReceiverExit::StdoutClosed) => Ok(Some(End::StdoutClosed)),
                Some(ReceiverExit::Failed) => Err(Error::Reported),
                None => Err(Error::Msg(format!(
                    "receiving process exited with status {code}"
                ))),
            },
            Ok(WaitStatus::Signaled(_, sig, _)) => Err(Error::Msg(format!(
                "receiving process killed by signal {} ({})",
                sig as i32,
                sig.as_str()
            ))),
            Ok(_) => Ok(None),
            Err(Errno::ECHILD) => Err(Error::Msg("receiving process vanished".into())),
            Err(e) => Err(Error::sys("waitpid", e)),
        }
    }

    /// Ends the session early on our side: stops and reaps the child.
    fn fail<T>(&self, err: Error) -> Result<T, Error> {
        self.stop_child();
        Err(err)
    }

    fn stop_child(&self) {
        let _ = kill(self.child, Signal::SIGTERM);
        while let Err(Errno::EINTR) = waitpid(self.child, None) {}
    }
}

enum Sent {
    All,
    Ended(End),
    Failed(Error),
}

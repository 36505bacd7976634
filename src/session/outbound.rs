//! The sending direction of a session: [`Outbound`] sends
//! [`super::Input`]'s pieces on the socket, counts the bytes the socket
//! accepted, half-closes (`shutdown(SHUT_WR)`) at end of input, and says
//! what a reset lost; [`send_rest`] sends what is left once the peer's
//! direction has ended.

use std::cell::Cell;
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::time::Duration;

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{Shutdown, shutdown};

use super::{Fill, Input};
use crate::error::Error;
use crate::pump::{self, Sent, stdin};
use crate::signals::Signals;
use crate::words::Word;
use crate::zerocopy;

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
    /// The peer's address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// How many bytes the socket accepted in this session.
    pub fn sent(&self) -> u64 {
        self.sent.get()
    }

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
        if input.peeked() {
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
    /// standard input (a pipe or a regular file in the default mode): moves
    /// exactly those bytes with `splice(2)` or `sendfile(2)`, waiting in
    /// `poll(2)` for room or for `wake`.
    fn send_peeked(&self, input: &mut Input, wake: BorrowedFd<'_>) -> Result<Sent, Errno> {
        let sock = self.stream.as_fd();
        loop {
            match input.move_peeked(sock) {
                Ok(0) => return Ok(Sent::All),
                Ok(n) => self.sent.set(self.sent.get() + n as u64),
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
                    input.copy_from_now();
                    return self.send(input, wake);
                }
                Err(e) => return Err(e),
            }
        }
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
        let (moved, n) = input.move_direct(self.stream.as_fd())?;
        self.sent.set(self.sent.get() + n as u64);
        Ok(moved)
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

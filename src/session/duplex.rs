//! The full-duplex session with `fork()` (worksheet question 4).
//!
//! After `accept` (server) or `connect` (client) the process forks:
//! - the **parent** copies standard input to the socket. On end of file it
//!   calls `shutdown(SHUT_WR)` (half-close: "I have nothing more to send";
//!   the other direction stays open; `close` would send nothing, since the
//!   child still holds the socket). A session that had nothing to send is
//!   receive-only and does not half-close ([`Outbound::end`]);
//! - the **child** copies the socket to standard output, and exits when the
//!   socket reaches end of file, a reset or a protocol word arrives, or the
//!   reader of standard output goes away, with a status code that tells the
//!   parent why ([`ReceiverExit`]): `fork` + `waitpid` carry it for free,
//!   no extra channel needed.
//!
//! Both copy through the kernel where they can ([`crate::zerocopy`]):
//! `splice`/`sendfile` with `--raw`. In the default mode the bytes must be
//! looked at for the protocol words: a file on standard input is looked at
//! in place (`pread`, then `sendfile`), and the socket too when standard
//! output is a pipe (`MSG_PEEK`, then `splice`), so each byte is copied
//! once on that side instead of twice; a pipe on standard input is read
//! and sent, which measured as fast as `tee` + `splice` end to end or
//! faster, and is simpler (see `Path::Copy` in `session/input.rs`).
//!
//! The session ends when both directions have ended (see
//! [`crate::session::Policy`] for when it ends earlier). The parent waits
//! in `poll(2)` on standard input and the signal self-pipe
//! ([`crate::signals`]), so the child's exit (`SIGCHLD`) is seen at once
//! even while nobody types; it then reaps the child with `waitpid`. No
//! zombie is left behind, and the child asks the kernel to signal it
//! should the parent die first (`PR_SET_PDEATHSIG`, [`crate::fork`]): it
//! then says so in one line and exits 1, so no orphan keeps the socket
//! open. In a single session (`chat`, `chatd -1`) the parent replaces its
//! standard output with `/dev/null` after the fork: the child holds the
//! only copy, so whoever reads it sees end of file as soon as the peer's
//! direction ends, even while the parent still sends.

use std::cell::Cell;
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsFd, AsRawFd};
use std::time::Instant;

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{Signal, kill};
use nix::sys::socket::{MsgFlags, recv};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{Pid, getpid};

use crate::error::Error;
use crate::fork::{self, Forked};
use crate::pump::{self, BUF_SIZE, stdin, stdout};
use crate::report;
use crate::session::notice::{self, Notice, Seen};
use crate::session::{
    Context, End, Fill, Input, Moved, Outbound, Output, Policy, Rest, Side, WORD_LINGER, send_rest,
    stdout_gone, stdout_watch, still_receiving,
};
use crate::signals::{self, Signals};
use crate::words::Word;
use crate::zerocopy::{self, FdKind, Relay, Wait};

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
    /// The peer reset the connection (`ECONNRESET`); the parent reports it
    /// in one line with what was not delivered.
    Reset = 6,
    /// Nothing was received for `--idle-timeout` seconds.
    Idle = 7,
    /// End of file on the socket before a single byte arrived (see
    /// [`End::Silent`]).
    Silent = 8,
}

impl ReceiverExit {
    fn from_code(code: i32) -> Option<ReceiverExit> {
        [
            Self::PeerClosed,
            Self::Failed,
            Self::StdoutClosed,
            Self::Bye,
            Self::Arret,
            Self::Reset,
            Self::Idle,
            Self::Silent,
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
/// `cx.close_in_child` lists descriptors the child must not keep (the
/// listening socket of `chatd`, so that only the parent holds the port).
///
/// Returns how the session ended. Errors: [`Error::Signal`] when a
/// terminating signal arrived (the child is stopped and reaped first);
/// [`Error::Msg`] `connection reset by PEER: N bytes not delivered` when the
/// peer reset the connection; [`Error::Sys`] when reading stdin, writing the
/// socket or `fork` failed; [`Error::Reported`] when the child failed and
/// said why; [`Error::Msg`] when the child was killed from outside.
pub fn run(
    stream: TcpStream,
    peer: SocketAddr,
    cx: &Context<'_>,
    input: &mut Input,
) -> Result<End, Error> {
    // Neither process ever blocks on the socket (the child reads with
    // MSG_DONTWAIT or SPLICE_F_NONBLOCK, the parent sends with
    // MSG_DONTWAIT): O_NONBLOCK, shared by both, lets the parent's splice
    // and sendfile (which have no such flag for the socket) do the same.
    let nonblocking = zerocopy::set_nonblocking(stream.as_fd()).is_ok();
    let orphan = format!("the sending process (pid {}) died: session ended", getpid());
    match crate::fork::fork(cx.signals, &orphan)? {
        Forked::Child => fork::exit(receive(&stream, peer, cx) as i32),
        Forked::Parent(child) => {
            if cx.policy.single {
                give_up_stdout();
            }
            let sender = Sender {
                out: if nonblocking {
                    Outbound::nonblocking(&stream, peer)
                } else {
                    Outbound::new(&stream, peer)
                },
                child,
                theirs: Cell::new(None),
                reaped: Cell::new(false),
                silent: Cell::new(false),
                signals: cx.signals,
                policy: cx.policy,
            };
            let end = match sender.run(input) {
                // Neither side sent a byte: say so, as the closest the
                // protocol comes to "refused by --allow/--deny".
                Ok(End::PeerClosed) if sender.silent.get() && sender.out.sent() == 0 => {
                    Ok(End::Silent)
                }
                end => end,
            };
            // What was looked at in place and not sent becomes ordinary
            // buffered input for the next session.
            input.settle();
            end
        }
    }
}

/// Replaces standard output with `/dev/null` in the parent of a single
/// session, so the child holds the only copy (see the module docs). Status
/// lines go to standard error, so nothing is lost. If `/dev/null` cannot be
/// opened, standard output stays: the session still works, only its reader
/// sees end of file later.
fn give_up_stdout() {
    if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
        // SAFETY: dup2 onto descriptor 1 replaces it atomically; `null` is
        // an open descriptor we own and close right after.
        unsafe { libc::dup2(null.as_raw_fd(), libc::STDOUT_FILENO) };
    }
}

/// The child: socket to standard output until end of file, a reset, a
/// word, or the reader of standard output going away.
///
/// Reads with `MSG_DONTWAIT` first: while data flows that is one system
/// call per chunk. Only when nothing is ready does it wait, in `poll(2)` on
/// the socket and on standard output (for `POLLERR`), so `chat host | head
/// -1` ends as soon as `head` exits, even if the peer is silent.
fn receive(stream: &TcpStream, peer: SocketAddr, cx: &Context<'_>) -> ReceiverExit {
    // SAFETY: these descriptors belong to the parent's objects, which the
    // child never uses again (it leaves through _exit): closing our copies
    // releases the listening port and stdin to the parent alone.
    unsafe {
        libc::close(libc::STDIN_FILENO);
        libc::close(cx.signals.fd().as_raw_fd());
        for fd in cx.close_in_child {
            libc::close(*fd);
        }
    }
    // --raw: nothing to look at in the bytes, the kernel can move them.
    if !cx.options.words
        && !cx.options.sanitize
        && let Some(exit) = receive_direct(stream, peer, cx.policy.idle)
    {
        return exit;
    }
    let mut output = Output::new(cx.options);
    let mut buf = vec![0u8; BUF_SIZE];
    let sock = stream.as_raw_fd();
    let mut last = Instant::now();
    // Whether a byte ever arrived: a peer that closes without one is told
    // apart ([`ReceiverExit::Silent`]).
    let mut received = false;
    // Default mode into a pipe: look at the bytes where they are
    // (MSG_PEEK, one copy), then splice exactly those up to the end of a
    // word's line to standard output (no second copy).
    let mut peek =
        cx.options.words && !cx.options.sanitize && zerocopy::kind(stdout()) == FdKind::Pipe;
    if peek {
        zerocopy::grow_pipe(stdout(), zerocopy::RELAY_SIZE);
    }
    // Looked up once: an fcntl per idle wait adds up.
    let watch = stdout_watch();
    if cx.options.notices {
        match take_notices(stream, peer, cx.policy.idle, &watch, &mut last) {
            Ok(any) => received = any,
            Err(exit) => return exit,
        }
    }
    let written = loop {
        let flags = if peek {
            MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_PEEK
        } else {
            MsgFlags::MSG_DONTWAIT
        };
        let n = match recv(sock, &mut buf, flags) {
            Ok(0) => break output.finish(),
            Ok(n) => {
                last = Instant::now();
                received = true;
                n
            }
            Err(Errno::EINTR) => continue,
            Err(Errno::EAGAIN) => {
                match wait_readable(stream, &watch, cx.policy.idle.map(|d| last + d)) {
                    Ok(Wake::Readable) => continue,
                    Ok(Wake::StdoutGone) => return ReceiverExit::StdoutClosed,
                    Ok(Wake::Idle) => return ReceiverExit::Idle,
                    Err(e) => {
                        report!("poll: {}", e.desc());
                        return ReceiverExit::Failed;
                    }
                }
            }
            Err(Errno::ECONNRESET) => return ReceiverExit::Reset,
            Err(e) => {
                report!("read from {peer}: {}", e.desc());
                return ReceiverExit::Failed;
            }
        };
        if peek {
            match relay_peeked(stream, peer, &mut output, &mut buf[..n], &mut peek) {
                Ok(None) => continue,
                Ok(Some(exit)) => return exit,
                Err(e) => break Err(e),
            }
        }
        match output.deliver(&buf[..n]) {
            Ok((_, None)) => {}
            Ok((_, Some(word))) => return ReceiverExit::word(word),
            Err(e) => break Err(e),
        }
    };
    match written {
        Ok(None) if !received => ReceiverExit::Silent,
        Ok(None) => ReceiverExit::PeerClosed,
        Ok(Some(word)) => ReceiverExit::word(word),
        Err(Errno::EPIPE) => ReceiverExit::StdoutClosed,
        Err(e) => {
            report!("write to stdout: {}", e.desc());
            ReceiverExit::Failed
        }
    }
}

/// `chat`: the notices of a busy `chatd` at the start of the connection
/// ([`notice`]) are taken out of the stream and said in status lines.
/// The bytes are looked at with `MSG_PEEK`, and only a whole notice line
/// is taken out: the first bytes that are not a notice, and all that
/// follows, stay in the socket for [`receive`]'s loop, which moves them
/// as it moves everything (`splice(2)` included). While the bytes there
/// are the start of a notice, the wait is for more of them
/// (`SO_RCVLOWAT`), for at most [`NOTICE_WAIT`]: a peer whose first bytes
/// only look like one is not held back longer.
///
/// Returns whether a notice was taken. Errors: how the child leaves when
/// the connection or standard output ended while it looked (end of file is
/// left to the caller, which reads it again).
fn take_notices(
    stream: &TcpStream,
    peer: SocketAddr,
    idle: Option<std::time::Duration>,
    watch: &Option<PollFd<'_>>,
    last: &mut Instant,
) -> Result<bool, ReceiverExit> {
    let sock = stream.as_raw_fd();
    let mut buf = [0u8; notice::MAX_LEN];
    let (mut waiting, mut taken) = (false, false);
    let mut partial_since: Option<Instant> = None;
    let result = loop {
        let have = match recv(sock, &mut buf, MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_PEEK) {
            Ok(0) => break Ok(taken),
            Ok(n) => n,
            Err(Errno::EINTR) => continue,
            Err(Errno::EAGAIN) => 0,
            Err(Errno::ECONNRESET) => break Err(ReceiverExit::Reset),
            Err(e) => {
                report!("read from {peer}: {}", e.desc());
                break Err(ReceiverExit::Failed);
            }
        };
        match notice::seen(&buf[..have], waiting) {
            Seen::Notice(said, len) => {
                if take_exactly(stream, &mut buf[..len]).is_err() {
                    break Err(ReceiverExit::Reset);
                }
                *last = Instant::now();
                crate::status!("{}", said.status(&peer));
                (taken, partial_since) = (true, None);
                waiting = said != Notice::Start;
                if !waiting {
                    break Ok(true);
                }
                continue;
            }
            Seen::Not => break Ok(taken),
            Seen::More => {}
        }
        // Nothing yet, or the start of a notice: wait for more than `have`
        // bytes.
        let mut deadline = idle.map(|d| *last + d);
        if have > 0 {
            let since = *partial_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= NOTICE_WAIT {
                break Ok(taken);
            }
            deadline = Some(deadline.map_or(since + NOTICE_WAIT, |d| d.min(since + NOTICE_WAIT)));
        }
        set_rcvlowat(stream, have + 1);
        match wait_readable(stream, watch, deadline) {
            Ok(Wake::Readable) => {}
            Ok(Wake::StdoutGone) => break Err(ReceiverExit::StdoutClosed),
            // The idle timeout, or the start of a notice that went no
            // further: the main loop tells which.
            Ok(Wake::Idle) if have > 0 => {}
            Ok(Wake::Idle) => break Err(ReceiverExit::Idle),
            Err(e) => {
                report!("poll: {}", e.desc());
                break Err(ReceiverExit::Failed);
            }
        }
    };
    set_rcvlowat(stream, 1);
    result
}

/// How long bytes that begin like a notice of a busy `chatd` are held
/// back for the rest of their line: 500 ms (`chatd` sends each notice
/// with one `send(2)`, so it arrives whole).
const NOTICE_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

/// Sets `SO_RCVLOWAT` of `stream` to `bytes`: `poll(2)` then says the
/// socket is readable only once that many bytes are there (or its end of
/// file, or an error). A failure only makes the wait wake up sooner.
fn set_rcvlowat(stream: &TcpStream, bytes: usize) {
    let value = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    // SAFETY: setsockopt on an open socket with a pointer to a c_int that
    // lives for the call and its exact size.
    unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVLOWAT,
            (&raw const value).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

/// The `MSG_PEEK` path of [`receive`]: `peeked` holds bytes looked at on
/// the socket, not taken. Scans them for a protocol word, then moves those
/// up to the end of the word's line (all of them without a word) to the
/// pipe on standard output with `splice(2)`. If standard output refuses
/// `splice`, takes those bytes out, writes them, and clears `peek`: the
/// child copies from then on.
///
/// Returns `None` to go on, or how the child leaves (a word, a reset, a
/// failed read, said on standard error). Errors: the `errno` of writing to
/// standard output (`EPIPE`: its reader is gone).
fn relay_peeked(
    stream: &TcpStream,
    peer: SocketAddr,
    output: &mut Output,
    peeked: &mut [u8],
    peek: &mut bool,
) -> Result<Option<ReceiverExit>, Errno> {
    let (len, word) = output.scan(peeked);
    match splice_exactly(stream, len) {
        Ok(()) => {}
        Err((moved, e)) if zerocopy::unsupported(e) => {
            // Standard output refuses splice: take the rest of
            // these bytes out and write them; copy from now on.
            *peek = false;
            let rest = &mut peeked[moved..len];
            if let Err(e) = take_exactly(stream, rest) {
                report!("read from {peer}: {}", e.desc());
                return Ok(Some(ReceiverExit::Failed));
            }
            output.print(rest)?;
        }
        Err((_, Errno::ECONNRESET)) => return Ok(Some(ReceiverExit::Reset)),
        Err((_, e)) => return Err(e),
    }
    Ok(word.map(ReceiverExit::word))
}

/// Moves exactly `len` bytes, already looked at with `MSG_PEEK`, from the
/// socket to the pipe on standard output with `splice(2)`, waiting for room
/// in the pipe (and watching for its reader going away). Errors: how many
/// bytes were moved, and the `errno` (`EPIPE`: the reader is gone).
fn splice_exactly(stream: &TcpStream, len: usize) -> Result<(), (usize, Errno)> {
    let sock = stream.as_fd();
    let mut moved = 0;
    while moved < len {
        match zerocopy::splice(sock, stdout(), len - moved) {
            // The bytes were there: only a reset takes them away.
            Ok(0) => return Err((moved, Errno::ECONNRESET)),
            Ok(n) => moved += n,
            Err(Errno::EAGAIN) => match zerocopy::wait(None, sock, stdout(), None) {
                Ok(Wait::Ready | Wait::Woken | Wait::Idle) => {}
                Ok(Wait::OutputGone) => return Err((moved, Errno::EPIPE)),
                Err(e) => return Err((moved, e)),
            },
            Err(e) => return Err((moved, e)),
        }
    }
    Ok(())
}

/// Reads exactly `buf.len()` bytes, already looked at with `MSG_PEEK`,
/// out of the socket. Errors: those of `recv(2)`.
fn take_exactly(stream: &TcpStream, buf: &mut [u8]) -> Result<(), Errno> {
    let mut got = 0;
    while got < buf.len() {
        match recv(stream.as_raw_fd(), &mut buf[got..], MsgFlags::MSG_DONTWAIT) {
            Ok(0) => return Err(Errno::ECONNRESET),
            Ok(n) => got += n,
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The child's zero-copy path (`--raw`, see [`crate::zerocopy`]): the
/// socket to a pipe on standard output with `splice(2)`, or through a
/// [`Relay`] pipe to a regular file, `/dev/null` or a socket. `None` when
/// standard output is a terminal (or closed), or when the kernel refuses
/// `splice` for these descriptors: the caller then copies, having lost
/// nothing. While idle it waits on the socket and on standard output
/// ([`zerocopy::wait`]), so `chat host | head -1` still ends when `head`
/// exits; `idle` is `--idle-timeout`.
fn receive_direct(
    stream: &TcpStream,
    peer: SocketAddr,
    idle: Option<std::time::Duration>,
) -> Option<ReceiverExit> {
    let sock = stream.as_fd();
    let mut last = Instant::now();
    let mut relay = match zerocopy::kind(stdout()) {
        FdKind::Pipe => {
            zerocopy::grow_pipe(stdout(), zerocopy::RELAY_SIZE);
            None
        }
        FdKind::File | FdKind::Other => Some(Relay::new().ok()?),
        FdKind::Terminal | FdKind::Closed => return None,
    };
    loop {
        let moved = match &mut relay {
            None => zerocopy::splice(sock, stdout(), zerocopy::CHUNK),
            Some(relay) => relay.fill(sock).and_then(|n| {
                match relay.flush(stdout()) {
                    Ok(()) => Ok(n),
                    Err(e) if zerocopy::unsupported(e) => {
                        // Standard output refuses splice: copy what the
                        // relay holds, then go on with the copy path.
                        let rest = relay.read_rest()?;
                        pump::write_all(stdout(), &rest)?;
                        Err(e)
                    }
                    Err(e) => Err(e),
                }
            }),
        };
        match moved {
            Ok(0) => return Some(ReceiverExit::PeerClosed),
            Ok(_) => last = Instant::now(),
            Err(Errno::EAGAIN) => {
                match zerocopy::wait(None, sock, stdout(), idle.map(|d| last + d)) {
                    Ok(Wait::Ready | Wait::Woken) => {}
                    Ok(Wait::OutputGone) => return Some(ReceiverExit::StdoutClosed),
                    Ok(Wait::Idle) => return Some(ReceiverExit::Idle),
                    Err(e) => {
                        report!("poll: {}", e.desc());
                        return Some(ReceiverExit::Failed);
                    }
                }
            }
            // No byte is lost: a refused call moved nothing.
            Err(e) if zerocopy::unsupported(e) => return None,
            Err(Errno::EPIPE) => return Some(ReceiverExit::StdoutClosed),
            Err(Errno::ECONNRESET) => return Some(ReceiverExit::Reset),
            Err(e) => {
                report!("splice from {peer} to stdout: {}", e.desc());
                return Some(ReceiverExit::Failed);
            }
        }
    }
}

/// What [`wait_readable`] saw.
enum Wake {
    /// The socket has data, end of file or an error to read.
    Readable,
    /// The reader of standard output is gone.
    StdoutGone,
    /// `deadline` (the idle timeout) passed first.
    Idle,
}

/// Waits until the socket is readable, the reader of standard output is
/// gone, or `deadline` passes. Errors: those of `poll(2)`. `watch` is
/// [`stdout_watch`]'s entry.
fn wait_readable(
    stream: &TcpStream,
    watch: &Option<PollFd<'_>>,
    deadline: Option<Instant>,
) -> Result<Wake, Errno> {
    let mut fds = vec![PollFd::new(stream.as_fd(), PollFlags::POLLIN)];
    fds.extend(watch.clone());
    loop {
        let timeout = match deadline {
            None => PollTimeout::NONE,
            Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => signals::timeout(left),
                _ => return Ok(Wake::Idle),
            },
        };
        match poll(&mut fds, timeout) {
            Ok(0) => continue,
            Ok(_) => break,
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
    if fds[0].any() != Some(true) && fds.len() == 2 && stdout_gone(&fds[1]) {
        return Ok(Wake::StdoutGone);
    }
    Ok(Wake::Readable)
}

/// How the peer's direction ended, as the reaped child told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Theirs {
    /// Normally: end of file, a word, or standard output gone.
    Ended(End),
    /// The peer reset the connection.
    Reset,
    /// Nothing was received for `--idle-timeout` seconds.
    Idle,
}

/// The parent: standard input to the socket, watching for the child's end.
struct Sender<'a> {
    out: Outbound<'a>,
    child: Pid,
    /// How the peer's direction ended, once the child is reaped.
    theirs: Cell<Option<Theirs>>,
    /// Whether the child is reaped (it may have ended in failure).
    reaped: Cell<bool>,
    /// The child saw the peer's end of file before any byte.
    silent: Cell<bool>,
    signals: &'a Signals,
    policy: Policy,
}

impl Sender<'_> {
    fn run(&self, input: &mut Input) -> Result<End, Error> {
        let mut ours_open = !self.policy.recv_only;
        loop {
            match self.theirs.get() {
                None => {}
                Some(Theirs::Reset) => return Err(self.out.reset(input)),
                Some(Theirs::Idle) => return Err(self.out.idle(self.policy.idle)),
                Some(Theirs::Ended(End::PeerClosed)) if ours_open && !self.policy.peer_eof_ends => {
                    // Their direction is over, ours is not: send the rest.
                    return Ok(match send_rest(&self.out, input, self.signals)? {
                        Rest::Ended => End::PeerClosed,
                        Rest::Word(word) => self.said(word),
                    });
                }
                Some(Theirs::Ended(end)) => return Ok(end),
            }
            if !ours_open {
                // Nothing more to send: the session lasts as long as the
                // peer's direction.
                self.wait_for_child(None)?;
                continue;
            }
            if self.signals.pending() {
                self.check()?;
                continue;
            }
            match self.forward(input)? {
                Forwarded::Some => {}
                Forwarded::Idle => self.wait_for_input()?,
                Forwarded::Blocked => match self.out.wait_direct(self.signals) {
                    Ok(true) => self.check()?,
                    Ok(false) => {}
                    Err(e) => return self.fail(Error::sys("poll", e)),
                },
                Forwarded::Eof => ours_open = false,
                Forwarded::Word(word) => return self.linger(word),
                Forwarded::Failed(errno) => {
                    self.wait_for_child(None)?;
                    return Err(self.out.failed(errno, input));
                }
            }
        }
    }

    /// Waits in `poll(2)` until standard input is readable or a signal
    /// arrives (then acts on it). Errors: those of [`Sender::check`].
    fn wait_for_input(&self) -> Result<(), Error> {
        let mut fds = [
            PollFd::new(self.signals.fd(), PollFlags::POLLIN),
            PollFd::new(stdin(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return self.fail(Error::sys("poll", e)),
        }
        if fds[0].any() == Some(true) {
            self.check()?;
        }
        Ok(())
    }

    /// Moves standard input to the socket without waiting: straight
    /// through the kernel when it can ([`Outbound::send_direct`]), else
    /// reads standard input if nothing is buffered, and sends what is; at
    /// end of file, ends our direction ([`Outbound::end`]).
    fn forward(&self, input: &mut Input) -> Result<Forwarded, Error> {
        if self.out.direct(input) {
            return Ok(match self.out.send_direct(input) {
                Ok(Moved::Some) => Forwarded::Some,
                Ok(Moved::Blocked) => Forwarded::Blocked,
                Ok(Moved::Eof) => {
                    self.out.end();
                    Forwarded::Eof
                }
                Err(e) => Forwarded::Failed(e),
            });
        }
        match input.fill() {
            Ok(Fill::Ready) => {}
            Ok(Fill::Again) => return Ok(Forwarded::Idle),
            Ok(Fill::Eof) => {
                self.out.end();
                return Ok(match input.finish() {
                    Some(word) => Forwarded::Word(word),
                    None => {
                        if self.theirs.get().is_none() {
                            still_receiving(input, self.out.peer());
                        }
                        Forwarded::Eof
                    }
                });
            }
            Err(e) => return self.fail(Error::sys("read from stdin", e)),
        }
        let Some(mark) = input.piece(false) else {
            return Ok(Forwarded::Some);
        };
        loop {
            match self.out.send(input, self.signals.fd()) {
                Ok(pump::Sent::All) => break,
                Ok(pump::Sent::Woken) => {
                    self.check()?;
                    if self.stop_sending() {
                        // The rest of the piece stays in `input`.
                        return Ok(Forwarded::Some);
                    }
                }
                Err(e) => return Ok(Forwarded::Failed(e)),
            }
        }
        Ok(mark.word.map_or(Forwarded::Some, Forwarded::Word))
    }

    /// Whether a send under way stops because the peer's direction ended
    /// in a way that ends the session. A peer that only half-closed may
    /// still read: unless the policy says otherwise, sending goes on.
    fn stop_sending(&self) -> bool {
        match self.theirs.get() {
            None => false,
            Some(Theirs::Ended(End::PeerClosed)) => self.policy.peer_eof_ends,
            Some(_) => true,
        }
    }

    /// We sent a protocol word (and half-closed): waits up to
    /// [`WORD_LINGER`] for the peer to close, so what it had in flight is
    /// still printed, then stops the child.
    fn linger(&self, word: Word) -> Result<End, Error> {
        self.out.half_close();
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
        match self.theirs.get() {
            Some(Theirs::Ended(
                end @ End::Word {
                    word: Word::Arret, ..
                },
            )) => end,
            _ => End::Word {
                word,
                by: Side::Local,
            },
        }
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
    /// `theirs`. Errors: [`Error::Signal`], or the child's failure.
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
        let peer_said = |word| {
            Theirs::Ended(End::Word {
                word,
                by: Side::Peer,
            })
        };
        let theirs = match status {
            Ok(WaitStatus::Exited(_, code)) => match ReceiverExit::from_code(code) {
                Some(ReceiverExit::PeerClosed) => Theirs::Ended(End::PeerClosed),
                Some(ReceiverExit::Silent) => {
                    self.silent.set(true);
                    Theirs::Ended(End::PeerClosed)
                }
                Some(ReceiverExit::StdoutClosed) => Theirs::Ended(End::StdoutClosed),
                Some(ReceiverExit::Bye) => peer_said(Word::Bye),
                Some(ReceiverExit::Arret) => peer_said(Word::Arret),
                Some(ReceiverExit::Reset) => Theirs::Reset,
                Some(ReceiverExit::Idle) => Theirs::Idle,
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
        self.theirs.set(Some(theirs));
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
    /// Bytes were sent (or a signal cut the send short).
    Some,
    /// Nothing to read now: wait for standard input.
    Idle,
    /// The direct path can move nothing now: wait for standard input and
    /// room in the socket.
    Blocked,
    /// Standard input reached end of file; the socket is half-closed.
    Eof,
    /// A protocol word was sent, ending its line.
    Word(Word),
    /// Sending failed with this `errno`: the connection is gone.
    Failed(Errno),
}

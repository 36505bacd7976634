//! Zero-copy transfer: the kernel moves the bytes between
//! standard input or output and the socket, without copying them through
//! this process, in both modes.
//!
//! With `--raw`, nothing looks at the bytes:
//! - standard input a pipe: `splice(2)` pipe to socket. Bytes leave the
//!   pipe only once the socket accepted them, so what a session did not
//!   send stays in the pipe for the next client of `chatd`;
//! - standard input a regular file: `sendfile(2)`, which advances the file
//!   offset by what the socket accepted (the same rule);
//! - standard output a pipe: `splice(2)` socket to pipe;
//! - standard output a regular file, `/dev/null`, a socket: `splice(2)`
//!   through an intermediate pipe of [`RELAY_SIZE`] bytes ([`Relay`]).
//!
//! The default mode must see the bytes (it looks for the protocol words).
//! Where it pays, it looks at them where they are, then lets the kernel
//! move them: one copy instead of two ([`crate::session::Input`],
//! [`crate::session::duplex`]):
//! - standard input a regular file: `pread(2)` (the offset stays), then
//!   `sendfile(2)`;
//! - standard output a pipe: `recv(MSG_PEEK)`, then `splice(2)` of exactly
//!   what was looked at, up to the end of a word's line.
//!
//! A pipe on standard input is copied (`read(2)`, scan, `send(2)`): an
//! earlier `tee(2)` + `splice(2)` path measured no faster end to end, and
//! slower in some runs (the peer's copy of spliced pages seems to cost
//! what the one copy saved; see `Path::Copy` in `session/input.rs`, and
//! docs/PERFORMANCE.md for the runs).
//!
//! The ordinary `read`/`write` path remains for terminals (whose output is
//! made safe, [`crate::display`]), `--crlf` (which rewrites line ends), the
//! lockstep mode, the default mode's other descriptors, and whatever
//! refuses `splice(2)` or `sendfile(2)` with `EINVAL`, `ENOSYS`
//! or `EOPNOTSUPP` ([`unsupported`]): it takes over silently, since the
//! error comes before any byte moved (`tests/zerocopy.rs` traces the
//! system calls to tell the paths apart). The path is chosen once per
//! session from what the descriptors are.
//!
//! The calls never wait on the socket (the duplex session sets
//! `O_NONBLOCK` on it) nor on a pipe of ours or of standard input and
//! output (`SPLICE_F_NONBLOCK`); [`wait`] then waits for both sides at
//! once, so a signal or the reader of standard output going away is seen
//! while idle. One call blocks: [`Relay::flush`] writes to a file,
//! `/dev/null` or a socket as `write(2)` would.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, SpliceFFlags, fcntl};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

/// The most bytes one `splice(2)` or `sendfile(2)` call is asked to move
/// (1 MiB): a call moves what is there, up to this, and a larger request
/// only costs a larger pipe or socket buffer to fill.
pub const CHUNK: usize = 1024 * 1024;

/// Size of the intermediate pipe between the socket and a standard output
/// that is not a pipe, and of the standard output pipe (`F_SETPIPE_SZ`),
/// in bytes: 1 MiB, Linux's default `/proc/sys/fs/pipe-max-size`, so that
/// one call moves up to 256 pages instead of 16.
pub const RELAY_SIZE: usize = 1024 * 1024;

/// What a descriptor is, as far as choosing a transfer path goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FdKind {
    /// A pipe or FIFO.
    Pipe,
    /// A regular file.
    File,
    /// A terminal.
    Terminal,
    /// Anything else: a socket, `/dev/null`, another character device.
    Other,
    /// Not open.
    Closed,
}

/// What `fd` is (`fstat(2)`, and `isatty(3)` for character devices).
pub fn kind(fd: BorrowedFd<'_>) -> FdKind {
    let Ok(stat) = nix::sys::stat::fstat(fd) else {
        return FdKind::Closed;
    };
    match stat.st_mode & libc::S_IFMT {
        libc::S_IFIFO => FdKind::Pipe,
        libc::S_IFREG => FdKind::File,
        libc::S_IFCHR if nix::unistd::isatty(fd).unwrap_or(false) => FdKind::Terminal,
        _ => FdKind::Other,
    }
}

/// Whether `errno`, from the first `splice(2)`/`sendfile(2)` on a pair of
/// descriptors, means "not supported here": the caller falls back to the
/// copy path, silently. No byte has moved when these come back.
pub fn unsupported(errno: Errno) -> bool {
    matches!(errno, Errno::EINVAL | Errno::ENOSYS | Errno::EOPNOTSUPP)
}

/// `splice(2)` of at most `len` bytes from `from` to `to` (one of them a
/// pipe), never waiting for the pipe (`SPLICE_F_NONBLOCK`), retrying
/// `EINTR`. Returns the bytes moved, 0 at end of file on `from`.
///
/// Errors: `EAGAIN` (nothing to move now, or no room), `EPIPE` (the
/// pipe's reader is gone), `ECONNRESET`, and those of [`unsupported`].
pub fn splice(from: BorrowedFd<'_>, to: BorrowedFd<'_>, len: usize) -> Result<usize, Errno> {
    let flags = SpliceFFlags::SPLICE_F_MOVE | SpliceFFlags::SPLICE_F_NONBLOCK;
    loop {
        match nix::fcntl::splice(from, None, to, None, len, flags) {
            Err(Errno::EINTR) => continue,
            other => return other,
        }
    }
}

/// `sendfile(2)` of at most `len` bytes from the regular file `file`, at
/// its offset (which advances by what was sent), to the socket `sock`,
/// retrying `EINTR`. Returns the bytes sent, 0 at end of file.
///
/// Errors: `EAGAIN` (the socket is full), `EPIPE`, `ECONNRESET`, and those
/// of [`unsupported`].
pub fn sendfile(sock: BorrowedFd<'_>, file: BorrowedFd<'_>, len: usize) -> Result<usize, Errno> {
    loop {
        match nix::sys::sendfile::sendfile(sock, file, None, len) {
            Err(Errno::EINTR) => continue,
            other => return other,
        }
    }
}

/// Asks for a pipe of `bytes` bytes (`F_SETPIPE_SZ`). Best effort: an
/// unprivileged process may be refused beyond
/// `/proc/sys/fs/pipe-max-size`, and the pipe then keeps its size.
pub fn grow_pipe(fd: BorrowedFd<'_>, bytes: usize) {
    let bytes = i32::try_from(bytes).unwrap_or(i32::MAX);
    // SAFETY: F_SETPIPE_SZ takes an int and touches no memory of ours.
    let _ = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETPIPE_SZ, bytes) };
}

/// Sets `O_NONBLOCK` on `fd`'s open file description (shared with every
/// process that holds it). Errors: those of `fcntl(2)`.
pub fn set_nonblocking(fd: BorrowedFd<'_>) -> Result<(), Errno> {
    let flags = OFlag::from_bits_retain(fcntl(fd, FcntlArg::F_GETFL)?);
    fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK)).map(drop)
}

/// What [`wait`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Both sides are ready (or in error: the next call reports it).
    Ready,
    /// The wake-up descriptor became readable (a signal arrived).
    Woken,
    /// The output reported `POLLERR`/`POLLHUP`: its reader is gone (a pipe)
    /// or the connection failed (a socket).
    OutputGone,
    /// The `idle` deadline passed while the input had nothing
    /// (`--idle-timeout`).
    Idle,
}

/// After `EAGAIN`, waits until `input` is readable and `output` writable,
/// both at once, or `wake` (the signal pipe) is readable. Each side is
/// waited for in turn, so a side that is ready does not make the wait
/// spin; `output` stays watched for `POLLERR` meanwhile (`chat host |
/// head -1`: the reader of standard output left while the peer is silent).
///
/// While the input has nothing, the wait ends at `idle` if one is given
/// ([`Wait::Idle`]); waiting for room in the output has no deadline.
///
/// Errors: those of `poll(2)` other than `EINTR`.
pub fn wait(
    wake: Option<BorrowedFd<'_>>,
    input: BorrowedFd<'_>,
    output: BorrowedFd<'_>,
    idle: Option<std::time::Instant>,
) -> Result<Wait, Errno> {
    let (mut need_in, mut need_out) = (true, true);
    loop {
        let mut fds = Vec::with_capacity(3);
        fds.extend(wake.map(|fd| PollFd::new(fd, PollFlags::POLLIN)));
        let first = fds.len();
        if need_in {
            fds.push(PollFd::new(input, PollFlags::POLLIN));
        }
        let out_events = if need_out {
            PollFlags::POLLOUT
        } else {
            PollFlags::empty()
        };
        fds.push(PollFd::new(output, out_events));
        let timeout = match idle.filter(|_| need_in) {
            None => PollTimeout::NONE,
            Some(deadline) => match deadline.checked_duration_since(std::time::Instant::now()) {
                Some(left) if !left.is_zero() => crate::signals::timeout(left),
                _ => return Ok(Wait::Idle),
            },
        };
        match poll(&mut fds, timeout) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(e),
        }
        if first == 1 && fds[0].any() == Some(true) {
            return Ok(Wait::Woken);
        }
        let out = fds[fds.len() - 1].revents().unwrap_or(PollFlags::empty());
        if out.intersects(PollFlags::POLLERR | PollFlags::POLLHUP | PollFlags::POLLNVAL) {
            return Ok(Wait::OutputGone);
        }
        if need_in && fds[first].any() == Some(true) {
            need_in = false;
        }
        if out.contains(PollFlags::POLLOUT) {
            need_out = false;
        }
        if !need_in && !need_out {
            return Ok(Wait::Ready);
        }
    }
}

/// An intermediate pipe, for `splice(2)` between two descriptors neither
/// of which is a pipe (the socket and a standard output that is a file).
#[derive(Debug)]
pub struct Relay {
    read: OwnedFd,
    write: OwnedFd,
    /// Bytes in the pipe.
    held: usize,
}

impl Relay {
    /// A close-on-exec pipe of [`RELAY_SIZE`] bytes (or the system's
    /// default size if that is refused). Errors: those of `pipe2(2)`.
    pub fn new() -> Result<Relay, Errno> {
        let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
        grow_pipe(write.as_fd(), RELAY_SIZE);
        Ok(Relay {
            read,
            write,
            held: 0,
        })
    }

    /// Moves what `from` has, up to the pipe's room, into the pipe. Returns
    /// the bytes moved, 0 at end of file. Errors: those of [`splice`]. Call
    /// only when the pipe is empty ([`Relay::flush`]).
    pub fn fill(&mut self, from: BorrowedFd<'_>) -> Result<usize, Errno> {
        let n = splice(from, self.write.as_fd(), RELAY_SIZE)?;
        self.held += n;
        Ok(n)
    }

    /// Moves everything the pipe holds to `to`, blocking on `to` as a
    /// `write(2)` would (`to` is a file, `/dev/null` or a socket).
    /// Errors: those of `splice(2)` (`EPIPE`, `ENOSPC`, unsupported);
    /// on one, what is left stays in the pipe for [`Relay::read_rest`].
    pub fn flush(&mut self, to: BorrowedFd<'_>) -> Result<(), Errno> {
        while self.held > 0 {
            let flags = SpliceFFlags::SPLICE_F_MOVE;
            match nix::fcntl::splice(self.read.as_fd(), None, to, None, self.held, flags) {
                Ok(0) => return Err(Errno::EIO),
                Ok(n) => self.held -= n,
                Err(Errno::EINTR) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Takes what is left in the pipe out with `read(2)` (after `to`
    /// refused `splice`, so the copy path can write it). Errors: those of
    /// `read(2)`.
    pub fn read_rest(&mut self) -> Result<Vec<u8>, Errno> {
        let mut rest = vec![0; self.held];
        let mut got = 0;
        while got < rest.len() {
            match crate::pump::read(&self.read, &mut rest[got..])? {
                0 => break,
                n => got += n,
            }
        }
        rest.truncate(got);
        self.held = 0;
        Ok(rest)
    }
}

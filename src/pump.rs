//! Moving bytes: `read(2)`/`write(2)` loops on raw file descriptors that
//! retry `EINTR` and finish partial writes.
//!
//! Standard output is written with `write(2)` directly, never through
//! `std::io::Stdout` and its line buffer: a forked child must not inherit
//! buffered bytes, and a chunk of [`BUF_SIZE`] should cost one system call.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{MsgFlags, send};

/// Size of every copy buffer, in bytes (512 KiB; `nc` uses 16 KiB, `socat`
/// 8 KiB by default). Chosen by measurement: of 128 KiB, 256 KiB, 512 KiB
/// and 1 MiB, 512 KiB moved the default-mode pipeline (`cat FILE | chat …`
/// → `chatd -1 < /dev/null | wc -c`) fastest and with the least CPU, in
/// both directions; the runs, and `scripts/bench pipeline` with the
/// 128 KiB build beside this one, are in docs/PERFORMANCE.md.
///
/// A larger `send(2)` and `recv(MSG_PEEK)` mean fewer system calls and
/// fewer wake-ups on each side of the loopback; at 1 MiB the buffer no
/// longer stays in the CPU's cache between the read and the send. Pages
/// are touched only as bytes arrive: a session of short lines, or an echo
/// child, uses a few pages of it.
pub const BUF_SIZE: usize = 512 * 1024;

/// Standard input (descriptor 0), borrowed for the life of the process.
/// The one place every module takes it from.
pub fn stdin() -> BorrowedFd<'static> {
    // SAFETY: descriptor 0 is never closed while borrowed: only a forked
    // child that no longer reads it closes it, right after the fork. Rust's
    // runtime opens /dev/null on a descriptor 0, 1 or 2 that was closed
    // when the program started, so it is always open.
    unsafe { BorrowedFd::borrow_raw(libc::STDIN_FILENO) }
}

/// Standard output (descriptor 1), borrowed for the life of the process.
/// The one place every module takes it from.
pub fn stdout() -> BorrowedFd<'static> {
    // SAFETY: descriptor 1 is never closed by this program (the duplex
    // parent of a single session replaces it with /dev/null with dup2, see
    // `session::duplex`); Rust's runtime opens /dev/null on it if it was
    // closed when the program started.
    unsafe { BorrowedFd::borrow_raw(libc::STDOUT_FILENO) }
}

/// `read(2)` on `fd`, retrying `EINTR`. Returns the number of bytes read,
/// 0 at end of file. Errors: the `errno` of `read(2)` (`EAGAIN` on a
/// non-blocking descriptor with nothing to read).
pub fn read(fd: impl AsFd, buf: &mut [u8]) -> Result<usize, Errno> {
    let fd = fd.as_fd();
    loop {
        match nix::unistd::read(fd, buf) {
            Err(Errno::EINTR) => continue,
            other => return other,
        }
    }
}

/// `read(2)` on `fd` that never waits: `preadv2(2)` with `RWF_NOWAIT`
/// (Linux 4.14; pipes and sockets accept it since Linux 5.x), retrying
/// `EINTR`. Returns the number of bytes read, 0 at end of file. One system
/// call where `poll` then `read` took two.
///
/// Errors: `EAGAIN` when nothing is there now; `EOPNOTSUPP` (a terminal,
/// most character devices) or `EINVAL` (an older kernel) when `fd` cannot
/// be read that way: the caller then waits with `poll(2)` first; the other
/// `errno`s of `read(2)`.
pub fn read_nowait(fd: impl AsFd, buf: &mut [u8]) -> Result<usize, Errno> {
    let fd = fd.as_fd();
    let iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    loop {
        // SAFETY: iov describes `buf`, valid for writes of its length for
        // the whole call; offset -1 reads at the current position, as
        // read(2) does.
        let n = unsafe { libc::preadv2(fd.as_raw_fd(), &iov, 1, -1, libc::RWF_NOWAIT) };
        match Errno::result(n) {
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
            Ok(n) => return Ok(n as usize),
        }
    }
}

/// Writes all of `buf` to `fd` with `write(2)`, finishing partial writes and
/// retrying `EINTR`. Errors: the `errno` of `write(2)` (`EPIPE` when the
/// reader is gone: `SIGPIPE` is ignored by [`crate::signals::Signals::install`]).
pub fn write_all(fd: impl AsFd, mut buf: &[u8]) -> Result<(), Errno> {
    let fd = fd.as_fd();
    while !buf.is_empty() {
        match nix::unistd::write(fd, buf) {
            Ok(0) => return Err(Errno::EIO),
            Ok(n) => buf = &buf[n..],
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// What [`send_watching`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// Every byte was sent.
    All,
    /// `wake` became readable first (a signal arrived): the caller acts on
    /// it, then calls again with what is left.
    Woken,
}

/// Sends `buf` on the socket `sock`, advancing `buf` past what was sent,
/// without ever blocking in `send(2)`: `MSG_DONTWAIT` leaves the socket
/// blocking for any other process sharing it (the forked child), and while
/// the peer does not read (backpressure) this waits in `poll(2)` for room
/// (`POLLOUT`) or for `wake` (the signal self-pipe). `MSG_NOSIGNAL`: a
/// closed peer gives `EPIPE`, never `SIGPIPE`.
///
/// Errors: the `errno` of `send(2)` (`EPIPE`, `ECONNRESET`) or `poll(2)`.
pub fn send_watching(
    sock: BorrowedFd<'_>,
    buf: &mut &[u8],
    wake: BorrowedFd<'_>,
) -> Result<Sent, Errno> {
    let flags = MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL;
    while !buf.is_empty() {
        match send(sock.as_raw_fd(), buf, flags) {
            Ok(n) => *buf = &buf[n..],
            Err(Errno::EINTR) => {}
            Err(Errno::EAGAIN) => {
                let mut fds = [
                    PollFd::new(wake, PollFlags::POLLIN),
                    PollFd::new(sock, PollFlags::POLLOUT),
                ];
                match poll(&mut fds, PollTimeout::NONE) {
                    Ok(_) | Err(Errno::EINTR) => {}
                    Err(e) => return Err(e),
                }
                if fds[0].any() == Some(true) {
                    return Ok(Sent::Woken);
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(Sent::All)
}

/// How [`drain`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drained {
    /// The peer closed its direction (end of file), or its connection
    /// failed (a reset, any read error): nothing more will come. (Also
    /// when `poll` itself fails: waiting is over either way.)
    Closed,
    /// `deadline` passed first (or nothing was there, with a deadline
    /// already past).
    Deadline,
    /// `wake` became readable first (a signal arrived): the caller acts on
    /// it, then calls again with the same deadline.
    Woken,
    /// `sink` failed with this `errno` (`EPIPE`: standard output is gone).
    Sink(Errno),
}

/// After our last byte and our half-close (`shutdown(SHUT_WR)`): reads
/// what the peer of `sock` still sends, giving each piece to `sink`, until
/// it closes too, `deadline` passes, or `wake` is readable. A socket
/// closed with unread input makes the kernel send a reset (RFC 1122
/// 4.2.2.13), which can destroy our last bytes before the peer reads them;
/// waiting for the peer's own close avoids that, and the deadline bounds
/// the wait for a peer that never closes.
///
/// Reads at least once if `sock` is readable, so that a deadline already
/// past reads what is there without waiting (a poll loop that watches many
/// lingering sockets calls it that way). `buf` is where each piece is read.
pub fn drain(
    sock: BorrowedFd<'_>,
    wake: Option<BorrowedFd<'_>>,
    deadline: std::time::Instant,
    buf: &mut [u8],
    mut sink: impl FnMut(&[u8]) -> Result<(), Errno>,
) -> Drained {
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let mut fds = vec![PollFd::new(sock, PollFlags::POLLIN)];
        fds.extend(wake.map(|fd| PollFd::new(fd, PollFlags::POLLIN)));
        match poll(&mut fds, crate::signals::timeout(left)) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(_) => return Drained::Closed,
        }
        if fds.get(1).is_some_and(|fd| fd.any() == Some(true)) {
            return Drained::Woken;
        }
        if fds[0].any() == Some(true) {
            match read(sock, buf) {
                Ok(0) => return Drained::Closed,
                Ok(n) => {
                    if let Err(e) = sink(&buf[..n]) {
                        return Drained::Sink(e);
                    }
                }
                Err(Errno::EAGAIN) => {}
                Err(_) => return Drained::Closed,
            }
        }
        if left.is_zero() {
            return Drained::Deadline;
        }
    }
}

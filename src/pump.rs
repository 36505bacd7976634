//! Moving bytes: `read(2)`/`write(2)` loops on raw file descriptors that
//! retry `EINTR` and finish partial writes.
//!
//! Standard output is written with `write(2)` directly, never through
//! `std::io::Stdout` and its line buffer: a forked child must not inherit
//! buffered bytes, and a 128 KiB chunk should cost one system call.

use std::os::fd::AsFd;

use nix::errno::Errno;

/// Size of every copy buffer, in bytes (128 KiB): large enough that the
/// buffer is never the bottleneck on loopback (the issue asks for 64 KiB or
/// more; `nc` uses 16 KiB, `socat` 8 KiB by default).
pub const BUF_SIZE: usize = 128 * 1024;

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

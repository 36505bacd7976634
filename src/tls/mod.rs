//! `--tls`: encrypted and authenticated connections, verified by
//! certificate fingerprint and trust on first use (as SSH), with rustls
//! and its `ring` provider.
//!
//! This layer sits beside [`crate::net`] and [`crate::access`]: above the
//! session, the fork and the status lines, below the broker, the services
//! and the command line, which it never imports.
//!
//! - [`fingerprint`]: the SHA-256 of a DER certificate, `SHA256:0C:E6:…`,
//!   and `--pin`'s forms;
//! - [`identity`]: the persistent self-signed certificate and key under
//!   `$XDG_CONFIG_HOME/chat/`, or `--cert`/`--key`;
//! - [`known_hosts`]: the servers seen (`[host]:port FINGERPRINT`), and the
//!   trust-on-first-use decision;
//! - [`names`]: the room's names bound to client certificates;
//! - [`config`]: the rustls configurations of both roles;
//! - [`handshake`]: the handshake, bounded in time, telling plain text
//!   and silence apart from TLS errors;
//! - [`client`] and [`server`]: the handshake of `chat --tls` with its
//!   trust decision, and of `chatd --tls` with its refusals;
//! - [`event`]: a client's TLS state driven by the room's event loop;
//! - [`pump`]: one process owning the TCP socket and the TLS state, copying
//!   to and from a `socketpair(2)` on which the session runs unchanged.

pub mod client;
pub mod config;
pub mod event;
pub mod fingerprint;
pub mod handshake;
pub mod identity;
pub mod known_hosts;
pub mod names;
pub mod pump;
pub mod server;

pub use fingerprint::Fingerprint;
pub use identity::Identity;

use std::io::{self, Read, Write};
use std::os::fd::BorrowedFd;

use nix::errno::Errno;

/// A descriptor as `io::Read`/`io::Write` for rustls's `read_tls` and
/// `write_tls` (the pump's and the room's), through `read(2)`/`write(2)`:
/// `EINTR` retried, `EAGAIN` becomes `WouldBlock`.
pub(crate) struct Fd<'a>(pub(crate) BorrowedFd<'a>);

impl Read for Fd<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match nix::unistd::read(self.0, buf) {
                Err(Errno::EINTR) => {}
                other => return other.map_err(io::Error::from),
            }
        }
    }
}

impl Write for Fd<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        loop {
            match nix::unistd::write(self.0, buf) {
                Err(Errno::EINTR) => {}
                other => return other.map_err(io::Error::from),
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

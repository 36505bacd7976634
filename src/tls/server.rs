//! `chatd --tls` (one-to-one sessions and services): the handshake with a
//! client that was accepted, and what to do when it fails. A failed
//! handshake is one status line and the server goes on; a client that
//! speaks plain text, or says nothing for the handshake's time (a plain
//! client waiting for its user to type), gets the one line
//! [`PLAIN_REFUSAL`] in plain text.

use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, poll};
use nix::sys::socket::{MsgFlags, Shutdown, recv, shutdown};
use rustls::{Connection, ServerConfig, ServerConnection};

use crate::error::Error;
use crate::signals::Signals;
use crate::tls::Fingerprint;
use crate::tls::client::{peer_fingerprint, version};
use crate::tls::config::HANDSHAKE_TIMEOUT;
use crate::tls::handshake::{Failure, PLAIN_REFUSAL, handshake, shown};
use crate::{report, status};

/// How long a refused plain-text client is still read (and what it sends
/// dropped) after the refusal, so that closing with its bytes unread does
/// not reset the line away (the services' `LINGER`, shorter: the
/// one-to-one server waits for it before the next client).
pub const REFUSAL_LINGER: Duration = Duration::from_millis(500);

/// The handshake with the client at `peer` on `tcp`, within
/// [`HANDSHAKE_TIMEOUT`], watching `signals` when given. Returns the
/// connection and the fingerprint of the client's certificate (if it
/// showed one), after a status line saying both; `None` when the
/// handshake failed: a status line said why (and a plain-text client got
/// [`PLAIN_REFUSAL`]).
///
/// Errors: only [`Error::Signal`], for a terminating signal.
pub fn accept(
    config: &Arc<ServerConfig>,
    tcp: &TcpStream,
    peer: SocketAddr,
    signals: Option<&Signals>,
) -> Result<Option<(Connection, Option<Fingerprint>)>, Error> {
    let server = match ServerConnection::new(Arc::clone(config)) {
        Ok(server) => server,
        Err(e) => {
            report!("{peer}: TLS set-up: {e}");
            return Ok(None);
        }
    };
    let mut conn = Connection::Server(server);
    match handshake(&mut conn, tcp, HANDSHAKE_TIMEOUT, signals) {
        Ok(()) => {}
        Err(Failure::Signal(n)) => return Err(Error::Signal(n)),
        Err(Failure::PlainText(bytes)) => {
            status!(
                "{peer} spoke plain text to a TLS port (\"{}\"): refused",
                shown(&bytes)
            );
            refuse_plain(tcp);
            return Ok(None);
        }
        Err(Failure::Timeout(t)) => {
            // A plain-text client that waits for its user says nothing
            // either: it is told why it is dropped.
            status!(
                "no TLS handshake from {peer} within {} s: dropped",
                t.as_secs()
            );
            refuse_plain(tcp);
            return Ok(None);
        }
        Err(failure) => {
            status!("TLS handshake with {peer} failed: {failure}");
            return Ok(None);
        }
    }
    let client = peer_fingerprint(&conn);
    match client {
        Some(fp) => status!("{} with {peer}, client certificate {fp}", version(&conn)),
        None => status!("{} with {peer}, no client certificate", version(&conn)),
    }
    Ok(Some((conn, client)))
}

/// Sends [`PLAIN_REFUSAL`] to a plain-text client and closes cleanly: what
/// it sent is read and dropped, the line sent, the socket half-closed, and
/// what follows read until its end of file or [`REFUSAL_LINGER`].
pub fn refuse_plain(tcp: &TcpStream) {
    let fd = tcp.as_raw_fd();
    let drain = || {
        let mut buf = [0u8; 4096];
        loop {
            match recv(fd, &mut buf, MsgFlags::MSG_DONTWAIT) {
                Ok(0) => return true,
                Ok(_) | Err(Errno::EINTR) => {}
                Err(_) => return false,
            }
        }
    };
    drain();
    let _ = nix::sys::socket::send(
        fd,
        PLAIN_REFUSAL,
        MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL,
    );
    let _ = shutdown(fd, Shutdown::Write);
    let deadline = Instant::now() + REFUSAL_LINGER;
    loop {
        if drain() {
            return;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        let mut fds = [PollFd::new(
            std::os::fd::AsFd::as_fd(tcp),
            PollFlags::POLLIN,
        )];
        if poll(&mut fds, crate::signals::timeout(left)).is_err() {
            return;
        }
    }
}

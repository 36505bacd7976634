//! The TLS handshake on a connected socket, bounded in time, with the
//! errors a person can act on: a peer that speaks plain text, a peer that
//! says nothing, a refused certificate.
//!
//! A TLS connection starts with a record of type handshake (22, `0x16`,
//! RFC 8446 §5.1) from the client, answered by one from the server (or an
//! alert, `0x15`). The first byte each side receives is looked at with
//! `MSG_PEEK` before rustls sees it: anything else is a peer that does not
//! speak TLS, told apart from a broken handshake.

use std::io;
use std::net::TcpStream;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags};
use nix::sys::socket::{MsgFlags, recv};
use rustls::Connection;

use crate::signals::{self, Signals};

/// The line a `chatd --tls` sends, in plain text, to a client that spoke
/// plain text to it, before closing (the client's user sees why).
pub const PLAIN_REFUSAL: &[u8] =
    b"chatd: this port speaks TLS: connect with chat --tls, ncat --ssl or openssl s_client\n";

/// The first byte of a TLS record carrying a handshake message.
const HANDSHAKE_RECORD: u8 = 0x16;
/// The first byte of a TLS record carrying an alert.
const ALERT_RECORD: u8 = 0x15;

/// Why a handshake did not complete.
#[derive(Debug)]
pub enum Failure {
    /// Nothing completed it within the time allowed.
    Timeout(Duration),
    /// The peer's first bytes are not TLS: it speaks plain text. Holds
    /// those bytes (at most 64) for the message.
    PlainText(Vec<u8>),
    /// The peer closed the connection before the handshake completed.
    Closed,
    /// rustls refused the handshake: an alert from the peer, a certificate
    /// the verifier refused, a protocol error.
    Tls(rustls::Error),
    /// A system call failed (`ECONNRESET` for a reset), naming it.
    Sys(&'static str, Errno),
    /// A terminating signal arrived (SIGINT, SIGTERM, SIGHUP): its number.
    Signal(i32),
}

impl std::fmt::Display for Failure {
    /// A phrase for `PROGRAM: TLS handshake with PEER failed: …`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Timeout(t) => write!(f, "no handshake within {} s", t.as_secs_f64()),
            Failure::PlainText(_) => f.write_str("the peer speaks plain text, not TLS"),
            Failure::Closed => f.write_str("the peer closed the connection"),
            Failure::Tls(e) => write!(f, "{e}"),
            Failure::Sys(what, errno) => write!(f, "{what}: {}", errno.desc()),
            Failure::Signal(n) => write!(f, "stopped by signal {n}"),
        }
    }
}

/// At most the first 40 of `bytes`, for a one-line message: the final
/// line end dropped, other bytes outside printable ASCII escaped (`\n`,
/// `\x16`), so that a peer's bytes never reach the terminal raw.
pub fn shown(bytes: &[u8]) -> String {
    let bytes = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
    let mut text: String = bytes
        .iter()
        .take(40)
        .flat_map(|b| b.escape_ascii())
        .map(char::from)
        .collect();
    if bytes.len() > 40 {
        text.push('…');
    }
    text
}

/// Completes the handshake of `conn` on `tcp` within `timeout`, watching
/// `signals` (a terminating signal stops it). `tcp` is made non-blocking
/// for the time of the handshake and blocking again after it.
///
/// Errors: a [`Failure`]; the connection is then to be closed (the alert
/// rustls queued for a refused handshake has been sent).
pub fn handshake(
    conn: &mut Connection,
    tcp: &TcpStream,
    timeout: Duration,
    signals: Option<&Signals>,
) -> Result<(), Failure> {
    tcp.set_nonblocking(true)
        .map_err(|e| Failure::Sys("fcntl", crate::error::errno_of(&e)))?;
    let result = drive(conn, tcp, timeout, signals);
    let _ = tcp.set_nonblocking(false);
    result
}

fn drive(
    conn: &mut Connection,
    tcp: &TcpStream,
    timeout: Duration,
    signals: Option<&Signals>,
) -> Result<(), Failure> {
    let deadline = Instant::now() + timeout;
    let mut looked = false;
    let mut stream = tcp;
    while conn.is_handshaking() || conn.wants_write() {
        while conn.wants_write() {
            match conn.write_tls(&mut stream) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(Failure::Sys("send", crate::error::errno_of(&e))),
            }
        }
        if !conn.is_handshaking() && !conn.wants_write() {
            break;
        }
        let mut events = PollFlags::empty();
        if conn.wants_read() {
            events |= PollFlags::POLLIN;
        }
        if conn.wants_write() {
            events |= PollFlags::POLLOUT;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Failure::Timeout(timeout));
        }
        let ready = match signals {
            Some(signals) => {
                let mut fds = [
                    PollFd::new(signals.fd(), PollFlags::POLLIN),
                    PollFd::new(tcp.as_fd(), events),
                ];
                match signals.poll(&mut fds, signals::timeout(left)) {
                    Ok(()) => {}
                    Err(crate::Error::Signal(n)) => return Err(Failure::Signal(n)),
                    Err(_) => return Err(Failure::Sys("poll", Errno::EIO)),
                }
                fds[1].revents()
            }
            None => {
                let mut fds = [PollFd::new(tcp.as_fd(), events)];
                match nix::poll::poll(&mut fds, signals::timeout(left)) {
                    Ok(_) | Err(Errno::EINTR) => {}
                    Err(e) => return Err(Failure::Sys("poll", e)),
                }
                fds[0].revents()
            }
        }
        .unwrap_or(PollFlags::empty());
        if !ready.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR) {
            continue;
        }
        if !looked {
            let mut first = [0u8; 64];
            match recv(
                std::os::fd::AsRawFd::as_raw_fd(tcp),
                &mut first,
                MsgFlags::MSG_PEEK | MsgFlags::MSG_DONTWAIT,
            ) {
                Ok(0) => return Err(Failure::Closed),
                Ok(n) if first[0] != HANDSHAKE_RECORD && first[0] != ALERT_RECORD => {
                    return Err(Failure::PlainText(first[..n].to_vec()));
                }
                Ok(_) => looked = true,
                Err(Errno::EAGAIN | Errno::EINTR) => continue,
                Err(e) => return Err(Failure::Sys("recv", e)),
            }
        }
        match conn.read_tls(&mut stream) {
            Ok(0) => return Err(Failure::Closed),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(Failure::Sys("recv", crate::error::errno_of(&e))),
        }
        if let Err(e) = conn.process_new_packets() {
            // Send the alert rustls queued (best effort), then fail.
            while conn.wants_write() {
                if conn.write_tls(&mut stream).is_err() {
                    break;
                }
            }
            return Err(Failure::Tls(e));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::config::{client_config, server_config, server_name, tests::identities};
    use rustls::{ClientConnection, ServerConnection};
    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::thread;

    fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        (client, server)
    }

    #[test]
    fn both_sides_complete_the_handshake() {
        let (_dir, server_id, client_id) = identities();
        let (c_tcp, s_tcp) = pair();
        let config = server_config(&server_id).unwrap();
        let server = thread::spawn(move || {
            let mut conn = Connection::Server(ServerConnection::new(config).unwrap());
            handshake(&mut conn, &s_tcp, Duration::from_secs(20), None).map(|()| conn)
        });
        let mut conn = Connection::Client(
            ClientConnection::new(
                client_config(&client_id, None).unwrap().0,
                server_name("chatd"),
            )
            .unwrap(),
        );
        handshake(&mut conn, &c_tcp, Duration::from_secs(20), None).unwrap();
        let server = server.join().unwrap().unwrap();
        assert!(!server.is_handshaking());
        assert!(!c_tcp.nonblocking_probe());
    }

    #[test]
    fn plain_text_is_told_apart() {
        let (_dir, server_id, client_id) = identities();
        // A plain-text client.
        let (mut c_tcp, s_tcp) = pair();
        c_tcp.write_all(b"hello\n").unwrap();
        let mut conn =
            Connection::Server(ServerConnection::new(server_config(&server_id).unwrap()).unwrap());
        match handshake(&mut conn, &s_tcp, Duration::from_secs(20), None) {
            Err(Failure::PlainText(bytes)) => assert_eq!(bytes, b"hello\n"),
            other => panic!("{other:?}"),
        }
        // A plain-text server that greets.
        let (c_tcp, mut s_tcp) = pair();
        s_tcp.write_all(b"[chatd] welcome\n").unwrap();
        let mut conn = Connection::Client(
            ClientConnection::new(
                client_config(&client_id, None).unwrap().0,
                server_name("chatd"),
            )
            .unwrap(),
        );
        assert!(matches!(
            handshake(&mut conn, &c_tcp, Duration::from_secs(20), None),
            Err(Failure::PlainText(_))
        ));
        // What the plain-text server received is a TLS ClientHello.
        let mut first = [0u8; 1];
        s_tcp.read_exact(&mut first).unwrap();
        assert_eq!(first[0], HANDSHAKE_RECORD);
    }

    #[test]
    fn a_silent_peer_times_out_and_a_closing_one_is_said() {
        let (_dir, server_id, _client_id) = identities();
        let (_c_tcp, s_tcp) = pair();
        let mut conn =
            Connection::Server(ServerConnection::new(server_config(&server_id).unwrap()).unwrap());
        let started = Instant::now();
        assert!(matches!(
            handshake(&mut conn, &s_tcp, Duration::from_millis(300), None),
            Err(Failure::Timeout(_))
        ));
        assert!(started.elapsed() >= Duration::from_millis(300));
        let (c_tcp, s_tcp) = pair();
        drop(c_tcp);
        let mut conn =
            Connection::Server(ServerConnection::new(server_config(&server_id).unwrap()).unwrap());
        assert!(matches!(
            handshake(&mut conn, &s_tcp, Duration::from_secs(20), None),
            Err(Failure::Closed)
        ));
    }

    #[test]
    fn peer_bytes_are_shown_escaped() {
        assert_eq!(shown(b"hello\r\n"), "hello");
        assert_eq!(shown(b"\x1b[2J\x16"), "\\x1b[2J\\x16");
        assert_eq!(shown(&[b'a'; 50]), format!("{}…", "a".repeat(40)));
    }

    trait Probe {
        fn nonblocking_probe(&self) -> bool;
    }

    impl Probe for TcpStream {
        /// Whether O_NONBLOCK is set.
        fn nonblocking_probe(&self) -> bool {
            let flags = nix::fcntl::fcntl(self, nix::fcntl::FcntlArg::F_GETFL).unwrap();
            nix::fcntl::OFlag::from_bits_truncate(flags).contains(nix::fcntl::OFlag::O_NONBLOCK)
        }
    }
}

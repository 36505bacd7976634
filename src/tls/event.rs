//! A TLS connection driven by an event loop (the room of `chatd --broker
//! --tls`), the way rustls's `tlsserver-mio` example drives one: the loop
//! owns each client's rustls state (no process per client), calls these
//! when the client's socket is readable or writable, and never blocks.
//!
//! The socket is non-blocking and watched edge-triggered: a read goes on
//! until the socket says `EAGAIN` or there is plaintext to hand over
//! ([`Secure::read`] says whether more may follow), and what rustls wants
//! to send (handshake messages, a KeyUpdate answer, an alert) is sent as
//! soon as it is made; what the socket does not take waits in rustls (at
//! most its buffer limit, 64 KiB) for the next `EPOLLOUT`, before any new
//! plaintext is accepted.

use std::io::{self, IoSlice, Read, Write};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::Arc;

use nix::errno::Errno;
use nix::sys::socket::{MsgFlags, recv};
use rustls::{ServerConfig, ServerConnection};

use crate::tls::{Fd, Fingerprint};

/// A record of type handshake opens every TLS connection (RFC 8446 §5.1).
const HANDSHAKE_RECORD: u8 = 0x16;

/// Where a handshake stands ([`Secure::handshake`]).
#[derive(Debug)]
pub enum Shake {
    /// Complete: the connection carries data.
    Done,
    /// Waiting for the peer (the socket said `EAGAIN`).
    Pending,
    /// The peer's first bytes are not TLS (at most 64 of them).
    PlainText(Vec<u8>),
    /// The peer closed before the handshake completed.
    Closed,
    /// rustls refused it, or a system call failed: why, in a phrase.
    Failed(String),
}

/// What [`Secure::read`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Got {
    /// `n` bytes of plaintext; more may follow at once (read again until
    /// [`Got::WouldBlock`]).
    Data(usize),
    /// Nothing now: wait for the next readable edge.
    WouldBlock,
    /// The peer's end: after close_notify (`true`), or a TCP end of file
    /// without it (`false`, as ncat does; still an ordinary end).
    End(bool),
}

/// One client's TLS state, for an event loop.
#[derive(Debug)]
pub struct Secure {
    conn: ServerConnection,
    /// The first byte was looked at (plain text is told apart).
    looked: bool,
    /// Why the connection failed, once it has.
    failure: Option<String>,
}

impl Secure {
    /// A server connection for a client that just connected.
    ///
    /// Errors: rustls's, in a phrase.
    pub fn new(config: &Arc<ServerConfig>) -> Result<Secure, String> {
        let conn = ServerConnection::new(Arc::clone(config)).map_err(|e| e.to_string())?;
        Ok(Secure {
            conn,
            looked: false,
            failure: None,
        })
    }

    /// Moves the handshake on with what the socket `fd` holds, and sends
    /// what rustls answers.
    pub fn handshake(&mut self, fd: BorrowedFd<'_>) -> Shake {
        loop {
            if let Err(e) = self.flush(fd)
                && e != Errno::EAGAIN
            {
                return Shake::Failed(e.desc().to_owned());
            }
            if !self.conn.is_handshaking() {
                return Shake::Done;
            }
            if !self.looked {
                let mut first = [0u8; 64];
                match recv(
                    fd.as_raw_fd(),
                    &mut first,
                    MsgFlags::MSG_PEEK | MsgFlags::MSG_DONTWAIT,
                ) {
                    Ok(0) => return Shake::Closed,
                    Ok(n) if first[0] != HANDSHAKE_RECORD => {
                        return Shake::PlainText(first[..n].to_vec());
                    }
                    Ok(_) => self.looked = true,
                    Err(Errno::EAGAIN) => return Shake::Pending,
                    Err(Errno::EINTR) => continue,
                    Err(e) => return Shake::Failed(e.desc().to_owned()),
                }
            }
            match self.conn.read_tls(&mut Fd(fd)) {
                Ok(0) => return Shake::Closed,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Shake::Pending,
                Err(e) => return Shake::Failed(e.to_string()),
            }
            if let Err(e) = self.conn.process_new_packets() {
                let _ = self.flush(fd);
                return Shake::Failed(e.to_string());
            }
        }
    }

    /// Whether a byte arrived from the peer (a client silent until its
    /// handshake times out may be a plain-text one waiting for its user).
    pub fn heard(&self) -> bool {
        self.looked
    }

    /// The fingerprint of the client's certificate, if it showed one.
    pub fn peer_fingerprint(&self) -> Option<Fingerprint> {
        self.conn
            .peer_certificates()
            .and_then(|chain| chain.first())
            .map(|der| Fingerprint::of(der))
    }

    /// `TLS 1.3` or `TLS 1.2`.
    pub fn version(&self) -> &'static str {
        match self.conn.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_2) => "TLS 1.2",
            _ => "TLS 1.3",
        }
    }

    /// Why the connection failed, after [`Secure::read`] or
    /// [`Secure::write_vectored`] returned `EPROTO`.
    pub fn failure(&self) -> Option<&str> {
        self.failure.as_deref()
    }

    /// Reads up to `buf.len()` bytes of plaintext (`buf` not empty): what
    /// rustls holds, else records from the socket until some plaintext,
    /// the peer's end, or `EAGAIN`. Answers (a KeyUpdate's) are sent on
    /// the way.
    ///
    /// Errors: the socket's `errno`; `EPROTO` for a TLS error (an alert
    /// from the peer, a record that does not decrypt): [`Secure::failure`]
    /// says which.
    pub fn read(&mut self, fd: BorrowedFd<'_>, buf: &mut [u8]) -> Result<Got, Errno> {
        loop {
            match self.conn.reader().read(buf) {
                Ok(0) => return Ok(Got::End(true)),
                Ok(n) => return Ok(Got::Data(n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(Got::End(false)),
                Err(e) => return Err(crate::error::errno_of(&e)),
            }
            let eof = match self.conn.read_tls(&mut Fd(fd)) {
                Ok(0) => true,
                Ok(_) => false,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Got::WouldBlock),
                // rustls's buffer is full: process what it holds.
                Err(e) if e.kind() == io::ErrorKind::Other => false,
                Err(e) => return Err(crate::error::errno_of(&e)),
            };
            if let Err(e) = self.conn.process_new_packets() {
                self.failure = Some(e.to_string());
                let _ = self.flush(fd);
                return Err(Errno::EPROTO);
            }
            match self.flush(fd) {
                Ok(()) | Err(Errno::EAGAIN) => {}
                Err(e) => return Err(e),
            }
            if eof {
                return match self.conn.reader().read(buf) {
                    Ok(0) => Ok(Got::End(true)),
                    Ok(n) => Ok(Got::Data(n)),
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(Got::End(false)),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(Got::End(false)),
                    Err(e) => Err(crate::error::errno_of(&e)),
                };
            }
        }
    }

    /// Encrypts as much of `iov` as rustls takes (its buffer limit) and
    /// sends it; returns the plaintext bytes taken. What was sent before
    /// goes first: while any of it waits, nothing new is taken.
    ///
    /// Errors: `EAGAIN` when the socket is full and nothing was taken; the
    /// socket's `errno`.
    pub fn write_vectored(
        &mut self,
        fd: BorrowedFd<'_>,
        iov: &[IoSlice<'_>],
    ) -> Result<usize, Errno> {
        self.flush(fd)?;
        let taken = self
            .conn
            .writer()
            .write_vectored(iov)
            .map_err(|e| crate::error::errno_of(&e))?;
        match self.flush(fd) {
            Ok(()) | Err(Errno::EAGAIN) => {}
            Err(e) => return Err(e),
        }
        if taken == 0 && iov.iter().any(|s| !s.is_empty()) {
            return Err(Errno::EAGAIN);
        }
        Ok(taken)
    }

    /// Sends what rustls holds for the peer.
    ///
    /// Errors: `EAGAIN` when the socket is full before the end (the rest
    /// waits for `EPOLLOUT`); the socket's `errno`.
    pub fn flush(&mut self, fd: BorrowedFd<'_>) -> Result<(), Errno> {
        while self.conn.wants_write() {
            match self.conn.write_tls(&mut Fd(fd)) {
                Ok(_) => {}
                Err(e) => return Err(crate::error::errno_of(&e)),
            }
        }
        Ok(())
    }

    /// Whether encrypted bytes wait for the socket.
    pub fn wants_write(&self) -> bool {
        self.conn.wants_write()
    }

    /// Queues close_notify (half-close, RFC 8446 §6.1); [`Secure::flush`]
    /// sends it.
    pub fn send_close_notify(&mut self) {
        self.conn.send_close_notify();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::config::{client_config, server_config, server_name, tests::identities};
    use rustls::{ClientConnection, StreamOwned};
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsFd;
    use std::time::{Duration, Instant};

    /// Drives `secure` on `tcp` (non-blocking) until `done` says so,
    /// polling: a stand-in for the room's loop.
    fn until(limit: Duration, mut step: impl FnMut() -> bool) {
        let deadline = Instant::now() + limit;
        while !step() {
            assert!(Instant::now() < deadline, "timed out");
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    #[test]
    fn a_client_is_served_without_blocking() {
        let (_dir, server_id, client_id) = identities();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let config = server_config(&server_id).unwrap();
        let client = std::thread::spawn(move || {
            let tcp = TcpStream::connect(addr).unwrap();
            tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            let conn = ClientConnection::new(
                client_config(&client_id, None).unwrap().0,
                server_name("chatd"),
            )
            .unwrap();
            let mut stream = StreamOwned::new(conn, tcp);
            stream.write_all(b"hello\n").unwrap();
            let mut line = [0u8; 6];
            stream.read_exact(&mut line).unwrap();
            assert_eq!(&line, b"world\n");
            stream.conn.send_close_notify();
            while stream.conn.wants_write() {
                stream.conn.write_tls(&mut stream.sock).unwrap();
            }
            let mut rest = Vec::new();
            stream.read_to_end(&mut rest).unwrap();
            (client_id.fingerprint, rest)
        });
        let (tcp, _) = listener.accept().unwrap();
        tcp.set_nonblocking(true).unwrap();
        let mut secure = Secure::new(&config).unwrap();
        until(Duration::from_secs(20), || {
            match secure.handshake(tcp.as_fd()) {
                Shake::Done => true,
                Shake::Pending => false,
                other => panic!("{other:?}"),
            }
        });
        let mut got = Vec::new();
        let mut buf = [0u8; 64];
        until(Duration::from_secs(20), || {
            if let Ok(Got::Data(n)) = secure.read(tcp.as_fd(), &mut buf) {
                got.extend_from_slice(&buf[..n]);
            }
            got.ends_with(b"\n")
        });
        assert_eq!(got, b"hello\n");
        let n = secure
            .write_vectored(tcp.as_fd(), &[IoSlice::new(b"wor"), IoSlice::new(b"ld\n")])
            .unwrap();
        assert_eq!(n, 6);
        let mut end = None;
        until(Duration::from_secs(20), || {
            if let Ok(Got::End(clean)) = secure.read(tcp.as_fd(), &mut buf) {
                end = Some(clean);
            }
            end.is_some()
        });
        assert_eq!(end, Some(true));
        secure.send_close_notify();
        secure.flush(tcp.as_fd()).unwrap();
        drop(tcp);
        let (fingerprint, rest) = client.join().unwrap();
        assert!(rest.is_empty());
        assert_eq!(secure.peer_fingerprint(), Some(fingerprint));
    }

    #[test]
    fn plain_text_is_told_apart_at_once() {
        let (_dir, server_id, _client_id) = identities();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut plain = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        plain.write_all(b"hi\n").unwrap();
        let (tcp, _) = listener.accept().unwrap();
        tcp.set_nonblocking(true).unwrap();
        let mut secure = Secure::new(&server_config(&server_id).unwrap()).unwrap();
        let mut shake = Shake::Pending;
        until(Duration::from_secs(20), || {
            shake = secure.handshake(tcp.as_fd());
            !matches!(shake, Shake::Pending)
        });
        assert!(
            matches!(shake, Shake::PlainText(ref b) if b == b"hi\n"),
            "{shake:?}"
        );
    }
}

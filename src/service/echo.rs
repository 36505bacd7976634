//! `chatd --echo`: the echo server of the worksheet's exercises. Every byte
//! a client sends comes straight back to it; a line `bye` or `fin` (the word
//! of the echo exercise; [`EchoWord`]) is echoed, then that connection is
//! closed, and the server goes on serving the others.
//!
//! Bytes are copied through as they arrive, one `read(2)` of at most
//! [`BUF_SIZE`] bytes then one `write_all` of the same bytes, never gathered
//! into lines: memory stays at one buffer whatever the input (a line of
//! 10 MiB, no newline at all, NUL bytes, one byte at a time). The words are
//! recognised across read boundaries by [`EchoScanner`], which keeps a few
//! bytes of state ([`crate::words`] has the exact rules: the line must be
//! exactly `bye` or `fin`, one `\r` before the `\n` allowed).
//!
//! With `--raw` (`words` false) there are no words: a pure echo, as the
//! Echo Protocol of RFC 862.
//!
//! What the client sends after its word is not echoed. A client that
//! half-closes (`shutdown(SHUT_WR)`, `nc -N`) gets everything it sent
//! echoed, then the connection is closed.

use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd};
use std::time::Instant;

use nix::sys::socket::{Shutdown, shutdown};

use super::LINGER;
use crate::error::Error;
use crate::pump::{self, BUF_SIZE};
use crate::words::{EchoScanner, EchoWord};
use crate::{report, status};

/// How an echo connection ended normally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The client closed (or half-closed) its direction; everything it
    /// sent was echoed.
    Closed,
    /// The client sent this word's line; it was echoed and the connection
    /// closed.
    Word(EchoWord),
}

/// Serves one echo client on `sock` (the forked child's job), writing its
/// status or error line on stderr; `words` false (`--raw`) ignores the echo
/// words. Returns whether it ended normally.
pub fn serve(sock: impl AsFd, peer: SocketAddr, words: bool) -> bool {
    match echo(sock, words) {
        Ok(Ended::Closed) => {
            status!("{peer} closed the connection");
            true
        }
        Ok(Ended::Word(word)) => {
            status!("{peer} said {}: connection closed", word.as_str());
            true
        }
        Err(err) => {
            report!("{peer}: {err}");
            false
        }
    }
}

/// Echoes `sock` (a connected stream socket, blocking) to itself until end
/// of file or, if `words`, an echo word, as described in the module
/// documentation.
///
/// Errors: [`Error::Sys`] `read` or `write` with the `errno` (a client that
/// reset the connection, or closed it without reading its echo: `EPIPE`,
/// `ECONNRESET`).
pub fn echo(sock: impl AsFd, words: bool) -> Result<Ended, Error> {
    let sock = sock.as_fd();
    let mut scanner = EchoScanner::new();
    let mut buf = vec![0u8; BUF_SIZE];
    loop {
        let n = super::read_client(sock, &mut buf)?;
        if n == 0 {
            // Everything was echoed; close our direction too.
            let _ = shutdown(sock.as_raw_fd(), Shutdown::Write);
            let word = scanner.finish().filter(|_| words);
            return Ok(word.map_or(Ended::Closed, Ended::Word));
        }
        let chunk = &buf[..n];
        let (echoed, word) = match words.then(|| scanner.scan(chunk)).flatten() {
            Some((word, end)) => (&chunk[..end], Some(word)),
            None => (chunk, None),
        };
        pump::write_all(sock, echoed).map_err(|e| Error::sys("write", e))?;
        if let Some(word) = word {
            linger(sock, &mut buf);
            return Ok(Ended::Word(word));
        }
    }
}

/// Half-closes `sock`, then reads and discards what the client still
/// sends until it closes or [`LINGER`] passes ([`pump::drain`]), so that
/// closing does not reset the connection before the client has read its
/// last echo.
fn linger(sock: std::os::fd::BorrowedFd<'_>, buf: &mut [u8]) {
    let _ = shutdown(sock.as_raw_fd(), Shutdown::Write);
    pump::drain(sock, None, Instant::now() + LINGER, buf, |_| Ok(()));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;
    use std::thread;
    use std::time::Duration;

    /// Runs `echo` on one end of a socket pair in a thread; the test holds
    /// the other end (a Unix stream socket: same `read`/`write`/`shutdown`
    /// semantics for what is tested here).
    fn echo_pair() -> (UnixStream, thread::JoinHandle<Result<Ended, Error>>) {
        let (ours, theirs) = UnixStream::pair().unwrap();
        ours.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let server = thread::spawn(move || echo(&theirs, true));
        (ours, server)
    }

    fn read_to_end(mut sock: &UnixStream) -> Vec<u8> {
        let mut out = Vec::new();
        sock.read_to_end(&mut out).unwrap();
        out
    }

    #[test]
    fn half_close_gets_everything_back() {
        let (mut sock, server) = echo_pair();
        sock.write_all(b"one\ntwo\nno newline").unwrap();
        sock.shutdown(std::net::Shutdown::Write).unwrap();
        assert_eq!(read_to_end(&sock), b"one\ntwo\nno newline");
        assert_eq!(server.join().unwrap().unwrap(), Ended::Closed);
    }

    #[test]
    fn fin_is_echoed_then_the_rest_dropped() {
        let (mut sock, server) = echo_pair();
        sock.write_all(b"hello\nfin\r\nafter\n").unwrap();
        sock.shutdown(std::net::Shutdown::Write).unwrap();
        assert_eq!(read_to_end(&sock), b"hello\nfin\r\n");
        assert_eq!(server.join().unwrap().unwrap(), Ended::Word(EchoWord::Fin));
    }

    #[test]
    fn bye_split_in_single_bytes() {
        let (mut sock, server) = echo_pair();
        for &b in b"x\nbye\n" {
            sock.write_all(&[b]).unwrap();
            let mut one = [0u8];
            sock.read_exact(&mut one).unwrap();
            assert_eq!(one[0], b);
        }
        // The server half-closed after `bye`; our close ends its linger.
        assert_eq!(read_to_end(&sock), b"");
        drop(sock);
        assert_eq!(server.join().unwrap().unwrap(), Ended::Word(EchoWord::Bye));
    }

    #[test]
    fn binary_without_newline_comes_back_whole() {
        let data: Vec<u8> = (0..3 * BUF_SIZE + 17)
            .map(|i| (i * 7 % 251) as u8)
            .collect();
        let (sock, server) = echo_pair();
        let mut writer = sock.try_clone().unwrap();
        let sent = data.clone();
        let feeder = thread::spawn(move || {
            writer.write_all(&sent).unwrap();
            writer.shutdown(std::net::Shutdown::Write).unwrap();
        });
        assert_eq!(read_to_end(&sock), data);
        feeder.join().unwrap();
        assert_eq!(server.join().unwrap().unwrap(), Ended::Closed);
    }

    #[test]
    fn raw_echo_has_no_words() {
        let (ours, theirs) = UnixStream::pair().unwrap();
        let server = thread::spawn(move || echo(&theirs, false));
        let mut sock = ours;
        sock.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        sock.write_all(b"fin\nbye\nstill echoed\nfin").unwrap();
        sock.shutdown(std::net::Shutdown::Write).unwrap();
        assert_eq!(read_to_end(&sock), b"fin\nbye\nstill echoed\nfin");
        assert_eq!(server.join().unwrap().unwrap(), Ended::Closed);
    }

    #[test]
    fn word_without_newline_at_end_of_stream_is_named() {
        let (mut sock, server) = echo_pair();
        sock.write_all(b"a\nfin").unwrap();
        sock.shutdown(std::net::Shutdown::Write).unwrap();
        assert_eq!(read_to_end(&sock), b"a\nfin");
        assert_eq!(server.join().unwrap().unwrap(), Ended::Word(EchoWord::Fin));
    }
}

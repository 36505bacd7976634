//! `chatd --sum`: the addition service of the Java course (`SimpleClient`,
//! `MultithreadedClients`), one forked child per connection.
//!
//! The client sends its greeting (its own address, as `writeUTF` text),
//! then pairs of 32-bit integers; each pair is answered with its sum (the
//! format, byte by byte, is in [`super::wire`]). The greeting is what the
//! client *says* its address is; it is shown once per connection in a
//! status line on stderr (`chatd: 127.0.0.1:51234 says its address is
//! "127.0.0.1"`, control characters in caret notation so that it cannot
//! drive the terminal nor break the line: [`quoted`]) and used for nothing
//! else: the server knows the real peer address from the socket.
//!
//! Each request is logged on standard output as one line naming the
//! peer's socket address (IPv6 addresses in brackets, as everywhere in
//! `chatd`: `[[::1]:51234] 1 + 2 = 3`):
//!
//! ```text
//! [127.0.0.1:51234] 84 + 98 = 182
//! ```
//!
//! Log lines are written before the answers they describe, and each line
//! is written whole by one `write(2)`: lines are gathered up to `PIPE_BUF`
//! (4096) bytes per call, which a pipe writes atomically, so the lines of
//! different children never interleave. The log is a by-product: when
//! standard output is closed (`EPIPE`) it stops quietly and the clients
//! are still answered.

use std::io::Write;
use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd};

use nix::errno::Errno;

use super::wire::{Item, PAIR_LEN, SumDecoder, answer};
use crate::display::Sanitizer;
use crate::error::Error;
use crate::pump::{self, BUF_SIZE};
use crate::{report, status};

/// Serves one `--sum` client on `sock` (the forked child's job), logging
/// its requests on `log` (standard output) and its end on stderr. Returns
/// whether it ended normally (the client closed between two pairs).
pub fn serve(sock: impl AsFd, peer: SocketAddr, log: BorrowedFd<'_>) -> bool {
    match sum(sock, peer, log) {
        Ok(count) => {
            let plural = if count == 1 { "" } else { "s" };
            status!("{peer} closed the connection after {count} sum{plural}");
            true
        }
        Err(err) => {
            report!("{peer}: {err}");
            false
        }
    }
}

/// Answers the pairs a client sends on `sock` (a connected stream socket,
/// blocking) until it closes, logging each request on `log`. Returns the
/// number of pairs answered.
///
/// Errors: [`Error::Msg`] with a [`super::wire::WireError`]'s text when
/// the stream is malformed (truncated, oversized or invalid greeting; end
/// of stream in the middle of a pair), after answering every whole pair
/// before it; [`Error::Sys`] `read` or `write` with the `errno`.
pub fn sum(sock: impl AsFd, peer: SocketAddr, log: BorrowedFd<'_>) -> Result<u64, Error> {
    let sock = sock.as_fd();
    let mut decoder = SumDecoder::new();
    let mut buf = vec![0u8; BUF_SIZE];
    let mut answers = Vec::with_capacity(BUF_SIZE / PAIR_LEN * 4);
    let mut log = Log::new(log);
    let mut count = 0u64;
    loop {
        let n = super::read_client(sock, &mut buf)?;
        if n == 0 {
            decoder.finish().map_err(|e| Error::Msg(e.to_string()))?;
            return Ok(count);
        }
        let mut failure = None;
        for item in decoder.feed(&buf[..n]) {
            match item {
                Ok(Item::Greeting(text)) => {
                    status!("{peer} says its address is {}", quoted(&text));
                }
                Ok(Item::Pair(a, b)) => {
                    log.request(peer, a, b);
                    answers.extend_from_slice(&answer(a, b));
                    count += 1;
                }
                Err(e) => failure = Some(Error::Msg(e.to_string())),
            }
        }
        log.flush();
        pump::write_all(sock, &answers).map_err(|e| Error::sys("write", e))?;
        answers.clear();
        if let Some(err) = failure {
            return Err(err);
        }
    }
}

/// A greeting as its status line shows it: in double quotes, on one line
/// whatever the client sent, made safe as received text is on a terminal
/// ([`Sanitizer`]: `^[` for ESC, `<U+202E>`, `\xNN`), and newline, tab and
/// carriage return in the same caret notation (`^J`, `^I`, `^M`).
pub fn quoted(text: &str) -> String {
    let mut out = Vec::with_capacity(text.len() + 2);
    out.push(b'"');
    let mut sanitizer = Sanitizer::new();
    for piece in text.split_inclusive(['\n', '\r', '\t']) {
        let (body, control) = match piece.as_bytes().split_last() {
            Some((&c @ (b'\n' | b'\r' | b'\t'), body)) => (body, Some(c)),
            _ => (piece.as_bytes(), None),
        };
        sanitizer.push(body, &mut out);
        sanitizer.finish(&mut out);
        if let Some(c) = control {
            out.extend_from_slice(&[b'^', c ^ 0x40]);
        }
    }
    out.push(b'"');
    String::from_utf8_lossy(&out).into_owned()
}

/// Appends the log line of one request to `out`, newline included:
/// `[127.0.0.1:51234] 84 + 98 = 182\n`, the sum wrapping as Java's `int`.
fn push_log_line(out: &mut Vec<u8>, peer: SocketAddr, a: i32, b: i32) {
    // Writing to a Vec cannot fail.
    let _ = writeln!(out, "[{peer}] {a} + {b} = {}", a.wrapping_add(b));
}

/// The request log: whole lines gathered up to `PIPE_BUF` bytes, each
/// batch written with one `write(2)`.
struct Log<'a> {
    fd: BorrowedFd<'a>,
    buf: Vec<u8>,
    /// Writing failed once: log no more.
    broken: bool,
}

impl<'a> Log<'a> {
    fn new(fd: BorrowedFd<'a>) -> Log<'a> {
        Log {
            fd,
            buf: Vec::with_capacity(libc::PIPE_BUF),
            broken: false,
        }
    }

    fn request(&mut self, peer: SocketAddr, a: i32, b: i32) {
        if self.broken {
            return;
        }
        let start = self.buf.len();
        push_log_line(&mut self.buf, peer, a, b);
        if self.buf.len() > libc::PIPE_BUF && start > 0 {
            // The new line does not fit: write the lines before it.
            let line = self.buf.split_off(start);
            self.flush();
            self.buf = line;
        }
    }

    fn flush(&mut self) {
        if self.broken || self.buf.is_empty() {
            self.buf.clear();
            return;
        }
        match pump::write_all(self.fd, &self.buf) {
            Ok(()) => {}
            Err(Errno::EPIPE) => self.broken = true,
            Err(e) => {
                report!(
                    "write to stdout: {}; requests are no longer logged",
                    e.desc()
                );
                self.broken = true;
            }
        }
        self.buf.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::unix::net::UnixStream;
    use std::thread;

    /// The log line of one request ([`push_log_line`]).
    fn log_line(peer: SocketAddr, a: i32, b: i32) -> String {
        let mut line = Vec::new();
        push_log_line(&mut line, peer, a, b);
        String::from_utf8(line).expect("formatted text is UTF-8")
    }
    use std::time::Duration;

    #[test]
    fn log_lines_name_the_peer_and_wrap() {
        let v4: SocketAddr = "127.0.0.1:51234".parse().unwrap();
        let v6: SocketAddr = "[::1]:5000".parse().unwrap();
        assert_eq!(log_line(v4, 84, 98), "[127.0.0.1:51234] 84 + 98 = 182\n");
        assert_eq!(
            log_line(v4, i32::MAX, 1),
            "[127.0.0.1:51234] 2147483647 + 1 = -2147483648\n"
        );
        assert_eq!(log_line(v6, -5, 3), "[[::1]:5000] -5 + 3 = -2\n");
    }

    #[test]
    fn greetings_show_control_characters_in_caret_notation() {
        assert_eq!(quoted("127.0.0.1"), "\"127.0.0.1\"");
        assert_eq!(quoted("a\x1b[31mb"), "\"a^[[31mb\"");
        assert_eq!(quoted("x\r\ny\tz\n"), "\"x^M^Jy^Iz^J\"");
        assert_eq!(quoted("\0\x7f"), "\"^@^?\"");
        assert_eq!(quoted("\u{202e}é"), "\"<U+202E>é\"");
    }

    /// The log gathers lines into writes of at most PIPE_BUF bytes, each
    /// holding only whole lines.
    #[test]
    fn log_batches_are_whole_lines_within_pipe_buf() {
        let (reader, writer) = UnixStream::pair().unwrap();
        let peer: SocketAddr = "[2001:db8::1234:5678]:65535".parse().unwrap();
        let lines = 1000;
        let collector = thread::spawn(move || {
            let mut reader = reader;
            reader
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            let mut all = Vec::new();
            reader.read_to_end(&mut all).unwrap();
            all
        });
        {
            let mut log = Log::new(writer.as_fd());
            for i in 0..lines {
                log.request(peer, i32::MIN + i, -i);
                assert!(log.buf.len() <= libc::PIPE_BUF);
                assert!(log.buf.ends_with(b"\n"));
            }
            log.flush();
        }
        drop(writer);
        let all = String::from_utf8(collector.join().unwrap()).unwrap();
        let expected: String = (0..lines)
            .map(|i| log_line(peer, i32::MIN + i, -i))
            .collect();
        assert_eq!(all, expected);
    }
}

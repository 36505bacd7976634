//! A minimal blocking ping-pong over TCP loopback: the baseline of the
//! lockstep benchmark in `scripts/bench`.
//!
//! `chatd -a` and `chat -a` (worksheet question 3) take turns, one short
//! line each. How fast can two processes do that at all? This program
//! answers with the least code that does the same work on the wire: one
//! connection with `TCP_NODELAY` (as the lockstep session sets), and per
//! round one blocking `write` of an 11-byte line and one blocking `read` of
//! the reply on each side; no `poll`, no standard input or output, no
//! protocol words. The benchmark reports `chatd`/`chat`'s time per round as
//! a ratio to this one.
//!
//! ```text
//! cargo run --release --example pingpong -- server PORT ROUNDS   # first
//! cargo run --release --example pingpong -- client PORT ROUNDS
//! ```
//!
//! The server listens on 127.0.0.1:PORT and serves one client. The client
//! sends `ping NNNNN\n`, the server answers `pong NNNNN\n`, for ROUNDS
//! rounds; each side checks every line it receives, so a wrong or lost line
//! fails the run (exit status 1, one line on standard error). Both sides
//! exit 0 after the last round, printing nothing.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::process::ExitCode;

/// Which end of the connection this process is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Listens, reads a `ping` line, answers with a `pong` line.
    Server,
    /// Connects, sends a `ping` line, reads the `pong` line.
    Client,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let parsed = match args.as_slice() {
        [role, port, rounds] => parse(role, port, rounds),
        _ => None,
    };
    let Some((role, port, rounds)) = parsed else {
        eprintln!("usage: pingpong server|client PORT ROUNDS");
        return ExitCode::from(2);
    };
    match run(role, port, rounds) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("pingpong: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Parses the three arguments; `None` when one is invalid.
fn parse(role: &str, port: &str, rounds: &str) -> Option<(Role, u16, u32)> {
    let role = match role {
        "server" => Role::Server,
        "client" => Role::Client,
        _ => return None,
    };
    Some((role, port.parse().ok()?, rounds.parse().ok()?))
}

/// Connects (or accepts one client), then plays `rounds` rounds.
fn run(role: Role, port: u16, rounds: u32) -> io::Result<()> {
    let mut stream = match role {
        Role::Server => {
            let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port))?;
            listener.accept()?.0
        }
        Role::Client => TcpStream::connect((Ipv4Addr::LOCALHOST, port))?,
    };
    stream.set_nodelay(true)?;
    let mut line = Line::default();
    for round in 0..rounds {
        let ping = format!("ping {:05}\n", round % 100_000);
        let pong = format!("pong {:05}\n", round % 100_000);
        match role {
            Role::Client => {
                stream.write_all(ping.as_bytes())?;
                line.expect(&mut stream, &pong)?;
            }
            Role::Server => {
                line.expect(&mut stream, &ping)?;
                stream.write_all(pong.as_bytes())?;
            }
        }
    }
    Ok(())
}

/// A receive buffer for one line at a time.
#[derive(Default)]
struct Line {
    buf: Vec<u8>,
}

impl Line {
    /// Reads from `stream` until a newline ends the buffer (blocking
    /// `read`s: one, unless the line arrives in pieces), and checks that
    /// the line is `expected`. Errors: a failed read, end of file, or a
    /// different line (more than one line in flight breaks the turn-taking).
    fn expect(&mut self, stream: &mut TcpStream, expected: &str) -> io::Result<()> {
        self.buf.clear();
        let mut chunk = [0u8; 64];
        while self.buf.last() != Some(&b'\n') {
            let n = stream.read(&mut chunk)?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "peer closed the connection mid-game",
                ));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
        if self.buf != expected.as_bytes() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "expected {:?}, received {:?}",
                    expected.trim_end(),
                    String::from_utf8_lossy(&self.buf)
                ),
            ));
        }
        Ok(())
    }
}

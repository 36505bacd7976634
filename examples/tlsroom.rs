//! A load generator for `chatd --broker --tls`: the room section of the
//! `tls` benchmark of `scripts/bench`.
//!
//! ```text
//! cargo run --release --example tlsroom -- PORT N --pid PID [--limit SECS] [--plain]
//! ```
//!
//! Opens N TLS connections to 127.0.0.1:PORT from one process and one
//! thread (non-blocking sockets, one `epoll` instance, rustls with the
//! same client configuration as `chat --tls`: each shows a certificate, the
//! server is not checked), at most 64 handshakes at a time, and waits until
//! each has received the room's greeting (`-!- you are …`): every client has
//! then joined. Then it reads the relay's resident size, client 0 says one
//! line, and every other client reads until it has it.
//!
//! `--plain`: the same without TLS (`chatd --broker`), for comparison.
//!
//! Output, one line on standard output: `N RSS PEAK JOIN_SECONDS
//! LINE_SECONDS`, RSS and PEAK the relay's `VmRSS` after the joins and its
//! `VmHWM` at the end (KiB, `/proc/PID/status`), JOIN_SECONDS the time for
//! all N to join, LINE_SECONDS from the line's sending to its arrival at
//! the last client.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::os::fd::AsFd;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chatd::tls::config::{client_config, server_name};
use chatd::tls::identity::{Identity, Role};
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use rustls::ClientConnection;

#[path = "util/load.rs"]
mod load;
use load::{raise_nofile, status_kib};

/// Handshakes in progress at once.
const WINDOW: usize = 64;

struct Client {
    stream: TcpStream,
    tls: Option<ClientConnection>,
    /// What arrived, while looking for a marker (kept short).
    tail: Vec<u8>,
    joined: bool,
    done: bool,
}

impl Client {
    /// Moves records both ways and appends the plaintext that arrived to
    /// `tail`. Errors: the relay closed it, or TLS failed.
    fn pump(&mut self, buf: &mut [u8]) -> io::Result<()> {
        let Some(tls) = &mut self.tls else {
            loop {
                match self.stream.read(buf) {
                    Ok(0) => return Err(io::Error::other("the relay closed a connection")),
                    Ok(n) => self.tail.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                    Err(e) => return Err(e),
                }
            }
        };
        loop {
            while tls.wants_write() {
                match tls.write_tls(&mut self.stream) {
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(e),
                }
            }
            match tls.read_tls(&mut self.stream) {
                Ok(0) => return Err(io::Error::other("the relay closed a connection")),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e),
            }
            tls.process_new_packets().map_err(io::Error::other)?;
            loop {
                match tls.reader().read(buf) {
                    Ok(0) => return Err(io::Error::other("close_notify from the relay")),
                    Ok(n) => self.tail.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(e),
                }
            }
        }
    }

    fn send(&mut self, line: &[u8]) -> io::Result<()> {
        match &mut self.tls {
            None => self.stream.write_all(line),
            Some(tls) => {
                tls.writer().write_all(line)?;
                while tls.wants_write() {
                    tls.write_tls(&mut self.stream)?;
                }
                Ok(())
            }
        }
    }
}

struct Args {
    port: u16,
    n: usize,
    pid: u32,
    limit: Duration,
    plain: bool,
}

fn parse() -> Option<Args> {
    let mut args = std::env::args().skip(1);
    let mut out = Args {
        port: args.next()?.parse().ok()?,
        n: args.next()?.parse().ok()?,
        pid: 0,
        limit: Duration::from_secs(120),
        plain: false,
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--pid" => out.pid = args.next()?.parse().ok()?,
            "--limit" => out.limit = Duration::from_secs(args.next()?.parse().ok()?),
            "--plain" => out.plain = true,
            _ => return None,
        }
    }
    (out.n >= 2 && out.pid > 0).then_some(out)
}

fn main() -> ExitCode {
    let Some(args) = parse() else {
        eprintln!("usage: tlsroom PORT N --pid PID [--limit SECS] [--plain]");
        return ExitCode::from(2);
    };
    match run(&args) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("tlsroom: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> io::Result<String> {
    raise_nofile();
    let dir = tempfile_dir()?;
    let identity = Identity::load_or_create_in(&dir, Role::Client).map_err(io::Error::other)?;
    let (config, _) = client_config(&identity, None).map_err(io::Error::other)?;
    let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
    let mut events = vec![EpollEvent::empty(); 1024];
    let mut buf = vec![0u8; 256 * 1024];
    let deadline = Instant::now() + args.limit;
    let mut clients: Vec<Client> = Vec::with_capacity(args.n);
    let greeting = b"-!- you are ";
    let started = Instant::now();
    let mut joined = 0;
    while joined < args.n {
        if Instant::now() > deadline {
            return Err(io::Error::other(format!(
                "only {joined} clients joined in time"
            )));
        }
        // Keep WINDOW handshakes going.
        while clients.len() < args.n && clients.len() - joined < WINDOW {
            let stream = TcpStream::connect((Ipv4Addr::LOCALHOST, args.port))?;
            stream.set_nonblocking(true)?;
            let tls = if args.plain {
                None
            } else {
                Some(
                    ClientConnection::new(Arc::clone(&config), server_name("chatd"))
                        .map_err(io::Error::other)?,
                )
            };
            let k = clients.len();
            epoll.add(
                stream.as_fd(),
                EpollEvent::new(EpollFlags::EPOLLIN, k as u64),
            )?;
            let mut client = Client {
                stream,
                tls,
                tail: Vec::new(),
                joined: false,
                done: false,
            };
            client.pump(&mut buf)?;
            clients.push(client);
        }
        let got = epoll.wait(&mut events, EpollTimeout::from(50u16))?;
        for event in &events[..got] {
            let client = &mut clients[event.data() as usize];
            client.pump(&mut buf)?;
            if !client.joined && find(&client.tail, greeting) {
                client.joined = true;
                joined += 1;
            }
            if client.tail.len() > 4096 {
                client.tail.drain(..client.tail.len() - 64);
            }
        }
    }
    let join_secs = started.elapsed().as_secs_f64();
    // What the last joins caused: read it before the clock starts.
    let quiet = Instant::now() + Duration::from_millis(300);
    while Instant::now() < quiet {
        let got = epoll.wait(&mut events, EpollTimeout::from(20u16))?;
        for event in &events[..got] {
            let client = &mut clients[event.data() as usize];
            client.pump(&mut buf)?;
            client.tail.clear();
        }
    }
    let rss = status_kib(args.pid, "VmRSS:").unwrap_or(0);
    let marker = b"one line for everyone";
    for client in &mut clients {
        client.tail.clear();
    }
    let start = Instant::now();
    clients[0].send(b"one line for everyone\n")?;
    clients[0].done = true;
    let mut left = args.n - 1;
    let mut last = start;
    while left > 0 {
        if Instant::now() > deadline {
            return Err(io::Error::other(format!(
                "{left} clients never got the line"
            )));
        }
        let got = epoll.wait(&mut events, EpollTimeout::from(100u16))?;
        for event in &events[..got] {
            let client = &mut clients[event.data() as usize];
            client.pump(&mut buf)?;
            if !client.done && find(&client.tail, marker) {
                client.done = true;
                left -= 1;
                last = Instant::now();
            }
            if client.tail.len() > 4096 {
                client.tail.drain(..client.tail.len() - 64);
            }
        }
    }
    let secs = last.duration_since(start).as_secs_f64();
    let peak = status_kib(args.pid, "VmHWM:").unwrap_or(0);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(format!("{} {rss} {peak} {join_secs:.3} {secs:.6}", args.n))
}

fn find(hay: &[u8], needle: &[u8]) -> bool {
    memchr::memmem::find(hay, needle).is_some()
}

/// A new directory for the clients' identity (one certificate for all).
fn tempfile_dir() -> io::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("tlsroom.{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

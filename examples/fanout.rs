//! A load generator for a chat relay (`chatd --broker`, `ncat --broker`):
//! the fan-out benchmark of `scripts/bench`.
//!
//! ```text
//! cargo run --release --example fanout -- PORT N M [--stalled] [--limit SECS] [--window W] [--pid PID]
//!                                              [--burst] [--rate BYTES]
//! cargo run --release --example fanout -- PORT N 1 --one-line before|while --pid PID [--limit SECS]
//! ```
//!
//! Opens N connections to 127.0.0.1:PORT from one process and one thread
//! (non-blocking sockets, one `epoll` instance), then every client sends M
//! lines, one `write` per line, while every client reads. Each client must
//! receive each other client's M lines exactly once, in the order they were
//! sent, and none of its own: N·(N−1)·M deliveries. The run is timed from
//! the first line sent to the last line received.
//!
//! The clients type no faster than they read, as people do: a client sends
//! its line J only once it has received (J − W)·(N − 1) lines, so at most
//! W·(N − 1) lines are on their way to each client at any time (W defaults
//! to 16384 / (N − 1), at least 1: about 16384 lines, half a MiB with
//! `chatd`'s prefixes). The load is then the same for every relay, and a
//! reading client is never so far behind that a relay with bounded send
//! queues would have to drop it: what is measured is delivery, not how
//! large a burst a relay can swallow.
//!
//! A line is `m SENDER SEQ` padded to 32 bytes with its newline (a short
//! chat line), such as `m 0007 000042 .................\n`; whatever
//! a relay puts before it (`chatd`'s `[127.0.0.1:51234] `) is skipped, and
//! lines that do not start with `m ` after the prefix (notices) are ignored.
//!
//! Before the clock starts, the clients connect one at a time and each
//! sends a line `sync K`, and the generator waits for client 0 to receive
//! it: the relay then has accepted client K and relays its lines (a relay
//! drops lines for clients it has not accepted yet).
//!
//! `--stalled` adds one more client that connects (and is synchronised)
//! like the others but never reads: a room must go on at full speed for
//! the others. After the timed part, the generator reads that client's
//! socket (for at most 10 s) to see whether the relay disconnected it.
//!
//! `--pid PID` names the relay's process: the CPU time it spends during
//! the timed part (user + system, from `/proc/PID/stat`) is reported.
//!
//! `--burst`: no window, every client sends its M lines as fast as the
//! relay takes them (a paste, a piped log). `--rate BYTES` (implies
//! `--burst`): every client reads at most BYTES bytes per second, in
//! 10 ms steps, as a slow link or a slow terminal would: the readers are
//! slower than the talkers, and a relay must slow the talkers or drop
//! readers (chatd slows them: a reader that reads is never dropped).
//!
//! With more than 1000 clients, only the last one is synchronised (a relay
//! accepts in order: once it relays the last client, it has accepted every
//! other).
//!
//! Output, one line on standard output:
//! `N M DELIVERIES SECONDS RATE STALLED CPU DROPPED BYTES`, RATE in
//! deliveries per second, CPU the relay's CPU seconds during the timed
//! part (`-` without `--pid`), STALLED one of `none`, `disconnected`,
//! `connected` or (when the time limit passed first) `unchecked`, DROPPED
//! the seconds from the start of the timed part to the first
//! `-!- NAME left (too slow)` a client received (`-` if none), BYTES the
//! bytes the clients received in all during the timed part. Exit status 0
//! when every line arrived; 3 when `--limit SECS` passed first (the line
//! then shows the deliveries made so far and the time); 1 on a wrong line
//! (lost, duplicated, out of order, echoed) or an I/O error, with one line
//! on standard error; 2 on a usage error.
//!
//! # One line to a large room
//!
//! `--one-line before|while`: N clients connect one after another (`while`:
//! each reading what it is sent all along; `before`: none reading, as a
//! class joins before anyone looks at the screen); once the relay holds N
//! connections (its descriptors, from `/proc/PID/fd`), its resident size
//! is taken, then client 0 sends one line and every client reads until it
//! has that line (through whatever was queued for it before). Output:
//! `N MODE RSS_KIB PEAK_KIB SECONDS`: the relay's RSS after the joins, its
//! peak RSS at the end, and the seconds from the line's sending to its
//! arrival at the last client.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::os::fd::AsFd;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};

#[path = "util/load.rs"]
mod load;
use load::{raise_nofile, status_kib};

/// Bytes of a benchmark line, newline included: 32, a divisor of the
/// read sizes of relays that forward bytes rather than lines (`ncat
/// --broker` reads 8 KiB at a time), so that their reads end on line
/// boundaries and their output can be checked line by line.
const LINE: usize = 32;

struct Args {
    port: u16,
    n: usize,
    m: usize,
    stalled: bool,
    limit: Duration,
    window: Option<u64>,
    pid: Option<u32>,
    burst: bool,
    rate: Option<u64>,
    /// `--one-line`: whether the clients read while the others join.
    one_line: Option<bool>,
}

fn parse() -> Option<Args> {
    let mut args = std::env::args().skip(1);
    let port = args.next()?.parse().ok()?;
    let n = args.next()?.parse().ok().filter(|&n| n >= 2)?;
    let m = args.next()?.parse().ok().filter(|&m| m >= 1)?;
    let mut out = Args {
        port,
        n,
        m,
        stalled: false,
        limit: Duration::from_secs(3600),
        window: None,
        pid: None,
        burst: false,
        rate: None,
        one_line: None,
    };
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--stalled" => out.stalled = true,
            "--burst" => out.burst = true,
            "--rate" => {
                out.rate = Some(args.next()?.parse().ok().filter(|&r| r >= 1)?);
                out.burst = true;
            }
            "--one-line" => {
                out.one_line = match args.next()?.as_str() {
                    "before" => Some(false),
                    "while" => Some(true),
                    _ => return None,
                }
            }
            "--limit" => out.limit = Duration::from_secs_f64(args.next()?.parse().ok()?),
            "--window" => out.window = Some(args.next()?.parse().ok().filter(|&w| w >= 1)?),
            "--pid" => out.pid = Some(args.next()?.parse().ok()?),
            _ => return None,
        }
    }
    Some(out)
}

fn main() -> ExitCode {
    let Some(args) = parse() else {
        eprintln!(
            "usage: fanout PORT N M [--stalled] [--limit SECS] [--window W] [--pid PID] [--burst] [--rate BYTES]\n\
             \x20      fanout PORT N 1 --one-line before|while --pid PID [--limit SECS]   (N >= 2, M >= 1)"
        );
        return ExitCode::from(2);
    };
    if let Some(reading) = args.one_line {
        let Some(pid) = args.pid else {
            eprintln!("fanout: --one-line needs --pid");
            return ExitCode::from(2);
        };
        return match one_line(&args, pid, reading) {
            Ok(line) => {
                println!("{line}");
                ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("fanout: {err}");
                ExitCode::FAILURE
            }
        };
    }
    match run(&args) {
        Ok(report) => {
            let cpu = report.cpu.map_or("-".to_owned(), |c| format!("{c:.3}"));
            let dropped = report.dropped.map_or("-".to_owned(), |d| format!("{d:.3}"));
            println!(
                "{} {} {} {:.6} {:.0} {} {cpu} {dropped} {}",
                args.n,
                args.m,
                report.deliveries,
                report.secs,
                report.deliveries as f64 / report.secs,
                report.stalled,
                report.bytes
            );
            if report.complete {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(3)
            }
        }
        Err(err) => {
            eprintln!("fanout: {err}");
            ExitCode::FAILURE
        }
    }
}

struct Report {
    deliveries: u64,
    secs: f64,
    complete: bool,
    stalled: &'static str,
    /// The relay's CPU seconds during the timed part.
    cpu: Option<f64>,
    /// Seconds from the start to the first `left (too slow)` received.
    dropped: Option<f64>,
    /// Bytes received by the clients during the timed part.
    bytes: u64,
}

/// One connection of the generator.
struct Client {
    stream: TcpStream,
    /// The unfinished line received.
    partial: Vec<u8>,
    /// Lines to send in all, lines still to send, and the bytes of the
    /// batch in progress.
    total: usize,
    to_send: usize,
    out: Vec<u8>,
    out_at: usize,
    /// Lines received from others.
    received: u64,
    /// `EPOLLOUT` is asked for.
    writing: bool,
    /// The other clients (N − 1), and the window W·(N − 1) in lines.
    peers: u64,
    budget: u64,
    /// Bytes received, and their number when the clock started.
    bytes: u64,
    timed_base: u64,
    /// When it received a `-!- NAME left (too slow)`.
    too_slow: Option<Instant>,
    /// The epoll interest besides `EPOLLOUT` (none with `--rate`: reads
    /// are made on a timer).
    base: EpollFlags,
}

fn bad(text: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, text)
}

fn run(args: &Args) -> io::Result<Report> {
    raise_nofile();
    let n = args.n;
    let window = args.window.unwrap_or((16384 / (n as u64 - 1)).max(1));
    let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
    let mut clients: Vec<Client> = Vec::with_capacity(n);
    // next[r * n + s]: the sequence number client r expects next from s.
    let mut next = vec![0u32; n * n];
    let mut events = vec![EpollEvent::empty(); 1024];
    let mut buf = vec![0u8; 256 * 1024];
    let mut synced = vec![false; n + 1];

    // Connect one at a time; each K >= 1 waits until client 0 hears it.
    let mut stalled = None;
    for k in 0..n + usize::from(args.stalled) {
        let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, args.port))?;
        stream.set_nodelay(true)?;
        if k == n {
            stream.write_all(format!("sync {k}\n").as_bytes())?;
            stalled = Some(stream);
        } else {
            stream.set_nonblocking(true)?;
            epoll.add(
                stream.as_fd(),
                EpollEvent::new(EpollFlags::EPOLLIN, k as u64),
            )?;
            clients.push(Client {
                stream,
                partial: Vec::new(),
                total: args.m,
                to_send: args.m,
                out: Vec::new(),
                out_at: 0,
                received: 0,
                writing: false,
                peers: n as u64 - 1,
                budget: if args.burst {
                    u64::MAX / 4
                } else {
                    window * (n as u64 - 1)
                },
                bytes: 0,
                timed_base: 0,
                too_slow: None,
                base: EpollFlags::EPOLLIN,
            });
            if k > 0 && (n <= 1000 || k + 1 == n) {
                let line = format!("sync {k}\n");
                let mut bytes = line.as_bytes();
                while !bytes.is_empty() {
                    match clients[k].stream.write(bytes) {
                        Ok(w) => bytes = &bytes[w..],
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            std::thread::sleep(Duration::from_millis(1))
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
        }
        if k == 0 || (n > 1000 && k + 1 < n) {
            continue;
        }
        let deadline = Instant::now() + Duration::from_secs(120);
        while !synced[k] {
            if Instant::now() > deadline {
                return Err(bad(format!("client {k} was never relayed (sync)")));
            }
            let got = epoll.wait(&mut events, EpollTimeout::from(100u16))?;
            for event in &events[..got] {
                let r = event.data() as usize;
                receive(&mut clients, r, &mut buf, &mut next, n, &mut synced)?;
            }
        }
    }
    if args.rate.is_some() {
        // Reads on a timer from now on.
        for (i, client) in clients.iter_mut().enumerate() {
            client.base = EpollFlags::empty();
            epoll.modify(
                client.stream.as_fd(),
                &mut EpollEvent::new(client.base, i as u64),
            )?;
        }
    }
    let bytes_before: u64 = clients.iter().map(|c| c.bytes).sum();
    for client in &mut clients {
        client.timed_base = client.bytes;
    }

    // The timed part: everyone sends M lines, everyone reads.
    let cpu_start = args.pid.and_then(cpu_seconds);
    let start = Instant::now();
    let deadline = start + args.limit;
    let total = (n as u64) * (n as u64 - 1) * args.m as u64;
    let mut delivered: u64 = clients.iter().map(|c| c.received).sum();
    for (i, client) in clients.iter_mut().enumerate() {
        send(client, i, &epoll)?;
    }
    let tick = Duration::from_millis(10);
    let mut next_tick = start;
    let complete = loop {
        if delivered == total {
            break true;
        }
        let now = Instant::now();
        if now >= deadline {
            break false;
        }
        let mut wait = (deadline - now).min(Duration::from_millis(500));
        if args.rate.is_some() {
            wait = wait.min(next_tick.saturating_duration_since(now));
        }
        let got = epoll.wait(
            &mut events,
            EpollTimeout::try_from(wait).unwrap_or(EpollTimeout::NONE),
        )?;
        for event in &events[..got] {
            let i = event.data() as usize;
            if event.events().contains(EpollFlags::EPOLLOUT) {
                send(&mut clients[i], i, &epoll)?;
            }
            if args.rate.is_none()
                && event
                    .events()
                    .intersects(EpollFlags::EPOLLIN | EpollFlags::EPOLLHUP | EpollFlags::EPOLLERR)
            {
                let before = clients[i].received;
                receive(&mut clients, i, &mut buf, &mut next, n, &mut synced)?;
                delivered += clients[i].received - before;
                if !clients[i].writing {
                    // What it received may open its window.
                    send(&mut clients[i], i, &epoll)?;
                }
            }
        }
        if let Some(rate) = args.rate
            && Instant::now() >= next_tick
        {
            // Each client may have read `rate` bytes a second since the
            // start: it reads what it is allowed, no more.
            next_tick += tick;
            let allowed = (rate as f64 * start.elapsed().as_secs_f64()) as u64;
            for i in 0..clients.len() {
                loop {
                    let taken = clients[i].bytes - clients[i].timed_base;
                    let room = allowed.saturating_sub(taken).min(buf.len() as u64) as usize;
                    if room == 0 {
                        break;
                    }
                    let before = (clients[i].received, clients[i].bytes);
                    receive(&mut clients, i, &mut buf[..room], &mut next, n, &mut synced)?;
                    delivered += clients[i].received - before.0;
                    if clients[i].bytes == before.1 {
                        break; // nothing more to read now
                    }
                }
                if !clients[i].writing {
                    send(&mut clients[i], i, &epoll)?;
                }
            }
        }
    };
    let secs = start.elapsed().as_secs_f64();
    let cpu = cpu_start.and_then(|c| Some(cpu_seconds(args.pid?)? - c));
    let stalled = match stalled {
        None => "none",
        Some(stream) if complete => stalled_state(stream),
        // The relay waits for it: what it would do next is not measured.
        Some(_) => "unchecked",
    };
    let dropped = clients
        .iter()
        .filter_map(|c| c.too_slow)
        .min()
        .map(|t| t.saturating_duration_since(start).as_secs_f64());
    let bytes = clients.iter().map(|c| c.bytes).sum::<u64>() - bytes_before;
    Ok(Report {
        deliveries: delivered,
        secs,
        complete,
        stalled,
        cpu,
        dropped,
        bytes,
    })
}

/// User + system CPU seconds of process `pid`, from `/proc/PID/stat`
/// (fields 14 and 15, in clock ticks).
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf only reads a configuration value.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (hz > 0).then(|| ticks as f64 / hz as f64)
}

/// Writes as many of client `i`'s lines as its window and its socket
/// allow, one line per `write` (as a person's chat client does); asks for
/// `EPOLLOUT` while a line is stuck in the middle.
fn send(client: &mut Client, i: usize, epoll: &Epoll) -> io::Result<()> {
    loop {
        if client.out_at == client.out.len() {
            let sent = client.to_send_seq() as u64;
            if client.to_send == 0 || sent * client.peers >= client.received + client.budget {
                break;
            }
            client.out.clear();
            client.out_at = 0;
            let seq = client.to_send_seq();
            let mut line = format!("m {i:04} {seq:06} ");
            line.extend(std::iter::repeat_n('.', LINE - 1 - line.len()));
            line.push('\n');
            client.out.extend_from_slice(line.as_bytes());
            client.to_send -= 1;
        }
        match client.stream.write(&client.out[client.out_at..]) {
            Ok(w) => client.out_at += w,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let pending = client.out_at < client.out.len();
    if pending != client.writing {
        let mut flags = client.base;
        if pending {
            flags |= EpollFlags::EPOLLOUT;
        }
        epoll.modify(client.stream.as_fd(), &mut EpollEvent::new(flags, i as u64))?;
        client.writing = pending;
    }
    Ok(())
}

impl Client {
    /// The sequence number of the next line this client sends.
    fn to_send_seq(&self) -> usize {
        self.total - self.to_send
    }
}

/// One read from client `r`; checks and counts the complete lines.
fn receive(
    clients: &mut [Client],
    r: usize,
    buf: &mut [u8],
    next: &mut [u32],
    n: usize,
    synced: &mut [bool],
) -> io::Result<()> {
    let client = &mut clients[r];
    let got = match client.stream.read(buf) {
        Ok(0) => return Err(bad(format!("client {r}: the relay closed the connection"))),
        Ok(got) => got,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
        Err(e) => return Err(e),
    };
    client.bytes += got as u64;
    let mut data = &buf[..got];
    if !client.partial.is_empty() {
        // Finish the line the last read left unfinished.
        let Some(i) = find(b'\n', data) else {
            client.partial.extend_from_slice(data);
            return Ok(());
        };
        let mut whole = std::mem::take(&mut client.partial);
        whole.extend_from_slice(&data[..i]);
        line(client, r, &whole, next, n, synced)?;
        data = &data[i + 1..];
    }
    while !data.is_empty() {
        // The common case in O(1): an optional `[...] ` prefix, then a
        // benchmark line of known length ending where it must.
        let mut start = 0;
        if data[0] == b'['
            && let Some(end) = find(b']', data)
        {
            start = end + 2;
        }
        let end = start + LINE - 1;
        if data.get(end) == Some(&b'\n')
            && let Some(fields) = fields(&data[start..end])
        {
            count(client, r, fields, next, n, &data[..end])?;
            data = &data[end + 1..];
            continue;
        }
        let Some(i) = find(b'\n', data) else {
            break;
        };
        line(client, r, &data[..i], next, n, synced)?;
        data = &data[i + 1..];
    }
    client.partial.extend_from_slice(data);
    Ok(())
}

/// One line received by client `r`: counted if it is the next line of its
/// sender. Kept cheap (no UTF-8 decoding, fixed fields): the generator
/// reads every delivery and must not be the slowest part of the benchmark.
fn line(
    client: &mut Client,
    r: usize,
    line: &[u8],
    next: &mut [u32],
    n: usize,
    synced: &mut [bool],
) -> io::Result<()> {
    let mut payload = line;
    if payload.first() == Some(&b'[')
        && let Some(end) = find(b']', payload)
    {
        payload = payload.get(end + 2..).unwrap_or_default();
    }
    if let Some(k) = payload.strip_prefix(b"sync ") {
        if r == 0
            && let Some(k) = number(k)
            && k < synced.len()
        {
            synced[k] = true;
        }
        return Ok(());
    }
    if !payload.starts_with(b"m ") {
        // A notice: note when a client was dropped as too slow.
        if line.starts_with(b"-!- ") && line.ends_with(b" left (too slow)") {
            client.too_slow.get_or_insert_with(Instant::now);
        }
        return Ok(());
    }
    match fields(payload) {
        Some(fields) => count(client, r, fields, next, n, line),
        None => Err(wrong(r, "malformed line", line)),
    }
}

/// The sender and sequence number of a benchmark line `m SSSS QQQQQQ …`
/// (from its `m`), if it is one.
#[inline]
fn fields(payload: &[u8]) -> Option<(usize, usize)> {
    let head = payload.get(..13)?;
    if &head[..2] != b"m " || head[6] != b' ' {
        return None;
    }
    Some((number(&head[2..6])?, number(&head[7..13])?))
}

/// Counts the line `(sender, seq)` received by client `r`, if it is the
/// next line of that sender.
#[inline]
fn count(
    client: &mut Client,
    r: usize,
    (s, seq): (usize, usize),
    next: &mut [u32],
    n: usize,
    line: &[u8],
) -> io::Result<()> {
    if s >= n || s == r {
        return Err(wrong(r, "a line from itself or from nobody", line));
    }
    let expected = &mut next[r * n + s];
    if seq != *expected as usize {
        let why = format!("expected line {expected} of client {s}");
        return Err(wrong(r, &why, line));
    }
    *expected += 1;
    client.received += 1;
    Ok(())
}

/// The error for a wrong line received by client `r`.
#[cold]
fn wrong(r: usize, why: &str, line: &[u8]) -> io::Error {
    bad(format!(
        "client {r}: {why}: {:?}",
        String::from_utf8_lossy(line)
    ))
}

/// The index of the first `byte` in `hay`, eight bytes at a time (the
/// "has a zero byte" test on `u64` words).
fn find(byte: u8, hay: &[u8]) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let pattern = LO * u64::from(byte);
    let mut i = 0;
    while i + 8 <= hay.len() {
        let word = u64::from_le_bytes(hay[i..i + 8].try_into().unwrap()) ^ pattern;
        let found = word.wrapping_sub(LO) & !word & HI;
        if found != 0 {
            return Some(i + (found.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    hay[i..].iter().position(|&b| b == byte).map(|j| i + j)
}

/// The decimal number `digits` spells, if it is only digits.
#[inline]
fn number(digits: &[u8]) -> Option<usize> {
    if digits.is_empty() || digits.len() > 12 {
        return None;
    }
    let mut value = 0;
    let mut bad = false;
    for &d in digits {
        bad |= !d.is_ascii_digit();
        value = value * 10 + usize::from(d.wrapping_sub(b'0'));
    }
    (!bad).then_some(value)
}

/// Whether the relay disconnected the client that never read: reads what
/// it holds until end of file (disconnected) or 10 s (connected).
fn stalled_state(mut stream: TcpStream) -> &'static str {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return "disconnected",
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return "disconnected",
            Err(_) => return "connected",
        }
    }
}

/// `--one-line`: see the module documentation. Returns the output line.
fn one_line(args: &Args, pid: u32, reading: bool) -> io::Result<String> {
    raise_nofile();
    let n = args.n;
    let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
    let mut streams: Vec<TcpStream> = Vec::with_capacity(n);
    let mut events = vec![EpollEvent::empty(); 1024];
    let mut buf = vec![0u8; 256 * 1024];
    let deadline = Instant::now() + args.limit;
    // While joining, readers take whatever comes (notices), and drop it.
    let mut drain = |streams: &mut Vec<TcpStream>, timeout: EpollTimeout| -> io::Result<usize> {
        let got = epoll.wait(&mut events, timeout)?;
        for event in &events[..got] {
            let mut stream = &streams[event.data() as usize];
            loop {
                match stream.read(&mut buf) {
                    Ok(0) => return Err(bad("the relay closed a connection while joining".into())),
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(got)
    };
    let fds = || std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count());
    let base = fds();
    for k in 0..n {
        let stream = TcpStream::connect((Ipv4Addr::LOCALHOST, args.port))?;
        stream.set_nonblocking(true)?;
        stream.set_nodelay(true)?;
        if reading {
            epoll.add(
                stream.as_fd(),
                EpollEvent::new(EpollFlags::EPOLLIN, k as u64),
            )?;
        }
        streams.push(stream);
        if reading && k % 16 == 15 {
            while drain(&mut streams, EpollTimeout::ZERO)? > 0 {}
        }
        if Instant::now() > deadline {
            return Err(bad(format!(
                "only {k} clients joined within the time limit"
            )));
        }
    }
    // Wait until the relay holds every connection.
    while fds() < base + n {
        if Instant::now() > deadline {
            return Err(bad(format!(
                "the relay holds {} descriptors, not {n}",
                fds()
            )));
        }
        if reading {
            drain(&mut streams, EpollTimeout::from(10u16))?;
        } else {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    if reading {
        // What the last joins caused: read it before the clock starts.
        let quiet = Instant::now() + Duration::from_millis(200);
        while Instant::now() < quiet {
            drain(&mut streams, EpollTimeout::from(20u16))?;
        }
    }
    let rss = status_kib(pid, "VmRSS:").unwrap_or(0);
    // The clock: client 0 says one line, every other reads until it has it.
    let marker = b"m 0000 000000 one line for everyone";
    let start = Instant::now();
    (&streams[0]).write_all(&[&marker[..], b"\n"].concat())?;
    if !reading {
        for (k, stream) in streams.iter().enumerate().skip(1) {
            epoll.add(
                stream.as_fd(),
                EpollEvent::new(EpollFlags::EPOLLIN, k as u64),
            )?;
        }
    }
    let finder = memchr::memmem::Finder::new(&marker[..]);
    let mut tails: Vec<Vec<u8>> = vec![Vec::new(); n];
    let mut done = vec![false; n];
    let mut left = n - 1;
    let mut last = start;
    while left > 0 {
        if Instant::now() > deadline {
            return Err(bad(format!("{left} clients never got the line")));
        }
        let got = epoll.wait(&mut events, EpollTimeout::from(100u16))?;
        for event in &events[..got] {
            let k = event.data() as usize;
            let mut stream = &streams[k];
            loop {
                match stream.read(&mut buf) {
                    Ok(0) => return Err(bad(format!("client {k}: the relay closed it"))),
                    Ok(r) => {
                        if done[k] || k == 0 {
                            continue;
                        }
                        let tail = &mut tails[k];
                        tail.extend_from_slice(&buf[..r]);
                        if finder.find(tail).is_some() {
                            done[k] = true;
                            left -= 1;
                            last = Instant::now();
                            tail.clear();
                        } else {
                            let keep = tail.len().saturating_sub(marker.len());
                            tail.drain(..keep);
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(e),
                }
            }
        }
    }
    let secs = last.duration_since(start).as_secs_f64();
    let peak = status_kib(pid, "VmHWM:").unwrap_or(0);
    let mode = if reading { "while" } else { "before" };
    Ok(format!("{n} {mode} {rss} {peak} {secs:.6}"))
}

//! The soak: a mixed load on 127.0.0.1 for MINUTES minutes
//! against long-lived servers, then checks. Run it with `scripts/soak`.
//!
//! ```text
//! cargo run --release --example soak -- MINUTES CHATD CHAT
//! ```
//!
//! The load, each kind in its own thread, until the time is up:
//! - **sessions**: 1-to-1 sessions opening and closing against one `chatd`
//!   (stdin `/dev/null`, one client after another): each sends a few
//!   numbered lines and half-closes; every line must reach chatd's stdout;
//! - **bulk**: a fresh `chatd -1` / `chat` pair moves 16 MiB of random
//!   bytes, alternately default and `--raw`, alternately server→client and
//!   client→server; the receiving side starts with `< /dev/null` and its
//!   output must be the bytes sent;
//! - **room**: groups of 8 clients join one `chatd --broker`, each says 20
//!   lines of about 1000 bytes, reads the 140 lines of the 7 others (in
//!   order per sender), says `bye` and leaves; beside them one client joins
//!   and never reads (it stalls): the room must drop it as `too slow` when
//!   its send queue overflows, without making anyone wait, and a new one
//!   stalls in its place;
//! - **echo** and **sum**: clients of `chatd --echo` and `chatd --sum`,
//!   four at a time, each checking every answer.
//!
//! Every socket operation has a timeout, every loop ends with the time.
//! One summary line a minute; at the end, a table: what was checked, and
//! the descriptors, children and RSS of each long-lived server at the start
//! and at the end (after the load stopped): descriptors and children must
//! be back to their level at rest, RSS within 2 MiB of its level after the
//! first 5 seconds of load. The exit status is 0 only if
//! every check held.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

#[path = "../tests/util/random.rs"]
mod random;
use random::random_bytes;

/// The longest any single socket operation may wait.
const WAIT: Duration = Duration::from_secs(20);

/// Counters shared by the load threads.
#[derive(Default)]
struct Stats {
    sessions: AtomicU64,
    session_lines: AtomicU64,
    bulk_runs: AtomicU64,
    bulk_bytes: AtomicU64,
    room_groups: AtomicU64,
    room_lines: AtomicU64,
    stalled_dropped: AtomicU64,
    echoes: AtomicU64,
    sums: AtomicU64,
    failures: Mutex<Vec<String>>,
}

impl Stats {
    fn fail(&self, what: String) {
        eprintln!("soak: FAILED: {what}");
        self.failures.lock().unwrap().push(what);
    }
}

/// A long-lived server: the process, its port, and its stdout counted by a
/// thread (lines, and the text of lines matching `keep`, for checks).
struct Server {
    name: &'static str,
    child: Child,
    port: u16,
    lines: Arc<AtomicU64>,
    /// Lines that say a client left the room too slow.
    too_slow: Arc<AtomicU64>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn listening(port: u16) -> bool {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    let needle = format!("0100007F:{port:04X} 00000000:0000 0A");
    table.lines().any(|l| l.contains(&needle))
}

impl Drop for Server {
    /// A server never outlives the soak, whatever ends it.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server(chatd: &str, name: &'static str, args: &[&str]) -> Result<Server, String> {
    let port = free_port();
    let port_text = port.to_string();
    let mut child = Command::new(chatd)
        .args(["-q", "-b", "127.0.0.1", "-p", &port_text])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawn {chatd}: {e}"))?;
    let stdout = child.stdout.take().unwrap();
    let lines = Arc::new(AtomicU64::new(0));
    let too_slow = Arc::new(AtomicU64::new(0));
    let (counter, slow) = (Arc::clone(&lines), Arc::clone(&too_slow));
    thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = Vec::new();
        while reader.read_until(b'\n', &mut line).is_ok_and(|n| n > 0) {
            counter.fetch_add(1, Ordering::Relaxed);
            if line.starts_with(b"-!- ") && line.ends_with(b" left (too slow)\n") {
                slow.fetch_add(1, Ordering::Relaxed);
            }
            line.clear();
        }
    });
    let server = Server {
        name,
        child,
        port,
        lines,
        too_slow,
    };
    let start = Instant::now();
    while !listening(port) {
        if start.elapsed() > WAIT {
            return Err(format!("the {name} server does not listen"));
        }
        thread::sleep(Duration::from_millis(10));
    }
    Ok(server)
}

/// Descriptors, children and RSS (KiB) of `pid`.
fn usage(pid: u32) -> (usize, usize, u64) {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count());
    let mut children = 0;
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let ppid = stat
            .rfind(')')
            .and_then(|i| stat[i + 2..].split(' ').nth(1)?.parse::<u32>().ok());
        if ppid == Some(pid) {
            children += 1;
        }
    }
    let rss = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmRSS:"))?.to_owned();
            line.split_whitespace().nth(1)?.parse().ok()
        })
        .unwrap_or(0);
    (fds, children, rss)
}

fn connect(port: u16) -> std::io::Result<TcpStream> {
    let conn = TcpStream::connect(("127.0.0.1", port))?;
    conn.set_read_timeout(Some(WAIT))?;
    conn.set_write_timeout(Some(WAIT))?;
    Ok(conn)
}

// --- the load -----------------------------------------------------------

fn sessions(port: u16, stats: &Stats, until: Instant) {
    let mut n = 0u64;
    while Instant::now() < until {
        let run = || -> std::io::Result<()> {
            let mut conn = connect(port)?;
            for i in 0..5 {
                writeln!(conn, "session {n} line {i}")?;
            }
            conn.shutdown(Shutdown::Write)?;
            let mut rest = Vec::new();
            conn.read_to_end(&mut rest)?;
            Ok(())
        };
        match run() {
            Ok(()) => {
                stats.sessions.fetch_add(1, Ordering::Relaxed);
                stats.session_lines.fetch_add(5, Ordering::Relaxed);
            }
            Err(e) => stats.fail(format!("session {n}: {e}")),
        }
        n += 1;
    }
}

fn bulk(chatd: &str, chat: &str, stats: &Stats, until: Instant, dir: &std::path::Path) {
    let mut run = 0u64;
    while Instant::now() < until {
        let raw = run % 2 == 1;
        let to_client = (run / 2).is_multiple_of(2);
        let data = random_bytes(16 << 20, run + 1);
        let file = dir.join(format!("bulk-{run}"));
        std::fs::write(&file, &data).unwrap();
        let port = free_port().to_string();
        let mode: &[&str] = if raw { &["--raw"] } else { &[] };
        let input = || Stdio::from(std::fs::File::open(&file).unwrap());
        let spawn = |program: &str, args: Vec<&str>, stdin: Stdio| {
            Command::new(program)
                .args(args)
                .stdin(stdin)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        };
        let mut server_args = vec!["-1", "-q", "-b", "127.0.0.1", "-p", &port];
        server_args.extend_from_slice(mode);
        let server = spawn(
            chatd,
            server_args,
            if to_client { input() } else { Stdio::null() },
        );
        let mut client_args = vec!["-q", "--retry", "5"];
        client_args.extend_from_slice(mode);
        client_args.extend_from_slice(&["127.0.0.1", &port]);
        let client = spawn(
            chat,
            client_args,
            if to_client { Stdio::null() } else { input() },
        );
        let (receiver, sender) = if to_client {
            (client, server)
        } else {
            (server, client)
        };
        let collect = |child: Child| {
            thread::spawn(move || {
                let out = child.wait_with_output();
                out.map(|o| (o.status, o.stdout, o.stderr))
            })
        };
        let (rx, tx) = (collect(receiver), collect(sender));
        let results = (rx.join().unwrap(), tx.join().unwrap());
        let _ = std::fs::remove_file(&file);
        match results {
            (Ok((rs, got, rerr)), Ok((ss, _, serr))) => {
                if !rs.success() || !ss.success() {
                    stats.fail(format!(
                        "bulk {run}: status {rs} / {ss}: {}{}",
                        String::from_utf8_lossy(&rerr),
                        String::from_utf8_lossy(&serr)
                    ));
                } else if got != data {
                    stats.fail(format!(
                        "bulk {run} (raw={raw}, to_client={to_client}): {} of {} bytes, content differs",
                        got.len(),
                        data.len()
                    ));
                } else {
                    stats.bulk_runs.fetch_add(1, Ordering::Relaxed);
                    stats
                        .bulk_bytes
                        .fetch_add(data.len() as u64, Ordering::Relaxed);
                }
            }
            other => stats.fail(format!("bulk {run}: {other:?}")),
        }
        run += 1;
    }
}

/// One group of the room: 8 clients join, take a name, and once all are
/// in, each says 20 lines of about 1000 bytes and reads the 140 lines of
/// the others, in order per sender, then says `bye`.
fn room_group(port: u16, group: u64, stats: &Stats) -> Result<(), String> {
    const MEMBERS: usize = 8;
    const LINES: usize = 20;
    let pad = ".".repeat(1000);
    let all_in = Arc::new(std::sync::Barrier::new(MEMBERS));
    let mut conns = Vec::new();
    let mut names = Vec::new();
    for i in 0..MEMBERS {
        let mut conn = connect(port).map_err(|e| e.to_string())?;
        let name = format!("g{group}m{i}");
        writeln!(conn, "/nick {name}").map_err(|e| e.to_string())?;
        conns.push(conn);
        names.push(name);
    }
    // Each member: wait until every other has its name, say LINES lines,
    // read the others' lines, say bye.
    let readers: Vec<_> = conns
        .into_iter()
        .enumerate()
        .map(|(i, mut conn)| {
            let names = names.clone();
            let all_in = Arc::clone(&all_in);
            let pad = pad.clone();
            thread::spawn(move || -> Result<usize, String> {
                let mut reader = BufReader::new(conn.try_clone().map_err(|e| e.to_string())?);
                let mut line = String::new();
                // In the room under its name once `-!- you are now NAME`
                // comes back; then wait for the others.
                let mine = format!("-!- you are now {}\n", names[i]);
                while line != mine {
                    line.clear();
                    if reader.read_line(&mut line).map_err(|e| e.to_string())? == 0 {
                        all_in.wait();
                        return Err(format!("{}: closed while joining", names[i]));
                    }
                }
                all_in.wait();
                for k in 0..LINES {
                    writeln!(conn, "{} says {k} {pad}", names[i]).map_err(|e| e.to_string())?;
                }
                let mut heard: HashMap<String, usize> = HashMap::new();
                let wanted = (MEMBERS - 1) * LINES;
                let mut total = 0;
                while total < wanted {
                    line.clear();
                    if reader.read_line(&mut line).map_err(|e| e.to_string())? == 0 {
                        return Err(format!("{}: closed after {total} lines", names[i]));
                    }
                    if let Some(rest) = line.strip_prefix('[')
                        && let Some((from, text)) = rest.split_once("] ")
                        && text.starts_with(&format!("{from} says "))
                    {
                        let next = heard.entry(from.to_owned()).or_default();
                        let expected = format!("{from} says {next} {pad}\n");
                        if text != expected {
                            return Err(format!("{}: out of order: {text:?}", names[i]));
                        }
                        *next += 1;
                        total += 1;
                    }
                }
                writeln!(conn, "bye").map_err(|e| e.to_string())?;
                let mut rest = Vec::new();
                let _ = reader.read_to_end(&mut rest);
                Ok(total)
            })
        })
        .collect();
    let mut result = Ok(());
    for reader in readers {
        match reader.join() {
            Ok(Ok(n)) => {
                stats.room_lines.fetch_add(n as u64, Ordering::Relaxed);
            }
            Ok(Err(e)) => result = Err(e),
            Err(_) => result = Err("a member thread panicked".into()),
        }
    }
    result
}

/// Groups of the room one after another, beside a client that joined and
/// never reads: the room must drop it when its send queue overflows
/// (`too_slow` counts the room's `left (too slow)` notices), and nobody
/// else may wait for it. A new one stalls after each drop.
fn room(port: u16, too_slow: &AtomicU64, stats: &Stats, until: Instant) {
    let mut stalled = connect(port);
    let mut seen = 0;
    let mut group = 0;
    while Instant::now() < until {
        match room_group(port, group, stats) {
            Ok(()) => {
                stats.room_groups.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => stats.fail(format!("room group {group}: {e}")),
        }
        let dropped = too_slow.load(Ordering::Relaxed);
        if dropped > seen {
            stats
                .stalled_dropped
                .fetch_add(dropped - seen, Ordering::Relaxed);
            seen = dropped;
            stalled = connect(port);
        }
        group += 1;
    }
    if let Err(e) = stalled {
        stats.fail(format!("stalled client: {e}"));
    }
}

fn echo(port: u16, stats: &Stats, until: Instant, seed: u64) {
    let mut n = 0u64;
    while Instant::now() < until {
        let data = random_bytes(4096 + (n as usize % 4096), seed * 1_000_003 + n);
        let data: Vec<u8> = data
            .into_iter()
            .map(|b| if b == b'\n' { b' ' } else { b })
            .chain(*b"\n")
            .collect();
        let run = || -> std::io::Result<Vec<u8>> {
            let mut conn = connect(port)?;
            conn.write_all(&data)?;
            conn.shutdown(Shutdown::Write)?;
            let mut back = Vec::new();
            conn.read_to_end(&mut back)?;
            Ok(back)
        };
        match run() {
            Ok(back) if back == data => {
                stats.echoes.fetch_add(1, Ordering::Relaxed);
            }
            Ok(back) => stats.fail(format!(
                "echo {n}: {} bytes back of {}",
                back.len(),
                data.len()
            )),
            Err(e) => stats.fail(format!("echo {n}: {e}")),
        }
        n += 1;
    }
}

fn sum(port: u16, stats: &Stats, until: Instant, seed: u64) {
    let mut n = 0u64;
    while Instant::now() < until {
        let run = || -> std::io::Result<u64> {
            let mut conn = connect(port)?;
            let greeting = b"127.0.0.1";
            conn.write_all(&(greeting.len() as u16).to_be_bytes())?;
            conn.write_all(greeting)?;
            let pairs: Vec<(i32, i32)> = random_bytes(8 * 50, seed * 7_919 + n)
                .chunks(8)
                .map(|c| {
                    (
                        i32::from_be_bytes([c[0], c[1], c[2], c[3]]),
                        i32::from_be_bytes([c[4], c[5], c[6], c[7]]),
                    )
                })
                .collect();
            let mut request = Vec::new();
            for (a, b) in &pairs {
                request.extend_from_slice(&a.to_be_bytes());
                request.extend_from_slice(&b.to_be_bytes());
            }
            conn.write_all(&request)?;
            let mut answers = vec![0u8; 4 * pairs.len()];
            conn.read_exact(&mut answers)?;
            for ((a, b), answer) in pairs.iter().zip(answers.chunks(4)) {
                let got = i32::from_be_bytes([answer[0], answer[1], answer[2], answer[3]]);
                if got != a.wrapping_add(*b) {
                    return Err(std::io::Error::other(format!("{a} + {b} = {got}?")));
                }
            }
            Ok(pairs.len() as u64)
        };
        match run() {
            Ok(k) => {
                stats.sums.fetch_add(k, Ordering::Relaxed);
            }
            Err(e) => stats.fail(format!("sum client {n}: {e}")),
        }
        n += 1;
    }
}

// --- the run ------------------------------------------------------------

fn main() {
    match run() {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(e) => {
            eprintln!("soak: {e}");
            std::process::exit(1);
        }
    }
}

/// The whole soak; `Ok(false)` when a check failed. The servers are
/// stopped when it returns, however it returns.
fn run() -> Result<bool, String> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 {
        eprintln!("usage: soak MINUTES CHATD CHAT");
        std::process::exit(2);
    }
    let minutes: u64 = args[1].parse().unwrap_or_else(|_| {
        eprintln!("soak: MINUTES must be a whole number");
        std::process::exit(2)
    });
    let (chatd, chat) = (args[2].clone(), args[3].clone());
    let dir = std::env::temp_dir().join(format!("chat-soak-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();

    let servers = [
        start_server(&chatd, "sessions", &[])?,
        start_server(&chatd, "room", &["--broker"])?,
        start_server(&chatd, "echo", &["--echo", "--raw"])?,
        start_server(&chatd, "sum", &["--sum"])?,
    ];
    let ports = [
        servers[0].port,
        servers[1].port,
        servers[2].port,
        servers[3].port,
    ];
    // Descriptors and children at rest, before any load.
    let idle: Vec<_> = servers.iter().map(|s| usage(s.child.id())).collect();
    let stats = Arc::new(Stats::default());
    let start = Instant::now();
    let until = start + Duration::from_secs(60 * minutes.max(1));
    let mut workers = Vec::new();
    {
        let s = Arc::clone(&stats);
        workers.push(thread::spawn(move || sessions(ports[0], &s, until)));
        let s = Arc::clone(&stats);
        let (d, c, dir) = (chatd.clone(), chat.clone(), dir.clone());
        workers.push(thread::spawn(move || bulk(&d, &c, &s, until, &dir)));
        let s = Arc::clone(&stats);
        let slow = Arc::clone(&servers[1].too_slow);
        workers.push(thread::spawn(move || room(ports[1], &slow, &s, until)));
        for seed in 0..4 {
            let s = Arc::clone(&stats);
            workers.push(thread::spawn(move || echo(ports[2], &s, until, seed)));
            let s = Arc::clone(&stats);
            workers.push(thread::spawn(move || sum(ports[3], &s, until, seed)));
        }
    }
    // RSS's starting level: after a few seconds of load (buffers and
    // tables have their working size); descriptors and children at rest.
    thread::sleep(Duration::from_secs(5));
    let base: Vec<_> = servers
        .iter()
        .zip(&idle)
        .map(|(s, i)| (i.0, i.1, usage(s.child.id()).2))
        .collect();
    let done = Arc::new(AtomicBool::new(false));
    let reporter = {
        let (stats, done) = (Arc::clone(&stats), Arc::clone(&done));
        let pids: Vec<u32> = servers.iter().map(|s| s.child.id()).collect();
        thread::spawn(move || {
            let mut minute = 1;
            while !done.load(Ordering::Relaxed) {
                thread::sleep(Duration::from_millis(200));
                if start.elapsed() < Duration::from_secs(60 * minute) {
                    continue;
                }
                let rss: Vec<String> = pids.iter().map(|&p| usage(p).2.to_string()).collect();
                println!(
                    "minute {minute}: {} sessions, {} bulk ({} MiB), {} room groups ({} lines), {} echoes, {} sums, {} failures; RSS KiB {}",
                    stats.sessions.load(Ordering::Relaxed),
                    stats.bulk_runs.load(Ordering::Relaxed),
                    stats.bulk_bytes.load(Ordering::Relaxed) >> 20,
                    stats.room_groups.load(Ordering::Relaxed),
                    stats.room_lines.load(Ordering::Relaxed),
                    stats.echoes.load(Ordering::Relaxed),
                    stats.sums.load(Ordering::Relaxed),
                    stats.failures.lock().unwrap().len(),
                    rss.join("/"),
                );
                minute += 1;
            }
        })
    };
    for worker in workers {
        if worker.join().is_err() {
            stats.fail("a load thread panicked".into());
        }
    }
    done.store(true, Ordering::Relaxed);
    reporter.join().unwrap();

    // Let the servers settle: sessions end, children are reaped, the room
    // closes its leavers.
    let settle = Instant::now();
    let expected_lines = stats.session_lines.load(Ordering::Relaxed);
    while settle.elapsed() < Duration::from_secs(10)
        && (servers[0].lines.load(Ordering::Relaxed) < expected_lines
            || servers.iter().any(|s| usage(s.child.id()).1 > 0))
    {
        thread::sleep(Duration::from_millis(100));
    }
    thread::sleep(Duration::from_millis(500));
    let end: Vec<_> = servers.iter().map(|s| usage(s.child.id())).collect();

    let shown = servers[0].lines.load(Ordering::Relaxed);
    if shown != expected_lines {
        stats.fail(format!(
            "sessions: chatd printed {shown} lines of the {expected_lines} sent"
        ));
    }
    println!();
    println!("soak: {minutes} minute(s) on 127.0.0.1");
    println!(
        "  sessions {:>9}   lines sent and printed {:>9}",
        stats.sessions.load(Ordering::Relaxed),
        shown
    );
    println!(
        "  bulk     {:>9}   bytes checked {:>12}",
        stats.bulk_runs.load(Ordering::Relaxed),
        stats.bulk_bytes.load(Ordering::Relaxed)
    );
    println!(
        "  room     {:>9}   lines delivered {:>10}   stalled clients dropped {}",
        stats.room_groups.load(Ordering::Relaxed),
        stats.room_lines.load(Ordering::Relaxed),
        stats.stalled_dropped.load(Ordering::Relaxed)
    );
    println!(
        "  echo     {:>9}   sums {:>12}",
        stats.echoes.load(Ordering::Relaxed),
        stats.sums.load(Ordering::Relaxed)
    );
    println!();
    println!(
        "  {:<10} {:>9} {:>9} {:>9} {:>9} {:>10} {:>10}",
        "server", "fds", "fds end", "children", "ch. end", "RSS KiB", "RSS end"
    );
    for ((server, b), e) in servers.iter().zip(&base).zip(&end) {
        println!(
            "  {:<10} {:>9} {:>9} {:>9} {:>9} {:>10} {:>10}",
            server.name, b.0, e.0, b.1, e.1, b.2, e.2
        );
        // Descriptors and children back to their level at rest; RSS
        // within 2 MiB of its level after the first seconds of load.
        if e.0 != b.0 || e.1 != b.1 || e.2 > b.2 + 2048 {
            stats.fail(format!(
                "{}: fds {} -> {}, children {} -> {}, RSS {} -> {} KiB",
                server.name, b.0, e.0, b.1, e.1, b.2, e.2
            ));
        }
    }
    drop(servers);
    let _ = std::fs::remove_dir_all(&dir);
    let failures = stats.failures.lock().unwrap();
    if failures.is_empty() {
        println!("\nsoak: every check held");
        return Ok(true);
    }
    println!("\nsoak: {} check(s) failed:", failures.len());
    for f in failures.iter().take(20) {
        println!("  {f}");
    }
    Ok(false)
}

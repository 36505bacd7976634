//! Bad input: invalid UTF-8, NUL bytes, a 1 GiB stream with no
//! newline, a 100 MiB line, random garbage, sequences cut at read
//! boundaries, one byte at a time. No crash, memory bounded (the peak RSS
//! of each process is printed: `cargo test --test badinput --
//! --nocapture`), and in `--raw` the bytes arrive unchanged.

mod util;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use util::*;

const MIB: usize = 1024 * 1024;

/// Peak resident set size of `pid` so far, in KiB (`VmHWM`); 0 if gone.
fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmHWM:"))?.to_owned();
            line.split_whitespace().nth(1)?.parse().ok()
        })
        .unwrap_or(0)
}

/// Watches the peak RSS of `roots` and of their children until stopped;
/// the largest value seen, in KiB.
struct PeakWatch {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    thread: std::thread::JoinHandle<()>,
}

impl PeakWatch {
    fn start(roots: Vec<u32>) -> PeakWatch {
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(0));
        let (s, p) = (Arc::clone(&stop), Arc::clone(&peak));
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                for &root in &roots {
                    let mut pids = vec![root];
                    pids.extend(children_of(root));
                    for pid in pids {
                        p.fetch_max(peak_rss_kib(pid), Ordering::Relaxed);
                    }
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        PeakWatch { stop, peak, thread }
    }

    fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap();
        self.peak.load(Ordering::Relaxed)
    }
}

/// `chatd -1 -q EXTRA < /dev/null | wc -c` on a free port: a receive-only
/// server whose output is counted, not kept. Returns the shell (its stdout
/// is the count), the port, and chatd's pid.
fn counting_server(extra: &str) -> (Proc, u16, u32) {
    let script = format!("{CHATD} -1 -q {extra} -b 127.0.0.1 -p 0 < /dev/null | wc -c");
    let shell = spawn("bash", &["-c", &script]);
    let port = wait_for_port(&shell, "chatd");
    let chatd = children_of(shell.pid())
        .into_iter()
        .find(|&pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "chatd")
        })
        .expect("chatd under bash");
    (shell, port, chatd)
}

/// Sends `total` bytes made by `fill` (1 MiB at a time) through `chat
/// EXTRA` into a [`counting_server`], and returns the peak RSS (KiB) of
/// each side's processes.
fn stream_through(extra: &str, total: usize, fill: u8) -> (u64, u64) {
    let (mut shell, port, chatd) = counting_server(extra);
    let mut args = vec!["-q"];
    args.extend(extra.split_whitespace());
    let port_text = port.to_string();
    args.extend(["127.0.0.1", &port_text]);
    let mut client = spawn(CHAT, &args);
    let (server_watch, client_watch) = (
        PeakWatch::start(vec![chatd]),
        PeakWatch::start(vec![client.pid()]),
    );
    let chunk = vec![fill; MIB];
    for _ in 0..total / MIB {
        client.send(&chunk);
    }
    client.close_stdin();
    let status = client.wait_within(Duration::from_secs(300));
    assert_eq!(status.code(), Some(0), "{}", client.dump());
    let status = shell.wait_within(Duration::from_secs(60));
    assert_eq!(status.code(), Some(0), "{}", shell.dump());
    assert_eq!(
        shell.stdout_text().trim(),
        total.to_string(),
        "bytes received"
    );
    (server_watch.stop(), client_watch.stop())
}

#[test]
fn a_gib_without_a_newline_passes_in_bounded_memory() {
    let (server, client) = stream_through("", 1024 * MIB, b'x');
    println!("1 GiB without a newline: peak RSS chatd {server} KiB, chat {client} KiB");
    assert!(
        server < 16 * 1024 && client < 16 * 1024,
        "{server} {client}"
    );
}

#[test]
fn a_gib_of_nul_bytes_passes_unchanged_in_raw() {
    let (server, client) = stream_through("--raw", 1024 * MIB, 0);
    println!("1 GiB of NUL bytes, --raw: peak RSS chatd {server} KiB, chat {client} KiB");
    assert!(
        server < 16 * 1024 && client < 16 * 1024,
        "{server} {client}"
    );
}

// A 100 MiB line in lockstep: printed piece by piece, never held whole.
#[test]
fn a_100_mib_line_in_lockstep_is_never_held_whole() {
    let (server, client) = stream_through("-a", 100 * MIB, b'y');
    println!("100 MiB line, lockstep: peak RSS chatd {server} KiB, chat {client} KiB");
    assert!(
        server < 16 * 1024 && client < 16 * 1024,
        "{server} {client}"
    );
}

/// A peer on a free port that sends `chunks` one `write` each, `pause`
/// apart (TCP_NODELAY: each its own segment), then closes.
fn sending_peer(chunks: Vec<Vec<u8>>, pause: Duration) -> (u16, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let thread = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        conn.set_nodelay(true).unwrap();
        for chunk in chunks {
            conn.write_all(&chunk).unwrap();
            std::thread::sleep(pause);
        }
    });
    (port, thread)
}

/// What `chat EXTRA` (stdin `/dev/null`, stdout a pipe) prints from a
/// [`sending_peer`] of `chunks`.
fn received_by_chat(extra: &[&str], chunks: Vec<Vec<u8>>, pause: Duration) -> Vec<u8> {
    let (port, peer) = sending_peer(chunks, pause);
    let port_text = port.to_string();
    let mut args = vec!["-q"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["127.0.0.1", &port_text]);
    let mut client = spawn_with(CHAT, &args, Stdio::null());
    peer.join().unwrap();
    assert_eq!(client.wait(), 0, "{}", client.dump());
    client.stdout()
}

// Half a UTF-8 sequence, half an escape sequence, a CR and its LF, split
// across reads: in --raw, and on a pipe in the default mode, the bytes
// arrive unchanged.
#[test]
fn sequences_cut_at_read_boundaries_arrive_unchanged() {
    let pieces: Vec<Vec<u8>> = [
        &b"caf\xc3"[..],
        b"\xa9 \xe6\x97",
        b"\xa5 \x1b",
        b"[2J\x1b]0;ti",
        b"tle\x07 \r",
        b"\nbye",
        b" now\n\xff\xfe\x00",
    ]
    .iter()
    .map(|p| p.to_vec())
    .collect();
    let whole = pieces.concat();
    for extra in [&["--raw"][..], &[]] {
        let got = received_by_chat(extra, pieces.clone(), Duration::from_millis(30));
        assert_eq!(got, whole, "{extra:?}");
    }
}

// A peer that sends one byte at a time.
#[test]
fn one_byte_at_a_time_arrives_unchanged() {
    let data = random_bytes(3000, 91);
    let bytes: Vec<Vec<u8>> = data.iter().map(|&b| vec![b]).collect();
    let got = received_by_chat(&["--raw"], bytes, Duration::from_micros(200));
    assert_eq!(got, data);
}

// Random garbage (NUL bytes, invalid UTF-8, controls) both ways at once,
// in --raw: unchanged.
#[test]
fn random_garbage_both_ways_arrives_unchanged_in_raw() {
    let (to_client, to_server) = (random_bytes(8 * MIB, 92), random_bytes(8 * MIB, 93));
    let (server, client) = exchange(&["--raw", "-q"], &to_client, &to_server);
    assert!(client.stdout() == to_client, "client received");
    assert!(server.stdout() == to_server, "server received");
}

// The echo service returns garbage and a 10 MiB line as they came.
#[test]
fn the_echo_service_returns_garbage_unchanged() {
    let (_server, port) = chatd(&["--echo", "--raw"]);
    let mut conn = TcpStream::connect(("127.0.0.1", port)).unwrap();
    conn.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut data = random_bytes(2 * MIB, 94);
    data.extend(std::iter::repeat_n(b'z', 10 * MIB));
    let mut writer = conn.try_clone().unwrap();
    let sent = data.clone();
    let feeder = std::thread::spawn(move || {
        writer.write_all(&sent).unwrap();
        writer.shutdown(std::net::Shutdown::Write).unwrap();
    });
    let mut got = Vec::new();
    conn.read_to_end(&mut got).unwrap();
    feeder.join().unwrap();
    assert_eq!(got.len(), data.len());
    assert!(got == data, "echo changed the bytes");
}

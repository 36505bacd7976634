//! Faults, on the real processes of the 1-to-1 modes: resets,
//! `kill -9` of either process of either side, storms of signals, a reader
//! that stops reading, thousands of sessions, and peers that never speak or
//! die. Every wait is bounded; the figures a test measures (RSS, counts)
//! are printed for the report (`cargo test -- --nocapture`).

mod util;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use util::*;

const MIB: usize = 1024 * 1024;

/// Resident set size of `pid`, in KiB (`VmRSS` of /proc/PID/status).
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Open file descriptors of `pid` (entries of /proc/PID/fd).
fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

/// Whether process `pid` is gone (or a zombie nobody reaps yet: for a
/// process reparented to init, that is as gone as it gets).
fn gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rfind(')')
            .is_some_and(|i| stat[i + 2..].starts_with('Z')),
    }
}

fn kill(pid: u32, sig: i32) {
    // SAFETY: kill(2) on a pid of a process this test started (or its
    // child, found in /proc); a failure (already gone) is harmless here.
    unsafe { libc::kill(pid as i32, sig) };
}

/// Waits until `proc` has its receiving child and returns its pid.
fn receiving_child(proc: &Proc) -> u32 {
    assert!(
        wait_until(TIMEOUT, || proc.children().len() == 1),
        "{}: no receiving child\n{}",
        proc.name,
        proc.dump()
    );
    proc.children()[0]
}

// --- resets ---------------------------------------------------------------

#[test]
fn a_reset_in_lockstep_is_one_line_and_chatd_serves_the_next_client() {
    let (mut server, port) = chatd(&["-a"]);
    let mut first = TcpStream::connect(("127.0.0.1", port)).unwrap();
    first.write_all(b"one line\n").unwrap();
    server.expect_stdout("one line\n");
    reset_on_close(&first);
    drop(first);
    server.expect_stderr("chatd: connection reset by 127.0.0.1:");
    let mut next = chat(port, &["-a"]);
    next.send(b"next\n");
    server.expect_stdout("one line\nnext\n");
    server.send(b"welcome\n");
    next.expect_stdout("welcome\n");
    let stderr = server.stderr_text();
    assert_eq!(stderr.matches("reset").count(), 1, "{stderr}");
    assert!(server.try_status().is_none());
}

// --- kill -9 ----------------------------------------------------------------

// The receiving child of chat is killed: its parent says so in one line
// and exits 1 (nothing else happens that could end it); the peer sees the
// connection end.
#[test]
fn chat_whose_child_is_killed_says_so_and_exits_1() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut client = chat(port, &["-q"]);
    let (mut conn, _) = listener.accept().unwrap();
    let child = receiving_child(&client);
    kill(child, libc::SIGKILL);
    let status = client.wait_within(TIMEOUT);
    assert_eq!(status.code(), Some(1), "{}", client.dump());
    assert_eq!(
        client.stderr_text(),
        "chat: receiving process killed by signal 9 (SIGKILL)\n"
    );
    conn.set_read_timeout(Some(TIMEOUT)).unwrap();
    assert_eq!(
        conn.read(&mut [0u8; 16]).unwrap(),
        0,
        "the socket stays open"
    );
}

// The same on the server side, with -1: one line, status 1.
#[test]
fn chatd_once_whose_child_is_killed_says_so_and_exits_1() {
    let (mut server, port) = chatd_with(&["-1"], Stdio::null());
    let mut conn = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let child = receiving_child(&server);
    kill(child, libc::SIGKILL);
    let status = server.wait_within(TIMEOUT);
    assert_eq!(status.code(), Some(1), "{}", server.dump());
    server.expect_stderr("chatd: receiving process killed by signal 9 (SIGKILL)\n");
    conn.set_read_timeout(Some(TIMEOUT)).unwrap();
    assert_eq!(conn.read(&mut [0u8; 16]).unwrap(), 0);
}

/// Kills `proc` (whose one child serves `conn`) with SIGKILL and checks
/// that the child does not outlive it: it is gone (its peer keeps the
/// connection open, so only the parent's death can end it), having said
/// `line` on standard error (`{pid}` stands for the killed pid), and
/// nothing keeps `conn` open.
fn killed_parent_leaves_no_orphan(mut proc: Proc, mut conn: TcpStream, line: &str) {
    let child = receiving_child(&proc);
    proc.signal(libc::SIGKILL);
    let _ = proc.wait_within(TIMEOUT);
    assert!(wait_until(TIMEOUT, || gone(child)), "orphan {child}");
    proc.expect_stderr(&line.replace("{pid}", &proc.pid().to_string()));
    conn.set_read_timeout(Some(TIMEOUT)).unwrap();
    assert_eq!(conn.read(&mut [0u8; 16]).unwrap(), 0, "socket still open");
}

// The parent of chat (the sender) is killed: the child never outlives it:
// it says so in one line and exits within a second, and nothing keeps the
// socket open.
#[test]
fn chat_whose_parent_is_killed_leaves_no_orphan() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let client = chat(port, &["-q"]);
    let (conn, _) = listener.accept().unwrap();
    let line = "chat: the sending process (pid {pid}) died: session ended\n";
    killed_parent_leaves_no_orphan(client, conn, line);
}

#[test]
fn chatd_whose_parent_is_killed_leaves_no_orphan() {
    let (server, port) = chatd(&[]);
    let conn = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let line = "chatd: the sending process (pid {pid}) died: session ended\n";
    killed_parent_leaves_no_orphan(server, conn, line);
}

// The services' children are set up by the same code as the session's
// child (src/fork.rs): the server killed, each says so in one line, naming
// its client, and closes its connection.
#[test]
fn an_echo_server_killed_leaves_no_orphan() {
    let (server, port) = chatd(&["--echo"]);
    let mut conn = TcpStream::connect(("127.0.0.1", port)).unwrap();
    conn.set_read_timeout(Some(TIMEOUT)).unwrap();
    echo_round_trip(&mut conn, b"hello\n");
    let local = conn.local_addr().unwrap();
    let line = format!("chatd: the server (pid {{pid}}) died: connection from {local} closed\n");
    killed_parent_leaves_no_orphan(server, conn, &line);
}

// --- out of descriptors ------------------------------------------------------

/// `prlimit(1)` (util-linux) on `pid`, a child process of its own: the test
/// process never changes its own limits. `args` follow `--pid PID`.
fn prlimit(pid: u32, args: &[&str]) -> String {
    let out = std::process::Command::new("prlimit")
        .arg("--pid")
        .arg(pid.to_string())
        .args(args)
        .output()
        .expect("prlimit(1) runs (util-linux; scripts/test installs it)");
    assert!(out.status.success(), "prlimit {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// The descriptor `pid`'s next `accept` or `open` would get: below it,
/// every one is open, so a soft `RLIMIT_NOFILE` of this number leaves none
/// free (those above it stay usable).
fn lowest_free_fd(pid: u32) -> u32 {
    let open: Vec<u32> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_str().unwrap().parse().unwrap())
        .collect();
    (0..).find(|fd| !open.contains(fd)).unwrap()
}

/// Waits (up to `TIMEOUT`) until `pid` is at rest: asleep in its event
/// loop's `epoll_wait` or `poll` (its `/proc/PID/wchan`). `chatd` prints
/// `listening on` before the room creates its `epoll` descriptor, so a
/// limit taken from the descriptors open at that line can leave the room
/// none for its own set-up (`epoll_create1: Too many open files`, seen under
/// load).
fn wait_at_rest(pid: u32) {
    let at_rest = wait_until(TIMEOUT, || {
        std::fs::read_to_string(format!("/proc/{pid}/wchan"))
            .is_ok_and(|w| w == "do_epoll_wait" || w.starts_with("poll_schedule_timeout"))
    });
    assert!(at_rest, "chatd {pid} never waited in its event loop");
}

/// Starts `chatd EXTRA`, takes away every free descriptor it has (its soft
/// `RLIMIT_NOFILE` lowered to its lowest free descriptor, at rest), connects, and
/// checks that `accept` failing with `EMFILE` is said once, that nothing is
/// served while the shortage lasts, and that once the limit is back the
/// server accepts the waiting connection by itself (no client of its own
/// leaves to free a descriptor: only the timer can bring it back), says
/// so, and `served` sees the connection served.
fn accepts_again_after_running_out_of_descriptors(
    extra: &[&str],
    served: impl FnOnce(&mut Proc, &mut TcpStream),
) {
    let (mut server, port) = chatd(extra);
    let pid = server.pid();
    wait_at_rest(pid);
    let limits = prlimit(pid, &["--nofile", "--output=SOFT,HARD", "--noheadings"]);
    let (soft, hard) = limits.trim().split_once(char::is_whitespace).unwrap();
    let (soft, hard) = (soft.trim().to_owned(), hard.trim().to_owned());
    prlimit(pid, &[&format!("--nofile={}:{hard}", lowest_free_fd(pid))]);
    let mut conn = TcpStream::connect(("127.0.0.1", port)).unwrap();
    conn.set_read_timeout(Some(TIMEOUT)).unwrap();
    server.expect_stderr(
        "chatd: accept: Too many open files: not accepting new connections, \
         trying again every 100 ms\n",
    );
    // Still out of descriptors: the connection waits, unserved.
    assert_eq!(server.children().len(), 0, "{}", server.dump());
    prlimit(pid, &[&format!("--nofile={soft}:{hard}")]);
    served(&mut server, &mut conn);
    server.expect_stderr("chatd: accepting new connections again\n");
    let stderr = server.stderr_text();
    assert_eq!(stderr.matches("Too many open files").count(), 1, "{stderr}");
    assert!(server.try_status().is_none(), "{}", server.dump());
}

#[test]
fn the_room_accepts_again_after_running_out_of_descriptors() {
    accepts_again_after_running_out_of_descriptors(&["--broker"], |_, conn| {
        let mut greeting = [0u8; 12];
        conn.read_exact(&mut greeting).unwrap();
        assert_eq!(&greeting, b"-!- you are ");
    });
}

#[test]
fn the_echo_service_accepts_again_after_running_out_of_descriptors() {
    accepts_again_after_running_out_of_descriptors(&["--echo"], |_, conn| {
        echo_round_trip(conn, b"back\n");
    });
}

// A connection accepted with the last free descriptor is served: the
// check that the process has one thread, before the fork, needs no new
// descriptor (src/fork.rs keeps /proc/self/task open).
#[test]
fn the_last_free_descriptor_is_enough_to_serve_an_echo_client() {
    let (server, port) = chatd(&["--echo"]);
    let pid = server.pid();
    wait_at_rest(pid);
    prlimit(pid, &[&format!("--nofile={}:", lowest_free_fd(pid) + 1)]);
    let mut conn = TcpStream::connect(("127.0.0.1", port)).unwrap();
    conn.set_read_timeout(Some(TIMEOUT)).unwrap();
    echo_round_trip(&mut conn, b"last one\n");
}

#[test]
fn the_one_to_one_server_accepts_again_after_running_out_of_descriptors() {
    accepts_again_after_running_out_of_descriptors(&[], |server, conn| {
        conn.write_all(b"served\n").unwrap();
        server.expect_stdout("served\n");
    });
}

// --- a storm of signals -------------------------------------------------------

/// Every millisecond until `stop` is set, sends each process of `pids`
/// (pairs of a session's parent and its child) a signal it handles:
/// - the parent, `SIGCHLD`: signal-hook's handler runs and wakes its
///   `poll` through the self-pipe; the parent must find its child still
///   running and go on;
/// - the child, `SIGUSR1`: its parent-death handler ([`chatd::fork`])
///   runs, installed without `SA_RESTART`, so a blocking call under way
///   fails with `EINTR` and must be retried; the handler must find the
///   parent alive and return.
///
/// Every 20 ms it also stops and continues each of them.
///
/// The signals go through pidfds opened at the start (`pidfd_open(2)`,
/// `pidfd_send_signal(2)`), not to pids: the storm goes on after the
/// test has reaped the client, and a pid the kernel gave to another
/// process meanwhile (the suite forks thousands) would get `SIGUSR1`,
/// which ends a process that has no handler for it.
fn storm(pids: Vec<(u32, u32)>, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<u64> {
    let pairs: Vec<(Pidfd, Pidfd)> = pids
        .iter()
        .map(|&(p, c)| (Pidfd::open(p), Pidfd::open(c)))
        .collect();
    std::thread::spawn(move || {
        let all = || pairs.iter().flat_map(|(p, c)| [p, c]);
        let mut sent = 0u64;
        let mut tick = 0u64;
        while !stop.load(Ordering::Relaxed) {
            for (parent, child) in &pairs {
                parent.signal(libc::SIGCHLD);
                child.signal(chatd::fork::PARENT_DEATH);
                sent += 2;
            }
            if tick.is_multiple_of(20) {
                for process in all() {
                    process.signal(libc::SIGSTOP);
                }
                std::thread::sleep(Duration::from_millis(2));
                for process in all() {
                    process.signal(libc::SIGCONT);
                }
                sent += 2 * all().count() as u64;
            }
            tick += 1;
            std::thread::sleep(Duration::from_millis(1));
        }
        for process in all() {
            process.signal(libc::SIGCONT);
        }
        sent
    })
}

/// A process of the test, by pidfd: signals reach it or nobody, even
/// after it was reaped and its pid reused.
struct Pidfd(std::os::fd::OwnedFd);

impl Pidfd {
    /// `pidfd_open(2)` of `pid`, a process the test just saw running.
    fn open(pid: u32) -> Pidfd {
        use std::os::fd::FromRawFd;
        // SAFETY: pidfd_open takes a pid and flags and returns a new
        // descriptor or -1; nothing else is touched.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
        assert!(
            fd >= 0,
            "pidfd_open {pid}: {}",
            std::io::Error::last_os_error()
        );
        // SAFETY: `fd` is a descriptor that was just opened and is owned
        // by nothing else.
        Pidfd(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as i32) })
    }

    /// `pidfd_send_signal(2)`; a process that is gone (`ESRCH`) is fine.
    fn signal(&self, sig: i32) {
        use std::os::fd::AsRawFd;
        // SAFETY: a pidfd this value owns, a signal number, no siginfo.
        unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.0.as_raw_fd(),
                sig,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
    }
}

/// 100 MiB from one side to the other (`to_client` says which), `extra`
/// arguments on both, while [`storm`] hits all four processes.
fn transfer_in_a_storm(extra: &[&str], to_client: bool) {
    let data = random_bytes(100 * MIB, if to_client { 81 } else { 82 });
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("data");
    std::fs::write(&file, &data).unwrap();
    let input = || Stdio::from(std::fs::File::open(&file).unwrap());
    let mut server_args = vec!["-1", "-q"];
    server_args.extend_from_slice(extra);
    let (mut server, port) = chatd_with(
        &server_args,
        if to_client { input() } else { Stdio::null() },
    );
    let port_text = port.to_string();
    let mut client_args = vec!["-q"];
    client_args.extend_from_slice(extra);
    client_args.extend_from_slice(&["127.0.0.1", &port_text]);
    let client_stdin = if to_client { Stdio::null() } else { input() };
    let mut client = spawn_with(CHAT, &client_args, client_stdin);
    let both = wait_until(TIMEOUT, || {
        server.children().len() == 1 && client.children().len() == 1
    });
    assert!(both, "no session\n{}\n{}", server.dump(), client.dump());
    let pids = vec![
        (server.pid(), server.children()[0]),
        (client.pid(), client.children()[0]),
    ];
    let stop = Arc::new(AtomicBool::new(false));
    let stormer = storm(pids, Arc::clone(&stop));
    // Bounded by progress, not by one total: beside two CPU burners on a
    // loaded machine the stopped processes wait for the storm's thread to
    // get a CPU, and 100 MiB moved at a steady 0.8 MiB/s (measured every
    // 5 s), outlasting the 120 s once allowed here. A session that hangs
    // still fails, after TIMEOUT without a byte.
    let client_status = wait_while_moving(&mut client, &server);
    let server_status = wait_while_moving(&mut server, &client);
    stop.store(true, Ordering::Relaxed);
    let sent = stormer.join().unwrap();
    println!("storm {extra:?} to_client={to_client}: {sent} signals sent");
    assert_eq!(client_status.code(), Some(0), "{}", client.dump());
    assert_eq!(server_status.code(), Some(0), "{}", server.dump());
    let got = if to_client {
        client.stdout()
    } else {
        server.stdout()
    };
    assert_eq!(got.len(), data.len(), "bytes received");
    assert!(got == data, "bytes differ");
}

#[test]
fn a_storm_of_signals_loses_nothing_server_to_client() {
    transfer_in_a_storm(&[], true);
}

#[test]
fn a_storm_of_signals_loses_nothing_client_to_server() {
    transfer_in_a_storm(&[], false);
}

#[test]
fn a_storm_of_signals_loses_nothing_raw_server_to_client() {
    transfer_in_a_storm(&["--raw"], true);
}

#[test]
fn a_storm_of_signals_loses_nothing_raw_client_to_server() {
    transfer_in_a_storm(&["--raw"], false);
}

// --- a reader that stops reading --------------------------------------------

// The client is suspended for 5 s in the middle of a 64 MiB transfer: the
// server waits (backpressure), its memory does not grow, and every byte
// arrives once the client goes on.
#[test]
fn a_reader_that_stops_reading_makes_the_writer_wait() {
    let data = random_bytes(64 * MIB, 83);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("data");
    std::fs::write(&file, &data).unwrap();
    let stdin = Stdio::from(std::fs::File::open(&file).unwrap());
    let (mut server, port) = chatd_with(&["-1", "-q"], stdin);
    let mut client = chat(port, &["-q", "-d"]);
    let child = receiving_child(&client);
    assert!(wait_until(TIMEOUT, || !client.stdout().is_empty()));
    for pid in [client.pid(), child] {
        kill(pid, libc::SIGSTOP);
    }
    // A baseline taken a little after the stop, not a wait for an event:
    // taken earlier under load, it only makes the check below stricter.
    std::thread::sleep(Duration::from_millis(500));
    let before = rss_kib(server.pid());
    let received = client.stdout().len();
    // The scenario: the reader stays stopped for 5 s in all.
    std::thread::sleep(Duration::from_millis(4500));
    let after = rss_kib(server.pid());
    assert!(server.try_status().is_none(), "the writer gave up");
    assert!(received < data.len(), "the transfer was already over");
    for pid in [child, client.pid()] {
        kill(pid, libc::SIGCONT);
    }
    println!("writer RSS while the reader is stopped: {before} KiB, then {after} KiB");
    assert!(
        after <= before + 1024,
        "RSS grew from {before} to {after} KiB"
    );
    // Bounded by progress, not by one total: the 64 MiB through the
    // debug build of chat take about 10 s of CPU, and outlasted the 60 s
    // once allowed here when the machine was loaded.
    assert_eq!(wait_while_moving(&mut client, &server).code(), Some(0));
    assert_eq!(server.wait(), 0, "{}", server.dump());
    assert!(client.stdout() == data, "{} bytes", client.stdout().len());
}

// --- thousands of sessions ----------------------------------------------------

// 10,000 sessions one after another against one chatd: descriptors, child
// processes and RSS are the same after the last as after the first hundred.
#[test]
fn ten_thousand_sessions_leak_nothing() {
    let (server, port) = chatd_with(&["-q"], Stdio::null());
    let session = |i: usize| {
        let mut conn = TcpStream::connect(("127.0.0.1", port)).unwrap();
        conn.set_read_timeout(Some(TIMEOUT)).unwrap();
        conn.write_all(format!("session {i}\n").as_bytes()).unwrap();
        conn.shutdown(Shutdown::Write).unwrap();
        let mut rest = Vec::new();
        conn.read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty(), "a receive-only server sent {rest:?}");
    };
    for i in 0..100 {
        session(i);
    }
    let settle = || {
        wait_until(TIMEOUT, || server.children().is_empty());
    };
    settle();
    let (fds, rss) = (fd_count(server.pid()), rss_kib(server.pid()));
    let start = Instant::now();
    for i in 100..10_000 {
        session(i);
    }
    settle();
    let (fds_end, rss_end) = (fd_count(server.pid()), rss_kib(server.pid()));
    println!(
        "10,000 sessions: {:?}; fds {fds} -> {fds_end}; RSS {rss} -> {rss_end} KiB",
        start.elapsed()
    );
    assert_eq!(fds_end, fds, "descriptors leaked");
    assert!(server.children().is_empty(), "children left");
    assert!(rss_end <= rss + 512, "RSS grew from {rss} to {rss_end} KiB");
    let out = server.stdout_text();
    assert_eq!(out.lines().count(), 10_000);
    assert!(out.ends_with("session 9999\n"));
}

// --- peers that never speak, or die -----------------------------------------

// A server that accepts, reads, and never speaks: chat delivers its input,
// half-closes, and waits for the server's direction to end.
#[test]
fn a_server_that_never_speaks_gets_everything_and_chat_waits_for_it() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut client = chat(port, &["-q"]);
    let (mut conn, _) = listener.accept().unwrap();
    client.send(b"are you there?\n");
    client.close_stdin();
    conn.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut got = Vec::new();
    conn.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"are you there?\n", "then end of file (half-close)");
    // A window for a wrong end to show, not a wait for an event: under
    // load it may show less, never fail a session that stays.
    std::thread::sleep(Duration::from_millis(300));
    assert!(client.try_status().is_none(), "chat left a listening peer");
    drop(conn);
    assert_eq!(client.wait(), 0, "{}", client.dump());
}

// A client that connects and never speaks: chatd sends its input and waits
// for the client's direction; the client still receives everything.
#[test]
fn a_client_that_never_speaks_receives_everything() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("motd");
    std::fs::write(&file, "motd\n").unwrap();
    let stdin = Stdio::from(std::fs::File::open(&file).unwrap());
    let (mut server, port) = chatd_with(&["-1"], stdin);
    let mut conn = TcpStream::connect(("127.0.0.1", port)).unwrap();
    conn.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut got = Vec::new();
    conn.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"motd\n");
    // A window for a wrong end to show, not a wait for an event: under
    // load it may show less, never fail a session that stays.
    std::thread::sleep(Duration::from_millis(300));
    assert!(server.try_status().is_none(), "chatd left a listening peer");
    drop(conn);
    assert_eq!(server.wait(), 0, "{}", server.dump());
}

// The server dies in the middle of a session while chat still has input to
// send: chat says the connection was reset, in one line, and exits 1.
#[test]
fn a_server_that_dies_mid_session_is_one_line_and_status_1() {
    let (mut server, port) = chatd_with(&["-1", "-q"], Stdio::null());
    let mut client = chat(port, &["-q"]);
    client.send(b"before\n");
    server.expect_stdout("before\n");
    let child = receiving_child(&server);
    server.signal(libc::SIGKILL);
    let _ = server.wait_within(TIMEOUT);
    assert!(wait_until(TIMEOUT, || gone(child)));
    // The first write after the death meets the dead peer's reset; keep
    // typing until chat notices (a line or two).
    let noticed = wait_until(TIMEOUT, || {
        if client.try_status().is_none() {
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                client.send(b"after\n");
            }));
        }
        client.try_status().is_some()
    });
    assert!(noticed, "{}", client.dump());
    assert_eq!(client.wait(), 1, "{}", client.dump());
    let stderr = client.stderr_text();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with(&format!("chat: connection reset by 127.0.0.1:{port}")),
        "{stderr}"
    );
}

// 10,000 echo connections, eight at a time: the same descriptors, no child
// left, and the same RSS at the end as after the first hundred.
#[test]
fn ten_thousand_echo_connections_leak_nothing() {
    let (server, port) = chatd(&["--echo", "-q"]);
    let connect = move |i: usize| {
        let mut conn = TcpStream::connect(("127.0.0.1", port)).unwrap();
        conn.set_read_timeout(Some(TIMEOUT)).unwrap();
        let line = format!("echo {i}\n");
        conn.write_all(line.as_bytes()).unwrap();
        conn.shutdown(Shutdown::Write).unwrap();
        let mut back = Vec::new();
        conn.read_to_end(&mut back).unwrap();
        assert_eq!(back, line.as_bytes());
    };
    let run = |range: std::ops::Range<usize>| {
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let range = range.clone();
                std::thread::spawn(move || {
                    for i in range.filter(|i| i % 8 == t) {
                        connect(i);
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
    };
    run(0..100);
    assert!(wait_until(TIMEOUT, || server.children().is_empty()));
    let (fds, rss) = (fd_count(server.pid()), rss_kib(server.pid()));
    let start = Instant::now();
    run(100..10_000);
    assert!(
        wait_until(TIMEOUT, || server.children().is_empty()),
        "children left"
    );
    let (fds_end, rss_end) = (fd_count(server.pid()), rss_kib(server.pid()));
    println!(
        "10,000 echo connections: {:?}; fds {fds} -> {fds_end}; RSS {rss} -> {rss_end} KiB",
        start.elapsed()
    );
    assert_eq!(fds_end, fds, "descriptors leaked");
    assert!(rss_end <= rss + 512, "RSS grew from {rss} to {rss_end} KiB");
}

// A client of a service that resets: one line, the server goes on.
#[test]
fn a_reset_in_a_service_is_one_line_and_the_server_goes_on() {
    for mode in ["--echo", "--sum"] {
        let (mut server, port) = chatd(&[mode]);
        let first = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let local = first.local_addr().unwrap();
        server.expect_stderr("connection from");
        reset_on_close(&first);
        drop(first);
        // The child's one line is the event waited for; then it is gone.
        server.expect_stderr(&format!("chatd: {local}: read: Connection reset by peer\n"));
        assert!(
            wait_until(TIMEOUT, || server.children().is_empty()),
            "{mode}"
        );
        let stderr = server.stderr_text();
        let lines = stderr
            .lines()
            .filter(|l| !l.contains("listening") && !l.contains("connection from"));
        assert_eq!(lines.count(), 1, "{mode}: {stderr}");
        let mut next = TcpStream::connect(("127.0.0.1", port)).unwrap();
        next.set_read_timeout(Some(TIMEOUT)).unwrap();
        if mode == "--echo" {
            echo_round_trip(&mut next, b"still\n");
        }
        assert!(server.try_status().is_none(), "{mode}");
    }
}

// 10,000 joins and leaves of the room, eight clients at a time, each
// saying one line: the same descriptors and RSS at the end as after the
// first hundred, and the room's stdout shows every line.
#[test]
fn ten_thousand_room_joins_and_leaves_leak_nothing() {
    let (server, port) = chatd_with(&["--broker", "-q"], Stdio::null());
    let visit = move |i: usize| {
        let mut conn = TcpStream::connect(("127.0.0.1", port)).unwrap();
        conn.set_read_timeout(Some(TIMEOUT)).unwrap();
        conn.write_all(format!("visit {i}\nbye\n").as_bytes())
            .unwrap();
        let mut rest = Vec::new();
        conn.read_to_end(&mut rest).unwrap();
        assert!(
            rest.starts_with(b"-!- you are "),
            "{:?}",
            String::from_utf8_lossy(&rest)
        );
    };
    let run = |range: std::ops::Range<usize>| {
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let range = range.clone();
                std::thread::spawn(move || range.filter(|i| i % 8 == t).for_each(visit))
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
    };
    // At rest, before anyone came; a leaver's socket closes once its end
    // of file arrives (after the notice), so wait for the count to settle.
    let fds = fd_count(server.pid());
    let settle = |count: usize| {
        wait_until(TIMEOUT, || {
            server.stdout_text().matches(" left\n").count() == count
                && fd_count(server.pid()) == fds
        })
    };
    run(0..100);
    assert!(settle(100), "{}", server.dump());
    let rss = rss_kib(server.pid());
    let start = Instant::now();
    run(100..10_000);
    settle(10_000);
    let (fds_end, rss_end) = (fd_count(server.pid()), rss_kib(server.pid()));
    println!(
        "10,000 room visits: {:?}; fds {fds} -> {fds_end}; RSS {rss} -> {rss_end} KiB",
        start.elapsed()
    );
    assert_eq!(fds_end, fds, "descriptors leaked");
    assert!(
        rss_end <= rss + 1024,
        "RSS grew from {rss} to {rss_end} KiB"
    );
    let out = server.stdout_text();
    assert_eq!(out.matches("] visit ").count(), 10_000, "lines missing");
}

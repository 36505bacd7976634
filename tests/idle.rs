//! `--idle-timeout SECS`: a connection on which nothing has been
//! received for SECS seconds is closed, per connection, in every mode.

mod util;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Stdio;
use std::time::{Duration, Instant};

use util::*;

/// Reads `conn` until end of file (or a reset), for at most [`TIMEOUT`];
/// returns what arrived and when the connection ended.
fn read_until_closed(conn: &mut TcpStream) -> (Vec<u8>, Instant) {
    conn.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match conn.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("the connection was not closed: {e}"),
        }
    }
    (got, Instant::now())
}

// In both modes: the copy path, and --raw's zero-copy path (stdout a pipe).
#[test]
fn chat_closes_a_silent_connection_with_one_line_and_status_1() {
    for extra in [&[][..], &["--raw"]] {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let start = Instant::now();
        let mut args = vec!["-q", "--idle-timeout", "1"];
        args.extend_from_slice(extra);
        let mut client = chat(port, &args);
        let (mut conn, _) = listener.accept().unwrap();
        let (_, closed) = read_until_closed(&mut conn);
        let took = closed - start;
        assert!(took >= Duration::from_millis(900), "{extra:?}: {took:?}");
        assert_eq!(client.wait(), 1, "{extra:?}: {}", client.dump());
        assert_eq!(
            client.stderr_text(),
            format!(
                "chat: nothing received from 127.0.0.1:{port} for 1 s: connection closed (--idle-timeout)\n"
            ),
            "{extra:?}"
        );
    }
}

// A client that sends a line every 100 ms for 3 s is never idle for the
// 2 s of the timeout: it is closed 2 s after its last line, not 2 s after
// it connected; and the next client's timer starts with its own connection.
#[test]
fn the_timer_is_per_connection_and_restarts_with_each_receipt() {
    const IDLE: Duration = Duration::from_secs(2);
    const TALK: Duration = Duration::from_secs(3);
    let (server, port) = chatd_with(&["--idle-timeout", "2"], Stdio::null());
    // The ticks are a twentieth of the timeout, yet a test thread starved
    // for the whole timeout on a loaded machine leaves the connection
    // really idle (300 ms ticks against 1 s did, once). The test measures
    // its own gaps: a run with one as long as the timeout checks nothing,
    // and is run again, at most three times.
    let mut runs = 0;
    let (mut talker, last_sent) = loop {
        runs += 1;
        assert!(runs <= 3, "the test's ticks were starved three times");
        let mut talker = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let name = format!("127.0.0.1:{}", talker.local_addr().unwrap().port());
        let start = Instant::now();
        let (mut before_last, mut last_sent) = (start, start);
        let mut longest = Duration::ZERO;
        let mut ticks = 0;
        while last_sent - start < TALK {
            // The scenario: a client that pauses between its lines.
            std::thread::sleep(Duration::from_millis(100));
            let before = Instant::now();
            let line = format!("run {runs} tick {ticks}\n");
            let sent = talker.write_all(line.as_bytes());
            // From before the previous write to after this one: at least
            // what chatd saw between the two receipts.
            longest = longest.max(before_last.elapsed());
            if sent.is_err() {
                break;
            }
            (before_last, last_sent) = (before, Instant::now());
            ticks += 1;
        }
        if longest >= IDLE {
            println!("run {runs}: the test's ticks were {longest:?} apart: run again");
            let _ = talker.shutdown(std::net::Shutdown::Write);
            read_until_closed(&mut talker);
            continue;
        }
        assert!(
            last_sent - start >= TALK,
            "closed after {:?} of ticks at most {longest:?} apart\n{}",
            last_sent - start,
            server.dump()
        );
        server.expect_stdout(&format!("run {runs} tick {}\n", ticks - 1));
        assert!(
            !server.stderr_text().contains(&format!("from {name} for")),
            "closed though its ticks were at most {longest:?} apart\n{}",
            server.dump()
        );
        break (talker, last_sent);
    };
    let (_, closed) = read_until_closed(&mut talker);
    let quiet = closed - last_sent;
    assert!(
        quiet >= IDLE - Duration::from_millis(50),
        "closed {quiet:?} after the last line"
    );
    server.expect_stderr("for 2 s: connection closed (--idle-timeout)");
    let connected = Instant::now();
    let mut next = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let (_, closed) = read_until_closed(&mut next);
    let lived = closed - connected;
    assert!(
        lived >= IDLE - Duration::from_millis(50),
        "the next client lived {lived:?}"
    );
}

#[test]
fn chatd_drops_a_silent_client_and_serves_the_next() {
    let (mut server, port) = chatd(&["--idle-timeout", "0.5"]);
    let start = Instant::now();
    let mut silent = TcpStream::connect(("127.0.0.1", port)).unwrap();
    server.send(b"hello\n");
    let (got, closed) = read_until_closed(&mut silent);
    assert_eq!(got, b"hello\n");
    // Not before the timeout: a server that closed at half of it must
    // fail this test.
    assert!(
        closed - start >= Duration::from_millis(400),
        "{:?}",
        closed - start
    );
    server.expect_stderr("chatd: nothing received from 127.0.0.1:");
    let mut next = chat(port, &[]);
    next.send(b"I speak\n");
    server.expect_stdout("I speak\n");
    assert!(server.try_status().is_none());
}

#[test]
fn lockstep_closes_a_silent_connection_too() {
    let (mut server, port) = chatd_with(&["-a", "-1", "--idle-timeout", "0.5"], Stdio::null());
    let start = Instant::now();
    let mut silent = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let (_, closed) = read_until_closed(&mut silent);
    assert!(
        closed - start >= Duration::from_millis(400),
        "{:?}",
        closed - start
    );
    assert_eq!(server.wait(), 1, "{}", server.dump());
    server.expect_stderr("connection closed (--idle-timeout)");
}

#[test]
fn the_services_close_a_silent_client_only() {
    for mode in ["--echo", "--sum"] {
        let (mut server, port) = chatd(&[mode, "--idle-timeout", "0.5"]);
        let mut silent = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let start = Instant::now();
        let (got, closed) = read_until_closed(&mut silent);
        assert!(got.is_empty(), "{mode}: {got:?}");
        assert!(closed - start >= Duration::from_millis(400), "{mode}");
        server.expect_stderr("nothing received for the --idle-timeout: connection closed");
        assert!(server.try_status().is_none(), "{mode}: the server stopped");
        assert!(
            wait_until(TIMEOUT, || server.children().is_empty()),
            "{mode}"
        );
    }
    // A talker and a silent client connect together; the talker echoes
    // lines back to back until the silent one is closed (at least 2 s
    // later), and is still served after it: only the silent one was idle.
    // 2 s, not 0.5: a talking thread starved for the whole timeout on a
    // loaded machine would be idle too.
    let (_server, port) = chatd(&["--echo", "--idle-timeout", "2"]);
    let mut silent = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut talker = TcpStream::connect(("127.0.0.1", port)).unwrap();
    talker.set_read_timeout(Some(TIMEOUT)).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stopped = std::sync::Arc::clone(&stop);
    let talking = std::thread::spawn(move || {
        let mut pings = 0u64;
        while !stopped.load(std::sync::atomic::Ordering::Relaxed) {
            echo_round_trip(&mut talker, b"ping\n");
            pings += 1;
        }
        (talker, pings)
    });
    let (got, _) = read_until_closed(&mut silent);
    assert!(got.is_empty(), "{got:?}");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (mut talker, pings) = talking.join().unwrap();
    assert!(pings > 0);
    echo_round_trip(&mut talker, b"ping\n");
}

#[test]
fn zero_or_negative_is_a_usage_error() {
    for value in ["0", "-1", "soon"] {
        let mut p = spawn(CHAT, &["--idle-timeout", value]);
        assert_eq!(p.wait(), 2, "{value}: {}", p.dump());
    }
}

// The room: a silent member leaves as `-!- NAME left (idle)`; the others,
// who talk, stay. The talker speaks every 100 ms, a twentieth of the 2 s
// timeout, so that a test thread starved for a while on a loaded machine
// does not make it idle too (200 ms against 1 s left that margin thin).
#[test]
fn the_room_drops_a_silent_member_as_idle() {
    let (server, port) = chatd(&["--broker", "--idle-timeout", "2"]);
    let mut silent = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let silent_name = format!("127.0.0.1:{}", silent.local_addr().unwrap().port());
    let mut talker = TcpStream::connect(("127.0.0.1", port)).unwrap();
    talker.set_read_timeout(Some(TIMEOUT)).unwrap();
    let start = Instant::now();
    let notice = format!("-!- {silent_name} left (idle)\n");
    let mut heard = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&heard).contains(&notice) {
        assert!(
            start.elapsed() < TIMEOUT,
            "{}",
            String::from_utf8_lossy(&heard)
        );
        talker.write_all(b"still here\n").unwrap();
        // The scenario: a member who talks, with pauses.
        std::thread::sleep(Duration::from_millis(100));
        talker.set_nonblocking(true).unwrap();
        if let Ok(n) = talker.read(&mut buf) {
            heard.extend_from_slice(&buf[..n]);
        }
        talker.set_nonblocking(false).unwrap();
    }
    assert!(
        start.elapsed() >= Duration::from_millis(1900),
        "{:?}",
        start.elapsed()
    );
    server.expect_stdout(&notice);
    let (got, _) = read_until_closed(&mut silent);
    assert!(
        String::from_utf8_lossy(&got).contains("still here"),
        "its queue was sent"
    );
    talker.write_all(b"after\n").unwrap();
    server.expect_stdout("after\n");
}

/// The keepalive timer of the established TCP connection whose local port
/// is `local` and remote port `remote`, as `ss -tnoe` shows it: the
/// seconds left before the first probe, or `None` when the socket has no
/// keepalive timer (no `SO_KEEPALIVE`).
fn keepalive_timer(local: u16, remote: u16) -> Option<u32> {
    let filter = format!("( sport = :{local} and dport = :{remote} )");
    let out = std::process::Command::new("ss")
        .args(["-tnoeH", "state", "established", &filter])
        .output()
        .expect("ss (iproute2)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(text.lines().count(), 1, "one connection expected:\n{text}");
    let timer = text.split("timer:(").nth(1)?;
    let (kind, rest) = timer.split_once(',')?;
    if kind != "keepalive" {
        return None;
    }
    rest.split_once("sec")
        .and_then(|(secs, _)| secs.parse().ok())
}

/// The port at the other end of the one connection to `port` on
/// 127.0.0.1, once it is established.
fn client_port(port: u16) -> u16 {
    let mut found = None;
    let filter = format!("( sport = :{port} )");
    wait_until(TIMEOUT, || {
        let out = std::process::Command::new("ss")
            .args(["-tnH", "state", "established", &filter])
            .output()
            .expect("ss (iproute2)");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        found = text
            .split_whitespace()
            .filter_map(|field| field.rsplit_once(':'))
            .filter_map(|(_, p)| p.parse::<u16>().ok())
            .find(|&p| p != port);
        found.is_some()
    });
    found.expect("an established connection")
}

// A peer that vanishes (switched off, cable pulled) sends no FIN and no
// reset: without SO_KEEPALIVE the session, and a chatd that serves one
// client at a time, wait for it for ever. Both sides of a one-to-one
// session turn keepalive on, probing after 60 s of silence (ss shows the
// timer counting down from 60). socat, without its keepalive option, is
// the check that a socket without it shows no such timer.
#[test]
fn one_to_one_sessions_turn_tcp_keepalive_on_at_both_ends() {
    let (server, port) = chatd(&[]);
    let client = socat(&["-", &format!("TCP:127.0.0.1:{port}")]);
    server.expect_stderr("connection from");
    let theirs = client_port(port);
    let secs = keepalive_timer(port, theirs).expect("chatd's socket has SO_KEEPALIVE");
    assert!((1..=60).contains(&secs), "{secs} s to the first probe");
    assert_eq!(
        keepalive_timer(theirs, port),
        None,
        "socat's socket has none"
    );
    drop(client);
    drop(server);

    let (server, port) = socat_server("-");
    let mut client = chat(port, &[]);
    client.expect_stderr("connected to");
    let ours = client_port(port);
    let secs = keepalive_timer(ours, port).expect("chat's socket has SO_KEEPALIVE");
    assert!((1..=60).contains(&secs), "{secs} s to the first probe");
    assert_eq!(keepalive_timer(port, ours), None, "socat's socket has none");
    client.close_stdin();
    drop(server);
}

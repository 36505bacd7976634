//! The fork-based full-duplex chat (worksheet question 4), observed from
//! outside: the real `chatd` and `chat` binaries on real sockets on
//! 127.0.0.1, with `socat` as the peer where a test needs one side to be a
//! known-good tool.

mod util;

use std::net::TcpStream;
use std::process::Stdio;
use std::time::{Duration, Instant};

use util::*;

// Worksheet question 1: a server on a port that prints the lines its
// client sends.
#[test]
fn q1_server_prints_the_lines_a_socat_client_sends() {
    // As a script starts it: `chatd -1 < /dev/null > out`.
    let (mut server, port) = chatd_with(&["-1"], Stdio::null());
    let mut client = socat(&["-", &format!("TCP:127.0.0.1:{port}")]);
    client.send(b"bonjour\nsecond line\n");
    server.expect_stdout("bonjour\nsecond line\n");
    client.close_stdin();
    assert_eq!(client.wait(), 0, "{}", client.dump());
    assert_eq!(server.wait(), 0, "{}", server.dump());
    server.expect_stdout_exactly("bonjour\nsecond line\n");
    server.expect_stderr("chatd: connection from 127.0.0.1:");
}

// Worksheet question 2: a client that sends what is typed.
#[test]
fn q2_client_sends_what_is_typed_to_a_socat_server() {
    let (server, port) = socat_server("STDOUT");
    let mut client = chat(port, &[]);
    client.send(b"salut\n");
    server.expect_stdout("salut\n");
    client.send(b"encore\n");
    server.expect_stdout("salut\nencore\n");
    client.expect_stderr(&format!("chat: connected to 127.0.0.1:{port}"));
    assert_eq!(
        client.stdout_text(),
        "",
        "stdout carries only what the peer sent"
    );
}

// Worksheet question 4: both directions at once, between our two binaries,
// while neither side has closed its input.
#[test]
fn q4_both_directions_at_once() {
    let (mut server, port) = chatd(&["-1"]);
    let mut client = chat(port, &[]);
    server.expect_stderr("connection from");
    client.send(b"from client 1\n");
    server.send(b"from server 1\n");
    server.expect_stdout("from client 1\n");
    client.expect_stdout("from server 1\n");
    server.send(b"from server 2\n");
    client.send(b"from client 2\n");
    client.expect_stdout("from server 1\nfrom server 2\n");
    server.expect_stdout("from client 1\nfrom client 2\n");
    client.close_stdin();
    // The client half-closed: it has nothing more to send, but it still
    // listens, and the server still talks until its own input ends.
    server.send(b"from server 3\n");
    client.expect_stdout("from server 1\nfrom server 2\nfrom server 3\n");
    assert!(server.try_status().is_none() && client.try_status().is_none());
    server.close_stdin();
    assert_eq!(server.wait(), 0, "{}", server.dump());
    assert_eq!(client.wait(), 0, "{}", client.dump());
    server.expect_stdout_exactly("from client 1\nfrom client 2\n");
    assert_eq!(
        client.stdout_text(),
        "from server 1\nfrom server 2\nfrom server 3\n"
    );
}

#[test]
fn duplex_session_is_two_processes_per_side_and_none_after() {
    let (mut server, port) = chatd(&[]);
    let mut client = chat(port, &[]);
    client.send(b"ping\n");
    server.expect_stdout("ping\n");
    let two = wait_until(TIMEOUT, || {
        server.children().len() == 1 && client.children().len() == 1
    });
    assert!(two, "each side forks one child during a session");
    client.close_stdin();
    assert_eq!(client.wait(), 0, "{}", client.dump());
    server.expect_stderr("closed the connection");
    // Reaped without waiting for another event (the next client): a
    // zombie left under the server stays there for good, so waiting up
    // to TIMEOUT still fails when the reaping is missing or deferred,
    // where a 1 s bound failed on a loaded machine with nothing wrong.
    let none = wait_until(TIMEOUT, || server.children().is_empty());
    assert!(none, "zombie or stray child left: {:?}", server.children());
    assert!(server.try_status().is_none(), "chatd must keep serving");
}

// Half-close means "I have nothing more to send", never "I stopped
// listening": a server that replies one second after reading a line; the
// client half-closes on end of file and still prints the reply.
#[test]
fn half_close_keeps_the_delayed_reply() {
    let (_server, port) = socat_server("SYSTEM:read l; sleep 1; echo got $l,nofork");
    let mut client = spawn(
        "sh",
        &["-c", &format!("printf 'hi\\n' | {CHAT} 127.0.0.1 {port}")],
    );
    assert_eq!(client.wait(), 0, "{}", client.dump());
    client.expect_stdout_exactly("got hi\n");
}

// A person at a terminal, the other person left: chat ends at
// once, without waiting for a keystroke (nobody types here).
#[test]
fn peer_closing_first_ends_a_client_on_a_terminal_without_a_keystroke() {
    let (_server, port) = socat_server("SYSTEM:echo bye-from-server,nofork");
    let port_text = port.to_string();
    let mut client = spawn_on_terminal(CHAT, &["127.0.0.1", &port_text]);
    client.expect_stdout("bye-from-server\n");
    let status = client.wait_within(TIMEOUT);
    assert_eq!(status.code(), Some(0), "{}", client.dump());
    client.expect_stderr(&format!("chat: 127.0.0.1:{port} closed the connection"));
}

// A pipe on stdin that stays open and idle is not a person who
// left: chat keeps its direction open, but whoever reads its stdout sees
// end of file as soon as the peer's direction ends.
#[test]
fn peer_closing_first_ends_stdout_at_once_and_chat_when_its_pipe_ends() {
    let (_server, port) = socat_server("SYSTEM:echo bye-from-server,nofork");
    let mut client = chat(port, &[]);
    client.expect_stdout("bye-from-server\n");
    // The order of events: stdout ends, while chat (its stdin open) runs.
    let closed = wait_until(TIMEOUT, || client.stdout_closed());
    assert!(
        closed,
        "stdout still open after the peer left\n{}",
        client.dump()
    );
    assert!(client.try_status().is_none(), "its stdin has not ended yet");
    client.close_stdin();
    assert_eq!(client.wait(), 0, "{}", client.dump());
    client.expect_stdout_exactly("bye-from-server\n");
}

#[test]
fn chatd_serves_clients_one_after_another() {
    let (mut server, port) = chatd(&[]);
    for i in 0..3 {
        let mut client = socat(&["-", &format!("TCP:127.0.0.1:{port}")]);
        client.send(format!("client {i}\n").as_bytes());
        client.close_stdin();
        assert_eq!(client.wait(), 0, "{}", client.dump());
        server.expect_stdout(&format!("client {i}\n"));
    }
    server.expect_stdout_exactly("client 0\nclient 1\nclient 2\n");
    // Standard error is another pipe, read by another thread: the third
    // notice can still be on its way when the third line is on stdout.
    let notices = || {
        server
            .stderr_text()
            .matches("connection from 127.0.0.1:")
            .count()
    };
    wait_until(TIMEOUT, || notices() >= 3);
    let stderr = server.stderr_text();
    assert_eq!(
        stderr.matches("connection from 127.0.0.1:").count(),
        3,
        "{stderr}"
    );
    server.signal(libc::SIGTERM);
    assert_eq!(server.wait(), 128 + libc::SIGTERM);
}

#[test]
fn chatd_restarts_on_the_same_port_right_after_a_session() {
    // The server sends its one line and half-closes first, so its side of
    // the connection ends in TIME_WAIT: only SO_REUSEADDR lets a new server
    // bind.
    let dir = tempfile::tempdir().unwrap();
    let line = dir.path().join("line");
    std::fs::write(&line, "hello\n").unwrap();
    let stdin = Stdio::from(std::fs::File::open(&line).unwrap());
    let mut first = spawn_with(CHATD, &["-1", "-b", "127.0.0.1", "-p", "0"], stdin);
    let port = wait_for_port(&first, "chatd");
    let port_text = port.to_string();
    let args = ["-1", "-b", "127.0.0.1", "-p", &port_text];
    // socat's stdin stays open: it closes only after the server's FIN (and
    // its -t delay), so the server is the side that closed first.
    let mut client = socat(&["-", &format!("TCP:127.0.0.1:{port}")]);
    client.expect_stdout("hello\n");
    assert_eq!(first.wait(), 0, "{}", first.dump());
    assert_eq!(client.wait(), 0, "{}", client.dump());
    let ss = std::process::Command::new("ss")
        .args(["-tan", "state", "time-wait", &format!("sport = :{port}")])
        .output()
        .expect("ss (iproute2)");
    let text = String::from_utf8_lossy(&ss.stdout);
    assert!(
        text.contains(&format!(":{port}")),
        "no TIME_WAIT to test against:\n{text}"
    );
    let second = spawn_with(CHATD, &args, Stdio::null());
    second.expect_stderr(&format!("listening on 127.0.0.1:{port}"));
}

#[test]
fn socat_server_and_chat_client_talk_both_ways() {
    let (mut server, port) = socat_server("-");
    let mut client = chat(port, &[]);
    client.send(b"question?\n");
    server.expect_stdout("question?\n");
    server.send(b"answer!\n");
    client.expect_stdout("answer!\n");
    server.close_stdin();
    client.close_stdin();
    assert_eq!(client.wait(), 0, "{}", client.dump());
    client.expect_stdout_exactly("answer!\n");
}

#[test]
fn ten_mib_each_way_arrive_byte_identical() {
    const LEN: usize = 10 * 1024 * 1024;
    let (to_client, to_server) = (random_bytes(LEN, 1), random_bytes(LEN, 2));
    let (server, client) = exchange(&["-q"], &to_client, &to_server);
    let (got_client, got_server) = (client.stdout(), server.stdout());
    assert_eq!(got_client.len(), LEN, "client received");
    assert_eq!(got_server.len(), LEN, "server received");
    assert!(got_client == to_client, "client bytes differ");
    assert!(got_server == to_server, "server bytes differ");
    assert_eq!(
        client.stderr_text() + &server.stderr_text(),
        "",
        "-q prints nothing"
    );
}

#[test]
fn bind_conflict_is_one_line_and_status_1() {
    let (_server, port) = chatd(&[]);
    let mut second = spawn(CHATD, &["-b", "127.0.0.1", "-p", &port.to_string()]);
    assert_eq!(second.wait(), 1);
    assert_eq!(
        second.stderr_text(),
        format!(
            "chatd: bind 127.0.0.1:{port}: Address already in use; \
             another program has this port: pick another with -p, or see which with 'ss -ltnp'\n"
        )
    );
}

#[test]
fn refused_connection_is_one_line_and_status_1() {
    let port = free_port();
    let mut client = chat(port, &[]);
    assert_eq!(client.wait(), 1);
    assert_eq!(
        client.stderr_text(),
        format!(
            "chat: connect to 127.0.0.1 port {port}: Connection refused; \
             is chatd running there? --retry SECS waits for it to start\n"
        )
    );
}

#[test]
fn unknown_host_is_one_line_and_status_1() {
    let mut client = spawn(CHAT, &["nosuchhost.invalid", "8080"]);
    assert_eq!(client.wait(), 1);
    assert_eq!(
        client.stderr_text(),
        "chat: unknown host nosuchhost.invalid; \
         check its spelling, or give an IP address instead\n"
    );
}

#[test]
fn usage_errors_exit_2() {
    for (program, args) in [
        (CHATD, &["-p", "notaport"][..]),
        (CHATD, &["-b", "not an address"][..]),
        (CHAT, &["--retry", "soon"][..]),
        (CHAT, &["--no-such-option"][..]),
    ] {
        let mut p = spawn(program, args);
        assert_eq!(p.wait(), 2, "{program} {args:?}\n{}", p.dump());
        assert!(p.stderr_text().ends_with(" --help')\n"), "{}", p.dump());
    }
}

#[test]
fn retry_waits_for_a_server_started_later() {
    let port = free_port();
    let mut client = chat(port, &["--retry", "10"]);
    // The scenario, not a wait for an event: the server starts later.
    // Under load chat may not have tried yet, which makes the check below
    // weaker, never wrong.
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        client.try_status().is_none(),
        "gave up before --retry ran out"
    );
    let port_text = port.to_string();
    let args = ["-1", "-b", "127.0.0.1", "-p", &port_text];
    let mut server = spawn_with(CHATD, &args, Stdio::null());
    client.send(b"late but here\n");
    server.expect_stdout("late but here\n");
    client.close_stdin();
    assert_eq!(client.wait(), 0, "{}", client.dump());
    assert_eq!(server.wait(), 0, "{}", server.dump());
}

#[test]
fn retry_gives_up_after_its_time() {
    let port = free_port();
    let start = Instant::now();
    let mut client = chat(port, &["--retry", "0.5"]);
    assert_eq!(client.wait(), 1);
    assert!(
        start.elapsed() >= Duration::from_millis(400),
        "retried {:?}",
        start.elapsed()
    );
    client.expect_stderr("Connection refused");
}

#[test]
fn ipv6_loopback_works() {
    let mut server = spawn_with(CHATD, &["-1", "-b", "::1", "-p", "0"], Stdio::null());
    let port = wait_for_port(&server, "chatd");
    let port_text = port.to_string();
    server.expect_stderr(&format!("chatd: listening on [::1]:{port}"));
    let mut client = spawn(CHAT, &["::1", &port_text]);
    client.send(b"over six\n");
    server.expect_stdout("over six\n");
    client.close_stdin();
    assert_eq!(client.wait(), 0, "{}", client.dump());
    assert_eq!(server.wait(), 0, "{}", server.dump());
}

#[test]
fn quiet_silences_status_lines_but_not_errors() {
    let (mut server, port) = chatd_with(&["-1"], Stdio::null());
    let mut client = chat(port, &["-q"]);
    client.send(b"x\n");
    server.expect_stdout("x\n");
    client.close_stdin();
    assert_eq!(client.wait(), 0);
    assert_eq!(server.wait(), 0);
    assert_eq!(client.stderr_text(), "");
    let mut refused = chat(free_port(), &["-q"]);
    assert_eq!(refused.wait(), 1);
    assert!(refused.stderr_text().starts_with("chat: connect to "));
}

fn signal_ends_both_processes(sig: i32) {
    let (_server, port) = socat_server("-");
    let mut client = chat(port, &[]);
    client.expect_stderr("connected to");
    let ok = wait_until(TIMEOUT, || client.children().len() == 1);
    assert!(ok, "no receiving child");
    let child = client.children()[0];
    client.signal(sig);
    assert_eq!(client.wait(), 128 + sig, "{}", client.dump());
    let gone = wait_until(TIMEOUT, || {
        !std::path::Path::new(&format!("/proc/{child}")).exists()
    });
    assert!(gone, "receiving child {child} outlived its parent");
}

#[test]
fn sigint_ends_both_processes_with_130() {
    signal_ends_both_processes(libc::SIGINT);
}

#[test]
fn sigterm_ends_both_processes_with_143() {
    signal_ends_both_processes(libc::SIGTERM);
}

#[test]
fn sighup_ends_both_processes_with_129() {
    signal_ends_both_processes(libc::SIGHUP);
}

#[test]
fn sigint_stops_an_idle_server() {
    let (mut server, _port) = chatd(&[]);
    server.signal(libc::SIGINT);
    assert_eq!(server.wait(), 130);
}

#[test]
fn broken_stdout_ends_quietly() {
    let (_server, port) = socat_server("SYSTEM:yes line,nofork");
    // `chat | head -n 1`, exiting with chat's own status.
    let pipeline = format!("{CHAT} -q 127.0.0.1 {port} | head -n 1; exit ${{PIPESTATUS[0]}}");
    let mut client = spawn("bash", &["-c", &pipeline]);
    assert_eq!(client.wait(), 0, "{}", client.dump());
    client.expect_stdout_exactly("line\n");
    assert_eq!(client.stderr_text(), "", "a closed stdout is not an error");
}

#[test]
fn peer_reset_is_one_line_and_chatd_keeps_serving() {
    let (mut server, port) = chatd(&[]);
    // A socat that never reads the socket (-u: stdin to TCP only) and dies
    // with our line unread in its receive buffer: the kernel answers with
    // RST, not FIN.
    let mut resetter = socat(&["-u", "-", &format!("TCP:127.0.0.1:{port}")]);
    server.expect_stderr("connection from");
    server.send(b"never read\n");
    // Killed once the line waits unread in its socket, not before: a
    // socket closed with nothing unread ends with FIN, not RST.
    let unread = wait_until(TIMEOUT, || unread_by_clients(port) > 0);
    assert!(unread, "the line never reached socat\n{}", server.dump());
    resetter.signal(libc::SIGKILL);
    let _ = resetter.wait_within(TIMEOUT);
    server.expect_stderr("chatd: connection reset by 127.0.0.1:");
    let stderr = server.stderr_text();
    assert_eq!(stderr.matches("reset").count(), 1, "one line: {stderr}");
    let mut next = socat(&["-", &format!("TCP:127.0.0.1:{port}")]);
    next.send(b"still here\n");
    server.expect_stdout("still here\n");
    next.close_stdin();
    assert_eq!(next.wait(), 0);
    assert!(server.try_status().is_none(), "chatd must keep serving");
}

#[test]
fn child_killed_from_outside_ends_the_session_and_chatd_keeps_serving() {
    let (server, port) = chatd(&[]);
    let mut first = chat(port, &[]);
    first.send(b"one\n");
    server.expect_stdout("one\n");
    assert!(wait_until(TIMEOUT, || server.children().len() == 1));
    let child = server.children()[0];
    // SAFETY: kill(2) on the server's receiving child, found in /proc.
    assert_eq!(unsafe { libc::kill(child as i32, libc::SIGKILL) }, 0);
    server.expect_stderr("chatd: receiving process killed by signal 9 (SIGKILL)");
    // The client sees the server close; it ends when its own input does.
    first.close_stdin();
    assert_eq!(first.wait(), 0, "{}", first.dump());
    let mut second = chat(port, &[]);
    second.send(b"two\n");
    server.expect_stdout("one\ntwo\n");
    second.close_stdin();
    assert_eq!(second.wait(), 0);
}

/// `chatd` reading a pipe tells a client that waits for its turn nothing:
/// the notices of a busy `chatd` are for a person typing at it only, and
/// the waiting client receives exactly the pipe's bytes of its session.
#[test]
fn a_client_waiting_for_chatd_on_a_pipe_receives_only_the_pipes_bytes() {
    let (mut server, port) = chatd_with(&[], Stdio::piped());
    let mut first = TcpStream::connect(("127.0.0.1", port)).unwrap();
    server.expect_stderr("connection from");
    let mut second = TcpStream::connect(("127.0.0.1", port)).unwrap();
    server.send(b"to the first\n");
    let mut got = Vec::new();
    read_until(&mut first, &mut got, b"to the first\n");
    drop(first);
    assert!(
        wait_until(TIMEOUT, || server
            .stderr_text()
            .matches("connection from")
            .count()
            == 2),
        "{}",
        server.dump()
    );
    server.send(b"to the second\n");
    let mut got = Vec::new();
    read_until(&mut second, &mut got, b"to the second\n");
    assert_eq!(got, b"to the second\n");
}

/// `chat` takes only a busy `chatd`'s exact notice lines out of what it
/// receives: bytes that only begin like one are held back a moment at
/// most, then passed on unchanged, and stdout gets every byte.
#[test]
fn chat_passes_on_what_only_begins_like_a_notice() {
    let (mut server, port) = socat_server("-");
    let client = chat(port, &["-d"]);
    client.expect_stderr("connected to");
    server.send(b"-!- chatd is busy");
    client.expect_stdout("-!- chatd is busy");
    server.send(b" with friends\n-!- your session with chatd starts now\n");
    client.expect_stdout("with friends\n-!- your session with chatd starts now\n");
    server.close_stdin();
    let mut client = client;
    assert_eq!(client.wait(), 0, "{}", client.dump());
    assert_eq!(
        client.stdout_text(),
        "-!- chatd is busy with friends\n-!- your session with chatd starts now\n"
    );
    assert!(!client.stderr_text().contains("busy"), "{}", client.dump());
}

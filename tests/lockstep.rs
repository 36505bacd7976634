//! The lockstep chat, `-a/--alternating` (worksheet question 3): the two
//! sides take turns, one line each, observed on the real binaries and with
//! socat as the peer.

mod util;

use std::time::Duration;

use util::*;

/// `count` numbered lines starting with `tag`.
fn lines(tag: &str, count: usize) -> String {
    (0..count).map(|i| format!("{tag} {i}\n")).collect()
}

#[test]
fn a_thousand_rounds_arrive_exactly_in_order() {
    let (server_lines, client_lines) = (lines("server", 1000), lines("client", 1000));
    let (server, client) = exchange(&["-a"], server_lines.as_bytes(), client_lines.as_bytes());
    server.expect_stdout_exactly(&client_lines);
    client.expect_stdout_exactly(&server_lines);
}

#[test]
fn each_side_waits_for_the_others_line_before_sending_the_next() {
    let (mut server, port) = chatd(&["-a", "-1"]);
    let mut client = chat(port, &["-a"]);
    // The client typed ahead two lines: only the first goes, then its turn ends.
    client.send(b"c1\nc2\n");
    server.expect_stdout("c1\n");
    // A window for a line sent out of turn to show, not a wait for an
    // event: under load it may show less, never fail a correct turn.
    std::thread::sleep(Duration::from_millis(300));
    // Only c1: c2 would have been sent out of turn.
    server.expect_stdout_exactly("c1\n");
    server.send(b"s1\n");
    client.expect_stdout("s1\n");
    server.expect_stdout("c1\nc2\n");
    server.send(b"s2\n");
    client.expect_stdout("s1\ns2\n");
    client.close_stdin();
    server.close_stdin();
    assert_eq!(client.wait(), 0, "{}", client.dump());
    assert_eq!(server.wait(), 0, "{}", server.dump());
}

#[test]
fn chat_alternating_against_a_socat_server() {
    let (mut server, port) = socat_server("-");
    let mut client = chat(port, &["-a"]);
    client.send(b"question\n");
    server.expect_stdout("question\n");
    server.send(b"answer\n");
    client.expect_stdout("answer\n");
    client.send(b"thanks\n");
    server.expect_stdout("question\nthanks\n");
    server.close_stdin();
    client.close_stdin();
    assert_eq!(client.wait(), 0, "{}", client.dump());
    client.expect_stdout_exactly("answer\n");
}

#[test]
fn chatd_alternating_listens_first_to_a_socat_client() {
    let (mut server, port) = chatd(&["-a", "-1"]);
    // The server's line is ready, but it is the client's turn first.
    server.send(b"server speaks\n");
    let mut client = socat(&["-", &format!("TCP:127.0.0.1:{port}")]);
    server.expect_stderr("connection from");
    // A window for a line sent out of turn to show, not a wait for an
    // event: under load it may show less, never fail a correct turn.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(client.stdout_text(), "", "the server spoke out of turn");
    client.send(b"client speaks\n");
    server.expect_stdout("client speaks\n");
    client.expect_stdout("server speaks\n");
    client.close_stdin();
    server.close_stdin();
    assert_eq!(server.wait(), 0, "{}", server.dump());
}

#[test]
fn both_speaking_first_works_the_lines_cross() {
    let (mut server, port) = chatd(&["-a", "-1", "--speak-first"]);
    let mut client = chat(port, &["-a"]);
    server.send(b"from server\n");
    client.send(b"from client\n");
    server.expect_stdout("from client\n");
    client.expect_stdout("from server\n");
    client.close_stdin();
    server.close_stdin();
    assert_eq!(client.wait(), 0, "{}", client.dump());
    assert_eq!(server.wait(), 0, "{}", server.dump());
}

#[test]
fn both_listening_first_waits_forever() {
    let (mut server, port) = chatd(&["-a", "-1"]);
    let mut client = chat(port, &["-a", "--listen-first"]);
    server.send(b"server line\n");
    client.send(b"client line\n");
    server.expect_stderr("connection from");
    // A window for a line to show, not a wait for an event: under load it
    // may show less, never fail a deadlock.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(server.stdout_text(), "", "deadlock expected: nobody speaks");
    assert_eq!(client.stdout_text(), "");
    assert!(server.try_status().is_none() && client.try_status().is_none());
    client.signal(libc::SIGINT);
    assert_eq!(client.wait(), 130);
}

#[test]
fn speak_first_and_listen_first_need_alternating() {
    let mut server = spawn(CHATD, &["--speak-first"]);
    assert_eq!(server.wait(), 2, "{}", server.dump());
    let mut client = spawn(CHAT, &["--listen-first"]);
    assert_eq!(client.wait(), 2, "{}", client.dump());
}

#[test]
fn a_long_line_is_printed_as_it_arrives_and_the_turn_changes_at_its_newline() {
    let (mut server, port) = socat_server("-");
    let mut client = chat(port, &["-a", "--listen-first"]);
    client.expect_stderr("connected");
    let piece = vec![b'x'; 300 * 1024];
    server.send(&piece);
    // Printed before the line is complete: nothing holds the whole line.
    let printed = wait_until(TIMEOUT, || client.stdout().len() == piece.len());
    assert!(printed, "got {} bytes", client.stdout().len());
    client.send(b"my turn\n");
    // A window for a line sent out of turn to show, not a wait for an
    // event: under load it may show less, never fail a correct turn.
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(server.stdout_text(), "", "spoke before the peer's newline");
    server.send(b"end\n");
    server.expect_stdout("my turn\n");
    let mut expected = piece.clone();
    expected.extend_from_slice(b"end\n");
    // Waited for, not read at once: the test's thread that collects
    // chat's standard output can still be taking "end" from the pipe when
    // the server already has "my turn" (read at once, the test failed so
    // when that thread was delayed, as load delays it).
    let whole = wait_until(TIMEOUT, || client.stdout() == expected);
    let got = client.stdout();
    assert!(
        whole,
        "chat printed {} bytes, not the {} sent, ending {:?}",
        got.len(),
        expected.len(),
        String::from_utf8_lossy(&got[got.len().saturating_sub(8)..])
    );
}

#[test]
fn a_last_line_without_newline_still_counts() {
    let (mut server, port) = chatd(&["-a", "-1"]);
    let mut client = chat(port, &["-a"]);
    client.send(b"first\n");
    server.expect_stdout("first\n");
    server.send(b"reply\n");
    client.expect_stdout("reply\n");
    client.send(b"last words");
    client.close_stdin();
    server.expect_stdout("first\nlast words");
    server.close_stdin();
    assert_eq!(client.wait(), 0, "{}", client.dump());
    assert_eq!(server.wait(), 0, "{}", server.dump());
}

#[test]
fn no_turn_indicator_when_stdin_is_not_a_terminal() {
    let (mut server, port) = chatd(&["-a", "-1"]);
    let mut client = chat(port, &["-a"]);
    client.send(b"hi\n");
    server.expect_stdout("hi\n");
    server.send(b"hello\n");
    client.expect_stdout("hello\n");
    client.close_stdin();
    server.close_stdin();
    assert_eq!(client.wait(), 0);
    assert_eq!(server.wait(), 0);
    for text in [client.stderr_text(), server.stderr_text()] {
        assert!(!text.contains("> ") && !text.contains("waiting"), "{text}");
    }
    assert_eq!(
        client.stdout_text(),
        "hello\n",
        "nothing but the peer's line on stdout"
    );
}

#[test]
fn chatd_alternating_serves_the_next_client() {
    let (mut server, port) = chatd(&["-a"]);
    for i in 0..2 {
        let mut client = chat(port, &["-a"]);
        client.send(format!("client {i}\n").as_bytes());
        server.expect_stdout(&format!("client {i}\n"));
        server.send(format!("reply {i}\n").as_bytes());
        client.expect_stdout(&format!("reply {i}\n"));
        client.close_stdin();
        assert_eq!(client.wait(), 0, "{}", client.dump());
    }
    server.signal(libc::SIGTERM);
    assert_eq!(server.wait(), 143);
}

// Waiting for the peer's line is a blocking read with a receive timeout:
// a signal still ends it at once, and the reader of stdout
// going away still ends the session, while the peer stays silent.
//
// The peer stays silent for good (60 s, six times TIMEOUT), so a chat that
// missed the signal or head's exit would outlive the wait: the bound tells
// "ends while the peer is silent" from "ends when the peer speaks or
// leaves". It is not the promise's latency: a second was exceeded on a
// loaded debug build with nothing wrong.
#[test]
fn waiting_for_a_silent_peer_still_sees_signals_and_stdout_gone() {
    let (_server, port) = socat_server("SYSTEM:read l; echo one; read l; sleep 60,nofork");
    let pipeline = format!(
        "printf 'a\\nb\\n' | {CHAT} -a -q 127.0.0.1 {port} | head -n 1; exit ${{PIPESTATUS[1]}}"
    );
    let mut client = spawn("bash", &["-c", &pipeline]);
    client.expect_stdout("one\n");
    let status = client.wait_within(TIMEOUT);
    assert_eq!(status.code(), Some(0), "{}", client.dump());
    assert_eq!(client.stderr_text(), "", "a closed stdout is not an error");

    // A peer that reads and never answers (socat's own stdin stays open
    // and empty): once it has the line, chat waits for the peer's turn.
    let (server, port) = socat_server("-");
    let mut client = chat(port, &["-a", "-q"]);
    client.send(b"hello\n");
    server.expect_stdout("hello\n");
    client.signal(libc::SIGINT);
    let status = client.wait_within(TIMEOUT);
    assert_eq!(status.code(), Some(130), "{}", client.dump());
}

//! The protocol words of the worksheet exercises ("bye stops the client but
//! not the server; arret stops the client and the server"), `--raw`,
//! `--crlf`, and bytes passing unchanged when stdout is not a terminal.

mod util;

use std::process::Stdio;
use std::time::Duration;

use util::*;

/// A socat client connected to 127.0.0.1:`port`.
fn socat_client(port: u16) -> Proc {
    socat(&["-", &format!("TCP:127.0.0.1:{port}")])
}

#[test]
fn bye_typed_in_chat_ends_its_session_but_not_the_server() {
    let (mut server, port) = chatd(&[]);
    let mut client = chat(port, &[]);
    client.send(b"hello\nbye\n");
    assert_eq!(client.wait(), 0, "{}", client.dump());
    // The word is delivered.
    server.expect_stdout_exactly("hello\nbye\n");
    client.expect_stderr("chat: you said bye: session ended");
    server.expect_stderr("said bye: session ended");
    // The server goes back to accept.
    let mut next = chat(port, &[]);
    next.send(b"next one\n");
    server.expect_stdout("hello\nbye\nnext one\n");
    next.close_stdin();
    assert_eq!(next.wait(), 0);
    assert!(server.try_status().is_none(), "bye must not stop chatd");
}

// Bytes read from a pipe after the word's line cannot go back into the
// pipe: chat says how many were not sent and exits 1 (nothing is lost
// silently), and the server received exactly up to the word's line.
#[test]
fn input_read_after_bye_is_counted_as_not_sent() {
    let (mut server, port) = chatd(&[]);
    let mut client = chat(port, &[]);
    // One write of 11 bytes to a pipe: chat's first read takes all of it.
    client.send(b"a\nbye\nrest\n");
    let status = client.wait_within(TIMEOUT);
    assert_eq!(status.code(), Some(1), "{}", client.dump());
    client.expect_stderr("chat: you said bye: session ended; 5 bytes of input were not sent");
    server.expect_stderr("said bye: session ended");
    // Up to the word's line.
    server.expect_stdout_exactly("a\nbye\n");
    assert!(server.try_status().is_none(), "bye must not stop chatd");
}

// The same for chatd when its own arret stops it: what it read from its
// standard input after the word's line is counted, exit 1.
#[test]
fn input_chatd_read_and_did_not_send_before_arret_is_counted() {
    let (mut server, port) = chatd(&[]);
    let mut client = chat(port, &[]);
    server.expect_stderr("connection from");
    server.send(b"x\n");
    client.expect_stdout("x\n");
    // One write to the pipe: chatd reads it whole, sends up to its own
    // arret, and the 2 bytes after it are counted.
    server.send(b"y\narret\nz\n");
    let status = server.wait_within(TIMEOUT);
    assert_eq!(status.code(), Some(1), "{}", server.dump());
    server.expect_stderr(
        "chatd: you said arret: session ended, server stopping; 2 bytes of input were not sent",
    );
    assert_eq!(client.wait(), 0, "{}", client.dump());
    client.expect_stdout_exactly("x\ny\narret\n");
}

#[test]
fn bye_typed_in_chatd_ends_the_clients_session() {
    let (mut server, port) = chatd(&[]);
    let mut client = chat(port, &[]);
    server.expect_stderr("connection from");
    server.send(b"bye\n");
    // The client is idle: it must end at once, not wait for a keystroke
    // (nobody types, so a client that waited would outlive TIMEOUT).
    let status = client.wait_within(TIMEOUT);
    assert_eq!(status.code(), Some(0), "{}", client.dump());
    client.expect_stdout_exactly("bye\n");
    client.expect_stderr("chat: peer said bye: session ended");
    server.expect_stderr("chatd: you said bye: session ended");
    assert!(server.try_status().is_none(), "bye must not stop chatd");
}

#[test]
fn arret_typed_in_chat_stops_both() {
    let (mut server, port) = chatd(&[]);
    let mut client = chat(port, &[]);
    client.send(b"arret\n");
    assert_eq!(client.wait(), 0, "{}", client.dump());
    assert_eq!(server.wait(), 0, "{}", server.dump());
    server.expect_stdout_exactly("arret\n");
    server.expect_stderr("said arret: session ended, server stopping");
}

#[test]
fn arret_typed_in_chatd_stops_both() {
    let (mut server, port) = chatd(&[]);
    let mut client = chat(port, &[]);
    server.expect_stderr("connection from");
    server.send(b"arret\n");
    assert_eq!(client.wait(), 0, "{}", client.dump());
    assert_eq!(server.wait(), 0, "{}", server.dump());
    client.expect_stdout_exactly("arret\n");
    client.expect_stderr("chat: peer said arret: session ended");
}

#[test]
fn bye_from_a_socat_client_closes_its_connection_and_chatd_serves_on() {
    let (server, port) = chatd(&[]);
    let mut client = socat_client(port);
    client.send(b"bye\n");
    // chatd closes: socat sees end of file and exits although its stdin is open.
    assert_eq!(client.wait(), 0, "{}", client.dump());
    server.expect_stderr("said bye");
    let mut next = socat_client(port);
    next.send(b"again\n");
    server.expect_stdout("bye\nagain\n");
}

#[test]
fn arret_from_a_socat_client_stops_chatd() {
    let (mut server, port) = chatd(&[]);
    let mut client = socat_client(port);
    client.send(b"arret\n");
    assert_eq!(server.wait(), 0, "{}", server.dump());
    assert_eq!(client.wait(), 0, "{}", client.dump());
}

#[test]
fn bye_with_crlf_from_a_socat_server_ends_chat() {
    let (mut server, port) = socat_server("-");
    let mut client = chat(port, &[]);
    client.expect_stderr("connected");
    server.send(b"bye\r\n");
    let status = client.wait_within(TIMEOUT);
    assert_eq!(status.code(), Some(0), "{}", client.dump());
    client.expect_stderr("chat: peer said bye");
}

#[test]
fn a_word_split_across_reads_is_recognised() {
    let (mut server, port) = chatd(&[]);
    let mut client = socat_client(port);
    client.send(b"ar");
    server.expect_stdout("ar");
    // The scenario: the word's pieces arrive in separate reads.
    std::thread::sleep(Duration::from_millis(100));
    client.send(b"ret\r");
    std::thread::sleep(Duration::from_millis(100));
    client.send(b"\n");
    assert_eq!(server.wait(), 0, "{}", server.dump());
    server.expect_stdout_exactly("arret\r\n");
}

#[test]
fn near_misses_are_ordinary_lines() {
    let (mut server, port) = chatd(&["-1"]);
    let mut client = chat(port, &[]);
    let text = "bye now\n bye\nBYE\nbyebye\narrets\nsay bye\n";
    client.send(text.as_bytes());
    server.expect_stdout(text);
    assert!(client.try_status().is_none() && server.try_status().is_none());
    client.close_stdin();
    server.close_stdin();
    assert_eq!(client.wait(), 0);
    assert_eq!(server.wait(), 0);
    assert!(!server.stderr_text().contains("said"), "{}", server.dump());
}

#[test]
fn raw_turns_the_words_off() {
    let (mut server, port) = chatd(&["--raw"]);
    let mut client = chat(port, &["--raw"]);
    client.send(b"bye\narret\nstill talking\n");
    server.expect_stdout("bye\narret\nstill talking\n");
    server.send(b"bye\n");
    client.expect_stdout("bye\n");
    // A window for a wrong end to show, not a wait for an event: under
    // load it may show less, never fail a session that stays.
    std::thread::sleep(Duration::from_millis(200));
    assert!(client.try_status().is_none() && server.try_status().is_none());
    client.close_stdin();
    assert_eq!(client.wait(), 0);
}

#[test]
fn input_after_bye_goes_to_the_next_client() {
    // chatd's stdin holds a script: what the first session did not send,
    // because of its bye, is sent to the next client, not lost.
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("script");
    std::fs::write(&script, "for the first\nbye\nfor the second\n").unwrap();
    let server = spawn_with(
        CHATD,
        &["-b", "127.0.0.1", "-p", "0"],
        Stdio::from(std::fs::File::open(&script).unwrap()),
    );
    let port = wait_for_port(&server, "chatd");
    let mut first = chat(port, &[]);
    assert_eq!(first.wait(), 0, "{}", first.dump());
    first.expect_stdout_exactly("for the first\nbye\n");
    let mut second = chat(port, &[]);
    second.expect_stdout("for the second\n");
    second.close_stdin();
    assert_eq!(second.wait(), 0, "{}", second.dump());
    second.expect_stdout_exactly("for the second\n");
}

#[test]
fn words_end_a_lockstep_session_too() {
    let (mut server, port) = chatd(&["-a"]);
    let mut client = chat(port, &["-a"]);
    client.send(b"hello\n");
    server.expect_stdout("hello\n");
    server.send(b"hi\n");
    client.expect_stdout("hi\n");
    client.send(b"bye\n");
    assert_eq!(client.wait(), 0, "{}", client.dump());
    server.expect_stderr("said bye: session ended");
    let mut second = chat(port, &["-a"]);
    second.send(b"arret\n");
    assert_eq!(second.wait(), 0, "{}", second.dump());
    assert_eq!(server.wait(), 0, "{}", server.dump());
}

#[test]
fn crlf_sends_line_ends_as_cr_lf() {
    let (server, port) = socat_server("STDOUT");
    let mut client = chat(port, &["--crlf"]);
    client.send(b"one\ntwo\r\nthree\n");
    server.expect_stdout("three\r\n");
    server.expect_stdout_exactly("one\r\ntwo\r\nthree\r\n");
}

#[test]
fn escape_bytes_pass_unchanged_when_stdout_is_not_a_terminal() {
    let (mut server, port) = socat_server("-");
    let client = chat(port, &[]);
    client.expect_stderr("connected");
    let payload = b"\x1b]0;pwned\x07\x1b[2J\x9b\r\n\x00end\n";
    server.send(payload);
    let arrived = wait_until(TIMEOUT, || client.stdout().ends_with(b"end\n"));
    assert!(arrived, "{}", client.dump());
    assert!(
        client.stdout() == payload,
        "a pipe gets the bytes as they are"
    );
}

//! When a session really ends: a session has two directions and ends
//! when both have ended (WHEN A SESSION ENDS in the man pages). Each test
//! is one case of that section, on the real binaries, with scripts' stdin
//! (`/dev/null`, pipes, files) and a person's (a pseudo-terminal).
//!
//! Two cases live in `tests/duplex.rs` beside the tests they replaced:
//! `peer_closing_first_ends_a_client_on_a_terminal_without_a_keystroke` and
//! `peer_closing_first_ends_stdout_at_once_and_chat_when_its_pipe_ends`.

mod util;

use std::io::Read;
use std::net::TcpListener;
use std::process::Stdio;
use std::time::Duration;

use util::*;

const MIB: usize = 1024 * 1024;

/// A file in a fresh temporary directory, opened as a process's stdin.
fn stdin_file(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> Stdio {
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    Stdio::from(std::fs::File::open(path).unwrap())
}

/// Writes `data` to `proc`'s stdin in `parts` pieces, `pause` apart, then
/// closes it: a producer that pauses, as `(cmd; sleep; cmd) | chat` does.
fn produce_with_pauses(proc: &mut Proc, data: &[u8], parts: usize, pause: Duration) {
    for part in data.chunks(data.len().div_ceil(parts)) {
        proc.send(part);
        std::thread::sleep(pause);
    }
    proc.close_stdin();
}

// `chatd -1 < /dev/null > out` and five 1 MiB writes, 0.3 s apart, piped
// into `chat`: out holds all 5 MiB; both exit 0.
#[test]
fn a_pausing_producer_reaches_a_receive_only_server_whole() {
    let (mut server, port) = chatd_with(&["-1", "-q"], Stdio::null());
    let mut client = chat(port, &["-q"]);
    let data = random_bytes(5 * MIB, 71);
    produce_with_pauses(&mut client, &data, 5, Duration::from_millis(300));
    let status = client.wait_within(Duration::from_secs(30));
    assert_eq!(status.code(), Some(0), "{}", client.dump());
    assert_eq!(server.wait(), 0, "{}", server.dump());
    let got = server.stdout();
    assert_eq!(got.len(), data.len(), "bytes received");
    assert!(got == data, "bytes differ");
}

// `chatd < /dev/null > log` and `chat` on a terminal: two lines typed a
// second apart both reach the log; chat is still running between them.
#[test]
fn a_person_typing_into_a_receive_only_server_is_not_cut_off() {
    let (server, port) = chatd_with(&[], Stdio::null());
    let port_text = port.to_string();
    let mut client = spawn_on_terminal(CHAT, &["127.0.0.1", &port_text]);
    client.expect_stderr("connected to");
    client.send(b"first line\n");
    server.expect_stdout("first line\n");
    // The scenario: the person pauses before the next line.
    std::thread::sleep(Duration::from_secs(1));
    assert!(client.try_status().is_none(), "{}", client.dump());
    client.send(b"second line\n");
    server.expect_stdout("first line\nsecond line\n");
    client.close_stdin();
    assert_eq!(client.wait(), 0, "{}", client.dump());
    server.expect_stdout_exactly("first line\nsecond line\n");
}

// `chatd -1 < reply.txt` and a pausing producer piped into `chat`: the
// server receives everything, chat prints the reply, both exit 0.
#[test]
fn a_server_that_replied_and_half_closed_still_receives_everything() {
    let dir = tempfile::tempdir().unwrap();
    let reply = b"the reply\nin two lines\n";
    let (mut server, port) = chatd_with(&["-1", "-q"], stdin_file(&dir, "reply", reply));
    let mut client = chat(port, &["-q"]);
    let data = random_bytes(3 * MIB, 72);
    produce_with_pauses(&mut client, &data, 3, Duration::from_millis(300));
    let status = client.wait_within(Duration::from_secs(30));
    assert_eq!(status.code(), Some(0), "{}", client.dump());
    assert_eq!(server.wait(), 0, "{}", server.dump());
    assert_eq!(client.stdout(), reply);
    assert!(
        server.stdout() == data,
        "{} bytes received",
        server.stdout().len()
    );
}

// `chatd` on a terminal, the client leaves: the session ends at once and
// the next client is served.
#[test]
fn chatd_on_a_terminal_ends_the_session_when_the_client_leaves() {
    let mut server = spawn_on_terminal(CHATD, &["-b", "127.0.0.1", "-p", "0"]);
    server.expect_stderr("listening");
    let port = wait_for_port(&server, "chatd");
    let mut first = chat(port, &[]);
    first.send(b"hello\n");
    server.expect_stdout("hello\n");
    first.close_stdin();
    server.expect_stderr("closed the connection");
    let status = first.wait_within(TIMEOUT);
    assert_eq!(status.code(), Some(0), "{}", first.dump());
    let second = chat(port, &[]);
    server.send(b"welcome\n");
    second.expect_stdout("welcome\n");
    assert_eq!(first.stdout_text(), "", "typed after the first client left");
}

// `producer | chatd` serving clients one after another, a client leaves in
// the middle of the stream: what chatd read and could not send goes to the
// next client; nothing is lost.
#[test]
fn what_chatd_could_not_send_goes_to_the_next_client() {
    leftover_goes_to_the_next_client(&[]);
}

// The same in --raw, where chatd's stdin pipe goes to the socket with
// splice(2): what the socket of the first client did not accept is still in
// the pipe for the next.
#[test]
fn what_chatd_could_not_send_in_raw_goes_to_the_next_client() {
    leftover_goes_to_the_next_client(&["--raw"]);
}

/// `producer | chatd EXTRA` and two `chat EXTRA` clients one after
/// another, the first leaving in the middle of the stream.
fn leftover_goes_to_the_next_client(extra: &[&str]) {
    let with = |base: &[&'static str]| -> Vec<&str> { [base, extra].concat() };
    let (mut server, port) = chatd(&with(&["-q"]));
    let lines: Vec<String> = (0..300).map(|i| format!("line {i:03}\n")).collect();
    let mut first = chat(port, &with(&["-q"]));
    // It said something, so its end of input is a half-close: "I leave".
    first.send(b"hi\n");
    server.expect_stdout("hi\n");
    for (i, line) in lines[..200].iter().enumerate() {
        server.send(line.as_bytes());
        if i == 100 {
            first.close_stdin();
        }
        // The scenario: a producer that keeps writing while the first
        // client leaves, not a burst that is over before it does.
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(first.wait(), 0, "{}", first.dump());
    let mut second = chat(port, &with(&["-q"]));
    for line in &lines[200..] {
        server.send(line.as_bytes());
    }
    server.close_stdin();
    let all: String = lines.concat();
    let whole = wait_until(TIMEOUT, || {
        first.stdout_text() + &second.stdout_text() == all
    });
    assert!(
        whole,
        "first:\n{}\nsecond:\n{}",
        first.stdout_text(),
        second.stdout_text()
    );
    assert!(
        !first.stdout_text().is_empty(),
        "the first client got lines"
    );
    assert!(
        !second.stdout_text().is_empty(),
        "the second client got lines"
    );
    second.close_stdin();
    assert_eq!(second.wait(), 0, "{}", second.dump());
}

// `chat host | head -1`, the peer sends lines then stays silent with the
// connection open: the pipeline ends when head exits, without waiting for
// the peer, status 0, no message.
#[test]
fn head_exiting_ends_chat_even_when_the_peer_is_silent() {
    head_exiting_ends_chat("");
}

// The same in --raw, where the socket goes to the pipe with splice(2).
#[test]
fn head_exiting_ends_chat_in_raw_even_when_the_peer_is_silent() {
    head_exiting_ends_chat("--raw");
}

/// `chat -q EXTRA host | head -1` against a peer that sends two lines and
/// stays silent.
///
/// The peer stays silent six times longer than the test waits: a chat that
/// noticed only the peer's end would outlive the wait. The bound is not the
/// promise's latency (a second was exceeded on a loaded debug build with
/// nothing wrong): it tells "ends when head exits" from "ends when the peer
/// does".
fn head_exiting_ends_chat(extra: &str) {
    let (_server, port) = socat_server("SYSTEM:echo one; echo two; sleep 60,nofork");
    let pipeline =
        format!("{CHAT} -q {extra} 127.0.0.1 {port} | head -n 1; exit ${{PIPESTATUS[0]}}");
    let mut client = spawn("bash", &["-c", &pipeline]);
    client.expect_stdout("one\n");
    let status = client.wait_within(TIMEOUT);
    assert_eq!(status.code(), Some(0), "{extra}: {}", client.dump());
    client.expect_stdout_exactly("one\n");
    assert_eq!(client.stderr_text(), "", "a closed stdout is not an error");
}

// The peer reads 100 bytes then resets, `chat < 20MiB-file`: chat exits 1
// with one line on stderr, saying what was not delivered.
#[test]
fn a_reset_while_input_remains_is_one_line_and_status_1() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let peer = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut first = [0u8; 100];
        conn.read_exact(&mut first).unwrap();
        reset_on_close(&conn);
    });
    let dir = tempfile::tempdir().unwrap();
    let input = stdin_file(&dir, "big", &random_bytes(20 * MIB, 73));
    let mut client = spawn_with(CHAT, &["-q", "127.0.0.1", &port.to_string()], input);
    assert_eq!(client.wait(), 1, "{}", client.dump());
    peer.join().unwrap();
    let stderr = client.stderr_text();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    let prefix = format!("chat: connection reset by 127.0.0.1:{port}: at least ");
    assert!(stderr.starts_with(&prefix), "{stderr}");
    assert!(
        stderr.ends_with(" bytes of input not delivered\n"),
        "{stderr}"
    );
    let lost: u64 = stderr[prefix.len()..]
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        lost >= (16 * MIB) as u64,
        "the file's unread part counts: {lost}"
    );
}

// `chatd -d -1` with lines waiting on its stdin, a client sends a line and
// half-closes: the line is printed, the client receives nothing, chatd
// exits 0.
#[test]
fn recv_only_chatd_never_reads_its_stdin() {
    let (mut server, port) = chatd(&["-d", "-1"]);
    server.send(b"never sent\n");
    let mut client = socat(&["-", &format!("TCP:127.0.0.1:{port}")]);
    client.send(b"from the client\n");
    client.close_stdin();
    server.expect_stdout("from the client\n");
    assert_eq!(server.wait(), 0, "{}", server.dump());
    assert_eq!(client.wait(), 0, "{}", client.dump());
    assert_eq!(client.stdout_text(), "", "chatd -d sent something");
}

// `chat -d`: the same on the client side; a peer that closes ends it.
#[test]
fn recv_only_chat_never_reads_its_stdin() {
    let (mut server, port) = socat_server("-");
    let mut client = chat(port, &["-d"]);
    client.send(b"never sent\n");
    server.send(b"to the listener\n");
    client.expect_stdout("to the listener\n");
    server.close_stdin();
    assert_eq!(client.wait(), 0, "{}", client.dump());
    assert_eq!(server.wait(), 0, "{}", server.dump());
    assert_eq!(server.stdout_text(), "", "chat -d sent something");
}

#[test]
fn recv_only_excludes_lockstep() {
    for (program, args) in [(CHATD, ["-d", "-a"]), (CHAT, ["-d", "-a"])] {
        let mut p = spawn(program, &args);
        assert_eq!(p.wait(), 2, "{}", p.dump());
        assert!(
            p.stderr_text().contains("cannot be used with"),
            "{}",
            p.dump()
        );
    }
}

// A stdin that ended in an earlier session has nothing to send: the next
// session is receive-only and does not half-close, so a client on a
// terminal can still talk.
#[test]
fn stdin_that_ended_earlier_makes_the_next_session_receive_only() {
    let dir = tempfile::tempdir().unwrap();
    let (server, port) = chatd_with(&[], stdin_file(&dir, "motd", b"motd\n"));
    let mut first = chat(port, &[]);
    first.expect_stdout("motd\n");
    first.close_stdin();
    assert_eq!(first.wait(), 0, "{}", first.dump());
    let port_text = port.to_string();
    let mut second = spawn_on_terminal(CHAT, &["127.0.0.1", &port_text]);
    second.expect_stderr("connected to");
    // A window for a wrong end to show, not a wait for an event: under
    // load it may show less, never fail a chat that stays.
    std::thread::sleep(Duration::from_millis(300));
    assert!(second.try_status().is_none(), "{}", second.dump());
    second.send(b"still here\n");
    server.expect_stdout("still here\n");
    assert_eq!(second.stdout_text(), "", "motd is sent once");
}

// Lockstep: a receive-only server (`chatd -a -1 < /dev/null`) and a pausing
// producer piped into `chat -a`. The server's end of input half-closes (the
// turns are over); chat then sends the rest of its input without turns.
#[test]
fn lockstep_into_a_receive_only_server_delivers_every_line() {
    let (mut server, port) = chatd_with(&["-a", "-1", "-q"], Stdio::null());
    let mut client = chat(port, &["-a", "-q"]);
    let text: String = (0..20_000).map(|i| format!("line {i}\n")).collect();
    produce_with_pauses(&mut client, text.as_bytes(), 4, Duration::from_millis(300));
    let status = client.wait_within(Duration::from_secs(30));
    assert_eq!(status.code(), Some(0), "{}", client.dump());
    assert_eq!(server.wait(), 0, "{}", server.dump());
    assert!(
        server.stdout_text() == text,
        "{} bytes",
        server.stdout().len()
    );
}

// Lockstep on a terminal: the peer's end ends the session at once, without
// a keystroke. Nobody types here: a chat that waited for one would never
// end, so the bound is TIMEOUT (a second was exceeded on a loaded debug
// build with nothing wrong).
#[test]
fn lockstep_on_a_terminal_ends_when_the_peer_leaves() {
    let (_server, port) = socat_server("SYSTEM:read l; echo got $l,nofork");
    let port_text = port.to_string();
    let mut client = spawn_on_terminal(CHAT, &["-a", "127.0.0.1", &port_text]);
    client.expect_stderr("connected to");
    client.send(b"hello\n");
    client.expect_stdout("got hello\n");
    let status = client.wait_within(TIMEOUT);
    assert_eq!(status.code(), Some(0), "{}", client.dump());
}

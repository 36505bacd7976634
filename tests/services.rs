//! `chatd --echo` and `chatd --sum`, observed from outside: the
//! real `chatd` on 127.0.0.1, clients as raw `TcpStream`s in threads of the
//! test (and, when a JDK is installed, the Java client of
//! `tests/java/SumClient.java`). Every socket has read and write timeouts,
//! every wait is bounded; the test process never forks.

mod util;

use std::collections::BTreeSet;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::process::{Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::Duration;

use util::*;

/// Clients served at once in the concurrency tests (a classroom).
const CLIENTS: usize = 50;

/// A client connected to 127.0.0.1:`port`, every read and write bounded.
fn connect(port: u16) -> TcpStream {
    let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(TIMEOUT)).unwrap();
    stream
}

/// Reads exactly `len` bytes.
fn read_n(stream: &mut TcpStream, len: usize) -> Vec<u8> {
    let mut buf = vec![0u8; len];
    stream.read_exact(&mut buf).expect("read");
    buf
}

/// Reads until the server closes; a reset counts as a close.
fn read_to_eof(stream: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return out,
            Err(e) => panic!("read: {e} after {} bytes", out.len()),
        }
    }
}

/// What Java's `writeUTF(text)` sends, for ASCII `text`.
fn greeting(text: &str) -> Vec<u8> {
    let mut bytes = u16::try_from(text.len()).unwrap().to_be_bytes().to_vec();
    bytes.extend_from_slice(text.as_bytes());
    bytes
}

/// What Java's `writeInt(a); writeInt(b)` sends.
fn pair(a: i32, b: i32) -> Vec<u8> {
    [a.to_be_bytes(), b.to_be_bytes()].concat()
}

/// Reads one answer (Java's `readInt`).
fn read_answer(stream: &mut TcpStream) -> i32 {
    i32::from_be_bytes(read_n(stream, 4).try_into().unwrap())
}

/// Waits until the server has no child left, zombies included.
fn expect_no_children(server: &Proc) {
    let clean = wait_until(TIMEOUT, || server.children().is_empty());
    assert!(
        clean,
        "children left: {:?}\n{}",
        server.children(),
        server.dump()
    );
}

/// Where `n` threads meet: `std::sync::Barrier`, but bounded, as every wait
/// here is: if a thread never arrives (it panicked), the others fail after
/// [`TIMEOUT`] instead of waiting for ever.
struct Gate {
    n: usize,
    arrived: Mutex<usize>,
    all_here: Condvar,
}

impl Gate {
    fn new(n: usize) -> Gate {
        Gate {
            n,
            arrived: Mutex::new(0),
            all_here: Condvar::new(),
        }
    }

    /// Arrives, and waits for the `n` to have arrived (once: a gate is
    /// passed once). Panics after [`TIMEOUT`], saying how many came.
    fn wait(&self) {
        let mut arrived = self.arrived.lock().unwrap_or_else(|e| e.into_inner());
        *arrived += 1;
        self.all_here.notify_all();
        let (arrived, waited) = self
            .all_here
            .wait_timeout_while(arrived, TIMEOUT, |arrived| *arrived < self.n)
            .unwrap_or_else(|e| e.into_inner());
        assert!(
            !waited.timed_out(),
            "only {} of {} threads reached the gate",
            *arrived,
            self.n
        );
    }
}

fn expect_running(server: &mut Proc) {
    assert_eq!(server.try_status(), None, "server ended\n{}", server.dump());
}

#[test]
fn echo_serves_fifty_clients_at_once_and_leaves_no_zombie() {
    let (mut server, port) = chatd(&["--echo"]);
    // Every client has its first echo, then all wait while the test counts
    // the server's children: one per client, all alive together.
    let all_served = Arc::new(Gate::new(CLIENTS + 1));
    let go_on = Arc::new(Gate::new(CLIENTS + 1));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let (all_served, go_on) = (Arc::clone(&all_served), Arc::clone(&go_on));
            thread::spawn(move || {
                let mut stream = connect(port);
                let first = format!("client {i} says hello\n");
                stream.write_all(first.as_bytes()).unwrap();
                assert_eq!(read_n(&mut stream, first.len()), first.as_bytes());
                all_served.wait();
                go_on.wait();
                let mut sent = Vec::new();
                for j in 0..20 {
                    let line = format!("client {i} line {j} {}\n", "x".repeat(i * j));
                    stream.write_all(line.as_bytes()).unwrap();
                    sent.extend_from_slice(line.as_bytes());
                }
                stream.write_all(b"bye\n").unwrap();
                sent.extend_from_slice(b"bye\n");
                assert_eq!(read_to_eof(&mut stream), sent, "client {i}");
            })
        })
        .collect();
    all_served.wait();
    assert_eq!(server.children().len(), CLIENTS, "{}", server.dump());
    go_on.wait();
    for client in clients {
        client.join().expect("client thread");
    }
    expect_no_children(&server);
    expect_running(&mut server);
    // And it still serves.
    let mut stream = connect(port);
    stream.write_all(b"still here\nfin\n").unwrap();
    assert_eq!(read_to_eof(&mut stream), b"still here\nfin\n");
}

#[test]
fn sum_serves_fifty_clients_at_once_and_leaves_no_zombie() {
    let (mut server, port) = chatd(&["--sum"]);
    let all_served = Arc::new(Gate::new(CLIENTS + 1));
    let go_on = Arc::new(Gate::new(CLIENTS + 1));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let (all_served, go_on) = (Arc::clone(&all_served), Arc::clone(&go_on));
            thread::spawn(move || {
                let mut stream = connect(port);
                let me = stream.local_addr().unwrap();
                let mut expected = Vec::new();
                stream.write_all(&greeting("127.0.0.1")).unwrap();
                let i = i as i32;
                let mut ask = |stream: &mut TcpStream, a: i32, b: i32| {
                    stream.write_all(&pair(a, b)).unwrap();
                    assert_eq!(read_answer(stream), a.wrapping_add(b), "{a} + {b}");
                    expected.push(format!("[{me}] {a} + {b} = {}", a.wrapping_add(b)));
                };
                ask(&mut stream, i, 1000 * i);
                all_served.wait();
                go_on.wait();
                for j in 0..20 {
                    ask(&mut stream, i * 7919 - j, j * 104_729 - i);
                }
                // Ten pairs in one write: ten answers.
                let batch: Vec<u8> = (0..10).flat_map(|j| pair(i, j)).collect();
                stream.write_all(&batch).unwrap();
                for j in 0..10 {
                    assert_eq!(read_answer(&mut stream), i + j);
                    expected.push(format!("[{me}] {i} + {j} = {}", i + j));
                }
                stream.shutdown(Shutdown::Write).unwrap();
                assert_eq!(read_to_eof(&mut stream), b"");
                expected
            })
        })
        .collect();
    all_served.wait();
    assert_eq!(server.children().len(), CLIENTS, "{}", server.dump());
    go_on.wait();
    let mut expected = Vec::new();
    for client in clients {
        expected.extend(client.join().expect("client thread"));
    }
    expect_no_children(&server);
    expect_running(&mut server);
    // The log holds exactly one whole line per request, none interleaved.
    let logged_all = wait_until(TIMEOUT, || {
        server.stdout_text().lines().count() >= expected.len()
    });
    assert!(logged_all, "{}", server.dump());
    let log = server.stdout_text();
    let mut logged: Vec<&str> = log.lines().collect();
    let mut expected: Vec<&str> = expected.iter().map(String::as_str).collect();
    logged.sort_unstable();
    expected.sort_unstable();
    assert_eq!(logged, expected);
    assert_eq!(expected.len(), CLIENTS * 31);
    assert!(log.ends_with('\n'));
    server.expect_stderr("says its address is \"127.0.0.1\"");
    server.expect_stderr("closed the connection after 31 sums");
}

#[test]
fn echo_bye_and_fin_close_only_their_connection() {
    let (mut server, port) = chatd(&["--echo"]);
    let mut staying = connect(port);
    staying.write_all(b"first\n").unwrap();
    assert_eq!(read_n(&mut staying, 6), b"first\n");

    let mut leaving = connect(port);
    leaving.write_all(b"hello\nfin\nnot echoed\n").unwrap();
    assert_eq!(read_to_eof(&mut leaving), b"hello\nfin\n");
    drop(leaving);
    server.expect_stderr("said fin: connection closed");

    let mut leaving = connect(port);
    leaving.write_all(b"bye\r\n").unwrap();
    assert_eq!(read_to_eof(&mut leaving), b"bye\r\n");
    drop(leaving);
    server.expect_stderr("said bye: connection closed");

    // Near misses and arret are ordinary lines here.
    let ordinary = b"fine\n fin\nFIN\nbye \narret\n";
    staying.write_all(ordinary).unwrap();
    assert_eq!(read_n(&mut staying, ordinary.len()), ordinary);
    expect_running(&mut server);
    staying.write_all(b"fin\n").unwrap();
    assert_eq!(read_to_eof(&mut staying), b"fin\n");
    expect_no_children(&server);
}

#[test]
fn echo_returns_a_long_line_and_lines_split_across_writes() {
    let (server, port) = chatd(&["--echo"]);
    // 10 MiB in one line: written by one thread while this one reads.
    let mut line = random_bytes(10 << 20, 8)
        .iter()
        .map(|b| b'a' + b % 26)
        .collect::<Vec<u8>>();
    line.push(b'\n');
    let mut stream = connect(port);
    let mut writer = stream.try_clone().unwrap();
    let sent = line.clone();
    let feeder = thread::spawn(move || {
        writer.write_all(&sent).unwrap();
        // Then the word, split in three writes.
        for piece in [&b"f"[..], b"i", b"n\n"] {
            // The scenario: pieces that arrive apart.
            thread::sleep(Duration::from_millis(30));
            writer.write_all(piece).unwrap();
        }
    });
    let mut expected = line;
    expected.extend_from_slice(b"fin\n");
    let echoed = read_to_eof(&mut stream);
    feeder.join().unwrap();
    assert!(
        echoed == expected,
        "echoed {} of {} bytes",
        echoed.len(),
        expected.len()
    );

    // A line split byte by byte comes back byte by byte.
    let mut stream = connect(port);
    for &b in b"split\nby" {
        stream.write_all(&[b]).unwrap();
        assert_eq!(read_n(&mut stream, 1), [b]);
    }
    stream.write_all(b"e\r").unwrap();
    // The scenario: the CR and the LF arrive apart.
    thread::sleep(Duration::from_millis(30));
    stream.write_all(b"\n").unwrap();
    assert_eq!(read_to_eof(&mut stream), b"e\r\n");
    expect_no_children(&server);
}

#[test]
fn echo_binary_without_newline_then_half_close() {
    let (server, port) = chatd(&["--echo"]);
    // NUL bytes and every other value, no newline at all, 1 MiB.
    let data: Vec<u8> = random_bytes(1 << 20, 3)
        .into_iter()
        .map(|b| if b == b'\n' { 0 } else { b })
        .collect();
    let mut stream = connect(port);
    let mut writer = stream.try_clone().unwrap();
    let sent = data.clone();
    let feeder = thread::spawn(move || {
        writer.write_all(&sent).unwrap();
        writer.shutdown(Shutdown::Write).unwrap();
    });
    let echoed = read_to_eof(&mut stream);
    feeder.join().unwrap();
    assert!(
        echoed == data,
        "echoed {} of {} bytes",
        echoed.len(),
        data.len()
    );
    server.expect_stderr("closed the connection");
    expect_no_children(&server);
}

#[test]
fn max_clients_refuses_one_more_with_one_line() {
    let (mut server, port) = chatd(&["--echo", "--max-clients", "2"]);
    let mut first = connect(port);
    let mut second = connect(port);
    for stream in [&mut first, &mut second] {
        stream.write_all(b"in\n").unwrap();
        assert_eq!(read_n(stream, 3), b"in\n");
    }
    let mut third = connect(port);
    third.write_all(b"let me in\n").unwrap();
    assert_eq!(
        String::from_utf8(read_to_eof(&mut third)).unwrap(),
        "chatd: too many clients (2), try again later\n"
    );
    server.expect_stderr("refused 127.0.0.1:");
    // Once one leaves, a newcomer is served.
    first.write_all(b"bye\n").unwrap();
    assert_eq!(read_to_eof(&mut first), b"bye\n");
    drop(first);
    assert!(wait_until(TIMEOUT, || server.children().len() == 1));
    let mut fourth = connect(port);
    fourth.write_all(b"now\n").unwrap();
    assert_eq!(read_n(&mut fourth, 4), b"now\n");
    second.write_all(b"still\n").unwrap();
    assert_eq!(read_n(&mut second, 6), b"still\n");
    expect_running(&mut server);
}

#[test]
fn sum_refusal_reaches_a_client_that_already_sent_its_request() {
    let (server, port) = chatd(&["--sum", "--max-clients", "1"]);
    let mut served = connect(port);
    served.write_all(&greeting("127.0.0.1")).unwrap();
    served.write_all(&pair(1, 2)).unwrap();
    assert_eq!(read_answer(&mut served), 3);
    // A course client writes its greeting and pair before reading: the
    // refusal line still arrives whole (no reset).
    let mut refused = connect(port);
    refused.write_all(&greeting("127.0.0.1")).unwrap();
    refused.write_all(&pair(3, 4)).unwrap();
    assert_eq!(
        String::from_utf8(read_to_eof(&mut refused)).unwrap(),
        "chatd: too many clients (1), try again later\n"
    );
    drop(refused);
    served.write_all(&pair(5, 6)).unwrap();
    assert_eq!(read_answer(&mut served), 11);
    drop(served);
    expect_no_children(&server);
}

#[test]
fn sum_wraps_like_java_int_and_handles_negatives() {
    let (server, port) = chatd(&["--sum"]);
    let mut stream = connect(port);
    let me = stream.local_addr().unwrap();
    stream.write_all(&greeting("10.0.0.7")).unwrap();
    let cases = [
        (i32::MAX, 1, i32::MIN),
        (i32::MIN, -1, i32::MAX),
        (i32::MIN, i32::MIN, 0),
        (i32::MAX, i32::MAX, -2),
        (-5, 3, -2),
        (-7, -8, -15),
        (84, 98, 182),
        (0, 0, 0),
    ];
    for (a, b, sum) in cases {
        stream.write_all(&pair(a, b)).unwrap();
        assert_eq!(read_answer(&mut stream), sum, "{a} + {b}");
    }
    drop(stream);
    let expected: String = cases
        .iter()
        .map(|(a, b, sum)| format!("[{me}] {a} + {b} = {sum}\n"))
        .collect();
    server.expect_stdout(&expected);
    server.expect_stdout_exactly(&expected);
    server.expect_stderr(&format!("{me} says its address is \"10.0.0.7\""));
    server.expect_stderr(&format!("{me} closed the connection after 8 sums"));
    expect_no_children(&server);
}

#[test]
fn sum_bad_greetings_fail_only_their_connection() {
    let (mut server, port) = chatd(&["--sum"]);
    let mut good = connect(port);
    good.write_all(&greeting("127.0.0.1")).unwrap();
    good.write_all(&pair(40, 2)).unwrap();
    assert_eq!(read_answer(&mut good), 42);

    // Truncated: the length says 9 bytes, 3 come, then the client closes.
    let mut truncated = connect(port);
    let me = truncated.local_addr().unwrap();
    truncated.write_all(b"\x00\x09127").unwrap();
    truncated.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_to_eof(&mut truncated), b"");
    server.expect_stderr(&format!(
        "chatd: {me}: connection closed in the greeting (5 of 11 bytes)"
    ));

    // Oversized: refused as soon as the length is read.
    let mut oversized = connect(port);
    let me = oversized.local_addr().unwrap();
    oversized.write_all(b"\xff\xff").unwrap();
    assert_eq!(read_to_eof(&mut oversized), b"");
    server.expect_stderr(&format!(
        "chatd: {me}: greeting of 65535 bytes refused (at most 255)"
    ));

    // Not modified UTF-8 (a 4-byte UTF-8 sequence).
    let mut invalid = connect(port);
    let me = invalid.local_addr().unwrap();
    invalid.write_all(b"\x00\x04\xF0\x9F\x98\x80").unwrap();
    invalid.write_all(&pair(1, 1)).unwrap();
    assert_eq!(read_to_eof(&mut invalid), b"");
    server.expect_stderr(&format!("chatd: {me}: greeting is not modified UTF-8"));

    // The first client was never disturbed.
    good.write_all(&pair(-1, -1)).unwrap();
    assert_eq!(read_answer(&mut good), -2);
    expect_running(&mut server);
    // Only the good client's requests are logged.
    server.expect_stdout(" + -1 = -2\n");
    let log = server.stdout_text();
    let good = good.local_addr().unwrap();
    assert_eq!(
        log,
        format!("[{good}] 40 + 2 = 42\n[{good}] -1 + -1 = -2\n"),
        "{}",
        server.dump()
    );
}

#[test]
fn sum_half_a_pair_then_close_is_an_error_for_that_connection() {
    let (server, port) = chatd(&["--sum"]);
    let mut stream = connect(port);
    let me = stream.local_addr().unwrap();
    stream.write_all(&greeting("127.0.0.1")).unwrap();
    stream.write_all(&pair(20, 22)).unwrap();
    assert_eq!(read_answer(&mut stream), 42);
    stream.write_all(&pair(7, 7)[..5]).unwrap();
    stream.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_to_eof(&mut stream), b"");
    server.expect_stderr(&format!(
        "chatd: {me}: connection closed in the middle of a pair (5 of 8 bytes)"
    ));
    server.expect_stdout("20 + 22 = 42\n");
    server.expect_stdout_exactly(&format!("[{me}] 20 + 22 = 42\n"));
    expect_no_children(&server);
}

#[test]
fn quiet_server_prints_errors_only() {
    let server = spawn(CHATD, &["-q", "--sum", "-b", "127.0.0.1", "-p", "0"]);
    let port = wait_for_port(&server, "chatd");
    let mut stream = connect(port);
    stream.write_all(&greeting("127.0.0.1")).unwrap();
    stream.write_all(&pair(1, 2)).unwrap();
    assert_eq!(read_answer(&mut stream), 3);
    drop(stream);
    let mut stream = connect(port);
    stream.write_all(b"\x00").unwrap();
    drop(stream);
    server.expect_stderr("connection closed in the greeting (1 of 2 bytes)");
    expect_no_children(&server);
    let stderr = server.stderr_text();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    server.expect_stdout("1 + 2 = 3\n");
}

#[test]
fn raw_echo_has_no_words() {
    let (server, port) = chatd(&["--echo", "--raw"]);
    let mut stream = connect(port);
    stream.write_all(b"fin\nbye\nstill here\n").unwrap();
    stream.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_to_eof(&mut stream), b"fin\nbye\nstill here\n");
    server.expect_stderr("closed the connection");
}

#[test]
fn once_serves_one_connection_then_exits_with_its_status() {
    let (mut server, port) = chatd(&["--sum", "-1"]);
    let mut first = connect(port);
    first.write_all(&greeting("127.0.0.1")).unwrap();
    first.write_all(&pair(2, 3)).unwrap();
    assert_eq!(read_answer(&mut first), 5);
    // A second client is never served: it waits in the queue until the
    // server exits.
    let mut second = connect(port);
    second.write_all(&greeting("127.0.0.1")).unwrap();
    drop(first);
    assert_eq!(server.wait(), 0, "{}", server.dump());
    assert_eq!(read_to_eof(&mut second), b"");
    assert_eq!(server.stderr_text().matches("connection from").count(), 1);

    // The one connection failed: status 1, and the reason on stderr.
    let (mut server, port) = chatd(&["--sum", "-1"]);
    let mut stream = connect(port);
    stream.write_all(b"\x00").unwrap();
    drop(stream);
    assert_eq!(server.wait(), 1, "{}", server.dump());
    server.expect_stderr("connection closed in the greeting (1 of 2 bytes)");
}

#[test]
fn terminating_signals_stop_the_server_and_its_children() {
    for (service, sig) in [("--echo", libc::SIGTERM), ("--sum", libc::SIGINT)] {
        let (mut server, port) = chatd(&[service]);
        let mut streams: Vec<TcpStream> = (0..3).map(|_| connect(port)).collect();
        for stream in &mut streams {
            if service == "--echo" {
                stream.write_all(b"up\n").unwrap();
                assert_eq!(read_n(stream, 3), b"up\n");
            } else {
                stream.write_all(&greeting("127.0.0.1")).unwrap();
                stream.write_all(&pair(1, 1)).unwrap();
                assert_eq!(read_answer(stream), 2);
            }
        }
        let children = server.children();
        assert_eq!(children.len(), 3, "{}", server.dump());
        server.signal(sig);
        assert_eq!(server.wait(), 128 + sig, "{}", server.dump());
        for pid in children {
            assert!(
                !std::path::Path::new(&format!("/proc/{pid}")).exists(),
                "child {pid} outlived the server"
            );
        }
        for stream in &mut streams {
            assert_eq!(read_to_eof(stream), b"");
        }
    }
}

/// The Java course's own client code (DataOutputStream/DataInputStream),
/// compiled and run against the real server, ten connections at once as
/// `MultithreadedClients` does. Without a JDK it fails, saying what to
/// install (`scripts/test` installs it): a skipped test would pass unseen.
#[test]
fn java_client_of_the_course_gets_its_sums() {
    let jdk = Command::new("javac")
        .arg("-version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        jdk,
        "javac not found: install default-jdk-headless (scripts/test does)"
    );
    let dir = tempfile::tempdir().unwrap();
    let source = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/java/SumClient.java");
    let classes = dir.path().to_str().unwrap();
    let mut javac = spawn("javac", &["-d", classes, source]);
    let status = javac.wait_within(Duration::from_secs(120));
    assert!(status.success(), "javac failed\n{}", javac.dump());

    let (server, port) = chatd(&["--sum"]);
    let port_text = port.to_string();
    let numbers = [
        "84",
        "98",
        "2147483647",
        "1",
        "-5",
        "3",
        "-2147483648",
        "-1",
    ];
    let mut args = vec!["-cp", classes, "SumClient", "127.0.0.1", &port_text, "10"];
    args.extend_from_slice(&numbers);
    let mut java = spawn("java", &args);
    let status = java.wait_within(Duration::from_secs(120));
    assert!(status.success(), "java failed\n{}", java.dump());
    let printed: BTreeSet<String> = java.stdout_text().lines().map(str::to_owned).collect();
    let expected: BTreeSet<String> = (0..10)
        .flat_map(|t| {
            [
                format!("{t}: 84 + 98 = 182"),
                format!("{t}: 2147483647 + 1 = -2147483648"),
                format!("{t}: -5 + 3 = -2"),
                format!("{t}: -2147483648 + -1 = 2147483647"),
            ]
        })
        .collect();
    assert_eq!(printed, expected, "{}", java.dump());
    let logged_all = wait_until(TIMEOUT, || server.stdout_text().lines().count() == 40);
    assert!(logged_all, "{}", server.dump());
    for line in server.stdout_text().lines() {
        assert!(line.starts_with("[127.0.0.1:"), "{line}");
    }
    server.expect_stderr("says its address is \"127.0.0.1\"");
    expect_no_children(&server);
}

#[test]
fn sum_says_on_its_stderr_what_a_text_client_got_wrong() {
    // As `printf 'hello\n' | chat 127.0.0.1 PORT` or nc would. The client
    // receives nothing: the wire format has no place for a reason.
    let (server, port) = chatd(&["--sum"]);
    let mut client = spawn_with(
        CHAT,
        &["-q", "127.0.0.1", &port.to_string()],
        Stdio::piped(),
    );
    client.send(b"hello\n");
    client.close_stdin();
    server.expect_stderr(
        ": greeting of 26725 bytes refused (at most 255), its length field being \
         the text \"he\"; not a Java DataOutputStream client? --sum expects \
         writeUTF: a 2-byte length, then the text\n",
    );
    assert_eq!(client.wait(), 0, "{}", client.dump());
    assert_eq!(client.stdout_text(), "", "the text client received bytes");
}

#[test]
fn sum_shows_control_characters_of_a_greeting_in_caret_notation() {
    let (server, port) = chatd(&["--sum"]);
    let mut stream = connect(port);
    let me = stream.local_addr().unwrap();
    stream
        .write_all(&greeting("\u{1b}[2J\ttab\r\nnext"))
        .unwrap();
    stream.write_all(&pair(1, 2)).unwrap();
    assert_eq!(read_answer(&mut stream), 3);
    drop(stream);
    server.expect_stderr(&format!(
        "{me} says its address is \"^[[2J^Itab^M^Jnext\"\n"
    ));
    assert!(
        !server.stderr_text().contains('\u{1b}'),
        "{}",
        server.dump()
    );
}

//! The kernel paths, on the real binaries: `--raw` moves bytes
//! with `splice(2)` and `sendfile(2)`, the default mode looks at them in
//! place (`pread(2)` a file on stdin, `MSG_PEEK` the socket) and then moves
//! them with `sendfile(2)` or `splice(2)`, and copies a pipe on stdin
//! (`read(2)` then `send(2)`: measured as fast as `tee(2)` + `splice(2)`
//! or faster, docs/PERFORMANCE.md). Whatever the path, the bytes that arrive
//! are exactly the bytes sent, a word still stops delivery just after its
//! line, what a session did not send stays for the next client, and the
//! copy path takes over silently where the kernel refuses a splice.
//!
//! These tests check bytes, never speed (that is `scripts/bench`), and
//! which system calls moved them: the fall-back to copying is silent, so
//! only a trace (`strace(1)`, [`Trace`]) shows that the kernel path was
//! taken.

mod util;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::process::Stdio;
use std::time::Duration;

use util::*;

const MIB: usize = 1024 * 1024;

/// A file in `dir` holding `bytes`, opened for reading.
fn file_with(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> Stdio {
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    Stdio::from(std::fs::File::open(path).unwrap())
}

/// Random bytes with a few lines that would be protocol words without
/// `--raw`, so that `--raw` shows it does not look at them.
fn raw_payload(len: usize, seed: u64) -> Vec<u8> {
    let mut data = random_bytes(len, seed);
    for at in [0, len / 3, len / 2] {
        data[at..at + 5].copy_from_slice(b"\nbye\n");
    }
    data
}

/// Text lines of 10 to 80 bytes, `len` bytes in all, none a word; the
/// last one ends with a newline too.
fn text(len: usize, seed: u64) -> Vec<u8> {
    let noise = random_bytes(len, seed);
    let mut out = Vec::with_capacity(len);
    let mut i = 0;
    while out.len() < len {
        let n = 10 + usize::from(noise[i % len]) % 71;
        for k in 0..n - 1 {
            out.push(b'a' + noise[(i + k) % len] % 26);
        }
        out.push(b'\n');
        i += n;
    }
    out.truncate(len);
    if let Some(last) = out.last_mut() {
        *last = b'\n';
    }
    out
}

/// The system calls that move bytes, as `strace -ff` records them for
/// every process of a traced program (its forked child too), one file per
/// process. Only these calls are traced (`--seccomp-bpf`: the others run
/// at full speed).
struct Trace {
    dir: tempfile::TempDir,
}

/// The calls [`Trace`] records: the kernel paths, and `write(2)` and
/// `sendto(2)` (what `send(2)` calls), the copy path's ways out.
const TRACED: &str = "trace=splice,tee,sendfile,write,sendto";

impl Trace {
    fn new() -> Trace {
        Trace {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// The arguments of `strace` running `program args`, its files named
    /// after `who`.
    fn argv(&self, who: &str, program: &str, args: &[&str]) -> Vec<String> {
        let prefix = self.dir.path().join(who);
        let mut argv: Vec<String> = ["-ff", "--seccomp-bpf", "-qq", "-e", TRACED]
            .into_iter()
            .chain(["-e", "signal=none", "-o"])
            .map(str::to_owned)
            .collect();
        argv.push(prefix.to_str().unwrap().to_owned());
        argv.push(program.to_owned());
        argv.extend(args.iter().map(|a| (*a).to_owned()));
        argv
    }

    /// `chatd -b 127.0.0.1 -p 0 EXTRA` under strace, once it listens;
    /// returns it and the port the kernel gave it.
    fn chatd(&self, extra: &[&str], stdin: Stdio, stdout: Stdio) -> (Proc, u16) {
        let mut args = vec!["-b", "127.0.0.1", "-p", "0"];
        args.extend_from_slice(extra);
        let argv = self.argv("chatd", CHATD, &args);
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        let server = spawn_io("strace", &argv, stdin, stdout);
        let port = wait_for_port(&server, "chatd under strace");
        (server, port)
    }

    /// `chat EXTRA 127.0.0.1 PORT` under strace.
    fn chat(&self, port: u16, extra: &[&str], stdin: Stdio) -> Proc {
        let port_text = port.to_string();
        let mut args = extra.to_vec();
        args.extend_from_slice(&["127.0.0.1", &port_text]);
        let argv = self.argv("chat", CHAT, &args);
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        spawn_with("strace", &argv, stdin)
    }

    /// Bytes that successful calls of `call` moved, over every process of
    /// `who` (`chatd` or `chat`), from lines such as
    /// `splice(3, NULL, 1, NULL, 1048576, SPLICE_F_NONBLOCK) = 65536` (a
    /// failed call ends `= -1 EAGAIN (...)` and counts nothing).
    fn bytes(&self, who: &str, call: &str) -> u64 {
        let mut total = 0;
        let opening = format!("{call}(");
        for entry in std::fs::read_dir(self.dir.path()).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_str().unwrap();
            if !name.starts_with(&format!("{who}.")) {
                continue;
            }
            for line in std::fs::read_to_string(&path).unwrap().lines() {
                if !line.starts_with(&opening) {
                    continue;
                }
                // strace pads short calls with spaces before ` = `.
                let result = line.rsplit_once(" = ").map(|(_, r)| r);
                if let Some(Ok(n)) = result.map(str::parse::<u64>) {
                    total += n;
                }
            }
        }
        total
    }

    /// Asserts that `call` moved at least `len` bytes in `who`'s processes.
    fn moved(&self, who: &str, call: &str, len: usize) {
        let moved = self.bytes(who, call);
        assert!(
            moved >= len as u64,
            "{who}: {call} moved {moved} bytes, not the {len} sent (the copy path was taken?)"
        );
    }
}

fn assert_same(got: &[u8], want: &[u8], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: bytes received");
    assert!(got == want, "{what}: bytes differ");
}

// --raw, stdin a pipe on both sides (splice pipe -> socket), stdout a pipe
// on both sides (splice socket -> pipe): exact bytes both ways, words and
// all.
#[test]
fn raw_pipes_in_and_out_carry_exact_bytes_both_ways() {
    let (to_client, to_server) = (raw_payload(6 * MIB, 11), raw_payload(6 * MIB, 12));
    let trace = Trace::new();
    let (mut server, port) = trace.chatd(&["-1", "-q", "--raw"], Stdio::piped(), Stdio::piped());
    let mut client = trace.chat(port, &["-q", "--raw"], Stdio::piped());
    let feeder = {
        let data = to_client.clone();
        let mut stdin = server.take_stdin();
        std::thread::spawn(move || {
            for part in data.chunks(MIB) {
                stdin.write_all(part).unwrap();
                // The scenario: producers that pause, both ways at once.
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    for part in to_server.chunks(MIB) {
        client.send(part);
        std::thread::sleep(Duration::from_millis(50));
    }
    client.close_stdin();
    feeder.join().unwrap();
    let status = client.wait_within(Duration::from_secs(30));
    assert_eq!(status.code(), Some(0), "{}", client.dump());
    assert_eq!(server.wait(), 0, "{}", server.dump());
    assert_same(&client.stdout(), &to_client, "client");
    assert_same(&server.stdout(), &to_server, "server");
    // Each side spliced what it sent (pipe to socket) and what it received
    // (socket to pipe).
    trace.moved("chatd", "splice", to_client.len() + to_server.len());
    trace.moved("chat", "splice", to_client.len() + to_server.len());
}

/// `chatd -1 EXTRA < file` with its stdout a regular file, and `chat EXTRA
/// < file`: both receive exactly what the other sent. Returns the trace of
/// both.
fn files_in_file_out(extra: &[&str], to_client: &[u8], to_server: &[u8]) -> Trace {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("server.out");
    let mut args = vec!["-1", "-q"];
    args.extend_from_slice(extra);
    let trace = Trace::new();
    let (mut server, port) = trace.chatd(
        &args,
        file_with(&dir, "to-client", to_client),
        Stdio::from(std::fs::File::create(&out).unwrap()),
    );
    let mut args = vec!["-q"];
    args.extend_from_slice(extra);
    let mut client = trace.chat(port, &args, file_with(&dir, "to-server", to_server));
    let status = client.wait_within(Duration::from_secs(30));
    assert_eq!(status.code(), Some(0), "{}", client.dump());
    assert_eq!(server.wait(), 0, "{}", server.dump());
    assert_same(&client.stdout(), to_client, "client (stdout a pipe)");
    assert_same(
        &std::fs::read(&out).unwrap(),
        to_server,
        "server (stdout a file)",
    );
    trace
}

// --raw, stdin a regular file (sendfile), stdout a file (splice through a
// relay pipe) on one side and a pipe on the other.
#[test]
fn raw_files_in_and_a_file_out_carry_exact_bytes() {
    let (to_client, to_server) = (raw_payload(5 * MIB, 21), raw_payload(5 * MIB + 7, 22));
    let trace = files_in_file_out(&["--raw"], &to_client, &to_server);
    trace.moved("chatd", "sendfile", to_client.len());
    trace.moved("chat", "sendfile", to_server.len());
    trace.moved("chat", "splice", to_client.len());
    // Socket to relay pipe, relay pipe to file: twice the bytes.
    trace.moved("chatd", "splice", 2 * to_server.len());
}

// The default mode, stdin a regular file (pread then sendfile) and stdout
// a file (copy path) or a pipe (MSG_PEEK then splice).
#[test]
fn default_mode_files_in_and_a_file_out_carry_exact_bytes() {
    let (to_client, to_server) = (text(5 * MIB, 23), text(5 * MIB + 3, 24));
    let trace = files_in_file_out(&[], &to_client, &to_server);
    trace.moved("chatd", "sendfile", to_client.len());
    trace.moved("chat", "sendfile", to_server.len());
    trace.moved("chat", "splice", to_client.len());
}

// The default mode with pipes everywhere: read + send out of stdin (no
// tee: the copy measured as fast or faster), MSG_PEEK + splice into stdout.
#[test]
fn default_mode_pipes_in_and_out_carry_exact_bytes() {
    let data = text(8 * MIB, 25);
    let trace = Trace::new();
    let (mut server, port) = trace.chatd(&["-1", "-q"], Stdio::null(), Stdio::piped());
    let mut client = trace.chat(port, &["-q"], Stdio::piped());
    for part in data.chunks(MIB) {
        client.send(part);
    }
    client.close_stdin();
    let status = client.wait_within(Duration::from_secs(30));
    assert_eq!(status.code(), Some(0), "{}", client.dump());
    assert_eq!(server.wait(), 0, "{}", server.dump());
    assert_same(&server.stdout(), &data, "server");
    // chat read its stdin and sent it (nothing teed or spliced out of
    // it); chatd peeked at the socket and spliced it into its stdout.
    trace.moved("chat", "sendto", data.len());
    assert_eq!(trace.bytes("chat", "tee"), 0, "chat teed its stdin");
    assert_eq!(trace.bytes("chat", "splice"), 0, "chat spliced its stdin");
    trace.moved("chatd", "splice", data.len());
}

// --raw with stdin a socket, not a terminal: the copy path, exact bytes.
#[test]
fn raw_stdin_a_socket_uses_the_copy_path() {
    let data = raw_payload(3 * MIB, 31);
    let (mut server, port) = chatd_with(&["-1", "-q", "--raw"], Stdio::null());
    let (mut ours, theirs) = UnixStream::pair().unwrap();
    let port_text = port.to_string();
    let mut client = spawn_with(
        CHAT,
        &["-q", "--raw", "127.0.0.1", &port_text],
        Stdio::from(std::os::fd::OwnedFd::from(theirs)),
    );
    ours.write_all(&data).unwrap();
    ours.shutdown(std::net::Shutdown::Write).unwrap();
    let status = client.wait_within(Duration::from_secs(30));
    assert_eq!(status.code(), Some(0), "{}", client.dump());
    assert_eq!(server.wait(), 0, "{}", server.dump());
    assert_same(&server.stdout(), &data, "server");
    let mut rest = Vec::new();
    ours.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "nothing was sent back");
}

// Splice refuses a file opened for appending (`chatd --raw >> log`): the
// copy path takes over, and the bytes are appended exactly.
#[test]
fn raw_into_a_file_opened_for_append_falls_back_to_copying() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    std::fs::write(&log, b"already here\n").unwrap();
    let append = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    let trace = Trace::new();
    let (mut server, port) =
        trace.chatd(&["-1", "-q", "--raw"], Stdio::null(), Stdio::from(append));
    let data = raw_payload(3 * MIB, 41);
    let mut client = trace.chat(port, &["-q", "--raw"], file_with(&dir, "data", &data));
    assert_eq!(client.wait(), 0, "{}", client.dump());
    assert_eq!(server.wait(), 0, "{}", server.dump());
    assert_eq!(server.stderr_text(), "", "the fallback is silent");
    let mut want = b"already here\n".to_vec();
    want.extend_from_slice(&data);
    assert_same(&std::fs::read(&log).unwrap(), &want, "log");
    // The bytes went out by write(2): the copy path took over.
    trace.moved("chatd", "write", data.len());
    trace.moved("chat", "sendfile", data.len());
}

// The default mode with a pipe on chatd's stdin (read, then send): a bye
// in the middle of a large stream stops the first session exactly after
// its line; the rest, read but not sent, goes whole to the next.
#[test]
fn stdin_pipe_stops_exactly_after_a_word_and_keeps_the_rest() {
    let before = text(700 * 1024, 51);
    let after = text(500 * 1024, 52);
    let (mut server, port) = chatd(&["-q"]);
    let mut stream = before.clone();
    stream.extend_from_slice(b"bye\n");
    stream.extend_from_slice(&after);
    // More than the pipe holds: a thread writes, then closes.
    let mut stdin = server.take_stdin();
    let feeder = std::thread::spawn(move || stdin.write_all(&stream).unwrap());
    let mut first = chat(port, &["-q"]);
    assert_eq!(first.wait(), 0, "{}", first.dump());
    let mut want = before.clone();
    want.extend_from_slice(b"bye\n");
    assert_same(&first.stdout(), &want, "first client");
    let mut second = chat(port, &["-q"]);
    let whole = wait_until(TIMEOUT, || second.stdout().len() >= after.len());
    assert!(whole, "{}", second.dump());
    assert_same(&second.stdout(), &after, "second client");
    second.close_stdin();
    assert_eq!(second.wait(), 0, "{}", second.dump());
    feeder.join().unwrap();
}

// The receiving side (MSG_PEEK, then splice into the stdout pipe) stops
// exactly after the peer's word line: nothing after it is printed.
#[test]
fn peek_path_prints_up_to_the_word_line_and_no_further() {
    let before = text(600 * 1024, 61);
    let mut stream = before.clone();
    stream.extend_from_slice(b"arret\r\nnot for you\n");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("stream");
    std::fs::write(&file, &stream).unwrap();
    let listen = "TCP-LISTEN:0,bind=127.0.0.1,reuseaddr";
    let server = socat(&["-u", &format!("OPEN:{}", file.display()), listen]);
    let port = wait_for_port(&server, "socat");
    let mut client = spawn_with(
        CHAT,
        &["-q", "-d", "127.0.0.1", &port.to_string()],
        Stdio::null(),
    );
    assert_eq!(client.wait(), 0, "{}", client.dump());
    let mut want = before;
    want.extend_from_slice(b"arret\r\n");
    assert_same(&client.stdout(), &want, "client");
}

//! `chatd --broker`, the discussion room, observed from outside:
//! the real server on 127.0.0.1 with dozens of clients at once, `chat`
//! processes, `socat` and raw sockets of the test itself (each read bounded
//! by a timeout; reader threads where clients must read while others
//! send).

mod util;

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::os::fd::OwnedFd;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use util::tmux::{Tmux, chatd_command};
use util::*;

// ---------------------------------------------------------------------------
// A raw client of the room

/// A client that is a socket of the test: it sends bytes and reads lines,
/// every wait bounded by [`TIMEOUT`].
struct Peer {
    stream: TcpStream,
    /// Received bytes; those before `start` are already taken.
    buf: Vec<u8>,
    start: usize,
    /// The name the room gave it on arrival (its address).
    name: String,
}

impl Peer {
    /// Connects and reads the greeting, which names the client.
    fn join(port: u16) -> Peer {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        Peer::from_stream(stream)
    }

    fn from_stream(stream: TcpStream) -> Peer {
        stream
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let mut peer = Peer {
            stream,
            buf: Vec::new(),
            start: 0,
            name: String::new(),
        };
        let greeting = peer.line();
        let name = greeting
            .strip_prefix("-!- you are ")
            .and_then(|rest| rest.split("; ").next())
            .unwrap_or_else(|| panic!("not a greeting: {greeting:?}"));
        peer.name = name.to_owned();
        peer
    }

    fn send(&mut self, bytes: impl AsRef<[u8]>) {
        self.stream.write_all(bytes.as_ref()).expect("send");
    }

    /// Reads more bytes (one read, up to 50 ms). Returns false at end of
    /// file or on a reset.
    fn fill(&mut self) -> bool {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        let mut chunk = [0u8; 65536];
        match self.stream.read(&mut chunk) {
            Ok(0) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => true,
            Err(e) if e.kind() == ErrorKind::Interrupted => true,
            Err(_) => false,
        }
    }

    /// The next line as bytes, without its newline.
    fn raw_line(&mut self) -> Vec<u8> {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let pending = &self.buf[self.start..];
            if let Some(i) = pending.iter().position(|&b| b == b'\n') {
                let line = pending[..i].to_vec();
                self.start += i + 1;
                return line;
            }
            assert!(
                Instant::now() < deadline,
                "{}: no complete line within {TIMEOUT:?}; have {}",
                self.name,
                self.shown()
            );
            assert!(
                self.fill(),
                "{}: connection closed; have {}",
                self.name,
                self.shown()
            );
        }
    }

    /// The start of what is received but not taken, for failure messages.
    fn shown(&self) -> String {
        let pending = &self.buf[self.start..];
        let cut = &pending[..pending.len().min(200)];
        format!(
            "{} bytes: {:?}",
            pending.len(),
            String::from_utf8_lossy(cut)
        )
    }

    /// The next line, as text.
    fn line(&mut self) -> String {
        String::from_utf8(self.raw_line()).expect("UTF-8 line")
    }

    /// Reads lines until one equals `wanted`; returns the lines before it.
    fn until(&mut self, wanted: &str) -> Vec<String> {
        let mut before = Vec::new();
        loop {
            let line = self.line();
            if line == wanted {
                return before;
            }
            before.push(line);
        }
    }

    /// Reads until the server closes the connection; returns the lines
    /// received meanwhile.
    fn until_closed(&mut self) -> Vec<String> {
        let deadline = Instant::now() + TIMEOUT;
        while self.fill() {
            assert!(Instant::now() < deadline, "{}: still open", self.name);
        }
        let text = String::from_utf8_lossy(&self.buf[self.start..]).into_owned();
        self.buf.clear();
        self.start = 0;
        text.lines().map(str::to_owned).collect()
    }

    /// Nothing arrives for 200 ms.
    fn expect_silence(&mut self) {
        let deadline = Instant::now() + Duration::from_millis(200);
        while Instant::now() < deadline {
            assert!(self.fill(), "{}: closed", self.name);
        }
        assert!(
            self.buf.len() == self.start,
            "{}: unexpected {:?}",
            self.name,
            String::from_utf8_lossy(&self.buf[self.start..])
        );
    }
}

/// A room on a free port with `extra` options.
fn room(extra: &[&str]) -> (Proc, u16) {
    let mut args = vec!["--broker"];
    args.extend_from_slice(extra);
    chatd(&args)
}

/// `n` raw clients, every join notice already read, so that each one's
/// next line is what comes after.
fn crowd(port: u16, n: usize) -> Vec<Peer> {
    let mut peers: Vec<Peer> = Vec::new();
    for _ in 0..n {
        let peer = Peer::join(port);
        for earlier in &mut peers {
            earlier.until(&format!("-!- {} joined", peer.name));
        }
        peers.push(peer);
    }
    peers
}

/// The relayed lines of `lines` grouped by sender name (notices left out).
fn by_sender(lines: &[String]) -> HashMap<String, Vec<String>> {
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    for line in lines {
        if let Some(rest) = line.strip_prefix('[')
            && let Some((name, text)) = rest.split_once("] ")
        {
            out.entry(name.to_owned())
                .or_default()
                .push(text.to_owned());
        }
    }
    out
}

/// A room notice as a client reads it, from its text (`alice left`): the
/// one place of these tests that knows how notices look (the tests written
/// before it spell them out).
fn notice(text: &str) -> String {
    format!("-!- {text}")
}

/// What a raw client sees when the client named `name` leaves the room.
fn left(name: &str) -> String {
    notice(&format!("{name} left"))
}

/// What a raw client sees when the client named `name` joins the room.
fn joined(name: &str) -> String {
    notice(&format!("{name} joined"))
}

/// The name in a join notice.
fn joined_name(line: &str) -> String {
    let name = line
        .strip_prefix(&notice(""))
        .and_then(|rest| rest.strip_suffix(" joined"))
        .unwrap_or_else(|| panic!("not a join notice: {line:?}"));
    assert_eq!(line, joined(name));
    name.to_owned()
}

// ---------------------------------------------------------------------------
// Relay

#[test]
fn thirty_clients_each_receive_every_other_line_exactly_once_in_order() {
    let (server, port) = room(&[]);
    let mut peers = crowd(port, 30);
    const LINES: usize = 20;
    for (i, peer) in peers.iter_mut().enumerate() {
        let text: String = (0..LINES).map(|k| format!("from {i} line {k}\n")).collect();
        peer.send(text);
    }
    let names: Vec<String> = peers.iter().map(|p| p.name.clone()).collect();
    for (r, peer) in peers.iter_mut().enumerate() {
        let mut lines = Vec::new();
        while lines.len() < 29 * LINES {
            let line = peer.line();
            assert!(!line.starts_with("-!- "), "no notice expected: {line}");
            lines.push(line);
        }
        let got = by_sender(&lines);
        assert!(!got.contains_key(&names[r]), "echo to the sender");
        for (s, name) in names.iter().enumerate() {
            if s != r {
                let expected: Vec<String> =
                    (0..LINES).map(|k| format!("from {s} line {k}")).collect();
                assert_eq!(got[name], expected, "{name} as received by {}", names[r]);
            }
        }
    }
    // Nothing more, to anyone (no duplicates).
    for peer in &mut peers {
        peer.send("/who\n");
        peer.expect(&format!("-!- 30 present: {}", names.join(" ")));
    }
    // The room on the server's standard output: every line once.
    let want = 30 * LINES;
    let shown = wait_until(TIMEOUT, || {
        server.stdout_text().matches(" line ").count() == want
    });
    assert!(shown, "{}", server.dump());
}

#[test]
fn chat_clients_with_names_talk_through_the_room() {
    let (server, port) = room(&[]);
    let mut chats: Vec<Proc> = ["alice", "bob", "carol"]
        .iter()
        .map(|name| chat(port, &["--name", name]))
        .collect();
    for name in ["alice", "bob", "carol"] {
        server.expect_stdout(&format!(" is now {name}\n"));
    }
    chats[0].send(b"bonjour\n");
    chats[1].send(b"salut alice\n");
    chats[2].send(b"coucou\n");
    for (i, client) in chats.iter().enumerate() {
        if i != 0 {
            client.expect_stdout("[alice] bonjour\n");
        }
        if i != 1 {
            client.expect_stdout("[bob] salut alice\n");
        }
    }
    server.expect_stdout("[alice] bonjour\n");
    server.expect_stdout("[bob] salut alice\n");
    let alice = chats[0].stdout_text();
    assert!(!alice.contains("[alice]"), "no echo: {alice}");
    assert!(alice.contains("-!- you are now alice\n"), "{alice}");
    // Each said something, so its end of input is a half-close: it leaves
    // (a chat that said nothing would stay and listen: receive-only).
    for client in &mut chats {
        client.close_stdin();
        assert_eq!(client.wait(), 0, "{}", client.dump());
    }
    server.expect_stdout("-!- carol left\n");
}

#[test]
fn a_name_the_room_would_refuse_is_a_usage_error_of_chat() {
    let port = free_port();
    for bad in [
        "a b",
        "chatd",
        "[x]",
        "",
        "bob\u{E0001}",
        "ch\u{0430}td",
        "bob\u{FE0F}",
    ] {
        let mut client = chat(port, &["--name", bad]);
        assert_eq!(client.wait(), 2, "{bad:?}: {}", client.dump());
        client.expect_stderr("--name");
    }
}

#[test]
fn socat_is_a_client_like_any_other() {
    let (_server, port) = room(&[]);
    let mut peer = Peer::join(port);
    let mut client = socat(&["-", &format!("TCP:127.0.0.1:{port}")]);
    let joined = peer.line();
    assert!(joined.ends_with(" joined"), "{joined}");
    let name = joined["-!- ".len()..joined.len() - " joined".len()].to_owned();
    client.send(b"/nick sam\nhello from socat\n");
    peer.expect(&format!("-!- {name} is now sam"));
    peer.expect("[sam] hello from socat");
    peer.send("hello sam\n");
    client.expect_stdout("[127.0.0.1:");
    client.expect_stdout("] hello sam\n");
    client.close_stdin();
    assert_eq!(client.wait(), 0, "{}", client.dump());
    peer.expect("-!- sam left");
}

impl Peer {
    /// The next line is `wanted`.
    fn expect(&mut self, wanted: &str) {
        let line = self.line();
        assert_eq!(line, wanted, "{}", self.name);
    }
}

#[test]
fn lines_split_across_reads_are_relayed_whole_never_interleaved() {
    // Each piece is sent once the previous line was seen relayed, so the
    // order is the order of events, not of sleeps: while a's "hel" waits
    // for its end, b's lines go by whole, and neither is cut into.
    let (_server, port) = room(&[]);
    let mut peers = crowd(port, 3);
    let a = peers[0].name.clone();
    let b = peers[1].name.clone();
    peers[0].send("hel");
    peers[1].send("wor");
    peers[1].send("ld\nand mo");
    peers[2].expect(&format!("[{b}] world"));
    peers[0].send("lo\n");
    peers[2].expect(&format!("[{a}] hello"));
    peers[1].send("re\n");
    peers[2].expect(&format!("[{b}] and more"));
}

#[test]
fn crlf_clients_are_accepted_the_cr_is_not_relayed_and_they_receive_crlf() {
    let (_server, port) = room(&[]);
    let mut peers = crowd(port, 2);
    peers[0].send("from telnet\r\n/nick tel\r\n");
    let name = peers[0].name.clone();
    assert_eq!(
        peers[1].raw_line(),
        format!("[{name}] from telnet").into_bytes()
    );
    peers[1].expect(&format!("-!- {name} is now tel"));
    // telnet and PuTTY want CRLF back; the LF client keeps LF.
    assert_eq!(peers[0].raw_line(), b"-!- you are now tel\r");
    peers[1].send("hello tel\n");
    let wanted = format!("[{}] hello tel\r", peers[1].name);
    assert_eq!(peers[0].raw_line(), wanted.as_bytes());
}

#[test]
fn a_long_line_is_relayed_in_pieces_of_max_line_bytes() {
    let (_server, port) = room(&["--max-line", "100"]);
    let mut peers = crowd(port, 2);
    let line: String = (0..250)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    peers[0].send(format!("{line}\nafter\n"));
    let name = peers[0].name.clone();
    peers[1].expect(&format!("[{name}] {}", &line[..100]));
    peers[1].expect(&format!("[{name}] {}", &line[100..200]));
    peers[1].expect(&format!("[{name}] {}", &line[200..]));
    peers[1].expect(&format!("[{name}] after"));
}

// A piece never ends between a letter and its combining marks, nor inside
// a character: a decomposed é across the 10th byte goes whole to the next
// piece, and so does a flag (two regional indicators).
#[test]
fn a_long_line_is_cut_between_characters_not_inside_one() {
    let (_server, port) = room(&["--max-line", "10"]);
    let mut peers = crowd(port, 2);
    peers[0].send("xxxxxxxxxe\u{301}yz\nabcdef\u{1F1EB}\u{1F1F7}!\n");
    let name = peers[0].name.clone();
    peers[1].expect(&format!("[{name}] xxxxxxxxx"));
    peers[1].expect(&format!("[{name}] e\u{301}yz"));
    peers[1].expect(&format!("[{name}] abcdef"));
    peers[1].expect(&format!("[{name}] \u{1F1EB}\u{1F1F7}!"));
}

#[test]
fn with_raw_garbage_and_a_10_mib_line_pass_unchanged_in_pieces_and_memory_stays_bounded() {
    // --raw: a room of programs, bytes relayed unchanged. The reader is
    // paced, never dropped, however slowly this test reads.
    let (server, port) = room(&["--raw"]);
    let mut peers = crowd(port, 2);
    // Any byte but the newline, ending in a letter: NULs, escapes, invalid
    // UTF-8 and CRs inside are the line's own bytes.
    let mut line = random_bytes(10 << 20, 42);
    for b in &mut line {
        if *b == b'\n' {
            *b = b'.';
        }
    }
    *line.last_mut().unwrap() = b'z';
    let mut garbage = b"\x00\x1b[2J\x1b]0;pwned\x07\xff\xfe\xc3(".to_vec();
    garbage.push(b'\n');
    let mut sender = peers.remove(0);
    let name = sender.name.clone();
    let to_send = [garbage.clone(), line.clone(), b"\n".to_vec()].concat();
    let writer = thread::spawn(move || {
        sender.send(&to_send);
        sender
    });
    let prefix = format!("[{name}] ").into_bytes();
    let first = peers[0].raw_line();
    assert_eq!(first, [&prefix[..], &garbage[..garbage.len() - 1]].concat());
    let mut got = Vec::with_capacity(line.len());
    let mut pieces = 0;
    while got.len() < line.len() {
        let piece = peers[0].raw_line();
        assert!(piece.starts_with(&prefix), "every piece is prefixed");
        let text = &piece[prefix.len()..];
        assert!(text.len() <= 65536, "pieces of --max-line bytes");
        got.extend_from_slice(text);
        pieces += 1;
    }
    // Pieces of 64 KiB, cut up to 32 bytes short where a UTF-8 character
    // (random bytes hold some) lies across the cut: 160 or 161 of them.
    assert!((160..=161).contains(&pieces), "{pieces} pieces");
    assert!(got == line, "the bytes of the line, in order, unchanged");
    let _sender = writer.join().unwrap();
    // The line is never held whole: at most its pieces in the queues (one
    // copy, shared by the reader's queue and standard output's).
    let peak = peak_rss_kib(server.pid());
    assert!(
        peak < 48 * 1024,
        "chatd peak RSS {peak} KiB for one 10 MiB line"
    );
}

/// The peak resident set size of process `pid`, in KiB (`VmHWM`).
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .expect("VmHWM")
}

// ---------------------------------------------------------------------------
// Commands, names, notices

#[test]
fn nick_renames_and_everyone_is_told() {
    let (server, port) = room(&[]);
    let mut peers = crowd(port, 3);
    let old = peers[0].name.clone();
    peers[0].send("/nick alice\nhello\n");
    peers[0].expect("-!- you are now alice");
    for peer in &mut peers[1..] {
        peer.expect(&format!("-!- {old} is now alice"));
        peer.expect("[alice] hello");
    }
    server.expect_stdout(&format!("-!- {old} is now alice\n[alice] hello\n"));
    peers[1].send("/nick ALICE\n/nick a:b\n/nick\n/nick chatd\n");
    peers[1].expect("-!- /nick: that name, or one that looks like it, is taken");
    peers[1].expect("-!- /nick: a name has only visible characters, no spaces, brackets or colons");
    peers[1].expect("-!- /nick: usage: /nick NAME");
    peers[1].expect("-!- /nick: chatd is the server's name");
    peers[2].expect_silence();
}

#[test]
fn names_that_look_like_another_are_refused() {
    let (server, port) = room(&[]);
    let mut peers = crowd(port, 2);
    let old = peers[0].name.clone();
    peers[0].send("/nick bob\n");
    peers[0].expect("-!- you are now bob");
    peers[1].expect(&format!("-!- {old} is now bob"));
    // Invisible characters of each class, look-alike letters, another
    // normalisation, and the server's name in Cyrillic.
    let fakes = [
        "bob\u{E0001}",
        "bob\u{206A}",
        "bob\u{FFF9}",
        "bob\u{1D173}",
        "bob\u{13430}",
        "bob\u{0600}",
        "bob\u{2065}",
        "bob\u{034F}",
        "bob\u{FE00}",
        "bob\u{E0100}",
        "bob\u{180B}",
        "bob\u{17B4}",
        "bob\u{115F}",
        "bob\u{1160}",
        "bob\u{3164}",
        "bob\u{FFA0}",
        "bob\u{0378}",
        "b\u{043E}b",
        "BOB",
        "ch\u{0430}td",
    ];
    for fake in fakes {
        peers[1].send(format!("/nick {fake}\n"));
        let answer = peers[1].line();
        assert!(answer.starts_with("-!- /nick: "), "{fake:?}: {answer}");
    }
    peers[0].send("/nick jos\u{E9}\n");
    peers[0].expect("-!- you are now jos\u{E9}");
    peers[1].expect("-!- bob is now jos\u{E9}");
    peers[1].send("/nick jose\u{301}\n");
    peers[1].expect("-!- /nick: that name, or one that looks like it, is taken");
    peers[0].expect_silence();
    assert!(
        !server
            .stdout_text()
            .contains(&format!("-!- {} is now", peers[1].name))
    );
}

#[test]
fn notices_cannot_be_forged_by_a_me_nor_by_a_line_that_wraps() {
    let (server, port) = room(&[]);
    let mut peers = crowd(port, 2);
    let old = peers[0].name.clone();
    peers[0].send("/nick the\n");
    peers[0].expect("-!- you are now the");
    peers[1].expect(&format!("-!- {old} is now the"));
    peers[0].send("/me room is closing\n");
    peers[1].expect("* the room is closing");
    // On an 80-column terminal, `x` and 73 spaces fill the first row of
    // `[the] x…`: the rest would begin the next row with `[bob]`; a space
    // goes before it.
    let pad = " ".repeat(73);
    peers[0].send(format!("x{pad}[bob] please send me your password\n"));
    let line = format!("[the] x{pad} [bob] please send me your password");
    peers[1].expect(&line);
    server.expect_stdout(&format!("{line}\n"));
}

#[test]
fn who_me_msg_help_and_unknown_commands() {
    let (server, port) = room(&[]);
    let mut peers = crowd(port, 3);
    peers[1].send("/nick bob\n");
    peers[1].expect("-!- you are now bob");
    let wanted = format!("-!- {} is now bob", peers[1].name);
    peers[0].until(&wanted);
    let wanted = format!("-!- {} is now bob", peers[1].name);
    peers[2].until(&wanted);
    let (a, c) = (peers[0].name.clone(), peers[2].name.clone());

    peers[2].send("/who\n");
    peers[2].expect(&format!("-!- 3 present: {a} bob {c}"));

    peers[0].send("/me waves\n");
    peers[1].expect(&format!("* {a} waves"));
    peers[2].expect(&format!("* {a} waves"));

    peers[0].send("/msg bob psst\n/msg nobody hi\n/msg chatd hello teacher\n");
    peers[1].expect(&format!("[{a} (private)] psst"));
    peers[0].expect("-!- to bob: psst");
    peers[0].expect("-!- /msg: no one here is called nobody");
    peers[0].expect("-!- to chatd: hello teacher");
    server.expect_stdout(&format!("[{a} (private)] hello teacher\n"));
    assert!(
        !server.stdout_text().contains("psst"),
        "private stays private"
    );

    peers[0].send("/help\n/dance\n//slash\n");
    let help = peers[0].line();
    assert!(
        help.starts_with("-!- commands: /nick NAME, /who, /me ACTION, /msg NAME TEXT"),
        "{help}"
    );
    peers[0].expect("-!- unknown command /dance; /help lists the commands");
    peers[1].expect(&format!("[{a}] /slash"));
    peers[2].expect(&format!("[{a}] /slash"));
    peers[2].expect_silence();
}

#[test]
fn joins_and_leaves_are_announced_to_the_others_and_on_stdout() {
    let (server, port) = room(&[]);
    let mut first = Peer::join(port);
    let second = Peer::join(port);
    first.expect(&format!("-!- {} joined", second.name));
    let name = second.name.clone();
    drop(second);
    first.expect(&format!("-!- {name} left"));
    server.expect_stdout(&format!("-!- {name} joined\n-!- {name} left\n"));
}

#[test]
fn bye_ends_that_client_only() {
    let (server, port) = room(&[]);
    let mut peers = crowd(port, 2);
    let mut leaver = socat(&["-", &format!("TCP:127.0.0.1:{port}")]);
    let joined = peers[0].line();
    peers[1].line();
    let name = joined
        .trim_start_matches("-!- ")
        .trim_end_matches(" joined")
        .to_owned();
    leaver.send(b"last words\nbye\nnever relayed\n");
    assert_eq!(leaver.wait(), 0, "the server closes it: {}", leaver.dump());
    for peer in &mut peers {
        peer.expect(&format!("[{name}] last words"));
        peer.expect(&format!("-!- {name} left"));
    }
    peers[0].send("still here\n");
    let wanted = format!("[{}] still here", peers[0].name);
    peers[1].expect(&wanted);
    assert!(!server.stdout_text().contains("never relayed"));
}

#[test]
fn a_client_reset_is_a_leave() {
    let (server, port) = room(&[]);
    let mut peers = crowd(port, 2);
    let gone = peers.remove(1);
    let name = gone.name.clone();
    // SO_LINGER 0: the close is a reset, whatever is in flight.
    reset_on_close(&gone.stream);
    drop(gone);
    peers[0].expect(&format!("-!- {name} left"));
    // The room goes on after the reset: a line still reaches the server.
    peers[0].send("still here\n");
    server.expect_stdout(&format!("[{}] still here\n", peers[0].name));
}

// ---------------------------------------------------------------------------
// The server's terminal

#[test]
fn server_stdin_lines_go_to_every_client_and_stdout_shows_the_room() {
    let (mut server, port) = room(&[]);
    let mut peers = crowd(port, 2);
    server.send(b"welcome to the class\n");
    for peer in &mut peers {
        peer.expect("[chatd] welcome to the class");
    }
    peers[0].send("question\n");
    let wanted = format!("[{}] question", peers[0].name);
    peers[1].expect(&wanted);
    server.expect_stdout(&format!("[{}] question\n", peers[0].name));
    assert!(
        !server.stdout_text().contains("welcome to the class"),
        "the server's own lines are not echoed"
    );
}

/// With a pipe on standard input nothing of the operator's editor
/// applies: a line that begins with `/` is relayed like any other;
/// `--name` names the server's lines there too, and no client may take
/// that name.
#[test]
fn with_a_pipe_the_operators_slash_lines_are_relayed_and_name_names_them() {
    let (mut server, port) = room(&["--name", "teacher"]);
    let mut peers = crowd(port, 2);
    server.send(b"/who\n/kick nobody\nhello class\n");
    for peer in &mut peers {
        peer.expect("[teacher] /who");
        peer.expect("[teacher] /kick nobody");
        peer.expect("[teacher] hello class");
    }
    peers[0].send("/nick Teacher\n");
    peers[0].expect("-!- /nick: that name, or one that looks like it, is taken");
    peers[1].send("/msg teacher a question\n");
    peers[1].expect("-!- to teacher: a question");
    server.expect_stdout(&format!("[{} (private)] a question\n", peers[1].name));
    assert!(
        !server.stdout_text().contains("present"),
        "{}",
        server.dump()
    );
}

#[test]
fn a_closed_standard_output_ends_the_server_quietly_with_0() {
    // `chatd --broker | head -n 3`: once head has its three lines and exits,
    // the server ends with status 0 and no error line (as ripgrep does).
    let script = format!(
        "set -o pipefail; {CHATD} --broker -b 127.0.0.1 -p 0 </dev/null | head -n 3 >/dev/null"
    );
    let mut pipeline = spawn("bash", &["-c", &script]);
    let port = wait_for_port(&pipeline, "chatd");
    let mut peers = crowd(port, 2);
    peers[0].send("one\ntwo\nthree\n");
    assert_eq!(pipeline.wait(), 0, "{}", pipeline.dump());
    assert_eq!(
        pipeline.stderr_text(),
        format!("chatd: listening on 127.0.0.1:{port}\n")
    );
}

#[test]
fn escapes_are_shown_visibly_to_raw_socket_clients_and_on_the_server_terminal() {
    // The attack: a raw client renames itself, clears the screens
    // and sets the window titles of the others, and reverses text.
    let tmux = Tmux::start("chatd", &chatd_command(0, "--broker"));
    let port = tmux.listening_port();
    let mut peers = crowd(port, 2);
    peers[0].send(b"/nick mallory\n\x1b[2J\x1b[H\x1b]0;hacked\x07 \xe2\x80\xaetxet\n");
    let renamed = format!("-!- {} is now mallory", peers[0].name);
    peers[1].until(&renamed);
    let shown = "[mallory] ^[[2J^[[H^[]0;hacked^G <U+202E>txet";
    assert_eq!(peers[1].raw_line(), shown.as_bytes());
    tmux.expect_screen("chatd", shown);
    let title = tmux.title("chatd");
    assert!(!title.contains("hacked"), "title taken over: {title}");
}

#[test]
fn with_raw_clients_get_the_bytes_unchanged() {
    let (_server, port) = room(&["--raw"]);
    let mut peers = crowd(port, 2);
    peers[0].send(b"\x1b]0;pwned\x07\x1b[2Jhi\xff\n");
    let prefix = format!("[{}] ", peers[0].name);
    assert_eq!(
        peers[1].raw_line(),
        [prefix.as_bytes(), b"\x1b]0;pwned\x07\x1b[2Jhi\xff"].concat()
    );
}

#[test]
fn end_of_file_on_server_stdin_leaves_the_room_open() {
    let (mut server, port) = room(&[]);
    let mut peers = crowd(port, 2);
    server.send(b"last word from the teacher");
    server.close_stdin();
    for peer in &mut peers {
        peer.expect("[chatd] last word from the teacher");
    }
    peers[0].send("we go on\n");
    let wanted = format!("[{}] we go on", peers[0].name);
    peers[1].expect(&wanted);
    assert!(server.try_status().is_none());
}

#[test]
fn arret_on_server_stdin_tells_everyone_closes_all_and_exits_0() {
    let (mut server, port) = room(&[]);
    let mut peers = crowd(port, 3);
    let mut client = chat(port, &["--name", "dan"]);
    for peer in &mut peers {
        while !peer.line().ends_with(" is now dan") {}
    }
    server.send(b"arret\n");
    for mut peer in peers {
        let rest = peer.until_closed();
        assert!(
            rest.contains(&"-!- chatd said arret: the room is closed".to_owned()),
            "{rest:?}"
        );
    }
    assert_eq!(server.wait(), 0, "{}", server.dump());
    client.expect_stdout("-!- chatd said arret: the room is closed\n");
    // The room closed the connection; chat ends when its own input does.
    client.close_stdin();
    assert_eq!(client.wait(), 0, "{}", client.dump());
    server.expect_stderr("chatd: arret: closing the room");
}

#[test]
fn arret_from_a_client_is_an_ordinary_line_by_default() {
    let (server, port) = room(&[]);
    let mut peers = crowd(port, 2);
    peers[0].send("arret\n");
    let wanted = format!("[{}] arret", peers[0].name);
    peers[1].expect(&wanted);
    peers[0].send("still open\n");
    let wanted = format!("[{}] still open", peers[0].name);
    peers[1].expect(&wanted);
    let mut server = server;
    assert!(
        server.try_status().is_none(),
        "a client cannot stop the room"
    );
}

#[test]
fn allow_remote_stop_lets_a_client_close_the_room() {
    let (mut server, port) = room(&["--allow-remote-stop"]);
    let mut peers = crowd(port, 2);
    peers[0].send("/nick boss\narret\n");
    let rest = peers[1].until_closed();
    drop(peers);
    assert!(
        rest.contains(&"-!- boss said arret: the room is closed".to_owned()),
        "{rest:?}"
    );
    assert_eq!(server.wait(), 0, "{}", server.dump());
}

#[test]
fn a_terminating_signal_tells_everyone_the_room_is_closing_and_ends_with_128_plus_n() {
    for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
        let (mut server, port) = room(&[]);
        let peers = crowd(port, 2);
        server.signal(sig);
        for mut peer in peers {
            let rest = peer.until_closed();
            assert_eq!(rest, ["-!- the room is closing"], "signal {sig}");
        }
        assert_eq!(server.wait(), 128 + sig);
        assert!(
            server.stdout_text().ends_with("-!- the room is closing\n"),
            "{}",
            server.dump()
        );
    }
}

// ---------------------------------------------------------------------------
// Limits

#[test]
fn the_greeting_lists_who_is_present() {
    let (_server, port) = room(&[]);
    let mut first = Peer::join(port);
    first.send("/nick alice\n");
    first.expect("-!- you are now alice");
    let second = Peer::join(port);
    first.expect(&format!("-!- {} joined", second.name));
    let mut third = TcpStream::connect(("127.0.0.1", port)).unwrap();
    third.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut greeting = Vec::new();
    let mut byte = [0u8; 1];
    while !greeting.ends_with(b"\n") && third.read(&mut byte).unwrap() == 1 {
        greeting.push(byte[0]);
    }
    let greeting = String::from_utf8(greeting).unwrap();
    let name = third.local_addr().unwrap().to_string();
    assert_eq!(
        greeting,
        format!(
            "-!- you are {name}; here: alice, {}; /help lists the commands\n",
            second.name
        )
    );
}

#[test]
fn with_history_a_newcomer_reads_the_last_lines_before_its_greeting() {
    let (server, port) = room(&["--history", "2"]);
    let mut first = Peer::join(port);
    first.send("/nick alice\none\ntwo\nthree\n");
    first.expect("-!- you are now alice");
    server.expect_stdout("[alice] three\n");
    let mut late = TcpStream::connect(("127.0.0.1", port)).unwrap();
    late.set_read_timeout(Some(TIMEOUT)).unwrap();
    // The greeting ends what it receives on arrival.
    let mut seen = Vec::new();
    let mut chunk = [0u8; 4096];
    while !seen.ends_with(b"/help lists the commands\n") {
        let n = late.read(&mut chunk).unwrap();
        assert!(n > 0, "closed: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&chunk[..n]);
    }
    let name = late.local_addr().unwrap().to_string();
    assert_eq!(
        String::from_utf8(seen).unwrap(),
        format!(
            "-!- history: the last 2 lines said here\n[alice] two\n[alice] three\n\
             -!- end of history\n-!- you are {name}; here: alice; /help lists the commands\n"
        )
    );
}

#[test]
fn a_room_of_one_says_so_in_the_singular() {
    let (_server, port) = room(&["--max-clients", "1"]);
    let _alone = Peer::join(port);
    let mut extra = TcpStream::connect(("127.0.0.1", port)).unwrap();
    extra.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut answer = String::new();
    extra.read_to_string(&mut answer).unwrap();
    assert_eq!(answer, "-!- the room is full (1 client); try again later\n");
}

#[test]
fn one_client_more_than_max_clients_is_refused_with_one_line() {
    let (server, port) = room(&["--max-clients", "3"]);
    let mut peers = crowd(port, 3);
    let mut extra = TcpStream::connect(("127.0.0.1", port)).unwrap();
    extra.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut answer = String::new();
    extra.read_to_string(&mut answer).unwrap();
    assert_eq!(
        answer,
        "-!- the room is full (3 clients); try again later\n"
    );
    server.expect_stderr("chatd: refused 127.0.0.1:");
    // The room is untouched, and has a place again once someone leaves.
    peers[0].expect_silence();
    let name = peers[2].name.clone();
    drop(peers.pop());
    peers[0].expect(&format!("-!- {name} left"));
    let newcomer = Peer::join(port);
    peers[0].expect(&format!("-!- {} joined", newcomer.name));
}

#[test]
fn max_clients_that_cannot_fit_in_the_open_file_limit_is_said_on_stderr() {
    let script = format!("ulimit -n 64 && exec {CHATD} --broker -b 127.0.0.1 -p 0");
    let server = spawn("bash", &["-c", &script]);
    server.expect_stderr(
        "chatd: --max-clients 1000 does not fit in the limit of 64 open files: at most ",
    );
    server.expect_stderr(" clients at once\n");
    // The room still works, within the limit.
    let port = wait_for_port(&server, "chatd");
    let mut peers = crowd(port, 2);
    peers[0].send("fits\n");
    let wanted = format!("[{}] fits", peers[0].name);
    peers[1].expect(&wanted);
}

#[test]
fn a_client_that_never_reads_is_disconnected_while_the_others_get_everything() {
    let (server, port) = room(&[]);
    let mut peers = crowd(port, 4);
    // The stuck client: a tiny receive buffer, and it never reads.
    let stuck = Peer::from_stream(small_window_stream(port));
    for peer in &mut peers {
        peer.until(&format!("-!- {} joined", stuck.name));
    }
    let stuck_name = stuck.name.clone();
    let mut sender = peers.remove(0);
    let prefix = format!("[{}] ", sender.name).into_bytes();
    const LINES: usize = 200_000; // 80 bytes each: 16 MB sent, 20 MB relayed
    // The sender keeps at most WINDOW lines ahead of the slowest reader
    // (about 0.5 MB, half the default send queue), so that the readers,
    // threads of a test on a busy machine, are never the slow ones; the
    // stuck client falls behind by all 20 MB.
    const WINDOW: usize = 5000;
    let counts: Vec<Arc<AtomicUsize>> = (0..peers.len()).map(|_| Arc::default()).collect();
    let readers: Vec<_> = peers
        .into_iter()
        .zip(counts.iter().cloned())
        .map(|(mut peer, done)| {
            let prefix = prefix.clone();
            thread::spawn(move || {
                let mut notices = Vec::new();
                for count in 0..LINES {
                    let line = loop {
                        let line = peer.raw_line();
                        if line.starts_with(&prefix) {
                            break line;
                        }
                        notices.push(String::from_utf8(line).unwrap());
                    };
                    let number = format!(" {count:06}");
                    assert!(line.ends_with(number.as_bytes()), "line {count}");
                    done.store(count + 1, Ordering::Relaxed);
                }
                notices
            })
        })
        .collect();
    let writer = thread::spawn(move || {
        let text = "x".repeat(72);
        let mut batch = String::new();
        for k in 0..LINES {
            batch.push_str(&format!("{text} {k:06}\n"));
            if batch.len() > 60_000 || k + 1 == LINES {
                let slowest = || counts.iter().map(|c| c.load(Ordering::Relaxed)).min();
                let caught_up = wait_until(TIMEOUT, || slowest().unwrap_or(0) + WINDOW > k);
                assert!(caught_up, "the readers stopped at line {:?}", slowest());
                sender.send(&batch);
                batch.clear();
            }
        }
        sender
    });
    for reader in readers {
        let notices = reader.join().expect("a reader got every line in order");
        assert!(
            notices.contains(&format!("-!- {stuck_name} left (too slow)")),
            "{notices:?}"
        );
    }
    let _sender = writer.join().unwrap();
    server.expect_stdout(&format!("-!- {stuck_name} left (too slow)\n"));
    drop(stuck);
}

/// A connection whose receive buffer is as small as the kernel allows, so
/// that a client that does not read fills up at once.
fn small_window_stream(port: u16) -> TcpStream {
    use nix::sys::socket::{
        AddressFamily, SockFlag, SockType, SockaddrIn, connect, setsockopt, socket, sockopt,
    };
    use std::os::fd::AsRawFd;
    let fd: OwnedFd = socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .unwrap();
    setsockopt(&fd, sockopt::RcvBuf, &4096).unwrap();
    let addr = SockaddrIn::new(127, 0, 0, 1, port);
    connect(fd.as_raw_fd(), &addr).unwrap();
    TcpStream::from(fd)
}

// ---------------------------------------------------------------------------
// Pacing: a reader that reads gets every line; one that stopped is dropped

/// Reads `stream` at about `rate` bytes per second until `lines` lines
/// starting with `prefix` arrived (or the deadline); returns them in order
/// and any notices.
fn throttled_reader(
    mut stream: TcpStream,
    rate: usize,
    prefix: Vec<u8>,
    lines: usize,
) -> (Vec<Vec<u8>>, Vec<String>) {
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let start = Instant::now();
    let deadline = start + Duration::from_secs(60);
    let (mut got, mut notices) = (Vec::new(), Vec::new());
    let (mut pending, mut total) = (Vec::new(), 0usize);
    let mut chunk = vec![0u8; 16 * 1024];
    while got.len() < lines && Instant::now() < deadline {
        // Never ahead of `rate` bytes per second.
        let due = start + Duration::from_secs_f64(total as f64 / rate as f64);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            thread::sleep(wait);
        }
        let n = match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
            Err(e) => panic!("read: {e}"),
        };
        total += n;
        pending.extend_from_slice(&chunk[..n]);
        while let Some(i) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=i).collect();
            let line = &line[..line.len() - 1];
            match line.strip_prefix(&prefix[..]) {
                Some(text) => got.push(text.to_vec()),
                None => notices.push(String::from_utf8_lossy(line).into_owned()),
            }
        }
    }
    (got, notices)
}

#[test]
fn readers_at_1_2_and_4_mib_per_second_get_every_line_of_a_burst_larger_than_max_queue() {
    // 2 MiB of lines: 8 times --max-queue. The talker is paced to the
    // slowest reader; nobody is dropped.
    let (server, port) = room(&["--max-queue", "262144"]);
    let mut peers = crowd(port, 4);
    let talker = peers.remove(0);
    let prefix = format!("[{}] ", talker.name).into_bytes();
    const LINES: usize = 26_000; // 80 bytes each
    let text: Vec<Vec<u8>> = (0..LINES)
        .map(|k| format!("{k:07} {}", "x".repeat(72)).into_bytes())
        .collect();
    let readers: Vec<_> = peers
        .into_iter()
        .zip([1usize << 20, 2 << 20, 4 << 20])
        .map(|(peer, rate)| {
            let prefix = prefix.clone();
            thread::spawn(move || throttled_reader(peer.stream, rate, prefix, LINES))
        })
        .collect();
    let mut talker = talker;
    let all: Vec<u8> = text.iter().flat_map(|l| [&l[..], b"\n"].concat()).collect();
    let writer = thread::spawn(move || {
        talker.send(&all);
        talker
    });
    for reader in readers {
        let (got, notices) = reader.join().expect("reader");
        assert_eq!(got.len(), LINES, "every line; notices: {notices:?}");
        assert!(got == text, "in order, unchanged");
        // The faster readers leave when they are done; nobody is dropped.
        assert!(notices.iter().all(|n| n.ends_with(" left")), "{notices:?}");
    }
    let _talker = writer.join().unwrap();
    assert!(!server.stdout_text().contains("too slow"));
}

#[test]
fn a_client_that_stops_reading_goes_after_the_stall_timeout_and_reads_why_then_end_of_file() {
    let (server, port) = room(&["--stall-timeout", "1"]);
    let mut peers = crowd(port, 3);
    let stuck = Peer::from_stream(small_window_stream(port));
    for peer in &mut peers {
        peer.until(&format!("-!- {} joined", stuck.name));
    }
    // About 400 kB: more than its socket buffers hold, less than
    // --max-queue: only the stall timeout can drop it.
    let mut sender = peers.remove(0);
    let prefix = format!("[{}] ", sender.name);
    let lines: Vec<String> = (0..5000)
        .map(|k| format!("{k:06} {}", "y".repeat(73)))
        .collect();
    let started = Instant::now();
    for chunk in lines.chunks(500) {
        sender.send(chunk.iter().map(|l| format!("{l}\n")).collect::<String>());
    }
    let notice = format!("-!- {} left (too slow)", stuck.name);
    // The others read all the while (threads: with a 1 s stall timeout, a
    // reader that waits its turn would be dropped too).
    let readers: Vec<_> = peers
        .into_iter()
        .map(|mut peer| {
            let (notice, prefix) = (notice.clone(), prefix.clone());
            thread::spawn(move || {
                let before = peer.until(&notice);
                before.iter().filter(|l| l.starts_with(&prefix)).count()
            })
        })
        .collect();
    for reader in readers {
        let relayed = reader.join().expect("a reader saw the notice");
        assert_eq!(relayed, lines.len(), "the others got everything first");
    }
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(900), "{waited:?}");
    // Now it reads: whole lines, a prefix of what was sent, then why, then
    // end of file (not a reset).
    let mut stream = stuck.stream;
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut received = stuck.buf[stuck.start..].to_vec();
    let mut chunk = [0u8; 65536];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => received.extend_from_slice(&chunk[..n]),
            Err(e) => panic!("read after the drop: {e} (a reset loses the notice)"),
        }
    }
    let text = String::from_utf8(received).unwrap();
    let got: Vec<&str> = text.lines().collect();
    assert_eq!(got.last(), Some(&notice.as_str()));
    for (k, line) in got[..got.len() - 1].iter().enumerate() {
        assert_eq!(*line, format!("{prefix}{}", lines[k]), "line {k}");
    }
    assert!(got.len() < lines.len(), "it missed what came after");
    server.expect_stdout(&format!("{notice}\n"));
}

#[test]
fn a_server_stdout_pipe_read_at_1_mib_per_second_gets_every_line_of_a_burst() {
    // `chatd --broker | slow-consumer`: standard output is a reader like
    // the others, paced, never dropping a line, here 30 times --max-queue.
    let (read_end, write_end) = nix::unistd::pipe().unwrap();
    let args = ["--broker", "--max-queue", "70000"];
    let (server, port) = chatd_io(&args, Stdio::piped(), Stdio::from(write_end));
    let mut peers = crowd(port, 2);
    let body = "z".repeat(90);
    let all: String = (0..20_000).map(|k| format!("{k:06} {body}\n")).collect();
    let mut talker = peers.remove(0);
    let prefix = format!("[{}] ", talker.name);
    let shown = thread::spawn(move || {
        use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
        use std::os::fd::AsFd;
        let mut pipe = std::fs::File::from(read_end);
        let start = Instant::now();
        let (mut total, mut lines) = (0usize, 0usize);
        let mut chunk = [0u8; 16384];
        // Bounded: a line lost would otherwise be waited for forever.
        while lines < 20_000 + 2 && start.elapsed() < Duration::from_secs(30) {
            let due = start + Duration::from_secs_f64(total as f64 / f64::from(1 << 20));
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                thread::sleep(wait);
            }
            let mut fds = [PollFd::new(pipe.as_fd(), PollFlags::POLLIN)];
            if poll(&mut fds, PollTimeout::from(200u16)) != Ok(1) {
                continue;
            }
            match pipe.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    total += n;
                    lines += chunk[..n].iter().filter(|&&b| b == b'\n').count();
                }
            }
        }
        lines
    });
    let writer = thread::spawn(move || {
        talker.send(&all);
        talker
    });
    peers[0].until(&format!("{prefix}019999 {body}"));
    // Two join notices, then every line.
    assert_eq!(shown.join().unwrap(), 20_000 + 2);
    assert!(
        !server.stderr_text().contains("not shown"),
        "{}",
        server.dump()
    );
    let _talker = writer.join().unwrap();
}

#[test]
fn a_server_stdout_that_stops_loses_lines_counted_and_the_room_goes_on() {
    // `chatd --broker | less` and nobody scrolls: after the stall timeout
    // the lines for it are dropped and counted; the clients go on. The
    // pipe is the test's, read only at the end (chatd is a child of the
    // test, killed with it: no pipeline left behind).
    let (read_end, write_end) = nix::unistd::pipe().unwrap();
    let args = ["--broker", "--stall-timeout", "1"];
    let (server, port) = chatd_io(&args, Stdio::null(), Stdio::from(write_end));
    let mut peers = crowd(port, 2);
    let body = "w".repeat(90);
    let name = peers[0].name.clone();
    for round in 0..8 {
        let batch: String = (0..2000)
            .map(|k| format!("{round}.{k:04} {body}\n"))
            .collect();
        peers[0].send(&batch);
        peers[1].until(&format!("[{name}] {round}.1999 {body}"));
    }
    // The scenario: the pager reads again only past the stall timeout.
    thread::sleep(Duration::from_millis(1500));
    peers[0].send("one more\n");
    peers[1].until(&format!("[{name}] one more"));
    thread::spawn(move || {
        let mut pipe = std::fs::File::from(read_end);
        let mut chunk = [0u8; 65536];
        while matches!(pipe.read(&mut chunk), Ok(n) if n > 0) {}
    });
    server.expect_stderr(" of the room not shown: standard output did not keep up\n");
}

// ---------------------------------------------------------------------------
// A large room: memory bounded by the bytes in it, not clients × lines

/// A field of `/proc/PID/status`, in KiB.
fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/{pid}/status"))
}

/// The open descriptors of process `pid`.
fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

#[test]
fn four_thousand_clients_that_never_read_cost_memory_linear_in_their_number() {
    // The room used to hold a queue slot per client per notice: N joins
    // made N²/2 slots (75 MiB at 2,000 clients, 1.4 GiB at 10,000). With
    // one log and a cursor per client, each join costs a constant.
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard).unwrap();
    const STEP: usize = 1000;
    const STEPS: usize = 4;
    assert!(hard > (STEP * STEPS + 100) as u64, "hard limit {hard}");
    let (server, port) = room(&["-q", "--max-clients", "5000"]);
    let pid = server.pid();
    let base_fds = open_fds(pid);
    let mut clients: Vec<TcpStream> = Vec::with_capacity(STEP * STEPS);
    let mut rss = Vec::new();
    for step in 1..=STEPS {
        while clients.len() < step * STEP {
            clients.push(TcpStream::connect(("127.0.0.1", port)).expect("connect"));
        }
        let all = base_fds + clients.len();
        assert!(
            wait_until(Duration::from_secs(60), || open_fds(pid) >= all),
            "the room holds {} descriptors, not {all}",
            open_fds(pid)
        );
        // The last join is handled (and announced) once its greeting
        // arrives.
        let last = clients.last().expect("a client");
        last.set_read_timeout(Some(TIMEOUT)).unwrap();
        let greeted = last.peek(&mut [0u8; 1]);
        assert!(
            matches!(greeted, Ok(1)),
            "no greeting for the last client: {greeted:?}"
        );
        rss.push(status_kib(pid, "VmRSS:"));
    }
    // Linear: every thousand clients cost about the same, and little.
    let per_step: Vec<u64> = rss.windows(2).map(|w| w[1].saturating_sub(w[0])).collect();
    let first = per_step[0].max(1024);
    for (k, cost) in per_step.iter().enumerate() {
        assert!(
            *cost <= 2 * first + 512,
            "thousand {}: {cost} KiB after {first} KiB for the first (RSS {rss:?} KiB)",
            k + 2
        );
        assert!(
            *cost <= 4 * 1024,
            "{cost} KiB per thousand clients (RSS {rss:?} KiB)"
        );
    }
    // And the room works: one line reaches the first and the last client.
    let line = b"hello, four thousand\n";
    (&clients[1]).write_all(line).unwrap();
    for k in [0, clients.len() - 1] {
        let stream = &mut clients[k];
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        let mut got = Vec::new();
        let mut chunk = vec![0u8; 65536];
        while !got
            .windows(line.len() - 1)
            .any(|w| w == &line[..line.len() - 1])
        {
            let n = stream.read(&mut chunk).expect("the line arrives");
            assert!(n > 0, "client {k} closed");
            got.extend_from_slice(&chunk[..n]);
        }
    }
}

// ---------------------------------------------------------------------------
// A paste never freezes the room

/// The longest gap a talker may be held back, or a reader wait for its
/// next byte, while a reader that reads as fast as it can is behind.
const MAX_HOLD: Duration = Duration::from_secs(2);

/// What a reader that reads as fast as it can saw of one talker.
struct FastRead {
    /// The talker's lines, without their prefix and newline.
    lines: Vec<Vec<u8>>,
    /// The longest wait for a byte, from the first, while lines were
    /// still due.
    longest_gap: Duration,
    /// The reader stopped at the deadline before `until` returned true.
    timed_out: bool,
}

/// Reads `peer` as fast as it can, taking the lines that start with
/// `prefix`, until `until(lines received)` is true, `limit` passes, or no
/// byte came for more than [`MAX_HOLD`] after the first.
fn read_fast(
    mut peer: Peer,
    prefix: Vec<u8>,
    limit: Duration,
    until: impl Fn(usize) -> bool,
) -> FastRead {
    let start = Instant::now();
    let mut last: Option<Instant> = None;
    let mut got = FastRead {
        lines: Vec::new(),
        longest_gap: Duration::ZERO,
        timed_out: false,
    };
    let mut pending = peer.buf[peer.start..].to_vec();
    let mut chunk = vec![0u8; 64 * 1024];
    while !until(got.lines.len()) {
        if start.elapsed() > limit {
            got.timed_out = true;
            break;
        }
        if let Some(last) = last
            && last.elapsed() > MAX_HOLD
        {
            // Held back: no need to wait for the rest to fail.
            got.longest_gap = last.elapsed();
            break;
        }
        let n = match peer.stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => panic!("read: {e}"),
        };
        let now = Instant::now();
        if let Some(last) = last {
            got.longest_gap = got.longest_gap.max(now - last);
        }
        last = Some(now);
        pending.extend_from_slice(&chunk[..n]);
        let mut from = 0;
        while let Some(i) = memchr::memchr(b'\n', &pending[from..]) {
            let line = &pending[from..from + i];
            if let Some(text) = line.strip_prefix(&prefix[..]) {
                got.lines.push(text.to_vec());
            }
            from += i + 1;
        }
        pending.drain(..from);
    }
    got
}

/// The room of the paste tests: its standard output `/dev/null` (written
/// directly, never a reader that holds the room back), and a
/// `--max-queue` of 128 KiB, with which the debug build pauses and resumes
/// the room hundreds of times a second, as the release build does with
/// the default 1 MiB (the freeze came after 10 to 16 s of that; with the
/// default queue, the debug build rarely froze within a test, and with
/// this one within a second, in 4 runs of 4).
fn paste_room() -> (Proc, u16) {
    let args = ["--broker", "--max-queue", "131072"];
    chatd_io(&args, Stdio::piped(), Stdio::null())
}

/// A line of 1000 bytes with its newline, numbered `k`.
fn kilobyte_line(k: usize) -> Vec<u8> {
    let mut line = format!("{k:09} ").into_bytes();
    line.resize(999, b'x');
    line.push(b'\n');
    line
}

#[test]
fn a_socket_sending_1000_byte_lines_for_10_s_beside_a_fast_reader_is_never_held() {
    // The room used to sleep in epoll_wait(-1) with the talker's bytes
    // unread, after a pause that the turn's own writes had already made
    // pointless: the talker blocked in send until something else happened.
    let (server, port) = paste_room();
    let mut peers = crowd(port, 2);
    let talker = peers.pop().unwrap();
    let reader = peers.pop().unwrap();
    let prefix = format!("[{}] ", talker.name).into_bytes();
    let sent = Arc::new(AtomicUsize::new(usize::MAX));
    let total = Arc::clone(&sent);
    let reading = thread::spawn(move || {
        let limit = Duration::from_secs(10) + 3 * TIMEOUT;
        read_fast(reader, prefix, limit, |n| n >= total.load(Ordering::SeqCst))
    });
    // The talker: 64 lines per send, for 10 s; the watch is the end of its
    // last send, in milliseconds from the start.
    let start = Instant::now();
    let done_at = Arc::new(AtomicUsize::new(0));
    let watch = Arc::clone(&done_at);
    let mut stream = talker.stream;
    let talking = thread::spawn(move || {
        let mut k = 0;
        while start.elapsed() < Duration::from_secs(10) {
            let batch: Vec<u8> = (k..k + 64).flat_map(kilobyte_line).collect();
            if stream.write_all(&batch).is_err() {
                break;
            }
            k += 64;
            watch.store(start.elapsed().as_millis() as usize, Ordering::SeqCst);
        }
        (k, stream)
    });
    while !talking.is_finished() {
        thread::sleep(Duration::from_millis(20));
        let since = start.elapsed() - Duration::from_millis(done_at.load(Ordering::SeqCst) as u64);
        assert!(
            since <= MAX_HOLD,
            "the talker has been blocked in send for {since:?} while the reader reads\n{}",
            server.dump()
        );
    }
    let (lines, _stream) = talking.join().unwrap();
    sent.store(lines, Ordering::SeqCst);
    let got = reading.join().unwrap();
    assert!(
        got.longest_gap <= MAX_HOLD,
        "the reader waited {:?} for a byte after {} of {lines} lines",
        got.longest_gap,
        got.lines.len()
    );
    assert!(
        !got.timed_out,
        "{} of {lines} lines arrived",
        got.lines.len()
    );
    assert_eq!(got.lines.len(), lines, "every line arrives");
    for (k, line) in got.lines.iter().enumerate() {
        assert!(
            line[..] == kilobyte_line(k)[..999],
            "line {k} arrives unchanged"
        );
    }
    assert!(lines > 1000, "only {lines} lines sent in 10 s");
}

#[test]
fn a_chat_talker_fed_by_yes_beside_a_fast_reader_never_waits_and_every_line_arrives() {
    // `yes "$(head -c 999 /dev/zero | tr '\0' x)" | chat -q HOST P` beside
    // one reader: the room froze in 3 runs of 3 after 10 to 16 s.
    const LINES: usize = 20_000;
    let (server, port) = paste_room();
    let mut reader = Peer::join(port);
    let script = format!(
        "yes \"$(head -c 999 /dev/zero | tr '\\0' x)\" | head -n {LINES} | exec {CHAT} -q 127.0.0.1 {port}"
    );
    let mut talker = spawn("bash", &["-c", &script]);
    let name = joined_name(&reader.line());
    let prefix = format!("[{name}] ").into_bytes();
    let limit = Duration::from_secs(60) + 3 * TIMEOUT;
    let got = read_fast(reader, prefix, limit, |n| n >= LINES);
    assert!(
        got.longest_gap <= MAX_HOLD,
        "the reader waited {:?} for a byte while lines were due, after {} lines\n{}",
        got.longest_gap,
        got.lines.len(),
        server.dump()
    );
    assert!(
        !got.timed_out,
        "{} of {LINES} lines arrived\n{}",
        got.lines.len(),
        server.dump()
    );
    assert_eq!(got.lines.len(), LINES, "every line arrives");
    let line = vec![b'x'; 999];
    assert!(got.lines.iter().all(|l| *l == line), "unchanged");
    assert_eq!(talker.wait(), 0, "{}", talker.dump());
}

// ---------------------------------------------------------------------------
// A client that half-closes has finished

#[test]
fn clients_that_half_close_are_relayed_announced_and_let_go_at_once() {
    // Each ran until killed: the room read "hello\n" in a short read,
    // took it to mean the socket was drained, and never saw the end of
    // file that had come with it (edge-triggered epoll gives no new edge).
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), "first line\nsecond line\n").unwrap();
    let file = file.path().to_str().unwrap().to_owned();
    let forms: [(&str, &[&str]); 6] = [
        ("printf 'hello\\n' | $CHAT 127.0.0.1 $PORT", &["hello"]),
        ("printf 'hello\\n' | $CHAT -q 127.0.0.1 $PORT", &["hello"]),
        ("printf 'hello\\n' | nc -N 127.0.0.1 $PORT", &["hello"]),
        (
            "$CHAT -q 127.0.0.1 $PORT < \"$FILE\"",
            &["first line", "second line"],
        ),
        (
            "printf 'no newline' | $CHAT -q 127.0.0.1 $PORT",
            &["no newline"],
        ),
        (
            "printf 'hello\\n' | socat - TCP:127.0.0.1:$PORT",
            &["hello"],
        ),
    ];
    for (script, lines) in forms {
        let (server, port) = room(&[]);
        let mut listener = Peer::join(port);
        let script = script
            .replace("$CHAT", CHAT)
            .replace("$PORT", &port.to_string())
            .replace("$FILE", &file);
        let mut client = spawn("bash", &["-c", &script]);
        let name = joined_name(&listener.line());
        for line in lines {
            listener.expect(&format!("[{name}] {line}"));
        }
        listener.expect(&left(&name));
        assert_eq!(client.wait(), 0, "{script}: {}", client.dump());
        // Its slot is free: the room is the listener alone.
        listener.send("/who\n");
        listener.expect(&notice(&format!("1 present: {}", listener.name)));
        server.expect_stdout(&format!("{}\n", left(&name)));
    }
}

/// A raw client of the room that sends `bytes`, then half-closes.
fn half_close_after(port: u16, bytes: &str) -> Peer {
    let mut peer = Peer::join(port);
    peer.send(bytes);
    peer.stream.shutdown(std::net::Shutdown::Write).unwrap();
    peer
}

#[test]
fn twenty_clients_that_half_close_leave_no_slot_and_no_descriptor() {
    // They stayed in /who, each holding a descriptor, for the 30 s watched.
    let (server, port) = room(&[]);
    let mut listener = Peer::join(port);
    let base = open_fds(server.pid());
    let mut names = Vec::new();
    for k in 0..20 {
        let mut peer = half_close_after(port, &format!("line {k}\nlast {k}"));
        let name = joined_name(&listener.line());
        listener.expect(&format!("[{name}] line {k}"));
        listener.expect(&format!("[{name}] last {k}"));
        listener.expect(&left(&name));
        // It reads its end of file: the room closed its side.
        assert_eq!(peer.until_closed(), Vec::<String>::new(), "{name}");
        names.push(name);
    }
    listener.send("/who\n");
    listener.expect(&notice(&format!("1 present: {}", listener.name)));
    let pid = server.pid();
    assert!(
        wait_until(TIMEOUT, || open_fds(pid) <= base),
        "the room holds {} descriptors, {base} before the 20",
        open_fds(pid)
    );
}

#[test]
fn with_an_idle_timeout_the_last_line_of_a_client_that_half_closed_is_relayed() {
    // It was reported `left (idle)` after 2 s and its line never relayed.
    let (_server, port) = room(&["--idle-timeout", "2"]);
    let mut peers = crowd(port, 2);
    let name = peers[1].name.clone();
    peers[0].send("still here\n");
    peers[1].send("no newline");
    peers[1].stream.shutdown(std::net::Shutdown::Write).unwrap();
    peers[0].expect(&format!("[{name}] no newline"));
    peers[0].expect(&left(&name));
}

#[test]
fn a_terminating_signal_after_a_half_close_loses_no_line() {
    // With the end of file unseen, the line waited for a newline that
    // never came: SIGTERM then gave the listener `the room is closing`
    // and never the line.
    let (mut server, port) = room(&[]);
    let mut peers = crowd(port, 2);
    let name = peers[1].name.clone();
    peers[1].send("last words");
    peers[1].stream.shutdown(std::net::Shutdown::Write).unwrap();
    server.expect_stdout(&format!("[{name}] last words\n{}\n", left(&name)));
    server.signal(libc::SIGTERM);
    let rest = peers[0].until_closed();
    let closing = notice("the room is closing");
    assert_eq!(
        rest,
        [format!("[{name}] last words"), left(&name), closing.clone()]
    );
    assert_eq!(server.wait(), 128 + libc::SIGTERM);
    assert!(server.stdout_text().ends_with(&format!("{closing}\n")));
}

//! The line editor of a person at a terminal, on a real
//! terminal: tmux runs `chat` or `chatd` in a pane whose standard input
//! and output are the pane, and the test types keys, reads the screen and
//! the cursor. The peer is a socket of the test itself on 127.0.0.1 (so it
//! can also reset the connection), or `socat`.
//!
//! Every way out is checked with `stty -g`: the pane runs
//! `sh -c 'stty -g > before; PROGRAM; …; stty -g > after'`, where `after`
//! is taken only once every process of the program is gone (the child
//! that outlives a killed parent restores the terminal itself).

mod util;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use util::tmux::*;
use util::*;

/// A peer for `chat`: a listening socket of the test on a port the
/// kernel picks.
struct Peer {
    listener: TcpListener,
    port: u16,
    conn: Option<TcpStream>,
    got: Vec<u8>,
}

impl Peer {
    fn new() -> Peer {
        let listener = TcpListener::bind(("127.0.0.1", 0)).expect("bind");
        let port = listener.local_addr().expect("local address").port();
        Peer {
            listener,
            port,
            conn: None,
            got: Vec::new(),
        }
    }

    /// Accepts chat's connection, waiting at most [`TIMEOUT`] (a chat
    /// that never connects fails the test instead of holding it).
    fn accept(&mut self) {
        self.listener.set_nonblocking(true).unwrap();
        let mut accepted = None;
        let ok = wait_until(TIMEOUT, || {
            accepted = self.listener.accept().ok();
            accepted.is_some()
        });
        assert!(ok, "chat never connected to port {}", self.port);
        let (conn, _) = accepted.expect("accepted");
        conn.set_nonblocking(false).unwrap();
        conn.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        self.conn = Some(conn);
    }

    fn conn(&mut self) -> &mut TcpStream {
        self.conn.as_mut().expect("accepted")
    }

    fn send(&mut self, bytes: &[u8]) {
        self.conn().write_all(bytes).expect("send to chat");
    }

    /// Waits until what chat sent ends with `text`.
    fn expect(&mut self, text: &str) {
        let ok = wait_until(TIMEOUT, || {
            let mut buf = [0u8; 4096];
            if let Ok(n) = self.conn().read(&mut buf) {
                let got = buf[..n].to_vec();
                self.got.extend(got);
            }
            self.got.ends_with(text.as_bytes())
        });
        assert!(
            ok,
            "the peer never got {text:?}; it got {:?}",
            String::from_utf8_lossy(&self.got)
        );
    }
}

/// A program in a tmux pane, wrapped by `sh` to record `stty -g`.
struct Session {
    tmux: Tmux,
    dir: tempfile::TempDir,
    /// The screen when the program ended ([`Session::finish`]).
    screen: String,
}

/// The pane's command: `command` between two `stty -g`, the second taken
/// once the file `go` exists.
fn wrapped(dir: &Path, command: &str) -> String {
    let d = quoted(&dir.to_string_lossy());
    format!(
        "stty -g > {d}/before; {command}; echo $? > {d}/status; \
         while [ ! -e {d}/go ]; do sleep 0.05; done; stty -g > {d}/after"
    )
}

impl Session {
    /// `chat ARGS` connected to `peer` in window `chat` (`cols` × 20).
    fn chat(peer: &mut Peer, args: &str, cols: u16) -> Session {
        Session::chat_env(peer, args, cols, "")
    }

    fn chat_env(peer: &mut Peer, args: &str, cols: u16, env: &str) -> Session {
        let dir = tempfile::tempdir().unwrap();
        let command = format!("{env} {}", chat_command(peer.port, args));
        let tmux = Tmux::start("chat", &wrapped(dir.path(), &command));
        if cols != 100 {
            tmux.resize("chat", cols, 20);
        }
        peer.accept();
        let session = Session {
            tmux,
            dir,
            screen: String::new(),
        };
        session.expect_last("chat>");
        session
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The processes of the program: the pane's `sh` runs it.
    fn program_pids(&self) -> Vec<u32> {
        let mut pids = children_of(self.tmux.pane_pid("chat"));
        let children: Vec<u32> = pids.iter().flat_map(|&p| children_of(p)).collect();
        pids.extend(children);
        pids
    }

    fn expect_last(&self, tail: &str) -> String {
        self.tmux
            .wait_for("chat", &format!("last line {tail:?}"), |s| {
                lines(s).last().is_some_and(|l| *l == tail)
            })
    }

    fn last_lines(&self, n: usize) -> Vec<String> {
        let screen = self.tmux.screen("chat");
        let all = lines(&screen);
        all[all.len().saturating_sub(n)..]
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    /// Waits for the program to end (every process gone), then for the
    /// second `stty -g`; returns the exit status and the modes before and
    /// after. [`Session::screen`] is the screen as the program left it.
    fn finish(&mut self, pids: &[u32]) -> (i32, String, String) {
        let status = self.path("status");
        assert!(
            wait_until(TIMEOUT, || status.exists()
                && pids.iter().all(|&p| !running(p))),
            "the program did not end; the screen:\n{}",
            self.tmux.screen("chat")
        );
        self.screen = self.tmux.screen("chat");
        std::fs::write(self.path("go"), "").unwrap();
        let after = self.path("after");
        assert!(wait_until(TIMEOUT, || std::fs::read_to_string(&after)
            .is_ok_and(|s| s.ends_with('\n'))));
        let read = |name| std::fs::read_to_string(self.path(name)).unwrap();
        let code = read("status").trim().parse().unwrap();
        (code, read("before"), read("after"))
    }
}

#[test]
fn the_half_typed_line_is_kept_while_1_10_and_100_lines_arrive() {
    let mut peer = Peer::new();
    let s = Session::chat(&mut peer, "", 100);
    s.tmux.type_text("chat", "oui, je suis en train de tap");
    s.tmux.keys("chat", &["Left", "Left", "Left"]);
    s.expect_last("chat> oui, je suis en train de tap");
    let row = s.tmux.cursor("chat").1;
    let mut sent = 0;
    for count in [1, 10, 100] {
        let mut text = String::new();
        for _ in 0..count {
            text.push_str(&format!("line {sent}\n"));
            sent += 1;
        }
        peer.send(text.as_bytes());
        let last = format!("line {}", sent - 1);
        let screen = s.tmux.wait_for("chat", &last, |s| s.contains(&last));
        let tail = lines(&screen);
        assert_eq!(
            &tail[tail.len() - 2..],
            [last.as_str(), "chat> oui, je suis en train de tap"],
            "{screen}"
        );
        let (x, y) = s.tmux.cursor("chat");
        assert_eq!(x, "chat> oui, je suis en train de ".len(), "{screen}");
        assert!(y >= row, "the cursor went up");
    }
    // Every line is on the screen once, whole: none was cut by the prompt.
    let screen = s.tmux.screen("chat");
    for i in sent - 19..sent {
        assert_eq!(
            lines(&screen)
                .iter()
                .filter(|l| **l == format!("line {i}"))
                .count(),
            1,
            "{screen}"
        );
    }
    // The cursor was in the middle: what is typed goes there.
    s.tmux.type_text("chat", "X");
    s.tmux.keys("chat", &["Enter"]);
    peer.expect("oui, je suis en train de Xtap\n");
    s.expect_last("chat>");
    let tail = s.last_lines(2);
    assert_eq!(tail[0], "chat> oui, je suis en train de Xtap");
}

#[test]
fn editing_keys_work_and_an_arriving_line_does_not_disturb_them() {
    let mut peer = Peer::new();
    let s = Session::chat(&mut peer, "", 100);
    s.tmux.type_text("chat", "hello wrld");
    s.tmux.keys("chat", &["Left", "Left", "Left"]);
    s.tmux.type_text("chat", "o");
    s.expect_last("chat> hello world");
    peer.send(b"an arriving line\n");
    s.tmux.expect_screen("chat", "an arriving line");
    // Home, Ctrl-A, End, Ctrl-E, Backspace, Delete, Ctrl-W, Ctrl-U.
    s.tmux.keys("chat", &["Home"]);
    s.tmux.type_text("chat", "> ");
    s.tmux.keys("chat", &["End", "BSpace", "C-a", "DC"]);
    s.expect_last("chat>  hello worl");
    s.tmux.keys("chat", &["C-e"]);
    s.tmux.type_text("chat", "d, you");
    s.tmux.keys("chat", &["C-w"]);
    s.tmux.type_text("chat", "all");
    s.expect_last("chat>  hello world, all");
    s.tmux.keys("chat", &["Enter"]);
    peer.expect(" hello world, all\n");
    // Ctrl-U empties the line; Up recalls the line sent.
    s.tmux.type_text("chat", "discard me");
    s.tmux.keys("chat", &["C-u", "Up"]);
    s.expect_last("chat>  hello world, all");
    s.tmux.keys("chat", &["Down"]);
    s.expect_last("chat>");
    s.tmux.keys("chat", &["Up", "Enter"]);
    peer.expect(" hello world, all\n hello world, all\n");
    assert!(
        !String::from_utf8_lossy(&peer.got).contains("discard"),
        "{:?}",
        peer.got
    );
}

#[test]
fn wide_characters_and_a_long_line_that_wraps() {
    let mut peer = Peer::new();
    let s = Session::chat(&mut peer, "", 40);
    let text = "日本語 café e\u{301}t\u{e9} 🙂 end";
    s.tmux.type_text("chat", text);
    s.expect_last(&format!("chat> {text}"));
    // Left over "end", the space and the emoji: the cursor is before 🙂.
    s.tmux
        .keys("chat", &["Left", "Left", "Left", "Left", "Left"]);
    let width = unicode_width::UnicodeWidthStr::width("chat> 日本語 café e\u{301}t\u{e9} ");
    // The keys are handled after tmux sends them: wait for the cursor.
    let moved = wait_until(TIMEOUT, || s.tmux.cursor("chat").0 == width);
    assert!(
        moved,
        "cursor at {:?}, not column {width}",
        s.tmux.cursor("chat")
    );
    s.tmux.keys("chat", &["End", "C-u"]);
    // Three rows at 40 columns, a wide character at a row's end.
    let long: String = std::iter::repeat_n("abc日", 16).collect();
    s.tmux.type_text("chat", &long);
    s.tmux.keys("chat", &["C-a", "Right", "Right"]);
    peer.send(b"arrives\n");
    let screen = s.tmux.expect_screen("chat", "arrives");
    let tail = lines(&screen);
    let rows = &tail[tail.len() - 3..];
    assert_eq!(tail[tail.len() - 4], "arrives", "{screen}");
    // Rows of at most 40 columns, a wide character never cut in two:
    // the first row stops at 39 columns, before a 日.
    assert_eq!(
        rows[0],
        format!("chat> {}abc", "abc日".repeat(6)),
        "{screen}"
    );
    assert_eq!(rows.concat(), format!("chat> {long}"), "{screen}");
    for row in rows {
        assert!(
            unicode_width::UnicodeWidthStr::width(*row) <= 40,
            "{screen}"
        );
    }
    let (x, y) = s.tmux.cursor("chat");
    assert_eq!(x, "chat> ab".len());
    let screen_rows: Vec<&str> = screen.lines().collect();
    assert!(screen_rows[y].starts_with("chat> abc"), "{screen}");
    s.tmux.keys("chat", &["Enter"]);
    peer.expect(&format!("{long}\n"));
}

#[test]
fn a_resize_redraws_the_line_at_the_new_width() {
    let mut peer = Peer::new();
    let s = Session::chat(&mut peer, "", 60);
    let long = "0123456789".repeat(8);
    s.tmux.type_text("chat", &long);
    s.tmux.wait_for("chat", "two rows", |screen| {
        lines(screen).ends_with(&[&format!("chat> {}", &long[..54]), &long[54..]])
    });
    // 25 columns: tmux rewraps the old rows (60 = 25 + 25 + 10, 26 = 25 + 1),
    // which is not the new layout; only a redraw gives it.
    s.tmux.resize("chat", 25, 20);
    let rows = [
        format!("chat> {}", &long[..19]),
        long[19..44].to_owned(),
        long[44..69].to_owned(),
        long[69..80].to_owned(),
    ];
    let rows: Vec<&str> = rows.iter().map(String::as_str).collect();
    let screen = s.tmux.wait_for("chat", "four rows of 25", |screen| {
        lines(screen).ends_with(&rows)
    });
    assert_eq!(
        screen.matches("chat>").count(),
        1,
        "a stale copy of the line is left:\n{screen}"
    );
    let all = lines(&screen);
    assert!(
        all[..all.len() - 4].iter().all(|l| l.starts_with("chat: ")),
        "rows of the old layout are left:\n{screen}"
    );
    peer.send(b"after the resize\n");
    let screen = s.tmux.expect_screen("chat", "after the resize");
    let tail = lines(&screen);
    assert_eq!(tail[tail.len() - 5..][0], "after the resize", "{screen}");
    assert!(tail.ends_with(&rows), "{screen}");
    assert_eq!(s.tmux.cursor("chat").0, 11);
}

#[test]
fn a_status_line_starts_on_a_fresh_line_after_text_without_a_newline() {
    let mut peer = Peer::new();
    let mut s = Session::chat(&mut peer, "", 100);
    peer.send(b"no newline at end");
    s.tmux
        .wait_for("chat", "the unfinished line above the prompt", |screen| {
            lines(screen).ends_with(&["no newline at end", "chat>"])
        });
    peer.send(b", now one\nand again no newline");
    s.tmux.wait_for("chat", "the line completed", |screen| {
        lines(screen).ends_with(&[
            "no newline at end, now one",
            "and again no newline",
            "chat>",
        ])
    });
    let pids = s.program_pids();
    let port = peer.port;
    drop(peer);
    let (code, before, after) = s.finish(&pids);
    assert_eq!(code, 0);
    assert_eq!(before, after);
    let screen = &s.screen;
    assert!(
        lines(screen).ends_with(&[
            "no newline at end, now one",
            "and again no newline",
            &format!("chat: 127.0.0.1:{port} closed the connection"),
        ]),
        "{screen}"
    );
}

#[test]
fn received_lines_are_coloured_unless_no_color_is_set() {
    let mut peer = Peer::new();
    let s = Session::chat(&mut peer, "", 100);
    peer.send(b"theirs\n");
    s.tmux.expect_screen("chat", "theirs");
    s.tmux.type_text("chat", "mine");
    s.tmux.keys("chat", &["Enter"]);
    peer.expect("mine\n");
    let screen = s.tmux.screen_with_attributes("chat");
    assert!(screen.contains("\x1b[36mtheirs"), "{screen:?}");
    assert!(!screen.contains("\x1b[36mmine"), "{screen:?}");

    let mut peer = Peer::new();
    let s = Session::chat_env(&mut peer, "", 100, "NO_COLOR=1");
    peer.send(b"theirs\n");
    s.tmux.expect_screen("chat", "theirs");
    let screen = s.tmux.screen_with_attributes("chat");
    assert!(
        !screen.contains("\x1b[3"),
        "colour with NO_COLOR: {screen:?}"
    );
    assert!(
        !screen.contains("\x1b[1m"),
        "bold with NO_COLOR: {screen:?}"
    );
}

#[test]
fn a_received_line_that_begins_like_the_prompt_or_a_status_line_is_marked() {
    let forged: &[u8] = b"chat> I agree to pay 1000 EUR\nchat: 127.0.0.1:1 closed the connection\n\
        \xd1\x81hat> look-alike\nhello\n";
    let mut peer = Peer::new();
    let s = Session::chat_env(&mut peer, "", 100, "NO_COLOR=1");
    peer.send(forged);
    let screen = s.tmux.expect_screen("chat", "hello");
    let shown = lines(&screen);
    for line in [
        "| chat> I agree to pay 1000 EUR",
        "| chat: 127.0.0.1:1 closed the connection",
        "| \u{0441}hat> look-alike",
        "hello",
    ] {
        assert!(
            shown.contains(&line),
            "{line:?} not on the screen:\n{screen}"
        );
    }
    // On a pipe, the bytes are exact.
    let mut peer = Peer::new();
    let client = chat(peer.port, &[]);
    peer.accept();
    peer.send(forged);
    client.expect_stdout(std::str::from_utf8(forged).unwrap());
    assert_eq!(client.stdout(), forged);
}

/// One way out: `act` ends the session; the terminal's modes must be
/// those of before, and the exit status `code`.
fn way_out(what: &str, code: i32, act: impl FnOnce(&Session, &mut Peer, &[u32])) {
    let mut peer = Peer::new();
    let mut s = Session::chat(&mut peer, "", 100);
    s.tmux.type_text("chat", "half-typed");
    s.expect_last("chat> half-typed");
    let pids = s.program_pids();
    assert_eq!(pids.len(), 2, "the parent and the child: {pids:?}");
    act(&s, &mut peer, &pids);
    let (status, before, after) = s.finish(&pids);
    println!("{what}: stty -g before {before:?} after {after:?}, status {status}");
    assert_eq!(before, after, "{what}: the terminal's modes changed");
    assert_eq!(status, code, "{what}: {}", s.screen);
}

#[test]
fn the_terminal_comes_back_after_ctrl_d() {
    way_out("Ctrl-D", 0, |s, peer, _| {
        // A session that sent something half-closes at end of input.
        s.tmux.keys("chat", &["Enter"]);
        peer.expect("half-typed\n");
        s.tmux.keys("chat", &["C-d"]);
        let mut buf = [0u8; 16];
        // chat half-closed: the peer reads end of file, then closes.
        assert!(wait_until(TIMEOUT, || matches!(
            peer.conn().read(&mut buf),
            Ok(0)
        )));
        peer.conn = None;
    });
}

#[test]
fn the_terminal_comes_back_after_the_peer_closes() {
    way_out("peer closes", 0, |_, peer, _| peer.conn = None);
}

#[test]
fn the_terminal_comes_back_after_bye() {
    way_out("bye", 0, |s, peer, _| {
        s.tmux.keys("chat", &["C-u"]);
        s.tmux.type_line("chat", "bye");
        peer.expect("bye\n");
    });
}

#[test]
fn the_terminal_comes_back_after_arret() {
    way_out("arret from the peer", 0, |_, peer, _| peer.send(b"arret\n"));
}

#[test]
fn the_terminal_comes_back_after_ctrl_c() {
    way_out("Ctrl-C", 130, |s, _, _| s.tmux.keys("chat", &["C-c"]));
}

#[test]
fn the_terminal_comes_back_after_sigterm() {
    way_out("SIGTERM", 143, |_, _, pids| {
        // SAFETY: kill(2) of the program's parent process.
        unsafe { libc::kill(pids[0] as i32, libc::SIGTERM) };
    });
}

#[test]
fn the_terminal_comes_back_after_sighup() {
    way_out("SIGHUP", 129, |_, _, pids| {
        // SAFETY: kill(2) of the program's parent process.
        unsafe { libc::kill(pids[0] as i32, libc::SIGHUP) };
    });
}

#[test]
fn the_terminal_comes_back_after_a_reset() {
    way_out("reset by the peer", 1, |_, peer, _| {
        reset_on_close(peer.conn());
        peer.conn = None;
    });
}

#[test]
fn the_terminal_comes_back_after_kill_9_of_the_child() {
    way_out("kill -9 of the child", 1, |_, _, pids| {
        // SAFETY: kill(2) of the program's receiving child.
        unsafe { libc::kill(pids[1] as i32, libc::SIGKILL) };
    });
}

#[test]
fn the_terminal_comes_back_after_kill_9_of_the_parent() {
    // The shell sees the parent killed by signal 9: 128 + 9.
    way_out("kill -9 of the parent", 137, |_, _, pids| {
        // SAFETY: kill(2) of the program's parent process.
        unsafe { libc::kill(pids[0] as i32, libc::SIGKILL) };
    });
}

/// An interactive shell with job control in tmux window `chat` (dash: it
/// does not restore the terminal's modes itself when a job stops, so the
/// test sees ours; and it reads what the terminal holds once its job
/// ends, as a person's shell does), which ran `stty -g > DIR/before;
/// chat 127.0.0.1 PORT` with `peer` on PORT: returned at chat's prompt.
fn chat_in_a_shell(peer: &mut Peer, dir: &Path) -> Tmux {
    let d = quoted(&dir.to_string_lossy());
    let tmux = Tmux::start("chat", "PS1='$ ' dash -i");
    tmux.expect_last_lines("chat", &["$"]);
    tmux.type_line(
        "chat",
        &format!("stty -g > {d}/before; {}", chat_command(peer.port, "")),
    );
    peer.accept();
    tmux.expect_last_lines("chat", &["chat>"]);
    tmux
}

#[test]
fn ctrl_z_gives_the_shell_a_working_terminal_and_fg_brings_the_line_back() {
    let mut peer = Peer::new();
    let dir = tempfile::tempdir().unwrap();
    let d = quoted(&dir.path().to_string_lossy());
    let tmux = chat_in_a_shell(&mut peer, dir.path());
    tmux.type_text("chat", "half-typed");
    tmux.expect_last_lines("chat", &["chat> half-typed"]);
    tmux.keys("chat", &["C-z"]);
    let screen = tmux.expect_screen("chat", "Stopped");
    assert!(!screen.contains("chat> half"), "the line stayed:\n{screen}");
    assert!(
        !screen.contains("(signal)"),
        "not stopped as by Ctrl-Z:\n{screen}"
    );
    // The shell echoes what is typed and runs it: the modes are back.
    tmux.type_line("chat", &format!("stty -g > {d}/during; echo shell works"));
    tmux.expect_screen("chat", &format!("$ stty -g > {d}/during; echo shell works"));
    tmux.expect_screen("chat", "\nshell works");
    let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap();
    assert_eq!(read("during"), read("before"));
    // fg: the editor is back, with the line and the cursor.
    tmux.type_line("chat", "fg");
    tmux.expect_last_lines("chat", &["chat> half-typed"]);
    assert_eq!(tmux.cursor("chat").0, "chat> half-typed".len());
    peer.send(b"while you were away\n");
    tmux.expect_last_lines("chat", &["while you were away", "chat> half-typed"]);
    tmux.keys("chat", &["Enter"]);
    peer.expect("half-typed\n");
    peer.conn = None;
    tmux.expect_last_lines("chat", &["$"]);
    tmux.type_line("chat", &format!("stty -g > {d}/after"));
    assert!(wait_until(TIMEOUT, || std::fs::read_to_string(
        dir.path().join("after")
    )
    .is_ok_and(|s| s.ends_with('\n'))));
    assert_eq!(read("after"), read("before"));
}

#[test]
fn a_refused_client_is_told_what_probably_happened_not_a_crash() {
    let (_server, port) = chatd(&["--deny", "127.0.0.1"]);
    let dir = tempfile::tempdir().unwrap();
    let tmux = Tmux::start("chat", &wrapped(dir.path(), &chat_command(port, "")));
    let screen = tmux.expect_screen("chat", "without a word");
    let status = dir.path().join("status");
    assert!(wait_until(TIMEOUT, || status.exists()));
    assert!(
        lines(&screen).ends_with(&[
            &format!("chat: connected to 127.0.0.1:{port}"),
            &format!(
                "chat: 127.0.0.1:{port} closed the connection without a word \
                 (not allowed from this address?)"
            ),
        ]),
        "{screen}"
    );
    std::fs::write(dir.path().join("go"), "").unwrap();
    let after = dir.path().join("after");
    assert!(wait_until(TIMEOUT, || std::fs::read_to_string(&after)
        .is_ok_and(|s| s.ends_with('\n'))));
    let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap();
    assert_eq!(read("status").trim(), "0");
    assert_eq!(read("before"), read("after"));
}

/// `chatd ARGS` in window `chatd` of a tmux of its own, wrapped to record
/// `stty -g`, listening on a port the kernel picks.
fn chatd_in_a_pane(args: &str) -> (Tmux, tempfile::TempDir, u16) {
    let dir = tempfile::tempdir().unwrap();
    let tmux = Tmux::start("chatd", &wrapped(dir.path(), &chatd_command(0, args)));
    let port = tmux.listening_port();
    tmux.expect_screen("chatd", &format!("chatd: listening on 127.0.0.1:{port}"));
    tmux.expect_last_lines("chatd", &["chatd>"]);
    (tmux, dir, port)
}

/// Waits for the wrapped program of `dir` (in window `window`) to end,
/// then returns its status, whether `stty -g` is the same as before, and
/// the screen it left.
fn ended(tmux: &Tmux, window: &str, dir: &Path) -> (String, bool, String) {
    let status = dir.join("status");
    assert!(wait_until(TIMEOUT, || status.exists()), "it did not end");
    let screen = tmux.screen(window);
    std::fs::write(dir.join("go"), "").unwrap();
    let after = dir.join("after");
    assert!(wait_until(TIMEOUT, || std::fs::read_to_string(&after)
        .is_ok_and(|s| s.ends_with('\n'))));
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap();
    (
        read("status").trim().to_owned(),
        read("before") == read("after"),
        screen,
    )
}

#[test]
fn chatd_with_nobody_connected_keeps_a_line_for_the_next_client_and_stops_on_arret() {
    let (tmux, dir, port) = chatd_in_a_pane("");
    tmux.type_line("chatd", "for whoever comes");
    tmux.expect_last_lines(
        "chatd",
        &[
            "chatd: nobody is connected: this line will go to the next client",
            "chatd> for whoever comes",
            "chatd>",
        ],
    );
    let client = socat(&["-", &format!("TCP:127.0.0.1:{port}")]);
    client.expect_stdout("for whoever comes\n");
    drop(client);
    tmux.expect_screen("chatd", "closed the connection");
    tmux.expect_last_lines("chatd", &["chatd>"]);
    // arret with nobody connected: stops at once, exit 0.
    tmux.type_line("chatd", "arret");
    let (status, same, screen) = ended(&tmux, "chatd", dir.path());
    assert_eq!(status, "0");
    assert!(same, "the terminal's modes changed");
    assert!(
        lines(&screen).ends_with(&["chatd> arret", "chatd: you said arret: server stopping"]),
        "{screen}"
    );
    assert!(!listening(port), "still listening");
}

#[test]
fn chatd_with_nobody_connected_shows_lines_in_the_order_typed_and_counts_the_unsent() {
    // "hello?" then "arret" with nobody connected: "hello?" stays above
    // "arret" (it was typed first), no client got it, and the exit status
    // says so.
    let (tmux, dir, port) = chatd_in_a_pane("");
    tmux.type_line("chatd", "hello?");
    tmux.expect_last_lines(
        "chatd",
        &[
            "chatd: nobody is connected: this line will go to the next client",
            "chatd> hello?",
            "chatd>",
        ],
    );
    tmux.type_line("chatd", "arret");
    let (status, same, screen) = ended(&tmux, "chatd", dir.path());
    assert_eq!(status, "1");
    assert!(same, "the terminal's modes changed");
    assert!(
        lines(&screen).ends_with(&[
            "chatd> hello?",
            "chatd> arret",
            "chatd: you said arret: server stopping; 1 line typed was not sent",
        ]),
        "{screen}"
    );
    assert!(!listening(port), "still listening");
}

#[test]
fn chatd_with_nobody_connected_ends_on_ctrl_d() {
    let (tmux, dir, port) = chatd_in_a_pane("");
    tmux.keys("chatd", &["C-d"]);
    let (status, same, screen) = ended(&tmux, "chatd", dir.path());
    assert_eq!(status, "0");
    assert!(same, "the terminal's modes changed");
    assert!(
        lines(&screen).ends_with(&["chatd: you ended your input (Ctrl-D): server stopping"]),
        "{screen}"
    );
    assert!(!listening(port));
}

#[test]
fn three_chat_clients_typing_at_once_in_a_room() {
    let (mut room, port) = chatd(&["--broker"]);
    let dir = tempfile::tempdir().unwrap();
    let names = ["alice", "bob", "carol"];
    let tmux = Tmux::start(
        "alice",
        &wrapped(dir.path(), &chat_command(port, "--name alice")),
    );
    tmux.expect_last_lines("alice", &["-!- you are now alice", "chat>"]);
    for name in &names[1..] {
        tmux.new_window(name, &chat_command(port, &format!("--name {name}")));
        tmux.expect_last_lines(name, &[&format!("-!- you are now {name}"), "chat>"]);
    }
    // Everyone starts a line; then each in turn finishes theirs, while the
    // others' half-typed lines must stay whole.
    for name in names {
        tmux.type_text(name, &format!("{name} is typing a long sent"));
    }
    for name in names {
        tmux.type_line(name, "ence");
        for other in names {
            let line = format!("[{name}] {name} is typing a long sentence");
            if other == name {
                tmux.expect_screen(other, &format!("chat> {name} is typing a long sentence"));
            } else {
                tmux.expect_screen(other, &line);
            }
        }
    }
    for name in names {
        let screen = tmux.screen(name);
        let tail: Vec<&str> = lines(&screen);
        let tail = &tail[tail.len() - 3..];
        // In each transcript the three lines appear in the order they were
        // sent, one's own behind the prompt, then the empty prompt.
        let expected: Vec<String> = names
            .iter()
            .map(|who| {
                if *who == name {
                    format!("chat> {who} is typing a long sentence")
                } else {
                    format!("[{who}] {who} is typing a long sentence")
                }
            })
            .collect();
        let all = lines(&screen);
        let at: Vec<usize> = expected
            .iter()
            .map(|e| all.iter().position(|l| l == e).expect("line shown"))
            .collect();
        assert!(at.windows(2).all(|w| w[0] < w[1]), "{name}:\n{screen}");
        assert_eq!(tail[2], "chat>", "{name}:\n{screen}");
        println!("--- {name}\n{screen}");
    }
    room.send(b"arret\n");
    let (status, same, _) = ended(&tmux, "alice", dir.path());
    assert!(same, "the terminal's modes changed");
    assert_eq!(status, "0");
}

/// Ctrl-D on an empty line, then a shell command typed as if the chat
/// still took lines, then the peer ends the session with `bye`: the shell
/// that ran `chat` must never run the command (the terminal's input
/// queue is flushed before its modes come back), nor show it.
#[test]
fn a_command_typed_after_ctrl_d_never_reaches_the_shell() {
    let mut peer = Peer::new();
    let dir = tempfile::tempdir().unwrap();
    let d = quoted(&dir.path().to_string_lossy());
    let tmux = chat_in_a_shell(&mut peer, dir.path());
    tmux.keys("chat", &["C-d"]);
    prompt_gone(&tmux, "chat");
    // The command, typed in two lines (and a bare Enter) after Ctrl-D.
    tmux.type_line("chat", &format!("echo RAN-IN-SHELL > {d}/ran"));
    tmux.type_line("chat", &format!("touch {d}/touched"));
    tmux.keys("chat", &["Enter"]);
    // The session goes on: the peer's lines still arrive.
    peer.send(b"still here\n");
    tmux.expect_screen("chat", "still here");
    peer.send(b"bye\n");
    tmux.expect_screen("chat", "chat: peer said bye: session ended");
    // Whatever the shell was handed, it has run once this one has.
    tmux.type_line("chat", &format!("stty -g > {d}/after; echo SHELL-READY"));
    let screen = tmux.expect_screen("chat", "\nSHELL-READY");
    assert!(
        !dir.path().join("ran").exists() && !dir.path().join("touched").exists(),
        "the shell ran what was typed after Ctrl-D:\n{screen}"
    );
    assert!(
        !screen.contains("RAN-IN-SHELL") && !screen.contains("touched"),
        "what was typed after Ctrl-D was shown:\n{screen}"
    );
    assert!(
        screen.contains(&format!(
            "chat: input ended; still receiving from 127.0.0.1:{} (Ctrl-C to quit)",
            peer.port
        )),
        "no status line for the end of input:\n{screen}"
    );
    let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap();
    assert_eq!(
        read("after"),
        read("before"),
        "the terminal's modes changed"
    );
    // The peer got nothing but end of file: nothing typed was sent.
    let mut rest = Vec::new();
    peer.conn().set_read_timeout(Some(TIMEOUT)).unwrap();
    let _ = peer.conn().read_to_end(&mut rest);
    assert!(rest.is_empty(), "sent after Ctrl-D: {rest:?}");
}

/// The same when `SIGTERM` ends `chat`: keys typed after Ctrl-D wait
/// unread, and this way out flushes them too. (Ctrl-C would not test it:
/// the terminal itself flushes its input queue on the interrupt key.)
#[test]
fn keys_typed_after_ctrl_d_are_flushed_when_sigterm_ends_chat() {
    let mut peer = Peer::new();
    let dir = tempfile::tempdir().unwrap();
    let d = quoted(&dir.path().to_string_lossy());
    let tmux = chat_in_a_shell(&mut peer, dir.path());
    tmux.keys("chat", &["C-d"]);
    prompt_gone(&tmux, "chat");
    tmux.type_line("chat", &format!("touch {d}/touched"));
    let shell = tmux.pane_pid("chat");
    let chat = children_of(shell);
    assert_eq!(chat.len(), 1, "the shell runs chat: {chat:?}");
    // SAFETY: kill(2) of chat's parent process.
    unsafe { libc::kill(chat[0] as i32, libc::SIGTERM) };
    assert!(wait_until(TIMEOUT, || !running(chat[0])), "chat still runs");
    tmux.type_line("chat", "echo SHELL-READY");
    let screen = tmux.expect_screen("chat", "\nSHELL-READY");
    assert!(
        !dir.path().join("touched").exists(),
        "the shell ran what was typed after Ctrl-D:\n{screen}"
    );
    assert!(
        screen.contains("chat: input ended; still receiving from"),
        "{screen}"
    );
}

/// Waits until the prompt of `window` (`chat>`, `chatd>`) is no longer
/// the last line: the program took the Ctrl-D just typed.
fn prompt_gone(tmux: &Tmux, window: &str) {
    let prompt = format!("{window}>");
    tmux.wait_for(window, "the prompt go", |s| {
        lines(s).last().is_some_and(|l| *l != prompt)
    });
}

/// `chatd` on a terminal: Ctrl-D in the middle of a session says that
/// the session goes on; a line typed after it is not sent to this client
/// nor kept for the next one.
#[test]
fn chatd_keeps_nothing_typed_after_ctrl_d_for_the_next_client() {
    let (tmux, dir, port) = chatd_in_a_pane("");
    let mut first = TcpStream::connect(("127.0.0.1", port)).unwrap();
    tmux.expect_screen("chatd", "chatd: connection from 127.0.0.1:");
    tmux.keys("chatd", &["C-d"]);
    prompt_gone(&tmux, "chatd");
    tmux.type_line("chatd", "typed after ctrl-d");
    // The client still talks to chatd.
    first.write_all(b"hello chatd\n").unwrap();
    tmux.expect_screen("chatd", "hello chatd");
    drop(first);
    tmux.expect_screen("chatd", "closed the connection");
    tmux.expect_last_lines("chatd", &["chatd>"]);
    let mut second = TcpStream::connect(("127.0.0.1", port)).unwrap();
    tmux.wait_for("chatd", "the second connection", |s| {
        s.matches("connection from").count() == 2
    });
    tmux.type_line("chatd", "for the second client");
    let mut got = Vec::new();
    read_until(&mut second, &mut got, b"for the second client\n");
    assert_eq!(
        String::from_utf8_lossy(&got),
        "for the second client\n",
        "a line typed after Ctrl-D was kept for the next client"
    );
    tmux.type_line("chatd", "arret");
    let (status, same, screen) = ended(&tmux, "chatd", dir.path());
    assert_eq!(status, "0", "{screen}");
    assert!(same, "the terminal's modes changed");
    assert!(!screen.contains("typed after ctrl-d"), "{screen}");
    assert!(
        screen.lines().any(|l| l
            .starts_with("chatd: input ended; still receiving from 127.0.0.1:")
            && l.ends_with(" (Ctrl-C to quit)")),
        "{screen}"
    );
}

/// A person types at `chatd`, busy with a first client: a `chat` that
/// connects is told that it waits and that it is next (a status line on
/// its terminal), then that its session starts; a plain TCP client after
/// it reads the notices as lines (`-!- …`), its place moving up when the
/// line does. What `chat` typed while waiting reaches `chatd` when its
/// turn comes.
#[test]
fn a_client_of_a_busy_chatd_is_told_it_waits_and_when_its_turn_comes() {
    let (tmux, dir, port) = chatd_in_a_pane("");
    let first = TcpStream::connect(("127.0.0.1", port)).unwrap();
    tmux.expect_screen("chatd", "chatd: connection from 127.0.0.1:");
    tmux.new_window("chat", &chat_command(port, ""));
    tmux.expect_last_lines(
        "chat",
        &[
            &format!("chat: 127.0.0.1:{port} is busy with another session; you are next"),
            "chat>",
        ],
    );
    tmux.type_line("chat", "typed while waiting");
    let mut third = TcpStream::connect(("127.0.0.1", port)).unwrap();
    third
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut got = Vec::new();
    read_until(
        &mut third,
        &mut got,
        "-!- chatd is busy with another session; 1 client waits before you\n".as_bytes(),
    );
    tmux.wait_for("chatd", "two waiting", |s| s.contains("(2 waiting)"));
    drop(first);
    tmux.expect_screen(
        "chat",
        &format!("chat: your session with 127.0.0.1:{port} starts"),
    );
    tmux.expect_screen("chatd", "typed while waiting");
    read_until(
        &mut third,
        &mut got,
        "-!- chatd is busy with another session; you are next\n".as_bytes(),
    );
    tmux.type_line("chatd", "hello, second client");
    tmux.expect_last_lines("chat", &["hello, second client", "chat>"]);
    tmux.type_line("chat", "bye");
    tmux.expect_screen("chatd", "said bye");
    // The third one's session starts in turn.
    read_until(
        &mut third,
        &mut got,
        "-!- your session with chatd starts now\n".as_bytes(),
    );
    tmux.type_line("chatd", "arret");
    let (status, same, _) = ended(&tmux, "chatd", dir.path());
    assert_eq!(status, "0");
    assert!(same, "the terminal's modes changed");
}

/// `chat host > file` while it waits for a busy, typing `chatd`: the
/// notices go to standard error as status lines, and standard output has
/// only what the person at `chatd` typed, byte for byte.
#[test]
fn the_notices_never_reach_chats_standard_output() {
    let (tmux, dir, port) = chatd_in_a_pane("");
    let first = TcpStream::connect(("127.0.0.1", port)).unwrap();
    tmux.expect_screen("chatd", "chatd: connection from 127.0.0.1:");
    let mut waiting = chat(port, &["-d"]);
    waiting.expect_stderr("is busy with another session; you are next");
    drop(first);
    waiting.expect_stderr("your session with 127.0.0.1:");
    tmux.expect_last_lines("chatd", &["chatd>"]);
    tmux.type_line("chatd", "only this");
    waiting.expect_stdout("only this\n");
    tmux.type_line("chatd", "arret");
    let (status, _, _) = ended(&tmux, "chatd", dir.path());
    assert_eq!(status, "0");
    assert_eq!(waiting.wait(), 0, "{}", waiting.dump());
    assert_eq!(
        waiting.stdout_text(),
        "only this\narret\n",
        "{}",
        waiting.dump()
    );
    assert_eq!(
        waiting.stderr_text(),
        format!(
            "chat: connected to 127.0.0.1:{port}\n\
             chat: 127.0.0.1:{port} is busy with another session; you are next\n\
             chat: your session with 127.0.0.1:{port} starts\n\
             chat: peer said arret: session ended\n"
        )
    );
}

/// `chat ARGS` in tmux with `XDG_STATE_HOME` = `state`, connected to a
/// peer of the test: the session, at its prompt, and the peer.
fn chat_with_history(state: &Path, args: &str) -> (Session, Peer) {
    let mut peer = Peer::new();
    let env = format!("XDG_STATE_HOME={}", quoted(&state.to_string_lossy()));
    let s = Session::chat_env(&mut peer, args, 100, &env);
    (s, peer)
}

/// Ends a [`chat_with_history`] run: the peer closes.
fn end_chat(mut s: Session, mut peer: Peer) {
    let pids = s.program_pids();
    peer.conn = None;
    let (status, before, after) = s.finish(&pids);
    assert_eq!(status, 0, "{}", s.screen);
    assert_eq!(before, after);
}

#[test]
fn lines_typed_in_one_run_are_recalled_with_up_in_the_next() {
    use std::os::unix::fs::PermissionsExt;
    let state = tempfile::tempdir().unwrap();
    let (s, mut peer) = chat_with_history(state.path(), "");
    for line in ["first line", "second line"] {
        s.tmux.type_line("chat", line);
        peer.expect(&format!("{line}\n"));
    }
    end_chat(s, peer);
    let file = state.path().join("chat/history");
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "first line\nsecond line\n"
    );
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&file), 0o600, "the history file is private");
    assert_eq!(mode(file.parent().unwrap()), 0o700);
    assert!(!state.path().join("chat/chatd_history").exists());
    // The next run: Up goes through the lines of the last one.
    let (s, mut peer) = chat_with_history(state.path(), "");
    s.tmux.keys("chat", &["Up"]);
    s.expect_last("chat> second line");
    s.tmux.keys("chat", &["Up"]);
    s.expect_last("chat> first line");
    s.tmux.keys("chat", &["Enter"]);
    peer.expect("first line\n");
    s.tmux.type_line("chat", "third line");
    peer.expect("third line\n");
    end_chat(s, peer);
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "first line\nsecond line\nfirst line\nthird line\n"
    );
}

#[test]
fn no_history_neither_reads_nor_writes_the_file() {
    let state = tempfile::tempdir().unwrap();
    let (s, mut peer) = chat_with_history(state.path(), "--no-history");
    s.tmux.type_line("chat", "not kept");
    peer.expect("not kept\n");
    // Up still recalls the lines of this run.
    s.tmux.keys("chat", &["Up"]);
    s.expect_last("chat> not kept");
    end_chat(s, peer);
    assert!(
        !state.path().join("chat").exists(),
        "--no-history wrote the history"
    );
    // A history that exists is not read either.
    std::fs::create_dir_all(state.path().join("chat")).unwrap();
    std::fs::write(state.path().join("chat/history"), "from before\n").unwrap();
    let (s, peer) = chat_with_history(state.path(), "--no-history");
    s.tmux.keys("chat", &["Up"]);
    // Up with nothing to recall changes nothing: the bare prompt stays.
    s.tmux.type_text("chat", "x");
    s.expect_last("chat> x");
    end_chat(s, peer);
    assert_eq!(
        std::fs::read_to_string(state.path().join("chat/history")).unwrap(),
        "from before\n"
    );
}

#[test]
fn chatd_keeps_its_own_history_file() {
    let state = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let command = format!(
        "XDG_STATE_HOME={} {}",
        quoted(&state.path().to_string_lossy()),
        chatd_command(0, "")
    );
    let tmux = Tmux::start("chatd", &wrapped(dir.path(), &command));
    tmux.expect_last_lines("chatd", &["chatd>"]);
    tmux.keys("chatd", &["Up"]);
    tmux.type_line("chatd", "for the next client");
    tmux.expect_screen("chatd", "this line will go to the next client");
    tmux.type_line("chatd", "arret");
    let (status, same, screen) = ended(&tmux, "chatd", dir.path());
    assert_eq!(status, "1", "{screen}");
    assert!(same);
    assert_eq!(
        std::fs::read_to_string(state.path().join("chat/chatd_history")).unwrap(),
        "for the next client\narret\n"
    );
    assert!(!state.path().join("chat/history").exists());
}

/// Tab: sent as one tab byte, shown as the same blanks while typed and
/// once sent (stops every 8 columns from the start of the text, after the
/// 6 columns of `chat> `), never as `^I`.
#[test]
fn a_tab_is_shown_the_same_while_typed_and_once_sent() {
    let mut peer = Peer::new();
    let s = Session::chat(&mut peer, "", 100);
    s.tmux.type_text("chat", "a");
    s.tmux.keys("chat", &["Tab"]);
    s.tmux.type_text("chat", "b");
    let typing = s.expect_last("chat> a       b");
    assert!(!typing.contains("^I"), "{typing}");
    s.tmux.keys("chat", &["Enter"]);
    peer.expect("a\tb\n");
    let sent = s.expect_last("chat>");
    assert!(
        lines(&sent).ends_with(&["chat> a       b", "chat>"]),
        "the line sent is not shown as it was typed:\n{sent}"
    );
}

/// A member of a room: a socket of the test that took `name`.
struct Member {
    conn: TcpStream,
    got: Vec<u8>,
}

impl Member {
    fn join(port: u16, name: &str) -> Member {
        let mut conn = TcpStream::connect(("127.0.0.1", port)).unwrap();
        conn.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        conn.write_all(format!("/nick {name}\n").as_bytes())
            .unwrap();
        let mut member = Member {
            conn,
            got: Vec::new(),
        };
        member.expect(&format!("-!- you are now {name}\n"));
        member
    }

    /// Waits until what the room sent ends with `tail`.
    fn expect(&mut self, tail: &str) {
        read_until(&mut self.conn, &mut self.got, tail.as_bytes());
    }

    /// Waits for end of file; returns all that was received.
    fn until_closed(&mut self) -> String {
        let ok = wait_until(TIMEOUT, || {
            let mut buf = [0u8; 1024];
            match self.conn.read(&mut buf) {
                Ok(0) => true,
                Ok(n) => {
                    self.got.extend_from_slice(&buf[..n]);
                    false
                }
                Err(_) => false,
            }
        });
        assert!(
            ok,
            "never closed; got {:?}",
            String::from_utf8_lossy(&self.got)
        );
        String::from_utf8_lossy(&self.got).into_owned()
    }
}

/// `chatd --broker` on a terminal: the operator types at the same line
/// editor as one-to-one `chatd`, with its prompt; the room's lines arrive
/// above the line being typed; `/who`, `/msg`, `/kick` and `/quit` are
/// commands, never relayed; `--name` names the operator's lines.
#[test]
fn the_rooms_operator_types_at_the_line_editor_and_has_commands() {
    let (tmux, dir, port) = chatd_in_a_pane("--broker --name teacher");
    let mut alice = Member::join(port, "alice");
    tmux.type_text("chatd", "the exam starts at");
    tmux.expect_last_lines("chatd", &["chatd> the exam starts at"]);
    alice.conn.write_all(b"question about the exam?\n").unwrap();
    tmux.expect_last_lines(
        "chatd",
        &[
            "[alice] question about the exam?",
            "chatd> the exam starts at",
        ],
    );
    assert_eq!(
        tmux.cursor("chatd").0,
        "chatd> the exam starts at".len(),
        "the cursor moved"
    );
    tmux.type_line("chatd", " 10am");
    alice.expect("[teacher] the exam starts at 10am\n");
    tmux.type_line("chatd", "/who");
    tmux.expect_last_lines("chatd", &["chatd> /who", "-!- 1 present: alice", "chatd>"]);
    tmux.type_line("chatd", "/msg alice see me after class");
    alice.expect("[teacher (private)] see me after class\n");
    tmux.expect_screen("chatd", "-!- to alice: see me after class");
    let mut bob = Member::join(port, "bob");
    tmux.type_line("chatd", "/kick alice too noisy");
    let alice_got = alice.until_closed();
    assert!(
        alice_got.ends_with("-!- you were kicked by teacher (too noisy)\n"),
        "{alice_got}"
    );
    assert!(
        !alice_got.contains("/who"),
        "a command was relayed: {alice_got}"
    );
    bob.expect("-!- alice was kicked by teacher (too noisy)\n");
    tmux.expect_screen("chatd", "-!- alice was kicked by teacher (too noisy)");
    tmux.type_line("chatd", "/quit");
    let bob_got = bob.until_closed();
    assert!(
        bob_got.ends_with("-!- teacher closed the room\n"),
        "{bob_got}"
    );
    let (status, same, screen) = ended(&tmux, "chatd", dir.path());
    assert_eq!(status, "0", "{screen}");
    assert!(same, "the terminal's modes changed");
}

/// Ctrl-D at the room's operator ends its input only: a status line says
/// so, the room goes on, and what is typed after it is neither relayed nor
/// left for the shell.
#[test]
fn the_rooms_operator_ends_its_input_and_the_room_goes_on() {
    let (tmux, dir, port) = chatd_in_a_pane("--broker");
    let mut alice = Member::join(port, "alice");
    tmux.keys("chatd", &["C-d"]);
    tmux.expect_screen(
        "chatd",
        "chatd: input ended; the room goes on (Ctrl-C closes it)",
    );
    tmux.type_line("chatd", "typed after ctrl-d");
    let mut bob = Member::join(port, "bob");
    bob.conn.write_all(b"still talking\n").unwrap();
    alice.expect("[bob] still talking\n");
    tmux.expect_screen("chatd", "[bob] still talking");
    tmux.keys("chatd", &["C-c"]);
    let (status, same, screen) = ended(&tmux, "chatd", dir.path());
    assert_eq!(status, "130", "{screen}");
    assert!(same, "the terminal's modes changed");
    let got = alice.until_closed();
    assert!(!got.contains("typed after"), "{got}");
    assert!(!screen.contains("typed after"), "{screen}");
}

//! The line editor of a person at a terminal (issue 13), on a real
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

    fn accept(&mut self) {
        let (conn, _) = self.listener.accept().expect("accept");
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

#[test]
fn ctrl_z_gives_the_shell_a_working_terminal_and_fg_brings_the_line_back() {
    let mut peer = Peer::new();
    let dir = tempfile::tempdir().unwrap();
    let d = quoted(&dir.path().to_string_lossy());
    // An interactive shell with job control (dash: it does not restore
    // the terminal's modes itself when a job stops, so the test sees ours).
    let tmux = Tmux::start("chat", "PS1='$ ' dash -i");
    tmux.expect_last_lines("chat", &["$"]);
    tmux.type_line(
        "chat",
        &format!("stty -g > {d}/before; {}", chat_command(peer.port, "")),
    );
    peer.accept();
    tmux.expect_last_lines("chat", &["chat>"]);
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

//! "A peer cannot take over your terminal" and the lockstep turn indicator,
//! seen on a real terminal. tmux is the terminal: each test runs the real
//! `chat` or `chatd` in a detached tmux pane of a fixed size (its standard
//! input, output and error are the pane's pseudo-terminal), with `socat` as
//! the peer on 127.0.0.1, and reads back what a person would see: the
//! screen (`capture-pane -p`) and the title (`#{pane_title}`, which the
//! OSC 0/2 escape sequences set).

mod util;

use std::process::Command;
use std::thread;
use std::time::Duration;

use util::*;

/// How long a negative check waits after its last positive checkpoint.
const QUIET_SPELL: Duration = Duration::from_secs(1);

/// The lockstep indicator shown while it is the peer's turn.
const WAITING: &str = "(waiting for peer...)";

/// A tmux server of the test's own (socket `chat-test-PORT`), holding one
/// detached session `t` of 100×30 cells. Dropping it kills the server,
/// waits for it to end and removes its socket, even when the test failed.
struct Tmux {
    socket: String,
    /// The server's pid and socket file, once known.
    server: Option<(u32, String)>,
}

impl Tmux {
    /// Starts the server with window `window` running `command` (a `sh -c`
    /// command line). Panes stay on screen after their command exits.
    fn start(port: u16, window: &str, command: &str) -> Tmux {
        let mut tmux = Tmux {
            socket: format!("chat-test-{port}"),
            server: None,
        };
        tmux.run(&[
            "start-server",
            ";",
            "set-option",
            "-g",
            "remain-on-exit",
            "on",
            ";",
            "new-session",
            "-d",
            "-s",
            "t",
            "-n",
            window,
            "-x",
            "100",
            "-y",
            "30",
            command,
        ]);
        let info = tmux.run(&["display-message", "-p", "-t", "t", "#{pid} #{socket_path}"]);
        let (pid, path) = info
            .trim_end()
            .split_once(' ')
            .expect("pid and socket path");
        tmux.server = Some((pid.parse().expect("tmux server pid"), path.to_owned()));
        tmux
    }

    /// Opens window `window` running `command` in the same session.
    fn new_window(&self, window: &str, command: &str) {
        self.run(&["new-window", "-d", "-t", "t", "-n", window, command]);
    }

    /// Runs one tmux command against this server; panics if it fails.
    fn run(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .args(["-u", "-L", &self.socket, "-f", "/dev/null"])
            .args(args)
            .env_remove("TMUX")
            .output()
            .unwrap_or_else(|e| panic!("run tmux (scripts/test installs it): {e}"));
        assert!(
            out.status.success(),
            "tmux {args:?}: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("tmux output is UTF-8")
    }

    /// What the pane of `window` shows, one line per row, trailing blanks
    /// trimmed by tmux.
    fn screen(&self, window: &str) -> String {
        self.run(&["capture-pane", "-p", "-t", &format!("t:{window}")])
    }

    /// A format variable of the pane of `window`, such as `pane_title`.
    fn pane(&self, window: &str, variable: &str) -> String {
        let format = format!("#{{{variable}}}");
        let out = self.run(&[
            "display-message",
            "-p",
            "-t",
            &format!("t:{window}"),
            &format,
        ]);
        out.trim_end_matches('\n').to_owned()
    }

    /// The title of the pane of `window`.
    fn title(&self, window: &str) -> String {
        self.pane(window, "pane_title")
    }

    fn set_title(&self, window: &str, title: &str) {
        self.run(&["select-pane", "-t", &format!("t:{window}"), "-T", title]);
        assert_eq!(self.title(window), title);
    }

    /// Types `text` then Enter in the pane of `window`, as a person would.
    fn type_line(&self, window: &str, text: &str) {
        let target = format!("t:{window}");
        self.run(&["send-keys", "-t", &target, "-l", text]);
        self.run(&["send-keys", "-t", &target, "Enter"]);
    }

    /// Polls the screen of `window` until `done` holds (at most
    /// [`TIMEOUT`]) and returns it; panics with the screen if it never does.
    fn wait_for(&self, window: &str, what: &str, done: impl Fn(&str) -> bool) -> String {
        let mut screen = String::new();
        let ok = wait_until(TIMEOUT, || {
            screen = self.screen(window);
            done(&screen)
        });
        assert!(
            ok,
            "{window}: never saw {what}; the screen (title {:?}):\n{screen}",
            self.title(window)
        );
        screen
    }

    /// Waits until the screen of `window` contains `text`, and returns it.
    fn expect_screen(&self, window: &str, text: &str) -> String {
        self.wait_for(window, &format!("{text:?}"), |s| s.contains(text))
    }

    /// Waits until the last non-blank lines of `window` are `tail`.
    fn expect_last_lines(&self, window: &str, tail: &[&str]) -> String {
        self.wait_for(window, &format!("last lines {tail:?}"), |s| {
            lines(s).ends_with(tail)
        })
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "-f", "/dev/null", "kill-server"])
            .env_remove("TMUX")
            .output();
        // tmux takes a second or two to exit; a test started right after
        // on the same socket would talk to the dying server.
        if let Some((pid, path)) = &self.server {
            let gone = wait_until(TIMEOUT, || !running(*pid));
            if gone {
                let _ = std::fs::remove_file(path);
            } else if !thread::panicking() {
                panic!("tmux server {pid} still running after kill-server");
            }
        }
    }
}

/// Whether process `pid` exists and is not a zombie.
fn running(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rfind(')')
            .and_then(|i| stat.get(i + 2..i + 3))
            .is_some_and(|state| state != "Z"),
        Err(_) => false,
    }
}

/// The non-blank lines of a screen.
fn lines(screen: &str) -> Vec<&str> {
    screen.lines().filter(|l| !l.trim().is_empty()).collect()
}

/// `path` quoted for the `sh -c` command line of a tmux pane.
fn quoted(path: &str) -> String {
    format!("'{}'", path.replace('\'', r"'\''"))
}

/// `chat ARGS 127.0.0.1 PORT`, as a pane's command line.
fn chat_command(port: u16, args: &str) -> String {
    format!("{} {args} 127.0.0.1 {port}", quoted(CHAT))
}

/// `chatd ARGS` listening on 127.0.0.1:PORT, as a pane's command line.
fn chatd_command(port: u16, args: &str) -> String {
    format!("{} {args} -b 127.0.0.1 -p {port}", quoted(CHATD))
}

/// A socat server on a free port (the test writes what it sends) and a
/// `chat ARGS` connected to it in tmux window `chat`, its title `before`.
fn chat_in_a_pane(args: &str) -> (Proc, Tmux) {
    let port = free_port();
    let peer = socat_server(port, "-");
    let tmux = Tmux::start(port, "chat", &chat_command(port, args));
    tmux.expect_screen("chat", &format!("chat: connected to 127.0.0.1:{port}"));
    tmux.set_title("chat", "before");
    (peer, tmux)
}

/// The payload of the attack: set the window title, then clear the screen.
const TAKEOVER: &[u8] = b"\x1b]0;pwned\x07\x1b[2J";

#[test]
fn a_peer_can_neither_retitle_the_window_nor_clear_the_screen() {
    let (mut peer, tmux) = chat_in_a_pane("");
    peer.send(b"visible line\n");
    tmux.expect_screen("chat", "visible line");
    assert_eq!(tmux.title("chat"), "before");

    peer.send(TAKEOVER);
    peer.send(b"after\n");
    // The terminal handles bytes in order: once "after" is shown, the
    // escape sequences before it have had whatever effect they have.
    let screen = tmux.expect_screen("chat", "after");
    assert_eq!(tmux.title("chat"), "before", "the peer set the title");
    assert!(
        screen.contains("visible line"),
        "the peer cleared the screen:\n{screen}"
    );
    assert!(
        screen.contains("^[]0;pwned^G^[[2Jafter"),
        "the escape sequences are not shown in caret notation:\n{screen}"
    );
}

// The control: the same attack with --raw (no terminal cleaning) works,
// so the test above can fail and tmux does follow OSC 0 and ED 2.
#[test]
fn with_raw_the_same_peer_does_retitle_the_window_and_clear_the_screen() {
    let (mut peer, tmux) = chat_in_a_pane("--raw");
    peer.send(b"visible line\n");
    tmux.expect_screen("chat", "visible line");
    assert_eq!(tmux.title("chat"), "before");

    peer.send(TAKEOVER);
    peer.send(b"after\n");
    let screen = tmux.expect_screen("chat", "after");
    assert_eq!(tmux.title("chat"), "pwned", "OSC 0 did not reach tmux");
    assert!(
        !screen.contains("visible line") && !screen.contains("^["),
        "ED 2 did not reach tmux:\n{screen}"
    );
}

#[test]
fn crlf_from_a_peer_is_a_plain_newline_and_a_lone_cr_is_shown() {
    let (mut peer, tmux) = chat_in_a_pane("");
    peer.send(b"one\r\ntwo\r\n");
    peer.send(b"abc\rX\n");
    let screen = tmux.expect_screen("chat", "abc^MX");
    assert!(
        lines(&screen)
            .windows(3)
            .any(|w| w == ["one", "two", "abc^MX"]),
        "not one line each:\n{screen}"
    );
    assert_eq!(screen.matches("^M").count(), 1, "{screen}");
    assert!(!screen.contains("Xbc"), "the lone CR moved the cursor");
}

#[test]
fn eight_bit_csi_is_shown_and_utf8_text_passes_unchanged() {
    let (mut peer, tmux) = chat_in_a_pane("");
    peer.send(b"\x9b2J");
    peer.send("café 日本 🙂\n".as_bytes());
    // C1 CSI written as UTF-8, and a right-to-left override (Trojan Source).
    peer.send("\u{9b}2J \u{202e}evil\n".as_bytes());
    let screen = tmux.expect_screen("chat", "evil");
    assert!(
        lines(&screen).ends_with(&[r"\x9b2Jcafé 日本 🙂", "<U+009B>2J <U+202E>evil"]),
        "{screen}"
    );
}

#[test]
fn chat_a_shows_whose_turn_it_is() {
    let (mut peer, tmux) = chat_in_a_pane("-a");
    // The client speaks first: its prompt, and no waiting yet.
    let screen = tmux.expect_last_lines("chat", &["chat>"]);
    assert!(!screen.contains(WAITING), "{screen}");

    tmux.type_line("chat", "hello");
    peer.expect_stdout("hello\n");
    tmux.expect_last_lines("chat", &["chat> hello", WAITING]);

    peer.send(b"reply\n");
    tmux.expect_last_lines("chat", &["chat> hello", WAITING, "reply", "chat>"]);
    assert_eq!(peer.stdout_text(), "hello\n");
}

#[test]
fn chatd_a_waits_for_the_client_first_then_prompts() {
    let port = free_port();
    let tmux = Tmux::start(port, "chatd", &chatd_command(port, "-a"));
    tmux.expect_screen("chatd", &format!("chatd: listening on 127.0.0.1:{port}"));
    let mut peer = socat(&["-", &format!("TCP:127.0.0.1:{port}")]);
    let screen = tmux.expect_last_lines("chatd", &[WAITING]);
    assert!(screen.contains("chatd: connection from 127.0.0.1:"));
    assert!(!screen.contains("chatd>"), "{screen}");

    peer.send(b"hi from client\n");
    tmux.expect_last_lines("chatd", &[WAITING, "hi from client", "chatd>"]);

    tmux.type_line("chatd", "answer");
    peer.expect_stdout("answer\n");
    tmux.expect_last_lines("chatd", &["chatd> answer", WAITING]);
}

// The worksheet's question: both sides listening first wait for each other
// forever, and the indicator makes it visible on both terminals.
#[test]
fn both_listening_first_is_a_visible_deadlock() {
    let port = free_port();
    let tmux = Tmux::start(port, "chatd", &chatd_command(port, "-a"));
    tmux.expect_screen("chatd", "chatd: listening on");
    tmux.new_window("chat", &chat_command(port, "-a --listen-first"));
    tmux.expect_last_lines("chatd", &[WAITING]);
    tmux.expect_last_lines("chat", &[WAITING]);

    // Typing does not help: it is not the client's turn, so nothing is read.
    tmux.type_line("chat", "anyone there?");
    tmux.expect_last_lines("chat", &[WAITING, "anyone there?"]);
    thread::sleep(QUIET_SPELL);
    for window in ["chatd", "chat"] {
        let screen = tmux.screen(window);
        assert!(
            !screen.contains("chatd>") && !screen.contains("chat>"),
            "{window} prompted:\n{screen}"
        );
        assert_eq!(tmux.pane(window, "pane_dead"), "0", "{window} ended");
    }
    let server = tmux.screen("chatd");
    assert!(lines(&server).ends_with(&[WAITING]), "{server}");
}

//! "A peer cannot take over your terminal" and the lockstep turn indicator,
//! seen on a real terminal. tmux is the terminal: each test runs the real
//! `chat` or `chatd` in a detached tmux pane of a fixed size (its standard
//! input, output and error are the pane's pseudo-terminal), with `socat` as
//! the peer on 127.0.0.1, and reads back what a person would see: the
//! screen (`capture-pane -p`) and the title (`#{pane_title}`, which the
//! OSC 0/2 escape sequences set).

mod util;

use std::thread;
use std::time::Duration;

use util::tmux::*;
use util::*;

/// How long a negative check waits after its last positive checkpoint.
const QUIET_SPELL: Duration = Duration::from_secs(1);

/// The lockstep indicator shown while it is the peer's turn.
const WAITING: &str = "(waiting for peer...)";

/// A socat server on a free port (the test writes what it sends) and a
/// `chat ARGS` connected to it in tmux window `chat`, its title `before`.
fn chat_in_a_pane(args: &str) -> (Proc, Tmux) {
    let (peer, port) = socat_server("-");
    let tmux = Tmux::start("chat", &chat_command(port, args));
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
        lines(&screen).ends_with(&[r"\x9b2Jcafé 日本 🙂", "<U+009B>2J <U+202E>evil", "chat>"]),
        "{screen}"
    );
}

#[test]
fn chat_a_shows_whose_turn_it_is() {
    let (mut peer, tmux) = chat_in_a_pane("-a");
    // The client speaks first: its prompt, and no waiting yet.
    let screen = tmux.expect_last_lines("chat", &["chat>"]);
    assert!(!screen.contains(WAITING), "{screen}");

    // The line editor's prompt is the turn indicator; the waiting line
    // has a line of its own.
    tmux.type_line("chat", "hello");
    peer.expect_stdout("hello\n");
    tmux.expect_last_lines("chat", &["chat> hello", WAITING, "chat>"]);

    // A line typed ahead during the peer's turn is shown when it is sent.
    tmux.type_line("chat", "typed ahead");
    tmux.expect_last_lines("chat", &[WAITING, "chat> typed ahead", "chat>"]);
    thread::sleep(QUIET_SPELL);
    // Only hello: nothing was sent out of turn.
    peer.expect_stdout_exactly("hello\n");

    peer.send(b"reply\n");
    peer.expect_stdout("hello\ntyped ahead\n");
    tmux.expect_last_lines(
        "chat",
        &[
            "chat> hello",
            WAITING,
            "reply",
            "chat> typed ahead",
            WAITING,
            "chat>",
        ],
    );
}

#[test]
fn chatd_a_waits_for_the_client_first_then_prompts() {
    let tmux = Tmux::start("chatd", &chatd_command(0, "-a"));
    let port = tmux.listening_port();
    tmux.expect_screen("chatd", &format!("chatd: listening on 127.0.0.1:{port}"));
    let mut peer = socat(&["-", &format!("TCP:127.0.0.1:{port}")]);
    let screen = tmux.expect_last_lines("chatd", &[WAITING, "chatd>"]);
    assert!(screen.contains("chatd: connection from 127.0.0.1:"));

    peer.send(b"hi from client\n");
    tmux.expect_last_lines("chatd", &[WAITING, "hi from client", "chatd>"]);

    tmux.type_line("chatd", "answer");
    peer.expect_stdout("answer\n");
    tmux.expect_last_lines("chatd", &["chatd> answer", WAITING, "chatd>"]);
}

// The worksheet's question: both sides listening first wait for each other
// forever, and the indicator makes it visible on both terminals.
#[test]
fn both_listening_first_is_a_visible_deadlock() {
    let tmux = Tmux::start("chatd", &chatd_command(0, "-a"));
    let port = tmux.listening_port();
    tmux.expect_screen("chatd", "chatd: listening on");
    tmux.new_window("chat", &chat_command(port, "-a --listen-first"));
    tmux.expect_last_lines("chatd", &[WAITING, "chatd>"]);
    tmux.expect_last_lines("chat", &[WAITING, "chat>"]);

    // Typing does not help: it is not the client's turn, so the line
    // waits, typed ahead, and is never sent.
    tmux.type_line("chat", "anyone there?");
    tmux.expect_last_lines("chat", &[WAITING, "chat> anyone there?", "chat>"]);
    thread::sleep(QUIET_SPELL);
    for window in ["chatd", "chat"] {
        assert_eq!(tmux.pane(window, "pane_dead"), "0", "{window} ended");
    }
    let server = tmux.screen("chatd");
    assert!(lines(&server).ends_with(&[WAITING, "chatd>"]), "{server}");
    assert!(!server.contains("anyone"), "{server}");
}

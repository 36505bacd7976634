//! A real terminal for the tests: tmux. Each test runs the real `chat` or
//! `chatd` in a detached tmux pane of a fixed size (its standard input,
//! output and error are the pane's pseudo-terminal) and reads back what a
//! person would see: the screen (`capture-pane -p`), the cursor, the
//! title (`#{pane_title}`).

use std::process::Command;
use std::thread;

use super::*;

/// A tmux server of the test's own (socket `chat-test-PID-N`), holding one
/// detached session `t` of 100×30 cells. Dropping it kills the server,
/// waits for it to end and removes its socket, even when the test failed.
pub struct Tmux {
    socket: String,
    /// The server's pid and socket file, once known.
    server: Option<(u32, String)>,
}

impl Tmux {
    /// Starts the server with window `window` running `command` (a `sh -c`
    /// command line). Panes stay on screen after their command exits.
    pub fn start(window: &str, command: &str) -> Tmux {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut tmux = Tmux {
            socket: format!("chat-test-{}-{n}", std::process::id()),
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

    /// The port on 127.0.0.1 that a program in one of the panes listens
    /// on (`chatd -p 0`), once it does; fails the test after [`TIMEOUT`].
    pub fn listening_port(&self) -> u16 {
        let pid = self.server.as_ref().expect("tmux server").0;
        wait_for_port_of(pid, || format!("nothing listens in tmux server {pid}"))
    }

    /// Opens window `window` running `command` in the same session.
    pub fn new_window(&self, window: &str, command: &str) {
        self.run(&["new-window", "-d", "-t", "t", "-n", window, command]);
    }

    /// Runs one tmux command against this server; panics if it fails.
    pub fn run(&self, args: &[&str]) -> String {
        // The server, started by the first command, passes it on to
        // every pane.
        let out = Command::new("tmux")
            .env("XDG_STATE_HOME", state_home())
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
    pub fn screen(&self, window: &str) -> String {
        self.run(&["capture-pane", "-p", "-t", &format!("t:{window}")])
    }

    /// A format variable of the pane of `window`, such as `pane_title`.
    pub fn pane(&self, window: &str, variable: &str) -> String {
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
    pub fn title(&self, window: &str) -> String {
        self.pane(window, "pane_title")
    }

    pub fn set_title(&self, window: &str, title: &str) {
        self.run(&["select-pane", "-t", &format!("t:{window}"), "-T", title]);
        assert_eq!(self.title(window), title);
    }

    /// Types `text` then Enter in the pane of `window`, as a person would.
    pub fn type_line(&self, window: &str, text: &str) {
        let target = format!("t:{window}");
        self.run(&["send-keys", "-t", &target, "-l", text]);
        self.run(&["send-keys", "-t", &target, "Enter"]);
    }

    /// Polls the screen of `window` until `done` holds (at most
    /// [`TIMEOUT`]) and returns it; panics with the screen if it never does.
    pub fn wait_for(&self, window: &str, what: &str, done: impl Fn(&str) -> bool) -> String {
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
    pub fn expect_screen(&self, window: &str, text: &str) -> String {
        self.wait_for(window, &format!("{text:?}"), |s| s.contains(text))
    }

    /// Waits until the last non-blank lines of `window` are `tail`.
    pub fn expect_last_lines(&self, window: &str, tail: &[&str]) -> String {
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
pub fn running(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rfind(')')
            .and_then(|i| stat.get(i + 2..i + 3))
            .is_some_and(|state| state != "Z"),
        Err(_) => false,
    }
}

/// The non-blank lines of a screen.
pub fn lines(screen: &str) -> Vec<&str> {
    screen.lines().filter(|l| !l.trim().is_empty()).collect()
}

/// `path` quoted for the `sh -c` command line of a tmux pane.
pub fn quoted(path: &str) -> String {
    format!("'{}'", path.replace('\'', r"'\''"))
}

/// `chat ARGS 127.0.0.1 PORT`, as a pane's command line.
pub fn chat_command(port: u16, args: &str) -> String {
    format!("{} {args} 127.0.0.1 {port}", quoted(CHAT))
}

/// `chatd ARGS` listening on 127.0.0.1:PORT, as a pane's command line.
pub fn chatd_command(port: u16, args: &str) -> String {
    format!("{} {args} -b 127.0.0.1 -p {port}", quoted(CHATD))
}

impl Tmux {
    /// Sends tmux key names (`Left`, `C-a`, `Enter`) to the pane of
    /// `window`.
    pub fn keys(&self, window: &str, keys: &[&str]) {
        let target = format!("t:{window}");
        let mut args = vec!["send-keys", "-t", &target];
        args.extend_from_slice(keys);
        self.run(&args);
    }

    /// Types `text` in the pane of `window` without Enter.
    pub fn type_text(&self, window: &str, text: &str) {
        self.run(&["send-keys", "-t", &format!("t:{window}"), "-l", text]);
    }

    /// The cursor of the pane of `window`, as (column, row) from 0.
    pub fn cursor(&self, window: &str) -> (usize, usize) {
        let x = self.pane(window, "cursor_x").parse().expect("cursor_x");
        let y = self.pane(window, "cursor_y").parse().expect("cursor_y");
        (x, y)
    }

    /// What the pane of `window` shows with its colours and attributes as
    /// escape sequences (`capture-pane -e`).
    pub fn screen_with_attributes(&self, window: &str) -> String {
        self.run(&["capture-pane", "-p", "-e", "-t", &format!("t:{window}")])
    }

    /// Resizes the window `window` to `cols` × `rows` cells.
    pub fn resize(&self, window: &str, cols: u16, rows: u16) {
        self.run(&[
            "resize-window",
            "-t",
            &format!("t:{window}"),
            "-x",
            &cols.to_string(),
            "-y",
            &rows.to_string(),
        ]);
    }

    /// The pid of the process the pane of `window` runs (its `sh -c`).
    pub fn pane_pid(&self, window: &str) -> u32 {
        self.pane(window, "pane_pid").parse().expect("pane_pid")
    }
}

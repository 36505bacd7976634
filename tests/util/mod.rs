//! Test environment: spawns the real binaries (and `socat`) as child
//! processes on 127.0.0.1, each test on its own free port, every wait
//! bounded. Nothing here forks the test process itself: `std::process`
//! spawns, and reader threads collect each child's stdout and stderr.

#![allow(dead_code)]

mod random;
#[allow(unused_imports)] // not every test file uses it
pub use random::random_bytes;
pub mod tmux;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// The longest any single wait in a test may take before it fails.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// Path of the `chatd` binary under test.
pub const CHATD: &str = env!("CARGO_BIN_EXE_chatd");
/// Path of the `chat` binary under test.
pub const CHAT: &str = env!("CARGO_BIN_EXE_chat");

/// A port on 127.0.0.1 that nothing listens on now, for a test that needs
/// the number before anything listens (a client started before its
/// server, a port that refuses).
///
/// The kernel chooses it (`bind` to port 0), and no port is handed out
/// twice in one test binary. A test that can should not use this: start
/// the server on port 0 and read its port back ([`chatd`],
/// [`socat_server`], [`listening_port`]). Between this check and its use,
/// another process on the machine can take the port: with ports chosen
/// by the tests from a fixed range (20000–29999), CI failed once with
/// `bind: Address already in use` (by what, the log does not say); a
/// kernel-chosen port, random in the ephemeral range, makes that
/// unlikely, not impossible.
pub fn free_port() -> u16 {
    static GIVEN: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    for _ in 0..1000 {
        let probe = TcpListener::bind(("127.0.0.1", 0)).expect("bind 127.0.0.1:0");
        let port = probe.local_addr().expect("local address").port();
        let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
    panic!("the kernel gave 1000 ports already handed out");
}

/// A running child process with its output collected in the background.
pub struct Proc {
    pub name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    /// The master side of the pseudo-terminal on the process's stdin, for
    /// [`spawn_on_terminal`]: what the test "types".
    terminal: Option<std::fs::File>,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    status: Option<ExitStatus>,
}

/// Spawns `program` with `args`, stdin, stdout and stderr all piped.
pub fn spawn(program: &str, args: &[&str]) -> Proc {
    spawn_with(program, args, Stdio::piped())
}

/// Spawns `program` with `args` and the given stdin (a file, null, piped).
pub fn spawn_with(program: &str, args: &[&str], stdin: Stdio) -> Proc {
    spawn_io(program, args, stdin, Stdio::piped())
}

/// The `XDG_STATE_HOME` of every program the tests start (a directory of
/// the test build's own, under `target/`), so that no test reads or
/// writes the history files of the person who runs the tests. A test of
/// the history itself gives its programs a directory of its own.
pub fn state_home() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("xdg-state-home")
}

/// Spawns `program` with `args` and the given stdin and stdout (a file,
/// say); stderr is piped. Standard output is collected only when piped.
pub fn spawn_io(program: &str, args: &[&str], stdin: Stdio, stdout: Stdio) -> Proc {
    spawn_env(program, args, &[], stdin, stdout)
}

/// [`spawn_io`] with variables added to the environment (`--tls` tests
/// give each process its own `XDG_CONFIG_HOME`, so that nothing touches
/// the real home).
pub fn spawn_env(
    program: &str,
    args: &[&str],
    env: &[(&str, &Path)],
    stdin: Stdio,
    stdout: Stdio,
) -> Proc {
    let mut child = Command::new(program)
        .env("XDG_STATE_HOME", state_home())
        .args(args)
        .envs(env.iter().copied())
        .stdin(stdin)
        .stdout(stdout)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {program}: {e}"));
    let stdout = match child.stdout.take() {
        Some(out) => collect(out),
        None => Arc::new(Mutex::new(Vec::new())),
    };
    let stderr = collect(child.stderr.take().unwrap());
    Proc {
        name: Path::new(program)
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned(),
        stdin: child.stdin.take(),
        terminal: None,
        child,
        stdout,
        stderr,
        status: None,
    }
}

fn collect(mut from: impl Read + Send + 'static) -> Arc<Mutex<Vec<u8>>> {
    let store = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&store);
    thread::spawn(move || {
        let mut buf = [0u8; 65536];
        while let Ok(n) = from.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    });
    store
}

/// Reads from `conn` into `got` until what it holds ends with `tail`, at
/// most [`TIMEOUT`] (the read timeout is set to 100 ms); fails the test
/// with what arrived if it never does.
pub fn read_until(conn: &mut std::net::TcpStream, got: &mut Vec<u8>, tail: &[u8]) {
    conn.set_read_timeout(Some(Duration::from_millis(100)))
        .expect("set the read timeout");
    let ok = wait_until(TIMEOUT, || {
        let mut buf = [0u8; 1024];
        if let Ok(n) = conn.read(&mut buf) {
            got.extend_from_slice(&buf[..n]);
        }
        got.ends_with(tail)
    });
    assert!(
        ok,
        "never got {:?}; got {:?}",
        String::from_utf8_lossy(tail),
        String::from_utf8_lossy(got)
    );
}

/// Polls `done` every 10 ms until it is true or `limit` passes.
pub fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

impl Proc {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Writes `bytes` to the process's stdin (typed on its terminal, for
    /// [`spawn_on_terminal`]).
    pub fn send(&mut self, bytes: &[u8]) {
        if let Some(terminal) = self.terminal.as_mut() {
            terminal.write_all(bytes).expect("write to the terminal");
            return;
        }
        let stdin = self.stdin.as_mut().expect("stdin already closed");
        stdin.write_all(bytes).expect("write to stdin");
        stdin.flush().unwrap();
    }

    /// Takes the writing end of the process's stdin pipe, for a thread
    /// that feeds it while the test does something else.
    pub fn take_stdin(&mut self) -> ChildStdin {
        self.stdin.take().expect("stdin already taken")
    }

    /// Closes the process's stdin (it reads end of file). On a terminal,
    /// types Ctrl-D at the start of a line instead.
    pub fn close_stdin(&mut self) {
        if self.terminal.is_some() {
            self.send(b"\x04");
        }
        self.stdin = None;
    }

    /// Whether the reader of the process's stdout has seen end of file:
    /// no process holds the write end of the pipe any more.
    pub fn stdout_closed(&self) -> bool {
        Arc::strong_count(&self.stdout) == 1
    }

    pub fn stdout(&self) -> Vec<u8> {
        self.stdout.lock().unwrap().clone()
    }

    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout()).into_owned()
    }

    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    /// Waits until stdout contains `text`; panics with both outputs if not.
    pub fn expect_stdout(&self, text: &str) {
        let found = wait_until(TIMEOUT, || self.stdout_text().contains(text));
        assert!(
            found,
            "{}: no {text:?} on stdout\n{}",
            self.name,
            self.dump()
        );
    }

    /// Checks that stdout is exactly `text`, once as many bytes as it holds
    /// have arrived (waiting up to `TIMEOUT` for them): the pipe's reader is
    /// a thread, so what a process wrote may not be here yet when another
    /// one's exit says it was written. Panics with both outputs if not.
    pub fn expect_stdout_exactly(&self, text: &str) {
        wait_until(TIMEOUT, || self.stdout().len() >= text.len());
        assert_eq!(
            self.stdout_text(),
            text,
            "{}: stdout\n{}",
            self.name,
            self.dump()
        );
    }

    /// Waits until stderr contains `text`; panics with both outputs if not.
    pub fn expect_stderr(&self, text: &str) {
        let found = wait_until(TIMEOUT, || self.stderr_text().contains(text));
        assert!(
            found,
            "{}: no {text:?} on stderr\n{}",
            self.name,
            self.dump()
        );
    }

    /// Both outputs, for failure messages.
    pub fn dump(&self) -> String {
        format!(
            "--- stdout:\n{}\n--- stderr:\n{}",
            self.stdout_text(),
            self.stderr_text()
        )
    }

    /// The exit status if the process has ended, without waiting.
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().unwrap();
        }
        self.status
    }

    /// Waits up to `limit` for the process to end; panics (after killing
    /// it) if it does not.
    pub fn wait_within(&mut self, limit: Duration) -> ExitStatus {
        if wait_until(limit, || self.try_status().is_some()) {
            // Let the reader threads take the last bytes of the pipes:
            // they end as soon as the pipes close. 2 s were not always
            // enough on a loaded machine (a helper's stress runs: a
            // process's whole stderr line missing after it had exited).
            wait_until(TIMEOUT, || {
                Arc::strong_count(&self.stdout) == 1 && Arc::strong_count(&self.stderr) == 1
            });
            return self.status.unwrap();
        }
        let _ = self.child.kill();
        panic!(
            "{} still running after {limit:?}\n{}",
            self.name,
            self.dump()
        );
    }

    /// Waits up to [`TIMEOUT`] for the process to end and returns its code.
    pub fn wait(&mut self) -> i32 {
        let status = self.wait_within(TIMEOUT);
        status
            .code()
            .unwrap_or_else(|| panic!("{} killed by a signal: {status:?}", self.name))
    }

    /// Sends signal `sig` to the process.
    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on the pid of a child we have not reaped yet.
        let rc = unsafe { libc::kill(self.pid() as i32, sig) };
        assert_eq!(rc, 0, "kill {} {sig}", self.pid());
    }

    /// The pids of this process's children (from /proc, zombies included).
    pub fn children(&self) -> Vec<u32> {
        children_of(self.pid())
    }
}

/// A process still running when its test ends (or fails) is killed with
/// its descendants: killing `strace` alone left the `chatd` it traced
/// running (a helper found six such after its stress runs), and killing
/// `bash -c` leaves its pipeline's programs.
impl Drop for Proc {
    fn drop(&mut self) {
        if self.try_status().is_none() {
            for &pid in &descendants(self.pid())[1..] {
                // SAFETY: kill(2) on a descendant seen running just now.
                unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `pid` and the processes under it (children, theirs, and so on: at
/// most the first 64 looked at), parents first.
pub fn descendants(pid: u32) -> Vec<u32> {
    let mut tree = vec![pid];
    let mut i = 0;
    while i < tree.len() && i < 64 {
        tree.extend(children_of(tree[i]));
        i += 1;
    }
    tree
}

/// The pids whose parent is `pid`, read from /proc/PID/stat.
pub fn children_of(pid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else {
            continue;
        };
        // Fields after the command name, which is in parentheses.
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
            continue;
        };
        let ppid = rest.split(' ').nth(1).and_then(|f| f.parse::<u32>().ok());
        if ppid == Some(pid) {
            found.push(child);
        }
    }
    found
}

/// Spawns `program` with `args` on a new pseudo-terminal: its stdin is the
/// terminal (so `isatty(0)` holds, as for a person typing; echo is off),
/// stdout and stderr are pipes. [`Proc::send`] types on it.
pub fn spawn_on_terminal(program: &str, args: &[&str]) -> Proc {
    use nix::sys::termios::{LocalFlags, SetArg, tcgetattr, tcsetattr};
    let pty = nix::pty::openpty(None, None).expect("openpty");
    let mut attrs = tcgetattr(&pty.slave).expect("tcgetattr");
    attrs.local_flags.remove(LocalFlags::ECHO);
    tcsetattr(&pty.slave, SetArg::TCSANOW, &attrs).expect("tcsetattr");
    let mut proc = spawn_with(program, args, Stdio::from(pty.slave));
    proc.terminal = Some(std::fs::File::from(pty.master));
    proc
}

/// Starts `chatd` on 127.0.0.1 and a free port with `extra` arguments,
/// and waits until it listens. Returns it and the port.
/// Its stdin is a pipe that the test writes ([`Proc::send`]) and closes.
pub fn chatd(extra: &[&str]) -> (Proc, u16) {
    chatd_with(extra, Stdio::piped())
}

/// [`chatd`] with the given stdin: `Stdio::null()` for the receive-only
/// server a script starts with `< /dev/null`.
pub fn chatd_with(extra: &[&str], stdin: Stdio) -> (Proc, u16) {
    chatd_io(extra, stdin, Stdio::piped())
}

/// [`chatd`] with the given stdin and stdout (a file, say).
///
/// `chatd -p 0`: the kernel picks a port nothing uses, read back from the
/// process's listening socket ([`listening_port`]). A port chosen by the
/// test ([`free_port`]) can be taken between the check and `chatd`'s
/// `bind` (seen once in about ten runs of the suite: a test failed with
/// `chatd: bind 127.0.0.1:23420: Address already in use`).
pub fn chatd_io(extra: &[&str], stdin: Stdio, stdout: Stdio) -> (Proc, u16) {
    let mut args = vec!["-b", "127.0.0.1", "-p", "0"];
    args.extend_from_slice(extra);
    let server = spawn_io(CHATD, &args, stdin, stdout);
    let port = wait_for_port(&server, "chatd");
    (server, port)
}

/// The port on a loopback or wildcard address (127.0.0.1, ::1, 0.0.0.0,
/// `::`) that the process `pid` or one of its descendants listens on,
/// once one does: their socket descriptors (`/proc/PID/fd`,
/// `socket:[INODE]`) matched by inode with [`listening_sockets`].
pub fn listening_port(pid: u32) -> Option<u16> {
    let pids = descendants(pid);
    let inodes: Vec<String> = pids
        .iter()
        .filter_map(|pid| std::fs::read_dir(format!("/proc/{pid}/fd")).ok())
        .flatten()
        .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
        .filter_map(|link| {
            let link = link.to_str()?;
            Some(link.strip_prefix("socket:[")?.strip_suffix(']')?.to_owned())
        })
        .collect();
    // 127.0.0.1, ::1, and the wildcards 0.0.0.0 and :: (which take
    // loopback clients too).
    const LOOPBACK: [&str; 4] = [
        "0100007F",
        "00000000000000000000000001000000",
        "00000000",
        "00000000000000000000000000000000",
    ];
    listening_sockets()
        .into_iter()
        .find(|s| LOOPBACK.contains(&s.addr.as_str()) && inodes.contains(&s.inode))
        .map(|s| s.port)
}

/// A listening TCP socket, as a row of `/proc/net/tcp` or `tcp6` shows
/// it: the local address in the table's hexadecimal form (`0100007F` is
/// 127.0.0.1), the port, the socket's inode.
pub struct Listener {
    pub addr: String,
    pub port: u16,
    pub inode: String,
}

/// Every listening TCP socket of the machine (its network namespace),
/// IPv4 then IPv6.
///
/// Linux writes a table's LISTEN rows (state `0A`) first, from its
/// listening hash, then the other sockets, so each table is read only up
/// to its first other row. Reading and splitting all of it, in a debug
/// build, took 3.6 to 6.6 s with 57,000 to 71,000 rows (mostly
/// TIME_WAIT, left by parallel suites), and tests failed with "chatd
/// does not listen" next to chatd's own "listening on" line; up to the
/// first other row it took 0.26 ms and found the same 41 listeners.
pub fn listening_sockets() -> Vec<Listener> {
    use std::io::BufRead;
    let mut found = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(file) = std::fs::File::open(table) else {
            continue;
        };
        for line in std::io::BufReader::new(file).lines().skip(1) {
            let Ok(line) = line else { break };
            // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
            let fields: Vec<&str> = line.split_whitespace().take(10).collect();
            let [_, local, _, state, _, _, _, _, _, inode] = fields[..] else {
                break;
            };
            if state != "0A" {
                break;
            }
            let Some((addr, port)) = local.split_once(':') else {
                continue;
            };
            let Ok(port) = u16::from_str_radix(port, 16) else {
                continue;
            };
            found.push(Listener {
                addr: addr.to_owned(),
                port,
                inode: inode.to_owned(),
            });
        }
    }
    found
}

/// Starts `chat` against 127.0.0.1:`port` with `extra` arguments first.
pub fn chat(port: u16, extra: &[&str]) -> Proc {
    let port_text = port.to_string();
    let mut args = extra.to_vec();
    args.extend_from_slice(&["127.0.0.1", &port_text]);
    spawn(CHAT, &args)
}

/// Starts `socat` with `args` (it must be installed: `scripts/test` does it).
pub fn socat(args: &[&str]) -> Proc {
    spawn("socat", args)
}

/// Starts a socat server on 127.0.0.1 and a port the kernel picks, whose
/// other end is `address` (`-` for its own stdin/stdout), and waits until
/// it accepts connections. Returns it and the port.
pub fn socat_server(address: &str) -> (Proc, u16) {
    let server = socat(&["-t", "5", "TCP-LISTEN:0,bind=127.0.0.1,reuseaddr", address]);
    let port = wait_for_port(&server, "socat");
    (server, port)
}

/// Waits until `proc`, or a process under it (a shell's pipeline, a
/// program under strace), listens ([`listening_port`]), and returns that
/// port; fails the test after [`TIMEOUT`].
pub fn wait_for_port(proc: &Proc, what: &str) -> u16 {
    wait_for_port_of(proc.pid(), || {
        format!("{what} does not listen\n{}", proc.dump())
    })
}

/// Waits until the process `pid` or one under it listens
/// ([`listening_port`]) and returns that port; after [`TIMEOUT`], fails
/// the test with what `failure` says.
pub fn wait_for_port_of(pid: u32, failure: impl Fn() -> String) -> u16 {
    let mut port = None;
    let up = wait_until(TIMEOUT, || {
        port = listening_port(pid);
        port.is_some()
    });
    assert!(up, "{}", failure());
    port.unwrap_or(0)
}

/// Sends `line` on `conn`, a client of `chatd --echo`, and reads it back
/// (bounded by `conn`'s read timeout): the echo service serves it.
pub fn echo_round_trip(conn: &mut std::net::TcpStream, line: &[u8]) {
    conn.write_all(line).unwrap();
    let mut echoed = vec![0u8; line.len()];
    conn.read_exact(&mut echoed).unwrap();
    assert_eq!(echoed, line, "echoed");
}

/// Whether something listens on 127.0.0.1:`port` ([`listening_sockets`],
/// so that checking does not itself connect).
pub fn listening(port: u16) -> bool {
    listening_sockets()
        .iter()
        .any(|s| s.addr == "0100007F" && s.port == port)
}

/// Runs a whole session between the real binaries, each fed from a file:
/// `chatd -1 EXTRA -b 127.0.0.1 -p PORT < server_input` and
/// `chat EXTRA 127.0.0.1 PORT < client_input`. Waits for both to exit
/// with status 0 ([`wait_while_moving`]) and returns them, outputs
/// collected.
pub fn exchange(extra: &[&str], server_input: &[u8], client_input: &[u8]) -> (Proc, Proc) {
    let dir = tempfile::tempdir().unwrap();
    let (server_file, client_file) = (dir.path().join("server"), dir.path().join("client"));
    std::fs::write(&server_file, server_input).unwrap();
    std::fs::write(&client_file, client_input).unwrap();
    let mut server_args = vec!["-1"];
    server_args.extend_from_slice(extra);
    server_args.extend_from_slice(&["-b", "127.0.0.1", "-p", "0"]);
    let stdin = |path| Stdio::from(std::fs::File::open(path).unwrap());
    let mut server = spawn_with(CHATD, &server_args, stdin(&server_file));
    let port_text = wait_for_port(&server, "chatd").to_string();
    let mut client_args = extra.to_vec();
    client_args.extend_from_slice(&["127.0.0.1", &port_text]);
    let mut client = spawn_with(CHAT, &client_args, stdin(&client_file));
    let status = wait_while_moving(&mut client, &server);
    assert_eq!(status.code(), Some(0), "chat\n{}", client.dump());
    let status = wait_while_moving(&mut server, &client);
    assert_eq!(status.code(), Some(0), "chatd\n{}", server.dump());
    (server, client)
}

/// Waits for `proc` to end for as long as bytes keep arriving on its
/// standard output or `other`'s (a transfer between them going on); fails
/// after [`TIMEOUT`] with none, or after 30 times [`TIMEOUT`] in all.
/// Bounded by progress rather than by a short total: ten MiB each way
/// through the debug builds (about 1.5 s of CPU per direction) outlasted
/// the 30 s once allowed here on a loaded machine (2 CPUs, the suite's
/// binaries in parallel, two CPU burners).
pub fn wait_while_moving(proc: &mut Proc, other: &Proc) -> ExitStatus {
    let moved = |a: &Proc, b: &Proc| a.stdout().len() + b.stdout().len();
    let mut seen = moved(proc, other);
    let start = Instant::now();
    while !wait_until(TIMEOUT, || proc.try_status().is_some()) {
        let now = moved(proc, other);
        assert!(
            now > seen,
            "{} still running, no byte moved for {TIMEOUT:?}\n{}",
            proc.name,
            proc.dump()
        );
        assert!(
            start.elapsed() < TIMEOUT * 30,
            "{} still running after {:?}\n{}",
            proc.name,
            start.elapsed(),
            proc.dump()
        );
        seen = now;
    }
    proc.wait_within(TIMEOUT)
}

/// Bytes that arrived at the clients of 127.0.0.1:`port` and that they
/// have not read: the receive queues (`Recv-Q`) of the established
/// connections whose peer port is `port`, as `ss` shows them (it asks the
/// kernel over netlink, filtered there: fast however many sockets the
/// machine holds).
pub fn unread_by_clients(port: u16) -> u64 {
    let filter = format!("( dport = :{port} )");
    let out = std::process::Command::new("ss")
        .args(["-Htn", "state", "established", &filter])
        .output()
        .expect("ss (iproute2; scripts/test installs it)");
    assert!(out.status.success(), "ss {filter}: {}", out.status);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|row| row.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// `SO_LINGER` with a zero timeout on `conn`: closing it then sends RST,
/// not FIN (a peer that resets the connection).
pub fn reset_on_close(conn: &std::net::TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt on an open socket with a valid linger struct.
    let rc = unsafe {
        libc::setsockopt(
            conn.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&raw const linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "SO_LINGER");
}

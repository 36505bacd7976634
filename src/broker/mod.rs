//! `chatd --broker`: the discussion room of the worksheet ("a server that
//! lets several clients talk together; the server relays each client's
//! messages to the others, naming the machine that sent it").
//!
//! Two halves, as Redis splits `ae.c` from `networking.c`:
//! - [`room`]: the room itself, a state machine with no sockets and no
//!   clock: line framing ([`frame`]), names ([`name`]), commands, notices,
//!   the room log ([`log`]), each reader's send queue ([`queue`]) and the
//!   pacing and dropping rules ([`pace`]). Unit- and property-tested
//!   directly.
//! - this file: the event loop around it, which knows only "this socket is
//!   readable / writable", "a signal arrived" and "a deadline passed".
//!
//! # One log, a cursor per reader
//!
//! Everything the room says to more than one reader (relayed lines, the
//! server's lines, notices) is appended once to the room's [`log::Log`]:
//! 64 KiB segments of whole lines, addressed by byte position. Each reader
//! (every client, and the server's standard output) has a
//! [`queue::SendQueue`]: a cursor into the log, the ranges of the log that
//! are not for it (its own lines: no echo), and a small private queue for
//! what goes to it alone (answers, `/msg`, its greeting, its `too slow`
//! notice), each private line tagged with the log position it was said
//! at, so that every reader sees the one order of the room. A writer
//! sends a reader everything from its cursor with one `writev(2)` of the
//! ranges between its own lines (128 slices at most). [`log::Log::trim`]
//! frees the segments every reader has passed.
//!
//! So a backlog is a distance, not a list: relaying a line to N readers
//! costs one copy of its bytes and nothing per reader until it is written,
//! and a reader that lags holds the log, not its own copy. The memory of
//! the room is its distinct bytes (at most `--max-queue` behind the head,
//! since a reader further behind is dropped, plus one segment) and a few
//! hundred bytes per client (its name, framer, queue and socket). A room
//! that kept a slot per line per client instead grows with clients ×
//! lines: a class of N joining before anyone reads leaves about N²/2 slots
//! of join notices, over a GiB at 10,000 clients. `tests/broker.rs` checks
//! that 4,000 clients that never read cost memory linear in their number;
//! `scripts/bench bigroom` measures the room's memory and the time one
//! line takes to reach the last of 10,000 clients, and `scripts/bench
//! fanout` the delivery rate (the figures: docs/PERFORMANCE.md).
//!
//! Clients that join within one turn of the loop are announced in one
//! notice (`-!- 37 joined: alice, bob, … (and 30 more)`): a person at a
//! terminal reads one line per burst instead of a screenful, and a storm
//! of joins costs the room one notice per turn.
//!
//! # Pacing
//!
//! A reader that keeps reading receives every line, however big the burst:
//! while a *moving* reader (one that makes room in its socket: within
//! 300 ms of the socket filling, then every 500 ms at least; a write of
//! ours that it takes, or its kernel acknowledging bytes of the socket's
//! send queue, `SIOCOUTQ`, asked when time alone would call it stopped)
//! is more than half of `--max-queue` behind, the loop reads no talker and
//! not its standard input, until every moving reader is within a quarter
//! of it.
//! TCP backpressure then slows the talkers' `chat`, whose unsent input
//! waits in its standard input: nothing is lost. A reader that stopped
//! never holds the room back: it is not moving once its 300 ms are over,
//! so it pauses nothing after that, and it is dropped
//! (`-!- NAME left (too slow)`) after `--stall-timeout` or `--max-queue`. The
//! rules and their figures are in [`pace`]. `scripts/bench paced` checks
//! that readers at 1, 2 and 4 MiB/s get every line of a paste of 4 times
//! `--max-queue`, using nearly all of their rate, beside `ncat --broker`
//! (which blocks in `send` instead); `scripts/bench fanout` measures what
//! one client that never reads costs a room of 200 (the 0.3 s, once) and
//! how soon it is dropped (the figures: docs/PERFORMANCE.md).
//!
//! A dropped client is not reset: the room sends it the rest of the line it
//! was in and its own `too slow` notice, half-closes, and reads until its
//! end of file for at most [`LINGER`], so that its `recv` returns the
//! notice and then end of file.
//!
//! # One process, one thread, no locks
//!
//! Everything runs in one thread around one `epoll(7)` instance: the
//! listening socket, every client socket, standard input and output, and
//! the signal self-pipe ([`crate::signals::Signals`]). The worksheet's
//! servers use one thread per client and therefore a lock around the list
//! of clients; here each event is handled to its end before the next, so
//! the room's state is never seen half-changed and there is nothing to
//! lock (see [`room`]).
//!
//! Client sockets are registered once, edge-triggered, for reading and
//! writing (`EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET`, as nginx does):
//! the loop keeps "may read" and "may write" per client itself, so that
//! pausing the room, or a client's queue filling and emptying, costs no
//! `epoll_ctl`, even with 10,000 clients. A short read means the socket is
//! drained, since bytes that arrive later bring a new edge; but an end of
//! file that arrived with the last bytes brings none, so once a client
//! has half-closed (`EPOLLRDHUP`) it is read until its end of file. The
//! listener, standard input and output are level-triggered; standard
//! input's interest is removed while the room is paused (but for the
//! operator's line editor, which keeps taking keys and holds the lines
//! finished meanwhile).
//!
//! # The loop
//!
//! Each turn:
//! 1. what the room asked is done (close a client, at once or after its
//!    queue is written; stop);
//! 2. the readers are written: every one when the log grew, otherwise
//!    those that got a private line; a reader whose socket is full waits
//!    for its `EPOLLOUT` edge;
//! 3. the room is checked ([`room::Room::check`]): stalled or overflowing
//!    readers are dropped, the pause is decided, the log is trimmed. This
//!    comes after the writes and right before the wait, so that the loop
//!    never sleeps on a pause the writes have already ended, and a pause
//!    always comes with a deadline (the grace of a reader it waits for):
//!    the loop never sleeps without a timeout while a client it is not
//!    deliberately pausing may have unread bytes;
//! 4. `epoll_wait(2)`, until an event or the next deadline (a closing
//!    client's linger, `--idle-timeout`, a reader's grace or stall
//!    timeout); then rounds of reading: each readable client once per
//!    round, at most [`room::Room::may_read`] bytes (about 20 KiB: what a
//!    read may add to a queue stays below `--max-queue` minus the
//!    high-water mark), and, while more events are ready at once (the room
//!    is busy), more rounds for at most `COALESCE` (1 ms), so that the
//!    lines of many reads leave in one `writev` per reader (the trade-off
//!    of Nagle's algorithm, bounded, and only under load: in a quiet room
//!    a line is written in the turn it arrives). The signal pipe is drained
//!    first; the listening socket is accepted until `EAGAIN` (past
//!    `--max-clients`, the newcomer gets a one-line refusal and is
//!    closed); standard input's lines go to every client as `[chatd] …`
//!    (at end of file the room goes on).
//!
//! # Leaving and closing
//!
//! A client that half-closes has finished: its last bytes are relayed (a
//! last line without a newline too), it is announced as `-!- NAME left`,
//! and it is let go as below (`printf 'hello\n' | nc -N host port` exits
//! at once). A client that wants to keep listening must not half-close.
//!
//! A client that says `bye` or reaches end of file leaves the room at once
//! (nothing more is queued for it), and what was already queued is still
//! written; then the server half-closes (`shutdown(SHUT_WR)`) and reads
//! until the client closes too, for at most [`LINGER`], so that the client
//! reads everything and the close never turns into a reset. A client whose
//! connection failed is closed at once.
//!
//! `arret` on standard input (or from a client, with
//! `--allow-remote-stop`) closes the room the same way for everyone and
//! exits 0. SIGINT, SIGTERM and SIGHUP do too, after `-!- the room is
//! closing` to every client and to standard output, and the server exits
//! 128+N; a second signal exits at once.
//!
//! # Standard output
//!
//! The server's standard output shows the room and is a reader like the
//! clients. A pipe or a terminal is written only when `epoll` (or `poll`,
//! between pieces) says it is writable, `PIPE_BUF` bytes at a time (a pipe
//! takes that much without blocking): one that keeps up never loses a line
//! (`chatd --broker | tee room.log`), and paces the room while it moves; a
//! pager that stops reading, or a terminal frozen with Ctrl-S, is a reader
//! that stopped: after the stall timeout (or `--max-queue` behind) the
//! lines for it are dropped and counted on standard error, and the room
//! goes on. A regular file never blocks: it is written directly, every
//! line (`chatd --broker > room.log`). A closed standard output (`EPIPE`)
//! ends the server quietly with status 0, as everywhere else in `chatd`.
//!
//! # The operator's terminal
//!
//! When standard input and standard output are one terminal, the
//! operator types at the line editor of one-to-one `chatd`
//! ([`crate::editor`]): the room's output goes through
//! [`crate::terminal::Terminal::peer`], which prints it above the line
//! being typed and draws that line again, and each finished line goes to
//! [`Room::from_operator`], where a line that begins with `/` is one of
//! the operator's commands (`/who`, `/msg`, `/kick`, `/me`, `/quit`).
//! With a pipe or a file on standard input nothing of this runs.

pub mod frame;
pub(crate) mod log;
pub mod name;
pub(crate) mod pace;
pub(crate) mod queue;
pub mod room;

use std::collections::VecDeque;
use std::io::{IoSlice, Write as _};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};

use crate::access::Access;
use crate::editor::Editor;
use crate::error::Error;
use crate::net::{Accepting, Next};
use crate::pump::{stdin, stdout};
use crate::signals::Signals;
use crate::tls::event::{Got, Secure, Shake};
use crate::tls::names::Reservations;
use crate::{pump, report, status};
use room::{Action, ClientId, Limits, Reader, Room};

/// How long a leaving client (or, after `arret` or a signal, every client)
/// has to read what is queued for it and close its end, after which its
/// socket is closed anyway: 2 s, as the 1-to-1 sessions wait after a
/// protocol word.
pub(crate) const LINGER: Duration = crate::session::WORD_LINGER;

/// Bytes read from one socket (or standard input) at most at once: 64 KiB
/// (usually less: see [`room::Room::may_read`]).
const READ_SIZE: usize = 64 * 1024;

/// Rounds of `epoll_wait` gathered into one turn while events keep coming
/// without waiting (see the module documentation).
const GATHER: usize = 64;

/// Under load, how long a turn may keep gathering events before it writes:
/// 1 ms, far below what a person notices, and enough for the lines of many
/// reads to leave together.
const COALESCE: Duration = Duration::from_millis(1);

/// Slices written to one reader per `writev(2)` (Linux allows 1024).
const IOV_SLICES: usize = 128;

/// The most bytes written to a pipe or terminal standard output in one
/// turn (256 KiB), so that a fast reader of it does not hold up the room.
const STDOUT_TURN: usize = 256 * 1024;

/// The send buffer asked for each client socket (`SO_SNDBUF`; Linux
/// doubles it): 64 KiB. The room, not the kernel, holds a reader's
/// backlog: with 10,000 clients, buffers autotuned up to 4 MiB each would
/// be kernel memory the room cannot see, and a reader's progress would
/// show as `EPOLLOUT` only in steps of megabytes (a slow reader could
/// then look stopped for more than [`pace::GRACE`]).
const SEND_BUFFER: usize = 64 * 1024;

/// `SIOCOUTQ`: the bytes of a TCP socket's send queue that its peer has
/// not acknowledged (unsent ones included). `linux/sockios.h` defines it
/// as `TIOCOUTQ`, the only name the libc crate has.
const SIOCOUTQ: libc::Ioctl = libc::TIOCOUTQ;

/// The bytes still queued in `fd` for its reader, as the kernel counts
/// them with `request` (`SIOCOUTQ` for a socket: not yet acknowledged by
/// the peer; `TIOCOUTQ` for a terminal; `FIONREAD` for a pipe: not yet
/// read), or `None` if the kernel does not say.
fn queued(fd: BorrowedFd<'_>, request: libc::Ioctl) -> Option<usize> {
    let mut n: libc::c_int = 0;
    // SAFETY: these requests write one int through the pointer, which
    // points to a live local; `fd` is open for the call (borrowed).
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), request, &mut n) };
    if rc != 0 {
        return None;
    }
    usize::try_from(n).ok()
}

/// Whether the kernel took bytes from `fd`'s queue since `*last` was
/// counted (see [`queued`]); counts again into `*last`.
fn taken(fd: BorrowedFd<'_>, request: libc::Ioctl, last: &mut usize) -> bool {
    let Some(now) = queued(fd, request) else {
        return false;
    };
    let took = now < *last;
    *last = now;
    took
}

/// File descriptors kept free besides the clients: the epoll instance,
/// a newcomer being refused, and room for the unexpected.
const SPARE_FDS: u64 = 8;

/// The refusal a client beyond `--max-clients` receives before its close.
fn refusal(max: usize) -> String {
    let plural = if max == 1 { "" } else { "s" };
    format!("-!- the room is full ({max} client{plural}); try again later\n")
}

/// The token of a client in its TLS handshake: this bit, plus its index
/// in the list of handshakes (below the other tokens).
const SHAKING: u64 = 1 << 62;

/// Event tokens other than clients (whose token is their index).
const SIGNALS: u64 = u64::MAX;
const LISTENER: u64 = u64::MAX - 1;
const STDIN: u64 = u64::MAX - 2;
const STDOUT: u64 = u64::MAX - 3;

/// The settings of the room, from `chatd`'s command line (built by
/// `cli`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Config {
    /// `--max-clients`: at most this many clients at once (at least 1).
    pub max_clients: usize,
    /// `--max-line`, `--max-queue`, `--stall-timeout`,
    /// `--allow-remote-stop`, and `--raw` (no cleaning).
    pub limits: Limits,
    /// `--idle-timeout`: a client from which nothing arrived for this long
    /// is closed.
    pub idle: Option<Duration>,
    /// `--name`: the operator's name ([`name::SERVER`] by default).
    pub operator: String,
}

/// Runs the room on `listener` until `arret` on standard input (or from a
/// client, with `--allow-remote-stop`), a closed standard output, or a
/// terminating signal.
///
/// At start, raises the soft limit of open files (`RLIMIT_NOFILE`) to the
/// hard limit and says on standard error if `--max-clients` cannot fit in
/// it; the room then takes as many clients as fit.
///
/// With `tls` (`--tls`; the configuration is built by `server` from the
/// identity it read or made, not by the command line, which reads no
/// file), every client does its handshake before it joins, and the names
/// bound to certificates are read from [`crate::tls::names::path`].
///
/// Errors: [`Error::Msg`] for limits that make no sense (`--max-line 0`, a
/// `--max-queue` that cannot hold one line); [`Error::Signal`] for SIGINT,
/// SIGTERM, SIGHUP (after the room was closed); [`Error::Sys`] if `epoll`
/// or `accept` fail for a reason other than a client's (or if writing to
/// standard output fails other than with `EPIPE`).
pub(crate) fn run(
    listener: TcpListener,
    signals: &Signals,
    config: &Config,
    access: Access,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> Result<(), Error> {
    let limits = limits(config)?;
    let max_clients = fit_clients(config.max_clients);
    let mut broker = Broker::new(listener, signals, limits, max_clients)?;
    broker.access = access;
    broker.idle = config.idle;
    if let Some(config) = tls {
        // Names bound to certificates, kept across restarts.
        let path = crate::tls::names::path()?;
        let reservations = Reservations::load(&path, name::Keys::list)?;
        for (line, why) in &reservations.malformed {
            report!("{}:{line}: ignored: {why}", path.display());
        }
        broker.room.set_reservations(reservations);
        broker.tls = Some(Tls {
            config,
            reservations: path,
        });
    }
    // A person at the terminal: the line editor, and commands.
    broker.editor = Editor::new();
    broker
        .room
        .set_operator(&config.operator, broker.editor.is_some());
    if let Some(editor) = &mut broker.editor {
        editor.start();
    }
    broker.run()
}

/// The room's limits, checked. Errors: a limit that makes no sense, as a
/// one-line [`Error::Msg`] (the command line refuses them first).
fn limits(config: &Config) -> Result<Limits, Error> {
    let limits = config.limits;
    if limits.max_line == 0 {
        return Err(Error::Msg("--max-line must be at least 1".into()));
    }
    if config.max_clients == 0 {
        return Err(Error::Msg("--max-clients must be at least 1".into()));
    }
    if let Some(why) = limits.queue_too_small() {
        return Err(Error::Msg(format!(
            "invalid --max-queue '{}': {why}",
            limits.max_queue
        )));
    }
    Ok(limits)
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit and returns how many
/// clients fit: `wanted`, or fewer (said on standard error) when the limit
/// minus the descriptors already open and [`SPARE_FDS`] is smaller.
fn fit_clients(wanted: usize) -> usize {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return wanted;
    };
    let mut limit = soft;
    if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
        limit = hard;
    }
    let open = std::fs::read_dir("/proc/self/fd").map_or(16, |dir| dir.count() as u64);
    let fit = usize::try_from(limit.saturating_sub(open + SPARE_FDS)).unwrap_or(usize::MAX);
    if wanted > fit {
        report!(
            "--max-clients {wanted} does not fit in the limit of {limit} open files: \
             at most {fit} clients at once"
        );
        return fit;
    }
    wanted
}

/// The request that counts what standard output's reader has not taken:
/// `FIONREAD` for a pipe, `TIOCOUTQ` (`SIOCOUTQ`) otherwise.
fn stdout_request() -> libc::Ioctl {
    let fifo =
        nix::sys::stat::fstat(stdout()).is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFIFO);
    if fifo { libc::FIONREAD } else { libc::TIOCOUTQ }
}

/// Whether `fd` can be written now (`poll` with a zero timeout).
fn writable(fd: BorrowedFd<'_>) -> bool {
    let mut fds = [PollFd::new(fd, PollFlags::POLLOUT)];
    matches!(poll(&mut fds, PollTimeout::ZERO), Ok(1))
        && fds[0]
            .revents()
            .is_some_and(|r| r.contains(PollFlags::POLLOUT))
}

/// A client's socket and what the loop knows of it.
#[derive(Debug)]
struct Conn {
    stream: TcpStream,
    /// When bytes last arrived from it (or it joined), for
    /// `--idle-timeout`.
    last_rx: Instant,
    /// A read may find bytes (or its end): set by an `EPOLLIN` edge,
    /// cleared by `EAGAIN`, end of file, or a short read before the peer
    /// half-closed.
    readable: bool,
    /// The peer half-closed (`EPOLLRDHUP`): its end of file waits behind
    /// whatever it sent last.
    hup: bool,
    /// A write may be taken: cleared by `EAGAIN` or a short write, set by
    /// an `EPOLLOUT` edge.
    writable: bool,
    /// Its socket's unacknowledged bytes (`SIOCOUTQ`) after the last write
    /// that filled it, or when the room last asked: fewer later means that
    /// the client's kernel took bytes (see [`pace`]).
    unacked: usize,
    /// Set once it left the room with its queue to write ([`Action::Close`]
    /// with `flush`).
    closing: Option<Closing>,
    /// `--tls`: its TLS state, owned by the loop ([`Secure`]).
    secure: Option<Box<Secure>>,
}

/// `--tls`: what the room needs of it.
struct Tls {
    config: Arc<rustls::ServerConfig>,
    /// The file of the names bound to certificates.
    reservations: std::path::PathBuf,
}

/// A client in its TLS handshake: not in the room yet (a plain-text client
/// never joins; a stalled one is dropped after
/// [`crate::tls::config::HANDSHAKE_TIMEOUT`]).
struct Shaking {
    stream: TcpStream,
    peer: SocketAddr,
    secure: Box<Secure>,
    deadline: Instant,
}

/// A client being closed: its queue is written, then the server
/// half-closes and waits for the client's end of file, until `deadline`.
#[derive(Debug, Clone, Copy)]
struct Closing {
    deadline: Instant,
    /// The client's end of file was read.
    eof: bool,
    /// `shutdown(SHUT_WR)` was done.
    shut: bool,
    /// `--tls`: close_notify was queued.
    notified: bool,
}

/// How standard input is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Input {
    /// Through epoll (a terminal, a pipe, a socket).
    Watched,
    /// A regular file or `/dev/null`, which epoll refuses (`EPERM`): one
    /// read per turn, without waiting.
    Always,
    /// End of file (or `arret`): not read any more.
    Done,
}

/// How standard output is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Output {
    /// Through epoll: `PIPE_BUF` bytes at a time when writable.
    Watched,
    /// A regular file or `/dev/null`, which epoll refuses and which never
    /// blocks: written at once, in full, every turn and whenever half of
    /// `--max-queue` waits; nothing is dropped.
    Direct,
}

struct Broker<'a> {
    signals: &'a Signals,
    epoll: Epoll,
    listener: TcpListener,
    /// The listener is in the interest list with `EPOLLIN` (not while
    /// `accept` is paused for want of descriptors, nor after `arret`).
    accepting: bool,
    /// A pause of `accept` for want of descriptors ([`Accepting`]): until
    /// it ends on its timer, or a client leaves.
    pause: Accepting,
    room: Room,
    conns: Vec<Option<Conn>>,
    max_clients: usize,
    input: Input,
    /// `EPOLLIN` is asked for standard input (not while the room is
    /// paused).
    input_armed: bool,
    output: Output,
    /// `EPOLLOUT` is asked for standard output.
    output_armed: bool,
    /// With [`Output::Direct`], standard output is written as soon as this
    /// many bytes wait (half of `--max-queue`), not only once per turn.
    stdout_high: usize,
    /// How to count the bytes standard output's reader has not taken yet
    /// (`FIONREAD` for a pipe, `TIOCOUTQ` for a terminal or a socket), with
    /// [`Output::Watched`].
    stdout_queued: Option<libc::Ioctl>,
    /// That count after the last write that filled standard output, or
    /// when the room last asked.
    stdout_unread: usize,
    buf: Vec<u8>,
    /// Clients that got a private line (from the room), or whose socket
    /// became writable, to write this turn.
    ready: Vec<ClientId>,
    /// Clients whose `readable` is set, in the order they became so.
    readable: Vec<ClientId>,
    /// The last round of reads read something (more may follow at once).
    reading: bool,
    /// The room is paused (see [`pace`]).
    paused: bool,
    /// When the room must be checked again at the latest.
    pace_next: Option<Instant>,
    actions: Vec<Action>,
    /// Deadlines of closing clients, in order (all are now + [`LINGER`]).
    deadlines: VecDeque<(Instant, ClientId)>,
    /// Closed this turn: their slots are given back to the room after the
    /// turn's events, so that no event of the turn reaches a newcomer.
    released: Vec<ClientId>,
    /// `arret` (or a signal): when everything is closed (or at this
    /// deadline), exit.
    stop: Option<Instant>,
    /// The terminating signal that closed the room: the exit status is
    /// 128+N.
    signal: Option<i32>,
    /// Standard output is closed: exit 0 quietly.
    stdout_closed: bool,
    /// `--allow`/`--deny`: checked before a newcomer joins.
    access: Access,
    /// `--idle-timeout`: a member from whom nothing arrived for this long
    /// leaves as `-!- NAME left (idle)`.
    idle: Option<Duration>,
    /// When members are next checked for `--idle-timeout`.
    next_sweep: Option<Instant>,
    /// The line editor, when standard input and standard output are the
    /// operator's terminal: lines are typed with a prompt, what the room
    /// says is printed above them ([`crate::terminal::Terminal::peer`]),
    /// and a line that begins with `/` is a command
    /// ([`Room::from_operator`]).
    editor: Option<Editor>,
    /// `--tls`: the handshake's configuration and the reservations' file.
    tls: Option<Tls>,
    /// Clients in their TLS handshake (token [`SHAKING`] + index).
    shaking: Vec<Option<Shaking>>,
    /// Their deadlines, in order (all are now + the handshake timeout).
    shake_deadlines: VecDeque<(Instant, usize)>,
}

impl<'a> Broker<'a> {
    fn new(
        listener: TcpListener,
        signals: &'a Signals,
        limits: Limits,
        max_clients: usize,
    ) -> Result<Broker<'a>, Error> {
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)
            .map_err(|e| Error::sys("epoll_create1", e))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| Error::io("fcntl O_NONBLOCK on the listening socket", e))?;
        let watch = |fd: BorrowedFd<'_>, flags, token, what: &str| {
            epoll
                .add(fd, EpollEvent::new(flags, token))
                .map_err(|e| Error::sys(format!("epoll_ctl add {what}"), e))
        };
        watch(signals.fd(), EpollFlags::EPOLLIN, SIGNALS, "signal pipe")?;
        watch(listener.as_fd(), EpollFlags::EPOLLIN, LISTENER, "listener")?;
        // Descriptors 0 and 1 are always open: Rust's runtime opens
        // /dev/null on them if they were closed (`chatd <&- >&-`). Files and
        // /dev/null are refused by epoll (EPERM) and never block.
        let input = match epoll.add(stdin(), EpollEvent::new(EpollFlags::EPOLLIN, STDIN)) {
            Ok(()) => Input::Watched,
            Err(Errno::EPERM) => Input::Always,
            Err(e) => return Err(Error::sys("epoll_ctl add standard input", e)),
        };
        let output = match epoll.add(stdout(), EpollEvent::new(EpollFlags::empty(), STDOUT)) {
            Ok(()) => Output::Watched,
            Err(Errno::EPERM) => Output::Direct,
            Err(e) => return Err(Error::sys("epoll_ctl add standard output", e)),
        };
        let mut room = Room::new(limits);
        if output == Output::Direct {
            // A file never blocks: its queue is written as it fills (see
            // `handle`), and nothing is dropped.
            room.set_stdout(room::Stdout::Direct);
        }
        Ok(Broker {
            signals,
            epoll,
            listener,
            accepting: true,
            pause: Accepting::default(),
            room,
            stdout_high: limits.max_queue / 2,
            stdout_queued: (output == Output::Watched).then(stdout_request),
            stdout_unread: 0,
            conns: Vec::new(),
            max_clients,
            input,
            input_armed: input == Input::Watched,
            output,
            output_armed: false,
            buf: vec![0; READ_SIZE],
            ready: Vec::new(),
            readable: Vec::new(),
            reading: false,
            paused: false,
            pace_next: None,
            actions: Vec::new(),
            deadlines: VecDeque::new(),
            released: Vec::new(),
            stop: None,
            signal: None,
            stdout_closed: false,
            access: Access::default(),
            idle: None,
            next_sweep: None,
            editor: None,
            tls: None,
            shaking: Vec::new(),
            shake_deadlines: VecDeque::new(),
        })
    }

    fn run(mut self) -> Result<(), Error> {
        let mut events = vec![EpollEvent::empty(); 1024];
        loop {
            self.sweep_idle(Instant::now());
            self.act()?;
            self.write_ready()?;
            // The rule: the loop never sleeps without a deadline while a
            // client it is not deliberately pausing may have unread bytes,
            // and a pause ends when the readers it waited for catch up. So
            // the pause is decided here, after the turn's writes and just
            // before the wait: decided before the writes, it outlived them
            // when they brought every reader below the low-water mark (no
            // reader then had a deadline, nor anything left to send, so no
            // event came), and the room slept in `epoll_wait(-1)` with a
            // talker's bytes unread until something unrelated happened.
            let pace = self.check(Instant::now());
            self.paused = pace.paused;
            self.pace_next = pace.next;
            self.act()?;
            self.save_reservations();
            if self.stdout_closed {
                return Ok(());
            }
            if let Some(deadline) = self.stop {
                let done = self.room.connections() == 0 && self.room.stdout_pending() == 0;
                if done || Instant::now() >= deadline {
                    return match self.signal {
                        Some(sig) => Err(Error::Signal(sig)),
                        None => Ok(()),
                    };
                }
            }
            // `open` first: it ends a pause whose time is up, even after
            // `arret`, so that `timeout` never sees a deadline passed.
            if self.pause.open(Instant::now()) && !self.accepting && self.stop.is_none() {
                self.set_accepting(true)?;
            }
            if self.input == Input::Watched {
                // The editor keeps taking keys while the room is paused;
                // its finished lines wait (`take_typed`).
                let on = !self.paused || self.editor.is_some();
                interest(
                    &self.epoll,
                    stdin(),
                    STDIN,
                    EpollFlags::EPOLLIN,
                    on,
                    &mut self.input_armed,
                    "standard input",
                )?;
            }
            self.gather(&mut events)?;
            if self.input == Input::Always && !self.paused {
                self.read_stdin()?;
            }
            if self.typed_waiting() {
                self.take_typed()?;
            }
            self.expire();
            self.expire_handshakes();
            for id in self.released.drain(..) {
                self.room.release(id);
            }
        }
    }

    /// [`Room::check_with`] at `now`, with the kernel's count of what each
    /// reader has not taken yet: a reader whose socket's unacknowledged
    /// bytes (`SIOCOUTQ`) went down since the last write that filled it has
    /// made room, whether or not its `EPOLLOUT` edge was handled yet.
    fn check(&mut self, now: Instant) -> room::Pace {
        let conns = &mut self.conns;
        let stdout_queued = self.stdout_queued;
        let stdout_unread = &mut self.stdout_unread;
        self.room.check_with(now, &mut |reader| match reader {
            Reader::Client(id) => conns
                .get_mut(id.index())
                .and_then(Option::as_mut)
                .is_some_and(|c| taken(c.stream.as_fd(), SIOCOUTQ, &mut c.unacked)),
            Reader::Stdout => stdout_queued.is_some_and(|req| taken(stdout(), req, stdout_unread)),
        })
    }

    /// Waits for events and handles them, with rounds of reads. Under load
    /// (more events are ready as soon as these are handled), keeps
    /// gathering for at most [`COALESCE`] before the turn writes, so that
    /// the lines of many reads leave in one `writev` per reader; a lone
    /// line, in a quiet room, is written at once.
    fn gather(&mut self, events: &mut [EpollEvent]) -> Result<(), Error> {
        let mut timeout = self.timeout();
        let mut busy_since: Option<Instant> = None;
        for round in 0..GATHER {
            let n = match self.epoll.wait(events, timeout) {
                Ok(n) => n,
                Err(Errno::EINTR) => 0,
                Err(e) => return Err(Error::sys("epoll_wait", e)),
            };
            // The signal pipe first: a terminating signal wins.
            if events[..n].iter().any(|e| e.data() == SIGNALS) {
                self.on_signal()?;
            }
            for event in &events[..n] {
                self.handle(event.data(), event.events())?;
            }
            self.read_round();
            if self.stdout_closed || self.room.has_actions() {
                break;
            }
            if n == 0 && !self.reading {
                break;
            }
            if round > 0 {
                busy_since.get_or_insert_with(Instant::now);
            }
            timeout = match busy_since {
                None => EpollTimeout::ZERO,
                Some(since) => {
                    let left = COALESCE.saturating_sub(since.elapsed());
                    if left.is_zero() {
                        break;
                    }
                    if self.reading {
                        EpollTimeout::ZERO
                    } else {
                        crate::signals::timeout(left)
                    }
                }
            };
        }
        Ok(())
    }

    /// How long `epoll_wait` may wait: not at all while there is something
    /// to do at once, otherwise until the next deadline.
    fn timeout(&mut self) -> EpollTimeout {
        let busy = (self.input == Input::Always && !self.paused)
            || self.typed_waiting()
            || self.room.has_unwritten()
            || self.room.has_actions()
            || self.may_read_any();
        if busy {
            return EpollTimeout::ZERO;
        }
        let next = self
            .deadlines
            .front()
            .map(|&(t, _)| t)
            .into_iter()
            .chain(self.stop)
            .chain(self.shake_deadlines.front().map(|&(t, _)| t))
            .chain(self.next_sweep)
            .chain(self.pace_next)
            .chain(self.pause.until())
            .min();
        match next {
            Some(t) => crate::signals::timeout(t.saturating_duration_since(Instant::now())),
            None => EpollTimeout::NONE,
        }
    }

    /// The signal pipe is readable: a terminating signal closes the room
    /// (every client and standard output get `-!- the room is closing`, then
    /// queues are written within [`LINGER`]); a second one ends at once.
    fn on_signal(&mut self) -> Result<(), Error> {
        self.signals.drain();
        let Some(sig) = self.signals.terminated() else {
            return Ok(());
        };
        if self.signal.is_some() {
            return Err(Error::Signal(sig));
        }
        self.signal = Some(sig);
        self.room.close();
        Ok(())
    }

    fn handle(&mut self, token: u64, flags: EpollFlags) -> Result<(), Error> {
        match token {
            SIGNALS => Ok(()),
            LISTENER => self.accept(),
            STDIN if self.editor.is_some() => self.read_editor(),
            STDIN => {
                if !self.paused {
                    self.read_stdin()?;
                }
                Ok(())
            }
            STDOUT => {
                if flags.intersects(EpollFlags::EPOLLERR | EpollFlags::EPOLLHUP) {
                    // The reader of the pipe is gone (or the terminal).
                    self.stdout_closed = true;
                    return Ok(());
                }
                self.write_stdout()
            }
            token if token >= SHAKING => {
                self.shake((token - SHAKING) as usize);
                Ok(())
            }
            index => {
                let id = ClientId(index as usize);
                let Some(Some(conn)) = self.conns.get_mut(id.index()) else {
                    return Ok(());
                };
                if flags.intersects(EpollFlags::EPOLLRDHUP | EpollFlags::EPOLLHUP) {
                    conn.hup = true;
                }
                let readable = EpollFlags::EPOLLIN
                    | EpollFlags::EPOLLRDHUP
                    | EpollFlags::EPOLLHUP
                    | EpollFlags::EPOLLERR;
                if flags.intersects(readable) && !conn.readable {
                    conn.readable = true;
                    self.readable.push(id);
                }
                if flags.intersects(EpollFlags::EPOLLOUT | EpollFlags::EPOLLERR) {
                    conn.writable = true;
                    self.write_client(id, Instant::now());
                }
                Ok(())
            }
        }
    }

    // --- clients arriving ------------------------------------------------

    /// Accepts every waiting client (until `EAGAIN`).
    fn accept(&mut self) -> Result<(), Error> {
        if self.stop.is_some() {
            return Ok(());
        }
        loop {
            match self.listener.accept() {
                Ok((stream, peer)) => {
                    self.pause.accepted();
                    let peer = crate::net::canonical(peer);
                    if self.access.admit(peer) {
                        self.admit(stream, peer)?;
                    }
                }
                Err(e) => match self.pause.failed(&e)? {
                    Next::Again => {}
                    Next::Wait => return Ok(()),
                    // Out of descriptors or memory: the listener leaves
                    // epoll until the pause ends or a client leaves.
                    Next::Paused(_) => return self.set_accepting(false),
                },
            }
        }
    }

    /// A newcomer joins the room (after its TLS handshake, with `--tls`),
    /// or is refused if the room is full.
    fn admit(&mut self, stream: TcpStream, peer: SocketAddr) -> Result<(), Error> {
        if self.room.members() + self.shakes() >= self.max_clients {
            let max = self.max_clients;
            let plural = if max == 1 { "" } else { "s" };
            status!("refused {peer}: the room is full ({max} client{plural})");
            // Non-blocking: a refusal never waits. Whatever happens, close.
            let _ = stream.set_nonblocking(true);
            let _ = (&stream).write(refusal(max).as_bytes());
            let _ = stream.shutdown(Shutdown::Write);
            return Ok(());
        }
        if let Err(e) = stream.set_nonblocking(true) {
            report!("{peer}: fcntl O_NONBLOCK: {e}");
            return Ok(());
        }
        // Lines are written whole, with one writev per turn: Nagle's delay
        // would only add latency.
        let _ = stream.set_nodelay(true);
        let _ =
            nix::sys::socket::setsockopt(&stream, nix::sys::socket::sockopt::SndBuf, &SEND_BUFFER);
        if let Some(tls) = &self.tls {
            let secure = match Secure::new(&tls.config) {
                Ok(secure) => Box::new(secure),
                Err(why) => {
                    report!("{peer}: TLS set-up: {why}");
                    return Ok(());
                }
            };
            let slot = match self.shaking.iter().position(Option::is_none) {
                Some(slot) => slot,
                None => {
                    self.shaking.push(None);
                    self.shaking.len() - 1
                }
            };
            let flags = EpollFlags::EPOLLIN | EpollFlags::EPOLLOUT | EpollFlags::EPOLLET;
            if let Err(e) = self
                .epoll
                .add(&stream, EpollEvent::new(flags, SHAKING + slot as u64))
            {
                report!("{peer}: epoll_ctl add: {}", e.desc());
                return Ok(());
            }
            let deadline = Instant::now() + crate::tls::config::HANDSHAKE_TIMEOUT;
            self.shaking[slot] = Some(Shaking {
                stream,
                peer,
                secure,
                deadline,
            });
            self.shake_deadlines.push_back((deadline, slot));
            // Its ClientHello may be there already (no new edge then).
            self.shake(slot);
            return Ok(());
        }
        self.join(stream, peer, None);
        Ok(())
    }

    /// A newcomer enters the room: its slot, its socket watched for
    /// reading and writing (edge-triggered).
    fn join(&mut self, stream: TcpStream, peer: SocketAddr, secure: Option<Box<Secure>>) {
        let fingerprint = secure.as_ref().and_then(|s| s.peer_fingerprint());
        let id = self.room.join(peer);
        if let Some(fingerprint) = fingerprint {
            self.room.set_certificate(id, fingerprint);
        }
        let token = id.index() as u64;
        let flags = EpollFlags::EPOLLIN
            | EpollFlags::EPOLLOUT
            | EpollFlags::EPOLLRDHUP
            | EpollFlags::EPOLLET;
        let tls = secure.is_some();
        let watched = if tls {
            // Watched since its handshake: only its token changes.
            self.epoll
                .modify(&stream, &mut EpollEvent::new(flags, token))
        } else {
            self.epoll.add(&stream, EpollEvent::new(flags, token))
        };
        if self.conns.len() <= id.index() {
            self.conns.resize_with(id.index() + 1, || None);
        }
        self.conns[id.index()] = Some(Conn {
            stream,
            last_rx: Instant::now(),
            // With TLS, bytes may wait in rustls already (a line sent
            // right after the handshake): no edge would announce them.
            readable: tls,
            hup: false,
            writable: true,
            unacked: 0,
            closing: None,
            secure,
        });
        if tls {
            self.readable.push(id);
        }
        if let Err(e) = watched {
            // Only this client is lost (epoll's limit of watched sockets).
            report!("{peer}: epoll_ctl add: {}", e.desc());
            self.room.lost(id);
        }
    }

    /// Clients in their TLS handshake.
    fn shakes(&self) -> usize {
        self.shaking.iter().filter(|s| s.is_some()).count()
    }

    /// A client in its handshake has bytes (or room): the handshake moves
    /// on; complete, the client joins the room; a plain-text client is
    /// refused in one line; a failure is a status line.
    fn shake(&mut self, slot: usize) {
        let Some(Some(shaking)) = self.shaking.get_mut(slot) else {
            return;
        };
        let outcome = shaking.secure.handshake(shaking.stream.as_fd());
        let peer = shaking.peer;
        match outcome {
            Shake::Pending => return,
            Shake::Done => {}
            Shake::PlainText(ref bytes) => {
                status!(
                    "{peer} spoke plain text to a TLS port (\"{}\"): refused",
                    crate::tls::handshake::shown(bytes)
                );
                let fd = shaking.stream.as_raw_fd();
                // Its bytes are read first: closing with them unread
                // would reset the refusal away.
                let mut sink = [0u8; 4096];
                while let Ok(1..) =
                    nix::sys::socket::recv(fd, &mut sink, nix::sys::socket::MsgFlags::MSG_DONTWAIT)
                {
                }
                let _ = (&shaking.stream).write(crate::tls::handshake::PLAIN_REFUSAL);
                let _ = shaking.stream.shutdown(Shutdown::Write);
            }
            Shake::Closed => status!("{peer} closed the connection during the TLS handshake"),
            Shake::Failed(ref why) => status!("TLS handshake with {peer} failed: {why}"),
        }
        let Some(shaking) = self.shaking[slot].take() else {
            return;
        };
        if !matches!(outcome, Shake::Done) {
            let _ = self.epoll.delete(&shaking.stream);
            return;
        }
        match shaking.secure.peer_fingerprint() {
            Some(fp) => status!(
                "{} with {peer}, client certificate {fp}",
                shaking.secure.version()
            ),
            None => status!(
                "{} with {peer}, no client certificate",
                shaking.secure.version()
            ),
        }
        if self.stop.is_some() {
            let _ = self.epoll.delete(&shaking.stream);
            return;
        }
        self.join(shaking.stream, peer, Some(shaking.secure));
    }

    /// Drops the clients whose handshake did not complete in time.
    fn expire_handshakes(&mut self) {
        let now = Instant::now();
        while let Some(&(deadline, slot)) = self.shake_deadlines.front() {
            if deadline > now {
                break;
            }
            self.shake_deadlines.pop_front();
            if let Some(Some(shaking)) = self.shaking.get(slot)
                && shaking.deadline == deadline
                && let Some(shaking) = self.shaking[slot].take()
            {
                status!(
                    "no TLS handshake from {} within {} s: dropped",
                    shaking.peer,
                    crate::tls::config::HANDSHAKE_TIMEOUT.as_secs()
                );
                let _ = self.epoll.delete(&shaking.stream);
                if !shaking.secure.heard() {
                    // Perhaps a plain-text client waiting for its user.
                    let _ = (&shaking.stream).write(crate::tls::handshake::PLAIN_REFUSAL);
                    let _ = shaking.stream.shutdown(Shutdown::Write);
                }
            }
        }
    }

    /// Writes the names bound to certificates when one was reserved.
    fn save_reservations(&mut self) {
        let Some(tls) = &self.tls else {
            return;
        };
        if let Some(reservations) = self.room.take_reservations()
            && let Err(e) = reservations.save(&tls.reservations)
        {
            report!("{e}");
        }
    }

    fn set_accepting(&mut self, on: bool) -> Result<(), Error> {
        let (epoll, listener) = (&self.epoll, &self.listener);
        let flags = EpollFlags::EPOLLIN;
        interest(
            epoll,
            listener,
            LISTENER,
            flags,
            on,
            &mut self.accepting,
            "listener",
        )
    }

    // --- reading -----------------------------------------------------------

    /// Whether a readable client may be read now (see [`Room::may_read`]).
    fn may_read_any(&mut self) -> bool {
        for &id in &self.readable {
            let Some(Some(conn)) = self.conns.get(id.index()) else {
                continue;
            };
            if conn.readable && (conn.closing.is_some() || self.room.may_read(id).is_some()) {
                return true;
            }
        }
        false
    }

    /// One read from each readable client that may be read now (see
    /// [`Room::may_read`]); the others stay readable for a later round.
    /// Sets `self.reading` when a read happened and more may follow.
    fn read_round(&mut self) {
        let list = std::mem::take(&mut self.readable);
        let mut keep = Vec::with_capacity(list.len());
        let mut read_any = false;
        for id in list {
            let Some(Some(conn)) = self.conns.get(id.index()) else {
                continue;
            };
            if !conn.readable {
                continue;
            }
            let budget = if conn.closing.is_some() {
                Some(READ_SIZE)
            } else {
                self.room.may_read(id)
            };
            if let Some(budget) = budget {
                self.read_client(id, budget.min(READ_SIZE));
                read_any = true;
            }
            if let Some(Some(conn)) = self.conns.get(id.index())
                && conn.readable
            {
                keep.push(id);
            }
        }
        keep.append(&mut self.readable);
        self.readable = keep;
        self.reading = read_any && !self.readable.is_empty();
    }

    /// One read of at most `want` bytes from a client: to the room, or
    /// (closing) to nowhere.
    fn read_client(&mut self, id: ClientId, want: usize) {
        let Some(Some(conn)) = self.conns.get_mut(id.index()) else {
            return;
        };
        let closing = conn.closing.is_some();
        let got = match &mut conn.secure {
            None => pump::read(&conn.stream, &mut self.buf[..want]).map(|n| (n, n == want)),
            Some(secure) => match secure.read(conn.stream.as_fd(), &mut self.buf[..want]) {
                Ok(Got::Data(n)) => Ok((n, true)),
                Ok(Got::WouldBlock) => Err(Errno::EAGAIN),
                Ok(Got::End(_)) => Ok((0, false)),
                Err(e) => {
                    if let Some(why) = secure.failure() {
                        match conn.stream.peer_addr() {
                            Ok(peer) => status!(
                                "TLS connection with {}: {why}",
                                crate::net::canonical(peer)
                            ),
                            Err(_) => status!("TLS connection failed: {why}"),
                        }
                    }
                    Err(e)
                }
            },
        };
        let Some(Some(conn)) = self.conns.get_mut(id.index()) else {
            return;
        };
        match got {
            Ok((n, more)) if n > 0 => {
                // A short read drained the socket, and the next bytes will
                // bring a new edge, unless the peer half-closed: its end of
                // file may have come with these bytes (`printf 'hello\n' |
                // nc -N`), and no edge follows it. Then read on until end of
                // file (or `EAGAIN`). (rustls may hold more than one read
                // gives: a TLS client reads on until `EAGAIN`.)
                conn.readable = more || conn.hup;
                if !closing {
                    conn.last_rx = Instant::now();
                    self.room.receive(id, &self.buf[..n]);
                    if self.output == Output::Direct
                        && self.room.stdout_pending() >= self.stdout_high
                    {
                        let _ = self.write_stdout();
                    }
                }
            }
            Err(Errno::EAGAIN) => conn.readable = false,
            Ok(_) | Err(_) if closing => {
                // Its end of file (or an error) is what we were waiting
                // for.
                conn.readable = false;
                if let Some(closing) = &mut conn.closing {
                    closing.eof = true;
                }
                self.finish_closing(id);
            }
            Ok(_) => {
                conn.readable = false;
                self.room.end_of_input(id);
            }
            Err(_) => {
                conn.readable = false;
                self.room.lost(id);
            }
        }
    }

    /// One read from standard input, to the room.
    fn read_stdin(&mut self) -> Result<(), Error> {
        if self.input == Input::Done {
            return Ok(());
        }
        let Some(budget) = self.room.may_read_server() else {
            return Ok(());
        };
        let want = budget.min(READ_SIZE);
        match pump::read(stdin(), &mut self.buf[..want]) {
            // EIO: a terminal that hung up, or a background process group.
            Ok(0) | Err(Errno::EIO) => {
                self.room.server_end_of_input();
                self.stop_input();
            }
            Ok(n) => self.room.from_server(&self.buf[..n]),
            Err(Errno::EAGAIN) => {}
            Err(e) => {
                report!("read standard input: {}", e.desc());
                self.stop_input();
            }
        }
        Ok(())
    }

    /// Standard input is the operator's terminal and has keys: the editor
    /// reads them; its finished lines go to the room unless it is paused
    /// ([`Broker::take_typed`]), when they wait, shown below the prompt.
    fn read_editor(&mut self) -> Result<(), Error> {
        if self.input == Input::Done {
            return Ok(());
        }
        if self.paused {
            if let Some(editor) = &mut self.editor {
                editor
                    .pump()
                    .map_err(|e| Error::sys("read standard input", e))?;
            }
            return Ok(());
        }
        self.take_typed()
    }

    /// Whether lines typed at the editor wait while the room may take them.
    fn typed_waiting(&self) -> bool {
        !self.paused
            && self.input != Input::Done
            && self.editor.as_ref().is_some_and(Editor::has_lines)
    }

    /// Hands the lines finished at the editor to the room, within the
    /// server's read budget (at least one line), as commands or lines
    /// ([`Room::from_operator`]). Ctrl-D on an empty line ends the
    /// operator's input: the room goes on, and a status line says so.
    fn take_typed(&mut self) -> Result<(), Error> {
        let Some(editor) = &mut self.editor else {
            return Ok(());
        };
        let mut budget = self.room.may_read_server().unwrap_or(0);
        loop {
            match editor.take(&mut self.buf) {
                Ok(0) => {
                    status!("input ended; the room goes on (Ctrl-C closes it)");
                    self.stop_input();
                    return Ok(());
                }
                Ok(n) => {
                    self.room.from_operator(&self.buf[..n - 1]);
                    budget = budget.saturating_sub(n);
                    if budget == 0 || self.room.is_stopped() {
                        return Ok(());
                    }
                }
                Err(Errno::EAGAIN) => return Ok(()),
                Err(e) => return Err(Error::sys("read standard input", e)),
            }
        }
    }

    fn stop_input(&mut self) {
        if self.input == Input::Watched {
            let _ = self.epoll.delete(stdin());
        }
        self.input = Input::Done;
    }

    // --- writing -----------------------------------------------------------

    /// Writes to the readers that may have something new: every client
    /// when the log grew, otherwise those that got a private line; and
    /// standard output.
    fn write_ready(&mut self) -> Result<(), Error> {
        self.room.flush();
        let now = Instant::now();
        let grew = self.room.take_ready(&mut self.ready);
        if grew {
            self.ready.clear();
            for index in 0..self.conns.len() {
                if self.conns[index].is_some() {
                    self.write_client(ClientId(index), now);
                }
            }
        } else {
            let ready = std::mem::take(&mut self.ready);
            for &id in &ready {
                self.write_client(id, now);
            }
            self.ready = ready;
            self.ready.clear();
        }
        if self.room.stdout_pending() > 0 {
            match self.output {
                Output::Direct => self.write_stdout()?,
                Output::Watched => self.arm_stdout(true)?,
            }
        }
        Ok(())
    }

    /// Writes as much of the client's queue as its socket takes.
    fn write_client(&mut self, id: ClientId, now: Instant) {
        let Some(Some(conn)) = self.conns.get_mut(id.index()) else {
            return;
        };
        let Some((queue, log)) = self.room.outbox(id) else {
            return;
        };
        let head = log.head();
        queue.settle();
        let mut failed = false;
        // TLS: what rustls holds goes before anything new.
        if conn.writable
            && let Some(secure) = &mut conn.secure
        {
            match secure.flush(conn.stream.as_fd()) {
                Ok(()) => {}
                Err(Errno::EAGAIN) => conn.writable = false,
                Err(_) => failed = true,
            }
        }
        if !conn.writable && !failed {
            if queue.waiting_since().is_none()
                && !queue.is_empty(head)
                && let Some(n) = queued(conn.stream.as_fd(), SIOCOUTQ)
            {
                conn.unacked = n;
            }
            queue.note_write(head, 0, true, now);
            return;
        }
        let mut total = 0;
        while !queue.is_empty(head) && !failed {
            let mut iov = [IoSlice::new(&[]); IOV_SLICES];
            let n = queue.io_slices(log, &mut iov, usize::MAX);
            let want: usize = iov[..n].iter().map(|s| s.len()).sum();
            let wrote = match &mut conn.secure {
                None => nix::sys::uio::writev(&conn.stream, &iov[..n]),
                Some(secure) => {
                    let wrote = secure.write_vectored(conn.stream.as_fd(), &iov[..n]);
                    if secure.wants_write() {
                        // Taken but not all sent: the rest waits in
                        // rustls for the socket's EPOLLOUT.
                        conn.writable = false;
                    }
                    wrote
                }
            };
            match wrote {
                Ok(written) => {
                    queue.advance(log, written);
                    total += written;
                    if written < want || !conn.writable {
                        // The socket is full: wait for its EPOLLOUT edge.
                        conn.writable = false;
                        break;
                    }
                }
                Err(Errno::EINTR) => {}
                Err(Errno::EAGAIN) => {
                    conn.writable = false;
                    break;
                }
                Err(_) => {
                    failed = true;
                    break;
                }
            }
        }
        // The count to compare with when asked: taken when bytes were
        // added to a full socket, or when its stall clock starts (what the
        // kernel took before does not count).
        if !conn.writable
            && !queue.is_empty(head)
            && (total > 0 || queue.waiting_since().is_none())
            && let Some(n) = queued(conn.stream.as_fd(), SIOCOUTQ)
        {
            conn.unacked = n;
        }
        queue.note_write(head, total, !conn.writable, now);
        let pending =
            !queue.is_empty(head) || conn.secure.as_ref().is_some_and(|s| s.wants_write());
        if failed {
            if conn.closing.is_some() {
                self.close(id);
            } else {
                self.room.lost(id);
            }
            return;
        }
        if !pending {
            self.finish_closing(id);
        }
    }

    /// Writes the room's standard output: all of it to a file; to a pipe
    /// or a terminal, `PIPE_BUF` bytes at a time (a write that cannot
    /// block once `poll` says the pipe is writable), checking writability
    /// again before each further piece, at most [`STDOUT_TURN`] bytes a
    /// turn.
    fn write_stdout(&mut self) -> Result<(), Error> {
        let watched = self.output == Output::Watched;
        let max = if watched { libc::PIPE_BUF } else { usize::MAX };
        let now = Instant::now();
        // The operator's terminal: above the line being typed.
        let terminal = crate::terminal::terminal().filter(|_| self.editor.is_some());
        let mut bytes = Vec::new();
        let (queue, log) = self.room.stdout_outbox();
        let head = log.head();
        queue.settle();
        let mut written_now = 0;
        while !queue.is_empty(head) {
            if watched && written_now > 0 && (written_now >= STDOUT_TURN || !writable(stdout())) {
                break;
            }
            let mut iov = [IoSlice::new(&[]); IOV_SLICES];
            let n = queue.io_slices(log, &mut iov, max);
            let written = match terminal {
                Some(terminal) => {
                    bytes.clear();
                    for slice in &iov[..n] {
                        bytes.extend_from_slice(slice);
                    }
                    terminal.peer(&bytes).map(|()| bytes.len())
                }
                None => nix::sys::uio::writev(stdout(), &iov[..n]),
            };
            match written {
                Ok(written) => {
                    queue.advance(log, written);
                    written_now += written;
                }
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) => break,
                Err(Errno::EPIPE) => {
                    self.stdout_closed = true;
                    return Ok(());
                }
                // The operator's terminal hung up.
                Err(Errno::EIO) if terminal.is_some() => {
                    self.stdout_closed = true;
                    return Ok(());
                }
                Err(e) => return Err(Error::sys("write to standard output", e)),
            }
        }
        let pending = !queue.is_empty(head);
        // As for a client (see `write_client`).
        if pending
            && (written_now > 0 || queue.waiting_since().is_none())
            && let Some(request) = self.stdout_queued
            && let Some(n) = queued(stdout(), request)
        {
            self.stdout_unread = n;
        }
        queue.note_write(head, written_now, pending, now);
        if written_now > 0 {
            let dropped = self.room.take_stdout_dropped();
            if dropped > 0 {
                let plural = if dropped == 1 { "" } else { "s" };
                status!(
                    "{dropped} line{plural} of the room not shown: standard output did not keep up"
                );
            }
        }
        if watched {
            self.arm_stdout(pending)?;
        }
        Ok(())
    }

    fn arm_stdout(&mut self, on: bool) -> Result<(), Error> {
        let flags = EpollFlags::EPOLLOUT;
        let what = "standard output";
        interest(
            &self.epoll,
            stdout(),
            STDOUT,
            flags,
            on,
            &mut self.output_armed,
            what,
        )
    }

    // --- leaving -------------------------------------------------------------

    /// `--idle-timeout`: members from whom nothing arrived for that long
    /// leave as `-!- NAME left (idle)`. Checked every tenth of the timeout
    /// (between 10 ms and 1 s), so a silent client goes within 10 % late.
    fn sweep_idle(&mut self, now: Instant) {
        let Some(idle) = self.idle else {
            return;
        };
        if self.next_sweep.is_some_and(|t| now < t) {
            return;
        }
        let step = (idle / 10).clamp(Duration::from_millis(10), Duration::from_secs(1));
        self.next_sweep = Some(now + step);
        for (index, conn) in self.conns.iter().enumerate() {
            if let Some(conn) = conn
                && conn.closing.is_none()
                && now.duration_since(conn.last_rx) >= idle
            {
                self.room.idle(ClientId(index));
            }
        }
    }

    /// Does what the room asked.
    fn act(&mut self) -> Result<(), Error> {
        self.room.take_actions(&mut self.actions);
        let actions = std::mem::take(&mut self.actions);
        for &action in &actions {
            match action {
                Action::Close { id, flush: false } => self.close(id),
                Action::Close { id, flush: true } => self.start_closing(id),
                Action::Stop => self.stop_room(),
            }
        }
        self.actions = actions;
        self.actions.clear();
        Ok(())
    }

    /// A client left with its queue to write: write it, then half-close
    /// and wait for its end of file, at most [`LINGER`].
    fn start_closing(&mut self, id: ClientId) {
        let Some(Some(conn)) = self.conns.get_mut(id.index()) else {
            return;
        };
        if conn.closing.is_some() {
            return;
        }
        let deadline = Instant::now() + LINGER;
        conn.closing = Some(Closing {
            deadline,
            eof: false,
            shut: false,
            notified: false,
        });
        if !conn.readable {
            // Whatever it still sends is read (and dropped) until its end.
            conn.readable = true;
            self.readable.push(id);
        }
        self.deadlines.push_back((deadline, id));
        self.write_client(id, Instant::now());
    }

    /// For a closing client whose queue is written: half-close once, and
    /// close when its end of file was read too.
    fn finish_closing(&mut self, id: ClientId) {
        let Some(Some(conn)) = self.conns.get_mut(id.index()) else {
            return;
        };
        let Some(closing) = &mut conn.closing else {
            return;
        };
        if self.room.pending(id) > 0 {
            return;
        }
        // TLS: close_notify first, and everything rustls holds sent
        // (the rest on the next EPOLLOUT), then the TCP half-close.
        if let Some(secure) = &mut conn.secure {
            if !closing.notified {
                closing.notified = true;
                secure.send_close_notify();
            }
            match secure.flush(conn.stream.as_fd()) {
                Ok(()) => {}
                Err(Errno::EAGAIN) => {
                    conn.writable = false;
                    return;
                }
                Err(_) => {
                    self.close(id);
                    return;
                }
            }
        }
        if !closing.shut {
            closing.shut = true;
            if conn.stream.shutdown(Shutdown::Write).is_err() {
                self.close(id);
                return;
            }
        }
        if closing.eof {
            self.close(id);
        }
    }

    /// Closes a client's socket now; its slot goes back to the room after
    /// this turn's events.
    fn close(&mut self, id: ClientId) {
        let Some(conn) = self.conns.get_mut(id.index()).and_then(Option::take) else {
            return;
        };
        let _ = self.epoll.delete(&conn.stream);
        drop(conn);
        self.released.push(id);
        if !self.accepting && self.stop.is_none() {
            // A descriptor is free again: no need to wait for the timer.
            self.pause.resume();
            let _ = self.set_accepting(true);
        }
    }

    /// Closes the clients whose [`LINGER`] is over.
    fn expire(&mut self) {
        let now = Instant::now();
        while let Some(&(deadline, id)) = self.deadlines.front() {
            if deadline > now {
                break;
            }
            self.deadlines.pop_front();
            let current = self.conns.get(id.index()).and_then(Option::as_ref);
            if current
                .and_then(|c| c.closing)
                .is_some_and(|c| c.deadline == deadline)
            {
                self.close(id);
            }
        }
    }

    /// `arret` or a signal: no more clients, no more standard input; every
    /// client is being closed (the room asked), then the server exits.
    fn stop_room(&mut self) {
        match self.signal {
            Some(sig) => status!("signal {sig}: closing the room"),
            None => status!("arret: closing the room"),
        }
        self.stop = Some(Instant::now() + LINGER);
        for shaking in self.shaking.iter_mut().filter_map(Option::take) {
            let _ = self.epoll.delete(&shaking.stream);
        }
        let _ = self.epoll.delete(&self.listener);
        self.accepting = false;
        self.stop_input();
    }
}

/// Asks `epoll` for `flags` on `fd` (registered with `token`) when `on`,
/// for nothing otherwise, unless `*armed` says it already is so; records
/// the new state in `armed`. Errors: `epoll_ctl mod WHAT: REASON`.
fn interest(
    epoll: &Epoll,
    fd: impl AsFd,
    token: u64,
    flags: EpollFlags,
    on: bool,
    armed: &mut bool,
    what: &str,
) -> Result<(), Error> {
    if *armed == on {
        return Ok(());
    }
    let wanted = if on { flags } else { EpollFlags::empty() };
    epoll
        .modify(fd, &mut EpollEvent::new(wanted, token))
        .map_err(|e| Error::sys(format!("epoll_ctl mod {what}"), e))?;
    *armed = on;
    Ok(())
}

//! `chatd --broker`: the discussion room of the worksheet ("a server that
//! lets several clients talk together; the server relays each client's
//! messages to the others, naming the machine that sent it"), issue 8.
//!
//! Two halves, as Redis splits `ae.c` from `networking.c`:
//! - [`room`]: the room itself, a state machine with no sockets: line
//!   framing ([`frame`]), names ([`name`]), commands, notices and the
//!   bounded send queues ([`queue`]). Unit- and property-tested directly.
//! - this file: the event loop around it, which knows only "this socket is
//!   readable / writable", "a signal arrived" and "a deadline passed".
//!
//! # One process, one thread, no locks
//!
//! Everything runs in one thread around one `epoll(7)` instance
//! (level-triggered): the listening socket, every client socket, standard
//! input and output, and the signal self-pipe
//! ([`crate::signals::Signals`]). The worksheet's servers use one thread per
//! client and therefore a lock around the list of clients; here each event
//! is handled to its end before the next, so the room's state is never seen
//! half-changed and there is nothing to lock (see [`room`]).
//!
//! # The loop
//!
//! Each turn:
//! 1. the clients whose send queue became non-empty are written to at once
//!    (Redis's `handleClientsWithPendingWrites`): usually the line leaves in
//!    the same turn, with one `writev(2)` per client for all the lines
//!    queued in the turn; only a client whose socket is full gets
//!    `EPOLLOUT` interest, for as long as its queue is non-empty;
//! 2. what the room asked is done: close a client (at once, or after its
//!    queue is written: see *Leaving* below), or stop;
//! 3. `epoll_wait(2)`, until an event or the next deadline; then, if more
//!    events are ready as soon as these are handled (the room is busy),
//!    more rounds of `epoll_wait` for at most [`COALESCE`] (1 ms), so that
//!    the lines of many reads leave in one `writev` per client (the
//!    trade-off of Nagle's algorithm, bounded, and only under load: in a
//!    quiet room a line is written in the turn it arrives);
//! 4. each event is handled: the signal pipe (drained first; SIGINT,
//!    SIGTERM, SIGHUP end the server with status 128+N); the listening
//!    socket (`accept` until `EAGAIN`; past `--max-clients`, the newcomer
//!    gets a one-line refusal and is closed); a client (one `read(2)` of at
//!    most 64 KiB per turn, so that a client that floods cannot starve the
//!    others; what it sent goes to the room); standard input (lines to
//!    every client as `[chatd] …`; at end of file the room goes on);
//!    standard output (what the room shows).
//!
//! # Leaving
//!
//! A client that says `bye` or reaches end of file leaves the room at once
//! (nothing more is queued for it), and what was already queued is still
//! written; then the server half-closes (`shutdown(SHUT_WR)`) and reads
//! until the client closes too, for at most [`LINGER`], so that the client
//! reads everything and the close never turns into a reset. A client that
//! is too slow, or whose connection failed, is closed at once.
//!
//! # Standard output
//!
//! The server's standard output shows the room. When it is a terminal,
//! bytes that would drive it are shown visibly ([`crate::display`]); the
//! clients receive the bytes unchanged. It is never allowed to stop the
//! room: when it is a pipe or a terminal, it is written only when
//! `epoll` (or `poll`, between pieces) says it is writable, `PIPE_BUF`
//! bytes at a time (a pipe takes that much without blocking), from a
//! queue bounded like a
//! client's; a pager that stops reading makes the room drop lines for the
//! screen (counted on standard error), not wait. A regular file never
//! blocks: it is written directly, every line. A closed standard output
//! (`EPIPE`) ends the server quietly with status 0, as everywhere else in
//! `chatd`.

pub mod frame;
pub mod name;
pub mod queue;
pub mod room;

use std::collections::VecDeque;
use std::io::{IoSlice, Write as _};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};

use crate::access::Access;
use crate::cli::ChatdArgs;
use crate::error::Error;
use crate::net::{Accepting, Next};
use crate::pump::{stdin, stdout};
use crate::signals::Signals;
use crate::{pump, report, status};
use room::{Action, ClientId, LINE_OVERHEAD, Limits, Room};

/// How long a leaving client (or, after `arret`, every client) has to read
/// what is queued for it and close its end, after which its socket is
/// closed anyway: 2 s, as the 1-to-1 sessions wait after a protocol word.
pub const LINGER: Duration = crate::session::WORD_LINGER;

/// Bytes read from one socket (or standard input) per turn: 64 KiB.
const READ_SIZE: usize = 64 * 1024;

/// Rounds of `epoll_wait` gathered into one turn while events keep coming
/// without waiting (see [`Broker::run`]).
const GATHER: usize = 64;

/// Under load, how long a turn may keep gathering events before it writes:
/// 1 ms, far below what a person notices, and enough for the lines of many
/// reads to leave together (see [`Broker::run`]).
const COALESCE: Duration = Duration::from_millis(1);

/// Queue slots (a line, or a range of a turn's shared chunk) written to one client
/// per `writev(2)` (Linux allows 1024).
const IOV_LINES: usize = 128;

/// The most bytes written to a pipe or terminal standard output in one
/// turn (256 KiB), so that a fast reader of it does not hold up the room.
const STDOUT_TURN: usize = 256 * 1024;

/// File descriptors kept free besides the clients: the epoll instance,
/// a newcomer being refused, and room for the unexpected.
const SPARE_FDS: u64 = 8;

/// The refusal a client beyond `--max-clients` receives before its close.
fn refusal(max: usize) -> String {
    format!("* the room is full ({max} clients); try again later\n")
}

/// Event tokens other than clients (whose token is their index).
const SIGNALS: u64 = u64::MAX;
const LISTENER: u64 = u64::MAX - 1;
const STDIN: u64 = u64::MAX - 2;
const STDOUT: u64 = u64::MAX - 3;

/// Runs the room on `listener` until `arret` on standard input (or from a
/// client, with `--allow-remote-stop`), a closed standard output, or a
/// terminating signal.
///
/// At start, raises the soft limit of open files (`RLIMIT_NOFILE`) to the
/// hard limit and says on standard error if `--max-clients` cannot fit in
/// it; the room then takes as many clients as fit.
///
/// Errors: [`Error::Msg`] for limits that make no sense (`--max-line 0`, a
/// `--max-queue` that cannot hold one line); [`Error::Signal`] for SIGINT,
/// SIGTERM, SIGHUP; [`Error::Sys`] if `epoll` or `accept` fail for a reason
/// other than a client's (or if writing to standard output fails other than
/// with `EPIPE`).
pub fn run(
    listener: TcpListener,
    signals: &Signals,
    args: &ChatdArgs,
    access: Access,
) -> Result<(), Error> {
    let limits = limits(args)?;
    let max_clients = fit_clients(args.max_clients);
    let mut broker = Broker::new(listener, signals, limits, max_clients)?;
    broker.access = access;
    broker.idle = args.idle_timeout;
    broker.run()
}

/// The room's limits from the command line. Errors: a limit that makes no
/// sense, as a one-line [`Error::Msg`].
fn limits(args: &ChatdArgs) -> Result<Limits, Error> {
    if args.max_line == 0 {
        return Err(Error::Msg("--max-line must be at least 1".into()));
    }
    if args.max_clients == 0 {
        return Err(Error::Msg("--max-clients must be at least 1".into()));
    }
    let need = args.max_line.saturating_add(LINE_OVERHEAD);
    if args.max_queue < need {
        return Err(Error::Msg(format!(
            "--max-queue {} is too small: a send queue must hold a whole line, \
             at least --max-line + {LINE_OVERHEAD} = {need} bytes",
            args.max_queue
        )));
    }
    Ok(Limits {
        max_line: args.max_line,
        max_queue: args.max_queue,
        allow_remote_stop: args.allow_remote_stop,
        sanitize_stdout: !args.raw && nix::unistd::isatty(stdout()).unwrap_or(false),
    })
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
    /// The epoll interest registered for it.
    interest: EpollFlags,
    /// Set once it left the room with its queue to write ([`Action::Close`]
    /// with `flush`).
    closing: Option<Closing>,
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
    /// Through epoll: `PIPE_BUF` bytes at a time when writable, from a
    /// queue bounded like a client's (lines are dropped, and counted, when
    /// it is full).
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
    output: Output,
    /// `EPOLLOUT` is asked for standard output.
    output_armed: bool,
    /// With [`Output::Direct`], standard output is written as soon as this
    /// many bytes wait (half of `--max-queue`), not only once per turn.
    stdout_high: usize,
    buf: Vec<u8>,
    ready: Vec<ClientId>,
    actions: Vec<Action>,
    /// Deadlines of closing clients, in order (all are now + [`LINGER`]).
    deadlines: VecDeque<(Instant, ClientId)>,
    /// Closed this turn: their slots are given back to the room after the
    /// turn's events, so that no event of the turn reaches a newcomer.
    released: Vec<ClientId>,
    /// `arret`: when everything is closed (or at this deadline), exit 0.
    stop: Option<Instant>,
    /// Standard output is closed: exit 0 quietly.
    stdout_closed: bool,
    /// `--allow`/`--deny`: checked before a newcomer joins.
    access: Access,
    /// `--idle-timeout`: a member from whom nothing arrived for this long
    /// leaves as `* NAME left (idle)`.
    idle: Option<Duration>,
    /// When members are next checked for `--idle-timeout`.
    next_sweep: Option<Instant>,
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
        let input = match epoll.add(stdin(), EpollEvent::new(EpollFlags::EPOLLIN, STDIN)) {
            Ok(()) => Input::Watched,
            Err(Errno::EPERM) => Input::Always,
            // A closed descriptor 0: nothing to say.
            Err(Errno::EBADF) => Input::Done,
            Err(e) => return Err(Error::sys("epoll_ctl add standard input", e)),
        };
        let output = match epoll.add(stdout(), EpollEvent::new(EpollFlags::empty(), STDOUT)) {
            Ok(()) => Output::Watched,
            Err(Errno::EPERM | Errno::EBADF) => Output::Direct,
            Err(e) => return Err(Error::sys("epoll_ctl add standard output", e)),
        };
        let mut room = Room::new(limits);
        if output == Output::Direct {
            // A file never blocks: its queue is written as it fills (see
            // `handle`), and nothing is dropped.
            room.stdout_mut().set_limit(usize::MAX);
        }
        if nix::fcntl::fcntl(stdout(), nix::fcntl::FcntlArg::F_GETFD) == Err(Errno::EBADF) {
            // No standard output at all (`>&-`): the room shows nothing.
            room.stdout_mut().set_limit(0);
        }
        Ok(Broker {
            signals,
            epoll,
            listener,
            accepting: true,
            pause: Accepting::default(),
            room,
            stdout_high: limits.max_queue / 2,
            conns: Vec::new(),
            max_clients,
            input,
            output,
            output_armed: false,
            buf: vec![0; READ_SIZE],
            ready: Vec::new(),
            actions: Vec::new(),
            deadlines: VecDeque::new(),
            released: Vec::new(),
            stop: None,
            stdout_closed: false,
            access: Access::default(),
            idle: None,
            next_sweep: None,
        })
    }

    fn run(mut self) -> Result<(), Error> {
        let mut events = vec![EpollEvent::empty(); 256];
        loop {
            self.write_ready()?;
            self.act()?;
            if self.stdout_closed {
                return Ok(());
            }
            if let Some(deadline) = self.stop {
                let idle = self.room.connections() == 0 && self.room.stdout_mut().is_empty();
                if idle || Instant::now() >= deadline {
                    return Ok(());
                }
            }
            // Wait for events and handle them. Under load (more events are
            // ready as soon as these are handled), keep gathering events
            // for at most COALESCE before writing, so that the lines of
            // many reads leave in one writev per client; a lone line, in a
            // quiet room, is written at once.
            // `open` first: it ends a pause whose time is up, even after
            // `arret`, so that `timeout` never sees a deadline passed.
            if self.pause.open(Instant::now()) && !self.accepting && self.stop.is_none() {
                self.set_accepting(true)?;
            }
            let mut timeout = self.timeout();
            let mut busy_since: Option<Instant> = None;
            for round in 0..GATHER {
                let n = match self.epoll.wait(&mut events, timeout) {
                    Ok(n) => n,
                    Err(Errno::EINTR) => 0,
                    Err(e) => return Err(Error::sys("epoll_wait", e)),
                };
                // The signal pipe first: a terminating signal wins.
                if events[..n].iter().any(|e| e.data() == SIGNALS) {
                    self.signals.check()?;
                }
                for event in &events[..n] {
                    self.handle(event.data(), event.events())?;
                }
                if n == 0 || self.stdout_closed || self.room.has_actions() {
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
                        crate::signals::timeout(left)
                    }
                };
            }
            if self.input == Input::Always {
                self.read_stdin()?;
            }
            self.expire();
            for id in self.released.drain(..) {
                self.room.release(id);
            }
        }
    }

    /// How long `epoll_wait` may wait: until the next deadline, not at all
    /// while standard input is a file being read.
    fn timeout(&self) -> EpollTimeout {
        if self.input == Input::Always {
            return EpollTimeout::ZERO;
        }
        let next = self
            .deadlines
            .front()
            .map(|&(t, _)| t)
            .into_iter()
            .chain(self.stop)
            .chain(self.next_sweep)
            .chain(self.pause.until())
            .min();
        match next {
            Some(t) => crate::signals::timeout(t.saturating_duration_since(Instant::now())),
            None => EpollTimeout::NONE,
        }
    }

    fn handle(&mut self, token: u64, flags: EpollFlags) -> Result<(), Error> {
        match token {
            SIGNALS => Ok(()),
            LISTENER => self.accept(),
            STDIN => self.read_stdin(),
            STDOUT => {
                if flags.intersects(EpollFlags::EPOLLERR | EpollFlags::EPOLLHUP) {
                    // The reader of the pipe is gone (or the terminal).
                    self.stdout_closed = true;
                    return Ok(());
                }
                self.write_stdout()
            }
            index => {
                let id = ClientId(index as usize);
                let readable = EpollFlags::EPOLLIN | EpollFlags::EPOLLHUP | EpollFlags::EPOLLERR;
                if flags.intersects(readable) {
                    self.read_client(id);
                    if self.output == Output::Direct
                        && self.room.stdout_mut().len() >= self.stdout_high
                    {
                        self.write_stdout()?;
                    }
                }
                if flags.contains(EpollFlags::EPOLLOUT) {
                    self.write_client(id);
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
                    if crate::server::admit(&self.access, peer) {
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

    /// A newcomer joins the room, or is refused if the room is full.
    fn admit(&mut self, stream: TcpStream, peer: SocketAddr) -> Result<(), Error> {
        if self.room.members() >= self.max_clients {
            let max = self.max_clients;
            status!("refused {peer}: the room is full ({max} clients)");
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
        let id = self.room.join(peer);
        let token = id.index() as u64;
        let watched = self
            .epoll
            .add(&stream, EpollEvent::new(EpollFlags::EPOLLIN, token));
        if self.conns.len() <= id.index() {
            self.conns.resize_with(id.index() + 1, || None);
        }
        self.conns[id.index()] = Some(Conn {
            stream,
            last_rx: Instant::now(),
            interest: EpollFlags::EPOLLIN,
            closing: None,
        });
        if let Err(e) = watched {
            // Only this client is lost (epoll's limit of watched sockets).
            report!("{peer}: epoll_ctl add: {}", e.desc());
            self.room.lost(id);
        }
        Ok(())
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

    /// One read from a client: to the room, or (closing) to nowhere.
    fn read_client(&mut self, id: ClientId) {
        let Some(conn) = self.conns.get(id.index()).and_then(Option::as_ref) else {
            return;
        };
        let closing = conn.closing.is_some();
        let got = pump::read(&conn.stream, &mut self.buf);
        match (got, closing) {
            (Ok(0), false) => self.room.end_of_input(id),
            (Ok(n), false) => {
                if let Some(Some(conn)) = self.conns.get_mut(id.index()) {
                    conn.last_rx = Instant::now();
                }
                self.room.receive(id, &self.buf[..n]);
            }
            (Err(Errno::EAGAIN), _) => {}
            (Err(_), false) => self.room.lost(id),
            // Closing: what it still sends is dropped; its end of file (or
            // an error) is what we were waiting for.
            (Ok(n), true) if n > 0 => {}
            (Ok(_) | Err(_), true) => {
                if let Some(Some(conn)) = self.conns.get_mut(id.index())
                    && let Some(closing) = &mut conn.closing
                {
                    closing.eof = true;
                }
                self.finish_closing(id);
            }
        }
    }

    /// One read from standard input, to the room.
    fn read_stdin(&mut self) -> Result<(), Error> {
        if self.input == Input::Done {
            return Ok(());
        }
        match pump::read(stdin(), &mut self.buf) {
            Ok(0) | Err(Errno::EBADF | Errno::EIO) => {
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

    fn stop_input(&mut self) {
        if self.input == Input::Watched {
            let _ = self.epoll.delete(stdin());
        }
        self.input = Input::Done;
    }

    // --- writing -----------------------------------------------------------

    /// Writes to the clients whose queue became non-empty, and to standard
    /// output.
    fn write_ready(&mut self) -> Result<(), Error> {
        self.room.flush();
        self.room.take_ready(&mut self.ready);
        let ready = std::mem::take(&mut self.ready);
        for &id in &ready {
            self.write_client(id);
        }
        self.ready = ready;
        self.ready.clear();
        if !self.room.stdout_mut().is_empty() {
            match self.output {
                Output::Direct => self.write_stdout()?,
                Output::Watched => self.arm_stdout(true)?,
            }
        }
        Ok(())
    }

    /// Writes as much of the client's queue as its socket takes, then asks
    /// for `EPOLLOUT` if (and only if) something is left.
    fn write_client(&mut self, id: ClientId) {
        let Some(Some(conn)) = self.conns.get(id.index()) else {
            return;
        };
        let Some(queue) = self.room.queue_mut(id) else {
            return;
        };
        let mut failed = false;
        while !queue.is_empty() {
            let mut iov = [IoSlice::new(&[]); IOV_LINES];
            let n = queue.io_slices(&mut iov, usize::MAX);
            let want: usize = iov[..n].iter().map(|s| s.len()).sum();
            match nix::sys::uio::writev(&conn.stream, &iov[..n]) {
                Ok(written) => {
                    queue.advance(written);
                    if written < want {
                        break; // the socket is full: the next try would be EAGAIN
                    }
                }
                Err(Errno::EINTR) => {}
                Err(Errno::EAGAIN) => break,
                Err(_) => {
                    failed = true;
                    break;
                }
            }
        }
        let pending = !queue.is_empty();
        if failed {
            if conn.closing.is_some() {
                self.close(id);
            } else {
                self.room.lost(id);
            }
            return;
        }
        self.set_writable(id, pending);
        if !pending {
            self.finish_closing(id);
        }
    }

    /// Registers `EPOLLOUT` interest for a client while its queue is
    /// non-empty; `EPOLLIN` while it may still send (not after its end of
    /// file).
    fn set_writable(&mut self, id: ClientId, pending: bool) {
        let Some(Some(conn)) = self.conns.get_mut(id.index()) else {
            return;
        };
        let mut want = EpollFlags::empty();
        if !conn.closing.is_some_and(|c| c.eof) {
            want |= EpollFlags::EPOLLIN;
        }
        if pending {
            want |= EpollFlags::EPOLLOUT;
        }
        if want != conn.interest {
            let mut event = EpollEvent::new(want, id.index() as u64);
            if self.epoll.modify(&conn.stream, &mut event).is_ok() {
                conn.interest = want;
            }
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
        let queue = self.room.stdout_mut();
        let mut written_now = 0;
        while !queue.is_empty() {
            if watched && written_now > 0 && (written_now >= STDOUT_TURN || !writable(stdout())) {
                break;
            }
            let mut iov = [IoSlice::new(&[]); IOV_LINES];
            let n = queue.io_slices(&mut iov, max);
            match nix::sys::uio::writev(stdout(), &iov[..n]) {
                Ok(written) => {
                    queue.advance(written);
                    written_now += written;
                }
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) => break,
                Err(Errno::EPIPE) => {
                    self.stdout_closed = true;
                    return Ok(());
                }
                Err(e) => return Err(Error::sys("write to standard output", e)),
            }
        }
        let pending = !queue.is_empty();
        if !pending {
            let dropped = self.room.take_stdout_dropped();
            if dropped > 0 {
                status!("{dropped} lines of the room not shown: standard output was too slow");
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

    /// Does what the room asked.
    /// `--idle-timeout`: members from whom nothing arrived for that long
    /// leave as `* NAME left (idle)`. Checked every tenth of the timeout
    /// (between 10 ms and 1 s), so a silent client goes within 10 % late.
    fn sweep_idle(&mut self) {
        let Some(idle) = self.idle else {
            return;
        };
        let now = Instant::now();
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

    fn act(&mut self) -> Result<(), Error> {
        self.sweep_idle();
        self.room.take_actions(&mut self.actions);
        let actions = std::mem::take(&mut self.actions);
        for &action in &actions {
            match action {
                Action::Close { id, flush: false } => self.close(id),
                Action::Close { id, flush: true } => self.start_closing(id),
                Action::Stop => self.stop_room()?,
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
        let deadline = Instant::now() + LINGER;
        conn.closing = Some(Closing {
            deadline,
            eof: false,
            shut: false,
        });
        self.deadlines.push_back((deadline, id));
        self.write_client(id);
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
        let written = self.room.queue(id).is_none_or(|q| q.is_empty());
        if !written {
            return;
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

    /// `arret`: no more clients, no more standard input; every client is
    /// being closed (the room asked), then the server exits 0.
    fn stop_room(&mut self) -> Result<(), Error> {
        status!("arret: closing the room");
        self.stop = Some(Instant::now() + LINGER);
        let _ = self.epoll.delete(&self.listener);
        self.accepting = false;
        self.stop_input();
        Ok(())
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

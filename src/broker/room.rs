//! The room of `chatd --broker`: who is present, under which name, what
//! each line they send becomes, who receives it, and who is too slow. A
//! plain state machine with no sockets and no clock inside: the event loop
//! ([`super`]) hands it the bytes it reads and the time, and writes out
//! what it queues; the tests drive it directly.
//!
//! # One thread, no locks
//!
//! The worksheet asks for a lock around the shared state of its discussion
//! server (the list of clients, their names) because its servers run one
//! thread per client, and two threads must not change the list at once.
//! This server runs one thread: the event loop calls the room for one event
//! at a time, and each call runs to its end before the next begins, so the
//! state is always consistent and there is nothing to lock. The rule the
//! lock protects (never two changes at once) holds by construction.
//!
//! # What the room does
//!
//! - **Framing.** Each client's bytes are cut into lines by a [`Framer`]
//!   (`--max-line`, CRLF accepted): a line is relayed whole, never mixed
//!   with another's, however it was split across reads.
//! - **Relay.** A line from a client goes to every other present client,
//!   never back to its sender, prefixed with the sender's name:
//!   `[alice] hello`. It is written once, into the room's [`Log`]; every
//!   reader reads it there through its own cursor (see [`SendQueue`]).
//! - **Cleaning.** Unless `--raw`, what a line, a name or a notice holds
//!   that would drive a terminal (C0 controls but tab, DEL, C1 controls,
//!   escape sequences, bidirectional overrides, invalid UTF-8) is written
//!   visibly, by [`crate::display::Sanitizer`], the cleaning `chat` uses for
//!   its own display: `^[[2J`, `<U+202E>`, `\xff`. Valid UTF-8 passes
//!   unchanged, also across the pieces of a long line.
//! - **Names.** A client arrives with its address as name (see
//!   [`super::name`] for the forms, IPv6 included) and may take another with
//!   `/nick`.
//! - **Commands**, answered to the sender alone unless said otherwise:
//!   `/nick NAME`, `/who`, `/me ACTION` (to the others: `* NAME ACTION`),
//!   `/msg NAME TEXT` (to NAME alone: `[SENDER (private)] TEXT`; the sender
//!   gets `-!- to NAME: TEXT`), `/help`; `//TEXT` relays `/TEXT`; any other
//!   `/word` gets a one-line answer. Commands and their words are ASCII
//!   case-insensitive.
//! - **Notices** to the others and on the server's standard output:
//!   `-!- NAME joined` (the clients that join within one turn of the event
//!   loop are announced in one line, `-!- 3 joined: a, b, c`), `-!- NAME
//!   left`, `-!- NAME left (too slow)`, `-!- NAME left (idle)`
//!   (`--idle-timeout`), `-!- OLD is now NEW`, `-!- the room is closing` (a
//!   terminating signal).
//! - **Who said it.** irssi's convention: what the room says (notices,
//!   answers, greetings) begins with `-!- `; a line from a client begins
//!   with `[NAME] `, `[NAME (private)] ` or, for `/me`, `* NAME `. Every
//!   line a client causes begins with `[` or `* `, whatever it sends, so
//!   no client can write a line that reads as the room's. A line wider
//!   than the reader's terminal wraps, and a client could place text at
//!   the start of the next row: see [`crate::display::starts`] for what
//!   the room does so that, on an 80-column terminal, such a row never
//!   begins like a line.
//! - **Greeting and history.** A newcomer is greeted with its name and
//!   who else is present (`-!- you are NAME; here: a, b and 12 more; /help
//!   lists the commands`). With `--history N`, it first reads the last N
//!   lines of the log, as the others saw them, between `-!- history: the
//!   last N lines said here` and `-!- end of history`: lines that no
//!   client can write (see **Who said it**). The log keeps them for it
//!   ([`Log::keep_history`]), within a quarter of `--max-queue`.
//! - **The operator.** The server's standard input speaks as `[chatd]`,
//!   or the name of `--name` ([`Room::set_operator`]), which no client may
//!   take. At the line editor, its lines that begin with `/` are its
//!   commands ([`Room::from_operator`]): `/who`, `/msg NAME TEXT`, `/kick
//!   NAME [REASON]`, `/me ACTION`, `/quit` (as `arret`), `/help`, answered
//!   on its standard output alone.
//! - **Line ends.** A client that ends a line with `\r\n` (telnet, PuTTY)
//!   receives `\r\n` line ends from then on.
//! - **Protocol words.** A line `bye` ends its client's session (announced
//!   as a leave). A line `arret` from a client is relayed like any other,
//!   unless [`Limits::allow_remote_stop`]; on the server's standard input it
//!   closes the room.
//! - **Pacing.** [`Room::check`] applies the rules of [`super::pace`]:
//!   while a reader that keeps reading is behind, the event loop reads no
//!   talker ([`Room::may_read`] says no); a reader that stopped is dropped
//!   (`-!- NAME left (too slow)`) after `--stall-timeout`, or when it is
//!   `--max-queue` behind. A dropped client still receives the rest of the
//!   line it was in, then its own notice, then end of file.
//!
//! The server's standard output is a reader like the clients: it shows
//! every relayed line and every notice, and the private messages sent to
//! `chatd`, but not what goes to a single client, nor the server's own
//! lines (it typed them). When it stops accepting bytes for the stall
//! timeout, or falls `--max-queue` behind, the lines it misses are
//! dropped and counted ([`Room::take_stdout_dropped`]) instead.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::ops::ControlFlow;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::frame::{Framer, Piece};
use super::log::Log;
use super::name::{self, Refusal, SERVER};
use super::pace::{self, Marks, Pacer, Verdict};
use super::queue::SendQueue;
use crate::display::{Sanitizer, starts};
use crate::tls::Fingerprint;
use crate::tls::names::{Claim, Reservations};

/// The limits and switches of a room, from the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// `--max-line`: longer lines are relayed in pieces of at most this
    /// many bytes (see [`super::frame`] for where they are cut).
    pub max_line: usize,
    /// `--max-queue`: the most bytes one reader (a client, or the server's
    /// standard output) may be behind.
    pub max_queue: usize,
    /// `--allow-remote-stop`: a client's line `arret` closes the room.
    pub allow_remote_stop: bool,
    /// Neutralise the bytes that drive a terminal (not `--raw`).
    pub clean: bool,
    /// `--stall-timeout`: a reader that accepts nothing for this long
    /// while lines wait for it is dropped.
    pub stall_timeout: Duration,
    /// `--history`: a newcomer first receives up to this many of the
    /// last lines of the log (at most a quarter of `--max-queue`).
    pub history: usize,
}

impl Limits {
    /// Why a send queue of `max_queue` bytes cannot work with lines of
    /// `max_line` bytes, if it cannot: it must hold a whole line, at least
    /// `max_line` + [`LINE_OVERHEAD`] bytes. The one check of
    /// `--max-queue`: the command line refuses such a value with this
    /// reason (a usage error), and [`crate::broker::run`] too.
    pub fn queue_too_small(&self) -> Option<String> {
        let need = self.max_line.saturating_add(LINE_OVERHEAD);
        (self.max_queue < need).then(|| {
            format!(
                "too small for --max-line {}: a send queue must hold a whole \
                 line, at least --max-line + {LINE_OVERHEAD} = {need} bytes",
                self.max_line
            )
        })
    }
}

/// A bound on what the room adds to `--max-line` bytes of text in any one
/// line it queues: a prefix is at most 142 bytes (`[`, a name of 32
/// characters of up to 4 bytes, or an IPv6 address name of at most 56,
/// ` (private)] `), an answer quoting a command word at most 50, a notice
/// naming two names 269, `/who` 32 past `max(--max-line, 256)`. A queue of
/// `--max-line` + this many bytes holds any single line, so `--max-queue`
/// must be at least that. (Text is counted as cleaned: cleaning writes a
/// control byte as 2 to 4, and the row guard of
/// [`crate::display::starts`] adds at most 2 bytes for every 10.)
pub(crate) const LINE_OVERHEAD: usize = 512;

/// The most bytes of names a combined join notice lists before
/// `(and N more)`.
const JOIN_NAMES: usize = 200;

/// A client of the room: an index the event loop also uses for its socket.
/// An index is given again to a new client only after
/// [`Room::release`] freed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId(pub(super) usize);

impl ClientId {
    /// The index, from 0, dense: suitable for a `Vec`.
    pub fn index(self) -> usize {
        self.0
    }
}

/// What the room asks of the event loop, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// The client left the room. With `flush`, write what is still queued
    /// for it, then half-close and close (it said `bye`, reached end of
    /// file, went idle, or was too slow: then its queue holds the rest of
    /// its line and its notice); without, close at once (its connection
    /// failed, or it left and then fell `--max-queue` behind). Either way,
    /// call [`Room::release`] once the socket is closed.
    Close {
        /// The client.
        id: ClientId,
        /// Write its queue first.
        flush: bool,
    },
    /// `arret` (or a terminating signal): the room is closed. Every client
    /// also has a [`Action::Close`] with `flush`; once they are closed, the
    /// server exits.
    Stop,
}

/// A reader of the room, for [`Room::check_with`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reader {
    /// A client.
    Client(ClientId),
    /// The server's standard output.
    Stdout,
}

/// What [`Room::check`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pace {
    /// A moving reader is behind: read no talker.
    pub paused: bool,
    /// When to check again at the latest (a reader's grace or stall
    /// timeout ends); always set when `paused`.
    pub next: Option<Instant>,
}

/// How the server's standard output is written, as far as the room is
/// concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stdout {
    /// A pipe or a terminal: a reader like the clients (it paces the room
    /// while it moves; lines are dropped and counted when it stops).
    Paced,
    /// A regular file or `/dev/null`, which never blocks: written as it
    /// fills, every line, never pacing.
    Direct,
}

/// Why a client leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Why {
    /// `bye`, or end of file: what is queued is still sent.
    Bye,
    /// Its connection failed: nothing more can be sent.
    Lost,
    /// It stopped reading: the rest of its line and its notice are sent.
    TooSlow,
    /// Nothing was received from it for `--idle-timeout`: what is queued is
    /// still sent.
    Idle,
}

/// Who said a command that is answered to its sender alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sender {
    /// A client.
    Client(ClientId),
    /// The operator, at the server's standard input.
    Operator,
}

/// Where a client stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// In the room: receives the lines of the others.
    Member,
    /// Out of the room; its queue may still be written ([`Action::Close`]).
    Leaving,
}

#[derive(Debug)]
struct Client {
    name: Rc<str>,
    /// Order of arrival, for `/who`.
    serial: u64,
    state: State,
    framer: Framer,
    queue: SendQueue,
    /// Cleans its lines, across the pieces of a long one.
    sanitizer: Sanitizer,
    /// The rest of the current line is dropped (a command longer than
    /// `--max-line`).
    skip_rest: bool,
    /// Joined in this turn, not announced yet (see [`Room::flush`]).
    joining: bool,
    /// The fingerprint of the certificate it showed (`--tls`), if any.
    cert: Option<Fingerprint>,
}

/// The room: see the [module documentation](self).
#[derive(Debug)]
pub struct Room {
    limits: Limits,
    marks: Marks,
    log: Log,
    clients: Vec<Option<Client>>,
    free: Vec<usize>,
    /// [`name::key`] of every member's name.
    names: HashMap<String, ClientId>,
    /// The look-alike keys of every member's name ([`name::Keys`]).
    looks: HashMap<String, ClientId>,
    members: usize,
    serial: u64,
    server: Framer,
    server_sanitizer: Sanitizer,
    /// The operator's name: its lines are `[NAME] …` (`chatd --name`,
    /// [`SERVER`] by default).
    operator: Rc<str>,
    /// The operator types at the line editor: its lines that begin with
    /// `/` are commands ([`Room::from_operator`]).
    operator_commands: bool,
    stdout: SendQueue,
    stdout_mode: Stdout,
    stdout_dropped: u64,
    actions: Vec<Action>,
    /// Clients whose private queue got a line since [`Room::take_ready`].
    ready: Vec<ClientId>,
    /// The log head when [`Room::take_ready`] was last called.
    written_head: u64,
    joining: Vec<ClientId>,
    pacer: Pacer,
    /// From the last [`Room::check`]: the largest backlog of a moving
    /// reader, and the log head then.
    largest_moving: usize,
    checked_head: u64,
    scratch: Vec<u8>,
    stopped: bool,
    /// `--tls`: names bound to certificates ([`crate::tls::names`]).
    reservations: Option<Reservations>,
    /// A reservation was made since [`Room::take_reservations`].
    reservations_changed: bool,
}

impl Room {
    /// An empty room with `limits`.
    ///
    /// # Panics
    ///
    /// If `limits.max_line` is 0.
    pub fn new(limits: Limits) -> Room {
        let marks = Marks::new(limits.max_queue, limits.stall_timeout);
        let mut log = Log::new();
        // Within the low-water mark: a newcomer's history never pauses the
        // room, nor gets it dropped.
        log.keep_history(limits.history, marks.low);
        Room {
            limits,
            marks,
            log,
            clients: Vec::new(),
            free: Vec::new(),
            names: HashMap::new(),
            looks: HashMap::new(),
            members: 0,
            serial: 0,
            server: Framer::new(limits.max_line),
            server_sanitizer: Sanitizer::new(),
            operator: Rc::from(SERVER),
            operator_commands: false,
            stdout: SendQueue::new(0),
            stdout_mode: Stdout::Paced,
            stdout_dropped: 0,
            actions: Vec::new(),
            ready: Vec::new(),
            written_head: 0,
            joining: Vec::new(),
            pacer: Pacer::default(),
            largest_moving: 0,
            checked_head: 0,
            scratch: Vec::new(),
            stopped: false,
            reservations: None,
            reservations_changed: false,
        }
    }

    /// Binds names to certificates (`chatd --broker --tls`, as IRC's
    /// CertFP): a name a member with a certificate takes is reserved for
    /// that certificate, refused to anyone else, and given back to it when
    /// it joins again; `/who` marks the members whose name is theirs by
    /// certificate `(verified)`.
    pub fn set_reservations(&mut self, reservations: Reservations) {
        self.reservations = Some(reservations);
    }

    /// The reservations, when one was made since the last call (to be
    /// saved).
    pub fn take_reservations(&mut self) -> Option<&Reservations> {
        if !std::mem::take(&mut self.reservations_changed) {
            return None;
        }
        self.reservations.as_ref()
    }

    /// The client `id`, which has just joined, showed the certificate
    /// `fingerprint`. A name reserved for it, and not used by a member,
    /// becomes its name at once: it is announced under that name. Call
    /// right after [`Room::join`], before anything else.
    pub fn set_certificate(&mut self, id: ClientId, fingerprint: Fingerprint) {
        let reserved = self
            .reservations
            .as_ref()
            .and_then(|r| r.name_of(&fingerprint))
            .map(Rc::<str>::from);
        let free = reserved.as_ref().is_some_and(|name| !self.taken(name, id));
        let Some(client) = self.client_mut(id) else {
            return;
        };
        client.cert = Some(fingerprint);
        let Some(name) = reserved.filter(|_| free && client.joining) else {
            return;
        };
        let old = std::mem::replace(&mut client.name, Rc::clone(&name));
        self.remove_name(&old, id);
        self.add_name(&name, id);
    }

    /// Whether member `id`'s name is reserved for the certificate it
    /// showed.
    fn verified(&self, client: &Client) -> bool {
        let Some(reservations) = &self.reservations else {
            return false;
        };
        client
            .cert
            .as_ref()
            .and_then(|cert| reservations.name_of(cert))
            == Some(&*client.name)
    }

    /// The room's marks (from `--max-queue` and `--stall-timeout`).
    pub fn marks(&self) -> &Marks {
        &self.marks
    }

    /// Says how standard output is written (see [`Stdout`]).
    pub fn set_stdout(&mut self, mode: Stdout) {
        self.stdout_mode = mode;
    }

    /// A client connected from `addr`: it gets a slot and its address
    /// name. It is announced to the others, and greeted, when the turn's
    /// joins are (the next call other than `join`, or [`Room::flush`]).
    pub fn join(&mut self, addr: SocketAddr) -> ClientId {
        let name: Rc<str> = name::address_name(addr).into();
        let client = Client {
            name: Rc::clone(&name),
            serial: self.serial,
            state: State::Member,
            framer: Framer::new(self.limits.max_line),
            queue: SendQueue::new(self.log.head()),
            sanitizer: Sanitizer::new(),
            skip_rest: false,
            joining: true,
            cert: None,
        };
        self.serial += 1;
        let id = match self.free.pop() {
            Some(i) => {
                self.clients[i] = Some(client);
                ClientId(i)
            }
            None => {
                self.clients.push(Some(client));
                ClientId(self.clients.len() - 1)
            }
        };
        self.add_name(&name, id);
        self.members += 1;
        self.joining.push(id);
        id
    }

    /// Bytes `client` sent: relayed, obeyed or answered, line by line.
    /// Ignored once the client has left.
    pub fn receive(&mut self, id: ClientId, bytes: &[u8]) {
        self.flush_joins();
        let Some(client) = self.member_mut(id) else {
            return;
        };
        let mut framer = std::mem::replace(&mut client.framer, Framer::new(1));
        let _ = framer.push(bytes, |piece| self.piece(id, piece));
        if let Some(client) = self.client_mut(id) {
            client.framer = framer;
        }
    }

    /// `client` reached end of file: its last line, if it had no newline,
    /// counts; then it leaves, what is queued for it still sent.
    pub fn end_of_input(&mut self, id: ClientId) {
        self.flush_joins();
        let Some(client) = self.member_mut(id) else {
            return;
        };
        let mut framer = std::mem::replace(&mut client.framer, Framer::new(1));
        let _ = framer.finish(|piece| self.piece(id, piece));
        self.leave(id, Why::Bye);
    }

    /// `client`'s connection failed (reset, or a write error): it leaves at
    /// once.
    pub fn lost(&mut self, id: ClientId) {
        self.flush_joins();
        self.leave(id, Why::Lost);
    }

    /// Nothing was received from `client` for `--idle-timeout`:
    /// it leaves as `-!- NAME left (idle)`, what is queued for it still sent.
    pub fn idle(&mut self, id: ClientId) {
        self.flush_joins();
        self.leave(id, Why::Idle);
    }

    /// The operator's name (`chatd --name NAME`, checked as `/nick`
    /// checks a name), and whether its lines may be commands (it types at
    /// the line editor: [`Room::from_operator`]). No client may take that
    /// name, nor one that looks like it.
    pub fn set_operator(&mut self, name: &str, commands: bool) {
        self.operator = Rc::from(name);
        self.operator_commands = commands;
    }

    /// The operator's name.
    pub fn operator(&self) -> &str {
        &self.operator
    }

    /// A whole line typed by the operator at the line editor, without its
    /// newline. With commands on ([`Room::set_operator`]), a line that
    /// begins with `/` is one of the operator's commands: `/who`, `/msg
    /// NAME TEXT`, `/kick NAME [REASON]`, `/me ACTION`, `/quit` (closes the
    /// room, as `arret`), `/help`; `//TEXT` sends `/TEXT`. Answers go to
    /// the server's standard output alone. Any other line is relayed as
    /// [`Room::from_server`] relays it.
    pub fn from_operator(&mut self, line: &[u8]) {
        self.flush_joins();
        if self.stopped {
            return;
        }
        let mut text = line.to_vec();
        if self.operator_commands
            && let Some(command) = line.strip_prefix(b"/")
        {
            if !command.starts_with(b"/") {
                self.operator_command(command);
                return;
            }
            text.remove(0);
        }
        text.push(b'\n');
        self.from_server(&text);
    }

    /// Bytes from the server's standard input: each line goes to every
    /// client as `[chatd] LINE` (or the name of `--name`); a line `arret`
    /// closes the room.
    pub fn from_server(&mut self, bytes: &[u8]) {
        self.flush_joins();
        if self.stopped {
            return;
        }
        let mut framer = std::mem::replace(&mut self.server, Framer::new(1));
        let _ = framer.push(bytes, |piece| self.server_piece(piece));
        self.server = framer;
    }

    /// End of file on the server's standard input: its last line counts.
    /// The room goes on.
    pub fn server_end_of_input(&mut self) {
        self.flush_joins();
        if self.stopped {
            return;
        }
        let mut framer = std::mem::replace(&mut self.server, Framer::new(1));
        let _ = framer.finish(|piece| self.server_piece(piece));
        self.server = framer;
    }

    /// A terminating signal: every client and standard output get
    /// `-!- the room is closing`, then every client leaves with its queue
    /// flushed, and the room stops ([`Action::Stop`]).
    pub fn close(&mut self) {
        self.flush_joins();
        if !self.stopped {
            self.stop_with("-!- the room is closing");
        }
    }

    /// Ends the turn: announces the clients that joined in it (and greets
    /// them). The event loop calls it once a turn, before writing.
    pub fn flush(&mut self) {
        self.flush_joins();
    }

    /// Applies the pacing and dropping rules of [`super::pace`] at `now`:
    /// drops the members that are `--max-queue` behind or stalled, closes
    /// at once a leaver that fell `--max-queue` behind, drops and counts
    /// the lines standard output cannot take, updates the pause, and frees
    /// the log that every reader has passed.
    ///
    /// The pause it decides holds until the next call: the event loop calls
    /// it after a turn's writes, just before it waits. Only readers with
    /// lines waiting for them hold a pause, so a paused room always has a
    /// [`Pace::next`]: the end of the grace of a reader it waits for.
    ///
    /// Time alone judges progress here, as if no reader's kernel had taken
    /// bytes unseen: see [`Room::check_with`].
    pub fn check(&mut self, now: Instant) -> Pace {
        self.check_with(now, &mut |_| false)
    }

    /// [`Room::check`], asking `taken(reader)` whether the kernel took bytes
    /// of a reader's socket since the last write or ask (its unacknowledged
    /// send queue went down) before it judges that reader stopped, when
    /// [`pace::should_ask`] says so. A reader whose kernel took bytes made
    /// room: it is moving, and its stall clock starts again.
    pub fn check_with(&mut self, now: Instant, taken: &mut dyn FnMut(Reader) -> bool) -> Pace {
        self.flush_joins();
        let marks = self.marks;
        let head = self.log.head();
        let mut largest = 0;
        let mut next: Option<Instant> = None;
        let mut soonest = |t: Instant| next = Some(next.map_or(t, |n: Instant| n.min(t)));
        let mut dropped = Vec::new();
        let mut cut = Vec::new();
        for (i, slot) in self.clients.iter_mut().enumerate() {
            let Some(client) = slot else { continue };
            let queue = &mut client.queue;
            if client.state == State::Leaving {
                if queue.reads_log() && queue.behind(head) > marks.max_queue as u64 {
                    cut.push(ClientId(i));
                }
                continue;
            }
            let backlog = queue.backlog(head);
            let pending = queue.pending(head);
            let who = Reader::Client(ClientId(i));
            let since = stall_clock(queue, who, pending, backlog, now, &marks, taken);
            match pace::judge(backlog, since, now, &marks) {
                Verdict::Keep => {}
                Verdict::Overflow | Verdict::Stalled => {
                    dropped.push(ClientId(i));
                    continue;
                }
            }
            if let Some(since) = since {
                soonest(since + marks.stall);
            }
            if let Some(end) = pace::holds(pending, since, queue.drained(), now, &marks) {
                largest = largest.max(backlog);
                if backlog > marks.low {
                    soonest(end);
                }
            }
        }
        if self.stdout_mode == Stdout::Paced {
            let backlog = self.stdout.backlog(head);
            let pending = self.stdout.pending(head);
            let queue = &mut self.stdout;
            let since = stall_clock(queue, Reader::Stdout, pending, backlog, now, &marks, taken);
            match pace::judge(backlog, since, now, &marks) {
                Verdict::Keep => {
                    if let Some(since) = since {
                        soonest(since + marks.stall);
                    }
                    let drained = self.stdout.drained();
                    if let Some(end) = pace::holds(pending, since, drained, now, &marks) {
                        largest = largest.max(backlog);
                        if backlog > marks.low {
                            soonest(end);
                        }
                    }
                }
                Verdict::Overflow | Verdict::Stalled => {
                    self.stdout_dropped += self.stdout.skip_to_head(&self.log);
                }
            }
        }
        for id in cut {
            if let Some(Some(client)) = self.clients.get_mut(id.0) {
                client.queue.detach(&self.log);
                self.actions.push(Action::Close { id, flush: false });
            }
        }
        for id in dropped {
            self.leave(id, Why::TooSlow);
        }
        self.largest_moving = largest;
        self.checked_head = self.log.head();
        let paused = self.pacer.update(largest, &marks);
        debug_assert!(!paused || next.is_some(), "a pause without a deadline");
        self.trim();
        Pace { paused, next }
    }

    /// Whether the event loop may read from `client` now, and how many
    /// bytes at most: not while the room is paused (checked against what
    /// was relayed since [`Room::check`], so that the pause comes before
    /// any moving reader passes `--max-queue`), nor while the client's own
    /// queue is above the high-water mark (the answers to its commands
    /// wait for it to read them). `None` for a client out of the room.
    pub fn may_read(&mut self, id: ClientId) -> Option<usize> {
        if self.would_pause() {
            return None;
        }
        let head = self.log.head();
        let client = self.clients.get(id.0)?.as_ref()?;
        if client.state != State::Member || client.queue.backlog(head) >= self.marks.high {
            return None;
        }
        // `[NAME] ` and a newline per line; a /nick notice is at most 25
        // bytes per byte of its command.
        let expansion = (client.name.len() + 4).max(25);
        Some(pace::read_budget(
            &self.marks,
            expansion,
            client.framer.held(),
            LINE_OVERHEAD,
        ))
    }

    /// Whether the event loop may read the server's standard input now,
    /// and how many bytes at most (as [`Room::may_read`]).
    pub fn may_read_server(&mut self) -> Option<usize> {
        if self.would_pause() {
            return None;
        }
        let held = self.server.held();
        Some(pace::read_budget(&self.marks, 25, held, LINE_OVERHEAD))
    }

    /// Whether the room is paused, now or by what was relayed since the
    /// last check.
    fn would_pause(&mut self) -> bool {
        let grown = usize::try_from(self.log.head() - self.checked_head).unwrap_or(usize::MAX);
        if !self.pacer.paused() && self.largest_moving.saturating_add(grown) >= self.marks.high {
            self.pacer.pause();
        }
        self.pacer.paused()
    }

    /// The event loop closed `client`'s socket after [`Action::Close`]: its
    /// slot is free for a new client.
    ///
    /// # Panics
    ///
    /// If the client is still in the room (no [`Action::Close`] was given).
    pub fn release(&mut self, id: ClientId) {
        let client = self.clients[id.0].take().expect("release of a free slot");
        assert_eq!(client.state, State::Leaving, "release of a member");
        self.free.push(id.0);
    }

    /// The room's log.
    pub fn log(&self) -> &Log {
        &self.log
    }

    /// The send queue of `client`, while it has a slot.
    pub fn queue(&self, id: ClientId) -> Option<&SendQueue> {
        self.clients.get(id.0)?.as_ref().map(|c| &c.queue)
    }

    /// The send queue of `client` and the log it reads, to write it.
    pub fn outbox(&mut self, id: ClientId) -> Option<(&mut SendQueue, &Log)> {
        let client = self.clients.get_mut(id.0)?.as_mut()?;
        Some((&mut client.queue, &self.log))
    }

    /// What waits to be written to the server's standard output, and the
    /// log it reads.
    pub fn stdout_outbox(&mut self) -> (&mut SendQueue, &Log) {
        (&mut self.stdout, &self.log)
    }

    /// Bytes waiting for standard output.
    pub fn stdout_pending(&self) -> usize {
        self.stdout.pending(self.log.head())
    }

    /// Bytes waiting for `client`.
    pub fn pending(&self, id: ClientId) -> usize {
        self.queue(id).map_or(0, |q| q.pending(self.log.head()))
    }

    /// The backlog of `client` (see [`SendQueue::backlog`]).
    pub fn backlog(&self, id: ClientId) -> usize {
        self.queue(id).map_or(0, |q| q.backlog(self.log.head()))
    }

    /// How many lines were not shown on standard output because it was
    /// stalled or too far behind, since the last call.
    pub fn take_stdout_dropped(&mut self) -> u64 {
        std::mem::take(&mut self.stdout_dropped)
    }

    /// Moves into `out` the clients that got a private line since the last
    /// call (some may have left since); returns whether the log grew
    /// meanwhile (then every reader may have something to write).
    pub fn take_ready(&mut self, out: &mut Vec<ClientId>) -> bool {
        out.append(&mut self.ready);
        let grew = self.log.head() != self.written_head;
        self.written_head = self.log.head();
        grew
    }

    /// Whether something was queued since [`Room::take_ready`].
    pub fn has_unwritten(&self) -> bool {
        !self.ready.is_empty() || self.log.head() != self.written_head || !self.joining.is_empty()
    }

    /// Moves into `out` what the event loop must do, in order.
    pub fn take_actions(&mut self, out: &mut Vec<Action>) {
        out.append(&mut self.actions);
    }

    /// Whether actions wait for [`Room::take_actions`].
    pub fn has_actions(&self) -> bool {
        !self.actions.is_empty()
    }

    /// The clients in the room.
    pub fn members(&self) -> usize {
        self.members
    }

    /// The clients with a slot: in the room, or leaving with a socket still
    /// open. Each holds a file descriptor.
    pub fn connections(&self) -> usize {
        self.clients.len() - self.free.len()
    }

    /// The name of `client`, while it has a slot.
    pub fn name(&self, id: ClientId) -> Option<&str> {
        Some(&self.clients.get(id.0)?.as_ref()?.name)
    }

    /// Whether `client` is in the room.
    pub fn is_member(&self, id: ClientId) -> bool {
        self.clients
            .get(id.0)
            .and_then(Option::as_ref)
            .is_some_and(|c| c.state == State::Member)
    }

    /// Whether `arret` (or a signal) closed the room.
    pub fn is_stopped(&self) -> bool {
        self.stopped
    }

    // --- joining -----------------------------------------------------------

    /// Announces the clients that joined since the last call, in one
    /// notice, and greets each of them; their reading starts after that
    /// notice.
    fn flush_joins(&mut self) {
        if self.joining.is_empty() {
            return;
        }
        let joining = std::mem::take(&mut self.joining);
        let mut names: Vec<Rc<str>> = Vec::with_capacity(joining.len());
        for &id in &joining {
            if let Some(client) = self.client_mut(id)
                && client.joining
            {
                client.joining = false;
                names.push(Rc::clone(&client.name));
            }
        }
        let notice = match &names[..] {
            [] => return,
            [one] => format!("-!- {one} joined"),
            many => {
                let mut text = format!("-!- {} joined:", many.len());
                let mut listed = 0;
                for name in many {
                    if listed > 0 && text.len() + name.len() > JOIN_NAMES {
                        break;
                    }
                    text.push_str(if listed == 0 { " " } else { ", " });
                    text.push_str(name);
                    listed += 1;
                }
                if listed < many.len() {
                    text.push_str(&format!(" (and {} more)", many.len() - listed));
                }
                text
            }
        };
        // What was said before, for the newcomers (`--history`), and its
        // marks.
        let past = self.log.history().map(|(from, lines)| {
            let plural = if lines == 1 { "" } else { "s" };
            let clean = self.limits.clean;
            let start = format!("{NOTICE}history: the last {lines} line{plural} said here");
            let start = compose_notice(&mut self.scratch, clean, &start);
            let end = format!("{NOTICE}end of history");
            let end = compose_notice(&mut self.scratch, clean, &end);
            (from, start, end)
        });
        let announced = self.notice(&notice);
        let head = self.log.head();
        for id in joining {
            let Some(client) = self.client_mut(id) else {
                continue;
            };
            if client.state != State::Member {
                continue;
            }
            match &past {
                Some((from, start, end)) => {
                    client.queue.start_at(*from);
                    client.queue.push(*from, start);
                    client.queue.exclude(announced.clone());
                    client.queue.push(head, end);
                }
                None => client.queue.start_at(head),
            }
            let name = Rc::clone(&client.name);
            let here = self.here(id);
            self.reply(
                id,
                &format!("-!- you are {name}; {here}; /help lists the commands"),
            );
        }
    }

    /// Who else is present, for `id`'s greeting: `here: a, b, c`, with
    /// `and N more` past about [`JOIN_NAMES`] bytes of names, or `nobody
    /// else is here`. The first members by slot are listed (mostly the
    /// earliest arrivals), so that a greeting costs the names it lists,
    /// not the size of the room.
    fn here(&self, id: ClientId) -> String {
        let others = self.members.saturating_sub(1);
        if others == 0 {
            return "nobody else is here".to_owned();
        }
        let mut text = String::from("here:");
        let mut listed = 0;
        for (i, client) in self.clients.iter().enumerate() {
            let Some(client) = client else { continue };
            if i == id.0 || client.state != State::Member {
                continue;
            }
            if listed > 0 && text.len() + client.name.len() > JOIN_NAMES {
                break;
            }
            text.push_str(if listed == 0 { " " } else { ", " });
            text.push_str(&client.name);
            listed += 1;
            if listed == others {
                break;
            }
        }
        if listed < others {
            text.push_str(&format!(" and {} more", others - listed));
        }
        text
    }

    // --- lines from clients ---------------------------------------------

    fn piece(&mut self, id: ClientId, piece: Piece<'_>) -> ControlFlow<()> {
        let Some(client) = self.member_mut(id) else {
            return ControlFlow::Break(());
        };
        if piece.crlf {
            client.queue.set_crlf();
        }
        if client.skip_rest {
            client.skip_rest = !piece.ends_line;
            return ControlFlow::Continue(());
        }
        if piece.is_whole_line() {
            return self.line(id, piece.text);
        }
        let mut text = piece.text;
        if piece.starts_line && text.starts_with(b"/") {
            if !text.starts_with(b"//") {
                client.skip_rest = true;
                let max = self.limits.max_line;
                self.reply(
                    id,
                    &format!("-!- command longer than {max} bytes: line dropped"),
                );
                return ControlFlow::Continue(());
            }
            text = &text[1..];
        }
        self.say(id, text, piece.ends_line);
        ControlFlow::Continue(())
    }

    /// A whole line from a member.
    fn line(&mut self, id: ClientId, text: &[u8]) -> ControlFlow<()> {
        match text {
            b"bye" => {
                self.leave(id, Why::Bye);
                ControlFlow::Break(())
            }
            b"arret" if self.limits.allow_remote_stop => {
                let by = self.client_name(id);
                self.stop(&by);
                ControlFlow::Break(())
            }
            [b'/', b'/', ..] => {
                self.say(id, &text[1..], true);
                ControlFlow::Continue(())
            }
            [b'/', command @ ..] => {
                self.command(id, command);
                ControlFlow::Continue(())
            }
            _ => {
                self.say(id, text, true);
                ControlFlow::Continue(())
            }
        }
    }

    /// Relays `text` (a piece of a line, `ends` if it ends it) from `id` to
    /// every other member and standard output: `[NAME] TEXT`, in the log,
    /// not for `id`.
    fn say(&mut self, id: ClientId, text: &[u8], ends: bool) {
        let clean = self.limits.clean;
        let Some(Some(client)) = self.clients.get_mut(id.0) else {
            return;
        };
        let name = Rc::clone(&client.name);
        let sanitizer = &mut client.sanitizer;
        let range = self.log.append_with(|out| {
            let start = out.len();
            out.push(b'[');
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b"] ");
            if clean {
                let prefix = out.len() - start;
                sanitizer.push(text, out);
                if ends {
                    sanitizer.finish(out);
                }
                starts::guard(out, start, prefix);
            } else {
                out.extend_from_slice(text);
            }
            out.push(b'\n');
        });
        client.queue.exclude(range);
    }

    /// A line that began with `/`, without it.
    fn command(&mut self, id: ClientId, line: &[u8]) {
        let (word, args) = split_word(line);
        if word.eq_ignore_ascii_case(b"nick") {
            self.nick(id, args);
        } else if word.eq_ignore_ascii_case(b"who") {
            self.who(id);
        } else if word.eq_ignore_ascii_case(b"me") {
            if args.is_empty() {
                self.reply(id, "-!- usage: /me ACTION");
                return;
            }
            let name = self.client_name(id);
            let text = self.cleaned(args);
            let clean = self.limits.clean;
            let range = self.log.append_with(|out| {
                write_line(out, clean, &[b"* ", name.as_bytes(), b" "], &text);
            });
            if let Some(client) = self.client_mut(id) {
                client.queue.exclude(range);
            }
        } else if word.eq_ignore_ascii_case(b"msg") {
            let (to, text) = split_word(args);
            if to.is_empty() || text.is_empty() {
                self.reply(id, "-!- usage: /msg NAME TEXT");
                return;
            }
            self.private(Sender::Client(id), to, text);
        } else if word.eq_ignore_ascii_case(b"help") {
            self.reply(id, HELP);
        } else {
            let word = String::from_utf8_lossy(&self.cleaned(word)).into_owned();
            self.reply(
                id,
                &format!("-!- unknown command /{word}; /help lists the commands"),
            );
        }
    }

    /// `bytes` made safe for a terminal (unless `--raw`), as one whole
    /// piece of text.
    fn cleaned(&self, bytes: &[u8]) -> Vec<u8> {
        if !self.limits.clean {
            return bytes.to_vec();
        }
        let mut out = Vec::with_capacity(bytes.len());
        let mut sanitizer = Sanitizer::new();
        sanitizer.push(bytes, &mut out);
        sanitizer.finish(&mut out);
        out
    }

    fn nick(&mut self, id: ClientId, wanted: &[u8]) {
        // Spaces after the name are not part of it (a space inside is).
        let new = match name::check(wanted.trim_ascii_end()) {
            Ok(new) => new,
            Err(why) => {
                self.reply(id, &format!("-!- /nick: {why}"));
                return;
            }
        };
        let old = self.client_name(id);
        if *old == *new {
            self.reply(id, &format!("-!- you are already {new}"));
            return;
        }
        let cert = self
            .clients
            .get(id.0)
            .and_then(Option::as_ref)
            .and_then(|c| c.cert);
        // Reserved for another certificate, or a name that looks like it.
        if let Some(reservations) = &self.reservations
            && reservations.held_by_another(new, cert.as_ref()).is_some()
        {
            self.reply(
                id,
                &format!("-!- /nick: {new} is reserved for another certificate"),
            );
            return;
        }
        if self.taken(new, id) {
            self.reply(id, &format!("-!- /nick: {}", Refusal::Taken));
            return;
        }
        if let (Some(reservations), Some(cert)) = (&mut self.reservations, cert)
            && let Claim::Reserved { .. } = reservations.claim(new, &cert)
        {
            self.reservations_changed = true;
        }
        let new: Rc<str> = new.into();
        self.remove_name(&old, id);
        self.add_name(&new, id);
        if let Some(client) = self.client_mut(id) {
            client.name = Rc::clone(&new);
        }
        self.reply(id, &format!("-!- you are now {new}"));
        let range = self.notice(&format!("-!- {old} is now {new}"));
        if let Some(client) = self.client_mut(id) {
            client.queue.exclude(range);
        }
    }

    fn who(&mut self, id: ClientId) {
        let text = self.who_text();
        self.reply(id, &text);
    }

    /// The answer to `/who`: `-!- N present: a b c`, at most one line of
    /// `--max-line` bytes (the rest counted).
    fn who_text(&self) -> String {
        let mut present: Vec<(u64, Rc<str>)> = self
            .clients
            .iter()
            .flatten()
            .filter(|c| c.state == State::Member)
            .map(|c| {
                let name = if self.verified(c) {
                    Rc::from(format!("{} (verified)", c.name))
                } else {
                    Rc::clone(&c.name)
                };
                (c.serial, name)
            })
            .collect();
        present.sort_unstable_by_key(|(serial, _)| *serial);
        let mut text = format!("-!- {} present:", present.len());
        // The answer is one line of at most --max-line bytes (and never
        // less than the first names): the rest is counted.
        let room = self.limits.max_line.max(256);
        for (shown, (_, name)) in present.iter().enumerate() {
            let tail = present.len() - shown;
            if text.len() + 1 + name.len() + 24 > room && tail > 1 {
                text.push_str(&format!(" (and {tail} more)"));
                break;
            }
            text.push(' ');
            text.push_str(name);
        }
        text
    }

    /// `/msg NAME TEXT` from `from`: `[FROM (private)] TEXT` to NAME alone
    /// (a member, or the operator on the server's standard output), and
    /// `-!- to NAME: TEXT` back to `from`.
    fn private(&mut self, from: Sender, to: &[u8], text: &[u8]) {
        let sender = match from {
            Sender::Client(id) => self.client_name(id),
            Sender::Operator => Rc::clone(&self.operator),
        };
        let text = self.cleaned(text);
        let line = compose(
            &mut self.scratch,
            self.limits.clean,
            &[b"[", sender.as_bytes(), b" (private)] "],
            &text,
        );
        let operator =
            std::str::from_utf8(to).is_ok_and(|t| name::key(t) == name::key(&self.operator));
        let to = if operator {
            let at = self.log.head();
            self.stdout.push(at, &line);
            Rc::clone(&self.operator)
        } else if let Some(target) = self.member_called(to) {
            self.send(target, &line);
            self.client_name(target)
        } else {
            let to = String::from_utf8_lossy(&self.cleaned(to)).into_owned();
            self.answer(from, &format!("-!- /msg: no one here is called {to}"));
            return;
        };
        let confirm = compose(
            &mut self.scratch,
            self.limits.clean,
            &[b"-!- to ", to.as_bytes(), b": "],
            &text,
        );
        match from {
            Sender::Client(id) => self.send(id, &confirm),
            Sender::Operator => {
                let at = self.log.head();
                self.stdout.push(at, &confirm);
            }
        }
    }

    /// A line of text, without newline, to `to` alone: a client, or the
    /// operator ([`Room::tell_operator`]).
    fn answer(&mut self, to: Sender, text: &str) {
        match to {
            Sender::Client(id) => self.reply(id, text),
            Sender::Operator => self.tell_operator(text),
        }
    }

    // --- lines from the server's standard input -------------------------

    fn server_piece(&mut self, piece: Piece<'_>) -> ControlFlow<()> {
        if piece.is_whole_line() && piece.text == b"arret" {
            let by = Rc::clone(&self.operator);
            self.stop(&by);
            return ControlFlow::Break(());
        }
        let clean = self.limits.clean;
        let sanitizer = &mut self.server_sanitizer;
        let prefix = format!("[{}] ", self.operator);
        let range = self.log.append_with(|out| {
            let start = out.len();
            out.extend_from_slice(prefix.as_bytes());
            if clean {
                sanitizer.push(piece.text, out);
                if piece.ends_line {
                    sanitizer.finish(out);
                }
                starts::guard(out, start, prefix.len());
            } else {
                out.extend_from_slice(piece.text);
            }
            out.push(b'\n');
        });
        // The server typed it: not shown on its standard output.
        self.stdout.exclude(range);
        ControlFlow::Continue(())
    }

    // --- the operator's commands -------------------------------------------

    /// A line of the operator that began with `/`, without it.
    fn operator_command(&mut self, line: &[u8]) {
        let (word, args) = split_word(line);
        let is = |name: &[u8]| word.eq_ignore_ascii_case(name);
        if is(b"who") {
            let text = self.who_text();
            self.tell_operator(&text);
        } else if is(b"msg") {
            let (to, text) = split_word(args);
            if to.is_empty() || text.is_empty() {
                self.tell_operator("-!- usage: /msg NAME TEXT");
            } else {
                self.private(Sender::Operator, to, text);
            }
        } else if is(b"kick") {
            let (who, reason) = split_word(args);
            if who.is_empty() {
                self.tell_operator("-!- usage: /kick NAME [REASON]");
            } else {
                self.kick(who, reason);
            }
        } else if is(b"me") {
            if args.is_empty() {
                self.tell_operator("-!- usage: /me ACTION");
                return;
            }
            let text = self.cleaned(args);
            let clean = self.limits.clean;
            let name = Rc::clone(&self.operator);
            let range = self.log.append_with(|out| {
                write_line(out, clean, &[b"* ", name.as_bytes(), b" "], &text);
            });
            // Typed by the operator: its screen shows it already.
            self.stdout.exclude(range);
        } else if is(b"quit") {
            let by = Rc::clone(&self.operator);
            self.stop_with(&format!("-!- {by} closed the room"));
        } else if is(b"help") {
            self.tell_operator(OPERATOR_HELP);
        } else {
            let word = String::from_utf8_lossy(&self.cleaned(word)).into_owned();
            self.tell_operator(&format!(
                "-!- unknown command /{word}; /help lists the commands"
            ));
        }
    }

    /// A line of text, without newline, to the server's standard output
    /// alone (the operator's answers).
    fn tell_operator(&mut self, text: &str) {
        let line = compose_notice(&mut self.scratch, self.limits.clean, text);
        let at = self.log.head();
        self.stdout.push(at, &line);
    }

    /// The member called `name` (as `/msg` finds it), if any.
    fn member_called(&self, name: &[u8]) -> Option<ClientId> {
        std::str::from_utf8(name)
            .ok()
            .and_then(|n| self.names.get(&name::key(n)).copied())
    }

    /// `/kick NAME [REASON]`: NAME reads `-!- you were kicked by OPERATOR
    /// (REASON)`, then what was queued for it, then end of file; everyone
    /// else reads `-!- NAME was kicked by OPERATOR (REASON)`.
    fn kick(&mut self, who: &[u8], reason: &[u8]) {
        let Some(id) = self.member_called(who) else {
            let who = String::from_utf8_lossy(&self.cleaned(who)).into_owned();
            self.tell_operator(&format!("-!- /kick: no one here is called {who}"));
            return;
        };
        let reason = String::from_utf8_lossy(&self.cleaned(reason.trim_ascii())).into_owned();
        let why = if reason.is_empty() {
            String::new()
        } else {
            format!(" ({reason})")
        };
        let by = Rc::clone(&self.operator);
        let name = self.client_name(id);
        self.reply(id, &format!("-!- you were kicked by {by}{why}"));
        self.depart(
            id,
            Why::Bye,
            Some(format!("-!- {name} was kicked by {by}{why}")),
        );
    }
    // --- leaving and stopping --------------------------------------------

    fn leave(&mut self, id: ClientId, why: Why) {
        self.depart(id, why, None);
    }

    /// [`Room::leave`], announced by `notice` instead of the notice of
    /// `why` when one is given.
    fn depart(&mut self, id: ClientId, why: Why, notice: Option<String>) {
        let head = self.log.head();
        let Some(Some(client)) = self.clients.get_mut(id.0) else {
            return;
        };
        if client.state == State::Leaving {
            return;
        }
        client.state = State::Leaving;
        client.joining = false;
        let name = Rc::clone(&client.name);
        let flush = match why {
            Why::Bye | Why::Idle => {
                // What was said before it left is still for it.
                client.queue.stop_at(head);
                true
            }
            Why::TooSlow => {
                client.queue.detach(&self.log);
                true
            }
            Why::Lost => {
                client.queue.detach(&self.log);
                false
            }
        };
        self.remove_name(&name, id);
        self.members -= 1;
        self.actions.push(Action::Close { id, flush });
        let notice = notice.unwrap_or_else(|| match why {
            Why::TooSlow => format!("-!- {name} left (too slow)"),
            Why::Idle => format!("-!- {name} left (idle)"),
            Why::Bye | Why::Lost => format!("-!- {name} left"),
        });
        self.notice(&notice);
        if why == Why::TooSlow {
            // It reads why, then end of file.
            let line = compose_notice(&mut self.scratch, self.limits.clean, &notice);
            let at = self.log.head();
            if let Some(client) = self.client_mut(id) {
                client.queue.push(at, &line);
            }
            self.ready.push(id);
        }
    }

    /// `arret` from `by`: tells everyone, then every client leaves with
    /// its queue flushed, and the room stops.
    fn stop(&mut self, by: &str) {
        self.stop_with(&format!("-!- {by} said arret: the room is closed"));
    }

    fn stop_with(&mut self, notice: &str) {
        self.notice(notice);
        self.stopped = true;
        let head = self.log.head();
        for (i, slot) in self.clients.iter_mut().enumerate() {
            if let Some(client) = slot
                && client.state != State::Leaving
            {
                client.state = State::Leaving;
                client.queue.stop_at(head);
                self.actions.push(Action::Close {
                    id: ClientId(i),
                    flush: true,
                });
            }
        }
        self.names.clear();
        self.looks.clear();
        self.members = 0;
        self.actions.push(Action::Stop);
    }

    // --- queues ----------------------------------------------------------

    /// Queues `line` for one member, after what is in the log now.
    fn send(&mut self, id: ClientId, line: &Rc<[u8]>) {
        let at = self.log.head();
        if let Some(Some(client)) = self.clients.get_mut(id.0)
            && client.state == State::Member
        {
            client.queue.push(at, line);
            self.ready.push(id);
        }
    }

    /// A line of text, without newline, to `id` alone.
    fn reply(&mut self, id: ClientId, text: &str) {
        let line = compose_notice(&mut self.scratch, self.limits.clean, text);
        self.send(id, &line);
    }

    /// A notice, without newline, to every member and on standard output
    /// (through the log); returns its range, for the member it is not for.
    fn notice(&mut self, text: &str) -> std::ops::Range<u64> {
        let clean = self.limits.clean;
        let (prefix, text) = split_notice(text);
        self.log
            .append_with(|out| write_line(out, clean, &[prefix], text))
    }

    /// Frees the log before the slowest reader.
    fn trim(&mut self) {
        let mut keep = self.log.head();
        for client in self.clients.iter().flatten() {
            if client.queue.reads_log() {
                keep = keep.min(client.queue.cursor());
            }
        }
        if self.stdout.reads_log() {
            keep = keep.min(self.stdout.cursor());
        }
        self.log.trim(keep);
    }

    // --- names -------------------------------------------------------------

    /// Whether a member other than `id` has `name`, or a name that looks
    /// like it (see [`name::Keys`]).
    fn taken(&self, name: &str, id: ClientId) -> bool {
        if crate::display::looks::alike(name, &self.operator) {
            return true;
        }
        let keys = name::Keys::of(name);
        let other = |found: Option<&ClientId>| found.is_some_and(|&other| other != id);
        other(self.names.get(&keys.caseless)) || keys.looks.iter().any(|k| other(self.looks.get(k)))
    }

    /// Files `name` as `id`'s under each of its keys.
    fn add_name(&mut self, name: &str, id: ClientId) {
        let keys = name::Keys::of(name);
        self.names.insert(keys.caseless, id);
        for key in keys.looks {
            self.looks.insert(key, id);
        }
    }

    /// Forgets `id`'s `name` (the keys that are still `id`'s).
    fn remove_name(&mut self, name: &str, id: ClientId) {
        let keys = name::Keys::of(name);
        if self.names.get(&keys.caseless) == Some(&id) {
            self.names.remove(&keys.caseless);
        }
        for key in keys.looks {
            if self.looks.get(&key) == Some(&id) {
                self.looks.remove(&key);
            }
        }
    }

    // --- slots -------------------------------------------------------------

    fn client_mut(&mut self, id: ClientId) -> Option<&mut Client> {
        self.clients.get_mut(id.0)?.as_mut()
    }

    fn member_mut(&mut self, id: ClientId) -> Option<&mut Client> {
        self.client_mut(id).filter(|c| c.state == State::Member)
    }

    fn client_name(&self, id: ClientId) -> Rc<str> {
        match self.clients.get(id.0) {
            Some(Some(client)) => Rc::clone(&client.name),
            _ => Rc::from("?"),
        }
    }
}

/// Since when lines have waited for a reader without it making room
/// (`None` when nothing waits), after asking `taken` whether its kernel
/// took bytes, when [`pace::should_ask`] says so: if it did, from `now`.
fn stall_clock(
    queue: &mut SendQueue,
    who: Reader,
    pending: usize,
    backlog: usize,
    now: Instant,
    marks: &Marks,
    taken: &mut dyn FnMut(Reader) -> bool,
) -> Option<Instant> {
    let since = queue.waiting_since().filter(|_| pending > 0)?;
    if !pace::should_ask(since, backlog, queue.drained(), queue.asked(), now, marks) {
        return Some(since);
    }
    if taken(who) {
        queue.note_taken(now);
        Some(now)
    } else {
        queue.note_asked();
        Some(since)
    }
}

/// The answer to `/help`, one line.
/// The answer to the operator's `/help`.
pub(crate) const OPERATOR_HELP: &str = "-!- commands: /who, /msg NAME TEXT, /kick NAME [REASON], \
     /me ACTION, /quit (closes the room, as arret); //TEXT sends /TEXT";

pub(crate) const HELP: &str = "-!- commands: /nick NAME, /who, /me ACTION, /msg NAME TEXT, /help; \
    //TEXT sends /TEXT; a line bye leaves";

/// Writes into `out` one line of the room: `prefix` (its parts, who says
/// it), `text` and a newline; when `clean`, cut where a row would begin
/// like a line ([`starts::guard`]).
fn write_line(out: &mut Vec<u8>, clean: bool, prefix: &[&[u8]], text: &[u8]) {
    let start = out.len();
    for part in prefix {
        out.extend_from_slice(part);
    }
    let prefix_len = out.len() - start;
    out.extend_from_slice(text);
    if clean {
        starts::guard(out, start, prefix_len);
    }
    out.push(b'\n');
}

/// [`write_line`] into one shared line, through a reused buffer.
fn compose(scratch: &mut Vec<u8>, clean: bool, prefix: &[&[u8]], text: &[u8]) -> Rc<[u8]> {
    scratch.clear();
    write_line(scratch, clean, prefix, text);
    Rc::from(&scratch[..])
}

/// A notice or answer of the room, `-!- TEXT` without newline, as one
/// shared line.
fn compose_notice(scratch: &mut Vec<u8>, clean: bool, text: &str) -> Rc<[u8]> {
    let (prefix, text) = split_notice(text);
    compose(scratch, clean, &[prefix], text)
}

/// A notice's prefix `-!- ` (empty if it has none) and its text.
fn split_notice(text: &str) -> (&[u8], &[u8]) {
    text.as_bytes().split_at(if text.starts_with(NOTICE) {
        NOTICE.len()
    } else {
        0
    })
}

/// How every line of the room's own begins (irssi's notices).
pub const NOTICE: &str = "-!- ";

/// Splits `text` at its first space: the word before, and what follows the
/// spaces after it.
fn split_word(text: &[u8]) -> (&[u8], &[u8]) {
    match text.iter().position(|&b| b == b' ') {
        Some(i) => {
            let rest = &text[i..];
            let start = rest.iter().position(|&b| b != b' ').unwrap_or(rest.len());
            (&text[..i], &rest[start..])
        }
        None => (text, &[]),
    }
}

#[cfg(test)]
mod tests;

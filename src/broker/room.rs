//! The room of `chatd --broker`: who is present, under which name, what
//! each line they send becomes, and who receives it. A plain state machine
//! with no sockets inside: the event loop ([`super`]) hands it the bytes it
//! reads and writes out what it queues; the tests drive it directly.
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
//!   `[alice] hello`. It is formatted once; every send queue holding it
//!   shares the same bytes (see [`SendQueue`]), and the lines of a whole
//!   turn of the event loop are shared as one chunk (see `Run`).
//! - **Names.** A client arrives with its address as name (see
//!   [`super::name`] for the forms, IPv6 included) and may take another with
//!   `/nick`.
//! - **Commands**, answered to the sender alone unless said otherwise:
//!   `/nick NAME`, `/who`, `/me ACTION` (to the others: `* NAME ACTION`),
//!   `/msg NAME TEXT` (to NAME alone: `[SENDER (private)] TEXT`), `/help`;
//!   `//TEXT` relays `/TEXT`; any other `/word` gets a one-line answer.
//!   Commands and their words are ASCII case-insensitive.
//! - **Notices** to the others and on the server's standard output:
//!   `* NAME joined`, `* NAME left`, `* NAME left (too slow)`,
//!   `* NAME left (idle)` (`--idle-timeout`),
//!   `* OLD is now NEW`.
//! - **Protocol words.** A line `bye` ends its client's session (announced
//!   as a leave). A line `arret` from a client is relayed like any other,
//!   unless [`Limits::allow_remote_stop`]; on the server's standard input it
//!   closes the room.
//! - **Backpressure.** Each client has a [`SendQueue`] of at most
//!   `--max-queue` bytes. A client whose queue would overflow is
//!   disconnected at once (`* NAME left (too slow)`, IRC's "SendQ
//!   exceeded"): nobody ever waits for it, and it never misses a line in
//!   the middle of what it receives. The server's standard output has a
//!   queue of the same size; when it falls behind, lines are dropped and
//!   counted ([`Room::take_stdout_dropped`]) rather than the room waiting.
//!
//! The server's standard output shows the room: every relayed line and
//! every notice, but not what goes to a single client (answers, private
//! messages), nor the server's own lines (it typed them).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::ops::ControlFlow;
use std::rc::Rc;

use super::frame::{Framer, Piece};
use super::name::{self, Refusal, SERVER};
use super::queue::SendQueue;
use crate::display::Sanitizer;

/// The limits and switches of a room, from the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// `--max-line`: longer lines are relayed in pieces of this many bytes.
    pub max_line: usize,
    /// `--max-queue`: the most unwritten bytes one client (or the server's
    /// standard output) may have queued.
    pub max_queue: usize,
    /// `--allow-remote-stop`: a client's line `arret` closes the room.
    pub allow_remote_stop: bool,
    /// Make the server's standard output safe for a terminal (it is one).
    pub sanitize_stdout: bool,
}

/// A bound on what the room adds to `--max-line` bytes of text in any one
/// line it queues: a prefix is at most 142 bytes (`[`, a name of 32
/// characters of up to 4 bytes, or an IPv6 address name of at most 56,
/// ` (private)] `), an answer quoting a command word at most 50, a notice
/// naming two names 267, `/who` 30 past `max(--max-line, 256)`. A queue of
/// `--max-line` + this many bytes holds any single line, so `--max-queue`
/// must be at least that.
pub const LINE_OVERHEAD: usize = 512;

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
    /// for it, then close (it said `bye`, or reached end of file); without,
    /// close at once (too slow, or its connection failed). Either way, call
    /// [`Room::release`] once the socket is closed.
    Close {
        /// The client.
        id: ClientId,
        /// Write its queue first.
        flush: bool,
    },
    /// `arret`: the room is closed. Every client also has a
    /// [`Action::Close`] with `flush`; once they are closed, the server
    /// exits with status 0.
    Stop,
}

/// Why a client leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Why {
    /// `bye`, or end of file: what is queued is still sent.
    Bye,
    /// Its connection failed: nothing more can be sent.
    Lost,
    /// Its queue overflowed.
    TooSlow,
    /// Nothing was received from it for `--idle-timeout`: what is queued is
    /// still sent.
    Idle,
}

/// Where a client stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// In the room: receives the lines of the others.
    Member,
    /// Its queue overflowed during the current call; it leaves before the
    /// call returns, and receives nothing more meanwhile.
    Overflowed,
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
    /// The rest of the current line is dropped (a command longer than
    /// `--max-line`).
    skip_rest: bool,
}

/// The room: see the [module documentation](self).
#[derive(Debug)]
pub struct Room {
    limits: Limits,
    clients: Vec<Option<Client>>,
    free: Vec<usize>,
    /// [`name::key`] of every member's name.
    names: HashMap<String, ClientId>,
    members: usize,
    serial: u64,
    server: Framer,
    stdout: SendQueue,
    stdout_dropped: u64,
    sanitizer: Option<Sanitizer>,
    actions: Vec<Action>,
    ready: Vec<ClientId>,
    overflowed: Vec<ClientId>,
    run: Run,
    scratch: Vec<u8>,
    clean: Vec<u8>,
    stopped: bool,
}

/// The lines relayed since the last flush, from any senders, in the order
/// they arrived: relayed as one shared chunk.
///
/// A busy room relays the lines of many reads in one turn of the event
/// loop. Rather than one allocation and one queue slot per line (or per
/// read) and per client, they are gathered here, formatted once into one
/// buffer, and each client's queue gets that chunk whole, or, for a client
/// that spoke in it, the ranges around its own lines (no echo). The run is
/// flushed before anything else is queued (an answer, a notice, a private
/// message), so that every client receives the same order as line by line;
/// when it would pass `--max-line` + [`LINE_OVERHEAD`] bytes, so that a
/// chunk always fits in an empty queue; and at the end of each turn
/// ([`Room::flush`]).
#[derive(Debug)]
struct Run {
    /// The formatted lines, each ending in a newline.
    bytes: Vec<u8>,
    /// Who sent each stretch of `bytes`: a client, or `None` for the
    /// server; consecutive lines of one sender make one stretch.
    stretches: Vec<(Option<ClientId>, usize, usize)>,
    /// The most bytes a chunk holds, unless one line alone is longer.
    limit: usize,
    /// Scratch: the clients' stretches sorted by client.
    own: Vec<(usize, usize, usize)>,
}

impl Room {
    /// An empty room with `limits`.
    ///
    /// # Panics
    ///
    /// If `limits.max_line` is 0.
    pub fn new(limits: Limits) -> Room {
        Room {
            limits,
            clients: Vec::new(),
            free: Vec::new(),
            names: HashMap::new(),
            members: 0,
            serial: 0,
            server: Framer::new(limits.max_line),
            stdout: SendQueue::new(limits.max_queue),
            stdout_dropped: 0,
            sanitizer: limits.sanitize_stdout.then(Sanitizer::new),
            actions: Vec::new(),
            ready: Vec::new(),
            overflowed: Vec::new(),
            run: Run {
                bytes: Vec::new(),
                stretches: Vec::new(),
                limit: limits.max_line.saturating_add(LINE_OVERHEAD),
                own: Vec::new(),
            },
            scratch: Vec::new(),
            clean: Vec::new(),
            stopped: false,
        }
    }

    /// A client connected from `addr`: it gets a slot, its address name
    /// and a greeting, and the others a `* NAME joined`.
    pub fn join(&mut self, addr: SocketAddr) -> ClientId {
        // What was said before it arrived is not for it.
        self.flush_run();
        let name: Rc<str> = name::address_name(addr).into();
        let client = Client {
            name: Rc::clone(&name),
            serial: self.serial,
            state: State::Member,
            framer: Framer::new(self.limits.max_line),
            queue: SendQueue::new(self.limits.max_queue),
            skip_rest: false,
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
        self.names.insert(name::key(&name), id);
        self.members += 1;
        let others = self.members - 1;
        let plural = if others == 1 { "" } else { "s" };
        self.reply(
            id,
            &format!(
                "* you are {name}, with {others} other{plural} here; /help lists the commands"
            ),
        );
        self.notice(Some(id), &format!("* {name} joined"));
        self.settle();
        id
    }

    /// Bytes `client` sent: relayed, obeyed or answered, line by line.
    /// Ignored once the client has left.
    pub fn receive(&mut self, id: ClientId, bytes: &[u8]) {
        let Some(client) = self.member_mut(id) else {
            return;
        };
        let mut framer = std::mem::replace(&mut client.framer, Framer::new(1));
        let _ = framer.push(bytes, |piece| self.piece(id, piece));
        if let Some(client) = self.client_mut(id) {
            client.framer = framer;
        }
        self.settle();
    }

    /// `client` reached end of file: its last line, if it had no newline,
    /// counts; then it leaves, what is queued for it still sent.
    pub fn end_of_input(&mut self, id: ClientId) {
        let Some(client) = self.member_mut(id) else {
            return;
        };
        let mut framer = std::mem::replace(&mut client.framer, Framer::new(1));
        let _ = framer.finish(|piece| self.piece(id, piece));
        self.leave(id, Why::Bye);
        self.settle();
    }

    /// `client`'s connection failed (reset, or a write error): it leaves at
    /// once.
    pub fn lost(&mut self, id: ClientId) {
        self.leave(id, Why::Lost);
        self.settle();
    }

    /// Nothing was received from `client` for `--idle-timeout` (issue 10):
    /// it leaves as `* NAME left (idle)`, what is queued for it still sent.
    pub fn idle(&mut self, id: ClientId) {
        self.leave(id, Why::Idle);
        self.settle();
    }

    /// Bytes from the server's standard input: each line goes to every
    /// client as `[chatd] LINE`; a line `arret` closes the room.
    pub fn from_server(&mut self, bytes: &[u8]) {
        if self.stopped {
            return;
        }
        let mut framer = std::mem::replace(&mut self.server, Framer::new(1));
        let _ = framer.push(bytes, |piece| self.server_piece(piece));
        self.server = framer;
        self.settle();
    }

    /// End of file on the server's standard input: its last line counts.
    /// The room goes on.
    pub fn server_end_of_input(&mut self) {
        if self.stopped {
            return;
        }
        let mut framer = std::mem::replace(&mut self.server, Framer::new(1));
        let _ = framer.finish(|piece| self.server_piece(piece));
        self.server = framer;
        self.settle();
    }

    /// Ends the current run: queues the lines relayed since the last flush
    /// (see `Run`), then makes the clients that overflowed leave. The event
    /// loop calls it once a turn, before writing; lines become visible in
    /// the send queues only then.
    pub fn flush(&mut self) {
        self.flush_run();
        self.settle();
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

    /// The send queue of `client`, while it has a slot.
    pub fn queue_mut(&mut self, id: ClientId) -> Option<&mut SendQueue> {
        self.client_mut(id).map(|c| &mut c.queue)
    }

    /// The send queue of `client`, while it has a slot.
    pub fn queue(&self, id: ClientId) -> Option<&SendQueue> {
        self.clients.get(id.0)?.as_ref().map(|c| &c.queue)
    }

    /// What waits to be written to the server's standard output.
    pub fn stdout_mut(&mut self) -> &mut SendQueue {
        &mut self.stdout
    }

    /// How many lines were not shown on standard output because its queue
    /// was full, since the last call.
    pub fn take_stdout_dropped(&mut self) -> u64 {
        std::mem::take(&mut self.stdout_dropped)
    }

    /// Moves into `out` the clients whose queue went from empty to
    /// non-empty since the last call (some may have left since).
    pub fn take_ready(&mut self, out: &mut Vec<ClientId>) {
        out.append(&mut self.ready);
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

    /// Whether `arret` closed the room.
    pub fn is_stopped(&self) -> bool {
        self.stopped
    }

    // --- lines from clients ---------------------------------------------

    fn piece(&mut self, id: ClientId, piece: Piece<'_>) -> ControlFlow<()> {
        let Some(client) = self.member_mut(id) else {
            return ControlFlow::Break(());
        };
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
                    &format!("* command longer than {max} bytes: line dropped"),
                );
                return ControlFlow::Continue(());
            }
            text = &text[1..];
        }
        self.say(id, text);
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
                self.say(id, &text[1..]);
                ControlFlow::Continue(())
            }
            [b'/', command @ ..] => {
                self.command(id, command);
                ControlFlow::Continue(())
            }
            _ => {
                self.say(id, text);
                ControlFlow::Continue(())
            }
        }
    }

    /// Relays `text` from `id` to every other member and standard output:
    /// adds `[NAME] TEXT` to the run (see `Run`).
    fn say(&mut self, id: ClientId, text: &[u8]) {
        let name = self.client_name(id);
        self.run_line(Some(id), &[b"[", name.as_bytes(), b"] ", text, b"\n"]);
    }

    /// Adds one formatted line from `from` (a client, or the server) to the
    /// run, flushing the run first if the line would take it past its
    /// bound.
    fn run_line(&mut self, from: Option<ClientId>, parts: &[&[u8]]) {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        if self.run.bytes.len() + len > self.run.limit {
            self.flush_run();
        }
        let start = self.run.bytes.len();
        for part in parts {
            self.run.bytes.extend_from_slice(part);
        }
        let end = self.run.bytes.len();
        match self.run.stretches.last_mut() {
            Some((who, _, last)) if *who == from => *last = end,
            _ => self.run.stretches.push((from, start, end)),
        }
    }

    /// Sends the run: one shared chunk, whole to every member that said
    /// nothing in it, in ranges around their own lines to the others; the
    /// clients' lines (not the server's) to standard output.
    fn flush_run(&mut self) {
        if self.run.bytes.is_empty() {
            return;
        }
        let chunk: Rc<[u8]> = Rc::from(&self.run.bytes[..]);
        let len = chunk.len();
        self.run.bytes.clear();
        if self.run.bytes.capacity() > 2 * self.run.limit.min(1 << 16) {
            self.run.bytes = Vec::new();
        }
        let mut own = std::mem::take(&mut self.run.own);
        own.clear();
        own.extend(
            self.run
                .stretches
                .iter()
                .filter_map(|&(who, a, b)| who.map(|id| (id.0, a, b))),
        );
        own.sort_unstable();
        // Each member, with its own stretches (sorted by client, then by
        // position) walked alongside.
        let mut k = 0;
        for (i, slot) in self.clients.iter_mut().enumerate() {
            while own.get(k).is_some_and(|o| o.0 < i) {
                k += 1;
            }
            let Some(client) = slot else { continue };
            if client.state != State::Member {
                continue;
            }
            let id = ClientId(i);
            let mut at = 0;
            while let Some(&(_, a, b)) = own.get(k).filter(|o| o.0 == i) {
                enqueue(
                    client,
                    id,
                    &chunk,
                    at..a,
                    &mut self.ready,
                    &mut self.overflowed,
                );
                at = b;
                k += 1;
            }
            enqueue(
                client,
                id,
                &chunk,
                at..len,
                &mut self.ready,
                &mut self.overflowed,
            );
        }
        self.run.own = own;
        // Standard output: the clients' stretches (the server's own lines
        // are not echoed), adjacent ones as one range.
        let stretches = std::mem::take(&mut self.run.stretches);
        let mut shown: Option<(usize, usize)> = None;
        for &(who, a, b) in &stretches {
            match (who, shown) {
                (None, Some((x, y))) => {
                    self.show_range(&chunk, x..y);
                    shown = None;
                }
                (None, None) => {}
                (Some(_), Some((x, _))) => shown = Some((x, b)),
                (Some(_), None) => shown = Some((a, b)),
            }
        }
        if let Some((x, y)) = shown {
            self.show_range(&chunk, x..y);
        }
        self.run.stretches = stretches;
        self.run.stretches.clear();
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
                self.reply(id, "* usage: /me ACTION");
                return;
            }
            let name = self.client_name(id);
            let line = format(
                &mut self.scratch,
                &[b"* ", name.as_bytes(), b" ", args, b"\n"],
            );
            self.relay(&line, Some(id));
            self.show(&line);
        } else if word.eq_ignore_ascii_case(b"msg") {
            let (to, text) = split_word(args);
            if to.is_empty() || text.is_empty() {
                self.reply(id, "* usage: /msg NAME TEXT");
                return;
            }
            self.private(id, to, text);
        } else if word.eq_ignore_ascii_case(b"help") {
            self.reply(id, HELP);
        } else {
            let word = String::from_utf8_lossy(word);
            self.reply(
                id,
                &format!("* unknown command /{word}; /help lists the commands"),
            );
        }
    }

    fn nick(&mut self, id: ClientId, wanted: &[u8]) {
        // Spaces after the name are not part of it (a space inside is).
        let new = match name::check(wanted.trim_ascii_end()) {
            Ok(new) => new,
            Err(why) => {
                self.reply(id, &format!("* /nick: {why}"));
                return;
            }
        };
        let old = self.client_name(id);
        if *old == *new {
            self.reply(id, &format!("* you are already {new}"));
            return;
        }
        let key = name::key(new);
        if self.names.get(&key).is_some_and(|&other| other != id) {
            self.reply(id, &format!("* /nick: {}", Refusal::Taken));
            return;
        }
        let new: Rc<str> = new.into();
        self.names.remove(&name::key(&old));
        self.names.insert(key, id);
        if let Some(client) = self.client_mut(id) {
            client.name = Rc::clone(&new);
        }
        self.reply(id, &format!("* you are now {new}"));
        self.notice(Some(id), &format!("* {old} is now {new}"));
    }

    fn who(&mut self, id: ClientId) {
        let mut present: Vec<(u64, Rc<str>)> = self
            .clients
            .iter()
            .flatten()
            .filter(|c| c.state == State::Member)
            .map(|c| (c.serial, Rc::clone(&c.name)))
            .collect();
        present.sort_unstable_by_key(|(serial, _)| *serial);
        let mut text = format!("* {} present:", present.len());
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
        self.reply(id, &text);
    }

    fn private(&mut self, id: ClientId, to: &[u8], text: &[u8]) {
        let from = self.client_name(id);
        let line = format(
            &mut self.scratch,
            &[b"[", from.as_bytes(), b" (private)] ", text, b"\n"],
        );
        let target = std::str::from_utf8(to).ok();
        if target.is_some_and(|t| t.eq_ignore_ascii_case(SERVER)) {
            self.show(&line);
            return;
        }
        match target.and_then(|t| self.names.get(&name::key(t)).copied()) {
            Some(target) => self.send(target, &line),
            None => {
                let to = String::from_utf8_lossy(to);
                self.reply(id, &format!("* /msg: no one here is called {to}"));
            }
        }
    }

    // --- lines from the server's standard input -------------------------

    fn server_piece(&mut self, piece: Piece<'_>) -> ControlFlow<()> {
        if piece.is_whole_line() && piece.text == b"arret" {
            self.stop(SERVER);
            return ControlFlow::Break(());
        }
        self.run_line(None, &[b"[chatd] ", piece.text, b"\n"]);
        ControlFlow::Continue(())
    }

    // --- leaving and stopping --------------------------------------------

    fn leave(&mut self, id: ClientId, why: Why) {
        // What was said before it left is still for it.
        self.flush_run();
        let Some(client) = self.client_mut(id) else {
            return;
        };
        if client.state == State::Leaving {
            return;
        }
        client.state = State::Leaving;
        let name = Rc::clone(&client.name);
        let flush = matches!(why, Why::Bye | Why::Idle);
        if !flush {
            client.queue.clear();
        }
        self.names.remove(&name::key(&name));
        self.members -= 1;
        self.actions.push(Action::Close { id, flush });
        let notice = match why {
            Why::TooSlow => format!("* {name} left (too slow)"),
            Why::Idle => format!("* {name} left (idle)"),
            Why::Bye | Why::Lost => format!("* {name} left"),
        };
        self.notice(None, &notice);
    }

    /// `arret` from `by`: tells everyone, then every client leaves with
    /// its queue flushed, and the room stops.
    fn stop(&mut self, by: &str) {
        self.notice(None, &format!("* {by} said arret: the room is closed"));
        self.stopped = true;
        for (i, slot) in self.clients.iter_mut().enumerate() {
            if let Some(client) = slot
                && client.state != State::Leaving
            {
                let flush = client.state == State::Member;
                if !flush {
                    client.queue.clear();
                }
                client.state = State::Leaving;
                self.actions.push(Action::Close {
                    id: ClientId(i),
                    flush,
                });
            }
        }
        self.names.clear();
        self.members = 0;
        self.actions.push(Action::Stop);
    }

    /// Makes the clients whose queue overflowed leave, which may make
    /// others overflow with the notice, until none is left.
    fn settle(&mut self) {
        while let Some(id) = self.overflowed.pop() {
            self.leave(id, Why::TooSlow);
        }
    }

    // --- queues ----------------------------------------------------------

    /// Queues `line` for every member but `except`, after the run.
    fn relay(&mut self, line: &Rc<[u8]>, except: Option<ClientId>) {
        self.flush_run();
        let all = 0..line.len();
        for (i, slot) in self.clients.iter_mut().enumerate() {
            let id = ClientId(i);
            if let Some(client) = slot
                && client.state == State::Member
                && Some(id) != except
            {
                let (ready, overflowed) = (&mut self.ready, &mut self.overflowed);
                enqueue(client, id, line, all.clone(), ready, overflowed);
            }
        }
    }

    /// Queues `line` for one member, after the run.
    fn send(&mut self, id: ClientId, line: &Rc<[u8]>) {
        self.flush_run();
        if let Some(Some(client)) = self.clients.get_mut(id.0)
            && client.state == State::Member
        {
            let all = 0..line.len();
            enqueue(client, id, line, all, &mut self.ready, &mut self.overflowed);
        }
    }

    /// A line of text, without newline, to `id` alone.
    fn reply(&mut self, id: ClientId, text: &str) {
        let line = format(&mut self.scratch, &[text.as_bytes(), b"\n"]);
        self.send(id, &line);
    }

    /// A notice, without newline, to every member but `except` and on
    /// standard output.
    fn notice(&mut self, except: Option<ClientId>, text: &str) {
        let line = format(&mut self.scratch, &[text.as_bytes(), b"\n"]);
        self.relay(&line, except);
        self.show(&line);
    }

    /// Queues `line` for the server's standard output (made safe for a
    /// terminal if it is one); drops and counts it if that queue is full.
    fn show(&mut self, line: &Rc<[u8]>) {
        self.flush_run();
        self.show_range(line, 0..line.len());
    }

    /// Queues the whole lines `range` of `chunk` for standard output, as
    /// [`Room::show`] does.
    fn show_range(&mut self, chunk: &Rc<[u8]>, range: std::ops::Range<usize>) {
        let pushed = match &mut self.sanitizer {
            Some(sanitizer) => {
                self.clean.clear();
                sanitizer.push(&chunk[range.clone()], &mut self.clean);
                self.stdout.push(&Rc::from(&self.clean[..]))
            }
            None => self.stdout.push_range(chunk, range.clone()),
        };
        if pushed.is_err() {
            let lines = chunk[range].iter().filter(|&&b| b == b'\n').count();
            self.stdout_dropped += lines as u64;
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

/// The answer to `/help`, one line.
pub const HELP: &str = "* commands: /nick NAME, /who, /me ACTION, /msg NAME TEXT, /help; \
    //TEXT sends /TEXT; a line bye leaves";

/// Queues the bytes `range` of `chunk` (whole lines) for `client`, noting
/// it in `ready` if its queue was empty, or in `overflowed` (and relaying
/// nothing more to it) if it is full.
fn enqueue(
    client: &mut Client,
    id: ClientId,
    chunk: &Rc<[u8]>,
    range: std::ops::Range<usize>,
    ready: &mut Vec<ClientId>,
    overflowed: &mut Vec<ClientId>,
) {
    if range.is_empty() || client.state != State::Member {
        return;
    }
    let was_empty = client.queue.is_empty();
    match client.queue.push_range(chunk, range) {
        Ok(()) if was_empty => ready.push(id),
        Ok(()) => {}
        Err(_) => {
            client.state = State::Overflowed;
            overflowed.push(id);
        }
    }
}

/// Concatenates `parts` into one shared line, through a reused buffer.
fn format(scratch: &mut Vec<u8>, parts: &[&[u8]]) -> Rc<[u8]> {
    scratch.clear();
    for part in parts {
        scratch.extend_from_slice(part);
    }
    Rc::from(&scratch[..])
}

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

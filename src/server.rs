//! `chatd`: listen, then serve one client after another (the worksheets:
//! "a client must be able to reconnect after the previous one left").

use std::os::fd::AsRawFd;

use crate::access::Access;
use crate::cli::ChatdArgs;
use crate::error::Error;
use crate::session::{self, Context, End, Input, Kind, Options, Policy, lockstep::First};
use crate::signals::Signals;
use crate::tls::identity::Role;
use crate::words::Word;
use crate::{detail, messages, net, report, status};

/// Runs `chatd` with `args` until `--once` has served a session, a session
/// ends with `arret`, or a terminating signal arrives.
///
/// Errors: a failed `bind`/`listen` ([`Error::Sys`]); [`Error::Signal`] for
/// SIGINT/SIGTERM/SIGHUP; with `--once`, the failure of its session. Without
/// `--once` a failed session is reported on stderr and the server goes back
/// to `accept`.
pub fn run(args: &ChatdArgs) -> Result<(), Error> {
    // --tls: the identity is read (or made) before the port is bound.
    let identity = if args.tls {
        Some(args.identity.load(Role::Server)?)
    } else {
        None
    };
    if let Some(identity) = &identity
        && args.print_cert
    {
        return crate::client::print(&identity.pem());
    }
    let tls = match &identity {
        Some(identity) => Some(crate::tls::config::server_config(identity)?),
        None => None,
    };
    let access = Access::new(
        &args.allow,
        &args.deny,
        args.allowfile.as_ref(),
        args.denyfile.as_ref(),
    );
    let signals = Signals::install().map_err(|e| Error::io("install signal handlers", e))?;
    crate::fork::prepare();
    let listener = net::listen_on(args.bind.as_deref(), args.port, args.family())?;
    let local = listener
        .local_addr()
        .map_err(|e| Error::io("getsockname", e))?;
    status!("listening on {local}");
    if let Some(identity) = &identity {
        status!("TLS fingerprint {}", identity.fingerprint);
    }
    if args.broker {
        // The operator at a terminal types at the line editor; with a pipe
        // or a file, nothing of the terminal is touched.
        let _restore = crate::terminal::editable(args.common.raw)
            .then(|| crate::terminal::setup(args.common.raw, &messages::prompt(), &signals))
            .flatten();
        crate::editor::history::set_up("chatd_history", !args.common.no_history, |line| {
            status!("{line}")
        });
        return crate::broker::run(listener, &signals, &args.broker(), access, tls);
    }
    if let Some(service) = args.service() {
        return crate::service::run(listener, &signals, &service, access, tls);
    }
    let _restore = crate::terminal::setup(args.common.raw, &messages::prompt(), &signals);
    crate::editor::history::set_up("chatd_history", !args.common.no_history, |line| {
        status!("{line}")
    });
    let options = Options::new(args.common.raw, args.common.crlf);
    let kind = Kind::new(
        args.common.alternating,
        First::Listen.swapped_if(args.speak_first),
    );
    // Standard input outlives sessions: what one did not send, the next does.
    let mut input = Input::new(options);
    let policy = Policy::new(args.common.recv_only, args.once, args.idle_timeout);
    // A person types at chatd: clients that connect meanwhile are told
    // that they wait (see `session::notice` for why only then). Not with
    // --tls: the notice would be plain text where the client expects a
    // handshake.
    let tells = input.editor().is_some()
        && !args.common.recv_only
        && !args.once
        && kind == Kind::Duplex
        && tls.is_none();
    if tells {
        waiting::set_up(&listener, &access, &signals)?;
    }
    loop {
        let next = waiting::next();
        if next.is_none()
            && !args.common.recv_only
            && let Some(stop) = wait_idle(&listener, &signals, &mut input)?
        {
            status!("{}", stop.message());
            if matches!(stop, Idle::Arret { unsent } | Idle::Eof { unsent } if unsent > 0) {
                return Err(Error::Reported);
            }
            return Ok(());
        }
        let (stream, peer) = match next {
            Some(waited) => waited,
            None => {
                let (stream, peer) = net::accept(&listener, &signals)?;
                let peer = net::canonical(peer);
                if !access.admit(peer) {
                    continue;
                }
                (stream, peer)
            }
        };
        status!("connection from {peer}");
        // A client that vanishes is noticed within about 2 minutes.
        if let Err(err) = net::keepalive(&stream) {
            report!("{peer}: {err}");
        }
        // The duplex child keeps none of the listening sockets nor the
        // connections that wait.
        let mut close = vec![listener.as_raw_fd()];
        close.extend(waiting::descriptors());
        if let Ok(local) = stream.local_addr() {
            detail!("{peer} connected to {}", net::canonical(local));
        }
        // --tls: the handshake (a failure is a status line, and the
        // server waits for the next client), then the pump owns the
        // connection and the session runs on its end of a socket pair.
        let (stream, pump) = match &tls {
            Some(config) => {
                match crate::tls::server::accept(config, &stream, peer, Some(&signals))? {
                    Some((conn, _)) => {
                        let (local, pump) =
                            crate::tls::pump::spawn(conn, stream, peer, &signals, &close)?;
                        (local, Some(pump))
                    }
                    None => continue,
                }
            }
            None => (stream, None),
        };
        let cx = Context {
            signals: &signals,
            options,
            policy,
            close_in_child: &close,
        };
        waiting::busy(Some(peer));
        let ended = session::run(kind, stream, peer, &cx, &mut input);
        waiting::busy(None);
        if let Some(pump) = pump {
            // A failed pump said why; the server goes on.
            let _ = pump.finish(matches!(ended, Err(Error::Signal(_))));
        }
        match ended {
            Ok(End::PeerClosed | End::Silent) => status!("{peer} closed the connection"),
            Ok(End::StdoutClosed) => return Ok(()),
            Ok(End::Word { word, by }) => {
                let mut said = session::said(word, by, &peer);
                if word == Word::Arret {
                    said.push_str(", server stopping");
                }
                // Stopping with input read and not sent: say so, exit 1.
                let stopping = word == Word::Arret || args.once;
                let held = if stopping { input.held() } else { 0 };
                if held > 0 {
                    report!("{said}{}", messages::unsent(held));
                    return Err(Error::Reported);
                }
                status!("{said}");
                if word == Word::Arret {
                    return Ok(());
                }
            }
            Err(err @ Error::Signal(_)) => return Err(err),
            Err(err) if args.once => return Err(err),
            Err(Error::Reported) => {}
            Err(err) => report!("{err}"),
        }
        if args.once {
            return Ok(());
        }
    }
}

/// Why `chatd` stops while nobody is connected ([`wait_idle`]).
enum Idle {
    /// `arret` was typed; `unsent` other lines typed ahead were kept for
    /// a next client that will not come.
    Arret { unsent: usize },
    /// Ctrl-D was typed on an empty line, after `unsent` lines typed ahead.
    Eof { unsent: usize },
}

impl Idle {
    /// The status line `chatd` prints as it stops: what stopped it, and
    /// the lines typed ahead that no client received (nothing is lost
    /// silently).
    fn message(&self) -> String {
        let (why, unsent) = match *self {
            Idle::Arret { unsent } => ("you said arret", unsent),
            Idle::Eof { unsent } => ("you ended your input (Ctrl-D)", unsent),
        };
        match unsent {
            0 => format!("{why}: server stopping"),
            1 => format!("{why}: server stopping; 1 line typed was not sent"),
            n => format!("{why}: server stopping; {n} lines typed were not sent"),
        }
    }
}

/// `chatd` on a terminal with nobody connected: waits
/// for a client while the line editor takes what is typed. `arret` stops
/// the server at once, Ctrl-D too; any other line stays for the next
/// client, and a status line says so. Returns `None` when a client is
/// waiting in the listening queue (or standard input has no editor: a pipe
/// or a file keeps today's rule, what one session did not send, the next
/// one sends).
///
/// Errors: [`Error::Signal`]; `poll(2)` or reading the terminal failed.
fn wait_idle(
    listener: &std::net::TcpListener,
    signals: &Signals,
    input: &mut Input,
) -> Result<Option<Idle>, Error> {
    use nix::poll::{PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd;
    let Some(editor) = input.editor() else {
        return Ok(None);
    };
    editor.start();
    loop {
        let mut fds = [
            PollFd::new(signals.fd(), PollFlags::POLLIN),
            PollFd::new(listener.as_fd(), PollFlags::POLLIN),
            PollFd::new(crate::pump::stdin(), PollFlags::POLLIN),
        ];
        signals.poll(&mut fds, PollTimeout::NONE)?;
        if fds[2].any() == Some(true) {
            let pumped = editor
                .pump()
                .map_err(|e| Error::sys("read from stdin", e))?;
            let typed: Vec<Option<Word>> = editor
                .typed_ahead()
                .rev()
                .take(pumped.lines)
                .map(crate::words::line_word)
                .collect();
            for word in typed.into_iter().rev() {
                if word == Some(Word::Arret) {
                    // The lines typed ahead stay on the screen in the
                    // order typed, `arret` last (it is not sent either).
                    let unsent = editor.typed_ahead().count() - 1;
                    editor.stop();
                    return Ok(Some(Idle::Arret { unsent }));
                }
                status!("nobody is connected: this line will go to the next client");
            }
            if pumped.eof {
                let unsent = editor.typed_ahead().count();
                editor.stop();
                return Ok(Some(Idle::Eof { unsent }));
            }
        }
        if fds[1].any() == Some(true) {
            return Ok(None);
        }
    }
}

/// The line of clients that connected while a session ran, when a person
/// types at `chatd` (its line editor runs): each is accepted at once and
/// told that it waits and its place ([`session::notice::busy`]), told
/// again when its place moves, and told when its session starts
/// ([`session::notice::start`]); until then nothing is read from it, so
/// its lines wait in its socket, as in the listening queue. A new
/// connection wakes the server by `SIGIO` (`O_ASYNC` on the listening
/// socket while a session runs): it reaches every wait of the session
/// through the signal self-pipe, whose after-drain hook
/// ([`Signals::after_drain`]) accepts the newcomers. At most
/// [`waiting::MAX`] wait in this line; more stay in the kernel's
/// listening queue, untold, and are served after them.
mod waiting {
    use std::cell::RefCell;
    use std::collections::VecDeque;
    use std::io::ErrorKind;
    use std::net::{SocketAddr, TcpListener, TcpStream};
    use std::os::fd::{AsRawFd, RawFd};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    use nix::sys::socket::{MsgFlags, send};

    use crate::access::Access;
    use crate::error::Error;
    use crate::session::notice;
    use crate::signals::Signals;
    use crate::{net, status};

    /// The most clients told that they wait.
    pub const MAX: usize = 64;

    struct Line {
        /// A copy of the listening socket (`dup`), non-blocking while it
        /// is read here.
        listener: TcpListener,
        access: Access,
        /// Set by `SIGIO`.
        arrived: Arc<AtomicBool>,
        /// The clients that wait, in the order they came.
        clients: VecDeque<(TcpStream, SocketAddr)>,
        /// The client of the session under way, if one is.
        busy: Option<SocketAddr>,
    }

    thread_local! {
        /// The line, once [`set_up`] ran (the program has one thread).
        static LINE: RefCell<Option<Line>> = const { RefCell::new(None) };
    }

    /// Sets up the line for `listener`, whose clients pass `access`:
    /// `SIGIO` joins the signals that wake the server, and is sent to it
    /// (`F_SETOWN`). Errors: duplicating the socket or registering the
    /// handler failed.
    pub fn set_up(listener: &TcpListener, access: &Access, signals: &Signals) -> Result<(), Error> {
        let listener = listener
            .try_clone()
            .map_err(|e| Error::io("dup listening socket", e))?;
        let arrived = Arc::new(AtomicBool::new(false));
        signals
            .watch(libc::SIGIO, &arrived)
            .map_err(|e| Error::io("install SIGIO handler", e))?;
        // SAFETY: fcntl F_SETOWN on an open descriptor we own, with our
        // own pid: SIGIO for this socket goes to this process only.
        if unsafe { libc::fcntl(listener.as_raw_fd(), libc::F_SETOWN, libc::getpid()) } != 0 {
            return Err(Error::io("fcntl F_SETOWN", std::io::Error::last_os_error()));
        }
        signals.after_drain(on_signals);
        LINE.with_borrow_mut(|line| {
            *line = Some(Line {
                listener,
                access: access.clone(),
                arrived,
                clients: VecDeque::new(),
                busy: None,
            });
        });
        Ok(())
    }

    /// A session with `client` starts (`Some`) or ended (`None`): while
    /// one runs, new connections raise `SIGIO`, and those already in the
    /// listening queue are taken at once.
    pub fn busy(client: Option<SocketAddr>) {
        LINE.with_borrow_mut(|line| {
            let Some(line) = line else {
                return;
            };
            line.busy = client;
            let fd = &line.listener;
            if let Ok(flags) = fcntl(fd, FcntlArg::F_GETFL) {
                let mut flags = OFlag::from_bits_truncate(flags);
                flags.set(OFlag::O_ASYNC, client.is_some());
                let _ = fcntl(fd, FcntlArg::F_SETFL(flags));
            }
            if client.is_some() {
                line.take_arrivals();
            }
        });
    }

    /// The next client that waited, told that its session starts; the
    /// others are told their new place. `None` when none waits.
    pub fn next() -> Option<(TcpStream, SocketAddr)> {
        LINE.with_borrow_mut(|line| {
            let line = line.as_mut()?;
            let (stream, peer) = line.clients.pop_front()?;
            tell(&stream, notice::start());
            for (ahead, (other, _)) in line.clients.iter().enumerate() {
                tell(other, &notice::busy(ahead));
            }
            Some((stream, peer))
        })
    }

    /// The descriptors of the line (the listening socket's copy and the
    /// clients that wait), for the duplex child to close.
    pub fn descriptors() -> Vec<RawFd> {
        LINE.with_borrow(|line| {
            line.iter()
                .flat_map(|line| {
                    std::iter::once(line.listener.as_raw_fd())
                        .chain(line.clients.iter().map(|(s, _)| s.as_raw_fd()))
                })
                .collect()
        })
    }

    /// After a wake-up of the signal pipe, wherever the server waited
    /// (registered with [`Signals::after_drain`]): takes the clients that
    /// connected, if `SIGIO` said some did.
    fn on_signals() {
        LINE.with_borrow_mut(|line| {
            if let Some(line) = line
                && line.arrived.swap(false, Ordering::Relaxed)
            {
                line.take_arrivals();
            }
        });
    }

    /// Sends a notice without waiting (the socket's buffer is empty but
    /// for earlier notices, far below its size); a client gone is found
    /// when its turn comes.
    fn tell(stream: &TcpStream, line: &[u8]) {
        let _ = send(
            stream.as_raw_fd(),
            line,
            MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL,
        );
    }

    impl Line {
        /// While a session runs: accepts what the listening queue holds,
        /// up to [`MAX`] waiting, and tells each its place.
        fn take_arrivals(&mut self) {
            let Some(busy) = self.busy else {
                return;
            };
            if self.listener.set_nonblocking(true).is_err() {
                return;
            }
            while self.clients.len() < MAX {
                match self.listener.accept() {
                    Ok((stream, peer)) => {
                        let peer = net::canonical(peer);
                        if !self.access.admit(peer) {
                            continue;
                        }
                        tell(&stream, &notice::busy(self.clients.len()));
                        self.clients.push_back((stream, peer));
                        status!(
                            "{peer} waits for the session with {busy} to end ({} waiting)",
                            self.clients.len()
                        );
                    }
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    // Nothing more, or out of descriptors: what is left
                    // stays in the listening queue, served in order later.
                    Err(_) => break,
                }
            }
            let _ = self.listener.set_nonblocking(false);
        }
    }
}

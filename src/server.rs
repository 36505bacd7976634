//! `chatd`: listen, then serve one client after another (the worksheets:
//! "a client must be able to reconnect after the previous one left").

use std::os::fd::AsRawFd;

use crate::access::Access;
use crate::cli::ChatdArgs;
use crate::error::Error;
use crate::session::{self, Context, End, Input, Kind, Options, Policy, lockstep::First};
use crate::signals::Signals;
use crate::tls::identity::{Identity, Role};
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
        Some(match (&args.cert, &args.key) {
            (Some(cert), Some(key)) => Identity::load(cert, key)?,
            _ => Identity::load_or_create(Role::Server)?,
        })
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
        return crate::broker::run(listener, &signals, &args.broker(), access, tls);
    }
    if let Some(service) = args.service() {
        return crate::service::run(listener, &signals, &service, access, tls);
    }
    let _restore = crate::terminal::setup(args.common.raw, &messages::prompt(), &signals);
    let options = Options::new(args.common.raw, args.common.crlf);
    let kind = Kind::new(
        args.common.alternating,
        First::Listen.swapped_if(args.speak_first),
    );
    // Standard input outlives sessions: what one did not send, the next does.
    let mut input = Input::new(options);
    let policy = Policy::new(args.common.recv_only, args.once, args.idle_timeout);
    let close = [listener.as_raw_fd()];
    loop {
        if !args.common.recv_only
            && let Some(stop) = wait_idle(&listener, &signals, &mut input)?
        {
            status!("{}", stop.message());
            if matches!(stop, Idle::Arret { unsent } | Idle::Eof { unsent } if unsent > 0) {
                return Err(Error::Reported);
            }
            return Ok(());
        }
        let (stream, peer) = net::accept(&listener, &signals)?;
        let peer = net::canonical(peer);
        if !access.admit(peer) {
            continue;
        }
        status!("connection from {peer}");
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
        let ended = session::run(kind, stream, peer, &cx, &mut input);
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

/// `chatd` on a terminal with nobody connected (issue 13 point 9): waits
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

//! `chat`: connect, then run one session.

use crate::cli::ChatArgs;
use crate::error::Error;
use crate::session::{self, Context, End, Input, Kind, Options, Policy, lockstep::First};
use crate::signals::Signals;
use crate::tls::identity::Role;
use crate::tls::known_hosts::Trust;
use crate::{messages, net, pump, report, status};

/// What `--tls`, `--cert`/`--key`, `--pin`, `--accept-new` and
/// `--insecure` make: the client's identity (read or made now) and how
/// the server is trusted.
///
/// Errors: the identity's files cannot be read, made, or are unsafe; no
/// configuration directory.
fn client_tls(args: &ChatArgs) -> Result<crate::tls::client::ClientTls, Error> {
    let identity = args.identity.load(Role::Client)?;
    let trust = match args.pin {
        Some(pin) => Trust::Pin(pin),
        None if args.insecure => Trust::Insecure,
        None => Trust::FirstUse {
            accept_new: args.accept_new,
        },
    };
    Ok(crate::tls::client::ClientTls {
        identity,
        trust,
        known_hosts: crate::tls::known_hosts::path()?,
        timeout: args.wait.unwrap_or(crate::tls::config::HANDSHAKE_TIMEOUT),
    })
}

/// Writes `text` on standard output (`--print-cert`). A closed pipe is a
/// quiet end, as elsewhere.
pub fn print(text: &str) -> Result<(), Error> {
    match pump::write_all(pump::stdout(), text.as_bytes()) {
        Ok(()) | Err(nix::errno::Errno::EPIPE) => Ok(()),
        Err(e) => Err(Error::sys("write to standard output", e)),
    }
}

/// Runs `chat` with `args`: one session with the server.
///
/// Errors: the connection failed (unknown host, refused after `--retry`),
/// the session failed, or a terminating signal arrived ([`Error::Signal`]).
pub fn run(args: &ChatArgs) -> Result<(), Error> {
    // With --tls, the identity is read (or made) before anything else: a
    // bad key file fails before connecting.
    let tls = if args.tls {
        Some(client_tls(args)?)
    } else {
        None
    };
    if let Some(tls) = &tls
        && args.print_cert
    {
        return print(&tls.identity.pem());
    }
    let signals = Signals::install().map_err(|e| Error::io("install signal handlers", e))?;
    crate::fork::prepare();
    // A person at a terminal: the line editor, and the terminal restored
    // on every way out (`stty -g` the same after as before). With --tls,
    // after the handshake: the first-contact question is answered in the
    // terminal's usual mode.
    let mut restore = if tls.is_none() {
        crate::terminal::setup(args.common.raw, &messages::prompt(), &signals)
    } else {
        None
    };
    crate::editor::history::set_up("history", !args.common.no_history, |line| status!("{line}"));
    let stream = net::connect(&args.host, args.port, &args.dial(), &signals)?;
    // A server that vanishes is noticed within about 2 minutes.
    if let Err(err) = net::keepalive(&stream) {
        report!("{err}");
    }
    let peer = stream
        .peer_addr()
        .map(net::canonical)
        .map_err(|e| Error::io("getpeername", e))?;
    match stream.local_addr() {
        Ok(local) if messages::verbose() => {
            status!("connected to {peer} from {local}");
        }
        _ => status!("connected to {peer}"),
    }
    // --tls: the handshake and the trust decision, then the pump owns the
    // connection and the session runs on its end of a socket pair.
    let (stream, pump) = match &tls {
        Some(tls) => {
            let conn =
                crate::tls::client::connect(tls, &args.host, args.port, &stream, peer, &signals)?;
            let (local, pump) = crate::tls::pump::spawn(conn, stream, peer, &signals, &[])?;
            restore = crate::terminal::setup(args.common.raw, &messages::prompt(), &signals);
            (local, Some(pump))
        }
        None => (stream, None),
    };
    if let Some(name) = &args.name {
        // In a `chatd --broker` room, take the name at once, before anything
        // typed, so that the room shows the first line under it (the name
        // was checked when the command was parsed).
        pump::write_all(&stream, format!("/nick {name}\n").as_bytes())
            .map_err(|e| Error::sys("send /nick", e))?;
    }
    let mut options = Options::new(args.common.raw, args.common.crlf);
    // A busy chatd's notices become status lines, never data.
    options.notices = !args.common.raw;
    let kind = Kind::new(
        args.common.alternating,
        First::Speak.swapped_if(args.listen_first),
    );
    let mut input = Input::new(options);
    let cx = Context {
        signals: &signals,
        options,
        policy: Policy::new(args.common.recv_only, true, args.idle_timeout),
        close_in_child: &[],
    };
    let end = session::run(kind, stream, peer, &cx, &mut input);
    // The editor's line is finished before the last status line.
    drop(restore);
    let pumped = match pump {
        Some(pump) => pump.finish(matches!(end, Err(Error::Signal(_)))),
        None => Ok(()),
    };
    let end = end?;
    // The TLS connection failed (the pump said how): exit 1.
    pumped?;
    // Bytes read from standard input and not sent (a pipe read past a
    // word's line, or the peer's word ending the session): said, exit 1.
    let held = input.held();
    if held > 0 && end != End::StdoutClosed {
        let why = match end {
            End::Word { word, by } => session::said(word, by, &"peer"),
            _ => format!("{peer} closed the connection"),
        };
        report!("{why}{}", messages::unsent(held));
        return Err(Error::Reported);
    }
    match end {
        // Say what happened: who ended first, and whether it was you.
        End::PeerClosed if input.ended() && input.terminal() => {
            status!("you ended your input (Ctrl-D); {peer} closed too")
        }
        End::PeerClosed if input.ended() => status!("your input ended; {peer} closed too"),
        End::PeerClosed => status!("{peer} closed the connection"),
        End::Silent => {
            status!("{peer} closed the connection without a word (not allowed from this address?)")
        }
        End::StdoutClosed => {}
        End::Word { word, by } => status!("{}", session::said(word, by, &"peer")),
    }
    Ok(())
}

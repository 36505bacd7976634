//! `chat --tls`: the handshake with the server, then the trust decision
//! (trust on first use, OpenSSH's `sshconnect.c` rules), before a byte of
//! input is sent.
//!
//! - a server the known hosts file knows with the fingerprint it shows:
//!   go on (a status line names the file's line);
//! - not known, on a terminal: its fingerprint is shown and the person is
//!   asked; `yes` saves it;
//! - not known, in a script: refused, unless `--pin` names it or
//!   `--accept-new` saves it;
//! - known with another fingerprint: refused, both fingerprints shown and
//!   the line of the file to remove (only `--pin` or `--insecure` pass);
//! - `--insecure`: go on, and say on every connection that nobody was
//!   verified.

use std::io::{BufRead, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::Duration;

use rustls::{ClientConnection, Connection};

use crate::error::Error;
use crate::signals::Signals;
use crate::tls::config::{client_config, server_name};
use crate::tls::handshake::{Failure, handshake};
use crate::tls::known_hosts::{self, HostPort, KnownHosts, Refusal, Trust, Verdict, decide};
use crate::tls::{Fingerprint, Identity};
use crate::{report, status};

/// What `chat --tls` was told: its own identity, how to trust the server,
/// and where the known hosts are.
#[derive(Debug)]
pub struct ClientTls {
    /// The certificate shown when the server asks (`--cert`/`--key`, or
    /// the one kept under the configuration directory).
    pub identity: Identity,
    /// `--pin`, `--insecure`, `--accept-new`, or trust on first use.
    pub trust: Trust,
    /// The known hosts file.
    pub known_hosts: PathBuf,
    /// How long the handshake may take.
    pub timeout: Duration,
}

/// The handshake with the server `host` (as given on the command line)
/// port `port`, connected at `peer` over `tcp`, then the trust decision.
/// Returns the established connection: nothing was sent on it yet.
///
/// Errors: one line each: the server speaks plain text, closed, did not
/// answer within the timeout, refused our handshake or sent a certificate
/// that is malformed or expired; it is not the pinned server; its
/// fingerprint changed; it is unknown and nobody could be asked, or the
/// person said no; the known hosts file cannot be read or written.
/// [`Error::Signal`] for a terminating signal.
pub fn connect(
    tls: &ClientTls,
    host: &str,
    port: u16,
    tcp: &TcpStream,
    peer: SocketAddr,
    signals: &Signals,
) -> Result<Connection, Error> {
    let pin = match tls.trust {
        Trust::Pin(pin) => Some(pin),
        _ => None,
    };
    let (config, seen) = client_config(&tls.identity, pin)?;
    let client = ClientConnection::new(config, server_name(host))
        .map_err(|e| Error::Msg(format!("TLS set-up: {e}")))?;
    let mut conn = Connection::Client(client);
    let server = HostPort::new(host, port);
    let result = handshake(&mut conn, tcp, tls.timeout, Some(signals));
    let seen_fp = *seen
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    match result {
        Ok(()) => {}
        Err(Failure::Signal(n)) => return Err(Error::Signal(n)),
        Err(failure) => {
            let refused_pin = matches!(
                failure,
                Failure::Tls(rustls::Error::InvalidCertificate(
                    rustls::CertificateError::ApplicationVerificationFailure,
                ))
            );
            if let (true, Some(pinned), Some(seen)) = (refused_pin, pin, seen_fp) {
                return Err(Error::Msg(Refusal::PinMismatch { pinned }.message(
                    &server,
                    &seen,
                    &tls.known_hosts,
                )));
            }
            return Err(Error::Msg(failed(&failure, peer)));
        }
    }
    let Some(seen) = peer_fingerprint(&conn) else {
        return Err(Error::Msg(format!(
            "TLS handshake with {peer}: the server showed no certificate"
        )));
    };
    let version = version(&conn);
    let known = KnownHosts::read(&tls.known_hosts)?;
    let check = known.check(&server, &seen);
    let terminal = nix::unistd::isatty(crate::pump::stdin()).unwrap_or(false)
        && nix::unistd::isatty(std::io::stderr()).unwrap_or(false);
    let file = tls.known_hosts.display();
    match decide(tls.trust, check, &seen, terminal) {
        Verdict::Trusted => match check {
            known_hosts::Check::Known { line } if pin.is_none() => {
                status!("{version} with {server}, fingerprint {seen} (known: {file}:{line})");
            }
            _ => status!("{version} with {server}, fingerprint {seen} (pinned)"),
        },
        Verdict::Unverified => report!(
            "WARNING: --insecure: {server} was not verified ({version}, fingerprint {seen}): \
             anyone on the way may be reading or changing what you send"
        ),
        Verdict::Save => {
            let line = known_hosts::add(&tls.known_hosts, &server, &seen)?;
            status!(
                "{version} with {server}, fingerprint {seen}: not known before, \
                 saved ({file}:{line}) (--accept-new)"
            );
        }
        Verdict::Ask => {
            if !ask(&server, &seen, &tls.known_hosts)? {
                close_notify(&mut conn, tcp);
                return Err(Error::Msg(format!(
                    "{server} not trusted: nothing was sent"
                )));
            }
            let line = known_hosts::add(&tls.known_hosts, &server, &seen)?;
            status!("{server} saved in {file}:{line}; {version}");
        }
        Verdict::Refuse(refusal) => {
            close_notify(&mut conn, tcp);
            return Err(Error::Msg(refusal.message(
                &server,
                &seen,
                &tls.known_hosts,
            )));
        }
    }
    Ok(conn)
}

/// Ends a connection we refuse with close_notify (best effort): the
/// server sees an orderly end, not a reset.
fn close_notify(conn: &mut Connection, tcp: &TcpStream) {
    conn.send_close_notify();
    let mut stream = tcp;
    while conn.wants_write() {
        if conn.write_tls(&mut stream).is_err() {
            break;
        }
    }
}

/// The first-contact question, on standard error, answered on standard
/// input (a terminal): `yes` (or `y`) trusts; anything else, or end of
/// file, does not. As OpenSSH's "Are you sure you want to continue
/// connecting (yes/no)?".
fn ask(server: &HostPort, seen: &Fingerprint, file: &std::path::Path) -> Result<bool, Error> {
    let program = crate::messages::program();
    let question = format!(
        "{program}: {server} is not known yet (not in {file}).\n\
         {program}: its TLS fingerprint is {seen}\n\
         {program}: check it with the server's owner (chatd prints it as it starts).\n\
         {program}: trust it and remember it? (yes/no) ",
        file = file.display()
    );
    let _ = std::io::stderr().write_all(question.as_bytes());
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| Error::io("read the answer", e))?;
    let answer = answer.trim();
    Ok(answer.eq_ignore_ascii_case("yes") || answer.eq_ignore_ascii_case("y"))
}

/// The fingerprint of the certificate the peer showed, if any.
pub fn peer_fingerprint(conn: &Connection) -> Option<Fingerprint> {
    conn.peer_certificates()
        .and_then(|chain| chain.first())
        .map(|der| Fingerprint::of(der))
}

/// `TLS 1.3` or `TLS 1.2`, the version the handshake chose.
pub fn version(conn: &Connection) -> &'static str {
    match conn.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLS 1.2",
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLS 1.3",
        _ => "TLS",
    }
}

/// The line for a handshake with `peer` that failed (client side).
fn failed(failure: &Failure, peer: SocketAddr) -> String {
    match failure {
        Failure::PlainText(bytes) => format!(
            "{peer} does not speak TLS: it sent plain text (\"{}\"); nothing was sent",
            crate::tls::handshake::shown(bytes)
        ),
        Failure::Timeout(t) => format!(
            "no TLS handshake from {peer} within {} s: not a TLS server, or a busy one \
             (a 1-to-1 chatd serves one client at a time); nothing was sent",
            t.as_secs_f64()
        ),
        Failure::Closed => format!(
            "{peer} closed the connection during the TLS handshake (is it a TLS server?); \
             nothing was sent"
        ),
        other => format!("TLS handshake with {peer} failed: {other}; nothing was sent"),
    }
}

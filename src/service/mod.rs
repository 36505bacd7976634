//! Fork-per-connection services of `chatd`: `--echo` ([`echo`])
//! and `--sum` ([`sum`], wire format in [`wire`]).
//!
//! The classic concurrent server of the Unix books, one process per client:
//!
//! - the server process waits in one `poll(2)` on the signal self-pipe
//!   ([`crate::signals`]), the listening socket and the refused connections
//!   it is still closing; it accepts until `EAGAIN`, and forks one child
//!   per connection, then closes its own copy of the connection;
//! - the child is set up by [`crate::fork`] (default signal actions; should
//!   the server die first, `PR_SET_PDEATHSIG` makes it say so in one line
//!   and leave), closes what it does not use (the listening socket, the
//!   signal pipe, standard input, the refused connections), serves its one
//!   client with plain blocking calls, and leaves through `_exit`;
//! - every child's end raises `SIGCHLD`, which writes to the self-pipe and
//!   wakes the `poll`; after every wake the server reaps with
//!   `waitpid(WNOHANG)` until `StillAlive`, so no zombie is left;
//! - at most `--max-clients` children live at once: one more client gets
//!   the one line `chatd: too many clients (N), try again later` and is
//!   closed, cleanly (see [`LINGER`]);
//! - SIGINT, SIGTERM or SIGHUP: the server sends `SIGTERM` to every child,
//!   reaps them and ends with status 128+N ([`Error::Signal`]);
//! - with `-1`, the server accepts one connection only and ends when its
//!   child does (status 0, or 1 if that child failed).
//!
//! Of the other options, `--raw` turns off the echo words (a pure echo, as
//! RFC 862's), `-q` silences the status lines; `--crlf` is refused with
//! `--echo` and `--sum` (a usage error, exit status 2: the services send no
//! lines of their own but the refusal, so it could only be ignored).

pub(crate) mod echo;
pub(crate) mod sum;
pub mod wire;

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{Signal, kill};
use nix::sys::socket::{MsgFlags, Shutdown, send, shutdown};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{Pid, getpid};

use crate::access::Access;
use crate::error::Error;
use crate::fork::{self, Forked};
use crate::net::{Accepting, Next};
use crate::pump::{self, Drained, stdout};
use crate::signals::{self, Signals};
use crate::{report, status};

/// How long a connection being closed by us is still read (and what it
/// sends discarded) after our last byte and half-close, in seconds: after
/// an echo word, and after a refusal. Closing a socket with unread input
/// makes the kernel send a reset, which can destroy our last line before
/// the client reads it; waiting for the client's own close avoids that.
pub(crate) const LINGER: Duration = Duration::from_secs(2);

/// Most refused connections kept lingering at once ([`LINGER`]); beyond
/// that (a flood), a refused connection is closed at once.
pub(crate) const MAX_LINGERING: usize = 64;

/// Which service [`run`] provides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Service {
    /// `--echo`: every line comes back to its sender ([`echo`]).
    Echo,
    /// `--sum`: the addition service of the Java course ([`sum`]).
    Sum,
}

/// The settings of a service, from `chatd`'s command line (built by
/// `cli`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Config {
    /// `--echo` or `--sum`.
    pub service: Service,
    /// `--max-clients`: at most this many children at once.
    pub max_clients: usize,
    /// Recognise the echo words (not `--raw`).
    pub words: bool,
    /// `-1`: serve one connection, then end with its child.
    pub once: bool,
    /// `--idle-timeout`: a connection from which nothing arrived for this
    /// long is closed.
    pub idle: Option<Duration>,
}

/// Serves `config.service` on `listener`, one forked child per
/// connection, at most `config.max_clients` at once (a client `access`
/// refuses is closed at once, before a byte is sent), until a terminating
/// signal (with `config.once`, until the first connection's child ends).
/// With `tls` (`--tls`), each child does its client's handshake, then
/// serves it through a TLS pump ([`crate::tls::pump`]).
///
/// Errors: [`Error::Signal`] for SIGINT, SIGTERM or SIGHUP (every child is
/// stopped and reaped first); [`Error::Sys`] when `poll` or `accept` fails
/// for a reason that retrying cannot cure; with `-1`, [`Error::Reported`]
/// when the one child failed (it said why). Otherwise a failing connection
/// (a client error, a failed `fork`) is reported on stderr and the server
/// goes on.
pub(crate) fn run(
    listener: TcpListener,
    signals: &Signals,
    config: &Config,
    access: Access,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> Result<(), Error> {
    listener
        .set_nonblocking(true)
        .map_err(|e| Error::io("fcntl O_NONBLOCK on the listening socket", e))?;
    let mut server = Server {
        service: config.service,
        listener,
        signals,
        access,
        max_clients: config.max_clients,
        words: config.words,
        once: config.once,
        idle: config.idle,
        admitted: false,
        failed: false,
        children: HashMap::new(),
        refused: Vec::new(),
        accepting: Accepting::default(),
        tls,
    };
    let result = server.serve();
    server.stop_children();
    result
}

/// A refused connection, half-closed after its refusal line, read and
/// discarded until the client closes or `deadline` passes.
struct Refused {
    stream: TcpStream,
    deadline: Instant,
}

/// The state of the server process.
struct Server<'a> {
    service: Service,
    listener: TcpListener,
    signals: &'a Signals,
    /// `--allow`/`--deny`: checked before anything is sent.
    access: Access,
    max_clients: usize,
    /// Recognise the echo words (not with `--raw`).
    words: bool,
    /// `-1`: one connection only.
    once: bool,
    /// `--idle-timeout`: each child's socket gets it as `SO_RCVTIMEO`.
    idle: Option<std::time::Duration>,
    /// A connection was given to a child.
    admitted: bool,
    /// A child failed (exit status not 0, or killed): the status of `-1`.
    failed: bool,
    /// Live (unreaped) children and the client each serves.
    children: HashMap<Pid, SocketAddr>,
    refused: Vec<Refused>,
    /// Whether `accept` is paused for want of descriptors ([`Accepting`]).
    accepting: Accepting,
    /// `--tls`: each child does the handshake, then serves its client
    /// through a TLS pump ([`crate::tls::pump`]).
    tls: Option<Arc<rustls::ServerConfig>>,
}

impl Server<'_> {
    /// The `poll` loop; returns on error (a signal included), or with `-1`
    /// once the one connection's child has ended.
    fn serve(&mut self) -> Result<(), Error> {
        loop {
            self.reap();
            if self.once && self.admitted && self.children.is_empty() {
                return if self.failed {
                    Err(Error::Reported)
                } else {
                    Ok(())
                };
            }
            let now = Instant::now();
            self.refused.retain(|r| r.deadline > now);
            let open = self.accepting.open(now);
            let deadline = self
                .refused
                .iter()
                .map(|r| r.deadline)
                .chain(self.accepting.until())
                .min();
            let timeout = deadline.map_or(PollTimeout::NONE, |d| {
                signals::timeout(d.saturating_duration_since(now))
            });
            let accepting = open && !(self.once && self.admitted);
            let mut fds = Vec::with_capacity(2 + self.refused.len());
            fds.push(PollFd::new(self.signals.fd(), PollFlags::POLLIN));
            let listen_flags = if accepting {
                PollFlags::POLLIN
            } else {
                PollFlags::empty()
            };
            fds.push(PollFd::new(self.listener.as_fd(), listen_flags));
            for r in &self.refused {
                fds.push(PollFd::new(r.stream.as_fd(), PollFlags::POLLIN));
            }
            self.signals.poll(&mut fds, timeout)?;
            let ready: Vec<bool> = fds.iter().map(|fd| fd.any() == Some(true)).collect();
            drop(fds);
            self.discard_refused_input(&ready[2..]);
            if accepting && ready[1] {
                self.accept_all()?;
            }
        }
    }

    /// Accepts every pending connection (the listening socket is
    /// non-blocking), serving or refusing each.
    fn accept_all(&mut self) -> Result<(), Error> {
        loop {
            if self.once && self.admitted {
                return Ok(());
            }
            let (stream, peer) = match self.listener.accept() {
                Ok(pair) => {
                    self.accepting.accepted();
                    pair
                }
                Err(e) => match self.accepting.failed(&e)? {
                    Next::Again => continue,
                    Next::Wait | Next::Paused(_) => return Ok(()),
                },
            };
            let peer = crate::net::canonical(peer);
            if self.access.admit(peer) {
                self.admit(stream, peer);
            }
        }
    }

    /// Serves `stream` in a new child, or refuses it when `--max-clients`
    /// children already live (or `fork` fails).
    fn admit(&mut self, stream: TcpStream, peer: SocketAddr) {
        if self.children.len() >= self.max_clients {
            // Children that ended since the last wake do not count.
            self.reap();
        }
        if self.children.len() >= self.max_clients {
            let why = format!("too many clients ({}), try again later", self.max_clients);
            status!("refused {peer}: {why}");
            self.refuse(stream, &why);
            return;
        }
        status!("connection from {peer}");
        let orphan = format!(
            "the server (pid {}) died: connection from {peer} closed",
            getpid()
        );
        match crate::fork::fork(self.signals, &orphan) {
            Ok(Forked::Child) => fork::exit(self.child(stream, peer)),
            Ok(Forked::Parent(child)) => {
                self.children.insert(child, peer);
                self.admitted = true;
                // Dropping `stream` closes the server's copy: the
                // connection now belongs to the child alone.
            }
            Err(e) => {
                report!("{peer}: {e}");
                self.refuse(stream, "cannot serve you now, try again later");
            }
        }
    }

    /// Refuses a connection: sends `chatd: WHY` on one line, half-closes,
    /// and keeps the connection for up to [`LINGER`] (reading and
    /// discarding what the client sends) so that its close does not reset
    /// the line away; at most [`MAX_LINGERING`] at once, beyond which the
    /// connection is closed at once.
    fn refuse(&mut self, stream: TcpStream, why: &str) {
        let line = format!("{}: {why}\n", crate::messages::program());
        let fd = stream.as_raw_fd();
        // A new connection's send buffer is empty: the line fits at once.
        let _ = send(
            fd,
            line.as_bytes(),
            MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL,
        );
        let _ = shutdown(fd, Shutdown::Write);
        if self.refused.len() < MAX_LINGERING && stream.set_nonblocking(true).is_ok() {
            self.refused.push(Refused {
                stream,
                deadline: Instant::now() + LINGER,
            });
        }
    }

    /// Reads (once each, [`pump::drain`]) the refused connections whose
    /// entry in `ready` is true, dropping those that reached end of file or
    /// an error.
    fn discard_refused_input(&mut self, ready: &[bool]) {
        let mut buf = [0u8; 16 * 1024];
        let mut index = 0;
        self.refused.retain(|r| {
            let readable = ready.get(index).copied().unwrap_or(false);
            index += 1;
            if !readable {
                return true;
            }
            // The deadline is now: what is there, without waiting.
            let drained = pump::drain(r.stream.as_fd(), None, Instant::now(), &mut buf, |_| Ok(()));
            drained != Drained::Closed
        });
    }

    /// Reaps every child that has ended (`waitpid(WNOHANG)` until
    /// `StillAlive`), noting for `-1` whether one failed (a status other
    /// than 0, or a signal). A child killed by a signal is reported here,
    /// naming its client: it could not say so itself, and only something
    /// outside sends one (the server's own `SIGTERM`s are reaped by
    /// [`Server::stop_children`]). A child that exited wrote its own status
    /// or error line ([`echo::serve`], [`sum::serve`]), except one that
    /// left at once, in [`crate::fork`], because the server was stopping.
    fn reap(&mut self) {
        loop {
            match waitpid(None::<Pid>, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return,
                Err(Errno::EINTR) => {}
                Ok(WaitStatus::Exited(pid, code)) => {
                    self.children.remove(&pid);
                    self.failed |= code != 0;
                }
                Ok(WaitStatus::Signaled(pid, sig, _)) => {
                    self.failed = true;
                    if let Some(peer) = self.children.remove(&pid) {
                        report!(
                            "the process serving {peer} was killed by signal {} ({})",
                            sig as i32,
                            sig.as_str()
                        );
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    report!("waitpid: {}", e.desc());
                    return;
                }
            }
        }
    }

    /// Sends `SIGTERM` to every live child and reaps them all.
    fn stop_children(&mut self) {
        for pid in self.children.keys() {
            let _ = kill(*pid, Signal::SIGTERM);
        }
        for (pid, _) in self.children.drain() {
            while let Err(Errno::EINTR) = waitpid(pid, None) {}
        }
    }

    /// The child: serves `stream` and returns its exit status (0 when the
    /// connection ended normally, 1 after a failure it reported).
    fn child(&self, stream: TcpStream, peer: SocketAddr) -> i32 {
        // --tls: the handshake, then a pump process owns the connection
        // and the service runs on its end of a socket pair. The pump is
        // forked before this child closes the server's descriptors, so
        // that it closes the same ones.
        let (stream, pump) = match &self.tls {
            Some(config) => {
                let Ok(Some((conn, _))) = crate::tls::server::accept(config, &stream, peer, None)
                else {
                    return 1;
                };
                // This child forks again: its own /proc/self/task.
                crate::fork::prepare_again();
                let mut close: Vec<i32> = vec![self.listener.as_raw_fd()];
                close.extend(self.refused.iter().map(|r| r.stream.as_raw_fd()));
                match crate::tls::pump::spawn(conn, stream, peer, self.signals, &close) {
                    Ok((local, pump)) => (local, Some(pump)),
                    Err(e) => {
                        report!("{peer}: {e}");
                        return 1;
                    }
                }
            }
            None => (stream, None),
        };
        // `--idle-timeout`: a read that waits that long fails with EAGAIN
        // ([`read_client`]).
        if let Some(idle) = self.idle {
            let tv = nix::sys::time::TimeVal::new(
                i64::try_from(idle.as_secs()).unwrap_or(i64::MAX),
                i64::from(idle.subsec_micros()),
            );
            if let Err(e) = nix::sys::socket::setsockopt(
                &stream,
                nix::sys::socket::sockopt::ReceiveTimeout,
                &tv,
            ) {
                report!("setsockopt SO_RCVTIMEO: {}", e.desc());
                return 1;
            }
        }
        // SAFETY: these descriptors belong to the server's objects, which
        // the child never uses again (it leaves through _exit): closing its
        // copies leaves the listening port to the server alone, and lets a
        // refused connection close when the server closes it.
        unsafe {
            libc::close(libc::STDIN_FILENO);
            libc::close(self.signals.fd().as_raw_fd());
            libc::close(self.listener.as_raw_fd());
            for r in &self.refused {
                libc::close(r.stream.as_raw_fd());
            }
        }
        let served = match self.service {
            Service::Echo => echo::serve(&stream, peer, self.words),
            Service::Sum => sum::serve(&stream, peer, stdout()),
        };
        drop(stream);
        let pumped = pump.map_or(Ok(()), |pump| pump.finish(false));
        i32::from(!served || pumped.is_err())
    }
}

/// Reads from a client's socket (blocking, [`crate::pump::read`]).
/// Errors: `read: REASON`; when the socket's `SO_RCVTIMEO` (set from
/// `--idle-timeout`) ran out, `nothing received for the --idle-timeout:
/// connection closed`.
pub(crate) fn read_client(sock: BorrowedFd<'_>, buf: &mut [u8]) -> Result<usize, Error> {
    crate::pump::read(sock, buf).map_err(|e| match e {
        Errno::EAGAIN => {
            Error::Msg("nothing received for the --idle-timeout: connection closed".to_owned())
        }
        e => Error::sys("read", e),
    })
}

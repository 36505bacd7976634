//! The TLS pump: one process owns the TCP socket and the TLS state, and
//! copies between them and one end of a `socketpair(2)`; the session
//! (the worksheet's fork: the parent copies standard input to the
//! connection, the child copies the connection to standard output) works
//! on the other end exactly as on a TCP socket.
//!
//! One TLS connection has one state (keys, sequence numbers) that two
//! processes cannot both own, so the session's two processes cannot each
//! hold a copy of it; and kernel TLS (`setsockopt(TCP_ULP, "tls")`), which
//! would let them, is not available on every kernel. The pump keeps the
//! session unchanged at the price of one more copy of each byte through
//! the socket pair.
//!
//! # The loop
//!
//! Driven by `poll(2)` the way rustls's `tlsclient-mio` and
//! `tlsserver-mio` examples drive a connection: `read_tls`, then
//! `process_new_packets`, then the plaintext from `reader()`; plaintext
//! into `writer()`, then `write_tls` while `wants_write`. Each direction is
//! bounded: the TCP socket is read only while the plaintext already
//! decrypted has been written to the session, and the session's end only
//! while what was encrypted has been sent (backpressure both ways, as a
//! plain TCP socket gives it).
//!
//! # Ends (half-close maps to close_notify, RFC 8446 §6.1)
//!
//! - The session half-closes (`shutdown(SHUT_WR)`: end of file on its end
//!   of the pair): the pump sends close_notify, then `shutdown(SHUT_WR)` on
//!   the TCP socket (a peer that ignores close_notify sees end of file);
//!   the other direction goes on.
//! - close_notify from the peer: after the last plaintext, the pump
//!   half-closes the pair toward the session (`shutdown(SHUT_WR)`): the
//!   session sees end of file, as after a TCP FIN.
//! - A peer that closes TCP without close_notify (`ncat --ssl` never sends
//!   one): an ordinary end, the same half-close toward the session;
//!   [`Ended::truncated`] says it, for `-v`. (What the peer sent before is
//!   all authenticated; only a truncation attack could hide in the
//!   missing close_notify, and a chat session has no length to lose.)
//! - The session closes its end entirely (`POLLHUP`): the pump sends
//!   close_notify, gives what it holds [`LINGER`] to leave, and closes the
//!   TCP socket.
//! - The peer resets the connection or sends a fatal alert: the pump closes
//!   its end of the pair at once; with data unread in it the session reads
//!   `ECONNRESET` (AF_UNIX does that), otherwise end of file.
//!
//! A TLS 1.3 KeyUpdate from the peer (`openssl s_client`: the line `K`)
//! is answered by rustls inside `process_new_packets`; the pump only sends
//! what rustls then wants to send.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{Signal, kill};
use nix::sys::socket::{Shutdown, shutdown};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{Pid, getpid};
use rustls::Connection;

use crate::error::Error;
use crate::fork::Forked;
use crate::signals::Signals;
use crate::tls::Fd;

/// How much plaintext the pump holds in each direction, in bytes: one
/// read of the session's end, and what was decrypted and not yet written
/// to it. Also rustls's limit on encrypted bytes waiting for the socket.
pub const BUF: usize = 256 * 1024;

/// How long, in seconds, the pump lets what it still holds leave after the
/// session has closed its end entirely (the session's
/// [`crate::session::WORD_LINGER`] for the same reason).
pub const LINGER: Duration = Duration::from_secs(2);

/// How the pump ended ([`run`]), for the status lines of its owner.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Ended {
    /// Plaintext bytes copied from the session to the peer.
    pub sent: u64,
    /// Plaintext bytes copied from the peer to the session.
    pub received: u64,
    /// The peer's direction ended by a TCP end of file without
    /// close_notify (ncat does that): still an ordinary end.
    pub truncated: bool,
    /// The peer's close_notify arrived.
    pub close_notify: bool,
}

/// Why the pump stopped early ([`run`]).
#[derive(Debug)]
pub enum Failure {
    /// A fatal TLS error: an alert from the peer, or a record that does
    /// not decrypt or parse.
    Tls(rustls::Error),
    /// A system call on the TCP socket failed (`ECONNRESET` for a reset),
    /// naming the operation.
    Tcp(&'static str, Errno),
    /// A system call on the session's end of the pair failed.
    Local(&'static str, Errno),
    /// Sending to the peer failed (`EPIPE`, `ECONNRESET` for a reset)
    /// with this many bytes from the session not sent.
    Lost(Errno, u64),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Tls(e) => write!(f, "TLS: {e}"),
            Failure::Tcp(what, errno) => write!(f, "{what}: {}", errno.desc()),
            Failure::Local(what, errno) => write!(f, "{what} (session): {}", errno.desc()),
            Failure::Lost(errno, bytes) => {
                write!(f, "send: {}: {bytes} bytes not delivered", errno.desc())
            }
        }
    }
}

/// The errno of an `io::Error` from [`Fd`] (`EIO` if it has none).
fn errno(e: &io::Error) -> Errno {
    crate::error::errno_of(e)
}

/// A buffer of [`BUF`] bytes, allocated on first use: the bytes at
/// `at..end` wait to be written. Reads go straight into its free space
/// ([`Pending::space`]), so that a byte is copied once on its way through
/// the pump, not once into a scratch buffer and again into this one.
#[derive(Default)]
struct Pending {
    bytes: Vec<u8>,
    at: usize,
    end: usize,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.at == self.end
    }

    /// Whether no byte more fits (the free space is empty).
    fn is_full(&self) -> bool {
        self.end == BUF
    }

    fn rest(&self) -> &[u8] {
        &self.bytes[self.at..self.end]
    }

    /// The free space after the waiting bytes, for a read; [`Pending::fill`]
    /// then counts what the read put there.
    fn space(&mut self) -> &mut [u8] {
        if self.bytes.is_empty() {
            self.bytes = vec![0; BUF];
        }
        &mut self.bytes[self.end..]
    }

    fn fill(&mut self, n: usize) {
        self.end += n;
    }

    fn consume(&mut self, n: usize) {
        self.at += n;
        if self.is_empty() {
            self.clear();
        }
    }

    /// Forgets the waiting bytes.
    fn clear(&mut self) {
        self.at = 0;
        self.end = 0;
    }
}

/// Runs the pump until both directions have ended, or the session has
/// closed its end and the pump's bytes have left (or [`LINGER`] passed),
/// or a failure. `tcp` is the connected socket, `local` the pump's end of
/// the socket pair; both are made non-blocking here. `conn` has completed
/// its handshake (or is completing it: the loop finishes it too).
///
/// Returns the counts and how the peer's direction ended. Errors: a
/// [`Failure`]; the pump's end of the pair is then to be closed at once
/// (dropping it does), which the session sees as a reset or an end of
/// file.
pub fn run(
    conn: &mut Connection,
    tcp: BorrowedFd<'_>,
    local: BorrowedFd<'_>,
) -> Result<Ended, Failure> {
    crate::zerocopy::set_nonblocking(tcp).map_err(|e| Failure::Tcp("fcntl", e))?;
    // Records leave whole, one write each: Nagle's algorithm would only
    // delay a short line (a lockstep turn) behind the peer's delayed ACK.
    let _ = nix::sys::socket::setsockopt(&tcp, nix::sys::socket::sockopt::TcpNoDelay, &true);
    crate::zerocopy::set_nonblocking(local).map_err(|e| Failure::Local("fcntl", e))?;
    conn.set_buffer_limit(Some(BUF));
    let mut ended = Ended::default();
    let mut to_local = Pending::default();
    let mut from_local = Pending::default();
    // Our direction: the session's end of file seen, close_notify queued,
    // the TCP socket half-closed.
    let mut local_eof = false;
    let mut notified = false;
    let mut tcp_shut = false;
    // Their direction: the peer's end (close_notify or TCP end of file)
    // seen; the pair half-closed toward the session.
    let mut peer_done = false;
    let mut local_shut = false;
    // Plaintext bytes taken from the session and not yet all sent as
    // records (0 once rustls holds nothing for the socket).
    let mut unsent: u64 = 0;
    // Sending failed after everything of the session's was sent (the peer
    // had closed): nothing more is sent.
    let mut tcp_dead = false;
    // The session closed its end entirely (POLLHUP, or EPIPE writing it).
    let mut gone: Option<Instant> = None;
    // Records read from the TCP socket and not yet given to rustls.
    let mut raw = RawIn::default();
    loop {
        // Plaintext the peer sent, toward the session.
        if to_local.is_empty() && !peer_done {
            raw.held = take_plaintext(conn, &mut to_local, &mut ended, &mut peer_done)?;
            if raw.pending() && !raw.held {
                read_records(
                    conn,
                    tcp,
                    &mut raw,
                    &mut to_local,
                    &mut ended,
                    &mut peer_done,
                )?;
            }
        }
        if !to_local.is_empty() && gone.is_none() {
            match Fd(local).write(to_local.rest()) {
                Ok(n) => {
                    ended.received += n as u64;
                    to_local.consume(n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if errno(&e) == Errno::EPIPE => gone = Some(Instant::now()),
                Err(e) => return Err(Failure::Local("write", errno(&e))),
            }
        }
        if gone.is_some() {
            // Nobody reads what the peer sends any more.
            to_local.clear();
        }
        if peer_done && to_local.is_empty() && !local_shut {
            local_shut = true;
            if gone.is_none() {
                let _ = shutdown(local.as_raw_fd(), Shutdown::Write);
            }
        }
        // Plaintext from the session, into TLS records.
        while !from_local.is_empty() {
            match conn.writer().write(from_local.rest()) {
                Ok(0) => break,
                Ok(n) => {
                    ended.sent += n as u64;
                    unsent += n as u64;
                    from_local.consume(n);
                }
                Err(e) => return Err(Failure::Local("write to TLS", errno(&e))),
            }
        }
        if (local_eof || gone.is_some()) && from_local.is_empty() && !notified {
            conn.send_close_notify();
            notified = true;
        }
        // Records toward the peer.
        while conn.wants_write() && !tcp_dead {
            match conn.write_tls(&mut Fd(tcp)) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                // The peer closed entirely while only our close_notify
                // (or a KeyUpdate answer) was left to send: nothing of
                // the session's was lost, an ordinary end.
                Err(e) if unsent == 0 && matches!(errno(&e), Errno::EPIPE | Errno::ECONNRESET) => {
                    tcp_shut = true;
                    tcp_dead = true;
                    notified = true;
                    local_eof = true;
                }
                Err(e) => return Err(Failure::Lost(errno(&e), unsent)),
            }
        }
        if !conn.wants_write() {
            unsent = 0;
        }
        if notified && !conn.wants_write() && !tcp_shut {
            tcp_shut = true;
            let _ = shutdown(tcp.as_raw_fd(), Shutdown::Write);
        }
        // Both directions over; or the session is gone and what we hold
        // has left, or had its time.
        if tcp_shut && local_shut {
            return Ok(ended);
        }
        if let Some(since) = gone
            && (tcp_shut || since.elapsed() >= LINGER)
        {
            return Ok(ended);
        }
        // What the peer sent and is already here (in rustls, or read and
        // not yet given to it) is moved before waiting: no event would
        // announce it.
        if to_local.is_empty() && !peer_done && (raw.held || raw.pending()) {
            continue;
        }
        // Wait for what can move.
        let read_tcp = !peer_done && to_local.is_empty() && !raw.pending() && !raw.eof;
        let read_local =
            !local_eof && gone.is_none() && from_local.is_empty() && !conn.wants_write();
        let mut tcp_events = PollFlags::empty();
        if read_tcp {
            tcp_events |= PollFlags::POLLIN;
        }
        if conn.wants_write() && !tcp_dead {
            tcp_events |= PollFlags::POLLOUT;
        }
        let mut local_events = PollFlags::empty();
        if read_local {
            local_events |= PollFlags::POLLIN;
        }
        if !to_local.is_empty() {
            local_events |= PollFlags::POLLOUT;
        }
        let timeout = match gone {
            Some(since) => crate::signals::timeout(LINGER.saturating_sub(since.elapsed())),
            None => PollTimeout::NONE,
        };
        let mut fds = [
            PollFd::new(tcp, tcp_events),
            PollFd::new(local, local_events),
        ];
        match poll(&mut fds, timeout) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(Failure::Local("poll", e)),
        }
        let tcp_ready = fds[0].revents().unwrap_or(PollFlags::empty());
        let local_ready = fds[1].revents().unwrap_or(PollFlags::empty());
        if local_ready.contains(PollFlags::POLLHUP) && gone.is_none() {
            // Both of the session's processes closed their end: what it
            // had sent is read first (end of file comes after it).
            if !local_eof {
                local_eof = drain_local(local, &mut from_local)?;
            }
            if local_eof {
                gone = Some(Instant::now());
            }
        }
        if read_local
            && local_ready.intersects(PollFlags::POLLIN | PollFlags::POLLHUP)
            && gone.is_none()
        {
            local_eof = drain_local(local, &mut from_local)?;
        }
        if read_tcp
            && tcp_ready.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR)
        {
            read_records(
                conn,
                tcp,
                &mut raw,
                &mut to_local,
                &mut ended,
                &mut peer_done,
            )?;
        }
    }
}

/// Reads what the session sent into `pending`; returns whether its end of
/// file was reached.
fn drain_local(local: BorrowedFd<'_>, pending: &mut Pending) -> Result<bool, Failure> {
    if !pending.is_empty() {
        return Ok(false);
    }
    match Fd(local).read(pending.space()) {
        Ok(0) => Ok(true),
        Ok(n) => {
            pending.fill(n);
            Ok(false)
        }
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
        // The session closed with our bytes unread in its end.
        Err(e) if errno(&e) == Errno::ECONNRESET => Ok(true),
        Err(e) => Err(Failure::Local("read", errno(&e))),
    }
}

/// Moves the plaintext rustls holds into `to_local` (up to [`BUF`]
/// bytes), noting the peer's end: close_notify, or a TCP end of file
/// without it. Returns whether rustls may still hold plaintext (it stopped
/// because `to_local` is full): the loop must come back for it before it
/// waits, since no event will announce it.
fn take_plaintext(
    conn: &mut Connection,
    to_local: &mut Pending,
    ended: &mut Ended,
    peer_done: &mut bool,
) -> Result<bool, Failure> {
    // Never an empty space: a read into it would return 0, which rustls's
    // reader means as the peer's close_notify.
    while !*peer_done && !to_local.is_full() {
        match conn.reader().read(to_local.space()) {
            Ok(0) => {
                *peer_done = true;
                ended.close_notify = true;
            }
            Ok(n) => to_local.fill(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                *peer_done = true;
                ended.truncated = true;
            }
            Err(e) => return Err(Failure::Tcp("read", errno(&e))),
        }
    }
    Ok(!*peer_done)
}

/// Bytes read from the TCP socket for rustls, which takes them from this
/// buffer: rustls's own `read_tls` on the socket reads 4 KiB at a time
/// when its buffer is empty (a quarter of a million `read(2)` calls a GiB);
/// one read of up to [`BUF`] here, then rustls copies from memory.
#[derive(Default)]
struct RawIn {
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// The socket's end of file was read.
    eof: bool,
    /// ... and given to rustls (an empty read).
    eof_fed: bool,
    /// rustls may hold plaintext that the session's buffer had no room
    /// for ([`take_plaintext`]).
    held: bool,
}

impl RawIn {
    /// Whether bytes, or the end of file, wait to be given to rustls.
    fn pending(&self) -> bool {
        self.start < self.end || (self.eof && !self.eof_fed)
    }
}

/// Reads TLS records from the peer (through `raw`) until the socket has
/// no more, its end of file is given to rustls, or [`BUF`] bytes of
/// plaintext wait in `to_local`; each batch is processed (this answers a
/// KeyUpdate, and sends the alert of a fatal error) and its plaintext moved
/// to `to_local`.
fn read_records(
    conn: &mut Connection,
    tcp: BorrowedFd<'_>,
    raw: &mut RawIn,
    to_local: &mut Pending,
    ended: &mut Ended,
    peer_done: &mut bool,
) -> Result<(), Failure> {
    while !*peer_done && !to_local.is_full() {
        if !raw.pending() {
            if raw.buf.is_empty() {
                raw.buf = vec![0; BUF];
            }
            match Fd(tcp).read(&mut raw.buf) {
                Ok(0) => raw.eof = true,
                Ok(n) => (raw.start, raw.end) = (0, n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(Failure::Tcp("read", errno(&e))),
            }
        }
        if raw.start < raw.end {
            let mut rest = &raw.buf[raw.start..raw.end];
            match conn.read_tls(&mut rest) {
                Ok(n) => raw.start += n,
                // rustls's buffers are full: process what it holds first.
                Err(e) if e.kind() == io::ErrorKind::Other => {}
                Err(e) => return Err(fatal(conn, tcp, rustls::Error::General(e.to_string()))),
            }
        } else if raw.eof && !raw.eof_fed {
            // An empty read: rustls's end of file (close_notify seen or
            // not, `reader()` says which).
            let _ = conn.read_tls(&mut &[][..]);
            raw.eof_fed = true;
        }
        conn.process_new_packets()
            .map_err(|e| fatal(conn, tcp, e))?;
        raw.held = take_plaintext(conn, to_local, ended, peer_done)?;
        if raw.eof_fed {
            return Ok(());
        }
    }
    Ok(())
}

/// A fatal TLS error: the alert rustls queued is sent (best effort, the
/// socket is non-blocking), then the error is returned.
fn fatal(conn: &mut Connection, tcp: BorrowedFd<'_>, err: rustls::Error) -> Failure {
    while conn.wants_write() {
        if conn.write_tls(&mut Fd(tcp)).is_err() {
            break;
        }
    }
    Failure::Tls(err)
}

/// A pump process serving one connection ([`spawn`]); [`Pump::finish`]
/// reaps it.
#[derive(Debug)]
#[must_use = "a pump is reaped with Pump::finish"]
pub struct Pump {
    pid: Pid,
}

/// How much free memory at the top of the heap the pump's allocator
/// keeps instead of giving it back to the kernel, in bytes: 4 MiB.
///
/// rustls allocates each record it encrypts (16 KiB) and frees it once
/// sent. glibc's default trim threshold (128 KiB, `mallopt(3)`) returns
/// the top of the heap after each burst, so the next burst faults every
/// page in again, zeroed: measured with `perf record -e page-faults`, a
/// hundred faults per MiB sent, all under rustls's `encrypt`. The pump
/// holds at most a few times [`BUF`], well under this.
const TRIM_THRESHOLD: libc::c_int = 4 << 20;

/// Sets the pump process's heap trim threshold ([`TRIM_THRESHOLD`]);
/// glibc only (other C libraries keep their own policy).
fn keep_heap() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only changes the allocator's parameters; it is
    // called before this process allocates concurrently (it has one
    // thread).
    unsafe {
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
    }
}

/// Forks the pump process for `conn` (its handshake done) on `tcp`,
/// connected to `peer`, and returns the session's end of the socket pair,
/// as a stream to run the session on, and the pump to reap after it. The
/// parent keeps no copy of the TCP socket: the pump alone owns it (and
/// the TLS state), so that its end is the connection's end.
///
/// The child ([`crate::fork`]'s set-up) closes standard input, the signal
/// pipe and `close_in_child` (the listening socket), puts `/dev/null` on
/// standard output (whoever reads it sees end of file when the session's
/// receiving process ends), runs [`run`] and exits 0, or 1 after writing
/// its failure in one line (`PROGRAM: TLS connection with PEER: …`). With
/// `-v`, a peer that closed without close_notify is mentioned.
///
/// Errors: `socketpair` or `fork` failed ([`Error::Sys`], [`Error::Msg`]).
pub fn spawn(
    mut conn: Connection,
    tcp: TcpStream,
    peer: SocketAddr,
    signals: &Signals,
    close_in_child: &[RawFd],
) -> Result<(TcpStream, Pump), Error> {
    let (session, pump_end) = UnixStream::pair().map_err(|e| Error::io("socketpair", e))?;
    let orphan = format!(
        "the process (pid {}) of the TLS session with {peer} died: connection closed",
        getpid()
    );
    match crate::fork::fork(signals, &orphan)? {
        Forked::Child => {
            // SAFETY: these descriptors belong to the parent's objects,
            // which the child never uses again (it leaves through _exit).
            unsafe {
                libc::close(libc::STDIN_FILENO);
                libc::close(signals.fd().as_raw_fd());
                for fd in close_in_child {
                    libc::close(*fd);
                }
            }
            drop(session);
            if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
                // SAFETY: dup2 onto descriptor 1 replaces it atomically;
                // `null` is ours and closed right after.
                unsafe { libc::dup2(null.as_raw_fd(), libc::STDOUT_FILENO) };
            }
            keep_heap();
            let code = match run(&mut conn, tcp.as_fd(), pump_end.as_fd()) {
                Ok(ended) => {
                    if ended.truncated {
                        crate::detail!("{peer} closed the TLS connection without close_notify");
                    }
                    0
                }
                Err(failure) => {
                    crate::report!("TLS connection with {peer}: {failure}");
                    1
                }
            };
            crate::fork::exit(code)
        }
        Forked::Parent(pid) => {
            drop(pump_end);
            drop(tcp);
            Ok((TcpStream::from(OwnedFd::from(session)), Pump { pid }))
        }
    }
}

impl Pump {
    /// Waits for the pump to end, after the session ended (the session's
    /// end of the pair is closed: the pump finishes within [`LINGER`]).
    /// With `stop` (a terminating signal ends the program), it is sent
    /// `SIGTERM` first.
    ///
    /// Errors: [`Error::Reported`] when the pump failed (it said why);
    /// [`Error::Msg`] when it was killed by a signal we did not send.
    pub fn finish(self, stop: bool) -> Result<(), Error> {
        if stop {
            let _ = kill(self.pid, Signal::SIGTERM);
        }
        loop {
            match waitpid(self.pid, None) {
                Err(Errno::EINTR) => {}
                Ok(WaitStatus::Exited(_, 0)) | Err(_) => return Ok(()),
                Ok(WaitStatus::Exited(..)) => return Err(Error::Reported),
                Ok(WaitStatus::Signaled(_, Signal::SIGTERM, _)) if stop => return Ok(()),
                Ok(WaitStatus::Signaled(_, sig, _)) => {
                    return Err(Error::Msg(format!(
                        "the TLS process (pid {}) was killed by {sig}",
                        self.pid
                    )));
                }
                Ok(_) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::config::{client_config, server_config, server_name, tests::identities};
    use rustls::{ClientConnection, ServerConnection, StreamOwned};
    use std::net::{Shutdown as NetShutdown, TcpListener};
    use std::thread;

    /// A pump serving the server side of a TLS connection in a thread
    /// (tests never fork), and the client side as a rustls stream: returns
    /// (the session's end of the pair, the client stream, the pump's
    /// thread).
    fn served() -> (
        UnixStream,
        StreamOwned<ClientConnection, TcpStream>,
        thread::JoinHandle<Result<Ended, String>>,
    ) {
        let (_dir, server, client) = identities();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (session, pump_end) = UnixStream::pair().unwrap();
        let config = server_config(&server).unwrap();
        let pump = thread::spawn(move || {
            let (tcp, _) = listener.accept().unwrap();
            let mut conn = Connection::Server(ServerConnection::new(config).unwrap());
            let result = run(&mut conn, tcp.as_fd(), pump_end.as_fd()).map_err(|e| e.to_string());
            drop(pump_end);
            result
        });
        let tcp = TcpStream::connect(addr).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let conn = ClientConnection::new(
            client_config(&client, None).unwrap().0,
            server_name("chatd"),
        )
        .unwrap();
        (session, StreamOwned::new(conn, tcp), pump)
    }

    /// Sends what the peer's rustls holds (`StreamOwned::flush` would also
    /// wait to read).
    fn flush(peer: &mut StreamOwned<ClientConnection, TcpStream>) {
        while peer.conn.wants_write() {
            peer.conn.write_tls(&mut peer.sock).unwrap();
        }
    }

    #[test]
    fn bytes_cross_both_ways_and_half_close_is_close_notify() {
        let (session, mut peer, pump) = served();
        // 3 MiB from the session, while the peer sends 1 MiB: both ways at
        // once, each side reading while it writes (as the session's two
        // processes do).
        let up: Vec<u8> = (0..3 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
        let down: Vec<u8> = (0..1024 * 1024u32).map(|i| (i % 241) as u8).collect();
        let writer = {
            let mut session = session.try_clone().unwrap();
            let up = up.clone();
            thread::spawn(move || {
                session.write_all(&up).unwrap();
                session.shutdown(NetShutdown::Write).unwrap();
            })
        };
        let reader = {
            let mut session = session.try_clone().unwrap();
            session
                .set_read_timeout(Some(Duration::from_secs(20)))
                .unwrap();
            thread::spawn(move || {
                let mut got = Vec::new();
                session.read_to_end(&mut got).map(|_| got)
            })
        };
        peer.write_all(&down).unwrap();
        flush(&mut peer);
        let mut got_up = Vec::new();
        // The peer reads to close_notify: a clean end (read returns 0).
        peer.read_to_end(&mut got_up).unwrap();
        assert_eq!(got_up.len(), up.len());
        assert!(got_up == up);
        writer.join().unwrap();
        // The other direction still works after our half-close.
        peer.write_all(b"last line\n").unwrap();
        peer.conn.send_close_notify();
        flush(&mut peer);
        let got_down = reader.join().unwrap().unwrap();
        assert_eq!(got_down.len(), down.len() + 10);
        assert!(got_down[..down.len()] == down[..]);
        assert_eq!(&got_down[down.len()..], b"last line\n");
        let ended = pump.join().unwrap().unwrap();
        assert!(ended.close_notify && !ended.truncated);
        assert_eq!(ended.sent, up.len() as u64);
        assert_eq!(ended.received, down.len() as u64 + 10);
    }

    #[test]
    fn what_the_peer_sent_arrives_although_it_then_waits() {
        // The peer sends much more than the pump holds, then sends nothing
        // and waits for an answer; the session reads late. Everything
        // must still arrive: what is already in rustls (or read from the
        // socket) is moved without waiting for another event.
        let (mut session, mut peer, pump) = served();
        session
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let mut sent: Vec<u8> = (0..3 * 1024 * 1024u32).map(|i| (i % 253) as u8).collect();
        sent.extend_from_slice(b"END\n");
        peer.write_all(&sent).unwrap();
        flush(&mut peer);
        std::thread::sleep(Duration::from_millis(300));
        let mut got = vec![0u8; sent.len()];
        session.read_exact(&mut got).unwrap();
        assert!(got == sent);
        session.write_all(b"ok\n").unwrap();
        let mut answer = [0u8; 3];
        peer.read_exact(&mut answer).unwrap();
        assert_eq!(&answer, b"ok\n");
        drop(session);
        let mut rest = Vec::new();
        peer.read_to_end(&mut rest).unwrap();
        pump.join().unwrap().unwrap();
    }

    #[test]
    fn a_peer_without_close_notify_is_an_ordinary_end() {
        let (mut session, mut peer, pump) = served();
        session
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        peer.write_all(b"hello\n").unwrap();
        flush(&mut peer);
        // TCP FIN without close_notify, as ncat does.
        peer.sock.shutdown(NetShutdown::Write).unwrap();
        let mut got = Vec::new();
        session.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"hello\n");
        session.shutdown(NetShutdown::Write).unwrap();
        let ended = pump.join().unwrap().unwrap();
        assert!(ended.truncated && !ended.close_notify);
        // Our close_notify reached the peer.
        let mut rest = Vec::new();
        peer.read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty());
    }

    #[test]
    fn a_key_update_from_the_peer_is_answered() {
        let (mut session, mut peer, pump) = served();
        session
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        peer.write_all(b"before\n").unwrap();
        flush(&mut peer);
        let mut line = [0u8; 7];
        session.read_exact(&mut line).unwrap();
        assert_eq!(&line, b"before\n");
        // The peer updates its keys and asks us to update ours.
        peer.conn.refresh_traffic_keys().unwrap();
        peer.write_all(b"after\n").unwrap();
        flush(&mut peer);
        let mut line = [0u8; 6];
        session.read_exact(&mut line).unwrap();
        assert_eq!(&line, b"after\n");
        session.write_all(b"reply\n").unwrap();
        let mut reply = [0u8; 6];
        peer.read_exact(&mut reply).unwrap();
        assert_eq!(&reply, b"reply\n");
        drop(session);
        let mut rest = Vec::new();
        peer.read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty());
        pump.join().unwrap().unwrap();
    }

    #[test]
    fn a_session_that_closes_ends_the_pump() {
        let (session, mut peer, pump) = served();
        peer.write_all(b"x").unwrap();
        flush(&mut peer);
        let started = Instant::now();
        drop(session);
        // close_notify arrives: the peer reads a clean end.
        let mut rest = Vec::new();
        peer.read_to_end(&mut rest).unwrap();
        pump.join().unwrap().unwrap();
        assert!(started.elapsed() < LINGER + Duration::from_secs(5));
    }

    #[test]
    fn garbage_from_the_peer_is_a_tls_failure() {
        let (session, peer, pump) = served();
        let (_conn, mut tcp) = (peer.conn, peer.sock);
        tcp.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
        let err = pump.join().unwrap().unwrap_err();
        assert!(err.starts_with("TLS: "), "{err}");
        drop(session);
    }
}

//! Opening connections: the listening socket of `chatd` (worksheet question
//! 1) and the connecting socket of `chat` (question 2).

use std::ffi::{CStr, CString};
use std::net::{
    Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, TcpListener, TcpStream,
};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{
    AddressFamily, Backlog, SockFlag, SockType, SockaddrStorage, bind, connect as sys_connect,
    getsockopt, listen as sys_listen, setsockopt, socket, sockopt,
};

use crate::error::Error;
use crate::signals::Signals;

/// How long a server stops accepting after `accept(2)` ran out of
/// descriptors or memory ([`AcceptFailure::Exhausted`], [`Accepting`]),
/// before it tries again.
pub const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// How long `chat --retry` waits between two rounds of connection attempts.
pub const RETRY_INTERVAL: Duration = Duration::from_millis(100);

/// Opens a listening TCP socket on `addr`, built by hand in the order the
/// worksheet (question 1) asks: `socket(SOCK_CLOEXEC)`, `SO_REUSEADDR` (so a
/// restarted server does not meet "Address already in use" from connections
/// in TIME_WAIT; setting it after `bind` would do nothing), `bind`,
/// `listen(SOMAXCONN)`. Port 0 picks a free port (see `local_addr`).
/// An IPv6 wildcard `::` also accepts IPv4 clients where the system allows
/// it (`net.ipv6.bindv6only=0`, the Linux default).
///
/// Errors: [`Error::Sys`] naming the call, e.g. `bind 0.0.0.0:8080: Address
/// already in use`.
pub fn listen(addr: SocketAddr) -> Result<TcpListener, Error> {
    let fd = socket(
        family(&addr),
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| Error::sys("socket", e))?;
    setsockopt(&fd, sockopt::ReuseAddr, &true)
        .map_err(|e| Error::sys("setsockopt SO_REUSEADDR", e))?;
    bind(fd.as_raw_fd(), &SockaddrStorage::from(addr))
        .map_err(|e| Error::sys(format!("bind {addr}"), e))?;
    sys_listen(&fd, Backlog::MAXCONN).map_err(|e| Error::sys(format!("listen {addr}"), e))?;
    Ok(TcpListener::from(fd))
}

/// Waits for the next client on `listener`, in a `poll` that also watches
/// the signal pipe, so Ctrl-C stops an idle server at once. Returns the
/// connected socket and the client's address.
///
/// Out of descriptors or memory, it pauses and tries again
/// ([`Accepting`]).
///
/// Errors: [`Error::Signal`] when a terminating signal arrives;
/// [`Error::Sys`] when the listening socket itself is broken
/// ([`AcceptFailure::Fatal`]).
pub fn accept(listener: &TcpListener, signals: &Signals) -> Result<(TcpStream, SocketAddr), Error> {
    let mut pause = Accepting::default();
    loop {
        let mut fds = [
            PollFd::new(signals.fd(), PollFlags::POLLIN),
            PollFd::new(listener.as_fd(), PollFlags::POLLIN),
        ];
        signals.poll(&mut fds, PollTimeout::NONE)?;
        if fds[1].any() != Some(true) {
            continue;
        }
        match listener.accept() {
            Ok(pair) => {
                pause.accepted();
                return Ok(pair);
            }
            Err(e) => match pause.failed(&e)? {
                Next::Wait | Next::Again => {}
                // One session at a time: nothing else to do meanwhile.
                Next::Paused(until) => signals
                    .sleep(until.saturating_duration_since(Instant::now()))
                    .map_err(Error::Signal)?,
            },
        }
    }
}

/// What a server does next after `accept(2)` failed ([`Accepting::failed`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// No connection is waiting: wait until the listener is readable.
    Wait,
    /// That connection is lost, not the next: call `accept` again at once.
    Again,
    /// Out of descriptors or memory: neither call `accept` nor watch the
    /// listener (it stays readable: waiting on it would spin) until this
    /// instant; the connection stays queued in the kernel meanwhile.
    Paused(Instant),
}

/// What to do about each [`AcceptFailure`], in one place, for the room
/// ([`crate::broker`]), the services ([`crate::service`]) and the 1-to-1
/// server ([`accept`]): the state of a listener whose `accept(2)` may run
/// out of descriptors or memory.
///
/// Such a shortage pauses accepting for [`ACCEPT_PAUSE`], then `accept` is
/// tried again, and again, until it works: the server never stops
/// accepting for good, whether or not a client of its own leaves (the
/// shortage may be system-wide, `ENFILE`). A server may end a pause early
/// when it frees a descriptor itself ([`Accepting::resume`]). The first
/// failure of a shortage is reported on standard error (`accept: Too many
/// open files: not accepting new connections, trying again every 100 ms`),
/// and the first connection accepted after it too (a status line:
/// `accepting new connections again`); the attempts in between say
/// nothing, so that a long shortage does not flood standard error.
#[derive(Debug, Default)]
pub struct Accepting {
    /// The pause in progress: do not accept before then.
    until: Option<Instant>,
    /// A shortage was reported and no connection accepted since.
    told: bool,
}

impl Accepting {
    /// What to do after `accept(2)` failed with `err` (see [`Next`]).
    ///
    /// Errors: [`Error::Sys`] `accept: REASON` when the listening socket
    /// itself is broken ([`AcceptFailure::Fatal`]).
    pub fn failed(&mut self, err: &std::io::Error) -> Result<Next, Error> {
        let errno = crate::error::errno_of(err);
        match AcceptFailure::of(errno) {
            AcceptFailure::Empty => Ok(Next::Wait),
            AcceptFailure::Skip => Ok(Next::Again),
            AcceptFailure::Exhausted => {
                if !self.told {
                    self.told = true;
                    crate::report!(
                        "accept: {}: not accepting new connections, trying again every {} ms",
                        errno.desc(),
                        ACCEPT_PAUSE.as_millis()
                    );
                }
                let until = Instant::now() + ACCEPT_PAUSE;
                self.until = Some(until);
                Ok(Next::Paused(until))
            }
            AcceptFailure::Fatal => Err(Error::sys("accept", errno)),
        }
    }

    /// `accept(2)` gave a connection: a shortage that was reported is over.
    pub fn accepted(&mut self) {
        if self.told {
            self.told = false;
            crate::status!("accepting new connections again");
        }
    }

    /// Whether to accept (and watch the listener) at `now`: no pause, or
    /// its end has come (the pause is then over).
    pub fn open(&mut self, now: Instant) -> bool {
        if self.until.is_some_and(|until| until <= now) {
            self.until = None;
        }
        self.until.is_none()
    }

    /// When the pause in progress ends: a deadline for the server's
    /// `poll`/`epoll_wait` timeout.
    pub fn until(&self) -> Option<Instant> {
        self.until
    }

    /// Ends a pause early: the server freed a descriptor (a client left).
    pub fn resume(&mut self) {
        self.until = None;
    }
}

/// What a failed `accept(2)` means for a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcceptFailure {
    /// `EAGAIN`: no connection is waiting (a non-blocking listener).
    Empty,
    /// The failure concerns that one connection only: the client gave up
    /// before it was accepted (`ECONNABORTED`), or a network error was
    /// pending on it, which Linux passes on through `accept` (accept(2),
    /// "Error handling": `EPROTO`, `ENETDOWN`, `EHOSTUNREACH`, ...), or a
    /// signal interrupted the call. Accept the next one.
    Skip,
    /// Out of descriptors or memory (`EMFILE`, `ENFILE`, `ENOBUFS`,
    /// `ENOMEM`): the connection stays queued; accepting again at once would
    /// spin, so wait until something is freed.
    Exhausted,
    /// Anything else: the listening socket itself is broken.
    Fatal,
}

impl AcceptFailure {
    /// The meaning of `accept(2)` failing with `errno`.
    pub fn of(errno: Errno) -> AcceptFailure {
        match errno {
            Errno::EAGAIN => AcceptFailure::Empty,
            Errno::EINTR
            | Errno::ECONNABORTED
            | Errno::EPROTO
            | Errno::ENETDOWN
            | Errno::ENOPROTOOPT
            | Errno::EHOSTDOWN
            | Errno::ENONET
            | Errno::EHOSTUNREACH
            | Errno::EOPNOTSUPP
            | Errno::ENETUNREACH
            | Errno::EPERM => AcceptFailure::Skip,
            Errno::EMFILE | Errno::ENFILE | Errno::ENOBUFS | Errno::ENOMEM => {
                AcceptFailure::Exhausted
            }
            _ => AcceptFailure::Fatal,
        }
    }
}

/// Resolves `host` with the system resolver (`getaddrinfo(3)`, so
/// `/etc/hosts`, DNS and numeric addresses of both families work) and returns
/// every TCP address in the resolver's order, each with `port`.
///
/// Errors: `unknown host HOST` when the name does not exist
/// (`EAI_NONAME`, `EAI_NODATA`); `resolve HOST: REASON` otherwise.
pub fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, Error> {
    let unknown = || Error::Msg(format!("unknown host {host}"));
    let name = CString::new(host).map_err(|_| unknown())?;
    // SAFETY: addrinfo is a plain C struct for which all-zero is valid.
    let mut hints: libc::addrinfo = unsafe { std::mem::zeroed() };
    hints.ai_family = libc::AF_UNSPEC;
    hints.ai_socktype = libc::SOCK_STREAM;
    hints.ai_protocol = libc::IPPROTO_TCP;
    let mut list: *mut libc::addrinfo = std::ptr::null_mut();
    // SAFETY: name is NUL-terminated, hints is initialised and list is a
    // valid out-pointer; list is freed below with freeaddrinfo.
    let rc = unsafe { libc::getaddrinfo(name.as_ptr(), std::ptr::null(), &hints, &mut list) };
    match rc {
        0 => {}
        libc::EAI_NONAME | libc::EAI_NODATA | libc::EAI_FAIL => return Err(unknown()),
        libc::EAI_SYSTEM => return Err(Error::sys(format!("resolve {host}"), Errno::last())),
        _ => {
            // SAFETY: gai_strerror returns a static NUL-terminated string.
            let why = unsafe { CStr::from_ptr(libc::gai_strerror(rc)) };
            return Err(Error::Msg(format!(
                "resolve {host}: {}",
                why.to_string_lossy()
            )));
        }
    }
    let mut addrs = Vec::new();
    let mut node = list;
    while !node.is_null() {
        // SAFETY: node is an element of the list getaddrinfo returned, and
        // ai_addr points to a sockaddr of the family given in ai_family.
        unsafe {
            let ai = &*node;
            match ai.ai_family {
                libc::AF_INET => {
                    let sin = &*(ai.ai_addr as *const libc::sockaddr_in);
                    let ip = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
                    addrs.push(SocketAddr::V4(SocketAddrV4::new(ip, port)));
                }
                libc::AF_INET6 => {
                    let sin6 = &*(ai.ai_addr as *const libc::sockaddr_in6);
                    let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
                    addrs.push(SocketAddr::V6(SocketAddrV6::new(
                        ip,
                        port,
                        0,
                        sin6.sin6_scope_id,
                    )));
                }
                _ => {}
            }
            node = ai.ai_next;
        }
    }
    // SAFETY: list came from a successful getaddrinfo and is freed once.
    unsafe { libc::freeaddrinfo(list) };
    addrs.dedup();
    if addrs.is_empty() {
        return Err(unknown());
    }
    Ok(addrs)
}

/// Connects to `host` on `port`, trying every address [`resolve`] returns,
/// in order, until one accepts (as `nc` does). While every address refuses
/// (`ECONNREFUSED`) and less than `retry` has passed since the first try,
/// waits [`RETRY_INTERVAL`] and tries again: this lets a script start
/// `chatd` and `chat` together.
///
/// Each attempt is a non-blocking `connect` finished in a `poll` that also
/// watches the signal pipe, so Ctrl-C interrupts a connection in progress.
///
/// Errors: [`Error::Msg`] for an unknown host; [`Error::Signal`];
/// [`Error::Sys`] `connect to HOST:PORT: REASON` with the last address's
/// error.
pub fn connect(
    host: &str,
    port: u16,
    retry: Duration,
    signals: &Signals,
) -> Result<TcpStream, Error> {
    let addrs = resolve(host, port)?;
    let start = Instant::now();
    loop {
        let mut last = Errno::ECONNREFUSED;
        let mut all_refused = true;
        for addr in &addrs {
            match connect_one(*addr, signals) {
                Ok(stream) => return Ok(stream),
                Err(Attempt::Stop(err)) => return Err(err),
                Err(Attempt::Failed(errno)) => {
                    all_refused &= errno == Errno::ECONNREFUSED;
                    last = errno;
                }
            }
        }
        if !all_refused || start.elapsed() + RETRY_INTERVAL > retry {
            return Err(Error::sys(
                format!("connect to {}:{port}", bracketed(host)),
                last,
            ));
        }
        signals.sleep(RETRY_INTERVAL).map_err(Error::Signal)?;
    }
}

/// `host`, in brackets if it is an IPv6 literal (`[::1]:8080`).
fn bracketed(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

/// Why one connection attempt did not give a socket.
enum Attempt {
    /// Stop trying altogether: a terminating signal, or `poll` failed.
    Stop(Error),
    /// This address failed with `errno`; the next one may work.
    Failed(Errno),
}

fn connect_one(addr: SocketAddr, signals: &Signals) -> Result<TcpStream, Attempt> {
    let fd: OwnedFd = socket(
        family(&addr),
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )
    .map_err(Attempt::Failed)?;
    match sys_connect(fd.as_raw_fd(), &SockaddrStorage::from(addr)) {
        Ok(()) => {}
        Err(Errno::EINPROGRESS) => loop {
            let mut fds = [
                PollFd::new(signals.fd(), PollFlags::POLLIN),
                PollFd::new(fd.as_fd(), PollFlags::POLLOUT),
            ];
            signals
                .poll(&mut fds, PollTimeout::NONE)
                .map_err(Attempt::Stop)?;
            if fds[1].any() == Some(true) {
                match getsockopt(&fd, sockopt::SocketError) {
                    Ok(0) => break,
                    Ok(code) => return Err(Attempt::Failed(Errno::from_raw(code))),
                    Err(e) => return Err(Attempt::Failed(e)),
                }
            }
        },
        Err(e) => return Err(Attempt::Failed(e)),
    }
    let flags = fcntl(&fd, FcntlArg::F_GETFL).map_err(Attempt::Failed)?;
    let blocking = OFlag::from_bits_retain(flags) & !OFlag::O_NONBLOCK;
    fcntl(&fd, FcntlArg::F_SETFL(blocking)).map_err(Attempt::Failed)?;
    Ok(TcpStream::from(fd))
}

fn family(addr: &SocketAddr) -> AddressFamily {
    match addr {
        SocketAddr::V4(_) => AddressFamily::Inet,
        SocketAddr::V6(_) => AddressFamily::Inet6,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_failures_are_classified_as_accept_2_describes_them() {
        assert_eq!(AcceptFailure::of(Errno::EAGAIN), AcceptFailure::Empty);
        for errno in [
            Errno::EINTR,
            Errno::ECONNABORTED,
            Errno::EPROTO,
            Errno::EHOSTUNREACH,
        ] {
            assert_eq!(AcceptFailure::of(errno), AcceptFailure::Skip, "{errno}");
        }
        for errno in [Errno::EMFILE, Errno::ENFILE, Errno::ENOBUFS, Errno::ENOMEM] {
            assert_eq!(
                AcceptFailure::of(errno),
                AcceptFailure::Exhausted,
                "{errno}"
            );
        }
        for errno in [Errno::EBADF, Errno::EINVAL, Errno::ENOTSOCK] {
            assert_eq!(AcceptFailure::of(errno), AcceptFailure::Fatal, "{errno}");
        }
    }
}

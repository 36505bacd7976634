//! Opening connections: the listening socket of `chatd` (worksheet question
//! 1) and the connecting socket of `chat` (question 2).

use std::ffi::{CStr, CString};
use std::net::{
    IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, TcpListener, TcpStream,
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
use crate::{detail, status};

/// How long a server stops accepting after `accept(2)` ran out of
/// descriptors or memory ([`AcceptFailure::Exhausted`], [`Accepting`]),
/// before it tries again.
pub const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// How long `chat --retry` waits between two rounds of connection attempts.
pub const RETRY_INTERVAL: Duration = Duration::from_millis(100);

/// TCP keepalive of a one-to-one session ([`keepalive`]): the first probe
/// after this long without a byte either way (`TCP_KEEPIDLE`; the Linux
/// default, `net.ipv4.tcp_keepalive_time`, is 2 hours).
pub const KEEPALIVE_IDLE: Duration = Duration::from_secs(60);

/// Time between two unanswered keepalive probes (`TCP_KEEPINTVL`).
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);

/// Unanswered keepalive probes after which the connection is dropped
/// (`TCP_KEEPCNT`): with [`KEEPALIVE_IDLE`] and [`KEEPALIVE_INTERVAL`], a
/// peer that vanished (a machine switched off, a cable pulled, a laptop
/// closed) is noticed within 60 + 6 x 10 = 120 seconds of silence.
pub const KEEPALIVE_PROBES: u32 = 6;

/// Turns on TCP keepalive (`SO_KEEPALIVE`, RFC 1122 §4.2.3.6) on the
/// connected socket of a one-to-one session, with [`KEEPALIVE_IDLE`],
/// [`KEEPALIVE_INTERVAL`] and [`KEEPALIVE_PROBES`], so that a peer that
/// vanished without a FIN or a reset does not hold the session (and, for
/// `chatd`, the server) for ever: the kernel probes the silent
/// connection, and when no probe is answered, reading it fails with
/// `ETIMEDOUT` (or `EHOSTUNREACH`), which ends the session like a reset.
/// A peer that is there answers the probes from its kernel: a silent
/// conversation is never cut. (While data waits to be acknowledged, the
/// retransmission timeout applies instead, as for any TCP connection.)
///
/// Errors: [`Error::Sys`] naming the option that `setsockopt(2)` refused.
pub fn keepalive(stream: &TcpStream) -> Result<(), Error> {
    let secs = |d: Duration| u32::try_from(d.as_secs()).unwrap_or(u32::MAX);
    setsockopt(stream, sockopt::KeepAlive, &true)
        .map_err(|e| Error::sys("setsockopt SO_KEEPALIVE", e))?;
    setsockopt(stream, sockopt::TcpKeepIdle, &secs(KEEPALIVE_IDLE))
        .map_err(|e| Error::sys("setsockopt TCP_KEEPIDLE", e))?;
    setsockopt(stream, sockopt::TcpKeepInterval, &secs(KEEPALIVE_INTERVAL))
        .map_err(|e| Error::sys("setsockopt TCP_KEEPINTVL", e))?;
    setsockopt(stream, sockopt::TcpKeepCount, &KEEPALIVE_PROBES)
        .map_err(|e| Error::sys("setsockopt TCP_KEEPCNT", e))
}

/// Opens a listening TCP socket on `addr`, built by hand in the order the
/// worksheet (question 1) asks: `socket(SOCK_CLOEXEC)`, `SO_REUSEADDR` (so a
/// restarted server does not meet "Address already in use" from connections
/// in TIME_WAIT; setting it after `bind` would do nothing), `bind`,
/// `listen(SOMAXCONN)`. Port 0 picks a free port (see `local_addr`).
/// An IPv6 wildcard `::` also accepts IPv4 clients where the system allows
/// it (`net.ipv6.bindv6only=0`, the Linux default), unless `family` is
/// [`Family::V6`] (`-6`: IPv6 only), which sets `IPV6_V6ONLY` (RFC 3493
/// §5.3) before `bind`.
///
/// Errors: [`Error::Sys`] naming the call, e.g. `bind 0.0.0.0:8080: Address
/// already in use`.
pub fn listen(addr: SocketAddr, family: Family) -> Result<TcpListener, Error> {
    let fd = socket(
        self::family(&addr),
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| Error::sys("socket", e))?;
    setsockopt(&fd, sockopt::ReuseAddr, &true)
        .map_err(|e| Error::sys("setsockopt SO_REUSEADDR", e))?;
    if addr.is_ipv6() && family == Family::V6 {
        setsockopt(&fd, sockopt::Ipv6V6Only, &true)
            .map_err(|e| Error::sys("setsockopt IPV6_V6ONLY", e))?;
    }
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

/// Which address families to use, as `nc -4` and `nc -6` say: for
/// resolving a name, for the default listening address and, with
/// [`Family::V6`], for the clients a listener accepts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Family {
    /// IPv4 and IPv6 (no `-4` or `-6`).
    #[default]
    Any,
    /// `-4`: IPv4 addresses only.
    V4,
    /// `-6`: IPv6 addresses only.
    V6,
}

impl Family {
    /// The family of the flags `-4` and `-6` (clap lets only one be given).
    pub fn from_flags(ipv4: bool, ipv6: bool) -> Family {
        match (ipv4, ipv6) {
            (true, _) => Family::V4,
            (_, true) => Family::V6,
            _ => Family::Any,
        }
    }

    /// Whether `ip` is of this family.
    pub fn admits(self, ip: IpAddr) -> bool {
        match self {
            Family::Any => true,
            Family::V4 => ip.is_ipv4(),
            Family::V6 => ip.is_ipv6(),
        }
    }

    /// The wildcard address a server listens on without `-b`: `0.0.0.0`
    /// (every IPv4 address), or `::` with `-6`.
    pub fn wildcard(self) -> IpAddr {
        match self {
            Family::V6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            _ => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        }
    }

    /// `-4` or `-6`, for messages (empty for [`Family::Any`]).
    pub fn flag(self) -> &'static str {
        match self {
            Family::Any => "",
            Family::V4 => "-4",
            Family::V6 => "-6",
        }
    }

    /// `IPv4` or `IPv6`, for messages (`IP` for [`Family::Any`]).
    pub fn name(self) -> &'static str {
        match self {
            Family::Any => "IP",
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        }
    }

    fn hint(self) -> libc::c_int {
        match self {
            Family::Any => libc::AF_UNSPEC,
            Family::V4 => libc::AF_INET,
            Family::V6 => libc::AF_INET6,
        }
    }
}

/// The one form in which a peer's address is shown and checked: an IPv4
/// client of an IPv6 listener (`chatd -b ::`), which the kernel reports as
/// the IPv4-mapped `[::ffff:192.0.2.7]:51234` (RFC 4291 §2.5.5.2), is
/// `192.0.2.7:51234`, as it is for an IPv4 listener. Other addresses are
/// returned as they are. The 1-to-1 server, the room and the services all
/// pass what `accept(2)` returns through this function.
pub fn canonical(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), v6.port()),
            None => addr,
        },
        SocketAddr::V4(_) => addr,
    }
}

/// Resolves `host` with the system resolver (`getaddrinfo(3)`, so
/// `/etc/hosts`, DNS and numeric addresses of both families work) and returns
/// every TCP address of `family` in the resolver's order, each with `port`.
///
/// Errors: `unknown host HOST; check ...` ([`UNKNOWN_HOST`]) when the
/// name does not exist (`EAI_NONAME`, `EAI_NODATA`); `HOST has no IPv6
/// address (-6)` when it exists but has no address of `family`; `resolve
/// HOST: REASON` otherwise.
pub fn resolve(host: &str, port: u16, family: Family) -> Result<Vec<SocketAddr>, Error> {
    let unknown = || Error::Msg(format!("unknown host {host}")).hint(Some(UNKNOWN_HOST));
    let name = CString::new(host).map_err(|_| unknown())?;
    match lookup(Some(&name), None, family) {
        Ok(addrs) if !addrs.is_empty() => {
            Ok(addrs.into_iter().map(|a| with_port(a, port)).collect())
        }
        // The name may exist with addresses of the other family only
        // (glibc then says EAI_NODATA or EAI_ADDRFAMILY).
        _ if family != Family::Any
            && lookup(Some(&name), None, Family::Any).is_ok_and(|a| !a.is_empty()) =>
        {
            Err(Error::Msg(format!(
                "{host} has no {} address ({})",
                family.name(),
                family.flag()
            )))
        }
        Ok(_) => Err(unknown()),
        Err(rc) if is_no_name(rc) => Err(unknown()),
        Err(libc::EAI_SYSTEM) => Err(Error::sys(format!("resolve {host}"), Errno::last())),
        Err(rc) => Err(Error::Msg(format!("resolve {host}: {}", gai_error(rc)))),
    }
}

/// The TCP port of the service `name` (`http`, `gopher`), as
/// `getaddrinfo(3)` finds it in `/etc/services` (or NSS); `None` if it
/// knows no such service.
pub fn service_port(name: &str) -> Option<u16> {
    let service = CString::new(name).ok()?;
    let addrs = lookup(None, Some(&service), Family::Any).ok()?;
    addrs.first().map(SocketAddr::port)
}

/// Whether a `getaddrinfo` error means "no such name".
fn is_no_name(rc: libc::c_int) -> bool {
    matches!(rc, libc::EAI_NONAME | libc::EAI_NODATA | libc::EAI_FAIL)
}

/// The message of a `getaddrinfo` error code.
fn gai_error(rc: libc::c_int) -> String {
    // SAFETY: gai_strerror returns a static NUL-terminated string.
    let why = unsafe { CStr::from_ptr(libc::gai_strerror(rc)) };
    why.to_string_lossy().into_owned()
}

fn with_port(addr: SocketAddr, port: u16) -> SocketAddr {
    let mut addr = addr;
    addr.set_port(port);
    addr
}

/// `getaddrinfo(node, service)` for TCP streams of `family`: the addresses
/// in the resolver's order (duplicates next to each other removed), or the
/// `EAI_*` code.
fn lookup(
    node: Option<&CStr>,
    service: Option<&CStr>,
    family: Family,
) -> Result<Vec<SocketAddr>, libc::c_int> {
    // SAFETY: addrinfo is a plain C struct for which all-zero is valid.
    let mut hints: libc::addrinfo = unsafe { std::mem::zeroed() };
    hints.ai_family = family.hint();
    hints.ai_socktype = libc::SOCK_STREAM;
    hints.ai_protocol = libc::IPPROTO_TCP;
    let mut list: *mut libc::addrinfo = std::ptr::null_mut();
    let ptr = |s: Option<&CStr>| s.map_or(std::ptr::null(), CStr::as_ptr);
    // SAFETY: node and service are NUL-terminated or null (not both: the
    // callers give one), hints is initialised and list is a valid
    // out-pointer; list is freed below with freeaddrinfo.
    let rc = unsafe { libc::getaddrinfo(ptr(node), ptr(service), &hints, &mut list) };
    if rc != 0 {
        return Err(rc);
    }
    let mut addrs = Vec::new();
    let mut next = list;
    while !next.is_null() {
        // SAFETY: next is an element of the list getaddrinfo returned, and
        // ai_addr points to a sockaddr of the family given in ai_family.
        unsafe {
            let ai = &*next;
            match ai.ai_family {
                libc::AF_INET => {
                    let sin = &*(ai.ai_addr as *const libc::sockaddr_in);
                    let ip = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
                    let port = u16::from_be(sin.sin_port);
                    addrs.push(SocketAddr::V4(SocketAddrV4::new(ip, port)));
                }
                libc::AF_INET6 => {
                    let sin6 = &*(ai.ai_addr as *const libc::sockaddr_in6);
                    let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
                    let port = u16::from_be(sin6.sin6_port);
                    addrs.push(SocketAddr::V6(SocketAddrV6::new(
                        ip,
                        port,
                        0,
                        sin6.sin6_scope_id,
                    )));
                }
                _ => {}
            }
            next = ai.ai_next;
        }
    }
    // SAFETY: list came from a successful getaddrinfo and is freed once.
    unsafe { libc::freeaddrinfo(list) };
    addrs.dedup();
    Ok(addrs)
}

/// Opens the listening socket of `chatd -b HOST -p PORT`:
/// `host` is a name or an address (`None`: the wildcard of `family`);
/// a name is resolved with [`resolve`], and its addresses are tried in
/// order until one binds, as `nc -l` does (OpenBSD netcat.c,
/// `local_listen`). Returns the listener; when the name had more than one
/// address, a status line says which one is listened on, and with `-v`
/// each address that failed is said with its reason.
///
/// Errors: those of [`resolve`]; when no address binds, the first
/// address's error, with what to do about it ([`bind_hint`]): `bind
/// 127.0.0.1:8080: Address already in use; another program has this port:
/// ...`.
pub fn listen_on(host: Option<&str>, port: u16, family: Family) -> Result<TcpListener, Error> {
    let addrs = match host {
        None => vec![SocketAddr::new(family.wildcard(), port)],
        Some(host) => resolve(host, port, family)?,
    };
    let mut first_error = None;
    for addr in &addrs {
        match listen(*addr, family) {
            Ok(listener) => {
                if let (Some(host), [_, _, ..]) = (host, addrs.as_slice()) {
                    status!(
                        "{host} is {}: listening on {} only",
                        ip_list(&addrs),
                        addr.ip()
                    );
                }
                return Ok(listener);
            }
            Err(err) => {
                detail!("{err}");
                first_error.get_or_insert(err);
            }
        }
    }
    Err(match first_error {
        Some(Error::Sys { what, errno }) => Error::sys(what, errno).hint(bind_hint(port, errno)),
        Some(other) => other,
        None => Error::Msg("no address to listen on".to_owned()),
    })
}

/// `127.0.0.1 and ::1`, `a, b and c`: the addresses of a name, for messages.
fn ip_list(addrs: &[SocketAddr]) -> String {
    let ips: Vec<String> = addrs.iter().map(|a| a.ip().to_string()).collect();
    match ips.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => ips.concat(),
    }
}

/// How `chat` connects: `--retry`, `-w` (`nc`'s meaning), `-4`/`-6`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Dial {
    /// `--retry SECS`: while every address refuses, try again for up to
    /// this long, counted from the first try (zero: no retry).
    pub retry: Duration,
    /// `-w SECS`: the budget of one round of attempts, every address of
    /// the name included (`None`: the kernel's own timeout, about two
    /// minutes on Linux).
    pub wait: Option<Duration>,
    /// `-4`/`-6`: which addresses of the name to try.
    pub family: Family,
}

/// Connects to `host` on `port`, trying every address [`resolve`] returns
/// (of `dial.family`), in order, until one accepts, as `nc` does. With `-v`
/// and more than one address, each address that fails is said (`connect to
/// localhost (::1) port 8080 failed: Connection refused`, the form of
/// OpenBSD `nc -v`).
///
/// With `dial.wait` (`-w SECS`), one round of attempts has that budget:
/// the time left is shared by the addresses left (each gets its share,
/// and what a quick failure leaves goes to the next), so every address is
/// tried. With `dial.retry`, while every address refuses
/// (`ECONNREFUSED`) and less than `retry` has passed since the first try,
/// waits [`RETRY_INTERVAL`] and starts another round; a round in which an
/// address timed out or failed otherwise is not repeated. The longest
/// wait is thus about `retry` + `wait`.
///
/// Each attempt is a non-blocking `connect` finished in a `poll` that also
/// watches the signal pipe, so Ctrl-C interrupts a connection in progress.
///
/// Errors: those of [`resolve`]; [`Error::Signal`]; `connect to HOST port
/// PORT: timed out after N s` when the last address tried timed out;
/// otherwise `connect to HOST port PORT: REASON` with the last address's
/// error; each with what to do about it when there is something to say
/// ([`connect_hint`]).
pub fn connect(host: &str, port: u16, dial: &Dial, signals: &Signals) -> Result<TcpStream, Error> {
    let addrs = resolve(host, port, dial.family)?;
    let start = Instant::now();
    let mut first_round = true;
    loop {
        let deadline = dial.wait.map(|wait| Instant::now() + wait);
        let mut last = Errno::ECONNREFUSED;
        let mut all_refused = true;
        for (i, addr) in addrs.iter().enumerate() {
            let budget = deadline.map(|deadline| {
                share(
                    deadline.saturating_duration_since(Instant::now()),
                    addrs.len() - i,
                )
            });
            let errno = match connect_one(*addr, budget, signals) {
                Ok(stream) => return Ok(stream),
                Err(Attempt::Stop(err)) => return Err(err),
                Err(Attempt::Failed(errno)) => errno,
            };
            if first_round && addrs.len() > 1 {
                let how = match errno {
                    Errno::ETIMEDOUT if budget.is_some() => "timed out".to_owned(),
                    _ => format!("failed: {}", errno.desc()),
                };
                detail!("connect to {host} ({}) port {port} {how}", addr.ip());
            }
            all_refused &= errno == Errno::ECONNREFUSED;
            last = errno;
        }
        if !all_refused || start.elapsed() + RETRY_INTERVAL > dial.retry {
            let what = format!("connect to {host} port {port}");
            let err = match (last, dial.wait) {
                (Errno::ETIMEDOUT, Some(wait)) => {
                    Error::Msg(format!("{what}: timed out after {} s", wait.as_secs_f64()))
                }
                _ => Error::sys(what, last),
            };
            return Err(err.hint(connect_hint(last, dial)));
        }
        if first_round {
            detail!(
                "connection refused: retrying for up to {} s",
                dial.retry.as_secs_f64()
            );
            first_round = false;
        }
        signals.sleep(RETRY_INTERVAL).map_err(Error::Signal)?;
    }
}

/// The time one address gets of a `-w` round: an equal share of what is
/// `left` among the `addresses_left` (this one included), so an address
/// that hangs cannot take the time of the ones after it, and the time a
/// quick failure leaves goes to the next. `addresses_left` is at least 1.
fn share(left: Duration, addresses_left: usize) -> Duration {
    left / u32::try_from(addresses_left.max(1)).unwrap_or(u32::MAX)
}

/// Why one connection attempt did not give a socket.
enum Attempt {
    /// Stop trying altogether: a terminating signal, or `poll` failed.
    Stop(Error),
    /// This address failed with `errno` (`ETIMEDOUT` when its `budget`
    /// ran out); the next one may work.
    Failed(Errno),
}

/// One non-blocking `connect` to `addr`, given up after `budget` (`None`:
/// when the kernel gives up).
fn connect_one(
    addr: SocketAddr,
    budget: Option<Duration>,
    signals: &Signals,
) -> Result<TcpStream, Attempt> {
    let fd: OwnedFd = socket(
        family(&addr),
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )
    .map_err(Attempt::Failed)?;
    let deadline = budget.map(|budget| Instant::now() + budget);
    match sys_connect(fd.as_raw_fd(), &SockaddrStorage::from(addr)) {
        Ok(()) => {}
        Err(Errno::EINPROGRESS) => loop {
            let timeout = match deadline {
                None => PollTimeout::NONE,
                Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => crate::signals::timeout(left),
                    _ => return Err(Attempt::Failed(Errno::ETIMEDOUT)),
                },
            };
            let mut fds = [
                PollFd::new(signals.fd(), PollFlags::POLLIN),
                PollFd::new(fd.as_fd(), PollFlags::POLLOUT),
            ];
            signals.poll(&mut fds, timeout).map_err(Attempt::Stop)?;
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

/// What to do about a name that does not resolve, at the end of its
/// error line.
pub const UNKNOWN_HOST: &str = "check its spelling, or give an IP address instead";

/// What to do when `bind(2)` of port `port` failed with `errno`, for the
/// end of the error line (`None`: nothing useful to add):
/// - `EADDRINUSE`: another socket has the port;
/// - `EACCES` on a port below `net.ipv4.ip_unprivileged_port_start`
///   (1024 unless changed; it governs IPv6 too): only a process with
///   `CAP_NET_BIND_SERVICE` may bind it (capabilities(7), ip(7));
/// - `EADDRNOTAVAIL`: `-b` named an address no interface of this machine
///   has.
pub fn bind_hint(port: u16, errno: Errno) -> Option<String> {
    match errno {
        Errno::EADDRINUSE => Some(
            "another program has this port: pick another with -p, or see which with 'ss -ltnp'"
                .to_owned(),
        ),
        Errno::EACCES => {
            let start = unprivileged_port_start();
            (port != 0 && port < start).then(|| {
                format!(
                    "ports below {start} need root or CAP_NET_BIND_SERVICE: pick a higher one with -p"
                )
            })
        }
        Errno::EADDRNOTAVAIL => Some(
            "no interface of this machine has that address: see 'ip address', or leave out -b"
                .to_owned(),
        ),
        _ => None,
    }
}

/// The lowest port any user may bind: `net.ipv4.ip_unprivileged_port_start`
/// (ip(7)), or the traditional 1024 if it cannot be read.
fn unprivileged_port_start() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(1024)
}

/// What to do when the last connection attempt of `chat` failed with
/// `errno`, for the end of the error line (`None`: nothing useful to add):
/// `ECONNREFUSED` means nothing listens there (yet: `--retry`);
/// `ETIMEDOUT`, that nothing answered at all (a wrong address, or a
/// firewall dropping the SYN).
pub fn connect_hint(errno: Errno, dial: &Dial) -> Option<String> {
    match errno {
        Errno::ECONNREFUSED if dial.retry.is_zero() => {
            Some("is chatd running there? --retry SECS waits for it to start".to_owned())
        }
        Errno::ECONNREFUSED => Some(format!(
            "nothing listened there for the {} s of --retry: is chatd running?",
            dial.retry.as_secs_f64()
        )),
        Errno::ETIMEDOUT if dial.wait.is_some() => Some(
            "the host did not answer: check the address, a firewall, or allow longer with -w"
                .to_owned(),
        ),
        Errno::ETIMEDOUT => {
            Some("the host did not answer: check the address, or a firewall".to_owned())
        }
        _ => None,
    }
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
    fn every_address_gets_a_share_of_the_wait_and_the_last_all_that_is_left() {
        // -w 3 and three addresses: a first that hangs takes 1 s of 3.
        let wait = Duration::from_secs(3);
        assert_eq!(share(wait, 3), Duration::from_secs(1));
        // It refused after 0.2 s: the two left share 2.8 s.
        assert_eq!(
            share(Duration::from_millis(2800), 2),
            Duration::from_millis(1400)
        );
        // The last address gets all the time left.
        assert_eq!(
            share(Duration::from_millis(1400), 1),
            Duration::from_millis(1400)
        );
        assert_eq!(share(wait, 0), wait);
    }

    #[test]
    fn keepalive_sets_the_documented_timers() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let stream = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        assert!(!getsockopt(&stream, sockopt::KeepAlive).unwrap());
        keepalive(&stream).unwrap();
        assert!(getsockopt(&stream, sockopt::KeepAlive).unwrap());
        assert_eq!(getsockopt(&stream, sockopt::TcpKeepIdle).unwrap(), 60);
        assert_eq!(getsockopt(&stream, sockopt::TcpKeepInterval).unwrap(), 10);
        assert_eq!(getsockopt(&stream, sockopt::TcpKeepCount).unwrap(), 6);
    }

    #[test]
    fn ipv4_mapped_peers_have_one_form() {
        let mapped: SocketAddr = "[::ffff:127.0.0.1]:51234".parse().unwrap();
        assert_eq!(canonical(mapped).to_string(), "127.0.0.1:51234");
        let v4: SocketAddr = "127.0.0.1:51234".parse().unwrap();
        assert_eq!(canonical(v4), v4);
        let scoped = SocketAddr::V6(SocketAddrV6::new("fe80::1".parse().unwrap(), 80, 0, 2));
        assert_eq!(canonical(scoped), scoped, "the scope is kept");
        let v6: SocketAddr = "[::1]:9".parse().unwrap();
        assert_eq!(canonical(v6), v6);
    }

    #[test]
    fn names_and_services_resolve_with_the_family_asked_for() {
        let v4 = resolve("127.0.0.1", 80, Family::Any).unwrap();
        assert_eq!(v4, ["127.0.0.1:80".parse().unwrap()]);
        assert_eq!(
            resolve("::1", 7, Family::V6).unwrap()[0].to_string(),
            "[::1]:7"
        );
        let err = resolve("127.0.0.1", 80, Family::V6)
            .unwrap_err()
            .to_string();
        assert_eq!(err, "127.0.0.1 has no IPv6 address (-6)");
        let err = resolve("no-such-host.invalid", 80, Family::Any).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("unknown host no-such-host.invalid; {UNKNOWN_HOST}")
        );
        assert!(
            resolve("localhost", 1, Family::V4)
                .unwrap()
                .iter()
                .all(|a| a.is_ipv4())
        );
        assert_eq!(service_port("no-such-service"), None);
        if std::path::Path::new("/etc/services").exists() {
            assert_eq!(service_port("http"), Some(80));
        }
    }

    #[test]
    fn failures_get_a_hint_only_when_there_is_something_to_do() {
        let start = unprivileged_port_start();
        assert!(
            bind_hint(8080, Errno::EADDRINUSE)
                .unwrap()
                .contains("ss -ltnp")
        );
        if start > 1 {
            let hint = bind_hint(start - 1, Errno::EACCES).unwrap();
            assert!(hint.starts_with(&format!("ports below {start} need root")));
        }
        // Refused for another reason (a security module): no guess.
        assert_eq!(bind_hint(start.max(1024), Errno::EACCES), None);
        assert_eq!(bind_hint(8080, Errno::ENOMEM), None);
        let dial = Dial::default();
        assert!(
            connect_hint(Errno::ECONNREFUSED, &dial)
                .unwrap()
                .contains("--retry SECS")
        );
        let retried = Dial {
            retry: Duration::from_millis(2500),
            ..Dial::default()
        };
        assert_eq!(
            connect_hint(Errno::ECONNREFUSED, &retried).unwrap(),
            "nothing listened there for the 2.5 s of --retry: is chatd running?"
        );
        // The kernel's own timeout (no -w): -w cannot wait longer than it.
        assert!(
            !connect_hint(Errno::ETIMEDOUT, &dial)
                .unwrap()
                .contains("-w")
        );
        let waited = Dial {
            wait: Some(Duration::from_secs(2)),
            ..Dial::default()
        };
        assert!(
            connect_hint(Errno::ETIMEDOUT, &waited)
                .unwrap()
                .contains("-w")
        );
        assert_eq!(connect_hint(Errno::ENETUNREACH, &dial), None);
    }

    #[test]
    fn several_addresses_are_listed_in_words() {
        let addrs: Vec<SocketAddr> = ["127.0.0.1:1", "[::1]:1", "10.0.0.1:1"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        assert_eq!(ip_list(&addrs[..1]), "127.0.0.1");
        assert_eq!(ip_list(&addrs[..2]), "127.0.0.1 and ::1");
        assert_eq!(ip_list(&addrs), "127.0.0.1, ::1 and 10.0.0.1");
    }

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

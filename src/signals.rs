//! Signals through signal-hook's self-pipe, so that one `poll(2)` waits for
//! input and signals at once (the pattern of `signal_hook::low_level::pipe`).
//!
//! [`Signals::install`] registers, once and before any `fork`:
//! - `SIGCHLD`, `SIGINT`, `SIGTERM`, `SIGHUP`: each writes a byte to the pipe;
//! - `SIGINT`, `SIGTERM`, `SIGHUP` also record their number, so the process
//!   can end with status 128+N (the shell's convention; EXIT STATUS in
//!   the man pages);
//! - `SIGPIPE` is ignored, as in OpenBSD `nc`: a closed peer or stdout shows
//!   up as `EPIPE` from `write(2)`, handled where it happens.
//!
//! The waiting side drains the pipe first, then acts: it checks
//! [`Signals::terminated`] and reaps children with `waitpid(WNOHANG)` until
//! none is left to reap.
//!
//! signal-hook installs its handlers with `SA_RESTART`, so blocking calls
//! such as `read(2)` resume after a signal; `poll(2)` never does, which is why
//! every wait that must notice a signal is a `poll` on [`Signals::fd`].
//! Busy loops that do not wait (a transfer moving data) look at
//! [`Signals::pending`] instead, an atomic flag set by the same signals:
//! no system call per chunk.

use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use signal_hook::consts::{SIGCHLD, SIGHUP, SIGINT, SIGPIPE, SIGTERM};

use crate::error::Error;

/// The signals that end the program (with status 128+N).
pub const TERMINATING: [i32; 3] = [SIGINT, SIGTERM, SIGHUP];

/// The read end of the self-pipe, and the last terminating signal received.
#[derive(Debug)]
pub struct Signals {
    read: UnixStream,
    /// A copy of the write end, for [`Signals::watch`].
    write: UnixStream,
    terminated: Arc<AtomicUsize>,
    /// Set by every registered signal, cleared by [`Signals::drain`].
    pending: Arc<AtomicBool>,
    /// Run by [`Signals::drain`] after emptying the pipe, in order: hooks
    /// of higher layers, registered at set-up ([`Signals::after_drain`]).
    after_drain: [OnceLock<fn()>; HOOKS],
}

/// How many [`Signals::after_drain`] hooks can be registered: the
/// terminal's and the one-to-one server's waiting line, and room to spare.
const HOOKS: usize = 4;

impl Signals {
    /// Installs the handlers described in the module documentation.
    /// Call once, early in `main`, while the process is single-threaded.
    /// Errors: creating the socket pair or registering a handler failed.
    pub fn install() -> io::Result<Signals> {
        // SAFETY: setting SIGPIPE's disposition to SIG_IGN installs no
        // handler code, so nothing can run in signal context.
        unsafe { libc::signal(SIGPIPE, libc::SIG_IGN) };
        let (read, write) = UnixStream::pair()?;
        read.set_nonblocking(true)?;
        write.set_nonblocking(true)?;
        let terminated = Arc::new(AtomicUsize::new(0));
        for sig in TERMINATING {
            // Registered before the pipe action, so the number is stored by
            // the time the byte wakes the poll (actions run in order).
            signal_hook::flag::register_usize(sig, Arc::clone(&terminated), sig as usize)?;
        }
        let pending = Arc::new(AtomicBool::new(false));
        for sig in [SIGCHLD, SIGINT, SIGTERM, SIGHUP] {
            signal_hook::flag::register(sig, Arc::clone(&pending))?;
            signal_hook::low_level::pipe::register(sig, write.try_clone()?)?;
        }
        Ok(Signals {
            read,
            write,
            terminated,
            pending,
            after_drain: [const { OnceLock::new() }; HOOKS],
        })
    }

    /// Adds `sig` to the signals that wake [`Signals::fd`], setting `flag`
    /// first (the terminal's `SIGWINCH`, `SIGTSTP`, `SIGCONT`:
    /// [`crate::terminal::after_signals`] acts on them). Errors: registering
    /// the handler failed.
    pub fn watch(&self, sig: i32, flag: &Arc<AtomicBool>) -> io::Result<()> {
        signal_hook::flag::register(sig, Arc::clone(flag))?;
        signal_hook::flag::register(sig, Arc::clone(&self.pending))?;
        signal_hook::low_level::pipe::register(sig, self.write.try_clone()?)?;
        Ok(())
    }

    /// Registers `hook` to run at the end of every [`Signals::drain`],
    /// wherever the process waited: how a higher layer acts on the signals
    /// it [watches](Signals::watch) (the terminal's Ctrl-Z, `fg` and
    /// resizes: [`crate::terminal::after_signals`]; `chatd`'s clients that
    /// connect while it is busy, by `SIGIO`). Hooks run in the order
    /// registered; a hook registered twice runs once; beyond
    /// [`HOOKS`] hooks, later ones are ignored.
    pub fn after_drain(&self, hook: fn()) {
        for slot in &self.after_drain {
            match slot.get() {
                Some(&old) if std::ptr::fn_addr_eq(old, hook) => return,
                Some(_) => {}
                None => {
                    let _ = slot.set(hook);
                    return;
                }
            }
        }
    }

    /// The descriptor to `poll` for `POLLIN`: readable when a signal arrived.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.read.as_fd()
    }

    /// Whether a signal arrived since the last [`Signals::drain`]: one
    /// atomic load, for loops that move data without waiting in `poll`.
    /// The caller then calls [`Signals::check`] (or its own check, which
    /// drains) and acts.
    pub fn pending(&self) -> bool {
        self.pending.load(Ordering::Relaxed)
    }

    /// Empties the pipe and clears [`Signals::pending`] (call before acting
    /// on what woke the poll: a signal arriving meanwhile sets both again).
    pub fn drain(&self) {
        self.pending.store(false, Ordering::Relaxed);
        let mut buf = [0u8; 64];
        while let Ok(n) = (&self.read).read(&mut buf) {
            if n == 0 {
                break;
            }
        }
        // Ctrl-Z, fg and resizes for the terminal, clients waiting for
        // chatd, wherever we waited.
        for hook in self.after_drain.iter().map_while(OnceLock::get) {
            hook();
        }
    }

    /// The terminating signal received (SIGINT, SIGTERM or SIGHUP), if any.
    pub fn terminated(&self) -> Option<i32> {
        match self.terminated.load(Ordering::Relaxed) {
            0 => None,
            n => i32::try_from(n).ok(),
        }
    }

    /// `poll(2)` on `fds`, whose first entry must be [`Signals::fd`] for
    /// `POLLIN`: `EINTR` counts as a wake-up, and when the pipe is readable
    /// it is drained and a terminating signal stops the wait. The caller then
    /// looks at the other entries' `revents`.
    ///
    /// Errors: [`Error::Signal`] (SIGINT, SIGTERM, SIGHUP);
    /// [`Error::Sys`] if `poll` itself fails.
    pub fn poll(&self, fds: &mut [PollFd<'_>], timeout: PollTimeout) -> Result<(), Error> {
        match poll(fds, timeout) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(Error::sys("poll", e)),
        }
        if fds[0].any() == Some(true) {
            self.check()?;
        }
        Ok(())
    }

    /// Drains the pipe and returns [`Error::Signal`] if a terminating
    /// signal arrived.
    pub fn check(&self) -> Result<(), Error> {
        self.drain();
        match self.terminated() {
            Some(sig) => Err(Error::Signal(sig)),
            None => Ok(()),
        }
    }

    /// Sleeps for `duration`, returning early with `Err(N)` when terminating
    /// signal N arrives.
    pub fn sleep(&self, duration: Duration) -> Result<(), i32> {
        let deadline = Instant::now() + duration;
        loop {
            if let Some(sig) = self.terminated() {
                return Err(sig);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(());
            }
            let mut fds = [PollFd::new(self.fd(), PollFlags::POLLIN)];
            match poll(&mut fds, timeout(left)) {
                Ok(_) | Err(Errno::EINTR) => self.drain(),
                Err(_) => return Ok(()),
            }
        }
    }
}

/// A `poll(2)` timeout for `duration`, rounded up to whole milliseconds and
/// capped at `i32::MAX` ms.
pub fn timeout(duration: Duration) -> PollTimeout {
    let ms = duration.as_micros().div_ceil(1000);
    PollTimeout::try_from(i32::try_from(ms).unwrap_or(i32::MAX)).unwrap_or(PollTimeout::MAX)
}

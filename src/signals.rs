//! Signals through signal-hook's self-pipe, so that one `poll(2)` waits for
//! input and signals at once (the pattern of `signal_hook::low_level::pipe`).
//!
//! [`Signals::install`] registers, once and before any `fork`:
//! - `SIGCHLD`, `SIGINT`, `SIGTERM`, `SIGHUP`: each writes a byte to the pipe;
//! - `SIGINT`, `SIGTERM`, `SIGHUP` also record their number, so the process
//!   can end with status 128+N (the "Signals" rule);
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
}

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
        })
    }

    /// Adds `sig` to the signals that wake [`Signals::fd`], setting `flag`
    /// first (the terminal editor's `SIGWINCH`, `SIGTSTP`, `SIGCONT`:
    /// [`crate::editor::after_signals`] acts on them). Errors: registering
    /// the handler failed.
    pub fn watch(&self, sig: i32, flag: &Arc<AtomicBool>) -> io::Result<()> {
        signal_hook::flag::register(sig, Arc::clone(flag))?;
        signal_hook::flag::register(sig, Arc::clone(&self.pending))?;
        signal_hook::low_level::pipe::register(sig, self.write.try_clone()?)?;
        Ok(())
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
        // Ctrl-Z, fg and resizes for the line editor, wherever we waited.
        crate::editor::after_signals();
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

/// Restores the default action of the terminating signals and of `SIGCHLD`
/// in a freshly forked child, which copies with blocking calls and has no
/// poll loop: SIGINT (Ctrl-C reaches the whole process group), SIGTERM and
/// SIGHUP then end it at once; Ctrl-Z stops it (`SIGTSTP`, `SIGCONT` and
/// `SIGWINCH` are the terminal editor's, caught only by the parent).
/// `SIGPIPE` stays ignored.
pub fn reset_in_child() {
    let editor = crate::editor::CHILD_DEFAULTS;
    for sig in TERMINATING.into_iter().chain([SIGCHLD]).chain(editor) {
        // SAFETY: restoring SIG_DFL installs no handler code; the child is
        // single-threaded (fork copies only the calling thread).
        unsafe { libc::signal(sig, libc::SIG_DFL) };
    }
}

/// The line the receiving child prints when its parent dies, and the
/// parent's pid, set once by [`die_with_parent`] before the handler exists.
static ORPHAN: OnceLock<(Box<[u8]>, libc::pid_t)> = OnceLock::new();

/// The signal the kernel sends the receiving child when its parent dies
/// (`PR_SET_PDEATHSIG`): one of its own, so that the `SIGTERM` the parent
/// sends at the end of a session is not taken for its death.
pub const PARENT_DEATH: i32 = libc::SIGUSR1;

/// In a freshly forked child: asks the kernel for [`PARENT_DEATH`] should
/// `parent` die (`PR_SET_PDEATHSIG`, Linux), and handles it by writing one
/// line, `PROGRAM: the sending process (pid N) died: session ended`, and
/// leaving with `_exit(1)`, so the child never outlives its parent and the
/// user is told. If the parent is already gone, does the same at once.
///
/// Errors: `sigaction(2)` or `prctl(2)` failed.
pub fn die_with_parent(parent: libc::pid_t) -> Result<(), Errno> {
    let line = format!(
        "{}: the sending process (pid {parent}) died: session ended\n",
        crate::messages::program()
    );
    let _ = ORPHAN.set((line.into_bytes().into_boxed_slice(), parent));
    // SAFETY: the handler only calls getppid, write and _exit, which are
    // async-signal-safe, and reads ORPHAN, initialised above before the
    // handler is installed. sigaction is given a zeroed, valid struct.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_parent_death as *const () as libc::sighandler_t;
        libc::sigemptyset(&mut action.sa_mask);
        if libc::sigaction(PARENT_DEATH, &action, std::ptr::null_mut()) != 0 {
            return Err(Errno::last());
        }
    }
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGUSR1)?;
    // SAFETY: getppid cannot fail; the parent may have died before the
    // request above was made, in which case no signal will come.
    if unsafe { libc::getppid() } != parent {
        on_parent_death(PARENT_DEATH);
    }
    Ok(())
}

/// The [`PARENT_DEATH`] handler: see [`die_with_parent`]. A stray
/// `SIGUSR1` while the parent lives is ignored.
extern "C" fn on_parent_death(_sig: libc::c_int) {
    let Some((line, parent)) = ORPHAN.get() else {
        return;
    };
    // SAFETY: getppid, write and _exit are async-signal-safe; `line` lives
    // in a static that is never changed after it is set.
    unsafe {
        if libc::getppid() == *parent {
            return;
        }
        // The parent cannot restore the terminal any more: we do.
        crate::editor::restore_from_handler();
        libc::write(libc::STDERR_FILENO, line.as_ptr().cast(), line.len());
        libc::_exit(1);
    }
}

/// A `poll(2)` timeout for `duration`, rounded up to whole milliseconds and
/// capped at `i32::MAX` ms.
pub fn timeout(duration: Duration) -> PollTimeout {
    let ms = duration.as_micros().div_ceil(1000);
    PollTimeout::try_from(i32::try_from(ms).unwrap_or(i32::MAX)).unwrap_or(PollTimeout::MAX)
}

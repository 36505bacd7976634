//! `fork(2)` and the child's set-up, in one place: the duplex session
//! ([`crate::session::duplex`], worksheet question 4) and the services
//! ([`crate::service`]) fork through [`fork`] and nowhere else, and their
//! children leave through [`exit`].
//!
//! # One thread
//!
//! `fork` copies only the calling thread. Had another thread held a lock at
//! that moment (the allocator's, standard error's), the lock would stay
//! taken for ever in the child, whose first allocation could then hang:
//! POSIX allows only async-signal-safe calls in the child of a
//! multithreaded process. Our children allocate (a copy buffer of
//! `pump::BUF_SIZE`, the output state, relay pipes, message lines), which
//! is sound only because the process has one thread when it forks. The binaries never
//! start one (signal-hook's pipe and flag actions need none), and [`fork`]
//! checks it every time (`/proc/self/task` has one entry: [`Threads`]), so that a
//! program that calls the library from a second thread gets a clear error
//! instead of a child that may hang.
//!
//! # The child's set-up
//!
//! 1. Every signal is blocked around `fork` (in both processes), so that
//!    no signal is handled in the child by the handlers it inherited, which
//!    would record it for a poll loop the child does not have: it waits,
//!    pending, until step 4.
//! 2. The default actions of SIGINT, SIGTERM, SIGHUP and SIGCHLD come
//!    back (and those of the terminal's SIGWINCH, SIGTSTP and SIGCONT,
//!    so that Ctrl-Z stops the child): the child copies with blocking calls and no poll loop, so these
//!    end it at once (Ctrl-C reaches the whole process group; the parent
//!    stops its children with SIGTERM). `SIGPIPE` stays ignored. If the
//!    parent had received a terminating signal and not yet acted on it, the
//!    child leaves at once: the parent is stopping.
//! 3. The child asks the kernel for [`PARENT_DEATH`] should the parent die
//!    (`PR_SET_PDEATHSIG`, Linux), and handles it by writing the caller's
//!    one line (`PROGRAM: the sending process (pid N) died: session
//!    ended`), after restoring the terminal's modes when the line editor
//!    had set them ([`crate::terminal::restore_from_handler`]), and leaving
//!    with status 1, so that no orphan keeps a socket
//!    open and the user is told. If the parent died before the request was
//!    made (the race the request alone misses), it does so at once.
//! 4. The signal mask of before the fork comes back.

use std::sync::atomic::{AtomicI32, AtomicPtr, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};

use nix::dir::Dir;
use nix::fcntl::OFlag;
use nix::sys::signal::{SigSet, SigmaskHow, sigprocmask};
use nix::sys::stat::Mode;
use nix::unistd::{ForkResult, Pid, getpid};

use crate::error::Error;
use crate::report;
use crate::signals::{Signals, TERMINATING};

/// What [`fork`] returned, in each of the two processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Forked {
    /// In the parent: the child's pid.
    Parent(Pid),
    /// In the child, set up as the module documentation says. It must
    /// leave through [`exit`], never by returning through `main`.
    Child,
}

/// The signal the kernel sends a child when its parent dies
/// (`PR_SET_PDEATHSIG`): one of its own, so that the `SIGTERM` a parent
/// sends at the end of a session is not taken for its death.
pub const PARENT_DEATH: i32 = libc::SIGUSR1;

/// Forks, after checking that the process has one thread, and sets the
/// child up (module documentation). `orphan` is what the child says, on
/// standard error after `PROGRAM: `, should its parent die first: name the
/// parent's pid ([`getpid`] before the call) and what ends.
///
/// In the child, returns [`Forked::Child`] once it is set up; a child that
/// must not go on (its parent is stopping or already dead, or the set-up
/// failed, which it reports) leaves through `_exit(1)` instead.
///
/// Errors: [`Error::Msg`] when the process has more than one thread (or
/// `/proc/self/task` cannot be read to tell); [`Error::Sys`] when
/// `sigprocmask` or `fork` fails.
pub(crate) fn fork(signals: &Signals, orphan: &str) -> Result<Forked, Error> {
    threads().single()?;
    let parent = getpid();
    // Built before the fork: the handler of PARENT_DEATH only reads it.
    let line = format!("{}: {orphan}\n", crate::messages::program()).into_bytes();
    let mut before = SigSet::empty();
    sigprocmask(
        SigmaskHow::SIG_BLOCK,
        Some(&SigSet::all()),
        Some(&mut before),
    )
    .map_err(|e| Error::sys("sigprocmask", e))?;
    // SAFETY: the process has one thread (checked just above; only a
    // thread can start another, and this one starts none in between), so
    // the child is a whole and consistent copy of it: no lock, the
    // allocator's or standard error's, can be held by a thread that does
    // not exist in the child, which may allocate and format as the parent
    // does. The child leaves through `exit` (`_exit`), as `Forked::Child`
    // requires of every caller.
    let child = match unsafe { nix::unistd::fork() } {
        Ok(ForkResult::Child) => {
            set_up_child(signals, parent, line, &before);
            return Ok(Forked::Child);
        }
        Ok(ForkResult::Parent { child }) => Ok(child),
        Err(e) => Err(e),
    };
    // In the parent: signals that arrived meanwhile are handled now.
    let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&before), None);
    child.map(Forked::Parent).map_err(|e| Error::sys("fork", e))
}

/// Ends a forked child with status `code`, through `_exit(2)`: the
/// parent's destructors, atexit handlers and buffers are not run or
/// flushed a second time.
pub(crate) fn exit(code: i32) -> ! {
    // SAFETY: _exit only ends the process; nothing of the parent's is run.
    unsafe { libc::_exit(code) }
}

/// The threads of this process, opened by [`prepare`] (or by the first
/// [`fork`], if nothing called it).
static THREADS: OnceLock<Threads> = OnceLock::new();

fn threads() -> &'static Threads {
    THREADS.get_or_init(Threads::open)
}

/// In a forked child that will fork again (a service's child forking its
/// TLS pump): opens `/proc/self/task` for this process, since the one it
/// inherited is its parent's, which [`fork`] refuses.
pub(crate) fn prepare_again() {
    threads().reopen();
}

/// Opens `/proc/self/task`, which [`fork`] reads to count the threads.
/// Call once at set-up, beside
/// [`Signals::install`](crate::signals::Signals::install), before any
/// connection: counting then needs no new descriptor, so a server that
/// has just accepted with its last free descriptor can still fork.
pub(crate) fn prepare() {
    threads();
}

/// The threads of this process, as `/proc/self/task` (proc(5)) lists them,
/// one entry per thread. The directory is opened once ([`prepare`]) and
/// read again before every fork.
#[derive(Debug)]
pub(crate) struct Threads {
    /// The open directory, and the pid it belongs to (`self` is resolved
    /// when it is opened); `None` if it could not be opened.
    task: Mutex<Option<(Pid, Dir)>>,
}

impl Threads {
    /// Opens `/proc/self/task`; a failure is kept for [`Threads::single`]
    /// to report.
    pub(crate) fn open() -> Threads {
        let task = Dir::open(
            "/proc/self/task",
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        );
        Threads {
            task: Mutex::new(task.ok().map(|dir| (getpid(), dir))),
        }
    }

    /// Opens `/proc/self/task` again for this process: a forked child that
    /// will fork again calls it first (the directory it inherited is its
    /// parent's, which [`Threads::single`] refuses).
    fn reopen(&self) {
        let task = Dir::open(
            "/proc/self/task",
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        );
        *self.task.lock().unwrap_or_else(PoisonError::into_inner) =
            task.ok().map(|dir| (getpid(), dir));
    }

    /// Errors unless the process has exactly one thread.
    ///
    /// Errors: [`Error::Msg`] naming the count, or why it could not be
    /// read.
    pub(crate) fn single(&self) -> Result<(), Error> {
        let unknown = |why: &str| {
            Error::Msg(format!(
                "cannot fork: cannot tell whether the process has one thread: \
                 /proc/self/task: {why}"
            ))
        };
        let mut task = self.task.lock().unwrap_or_else(PoisonError::into_inner);
        let Some((pid, dir)) = task.as_mut() else {
            return Err(unknown("cannot be opened"));
        };
        if *pid != getpid() {
            // A child that forks again: its own directory, not its parent's.
            return Err(unknown("opened by another process"));
        }
        let mut threads = 0;
        for entry in dir.iter() {
            let entry = entry.map_err(|e| unknown(e.desc()))?;
            if !matches!(entry.file_name().to_bytes(), b"." | b"..") {
                threads += 1;
            }
        }
        match threads {
            1 => Ok(()),
            n => Err(Error::Msg(format!(
                "cannot fork: the process has {n} threads, and its child would \
                 inherit their locks (fork is sound here only with one thread)"
            ))),
        }
    }
}

/// The line the child writes when its parent dies (its bytes and length)
/// and the parent's pid, set by [`set_up_child`] while every signal is
/// blocked, before the handler can run. Atomics rather than a `OnceLock`:
/// a child that forks again (a service's child forking its TLS pump) sets
/// them anew in its own child. Each line is leaked on purpose: the handler
/// may read it until the process ends.
static ORPHAN_LINE: AtomicPtr<u8> = AtomicPtr::new(std::ptr::null_mut());
static ORPHAN_LEN: AtomicUsize = AtomicUsize::new(0);
static ORPHAN_PARENT: AtomicI32 = AtomicI32::new(0);

/// Steps 2 to 4 of the module documentation, in the child.
fn set_up_child(signals: &Signals, parent: Pid, line: Vec<u8>, before: &SigSet) {
    // The terminal's SIGWINCH, SIGTSTP and SIGCONT are the parent's:
    // Ctrl-Z must stop the child as it stops any program.
    let editor = crate::terminal::CHILD_DEFAULTS;
    for sig in TERMINATING.into_iter().chain([libc::SIGCHLD]).chain(editor) {
        // SAFETY: restoring SIG_DFL installs no handler code.
        unsafe { libc::signal(sig, libc::SIG_DFL) };
    }
    if signals.terminated().is_some() {
        exit(1);
    }
    let line: &'static mut [u8] = Box::leak(line.into_boxed_slice());
    ORPHAN_LEN.store(line.len(), Ordering::SeqCst);
    ORPHAN_LINE.store(line.as_mut_ptr(), Ordering::SeqCst);
    ORPHAN_PARENT.store(parent.as_raw(), Ordering::SeqCst);
    if let Err(e) = die_with_parent() {
        report!("prctl PR_SET_PDEATHSIG: {}", e.desc());
        exit(1);
    }
    let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(before), None);
}

/// Installs the [`PARENT_DEATH`] handler and asks the kernel for that
/// signal when the parent dies; if the parent already died, acts at once.
/// Errors: `sigaction(2)` or `prctl(2)` failed.
fn die_with_parent() -> Result<(), nix::errno::Errno> {
    // SAFETY: the handler only calls getppid, write and _exit, which are
    // async-signal-safe, and reads ORPHAN_LINE, ORPHAN_LEN and
    // ORPHAN_PARENT, set before the handler is installed. sigaction is
    // given a zeroed, valid struct.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_parent_death as *const () as libc::sighandler_t;
        libc::sigemptyset(&mut action.sa_mask);
        if libc::sigaction(PARENT_DEATH, &action, std::ptr::null_mut()) != 0 {
            return Err(nix::errno::Errno::last());
        }
    }
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGUSR1)?;
    // The parent may have died before the request was made, in which case
    // no signal will come: the handler checks getppid itself.
    on_parent_death(PARENT_DEATH);
    Ok(())
}

/// The [`PARENT_DEATH`] handler (module documentation, step 3). A
/// `SIGUSR1` while the parent lives is ignored.
extern "C" fn on_parent_death(_sig: libc::c_int) {
    let (line, len) = (
        ORPHAN_LINE.load(Ordering::SeqCst),
        ORPHAN_LEN.load(Ordering::SeqCst),
    );
    let parent = ORPHAN_PARENT.load(Ordering::SeqCst);
    if line.is_null() {
        return;
    }
    // SAFETY: getppid, write and _exit are async-signal-safe; `line` and
    // `len` describe a leaked allocation that is never freed or changed
    // (set before the handler was installed in this process).
    unsafe {
        if libc::getppid() == parent {
            return;
        }
        // The parent cannot restore the terminal any more: the child does
        // (async-signal-safe: write(2) and tcsetattr only).
        crate::terminal::restore_from_handler();
        libc::write(libc::STDERR_FILENO, line.cast(), len);
        libc::_exit(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test harness runs each test on a thread of its own: this
    /// process has at least two, and the check must say so (without ever
    /// forking here).
    #[test]
    fn a_second_thread_is_refused_with_the_count() {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let extra = std::thread::spawn(move || rx.recv());
        let err = Threads::open().single().expect_err("several threads run");
        let text = err.to_string();
        assert!(text.starts_with("cannot fork: the process has "), "{text}");
        assert!(text.contains(" threads"), "{text}");
        drop(tx);
        let _ = extra.join();
    }
}

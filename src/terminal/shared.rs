//! The state the two processes of a duplex session share: one anonymous
//! `MAP_SHARED` mapping made before `fork()`, holding a process-shared
//! lock and what the region shows ([`State`]). This is the worksheet's
//! "lock around a shared resource", between two processes instead of two
//! threads: the resource is the bottom of the terminal.
//!
//! - The **lock** is a POSIX mutex in the mapping, `PTHREAD_PROCESS_SHARED`
//!   (it works across `fork`, where both processes see the same memory) and
//!   `PTHREAD_MUTEX_ROBUST`: if a process dies holding it (`kill -9` in the
//!   middle of a redraw), the next `pthread_mutex_lock` returns
//!   `EOWNERDEAD` instead of waiting forever; the survivor marks it
//!   consistent and redraws from the state, which is always whole between
//!   two writes of one field. No thread is involved.
//! - Whoever holds the lock may write to the terminal: the parent when a
//!   key changes the line, the child when bytes arrive, either one for a
//!   status line. Each draw is built in memory and written with one
//!   `write(2)`, so a signal never leaves half an escape sequence.
//! - [`Shared::lock_within`] gives up after a bound: the parent's Ctrl-Z
//!   path uses it, since the child may have been stopped by the same
//!   Ctrl-Z while it held the lock.

use std::io;
use std::ptr::NonNull;
use std::time::Duration;

use super::render::Drawn;

/// The most bytes a typed line may hold (32 KiB): one more is refused
/// with the terminal bell ([`crate::editor::line`]). Sized so the whole
/// line fits in the mapping, and far beyond what a person types.
pub const LINE_MAX: usize = 32 * 1024;

/// The most bytes of typed-ahead lines shown in the region (lockstep,
/// `chatd` with nobody connected); more are sent all the same, only not
/// shown until then.
pub const PENDING_MAX: usize = 8 * 1024;
/// The most bytes of the peer's unfinished line kept in the region; more
/// are printed for good (less than a row stays: see
/// [`super::render::full_rows`]).
pub const PARTIAL_MAX: usize = 4 * 1024;
/// The most bytes of the prompt.
pub const PROMPT_MAX: usize = 64;

/// What the region shows, and where it was drawn. Plain data (`#[repr(C)]`,
/// no pointers), since it lives in memory mapped at the same address in
/// both processes but owned by neither.
#[repr(C)]
pub struct State {
    /// Whether the line editor is on: the prompt and line are shown.
    pub editing: bool,
    /// Colours on (a terminal, `NO_COLOR` unset).
    pub colour: bool,
    /// The last byte written above the region (by either process) ended a
    /// line, or nothing was written yet: a status line needs no newline
    /// first (a status line always starts on a fresh line).
    pub at_line_start: bool,
    /// Where the region was drawn.
    pub drawn: Drawn,
    prompt: [u8; PROMPT_MAX],
    prompt_len: usize,
    line: [u8; LINE_MAX],
    line_len: usize,
    /// The cursor in `line`, a byte offset.
    pub cursor: usize,
    pending: [u8; PENDING_MAX],
    pending_len: usize,
    partial: [u8; PARTIAL_MAX],
    partial_len: usize,
}

impl State {
    /// The prompt.
    pub fn prompt(&self) -> &[u8] {
        &self.prompt[..self.prompt_len]
    }

    /// Sets the prompt (cut to [`PROMPT_MAX`] bytes).
    pub fn set_prompt(&mut self, prompt: &[u8]) {
        self.prompt_len = copy(&mut self.prompt, prompt);
    }

    /// The line under edit.
    pub fn line(&self) -> &[u8] {
        &self.line[..self.line_len]
    }

    /// Sets the line under edit and the cursor (a byte offset).
    pub fn set_line(&mut self, line: &[u8], cursor: usize) {
        self.line_len = copy(&mut self.line, line);
        self.cursor = cursor.min(self.line_len);
    }

    /// The typed-ahead lines, each ending with `\n`.
    pub fn pending(&self) -> &[u8] {
        &self.pending[..self.pending_len]
    }

    /// Sets the typed-ahead lines shown (whole lines, as many as fit).
    pub fn set_pending(&mut self, lines: &[u8]) {
        let mut len = lines.len().min(PENDING_MAX);
        if len < lines.len() {
            len = lines[..len]
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |i| i + 1);
        }
        self.pending_len = copy(&mut self.pending, &lines[..len]);
    }

    /// The peer's unfinished line.
    pub fn partial(&self) -> &[u8] {
        &self.partial[..self.partial_len]
    }

    /// Appends to the peer's unfinished line as much of `text` as fits and
    /// returns how many bytes were taken.
    pub fn push_partial(&mut self, text: &[u8]) -> usize {
        let n = text.len().min(PARTIAL_MAX - self.partial_len);
        self.partial[self.partial_len..self.partial_len + n].copy_from_slice(&text[..n]);
        self.partial_len += n;
        n
    }

    /// Takes the first `n` bytes out of the peer's unfinished line.
    pub fn drop_partial(&mut self, n: usize) {
        let n = n.min(self.partial_len);
        self.partial.copy_within(n..self.partial_len, 0);
        self.partial_len -= n;
    }
}

fn copy(to: &mut [u8], from: &[u8]) -> usize {
    let n = from.len().min(to.len());
    to[..n].copy_from_slice(&from[..n]);
    n
}

/// The mapping and its lock. Made once, before the first `fork()`; both
/// processes use it through the same address. It is never unmapped: it
/// lives as long as the program.
#[derive(Debug)]
pub struct Shared {
    ptr: NonNull<Shm>,
}

#[repr(C)]
struct Shm {
    mutex: libc::pthread_mutex_t,
    state: State,
}

// SAFETY: every access to the state goes through the process-shared
// mutex; the pointer itself is never changed.
unsafe impl Send for Shared {}
// SAFETY: as above.
unsafe impl Sync for Shared {}

impl Shared {
    /// Maps the shared state (zeroed: nothing shown, no line) and
    /// initialises its robust, process-shared mutex.
    ///
    /// Errors: `mmap(2)` or a `pthread_mutex*` call failed.
    pub fn new() -> io::Result<Shared> {
        let size = std::mem::size_of::<Shm>();
        // SAFETY: an anonymous mapping of `size` bytes, zero-filled by the
        // kernel; no file or existing memory is involved.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                size,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = NonNull::new(ptr.cast::<Shm>()).ok_or_else(io::Error::last_os_error)?;
        // SAFETY: `ptr` points to `size` writable bytes that nobody else
        // uses yet; the attribute object lives on this stack frame and is
        // destroyed after the mutex is initialised from it. All-zero bytes
        // are a valid `State` (false, zero lengths, empty arrays).
        unsafe {
            let mut attr: libc::pthread_mutexattr_t = std::mem::zeroed();
            check(libc::pthread_mutexattr_init(&mut attr))?;
            let set = check(libc::pthread_mutexattr_setpshared(
                &mut attr,
                libc::PTHREAD_PROCESS_SHARED,
            ))
            .and_then(|()| {
                check(libc::pthread_mutexattr_setrobust(
                    &mut attr,
                    libc::PTHREAD_MUTEX_ROBUST,
                ))
            })
            .and_then(|()| {
                check(libc::pthread_mutex_init(
                    &raw mut (*ptr.as_ptr()).mutex,
                    &attr,
                ))
            });
            libc::pthread_mutexattr_destroy(&mut attr);
            set?;
            (*ptr.as_ptr()).state.at_line_start = true;
        }
        Ok(Shared { ptr })
    }

    /// Takes the lock, waiting as long as needed. A holder that died
    /// (`EOWNERDEAD`) leaves it to us, consistent again.
    pub fn lock(&self) -> Guard<'_> {
        // SAFETY: the mutex was initialised in `new` and the mapping is
        // never unmapped.
        let rc = unsafe { libc::pthread_mutex_lock(self.mutex()) };
        self.locked(rc).unwrap_or(Guard {
            shared: self,
            held: false,
        })
    }

    /// Takes the lock, waiting at most `limit`; `None` if its holder kept
    /// it that long (a process stopped while it drew).
    pub fn lock_within(&self, limit: Duration) -> Option<Guard<'_>> {
        let mut now: libc::timespec = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `now` is a valid timespec to write to.
        unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut now) };
        let nanos = now.tv_nsec + i64::from(limit.subsec_nanos());
        let secs = now
            .tv_sec
            .saturating_add(i64::try_from(limit.as_secs()).unwrap_or(i64::MAX))
            .saturating_add(nanos / 1_000_000_000);
        let deadline = libc::timespec {
            tv_sec: secs,
            tv_nsec: nanos % 1_000_000_000,
        };
        // SAFETY: as in `lock`; `deadline` is a valid absolute time.
        let rc = unsafe { libc::pthread_mutex_timedlock(self.mutex(), &deadline) };
        self.locked(rc)
    }

    fn locked(&self, rc: libc::c_int) -> Option<Guard<'_>> {
        match rc {
            0 => Some(Guard {
                shared: self,
                held: true,
            }),
            libc::EOWNERDEAD => {
                // SAFETY: we hold the mutex (EOWNERDEAD means it is ours).
                unsafe { libc::pthread_mutex_consistent(self.mutex()) };
                Some(Guard {
                    shared: self,
                    held: true,
                })
            }
            _ => None,
        }
    }

    fn mutex(&self) -> *mut libc::pthread_mutex_t {
        // SAFETY: `ptr` is valid for the life of the program.
        unsafe { &raw mut (*self.ptr.as_ptr()).mutex }
    }

    /// The state, read without the lock: only for the parent-death
    /// handler of the child, which must not wait (its parent may have died
    /// holding the lock, and the handler may have interrupted this very
    /// process inside it). Fields may be mid-update; the handler only reads
    /// small integers from them.
    pub fn state_unlocked(&self) -> &State {
        // SAFETY: the mapping is valid for the life of the program; a torn
        // read of plain integers is harmless to the caller.
        unsafe { &(*self.ptr.as_ptr()).state }
    }
}

fn check(rc: libc::c_int) -> io::Result<()> {
    match rc {
        0 => Ok(()),
        e => Err(io::Error::from_raw_os_error(e)),
    }
}

/// The lock, held: derefs to the [`State`]; dropping it unlocks.
pub struct Guard<'a> {
    shared: &'a Shared,
    /// `false` only if `pthread_mutex_lock` failed in a way it never does
    /// on a valid mutex (`EINVAL`): the state is then used unlocked.
    held: bool,
}

impl std::ops::Deref for Guard<'_> {
    type Target = State;
    fn deref(&self) -> &State {
        // SAFETY: the lock is held (or, see `held`, cannot be had at all).
        unsafe { &(*self.shared.ptr.as_ptr()).state }
    }
}

impl std::ops::DerefMut for Guard<'_> {
    fn deref_mut(&mut self) -> &mut State {
        // SAFETY: as in `deref`; one guard at a time in this process.
        unsafe { &mut (*self.shared.ptr.as_ptr()).state }
    }
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        if self.held {
            // SAFETY: this process holds the mutex.
            unsafe { libc::pthread_mutex_unlock(self.shared.mutex()) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_starts_empty_at_a_line_start() {
        let shared = Shared::new().unwrap();
        let state = shared.lock();
        assert!(state.at_line_start && !state.editing && !state.drawn.shown);
        assert!(state.line().is_empty() && state.partial().is_empty());
    }

    #[test]
    fn fields_keep_their_bounds() {
        let shared = Shared::new().unwrap();
        let mut state = shared.lock();
        state.set_line(b"hello", 99);
        assert_eq!((state.line(), state.cursor), (&b"hello"[..], 5));
        state.set_prompt(&[b'p'; 100]);
        assert_eq!(state.prompt().len(), PROMPT_MAX);
        let many = b"0123456789\n".repeat(1000);
        state.set_pending(&many);
        assert!(state.pending().len() <= PENDING_MAX && state.pending().ends_with(b"\n"));
        assert_eq!(state.push_partial(&[b'x'; PARTIAL_MAX + 5]), PARTIAL_MAX);
        state.drop_partial(PARTIAL_MAX - 2);
        assert_eq!(state.partial(), b"xx");
    }

    #[test]
    fn the_lock_excludes_and_times_out() {
        let shared = Shared::new().unwrap();
        let (taken, release) = (std::sync::Barrier::new(2), std::sync::Barrier::new(2));
        std::thread::scope(|scope| {
            scope.spawn(|| {
                let _held = shared.lock();
                taken.wait();
                release.wait();
            });
            taken.wait();
            // Another holder (a thread here, the other process in use):
            // the bounded lock gives up.
            let started = std::time::Instant::now();
            assert!(shared.lock_within(Duration::from_millis(50)).is_none());
            assert!(started.elapsed() >= Duration::from_millis(40));
            release.wait();
        });
        assert!(shared.lock_within(Duration::from_millis(50)).is_some());
    }

    #[test]
    fn a_holder_that_dies_leaves_the_lock_usable() {
        let shared = Shared::new().unwrap();
        std::thread::scope(|scope| {
            scope.spawn(|| {
                let mut state = shared.lock();
                state.set_line(b"half", 4);
                // Ends without unlocking, as a process killed mid-draw.
                std::mem::forget(state);
            });
        });
        let state = shared
            .lock_within(Duration::from_secs(5))
            .expect("EOWNERDEAD hands the lock over");
        assert_eq!(state.line(), b"half");
        drop(state);
        assert!(shared.lock_within(Duration::from_millis(50)).is_some());
    }
}

//! The terminal of a person: its modes, the screen the two processes of a
//! session share, and getting the terminal back on every way out: what you
//! are typing is never garbled by what arrives, their lines and yours can
//! be told apart, and the terminal's modes always come back.
//! Status lines ([`crate::messages`]) and the forked child
//! ([`crate::fork`]) use this layer without knowing the line editor
//! ([`crate::editor`]), which sits above it: the editor tells this
//! module what to draw ([`Terminal::show`], [`Terminal::commit`]).
//!
//! # When
//!
//! Only when standard input and standard output are the same terminal,
//! without `--raw`, and `TERM` is not `dumb`. With a pipe, a file or
//! `--raw` nothing here runs and the bytes stay exact. When standard
//! output and standard error are the same terminal (standard input
//! elsewhere: `chat host < file`), only the fresh-line rule for status
//! lines applies ([`Terminal::status`]).
//!
//! # The design: two processes, one screen
//!
//! The duplex session keeps the worksheet's `fork()`: the **parent** reads
//! standard input and the **child** copies the socket to standard output.
//! Both write to the same terminal, so they share what its bottom shows,
//! the *region* ([`render`]): the peer's unfinished line, if any, then the
//! prompt (`chat> `) and the line being typed.
//!
//! - The parent puts the terminal in non-canonical mode without echo
//!   (`ISIG` kept: Ctrl-C, Ctrl-Z and Ctrl-\ stay signals); the line
//!   editor ([`crate::editor`]) reads keys and edits the line, and, under
//!   the lock, the line and cursor are copied into the shared state and
//!   the region redrawn.
//!   Enter prints the line for good above the region, behind the prompt,
//!   which stays as the mark of your lines, and hands it to the session's
//!   [`crate::session::Input`], which sends it as it sent what canonical
//!   mode gave (protocol words, `--crlf`, what carries over to the next
//!   client).
//! - The child, when bytes arrive, cleans them as before
//!   ([`crate::display`], unchanged), then under the lock clears the
//!   region, prints the finished lines (in the peer's colour), and redraws
//!   the region from the shared state: the half-typed line comes back
//!   intact, the cursor where it was.
//! - The shared state is one anonymous `MAP_SHARED` mapping made before
//!   the first `fork()` ([`shared`]), guarded by a robust, process-shared
//!   POSIX mutex: the worksheet's "lock around a shared resource", between
//!   two processes. No thread anywhere.
//! - Status lines (`chat: …`) of either process go through the same lock
//!   and always start on a fresh line.
//!
//! # Getting the terminal back
//!
//! The original modes are saved once ([`setup`]) and restored on every way
//! out, always after the terminal's input queue is flushed
//! (`tcflush(TCIFLUSH)`): keys typed into the program and not read by it
//! would otherwise be read by the shell, which would run a command typed
//! for the peer. The ways out: a normal end or an error (the [`Restore`] guard of `chat` and
//! `chatd`), Ctrl-C, `SIGTERM`, `SIGHUP` (they end the parent's loops with
//! [`crate::Error::Signal`], so the guard runs), the child killed (the
//! parent reaps it and ends the same way; a lock it held is handed over by
//! `EOWNERDEAD`), and the parent killed with `SIGKILL`: the child, told by
//! `PR_SET_PDEATHSIG`, restores the modes from its signal handler
//! ([`restore_from_handler`]) before it exits. Ctrl-Z (`SIGTSTP`, caught)
//! clears the region and restores the modes before the parent stops
//! itself; `SIGCONT` (`fg`) sets them again and redraws. `SIGWINCH`
//! redraws at the new width.
//!
//! # End of input
//!
//! Ctrl-D on an empty line ends what is sent, not the session: the peer
//! may still talk. The prompt goes ([`Terminal::end_input`]) but the
//! editor's modes stay until the program (or, in `chatd`, the session)
//! ends, so that nothing typed after it is echoed as if it were taken, and
//! nothing reaches the shell in canonical mode: the keys wait unread in the
//! input queue, and are flushed on the way out.

pub mod glyph;
pub mod render;
pub mod shared;

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::termios::{
    self, FlushArg, InputFlags, LocalFlags, SetArg, SpecialCharacterIndices, Termios,
};

use crate::pump::{self, stdin, stdout};
use crate::signals::Signals;
use shared::{Shared, State};

/// The terminal of this program, once [`setup`] found one.
static TERMINAL: OnceLock<Terminal> = OnceLock::new();

/// The terminal that standard output is, shared by the two processes of a
/// session (it is set up before the first `fork()`).
#[derive(Debug)]
pub struct Terminal {
    shared: Shared,
    /// A descriptor of the terminal that the parent keeps even after it
    /// gives up its standard output (`chat`'s single session).
    fd: OwnedFd,
    /// The modes found at start, restored on the way out; `None` when
    /// standard input is not this terminal (no editor).
    saved: Option<libc::termios>,
    /// Standard error is this terminal: status lines go through
    /// [`Terminal::status`].
    statuses: bool,
    /// This process set the editor's modes (process-local).
    raw: AtomicBool,
    winch: Arc<AtomicBool>,
    tstp: Arc<AtomicBool>,
    cont: Arc<AtomicBool>,
}

/// The terminal set up by [`setup`], if any.
pub fn terminal() -> Option<&'static Terminal> {
    TERMINAL.get()
}

/// Whether two descriptors are the same terminal device.
fn same_terminal(a: BorrowedFd<'_>, b: BorrowedFd<'_>) -> bool {
    let tty = |fd| nix::unistd::isatty(fd).unwrap_or(false);
    if !tty(a) || !tty(b) {
        return false;
    }
    match (nix::sys::stat::fstat(a), nix::sys::stat::fstat(b)) {
        (Ok(x), Ok(y)) => x.st_rdev == y.st_rdev,
        _ => false,
    }
}

fn stderr() -> BorrowedFd<'static> {
    // SAFETY: descriptor 2 stays open for the life of the process (a closed
    // one only makes the checks below fail).
    unsafe { BorrowedFd::borrow_raw(libc::STDERR_FILENO) }
}

/// Restores the terminal when dropped: `chat` and `chatd` hold one for
/// their whole run ([`setup`]).
#[derive(Debug)]
#[must_use = "the terminal is restored when this is dropped"]
pub struct Restore(());

impl Drop for Restore {
    fn drop(&mut self) {
        if let Some(t) = terminal() {
            t.stop_editing();
        }
    }
}

/// Whether the line editor can run: standard input and standard output
/// are the same terminal, `raw` (`--raw`) is off, and `TERM` is not
/// `dumb` (what [`setup`] checks, for a caller that wants the terminal
/// only for the editor: `chatd --broker`).
pub fn editable(raw: bool) -> bool {
    !raw && std::env::var_os("TERM").is_none_or(|t| t != "dumb") && same_terminal(stdin(), stdout())
}

/// Sets up the terminal of this program, once, before any `fork()`: when
/// standard output is a terminal and `raw` (`--raw`) is off, and standard
/// input or standard error is the same terminal, and `TERM` is not `dumb`.
/// Registers `SIGWINCH`, `SIGTSTP` and `SIGCONT` with `signals` when the
/// editor can run (standard input is the terminal). Returns the guard that
/// restores the terminal, or `None` when there is no terminal to manage.
/// `prompt` is what the line editor shows before the line being typed
/// (`chat> `). Registers [`after_signals`] to run after every wake-up of
/// `signals` ([`Signals::after_drain`]).
pub fn setup(raw: bool, prompt: &str, signals: &Signals) -> Option<Restore> {
    if raw || std::env::var_os("TERM").is_some_and(|t| t == "dumb") {
        return None;
    }
    let (input, statuses) = (
        same_terminal(stdin(), stdout()),
        same_terminal(stderr(), stdout()),
    );
    if !input && !statuses {
        return None;
    }
    let fd = stdout().try_clone_to_owned().ok()?;
    let saved = if input {
        termios::tcgetattr(stdin()).ok().map(libc::termios::from)
    } else {
        None
    };
    let shared = Shared::new().ok()?;
    {
        let mut st = shared.lock();
        st.colour = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        st.set_prompt(prompt.as_bytes());
    }
    let t = Terminal {
        shared,
        fd,
        saved,
        statuses,
        raw: AtomicBool::new(false),
        winch: Arc::new(AtomicBool::new(false)),
        tstp: Arc::new(AtomicBool::new(false)),
        cont: Arc::new(AtomicBool::new(false)),
    };
    if t.saved.is_some() {
        for (sig, flag) in [
            (libc::SIGWINCH, &t.winch),
            (libc::SIGTSTP, &t.tstp),
            (libc::SIGCONT, &t.cont),
        ] {
            signals.watch(sig, flag).ok()?;
        }
    }
    signals.after_drain(after_signals);
    TERMINAL.set(t).ok()?;
    Some(Restore(()))
}

/// The signals a freshly forked child must take back to their default
/// action: the child has no poll loop, and Ctrl-Z must stop it.
pub const CHILD_DEFAULTS: [i32; 3] = [libc::SIGWINCH, libc::SIGTSTP, libc::SIGCONT];

/// After the signal self-pipe woke the parent (registered by [`setup`],
/// called by [`Signals::drain`]): Ctrl-Z suspends ([`Terminal::suspend`]), `SIGCONT`
/// takes the terminal back, `SIGWINCH` redraws.
pub fn after_signals() {
    let Some(t) = terminal() else {
        return;
    };
    if t.tstp.swap(false, Ordering::Relaxed) {
        t.suspend();
    }
    if t.cont.swap(false, Ordering::Relaxed) {
        t.resume();
    }
    if t.winch.swap(false, Ordering::Relaxed) {
        t.redraw();
    }
}

/// In the child's parent-death handler (`on_parent_death` in `fork.rs`):
/// moves below the region, discards what was typed and not read, and
/// restores the saved modes, without the lock (the dead parent may hold
/// it) and without allocating: only `write(2)`, `tcflush` and `tcsetattr`
/// (`ioctl`s), which are async-signal-safe.
pub fn restore_from_handler() {
    let Some(t) = TERMINAL.get() else {
        return;
    };
    let st = t.shared.state_unlocked();
    let fd = t.fd.as_raw_fd();
    if st.drawn.shown {
        let mut buf = [0u8; 16];
        let mut len = 0;
        let below = st.drawn.rows_below;
        if below > 0 {
            buf[..2].copy_from_slice(b"\x1b[");
            len = 2;
            let mut digits = [0u8; 5];
            let mut n = below;
            let mut d = 0;
            while n > 0 || d == 0 {
                digits[d] = b'0' + (n % 10) as u8;
                n /= 10;
                d += 1;
            }
            for i in (0..d).rev() {
                buf[len] = digits[i];
                len += 1;
            }
            buf[len] = b'B';
            len += 1;
        }
        buf[len..len + 2].copy_from_slice(b"\r\n");
        len += 2;
        // SAFETY: write(2) of a stack buffer, async-signal-safe.
        unsafe { libc::write(fd, buf.as_ptr().cast(), len) };
    } else if !st.at_line_start || !st.partial().is_empty() {
        // SAFETY: as above.
        unsafe { libc::write(fd, b"\r\n".as_ptr().cast(), 2) };
    }
    if let Some(saved) = &t.saved {
        // SAFETY: tcflush and tcsetattr are ioctls on an open descriptor
        // (with a valid termios), async-signal-safe. What was typed and
        // not read is discarded first: the shell must not run it.
        unsafe {
            libc::tcflush(fd, libc::TCIFLUSH);
            libc::tcsetattr(fd, libc::TCSANOW, saved);
        }
    }
}

impl Terminal {
    /// The terminal's size in columns and rows (80 × 24 if unknown).
    fn size(&self) -> (usize, usize) {
        // SAFETY: TIOCGWINSZ writes a winsize to a valid pointer.
        let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
        // SAFETY: as above; the descriptor is open.
        let rc = unsafe { libc::ioctl(self.fd.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) };
        if rc != 0 || ws.ws_col == 0 {
            return (80, 24);
        }
        (usize::from(ws.ws_col), usize::from(ws.ws_row.max(1)))
    }

    fn write(&self, bytes: &[u8]) -> Result<(), Errno> {
        pump::write_all(self.fd.as_fd(), bytes)
    }

    /// Whether standard error is this terminal.
    pub fn takes_status(&self) -> bool {
        self.statuses
    }

    /// Whether this process has set the editor's modes
    /// ([`Terminal::start_editing`], until [`Terminal::stop_editing`]).
    pub(crate) fn editing(&self) -> bool {
        self.raw.load(Ordering::Relaxed)
    }

    /// Whether the line editor can run (standard input is this terminal).
    pub fn can_edit(&self) -> bool {
        self.saved.is_some()
    }

    /// Draws the region from `st` (after a clear), if it shows anything.
    fn draw(&self, st: &mut State, cols: usize, lines: usize, out: &mut Vec<u8>) {
        if !st.editing && st.partial().is_empty() && st.pending().is_empty() {
            return;
        }
        let view = render::View {
            partial: st.partial(),
            pending: st.pending(),
            prompt: st.prompt(),
            line: st.line(),
            cursor: st.cursor,
            editing: st.editing,
            colour: st.colour,
        };
        let drawn = render::draw(&view, cols, lines, out);
        st.drawn = drawn;
    }

    /// Clears and draws the region again (the line changed, or the
    /// terminal's size).
    pub fn redraw(&self) {
        let (cols, lines) = self.size();
        let mut st = self.shared.lock();
        let mut out = Vec::new();
        render::clear(&mut st.drawn, cols, &mut out);
        self.draw(&mut st, cols, lines, &mut out);
        let _ = self.write(&out);
    }

    /// Prints `text` received from the peer (already cleaned by
    /// [`crate::display`]) above the region, in the peer's colour; the
    /// region is drawn again below it. An unfinished last line stays in the
    /// region until its newline comes (whole rows of it are printed for
    /// good), so the line being typed never shares a row with it.
    ///
    /// Errors: the `errno` of `write(2)` to the terminal.
    pub fn peer(&self, text: &[u8]) -> Result<(), Errno> {
        if text.is_empty() {
            return Ok(());
        }
        let (cols, lines) = self.size();
        let mut st = self.shared.lock();
        let mut out = Vec::with_capacity(text.len() + 256);
        render::clear(&mut st.drawn, cols, &mut out);
        let colour = st.colour;
        if !st.editing {
            render::peer_text(st.partial(), colour, &mut out);
            let n = st.partial().len();
            st.drop_partial(n);
            render::peer_text(text, colour, &mut out);
            st.at_line_start = text.ends_with(b"\n");
            self.draw(&mut st, cols, lines, &mut out);
            return self.write(&out);
        }
        let (done, mut rest) = match memchr::memrchr(b'\n', text) {
            Some(i) => text.split_at(i + 1),
            None => (&[][..], text),
        };
        if !done.is_empty() {
            render::peer_text(st.partial(), colour, &mut out);
            let n = st.partial().len();
            st.drop_partial(n);
            render::peer_text(done, colour, &mut out);
            st.at_line_start = true;
        }
        while !rest.is_empty() {
            let n = st.push_partial(rest);
            rest = &rest[n..];
            let cut = if n == 0 {
                st.partial().len()
            } else {
                render::full_rows(st.partial(), cols)
            };
            if cut > 0 {
                render::peer_text(&st.partial()[..cut], colour, &mut out);
                st.drop_partial(cut);
                st.at_line_start = false;
            }
        }
        self.draw(&mut st, cols, lines, &mut out);
        self.write(&out)
    }

    /// The peer's stream ended: its unfinished line, if any, is printed
    /// for good (the next status line starts on a fresh line after it).
    pub fn peer_end(&self) {
        let (cols, lines) = self.size();
        let mut st = self.shared.lock();
        if st.partial().is_empty() {
            return;
        }
        let mut out = Vec::new();
        render::clear(&mut st.drawn, cols, &mut out);
        let colour = st.colour;
        render::peer_text(st.partial(), colour, &mut out);
        let n = st.partial().len();
        st.drop_partial(n);
        st.at_line_start = false;
        if st.editing {
            out.extend_from_slice(b"\r\n");
            st.at_line_start = true;
        }
        self.draw(&mut st, cols, lines, &mut out);
        let _ = self.write(&out);
    }

    /// Writes a status line (`PROGRAM: what happened\n`) above the region,
    /// always starting on a fresh line: after the peer's unfinished line it
    /// first ends that row, so that a status line is never glued to text
    /// that had no newline.
    pub fn status(&self, line: &[u8]) {
        let (cols, lines) = self.size();
        let mut st = self.shared.lock();
        let mut out = Vec::with_capacity(line.len() + 64);
        render::clear(&mut st.drawn, cols, &mut out);
        if !st.partial().is_empty() {
            let colour = st.colour;
            render::peer_text(st.partial(), colour, &mut out);
            let n = st.partial().len();
            st.drop_partial(n);
            st.at_line_start = false;
        }
        if !st.at_line_start {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(line);
        st.at_line_start = line.ends_with(b"\n");
        self.draw(&mut st, cols, lines, &mut out);
        let _ = self.write(&out);
    }

    /// Prints one of our own lines for good above the region: the prompt
    /// (the mark of our lines), then the line as the editor showed it
    /// ([`render::committed`]: the same rows, a tab as the same blanks).
    pub(crate) fn commit(&self, text: &[u8]) {
        let (cols, lines) = self.size();
        let mut st = self.shared.lock();
        let mut out = Vec::with_capacity(text.len() + 64);
        render::clear(&mut st.drawn, cols, &mut out);
        if !st.at_line_start {
            out.extend_from_slice(b"\r\n");
        }
        render::committed(st.prompt(), text, cols, st.colour, &mut out);
        st.at_line_start = true;
        self.draw(&mut st, cols, lines, &mut out);
        let _ = self.write(&out);
    }

    /// Copies the editor's line, cursor (a byte offset in `line`) and
    /// typed-ahead lines (each ending with `\n`) into the shared state and
    /// redraws; `bell` rings the terminal's bell first.
    pub(crate) fn show(&self, line: &[u8], cursor: usize, pending: &[u8], bell: bool) {
        let (cols, lines) = self.size();
        let mut st = self.shared.lock();
        st.set_line(line, cursor);
        st.set_pending(pending);
        let mut out = Vec::new();
        if bell {
            out.push(0x07);
        }
        render::clear(&mut st.drawn, cols, &mut out);
        self.draw(&mut st, cols, lines, &mut out);
        let _ = self.write(&out);
    }

    /// Ctrl-L: clears the screen and draws the region at its top.
    pub(crate) fn clear_screen(&self) {
        let (cols, lines) = self.size();
        let mut st = self.shared.lock();
        let mut out = b"\x1b[H\x1b[2J".to_vec();
        st.drawn.shown = false;
        st.at_line_start = true;
        self.draw(&mut st, cols, lines, &mut out);
        let _ = self.write(&out);
    }

    /// Puts the terminal in the editor's modes (non-canonical, no echo,
    /// `ISIG` kept). Returns `false` if `tcsetattr` failed (the terminal
    /// keeps its modes, and the editor does not start).
    fn set_modes(&self) -> bool {
        let Some(saved) = &self.saved else {
            return false;
        };
        let mut modes = Termios::from(*saved);
        modes.local_flags.remove(
            LocalFlags::ICANON | LocalFlags::ECHO | LocalFlags::ECHONL | LocalFlags::IEXTEN,
        );
        modes.local_flags.insert(LocalFlags::ISIG);
        modes
            .input_flags
            .remove(InputFlags::ICRNL | InputFlags::INLCR | InputFlags::IGNCR);
        modes.control_chars[SpecialCharacterIndices::VMIN as usize] = 1;
        modes.control_chars[SpecialCharacterIndices::VTIME as usize] = 0;
        if termios::tcsetattr(self.fd.as_fd(), SetArg::TCSANOW, &modes).is_err() {
            return false;
        }
        self.raw.store(true, Ordering::Relaxed);
        true
    }

    /// Puts the terminal in the editor's modes ([`Terminal::set_modes`])
    /// and shows the prompt, on a fresh line.
    pub(crate) fn start_editing(&self) {
        if !self.set_modes() {
            return;
        }
        let (cols, lines) = self.size();
        let mut st = self.shared.lock();
        let mut out = Vec::new();
        render::clear(&mut st.drawn, cols, &mut out);
        if !st.at_line_start {
            out.extend_from_slice(b"\r\n");
            st.at_line_start = true;
        }
        st.editing = true;
        self.draw(&mut st, cols, lines, &mut out);
        let _ = self.write(&out);
    }

    /// Takes the prompt and the line being typed off the screen: a line
    /// left half-typed (or typed ahead and not sent) stays on the screen
    /// and the cursor goes below it; a bare prompt is erased; the peer's
    /// unfinished line is printed for good. The modes stay as they are.
    fn leave(&self) {
        let (cols, lines) = self.size();
        let mut out = Vec::new();
        let mut st = self.shared.lock();
        let keep = !st.line().is_empty() || !st.pending().is_empty();
        // Lines typed ahead stay, and the line being typed if it is
        // not empty; a bare prompt goes.
        st.editing = !st.line().is_empty();
        render::clear(&mut st.drawn, cols, &mut out);
        self.draw(&mut st, cols, lines, &mut out);
        if keep {
            render::leave(&mut st.drawn, &mut out);
            st.at_line_start = true;
        }
        st.editing = false;
        st.set_line(b"", 0);
        st.set_pending(b"");
        if !st.partial().is_empty() {
            // The peer's unfinished line: printed for good.
            let colour = st.colour;
            let mut rest = Vec::new();
            render::peer_text(st.partial(), colour, &mut rest);
            out.extend_from_slice(&rest);
            let n = st.partial().len();
            st.drop_partial(n);
            st.at_line_start = false;
        }
        let _ = self.write(&out);
    }

    /// End of input (Ctrl-D on an empty line) while the session goes on:
    /// the prompt goes ([`Terminal::leave`]) but the editor's modes stay,
    /// so that what is typed from now on is neither echoed nor handed to
    /// the shell in canonical mode; the keys wait in the terminal's input
    /// queue, which [`Terminal::stop_editing`] (or the next
    /// [`Terminal::start_editing`]) flushes.
    pub(crate) fn end_input(&self) {
        if self.raw.load(Ordering::Relaxed) {
            self.leave();
        }
    }

    /// Discards what was typed and not read (`tcflush(TCIFLUSH)`): keys
    /// typed into this program never reach the shell, nor a later
    /// session.
    pub(crate) fn flush_input(&self) {
        let _ = termios::tcflush(self.fd.as_fd(), FlushArg::TCIFLUSH);
    }

    /// Ends the editor: [`Terminal::leave`], then the terminal's input
    /// queue is flushed ([`Terminal::flush_input`]) and the saved modes are
    /// restored. Does nothing if the editor's modes are not on in this
    /// process.
    pub fn stop_editing(&self) {
        if !self.raw.swap(false, Ordering::Relaxed) {
            return;
        }
        self.leave();
        self.flush_input();
        self.restore_modes();
    }

    fn restore_modes(&self) {
        if let Some(saved) = &self.saved {
            let _ = termios::tcsetattr(self.fd.as_fd(), SetArg::TCSANOW, &Termios::from(*saved));
        }
    }

    /// Ctrl-Z (`SIGTSTP`, caught by the parent): clears the region, puts
    /// the saved modes back so the shell works normally, and stops this
    /// process (`SIGSTOP`, what the default action of `SIGTSTP` does). The
    /// lock is waited for at most 200 ms: the child, stopped by the same
    /// Ctrl-Z, may hold it. When continued ([`Terminal::resume`]), the
    /// editor comes back.
    pub fn suspend(&self) {
        let editing = self.raw.load(Ordering::Relaxed);
        if editing {
            let (cols, _) = self.size();
            if let Some(mut st) = self.shared.lock_within(Duration::from_millis(200)) {
                let mut out = Vec::new();
                render::clear(&mut st.drawn, cols, &mut out);
                if !st.partial().is_empty() {
                    let colour = st.colour;
                    render::peer_text(st.partial(), colour, &mut out);
                    out.extend_from_slice(b"\r\n");
                    let n = st.partial().len();
                    st.drop_partial(n);
                }
                let _ = self.write(&out);
            }
            // What was typed and not read stays ours: the shell must not
            // run it.
            self.flush_input();
            self.restore_modes();
        }
        stop_as_by_ctrl_z();
        self.resume();
    }

    /// Continued (`SIGCONT`, `fg`): the editor's modes again, if they
    /// were on, and the region redrawn (with the prompt only if the
    /// editor still takes input: not after [`Terminal::end_input`]).
    pub fn resume(&self) {
        if !self.raw.load(Ordering::Relaxed) {
            return;
        }
        if self.set_modes() {
            self.redraw();
        }
    }
}

/// Stops this process with `SIGTSTP`'s default action, so that the shell
/// reports it as stopped by Ctrl-Z: the caught `SIGTSTP` is set back to
/// its default for the moment of a `raise`, then the handler (signal-hook's)
/// is put back once a `SIGCONT` lets the process go on.
fn stop_as_by_ctrl_z() {
    // SAFETY: sigaction with zeroed (SIG_DFL, empty mask) and saved
    // structs that live on this frame; raise(2) of a stop signal; the
    // process is single-threaded, so no other thread sees the moment
    // without the handler.
    unsafe {
        let mut default: libc::sigaction = std::mem::zeroed();
        default.sa_sigaction = libc::SIG_DFL;
        let mut saved: libc::sigaction = std::mem::zeroed();
        if libc::sigaction(libc::SIGTSTP, &default, &mut saved) != 0 {
            libc::raise(libc::SIGSTOP);
            return;
        }
        libc::raise(libc::SIGTSTP);
        libc::sigaction(libc::SIGTSTP, &saved, std::ptr::null_mut());
    }
}

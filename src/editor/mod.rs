//! The line editor of a person at a terminal: reads keys
//! ([`keys`]), edits the line being typed ([`mod@line`]: pure logic, tested
//! without a terminal) and hands finished lines to the session's
//! [`crate::session::Input`]. What the screen shows, the lock the two
//! processes of a session share, and the terminal's modes are the layer
//! below ([`crate::terminal`]): this module only tells it what to draw.

pub mod history;
pub mod keys;
pub mod line;

use std::collections::VecDeque;

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout};

use crate::pump::{self, stdin};
use crate::terminal::{Terminal, terminal};
use history::History;
use keys::{Decoder, Key};
use line::{Applied, Line};

/// The parent's side of the editor: reads keys, edits the line, and hands
/// finished lines to the session. One per program (it keeps the history).
#[derive(Debug)]
pub struct Editor {
    term: &'static Terminal,
    line: Line,
    keys: Decoder,
    /// Lines finished with Enter, not yet taken by the session.
    ready: VecDeque<Vec<u8>>,
    /// Ctrl-D was typed on an empty line.
    eof: bool,
    /// Input has ended (Ctrl-D was taken by the session): keys read are
    /// discarded until [`Editor::start`] starts the editor again.
    ended: bool,
    /// The history file, if this program keeps one ([`history`]).
    history: Option<History>,
    scratch: Vec<Key>,
}

/// What [`Editor::pump`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pumped {
    /// Lines finished with Enter by this call.
    pub lines: usize,
    /// Ctrl-D on an empty line (or the terminal hung up).
    pub eof: bool,
}

impl Editor {
    /// The editor, when [`crate::terminal::setup`] found standard input and standard
    /// output to be the same terminal.
    pub fn new() -> Option<Editor> {
        let term = terminal().filter(|t| t.can_edit())?;
        let mut line = Line::new();
        let history = history::chosen().and_then(|path| match History::open(path) {
            Ok((history, entries)) => {
                line.load_history(entries);
                Some(history)
            }
            Err(e) => {
                let what = format!("read history {}", path.display());
                history::warn(&what, e, "this run's lines are not kept");
                None
            }
        });
        Some(Editor {
            term,
            line,
            history,
            keys: Decoder::new(),
            ready: VecDeque::new(),
            eof: false,
            ended: false,
            scratch: Vec::new(),
        })
    }

    /// Starts the editor (modes, prompt) if it is not on, or again after
    /// the end of input: what was typed since then is discarded
    /// (`tcflush`), so that `chatd`'s next client never receives it.
    pub fn start(&mut self) {
        if self.ended {
            self.ended = false;
            self.term.flush_input();
            self.term.start_editing();
            self.publish(false);
        } else if !self.term.editing() {
            self.term.start_editing();
            self.publish(false);
        }
    }

    /// After the end of input: reads what is typed and discards it (the
    /// terminal stays in the editor's modes, nothing is echoed), so that a
    /// caller polling standard input is not woken again by the same keys.
    /// Errors: the `errno` of `read(2)` other than `EINTR`/`EAGAIN`.
    fn discard(&mut self) -> Result<(), Errno> {
        let mut fds = [PollFd::new(stdin(), PollFlags::POLLIN)];
        match nix::poll::poll(&mut fds, PollTimeout::ZERO) {
            Ok(n) if n > 0 => {}
            Ok(_) | Err(Errno::EINTR) => return Ok(()),
            Err(e) => return Err(e),
        }
        let mut buf = [0u8; 4096];
        match pump::read(stdin(), &mut buf) {
            Ok(_) | Err(Errno::EAGAIN | Errno::EINTR | Errno::EIO | Errno::EBADF) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Reads the keys waiting on standard input (never waiting for more)
    /// and applies them. Errors: the `errno` of `read(2)` other than
    /// `EINTR`/`EAGAIN`.
    pub fn pump(&mut self) -> Result<Pumped, Errno> {
        if self.ended {
            self.discard()?;
            return Ok(Pumped {
                lines: 0,
                eof: true,
            });
        }
        self.start();
        let mut done = Pumped::default();
        let mut buf = [0u8; 4096];
        // One read per call: the caller's poll brings us back for more,
        // and each batch of keys is drawn at once.
        let mut fds = [PollFd::new(stdin(), PollFlags::POLLIN)];
        let ready = match nix::poll::poll(&mut fds, PollTimeout::ZERO) {
            Ok(n) => n > 0,
            Err(Errno::EINTR) => false,
            Err(e) => return Err(e),
        };
        if ready {
            match pump::read(stdin(), &mut buf) {
                // The terminal hung up.
                Ok(0) | Err(Errno::EIO | Errno::EBADF) => self.eof = true,
                Ok(n) => self.keys.feed(&buf[..n], &mut self.scratch),
                Err(Errno::EAGAIN | Errno::EINTR) => {}
                Err(e) => return Err(e),
            }
        }
        let before = self.ready.len();
        let mut bell = false;
        let mut redraw = false;
        for key in std::mem::take(&mut self.scratch) {
            if self.eof {
                break;
            }
            match self.line.apply(key) {
                Applied::Edited => {}
                Applied::Bell => bell = true,
                Applied::Line(line) => {
                    self.save();
                    self.ready.push_back(line);
                }
                Applied::Eof => self.eof = true,
                Applied::Redraw => redraw = true,
            }
        }
        if redraw {
            self.term.clear_screen();
        }
        self.publish(bell);
        done.lines = self.ready.len() - before;
        done.eof = self.eof;
        Ok(done)
    }

    /// Appends the line just recorded in the history to the history file;
    /// a failure is said once, and the file is no longer written.
    fn save(&mut self) {
        let Some(entry) = self.line.new_entry() else {
            return;
        };
        let Some(history) = &mut self.history else {
            return;
        };
        if let Err(e) = history.append(&entry, self.line.history()) {
            let what = format!("write history {}", history.path().display());
            history::warn(&what, e, "lines typed from now on are not kept");
            self.history = None;
        }
    }

    /// Copies the line and the typed-ahead lines to the shared state and
    /// redraws.
    fn publish(&self, bell: bool) {
        let mut pending = Vec::new();
        for line in &self.ready {
            pending.extend_from_slice(line);
            pending.push(b'\n');
        }
        self.term
            .show(self.line.bytes(), self.line.cursor(), &pending, bell);
    }

    /// Reads keys, then gives the session the next finished line, with its
    /// newline, in `buf` (printed for good above the region at that
    /// moment: "a line typed ahead is shown when it is sent"). Returns its
    /// length, 0 at end of input (Ctrl-D on an empty line: the prompt goes
    /// but the terminal keeps the editor's modes, and what is typed from
    /// then on is discarded, never sent nor left for the shell, until
    /// [`Editor::start`] starts the editor again for a new session).
    /// Errors: `EAGAIN` when no line is finished.
    pub fn take(&mut self, buf: &mut [u8]) -> Result<usize, Errno> {
        if self.ended {
            self.discard()?;
            return Ok(0);
        }
        self.pump()?;
        if let Some(line) = self.ready.front() {
            if line.len() >= buf.len() {
                // Cannot happen: a line holds at most LINE_MAX bytes.
                return Err(Errno::EMSGSIZE);
            }
            let line = self.ready.pop_front().unwrap_or_default();
            buf[..line.len()].copy_from_slice(&line);
            buf[line.len()] = b'\n';
            self.term.commit(&line);
            self.publish(false);
            return Ok(line.len() + 1);
        }
        if self.eof {
            self.eof = false;
            self.ended = true;
            self.term.end_input();
            return Ok(0);
        }
        Err(Errno::EAGAIN)
    }

    /// Whether lines are typed ahead, finished and not taken yet.
    pub fn has_lines(&self) -> bool {
        !self.ready.is_empty()
    }

    /// The lines finished and not taken yet, oldest first.
    pub fn typed_ahead(&self) -> impl DoubleEndedIterator<Item = &[u8]> {
        self.ready.iter().map(Vec::as_slice)
    }

    /// Ends the editor (the terminal gets its modes back); lines typed
    /// ahead stay shown.
    pub fn stop(&mut self) {
        self.term.stop_editing();
    }
}

//! Standard input of a session: the buffer that outlives sessions, the
//! pieces it is sent in, and how its bytes leave standard input (copied,
//! or moved by the kernel: [`crate::zerocopy`]). [`super::Outbound`] sends
//! the pieces; it asks this module to move bytes, and never touches the
//! buffer itself.

use std::ops::Range;
use std::os::fd::BorrowedFd;

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout};

use super::{Moved, Options};
use crate::editor::Editor;
use crate::pump::{self, BUF_SIZE, stdin};
use crate::words::{Word, WordScanner};
use crate::zerocopy::{self, FdKind};

/// What [`Input::fill`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fill {
    /// Bytes are buffered, ready for [`Input::piece`].
    Ready,
    /// End of file (or a closed descriptor 0), and nothing buffered.
    Eof,
    /// Nothing to read now (a non-blocking descriptor).
    Again,
}

/// What ends the piece of standard input being sent ([`Input::piece`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Mark {
    /// The protocol word whose line ends this piece, if any.
    pub word: Option<Word>,
    /// Whether the piece ends with a newline (a turn ends in lockstep).
    pub line_end: bool,
}

/// Standard input, read in chunks of [`BUF_SIZE`] bytes into a buffer that
/// outlives a session: bytes read but not sent when a session ends (after a
/// protocol word, when `chatd`'s client leaves in the middle of a piece, or
/// one line at a time in lockstep) go to the next one, so `chatd < script`
/// loses nothing between clients.
///
/// Sending goes piece by piece: [`Input::piece`] cuts the next piece (or
/// returns the one under way), [`Input::unsent`] is what the socket has not
/// accepted yet, and [`Input::advance`] records what it accepted. A piece
/// leaves the buffer only once wholly sent.
///
/// In `--raw` mode without `--crlf`, a pipe or a regular file on standard
/// input skips the buffer: [`super::Outbound::send_direct`] moves its bytes to the
/// socket in the kernel ([`crate::zerocopy`]), and bytes leave standard
/// input only once the socket accepted them.
#[derive(Debug)]
pub struct Input {
    buf: Box<[u8]>,
    /// Bytes read and not yet cut into a piece: `buf[start..end]`.
    start: usize,
    end: usize,
    scanner: Option<WordScanner>,
    crlf: Option<Crlf>,
    /// The current piece's bytes as sent, when `--crlf` converts them.
    wire: Vec<u8>,
    /// The unsent bytes of the current piece: in `wire` with `--crlf`,
    /// in `buf` otherwise.
    unsent: Range<usize>,
    /// What ends the current piece.
    mark: Mark,
    /// End of file was read. It stays (an empty `< /dev/null` or a finished
    /// pipe is not read again by the next session), except on a terminal,
    /// where Ctrl-D ends only the current session's input.
    ended: bool,
    terminal: bool,
    /// How bytes leave standard input.
    path: Path,
    /// How [`Input::fill`] reads without waiting, on the copy path.
    read: ReadMode,
    /// The bytes in `buf` from the current piece's unsent part to `end`
    /// are a copy: the same bytes are still at the head of standard input,
    /// and [`super::Outbound::send`] moves them from there
    /// ([`Path::PreadSendfile`]).
    peeked: bool,
    /// The line editor, when standard input and standard output are the
    /// same terminal ([`crate::editor`]): lines come from it, whole.
    editor: Option<Editor>,
}

/// How standard input's bytes reach the socket, chosen once from what it
/// is and the options (see [`crate::zerocopy`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Path {
    /// `read(2)` into the buffer, then `send(2)`: terminals, `--crlf`
    /// (the bytes sent differ from those read), lockstep, the default
    /// mode's pipes, and wherever the kernel refuses the other paths.
    ///
    /// Why a pipe in the default mode is copied, not looked at with
    /// `tee(2)` and moved with `splice(2)`: measured side by side
    /// (`scripts/bench pipeline` and alternating pairs, 1 GiB each way;
    /// the runs are in docs/PERFORMANCE.md), the copy was as fast or
    /// faster, at about the same CPU per GiB; and it is simpler (no scan
    /// pipe). A likely reason, not measured: pages spliced into a loopback
    /// socket reach the peer as page fragments, which its copy out handles
    /// more slowly than the linear data `send(2)` makes. What a session
    /// read and did not send is kept for the next one, or counted when the
    /// program stops.
    Copy,
    /// `--raw`: `splice(2)` from the pipe on standard input to the socket.
    Splice,
    /// `--raw`: `sendfile(2)` from the regular file on standard input.
    Sendfile,
    /// Default mode, a regular file: `pread(2)` at the file offset (which
    /// does not move) and look for the words, then `sendfile(2)` the same
    /// bytes, which moves it. One copy of each byte instead of two.
    PreadSendfile,
}

/// How [`Input::fill`] reads standard input without waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReadMode {
    /// `preadv2(RWF_NOWAIT)`: one system call (pipes, sockets).
    NoWait,
    /// `poll(2)` with a zero timeout, then `read(2)` (terminals, and what
    /// refuses `RWF_NOWAIT`).
    Poll,
    /// `read(2)` (regular files: they are always ready).
    Plain,
}

impl Input {
    /// An empty buffer for standard input, with `options`' words and CRLF.
    pub fn new(options: Options) -> Input {
        let kind = zerocopy::kind(stdin());
        let path = match kind {
            _ if options.crlf => Path::Copy,
            FdKind::Pipe if !options.words => Path::Splice,
            FdKind::File if !options.words => Path::Sendfile,
            FdKind::File => Path::PreadSendfile,
            _ => Path::Copy,
        };
        if kind == FdKind::Pipe {
            // Room for the producer to run ahead: fewer wake-ups on both
            // sides of the pipe, and up to 1 MiB per splice or read.
            zerocopy::grow_pipe(stdin(), zerocopy::RELAY_SIZE);
        }
        Input {
            buf: vec![0; BUF_SIZE].into_boxed_slice(),
            start: 0,
            end: 0,
            scanner: options.words.then(WordScanner::new),
            crlf: options.crlf.then(Crlf::default),
            wire: Vec::new(),
            unsent: 0..0,
            mark: Mark::default(),
            ended: false,
            terminal: kind == FdKind::Terminal,
            path,
            read: match kind {
                FdKind::File => ReadMode::Plain,
                FdKind::Terminal => ReadMode::Poll,
                _ => ReadMode::NoWait,
            },
            peeked: false,
            editor: match kind {
                FdKind::Terminal if path == Path::Copy => Editor::new(),
                _ => None,
            },
        }
    }

    /// The line editor, if standard input has one.
    pub fn editor(&mut self) -> Option<&mut Editor> {
        self.editor.as_mut()
    }

    /// Whether the next bytes go straight from standard input to the
    /// socket ([`super::Outbound::send_direct`]): nothing is buffered, and
    /// standard input is a pipe or a regular file in `--raw` mode.
    pub fn direct(&self) -> bool {
        matches!(self.path, Path::Splice | Path::Sendfile) && !self.buffered()
    }

    /// Makes the buffered bytes ordinary again after the default mode
    /// looked at them in place (`pread(2)` of a file, see
    /// [`Input::fill`]): takes out of standard input (with
    /// `read(2)`, the same bytes) what the buffer holds a copy of and the
    /// socket did not accept. Called when a session ends, so that the next
    /// one sends them from the buffer, as the copy path leaves them, and
    /// the word scanner, which has seen them, does not see them twice.
    pub fn settle(&mut self) {
        if !self.peeked {
            return;
        }
        self.peeked = false;
        let from = if self.unsent.is_empty() {
            self.start
        } else {
            self.unsent.start
        };
        let mut at = from;
        while at < self.end {
            match pump::read(stdin(), &mut self.buf[at..self.end]) {
                Ok(n) if n > 0 => at += n,
                // Cannot happen while this process is the only reader:
                // the bytes were there. Keep what was taken.
                _ => break,
            }
        }
        if at < self.end {
            self.end = at;
            self.start = self.start.min(at);
            self.unsent.end = self.unsent.end.min(at);
        }
    }

    /// Whether standard input reached end of file (Ctrl-D on a terminal).
    pub fn ended(&self) -> bool {
        self.ended
    }

    /// Whether standard input is a terminal.
    pub fn terminal(&self) -> bool {
        self.terminal
    }

    /// Whether bytes are buffered, waiting to be sent.
    pub fn buffered(&self) -> bool {
        !self.unsent.is_empty() || self.start < self.end
    }

    /// How many bytes read from standard input are not sent yet, in bytes
    /// (on the wire for the piece under way, as read for the rest).
    pub fn held(&self) -> usize {
        if self.peeked && self.path == Path::PreadSendfile {
            // Still in the file: counted as the file's unread part.
            return 0;
        }
        self.unsent.len() + (self.end - self.start)
    }

    /// Reads standard input into the buffer if it is empty, never waiting
    /// for it: [`Fill::Again`] when nothing is there now (the caller waits
    /// in `poll(2)`, where signals are seen). One `preadv2(RWF_NOWAIT)` on a
    /// pipe or socket, one `read(2)` on a regular file, `poll` then `read`
    /// on a terminal. In the default mode without `--crlf`, a regular file
    /// is read with `pread(2)` (the offset stays): [`super::Outbound::send`]
    /// then moves the bytes themselves from standard input. Errors: the
    /// `errno` of `read(2)` or `pread(2)` other than `EINTR`, `EAGAIN` and
    /// `EBADF`.
    pub fn fill(&mut self) -> Result<Fill, Errno> {
        if self.buffered() {
            return Ok(Fill::Ready);
        }
        if self.ended && !self.terminal {
            return Ok(Fill::Eof);
        }
        let got = match self.path {
            Path::PreadSendfile => self.read_pread(),
            _ => self.read_copy(),
        };
        match got {
            Ok(0) | Err(Errno::EBADF) => {
                self.ended = true;
                Ok(Fill::Eof)
            }
            Ok(n) => {
                (self.start, self.end) = (0, n);
                // Whether the path that read them (after any fall-back)
                // left the bytes in standard input.
                self.peeked = self.path == Path::PreadSendfile;
                Ok(Fill::Ready)
            }
            Err(Errno::EAGAIN) => Ok(Fill::Again),
            Err(e) => Err(e),
        }
    }

    /// Takes what standard input holds into the buffer ([`Path::Copy`] and
    /// the `--raw` paths), in the [`ReadMode`] that fits it. Returns the
    /// count read, 0 at end of file; `EAGAIN` when nothing is there now.
    fn read_copy(&mut self) -> Result<usize, Errno> {
        if let Some(editor) = &mut self.editor {
            return editor.take(&mut self.buf);
        }
        match self.read {
            ReadMode::Plain => pump::read(stdin(), &mut self.buf),
            ReadMode::NoWait => match pump::read_nowait(stdin(), &mut self.buf) {
                Err(Errno::EOPNOTSUPP | Errno::EINVAL) => {
                    self.read = ReadMode::Poll;
                    self.read_copy()
                }
                other => other,
            },
            ReadMode::Poll => {
                let mut fds = [PollFd::new(stdin(), PollFlags::POLLIN)];
                match nix::poll::poll(&mut fds, PollTimeout::ZERO) {
                    Ok(_) if fds[0].any() == Some(true) => pump::read(stdin(), &mut self.buf),
                    Ok(_) | Err(Errno::EINTR) => Err(Errno::EAGAIN),
                    Err(e) => Err(e),
                }
            }
        }
    }

    /// [`Path::PreadSendfile`]: `pread(2)` at the file offset, which stays
    /// where it is. Falls back to [`Path::Copy`] for good on any error but
    /// `EINTR` (reported as `EAGAIN`: try again) and `EBADF`.
    fn read_pread(&mut self) -> Result<usize, Errno> {
        let at = nix::unistd::lseek(stdin(), 0, nix::unistd::Whence::SeekCur);
        match at.and_then(|at| nix::sys::uio::pread(stdin(), &mut self.buf, at)) {
            Err(Errno::EINTR) => Err(Errno::EAGAIN),
            Ok(n) => Ok(n),
            Err(Errno::EBADF) => Err(Errno::EBADF),
            Err(_) => {
                self.path = Path::Copy;
                self.read_copy()
            }
        }
    }

    /// The piece being sent: the one under way if [`Input::unsent`] is not
    /// empty, else the next one cut from the buffer: all of it, or with
    /// `one_line` only up to and including the next newline. A piece stops
    /// after the line of a protocol word. `None` when nothing is buffered.
    pub fn piece(&mut self, one_line: bool) -> Option<Mark> {
        if !self.unsent.is_empty() {
            return Some(self.mark);
        }
        if self.start == self.end {
            return None;
        }
        if one_line && self.peeked {
            // Lockstep sends a line at a time: copying is simpler there,
            // and a turn is one short line.
            self.settle();
            self.path = Path::Copy;
        }
        let pending = &self.buf[self.start..self.end];
        let mut len = pending.len();
        let mut line_end = false;
        if one_line && let Some(i) = memchr::memchr(b'\n', pending) {
            len = i + 1;
            line_end = true;
        }
        let mut word = None;
        if let Some(scanner) = &mut self.scanner
            && let Some((found, offset)) = scanner.scan(&pending[..len])
        {
            (word, len, line_end) = (Some(found), offset, true);
        }
        let cut = self.start..self.start + len;
        self.start += len;
        if self.peeked && word.is_some() {
            // What follows the word's line stays in standard input, unseen.
            self.end = self.start;
        }
        self.unsent = match &mut self.crlf {
            Some(crlf) => {
                self.wire.clear();
                crlf.convert(&self.buf[cut], &mut self.wire);
                0..self.wire.len()
            }
            None => cut,
        };
        self.mark = Mark { word, line_end };
        Some(self.mark)
    }

    /// The bytes of the current piece that the socket has not accepted yet.
    pub fn unsent(&self) -> &[u8] {
        match self.crlf {
            Some(_) => &self.wire[self.unsent.clone()],
            None => &self.buf[self.unsent.clone()],
        }
    }

    /// Records that the first `n` bytes of [`Input::unsent`] were sent.
    pub fn advance(&mut self, n: usize) {
        self.unsent.start = (self.unsent.start + n).min(self.unsent.end);
    }

    /// Whether the current piece is a copy of bytes still at the head of
    /// standard input, which [`Input::move_peeked`] moves from there.
    pub(super) fn peeked(&self) -> bool {
        self.peeked
    }

    /// Moves unsent bytes of a [`Input::peeked`] piece from standard input
    /// (a regular file) to `sock` with one `sendfile(2)`, recording what
    /// moved ([`Input::advance`]). Returns the count
    /// moved; 0 once the piece is wholly sent.
    ///
    /// Errors: `EAGAIN` (the socket is full); `EIO` when standard input no
    /// longer holds the bytes (the file shrank); those of `sendfile(2)`;
    /// where the kernel refuses the call
    /// ([`zerocopy::unsupported`]) the caller goes on with
    /// [`Input::copy_from_now`].
    pub(super) fn move_peeked(&mut self, sock: BorrowedFd<'_>) -> Result<usize, Errno> {
        let len = self.unsent.len();
        if len == 0 {
            return Ok(0);
        }
        let moved = match self.path {
            Path::PreadSendfile => zerocopy::sendfile(sock, stdin(), len),
            _ => Err(Errno::EINVAL),
        }?;
        if moved == 0 {
            return Err(Errno::EIO);
        }
        self.advance(moved);
        Ok(moved)
    }

    /// Takes the peeked bytes out of standard input ([`Input::settle`]) and
    /// copies from now on: the kernel refused to move them.
    pub(super) fn copy_from_now(&mut self) {
        self.settle();
        self.path = Path::Copy;
    }

    /// Moves bytes of a [`Input::direct`] input from standard input to
    /// `sock`: one `splice(2)` (a pipe) or `sendfile(2)` (a regular file)
    /// of at most [`zerocopy::CHUNK`] bytes. Returns what happened and the
    /// count moved. Where the kernel refuses the call, falls back to the
    /// copy path for good ([`Moved::Some`], 0 bytes). Errors: those of
    /// `splice(2)`/`sendfile(2)` on the socket.
    pub(super) fn move_direct(&mut self, sock: BorrowedFd<'_>) -> Result<(Moved, usize), Errno> {
        if self.ended {
            return Ok((Moved::Eof, 0));
        }
        let moved = match self.path {
            Path::Splice => zerocopy::splice(stdin(), sock, zerocopy::CHUNK),
            Path::Sendfile => zerocopy::sendfile(sock, stdin(), zerocopy::CHUNK),
            _ => return Ok((Moved::Some, 0)),
        };
        match moved {
            Ok(0) | Err(Errno::EBADF) => {
                self.ended = true;
                Ok((Moved::Eof, 0))
            }
            Ok(n) => Ok((Moved::Some, n)),
            Err(Errno::EAGAIN) => Ok((Moved::Blocked, 0)),
            Err(e) if zerocopy::unsupported(e) => {
                self.path = Path::Copy;
                Ok((Moved::Some, 0))
            }
            Err(e) => Err(e),
        }
    }

    /// At end of file: the protocol word on the last line, if it had no
    /// newline (a last line without a newline still counts: PROTOCOL WORDS
    /// in the man pages).
    pub fn finish(&mut self) -> Option<Word> {
        self.scanner.as_mut().and_then(WordScanner::finish)
    }
}

/// `--crlf`: a `\n` not already preceded by `\r` is sent as `\r\n` (as
/// `ncat --crlf` does), remembering the last byte across pieces.
#[derive(Debug, Default, Clone, Copy)]
struct Crlf {
    after_cr: bool,
}

impl Crlf {
    fn convert(&mut self, piece: &[u8], out: &mut Vec<u8>) {
        let mut rest = piece;
        while let Some(i) = memchr::memchr(b'\n', rest) {
            let before_cr = if i == 0 {
                self.after_cr
            } else {
                rest[i - 1] == b'\r'
            };
            out.extend_from_slice(&rest[..i]);
            out.extend_from_slice(if before_cr { b"\n" } else { b"\r\n" });
            self.after_cr = false;
            rest = &rest[i + 1..];
        }
        if let Some(&last) = rest.last() {
            self.after_cr = last == b'\r';
        }
        out.extend_from_slice(rest);
    }
}

#[cfg(test)]
mod tests {
    use super::Crlf;

    fn crlf(pieces: &[&[u8]]) -> Vec<u8> {
        let mut state = Crlf::default();
        let mut out = Vec::new();
        for piece in pieces {
            state.convert(piece, &mut out);
        }
        out
    }

    #[test]
    fn crlf_converts_bare_newlines_only() {
        assert_eq!(crlf(&[b"a\nb\r\nc\n"]), b"a\r\nb\r\nc\r\n");
        assert_eq!(crlf(&[b"\n\n"]), b"\r\n\r\n");
        assert_eq!(crlf(&[b"no newline"]), b"no newline");
    }

    #[test]
    fn crlf_remembers_a_cr_across_pieces() {
        assert_eq!(crlf(&[b"a\r", b"\nb\n"]), b"a\r\nb\r\n");
        assert_eq!(crlf(&[b"a", b"\n"]), b"a\r\n");
    }
}

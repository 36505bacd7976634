//! The receiving direction's end: [`Output`] writes what the peer sent to
//! standard output, through the protocol-word scanner ([`crate::words`])
//! and, on a terminal, the [`Sanitizer`] ([`crate::display`]) and the
//! [`Marks`] that tell a received line that begins like the prompt or a
//! status line from ours ([`crate::display::starts`]); on the terminal of
//! the line editor, above the line being typed
//! ([`crate::terminal::Terminal::peer`]).

use nix::errno::Errno;

use super::Options;
use crate::display::Sanitizer;
use crate::display::starts::Marks;
use crate::pump::{self, stdout};
use crate::words::{Word, WordScanner};

/// Standard output: received bytes go through the protocol-word scanner
/// and, on a terminal, the [`Sanitizer`] and the [`Marks`], then out with
/// `write(2)`.
#[derive(Debug)]
pub struct Output {
    scanner: Option<WordScanner>,
    /// On a terminal: the cleaning, and the marks of lines that begin like
    /// ours.
    sanitizer: Option<(Sanitizer, Marks)>,
    scratch: Vec<u8>,
    marked: Vec<u8>,
}

impl Output {
    /// Standard output with `options`' words and sanitising.
    pub fn new(options: Options) -> Output {
        Output {
            scanner: options.words.then(WordScanner::new),
            sanitizer: options.sanitize.then(|| (Sanitizer::new(), Marks::new())),
            scratch: Vec::new(),
            marked: Vec::new(),
        }
    }

    /// Writes `bytes` from the peer, stopping after the line of a protocol
    /// word. Returns how many bytes of `bytes` were consumed and the word.
    /// Errors: the `errno` of `write(2)` (`EPIPE`: stdout is closed).
    pub fn deliver(&mut self, bytes: &[u8]) -> Result<(usize, Option<Word>), Errno> {
        let (len, word) = match self.scanner.as_mut().and_then(|s| s.scan(bytes)) {
            Some((word, offset)) => (offset, Some(word)),
            None => (bytes.len(), None),
        };
        self.print(&bytes[..len])?;
        Ok((len, word))
    }

    /// Looks for a protocol word in `bytes` from the peer without writing
    /// them (the child's `MSG_PEEK` and `splice` path): returns how many of
    /// them to deliver, up to the end of a word's line, and the word.
    pub fn scan(&mut self, bytes: &[u8]) -> (usize, Option<Word>) {
        match self.scanner.as_mut().and_then(|s| s.scan(bytes)) {
            Some((word, offset)) => (offset, Some(word)),
            None => (bytes.len(), None),
        }
    }

    /// At end of stream: flushes the sanitizer and returns the word of an
    /// unterminated last line, if it is one.
    pub fn finish(&mut self) -> Result<Option<Word>, Errno> {
        if let Some((sanitizer, marks)) = &mut self.sanitizer {
            self.scratch.clear();
            sanitizer.finish(&mut self.scratch);
            self.marked.clear();
            marks.push(&self.scratch, &mut self.marked);
            match crate::terminal::terminal() {
                Some(terminal) => {
                    terminal.peer(&self.marked)?;
                    terminal.peer_end();
                }
                None => pump::write_all(stdout(), &self.marked)?,
            }
        }
        Ok(self.scanner.as_mut().and_then(WordScanner::finish))
    }

    /// Writes `bytes` from the peer without looking for protocol words
    /// (after a session's word, what the peer still sends is only shown).
    pub fn print(&mut self, bytes: &[u8]) -> Result<(), Errno> {
        match &mut self.sanitizer {
            Some((sanitizer, marks)) => {
                self.scratch.clear();
                sanitizer.push(bytes, &mut self.scratch);
                self.marked.clear();
                marks.push(&self.scratch, &mut self.marked);
                match crate::terminal::terminal() {
                    // Above the line being typed, in the peer's colour.
                    Some(terminal) => terminal.peer(&self.marked),
                    None => pump::write_all(stdout(), &self.marked),
                }
            }
            None => pump::write_all(stdout(), bytes),
        }
    }
}

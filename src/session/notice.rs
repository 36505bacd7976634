//! The notices of a busy one-to-one `chatd` to a client that waits for
//! its turn: `-!- chatd is busy with another session; you are next` when
//! it connects, the same with its new place when the line moves, and
//! `-!- your session with chatd starts now` when its session starts.
//! `-!- ` marks a server's notice, as in irssi and the room.
//!
//! Why these lines are safe for byte-exact transfers: `chatd` sends them
//! only when a person types at it (its line editor runs: standard input
//! and standard output are one terminal), in the default duplex mode, and
//! without `-d`, `-1` or `--raw`. A transfer from `chatd` reads a pipe or
//! a file, and then nothing but its bytes is ever sent. And `chat` takes
//! these lines out of what it receives, only at the very start of a
//! connection, and says them in status lines on standard error
//! ([`Seen`]): its standard output stays what the person typed, whatever
//! it is. TCP has no other way to tell a client something: the urgent
//! pointer (`MSG_OOB`) is the only data outside the stream, and RFC 6093
//! asks new applications not to use it, because middleboxes may put the
//! byte back in the stream; and a client that announced itself first
//! would add bytes to what every other server receives (an HTTP or SMTP
//! server typed to by hand, `nc -l`).

/// What every busy notice starts with.
const BUSY: &[u8] = b"-!- chatd is busy with another session; ";
/// The notice that the waiting is over, with its newline.
const START: &[u8] = b"-!- your session with chatd starts now\n";
/// The ends of a busy notice: first place, second place, any other place
/// (after a count of at least 2).
const NEXT: &[u8] = b"you are next";
const ONE: &[u8] = b"1 client waits before you";
const MANY: &[u8] = b" clients wait before you";
/// The longest notice line, newline included, in bytes: a longer line
/// is never a notice.
pub const MAX_LEN: usize = 96;

/// The busy notice for a client with `ahead` clients before it in the
/// line, with its newline.
pub fn busy(ahead: usize) -> Vec<u8> {
    let mut line = BUSY.to_vec();
    match ahead {
        0 => line.extend_from_slice(NEXT),
        1 => line.extend_from_slice(ONE),
        n => {
            line.extend_from_slice(n.to_string().as_bytes());
            line.extend_from_slice(MANY);
        }
    }
    line.push(b'\n');
    line
}

/// The notice that the client's session starts, with its newline.
pub fn start() -> &'static [u8] {
    START
}

/// A notice, as received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// `chatd` is busy; `ahead` clients wait before this one.
    Busy {
        /// How many clients will be served first.
        ahead: usize,
    },
    /// The session starts now.
    Start,
}

impl Notice {
    /// What `chat`'s status line says about `peer` for this notice.
    pub fn status(self, peer: &dyn std::fmt::Display) -> String {
        match self {
            Notice::Busy { ahead: 0 } => {
                format!("{peer} is busy with another session; you are next")
            }
            Notice::Busy { ahead: 1 } => {
                format!("{peer} is busy with another session; 1 client waits before you")
            }
            Notice::Busy { ahead } => {
                format!("{peer} is busy with another session; {ahead} clients wait before you")
            }
            Notice::Start => format!("your session with {peer} starts"),
        }
    }
}

/// What the first bytes received, or those after the notices already
/// taken, are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// They may still become a notice: more bytes are needed.
    More,
    /// A notice, `len` bytes long (its newline included): take it out.
    Notice(Notice, usize),
    /// Not a notice: they and all that follows are the peer's data.
    Not,
}

/// Looks at `bytes`, the start of what is left to receive. A busy notice
/// is recognised at any time (the place in the line moves), the start
/// notice only once `waiting` (after a busy one): a stream that begins
/// with it alone is data.
pub fn seen(bytes: &[u8], waiting: bool) -> Seen {
    let (line, complete) = match memchr::memchr(b'\n', bytes) {
        Some(i) => (&bytes[..i], true),
        None => (bytes, false),
    };
    if line.len() + 1 > MAX_LEN {
        return Seen::Not;
    }
    if waiting && line_could_be(line, &START[..START.len() - 1], complete) {
        return if complete {
            Seen::Notice(Notice::Start, START.len())
        } else {
            Seen::More
        };
    }
    let Some(tail) = strip(line, BUSY, complete) else {
        return Seen::Not;
    };
    let Some(tail) = tail else {
        return Seen::More;
    };
    match busy_place(tail, complete) {
        Some(Some(ahead)) => Seen::Notice(Notice::Busy { ahead }, line.len() + 1),
        Some(None) => Seen::More,
        None => Seen::Not,
    }
}

/// Whether `line` is `whole` (a complete line), or a start of it (not
/// complete yet).
fn line_could_be(line: &[u8], whole: &[u8], complete: bool) -> bool {
    if complete {
        line == whole
    } else {
        whole.starts_with(line)
    }
}

/// `line` without `prefix`: `Some(Some(rest))` when it starts with it,
/// `Some(None)` when it is a shorter start of it and not complete, `None`
/// otherwise.
fn strip<'a>(line: &'a [u8], prefix: &[u8], complete: bool) -> Option<Option<&'a [u8]>> {
    if let Some(rest) = line.strip_prefix(prefix) {
        Some(Some(rest))
    } else if !complete && prefix.starts_with(line) {
        Some(None)
    } else {
        None
    }
}

/// The place a busy notice's end gives: `Some(Some(ahead))` for a
/// complete, valid end; `Some(None)` for a start of one; `None` when it
/// cannot be one.
fn busy_place(tail: &[u8], complete: bool) -> Option<Option<usize>> {
    for (end, ahead) in [(NEXT, 0), (ONE, 1)] {
        if line_could_be(tail, end, complete) {
            return Some(complete.then_some(ahead));
        }
    }
    let digits = tail.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || tail[0] == b'0' || digits > 6 {
        return None;
    }
    let rest = &tail[digits..];
    if !line_could_be(rest, MANY, complete) {
        return None;
    }
    if !complete {
        return Some(None);
    }
    let ahead: usize = std::str::from_utf8(&tail[..digits]).ok()?.parse().ok()?;
    (ahead >= 2).then_some(Some(ahead))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_notices_chatd_sends_are_seen_whole() {
        for ahead in [0, 1, 2, 17, 999_999] {
            let line = busy(ahead);
            assert!(line.len() <= MAX_LEN);
            assert_eq!(
                seen(&line, false),
                Seen::Notice(Notice::Busy { ahead }, line.len())
            );
            assert_eq!(
                seen(&line, true),
                Seen::Notice(Notice::Busy { ahead }, line.len())
            );
        }
        assert_eq!(
            seen(start(), true),
            Seen::Notice(Notice::Start, start().len())
        );
    }

    #[test]
    fn a_start_of_a_notice_needs_more_and_anything_else_is_data() {
        let line = busy(0);
        for cut in 0..line.len() {
            assert_eq!(seen(&line[..cut], false), Seen::More, "{cut}");
        }
        for cut in 0..start().len() {
            assert_eq!(seen(&start()[..cut], true), Seen::More, "{cut}");
        }
        // The start notice without a busy one first is data.
        assert_eq!(seen(start(), false), Seen::Not);
        for data in [
            &b"hello\n"[..],
            b"-!- you are alice; here: bob\n",
            b"-!- chatd is busy with another session; you are nexT\n",
            b"-!- chatd is busy with another session; 0 clients wait before you\n",
            b"-!- chatd is busy with another session; 1 clients wait before you\n",
            b"-!- chatd is busy with another session; 02 clients wait before you\n",
            b"-!- chatd is busy with another session; you are next \n",
            b"-!- chatd is busy with another session; you are next\r\n",
            b"x",
        ] {
            assert_eq!(
                seen(data, true),
                Seen::Not,
                "{:?}",
                String::from_utf8_lossy(data)
            );
        }
    }

    #[test]
    fn what_follows_a_notice_is_not_part_of_it() {
        let mut bytes = busy(3);
        let len = bytes.len();
        bytes.extend_from_slice(b"data after");
        assert_eq!(
            seen(&bytes, false),
            Seen::Notice(Notice::Busy { ahead: 3 }, len)
        );
    }

    #[test]
    fn status_lines_name_the_peer() {
        assert_eq!(
            Notice::Busy { ahead: 0 }.status(&"127.0.0.1:8080"),
            "127.0.0.1:8080 is busy with another session; you are next"
        );
        assert_eq!(
            Notice::Start.status(&"127.0.0.1:8080"),
            "your session with 127.0.0.1:8080 starts"
        );
    }

    proptest! {
        /// Whatever the bytes, a notice is only ever what `busy` or
        /// `start` makes, and a verdict on a start never contradicts the
        /// verdict on the whole.
        #[test]
        fn only_chatds_lines_are_notices(bytes in proptest::collection::vec(any::<u8>(), 0..120), waiting: bool) {
            match seen(&bytes, waiting) {
                Seen::Notice(Notice::Busy { ahead }, len) => prop_assert_eq!(&bytes[..len], &busy(ahead)[..]),
                Seen::Notice(Notice::Start, len) => {
                    prop_assert!(waiting);
                    prop_assert_eq!(&bytes[..len], start());
                }
                Seen::Not => {
                    for more in [&b"\n"[..], b"x\n"] {
                        let mut longer = bytes.clone();
                        longer.extend_from_slice(more);
                        prop_assert_eq!(seen(&longer, waiting), Seen::Not);
                    }
                }
                Seen::More => prop_assert!(!bytes.contains(&b'\n') && bytes.len() < MAX_LEN),
            }
        }

        /// A notice cut anywhere needs more, never gives a wrong verdict.
        #[test]
        fn a_notice_cut_anywhere_needs_more(ahead in 0usize..1_000_000, cut: prop::sample::Index) {
            let line = busy(ahead);
            let cut = cut.index(line.len());
            prop_assert_eq!(seen(&line[..cut], true), Seen::More);
        }
    }
}

//! Sessions: what happens on one connection, from `accept`/`connect` to its
//! end. One file per kind of session.

pub mod duplex;

/// How a session ended normally. Failures are [`crate::Error`]s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The peer closed the connection (end of file on the socket).
    PeerClosed,
    /// Standard output is a closed pipe (`chat host | head -1`): the program
    /// ends quietly with status 0, as ripgrep does on `BrokenPipe`.
    StdoutClosed,
}

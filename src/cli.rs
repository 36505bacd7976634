//! Command lines of `chatd` and `chat` (clap derive: the doc comments are
//! the `--help` text). The option names are fixed by the project's issues:
//! other tools drive them. `man/chatd.1` and `man/chat.1` list the same
//! options; `tests/man.rs` keeps them in step.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgGroup, Parser};

use crate::access::Net;

/// The port of the worksheet's server (question 1).
pub const DEFAULT_PORT: u16 = 8080;

/// chatd: a chat server. Waits for a TCP client, then copies standard input
/// to it and what it sends to standard output, both at once; serves one
/// client after another.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "chatd",
    version,
    override_usage = "chatd [-p PORT] [-b ADDR] [-1] [-q] [-d] [-a] [--speak-first] [--raw] [--crlf] [--broker] [--echo] [--sum] [--max-clients N] [--max-line BYTES] [--max-queue BYTES] [--stall-timeout SECS] [--allow-remote-stop] [--allow ADDR[/PREFIX]] [--deny ADDR[/PREFIX]] [--allowfile FILE] [--denyfile FILE] [--idle-timeout SECS]",
    group(ArgGroup::new("mode").args(["broker", "echo", "sum"]).conflicts_with_all(["alternating", "recv_only"]))
)]
pub struct ChatdArgs {
    /// TCP port to listen on (0 picks a free port, shown in the status line)
    #[arg(short, long, value_name = "PORT", default_value_t = DEFAULT_PORT)]
    pub port: u16,

    /// Local address to listen on, IPv4 or IPv6 (`::` for all IPv6 and, on
    /// Linux by default, IPv4 too)
    #[arg(short, long = "bind", value_name = "ADDR", default_value = "0.0.0.0")]
    pub bind: IpAddr,

    /// Exit after the first session instead of waiting for the next client
    #[arg(short = '1', long)]
    pub once: bool,

    /// Print no status lines on standard error, only errors
    #[arg(short, long)]
    pub quiet: bool,

    /// Receive only: never read standard input, keep the connection open
    /// until the peer closes (as nc -d and ncat --recv-only)
    #[arg(short = 'd', long, conflicts_with = "alternating")]
    pub recv_only: bool,

    /// Lockstep (half-duplex) mode, worksheet question 3: the two sides take
    /// turns, one line each; no fork
    #[arg(short, long)]
    pub alternating: bool,

    /// With -a: the server sends the first line (by default it waits for the
    /// client's)
    #[arg(long, requires = "alternating")]
    pub speak_first: bool,

    /// Interpret nothing: no protocol words (bye, arret), no terminal
    /// cleaning; for exact byte streams
    #[arg(long)]
    pub raw: bool,

    /// Send line ends as CRLF (\r\n), for peers that need it
    #[arg(long)]
    pub crlf: bool,

    /// Discussion server: relay every client's lines to all the others,
    /// prefixed with the sender's name (see ROOM in chatd(1))
    #[arg(long, conflicts_with_all = ["once", "crlf"])]
    pub broker: bool,

    /// Echo server: send everything back to its client, a line bye or fin
    /// closing that connection; one forked child per connection
    #[arg(long, conflicts_with = "crlf")]
    pub echo: bool,

    /// Addition service of the Java course: answer each pair of 32-bit
    /// big-endian integers with their sum, logged on stdout; one forked
    /// child per connection
    #[arg(long, conflicts_with = "crlf")]
    pub sum: bool,

    /// With --broker, --echo or --sum: at most N clients at once; one more
    /// is refused with a one-line message
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub max_clients: usize,

    /// With --broker: a longer line is relayed in pieces of BYTES bytes
    #[arg(long, value_name = "BYTES", default_value_t = 64 * 1024, requires = "broker")]
    pub max_line: usize,

    /// With --broker: a client more than BYTES bytes behind is
    /// disconnected (too slow); the room slows its talkers for a client
    /// that reads but is half that far behind
    #[arg(long, value_name = "BYTES", default_value_t = 1024 * 1024, requires = "broker")]
    pub max_queue: usize,

    /// With --broker: a client that accepts nothing for SECS seconds while
    /// lines wait for it is disconnected (too slow)
    #[arg(long, value_name = "SECS", value_parser = parse_positive_seconds, default_value = "10", requires = "broker")]
    pub stall_timeout: Duration,

    /// With --broker: a client's line arret stops the server (by default it
    /// is relayed as an ordinary line)
    #[arg(long, requires = "broker")]
    pub allow_remote_stop: bool,

    /// Accept only clients in ADDR[/PREFIX], IPv4 or IPv6 (repeatable, or
    /// comma-separated); the others are closed at once (as ncat --allow)
    #[arg(long, value_name = "ADDR[/PREFIX]", value_delimiter = ',')]
    pub allow: Vec<Net>,

    /// Refuse clients in ADDR[/PREFIX] (repeatable, or comma-separated);
    /// a deny entry wins over an allow entry (as ncat --deny)
    #[arg(long, value_name = "ADDR[/PREFIX]", value_delimiter = ',')]
    pub deny: Vec<Net>,

    /// Like --allow, one entry a line in FILE (# starts a comment)
    #[arg(long, value_name = "FILE")]
    pub allowfile: Option<PathBuf>,

    /// Like --deny, one entry a line in FILE (# starts a comment)
    #[arg(long, value_name = "FILE")]
    pub denyfile: Option<PathBuf>,

    /// Close a connection on which nothing has been received for SECS
    /// seconds (decimals allowed), in every mode (as ncat --idle-timeout,
    /// but per connection)
    #[arg(long, value_name = "SECS", value_parser = parse_positive_seconds)]
    pub idle_timeout: Option<Duration>,
}

/// chat: a chat client. Connects to a chatd (or any TCP server), then copies
/// standard input to it and what it sends to standard output, both at once.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "chat",
    version,
    override_usage = "chat [-q] [-d] [--retry SECS] [-a] [--listen-first] [--raw] [--crlf] [--name NAME] [--idle-timeout SECS] [HOST [PORT]]"
)]
pub struct ChatArgs {
    /// Print no status lines on standard error, only errors
    #[arg(short, long)]
    pub quiet: bool,

    /// Receive only: never read standard input, keep the connection open
    /// until the peer closes (as nc -d and ncat --recv-only)
    #[arg(short = 'd', long, conflicts_with = "alternating")]
    pub recv_only: bool,

    /// Keep retrying a refused connection for up to SECS seconds (decimals
    /// allowed)
    #[arg(long, value_name = "SECS", value_parser = parse_seconds, default_value = "0")]
    pub retry: Duration,

    /// Lockstep (half-duplex) mode, worksheet question 3: the two sides take
    /// turns, one line each; no fork
    #[arg(short, long)]
    pub alternating: bool,

    /// With -a: wait for the server's line first (by default the client
    /// sends first)
    #[arg(long, requires = "alternating")]
    pub listen_first: bool,

    /// Interpret nothing: no protocol words (bye, arret), no terminal
    /// cleaning; for exact byte streams
    #[arg(long)]
    pub raw: bool,

    /// Send line ends as CRLF (\r\n), for peers that need it
    #[arg(long)]
    pub crlf: bool,

    /// In a chatd --broker room: send /nick NAME as soon as connected
    #[arg(long, value_name = "NAME", value_parser = parse_name)]
    pub name: Option<String>,

    /// Close the connection when nothing has been received for SECS
    /// seconds (decimals allowed), as ncat --idle-timeout
    #[arg(long, value_name = "SECS", value_parser = parse_positive_seconds)]
    pub idle_timeout: Option<Duration>,

    /// Host to connect to: a name or an IPv4/IPv6 address; every address
    /// the resolver returns is tried in order
    #[arg(value_name = "HOST", default_value = "localhost")]
    pub host: String,

    /// TCP port to connect to
    #[arg(value_name = "PORT", default_value_t = DEFAULT_PORT)]
    pub port: u16,
}

/// Parses a non-negative number of seconds, such as `5` or `0.5`.
fn parse_seconds(text: &str) -> Result<Duration, String> {
    let secs: f64 = text
        .parse()
        .map_err(|_| format!("'{text}' is not a number of seconds"))?;
    Duration::try_from_secs_f64(secs).map_err(|_| format!("'{text}' is not a number of seconds"))
}

/// Parses a number of seconds greater than zero, such as `5` or `0.5`.
fn parse_positive_seconds(text: &str) -> Result<Duration, String> {
    match parse_seconds(text)? {
        d if d.is_zero() => Err(format!("'{text}': the timeout must be more than 0 seconds")),
        d => Ok(d),
    }
}

/// Parses `chat --name`: a name the room's `/nick` accepts (see
/// [`crate::broker::name`]: 1 to 32 characters, no spaces, brackets, colons,
/// control or invisible characters, not `chatd`), so that a name the room
/// would refuse, or a newline that would send a second line, fails before
/// connecting.
fn parse_name(text: &str) -> Result<String, String> {
    use crate::broker::name::{Refusal, check};
    match check(text.as_bytes()) {
        Ok(name) => Ok(name.to_owned()),
        Err(Refusal::Empty) => Err("a name cannot be empty".to_owned()),
        Err(why) => Err(why.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn options_a_mode_would_ignore_are_refused() {
        for args in [
            &["chatd", "--broker", "-1"][..],
            &["chatd", "--broker", "--crlf"],
            &["chatd", "--echo", "--crlf"],
            &["chatd", "--sum", "--crlf"],
            &["chatd", "--echo", "--sum"],
            &["chatd", "--broker", "-a"],
            &["chatd", "-d", "-a"],
        ] {
            assert!(ChatdArgs::try_parse_from(args).is_err(), "{args:?}");
        }
        assert!(ChatdArgs::try_parse_from(["chatd", "--echo", "-1"]).is_ok());
    }

    #[test]
    fn commands_are_well_formed() {
        ChatdArgs::command().debug_assert();
        ChatArgs::command().debug_assert();
    }

    #[test]
    fn seconds_accept_decimals_and_refuse_negatives() {
        assert_eq!(parse_seconds("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_seconds("0"), Ok(Duration::ZERO));
        assert!(parse_seconds("-1").is_err());
        assert!(parse_seconds("soon").is_err());
    }

    #[test]
    fn names_follow_the_rules_of_nick() {
        assert_eq!(parse_name("alice"), Ok("alice".to_owned()));
        assert_eq!(parse_name("Éloïse"), Ok("Éloïse".to_owned()));
        assert!(parse_name("").is_err());
        assert!(parse_name("a\nhello").is_err());
        assert!(parse_name("a b").is_err());
        assert!(parse_name("chatd").is_err());
    }
}

//! Command lines of `chatd` and `chat` (clap derive: the doc comments are
//! the `--help` text). The option names are fixed by the project's issues:
//! other tools drive them. `man/chatd.1` and `man/chat.1` list the same
//! options; `tests/man.rs` keeps them in step.

use std::net::IpAddr;
use std::time::Duration;

use clap::Parser;

/// The port of the worksheet's server (question 1).
pub const DEFAULT_PORT: u16 = 8080;

/// chatd: a chat server. Waits for a TCP client, then copies standard input
/// to it and what it sends to standard output, both at once; serves one
/// client after another.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "chatd",
    version,
    override_usage = "chatd [-p PORT] [-b ADDR] [-1] [-q] [-a] [--speak-first] [--raw] [--crlf]"
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
}

/// chat: a chat client. Connects to a chatd (or any TCP server), then copies
/// standard input to it and what it sends to standard output, both at once.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "chat",
    version,
    override_usage = "chat [-q] [--retry SECS] [-a] [--listen-first] [--raw] [--crlf] [HOST [PORT]]"
)]
pub struct ChatArgs {
    /// Print no status lines on standard error, only errors
    #[arg(short, long)]
    pub quiet: bool,

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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

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
}

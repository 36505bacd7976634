//! Command lines of `chatd` and `chat` (clap derive: the doc comments are
//! the `--help` text). The option names are an interface: scripts and
//! other tools drive them. `man/chatd.1` and `man/chat.1` list the same
//! options; `tests/man.rs` keeps them in step.
//!
//! Every value is checked before anything is bound or printed, so that a
//! script never sees `listening on …` before a usage error: clap checks
//! each value with the parsers of this module, then
//! [`CommandLine::finish`] checks the values against each other. Options
//! that belong to a mode say so with clap's `requires`, all in the same
//! way. A usage error is one line in the tools' own style, rendered by
//! [`ToolStyle`] (`chat: unexpected argument '-x' (try 'chat --help')`),
//! and exit status 2, as clap's.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::builder::StyledStr;
use clap::error::{ContextKind, ContextValue, ErrorFormatter, ErrorKind};
use clap::{ArgGroup, Parser};

use crate::access::{Net, NetFile};
use crate::broker::room::Limits;
use crate::net::{Dial, Family};
use crate::service::Service;
use crate::tls::identity::{Identity, Role};

/// The port of the worksheet's server (question 1).
pub(crate) const DEFAULT_PORT: u16 = 8080;

/// The flags `chatd` and `chat` share, with the same meaning and help.
#[derive(Debug, Clone, clap::Args)]
pub struct Common {
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

    /// Interpret nothing: no protocol words (bye, arret), no terminal
    /// cleaning; for exact byte streams
    #[arg(long)]
    pub raw: bool,

    /// Send line ends as CRLF (\r\n), for peers that need it
    #[arg(long)]
    pub crlf: bool,

    /// Keep no history of the lines typed at the terminal (by default
    /// they are saved, in clear text, under $XDG_STATE_HOME/chat/)
    #[arg(long)]
    pub no_history: bool,
}

/// `--cert FILE --key FILE`: one's own certificate and key, instead of
/// the identity kept under `$XDG_CONFIG_HOME/chat/`
/// ([`crate::tls::identity`]). Both programs take them, with the same
/// checks; the help of `--cert` is each program's (the server's chain, or
/// the client certificate it shows), given with [`cert_help`] in its
/// `#[command]`.
#[derive(Debug, Clone, clap::Args)]
pub struct IdentityFiles {
    // Help: CHATD_CERT_HELP, CHAT_CERT_HELP.
    #[arg(long, value_name = "FILE", value_parser = parse_pem_file, requires_all = ["tls", "key"])]
    pub cert: Option<PathBuf>,

    /// With --tls and --cert: the private key (PEM) of --cert; refused if
    /// others may read it
    #[arg(long, value_name = "FILE", value_parser = parse_pem_file, requires_all = ["tls", "cert"])]
    pub key: Option<PathBuf>,
}

impl IdentityFiles {
    /// The identity for `role`: `--cert` and `--key` when given, else the
    /// one kept under `$XDG_CONFIG_HOME/chat/` (made on first use).
    ///
    /// Errors: those of [`Identity::load`] and
    /// [`Identity::load_or_create`] (a file that cannot be read or made,
    /// a key file others may read, no configuration directory).
    pub(crate) fn load(&self, role: Role) -> Result<Identity, crate::error::Error> {
        match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => Identity::load(cert, key),
            _ => Identity::load_or_create(role),
        }
    }
}

/// Gives `--cert` the help `text`, leaving it in its place among the
/// options (for `Command::mut_args`: `mut_arg` would move it last, and the
/// completions' order with it).
fn cert_help(text: &'static str) -> impl FnMut(clap::Arg) -> clap::Arg {
    move |arg| {
        if arg.get_id() == "cert" {
            arg.help(text)
        } else {
            arg
        }
    }
}

/// `chatd --help` for `--cert`.
const CHATD_CERT_HELP: &str = "With --tls and --key: the certificate (PEM, the server's first) to use instead of the one kept under $XDG_CONFIG_HOME/chat/";

/// `chat --help` for `--cert`.
const CHAT_CERT_HELP: &str = "With --tls and --key: the client certificate (PEM) to show instead of the one kept under $XDG_CONFIG_HOME/chat/";

/// chatd: a chat server. Waits for a TCP client, then copies standard input
/// to it and what it sends to standard output, both at once; serves one
/// client after another.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "chatd",
    version,
    override_usage = "chatd [-4] [-6] [-p PORT] [-b ADDR] [-1] [-q] [-v] [-d] [-a] [--speak-first] [--raw] [--crlf] [--no-history] [--broker] [--echo] [--sum] [--max-clients N] [--max-line BYTES] [--max-queue BYTES] [--stall-timeout SECS] [--history LINES] [--name NAME] [--allow-remote-stop] [--allow ADDR[/PREFIX]] [--deny ADDR[/PREFIX]] [--allowfile FILE] [--denyfile FILE] [--idle-timeout SECS] [--tls] [--cert FILE --key FILE] [--print-cert]",
    group(ArgGroup::new("mode").args(["broker", "echo", "sum"]).conflicts_with_all(["alternating", "recv_only"])),
    mut_args(cert_help(CHATD_CERT_HELP))
)]
pub struct ChatdArgs {
    /// Use IPv4 only: -b resolves to IPv4 addresses (as nc -4)
    #[arg(short = '4', conflicts_with = "ipv6")]
    pub ipv4: bool,

    /// Use IPv6 only: -b resolves to IPv6 addresses, the default address
    /// is ::, and IPv4 clients are not accepted (as nc -6)
    #[arg(short = '6')]
    pub ipv6: bool,

    /// TCP port to listen on, a number or a service name of /etc/services
    /// (0 picks a free port, shown in the status line)
    #[arg(short, long, value_name = "PORT", default_value_t = DEFAULT_PORT, value_parser = parse_listen_port, allow_negative_numbers = true)]
    pub port: u16,

    /// Local address to listen on: an IPv4 or IPv6 address (`::` for all
    /// IPv6 and, on Linux by default, IPv4 too; `[::1]` brackets allowed)
    /// or a host name, whose first address that binds is used (as nc -l);
    /// default 0.0.0.0, or :: with -6
    #[arg(short, long = "bind", value_name = "ADDR", value_parser = parse_host)]
    pub bind: Option<String>,

    /// Exit after the first session instead of waiting for the next client
    #[arg(short = '1', long)]
    pub once: bool,

    /// Verbose: also say each address tried for -b and the local address
    /// of each connection (-q still silences)
    #[arg(short, long)]
    pub verbose: bool,

    /// -q, -d, -a, --raw, --crlf, --no-history.
    #[command(flatten)]
    pub common: Common,

    /// With -a: the server sends the first line (by default it waits for the
    /// client's)
    #[arg(long, requires = "alternating")]
    pub speak_first: bool,

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

    /// With --broker, --echo or --sum: at most N clients at once (at least
    /// 1); one more is refused with a one-line message
    #[arg(long, value_name = "N", default_value_t = 1000, value_parser = parse_count, requires = "mode", allow_negative_numbers = true)]
    pub max_clients: usize,

    /// With --broker: a longer line is relayed in pieces of at most BYTES
    /// bytes, cut between characters (at least 1)
    #[arg(long, value_name = "BYTES", default_value_t = 64 * 1024, value_parser = parse_count, requires = "broker", allow_negative_numbers = true)]
    pub max_line: usize,

    /// With --broker: a client more than BYTES bytes behind is
    /// disconnected (too slow); the room slows its talkers for a client
    /// that reads but is half that far behind; at least --max-line + 512
    #[arg(long, value_name = "BYTES", default_value_t = 1024 * 1024, value_parser = parse_count, requires = "broker", allow_negative_numbers = true)]
    pub max_queue: usize,

    /// With --broker: a client that accepts nothing for SECS seconds while
    /// lines wait for it is disconnected (too slow)
    #[arg(long, value_name = "SECS", value_parser = parse_positive_seconds, default_value = "10", requires = "broker", allow_negative_numbers = true)]
    pub stall_timeout: Duration,

    /// With --broker: a newcomer first receives the last LINES lines of the
    /// room (at most a quarter of --max-queue), between two -!- lines
    #[arg(long, value_name = "LINES", default_value_t = 0, value_parser = parse_whole, requires = "broker", allow_negative_numbers = true)]
    pub history: usize,

    /// With --broker: the name of the room's operator, the sender of the
    /// lines typed at chatd's standard input, checked as /nick checks a
    /// name; no client may take it (default chatd)
    #[arg(long, value_name = "NAME", value_parser = parse_name, requires = "broker")]
    pub name: Option<String>,

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

    /// Like --allow, one entry a line in FILE (# starts a comment); read
    /// once, at start; at most 1 MiB and 100000 entries
    #[arg(long, value_name = "FILE", value_parser = parse_net_file)]
    pub allowfile: Option<NetFile>,

    /// Like --deny, one entry a line in FILE (# starts a comment); read
    /// once, at start; at most 1 MiB and 100000 entries
    #[arg(long, value_name = "FILE", value_parser = parse_net_file)]
    pub denyfile: Option<NetFile>,

    /// Close a connection on which nothing has been received for SECS
    /// seconds (decimals allowed), in every mode (as ncat --idle-timeout,
    /// but per connection)
    #[arg(long, value_name = "SECS", value_parser = parse_positive_seconds, allow_negative_numbers = true)]
    pub idle_timeout: Option<Duration>,

    /// Encrypt every connection with TLS (1.3, or 1.2 for older peers),
    /// in every mode; the server's identity is a certificate kept under
    /// $XDG_CONFIG_HOME/chat/ (made on first use), shown by its SHA-256
    /// fingerprint (see TLS in chatd(1))
    #[arg(long)]
    pub tls: bool,

    /// --cert, --key.
    #[command(flatten)]
    pub identity: IdentityFiles,

    /// With --tls: print the server's certificate (PEM) on standard output
    /// and exit, for ncat --ssl-trustfile, socat cafile= or openssl -CAfile
    #[arg(long, requires = "tls")]
    pub print_cert: bool,
}

impl ChatdArgs {
    /// `-4`/`-6` as a [`Family`].
    pub(crate) fn family(&self) -> Family {
        Family::from_flags(self.ipv4, self.ipv6)
    }

    /// The room's settings (`--broker`).
    pub(crate) fn broker(&self) -> crate::broker::Config {
        crate::broker::Config {
            max_clients: self.max_clients,
            limits: Limits {
                max_line: self.max_line,
                max_queue: self.max_queue,
                allow_remote_stop: self.allow_remote_stop,
                clean: !self.common.raw,
                stall_timeout: self.stall_timeout,
                history: self.history,
            },
            idle: self.idle_timeout,
            operator: self
                .name
                .clone()
                .unwrap_or_else(|| crate::broker::name::SERVER.to_owned()),
        }
    }

    /// The service's settings (`--echo` or `--sum`), or `None` when
    /// neither is given.
    pub(crate) fn service(&self) -> Option<crate::service::Config> {
        let service = match (self.echo, self.sum) {
            (true, _) => Service::Echo,
            (false, true) => Service::Sum,
            (false, false) => return None,
        };
        Some(crate::service::Config {
            service,
            max_clients: self.max_clients,
            words: !self.common.raw,
            once: self.once,
            idle: self.idle_timeout,
        })
    }
}

/// chat: a chat client. Connects to a chatd (or any TCP server), then copies
/// standard input to it and what it sends to standard output, both at once.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "chat",
    version,
    override_usage = "chat [-4] [-6] [-q] [-v] [-d] [-w SECS] [--retry SECS] [-a] [--listen-first] [--raw] [--crlf] [--no-history] [--name NAME] [--idle-timeout SECS] [--tls] [--pin FINGERPRINT] [--accept-new] [--insecure] [--cert FILE --key FILE] [--print-cert] [HOST [PORT]]",
    mut_args(cert_help(CHAT_CERT_HELP))
)]
pub struct ChatArgs {
    /// Use IPv4 addresses of HOST only (as nc -4)
    #[arg(short = '4', conflicts_with = "ipv6")]
    pub ipv4: bool,

    /// Use IPv6 addresses of HOST only (as nc -6)
    #[arg(short = '6')]
    pub ipv6: bool,

    /// Verbose: also say each address tried and why it failed, and the
    /// local address of the connection (-q still silences)
    #[arg(short, long)]
    pub verbose: bool,

    /// -q, -d, -a, --raw, --crlf, --no-history.
    #[command(flatten)]
    pub common: Common,

    /// With -a: wait for the server's line first (by default the client
    /// sends first)
    #[arg(long, requires = "alternating")]
    pub listen_first: bool,

    /// Give up a connection not established within SECS seconds (every
    /// address of HOST is tried within them), and close one idle for SECS
    /// seconds, as nc -w; implies --idle-timeout SECS
    #[arg(short, long, value_name = "SECS", value_parser = parse_positive_seconds, allow_negative_numbers = true)]
    pub wait: Option<Duration>,

    /// Keep retrying a refused connection for up to SECS seconds (decimals
    /// allowed); with -w, each round of attempts has -w's budget
    #[arg(long, value_name = "SECS", value_parser = parse_seconds, default_value = "0", allow_negative_numbers = true)]
    pub retry: Duration,

    /// In a chatd --broker room: send /nick NAME as soon as connected
    #[arg(long, value_name = "NAME", value_parser = parse_name)]
    pub name: Option<String>,

    /// Close the connection when nothing has been received for SECS
    /// seconds (decimals allowed), as ncat --idle-timeout
    #[arg(long, value_name = "SECS", value_parser = parse_positive_seconds, allow_negative_numbers = true)]
    pub idle_timeout: Option<Duration>,

    /// Encrypt with TLS and verify the server by its certificate's SHA-256
    /// fingerprint, trusted on first use and kept in
    /// $XDG_CONFIG_HOME/chat/known_hosts, as ssh does (see TLS in chat(1))
    #[arg(long)]
    pub tls: bool,

    /// With --tls: accept only the server whose certificate has this
    /// SHA-256 fingerprint (SHA256:AB:CD:… or 64 hexadecimal digits)
    #[arg(long, value_name = "FINGERPRINT", value_parser = parse_pin, requires = "tls", conflicts_with_all = ["insecure", "accept_new"])]
    pub pin: Option<crate::tls::Fingerprint>,

    /// With --tls: trust and save a server not yet known without asking
    /// (a changed fingerprint is still refused), as ssh's
    /// StrictHostKeyChecking=accept-new
    #[arg(long, requires = "tls")]
    pub accept_new: bool,

    /// With --tls: do not verify the server (encrypted, but anyone can
    /// pretend to be it); said on every connection
    #[arg(long, requires = "tls", conflicts_with = "accept_new")]
    pub insecure: bool,

    /// --cert, --key.
    #[command(flatten)]
    pub identity: IdentityFiles,

    /// With --tls: print this client's certificate (PEM) on standard
    /// output and exit
    #[arg(long, requires = "tls")]
    pub print_cert: bool,

    /// Host to connect to: a name or an IPv4/IPv6 address (`[::1]`
    /// brackets allowed); every address the resolver returns is tried in
    /// order
    #[arg(value_name = "HOST", default_value = "localhost", value_parser = parse_host)]
    pub host: String,

    /// TCP port to connect to: a number (1 to 65535) or a service name of
    /// /etc/services
    #[arg(value_name = "PORT", default_value_t = DEFAULT_PORT, value_parser = parse_connect_port, allow_negative_numbers = true)]
    pub port: u16,
}

impl ChatArgs {
    /// How to connect: `--retry`, `-w`, `-4`/`-6`.
    pub(crate) fn dial(&self) -> Dial {
        Dial {
            retry: self.retry,
            wait: self.wait,
            family: Family::from_flags(self.ipv4, self.ipv6),
        }
    }
}

// ---------------------------------------------------------------------------
// Parsing the command line

/// A command line of one of the binaries: clap's parser, plus the checks
/// that involve more than one value.
pub trait CommandLine: Parser {
    /// The program name, the prefix of its messages.
    const NAME: &'static str;

    /// Checks the values against each other (clap checked each alone) and
    /// applies what an option implies. Errors: a usage error naming the
    /// option and value at fault.
    fn finish(self) -> Result<Self, clap::Error>;
}

impl CommandLine for ChatdArgs {
    const NAME: &'static str = "chatd";

    /// `-b` must be of the family of `-4`/`-6`; with `--broker`,
    /// `--max-queue` must hold a whole line of `--max-line`.
    fn finish(self) -> Result<Self, clap::Error> {
        if let Some(host) = &self.bind {
            check_family(host, self.family(), "--bind")?;
        }
        if self.broker
            && let Some(why) = self.broker().limits.queue_too_small()
        {
            return Err(invalid("--max-queue", &self.max_queue.to_string(), why));
        }
        Ok(self)
    }
}

impl CommandLine for ChatArgs {
    const NAME: &'static str = "chat";

    /// HOST must be of the family of `-4`/`-6`; `-w SECS` implies
    /// `--idle-timeout SECS` unless `--idle-timeout` is given (as `nc -w`,
    /// whose timeout covers both the connection and idleness).
    fn finish(mut self) -> Result<Self, clap::Error> {
        check_family(&self.host, self.dial().family, "HOST")?;
        self.idle_timeout = self.idle_timeout.or(self.wait);
        Ok(self)
    }
}

/// A usage error, rendered in the tools' style by [`ToolStyle`].
pub(crate) type UsageError = clap::error::Error<ToolStyle>;

/// Parses the process's command line as `C`, or exits as clap does:
/// `--help` and `--version` print on standard output and exit 0; a usage
/// error prints one line on standard error and exits 2.
pub fn parse<C: CommandLine>() -> C {
    crate::messages::set_program(C::NAME);
    try_parse_from(std::env::args_os()).unwrap_or_else(|err| err.exit())
}

/// Parses `args` (the program name first) as `C`: clap's parsing, then
/// [`CommandLine::finish`]. When an option's `requires` is not met, the
/// error also names that option (clap names only what is missing).
pub(crate) fn try_parse_from<C, I, T>(args: I) -> Result<C, UsageError>
where
    C: CommandLine,
    I: IntoIterator<Item = T>,
    T: Into<OsString>,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    C::try_parse_from(&args)
        .and_then(C::finish)
        .map_err(|mut err| {
            if err.kind() == ErrorKind::MissingRequiredArgument
                && let Some(culprit) = needs_what_is_missing(&C::command(), &args, &err)
            {
                err.insert(ContextKind::PriorArg, ContextValue::String(culprit));
            }
            err.apply::<ToolStyle>()
        })
}

/// The option of `args` whose `requires` `err` (a missing required
/// argument) is about: the first one that, taken out of the command line,
/// changes what is missing. `None` if there is none.
fn needs_what_is_missing(
    command: &clap::Command,
    args: &[OsString],
    err: &clap::Error,
) -> Option<String> {
    let missing = strings(err.get(ContextKind::InvalidArg));
    for (i, token) in args.iter().enumerate().skip(1) {
        let Some(token) = token.to_str() else {
            continue;
        };
        if token == "--" {
            break;
        }
        let arg = if let Some(long) = token.strip_prefix("--") {
            let name = long.split('=').next().unwrap_or(long);
            command.get_arguments().find(|a| a.get_long() == Some(name))
        } else if let Some(short) = token.strip_prefix('-').and_then(|s| s.chars().next()) {
            command
                .get_arguments()
                .find(|a| a.get_short() == Some(short))
        } else {
            None
        };
        let Some(arg) = arg else {
            continue;
        };
        // `--opt VALUE` is two words; `--opt=VALUE`, `-pVALUE` and flags one.
        let attached = token.contains('=') || (!token.starts_with("--") && token.len() > 2);
        let width = if arg.get_action().takes_values() && !attached {
            2
        } else {
            1
        };
        let rest: Vec<&OsString> = args[..i]
            .iter()
            .chain(args.iter().skip(i + width))
            .collect();
        // Still missing all of it without this one: not the culprit (an
        // option taken out can add to what is missing, `--tls` that
        // `--cert` needs, without being the one that needs it).
        let still = match command.clone().try_get_matches_from(rest) {
            Err(e) if e.kind() == ErrorKind::MissingRequiredArgument => {
                let now = strings(e.get(ContextKind::InvalidArg));
                missing.iter().all(|m| now.contains(m))
            }
            _ => false,
        };
        if !still {
            return Some(match (arg.get_long(), arg.get_short()) {
                (Some(long), _) => format!("--{long}"),
                (None, Some(short)) => format!("-{short}"),
                (None, None) => arg.get_id().to_string(),
            });
        }
    }
    None
}

/// A usage error about one value: `invalid OPTION 'VALUE': WHY`.
fn invalid(option: &str, value: &str, why: impl Into<String>) -> clap::Error {
    let mut err = clap::Error::new(ErrorKind::ValueValidation);
    err.insert(
        ContextKind::InvalidArg,
        ContextValue::String(option.to_owned()),
    );
    err.insert(
        ContextKind::InvalidValue,
        ContextValue::String(value.to_owned()),
    );
    err.insert(ContextKind::Custom, ContextValue::String(why.into()));
    err
}

/// Refuses an address literal `host` that `-4`/`-6` excludes (a name is
/// resolved later, with the family as a hint).
fn check_family(host: &str, family: Family, option: &str) -> Result<(), clap::Error> {
    let ip = host.split('%').next().unwrap_or(host).parse::<IpAddr>();
    match ip {
        Ok(ip) if !family.admits(ip) => Err(invalid(
            option,
            host,
            format!("not an {} address ({})", family.name(), family.flag()),
        )),
        _ => Ok(()),
    }
}

/// clap's error rendering in the tools' style: one line,
/// `PROGRAM: what (try 'PROGRAM --help')`, like every other message of
/// the tools (`PROGRAM: what: why`), instead of clap's `error:` block with
/// a usage line. `--help` and `--version` are not errors and keep clap's
/// rendering.
pub(crate) struct ToolStyle;

impl ErrorFormatter for ToolStyle {
    fn format_error(error: &clap::error::Error<Self>) -> StyledStr {
        let program = crate::messages::program();
        let mut line = StyledStr::new();
        let _ = writeln!(
            line,
            "{program}: {} (try '{program} --help')",
            describe(error)
        );
        line
    }
}

/// What a usage error says, without the program name: `unexpected
/// argument '-x'`, `invalid --max-line '0': must be at least 1`,
/// `--max-line needs --broker`, `--crlf cannot be used with --echo`.
pub(crate) fn describe<F: ErrorFormatter>(error: &clap::error::Error<F>) -> String {
    let text = |kind| match error.get(kind) {
        Some(ContextValue::String(s)) => Some(s.as_str()),
        _ => None,
    };
    let option = text(ContextKind::InvalidArg).map_or_else(|| "an option".to_owned(), flag);
    let value = text(ContextKind::InvalidValue).unwrap_or("");
    match error.kind() {
        ErrorKind::UnknownArgument => {
            let mut what = format!(
                "unexpected argument '{}'",
                text(ContextKind::InvalidArg).unwrap_or("")
            );
            if let Some(suggested) = strings(error.get(ContextKind::SuggestedArg)).first() {
                let _ = write!(what, ", did you mean '{}'?", flag(suggested));
            }
            what
        }
        ErrorKind::InvalidValue if value.is_empty() => format!("{option} needs a value"),
        ErrorKind::InvalidValue => {
            let valid = strings(error.get(ContextKind::ValidValue));
            if valid.is_empty() {
                format!("invalid {option} '{value}'")
            } else {
                format!("invalid {option} '{value}': one of {}", valid.join(", "))
            }
        }
        ErrorKind::ValueValidation => {
            let why = std::error::Error::source(error)
                .map(ToString::to_string)
                .or_else(|| text(ContextKind::Custom).map(str::to_owned))
                .unwrap_or_else(|| "not valid".to_owned());
            format!("invalid {option} '{value}': {why}")
        }
        ErrorKind::ArgumentConflict => {
            let raw = text(ContextKind::InvalidArg).unwrap_or("");
            let prior = strings(error.get(ContextKind::PriorArg));
            if prior.is_empty() || prior == [raw] {
                format!("{option} cannot be given more than once")
            } else {
                format!(
                    "{option} cannot be used with {}",
                    alternatives(&prior, "or")
                )
            }
        }
        ErrorKind::MissingRequiredArgument => {
            let missing = alternatives(&strings(error.get(ContextKind::InvalidArg)), "and");
            match text(ContextKind::PriorArg) {
                Some(culprit) => format!("{culprit} needs {missing}"),
                None => format!("missing {missing}"),
            }
        }
        ErrorKind::NoEquals => format!("{option} needs '=' before its value"),
        ErrorKind::TooManyValues => format!("unexpected value '{value}' for {option}"),
        ErrorKind::TooFewValues | ErrorKind::WrongNumberOfValues => {
            format!("wrong number of values for {option}")
        }
        ErrorKind::InvalidUtf8 => "an argument is not valid UTF-8".to_owned(),
        kind => kind.as_str().unwrap_or("usage error").to_owned(),
    }
}

/// The strings of a context value (one or several).
fn strings(value: Option<&ContextValue>) -> Vec<String> {
    match value {
        Some(ContextValue::String(s)) => vec![s.clone()],
        Some(ContextValue::Strings(v)) => v.clone(),
        _ => Vec::new(),
    }
}

/// An option as clap shows it in errors, without its value name:
/// `--max-line <BYTES>` is `--max-line`, the operand `[PORT]` is `PORT`.
fn flag(shown: &str) -> String {
    let word = shown.split_whitespace().next().unwrap_or(shown);
    word.trim_matches(['[', ']', '<', '>', '.'].as_slice())
        .to_owned()
}

/// `a`, `a or b`, `a, b or c` (`and` instead of `or` as asked); a group
/// shown as `<--broker|--echo|--sum>` is its members, joined with `or`.
fn alternatives(items: &[String], and_or: &str) -> String {
    let names: Vec<String> = items
        .iter()
        .map(|item| {
            let inner = item.trim_matches(['<', '>'].as_slice());
            if inner.contains('|') {
                let members: Vec<String> = inner.split('|').map(flag).collect();
                alternatives(&members, "or")
            } else {
                flag(item)
            }
        })
        .collect();
    match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => {
            format!("{} {and_or} {last}", rest.join(", "))
        }
        _ => names.concat(),
    }
}

// ---------------------------------------------------------------------------
// The value parsers: each says in a few words why a value is refused (the
// option and the value are named by the error line).

/// Parses a non-negative number of seconds, such as `5` or `0.5`.
fn parse_seconds(text: &str) -> Result<Duration, String> {
    let secs: f64 = text
        .parse()
        .map_err(|_| "not a number of seconds".to_owned())?;
    Duration::try_from_secs_f64(secs).map_err(|_| "not a number of seconds".to_owned())
}

/// Parses a number of seconds greater than zero, such as `5` or `0.5`.
fn parse_positive_seconds(text: &str) -> Result<Duration, String> {
    match parse_seconds(text)? {
        d if d.is_zero() => Err("must be more than 0 seconds".to_owned()),
        d => Ok(d),
    }
}

/// Parses a count of at least 1 (`--max-clients`, `--max-line`,
/// `--max-queue`).
fn parse_count(text: &str) -> Result<usize, String> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err("not a whole number".to_owned());
    }
    match text.parse::<usize>() {
        Ok(0) => Err("must be at least 1".to_owned()),
        Ok(n) => Ok(n),
        Err(_) => Err("too large".to_owned()),
    }
}

/// Parses a count that may be 0 (`--history`).
fn parse_whole(text: &str) -> Result<usize, String> {
    match parse_count(text) {
        Err(_) if text == "0" => Ok(0),
        other => other,
    }
}

/// Parses the port of `chatd -p`: 0 (a free port) to 65535, or a service
/// name.
fn parse_listen_port(text: &str) -> Result<u16, String> {
    parse_port(text, 0)
}

/// Parses the PORT of `chat`: 1 to 65535, or a service name; 0 is not a
/// port one can connect to.
fn parse_connect_port(text: &str) -> Result<u16, String> {
    parse_port(text, 1)
}

/// A port number from `lowest` to 65535, or the name of a TCP service
/// (`http`, `gopher`) looked up with `getaddrinfo(3)` in `/etc/services`,
/// as `nc` does. Every number outside the range, negative ones included,
/// gets the same words: `out of range (ports are 1 to 65535)`.
fn parse_port(text: &str, lowest: u16) -> Result<u16, String> {
    let out_of_range = || format!("out of range (ports are {lowest} to 65535)");
    if text.is_empty() {
        return Err("a port cannot be empty".to_owned());
    }
    let digits = text.strip_prefix('-').unwrap_or(text);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return match text.parse::<u16>() {
            Ok(port) if port >= lowest => Ok(port),
            _ => Err(out_of_range()),
        };
    }
    crate::net::service_port(text)
        .ok_or_else(|| "not a port number, nor a TCP service of /etc/services".to_owned())
}

/// Parses a host: an IPv4 or IPv6 address, an IPv6 address in brackets
/// (`[::1]`, as in URLs; returned without them), or a host name (letters,
/// digits, `-`, `.` and `_`, at most 253 bytes). A host with a port
/// glued to it (`127.0.0.1:8080`) is refused with a hint.
pub(crate) fn parse_host(text: &str) -> Result<String, String> {
    if text.is_empty() {
        return Err("a host cannot be empty".to_owned());
    }
    let is_ipv6 = |s: &str| {
        s.split('%')
            .next()
            .is_some_and(|a| a.parse::<std::net::Ipv6Addr>().is_ok())
    };
    if let Some(inner) = text.strip_prefix('[') {
        return match inner.strip_suffix(']') {
            Some(inner) if is_ipv6(inner) => Ok(inner.to_owned()),
            _ if inner.contains("]:") => {
                Err("give the port as its own argument, not after the brackets".to_owned())
            }
            _ => Err("brackets hold an IPv6 address, as in [::1]".to_owned()),
        };
    }
    if text.parse::<IpAddr>().is_ok() || is_ipv6(text) {
        return Ok(text.to_owned());
    }
    if let Some((_, port)) = text.rsplit_once(':')
        && !text[..text.len() - port.len() - 1].contains(':')
    {
        return Err("give the port as its own argument, not after a colon".to_owned());
    }
    let name_char = |c: char| c.is_alphanumeric() || matches!(c, '-' | '.' | '_');
    if text.len() > 253 || !text.chars().all(name_char) {
        return Err("not a host name or an IP address".to_owned());
    }
    Ok(text.to_owned())
}

/// Parses `chat --name`: a name the room's `/nick` accepts (see
/// [`crate::broker::name`]: 1 to 32 visible characters, no spaces,
/// brackets or colons, nothing that looks like `chatd`), so that a name the
/// room would refuse, or a newline that would send a second line, fails
/// before connecting.
fn parse_name(text: &str) -> Result<String, String> {
    use crate::broker::name::{Refusal, check};
    match check(text.as_bytes()) {
        Ok(name) => Ok(name.to_owned()),
        Err(Refusal::Empty) => Err("a name cannot be empty".to_owned()),
        Err(why) => Err(why.to_string()),
    }
}

/// Checks a `--cert`/`--key` file when the command line is parsed: it
/// must be a file that can be opened (its content is read at start, with
/// the errors of [`crate::tls::Identity::load`]).
fn parse_pem_file(text: &str) -> Result<PathBuf, String> {
    let path = PathBuf::from(text);
    match std::fs::File::open(&path).and_then(|f| f.metadata()) {
        Ok(meta) if meta.is_file() => Ok(path),
        Ok(_) => Err("not a file".to_owned()),
        Err(e) => Err(crate::error::errno_of(&e).desc().to_owned()),
    }
}

/// Parses `chat --pin`: a SHA-256 fingerprint in one of the forms of
/// [`crate::tls::Fingerprint::parse`].
fn parse_pin(text: &str) -> Result<crate::tls::Fingerprint, String> {
    crate::tls::Fingerprint::parse(text)
}

/// Reads an `--allowfile`/`--denyfile` when the command line is parsed,
/// so that a missing file or a bad entry is a usage error.
fn parse_net_file(text: &str) -> Result<NetFile, String> {
    NetFile::read(PathBuf::from(text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn chatd(args: &[&str]) -> Result<ChatdArgs, UsageError> {
        try_parse_from(std::iter::once("chatd").chain(args.iter().copied()))
    }

    fn chat(args: &[&str]) -> Result<ChatArgs, UsageError> {
        try_parse_from(std::iter::once("chat").chain(args.iter().copied()))
    }

    /// The one-line description of the usage error of `args`.
    fn chatd_error(args: &[&str]) -> String {
        let err = chatd(args).expect_err("a usage error");
        assert_eq!(err.exit_code(), 2, "{args:?}");
        describe(&err)
    }

    fn chat_error(args: &[&str]) -> String {
        let err = chat(args).expect_err("a usage error");
        assert_eq!(err.exit_code(), 2, "{args:?}");
        describe(&err)
    }

    #[test]
    fn options_a_mode_would_ignore_are_refused() {
        for args in [
            &["--broker", "-1"][..],
            &["--broker", "--crlf"],
            &["--echo", "--crlf"],
            &["--sum", "--crlf"],
            &["--echo", "--sum"],
            &["--broker", "-a"],
            &["-d", "-a"],
        ] {
            assert!(chatd(args).is_err(), "{args:?}");
        }
        assert!(chatd(&["--echo", "-1"]).is_ok());
    }

    #[test]
    fn options_of_a_mode_name_the_mode_they_need() {
        assert_eq!(
            chatd_error(&["--max-line", "100"]),
            "--max-line needs --broker"
        );
        assert_eq!(
            chatd_error(&["-p", "0", "--max-clients=5"]),
            "--max-clients needs --broker, --echo or --sum"
        );
        assert_eq!(
            chatd_error(&["--speak-first"]),
            "--speak-first needs --alternating"
        );
        assert_eq!(
            chat_error(&["--listen-first", "host"]),
            "--listen-first needs --alternating"
        );
        assert!(chatd(&["--sum", "--max-clients", "5"]).is_ok());
        assert_eq!(chatd_error(&["--history", "5"]), "--history needs --broker");
        assert_eq!(chatd(&["--broker", "--history", "0"]).unwrap().history, 0);
        assert_eq!(chatd(&["--broker", "--history", "20"]).unwrap().history, 20);
        assert_eq!(
            chatd_error(&["--broker", "--history", "-1"]),
            "invalid --history '-1': not a whole number"
        );
    }

    #[test]
    fn conflicts_name_both_options() {
        assert_eq!(
            chatd_error(&["--echo", "--crlf"]),
            "--echo cannot be used with --crlf"
        );
        assert_eq!(chat_error(&["-4", "-6"]), "-4 cannot be used with -6");
        assert_eq!(
            chatd_error(&["-p", "1", "-p", "2"]),
            "--port cannot be given more than once"
        );
    }

    #[test]
    fn values_are_checked_before_anything_runs() {
        assert_eq!(
            chatd_error(&["--broker", "--max-line", "0"]),
            "invalid --max-line '0': must be at least 1"
        );
        assert_eq!(
            chatd_error(&["--broker", "--max-clients", "x"]),
            "invalid --max-clients 'x': not a whole number"
        );
        assert!(
            chatd_error(&["--broker", "--max-queue", "10"])
                .starts_with("invalid --max-queue '10': too small for --max-line 65536")
        );
        assert_eq!(
            chat_error(&["127.0.0.1", "0"]),
            "invalid PORT '0': out of range (ports are 1 to 65535)"
        );
        assert_eq!(
            chat_error(&["127.0.0.1", "70000"]),
            "invalid PORT '70000': out of range (ports are 1 to 65535)"
        );
        assert_eq!(
            chat_error(&["127.0.0.1", "-1"]),
            "invalid PORT '-1': out of range (ports are 1 to 65535)"
        );
        assert_eq!(
            chatd_error(&["-p", "70000"]),
            "invalid --port '70000': out of range (ports are 0 to 65535)"
        );
        assert_eq!(
            chat_error(&["-6", "127.0.0.1"]),
            "invalid HOST '127.0.0.1': not an IPv6 address (-6)"
        );
        assert_eq!(
            chatd_error(&["-4", "-b", "[::1]"]),
            "invalid --bind '::1': not an IPv4 address (-4)"
        );
        assert_eq!(chat_error(&["-x"]), "unexpected argument '-x'");
        assert_eq!(chat_error(&["--retry"]), "--retry needs a value");
        assert_eq!(
            chat_error(&["--retry", "-1"]),
            "invalid --retry '-1': not a number of seconds"
        );
    }

    #[test]
    fn hosts_take_brackets_and_refuse_glued_ports() {
        assert_eq!(parse_host("[::1]"), Ok("::1".to_owned()));
        assert_eq!(parse_host("::1"), Ok("::1".to_owned()));
        assert_eq!(parse_host("fe80::1%lo"), Ok("fe80::1%lo".to_owned()));
        assert_eq!(parse_host("localhost"), Ok("localhost".to_owned()));
        assert_eq!(parse_host("my_host.lan"), Ok("my_host.lan".to_owned()));
        assert!(parse_host("[127.0.0.1]").is_err());
        assert!(parse_host("[::1").is_err());
        assert!(parse_host("[::1]:80").unwrap_err().contains("port"));
        assert!(parse_host("127.0.0.1:8080").unwrap_err().contains("port"));
        assert!(parse_host("a b").is_err());
        assert!(parse_host("").is_err());
    }

    #[test]
    fn ports_are_numbers_or_services() {
        assert_eq!(parse_connect_port("8080"), Ok(8080));
        assert_eq!(parse_connect_port("65535"), Ok(65535));
        assert_eq!(parse_listen_port("0"), Ok(0));
        assert!(parse_connect_port("0").is_err());
        assert!(parse_connect_port("65536").is_err());
        assert!(parse_connect_port("no-such-service").is_err());
        assert!(parse_connect_port("").is_err());
        // /etc/services on every Debian-like system (netbase).
        if std::path::Path::new("/etc/services").exists() {
            assert_eq!(parse_connect_port("http"), Ok(80));
            assert_eq!(parse_listen_port("gopher"), Ok(70));
        }
    }

    #[test]
    fn wait_implies_an_idle_timeout_unless_one_is_given() {
        let args = chat(&["-w", "2", "host"]).unwrap();
        assert_eq!(args.wait, Some(Duration::from_secs(2)));
        assert_eq!(args.idle_timeout, Some(Duration::from_secs(2)));
        let args = chat(&["-w", "2", "--idle-timeout", "30", "host"]).unwrap();
        assert_eq!(args.idle_timeout, Some(Duration::from_secs(30)));
        assert_eq!(chat(&["host"]).unwrap().idle_timeout, None);
    }

    #[test]
    fn tls_options_need_tls_and_pins_are_checked_at_once() {
        assert_eq!(chatd_error(&["--print-cert"]), "--print-cert needs --tls");
        assert_eq!(
            chatd_error(&["--tls", "--cert", "/etc/hostname"]),
            "--cert needs --key"
        );
        assert_eq!(
            chatd_error(&["--tls", "--cert", "/nonexistent.pem"]),
            "invalid --cert '/nonexistent.pem': No such file or directory"
        );
        assert_eq!(
            chat_error(&["--insecure", "host"]),
            "--insecure needs --tls"
        );
        assert_eq!(
            chat_error(&["--tls", "--pin", "SHA256:AB", "host"]),
            "invalid --pin 'SHA256:AB': 2 hexadecimal digits, a SHA-256 fingerprint has 64"
        );
        let pin = format!("SHA256{}", ":ab".repeat(32));
        assert_eq!(
            chat_error(&["--tls", "--pin", &pin, "--accept-new", "host"]),
            "--pin cannot be used with --accept-new"
        );
        let args = chat(&["--tls", "--pin", &pin, "host"]).unwrap();
        assert_eq!(args.pin, Some(crate::tls::Fingerprint([0xab; 32])));
        let pem = "/etc/hostname";
        assert!(chatd(&["--tls", "--broker", "--cert", pem, "--key", pem]).is_ok());
    }

    #[test]
    fn each_program_has_its_own_help_for_cert() {
        use clap::CommandFactory;
        let help = |command: clap::Command| {
            let arg = command.get_arguments().find(|a| a.get_id() == "cert");
            arg.and_then(clap::Arg::get_help).map(ToString::to_string)
        };
        assert_eq!(help(ChatdArgs::command()).as_deref(), Some(CHATD_CERT_HELP));
        assert_eq!(help(ChatArgs::command()).as_deref(), Some(CHAT_CERT_HELP));
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
        assert!(parse_seconds("inf").is_err());
        assert!(parse_seconds("NaN").is_err());
        assert!(parse_positive_seconds("0").is_err());
    }

    #[test]
    fn names_follow_the_rules_of_nick() {
        assert_eq!(parse_name("alice"), Ok("alice".to_owned()));
        assert_eq!(parse_name("Éloïse"), Ok("Éloïse".to_owned()));
        assert!(parse_name("").is_err());
        assert!(parse_name("a\nhello").is_err());
        assert!(parse_name("a b").is_err());
        assert!(parse_name("chatd").is_err());
        assert!(parse_name("ch\u{0430}td").is_err());
        assert!(parse_name("bob\u{E0001}").is_err());
    }
}

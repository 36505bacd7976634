//! `chatd`: listen, then serve one client after another (the worksheets:
//! "a client must be able to reconnect after the previous one left").

use crate::cli::ChatdArgs;
use crate::error::Error;
use crate::session::{self, End};
use crate::signals::Signals;
use crate::{net, report, status};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;

/// Runs `chatd` with `args` until `--once` has served a session or a
/// terminating signal arrives.
///
/// Errors: a failed `bind`/`listen` ([`Error::Sys`]); [`Error::Signal`] for
/// SIGINT/SIGTERM/SIGHUP; with `--once`, the failure of its session. Without
/// `--once` a failed session is reported on stderr and the server goes back
/// to `accept`.
pub fn run(args: &ChatdArgs) -> Result<(), Error> {
    let signals = Signals::install().map_err(|e| Error::io("install signal handlers", e))?;
    let listener = net::listen(SocketAddr::new(args.bind, args.port))?;
    let local = listener
        .local_addr()
        .map_err(|e| Error::io("getsockname", e))?;
    status!("listening on {local}");
    loop {
        let (stream, peer) = net::accept(&listener, &signals)?;
        status!("connection from {peer}");
        let result = session::duplex::run(stream, peer, &signals, &[listener.as_raw_fd()]);
        match result {
            Ok(End::PeerClosed) => status!("{peer} closed the connection"),
            Ok(End::StdoutClosed) => return Ok(()),
            Err(err @ Error::Signal(_)) => return Err(err),
            Err(err) if args.once => return Err(err),
            Err(Error::Reported) => {}
            Err(err) => report!("{err}"),
        }
        if args.once {
            return Ok(());
        }
    }
}

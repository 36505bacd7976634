//! Fork-per-connection services of `chatd` (issue 8): `--echo` and `--sum`.
//! Not built yet.

use std::net::TcpListener;

use crate::cli::ChatdArgs;
use crate::error::Error;
use crate::signals::Signals;

/// Which service [`run`] provides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// `--echo`: every line comes back to its sender.
    Echo,
    /// `--sum`: the addition service of the Java course.
    Sum,
}

/// Serves `service` on `listener`, one forked child per connection, until a
/// terminating signal. Errors: not built yet.
pub fn run(
    _service: Service,
    _listener: TcpListener,
    _signals: &Signals,
    _args: &ChatdArgs,
) -> Result<(), Error> {
    Err(Error::Msg("--echo and --sum are not built yet".into()))
}

//! `chatd --broker`: the discussion room (issue 8). Not built yet: this
//! module is the place the event loop and the room state machine go.

use std::net::TcpListener;

use crate::cli::ChatdArgs;
use crate::error::Error;
use crate::signals::Signals;

/// Runs the room on `listener` until `arret` on standard input or a
/// terminating signal. Errors: not built yet.
pub fn run(_listener: TcpListener, _signals: &Signals, _args: &ChatdArgs) -> Result<(), Error> {
    Err(Error::Msg("--broker is not built yet".into()))
}

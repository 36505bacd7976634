//! `chat [-q] [--retry SECS] [HOST [PORT]]`: see `man chat`.

use std::process::ExitCode;

use chatd::cli::ChatArgs;

fn main() -> ExitCode {
    let args: ChatArgs = chatd::cli::parse();
    chatd::messages::init("chat", args.common.quiet, args.verbose);
    chatd::exit_status(chatd::client::run(&args))
}

//! `chat [-q] [--retry SECS] [HOST [PORT]]`: see `man chat`.

use std::process::ExitCode;

use chatd::cli::ChatArgs;
use clap::Parser;

fn main() -> ExitCode {
    let args = ChatArgs::parse();
    chatd::messages::init("chat", args.quiet);
    chatd::exit_status(chatd::client::run(&args))
}

//! `chatd [-p PORT] [-b ADDR] [-1] [-q]`: see `man chatd`.

use std::process::ExitCode;

use chatd::cli::ChatdArgs;
use clap::Parser;

fn main() -> ExitCode {
    let args = ChatdArgs::parse();
    chatd::messages::init("chatd", args.quiet);
    chatd::exit_status(chatd::server::run(&args))
}

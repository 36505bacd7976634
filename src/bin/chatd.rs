//! `chatd [-p PORT] [-b ADDR] [-1] [-q]`: see `man chatd`.

use std::process::ExitCode;

use chatd::cli::ChatdArgs;

fn main() -> ExitCode {
    let args: ChatdArgs = chatd::cli::parse();
    chatd::messages::init("chatd", args.common.quiet, args.verbose);
    chatd::exit_status(chatd::server::run(&args))
}

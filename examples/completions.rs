//! Generates the shell completion files of `chat` and `chatd` from their
//! clap definitions ([`chatd::cli::ChatArgs`], [`chatd::cli::ChatdArgs`]),
//! so the completions never drift from the command lines: there is no
//! hand-maintained copy. `scripts/install` runs it as
//!
//! ```text
//! cargo run --release --locked --example completions -- OUTDIR
//! ```
//!
//! and copies the result. Each file is written under the name and in the
//! directory layout it is installed with:
//!
//! | shell | files                               | installed under                      |
//! |-------|-------------------------------------|--------------------------------------|
//! | bash  | `bash/chat`, `bash/chatd`           | `share/bash-completion/completions/` |
//! | zsh   | `zsh/_chat`, `zsh/_chatd`           | `share/zsh/site-functions/`          |
//! | fish  | `fish/chat.fish`, `fish/chatd.fish` | `share/fish/vendor_completions.d/`   |
//!
//! The paths written are printed on standard output, one a line.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use chatd::cli::{ChatArgs, ChatdArgs};
use clap::{Command, CommandFactory};
use clap_complete::{Generator, Shell, generate};

/// The shells we install completions for, each with its subdirectory of
/// OUTDIR.
const SHELLS: [(Shell, &str); 3] = [
    (Shell::Bash, "bash"),
    (Shell::Zsh, "zsh"),
    (Shell::Fish, "fish"),
];

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let (Some(outdir), None) = (args.next(), args.next()) else {
        eprintln!("usage: cargo run --example completions -- OUTDIR");
        return ExitCode::from(2);
    };
    let outdir = PathBuf::from(outdir);
    let commands = [ChatArgs::command(), ChatdArgs::command()];
    for (shell, subdir) in SHELLS {
        for command in &commands {
            match write_completion(shell, command.clone(), &outdir.join(subdir)) {
                Ok(path) => println!("{}", path.display()),
                Err(err) => {
                    eprintln!("completions: {err}");
                    return ExitCode::FAILURE;
                }
            }
        }
    }
    ExitCode::SUCCESS
}

/// Writes the `shell` completion of `command` into `dir` (created if
/// needed) and returns its path. Errors name the file that failed.
fn write_completion(shell: Shell, mut command: Command, dir: &Path) -> Result<PathBuf, String> {
    let bin = command.get_name().to_owned();
    let path = dir.join(file_name(shell, &bin));
    fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    let file = File::create(&path).map_err(|e| format!("create {}: {e}", path.display()))?;
    let mut out = BufWriter::new(file);
    generate(shell, &mut command, &bin, &mut out);
    out.flush()
        .map_err(|e| format!("write {}: {e}", path.display()))?;
    Ok(path)
}

/// The name each shell looks the completion of `bin` up by: bash-completion
/// loads `completions/BIN` on demand, zsh autoloads `_BIN` from its
/// `fpath`, fish loads `BIN.fish`.
fn file_name(shell: Shell, bin: &str) -> String {
    match shell {
        Shell::Bash => bin.to_owned(),
        other => other.file_name(bin),
    }
}

//! `scripts/install` and `scripts/uninstall`, run for real into temporary
//! directories. Checks that an install into PREFIX puts the binaries, the
//! manual pages and the bash, zsh and fish completions where their users
//! look for them (`MANPATH=PREFIX/share/man man -w chat` finds the page,
//! `PREFIX/bin/chat --version` runs, the bash completion loads and
//! registers itself), that `DESTDIR` stages an install the way packagers
//! expect, and that `scripts/uninstall` removes exactly what was installed:
//! the files, the manifest and the directories the install created, and
//! nothing it did not create.
//!
//! The scripts build with `cargo build --release --locked`, in this
//! package's own target directory. That fat-LTO build is not done inside
//! `cargo test`, where it took both CPUs for minutes while the tests that
//! measure time ran: these tests are ignored there, and `scripts/test`
//! builds the release binaries first, then runs them (the scripts' own
//! builds are then up to date). By hand:
//!
//! ```sh
//! cargo build --release --locked
//! cargo test --locked --test install -- --ignored
//! ```

use std::collections::BTreeSet;
use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// How long the install may take: it builds in release mode, possibly
/// waiting for other builds of the same target directory to finish.
const INSTALL_TIMEOUT: Duration = Duration::from_secs(900);

/// How long any other command may take.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Every file an install puts under PREFIX (besides its manifest), with
/// its mode.
const INSTALLED: [(&str, u32); 10] = [
    ("bin/chatd", 0o755),
    ("bin/chat", 0o755),
    ("share/man/man1/chatd.1", 0o644),
    ("share/man/man1/chat.1", 0o644),
    ("share/bash-completion/completions/chatd", 0o644),
    ("share/bash-completion/completions/chat", 0o644),
    ("share/zsh/site-functions/_chatd", 0o644),
    ("share/zsh/site-functions/_chat", 0o644),
    ("share/fish/vendor_completions.d/chatd.fish", 0o644),
    ("share/fish/vendor_completions.d/chat.fish", 0o644),
];

/// Where the install records what it installed, under PREFIX.
const MANIFEST: &str = "share/chatd/install-manifest.txt";

#[test]
#[ignore = "the release build: scripts/test builds it, then runs these"]
fn install_into_a_prefix_works_and_uninstall_leaves_it_empty() {
    let prefix = tempfile::tempdir().expect("temporary PREFIX");
    let prefix = prefix.path();
    script("install", prefix, None);

    for (file, mode) in INSTALLED {
        let path = prefix.join(file);
        let meta = fs::metadata(&path)
            .unwrap_or_else(|e| panic!("install did not create {}: {e}", path.display()));
        assert_eq!(
            meta.permissions().mode() & 0o777,
            mode,
            "mode of {}",
            path.display()
        );
    }
    let manifest = read(&prefix.join(MANIFEST));
    for (file, _) in INSTALLED {
        let line = format!("file {}", prefix.join(file).display());
        assert!(
            manifest.lines().any(|l| l == line),
            "the manifest has no `{line}`:\n{manifest}"
        );
    }

    for bin in ["chatd", "chat"] {
        // The pages are found the way `man chat` looks for them...
        let out = run(
            Command::new("man")
                .args(["-w", bin])
                .env("MANPATH", prefix.join("share/man")),
            TIMEOUT,
        );
        let page = prefix.join(format!("share/man/man1/{bin}.1"));
        assert!(out.status.success(), "man -w {bin}: {}", out.stderr);
        assert_eq!(Path::new(out.stdout.trim()), page, "man -w {bin}");
        // ... and are the pages of the source tree.
        assert_eq!(
            read(&page),
            read(&source_dir().join(format!("man/{bin}.1"))),
            "installed {bin}.1"
        );

        let out = run(
            Command::new(prefix.join("bin").join(bin)).arg("--version"),
            TIMEOUT,
        );
        assert!(out.status.success(), "{bin} --version: {}", out.stderr);
        assert!(
            out.stdout.starts_with(&format!("{bin} ")),
            "{bin} --version printed {:?}",
            out.stdout
        );

        let completion = prefix.join("share/bash-completion/completions").join(bin);
        let out = run(
            Command::new("bash")
                .args(["-c", "source \"$1\" && complete -p \"$2\"", "bash"])
                .arg(&completion)
                .arg(bin),
            TIMEOUT,
        );
        assert!(
            out.status.success() && out.stdout.trim_end().ends_with(&format!(" {bin}")),
            "the bash completion {} does not load: {}{}",
            completion.display(),
            out.stdout,
            out.stderr
        );
    }
    syntax_check(prefix, "zsh", &["-n"], "share/zsh/site-functions/_");
    syntax_check(
        prefix,
        "fish",
        &["--no-execute"],
        "share/fish/vendor_completions.d/",
    );

    script("uninstall", prefix, None);
    assert_eq!(
        tree(prefix),
        BTreeSet::new(),
        "uninstall left files under {}",
        prefix.display()
    );
}

#[test]
#[ignore = "the release build: scripts/test builds it, then runs these"]
fn destdir_stages_an_install_and_uninstall_keeps_what_it_did_not_install() {
    let stage = tempfile::tempdir().expect("temporary DESTDIR");
    let stage = stage.path();
    // A file of another package, in a directory the install will share.
    let foreign = stage.join("usr/share/man/man1/other.1");
    fs::create_dir_all(foreign.parent().unwrap()).unwrap();
    fs::write(&foreign, ".Dd\n").unwrap();
    let before = tree(stage);

    script("install", Path::new("/usr"), Some(stage));
    for (file, _) in INSTALLED {
        let path = stage.join("usr").join(file);
        assert!(path.is_file(), "install did not stage {}", path.display());
    }
    // The manifest lists the final paths, without DESTDIR: it is part of
    // the package.
    let manifest = read(&stage.join("usr").join(MANIFEST));
    assert!(
        manifest.lines().any(|l| l == "file /usr/bin/chat"),
        "the manifest has no `file /usr/bin/chat`:\n{manifest}"
    );
    assert!(
        !manifest.contains(&stage.display().to_string()),
        "the manifest names DESTDIR:\n{manifest}"
    );
    assert!(
        !manifest.lines().any(|l| l == "dir /usr/share/man/man1"),
        "the manifest claims a directory that existed before:\n{manifest}"
    );

    script("uninstall", Path::new("/usr"), Some(stage));
    assert_eq!(
        tree(stage),
        before,
        "uninstall did not restore {} to its state before the install",
        stage.display()
    );
}

#[test]
#[ignore = "the release build: scripts/test builds it, then runs these"]
fn install_says_what_to_add_to_path_and_manpath() {
    // A PATH without PREFIX/bin; MANPATH unset (man-db then also searches
    // DIR/../share/man for each DIR of PATH), or set without PREFIX's pages.
    for manpath in [None, Some("/usr/share/man")] {
        let prefix = tempfile::tempdir().expect("temporary PREFIX");
        let prefix = prefix.path();
        let bin = prefix.join("bin");
        let out = install_saying(prefix, "", manpath);
        let advice: Vec<&str> = out
            .stderr
            .lines()
            .filter_map(|l| l.strip_prefix("    "))
            .filter(|l| l.starts_with("export "))
            .collect();
        assert!(
            out.stderr
                .contains(&format!("install: {} is not on PATH; ", bin.display())),
            "MANPATH {manpath:?}: nothing said about PATH:\n{}",
            out.stderr
        );
        assert!(
            advice.contains(&format!("export PATH=\"{}:$PATH\"", bin.display()).as_str()),
            "MANPATH {manpath:?}: no `export PATH` line:\n{}",
            out.stderr
        );
        if manpath.is_some() {
            let line = format!(
                "export MANPATH=\"{}:$MANPATH\"",
                prefix.join("share/man").display()
            );
            assert!(
                advice.contains(&line.as_str()),
                "MANPATH {manpath:?}: no `{line}`:\n{}",
                out.stderr
            );
        }
        // Following the advice works: the shell finds chat, and man its page.
        let exports = advice.join("\n");
        let out = run(
            &mut shell_with(
                &format!("{exports}\ncommand -v chat && man -w chat"),
                manpath,
            ),
            TIMEOUT,
        );
        assert_eq!(
            out.stdout,
            format!(
                "{}\n{}\n",
                bin.join("chat").display(),
                prefix.join("share/man/man1/chat.1").display()
            ),
            "after {advice:?}: {}",
            out.stderr
        );
        // And once followed, there is nothing more to say.
        let out = install_saying(prefix, &exports, manpath);
        assert!(
            !out.stderr.contains("export "),
            "after {advice:?}, still:\n{}",
            out.stderr
        );
        script("uninstall", prefix, None);
    }
}

/// `sh -c SCRIPT` with MANPATH set to `manpath`, or unset.
fn shell_with(script: &str, manpath: Option<&str>) -> Command {
    let mut command = Command::new("sh");
    command.args(["-c", script]);
    match manpath {
        Some(manpath) => command.env("MANPATH", manpath),
        None => command.env_remove("MANPATH"),
    };
    command
}

/// Runs `scripts/install PREFIX` after the shell lines `exports`, with
/// MANPATH set to `manpath` or unset, and returns what it said.
fn install_saying(prefix: &Path, exports: &str, manpath: Option<&str>) -> Output {
    let install = source_dir().join("scripts/install");
    let mut command = shell_with(&format!("{exports}\nexec \"$0\" \"$1\""), manpath);
    without_cargo_test_env(&mut command)
        .arg(install)
        .arg(prefix)
        .env("CARGO", env!("CARGO"))
        .env("CARGO_TARGET_DIR", source_dir().join("target"))
        .env_remove("DESTDIR");
    let out = run(&mut command, INSTALL_TIMEOUT);
    assert!(
        out.status.success(),
        "scripts/install {} failed ({}):\n{}{}",
        prefix.display(),
        out.status,
        out.stdout,
        out.stderr
    );
    out
}

/// Takes out of `command`'s environment the `CARGO_*` variables that
/// `cargo test` sets for this test (`CARGO_MANIFEST_DIR`, `CARGO_PKG_*`, …),
/// keeping `CARGO_HOME`: a build script that watches one (ring's does)
/// would see it change from `scripts/test`'s own release build, and the
/// script's `cargo build --release` would build everything again at fat LTO
/// (45 s here), then `scripts/test`'s next build once more.
fn without_cargo_test_env(command: &mut Command) -> &mut Command {
    for (name, _) in std::env::vars_os() {
        if let Some(name) = name.to_str()
            && name.starts_with("CARGO_")
            && name != "CARGO_HOME"
        {
            command.env_remove(name);
        }
    }
    command
}

/// Runs `scripts/NAME PREFIX` (with `DESTDIR` if given) and fails the
/// test, showing its output, unless it succeeds.
fn script(name: &str, prefix: &Path, destdir: Option<&Path>) {
    let mut command = Command::new(source_dir().join("scripts").join(name));
    without_cargo_test_env(&mut command)
        .arg(prefix)
        .env("CARGO", env!("CARGO"))
        .env("CARGO_TARGET_DIR", source_dir().join("target"))
        .env_remove("DESTDIR");
    if let Some(destdir) = destdir {
        command.env("DESTDIR", destdir);
    }
    let out = run(&mut command, INSTALL_TIMEOUT);
    assert!(
        out.status.success(),
        "scripts/{name} {} failed ({}):\n{}{}",
        prefix.display(),
        out.status,
        out.stdout,
        out.stderr
    );
}

/// Parses the installed zsh or fish completions with that shell. Without
/// the shell it fails, saying what to install (`scripts/test` installs
/// both): a skipped check would pass unseen.
fn syntax_check(prefix: &Path, shell: &str, args: &[&str], stem: &str) {
    let found = Command::new(shell)
        .args(["-c", "exit 0"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "{shell} not found: install the {shell} package (scripts/test does)"
    );
    for bin in ["chatd", "chat"] {
        let file = match shell {
            "fish" => prefix.join(format!("{stem}{bin}.fish")),
            _ => prefix.join(format!("{stem}{bin}")),
        };
        let out = run(Command::new(shell).args(args).arg(&file), TIMEOUT);
        assert!(
            out.status.success(),
            "{shell} cannot parse {}: {}",
            file.display(),
            out.stderr
        );
    }
}

fn source_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// Every file and directory under `root`, relative to it.
fn tree(root: &Path) -> BTreeSet<PathBuf> {
    let mut found = BTreeSet::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(dir) = todo.pop() {
        let entries =
            fs::read_dir(&dir).unwrap_or_else(|e| panic!("read_dir {}: {e}", dir.display()));
        for entry in entries {
            let path = entry.expect("directory entry").path();
            if path.is_dir() && !path.is_symlink() {
                todo.push(path.clone());
            }
            found.insert(path.strip_prefix(root).unwrap().to_path_buf());
        }
    }
    found
}

struct Output {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

/// Runs `command` with no input, in its own process group, collecting its
/// output. If it has not ended after `limit`, the whole group (the script
/// and the cargo it started) is killed and the test fails.
fn run(command: &mut Command, limit: Duration) -> Output {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    let collect = |mut pipe: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            String::from_utf8_lossy(&bytes).into_owned()
        })
    };
    let stdout = collect(Box::new(child.stdout.take().expect("piped stdout")));
    let stderr = collect(Box::new(child.stderr.take().expect("piped stderr")));
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() > deadline {
            let group = i32::try_from(child.id()).expect("pid fits in pid_t");
            // SAFETY: kill(2) with a negative pid signals the process group
            // the child leads (process_group(0) above); it touches no memory.
            unsafe { libc::kill(-group, libc::SIGKILL) };
            let _ = child.wait();
            panic!("{command:?} still running after {limit:?}: killed");
        }
        thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    }
}

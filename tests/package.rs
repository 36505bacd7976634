//! `scripts/package`, the Debian package, installed into this machine with
//! `dpkg -i` as a lab's administrator would: `lintian` finds no error in
//! it; once installed, `man chat` finds its page, `chat --version` runs,
//! and bash (through bash-completion's loader), zsh and fish find their
//! completions where Debian puts them; `dpkg --purge` then leaves nothing
//! of it: every file it installed is gone, and so is every directory it
//! created, while the directories it shares with other packages stay.
//!
//! It changes the machine, so it needs root (or `sudo` without a
//! password), and `cargo test` does not run it: `scripts/test` does, as a
//! step of its own (`cargo test --test package -- --ignored`), once the
//! release build is there. It refuses to run over a chatd package already
//! installed: it would remove it.

mod util;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use util::*;

/// How long building the package may take: a release build when
/// target/release is not up to date, possibly waiting for another build
/// of the same target directory; then lintian, which takes about 25 s.
const BUILD_TIMEOUT: Duration = Duration::from_secs(900);

/// The package's name.
const PACKAGE: &str = "chatd";

#[test]
#[ignore = "installs a package into the machine: scripts/test runs it, as root"]
fn the_debian_package_installs_works_and_leaves_nothing_when_purged() {
    let out = tempfile::tempdir().expect("temporary directory");
    let deb = build_package(out.path());

    let (lint, ok) = run(
        "lintian",
        &[
            "--fail-on",
            "error",
            "--no-tag-display-limit",
            path_str(&deb),
        ],
        &[],
        BUILD_TIMEOUT,
    );
    assert!(ok, "lintian finds errors in {}:\n{lint}", deb.display());

    let (shown, status) = run_text("dpkg-query", &["-W", "-f=${Status}", PACKAGE]);
    assert!(
        !status || !shown.contains(" installed"),
        "a {PACKAGE} package is installed on this machine ({shown}); this test installs and \
         purges its own: remove it first (dpkg --purge {PACKAGE})"
    );

    // What the package holds, and which of those paths this machine has
    // already (the directories it shares with other packages).
    let contents = contents(&deb);
    let existed: BTreeSet<PathBuf> = contents.iter().filter(|p| p.exists()).cloned().collect();
    assert!(
        contents.iter().all(|p| p.is_dir() || !existed.contains(p)),
        "files of the package exist before it is installed: {existed:?}"
    );

    let installed = Installed::new(&deb);
    // dpkg records every path of the package.
    let (listed, ok) = run_text("dpkg", &["-L", PACKAGE]);
    assert!(ok, "dpkg -L {PACKAGE}: {listed}");
    let listed: BTreeSet<PathBuf> = listed
        .lines()
        .filter(|l| *l != "/.")
        .map(PathBuf::from)
        .collect();
    assert_eq!(listed, contents, "dpkg -L against the package's contents");

    for bin in ["chatd", "chat"] {
        // man finds the page without MANPATH (other copies, say under
        // /usr/local, may be found too).
        let (pages, ok) = run(
            "man",
            &["-w", "-a", bin],
            &["-u", "MANPATH"],
            Duration::from_secs(60),
        );
        let page = format!("/usr/share/man/man1/{bin}.1.gz");
        assert!(
            ok && pages.lines().any(|l| l == page),
            "man -w -a {bin} does not find {page}: {pages}"
        );
        let (version, ok) = run_text(&format!("/usr/bin/{bin}"), &["--version"]);
        assert!(
            ok && version.starts_with(&format!("{bin} ")),
            "{bin} --version: {version}"
        );
        // bash-completion loads it on first use, from its own directory
        // (its loader returns 124, "try the completion again", when it
        // found one).
        let (complete, ok) = run_text(
            "bash",
            &[
                "-c",
                "source /usr/share/bash-completion/bash_completion && \
                 { _completion_loader \"$0\"; complete -p \"$0\"; }",
                bin,
            ],
        );
        assert!(
            ok && complete.trim_end().ends_with(&format!(" {bin}")),
            "bash-completion does not load the completion of {bin}: {complete}"
        );
        // zsh's compinit finds it in Debian's vendor-completions.
        let (zsh, ok) = run_text(
            "zsh",
            &[
                "-fc",
                "autoload -U compinit && compinit -u -D && print -r -- ${_comps[$0]}",
                bin,
            ],
        );
        assert!(
            ok && zsh.trim() == format!("_{bin}"),
            "zsh has no completion for {bin}: {zsh}"
        );
        // fish completes the options from vendor_completions.d.
        let (fish, ok) = run_text("fish", &["-c", &format!("complete -C '{bin} --vers'")]);
        assert!(
            ok && fish.lines().any(|l| l.starts_with("--version")),
            "fish does not complete {bin} --vers: {fish}"
        );
    }

    installed.purge();
    let left: Vec<&PathBuf> = contents
        .iter()
        .filter(|p| !existed.contains(*p) && (p.exists() || p.is_symlink()))
        .collect();
    assert!(left.is_empty(), "dpkg --purge left {left:?}");
    let gone: Vec<&PathBuf> = existed.iter().filter(|p| !p.exists()).collect();
    assert!(
        gone.is_empty(),
        "dpkg --purge removed directories that were there before: {gone:?}"
    );
    let (shown, _) = run_text("dpkg-query", &["-W", "-f=${Status}", PACKAGE]);
    assert!(
        !shown.contains(" installed") && !shown.contains("config-files"),
        "dpkg still knows {PACKAGE}: {shown}"
    );
}

/// The package, installed with `dpkg -i`; purged when dropped, so that a
/// failed check does not leave it on the machine.
struct Installed {
    purged: bool,
}

impl Installed {
    fn new(deb: &Path) -> Installed {
        let (text, ok) = run_text_root("dpkg", &["-i", path_str(deb)]);
        assert!(ok, "dpkg -i {}: {text}", deb.display());
        Installed { purged: false }
    }

    fn purge(mut self) {
        self.purged = true;
        let (text, ok) = run_text_root("dpkg", &["--purge", PACKAGE]);
        assert!(ok, "dpkg --purge {PACKAGE}: {text}");
    }
}

impl Drop for Installed {
    fn drop(&mut self) {
        if !self.purged {
            run_text_root("dpkg", &["--purge", PACKAGE]);
        }
    }
}

/// Runs `scripts/package OUT_DIR`, with a maintainer of its own (git's
/// identity may be unset) and this package's cargo and target directory;
/// returns the path it prints.
fn build_package(out_dir: &Path) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let script = root.join("scripts/package");
    let target = root.join("target");
    // Without the CARGO_* variables `cargo test` set for this test, which
    // a build script may watch (ring's does): scripts/test's release build
    // is then up to date, not built again at fat LTO.
    let unset: Vec<String> = std::env::vars()
        .map(|(name, _)| name)
        .filter(|name| name.starts_with("CARGO_") && name != "CARGO_HOME")
        .flat_map(|name| ["-u".to_owned(), name])
        .collect();
    let mut args: Vec<&str> = unset.iter().map(String::as_str).collect();
    let settings = [
        &format!("CARGO={}", env!("CARGO")),
        &format!("CARGO_TARGET_DIR={}", target.display()),
        "DEBFULLNAME=chatd tests",
        "DEBEMAIL=tests@chatd.invalid",
        path_str(&script),
        path_str(out_dir),
    ];
    args.extend(settings.iter().map(|s| -> &str { s }));
    let mut build = spawn_with("env", &args, Stdio::null());
    let status = build.wait_within(BUILD_TIMEOUT);
    assert!(
        status.success(),
        "scripts/package failed:\n{}",
        build.dump()
    );
    let deb = PathBuf::from(build.stdout_text().trim());
    assert!(
        deb.is_file() && deb.extension().is_some_and(|e| e == "deb"),
        "scripts/package printed no .deb:\n{}",
        build.dump()
    );
    deb
}

/// Every path in the package (`dpkg-deb --contents`), absolute, its
/// directories included, `/` left out.
fn contents(deb: &Path) -> BTreeSet<PathBuf> {
    let (text, ok) = run_text("dpkg-deb", &["--contents", path_str(deb)]);
    assert!(ok, "dpkg-deb --contents: {text}");
    text.lines()
        .filter_map(|line| line.split_whitespace().nth(5))
        .filter_map(|path| path.strip_prefix('.'))
        .map(|path| path.trim_end_matches('/'))
        .filter(|path| !path.is_empty())
        .map(PathBuf::from)
        .collect()
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 path")
}

/// Runs `env ENV... program args` (`-u NAME` in ENV unsets NAME), for
/// at most `limit`: its standard output, then its standard error, and
/// whether it succeeded.
fn run(program: &str, args: &[&str], env: &[&str], limit: Duration) -> (String, bool) {
    let mut all = env.to_vec();
    all.push(program);
    all.extend_from_slice(args);
    let mut proc = spawn_with("env", &all, Stdio::null());
    let ok = proc.wait_within(limit).success();
    (proc.stdout_text() + &proc.stderr_text(), ok)
}

/// [`run`] with no change to the environment, for at most a minute.
fn run_text(program: &str, args: &[&str]) -> (String, bool) {
    run(program, args, &[], Duration::from_secs(60))
}

/// [`run_text`] as root: as it is when the tests run as root (CI), else
/// through `sudo -n` (no password prompt: it fails instead).
fn run_text_root(program: &str, args: &[&str]) -> (String, bool) {
    // SAFETY: geteuid(2) cannot fail and touches no memory.
    if unsafe { libc::geteuid() } == 0 {
        return run_text(program, args);
    }
    let mut all = vec!["-n", program];
    all.extend_from_slice(args);
    let (text, ok) = run_text("sudo", &all);
    assert!(
        ok || !text.contains("password"),
        "{program} needs root: run scripts/test as root (as CI does), or allow sudo without \
         a password: {text}"
    );
    (text, ok)
}

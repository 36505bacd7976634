//! Keeps the manual pages `man/chatd.1` and `man/chat.1` in step with the
//! command lines, by running the real binaries with `--help`. For each of
//! `chatd` and `chat`, it checks that:
//!
//! - every option `--help` prints, short and long form, is an `.It Fl …`
//!   item of the page's OPTIONS list, with the same value name (`Ar PORT`
//!   for `<PORT>`), and the list has no option `--help` does not print
//!   (`-h`/`--help` and `-V`/`--version` are in both);
//! - every operand `--help` prints (`Arguments:`) is an `.It Ar …` item of
//!   the OPTIONS section, and no other operand is;
//! - the page's SYNOPSIS, rendered from its `.Nm/.Op/.Fl/.Ar` macros, is the
//!   `Usage:` line of `--help` (so that line must be written out with clap's
//!   `override_usage`, not left as `[OPTIONS]`);
//! - that usage line names every option of `--help` except `-h` and `-V`, and
//!   no option `--help` does not have (so a hand-written usage line cannot go
//!   stale when an option is added to `src/cli.rs`).
//!
//! It also checks that `mandoc -Tlint -W warning` finds nothing to say about
//! either page, that `man -l` renders each one without a warning, and that
//! the "Options at a glance" table of `README.md` has a row, ticked in the
//! program's column, for every option of each `--help` (with the same
//! value name), and no option `--help` does not print.
//!
//! And that `scripts/bench --help` and the README's table of benchmark
//! sections give every section the same expected duration.

use std::collections::BTreeSet;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// How long `--help`, `mandoc` or `man` may run before the test fails.
const TIMEOUT: Duration = Duration::from_secs(30);

/// One program and its manual page.
struct Tool {
    name: &'static str,
    bin: &'static str,
    page: &'static str,
}

const CHATD: Tool = Tool {
    name: "chatd",
    bin: env!("CARGO_BIN_EXE_chatd"),
    page: "man/chatd.1",
};

const CHAT: Tool = Tool {
    name: "chat",
    bin: env!("CARGO_BIN_EXE_chat"),
    page: "man/chat.1",
};

impl Tool {
    fn page_path(&self) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join(self.page)
    }

    fn page(&self) -> Page {
        let path = self.page_path();
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        Page::parse(&text)
    }

    fn help(&self) -> Help {
        let out = run(Command::new(self.bin).arg("--help").env("NO_COLOR", "1"));
        assert!(
            out.status.success(),
            "{} --help failed: {}\n{}",
            self.name,
            out.status,
            out.stderr
        );
        Help::parse(&out.stdout)
    }
}

// ---------------------------------------------------------------------------
// The tests

#[test]
fn chatd_page_lists_exactly_the_options_of_help() {
    options_match(&CHATD);
}

#[test]
fn chat_page_lists_exactly_the_options_of_help() {
    options_match(&CHAT);
}

#[test]
fn chatd_page_lists_exactly_the_operands_of_help() {
    operands_match(&CHATD);
}

#[test]
fn chat_page_lists_exactly_the_operands_of_help() {
    operands_match(&CHAT);
}

#[test]
fn chatd_synopsis_is_the_usage_line_of_help() {
    synopsis_matches(&CHATD);
}

#[test]
fn chat_synopsis_is_the_usage_line_of_help() {
    synopsis_matches(&CHAT);
}

#[test]
fn chatd_usage_line_names_every_option_of_help() {
    usage_names_every_option(&CHATD);
}

#[test]
fn chat_usage_line_names_every_option_of_help() {
    usage_names_every_option(&CHAT);
}

#[test]
fn readme_table_lists_exactly_the_options_of_help() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    let readme = std::fs::read_to_string(&path).expect("read README.md");
    let table = readme_options(&readme);
    for (column, tool) in [(0, &CHATD), (1, &CHAT)] {
        let help = tool.help();
        let ticked: Vec<&(String, Option<String>, [bool; 2])> =
            table.iter().filter(|row| row.2[column]).collect();
        for option in &help.options {
            if option
                .flags
                .iter()
                .any(|f| f == "--help" || f == "--version")
            {
                continue;
            }
            let row = ticked
                .iter()
                .find(|row| option.flags.contains(&row.0))
                .unwrap_or_else(|| {
                    panic!(
                        "README.md: no row ticked for {} in the options table for `{}`",
                        tool.name, option.source
                    )
                });
            assert_eq!(
                row.1.as_deref(),
                option.values.first().map(String::as_str),
                "README.md: the row of {} names another value than `{}` of {} --help",
                row.0,
                option.source,
                tool.name
            );
        }
        let shown: BTreeSet<&str> = help.options.iter().flat_map(|o| o.flags()).collect();
        let operands: BTreeSet<&str> = help.operands.iter().map(String::as_str).collect();
        for row in &ticked {
            assert!(
                shown.contains(row.0.as_str()) || operands.contains(row.0.as_str()),
                "README.md: the options table ticks {} for {}, which its --help does not list",
                row.0,
                tool.name
            );
        }
    }
}

/// The rows of the README's "Options at a glance" table, one entry per
/// option named in the first cell (`` `-p PORT` ``, `` `-4`, `-6` ``):
/// the option, its value name, and the ticks of the chatd and chat
/// columns.
fn readme_options(readme: &str) -> Vec<(String, Option<String>, [bool; 2])> {
    let start = readme
        .find("Options at a glance")
        .expect("README.md has an \"Options at a glance\" table");
    let mut rows = Vec::new();
    for line in readme[start..].lines().skip(1) {
        let line = line.trim();
        if line.is_empty() && !rows.is_empty() {
            break;
        }
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() < 5 || cells[1] == "option" || cells[1].starts_with("---") {
            continue;
        }
        let ticks = [cells[2] == "✓", cells[3] == "✓"];
        for code in cells[1].split('`').skip(1).step_by(2) {
            let mut words = code.split_whitespace();
            let name = words.next().unwrap_or_default().to_owned();
            // `[PORT]` is an optional operand; `ADDR[/PREFIX]` a value name.
            let value = words.next().map(|v| {
                v.strip_prefix('[')
                    .and_then(|v| v.strip_suffix(']'))
                    .unwrap_or(v)
                    .to_owned()
            });
            rows.push((name, value, ticks));
        }
    }
    assert!(rows.len() > 10, "no options table found in README.md");
    rows
}

/// `scripts/bench --help` gives each section (one page in
/// scripts/bench.d) its expected duration, and the README's table of
/// sections gives the same ones.
#[test]
fn bench_sections_have_the_same_durations_in_help_and_readme() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = run(Command::new(root.join("scripts/bench")).arg("--help"));
    assert!(out.status.success(), "scripts/bench --help: {}", out.stderr);
    let is_duration = |d: &str| {
        d.split_once(' ').is_some_and(|(n, unit)| {
            n.bytes().all(|b| b.is_ascii_digit()) && ["s", "min"].contains(&unit)
        })
    };
    // `  NAME      WHAT                                  1 min`
    let help: BTreeSet<(String, String)> = out
        .stdout
        .lines()
        .filter_map(|line| {
            let name = line.strip_prefix("  ")?.split(' ').next()?;
            let words: Vec<&str> = line.split_whitespace().collect();
            let duration = words[words.len().checked_sub(2)?..].join(" ");
            root.join(format!("scripts/bench.d/{name}.sh"))
                .is_file()
                .then(|| (name.to_owned(), duration))
        })
        .collect();
    let pages = fs::read_dir(root.join("scripts/bench.d"))
        .expect("scripts/bench.d")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|f| f.ends_with(".sh") && f != "lib.sh" && f != "data.sh")
        .count();
    assert_eq!(help.len(), pages, "sections in --help:\n{}", out.stdout);
    for (name, duration) in &help {
        assert!(
            is_duration(duration),
            "{name}: no duration in --help: {duration:?}"
        );
    }
    // `| `NAME` | WHAT | 1 min |`
    let readme = fs::read_to_string(root.join("README.md")).expect("README.md");
    let table: BTreeSet<(String, String)> = readme
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let name = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
            let duration = cells.get(3)?;
            help.iter()
                .any(|(n, _)| n == name)
                .then(|| (name.to_owned(), duration.to_string()))
        })
        .collect();
    assert_eq!(
        table, help,
        "README's table of bench sections against --help"
    );
}

#[test]
fn pages_pass_mandoc_lint() {
    for tool in [&CHATD, &CHAT] {
        let out = run(Command::new("mandoc")
            .args(["-Tlint", "-W", "warning"])
            .arg(tool.page_path()));
        assert!(
            out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
            "mandoc -Tlint -W warning {} ({}):\n{}{}",
            tool.page,
            out.status,
            out.stdout,
            out.stderr
        );
    }
}

#[test]
fn pages_render_with_man_without_warnings() {
    // The user's locale, and the C locale (plain ASCII output), where a
    // special character groff cannot draw would be a warning.
    for locale in [None, Some("C")] {
        for tool in [&CHATD, &CHAT] {
            let mut command = Command::new("man");
            command
                .args(["--warnings", "-l"])
                .arg(tool.page_path())
                .env("MANPAGER", "cat")
                .env("PAGER", "cat")
                .env("MANWIDTH", "80");
            if let Some(locale) = locale {
                command.env("LC_ALL", locale);
            }
            let out = run(&mut command);
            assert!(
                out.status.success() && out.stderr.is_empty(),
                "man -l {} (LC_ALL={locale:?}, {}):\n{}",
                tool.page,
                out.status,
                out.stderr
            );
            for heading in ["NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "EXIT STATUS"] {
                assert!(
                    out.stdout.lines().any(|l| l == heading),
                    "man -l {} shows no {heading} section:\n{}",
                    tool.page,
                    out.stdout
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------
// The checks

fn options_match(tool: &Tool) {
    let help = tool.help();
    let page = tool.page();
    let shown: BTreeSet<&str> = help.options.iter().flat_map(|o| o.flags()).collect();
    let listed: BTreeSet<&str> = page.options.iter().flat_map(|o| o.flags()).collect();
    let missing: Vec<_> = shown.difference(&listed).collect();
    let extra: Vec<_> = listed.difference(&shown).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{}: the OPTIONS list of {} and `{} --help` differ:\n  \
         printed by --help but not in the page: {missing:?}\n  \
         in the page but not printed by --help: {extra:?}",
        tool.name,
        tool.page,
        tool.name
    );
    // Same grouping (`-p` and `--port` in one item) and value names.
    for option in &help.options {
        let item = page
            .options
            .iter()
            .find(|item| item.flags().any(|f| option.flags.contains(&f.to_owned())))
            .expect("every flag is listed (checked above)");
        assert_eq!(
            (&item.flags, &item.values),
            (&option.flags, &option.values),
            "{}: the item `.{}` of {} does not match `{}` of --help \
             (same flags, same value names)",
            tool.name,
            item.source,
            tool.page,
            option.source
        );
    }
}

fn operands_match(tool: &Tool) {
    let help = tool.help();
    let page = tool.page();
    assert_eq!(
        page.operands, help.operands,
        "{}: the `.It Ar` operands in the OPTIONS section of {} \
         differ from the Arguments of --help",
        tool.name, tool.page
    );
}

fn synopsis_matches(tool: &Tool) {
    let help = tool.help();
    let page = tool.page();
    assert_eq!(
        page.synopsis, help.usage,
        "{}: the SYNOPSIS of {} (left) is not the usage line of --help \
         (right): correct the page, or write the usage line out in \
         src/cli.rs with #[command(override_usage = \"{}\")]",
        tool.name, tool.page, page.synopsis
    );
}

fn usage_names_every_option(tool: &Tool) {
    let help = tool.help();
    let words: Vec<&str> = help
        .usage
        .split(|c: char| c.is_whitespace() || c == '[' || c == ']')
        .filter(|w| !w.is_empty())
        .collect();
    let known: BTreeSet<&str> = help.options.iter().flat_map(|o| o.flags()).collect();
    for word in words.iter().filter(|w| w.starts_with('-')) {
        assert!(
            known.contains(word),
            "{}: the usage line `{}` names {word}, which --help does not list",
            tool.name,
            help.usage
        );
    }
    for option in &help.options {
        if option
            .flags
            .iter()
            .any(|f| f == "--help" || f == "--version")
        {
            continue;
        }
        assert!(
            option.flags().any(|f| words.contains(&f)),
            "{}: the usage line `{}` does not name the option `{}` of --help",
            tool.name,
            help.usage,
            option.source
        );
    }
    for operand in &help.operands {
        assert!(
            words.contains(&operand.as_str()),
            "{}: the usage line `{}` does not name the operand {operand}",
            tool.name,
            help.usage
        );
    }
}

// ---------------------------------------------------------------------------
// `--help`, as clap prints it

/// One option, from `--help` (`  -p, --port <PORT>  …`) or from the page
/// (`.It Fl p , Fl \-port Ar PORT`).
#[derive(Debug)]
struct Opt {
    /// Every spelling, in order: `["-p", "--port"]`.
    flags: Vec<String>,
    /// Value names: `["PORT"]`.
    values: Vec<String>,
    /// The line it came from, for messages.
    source: String,
}

impl Opt {
    fn flags(&self) -> impl Iterator<Item = &str> {
        self.flags.iter().map(String::as_str)
    }
}

/// What `--help` says.
#[derive(Debug)]
struct Help {
    /// The text after `Usage: `, continuation lines joined, whitespace
    /// collapsed.
    usage: String,
    options: Vec<Opt>,
    /// Operand names, without brackets: `["HOST", "PORT"]`.
    operands: Vec<String>,
}

impl Help {
    /// Reads clap's help layout: a `Usage:` line, then headings such as
    /// `Arguments:` and `Options:` whose entries start with two spaces and
    /// `-` (options) or `[`/`<` (operands); descriptions either follow on the
    /// same line after two spaces, or on lines indented further.
    fn parse(text: &str) -> Help {
        let mut usage = None;
        let mut options = Vec::new();
        let mut operands = Vec::new();
        let mut heading = "";
        let mut lines = text.lines().peekable();
        while let Some(line) = lines.next() {
            if let Some(rest) = line.strip_prefix("Usage:") {
                let mut joined = rest.to_owned();
                while let Some(next) = lines.next_if(|l| l.starts_with(' ')) {
                    joined.push(' ');
                    joined.push_str(next);
                }
                usage = Some(normalize(&joined));
                continue;
            }
            if !line.starts_with(' ') && line.ends_with(':') {
                heading = line;
                continue;
            }
            // Entries are indented by 2 (`  -q, --quiet`, `  [HOST]`) or 6
            // (`      --retry <SECS>`, no short form); descriptions that
            // start on their own line are indented by 10.
            let entry = line.trim_start();
            let indent = line.len() - entry.len();
            if entry.is_empty() || indent >= 10 {
                continue;
            }
            let spec = entry.split("  ").next().unwrap_or_default();
            match (heading, spec.chars().next()) {
                (_, Some('-')) => {
                    let words = spec.split([',', ' ']).filter(|w| !w.is_empty());
                    let (flags, values): (Vec<_>, Vec<_>) =
                        words.map(str::to_owned).partition(|w| w.starts_with('-'));
                    let values = values
                        .iter()
                        .map(|v| v.trim_matches(['<', '>', '.'].as_slice()).to_owned())
                        .collect();
                    options.push(Opt {
                        flags,
                        values,
                        source: spec.to_owned(),
                    });
                }
                ("Arguments:", Some('[' | '<')) => operands.push(
                    spec.trim_matches(['[', ']', '<', '>', '.'].as_slice())
                        .to_owned(),
                ),
                _ => {}
            }
        }
        let usage = usage.unwrap_or_else(|| panic!("no `Usage:` line in --help:\n{text}"));
        assert!(!options.is_empty(), "no options found in --help:\n{text}");
        Help {
            usage,
            options,
            operands,
        }
    }
}

/// Collapses whitespace, and drops it after `[` and before `]`.
fn normalize(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace("[ ", "[")
        .replace(" ]", "]")
}

// ---------------------------------------------------------------------------
// The mdoc page

/// What the page says, from its mdoc source.
#[derive(Debug)]
struct Page {
    /// The SYNOPSIS as it renders, normalized like [`Help::usage`].
    synopsis: String,
    /// The `.It Fl …` items of the OPTIONS section's top-level lists.
    options: Vec<Opt>,
    /// The `.It Ar …` items there.
    operands: Vec<String>,
}

/// The mdoc macros that may be called on a macro line after another
/// (parsed and callable): a word among them is a macro, not an argument.
const CALLABLE: &[&str] = &[
    "Ac", "Ao", "Aq", "Ar", "Bc", "Bo", "Bq", "Cm", "Dc", "Do", "Dq", "Dv", "Em", "Er", "Ev", "Fl",
    "Ic", "Li", "Nm", "No", "Ns", "Oc", "Oo", "Op", "Pa", "Pc", "Po", "Pq", "Qc", "Qo", "Ql", "Qq",
    "Sc", "So", "Sq", "Sx", "Sy", "Va", "Xr",
];

/// Punctuation that mdoc treats as delimiters, not as arguments.
const DELIMITERS: &[&str] = &[",", ".", ";", ":", "(", ")", "[", "]", "|", "?", "!"];

impl Page {
    fn parse(text: &str) -> Page {
        let mut section = String::new();
        let mut name = None;
        let mut synopsis = Vec::new();
        let mut options = Vec::new();
        let mut operands = Vec::new();
        let mut depth = 0;
        for line in text.lines() {
            let Some(macro_line) = line.strip_prefix('.') else {
                if section == "SYNOPSIS" {
                    synopsis.push(Line::Text(line.to_owned()));
                }
                continue;
            };
            let words = split_args(macro_line);
            let Some((head, args)) = words.split_first() else {
                continue;
            };
            match head.as_str() {
                "\\\"" => continue,
                "Sh" => section = args.join(" "),
                "Nm" if section == "NAME" && name.is_none() => name = args.first().cloned(),
                _ => {}
            }
            if section == "SYNOPSIS" && head != "Sh" {
                synopsis.push(Line::Macro(words.clone()));
            }
            if section != "OPTIONS" {
                continue;
            }
            match head.as_str() {
                "Bl" => depth += 1,
                "El" => depth -= 1,
                "It" if depth == 1 => match args.first().map(String::as_str) {
                    Some("Fl") => options.push(option_item(macro_line, args)),
                    Some("Ar") => operands.push(unescape(&args[1])),
                    _ => panic!("OPTIONS item is neither `Fl …` nor `Ar …`: .{macro_line}"),
                },
                _ => {}
            }
        }
        let name = name.expect("the page has a `.Nm NAME` in its NAME section");
        Page {
            synopsis: render_synopsis(&synopsis, &name),
            options,
            operands,
        }
    }
}

/// An `.It Fl p , Fl \-port Ar PORT` item: each argument of `Fl` is a flag
/// (`\-port` is `--port`), each argument of `Ar` a value name.
fn option_item(source: &str, args: &[String]) -> Opt {
    let mut flags = Vec::new();
    let mut values = Vec::new();
    let mut current = "";
    for arg in args {
        if CALLABLE.contains(&arg.as_str()) {
            current = arg;
        } else if DELIMITERS.contains(&arg.as_str()) {
            current = "";
        } else if current == "Fl" {
            flags.push(format!("-{}", unescape(arg)));
        } else if current == "Ar" {
            values.push(unescape(arg));
        }
    }
    Opt {
        flags,
        values,
        source: source.to_owned(),
    }
}

/// Renders the SYNOPSIS lines as text: `.Nm` is the name, `.Op` opens a
/// bracket closed at the end of its line (nested ones too), `.Fl x` is
/// `-x`, `.Ar X` is `X`, `.Ns` removes the space, delimiters stick to the
/// word before; other callable macros' arguments are kept as words.
fn render_synopsis(lines: &[Line], name: &str) -> String {
    let mut text = Text::default();
    for line in lines {
        let words = match line {
            Line::Text(line) => {
                line.split_whitespace()
                    .for_each(|w| text.word(&unescape(w)));
                continue;
            }
            // Only lines of callable macros render: `.Bk -words`, `.Pp`
            // and the like only shape the layout.
            Line::Macro(words) if !words.first().is_some_and(|w| is_callable(w)) => continue,
            Line::Macro(words) => words,
        };
        let mut open = 0;
        let mut current = "";
        for (i, word) in words.iter().enumerate() {
            let has_arg = words
                .get(i + 1)
                .is_some_and(|w| !is_callable(w) && !DELIMITERS.contains(&w.as_str()));
            match word.as_str() {
                "Nm" if !has_arg => text.word(name),
                "Fl" if !has_arg => text.word("-"),
                "Ar" if !has_arg => text.word("file ..."),
                "Op" => {
                    text.word("[");
                    open += 1;
                }
                "Oo" => text.word("["),
                "Oc" => text.word("]"),
                "Ns" => text.glue = true,
                w if is_callable(w) => current = w,
                w if DELIMITERS.contains(&w) => {
                    text.glue = true;
                    text.word(w);
                }
                w if current == "Fl" => text.word(&format!("-{}", unescape(w))),
                w => text.word(&unescape(w)),
            }
        }
        for _ in 0..open {
            text.word("]");
        }
    }
    normalize(&text.out)
}

/// Rendered text, word by word.
#[derive(Default)]
struct Text {
    out: String,
    /// No space before the next word (`.Ns`, a delimiter).
    glue: bool,
}

impl Text {
    fn word(&mut self, word: &str) {
        if !self.out.is_empty() && !self.glue {
            self.out.push(' ');
        }
        self.out.push_str(word);
        self.glue = false;
    }
}

fn is_callable(word: &str) -> bool {
    CALLABLE.contains(&word)
}

/// A line of the mdoc source: a macro line split into words (without its
/// dot), or a text line.
enum Line {
    Macro(Vec<String>),
    Text(String),
}

/// Splits the arguments of a macro line (without its leading dot), keeping
/// `"quoted words"` together.
fn split_args(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut chars = line.trim().chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '"' {
            chars.next();
            words.push(chars.by_ref().take_while(|&c| c != '"').collect());
        } else {
            let mut word = String::new();
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                word.push(c);
            }
            words.push(word);
        }
    }
    words
}

/// The roff escapes that may appear in option names: `\-` (minus), `\&`
/// (zero width), `\e` (backslash).
fn unescape(word: &str) -> String {
    word.replace("\\-", "-")
        .replace("\\&", "")
        .replace("\\e", "\\")
}

// ---------------------------------------------------------------------------
// Running a program, bounded in time

struct Output {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

/// Runs `command` with no input, collecting its output, and fails the test
/// if it has not ended after [`TIMEOUT`] (the child is killed first).
fn run(command: &mut Command) -> Output {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    let collect = |mut pipe: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let stdout = collect(Box::new(child.stdout.take().expect("piped stdout")));
    let stderr = collect(Box::new(child.stderr.take().expect("piped stderr")));
    let deadline = Instant::now() + TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{command:?} still running after {TIMEOUT:?}: killed");
        }
        thread::sleep(Duration::from_millis(10));
    };
    Output {
        status,
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    }
}

//! The modules depend only downward: the layers listed in `src/lib.rs`'s
//! documentation (the one place they are written), checked against what
//! each file under `src/` uses of the crate.
//!
//! A file uses a module when its code (not its comments or strings) names
//! `crate::m` (in a path or a `use`, braces included), `super::…::m`
//! reaching the crate's root, or invokes a macro that module defines
//! (`report!` expands to `$crate::messages::…`; lib.rs re-exports it). A
//! module may use its own layer and the ones below; the uses inside one
//! layer must not form a cycle either.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers of `src/lib.rs`'s list (`//! 1. [`error`], `signals`, …:`),
/// bottom first: module name to layer number.
fn layers(lib: &str) -> BTreeMap<String, usize> {
    let mut layers = BTreeMap::new();
    for line in lib.lines() {
        let Some(doc) = line.strip_prefix("//!") else {
            break;
        };
        // `N. [`a`], `b`: what they do`: the modules are the names in
        // backquotes before the first colon.
        let Some((n, rest)) = doc.trim_start().split_once(". ") else {
            continue;
        };
        let Ok(n) = n.parse::<usize>() else {
            continue;
        };
        let names = rest.split(':').next().unwrap_or("");
        for name in names.split('`').skip(1).step_by(2) {
            let old = layers.insert(name.to_owned(), n);
            assert!(old.is_none(), "lib.rs lists `{name}` in two layers");
        }
    }
    assert!(
        layers.len() > 10,
        "no layer list found in lib.rs: {layers:?}"
    );
    layers
}

/// A file's code with its comments and string literals blanked out, so
/// that only code is searched.
fn code_of(source: &str) -> String {
    split_source(source).0
}

/// A file's comments (line, doc and block comments, with their `//`,
/// `///`, `//!` markers), one line each, and nothing else: no code, no
/// string literal.
fn comments_of(source: &str) -> String {
    split_source(source).1
}

/// A file split into its code (comments and string literals blanked out)
/// and its comments.
fn split_source(source: &str) -> (String, String) {
    let chars: Vec<char> = source.chars().collect();
    let mut out = String::with_capacity(source.len());
    let mut comments = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                comments.push(chars[i]);
                i += 1;
            }
            comments.push('\n');
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    comments.push(chars[i]);
                    i += 1;
                }
            }
            comments.push('\n');
            out.push(' ');
        } else if c == 'r' && (next == Some('"') || next == Some('#')) && !ident_before(&chars, i) {
            // A raw string: r"…", r#"…"#.
            let mut j = i + 1;
            let mut hashes = 0;
            while chars.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if chars.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            j += 1;
            loop {
                if j >= chars.len() {
                    break;
                }
                if chars[j] == '"' && (0..hashes).all(|k| chars.get(j + 1 + k) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            i = j;
            out.push_str("\"\"");
        } else if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            out.push_str("\"\"");
        } else if c == '\'' {
            // A character literal ('x', '\n', '\u{1b}'), or a lifetime.
            if next == Some('\\') {
                i += 2;
                while i < chars.len() && chars[i] != '\'' {
                    i += 1;
                }
                i += 1;
                out.push_str("' '");
            } else if chars.get(i + 2) == Some(&'\'') {
                i += 3;
                out.push_str("' '");
            } else {
                out.push(c);
                i += 1;
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    (out, comments)
}

fn ident_before(chars: &[char], i: usize) -> bool {
    i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_')
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The identifier at the start of `text` (after spaces).
fn ident(text: &str) -> &str {
    let text = text.trim_start();
    let end = text.find(|c: char| !is_ident(c)).unwrap_or(text.len());
    &text[..end]
}

/// The first names of the items of a `{ … }` group at the start of
/// `text`: `{a, b::c, d::{e, f}}` gives `a`, `b`, `d`.
fn group(text: &str) -> Vec<&str> {
    let mut names = Vec::new();
    let mut depth = 0;
    let mut item_start = true;
    for (i, c) in text.char_indices() {
        match c {
            '{' => {
                depth += 1;
                if depth == 1 {
                    item_start = true;
                    continue;
                }
            }
            '}' => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            ',' if depth == 1 => {
                item_start = true;
                continue;
            }
            _ => {}
        }
        if depth == 1 && item_start && !c.is_whitespace() {
            names.push(ident(&text[i..]));
            item_start = false;
        }
    }
    names
}

/// The module path of a file under `src/`: `broker/room.rs` is
/// `["broker", "room"]`, `broker/mod.rs` is `["broker"]`.
fn module_path(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().unwrap_or_default();
    let stem = last.trim_end_matches(".rs");
    if stem != "mod" {
        parts.push(stem.to_owned());
    }
    parts
}

/// Every `.rs` file under `dir`.
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The names a file's code takes from the crate's root: `crate::NAME`,
/// `crate::{A, B}`, `super::…::NAME` climbing out of its top module, and
/// `NAME!` for every macro in `macros`.
fn used_names(code: &str, depth: usize, macros: &BTreeSet<String>) -> Vec<String> {
    let mut names = Vec::new();
    let mut take = |rest: &str| {
        let rest = rest.trim_start();
        if rest.starts_with('{') {
            names.extend(group(rest).into_iter().map(str::to_owned));
        } else {
            names.push(ident(rest).to_owned());
        }
    };
    for (i, _) in code.match_indices("crate::") {
        let before = code[..i].chars().next_back();
        // `$crate::` is a macro's own crate: the macro is counted where used.
        if before.is_some_and(|c| is_ident(c) || c == '$') {
            continue;
        }
        take(&code[i + "crate::".len()..]);
    }
    for (i, _) in code.match_indices("super::") {
        if code[..i].chars().next_back().is_some_and(is_ident) {
            continue;
        }
        let mut rest = &code[i..];
        let mut ups = 0;
        while let Some(r) = rest.strip_prefix("super::") {
            ups += 1;
            rest = r.trim_start();
        }
        // Only paths that leave the file's top-level module: inside it,
        // `super::` stays in the same layer.
        // (A top-level file's own `super::` is not followed: in its
        // `mod tests` it names the file itself.)
        if ups >= depth && ups > 1 {
            take(rest);
        }
    }
    let text = code;
    for (i, _) in text.match_indices('!') {
        let head: String = text[..i]
            .chars()
            .rev()
            .take_while(|&c| is_ident(c))
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        if macros.contains(&head) && text[i + 1..].trim_start().starts_with(['(', '[', '{']) {
            names.push(head);
        }
    }
    names
}

struct Crate {
    /// Module name to layer.
    layers: BTreeMap<String, usize>,
    /// Top module to the set of top modules it uses.
    uses: BTreeMap<String, BTreeSet<String>>,
    /// `file: module (layer a) uses module (layer b)`, for each use that
    /// goes up.
    upward: Vec<String>,
}

/// Reads `src/`: the layers of lib.rs and what each file uses.
fn read(root: &Path) -> Crate {
    let src = root.join("src");
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    let layers = layers(&lib);
    let mut files = Vec::new();
    sources(&src, &mut files);
    files.sort();
    // Macros (`macro_rules! NAME`), and the module that defines each.
    let mut macros = BTreeMap::new();
    for file in &files {
        let code = code_of(&std::fs::read_to_string(file).unwrap());
        for (i, _) in code.match_indices("macro_rules!") {
            let module = module_path(file.strip_prefix(&src).unwrap());
            macros.insert(
                ident(&code[i + "macro_rules!".len()..]).to_owned(),
                module[0].clone(),
            );
        }
    }
    // Names lib.rs re-exports from a module (`pub use error::Error`,
    // `pub(crate) use messages::{report, status}`: macros too).
    let mut reexports = BTreeMap::new();
    for line in code_of(&lib).lines() {
        let line = line.trim();
        let Some(path) = line
            .strip_prefix("pub use ")
            .or_else(|| line.strip_prefix("pub(crate) use "))
        else {
            continue;
        };
        let module = ident(path).to_owned();
        let path = path.trim_end_matches(';');
        let items = match path.find("::{") {
            Some(at) => group(&path[at + 2..]),
            None => vec![path.rsplit("::").next().unwrap_or("").trim()],
        };
        for item in items {
            reexports.insert(item.to_owned(), module.clone());
        }
    }
    let macro_names: BTreeSet<String> = macros.keys().chain(reexports.keys()).cloned().collect();
    let mut uses: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut upward = Vec::new();
    for file in &files {
        let rel = file.strip_prefix(&src).unwrap();
        if rel == Path::new("lib.rs") || rel.starts_with("bin") {
            continue;
        }
        let path = module_path(rel);
        let module = &path[0];
        let Some(&own) = layers.get(module) else {
            panic!(
                "src/{} belongs to module `{module}`, which lib.rs's layer list does not name",
                rel.display()
            );
        };
        let text = std::fs::read_to_string(file).unwrap();
        let code = code_of(&text);
        for name in used_names(&code, path.len(), &macro_names) {
            let target = if layers.contains_key(&name) {
                name.clone()
            } else if let Some(m) = macros.get(&name) {
                m.clone()
            } else if let Some(m) = reexports.get(&name) {
                m.clone()
            } else if name == "self" || name.is_empty() {
                continue;
            } else {
                // An item of lib.rs itself (`exit_status`): the top.
                "lib.rs".to_owned()
            };
            if &target == module {
                continue;
            }
            let theirs = layers.get(&target).copied().unwrap_or(usize::MAX);
            if theirs > own {
                upward.push(format!(
                    "src/{}: `{module}` (layer {own}) uses `{name}` of `{target}` (layer {})",
                    rel.display(),
                    if theirs == usize::MAX {
                        "top".to_owned()
                    } else {
                        theirs.to_string()
                    }
                ));
            }
            uses.entry(module.clone()).or_default().insert(target);
        }
    }
    upward.sort();
    upward.dedup();
    Crate {
        layers,
        uses,
        upward,
    }
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn no_module_imports_from_a_layer_above_its_own() {
    let krate = read(&root());
    assert!(
        krate.upward.is_empty(),
        "imports that go up the layers of src/lib.rs:\n{}",
        krate.upward.join("\n")
    );
}

#[test]
fn the_modules_of_one_layer_form_no_cycle() {
    let krate = read(&root());
    // Depth-first search for a path back to where it started.
    fn cycle(
        uses: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        let here = path.last().cloned()?;
        for next in uses.get(&here).into_iter().flatten() {
            if let Some(at) = path.iter().position(|m| m == next) {
                let mut found = path[at..].to_vec();
                found.push(next.clone());
                return Some(found);
            }
            if done.contains(next) {
                continue;
            }
            path.push(next.clone());
            if let Some(found) = cycle(uses, path, done) {
                return Some(found);
            }
            path.pop();
        }
        done.insert(here);
        None
    }
    let mut done = BTreeSet::new();
    for module in krate.layers.keys() {
        let mut path = vec![module.clone()];
        if let Some(found) = cycle(&krate.uses, &mut path, &mut done) {
            panic!(
                "the modules use one another in a cycle: {}",
                found.join(" -> ")
            );
        }
    }
}

#[test]
fn every_module_has_a_layer_and_lib_rs_declares_them_bottom_first() {
    let src = root().join("src");
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    let layers = layers(&lib);
    let declared: Vec<String> = code_of(&lib)
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            ["pub mod ", "pub(crate) mod ", "mod "]
                .iter()
                .find_map(|p| l.strip_prefix(p))
        })
        .map(|m| m.trim_end_matches(';').to_owned())
        .collect();
    let listed: BTreeSet<&String> = layers.keys().collect();
    let mods: BTreeSet<&String> = declared.iter().collect();
    assert_eq!(listed, mods, "lib.rs's layer list and its `mod`s differ");
    let order: Vec<usize> = declared.iter().map(|m| layers[m]).collect();
    assert!(
        order.is_sorted(),
        "lib.rs declares its modules out of layer order: {declared:?}"
    );
}

/// The checker itself: a use that goes up is found through each of the
/// ways a file can name a module, and not in comments or strings.
#[test]
fn the_checker_sees_paths_groups_macros_and_not_comments() {
    let macros: BTreeSet<String> = ["report".to_owned()].into();
    let code = code_of(
        "use crate::{pump::{self, stdin}, words};\n\
         // crate::broker is only named here\n\
         let s = \"crate::cli\";\n\
         let c = '\"'; let t = crate::net::x(); report!(\"x\");\n\
         fn f<'a>(x: &'a str) { super::super::session::run(); }\n",
    );
    let mut names = used_names(&code, 2, &macros);
    names.sort();
    assert_eq!(
        names,
        ["net", "pump", "report", "session", "words"],
        "{code}"
    );
}

/// The README's Layout section names every file under `src/` (at the
/// start of a line of its block, as `src/dir/file.rs`), and no file that
/// is not there.
#[test]
fn the_readme_layout_lists_every_file_under_src() {
    let root = root();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let start = readme
        .find("\n## Layout\n")
        .expect("README.md has a Layout section");
    let section = &readme[start + 1..];
    let section = &section[..section.find("\n## ").unwrap_or(section.len())];
    let listed: BTreeSet<String> = section
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| w.starts_with("src/") && !w.ends_with('/'))
        .map(str::to_owned)
        .collect();
    let mut files = Vec::new();
    sources(&root.join("src"), &mut files);
    let files: BTreeSet<String> = files
        .iter()
        .map(|f| f.strip_prefix(&root).unwrap().display().to_string())
        .collect();
    let missing: Vec<&String> = files.difference(&listed).collect();
    let stale: Vec<&String> = listed.difference(&files).collect();
    assert!(
        missing.is_empty() && stale.is_empty(),
        "README.md's Layout section: files under src/ not listed: {missing:?}; \
         listed but not there: {stale:?}"
    );
}

/// Where `comments` name an issue of a tracker by its number: the word
/// `issue` or `issues`, in any case, then a number, maybe after `#` or
/// `(`, a line break and a comment marker between them included. Each is
/// given as the words around it.
fn issue_numbers(comments: &str) -> Vec<String> {
    // The comments as one line of words, their markers dropped.
    let words: Vec<&str> = comments
        .split_whitespace()
        .filter(|w| !w.chars().all(|c| c == '/' || c == '!' || c == '*'))
        .collect();
    let mut found = Vec::new();
    for (i, pair) in words.windows(2).enumerate() {
        let word = pair[0]
            .trim_start_matches(|c: char| !c.is_alphanumeric())
            .to_lowercase();
        let number = pair[1].trim_start_matches(['#', '(']);
        if (word == "issue" || word == "issues") && number.starts_with(|c: char| c.is_ascii_digit())
        {
            let from = i.saturating_sub(4);
            found.push(words[from..(i + 4).min(words.len())].join(" "));
        }
    }
    found
}

/// A comment states the rule or the reason, never the number of an issue
/// in a tracker the reader of the repository does not have. Checked in
/// every Rust file: `src/` (the tools), `tests/`, `examples/` and
/// `fuzz/`.
#[test]
fn no_comment_names_an_issue_number() {
    let root = root();
    let mut files = Vec::new();
    for dir in ["src", "tests", "examples", "fuzz/fuzz_targets"] {
        sources(&root.join(dir), &mut files);
    }
    files.sort();
    assert!(files.len() > 50, "too few sources found: {files:?}");
    let mut named = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for found in issue_numbers(&comments_of(&text)) {
            named.push(format!(
                "{}: …{found}…",
                file.strip_prefix(&root).unwrap().display()
            ));
        }
    }
    assert!(
        named.is_empty(),
        "comments that name an issue by its number (state the rule or the \
         reason instead):\n{}",
        named.join("\n")
    );
}

/// The checker itself: issue numbers in every form a comment writes them,
/// split across lines too; not the word alone, and not in code or strings.
#[test]
fn the_issue_checker_sees_every_form_and_only_comments() {
    let source = "//! The room (Issue 8): relays lines.\n\
                  /// Pacing (issue\n\
                  /// 14), as issues 9 and 15 and issue #4 said.\n\
                  /* block issue 3 */ let s = \"issue 5\";\n\
                  // An issue with no number, issues in general, tissue 6.\n\
                  let issue = 7;\n";
    let found = issue_numbers(&comments_of(source));
    assert_eq!(found.len(), 5, "{found:#?}");
    for number in ["8)", "14),", "9", "#4", "3"] {
        assert!(
            found.iter().any(|f| f.contains(number)),
            "{number} not found in {found:#?}"
        );
    }
}

//! The protocol-word scanner alone, without sockets: how many bytes a
//! second `chatd::words::WordScanner` looks through, on each corpus, next
//! to the other scans considered for it (issue 15). `scripts/bench scan`
//! runs it on the corpora it generates; the module docs of `src/words.rs`
//! quote its figures.
//!
//! ```text
//! cargo run --release --example wordscan -- [--mib N] [--rounds R] [--no-near-misses] NAME=FILE...
//! ```
//!
//! Each FILE (a corpus, free of word lines) is read into memory and scanned
//! again and again, in 128 KiB chunks as `read(2)` delivers them, until N
//! MiB (default 256) have gone through, by each scan in turn; R rounds
//! (default 5), the scans interleaved in every round so that a change of
//! load hits them alike. A last corpus, `near misses only`, is made here
//! (unless `--no-near-misses`):
//! every line a near miss of 1 to 7 bytes (`bye!`, `arret?`, `byee`,
//! `bye\r\r`...), the worst case for a scan that checks each hit.
//!
//! The scans:
//! * `chatd` (`words::WordScanner`): what chatd and chat run;
//! * `memmem words`: `memchr::memmem` for `bye` and `arret`, then a check
//!   that each hit is a whole line (issue 9's scan, before issue 15);
//! * `memmem lines`: `memmem` for the four whole-line needles `\nbye\n`,
//!   `\nbye\r\n`, `\narret\n`, `\narret\r\n`;
//! * `teddy lines`: `aho-corasick`'s packed (Teddy) searcher for those four;
//! * `newlines`: `memchr` over every newline, a look at each line of at
//!   most 6 bytes.
//!
//! Before timing, every scan must find nothing in each corpus and find a
//! word line planted in a copy of it at the right offset: a fast wrong scan
//! is not a figure (status 1, one line on standard error).
//!
//! Output: one line per corpus and scan, GB/s (10^9 bytes per second) as
//! the median of the rounds, then the lowest and highest.

use std::hint::black_box;
use std::process::ExitCode;
use std::time::Instant;

use aho_corasick::packed;
use std::sync::atomic::Ordering;

use chatd::words::{PORTABLE_ONLY, WordScanner};
use memchr::memmem::Finder;

/// Bytes handed to a scan at a time: what one `read(2)` of chatd returns
/// at most.
const CHUNK: usize = 128 * 1024;

/// The whole-line needles.
const LINES: [&[u8]; 4] = [b"\nbye\n", b"\nbye\r\n", b"\narret\n", b"\narret\r\n"];

/// A scan: the offset just past the first word line of each chunk, if any
/// (a word split across chunks is the library's business: the others are
/// measured on their inner loop only, which is what costs).
trait Scan {
    fn name(&self) -> &'static str;
    /// Offsets (in `text`) just past each word line found, at most `max`.
    fn find(&mut self, text: &[u8], max: usize) -> Vec<usize>;
}

/// `chatd::words::WordScanner`, fed chunk by chunk.
struct Chatd;

impl Scan for Chatd {
    fn name(&self) -> &'static str {
        "chatd"
    }
    fn find(&mut self, text: &[u8], max: usize) -> Vec<usize> {
        let mut scanner = WordScanner::new();
        let mut found = Vec::new();
        let mut base = 0;
        for chunk in text.chunks(CHUNK) {
            let mut at = 0;
            while let Some((_, end)) = scanner.scan(&chunk[at..]) {
                at += end;
                found.push(base + at);
                if found.len() == max {
                    return found;
                }
            }
            base += chunk.len();
        }
        found
    }
}

/// Runs `first` (the first word line's end in a text that starts at a
/// line start) over each chunk from its first line start (as the library
/// does: the line carried from the chunk before is its own case), and on
/// after each hit.
fn by_chunks(text: &[u8], max: usize, mut first: impl FnMut(&[u8]) -> Option<usize>) -> Vec<usize> {
    let mut found = Vec::new();
    let mut base = 0;
    for chunk in text.chunks(CHUNK) {
        let mut at = memchr::memchr(b'\n', chunk).map_or(chunk.len(), |nl| nl + 1);
        while let Some(end) = first(&chunk[at..]) {
            at += end;
            found.push(base + at);
            if found.len() == max {
                return found;
            }
        }
        base += chunk.len();
    }
    found
}

/// The end of `text[at..]`'s line if it is exactly `word` (`\r` allowed)
/// and starts a line.
fn whole_line(text: &[u8], at: usize, word: &[u8]) -> Option<usize> {
    if at > 0 && text[at - 1] != b'\n' {
        return None;
    }
    match &text[at + word.len()..] {
        [b'\n', ..] => Some(at + word.len() + 1),
        [b'\r', b'\n', ..] => Some(at + word.len() + 2),
        _ => None,
    }
}

/// The same, forced onto the portable loop (what a CPU without AVX2 runs).
struct ChatdPortable;

impl Scan for ChatdPortable {
    fn name(&self) -> &'static str {
        "chatd, no AVX2"
    }
    fn find(&mut self, text: &[u8], max: usize) -> Vec<usize> {
        PORTABLE_ONLY.store(true, Ordering::Relaxed);
        let found = Chatd.find(text, max);
        PORTABLE_ONLY.store(false, Ordering::Relaxed);
        found
    }
}

/// Issue 9's scan: `memmem` for each word, each hit checked.
struct MemmemWords(Vec<Finder<'static>>);

impl Scan for MemmemWords {
    fn name(&self) -> &'static str {
        "memmem words"
    }
    fn find(&mut self, text: &[u8], max: usize) -> Vec<usize> {
        by_chunks(text, max, |chunk| {
            let mut best: Option<usize> = None;
            for finder in &self.0 {
                let limit = best.unwrap_or(chunk.len());
                let hit = finder
                    .find_iter(&chunk[..limit])
                    .find_map(|at| whole_line(&chunk[..limit], at, finder.needle()));
                best = hit.or(best);
            }
            best
        })
    }
}

/// `memmem` for each whole-line needle (a line start at 0 is missed: the
/// cost is the point here).
struct MemmemLines(Vec<Finder<'static>>);

impl Scan for MemmemLines {
    fn name(&self) -> &'static str {
        "memmem lines"
    }
    fn find(&mut self, text: &[u8], max: usize) -> Vec<usize> {
        by_chunks(text, max, |chunk| {
            let mut best: Option<usize> = None;
            for finder in &self.0 {
                let limit = best.unwrap_or(chunk.len());
                if let Some(at) = finder.find(&chunk[..limit]) {
                    best = Some(at + finder.needle().len());
                }
            }
            best
        })
    }
}

/// `aho-corasick`'s packed searcher (Teddy where the CPU has SSSE3 or
/// AVX2 or NEON, Rabin-Karp otherwise) for the whole-line needles.
struct TeddyLines(packed::Searcher);

impl Scan for TeddyLines {
    fn name(&self) -> &'static str {
        "teddy lines"
    }
    fn find(&mut self, text: &[u8], max: usize) -> Vec<usize> {
        by_chunks(text, max, |chunk| self.0.find(chunk).map(|m| m.end()))
    }
}

/// `aho-corasick`'s packed searcher for the last 4 bytes of each word line
/// (`bye\n`, `ye\r\n`, `ret\n`, `et\r\n`), each hit checked backwards.
struct TeddyTails(packed::Searcher);

impl Scan for TeddyTails {
    fn name(&self) -> &'static str {
        "teddy tails"
    }
    fn find(&mut self, text: &[u8], max: usize) -> Vec<usize> {
        by_chunks(text, max, |chunk| {
            let mut at = 0;
            while let Some(m) = self.0.find(&chunk[at..]) {
                let end = at + m.end();
                let line_end = if chunk[end - 2] == b'\r' {
                    end - 2
                } else {
                    end - 1
                };
                for word in [&b"bye"[..], b"arret"] {
                    if let Some(start) = line_end.checked_sub(word.len())
                        && &chunk[start..line_end] == word
                        && (start == 0 || chunk[start - 1] == b'\n')
                    {
                        return Some(end);
                    }
                }
                at = at + m.start() + 1;
            }
            None
        })
    }
}

/// `memchr` over every newline; a short line is looked at.
struct Newlines;

impl Scan for Newlines {
    fn name(&self) -> &'static str {
        "newlines"
    }
    fn find(&mut self, text: &[u8], max: usize) -> Vec<usize> {
        by_chunks(text, max, |chunk| {
            let mut start = 0;
            for nl in memchr::memchr_iter(b'\n', chunk) {
                if nl - start <= 6 {
                    let line = &chunk[start..nl];
                    let line = line.strip_suffix(b"\r").unwrap_or(line);
                    if line == b"bye" || line == b"arret" {
                        return Some(nl + 1);
                    }
                }
                start = nl + 1;
            }
            None
        })
    }
}

/// Every line a near miss of 1 to 7 bytes, about `size` bytes.
fn near_misses(size: usize) -> Vec<u8> {
    const LINES: [&[u8]; 16] = [
        b"bye!", b"arret?", b"byee", b"bye\r\r", b"Bye", b"by", b"bye ", b" bye", b"arre",
        b"arrets", b"byebye", b"xbye", b"arret!", b"b", b"ye", b"aarret",
    ];
    let mut text = Vec::with_capacity(size + 8);
    let mut x: u32 = 2_463_534_242;
    while text.len() < size {
        // xorshift32: a fixed, cheap pseudo-random order.
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        text.extend_from_slice(LINES[x as usize % LINES.len()]);
        text.push(b'\n');
    }
    text
}

/// Checks a scan: nothing in `text`, and a planted word found where it is.
fn check(scan: &mut dyn Scan, name: &str, text: &[u8]) -> Result<(), String> {
    let found = scan.find(text, 1);
    if !found.is_empty() {
        return Err(format!(
            "{}: a word line in {name} at {found:?}",
            scan.name()
        ));
    }
    // Plant `arret\r\n` and `bye\n` at line starts a third and two thirds in.
    let mut planted = text.to_vec();
    let mut expected = Vec::new();
    for (third, word) in [(1, &b"arret\r\n"[..]), (2, b"bye\n")] {
        let at = planted.len() * third / 3;
        let at = at + memchr::memchr(b'\n', &planted[at..]).map_or(0, |nl| nl + 1);
        planted.splice(at..at, word.iter().copied());
        expected.push(at + word.len());
    }
    let found = scan.find(&planted, 2);
    if found != expected {
        return Err(format!(
            "{}: in {name} with planted words, found {found:?}, expected {expected:?}",
            scan.name()
        ));
    }
    Ok(())
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn run() -> Result<(), String> {
    let mut mib = 256usize;
    let mut rounds = 5usize;
    let mut near = true;
    let mut corpora: Vec<(String, Vec<u8>)> = Vec::new();
    let mut args = std::env::args().skip(1);
    let usage = "usage: wordscan [--mib N] [--rounds R] [--no-near-misses] NAME=FILE...";
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--no-near-misses" => near = false,
            "--mib" | "--rounds" => {
                let value: usize = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .filter(|&v| v > 0)
                    .ok_or(format!("{arg} needs a positive integer; {usage}"))?;
                if arg == "--mib" {
                    mib = value;
                } else {
                    rounds = value;
                }
            }
            _ => {
                let (name, path) = arg.split_once('=').ok_or(usage.to_owned())?;
                let text = std::fs::read(path).map_err(|e| format!("{path}: {e}"))?;
                if text.is_empty() {
                    return Err(format!("{path}: empty"));
                }
                corpora.push((name.to_owned(), text));
            }
        }
    }
    if near {
        corpora.push(("near misses only".to_owned(), near_misses(16 << 20)));
    }

    let teddy = LINES
        .iter()
        .fold(&mut packed::Config::new().builder(), |b, line| b.add(line))
        .build()
        .ok_or("aho-corasick: no packed searcher for the four needles")?;
    let mut scans: Vec<Box<dyn Scan>> = vec![
        Box::new(Chatd),
        Box::new(ChatdPortable),
        Box::new(MemmemWords(vec![
            Finder::new(b"bye").into_owned(),
            Finder::new(b"arret").into_owned(),
        ])),
        Box::new(MemmemLines(
            LINES.iter().map(|l| Finder::new(l).into_owned()).collect(),
        )),
        Box::new(TeddyLines(teddy)),
        Box::new(Newlines),
        Box::new(TeddyTails(
            [&b"bye\n"[..], b"ye\r\n", b"ret\n", b"et\r\n"]
                .iter()
                .fold(&mut packed::Config::new().builder(), |b, line| b.add(line))
                .build()
                .ok_or("aho-corasick: no packed searcher for the tails")?,
        )),
    ];
    for (name, text) in &corpora {
        for scan in &mut scans {
            check(scan.as_mut(), name, text)?;
        }
    }

    let total = mib << 20;
    // rates[corpus][scan]: GB/s of each round.
    let mut rates = vec![vec![Vec::new(); scans.len()]; corpora.len()];
    for _ in 0..rounds {
        for (c, (_, text)) in corpora.iter().enumerate() {
            for (s, scan) in scans.iter_mut().enumerate() {
                let passes = total.div_ceil(text.len());
                let t0 = Instant::now();
                for _ in 0..passes {
                    black_box(scan.find(black_box(text), 1));
                }
                let secs = t0.elapsed().as_secs_f64();
                rates[c][s].push((passes * text.len()) as f64 / secs / 1e9);
            }
        }
    }
    print!("  {:<16}", "scan, GB/s");
    for (name, _) in &corpora {
        print!(" {name:>18}");
    }
    println!();
    for (s, scan) in scans.iter().enumerate() {
        print!("  {:<16}", scan.name());
        for rates in &mut rates {
            let v = &mut rates[s];
            let m = median(v);
            print!(
                " {:>18}",
                format!("{m:.2} ({:.1}-{:.1})", v[0], v[v.len() - 1])
            );
        }
        println!();
    }
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wordscan: {e}");
            ExitCode::FAILURE
        }
    }
}

//! The protocol-word scanner alone, without sockets: how many bytes a
//! second `chatd::words::WordScanner` looks through, on each corpus, next
//! to the other scans considered for it. `scripts/bench scan` runs it on
//! the corpora it generates; docs/PERFORMANCE.md has its figures, and the
//! module docs of `src/words.rs` say why chatd's scan was chosen.
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
//! * `chatd, no AVX2`: the same on its portable loop (SSE2 on x86-64),
//!   what a CPU without AVX2 runs;
//! * `memmem words`: `memchr::memmem` for `bye` and `arret`, then a check
//!   that each hit is a whole line (chatd's scan before the present one);
//! * `memmem lines`: `memmem` for the four whole-line needles `\nbye\n`,
//!   `\nbye\r\n`, `\narret\n`, `\narret\r\n`;
//! * `teddy lines`: `aho-corasick`'s packed (Teddy) searcher for those four;
//! * `teddy tails`: the same searcher for the last 4 bytes of each word
//!   line (`bye\n`, `ye\r\n`, `ret\n`, `et\r\n`), each hit checked backwards;
//! * `newlines`: `memchr` over every newline, a look at each line of at
//!   most 6 bytes.
//!
//! Before timing, every scan must find nothing in each corpus and find a
//! word line planted in a copy of it at the right offset: a fast wrong scan
//! is not a figure (status 1, one line on standard error).
//!
//! Output: one line per scan, one column per corpus: GB/s (10^9 bytes per
//! second), the median of the rounds, and in brackets the lowest and the
//! highest.

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

/// A scan's search: the offsets (in a text) just past each word line it
/// finds, at most the number given.
type Find = Box<dyn FnMut(&[u8], usize) -> Vec<usize>>;

/// A scan, by name.
struct Scan {
    name: &'static str,
    find: Find,
}

/// `chatd::words::WordScanner`, fed chunk by chunk, on its AVX2 copy where
/// the CPU has it unless `portable`.
fn chatd(text: &[u8], max: usize, portable: bool) -> Vec<usize> {
    PORTABLE_ONLY.store(portable, Ordering::Relaxed);
    let mut scanner = WordScanner::new();
    let mut found = Vec::new();
    let mut base = 0;
    'chunks: for chunk in text.chunks(CHUNK) {
        let mut at = 0;
        while let Some((_, end)) = scanner.scan(&chunk[at..]) {
            at += end;
            found.push(base + at);
            if found.len() == max {
                break 'chunks;
            }
        }
        base += chunk.len();
    }
    PORTABLE_ONLY.store(false, Ordering::Relaxed);
    found
}

/// A scan made of `first` (the end of the first word line in a text that
/// starts at a line start), run over each chunk from its first line start
/// and on after each hit. A word split across chunks is the library's
/// business: the other scans are measured on their inner loop only, which
/// is what costs.
fn kernel(name: &'static str, mut first: impl FnMut(&[u8]) -> Option<usize> + 'static) -> Scan {
    let find = move |text: &[u8], max: usize| {
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
    };
    Scan {
        name,
        find: Box::new(find),
    }
}

/// The end of the line at `text[at..]` if it starts a line and is exactly
/// the `len` bytes there (`\r` allowed).
fn whole_line(text: &[u8], at: usize, len: usize) -> Option<usize> {
    if at > 0 && text[at - 1] != b'\n' {
        return None;
    }
    match &text[at + len..] {
        [b'\n', ..] => Some(at + len + 1),
        [b'\r', b'\n', ..] => Some(at + len + 2),
        _ => None,
    }
}

/// The earliest line end that `hit` finds in `chunk` with any of
/// `finders`, each searched only before the best so far.
fn earliest(
    chunk: &[u8],
    finders: &[Finder<'static>],
    hit: impl Fn(&[u8], &Finder<'static>) -> Option<usize>,
) -> Option<usize> {
    let mut best = None;
    for finder in finders {
        let limit = best.unwrap_or(chunk.len());
        best = hit(&chunk[..limit], finder).or(best);
    }
    best
}

/// `aho-corasick`'s packed searcher (Teddy where the CPU has SSSE3, AVX2
/// or NEON, Rabin-Karp otherwise) for `needles`.
fn packed(needles: &[&[u8]]) -> Result<packed::Searcher, String> {
    needles
        .iter()
        .fold(&mut packed::Config::new().builder(), |b, needle| {
            b.add(needle)
        })
        .build()
        .ok_or_else(|| format!("aho-corasick: no packed searcher for {needles:?}"))
}

/// Every scan compared.
fn scans() -> Result<Vec<Scan>, String> {
    let words: Vec<Finder<'static>> = [&b"bye"[..], b"arret"]
        .iter()
        .map(|w| Finder::new(w).into_owned())
        .collect();
    let lines: Vec<Finder<'static>> = LINES.iter().map(|l| Finder::new(l).into_owned()).collect();
    let teddy_lines = packed(&LINES)?;
    let teddy_tails = packed(&[b"bye\n", b"ye\r\n", b"ret\n", b"et\r\n"])?;
    Ok(vec![
        Scan {
            name: "chatd",
            find: Box::new(|text, max| chatd(text, max, false)),
        },
        Scan {
            name: "chatd, no AVX2",
            find: Box::new(|text, max| chatd(text, max, true)),
        },
        // chatd's earlier scan: `memmem` for each word, each hit checked.
        kernel("memmem words", move |chunk| {
            earliest(chunk, &words, |text, finder| {
                let len = finder.needle().len();
                finder
                    .find_iter(text)
                    .find_map(|at| whole_line(text, at, len))
            })
        }),
        // `memmem` for each whole-line needle (a line start at 0 is
        // missed: the cost is the point here).
        kernel("memmem lines", move |chunk| {
            earliest(chunk, &lines, |text, finder| {
                finder.find(text).map(|at| at + finder.needle().len())
            })
        }),
        kernel("teddy lines", move |chunk| {
            teddy_lines.find(chunk).map(|m| m.end())
        }),
        // The last 4 bytes of each word line, each hit checked backwards.
        kernel("teddy tails", move |chunk| {
            let mut at = 0;
            while let Some(m) = teddy_tails.find(&chunk[at..]) {
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
                at += m.start() + 1;
            }
            None
        }),
        // `memchr` over every newline; a short line is looked at.
        kernel("newlines", |chunk| {
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
        }),
    ])
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
fn check(scan: &mut Scan, name: &str, text: &[u8]) -> Result<(), String> {
    let found = (scan.find)(text, 1);
    if !found.is_empty() {
        return Err(format!("{}: a word line in {name} at {found:?}", scan.name));
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
    let found = (scan.find)(&planted, 2);
    if found != expected {
        return Err(format!(
            "{}: in {name} with planted words, found {found:?}, expected {expected:?}",
            scan.name
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

    let mut scans = scans()?;
    for (name, text) in &corpora {
        for scan in &mut scans {
            check(scan, name, text)?;
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
                    black_box((scan.find)(black_box(text), 1));
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
        print!("  {:<16}", scan.name);
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

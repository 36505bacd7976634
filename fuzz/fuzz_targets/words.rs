//! The protocol-word scanner (`chatd::words`): fed the input in chunks of
//! a size the first byte chooses, it finds the same words at the same
//! offsets as when fed the whole input, and as a line-by-line reference.
#![no_main]

use chatd::words::{EchoScanner, LineScanner, LineWord, WordScanner, line_word};
use libfuzzer_sys::fuzz_target;

/// Every word found, with the absolute offset just past its line; a word
/// on an unterminated last line is reported at the input's length.
fn scan<W: LineWord + Copy>(mut scanner: LineScanner<W>, input: &[u8], step: usize) -> Vec<(W, usize)> {
    let mut found = Vec::new();
    let mut base = 0;
    for chunk in input.chunks(step.max(1)) {
        let mut at = 0;
        while let Some((word, offset)) = scanner.scan(&chunk[at..]) {
            at += offset;
            found.push((word, base + at));
        }
        base += chunk.len();
    }
    if let Some(word) = scanner.finish() {
        found.push((word, input.len()));
    }
    found
}

fuzz_target!(|data: &[u8]| {
    let Some((&seed, input)) = data.split_first() else {
        return;
    };
    let step = usize::from(seed % 32) + 1;
    let whole = scan(WordScanner::new(), input, input.len());
    assert_eq!(scan(WordScanner::new(), input, step), whole);
    let mut reference = Vec::new();
    let mut start = 0;
    for (i, _) in input.iter().enumerate().filter(|&(_, &b)| b == b'\n') {
        if let Some(word) = line_word(&input[start..=i]) {
            reference.push((word, i + 1));
        }
        start = i + 1;
    }
    if start < input.len()
        && let Some(word) = line_word(&input[start..])
    {
        reference.push((word, input.len()));
    }
    assert_eq!(whole, reference);
    let echo = scan(EchoScanner::new(), input, input.len());
    assert_eq!(scan(EchoScanner::new(), input, step), echo);
});

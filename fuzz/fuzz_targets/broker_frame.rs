//! The broker's line framing (`chatd::broker::frame::Framer`): fed the
//! input in chunks of a size the first byte chooses, it hands out the same
//! pieces as when fed the whole input; no piece is longer than the
//! maximum; it never holds more than the maximum plus 3 bytes (the
//! bytes after a piece that say whether a character goes on); joining
//! the pieces of each line gives the line without its `\n` (and the `\r`
//! of a CRLF).
#![no_main]

use std::ops::ControlFlow;

use chatd::broker::frame::Framer;
use libfuzzer_sys::fuzz_target;

/// (text, starts_line, ends_line, crlf) of every piece.
fn frame(input: &[u8], max: usize, step: usize) -> Vec<(Vec<u8>, bool, bool, bool)> {
    let mut framer = Framer::new(max);
    let mut pieces = Vec::new();
    for chunk in input.chunks(step.max(1)) {
        let _ = framer.push(chunk, |p| {
            assert!(p.text.len() <= max, "piece of {} > {max}", p.text.len());
            pieces.push((p.text.to_vec(), p.starts_line, p.ends_line, p.crlf));
            ControlFlow::Continue(())
        });
        assert!(framer.held() <= max + 3, "holds {}", framer.held());
    }
    let _ = framer.finish(|p| {
        pieces.push((p.text.to_vec(), p.starts_line, p.ends_line, p.crlf));
        ControlFlow::Continue(())
    });
    pieces
}

fuzz_target!(|data: &[u8]| {
    let Some((&seed, input)) = data.split_first() else {
        return;
    };
    let max = usize::from(seed % 16) + 1;
    let step = usize::from(seed / 16) + 1;
    let whole = frame(input, max, input.len());
    assert_eq!(frame(input, max, step), whole);
    // The pieces rebuild the lines.
    let mut lines: Vec<Vec<u8>> = Vec::new();
    let mut current = Vec::new();
    for (text, starts, ends, _) in &whole {
        assert_eq!(*starts, current.is_empty() || *starts, "a piece starts mid-line");
        current.extend_from_slice(text);
        if *ends {
            lines.push(std::mem::take(&mut current));
        }
    }
    let expected: Vec<Vec<u8>> = input
        .split(|&b| b == b'\n')
        .enumerate()
        .filter(|(i, line)| !line.is_empty() || *i < input.iter().filter(|&&b| b == b'\n').count())
        .map(|(_, line)| line.strip_suffix(b"\r").unwrap_or(line).to_vec())
        .collect();
    assert_eq!(lines, expected);
});

//! The terminal cleaner (`chatd::display::Sanitizer`): any chunking gives
//! the output of one chunk; the output is UTF-8 with no control byte but
//! `\n` and `\t`, no DEL, no C1 control, no bidi control; and cleaning it
//! again changes nothing.
#![no_main]

use chatd::display::{BIDI_CONTROLS, Sanitizer};
use libfuzzer_sys::fuzz_target;

fn clean(input: &[u8], step: usize) -> Vec<u8> {
    let mut s = Sanitizer::new();
    let mut out = Vec::new();
    for chunk in input.chunks(step.max(1)) {
        s.push(chunk, &mut out);
    }
    s.finish(&mut out);
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&seed, input)) = data.split_first() else {
        return;
    };
    let whole = clean(input, input.len());
    assert_eq!(clean(input, usize::from(seed % 8) + 1), whole);
    for &b in &whole {
        assert!(b >= 0x20 || b == b'\n' || b == b'\t', "control byte {b:#04x}");
        assert_ne!(b, 0x7f);
    }
    let text = std::str::from_utf8(&whole).expect("the output is UTF-8");
    for c in text.chars() {
        assert!(!('\u{80}'..='\u{9f}').contains(&c), "C1 control {c:?}");
        assert!(!BIDI_CONTROLS.contains(&c), "bidi control {c:?}");
    }
    assert_eq!(clean(&whole, whole.len()), whole, "not idempotent");
});

//! The `--sum` wire decoder (`chatd::service::wire::SumDecoder`): fed the
//! input in chunks of a size the first byte chooses, it yields the same
//! items and the same end as when fed the whole input, and never panics.
#![no_main]

use chatd::service::wire::SumDecoder;
use libfuzzer_sys::fuzz_target;

fn decode(input: &[u8], step: usize) -> (Vec<String>, String) {
    let mut decoder = SumDecoder::new();
    let mut items = Vec::new();
    for chunk in input.chunks(step.max(1)) {
        for item in decoder.feed(chunk) {
            let failed = item.is_err();
            items.push(format!("{item:?}"));
            if failed {
                break;
            }
        }
    }
    (items, format!("{:?}", decoder.finish()))
}

fuzz_target!(|data: &[u8]| {
    let Some((&seed, input)) = data.split_first() else {
        return;
    };
    let whole = decode(input, input.len());
    assert_eq!(decode(input, usize::from(seed % 16) + 1), whole);
});

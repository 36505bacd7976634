//! The room's reservation file parser (`chatd::tls::names`): any bytes
//! parse without a panic; no name and no certificate is reserved twice;
//! and what was read renders to a file that reads back the same, with no
//! malformed line.
#![no_main]

use chatd::tls::names::Reservations;
use libfuzzer_sys::fuzz_target;

fn fold(name: &str) -> String {
    name.to_ascii_lowercase()
}

fuzz_target!(|data: &[u8]| {
    let res = Reservations::parse(data, fold);
    let all: Vec<_> = res.iter().cloned().collect();
    for (i, r) in all.iter().enumerate() {
        assert!(!r.name.is_empty() && !r.name.contains(char::is_whitespace));
        assert_eq!(res.holder(&r.name), Some(r.fingerprint));
        assert_eq!(res.name_of(&r.fingerprint), Some(r.name.as_str()));
        for other in &all[i + 1..] {
            assert_ne!(fold(&other.name), fold(&r.name));
            assert_ne!(other.fingerprint, r.fingerprint);
        }
    }
    let back = Reservations::parse(res.render().as_bytes(), fold);
    assert!(back.malformed.is_empty(), "{:?}", back.malformed);
    assert_eq!(back.iter().cloned().collect::<Vec<_>>(), all);
});

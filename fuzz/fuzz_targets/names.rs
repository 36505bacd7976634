//! The room's reservation file parser (`chatd::tls::names`), with the
//! room's own keys (`chatd::broker::name::Keys::list`: the caseless form
//! and the UTS #39 look-alike keys): any bytes parse without a panic; no
//! name and no certificate is reserved twice, and no two reserved names
//! share a key (look alike); every reserved name, and every name that
//! shares a key with it, is refused to another certificate; and what was
//! read renders to a file that reads back the same, with no malformed
//! line.
#![no_main]

use chatd::broker::name::Keys;
use chatd::tls::names::{Claim, Reservations};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let res = Reservations::parse(data, Keys::list);
    let all: Vec<_> = res.iter().cloned().collect();
    // A refused claim changes nothing.
    let mut claims = res.clone();
    for (i, r) in all.iter().enumerate() {
        assert!(!r.name.is_empty() && !r.name.contains(char::is_whitespace));
        assert_eq!(res.holder(&r.name), Some(r.fingerprint));
        assert_eq!(res.name_of(&r.fingerprint), Some(r.name.as_str()));
        assert_eq!(res.held_by_another(&r.name, Some(&r.fingerprint)), None);
        assert_eq!(res.held_by_another(&r.name, None), Some(r.fingerprint));
        let keys = Keys::list(&r.name);
        for other in &all[i + 1..] {
            assert!(Keys::list(&other.name).iter().all(|k| !keys.contains(k)));
            assert_ne!(other.fingerprint, r.fingerprint);
            // `r`'s name is refused to another certificate.
            assert_eq!(
                claims.claim(&r.name, &other.fingerprint),
                Claim::Taken { by: r.fingerprint }
            );
        }
    }
    let back = Reservations::parse(res.render().as_bytes(), Keys::list);
    assert!(back.malformed.is_empty(), "{:?}", back.malformed);
    assert_eq!(back.iter().cloned().collect::<Vec<_>>(), all);
});

//! The known hosts parser (`chatd::tls::known_hosts`): any bytes parse
//! without a panic; every line is counted once (an entry, a malformed
//! line, or blank/comment); and what a line that was read says survives
//! being written back by `known_hosts::line` and read again.
#![no_main]

use chatd::tls::known_hosts::{Check, KnownHosts, line};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let known = KnownHosts::parse(data);
    let newlines = data.iter().filter(|&&b| b == b'\n').count();
    let unterminated = data.last().is_some_and(|&b| b != b'\n');
    assert_eq!(known.lines, newlines + usize::from(unterminated));
    let mut numbers: Vec<usize> = known
        .entries
        .iter()
        .map(|e| e.line)
        .chain(known.malformed.iter().map(|(n, _)| *n))
        .collect();
    let total = numbers.len();
    numbers.sort_unstable();
    numbers.dedup();
    assert_eq!(numbers.len(), total, "a line counted twice");
    assert!(numbers.iter().all(|&n| n >= 1 && n <= known.lines));
    for entry in &known.entries {
        assert!(!entry.hosts.is_empty());
        for host in &entry.hosts {
            let again = KnownHosts::parse(line(host, &entry.fingerprint).as_bytes());
            assert!(again.malformed.is_empty(), "{host} {:?}", again.malformed);
            assert_eq!(again.check(host, &entry.fingerprint), Check::Known { line: 1 });
            // The file itself knows it (on this line or an earlier one).
            assert!(matches!(
                known.check(host, &entry.fingerprint),
                Check::Known { line } if line <= entry.line
            ));
        }
    }
});

//! Reproducible test data, shared by the tests (`tests/util`) and the soak
//! (`examples/soak.rs`, which includes this file by its path).

/// `len` pseudo-random bytes from a fixed seed (xorshift64*), so a failure
/// can be reproduced.
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out.truncate(len);
    out
}

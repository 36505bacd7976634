//! What the load generators of `scripts/bench` (`examples/fanout.rs`,
//! `examples/tlsroom.rs`) share: reading a server's memory from `/proc`,
//! and room for N sockets. Each includes this file with
//! `#[path = "util/load.rs"] mod load;` (a directory under `examples/`
//! without a `main.rs` is not an example of its own).

/// A field of `/proc/PID/status` in KiB (`VmRSS:`, `VmHWM:`; see
/// proc_pid_status(5)); `None` if the process or the field is gone.
pub fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line[field.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// Raises the soft limit of open files (`RLIMIT_NOFILE`) to the hard
/// limit, so that N sockets fit; a failure leaves the limit as it was.
pub fn raise_nofile() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((_, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
}

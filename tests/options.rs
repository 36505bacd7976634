//! The command lines of `chatd` and `chat` as `nc` users type them, on the
//! real binaries: `-4`/`-6`, `[::1]`, service names, `-b NAME`,
//! `-w SECS`, `-v`; and strict options: every option that `--help` lists,
//! given a bad value or without its mode, is a one-line usage error with
//! status 2, before anything is bound or printed.

mod util;

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use util::*;

// ---------------------------------------------------------------------------
// Strict options, driven by --help

/// One option of `--help`: its flags, its value name (if it takes one)
/// and whether its description says it belongs to a mode (`With --broker:
/// …`, `With -a: …`): then the mode's flags.
#[derive(Debug)]
struct HelpOption {
    flags: Vec<String>,
    value: Option<String>,
    needs: Option<Vec<String>>,
    /// `With A and B:` (both needed), not `With A or B:`.
    needs_all: bool,
}

impl HelpOption {
    /// The spelling used on the command line: the long form if any.
    fn flag(&self) -> &str {
        self.flags.last().expect("an option has a flag")
    }
}

/// The options `program --help` lists (not `--help`/`--version`), read from
/// clap's layout: entries indented by 2 or 6 columns, descriptions after
/// two spaces or on lines indented further.
fn help_options(program: &str) -> Vec<HelpOption> {
    let out = Command::new(program)
        .arg("--help")
        .env("NO_COLOR", "1")
        .output()
        .expect("run --help");
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let mut options: Vec<HelpOption> = Vec::new();
    let mut description: Vec<String> = Vec::new();
    let finish = |options: &mut Vec<HelpOption>, description: &mut Vec<String>| {
        let text = description.join(" ");
        if let Some(last) = options.last_mut()
            && let Some(rest) = text.strip_prefix("With ")
        {
            let modes = rest.split(':').next().unwrap_or("");
            let needs = modes
                .split([',', ' '])
                .filter(|w| w.starts_with('-'))
                .map(str::to_owned)
                .collect();
            last.needs = Some(needs);
            last.needs_all = modes.contains(" and ");
        }
        description.clear();
    };
    for line in text.lines() {
        let entry = line.trim_start();
        let indent = line.len() - entry.len();
        if entry.starts_with('-') && indent < 10 {
            finish(&mut options, &mut description);
            let mut parts = entry.splitn(2, "  ");
            let spec = parts.next().unwrap();
            let words: Vec<&str> = spec.split([',', ' ']).filter(|w| !w.is_empty()).collect();
            let flags: Vec<String> = words
                .iter()
                .filter(|w| w.starts_with('-'))
                .map(|w| w.to_string())
                .collect();
            let value = words
                .iter()
                .find(|w| w.starts_with('<'))
                .map(|v| v.trim_matches(['<', '>'].as_slice()).to_owned());
            if let Some(rest) = parts.next() {
                description.push(rest.trim().to_owned());
            }
            options.push(HelpOption {
                flags,
                value,
                needs: None,
                needs_all: false,
            });
        } else if indent >= 10 || (!entry.is_empty() && !options.is_empty() && indent > 2) {
            description.push(entry.to_owned());
        } else {
            finish(&mut options, &mut description);
        }
    }
    finish(&mut options, &mut description);
    options.retain(|o| !o.flags.iter().any(|f| f == "--help" || f == "--version"));
    assert!(options.len() > 5, "no options read from --help:\n{text}");
    options
}

/// Values that each value name of `--help` must refuse. A value name
/// without an entry fails the test: a new kind of value needs its bad
/// values here.
fn bad_values() -> BTreeMap<&'static str, Vec<&'static str>> {
    BTreeMap::from([
        ("PORT", vec!["notaport", "70000", ""]),
        (
            "ADDR",
            vec!["not an address", "[127.0.0.1]", "10.0.0.1:80", ""],
        ),
        ("N", vec!["0", "x", "1.5", ""]),
        ("LINES", vec!["x", "1.5", "-1", ""]),
        ("BYTES", vec!["0", "lots", "-1", ""]),
        ("SECS", vec!["soon", "-1", "inf", ""]),
        ("NAME", vec!["a b", "chatd", ""]),
        ("FILE", vec!["/nonexistent/list"]),
        ("FINGERPRINT", vec!["SHA256:AB", "xyz", ""]),
        ("ADDR[/PREFIX]", vec!["10.0.0.0/33", "example.com", ""]),
    ])
}

/// A value each value name accepts.
fn good_value(name: &str, file: &str) -> String {
    match name {
        "PORT" => free_port().to_string(),
        "ADDR" => "127.0.0.1".to_owned(),
        "N" => "5".to_owned(),
        "LINES" => "5".to_owned(),
        "BYTES" => "100000".to_owned(),
        "SECS" => "1".to_owned(),
        "NAME" => "alice".to_owned(),
        "FILE" => file.to_owned(),
        "FINGERPRINT" => format!("SHA256{}", ":AB".repeat(32)),
        "ADDR[/PREFIX]" => "127.0.0.0/8".to_owned(),
        other => panic!("no good value for {other}: add one to tests/options.rs"),
    }
}

/// Runs `program args` with stdin closed, to its end (a usage error is
/// immediate; anything else is killed after 2 s and reported as such).
fn usage_error(program: &str, args: &[&str]) -> String {
    let mut p = spawn_with(program, args, Stdio::null());
    let ended = wait_until(Duration::from_secs(5), || p.try_status().is_some());
    assert!(
        ended,
        "{program} {args:?} was accepted (still running)\n{}",
        p.dump()
    );
    let status = p.wait();
    let name = p.name.clone();
    let stderr = p.stderr_text();
    assert_eq!(
        status,
        2,
        "{name} {args:?}: not a usage error\n{}",
        p.dump()
    );
    assert_eq!(p.stdout_text(), "", "{name} {args:?}: wrote on stdout");
    assert!(
        stderr.starts_with(&format!("{name}: "))
            && stderr.ends_with(&format!(" (try '{name} --help')\n"))
            && stderr.lines().count() == 1,
        "{name} {args:?}: not one line in the tools' style:\n{stderr}"
    );
    assert!(!stderr.contains("listening"), "{stderr}");
    stderr
}

/// The arguments that make `option` valid: its mode's flag (the first
/// one named), and what that mode needs to start (`-a` needs nothing).
fn with_mode(option: &HelpOption) -> Vec<String> {
    option
        .needs
        .as_ref()
        .map(|needs| vec![needs[0].clone()])
        .unwrap_or_default()
}

/// The options an option needs besides its mode, as arguments: `With
/// --tls and --key:` (`--cert` and `--key` come as a pair) also needs
/// `--key FILE`.
fn with_partner(option: &HelpOption, file: &str) -> Vec<String> {
    match &option.needs {
        Some(needs) if option.needs_all && needs.len() > 1 => needs[1..]
            .iter()
            .flat_map(|flag| [flag.clone(), file.to_owned()])
            .collect(),
        _ => Vec::new(),
    }
}

/// `base` without the options of `option` (so that it is not given twice).
fn base_without(base: &[(&str, String)], option: &HelpOption) -> Vec<String> {
    base.iter()
        .filter(|(flag, _)| !option.flags.iter().any(|f| f == flag))
        .flat_map(|(flag, value)| [flag.to_string(), value.clone()])
        .collect()
}

/// Tries every option of `program --help` that takes a value with each bad
/// value of its kind (and its mode, if it has one): a usage error naming
/// the option. Then with a good value: not a usage error. `base` (pairs of
/// option and value) comes first, `tail` (operands) last.
fn every_option_refuses_bad_values(program: &str, base: &[(&str, String)], tail: &[String]) {
    let bad = bad_values();
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("list");
    std::fs::write(&list, "127.0.0.1\n").unwrap();
    let list = list.to_str().unwrap();
    let mut checked = 0;
    for option in help_options(program) {
        let Some(value) = &option.value else {
            continue;
        };
        let values = bad.get(value.as_str()).unwrap_or_else(|| {
            panic!(
                "{program} {}: no bad values for <{value}> in tests/options.rs",
                option.flag()
            )
        });
        let flag = option.flag();
        let command_line = |value: &str| -> Vec<String> {
            let mut args = base_without(base, &option);
            args.extend(with_mode(&option));
            args.extend(with_partner(&option, list));
            args.extend([flag.to_owned(), value.to_owned()]);
            args.extend(tail.iter().cloned());
            args
        };
        for bad_value in values {
            let args = command_line(bad_value);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let line = usage_error(program, &args);
            assert!(
                line.contains(&format!("invalid {flag} '{bad_value}'")),
                "{program} {args:?}: the line names neither the option nor the value:\n{line}"
            );
            checked += 1;
        }
        // And a good value passes (the run fails later or goes on, but
        // not with a usage error).
        let args = command_line(&good_value(value, list));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut p = spawn_with(program, &args, Stdio::null());
        wait_until(Duration::from_millis(500), || p.try_status().is_some());
        assert_ne!(
            p.try_status().and_then(|s| s.code()),
            Some(2),
            "{program} {args:?} refused a good value\n{}",
            p.dump()
        );
    }
    assert!(checked > 10, "only {checked} bad values tried");
}

fn every_mode_option_is_refused_without_its_mode(program: &str, base: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("list");
    std::fs::write(&list, "127.0.0.1\n").unwrap();
    let mut checked = 0;
    for option in help_options(program) {
        let Some(needs) = &option.needs else {
            continue;
        };
        let mut args: Vec<String> = base.iter().map(|s| s.to_string()).collect();
        args.push(option.flag().to_owned());
        if let Some(value) = &option.value {
            args.push(good_value(value, list.to_str().unwrap()));
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let line = usage_error(program, &args);
        let wanted = format!("{}: {} needs ", program_name(program), option.flag());
        assert!(line.starts_with(&wanted), "{args:?}:\n{line}");
        for mode in needs {
            // `-a` is shown as its long form, --alternating.
            let shown = if mode == "-a" { "--alternating" } else { mode };
            assert!(
                line.contains(shown),
                "{args:?}: does not name {shown}:\n{line}"
            );
        }
        checked += 1;
    }
    assert!(checked >= 1, "no option of {program} belongs to a mode?");
}

fn program_name(program: &str) -> &str {
    std::path::Path::new(program)
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
}

#[test]
fn every_chatd_option_refuses_bad_values_before_listening() {
    let port = free_port();
    let base = [
        ("--bind", "127.0.0.1".to_owned()),
        ("--port", port.to_string()),
    ];
    every_option_refuses_bad_values(CHATD, &base, &[]);
    assert!(!listening(port));
}

#[test]
fn every_chat_option_refuses_bad_values_before_connecting() {
    // Nothing listens on the port: a good command line fails with 1.
    let port = free_port().to_string();
    let tail = ["127.0.0.1".to_owned(), port.clone()];
    every_option_refuses_bad_values(CHAT, &[], &tail);
    for bad in ["0", "70000", "notaport", "-1", ""] {
        let line = usage_error(CHAT, &["127.0.0.1", bad]);
        assert!(line.contains(&format!("invalid PORT '{bad}'")), "{line}");
    }
    for bad in [
        "not a host",
        "[127.0.0.1]",
        "127.0.0.1:8080",
        "[::1]:8080",
        "",
    ] {
        let line = usage_error(CHAT, &[bad, &port]);
        assert!(line.contains(&format!("invalid HOST '{bad}'")), "{line}");
    }
}

#[test]
fn every_chatd_mode_option_is_refused_without_its_mode() {
    let port = free_port().to_string();
    every_mode_option_is_refused_without_its_mode(CHATD, &["-b", "127.0.0.1", "-p", &port]);
}

#[test]
fn every_chat_mode_option_is_refused_without_its_mode() {
    every_mode_option_is_refused_without_its_mode(CHAT, &[]);
}

#[test]
fn usage_errors_are_one_line_in_the_tools_style() {
    for (program, args, line) in [
        (
            CHAT,
            &["-x"][..],
            "chat: unexpected argument '-x' (try 'chat --help')\n",
        ),
        (
            CHAT,
            &["127.0.0.1", "0"],
            "chat: invalid PORT '0': out of range (ports are 1 to 65535) (try 'chat --help')\n",
        ),
        (
            CHATD,
            &["--max-clients", "5"],
            "chatd: --max-clients needs --broker, --echo or --sum (try 'chatd --help')\n",
        ),
        (
            CHATD,
            &["--broker", "--max-queue", "10"],
            "chatd: invalid --max-queue '10': too small for --max-line 65536: a send queue must hold a whole line, at least --max-line + 512 = 66048 bytes (try 'chatd --help')\n",
        ),
        (
            CHATD,
            &["--broker", "-1"],
            "chatd: --broker cannot be used with --once (try 'chatd --help')\n",
        ),
        (
            CHAT,
            &["-6", "127.0.0.1"],
            "chat: invalid HOST '127.0.0.1': not an IPv6 address (-6) (try 'chat --help')\n",
        ),
        (
            CHATD,
            &["-4", "-b", "::1"],
            "chatd: invalid --bind '::1': not an IPv4 address (-4) (try 'chatd --help')\n",
        ),
    ] {
        assert_eq!(usage_error(program, args), line, "{args:?}");
    }
}

#[test]
fn room_limits_that_make_no_sense_are_usage_errors() {
    let port = free_port().to_string();
    for (args, why) in [
        (
            &["--max-line", "0"][..],
            "invalid --max-line '0': must be at least 1",
        ),
        (
            &["--max-clients", "0"],
            "invalid --max-clients '0': must be at least 1",
        ),
        (
            &["--max-queue", "1000"],
            "invalid --max-queue '1000': too small",
        ),
    ] {
        let mut all = vec!["--broker", "-b", "127.0.0.1", "-p", &port];
        all.extend_from_slice(args);
        let line = usage_error(CHATD, &all);
        assert!(line.starts_with(&format!("chatd: {why}")), "{line}");
    }
}

// ---------------------------------------------------------------------------
// Host and port forms, -4 and -6

/// Starts `chatd -1 ARGS` (stdin from /dev/null) and waits for its
/// `listening on` line; returns it and the address it names.
fn listening_chatd(args: &[&str]) -> (Proc, SocketAddr) {
    let mut all = vec!["-1"];
    all.extend_from_slice(args);
    let server = spawn_with(CHATD, &all, Stdio::null());
    server.expect_stderr("listening on ");
    let text = server.stderr_text();
    let addr = text
        .lines()
        .find_map(|l| l.strip_prefix("chatd: listening on "))
        .unwrap()
        .parse()
        .unwrap();
    (server, addr)
}

/// Sends one line with `chat ARGS` and checks the server prints it.
fn one_line_through(server: &mut Proc, args: &[&str]) -> Proc {
    let mut client = spawn(CHAT, args);
    client.send(b"through\n");
    server.expect_stdout("through\n");
    client.close_stdin();
    assert_eq!(client.wait(), 0, "{args:?}\n{}", client.dump());
    assert_eq!(server.wait(), 0, "{}", server.dump());
    client
}

#[test]
fn ipv6_in_brackets_with_dash_6() {
    let (mut server, addr) = listening_chatd(&["-6", "-b", "[::1]", "-p", "0"]);
    let port = addr.port().to_string();
    assert_eq!(addr.to_string(), format!("[::1]:{port}"));
    let client = one_line_through(&mut server, &["-6", "[::1]", &port]);
    assert!(
        client
            .stderr_text()
            .contains(&format!("chat: connected to [::1]:{port}"))
    );
}

#[test]
fn dash_4_and_dash_6_choose_the_addresses_of_a_name() {
    let (mut server, addr) = listening_chatd(&["-4", "-b", "localhost", "-p", "0"]);
    let port = addr.port().to_string();
    assert_eq!(addr.to_string(), format!("127.0.0.1:{port}"));
    one_line_through(&mut server, &["-4", "localhost", &port]);
    // Nothing listens on IPv6: localhost has no IPv6 address here, or its
    // IPv6 address refuses.
    let mut client = spawn_with(CHAT, &["-6", "localhost", &port], Stdio::null());
    assert_eq!(client.wait(), 1);
    let text = client.stderr_text();
    assert!(
        text == "chat: localhost has no IPv6 address (-6)\n"
            || text
                == format!(
                    "chat: connect to localhost port {port}: Connection refused; \
                     is chatd running there? --retry SECS waits for it to start\n"
                ),
        "{text}"
    );
}

#[test]
fn dash_6_server_takes_ipv6_clients_only() {
    let (mut server, addr) = listening_chatd(&["-6", "-p", "0"]);
    let port = addr.port().to_string();
    assert_eq!(addr.to_string(), format!("[::]:{port}"));
    // IPV6_V6ONLY: an IPv4 client finds nobody listening.
    let mut refused = spawn_with(CHAT, &["127.0.0.1", &port], Stdio::null());
    assert_eq!(refused.wait(), 1);
    refused.expect_stderr("Connection refused");
    one_line_through(&mut server, &["::1", &port]);
}

#[test]
fn an_ipv4_client_of_an_ipv6_listener_is_shown_as_ipv4() {
    // One form of IPv4-mapped addresses (`::ffff:a.b.c.d` is shown as
    // `a.b.c.d`), in every mode.
    for mode in [&[][..], &["--echo"], &["--broker"]] {
        let mut args = vec!["-b", "::", "-p", "0"];
        args.extend_from_slice(mode);
        let server = spawn(CHATD, &args);
        server.expect_stderr("listening on [::]:");
        let port = wait_for_port(&server, "chatd");
        let conn = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let me = conn.local_addr().unwrap();
        let shown = format!("{me}");
        assert!(shown.starts_with("127.0.0.1:"));
        if mode == ["--broker"] {
            server.expect_stdout(&format!("-!- {shown} joined"));
        } else {
            server.expect_stderr(&format!("connection from {shown}"));
        }
        assert!(
            !server.stderr_text().contains("::ffff:") && !server.stdout_text().contains("::ffff:"),
            "{mode:?}\n{}",
            server.dump()
        );
    }
}

#[test]
fn ports_can_be_service_names() {
    // Nothing listens on the gopher and http ports here: the refusal
    // names the port the service name resolved to.
    for (service, port) in [("gopher", 70), ("http", 80)] {
        let mut client = spawn_with(CHAT, &["127.0.0.1", service], Stdio::null());
        assert_eq!(client.wait(), 1);
        assert_eq!(
            client.stderr_text(),
            format!(
                "chat: connect to 127.0.0.1 port {port}: Connection refused; \
                 is chatd running there? --retry SECS waits for it to start\n"
            )
        );
    }
    // chatd -p gopher binds port 70: as root it listens there, otherwise
    // bind says why not; either way on port 70.
    let mut server = spawn_with(CHATD, &["-b", "127.0.0.1", "-p", "gopher"], Stdio::null());
    let named = wait_until(TIMEOUT, || {
        let text = server.stderr_text();
        text.contains("listening on 127.0.0.1:70\n") || text.contains("bind 127.0.0.1:70: ")
    });
    assert!(named, "{}", server.dump());
    server.signal(libc::SIGTERM);
    server.wait_within(TIMEOUT);
}

#[test]
fn chatd_binds_a_host_name() {
    let (mut server, addr) = listening_chatd(&["-b", "localhost", "-p", "0"]);
    let port = addr.port().to_string();
    assert!(addr.ip().is_loopback(), "{addr}");
    let host = addr.ip().to_string();
    one_line_through(&mut server, &[&host, &port]);
    // A name that does not resolve is a runtime error, as in chat.
    let mut bad = spawn_with(
        CHATD,
        &["-b", "nosuchhost.invalid", "-p", &port],
        Stdio::null(),
    );
    assert_eq!(bad.wait(), 1);
    assert_eq!(
        bad.stderr_text(),
        "chatd: unknown host nosuchhost.invalid; \
         check its spelling, or give an IP address instead\n"
    );
}

// ---------------------------------------------------------------------------
// Errors that say what to do (the others: bind_conflict_…,
// refused_connection_… and unknown_host_… in tests/duplex.rs, the -w
// timeouts below)

#[test]
fn port_ranges_are_worded_the_same_everywhere() {
    for (program, args, range) in [
        (CHAT, &["127.0.0.1", "0"][..], "1 to 65535"),
        (CHAT, &["127.0.0.1", "99999"], "1 to 65535"),
        (CHAT, &["127.0.0.1", "-1"], "1 to 65535"),
        (CHATD, &["-p", "99999"], "0 to 65535"),
        (CHATD, &["-p", "-1"], "0 to 65535"),
    ] {
        let (what, value) = match args {
            ["-p", value] => ("--port", value),
            [_, value] => ("PORT", value),
            _ => unreachable!(),
        };
        let name = program_name(program);
        assert_eq!(
            usage_error(program, args),
            format!(
                "{name}: invalid {what} '{value}': out of range (ports are {range}) \
                 (try '{name} --help')\n"
            )
        );
    }
}

/// The lowest port anyone may bind (ip(7)).
fn unprivileged_port_start() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
        .expect("read net.ipv4.ip_unprivileged_port_start")
        .trim()
        .parse()
        .expect("a port number")
}

#[test]
fn a_privileged_port_says_what_it_needs() {
    // The port just below the privileged boundary, bound without
    // CAP_NET_BIND_SERVICE. A normal user lacks it already. Root (as in
    // CI) has it: it is taken out of the bounding set of that one command
    // (setpriv(1)), so that bind fails with EACCES as for anyone else.
    // Where every port is open to everyone (the boundary at 0 or 1, as
    // some containers set it), root runs chatd in a network namespace of
    // its own, where the boundary has its default, 1024.
    // SAFETY: geteuid(2) cannot fail and touches no memory.
    let root = unsafe { libc::geteuid() } == 0;
    let mut start = unprivileged_port_start();
    let mut command = Vec::new();
    if root && start <= 1 {
        start = 1024;
        command.extend(["unshare", "--net", "sh", "-c"]);
        command.push(r#"ip link set lo up && exec "$0" "$@""#);
    }
    assert!(
        start > 1,
        "net.ipv4.ip_unprivileged_port_start is {start}: any user may bind any \
         port here, so no bind can be refused for lack of privilege; run the \
         tests as root or with the boundary at 1024"
    );
    if root {
        command.extend(["setpriv", "--bounding-set=-net_bind_service"]);
    }
    let port = (start - 1).to_string();
    command.extend([CHATD, "-b", "127.0.0.1", "-p", &port]);
    let mut server = spawn_with(command[0], &command[1..], Stdio::null());
    assert_eq!(
        server.wait_within(TIMEOUT).code(),
        Some(1),
        "{}",
        server.dump()
    );
    assert_eq!(
        server.stderr_text(),
        format!(
            "chatd: bind 127.0.0.1:{port}: Permission denied; ports below {start} \
             need root or CAP_NET_BIND_SERVICE: pick a higher one with -p\n"
        )
    );
}

#[test]
fn an_address_of_another_machine_says_so() {
    // 192.0.2.1 (TEST-NET-1, RFC 5737) is no address of this machine:
    // bind fails with EADDRNOTAVAIL, and nothing listens.
    let port = free_port().to_string();
    let mut server = spawn_with(CHATD, &["-b", "192.0.2.1", "-p", &port], Stdio::null());
    assert_eq!(
        server.wait_within(TIMEOUT).code(),
        Some(1),
        "{}",
        server.dump()
    );
    assert_eq!(
        server.stderr_text(),
        format!(
            "chatd: bind 192.0.2.1:{port}: Cannot assign requested address; \
             no interface of this machine has that address: see 'ip address', or leave out -b\n"
        )
    );
}

// ---------------------------------------------------------------------------
// -w SECS

/// A listener on 127.0.0.1 whose backlog is full: it never accepts, and
/// the kernel drops the SYN of the next client, whose connect hangs.
struct FullBacklog {
    port: u16,
    _listener: std::os::fd::OwnedFd,
    _queued: Vec<TcpStream>,
}

fn full_backlog() -> FullBacklog {
    use nix::sys::socket::{
        AddressFamily, Backlog, SockFlag, SockType, SockaddrIn, bind, getsockname, listen, socket,
    };
    let fd = socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .unwrap();
    let any_port = SockaddrIn::new(127, 0, 0, 1, 0);
    bind(fd.as_raw_fd(), &any_port).unwrap();
    let port = getsockname::<SockaddrIn>(fd.as_raw_fd()).unwrap().port();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    listen(&fd, Backlog::new(0).unwrap()).unwrap();
    // Fill the queue until a connect times out (Linux queues one
    // connection for a backlog of 0).
    let mut queued = Vec::new();
    for _ in 0..16 {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(300)) {
            Ok(conn) => queued.push(conn),
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                return FullBacklog {
                    port,
                    _listener: fd,
                    _queued: queued,
                };
            }
            Err(e) => panic!("filling the backlog: {e}"),
        }
    }
    panic!("the backlog of 0 never filled");
}

#[test]
fn wait_gives_up_a_connect_that_hangs() {
    let hole = full_backlog();
    let port = hole.port.to_string();
    let start = Instant::now();
    let mut client = spawn_with(CHAT, &["-w", "1", "127.0.0.1", &port], Stdio::null());
    assert_eq!(client.wait(), 1, "{}", client.dump());
    assert!(start.elapsed() >= Duration::from_secs(1), "gave up early");
    assert_eq!(
        client.stderr_text(),
        format!(
            "chat: connect to 127.0.0.1 port {port}: timed out after 1 s; \
             the host did not answer: check the address, a firewall, or allow longer with -w\n"
        )
    );
    // Decimals, and -v says the round of attempts on a name.
    let mut client = spawn_with(
        CHAT,
        &["-v", "-w", "0.5", "localhost", &port],
        Stdio::null(),
    );
    assert_eq!(client.wait(), 1, "{}", client.dump());
    client.expect_stderr(&format!(
        "chat: connect to localhost port {port}: timed out after 0.5 s; the host did not answer"
    ));
}

#[test]
fn wait_with_retry_retries_refusals_and_gives_up_a_hang() {
    // Refused: retried for --retry's time, each round within -w.
    let port = free_port().to_string();
    let start = Instant::now();
    let mut client = spawn_with(
        CHAT,
        &["-v", "-w", "5", "--retry", "0.5", "127.0.0.1", &port],
        Stdio::null(),
    );
    assert_eq!(client.wait(), 1);
    assert!(start.elapsed() >= Duration::from_millis(400));
    assert_eq!(
        client.stderr_text(),
        format!(
            "chat: connection refused: retrying for up to 0.5 s\n\
             chat: connect to 127.0.0.1 port {port}: Connection refused; \
             nothing listened there for the 0.5 s of --retry: is chatd running?\n"
        )
    );
    // A round that timed out is not retried: the host did not answer.
    let hole = full_backlog();
    let port = hole.port.to_string();
    let mut client = spawn_with(
        CHAT,
        &["-w", "0.5", "--retry", "30", "127.0.0.1", &port],
        Stdio::null(),
    );
    assert_eq!(client.wait_within(TIMEOUT).code(), Some(1));
    client.expect_stderr("timed out after 0.5 s");
}

#[test]
fn wait_also_closes_an_idle_connection() {
    // A server that accepts and then says nothing.
    let (_server, port) = socat_server("SYSTEM:sleep 20");
    let start = Instant::now();
    let mut client = spawn(CHAT, &["-w", "1", "127.0.0.1", &port.to_string()]);
    assert_eq!(client.wait(), 1, "{}", client.dump());
    assert!(start.elapsed() >= Duration::from_secs(1));
    client.expect_stderr("for 1 s: connection closed");
}

// ---------------------------------------------------------------------------
// -v

#[test]
fn verbose_adds_the_local_address_and_quiet_still_silences() {
    let (mut server, port) = chatd_with(&["-1", "-v"], Stdio::null());
    let mut client = chat(port, &["-v"]);
    client.send(b"hi\n");
    server.expect_stdout("hi\n");
    client.close_stdin();
    assert_eq!(client.wait(), 0, "{}", client.dump());
    assert_eq!(server.wait(), 0, "{}", server.dump());
    let line = client
        .stderr_text()
        .lines()
        .find(|l| l.starts_with("chat: connected to "))
        .map(str::to_owned)
        .expect("a connected line");
    let local = line.rsplit(' ').next().unwrap();
    assert_eq!(
        line,
        format!("chat: connected to 127.0.0.1:{port} from {local}")
    );
    server.expect_stderr(&format!("chatd: {local} connected to 127.0.0.1:{port}\n"));

    let (mut server, port) = chatd_with(&["-1", "-v", "-q"], Stdio::null());
    let mut client = chat(port, &["-v", "-q"]);
    client.send(b"hi\n");
    server.expect_stdout("hi\n");
    client.close_stdin();
    assert_eq!(client.wait(), 0);
    assert_eq!(server.wait(), 0);
    assert_eq!(client.stderr_text(), "");
    assert_eq!(server.stderr_text(), "");
}

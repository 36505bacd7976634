//! `--tls`, observed from outside: the real `chatd` and `chat` on
//! 127.0.0.1 against the TLS tools people already have (`ncat --ssl`,
//! `socat OPENSSL`, `openssl s_client`/`s_server`), in both roles, each
//! exchange checked byte for byte; then the failures a user must see (a
//! wrong pin, a changed key, plain text on either side, a stalled
//! handshake, a name held by another certificate, an unsafe key file).
//!
//! Every process gets its own `XDG_CONFIG_HOME` (a temporary directory),
//! so that no test reads or writes the real `~/.config/chat`. ncat,
//! socat and openssl must be installed (`scripts/test` installs them); a
//! missing one fails the test.

mod util;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use util::*;

/// A user's configuration directory, `XDG_CONFIG_HOME` of the processes
/// it starts.
struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new() -> Home {
        Home {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A file under `chat/` (where `--tls` keeps its files).
    fn file(&self, name: &str) -> PathBuf {
        self.path().join("chat").join(name)
    }

    fn spawn(&self, program: &str, args: &[&str]) -> Proc {
        spawn_env(
            program,
            args,
            &[("XDG_CONFIG_HOME", self.path())],
            Stdio::piped(),
            Stdio::piped(),
        )
    }

    /// `chatd --tls -b 127.0.0.1 -p 0 EXTRA`, once it listens.
    fn chatd(&self, extra: &[&str]) -> (Proc, u16) {
        let mut args = vec!["--tls", "-b", "127.0.0.1", "-p", "0"];
        args.extend_from_slice(extra);
        let server = self.spawn(CHATD, &args);
        let port = wait_for_port(&server, "chatd --tls");
        (server, port)
    }

    /// `chat --tls EXTRA 127.0.0.1 PORT`.
    fn chat(&self, port: u16, extra: &[&str]) -> Proc {
        let port = port.to_string();
        let mut args = vec!["--tls"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["127.0.0.1", &port]);
        self.spawn(CHAT, &args)
    }

    /// The server's certificate, printed by `chatd --tls --print-cert`
    /// into a file (what ncat, socat and openssl users are given).
    fn server_cert(&self) -> PathBuf {
        let mut print = self.spawn(CHATD, &["--tls", "--print-cert"]);
        assert_eq!(print.wait(), 0, "{}", print.dump());
        let pem = print.stdout();
        assert!(pem.starts_with(b"-----BEGIN CERTIFICATE-----\n"));
        let path = self.path().join("server.pem");
        std::fs::write(&path, pem).unwrap();
        path
    }
}

/// `SHA256:…` from the line `chatd: TLS fingerprint SHA256:…`.
fn fingerprint_of(server: &Proc) -> String {
    server.expect_stderr("TLS fingerprint SHA256:");
    let text = server.stderr_text();
    let at = text.find("TLS fingerprint ").unwrap() + "TLS fingerprint ".len();
    text[at..].lines().next().unwrap().to_owned()
}

/// The fingerprint of a PEM certificate as `openssl x509 -fingerprint
/// -sha256` prints it (after `sha256 Fingerprint=`).
fn openssl_fingerprint(cert: &Path) -> String {
    let mut x509 = spawn(
        "openssl",
        &[
            "x509",
            "-noout",
            "-fingerprint",
            "-sha256",
            "-in",
            cert.to_str().unwrap(),
        ],
    );
    assert_eq!(x509.wait(), 0, "{}", x509.dump());
    let text = x509.stdout_text();
    text.trim().split_once('=').unwrap().1.to_owned()
}

/// An ECDSA P-256 key and self-signed certificate made by openssl, for
/// the servers of the other tools: (certificate, key).
fn openssl_identity(home: &Home) -> (PathBuf, PathBuf) {
    let (cert, key) = (home.path().join("peer.pem"), home.path().join("peer.key"));
    let mut req = spawn(
        "openssl",
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "30",
            "-subj",
            "/CN=peer",
            "-keyout",
            key.to_str().unwrap(),
            "-out",
            cert.to_str().unwrap(),
        ],
    );
    assert_eq!(req.wait(), 0, "{}", req.dump());
    (cert, key)
}

/// Waits for `proc` to exit and returns its status code.
fn exit_code(proc: &mut Proc) -> Option<i32> {
    proc.wait_within(TIMEOUT * 2).code()
}

// --- chatd --tls and the other tools' clients ----------------------------

/// `chatd --tls -1` with one line to send; `client` (another tool) sends
/// one line and ends its input: each side receives exactly the other's
/// line.
fn serve_one(home: &Home, client: &[&str], to_server: &[u8]) {
    let (mut server, port) = home.chatd(&["-1"]);
    server.send(b"from chatd\n");
    server.close_stdin();
    let port = port.to_string();
    let args: Vec<String> = client.iter().map(|a| a.replace("PORT", &port)).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut peer = spawn(args[0], &args[1..]);
    peer.send(to_server);
    server.expect_stdout(std::str::from_utf8(to_server).unwrap());
    peer.expect_stdout("from chatd\n");
    peer.close_stdin();
    assert_eq!(exit_code(&mut server), Some(0), "{}", server.dump());
    assert_eq!(server.stdout(), to_server, "{}", server.dump());
    server.expect_stderr("no client certificate");
    let _ = peer.wait_within(TIMEOUT * 2);
    assert_eq!(peer.stdout(), b"from chatd\n", "{}", peer.dump());
}

#[test]
fn ncat_ssl_talks_to_chatd_tls() {
    let home = Home::new();
    serve_one(
        &home,
        &["ncat", "--ssl", "127.0.0.1", "PORT"],
        b"from ncat\n",
    );
}

#[test]
fn ncat_verifies_chatd_with_its_printed_certificate_and_dns_name() {
    let home = Home::new();
    let cert = home.server_cert();
    let cert = cert.to_str().unwrap();
    serve_one(
        &home,
        &[
            "ncat",
            "--ssl-verify",
            "--ssl-trustfile",
            cert,
            "--ssl-servername",
            "chatd",
            "127.0.0.1",
            "PORT",
        ],
        b"from ncat --ssl-verify\n",
    );
}

#[test]
fn socat_openssl_verifies_chatd_with_cafile_and_commonname() {
    let home = Home::new();
    let cert = home.server_cert();
    let address = format!(
        "OPENSSL:127.0.0.1:PORT,cafile={},commonname=chatd",
        cert.display()
    );
    serve_one(&home, &["socat", "-t", "5", "-", &address], b"from socat\n");
}

#[test]
fn openssl_s_client_verifies_chatd_and_updates_its_keys() {
    let home = Home::new();
    let cert = home.server_cert();
    let (mut server, port) = home.chatd(&["-1"]);
    let connect = format!("127.0.0.1:{port}");
    let mut client = spawn(
        "openssl",
        &[
            "s_client",
            "-verify_return_error",
            "-CAfile",
            cert.to_str().unwrap(),
            "-verify_hostname",
            "chatd",
            "-servername",
            "chatd",
            "-connect",
            &connect,
        ],
    );
    client.send(b"before\n");
    server.expect_stdout("before\n");
    // A line `K` is s_client's command for a KeyUpdate that asks the
    // peer to update its keys too; it is not sent as data.
    client.send(b"K\n");
    client.expect_stderr("KEYUPDATE");
    client.send(b"after\n");
    server.expect_stdout("before\nafter\n");
    server.send(b"reply\n");
    client.expect_stdout("reply\n");
    client.close_stdin();
    server.close_stdin();
    assert_eq!(exit_code(&mut server), Some(0), "{}", server.dump());
    assert_eq!(server.stdout(), b"before\nafter\n");
    assert!(
        client.stderr_text().contains("verify return:1"),
        "{}",
        client.dump()
    );
    let _ = client.wait_within(TIMEOUT * 2);
}

// --- chat --tls and the other tools' servers -------------------------------

/// `chat --tls EXTRA` to `server` (another tool, listening on `port`):
/// chat sends one line, the server one; each receives exactly the other's.
fn talk_to(home: &Home, server: &mut Proc, port: u16, extra: &[&str], from_server: &[u8]) {
    let mut client = home.chat(port, extra);
    client.send(b"from chat\n");
    server.expect_stdout("from chat\n");
    server.send(from_server);
    client.expect_stdout(std::str::from_utf8(from_server).unwrap());
    client.close_stdin();
    server.close_stdin();
    assert_eq!(exit_code(&mut client), Some(0), "{}", client.dump());
    assert_eq!(client.stdout(), from_server, "{}", client.dump());
}

#[test]
fn chat_tls_talks_to_ncat_ssl_listening() {
    let home = Home::new();
    let port = free_port();
    let mut server = spawn("ncat", &["--ssl", "-l", "127.0.0.1", &port.to_string()]);
    wait_for_port(&server, "ncat --ssl -l");
    // ncat makes a new temporary key on every run: nothing to pin.
    talk_to(&home, &mut server, port, &["--accept-new"], b"from ncat\n");
    let _ = server.wait_within(TIMEOUT * 2);
    assert_eq!(server.stdout(), b"from chat\n");
}

#[test]
fn chat_tls_talks_to_socat_openssl_listen_pinned() {
    let home = Home::new();
    let (cert, key) = openssl_identity(&home);
    let listen = format!(
        "OPENSSL-LISTEN:0,bind=127.0.0.1,cert={},key={},verify=0",
        cert.display(),
        key.display()
    );
    let mut server = socat(&["-t", "5", &listen, "-"]);
    let port = wait_for_port(&server, "socat OPENSSL-LISTEN");
    let pin = openssl_fingerprint(&cert);
    talk_to(&home, &mut server, port, &["--pin", &pin], b"from socat\n");
    let _ = server.wait_within(TIMEOUT * 2);
    assert_eq!(server.stdout(), b"from chat\n");
}

#[test]
fn chat_tls_talks_to_openssl_s_server_through_a_key_update() {
    let home = Home::new();
    let (cert, key) = openssl_identity(&home);
    let mut server = spawn(
        "openssl",
        &[
            "s_server",
            "-msg",
            "-naccept",
            "1",
            "-accept",
            "127.0.0.1:0",
            "-cert",
            cert.to_str().unwrap(),
            "-key",
            key.to_str().unwrap(),
        ],
    );
    let port = wait_for_port(&server, "openssl s_server");
    let pin = openssl_fingerprint(&cert);
    let mut client = home.chat(port, &["--pin", &pin.to_lowercase().replace(':', "")]);
    client.send(b"from chat\n");
    server.expect_stdout("from chat\n");
    // s_server's `K`: a KeyUpdate asking chat to update its keys too;
    // `-msg` shows it leave (>>>), and chat's own arrive (<<<) with its
    // next data (RFC 8446 §4.6.3: before its next application data).
    server.send(b"K\n");
    server.expect_stdout(">>> TLS 1.3, Handshake [length 0005], KeyUpdate");
    server.send(b"after the key update\n");
    client.expect_stdout("after the key update\n");
    client.send(b"and back\n");
    server.expect_stdout("and back\n");
    server.expect_stdout("<<< TLS 1.3, Handshake [length 0005], KeyUpdate");
    client.close_stdin();
    assert_eq!(exit_code(&mut client), Some(0), "{}", client.dump());
    assert_eq!(client.stdout(), b"after the key update\n");
    server.close_stdin();
    let _ = server.wait_within(TIMEOUT * 2);
}

// --- chat --tls and chatd --tls, every mode ------------------------------------

#[test]
fn raw_bytes_cross_both_ways_exactly() {
    let home = Home::new();
    let (mut server, port) = home.chatd(&["-1", "--raw"]);
    let fingerprint = fingerprint_of(&server);
    let up = random_bytes(3 * 1024 * 1024 + 17, 1);
    let down = random_bytes(2 * 1024 * 1024 + 5, 2);
    let mut client = home.chat(port, &["--raw", "--pin", &fingerprint]);
    let mut to_client = client.take_stdin();
    let mut to_server = server.take_stdin();
    let (up2, down2) = (up.clone(), down.clone());
    let a = std::thread::spawn(move || to_client.write_all(&up2).unwrap());
    let b = std::thread::spawn(move || to_server.write_all(&down2).unwrap());
    a.join().unwrap();
    b.join().unwrap();
    assert_eq!(
        wait_while_moving(&mut client, &server).code(),
        Some(0),
        "{}",
        client.dump()
    );
    assert_eq!(
        wait_while_moving(&mut server, &client).code(),
        Some(0),
        "{}",
        server.dump()
    );
    assert!(
        server.stdout() == up,
        "server got {} bytes of {}",
        server.stdout().len(),
        up.len()
    );
    assert!(
        client.stdout() == down,
        "client got {} bytes of {}",
        client.stdout().len(),
        down.len()
    );
    // The server saw chat's own certificate.
    server.expect_stderr("client certificate SHA256:");
}

#[test]
fn lockstep_turns_work_over_tls() {
    let home = Home::new();
    let (mut server, port) = home.chatd(&["-1", "-a"]);
    let mut client = home.chat(port, &["-a", "--accept-new"]);
    client.send(b"one\n");
    server.expect_stdout("one\n");
    server.send(b"two\n");
    client.expect_stdout("two\n");
    client.send(b"bye\n");
    assert_eq!(exit_code(&mut client), Some(0), "{}", client.dump());
    assert_eq!(exit_code(&mut server), Some(0), "{}", server.dump());
    assert_eq!(client.stdout(), b"two\n");
}

#[test]
fn echo_and_sum_serve_over_tls() {
    let home = Home::new();
    let (mut echo, port) = home.chatd(&["--echo"]);
    let mut client = home.chat(port, &["--accept-new"]);
    client.send(b"echo me\n");
    client.expect_stdout("echo me\n");
    client.close_stdin();
    assert_eq!(exit_code(&mut client), Some(0), "{}", client.dump());
    assert_eq!(client.stdout(), b"echo me\n");
    echo.signal(libc::SIGTERM);
    let _ = echo.wait_within(TIMEOUT);

    let (mut sum, port) = home.chatd(&["--sum", "-1"]);
    let mut client = home.chat(port, &["--raw", "--accept-new"]);
    // The Java client's greeting (writeUTF: length, then its address),
    // then a pair of 32-bit big-endian integers.
    client.send(b"\0\x09127.0.0.1");
    client.send(&[0, 0, 0, 40, 0, 0, 0, 2]);
    client.close_stdin();
    assert_eq!(exit_code(&mut client), Some(0), "{}", client.dump());
    assert_eq!(client.stdout(), [0, 0, 0, 42]);
    assert_eq!(exit_code(&mut sum), Some(0), "{}", sum.dump());
    assert!(
        sum.stdout_text().ends_with("] 40 + 2 = 42\n"),
        "{}",
        sum.dump()
    );
}

// --- failures ------------------------------------------------------------------

#[test]
fn a_wrong_pin_aborts_before_any_byte_is_sent() {
    let home = Home::new();
    let (server, port) = home.chatd(&["-1"]);
    let real = fingerprint_of(&server);
    let wrong = format!("SHA256{}", ":AB".repeat(32));
    let mut client = home.chat(port, &["--pin", &wrong]);
    client.send(b"secret\n");
    client.close_stdin();
    assert_eq!(exit_code(&mut client), Some(1), "{}", client.dump());
    let err = client.stderr_text();
    assert!(err.contains("is not the pinned server"), "{err}");
    assert!(err.contains(&real) && err.contains(&wrong), "{err}");
    assert!(err.contains("nothing was sent"), "{err}");
    server.expect_stderr("TLS handshake with 127.0.0.1:");
    assert!(server.stdout().is_empty(), "{}", server.dump());
}

#[test]
fn a_changed_key_fails_with_both_fingerprints_and_the_line_to_remove() {
    let home = Home::new();
    let (server, port) = home.chatd(&["-1"]);
    let real = fingerprint_of(&server);
    let old = format!("SHA256{}", ":0C".repeat(32));
    let known = home.file("known_hosts");
    std::fs::write(&known, format!("# mine\n[127.0.0.1]:{port} {old}\n")).unwrap();
    let mut client = home.chat(port, &[]);
    client.send(b"secret\n");
    client.close_stdin();
    assert_eq!(exit_code(&mut client), Some(1), "{}", client.dump());
    let err = client.stderr_text();
    assert!(err.contains("has changed"), "{err}");
    assert!(err.contains(&real) && err.contains(&old), "{err}");
    assert!(
        err.contains(&format!("remove line 2 of {}", known.display())),
        "{err}"
    );
    // --accept-new does not accept a changed key either.
    let mut again = home.chat(port, &["--accept-new"]);
    again.close_stdin();
    assert_eq!(exit_code(&mut again), Some(1), "{}", again.dump());
    assert!(server.stdout().is_empty(), "{}", server.dump());
}

#[test]
fn an_unknown_server_is_refused_in_a_script_then_saved_with_accept_new() {
    let home = Home::new();
    let (mut server, port) = home.chatd(&[]);
    let real = fingerprint_of(&server);
    let mut client = home.chat(port, &[]);
    client.send(b"secret\n");
    client.close_stdin();
    assert_eq!(exit_code(&mut client), Some(1), "{}", client.dump());
    let err = client.stderr_text();
    assert!(err.contains(&format!("--pin {real}")), "{err}");
    assert!(err.contains("nothing was sent"), "{err}");
    let mut client = home.chat(port, &["--accept-new"]);
    client.send(b"first\n");
    client.close_stdin();
    assert_eq!(exit_code(&mut client), Some(0), "{}", client.dump());
    assert!(client.stderr_text().contains("saved"), "{}", client.dump());
    let known = std::fs::read_to_string(home.file("known_hosts")).unwrap();
    assert_eq!(known, format!("[127.0.0.1]:{port} {real}\n"));
    // Known now: a script connects without any option.
    let mut client = home.chat(port, &[]);
    client.send(b"second\n");
    client.close_stdin();
    assert_eq!(exit_code(&mut client), Some(0), "{}", client.dump());
    assert!(
        client.stderr_text().contains("known_hosts:1"),
        "{}",
        client.dump()
    );
    server.expect_stdout("first\nsecond\n");
    assert_eq!(server.stdout(), b"first\nsecond\n");
    server.signal(libc::SIGTERM);
    let _ = server.wait_within(TIMEOUT);
}

#[test]
fn insecure_says_so_on_every_connection() {
    let home = Home::new();
    let (mut server, port) = home.chatd(&[]);
    for line in [&b"one\n"[..], b"two\n"] {
        let mut client = home.chat(port, &["--insecure", "-q"]);
        client.send(line);
        client.close_stdin();
        assert_eq!(exit_code(&mut client), Some(0), "{}", client.dump());
        assert!(
            client.stderr_text().contains("WARNING: --insecure"),
            "{}",
            client.dump()
        );
    }
    server.expect_stdout("one\ntwo\n");
    assert!(!home.file("known_hosts").exists());
    server.signal(libc::SIGTERM);
    let _ = server.wait_within(TIMEOUT);
}

#[test]
fn a_plain_text_client_gets_a_one_line_refusal_and_chatd_goes_on() {
    let home = Home::new();
    let (mut server, port) = home.chatd(&[]);
    let mut plain = TcpStream::connect(("127.0.0.1", port)).unwrap();
    plain.set_read_timeout(Some(TIMEOUT)).unwrap();
    plain.write_all(b"hello\n").unwrap();
    let mut answer = Vec::new();
    plain.read_to_end(&mut answer).unwrap();
    assert_eq!(
        answer,
        b"chatd: this port speaks TLS: connect with chat --tls, ncat --ssl or openssl s_client\n"
    );
    server.expect_stderr("spoke plain text to a TLS port (\"hello\"): refused");
    // The next client is served.
    let mut client = home.chat(port, &["--accept-new"]);
    client.send(b"after\n");
    client.close_stdin();
    assert_eq!(exit_code(&mut client), Some(0), "{}", client.dump());
    server.expect_stdout("after\n");
    assert_eq!(server.stdout(), b"after\n");
    server.signal(libc::SIGTERM);
    let _ = server.wait_within(TIMEOUT);
}

#[test]
fn chat_tls_to_a_plain_text_server_fails_in_one_line() {
    let home = Home::new();
    // A room without --tls greets each newcomer in plain text.
    let (mut room, port) = chatd(&["--broker"]);
    let mut client = home.chat(port, &["--accept-new"]);
    client.send(b"secret\n");
    client.close_stdin();
    assert_eq!(exit_code(&mut client), Some(1), "{}", client.dump());
    let err = client.stderr_text();
    let last = err.lines().last().unwrap();
    assert!(
        last.contains("does not speak TLS: it sent plain text (\"-!- you are 127.0.0.1:"),
        "{err}"
    );
    assert!(last.ends_with("nothing was sent"), "{err}");
    room.signal(libc::SIGTERM);
    let _ = room.wait_within(TIMEOUT);
    assert!(!room.stdout_text().contains("secret"), "{}", room.dump());
}

#[test]
fn a_stalled_handshake_is_dropped_and_stalls_nobody() {
    let home = Home::new();
    let (mut room, port) = home.chatd(&["--broker"]);
    // Connects and never says a word.
    let mut stalled = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stalled.set_read_timeout(Some(TIMEOUT * 2)).unwrap();
    let started = Instant::now();
    // The room goes on meanwhile: two clients talk at once.
    let mut a = home.chat(port, &["--accept-new", "--name", "ann"]);
    a.expect_stdout("-!- you are now ann");
    let mut b = home.chat(port, &["--name", "bob"]);
    b.expect_stdout("-!- you are now bob");
    a.send(b"quick\n");
    b.expect_stdout("[ann] quick\n");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "the room waited"
    );
    // The stalled one is dropped after the handshake timeout (10 s), told
    // why in plain text (it may be a plain client waiting for its user).
    let mut told = Vec::new();
    stalled.read_to_end(&mut told).unwrap();
    assert_eq!(
        told,
        b"chatd: this port speaks TLS: connect with chat --tls, ncat --ssl or openssl s_client\n"
    );
    assert!(
        started.elapsed() >= Duration::from_secs(9),
        "{:?}",
        started.elapsed()
    );
    room.expect_stderr("no TLS handshake from 127.0.0.1:");
    room.signal(libc::SIGTERM);
    let _ = room.wait_within(TIMEOUT);
    a.close_stdin();
    b.close_stdin();
    let _ = a.wait_within(TIMEOUT);
    let _ = b.wait_within(TIMEOUT);
}

#[test]
fn a_name_held_by_another_certificate_is_refused_even_after_a_restart() {
    let server_home = Home::new();
    let (alice_home, mallory_home) = (Home::new(), Home::new());
    let (mut room, port) = server_home.chatd(&["--broker"]);
    let mut alice = alice_home.chat(port, &["--accept-new", "--name", "alice"]);
    alice.expect_stdout("-!- you are now alice");
    // A client that sent nothing is receive-only and never half-closes:
    // a line first.
    alice.send(b"hello\n");
    alice.close_stdin();
    assert_eq!(exit_code(&mut alice), Some(0), "{}", alice.dump());
    let names = std::fs::read_to_string(server_home.file("names")).unwrap();
    assert!(names.contains("alice SHA256:"), "{names}");
    room.signal(libc::SIGTERM);
    let _ = room.wait_within(TIMEOUT);

    let (mut room, port) = server_home.chatd(&["--broker"]);
    let mut mallory = mallory_home.chat(port, &["--accept-new"]);
    mallory.expect_stdout("-!- you are ");
    mallory.send(b"/nick Alice\n");
    mallory.expect_stdout("-!- /nick: Alice is reserved for another certificate\n");
    // The certificate that holds it gets it back as it joins.
    let mut alice = alice_home.chat(port, &["--accept-new"]);
    alice.expect_stdout("-!- you are alice; here: ");
    mallory.send(b"/who\n");
    mallory.expect_stdout("alice (verified)");
    // A client without a certificate (ncat) joins under its address.
    let mut ncat = spawn("ncat", &["--ssl", "127.0.0.1", &port.to_string()]);
    ncat.expect_stdout("-!- you are 127.0.0.1:");
    ncat.send(b"/nick alice\n");
    ncat.expect_stdout("-!- /nick: alice is reserved for another certificate\n");
    room.signal(libc::SIGTERM);
    let _ = room.wait_within(TIMEOUT);
    for p in [&mut mallory, &mut alice, &mut ncat] {
        p.close_stdin();
        let _ = p.wait_within(TIMEOUT);
    }
}

#[test]
fn a_name_that_looks_like_one_held_by_another_certificate_is_refused() {
    let server_home = Home::new();
    let (alice_home, mallory_home) = (Home::new(), Home::new());
    let (mut room, port) = server_home.chatd(&["--broker"]);
    let mut alice = alice_home.chat(port, &["--accept-new", "--name", "alice"]);
    alice.expect_stdout("-!- you are now alice");
    alice.send(b"hello\n");
    alice.close_stdin();
    assert_eq!(exit_code(&mut alice), Some(0), "{}", alice.dump());
    // alice is away: `аlice` (Cyrillic а) and `a1ice` would pass for her.
    let mut mallory = mallory_home.chat(port, &["--accept-new", "--name", "\u{430}lice"]);
    mallory.expect_stdout("-!- /nick: \u{430}lice is reserved for another certificate\n");
    let mut ncat = spawn("ncat", &["--ssl", "127.0.0.1", &port.to_string()]);
    ncat.expect_stdout("-!- you are 127.0.0.1:");
    ncat.send(b"/nick a1ice\n");
    ncat.expect_stdout("-!- /nick: a1ice is reserved for another certificate\n");
    mallory.send(b"/who\n");
    mallory.expect_stdout("-!- 2 present: ");
    // Nobody took a look-alike of hers.
    let text = mallory.stdout_text();
    let who = text
        .lines()
        .find(|l| l.starts_with("-!- 2 present: "))
        .unwrap();
    assert!(!who.contains("lice"), "{who}");
    room.signal(libc::SIGTERM);
    let _ = room.wait_within(TIMEOUT);
    for p in [&mut mallory, &mut ncat] {
        p.close_stdin();
        let _ = p.wait_within(TIMEOUT);
    }
}

#[test]
fn a_key_file_others_may_read_is_refused_by_name() {
    let home = Home::new();
    let mut print = home.spawn(CHATD, &["--tls", "--print-cert"]);
    assert_eq!(print.wait(), 0, "{}", print.dump());
    let key = home.file("chatd-key.pem");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut server = home.spawn(CHATD, &["--tls", "-b", "127.0.0.1", "-p", "0"]);
    assert_eq!(exit_code(&mut server), Some(1), "{}", server.dump());
    assert_eq!(
        server.stderr_text(),
        format!(
            "chatd: key {} may be read by others (mode 0644): chmod 600 it\n",
            key.display()
        )
    );
    let cert = home.file("chatd-cert.pem");
    let mut server = home.spawn(
        CHATD,
        &[
            "--tls",
            "--cert",
            cert.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
            "-p",
            "0",
        ],
    );
    assert_eq!(exit_code(&mut server), Some(1), "{}", server.dump());
    assert!(server.stderr_text().contains("may be read by others"));
}

#[test]
fn the_printed_fingerprint_is_what_openssl_computes() {
    let home = Home::new();
    let cert = home.server_cert();
    let (mut server, _port) = home.chatd(&[]);
    let shown = fingerprint_of(&server);
    assert_eq!(shown, format!("SHA256:{}", openssl_fingerprint(&cert)));
    server.signal(libc::SIGTERM);
    let _ = server.wait_within(TIMEOUT);
}

#[test]
fn on_a_terminal_an_unknown_server_is_shown_and_asked_for() {
    use util::tmux::{Tmux, quoted};
    let server_home = Home::new();
    let (mut server, port) = server_home.chatd(&[]);
    let fingerprint = fingerprint_of(&server);
    let home = Home::new();
    let command = |home: &Home| {
        format!(
            "XDG_CONFIG_HOME={} {} --tls 127.0.0.1 {port}",
            quoted(home.path().to_str().unwrap()),
            quoted(CHAT)
        )
    };
    let tmux = Tmux::start("chat", &command(&home));
    let screen = tmux.expect_screen("chat", "trust it and remember it? (yes/no)");
    // The fingerprint is wider than the 100 columns of the pane: it wraps.
    let unwrapped = screen.replace('\n', "");
    assert!(
        unwrapped.contains(&format!("its TLS fingerprint is {fingerprint}")),
        "{screen}"
    );
    tmux.type_line("chat", "yes");
    tmux.expect_screen("chat", "known_hosts:1");
    tmux.type_line("chat", "hello over tls");
    server.expect_stdout("hello over tls\n");
    let known = std::fs::read_to_string(home.file("known_hosts")).unwrap();
    assert_eq!(known, format!("[127.0.0.1]:{port} {fingerprint}\n"));

    // The 1-to-1 server serves one client at a time: this one leaves.
    tmux.type_line("chat", "bye");
    server.expect_stderr("said bye: session ended");
    // Another person says no: refused, nothing sent, nothing saved.
    let other = Home::new();
    tmux.new_window("no", &command(&other));
    tmux.expect_screen("no", "trust it and remember it? (yes/no)");
    tmux.type_line("no", "no");
    tmux.expect_screen("no", "not trusted: nothing was sent");
    assert!(!other.file("known_hosts").exists());
    server.signal(libc::SIGTERM);
    let _ = server.wait_within(TIMEOUT);
    assert_eq!(server.stdout(), b"hello over tls\nbye\n");
}

/// The room section of `scripts/bench tls` (`examples/tlsroom.rs`, built
/// by `cargo test` like every example) against the room as it is: its
/// clients count as joined when they read the room's greeting, so a
/// greeting that changed would make the benchmark stop with "only 0
/// clients joined" long after the change. 20 clients, with and without
/// TLS: all join, and all receive the line one of them says.
#[test]
fn the_benchmark_room_load_joins_and_every_client_hears_the_line() {
    let load = Path::new(CHATD)
        .parent()
        .unwrap()
        .join("examples")
        .join("tlsroom");
    assert!(
        load.exists(),
        "{} is missing: plain `cargo test` builds the examples, `cargo test --test tls` does not (run `cargo build --examples` first)",
        load.display()
    );
    for tls in [true, false] {
        let home = Home::new();
        let (mut room, port) = if tls {
            home.chatd(&["--broker", "-q"])
        } else {
            chatd_with(&["--broker", "-q"], Stdio::null())
        };
        let (port, pid) = (port.to_string(), room.pid().to_string());
        let mut args = vec![port.as_str(), "20", "--pid", &pid, "--limit", "15"];
        if !tls {
            args.push("--plain");
        }
        let mut run = home.spawn(load.to_str().unwrap(), &args);
        assert_eq!(exit_code(&mut run), Some(0), "tls {tls}: {}", run.dump());
        // `N RSS PEAK JOIN_SECONDS LINE_SECONDS`
        let out = String::from_utf8(run.stdout()).unwrap();
        let fields: Vec<&str> = out.split_whitespace().collect();
        assert_eq!(fields.len(), 5, "tls {tls}: {out}");
        assert_eq!(fields[0], "20", "tls {tls}: {out}");
        assert!(fields[1].parse::<u64>().unwrap() > 0, "tls {tls}: {out}");
        room.signal(libc::SIGTERM);
        let _ = room.wait_within(TIMEOUT);
    }
}

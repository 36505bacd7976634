//! `--tls`: encrypted and authenticated connections, verified by
//! certificate fingerprint and trust on first use (as SSH), with rustls
//! and its `ring` provider.
//!
//! This layer sits beside [`crate::net`] and [`crate::access`]: above the
//! session, the fork and the status lines, below the broker, the services
//! and the command line, which it never imports.
//!
//! - [`fingerprint`]: the SHA-256 of a DER certificate, `SHA256:0C:E6:…`,
//!   and `--pin`'s forms;
//! - [`identity`]: the persistent self-signed certificate and key under
//!   `$XDG_CONFIG_HOME/chat/`, or `--cert`/`--key`;
//! - [`known_hosts`]: the servers seen (`[host]:port FINGERPRINT`), and the
//!   trust-on-first-use decision;
//! - [`names`]: the room's names bound to client certificates;
//! - [`config`]: the rustls configurations of both roles;
//! - [`handshake`]: the handshake, bounded in time, telling plain text
//!   and silence apart from TLS errors;
//! - [`client`] and [`server`]: the handshake of `chat --tls` with its
//!   trust decision, and of `chatd --tls` with its refusals;
//! - [`event`]: a client's TLS state driven by the room's event loop;
//! - [`pump`]: one process owning the TCP socket and the TLS state, copying
//!   to and from a `socketpair(2)` on which the session runs unchanged.

pub mod client;
pub mod config;
pub mod event;
pub mod fingerprint;
pub mod handshake;
pub mod identity;
pub mod known_hosts;
pub mod names;
pub mod pump;
pub mod server;

pub use fingerprint::Fingerprint;
pub use identity::Identity;

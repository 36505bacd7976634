//! The rustls configurations of both roles: the `ring` provider, TLS 1.3
//! and 1.2, and peers verified by certificate fingerprint instead of by a
//! certificate authority.
//!
//! - The client ([`client_config`]) accepts any well-formed, current
//!   certificate from the server: whom to trust is decided after the
//!   handshake from the fingerprint ([`crate::tls::known_hosts`]), before a
//!   byte of input is sent. With `--pin`, a server with another
//!   fingerprint is refused during the handshake itself (with the alert
//!   `bad_certificate`). It shows its own certificate when asked.
//! - The server ([`server_config`]) asks for a client certificate but does
//!   not require one (RFC 8446 §4.3.2, an empty list of authorities: any
//!   certificate): `chat --tls` shows its own, plain `ncat --ssl` and
//!   `openssl s_client` show none and still connect.
//!
//! Either way, the handshake's signature is always checked against the
//! certificate's key (`verify_tls12_signature`/`verify_tls13_signature`):
//! a peer cannot show someone else's certificate without its private key.
//! Validity dates are checked for self-signed certificates (the kind
//! `chatd` and `chat` make): an expired one is refused with the date.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, DistinguishedName, ServerConfig,
    SignatureScheme,
};

use crate::error::Error;
use crate::tls::{Fingerprint, Identity};

/// How long a handshake may take before the connection is dropped, in
/// seconds: a client that connects and sends nothing (a plain-text client
/// waiting for its user, or a stalled one) does not hold a server's
/// session, nor a client waiting for a server that does not speak TLS.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The crypto provider: rustls's `ring` back end (no system libssl; builds
/// with a C compiler alone, where aws-lc-rs needs cmake too). rustls
/// 0.23.48 marks it deprecated because ring has no post-quantum key
/// exchange (X25519MLKEM768): the key exchange is X25519 or the NIST
/// curves, as with socat and ncat on OpenSSL 3.0.
#[allow(deprecated)]
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The protocol versions: TLS 1.3 (RFC 8446), and TLS 1.2 (RFC 5246) for
/// older peers.
pub static VERSIONS: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

/// The configuration of `chatd --tls`: `identity`'s certificate, client
/// certificates asked for and not required.
///
/// Errors: [`Error::Msg`] naming the certificate file when rustls refuses
/// the certificate or key (a key that is not the certificate's, an
/// unsupported key type).
pub fn server_config(identity: &Identity) -> Result<Arc<ServerConfig>, Error> {
    check_own_dates(identity)?;
    let provider = provider();
    let verifier = Arc::new(AnyClient {
        algorithms: provider.signature_verification_algorithms,
    });
    let config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(VERSIONS)
        .map_err(|e| Error::Msg(format!("TLS set-up: {e}")))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(identity.chain.clone(), identity.key.clone_key())
        .map_err(|e| identity_error(identity, &e))?;
    Ok(Arc::new(config))
}

/// The fingerprint of the certificate the server showed, recorded by the
/// client's verifier (also when it refused it: a `--pin` mismatch names
/// both fingerprints).
pub type Seen = Arc<Mutex<Option<Fingerprint>>>;

/// The configuration of `chat --tls`: the server's certificate accepted by
/// fingerprint (refused during the handshake unless it is `pin`, when
/// given), and `identity`'s certificate shown when the server asks. Also
/// returns where the verifier records the server's fingerprint.
///
/// Errors: as [`server_config`].
pub fn client_config(
    identity: &Identity,
    pin: Option<Fingerprint>,
) -> Result<(Arc<ClientConfig>, Seen), Error> {
    check_own_dates(identity)?;
    let provider = provider();
    let seen = Seen::default();
    let verifier = Arc::new(AnyServer {
        algorithms: provider.signature_verification_algorithms,
        pin,
        seen: Arc::clone(&seen),
    });
    let config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(VERSIONS)
        .map_err(|e| Error::Msg(format!("TLS set-up: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_auth_cert(identity.chain.clone(), identity.key.clone_key())
        .map_err(|e| identity_error(identity, &e))?;
    Ok((Arc::new(config), seen))
}

/// The name the client asks for (SNI, RFC 6066 §3): `host` when it is a
/// DNS name, none for an IP address. Any `host` the command line accepts
/// is one or the other; a name rustls refuses falls back to
/// [`crate::tls::identity::SERVER_NAME`].
pub fn server_name(host: &str) -> ServerName<'static> {
    ServerName::try_from(host.to_owned()).unwrap_or_else(|_| {
        ServerName::try_from(crate::tls::identity::SERVER_NAME).expect("a valid DNS name")
    })
}

/// Refuses one's own certificate when its peers would refuse it: expired,
/// not valid yet, or malformed ([`check_dates`]), naming the file.
fn check_own_dates(identity: &Identity) -> Result<(), Error> {
    let Some(first) = identity.chain.first() else {
        return Ok(());
    };
    check_dates(first, UnixTime::now()).map_err(|why| {
        Error::Msg(format!(
            "certificate {}: {why}",
            identity.cert_file.display()
        ))
    })
}

fn identity_error(identity: &Identity, err: &rustls::Error) -> Error {
    Error::Msg(format!(
        "certificate {} and key {}: {err}",
        identity.cert_file.display(),
        identity.key_file.display()
    ))
}

/// Checks the validity dates of a self-signed certificate `der` at `now`.
/// A certificate signed by someone else is not judged here (the identity
/// is its fingerprint; its issuer is not ours to know).
///
/// Errors: a phrase for the peer's or the file's line: `expired on
/// 2024-01-31 00:00:00 UTC`, `not valid before …`, `malformed (…)`.
pub fn check_dates(der: &CertificateDer<'_>, now: UnixTime) -> Result<(), String> {
    let cert = webpki::EndEntityCert::try_from(der).map_err(|e| format!("malformed ({e})"))?;
    let anchor = match webpki::anchor_from_trusted_cert(der) {
        Ok(anchor) => anchor,
        Err(e) => return Err(format!("malformed ({e})")),
    };
    let algorithms = provider().signature_verification_algorithms.all;
    let anchors = [anchor];
    match cert.verify_for_usage(
        algorithms,
        &anchors,
        &[],
        now,
        webpki::KeyUsage::server_auth(),
        None,
        None,
    ) {
        Err(webpki::Error::CertExpired { not_after, .. }) => {
            Err(format!("expired on {}", utc(not_after)))
        }
        Err(webpki::Error::CertNotValidYet { not_before, .. }) => {
            Err(format!("not valid before {}", utc(not_before)))
        }
        Err(webpki::Error::BadDer | webpki::Error::BadDerTime) => {
            Err("malformed (bad DER)".to_owned())
        }
        _ => Ok(()),
    }
}

/// `2024-01-31 00:00:00 UTC` for a time in seconds since 1970 (the civil
/// calendar of Howard Hinnant's `civil_from_days`).
fn utc(time: UnixTime) -> String {
    let secs = time.as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let z = i64::try_from(days).unwrap_or(i64::MAX / 2) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

/// The rustls error for a certificate refused by [`check_dates`].
fn dates_error(why: String) -> rustls::Error {
    rustls::Error::InvalidCertificate(CertificateError::Other(rustls::OtherError(Arc::new(
        DatesError(why),
    ))))
}

/// A certificate's dates or encoding refused ([`check_dates`]).
#[derive(Debug)]
struct DatesError(String);

impl std::fmt::Display for DatesError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DatesError {}

/// The client's verifier: any server certificate that is well-formed and
/// current, or only the pinned one.
#[derive(Debug)]
struct AnyServer {
    algorithms: WebPkiSupportedAlgorithms,
    pin: Option<Fingerprint>,
    seen: Seen,
}

impl ServerCertVerifier for AnyServer {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let fingerprint = Fingerprint::of(end_entity);
        *self.seen.lock().unwrap_or_else(PoisonError::into_inner) = Some(fingerprint);
        if self.pin.is_some_and(|pin| pin != fingerprint) {
            return Err(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            ));
        }
        check_dates(end_entity, now).map_err(dates_error)?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The server's verifier: a client certificate is asked for, not required;
/// any well-formed, current one is accepted (it is known by its
/// fingerprint).
#[derive(Debug)]
struct AnyClient {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for AnyClient {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        check_dates(end_entity, now).map_err(dates_error)?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::tls::identity::{Identity, Role};
    use rustls::{ClientConnection, ServerConnection};

    /// A server and a client identity in a new directory.
    pub(crate) fn identities() -> (tempfile::TempDir, Identity, Identity) {
        let dir = tempfile::tempdir().unwrap();
        let server = Identity::load_or_create_in(dir.path(), Role::Server).unwrap();
        let client = Identity::load_or_create_in(dir.path(), Role::Client).unwrap();
        (dir, server, client)
    }

    /// Moves records between the two connections in memory until neither
    /// has anything to send. Returns the first error.
    pub(crate) fn exchange(
        client: &mut ClientConnection,
        server: &mut ServerConnection,
    ) -> Result<(), rustls::Error> {
        for _ in 0..20 {
            let mut moved = false;
            while client.wants_write() {
                let mut buf = Vec::new();
                client.write_tls(&mut buf).unwrap();
                moved = true;
                let mut rd = &buf[..];
                while !rd.is_empty() {
                    server.read_tls(&mut rd).unwrap();
                    server.process_new_packets()?;
                }
            }
            while server.wants_write() {
                let mut buf = Vec::new();
                server.write_tls(&mut buf).unwrap();
                moved = true;
                let mut rd = &buf[..];
                while !rd.is_empty() {
                    client.read_tls(&mut rd).unwrap();
                    client.process_new_packets()?;
                }
            }
            if !moved {
                return Ok(());
            }
        }
        Ok(())
    }

    fn pair(
        server: &Identity,
        client: &Identity,
        pin: Option<Fingerprint>,
    ) -> (ClientConnection, ServerConnection) {
        let c = ClientConnection::new(client_config(client, pin).unwrap().0, server_name("chatd"))
            .unwrap();
        let s = ServerConnection::new(server_config(server).unwrap()).unwrap();
        (c, s)
    }

    #[test]
    fn each_side_sees_the_others_fingerprint() {
        let (_dir, server, client) = identities();
        let (mut c, mut s) = pair(&server, &client, None);
        exchange(&mut c, &mut s).unwrap();
        assert!(!c.is_handshaking() && !s.is_handshaking());
        assert_eq!(c.protocol_version(), Some(rustls::ProtocolVersion::TLSv1_3));
        let seen = Fingerprint::of(&c.peer_certificates().unwrap()[0]);
        assert_eq!(seen, server.fingerprint);
        let theirs = Fingerprint::of(&s.peer_certificates().unwrap()[0]);
        assert_eq!(theirs, client.fingerprint);
    }

    #[test]
    fn a_pin_refuses_another_server_during_the_handshake() {
        let (_dir, server, client) = identities();
        let (mut c, mut s) = pair(&server, &client, Some(client.fingerprint));
        let err = exchange(&mut c, &mut s).unwrap_err();
        assert_eq!(
            err,
            rustls::Error::InvalidCertificate(CertificateError::ApplicationVerificationFailure)
        );
        let (mut c, mut s) = pair(&server, &client, Some(server.fingerprint));
        exchange(&mut c, &mut s).unwrap();
        assert!(!c.is_handshaking());
    }

    #[test]
    fn a_client_without_a_certificate_is_accepted() {
        let (_dir, server, _client) = identities();
        let provider = provider();
        let config = ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(VERSIONS)
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyServer {
                algorithms: provider.signature_verification_algorithms,
                pin: None,
                seen: Seen::default(),
            }))
            .with_no_client_auth();
        let mut c = ClientConnection::new(Arc::new(config), server_name("chatd")).unwrap();
        let mut s = ServerConnection::new(server_config(&server).unwrap()).unwrap();
        exchange(&mut c, &mut s).unwrap();
        assert!(!s.is_handshaking());
        assert!(s.peer_certificates().is_none());
    }

    #[test]
    fn tls12_is_accepted_for_older_peers() {
        let (_dir, server, client) = identities();
        let provider = provider();
        let config = ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS12])
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyServer {
                algorithms: provider.signature_verification_algorithms,
                pin: None,
                seen: Seen::default(),
            }))
            .with_client_auth_cert(client.chain.clone(), client.key.clone_key())
            .unwrap();
        let mut c = ClientConnection::new(Arc::new(config), server_name("chatd")).unwrap();
        let mut s = ServerConnection::new(server_config(&server).unwrap()).unwrap();
        exchange(&mut c, &mut s).unwrap();
        assert_eq!(s.protocol_version(), Some(rustls::ProtocolVersion::TLSv1_2));
        assert_eq!(
            Fingerprint::of(&s.peer_certificates().unwrap()[0]),
            client.fingerprint
        );
    }

    #[test]
    fn an_expired_certificate_is_refused_with_its_date() {
        let dir = tempfile::tempdir().unwrap();
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["chatd".to_owned()]).unwrap();
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(2021, 2, 3);
        let cert = params.self_signed(&key).unwrap();
        let now = UnixTime::now();
        assert_eq!(
            check_dates(cert.der(), now),
            Err("expired on 2021-02-03 00:00:00 UTC".to_owned())
        );
        params.not_before = rcgen::date_time_ymd(3000, 1, 1);
        params.not_after = rcgen::date_time_ymd(3001, 1, 1);
        let cert = params.self_signed(&key).unwrap();
        assert_eq!(
            check_dates(cert.der(), now),
            Err("not valid before 3000-01-01 00:00:00 UTC".to_owned())
        );
        assert!(
            check_dates(&CertificateDer::from(vec![0x30, 0x01]), now)
                .unwrap_err()
                .starts_with("malformed")
        );
        // Made by rcgen's defaults: current.
        let (_d, server, _c) = identities();
        assert_eq!(check_dates(&server.chain[0], now), Ok(()));
        // One's own expired certificate is refused at start, by name.
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(2021, 2, 3);
        let cert = params.self_signed(&key).unwrap();
        let (cert_file, key_file) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
        std::fs::write(&cert_file, cert.pem()).unwrap();
        std::fs::write(&key_file, key.serialize_pem()).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let expired = Identity::load(&cert_file, &key_file).unwrap();
        let err = server_config(&expired).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "certificate {}: expired on 2021-02-03 00:00:00 UTC",
                cert_file.display()
            )
        );
        assert!(client_config(&expired, None).is_err());
    }

    #[test]
    fn dates_are_shown_in_utc() {
        assert_eq!(
            utc(UnixTime::since_unix_epoch(Duration::ZERO)),
            "1970-01-01 00:00:00 UTC"
        );
        assert_eq!(
            utc(UnixTime::since_unix_epoch(Duration::from_secs(
                951_782_400 + 3661
            ))),
            "2000-02-29 01:01:01 UTC"
        );
    }
}

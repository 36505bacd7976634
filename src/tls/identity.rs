//! Identities: a certificate and its private key, made once and kept, as an
//! SSH host key is.
//!
//! On its first `--tls` run, `chatd` makes an ECDSA P-256 key and a
//! self-signed certificate for it (with rcgen) and keeps them under
//! [`config_dir`] as `chatd-cert.pem` and `chatd-key.pem`; `chat --tls`
//! does the same as `chat-cert.pem` and `chat-key.pem`, its identity in a
//! room. The key file is created with mode 0600 and a key file that others
//! may read is refused, as OpenSSH refuses a private key with "permissions
//! are too open". `--cert FILE --key FILE` gives one's own (PEM, read with
//! rustls-pki-types' `PemObject`).
//!
//! The server's certificate names the DNS name [`SERVER_NAME`] (`chatd`):
//! ncat 7.93's `--ssl-verify` and socat's `commonname=` check a DNS name
//! against the certificate, never an IP address, so a client that trusts
//! the certificate by file (`--ssl-trustfile`, `cafile=`) is told to expect
//! that name. The certificate is valid from 1975 to 4096 (rcgen's default):
//! the identity is its fingerprint, which does not expire, as an SSH key.

use std::ffi::OsString;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::Error;
use crate::tls::Fingerprint;

/// The DNS name in the server's certificate (subject alternative name and
/// common name): what `ncat --ssl-servername` and socat's `commonname=`
/// are given.
pub const SERVER_NAME: &str = "chatd";

/// The name in the certificate `chat --tls` makes for itself.
pub const CLIENT_NAME: &str = "chat";

/// Whose identity: the file names under [`config_dir`] and the name in the
/// certificate differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `chatd`: `chatd-cert.pem`, `chatd-key.pem`, named [`SERVER_NAME`].
    Server,
    /// `chat`: `chat-cert.pem`, `chat-key.pem`, named [`CLIENT_NAME`].
    Client,
}

impl Role {
    /// The name in the certificate and the prefix of the file names.
    pub fn name(self) -> &'static str {
        match self {
            Role::Server => SERVER_NAME,
            Role::Client => CLIENT_NAME,
        }
    }

    /// The certificate and key files of this role under `dir`.
    pub fn files(self, dir: &Path) -> (PathBuf, PathBuf) {
        let name = self.name();
        (
            dir.join(format!("{name}-cert.pem")),
            dir.join(format!("{name}-key.pem")),
        )
    }
}

/// The directory of the files `--tls` keeps: `$XDG_CONFIG_HOME/chat`, or
/// `$HOME/.config/chat` when `XDG_CONFIG_HOME` is unset, empty or not an
/// absolute path (the XDG Base Directory Specification).
///
/// Errors: [`Error::Msg`] when neither variable gives a directory.
pub fn config_dir() -> Result<PathBuf, Error> {
    config_dir_of(
        std::env::var_os("XDG_CONFIG_HOME"),
        std::env::var_os("HOME"),
    )
    .ok_or_else(|| {
        Error::Msg("no directory for the TLS files: set HOME or XDG_CONFIG_HOME".to_owned())
    })
}

/// [`config_dir`] for the values `xdg` of `XDG_CONFIG_HOME` and `home` of
/// `HOME`; `None` when neither gives an absolute path.
fn config_dir_of(xdg: Option<OsString>, home: Option<OsString>) -> Option<PathBuf> {
    let absolute = |value: Option<OsString>| value.map(PathBuf::from).filter(|p| p.is_absolute());
    absolute(xdg)
        .map(|xdg| xdg.join("chat"))
        .or_else(|| absolute(home).map(|home| home.join(".config").join("chat")))
}

/// Creates `dir` and its parents if missing; a directory made here has
/// mode 0700 (only its owner may list the identity and known hosts).
///
/// Errors: [`Error::Sys`] naming the directory.
pub fn make_dir(dir: &Path) -> Result<(), Error> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| Error::io(format!("create {}", dir.display()), e))
}

/// A certificate chain (the end-entity certificate first) and its private
/// key, ready for rustls.
#[derive(Debug)]
pub struct Identity {
    /// The certificates, DER-encoded, the end-entity one first.
    pub chain: Vec<CertificateDer<'static>>,
    /// The private key of the first certificate, DER-encoded.
    pub key: PrivateKeyDer<'static>,
    /// The SHA-256 of the first certificate's DER: who we are.
    pub fingerprint: Fingerprint,
    /// The certificate file it was read from or written to.
    pub cert_file: PathBuf,
    /// The key file it was read from or written to.
    pub key_file: PathBuf,
}

impl Identity {
    /// The identity of `role` kept under [`config_dir`], made on first
    /// use; see [`Identity::load_or_create_in`].
    pub fn load_or_create(role: Role) -> Result<Identity, Error> {
        Identity::load_or_create_in(&config_dir()?, role)
    }

    /// The identity of `role` kept in `dir`: read if both of its files
    /// exist, made and written (the directory too, mode 0700; the key file
    /// mode 0600) if neither does. Returns the identity and whether it was
    /// made now.
    ///
    /// Errors: one line naming the file at fault: only one of the two
    /// files exists (the other was removed: making a new identity would
    /// change the fingerprint every peer knows, so the user decides), a
    /// file cannot be read or written, a key file others may read, a file
    /// that holds no certificate or key.
    pub fn load_or_create_in(dir: &Path, role: Role) -> Result<Identity, Error> {
        let (cert_file, key_file) = role.files(dir);
        match (cert_file.exists(), key_file.exists()) {
            (true, true) => Identity::load(&cert_file, &key_file),
            (false, false) => Identity::create(dir, role),
            (has_cert, _) => {
                let (here, gone) = if has_cert {
                    (&cert_file, &key_file)
                } else {
                    (&key_file, &cert_file)
                };
                Err(Error::Msg(format!(
                    "{} is missing but {} exists: restore it, or remove {} to make a new identity \
                     (its fingerprint will change)",
                    gone.display(),
                    here.display(),
                    here.display()
                )))
            }
        }
    }

    /// Makes a new ECDSA P-256 key and a self-signed certificate for
    /// `role` and writes them into `dir` (see [`Identity::load_or_create_in`]).
    fn create(dir: &Path, role: Role) -> Result<Identity, Error> {
        let (cert_file, key_file) = role.files(dir);
        let (cert_pem, key_pem) = generate(role)?;
        make_dir(dir)?;
        // The key first, then the certificate: a run stopped in between
        // leaves a key without a certificate, which the next run refuses
        // with a clear line rather than silently making another identity.
        write_new(&key_file, key_pem.as_bytes(), 0o600)?;
        write_new(&cert_file, cert_pem.as_bytes(), 0o644)?;
        Identity::load(&cert_file, &key_file)
    }

    /// Reads a certificate chain and its private key from PEM files
    /// (`--cert FILE --key FILE`): every `CERTIFICATE` of `cert_file`, the
    /// first one the end-entity certificate, and the first private key
    /// (PKCS#8, SEC1 or PKCS#1) of `key_file`.
    ///
    /// Errors: one line naming the file: it cannot be read, it holds no
    /// certificate or no key, or the key file may be read by its group or
    /// by others (mode `& 0o077`, as OpenSSH refuses such a private key).
    pub fn load(cert_file: &Path, key_file: &Path) -> Result<Identity, Error> {
        check_key_mode(key_file)?;
        let cert_text = fs::read(cert_file)
            .map_err(|e| Error::io(format!("read certificate {}", cert_file.display()), e))?;
        let chain = CertificateDer::pem_slice_iter(&cert_text)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| {
                Error::Msg(format!(
                    "certificate {}: not valid PEM ({e})",
                    cert_file.display()
                ))
            })?;
        let Some(first) = chain.first() else {
            return Err(Error::Msg(format!(
                "certificate {}: no CERTIFICATE in it (a PEM certificate is expected)",
                cert_file.display()
            )));
        };
        let fingerprint = Fingerprint::of(first);
        let key_text = fs::read(key_file)
            .map_err(|e| Error::io(format!("read key {}", key_file.display()), e))?;
        let key = PrivateKeyDer::from_pem_slice(&key_text).map_err(|e| {
            use rustls_pki_types::pem::Error as Pem;
            let why = match e {
                Pem::NoItemsFound => "no private key in it (a PEM private key is expected)".into(),
                other => format!("not a valid PEM private key ({other})"),
            };
            Error::Msg(format!("key {}: {why}", key_file.display()))
        })?;
        Ok(Identity {
            chain,
            key,
            fingerprint,
            cert_file: cert_file.to_owned(),
            key_file: key_file.to_owned(),
        })
    }

    /// The certificate chain in PEM (what `--print-cert` prints): one
    /// `-----BEGIN CERTIFICATE-----` block for each, lines ending in `\n`.
    /// It is what `ncat --ssl-trustfile`, socat's `cafile=` and `openssl
    /// s_client -CAfile` read.
    pub fn pem(&self) -> String {
        let config = pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF);
        self.chain
            .iter()
            .map(|der| pem::encode_config(&pem::Pem::new("CERTIFICATE", der.to_vec()), config))
            .collect()
    }
}

/// A new ECDSA P-256 key and its self-signed certificate for `role`, as
/// PEM text: (certificate, key). The certificate's subject alternative
/// name and common name are the role's name.
fn generate(role: Role) -> Result<(String, String), Error> {
    let failed = |e: rcgen::Error| Error::Msg(format!("make a TLS certificate: {e}"));
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(failed)?;
    let mut params = rcgen::CertificateParams::new(vec![role.name().to_owned()]).map_err(failed)?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, role.name());
    let cert = params.self_signed(&key).map_err(failed)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// Writes `bytes` to a new file `path` with `mode` (never over an existing
/// file: two programs making an identity at once cannot mix their halves).
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), Error> {
    let what = || format!("write {}", path.display());
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| Error::io(what(), e))?;
    file.write_all(bytes).map_err(|e| Error::io(what(), e))?;
    file.sync_all().map_err(|e| Error::io(what(), e))
}

/// Refuses a key file that its group or others may read or write.
///
/// Errors: one line naming the file, its mode and the fix; a file that
/// cannot be examined.
pub fn check_key_mode(key_file: &Path) -> Result<(), Error> {
    let meta = fs::metadata(key_file)
        .map_err(|e| Error::io(format!("read key {}", key_file.display()), e))?;
    let mode = meta.mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(Error::Msg(format!(
            "key {} may be read by others (mode {mode:04o}): chmod 600 it",
            key_file.display()
        )));
    }
    // A key file is a regular file; say so rather than fail later.
    if !meta.file_type().is_file() {
        return Err(Error::Msg(format!(
            "key {}: not a regular file",
            key_file.display()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn an_identity_is_made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("chat");
        let made = Identity::load_or_create_in(&conf, Role::Server).unwrap();
        let (cert, key) = Role::Server.files(&conf);
        assert_eq!(made.cert_file, cert);
        assert_eq!(fs::metadata(&key).unwrap().mode() & 0o777, 0o600);
        assert_eq!(fs::metadata(&conf).unwrap().mode() & 0o777, 0o700);
        let again = Identity::load_or_create_in(&conf, Role::Server).unwrap();
        assert_eq!(again.fingerprint, made.fingerprint);
        assert_eq!(again.chain, made.chain);
        // The client's identity is another one, in its own files.
        let client = Identity::load_or_create_in(&conf, Role::Client).unwrap();
        assert_ne!(client.fingerprint, made.fingerprint);
        assert!(conf.join("chat-key.pem").exists());
    }

    #[test]
    fn the_fingerprint_is_that_of_the_der_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let id = Identity::load_or_create_in(dir.path(), Role::Server).unwrap();
        assert_eq!(id.fingerprint, Fingerprint::of(&id.chain[0]));
        // The PEM printed is the file written, and reads back the same.
        let pem = id.pem();
        assert_eq!(pem, fs::read_to_string(&id.cert_file).unwrap());
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----\n"));
        assert_eq!(
            CertificateDer::from_pem_slice(pem.as_bytes()).unwrap(),
            id.chain[0]
        );
    }

    #[test]
    fn the_certificate_names_chatd_and_holds_a_p256_key() {
        let dir = tempfile::tempdir().unwrap();
        let id = Identity::load_or_create_in(dir.path(), Role::Server).unwrap();
        let der: &[u8] = &id.chain[0];
        let has = |needle: &[u8]| der.windows(needle.len()).any(|w| w == needle);
        // The SAN dNSName [2] "chatd", the OIDs of id-ecPublicKey and
        // prime256v1, and ecdsa-with-SHA256 (RFC 5480, RFC 5758).
        assert!(has(b"\x82\x05chatd"));
        assert!(has(&[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01]));
        assert!(has(&[
            0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07
        ]));
        assert!(has(&[
            0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02
        ]));
    }

    #[test]
    fn a_key_file_others_may_read_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let id = Identity::load_or_create_in(dir.path(), Role::Server).unwrap();
        fs::set_permissions(&id.key_file, fs::Permissions::from_mode(0o644)).unwrap();
        let err = Identity::load(&id.cert_file, &id.key_file)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            format!(
                "key {} may be read by others (mode 0644): chmod 600 it",
                id.key_file.display()
            )
        );
        assert!(!err.contains('\n'));
        fs::set_permissions(&id.key_file, fs::Permissions::from_mode(0o640)).unwrap();
        assert!(Identity::load_or_create_in(dir.path(), Role::Server).is_err());
        fs::set_permissions(&id.key_file, fs::Permissions::from_mode(0o400)).unwrap();
        assert!(Identity::load_or_create_in(dir.path(), Role::Server).is_ok());
    }

    #[test]
    fn half_an_identity_is_not_silently_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let id = Identity::load_or_create_in(dir.path(), Role::Server).unwrap();
        fs::remove_file(&id.cert_file).unwrap();
        let err = Identity::load_or_create_in(dir.path(), Role::Server)
            .unwrap_err()
            .to_string();
        assert!(err.contains(&id.cert_file.display().to_string()), "{err}");
        assert!(err.contains("fingerprint will change"), "{err}");
        assert!(id.key_file.exists());
    }

    #[test]
    fn bad_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let id = Identity::load_or_create_in(dir.path(), Role::Server).unwrap();
        let junk = dir.path().join("junk.pem");
        write_new(&junk, b"hello\n", 0o600).unwrap();
        let err = Identity::load(&junk, &id.key_file).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("certificate {}: no CERTIFICATE", junk.display())),
            "{err}"
        );
        let err = Identity::load(&id.cert_file, &junk)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(&format!("key {}: no private key", junk.display())),
            "{err}"
        );
        let gone = dir.path().join("gone.pem");
        let err = Identity::load(&id.cert_file, &gone)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("gone.pem") && err.contains("No such file"),
            "{err}"
        );
        // The certificate given as the key: no private key in it.
        let copy = dir.path().join("copy.pem");
        write_new(&copy, &fs::read(&id.cert_file).unwrap(), 0o600).unwrap();
        assert!(Identity::load(&id.cert_file, &copy).is_err());
    }

    #[test]
    fn the_directory_follows_xdg_config_home() {
        let dir = |xdg: Option<&str>, home: Option<&str>| {
            config_dir_of(xdg.map(OsString::from), home.map(OsString::from))
        };
        assert_eq!(dir(Some("/x"), Some("/h")), Some(PathBuf::from("/x/chat")));
        assert_eq!(
            dir(None, Some("/h")),
            Some(PathBuf::from("/h/.config/chat"))
        );
        // Empty or relative: ignored, as the XDG specification says.
        assert_eq!(
            dir(Some(""), Some("/h")),
            Some(PathBuf::from("/h/.config/chat"))
        );
        assert_eq!(
            dir(Some("rel"), Some("/h")),
            Some(PathBuf::from("/h/.config/chat"))
        );
        assert_eq!(dir(Some("rel"), None), None);
        assert_eq!(dir(None, Some("")), None);
    }
}

//! Certificate fingerprints: the SHA-256 of a certificate's DER encoding,
//! the identity of a peer with `--tls` (as Syncthing's device IDs and
//! OpenSSH's `SHA256:` host-key fingerprints).
//!
//! Shown as `SHA256:` followed by the 32 bytes in upper-case hexadecimal
//! separated by colons (`SHA256:0C:E6:…:F1`): the same digits that
//! `openssl x509 -noout -fingerprint -sha256 -in CERT` prints after
//! `sha256 Fingerprint=`, so that anyone can check one with standard tools.

use std::fmt;
use std::str::FromStr;

/// The length of a fingerprint, in bytes (SHA-256, FIPS 180-4).
pub const LEN: usize = 32;

/// The SHA-256 digest of a certificate's DER encoding.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint(pub [u8; LEN]);

impl Fingerprint {
    /// The fingerprint of the DER-encoded certificate `der`.
    pub fn of(der: &[u8]) -> Fingerprint {
        let digest = ring::digest::digest(&ring::digest::SHA256, der);
        let mut bytes = [0; LEN];
        bytes.copy_from_slice(digest.as_ref());
        Fingerprint(bytes)
    }

    /// Parses a fingerprint as `--pin` takes it, ignoring ASCII case and
    /// white space around it:
    /// - `SHA256:0C:E6:…:F1` (as shown by `chatd` and `chat`);
    /// - `0C:E6:…:F1` or `0ce6…f1`, 64 hexadecimal digits with or without
    ///   colons between the pairs;
    /// - `sha256 Fingerprint=0C:E6:…:F1`, as `openssl x509 -fingerprint
    ///   -sha256` prints it.
    ///
    /// Errors: a sentence saying what is wrong (too short, not hexadecimal,
    /// another digest).
    pub fn parse(text: &str) -> Result<Fingerprint, String> {
        let text = text.trim();
        let lower = text.to_ascii_lowercase();
        let digits = ["sha256 fingerprint=", "sha256:", "sha2-256:"]
            .iter()
            .find_map(|prefix| lower.strip_prefix(prefix))
            .unwrap_or(&lower);
        if digits.starts_with("sha1") || digits.starts_with("md5") {
            return Err("not a SHA-256 fingerprint".to_owned());
        }
        let colons = digits.contains(':');
        let hex: String = if colons {
            let pairs: Vec<&str> = digits.split(':').collect();
            if pairs.iter().any(|p| p.len() != 2) {
                return Err("give pairs of hexadecimal digits between the colons".to_owned());
            }
            pairs.concat()
        } else {
            digits.to_owned()
        };
        if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err("not hexadecimal digits (a fingerprint is SHA256:AB:CD:…)".to_owned());
        }
        if hex.len() != 2 * LEN {
            return Err(format!(
                "{} hexadecimal digits, a SHA-256 fingerprint has {}",
                hex.len(),
                2 * LEN
            ));
        }
        let mut bytes = [0; LEN];
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16)
                .map_err(|_| "not hexadecimal digits".to_owned())?;
        }
        Ok(Fingerprint(bytes))
    }
}

impl FromStr for Fingerprint {
    type Err = String;

    fn from_str(text: &str) -> Result<Fingerprint, String> {
        Fingerprint::parse(text)
    }
}

impl fmt::Display for Fingerprint {
    /// `SHA256:0C:E6:…:F1`, the 32 bytes in upper-case hexadecimal.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SHA256")?;
        for byte in self.0 {
            write!(f, ":{byte:02X}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_is_sha256_of_the_der() {
        // FIPS 180-2 appendix B.1: SHA-256("abc").
        let fp = Fingerprint::of(b"abc");
        assert_eq!(
            fp.to_string(),
            "SHA256:BA:78:16:BF:8F:01:CF:EA:41:41:40:DE:5D:AE:22:23:B0:03:61:A3:96:17:7A:9C:B4:10:FF:61:F2:00:15:AD"
        );
    }

    #[test]
    fn pins_are_read_in_every_usual_form() {
        let fp = Fingerprint::of(b"abc");
        let shown = fp.to_string();
        let hex: String = shown[7..].split(':').collect();
        for text in [
            shown.clone(),
            shown.to_ascii_lowercase(),
            shown[7..].to_owned(),
            hex.clone(),
            hex.to_ascii_lowercase(),
            format!("  {shown}\n"),
            format!("sha256 Fingerprint={}", &shown[7..]),
        ] {
            assert_eq!(Fingerprint::parse(&text), Ok(fp), "{text:?}");
        }
    }

    #[test]
    fn malformed_pins_say_why() {
        assert!(
            Fingerprint::parse("")
                .unwrap_err()
                .contains("0 hexadecimal digits")
        );
        assert!(
            Fingerprint::parse("SHA256:AB:CD")
                .unwrap_err()
                .contains("4 hexadecimal")
        );
        assert!(
            Fingerprint::parse(&"g".repeat(64))
                .unwrap_err()
                .contains("not hexadecimal")
        );
        assert!(
            Fingerprint::parse("SHA256:ABC:D")
                .unwrap_err()
                .contains("pairs")
        );
        assert!(
            Fingerprint::parse("SHA1:AB")
                .unwrap_err()
                .contains("SHA-256")
        );
        // A base64 OpenSSH fingerprint is not one of ours.
        assert!(Fingerprint::parse("SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s").is_err());
        assert!(Fingerprint::parse(&"é".repeat(32)).is_err());
    }
}

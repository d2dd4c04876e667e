//! IMS callback signature authentication.
//!
//! With `AuthSwitch` on, IMS sends `X-ICE-TIMESTAMP` (unix seconds) and
//! `X-ICE-SIGNATURE`, the lowercase hex MD5 of
//! `"{CallbackURL}|{timestamp}|{AuthKey}"`. The signature does not cover
//! the body, so the timestamp window bounds replay, and the fingerprint
//! dedup makes a replayed event harmless. Several keys may be configured
//! so a key can be rotated: old and new are both accepted for a while.
//! Comparison is constant-time ([`subtle`]), over every key. Keys are
//! [`SecretString`]s: never shown by `Debug`, wiped from memory on drop.

use md5::{Digest, Md5};
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;

/// The header carrying the signing time.
pub const TIMESTAMP_HEADER: &str = "x-ice-timestamp";
/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "x-ice-signature";

/// Whether `given` is `secret`, compared in constant time.
pub fn secret_matches(secret: &SecretString, given: &[u8]) -> bool {
    secret.expose_secret().as_bytes().ct_eq(given).into()
}

/// Why a callback failed authentication. The messages say what to fix
/// without revealing anything secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `X-ICE-TIMESTAMP` header.
    #[error("missing X-ICE-TIMESTAMP header (is AuthSwitch on in IMS?)")]
    MissingTimestamp,
    /// No `X-ICE-SIGNATURE` header.
    #[error("missing X-ICE-SIGNATURE header (is AuthSwitch on in IMS?)")]
    MissingSignature,
    /// The timestamp is not unix seconds in canonical decimal form.
    #[error(
        "X-ICE-TIMESTAMP is not a unix time in seconds written as plain decimal digits \
         (no sign, spaces or leading zero)"
    )]
    BadTimestamp,
    /// The timestamp is outside the accepted window.
    #[error("X-ICE-TIMESTAMP is {skew} s from now, outside the {window} s window")]
    OutsideWindow {
        /// Signed distance from now, in seconds (negative: in the past).
        skew: i64,
        /// The window, in seconds.
        window: u64,
    },
    /// No configured key produces this signature.
    #[error("X-ICE-SIGNATURE does not match (check IMS_CALLBACK_URL and the AuthKey)")]
    BadSignature,
}

/// The signature check for callbacks.
#[derive(Debug, Clone)]
pub struct CallbackAuth {
    url: String,
    keys: Vec<SecretString>,
    window: u64,
}

impl CallbackAuth {
    /// `url` is the CallbackURL exactly as configured in IMS; `keys` the
    /// accepted AuthKeys; `window` the accepted clock skew in seconds, in
    /// both directions.
    pub fn new(url: impl Into<String>, keys: Vec<SecretString>, window: u64) -> Self {
        CallbackAuth {
            url: url.into(),
            keys,
            window,
        }
    }

    /// Checks the two header values against `now` (unix seconds).
    pub fn verify(
        &self,
        timestamp: Option<&[u8]>,
        signature: Option<&[u8]>,
        now: i64,
    ) -> Result<(), AuthError> {
        let timestamp = timestamp.ok_or(AuthError::MissingTimestamp)?;
        let signature = signature.ok_or(AuthError::MissingSignature)?;
        // One spelling per second: with `0…` or ` …` accepted, a captured
        // signature would have twins that dedup by header could not see.
        let ts_text = std::str::from_utf8(timestamp)
            .ok()
            .filter(|t| is_canonical_decimal(t))
            .ok_or(AuthError::BadTimestamp)?;
        let ts: i64 = ts_text.parse().map_err(|_| AuthError::BadTimestamp)?;
        let skew = ts.saturating_sub(now);
        if skew.unsigned_abs() > self.window {
            return Err(AuthError::OutsideWindow {
                skew,
                window: self.window,
            });
        }
        let given = signature.trim_ascii().to_ascii_lowercase();
        // Every key is tried, so timing does not tell which one matched.
        let mut ok = subtle::Choice::from(0);
        for key in &self.keys {
            let expected = sign(&self.url, ts_text, key.expose_secret());
            ok |= expected.as_bytes().ct_eq(&given);
        }
        if bool::from(ok) {
            Ok(())
        } else {
            Err(AuthError::BadSignature)
        }
    }
}

/// Decimal digits without sign, spaces or a leading zero (`0` itself aside).
fn is_canonical_decimal(text: &str) -> bool {
    !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text.len() == 1 || !text.starts_with('0'))
}

/// The signature IMS sends: lowercase hex MD5 of `"{url}|{timestamp}|{key}"`.
pub fn sign(url: &str, timestamp: &str, key: &str) -> String {
    let mut md5 = Md5::new();
    md5.update(url.as_bytes());
    md5.update(b"|");
    md5.update(timestamp.as_bytes());
    md5.update(b"|");
    md5.update(key.as_bytes());
    hex::encode(md5.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "https://example.com/ims/callback";

    fn auth() -> CallbackAuth {
        CallbackAuth::new(
            URL,
            vec![SecretString::from("old-key"), SecretString::from("new-key")],
            300,
        )
    }

    #[test]
    fn sign_is_md5_of_url_timestamp_key() {
        // md5("a|1|k"), computed independently with `printf 'a|1|k' | md5sum`.
        assert_eq!(sign("a", "1", "k"), "cf6582946bea601767a4fa861527799d");
        assert_eq!(sign("a", "1", "k").len(), 32);
    }

    #[test]
    fn accepts_every_configured_key_and_uppercase_hex() {
        let now = 1_700_000_000;
        for key in ["old-key", "new-key"] {
            let sig = sign(URL, "1700000000", key);
            assert_eq!(
                auth().verify(Some(b"1700000000"), Some(sig.as_bytes()), now),
                Ok(())
            );
            let upper = sig.to_ascii_uppercase();
            assert_eq!(
                auth().verify(Some(b"1700000000"), Some(upper.as_bytes()), now),
                Ok(())
            );
        }
    }

    #[test]
    fn rejects_missing_bad_stale_future_and_wrong() {
        let now = 1_700_000_000;
        let sig = sign(URL, "1700000000", "old-key");
        let a = auth();
        assert_eq!(
            a.verify(None, Some(sig.as_bytes()), now),
            Err(AuthError::MissingTimestamp)
        );
        assert_eq!(
            a.verify(Some(b"1700000000"), None, now),
            Err(AuthError::MissingSignature)
        );
        assert_eq!(
            a.verify(Some(b"17e8"), Some(sig.as_bytes()), now),
            Err(AuthError::BadTimestamp)
        );
        for bad in [
            &b"-5"[..],
            b"+1700000000",
            b"01700000000",
            b" 1700000000",
            b"1700000000 ",
            b"1700 000000",
            b"",
        ] {
            // Signed over the very text sent: the form alone is refused.
            let text = std::str::from_utf8(bad).unwrap();
            let sig = sign(URL, text, "old-key");
            assert_eq!(
                a.verify(Some(bad), Some(sig.as_bytes()), now),
                Err(AuthError::BadTimestamp),
                "{text:?}"
            );
        }
        let stale = sign(URL, "1699999699", "old-key");
        assert!(matches!(
            a.verify(Some(b"1699999699"), Some(stale.as_bytes()), now),
            Err(AuthError::OutsideWindow { skew: -301, .. })
        ));
        let future = sign(URL, "1700000301", "old-key");
        assert!(matches!(
            a.verify(Some(b"1700000301"), Some(future.as_bytes()), now),
            Err(AuthError::OutsideWindow { skew: 301, .. })
        ));
        let edge = sign(URL, "1699999700", "old-key");
        assert_eq!(
            a.verify(Some(b"1699999700"), Some(edge.as_bytes()), now),
            Ok(())
        );
        let wrong = sign(URL, "1700000000", "other-key");
        assert_eq!(
            a.verify(Some(b"1700000000"), Some(wrong.as_bytes()), now),
            Err(AuthError::BadSignature)
        );
        let other_url = sign("https://elsewhere/", "1700000000", "old-key");
        assert_eq!(
            a.verify(Some(b"1700000000"), Some(other_url.as_bytes()), now),
            Err(AuthError::BadSignature)
        );
    }

    #[test]
    fn secrets_do_not_print() {
        let token = SecretString::from("hunter2");
        assert!(!format!("{token:?}").contains("hunter2"));
        assert!(secret_matches(&token, b"hunter2"));
        assert!(!secret_matches(&token, b"hunter"));
        assert!(!format!("{:?}", auth()).contains("old-key"));
    }
}

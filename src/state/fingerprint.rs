//! Event fingerprints: a stable identity from an event's canonical content.
//!
//! The canonical form is the parsed JSON re-serialised compactly with
//! object keys sorted (serde_json's default map is ordered), so IMS retries
//! and the same event delivered over HTTP and MNS — which may differ in
//! whitespace or key order — get the same fingerprint. SHA-256, truncated
//! to 128 bits (32 hex digits): collision-free in practice, short in keys.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

/// A 32-hex-digit event fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Fingerprint(String);

impl Fingerprint {
    /// The fingerprint of a parsed JSON value (its canonical form).
    pub fn of_value(value: &Value) -> Self {
        // The canonical bytes are built in one buffer and hashed at once:
        // the writer emits a token at a time, and feeding those to the
        // hasher one by one cost more than the buffer.
        crate::jsonfmt::with_scratch(|buf| {
            serde_json::to_writer(&mut *buf, value).expect("writing to a Vec cannot fail");
            Fingerprint::from_digest(sha256(buf))
        })
    }

    /// The fingerprint of raw bytes (for inputs that are not valid JSON).
    pub fn of_bytes(bytes: &[u8]) -> Self {
        Fingerprint::from_digest(sha256(bytes))
    }

    fn from_digest(digest: ring::digest::Digest) -> Self {
        Fingerprint(hex::encode(&digest.as_ref()[..16]))
    }

    /// The hex digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Parses 32 lowercase hex digits.
    pub fn parse(s: &str) -> Option<Self> {
        (s.len() == 32 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
            .then(|| Fingerprint(s.to_owned()))
    }
}

/// SHA-256 by `ring`, which picks its fastest code for this CPU at run time.
fn sha256(bytes: &[u8]) -> ring::digest::Digest {
    ring::digest::digest(&ring::digest::SHA256, bytes)
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_order_and_whitespace_do_not_change_the_fingerprint() {
        let a: Value = serde_json::from_str(r#"{"b":1,"a":{"y":2,"x":[1,2]}}"#).unwrap();
        let b: Value =
            serde_json::from_str("{ \"a\": {\"x\": [1, 2], \"y\": 2},\n \"b\": 1 }").unwrap();
        assert_eq!(Fingerprint::of_value(&a), Fingerprint::of_value(&b));
        let c: Value = serde_json::from_str(r#"{"b":2,"a":{"y":2,"x":[1,2]}}"#).unwrap();
        assert_ne!(Fingerprint::of_value(&a), Fingerprint::of_value(&c));
    }

    #[test]
    fn value_fingerprint_is_sha256_of_the_sorted_compact_form() {
        // Python: sha256(b'{"a":{"x":[1,2],"y":2},"b":1}').hexdigest()[:32]
        let v: Value = serde_json::from_str(r#"{ "b": 1, "a": {"y": 2, "x": [1, 2]} }"#).unwrap();
        assert_eq!(
            Fingerprint::of_value(&v).as_str(),
            "0b9a0733167480566e3336a7cb345ad1"
        );
        // The per-thread buffer is reused: a second, shorter value is not
        // hashed with the first one's leftovers.
        let short: Value = serde_json::from_str("1").unwrap();
        assert_eq!(Fingerprint::of_value(&short), Fingerprint::of_bytes(b"1"));
    }

    #[test]
    fn fingerprints_are_32_hex_digits() {
        let fp = Fingerprint::of_bytes(b"abc");
        // SHA-256("abc") begins ba7816bf8f01cfea414140de5dae2223.
        assert_eq!(fp.as_str(), "ba7816bf8f01cfea414140de5dae2223");
        assert_eq!(Fingerprint::parse(fp.as_str()), Some(fp));
        // A million 'a's (FIPS 180-2): many blocks, the same digest.
        assert_eq!(
            Fingerprint::of_bytes(&vec![b'a'; 1_000_000]).as_str(),
            "cdc76e5c9914fb9281a1c7e284d73e67"
        );
        assert_eq!(Fingerprint::parse("xyz"), None);
    }
}

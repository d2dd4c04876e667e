//! The deployment descriptors and scripts agree with the code's contract.
//!
//! `template.yaml` (ROS, FC 3.0) and `s.yaml` (Serverless Devs, `fc3`) use
//! only names from the platform references and describe the same function
//! the code expects (see `descriptors`, with the allow-lists in
//! `allowlist`). The sample trigger envelopes in `events/triggers/` must
//! carry valid IMS events, and `scripts/check-glibc.sh` must judge glibc
//! versions as documented.

mod allowlist;
mod descriptors;

use ims_callback::event::Event;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

// ---------------------------------------------------------- trigger events

fn trigger_samples() -> Vec<PathBuf> {
    let dir = root().join("events/triggers");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no samples in {}", dir.display());
    files
}

/// Standard base64 (with padding), enough to read the samples.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let bytes = text.trim().as_bytes();
    if bytes.is_empty() || !bytes.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    for chunk in bytes.chunks(4) {
        let pad = chunk.iter().rev().take_while(|&&c| c == b'=').count();
        let mut n = 0u32;
        for &c in &chunk[..4 - pad] {
            n = n << 6 | u32::from(value(c)?);
        }
        n <<= 6 * pad as u32;
        out.extend_from_slice(&n.to_be_bytes()[1..4 - pad]);
    }
    Some(out)
}

/// The IMS event a message body carries: JSON text, or base64 of it when
/// the trigger's "base64 decode" option is off.
fn decode_message_body(body: &str) -> Vec<u8> {
    if serde_json::from_str::<Value>(body).is_ok() {
        return body.as_bytes().to_vec();
    }
    base64_decode(body).unwrap_or_else(|| panic!("messageBody is neither JSON nor base64"))
}

/// The envelopes of a sample: one object, or an array of them (batch mode).
fn envelopes(path: &Path) -> Vec<Value> {
    let bytes = std::fs::read(path).unwrap();
    let value: Value =
        serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    match value {
        Value::Array(items) => {
            assert!(!items.is_empty(), "{}: empty batch", path.display());
            items
        }
        one => vec![one],
    }
}

#[test]
fn trigger_samples_carry_valid_ims_events() {
    let mut base64_seen = false;
    let mut batch_seen = false;
    for path in trigger_samples() {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let envs = envelopes(&path);
        batch_seen |= envs.len() > 1;
        for env in &envs {
            for field in ["id", "source", "specversion", "type", "subject", "time"] {
                assert!(env[field].is_string(), "{name}: CloudEvents field {field}");
            }
            assert_eq!(env["specversion"], "1.0", "{name}");
            assert_eq!(env["type"], "mns:Queue:SendMessage", "{name}");
            for field in ["requestId", "messageId", "messageBody"] {
                assert!(env["data"][field].is_string(), "{name}: data.{field}");
            }
            let body = env["data"]["messageBody"].as_str().unwrap();
            let decoded = decode_message_body(body);
            base64_seen |= decoded != body.as_bytes();

            Event::from_slice(&decoded)
                .unwrap_or_else(|r| panic!("{name}: messageBody is not a valid IMS event: {r}"));
            // It is one of the corpus samples, unchanged.
            let carried: Value = serde_json::from_slice(&decoded).unwrap();
            let event_type = carried["EventType"].as_str().unwrap();
            let original = root().join(format!("events/{event_type}.json"));
            let original: Value =
                serde_json::from_slice(&std::fs::read(&original).unwrap()).unwrap();
            assert_eq!(
                carried, original,
                "{name}: differs from events/{event_type}.json"
            );
        }
    }
    assert!(base64_seen, "no sample has a base64 messageBody");
    assert!(batch_seen, "no sample is a batch");
}

#[test]
fn trigger_samples_are_unwrapped_by_the_invoke_path() {
    for path in trigger_samples() {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let bytes = std::fs::read(&path).unwrap();
        let messages = ims_callback::ingest::trigger::messages(&bytes)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let envs = envelopes(&path);
        assert_eq!(messages.len(), envs.len(), "{name}: message count");
        for (message, env) in messages.iter().zip(&envs) {
            assert_eq!(
                message.message_id.as_deref(),
                env["data"]["messageId"].as_str(),
                "{name}: the envelope was not recognised as an MNS message"
            );
            Event::from_slice(&message.body)
                .unwrap_or_else(|r| panic!("{name}: unwrapped body is not valid: {r}"));
        }
    }
}

#[test]
fn base64_decoder_reads_padding() {
    assert_eq!(base64_decode("TWFu").unwrap(), b"Man");
    assert_eq!(base64_decode("TWE=").unwrap(), b"Ma");
    assert_eq!(base64_decode("TQ==").unwrap(), b"M");
    assert!(base64_decode("TQ=").is_none());
    assert!(base64_decode("T!==").is_none());
}

// ------------------------------------------------------------------ scripts

fn check_glibc(binary: &Path, max: &str) -> i32 {
    let out = Command::new("bash")
        .arg(root().join("scripts/check-glibc.sh"))
        .arg(binary)
        .arg(max)
        .output()
        .expect("bash");
    out.status.code().expect("check-glibc.sh was killed")
}

#[test]
fn check_glibc_compares_symbol_versions() {
    // This test binary links the build machine's glibc: it needs at least
    // GLIBC_2.2.5 (x86_64's base version) and no version from the future.
    let me = std::env::current_exe().unwrap();
    assert_eq!(check_glibc(&me, "999.0"), 0, "a far-future limit passes");
    assert_eq!(check_glibc(&me, "2.0"), 1, "a limit below any glibc fails");
    assert_eq!(check_glibc(Path::new("/nonexistent/binary"), "2.28"), 2);
    assert_eq!(check_glibc(&me, "not-a-version"), 2);
}

#[test]
fn build_script_is_valid_bash() {
    for script in ["scripts/build-fc.sh", "scripts/check-glibc.sh"] {
        let status = Command::new("bash")
            .arg("-n")
            .arg(root().join(script))
            .status()
            .unwrap();
        assert!(status.success(), "{script} has a syntax error");
    }
}

//! `ims-callback validate` through the real binary: output lines and exit
//! status.

use crate::helpers::events_dir;
use serde_json::Value;
use std::io::Write;
use std::process::{Command, Stdio};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ims-callback"))
}

fn lines(stdout: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn validate_the_corpus_exits_zero_with_one_line_per_file() {
    let out = bin().arg("validate").arg(events_dir()).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reports = lines(&out.stdout);
    assert!(reports.len() >= 30);
    for r in &reports {
        assert_eq!(r["valid"], Value::Bool(true));
        assert!(r["problems"].as_array().unwrap().is_empty());
        for key in ["file", "event_type", "family", "kind", "deprecated"] {
            assert!(r.get(key).is_some(), "{key} in {r}");
        }
    }
    let deprecated: Vec<_> = reports.iter().filter(|r| r["deprecated"] == true).collect();
    assert_eq!(
        deprecated.len(),
        2,
        "TranscodeComplete and TranscodeParentComplete"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("TranscodeComplete"));
}

#[test]
fn validate_invalid_inputs_exits_one_and_lists_problems() {
    let out = bin()
        .arg("validate")
        .arg(events_dir().join("invalid"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    for r in lines(&out.stdout) {
        assert_eq!(r["valid"], Value::Bool(false));
        let problems = r["problems"].as_array().unwrap();
        assert!(!problems.is_empty());
        for p in problems {
            assert!(p["path"].is_string() && p["reason"].is_string());
        }
    }
}

#[test]
fn validate_reads_stdin_and_reports_line_and_column() {
    let mut child = bin()
        .args(["validate", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"{\n  \"EventType\": }")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let r = &lines(&out.stdout)[0];
    assert_eq!(r["file"], "-");
    assert_eq!(r["problems"][0]["line"], 2);
    assert_eq!(r["problems"][0]["column"], 16);
}

#[test]
fn validate_a_missing_file_exits_two_with_a_readable_error() {
    let out = bin()
        .arg("validate")
        .arg(events_dir().join("FileUploadComplete.json"))
        .arg("/nonexistent/event.json")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot read /nonexistent/event.json"),
        "{stderr}"
    );
    assert_eq!(
        lines(&out.stdout).len(),
        1,
        "the readable file is still reported"
    );
}

#[test]
fn validate_without_arguments_is_a_usage_error() {
    let out = bin().arg("validate").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

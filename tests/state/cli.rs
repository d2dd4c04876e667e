//! `invoke` then `state` through the real binary on a redb file.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ims-callback"))
}

fn events() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("events")
}

fn state(store: &str, key: &str) -> (Option<i32>, String) {
    let out = bin()
        .args(["state", key, "--store", store])
        .output()
        .unwrap();
    (out.status.code(), String::from_utf8(out.stdout).unwrap())
}

#[test]
fn invoke_the_corpus_then_read_state_on_redb() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("redb:{}", dir.path().join("state.redb").display());
    let out = bin()
        .arg("invoke")
        .arg(events())
        .args(["--store", &store])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(lines.len() >= 30);
    for line in &lines {
        assert_eq!(line["fingerprint"].as_str().unwrap().len(), 32);
        for r in line["resources"].as_array().unwrap() {
            assert_eq!(r["outcome"], "applied", "{line}");
        }
    }

    // Uploaded by FileUploadComplete and UploadByURLComplete.
    let (code, text) = state(&store, "media/c321b3a0041a71eda1590674a2ce6a17");
    assert_eq!(code, Some(0));
    let media: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(media["status"], "uploaded");
    assert_eq!(media["fields"]["size"], 5510872);
    assert_eq!(media["history"].as_array().unwrap().len(), 2);

    // Registered, audited, then deleted: deleted.
    let (_, text) = state(&store, "media/71151b80f2d471ecb21b472190a97c52");
    let media: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(media["status"], "deleted");
    assert_eq!(media["fields"]["audit/result"], "Normal");

    let (_, text) = state(&store, "job/2e083368d3224d22a8f3170ff9ff1cac");
    let job: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        job["fields"]["outputs/da68bc722dab477d960026e6eba153e8/status"],
        "success"
    );

    let (code, _) = state(&store, "media/not-there");
    assert_eq!(code, Some(1));
    let (code, _) = state(&store, "nonsense");
    assert_eq!(code, Some(2));

    // Re-invoking is all duplicates and changes nothing.
    let out = bin()
        .arg("invoke")
        .arg(events())
        .args(["--store", &store])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(
        !String::from_utf8(out.stdout)
            .unwrap()
            .contains("\"applied\"")
    );
}

#[test]
fn invoking_in_reverse_order_gives_the_same_states() {
    let dir = tempfile::tempdir().unwrap();
    let forward = format!("redb:{}", dir.path().join("f.redb").display());
    let backward = format!("redb:{}", dir.path().join("b.redb").display());
    let mut files: Vec<PathBuf> = std::fs::read_dir(events())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    let run = |store: &str, files: &[PathBuf]| {
        let out = bin()
            .arg("invoke")
            .args(files)
            .args(["--store", store])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0));
    };
    run(&forward, &files);
    files.reverse();
    run(&backward, &files);
    for key in [
        "media/c321b3a0041a71eda1590674a2ce6a17",
        "media/71151b80f2d471ecb21b472190a97c52",
        "media/4c3a4a30041b71edbfc96732b68f0e59",
        "job/a11f624c98e84f6b839d4ffb74b7e5a0",
        "job/533d2c5eac5b4f0aaf2d09c7ee884cae",
        "live-record/d6a856d4-ca81-47e8-9d66-5c1e0f7a2b94",
    ] {
        let a = bin()
            .args(["state", key, "--raw", "--store", &forward])
            .output()
            .unwrap();
        let b = bin()
            .args(["state", key, "--raw", "--store", &backward])
            .output()
            .unwrap();
        assert_eq!(a.status.code(), Some(0), "{key}");
        assert_eq!(a.stdout, b.stdout, "{key}");
    }
}

#[test]
fn invoke_rejects_invalid_events_with_exit_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("redb:{}", dir.path().join("s.redb").display());
    let out = bin()
        .arg("invoke")
        .arg(events().join("invalid/missing-media-id.json"))
        .arg(events().join("FileUploadComplete.json"))
        .args(["--store", &store])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("\"rejected\":true"));
    assert!(text.contains("rejected/"));
    assert!(
        text.contains("\"applied\""),
        "the valid one is still applied"
    );
}

//! `ims-callback send` (the real binary) against the real server: signed
//! HTTP callbacks in order and shuffled with duplicates (the same final
//! states), a wrong key, a dead port, MNS messages to `/invoke`, and
//! usage errors.

use crate::helpers::{
    CALLBACK_URL, TestApp, events_dir, json_files, read, spawn_on_fc, spawn_secured,
};
use ims_callback::pipeline::Pipeline;
use ims_callback::store::MemoryStore;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Output;

/// Runs `ims-callback send ARGS…` off the runtime's thread, so the
/// in-process server keeps answering meanwhile.
async fn send(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_ims-callback"))
            .arg("send")
            .args(args)
            .output()
            .expect("the binary runs")
    })
    .await
    .unwrap()
}

/// The signed-send arguments for `app`, signing over the configured
/// CallbackURL with the server's first key.
fn signed(app: &TestApp, key: &str) -> Vec<String> {
    [
        "--url",
        &app.url("/"),
        "--sign-url",
        CALLBACK_URL,
        "--key",
        key,
    ]
    .map(String::from)
    .to_vec()
}

/// The one JSON summary line on stdout.
fn summary(out: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "one summary line: {stdout}");
    serde_json::from_str(lines[0]).unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn path_arg(path: PathBuf) -> String {
    path.display().to_string()
}

/// Every resource key the sample events touch, by running them through
/// the pipeline on a memory store.
async fn sample_keys() -> BTreeSet<String> {
    let pipeline = Pipeline::new(MemoryStore::new());
    let mut keys = BTreeSet::new();
    for path in json_files(&events_dir()) {
        let processed = pipeline
            .process(&read(&path), ims_callback::admission::ReceivedAt::now())
            .await
            .unwrap();
        keys.extend(processed.resources.into_iter().map(|r| r.key));
    }
    keys
}

async fn states(app: &TestApp, keys: &BTreeSet<String>) -> Vec<Value> {
    let mut states = Vec::new();
    for key in keys {
        let response = app.get_authorized(&format!("/v1/resources/{key}")).await;
        assert_eq!(response.status(), 200, "{key}");
        states.push(response.json().await.unwrap());
    }
    states
}

#[tokio::test]
async fn ordered_and_shuffled_with_duplicates_give_the_same_states() {
    let samples = json_files(&events_dir()).len();
    let ordered = spawn_secured(None).await;
    let mut args = signed(&ordered, "old-auth-key");
    args.push(path_arg(events_dir()));
    let out = send(args).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let totals = summary(&out);
    assert_eq!(totals["sent"], samples);
    assert_eq!(totals["delivered"], samples);
    assert_eq!(totals["failed"], 0);
    assert_eq!(totals["retried"], 0);
    assert!(totals["p50_ms"].as_f64().unwrap() <= totals["p99_ms"].as_f64().unwrap());

    let shuffled = spawn_secured(None).await;
    let mut args = signed(&shuffled, "new-auth-key");
    args.extend(
        [
            "--shuffle",
            "--seed",
            "26",
            "--duplicates",
            "2",
            "--concurrency",
            "4",
        ]
        .map(String::from),
    );
    args.push(path_arg(events_dir()));
    let out = send(args).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let totals = summary(&out);
    assert_eq!(totals["sent"], 3 * samples);
    assert_eq!(totals["delivered"], 3 * samples);
    assert_eq!(totals["seed"], 26);
    assert!(stderr(&out).contains("--seed 26"), "{}", stderr(&out));

    let keys = sample_keys().await;
    assert!(keys.len() >= 20, "{keys:?}");
    let expected = states(&ordered, &keys).await;
    assert_eq!(states(&shuffled, &keys).await, expected);
    let deleted = expected
        .iter()
        .find(|s| s["key"] == "media/71151b80f2d471ecb21b472190a97c52")
        .unwrap();
    assert_eq!(deleted["status"], "deleted");
}

#[tokio::test]
async fn a_wrong_key_fails_with_the_servers_reason_and_stores_nothing() {
    let app = spawn_secured(None).await;
    let file = events_dir().join("RegisterMediaComplete.json");
    let mut args = signed(&app, "wrong-key");
    args.push(path_arg(file.clone()));
    let out = send(args).await;
    assert_eq!(out.status.code(), Some(1));
    let message = stderr(&out);
    assert!(message.contains(&file.display().to_string()), "{message}");
    assert!(message.contains("HTTP 401"), "{message}");
    assert!(
        message.contains("X-ICE-SIGNATURE does not match"),
        "{message}"
    );
    let totals = summary(&out);
    assert_eq!(totals["failed"], 1);
    assert_eq!(totals["delivered"], 0);
    assert_eq!(totals["retried"], 2, "IMS retries twice");
    let state = app
        .get_authorized("/v1/resources/media/71151b80f2d471ecb21b472190a97c52")
        .await;
    assert_eq!(state.status(), 404);
}

#[tokio::test]
async fn a_dead_port_fails_without_retrying() {
    // Bound and released: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let file = events_dir().join("FileUploadComplete.json");
    let out = send(vec![
        "--url".into(),
        format!("http://127.0.0.1:{port}/"),
        "--key".into(),
        "k".into(),
        path_arg(file.clone()),
    ])
    .await;
    assert_eq!(out.status.code(), Some(1));
    let message = stderr(&out);
    assert!(message.contains(&file.display().to_string()), "{message}");
    assert!(message.contains("cannot connect"), "{message}");
    assert!(message.contains("refused"), "{message}");
    let totals = summary(&out);
    assert_eq!(totals["failed"], 1);
    assert_eq!(totals["retried"], 0);
    assert_eq!(totals["p50_ms"], Value::Null);
}

#[tokio::test]
async fn mns_messages_are_delivered_to_invoke() {
    // As on FC: elsewhere a signed server refuses x-fc-control-path.
    let app = spawn_on_fc(None).await;
    let files = ["FileUploadComplete.json", "ProduceMediaComplete.json"];
    let mut args = vec![
        "--url".into(),
        app.url("/ims/events"),
        "--mns".into(),
        "--duplicates".into(),
        "1".into(),
    ];
    args.extend(files.map(|f| path_arg(events_dir().join(f))));
    let out = send(args).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let totals = summary(&out);
    assert_eq!(totals["sent"], 4);
    assert_eq!(totals["delivered"], 4);
    let upload: Value = app
        .get_authorized("/v1/resources/media/c321b3a0041a71eda1590674a2ce6a17")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(upload["status"], "uploaded");
}

#[tokio::test]
async fn usage_errors_exit_two() {
    let event = path_arg(events_dir().join("FileUploadComplete.json"));
    let cases: [&[&str]; 5] = [
        &[],
        &["--url", "not a url"],
        &["--url", "http://127.0.0.1:9/", "--mns", "--key", "k"],
        &["--url", "http://127.0.0.1:9/", "--seed", "1"],
        &["--url", "http://127.0.0.1:9/", "--concurrency", "0"],
    ];
    for case in cases {
        let mut args: Vec<String> = case.iter().map(|a| a.to_string()).collect();
        args.push(event.clone());
        let out = send(args).await;
        assert_eq!(out.status.code(), Some(2), "{case:?}: {}", stderr(&out));
        assert!(
            stderr(&out).starts_with("error: "),
            "{case:?}: {}",
            stderr(&out)
        );
        assert!(out.stdout.is_empty(), "{case:?}");
    }
    let out = send(vec![
        "--url".into(),
        "http://127.0.0.1:9/".into(),
        "/nonexistent/event.json".into(),
    ])
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("/nonexistent/event.json"),
        "{}",
        stderr(&out)
    );
}

//! Secure defaults and the limits on what failing traffic can cost, on the
//! real binary: on Function Compute (its system variables set) without
//! auth keys the process refuses to start unless unsigned callbacks are
//! allowed explicitly; `x-fc-control-path` is trusted there; the rejected
//! area's hourly budget stops keeping invalid inputs, never valid events.

use crate::helpers::{CALLBACK_URL, client};
use crate::process::ServerProcess;
use ims_callback::ingest::auth::sign;
use ims_callback::ingest::unix_now;
use serde_json::{Value, json};
use std::time::Duration;

/// What FC sets in every instance (environment-variables doc).
const ON_FC: [(&str, &str); 2] = [
    ("FC_FUNCTION_NAME", "ims-callback"),
    ("FC_INSTANCE_ID", "c-0123456789abcdef"),
];

fn event() -> Vec<u8> {
    include_bytes!("../../events/FileUploadComplete.json").to_vec()
}

#[tokio::test]
async fn on_function_compute_unsigned_is_refused_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("redb:{}", dir.path().join("state.redb").display());
    let mut vars = vec![("IMS_STORE", store.as_str()), ("RUST_LOG", "warn")];
    vars.extend(ON_FC);

    let port = crate::helpers::free_port();
    let mut refused = ServerProcess::spawn(&vars, dir.path(), port);
    let status = refused.wait_exit(Duration::from_secs(20));
    assert!(!status.success(), "{status:?}");
    let logs = refused.logs();
    assert!(
        logs.contains("IMS_CALLBACK_AUTH_KEYS") && logs.contains("IMS_ALLOW_UNSIGNED=true"),
        "the refusal says what to set: {logs}"
    );
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "nothing listens"
    );

    vars.push(("IMS_ALLOW_UNSIGNED", "true"));
    let allowed = ServerProcess::start(&vars, dir.path()).await;
    let answer = client()
        .post(format!("{}/", allowed.address))
        .body(event())
        .send()
        .await
        .unwrap();
    assert_eq!(
        answer.status(),
        200,
        "allowed explicitly: unsigned accepted"
    );
}

#[tokio::test]
async fn on_function_compute_x_fc_control_path_is_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("redb:{}", dir.path().join("state.redb").display());
    let mut vars = vec![
        ("IMS_STORE", store.as_str()),
        ("IMS_CALLBACK_AUTH_KEYS", "fc-key"),
        ("IMS_CALLBACK_URL", CALLBACK_URL),
        ("RUST_LOG", "warn"),
    ];
    let off_fc = ServerProcess::start(&vars, dir.path()).await;
    let invoke = |address: &str| {
        client()
            .post(format!("{address}/invoke"))
            .header("x-fc-control-path", "/invoke")
            .body(event())
            .send()
    };
    let answer = invoke(&off_fc.address).await.unwrap();
    assert_eq!(answer.status(), 401, "off FC the header skips nothing");
    let body: Value = answer.json().await.unwrap();
    assert_eq!(body["error"], "untrusted_control_path");
    drop(off_fc);

    vars.extend(ON_FC);
    let on_fc = ServerProcess::start(&vars, dir.path()).await;
    let answer = invoke(&on_fc.address).await.unwrap();
    assert_eq!(
        answer.status(),
        200,
        "FC's HTTP trigger refuses client x-fc-* headers"
    );
}

#[tokio::test]
async fn past_the_rejected_budget_invalid_inputs_are_counted_not_kept() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("redb:{}", dir.path().join("state.redb").display());
    let vars = [
        ("IMS_STORE", store.as_str()),
        ("IMS_CALLBACK_AUTH_KEYS", "budget-key"),
        ("IMS_CALLBACK_URL", CALLBACK_URL),
        ("IMS_REJECTED_BUDGET", "4KiB"),
        ("RUST_LOG", "warn"),
    ];
    let server = ServerProcess::start(&vars, dir.path()).await;
    let client = client();
    let post = |body: Vec<u8>| {
        let ts = unix_now().to_string();
        client
            .post(format!("{}/", server.address))
            .header("x-ice-timestamp", &ts)
            .header("x-ice-signature", sign(CALLBACK_URL, &ts, "budget-key"))
            .body(body)
            .send()
    };
    // Distinct invalid inputs of ~500 B each: the first few are kept.
    let (mut kept, mut not_kept) = (0, 0);
    for i in 0..20 {
        let answer = post(
            format!("{{\"EventType\":\"x{i}\",\"pad\":\"{}\"}}", "p".repeat(400)).into_bytes(),
        )
        .await
        .unwrap();
        assert_eq!(answer.status(), 400);
        let body: Value = answer.json().await.unwrap();
        assert!(!body["problems"].as_array().unwrap().is_empty(), "{body}");
        match body["stored_as"].as_str() {
            Some(_) => {
                assert_eq!(not_kept, 0, "kept after the budget was spent: {body}");
                kept += 1;
            }
            None => {
                assert!(
                    body["not_kept"]
                        .as_str()
                        .unwrap()
                        .contains("IMS_REJECTED_BUDGET")
                );
                not_kept += 1;
            }
        }
    }
    assert!(
        kept >= 4 && not_kept >= 10,
        "kept {kept}, not kept {not_kept}"
    );

    // Valid events are never refused by it; an event from the future,
    // valid but held back, is still kept for replay.
    assert_eq!(post(event()).await.unwrap().status(), 200);
    let mut future: Value = serde_json::from_slice(&event()).unwrap();
    future["EventTime"] = json!("9999-12-31T23:59:59Z");
    let answer = post(serde_json::to_vec(&future).unwrap()).await.unwrap();
    assert_eq!(answer.status(), 400);
    let body: Value = answer.json().await.unwrap();
    assert!(body["stored_as"].as_str().is_some(), "{body}");

    let health: Value = client
        .get(format!("{}/healthz", server.address))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["rejected_not_kept"], not_kept);
    let logs = server.logs();
    // One line per clock hour, not per input (two if an hour began meanwhile).
    let lines = logs
        .matches("IMS_REJECTED_BUDGET spent for this hour")
        .count();
    assert!((1..=2).contains(&lines), "{lines} lines: {logs}");
}

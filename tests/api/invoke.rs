//! FC event invocations (`POST /invoke` marked by `x-fc-control-path`):
//! raw IMS events and MNS queue trigger envelopes (single, batch, base64).

use crate::helpers::{events_dir, json_files, read, spawn_secured};
use serde_json::Value;

async fn invoke(app: &crate::helpers::TestApp, body: Vec<u8>) -> reqwest::Response {
    app.client
        .post(app.url("/invoke"))
        .header("x-fc-control-path", "/invoke")
        .header("x-fc-request-id", "test-request-1")
        .body(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_raw_event_invocation_is_processed_without_a_signature() {
    let app = spawn_secured(None).await;
    let response = invoke(&app, read(&events_dir().join("ProduceMediaComplete.json"))).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["results"][0]["event_type"], "ProduceMediaComplete");
    assert_eq!(body["results"][0]["resources"][0]["outcome"], "applied");
}

#[tokio::test]
async fn every_mns_trigger_sample_is_processed() {
    let app = spawn_secured(None).await;
    let samples = json_files(&events_dir().join("triggers"));
    assert!(!samples.is_empty(), "events/triggers has samples");
    for path in samples {
        let response = invoke(&app, read(&path)).await;
        assert_eq!(response.status(), 200, "{}", path.display());
        let body: Value = response.json().await.unwrap();
        let results = body["results"].as_array().unwrap();
        assert!(!results.is_empty());
        for r in results {
            assert!(r["message_id"].is_string(), "{r}");
            assert_eq!(r["fingerprint"].as_str().unwrap().len(), 32, "{r}");
        }
    }
}

#[tokio::test]
async fn an_invalid_raw_invocation_is_400_and_an_invalid_mns_message_is_kept() {
    let app = spawn_secured(None).await;
    let invalid = read(&events_dir().join("invalid/missing-media-id.json"));
    assert_eq!(invoke(&app, invalid.clone()).await.status(), 400);

    let envelope = serde_json::json!({
        "id": "x", "source": "acs:mns", "type": "mns:Queue:SendMessage",
        "data": {"requestId": "r", "messageId": "m-bad", "messageBody": String::from_utf8(invalid).unwrap()}
    });
    let response = invoke(&app, serde_json::to_vec(&envelope).unwrap()).await;
    assert_eq!(response.status(), 200, "redelivering cannot fix it");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["results"][0]["rejected"]["error"], "invalid_event");
}

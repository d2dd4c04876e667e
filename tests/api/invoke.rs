//! FC event invocations (`POST /invoke` marked by `x-fc-control-path`):
//! raw IMS events and MNS queue trigger envelopes (single, batch, base64),
//! the `x-fc-status` header FC reads instead of the HTTP status, and the
//! HTTP-trigger answers, which must carry no `x-fc-*` header at all.

use crate::helpers::{TestApp, events_dir, json_files, read, spawn_app, spawn_on_fc};
use serde_json::{Value, json};

/// An event invocation as FC sends it.
async fn invoke(app: &TestApp, body: Vec<u8>) -> reqwest::Response {
    app.client
        .post(app.url("/invoke"))
        .header("content-type", "application/octet-stream")
        .header("x-fc-control-path", "/invoke")
        .header("x-fc-request-id", "test-request-1")
        .body(body)
        .send()
        .await
        .unwrap()
}

fn fc_status(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get("x-fc-status")
        .map(|v| v.to_str().unwrap().to_owned())
}

fn fc_headers(response: &reqwest::Response) -> Vec<String> {
    response
        .headers()
        .keys()
        .map(|k| k.as_str().to_owned())
        .filter(|k| k.starts_with("x-fc-"))
        .collect()
}

fn envelope(message_id: &str, body: &[u8]) -> Value {
    json!({
        "id": message_id, "source": "acs:mns", "type": "mns:Queue:SendMessage",
        "data": {"requestId": "r", "messageId": message_id,
                 "messageBody": String::from_utf8(body.to_vec()).unwrap()}
    })
}

fn bytes(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).unwrap()
}

/// A case: its name, what is posted, the HTTP status, `x-fc-status`, and
/// the `result` of each message in order.
type Case<'a> = (&'a str, Vec<u8>, u16, &'a str, Vec<&'a str>);

#[tokio::test]
async fn every_event_invocation_answer_carries_x_fc_status() {
    let app = spawn_app(None, &[("IMS_MAX_BODY", "65536")]).await;
    let valid = read(&events_dir().join("ProduceMediaComplete.json"));
    let other = read(&events_dir().join("FileUploadComplete.json"));
    let invalid = read(&events_dir().join("invalid/missing-media-id.json"));
    let cases: Vec<Case> = vec![
        ("raw valid event", valid.clone(), 200, "200", vec!["stored"]),
        (
            "raw invalid event: kept, so done",
            invalid.clone(),
            200,
            "200",
            vec!["rejected"],
        ),
        (
            "not JSON: kept as rejected",
            b"garbage".to_vec(),
            200,
            "200",
            vec!["rejected"],
        ),
        (
            "one MNS message",
            bytes(&envelope("m-1", &valid)),
            200,
            "200",
            vec!["stored"],
        ),
        (
            "a batch: every message reported",
            bytes(&json!([
                envelope("m-2", &other),
                envelope("m-3", &invalid),
                envelope("m-4", &valid)
            ])),
            200,
            "200",
            vec!["stored", "rejected", "stored"],
        ),
        (
            "a batch that cannot be split: kept whole",
            bytes(&json!([envelope("m-5", &valid), 5])),
            200,
            "200",
            vec!["rejected"],
        ),
        (
            "over IMS_MAX_BODY: not stored",
            vec![b' '; 70_000],
            413,
            "404",
            vec![],
        ),
    ];
    for (name, body, status, fc, results) in cases {
        let response = invoke(&app, body).await;
        assert_eq!(response.status(), status, "{name}");
        assert_eq!(fc_status(&response).as_deref(), Some(fc), "{name}");
        let answer: Value = response.json().await.unwrap();
        let got: Vec<&str> = answer["results"]
            .as_array()
            .map(|r| r.iter().map(|m| m["result"].as_str().unwrap()).collect())
            .unwrap_or_default();
        assert_eq!(got, results, "{name}: {answer}");
        if !results.is_empty() {
            assert_eq!(answer["durable"], true, "{name}: {answer}");
        }
        for r in answer["results"].as_array().into_iter().flatten() {
            match r["result"].as_str() {
                Some("stored") => assert_eq!(r["fingerprint"].as_str().unwrap().len(), 32),
                Some("rejected") => assert!(
                    r["rejected"]["stored_as"]
                        .as_str()
                        .unwrap()
                        .starts_with("rejected/"),
                    "{name}: {r}"
                ),
                other => panic!("{name}: {other:?}"),
            }
        }
    }
}

#[tokio::test]
async fn a_store_outage_is_x_fc_status_404_with_a_503_and_each_message_reported() {
    // Nothing listens there: every store call fails at once.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("redis://127.0.0.1:{port}/");
    let app = spawn_app(Some(&url), &[("IMS_DEADLINE_MS", "500")]).await;
    let valid = read(&events_dir().join("ProduceMediaComplete.json"));
    let invalid = read(&events_dir().join("invalid/missing-media-id.json"));
    for body in [
        valid.clone(),
        // Even an invalid event is not "done" until it is kept.
        invalid.clone(),
        bytes(&json!([envelope("m-1", &valid), envelope("m-2", &invalid)])),
    ] {
        let response = invoke(&app, body).await;
        assert_eq!(response.status(), 503);
        assert_eq!(fc_status(&response).as_deref(), Some("404"));
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["durable"], false, "{answer}");
        for r in answer["results"].as_array().unwrap() {
            assert_eq!(r["result"], "not_stored", "{answer}");
            assert!(r["error"]["error"].is_string(), "{answer}");
        }
    }

    // The Initializer hook must not fail for an outage (FC would answer
    // the pending caller 200 with InitializationError), nor the PreStop.
    let init = app
        .client
        .post(app.url("/initialize"))
        .send()
        .await
        .unwrap();
    assert_eq!(init.status(), 200);
    assert_eq!(init.json::<Value>().await.unwrap()["status"], "degraded");
    let stop = app.client.get(app.url("/pre-stop")).send().await.unwrap();
    assert_eq!(stop.status(), 200);
    assert_eq!(stop.json::<Value>().await.unwrap()["in_flight"], 0);
}

#[tokio::test]
async fn http_trigger_answers_keep_their_status_and_carry_no_fc_header() {
    let app = spawn_on_fc(None).await;
    let valid = read(&events_dir().join("ProduceMediaComplete.json"));
    let invalid = read(&events_dir().join("invalid/missing-media-id.json"));
    let cases = [
        ("/invoke", valid.clone(), false, 401),
        ("/invoke", valid.clone(), true, 200),
        ("/", invalid.clone(), true, 400),
        ("/", valid.clone(), true, 200),
        ("/", valid.clone(), false, 401),
    ];
    for (path, body, signed, status) in cases {
        let response = if signed {
            app.post_signed(path, body).await
        } else {
            app.post(path, body).await
        };
        assert_eq!(response.status(), status, "{path} signed={signed}");
        assert!(fc_headers(&response).is_empty(), "{:?}", response.headers());
    }
    let health = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert!(fc_headers(&health).is_empty());
}

#[tokio::test]
async fn initialize_warms_a_healthy_store() {
    let app = spawn_on_fc(None).await;
    let init = app
        .client
        .post(app.url("/initialize"))
        .send()
        .await
        .unwrap();
    assert_eq!(init.status(), 200);
    let body: Value = init.json().await.unwrap();
    assert_eq!(
        (&body["status"], &body["store"]),
        (&json!("ok"), &json!("redb"))
    );
}

#[tokio::test]
async fn initialize_fails_when_the_store_refuses_the_settings() {
    // An account the store does not let run anything (an ACL mistake):
    // its answer is an error that no retry fixes.
    let redis = crate::redis_support::RedisServer::start(&[
        "--user",
        "ims",
        "on",
        ">right-password",
        "~*",
        "-@all",
        "+auth",
        "+hello",
        "+client",
    ]);
    let url = format!("redis://ims:right-password@127.0.0.1:{}/", redis.port);
    let app = spawn_app(Some(&url), &[]).await;
    let init = app
        .client
        .post(app.url("/initialize"))
        .send()
        .await
        .unwrap();
    let status = init.status();
    let body = init.text().await.unwrap();
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("refuses these settings"), "{body}");
    assert!(!body.contains("right-password"), "{body}");
}

#[tokio::test]
async fn every_mns_trigger_sample_is_stored() {
    let app = spawn_on_fc(None).await;
    let samples = json_files(&events_dir().join("triggers"));
    assert!(!samples.is_empty(), "events/triggers has samples");
    for path in samples {
        let response = invoke(&app, read(&path)).await;
        assert_eq!(response.status(), 200, "{}", path.display());
        assert_eq!(fc_status(&response).as_deref(), Some("200"));
        let body: Value = response.json().await.unwrap();
        let results = body["results"].as_array().unwrap();
        assert!(!results.is_empty());
        for r in results {
            assert_eq!(r["result"], "stored", "{r}");
            assert!(r["message_id"].is_string(), "{r}");
            assert_eq!(r["fingerprint"].as_str().unwrap().len(), 32, "{r}");
        }
    }
}

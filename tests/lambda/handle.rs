//! `lambda::handle` called directly, on real stores: every trigger shape,
//! the HTTP status mapping, and which SQS records are reported for
//! redelivery.

use crate::events::{
    AUTH_KEY, CALLBACK_URL, DEADLINE, api_gateway, body_of, failed_ids, function_url, sample,
    signature, sqs, upload,
};
use crate::proxy::FaultyRedis;
use ims_callback::configuration::Settings;
use ims_callback::lambda::{Function, LambdaError};
use ims_callback::pipeline::{EVENT_PREFIX, REJECTED_PREFIX, RejectedRecord};
use ims_callback::store::{AnyStore, Store, StoreOptions};
use serde_json::{Value, json};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// The Lambda handler over `store`, with the settings `vars` (the tests'
/// deadline unless given).
struct Lambda {
    function: Function,
    store: AnyStore,
}

impl Lambda {
    fn new(store: AnyStore, vars: &[(&str, &str)]) -> Lambda {
        let deadline = DEADLINE.as_millis().to_string();
        let settings = Settings::from_lookup(|name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
                .or_else(|| (name == "IMS_DEADLINE_MS").then(|| deadline.clone()))
        })
        .expect("valid settings");
        Lambda {
            function: Function::new(&settings, store.clone()),
            store,
        }
    }

    async fn handle(&self, event: Value) -> Result<Value, LambdaError> {
        self.function.handle(event).await
    }

    fn store(&self) -> &AnyStore {
        &self.store
    }
}

/// Signatures required, with the tests' key.
const SIGNED: &[(&str, &str)] = &[
    ("IMS_CALLBACK_AUTH_KEYS", AUTH_KEY),
    ("IMS_CALLBACK_URL", CALLBACK_URL),
];

async fn memory(vars: &[(&str, &str)]) -> Lambda {
    let store = AnyStore::open("memory").await.expect("memory store");
    Lambda::new(store, vars)
}

/// A store whose server refuses connections: every call fails, retryably.
async fn unreachable() -> Lambda {
    let options = StoreOptions {
        timeout: Duration::from_millis(300),
    };
    let store = AnyStore::open_with("redis://127.0.0.1:1/", &options)
        .await
        .expect("a lazy redis store opens");
    Lambda::new(store, &[])
}

async fn keys(ingest: &Lambda, prefix: &str) -> Vec<(String, Vec<u8>)> {
    ingest
        .store()
        .list_prefix(prefix, None, 1000)
        .await
        .expect("list")
        .into_iter()
        .map(|(k, v)| (k, v.value))
        .collect()
}

fn status(response: &Value) -> i64 {
    response["statusCode"].as_i64().expect("statusCode")
}

#[tokio::test]
async fn function_url_post_is_a_callback_plain_or_base64() {
    let ingest = memory(&[]).await;
    let event = sample("FileUploadComplete");
    for (base64, outcome) in [(false, "applied"), (true, "duplicate")] {
        let request = function_url("POST", "/ims", &[], Some(event.as_bytes()), base64);
        let response = ingest.handle(request).await.expect("answered");
        assert_eq!(status(&response), 200, "{response}");
        assert_eq!(response["headers"]["content-type"], "application/json");
        assert_eq!(response["isBase64Encoded"], false);
        let body = body_of(&response);
        assert_eq!(body["event_type"], "FileUploadComplete");
        assert_eq!(body["family"], "upload");
        assert_eq!(
            body["resources"],
            json!([{"key": "media/c321b3a0041a71eda1590674a2ce6a17", "outcome": outcome, "status": "uploaded"}])
        );
        // The HTTP server answers `serde_json::to_vec(&processed)`: same bytes.
        let fingerprint = body["fingerprint"].as_str().unwrap().to_owned();
        assert_eq!(keys(&ingest, EVENT_PREFIX).await.len(), 1);
        assert!(
            keys(&ingest, &format!("{EVENT_PREFIX}{fingerprint}"))
                .await
                .len()
                == 1
        );
    }
}

#[tokio::test]
async fn signatures_are_checked_with_case_insensitive_headers() {
    let ingest = memory(SIGNED).await;
    let event = sample("FileUploadComplete");

    // Nothing is applied for an unsigned or wrongly signed callback.
    let unsigned = function_url("POST", "/ims", &[], Some(event.as_bytes()), false);
    let response = ingest.handle(unsigned).await.unwrap();
    assert_eq!(status(&response), 401);
    assert_eq!(body_of(&response)["error"], "unauthorized");
    let (ts, wrong) = signature("some-other-key");
    let headers = [
        ("x-ice-timestamp", ts.as_str()),
        ("x-ice-signature", &wrong),
    ];
    let wrongly = function_url("POST", "/ims", &headers, Some(event.as_bytes()), true);
    let response = ingest.handle(wrongly).await.unwrap();
    assert_eq!(status(&response), 401);
    assert!(
        body_of(&response)["message"]
            .as_str()
            .unwrap()
            .contains("does not match")
    );
    assert!(keys(&ingest, EVENT_PREFIX).await.is_empty());

    // IMS sends X-ICE-TIMESTAMP / X-ICE-SIGNATURE; any case is accepted.
    let (ts, sig) = signature(AUTH_KEY);
    for headers in [
        [("X-ICE-TIMESTAMP", ts.as_str()), ("X-ICE-SIGNATURE", &sig)],
        [("x-ice-timestamp", ts.as_str()), ("X-Ice-Signature", &sig)],
    ] {
        for request in [
            function_url("POST", "/ims", &headers, Some(event.as_bytes()), false),
            api_gateway(
                "POST",
                "$default",
                "/",
                &headers,
                Some(event.as_bytes()),
                true,
            ),
        ] {
            let response = ingest.handle(request).await.unwrap();
            assert_eq!(status(&response), 200, "{response}");
        }
    }
    assert_eq!(keys(&ingest, EVENT_PREFIX).await.len(), 1);
}

/// Only Function Compute sets `x-fc-*` headers; under Lambda a client's
/// are dropped, so `x-fc-control-path: /invoke` cannot pass an unsigned
/// event off as an FC event invocation (which carries no IMS signature).
#[tokio::test]
async fn forged_fc_headers_are_ignored() {
    let ingest = memory(SIGNED).await;
    let event = sample("FileUploadComplete");
    for (name, base64) in [("x-fc-control-path", false), ("X-FC-Control-Path", true)] {
        let forged = [(name, "/invoke"), ("x-fc-request-id", "forged")];
        let request = function_url("POST", "/invoke", &forged, Some(event.as_bytes()), base64);
        let response = ingest.handle(request).await.unwrap();
        assert_eq!(status(&response), 401, "{response}");
        assert_eq!(body_of(&response)["error"], "unauthorized");
    }
    assert!(keys(&ingest, EVENT_PREFIX).await.is_empty());
    // Signed, the same request is an ordinary callback on `/invoke`.
    let (ts, sig) = signature(AUTH_KEY);
    let headers = [
        ("x-fc-control-path", "/invoke"),
        ("x-ice-timestamp", ts.as_str()),
        ("x-ice-signature", sig.as_str()),
    ];
    let request = function_url("POST", "/invoke", &headers, Some(event.as_bytes()), false);
    let response = ingest.handle(request).await.unwrap();
    assert_eq!(status(&response), 200, "{response}");
    assert_eq!(body_of(&response)["event_type"], "FileUploadComplete");
}

#[tokio::test]
async fn oversized_and_undecodable_bodies_are_refused() {
    let max = 100;
    let ingest = memory(&[("IMS_MAX_BODY", "100")]).await;
    for base64 in [false, true] {
        let over = vec![b'x'; max + 1];
        let response = ingest
            .handle(function_url("POST", "/", &[], Some(&over), base64))
            .await
            .unwrap();
        assert_eq!(status(&response), 413, "{response}");
        assert_eq!(
            body_of(&response),
            json!({"error": "body_too_large", "message": "the body exceeds the limit of 100 bytes"})
        );
        // At the limit the body is read (and is then an invalid event).
        let at = vec![b'x'; max];
        let response = ingest
            .handle(function_url("POST", "/", &[], Some(&at), base64))
            .await
            .unwrap();
        assert_eq!(status(&response), 400, "{response}");
        assert_eq!(body_of(&response)["error"], "invalid_event");
    }
    let mut request = function_url("POST", "/", &[], Some(b"{}"), false);
    request["isBase64Encoded"] = json!(true);
    request["body"] = json!("not base64!");
    let response = ingest.handle(request).await.unwrap();
    assert_eq!(status(&response), 400);
    assert_eq!(body_of(&response)["error"], "body_unreadable");
}

#[tokio::test]
async fn invalid_callback_is_400_with_problems_and_kept() {
    let ingest = memory(&[]).await;
    let body = br#"{"EventType":"FileUploadComplete","UserId":1,"EventTime":"2022-07-15T08:48:14Z","MessageBody":{}}"#;
    let response = ingest
        .handle(function_url("POST", "/", &[], Some(body), false))
        .await
        .unwrap();
    assert_eq!(status(&response), 400);
    let answer = body_of(&response);
    assert_eq!(answer["error"], "invalid_event");
    assert!(
        answer["problems"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["path"] == "/MessageBody/MediaId"),
        "{answer}"
    );
    let stored_as = answer["stored_as"].as_str().unwrap();
    let kept = ingest.store().get(stored_as).await.unwrap().expect("kept");
    let record: RejectedRecord = serde_json::from_slice(&kept.value).unwrap();
    assert_eq!(record.bytes().unwrap(), body);
}

#[tokio::test]
async fn health_and_other_methods() {
    let ingest = memory(&[]).await;
    for request in [
        function_url("GET", "/healthz", &[], None, false),
        api_gateway("GET", "$default", "/healthz", &[], None, false),
        api_gateway("GET", "prod", "/healthz", &[], None, false),
    ] {
        let response = ingest.handle(request).await.unwrap();
        assert_eq!(status(&response), 200, "{response}");
        // The FC server's health answer, store statistics included.
        let body = body_of(&response);
        assert_eq!(
            (&body["status"], &body["store"]),
            (&json!("ok"), &json!("memory"))
        );
        assert!(body["cas_retries"].is_u64(), "{body}");
    }
    // API Gateway answers carry its own response type.
    let response = ingest
        .handle(api_gateway("GET", "prod", "/healthz", &[], None, false))
        .await
        .unwrap();
    assert!(response.get("multiValueHeaders").is_some(), "{response}");

    // Any path but the routes' takes a POST (a callback); a route names
    // its own methods.
    for (request, allow) in [
        (function_url("PUT", "/ims", &[], Some(b"{}"), false), "POST"),
        (function_url("GET", "/ims", &[], None, false), "POST"),
        (
            function_url("DELETE", "/healthz", &[], None, false),
            "GET, HEAD",
        ),
        (api_gateway("PATCH", "prod", "/x", &[], None, false), "POST"),
    ] {
        let response = ingest.handle(request).await.unwrap();
        assert_eq!(status(&response), 405, "{response}");
        assert_eq!(response["headers"]["allow"], allow);
        assert_eq!(body_of(&response)["error"], "method_not_allowed");
    }

    let down = unreachable().await;
    let response = down
        .handle(function_url("GET", "/healthz", &[], None, false))
        .await
        .unwrap();
    assert_eq!(status(&response), 503);
    assert_eq!(body_of(&response)["error"], "unavailable");
}

#[tokio::test]
async fn sqs_invalid_records_are_kept_and_not_redelivered() {
    let ingest = memory(&[]).await;
    let batch = sqs(&[
        ("m-1", &sample("FileUploadComplete")),
        ("m-2", "{\"EventType\": \"FileUploadComplete\", oops"),
        ("m-3", &sample("SnapshotComplete")),
    ]);
    let response = ingest.handle(batch).await.expect("answered");
    assert_eq!(response, json!({"batchItemFailures": []}));
    assert_eq!(keys(&ingest, EVENT_PREFIX).await.len(), 2);
    let rejected = keys(&ingest, REJECTED_PREFIX).await;
    assert_eq!(rejected.len(), 1);
    let record: RejectedRecord = serde_json::from_slice(&rejected[0].1).unwrap();
    assert_eq!(
        record.body.as_deref(),
        Some("{\"EventType\": \"FileUploadComplete\", oops")
    );
    assert!(
        ingest
            .store()
            .get("job/11a32131403478e92cc01399855b4e71")
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn sqs_store_down_fails_every_record() {
    // Even the invalid record: it could not be kept, so it must come back.
    let ingest = unreachable().await;
    let batch = sqs(&[
        ("m-1", &sample("FileUploadComplete")),
        ("m-2", "not json"),
        ("m-3", &sample("SnapshotComplete")),
    ]);
    let response = ingest.handle(batch).await.expect("answered");
    assert_eq!(failed_ids(&response), ["m-1", "m-2", "m-3"]);
}

#[tokio::test]
async fn sqs_record_without_message_id_fails_the_whole_batch() {
    let ingest = unreachable().await;
    let mut batch = sqs(&[("m-1", &sample("FileUploadComplete"))]);
    batch["Records"][0]
        .as_object_mut()
        .unwrap()
        .remove("messageId");
    let e = ingest.handle(batch).await.unwrap_err();
    assert_eq!(e.error_type(), LambdaError::UNAVAILABLE);
    assert!(e.is_retryable());
}

/// Exactly the records whose storage failed retryably are reported: one
/// record's writes are refused by the store (a real Redis error reply,
/// injected by a proxy), the others are stored or kept as invalid.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqs_reports_exactly_the_retryable_failures() {
    const MARKER: &str = "unlucky-media-0001";
    let redis = FaultyRedis::start(MARKER).await;
    let store = AnyStore::open(&redis.url()).await.expect("redis store");
    let ingest = Lambda::new(store, &[]);
    let batch = sqs(&[
        ("ok-1", &upload("lucky-media-0001")),
        ("unlucky", &upload(MARKER)),
        ("invalid", "[1, 2"),
        ("ok-2", &sample("SnapshotComplete")),
        ("ok-3", &upload("lucky-media-0002")),
    ]);
    let response = ingest.handle(batch).await.expect("answered");
    assert_eq!(failed_ids(&response), ["unlucky"]);
    assert!(redis.injected() >= 1);
    let store = ingest.store();
    for key in [
        "media/lucky-media-0001",
        "media/lucky-media-0002",
        "job/11a32131403478e92cc01399855b4e71",
    ] {
        assert!(store.get(key).await.unwrap().is_some(), "{key}");
    }
    assert_eq!(keys(&ingest, REJECTED_PREFIX).await.len(), 1);
    assert_eq!(keys(&ingest, EVENT_PREFIX).await.len(), 3);

    // The unlucky record, sent alone, is a Lambda error a direct invoker
    // sees as retryable.
    let bare: Value = serde_json::from_str(&upload(MARKER)).unwrap();
    let e = ingest.handle(bare).await.unwrap_err();
    assert_eq!(e.error_type(), LambdaError::UNAVAILABLE, "{e}");
}

#[tokio::test]
async fn bare_event_answers_its_outcome_or_problems() {
    let ingest = memory(&[]).await;
    let event: Value = serde_json::from_str(&sample("SnapshotComplete")).unwrap();
    let outcome = ingest.handle(event.clone()).await.unwrap();
    assert_eq!(outcome["event_type"], "SnapshotComplete");
    assert_eq!(outcome["resources"][0]["outcome"], "applied");
    let again = ingest.handle(event).await.unwrap();
    assert_eq!(again["resources"][0]["outcome"], "duplicate");
    assert_eq!(again["fingerprint"], outcome["fingerprint"]);

    // Invalid: kept, and answered (not an error: a retry cannot fix it).
    let invalid = json!({"EventType": "SnapshotComplete", "UserId": 1, "EventTime": "2022-07-15T08:48:14Z", "MessageBody": {}});
    let answer = ingest.handle(invalid).await.unwrap();
    assert_eq!(answer["error"], "invalid_event");
    assert!(
        answer["stored_as"]
            .as_str()
            .unwrap()
            .starts_with(REJECTED_PREFIX)
    );

    // Not stored: a Lambda error, so the invoker retries.
    let down = unreachable().await;
    let event: Value = serde_json::from_str(&sample("SnapshotComplete")).unwrap();
    let e = down.handle(event).await.unwrap_err();
    assert_eq!(e.error_type(), LambdaError::UNAVAILABLE);
    assert!(e.is_retryable());
}

/// A store that does not answer in time: the deadline fails the event and
/// the invoker is told to retry. redb runs on tokio's blocking pool; every
/// blocking thread of this runtime is kept busy, so its calls really wait.
#[test]
fn deadline_is_a_retryable_lambda_error() {
    const BLOCKING_THREADS: usize = 2;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(BLOCKING_THREADS)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let spec = format!("redb:{}", dir.path().join("s.redb").display());
        let store = AnyStore::open(&spec).await.expect("redb store");
        let ingest = Lambda::new(store, &[("IMS_DEADLINE_MS", "200")]);
        let gate = Arc::new((Mutex::new(false), Condvar::new()));
        for _ in 0..BLOCKING_THREADS {
            let gate = Arc::clone(&gate);
            tokio::task::spawn_blocking(move || {
                let (open, cv) = &*gate;
                let mut open = open.lock().unwrap();
                while !*open {
                    open = cv.wait(open).unwrap();
                }
            });
        }
        let event: Value = serde_json::from_str(&sample("FileUploadComplete")).unwrap();
        let e = ingest.handle(event).await.unwrap_err();
        assert_eq!(e.error_type(), LambdaError::DEADLINE, "{e}");
        assert!(e.is_retryable());
        let batch = sqs(&[("m-1", &sample("FileUploadComplete"))]);
        let response = ingest.handle(batch).await.unwrap();
        assert_eq!(failed_ids(&response), ["m-1"]);
        *gate.0.lock().unwrap() = true;
        gate.1.notify_all();
    });
}

#[tokio::test]
async fn unrecognised_and_malformed_events_are_lambda_errors() {
    let ingest = memory(&[]).await;
    for (event, error_type, says) in [
        (
            json!({"hello": "world"}),
            LambdaError::UNRECOGNIZED,
            "[hello]",
        ),
        (
            json!([sample("FileUploadComplete")]),
            LambdaError::UNRECOGNIZED,
            "an array",
        ),
        (
            json!({"Records": [{"EventSource": "aws:sns", "Sns": {}}]}),
            LambdaError::UNRECOGNIZED,
            "aws:sns",
        ),
        (
            json!({"resource": "/", "httpMethod": "POST", "requestContext": {}, "body": "{}"}),
            LambdaError::UNRECOGNIZED,
            "payload format 1.0",
        ),
        (
            json!({"requestContext": {"http": {"path": "/"}}}),
            LambdaError::MALFORMED,
            "HTTP",
        ),
        (
            json!({"Records": [{"eventSource": "aws:sqs", "messageId": "m", "body": 7}]}),
            LambdaError::MALFORMED,
            "SQS",
        ),
    ] {
        let e = ingest.handle(event.clone()).await.unwrap_err();
        assert_eq!(e.error_type(), error_type, "{event}: {e}");
        assert!(e.message().contains(says), "{event}: {e}");
        assert!(!e.is_retryable());
    }
    assert!(keys(&ingest, "").await.is_empty());
}

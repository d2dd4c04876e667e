//! The real `ims-callback` binary in Lambda mode: started with
//! `AWS_LAMBDA_RUNTIME_API` pointing at a local Runtime API
//! (`runtime_api`), it polls for invocations and posts their answers,
//! exactly as under the Lambda service. Each test queues invocations,
//! waits for every answer, kills the function (the runtime loop never
//! ends by itself) and checks what the Runtime API received and what the
//! store holds.

use crate::events::{
    AUTH_KEY, CALLBACK_URL, body_of, failed_ids, function_url, sample, signature, sqs, upload,
};
use crate::proxy::FaultyRedis;
use crate::runtime_api::{Posted, RuntimeApi};
use ims_callback::pipeline::{EVENT_PREFIX, REJECTED_PREFIX, RejectedRecord};
use ims_callback::store::{AnyStore, Store};
use serde_json::{Value, json};
use std::io::Read;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Generous: the first invocation of a debug binary may be slow on a busy
/// machine.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);

/// The function under test, killed when dropped.
pub struct Function {
    child: Child,
    output: Vec<std::thread::JoinHandle<String>>,
}

impl Function {
    pub fn start(api: SocketAddr, settings: &[(&str, &str)]) -> Function {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ims-callback"));
        // Only what the Lambda service sets, plus the function's settings:
        // nothing from the developer's environment leaks in.
        cmd.env_clear()
            .env("AWS_LAMBDA_RUNTIME_API", api.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", "ims-callback")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env(
                "AWS_LAMBDA_LOG_STREAM_NAME",
                "2026/11/25/[$LATEST]0123456789abcdef",
            )
            .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/ims-callback")
            .env("AWS_REGION", "eu-central-1")
            .env("RUST_LOG", "info")
            .envs(settings.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start ims-callback");
        // Drained as it comes, so a chatty function never blocks on a pipe.
        let output = [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
        ]
        .into_iter()
        .flatten()
        .map(|mut stream| {
            std::thread::spawn(move || {
                let mut text = String::new();
                let _ = stream.read_to_string(&mut text);
                text
            })
        })
        .collect();
        Function { child, output }
    }

    /// Waits for the function to exit by itself (up to `timeout`).
    fn wait(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            if std::time::Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The names of the function's threads (Linux `/proc`).
    fn thread_names(&self) -> Vec<String> {
        let tasks = format!("/proc/{}/task", self.child.id());
        std::fs::read_dir(tasks)
            .expect("the function's threads")
            .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
            .map(|name| name.trim().to_owned())
            .collect()
    }

    /// Kills the function (SIGKILL, as Lambda may end a frozen function
    /// without a signal); returns everything it wrote (stdout, stderr).
    pub fn stop(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::mem::take(&mut self.output)
            .into_iter()
            .map(|t| t.join().unwrap_or_default())
            .collect()
    }
}

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn response(posted: &Posted) -> &Value {
    match posted {
        Posted::Response { body, .. } => body,
        other => panic!("expected a response, got {other:?}"),
    }
}

/// Log lines (JSON) mentioning `request_id`.
fn lines_of(logs: &str, request_id: &str) -> Vec<Value> {
    logs.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["fields"]["request_id"] == request_id)
        .collect()
}

/// Function URL callbacks (signed plain and base64, unsigned), health,
/// an SQS batch with an invalid record, a bare event, an invalid bare
/// event and an unrecognised event, on redb.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lambda_mode_serves_function_urls_sqs_batches_and_bare_events() {
    let dir = tempfile::tempdir().unwrap();
    let store_path = dir.path().join("s.redb");
    let store = format!("redb:{}", store_path.display());
    let mut api = RuntimeApi::start().await;

    let upload_event = sample("FileUploadComplete");
    let (ts, sig) = signature(AUTH_KEY);
    let signed = [
        ("x-ice-timestamp", ts.as_str()),
        ("x-ice-signature", sig.as_str()),
    ];
    let produce: Value = serde_json::from_str(&sample("ProduceMediaComplete")).unwrap();
    let invalid_record = "{\"EventType\":\"SnapshotComplete\",\"MessageBody\":";
    let invocations: Vec<(&str, Value)> = vec![
        (
            "url-signed-plain",
            function_url(
                "POST",
                "/ims",
                &signed,
                Some(upload_event.as_bytes()),
                false,
            ),
        ),
        (
            "url-signed-base64",
            function_url("POST", "/ims", &signed, Some(upload_event.as_bytes()), true),
        ),
        (
            "url-unsigned",
            function_url(
                "POST",
                "/ims",
                &[],
                Some(upload("unsigned-media-0001").as_bytes()),
                true,
            ),
        ),
        (
            "url-healthz",
            function_url("GET", "/healthz", &[], None, false),
        ),
        (
            "sqs-batch",
            sqs(&[
                ("msg-1", &upload("sqs-media-0001")),
                ("msg-2", invalid_record),
                ("msg-3", &sample("SnapshotComplete")),
            ]),
        ),
        ("bare", produce.clone()),
        (
            "bare-invalid",
            json!({"EventType": "FileUploadComplete", "UserId": 1, "EventTime": "2022-07-15T08:48:14Z", "MessageBody": {"Status": "Success"}}),
        ),
        ("unrecognised", json!({"detail-type": "Scheduled Event"})),
    ];
    for (id, event) in &invocations {
        api.invoke(id, event.clone());
    }
    let function = Function::start(
        api.addr,
        &[
            ("IMS_STORE", &store),
            ("IMS_CALLBACK_AUTH_KEYS", &format!("old-key,{AUTH_KEY}")),
            ("IMS_CALLBACK_URL", CALLBACK_URL),
        ],
    );
    let ids: Vec<&str> = invocations.iter().map(|(id, _)| *id).collect();
    let answers = api.answers(&ids, ANSWER_TIMEOUT).await;
    // Under Lambda each line is written before the answer is sent, not by a
    // log thread: the SIGKILL below must not lose any of them.
    let threads = function.thread_names();
    assert!(!threads.is_empty());
    assert!(!threads.iter().any(|t| t == "ims-log"), "{threads:?}");
    let logs = function.stop();
    let answer = |id: &str| &answers[ids.iter().position(|i| *i == id).unwrap()];

    // (1) Function URL: signed callbacks are stored, plain or base64.
    let first = response(answer("url-signed-plain"));
    assert_eq!(first["statusCode"], 200, "{first}\n{logs}");
    assert_eq!(first["headers"]["content-type"], "application/json");
    let outcome = body_of(first);
    assert_eq!(outcome["event_type"], "FileUploadComplete");
    assert_eq!(
        outcome["resources"],
        json!([{"key": "media/c321b3a0041a71eda1590674a2ce6a17", "outcome": "applied", "status": "uploaded"}])
    );
    let second = response(answer("url-signed-base64"));
    assert_eq!(second["statusCode"], 200, "{second}");
    assert_eq!(body_of(second)["fingerprint"], outcome["fingerprint"]);
    assert_eq!(body_of(second)["resources"][0]["outcome"], "duplicate");
    let unsigned = response(answer("url-unsigned"));
    assert_eq!(unsigned["statusCode"], 401, "{unsigned}");
    assert_eq!(body_of(unsigned)["error"], "unauthorized");
    let health = response(answer("url-healthz"));
    assert_eq!(health["statusCode"], 200);
    let health = body_of(health);
    assert_eq!(
        (&health["status"], &health["store"]),
        (&json!("ok"), &json!("redb"))
    );
    assert!(health["cas_retries"].is_u64(), "{health}");

    // (2) SQS: the invalid record is kept, not redelivered.
    let batch = response(answer("sqs-batch"));
    assert_eq!(batch, &json!({"batchItemFailures": []}));

    // (3) Bare events: the outcome, or the problems of an invalid one.
    let bare = response(answer("bare"));
    assert_eq!(bare["event_type"], "ProduceMediaComplete", "{bare}");
    assert!(bare["resources"].as_array().unwrap().len() >= 2, "{bare}");
    let bare_invalid = response(answer("bare-invalid"));
    assert_eq!(bare_invalid["error"], "invalid_event");
    assert!(
        bare_invalid["problems"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["path"] == "/MessageBody/MediaId"),
        "{bare_invalid}"
    );
    match answer("unrecognised") {
        Posted::Error {
            error_type,
            error_message,
            ..
        } => {
            assert_eq!(error_type, "UnrecognizedEvent");
            assert!(error_message.contains("detail-type"), "{error_message}");
        }
        other => panic!("expected an invocation error, got {other:?}"),
    }

    // Logs: one line per event with the Lambda request id; no secrets.
    let sqs_lines = lines_of(&logs, "sqs-batch");
    assert_eq!(sqs_lines.len(), 3, "{logs}");
    for line in &sqs_lines {
        assert_eq!(line["fields"]["trigger"], "sqs");
        assert!(line["fields"]["latency_us"].is_u64(), "{line}");
    }
    let stored = lines_of(&logs, "url-signed-plain");
    assert_eq!(stored.len(), 1, "{logs}");
    assert_eq!(stored[0]["fields"]["fingerprint"], outcome["fingerprint"]);
    assert!(
        stored[0]["fields"]["resources"]
            .as_str()
            .unwrap()
            .contains("media/c321b3a0041a71eda1590674a2ce6a17=Applied:uploaded")
    );
    for secret in [AUTH_KEY, sig.as_str()] {
        assert!(!logs.contains(secret), "a secret was logged:\n{logs}");
    }

    // The store, once the function is gone.
    let store = AnyStore::open(&store).await.expect("reopen redb");
    let rejected = store.list_prefix(REJECTED_PREFIX, None, 100).await.unwrap();
    let bodies: Vec<String> = rejected
        .iter()
        .map(|(_, v)| {
            let record: RejectedRecord = serde_json::from_slice(&v.value).unwrap();
            String::from_utf8(record.bytes().unwrap()).unwrap()
        })
        .collect();
    assert!(
        bodies.iter().any(|b| b == invalid_record),
        "the invalid SQS record is not kept: {bodies:?}"
    );
    assert_eq!(rejected.len(), 2, "the SQS record and the bare event");
    for key in [
        "media/c321b3a0041a71eda1590674a2ce6a17",
        "media/sqs-media-0001",
        "job/11a32131403478e92cc01399855b4e71",
    ] {
        assert!(store.get(key).await.unwrap().is_some(), "{key}");
    }
    assert!(
        store
            .get("media/unsigned-media-0001")
            .await
            .unwrap()
            .is_none()
    );
    // FileUploadComplete, the SQS upload and snapshot, ProduceMediaComplete.
    let events = store.list_prefix(EVENT_PREFIX, None, 100).await.unwrap();
    assert_eq!(events.len(), 4);
}

/// One record of an SQS batch fails retryably (its writes get a real
/// Redis error reply, injected by a proxy): only its id comes back in
/// `batchItemFailures`; the valid records are stored and the invalid one
/// kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lambda_mode_reports_exactly_the_retryable_sqs_failures() {
    const MARKER: &str = "unlucky-media-e2e-0001";
    let redis = FaultyRedis::start(MARKER).await;
    let mut api = RuntimeApi::start().await;
    api.invoke(
        "sqs-partial",
        sqs(&[
            ("ok-1", &upload("lucky-media-e2e-0001")),
            ("unlucky", &upload(MARKER)),
            ("invalid", "{\"EventType\": 42}"),
            ("ok-2", &sample("SnapshotComplete")),
        ]),
    );
    api.invoke(
        "bare-unlucky",
        serde_json::from_str(&upload(MARKER)).unwrap(),
    );
    // SQS messages carry no IMS signature; unsigned is allowed explicitly.
    let function = Function::start(
        api.addr,
        &[("IMS_STORE", &redis.url()), ("IMS_ALLOW_UNSIGNED", "true")],
    );
    let answers = api
        .answers(&["sqs-partial", "bare-unlucky"], ANSWER_TIMEOUT)
        .await;
    let logs = function.stop();

    let batch = response(&answers[0]);
    assert_eq!(failed_ids(batch), ["unlucky"], "{batch}\n{logs}");
    match &answers[1] {
        Posted::Error { error_type, .. } => assert_eq!(error_type, "StoreUnavailable"),
        other => panic!("expected an invocation error, got {other:?}"),
    }
    assert!(redis.injected() >= 2);
    let unlucky: Vec<Value> = lines_of(&logs, "sqs-partial")
        .into_iter()
        .filter(|l| l["fields"]["message_id"] == "unlucky")
        .collect();
    assert_eq!(unlucky.len(), 1, "{logs}");
    assert_eq!(unlucky[0]["fields"]["retryable"], true);

    let store = AnyStore::open(&redis.url()).await.unwrap();
    for key in [
        "media/lucky-media-e2e-0001",
        "job/11a32131403478e92cc01399855b4e71",
    ] {
        assert!(store.get(key).await.unwrap().is_some(), "{key}");
    }
    assert_eq!(
        store
            .list_prefix(REJECTED_PREFIX, None, 10)
            .await
            .unwrap()
            .len(),
        1
    );
}

/// A store that cannot be opened is reported to the Runtime API as an
/// initialization error, and the process exits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lambda_mode_reports_an_unusable_store_as_an_init_error() {
    let mut api = RuntimeApi::start().await;
    let mut function = Function::start(
        api.addr,
        &[
            ("IMS_STORE", "nosuchstore://x"),
            ("IMS_ALLOW_UNSIGNED", "true"),
        ],
    );
    let posted = api.next_posted(ANSWER_TIMEOUT).await;
    let status = function.wait(ANSWER_TIMEOUT);
    let logs = function.stop();
    match posted {
        Some(Posted::InitError {
            error_type,
            error_message,
        }) => {
            assert_eq!(error_type, "StoreConfiguration");
            assert!(error_message.contains("nosuchstore"), "{error_message}");
        }
        other => panic!("expected an init error, got {other:?}\n{logs}"),
    }
    let status = status.unwrap_or_else(|| panic!("the function did not exit\n{logs}"));
    assert!(!status.success(), "{logs}");
}

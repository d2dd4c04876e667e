//! One table of HTTP cases, run against both front-ends of the same
//! router: the FC server over TCP (the real `Application` on a random
//! port, driven by reqwest) and the real binary in Lambda mode under the
//! Runtime API emulator (`runtime_api`), the requests as Function URL
//! events. Both are started from the same settings; every case must get
//! the same status and error code from each.

use crate::end_to_end::{ANSWER_TIMEOUT, Function, response};
use crate::events::{AUTH_KEY, CALLBACK_URL, body_of, function_url, sample, signature};
use crate::redis_support::RedisServer;
use crate::runtime_api::RuntimeApi;
use ims_callback::configuration::Settings;
use ims_callback::server::Application;
use serde_json::Value;

const QUERY_TOKEN: &str = "cases-query-token";
const MAX_BODY: usize = 4096;
/// The media of `events/FileUploadComplete.json`.
const MEDIA: &str = "/v1/resources/media/c321b3a0041a71eda1590674a2ce6a17";

/// The settings of both front-ends, but for the store.
fn settings() -> Vec<(&'static str, String)> {
    vec![
        ("IMS_CALLBACK_AUTH_KEYS", AUTH_KEY.to_owned()),
        ("IMS_CALLBACK_URL", CALLBACK_URL.to_owned()),
        ("IMS_CALLBACK_PATH", "/ims".to_owned()),
        ("IMS_QUERY_TOKEN", QUERY_TOKEN.to_owned()),
        ("IMS_MAX_BODY", MAX_BODY.to_string()),
        ("IMS_DEADLINE_MS", "300".to_owned()),
    ]
}

/// One request and what it must be answered.
struct Case {
    name: &'static str,
    method: &'static str,
    /// Path and query.
    path: &'static str,
    headers: Vec<(&'static str, String)>,
    body: Option<Vec<u8>>,
    status: u16,
    /// The `error` of the JSON body, `None` for a success.
    error: Option<&'static str>,
    /// Text the answer's `problems` must contain.
    problem: Option<&'static str>,
}

impl Case {
    fn new(name: &'static str, method: &'static str, path: &'static str) -> Case {
        Case {
            name,
            method,
            path,
            headers: Vec::new(),
            body: None,
            status: 200,
            error: None,
            problem: None,
        }
    }

    fn body(mut self, body: impl Into<Vec<u8>>) -> Case {
        self.body = Some(body.into());
        self
    }

    /// Signed with `key` now.
    fn signed_with(mut self, key: &str) -> Case {
        let (ts, sig) = signature(key);
        self.headers.push(("x-ice-timestamp", ts));
        self.headers.push(("x-ice-signature", sig));
        self
    }

    fn signed(self) -> Case {
        self.signed_with(AUTH_KEY)
    }

    fn header(mut self, name: &'static str, value: &str) -> Case {
        self.headers.push((name, value.to_owned()));
        self
    }

    fn token(self, token: &str) -> Case {
        self.header("authorization", &format!("Bearer {token}"))
    }

    fn fails(mut self, status: u16, error: &'static str) -> Case {
        self.status = status;
        self.error = Some(error);
        self
    }

    fn problem(mut self, text: &'static str) -> Case {
        self.problem = Some(text);
        self
    }

    /// Checks an answer: its status and JSON body (`None` when empty).
    fn check(&self, front_end: &str, status: u16, body: Option<&Value>) {
        let what = format!("{front_end}, case {}: {status} {body:?}", self.name);
        assert_eq!(status, self.status, "{what}");
        let error = body.and_then(|b| b.get("error")).and_then(Value::as_str);
        assert_eq!(error, self.error, "{what}");
        if let Some(text) = self.problem {
            let problems = body.map(|b| b["problems"].to_string()).unwrap_or_default();
            assert!(problems.contains(text), "{what}");
        }
    }
}

/// The table, on a store that answers.
fn cases() -> Vec<Case> {
    let event = sample("FileUploadComplete");
    let invalid = r#"{"EventType":"FileUploadComplete","UserId":1,"EventTime":"2022-07-15T08:48:14Z","MessageBody":{}}"#;
    vec![
        Case::new("signed", "POST", "/ims")
            .body(event.clone())
            .signed(),
        Case::new("signed, with a query string", "POST", "/ims?source=ims")
            .body(event.clone())
            .signed(),
        Case::new("unsigned", "POST", "/ims")
            .body(event.clone())
            .fails(401, "unauthorized"),
        Case::new("badly signed", "POST", "/ims")
            .body(event.clone())
            .signed_with("not-the-auth-key")
            .fails(401, "unauthorized"),
        Case::new("wrong callback path", "POST", "/other")
            .body(event.clone())
            .signed()
            .fails(404, "not_found"),
        Case::new("body too large", "POST", "/ims")
            .body(vec![b' '; MAX_BODY + 1])
            .signed()
            .fails(413, "body_too_large"),
        Case::new("malformed JSON", "POST", "/ims")
            .body("{\n  \"EventType\": }")
            .signed()
            .fails(400, "invalid_event")
            .problem(r#""line":2"#),
        Case::new("invalid event", "POST", "/ims")
            .body(invalid)
            .signed()
            .fails(400, "invalid_event")
            .problem("/MessageBody/MediaId"),
        Case::new("health", "GET", "/healthz"),
        Case::new("health, with a query string", "GET", "/healthz?probe=1"),
        Case::new("read API with the token", "GET", MEDIA).token(QUERY_TOKEN),
        Case::new("read API without a token", "GET", MEDIA).fails(401, "unauthorized"),
        Case::new("read API with a wrong token", "GET", MEDIA)
            .token("nope")
            .fails(401, "unauthorized"),
        Case::new(
            "read API, absent resource",
            "GET",
            "/v1/resources/job/absent",
        )
        .token(QUERY_TOKEN)
        .fails(404, "not_found"),
        Case::new("read API, bad fingerprint", "GET", "/v1/events/nothex")
            .token(QUERY_TOKEN)
            .fails(400, "bad_request"),
        Case::new("unknown route", "GET", "/nowhere").fails(405, "method_not_allowed"),
        Case::new("GET on the callback path", "GET", "/ims").fails(405, "method_not_allowed"),
        Case::new("unknown method of a route", "DELETE", "/healthz")
            .fails(405, "method_not_allowed"),
        Case::new("GET on /invoke", "GET", "/invoke").fails(405, "method_not_allowed"),
    ]
}

/// The table on a frozen Redis (SIGSTOP: connections open, no answer):
/// the answer comes at the deadline (300 ms), before the store's own
/// timeout (1 s) would make it `unavailable`.
fn frozen_cases() -> Vec<Case> {
    vec![
        Case::new("frozen store", "POST", "/ims")
            .body(sample("FileUploadComplete"))
            .signed()
            .fails(503, "deadline_exceeded"),
    ]
}

/// Runs `cases` in order on the FC server over `store`.
async fn over_tcp(store: &str, cases: &[Case]) {
    let mut vars = settings();
    vars.push(("IMS_STORE", store.to_owned()));
    vars.push(("IMS_LISTEN", "127.0.0.1:0".to_owned()));
    let settings = Settings::from_lookup(|name| {
        vars.iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
    })
    .expect("valid settings");
    let app = Application::build(settings).await.expect("server starts");
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until(std::future::pending()));
    let client = reqwest::Client::new();
    for case in cases {
        let method = reqwest::Method::from_bytes(case.method.as_bytes()).unwrap();
        let mut request = client
            .request(method, format!("{base}{}", case.path))
            .header("content-type", "application/json");
        for (name, value) in &case.headers {
            request = request.header(*name, value);
        }
        if let Some(body) = &case.body {
            request = request.body(body.clone());
        }
        let answer = request.send().await.expect("answered");
        let status = answer.status().as_u16();
        let bytes = answer.bytes().await.expect("a body");
        let body: Option<Value> = (!bytes.is_empty()).then(|| {
            serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{}: {e}", case.name))
        });
        case.check("FC server", status, body.as_ref());
    }
}

/// Runs `cases` in order as Function URL invocations of the real binary
/// over `store`; every other body is sent base64-encoded.
async fn under_lambda(store: &str, cases: &[Case]) {
    let mut api = RuntimeApi::start().await;
    // Request ids go into Runtime API paths: no spaces.
    let ids: Vec<String> = (0..cases.len()).map(|i| format!("case-{i}")).collect();
    for (i, case) in cases.iter().enumerate() {
        let headers: Vec<(&str, &str)> =
            case.headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let event = function_url(
            case.method,
            case.path,
            &headers,
            case.body.as_deref(),
            i % 2 == 1,
        );
        api.invoke(&ids[i], event);
    }
    let mut vars = settings();
    vars.push(("IMS_STORE", store.to_owned()));
    let vars: Vec<(&str, &str)> = vars.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let function = Function::start(api.addr, &vars);
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let answers = api.answers(&ids, ANSWER_TIMEOUT).await;
    let logs = function.stop();
    for (case, answer) in cases.iter().zip(&answers) {
        let answer = response(answer);
        assert_eq!(answer["isBase64Encoded"], false, "{answer}");
        let status = u16::try_from(answer["statusCode"].as_u64().unwrap_or_default()).unwrap();
        let body = (!answer["body"].is_null()).then(|| body_of(answer));
        let lambda = format!("Lambda (logs:\n{logs})");
        case.check(&lambda, status, body.as_ref());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_front_ends_answer_the_table_alike() {
    let cases = cases();
    tokio::join!(over_tcp("memory", &cases), under_lambda("memory", &cases));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_front_ends_answer_a_frozen_store_within_the_deadline() {
    let redis = tokio::task::spawn_blocking(|| RedisServer::start(&[]))
        .await
        .expect("redis-server");
    redis.signal(libc::SIGSTOP);
    let url = |prefix: &str| format!("redis://127.0.0.1:{}/?prefix={prefix}%3A", redis.port);
    let (fc, lambda) = (url("fc"), url("lambda"));
    let cases = frozen_cases();
    tokio::join!(over_tcp(&fc, &cases), under_lambda(&lambda, &cases));
    redis.signal(libc::SIGCONT);
}

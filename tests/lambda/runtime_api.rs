//! A local implementation of the AWS Lambda Runtime API (the part a
//! custom runtime talks to): the test queues invocations, the function
//! under test polls `GET …/invocation/next` for them, and everything it
//! posts back (responses, invocation errors, init errors) is recorded.
//!
//! <https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html>

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::{Mutex, mpsc};

/// The ARN the mock hands to every invocation.
pub const FUNCTION_ARN: &str = "arn:aws:lambda:eu-central-1:123456789012:function:ims-callback";

/// What the function posted back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Posted {
    /// `POST /invocation/{id}/response`.
    Response { request_id: String, body: Value },
    /// `POST /invocation/{id}/error`.
    Error {
        request_id: String,
        error_type: String,
        error_message: String,
    },
    /// `POST /init/error`.
    InitError {
        error_type: String,
        error_message: String,
    },
}

impl Posted {
    /// The invocation it answers (`None` for an init error).
    pub fn request_id(&self) -> Option<&str> {
        match self {
            Posted::Response { request_id, .. } | Posted::Error { request_id, .. } => {
                Some(request_id)
            }
            Posted::InitError { .. } => None,
        }
    }
}

#[derive(Clone)]
struct Shared {
    invocations: Arc<Mutex<mpsc::UnboundedReceiver<(String, Value)>>>,
    posted: mpsc::UnboundedSender<Posted>,
}

/// A running mock Runtime API on 127.0.0.1.
pub struct RuntimeApi {
    /// Its address: `AWS_LAMBDA_RUNTIME_API`.
    pub addr: SocketAddr,
    queue: mpsc::UnboundedSender<(String, Value)>,
    posted: mpsc::UnboundedReceiver<Posted>,
}

impl RuntimeApi {
    /// Starts the server on a free port.
    pub async fn start() -> RuntimeApi {
        let (queue, invocations) = mpsc::unbounded_channel();
        let (posted_tx, posted) = mpsc::unbounded_channel();
        let shared = Shared {
            invocations: Arc::new(Mutex::new(invocations)),
            posted: posted_tx,
        };
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(shared);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.expect("runtime API");
        });
        RuntimeApi {
            addr,
            queue,
            posted,
        }
    }

    /// Queues an invocation.
    pub fn invoke(&self, request_id: &str, event: Value) {
        self.queue
            .send((request_id.to_owned(), event))
            .expect("server running");
    }

    /// The next thing the function posted, waiting up to `timeout`.
    pub async fn next_posted(&mut self, timeout: Duration) -> Option<Posted> {
        tokio::time::timeout(timeout, self.posted.recv())
            .await
            .ok()
            .flatten()
    }

    /// What the function posted for each of `request_ids`, in that order,
    /// waiting up to `timeout` in all.
    pub async fn answers(&mut self, request_ids: &[&str], timeout: Duration) -> Vec<Posted> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut got: Vec<Posted> = Vec::new();
        while !request_ids
            .iter()
            .all(|id| got.iter().any(|p| p.request_id() == Some(*id)))
        {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next_posted(left).await {
                Some(p) => got.push(p),
                None => panic!(
                    "no answer for every one of {request_ids:?} within {timeout:?}; got {got:#?}"
                ),
            }
        }
        request_ids
            .iter()
            .map(|id| {
                let mine: Vec<&Posted> =
                    got.iter().filter(|p| p.request_id() == Some(*id)).collect();
                assert_eq!(mine.len(), 1, "{id} answered {} times", mine.len());
                mine[0].clone()
            })
            .collect()
    }
}

/// `GET /2018-06-01/runtime/invocation/next`: long-polls for the next
/// queued invocation, like the real API.
async fn next(State(shared): State<Shared>) -> Response {
    let Some((request_id, event)) = shared.invocations.lock().await.recv().await else {
        return StatusCode::GONE.into_response();
    };
    let deadline_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis()
        + 60_000;
    (
        [
            ("content-type", "application/json".to_owned()),
            ("lambda-runtime-aws-request-id", request_id.clone()),
            ("lambda-runtime-deadline-ms", deadline_ms.to_string()),
            ("lambda-runtime-invoked-function-arn", FUNCTION_ARN.to_owned()),
            (
                "lambda-runtime-trace-id",
                format!("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0;Lineage=1:{request_id}"),
            ),
        ],
        event.to_string(),
    )
        .into_response()
}

async fn response(
    State(shared): State<Shared>,
    Path(request_id): Path<String>,
    body: Bytes,
) -> StatusCode {
    let body = serde_json::from_slice(&body)
        .unwrap_or_else(|e| Value::String(format!("not JSON ({e}): {body:?}")));
    let _ = shared.posted.send(Posted::Response { request_id, body });
    StatusCode::ACCEPTED
}

fn diagnostic(headers: &HeaderMap, body: &[u8]) -> (String, String) {
    let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    assert!(
        headers.contains_key("lambda-runtime-function-error-type"),
        "error posted without Lambda-Runtime-Function-Error-Type"
    );
    (
        body["errorType"].as_str().unwrap_or_default().to_owned(),
        body["errorMessage"].as_str().unwrap_or_default().to_owned(),
    )
}

async fn error(
    State(shared): State<Shared>,
    Path(request_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let (error_type, error_message) = diagnostic(&headers, &body);
    let _ = shared.posted.send(Posted::Error {
        request_id,
        error_type,
        error_message,
    });
    StatusCode::ACCEPTED
}

async fn init_error(State(shared): State<Shared>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let (error_type, error_message) = diagnostic(&headers, &body);
    let _ = shared.posted.send(Posted::InitError {
        error_type,
        error_message,
    });
    StatusCode::ACCEPTED
}

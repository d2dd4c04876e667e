//! AWS Lambda mode: when `AWS_LAMBDA_RUNTIME_API` is set, the binary runs
//! [`lambda_runtime`] with one handler, [`handle`], that tells the
//! invocations apart by the shape of their JSON and answers each the way
//! its invoker understands:
//!
//! | Shape | Recognised by | Answer |
//! |---|---|---|
//! | Function URL / API Gateway HTTP API request (payload format 2.0) | `requestContext.http` | an HTTP response object: `POST` (any path) is an IMS callback, `GET /healthz` the store's health, anything else 405 — statuses and bodies exactly as the FC HTTP server's |
//! | SQS batch | `Records[0].eventSource == "aws:sqs"` | `{"batchItemFailures":[…]}` listing the records to redeliver |
//! | A bare IMS event (direct or asynchronous invocation) | `EventType` | the outcome JSON; a Lambda error when the event was not stored |
//!
//! Anything else is a Lambda error saying what was expected.
//!
//! The rule everywhere is the HTTP server's: nothing is acknowledged unless
//! it is durably stored. An invalid event *is* stored (in the rejected
//! area, for inspection and replay), so it is acknowledged — redelivering
//! it cannot make it valid — while a record that is not stored is reported
//! as failed so that its sender (SQS, the async-invoke queue) keeps it.
//!
//! Every event is logged as one line with the Lambda request id, the
//! trigger, the event type, fingerprint, per-resource outcomes and latency;
//! signatures, keys and bodies are never logged.

use crate::configuration::Settings;
use crate::ingest::auth::{SIGNATURE_HEADER, TIMESTAMP_HEADER};
use crate::ingest::{Ingest, IngestError};
use crate::store::{AnyStore, Store, redact_url};
use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::encodings::Body;
use aws_lambda_events::http::{HeaderMap, HeaderValue, header};
use aws_lambda_events::lambda_function_urls::{
    LambdaFunctionUrlRequest, LambdaFunctionUrlResponse,
};
use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use base64::Engine as _;
use futures_util::StreamExt as _;
use serde::Deserialize as _;
use serde_json::{Value, json};
use std::time::Instant;

/// The variable the Lambda service sets for custom runtimes; its presence
/// selects Lambda mode.
pub const RUNTIME_API_ENV: &str = "AWS_LAMBDA_RUNTIME_API";

/// SQS records of one batch processed at the same time.
pub const SQS_CONCURRENCY: usize = 8;

/// Whether this process runs under AWS Lambda (`AWS_LAMBDA_RUNTIME_API` set
/// and not empty).
pub fn is_lambda() -> bool {
    std::env::var_os(RUNTIME_API_ENV).is_some_and(|v| !v.is_empty())
}

/// A failed invocation, reported to Lambda as `{errorType, errorMessage}`:
/// the invoker sees a failure (an asynchronous invocation is retried, then
/// sent to its failure destination; an SQS batch is redelivered whole).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error_type}: {message}")]
pub struct LambdaError {
    error_type: &'static str,
    message: String,
}

impl LambdaError {
    /// The event matches none of the shapes this function serves.
    pub const UNRECOGNIZED: &'static str = "UnrecognizedEvent";
    /// The event has a known shape but not its required fields.
    pub const MALFORMED: &'static str = "MalformedEvent";
    /// The store is unavailable or overloaded: retry.
    pub const UNAVAILABLE: &'static str = "StoreUnavailable";
    /// The event was not stored within the deadline: retry.
    pub const DEADLINE: &'static str = "DeadlineExceeded";
    /// A failure retrying is not expected to fix; the event was not stored.
    pub const INTERNAL: &'static str = "InternalError";

    fn new(error_type: &'static str, message: impl Into<String>) -> Self {
        LambdaError {
            error_type,
            message: message.into(),
        }
    }

    /// The Lambda `errorType` (one of the constants above).
    pub fn error_type(&self) -> &'static str {
        self.error_type
    }

    /// The Lambda `errorMessage`.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether redelivering the same event may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self.error_type, Self::UNAVAILABLE | Self::DEADLINE)
    }

    fn from_ingest(e: &IngestError) -> Self {
        let error_type = match e {
            IngestError::Unavailable(_) => Self::UNAVAILABLE,
            IngestError::Deadline(_) => Self::DEADLINE,
            _ => Self::INTERNAL,
        };
        LambdaError::new(error_type, format!("{}: {e}", e.code()))
    }
}

impl From<LambdaError> for lambda_runtime::Diagnostic {
    fn from(e: LambdaError) -> Self {
        lambda_runtime::Diagnostic {
            error_type: e.error_type.to_owned(),
            error_message: e.message,
        }
    }
}

/// Runs the Lambda runtime loop with [`handle`] until the process is
/// stopped (Lambda freezes and kills it; it never returns `Ok` on its own).
/// `max_body` bounds HTTP request bodies (after base64 decoding).
///
/// Requires `AWS_LAMBDA_RUNTIME_API`, `AWS_LAMBDA_FUNCTION_NAME`,
/// `AWS_LAMBDA_FUNCTION_MEMORY_SIZE` and `AWS_LAMBDA_FUNCTION_VERSION`
/// (the Lambda service sets them all) and a tokio runtime.
pub async fn run(ingest: Ingest, max_body: usize) -> Result<(), lambda_runtime::Error> {
    tracing::info!(
        store = ingest.store().kind(),
        signed_callbacks = ingest.requires_signature(),
        max_body,
        "starting the AWS Lambda runtime"
    );
    if !ingest.requires_signature() {
        tracing::warn!(
            "IMS_CALLBACK_AUTH_KEYS is not set: unsigned callbacks are accepted on HTTP triggers"
        );
    }
    let handler = lambda_runtime::service_fn(move |event: lambda_runtime::LambdaEvent<Value>| {
        let ingest = ingest.clone();
        async move {
            handle_invocation(
                &ingest,
                max_body,
                Some(&event.context.request_id),
                event.payload,
            )
            .await
        }
    });
    lambda_runtime::run(handler).await
}

/// Opens the store named in `settings` and runs [`run`]. A store that
/// cannot be opened is reported to the Runtime API as an initialization
/// error (`POST …/runtime/init/error`), then returned.
pub async fn run_with_settings(settings: Settings) -> Result<(), lambda_runtime::Error> {
    let store = match AnyStore::open(&settings.store).await {
        Ok(store) => store,
        Err(e) => {
            let message = format!("cannot open store {}: {e}", redact_url(&settings.store));
            tracing::error!(error = %message, "startup failed");
            report_init_error("StoreConfiguration", &message).await;
            return Err(message.into());
        }
    };
    let ingest = Ingest::new(store, settings.auth, settings.deadline);
    run(ingest, settings.max_body).await
}

/// Tells the Lambda service that initialization failed (`POST
/// /2018-06-01/runtime/init/error`), e.g. for an invalid setting, so the
/// failure shows in the invoker's error rather than as a bare exit. Does
/// nothing outside Lambda; a failure to report is logged.
pub async fn report_init_error(error_type: &str, message: &str) {
    use lambda_runtime_api_client::{PooledClient, body::Body as ApiBody, build_request};
    if !is_lambda() {
        return;
    }
    let body = json!({"errorType": error_type, "errorMessage": message}).to_string();
    let request = build_request()
        .method("POST")
        .uri("/2018-06-01/runtime/init/error")
        .header("lambda-runtime-function-error-type", "Runtime.InitError")
        .header(header::CONTENT_TYPE, "application/json")
        .body(ApiBody::from(body));
    let request = match request {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the init error report");
            return;
        }
    };
    let client = PooledClient::builder().build();
    match client.call(request).await {
        Ok(response) if response.status().is_success() => {}
        Ok(response) => {
            tracing::error!(status = %response.status(), "the Runtime API refused the init error report");
        }
        Err(e) => tracing::error!(error = %e, "cannot report the init error"),
    }
}

/// Handles one invocation: dispatches on the shape of `event` (see the
/// module documentation) and returns the JSON to answer with.
pub async fn handle(ingest: &Ingest, max_body: usize, event: Value) -> Result<Value, LambdaError> {
    handle_invocation(ingest, max_body, None, event).await
}

/// [`handle`], logging `request_id` (the Lambda request id) with every line.
pub async fn handle_invocation(
    ingest: &Ingest,
    max_body: usize,
    request_id: Option<&str>,
    event: Value,
) -> Result<Value, LambdaError> {
    let result = match shape(&event) {
        Ok(Shape::Http) => http(ingest, max_body, request_id, &event).await,
        Ok(Shape::Sqs) => sqs(ingest, request_id, &event).await,
        Ok(Shape::Event) => bare_event(ingest, request_id, &event).await,
        Err(e) => Err(e),
    };
    // Ingest failures are logged where they happen; this is the rest.
    if let Err(e) = &result
        && matches!(
            e.error_type,
            LambdaError::UNRECOGNIZED | LambdaError::MALFORMED
        )
    {
        tracing::warn!(
            request_id,
            error_type = e.error_type,
            detail = %e.message,
            "invocation refused"
        );
    }
    result
}

// ------------------------------------------------------------------ shapes

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Http,
    Sqs,
    Event,
}

const EXPECTED: &str = "expected a Function URL or API Gateway HTTP API request (payload \
                        format 2.0), an SQS batch, or an IMS event (an object with EventType)";

fn shape(event: &Value) -> Result<Shape, LambdaError> {
    let unrecognized = |what: String| LambdaError::new(LambdaError::UNRECOGNIZED, what);
    let Some(object) = event.as_object() else {
        let kind = match event {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Number(_) => "a number",
            Value::String(_) => "a string",
            Value::Array(_) => "an array",
            Value::Object(_) => unreachable!("handled above"),
        };
        return Err(unrecognized(format!("the event is {kind}; {EXPECTED}")));
    };
    if let Some(context) = object.get("requestContext") {
        if context.get("http").is_some_and(Value::is_object) {
            return Ok(Shape::Http);
        }
        if object.contains_key("httpMethod") {
            return Err(unrecognized(format!(
                "HTTP payload format 1.0 (API Gateway REST API, or an HTTP API or ALB \
                 configured for 1.0) is not supported: use payload format 2.0; {EXPECTED}"
            )));
        }
    }
    if let Some(records) = object.get("Records") {
        let first = records.as_array().and_then(|r| r.first());
        let source = first.and_then(|r| r.get("eventSource").or_else(|| r.get("EventSource")));
        return match source.and_then(Value::as_str) {
            Some("aws:sqs") => Ok(Shape::Sqs),
            Some(other) => Err(unrecognized(format!(
                "records from `{other}` are not supported; {EXPECTED}"
            ))),
            None => Err(unrecognized(format!(
                "`Records` without an eventSource (an empty batch?); {EXPECTED}"
            ))),
        };
    }
    if object.contains_key("EventType") {
        return Ok(Shape::Event);
    }
    let mut keys: Vec<&str> = object.keys().map(String::as_str).take(10).collect();
    if object.len() > keys.len() {
        keys.push("…");
    }
    Err(unrecognized(format!(
        "unrecognised event with top-level keys [{}]; {EXPECTED}",
        keys.join(", ")
    )))
}

fn malformed(what: &str, e: serde_json::Error) -> LambdaError {
    LambdaError::new(
        LambdaError::MALFORMED,
        format!("not a valid {what} event: {e}"),
    )
}

// -------------------------------------------------------------------- HTTP

/// Which HTTP trigger a request came from; it picks the response type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HttpTrigger {
    FunctionUrl,
    ApiGateway,
}

impl HttpTrigger {
    fn name(self) -> &'static str {
        match self {
            HttpTrigger::FunctionUrl => "function_url",
            HttpTrigger::ApiGateway => "apigw_http",
        }
    }
}

/// What the handler needs of a payload-format-2.0 request.
struct HttpRequest {
    trigger: HttpTrigger,
    method: String,
    path: String,
    headers: HeaderMap,
    body: Option<String>,
    is_base64_encoded: bool,
}

impl HttpRequest {
    fn parse(event: &Value) -> Result<Self, LambdaError> {
        // Function URLs are served on `<url-id>.lambda-url.<region>.on.aws`
        // (or a custom domain, which then looks like API Gateway — and both
        // formats are the same 2.0 payload, so that is harmless).
        let function_url = event
            .pointer("/requestContext/domainName")
            .and_then(Value::as_str)
            .is_some_and(|d| d.contains(".lambda-url."));
        if function_url && let Ok(r) = LambdaFunctionUrlRequest::deserialize(event) {
            let http = r.request_context.http;
            return Ok(HttpRequest {
                trigger: HttpTrigger::FunctionUrl,
                method: http.method.unwrap_or_default(),
                path: http.path.or(r.raw_path).unwrap_or_else(|| "/".to_owned()),
                headers: r.headers,
                body: r.body,
                is_base64_encoded: r.is_base64_encoded,
            });
        }
        let r = ApiGatewayV2httpRequest::deserialize(event)
            .map_err(|e| malformed("HTTP (payload format 2.0)", e))?;
        let context = r.request_context;
        let mut path = context
            .http
            .path
            .or(r.raw_path)
            .unwrap_or_else(|| "/".to_owned());
        // A named stage prefixes the path (`/prod/healthz`).
        if let Some(stage) = context.stage.as_deref().filter(|s| *s != "$default")
            && let Some(rest) = path.strip_prefix('/').and_then(|p| p.strip_prefix(stage))
            && (rest.is_empty() || rest.starts_with('/'))
        {
            path = if rest.is_empty() {
                "/".to_owned()
            } else {
                rest.to_owned()
            };
        }
        Ok(HttpRequest {
            trigger: if function_url {
                HttpTrigger::FunctionUrl
            } else {
                HttpTrigger::ApiGateway
            },
            method: context.http.method.as_str().to_owned(),
            path,
            headers: r.headers,
            body: r.body,
            is_base64_encoded: r.is_base64_encoded,
        })
    }

    /// The body bytes, decoded, within `max_body`.
    fn body(&self, max_body: usize) -> Result<Vec<u8>, HttpResponse> {
        let Some(body) = self.body.as_deref() else {
            return Ok(Vec::new());
        };
        let too_large = || {
            HttpResponse::error(
                413,
                "body_too_large",
                format!("the body exceeds the limit of {max_body} bytes"),
            )
        };
        if !self.is_base64_encoded {
            return if body.len() > max_body {
                Err(too_large())
            } else {
                Ok(body.as_bytes().to_vec())
            };
        }
        // Refuse before decoding what cannot fit anyway.
        if body.len() / 4 * 3 > max_body.saturating_add(3) {
            return Err(too_large());
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(body.trim_ascii())
            .map_err(|e| {
                HttpResponse::error(
                    400,
                    "body_unreadable",
                    format!("the body is marked base64-encoded but is not base64: {e}"),
                )
            })?;
        if bytes.len() > max_body {
            return Err(too_large());
        }
        Ok(bytes)
    }
}

/// A status, JSON body and extra headers, rendered as the trigger's
/// response type.
struct HttpResponse {
    status: u16,
    body: String,
    allow: Option<&'static str>,
}

impl HttpResponse {
    fn json(status: u16, body: &impl serde::Serialize) -> Self {
        HttpResponse {
            status,
            body: serde_json::to_string(body).expect("JSON values serialise"),
            allow: None,
        }
    }

    fn error(status: u16, code: &str, message: String) -> Self {
        Self::json(status, &json!({"error": code, "message": message}))
    }

    fn render(self, trigger: HttpTrigger) -> Value {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(allow) = self.allow {
            headers.insert(header::ALLOW, HeaderValue::from_static(allow));
        }
        let rendered = match trigger {
            HttpTrigger::FunctionUrl => {
                let mut r = LambdaFunctionUrlResponse::default();
                r.status_code = i64::from(self.status);
                r.headers = headers;
                r.body = Some(self.body);
                serde_json::to_value(r)
            }
            HttpTrigger::ApiGateway => {
                let mut r = ApiGatewayV2httpResponse::default();
                r.status_code = i64::from(self.status);
                r.headers = headers;
                r.body = Some(Body::Text(self.body));
                serde_json::to_value(r)
            }
        };
        rendered.expect("HTTP responses serialise")
    }
}

async fn http(
    ingest: &Ingest,
    max_body: usize,
    request_id: Option<&str>,
    event: &Value,
) -> Result<Value, LambdaError> {
    let request = HttpRequest::parse(event)?;
    let trigger = request.trigger;
    let response = match (request.method.as_str(), request.path.as_str()) {
        ("POST", _) => callback(ingest, max_body, request_id, &request).await,
        ("GET", "/healthz") => health(ingest).await,
        (method, path) => {
            tracing::warn!(
                request_id,
                trigger = trigger.name(),
                method,
                path,
                status = 405,
                "method not allowed"
            );
            HttpResponse {
                allow: Some("POST"),
                ..HttpResponse::error(
                    405,
                    "method_not_allowed",
                    "method not allowed; use POST".to_owned(),
                )
            }
        }
    };
    Ok(response.render(trigger))
}

async fn callback(
    ingest: &Ingest,
    max_body: usize,
    request_id: Option<&str>,
    request: &HttpRequest,
) -> HttpResponse {
    let started = Instant::now();
    let trigger = request.trigger.name();
    let body = match request.body(max_body) {
        Ok(body) => body,
        Err(response) => {
            tracing::warn!(
                request_id,
                trigger,
                status = response.status,
                detail = %response.body,
                "event not stored"
            );
            return response;
        }
    };
    let header = |name: &str| request.headers.get(name).map(HeaderValue::as_bytes);
    let result = ingest
        .callback(header(TIMESTAMP_HEADER), header(SIGNATURE_HEADER), &body)
        .await;
    match result {
        Ok(processed) => {
            crate::ingest::log::stored(request_id, trigger, None, &processed, started);
            HttpResponse::json(200, &processed)
        }
        Err(e) => {
            crate::ingest::log::not_stored(request_id, trigger, None, &e, started);
            HttpResponse::json(e.status(), &e.body())
        }
    }
}

async fn health(ingest: &Ingest) -> HttpResponse {
    let store = ingest.store();
    match store.health().await {
        Ok(()) => HttpResponse::json(200, &json!({"status": "ok", "store": store.kind()})),
        Err(e) => {
            tracing::warn!(store = store.kind(), error = %e, "health check failed");
            HttpResponse::error(503, "unavailable", e.to_string())
        }
    }
}

// --------------------------------------------------------------------- SQS

async fn sqs(
    ingest: &Ingest,
    request_id: Option<&str>,
    event: &Value,
) -> Result<Value, LambdaError> {
    let batch = SqsEvent::deserialize(event).map_err(|e| malformed("SQS", e))?;
    let results: Vec<(&SqsMessage, Result<(), IngestError>)> =
        futures_util::stream::iter(&batch.records)
            .map(|record| async move { (record, sqs_record(ingest, request_id, record).await) })
            .buffered(SQS_CONCURRENCY)
            .collect()
            .await;
    let mut response = SqsBatchResponse::default();
    for (record, result) in results {
        let Err(e) = result else { continue };
        match &record.message_id {
            Some(id) => {
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = id.clone();
                response.batch_item_failures.push(failure);
            }
            // Without an id the record cannot be named: fail the whole batch
            // so SQS redelivers it (the others are then duplicates).
            None => return Err(LambdaError::from_ingest(&e)),
        }
    }
    Ok(serde_json::to_value(response).expect("SQS batch responses serialise"))
}

/// Processes one record: `Ok` when it needs no redelivery — stored, or
/// invalid and kept in the rejected area — and the error otherwise.
async fn sqs_record(
    ingest: &Ingest,
    request_id: Option<&str>,
    record: &SqsMessage,
) -> Result<(), IngestError> {
    let started = Instant::now();
    let message_id = record.message_id.as_deref();
    let body = record.body.as_deref().unwrap_or_default();
    match ingest.process(body.as_bytes()).await {
        Ok(processed) => {
            crate::ingest::log::stored(request_id, "sqs", message_id, &processed, started);
            Ok(())
        }
        Err(e @ IngestError::Invalid { .. }) => {
            // Redelivering cannot make it valid; it is kept for replay.
            crate::ingest::log::not_stored(request_id, "sqs", message_id, &e, started);
            Ok(())
        }
        Err(e) => {
            crate::ingest::log::not_stored(request_id, "sqs", message_id, &e, started);
            Err(e)
        }
    }
}

// -------------------------------------------------------------- bare event

async fn bare_event(
    ingest: &Ingest,
    request_id: Option<&str>,
    event: &Value,
) -> Result<Value, LambdaError> {
    let started = Instant::now();
    let bytes = serde_json::to_vec(event).expect("JSON values serialise");
    match ingest.process(&bytes).await {
        Ok(processed) => {
            crate::ingest::log::stored(request_id, "direct", None, &processed, started);
            Ok(serde_json::to_value(&processed).expect("outcomes serialise"))
        }
        Err(e) => {
            crate::ingest::log::not_stored(request_id, "direct", None, &e, started);
            match e {
                // Kept in the rejected area: answering with the problems is
                // final, a retry would only store it again.
                IngestError::Invalid { .. } => Ok(e.body()),
                e => Err(LambdaError::from_ingest(&e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_are_told_apart() {
        let http = json!({"version": "2.0", "requestContext": {"http": {"method": "POST"}}});
        assert_eq!(shape(&http), Ok(Shape::Http));
        let sqs = json!({"Records": [{"eventSource": "aws:sqs", "body": "{}"}]});
        assert_eq!(shape(&sqs), Ok(Shape::Sqs));
        let event = json!({"EventType": "FileUploadComplete"});
        assert_eq!(shape(&event), Ok(Shape::Event));
        for (bad, says) in [
            (json!([1]), "an array"),
            (json!("x"), "a string"),
            (json!({"Records": [{"EventSource": "aws:sns"}]}), "aws:sns"),
            (json!({"Records": []}), "empty batch"),
            (
                json!({"httpMethod": "POST", "requestContext": {"stage": "prod"}}),
                "payload format 1.0",
            ),
            (json!({"foo": 1, "bar": 2}), "[bar, foo]"),
        ] {
            let e = shape(&bad).unwrap_err();
            assert_eq!(e.error_type(), LambdaError::UNRECOGNIZED);
            assert!(e.message().contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn errors_become_diagnostics() {
        let d = lambda_runtime::Diagnostic::from(LambdaError::new(LambdaError::DEADLINE, "late"));
        assert_eq!(
            (d.error_type.as_str(), d.error_message.as_str()),
            ("DeadlineExceeded", "late")
        );
        assert!(LambdaError::new(LambdaError::UNAVAILABLE, "").is_retryable());
        assert!(!LambdaError::new(LambdaError::INTERNAL, "").is_retryable());
    }
}

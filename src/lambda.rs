//! AWS Lambda mode: when `AWS_LAMBDA_RUNTIME_API` is set, the binary runs
//! [`lambda_runtime`] with one handler, [`Function::handle`], that tells
//! the invocations apart by the shape of their JSON and answers each the
//! way its invoker understands:
//!
//! | Shape | Recognised by | Answer |
//! |---|---|---|
//! | Function URL / API Gateway HTTP API request (payload format 2.0) | `requestContext.http` | served by the FC server's own axum router ([`crate::server::build_router`]): every route, body limit, deadline, auth rule, read API and error body is the same on both platforms |
//! | SQS batch | `Records[0].eventSource == "aws:sqs"` | `{"batchItemFailures":[…]}` listing the records to redeliver |
//! | A bare IMS event (direct or asynchronous invocation) | `EventType` | the outcome JSON; a Lambda error when the event was not stored |
//!
//! Anything else is a Lambda error saying what was expected (payload
//! format 1.0 included: an HTTP API or REST API must be set to 2.0).
//!
//! An HTTP event becomes an `http::Request` (method, raw path without the
//! API Gateway stage, raw query string, headers, cookies, body decoded
//! from base64 when so marked) and is served through
//! `tower::ServiceExt::oneshot`; the response goes back as the trigger's
//! response object (status, headers, cookies; the body as text when it is
//! UTF-8 text or JSON, base64 otherwise). This small conversion over the
//! `aws_lambda_events` types is used rather than the `lambda_http` crate:
//! that crate's `run` serves HTTP events only, so the shape dispatch above
//! would stay ours anyway, and it would add `encoding_rs`,
//! `serde_urlencoded` and the ALB/VPC Lattice types to a binary kept under
//! 8 MB. Event formats:
//! <https://docs.aws.amazon.com/lambda/latest/dg/urls-invocation.html>,
//! <https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-integrations-lambda.html>.
//!
//! `x-fc-*` request headers are removed on the way in: only Function
//! Compute sets them, so under Lambda they are a client's forgery (an
//! `x-fc-control-path: /invoke` would otherwise skip the IMS signature).
//! The Lambda request id is passed in `x-fc-request-id`, the header the
//! router logs as the request id.
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
use crate::ingest::{Ingest, IngestError};
use crate::server::{AppError, build_router};
use crate::store::{AnyStore, redact_url};
use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::encodings::Body as EventBody;
use aws_lambda_events::lambda_function_urls::{
    LambdaFunctionUrlRequest, LambdaFunctionUrlResponse,
};
use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, Uri, header};
use axum::response::IntoResponse as _;
use base64::Engine as _;
use futures_util::StreamExt as _;
use http_body_util::BodyExt as _;
use serde::Deserialize as _;
use serde_json::{Value, json};
use std::time::Instant;
use tower::ServiceExt as _;

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

/// What answers invocations: the HTTP router and, for SQS batches and
/// bare events, the same ingest core (one store, one pipeline). Cheap to
/// clone.
#[derive(Clone)]
pub struct Function {
    router: Router,
    ingest: Ingest,
}

impl Function {
    /// The handler for `settings` over an opened `store`.
    pub fn new(settings: &Settings, store: AnyStore) -> Self {
        let ingest = Ingest::new(store, settings.auth.clone(), settings.deadline)
            .with_limits(settings.limits())
            .with_change_feed(settings.change_feed);
        Function {
            router: build_router(ingest.clone(), settings),
            ingest,
        }
    }

    /// Handles one invocation: dispatches on the shape of `event` (see the
    /// module documentation) and returns the JSON to answer with.
    pub async fn handle(&self, event: Value) -> Result<Value, LambdaError> {
        self.handle_invocation(None, event).await
    }

    /// [`Function::handle`], logging `request_id` (the Lambda request id)
    /// with every line.
    pub async fn handle_invocation(
        &self,
        request_id: Option<&str>,
        event: Value,
    ) -> Result<Value, LambdaError> {
        let result = match shape(&event) {
            Ok(Shape::Http) => self.http(request_id, event).await,
            Ok(Shape::Sqs) => sqs(&self.ingest, request_id, &event).await,
            Ok(Shape::Event) => bare_event(&self.ingest, request_id, &event).await,
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

    async fn http(&self, request_id: Option<&str>, event: Value) -> Result<Value, LambdaError> {
        let (trigger, request) = HttpRequest::parse(event)?;
        let response = match request.into_http(request_id) {
            Ok(request) => match self.router.clone().oneshot(request).await {
                Ok(response) => response,
                Err(never) => match never {},
            },
            Err(e) => e.into_response(),
        };
        Ok(render(trigger, response).await)
    }
}

/// Runs the Lambda runtime loop with `function` until the process is
/// stopped (Lambda freezes and kills it; it never returns `Ok` on its own).
///
/// Requires `AWS_LAMBDA_RUNTIME_API`, `AWS_LAMBDA_FUNCTION_NAME`,
/// `AWS_LAMBDA_FUNCTION_MEMORY_SIZE` and `AWS_LAMBDA_FUNCTION_VERSION`
/// (the Lambda service sets them all) and a tokio runtime.
pub async fn run(function: Function) -> Result<(), lambda_runtime::Error> {
    tracing::info!(
        store = function.ingest.store().kind(),
        signed_callbacks = function.ingest.requires_signature(),
        "starting the AWS Lambda runtime"
    );
    let handler = lambda_runtime::service_fn(move |event: lambda_runtime::LambdaEvent<Value>| {
        let function = function.clone();
        async move {
            function
                .handle_invocation(Some(&event.context.request_id), event.payload)
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
    run(Function::new(&settings, store)).await
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

/// What a payload-format-2.0 request carries, before it becomes an
/// `http::Request`.
struct HttpRequest {
    method: Method,
    /// Raw (still percent-encoded), without the API Gateway stage.
    path: String,
    query: Option<String>,
    headers: HeaderMap,
    cookies: Vec<String>,
    body: Option<String>,
    is_base64_encoded: bool,
}

/// The header the router logs as the request id.
const REQUEST_ID: HeaderName = HeaderName::from_static("x-fc-request-id");

impl HttpRequest {
    fn parse(event: Value) -> Result<(HttpTrigger, Self), LambdaError> {
        // Function URLs are served on `<url-id>.lambda-url.<region>.on.aws`
        // (or a custom domain, which then looks like API Gateway — and both
        // formats are the same 2.0 payload, so that is harmless).
        let function_url = event
            .pointer("/requestContext/domainName")
            .and_then(Value::as_str)
            .is_some_and(|d| d.contains(".lambda-url."));
        if function_url && let Ok(r) = LambdaFunctionUrlRequest::deserialize(&event) {
            let http = r.request_context.http;
            let method = http.method.as_deref().unwrap_or_default();
            let method = Method::from_bytes(method.as_bytes()).map_err(|e| {
                LambdaError::new(
                    LambdaError::MALFORMED,
                    format!("not a valid HTTP (payload format 2.0) event: method `{method}`: {e}"),
                )
            })?;
            let request = HttpRequest {
                method,
                path: r.raw_path.or(http.path).unwrap_or_else(|| "/".to_owned()),
                query: r.raw_query_string,
                headers: r.headers,
                cookies: r.cookies.unwrap_or_default(),
                body: r.body,
                is_base64_encoded: r.is_base64_encoded,
            };
            return Ok((HttpTrigger::FunctionUrl, request));
        }
        let r = ApiGatewayV2httpRequest::deserialize(&event)
            .map_err(|e| malformed("HTTP (payload format 2.0)", e))?;
        let context = r.request_context;
        let mut path = r
            .raw_path
            .or(context.http.path)
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
        let trigger = if function_url {
            HttpTrigger::FunctionUrl
        } else {
            HttpTrigger::ApiGateway
        };
        let request = HttpRequest {
            method: context.http.method,
            path,
            query: r.raw_query_string,
            headers: r.headers,
            cookies: r.cookies.unwrap_or_default(),
            body: r.body,
            is_base64_encoded: r.is_base64_encoded,
        };
        Ok((trigger, request))
    }

    /// The request the router serves; an error when it cannot be one (a
    /// path that is not a URI, a body marked base64 that is not).
    fn into_http(self, request_id: Option<&str>) -> Result<Request<Body>, AppError> {
        let mut target = self.path;
        if let Some(query) = self.query.as_deref().filter(|q| !q.is_empty()) {
            target.push('?');
            target.push_str(query);
        }
        let uri: Uri = target.parse().map_err(|e| {
            AppError::BadRequest(format!("`{target}` is not a request target: {e}"))
        })?;
        // Lambda bounds the whole event (6 MB for a synchronous invocation),
        // so decoding before the router checks `IMS_MAX_BODY` is bounded too.
        let body = match self.body {
            None => Vec::new(),
            Some(body) if self.is_base64_encoded => base64::engine::general_purpose::STANDARD
                .decode(body.trim_ascii())
                .map_err(|e| {
                    AppError::BodyRead(format!("the body is marked base64-encoded but is not: {e}"))
                })?,
            Some(body) => body.into_bytes(),
        };
        let mut headers = self.headers;
        let forged: Vec<HeaderName> = headers
            .keys()
            .filter(|name| name.as_str().starts_with("x-fc-"))
            .cloned()
            .collect();
        for name in forged {
            headers.remove(name);
        }
        if let Some(id) = request_id.and_then(|id| HeaderValue::from_str(id).ok()) {
            headers.insert(REQUEST_ID, id);
        }
        // Payload format 2.0 carries the `Cookie` header as a list.
        if !self.cookies.is_empty() {
            let cookies = HeaderValue::from_str(&self.cookies.join("; "))
                .map_err(|_| AppError::BadRequest("a cookie is not a header value".to_owned()))?;
            headers.insert(header::COOKIE, cookies);
        }
        // The length of what the router reads, whatever the client declared.
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
        let mut request = Request::new(Body::from(body));
        *request.method_mut() = self.method;
        *request.uri_mut() = uri;
        *request.headers_mut() = headers;
        Ok(request)
    }
}

/// The router's `response` as the trigger's response object.
async fn render(trigger: HttpTrigger, response: Response<Body>) -> Value {
    let (parts, body) = response.into_parts();
    let bytes = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => {
            tracing::error!(error = %e, "the response body failed");
            let error = AppError::Ingest(IngestError::Internal(format!(
                "the response body failed: {e}"
            )));
            return Box::pin(render(trigger, error.into_response())).await;
        }
    };
    // Payload format 2.0 has one value per header (repeated ones joined
    // with commas) and `Set-Cookie` as a list of its own.
    let mut headers = HeaderMap::new();
    let mut cookies = Vec::new();
    for name in parts.headers.keys() {
        let values = parts
            .headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok());
        if name == header::SET_COOKIE {
            cookies.extend(values.map(str::to_owned));
            continue;
        }
        let joined = values.collect::<Vec<_>>().join(", ");
        if let Ok(value) = HeaderValue::from_str(&joined) {
            headers.insert(name.clone(), value);
        }
    }
    let (body, is_base64_encoded) = response_body(&headers, bytes);
    let status_code = i64::from(parts.status.as_u16());
    let rendered = match trigger {
        HttpTrigger::FunctionUrl => {
            let mut r = LambdaFunctionUrlResponse::default();
            r.status_code = status_code;
            r.headers = headers;
            r.body = body;
            r.is_base64_encoded = is_base64_encoded;
            r.cookies = cookies;
            serde_json::to_value(r)
        }
        HttpTrigger::ApiGateway => {
            let mut r = ApiGatewayV2httpResponse::default();
            r.status_code = status_code;
            r.headers = headers;
            r.body = body.map(EventBody::Text);
            r.is_base64_encoded = is_base64_encoded;
            r.cookies = cookies;
            serde_json::to_value(r)
        }
    };
    rendered.expect("HTTP responses of UTF-8 headers serialise")
}

/// The body as the response object carries it: text when it is UTF-8 of
/// a textual type, else base64 (`isBase64Encoded`); none when empty.
fn response_body(headers: &HeaderMap, bytes: Bytes) -> (Option<String>, bool) {
    if bytes.is_empty() {
        return (None, false);
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let textual = content_type.starts_with("text/")
        || content_type.contains("json")
        || content_type.contains("xml");
    if textual && let Ok(text) = std::str::from_utf8(&bytes) {
        return (Some(text.to_owned()), false);
    }
    let encoded = base64::engine::general_purpose::STANDARD.encode(&bytes);
    (Some(encoded), true)
}

// --------------------------------------------------------------------- SQS

async fn sqs(
    ingest: &Ingest,
    request_id: Option<&str>,
    event: &Value,
) -> Result<Value, LambdaError> {
    let started = Instant::now();
    let batch = SqsEvent::deserialize(event).map_err(|e| malformed("SQS", e))?;
    let results: Vec<(&SqsMessage, Result<(), IngestError>)> =
        futures_util::stream::iter(&batch.records)
            .map(|record| async move { (record, sqs_record(ingest, request_id, record).await) })
            .buffered(SQS_CONCURRENCY)
            .collect()
            .await;
    ingest
        .metrics()
        .request(crate::metrics::Trigger::Sqs, started.elapsed());
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
    let processed = ingest.process(&bytes).await;
    ingest
        .metrics()
        .request(crate::metrics::Trigger::Direct, started.elapsed());
    match processed {
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
    fn response_bodies_are_text_or_base64() {
        let typed = |content_type: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            headers
        };
        let json = typed("application/json");
        assert_eq!(
            response_body(&json, Bytes::from_static(b"{}")),
            (Some("{}".to_owned()), false)
        );
        assert_eq!(response_body(&json, Bytes::new()), (None, false));
        let png = typed("image/png");
        assert_eq!(
            response_body(&png, Bytes::from_static(b"\x89PNG")),
            (Some("iVBORw==".to_owned()), true)
        );
        // Not UTF-8, whatever the type says.
        assert_eq!(
            response_body(&typed("text/plain"), Bytes::from_static(b"\xff")),
            (Some("/w==".to_owned()), true)
        );
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

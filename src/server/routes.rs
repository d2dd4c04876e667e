//! Request handlers: the IMS callback (any POST path), FC's event
//! invocation and lifecycle hooks, health, and the read API.

use super::AppState;
use super::error::AppError;
use crate::ingest::auth::{SIGNATURE_HEADER, TIMESTAMP_HEADER};
use crate::ingest::{IngestError, MessageOutcome, log};
use crate::metrics::Trigger;
use crate::pipeline::{EVENT_PREFIX, Processed, read_state};
use crate::state::{Fingerprint, ResourceKey, ResourceKind};
use crate::store::Store;
use crate::telemetry::FcInvocation;
use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use std::time::Instant;

/// The header FC sets on event invocations and lifecycle hooks; a public
/// HTTP-trigger request never carries it.
const CONTROL_PATH: HeaderName = HeaderName::from_static("x-fc-control-path");
const REQUEST_ID: HeaderName = HeaderName::from_static("x-fc-request-id");
/// The answer header that alone tells FC whether an event invocation
/// failed (`404`) or not (`200`).
const FC_STATUS: HeaderName = HeaderName::from_static("x-fc-status");
// Header names as `HeaderName`s: a lookup by `&str` first validates and
// lower-cases the name, three times per callback.
const TIMESTAMP: HeaderName = HeaderName::from_static(TIMESTAMP_HEADER);
const SIGNATURE: HeaderName = HeaderName::from_static(SIGNATURE_HEADER);

/// Any route not matched elsewhere: a POST is an IMS callback.
///
/// Takes the whole request rather than `HeaderMap` and `Uri` extractors,
/// which would clone them on every callback.
pub async fn fallback(
    State(app): State<AppState>,
    request: Request,
) -> Result<JsonAnswer, AppError> {
    let (parts, body) = request.into_parts();
    let _fc = FcInvocation::start("Invoke", request_id(&parts.headers));
    if parts.method != Method::POST {
        return Err(AppError::MethodNotAllowed("POST"));
    }
    if app
        .callback_path
        .as_deref()
        .is_some_and(|p| p != parts.uri.path())
    {
        return Err(AppError::NotFound);
    }
    callback(&app, &parts.headers, body).await
}

/// `POST /invoke`: an FC event invocation only when FC marks it so;
/// otherwise it is an ordinary (signed) callback that happens to use this
/// path, so the public trigger cannot bypass the signature check.
pub async fn invoke(
    State(app): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, AppError> {
    let _fc = FcInvocation::start("Invoke", request_id(&headers));
    if !is_control(&headers, "/invoke") {
        if app
            .callback_path
            .as_deref()
            .is_some_and(|p| p != uri.path())
        {
            return Err(AppError::NotFound);
        }
        return Ok(callback(&app, &headers, body).await?.into_response());
    }
    if !app.trust_control_path && app.ingest.requires_signature() {
        // Off FC the header proves nothing; honouring it would let any
        // client skip the signature. Unsigned, it skips nothing, so local
        // runs can still be sent MNS envelopes.
        return Err(AppError::UntrustedControlPath);
    }
    Ok(event_invocation(&app, &headers, body).await)
}

/// An FC event invocation. FC drops the HTTP status and headers of the
/// answer except `x-fc-status`, which alone says whether the invocation
/// failed (custom runtime specification,
/// help.aliyun.com/en/functioncompute/fc-2-0/user-guide/custom-runtime-specification-details):
/// every answer carries it, `200` only when each message is stored or
/// kept as rejected, `404` otherwise so that the trigger redelivers. The
/// HTTP status agrees, for callers that do read it: 200, else 503 (500
/// when no retry can help, 413/408/400 when the body itself was not read).
async fn event_invocation(app: &AppState, headers: &HeaderMap, body: Body) -> Response {
    let started = Instant::now();
    let until = request_deadline(app);
    let request_id = request_id(headers);
    let bytes = match tokio::time::timeout_at(until, read_body(app, headers, body)).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(e)) => return refused_invocation(request_id, e),
        Err(_) => return refused_invocation(request_id, AppError::BodyTimeout),
    };
    if let Some(timer) = crate::ingest::trigger::timer(&bytes) {
        return timer_invocation(app, request_id, timer).await;
    }
    let invoked = app.ingest.invoke(&bytes, until).await;
    let trigger = if invoked.results.iter().any(|r| r.message_id.is_some()) {
        Trigger::Mns
    } else {
        Trigger::Invoke
    };
    app.ingest.metrics().request(trigger, started.elapsed());
    for r in &invoked.results {
        let trigger = if r.message_id.is_some() {
            "mns"
        } else {
            "invoke"
        };
        let message_id = r.message_id.as_deref();
        match &r.outcome {
            MessageOutcome::Stored(p) => log::stored(request_id, trigger, message_id, p, started),
            MessageOutcome::Rejected(e) | MessageOutcome::NotStored(e) => {
                log::not_stored(request_id, trigger, message_id, e, started)
            }
        }
    }
    let durable = invoked.is_durable();
    let status = match (durable, invoked.is_retryable()) {
        (true, _) => StatusCode::OK,
        (false, true) => StatusCode::SERVICE_UNAVAILABLE,
        (false, false) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let mut response = (status, Json(invoked.body())).into_response();
    set_fc_status(&mut response, durable);
    response
}

/// A timer trigger's tick: drain the forwarding of the change feed for up
/// to [`crate::forward::DRAIN_BUDGET`]. Always `x-fc-status: 200`: what is
/// not delivered stays in the log for the next tick.
async fn timer_invocation(
    app: &AppState,
    request_id: Option<&str>,
    timer: crate::ingest::trigger::Timer,
) -> Response {
    let body = match &app.forwarding {
        None => {
            tracing::warn!(
                request_id,
                trigger = %timer.name,
                "timer invocation, but forwarding is off (IMS_FORWARD_URL unset)"
            );
            json!({"timer": timer.name, "forwarding": "off"})
        }
        Some(forwarding) => {
            let until = tokio::time::Instant::now() + crate::forward::DRAIN_BUDGET;
            let summary = forwarding.forwarder().drain(until).await;
            tracing::info!(request_id, trigger = %timer.name, ?summary, "forwarding drained");
            json!({"timer": timer.name, "forwarded": summary})
        }
    };
    let mut response = (StatusCode::OK, Json(body)).into_response();
    set_fc_status(&mut response, true);
    response
}

/// An event invocation whose body could not be read: nothing was stored.
fn refused_invocation(request_id: Option<&str>, e: AppError) -> Response {
    tracing::warn!(request_id, trigger = "invoke", error = %e, "invocation not stored");
    let mut response = e.into_response();
    set_fc_status(&mut response, false);
    response
}

fn set_fc_status(response: &mut Response, durable: bool) {
    response.headers_mut().insert(
        FC_STATUS,
        HeaderValue::from_static(if durable { "200" } else { "404" }),
    );
}

async fn callback(app: &AppState, headers: &HeaderMap, body: Body) -> Result<JsonAnswer, AppError> {
    let started = Instant::now();
    let answer = answer_callback(app, headers, body, started).await;
    app.ingest
        .metrics()
        .request(Trigger::Http, started.elapsed());
    answer
}

async fn answer_callback(
    app: &AppState,
    headers: &HeaderMap,
    body: Body,
    started: Instant,
) -> Result<JsonAnswer, AppError> {
    let until = request_deadline(app);
    let timestamp = headers.get(&TIMESTAMP).map(|v| v.as_bytes());
    let signature = headers.get(&SIGNATURE).map(|v| v.as_bytes());
    // One timer covers reading the body and processing it; which of the
    // two it cut short decides the answer (408 or 503).
    let mut body_read = false;
    let read_flag = &mut body_read;
    let work = async move {
        let bytes = read_body(app, headers, body).await?;
        *read_flag = true;
        Ok::<_, AppError>(app.ingest.callback(timestamp, signature, &bytes).await)
    };
    let result = match tokio::time::timeout_at(until, work).await {
        Ok(read) => read?,
        Err(_) if body_read => {
            app.ingest.metrics().deadline_exceeded();
            Err(IngestError::Deadline(app.deadline))
        }
        Err(_) => return Err(AppError::BodyTimeout),
    };
    match &result {
        Ok(p) => log::stored(request_id(headers), "http", None, p, started),
        Err(e) => log::not_stored(request_id(headers), "http", None, e, started),
    }
    Ok(JsonAnswer(result?))
}

/// The answer to a processed callback: the outcome as JSON, written into a
/// buffer sized for it (axum's `Json` starts at 128 bytes and grows).
pub struct JsonAnswer(pub Processed);

impl axum::response::IntoResponse for JsonAnswer {
    fn into_response(self) -> axum::response::Response {
        let mut buf = Vec::with_capacity(512);
        serde_json::to_writer(&mut buf, &self.0).expect("an answer serialises");
        (
            [(header::CONTENT_TYPE, "application/json")],
            Bytes::from(buf),
        )
            .into_response()
    }
}

/// When the request must be answered: one deadline covers reading the
/// body and processing it, so the answer (503 at the latest) comes within
/// `IMS_DEADLINE_MS` of the request's head, under IMS's 3 s.
fn request_deadline(app: &AppState) -> tokio::time::Instant {
    tokio::time::Instant::now() + app.deadline
}

/// Reads the body within the size limit; the caller bounds the time.
async fn read_body(app: &AppState, headers: &HeaderMap, mut body: Body) -> Result<Bytes, AppError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(declared) = declared.filter(|&n| n > app.max_body as u64) {
        if declared <= LINGER_BYTES {
            linger(body);
        }
        return Err(AppError::TooLarge(app.max_body));
    }
    // A body that arrives as one chunk (the usual case) is kept as that
    // chunk, without a copy; only a second chunk starts a buffer.
    let mut first: Option<Bytes> = None;
    let mut data = Vec::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| AppError::BodyRead(e.to_string()))?;
        let Ok(chunk) = frame.into_data() else {
            continue;
        };
        seen += chunk.len();
        if seen > app.max_body {
            linger(body);
            return Err(AppError::TooLarge(app.max_body));
        }
        if first.is_none() && data.is_empty() {
            first = Some(chunk);
            continue;
        }
        if let Some(earlier) = first.take() {
            // Sized from the announced length, but not trusting it: a
            // client announcing 1 MiB and sending nothing must not cost 1 MiB.
            let expected = declared.map_or(0, |n| n.min(64 * 1024) as usize);
            data.reserve(expected.max(earlier.len() + chunk.len()));
            data.extend_from_slice(&earlier);
        }
        data.extend_from_slice(&chunk);
    }
    Ok(first.unwrap_or_else(|| Bytes::from(data)))
}

/// How much of a refused (413) body is still read and discarded, and for
/// how long, so that the client, still sending it, gets to read the 413
/// instead of a connection reset (a "lingering close").
const LINGER_BYTES: u64 = 8 * 1024 * 1024;
const LINGER_TIME: std::time::Duration = std::time::Duration::from_secs(2);

/// Reads and discards the rest of `body` in the background, up to
/// [`LINGER_BYTES`] and [`LINGER_TIME`]; then the connection closes.
fn linger(mut body: Body) {
    tokio::spawn(async move {
        let drain = async {
            let mut seen = 0u64;
            while let Some(Ok(frame)) = body.frame().await {
                seen += frame.data_ref().map_or(0, |d| d.len() as u64);
                if seen > LINGER_BYTES {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(LINGER_TIME, drain).await;
    });
}

fn is_control(headers: &HeaderMap, path: &str) -> bool {
    headers
        .get(&CONTROL_PATH)
        .is_some_and(|v| v.as_bytes() == path.as_bytes())
}

fn request_id(headers: &HeaderMap) -> Option<&str> {
    headers.get(&REQUEST_ID).and_then(|v| v.to_str().ok())
}

/// `GET /healthz`: 200 when the store answers, 503 otherwise.
pub async fn healthz(State(app): State<AppState>) -> Result<Json<Value>, AppError> {
    let store = app.ingest.store();
    match store.health().await {
        Ok(()) => Ok(Json(json!({
            "status": "ok",
            "store": store.kind(),
            "cas_retries": app.ingest.cas_retries(),
            "rejected_not_kept": app.ingest.rejected_not_kept(),
        }))),
        Err(e) => Err(AppError::Unavailable(e.to_string())),
    }
}

/// `POST /initialize` (FC Initializer hook): opens and warms the store
/// connection and logs how that went. A store that is down or slow does
/// not fail the hook: FC would answer the pending caller 200 with
/// `X-Fc-Error-Type: InitializationError`, and an IMS HTTP callback
/// answered so is lost at IMS (lifecycle hooks for custom runtimes,
/// alibabacloud.com/help/en/functioncompute/fc/lifecycle-hooks-for-function-instances-in-a-custom-runtime);
/// answered 200 instead, each request gets its own 503 (IMS retries, MNS
/// redelivers) until the store is back. Settings are validated before
/// the server listens (an invalid one exits at start-up), so the hook
/// fails (503) only on the settings that only the store can judge: a
/// store answering with an error no retry fixes (a wrong password or
/// database, a cluster URL for a single server).
pub async fn initialize(
    State(app): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Value>, AppError> {
    let _fc = FcInvocation::start("Initialize", request_id(&headers));
    let store = app.ingest.store();
    let started = Instant::now();
    let checked = tokio::time::timeout(app.deadline, store.health()).await;
    let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let problem = match checked {
        Ok(Ok(())) => {
            tracing::info!(store = store.kind(), elapsed_ms, "initialize: store ready");
            return Ok(Json(json!({"status": "ok", "store": store.kind()})));
        }
        Ok(Err(e)) if !e.is_retryable() => {
            tracing::error!(store = store.kind(), error = %e, elapsed_ms,
                "initialize: the store refuses these settings");
            return Err(AppError::Unavailable(format!(
                "the store refuses these settings: {e}"
            )));
        }
        Ok(Err(e)) => e.to_string(),
        Err(_) => format!("no answer within {:?}", app.deadline),
    };
    tracing::warn!(
        store = store.kind(),
        error = problem.as_str(),
        elapsed_ms,
        "initialize: store not reachable yet; requests answer 503 until it is"
    );
    Ok(Json(json!({
        "status": "degraded",
        "store": store.kind(),
        "error": problem,
    })))
}

/// How long the PreStop hook waits beyond one request deadline.
const DRAIN_MARGIN: std::time::Duration = std::time::Duration::from_secs(1);

/// `GET /pre-stop` (FC PreStop hook): waits until the events being
/// processed (callbacks and event invocations in flight) are answered,
/// at most `IMS_DEADLINE_MS` plus [`DRAIN_MARGIN`] — each is bounded by
/// that deadline, so the wait ends well within any sensible PreStop
/// timeout. Nothing is buffered: every acknowledged event is already
/// durable. FC then sends SIGTERM, which closes the connections.
pub async fn pre_stop(
    State(app): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Value>, AppError> {
    let _fc = FcInvocation::start("PreStop", request_id(&headers));
    let started = Instant::now();
    let still = app.ingest.drain(app.deadline + DRAIN_MARGIN).await;
    if let Some(forwarding) = &app.forwarding {
        forwarding.stop(super::FORWARDER_STOP).await;
    }
    let waited_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    if still == 0 {
        tracing::info!(waited_ms, "pre-stop: no event in flight");
    } else {
        tracing::warn!(
            waited_ms,
            in_flight = still,
            "pre-stop: events still in flight"
        );
    }
    Ok(Json(
        json!({"status": "ok", "in_flight": still, "waited_ms": waited_ms}),
    ))
}

/// `Ok` when the request carries the read API's bearer token.
pub(super) fn check_token(app: &AppState, headers: &HeaderMap) -> Result<(), AppError> {
    // Without a configured token the read API does not exist.
    let Some(token) = &app.query_token else {
        return Err(AppError::NotFound);
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
        .ok_or(AppError::BadToken)?;
    if crate::ingest::auth::secret_matches(token, given) {
        Ok(())
    } else {
        Err(AppError::BadToken)
    }
}

/// `GET /v1/resources/{kind}/{id}`: a resource's state.
pub async fn resource(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path((kind, id)): Path<(String, String)>,
) -> Result<Json<Value>, AppError> {
    check_token(&app, &headers)?;
    let kind = ResourceKind::parse(&kind).ok_or_else(|| {
        AppError::BadRequest(format!(
            "unknown resource kind `{kind}` (expected media, job, task or live-record)"
        ))
    })?;
    let key = ResourceKey::checked(kind, &id).map_err(AppError::BadRequest)?;
    match read_state(app.ingest.store(), &key).await {
        Ok(Some(state)) => Ok(Json(state.view())),
        Ok(None) => Err(AppError::NotFound),
        Err(e) if e.is_retryable() => Err(AppError::Unavailable(e.to_string())),
        Err(e) => {
            tracing::error!(key = key.as_str(), error = %e, "stored state unreadable");
            Err(AppError::Ingest(IngestError::Internal(e.to_string())))
        }
    }
}

/// `GET /v1/events/{fingerprint}`: a stored raw event.
pub async fn event(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(fingerprint): Path<String>,
) -> Result<axum::response::Response, AppError> {
    check_token(&app, &headers)?;
    let fingerprint = Fingerprint::parse(&fingerprint)
        .ok_or_else(|| AppError::BadRequest("a fingerprint is 32 lowercase hex digits".into()))?;
    let key = format!("{EVENT_PREFIX}{fingerprint}");
    match app.ingest.store().get(&key).await {
        Ok(Some(found)) => {
            Ok(([(header::CONTENT_TYPE, "application/json")], found.value).into_response())
        }
        Ok(None) => Err(AppError::NotFound),
        Err(e) => Err(AppError::Unavailable(e.to_string())),
    }
}

/// `GET /metrics`: the counts in the Prometheus text format, behind the
/// read API's token (404 without `IMS_QUERY_TOKEN`, like the read API).
pub async fn metrics(
    State(app): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    check_token(&app, &headers)?;
    Ok((
        [(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
        app.ingest.metrics().encode(),
    )
        .into_response())
}

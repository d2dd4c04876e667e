//! Request handlers: the IMS callback (any POST path), FC's event
//! invocation and lifecycle hooks, health, and the read API.

use super::AppState;
use super::error::AppError;
use crate::ingest::auth::{SIGNATURE_HEADER, TIMESTAMP_HEADER};
use crate::ingest::{IngestError, Invoked, log};
use crate::pipeline::{EVENT_PREFIX, Processed, read_state};
use crate::state::{Fingerprint, ResourceKey, ResourceKind};
use crate::store::Store;
use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, Method, Uri, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use std::time::Instant;

/// The header FC sets on event invocations and lifecycle hooks; a public
/// HTTP-trigger request never carries it.
const CONTROL_PATH: HeaderName = HeaderName::from_static("x-fc-control-path");
const REQUEST_ID: HeaderName = HeaderName::from_static("x-fc-request-id");
// Header names as `HeaderName`s: a lookup by `&str` first validates and
// lower-cases the name (~360 instructions each, three per callback).
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
) -> Result<axum::response::Response, AppError> {
    use axum::response::IntoResponse;
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
    let started = Instant::now();
    let until = request_deadline(&app);
    let bytes = tokio::time::timeout_at(until, read_body(&app, &headers, body))
        .await
        .map_err(|_| AppError::BodyTimeout)??;
    let result: Result<Invoked, IngestError> = within(&app, until, app.ingest.invoke(&bytes)).await;
    match &result {
        Ok(invoked) => {
            for r in &invoked.results {
                let trigger = if r.message_id.is_some() {
                    "mns"
                } else {
                    "invoke"
                };
                match &r.processed {
                    Some(p) => log::stored(
                        request_id(&headers),
                        trigger,
                        r.message_id.as_deref(),
                        p,
                        started,
                    ),
                    None => tracing::warn!(
                        request_id = request_id(&headers),
                        trigger,
                        message_id = r.message_id.as_deref(),
                        "invalid MNS message kept in the rejected area"
                    ),
                }
            }
        }
        Err(e) => log::not_stored(request_id(&headers), "invoke", None, e, started),
    }
    Ok(Json(result?).into_response())
}

async fn callback(app: &AppState, headers: &HeaderMap, body: Body) -> Result<JsonAnswer, AppError> {
    let started = Instant::now();
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
        Err(_) if body_read => Err(IngestError::Deadline(app.deadline)),
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
        self.0.write_json(&mut buf);
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

/// Runs `work` until `until`; past it, the answer is a 503 deadline error
/// (a write cut short may still land: the retry is then a duplicate).
async fn within<T>(
    app: &AppState,
    until: tokio::time::Instant,
    work: impl std::future::Future<Output = Result<T, IngestError>>,
) -> Result<T, IngestError> {
    tokio::time::timeout_at(until, work)
        .await
        .unwrap_or(Err(IngestError::Deadline(app.deadline)))
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
        }))),
        Err(e) => Err(AppError::Unavailable(e.to_string())),
    }
}

/// `POST /initialize` (FC lifecycle hook): connects to the store so the
/// first callback does not pay for it.
pub async fn initialize(state: State<AppState>) -> Result<Json<Value>, AppError> {
    healthz(state).await
}

/// `GET /pre-stop` (FC lifecycle hook): every acknowledged event is
/// already durable (each 200 waits for its commit), so there is nothing
/// to flush; FC then sends SIGTERM, which drains in-flight requests.
pub async fn pre_stop() -> Json<Value> {
    tracing::info!("pre-stop: nothing buffered; in-flight requests drain on SIGTERM");
    Json(json!({"status": "ok"}))
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
    if token.ct_eq(given) {
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
    let key = ResourceKey::new(kind, &id);
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
    use axum::response::IntoResponse;
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

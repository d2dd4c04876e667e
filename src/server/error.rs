//! The server's error type: every failure becomes a status code and a JSON
//! body `{error, message, …}` saying what was wrong.

use crate::ingest::IngestError;
use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// From the ingest core (auth, validation, store, deadline).
    #[error(transparent)]
    Ingest(#[from] IngestError),
    /// The body is larger than `IMS_MAX_BODY`.
    #[error("the body exceeds the limit of {0} bytes")]
    TooLarge(usize),
    /// The client did not send the body within the deadline.
    #[error("the body was not received within the deadline")]
    BodyTimeout,
    /// The body could not be read (connection error).
    #[error("could not read the body: {0}")]
    BodyRead(String),
    /// The route exists but not for this method.
    #[error("method not allowed; use {0}")]
    MethodNotAllowed(&'static str),
    /// Nothing here (or the read API is disabled).
    #[error("not found")]
    NotFound,
    /// The read API needs `Authorization: Bearer <IMS_QUERY_TOKEN>`.
    #[error("missing or wrong bearer token")]
    BadToken,
    /// A path parameter is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// The store failed while serving a read.
    #[error("{0}")]
    Unavailable(String),
    /// `x-fc-control-path` off Function Compute, where any client can send it.
    #[error(
        "x-fc-control-path is honoured only on Function Compute (FC_FUNCTION_NAME and \
         FC_INSTANCE_ID set), whose HTTP trigger refuses client x-fc-* headers; here it would \
         skip the signature check: send a signed callback (X-ICE-TIMESTAMP, X-ICE-SIGNATURE) \
         without it"
    )]
    UntrustedControlPath,
    /// `Content-Length` together with `Transfer-Encoding`: two framings.
    #[error(
        "the request has both Content-Length and Transfer-Encoding; send one (RFC 9112 §6.3: \
         such a message may be a request-smuggling attempt)"
    )]
    AmbiguousFraming,
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        // The callback routes log their own failures (one line per event);
        // a store that fails the health check or a read is logged here.
        if let AppError::Unavailable(detail) = &self {
            tracing::error!(detail = detail.as_str(), "store unavailable");
        }
        let (status, body): (StatusCode, Value) = match &self {
            AppError::Ingest(e) => (
                StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                e.body(),
            ),
            e => {
                let (status, code) = match e {
                    AppError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large"),
                    AppError::BodyTimeout => (StatusCode::REQUEST_TIMEOUT, "body_timeout"),
                    AppError::BodyRead(_) => (StatusCode::BAD_REQUEST, "body_unreadable"),
                    AppError::MethodNotAllowed(_) => {
                        (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed")
                    }
                    AppError::NotFound => (StatusCode::NOT_FOUND, "not_found"),
                    AppError::BadToken => (StatusCode::UNAUTHORIZED, "unauthorized"),
                    AppError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
                    AppError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
                    AppError::UntrustedControlPath => {
                        (StatusCode::UNAUTHORIZED, "untrusted_control_path")
                    }
                    AppError::AmbiguousFraming => (StatusCode::BAD_REQUEST, "ambiguous_framing"),
                    AppError::Ingest(_) => unreachable!("handled above"),
                };
                (status, json!({"error": code, "message": e.to_string()}))
            }
        };
        let mut response = (status, Json(body)).into_response();
        match &self {
            AppError::MethodNotAllowed(allow) => {
                response
                    .headers_mut()
                    .insert(header::ALLOW, HeaderValue::from_static(allow));
            }
            AppError::BadToken => {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            _ => {}
        }
        response
    }
}

//! Ingest: the transport-independent front of the pipeline that both
//! runtimes (the FC HTTP server and the Lambda adapter) call — signature
//! check, per-request deadline, FC/MNS invocation unwrapping — and the
//! mapping of every failure to a status code and a JSON error body.

pub mod auth;
pub mod log;
pub mod trigger;

use crate::event::Rejection;
use crate::pipeline::{Pipeline, PipelineError, Processed};
use crate::store::AnyStore;
use auth::{AuthError, CallbackAuth};
use serde::Serialize;
use serde_json::{Value, json};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Shared, cheap-to-clone ingest state: built once at startup.
#[derive(Debug, Clone)]
pub struct Ingest {
    pipeline: Pipeline<AnyStore>,
    auth: Option<CallbackAuth>,
    deadline: Duration,
}

/// Why an input was not acknowledged. [`IngestError::status`] is the HTTP
/// status to answer; only a 200 means "durably stored".
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// Signature check failed (401).
    #[error(transparent)]
    Unauthorized(#[from] AuthError),
    /// The event is invalid (400); it was kept under `stored_as`.
    #[error("{rejection}")]
    Invalid {
        /// Every problem.
        rejection: Rejection,
        /// Where the input was kept.
        stored_as: String,
    },
    /// An FC invocation body that cannot be split into messages (400).
    #[error("invalid invocation: {0}")]
    BadInvocation(String),
    /// The store is unavailable or overloaded (503: retry).
    #[error("{0}")]
    Unavailable(String),
    /// The deadline passed before the event was stored (503: retry).
    #[error("the event was not stored within the {0:?} deadline")]
    Deadline(Duration),
    /// A failure retrying will not fix (500).
    #[error("{0}")]
    Internal(String),
}

impl IngestError {
    /// The HTTP status code.
    pub fn status(&self) -> u16 {
        match self {
            IngestError::Unauthorized(_) => 401,
            IngestError::Invalid { .. } | IngestError::BadInvocation(_) => 400,
            IngestError::Unavailable(_) | IngestError::Deadline(_) => 503,
            IngestError::Internal(_) => 500,
        }
    }

    /// A short machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            IngestError::Unauthorized(_) => "unauthorized",
            IngestError::Invalid { .. } => "invalid_event",
            IngestError::BadInvocation(_) => "invalid_invocation",
            IngestError::Unavailable(_) => "unavailable",
            IngestError::Deadline(_) => "deadline_exceeded",
            IngestError::Internal(_) => "internal",
        }
    }

    /// Whether the sender should retry (IMS and FC do on any non-200).
    pub fn is_retryable(&self) -> bool {
        matches!(self, IngestError::Unavailable(_) | IngestError::Deadline(_))
    }

    /// The JSON error body: `{error, message}`, plus `problems` and
    /// `stored_as` for an invalid event.
    pub fn body(&self) -> Value {
        let mut body = json!({"error": self.code(), "message": self.to_string()});
        if let IngestError::Invalid {
            rejection,
            stored_as,
        } = self
        {
            body["message"] = json!("invalid IMS event");
            body["event_type"] = json!(rejection.event_type);
            body["problems"] = json!(rejection.problems);
            body["stored_as"] = json!(stored_as);
        }
        body
    }
}

impl From<PipelineError> for IngestError {
    fn from(e: PipelineError) -> Self {
        match e {
            PipelineError::Rejected {
                rejection,
                stored_as,
            } => IngestError::Invalid {
                rejection,
                stored_as,
            },
            e if e.is_retryable() => IngestError::Unavailable(e.to_string()),
            e => IngestError::Internal(e.to_string()),
        }
    }
}

/// The outcome of an FC event invocation.
#[derive(Debug, Serialize)]
pub struct Invoked {
    /// One entry per message carried.
    pub results: Vec<InvokedMessage>,
}

/// What happened to one message of an invocation.
#[derive(Debug, Serialize)]
pub struct InvokedMessage {
    /// The MNS message id, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// The outcome when stored.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub processed: Option<Processed>,
    /// The error body when rejected (the input is kept in the store).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejected: Option<Value>,
}

impl Ingest {
    /// Ingest over `store`, checking signatures with `auth` when given, and
    /// answering within `deadline`.
    pub fn new(store: AnyStore, auth: Option<CallbackAuth>, deadline: Duration) -> Self {
        Ingest {
            pipeline: Pipeline::new(store),
            auth,
            deadline,
        }
    }

    /// The store.
    pub fn store(&self) -> &AnyStore {
        self.pipeline.store()
    }

    /// Compare-and-set conflicts retried since start.
    pub fn cas_retries(&self) -> u64 {
        self.pipeline.cas_retries()
    }

    /// Whether callbacks must be signed.
    pub fn requires_signature(&self) -> bool {
        self.auth.is_some()
    }

    /// An IMS HTTP callback: check the signature headers, then process.
    /// Not bounded here: the server's one deadline covers reading the body
    /// and this, so a second timer per request would only cost.
    pub async fn callback(
        &self,
        timestamp: Option<&[u8]>,
        signature: Option<&[u8]>,
        body: &[u8],
    ) -> Result<Processed, IngestError> {
        if let Some(auth) = &self.auth {
            auth.verify(timestamp, signature, unix_now())?;
        }
        self.pipeline.process(body).await.map_err(IngestError::from)
    }

    /// Processes one IMS event within the deadline.
    pub async fn process(&self, body: &[u8]) -> Result<Processed, IngestError> {
        match tokio::time::timeout(self.deadline, self.pipeline.process(body)).await {
            Ok(result) => result.map_err(IngestError::from),
            Err(_) => Err(IngestError::Deadline(self.deadline)),
        }
    }

    /// An FC event invocation: a raw IMS event or MNS message(s). A single
    /// raw event answers like a callback; for MNS messages an invalid one
    /// is kept and reported but does not fail the invocation (redelivering
    /// it cannot help), while any retryable failure fails it whole so FC
    /// redelivers (the others are then duplicates).
    pub async fn invoke(&self, body: &[u8]) -> Result<Invoked, IngestError> {
        let messages =
            trigger::messages(body).map_err(|e| IngestError::BadInvocation(e.to_string()))?;
        let from_mns = messages.iter().any(|m| m.message_id.is_some()) || messages.len() > 1;
        let mut results = Vec::with_capacity(messages.len());
        for message in messages {
            let (processed, rejected) = match self.process(&message.body).await {
                Ok(p) => (Some(p), None),
                Err(e @ IngestError::Invalid { .. }) if from_mns => (None, Some(e.body())),
                Err(e) => return Err(e),
            };
            results.push(InvokedMessage {
                message_id: message.message_id,
                processed,
                rejected,
            });
        }
        Ok(Invoked { results })
    }
}

/// Seconds since the Unix epoch, by this machine's clock.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

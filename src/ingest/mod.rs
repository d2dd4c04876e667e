//! Ingest: the transport-independent front of the pipeline that both
//! runtimes (the FC HTTP server and the Lambda adapter) call — signature
//! check, per-request deadline, FC/MNS invocation unwrapping — and the
//! mapping of every failure to a status code and a JSON error body.

pub mod auth;
pub mod log;
pub mod trigger;

use crate::admission::{Limits, ReceivedAt};
use crate::event::Rejection;
use crate::metrics::Metrics;
use crate::pipeline::{Pipeline, PipelineError, Processed};
use crate::store::AnyStore;
use auth::{AuthError, CallbackAuth};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Shared, cheap-to-clone ingest state: built once at startup.
#[derive(Debug, Clone)]
pub struct Ingest {
    pipeline: Pipeline<AnyStore>,
    auth: Option<CallbackAuth>,
    deadline: Duration,
    in_flight: Arc<InFlight>,
}

/// Why an input was not acknowledged. [`IngestError::status`] is the HTTP
/// status to answer; only a 200 means "durably stored".
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// Signature check failed (401).
    #[error(transparent)]
    Unauthorized(#[from] AuthError),
    /// The event is invalid (400); it was kept under `stored_as`, unless
    /// the rejected area's hourly budget is spent (`None`).
    #[error("{rejection}")]
    Invalid {
        /// Every problem.
        rejection: Rejection,
        /// Where the input was kept.
        stored_as: Option<String>,
    },
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
            IngestError::Invalid { .. } => 400,
            IngestError::Unavailable(_) | IngestError::Deadline(_) => 503,
            IngestError::Internal(_) => 500,
        }
    }

    /// A short machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            IngestError::Unauthorized(_) => "unauthorized",
            IngestError::Invalid { .. } => "invalid_event",
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
            if stored_as.is_none() {
                body["not_kept"] = json!(
                    "the rejected area's hourly budget (IMS_REJECTED_BUDGET) is spent: \
                     this input was counted but not stored"
                );
            }
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

/// The outcome of an FC event invocation: one entry per message carried.
#[derive(Debug)]
pub struct Invoked {
    /// What happened to each message, in the order they came.
    pub results: Vec<InvokedMessage>,
    /// Set when the body could not be split into messages: why. It was
    /// then taken whole as one input (and kept as rejected).
    pub unsplit: Option<String>,
}

/// What happened to one message of an invocation.
#[derive(Debug)]
pub struct InvokedMessage {
    /// The MNS message id, when there is one.
    pub message_id: Option<String>,
    /// Stored, rejected and kept, or not stored.
    pub outcome: MessageOutcome,
}

/// The fate of one message.
#[derive(Debug)]
pub enum MessageOutcome {
    /// Durably stored.
    Stored(Processed),
    /// Invalid and kept in the rejected area ([`IngestError::Invalid`]):
    /// as good as stored, since a redelivery cannot fix it.
    Rejected(IngestError),
    /// Not durably stored (store down, deadline passed, …): the sender
    /// must deliver it again.
    NotStored(IngestError),
}

impl Invoked {
    /// Whether every message is stored or kept: only then may FC consider
    /// the invocation done (`x-fc-status: 200`).
    pub fn is_durable(&self) -> bool {
        self.results
            .iter()
            .all(|r| !matches!(r.outcome, MessageOutcome::NotStored(_)))
    }

    /// Whether any message that was not stored may be stored by a retry.
    pub fn is_retryable(&self) -> bool {
        self.results
            .iter()
            .any(|r| matches!(&r.outcome, MessageOutcome::NotStored(e) if e.is_retryable()))
    }

    /// The answer body: `{durable, stored, rejected, not_stored, results}`,
    /// each result `{message_id?, result, …}` with `result` `stored` (and
    /// the outcome's fields), `rejected` (and `rejected`: the error body)
    /// or `not_stored` (and `error`: the error body).
    pub fn body(&self) -> Value {
        let mut counts = [0usize; 3];
        let results: Vec<Value> = self
            .results
            .iter()
            .map(|r| {
                let mut entry = match &r.outcome {
                    MessageOutcome::Stored(p) => {
                        counts[0] += 1;
                        let mut v = serde_json::to_value(p).unwrap_or_else(|_| json!({}));
                        v["result"] = json!("stored");
                        v
                    }
                    MessageOutcome::Rejected(e) => {
                        counts[1] += 1;
                        json!({"result": "rejected", "rejected": e.body()})
                    }
                    MessageOutcome::NotStored(e) => {
                        counts[2] += 1;
                        json!({"result": "not_stored", "error": e.body()})
                    }
                };
                if let Some(id) = &r.message_id {
                    entry["message_id"] = json!(id);
                }
                entry
            })
            .collect();
        let mut body = json!({
            "durable": self.is_durable(),
            "stored": counts[0],
            "rejected": counts[1],
            "not_stored": counts[2],
            "results": results,
        });
        if let Some(why) = &self.unsplit {
            body["unsplit"] = json!(why);
        }
        body
    }
}

/// How many messages of one batch are processed at once: enough that a
/// batch of tens fits in the deadline, few enough not to flood the store.
const BATCH_CONCURRENCY: usize = 16;

/// Counts the events being processed, so that the PreStop hook can wait
/// for them.
#[derive(Debug, Default)]
struct InFlight {
    count: AtomicUsize,
    idle: tokio::sync::Notify,
}

/// One event in flight; dropping it (finished or cancelled) counts it out.
struct Entered<'a>(&'a InFlight);

impl InFlight {
    fn enter(&self) -> Entered<'_> {
        self.count.fetch_add(1, Ordering::SeqCst);
        Entered(self)
    }
}

impl Drop for Entered<'_> {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

impl Ingest {
    /// Ingest over `store`, checking signatures with `auth` when given, and
    /// answering within `deadline`, under the default [`Limits`].
    pub fn new(store: AnyStore, auth: Option<CallbackAuth>, deadline: Duration) -> Self {
        Ingest {
            pipeline: Pipeline::new(store).with_metrics(Arc::default()),
            auth,
            deadline,
            in_flight: Arc::default(),
        }
    }

    /// The same ingest under `limits` (clock skew, rejected budget).
    pub fn with_limits(self, limits: Limits) -> Self {
        let metrics = Arc::new(Metrics::new());
        Ingest {
            pipeline: Pipeline::with_limits(self.pipeline.store().clone(), limits)
                .with_metrics(metrics),
            ..self
        }
    }

    /// The same ingest with the change feed on or off (`IMS_CHANGE_FEED`).
    pub fn with_change_feed(self, on: bool) -> Self {
        Ingest {
            pipeline: self.pipeline.with_change_feed(on),
            ..self
        }
    }

    /// What this ingest and its pipeline counted (`GET /metrics`).
    pub fn metrics(&self) -> &Metrics {
        self.pipeline
            .metrics()
            .expect("an ingest's pipeline always counts")
    }

    /// Invalid inputs answered but not kept (rejected budget spent).
    pub fn rejected_not_kept(&self) -> u64 {
        self.pipeline.admission().rejected_not_kept()
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
            auth.verify(timestamp, signature, unix_now())
                .inspect_err(|_| self.metrics().auth_failure())?;
        }
        let _in_flight = self.in_flight.enter();
        self.pipeline
            .process(body, ReceivedAt::now())
            .await
            .map_err(IngestError::from)
    }

    /// Processes one IMS event within the deadline.
    pub async fn process(&self, body: &[u8]) -> Result<Processed, IngestError> {
        let work = self.pipeline.process(body, ReceivedAt::now());
        match tokio::time::timeout(self.deadline, work).await {
            Ok(result) => result.map_err(IngestError::from),
            Err(_) => {
                self.metrics().deadline_exceeded();
                Err(IngestError::Deadline(self.deadline))
            }
        }
    }

    /// An FC event invocation: a raw IMS event or MNS message(s), each
    /// processed (at most [`BATCH_CONCURRENCY`] at a time) and reported,
    /// whatever happens to the others; a message not stored by `until` is
    /// reported as such (its write may still land: a redelivery is then a
    /// duplicate). A body that cannot be split into messages (a batch
    /// mixing MNS messages with other values) is processed whole as one
    /// input, which validation rejects and keeps: redelivering it could
    /// never help, and the rejected area keeps it for inspection.
    pub async fn invoke(&self, body: &[u8], until: tokio::time::Instant) -> Invoked {
        let (messages, unsplit) = match trigger::messages(body) {
            Ok(messages) => (messages, None),
            Err(e) => (
                vec![trigger::Message {
                    message_id: None,
                    body: std::borrow::Cow::Borrowed(body),
                }],
                Some(e.to_string()),
            ),
        };
        // The futures are built first, so no closure is held across an
        // await (rustc then fails to prove the handler's future `Send`).
        let permits = tokio::sync::Semaphore::new(BATCH_CONCURRENCY);
        let pending: Vec<_> = messages
            .into_iter()
            .map(|message| self.invoke_one(&permits, message, until))
            .collect();
        let results = futures_util::future::join_all(pending).await;
        Invoked { results, unsplit }
    }

    async fn invoke_one(
        &self,
        permits: &tokio::sync::Semaphore,
        message: trigger::Message<'_>,
        until: tokio::time::Instant,
    ) -> InvokedMessage {
        // Never closed, so acquiring only waits.
        let _permit = permits.acquire().await;
        let _in_flight = self.in_flight.enter();
        let stored = tokio::time::timeout_at(
            until,
            self.pipeline.process(&message.body, ReceivedAt::now()),
        )
        .await;
        let outcome = match stored {
            Ok(Ok(processed)) => MessageOutcome::Stored(processed),
            Ok(Err(e)) => match IngestError::from(e) {
                e @ IngestError::Invalid { .. } => MessageOutcome::Rejected(e),
                e => MessageOutcome::NotStored(e),
            },
            Err(_) => {
                self.metrics().deadline_exceeded();
                MessageOutcome::NotStored(IngestError::Deadline(self.deadline))
            }
        };
        InvokedMessage {
            message_id: message.message_id,
            outcome,
        }
    }

    /// Waits until no event is being processed, or `limit` has passed;
    /// returns how many still are.
    pub async fn drain(&self, limit: Duration) -> usize {
        let wait = async {
            loop {
                let idle = self.in_flight.idle.notified();
                if self.in_flight.count.load(Ordering::SeqCst) == 0 {
                    return;
                }
                idle.await;
            }
        };
        let _ = tokio::time::timeout(limit, wait).await;
        self.in_flight.count.load(Ordering::SeqCst)
    }
}

/// Seconds since the Unix epoch, by this machine's clock.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

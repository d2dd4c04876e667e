//! The pipeline: bytes → validated event → transitions → store, and the
//! outcome that every entry point (CLI, HTTP server, Lambda) reports.
//!
//! The writes of one event, issued concurrently (over Redis they share one
//! multiplexed connection, so their round trips overlap; on redb they land
//! in the same group commit, one fsync):
//! - the raw event under `event/{fingerprint}` (create-if-absent; already
//!   there means a redelivery, and processing continues — an earlier
//!   attempt may have stopped half-way);
//! - each touched resource by read → merge → compare-and-set, retried on
//!   conflict up to [`MAX_CAS_ATTEMPTS`] times; a write that changes the
//!   state appends its [`ChangeRecord`] to the change log and moves the
//!   resource in the listing index ([`crate::listing`]) in the same atomic
//!   write (a duplicate or stale event writes nothing, so logs nothing).
//!
//! Only when every write succeeded does [`Pipeline::process`] return `Ok`, so nothing
//! acknowledged is ever lost; any store failure is returned as a retryable
//! error so the caller answers non-200 and IMS retries. Because the merge
//! is idempotent, a retry converges.
//! An invalid event is kept under `rejected/{fingerprint-of-bytes}` with
//! its problems, so it can be inspected and replayed, within the hourly
//! budget of the rejected area; an event dated too far ahead of the
//! receiver's clock is kept there too, never merged ([`crate::admission`]).
//! The clock is not read here: each input comes with its [`ReceivedAt`].

use crate::admission::{Admission, Limits, ReceivedAt};
use crate::changes::ChangeRecord;
use crate::event::catalogue::{Family, Kind, name_or_unknown};
use crate::event::{Event, Rejection, classify};
use crate::metrics::{EventOutcome, Metrics, StoreOp};
use crate::state::{self, ApplyOutcome, Fingerprint, ResourceKey, ResourceState};
use crate::store::{CasOutcome, Store, StoreError};
use crate::validate::Problem;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The pipeline over one store, with what its writers share: build one per
/// store at startup (clones share it) and process every event through it.
#[derive(Debug, Clone)]
pub struct Pipeline<S> {
    store: S,
    writers: std::sync::Arc<Writers>,
    admission: std::sync::Arc<Admission>,
    metrics: Option<std::sync::Arc<Metrics>>,
}

impl<S: Store> Pipeline<S> {
    /// A pipeline writing to `store`, with the default [`Limits`].
    pub fn new(store: S) -> Self {
        Self::with_limits(store, Limits::default())
    }

    /// A pipeline writing to `store` under `limits`.
    pub fn with_limits(store: S, limits: Limits) -> Self {
        Pipeline {
            store,
            writers: Default::default(),
            admission: std::sync::Arc::new(Admission::new(limits)),
            metrics: None,
        }
    }

    /// The same pipeline with the change feed on (the default) or off
    /// (`IMS_CHANGE_FEED=off`: states are written without a log entry).
    /// Call it at startup, before the pipeline is shared.
    pub fn with_change_feed(self, on: bool) -> Self {
        Pipeline {
            writers: std::sync::Arc::new(Writers {
                feed: on,
                ..Writers::default()
            }),
            ..self
        }
    }

    /// The same pipeline counting into `metrics` (a one-shot CLI run has
    /// none: nobody would read them).
    pub fn with_metrics(self, metrics: std::sync::Arc<Metrics>) -> Self {
        Pipeline {
            metrics: Some(metrics),
            ..self
        }
    }

    /// The metrics it counts into, if any.
    pub fn metrics(&self) -> Option<&Metrics> {
        self.metrics.as_deref()
    }

    /// The admission rules and their counts.
    pub fn admission(&self) -> &Admission {
        &self.admission
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// How many resource writes were retried after a compare-and-set
    /// conflict: a measure of contention on hot resources.
    pub fn cas_retries(&self) -> u64 {
        self.writers.cas_retries.load(Ordering::Relaxed)
    }

    /// Runs the whole pipeline on one raw input received at `at`.
    pub async fn process(&self, bytes: &[u8], at: ReceivedAt) -> Result<Processed, PipelineError> {
        process(self, bytes, at).await
    }

    /// Re-processes every stored rejected input not yet replayed (e.g. after
    /// an upgrade that learned a new type or relaxed a rule, or once an
    /// event from the future is no longer ahead of `at`). A record that now
    /// validates is applied and marked `replayed_as`.
    pub async fn replay(&self, at: ReceivedAt) -> Result<Vec<Replayed>, PipelineError> {
        replay(self, at).await
    }
}

/// What the writers of one pipeline share.
///
/// Writers of one resource take turns instead of racing: N concurrent
/// events for one hot resource would otherwise cost O(N²) conflicting
/// read–merge–CAS rounds. Striped by key hash, so the table stays
/// fixed-size; compare-and-set still guards against writers elsewhere
/// (other FC instances).
struct Writers {
    // Seeded per pipeline, so keys cannot be chosen to share one turn.
    hasher: foldhash::fast::RandomState,
    turns: Box<[tokio::sync::Mutex<()>]>,
    cas_retries: AtomicU64,
    /// Whether a state write appends its change to the log.
    feed: bool,
}

impl Default for Writers {
    fn default() -> Self {
        Writers {
            hasher: Default::default(),
            turns: (0..1024).map(|_| tokio::sync::Mutex::new(())).collect(),
            cas_retries: AtomicU64::new(0),
            feed: true,
        }
    }
}

impl std::fmt::Debug for Writers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writers")
            .field("cas_retries", &self.cas_retries)
            .finish_non_exhaustive()
    }
}

impl Writers {
    fn turn(&self, key: &str) -> &tokio::sync::Mutex<()> {
        use std::hash::BuildHasher;
        &self.turns[(self.hasher.hash_one(key) % self.turns.len() as u64) as usize]
    }
}

/// Bound on read–merge–CAS rounds for one resource before giving up with
/// a retryable [`PipelineError::Contention`].
pub const MAX_CAS_ATTEMPTS: u32 = 64;

/// Key prefix of raw events.
pub const EVENT_PREFIX: &str = "event/";
/// Key prefix of rejected inputs.
pub const REJECTED_PREFIX: &str = "rejected/";

// Validation bounds ids so that every resource key (`live-record/{id}` is
// the longest) fits the store's key limit: a valid event is never refused
// by the store.
const _: () =
    assert!("live-record/".len() + crate::event::types::MAX_ID_LEN <= crate::store::MAX_KEY_LEN);

/// What processing one event did, as reported to the caller.
#[derive(Debug, Clone, Serialize)]
pub struct Processed {
    /// The event's fingerprint (its raw record is `event/{fingerprint}`).
    pub fingerprint: Fingerprint,
    /// `EventType` as received.
    pub event_type: String,
    /// The family (`None`, serialised `unknown`, for an unrecognised type).
    #[serde(serialize_with = "name_or_unknown")]
    pub family: Option<Family>,
    /// The canonical kind (`None`, serialised `Unknown`, for an
    /// unrecognised type).
    #[serde(serialize_with = "name_or_unknown")]
    pub kind: Option<Kind>,
    /// True for event types IMS has announced it will retire.
    pub deprecated: bool,
    /// Per touched resource: what happened and its new status.
    pub resources: Vec<ResourceOutcome>,
}

/// What one event did to one resource.
#[derive(Debug, Clone, Serialize)]
pub struct ResourceOutcome {
    /// The resource key.
    pub key: String,
    /// `applied`, `duplicate` or `stale`.
    pub outcome: ApplyOutcome,
    /// The resource's status after the event.
    pub status: String,
}

/// Why processing failed.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The input is not a valid event; it was kept under `stored_as`
    /// (`None`: not kept, the rejected area's hourly budget is spent).
    #[error("{rejection}")]
    Rejected {
        /// Every problem found.
        rejection: Rejection,
        /// The key of the rejected record.
        stored_as: Option<String>,
    },
    /// The store failed; see [`StoreError::is_retryable`].
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Too many concurrent writers on one resource. Retryable.
    #[error("gave up updating {key} after {MAX_CAS_ATTEMPTS} conflicting writes")]
    Contention {
        /// The contended resource.
        key: String,
    },
    /// A stored record could not be decoded (written by an incompatible
    /// version, or corrupted). Not retryable.
    #[error("stored record {key} is unreadable: {message}")]
    Corrupt {
        /// The record's key.
        key: String,
        /// The decoding error.
        message: String,
    },
}

impl PipelineError {
    /// Whether retrying later may succeed (answer 503, not 400).
    pub fn is_retryable(&self) -> bool {
        match self {
            PipelineError::Store(e) => e.is_retryable(),
            PipelineError::Contention { .. } => true,
            PipelineError::Rejected { .. } | PipelineError::Corrupt { .. } => false,
        }
    }
}

/// The raw record of a valid event, `event/{fingerprint}`.
#[derive(Debug, Serialize, Deserialize)]
pub struct EventRecord {
    /// The fingerprint.
    pub fingerprint: Fingerprint,
    /// `EventType`.
    pub event_type: String,
    /// When this receiver first stored it (receiver clock, UTC).
    pub received_at: String,
    /// The event exactly as received.
    pub event: Value,
}

/// The record of an input that failed validation, `rejected/{fingerprint}`.
#[derive(Debug, Serialize, Deserialize)]
pub struct RejectedRecord {
    /// Fingerprint of the raw bytes.
    pub fingerprint: Fingerprint,
    /// When it was received (receiver clock, UTC).
    pub received_at: String,
    /// The `EventType`, when readable.
    #[serde(default)]
    pub event_type: Option<String>,
    /// The problems, as `path: reason` lines.
    pub problems: Vec<String>,
    /// The body, when it is UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// The body as lowercase hex, when it is not UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_hex: Option<String>,
    /// Set once a replay processed it successfully: the event fingerprint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replayed_as: Option<Fingerprint>,
}

impl RejectedRecord {
    /// The original bytes; an error when `body_hex` is not hex.
    pub fn bytes(&self) -> Result<Vec<u8>, hex::FromHexError> {
        match (&self.body, &self.body_hex) {
            (Some(body), _) => Ok(body.clone().into_bytes()),
            (None, Some(digits)) => hex::decode(digits),
            (None, None) => Ok(Vec::new()),
        }
    }
}

async fn process<S: Store>(
    pipeline: &Pipeline<S>,
    bytes: &[u8],
    at: ReceivedAt,
) -> Result<Processed, PipelineError> {
    let value = match crate::event::parse_json(bytes) {
        Ok(value) => value,
        Err(rejection) => return Err(reject(pipeline, bytes, rejection, at, false).await),
    };
    let fingerprint = Fingerprint::of_value(&value);
    let event = match Event::from_value(value) {
        Ok(event) => event,
        Err(rejection) => return Err(reject(pipeline, bytes, rejection, at, false).await),
    };
    if let Err(rejection) = pipeline.admission.check_time(&event, at) {
        // A valid event held back: kept whatever the budget, for replay.
        return Err(reject(pipeline, bytes, rejection, at, true).await);
    }
    apply(pipeline, event, &fingerprint, bytes, at).await
}

async fn apply<S: Store>(
    pipeline: &Pipeline<S>,
    event: Event,
    fingerprint: &Fingerprint,
    raw: &[u8],
    at: ReceivedAt,
) -> Result<Processed, PipelineError> {
    let (store, writers) = (&pipeline.store, &*pipeline.writers);
    let metrics = pipeline.metrics();
    let record = event_record(&event, fingerprint, raw, at);
    let (meta, changes) = state::derive(event, fingerprint);
    let key = format!("{EVENT_PREFIX}{fingerprint}");
    // A conflict on the raw record means it is already stored: a redelivery.
    let raw_stored = timed(
        metrics,
        StoreOp::CompareAndSet,
        store.compare_and_set(&key, None, &record),
    );
    let applied = futures_util::future::try_join_all(
        changes
            .iter()
            .map(|change| apply_change(store, writers, metrics, &meta, change)),
    );
    let (raw, resources) = futures_util::future::try_join(
        async { raw_stored.await.map_err(PipelineError::from) },
        applied,
    )
    .await?;
    let classification = classify(&meta.event_type);
    if let Some(m) = metrics {
        m.event(classification.kind(), event_outcome(raw, &resources));
    }
    Ok(Processed {
        fingerprint: fingerprint.clone(),
        event_type: meta.event_type,
        family: classification.family(),
        kind: classification.kind(),
        deprecated: classification.is_deprecated(),
        resources,
    })
}

/// The raw record of an event ([`EventRecord`]'s shape): written by hand
/// around the bytes as received, which it copies, where serialising the
/// event's `Value` again would re-encode every node of it on each write.
fn event_record(event: &Event, fingerprint: &Fingerprint, raw: &[u8], at: ReceivedAt) -> Vec<u8> {
    let mut record = Vec::with_capacity(raw.len() + event.event_type.len() + 128);
    record.extend_from_slice(b"{\"event_type\":");
    serde_json::to_writer(&mut record, &event.event_type).expect("a string serialises");
    record.extend_from_slice(b",\"fingerprint\":\"");
    // Hex digits: nothing to escape.
    record.extend_from_slice(fingerprint.as_str().as_bytes());
    record.extend_from_slice(b"\",\"received_at\":\"");
    // RFC 3339 digits and separators: nothing to escape.
    record.extend_from_slice(at.rfc3339().as_bytes());
    record.extend_from_slice(b"\",\"event\":");
    record.extend_from_slice(raw);
    record.push(b'}');
    record
}

/// What an event came to, from its resources' outcomes: applied when it
/// changed any, else a duplicate or stale; touching none, applied when its
/// raw record is new.
fn event_outcome(raw: CasOutcome, resources: &[ResourceOutcome]) -> EventOutcome {
    let any = |o: ApplyOutcome| resources.iter().any(|r| r.outcome == o);
    if resources.is_empty() {
        return match raw {
            CasOutcome::Written(_) => EventOutcome::Applied,
            CasOutcome::Conflict { .. } => EventOutcome::Duplicate,
        };
    }
    if any(ApplyOutcome::Applied) {
        EventOutcome::Applied
    } else if any(ApplyOutcome::Duplicate) {
        EventOutcome::Duplicate
    } else {
        EventOutcome::Stale
    }
}

/// `call`, timed and counted into `metrics` when there are any.
async fn timed<T>(
    metrics: Option<&Metrics>,
    op: StoreOp,
    call: impl std::future::Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    let Some(m) = metrics else {
        return call.await;
    };
    let started = std::time::Instant::now();
    let result = call.await;
    m.store_call(op, started.elapsed(), result.is_err());
    result
}

async fn apply_change<S: Store>(
    store: &S,
    writers: &Writers,
    metrics: Option<&Metrics>,
    meta: &state::EventMeta,
    change: &state::Change,
) -> Result<ResourceOutcome, PipelineError> {
    let key = change.key.as_str();
    let _turn = writers.turn(key).lock().await;
    for attempt in 0..MAX_CAS_ATTEMPTS {
        let current = timed(metrics, StoreOp::Get, store.get(key)).await?;
        let stored_len = current.as_ref().map_or(0, |found| found.value.len());
        let (mut resource, version) = match current {
            Some(found) => (decode_state(key, &found.value)?, Some(found.version)),
            None => (ResourceState::new(&change.key), None),
        };
        let previous_status = version.map(|_| resource.status.clone());
        let outcome = resource.apply(meta, change);
        if outcome == ApplyOutcome::Applied {
            // Sized from the stored record, which this one rarely outgrows by much.
            let mut bytes = Vec::with_capacity(stored_len + 512);
            resource.write_json(&mut bytes);
            // An applied change always leaves a history line to rank by
            // (`None`: nothing to list it by). The listing moves in the
            // same atomic write as the state and its log entry.
            let listing = crate::listing::listing_of(change.key.kind(), &resource);
            let written = if writers.feed {
                let logged = ChangeRecord {
                    key: key.to_owned(),
                    kind: change.key.kind().as_str().to_owned(),
                    status: resource.status.clone(),
                    previous_status,
                    event_type: meta.event_type.clone(),
                    fingerprint: meta.stamp.fingerprint.to_string(),
                    at: meta.at.clone(),
                    state: resource.view(),
                };
                let entry = logged.to_bytes();
                match &listing {
                    Some(listing) => {
                        let call = store.compare_and_set_listed(
                            key,
                            version,
                            &bytes,
                            Some(&entry),
                            listing,
                        );
                        timed(metrics, StoreOp::CompareAndSetLogged, call).await?
                    }
                    None => {
                        let call = store.compare_and_set_logged(key, version, &bytes, &entry);
                        timed(metrics, StoreOp::CompareAndSetLogged, call).await?
                    }
                }
            } else {
                match &listing {
                    Some(listing) => {
                        let call =
                            store.compare_and_set_listed(key, version, &bytes, None, listing);
                        timed(metrics, StoreOp::CompareAndSet, call).await?
                    }
                    None => {
                        let call = store.compare_and_set(key, version, &bytes);
                        timed(metrics, StoreOp::CompareAndSet, call).await?
                    }
                }
            };
            if let CasOutcome::Conflict { .. } = written {
                writers.cas_retries.fetch_add(1, Ordering::Relaxed);
                backoff(attempt).await;
                continue;
            }
        }
        return Ok(ResourceOutcome {
            key: key.to_owned(),
            outcome,
            status: resource.status,
        });
    }
    Err(PipelineError::Contention {
        key: key.to_owned(),
    })
}

fn decode_state(key: &str, bytes: &[u8]) -> Result<ResourceState, PipelineError> {
    serde_json::from_slice(bytes).map_err(|e| PipelineError::Corrupt {
        key: key.to_owned(),
        message: e.to_string(),
    })
}

/// Reads a resource's stored state.
pub async fn read_state<S: Store>(
    store: &S,
    key: &ResourceKey,
) -> Result<Option<ResourceState>, PipelineError> {
    match store.get(key.as_str()).await? {
        Some(found) => decode_state(key.as_str(), &found.value).map(Some),
        None => Ok(None),
    }
}

/// Jittered exponential backoff: 0.1 ms doubling to ~6 ms, so concurrent
/// writers of one hot resource spread out instead of colliding in lockstep.
async fn backoff(attempt: u32) {
    use std::hash::{BuildHasher, Hasher};
    let cap_us = 100u64 << attempt.min(6);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(attempt);
    let jitter = hasher.finish() % cap_us.max(1);
    tokio::time::sleep(Duration::from_micros(cap_us / 2 + jitter / 2)).await;
}

/// Keeps an invalid input under `rejected/…` (within the hour's budget,
/// unless `always`); returns the error to report.
async fn reject<S: Store>(
    pipeline: &Pipeline<S>,
    bytes: &[u8],
    rejection: Rejection,
    at: ReceivedAt,
    always: bool,
) -> PipelineError {
    let store = &pipeline.store;
    let fingerprint = Fingerprint::of_bytes(bytes);
    let key = format!("{REJECTED_PREFIX}{fingerprint}");
    let (body, body_hex) = match std::str::from_utf8(bytes) {
        Ok(s) => (Some(s.to_owned()), None),
        Err(_) => (None, Some(hex::encode(bytes))),
    };
    let record = RejectedRecord {
        fingerprint,
        received_at: at.rfc3339(),
        event_type: rejection.event_type.clone(),
        problems: rejection.problems.iter().map(Problem::to_string).collect(),
        body,
        body_hex,
        replayed_as: None,
    };
    let bytes = serde_json::to_vec(&record).expect("serialises");
    let counted = || {
        if let Some(m) = pipeline.metrics() {
            m.rejected(rejection.event_type.as_deref());
        }
    };
    if !pipeline.admission.charge(bytes.len() as u64, at, always) {
        counted();
        return PipelineError::Rejected {
            rejection,
            stored_as: None,
        };
    }
    let kept = timed(
        pipeline.metrics(),
        StoreOp::CompareAndSet,
        store.compare_and_set(&key, None, &bytes),
    );
    match kept.await {
        // Created, or already kept by an earlier delivery.
        Ok(_) => {
            counted();
            PipelineError::Rejected {
                rejection,
                stored_as: Some(key),
            }
        }
        // Not kept: answer "retry later" rather than "bad request", so the
        // input is not lost.
        Err(e) => PipelineError::Store(e),
    }
}

/// What replaying one rejected record did.
#[derive(Debug, Serialize)]
pub struct Replayed {
    /// The rejected record's key.
    pub key: String,
    /// The outcome when the input is now valid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub processed: Option<Processed>,
    /// The problems when it is still invalid.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

async fn replay<S: Store>(
    pipeline: &Pipeline<S>,
    at: ReceivedAt,
) -> Result<Vec<Replayed>, PipelineError> {
    let store = &pipeline.store;
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store
            .list_prefix(REJECTED_PREFIX, after.as_deref(), 100)
            .await?;
        let Some((last, _)) = page.last() else { break };
        after = Some(last.clone());
        for (key, found) in page {
            let mut record: RejectedRecord =
                serde_json::from_slice(&found.value).map_err(|e| PipelineError::Corrupt {
                    key: key.clone(),
                    message: e.to_string(),
                })?;
            if record.replayed_as.is_some() {
                continue;
            }
            let bytes = record.bytes().map_err(|e| PipelineError::Corrupt {
                key: key.clone(),
                message: format!("body_hex: {e}"),
            })?;
            match process(pipeline, &bytes, at).await {
                Ok(processed) => {
                    record.replayed_as = Some(processed.fingerprint.clone());
                    let value = serde_json::to_vec(&record).expect("serialises");
                    // A conflict means another replay marked it meanwhile.
                    store
                        .compare_and_set(&key, Some(found.version), &value)
                        .await?;
                    out.push(Replayed {
                        key,
                        processed: Some(processed),
                        problems: Vec::new(),
                    });
                }
                Err(PipelineError::Rejected { rejection, .. }) => out.push(Replayed {
                    key,
                    processed: None,
                    problems: rejection.problems.iter().map(Problem::to_string).collect(),
                }),
                Err(e) => return Err(e),
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answer_names_are_the_documented_ones() {
        let processed = Processed {
            fingerprint: Fingerprint::of_bytes(b"x"),
            event_type: "Odd".into(),
            family: None,
            kind: None,
            deprecated: false,
            resources: [
                ApplyOutcome::Applied,
                ApplyOutcome::Duplicate,
                ApplyOutcome::Stale,
            ]
            .map(|outcome| ResourceOutcome {
                key: "media/m-1".into(),
                outcome,
                status: "uploaded".into(),
            })
            .into(),
        };
        let answer = serde_json::to_value(&processed).unwrap();
        assert_eq!(answer["family"], "unknown");
        assert_eq!(answer["kind"], "Unknown");
        let outcomes: Vec<_> = answer["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["outcome"].as_str().unwrap())
            .collect();
        assert_eq!(outcomes, ["applied", "duplicate", "stale"]);
        let known = Processed {
            family: Some(Family::VideoAi),
            kind: Some(Kind::FileUploadComplete),
            ..processed
        };
        let answer = serde_json::to_value(&known).unwrap();
        assert_eq!(answer["family"], "video_ai");
        assert_eq!(answer["kind"], "FileUploadComplete");
    }
}

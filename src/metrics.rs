//! Operational metrics: what the pipeline and its front-ends counted since
//! the process started, served as `GET /metrics` in the Prometheus text
//! exposition format (version 0.0.4).
//!
//! The state belongs to the [`Ingest`](crate::ingest::Ingest) and its
//! pipeline (one [`Metrics`] per pipeline, no process statics), so two
//! servers in one test process count apart. Counting is an atomic add or
//! one uncontended lock per histogram observation: the labels are closed
//! sets known at start (the catalogue's event types plus `Unknown`, four
//! outcomes, the store calls, the triggers), so no label is hashed or
//! allocated on the hot path and the number of series is bounded whatever
//! `EventType` a client sends.
//!
//! Encoding is `prometheus-client`'s, the official Prometheus Rust client:
//! no HTTP server or global registry of its own, no default features.
//!
//! Other parts register their own metrics with [`Metrics::register`] at
//! start-up: forwarding (`src/forward*`) is where
//! `ims_callback_forward_lag_seconds` (a gauge) belongs.

use crate::event::catalogue::{CATALOGUE, Kind, Named, classify};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Metric, Registry};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// The `Content-Type` of `GET /metrics`.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// What one event came to, as `ims_callback_events_total{outcome}` counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventOutcome {
    /// It changed at least one resource (or, touching none, was stored anew).
    Applied,
    /// Already applied: a redelivery.
    Duplicate,
    /// Older than what is stored: nothing changed.
    Stale,
    /// Invalid (answered 400, kept in the rejected area within its budget).
    Rejected,
}

impl EventOutcome {
    const ALL: [EventOutcome; 4] = [
        EventOutcome::Applied,
        EventOutcome::Duplicate,
        EventOutcome::Stale,
        EventOutcome::Rejected,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            EventOutcome::Applied => "applied",
            EventOutcome::Duplicate => "duplicate",
            EventOutcome::Stale => "stale",
            EventOutcome::Rejected => "rejected",
        }
    }
}

/// A store call the pipeline makes (`op` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreOp {
    /// [`crate::store::Store::get`].
    Get,
    /// [`crate::store::Store::compare_and_set`].
    CompareAndSet,
    /// [`crate::store::Store::compare_and_set_logged`].
    CompareAndSetLogged,
    /// [`crate::store::Store::list_prefix`].
    ListPrefix,
}

impl StoreOp {
    const ALL: [StoreOp; 4] = [
        StoreOp::Get,
        StoreOp::CompareAndSet,
        StoreOp::CompareAndSetLogged,
        StoreOp::ListPrefix,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            StoreOp::Get => "get",
            StoreOp::CompareAndSet => "compare_and_set",
            StoreOp::CompareAndSetLogged => "compare_and_set_logged",
            StoreOp::ListPrefix => "list_prefix",
        }
    }
}

/// Where an ingest request came from (`trigger` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// An IMS HTTP callback (Function Compute, or Lambda's HTTP triggers).
    Http,
    /// An FC event invocation carrying a raw IMS event.
    Invoke,
    /// An FC event invocation from an MNS queue trigger.
    Mns,
    /// A Lambda SQS batch.
    Sqs,
    /// A bare IMS event invoked on Lambda.
    Direct,
}

impl Trigger {
    const ALL: [Trigger; 5] = [
        Trigger::Http,
        Trigger::Invoke,
        Trigger::Mns,
        Trigger::Sqs,
        Trigger::Direct,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Http => "http",
            Trigger::Invoke => "invoke",
            Trigger::Mns => "mns",
            Trigger::Sqs => "sqs",
            Trigger::Direct => "direct",
        }
    }
}

/// Request latency buckets, seconds: IMS waits 3 s.
const REQUEST_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];
/// Store latency buckets, seconds: from an in-process write to a timeout.
const STORE_BUCKETS: [f64; 12] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];

type Labels = [(&'static str, &'static str); 1];

/// The counts of one pipeline and its front-ends. Cheap to share (`Arc`).
#[derive(Debug)]
pub struct Metrics {
    registry: Mutex<Registry>,
    events: Arc<EventCounts>,
    auth_failures: Counter,
    deadline_exceeded: Counter,
    store_errors: Vec<Counter>,
    store_duration: Vec<Histogram>,
    request_duration: Vec<Histogram>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Every metric at zero, registered under the `ims_callback_` prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("ims_callback");
        let events = Arc::new(EventCounts::default());
        registry.register_collector(Box::new(Arc::clone(&events)));
        let auth_failures = Counter::default();
        registry.register(
            "auth_failures",
            "Callbacks refused for a missing, wrong or stale signature",
            auth_failures.clone(),
        );
        let deadline_exceeded = Counter::default();
        registry.register(
            "deadline_exceeded",
            "Events not stored within IMS_DEADLINE_MS (answered 503)",
            deadline_exceeded.clone(),
        );
        let errors = Family::<Labels, Counter>::default();
        registry.register(
            "store_errors",
            "Store calls of the pipeline that failed, by call",
            errors.clone(),
        );
        let store =
            Family::<Labels, Histogram>::new_with_constructor(|| Histogram::new(STORE_BUCKETS));
        registry.register(
            "store_duration_seconds",
            "Latency of the pipeline's store calls, by call",
            store.clone(),
        );
        let requests =
            Family::<Labels, Histogram>::new_with_constructor(|| Histogram::new(REQUEST_BUCKETS));
        registry.register(
            "request_duration_seconds",
            "Time to answer an ingest request (callback or invocation), by trigger",
            requests.clone(),
        );
        Metrics {
            registry: Mutex::new(registry),
            events,
            auth_failures,
            deadline_exceeded,
            store_errors: StoreOp::ALL
                .iter()
                .map(|op| errors.get_or_create(&[("op", op.as_str())]).clone())
                .collect(),
            store_duration: StoreOp::ALL
                .iter()
                .map(|op| store.get_or_create(&[("op", op.as_str())]).clone())
                .collect(),
            request_duration: Trigger::ALL
                .iter()
                .map(|t| requests.get_or_create(&[("trigger", t.as_str())]).clone())
                .collect(),
        }
    }

    /// Registers another metric (its name gets the `ims_callback_` prefix).
    pub fn register(&self, name: &str, help: &str, metric: impl Metric) {
        self.registry
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .register(name, help, metric);
    }

    /// Counts one event of `kind` (`None`: a type the catalogue lacks).
    pub fn event(&self, kind: Option<Kind>, outcome: EventOutcome) {
        self.events.add(kind, outcome);
    }

    /// Counts one invalid input whose `EventType` read `event_type`.
    pub fn rejected(&self, event_type: Option<&str>) {
        let kind = event_type.and_then(|t| classify(t).kind());
        self.events.add(kind, EventOutcome::Rejected);
    }

    /// Counts a refused callback signature.
    pub fn auth_failure(&self) {
        self.auth_failures.inc();
    }

    /// Counts an event cut short by the request deadline.
    pub fn deadline_exceeded(&self) {
        self.deadline_exceeded.inc();
    }

    /// Records one store call and whether it failed.
    pub fn store_call(&self, op: StoreOp, took: Duration, failed: bool) {
        self.store_duration[op as usize].observe(took.as_secs_f64());
        if failed {
            self.store_errors[op as usize].inc();
        }
    }

    /// Records the time to answer one ingest request.
    pub fn request(&self, trigger: Trigger, took: Duration) {
        self.request_duration[trigger as usize].observe(took.as_secs_f64());
    }

    /// How many events of `kind` came to `outcome`.
    pub fn events(&self, kind: Option<Kind>, outcome: EventOutcome) -> u64 {
        self.events.cell(kind, outcome).load(Ordering::Relaxed)
    }

    /// Every metric in the Prometheus text format.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        let registry = self.registry.lock().unwrap_or_else(PoisonError::into_inner);
        prometheus_client::encoding::prometheus_text::encode(&mut out, &registry)
            .expect("writing to a String cannot fail");
        out
    }
}

/// `ims_callback_events_total{event_type, outcome}`: one cell per
/// catalogue kind (and `Unknown`) and outcome; only the cells counted at
/// least once are exposed, so the page stays short.
#[derive(Debug)]
struct EventCounts(Box<[[AtomicU64; 4]]>);

impl Default for EventCounts {
    fn default() -> Self {
        EventCounts((0..=CATALOGUE.len()).map(|_| Default::default()).collect())
    }
}

impl EventCounts {
    fn cell(&self, kind: Option<Kind>, outcome: EventOutcome) -> &AtomicU64 {
        let row = kind.map_or(CATALOGUE.len(), |k| k as usize);
        &self.0[row][outcome as usize]
    }

    fn add(&self, kind: Option<Kind>, outcome: EventOutcome) {
        self.cell(kind, outcome).fetch_add(1, Ordering::Relaxed);
    }
}

impl Collector for EventCounts {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut family = encoder.encode_descriptor(
            "events",
            "Events processed, by canonical EventType (Unknown outside the catalogue) and outcome",
            None,
            MetricType::Counter,
        )?;
        for (row, cells) in self.0.iter().enumerate() {
            let event_type = CATALOGUE
                .get(row)
                .map_or(<Kind as Named>::UNKNOWN, |e| e.name);
            for (outcome, cell) in EventOutcome::ALL.iter().zip(cells) {
                let n = cell.load(Ordering::Relaxed);
                if n == 0 {
                    continue;
                }
                let labels = [("event_type", event_type), ("outcome", outcome.as_str())];
                ConstCounter::new(n).encode(family.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_names_the_documented_series() {
        let m = Metrics::new();
        m.event(Some(Kind::FileUploadComplete), EventOutcome::Applied);
        m.rejected(Some("NoSuchType"));
        m.auth_failure();
        m.store_call(StoreOp::Get, Duration::from_millis(2), true);
        m.request(Trigger::Http, Duration::from_millis(3));
        let page = m.encode();
        for line in [
            "ims_callback_events_total{event_type=\"FileUploadComplete\",outcome=\"applied\"} 1",
            "ims_callback_events_total{event_type=\"Unknown\",outcome=\"rejected\"} 1",
            "ims_callback_auth_failures_total 1",
            "ims_callback_deadline_exceeded_total 0",
            "ims_callback_store_errors_total{op=\"get\"} 1",
            "ims_callback_store_errors_total{op=\"compare_and_set\"} 0",
            "ims_callback_store_duration_seconds_count{op=\"get\"} 1",
            "ims_callback_request_duration_seconds_count{trigger=\"http\"} 1",
        ] {
            assert!(page.lines().any(|l| l == line), "{line} missing in\n{page}");
        }
        assert!(!page.contains("outcome=\"duplicate\""), "{page}");
    }
}

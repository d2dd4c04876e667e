//! The one log line per event that both runtimes write: request id,
//! trigger, event type, fingerprint, per-resource outcomes and latency on
//! success; status, error and latency otherwise. Never a body, a key or a
//! signature. Built from borrowed strings and a `Display` of the outcomes,
//! so a line costs no allocation of its own before the subscriber's.

use super::IngestError;
use crate::pipeline::{Processed, ResourceOutcome};
use std::fmt;
use std::time::Instant;

/// Where an event came from: `http`, `invoke`, `mns`, `sqs`, `direct` …
pub type Trigger = &'static str;

/// `key=outcome:status,…` without building intermediate strings.
struct Outcomes<'a>(&'a [ResourceOutcome]);

impl fmt::Display for Outcomes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{}={:?}:{}", r.key, r.outcome, r.status)?;
        }
        Ok(())
    }
}

fn micros(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// Logs a stored event.
pub fn stored(
    request_id: Option<&str>,
    trigger: Trigger,
    message_id: Option<&str>,
    p: &Processed,
    started: Instant,
) {
    tracing::info!(
        request_id,
        trigger,
        message_id,
        event_type = p.event_type.as_str(),
        fingerprint = p.fingerprint.as_str(),
        resources = %Outcomes(&p.resources),
        latency_us = micros(started),
        "event stored"
    );
    if p.deprecated {
        tracing::warn!(
            event_type = p.event_type.as_str(),
            "IMS retires this event type after 2025-12-31; subscribe to the MediaConvert* events"
        );
    }
}

/// Logs an event that was not stored (or was kept as rejected).
pub fn not_stored(
    request_id: Option<&str>,
    trigger: Trigger,
    message_id: Option<&str>,
    e: &IngestError,
    started: Instant,
) {
    let latency_us = micros(started);
    match e {
        IngestError::Invalid {
            rejection,
            stored_as: Some(stored_as),
        } => tracing::warn!(
            request_id,
            trigger,
            message_id,
            event_type = rejection.event_type.as_deref(),
            problems = rejection.problems.len(),
            stored_as = stored_as.as_str(),
            latency_us,
            "invalid event kept in the rejected area"
        ),
        IngestError::Invalid {
            rejection,
            stored_as: None,
        } => tracing::warn!(
            request_id,
            trigger,
            message_id,
            event_type = rejection.event_type.as_deref(),
            problems = rejection.problems.len(),
            latency_us,
            "invalid event answered 400 and counted, not kept: IMS_REJECTED_BUDGET is spent"
        ),
        e => tracing::warn!(
            request_id,
            trigger,
            message_id,
            status = e.status(),
            error = e.code(),
            retryable = e.is_retryable(),
            detail = %e,
            latency_us,
            "event not stored"
        ),
    }
}

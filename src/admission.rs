//! Admission rules applied at ingest, before anything is merged: the bound
//! on `EventTime`s from the future, and the hourly byte budget of the
//! rejected area.
//!
//! Both need the receiver's clock, which the resource state must never
//! see (the merge is a function of the set of events alone). So the clock
//! is read once, at the edge, into a [`ReceivedAt`] that is passed into the
//! pipeline; tests pass any instant they like.

use crate::event::{Event, Rejection};
use crate::validate::{Problem, Reason};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use time::OffsetDateTime;

/// When this receiver got an input, by its own clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ReceivedAt(OffsetDateTime);

impl ReceivedAt {
    /// Reads the clock: only the edges (server, Lambda adapter, CLI) call it.
    pub fn now() -> Self {
        ReceivedAt(OffsetDateTime::now_utc())
    }

    /// An instant given as nanoseconds since the Unix epoch (clamped to
    /// about ±7,900 years, within what the `time` crate represents).
    pub fn from_unix_nanos(nanos: i128) -> Self {
        const BOUND: i128 = 250_000_000_000_000_000_000;
        ReceivedAt(
            OffsetDateTime::from_unix_timestamp_nanos(nanos.clamp(-BOUND, BOUND))
                .unwrap_or(OffsetDateTime::UNIX_EPOCH),
        )
    }

    /// Nanoseconds since the Unix epoch.
    pub fn unix_nanos(&self) -> i128 {
        self.0.unix_timestamp_nanos()
    }

    /// RFC 3339, UTC: the `received_at` of stored records.
    pub fn rfc3339(&self) -> String {
        self.0
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default()
    }

    fn hour(&self) -> i64 {
        self.0.unix_timestamp().div_euclid(3600)
    }
}

/// The configured bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// How far an `EventTime` may be ahead of [`ReceivedAt`].
    pub max_clock_skew: Duration,
    /// Bytes of rejected records kept per clock hour.
    pub rejected_budget: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_clock_skew: crate::configuration::DEFAULT_MAX_CLOCK_SKEW,
            rejected_budget: crate::configuration::DEFAULT_REJECTED_BUDGET,
        }
    }
}

/// The rules and the budget's running count, shared by one pipeline's
/// clones. The budget is per process: each FC instance or Lambda
/// environment has its own, so N instances keep at most N budgets an hour.
#[derive(Debug)]
pub struct Admission {
    limits: Limits,
    window: Mutex<Window>,
    not_kept: AtomicU64,
}

#[derive(Debug, Default)]
struct Window {
    hour: i64,
    used: u64,
    announced: bool,
}

impl Admission {
    /// Rules with `limits`.
    pub fn new(limits: Limits) -> Self {
        Admission {
            limits,
            window: Mutex::new(Window::default()),
            not_kept: AtomicU64::new(0),
        }
    }

    /// The bounds.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Refuses an event dated more than the allowed skew after `at`.
    pub fn check_time(&self, event: &Event, at: ReceivedAt) -> Result<(), Rejection> {
        let skew = i128::try_from(self.limits.max_clock_skew.as_nanos()).unwrap_or(i128::MAX);
        if event.event_time.unix_nanos() > at.unix_nanos().saturating_add(skew) {
            return Err(Rejection {
                event_type: Some(event.event_type.clone()),
                problems: vec![Problem {
                    path: "/EventTime".into(),
                    reason: Reason::FromTheFuture {
                        max_skew_secs: self.limits.max_clock_skew.as_secs(),
                    },
                }],
            });
        }
        Ok(())
    }

    /// Accounts for a rejected record of `bytes` at `at`; false when the
    /// hour's budget is spent and the record must not be kept. `always`
    /// records (valid events held back for replay) are counted but never
    /// refused.
    pub fn charge(&self, bytes: u64, at: ReceivedAt, always: bool) -> bool {
        let mut window = self.window.lock().unwrap_or_else(|p| p.into_inner());
        if window.hour != at.hour() {
            *window = Window {
                hour: at.hour(),
                ..Window::default()
            };
        }
        let within = window.used.saturating_add(bytes) <= self.limits.rejected_budget;
        if within || always {
            window.used = window.used.saturating_add(bytes);
            return true;
        }
        self.not_kept.fetch_add(1, Ordering::Relaxed);
        if !window.announced {
            window.announced = true;
            tracing::warn!(
                budget = self.limits.rejected_budget,
                used = window.used,
                "IMS_REJECTED_BUDGET spent for this hour: further invalid inputs are answered 400 \
                 and counted, but not kept"
            );
        }
        false
    }

    /// Invalid inputs answered but not kept since start (budget spent).
    pub fn rejected_not_kept(&self) -> u64 {
        self.not_kept.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i128 = 3600 * 1_000_000_000;

    fn event_at(time: &str) -> Event {
        let mut value: serde_json::Value =
            serde_json::from_slice(include_bytes!("../events/FileUploadComplete.json")).unwrap();
        value["EventTime"] = serde_json::json!(time);
        Event::from_value(value).unwrap()
    }

    #[test]
    fn an_event_beyond_the_skew_is_refused_at_its_time() {
        let admission = Admission::new(Limits {
            max_clock_skew: Duration::from_secs(600),
            rejected_budget: 0,
        });
        // 2022-07-15T08:48:14Z
        let at = ReceivedAt::from_unix_nanos(1_657_874_894_000_000_000);
        assert!(
            admission
                .check_time(&event_at("2022-07-15T08:58:14Z"), at)
                .is_ok()
        );
        let e = admission
            .check_time(&event_at("2022-07-15T08:58:14.001Z"), at)
            .unwrap_err();
        assert_eq!(e.problems[0].path, "/EventTime");
        assert!(e.problems[0].to_string().contains("IMS_MAX_CLOCK_SKEW"));
        assert!(
            admission
                .check_time(&event_at("2000-01-01T00:00:00Z"), at)
                .is_ok()
        );
    }

    #[test]
    fn the_budget_refuses_past_its_bytes_and_renews_each_hour() {
        let admission = Admission::new(Limits {
            max_clock_skew: Duration::ZERO,
            rejected_budget: 100,
        });
        let at = ReceivedAt::from_unix_nanos(10 * HOUR);
        assert!(admission.charge(60, at, false));
        assert!(!admission.charge(41, at, false));
        assert!(admission.charge(40, at, false));
        assert!(!admission.charge(1, at, false));
        assert!(admission.charge(1000, at, true), "held-back valid events");
        assert_eq!(admission.rejected_not_kept(), 2);
        let next = ReceivedAt::from_unix_nanos(11 * HOUR);
        assert!(admission.charge(100, next, false));
    }
}

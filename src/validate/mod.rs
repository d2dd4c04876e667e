//! Validation: the vocabulary of problems (a JSON path and a reason) and the
//! [`validate`] entry point used by the CLI and, later, by every runtime.
//!
//! Parsing and validation are one pass (see [`crate::event`]): the typed
//! event is built field by field and every problem met on the way is
//! recorded, so a rejection always lists *all* problems at once.

mod problem;

pub use problem::{Problem, Reason};

use crate::event::catalogue::{Family, Kind, Named, classify};
use crate::event::{Event, Rejection};
use serde::Serialize;

/// The outcome of validating one input, as printed by `ims-callback validate`.
#[derive(Debug, Serialize)]
pub struct Report<'a> {
    /// Where the input came from (a file path, or `-` for stdin).
    pub file: &'a str,
    /// The `EventType` as received, when it could be read.
    pub event_type: Option<&'a str>,
    /// The family of the event type (`Some(None)`, serialised `unknown`,
    /// for an unrecognised type; `None` when no `EventType` was read).
    #[serde(serialize_with = "read_name_or_unknown")]
    pub family: Option<Option<Family>>,
    /// The canonical kind (`Some(None)`, serialised `Unknown`, for an
    /// unrecognised type; `None` when no `EventType` was read).
    #[serde(serialize_with = "read_name_or_unknown")]
    pub kind: Option<Option<Kind>>,
    /// Whether IMS has announced the retirement of this event type.
    pub deprecated: bool,
    /// True when the event parsed and validated with no problem.
    pub valid: bool,
    /// Every problem found, each with its JSON path.
    pub problems: &'a [Problem],
}

impl<'a> Report<'a> {
    /// Builds the report for the result of [`Event::from_slice`].
    pub fn new(file: &'a str, result: &'a Result<Event, Rejection>) -> Self {
        let (event_type, problems): (Option<&str>, &[Problem]) = match result {
            Ok(event) => (Some(event.event_type.as_str()), &[]),
            Err(rejection) => (rejection.event_type.as_deref(), &rejection.problems),
        };
        let classification = event_type.map(classify);
        Report {
            file,
            event_type,
            family: classification.map(|c| c.family()),
            kind: classification.map(|c| c.kind()),
            deprecated: classification.is_some_and(|c| c.is_deprecated()),
            valid: result.is_ok(),
            problems,
        }
    }
}

/// `null` when no `EventType` was read, else the name or `unknown`.
fn read_name_or_unknown<T: Named, S: serde::Serializer>(
    value: &Option<Option<T>>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match value {
        Some(named) => crate::event::catalogue::name_or_unknown(named, serializer),
        None => serializer.serialize_none(),
    }
}

/// Parses, classifies and validates one raw event.
pub fn validate(bytes: &[u8]) -> Result<Event, Rejection> {
    Event::from_slice(bytes)
}

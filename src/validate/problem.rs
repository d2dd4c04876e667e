//! A validation problem: where (a JSON pointer) and what (a [`Reason`]).

use serde::{Serialize, Serializer, ser::SerializeMap};
use std::fmt;

/// Why a value was rejected. The `Display` text is the stable, documented
/// wording that the `events/invalid/*.expect` files and API clients rely on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// The body is not JSON; `line`/`column` are 1-based.
    MalformedJson {
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// What the parser expected.
        message: String,
    },
    /// The top-level JSON value is not an object.
    NotAnObject {
        /// The JSON type that was found instead.
        found: &'static str,
    },
    /// A required field is absent (or `null`).
    Missing,
    /// A required field is absent although the status reports success.
    MissingOnSuccess,
    /// The value must be a string.
    ExpectedString,
    /// An identifier must be a non-empty string.
    EmptyId,
    /// An identifier is longer than the store keys it names can be.
    IdTooLong {
        /// The largest accepted length, in bytes.
        max: usize,
    },
    /// An identifier holds a control character, `/` or `..`: it names a
    /// store key and a read-API path segment, which must be unambiguous.
    IdForbiddenChar,
    /// The value must be a number (or a string holding one).
    ExpectedNumber,
    /// The value must be a non-negative integer (or a string holding one).
    ExpectedUnsigned,
    /// The value must be an integer (or a string holding one).
    ExpectedInteger,
    /// The value must be an object.
    ExpectedObject,
    /// The value must be an array.
    ExpectedArray,
    /// The value must be a UTC time in ISO 8601 form.
    NotUtcTime,
    /// The time is further ahead of the receiver's clock than
    /// `IMS_MAX_CLOCK_SKEW` allows; the event is kept for a later replay.
    FromTheFuture {
        /// The allowed skew, in seconds.
        max_skew_secs: u64,
    },
    /// A string that must hold JSON does not.
    EmbeddedJson {
        /// What the parser reported.
        message: String,
    },
}

impl Reason {
    /// The JSON type name of `value`, for messages.
    pub fn type_name(value: &serde_json::Value) -> &'static str {
        use serde_json::Value::*;
        match value {
            Null => "null",
            Bool(_) => "a boolean",
            Number(_) => "a number",
            String(_) => "a string",
            Array(_) => "an array",
            Object(_) => "an object",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::MalformedJson {
                line,
                column,
                message,
            } => write!(
                f,
                "malformed JSON at line {line} column {column}: {message}"
            ),
            Reason::NotAnObject { found } => {
                write!(f, "an IMS event must be a JSON object, found {found}")
            }
            Reason::Missing => f.write_str("required field missing"),
            Reason::MissingOnSuccess => {
                f.write_str("required field missing (required when the status is a success)")
            }
            Reason::ExpectedString => f.write_str("expected a string"),
            Reason::EmptyId => f.write_str("must be a non-empty string"),
            Reason::IdTooLong { max } => write!(f, "must be an identifier of at most {max} bytes"),
            Reason::IdForbiddenChar => {
                f.write_str("must not contain control characters, `/` or `..`")
            }
            Reason::ExpectedNumber => f.write_str("expected a number or a numeric string"),
            Reason::ExpectedUnsigned => {
                f.write_str("expected a non-negative integer or a string holding one")
            }
            Reason::ExpectedInteger => f.write_str("expected an integer or a string holding one"),
            Reason::ExpectedObject => f.write_str("expected an object"),
            Reason::ExpectedArray => f.write_str("expected an array"),
            Reason::NotUtcTime => {
                f.write_str("not an ISO 8601 UTC time (expected YYYY-MM-DDTHH:MM:SS[.fff]Z)")
            }
            Reason::FromTheFuture { max_skew_secs } => write!(
                f,
                "more than {max_skew_secs} s ahead of the receiver's clock (IMS_MAX_CLOCK_SKEW); \
                 kept, to be replayed once it is no longer in the future"
            ),
            Reason::EmbeddedJson { message } => {
                write!(f, "expected a string holding JSON: {message}")
            }
        }
    }
}

/// One problem: a JSON pointer (RFC 6901, `""` for the whole document) and
/// the reason. Paths inside JSON-in-a-string fields continue below the
/// field, e.g. `/MessageBody/TaskInput/Media`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where: a JSON pointer into the event.
    pub path: String,
    /// What was wrong.
    pub reason: Reason,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = if self.path.is_empty() {
            "(document)"
        } else {
            &self.path
        };
        write!(f, "{path}: {}", self.reason)
    }
}

impl Serialize for Problem {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("path", &self.path)?;
        map.serialize_entry("reason", &self.reason.to_string())?;
        if let Reason::MalformedJson { line, column, .. } = &self.reason {
            map.serialize_entry("line", line)?;
            map.serialize_entry("column", column)?;
        }
        map.end()
    }
}

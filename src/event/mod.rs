//! The IMS event model: the envelope (`EventType`, `UserId`, `EventTime`,
//! `MessageBody`), the [`catalogue`] of event types, and typed message
//! [`body`] structs.
//!
//! [`Event::from_slice`] parses raw bytes, classifies and validates in one
//! pass: it either returns a fully typed [`Event`] or a [`Rejection`]
//! listing every problem with its JSON path. Nothing here does I/O.

pub mod body;
pub mod catalogue;
pub mod field;
mod json;
pub mod types;

pub use catalogue::{Body, Classification, Entry, Family, Kind, classify};
pub use types::{Id, Num, Status, StatusClass, Timestamp};

use crate::validate::{Problem, Reason};
use field::{Ctx, FromJson, Members, remove, take};
use serde::{Serialize, Serializer, ser::SerializeMap};
use serde_json::{Map, Value};

/// A parsed, classified and validated IMS event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// `EventType` as received (an alias stays an alias; see [`Event::kind`]).
    pub event_type: String,
    /// `UserId`: a number, or a numeric string.
    pub user_id: Num<u64>,
    /// `EventTime`: when IMS produced the event (UTC).
    pub event_time: Timestamp,
    /// The typed `MessageBody`.
    pub body: Body,
    /// Top-level fields beyond the envelope, kept verbatim.
    pub extra: Map<String, Value>,
}

/// Why an input is not a valid event: every problem found, and what could
/// be read of its type (for reporting and for the rejected-events area).
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    /// The `EventType`, when it could be read as a string.
    pub event_type: Option<String>,
    /// Every problem, in document order.
    pub problems: Vec<Problem>,
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid IMS event")?;
        if let Some(t) = &self.event_type {
            write!(f, " ({t})")?;
        }
        for (i, p) in self.problems.iter().enumerate() {
            write!(f, "{} {p}", if i == 0 { ":" } else { ";" })?;
        }
        Ok(())
    }
}

impl std::error::Error for Rejection {}

impl From<serde_json::Error> for Rejection {
    /// A rejection for input that is not JSON, with its line and column.
    fn from(e: serde_json::Error) -> Self {
        Rejection {
            event_type: None,
            problems: vec![Problem {
                path: String::new(),
                reason: malformed(&e),
            }],
        }
    }
}

/// Parses raw bytes as one strict JSON document: malformed JSON, numbers
/// out of range, nesting deeper than 128 levels, and a key repeated within
/// one object (which value IMS meant cannot be known) are each a
/// [`Reason::MalformedJson`] with line and column; for a repeated key the
/// problem's path is the key's JSON pointer.
pub fn parse_json(bytes: &[u8]) -> Result<Value, Rejection> {
    let duplicate = json::DuplicateSlot::default();
    json::from_slice(bytes, &duplicate).map_err(|e| {
        let mut rejection = Rejection::from(e);
        if let (Some(path), Some(problem)) =
            (duplicate.into_inner(), rejection.problems.first_mut())
        {
            problem.path = path;
        }
        rejection
    })
}

impl Event {
    /// Parses raw bytes into a validated event.
    pub fn from_slice(bytes: &[u8]) -> Result<Event, Rejection> {
        Event::from_value(parse_json(bytes)?)
    }

    /// Validates an already-parsed JSON value.
    pub fn from_value(value: Value) -> Result<Event, Rejection> {
        let mut ctx = Ctx::new();
        let Value::Object(map) = value else {
            ctx.problem(Reason::NotAnObject {
                found: Reason::type_name(&value),
            });
            return Err(Rejection {
                event_type: None,
                problems: ctx.into_problems(),
            });
        };
        let mut members = field::members(map);

        let event_type = take::<String>(&mut members, &["EventType"], &mut ctx);
        let event_type = match event_type {
            None => {
                ctx.at("EventType", |c| c.problem(Reason::Missing));
                None
            }
            Some(Some(t)) if t.trim().is_empty() => {
                ctx.at("EventType", |c| c.problem(Reason::EmptyId));
                None
            }
            Some(t) => t,
        };
        let user_id = required::<Num<u64>>(&mut members, "UserId", &mut ctx);
        let event_time = required::<Timestamp>(&mut members, "EventTime", &mut ctx);

        let classification = event_type.as_deref().map(classify);
        let body = match classification {
            Some(Classification::Known(entry)) => match remove(&mut members, "MessageBody") {
                Some(v) if !v.is_null() => ctx.at("MessageBody", |c| Body::parse(entry.kind, v, c)),
                _ => {
                    ctx.at("MessageBody", |c| c.problem(Reason::Missing));
                    None
                }
            },
            // Unknown types are accepted with whatever body they carry.
            Some(Classification::Unknown) => {
                Some(Body::Unknown(remove(&mut members, "MessageBody")))
            }
            None => None,
        };

        match (event_type, user_id, event_time, body) {
            (Some(event_type), Some(user_id), Some(event_time), Some(body))
                if ctx.problem_count() == 0 =>
            {
                Ok(Event {
                    event_type,
                    user_id,
                    event_time,
                    body,
                    extra: field::rest(members),
                })
            }
            (event_type, ..) => Err(Rejection {
                event_type,
                problems: ctx.into_problems(),
            }),
        }
    }

    /// The kind of event (`None` for a type this version does not know).
    pub fn kind(&self) -> Option<Kind> {
        self.body.kind()
    }

    /// The catalogue entry (`None` for an unknown type).
    pub fn entry(&self) -> Option<&'static Entry> {
        self.kind().map(Kind::entry)
    }

    /// True when IMS has announced the retirement of this event type.
    pub fn is_deprecated(&self) -> bool {
        self.entry().is_some_and(|e| e.deprecated.is_some())
    }
}

fn required<T: FromJson>(members: &mut Members, name: &'static str, ctx: &mut Ctx) -> Option<T> {
    match take::<T>(members, &[name], ctx) {
        None => {
            ctx.at(name, |c| c.problem(Reason::Missing));
            None
        }
        Some(value) => value,
    }
}

fn malformed(e: &serde_json::Error) -> Reason {
    // serde_json's Display appends " at line L column C"; keep only the what.
    let message = e.to_string();
    let message = match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message,
    };
    Reason::MalformedJson {
        line: e.line(),
        column: e.column(),
        message,
    }
}

impl Serialize for Event {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("EventType", &self.event_type)?;
        map.serialize_entry("UserId", &self.user_id)?;
        map.serialize_entry("EventTime", &self.event_time)?;
        if !matches!(self.body, Body::Unknown(None)) {
            map.serialize_entry("MessageBody", &self.body)?;
        }
        for (key, value) in &self.extra {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

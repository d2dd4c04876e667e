//! Field value types shared by the message bodies: identifiers, lenient
//! numbers, UTC timestamps, statuses and JSON-in-a-string fields.
//!
//! Each type keeps what is needed to write the value back exactly as IMS
//! sent it (a number sent as a string stays a string), so that a parsed
//! event re-serialises without loss.

use crate::event::field::{Ctx, FromJson};
use crate::validate::Reason;
use serde::{Serialize, Serializer};
use serde_json::{Map, Value};
use std::fmt;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Longest accepted identifier, in bytes. IMS ids are 32 hex digits or
/// UUIDs; ids name store keys (`live-record/{jobId}` …), which are bounded
/// (1 KiB), so an absurd id is an invalid event (400), not a store failure.
pub const MAX_ID_LEN: usize = 256;

/// An identifier (`MediaId`, `JobId`, `TaskId` …): a non-empty string of at
/// most [`MAX_ID_LEN`] bytes, without control characters, `/` or `..`.
///
/// IMS ids are hex digits or UUIDs (the seed's samples, `events/`); an id
/// names a store key (`media/{id}`) and a read-API path segment
/// (`/v1/resources/media/{id}`), so `/` and `..` are refused rather than
/// stored: neither can then mean two things.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Id(String);

impl Id {
    /// The identifier as received.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Id {
    type Error = Reason;
    fn try_from(value: String) -> Result<Self, Reason> {
        if value.chars().any(char::is_control) || value.contains('/') || value.contains("..") {
            Err(Reason::IdForbiddenChar)
        } else if value.trim().is_empty() {
            Err(Reason::EmptyId)
        } else if value.len() > MAX_ID_LEN {
            Err(Reason::IdTooLong { max: MAX_ID_LEN })
        } else {
            Ok(Id(value))
        }
    }
}

impl From<Id> for Value {
    fn from(id: Id) -> Value {
        Value::String(id.0)
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromJson for Id {
    fn from_json(value: Value, ctx: &mut Ctx) -> Option<Self> {
        let s = String::from_json(value, ctx)?;
        Id::try_from(s).map_err(|reason| ctx.problem(reason)).ok()
    }
}

impl Serialize for Id {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

/// A reference that is an [`Id`] or a URL, depending on a sibling field
/// (a workflow's `TaskInput.Media`): a non-empty string of at most
/// [`MAX_ID_LEN`] bytes without control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Locator(String);

impl Locator {
    /// The reference as received.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromJson for Locator {
    fn from_json(value: Value, ctx: &mut Ctx) -> Option<Self> {
        let s = String::from_json(value, ctx)?;
        let reason = if s.trim().is_empty() {
            Reason::EmptyId
        } else if s.len() > MAX_ID_LEN {
            Reason::IdTooLong { max: MAX_ID_LEN }
        } else if s.chars().any(char::is_control) {
            Reason::IdForbiddenChar
        } else {
            return Some(Locator(s));
        };
        ctx.problem(reason);
        None
    }
}

impl Serialize for Locator {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

/// A number that IMS sends sometimes as a JSON number and sometimes as a
/// string (`"Size": "5510872"`, `"Height": 720`). Both are accepted; the
/// original form is remembered for re-serialisation.
#[derive(Debug, Clone, PartialEq)]
pub struct Num<T> {
    value: T,
    /// The original text when the number arrived as a string.
    text: Option<Box<str>>,
}

impl<T: Copy> Num<T> {
    /// The numeric value.
    pub fn get(&self) -> T {
        self.value
    }

    /// True when IMS sent the number as a string.
    pub fn was_string(&self) -> bool {
        self.text.is_some()
    }
}

impl<T> From<T> for Num<T> {
    fn from(value: T) -> Self {
        Num { value, text: None }
    }
}

/// The numeric types a [`Num`] can hold.
pub trait Numeric: Copy + Serialize + Sized {
    /// The reason given when a value is not of this type.
    const REASON: Reason;
    /// Reads a JSON number.
    fn from_number(n: &serde_json::Number) -> Option<Self>;
    /// Reads a string holding a number.
    fn from_text(s: &str) -> Option<Self>;
}

impl Numeric for u64 {
    const REASON: Reason = Reason::ExpectedUnsigned;
    fn from_number(n: &serde_json::Number) -> Option<Self> {
        n.as_u64()
    }
    fn from_text(s: &str) -> Option<Self> {
        s.parse().ok()
    }
}

impl Numeric for i64 {
    const REASON: Reason = Reason::ExpectedInteger;
    fn from_number(n: &serde_json::Number) -> Option<Self> {
        n.as_i64()
    }
    fn from_text(s: &str) -> Option<Self> {
        s.parse().ok()
    }
}

impl Numeric for f64 {
    const REASON: Reason = Reason::ExpectedNumber;
    fn from_number(n: &serde_json::Number) -> Option<Self> {
        n.as_f64().filter(|f| f.is_finite())
    }
    fn from_text(s: &str) -> Option<Self> {
        // `parse` accepts "inf"/"NaN", which no IMS field means.
        s.parse::<f64>().ok().filter(|f| f.is_finite())
    }
}

impl<T: Numeric> FromJson for Num<T> {
    fn from_json(value: Value, ctx: &mut Ctx) -> Option<Self> {
        let parsed = match value {
            Value::Number(n) => T::from_number(&n).map(Num::from),
            Value::String(s) => T::from_text(s.trim()).map(|value| Num {
                value,
                text: Some(s.into_boxed_str()),
            }),
            _ => None,
        };
        if parsed.is_none() {
            ctx.problem(T::REASON);
        }
        parsed
    }
}

impl<T: Serialize> Serialize for Num<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match &self.text {
            Some(text) => serializer.serialize_str(text),
            None => self.value.serialize(serializer),
        }
    }
}

/// A UTC time in ISO 8601 / RFC 3339 form, with or without fractional
/// seconds (`2022-07-15T08:48:14Z`, `2022-06-29T01:35:31.716Z`). Other
/// offsets are refused: IMS documents every time as UTC, and a local time
/// would silently reorder events.
///
/// Stricter than the `time` crate's `Rfc3339`, which takes any byte as the
/// date/time separator (a space included), a lowercase `z`, and `-00:00`
/// ("offset unknown" in RFC 3339 §4.3, not UTC): only `T`, and `Z` or
/// `+00:00`, are accepted, so one instant has one spelling family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timestamp {
    raw: String,
    at: OffsetDateTime,
}

impl Timestamp {
    /// Parses a UTC timestamp.
    pub fn parse(raw: String) -> Result<Self, Reason> {
        let at = OffsetDateTime::parse(&raw, &Rfc3339).map_err(|_| Reason::NotUtcTime)?;
        let canonical_form = raw.as_bytes().get(10) == Some(&b'T')
            && (raw.ends_with('Z') || raw.ends_with("+00:00"));
        if !canonical_form || !at.offset().is_utc() {
            return Err(Reason::NotUtcTime);
        }
        Ok(Timestamp { raw, at })
    }

    /// The time as received.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// Nanoseconds since the Unix epoch.
    pub fn unix_nanos(&self) -> i128 {
        self.at.unix_timestamp_nanos()
    }

    /// The time as received, by value.
    pub fn into_string(self) -> String {
        self.raw
    }
}

impl From<Timestamp> for Value {
    fn from(t: Timestamp) -> Value {
        Value::String(t.raw)
    }
}

impl Ord for Timestamp {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        // The raw text breaks ties deterministically (`…14Z` vs `…14.000Z`).
        self.at
            .cmp(&other.at)
            .then_with(|| self.raw.cmp(&other.raw))
    }
}

impl PartialOrd for Timestamp {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl FromJson for Timestamp {
    fn from_json(value: Value, ctx: &mut Ctx) -> Option<Self> {
        let Value::String(raw) = value else {
            ctx.problem(Reason::NotUtcTime);
            return None;
        };
        Timestamp::parse(raw).map_err(|r| ctx.problem(r)).ok()
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.raw)
    }
}

/// What a status value means, where that is certain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StatusClass {
    /// The job or task finished successfully.
    Success,
    /// The job or task failed.
    Failure,
    /// The job or task is still running (or paused, for live recordings).
    InProgress,
    /// A value whose meaning is not documented: kept verbatim, not guessed.
    Other,
}

impl StatusClass {
    /// Classifies a raw status value, case-insensitively.
    ///
    /// The families spell the same outcome differently: upload and media
    /// events say `Success`/`Fail`, workflows `Succeed`, batch and smart
    /// jobs `Finished`, media convert `Complete`, AI analysis
    /// `AnalyzeSuccess`/`AnalyzeFailed`, live recording `record_started`,
    /// `record_paused`, `record_resumed`.
    pub fn of(raw: &str) -> StatusClass {
        const SUCCESS: &[&str] = &[
            "success",
            "succeed",
            "succeeded",
            "successful",
            "finished",
            "finish",
            "complete",
            "completed",
            "analyzesuccess",
        ];
        const FAILURE: &[&str] = &["fail", "failed", "failure", "error", "analyzefailed"];
        const IN_PROGRESS: &[&str] = &[
            "processing",
            "running",
            "analyzing",
            "record_started",
            "record_resumed",
            "record_paused",
        ];
        let raw = raw.trim();
        let is = |list: &[&str]| list.iter().any(|s| s.eq_ignore_ascii_case(raw));
        if is(SUCCESS) {
            StatusClass::Success
        } else if is(FAILURE) {
            StatusClass::Failure
        } else if is(IN_PROGRESS) {
            StatusClass::InProgress
        } else {
            StatusClass::Other
        }
    }
}

/// A status field: the raw value and its [`StatusClass`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    raw: String,
    class: StatusClass,
}

impl Status {
    /// Wraps a raw status value.
    pub fn new(raw: String) -> Self {
        let class = StatusClass::of(&raw);
        Status { raw, class }
    }

    /// The value as received.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// What it means.
    pub fn class(&self) -> StatusClass {
        self.class
    }

    /// The value as received, by value.
    pub fn into_string(self) -> String {
        self.raw
    }

    /// True when the value means success.
    pub fn is_success(&self) -> bool {
        self.class == StatusClass::Success
    }
}

impl FromJson for Status {
    fn from_json(value: Value, ctx: &mut Ctx) -> Option<Self> {
        let raw = String::from_json(value, ctx)?;
        if raw.trim().is_empty() {
            ctx.problem(Reason::EmptyId);
            return None;
        }
        Some(Status::new(raw))
    }
}

impl Serialize for Status {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.raw)
    }
}

/// A field documented as "a JSON string" whose content is informative but
/// not load-bearing (`Result`, `Input`, `Output`, `TemplateConfig`): decoded
/// when it holds JSON, kept as text when it does not — never an error.
#[derive(Debug, Clone, PartialEq)]
pub enum JsonText {
    /// A string holding JSON, with its decoded value.
    Encoded {
        /// The string as received.
        raw: String,
        /// The decoded value (string layers of double encoding removed).
        value: Value,
    },
    /// A string that does not hold JSON.
    Text(String),
    /// A JSON value sent inline instead of as a string.
    Inline(Value),
}

impl JsonText {
    /// Decodes `raw`, peeling up to three layers of string-in-string
    /// encoding (IMS passes `UserData` through several services).
    pub fn decode(raw: String) -> Self {
        let Some(mut value) = decode_json_string(&raw) else {
            return JsonText::Text(raw);
        };
        for _ in 0..3 {
            match &value {
                Value::String(inner) => match decode_json_string(inner) {
                    Some(v) => value = v,
                    None => break,
                },
                _ => break,
            }
        }
        JsonText::Encoded { raw, value }
    }

    /// The decoded value, or the text as a JSON string.
    pub fn into_value(self) -> Value {
        match self {
            JsonText::Encoded { value, .. } | JsonText::Inline(value) => value,
            JsonText::Text(text) => Value::String(text),
        }
    }

    /// The decoded JSON value, if any.
    pub fn value(&self) -> Option<&Value> {
        match self {
            JsonText::Encoded { value, .. } | JsonText::Inline(value) => Some(value),
            JsonText::Text(_) => None,
        }
    }
}

/// Parses `s` as JSON only when it looks like a JSON object, array or
/// string: a bare `"123"` or `"true"` stays text.
fn decode_json_string(s: &str) -> Option<Value> {
    let first = s.trim_start().as_bytes().first()?;
    if !matches!(first, b'{' | b'[' | b'"') {
        return None;
    }
    // Strict, as everywhere: text with a repeated key stays text rather
    // than silently losing one of the values.
    super::json::parse_embedded(s).ok()
}

impl FromJson for JsonText {
    fn from_json(value: Value, _ctx: &mut Ctx) -> Option<Self> {
        Some(match value {
            Value::String(raw) => JsonText::decode(raw),
            other => JsonText::Inline(other),
        })
    }
}

impl Serialize for JsonText {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            JsonText::Encoded { raw, .. } | JsonText::Text(raw) => serializer.serialize_str(raw),
            JsonText::Inline(value) => value.serialize(serializer),
        }
    }
}

/// `UserData`: the caller's pass-through data, a string that usually holds
/// JSON and is sometimes encoded twice, either as a whole or per member
/// (`{"MessageCallback":"{\"CallbackURL\":…}"}`). [`UserData::decoded`]
/// gives the same shape either way; the original is kept for output.
#[derive(Debug, Clone, PartialEq)]
pub struct UserData {
    text: JsonText,
    decoded: Option<Value>,
}

impl UserData {
    /// The field as received (decoded one layer).
    pub fn text(&self) -> &JsonText {
        &self.text
    }

    /// The fully decoded value, or the text as a JSON string.
    pub fn into_value(self) -> Value {
        match self.decoded {
            Some(decoded) => decoded,
            None => self.text.into_value(),
        }
    }

    /// The fully decoded value: object members that are strings holding a
    /// JSON object or array are decoded too. `None` for non-JSON text.
    pub fn decoded(&self) -> Option<&Value> {
        self.decoded.as_ref().or(self.text.value())
    }
}

impl FromJson for UserData {
    fn from_json(value: Value, ctx: &mut Ctx) -> Option<Self> {
        let text = JsonText::from_json(value, ctx)?;
        let decoded = match text.value() {
            Some(Value::Object(members))
                if members
                    .values()
                    .any(|v| v.as_str().and_then(decode_json_string).is_some()) =>
            {
                let members: Map<String, Value> = members
                    .iter()
                    .map(|(k, v)| {
                        let v = match v.as_str().and_then(decode_json_string) {
                            Some(inner) if inner.is_object() || inner.is_array() => inner,
                            _ => v.clone(),
                        };
                        (k.clone(), v)
                    })
                    .collect();
                Some(Value::Object(members))
            }
            _ => None,
        };
        Some(UserData { text, decoded })
    }
}

impl Serialize for UserData {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.text.serialize(serializer)
    }
}

/// A field that must hold JSON of a known shape inside a string
/// (`TaskInput`, `MediaContent`): decoded strictly into `T`, problems
/// reported below the field's path, the original string kept.
#[derive(Debug, Clone, PartialEq)]
pub struct Embedded<T> {
    /// The string as received; `None` when IMS sent the value inline.
    pub raw: Option<String>,
    /// The decoded value.
    pub value: T,
}

impl<T: FromJson> FromJson for Embedded<T> {
    fn from_json(value: Value, ctx: &mut Ctx) -> Option<Self> {
        match value {
            Value::String(raw) => match super::json::parse_embedded(&raw) {
                Ok(inner) => T::from_json(inner, ctx).map(|value| Embedded {
                    raw: Some(raw),
                    value,
                }),
                Err(message) => {
                    ctx.problem(Reason::EmbeddedJson { message });
                    None
                }
            },
            inline => T::from_json(inline, ctx).map(|value| Embedded { raw: None, value }),
        }
    }
}

impl<T: Serialize> Serialize for Embedded<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match &self.raw {
            Some(raw) => serializer.serialize_str(raw),
            None => self.value.serialize(serializer),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read<T: FromJson>(value: Value) -> Result<T, Vec<crate::validate::Problem>> {
        let mut ctx = Ctx::new();
        T::from_json(value, &mut ctx).ok_or_else(|| ctx.into_problems())
    }

    #[test]
    fn numbers_are_accepted_as_numbers_or_numeric_strings() {
        let n: Num<u64> = read(json!("5510872")).unwrap();
        assert_eq!((n.get(), n.was_string()), (5_510_872, true));
        let n: Num<u64> = read(json!(720)).unwrap();
        assert_eq!((n.get(), n.was_string()), (720, false));
        let f: Num<f64> = read(json!("68.576667")).unwrap();
        assert_eq!(f.get(), 68.576667);
        let i: Num<i64> = read(json!(" -3 ")).unwrap();
        assert_eq!(i.get(), -3);
    }

    #[test]
    fn numbers_keep_their_original_form_when_serialised() {
        let n: Num<u64> = read(json!("0042")).unwrap();
        assert_eq!(serde_json::to_value(&n).unwrap(), json!("0042"));
        let n: Num<u64> = read(json!(42)).unwrap();
        assert_eq!(serde_json::to_value(&n).unwrap(), json!(42));
    }

    #[test]
    fn floats_re_parse_to_the_same_value() {
        // Found by the `merge` fuzzer: what a valid event re-serialises to
        // must parse back to the same number (serde_json `float_roundtrip`).
        for f in [
            2.530_649_789_986_312_4e209_f64,
            2.276_205_281_136_043_6e-274,
        ] {
            let n: Num<f64> = read(json!(f)).unwrap();
            let text = serde_json::to_string(&n).unwrap();
            let again: Num<f64> = read(serde_json::from_str(&text).unwrap()).unwrap();
            assert_eq!(again.get().to_bits(), f.to_bits(), "{text}");
        }
    }

    #[test]
    fn numbers_reject_what_is_not_a_number_of_the_right_kind() {
        for bad in [
            json!("abc"),
            json!(""),
            json!(-1),
            json!(1.5),
            json!(true),
            json!({}),
        ] {
            let problems = read::<Num<u64>>(bad.clone()).unwrap_err();
            assert_eq!(problems[0].reason, Reason::ExpectedUnsigned, "{bad}");
        }
        for bad in [json!("NaN"), json!("inf"), json!([1])] {
            assert!(read::<Num<f64>>(bad).is_err());
        }
        assert!(read::<Num<i64>>(json!(1.25)).is_err());
    }

    #[test]
    fn ids_must_be_non_empty_strings() {
        assert_eq!(read::<Id>(json!("abc")).unwrap().as_str(), "abc");
        assert_eq!(
            read::<Id>(json!("")).unwrap_err()[0].reason,
            Reason::EmptyId
        );
        assert_eq!(
            read::<Id>(json!("  ")).unwrap_err()[0].reason,
            Reason::EmptyId
        );
        assert!(read::<Id>(json!("a".repeat(MAX_ID_LEN))).is_ok());
        assert_eq!(
            read::<Id>(json!("a".repeat(MAX_ID_LEN + 1))).unwrap_err()[0].reason,
            Reason::IdTooLong { max: MAX_ID_LEN }
        );
        assert_eq!(
            read::<Id>(json!(12)).unwrap_err()[0].reason,
            Reason::ExpectedString
        );
    }

    #[test]
    fn ids_refuse_control_characters_slashes_and_dot_dot() {
        for good in [
            "c321b3a0041a71eda1590674a2ce0e59",
            "cef3de8c-b02c-4462",
            "a.b",
            "é",
        ] {
            assert!(read::<Id>(json!(good)).is_ok(), "{good}");
        }
        for bad in [
            "a\0b", "a\r\nb", "a\tb", "\u{7f}", "\u{85}", "a/b", "/", "..", "../etc", "a..b",
        ] {
            assert_eq!(
                read::<Id>(json!(bad)).unwrap_err()[0].reason,
                Reason::IdForbiddenChar,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn ids_that_would_not_fit_a_store_key_are_refused() {
        // An id that would make `media/{id}` longer than the store's key
        // limit is a problem of the event: a 400 like any other invalid
        // event, never a 500 after its raw record was stored.
        let longest = "i".repeat(MAX_ID_LEN);
        assert_eq!(read::<Id>(json!(longest)).unwrap().as_str(), longest);
        assert_eq!(
            read::<Id>(json!("i".repeat(MAX_ID_LEN + 1))).unwrap_err()[0].reason,
            Reason::IdTooLong { max: MAX_ID_LEN }
        );
        let key = crate::state::ResourceKey::new(crate::state::ResourceKind::LiveRecord, &longest);
        assert!(key.as_str().len() <= crate::store::MAX_KEY_LEN);
    }

    #[test]
    fn timestamps_must_be_utc_iso_8601() {
        let t: Timestamp = read(json!("2022-07-15T08:48:14Z")).unwrap();
        assert_eq!(t.unix_nanos(), 1_657_874_894_000_000_000);
        let t: Timestamp = read(json!("2022-06-29T01:35:31.716Z")).unwrap();
        assert_eq!(t.unix_nanos(), 1_656_466_531_716_000_000);
        assert!(read::<Timestamp>(json!("2022-07-15T08:48:14+00:00")).is_ok());
        for bad in [
            "2022-07-15T16:48:14+08:00",
            "2022-07-15 08:48:14",
            "2022-07-15 08:48:14Z",
            "2022-07-15t08:48:14Z",
            "2022-07-15x08:48:14Z",
            "2022-07-15T08:48:14z",
            "2022-07-15T08:48:14-00:00",
            "2022-07-15",
            "2022-13-15T08:48:14Z",
            "",
        ] {
            let problems = read::<Timestamp>(json!(bad)).unwrap_err();
            assert_eq!(problems[0].reason, Reason::NotUtcTime, "{bad}");
        }
        assert!(read::<Timestamp>(json!(1657874894)).is_err());
    }

    #[test]
    fn timestamps_order_by_instant_then_text() {
        let a = Timestamp::parse("2022-07-15T08:48:14Z".into()).unwrap();
        let b = Timestamp::parse("2022-07-15T08:48:14.000Z".into()).unwrap();
        let c = Timestamp::parse("2022-07-15T08:48:14.001Z".into()).unwrap();
        assert_eq!(a.unix_nanos(), b.unix_nanos());
        // Same instant, different text: still a strict, deterministic order.
        assert_ne!(a.cmp(&b), std::cmp::Ordering::Equal);
        assert_eq!(a.cmp(&b), b.cmp(&a).reverse());
        assert!(a < c && b < c);
    }

    #[test]
    fn statuses_normalise_where_the_meaning_is_certain() {
        use StatusClass::*;
        let cases = [
            ("Success", Success),
            ("success", Success),
            ("Succeed", Success),
            ("Finished", Success),
            ("Complete", Success),
            ("AnalyzeSuccess", Success),
            ("Fail", Failure),
            ("Failed", Failure),
            ("AnalyzeFailed", Failure),
            ("record_started", InProgress),
            ("record_paused", InProgress),
            ("record_resumed", InProgress),
            ("Processing", InProgress),
            ("PartialSucceed", Other),
            ("record_stopped", Other),
            ("Normal", Other),
        ];
        for (raw, class) in cases {
            let status: Status = read(json!(raw)).unwrap();
            assert_eq!(status.class(), class, "{raw}");
            assert_eq!(status.as_str(), raw, "kept verbatim");
        }
        assert_eq!(
            read::<Status>(json!("")).unwrap_err()[0].reason,
            Reason::EmptyId
        );
    }

    #[test]
    fn json_text_decodes_json_and_keeps_plain_text() {
        let t: JsonText = read(json!("{\"www\":111}")).unwrap();
        assert_eq!(t.value(), Some(&json!({"www": 111})));
        let t: JsonText = read(json!("plain words")).unwrap();
        assert_eq!(t, JsonText::Text("plain words".into()));
        // A bare number in a string is text, not JSON.
        let t: JsonText = read(json!("123")).unwrap();
        assert_eq!(t.value(), None);
        let t: JsonText = read(json!({"inline": true})).unwrap();
        assert_eq!(t.value(), Some(&json!({"inline": true})));
        assert_eq!(serde_json::to_value(&t).unwrap(), json!({"inline": true}));
    }

    #[test]
    fn user_data_double_encoded_as_a_whole_or_per_member_decodes_the_same() {
        let inner = json!({"CallbackURL": "https://x", "CallbackType": "http"});
        let once = json!({"MessageCallback": inner}).to_string();
        let member = json!({"MessageCallback": inner.to_string()}).to_string();
        let whole = Value::String(once.clone()).to_string();
        let expected = json!({"MessageCallback": inner});
        for raw in [once, member, whole] {
            let data: UserData = read(Value::String(raw.clone())).unwrap();
            assert_eq!(data.decoded(), Some(&expected), "{raw}");
            assert_eq!(serde_json::to_value(&data).unwrap(), Value::String(raw));
        }
    }

    #[test]
    fn embedded_json_is_decoded_strictly_with_paths_below_the_field() {
        use crate::event::body::workflow::TaskInput;
        let mut ctx = Ctx::new();
        let got = ctx.at("TaskInput", |ctx| {
            Embedded::<TaskInput>::from_json(json!("{\"Type\":\"Media\"}"), ctx)
        });
        assert!(got.is_none());
        let problems = ctx.into_problems();
        assert_eq!(problems[0].path, "/TaskInput/Media");
        assert_eq!(problems[0].reason, Reason::Missing);

        let ok: Embedded<TaskInput> = read(json!("{\"Type\":\"Media\",\"Media\":\"m1\"}")).unwrap();
        assert_eq!(ok.value.media_id().as_ref().map(Id::as_str), Some("m1"));
        let inline: Embedded<TaskInput> =
            read(json!({"Type": "OSS", "Media": "oss://b/o"})).unwrap();
        assert_eq!(inline.raw, None);
        assert_eq!(inline.value.media_id(), None);
        assert!(matches!(
            read::<Embedded<TaskInput>>(json!("{oops")).unwrap_err()[0].reason,
            Reason::EmbeddedJson { .. }
        ));
        // Which of two `Media` was meant cannot be known: refused, as in
        // the document itself, naming the key and where it is.
        let twice = json!("{\"Type\":\"Media\",\"Media\":\"m1\",\"Media\":\"m2\"}");
        assert_eq!(
            read::<Embedded<TaskInput>>(twice).unwrap_err()[0].reason,
            Reason::EmbeddedJson {
                message: "duplicate key `Media` at line 1 column 36, path /Media within the string"
                    .into()
            }
        );
    }

    #[test]
    fn json_text_with_a_repeated_key_stays_text() {
        let raw = "{\"a\":1,\"a\":2}";
        let t: JsonText = read(json!(raw)).unwrap();
        assert_eq!(t, JsonText::Text(raw.into()));
        assert_eq!(serde_json::to_value(&t).unwrap(), json!(raw));
    }
}

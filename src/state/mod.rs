//! Resource state and its merge rule — the pure core of step 5–6 of the
//! pipeline, free of I/O.
//!
//! An event becomes a list of [`Change`]s, one per resource it touches
//! ([`derive`]). A resource's [`ResourceState`] is a map of
//! last-writer-wins registers: every field remembers the [`Stamp`] (event
//! time, then fingerprint) of the event that wrote it, and a write only
//! wins over an older stamp. A deletion is a sticky marker (the earliest
//! deletion stamp is kept) and the history keeps the newest
//! [`HISTORY_LIMIT`] events by stamp. Each of these is a join
//! (commutative, associative, idempotent), so the stored state depends only
//! on the *set* of events applied — never on their order or repetition —
//! and holds nothing from the receiver's clock.

pub mod derive;
pub mod fingerprint;
pub mod stored;

use serde::Serialize;
use serde_json::Value;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

pub use derive::derive;
pub use fingerprint::Fingerprint;

/// How many history entries a resource keeps: the newest by stamp. Older
/// events still merge into the fields; only their history line goes.
pub const HISTORY_LIMIT: usize = 64;

/// The kinds of resource an event can touch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ResourceKind {
    /// `media/{MediaId}`: a media asset.
    Media,
    /// `job/{JobId}`: a processing, AI, editing or upload job.
    Job,
    /// `task/{TaskId}`: a workflow task.
    Task,
    /// `live-record/{jobId}`: a live recording task.
    LiveRecord,
}

impl ResourceKind {
    /// Every kind, for listings.
    pub const ALL: [ResourceKind; 4] = [
        ResourceKind::Media,
        ResourceKind::Job,
        ResourceKind::Task,
        ResourceKind::LiveRecord,
    ];

    /// The key prefix (`media`, `job`, `task`, `live-record`).
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceKind::Media => "media",
            ResourceKind::Job => "job",
            ResourceKind::Task => "task",
            ResourceKind::LiveRecord => "live-record",
        }
    }

    /// Parses a key prefix.
    pub fn parse(s: &str) -> Option<ResourceKind> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// A resource key: `kind/id`, e.g. `media/c321b3a0…`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourceKey {
    kind: ResourceKind,
    key: String,
}

impl ResourceKey {
    /// The key of resource `id` of `kind`.
    pub fn new(kind: ResourceKind, id: &str) -> Self {
        ResourceKey {
            kind,
            key: format!("{}/{id}", kind.as_str()),
        }
    }

    /// The key of resource `id` of `kind`, when `id` is one an event could
    /// carry (non-blank, at most [`MAX_ID_LEN`](crate::event::types::MAX_ID_LEN)
    /// bytes, so the key fits the store); else what is wrong with it.
    pub fn checked(kind: ResourceKind, id: &str) -> Result<Self, String> {
        crate::event::Id::try_from(id.to_owned())
            .map(|id| ResourceKey::new(kind, id.as_str()))
            .map_err(|reason| format!("resource id: {reason}"))
    }

    /// The kind of resource.
    pub fn kind(&self) -> ResourceKind {
        self.kind
    }

    /// The id part.
    pub fn id(&self) -> &str {
        &self.key[self.kind.as_str().len() + 1..]
    }

    /// The full key.
    pub fn as_str(&self) -> &str {
        &self.key
    }
}

impl TryFrom<&str> for ResourceKey {
    type Error = String;
    fn try_from(s: &str) -> Result<Self, String> {
        let (kind, id) = s
            .split_once('/')
            .ok_or_else(|| format!("`{s}` is not a resource key (expected KIND/ID)"))?;
        let kind = ResourceKind::parse(kind).ok_or_else(|| {
            format!("unknown resource kind `{kind}` (expected media, job, task or live-record)")
        })?;
        ResourceKey::checked(kind, id).map_err(|e| format!("`{s}`: {e}"))
    }
}

impl fmt::Display for ResourceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.key)
    }
}

/// The order of writes: event time (ns since the epoch), then the event
/// fingerprint as a deterministic tie-break.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Stamp {
    /// `EventTime` in nanoseconds since the Unix epoch.
    pub nanos: i64,
    /// The event's fingerprint. Shared, not copied: every field an event
    /// writes and its history line carry its stamp.
    pub fingerprint: Arc<str>,
}

/// One last-writer-wins field.
#[derive(Debug, Clone, PartialEq)]
pub struct Register {
    /// The value.
    pub value: Value,
    /// Who wrote it, and when.
    pub stamp: Stamp,
}

/// One line of a resource's history: an event that touched it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    /// The event's stamp (time, fingerprint).
    pub stamp: Stamp,
    /// `EventTime` as IMS sent it.
    pub at: String,
    /// `EventType` as IMS sent it.
    pub event_type: String,
    /// The event's status value, verbatim, when it has one.
    pub status: Option<String>,
}

/// The sticky deletion marker of a media asset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deletion {
    /// The earliest deletion's stamp.
    pub stamp: Stamp,
    /// Its `EventTime`.
    pub at: String,
}

/// A field's path in a resource (`status`, `meta/width`, `outputs/{id}/url`).
/// Most are literals in [`derive`]: borrowed, they cost no allocation when a
/// change is built or merged into a state; paths built at run time and
/// paths read back from a stored record are owned.
pub type FieldPath = Cow<'static, str>;

/// What one event does to one resource.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// The resource.
    pub key: ResourceKey,
    /// Field writes (`path` → value), each last-writer-wins.
    pub writes: Vec<(FieldPath, Value)>,
    /// True when the event deletes the resource (terminal).
    pub delete: bool,
}

impl Change {
    /// An empty change to `key`.
    pub fn new(key: ResourceKey) -> Self {
        Change {
            key,
            writes: Vec::new(),
            delete: false,
        }
    }

    /// Writes `value` to field `path`.
    pub fn set(&mut self, path: impl Into<FieldPath>, value: impl Into<Value>) -> &mut Self {
        self.writes.push((path.into(), value.into()));
        self
    }

    /// Writes `value` to field `path` when present.
    pub fn set_opt<V: Into<Value>>(
        &mut self,
        path: impl Into<FieldPath>,
        value: Option<V>,
    ) -> &mut Self {
        if let Some(value) = value {
            self.set(path, value);
        }
        self
    }
}

/// The event-level facts every change of one event shares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventMeta {
    /// Stamp of the event.
    pub stamp: Stamp,
    /// `EventTime` as sent.
    pub at: String,
    /// `EventType` as sent.
    pub event_type: String,
    /// The event's primary status value, verbatim.
    pub status: Option<String>,
}

/// What applying a change did to a resource: serialised `applied`,
/// `duplicate` or `stale`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ApplyOutcome {
    /// The state changed.
    Applied,
    /// The event was already applied (found in the history).
    Duplicate,
    /// Nothing changed: every field it writes has a newer value and it is
    /// older than the retained history (or its effects were already there).
    Stale,
}

/// The stored state of one resource. Its stored form (JSON, see
/// [`stored`]) lists each distinct stamp once.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceState {
    /// The resource key.
    pub key: String,
    /// The summary status, derived from the fields (see the README).
    pub status: String,
    /// `EventTime` of the newest event applied.
    pub updated_at: Option<String>,
    /// Set once the resource is deleted; never cleared.
    pub deleted: Option<Deletion>,
    /// Last-writer-wins fields, by path.
    pub fields: BTreeMap<FieldPath, Register>,
    /// The newest [`HISTORY_LIMIT`] events, oldest first.
    pub history: Vec<HistoryEntry>,
}

impl ResourceState {
    /// The state of a resource no event has touched yet.
    pub fn new(key: &ResourceKey) -> Self {
        ResourceState {
            key: key.to_string(),
            status: "unknown".into(),
            updated_at: None,
            deleted: None,
            fields: BTreeMap::new(),
            history: Vec::new(),
        }
    }

    /// Merges one event's change into the state.
    pub fn apply(&mut self, meta: &EventMeta, change: &Change) -> ApplyOutcome {
        let position = self.history.binary_search_by(|h| h.stamp.cmp(&meta.stamp));
        let Err(position) = position else {
            return ApplyOutcome::Duplicate;
        };
        let mut changed = false;
        for (path, value) in &change.writes {
            match self.fields.get_mut(path.as_ref()) {
                Some(register) if register.stamp >= meta.stamp => {}
                Some(register) => {
                    register.value = value.clone();
                    register.stamp = meta.stamp.clone();
                    changed = true;
                }
                None => {
                    self.fields.insert(
                        path.clone(),
                        Register {
                            value: value.clone(),
                            stamp: meta.stamp.clone(),
                        },
                    );
                    changed = true;
                }
            }
        }
        if change.delete && self.deleted.as_ref().is_none_or(|d| meta.stamp < d.stamp) {
            self.deleted = Some(Deletion {
                stamp: meta.stamp.clone(),
                at: meta.at.clone(),
            });
            changed = true;
        }
        if self.history.len() < HISTORY_LIMIT || position > 0 {
            self.history.insert(
                position,
                HistoryEntry {
                    stamp: meta.stamp.clone(),
                    at: meta.at.clone(),
                    event_type: meta.event_type.clone(),
                    status: meta.status.clone(),
                },
            );
            if self.history.len() > HISTORY_LIMIT {
                self.history.remove(0);
            }
            changed = true;
        }
        if !changed {
            return ApplyOutcome::Stale;
        }
        self.updated_at = self.history.last().map(|h| h.at.clone());
        self.status = self.derive_status();
        ApplyOutcome::Applied
    }

    /// The value of field `path`, if written.
    pub fn field(&self, path: &str) -> Option<&Value> {
        self.fields.get(path).map(|r| &r.value)
    }

    /// The summary status: `deleted` once deleted; otherwise the `status`
    /// field; for a job with outputs but no final event, `in_progress`;
    /// otherwise `unknown`.
    fn derive_status(&self) -> String {
        if self.deleted.is_some() {
            return "deleted".into();
        }
        if let Some(Value::String(status)) = self.field("status") {
            return status.clone();
        }
        let has_parts = ["outputs/", "output_groups/", "subjobs/", "files/"]
            .iter()
            .any(|p| {
                self.fields
                    .range::<str, _>((std::ops::Bound::Included(*p), std::ops::Bound::Unbounded))
                    .next()
                    .is_some_and(|(k, _)| k.starts_with(p))
            });
        if has_parts { "in_progress" } else { "unknown" }.into()
    }

    /// A reader's view: fields flattened to their values, without stamps.
    pub fn view(&self) -> Value {
        let fields: serde_json::Map<String, Value> = self
            .fields
            .iter()
            .map(|(k, r)| (k.to_string(), r.value.clone()))
            .collect();
        serde_json::json!({
            "key": self.key,
            "status": self.status,
            "updated_at": self.updated_at,
            "deleted_at": self.deleted.as_ref().map(|d| &d.at),
            "fields": fields,
            "history": self.history.iter().map(|h| serde_json::json!({
                "at": h.at,
                "event_type": h.event_type,
                "status": h.status,
                "fingerprint": &*h.stamp.fingerprint,
            })).collect::<Vec<_>>(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the `merge` fuzzer: the pipeline stores a state as JSON and
    /// reads it back before every merge, so a float field must survive that
    /// round trip exactly — otherwise the stored bytes depend on how many
    /// read–merge–write cycles a resource went through, i.e. on the order
    /// of the events. (serde_json's default float parser is not correctly
    /// rounded; the `float_roundtrip` feature makes it so.)
    #[test]
    fn a_state_with_floats_survives_the_stores_json_round_trip() {
        let key = ResourceKey::new(ResourceKind::Media, "m-1");
        let meta = EventMeta {
            stamp: Stamp {
                nanos: 1_767_225_605_800_000_000,
                fingerprint: "5f531a8cfddb7b8c25c75111af264476".into(),
            },
            at: "2026-01-01T00:00:05.800Z".into(),
            event_type: "VideoAnalysisComplete".into(),
            status: Some("Success".into()),
        };
        let mut change = Change::new(key.clone());
        change
            .set("meta/duration", 2.530_649_789_986_312_4e209)
            .set("meta/fps", 2.276_205_281_136_043_6e-274);
        let mut state = ResourceState::new(&key);
        assert_eq!(state.apply(&meta, &change), ApplyOutcome::Applied);
        let stored = serde_json::to_vec(&state).unwrap();
        let read: ResourceState = serde_json::from_slice(&stored).unwrap();
        assert_eq!(read, state);
        assert_eq!(serde_json::to_vec(&read).unwrap(), stored);
    }
}

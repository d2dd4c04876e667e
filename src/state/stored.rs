//! The stored form of a [`ResourceState`]: JSON in which every distinct
//! stamp is written once, in a `stamps` table, and fields, history lines
//! and the deletion marker refer to theirs by index:
//!
//! ```json
//! {"key": "media/m-1", "status": "uploaded", "updated_at": "2026-01-01T00:00:00Z",
//!  "stamps": [[1767225600000000000, "5c23d05e65bcd5428c535ca1e03d30f9"]],
//!  "fields": {"status": ["uploaded", 0], "size": [5510872, 0]},
//!  "history": [{"s": 0, "at": "2026-01-01T00:00:00Z", "event_type": "FileUploadComplete", "status": "Success"}]}
//! ```
//!
//! One event usually writes several fields: writing its time and 32-digit
//! fingerprint once halves a typical record, and with it what every
//! read–merge–write moves and parses. The table is sorted, so equal states
//! encode to equal bytes.

use super::{Deletion, FieldPath, HistoryEntry, Register, ResourceState, Stamp};
use serde::de::{self, Deserializer};
use serde::ser::{SerializeStruct, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

impl ResourceState {
    /// The state's distinct stamps, sorted: the `stamps` table.
    fn stamp_table(&self) -> Vec<&Stamp> {
        let mut stamps: Vec<&Stamp> =
            Vec::with_capacity(self.fields.len() + self.history.len() + 1);
        stamps.extend(self.fields.values().map(|r| &r.stamp));
        stamps.extend(self.history.iter().map(|h| &h.stamp));
        stamps.extend(self.deleted.iter().map(|d| &d.stamp));
        stamps.sort_unstable();
        stamps.dedup();
        stamps
    }

    /// Appends the stored form to `out`: the bytes serde_json writes for
    /// this state's `Serialize` (a test holds the two to each other). The
    /// write path uses this, not serde_json, because copying strings that
    /// need no escaping whole (see [`crate::jsonfmt`]) encodes a state
    /// markedly faster: `merge/events_in_state/N` in `benches/pipeline.rs`.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        use crate::jsonfmt::{write_str, write_value};
        fn write_int(out: &mut Vec<u8>, n: impl Serialize) {
            serde_json::to_writer(&mut *out, &n).expect("writing to a Vec cannot fail");
        }
        let stamps = self.stamp_table();
        let table = Table(&stamps);
        out.extend_from_slice(b"{\"key\":");
        write_str(out, &self.key);
        out.extend_from_slice(b",\"status\":");
        write_str(out, &self.status);
        if let Some(at) = &self.updated_at {
            out.extend_from_slice(b",\"updated_at\":");
            write_str(out, at);
        }
        if let Some(d) = &self.deleted {
            out.extend_from_slice(b",\"deleted\":{\"s\":");
            write_int(out, table.index(&d.stamp));
            out.extend_from_slice(b",\"at\":");
            write_str(out, &d.at);
            out.push(b'}');
        }
        out.extend_from_slice(b",\"stamps\":[");
        for (i, stamp) in stamps.iter().enumerate() {
            out.extend_from_slice(if i == 0 { b"[" } else { b",[" });
            write_int(out, stamp.nanos);
            out.push(b',');
            write_str(out, &stamp.fingerprint);
            out.push(b']');
        }
        out.extend_from_slice(b"],\"fields\":{");
        for (i, (path, register)) in self.fields.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_str(out, path);
            out.extend_from_slice(b":[");
            write_value(out, &register.value);
            out.push(b',');
            write_int(out, table.index(&register.stamp));
            out.push(b']');
        }
        out.extend_from_slice(b"},\"history\":[");
        for (i, line) in self.history.iter().enumerate() {
            out.extend_from_slice(if i == 0 { b"{\"s\":" } else { b",{\"s\":" });
            write_int(out, table.index(&line.stamp));
            out.extend_from_slice(b",\"at\":");
            write_str(out, &line.at);
            out.extend_from_slice(b",\"event_type\":");
            write_str(out, &line.event_type);
            if let Some(status) = &line.status {
                out.extend_from_slice(b",\"status\":");
                write_str(out, status);
            }
            out.push(b'}');
        }
        out.extend_from_slice(b"]}");
    }
}

impl Serialize for ResourceState {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let stamps = self.stamp_table();
        let table = Table(&stamps);

        let mut s = serializer.serialize_struct("ResourceState", 7)?;
        s.serialize_field("key", &self.key)?;
        s.serialize_field("status", &self.status)?;
        match &self.updated_at {
            Some(at) => s.serialize_field("updated_at", at)?,
            None => s.skip_field("updated_at")?,
        }
        match &self.deleted {
            Some(d) => s.serialize_field(
                "deleted",
                &DeletionOut {
                    s: table.index(&d.stamp),
                    at: &d.at,
                },
            )?,
            None => s.skip_field("deleted")?,
        }
        s.serialize_field("stamps", &table)?;
        s.serialize_field("fields", &FieldsOut(&self.fields, table))?;
        s.serialize_field("history", &HistoryOut(&self.history, table))?;
        s.end()
    }
}

/// The sorted, distinct stamps of one state.
#[derive(Clone, Copy)]
struct Table<'a>(&'a [&'a Stamp]);

impl Table<'_> {
    fn index(&self, stamp: &Stamp) -> usize {
        // Every stamp of the state was put in the table.
        self.0.binary_search(&stamp).unwrap_or_default()
    }
}

impl Serialize for Table<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(|s| (s.nanos, &*s.fingerprint)))
    }
}

struct FieldsOut<'a>(&'a BTreeMap<FieldPath, Register>, Table<'a>);

impl Serialize for FieldsOut<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let table = self.1;
        serializer.collect_map(
            self.0
                .iter()
                .map(|(path, r)| (path, (&r.value, table.index(&r.stamp)))),
        )
    }
}

struct HistoryOut<'a>(&'a [HistoryEntry], Table<'a>);

impl Serialize for HistoryOut<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let table = self.1;
        serializer.collect_seq(self.0.iter().map(|h| HistoryLineOut {
            s: table.index(&h.stamp),
            at: &h.at,
            event_type: &h.event_type,
            status: h.status.as_deref(),
        }))
    }
}

#[derive(Serialize)]
struct HistoryLineOut<'a> {
    s: usize,
    at: &'a str,
    event_type: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<&'a str>,
}

#[derive(Serialize)]
struct DeletionOut<'a> {
    s: usize,
    at: &'a str,
}

/// The record as read, before the stamps are resolved.
#[derive(Deserialize)]
struct StateIn {
    key: String,
    status: String,
    #[serde(default)]
    updated_at: Option<String>,
    #[serde(default)]
    deleted: Option<DeletionIn>,
    stamps: Vec<(i64, String)>,
    /// Each field as `[value, stamp index]`.
    fields: BTreeMap<String, (Value, usize)>,
    history: Vec<HistoryIn>,
}

fn lookup(stamps: &[Stamp], i: usize) -> Result<Stamp, String> {
    stamps.get(i).cloned().ok_or_else(|| {
        format!(
            "stamp index {i} is out of range ({} stamps stored)",
            stamps.len()
        )
    })
}

#[derive(Deserialize)]
struct DeletionIn {
    s: usize,
    at: String,
}

#[derive(Deserialize)]
struct HistoryIn {
    s: usize,
    at: String,
    event_type: String,
    #[serde(default)]
    status: Option<String>,
}

impl TryFrom<StateIn> for ResourceState {
    type Error = String;

    fn try_from(r: StateIn) -> Result<Self, String> {
        // Each distinct fingerprint is allocated once; fields share it.
        let stamps: &[Stamp] = &r
            .stamps
            .into_iter()
            .map(|(nanos, fingerprint)| Stamp {
                nanos,
                fingerprint: fingerprint.into(),
            })
            .collect::<Vec<_>>();
        let fields = r
            .fields
            .into_iter()
            .map(|(path, (value, i))| {
                let stamp = lookup(stamps, i)?;
                Ok((FieldPath::Owned(path), Register { value, stamp }))
            })
            .collect::<Result<_, String>>()?;
        let history = r
            .history
            .into_iter()
            .map(|h| {
                Ok(HistoryEntry {
                    stamp: lookup(stamps, h.s)?,
                    at: h.at,
                    event_type: h.event_type,
                    status: h.status,
                })
            })
            .collect::<Result<_, String>>()?;
        let deleted = match r.deleted {
            Some(d) => Some(Deletion {
                stamp: lookup(stamps, d.s)?,
                at: d.at,
            }),
            None => None,
        };
        Ok(ResourceState {
            key: r.key,
            status: r.status,
            updated_at: r.updated_at,
            deleted,
            fields,
            history,
        })
    }
}

impl<'de> Deserialize<'de> for ResourceState {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        ResourceState::try_from(StateIn::deserialize(deserializer)?).map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn stamp(nanos: i64, fp: &str) -> Stamp {
        Stamp {
            nanos,
            fingerprint: fp.into(),
        }
    }

    fn sample() -> ResourceState {
        let mut fields = BTreeMap::new();
        fields.insert(
            "a".into(),
            Register {
                value: json!("x"),
                stamp: stamp(7, "cd"),
            },
        );
        fields.insert(
            "b".into(),
            Register {
                value: json!(null),
                stamp: stamp(5, "ab"),
            },
        );
        fields.insert(
            "c".into(),
            Register {
                value: json!([1.5, {"k": "v"}]),
                stamp: stamp(7, "cd"),
            },
        );
        ResourceState {
            key: "media/m-1".into(),
            status: "deleted".into(),
            updated_at: Some("t7".into()),
            deleted: Some(Deletion {
                stamp: stamp(9, "ef"),
                at: "t9".into(),
            }),
            fields,
            history: vec![
                HistoryEntry {
                    stamp: stamp(5, "ab"),
                    at: "t5".into(),
                    event_type: "A".into(),
                    status: None,
                },
                HistoryEntry {
                    stamp: stamp(7, "cd"),
                    at: "t7".into(),
                    event_type: "B".into(),
                    status: Some("Success".into()),
                },
            ],
        }
    }

    fn written(state: &ResourceState) -> String {
        let mut out = Vec::new();
        state.write_json(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn the_written_form_is_what_serde_json_writes() {
        let mut state = sample();
        assert_eq!(written(&state), serde_json::to_string(&state).unwrap());
        // Strings that need escaping, and the optional parts absent.
        state.key = "media/\"q\"\\\n".into();
        state.status = "é\u{1}".into();
        state.updated_at = None;
        state.deleted = None;
        state.fields.insert(
            "p\"ath".into(),
            Register {
                value: json!({"z": "\t", "a": [-1, 2.5e300, true]}),
                stamp: stamp(-3, "0\"1"),
            },
        );
        state.history[1].status = Some("Fail\u{7f}\"".into());
        assert_eq!(written(&state), serde_json::to_string(&state).unwrap());
        let empty = ResourceState {
            fields: BTreeMap::new(),
            history: Vec::new(),
            ..state
        };
        assert_eq!(written(&empty), serde_json::to_string(&empty).unwrap());
    }

    #[test]
    fn each_stamp_is_stored_once_and_referred_to_by_index() {
        let state = sample();
        let stored = serde_json::to_value(&state).unwrap();
        assert_eq!(
            stored,
            json!({
                "key": "media/m-1", "status": "deleted", "updated_at": "t7",
                "deleted": {"s": 2, "at": "t9"},
                "stamps": [[5, "ab"], [7, "cd"], [9, "ef"]],
                "fields": {"a": ["x", 1], "b": [null, 0], "c": [[1.5, {"k": "v"}], 1]},
                "history": [
                    {"s": 0, "at": "t5", "event_type": "A"},
                    {"s": 1, "at": "t7", "event_type": "B", "status": "Success"}
                ]
            })
        );
        let read: ResourceState = serde_json::from_value(stored).unwrap();
        assert_eq!(read, state);
    }

    #[test]
    fn a_broken_reference_is_an_error_naming_it() {
        for (record, expected) in [
            (
                json!({"key": "k", "status": "s", "stamps": [[1, "a"]],
                    "fields": {"f": ["x", 1]}, "history": []}),
                "stamp index 1 is out of range (1 stamps stored)",
            ),
            (
                json!({"key": "k", "status": "s", "stamps": [], "fields": {},
                    "history": [{"s": 0, "at": "t", "event_type": "A"}]}),
                "stamp index 0 is out of range (0 stamps stored)",
            ),
            (
                json!({"key": "k", "status": "s", "stamps": [[1, "a"]],
                    "fields": {"f": ["x", 0, 1]}, "history": []}),
                "invalid length 3",
            ),
        ] {
            let e = serde_json::from_value::<ResourceState>(record).unwrap_err();
            assert!(e.to_string().contains(expected), "{e}");
        }
    }
}

//! `merge`: the merge rule ([`ResourceState::apply`], pure) under arbitrary
//! sequences of events from a small structured generator — a few media and
//! job ids, a few instants spelled several ways, statuses that succeed, fail
//! or mean something else — so that collisions, ties, deletions and history
//! truncation are common.
//!
//! Asserted, for a set of events applied
//! - A: in the given order,
//! - B: in a permuted order with duplicates,
//! - C: in B's order, each state going through JSON between two events (as
//!   the pipeline's read–merge–compare-and-set does):
//! - the serialised states of A, B and C are byte-identical;
//! - each state is well-formed: history strictly sorted and at most
//!   [`HISTORY_LIMIT`] long, `updated_at` its newest entry, status
//!   `deleted` exactly when deleted;
//! - applying every event once more changes nothing, and is `Duplicate` —
//!   or `Stale` when the event's history line was truncated away.

#![no_main]

use arbitrary::Arbitrary;
use ims_callback::event::Event;
use ims_callback::state::{
    ApplyOutcome, Change, EventMeta, Fingerprint, HISTORY_LIMIT, ResourceState, derive,
};
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, Arbitrary)]
struct At {
    instant: u8,
    spelling: u8,
}

impl At {
    /// Few instants (a tenth of a second apart, within 10 s), several
    /// spellings of the same instant.
    fn text(self) -> String {
        let tenths = u32::from(self.instant % 100);
        let (s, t) = (tenths / 10, tenths % 10);
        match self.spelling % 4 {
            0 if t == 0 => format!("2026-01-01T00:00:{s:02}Z"),
            0 | 1 => format!("2026-01-01T00:00:{s:02}.{t}Z"),
            2 => format!("2026-01-01T00:00:{s:02}.{t}00Z"),
            _ => format!("2026-01-01T00:00:{s:02}.{t}+00:00"),
        }
    }
}

#[derive(Debug, Clone, Copy, Arbitrary)]
struct Media(u8);
impl Media {
    fn id(self) -> String {
        format!("m-{}", self.0 % 3)
    }
}

#[derive(Debug, Clone, Copy, Arbitrary)]
struct Job(u8);
impl Job {
    fn id(self) -> String {
        format!("j-{}", self.0 % 3)
    }
}

#[derive(Debug, Clone, Copy, Arbitrary)]
struct St(u8);
impl St {
    fn text(self) -> &'static str {
        ["Success", "Fail", "Processing", "PartialSucceed"][usize::from(self.0 % 4)]
    }
}

fn finite(f: f64) -> f64 {
    if f.is_finite() { f } else { 1.5 }
}

#[derive(Debug, Clone, Arbitrary)]
enum Gen {
    Upload {
        at: At,
        media: Media,
        status: St,
        size: u8,
    },
    UrlUpload {
        at: At,
        media: Media,
        job: Job,
        status: St,
    },
    Register {
        at: At,
        media: Media,
        status: St,
    },
    Delete {
        at: At,
        media: Media,
        status: St,
        all: bool,
    },
    BaseChange {
        at: At,
        media: Media,
        title: u8,
        status: St,
    },
    Analysis {
        at: At,
        media: Media,
        duration: f64,
        fps: f64,
    },
    Workflow {
        at: At,
        task: u8,
        media: Media,
        status: St,
    },
    Produce {
        at: At,
        job: Job,
        media: Option<Media>,
        master: Option<Job>,
        status: St,
    },
    ConvertComplete {
        at: At,
        job: Job,
        status: St,
    },
    ConvertGroup {
        at: At,
        job: Job,
        task: u8,
        status: St,
    },
    ConvertOutput {
        at: At,
        job: Job,
        media: Option<Media>,
        task: u8,
        status: St,
    },
    Transcode {
        at: At,
        job: Job,
        parent: Job,
        status: St,
    },
    TranscodeParent {
        at: At,
        parent: Job,
        jobs: Vec<(Job, St)>,
        status: St,
    },
    AiAudit {
        at: At,
        job: Job,
        media: Media,
        status: St,
    },
    LiveStatus {
        at: At,
        job: Job,
        event: u8,
    },
    LiveFile {
        at: At,
        job: Job,
        record: u8,
        duration: f64,
    },
    Unknown {
        at: At,
        n: u8,
    },
}

fn envelope(event_type: &str, at: At, body: Value) -> Value {
    json!({"EventType": event_type, "UserId": 1833220977560785u64, "EventTime": at.text(),
           "MessageBody": body})
}

impl Gen {
    fn json(&self) -> Value {
        use Gen::*;
        match self.clone() {
            Upload {
                at,
                media,
                status,
                size,
            } => envelope(
                "FileUploadComplete",
                at,
                json!({"Status": status.text(), "MediaId": media.id(), "MediaType": "video",
                       "AppId": "app-1", "FileUrl": format!("https://b/{size}.mp4"),
                       "Size": size.to_string()}),
            ),
            UrlUpload {
                at,
                media,
                job,
                status,
            } => envelope(
                "UploadByURLComplete",
                at,
                json!({"Status": status.text(), "MediaId": media.id(), "MediaType": "video",
                       "AppId": "app-1", "SourceURL": "https://src/x.mp4", "JobId": job.id()}),
            ),
            Register { at, media, status } => envelope(
                "RegisterMediaComplete",
                at,
                json!({"Status": status.text(), "MediaId": media.id()}),
            ),
            Delete {
                at,
                media,
                status,
                all,
            } => envelope(
                "DeleteMediaComplete",
                at,
                json!({"Status": status.text(), "MediaId": media.id(),
                       "DeleteType": if all { "all" } else { "transcode" }}),
            ),
            BaseChange {
                at,
                media,
                title,
                status,
            } => envelope(
                "MediaBaseChangeComplete",
                at,
                json!({"Status": status.text(), "MediaId": media.id(), "MediaType": "video",
                       "OperateMode": "update",
                       "MediaContent": json!({"Title": json!({"OldValue": "t",
                           "NewValue": format!("title {title}")}).to_string()}).to_string()}),
            ),
            Analysis {
                at,
                media,
                duration,
                fps,
            } => envelope(
                "VideoAnalysisComplete",
                at,
                json!({"Status": "Success", "MediaId": media.id(), "FileUrl": "https://b/x.mp4",
                       "MetaInfo": {"Size": "10", "Duration": finite(duration), "Bitrate": "1.5",
                                    "Width": 1280, "Height": "720", "Fps": finite(fps)}}),
            ),
            Workflow {
                at,
                task,
                media,
                status,
            } => envelope(
                "WorkflowTaskComplete",
                at,
                json!({"TaskInput": json!({"Type": "Media", "Media": media.id()}).to_string(),
                       "TaskId": format!("task-{}", task % 3), "WorkflowId": "SW-1",
                       "Status": status.text(), "CreateTime": at.text()}),
            ),
            Produce {
                at,
                job,
                media,
                master,
                status,
            } => {
                let mut body = json!({"Status": status.text(), "ProjectId": "p-1",
                                      "JobId": job.id(), "MediaURL": "https://b/p.mp4"});
                // A successful production names its media.
                if let Some(m) = media.or((status.text() == "Success").then_some(Media(0))) {
                    body["MediaId"] = json!(m.id());
                }
                if let Some(m) = master {
                    body["MasterJobId"] = json!(m.id());
                }
                envelope("ProduceMediaComplete", at, body)
            }
            ConvertComplete { at, job, status } => envelope(
                "MediaConvertComplete",
                at,
                json!({"JobId": job.id(), "Status": status.text(), "TriggerSource": "API",
                       "FinishTime": at.text()}),
            ),
            ConvertGroup {
                at,
                job,
                task,
                status,
            } => envelope(
                "MediaConvertOutputGroupComplete",
                at,
                json!({"JobId": job.id(), "TaskId": format!("g-{}", task % 3), "Name": "HLS",
                       "Status": status.text(), "TriggerSource": "API"}),
            ),
            ConvertOutput {
                at,
                job,
                media,
                task,
                status,
            } => {
                let mut body = json!({"JobId": job.id(), "TaskId": format!("t-{}", task % 3),
                                      "Name": "720P", "Status": status.text(),
                                      "TriggerSource": "API", "OutputUrl": "https://b/o.mp4"});
                if let Some(m) = media {
                    body["MediaId"] = json!(m.id());
                }
                envelope("MediaConvertOutputComplete", at, body)
            }
            Transcode {
                at,
                job,
                parent,
                status,
            } => envelope(
                "TranscodeComplete",
                at,
                json!({"Status": status.text(), "JobId": job.id(), "ParentJobId": parent.id(),
                       "TriggerSource": "API", "FinishTime": at.text(),
                       "OutputUrl": "https://b/t.mp4", "OutFileMeta": {"fileBasicInfo": {}}}),
            ),
            TranscodeParent {
                at,
                parent,
                jobs,
                status,
            } => envelope(
                "TranscodeParentComplete",
                at,
                json!({"Status": status.text(), "ParentJobId": parent.id(), "Name": "n",
                       "TriggerSource": "API", "FinishTime": at.text(),
                       "Jobs": jobs.iter().take(4).map(|(j, s)| json!({
                           "JobId": j.id(), "Status": s.text(), "OutputUrl": "https://b/s.mp4"
                       })).collect::<Vec<_>>()}),
            ),
            AiAudit {
                at,
                job,
                media,
                status,
            } => envelope(
                "AIMediaAuditComplete",
                at,
                json!({"Status": status.text(), "JobId": job.id(),
                       "MediaId": json!({"media": media.id(), "type": "Media"}).to_string()}),
            ),
            LiveStatus { at, job, event } => {
                let events = [
                    "record_started",
                    "record_paused",
                    "record_resumed",
                    "record_stopped",
                ];
                let event = events[usize::from(event % 4)];
                envelope(
                    "LiveRecordTaskStatus",
                    at,
                    json!({"jobId": job.id(), "session": "s-1", "event": event}),
                )
            }
            LiveFile {
                at,
                job,
                record,
                duration,
            } => envelope(
                "LiveRecordFileCreated",
                at,
                json!({"jobId": job.id(), "record_id": format!("r-{record}"),
                       "duration": finite(duration), "start_time": 1, "stop_time": 4,
                       "uri": format!("record/{record}.m3u8")}),
            ),
            Unknown { at, n } => envelope("SomeFutureEvent", at, json!({"N": n})),
        }
    }
}

/// Many distinct files of one live recording, so that its history
/// overflows [`HISTORY_LIMIT`] and gets truncated.
#[derive(Debug, Arbitrary)]
struct Burst {
    job: Job,
    count: u8,
    base: u8,
}

impl Burst {
    fn events(&self) -> impl Iterator<Item = Gen> + '_ {
        // Enough to overflow the history, few enough to stay fast.
        (0..self.count % (HISTORY_LIMIT as u8 + 16)).map(|i| Gen::LiveFile {
            at: At {
                instant: self.base.wrapping_add(i.wrapping_mul(7)),
                spelling: i,
            },
            job: self.job,
            record: i,
            duration: 1.0,
        })
    }
}

#[derive(Debug, Arbitrary)]
struct Input {
    events: Vec<Gen>,
    burst: Option<Burst>,
    /// Drives a Fisher–Yates shuffle of the delivery.
    shuffle: Vec<u16>,
    /// Events delivered again (indices, modulo the number of events).
    duplicates: Vec<u16>,
    /// In the through-JSON fold, round trip before every (n % 8 + 1)-th change.
    round_trip_every: u8,
}

/// One event, ready to apply.
struct Prepared {
    json: Value,
    meta: EventMeta,
    changes: Vec<Change>,
}

fn prepare(generated: &Gen) -> Prepared {
    let json = generated.json();
    let fingerprint = Fingerprint::of_value(&json);
    let event = Event::from_value(json.clone())
        .unwrap_or_else(|r| panic!("the generator made an invalid event: {r}\n{json}"));
    let (meta, changes) = derive(event, &fingerprint);
    Prepared {
        json,
        meta,
        changes,
    }
}

type States = BTreeMap<String, ResourceState>;

/// Events taken from one input (besides a burst): the cost of an input
/// grows with the square of its events on one resource.
const MAX_EVENTS: usize = 160;

/// Applies events in `order`; with `through_json = Some(k)`, a state is
/// serialised and read back before every k-th change, as the store does
/// before every change (every one would be slow: k is up to the input).
fn fold(events: &[Prepared], order: &[usize], through_json: Option<usize>) -> States {
    let mut states = States::new();
    let mut applied = 0usize;
    for &i in order {
        let event = &events[i];
        for change in &event.changes {
            let state = states
                .entry(change.key.to_string())
                .or_insert_with(|| ResourceState::new(&change.key));
            applied += 1;
            if through_json.is_some_and(|k| applied % k == 0) {
                let bytes = serde_json::to_vec(&*state).expect("a state serialises");
                *state = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                    panic!(
                        "a state does not decode: {e}\n{}",
                        String::from_utf8_lossy(&bytes)
                    )
                });
            }
            state.apply(&event.meta, change);
        }
    }
    states
}

fn bytes(states: &States) -> BTreeMap<&str, Vec<u8>> {
    states
        .iter()
        .map(|(k, s)| {
            (
                k.as_str(),
                serde_json::to_vec(s).expect("a state serialises"),
            )
        })
        .collect()
}

fn well_formed(state: &ResourceState) {
    assert!(state.history.len() <= HISTORY_LIMIT, "{}", state.key);
    assert!(
        state.history.windows(2).all(|w| w[0].stamp < w[1].stamp),
        "{}: history not strictly sorted",
        state.key
    );
    assert_eq!(
        state.updated_at.as_deref(),
        state.history.last().map(|h| h.at.as_str()),
        "{}",
        state.key
    );
    assert_eq!(
        state.deleted.is_some(),
        state.status == "deleted",
        "{}",
        state.key
    );
}

fuzz_target!(|input: Input| {
    let burst = input.burst.iter().flat_map(Burst::events);
    let events: Vec<Prepared> = input
        .events
        .iter()
        .take(MAX_EVENTS)
        .cloned()
        .chain(burst)
        .map(|g| prepare(&g))
        .collect();
    if events.is_empty() {
        return;
    }
    let n = events.len();

    let given: Vec<usize> = (0..n).collect();
    let mut delivery = given.clone();
    delivery.extend(
        input
            .duplicates
            .iter()
            .take(MAX_EVENTS)
            .map(|&d| usize::from(d) % n),
    );
    let mut swaps = input.shuffle.iter().cycle();
    if !input.shuffle.is_empty() {
        for i in (1..delivery.len()).rev() {
            let j = usize::from(*swaps.next().expect("cycle")) % (i + 1);
            delivery.swap(i, j);
        }
    }

    let a = fold(&events, &given, None);
    let b = fold(&events, &delivery, None);
    let c = fold(
        &events,
        &delivery,
        Some(usize::from(input.round_trip_every % 8) + 1),
    );
    let (ab, bb, cb) = (bytes(&a), bytes(&b), bytes(&c));
    if ab != bb || ab != cb {
        let events: Vec<String> = events.iter().map(|e| e.json.to_string()).collect();
        for (key, expected) in &ab {
            for (name, got) in [("permuted", &bb), ("through JSON", &cb)] {
                let got = got
                    .get(key)
                    .map(|g| String::from_utf8_lossy(g).into_owned());
                let expected = String::from_utf8_lossy(expected);
                assert_eq!(
                    got.as_deref(),
                    Some(&*expected),
                    "{key}: {name} differs from in-order\nevents:\n{}\ndelivery: {delivery:?}",
                    events.join("\n")
                );
            }
        }
        panic!(
            "different resource sets: {:?} {:?} {:?}",
            ab.keys(),
            bb.keys(),
            cb.keys()
        );
    }
    a.values().for_each(well_formed);

    // Everything once more: nothing changes. `apply` mutates only when it
    // reports `Applied`, so comparing the final bytes suffices.
    let mut again = a.clone();
    for event in &events {
        for change in &event.changes {
            let state = again.get_mut(change.key.as_str()).expect("resource exists");
            match state.apply(&event.meta, change) {
                ApplyOutcome::Duplicate => {}
                ApplyOutcome::Stale => assert_eq!(
                    state.history.len(),
                    HISTORY_LIMIT,
                    "{}: re-applying {} is stale although the history is not full",
                    change.key,
                    event.json
                ),
                ApplyOutcome::Applied => {
                    panic!(
                        "re-applying {} reported Applied on {}",
                        event.json, change.key
                    )
                }
            }
        }
    }
    assert!(
        bytes(&again) == ab,
        "applying everything again changed a state"
    );
});

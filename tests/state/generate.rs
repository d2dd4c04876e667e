//! Random IMS events over a few resources, for property tests: few ids
//! and few distinct times, so that collisions and ties are common.

use proptest::prelude::*;
use serde_json::{Value, json};

const MEDIA: [&str; 2] = ["m-aaaa", "m-bbbb"];
const JOBS: [&str; 2] = ["j-1111", "j-2222"];

fn time(seconds: u8, fraction: bool) -> String {
    // Same instant, two spellings: the tie-break must still be total.
    if fraction {
        format!("2026-01-01T00:00:{seconds:02}.000Z")
    } else {
        format!("2026-01-01T00:00:{seconds:02}Z")
    }
}

fn envelope(event_type: &str, at: String, body: Value) -> Value {
    json!({"EventType": event_type, "UserId": 1833220977560785u64, "EventTime": at, "MessageBody": body})
}

fn status(ok: bool) -> &'static str {
    if ok { "Success" } else { "Fail" }
}

/// One random event.
pub fn event() -> impl Strategy<Value = Value> {
    let at = (0u8..6, any::<bool>()).prop_map(|(s, f)| time(s, f));
    let media = prop::sample::select(&MEDIA[..]);
    let job = prop::sample::select(&JOBS[..]);
    prop_oneof![
        (at.clone(), media.clone(), any::<bool>(), 1u64..4).prop_map(|(at, m, ok, size)| envelope(
            "FileUploadComplete",
            at,
            json!({"Status": status(ok), "MediaId": m, "MediaType": "video", "AppId": "app-1000000",
                   "FileUrl": format!("https://b/{m}-{size}.mp4"), "Size": size.to_string()})
        )),
        (at.clone(), media.clone(), any::<bool>(), prop::sample::select(&["all", "transcode"][..]))
            .prop_map(|(at, m, ok, kind)| envelope(
                "DeleteMediaComplete",
                at,
                json!({"Status": status(ok), "MediaId": m, "DeleteType": kind})
            )),
        (at.clone(), media.clone(), 0u8..3).prop_map(|(at, m, n)| envelope(
            "MediaBaseChangeComplete",
            at,
            json!({"Status": "Success", "MediaId": m, "MediaType": "video", "OperateMode": "update",
                   "MediaContent": json!({"Title": json!({"OldValue": "t", "NewValue": format!("title {n}")}).to_string()}).to_string()})
        )),
        (at.clone(), media.clone(), 1u32..100).prop_map(|(at, m, d)| envelope(
            "VideoAnalysisComplete",
            at,
            json!({"Status": "Success", "MediaId": m, "FileUrl": "https://b/x.mp4",
                   "MetaInfo": {"Size": "10", "Duration": d.to_string(), "Bitrate": "1.5", "Width": 1280, "Height": "720", "Fps": 25.0}})
        )),
        (at.clone(), job.clone(), media.clone(), any::<bool>()).prop_map(|(at, j, m, ok)| envelope(
            "ProduceMediaComplete",
            at,
            json!({"Status": status(ok), "MediaURL": format!("https://b/{m}.mp4"), "MediaId": m,
                   "ProjectId": "p-1", "JobId": j})
        )),
        (at.clone(), job.clone(), media.clone(), 0u8..3, any::<bool>()).prop_map(|(at, j, m, task, ok)| envelope(
            "MediaConvertOutputComplete",
            at,
            json!({"JobId": j, "TaskId": format!("t-{task}"), "MediaId": m, "Name": "720P",
                   "Status": status(ok), "TriggerSource": "API", "OutputUrl": "https://b/o.mp4"})
        )),
        (at.clone(), job.clone(), prop::sample::select(&["Complete", "Fail", "Processing"][..]))
            .prop_map(|(at, j, s)| envelope(
                "MediaConvertComplete",
                at.clone(),
                json!({"JobId": j, "Status": s, "TriggerSource": "API", "FinishTime": at})
            )),
        (at.clone(), job.clone(), prop::sample::select(&["record_started", "record_paused", "record_resumed"][..]))
            .prop_map(|(at, j, e)| envelope(
                "LiveRecordTaskStatus",
                at,
                json!({"jobId": j, "event": e, "session": "s-1"})
            )),
        (at.clone(), job.clone(), 0u8..4).prop_map(|(at, j, r)| envelope(
            "LiveRecordFileCreated",
            at,
            json!({"jobId": j, "record_id": format!("r-{r}"), "duration": 3.5, "start_time": 1,
                   "stop_time": 4, "uri": format!("record/{r}.m3u8")})
        )),
        (at, media, prop::sample::select(&["Succeed", "Fail"][..])).prop_map(|(at, m, s)| envelope(
            "WorkflowTaskComplete",
            at.clone(),
            json!({"TaskInput": json!({"Type": "Media", "Media": m}).to_string(), "TaskId": "task-1",
                   "WorkflowId": "SW-1", "Status": s, "CreateTime": at})
        )),
    ]
}

/// A set of events, and a delivery of it: shuffled, with duplicates.
pub fn delivery() -> impl Strategy<Value = (Vec<Value>, Vec<Value>)> {
    prop::collection::vec(event(), 1..14).prop_flat_map(|events| {
        let n = events.len();
        let dups = prop::collection::vec(0..n, 0..n + 1);
        (Just(events), dups).prop_flat_map(|(events, dups)| {
            let mut delivered = events.clone();
            delivered.extend(dups.into_iter().map(|i| events[i].clone()));
            (Just(events), Just(delivered).prop_shuffle())
        })
    })
}

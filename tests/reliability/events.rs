//! Generated IMS events: many distinct events on one resource, or spread
//! over many, each with a field that proves it was applied.

use serde_json::json;

/// Seconds of 2024-01-01T00:00:00Z; event times count up from it.
const BASE: i64 = 1_704_067_200;

fn utc(offset_s: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(BASE + offset_s).unwrap();
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

/// One generated event and where its effect must be visible.
#[derive(Clone, Debug)]
pub struct Generated {
    pub body: Vec<u8>,
    /// The resource it touches (`live-record/…`, `media/…`).
    pub key: String,
    /// A field of that resource this event writes, and the value; for
    /// last-writer-wins fields overwritten by newer events, `None`.
    pub field: Option<(String, serde_json::Value)>,
}

/// `LiveRecordFileCreated` number `i` of live job `job`: its own
/// `record_id`, so its `files/{record_id}/uri` field stays in the state
/// whatever else arrives (unlike the 64-entry history).
pub fn live_file(job: &str, i: usize) -> Generated {
    let record = format!("rec-{i:05}");
    let uri = format!("record/{job}/{record}.m3u8");
    let start = BASE + i as i64 * 60;
    let body = json!({
        "EventType": "LiveRecordFileCreated",
        "UserId": 1833220977560785u64,
        "EventTime": utc(i as i64 * 60 + 60),
        "MessageBody": {
            "duration": 59.5,
            "jobId": job,
            "record_id": record,
            "start_time": start,
            "stop_time": start + 60,
            "uri": uri,
        }
    });
    Generated {
        body: serde_json::to_vec_pretty(&body).unwrap(),
        key: format!("live-record/{job}"),
        field: Some((format!("files/{record}/uri"), json!(uri))),
    }
}

/// `MediaBaseChangeComplete` number `i` on media `media`: a new title at a
/// distinct time. Only the newest title survives in `info/Title`; each
/// event is in the history (fewer than 64 per media here).
pub fn media_change(media: &str, i: usize) -> Generated {
    let content = json!({
        "Title": json!({"OldValue": format!("title {}", i.saturating_sub(1)), "NewValue": format!("title {i}")}).to_string(),
    });
    let body = json!({
        "EventType": "MediaBaseChangeComplete",
        "UserId": 1833202230104519u64,
        "EventTime": utc(i as i64),
        "MessageBody": {
            "Status": "Success",
            "MediaId": media,
            "MediaType": "video",
            "OperateMode": "update",
            "MediaContent": content.to_string(),
        }
    });
    Generated {
        body: serde_json::to_vec(&body).unwrap(),
        key: format!("media/{media}"),
        field: None,
    }
}

/// A 32-hex-digit media id for number `n`.
pub fn media_id(n: usize) -> String {
    format!("{n:08x}{:024x}", 0x5eed_u64)
}

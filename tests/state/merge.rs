//! The merge rule, pure (no store): the state depends only on the set of
//! events, never on order or repetition; deletion is terminal.

use crate::generate::{delivery, event};
use ims_callback::event::Event;
use ims_callback::state::{ApplyOutcome, Fingerprint, HISTORY_LIMIT, ResourceState, derive};
use proptest::prelude::*;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Applies `events` in order; returns each resource's serialised state and
/// the outcomes.
pub fn fold(events: &[Value]) -> (BTreeMap<String, Vec<u8>>, Vec<ApplyOutcome>) {
    let mut states: BTreeMap<String, ResourceState> = BTreeMap::new();
    let mut outcomes = Vec::new();
    for value in events {
        let fingerprint = Fingerprint::of_value(value);
        let event = Event::from_value(value.clone()).expect("generated events are valid");
        let (meta, changes) = derive(event, &fingerprint);
        for change in &changes {
            let state = states
                .entry(change.key.to_string())
                .or_insert_with(|| ResourceState::new(&change.key));
            outcomes.push(state.apply(&meta, change));
        }
    }
    let bytes = states
        .into_iter()
        .map(|(k, s)| {
            // The write path's hand-written form is serde_json's, byte for byte.
            let mut written = Vec::new();
            s.write_json(&mut written);
            assert_eq!(
                String::from_utf8(written.clone()).unwrap(),
                serde_json::to_string(&s).unwrap()
            );
            (k, written)
        })
        .collect();
    (bytes, outcomes)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_order_with_duplicates_gives_byte_identical_states((events, delivered) in delivery()) {
        let (expected, _) = fold(&events);
        let (got, _) = fold(&delivered);
        prop_assert_eq!(got, expected);
    }

    #[test]
    fn applying_an_event_twice_changes_nothing(events in prop::collection::vec(event(), 1..10)) {
        let (once, _) = fold(&events);
        let twice: Vec<Value> = events.iter().chain(events.iter()).cloned().collect();
        let (got, outcomes) = fold(&twice);
        prop_assert_eq!(got, once);
        // The second pass is recognised as duplicates.
        let (_, first_pass) = fold(&events);
        prop_assert!(outcomes[first_pass.len()..].iter().all(|o| *o == ApplyOutcome::Duplicate));
    }

    #[test]
    fn a_deleted_media_stays_deleted_whatever_arrives_late(
        before in prop::collection::vec(event(), 0..10),
        seconds in 1u8..5,
    ) {
        let deletion = json!({
            "EventType": "DeleteMediaComplete", "UserId": 1, "EventTime": format!("2026-01-01T00:00:{seconds:02}Z"),
            "MessageBody": {"Status": "Success", "MediaId": "m-aaaa", "DeleteType": "all"}
        });
        // Deletion first, then everything else (including older uploads).
        let mut delivered = vec![deletion];
        delivered.extend(before);
        let (states, _) = fold(&delivered);
        let media: Value = serde_json::from_slice(&states["media/m-aaaa"]).unwrap();
        prop_assert_eq!(&media["status"], "deleted");
    }
}

#[test]
fn a_late_upload_from_before_the_deletion_does_not_resurrect_the_media() {
    let upload = json!({"EventType": "FileUploadComplete", "UserId": 1, "EventTime": "2026-01-01T00:00:01Z",
        "MessageBody": {"Status": "Success", "MediaId": "m-1", "MediaType": "video", "AppId": "a",
                        "FileUrl": "https://b/1.mp4", "Size": "1"}});
    let delete = json!({"EventType": "DeleteMediaComplete", "UserId": 1, "EventTime": "2026-01-01T00:00:05Z",
        "MessageBody": {"Status": "Success", "MediaId": "m-1", "DeleteType": "all"}});
    let (states, outcomes) = fold(&[delete.clone(), upload.clone()]);
    let media: Value = serde_json::from_slice(&states["media/m-1"]).unwrap();
    assert_eq!(media["status"], "deleted");
    assert_eq!(media["deleted"]["at"], "2026-01-01T00:00:05Z");
    assert_eq!(outcomes, [ApplyOutcome::Applied, ApplyOutcome::Applied]);
    assert_eq!(fold(&[upload, delete]).0, states);
}

#[test]
fn a_partial_or_failed_deletion_is_not_terminal() {
    for (status, kind) in [("Success", "transcode"), ("Fail", "all")] {
        let upload = json!({"EventType": "FileUploadComplete", "UserId": 1, "EventTime": "2026-01-01T00:00:01Z",
            "MessageBody": {"Status": "Success", "MediaId": "m-1", "MediaType": "video", "AppId": "a",
                            "FileUrl": "https://b/1.mp4", "Size": "1"}});
        let delete = json!({"EventType": "DeleteMediaComplete", "UserId": 1, "EventTime": "2026-01-01T00:00:05Z",
            "MessageBody": {"Status": status, "MediaId": "m-1", "DeleteType": kind}});
        let (states, _) = fold(&[upload, delete]);
        let media: Value = serde_json::from_slice(&states["media/m-1"]).unwrap();
        assert_eq!(media["status"], "uploaded", "{status} {kind}");
    }
}

#[test]
fn fields_are_last_writer_wins_by_event_time() {
    let title = |at: &str, title: &str| {
        json!({"EventType": "MediaBaseChangeComplete", "UserId": 1, "EventTime": at,
        "MessageBody": {"Status": "Success", "MediaId": "m-1", "MediaType": "video", "OperateMode": "update",
            "MediaContent": json!({"Title": json!({"OldValue": "", "NewValue": title}).to_string()}).to_string()}})
    };
    let new = title("2026-01-01T00:00:09Z", "new");
    let old = title("2026-01-01T00:00:01Z", "old");
    let (states, outcomes) = fold(&[new.clone(), old.clone()]);
    let media: ResourceState = serde_json::from_slice(&states["media/m-1"]).unwrap();
    assert_eq!(media.field("info/Title"), Some(&json!("new")));
    assert_eq!(media.updated_at.as_deref(), Some("2026-01-01T00:00:09Z"));
    assert_eq!(
        outcomes[1],
        ApplyOutcome::Applied,
        "the old event still enters the history"
    );
    assert_eq!(fold(&[old, new]).0, states);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn a_truncated_history_is_still_order_independent(
        order in Just((0..HISTORY_LIMIT as u32 + 40).collect::<Vec<_>>()).prop_shuffle()
    ) {
        let file = |i: u32| json!({"EventType": "LiveRecordFileCreated", "UserId": 1,
            "EventTime": format!("2026-01-01T00:{:02}:{:02}Z", i / 60, i % 60),
            "MessageBody": {"jobId": "live-1", "record_id": format!("r-{i}"), "duration": 1.0,
                            "start_time": i, "stop_time": i + 1, "uri": format!("r/{i}.m3u8")}});
        let sorted: Vec<Value> = (0..HISTORY_LIMIT as u32 + 40).map(file).collect();
        let shuffled: Vec<Value> = order.into_iter().map(file).collect();
        let (expected, _) = fold(&sorted);
        let (got, _) = fold(&shuffled);
        prop_assert_eq!(&got, &expected);
        let state: Value = serde_json::from_slice(&expected["live-record/live-1"]).unwrap();
        prop_assert_eq!(state["history"].as_array().unwrap().len(), HISTORY_LIMIT);
        // Every file is in the fields, even those whose history line is gone.
        prop_assert_eq!(
            state["fields"].as_object().unwrap().keys().filter(|k| k.ends_with("/uri")).count(),
            HISTORY_LIMIT + 40
        );
    }
}

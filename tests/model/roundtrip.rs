//! Round trip: parse → serialise → parse keeps every field, unknown ones
//! included, in the form IMS sent it.

use crate::helpers::{events_dir, json_files};
use ims_callback::event::Event;
use serde_json::{Value, json};

#[test]
fn every_sample_round_trips_to_the_same_json() {
    for path in json_files(&events_dir()) {
        let bytes = std::fs::read(&path).unwrap();
        let original: Value = serde_json::from_slice(&bytes).unwrap();
        let event = Event::from_slice(&bytes).unwrap();
        let written = serde_json::to_vec(&event).unwrap();
        assert_eq!(
            serde_json::from_slice::<Value>(&written).unwrap(),
            original,
            "{}",
            path.display()
        );
        assert_eq!(
            Event::from_slice(&written).unwrap(),
            event,
            "{}",
            path.display()
        );
    }
}

#[test]
fn unknown_fields_survive_at_every_level() {
    let raw = json!({
        "EventType": "VideoAnalysisComplete",
        "UserId": 1,
        "EventTime": "2022-07-15T08:52:17Z",
        "RequestId": "top-level-extra",
        "MessageBody": {
            "Status": "Success",
            "FileUrl": "https://x/y.mp4",
            "MediaId": "m1",
            "NewField": {"nested": [1, 2.5, "three", null]},
            "MetaInfo": {
                "Size": "1", "Duration": "2.0", "Bitrate": "3", "Height": 4, "Width": "5",
                "Fps": 25.0, "Rotate": "90"
            }
        }
    });
    let event = Event::from_value(raw.clone()).unwrap();
    assert_eq!(event.extra["RequestId"], json!("top-level-extra"));
    let back = serde_json::to_value(&event).unwrap();
    assert_eq!(back, raw);
    let again = Event::from_value(back).unwrap();
    assert_eq!(again, event);
}

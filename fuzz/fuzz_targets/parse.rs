//! `parse`: arbitrary bytes through the event model, the way every entry
//! point sees an input: parse, classify and validate
//! ([`Event::from_slice`]), the validation report, and — for a valid event —
//! derive its state changes and apply them.
//!
//! Asserted:
//! - nothing panics;
//! - a rejection lists at least one problem, and its report says
//!   `valid: false` with exactly those problems;
//! - the report always serialises to a JSON object;
//! - a valid event re-serialises (`serde_json::to_vec`) and re-parses to an
//!   equal event, whose own re-serialisation is byte-identical;
//! - derive gives distinct, well-formed resource keys; applied to fresh
//!   states each change is `Applied`, a second time `Duplicate`, and a state
//!   survives the store's JSON round trip unchanged.

#![no_main]

use ims_callback::event::Event;
use ims_callback::state::{ApplyOutcome, Fingerprint, ResourceKey, ResourceState, derive};
use ims_callback::validate::Report;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| check(data));

fn check(data: &[u8]) {
    let result = Event::from_slice(data);

    let report = Report::new("fuzz", &result);
    assert_eq!(report.valid, result.is_ok());
    let json = serde_json::to_vec(&report).expect("a report serialises");
    let json: Value = serde_json::from_slice(&json).expect("a report is JSON");
    assert!(json.is_object(), "report: {json}");

    let event = match result {
        Ok(event) => event,
        Err(rejection) => {
            assert!(
                !rejection.problems.is_empty(),
                "a rejection without problems: {rejection:?}"
            );
            assert_eq!(
                json["problems"].as_array().map(Vec::len),
                Some(rejection.problems.len())
            );
            // Display must not panic either (it is what the logs show).
            let _ = rejection.to_string();
            return;
        }
    };

    // Round trip: what we would store or forward parses back to the same event.
    let bytes = serde_json::to_vec(&event).expect("an event serialises");
    let again = match Event::from_slice(&bytes) {
        Ok(again) => again,
        Err(rejection) => panic!(
            "re-serialised event is rejected: {rejection}\n  input: {}\n  output: {}",
            String::from_utf8_lossy(data),
            String::from_utf8_lossy(&bytes)
        ),
    };
    assert!(
        again == event,
        "re-parsed event differs\n  input: {}\n  output: {}\n  before: {event:?}\n  after: {again:?}",
        String::from_utf8_lossy(data),
        String::from_utf8_lossy(&bytes)
    );
    assert_eq!(
        serde_json::to_vec(&again).expect("serialises"),
        bytes,
        "second re-serialisation differs"
    );

    // Derive and apply, as the pipeline does.
    let value: Value = serde_json::from_slice(data).expect("a valid event is JSON");
    let fingerprint = Fingerprint::of_value(&value);
    let (meta, changes) = derive(event.clone(), &fingerprint);
    assert_eq!(&*meta.stamp.fingerprint, fingerprint.as_str());
    for (i, change) in changes.iter().enumerate() {
        let key = change.key.as_str();
        assert!(!change.key.id().is_empty(), "empty id in {key}");
        assert_eq!(
            ResourceKey::try_from(key).as_ref(),
            Ok(&change.key),
            "key does not parse back"
        );
        assert!(
            changes[..i].iter().all(|c| c.key != change.key),
            "{key} changed twice by one event"
        );
        let mut state = ResourceState::new(&change.key);
        assert_eq!(state.apply(&meta, change), ApplyOutcome::Applied);
        let stored = serde_json::to_vec(&state).expect("a state serialises");
        let read: ResourceState = serde_json::from_slice(&stored).unwrap_or_else(|e| {
            panic!(
                "stored state does not decode: {e}\n  {}",
                String::from_utf8_lossy(&stored)
            )
        });
        assert!(
            read == state,
            "state changed through JSON\n  {}",
            String::from_utf8_lossy(&stored)
        );
        let mut again = read;
        assert_eq!(again.apply(&meta, change), ApplyOutcome::Duplicate);
        assert_eq!(serde_json::to_vec(&again).expect("serialises"), stored);
        let _ = state.view();
    }
}

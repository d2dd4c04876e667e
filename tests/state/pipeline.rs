//! The same properties through the pipeline and real stores (memory and a
//! redb file): the stored bytes of every resource depend only on the set.

use crate::generate::{delivery, event};
use ims_callback::admission::{Limits, ReceivedAt};
use ims_callback::pipeline::{Pipeline, PipelineError};
use ims_callback::state::ResourceKind;
use ims_callback::store::{AnyStore, MemoryStore, Store};
use proptest::prelude::*;
use serde_json::Value;
use std::collections::BTreeMap;

/// The receiver's clock in these tests: an hour after the generated
/// events (2026-01-01T00:00:0xZ), so all of them are in its past.
const NOW: i128 = (1_767_225_600 + 3600) * 1_000_000_000;

fn at() -> ReceivedAt {
    ReceivedAt::from_unix_nanos(NOW)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Every resource's stored bytes.
async fn resources<S: Store>(store: &S) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for kind in ResourceKind::ALL {
        let prefix = format!("{}/", kind.as_str());
        for (key, found) in store.list_prefix(&prefix, None, 1000).await.unwrap() {
            out.insert(key, found.value);
        }
    }
    out
}

async fn deliver<S: Store>(pipeline: &Pipeline<S>, events: &[Value]) {
    for e in events {
        pipeline
            .process(&serde_json::to_vec(e).unwrap(), at())
            .await
            .unwrap();
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn memory_store_states_depend_only_on_the_set((events, delivered) in delivery()) {
        runtime().block_on(async {
            let (a, b) = (Pipeline::new(MemoryStore::new()), Pipeline::new(MemoryStore::new()));
            deliver(&a, &events).await;
            deliver(&b, &delivered).await;
            assert_eq!(resources(a.store()).await, resources(b.store()).await);
        });
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(8))]

    #[test]
    fn redb_store_states_depend_only_on_the_set((events, delivered) in delivery()) {
        let dir = tempfile::tempdir().unwrap();
        runtime().block_on(async {
            let a = Pipeline::new(AnyStore::open(&format!("redb:{}", dir.path().join("a.redb").display())).await.unwrap());
            let b = Pipeline::new(AnyStore::open(&format!("redb:{}", dir.path().join("b.redb").display())).await.unwrap());
            deliver(&a, &events).await;
            deliver(&b, &delivered).await;
            assert_eq!(resources(a.store()).await, resources(b.store()).await);
        });
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// An event dated beyond the allowed skew changes no state wherever it
    /// arrives; every legitimate event after it still applies; and it is
    /// kept, so a replay once its time has come applies it like any other.
    #[test]
    fn an_event_from_beyond_the_skew_changes_nothing(
        (_, delivered) in delivery(),
        future in event(),
        position in any::<prop::sample::Index>(),
        ahead_secs in 1u64..10_000_000,
        skew_secs in prop::sample::select(&[0u64, 1, 600, 86_400][..]),
    ) {
        let limits = Limits { max_clock_skew: std::time::Duration::from_secs(skew_secs), ..Limits::default() };
        let mut future = future;
        let when = time::OffsetDateTime::from_unix_timestamp_nanos(
            NOW + i128::from(skew_secs + ahead_secs) * 1_000_000_000,
        )
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
        future["EventTime"] = Value::from(when);
        runtime().block_on(async {
            let (clean, attacked) = (
                Pipeline::with_limits(MemoryStore::new(), limits),
                Pipeline::with_limits(MemoryStore::new(), limits),
            );
            deliver(&clean, &delivered).await;
            let split = position.index(delivered.len() + 1);
            deliver(&attacked, &delivered[..split]).await;
            let result = attacked.process(&serde_json::to_vec(&future).unwrap(), at()).await;
            let Err(PipelineError::Rejected { rejection, stored_as: Some(kept) }) = result else {
                panic!("an event from the future was not held back: {result:?}");
            };
            assert_eq!(rejection.problems[0].path, "/EventTime");
            // The rest, through `deliver`, each applied without error.
            deliver(&attacked, &delivered[split..]).await;
            assert_eq!(resources(clean.store()).await, resources(attacked.store()).await);

            // Once its time has come, replay applies it: the same state as
            // delivering it normally.
            let later = ReceivedAt::from_unix_nanos(NOW + i128::from(ahead_secs + skew_secs) * 1_000_000_000);
            let replayed = attacked.replay(later).await.unwrap();
            assert!(replayed.iter().any(|r| r.key == kept && r.processed.is_some()));
            clean.process(&serde_json::to_vec(&future).unwrap(), later).await.unwrap();
            assert_eq!(resources(clean.store()).await, resources(attacked.store()).await);
        });
    }
}

#[test]
fn every_event_is_stored_raw_and_rejected_inputs_are_kept() {
    runtime().block_on(async {
        let pipeline = Pipeline::new(MemoryStore::new());
        let store = pipeline.store();
        let body = br#"{"EventType":"FileUploadComplete","UserId":1,"EventTime":"2026-01-01T00:00:00Z",
            "MessageBody":{"Status":"Success","MediaId":"m-1","MediaType":"video","AppId":"a","FileUrl":"u","Size":"1"}}"#;
        let processed = pipeline.process(body, at()).await.unwrap();
        let raw = store.get(&format!("event/{}", processed.fingerprint)).await.unwrap().unwrap();
        let record: Value = serde_json::from_slice(&raw.value).unwrap();
        assert_eq!(record["event"], serde_json::from_slice::<Value>(body).unwrap());
        assert_eq!(record["event_type"], "FileUploadComplete");

        let bad = b"{\"EventType\":\"FileUploadComplete\",\"UserId\":1}\xff";
        let Err(PipelineError::Rejected { rejection, stored_as }) = pipeline.process(bad, at()).await else {
            panic!("accepted");
        };
        assert!(!rejection.problems.is_empty());
        let kept: Value = serde_json::from_slice(&store.get(stored_as.as_deref().unwrap()).await.unwrap().unwrap().value).unwrap();
        assert!(kept["body_hex"].as_str().unwrap().ends_with("ff"), "non-UTF-8 bytes kept exactly");

        let invalid = br#"{"EventType":"FileUploadComplete","UserId":1,"EventTime":"2026-01-01T00:00:00Z","MessageBody":{}}"#;
        let Err(PipelineError::Rejected { stored_as, .. }) = pipeline.process(invalid, at()).await else {
            panic!("accepted");
        };
        let kept: Value = serde_json::from_slice(&store.get(stored_as.as_deref().unwrap()).await.unwrap().unwrap().value).unwrap();
        assert_eq!(kept["body"], std::str::from_utf8(invalid).unwrap());
        assert!(kept["problems"].as_array().unwrap().iter().any(|p| p == "/MessageBody/MediaId: required field missing"));
    });
}

#[test]
fn replay_applies_rejected_inputs_that_are_now_valid() {
    runtime().block_on(async {
        let pipeline = Pipeline::new(MemoryStore::new());
        let store = pipeline.store();
        // Rejected today: the body lacks required fields. Simulate a rule
        // that a newer version no longer has by storing a valid body under
        // the rejected area, as an older version would have.
        let valid = br#"{"EventType":"RegisterMediaComplete","UserId":1,"EventTime":"2026-01-01T00:00:00Z","MessageBody":{"Status":"Success","MediaId":"m-9"}}"#;
        let record = serde_json::json!({
            "fingerprint": "00000000000000000000000000000001",
            "received_at": "2026-01-01T00:00:01Z",
            "event_type": "RegisterMediaComplete",
            "problems": ["/MessageBody/Whatever: required field missing"],
            "body": std::str::from_utf8(valid).unwrap(),
        });
        store.compare_and_set("rejected/00000000000000000000000000000001", None,
            &serde_json::to_vec(&record).unwrap()).await.unwrap();
        let still_bad = br#"{"EventType":"RegisterMediaComplete"}"#;
        assert!(pipeline.process(still_bad, at()).await.is_err());

        let results = pipeline.replay(at()).await.unwrap();
        assert_eq!(results.len(), 2);
        assert_eq!(results.iter().filter(|r| r.processed.is_some()).count(), 1);
        let state = store.get("media/m-9").await.unwrap().unwrap();
        let state: Value = serde_json::from_slice(&state.value).unwrap();
        assert_eq!(state["status"], "registered");
        // A second replay does not re-apply what was replayed.
        let again = pipeline.replay(at()).await.unwrap();
        assert_eq!(again.len(), 1);
        assert!(again[0].processed.is_none());
    });
}

//! The change feed under the merge properties: whatever order and
//! duplication the events arrive in, each resource's last change in the log
//! is its final state, and only events that changed a state are logged.

use crate::generate::delivery;
use ims_callback::changes::{self, Change};
use ims_callback::pipeline::{Pipeline, read_state};
use ims_callback::state::{ApplyOutcome, ResourceKey};
use ims_callback::store::{AnyStore, Cursor, MemoryStore, Store};
use proptest::prelude::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Delivers `events` in order; returns how many resource writes applied.
async fn deliver<S: Store>(pipeline: &Pipeline<S>, events: &[Value]) -> usize {
    let mut applied = 0;
    for e in events {
        let processed = pipeline
            .process(
                &serde_json::to_vec(e).unwrap(),
                ims_callback::admission::ReceivedAt::now(),
            )
            .await
            .unwrap();
        applied += processed
            .resources
            .iter()
            .filter(|r| r.outcome == ApplyOutcome::Applied)
            .count();
    }
    applied
}

/// The whole feed, a page of 7 at a time.
async fn feed<S: Store>(store: &S) -> Vec<Change> {
    let mut all = Vec::new();
    let mut after: Option<Cursor> = None;
    loop {
        let page = changes::read(store, after.as_ref(), 7, Duration::ZERO)
            .await
            .unwrap();
        if page.changes.is_empty() {
            return all;
        }
        all.extend(page.changes);
        after = Some(changes::parse_cursor(&page.next).unwrap());
    }
}

/// Checks the feed of one delivery; returns each resource's last logged state.
async fn check<S: Store>(pipeline: &Pipeline<S>, events: &[Value]) -> BTreeMap<String, Value> {
    let applied = deliver(pipeline, events).await;
    let log = feed(pipeline.store()).await;
    assert_eq!(
        log.len(),
        applied,
        "one change per applied write, none else"
    );
    let mut last: BTreeMap<String, &Change> = BTreeMap::new();
    for change in &log {
        if let Some(before) = last.insert(change.record.key.clone(), change) {
            // Per resource, each change starts where the previous ended.
            assert_eq!(
                change.record.previous_status.as_deref(),
                Some(before.record.status.as_str())
            );
        } else {
            assert_eq!(change.record.previous_status, None);
        }
    }
    let mut states = BTreeMap::new();
    for (key, change) in last {
        let resource = ResourceKey::try_from(key.as_str()).unwrap();
        let state = read_state(pipeline.store(), &resource)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(change.record.state, state.view(), "{key}");
        assert_eq!(change.record.status, state.status, "{key}");
        states.insert(key, change.record.state.clone());
    }
    states
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn memory_feed_ends_at_the_final_state((events, delivered) in delivery()) {
        runtime().block_on(async {
            let a = check(&Pipeline::new(MemoryStore::new()), &events).await;
            let b = check(&Pipeline::new(MemoryStore::new()), &delivered).await;
            assert_eq!(a, b);
        });
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4))]

    #[test]
    fn redb_feed_ends_at_the_final_state((events, delivered) in delivery()) {
        let dir = tempfile::tempdir().unwrap();
        runtime().block_on(async {
            let spec = |name: &str| format!("redb:{}", dir.path().join(name).display());
            let a = AnyStore::open(&spec("a.redb")).await.unwrap();
            let b = AnyStore::open(&spec("b.redb")).await.unwrap();
            let a = check(&Pipeline::new(a), &events).await;
            let b = check(&Pipeline::new(b), &delivered).await;
            assert_eq!(a, b);
        });
    }
}

/// `ims-callback changes` through the binary: every applied write once, in
/// pages that resume from the printed cursor.
#[test]
fn the_cli_prints_the_feed_and_resumes_from_its_cursor() {
    use std::process::Command;
    let bin = || Command::new(env!("CARGO_BIN_EXE_ims-callback"));
    let dir = tempfile::tempdir().unwrap();
    let store = format!("redb:{}", dir.path().join("state.redb").display());
    let events = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("events");
    let invoked = bin()
        .arg("invoke")
        .arg(&events)
        .args(["--store", &store])
        .output()
        .unwrap();
    let applied = String::from_utf8(invoked.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .map(|o| o["resources"].as_array().unwrap().len())
        .sum::<usize>();
    let changes = |args: &[&str]| {
        let out = bin()
            .arg("changes")
            .args(args)
            .args(["--store", &store])
            .output()
            .unwrap();
        let lines: Vec<Value> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        (
            out.status.code(),
            lines,
            String::from_utf8(out.stderr).unwrap(),
        )
    };
    let (code, all, stderr) = changes(&[]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(all.len(), applied);
    assert_eq!(stderr.trim(), format!("next: {applied}"));
    let (_, first, stderr) = changes(&["--limit", "5"]);
    assert_eq!(first, all[..5]);
    let next = stderr.trim().strip_prefix("next: ").unwrap().to_owned();
    let (_, rest, _) = changes(&["--after", &next]);
    assert_eq!(rest, all[5..]);
    let (code, none, stderr) = changes(&["--after", "not-a-cursor"]);
    assert_eq!((code, none.len()), (Some(2), 0));
    assert!(stderr.contains("cursor `not-a-cursor`"), "{stderr}");
}

//! `GET /v1/resources`: the listing through the real server and a real
//! HTTP client, paged while callbacks keep arriving.

use crate::helpers::{TestApp, events_dir, json_files, read, spawn_secured};
use serde_json::Value;
use std::collections::HashSet;

/// Posts one sample; the keys of the resources it changed.
async fn post(app: &TestApp, path: &std::path::Path) -> Vec<String> {
    let answer: Value = app.post_signed("/", read(path)).await.json().await.unwrap();
    answer["resources"]
        .as_array()
        .map(|rs| {
            rs.iter()
                .filter(|r| r["outcome"] == "applied")
                .map(|r| r["key"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

async fn page(app: &TestApp, query: &str) -> Value {
    let response = app.get_authorized(&format!("/v1/resources?{query}")).await;
    assert_eq!(response.status(), 200, "{query}");
    response.json().await.unwrap()
}

#[tokio::test]
async fn listing_pages_exactly_while_callbacks_arrive() {
    let app = spawn_secured(None).await;
    let samples = json_files(&events_dir());
    let (first, second) = samples.split_at(samples.len() / 2);
    let mut before = HashSet::new();
    for path in first {
        before.extend(post(&app, path).await);
    }
    // The second half arrives while the listing pages.
    let writer = async {
        let mut touched = HashSet::new();
        for path in second {
            touched.extend(post(&app, path).await);
        }
        touched
    };
    let pager = async {
        let mut seen = HashSet::new();
        let mut cursor: Option<String> = None;
        loop {
            let query = match &cursor {
                Some(c) => format!("limit=2&cursor={c}"),
                None => "limit=2".to_owned(),
            };
            let got = page(&app, &query).await;
            for r in got["resources"].as_array().unwrap() {
                let key = r["key"].as_str().unwrap().to_owned();
                assert!(
                    r["kind"].is_string() && r["status"].is_string() && r["updated_at"].is_string()
                );
                assert!(seen.insert(key.clone()), "{key} listed twice");
            }
            match got["next"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => break,
            }
        }
        seen
    };
    let (touched, seen) = tokio::join!(writer, pager);
    for key in before.difference(&touched) {
        assert!(seen.contains(key), "{key} was never listed");
    }
    // Filters: every row matches; a status filter lists a subset.
    let jobs = page(&app, "kind=job&limit=1000").await;
    for r in jobs["resources"].as_array().unwrap() {
        assert_eq!(r["kind"], "job");
        let status = r["status"].as_str().unwrap();
        let same = page(&app, &format!("kind=job&status={status}&limit=1000")).await;
        assert!(
            same["resources"]
                .as_array()
                .unwrap()
                .iter()
                .all(|s| s["status"] == status)
        );
        assert!(
            same["resources"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s["key"] == r["key"])
        );
    }
    let future = page(&app, "updated_after=2999-01-01T00:00:00Z").await;
    assert_eq!(future["resources"].as_array().unwrap().len(), 0);
    assert!(future["next"].is_null());
}

#[tokio::test]
async fn listing_refuses_bad_parameters_and_missing_tokens() {
    let app = spawn_secured(None).await;
    let unauthorized = app
        .client
        .get(app.url("/v1/resources"))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthorized.status(), 401);
    for (query, says) in [
        ("kind=movie", "unknown kind"),
        ("limit=0", "limit must be between"),
        ("limit=x", "not a whole number"),
        ("cursor=zz", "listing cursor"),
        ("updated_after=yesterday", "not a UTC time"),
        ("sort=asc", "unknown parameter"),
    ] {
        let response = app.get_authorized(&format!("/v1/resources?{query}")).await;
        assert_eq!(response.status(), 400, "{query}");
        let error: Value = response.json().await.unwrap();
        assert!(
            error["message"].as_str().unwrap().contains(says),
            "{query}: {error}"
        );
    }
}

/// A redb store written without the index (states copied in with plain
/// writes, as a version before the index left them) lists nothing until
/// `reindex`, then every resource; reindexing again changes nothing.
#[tokio::test]
async fn reindex_lists_a_store_written_without_the_index() {
    use ims_callback::listing::{self, Filter};
    use ims_callback::pipeline::Pipeline;
    use ims_callback::store::{AnyStore, MemoryStore, Store};
    let source = MemoryStore::new();
    let pipeline = Pipeline::new(source.clone());
    for path in json_files(&events_dir()) {
        let _ = pipeline
            .process(&read(&path), ims_callback::admission::ReceivedAt::now())
            .await;
    }
    let dir = tempfile::tempdir().unwrap();
    let spec = format!("redb:{}", dir.path().join("old.redb").display());
    let store = AnyStore::open(&spec).await.unwrap();
    let mut copied = 0;
    for kind in ["media/", "job/", "task/", "live-record/"] {
        for (key, found) in source.list_prefix(kind, None, 1000).await.unwrap() {
            store
                .compare_and_set(&key, None, &found.value)
                .await
                .unwrap();
            copied += 1;
        }
    }
    assert!(copied > 0);
    let all = Filter::default();
    let empty = listing::page(&store, &all, None, 1000).await.unwrap();
    assert!(empty.resources.is_empty());
    let done = listing::reindex(&store).await.unwrap();
    assert_eq!(done.listed + done.skipped, copied);
    let listed = listing::page(&store, &all, None, 1000).await.unwrap();
    let expected = listing::page(&source, &all, None, 1000).await.unwrap();
    assert_eq!(
        listed, expected,
        "the same listing as the store that kept the index"
    );
    assert_eq!(listing::reindex(&store).await.unwrap(), done);
    assert_eq!(
        listing::page(&store, &all, None, 1000).await.unwrap(),
        expected
    );
}

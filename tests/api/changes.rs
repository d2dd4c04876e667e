//! `GET /v1/changes`: the change feed over HTTP — paging by cursor, the
//! long poll, and its refusals.

use crate::helpers::{TestApp, events_dir, read, spawn_secured};
use serde_json::Value;

async fn feed(app: &TestApp, query: &str) -> Value {
    let response = app.get_authorized(&format!("/v1/changes{query}")).await;
    assert_eq!(response.status(), 200, "{query}");
    response.json().await.unwrap()
}

/// Posts a sample event; returns the keys whose state it changed.
async fn post_sample(app: &TestApp, name: &str) -> Vec<String> {
    let outcome: Value = app
        .post_signed("/", read(&events_dir().join(name)))
        .await
        .json()
        .await
        .unwrap();
    outcome["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["outcome"] == "applied")
        .map(|r| r["key"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn the_feed_pages_by_cursor_and_matches_the_state() {
    let app = spawn_secured(None).await;
    let empty = feed(&app, "").await;
    assert_eq!(empty["changes"], Value::Array(Vec::new()));
    let mut changed = Vec::new();
    for name in [
        "RegisterMediaComplete.json",
        "FileUploadComplete.json",
        "DeleteMediaComplete.json",
    ] {
        changed.extend(post_sample(&app, name).await);
    }
    // A redelivery changes nothing, so adds nothing.
    assert!(
        post_sample(&app, "FileUploadComplete.json")
            .await
            .is_empty()
    );
    assert!(changed.len() >= 3, "{changed:?}");

    let all = feed(&app, "?limit=1000").await;
    let changes = all["changes"].as_array().unwrap();
    // The resources of one event are written concurrently: compare as sets.
    let mut keys: Vec<&str> = changes.iter().map(|c| c["key"].as_str().unwrap()).collect();
    let mut expected: Vec<&str> = changed.iter().map(String::as_str).collect();
    keys.sort_unstable();
    expected.sort_unstable();
    assert_eq!(keys, expected);
    for change in changes {
        for field in ["id", "kind", "status", "event_type", "fingerprint", "at"] {
            assert!(change[field].is_string(), "{field} in {change}");
        }
        assert!(change.get("previous_status").is_some(), "{change}");
        assert_eq!(change["state"]["status"], change["status"]);
    }
    // Each resource's last change is its state now.
    for key in &changed {
        let last = changes
            .iter()
            .rev()
            .find(|c| c["key"] == key.as_str())
            .unwrap();
        let state: Value = app
            .get_authorized(&format!("/v1/resources/{key}"))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(last["state"], state, "{key}");
    }
    // One at a time, from the start: the same changes.
    let mut paged = Vec::new();
    let mut query = "?limit=1".to_owned();
    loop {
        let page = feed(&app, &query).await;
        let got = page["changes"].as_array().unwrap().clone();
        assert!(got.len() <= 1);
        if got.is_empty() {
            assert_eq!(page["next"], all["next"]);
            break;
        }
        paged.extend(got);
        query = format!("?limit=1&after={}", page["next"].as_str().unwrap());
    }
    assert_eq!(&paged, changes);
    // Caught up: an empty page at the same cursor.
    let next = all["next"].as_str().unwrap();
    let tail = feed(&app, &format!("?after={next}")).await;
    assert_eq!(tail["changes"], Value::Array(Vec::new()));
    assert_eq!(tail["next"], next);
}

#[tokio::test]
async fn a_long_poll_returns_with_the_change_that_arrives() {
    let app = spawn_secured(None).await;
    let next = feed(&app, "").await["next"].as_str().unwrap().to_owned();
    let waiting = {
        let request = app
            .client
            .get(app.url(&format!("/v1/changes?after={next}&wait=20")))
            .bearer_auth(crate::helpers::QUERY_TOKEN);
        tokio::spawn(async move { request.send().await.unwrap().json::<Value>().await.unwrap() })
    };
    // Let the poll reach the server first, so it is waiting when the
    // event arrives (were it late, it would find the change at once).
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let changed = post_sample(&app, "RegisterMediaComplete.json").await;
    let page = waiting.await.unwrap();
    let mut keys: Vec<String> = page["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["key"].as_str().unwrap().to_owned())
        .collect();
    let mut changed = changed;
    keys.sort_unstable();
    changed.sort_unstable();
    assert!(!keys.is_empty());
    assert_eq!(keys, changed);
}

#[tokio::test]
async fn bad_requests_are_refused_clearly() {
    let app = spawn_secured(None).await;
    let none = app.client.get(app.url("/v1/changes")).send().await.unwrap();
    assert_eq!(none.status(), 401);
    for (query, says) in [
        ("?after=abc", "cursor `abc` must be decimal numbers"),
        ("?after=1.2", "has 2 position(s)"),
        ("?after=", "cursor `` must be"),
        ("?limit=0", "limit must be between 1 and 1000"),
        ("?limit=1001", "limit must be between 1 and 1000"),
        ("?limit=ten", "limit `ten` is not a whole number"),
        ("?wait=21", "wait `21` must be whole seconds from 0 to 20"),
        ("?wait=-1", "wait `-1`"),
        ("?since=1", "unknown parameter `since`"),
    ] {
        let response = app.get_authorized(&format!("/v1/changes{query}")).await;
        assert_eq!(response.status(), 400, "{query}");
        let body: Value = response.json().await.unwrap();
        let message = body["message"].as_str().unwrap();
        assert!(message.contains(says), "{query}: {message}");
    }
}

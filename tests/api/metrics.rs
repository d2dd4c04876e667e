//! `GET /metrics`: behind the read API's token, and its counts equal what
//! was sent — applied, duplicate, stale and rejected events, refused
//! signatures, store errors with Redis stopped.

use crate::helpers::{
    QUERY_TOKEN, TestApp, events_dir, read, spawn_app, spawn_on_fc, spawn_secured, unix_now,
};
use crate::redis_support::{RedisServer, unique};
use serde_json::{Value, json};
use std::collections::HashMap;

/// The page as `series → value` (`name{labels}` exactly as written).
async fn scrape(app: &TestApp) -> HashMap<String, f64> {
    let response = app.get_authorized("/metrics").await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let page = response.text().await.unwrap();
    page.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').unwrap();
            (series.to_owned(), value.parse().unwrap())
        })
        .collect()
}

fn value(page: &HashMap<String, f64>, series: &str) -> f64 {
    *page
        .get(series)
        .unwrap_or_else(|| panic!("{series} missing in {page:?}"))
}

fn events(page: &HashMap<String, f64>, event_type: &str, outcome: &str) -> f64 {
    let series =
        format!("ims_callback_events_total{{event_type=\"{event_type}\",outcome=\"{outcome}\"}}");
    page.get(&series).copied().unwrap_or(0.0)
}

#[tokio::test]
async fn metrics_need_the_query_token_and_do_not_exist_without_one() {
    let app = spawn_secured(None).await;
    let url = app.url("/metrics");
    assert_eq!(app.client.get(&url).send().await.unwrap().status(), 401);
    let wrong = app.client.get(&url).bearer_auth("not-it").send();
    assert_eq!(wrong.await.unwrap().status(), 401);
    let right = app.client.get(&url).bearer_auth(QUERY_TOKEN).send();
    assert_eq!(right.await.unwrap().status(), 200);
    let open = spawn_app(None, &[]).await;
    let response = open.client.get(open.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 404);
}

/// A FileUploadComplete for media `m-stale` at second `i` after 09:00.
fn upload_at(i: u32) -> Value {
    let mut event: Value =
        serde_json::from_slice(&read(&events_dir().join("FileUploadComplete.json"))).unwrap();
    event["MessageBody"]["MediaId"] = json!("m-stale");
    event["EventTime"] = json!(format!("2022-07-15T09:{:02}:{:02}Z", i / 60, i % 60));
    event
}

#[tokio::test]
async fn counts_equal_what_was_sent() {
    let app = spawn_on_fc(None).await;
    let sample = |name: &str| read(&events_dir().join(name));
    // Applied: two samples over HTTP; the first twice more: duplicates.
    for name in ["FileUploadComplete.json", "ImageUploadComplete.json"] {
        assert_eq!(app.post_signed("/", sample(name)).await.status(), 200);
    }
    for _ in 0..2 {
        let again = app
            .post_signed("/", sample("FileUploadComplete.json"))
            .await;
        assert_eq!(again.status(), 200);
    }
    // Rejected: one invalid FileUploadComplete.
    let invalid = sample("invalid/missing-media-id.json");
    assert_eq!(app.post_signed("/", invalid).await.status(), 400);
    // Refused signatures: a wrong key, and none at all.
    let wrong = app.post_signed_at("/", sample("FileUploadComplete.json"), "wrong", unix_now());
    assert_eq!(wrong.await.status(), 401);
    assert_eq!(
        app.post("/", sample("FileUploadComplete.json"))
            .await
            .status(),
        401
    );
    // Stale: a full history (64 newer events, one MNS batch), then an older one.
    let batch: Vec<Value> = (1..=64)
        .map(|i| {
            json!({"id": i, "source": "acs:mns", "type": "mns:Queue:SendMessage",
                   "data": {"requestId": "r", "messageId": format!("m-{i}"),
                            "messageBody": upload_at(i).to_string()}})
        })
        .collect();
    let invoked = app
        .client
        .post(app.url("/invoke"))
        .header("x-fc-control-path", "/invoke")
        .body(serde_json::to_vec(&batch).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(invoked.status(), 200);
    let older = serde_json::to_vec(&upload_at(0)).unwrap();
    let stale: Value = app.post_signed("/", older).await.json().await.unwrap();
    assert_eq!(stale["resources"][0]["outcome"], "stale", "{stale}");

    let page = scrape(&app).await;
    assert_eq!(events(&page, "FileUploadComplete", "applied"), 1.0 + 64.0);
    assert_eq!(events(&page, "FileUploadComplete", "duplicate"), 2.0);
    assert_eq!(events(&page, "FileUploadComplete", "stale"), 1.0);
    assert_eq!(events(&page, "FileUploadComplete", "rejected"), 1.0);
    assert_eq!(events(&page, "ImageUploadComplete", "applied"), 1.0);
    let total: f64 = page
        .iter()
        .filter(|(k, _)| k.starts_with("ims_callback_events_total"))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(total, 70.0, "{page:?}");
    assert_eq!(value(&page, "ims_callback_auth_failures_total"), 2.0);
    assert_eq!(value(&page, "ims_callback_deadline_exceeded_total"), 0.0);
    assert_eq!(
        value(&page, "ims_callback_store_errors_total{op=\"get\"}"),
        0.0
    );
    // Every callback request is timed, refused ones included; the batch once.
    let http = "ims_callback_request_duration_seconds_count{trigger=\"http\"}";
    assert_eq!(value(&page, http), 8.0);
    let mns = "ims_callback_request_duration_seconds_count{trigger=\"mns\"}";
    assert_eq!(value(&page, mns), 1.0);
    assert!(
        value(
            &page,
            "ims_callback_store_duration_seconds_count{op=\"get\"}"
        ) >= 69.0
    );
}

#[tokio::test]
async fn store_errors_are_counted_with_redis_stopped() {
    let server = RedisServer::start(&[]);
    let url = format!(
        "redis://127.0.0.1:{}/?prefix=metrics{}:",
        server.port,
        unique()
    );
    let app = spawn_app(
        Some(&url),
        &[("IMS_QUERY_TOKEN", QUERY_TOKEN), ("IMS_DEADLINE_MS", "800")],
    )
    .await;
    server.kill();
    let body = read(&events_dir().join("FileUploadComplete.json"));
    assert_eq!(app.post("/", body).await.status(), 503);
    let page = scrape(&app).await;
    let failed: f64 = page
        .iter()
        .filter(|(k, _)| k.starts_with("ims_callback_store_errors_total"))
        .map(|(_, v)| v)
        .sum();
    let late = value(&page, "ims_callback_deadline_exceeded_total");
    // A refused connection fails the call; a hung one ends at the deadline.
    assert!(failed + late >= 1.0, "{page:?}");
    assert_eq!(events(&page, "FileUploadComplete", "applied"), 0.0);
}

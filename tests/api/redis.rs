//! The same server over a real Redis: the corpus, and what happens when
//! Redis goes away (503 within the deadline, never 200).

use crate::callbacks::every_sample_is_stored;
use crate::helpers::{events_dir, read, spawn_app, spawn_secured};
use crate::redis_support::{RedisServer, unique};
use std::time::{Duration, Instant};

fn url(server: &RedisServer) -> String {
    format!("redis://127.0.0.1:{}/?prefix=api{}:", server.port, unique())
}

#[tokio::test]
async fn every_sample_event_is_stored_with_redis() {
    let server = RedisServer::start(&[]);
    let app = spawn_secured(Some(&url(&server))).await;
    every_sample_is_stored(&app).await;
}

#[tokio::test]
async fn with_redis_down_health_and_callbacks_are_503_within_the_deadline() {
    let server = RedisServer::start(&[]);
    let app = spawn_app(Some(&url(&server)), &[("IMS_DEADLINE_MS", "800")]).await;
    let body = read(&events_dir().join("FileUploadComplete.json"));
    assert_eq!(
        app.client
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(app.post("/", body.clone()).await.status(), 200);

    server.kill();
    let health = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 503);
    for name in ["ImageUploadComplete.json", "FileUploadComplete.json"] {
        let started = Instant::now();
        let response = app.post("/", read(&events_dir().join(name))).await;
        // IMS waits 3 s: the answer must come before that, and not be 200.
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(response.status(), 503, "{name}");
        let error: serde_json::Value = response.json().await.unwrap();
        assert!(matches!(
            error["error"].as_str().unwrap(),
            "unavailable" | "deadline_exceeded"
        ));
    }
}

//! FC lifecycle hooks and health.

use crate::helpers::spawn_app;
use serde_json::Value;

#[tokio::test]
async fn lifecycle_hooks_and_health_answer_200() {
    let app = spawn_app(None, &[]).await;
    let health = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let body: Value = health.json().await.unwrap();
    assert_eq!(body["store"], "redb");
    // Nothing written yet, so no write was retried.
    assert_eq!(body["cas_retries"], 0);
    let init = app
        .client
        .post(app.url("/initialize"))
        .send()
        .await
        .unwrap();
    assert_eq!(init.status(), 200);
    let pre_stop = app.client.get(app.url("/pre-stop")).send().await.unwrap();
    assert_eq!(pre_stop.status(), 200);
}

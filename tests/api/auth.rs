//! Callback signatures: signed, unsigned, wrong key, rotated key, stale
//! and future timestamps, and that `/invoke` from the public trigger is
//! not a way around them.

use crate::helpers::{events_dir, read, spawn_secured, unix_now};
use serde_json::Value;

fn body() -> Vec<u8> {
    read(&events_dir().join("FileUploadComplete.json"))
}

#[tokio::test]
async fn signed_with_either_rotated_key_is_accepted() {
    let app = spawn_secured(None).await;
    let now = unix_now();
    assert_eq!(
        app.post_signed_at("/", body(), "old-auth-key", now)
            .await
            .status(),
        200
    );
    assert_eq!(
        app.post_signed_at("/", body(), "new-auth-key", now)
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn unsigned_wrong_key_stale_and_future_are_401() {
    let app = spawn_secured(None).await;
    let unsigned = app.post("/", body()).await;
    assert_eq!(unsigned.status(), 401);
    let message: Value = unsigned.json().await.unwrap();
    assert!(
        message["message"]
            .as_str()
            .unwrap()
            .contains("X-ICE-TIMESTAMP")
    );
    // Offsets from the clock read just before each request, so a slow
    // machine cannot move `+ 301` into the server's window; the future
    // side allows 5 s for the request to arrive. The exact ±301 s
    // boundary is pinned on a fixed clock by the unit tests in
    // src/ingest/auth.rs.
    for (key, offset) in [
        ("not-a-key", 0),
        ("old-auth-key", -301),
        ("old-auth-key", 305),
    ] {
        let ts = unix_now() + offset;
        let response = app.post_signed_at("/", body(), key, ts).await;
        assert_eq!(response.status(), 401, "{key} at {ts}");
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"], "unauthorized");
        // The error never echoes a key.
        assert!(!error.to_string().contains("auth-key"));
    }
    // Nothing was stored by the refused requests.
    let state = app
        .get_authorized("/v1/resources/media/c321b3a0041a71eda1590674a2ce6a17")
        .await;
    assert_eq!(state.status(), 404);
}

#[tokio::test]
async fn invoke_from_the_public_trigger_needs_a_signature() {
    let app = spawn_secured(None).await;
    // No x-fc-control-path: this is an ordinary request that uses /invoke.
    assert_eq!(app.post("/invoke", body()).await.status(), 401);
    assert_eq!(app.post_signed("/invoke", body()).await.status(), 200);
}

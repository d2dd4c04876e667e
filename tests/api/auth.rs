//! Callback signatures: signed, unsigned, wrong key, rotated key, stale
//! and future timestamps, and that `/invoke` from the public trigger is
//! not a way around them.

use crate::helpers::{events_dir, read, spawn_app, spawn_secured, unix_now};
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

#[tokio::test]
async fn off_function_compute_x_fc_control_path_does_not_skip_the_signature() {
    // Not on FC (no FC_FUNCTION_NAME/FC_INSTANCE_ID): any client can send
    // the header, so with signatures required it is refused, whatever path.
    let app = spawn_secured(None).await;
    for path in ["/invoke", "/"] {
        let response = app
            .client
            .post(app.url("/invoke"))
            .header("x-fc-control-path", "/invoke")
            .body(body())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{path}");
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"], "untrusted_control_path");
        assert!(
            error["message"]
                .as_str()
                .unwrap()
                .contains("only on Function Compute")
        );
    }
    let state = app
        .get_authorized("/v1/resources/media/c321b3a0041a71eda1590674a2ce6a17")
        .await;
    assert_eq!(state.status(), 404, "nothing stored");
    // Unsigned mode off FC: the header skips nothing, and local runs can
    // still be sent FC invocations.
    let open = spawn_app(None, &[]).await;
    let response = open
        .client
        .post(open.url("/invoke"))
        .header("x-fc-control-path", "/invoke")
        .body(body())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn a_timestamp_spelled_otherwise_is_not_a_second_signature() {
    let app = spawn_secured(None).await;
    let now = unix_now().to_string();
    for ts in [format!("0{now}"), format!("+{now}")] {
        let response = app
            .client
            .post(app.url("/"))
            .header("X-ICE-TIMESTAMP", &ts)
            .header(
                "X-ICE-SIGNATURE",
                ims_callback::ingest::auth::sign(crate::helpers::CALLBACK_URL, &ts, "old-auth-key"),
            )
            .body(body())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{ts}");
        let error: Value = response.json().await.unwrap();
        assert!(
            error["message"].as_str().unwrap().contains("leading zero"),
            "{error}"
        );
    }
}

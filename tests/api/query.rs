//! The read API: off without a token, refused without the right one.

use crate::helpers::{QUERY_TOKEN, events_dir, read, spawn_app, spawn_secured};
use serde_json::Value;

#[tokio::test]
async fn the_read_api_does_not_exist_without_a_token() {
    let app = spawn_app(None, &[]).await;
    let response = app
        .post("/", read(&events_dir().join("RegisterMediaComplete.json")))
        .await;
    assert_eq!(response.status(), 200);
    let get = app
        .client
        .get(app.url("/v1/resources/media/71151b80f2d471ecb21b472190a97c52"))
        .bearer_auth(QUERY_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 404);
}

#[tokio::test]
async fn malformed_ids_on_the_read_api_are_400() {
    let app = spawn_secured(None).await;
    let long = "a".repeat(257);
    for id in [
        "a%2Fb",
        "a..b",
        "..%2Fx",
        "a%00b",
        "a%0D%0Ab",
        long.as_str(),
    ] {
        let response = app
            .get_authorized(&format!("/v1/resources/media/{id}"))
            .await;
        assert_eq!(response.status(), 400, "{id}");
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"], "bad_request");
        assert!(
            error["message"]
                .as_str()
                .unwrap()
                .starts_with("resource id: "),
            "{error}"
        );
    }
}

#[tokio::test]
async fn the_read_api_needs_the_bearer_token() {
    let app = spawn_secured(None).await;
    let outcome: Value = app
        .post_signed("/", read(&events_dir().join("RegisterMediaComplete.json")))
        .await
        .json()
        .await
        .unwrap();
    let path = "/v1/resources/media/71151b80f2d471ecb21b472190a97c52";
    let none = app.client.get(app.url(path)).send().await.unwrap();
    assert_eq!(none.status(), 401);
    assert_eq!(none.headers()["www-authenticate"], "Bearer");
    let wrong = app
        .client
        .get(app.url(path))
        .bearer_auth("nope")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let right = app.get_authorized(path).await;
    assert_eq!(right.status(), 200);
    let state: Value = right.json().await.unwrap();
    assert_eq!(state["status"], "registered");

    let fingerprint = outcome["fingerprint"].as_str().unwrap();
    let event: Value = app
        .get_authorized(&format!("/v1/events/{fingerprint}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(event["event"]["EventType"], "RegisterMediaComplete");
    assert_eq!(app.get_authorized("/v1/events/nothex").await.status(), 400);
    assert_eq!(
        app.get_authorized("/v1/resources/album/x").await.status(),
        400
    );
    assert_eq!(
        app.get_authorized("/v1/resources/job/absent")
            .await
            .status(),
        404
    );
    // An id no event could carry: too long for a store key, or blank.
    for id in ["x".repeat(2000), "%20%20".to_owned()] {
        let answer = app
            .get_authorized(&format!("/v1/resources/media/{id}"))
            .await;
        assert_eq!(answer.status(), 400, "{id}");
        let body: Value = answer.json().await.unwrap();
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .starts_with("resource id: must be"),
            "{body}"
        );
    }
}

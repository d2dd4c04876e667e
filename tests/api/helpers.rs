//! Spawns the real server on a random port and drives it with a real HTTP
//! client.

use ims_callback::configuration::Settings;
use ims_callback::server::Application;
use reqwest::{Client, Response};
use std::collections::HashMap;
use std::path::Path;

pub use crate::samples::{events_dir, json_files};

pub const CALLBACK_URL: &str = "https://ims-callback.example.com/ims/events";
pub const KEYS: &str = "old-auth-key,new-auth-key";
pub const QUERY_TOKEN: &str = "test-query-token";

/// A running server.
pub struct TestApp {
    pub address: String,
    pub client: Client,
    _dir: tempfile::TempDir,
}

/// Settings for a test: `store` (`None`: a fresh redb file), plus `vars`.
pub async fn spawn_app(store: Option<&str>, vars: &[(&str, &str)]) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let mut map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    map.insert("IMS_LISTEN".into(), "127.0.0.1:0".into());
    let store = store
        .map(str::to_owned)
        .unwrap_or_else(|| format!("redb:{}", dir.path().join("state.redb").display()));
    map.insert("IMS_STORE".into(), store);
    let settings = Settings::from_lookup(|k| map.get(k).cloned()).expect("valid settings");
    let app = Application::build(settings).await.expect("server starts");
    let address = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run());
    TestApp {
        address,
        client: Client::new(),
        _dir: dir,
    }
}

/// A server that requires signatures and has the read API on.
pub async fn spawn_secured(store: Option<&str>) -> TestApp {
    spawn_app(
        store,
        &[
            ("IMS_CALLBACK_AUTH_KEYS", KEYS),
            ("IMS_CALLBACK_URL", CALLBACK_URL),
            ("IMS_QUERY_TOKEN", QUERY_TOKEN),
        ],
    )
    .await
}

/// [`spawn_secured`] as on Function Compute (its system variables set),
/// where `x-fc-control-path` is trusted.
pub async fn spawn_on_fc(store: Option<&str>) -> TestApp {
    spawn_app(
        store,
        &[
            ("IMS_CALLBACK_AUTH_KEYS", KEYS),
            ("IMS_CALLBACK_URL", CALLBACK_URL),
            ("IMS_QUERY_TOKEN", QUERY_TOKEN),
            ("FC_FUNCTION_NAME", "ims-callback"),
            ("FC_INSTANCE_ID", "c-test-instance"),
        ],
    )
    .await
}

pub fn unix_now() -> i64 {
    ims_callback::ingest::unix_now()
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// POST `body` to `path` without signature headers.
    pub async fn post(&self, path: &str, body: impl Into<reqwest::Body>) -> Response {
        self.client
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap()
    }

    /// POST `body` signed with `key` at `timestamp`.
    pub async fn post_signed_at(
        &self,
        path: &str,
        body: impl Into<reqwest::Body>,
        key: &str,
        timestamp: i64,
    ) -> Response {
        let ts = timestamp.to_string();
        self.client
            .post(self.url(path))
            .header("content-type", "application/json")
            .header("X-ICE-TIMESTAMP", &ts)
            .header(
                "X-ICE-SIGNATURE",
                ims_callback::ingest::auth::sign(CALLBACK_URL, &ts, key),
            )
            .body(body)
            .send()
            .await
            .unwrap()
    }

    /// POST `body` signed now with the first key.
    pub async fn post_signed(&self, path: &str, body: impl Into<reqwest::Body>) -> Response {
        self.post_signed_at(path, body, "old-auth-key", unix_now())
            .await
    }

    /// GET with the query token.
    pub async fn get_authorized(&self, path: &str) -> Response {
        self.client
            .get(self.url(path))
            .bearer_auth(QUERY_TOKEN)
            .send()
            .await
            .unwrap()
    }
}

pub fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

//! Secrets stay secret: the real binary with callback auth keys, a query
//! token and a Redis password (to a `redis-server --requirepass`), logging
//! at `debug`, is sent signed, unsigned, wrongly signed and replayed
//! callbacks and read-API calls with and without the token, and loses its
//! Redis mid-run; no secret appears in its stdout, stderr or any response
//! body. The read API refuses without the token; a correctly signed
//! request with a timestamp outside the window is refused.

use crate::helpers::{CALLBACK_URL, client};
use crate::process::ServerProcess;
use crate::redis_support::{RedisServer, unique};
use ims_callback::ingest::auth::sign;
use ims_callback::ingest::unix_now;
use reqwest::Client;
use std::time::Duration;

const OLD_KEY: &str = "Sec-Old-AuthKey-7f3a9c";
const NEW_KEY: &str = "Sec-New-AuthKey-b81d44";
const QUERY_TOKEN: &str = "Sec-Query-Token-5e0c2a";
const REDIS_PASSWORD: &str = "Sec-Redis-Passw0rd-91ab";
const WRONG_REDIS_PASSWORD: &str = "Sec-Wrong-Passw0rd-33cd";
const FC_ACCESS_KEY_SECRET: &str = "Sec-Fc-AccessKeySecret-aa01";
const FC_SECURITY_TOKEN: &str = "Sec-Fc-SecurityToken-bb02";

fn event(name: &str) -> Vec<u8> {
    std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("events")
            .join(name),
    )
    .unwrap()
}

/// Sends a request; returns status and body text (kept for the scan).
async fn call(request: reqwest::RequestBuilder, bodies: &mut Vec<String>) -> u16 {
    let response = request.send().await.expect("an answer");
    let status = response.status().as_u16();
    bodies.push(response.text().await.unwrap_or_default());
    status
}

fn signed(
    client: &Client,
    url: &str,
    key: &str,
    ts: i64,
    body: Vec<u8>,
) -> reqwest::RequestBuilder {
    let ts = ts.to_string();
    client
        .post(url)
        .header("content-type", "application/json")
        .header("x-ice-timestamp", &ts)
        .header("x-ice-signature", sign(CALLBACK_URL, &ts, key))
        // What Function Compute adds to every request: credentials.
        .header("x-fc-request-id", format!("req-{}", unique()))
        .header("x-fc-access-key-id", "STS.fake-id")
        .header("x-fc-access-key-secret", FC_ACCESS_KEY_SECRET)
        .header("x-fc-security-token", FC_SECURITY_TOKEN)
        .body(body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_logs_or_error_bodies_and_stale_signatures_are_refused() {
    let redis = RedisServer::start(&["--requirepass", REDIS_PASSWORD]);
    let dir = tempfile::tempdir().unwrap();
    let keys = format!("{OLD_KEY},{NEW_KEY}");
    let store = format!(
        "redis://:{REDIS_PASSWORD}@127.0.0.1:{}/?prefix=sec{}:",
        redis.port,
        unique()
    );
    let vars = [
        ("IMS_STORE", store.as_str()),
        ("IMS_CALLBACK_AUTH_KEYS", keys.as_str()),
        ("IMS_CALLBACK_URL", CALLBACK_URL),
        ("IMS_QUERY_TOKEN", QUERY_TOKEN),
        ("IMS_DEADLINE_MS", "800"),
        ("RUST_LOG", "debug"),
    ];
    let mut server = ServerProcess::start(&vars, dir.path()).await;
    let client = client();
    let url = format!("{}/ims/events", server.address);
    let now = unix_now();
    let mut bodies = Vec::new();

    // Signed with either key: stored.
    let body = event("FileUploadComplete.json");
    assert_eq!(
        call(
            signed(&client, &url, OLD_KEY, now, body.clone()),
            &mut bodies
        )
        .await,
        200
    );
    assert_eq!(
        call(
            signed(
                &client,
                &url,
                NEW_KEY,
                now,
                event("RegisterMediaComplete.json")
            ),
            &mut bodies
        )
        .await,
        200
    );
    let signature_used = sign(CALLBACK_URL, &now.to_string(), OLD_KEY);
    // Unsigned, wrong key, signature of another URL, tampered signature.
    assert_eq!(
        call(client.post(&url).body(body.clone()), &mut bodies).await,
        401
    );
    assert_eq!(
        call(
            signed(&client, &url, "not-a-key", now, body.clone()),
            &mut bodies
        )
        .await,
        401
    );
    let other_url = sign("https://evil.example.com/", &now.to_string(), OLD_KEY);
    assert_eq!(
        call(
            client
                .post(&url)
                .header("x-ice-timestamp", now.to_string())
                .header("x-ice-signature", other_url)
                .body(body.clone()),
            &mut bodies
        )
        .await,
        401
    );
    // A valid signature replayed outside the 300 s window, either way.
    // Offsets from the clock read just before each request: on a busy
    // machine the calls above can take seconds, and `now + 301` would
    // then be inside the window of the server's later clock. The future
    // side allows 5 s for the request to arrive. The exact ±301 s
    // boundary is pinned on a fixed clock by the unit tests in
    // src/ingest/auth.rs.
    for offset in [-301, -3600, 305] {
        let ts = unix_now() + offset;
        let replay = signed(&client, &url, OLD_KEY, ts, body.clone());
        assert_eq!(call(replay, &mut bodies).await, 401, "timestamp {ts}");
    }
    // The exact request seen earlier (same timestamp, same signature) is
    // accepted only inside the window, as a duplicate of what is stored.
    assert_eq!(
        call(
            signed(&client, &url, OLD_KEY, now, body.clone()),
            &mut bodies
        )
        .await,
        200
    );
    assert!(bodies.last().unwrap().contains("\"duplicate\""));

    // The read API: refused without the token or with a wrong one.
    let resource = format!(
        "{}/v1/resources/media/c321b3a0041a71eda1590674a2ce6a17",
        server.address
    );
    assert_eq!(call(client.get(&resource), &mut bodies).await, 401);
    assert_eq!(
        call(client.get(&resource).bearer_auth("wrong"), &mut bodies).await,
        401
    );
    assert_eq!(
        call(
            client.get(&resource).header("authorization", QUERY_TOKEN),
            &mut bodies
        )
        .await,
        401
    );
    assert_eq!(
        call(
            client.get(format!("{resource}?token={QUERY_TOKEN}")),
            &mut bodies
        )
        .await,
        401
    );
    assert_eq!(
        call(client.get(&resource).bearer_auth(QUERY_TOKEN), &mut bodies).await,
        200
    );
    assert_eq!(
        call(
            client
                .get(format!("{}/v1/events/{}", server.address, "0".repeat(32)))
                .bearer_auth(QUERY_TOKEN),
            &mut bodies
        )
        .await,
        404
    );

    // Redis goes away: store errors are logged and answered, without the URL's password.
    redis.kill();
    assert_eq!(
        call(
            signed(
                &client,
                &url,
                OLD_KEY,
                unix_now(),
                event("ImageUploadComplete.json")
            ),
            &mut bodies
        )
        .await,
        503
    );
    assert_eq!(
        call(
            client.get(format!("{}/healthz", server.address)),
            &mut bodies
        )
        .await,
        503
    );
    assert_eq!(
        call(client.get(&resource).bearer_auth(QUERY_TOKEN), &mut bodies).await,
        503
    );

    // A second instance with a wrong Redis password.
    let redis2 = RedisServer::start(&["--requirepass", REDIS_PASSWORD]);
    let wrong = format!("redis://:{WRONG_REDIS_PASSWORD}@127.0.0.1:{}/", redis2.port);
    let mut wrong_vars = vars;
    wrong_vars[0] = ("IMS_STORE", wrong.as_str());
    let log_dir = dir.path().join("wrong");
    std::fs::create_dir(&log_dir).unwrap();
    let mut misconfigured =
        ServerProcess::spawn(&wrong_vars, &log_dir, crate::helpers::free_port());
    let health = format!("{}/healthz", misconfigured.address);
    let mut status = 0;
    for _ in 0..200 {
        if let Ok(r) = client.get(&health).send().await {
            status = r.status().as_u16();
            bodies.push(r.text().await.unwrap_or_default());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status, 503);
    let wrong_url = format!("{}/", misconfigured.address);
    assert_eq!(
        call(
            signed(&client, &wrong_url, NEW_KEY, unix_now(), body.clone()),
            &mut bodies
        )
        .await,
        503
    );

    server.terminate(Duration::from_secs(15));
    misconfigured.terminate(Duration::from_secs(15));
    let logs = format!("{}{}", server.logs(), misconfigured.logs());
    assert!(logs.contains("event stored"), "the logs were captured");
    assert!(logs.contains("unauthorized"), "refusals are logged");
    let secrets = [
        OLD_KEY,
        NEW_KEY,
        QUERY_TOKEN,
        REDIS_PASSWORD,
        WRONG_REDIS_PASSWORD,
        FC_ACCESS_KEY_SECRET,
        FC_SECURITY_TOKEN,
        &signature_used,
    ];
    for secret in secrets {
        assert!(!logs.contains(secret), "a secret is in the logs: {secret}");
        for body in &bodies {
            assert!(!body.contains(secret), "a secret is in a response: {body}");
        }
    }
    println!(
        "FIGURES security: {} responses and {} log lines (RUST_LOG=debug) scanned for {} secrets \
         (2 auth keys, query token, Redis password and a wrong one, FC STS secret and token, a \
         valid signature): none found; stale/future timestamps (-301 s, -3600 s, +301 s) 401",
        bodies.len(),
        logs.lines().count(),
        secrets.len()
    );
}

//! Forwarding of the change feed to a real receiver: an HTTP server in
//! this test that checks every signature with its own code (the Standard
//! Webhooks scheme: HMAC-SHA256 of `{id}.{timestamp}.{body}` under the
//! base64 key after `whsec_`,
//! https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md)
//! and refuses a share of the deliveries. Over memory, redb and Redis (16
//! partitions): every change delivered, in order per resource, retries
//! made, nothing skipped when a forwarder dies and another takes over, one
//! forwarder per partition at a time; and through the server: the
//! background forwarder of `serve` and FC's timer trigger on `/invoke`.

use crate::helpers::{events_dir, json_files, read, spawn_app};
use crate::redis_support::{RedisServer, unique};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use ims_callback::changes::ChangeRecord;
use ims_callback::forward::{ForwardSettings, Forwarder, Retry, Summary, WebhookSecret};
use ims_callback::store::{AnyStore, CasOutcome, Store};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const SECRET: &str = "whsec_c2VjcmV0LWtleS1vZi10aGUtZm9yd2FyZC10ZXN0cw==";

/// Which attempts the receiver refuses: `(change id, attempt from 1)`.
type FailRule = Box<dyn Fn(&str, u32) -> bool + Send + Sync>;

/// A stop signal for forwarders: `send(true)` stops them all.
fn stopper() -> (
    tokio::sync::watch::Sender<bool>,
    impl Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
) {
    let (tx, rx) = tokio::sync::watch::channel(false);
    let stopped = move || {
        let mut rx = rx.clone();
        Box::pin(async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }) as std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>
    };
    (tx, stopped)
}

/// What the receiver saw.
#[derive(Default)]
struct Seen {
    /// Attempts per change id.
    attempts: HashMap<String, u32>,
    /// Accepted deliveries in arrival order: (id, key, body).
    accepted: Vec<(String, String, Vec<u8>)>,
    /// Requests whose signature or payload was wrong.
    bad: Vec<String>,
    /// Requests in flight per partition, and the most seen at once.
    in_flight: HashMap<String, usize>,
    most_in_flight: usize,
}

struct Receiver {
    key: Vec<u8>,
    fail: FailRule,
    delay: Duration,
    seen: Mutex<Seen>,
}

impl Receiver {
    fn seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen.lock().unwrap()
    }

    /// Distinct change ids accepted.
    fn distinct(&self) -> usize {
        let seen = self.seen();
        let mut ids: Vec<&String> = seen.accepted.iter().map(|(id, _, _)| id).collect();
        ids.sort();
        ids.dedup();
        ids.len()
    }
}

/// The receiver's own check of a delivery; `Err` says what is wrong.
fn verify(key: &[u8], headers: &HeaderMap, body: &[u8]) -> Result<(String, String), String> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .ok_or(format!("no {name}"))
    };
    let id = header("webhook-id")?;
    let timestamp = header("webhook-timestamp")?;
    let signatures = header("webhook-signature")?;
    let sent: i64 = timestamp.parse().map_err(|_| "timestamp not an integer")?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    if (now - sent).abs() > 300 {
        return Err(format!("timestamp {sent} is {}s off", now - sent));
    }
    let mut signed = format!("{id}.{timestamp}.").into_bytes();
    signed.extend_from_slice(body);
    let hmac_key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
    let valid = signatures.split(' ').any(|s| {
        s.strip_prefix("v1,")
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            .is_some_and(|tag| ring::hmac::verify(&hmac_key, &signed, &tag).is_ok())
    });
    if !valid {
        return Err(format!("no valid signature for {id} in `{signatures}`"));
    }
    let payload: Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    if payload["type"] != "resource.changed"
        || payload["data"]["id"] != id.as_str()
        || payload["timestamp"] != payload["data"]["at"]
    {
        return Err(format!("unexpected payload {payload}"));
    }
    let key = payload["data"]["key"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    Ok((id, key))
}

async fn hook(
    State(receiver): State<Arc<Receiver>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    let (id, key) = match verify(&receiver.key, &headers, &body) {
        Ok(checked) => checked,
        Err(why) => {
            receiver.seen().bad.push(why);
            return StatusCode::BAD_REQUEST;
        }
    };
    let partition = id.split(':').next().unwrap().to_owned();
    let attempt = {
        let mut seen = receiver.seen();
        let n = seen.in_flight.entry(partition.clone()).or_default();
        *n += 1;
        let n = *n;
        seen.most_in_flight = seen.most_in_flight.max(n);
        let attempt = seen.attempts.entry(id.clone()).or_default();
        *attempt += 1;
        *attempt
    };
    if !receiver.delay.is_zero() {
        tokio::time::sleep(receiver.delay).await;
    }
    let mut seen = receiver.seen();
    *seen.in_flight.get_mut(&partition).unwrap() -= 1;
    if (receiver.fail)(&id, attempt) {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    seen.accepted.push((id, key, body.to_vec()));
    StatusCode::NO_CONTENT
}

/// Starts a receiver; returns it and its URL.
async fn receiver(fail: FailRule, delay: Duration) -> (Arc<Receiver>, String) {
    let key = base64::engine::general_purpose::STANDARD
        .decode(SECRET.strip_prefix("whsec_").unwrap())
        .unwrap();
    let receiver = Arc::new(Receiver {
        key,
        fail,
        delay,
        seen: Mutex::default(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(hook))
        .with_state(Arc::clone(&receiver));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (receiver, url)
}

/// Fast settings: short timeout, backoff and lease.
fn settings(url: &str) -> ForwardSettings {
    let mut settings =
        ForwardSettings::new(url.parse().unwrap(), WebhookSecret::parse(SECRET).unwrap());
    settings.timeout = Duration::from_millis(300);
    settings.retry = Retry {
        first: Duration::from_millis(2),
        max: Duration::from_millis(10),
        attempts: 3,
        pause: Duration::from_millis(20),
    };
    settings.lease = Duration::from_millis(600);
    settings.batch = 16;
    settings.concurrency = 4;
    settings.poll = Duration::from_millis(10);
    settings
}

/// Writes `versions` changes to each of `keys` resources, interleaved;
/// returns the log ids per key, in log order.
async fn fill<S: Store>(store: &S, keys: usize, versions: usize) -> BTreeMap<String, Vec<String>> {
    for v in 1..=versions {
        for k in 0..keys {
            let key = format!("media/m{k}");
            let current = store.get(&key).await.unwrap().map(|f| f.version);
            let record = ChangeRecord {
                key: key.clone(),
                kind: "media".into(),
                status: format!("s{v}"),
                previous_status: (v > 1).then(|| format!("s{}", v - 1)),
                event_type: "ProduceMediaComplete".into(),
                fingerprint: format!("{k:02}{v:02}"),
                at: format!("2026-12-08T01:{v:02}:00Z"),
                state: json!({"key": key, "version": v}),
            };
            let state = v.to_string();
            let written = store
                .compare_and_set_logged(&key, current, state.as_bytes(), &record.to_bytes())
                .await
                .unwrap();
            assert!(matches!(written, CasOutcome::Written(_)));
        }
    }
    let mut ids: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut after = None;
    loop {
        let page = store.read_log(after.as_ref(), 100).await.unwrap();
        if page.entries.is_empty() {
            return ids;
        }
        for entry in page.entries {
            ids.entry(entry.key).or_default().push(entry.id.to_string());
        }
        after = Some(page.next);
    }
}

/// Waits (polling) until the receiver has accepted `n` distinct changes.
async fn until_delivered(receiver: &Receiver, n: usize) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while receiver.distinct() < n {
        assert!(
            std::time::Instant::now() < deadline,
            "{} of {n} delivered",
            receiver.distinct()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Every change accepted, each signature valid, and per resource the first
/// acceptances in log order (redeliveries repeat the same body).
fn assert_complete_and_ordered(receiver: &Receiver, log: &BTreeMap<String, Vec<String>>) {
    let seen = receiver.seen();
    assert!(seen.bad.is_empty(), "bad deliveries: {:?}", seen.bad);
    let mut first: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    let mut bodies: HashMap<&str, &[u8]> = HashMap::new();
    for (id, key, body) in &seen.accepted {
        if let Some(earlier) = bodies.insert(id, body) {
            assert_eq!(earlier, &body[..], "redelivery of {id} differs");
            continue;
        }
        first.entry(key).or_default().push(id);
    }
    for (key, ids) in log {
        let got: Vec<&str> = first.get(key.as_str()).cloned().unwrap_or_default();
        assert_eq!(got, *ids, "deliveries of {key}");
    }
    assert_eq!(first.len(), log.len());
}

/// Runs a forwarder until the receiver has every change.
async fn forward_all(
    store: AnyStore,
    settings: ForwardSettings,
    receiver: &Receiver,
    n: usize,
) -> Summary {
    let (stop, stopped) = stopper();
    let stopped = stopped();
    let task =
        tokio::spawn(async move { Forwarder::new(store, settings).run_until(stopped).await });
    until_delivered(receiver, n).await;
    stop.send_replace(true);
    task.await.unwrap()
}

/// Refuses the first attempt of every third change, and the first four
/// attempts of `stuck` (past the 3 attempts of one round, so it waits in
/// the log and is retried from there).
fn flaky(stuck: &str) -> FailRule {
    let stuck = stuck.to_owned();
    Box::new(move |id: &str, attempt: u32| {
        let seq: u64 = id.split(':').nth(1).unwrap().parse().unwrap();
        (seq.is_multiple_of(3) && attempt == 1) || (id == stuck && attempt <= 4)
    })
}

async fn every_change_delivered(store: AnyStore) {
    let log = fill(&store, 6, 5).await;
    let (receiver, url) = receiver(flaky(&log["media/m1"][2]), Duration::ZERO).await;
    let summary = forward_all(store.clone(), settings(&url), &receiver, 30).await;
    assert_complete_and_ordered(&receiver, &log);
    // Every third seq once (sequences are per partition), `stuck` 4 times.
    assert!(summary.failed_attempts >= 5, "{summary:?}");
    assert!(summary.deferred >= 1, "{summary:?}");
    assert_eq!(summary.partitions, store.log_partitions());
    // The released records hold the position: a new forwarder has nothing to send.
    let (idle, url) = receiver_ok().await;
    let again = Forwarder::new(store, settings(&url))
        .drain(tokio::time::Instant::now() + Duration::from_secs(5))
        .await;
    assert_eq!((again.delivered, idle.distinct()), (0, 0), "{again:?}");
}

async fn receiver_ok() -> (Arc<Receiver>, String) {
    receiver(Box::new(|_, _| false), Duration::ZERO).await
}

fn redis_store(server: &RedisServer) -> impl std::future::Future<Output = AnyStore> {
    let spec = format!("redis://127.0.0.1:{}/?prefix=fw{}:", server.port, unique());
    async move { AnyStore::open(&spec).await.unwrap() }
}

#[tokio::test]
async fn memory_every_change_is_delivered_signed_and_in_order() {
    every_change_delivered(AnyStore::open("memory").await.unwrap()).await;
}

#[tokio::test]
async fn redb_every_change_is_delivered_signed_and_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let spec = format!("redb:{}", dir.path().join("s.redb").display());
    every_change_delivered(AnyStore::open(&spec).await.unwrap()).await;
}

#[tokio::test]
async fn redis_every_change_is_delivered_signed_and_in_order() {
    let server = RedisServer::start(&[]);
    every_change_delivered(redis_store(&server).await).await;
}

/// A forwarder killed mid-way (no release: its leases must expire) and a
/// new one on the same store: every change delivered, none skipped.
async fn resumes_after_a_crash(store: AnyStore) {
    let log = fill(&store, 5, 6).await;
    let (receiver, url) = receiver(flaky(&log["media/m3"][4]), Duration::from_millis(1)).await;
    let first = {
        let (store, settings) = (store.clone(), settings(&url));
        tokio::spawn(async move {
            Forwarder::new(store, settings)
                .run_until(std::future::pending())
                .await
        })
    };
    until_delivered(&receiver, 10).await;
    first.abort();
    let _ = first.await;
    let second = forward_all(store, settings(&url), &receiver, 30).await;
    assert!(second.delivered > 0, "{second:?}");
    assert_complete_and_ordered(&receiver, &log);
}

#[tokio::test]
async fn memory_a_new_forwarder_resumes_where_a_dead_one_stopped() {
    resumes_after_a_crash(AnyStore::open("memory").await.unwrap()).await;
}

#[tokio::test]
async fn redis_a_new_forwarder_resumes_where_a_dead_one_stopped() {
    let server = RedisServer::start(&[]);
    resumes_after_a_crash(redis_store(&server).await).await;
}

/// Two forwarders on one store, each delivering one change at a time: no
/// partition ever has two deliveries in flight, and order holds.
async fn one_forwarder_per_partition(store: AnyStore) {
    let log = fill(&store, 8, 4).await;
    let (receiver, url) = receiver(flaky(&log["media/m2"][1]), Duration::from_millis(2)).await;
    let mut one_at_a_time = settings(&url);
    one_at_a_time.concurrency = 1;
    let (stop, stopped) = stopper();
    let tasks: Vec<_> = (0..2)
        .map(|_| {
            let (store, settings, stopped) = (store.clone(), one_at_a_time.clone(), stopped());
            tokio::spawn(async move { Forwarder::new(store, settings).run_until(stopped).await })
        })
        .collect();
    until_delivered(&receiver, 32).await;
    stop.send_replace(true);
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(receiver.seen().most_in_flight, 1);
    assert_complete_and_ordered(&receiver, &log);
}

#[tokio::test]
async fn memory_two_forwarders_never_share_a_partition() {
    one_forwarder_per_partition(AnyStore::open("memory").await.unwrap()).await;
}

#[tokio::test]
async fn redis_two_forwarders_never_share_a_partition() {
    let server = RedisServer::start(&[]);
    one_forwarder_per_partition(redis_store(&server).await).await;
}

/// The server's settings for forwarding to `url`.
fn forward_vars(url: &str) -> Vec<(&'static str, String)> {
    vec![
        ("IMS_FORWARD_URL", url.to_owned()),
        ("IMS_FORWARD_SECRET", SECRET.to_owned()),
        ("IMS_FORWARD_TIMEOUT", "1s".to_owned()),
    ]
}

/// Posts every sample event; returns how many resource states changed.
async fn post_samples(app: &crate::helpers::TestApp) -> usize {
    let mut changed = 0;
    for path in json_files(&events_dir()) {
        let response = app.post("/", read(&path)).await;
        assert_eq!(response.status(), 200, "{}", path.display());
        let outcome: Value = response.json().await.unwrap();
        changed += outcome["resources"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["outcome"] == "applied")
            .count();
    }
    changed
}

#[tokio::test]
async fn serve_forwards_in_the_background() {
    let (receiver, url) = receiver_ok().await;
    let vars = forward_vars(&url);
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let app = spawn_app(None, &vars).await;
    let changed = post_samples(&app).await;
    assert!(changed > 10);
    until_delivered(&receiver, changed).await;
    assert!(receiver.seen().bad.is_empty());
}

/// On FC (no background forwarder) the timer trigger's tick on `/invoke`
/// delivers what is pending; the next tick has nothing left.
#[tokio::test]
async fn a_timer_tick_drains_the_feed_on_function_compute() {
    let (receiver, url) = receiver_ok().await;
    let mut vars = forward_vars(&url);
    vars.extend([
        ("FC_FUNCTION_NAME", "ims-callback".to_owned()),
        ("FC_INSTANCE_ID", "c-forward-test".to_owned()),
        ("IMS_ALLOW_UNSIGNED", "true".to_owned()),
    ]);
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let app = spawn_app(None, &vars).await;
    let changed = post_samples(&app).await;
    assert_eq!(receiver.distinct(), 0, "nothing forwards before the tick");
    let tick = |app: &crate::helpers::TestApp| {
        app.client
            .post(app.url("/invoke"))
            .header("x-fc-control-path", "/invoke")
            .body(r#"{"triggerTime":"2026-12-08T01:00:00Z","triggerName":"forward","payload":"drain"}"#)
            .send()
    };
    let response = tick(&app).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-fc-status"], "200");
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["timer"], "forward");
    assert_eq!(answer["forwarded"]["delivered"], changed, "{answer}");
    assert_eq!(receiver.distinct(), changed);
    let again: Value = tick(&app).await.unwrap().json().await.unwrap();
    assert_eq!(again["forwarded"]["delivered"], 0, "{again}");
    assert!(receiver.seen().bad.is_empty());
}

/// `IMS_CHANGE_FEED=off`: states are stored, the log stays empty.
#[tokio::test]
async fn with_the_feed_off_states_are_stored_without_log_entries() {
    let app = spawn_app(
        None,
        &[
            ("IMS_CHANGE_FEED", "off"),
            ("IMS_QUERY_TOKEN", crate::helpers::QUERY_TOKEN),
        ],
    )
    .await;
    assert!(post_samples(&app).await > 10);
    let page: Value = app
        .get_authorized("/v1/changes")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["changes"], json!([]), "{page}");
}

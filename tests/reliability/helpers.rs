//! The real server in-process on a random port (as in tests/api) over a
//! store the test also holds, so it can read the store directly; sending
//! batches of callbacks concurrently; and the checks every test shares:
//! "each acknowledged event is stored" and "the final states equal a
//! sequential application of the same events to a fresh memory store".

use crate::events::Generated;
use ims_callback::configuration::Settings;
use ims_callback::pipeline::{EVENT_PREFIX, Pipeline};
use ims_callback::server::Application;
use ims_callback::state::ResourceState;
use ims_callback::store::{AnyStore, MemoryStore, Store};
use reqwest::Client;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const CALLBACK_URL: &str = "https://ims-callback.example.com/ims/events";
pub const QUERY_TOKEN: &str = "reliability-query-token";

/// A running in-process server and a handle on its store.
pub struct InProcess {
    pub address: String,
    pub client: Client,
    pub store: AnyStore,
    _dir: tempfile::TempDir,
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// Where the redb files of the load tests live: `/dev/shm` when present,
/// since those tests are about concurrency, not the disk (durability is
/// the fault tests' subject, on the real disk).
pub fn load_tempdir() -> tempfile::TempDir {
    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir()
        && let Ok(dir) = tempfile::tempdir_in(shm)
    {
        return dir;
    }
    tempfile::tempdir().unwrap()
}

/// Starts the server over `store` (`None`: a fresh redb file) with the
/// extra settings `vars`; the read API is on with [`QUERY_TOKEN`].
pub async fn spawn(store: Option<&str>, vars: &[(&str, &str)]) -> InProcess {
    let dir = load_tempdir();
    let spec = store
        .map(str::to_owned)
        .unwrap_or_else(|| format!("redb:{}", dir.path().join("state.redb").display()));
    let mut map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    map.insert("IMS_LISTEN".into(), "127.0.0.1:0".into());
    map.insert("IMS_STORE".into(), spec.clone());
    map.insert("IMS_QUERY_TOKEN".into(), QUERY_TOKEN.into());
    let settings = Settings::from_lookup(|k| map.get(k).cloned()).expect("valid settings");
    let store = AnyStore::open(&spec).await.expect("store opens");
    let app = Application::with_store(settings, store.clone())
        .await
        .expect("server starts");
    let address = format!("http://127.0.0.1:{}", app.port());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    InProcess {
        address,
        client: client(),
        store,
        _dir: dir,
        _stop: stop,
    }
}

/// A client whose requests cannot hang the test: any request taking 10 s
/// (more than three times IMS's patience) is a failure. Like any client of
/// a server that closes idle keep-alive connections (here after
/// `HEADER_READ_TIMEOUT`, 10 s), it drops its own idle connections sooner,
/// so it never sends a request on a connection being closed.
pub fn client() -> Client {
    Client::builder()
        .timeout(Duration::from_secs(10))
        .pool_idle_timeout(ims_callback::server::HEADER_READ_TIMEOUT / 2)
        .build()
        .unwrap()
}

/// What one callback got.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub latency: Duration,
}

/// POSTs every body, at most `concurrency` at a time, and returns the
/// answers in input order. A transport error (connection refused or
/// reset, or the 10 s client timeout) is status 0.
pub async fn send_all(
    client: &Client,
    url: &str,
    bodies: &[Vec<u8>],
    concurrency: usize,
) -> Vec<Answer> {
    let permits = Arc::new(tokio::sync::Semaphore::new(concurrency));
    let mut tasks = Vec::with_capacity(bodies.len());
    for body in bodies {
        let permit = Arc::clone(&permits).acquire_owned().await.unwrap();
        let (client, url, body) = (client.clone(), url.to_owned(), body.clone());
        tasks.push(tokio::spawn(async move {
            let answer = post(&client, &url, body).await;
            drop(permit);
            answer
        }));
    }
    let mut answers = Vec::with_capacity(tasks.len());
    for task in tasks {
        answers.push(task.await.unwrap());
    }
    answers
}

pub async fn post(client: &Client, url: &str, body: Vec<u8>) -> Answer {
    let started = Instant::now();
    match client
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
    {
        Ok(response) => {
            let status = response.status().as_u16();
            let body = response.json().await.unwrap_or(Value::Null);
            Answer {
                status,
                body,
                latency: started.elapsed(),
            }
        }
        Err(_) => Answer {
            status: 0,
            body: Value::Null,
            latency: started.elapsed(),
        },
    }
}

/// Counts of answers by status.
pub fn tally(answers: &[Answer]) -> BTreeMap<u16, usize> {
    let mut counts = BTreeMap::new();
    for a in answers {
        *counts.entry(a.status).or_default() += 1;
    }
    counts
}

/// The largest latency.
pub fn max_latency(answers: &[Answer]) -> Duration {
    answers.iter().map(|a| a.latency).max().unwrap_or_default()
}

/// Asserts that the event `generated`, acknowledged with `answer` (a 200),
/// is in `store`: its raw record `event/{fingerprint}`, its entry in the
/// resource's history or its own field, as the generator says.
pub async fn assert_stored(store: &impl Store, generated: &Generated, answer: &Answer) {
    let fingerprint = answer.body["fingerprint"]
        .as_str()
        .unwrap_or_else(|| panic!("a 200 without a fingerprint: {}", answer.body));
    let record = store
        .get(&format!("{EVENT_PREFIX}{fingerprint}"))
        .await
        .expect("store readable")
        .unwrap_or_else(|| panic!("acknowledged event {fingerprint} has no raw record"));
    let record: Value = serde_json::from_slice(&record.value).unwrap();
    let sent: Value = serde_json::from_slice(&generated.body).unwrap();
    assert_eq!(record["event"], sent, "raw record of {fingerprint}");
    let state = store
        .get(&generated.key)
        .await
        .expect("store readable")
        .unwrap_or_else(|| panic!("acknowledged event {fingerprint}: {} absent", generated.key));
    let state: ResourceState = serde_json::from_slice(&state.value).unwrap();
    match &generated.field {
        Some((field, value)) => assert_eq!(
            state.field(field),
            Some(value),
            "acknowledged event {fingerprint}: {}/{field}",
            generated.key
        ),
        None => assert!(
            state
                .history
                .iter()
                .any(|h| *h.stamp.fingerprint == *fingerprint),
            "acknowledged event {fingerprint} not in the history of {}",
            generated.key
        ),
    }
}

/// Re-sends every event not yet acknowledged, as IMS retries do (here
/// without IMS's limit of two retries), until all are acknowledged; panics
/// after `rounds` rounds. Returns how many re-sends it took.
pub async fn resend_until_acknowledged(
    client: &Client,
    url: &str,
    generated: &[Generated],
    answers: &mut [Answer],
    rounds: usize,
) -> usize {
    let mut resent = 0;
    for round in 0..rounds {
        let pending: Vec<usize> = (0..answers.len())
            .filter(|&i| answers[i].status != 200)
            .collect();
        if pending.is_empty() {
            return resent;
        }
        if round > 0 {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let bodies: Vec<Vec<u8>> = pending.iter().map(|&i| generated[i].body.clone()).collect();
        resent += bodies.len();
        let again = send_all(client, url, &bodies, 8).await;
        for (i, answer) in pending.into_iter().zip(again) {
            assert!(
                matches!(answer.status, 200 | 503),
                "re-send answered {}: {}",
                answer.status,
                answer.body
            );
            answers[i] = answer;
        }
    }
    panic!("events still not acknowledged after {rounds} rounds");
}

/// Applies `bodies` one by one with `Pipeline::process` to a fresh memory
/// store and asserts that every resource they touch is byte for byte the
/// same in `store`. Returns the number of resources compared.
pub async fn assert_same_as_sequential(store: &impl Store, bodies: &[Vec<u8>]) -> usize {
    let pipeline = Pipeline::new(MemoryStore::new());
    let memory = pipeline.store();
    let mut keys = BTreeSet::new();
    for body in bodies {
        let processed = pipeline
            .process(body, ims_callback::admission::ReceivedAt::now())
            .await
            .expect("valid event");
        keys.extend(processed.resources.into_iter().map(|r| r.key));
    }
    for key in &keys {
        let expected = memory.get(key).await.unwrap().expect("in memory").value;
        let got = store
            .get(key)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{key} absent"))
            .value;
        assert!(
            expected == got,
            "{key} differs from the sequential application:\n  store:  {}\n  memory: {}",
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&expected)
        );
    }
    keys.len()
}

/// A free loopback port (free when asked; a race is unlikely).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until `GET {address}/healthz` answers 200 (or panics after `limit`).
pub async fn wait_healthy(client: &Client, address: &str, limit: Duration) {
    let started = Instant::now();
    loop {
        if let Ok(r) = client.get(format!("{address}/healthz")).send().await
            && r.status() == 200
        {
            return;
        }
        assert!(
            started.elapsed() < limit,
            "{address} not healthy after {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

//! Store faults under load: a durable `redis-server` (AOF, fsync always)
//! SIGKILLed mid-load and restarted on the same port and directory; the
//! same server frozen (SIGSTOP) and thawed; and the real binary on a redb
//! file SIGKILLed mid-load. Every answer is 200 or 503 (or, for the killed
//! binary, a dropped connection), never late beyond IMS's 3 s for a
//! frozen store, and every 200 is found in the store afterwards; re-sending
//! the rest, as IMS does, loses nothing.

use crate::events::{Generated, live_file};
use crate::helpers::{
    Answer, assert_same_as_sequential, assert_stored, client, max_latency, post,
    resend_until_acknowledged, send_all, spawn, tally, wait_healthy,
};
use crate::process::ServerProcess;
use crate::redis_support::{RedisServer, unique};
use ims_callback::store::AnyStore;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// IMS waits this long for an answer.
const IMS_PATIENCE: Duration = Duration::from_secs(3);

/// `n` live files spread over 8 live jobs.
fn load(n: usize) -> Vec<Generated> {
    let salt = unique();
    (0..n)
        .map(|i| live_file(&format!("fault-{salt}-job-{}", i % 8), i))
        .collect()
}

/// Sends every body, `concurrency` at a time, in a background task;
/// `done` counts the answers as they come.
fn start_load(
    client: &reqwest::Client,
    url: &str,
    generated: &[Generated],
    concurrency: usize,
    done: &Arc<AtomicUsize>,
) -> tokio::task::JoinHandle<Vec<Answer>> {
    let permits = Arc::new(tokio::sync::Semaphore::new(concurrency));
    let (client, url, done) = (client.clone(), url.to_owned(), Arc::clone(done));
    let bodies: Vec<Vec<u8>> = generated.iter().map(|g| g.body.clone()).collect();
    tokio::spawn(async move {
        let mut tasks = Vec::new();
        for body in bodies {
            let permit = Arc::clone(&permits).acquire_owned().await.unwrap();
            let (client, url, done) = (client.clone(), url.clone(), Arc::clone(&done));
            tasks.push(tokio::spawn(async move {
                let answer = post(&client, &url, body).await;
                done.fetch_add(1, Ordering::SeqCst);
                drop(permit);
                answer
            }));
        }
        let mut answers = Vec::new();
        for t in tasks {
            answers.push(t.await.unwrap());
        }
        answers
    })
}

async fn wait_for(done: &AtomicUsize, n: usize) {
    let started = Instant::now();
    while done.load(Ordering::SeqCst) < n {
        assert!(started.elapsed() < Duration::from_secs(60), "load stalled");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_mid_load_and_restarted_loses_nothing_acknowledged() {
    let redis = RedisServer::start_durable(&[]);
    let url = format!("redis://127.0.0.1:{}/?prefix=kill{}:", redis.port, unique());
    let app = spawn(Some(&url), &[("IMS_DEADLINE_MS", "800")]).await;
    let generated = load(600);
    let done = Arc::new(AtomicUsize::new(0));
    let callback = format!("{}/", app.address);
    let loading = start_load(&app.client, &callback, &generated, 16, &done);

    wait_for(&done, 150).await;
    redis.kill();
    let killed_at = done.load(Ordering::SeqCst);
    wait_for(&done, 300).await;
    // Same port, same directory: it reloads its append-only file.
    let restarted = redis.restart();
    let mut answers = loading.await.unwrap();
    let first = tally(&answers);
    for a in &answers {
        assert!(
            matches!(a.status, 200 | 503),
            "answered {}: {}",
            a.status,
            a.body
        );
    }
    assert!(first.contains_key(&503), "the kill was noticed: {first:?}");
    wait_healthy(&app.client, &app.address, Duration::from_secs(30)).await;
    let mut acknowledged = 0;
    for (g, a) in generated.iter().zip(&answers) {
        if a.status == 200 {
            assert_stored(&app.store, g, a).await;
            acknowledged += 1;
        }
    }
    let resent =
        resend_until_acknowledged(&app.client, &callback, &generated, &mut answers, 20).await;
    for (g, a) in generated.iter().zip(&answers) {
        assert_stored(&app.store, g, a).await;
    }
    let bodies: Vec<Vec<u8>> = generated.iter().map(|g| g.body.clone()).collect();
    let resources = assert_same_as_sequential(&app.store, &bodies).await;
    println!(
        "FIGURES faults Redis SIGKILL: {} callbacks, 16 in flight, killed after {killed_at} \
         answers, restarted after 300; answers {first:?}; all {acknowledged} acknowledged found \
         after the restart; {resent} re-sent until 200; 0 lost; {resources} resources identical \
         to the sequential application",
        generated.len()
    );
    drop(restarted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_frozen_answers_503_within_the_deadline_and_recovers() {
    let redis = RedisServer::start_durable(&[]);
    let url = format!("redis://127.0.0.1:{}/?prefix=stop{}:", redis.port, unique());
    let app = spawn(Some(&url), &[("IMS_DEADLINE_MS", "800")]).await;
    let callback = format!("{}/", app.address);
    let generated = load(60);
    let bodies: Vec<Vec<u8>> = generated.iter().map(|g| g.body.clone()).collect();
    let warm = send_all(&app.client, &callback, &bodies[..10], 10).await;
    assert!(warm.iter().all(|a| a.status == 200));

    redis.signal(libc::SIGSTOP);
    let frozen = send_all(&app.client, &callback, &bodies[10..40], 30).await;
    let health_started = Instant::now();
    let health = app
        .client
        .get(format!("{}/healthz", app.address))
        .send()
        .await
        .unwrap()
        .status();
    let health_latency = health_started.elapsed();
    assert_eq!(health, 503);
    for a in &frozen {
        assert_eq!(a.status, 503, "{}", a.body);
        assert!(a.latency < IMS_PATIENCE, "answered after {:?}", a.latency);
    }
    let frozen_max = max_latency(&frozen);

    redis.signal(libc::SIGCONT);
    let thawed = Instant::now();
    // The same server, not restarted, serves again.
    loop {
        let a = post(&app.client, &callback, bodies[40].clone()).await;
        if a.status == 200 {
            break;
        }
        assert_eq!(a.status, 503);
        assert!(thawed.elapsed() < Duration::from_secs(10), "no recovery");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let recovery = thawed.elapsed();
    let after = send_all(&app.client, &callback, &bodies[41..], 19).await;
    assert!(after.iter().all(|a| a.status == 200), "{:?}", tally(&after));

    // Nothing lost: the frozen ones re-sent are acknowledged.
    let mut answers: Vec<Answer> = warm.into_iter().chain(frozen).collect();
    let resent =
        resend_until_acknowledged(&app.client, &callback, &generated[..40], &mut answers, 10).await;
    for (g, a) in generated.iter().zip(&answers) {
        assert_stored(&app.store, g, a).await;
    }
    assert_same_as_sequential(&app.store, &bodies).await;
    println!(
        "FIGURES faults Redis SIGSTOP (IMS_DEADLINE_MS=800): 30 callbacks while frozen all 503, \
         max latency {frozen_max:.2?}; /healthz 503 in {health_latency:.2?}; first 200 \
         {recovery:.2?} after SIGCONT, then 19/19 200; {resent} re-sent, 0 lost"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redb_binary_killed_mid_load_keeps_every_acknowledged_event() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.redb");
    let spec = format!("redb:{}", path.display());
    let vars = [("IMS_STORE", spec.as_str()), ("RUST_LOG", "warn")];
    let mut server = ServerProcess::start(&vars, dir.path()).await;
    let client = client();
    let callback = format!("{}/", server.address);
    let generated = load(600);
    let done = Arc::new(AtomicUsize::new(0));
    let loading = start_load(&client, &callback, &generated, 16, &done);
    wait_for(&done, 150).await;
    server.kill();
    let killed_at = done.load(Ordering::SeqCst);
    let mut answers = loading.await.unwrap();
    let first = tally(&answers);
    for a in &answers {
        // In flight at the kill: the connection drops (0), never a 200
        // for something not stored (checked below).
        assert!(matches!(a.status, 0 | 200 | 503), "answered {}", a.status);
    }

    // The file opens (redb repairs it if needed) and holds every 200.
    let opened = Instant::now();
    let store = AnyStore::open(&spec).await.expect("the redb file opens");
    let open_time = opened.elapsed();
    let mut acknowledged = 0;
    for (g, a) in generated.iter().zip(&answers) {
        if a.status == 200 {
            assert_stored(&store, g, a).await;
            acknowledged += 1;
        }
    }
    drop(store);

    // Restarted on the same file, the rest re-sent: nothing lost.
    let server = ServerProcess::start(&vars, dir.path()).await;
    let callback = format!("{}/", server.address);
    for a in answers.iter_mut().filter(|a| a.status == 0) {
        a.status = 503;
    }
    let resent = resend_until_acknowledged(&client, &callback, &generated, &mut answers, 20).await;
    drop(server);
    let store = AnyStore::open(&spec).await.unwrap();
    for (g, a) in generated.iter().zip(&answers) {
        assert_stored(&store, g, a).await;
    }
    let bodies: Vec<Vec<u8>> = generated.iter().map(|g| g.body.clone()).collect();
    let resources = assert_same_as_sequential(&store, &bodies).await;
    println!(
        "FIGURES faults redb binary SIGKILL: {} callbacks, 16 in flight, killed after \
         {killed_at} answers; answers {first:?}; reopened in {open_time:.2?} with all \
         {acknowledged} acknowledged; {resent} re-sent after restart; 0 lost; {resources} \
         resources identical to the sequential application",
        generated.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_load_drains_and_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let spec = format!("redb:{}", dir.path().join("state.redb").display());
    let vars = [("IMS_STORE", spec.as_str()), ("RUST_LOG", "info")];
    let mut server = ServerProcess::start(&vars, dir.path()).await;
    let client = client();
    let callback = format!("{}/", server.address);
    let generated = load(300);
    let done = Arc::new(AtomicUsize::new(0));
    let loading = start_load(&client, &callback, &generated, 16, &done);
    wait_for(&done, 100).await;
    let stopping = Instant::now();
    let status = tokio::task::spawn_blocking(move || {
        let status = server.terminate(Duration::from_secs(15));
        (server, status)
    });
    let answers = loading.await.unwrap();
    let (server, status) = status.await.unwrap();
    let exit_time = stopping.elapsed();
    assert!(status.success(), "exit status {status}");
    let first = tally(&answers);
    for a in &answers {
        // Served to the end (200), or never served (connection closed or
        // refused): nothing in between, nothing else.
        assert!(matches!(a.status, 0 | 200), "answered {}", a.status);
    }
    // The log thread's queue was written out before the exit: every
    // acknowledged event has its line, and the shutdown's last line is there.
    let logs = server.logs();
    drop(server);
    let logged: std::collections::HashSet<String> = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|l| l["fields"]["message"] == "event stored")
        .filter_map(|l| l["fields"]["fingerprint"].as_str().map(str::to_owned))
        .collect();
    assert!(logs.contains("all connections closed"), "{logs}");
    let store = AnyStore::open(&spec).await.unwrap();
    for (g, a) in generated.iter().zip(&answers) {
        if a.status == 200 {
            assert_stored(&store, g, a).await;
            let fingerprint = a.body["fingerprint"].as_str().unwrap_or_default();
            assert!(
                logged.contains(fingerprint),
                "no log line for {fingerprint}"
            );
        }
    }
    println!(
        "FIGURES faults SIGTERM: 300 callbacks, 16 in flight, SIGTERM after 100 answers; \
         answers {first:?}; exit 0 after {exit_time:.2?}; every 200 stored and logged"
    );
}

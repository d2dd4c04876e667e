//! Concurrency without loss, through the real HTTP server: 200 concurrent
//! callbacks on one resource, and 2,000 over 100 media, on redb and on
//! Redis. Every 200 is checked in the store right away; the others (503
//! under contention or past the deadline) are re-sent as IMS would; the
//! final states must then be byte for byte those of a sequential
//! application of the same events.

use crate::events::{Generated, live_file, media_change, media_id};
use crate::helpers::{
    InProcess, assert_same_as_sequential, assert_stored, max_latency, resend_until_acknowledged,
    send_all, spawn, tally,
};
use crate::redis_support::{RedisServer, unique};
use std::time::{Duration, Instant};

/// IMS waits this long for an answer.
const IMS_PATIENCE: Duration = Duration::from_secs(3);

/// Sends `generated` with `concurrency` in flight; with `patience`, every
/// first answer must come within it.
async fn run(
    label: &str,
    app: &InProcess,
    generated: Vec<Generated>,
    concurrency: usize,
    patience: Option<Duration>,
) {
    let url = format!("{}/", app.address);
    let bodies: Vec<Vec<u8>> = generated.iter().map(|g| g.body.clone()).collect();
    let started = Instant::now();
    let mut answers = send_all(&app.client, &url, &bodies, concurrency).await;
    let elapsed = started.elapsed();
    let first = tally(&answers);
    let slowest = max_latency(&answers);
    if let Some(patience) = patience {
        assert!(slowest < patience, "{label}: an answer took {slowest:?}");
    }
    for (g, a) in generated.iter().zip(&answers) {
        assert!(
            matches!(a.status, 200 | 503),
            "{label}: answered {}: {}",
            a.status,
            a.body
        );
        if a.status == 200 {
            assert_stored(&app.store, g, a).await;
        }
    }
    let resent = resend_until_acknowledged(&app.client, &url, &generated, &mut answers, 20).await;
    for (g, a) in generated.iter().zip(&answers) {
        assert_stored(&app.store, g, a).await;
    }
    let resources = assert_same_as_sequential(&app.store, &bodies).await;
    println!(
        "FIGURES concurrency {label}: {} events, {concurrency} in flight, first pass {first:?} \
         in {elapsed:.2?} (max latency {slowest:.2?}), {resent} re-sent, all {} stored, \
         {resources} resources identical to the sequential application",
        generated.len(),
        generated.len()
    );
}

fn same_live_job() -> Vec<Generated> {
    let job = format!("5f0c7e1a-0000-4000-8000-{:012x}", unique());
    (0..200).map(|i| live_file(&job, i)).collect()
}

fn hundred_media() -> Vec<Generated> {
    let salt = unique() * 1000;
    // Interleaved, so that every media is written concurrently throughout.
    (0..20)
        .flat_map(|i| (0..100).map(move |m| media_change(&media_id(salt as usize + m), i)))
        .collect()
}

fn redis_url(server: &RedisServer) -> String {
    format!("redis://127.0.0.1:{}/?prefix=rel{}:", server.port, unique())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_on_one_live_job_redb() {
    let app = spawn(None, &[]).await;
    run(
        "200 on one live job, redb",
        &app,
        same_live_job(),
        200,
        None,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_on_one_live_job_redis() {
    let server = RedisServer::start(&[]);
    let app = spawn(Some(&redis_url(&server)), &[]).await;
    run(
        "200 on one live job, Redis",
        &app,
        same_live_job(),
        200,
        None,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_over_a_hundred_media_redb() {
    let app = spawn(None, &[]).await;
    run(
        "2,000 over 100 media, redb",
        &app,
        hundred_media(),
        64,
        Some(IMS_PATIENCE),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_over_a_hundred_media_redis() {
    let server = RedisServer::start(&[]);
    let app = spawn(Some(&redis_url(&server)), &[]).await;
    run(
        "2,000 over 100 media, Redis",
        &app,
        hundred_media(),
        64,
        Some(IMS_PATIENCE),
    )
    .await;
}

/// At the deployed `instanceConcurrency` (20, s.yaml and template.yaml)
/// on a single hot resource: the figures (503s, latency) for the docs; no
/// loss, as everywhere. Latency is not asserted here: every conflicting
/// write re-reads and re-merges the growing state, which on a debug build
/// sharing two cores comes close to IMS's 3 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployed_concurrency_on_one_live_job_redis() {
    let server = RedisServer::start(&[]);
    let app = spawn(Some(&redis_url(&server)), &[]).await;
    run(
        "200 on one live job at 20 in flight, Redis",
        &app,
        same_live_job(),
        20,
        None,
    )
    .await;
}

//! Function Compute's and IMS's delivery rules, played against the real
//! server over a real, durable `redis-server` that is frozen (SIGSTOP) and
//! killed mid-run.
//!
//! [`FcTrigger`] plays an MNS queue trigger (EventBridge, `event-streaming`
//! mode) invoking the function: it posts `POST /invoke` with
//! `x-fc-control-path: /invoke` and an `x-fc-request-id`, **ignores the
//! HTTP status**, reads only `x-fc-status` and the body, and redelivers on
//! `x-fc-status: 404` (or no answer at all) with an exponential backoff.
//! FC drops the HTTP status and headers of an event invocation; only
//! `x-fc-status: 404` reports a failure, and a missing header counts as
//! success (custom runtime specification,
//! help.aliyun.com/en/functioncompute/fc-2-0/user-guide/custom-runtime-specification-details;
//! web functions, alibabacloud.com/help/en/functioncompute/fc/user-guide/web-functions).
//! The trigger's `EXPONENTIAL_DECAY_RETRY` retries for about a day, up to
//! 512 s apart (devsapp/fc3 docs/zh/yaml/triggers.md); here the backoff is
//! scaled down to milliseconds so the test stays short.
//!
//! [`ImsHttp`] plays IMS's HTTP callback: only a 200 counts as delivered,
//! it waits 3 s for the answer, retries twice 1 s apart, then drops the
//! event (IMS `SetEventCallback` documentation, summarised in DESIGN.md).
//! Its timings are IMS's own, not scaled.

use crate::events::{Generated, live_file};
use crate::helpers::{Answer, assert_same_as_sequential, assert_stored, client, spawn};
use crate::process::ServerProcess;
use crate::redis_support::{RedisServer, unique};
use reqwest::Client;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// FC's event trigger: delivers an invocation body until FC would count
/// it as successful.
#[derive(Clone)]
pub struct FcTrigger {
    client: Client,
    url: String,
    /// Every invocation made, first deliveries and redeliveries.
    invocations: Arc<AtomicUsize>,
}

/// What the trigger got in the end.
pub struct Delivered {
    /// Invocations it took (1 = no redelivery).
    pub attempts: usize,
    /// The body of the answer FC counted as successful.
    pub body: Value,
}

/// The trigger's backoff before redelivery number `n` (1-based): 50 ms,
/// doubling, at most 800 ms.
fn backoff(n: usize) -> Duration {
    Duration::from_millis(50 << (n.clamp(1, 5) - 1)).min(Duration::from_millis(800))
}

/// Redeliveries after which a message would be in the dead-letter queue
/// (never reached here: the outages are short).
const MAX_ATTEMPTS: usize = 200;

impl FcTrigger {
    pub fn new(address: &str) -> Self {
        FcTrigger {
            client: client(),
            url: format!("{address}/invoke"),
            invocations: Arc::default(),
        }
    }

    /// Invocations made so far.
    pub fn invocations(&self) -> usize {
        self.invocations.load(Ordering::SeqCst)
    }

    /// Delivers `body` as FC does until the function reports success.
    pub async fn deliver(&self, body: &[u8], name: &str) -> Delivered {
        for attempt in 1..=MAX_ATTEMPTS {
            self.invocations.fetch_add(1, Ordering::SeqCst);
            let answer = self
                .client
                .post(&self.url)
                .header("content-type", "application/octet-stream")
                .header("x-fc-control-path", "/invoke")
                .header("x-fc-request-id", format!("{name}-{attempt}"))
                .body(body.to_vec())
                .send()
                .await;
            // No answer at all (connection refused or reset, timeout) is a
            // function error for FC: redelivered like a 404.
            if let Ok(response) = answer {
                let failed = response
                    .headers()
                    .get("x-fc-status")
                    .is_some_and(|v| v.as_bytes() == b"404");
                let body = response.json().await.unwrap_or(Value::Null);
                if !failed {
                    return Delivered {
                        attempts: attempt,
                        body,
                    };
                }
            }
            tokio::time::sleep(backoff(attempt)).await;
        }
        panic!("{name}: still failing after {MAX_ATTEMPTS} invocations");
    }
}

/// IMS's HTTP callback sender.
pub struct ImsHttp {
    client: Client,
    url: String,
}

/// What IMS made of one event.
#[derive(Debug)]
pub enum ImsOutcome {
    /// A 200 came at this attempt (1 to 3).
    Delivered { attempt: usize },
    /// Three attempts failed; `span` from the first attempt to the last
    /// answer (or timeout) is how long an outage this event survives.
    Dropped { span: Duration },
}

/// IMS waits this long for an answer.
const IMS_TIMEOUT: Duration = Duration::from_secs(3);
/// IMS's pause before each of its two retries.
const IMS_RETRY_INTERVAL: Duration = Duration::from_secs(1);

impl ImsHttp {
    pub fn new(address: &str) -> Self {
        ImsHttp {
            client: Client::builder().timeout(IMS_TIMEOUT).build().unwrap(),
            url: format!("{address}/"),
        }
    }

    pub async fn deliver(&self, body: &[u8]) -> ImsOutcome {
        let first = Instant::now();
        for attempt in 1..=3 {
            let answer = self
                .client
                .post(&self.url)
                .header("content-type", "application/json")
                .body(body.to_vec())
                .send()
                .await;
            if answer.is_ok_and(|r| r.status() == 200) {
                return ImsOutcome::Delivered { attempt };
            }
            if attempt < 3 {
                tokio::time::sleep(IMS_RETRY_INTERVAL).await;
            }
        }
        ImsOutcome::Dropped {
            span: first.elapsed(),
        }
    }
}

/// A CloudEvents envelope as an MNS queue trigger delivers it (the shape
/// `src/ingest/trigger.rs` reads; see `events/triggers/`).
fn envelope(message_id: &str, event: &[u8]) -> Value {
    json!({
        "id": format!("ce-{message_id}"),
        "source": "MNS-ims-callback-mns-ims-events",
        "specversion": "1.0",
        "type": "mns:Queue:SendMessage",
        "datacontenttype": "application/json; charset=utf-8",
        "subject": "acs:mns:cn-shanghai:1833220977560785:queues/ice-callback-events",
        "aliyunaccountid": "1833220977560785",
        "data": {
            "requestId": format!("req-{message_id}"),
            "messageId": message_id,
            "messageBody": String::from_utf8(event.to_vec()).unwrap(),
        }
    })
}

/// One invocation: its body and the events it carries, in order.
struct Invocation {
    body: Vec<u8>,
    events: Vec<usize>,
}

/// Invocations carrying `generated`: the first `singles` one per
/// invocation, the rest in batches of `batch`.
fn invocations(generated: &[Generated], singles: usize, batch: usize) -> Vec<Invocation> {
    let salt = unique();
    let id = |i: usize| format!("msg-{salt}-{i:04}");
    let mut out: Vec<Invocation> = (0..singles.min(generated.len()))
        .map(|i| Invocation {
            body: serde_json::to_vec(&envelope(&id(i), &generated[i].body)).unwrap(),
            events: vec![i],
        })
        .collect();
    let rest: Vec<usize> = (singles..generated.len()).collect();
    for chunk in rest.chunks(batch) {
        let batch: Vec<Value> = chunk
            .iter()
            .map(|&i| envelope(&id(i), &generated[i].body))
            .collect();
        out.push(Invocation {
            body: serde_json::to_vec(&batch).unwrap(),
            events: chunk.to_vec(),
        });
    }
    out
}

/// Asserts that each message of each final answer was stored, and is in
/// `store`; returns how many messages the answers report as stored.
async fn assert_all_stored(
    store: &impl ims_callback::store::Store,
    generated: &[Generated],
    invocations: &[Invocation],
    delivered: &[Delivered],
) -> usize {
    let mut stored = 0;
    for (invocation, delivered) in invocations.iter().zip(delivered) {
        let results = delivered.body["results"]
            .as_array()
            .unwrap_or_else(|| panic!("answer without results: {}", delivered.body));
        assert_eq!(results.len(), invocation.events.len(), "{}", delivered.body);
        assert_eq!(delivered.body["durable"], true, "{}", delivered.body);
        for (&i, result) in invocation.events.iter().zip(results) {
            assert_eq!(result["result"], "stored", "{result}");
            let answer = Answer {
                status: 200,
                body: result.clone(),
                latency: Duration::ZERO,
            };
            assert_stored(store, &generated[i], &answer).await;
            stored += 1;
        }
    }
    stored
}

/// Whether `generated`'s own field is in the stored state of its resource.
async fn is_stored(store: &impl ims_callback::store::Store, generated: &Generated) -> bool {
    let Some(found) = store.get(&generated.key).await.expect("store readable") else {
        return false;
    };
    let state: ims_callback::state::ResourceState = serde_json::from_slice(&found.value).unwrap();
    let (field, value) = generated
        .field
        .as_ref()
        .expect("live files name their field");
    state.field(field) == Some(value)
}

/// Delivers every invocation through `trigger`, `concurrency` at a time;
/// `answered` counts the invocations done.
fn deliver_all(
    trigger: &FcTrigger,
    invocations: &[Invocation],
    concurrency: usize,
    answered: &Arc<AtomicUsize>,
) -> tokio::task::JoinHandle<Vec<Delivered>> {
    let permits = Arc::new(tokio::sync::Semaphore::new(concurrency));
    let bodies: Vec<Vec<u8>> = invocations.iter().map(|i| i.body.clone()).collect();
    let (trigger, answered) = (trigger.clone(), Arc::clone(answered));
    tokio::spawn(async move {
        let mut tasks = Vec::new();
        for (n, body) in bodies.into_iter().enumerate() {
            let permit = Arc::clone(&permits).acquire_owned().await.unwrap();
            let (trigger, answered) = (trigger.clone(), Arc::clone(&answered));
            tasks.push(tokio::spawn(async move {
                let delivered = trigger.deliver(&body, &format!("inv{n}")).await;
                answered.fetch_add(1, Ordering::SeqCst);
                drop(permit);
                delivered
            }));
        }
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    })
}

async fn wait_for(counter: &AtomicUsize, n: usize) {
    let started = Instant::now();
    while counter.load(Ordering::SeqCst) < n {
        assert!(started.elapsed() < Duration::from_secs(60), "stalled");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// `n` live files over 8 live jobs.
fn load(n: usize) -> Vec<Generated> {
    let salt = unique();
    (0..n)
        .map(|i| live_file(&format!("fc-{salt}-job-{}", i % 8), i))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mns_messages_through_fc_survive_a_frozen_then_killed_redis() {
    let redis = RedisServer::start_durable(&[]);
    let url = format!("redis://127.0.0.1:{}/?prefix=fc{}:", redis.port, unique());
    let app = spawn(Some(&url), &[("IMS_DEADLINE_MS", "300")]).await;
    let generated = load(200);
    // 100 single messages, then 20 batches of 5.
    let invocations = invocations(&generated, 100, 5);
    let trigger = FcTrigger::new(&app.address);
    let answered = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let delivering = deliver_all(&trigger, &invocations, 12, &answered);

    wait_for(&answered, 30).await;
    redis.signal(libc::SIGSTOP);
    let frozen_at = answered.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(500)).await;
    redis.signal(libc::SIGCONT);
    wait_for(&answered, frozen_at + 30).await;
    redis.kill();
    let killed_at = answered.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let restarted = redis.restart();
    let delivered = delivering.await.unwrap();
    let elapsed = started.elapsed();

    let stored = assert_all_stored(&app.store, &generated, &invocations, &delivered).await;
    let bodies: Vec<Vec<u8>> = generated.iter().map(|g| g.body.clone()).collect();
    let resources = assert_same_as_sequential(&app.store, &bodies).await;
    let redelivered = trigger.invocations() - invocations.len();
    let most = delivered.iter().map(|d| d.attempts).max().unwrap_or(0);
    assert!(redelivered > 0, "the outages were noticed");
    eprintln!(
        "FIGURES fc_harness MNS: {} messages in {} invocations (100 single, 20 batches of 5), \
         12 in flight, IMS_DEADLINE_MS=300; Redis frozen 0.5 s after {frozen_at} answers, \
         killed after {killed_at} and restarted 0.4 s later; {redelivered} redeliveries on \
         x-fc-status 404 (at most {most} invocations for one); {stored}/{} stored, 0 lost; \
         {resources} resources identical to a fault-free sequential run; {elapsed:.2?}",
        generated.len(),
        invocations.len(),
        generated.len(),
    );
    drop(restarted);
}

/// The outages both modes go through.
#[derive(Clone, Copy, Debug)]
enum Outage {
    /// SIGSTOP: the store accepts connections and never answers.
    Frozen,
    /// SIGKILL: connections are refused; restarted from its AOF.
    Killed,
}

/// One outage on its own Redis and server: 10 events sent by IMS's HTTP
/// callback and 10 MNS messages by FC's trigger, all at its start; the
/// store stays down until IMS has dropped every HTTP event, then comes
/// back. Returns the figures.
async fn through_outage(outage: Outage, deadline_ms: u64) -> String {
    let redis = RedisServer::start_durable(&[]);
    let url = format!("redis://127.0.0.1:{}/?prefix=out{}:", redis.port, unique());
    let deadline = deadline_ms.to_string();
    let app = spawn(Some(&url), &[("IMS_DEADLINE_MS", deadline.as_str())]).await;
    let ims = Arc::new(ImsHttp::new(&app.address));
    let trigger = FcTrigger::new(&app.address);
    let generated = load(20);
    let (by_http, by_mns) = generated.split_at(10);
    let invocations = invocations(by_mns, 10, 1);

    match outage {
        Outage::Frozen => redis.signal(libc::SIGSTOP),
        Outage::Killed => redis.kill(),
    }
    let ims_tasks: Vec<_> = by_http
        .iter()
        .map(|g| {
            let (ims, body) = (Arc::clone(&ims), g.body.clone());
            tokio::spawn(async move { ims.deliver(&body).await })
        })
        .collect();
    let mns_tasks: Vec<_> = invocations
        .iter()
        .enumerate()
        .map(|(n, inv)| {
            let (trigger, body) = (trigger.clone(), inv.body.clone());
            tokio::spawn(async move { trigger.deliver(&body, &format!("out{n}")).await })
        })
        .collect();
    let mut spans = Vec::new();
    for task in ims_tasks {
        match task.await.unwrap() {
            ImsOutcome::Dropped { span } => spans.push(span),
            ImsOutcome::Delivered { attempt } => {
                panic!("{outage:?} store, yet IMS got a 200 at attempt {attempt}")
            }
        }
    }
    // Every HTTP event is dropped: only now does the outage end.
    let _restarted = match outage {
        Outage::Frozen => {
            redis.signal(libc::SIGCONT);
            None
        }
        Outage::Killed => Some(redis.restart()),
    };
    let mut delivered = Vec::new();
    for task in mns_tasks {
        delivered.push(task.await.unwrap());
    }
    let stored = assert_all_stored(&app.store, by_mns, &invocations, &delivered).await;
    // A write cut short by the deadline may still land once the store is
    // back: an event IMS dropped is lost only if it is absent.
    let mut lost = 0;
    for g in by_http {
        if !is_stored(&app.store, g).await {
            lost += 1;
        }
    }
    let redeliveries: usize = delivered.iter().map(|d| d.attempts - 1).sum();
    let shortest = spans.iter().min().copied().unwrap_or_default();
    let longest = spans.iter().max().copied().unwrap_or_default();
    format!(
        "{outage:?}: HTTP {}/10 dropped by IMS after 3 attempts spanning \
         {shortest:.2?}–{longest:.2?}, {lost} of them never stored (lost); MNS {stored}/10 \
         stored after {redeliveries} redeliveries",
        spans.len()
    )
}

/// The same outages for both modes, side by side: each lasts until IMS
/// has dropped every HTTP event sent at its start, and MNS messages sent
/// at the same moment are all stored once the store is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ims_http_drops_what_an_outage_outlasts_and_mns_keeps_it() {
    let deadline_ms = 150;
    let (frozen, killed) = tokio::join!(
        through_outage(Outage::Frozen, deadline_ms),
        through_outage(Outage::Killed, deadline_ms)
    );
    eprintln!(
        "FIGURES fc_harness IMS HTTP vs MNS (IMS_DEADLINE_MS={deadline_ms}; IMS: 3 s timeout, \
         2 retries 1 s apart): {frozen}; {killed}"
    );
}

/// A redelivery after `x-fc-status: 404` carries messages that were
/// stored before (FC redelivers the whole batch): they are duplicates, and
/// the final states are those of a single delivery of each message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivery_after_404_yields_the_state_of_a_single_delivery() {
    let redis = RedisServer::start_durable(&[]);
    let url = format!("redis://127.0.0.1:{}/?prefix=re{}:", redis.port, unique());
    let app = spawn(Some(&url), &[("IMS_DEADLINE_MS", "200")]).await;
    let generated = load(60);
    let trigger = FcTrigger::new(&app.address);
    // Half of the messages are stored first, one invocation each.
    let singles = invocations(&generated[..30], 30, 1);
    for (n, inv) in singles.iter().enumerate() {
        assert_eq!(
            trigger
                .deliver(&inv.body, &format!("one{n}"))
                .await
                .attempts,
            1
        );
    }
    // Then batches of 6, each 3 stored and 3 new messages.
    let batches: Vec<Invocation> = (0..10)
        .map(|b| {
            let events: Vec<usize> = (3 * b..3 * b + 3).chain(30 + 3 * b..33 + 3 * b).collect();
            let batch: Vec<Value> = events
                .iter()
                .map(|&i| envelope(&format!("re-{i}"), &generated[i].body))
                .collect();
            Invocation {
                body: serde_json::to_vec(&batch).unwrap(),
                events,
            }
        })
        .collect();

    // Frozen: nothing is stored within the deadline, every answer is 404.
    redis.signal(libc::SIGSTOP);
    let first: Vec<_> = batches
        .iter()
        .map(|inv| {
            let request = trigger
                .client
                .post(&trigger.url)
                .header("x-fc-control-path", "/invoke")
                .body(inv.body.clone());
            tokio::spawn(async move {
                let response = request.send().await.unwrap();
                response
                    .headers()
                    .get("x-fc-status")
                    .map(|v| v.as_bytes().to_vec())
            })
        })
        .collect();
    let mut failed = 0;
    for answer in first {
        if answer.await.unwrap().as_deref() == Some(b"404".as_slice()) {
            failed += 1;
        }
    }
    redis.signal(libc::SIGCONT);
    assert_eq!(
        failed,
        batches.len(),
        "a frozen store stores nothing in time"
    );

    // FC redelivers each failed batch whole.
    let mut delivered = Vec::new();
    for (n, inv) in batches.iter().enumerate() {
        delivered.push(trigger.deliver(&inv.body, &format!("re{n}")).await);
    }
    assert_all_stored(&app.store, &generated, &batches, &delivered).await;
    let duplicates = delivered
        .iter()
        .flat_map(|d| d.body["results"].as_array().cloned().unwrap_or_default())
        .filter(|r| r["resources"][0]["outcome"] == "duplicate")
        .count();
    assert!(
        duplicates >= 30,
        "the stored half came back as duplicates: {duplicates}"
    );
    let bodies: Vec<Vec<u8>> = generated.iter().map(|g| g.body.clone()).collect();
    let resources = assert_same_as_sequential(&app.store, &bodies).await;
    eprintln!(
        "FIGURES fc_harness redelivery: {} batches of 6 (3 stored before, 3 new) answered \
         x-fc-status 404 while Redis was frozen, then redelivered whole: {duplicates} of 60 \
         messages duplicates, the rest applied; {resources} resources identical to a single \
         delivery of each message",
        batches.len()
    );
}

/// The real binary writes FC's `FC Invoke Start/End RequestId` lines
/// around each invocation that carries `x-fc-request-id`, as whole lines
/// among the JSON ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_writes_fc_invoke_lines_around_each_invocation() {
    let dir = tempfile::tempdir().unwrap();
    let spec = format!("redb:{}", dir.path().join("state.redb").display());
    let vars = [("IMS_STORE", spec.as_str()), ("RUST_LOG", "warn")];
    let mut server = ServerProcess::start(&vars, dir.path()).await;
    let trigger = FcTrigger::new(&server.address);
    let generated = load(20);
    let invocations = invocations(&generated, 10, 5);
    let mut tasks = Vec::new();
    for (n, inv) in invocations.iter().enumerate() {
        let (trigger, body) = (trigger.clone(), inv.body.clone());
        tasks.push(tokio::spawn(async move {
            trigger.deliver(&body, &format!("line{n}")).await
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().attempts, 1);
    }
    // An HTTP-trigger request that FC forwarded carries a request id too.
    let callback = client()
        .post(format!("{}/", server.address))
        .header("x-fc-request-id", "http-1")
        .body(generated[0].body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(callback.status(), 200);
    assert!(server.terminate(Duration::from_secs(15)).success());
    let stdout = std::fs::read_to_string(&server.stdout).unwrap();
    let mut open = std::collections::HashSet::new();
    let mut ended = 0;
    for line in stdout.lines() {
        if let Some(id) = line.strip_prefix("FC Invoke Start RequestId: ") {
            assert!(open.insert(id.to_owned()), "started twice: {id}");
        } else if let Some(id) = line.strip_prefix("FC Invoke End RequestId: ") {
            assert!(open.remove(id), "ended before it started: {id}");
            ended += 1;
        } else {
            // Every other line is one whole JSON object (at `warn`,
            // the other lines are JSON only).
            serde_json::from_str::<Value>(line)
                .unwrap_or_else(|e| panic!("not a whole line ({e}): {line:?}"));
        }
    }
    assert!(open.is_empty(), "never ended: {open:?}");
    assert_eq!(ended, invocations.len() + 1, "{stdout}");
}

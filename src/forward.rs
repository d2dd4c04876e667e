//! Forwarding: every change of the feed POSTed to the application's
//! webhook URL (`IMS_FORWARD_URL`), signed per the Standard Webhooks
//! specification (<https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md>):
//! the body `{"type": "resource.changed", "timestamp": AT, "data": CHANGE}`
//! (the spec's recommended payload structure, `timestamp` being when the
//! change happened: the event's `EventTime`), and the headers `webhook-id`
//! (the change id, stable across retries: the receiver's idempotency key),
//! `webhook-timestamp` (this attempt, Unix seconds) and `webhook-signature`
//! (`v1,` and the base64 HMAC-SHA256 of `{id}.{timestamp}.{body}` under the
//! key the `whsec_` secret encodes).
//!
//! # Guarantees
//!
//! A 2xx answer is a delivery; anything else, or no answer within the
//! timeout, is retried with exponential backoff and jitter, a few times,
//! after which the change waits in the log and is tried again later:
//! nothing is dropped, nothing is skipped. Per resource, changes are
//! delivered in log order: a page of the log is split into one chain per
//! resource, each chain delivered in order (different resources at once),
//! and a chain stops at a change that could not be delivered.
//!
//! What has been delivered is kept in the store, one record per log
//! partition at `forward/{partition}`: the last delivered sequence number
//! and a lease (holder, expiry). A forwarder delivers a partition only
//! while it holds its lease, so however many instances run (Function
//! Compute starts many), one at a time delivers a given partition, which is
//! what keeps per-resource order. The lease is taken with a
//! compare-and-set when the record is absent or expired, renewed while
//! delivering, and released on a clean stop; a holder that dies loses it
//! when it expires. The delivered position is written with the same
//! compare-and-set, after each page's acknowledgments, so a forwarder that
//! lost its lease can never move it. A restart resumes from it: delivery is
//! at least once; changes delivered after the last write of the position
//! are delivered again (same `webhook-id`, same body).
//!
//! An attempt starts only if the lease outlives it by the holder's own
//! clock; a taker judges expiry by its clock, so clocks of instances must
//! agree to well within [`ForwardSettings::lease`] (a minute by default;
//! NTP-synchronised hosts agree to milliseconds).

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use hyper::Uri;
use hyper::body::Bytes;
use hyper::header::{CONTENT_TYPE, HeaderName, HeaderValue, USER_AGENT};
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, Semaphore};
use tokio::time::Instant;

use crate::changes::{Change, POLL_INTERVAL};
use crate::http_client::HttpClient;
use crate::store::{CasOutcome, Cursor, LogEntry, Store, StoreError, Version, read_log_waiting};

/// The store keys of the delivery records: `forward/{partition}`.
pub const RECORD_PREFIX: &str = "forward/";

/// The `type` of every forwarded payload.
pub const EVENT_TYPE: &str = "resource.changed";

/// Header names, as the Standard Webhooks specification spells them.
pub const ID_HEADER: &str = "webhook-id";
/// See [`ID_HEADER`].
pub const TIMESTAMP_HEADER: &str = "webhook-timestamp";
/// See [`ID_HEADER`].
pub const SIGNATURE_HEADER: &str = "webhook-signature";

/// The spec's bounds on a symmetric secret: at least 24 bytes (192 bits),
/// at most 64 (512 bits).
const SECRET_BYTES: std::ops::RangeInclusive<usize> = 24..=64;

/// The HMAC key of a `whsec_…` secret. `Debug` never shows it.
pub struct WebhookSecret {
    key: ring::hmac::Key,
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(whsec_***)")
    }
}

impl WebhookSecret {
    /// Parses `whsec_<base64>` (the spec's serialisation of a symmetric
    /// secret); the key is the decoded bytes, 24 to 64 of them.
    pub fn parse(text: &str) -> Result<Self, String> {
        let Some(encoded) = text.trim().strip_prefix("whsec_") else {
            return Err(
                "must be `whsec_` followed by the base64 of 24 to 64 random bytes \
                        (e.g. `whsec_$(openssl rand -base64 32)`)"
                    .into(),
            );
        };
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|e| format!("the part after `whsec_` is not standard base64: {e}"))?;
        if !SECRET_BYTES.contains(&bytes.len()) {
            return Err(format!(
                "the key after `whsec_` is {} bytes; the Standard Webhooks spec asks for 24 to 64",
                bytes.len()
            ));
        }
        Ok(WebhookSecret {
            key: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &bytes),
        })
    }

    /// The `webhook-signature` value for one attempt: `v1,` and the
    /// base64 HMAC-SHA256 of `{id}.{timestamp}.{body}`.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let mut context = ring::hmac::Context::with_key(&self.key);
        context.update(id.as_bytes());
        context.update(b".");
        context.update(timestamp.to_string().as_bytes());
        context.update(b".");
        context.update(body);
        let tag = context.sign();
        format!(
            "v1,{}",
            base64::engine::general_purpose::STANDARD.encode(tag.as_ref())
        )
    }
}

/// How a failed attempt is retried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retry {
    /// Wait before the first retry (then doubled each time, with jitter).
    pub first: Duration,
    /// Longest wait between two attempts.
    pub max: Duration,
    /// Attempts of one change before it waits in the log.
    pub attempts: u32,
    /// How long a forwarder waits before trying again a page that had a
    /// change it could not deliver.
    pub pause: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        // 0.5 + 1 + 2 + 4 + 8 s: a receiver that restarts is reached
        // within about 15 s; one that is down for longer is retried every
        // 30 s from the log, which keeps every change.
        Retry {
            first: Duration::from_millis(500),
            max: Duration::from_secs(8),
            attempts: 6,
            pause: Duration::from_secs(30),
        }
    }
}

impl Retry {
    /// The wait after failed attempt `n` (0 = the first): `first · 2^n`,
    /// capped at `max`, between half and all of it (jitter, so that
    /// instances do not retry in lockstep).
    pub fn backoff(&self, n: u32) -> Duration {
        let full = self.first.saturating_mul(1 << n.min(20)).min(self.max);
        let half = full / 2;
        half + half.mul_f64(fastrand::f64())
    }
}

/// Everything a forwarder needs.
#[derive(Debug, Clone)]
pub struct ForwardSettings {
    /// Where to POST (`IMS_FORWARD_URL`).
    pub url: Uri,
    /// The signing secret (`IMS_FORWARD_SECRET`).
    pub secret: Arc<WebhookSecret>,
    /// Longest wait for one answer (`IMS_FORWARD_TIMEOUT`): the spec
    /// recommends 15 to 30 s.
    pub timeout: Duration,
    /// Retries of a failed attempt.
    pub retry: Retry,
    /// How long a lease lasts without renewal; at least twice `timeout`.
    pub lease: Duration,
    /// Most changes read per page.
    pub batch: usize,
    /// Most POSTs in flight at once (each to a different resource).
    pub concurrency: usize,
    /// How often an idle forwarder looks for changes other processes
    /// wrote (this process's own writes wake it at once).
    pub poll: Duration,
}

/// How long a timer invocation drains: well within the function's
/// 60 s timeout (`Timeout` in s.yaml and template.yaml).
pub const DRAIN_BUDGET: Duration = Duration::from_secs(40);

/// Default [`ForwardSettings::timeout`].
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);

impl ForwardSettings {
    /// The defaults for `url` and `secret`.
    pub fn new(url: Uri, secret: WebhookSecret) -> Self {
        ForwardSettings {
            url,
            secret: Arc::new(secret),
            timeout: DEFAULT_TIMEOUT,
            retry: Retry::default(),
            lease: Duration::from_secs(60),
            batch: 200,
            concurrency: 16,
            poll: POLL_INTERVAL,
        }
    }

    /// The lease with room for a whole attempt after each renewal.
    fn lease(&self) -> Duration {
        self.lease.max(self.timeout * 2)
    }
}

/// One partition's delivery record, as stored at `forward/{partition}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Record {
    /// The last delivered sequence number (0 = none).
    delivered: u64,
    /// Who holds the lease.
    holder: String,
    /// When the lease ends, Unix milliseconds (0 = released).
    expires_ms: u64,
}

/// A lease this session holds.
#[derive(Debug, Clone)]
struct Held {
    version: Version,
    delivered: u64,
    expires_ms: u64,
}

/// What a forwarder has done since it started.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Changes acknowledged with a 2xx (a redelivery counts again).
    pub delivered: u64,
    /// Attempts that got no 2xx.
    pub failed_attempts: u64,
    /// Changes left in the log by a page, to be tried again: their last
    /// retry failed, or an earlier change of their resource's did.
    pub deferred: u64,
    /// Partitions whose lease this forwarder took at least once.
    pub partitions: usize,
}

/// A forwarder over a store: cheap to share; each [`Forwarder::run_until`]
/// or [`Forwarder::drain`] is its own lease holder.
#[derive(Debug)]
pub struct Forwarder<S> {
    store: S,
    settings: ForwardSettings,
    client: HttpClient,
    /// This process's holder id; each session adds a number.
    process: String,
    sessions: AtomicU64,
    /// Delivery cursor lag, for metrics: changes known not yet delivered
    /// at the last page read (0 when caught up).
    behind: AtomicU64,
}

impl<S: Store + Clone + 'static> Forwarder<S> {
    /// A forwarder delivering `store`'s feed per `settings`.
    pub fn new(store: S, settings: ForwardSettings) -> Self {
        let instance = std::env::var("FC_INSTANCE_ID")
            .or_else(|_| std::env::var("HOSTNAME"))
            .unwrap_or_else(|_| "local".into());
        Forwarder {
            store,
            settings,
            client: HttpClient::new(),
            process: format!(
                "{instance}/{}/{:08x}",
                std::process::id(),
                fastrand::u32(..)
            ),
            sessions: AtomicU64::new(0),
            behind: AtomicU64::new(0),
        }
    }

    /// The settings.
    pub fn settings(&self) -> &ForwardSettings {
        &self.settings
    }

    /// Changes read but not yet delivered, as of the last page.
    pub fn behind(&self) -> u64 {
        self.behind.load(Ordering::Relaxed)
    }

    fn session(&self) -> Session<'_, S> {
        let n = self.sessions.fetch_add(1, Ordering::Relaxed);
        Session {
            fw: self,
            holder: format!("{}/{n}", self.process),
            held: Mutex::new(BTreeMap::new()),
            taken: Mutex::new(std::collections::BTreeSet::new()),
            summary: Mutex::new(Summary::default()),
        }
    }

    /// Forwards until `stop` completes, then releases its leases. A page
    /// being delivered when `stop` completes is finished first (its
    /// position recorded), so a clean stop redelivers nothing.
    pub async fn run_until(&self, stop: impl Future<Output = ()>) -> Summary {
        let session = self.session();
        let mut stop = std::pin::pin!(stop);
        let mut last_acquire: Option<Instant> = None;
        let quarter = self.settings.lease() / 4;
        loop {
            // Leases and the wait for changes: stopped at any point.
            let read = async {
                if last_acquire.is_none_or(|t| t.elapsed() >= quarter) {
                    session.acquire().await;
                    last_acquire = Some(Instant::now());
                }
                session.renew().await;
                if session.held_count() == 0 {
                    tokio::time::sleep(quarter).await;
                    return Ok(Vec::new());
                }
                session.read_page(quarter).await
            };
            let entries = tokio::select! {
                biased;
                () = &mut stop => break,
                read = read => read,
            };
            let pause = match entries {
                Ok(entries) if entries.is_empty() => continue,
                Ok(entries) => match session.deliver_and_record(&entries).await {
                    round if round.deferred > 0 => self.settings.retry.pause,
                    _ => continue,
                },
                Err(e) => {
                    tracing::warn!(error = %e, "forwarding: store call failed; retrying");
                    Duration::from_secs(1)
                }
            };
            tokio::select! {
                biased;
                () = &mut stop => break,
                () = tokio::time::sleep(pause) => {}
            }
        }
        session.release().await;
        session.summary()
    }

    /// Delivers what is pending in the partitions no other live forwarder
    /// holds, until the log is drained, a change has to wait, or `until`;
    /// then releases the leases. For Function Compute's timer trigger.
    pub async fn drain(&self, until: Instant) -> Summary {
        let session = self.session();
        let work = async {
            session.acquire().await;
            while session.held_count() > 0 {
                let entries = match session.read_page(Duration::ZERO).await {
                    Ok(entries) if entries.is_empty() => break,
                    Ok(entries) => entries,
                    Err(e) => {
                        tracing::warn!(error = %e, "forwarding: store call failed");
                        break;
                    }
                };
                if session.deliver_and_record(&entries).await.deferred > 0 {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout_at(until, work).await;
        session.release().await;
        session.summary()
    }
}

/// One page's outcome.
struct Round {
    deferred: u64,
}

/// One lease holder: the partitions it holds and what it did.
struct Session<'a, S> {
    fw: &'a Forwarder<S>,
    holder: String,
    held: Mutex<BTreeMap<u16, Held>>,
    taken: Mutex<std::collections::BTreeSet<u16>>,
    summary: Mutex<Summary>,
}

fn record_key(partition: u16) -> String {
    format!("{RECORD_PREFIX}{partition}")
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn unix_seconds() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Nothing panics while holding these locks; a poisoned one is still
    // consistent.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl<S: Store + Clone + 'static> Session<'_, S> {
    fn held_count(&self) -> usize {
        lock(&self.held).len()
    }

    fn summary(&self) -> Summary {
        let mut summary = lock(&self.summary).clone();
        summary.partitions = lock(&self.taken).len();
        summary
    }

    /// Takes every partition whose lease is free: absent, expired,
    /// released, or this session's own.
    async fn acquire(&self) {
        let partitions = self.fw.store.log_partitions();
        let free: Vec<u16> = {
            let held = lock(&self.held);
            (0..partitions)
                .filter_map(|p| u16::try_from(p).ok())
                .filter(|p| !held.contains_key(p))
                .collect()
        };
        let tries = free.into_iter().map(|p| async move {
            match self.try_take(p).await {
                Ok(Some(held)) => {
                    tracing::debug!(partition = p, holder = %self.holder, "forwarding lease taken");
                    lock(&self.held).insert(p, held);
                    lock(&self.taken).insert(p);
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(partition = p, error = %e, "forwarding lease not taken"),
            }
        });
        futures_util::future::join_all(tries).await;
    }

    async fn try_take(&self, partition: u16) -> Result<Option<Held>, StoreError> {
        let key = record_key(partition);
        let now = now_ms();
        let found = self.fw.store.get(&key).await?;
        let (expected, delivered) = match &found {
            None => (None, 0),
            Some(found) => {
                let record: Record = serde_json::from_slice(&found.value).map_err(|e| {
                    StoreError::Backend(format!("delivery record {key} is unreadable: {e}"))
                })?;
                if record.holder != self.holder && record.expires_ms > now {
                    return Ok(None);
                }
                (Some(found.version), record.delivered)
            }
        };
        let expires_ms = now + lease_ms(self.fw.settings.lease());
        let record = Record {
            delivered,
            holder: self.holder.clone(),
            expires_ms,
        };
        let bytes = serde_json::to_vec(&record).expect("a record serialises");
        Ok(
            match self
                .fw
                .store
                .compare_and_set(&key, expected, &bytes)
                .await?
            {
                CasOutcome::Written(version) => Some(Held {
                    version,
                    delivered,
                    expires_ms,
                }),
                CasOutcome::Conflict { .. } => None,
            },
        )
    }

    /// Writes a held partition's record (delivered position and expiry);
    /// drops the partition if another holder has written it since.
    async fn write(&self, partition: u16, delivered: u64, expires_ms: u64) {
        let Some(version) = lock(&self.held).get(&partition).map(|h| h.version) else {
            return;
        };
        let record = Record {
            delivered,
            holder: self.holder.clone(),
            expires_ms,
        };
        let bytes = serde_json::to_vec(&record).expect("a record serialises");
        let outcome = self
            .fw
            .store
            .compare_and_set(&record_key(partition), Some(version), &bytes)
            .await;
        let mut held = lock(&self.held);
        match outcome {
            Ok(CasOutcome::Written(version)) => {
                if let Some(h) = held.get_mut(&partition) {
                    *h = Held {
                        version,
                        delivered,
                        expires_ms,
                    };
                }
            }
            Ok(CasOutcome::Conflict { .. }) => {
                tracing::warn!(partition, "forwarding lease lost to another holder");
                held.remove(&partition);
            }
            Err(e) => {
                // Unknown outcome: keep the old version; the next write
                // conflicts if this one landed, and the lease is then
                // taken back from the record that names this holder.
                tracing::warn!(partition, error = %e, "forwarding record not written");
                if held
                    .get(&partition)
                    .is_some_and(|h| h.expires_ms <= now_ms())
                {
                    held.remove(&partition);
                }
            }
        }
    }

    /// Renews the leases past a quarter of their life.
    async fn renew(&self) {
        let lease = lease_ms(self.fw.settings.lease());
        let now = now_ms();
        let due: Vec<(u16, u64)> = lock(&self.held)
            .iter()
            .filter(|(_, h)| h.expires_ms.saturating_sub(now) < lease * 3 / 4)
            .map(|(p, h)| (*p, h.delivered))
            .collect();
        for (partition, delivered) in due {
            self.write(partition, delivered, now + lease).await;
        }
    }

    /// Gives the leases back, so that another forwarder takes over at once.
    async fn release(&self) {
        let held: Vec<(u16, u64)> = lock(&self.held)
            .iter()
            .map(|(p, h)| (*p, h.delivered))
            .collect();
        for (partition, delivered) in held {
            self.write(partition, delivered, 0).await;
        }
        lock(&self.held).clear();
    }

    /// Whether an attempt on `partition` may start now: the lease is held
    /// and outlives a whole attempt.
    fn may_deliver(&self, partition: u16) -> bool {
        let timeout = lease_ms(self.fw.settings.timeout);
        lock(&self.held)
            .get(&partition)
            .is_some_and(|h| h.expires_ms > now_ms() + timeout)
    }

    /// Reads one page of the held partitions, waiting up to `wait` for
    /// a change.
    async fn read_page(&self, wait: Duration) -> Result<Vec<LogEntry>, StoreError> {
        let partitions = self.fw.store.log_partitions();
        // Partitions not held are read from beyond their end: nothing.
        let mut cursor = Cursor::start(partitions);
        let held: Vec<(u16, u64)> = lock(&self.held)
            .iter()
            .map(|(p, h)| (*p, h.delivered))
            .collect();
        let held_set: std::collections::HashSet<u16> = held.iter().map(|(p, _)| *p).collect();
        for p in 0..partitions {
            let partition = u16::try_from(p).unwrap_or(u16::MAX);
            let position = held
                .iter()
                .find(|(h, _)| *h == partition)
                .map_or(u64::MAX, |(_, d)| *d);
            cursor.advance(crate::store::ChangeId {
                partition,
                seq: position,
            });
        }
        let settings = &self.fw.settings;
        let page = read_log_waiting(
            &self.fw.store,
            Some(&cursor),
            settings.batch,
            wait,
            settings.poll,
        )
        .await?;
        let entries: Vec<LogEntry> = page
            .entries
            .into_iter()
            .filter(|e| held_set.contains(&e.id.partition))
            .collect();
        self.fw
            .behind
            .store(entries.len() as u64, Ordering::Relaxed);
        Ok(entries)
    }

    /// Delivers a page and records how far each partition got.
    async fn deliver_and_record(&self, entries: &[LogEntry]) -> Round {
        let settings = &self.fw.settings;
        let delivered = self.deliver_page(entries).await;
        // Per partition, the longest delivered prefix of its entries.
        let mut advanced: BTreeMap<u16, u64> = BTreeMap::new();
        let mut blocked: std::collections::HashSet<u16> = std::collections::HashSet::new();
        let mut deferred = 0;
        for (entry, ok) in entries.iter().zip(&delivered) {
            let p = entry.id.partition;
            if !ok {
                deferred += 1;
                blocked.insert(p);
            } else if !blocked.contains(&p) {
                advanced.insert(p, entry.id.seq);
            }
        }
        let expires_ms = now_ms() + lease_ms(settings.lease());
        for (partition, seq) in advanced {
            self.write(partition, seq, expires_ms).await;
        }
        lock(&self.summary).deferred += deferred;
        let left = delivered.iter().filter(|ok| !**ok).count();
        self.fw.behind.store(left as u64, Ordering::Relaxed);
        Round { deferred }
    }

    /// Delivers a page: one chain per resource, in log order, chains at
    /// once up to the concurrency; the leases are renewed meanwhile.
    /// Returns, per entry, whether it was acknowledged.
    async fn deliver_page(&self, entries: &[LogEntry]) -> Vec<bool> {
        let mut chains: Vec<Vec<usize>> = Vec::new();
        let mut chain_of: HashMap<&str, usize> = HashMap::new();
        for (i, entry) in entries.iter().enumerate() {
            let chain = *chain_of.entry(entry.key.as_str()).or_insert_with(|| {
                chains.push(Vec::new());
                chains.len() - 1
            });
            chains[chain].push(i);
        }
        let outcome: Vec<std::sync::atomic::AtomicBool> = (0..entries.len())
            .map(|_| std::sync::atomic::AtomicBool::new(false))
            .collect();
        let permits = Semaphore::new(self.fw.settings.concurrency.max(1));
        let done = Notify::new();
        let deliver = async {
            let (permits, outcome) = (&permits, &outcome);
            let chains: Vec<_> = chains
                .iter()
                .map(|chain| async move {
                    for &i in chain {
                        let _permit = permits.acquire().await;
                        if !self.deliver_one(&entries[i]).await {
                            // Later changes of this resource wait for it.
                            return;
                        }
                        outcome[i].store(true, Ordering::Relaxed);
                    }
                })
                .collect();
            futures_util::future::join_all(chains).await;
            done.notify_one();
        };
        let renew = async {
            loop {
                tokio::select! {
                    () = done.notified() => return,
                    () = tokio::time::sleep(self.fw.settings.lease() / 4) => self.renew().await,
                }
            }
        };
        tokio::join!(deliver, renew);
        outcome.iter().map(|o| o.load(Ordering::Relaxed)).collect()
    }

    /// Delivers one change, retrying per [`Retry`]; `false` when it has to
    /// wait in the log.
    async fn deliver_one(&self, entry: &LogEntry) -> bool {
        let settings = &self.fw.settings;
        let id = entry.id.to_string();
        let body = match payload(entry) {
            Ok(body) => body,
            Err(e) => {
                // Never skipped: the partition waits until it is repaired.
                tracing::error!(change = %id, error = %e, "change is unreadable; not forwarded");
                return false;
            }
        };
        for attempt in 0..settings.retry.attempts.max(1) {
            if attempt > 0 {
                tokio::time::sleep(settings.retry.backoff(attempt - 1)).await;
            }
            if !self.may_deliver(entry.id.partition) {
                return false;
            }
            let timestamp = unix_seconds();
            let signature = settings.secret.sign(&id, timestamp, &body);
            let headers = [
                (CONTENT_TYPE, HeaderValue::from_static("application/json")),
                (
                    USER_AGENT,
                    HeaderValue::from_static(concat!("ims-callback/", env!("CARGO_PKG_VERSION"))),
                ),
                (
                    HeaderName::from_static(ID_HEADER),
                    HeaderValue::from_str(&id).expect("a change id is a header value"),
                ),
                (
                    HeaderName::from_static(TIMESTAMP_HEADER),
                    HeaderValue::from(timestamp),
                ),
                (
                    HeaderName::from_static(SIGNATURE_HEADER),
                    HeaderValue::from_str(&signature).expect("base64 is a header value"),
                ),
            ];
            let answer = self
                .fw
                .client
                .post(&settings.url, headers, body.clone(), settings.timeout)
                .await;
            match answer {
                Ok(response) if response.status.is_success() => {
                    lock(&self.summary).delivered += 1;
                    return true;
                }
                Ok(response) => {
                    tracing::debug!(change = %id, status = response.status.as_u16(), attempt, "forward refused");
                }
                Err(e) => tracing::debug!(change = %id, error = %e, attempt, "forward failed"),
            }
            lock(&self.summary).failed_attempts += 1;
        }
        tracing::warn!(change = %id, attempts = settings.retry.attempts, "change not delivered; it waits in the log");
        false
    }
}

fn lease_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The payload of one change: `{"type", "timestamp", "data"}`.
fn payload(entry: &LogEntry) -> Result<Bytes, String> {
    let change = Change::from_entry(entry.clone()).map_err(|e| e.to_string())?;
    #[derive(Serialize)]
    struct Payload<'a> {
        r#type: &'static str,
        timestamp: &'a str,
        data: &'a Change,
    }
    let body = serde_json::to_vec(&Payload {
        r#type: EVENT_TYPE,
        timestamp: &change.record.at,
        data: &change,
    })
    .map_err(|e| e.to_string())?;
    Ok(Bytes::from(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_checked() {
        let good = format!(
            "whsec_{}",
            base64::engine::general_purpose::STANDARD.encode([7u8; 32])
        );
        assert!(WebhookSecret::parse(&good).is_ok());
        assert!(!format!("{:?}", WebhookSecret::parse(&good).unwrap()).contains(&good[6..]));
        for (bad, says) in [
            ("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "must be `whsec_`"),
            ("whsec_not base64!", "not standard base64"),
            ("whsec_c2hvcnQ=", "is 5 bytes"),
        ] {
            let err = WebhookSecret::parse(bad).unwrap_err();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }

    /// The example of the Standard Webhooks reference libraries
    /// (libraries/javascript/src/index.test.ts and the Python tests): this
    /// secret, id, timestamp and payload sign to this value.
    #[test]
    fn signs_like_the_reference_libraries() {
        let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let signature = secret.sign(
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let retry = Retry {
            first: Duration::from_millis(100),
            max: Duration::from_millis(1000),
            attempts: 5,
            pause: Duration::ZERO,
        };
        for n in 0..8 {
            let full = Duration::from_millis(100 << n).min(Duration::from_millis(1000));
            let wait = retry.backoff(n);
            assert!(wait >= full / 2 && wait <= full, "{n}: {wait:?}");
        }
    }
}

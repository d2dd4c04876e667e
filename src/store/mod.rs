//! The storage layer: a small async key-value store with compare-and-set.
//!
//! Everything above this module (the event pipeline, the query API) sees only
//! the [`Store`] trait: bytes in, bytes out, keyed by strings. Nothing here
//! knows about events.
//!
//! Operations:
//! - [`Store::get`] — the value and its [`Version`], or `None`;
//! - [`Store::compare_and_set`] — write only if the current version is the
//!   expected one (`None` = create only if absent); versions start at 1 and
//!   grow by one on every successful write, so a read–modify–CAS loop is the
//!   whole concurrency story;
//! - [`Store::compare_and_set_logged`] — the same, appending an entry to the
//!   change log in the same atomic write (the transactional outbox: no change
//!   without its entry, no entry without its change);
//! - [`Store::read_log`] — a page of the change log after a [`Cursor`];
//! - [`Store::compare_and_set_listed`] — a logged compare-and-set that also
//!   sets the key's place in the listing index ([`index`]), in the same
//!   atomic write; [`Store::relist`] sets that place alone, for a key at a
//!   known version (to index a store written before the index existed);
//! - [`Store::list_index`] — a page of the listing index, newest first;
//! - [`Store::list_prefix`] — a bounded, sorted page of keys with a prefix,
//!   for the query API;
//! - [`Store::health`] — can the backend serve requests right now.
//!
//! There is no delete: resources are never removed, only moved to a terminal
//! state by the layer above.
//!
//! # The change log
//!
//! The log is split into [`Store::log_partitions`] partitions, each with
//! its own sequence numbers (1, 2, …, never reused). Memory and redb have one
//! partition, so their log is totally ordered. Redis has one partition per
//! key bucket (see [`redis`]): a Redis Cluster script may touch one hash
//! slot only, so a resource and the log that records it must share a slot;
//! one global log would make every write cross-slot. Order is then kept per
//! partition, so per key, as in Kafka or Kinesis, and a [`Cursor`] holds one
//! position per partition. Entries are opaque bytes next to the key they
//! record; the layer above decides what they say.
//!
//! Backends (see [`AnyStore::open`] for the setting that picks one):
//! - [`memory::MemoryStore`] — in-process, for tests and throwaway runs;
//! - [`redb::RedbStore`] — an embedded file, durable on every commit;
//! - [`redis::RedisStore`] — a Redis node or a Redis Cluster (ApsaraDB for
//!   Redis / Tair), CAS as a server-side script.
//!
//! Every backend that does I/O bounds every call by [`StoreOptions::timeout`]
//! (the memory backend never waits); a call that takes longer fails with
//! [`StoreError::Timeout`]. A timed-out write has an
//! *unknown* outcome (it may still be applied), which is safe for a
//! read–modify–CAS caller: it re-reads and retries.

use std::fmt;
use std::future::Future;
use std::str::FromStr;
use std::time::Duration;

use tokio::sync::Notify;

pub mod index;
pub mod memory;
pub mod redb;
pub mod redis;

pub use self::index::{IndexQuery, Listed, Listing, MAX_INDEX_LIMIT, Position};
pub use self::memory::MemoryStore;
pub use self::redb::RedbStore;
pub use self::redis::RedisStore;

/// Largest value accepted, in bytes (32 MiB: the Function Compute HTTP body limit,
/// so a raw event always fits).
pub const MAX_VALUE_LEN: usize = 32 * 1024 * 1024;

/// Largest key accepted, in bytes of UTF-8.
pub const MAX_KEY_LEN: usize = 1024;

/// Most entries one [`Store::list_prefix`] call returns; larger limits are capped.
pub const MAX_LIST_LIMIT: usize = 1000;

/// Most entries one [`Store::read_log`] call returns; larger limits are capped.
pub const MAX_LOG_LIMIT: usize = 1000;

/// Default for [`StoreOptions::timeout`].
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);

/// The version of a stored value: 1 when the key is created, +1 on every
/// successful [`Store::compare_and_set`]. Strictly monotonic per key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version(u64);

impl Version {
    /// The version of a freshly created key.
    pub const FIRST: Version = Version(1);

    /// A version from its number, e.g. one a client sent back as an ETag.
    pub const fn new(n: u64) -> Self {
        Version(n)
    }

    /// The version number.
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A stored value together with its version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned {
    /// The version of `value`; pass it to [`Store::compare_and_set`] to update it.
    pub version: Version,
    /// The stored bytes.
    pub value: Vec<u8>,
}

/// The result of a [`Store::compare_and_set`] that reached the backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CasOutcome {
    /// The value was written; this is its new version.
    Written(Version),
    /// The current version was not the expected one; nothing was written.
    /// `current` is what the store holds (`None` = absent), for diagnostics:
    /// callers should re-read rather than retry blindly with it.
    Conflict {
        /// The version found, or `None` if the key is absent.
        current: Option<Version>,
    },
}

/// The id of one change-log entry: its partition and its sequence number
/// there. Shown as `PARTITION:SEQ` (e.g. `0:17`); unique, never reused, and
/// increasing along its partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ChangeId {
    /// The partition, `0..log_partitions()`.
    pub partition: u16,
    /// The sequence number within the partition, from 1.
    pub seq: u64,
}

impl fmt::Display for ChangeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.partition, self.seq)
    }
}

/// One change-log entry as stored: which key it records and its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// Where it stands in the log.
    pub id: ChangeId,
    /// The store key whose write appended it.
    pub key: String,
    /// The bytes given to [`Store::compare_and_set_logged`].
    pub value: Vec<u8>,
}

/// A position in the change log: per partition, the sequence number of the
/// last entry already read (0 = none). Shown as the numbers joined by `.`
/// (`17` for one partition, `0.3.0.12…` for sixteen).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Cursor(Vec<u64>);

impl Cursor {
    /// The position before the oldest entry of a log of `partitions` partitions.
    pub fn start(partitions: usize) -> Self {
        Cursor(vec![0; partitions])
    }

    /// The last sequence number read, per partition.
    pub fn positions(&self) -> &[u64] {
        &self.0
    }

    /// This cursor after reading `entry` (entries of a partition must be
    /// passed in their log order).
    pub fn advance(&mut self, entry: ChangeId) {
        if let Some(position) = self.0.get_mut(usize::from(entry.partition)) {
            *position = (*position).max(entry.seq);
        }
    }

    /// This cursor checked against a log of `partitions` partitions.
    pub(crate) fn check(&self, partitions: usize) -> Result<(), StoreError> {
        if self.0.len() == partitions {
            return Ok(());
        }
        Err(StoreError::InvalidCursor(format!(
            "cursor `{self}` has {} position(s), this store's log has {partitions} partition(s)",
            self.0.len()
        )))
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, position) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            position.fmt(f)?;
        }
        Ok(())
    }
}

/// Most partitions a cursor may name: far more than any backend has, few
/// enough that parsing a hostile cursor stays cheap.
const MAX_CURSOR_PARTS: usize = 256;

impl FromStr for Cursor {
    type Err = StoreError;

    /// Parses `N[.N…]`, each `N` a decimal sequence number.
    fn from_str(s: &str) -> Result<Self, StoreError> {
        let invalid = |why: &str| {
            let shown: String = s.chars().take(64).collect();
            StoreError::InvalidCursor(format!("cursor `{shown}` {why}"))
        };
        if s.split('.').nth(MAX_CURSOR_PARTS).is_some() {
            return Err(invalid("has too many positions"));
        }
        s.split('.')
            .map(|part| {
                if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(invalid("must be decimal numbers joined by `.`"));
                }
                part.parse::<u64>()
                    .map_err(|_| invalid("has a position beyond 2^64"))
            })
            .collect::<Result<_, _>>()
            .map(Cursor)
    }
}

/// A page of the change log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogPage {
    /// The entries after the cursor asked for: each partition's in its log
    /// order (on a one-partition log, the log order).
    pub entries: Vec<LogEntry>,
    /// Where the next page starts: the cursor asked for, advanced past
    /// `entries`.
    pub next: Cursor,
}

/// Why a store call failed.
///
/// Display texts never contain a Redis password: URLs are shown redacted
/// (see [`redact_url`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The call did not finish within [`StoreOptions::timeout`]. A write may or
    /// may not have been applied. Retryable.
    #[error("store call timed out")]
    Timeout,
    /// The backend cannot be reached or is not serving (connection refused or
    /// dropped, cluster down, loading, I/O error). Retryable.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The backend answered with an error that retrying will not fix (wrong
    /// data type at a key, corrupt record, script error).
    #[error("store backend error: {0}")]
    Backend(String),
    /// The store setting is malformed or names something unsupported.
    #[error("invalid store configuration: {0}")]
    InvalidConfig(String),
    /// The key is empty or longer than [`MAX_KEY_LEN`] bytes.
    #[error("invalid store key: {0}")]
    InvalidKey(String),
    /// A change-log cursor is malformed or does not fit this store's log.
    #[error("invalid change-log cursor: {0}")]
    InvalidCursor(String),
    /// The value is larger than [`MAX_VALUE_LEN`].
    #[error("value of {len} bytes exceeds the store limit of {max} bytes")]
    ValueTooLarge {
        /// Size of the rejected value.
        len: usize,
        /// The limit.
        max: usize,
    },
}

impl StoreError {
    /// Whether the same call may succeed if tried again later (the caller should
    /// answer "retry later", e.g. HTTP 503, rather than "bad request").
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Timeout | StoreError::Unavailable(_))
    }
}

/// Settings shared by all backends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOptions {
    /// Upper bound on every store call, including connecting (unused by the
    /// memory backend, which never waits).
    pub timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

/// An async key-value store with per-key versions and compare-and-set.
///
/// Keys are non-empty UTF-8 strings of at most [`MAX_KEY_LEN`] bytes, ordered
/// by their bytes (the order of `str`). Values are opaque bytes of at most
/// [`MAX_VALUE_LEN`]. Implementations are cheap-to-clone handles; clones share
/// the same data and connections.
///
/// The methods return `Send` futures so that callers can hold a store in an
/// axum state or spawn tasks around it.
pub trait Store: Send + Sync {
    /// The current value of `key` and its version, or `None` if absent.
    fn get(&self, key: &str) -> impl Future<Output = Result<Option<Versioned>, StoreError>> + Send;

    /// Write `value` at `key` if the current version is `expected`.
    ///
    /// `expected = None` creates the key only if it is absent (the new
    /// version is then [`Version::FIRST`]). On a mismatch nothing is written
    /// and [`CasOutcome::Conflict`] is returned (not an error).
    fn compare_and_set(
        &self,
        key: &str,
        expected: Option<Version>,
        value: &[u8],
    ) -> impl Future<Output = Result<CasOutcome, StoreError>> + Send;

    /// [`Store::compare_and_set`] that, when it writes, also appends `change`
    /// to the change log, atomically: the write and its entry are stored
    /// together or not at all. On a conflict nothing is appended.
    fn compare_and_set_logged(
        &self,
        key: &str,
        expected: Option<Version>,
        value: &[u8],
        change: &[u8],
    ) -> impl Future<Output = Result<CasOutcome, StoreError>> + Send;

    /// [`Store::compare_and_set_logged`] (with `change`; without, a plain
    /// [`Store::compare_and_set`]) that, when it writes, also replaces the
    /// key's listing with `listing`, in the same atomic write: the state,
    /// its log entry and its place in the index change together.
    /// A listing that cannot be stored (see [`index`]) is
    /// [`StoreError::InvalidKey`], and so is one that moves the key to
    /// another set.
    fn compare_and_set_listed(
        &self,
        key: &str,
        expected: Option<Version>,
        value: &[u8],
        change: Option<&[u8]>,
        listing: &Listing,
    ) -> impl Future<Output = Result<CasOutcome, StoreError>> + Send;

    /// Replaces the listing of `key` if it is at `version`, changing nothing
    /// else (no new version, no log entry); `false` when the key is at
    /// another version or absent.
    fn relist(
        &self,
        key: &str,
        version: Version,
        listing: &Listing,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// A page of the listing index in position order (see [`index`]).
    /// Each row is one that was stored at that key; the page is not a
    /// snapshot of several sets or buckets, but each key appears at most once.
    fn list_index(
        &self,
        query: &IndexQuery<'_>,
    ) -> impl Future<Output = Result<Vec<Listed>, StoreError>> + Send;

    /// How many partitions the change log has (fixed for a backend).
    fn log_partitions(&self) -> usize;

    /// At most `min(limit, MAX_LOG_LIMIT)` entries after `after` (`None` =
    /// from the oldest), and the cursor to continue from. Reading is
    /// repeatable: the same cursor gives the same entries, plus any appended
    /// since. A cursor with the wrong number of positions is
    /// [`StoreError::InvalidCursor`].
    fn read_log(
        &self,
        after: Option<&Cursor>,
        limit: usize,
    ) -> impl Future<Output = Result<LogPage, StoreError>> + Send;

    /// Notified after every log append made through this handle or its
    /// clones (writes by other processes are not seen here: poll for them).
    fn log_appended(&self) -> &Notify;

    /// Keys starting with `prefix` and their values, sorted by key, strictly
    /// after `start_after` if given, at most `min(limit, MAX_LIST_LIMIT)`.
    ///
    /// To page: pass the last key of a page as the next `start_after`. The
    /// listing is not a snapshot: entries written meanwhile may or may not
    /// appear, but each returned value is one that was stored at that key.
    fn list_prefix(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<(String, Versioned)>, StoreError>> + Send;

    /// `Ok(())` if the backend can serve requests now.
    fn health(&self) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// A store chosen at run time from one setting, without `Box<dyn>`.
///
/// All methods delegate to the backend. Clones share the same backend.
#[derive(Debug, Clone)]
pub enum AnyStore {
    /// In-process map.
    Memory(MemoryStore),
    /// Embedded redb file.
    Redb(RedbStore),
    /// A single Redis node (or a Redis-compatible proxy).
    Redis(RedisStore),
    /// A Redis Cluster.
    RedisCluster(RedisStore),
}

impl AnyStore {
    /// Open the store named by `spec` with default [`StoreOptions`].
    ///
    /// Forms of `spec` (the `IMS_STORE` setting):
    /// - `memory` — in-process, lost on exit;
    /// - `redb:PATH` — a redb file at `PATH`, created if absent
    ///   (e.g. `redb:./ims-state.redb`);
    /// - `redis://[[USER]:PASSWORD@]HOST[:PORT][/DB][?OPTIONS]` — one Redis node;
    ///   `rediss://…` for TLS;
    /// - `redis+cluster://[[USER]:PASSWORD@]HOST:PORT[,HOST:PORT…][/][?OPTIONS]` —
    ///   a Redis Cluster, given one or more seed nodes (the rest are discovered);
    ///   `rediss+cluster://…` for TLS.
    ///
    /// Redis `OPTIONS` (URL query, values percent-encoded):
    /// - `prefix=P` — prepended to every Redis key (default `ims:`, may be empty;
    ///   must not contain `{` or `}`, which would break the hash tags);
    /// - `tls_ca=PATH` — a PEM file of CA certificates to trust instead of the
    ///   built-in public roots (ApsaraDB for Redis TLS uses its own CA).
    ///
    /// Unknown options are rejected, so a typo cannot silently change the key
    /// space. Redis connections are made lazily: `open` does not fail when the
    /// server is down (call [`Store::health`] for that), only when the spec is
    /// invalid or a file cannot be opened.
    pub async fn open(spec: &str) -> Result<AnyStore, StoreError> {
        Self::open_with(spec, &StoreOptions::default()).await
    }

    /// [`AnyStore::open`] with explicit options.
    pub async fn open_with(spec: &str, options: &StoreOptions) -> Result<AnyStore, StoreError> {
        let spec = spec.trim();
        if spec == "memory" {
            return Ok(AnyStore::Memory(MemoryStore::new()));
        }
        if let Some(path) = spec.strip_prefix("redb:") {
            return Ok(AnyStore::Redb(RedbStore::open(path, options).await?));
        }
        let scheme = spec.split_once("://").map(|(s, _)| s);
        match scheme {
            Some("redis" | "rediss") => Ok(AnyStore::Redis(RedisStore::open(spec, options)?)),
            Some("redis+cluster" | "rediss+cluster") => Ok(AnyStore::RedisCluster(
                RedisStore::open_cluster(spec, options)?,
            )),
            _ => Err(StoreError::InvalidConfig(format!(
                "unknown store `{}`: expected `memory`, `redb:PATH`, `redis://…`, \
                 `rediss://…`, `redis+cluster://…` or `rediss+cluster://…`",
                redact_url(spec)
            ))),
        }
    }

    /// The backend's short name: `memory`, `redb`, `redis` or `redis-cluster`.
    pub fn kind(&self) -> &'static str {
        match self {
            AnyStore::Memory(_) => "memory",
            AnyStore::Redb(_) => "redb",
            AnyStore::Redis(_) => "redis",
            AnyStore::RedisCluster(_) => "redis-cluster",
        }
    }
}

/// Delegate one trait method to whichever backend `self` holds. A Redis
/// call's future is large (the client's own futures live in it); inline,
/// it would make every caller's future that large, and the request future
/// is moved into a box more than once per request. Boxed, it costs one
/// allocation next to a network round trip; the in-process backends stay
/// inline.
macro_rules! delegate {
    ($self:ident, $s:ident => $call:expr) => {
        match $self {
            AnyStore::Memory($s) => $call.await,
            AnyStore::Redb($s) => $call.await,
            AnyStore::Redis($s) | AnyStore::RedisCluster($s) => Box::pin($call).await,
        }
    };
}

impl Store for AnyStore {
    async fn get(&self, key: &str) -> Result<Option<Versioned>, StoreError> {
        delegate!(self, s => s.get(key))
    }

    async fn compare_and_set(
        &self,
        key: &str,
        expected: Option<Version>,
        value: &[u8],
    ) -> Result<CasOutcome, StoreError> {
        delegate!(self, s => s.compare_and_set(key, expected, value))
    }

    async fn compare_and_set_logged(
        &self,
        key: &str,
        expected: Option<Version>,
        value: &[u8],
        change: &[u8],
    ) -> Result<CasOutcome, StoreError> {
        delegate!(self, s => s.compare_and_set_logged(key, expected, value, change))
    }

    async fn compare_and_set_listed(
        &self,
        key: &str,
        expected: Option<Version>,
        value: &[u8],
        change: Option<&[u8]>,
        listing: &Listing,
    ) -> Result<CasOutcome, StoreError> {
        delegate!(self, s => s.compare_and_set_listed(key, expected, value, change, listing))
    }

    async fn relist(
        &self,
        key: &str,
        version: Version,
        listing: &Listing,
    ) -> Result<bool, StoreError> {
        delegate!(self, s => s.relist(key, version, listing))
    }

    async fn list_index(&self, query: &IndexQuery<'_>) -> Result<Vec<Listed>, StoreError> {
        delegate!(self, s => s.list_index(query))
    }

    fn log_partitions(&self) -> usize {
        match self {
            AnyStore::Memory(s) => s.log_partitions(),
            AnyStore::Redb(s) => s.log_partitions(),
            AnyStore::Redis(s) | AnyStore::RedisCluster(s) => s.log_partitions(),
        }
    }

    async fn read_log(&self, after: Option<&Cursor>, limit: usize) -> Result<LogPage, StoreError> {
        delegate!(self, s => s.read_log(after, limit))
    }

    fn log_appended(&self) -> &Notify {
        match self {
            AnyStore::Memory(s) => s.log_appended(),
            AnyStore::Redb(s) => s.log_appended(),
            AnyStore::Redis(s) | AnyStore::RedisCluster(s) => s.log_appended(),
        }
    }

    async fn list_prefix(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Versioned)>, StoreError> {
        delegate!(self, s => s.list_prefix(prefix, start_after, limit))
    }

    async fn health(&self) -> Result<(), StoreError> {
        delegate!(self, s => s.health())
    }
}

/// `url` with any password (the userinfo after `user:`) replaced by `***`.
///
/// Works on malformed input too, since it is used to report malformed
/// settings. The userinfo is taken to end at the *last* `@`, so a password
/// with an unencoded `/`, `?` or `#` is still hidden; when in doubt this hides
/// more than the password (e.g. a query holding `@`), never less. A userinfo
/// without `:` is hidden whole, since some people write `redis://PASSWORD@host`,
/// and so is everything before an `@` in a setting without `://`.
pub fn redact_url(url: &str) -> String {
    let Some(at) = url.rfind('@') else {
        return url.to_owned();
    };
    let after_scheme = url.find("://").map(|i| i + 3).filter(|&i| i <= at);
    let Some(start) = after_scheme else {
        return format!("***{}", &url[at..]);
    };
    let shown = match url[start..at].split_once(':') {
        Some((user, _)) => format!("{user}:***"),
        None => "***".to_owned(),
    };
    format!("{}{shown}{}", &url[..start], &url[at..])
}

/// Reject keys the backends cannot all store the same way.
pub(crate) fn check_key(key: &str) -> Result<(), StoreError> {
    if key.is_empty() {
        return Err(StoreError::InvalidKey("empty key".to_owned()));
    }
    if key.len() > MAX_KEY_LEN {
        return Err(StoreError::InvalidKey(format!(
            "key of {} bytes exceeds {MAX_KEY_LEN}",
            key.len()
        )));
    }
    Ok(())
}

/// Reject values over [`MAX_VALUE_LEN`] before they reach a backend.
pub(crate) fn check_value(value: &[u8]) -> Result<(), StoreError> {
    if value.len() > MAX_VALUE_LEN {
        return Err(StoreError::ValueTooLarge {
            len: value.len(),
            max: MAX_VALUE_LEN,
        });
    }
    Ok(())
}

/// [`Store::read_log`], waiting up to `wait` for an entry when there is none
/// yet: woken at once by this process's appends ([`Store::log_appended`]),
/// and re-reading every `poll` for other processes' appends.
pub async fn read_log_waiting<S: Store>(
    store: &S,
    after: Option<&Cursor>,
    limit: usize,
    wait: Duration,
    poll: Duration,
) -> Result<LogPage, StoreError> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        // Registered before reading, so an append between the read and
        // the wait still wakes it.
        let appended = store.log_appended().notified();
        tokio::pin!(appended);
        appended.as_mut().enable();
        let page = store.read_log(after, limit).await?;
        let now = tokio::time::Instant::now();
        if !page.entries.is_empty() || now >= deadline {
            return Ok(page);
        }
        let _ = tokio::time::timeout_at(deadline.min(now + poll), appended).await;
    }
}

/// Run `fut`, failing with [`StoreError::Timeout`] after `limit`.
pub(crate) async fn bounded<T>(
    limit: Duration,
    fut: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    tokio::time::timeout(limit, fut)
        .await
        .unwrap_or(Err(StoreError::Timeout))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact_url("redis://:hunter2@h:6379/0"),
            "redis://:***@h:6379/0"
        );
        assert_eq!(
            redact_url("rediss://u:p@ss@h:1?x=1"),
            "rediss://u:***@h:1?x=1"
        );
        // Unencoded `#`, `?` or `/` in a password: still hidden.
        assert_eq!(redact_url("redis://:a#b?c/d@h:1/0"), "redis://:***@h:1/0");
        // `@` in the query: more is hidden, never the password shown.
        assert_eq!(redact_url("redis://:pw@h:1?prefix=a@b"), "redis://:***@b");
        assert_eq!(redact_url("redis:/:pw@h"), "***@h");
        assert_eq!(redact_url("redis://secret@h"), "redis://***@h");
        assert_eq!(redact_url("redis://h:1/?prefix=x"), "redis://h:1/?prefix=x");
        assert_eq!(redact_url("memory"), "memory");
    }

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        for text in ["0", "17", "0.3.0.12", "18446744073709551615"] {
            assert_eq!(text.parse::<Cursor>().unwrap().to_string(), text);
        }
        for bad in [
            "",
            "a",
            "1.",
            ".1",
            "1..2",
            "-1",
            "+1",
            "1 ",
            "18446744073709551616",
        ] {
            let err = bad.parse::<Cursor>().unwrap_err();
            assert!(
                matches!(err, StoreError::InvalidCursor(_)),
                "{bad:?}: {err}"
            );
        }
        assert!(
            "0.".repeat(300)
                .trim_end_matches('.')
                .parse::<Cursor>()
                .is_err()
        );
        let mut cursor = Cursor::start(2);
        cursor.advance(ChangeId {
            partition: 1,
            seq: 4,
        });
        assert_eq!(cursor.to_string(), "0.4");
        assert!(cursor.check(2).is_ok() && cursor.check(1).is_err());
    }

    #[test]
    fn retryable() {
        assert!(StoreError::Timeout.is_retryable());
        assert!(StoreError::Unavailable("x".into()).is_retryable());
        assert!(!StoreError::Backend("x".into()).is_retryable());
        assert!(!StoreError::ValueTooLarge { len: 2, max: 1 }.is_retryable());
    }
}

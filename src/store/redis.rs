//! Redis store: a single node (ApsaraDB for Redis / Tair standard edition, or
//! any Redis-compatible proxy) or a Redis Cluster.
//!
//! # Key layout
//!
//! With key prefix `P` (default `ims:`), a store key `K` lives in one of 16
//! buckets, `B = fnv1a32(K) % 16` written as two hex digits, and uses:
//!
//! - `P{B}:d:K` — a hash with fields `v` (version, an integer) and `d` (the
//!   value bytes);
//! - `P{B}:i` — a sorted set of the bucket's store keys, all with score 0, so
//!   `ZRANGEBYLEX` lists them in byte order.
//!
//! Example: `ims:{0a}:d:media/abc` and `ims:{0a}:i`.
//!
//! Why: compare-and-set runs as one Lua script that checks `v`, writes `v`
//! and `d`, and adds the key to the index on creation, atomically. In a
//! cluster a script may only touch keys of one hash slot, so the data key and
//! its index share the hash tag `{B}`. One global index would put every key
//! in one slot (no scale-out); one index per key cannot be listed. Sixteen
//! buckets spread the data over up to 16 slots (so over the masters) while a
//! listing stays bounded: it asks each bucket's index for at most `limit`
//! keys in the range (16 small `ZRANGEBYLEX … LIMIT 0 limit`), merges them,
//! keeps the first `limit`, then reads those values. The single-node backend
//! uses the very same layout, so data copied key-for-key between a standalone
//! and a cluster instance (e.g. by a migration tool) stays readable.
//!
//! The layout (bucket count, hash, key names) is part of the stored format:
//! changing it needs a migration.
//!
//! # Connections
//!
//! Single node: one `ConnectionManager` (one multiplexed connection that
//! reconnects by itself). Cluster: one `ClusterConnection` (multiplexed
//! connections to every master, following `MOVED`/`ASK`). Both are created
//! lazily on the first call, so a store can be opened while Redis is down;
//! every call, connecting included, is bounded by the timeout.
//!
//! # TLS
//!
//! `rediss://` and `rediss+cluster://` use rustls (ring provider) with the
//! public web PKI roots, or the CAs in the PEM file given by `tls_ca=PATH`.
//! Client certificates and skipping verification are not supported.

use std::fmt;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::cluster::ClusterClient;
use ::redis::cluster_async::ClusterConnection;
use ::redis::{
    Client, Cmd, FromRedisValue, IntoConnectionInfo, RedisError, RetryMethod, Script,
    TlsCertificates,
};
use futures_util::future::try_join_all;
use tokio::sync::OnceCell;

use super::{
    CasOutcome, MAX_LIST_LIMIT, Store, StoreError, StoreOptions, Version, Versioned, bounded,
    check_key, check_value, redact_url,
};

/// Key prefix used when the URL sets none.
pub const DEFAULT_PREFIX: &str = "ims:";

/// Number of buckets the keys are spread over (part of the stored layout).
const BUCKETS: u32 = 16;

/// Compare-and-set. KEYS: data hash, bucket index (same slot).
/// ARGV: expected version (`""` = must be absent), value, store key.
/// Returns `{1, new_version}` or `{0, current_version_or_-1}`.
static CAS: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local cur = redis.call('HGET', KEYS[1], 'v')
if ARGV[1] == '' then
  if cur then return {0, tonumber(cur)} end
elseif cur ~= ARGV[1] then
  if cur then return {0, tonumber(cur)} end
  return {0, -1}
end
local v = redis.call('HINCRBY', KEYS[1], 'v', 1)
redis.call('HSET', KEYS[1], 'd', ARGV[2])
if v == 1 then redis.call('ZADD', KEYS[2], 0, ARGV[3]) end
return {1, v}
",
    )
});

/// The Redis backend (single node or cluster). Clones share connections.
#[derive(Clone)]
pub struct RedisStore {
    conn: Conn,
    prefix: Arc<str>,
    timeout: Duration,
    /// The URL as given, password redacted: for `Debug` and messages.
    shown: Arc<str>,
    /// The password as written and percent-decoded, scrubbed from any error
    /// text that reaches a `StoreError`.
    secrets: Arc<[String]>,
}

#[derive(Clone)]
enum Conn {
    Single(ConnectionManager),
    Cluster(Arc<LazyCluster>),
}

/// A cluster client and the connection it makes on first use.
struct LazyCluster {
    client: ClusterClient,
    conn: OnceCell<ClusterConnection>,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("url", &self.shown)
            .field("cluster", &matches!(self.conn, Conn::Cluster(_)))
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// The parts of a store URL that are ours, not the redis crate's.
struct Parsed {
    /// The URL without our query options.
    base: String,
    prefix: String,
    tls_ca: Option<String>,
    secrets: Vec<String>,
}

impl RedisStore {
    /// Connect (lazily) to one node: `redis://…` or `rediss://…`.
    ///
    /// See [`super::AnyStore::open`] for the URL options. Must be called inside
    /// a tokio runtime.
    pub fn open(url: &str, options: &StoreOptions) -> Result<Self, StoreError> {
        let parsed = parse(url)?;
        let shown = redact_url(url);
        let invalid =
            |what: &str| StoreError::InvalidConfig(format!("{what} in redis URL `{shown}`"));
        let info = parsed
            .base
            .as_str()
            .into_connection_info()
            .map_err(|_| invalid("cannot parse"))?;
        let client = match load_tls(&parsed, url)? {
            Some(certs) => Client::build_with_tls(info, certs),
            None => Client::open(info),
        }
        .map_err(|_| invalid("unusable settings"))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(options.timeout))
            .set_response_timeout(Some(options.timeout))
            .set_number_of_retries(3)
            .set_max_delay(Duration::from_millis(500));
        let manager = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|_| invalid("cannot create a connection for"))?;
        Ok(RedisStore {
            conn: Conn::Single(manager),
            prefix: parsed.prefix.into(),
            timeout: options.timeout,
            shown: shown.into(),
            secrets: parsed.secrets.into(),
        })
    }

    /// Connect (lazily) to a cluster:
    /// `redis+cluster://[[USER]:PASSWORD@]HOST:PORT[,HOST:PORT…][/][?OPTIONS]`
    /// (or `rediss+cluster://`). The listed nodes are seeds; the client
    /// discovers the others. The credentials apply to every node.
    pub fn open_cluster(url: &str, options: &StoreOptions) -> Result<Self, StoreError> {
        let parsed = parse(url)?;
        let shown = redact_url(url);
        let invalid =
            |what: &str| StoreError::InvalidConfig(format!("{what} in cluster URL `{shown}`"));
        let (scheme, rest) = parsed.base.split_once("://").unwrap_or_default();
        let node_scheme = match scheme {
            "redis+cluster" => "redis",
            "rediss+cluster" => "rediss",
            _ => return Err(invalid("scheme must be redis+cluster or rediss+cluster")),
        };
        if rest.contains('#') {
            return Err(invalid("a `#` fragment is not supported"));
        }
        let (userinfo, hosts_path) = match rest.rfind('@') {
            Some(at) => (&rest[..=at], &rest[at + 1..]),
            None => ("", rest),
        };
        let (hosts, path) = hosts_path.split_once('/').unwrap_or((hosts_path, ""));
        if !matches!(path, "" | "0") {
            return Err(invalid("a cluster has only database 0"));
        }
        let mut nodes = Vec::new();
        for host in hosts.split(',') {
            if host.is_empty() || !host.contains(':') {
                return Err(invalid("every node must be HOST:PORT"));
            }
            let node = format!("{node_scheme}://{userinfo}{host}")
                .into_connection_info()
                .map_err(|_| invalid("cannot parse a node"))?;
            nodes.push(node);
        }
        let mut builder = ClusterClient::builder(nodes)
            .connection_timeout(options.timeout)
            .response_timeout(options.timeout)
            .retries(3);
        if let Some(certs) = load_tls(&parsed, url)? {
            builder = builder.certs(certs);
        }
        let client = builder.build().map_err(|_| invalid("unusable settings"))?;
        Ok(RedisStore {
            conn: Conn::Cluster(Arc::new(LazyCluster {
                client,
                conn: OnceCell::new(),
            })),
            prefix: parsed.prefix.into(),
            timeout: options.timeout,
            shown: shown.into(),
            secrets: parsed.secrets.into(),
        })
    }

    /// The Redis key prefix in use.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn data_key(&self, key: &str) -> String {
        format!("{}{{{:02x}}}:d:{key}", self.prefix, bucket(key))
    }

    fn index_key(&self, bucket: u32) -> String {
        format!("{}{{{bucket:02x}}}:i", self.prefix)
    }

    /// Send one command on whichever connection this store has.
    async fn query<T: FromRedisValue>(&self, cmd: &Cmd) -> Result<T, StoreError> {
        match &self.conn {
            Conn::Single(manager) => cmd.query_async(&mut manager.clone()).await,
            Conn::Cluster(_) => cmd.query_async(&mut self.cluster().await?).await,
        }
        .map_err(|e| self.error(e))
    }

    /// The cluster connection, made on first use (a failed attempt is retried
    /// by the next call).
    async fn cluster(&self) -> Result<ClusterConnection, StoreError> {
        let Conn::Cluster(lazy) = &self.conn else {
            unreachable!("cluster() on a single-node store");
        };
        lazy.conn
            .get_or_try_init(|| lazy.client.get_async_connection())
            .await
            .cloned()
            .map_err(|e| self.error(e))
    }

    /// Classify a redis error, with any password scrubbed from its text.
    fn error(&self, e: RedisError) -> StoreError {
        if e.is_timeout() {
            return StoreError::Timeout;
        }
        let mut msg = e.to_string();
        for secret in self.secrets.iter() {
            msg = msg.replace(secret.as_str(), "***");
        }
        match e.retry_method() {
            RetryMethod::NoRetry => StoreError::Backend(msg),
            _ => StoreError::Unavailable(msg),
        }
    }

    async fn get_unbounded(&self, key: &str) -> Result<Option<Versioned>, StoreError> {
        let (version, value): (Option<u64>, Option<Vec<u8>>) = self
            .query(
                ::redis::cmd("HMGET")
                    .arg(self.data_key(key))
                    .arg("v")
                    .arg("d"),
            )
            .await?;
        match (version, value) {
            (Some(version), Some(value)) => Ok(Some(Versioned {
                version: Version::new(version),
                value,
            })),
            (None, None) => Ok(None),
            _ => Err(StoreError::Backend(format!(
                "corrupt record for key `{key}`: version or value missing"
            ))),
        }
    }

    async fn cas_unbounded(
        &self,
        key: &str,
        expected: Option<Version>,
        value: &[u8],
    ) -> Result<CasOutcome, StoreError> {
        let expected = expected.map(|v| v.get().to_string()).unwrap_or_default();
        let mut invocation = CAS.prepare_invoke();
        invocation
            .key(self.data_key(key))
            .key(self.index_key(bucket(key)))
            .arg(expected)
            .arg(value)
            .arg(key);
        let (written, version): (i64, i64) = match &self.conn {
            Conn::Single(manager) => invocation.invoke_async(&mut manager.clone()).await,
            Conn::Cluster(_) => invocation.invoke_async(&mut self.cluster().await?).await,
        }
        .map_err(|e| self.error(e))?;
        let version = u64::try_from(version).ok().map(Version::new);
        Ok(match (written, version) {
            (1, Some(v)) => CasOutcome::Written(v),
            (_, current) => CasOutcome::Conflict { current },
        })
    }

    async fn list_unbounded(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Versioned)>, StoreError> {
        // ZRANGEBYLEX bounds: `[x` inclusive, `(x` exclusive, `+` the end.
        let min = match start_after {
            Some(after) if after >= prefix => [b"(", after.as_bytes()].concat(),
            _ => [b"[", prefix.as_bytes()].concat(),
        };
        let max = match prefix_successor(prefix) {
            Some(succ) => [b"(".as_slice(), &succ].concat(),
            None => b"+".to_vec(),
        };
        // Phase 1: at most `limit` keys from each bucket, concurrently.
        let per_bucket = (0..BUCKETS).map(|b| {
            let mut cmd = ::redis::cmd("ZRANGEBYLEX");
            cmd.arg(self.index_key(b))
                .arg(&min)
                .arg(&max)
                .arg("LIMIT")
                .arg(0)
                .arg(limit);
            async move { self.query::<Vec<String>>(&cmd).await }
        });
        let mut keys: Vec<String> = try_join_all(per_bucket).await?.concat();
        keys.sort_unstable();
        keys.truncate(limit);
        // Phase 2: the values of the page's keys, concurrently (one multiplexed
        // round trip on a single node; spread over masters on a cluster).
        let values = try_join_all(keys.iter().map(|key| self.get_unbounded(key))).await?;
        Ok(keys
            .into_iter()
            .zip(values)
            // An indexed key is always written with its data; skip rather than
            // fail if one was removed behind our back (e.g. by eviction).
            .filter_map(|(key, value)| Some((key, value?)))
            .collect())
    }
}

impl Store for RedisStore {
    async fn get(&self, key: &str) -> Result<Option<Versioned>, StoreError> {
        check_key(key)?;
        bounded(self.timeout, self.get_unbounded(key)).await
    }

    async fn compare_and_set(
        &self,
        key: &str,
        expected: Option<Version>,
        value: &[u8],
    ) -> Result<CasOutcome, StoreError> {
        check_key(key)?;
        check_value(value)?;
        bounded(self.timeout, self.cas_unbounded(key, expected, value)).await
    }

    async fn list_prefix(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Versioned)>, StoreError> {
        let limit = limit.min(MAX_LIST_LIMIT);
        if limit == 0 {
            return Ok(Vec::new());
        }
        bounded(
            self.timeout,
            self.list_unbounded(prefix, start_after, limit),
        )
        .await
    }

    async fn health(&self) -> Result<(), StoreError> {
        bounded(self.timeout, async {
            match self.conn {
                Conn::Single(_) => self.query::<()>(&::redis::cmd("PING")).await,
                // A cluster is healthy for this store when the slots of all its
                // buckets answer: a PING would reach only the masters the client
                // still knows, and miss one that died a moment ago.
                Conn::Cluster(_) => {
                    try_join_all((0..BUCKETS).map(|b| async move {
                        let mut cmd = ::redis::cmd("EXISTS");
                        cmd.arg(self.index_key(b));
                        self.query::<i64>(&cmd).await
                    }))
                    .await?;
                    Ok(())
                }
            }
        })
        .await
    }
}

/// The bucket of a store key: FNV-1a (32 bit) of its bytes, mod [`BUCKETS`].
fn bucket(key: &str) -> u32 {
    let hash = key.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    hash % BUCKETS
}

/// The smallest byte string greater than every string starting with
/// `prefix`, or `None` for the empty prefix (no upper bound). UTF-8 never
/// contains 0xFF, so incrementing the last byte cannot overflow.
fn prefix_successor(prefix: &str) -> Option<Vec<u8>> {
    let mut bytes = prefix.as_bytes().to_vec();
    let last = bytes.last_mut()?;
    *last += 1;
    Some(bytes)
}

/// Split our options (`prefix`, `tls_ca`) off the URL's query and find the
/// password to scrub from error texts.
fn parse(url: &str) -> Result<Parsed, StoreError> {
    let shown = redact_url(url);
    let (before_fragment, fragment) = match url.split_once('#') {
        Some((u, f)) => (u, Some(f)),
        None => (url, None),
    };
    let (base, query) = before_fragment
        .split_once('?')
        .unwrap_or((before_fragment, ""));
    let mut prefix = DEFAULT_PREFIX.to_owned();
    let mut tls_ca = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = percent_encoding::percent_decode_str(value)
            .decode_utf8()
            .map_err(|_| {
                StoreError::InvalidConfig(format!("option `{name}` is not UTF-8 in `{shown}`"))
            })?
            .into_owned();
        match name {
            "prefix" => prefix = value,
            "tls_ca" => tls_ca = Some(value),
            _ => {
                return Err(StoreError::InvalidConfig(format!(
                    "unknown option `{name}` in `{shown}` (known: prefix, tls_ca)"
                )));
            }
        }
    }
    if prefix.contains(['{', '}']) {
        return Err(StoreError::InvalidConfig(format!(
            "prefix `{prefix}` must not contain `{{` or `}}` (they would change the hash slot)"
        )));
    }
    let mut base = base.to_owned();
    if let Some(fragment) = fragment {
        base.push('#');
        base.push_str(fragment);
    }
    Ok(Parsed {
        base,
        prefix,
        tls_ca,
        secrets: password_forms(url),
    })
}

/// The password in `url`'s userinfo, as written and percent-decoded. The
/// userinfo may end at the last `@` before any `?`/`#`, or (with those
/// characters unencoded in the password) at the last `@` of all: take both.
fn password_forms(url: &str) -> Vec<String> {
    let Some((_, rest)) = url.split_once("://") else {
        return Vec::new();
    };
    let head = &rest[..rest.find(['?', '#']).unwrap_or(rest.len())];
    let mut forms = Vec::new();
    for userinfo in [
        head.rfind('@').map(|at| &head[..at]),
        rest.rfind('@').map(|at| &rest[..at]),
    ]
    .into_iter()
    .flatten()
    {
        let raw = userinfo.split_once(':').map_or(userinfo, |(_, p)| p);
        let decoded = percent_encoding::percent_decode_str(raw).decode_utf8_lossy();
        forms.push(raw.to_owned());
        forms.push(decoded.into_owned());
    }
    forms.retain(|s| !s.is_empty());
    // Longest first, so a password is replaced before any part of it.
    forms.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    forms.dedup();
    forms
}

/// For a TLS URL: make sure rustls has a crypto provider, and load `tls_ca`.
fn load_tls(parsed: &Parsed, url: &str) -> Result<Option<TlsCertificates>, StoreError> {
    let tls = parsed.base.starts_with("rediss");
    if tls {
        // If another crate also enabled a rustls provider, rustls cannot pick
        // one by itself; installing ours fails harmlessly if one is set.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
    let Some(path) = &parsed.tls_ca else {
        return Ok(None);
    };
    if !tls {
        return Err(StoreError::InvalidConfig(format!(
            "tls_ca needs a rediss:// URL, got `{}`",
            redact_url(url)
        )));
    }
    let pem = std::fs::read(path)
        .map_err(|e| StoreError::InvalidConfig(format!("reading tls_ca `{path}`: {e}")))?;
    Ok(Some(TlsCertificates {
        client_tls: None,
        root_cert: Some(pem),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn successor_bounds_prefix() {
        assert_eq!(prefix_successor(""), None);
        assert_eq!(prefix_successor("media/").unwrap(), b"media0");
        let succ = prefix_successor("視").unwrap();
        assert!(succ.as_slice() > "視频".as_bytes());
        assert!(succ.as_slice() > "視\u{10FFFF}".as_bytes());
    }

    #[test]
    fn buckets_are_stable() {
        // Part of the stored layout: these must never change.
        assert_eq!(bucket(""), 0x811c_9dc5 % 16);
        assert_eq!(bucket("media/abc"), bucket("media/abc"));
        let spread: std::collections::HashSet<u32> =
            (0..200).map(|i| bucket(&format!("job/{i}"))).collect();
        assert_eq!(spread.len(), 16);
    }

    #[test]
    fn options_are_parsed_and_checked() {
        let p = parse("redis://:pw%40x@h:1/2?prefix=app%3A&tls_ca=/c.pem").unwrap();
        assert_eq!(p.base, "redis://:pw%40x@h:1/2");
        assert_eq!(p.prefix, "app:");
        assert_eq!(p.tls_ca.as_deref(), Some("/c.pem"));
        assert_eq!(p.secrets, ["pw%40x", "pw@x"]);
        let p = parse("redis://:a#b@h").unwrap();
        assert!(p.secrets.iter().any(|s| s == "a#b"), "{:?}", p.secrets);
        assert_eq!(parse("redis://h").unwrap().prefix, DEFAULT_PREFIX);
        assert_eq!(parse("redis://h?prefix=").unwrap().prefix, "");
        let err = parse("redis://:hunter2@h?prefx=a")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("prefx") && !err.contains("hunter2"), "{err}");
        assert!(parse("redis://h?prefix=%7Bx%7D").is_err());
    }
}

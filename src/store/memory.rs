//! In-process store: a hash map split into shards, each behind a mutex.
//!
//! For tests and throwaway runs; everything is lost when the process exits.
//! The mutexes are `std` ones, held only for one lookup or insert and never
//! across an `.await`, so they cannot stall the runtime. Keys hash to one of
//! [`SHARDS`] shards, so concurrent requests rarely wait for each other, and
//! a point lookup costs a hash instead of a walk down a large sorted tree
//! (which, with hundreds of thousands of keys, was the store's main cost
//! under load). Many small shards also keep each map's occasional doubling
//! (a rehash under its lock) short. Listing is the rare operation: it scans
//! the shards and sorts what matches. Values are kept as `Arc<[u8]>` so a
//! listing clones pointers under the locks and copies bytes after
//! releasing them.
//!
//! Calls complete without waiting on anything, so this backend has no
//! timeout: there is nothing that could be slow.

use std::collections::HashMap;
use std::fmt;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex, MutexGuard};

use super::{
    CasOutcome, MAX_LIST_LIMIT, Store, StoreError, Version, Versioned, check_key, check_value,
};

/// Number of independently locked shards. Many, because a map that
/// outgrows its table moves every entry while holding its shard's lock:
/// with 64 shards and two million keys one such doubling held a request
/// for milliseconds (p99 10.9 ms under load); with 1,024 it is ~16 times
/// shorter. Empty shards allocate nothing.
pub const SHARDS: usize = 1 << SHARD_BITS;
const SHARD_BITS: u32 = 10;

/// Keys are hashed with foldhash, several times faster than std's SipHash
/// on short keys; its per-process random seed keeps it resistant to
/// crafted-collision floods, which is all a test store needs.
type Shard = HashMap<Box<str>, (Version, Arc<[u8]>), foldhash::fast::RandomState>;

/// The in-process backend. Clones share the same map.
#[derive(Clone)]
pub struct MemoryStore {
    inner: Arc<Inner>,
}

struct Inner {
    hasher: foldhash::fast::RandomState,
    shards: Box<[Mutex<Shard>]>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self {
            inner: Arc::new(Inner {
                hasher: Default::default(),
                shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            }),
        }
    }
}

impl fmt::Debug for MemoryStore {
    // The contents may be large: show only their size.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys: usize = self.inner.shards.iter().map(|s| lock(s).len()).sum();
        f.debug_struct("MemoryStore").field("keys", &keys).finish()
    }
}

/// A shard's map. A panic while holding the lock cannot leave it
/// half-updated (each update is one insert), so a poisoned lock is still
/// usable.
fn lock(shard: &Mutex<Shard>) -> MutexGuard<'_, Shard> {
    shard
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn shard(&self, key: &str) -> MutexGuard<'_, Shard> {
        // The shard index uses the hash's high bits; HashMap uses the low ones.
        let hash = self.inner.hasher.hash_one(key);
        lock(&self.inner.shards[(hash >> (64 - SHARD_BITS)) as usize])
    }
}

impl Store for MemoryStore {
    async fn get(&self, key: &str) -> Result<Option<Versioned>, StoreError> {
        check_key(key)?;
        let found = self.shard(key).get(key).cloned();
        Ok(found.map(|(version, value)| Versioned {
            version,
            value: value.to_vec(),
        }))
    }

    async fn compare_and_set(
        &self,
        key: &str,
        expected: Option<Version>,
        value: &[u8],
    ) -> Result<CasOutcome, StoreError> {
        check_key(key)?;
        check_value(value)?;
        // Copy the bytes before taking the lock, to keep the critical section short.
        let value: Arc<[u8]> = Arc::from(value);
        let mut shard = self.shard(key);
        let current = shard.get_mut(key);
        let current_version = current.as_ref().map(|(version, _)| *version);
        if current_version != expected {
            return Ok(CasOutcome::Conflict {
                current: current_version,
            });
        }
        let next = Version::new(current_version.map_or(1, |v| v.get() + 1));
        match current {
            Some(entry) => *entry = (next, value),
            None => {
                shard.insert(key.into(), (next, value));
            }
        }
        Ok(CasOutcome::Written(next))
    }

    async fn list_prefix(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Versioned)>, StoreError> {
        let limit = limit.min(MAX_LIST_LIMIT);
        let after = start_after.unwrap_or("");
        let mut page: Vec<(String, Version, Arc<[u8]>)> = Vec::new();
        for shard in &self.inner.shards {
            page.extend(
                lock(shard)
                    .iter()
                    .filter(|(key, _)| key.starts_with(prefix) && &***key > after)
                    .map(|(key, (version, value))| (key.to_string(), *version, Arc::clone(value))),
            );
        }
        page.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        page.truncate(limit);
        Ok(page
            .into_iter()
            .map(|(key, version, value)| {
                (
                    key,
                    Versioned {
                        version,
                        value: value.to_vec(),
                    },
                )
            })
            .collect())
    }

    async fn health(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

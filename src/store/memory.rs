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
//! the shards and sorts what matches.
//!
//! Under load, with millions of keys, this store's cost is not its
//! instructions but its memory: each lookup of a key is a cache miss in a
//! large table, and each new event is fresh memory. So a shard's table
//! holds only four-byte positions into a vector of entries (the part
//! touched at random is small, and a new key is a push at its end), and
//! each entry's key and value share one allocation.
//!
//! Calls complete without waiting on anything, so this backend has no
//! timeout: there is nothing that could be slow.

use hashbrown::HashTable;
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

/// One shard's keys. Keys are hashed with foldhash, several times faster
/// than std's SipHash on short keys; its per-process random seed keeps it
/// resistant to crafted-collision floods, which is all a test store needs.
/// One hash per call picks the shard (bits below the top seven, which the
/// index keeps as each slot's tag) and the slot within it.
#[derive(Default)]
struct Shard {
    /// Where each key's entry stands in `entries`: four bytes a slot (and
    /// the table's tag byte), so the part of a store of millions of keys
    /// that lookups touch at random is an eighth of the entries' size.
    index: HashTable<u32>,
    /// Entries in the order they were created; nothing is ever removed, so
    /// a new key is a push at the end, in memory that is already at hand.
    entries: Vec<Entry>,
}

impl Shard {
    /// The position of `key` (whose hash is `hash`) in `entries`. An
    /// entry is read only when its slot's tag matched the hash's.
    fn position(&self, hash: u64, key: &str) -> Option<usize> {
        let entries = &self.entries;
        self.index
            .find(hash, |&i| entries[i as usize].is(hash, key))
            .map(|&i| i as usize)
    }

    fn get(&self, hash: u64, key: &str) -> Option<&Entry> {
        self.position(hash, key).map(|i| &self.entries[i])
    }

    /// Adds a new key's entry; `None` (and nothing added) when the shard
    /// already holds as many entries as its index can count.
    fn push(&mut self, entry: Entry) -> Option<()> {
        let i = u32::try_from(self.entries.len()).ok()?;
        let entries = &self.entries;
        // The table moves slots by the hash kept in each entry.
        self.index
            .insert_unique(entry.hash, i, |&j| entries[j as usize].hash);
        self.entries.push(entry);
        Some(())
    }
}

/// A stored key and its value. Its hash is kept beside it, so an index
/// that doubles moves its slots without hashing every key again, and a
/// lookup reads a key only when the full hash already matched.
struct Entry {
    hash: u64,
    version: Version,
    /// The key's bytes, then the value's: one allocation per entry.
    bytes: Box<[u8]>,
    key_len: u32,
}

impl Entry {
    fn new(hash: u64, key: &str, version: Version, value: &[u8]) -> Self {
        Entry {
            hash,
            version,
            bytes: [key.as_bytes(), value].concat().into_boxed_slice(),
            // check_key bounds keys to MAX_KEY_LEN bytes.
            key_len: key.len() as u32,
        }
    }

    fn key(&self) -> &str {
        // The first key_len bytes were copied from a `&str`.
        std::str::from_utf8(&self.bytes[..self.key_len as usize]).unwrap_or_default()
    }

    fn value(&self) -> &[u8] {
        &self.bytes[self.key_len as usize..]
    }

    /// Whether this is `key` (whose hash is `hash`): the kept hash is
    /// compared first, so another key's bytes are almost never read.
    fn is(&self, hash: u64, key: &str) -> bool {
        self.hash == hash && &self.bytes[..self.key_len as usize] == key.as_bytes()
    }

    fn versioned(&self) -> Versioned {
        Versioned {
            version: self.version,
            value: self.value().to_vec(),
        }
    }
}

/// Bits at the top of a hash that the table keeps as a slot's tag.
const TAG_BITS: u32 = 7;

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
        let keys: usize = self
            .inner
            .shards
            .iter()
            .map(|s| lock(s).entries.len())
            .sum();
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

    fn hash(&self, key: &str) -> u64 {
        self.inner.hasher.hash_one(key)
    }

    fn shard(&self, hash: u64) -> MutexGuard<'_, Shard> {
        // The SHARD_BITS bits just below the tag: the table takes a slot's
        // tag from the top TAG_BITS (were they also the shard's, every key
        // of a shard would share one tag) and the slot from the low bits.
        lock(&self.inner.shards[(hash >> (64 - TAG_BITS - SHARD_BITS)) as usize & (SHARDS - 1)])
    }
}

impl Store for MemoryStore {
    async fn get(&self, key: &str) -> Result<Option<Versioned>, StoreError> {
        check_key(key)?;
        let hash = self.hash(key);
        // The value is copied under the lock (a few hundred bytes): entries
        // keep no reference count to hand out, one header less per entry.
        Ok(self.shard(hash).get(hash, key).map(Entry::versioned))
    }

    async fn compare_and_set(
        &self,
        key: &str,
        expected: Option<Version>,
        value: &[u8],
    ) -> Result<CasOutcome, StoreError> {
        check_key(key)?;
        check_value(value)?;
        let hash = self.hash(key);
        // The entry is built before taking the lock, to keep the critical
        // section short; its version is set once the expected one is seen.
        let mut entry = Entry::new(hash, key, Version::FIRST, value);
        let mut shard = self.shard(hash);
        let current = shard.position(hash, key);
        let current_version = current.map(|i| shard.entries[i].version);
        if current_version != expected {
            return Ok(CasOutcome::Conflict {
                current: current_version,
            });
        }
        let next = Version::new(current_version.map_or(1, |v| v.get() + 1));
        entry.version = next;
        // The replaced entry is freed after the lock is released.
        let _replaced = match current {
            Some(i) => Some(std::mem::replace(&mut shard.entries[i], entry)),
            None => {
                shard.push(entry).ok_or_else(|| {
                    StoreError::Backend("memory store shard holds 2^32 keys".to_owned())
                })?;
                None
            }
        };
        drop(shard);
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
        // Keys first; only the page's values are copied, each under its
        // shard's lock again (a key is never removed, so each is still there).
        let mut keys: Vec<String> = Vec::new();
        for shard in &self.inner.shards {
            keys.extend(
                lock(shard)
                    .entries
                    .iter()
                    .map(Entry::key)
                    .filter(|key| key.starts_with(prefix) && *key > after)
                    .map(str::to_owned),
            );
        }
        keys.sort_unstable();
        keys.truncate(limit);
        Ok(keys
            .into_iter()
            .filter_map(|key| {
                let hash = self.hash(&key);
                let found = self.shard(hash).get(hash, &key)?.versioned();
                Some((key, found))
            })
            .collect())
    }

    async fn health(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Enough keys that every shard's table doubles several times: each
    /// key must still be found through the hashes kept with the entries.
    #[tokio::test]
    async fn every_key_is_found_after_the_tables_grow() {
        let store = MemoryStore::new();
        let key = |i: u32| format!("media/{i:08}");
        for i in 0..50_000 {
            let written = store
                .compare_and_set(&key(i), None, &i.to_le_bytes())
                .await
                .unwrap();
            assert_eq!(written, CasOutcome::Written(Version::new(1)));
        }
        for i in (0..50_000).step_by(7) {
            let found = store.get(&key(i)).await.unwrap().unwrap();
            assert_eq!(
                (found.version, &found.value[..]),
                (Version::new(1), &i.to_le_bytes()[..])
            );
            // A second create conflicts; an update from the read version lands.
            assert_eq!(
                store.compare_and_set(&key(i), None, b"x").await.unwrap(),
                CasOutcome::Conflict {
                    current: Some(Version::new(1))
                }
            );
            store
                .compare_and_set(&key(i), Some(Version::new(1)), b"updated")
                .await
                .unwrap();
            assert_eq!(store.get(&key(i)).await.unwrap().unwrap().value, b"updated");
        }
        assert_eq!(store.get("media/absent").await.unwrap(), None);
        let page = store.list_prefix("media/0004", None, 100).await.unwrap();
        let keys: Vec<_> = page.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys.len(), 100);
        assert!(keys.is_sorted() && keys[0] == "media/00040000", "{keys:?}");
        assert_eq!(format!("{store:?}"), "MemoryStore { keys: 50000 }");
    }
}

//! In-process store: a sorted map behind a mutex.
//!
//! For tests and throwaway runs; everything is lost when the process exits.
//! The mutex is a `std` one, held only for a map lookup or insert and never
//! across an `.await`, so it cannot stall the runtime. Values are kept as
//! `Arc<[u8]>` so a listing clones pointers under the lock and copies bytes
//! after releasing it.
//!
//! Calls complete without waiting on anything, so this backend has no
//! timeout: there is nothing that could be slow.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard};

use super::{
    CasOutcome, MAX_LIST_LIMIT, Store, StoreError, Version, Versioned, check_key, check_value,
};

type Map = BTreeMap<String, (Version, Arc<[u8]>)>;

/// The in-process backend. Clones share the same map.
#[derive(Clone, Default)]
pub struct MemoryStore {
    map: Arc<Mutex<Map>>,
}

impl fmt::Debug for MemoryStore {
    // The contents may be large: show only their size.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("keys", &self.lock().len())
            .finish()
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Map> {
        // A panic while holding the lock cannot leave the map half-updated
        // (each update is one insert), so a poisoned lock is still usable.
        self.map
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Store for MemoryStore {
    async fn get(&self, key: &str) -> Result<Option<Versioned>, StoreError> {
        check_key(key)?;
        let found = self.lock().get(key).cloned();
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
        let mut map = self.lock();
        let current = map.get(key).map(|(version, _)| *version);
        if current != expected {
            return Ok(CasOutcome::Conflict { current });
        }
        let next = Version::new(current.map_or(1, |v| v.get() + 1));
        map.insert(key.to_owned(), (next, value));
        Ok(CasOutcome::Written(next))
    }

    async fn list_prefix(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Versioned)>, StoreError> {
        let limit = limit.min(MAX_LIST_LIMIT);
        let lower = match start_after {
            Some(after) if after >= prefix => Bound::Excluded(after),
            _ => Bound::Included(prefix),
        };
        let page: Vec<(String, Version, Arc<[u8]>)> = self
            .lock()
            .range::<str, _>((lower, Bound::Unbounded))
            .take_while(|(key, _)| key.starts_with(prefix))
            .take(limit)
            .map(|(key, (version, value))| (key.clone(), *version, Arc::clone(value)))
            .collect();
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

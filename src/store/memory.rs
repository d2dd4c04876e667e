//! In-process store: a sorted map and a log behind one mutex.
//!
//! For tests and throwaway runs; everything is lost when the process exits.
//! It is the plain reference implementation of [`Store`]: one `std` mutex,
//! held for one lookup or update and never across an `.await`, so every call
//! is trivially atomic (a logged compare-and-set updates the map and pushes
//! its entry under the same lock). Its speed is not a goal.
//!
//! Calls complete without waiting on anything, so this backend has no
//! timeout: there is nothing that could be slow.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

use super::{
    CasOutcome, ChangeId, Cursor, LogEntry, LogPage, MAX_LIST_LIMIT, MAX_LOG_LIMIT, Store,
    StoreError, Version, Versioned, check_key, check_value,
};

/// The in-process backend. Clones share the same data.
#[derive(Clone, Default)]
pub struct MemoryStore {
    inner: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    data: Mutex<Data>,
    appended: Notify,
}

#[derive(Default)]
struct Data {
    map: BTreeMap<String, Versioned>,
    /// The change log; entry `i` has sequence number `i + 1`.
    log: Vec<(String, Vec<u8>)>,
}

impl fmt::Debug for MemoryStore {
    // The contents may be large: show only their size.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let data = self.lock();
        f.debug_struct("MemoryStore")
            .field("keys", &data.map.len())
            .field("log", &data.log.len())
            .finish()
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The data. A panic while holding the lock cannot leave it
    /// half-updated (no update can panic between its two steps), so a
    /// poisoned lock is still usable.
    fn lock(&self) -> MutexGuard<'_, Data> {
        self.inner
            .data
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn cas(
        &self,
        key: &str,
        expected: Option<Version>,
        value: &[u8],
        change: Option<&[u8]>,
    ) -> Result<CasOutcome, StoreError> {
        check_key(key)?;
        check_value(value)?;
        change.map(check_value).transpose()?;
        let mut data = self.lock();
        let current = data.map.get(key).map(|found| found.version);
        if current != expected {
            return Ok(CasOutcome::Conflict { current });
        }
        let version = Version::new(current.map_or(1, |v| v.get() + 1));
        data.map.insert(
            key.to_owned(),
            Versioned {
                version,
                value: value.to_vec(),
            },
        );
        if let Some(change) = change {
            data.log.push((key.to_owned(), change.to_vec()));
            drop(data);
            self.inner.appended.notify_waiters();
        }
        Ok(CasOutcome::Written(version))
    }
}

impl Store for MemoryStore {
    async fn get(&self, key: &str) -> Result<Option<Versioned>, StoreError> {
        check_key(key)?;
        Ok(self.lock().map.get(key).cloned())
    }

    async fn compare_and_set(
        &self,
        key: &str,
        expected: Option<Version>,
        value: &[u8],
    ) -> Result<CasOutcome, StoreError> {
        self.cas(key, expected, value, None)
    }

    async fn compare_and_set_logged(
        &self,
        key: &str,
        expected: Option<Version>,
        value: &[u8],
        change: &[u8],
    ) -> Result<CasOutcome, StoreError> {
        self.cas(key, expected, value, Some(change))
    }

    fn log_partitions(&self) -> usize {
        1
    }

    async fn read_log(&self, after: Option<&Cursor>, limit: usize) -> Result<LogPage, StoreError> {
        let mut next = after.cloned().unwrap_or_else(|| Cursor::start(1));
        next.check(1)?;
        let from = usize::try_from(next.positions()[0]).unwrap_or(usize::MAX);
        let data = self.lock();
        let entries: Vec<LogEntry> = data
            .log
            .iter()
            .enumerate()
            .skip(from)
            .take(limit.min(MAX_LOG_LIMIT))
            .map(|(i, (key, value))| LogEntry {
                id: ChangeId {
                    partition: 0,
                    seq: i as u64 + 1,
                },
                key: key.clone(),
                value: value.clone(),
            })
            .collect();
        drop(data);
        if let Some(last) = entries.last() {
            next.advance(last.id);
        }
        Ok(LogPage { entries, next })
    }

    fn log_appended(&self) -> &Notify {
        &self.inner.appended
    }

    async fn list_prefix(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Versioned)>, StoreError> {
        let lower = match start_after {
            Some(after) if after >= prefix => Bound::Excluded(after),
            _ => Bound::Included(prefix),
        };
        Ok(self
            .lock()
            .map
            .range::<str, _>((lower, Bound::Unbounded))
            .take_while(|(key, _)| key.starts_with(prefix))
            .take(limit.min(MAX_LIST_LIMIT))
            .map(|(key, found)| (key.clone(), found.clone()))
            .collect())
    }

    async fn health(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

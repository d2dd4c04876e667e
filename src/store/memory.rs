//! In-process store: a sorted map and a log behind one mutex.
//!
//! For tests and throwaway runs; everything is lost when the process exits.
//! It is the plain reference implementation of [`Store`]: one `std` mutex,
//! held for one lookup or update and never across an `.await`, so every call
//! is trivially atomic (a logged compare-and-set updates the map, pushes
//! its entry and moves its listing under the same lock). Its speed is not
//! a goal, but a listing page is still a range read, not a scan.
//!
//! Calls complete without waiting on anything, so this backend has no
//! timeout: there is nothing that could be slow.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

use super::index::{check_listing, check_query, descending, merge, rank_of};
use super::{
    CasOutcome, ChangeId, Cursor, IndexQuery, Listed, Listing, LogEntry, LogPage, MAX_INDEX_LIMIT,
    MAX_LIST_LIMIT, MAX_LOG_LIMIT, Store, StoreError, Version, Versioned, check_key, check_value,
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
    /// The listing index, by time: (set, descending rank, key) → (tag, label).
    by_time: BTreeMap<(String, u64, String), (String, String)>,
    /// The listing index, by tag: (set, tag, descending rank, key) → label.
    by_tag: BTreeMap<(String, String, u64, String), String>,
    /// Each listed key's current listing, to remove it when it changes.
    listed: HashMap<String, Listing>,
}

impl Data {
    /// Replaces the listing of `key`.
    fn list(&mut self, key: &str, listing: &Listing) {
        if let Some(old) = self.listed.remove(key) {
            let rank = descending(old.rank);
            self.by_time
                .remove(&(old.set.clone(), rank, key.to_owned()));
            self.by_tag
                .remove(&(old.set, old.tag, rank, key.to_owned()));
        }
        let rank = descending(listing.rank);
        self.by_time.insert(
            (listing.set.clone(), rank, key.to_owned()),
            (listing.tag.clone(), listing.label.clone()),
        );
        self.by_tag.insert(
            (
                listing.set.clone(),
                listing.tag.clone(),
                rank,
                key.to_owned(),
            ),
            listing.label.clone(),
        );
        self.listed.insert(key.to_owned(), listing.clone());
    }

    /// Up to `limit` rows of one set, in position order.
    fn page(&self, set: &str, query: &IndexQuery<'_>, limit: usize) -> Vec<Listed> {
        let stop = query.rank_above.map(descending);
        let before_stop = |rank: u64| stop.is_none_or(|stop| rank < stop);
        let (from_rank, from_key) = query
            .after
            .map_or((0, String::new()), |p| (descending(p.rank), p.key.clone()));
        let after =
            |rank: u64, key: &str| query.after.is_none() || (rank, key) > (from_rank, &*from_key);
        let row = |rank: u64, key: &str, tag: &str, label: &str| Listed {
            key: key.to_owned(),
            listing: Listing {
                set: set.to_owned(),
                tag: tag.to_owned(),
                rank: rank_of(rank),
                label: label.to_owned(),
            },
        };
        match query.tag {
            None => self
                .by_time
                .range((set.to_owned(), from_rank, from_key.clone())..)
                .take_while(|((s, rank, _), _)| s == set && before_stop(*rank))
                .filter(|((_, rank, key), _)| after(*rank, key))
                .take(limit)
                .map(|((_, rank, key), (tag, label))| row(*rank, key, tag, label))
                .collect(),
            Some(tag) => self
                .by_tag
                .range((set.to_owned(), tag.to_owned(), from_rank, from_key.clone())..)
                .take_while(|((s, t, rank, _), _)| s == set && t == tag && before_stop(*rank))
                .filter(|((_, _, rank, key), _)| after(*rank, key))
                .take(limit)
                .map(|((_, tag, rank, key), label)| row(*rank, key, tag, label))
                .collect(),
        }
    }
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
        listing: Option<&Listing>,
    ) -> Result<CasOutcome, StoreError> {
        check_key(key)?;
        check_value(value)?;
        change.map(check_value).transpose()?;
        let mut data = self.lock();
        if let Some(listing) = listing {
            check_move(key, listing, data.listed.get(key))?;
        }
        let current = data.map.get(key).map(|found| found.version);
        if current != expected {
            return Ok(CasOutcome::Conflict { current });
        }
        if let Some(listing) = listing {
            data.list(key, listing);
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

/// Refuse moving a listed key to another set.
pub(crate) fn check_move(
    key: &str,
    listing: &Listing,
    current: Option<&Listing>,
) -> Result<(), StoreError> {
    match current {
        Some(old) if old.set != listing.set => Err(StoreError::InvalidKey(format!(
            "`{key}` is listed in set `{}`, not `{}`: a key's set never changes",
            old.set, listing.set
        ))),
        _ => Ok(()),
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
        self.cas(key, expected, value, None, None)
    }

    async fn compare_and_set_logged(
        &self,
        key: &str,
        expected: Option<Version>,
        value: &[u8],
        change: &[u8],
    ) -> Result<CasOutcome, StoreError> {
        self.cas(key, expected, value, Some(change), None)
    }

    async fn compare_and_set_listed(
        &self,
        key: &str,
        expected: Option<Version>,
        value: &[u8],
        change: Option<&[u8]>,
        listing: &Listing,
    ) -> Result<CasOutcome, StoreError> {
        check_listing(key, listing)?;
        self.cas(key, expected, value, change, Some(listing))
    }

    async fn relist(
        &self,
        key: &str,
        version: Version,
        listing: &Listing,
    ) -> Result<bool, StoreError> {
        check_key(key)?;
        check_listing(key, listing)?;
        let mut data = self.lock();
        check_move(key, listing, data.listed.get(key))?;
        if data.map.get(key).map(|found| found.version) != Some(version) {
            return Ok(false);
        }
        data.list(key, listing);
        Ok(true)
    }

    async fn list_index(&self, query: &IndexQuery<'_>) -> Result<Vec<Listed>, StoreError> {
        check_query(query)?;
        let limit = query.limit.min(MAX_INDEX_LIMIT);
        let data = self.lock();
        let rows = query
            .sets
            .iter()
            .flat_map(|set| data.page(set, query, limit))
            .collect();
        Ok(merge(rows, limit))
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

//! Embedded store: one [redb](https://docs.rs/redb) file.
//!
//! The default for local runs (`redb:./ims-state.redb`). One table, `kv`,
//! maps each key to `(version, value)`, so version and value change in the
//! same transaction. Every write transaction commits with redb's default
//! `Durability::Immediate`: when `compare_and_set` returns `Written`, the
//! value is on disk.
//!
//! redb's API is blocking (file I/O, fsync, and `begin_write` waits for the
//! single writer), so every call runs in `tokio::task::spawn_blocking` and
//! never blocks the async runtime. CAS needs no locking of its own: the read
//! and the write happen inside one write transaction, and redb admits one
//! writer at a time.
//!
//! A call that exceeds the timeout returns [`StoreError::Timeout`], but its
//! blocking job cannot be cancelled and still runs (a write may still be
//! committed), which is the "unknown outcome" the trait documents.

use std::fmt;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ::redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use super::{
    CasOutcome, MAX_LIST_LIMIT, Store, StoreError, StoreOptions, Version, Versioned, bounded,
    check_key, check_value,
};

/// key → (version, value).
const KV: TableDefinition<&str, (u64, &[u8])> = TableDefinition::new("kv");

/// The redb backend. Clones share the same open database.
#[derive(Clone)]
pub struct RedbStore {
    db: Arc<Database>,
    path: Arc<Path>,
    timeout: Duration,
}

impl fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedbStore")
            .field("path", &self.path)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl RedbStore {
    /// Open the redb file at `path`, creating it (and the table) if absent.
    ///
    /// Opening is not bounded by the timeout: after a crash redb may first
    /// repair the file, which takes as long as it takes. Fails if the file is
    /// not a redb database or another process holds it open.
    pub async fn open(path: impl AsRef<Path>, options: &StoreOptions) -> Result<Self, StoreError> {
        let path: PathBuf = path.as_ref().to_owned();
        if path.as_os_str().is_empty() {
            return Err(StoreError::InvalidConfig(
                "redb: needs a file path, e.g. `redb:./ims-state.redb`".to_owned(),
            ));
        }
        let shown = path.clone();
        let db = tokio::task::spawn_blocking(move || -> Result<Database, ::redb::Error> {
            let db = Database::create(&path)?;
            // Create the table up front so readers never see "table does not exist".
            let txn = db.begin_write()?;
            txn.open_table(KV)?;
            txn.commit()?;
            Ok(db)
        })
        .await
        .map_err(join_error)?
        .map_err(|e| StoreError::Backend(format!("opening redb file {}: {e}", shown.display())))?;
        Ok(RedbStore {
            db: Arc::new(db),
            path: Arc::from(shown),
            timeout: options.timeout,
        })
    }

    /// Run `job` on the blocking pool, bounded by the timeout.
    async fn blocking<T: Send + 'static>(
        &self,
        job: impl FnOnce(&Database) -> Result<T, ::redb::Error> + Send + 'static,
    ) -> Result<T, StoreError> {
        let db = Arc::clone(&self.db);
        bounded(self.timeout, async move {
            tokio::task::spawn_blocking(move || job(&db))
                .await
                .map_err(join_error)?
                .map_err(redb_error)
        })
        .await
    }
}

impl Store for RedbStore {
    async fn get(&self, key: &str) -> Result<Option<Versioned>, StoreError> {
        check_key(key)?;
        let key = key.to_owned();
        self.blocking(move |db| {
            let txn = db.begin_read()?;
            let table = txn.open_table(KV)?;
            Ok(table.get(key.as_str())?.map(|guard| {
                let (version, value) = guard.value();
                Versioned {
                    version: Version::new(version),
                    value: value.to_vec(),
                }
            }))
        })
        .await
    }

    async fn compare_and_set(
        &self,
        key: &str,
        expected: Option<Version>,
        value: &[u8],
    ) -> Result<CasOutcome, StoreError> {
        check_key(key)?;
        check_value(value)?;
        let key = key.to_owned();
        let value = value.to_vec();
        self.blocking(move |db| {
            let txn = db.begin_write()?;
            let outcome = {
                let mut table = txn.open_table(KV)?;
                let current = table
                    .get(key.as_str())?
                    .map(|guard| Version::new(guard.value().0));
                if current == expected {
                    let next = current.map_or(1, |v| v.get() + 1);
                    table.insert(key.as_str(), (next, value.as_slice()))?;
                    CasOutcome::Written(Version::new(next))
                } else {
                    CasOutcome::Conflict { current }
                }
            };
            match outcome {
                CasOutcome::Written(_) => txn.commit()?,
                // Nothing changed: skip the fsync of a commit.
                CasOutcome::Conflict { .. } => txn.abort()?,
            }
            Ok(outcome)
        })
        .await
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
        let prefix = prefix.to_owned();
        let start_after = start_after.map(str::to_owned);
        self.blocking(move |db| {
            let txn = db.begin_read()?;
            let table = txn.open_table(KV)?;
            let lower = match start_after.as_deref() {
                Some(after) if after >= prefix.as_str() => Bound::Excluded(after),
                _ => Bound::Included(prefix.as_str()),
            };
            let mut page = Vec::new();
            for entry in table.range::<&str>((lower, Bound::Unbounded))? {
                let (key, guard) = entry?;
                let key = key.value();
                if !key.starts_with(prefix.as_str()) || page.len() == limit {
                    break;
                }
                let (version, value) = guard.value();
                page.push((
                    key.to_owned(),
                    Versioned {
                        version: Version::new(version),
                        value: value.to_vec(),
                    },
                ));
            }
            Ok(page)
        })
        .await
    }

    async fn health(&self) -> Result<(), StoreError> {
        // A read transaction proves the file is open and the blocking pool responsive.
        self.blocking(|db| {
            let txn = db.begin_read()?;
            txn.open_table(KV)?;
            Ok(())
        })
        .await
    }
}

/// redb I/O errors may be transient (disk full, EIO); anything else is not.
fn redb_error(e: ::redb::Error) -> StoreError {
    match e {
        ::redb::Error::Io(io) => StoreError::Unavailable(format!("redb I/O: {io}")),
        other => StoreError::Backend(format!("redb: {other}")),
    }
}

fn join_error(e: tokio::task::JoinError) -> StoreError {
    StoreError::Backend(format!("redb task failed: {e}"))
}

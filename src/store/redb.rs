//! Embedded store: one [redb](https://docs.rs/redb) file.
//!
//! The default for local runs (`redb:./ims-state.redb`). One table, `kv`,
//! maps each key to `(version, value)`, so version and value change in the
//! same transaction; a second, `log`, maps each change's sequence number to
//! `(key, change)`, written in the transaction of the write it records (the
//! log has one partition; its next number is one past its last). Every write transaction commits with redb's default
//! `Durability::Immediate`: when `compare_and_set` returns `Written`, the
//! value is on disk.
//!
//! redb's API is blocking (file I/O, fsync), so every call runs in
//! `tokio::task::spawn_blocking` and never blocks the async runtime. Writes
//! go through one writer task that **group-commits**: it takes every
//! compare-and-set waiting in its queue (up to [`MAX_BATCH`]), applies them
//! in order inside one write transaction — each still checks its expected
//! version, and sees the writes before it — commits once (one fsync), and
//! only then answers each caller. While a batch commits, the next one
//! queues, so under concurrency N fsyncs become one without weakening
//! "written means on disk".
//!
//! A call that exceeds the timeout returns [`StoreError::Timeout`], but its
//! blocking job cannot be cancelled and still runs (a write may still be
//! committed), which is the "unknown outcome" the trait documents.

use std::fmt;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::{Notify, mpsc, oneshot};

use ::redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use super::{
    CasOutcome, ChangeId, Cursor, LogEntry, LogPage, MAX_LIST_LIMIT, MAX_LOG_LIMIT, Store,
    StoreError, StoreOptions, Version, Versioned, bounded, check_key, check_value,
};

/// key → (version, value).
const KV: TableDefinition<&str, (u64, &[u8])> = TableDefinition::new("kv");

/// sequence number → (key, change): the change log.
const LOG: TableDefinition<u64, (&str, &[u8])> = TableDefinition::new("log");

/// redb's page cache: enough for the hot resources, bounded RSS.
pub const CACHE_BYTES: usize = 32 * 1024 * 1024;

/// Most compare-and-sets committed together by the writer task.
pub const MAX_BATCH: usize = 256;

/// One compare-and-set waiting for the writer thread.
struct WriteOp {
    key: String,
    expected: Option<Version>,
    value: Vec<u8>,
    /// The change-log entry to append when the write lands.
    change: Option<Vec<u8>>,
    reply: oneshot::Sender<Result<CasOutcome, StoreError>>,
}

/// The redb backend. Clones share the same open database and writer.
#[derive(Clone)]
pub struct RedbStore {
    db: Arc<Database>,
    writer: mpsc::UnboundedSender<WriteOp>,
    path: Arc<Path>,
    timeout: Duration,
    appended: Arc<Notify>,
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
            // redb's default page cache is 1 GiB, which it fills as the
            // file grows; a receiver needs only its hot pages.
            let db = ::redb::Builder::new()
                .set_cache_size(CACHE_BYTES)
                .create(&path)?;
            // Create the table up front so readers never see "table does not
            // exist" — but only when absent: a write commit costs an fsync,
            // which a cold start should not pay every time.
            let read = db.begin_read()?;
            let mut exists = true;
            for table in [
                read.open_table(KV).map(drop),
                read.open_table(LOG).map(drop),
            ] {
                match table {
                    Ok(()) => {}
                    Err(::redb::TableError::TableDoesNotExist(_)) => exists = false,
                    Err(e) => return Err(e.into()),
                }
            }
            drop(read);
            if !exists {
                let txn = db.begin_write()?;
                txn.open_table(KV)?;
                txn.open_table(LOG)?;
                txn.commit()?;
            }
            Ok(db)
        })
        .await
        .map_err(join_error)?
        .map_err(|e| StoreError::Backend(format!("opening redb file {}: {e}", shown.display())))?;
        let db = Arc::new(db);
        let (writer, queue) = mpsc::unbounded_channel();
        // The writer holds the database weakly, so dropping the last store
        // handle closes the file at once (it can be reopened right away).
        let appended = Arc::new(Notify::new());
        tokio::spawn(write_loop(
            Arc::downgrade(&db),
            queue,
            Arc::clone(&appended),
        ));
        Ok(RedbStore {
            db,
            writer,
            path: Arc::from(shown),
            timeout: options.timeout,
            appended,
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

    async fn cas(
        &self,
        key: &str,
        expected: Option<Version>,
        value: &[u8],
        change: Option<&[u8]>,
    ) -> Result<CasOutcome, StoreError> {
        check_key(key)?;
        check_value(value)?;
        change.map(check_value).transpose()?;
        let (reply, answer) = oneshot::channel();
        let op = WriteOp {
            key: key.to_owned(),
            expected,
            value: value.to_vec(),
            change: change.map(<[u8]>::to_vec),
            reply,
        };
        self.writer
            .send(op)
            .map_err(|_| StoreError::Backend("the redb writer has stopped".to_owned()))?;
        // On timeout the write may still be committed: the documented
        // unknown outcome, safe for a read–modify–CAS caller.
        bounded(self.timeout, async move {
            answer.await.unwrap_or_else(|_| {
                Err(StoreError::Backend(
                    "the redb writer has stopped".to_owned(),
                ))
            })
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
        self.cas(key, expected, value, None).await
    }

    async fn compare_and_set_logged(
        &self,
        key: &str,
        expected: Option<Version>,
        value: &[u8],
        change: &[u8],
    ) -> Result<CasOutcome, StoreError> {
        self.cas(key, expected, value, Some(change)).await
    }

    fn log_partitions(&self) -> usize {
        1
    }

    async fn read_log(&self, after: Option<&Cursor>, limit: usize) -> Result<LogPage, StoreError> {
        let mut next = after.cloned().unwrap_or_else(|| Cursor::start(1));
        next.check(1)?;
        let limit = limit.min(MAX_LOG_LIMIT);
        let from = next.positions()[0];
        let entries = self
            .blocking(move |db| {
                let txn = db.begin_read()?;
                let table = txn.open_table(LOG)?;
                let mut entries = Vec::new();
                for entry in table.range((Bound::Excluded(from), Bound::Unbounded))? {
                    if entries.len() == limit {
                        break;
                    }
                    let (seq, guard) = entry?;
                    let (key, value) = guard.value();
                    entries.push(LogEntry {
                        id: ChangeId {
                            partition: 0,
                            seq: seq.value(),
                        },
                        key: key.to_owned(),
                        value: value.to_vec(),
                    });
                }
                Ok(entries)
            })
            .await?;
        if let Some(last) = entries.last() {
            next.advance(last.id);
        }
        Ok(LogPage { entries, next })
    }

    fn log_appended(&self) -> &Notify {
        &self.appended
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

/// The writer task: group-commits queued compare-and-sets, each batch on
/// the blocking pool, until every store handle is dropped.
async fn write_loop(
    db: Weak<Database>,
    mut queue: mpsc::UnboundedReceiver<WriteOp>,
    appended: Arc<Notify>,
) {
    while let Some(first) = queue.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        // Callers that gave up (timed out) still get their write applied:
        // their outcome was already "unknown".
        let result = match db.upgrade() {
            Some(db) => tokio::task::spawn_blocking(move || {
                let outcomes = apply_batch(&db, &batch).map_err(redb_error);
                (batch, outcomes)
            })
            .await
            .map_err(join_error),
            None => Err(StoreError::Backend("the redb file is closed".to_owned())),
        };
        match result {
            Ok((batch, Ok(outcomes))) => {
                let logged = batch
                    .iter()
                    .zip(&outcomes)
                    .any(|(op, o)| op.change.is_some() && matches!(o, CasOutcome::Written(_)));
                if logged {
                    appended.notify_waiters();
                }
                for (op, outcome) in batch.into_iter().zip(outcomes) {
                    let _ = op.reply.send(Ok(outcome));
                }
            }
            Ok((batch, Err(e))) => {
                for op in batch {
                    let _ = op.reply.send(Err(e.clone()));
                }
            }
            // The batch (and its reply channels) is gone with the failed
            // task: its callers see the writer as stopped.
            Err(_) => {}
        }
    }
}

/// Applies `batch` in order in one write transaction; commits (one fsync)
/// when anything was written. All or nothing: on error no op is applied.
fn apply_batch(db: &Database, batch: &[WriteOp]) -> Result<Vec<CasOutcome>, ::redb::Error> {
    let txn = db.begin_write()?;
    let mut outcomes = Vec::with_capacity(batch.len());
    {
        let mut table = txn.open_table(KV)?;
        let mut log = txn.open_table(LOG)?;
        let mut next_seq = log.last()?.map_or(1, |(seq, _)| seq.value() + 1);
        for op in batch {
            let current = table
                .get(op.key.as_str())?
                .map(|guard| Version::new(guard.value().0));
            if current == op.expected {
                let next = current.map_or(1, |v| v.get() + 1);
                table.insert(op.key.as_str(), (next, op.value.as_slice()))?;
                if let Some(change) = &op.change {
                    log.insert(next_seq, (op.key.as_str(), change.as_slice()))?;
                    next_seq += 1;
                }
                outcomes.push(CasOutcome::Written(Version::new(next)));
            } else {
                outcomes.push(CasOutcome::Conflict { current });
            }
        }
    }
    if outcomes.iter().any(|o| matches!(o, CasOutcome::Written(_))) {
        txn.commit()?;
    } else {
        // Nothing changed: skip the fsync of a commit.
        txn.abort()?;
    }
    Ok(outcomes)
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

//! Embedded store: one [redb](https://docs.rs/redb) file.
//!
//! The default for local runs (`redb:./ims-state.redb`). One table, `kv`,
//! maps each key to `(version, value)`, so version and value change in the
//! same transaction; a second, `log`, maps each change's sequence number to
//! `(key, change)`, written in the transaction of the write it records (the
//! log has one partition; its next number is one past its last). The
//! listing index ([`super::index`]) is three more tables written in that
//! same transaction: `list_time` ((set, descending rank, key) → (tag,
//! label)), `list_tag` ((set, tag, descending rank, key) → label) and
//! `listed` (key → its current listing, to remove it when it changes);
//! a page is a range read of `list_time` or `list_tag`. A file written
//! before the index existed gets the (empty) tables when opened.
//! Every write transaction commits with redb's default
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

use super::index::{check_listing, check_query, descending, merge, rank_of};
use super::{
    CasOutcome, ChangeId, Cursor, IndexQuery, Listed, Listing, LogEntry, LogPage, MAX_INDEX_LIMIT,
    MAX_LIST_LIMIT, MAX_LOG_LIMIT, Store, StoreError, StoreOptions, Version, Versioned, bounded,
    check_key, check_value,
};

/// key → (version, value).
const KV: TableDefinition<&str, (u64, &[u8])> = TableDefinition::new("kv");

/// sequence number → (key, change): the change log.
const LOG: TableDefinition<u64, (&str, &[u8])> = TableDefinition::new("log");

/// (set, descending rank, key) → (tag, label): the listing index by time.
const LIST_TIME: TableDefinition<(&str, u64, &str), (&str, &str)> =
    TableDefinition::new("list_time");

/// (set, tag, descending rank, key) → label: the listing index by tag.
const LIST_TAG: TableDefinition<(&str, &str, u64, &str), &str> = TableDefinition::new("list_tag");

/// key → (set, tag, rank, label): each listed key's current listing.
const LISTED: TableDefinition<&str, (&str, &str, i64, &str)> = TableDefinition::new("listed");

/// redb's page cache: enough for the hot resources, bounded RSS.
pub const CACHE_BYTES: usize = 32 * 1024 * 1024;

/// Most compare-and-sets committed together by the writer task.
pub const MAX_BATCH: usize = 256;

/// One compare-and-set waiting for the writer thread.
struct WriteOp {
    key: String,
    expected: Option<Version>,
    /// The new value; `None` for a [`Store::relist`], which writes the
    /// listing alone and answers `Written(expected)` when it matched.
    value: Option<Vec<u8>>,
    /// The change-log entry to append when the write lands.
    change: Option<Vec<u8>>,
    /// The listing to replace the key's with when the write lands.
    listing: Option<Listing>,
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
                read.open_table(LIST_TIME).map(drop),
                read.open_table(LIST_TAG).map(drop),
                read.open_table(LISTED).map(drop),
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
                txn.open_table(LIST_TIME)?;
                txn.open_table(LIST_TAG)?;
                txn.open_table(LISTED)?;
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
        value: Option<&[u8]>,
        change: Option<&[u8]>,
        listing: Option<&Listing>,
    ) -> Result<CasOutcome, StoreError> {
        check_key(key)?;
        value.map(check_value).transpose()?;
        change.map(check_value).transpose()?;
        if let Some(listing) = listing {
            check_listing(key, listing)?;
        }
        let (reply, answer) = oneshot::channel();
        let op = WriteOp {
            key: key.to_owned(),
            expected,
            value: value.map(<[u8]>::to_vec),
            change: change.map(<[u8]>::to_vec),
            listing: listing.cloned(),
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
        self.cas(key, expected, Some(value), None, None).await
    }

    async fn compare_and_set_logged(
        &self,
        key: &str,
        expected: Option<Version>,
        value: &[u8],
        change: &[u8],
    ) -> Result<CasOutcome, StoreError> {
        self.cas(key, expected, Some(value), Some(change), None)
            .await
    }

    async fn compare_and_set_listed(
        &self,
        key: &str,
        expected: Option<Version>,
        value: &[u8],
        change: Option<&[u8]>,
        listing: &Listing,
    ) -> Result<CasOutcome, StoreError> {
        self.cas(key, expected, Some(value), change, Some(listing))
            .await
    }

    async fn relist(
        &self,
        key: &str,
        version: Version,
        listing: &Listing,
    ) -> Result<bool, StoreError> {
        let outcome = self
            .cas(key, Some(version), None, None, Some(listing))
            .await?;
        Ok(matches!(outcome, CasOutcome::Written(_)))
    }

    async fn list_index(&self, query: &IndexQuery<'_>) -> Result<Vec<Listed>, StoreError> {
        check_query(query)?;
        let limit = query.limit.min(MAX_INDEX_LIMIT);
        if limit == 0 {
            return Ok(Vec::new());
        }
        let sets: Vec<String> = query.sets.iter().map(|s| (*s).to_owned()).collect();
        let tag = query.tag.map(str::to_owned);
        let after = query.after.map(|p| (descending(p.rank), p.key.clone()));
        let stop = query.rank_above.map(descending);
        let rows = self
            .blocking(move |db| {
                let txn = db.begin_read()?;
                let mut rows = Vec::new();
                for set in &sets {
                    page(
                        &txn,
                        set,
                        tag.as_deref(),
                        after.as_ref(),
                        stop,
                        limit,
                        &mut rows,
                    )?;
                }
                Ok(rows)
            })
            .await?;
        Ok(merge(rows, limit))
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
                    .any(|(op, o)| op.change.is_some() && matches!(o, Ok(CasOutcome::Written(_))));
                if logged {
                    appended.notify_waiters();
                }
                for (op, outcome) in batch.into_iter().zip(outcomes) {
                    let _ = op.reply.send(outcome);
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
/// when anything was written. All or nothing: on a redb error no op is
/// applied (an op refused on its own, e.g. a listing moving set, is just
/// not applied).
fn apply_batch(
    db: &Database,
    batch: &[WriteOp],
) -> Result<Vec<Result<CasOutcome, StoreError>>, ::redb::Error> {
    let txn = db.begin_write()?;
    let mut outcomes = Vec::with_capacity(batch.len());
    {
        let mut table = txn.open_table(KV)?;
        let mut log = txn.open_table(LOG)?;
        let mut index = Index {
            time: txn.open_table(LIST_TIME)?,
            tag: txn.open_table(LIST_TAG)?,
            listed: txn.open_table(LISTED)?,
        };
        let mut next_seq = log.last()?.map_or(1, |(seq, _)| seq.value() + 1);
        for op in batch {
            let key = op.key.as_str();
            if let Some(listing) = &op.listing
                && let Err(e) = index.check_move(key, listing)?
            {
                outcomes.push(Err(e));
                continue;
            }
            let current = table.get(key)?.map(|guard| Version::new(guard.value().0));
            if current != op.expected {
                outcomes.push(Ok(CasOutcome::Conflict { current }));
                continue;
            }
            if let Some(listing) = &op.listing {
                index.replace(key, listing)?;
            }
            let Some(value) = &op.value else {
                // A relist: the listing alone, at the version it matched.
                outcomes.push(Ok(CasOutcome::Written(current.unwrap_or(Version::FIRST))));
                continue;
            };
            let next = current.map_or(1, |v| v.get() + 1);
            table.insert(key, (next, value.as_slice()))?;
            if let Some(change) = &op.change {
                log.insert(next_seq, (key, change.as_slice()))?;
                next_seq += 1;
            }
            outcomes.push(Ok(CasOutcome::Written(Version::new(next))));
        }
    }
    if outcomes
        .iter()
        .any(|o| matches!(o, Ok(CasOutcome::Written(_))))
    {
        txn.commit()?;
    } else {
        // Nothing changed: skip the fsync of a commit.
        txn.abort()?;
    }
    Ok(outcomes)
}

/// The listing tables of one write transaction.
struct Index<'txn> {
    time: ::redb::Table<'txn, (&'static str, u64, &'static str), (&'static str, &'static str)>,
    tag: ::redb::Table<'txn, (&'static str, &'static str, u64, &'static str), &'static str>,
    listed: ::redb::Table<'txn, &'static str, (&'static str, &'static str, i64, &'static str)>,
}

impl Index<'_> {
    /// `Ok(Err(_))` when `listing` would move `key` to another set.
    fn check_move(
        &self,
        key: &str,
        listing: &Listing,
    ) -> Result<Result<(), StoreError>, ::redb::Error> {
        let current = self.listed.get(key)?.map(|guard| {
            let (set, tag, rank, label) = guard.value();
            Listing {
                set: set.to_owned(),
                tag: tag.to_owned(),
                rank,
                label: label.to_owned(),
            }
        });
        Ok(super::memory::check_move(key, listing, current.as_ref()))
    }

    /// Replaces the listing of `key`.
    fn replace(&mut self, key: &str, listing: &Listing) -> Result<(), ::redb::Error> {
        let old = self.listed.remove(key)?.map(|guard| {
            let (set, tag, rank, _) = guard.value();
            (set.to_owned(), tag.to_owned(), descending(rank))
        });
        if let Some((set, tag, rank)) = old {
            self.time.remove((set.as_str(), rank, key))?;
            self.tag.remove((set.as_str(), tag.as_str(), rank, key))?;
        }
        let rank = descending(listing.rank);
        let (set, tag, label) = (
            listing.set.as_str(),
            listing.tag.as_str(),
            listing.label.as_str(),
        );
        self.time.insert((set, rank, key), (tag, label))?;
        self.tag.insert((set, tag, rank, key), label)?;
        self.listed.insert(key, (set, tag, listing.rank, label))?;
        Ok(())
    }
}

/// Up to `limit` rows of `set` (of `tag`, if given) strictly after
/// `after` and before the descending rank `stop`, appended to `rows`.
fn page(
    txn: &::redb::ReadTransaction,
    set: &str,
    tag: Option<&str>,
    after: Option<&(u64, String)>,
    stop: Option<u64>,
    limit: usize,
    rows: &mut Vec<Listed>,
) -> Result<(), ::redb::Error> {
    let row = |rank: u64, key: &str, tag: &str, label: &str| Listed {
        key: key.to_owned(),
        listing: Listing {
            set: set.to_owned(),
            tag: tag.to_owned(),
            rank: rank_of(rank),
            label: label.to_owned(),
        },
    };
    let mut taken = 0;
    match tag {
        None => {
            let table = txn.open_table(LIST_TIME)?;
            let lower = match after {
                Some((rank, key)) => Bound::Excluded((set, *rank, key.as_str())),
                None => Bound::Included((set, 0, "")),
            };
            let upper = stop.map_or(Bound::Unbounded, |stop| Bound::Excluded((set, stop, "")));
            for entry in table.range::<(&str, u64, &str)>((lower, upper))? {
                let (k, v) = entry?;
                let ((s, rank, key), (tag, label)) = (k.value(), v.value());
                if taken == limit || s != set {
                    break;
                }
                rows.push(row(rank, key, tag, label));
                taken += 1;
            }
        }
        Some(tag) => {
            let table = txn.open_table(LIST_TAG)?;
            let lower = match after {
                Some((rank, key)) => Bound::Excluded((set, tag, *rank, key.as_str())),
                None => Bound::Included((set, tag, 0, "")),
            };
            let upper = stop.map_or(Bound::Unbounded, |stop| {
                Bound::Excluded((set, tag, stop, ""))
            });
            for entry in table.range::<(&str, &str, u64, &str)>((lower, upper))? {
                let (k, v) = entry?;
                let ((s, t, rank, key), label) = (k.value(), v.value());
                if taken == limit || s != set || t != tag {
                    break;
                }
                rows.push(row(rank, key, tag, label));
                taken += 1;
            }
        }
    }
    Ok(())
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

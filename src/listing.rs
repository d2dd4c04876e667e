//! Listing resources by kind, status and update time, newest first: what
//! `GET /v1/resources` and `ims-callback list` read, and `ims-callback
//! reindex`, which lists a store written before the index existed.
//!
//! Every resource write of the pipeline also sets the resource's place in
//! the store's listing index ([`crate::store::index`]) in the same atomic
//! write as its state and its change-log entry: set = kind, tag = status,
//! rank = the stamp of its newest event (`updated_at`, in nanoseconds),
//! label = `updated_at` as IMS sent it. A page is a range read of that
//! index, so it costs O(page) whatever the store holds.
//!
//! # Order and paging guarantee
//!
//! Resources are listed by `(updated_at descending, key ascending)`, a
//! total order. The cursor (`next`) is the position of the last resource
//! returned; the next page holds the resources strictly after it.
//! A resource's `updated_at` is the newest `EventTime` it has merged, so it
//! never decreases: a write can only move a resource towards the front.
//! Hence, for one paging from the first page until `next` is null, while
//! writes continue:
//!
//! 1. **no resource appears twice**;
//! 2. **every resource that matches the filters throughout and is not
//!    updated meanwhile appears exactly once**, wherever the writes land;
//! 3. a resource updated meanwhile appears at most once: before its
//!    update if the paging had reached it, else not at all (it moved to
//!    the front, behind the cursor), with the state it had when its page
//!    was read.
//!
//! A listing that must also see what changed while it paged reads the
//! change feed (`GET /v1/changes`) from a cursor taken before its first
//! page: every update of case 3 is there. A page is read from the index
//! alone; the state (`GET /v1/resources/{kind}/{id}`) may be newer.

use serde::Serialize;

use crate::event::types::Timestamp;
use crate::state::{ResourceKind, ResourceState};
use crate::store::{IndexQuery, Listing, Position, Store, StoreError};

/// Largest page; larger limits are refused.
pub const MAX_LIMIT: usize = 1000;

/// Page size when no limit is given.
pub const DEFAULT_LIMIT: usize = 100;

/// Keys read per store call while reindexing.
const REINDEX_BATCH: usize = 100;

/// Compare-and-set rounds a reindex spends on one resource written
/// concurrently before giving up on it.
const REINDEX_ATTEMPTS: u32 = 16;

/// Which resources to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Only this kind (all kinds without).
    pub kind: Option<ResourceKind>,
    /// Only this status, exactly as shown by the state (`status`).
    pub status: Option<String>,
    /// Only resources updated strictly after this time.
    pub updated_after: Option<Timestamp>,
}

/// One listed resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ListedResource {
    /// The resource key (`job/…`).
    pub key: String,
    /// Its kind (`media`, `job`, `task`, `live-record`).
    pub kind: String,
    /// Its status.
    pub status: String,
    /// The `EventTime` of its newest event, as IMS sent it.
    pub updated_at: String,
}

/// A page of the listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ListPage {
    /// The resources, newest first.
    pub resources: Vec<ListedResource>,
    /// The cursor of the next page, `None` when this is the last.
    pub next: Option<String>,
}

/// Why a listing failed.
#[derive(Debug, thiserror::Error)]
pub enum ListError {
    /// A filter, limit or cursor is malformed (answer 400).
    #[error("{0}")]
    BadRequest(String),
    /// The store failed; see [`StoreError::is_retryable`].
    #[error(transparent)]
    Store(StoreError),
    /// A stored state cannot be decoded (while reindexing).
    #[error("stored record {key} is unreadable: {message}")]
    Corrupt {
        /// The record's key.
        key: String,
        /// The decoding error.
        message: String,
    },
}

impl From<StoreError> for ListError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::InvalidCursor(message) => ListError::BadRequest(message),
            other => ListError::Store(other),
        }
    }
}

/// The listing of a resource's state, or `None` for one no event has
/// touched (there is nothing to list it by).
pub fn listing_of(kind: ResourceKind, state: &ResourceState) -> Option<Listing> {
    let newest = state.history.last()?;
    Some(Listing {
        set: kind.as_str().to_owned(),
        tag: state.status.clone(),
        rank: newest.stamp.nanos,
        label: state.updated_at.clone().unwrap_or_default(),
    })
}

/// Parses a kind as given by a client.
pub fn parse_kind(text: &str) -> Result<ResourceKind, ListError> {
    ResourceKind::parse(text).ok_or_else(|| {
        ListError::BadRequest(format!(
            "unknown kind `{text}` (expected media, job, task or live-record)"
        ))
    })
}

/// Parses `updated_after` as given by a client: a UTC RFC 3339 time.
pub fn parse_time(text: &str) -> Result<Timestamp, ListError> {
    Timestamp::parse(text.to_owned()).map_err(|_| {
        ListError::BadRequest(format!(
            "updated_after `{text}` is not a UTC time such as 2026-01-01T00:00:00Z"
        ))
    })
}

/// Parses a cursor as given by a client (a `next` from an earlier page).
pub fn parse_cursor(text: &str) -> Result<Position, ListError> {
    text.parse().map_err(ListError::from)
}

/// Checks a limit as given by a client: 1 to [`MAX_LIMIT`].
pub fn check_limit(limit: usize) -> Result<usize, ListError> {
    if (1..=MAX_LIMIT).contains(&limit) {
        Ok(limit)
    } else {
        Err(ListError::BadRequest(format!(
            "limit must be between 1 and {MAX_LIMIT}, got {limit}"
        )))
    }
}

/// Up to `limit` resources matching `filter` after `after` (from the
/// newest without), newest first.
pub async fn page<S: Store>(
    store: &S,
    filter: &Filter,
    after: Option<&Position>,
    limit: usize,
) -> Result<ListPage, ListError> {
    let limit = check_limit(limit)?;
    let every: Vec<&str> = ResourceKind::ALL.iter().map(|k| k.as_str()).collect();
    let one;
    let sets: &[&str] = match filter.kind {
        Some(kind) => {
            one = [kind.as_str()];
            &one
        }
        None => &every,
    };
    let rank_above = filter.updated_after.as_ref().map(|t| {
        i64::try_from(t.unix_nanos()).unwrap_or(if t.unix_nanos() < 0 {
            i64::MIN
        } else {
            i64::MAX
        })
    });
    // One row more than the page: whether it exists says whether another
    // page follows, so the last page says so (`next` null).
    let mut rows = store
        .list_index(&IndexQuery {
            sets,
            tag: filter.status.as_deref(),
            after,
            rank_above,
            limit: limit + 1,
        })
        .await?;
    let more = rows.len() > limit;
    rows.truncate(limit);
    let next = more
        .then(|| rows.last().map(|row| row.position().to_string()))
        .flatten();
    let resources = rows
        .into_iter()
        .map(|row| ListedResource {
            key: row.key,
            kind: row.listing.set,
            status: row.listing.tag,
            updated_at: row.listing.label,
        })
        .collect();
    Ok(ListPage { resources, next })
}

/// What a reindex did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Reindexed {
    /// Resources whose listing was written.
    pub listed: u64,
    /// Resources with nothing to list (no event merged).
    pub skipped: u64,
}

/// Sets the listing of every stored resource from its state: for a store
/// written before the index existed (or by a version that did not keep
/// it). Safe while the receiver runs: each listing is written only if
/// the state it was derived from is still the stored one (else re-read),
/// and writing one again is harmless.
pub async fn reindex<S: Store>(store: &S) -> Result<Reindexed, ListError> {
    let mut done = Reindexed::default();
    for kind in ResourceKind::ALL {
        let prefix = format!("{}/", kind.as_str());
        let mut after: Option<String> = None;
        loop {
            let batch = store
                .list_prefix(&prefix, after.as_deref(), REINDEX_BATCH)
                .await?;
            let Some((last, _)) = batch.last() else { break };
            after = Some(last.clone());
            for (key, mut found) in batch {
                let mut attempts = 0;
                loop {
                    let state: ResourceState =
                        serde_json::from_slice(&found.value).map_err(|e| ListError::Corrupt {
                            key: key.clone(),
                            message: e.to_string(),
                        })?;
                    let Some(listing) = listing_of(kind, &state) else {
                        done.skipped += 1;
                        break;
                    };
                    if store.relist(&key, found.version, &listing).await? {
                        done.listed += 1;
                        break;
                    }
                    attempts += 1;
                    match store.get(&key).await? {
                        Some(now) if attempts < REINDEX_ATTEMPTS => found = now,
                        _ => {
                            return Err(ListError::Store(StoreError::Unavailable(format!(
                                "{key} kept changing while being reindexed; run reindex again"
                            ))));
                        }
                    }
                }
            }
        }
    }
    Ok(done)
}

//! The change feed: what the pipeline appends to the store's change log
//! for every resource whose state changed, and how the feed is read back
//! (by `GET /v1/changes` and `ims-callback changes`).
//!
//! The store keeps each entry as opaque bytes next to the key it records;
//! this module gives them their shape. An entry's id is the store's
//! ([`ChangeId`], `PARTITION:SEQ`) and is added when it is read, so it is
//! never stored twice. `at` is the event's `EventTime`: the feed, like the
//! state, is free of the receiver's clock.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::store::{ChangeId, Cursor, LogEntry, Store, StoreError, read_log_waiting};

/// Most changes one read returns; larger limits are refused.
pub const MAX_LIMIT: usize = crate::store::MAX_LOG_LIMIT;

/// Changes a read returns when it names no limit.
pub const DEFAULT_LIMIT: usize = 100;

/// Longest a read may wait for a first change.
pub const MAX_WAIT: Duration = Duration::from_secs(20);

/// How often a waiting read looks for changes other processes wrote (this
/// process's own writes wake it at once).
pub const POLL_INTERVAL: Duration = Duration::from_millis(250);

/// One change as the pipeline records it: the resource's state after an
/// event, and what the event was.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeRecord {
    /// The resource key (`media/…`, `job/…`).
    pub key: String,
    /// The resource kind (`media`, `job`, `task`, `live-record`).
    pub kind: String,
    /// The resource's status after the change.
    pub status: String,
    /// Its status before, or `None` when the change created it.
    pub previous_status: Option<String>,
    /// The `EventType` of the event that made the change.
    pub event_type: String,
    /// That event's fingerprint (its raw record is `event/{fingerprint}`).
    pub fingerprint: String,
    /// That event's `EventTime`, as IMS sent it.
    pub at: String,
    /// The resource's state after the change, as `GET /v1/resources` shows it.
    pub state: Value,
}

impl ChangeRecord {
    /// The bytes appended to the log.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a change record serialises")
    }
}

/// One change read from the feed: its id and its record.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    /// Unique, stable, increasing along its log partition.
    pub id: String,
    /// What changed.
    #[serde(flatten)]
    pub record: ChangeRecord,
}

/// A page of the feed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChangesPage {
    /// The changes, in log order (per partition on a partitioned log).
    pub changes: Vec<Change>,
    /// The cursor to read on from (the same one when `changes` is empty).
    pub next: String,
}

/// Why a read of the feed failed.
#[derive(Debug, thiserror::Error)]
pub enum ChangesError {
    /// The cursor or limit is malformed (answer 400).
    #[error("{0}")]
    BadRequest(String),
    /// The store failed; see [`StoreError::is_retryable`].
    #[error(transparent)]
    Store(StoreError),
    /// A log entry cannot be decoded.
    #[error("change {id} is unreadable: {message}")]
    Corrupt {
        /// The entry's id.
        id: ChangeId,
        /// The decoding error.
        message: String,
    },
}

impl From<StoreError> for ChangesError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::InvalidCursor(message) => ChangesError::BadRequest(message),
            other => ChangesError::Store(other),
        }
    }
}

/// Parses a cursor as given by a client (`after`).
pub fn parse_cursor(text: &str) -> Result<Cursor, ChangesError> {
    text.parse().map_err(ChangesError::from)
}

/// Checks a limit as given by a client: 1 to [`MAX_LIMIT`].
pub fn check_limit(limit: usize) -> Result<usize, ChangesError> {
    if (1..=MAX_LIMIT).contains(&limit) {
        Ok(limit)
    } else {
        Err(ChangesError::BadRequest(format!(
            "limit must be between 1 and {MAX_LIMIT}, got {limit}"
        )))
    }
}

/// Up to `limit` changes after `after` (`None` = from the oldest kept),
/// waiting up to `wait` for the first one.
pub async fn read<S: Store>(
    store: &S,
    after: Option<&Cursor>,
    limit: usize,
    wait: Duration,
) -> Result<ChangesPage, ChangesError> {
    let page = read_log_waiting(store, after, limit, wait.min(MAX_WAIT), POLL_INTERVAL).await?;
    let changes = page
        .entries
        .into_iter()
        .map(decode)
        .collect::<Result<_, _>>()?;
    Ok(ChangesPage {
        changes,
        next: page.next.to_string(),
    })
}

fn decode(entry: LogEntry) -> Result<Change, ChangesError> {
    Change::from_entry(entry)
}

impl Change {
    /// The change a log entry holds.
    pub fn from_entry(entry: LogEntry) -> Result<Change, ChangesError> {
        let record = serde_json::from_slice(&entry.value).map_err(|e| ChangesError::Corrupt {
            id: entry.id,
            message: e.to_string(),
        })?;
        Ok(Change {
            id: entry.id.to_string(),
            record,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_and_cursors_are_checked() {
        assert_eq!(check_limit(1).unwrap(), 1);
        assert_eq!(check_limit(MAX_LIMIT).unwrap(), MAX_LIMIT);
        for bad in [0, MAX_LIMIT + 1] {
            let err = check_limit(bad).unwrap_err().to_string();
            assert!(err.contains("limit must be between 1 and"), "{err}");
        }
        assert!(matches!(
            parse_cursor("x1"),
            Err(ChangesError::BadRequest(_))
        ));
        assert_eq!(parse_cursor("3.0").unwrap().positions(), [3, 0]);
    }
}

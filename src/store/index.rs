//! The listing index: a secondary index the store keeps next to its keys,
//! written in the same atomic write as the value it describes.
//!
//! A key may have one [`Listing`]: a `set` it belongs to (the layer above
//! uses the resource kind), a `tag` within the set (the status), a `rank`
//! (the update time, in nanoseconds) and a `label` returned with it (the
//! update time as text). [`Store::list_index`](super::Store::list_index)
//! reads a page of one or more sets, optionally of one tag, in **position
//! order**: rank descending, then key ascending — newest first, ties broken
//! by key, a total order because a key is listed once. A page starts
//! strictly after a [`Position`] and may stop at a rank bound, so it costs
//! O(page) on every backend, never a scan.
//!
//! A write that carries a listing replaces the key's previous one (the
//! store remembers it, so the caller never has to say what it was); a
//! write without one leaves it as it was. A key's set must never change
//! (the backends keep one structure per set and refuse a move).

use std::fmt;
use std::str::FromStr;

use super::{StoreError, check_key};

/// Most rows one [`Store::list_index`](super::Store::list_index) call
/// returns: one more than the largest listing page, so a page can tell
/// whether another follows.
pub const MAX_INDEX_LIMIT: usize = 1001;

/// Longest `set`, `tag` or `label`, in bytes.
pub const MAX_LISTING_FIELD: usize = 256;

/// Where a key is listed. `set`, `tag` and `label` are UTF-8 without NUL;
/// `set` also without `{`, `}` (it names Redis keys).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Listing {
    /// The set (e.g. the resource kind).
    pub set: String,
    /// The tag within the set (e.g. the status).
    pub tag: String,
    /// The rank: higher is listed first.
    pub rank: i64,
    /// Returned with the row, not interpreted.
    pub label: String,
}

/// A place in position order: a row's rank and key. Shown as
/// `RANK.HEXKEY` (the key's bytes as lowercase hex), so it can travel in
/// a URL unescaped.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Position {
    /// The rank.
    pub rank: i64,
    /// The store key.
    pub key: String,
}

impl Position {
    /// The order of positions: rank descending, then key ascending.
    pub fn order(&self) -> (u64, &str) {
        (descending(self.rank), &self.key)
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.rank, hex::encode(&self.key))
    }
}

impl FromStr for Position {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, StoreError> {
        let invalid = |why: &str| {
            let shown: String = s.chars().take(64).collect();
            StoreError::InvalidCursor(format!("listing cursor `{shown}` {why}"))
        };
        let (rank, key) = s
            .split_once('.')
            .ok_or_else(|| invalid("must be RANK.HEXKEY"))?;
        let rank = rank
            .parse::<i64>()
            .map_err(|_| invalid("has a rank that is not a 64-bit integer"))?;
        let key = hex::decode(key).map_err(|_| invalid("has a key that is not hex"))?;
        let key = String::from_utf8(key).map_err(|_| invalid("has a key that is not UTF-8"))?;
        check_key(&key).map_err(|e| invalid(&e.to_string()))?;
        Ok(Position { rank, key })
    }
}

/// What to list.
#[derive(Debug, Clone, Copy)]
pub struct IndexQuery<'a> {
    /// The sets to merge (at least one).
    pub sets: &'a [&'a str],
    /// Only rows with this tag.
    pub tag: Option<&'a str>,
    /// Only rows strictly after this position.
    pub after: Option<&'a Position>,
    /// Only rows whose rank is strictly greater.
    pub rank_above: Option<i64>,
    /// At most this many rows (capped at [`MAX_INDEX_LIMIT`]).
    pub limit: usize,
}

/// One row of the index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// The store key.
    pub key: String,
    /// Its listing.
    pub listing: Listing,
}

impl Listed {
    /// The row's position.
    pub fn position(&self) -> Position {
        Position {
            rank: self.listing.rank,
            key: self.key.clone(),
        }
    }

    pub(crate) fn order(&self) -> (u64, &str) {
        (descending(self.listing.rank), &self.key)
    }
}

/// `rank` as an unsigned number that sorts the opposite way: the backends
/// store it in ascending order and read newest first.
pub(crate) fn descending(rank: i64) -> u64 {
    !((rank as u64) ^ (1 << 63))
}

/// The inverse of [`descending`].
pub(crate) fn rank_of(descending: u64) -> i64 {
    ((!descending) ^ (1 << 63)) as i64
}

/// Refuse listings the backends cannot all store the same way.
pub(crate) fn check_listing(key: &str, listing: &Listing) -> Result<(), StoreError> {
    let bad = |why: String| Err(StoreError::InvalidKey(format!("listing of `{key}`: {why}")));
    if key.contains('\0') {
        return bad("a listed key must not contain NUL".into());
    }
    for (name, field) in [
        ("set", &listing.set),
        ("tag", &listing.tag),
        ("label", &listing.label),
    ] {
        if field.len() > MAX_LISTING_FIELD || field.contains('\0') {
            return bad(format!(
                "{name} must be at most {MAX_LISTING_FIELD} bytes, without NUL"
            ));
        }
    }
    if listing.set.is_empty() || listing.set.contains(['{', '}']) {
        return bad("set must be non-empty, without `{` or `}`".into());
    }
    Ok(())
}

/// Refuse queries no backend can answer.
pub(crate) fn check_query(query: &IndexQuery<'_>) -> Result<(), StoreError> {
    if query.sets.is_empty() {
        return Err(StoreError::InvalidKey("a listing names no set".into()));
    }
    Ok(())
}

/// Rows of several sets merged into position order, the first `limit` kept.
pub(crate) fn merge(mut rows: Vec<Listed>, limit: usize) -> Vec<Listed> {
    rows.sort_unstable_by(|a, b| a.order().cmp(&b.order()));
    rows.dedup_by(|a, b| a.key == b.key);
    rows.truncate(limit);
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descending_reverses_the_order_and_round_trips() {
        let ranks = [i64::MIN, -1, 0, 1, 1_767_225_605_800_000_000, i64::MAX];
        for pair in ranks.windows(2) {
            assert!(descending(pair[0]) > descending(pair[1]));
        }
        for rank in ranks {
            assert_eq!(rank_of(descending(rank)), rank);
        }
    }

    #[test]
    fn positions_round_trip_and_reject_garbage() {
        let p = Position {
            rank: -5,
            key: "job/ä".into(),
        };
        assert_eq!(p.to_string().parse::<Position>().unwrap(), p);
        for bad in [
            "",
            "5",
            "x.6a",
            "5.zz",
            "5.ff",
            "5.",
            "99999999999999999999.6a",
        ] {
            let err = bad.parse::<Position>().unwrap_err();
            assert!(matches!(err, StoreError::InvalidCursor(_)), "{bad}: {err}");
        }
    }
}

//! `GET /v1/changes?after=<cursor>&limit=<n>&wait=<seconds>`: the change
//! feed (see [`crate::changes`]), behind the read API's bearer token.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use std::time::Duration;

use super::AppState;
use super::error::AppError;
use super::routes::check_token;
use crate::changes::{self, ChangesError, ChangesPage};
use crate::ingest::IngestError;

/// The query of one feed read.
#[derive(Debug, Default, PartialEq)]
struct FeedQuery {
    after: Option<String>,
    limit: Option<String>,
    wait: Option<String>,
}

/// Splits the query into its three parameters; anything else is refused,
/// so a typo cannot silently read from the start of the log.
fn parse_query(query: &str) -> Result<FeedQuery, AppError> {
    let mut parsed = FeedQuery::default();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = percent_encoding::percent_decode_str(value)
            .decode_utf8()
            .map_err(|_| AppError::BadRequest(format!("parameter `{name}` is not UTF-8")))?
            .into_owned();
        let slot = match name {
            "after" => &mut parsed.after,
            "limit" => &mut parsed.limit,
            "wait" => &mut parsed.wait,
            _ => {
                return Err(AppError::BadRequest(format!(
                    "unknown parameter `{name}` (known: after, limit, wait)"
                )));
            }
        };
        if slot.replace(value).is_some() {
            return Err(AppError::BadRequest(format!(
                "parameter `{name}` given twice"
            )));
        }
    }
    Ok(parsed)
}

/// `GET /v1/changes`: changes in log order after `after` (from the oldest
/// kept without it), at most `limit` (default 100, at most 1000), waiting
/// up to `wait` seconds (at most 20) for the first one.
pub async fn changes(
    State(app): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Json<ChangesPage>, AppError> {
    check_token(&app, &headers)?;
    let query = parse_query(uri.query().unwrap_or(""))?;
    let after = query
        .after
        .as_deref()
        .map(changes::parse_cursor)
        .transpose()
        .map_err(feed_error)?;
    let limit = match query.limit.as_deref() {
        None => changes::DEFAULT_LIMIT,
        Some(text) => text
            .parse()
            .map_err(|_| AppError::BadRequest(format!("limit `{text}` is not a whole number")))
            .and_then(|n| changes::check_limit(n).map_err(feed_error))?,
    };
    let max_wait = changes::MAX_WAIT.as_secs();
    let wait = match query.wait.as_deref() {
        None => 0,
        Some(text) => text
            .parse::<u64>()
            .ok()
            .filter(|&s| s <= max_wait)
            .ok_or_else(|| {
                AppError::BadRequest(format!(
                    "wait `{text}` must be whole seconds from 0 to {max_wait}"
                ))
            })?,
    };
    changes::read(
        app.ingest.store(),
        after.as_ref(),
        limit,
        Duration::from_secs(wait),
    )
    .await
    .map(Json)
    .map_err(feed_error)
}

fn feed_error(e: ChangesError) -> AppError {
    match e {
        ChangesError::BadRequest(message) => AppError::BadRequest(message),
        ChangesError::Store(e) if e.is_retryable() => AppError::Unavailable(e.to_string()),
        other => {
            tracing::error!(error = %other, "change feed unreadable");
            AppError::Ingest(IngestError::Internal(other.to_string()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parameters_are_checked() {
        assert_eq!(parse_query("").unwrap(), FeedQuery::default());
        let q = parse_query("after=0.3&limit=5&wait=2").unwrap();
        assert_eq!(q.after.as_deref(), Some("0.3"));
        assert_eq!(
            (q.limit.as_deref(), q.wait.as_deref()),
            (Some("5"), Some("2"))
        );
        assert_eq!(
            parse_query("after=0%2E3").unwrap().after.as_deref(),
            Some("0.3")
        );
        for (bad, says) in [
            ("afterr=1", "unknown parameter `afterr`"),
            ("limit=1&limit=2", "given twice"),
            ("after=%FF", "not UTF-8"),
        ] {
            let err = parse_query(bad).unwrap_err().to_string();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }
}

//! `GET /v1/resources?kind=K&status=S&updated_after=T&limit=N&cursor=C`:
//! resources newest first (see [`crate::listing`] for the order and the
//! paging guarantee), behind the read API's bearer token.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};

use super::AppState;
use super::error::AppError;
use super::routes::check_token;
use crate::ingest::IngestError;
use crate::listing::{self, Filter, ListError, ListPage};

/// The parameters, in the order they are documented.
const PARAMETERS: [&str; 5] = ["kind", "status", "updated_after", "limit", "cursor"];

/// Each known parameter's value; anything else is refused, so a typo
/// cannot silently widen a listing.
fn parse_query(query: &str) -> Result<[Option<String>; 5], AppError> {
    let mut values: [Option<String>; 5] = Default::default();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let Some(slot) = PARAMETERS.iter().position(|p| *p == name) else {
            return Err(AppError::BadRequest(format!(
                "unknown parameter `{name}` (known: {})",
                PARAMETERS.join(", ")
            )));
        };
        // `+` is a space in a form-encoded query.
        let value = value.replace('+', " ");
        let value = percent_encoding::percent_decode_str(&value)
            .decode_utf8()
            .map_err(|_| AppError::BadRequest(format!("parameter `{name}` is not UTF-8")))?
            .into_owned();
        if values[slot].replace(value).is_some() {
            return Err(AppError::BadRequest(format!(
                "parameter `{name}` given twice"
            )));
        }
    }
    Ok(values)
}

/// `GET /v1/resources`: a page of resources matching the filters.
pub async fn list(
    State(app): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Json<ListPage>, AppError> {
    check_token(&app, &headers)?;
    let [kind, status, updated_after, limit, cursor] = parse_query(uri.query().unwrap_or(""))?;
    let filter = Filter {
        kind: kind
            .as_deref()
            .map(listing::parse_kind)
            .transpose()
            .map_err(list_error)?,
        status,
        updated_after: updated_after
            .as_deref()
            .map(listing::parse_time)
            .transpose()
            .map_err(list_error)?,
    };
    let limit = match limit.as_deref() {
        None => listing::DEFAULT_LIMIT,
        Some(text) => text
            .parse()
            .map_err(|_| AppError::BadRequest(format!("limit `{text}` is not a whole number")))?,
    };
    let after = cursor
        .as_deref()
        .map(listing::parse_cursor)
        .transpose()
        .map_err(list_error)?;
    listing::page(app.ingest.store(), &filter, after.as_ref(), limit)
        .await
        .map(Json)
        .map_err(list_error)
}

fn list_error(e: ListError) -> AppError {
    match e {
        ListError::BadRequest(message) => AppError::BadRequest(message),
        ListError::Store(e) if e.is_retryable() => AppError::Unavailable(e.to_string()),
        other => {
            tracing::error!(error = %other, "listing unreadable");
            AppError::Ingest(IngestError::Internal(other.to_string()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parameters_are_checked() {
        let [kind, status, after, limit, cursor] = parse_query(
            "kind=job&status=Fail%20ed&updated_after=2026-01-01T00%3A00%3A00Z&limit=5&cursor=1.6a",
        )
        .unwrap();
        assert_eq!(kind.as_deref(), Some("job"));
        assert_eq!(status.as_deref(), Some("Fail ed"));
        assert_eq!(after.as_deref(), Some("2026-01-01T00:00:00Z"));
        assert_eq!(
            (limit.as_deref(), cursor.as_deref()),
            (Some("5"), Some("1.6a"))
        );
        assert_eq!(
            parse_query("status=a+b").unwrap()[1].as_deref(),
            Some("a b")
        );
        for (bad, says) in [
            ("kinds=job", "unknown parameter `kinds`"),
            ("kind=job&kind=media", "given twice"),
            ("status=%FF", "not UTF-8"),
        ] {
            let err = parse_query(bad).unwrap_err().to_string();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }
}

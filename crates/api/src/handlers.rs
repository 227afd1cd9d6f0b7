//! The routes every API has (health, the fallbacks) and what list routes share:
//! query parsing, `limit` and `cursor` checks.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use writ_store::LIST_LIMIT_MAX;

use crate::AppState;
use crate::error::ApiError;

/// 200 `ok` while every background task runs and makes progress; 503 naming the
/// ones that do not (revocation must never stop while the API looks healthy).
#[utoipa::path(get, path = "/healthz", security(()),
    responses(
        (status = 200, description = "every background task runs: `ok`", content_type = "text/plain", body = String),
        (status = 503, description = "`unhealthy:` and each problem, one per line: a task that stopped or stalled, the database unavailable", content_type = "text/plain", body = String),
    ))]
pub async fn healthz(State(state): State<AppState>) -> (StatusCode, String) {
    let problems = state.engine.health().problems();
    if problems.is_empty() {
        (StatusCode::OK, "ok\n".into())
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("unhealthy:\n{}\n", problems.join("\n")),
        )
    }
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        writ_engine::ErrorCode::MethodNotAllowed,
        "this endpoint does not take that method; see /openapi.json",
    )
}

pub async fn not_found() -> ApiError {
    ApiError::new(
        writ_engine::ErrorCode::NotFound,
        "no such endpoint; see /openapi.json",
    )
}

/// A list's `limit` as given, or 400 outside 1..=1000 (a silent clamp would hide a
/// client's mistake).
pub(crate) fn checked_limit(limit: Option<i64>) -> Result<Option<i64>, ApiError> {
    match limit {
        Some(n) if !(1..=LIST_LIMIT_MAX).contains(&n) => Err(ApiError::malformed(format!(
            "limit must be between 1 and {LIST_LIMIT_MAX}, not {n}"
        ))),
        other => Ok(other),
    }
}

/// A list's `cursor` (a previous page's `next`), or 400 if it is not one of this list's.
pub(crate) fn checked_cursor(
    cursor: Option<String>,
    key: writ_store::SortKey,
) -> Result<Option<writ_store::PageCursor>, ApiError> {
    cursor
        .map(|text| {
            writ_store::PageCursor::parse(&text, key).ok_or_else(|| {
                ApiError::malformed(format!(
                    "cursor {text:?} is not one this list gave; pass its `next` unchanged"
                ))
            })
        })
        .transpose()
}

pub(crate) fn query<T>(
    query: Result<Query<T>, axum::extract::rejection::QueryRejection>,
) -> Result<T, ApiError> {
    query
        .map(|Query(q)| q)
        .map_err(|e| ApiError::malformed(e.body_text()))
}

/// Where callers reach writ: `server.public_url`, or the scheme and `Host` this call
/// came with. No trailing slash.
pub(crate) fn public_base(state: &AppState, headers: &axum::http::HeaderMap) -> String {
    if let Some(public) = &state.engine.config().public_url {
        return public.trim_end_matches('/').to_string();
    }
    let scheme = if state.engine.config().tls.is_some() {
        "https"
    } else {
        "http"
    };
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    format!("{scheme}://{host}")
}

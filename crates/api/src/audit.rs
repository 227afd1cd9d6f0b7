//! `/v1/audit`: the ledger, a page at a time, and its verification.

use axum::Json;
use axum::extract::{Query, State};
use serde::{Deserialize, Serialize};
use writ_domain::ledger::Event;
use writ_engine::LedgerVerdict;

use crate::AppState;
use crate::auth::Authenticated;
use crate::error::ApiError;

use crate::handlers::{checked_limit, query};

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EventList {
    pub events: Vec<Event>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct VerifyResult {
    pub ok: bool,
    pub events: i64,
    pub head: String,
    /// When not ok: the first bad event's sequence number, if one is to blame.
    pub bad_seq: Option<i64>,
    pub problem: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    after: Option<i64>,
    limit: Option<i64>,
}

#[utoipa::path(get, path = "/v1/audit", params(("after" = Option<i64>, Query, minimum = 0), ("limit" = Option<i64>, Query, minimum = 1, maximum = 1000)),
    responses((status = 200, body = EventList)))]
pub async fn audit(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    params: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<EventList>, ApiError> {
    let params = query(params)?;
    let limit = checked_limit(params.limit)?.unwrap_or(100);
    if params.after.is_some_and(|after| after < 0) {
        return Err(ApiError::malformed(
            "after is a ledger sequence number: 0 or more",
        ));
    }
    let events = state
        .engine
        .audit_events(&caller, params.after.unwrap_or(0), limit)
        .await?;
    // Bounded in bytes as well as in events: some events carry whole records (and an
    // outsider chooses part of a rejected webhook's), so `limit` alone does not bound
    // an answer. At least one event is always sent; continue with `after`.
    let mut bytes = 0;
    let mut page = Vec::new();
    for event in events {
        bytes += serde_json::to_vec(&event).map_or(0, |text| text.len());
        if !page.is_empty() && bytes > AUDIT_ANSWER_BYTES_MAX {
            break;
        }
        page.push(event);
    }
    Ok(Json(EventList { events: page }))
}

#[utoipa::path(get, path = "/v1/audit/verify", responses((status = 200, body = VerifyResult)))]
pub async fn audit_verify(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> Result<Json<VerifyResult>, ApiError> {
    let _only_one = state.verifying.try_acquire().map_err(|_| {
        ApiError::new(
            writ_engine::ErrorCode::VerifyRunning,
            "a verification is running; try again when it has finished",
        )
    })?;
    Ok(Json(match state.engine.verify_ledger(&caller).await? {
        LedgerVerdict::Intact { events, head } => VerifyResult {
            ok: true,
            events,
            head,
            bad_seq: None,
            problem: None,
        },
        LedgerVerdict::Broken {
            events,
            head,
            error,
        } => VerifyResult {
            ok: false,
            events,
            head,
            bad_seq: error.seq(),
            problem: Some(error.to_string()),
        },
    }))
}

/// The most bytes of events one `GET /v1/audit` answer carries (beyond its first event).
pub const AUDIT_ANSWER_BYTES_MAX: usize = 1024 * 1024;

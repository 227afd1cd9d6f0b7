//! Reconciliation and findings: `POST /v1/reconcile`, `GET /v1/findings`,
//! `GET /v1/findings/{id}`, `POST /v1/findings/{id}/accept`.

use axum::Json;
use axum::extract::{Query, State};
use serde::{Deserialize, Serialize};
use writ_domain::{FindingKind, FindingReport, FindingState, Timestamp};
use writ_engine::{NewException, ReconcileReport};
use writ_store::FindingFilter;

use crate::AppState;
use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::handlers::query;
use crate::json::JsonBody;
use crate::segment::Segment;

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReconcileBody {
    /// Only this target; all targets when absent.
    pub target: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReconcileResult {
    pub reports: Vec<ReconcileReport>,
}

#[utoipa::path(post, path = "/v1/reconcile", request_body = ReconcileBody,
    responses((status = 200, body = ReconcileResult), (status = 403, description = "not_an_auditor"), (status = 404)))]
pub async fn reconcile(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    JsonBody(body): JsonBody<ReconcileBody>,
) -> Result<Json<ReconcileResult>, ApiError> {
    // A pass may change targets (revoke, reapply): auditors and admins start it, never
    // automation (services and agents are neither).
    state
        .engine
        .require_auditor(&caller, "start a reconciliation pass")?;
    let reports = state
        .engine
        .reconcile_targets(body.target.as_deref())
        .await?;
    Ok(Json(ReconcileResult { reports }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct FindingQuery {
    /// `open`, `accepted` or `resolved`; all when absent.
    #[param(value_type = Option<FindingState>)]
    pub state: Option<String>,
    pub target: Option<String>,
    /// `unmanaged`, `lingering`, `missing` or `not_permitted`.
    #[param(value_type = Option<FindingKind>)]
    pub kind: Option<String>,
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// A previous page's `next`.
    #[param(pattern = "^-?[0-9]{1,18}\\.[0-9a-fA-F-]{1,64}$")]
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FindingList {
    pub findings: Vec<FindingReport>,
    /// More follow: pass this as `cursor` for the next page. Absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

#[utoipa::path(get, path = "/v1/findings", params(FindingQuery),
    responses((status = 200, body = FindingList), (status = 400)))]
pub async fn list_findings(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    params: Result<Query<FindingQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<FindingList>, ApiError> {
    let params = query(params)?;
    let finding_state = params
        .state
        .map(|s| {
            FindingState::parse(&s).ok_or_else(|| {
                ApiError::malformed(format!(
                    "unknown finding state {s:?}; expected open, accepted or resolved"
                ))
            })
        })
        .transpose()?;
    let kind = params
        .kind
        .map(|k| {
            FindingKind::parse(&k).ok_or_else(|| {
                ApiError::malformed(format!(
                    "unknown finding kind {k:?}; expected unmanaged, lingering, missing, not_permitted or entitlement_changed"
                ))
            })
        })
        .transpose()?;
    let filter = FindingFilter {
        state: finding_state,
        target: params.target,
        kind,
        entitlements: None,
        limit: crate::handlers::checked_limit(params.limit)?,
        after: crate::handlers::checked_cursor(params.cursor, writ_store::FINDING_ORDER)?,
    };
    let page = state.engine.visible_findings(&caller, filter).await?;
    Ok(Json(FindingList {
        findings: page.items,
        next: page.next.map(|cursor| cursor.to_text()),
    }))
}

#[utoipa::path(get, path = "/v1/findings/{id}", responses((status = 200, body = FindingReport), (status = 404)))]
pub async fn get_finding(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Segment(id): Segment,
) -> Result<Json<FindingReport>, ApiError> {
    Ok(Json(
        state
            .engine
            .visible_finding(&caller, state.engine.resolve_finding(&id).await?)
            .await?,
    ))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptBody {
    /// The user who answers for the exception.
    pub owner: String,
    pub reason: String,
    /// When the exception ends and the finding reopens (RFC 3339); required.
    pub expires_at: Timestamp,
}

#[utoipa::path(post, path = "/v1/findings/{id}/accept", request_body = AcceptBody,
    responses((status = 200, body = FindingReport), (status = 403), (status = 404), (status = 409), (status = 422)))]
pub async fn accept_finding(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Segment(id): Segment,
    JsonBody(body): JsonBody<AcceptBody>,
) -> Result<Json<FindingReport>, ApiError> {
    let exception = NewException {
        owner: body.owner,
        reason: body.reason,
        expires_at: body.expires_at,
    };
    let report = state
        .engine
        .accept_finding(&caller, state.engine.resolve_finding(&id).await?, exception)
        .await?;
    Ok(Json(report))
}

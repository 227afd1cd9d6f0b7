//! `/v1/grants`: leases, ending them early, and collecting a short-lived credential.

use axum::Json;
use axum::extract::{Query, State};
use serde::{Deserialize, Serialize};
use writ_domain::lifecycle::GrantState;
use writ_domain::{Grant, Timestamp};
use writ_engine::IssuedCredential;
use writ_store::GrantFilter;

use crate::AppState;
use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::json::JsonBody;
use crate::segment::Segment;

use crate::handlers::{checked_cursor, checked_limit, query};

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeBody {
    /// At most 4,096 bytes.
    #[serde(default)]
    #[schema(max_length = 4096)]
    pub reason: String,
}

/// A grant, plus the scheduler's bookkeeping when an attempt on the target failed.
/// Also read back by clients (writ's end-to-end tests assert on it, typed).
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GrantView {
    #[serde(flatten)]
    pub grant: Grant,
    /// The last error from the target, while applying or revoking keeps failing.
    pub last_error: Option<String>,
    #[serde(default)]
    pub attempts: i64,
    pub next_attempt_at: Option<Timestamp>,
    /// When a revocation that kept failing was escalated (`revocation.escalate_after`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub escalated_at: Option<Timestamp>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct GrantList {
    pub grants: Vec<GrantView>,
    /// More follow: pass this as `cursor` for the next page. Absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantQuery {
    subject: Option<String>,
    state: Option<String>,
    entitlement: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
}

pub(crate) async fn grant_view(state: &AppState, grant: Grant) -> Result<GrantView, ApiError> {
    let job = if matches!(
        grant.state,
        GrantState::Pending | GrantState::Revoking | GrantState::Failed
    ) {
        state
            .engine
            .grant_job(grant.id)
            .await?
            .filter(|job| job.attempts > 0)
    } else {
        None
    };
    Ok(GrantView {
        last_error: job.as_ref().and_then(|j| j.last_error.clone()),
        attempts: job.as_ref().map_or(0, |j| j.attempts),
        escalated_at: job.as_ref().and_then(|j| j.escalated_at),
        next_attempt_at: job.map(|j| j.due_at),
        grant,
    })
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CollectedCredential {
    pub grant: Grant,
    pub credential: IssuedCredential,
}

#[utoipa::path(post, path = "/v1/grants/{id}/credential",
    responses((status = 200, body = CollectedCredential), (status = 403), (status = 404), (status = 409), (status = 503)))]
pub async fn collect_credential(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Segment(id): Segment,
) -> Result<Json<CollectedCredential>, ApiError> {
    let (grant, credential) = state
        .engine
        .issue_credential(&caller, state.engine.resolve_grant(&id).await?)
        .await?;
    Ok(Json(CollectedCredential { grant, credential }))
}

#[utoipa::path(get, path = "/v1/grants", params(("subject" = Option<String>, Query), ("state" = Option<writ_domain::lifecycle::GrantState>, Query),
    ("entitlement" = Option<String>, Query), ("limit" = Option<i64>, Query, minimum = 1, maximum = 1000),
    ("cursor" = Option<String>, Query, description = "a previous page's `next`", pattern = "^[0-9a-fA-F-]{1,64}$")), responses((status = 200, body = GrantList)))]
pub async fn list_grants(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    params: Result<Query<GrantQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<GrantList>, ApiError> {
    let params = query(params)?;
    let grant_state = params
        .state
        .map(|s| {
            GrantState::parse(&s)
                .ok_or_else(|| ApiError::malformed(format!("unknown grant state {s:?}")))
        })
        .transpose()?;
    let filter = GrantFilter {
        state: grant_state,
        subject: params.subject,
        entitlement: params.entitlement,
        involving: None,
        limit: checked_limit(params.limit)?,
        after: checked_cursor(params.cursor, writ_store::GRANT_ORDER)?,
    };
    let page = state.engine.visible_grants(&caller, filter).await?;
    let mut grants = Vec::new();
    for grant in page.items {
        grants.push(grant_view(&state, grant).await?);
    }
    Ok(Json(GrantList {
        grants,
        next: page.next.map(|cursor| cursor.to_text()),
    }))
}

#[utoipa::path(get, path = "/v1/grants/{id}", responses((status = 200, body = GrantView), (status = 404)))]
pub async fn get_grant(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Segment(id): Segment,
) -> Result<Json<GrantView>, ApiError> {
    let grant = state
        .engine
        .visible_grant(&caller, state.engine.resolve_grant(&id).await?)
        .await?;
    Ok(Json(grant_view(&state, grant).await?))
}

/// How an evidence document is written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EvidenceFormat {
    /// For machines: what `writ evidence --json` writes.
    #[default]
    Json,
    /// For people, with the JSON at its end: what `writ evidence` writes.
    Markdown,
}

/// How `GET /v1/grants/{id}/evidence` answers.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EvidenceQuery {
    /// `json` (the default) or `markdown`.
    #[param(inline)]
    pub format: Option<EvidenceFormat>,
}

#[utoipa::path(get, path = "/v1/grants/{id}/evidence", params(EvidenceQuery),
    responses((status = 200, description = "The grant's evidence document (docs/evidence.md): its statements, each citing the ledger events it comes from, the events with their inclusion proofs, and the signed tree head they lead to. JSON, or Markdown with `format=markdown`.",
        content((Object = "application/json"), (String = "text/markdown"))),
        (status = 404), (status = 422)))]
pub async fn grant_evidence(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Segment(id): Segment,
    params: Result<Query<EvidenceQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let params = query(params)?;
    let markdown = params.format == Some(EvidenceFormat::Markdown);
    let id = state.engine.resolve_grant(&id).await?;
    let document = state.engine.evidence_document(&caller, id).await?;
    Ok(if markdown {
        (
            [(
                axum::http::header::CONTENT_TYPE,
                "text/markdown; charset=utf-8",
            )],
            writ_engine::evidence_doc::render_markdown(&document),
        )
            .into_response()
    } else {
        (
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            document.to_json(),
        )
            .into_response()
    })
}

#[utoipa::path(post, path = "/v1/grants/{id}/revoke", request_body = RevokeBody,
    responses((status = 200, body = GrantView), (status = 403), (status = 404), (status = 409)))]
pub async fn revoke_grant(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Segment(id): Segment,
    JsonBody(body): JsonBody<RevokeBody>,
) -> Result<Json<GrantView>, ApiError> {
    let grant = state
        .engine
        .revoke_grant(&caller, state.engine.resolve_grant(&id).await?, body.reason)
        .await?;
    Ok(Json(grant_view(&state, grant).await?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtendBody {
    /// How much longer; defaults to the entitlement's maximum, capped like any request
    /// (and by the subject's end date, the ticket's window and `ticket_max_total`).
    #[serde(default, deserialize_with = "crate::json::whole_number")]
    #[schema(minimum = 1)]
    pub duration_seconds: Option<i64>,
    /// Why more time is needed: required, at most 4,096 bytes.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 4096)]
    pub justification: String,
    /// Agents only, and required for them: the user the agent acts for.
    pub on_behalf_of: Option<String>,
}

#[utoipa::path(post, path = "/v1/grants/{id}/extend", request_body = ExtendBody,
    responses((status = 201, body = crate::requests::RequestView, description = "the extension request: approved (the grant's end moved, `grant_id` is the grant), pending approval, or denied"),
        (status = 403), (status = 404), (status = 409, description = "not_extendable"), (status = 422)))]
pub async fn extend_grant(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Segment(id): Segment,
    JsonBody(body): JsonBody<ExtendBody>,
) -> Result<(axum::http::StatusCode, Json<crate::requests::RequestView>), ApiError> {
    // Whoever may not read the grant is told it does not exist.
    let grant = state
        .engine
        .visible_grant(&caller, state.engine.resolve_grant(&id).await?)
        .await?;
    let request = state
        .engine
        .extend_grant(
            &caller,
            grant.id,
            writ_engine::ExtendGrant {
                duration_seconds: body.duration_seconds,
                justification: body.justification,
                on_behalf_of: body.on_behalf_of,
            },
        )
        .await?;
    Ok((
        axum::http::StatusCode::CREATED,
        Json(crate::requests::request_view(&state, request)),
    ))
}

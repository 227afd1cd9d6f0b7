//! Access review campaigns: `POST /v1/reviews` starts one (admins),
//! `GET /v1/reviews[/{id}]` shows campaigns and their progress,
//! `GET /v1/reviews/{id}/items` and `GET /v1/review-items` list items, and
//! `POST /v1/review-items/{id}/decide` keeps or revokes one.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use writ_domain::{
    Assignment, Campaign, CampaignScope, CampaignState, EntitlementId, ItemState, ReviewDecision,
    ReviewItem, Sensitivity,
};
use writ_engine::{CampaignProgress, EngineError, ErrorCode, NewCampaign};
use writ_store::{CampaignFilter, ReviewItemFilter};

use crate::AppState;
use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::handlers::{checked_cursor, checked_limit, query};
use crate::json::JsonBody;
use crate::segment::Segment;

/// Reviewers have two weeks unless told otherwise.
const DEFAULT_DUE_IN_SECONDS: i64 = 14 * 24 * 3600;
/// Ten years: standing access older than that is still "older than".
const OLDER_THAN_DAYS_MAX: u32 = 3660;

/// What a campaign covers is what you would say: grants (and/or exceptions) on a
/// target or entitlement, of at least some sensitivity, held for more than N days.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartCampaignBody {
    /// 1 to 200 bytes, e.g. `2027-Q1 production databases`.
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    pub target: Option<String>,
    /// A configured entitlement's id (`<target>/<name>`).
    pub entitlement: Option<String>,
    /// Entitlements of at least this sensitivity (`low`, `medium`, `high`, `critical`).
    pub sensitivity: Option<String>,
    /// Standing access only: held for at least this many days (0 to 3660).
    #[serde(default, deserialize_with = "crate::json::whole_number")]
    #[schema(minimum = 0, maximum = 3660)]
    pub older_than_days: Option<i64>,
    /// Review active grants (default true).
    pub grants: Option<bool>,
    /// Review accepted exceptions (default false).
    pub exceptions: Option<bool>,
    /// Who reviews each item (default `owners`).
    pub assign: Option<Assignment>,
    /// What items nobody decided by the deadline become (default `revoke`).
    pub default_decision: Option<ReviewDecision>,
    /// How long reviewers have (default 14 days; at most 366 days).
    #[serde(default, deserialize_with = "crate::json::whole_number")]
    #[schema(minimum = 1)]
    pub due_in_seconds: Option<i64>,
    /// Remind reviewers with items waiting this often (never when absent).
    #[serde(default, deserialize_with = "crate::json::whole_number")]
    #[schema(minimum = 1)]
    pub remind_every_seconds: Option<i64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReviewerWaiting {
    pub reviewer: String,
    pub pending: i64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CampaignProgressView {
    pub pending: i64,
    pub kept: i64,
    pub revoked: i64,
    /// Decided by the campaign's default at its deadline (among kept and revoked).
    pub by_default: i64,
}

/// A campaign, how far it got, and who still has items waiting.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CampaignView {
    pub campaign: Campaign,
    pub progress: CampaignProgressView,
    pub waiting: Vec<ReviewerWaiting>,
}

impl From<CampaignProgress> for CampaignView {
    fn from(progress: CampaignProgress) -> Self {
        Self {
            campaign: progress.campaign,
            progress: CampaignProgressView {
                pending: progress.counts.pending,
                kept: progress.counts.kept,
                revoked: progress.counts.revoked,
                by_default: progress.counts.by_default,
            },
            waiting: progress
                .waiting
                .into_iter()
                .map(|(reviewer, pending)| ReviewerWaiting { reviewer, pending })
                .collect(),
        }
    }
}

#[utoipa::path(post, path = "/v1/reviews", request_body = StartCampaignBody,
    responses((status = 201, body = CampaignView, description = "started: one item per active grant or accepted exception in scope"),
        (status = 403, description = "not_an_admin"), (status = 422, description = "invalid_campaign")))]
pub async fn start(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    JsonBody(body): JsonBody<StartCampaignBody>,
) -> Result<(StatusCode, Json<CampaignView>), ApiError> {
    let invalid = |message: String| EngineError::new(ErrorCode::InvalidCampaign, message);
    let entitlement = body
        .entitlement
        .map(|e| {
            e.parse::<EntitlementId>()
                .map_err(|e| invalid(e.to_string()))
        })
        .transpose()?;
    let sensitivity = body
        .sensitivity
        .map(|s| s.parse::<Sensitivity>().map_err(|e| invalid(e.to_string())))
        .transpose()?;
    let older_than_days = body
        .older_than_days
        .map(|days| {
            u32::try_from(days)
                .ok()
                .filter(|d| *d <= OLDER_THAN_DAYS_MAX)
                .ok_or_else(|| {
                    invalid(format!(
                        "older_than_days must be 0 to {OLDER_THAN_DAYS_MAX}"
                    ))
                })
        })
        .transpose()?;
    let new = NewCampaign {
        name: body.name,
        scope: CampaignScope {
            target: body.target,
            entitlement,
            sensitivity,
            older_than_days,
            grants: body.grants.unwrap_or(true),
            exceptions: body.exceptions.unwrap_or(false),
        },
        assignment: body.assign.unwrap_or(Assignment::Owners),
        default_decision: body.default_decision.unwrap_or(ReviewDecision::Revoke),
        due_in_seconds: body.due_in_seconds.unwrap_or(DEFAULT_DUE_IN_SECONDS),
        remind_every_seconds: body.remind_every_seconds,
    };
    let started = state.engine.start_campaign(&caller, new).await?;
    Ok((StatusCode::CREATED, Json(started.into())))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CampaignQuery {
    /// `open` or `closed`; all when absent.
    #[param(value_type = Option<CampaignState>)]
    pub state: Option<String>,
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// A previous page's `next`.
    #[param(pattern = "^-?[0-9]{1,18}\\.[0-9a-fA-F-]{1,64}$")]
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CampaignList {
    pub campaigns: Vec<Campaign>,
    /// More follow: pass this as `cursor` for the next page. Absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

#[utoipa::path(get, path = "/v1/reviews", params(CampaignQuery),
    responses((status = 200, body = CampaignList, description = "newest first: every campaign for auditors, otherwise those the caller reviews in"),
        (status = 400)))]
pub async fn list(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    params: Result<Query<CampaignQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<CampaignList>, ApiError> {
    let params = query(params)?;
    let state_filter = params
        .state
        .map(|s| {
            CampaignState::parse(&s)
                .ok_or_else(|| ApiError::malformed(format!("unknown campaign state {s:?}")))
        })
        .transpose()?;
    let filter = CampaignFilter {
        state: state_filter,
        limit: checked_limit(params.limit)?,
        after: checked_cursor(params.cursor, writ_store::CAMPAIGN_ORDER)?,
    };
    let page = state.engine.visible_campaigns(&caller, filter).await?;
    Ok(Json(CampaignList {
        campaigns: page.items,
        next: page.next.map(|cursor| cursor.to_text()),
    }))
}

#[utoipa::path(get, path = "/v1/reviews/{id}",
    responses((status = 200, body = CampaignView), (status = 404)))]
pub async fn get(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Segment(id): Segment,
) -> Result<Json<CampaignView>, ApiError> {
    let id = state.engine.resolve_campaign(&id).await?;
    Ok(Json(
        state.engine.visible_campaign(&caller, id).await?.into(),
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ItemQuery {
    /// `pending`, `kept` or `revoked`; all when absent.
    #[param(value_type = Option<ItemState>)]
    pub state: Option<String>,
    /// Only the pending items the caller may decide now.
    #[serde(default)]
    pub reviewable_by_me: bool,
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// A previous page's `next`.
    #[param(pattern = "^[0-9a-fA-F-]{1,64}$")]
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ItemList {
    pub items: Vec<ReviewItem>,
    /// More follow: pass this as `cursor` for the next page. Absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

async fn items_page(
    state: &AppState,
    caller: &writ_engine::Caller,
    campaign: Option<writ_domain::CampaignId>,
    params: ItemQuery,
) -> Result<Json<ItemList>, ApiError> {
    let item_state = params
        .state
        .map(|s| {
            ItemState::parse(&s)
                .ok_or_else(|| ApiError::malformed(format!("unknown item state {s:?}")))
        })
        .transpose()?;
    let filter = ReviewItemFilter {
        campaign,
        state: item_state,
        reviewer: None,
        subject: None,
        limit: checked_limit(params.limit)?,
        after: checked_cursor(params.cursor, writ_store::REVIEW_ITEM_ORDER)?,
    };
    let page = state
        .engine
        .visible_review_items(caller, filter, params.reviewable_by_me)
        .await?;
    Ok(Json(ItemList {
        items: page.items,
        next: page.next.map(|cursor| cursor.to_text()),
    }))
}

#[utoipa::path(get, path = "/v1/reviews/{id}/items", params(ItemQuery),
    responses((status = 200, body = ItemList, description = "every item for auditors; otherwise those the caller reviews"),
        (status = 400), (status = 404)))]
pub async fn campaign_items(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Segment(id): Segment,
    params: Result<Query<ItemQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<ItemList>, ApiError> {
    let params = query(params)?;
    let id = state.engine.resolve_campaign(&id).await?;
    // 404 for a campaign the caller may not see, as for one that does not exist.
    state.engine.visible_campaign(&caller, id).await?;
    items_page(&state, &caller, Some(id), params).await
}

#[utoipa::path(get, path = "/v1/review-items", params(ItemQuery),
    responses((status = 200, body = ItemList, description = "across campaigns: every item for auditors; otherwise those the caller is named to review"),
        (status = 400)))]
pub async fn list_items(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    params: Result<Query<ItemQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<ItemList>, ApiError> {
    let params = query(params)?;
    items_page(&state, &caller, None, params).await
}

#[utoipa::path(get, path = "/v1/review-items/{id}",
    responses((status = 200, body = ReviewItem), (status = 404)))]
pub async fn get_item(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Segment(id): Segment,
) -> Result<Json<ReviewItem>, ApiError> {
    let id = state.engine.resolve_review_item(&id).await?;
    Ok(Json(state.engine.visible_review_item(&caller, id).await?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecideBody {
    pub decision: ReviewDecision,
    /// Why: required, at most 4,096 bytes.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 4096)]
    pub comment: String,
}

#[utoipa::path(post, path = "/v1/review-items/{id}/decide", request_body = DecideBody,
    responses((status = 200, body = ReviewItem, description = "decided; a revoke has begun the grant's verified revocation"),
        (status = 403, description = "self_review, not_a_reviewer"),
        (status = 404), (status = 409, description = "already_decided, campaign_closed"), (status = 422)))]
pub async fn decide(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Segment(id): Segment,
    JsonBody(body): JsonBody<DecideBody>,
) -> Result<Json<ReviewItem>, ApiError> {
    let id = state.engine.resolve_review_item(&id).await?;
    Ok(Json(
        state
            .engine
            .decide_review_item(&caller, id, body.decision, body.comment)
            .await?,
    ))
}

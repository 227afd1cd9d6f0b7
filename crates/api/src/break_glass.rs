//! Break-glass: `POST /v1/break-glass/{profile}` grants a profile's entitlements at
//! once; `GET /v1/break-glass/activations[/{id}]` and
//! `POST /v1/break-glass/activations/{id}/sign-off` are its after-the-fact review.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use writ_domain::{Activation, Request, ReviewState};
use writ_engine::BreakGlass;
use writ_store::ActivationFilter;

use crate::AppState;
use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::handlers::{checked_cursor, checked_limit, query};
use crate::json::JsonBody;
use crate::segment::Segment;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BreakGlassBody {
    /// What is on fire: required, at most 4,096 bytes.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 4096)]
    pub justification: String,
    /// Defaults to the profile's `max_duration`; capped by it, by each entitlement's
    /// maximum and by policy. A whole number, also when written `600.0`.
    #[serde(default, deserialize_with = "crate::json::whole_number")]
    #[schema(minimum = 1)]
    pub duration_seconds: Option<i64>,
    /// Agents only, and required for them: the user the agent acts for.
    pub on_behalf_of: Option<String>,
}

/// An activation and the requests it made (each approved at once, with its grant).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ActivationView {
    pub activation: Activation,
    pub requests: Vec<Request>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignOffBody {
    /// What the reviewer looked at and found: required, at most 4,096 bytes.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 4096)]
    pub comment: String,
}

#[utoipa::path(post, path = "/v1/break-glass/{profile}", request_body = BreakGlassBody,
    params(("profile" = String, Path, description = "a `[[break_glass]]` profile's name")),
    responses((status = 201, body = ActivationView, description = "granted at once; its review is open"),
        (status = 403, description = "break_glass_denied, break_glass_review_overdue, identity_disabled, not_a_delegate"),
        (status = 404, description = "no such profile"), (status = 422)))]
pub async fn activate(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Segment(profile): Segment,
    JsonBody(body): JsonBody<BreakGlassBody>,
) -> Result<(StatusCode, Json<ActivationView>), ApiError> {
    let asked = BreakGlass {
        justification: body.justification,
        duration_seconds: body.duration_seconds,
        on_behalf_of: body.on_behalf_of,
    };
    let activated = state.engine.break_glass(&caller, &profile, asked).await?;
    Ok((
        StatusCode::CREATED,
        Json(ActivationView {
            activation: activated.activation,
            requests: activated.requests,
        }),
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ActivationQuery {
    /// `open`, `overdue` or `signed_off`; all when absent.
    #[param(value_type = Option<ReviewState>)]
    pub review_state: Option<String>,
    pub profile: Option<String>,
    /// Only the pending reviews the caller may sign off now.
    #[serde(default)]
    pub reviewable_by_me: bool,
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// A previous page's `next`.
    #[param(pattern = "^-?[0-9]{1,18}\\.[0-9a-fA-F-]{1,64}$")]
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ActivationList {
    pub activations: Vec<Activation>,
    /// More follow: pass this as `cursor` for the next page. Absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

#[utoipa::path(get, path = "/v1/break-glass/activations", params(ActivationQuery),
    responses((status = 200, body = ActivationList, description = "newest first: the caller's own (everyone's for auditors), or with reviewable_by_me those the caller may sign off"),
        (status = 400)))]
pub async fn list_activations(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    params: Result<Query<ActivationQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<ActivationList>, ApiError> {
    let params = query(params)?;
    let review_state = params
        .review_state
        .map(|s| {
            ReviewState::parse(&s)
                .ok_or_else(|| ApiError::malformed(format!("unknown review state {s:?}")))
        })
        .transpose()?;
    let filter = ActivationFilter {
        review_state,
        profile: params.profile,
        activators: None,
        limit: checked_limit(params.limit)?,
        after: checked_cursor(params.cursor, writ_store::ACTIVATION_ORDER)?,
    };
    let page = state
        .engine
        .visible_activations(&caller, filter, params.reviewable_by_me)
        .await?;
    Ok(Json(ActivationList {
        activations: page.items,
        next: page.next.map(|cursor| cursor.to_text()),
    }))
}

#[utoipa::path(get, path = "/v1/break-glass/activations/{id}",
    responses((status = 200, body = Activation), (status = 404)))]
pub async fn get_activation(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Segment(id): Segment,
) -> Result<Json<Activation>, ApiError> {
    let id = state.engine.resolve_activation(&id).await?;
    Ok(Json(state.engine.visible_activation(&caller, id).await?))
}

#[utoipa::path(post, path = "/v1/break-glass/activations/{id}/sign-off", request_body = SignOffBody,
    responses((status = 200, body = Activation),
        (status = 403, description = "self_review, subordinate_review, self_approval, not_an_approver"),
        (status = 404), (status = 409, description = "already_signed_off"), (status = 422)))]
pub async fn sign_off(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Segment(id): Segment,
    JsonBody(body): JsonBody<SignOffBody>,
) -> Result<Json<Activation>, ApiError> {
    let id = state.engine.resolve_activation(&id).await?;
    Ok(Json(
        state
            .engine
            .sign_off_activation(&caller, id, body.comment)
            .await?,
    ))
}

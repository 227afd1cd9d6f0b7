//! `/v1/requests` and `/v1/entitlements`: asking for access, deciding on it, and what
//! policy would say.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use writ_domain::lifecycle::RequestState;
use writ_domain::{Request, Ticket};
use writ_engine::{EngineError, ErrorCode, IssuedCredential, NewRequest};
use writ_store::RequestFilter;

use crate::AppState;
use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::json::JsonBody;
use crate::segment::Segment;

use crate::handlers::{checked_cursor, checked_limit, query};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRequestBody {
    /// `"<target>/<name>"`.
    pub entitlement: String,
    /// Defaults to the caller.
    pub subject: Option<String>,
    /// Defaults to the entitlement's maximum; capped by it and by policy. A whole
    /// number, also when written `600.0`.
    #[serde(default, deserialize_with = "crate::json::whole_number")]
    #[schema(minimum = 1)]
    pub duration_seconds: Option<i64>,
    /// Access without an end (instead of `duration_seconds`): refused unless a policy
    /// marked `@permanent("true")` permits it; such grants are flagged in reports.
    #[serde(default)]
    pub permanent: bool,
    /// Why the access is needed: required, at most 4,096 bytes.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 4096)]
    pub justification: String,
    /// The ticket this request is for. In a ticketing system configured in writ it is
    /// read and checked (state, requester, change window) before the decision.
    pub ticket: Option<TicketRef>,
    /// Agents only, and required for them: the user the agent acts for.
    pub on_behalf_of: Option<String>,
}

/// A ticket as a caller cites it.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TicketRef {
    /// A configured ITSM's name (e.g. `jira`), or any label for a ticket writ cannot check.
    pub system: String,
    pub key: String,
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommentBody {
    /// At most 4,096 bytes.
    #[serde(default)]
    #[schema(max_length = 4096)]
    pub comment: String,
}

/// A request, with what its reader needs to act on it: who can approve it while it is
/// pending, and what would change a denial (both worked out by policy when asked).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RequestView {
    #[serde(flatten)]
    pub request: Request,
    /// Pending approval: the users an `approve` policy permits now (never the
    /// requester, the subject or whom an agent acts for; not those who approved).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub approvers: Vec<String>,
    /// Denied: what would change the answer, where policy can tell.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hints: Vec<String>,
}

pub(crate) fn request_view(state: &AppState, request: Request) -> RequestView {
    RequestView {
        approvers: state
            .engine
            .approvers(&request)
            .into_iter()
            .map(String::from)
            .collect(),
        hints: state.engine.denial_hints(&request),
        request,
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EntitlementList {
    pub entitlements: Vec<writ_engine::EntitlementView>,
}

#[utoipa::path(get, path = "/v1/entitlements",
    responses((status = 200, body = EntitlementList, description = "every entitlement, with what policy would decide for the caller now"), (status = 401)))]
pub async fn list_entitlements(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> Result<Json<EntitlementList>, ApiError> {
    Ok(Json(EntitlementList {
        entitlements: state.engine.entitlements_for(&caller).await?,
    }))
}

#[utoipa::path(get, path = "/v1/entitlements/{target}/{name}",
    responses((status = 200, body = writ_engine::EntitlementDetail, description = "the entitlement and what its role really gives on its target now (read from the target)"), (status = 401), (status = 404)))]
pub async fn show_entitlement(
    State(state): State<AppState>,
    Authenticated(_caller): Authenticated,
    crate::segment::TwoSegments(target, name): crate::segment::TwoSegments,
) -> Result<Json<writ_engine::EntitlementDetail>, ApiError> {
    Ok(Json(
        state
            .engine
            .entitlement_detail(&format!("{target}/{name}"))
            .await?,
    ))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RequestList {
    pub requests: Vec<Request>,
    /// More follow: pass this as `cursor` for the next page. Absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestQuery {
    state: Option<String>,
    requester: Option<String>,
    subject: Option<String>,
    #[serde(default)]
    approvable_by_me: bool,
    limit: Option<i64>,
    cursor: Option<String>,
}

/// What a request would be if made now: the decision, the duration it would be granted
/// for, who could approve it, and what would change a denial. Nothing was recorded.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RequestPreview {
    pub subject: String,
    pub entitlement: String,
    /// `approved` (automatic), `pending_approval` or `denied`, as the request would be.
    pub state: RequestState,
    pub decision: writ_domain::Decision,
    pub requested_duration_seconds: i64,
    /// What it would be granted for: the request capped by the entitlement, policy,
    /// a ticket's change window and the subject's end date.
    pub duration_seconds: i64,
    /// The ticket as writ read it from its system, when it cites one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ticket: Option<Ticket>,
    /// Needing approval: the users an `approve` policy permits now.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub approvers: Vec<String>,
    /// Denied: what would change the answer, where policy can tell.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hints: Vec<String>,
}

fn new_request(body: CreateRequestBody) -> Result<NewRequest, ApiError> {
    let duration_seconds = match (body.permanent, body.duration_seconds) {
        (false, asked) => asked,
        (true, None) => Some(writ_domain::PERMANENT_SECONDS),
        (true, Some(_)) => {
            return Err(EngineError::new(
                ErrorCode::InvalidDuration,
                "ask for a duration or for permanent access, not both",
            )
            .into());
        }
    };
    Ok(NewRequest {
        entitlement: body.entitlement,
        subject: body.subject,
        duration_seconds,
        justification: body.justification,
        ticket: body.ticket.map(|t| Ticket {
            system: t.system,
            key: t.key,
            verified: None,
        }),
        on_behalf_of: body.on_behalf_of,
        // More time on a grant is asked for at /v1/grants/{id}/extend.
        extends: None,
    })
}

#[utoipa::path(post, path = "/v1/requests/preview", request_body = CreateRequestBody,
    responses((status = 200, body = RequestPreview, description = "the decision writ would make now; nothing recorded, nothing changed on any target"),
        (status = 400), (status = 401), (status = 403), (status = 422)))]
pub async fn preview_request(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    JsonBody(body): JsonBody<CreateRequestBody>,
) -> Result<Json<RequestPreview>, ApiError> {
    let request = state
        .engine
        .preview_request(&caller, new_request(body)?)
        .await?;
    let view = request_view(&state, request);
    let request = view.request;
    Ok(Json(RequestPreview {
        subject: request.subject.to_string(),
        entitlement: request.entitlement.to_string(),
        state: request.state,
        decision: request.decision,
        requested_duration_seconds: request.requested_duration_seconds,
        duration_seconds: request.duration_seconds,
        ticket: request.ticket,
        approvers: view.approvers,
        hints: view.hints,
    }))
}

#[utoipa::path(post, path = "/v1/requests", request_body = CreateRequestBody,
    responses((status = 201, body = CreatedRequest), (status = 400), (status = 401), (status = 403), (status = 422)))]
pub async fn create_request(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    JsonBody(body): JsonBody<CreateRequestBody>,
) -> Result<(StatusCode, Json<CreatedRequest>), ApiError> {
    let (request, credential) = state
        .engine
        .create_request_issuing(&caller, new_request(body)?)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedRequest {
            request: request_view(&state, request),
            credential,
        }),
    ))
}

/// A new request; for a credential entitlement granted on the spot, also the
/// credential, whose password is shown only here.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedRequest {
    #[serde(flatten)]
    pub request: RequestView,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential: Option<IssuedCredential>,
}

#[utoipa::path(get, path = "/v1/requests", params(("state" = Option<writ_domain::lifecycle::RequestState>, Query), ("requester" = Option<String>, Query),
    ("subject" = Option<String>, Query), ("approvable_by_me" = Option<bool>, Query), ("limit" = Option<i64>, Query, minimum = 1, maximum = 1000),
    ("cursor" = Option<String>, Query, description = "a previous page's `next`", pattern = "^-?[0-9]{1,18}\\.[0-9a-fA-F-]{1,64}$")),
    responses((status = 200, body = RequestList)))]
pub async fn list_requests(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    params: Result<Query<RequestQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<RequestList>, ApiError> {
    let params = query(params)?;
    let request_state = params
        .state
        .map(|s| {
            RequestState::parse(&s)
                .ok_or_else(|| ApiError::malformed(format!("unknown request state {s:?}")))
        })
        .transpose()?;
    let filter = RequestFilter {
        state: request_state,
        requester: params.requester,
        subject: params.subject,
        involving: None,
        limit: checked_limit(params.limit)?,
        after: checked_cursor(params.cursor, writ_store::REQUEST_ORDER)?,
    };
    let page = state
        .engine
        .requests(&caller, filter, params.approvable_by_me)
        .await?;
    Ok(Json(RequestList {
        requests: page.items,
        next: page.next.map(|cursor| cursor.to_text()),
    }))
}

#[utoipa::path(get, path = "/v1/requests/{id}", responses((status = 200, body = RequestView), (status = 404)))]
pub async fn get_request(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Segment(id): Segment,
) -> Result<Json<RequestView>, ApiError> {
    let request = state
        .engine
        .visible_request(&caller, state.engine.resolve_request(&id).await?)
        .await?;
    Ok(Json(request_view(&state, request)))
}

#[utoipa::path(post, path = "/v1/requests/{id}/cancel", responses((status = 200, body = Request), (status = 403), (status = 409)))]
pub async fn cancel_request(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Segment(id): Segment,
) -> Result<Json<Request>, ApiError> {
    Ok(Json(
        state
            .engine
            .cancel(&caller, state.engine.resolve_request(&id).await?)
            .await?,
    ))
}

#[utoipa::path(post, path = "/v1/requests/{id}/approve", request_body = CommentBody,
    responses((status = 200, body = RequestView), (status = 403, description = "self_approval or not_an_approver"), (status = 409)))]
pub async fn approve_request(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Segment(id): Segment,
    JsonBody(body): JsonBody<CommentBody>,
) -> Result<Json<RequestView>, ApiError> {
    let id = state.engine.resolve_request(&id).await?;
    let request = state.engine.approve(&caller, id, body.comment).await?;
    Ok(Json(request_view(&state, request)))
}

#[utoipa::path(post, path = "/v1/requests/{id}/reject", request_body = CommentBody,
    responses((status = 200, body = Request), (status = 403), (status = 409)))]
pub async fn reject_request(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Segment(id): Segment,
    JsonBody(body): JsonBody<CommentBody>,
) -> Result<Json<Request>, ApiError> {
    Ok(Json(
        state
            .engine
            .reject(
                &caller,
                state.engine.resolve_request(&id).await?,
                body.comment,
            )
            .await?,
    ))
}

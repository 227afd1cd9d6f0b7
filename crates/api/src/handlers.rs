//! One handler per route: parse, call the engine, shape the answer.

use std::collections::HashMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use writ_domain::ledger::Event;
use writ_domain::lifecycle::{GrantState, RequestState};
use writ_domain::{Grant, Request, Ticket, Timestamp};
use writ_engine::{IssuedCredential, LedgerVerdict, NewRequest, WebhookAction, WebhookOutcome};
use writ_store::{GrantFilter, LIST_LIMIT_MAX, NotifyCursor, OutboxEntry, RequestFilter};

use crate::AppState;
use crate::auth::{Authenticated, WebhookSender};
use crate::error::ApiError;
use crate::json::JsonBody;
use crate::segment::Segment;

/// 200 `ok` while every background task runs and makes progress; 503 naming the
/// ones that do not (revocation must never stop while the API looks healthy).
#[utoipa::path(get, path = "/healthz", security(()),
    responses(
        (status = 200, description = "every background task runs: `ok`", content_type = "text/plain", body = String),
        (status = 503, description = "`unhealthy:` and the tasks that stopped or stalled, one per line", content_type = "text/plain", body = String),
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
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not take that method; see /openapi.json",
    )
}

pub async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such endpoint; see /openapi.json",
    )
}

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

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeBody {
    /// At most 4,096 bytes.
    #[serde(default)]
    #[schema(max_length = 4096)]
    pub reason: String,
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

fn request_view(state: &AppState, request: Request) -> RequestView {
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
) -> Json<EntitlementList> {
    Json(EntitlementList {
        entitlements: state.engine.entitlements_for(&caller),
    })
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RequestList {
    pub requests: Vec<Request>,
    /// More follow: pass this as `cursor` for the next page. Absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// A grant, plus the scheduler's bookkeeping when an attempt on the target failed.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct GrantView {
    #[serde(flatten)]
    pub grant: Grant,
    /// The last error from the target, while applying or revoking keeps failing.
    pub last_error: Option<String>,
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
pub struct RequestQuery {
    state: Option<String>,
    requester: Option<String>,
    subject: Option<String>,
    #[serde(default)]
    approvable_by_me: bool,
    limit: Option<i64>,
    cursor: Option<String>,
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    after: Option<i64>,
    limit: Option<i64>,
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

async fn grant_view(state: &AppState, grant: Grant) -> Result<GrantView, ApiError> {
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

#[utoipa::path(post, path = "/v1/requests", request_body = CreateRequestBody,
    responses((status = 201, body = CreatedRequest), (status = 400), (status = 401), (status = 403), (status = 422)))]
pub async fn create_request(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    JsonBody(body): JsonBody<CreateRequestBody>,
) -> Result<(StatusCode, Json<CreatedRequest>), ApiError> {
    let new = NewRequest {
        entitlement: body.entitlement,
        subject: body.subject,
        duration_seconds: body.duration_seconds,
        justification: body.justification,
        ticket: body.ticket.map(|t| Ticket {
            system: t.system,
            key: t.key,
            verified: None,
        }),
        on_behalf_of: body.on_behalf_of,
    };
    let (request, credential) = state.engine.create_request_issuing(&caller, new).await?;
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
            StatusCode::CONFLICT,
            "verify_running",
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

/// Webhook bodies may carry a whole ticket; they get a larger limit than API calls.
pub const WEBHOOK_BODY_SIZE_MAX_BYTES: usize = 1024 * 1024;

#[utoipa::path(post, path = "/v1/itsm/{name}/webhook",
    params(("name" = String, Path, description = "the `[[itsm]]` entry's name")),
    request_body(content = Object, description = "the ticketing system's webhook payload, signed (Jira: X-Hub-Signature; ServiceNow: X-Writ-Timestamp and X-Writ-Signature)"),
    security(()),
    responses((status = 201, body = WebhookOutcome, description = "a request was made from the ticket"),
        (status = 200, body = WebhookOutcome, description = "a duplicate delivery, or a ticket not (yet) in a requesting state"),
        (status = 401, description = "unsigned, forged or stale; the rejection is on the ledger"),
        (status = 404), (status = 422), (status = 503, description = "the ticketing system did not answer; nothing was recorded")))]
pub async fn itsm_webhook(
    State(state): State<AppState>,
    // Before any work (even reading the body): checking a signature and reading a
    // ticket cost writ and the ticketing system, and an unsigned sender can ask at will.
    _within_limit: WebhookSender,
    Segment(name): Segment,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<WebhookOutcome>), ApiError> {
    let headers: HashMap<String, String> = headers
        .iter()
        .filter_map(|(name, value)| {
            Some((name.as_str().to_string(), value.to_str().ok()?.to_string()))
        })
        .collect();
    let outcome = state.engine.take_webhook(&name, &headers, &body).await?;
    let status = match outcome.action {
        WebhookAction::Created => StatusCode::CREATED,
        WebhookAction::Duplicate
        | WebhookAction::Ignored
        | WebhookAction::Revoked
        | WebhookAction::Approvals
        | WebhookAction::Cancelled => StatusCode::OK,
    };
    Ok((status, Json(outcome)))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OutboxView {
    /// Evidence waiting for delivery.
    pub backlog: i64,
    /// The oldest undelivered entries (at most 1,000), with attempts and the last error.
    pub entries: Vec<OutboxEntry>,
    /// Notification sinks: how far each is through the ledger.
    pub sinks: Vec<SinkView>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SinkView {
    #[serde(flatten)]
    pub cursor: NotifyCursor,
    /// Ledger events after the cursor (some may be filtered out rather than sent).
    pub behind: i64,
}

#[utoipa::path(get, path = "/v1/itsm/outbox", responses((status = 200, body = OutboxView), (status = 401)))]
pub async fn itsm_outbox(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> Result<Json<OutboxView>, ApiError> {
    let status = state.engine.outbox_status(&caller).await?;
    Ok(Json(OutboxView {
        backlog: status.backlog,
        entries: status.entries,
        sinks: status
            .sinks
            .into_iter()
            .map(|cursor| SinkView {
                behind: (status.head - cursor.last_seq).max(0),
                cursor,
            })
            .collect(),
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct IdentityQuery {
    /// Only services and agents whose owner is disabled.
    #[serde(default)]
    pub orphaned: bool,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct IdentityView {
    pub name: String,
    /// `user`, `service` or `agent`.
    pub kind: String,
    pub groups: Vec<String>,
    pub owner: Option<String>,
    pub manager: Option<String>,
    pub disabled: bool,
    /// A service or agent whose owner is disabled: nobody is accountable for it.
    pub orphaned: bool,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct IdentityList {
    pub identities: Vec<IdentityView>,
}

#[utoipa::path(get, path = "/v1/identities", params(IdentityQuery),
    responses((status = 200, body = IdentityList), (status = 401)))]
pub async fn list_identities(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    params: Result<Query<IdentityQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<IdentityList>, ApiError> {
    let params = query(params)?;
    let config = state.engine.config();
    let orphaned: std::collections::BTreeSet<&str> =
        config.orphaned().map(|i| i.name.as_str()).collect();
    let readable = state.engine.narrow_to_own(&caller);
    let identities = config
        .identities
        .values()
        .filter(|i| {
            readable
                .as_ref()
                .is_none_or(|own| own.iter().any(|name| name == i.name.as_str()))
        })
        .filter(|i| !params.orphaned || orphaned.contains(i.name.as_str()))
        .map(|i| IdentityView {
            name: i.name.to_string(),
            kind: i.kind.as_str().to_string(),
            groups: i.groups.clone(),
            owner: i.owner.as_ref().map(ToString::to_string),
            manager: i.manager.as_ref().map(ToString::to_string),
            disabled: i.disabled,
            orphaned: orphaned.contains(i.name.as_str()),
        })
        .collect();
    Ok(Json(IdentityList { identities }))
}

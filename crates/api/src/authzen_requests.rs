//! The Access Request and Approval Profile's Access Request Service (docs/authzen.md):
//! `POST /access/v1/requests` turns a requestable denial into a writ request and
//! answers with its task; `GET /access/v1/requests/{task}` is the task's status,
//! `POST` (or `DELETE`) `/access/v1/requests/{task}/cancel` cancels it;
//! `GET /access/v1/jwks` publishes the key binding tokens are signed with and
//! `GET /access/v1/request-schema` what a submission must add. Errors are RFC 9457
//! problem details with the profile's error types.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use writ_domain::Timestamp;
use writ_domain::lifecycle::{GrantState, RequestState};
use writ_engine::arap::{AccessSubmission, AccessTask, ArapUrls, Evaluated, body_digest};
use writ_engine::{Caller, ErrorCode};

use crate::AppState;
use crate::authzen::arap_urls;
use crate::error::{ApiError, BEARER_CHALLENGE};
use crate::segment::Segment;

/// The longest Idempotency-Key kept.
const IDEMPOTENCY_KEY_MAX: usize = 255;

/// An RFC 9457 problem: the profile's error type where it defines one, `about:blank`
/// with writ's `code` otherwise.
#[derive(Debug)]
pub struct Problem(ApiError);

impl From<ApiError> for Problem {
    fn from(error: ApiError) -> Self {
        Self(error)
    }
}

impl From<writ_engine::EngineError> for Problem {
    fn from(error: writ_engine::EngineError) -> Self {
        Self(error.into())
    }
}

fn malformed(message: impl Into<String>) -> Problem {
    Problem(ApiError::malformed(message))
}

/// The profile's error type for a code, if it defines one.
fn profile_type(code: ErrorCode) -> Option<&'static str> {
    Some(match code {
        ErrorCode::NotRequestable => "urn:openid:authzen:access-request:error:not_requestable",
        ErrorCode::ExpiredDenial => "urn:openid:authzen:access-request:error:expired_denial",
        ErrorCode::InvalidDenialBinding => {
            "urn:openid:authzen:access-request:error:invalid_denial_binding"
        }
        ErrorCode::DuplicateRequest => "urn:openid:authzen:access-request:error:duplicate_request",
        ErrorCode::UnknownTask => "urn:openid:authzen:access-request:error:unknown_task",
        ErrorCode::InvalidTaskState => "urn:openid:authzen:access-request:error:invalid_task_state",
        _ => return None,
    })
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let error = self.0;
        let status = error.status;
        let body = json!({
            "type": profile_type(error.code).unwrap_or("about:blank"),
            "title": status.canonical_reason().unwrap_or("Error"),
            "status": status.as_u16(),
            "detail": error.message,
            "code": error.code.as_str(),
        });
        let mut response = (
            status,
            [(header::CONTENT_TYPE, "application/problem+json")],
            body.to_string(),
        )
            .into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(error.challenge.unwrap_or(BEARER_CHALLENGE)),
            );
        }
        if let Some(seconds) = error.retry_after_seconds {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// Whoever calls the Access Request Service, authenticated as for the API.
pub struct ArsCaller(Caller);

impl axum::extract::FromRequestParts<AppState> for ArsCaller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        let caller = crate::auth::authenticate(parts, state).await?;
        state.limits.check_identity(caller.name.as_str())?;
        Ok(Self(caller))
    }
}

/// `GET /access/v1/jwks`: the key binding tokens are signed with. Public.
pub async fn jwks(State(state): State<AppState>) -> Result<axum::Json<Value>, Problem> {
    state.engine.authzen_jwks().map(axum::Json).ok_or_else(|| {
        Problem(ApiError::new(
            ErrorCode::NotFound,
            "writ signs no binding tokens here: no entitlement is enforced by PEPs",
        ))
    })
}

/// `GET /access/v1/request-schema`: what a submission adds to the denied evaluation.
pub async fn request_schema() -> axum::Json<Value> {
    axum::Json(json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "writ access request augmentations",
        "type": "object",
        "properties": {
            "context": {
                "type": "object",
                "properties": {
                    "business_justification": {
                        "type": "string", "minLength": 1, "maxLength": 4096,
                        "description": "Why the access is needed; recorded on writ's ledger and shown to approvers."
                    }
                },
                "required": ["business_justification"]
            },
            "requested_access": {
                "type": "object",
                "properties": {
                    "requested_until": {
                        "type": "string", "format": "date-time",
                        "description": "The end of the lease asked for; policy and the entitlement's maximum may make it sooner. Absent: the entitlement's maximum."
                    }
                }
            }
        },
        "required": ["context"]
    }))
}

fn object<'a>(
    body: &'a Map<String, Value>,
    name: &str,
) -> Result<Option<&'a Map<String, Value>>, Problem> {
    match body.get(name) {
        None => Ok(None),
        Some(Value::Object(object)) => Ok(Some(object)),
        Some(_) => Err(malformed(format!("{name} must be an object"))),
    }
}

fn entity(body: &Map<String, Value>, name: &str) -> Result<Value, Problem> {
    match object(body, name)? {
        Some(object) => Ok(Value::Object(object.clone())),
        None => Err(malformed(format!("{name} is required"))),
    }
}

fn string(object: &Map<String, Value>, name: &str, key: &str) -> Result<Option<String>, Problem> {
    match object.get(key) {
        None => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(_) => Err(malformed(format!("{name}.{key} must be a string"))),
    }
}

/// The Idempotency-Key header: a string, quoted (as the header's draft writes it) or
/// not.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, Problem> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .map_err(|_| malformed("Idempotency-Key must be visible ASCII"))?
        .trim();
    let key = text
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(text);
    if key.is_empty() || key.len() > IDEMPOTENCY_KEY_MAX {
        return Err(malformed(format!(
            "Idempotency-Key must be 1 to {IDEMPOTENCY_KEY_MAX} characters"
        )));
    }
    Ok(Some(key.to_string()))
}

/// A submission's body, read as the profile defines it.
fn submission(headers: &HeaderMap, body: &Bytes) -> Result<AccessSubmission, Problem> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Err(Problem(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "the body must be JSON, sent with Content-Type: application/json",
        )));
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| malformed(format!("the body is not valid JSON: {e}")))?;
    let Value::Object(body) = &value else {
        return Err(malformed("the body must be a JSON object"));
    };
    if body.contains_key("items") {
        return Err(Problem(ApiError::new(
            ErrorCode::NotRequestable,
            "writ takes one resource and action per access request: submit each item of the bundle as its own request",
        )));
    }
    let evaluated = Evaluated {
        subject: entity(body, "subject")?,
        resource: entity(body, "resource")?,
        action: entity(body, "action")?,
    };
    let denial = object(body, "denial")?.ok_or_else(|| {
        Problem(ApiError::new(
            ErrorCode::InvalidDenialBinding,
            "denial is required: the binding of this request to the denied evaluation",
        ))
    })?;
    let context = object(body, "context")?;
    let justification = match context {
        Some(context) => string(context, "context", "business_justification")?
            .or(string(context, "context", "justification")?)
            .unwrap_or_default(),
        None => String::new(),
    };
    let requested_until = match object(body, "requested_access")? {
        Some(requested) => string(requested, "requested_access", "requested_until")?
            .map(|text| {
                Timestamp::parse_rfc3339(&text).map_err(|e| {
                    malformed(format!(
                        "requested_access.requested_until is not an RFC 3339 time: {e}"
                    ))
                })
            })
            .transpose()?,
        None => None,
    };
    Ok(AccessSubmission {
        evaluated,
        binding_token: string(denial, "denial", "binding_token")?,
        evaluation_id: string(denial, "denial", "evaluation_id")?,
        expires_at: string(denial, "denial", "expires_at")?,
        justification,
        requested_until,
        idempotency_key: idempotency_key(headers)?,
        body_digest: body_digest(&value),
    })
}

/// The profile's status of a task's request.
fn status_of(task: &AccessTask) -> &'static str {
    match task.request.state {
        RequestState::PendingApproval => "pending",
        RequestState::Approved => match &task.grant {
            Some(grant) if grant.state == GrantState::Failed => "failed",
            _ => "approved",
        },
        RequestState::Denied | RequestState::Rejected => "denied",
        RequestState::Cancelled => "cancelled",
        RequestState::Expired => "expired",
    }
}

fn status_endpoint(urls: &ArapUrls, id: &str) -> String {
    format!("{}/{id}", urls.access_request_endpoint())
}

/// The response body of a task: its handle, and the result once approved.
fn task_body(task: &AccessTask, urls: &ArapUrls) -> Value {
    let status = status_of(task);
    let endpoint = status_endpoint(urls, &task.id);
    let request = &task.request;
    let mut handle = json!({
        "id": task.id,
        "status": status,
        "status_endpoint": endpoint,
    });
    if status == "pending" {
        if let Some(expires_at) = request.pending_expires_at {
            handle["expires_at"] = json!(expires_at);
        }
        handle["links"] = json!({ "cancel": format!("{endpoint}/cancel") });
        let required = request.decision.approvals_required;
        let given = u32::try_from(request.approvals.len()).unwrap_or(u32::MAX);
        handle["progress"] = json!({
            "current_step": given.saturating_add(1).min(required.max(1)),
            "total_steps": required,
            "step_name": "approval",
        });
        handle["display"] = json!({
            "title": "Access request submitted",
            "description": format!(
                "{} for {} waits for {} more approval(s).",
                request.entitlement,
                request.subject,
                required.saturating_sub(given)
            ),
        });
    }
    let mut body = json!({ "task": handle });
    // Approval never allows by itself: the PEP evaluates again, and the lease decides.
    if status == "approved"
        && let Some(grant) = &task.grant
    {
        body["result"] = json!({
            "mode": "reevaluate",
            "approval": {
                "id": grant.id,
                "approved_at": grant.granted_at.unwrap_or(request.created_at),
                "approved_until": grant.expires_at,
            },
        });
    }
    body
}

fn with_location(mut response: Response, location: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// `POST /access/v1/requests`.
pub async fn submit(
    State(state): State<AppState>,
    ArsCaller(caller): ArsCaller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    let submission = submission(&headers, &body)?;
    let urls = arap_urls(&state, &headers);
    let task = state
        .engine
        .submit_access_request(&caller, submission, &urls)
        .await?;
    // Finished at once (granted outright, or denied by policy): 201; waiting: 202.
    let status = if status_of(&task) == "pending" {
        StatusCode::ACCEPTED
    } else {
        StatusCode::CREATED
    };
    let location = status_endpoint(&urls, &task.id);
    Ok(with_location(
        (status, axum::Json(task_body(&task, &urls))).into_response(),
        &location,
    ))
}

/// `GET /access/v1/requests/{task}`.
pub async fn status(
    State(state): State<AppState>,
    ArsCaller(caller): ArsCaller,
    headers: HeaderMap,
    Segment(id): Segment,
) -> Result<axum::Json<Value>, Problem> {
    let task = state.engine.access_task(&caller, &id).await?;
    Ok(axum::Json(task_body(&task, &arap_urls(&state, &headers))))
}

/// `POST` or `DELETE /access/v1/requests/{task}/cancel`: the requester cancels a task
/// still waiting. Any body is ignored (its `reason` and `comment` are not kept).
pub async fn cancel(
    State(state): State<AppState>,
    ArsCaller(caller): ArsCaller,
    headers: HeaderMap,
    Segment(id): Segment,
) -> Result<axum::Json<Value>, Problem> {
    let task = state.engine.cancel_access_task(&caller, &id).await?;
    Ok(axum::Json(task_body(&task, &arap_urls(&state, &headers))))
}

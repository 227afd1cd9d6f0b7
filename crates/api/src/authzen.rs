//! The OpenID AuthZEN Authorization API 1.0, for entitlements enforced by the PEPs that
//! ask (docs/authzen.md): `GET /.well-known/authzen-configuration` (PDP metadata),
//! `POST /access/v1/evaluation` and `POST /access/v1/evaluations` (batch). Its errors
//! are the specification's: a status and an error message string as the body.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use writ_engine::Caller;
use writ_engine::arap::{ArapUrls, Evaluated, RequestableDenial};
use writ_engine::pdp::{AccessQuestion, DenyReason, PdpAnswer};

use crate::AppState;
use crate::error::{ApiError, BEARER_CHALLENGE};

/// The most evaluations one batch may carry.
pub const EVALUATIONS_MAX: usize = 1000;

/// A failure of the whole call: its status and a message string as the body.
#[derive(Debug)]
pub struct PdpError {
    status: StatusCode,
    message: String,
    challenge: Option<&'static str>,
    retry_after_seconds: Option<u64>,
}

impl PdpError {
    fn bad_request(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            challenge: None,
            retry_after_seconds: None,
        }
    }
}

impl From<ApiError> for PdpError {
    fn from(error: ApiError) -> Self {
        Self {
            status: error.status,
            challenge: error
                .challenge
                .or_else(|| (error.status == StatusCode::UNAUTHORIZED).then_some(BEARER_CHALLENGE)),
            retry_after_seconds: error.retry_after_seconds,
            message: error.message,
        }
    }
}

impl From<writ_engine::EngineError> for PdpError {
    fn from(error: writ_engine::EngineError) -> Self {
        ApiError::from(error).into()
    }
}

impl IntoResponse for PdpError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            self.message,
        )
            .into_response();
        if let Some(challenge) = self.challenge {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        if let Some(seconds) = self.retry_after_seconds {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// The caller of an evaluation. Enforcement points in `[authzen].clients` ask for every
/// request they guard, so they are not held to `rate_limit_per_identity`; others are.
pub struct PdpCaller(Caller);

impl axum::extract::FromRequestParts<AppState> for PdpCaller {
    type Rejection = PdpError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PdpError> {
        let caller = crate::auth::authenticate(parts, state).await?;
        if !state.engine.config().authzen.clients.contains(&caller.name) {
            state.limits.check_identity(caller.name.as_str())?;
        }
        Ok(Self(caller))
    }
}

/// `GET /.well-known/authzen-configuration`: where the endpoints are. Public, as the
/// specification's discovery is; it names no subject, resource or policy.
pub async fn metadata(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let base = crate::handlers::public_base(&state, &headers);
    let mut metadata = json!({
        "policy_decision_point": base,
        "access_evaluation_endpoint": format!("{base}/access/v1/evaluation"),
        "access_evaluations_endpoint": format!("{base}/access/v1/evaluations"),
    });
    // The Access Request and Approval Profile, where writ signs binding tokens.
    if state.engine.authzen_jwks().is_some() {
        metadata["access_request_endpoint"] = json!(format!("{base}/access/v1/requests"));
        metadata["jwks_uri"] = json!(format!("{base}/access/v1/jwks"));
        metadata["capabilities"] = json!([ACCESS_REQUEST_CAPABILITY]);
    }
    axum::Json(metadata).into_response()
}

/// The capability of the Access Request and Approval Profile.
pub const ACCESS_REQUEST_CAPABILITY: &str = "urn:openid:authzen:capability:access-request";

/// Where the profile's endpoints are for a call that came in with `headers`.
pub(crate) fn arap_urls(state: &AppState, headers: &HeaderMap) -> ArapUrls {
    ArapUrls {
        issuer: crate::handlers::public_base(state, headers),
    }
}

/// The request body as a JSON object, or the specification's 400.
fn json_object(headers: &HeaderMap, body: &Bytes) -> Result<Map<String, Value>, PdpError> {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !json {
        return Err(PdpError {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            message: "the body must be JSON, sent with Content-Type: application/json".into(),
            challenge: None,
            retry_after_seconds: None,
        });
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(_) => Err(PdpError::bad_request("the body must be a JSON object")),
        Err(error) => Err(PdpError::bad_request(format!(
            "the body is not valid JSON: {error}"
        ))),
    }
}

/// `entity.key` as a non-empty string.
fn text(entity: &Value, name: &str, key: &str) -> Result<String, PdpError> {
    match entity.get(key) {
        Some(Value::String(value)) if !value.is_empty() => Ok(value.clone()),
        Some(Value::String(_)) => Err(PdpError::bad_request(format!(
            "{name}.{key} must not be empty"
        ))),
        Some(_) => Err(PdpError::bad_request(format!(
            "{name}.{key} must be a string"
        ))),
        None => Err(PdpError::bad_request(format!("{name}.{key} is required"))),
    }
}

fn entity<'a>(
    evaluation: &'a Map<String, Value>,
    defaults: &'a Map<String, Value>,
    name: &str,
) -> Result<&'a Value, PdpError> {
    let value = evaluation
        .get(name)
        .or_else(|| defaults.get(name))
        .ok_or_else(|| PdpError::bad_request(format!("{name} is required")))?;
    if value.is_object() {
        Ok(value)
    } else {
        Err(PdpError::bad_request(format!("{name} must be an object")))
    }
}

/// One evaluation: its question, the objects it was asked with, and whether it
/// presented an approval (`context.approval`, the profile's re-evaluation).
pub(crate) struct Asked {
    pub question: AccessQuestion,
    pub evaluated: Evaluated,
    pub approval_presented: bool,
}

/// One evaluation's question, its own keys over the batch's defaults.
pub(crate) fn question(
    evaluation: &Map<String, Value>,
    defaults: &Map<String, Value>,
) -> Result<Asked, PdpError> {
    let subject = entity(evaluation, defaults, "subject")?;
    let resource = entity(evaluation, defaults, "resource")?;
    let action = entity(evaluation, defaults, "action")?;
    let context = evaluation
        .get("context")
        .or_else(|| defaults.get("context"));
    if let Some(context) = context
        && !context.is_object()
    {
        return Err(PdpError::bad_request("context must be an object"));
    }
    Ok(Asked {
        question: AccessQuestion {
            subject_type: text(subject, "subject", "type")?,
            subject_id: text(subject, "subject", "id")?,
            resource_type: text(resource, "resource", "type")?,
            resource_id: text(resource, "resource", "id")?,
            action: text(action, "action", "name")?,
        },
        evaluated: Evaluated {
            subject: subject.clone(),
            resource: resource.clone(),
            action: action.clone(),
        },
        approval_presented: context.is_some_and(|c| c.get("approval").is_some()),
    })
}

/// A Decision object for one answer, with its requestable denial if it has one.
fn decision(
    answer: &PdpAnswer,
    requestable: Option<&RequestableDenial>,
    approval_presented: bool,
    urls: &ArapUrls,
    evaluated_at: &str,
) -> Value {
    match answer {
        PdpAnswer::Allow(grant, uses_left) => {
            let mut allowed = json!({
                "decision": true,
                "context": {
                    "evaluated_at": evaluated_at,
                    "grant": {
                        "id": grant.id,
                        "entitlement": grant.entitlement,
                        "expires_at": grant.expires_at,
                    },
                },
            });
            if let Some(left) = uses_left {
                allowed["context"]["grant"]["uses_left"] = json!(left);
            }
            allowed
        }
        PdpAnswer::Deny(reason) => {
            let mut context = json!({ "evaluated_at": evaluated_at, "reason": reason.code() });
            if let DenyReason::NoActiveLease(entitlements) = reason {
                context["entitlements"] = json!(entitlements);
            }
            if let Some(denial) = requestable {
                context["evaluation_id"] = json!(denial.evaluation_id);
                context["access_request"] = access_request(denial, urls);
            }
            // A re-evaluation with an approval that does not (or no longer) allow: what
            // the PEP should do next.
            if approval_presented {
                context["next_action"] = json!(if requestable.is_some() {
                    "request"
                } else {
                    "none"
                });
            }
            json!({ "decision": false, "context": context })
        }
    }
}

/// `context.access_request` of a requestable denial.
fn access_request(denial: &RequestableDenial, urls: &ArapUrls) -> Value {
    let description = match denial.approvals_required {
        None => format!("{} is granted at once when you ask.", denial.entitlement),
        Some(1) => format!("{} needs 1 approval.", denial.entitlement),
        Some(n) => format!("{} needs {n} approvals.", denial.entitlement),
    };
    json!({
        "endpoint": urls.access_request_endpoint(),
        "template": denial.entitlement,
        "expires_at": denial.expires_at,
        "binding_token": denial.binding_token,
        "request_schema_url": format!("{}/access/v1/request-schema", urls.issuer),
        "display": {
            "title": format!("Request {}", denial.entitlement),
            "description": description,
        },
    })
}

/// A batch item that could not be decided: denied, with the error in its context.
fn item_error(error: &PdpError, evaluated_at: &str) -> Value {
    json!({
        "decision": false,
        "context": {
            "evaluated_at": evaluated_at,
            "error": { "status": error.status.as_u16(), "message": error.message },
        },
    })
}

/// One evaluation's Decision, and whether it allows.
async fn answer(
    state: &AppState,
    caller: &Caller,
    asked: &Asked,
    urls: &ArapUrls,
    evaluated_at: &str,
) -> Result<(Value, bool), PdpError> {
    let question = &asked.question;
    state
        .engine
        .may_evaluate(caller, &question.subject_id)
        .map_err(ApiError::from)?;
    let answer = state
        .engine
        .evaluate_access(caller, question)
        .await
        .map_err(PdpError::from)?;
    let requestable = match &answer {
        PdpAnswer::Deny(DenyReason::NoActiveLease(entitlements)) => state
            .engine
            .requestable_denial(caller, question, &asked.evaluated, entitlements, urls)
            .await
            .map_err(PdpError::from)?,
        _ => None,
    };
    let allowed = matches!(answer, PdpAnswer::Allow(..));
    Ok((
        decision(
            &answer,
            requestable.as_ref(),
            asked.approval_presented,
            urls,
            evaluated_at,
        ),
        allowed,
    ))
}

fn now_text(state: &AppState) -> String {
    state.engine.now().to_string()
}

/// `POST /access/v1/evaluation`.
pub async fn evaluation(
    State(state): State<AppState>,
    PdpCaller(caller): PdpCaller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<axum::Json<Value>, PdpError> {
    let request = json_object(&headers, &body)?;
    single(&state, &caller, &request, &arap_urls(&state, &headers)).await
}

/// The one evaluation a request's top level describes, as a Decision.
async fn single(
    state: &AppState,
    caller: &Caller,
    request: &Map<String, Value>,
    urls: &ArapUrls,
) -> Result<axum::Json<Value>, PdpError> {
    let asked = question(request, &Map::new())?;
    let (decision, _) = answer(state, caller, &asked, urls, &now_text(state)).await?;
    Ok(axum::Json(decision))
}

/// How a batch is run (`options.evaluations_semantic`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Semantic {
    ExecuteAll,
    DenyOnFirstDeny,
    PermitOnFirstPermit,
}

fn semantic(request: &Map<String, Value>) -> Result<Semantic, PdpError> {
    let Some(options) = request.get("options") else {
        return Ok(Semantic::ExecuteAll);
    };
    let Some(options) = options.as_object() else {
        return Err(PdpError::bad_request("options must be an object"));
    };
    match options.get("evaluations_semantic") {
        None => Ok(Semantic::ExecuteAll),
        Some(Value::String(text)) => match text.as_str() {
            "execute_all" => Ok(Semantic::ExecuteAll),
            "deny_on_first_deny" => Ok(Semantic::DenyOnFirstDeny),
            "permit_on_first_permit" => Ok(Semantic::PermitOnFirstPermit),
            other => Err(PdpError::bad_request(format!(
                "options.evaluations_semantic {other:?} is not one of execute_all, deny_on_first_deny, permit_on_first_permit"
            ))),
        },
        Some(_) => Err(PdpError::bad_request(
            "options.evaluations_semantic must be a string",
        )),
    }
}

/// `POST /access/v1/evaluations`: each evaluation's keys over the top-level defaults;
/// without evaluations, the single evaluation the top level describes.
pub async fn evaluations(
    State(state): State<AppState>,
    PdpCaller(caller): PdpCaller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<axum::Json<Value>, PdpError> {
    let request = json_object(&headers, &body)?;
    let semantic = semantic(&request)?;
    let items: Vec<Map<String, Value>> = match request.get("evaluations") {
        None => Vec::new(),
        Some(Value::Array(items)) => {
            if items.len() > EVALUATIONS_MAX {
                return Err(PdpError::bad_request(format!(
                    "at most {EVALUATIONS_MAX} evaluations in one call"
                )));
            }
            items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    item.as_object().cloned().ok_or_else(|| {
                        PdpError::bad_request(format!("evaluations[{i}] must be an object"))
                    })
                })
                .collect::<Result<_, _>>()?
        }
        Some(_) => return Err(PdpError::bad_request("evaluations must be an array")),
    };
    let urls = arap_urls(&state, &headers);
    if items.is_empty() {
        return single(&state, &caller, &request, &urls).await;
    }
    // Every question is checked before any is answered: a malformed one is the whole
    // call's 400, as the specification's required keys are.
    let questions: Vec<Asked> = items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            question(item, &request).map_err(|error| {
                PdpError::bad_request(format!("evaluations[{i}]: {}", error.message))
            })
        })
        .collect::<Result<_, _>>()?;
    let evaluated_at = now_text(&state);
    let mut decisions = Vec::with_capacity(questions.len());
    for asked in &questions {
        let (value, allowed) = match answer(&state, &caller, asked, &urls, &evaluated_at).await {
            Ok(answered) => answered,
            // The store failing fails the call; a refusal is this item's answer.
            Err(error) if error.status.is_server_error() => return Err(error),
            Err(error) => (item_error(&error, &evaluated_at), false),
        };
        decisions.push(value);
        let stop = match semantic {
            Semantic::ExecuteAll => false,
            Semantic::DenyOnFirstDeny => !allowed,
            Semantic::PermitOnFirstPermit => allowed,
        };
        if stop {
            break;
        }
    }
    Ok(axum::Json(json!({ "evaluations": decisions })))
}

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
    axum::Json(json!({
        "policy_decision_point": base,
        "access_evaluation_endpoint": format!("{base}/access/v1/evaluation"),
        "access_evaluations_endpoint": format!("{base}/access/v1/evaluations"),
    }))
    .into_response()
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

/// One evaluation's question, its own keys over the batch's defaults.
fn question(
    evaluation: &Map<String, Value>,
    defaults: &Map<String, Value>,
) -> Result<AccessQuestion, PdpError> {
    let subject = entity(evaluation, defaults, "subject")?;
    let resource = entity(evaluation, defaults, "resource")?;
    let action = entity(evaluation, defaults, "action")?;
    if let Some(context) = evaluation
        .get("context")
        .or_else(|| defaults.get("context"))
        && !context.is_object()
    {
        return Err(PdpError::bad_request("context must be an object"));
    }
    Ok(AccessQuestion {
        subject_type: text(subject, "subject", "type")?,
        subject_id: text(subject, "subject", "id")?,
        resource_type: text(resource, "resource", "type")?,
        resource_id: text(resource, "resource", "id")?,
        action: text(action, "action", "name")?,
    })
}

/// A Decision object for one answer.
fn decision(answer: &PdpAnswer, evaluated_at: &str) -> Value {
    match answer {
        PdpAnswer::Allow(grant) => json!({
            "decision": true,
            "context": {
                "evaluated_at": evaluated_at,
                "grant": {
                    "id": grant.id,
                    "entitlement": grant.entitlement,
                    "expires_at": grant.expires_at,
                },
            },
        }),
        PdpAnswer::Deny(reason) => {
            let mut context = json!({ "evaluated_at": evaluated_at, "reason": reason.code() });
            if let DenyReason::NoActiveLease(entitlements) = reason {
                context["entitlements"] = json!(entitlements);
            }
            json!({ "decision": false, "context": context })
        }
    }
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

async fn answer(
    state: &AppState,
    caller: &Caller,
    question: &AccessQuestion,
) -> Result<PdpAnswer, PdpError> {
    state
        .engine
        .may_evaluate(caller, &question.subject_id)
        .map_err(ApiError::from)?;
    state
        .engine
        .evaluate_access(question)
        .await
        .map_err(PdpError::from)
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
    single(&state, &caller, &request).await
}

/// The one evaluation a request's top level describes, as a Decision.
async fn single(
    state: &AppState,
    caller: &Caller,
    request: &Map<String, Value>,
) -> Result<axum::Json<Value>, PdpError> {
    let question = question(request, &Map::new())?;
    let answer = answer(state, caller, &question).await?;
    Ok(axum::Json(decision(&answer, &now_text(state))))
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
    if items.is_empty() {
        return single(&state, &caller, &request).await;
    }
    // Every question is checked before any is answered: a malformed one is the whole
    // call's 400, as the specification's required keys are.
    let questions: Vec<AccessQuestion> = items
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
    for question in &questions {
        let (value, allowed) = match answer(&state, &caller, question).await {
            Ok(answer) => (
                decision(&answer, &evaluated_at),
                matches!(answer, PdpAnswer::Allow(_)),
            ),
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

//! Request access: the form (an entitlement picker that searches as you type, how
//! long, why, which ticket), the decision previewed before submitting — by the same
//! dry run as `POST /v1/requests/preview`, nothing recorded — and a request's page.

use askama::Template;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use writ_domain::lifecycle::RequestState;
use writ_domain::{Request, Ticket};
use writ_engine::{EntitlementView, IssuedCredential, NewRequest};

use super::{Chrome, UiError, Viewer, render, see_other, view};
use crate::AppState;
use crate::error::ApiError;
use crate::segment::Segment;

/// What the form holds, as typed: given back unchanged when something is wrong, so
/// nothing typed is lost.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct RequestForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    pub entitlement: String,
    #[serde(default)]
    pub subject: String,
    #[serde(default)]
    pub duration: String,
    #[serde(default)]
    pub justification: String,
    #[serde(default)]
    pub ticket_system: String,
    #[serde(default)]
    pub ticket_key: String,
}

impl RequestForm {
    fn to_new_request(&self, preview: bool) -> Result<NewRequest, ApiError> {
        let duration_seconds = match self.duration.trim() {
            "" => None,
            text => Some(
                writ_domain::parse_duration_seconds(text)
                    .map_err(|e| ApiError::malformed(format!("duration: {e}")))?,
            ),
        };
        let ticket = match (self.ticket_system.trim(), self.ticket_key.trim()) {
            ("", "") => None,
            (_, "") => return Err(ApiError::malformed("a ticket needs its key")),
            ("", _) => return Err(ApiError::malformed("a ticket needs its system")),
            (system, key) => Some(Ticket {
                system: system.to_string(),
                key: key.to_string(),
                verified: None,
            }),
        };
        let justification = if preview && self.justification.trim().is_empty() {
            // The preview answers before the reason is written; submitting needs one.
            "(not written yet)".to_string()
        } else {
            self.justification.clone()
        };
        Ok(NewRequest {
            entitlement: self.entitlement.trim().to_string(),
            subject: Some(self.subject.trim())
                .filter(|s| !s.is_empty())
                .map(str::to_string),
            duration_seconds,
            justification,
            ticket,
            on_behalf_of: None,
            extends: None,
        })
    }
}

/// The decision as one sentence and what stands behind it.
pub(super) struct PreviewView {
    pub tone: &'static str,
    pub headline: String,
    pub details: Vec<String>,
}

impl PreviewView {
    fn of(state: &AppState, request: &Request, justification_missing: bool) -> Self {
        let duration = view::duration(request.duration_seconds);
        let (tone, headline) = match request.state {
            RequestState::Approved => ("good", format!("Automatic, up to {duration}")),
            RequestState::PendingApproval => {
                let approvers: Vec<String> = state
                    .engine
                    .approvers(request)
                    .into_iter()
                    .map(String::from)
                    .collect();
                let needed = request.decision.approvals_required;
                let plural = if needed == 1 { "" } else { "s" };
                let from = if approvers.is_empty() {
                    "an approver (nobody may approve it now)".to_string()
                } else {
                    approvers.join(", ")
                };
                (
                    "wait",
                    format!("Needs {needed} approval{plural} from {from}, at most {duration}"),
                )
            }
            _ => (
                "bad",
                format!("Denied: {}", request.decision.reasons.join("; ")),
            ),
        };
        let mut details = Vec::new();
        if request.state == RequestState::Denied {
            details.extend(state.engine.denial_hints(request));
        } else if request.duration_seconds < request.requested_duration_seconds {
            details.push(format!(
                "You asked for {}; it is capped at {duration}.",
                view::duration(request.requested_duration_seconds)
            ));
        }
        if let Some(check) = request.ticket.as_ref().and_then(|t| t.verified.as_ref()) {
            details.push(format!(
                "Ticket checked: {} ({})",
                check.state, check.ticket_type
            ));
        }
        if !request.decision.policies.is_empty() {
            details.push(format!(
                "Decided by {}",
                request.decision.policies.join(", ")
            ));
        }
        if justification_missing {
            details.push("Say why before you submit: writ requires a justification.".into());
        }
        Self {
            tone,
            headline,
            details,
        }
    }

    fn problem(error: &ApiError) -> Self {
        Self {
            tone: "bad",
            headline: error.message.clone(),
            details: Vec::new(),
        }
    }
}

pub(super) struct EntitlementOption {
    pub id: String,
    pub label: String,
}

fn option(entitlement: &EntitlementView) -> EntitlementOption {
    let answer = match entitlement.without_ticket.outcome.as_str() {
        "auto" => "automatic".to_string(),
        "approval" => format!(
            "{} approval(s)",
            entitlement.without_ticket.approvals_required
        ),
        _ if entitlement.with_ticket.outcome != "deny" => "with a ticket".to_string(),
        _ => "not for you".to_string(),
    };
    EntitlementOption {
        id: entitlement.id.clone(),
        label: format!(
            "{} · {} · up to {} · {answer}",
            entitlement.target,
            entitlement.sensitivity,
            view::duration(entitlement.max_duration_seconds)
        ),
    }
}

#[derive(Template)]
#[template(path = "ui/request.html")]
struct RequestPage {
    chrome: Chrome,
    entitlements: Vec<EntitlementOption>,
    systems: Vec<String>,
    form: RequestForm,
    preview: Option<PreviewView>,
    problem: Option<String>,
}

#[derive(Template)]
#[template(path = "ui/preview.html")]
struct PreviewFragment {
    preview: Option<PreviewView>,
}

async fn request_page(
    state: &AppState,
    viewer: &Viewer,
    form: RequestForm,
    preview: Option<PreviewView>,
    problem: Option<&ApiError>,
) -> Result<Response, UiError> {
    let entitlements = state
        .engine
        .entitlements_for(&viewer.caller)
        .await?
        .iter()
        .map(option)
        .collect();
    let page = RequestPage {
        chrome: viewer.chrome("request"),
        entitlements,
        systems: state.engine.config().itsms.keys().cloned().collect(),
        form,
        preview,
        problem: problem.map(|e| e.message.clone()),
    };
    let mut response = render(&page)?;
    if let Some(error) = problem {
        *response.status_mut() = error.status;
    }
    Ok(response)
}

#[derive(Debug, Deserialize)]
pub(crate) struct FormQuery {
    entitlement: Option<String>,
}

pub(super) async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
    axum::extract::Query(query): axum::extract::Query<FormQuery>,
) -> Result<Response, UiError> {
    let form = RequestForm {
        entitlement: query.entitlement.unwrap_or_default(),
        ..RequestForm::default()
    };
    request_page(&state, &viewer, form, None, None).await
}

async fn decide_preview(state: &AppState, viewer: &Viewer, form: &RequestForm) -> PreviewView {
    let new = match form.to_new_request(true) {
        Ok(new) => new,
        Err(error) => return PreviewView::problem(&error),
    };
    match state.engine.preview_request(&viewer.caller, new).await {
        Ok(request) => PreviewView::of(state, &request, form.justification.trim().is_empty()),
        Err(error) => PreviewView::problem(&error.into()),
    }
}

/// The decision writ would make now. For the script, the preview alone (a fragment);
/// without it, the form again with the preview above the submit button.
pub(super) async fn preview(
    State(state): State<AppState>,
    viewer: Viewer,
    headers: HeaderMap,
    body: Result<axum::Form<RequestForm>, axum::extract::rejection::FormRejection>,
) -> Result<Response, UiError> {
    let body = super::form(body)?;
    viewer.require_csrf(&state, &body.csrf_token)?;
    let preview = decide_preview(&state, &viewer, &body).await;
    if headers.contains_key("x-writ-fragment") {
        return render(&PreviewFragment {
            preview: Some(preview),
        });
    }
    request_page(&state, &viewer, body, Some(preview), None).await
}

#[derive(Template)]
#[template(path = "ui/credential.html")]
struct CredentialPage {
    chrome: Chrome,
    request_id: String,
    grant_id: String,
    username: String,
    password: String,
    expires_when: String,
}

pub(super) fn credential_page(
    viewer: &Viewer,
    request_id: String,
    grant_id: String,
    credential: IssuedCredential,
) -> Result<Response, UiError> {
    render(&CredentialPage {
        chrome: viewer.chrome("access"),
        request_id,
        grant_id,
        username: credential.username,
        password: credential.password,
        expires_when: view::when(credential.expires_at),
    })
}

pub(super) async fn submit(
    State(state): State<AppState>,
    viewer: Viewer,
    body: Result<axum::Form<RequestForm>, axum::extract::rejection::FormRejection>,
) -> Result<Response, UiError> {
    let body = super::form(body)?;
    viewer.require_csrf(&state, &body.csrf_token)?;
    let new = match body.to_new_request(false) {
        Ok(new) => new,
        Err(error) => return request_page(&state, &viewer, body, None, Some(&error)).await,
    };
    match state
        .engine
        .create_request_issuing(&viewer.caller, new)
        .await
    {
        Ok((request, Some(credential))) => credential_page(
            &viewer,
            request.id.to_string(),
            request
                .grant_id
                .map(|id| id.to_string())
                .unwrap_or_default(),
            credential,
        ),
        Ok((request, None)) => Ok(see_other(&format!("/ui/requests/{}", request.id))),
        Err(error) => {
            let error = ApiError::from(error);
            if error.status.is_server_error() {
                return Err(error.into());
            }
            request_page(&state, &viewer, body, None, Some(&error)).await
        }
    }
}

pub(super) struct ApprovalRow {
    pub approver: String,
    pub at: String,
    pub comment: String,
}

#[derive(Template)]
#[template(path = "ui/request_show.html")]
struct RequestShow {
    chrome: Chrome,
    request: super::approvals::PendingView,
    state_name: String,
    tone: &'static str,
    approvals: Vec<ApprovalRow>,
    hints: Vec<String>,
    closed: Option<String>,
    grant: Option<String>,
    may_cancel: bool,
    may_decide: bool,
}

pub(super) async fn show(
    State(state): State<AppState>,
    viewer: Viewer,
    Segment(id): Segment,
) -> Result<Response, UiError> {
    let id = state.engine.resolve_request(&id).await?;
    show_page(&state, &viewer, id, None).await
}

/// A request's page, with `problem` (a refused decision) above it.
pub(super) async fn show_page(
    state: &AppState,
    viewer: &Viewer,
    id: writ_domain::RequestId,
    problem: Option<String>,
) -> Result<Response, UiError> {
    let request = state.engine.visible_request(&viewer.caller, id).await?;
    let pending = request.state == RequestState::PendingApproval;
    let approvers: Vec<String> = if pending {
        state
            .engine
            .approvers(&request)
            .into_iter()
            .map(String::from)
            .collect()
    } else {
        Vec::new()
    };
    let may_decide = approvers
        .iter()
        .any(|name| name == viewer.caller.name.as_str());
    let mut shown = super::approvals::PendingView::new(state, &request, approvers);
    shown.problem = problem;
    let page = RequestShow {
        chrome: viewer.chrome("access"),
        state_name: request.state.to_string(),
        tone: view::request_tone(request.state),
        approvals: request
            .approvals
            .iter()
            .map(|a| ApprovalRow {
                approver: a.approver.to_string(),
                at: view::when(a.at),
                comment: a.comment.clone(),
            })
            .collect(),
        hints: if request.state == RequestState::Denied {
            state.engine.denial_hints(&request)
        } else {
            Vec::new()
        },
        closed: request.closed_by.as_ref().map(|who| {
            let comment = request
                .close_comment
                .as_deref()
                .filter(|c| !c.is_empty())
                .map(|c| format!(": “{c}”"))
                .unwrap_or_default();
            format!("by {who}{comment}")
        }),
        grant: request.grant_id.map(|g| g.to_string()),
        may_cancel: pending && request.requester == viewer.caller.name,
        may_decide,
        request: shown,
    };
    render(&page)
}

#[derive(Debug, Deserialize)]
pub(crate) struct CsrfForm {
    #[serde(default)]
    csrf_token: String,
}

pub(super) async fn cancel(
    State(state): State<AppState>,
    viewer: Viewer,
    Segment(id): Segment,
    body: Result<axum::Form<CsrfForm>, axum::extract::rejection::FormRejection>,
) -> Result<Response, UiError> {
    let body = super::form(body)?;
    viewer.require_csrf(&state, &body.csrf_token)?;
    let id = state.engine.resolve_request(&id).await?;
    state.engine.cancel(&viewer.caller, id).await?;
    Ok(see_other(&format!("/ui/requests/{id}")).into_response())
}

//! The approvals inbox: the requests I may approve now — exactly those `GET
//! /v1/requests?approvable_by_me=true` answers — with what an approver needs to
//! decide, and approving or rejecting with a comment.

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use writ_domain::Request;
use writ_domain::lifecycle::RequestState;
use writ_store::RequestFilter;

use super::{Chrome, UiError, Viewer, form, render, see_other, view};
use crate::AppState;
use crate::error::ApiError;
use crate::segment::Segment;

/// Enough to work through at once; the rest follow as these are decided.
const INBOX_MAX: usize = 50;
/// Pages of pending requests read to fill the inbox (most may be for other approvers).
const INBOX_PAGES_MAX: usize = 20;

/// A ticket as an approver sees it: what writ read from its system, and a link.
pub(super) struct TicketView {
    pub system: String,
    pub key: String,
    pub checked: Option<String>,
    pub link: Option<String>,
}

/// A request as an approver needs it.
pub(super) struct PendingView {
    pub id: String,
    pub short: String,
    pub requester: String,
    pub subject: String,
    /// An agent's request: the person it acts for.
    pub on_behalf_of: Option<String>,
    /// The agents acting for that person, the requester first (a token's act chain).
    pub acting_agents: Vec<String>,
    pub entitlement: String,
    pub sensitivity: String,
    pub justification: String,
    pub ticket: Option<TicketView>,
    pub duration: String,
    pub approvals_required: u32,
    pub approvals_given: usize,
    pub policies: Vec<String>,
    pub policy_hash: String,
    pub reasons: Vec<String>,
    pub holds: Vec<String>,
    pub created: String,
    pub pending_until: Option<String>,
    pub approvers: Vec<String>,
    pub problem: Option<String>,
}

fn ticket_view(state: &AppState, ticket: &writ_domain::Ticket) -> TicketView {
    let itsm = state.engine.config().itsms.get(&ticket.system);
    let link = itsm.map(|itsm| match itsm.kind {
        writ_config::ItsmKind::Jira => format!("{}/browse/{}", itsm.url, ticket.key),
        writ_config::ItsmKind::ServiceNow => {
            let table = ticket
                .verified
                .as_ref()
                .map_or("sc_req_item", |c| c.ticket_type.as_str());
            let id = ticket.verified.as_ref().map_or("", |c| c.id.as_str());
            format!("{}/nav_to.do?uri={table}.do%3Fsys_id%3D{id}", itsm.url)
        }
    });
    TicketView {
        system: ticket.system.clone(),
        key: ticket.key.clone(),
        checked: ticket.verified.as_ref().map(|check| {
            let approval = check
                .approval
                .as_ref()
                .map(|a| format!(", approval {a}"))
                .unwrap_or_default();
            format!(
                "{} ({}{approval}), read {}",
                check.state,
                check.ticket_type,
                view::when(check.checked_at)
            )
        }),
        link,
    }
}

impl PendingView {
    pub fn new(state: &AppState, request: &Request, approvers: Vec<String>) -> Self {
        let config = state.engine.config();
        Self {
            id: request.id.to_string(),
            short: request.id.short(),
            requester: request.requester.to_string(),
            subject: request.subject.to_string(),
            on_behalf_of: request.on_behalf_of.as_ref().map(ToString::to_string),
            acting_agents: request
                .acting_agents()
                .iter()
                .map(ToString::to_string)
                .collect(),
            entitlement: request.entitlement.to_string(),
            sensitivity: config
                .entitlement(request.entitlement.as_str())
                .map_or("unknown", |e| e.sensitivity.as_str())
                .to_string(),
            justification: request.justification.clone(),
            ticket: request.ticket.as_ref().map(|t| ticket_view(state, t)),
            duration: view::duration(request.duration_seconds),
            approvals_required: request.decision.approvals_required,
            approvals_given: request.approvals.len(),
            policies: request.decision.policies.clone(),
            policy_hash: request.decision.policy_hash.clone(),
            reasons: request.decision.reasons.clone(),
            holds: request.holds.iter().map(ToString::to_string).collect(),
            created: view::when(request.created_at),
            pending_until: request.pending_expires_at.map(view::when),
            approvers,
            problem: None,
        }
    }
}

#[derive(Template)]
#[template(path = "ui/approvals.html")]
struct Inbox {
    chrome: Chrome,
    pending: Vec<PendingView>,
}

pub(super) async fn inbox(
    State(state): State<AppState>,
    viewer: Viewer,
) -> Result<Response, UiError> {
    let mut pending = Vec::new();
    let mut after = None;
    for _ in 0..INBOX_PAGES_MAX {
        let page = state
            .engine
            .requests(
                &viewer.caller,
                RequestFilter {
                    state: Some(RequestState::PendingApproval),
                    limit: Some(writ_store::LIST_LIMIT_MAX),
                    after,
                    ..RequestFilter::default()
                },
                true,
            )
            .await?;
        pending.extend(
            page.items
                .iter()
                .map(|request| PendingView::new(&state, request, Vec::new())),
        );
        after = page.next;
        if after.is_none() || pending.len() >= INBOX_MAX {
            break;
        }
    }
    pending.truncate(INBOX_MAX);
    render(&Inbox {
        chrome: viewer.chrome("approvals"),
        pending,
    })
}

#[derive(Debug, Deserialize)]
pub(crate) struct DecideForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    decision: String,
    #[serde(default)]
    comment: String,
}

/// What an approver is told when writ refuses their decision, in plain words.
fn refusal(error: &ApiError) -> String {
    match error.code {
        writ_engine::ErrorCode::SelfApproval => format!(
            "You cannot approve this request: it is your own, for you, or made by an agent acting for you. Someone else must approve it. ({})",
            error.message
        ),
        writ_engine::ErrorCode::NotAnApprover => format!(
            "No policy makes you an approver of this request, so writ did not record your decision. ({})",
            error.message
        ),
        _ => error.message.clone(),
    }
}

pub(super) async fn decide(
    State(state): State<AppState>,
    viewer: Viewer,
    Segment(id): Segment,
    body: Result<axum::Form<DecideForm>, axum::extract::rejection::FormRejection>,
) -> Result<Response, UiError> {
    let body = form(body)?;
    viewer.require_csrf(&state, &body.csrf_token)?;
    let id = state.engine.resolve_request(&id).await?;
    let outcome = match body.decision.as_str() {
        "approve" => state
            .engine
            .approve_via(
                &viewer.caller,
                id,
                body.comment,
                writ_engine::ApprovedVia::Ui,
            )
            .await
            .map(|_| ()),
        "reject" => state
            .engine
            .reject(&viewer.caller, id, body.comment)
            .await
            .map(|_| ()),
        other => {
            return Err(ApiError::malformed(format!(
                "decision must be approve or reject, not {other:?}"
            ))
            .into());
        }
    };
    match outcome {
        Ok(()) => Ok(see_other(&format!("/ui/requests/{id}"))),
        Err(error) => {
            let error = ApiError::from(error);
            if error.status.is_server_error() {
                return Err(error.into());
            }
            // Shown on the request's own page, which the requester can read too.
            let message = refusal(&error);
            let mut response =
                super::request::show_page(&state, &viewer, id, Some(message)).await?;
            *response.status_mut() = error.status;
            Ok(response)
        }
    }
}

//! A grant's page — the evidence: who asked, for whom, why, under which ticket and
//! policies, who approved, the window, and every ledger event of its life with its
//! hash; downloadable as JSON; revoking it early; collecting a credential.

use askama::Template;
use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use writ_domain::ledger::{Event, EventKind};
use writ_domain::lifecycle::GrantState;
use writ_domain::{Grant, Request};

use super::approvals::PendingView;
use super::{Chrome, UiError, Viewer, form, render, see_other, view};
use crate::AppState;
use crate::segment::Segment;

/// One ledger event as the timeline shows it.
pub(super) struct EventView {
    pub seq: i64,
    pub at: String,
    pub at_exact: String,
    pub kind: String,
    pub actor: String,
    pub hash: String,
    pub prev_hash: String,
    pub lines: Vec<String>,
}

fn record<T: for<'de> Deserialize<'de>>(data: &serde_json::Value, field: &str) -> Option<T> {
    serde_json::from_value(data.get(field)?.clone()).ok()
}

fn at(value: Option<writ_domain::Timestamp>) -> String {
    value.map_or_else(|| "—".to_string(), view::when)
}

/// What an event says, in words; the JSON download has all of it.
fn lines(event: &Event) -> Vec<String> {
    let data = &event.data;
    let request: Option<Request> = record(data, "request");
    let grant: Option<Grant> = record(data, "grant");
    match (event.kind, request, grant) {
        (EventKind::RequestCreated, Some(r), _) => {
            let mut lines = vec![
                format!(
                    "{} asked for {} for {}, {}: “{}”",
                    r.requester,
                    r.entitlement,
                    r.subject,
                    view::duration(r.requested_duration_seconds),
                    r.justification
                ),
                format!(
                    "Decision: {} (granted for {}); policies {}; policy set {}",
                    r.state,
                    view::duration(r.duration_seconds),
                    if r.decision.policies.is_empty() {
                        "none named".to_string()
                    } else {
                        r.decision.policies.join(", ")
                    },
                    r.decision.policy_hash
                ),
            ];
            if let Some(human) = &r.on_behalf_of {
                lines.push(format!("An agent acting for {human}"));
            }
            if let Some(ticket) = &r.ticket {
                lines.push(match &ticket.verified {
                    Some(check) => format!(
                        "Ticket {}:{} read from {}: {} ({})",
                        ticket.system, ticket.key, ticket.system, check.state, check.ticket_type
                    ),
                    None => format!("Ticket {}:{} (not checked)", ticket.system, ticket.key),
                });
            }
            lines.extend(r.decision.reasons.iter().cloned());
            lines
        }
        (EventKind::RequestApprovalRecorded | EventKind::RequestApproved, Some(r), _) => r
            .approvals
            .last()
            .map(|a| {
                let comment = if a.comment.is_empty() {
                    String::new()
                } else {
                    format!(": “{}”", a.comment)
                };
                vec![format!("Approved by {}{comment}", a.approver)]
            })
            .unwrap_or_default(),
        (
            EventKind::RequestRejected | EventKind::RequestCancelled | EventKind::RequestExpired,
            Some(r),
            _,
        ) => vec![format!(
            "{} by {}{}",
            r.state,
            r.closed_by.as_ref().map_or("writ", |w| w.as_str()),
            r.close_comment
                .as_deref()
                .filter(|c| !c.is_empty())
                .map(|c| format!(": “{c}”"))
                .unwrap_or_default()
        )],
        (EventKind::GrantCreated | EventKind::GrantRescheduled, _, Some(g)) if g.permanent => {
            vec![format!(
                "Account {} on {}; no end (a @permanent policy allowed it): revoked only when ended early",
                g.account, g.entitlement
            )]
        }
        (EventKind::GrantCreated | EventKind::GrantRescheduled, _, Some(g)) => vec![format!(
            "Account {} on {}; revocation scheduled for {}{}",
            g.account,
            g.entitlement,
            view::when(g.expires_at),
            g.max_uses
                .map(|n| format!(", or after {n} allowed evaluation(s)"))
                .unwrap_or_default()
        )],
        (EventKind::GrantUsed, _, _) => vec![format!(
            "Used: evaluation {} of {} allowed ({} left)",
            data["use"], data["max_uses"], data["uses_left"]
        )],
        (EventKind::GrantActivated, _, Some(g)) => vec![format!(
            "Applied on the target and read back at {}",
            at(g.granted_at)
        )],
        (EventKind::GrantRevokeStarted, _, Some(g)) => vec![format!(
            "Revocation started ({}) by {}",
            g.revoke_reason.as_ref().map_or("—", |r| r.as_str()),
            g.revoked_by.as_ref().map_or("writ", |w| w.as_str())
        )],
        (EventKind::GrantRevokeFailed, _, _) => vec![format!(
            "The target refused or did not answer: {}",
            data["error"].as_str().unwrap_or("(no detail)")
        )],
        (EventKind::GrantRevoked, _, Some(g)) => vec![match g.retained_by {
            Some(other) => format!(
                "Ended at {}; the account keeps the role through overlapping grant {other}",
                at(g.verified_at)
            ),
            None => format!("Verified gone from the target at {}", at(g.verified_at)),
        }],
        (EventKind::GrantRevokeEscalated, _, _) => {
            vec!["Revocation escalated: it keeps failing".to_string()]
        }
        _ => Vec::new(),
    }
}

fn event_view(event: &Event) -> EventView {
    EventView {
        seq: event.seq,
        at: view::when(event.at),
        at_exact: event.at.to_rfc3339(),
        kind: event.kind.to_string(),
        actor: event.actor.to_string(),
        hash: event.hash.clone(),
        prev_hash: event.prev_hash.clone(),
        lines: lines(event),
    }
}

#[derive(Template)]
#[template(path = "ui/grant.html")]
struct GrantPage {
    chrome: Chrome,
    grant: super::home::GrantRow,
    subject: String,
    window: String,
    capped: Option<String>,
    revoked: Option<String>,
    verified: Option<String>,
    request: PendingView,
    approvals: Vec<String>,
    events: Vec<EventView>,
    may_revoke: bool,
    may_collect: bool,
}

pub(super) async fn timeline(
    State(state): State<AppState>,
    viewer: Viewer,
    Segment(id): Segment,
) -> Result<Response, UiError> {
    let id = state.engine.resolve_grant(&id).await?;
    let (grant, events) = state.engine.grant_history(&viewer.caller, id).await?;
    let request = state.engine.request(grant.request_id).await?;
    let now = state.engine.now();
    let live = matches!(grant.state, GrantState::Active | GrantState::Pending);
    let capped = (request.duration_seconds < request.requested_duration_seconds).then(|| {
        let by = match request.decision.max_duration_seconds {
            Some(cap) if cap <= request.duration_seconds => "policy",
            _ => "the entitlement's maximum, a ticket's change window or the subject's end date",
        };
        format!(
            "asked for {}, capped at {} by {by}",
            view::duration(request.requested_duration_seconds),
            view::duration(request.duration_seconds)
        )
    });
    let page = GrantPage {
        chrome: viewer.chrome("access"),
        subject: grant.subject.to_string(),
        window: format!(
            "{} → {} ({})",
            at(grant.granted_at),
            view::when(grant.expires_at),
            view::duration(request.duration_seconds)
        ),
        capped,
        revoked: grant.revoked_at.map(|when| {
            format!(
                "{} ({}) by {}",
                view::when(when),
                grant.revoke_reason.as_ref().map_or("—", |r| r.as_str()),
                grant.revoked_by.as_ref().map_or("writ", |w| w.as_str())
            )
        }),
        verified: grant.verified_at.map(|when| match grant.retained_by {
            Some(other) => format!(
                "{}: the account keeps the role through overlapping grant {other}",
                view::when(when)
            ),
            None => format!(
                "{}: read back from the target without the access",
                view::when(when)
            ),
        }),
        approvals: request
            .approvals
            .iter()
            .map(|a| {
                format!(
                    "{} at {}{}",
                    a.approver,
                    view::when(a.at),
                    if a.comment.is_empty() {
                        String::new()
                    } else {
                        format!(": “{}”", a.comment)
                    }
                )
            })
            .collect(),
        events: events.iter().map(event_view).collect(),
        may_revoke: live,
        may_collect: grant.credential
            && grant.state == GrantState::Pending
            && grant.subject == viewer.caller.name,
        request: PendingView::new(&state, &request, Vec::new()),
        grant: super::home::GrantRow::new(&grant, now),
    };
    render(&page)
}

/// The grant and every ledger event of its life, exactly as stored (hashes and links
/// included), for tools that check them.
#[derive(Serialize)]
struct History {
    grant: Grant,
    events: Vec<Event>,
}

pub(super) async fn history_json(
    State(state): State<AppState>,
    viewer: Viewer,
    Segment(id): Segment,
) -> Result<Response, UiError> {
    let id = state.engine.resolve_grant(&id).await?;
    let (grant, events) = state.engine.grant_history(&viewer.caller, id).await?;
    let disposition = format!("attachment; filename=\"writ-grant-{id}.json\"");
    Ok((
        [(axum::http::header::CONTENT_DISPOSITION, disposition)],
        Json(History { grant, events }),
    )
        .into_response())
}

/// The grant's evidence document, as Markdown to keep (docs/evidence.md).
pub(super) async fn evidence_markdown(
    State(state): State<AppState>,
    viewer: Viewer,
    Segment(id): Segment,
) -> Result<Response, UiError> {
    let id = state.engine.resolve_grant(&id).await?;
    let document = state.engine.evidence_document(&viewer.caller, id).await?;
    let disposition = format!("attachment; filename=\"writ-evidence-{id}.md\"");
    Ok((
        [
            (axum::http::header::CONTENT_DISPOSITION, disposition),
            (
                axum::http::header::CONTENT_TYPE,
                "text/markdown; charset=utf-8".to_string(),
            ),
        ],
        writ_engine::evidence_doc::render_markdown(&document),
    )
        .into_response())
}

#[derive(Debug, Deserialize)]
pub(crate) struct RevokeForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    reason: String,
}

pub(super) async fn revoke(
    State(state): State<AppState>,
    viewer: Viewer,
    Segment(id): Segment,
    body: Result<axum::Form<RevokeForm>, axum::extract::rejection::FormRejection>,
) -> Result<Response, UiError> {
    let body = form(body)?;
    viewer.require_csrf(&state, &body.csrf_token)?;
    let id = state.engine.resolve_grant(&id).await?;
    state
        .engine
        .revoke_grant(&viewer.caller, id, body.reason)
        .await?;
    Ok(see_other(&format!("/ui/grants/{id}")))
}

#[derive(Debug, Deserialize)]
pub(crate) struct CollectForm {
    #[serde(default)]
    csrf_token: String,
}

pub(super) async fn collect_credential(
    State(state): State<AppState>,
    viewer: Viewer,
    Segment(id): Segment,
    body: Result<axum::Form<CollectForm>, axum::extract::rejection::FormRejection>,
) -> Result<Response, UiError> {
    let body = form(body)?;
    viewer.require_csrf(&state, &body.csrf_token)?;
    let id = state.engine.resolve_grant(&id).await?;
    let (grant, credential) = state.engine.issue_credential(&viewer.caller, id).await?;
    super::request::credential_page(
        &viewer,
        grant.request_id.to_string(),
        grant.id.to_string(),
        credential,
    )
}

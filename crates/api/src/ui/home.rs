//! My access: the leases I hold now, with the time each has left, and my recent
//! requests.

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use writ_domain::lifecycle::GrantState;
use writ_domain::{Grant, Request, Timestamp};
use writ_store::{GrantFilter, RequestFilter};

use super::{Chrome, UiError, Viewer, render, view};
use crate::AppState;

/// The most grants and requests the page lists (older ones: the API and CLI page on).
const SHOWN_MAX: i64 = 50;

pub(super) struct GrantRow {
    pub id: String,
    pub short: String,
    pub entitlement: String,
    pub account: String,
    pub state: String,
    pub tone: &'static str,
    pub expires_at: String,
    pub expires_when: String,
    pub left: String,
    pub live: bool,
    /// Granted without an end: nothing to count down.
    pub permanent: bool,
    /// A credential waiting to be collected by its subject.
    pub collect: bool,
}

impl GrantRow {
    pub fn new(grant: &Grant, now: Timestamp) -> Self {
        let live = matches!(grant.state, GrantState::Active | GrantState::Pending);
        Self {
            id: grant.id.to_string(),
            short: grant.id.short(),
            entitlement: grant.entitlement.to_string(),
            account: grant.account.clone(),
            state: grant.state.to_string(),
            tone: view::grant_tone(grant.state),
            expires_at: grant.expires_at.to_rfc3339(),
            expires_when: view::when(grant.expires_at),
            left: view::left(now, grant.expires_at),
            live,
            permanent: grant.permanent,
            collect: grant.credential && grant.state == GrantState::Pending,
        }
    }
}

pub(super) struct RequestRow {
    pub id: String,
    pub short: String,
    pub entitlement: String,
    pub requester: String,
    pub subject: String,
    pub state: String,
    pub tone: &'static str,
    pub created: String,
    pub grant: Option<String>,
}

impl RequestRow {
    pub fn new(request: &Request) -> Self {
        Self {
            id: request.id.to_string(),
            short: request.id.short(),
            entitlement: request.entitlement.to_string(),
            requester: request.requester.to_string(),
            subject: request.subject.to_string(),
            state: request.state.to_string(),
            tone: view::request_tone(request.state),
            created: view::when(request.created_at),
            grant: request.grant_id.map(|id| id.to_string()),
        }
    }
}

#[derive(Template)]
#[template(path = "ui/home.html")]
struct MyAccess {
    chrome: Chrome,
    grants: Vec<GrantRow>,
    requests: Vec<RequestRow>,
}

pub(super) async fn my_access(
    State(state): State<AppState>,
    viewer: Viewer,
) -> Result<Response, UiError> {
    let me = viewer.caller.name.to_string();
    let now = state.engine.now();
    let mut grants = Vec::new();
    for grant_state in [
        GrantState::Active,
        GrantState::Pending,
        GrantState::Revoking,
    ] {
        let page = state
            .engine
            .visible_grants(
                &viewer.caller,
                GrantFilter {
                    state: Some(grant_state),
                    subject: Some(me.clone()),
                    limit: Some(SHOWN_MAX),
                    ..GrantFilter::default()
                },
            )
            .await?;
        grants.extend(page.items.iter().map(|grant| GrantRow::new(grant, now)));
    }
    // Requests I made and requests made for me (an agent's on my behalf included).
    let mut requests: Vec<Request> = Vec::new();
    for filter in [
        RequestFilter {
            requester: Some(me.clone()),
            limit: Some(SHOWN_MAX),
            ..RequestFilter::default()
        },
        RequestFilter {
            subject: Some(me.clone()),
            limit: Some(SHOWN_MAX),
            ..RequestFilter::default()
        },
    ] {
        for request in state
            .engine
            .requests(&viewer.caller, filter, false)
            .await?
            .items
        {
            if !requests.iter().any(|seen| seen.id == request.id) {
                requests.push(request);
            }
        }
    }
    requests.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
    requests.truncate(usize::try_from(SHOWN_MAX).unwrap_or(50));
    render(&MyAccess {
        chrome: viewer.chrome("access"),
        grants,
        requests: requests.iter().map(RequestRow::new).collect(),
    })
}

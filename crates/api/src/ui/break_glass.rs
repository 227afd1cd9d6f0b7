//! Break-glass: the profiles I may break (policy decides when I do), the activations
//! waiting for my sign-off, and my own activations (everyone's for auditors) — the
//! same calls as `POST /v1/break-glass/{profile}` and `/v1/break-glass/activations`.

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use serde::Deserialize;
use writ_domain::{Activation, ReviewState};
use writ_engine::{BreakGlass, ErrorCode};
use writ_store::ActivationFilter;

use super::{Chrome, UiError, Viewer, form, render, see_other, view};
use crate::AppState;
use crate::error::ApiError;
use crate::segment::Segment;

/// The newest activations listed in each list (the API and CLI page on).
const ACTIVATIONS_SHOWN: i64 = 50;

pub(super) struct ProfileView {
    pub name: String,
    pub entitlements: Vec<String>,
    pub max_duration: String,
    pub review_within: String,
}

pub(super) struct ActivationRow {
    pub id: String,
    pub short: String,
    pub profile: String,
    pub activator: String,
    pub on_behalf_of: Option<String>,
    pub justification: String,
    pub activated: String,
    pub review_due: String,
    pub review_state: &'static str,
    pub tone: &'static str,
    pub reviewer: Option<String>,
    pub review_comment: Option<String>,
    pub requests: Vec<String>,
}

impl ActivationRow {
    fn new(activation: &Activation) -> Self {
        Self {
            id: activation.id.to_string(),
            short: activation.id.short(),
            profile: activation.profile.clone(),
            activator: activation.activator.to_string(),
            on_behalf_of: activation.on_behalf_of.as_ref().map(ToString::to_string),
            justification: activation.justification.clone(),
            activated: view::when(activation.activated_at),
            review_due: view::when(activation.review_due_at),
            review_state: activation.review_state.as_str(),
            tone: match activation.review_state {
                ReviewState::Open => "wait",
                ReviewState::Overdue => "bad",
                ReviewState::SignedOff => "good",
            },
            reviewer: activation.reviewer.as_ref().map(ToString::to_string),
            review_comment: activation.review_comment.clone(),
            requests: activation
                .requests
                .iter()
                .map(ToString::to_string)
                .collect(),
        }
    }
}

#[derive(Template)]
#[template(path = "ui/break_glass.html")]
struct BreakGlassPage {
    chrome: Chrome,
    problem: Option<String>,
    activated: Option<ActivationRow>,
    profiles: Vec<ProfileView>,
    to_sign_off: Vec<ActivationRow>,
    activations: Vec<ActivationRow>,
    everyone: bool,
}

async fn activations(
    state: &AppState,
    viewer: &Viewer,
    reviewable_by_me: bool,
) -> Result<Vec<ActivationRow>, UiError> {
    let page = state
        .engine
        .visible_activations(
            &viewer.caller,
            ActivationFilter {
                review_state: None,
                profile: None,
                activators: None,
                limit: Some(ACTIVATIONS_SHOWN),
                after: None,
            },
            reviewable_by_me,
        )
        .await?;
    Ok(page.items.iter().map(ActivationRow::new).collect())
}

async fn break_glass_page(
    state: &AppState,
    viewer: &Viewer,
    problem: Option<String>,
    activated: Option<ActivationRow>,
) -> Result<Response, UiError> {
    let profiles = state
        .engine
        .config()
        .break_glass
        .values()
        .map(|profile| ProfileView {
            name: profile.name.clone(),
            entitlements: profile
                .entitlements
                .iter()
                .map(ToString::to_string)
                .collect(),
            max_duration: view::duration(profile.max_duration_seconds),
            review_within: view::duration(profile.review_within_seconds),
        })
        .collect();
    render(&BreakGlassPage {
        chrome: viewer.chrome("break-glass"),
        problem,
        activated,
        profiles,
        to_sign_off: activations(state, viewer, true).await?,
        activations: activations(state, viewer, false).await?,
        everyone: viewer.auditor,
    })
}

#[derive(Debug, Deserialize)]
pub(crate) struct PageQuery {
    /// The activation just made, shown at the top.
    activated: Option<String>,
}

pub(super) async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(query): Query<PageQuery>,
) -> Result<Response, UiError> {
    let activated = match query.activated {
        Some(id) => {
            let id = state.engine.resolve_activation(&id).await?;
            let activation = state.engine.visible_activation(&viewer.caller, id).await?;
            Some(ActivationRow::new(&activation))
        }
        None => None,
    };
    break_glass_page(&state, &viewer, None, activated).await
}

#[derive(Debug, Deserialize)]
pub(crate) struct ActivateForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    justification: String,
    /// Empty: the profile's maximum.
    #[serde(default)]
    duration: String,
}

/// A refusal shown on the page, or an error page for what is not the person's doing.
async fn refused(state: &AppState, viewer: &Viewer, error: ApiError) -> Result<Response, UiError> {
    if error.status.is_server_error() || error.status.as_u16() == 404 {
        return Err(error.into());
    }
    let message = match error.code {
        ErrorCode::BreakGlassDenied => format!(
            "No policy lets you break this glass, so nothing was granted. ({})",
            error.message
        ),
        ErrorCode::BreakGlassReviewOverdue => format!(
            "Your earlier activation's review is overdue: someone must sign it off before you may break the glass again. ({})",
            error.message
        ),
        ErrorCode::SelfReview | ErrorCode::SubordinateReview | ErrorCode::SelfApproval => format!(
            "You cannot sign off this activation: it is yours, or you report to the person who made it. Someone else must review it. ({})",
            error.message
        ),
        ErrorCode::NotAnApprover => format!(
            "No policy makes you an approver of what this activation granted, so writ did not record your sign-off. ({})",
            error.message
        ),
        _ => error.message.clone(),
    };
    let status = error.status;
    let mut response = break_glass_page(state, viewer, Some(message), None).await?;
    *response.status_mut() = status;
    Ok(response)
}

pub(super) async fn activate(
    State(state): State<AppState>,
    viewer: Viewer,
    Segment(profile): Segment,
    body: Result<axum::Form<ActivateForm>, axum::extract::rejection::FormRejection>,
) -> Result<Response, UiError> {
    let body = form(body)?;
    viewer.require_csrf(&state, &body.csrf_token)?;
    let duration_seconds = match body.duration.trim() {
        "" => None,
        text => Some(
            writ_domain::parse_duration_seconds(text)
                .map_err(|e| ApiError::malformed(format!("duration: {e}")))?,
        ),
    };
    let asked = BreakGlass {
        justification: body.justification,
        duration_seconds,
        on_behalf_of: None,
    };
    match state
        .engine
        .break_glass(&viewer.caller, &profile, asked)
        .await
    {
        Ok(activated) => Ok(see_other(&format!(
            "/ui/break-glass?activated={}",
            activated.activation.id
        ))),
        Err(error) => refused(&state, &viewer, error.into()).await,
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct SignOffForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    comment: String,
}

pub(super) async fn sign_off(
    State(state): State<AppState>,
    viewer: Viewer,
    Segment(id): Segment,
    body: Result<axum::Form<SignOffForm>, axum::extract::rejection::FormRejection>,
) -> Result<Response, UiError> {
    let body = form(body)?;
    viewer.require_csrf(&state, &body.csrf_token)?;
    let id = state.engine.resolve_activation(&id).await?;
    match state
        .engine
        .sign_off_activation(&viewer.caller, id, body.comment)
        .await
    {
        Ok(_) => Ok(see_other("/ui/break-glass")),
        Err(error) => refused(&state, &viewer, error.into()).await,
    }
}

//! Access reviews: the items waiting for my decision (keep or revoke, with a comment)
//! and the campaigns I take part in with their progress — exactly what `GET
//! /v1/review-items?reviewable_by_me=true` and `GET /v1/reviews` answer.

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use writ_domain::{Campaign, CampaignId, ReviewDecision, ReviewItem, ReviewedAccess, Timestamp};
use writ_engine::ErrorCode;
use writ_store::{CampaignFilter, ReviewItemFilter};

use super::{Chrome, UiError, Viewer, form, render, see_other, view};
use crate::AppState;
use crate::error::ApiError;
use crate::segment::Segment;

/// Enough to work through at once; the rest follow as these are decided.
const ITEMS_MAX: usize = 50;
/// Pages of pending items read to fill the list (most may be for other reviewers).
const ITEM_PAGES_MAX: usize = 20;
/// The newest campaigns listed with their progress.
const CAMPAIGNS_SHOWN: i64 = 20;

/// One item as its reviewer needs it to decide.
pub(super) struct ItemView {
    pub id: String,
    pub entitlement: String,
    pub target: String,
    pub account: String,
    /// Whose access it is, or for an exception who answers for it.
    pub holder: String,
    pub exception: bool,
    /// The grant's timeline, for a grant.
    pub grant: Option<String>,
    pub since: String,
    pub held_for: String,
    pub campaign: String,
    pub due: String,
}

impl ItemView {
    fn new(item: &ReviewItem, campaign: Option<&Campaign>, now: Timestamp) -> Self {
        let (holder, exception, grant) = match &item.access {
            ReviewedAccess::Grant { grant, .. } => (
                item.subject
                    .as_ref()
                    .map_or_else(String::new, ToString::to_string),
                false,
                Some(grant.to_string()),
            ),
            ReviewedAccess::Exception {
                owner, expires_at, ..
            } => (
                format!("{owner} (exception until {})", view::when(*expires_at)),
                true,
                None,
            ),
        };
        Self {
            id: item.id.to_string(),
            entitlement: item.entitlement.to_string(),
            target: item.target.clone(),
            account: item.account.clone(),
            holder,
            exception,
            grant,
            since: view::when(item.since),
            held_for: view::duration((now.millis_since(item.since) / 1000).max(0)),
            campaign: campaign.map_or_else(|| item.campaign.short(), |c| c.name.clone()),
            due: campaign.map_or_else(String::new, |c| view::when(c.due_at)),
        }
    }
}

/// A campaign and how far it got.
pub(super) struct CampaignRow {
    pub name: String,
    pub short: String,
    pub state: String,
    pub due: String,
    pub items: u64,
    pub pending: i64,
    pub kept: i64,
    pub revoked: i64,
    pub by_default: i64,
    pub at_deadline: &'static str,
}

#[derive(Template)]
#[template(path = "ui/reviews.html")]
struct ReviewsPage {
    chrome: Chrome,
    problem: Option<String>,
    items: Vec<ItemView>,
    campaigns: Vec<CampaignRow>,
}

/// What happens to items nobody decided by the deadline.
fn at_deadline(decision: ReviewDecision) -> &'static str {
    match decision {
        ReviewDecision::Keep => "kept",
        ReviewDecision::Revoke => "revoked",
    }
}

/// The items waiting for the viewer, as many pages of the store's as it takes.
async fn waiting_items(state: &AppState, viewer: &Viewer) -> Result<Vec<ReviewItem>, UiError> {
    let mut items = Vec::new();
    let mut after = None;
    for _ in 0..ITEM_PAGES_MAX {
        let page = state
            .engine
            .visible_review_items(
                &viewer.caller,
                ReviewItemFilter {
                    campaign: None,
                    state: None,
                    reviewer: None,
                    subject: None,
                    limit: Some(writ_store::LIST_LIMIT_MAX),
                    after,
                },
                true,
            )
            .await?;
        items.extend(page.items);
        after = page.next;
        if after.is_none() || items.len() >= ITEMS_MAX {
            break;
        }
    }
    items.truncate(ITEMS_MAX);
    Ok(items)
}

pub(super) async fn reviews_page(
    state: &AppState,
    viewer: &Viewer,
    problem: Option<String>,
) -> Result<Response, UiError> {
    let listed = state
        .engine
        .visible_campaigns(
            &viewer.caller,
            CampaignFilter {
                state: None,
                limit: Some(CAMPAIGNS_SHOWN),
                after: None,
            },
        )
        .await?;
    let mut campaigns = Vec::with_capacity(listed.items.len());
    for campaign in &listed.items {
        let progress = state
            .engine
            .visible_campaign(&viewer.caller, campaign.id)
            .await?;
        campaigns.push(CampaignRow {
            name: campaign.name.clone(),
            short: campaign.id.short(),
            state: campaign.state.to_string(),
            due: view::when(campaign.due_at),
            items: campaign.items,
            pending: progress.counts.pending,
            kept: progress.counts.kept,
            revoked: progress.counts.revoked,
            by_default: progress.counts.by_default,
            at_deadline: at_deadline(campaign.default_decision),
        });
    }
    let now = state.engine.now();
    let mut items = Vec::new();
    for item in waiting_items(state, viewer).await? {
        let campaign = match listed.items.iter().find(|c| c.id == item.campaign) {
            Some(campaign) => Some(campaign.clone()),
            None => campaign_of(state, viewer, item.campaign).await?,
        };
        items.push(ItemView::new(&item, campaign.as_ref(), now));
    }
    render(&ReviewsPage {
        chrome: viewer.chrome("reviews"),
        problem,
        items,
        campaigns,
    })
}

/// An item's campaign, for one older than those listed.
async fn campaign_of(
    state: &AppState,
    viewer: &Viewer,
    id: CampaignId,
) -> Result<Option<Campaign>, UiError> {
    match state.engine.visible_campaign(&viewer.caller, id).await {
        Ok(progress) => Ok(Some(progress.campaign)),
        Err(error) if error.code == ErrorCode::NotFound => Ok(None),
        Err(error) => Err(error.into()),
    }
}

pub(super) async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
) -> Result<Response, UiError> {
    reviews_page(&state, &viewer, None).await
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

/// What a reviewer is told when writ refuses their decision, in plain words.
fn refusal(error: &ApiError) -> String {
    match error.code {
        ErrorCode::SelfReview => format!(
            "You cannot review this: it is your own access, or access you benefit from. Someone else must decide it. ({})",
            error.message
        ),
        ErrorCode::NotAReviewer => format!(
            "You are not a reviewer of this item, so writ did not record your decision. ({})",
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
    let decision = match body.decision.as_str() {
        "keep" => ReviewDecision::Keep,
        "revoke" => ReviewDecision::Revoke,
        other => {
            return Err(ApiError::malformed(format!(
                "decision must be keep or revoke, not {other:?}"
            ))
            .into());
        }
    };
    let id = state.engine.resolve_review_item(&id).await?;
    match state
        .engine
        .decide_review_item(&viewer.caller, id, decision, body.comment)
        .await
    {
        Ok(_) => Ok(see_other("/ui/reviews")),
        Err(error) => {
            let error = ApiError::from(error);
            if error.status.is_server_error() || error.status.as_u16() == 404 {
                return Err(error.into());
            }
            let mut response = reviews_page(&state, &viewer, Some(refusal(&error))).await?;
            *response.status_mut() = error.status;
            Ok(response)
        }
    }
}

//! The pages that keep writ honest: findings and exceptions (for the entitlements'
//! owners and auditors), revocations that keep failing, the ledger's state, and
//! pictures of the last weeks (auditors and admins) — each as the API answers it.

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use writ_domain::{FindingReport, FindingState};
use writ_engine::LedgerVerdict;
use writ_engine::reports::ReportName;
use writ_store::FindingFilter;

use super::charts::{BarChart, HEIGHT, WIDTH, revoke_buckets};
use super::home::GrantRow;
use super::{Chrome, UiError, Viewer, form, render, view};
use crate::AppState;

/// The most findings one page lists (the API and CLI page on).
const FINDINGS_SHOWN: i64 = 200;
/// How many days the pictures cover.
const INSIGHT_DAYS: i64 = 30;

pub(super) struct FindingRow {
    pub short: String,
    pub kind: String,
    pub entitlement: String,
    pub account: String,
    pub action: String,
    pub first_seen: String,
    pub last_seen: String,
    pub exception: Option<String>,
    pub last_error: Option<String>,
}

fn finding_row(report: &FindingReport) -> FindingRow {
    let finding = &report.finding;
    FindingRow {
        short: finding.id.short(),
        kind: finding.kind.as_str().to_string(),
        entitlement: finding.entitlement.to_string(),
        account: finding.account.clone(),
        action: finding.action.as_str().to_string(),
        first_seen: view::when(finding.first_seen_at),
        last_seen: view::when(report.last_seen_at),
        exception: finding.exception.as_ref().map(|e| {
            format!(
                "{} answers for it until {}: “{}” (accepted by {})",
                e.owner,
                view::when(e.expires_at),
                e.reason,
                e.accepted_by
            )
        }),
        last_error: report.last_error.clone(),
    }
}

#[derive(Template)]
#[template(path = "ui/findings.html")]
struct FindingsPage {
    chrome: Chrome,
    open: Vec<FindingRow>,
    accepted: Vec<FindingRow>,
}

pub(super) async fn findings(
    State(state): State<AppState>,
    viewer: Viewer,
) -> Result<Response, UiError> {
    let mut lists = Vec::new();
    for finding_state in [FindingState::Open, FindingState::Accepted] {
        let page = state
            .engine
            .visible_findings(
                &viewer.caller,
                FindingFilter {
                    state: Some(finding_state),
                    limit: Some(FINDINGS_SHOWN),
                    ..FindingFilter::default()
                },
            )
            .await?;
        lists.push(page.items.iter().map(finding_row).collect::<Vec<_>>());
    }
    let accepted = lists.pop().unwrap_or_default();
    let open = lists.pop().unwrap_or_default();
    render(&FindingsPage {
        chrome: viewer.chrome("findings"),
        open,
        accepted,
    })
}

pub(super) struct FailingRow {
    pub grant: GrantRow,
    pub subject: String,
    pub attempts: String,
    pub escalated: bool,
    pub last_error: String,
}

#[derive(Template)]
#[template(path = "ui/revocations.html")]
struct RevocationsPage {
    chrome: Chrome,
    failing: Vec<FailingRow>,
    escalated: usize,
}

pub(super) async fn revocations(
    State(state): State<AppState>,
    viewer: Viewer,
) -> Result<Response, UiError> {
    // The failed-revocations report: the same rows as `writ report failed-revocations`.
    let report = state
        .engine
        .report(&viewer.caller, ReportName::FailedRevocations, None)
        .await?;
    let now = state.engine.now();
    let mut failing = Vec::new();
    for row in &report.rows {
        let Some(id) = row.first() else { continue };
        let id = state.engine.resolve_grant(id).await?;
        let grant = state.engine.grant(id).await?;
        let cell = |i: usize| row.get(i).cloned().unwrap_or_default();
        failing.push(FailingRow {
            subject: grant.subject.to_string(),
            grant: GrantRow::new(&grant, now),
            attempts: cell(5),
            escalated: !cell(6).is_empty(),
            last_error: cell(7),
        });
    }
    let escalated = failing.iter().filter(|f| f.escalated).count();
    render(&RevocationsPage {
        chrome: viewer.chrome("revocations"),
        failing,
        escalated,
    })
}

#[derive(Template)]
#[template(path = "ui/ledger.html")]
struct LedgerPage {
    chrome: Chrome,
    head_seq: i64,
    head_hash: String,
    checkpoint: Option<CheckpointView>,
    public_key: Option<String>,
    verdict: Option<(bool, String)>,
}

pub(super) struct CheckpointView {
    pub event_seq: i64,
    pub seq: i64,
    pub head: String,
    pub at: String,
    pub signature: String,
    pub signed_here: Option<bool>,
}

async fn ledger_page(
    state: &AppState,
    viewer: &Viewer,
    verdict: Option<(bool, String)>,
) -> Result<Response, UiError> {
    let status = state.engine.ledger_status(&viewer.caller).await?;
    render(&LedgerPage {
        chrome: viewer.chrome("ledger"),
        head_seq: status.head_seq,
        head_hash: status.head_hash,
        checkpoint: status.checkpoint.map(|(event_seq, c)| CheckpointView {
            event_seq,
            seq: c.seq,
            head: c.head,
            at: view::when(c.at),
            signature: c.signature,
            signed_here: status.checkpoint_signed_by_this_writ,
        }),
        public_key: status.public_key,
        verdict,
    })
}

pub(super) async fn ledger(
    State(state): State<AppState>,
    viewer: Viewer,
) -> Result<Response, UiError> {
    ledger_page(&state, &viewer, None).await
}

#[derive(Debug, Deserialize)]
pub(crate) struct VerifyForm {
    #[serde(default)]
    csrf_token: String,
}

/// Verifies the whole ledger now (chain, replay, tables), one at a time as the API does.
pub(super) async fn verify(
    State(state): State<AppState>,
    viewer: Viewer,
    body: Result<axum::Form<VerifyForm>, axum::extract::rejection::FormRejection>,
) -> Result<Response, UiError> {
    let body = form(body)?;
    viewer.require_csrf(&state, &body.csrf_token)?;
    let _only_one = state.verifying.try_acquire().map_err(|_| {
        crate::error::ApiError::new(
            writ_engine::ErrorCode::VerifyRunning,
            "a verification is running; try again when it has finished",
        )
    })?;
    let verdict = match state.engine.verify_ledger(&viewer.caller).await? {
        LedgerVerdict::Intact { events, head } => (
            true,
            format!(
                "Intact: {events} events, every link, hash and replayed record checked; head {head}."
            ),
        ),
        LedgerVerdict::Broken { events, error, .. } => {
            (false, format!("Broken after {events} events: {error}"))
        }
    };
    ledger_page(&state, &viewer, Some(verdict)).await
}

#[derive(Template)]
#[template(path = "ui/insights.html")]
struct InsightsPage {
    chrome: Chrome,
    days: i64,
    charts: Vec<BarChart>,
    width: i64,
    height: i64,
    sample: usize,
}

pub(super) async fn insights(
    State(state): State<AppState>,
    viewer: Viewer,
) -> Result<Response, UiError> {
    let insights = state.engine.insights(&viewer.caller, INSIGHT_DAYS).await?;
    let per_day = insights
        .grants_per_day
        .iter()
        .map(|(day, n)| (view::when(*day).get(5..10).unwrap_or("").to_string(), *n))
        .collect();
    let by_state = insights.requests_by_state.clone();
    let charts = vec![
        BarChart::new("grants-per-day", "Grants made per day", "grants", per_day),
        BarChart::new(
            "requests-by-outcome",
            "Requests by outcome",
            "requests",
            by_state,
        ),
        BarChart::new(
            "time-to-revoke",
            "Time from a lease's end to verified gone",
            "revocations",
            revoke_buckets(&insights.revoke_seconds),
        ),
    ];
    render(&InsightsPage {
        chrome: viewer.chrome("insights"),
        days: insights.days,
        charts,
        width: WIDTH,
        height: HEIGHT,
        sample: insights.revoke_seconds.len(),
    })
}

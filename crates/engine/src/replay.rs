//! How a proposed policy set would have decided the recorded requests: every
//! `request.created` event since a time, decided again with its recorded facts (who,
//! for whom, what, how long asked, why, the ticket as checked then, when) under the
//! proposed set, and the decisions that change. Read-only: nothing is recorded.
//!
//! Reading and parsing the ledger runs on one task while the decisions run on another,
//! so a replay costs about what its decisions cost.

use serde::Deserialize;
use writ_domain::{Decision, Request, RequestId, Timestamp};
use writ_policy::{PolicyEngine, RequestFacts};
use writ_store::Store;

use crate::EngineError;

/// Events read per page.
const PAGE: i64 = 2_000;
/// Pages parsed ahead of the decisions.
const PAGES_AHEAD: usize = 4;

/// One recorded request whose decision would change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayChange {
    pub request: RequestId,
    pub at: Timestamp,
    pub requester: String,
    pub subject: String,
    pub entitlement: String,
    pub was: Decision,
    pub would_be: Decision,
}

/// What a replay found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayReport {
    /// Recorded requests decided again.
    pub replayed: usize,
    /// Recorded events whose request could not be decided again (an identity or
    /// entitlement no longer configured), with why; not counted as changes.
    pub skipped: usize,
    pub changes: Vec<ReplayChange>,
}

#[derive(Deserialize)]
struct Recorded {
    request: Request,
}

/// Whether two decisions differ in what they give: outcome, approvals, cap.
fn differs(was: &Decision, now: &Decision) -> bool {
    was.outcome != now.outcome
        || was.approvals_required != now.approvals_required
        || was.max_duration_seconds != now.max_duration_seconds
}

/// Decides one recorded request again under `policy`; `None` when it cannot be (its
/// identities or entitlement are not configured any more).
pub fn redecide_recorded(policy: &PolicyEngine, request: &Request) -> Option<Decision> {
    let facts = RequestFacts {
        requester: request.requester.as_str(),
        subject: request.subject.as_str(),
        entitlement: request.entitlement.as_str(),
        duration_seconds: request.requested_duration_seconds,
        justification: &request.justification,
        ticket: request.ticket.as_ref(),
        on_behalf_of: request.on_behalf_of.as_ref().map(|u| u.as_str()),
        holds: &request.holds,
        now: request.created_at,
    };
    let evaluation = if request.break_glass.is_some() {
        policy.decide_break_glass(&facts)
    } else {
        policy.decide_request(&facts)
    };
    // A decision that could not be evaluated at all names why in its only reason and no
    // policy: an identity or entitlement this configuration does not know.
    let unknown = evaluation.errors.iter().any(|e| e.starts_with("unknown "));
    (!unknown).then_some(evaluation.value)
}

/// Replays every request recorded at or after `since` under `policy`.
pub async fn replay(
    store: &Store,
    policy: &PolicyEngine,
    since: Timestamp,
) -> Result<ReplayReport, EngineError> {
    let (pages, mut parsed) =
        tokio::sync::mpsc::channel::<Result<Vec<Request>, EngineError>>(PAGES_AHEAD);
    let reader = store.clone();
    let producer = tokio::spawn(async move {
        let mut after = 0;
        loop {
            let events = match reader.request_created_events(after, since, PAGE).await {
                Ok(events) => events,
                Err(error) => {
                    let _ = pages.send(Err(error.into())).await;
                    return;
                }
            };
            let Some(last) = events.last() else {
                return;
            };
            after = last.seq;
            let page: Result<Vec<Request>, EngineError> = events
                .iter()
                .map(|event| {
                    serde_json::from_str::<Recorded>(&event.data)
                        .map(|recorded| recorded.request)
                        .map_err(|e| {
                            EngineError::new(
                                crate::ErrorCode::DataCorrupt,
                                format!("event {}: not a request snapshot: {e}", event.seq),
                            )
                        })
                })
                .collect();
            let failed = page.is_err();
            if pages.send(page).await.is_err() || failed {
                return;
            }
        }
    });
    let mut report = ReplayReport {
        replayed: 0,
        skipped: 0,
        changes: Vec::new(),
    };
    while let Some(page) = parsed.recv().await {
        for request in page? {
            let Some(would_be) = redecide_recorded(policy, &request) else {
                report.skipped += 1;
                continue;
            };
            report.replayed += 1;
            if differs(&request.decision, &would_be) {
                report.changes.push(ReplayChange {
                    request: request.id,
                    at: request.created_at,
                    requester: request.requester.to_string(),
                    subject: request.subject.to_string(),
                    entitlement: request.entitlement.to_string(),
                    was: request.decision,
                    would_be,
                });
            }
        }
    }
    producer
        .await
        .map_err(|e| EngineError::new(crate::ErrorCode::DataCorrupt, e.to_string()))?;
    Ok(report)
}

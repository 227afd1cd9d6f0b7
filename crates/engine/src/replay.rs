//! How a proposed policy set would have decided the recorded requests: every
//! `request.created` event since a time, decided again with its recorded facts (who,
//! for whom, what, how long asked, why, the ticket as checked then, what the subject
//! held, when) under the proposed set, and the decisions that change. Read-only.
//!
//! The ledger is read a page at a time as borrowed text and only the facts a decision
//! needs are parsed, on one task, while the decisions run on another: a replay costs
//! about what its decisions cost.

use serde::Deserialize;
use writ_domain::ledger::EventKind;
use writ_domain::{
    BreakGlassMark, DecisionOutcome, EntitlementId, IdentityName, RequestId, Ticket, Timestamp,
};
use writ_policy::{PolicyEngine, RequestFacts};
use writ_store::Store;

use crate::{EngineError, ErrorCode};

/// Events read per page.
const PAGE: i64 = 2_000;
/// Pages parsed ahead of the decisions.
const PAGES_AHEAD: usize = 4;

/// What a decision gave: what a replay compares.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct DecisionSummary {
    pub outcome: DecisionOutcome,
    pub approvals_required: u32,
    pub max_duration_seconds: Option<i64>,
}

impl From<writ_domain::Decision> for DecisionSummary {
    fn from(decision: writ_domain::Decision) -> Self {
        Self {
            outcome: decision.outcome,
            approvals_required: decision.approvals_required,
            max_duration_seconds: decision.max_duration_seconds,
        }
    }
}

/// The facts of a recorded request a decision reads, and the decision it got: the part
/// of a `request.created` snapshot a replay parses.
#[derive(Debug, Clone, Deserialize)]
pub struct RecordedRequest {
    pub id: RequestId,
    pub requester: IdentityName,
    pub subject: IdentityName,
    pub entitlement: EntitlementId,
    pub justification: String,
    pub ticket: Option<Ticket>,
    #[serde(default)]
    pub on_behalf_of: Option<IdentityName>,
    #[serde(default)]
    pub actors: Vec<IdentityName>,
    pub requested_duration_seconds: i64,
    pub created_at: Timestamp,
    #[serde(default)]
    pub holds: Vec<EntitlementId>,
    #[serde(default)]
    pub on_behalf_of_holds: Vec<EntitlementId>,
    #[serde(default)]
    pub break_glass: Option<BreakGlassMark>,
    pub decision: DecisionSummary,
}

#[derive(Deserialize)]
struct Snapshot {
    request: RecordedRequest,
}

/// One recorded request whose decision would change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayChange {
    pub request: RequestId,
    pub at: Timestamp,
    pub requester: String,
    pub subject: String,
    pub entitlement: String,
    pub was: DecisionSummary,
    pub would_be: DecisionSummary,
}

/// What a replay found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayReport {
    /// Recorded requests decided again.
    pub replayed: usize,
    /// Recorded requests that could not be decided again (their identity or
    /// entitlement is no longer configured); not counted as changes.
    pub skipped: usize,
    pub changes: Vec<ReplayChange>,
}

/// Decides one recorded request again under `policy`; `None` when it cannot be (its
/// identities or entitlement are not configured any more).
pub fn redecide_recorded(
    policy: &PolicyEngine,
    request: &RecordedRequest,
) -> Option<DecisionSummary> {
    let facts = RequestFacts {
        requester: request.requester.as_str(),
        subject: request.subject.as_str(),
        entitlement: request.entitlement.as_str(),
        duration_seconds: request.requested_duration_seconds,
        justification: &request.justification,
        ticket: request.ticket.as_ref(),
        on_behalf_of: request.on_behalf_of.as_ref().map(|u| u.as_str()),
        actors: writ_domain::acting_agents(
            &request.requester,
            request.on_behalf_of.as_ref(),
            &request.actors,
        ),
        holds: &request.holds,
        on_behalf_of_holds: &request.on_behalf_of_holds,
        effective: None,
        now: request.created_at,
    };
    let evaluation = if request.break_glass.is_some() {
        policy.decide_break_glass(&facts)
    } else {
        policy.decide_request(&facts)
    };
    // A decision that could not be made at all names an identity or entitlement this
    // configuration does not know.
    let unknown = evaluation.errors.iter().any(|e| e.starts_with("unknown "));
    (!unknown).then(|| evaluation.value.into())
}

/// The recorded requests of one page of events at or after `since`.
fn recorded_in(
    events: &[writ_domain::ledger::EventFields<'_>],
    since: Timestamp,
) -> Result<Vec<RecordedRequest>, EngineError> {
    let created = EventKind::RequestCreated.as_str();
    events
        .iter()
        .filter(|event| event.kind == created && event.at >= since)
        .map(|event| {
            serde_json::from_str::<Snapshot>(event.data)
                .map(|snapshot| snapshot.request)
                .map_err(|e| {
                    EngineError::new(
                        ErrorCode::DataCorrupt,
                        format!("event {}: not a request snapshot: {e}", event.seq),
                    )
                })
        })
        .collect()
}

type Page = Result<Vec<RecordedRequest>, EngineError>;

/// Reads the ledger from after `after` to its end, sending each page's recorded
/// requests.
async fn read_ledger(
    store: Store,
    mut after: i64,
    since: Timestamp,
    pages: tokio::sync::mpsc::Sender<Page>,
) {
    loop {
        let read = store
            .with_event_page(after, PAGE, |events| {
                let last = events.last().map(|event| event.seq);
                (last, recorded_in(events, since))
            })
            .await;
        let (last, page) = match read {
            Ok(read) => read,
            Err(error) => {
                let _ = pages.send(Err(error.into())).await;
                return;
            }
        };
        let Some(last) = last else {
            return;
        };
        after = last;
        let failed = page.is_err();
        if pages.send(page).await.is_err() || failed {
            return;
        }
    }
}

/// Replays every request recorded at or after `since` under `policy`.
pub async fn replay(
    store: &Store,
    policy: &PolicyEngine,
    since: Timestamp,
) -> Result<ReplayReport, EngineError> {
    let start = store.seq_before(since).await?;
    let (pages, mut parsed) = tokio::sync::mpsc::channel::<Page>(PAGES_AHEAD);
    let reader = tokio::spawn(read_ledger(store.clone(), start, since, pages));
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
            if would_be != request.decision {
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
    reader
        .await
        .map_err(|e| EngineError::new(ErrorCode::DataCorrupt, e.to_string()))?;
    Ok(report)
}

//! Standing access decided again. A grant was permitted by the policy in force when it
//! was requested; when that policy changes (`writ policy reload`, SIGHUP, a start with
//! other policies or identities) or its subject's groups or manager change, each live
//! grant is decided again as if requested now for the time it has left:
//!
//! - still permitted — it stays; if policy now allows less time than it has left, its
//!   end moves sooner (`grant.rescheduled`);
//! - no longer permitted (denied, or it needs more approvals than it was given) — it is
//!   revoked through the usual verified path, reason `no_longer_permitted`, by
//!   `writ:policy`; or, where its entitlement says `on_policy_change = "review"`, kept
//!   and a `not_permitted` finding opened for the entitlement's owners.
//!
//! The ticket is taken as it was verified when the grant was requested, and approvals
//! given then still count. Each batch of re-decisions is one `grants.redecided` event
//! naming every grant's outcome, its determining policies and the policy-set hash.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::json;
use writ_config::PolicyChangeAction;
use writ_domain::ledger::{Actor, EventKind, SystemActor};
use writ_domain::lifecycle::GrantState;
use writ_domain::{
    DecisionOutcome, DriftAction, Finding, FindingId, FindingKind, FindingState, Grant, GrantId,
    Request, RevokeReason, Timestamp,
};
use writ_policy::{PolicyEngine, RequestFacts};
use writ_store::{JobKind, WriteTx};

use crate::{Engine, EngineError, metrics_names};

const POLICY_ACTOR: Actor = Actor::System(SystemActor::Policy);
/// Grants decided (and recorded) per transaction.
const BATCH: i64 = 500;

/// Why live grants are decided again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Occasion {
    /// A new policy set was put in force.
    PolicyReloaded,
    /// writ started: the policies or the identities may differ from when it stopped.
    Start,
    /// An identity's groups or manager changed.
    IdentityChanged,
}

impl Occasion {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PolicyReloaded => "policy_reloaded",
            Self::Start => "start",
            Self::IdentityChanged => "identity_changed",
        }
    }
}

/// What one pass over the live grants did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Redecided {
    /// Live grants decided again.
    pub grants: usize,
    /// Still permitted, unchanged.
    pub kept: usize,
    /// Still permitted, for less time than they had left: their end moved sooner.
    pub shortened: usize,
    /// No longer permitted: revocation started (reason `no_longer_permitted`).
    pub revoked: usize,
    /// No longer permitted, kept for their owners to review (`not_permitted` findings).
    pub flagged: usize,
}

/// One grant's new decision.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Verdict {
    Kept,
    /// Permitted until this (sooner than its end).
    Shortened(Timestamp),
    NotPermitted(Vec<String>),
}

#[derive(Debug, Serialize)]
struct Outcome<'a> {
    grant_id: GrantId,
    subject: &'a str,
    entitlement: &'a str,
    outcome: &'static str,
    policies: &'a [String],
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    reasons: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at: Option<Timestamp>,
}

impl Engine {
    /// Decides every live grant again (only `subject`'s, when given); see the module doc.
    pub async fn redecide_grants(
        &self,
        occasion: Occasion,
        subject: Option<&str>,
    ) -> Result<Redecided, EngineError> {
        // One policy set for the whole pass: a reload during it runs a pass of its own.
        let policy = self.policy();
        let mut flagged: HashMap<GrantId, Finding> = self
            .store
            .unresolved_findings_of_kind(FindingKind::NotPermitted)
            .await?
            .into_iter()
            .filter_map(|finding| finding.grant_id.map(|id| (id, finding)))
            .collect();
        let mut report = Redecided::default();
        let mut batch = self
            .store
            .live_grants_with_requests(subject, None, BATCH)
            .await?;
        while let Some((last, _)) = batch.last() {
            let after = Some(last.id);
            let full = i64::try_from(batch.len()).unwrap_or(i64::MAX) >= BATCH;
            // The next page is read (on SQLite, by a thread of its own) while this one
            // is decided and recorded.
            let next = async {
                if full {
                    self.store
                        .live_grants_with_requests(subject, after, BATCH)
                        .await
                } else {
                    Ok(Vec::new())
                }
            };
            let decided = self.redecide_batch(
                &policy,
                occasion,
                subject,
                &batch,
                &mut flagged,
                &mut report,
            );
            let (next, decided) = tokio::join!(next, decided);
            decided?;
            batch = next?;
        }
        // A flagged grant that ended meanwhile needs no review any more.
        if subject.is_none() {
            for finding in flagged.into_values() {
                self.resolve_not_permitted(finding, "grant ended").await?;
            }
            let mut tx = self.store.begin().await?;
            tx.set_decision_basis(&self.decision_basis(&policy), self.clock.now())
                .await?;
            tx.commit().await?;
        }
        tracing::info!(
            occasion = occasion.as_str(),
            subject = subject.unwrap_or("everyone"),
            grants = report.grants,
            shortened = report.shortened,
            revoked = report.revoked,
            flagged = report.flagged,
            "live grants decided again"
        );
        Ok(report)
    }

    /// At start: decides every live grant again unless they were last decided, by this
    /// node or another, on the same basis (policies, configured identities and
    /// entitlements) — then a restart has nothing to change. `None` when skipped.
    pub async fn redecide_at_start(&self) -> Result<Option<Redecided>, EngineError> {
        let basis = self.decision_basis(&self.policy());
        if self.store.decision_basis().await?.as_deref() == Some(basis.as_str()) {
            tracing::info!(
                "live grants were last decided on this policy set and configuration; not deciding them again"
            );
            return Ok(None);
        }
        self.redecide_grants(Occasion::Start, None).await.map(Some)
    }

    /// A fingerprint of what a full pass decides on: the policy set and the configured
    /// identities and entitlements (the directory's people are decided again as they
    /// change).
    fn decision_basis(&self, policy: &PolicyEngine) -> String {
        use sha2::{Digest, Sha256};
        let mut hasher = Sha256::new();
        hasher.update(policy.policy_hash().as_bytes());
        hasher.update(format!("{:?}", self.config.identities).as_bytes());
        hasher.update(format!("{:?}", self.config.entitlements).as_bytes());
        hex::encode(hasher.finalize())
    }

    async fn redecide_batch(
        &self,
        policy: &PolicyEngine,
        occasion: Occasion,
        subject: Option<&str>,
        batch: &[(Grant, Request)],
        flagged: &mut HashMap<GrantId, Finding>,
        report: &mut Redecided,
    ) -> Result<(), EngineError> {
        let now = self.clock.now();
        let verdicts: Vec<(&Grant, Verdict, Vec<String>)> = batch
            .iter()
            .filter(|(grant, _)| grant.expires_at > now)
            .filter(|(grant, _)| {
                self.config
                    .entitlement(grant.entitlement.as_str())
                    .is_some()
            })
            .map(|(grant, request)| {
                let (verdict, policies) = self.verdict(policy, grant, request, now);
                (grant, verdict, policies)
            })
            .collect();
        if verdicts.is_empty() {
            return Ok(());
        }
        let mut tx = self.store.begin().await?;
        // Read again in the writer: a grant another path (or node) changed since the page
        // was read is left alone; it was decided on a record that is no longer current.
        let ids: Vec<GrantId> = verdicts.iter().map(|(grant, _, _)| grant.id).collect();
        let current: HashMap<GrantId, Grant> = tx
            .grants_by_ids(&ids)
            .await?
            .into_iter()
            .map(|grant| (grant.id, grant))
            .collect();
        let verdicts: Vec<_> = verdicts
            .into_iter()
            .filter(|(grant, _, _)| {
                current.get(&grant.id).is_some_and(|latest| {
                    latest.state == grant.state && latest.expires_at == grant.expires_at
                })
            })
            .collect();
        if verdicts.is_empty() {
            tx.commit().await?;
            return Ok(());
        }
        let mut outcomes = Vec::with_capacity(verdicts.len());
        let mut revoking = false;
        for (grant, verdict, policies) in &verdicts {
            report.grants += 1;
            let review = self
                .config
                .entitlement(grant.entitlement.as_str())
                .is_some_and(|e| e.on_policy_change == PolicyChangeAction::Review);
            // Seen live: what is left in `flagged` after the pass has ended.
            let open_finding = flagged.remove(&grant.id);
            let (outcome, reasons, expires_at): (&str, &[String], _) = match verdict {
                Verdict::Kept => {
                    report.kept += 1;
                    ("permitted", &[], None)
                }
                Verdict::Shortened(end) => {
                    self.reschedule_in(&mut tx, grant, *end, now).await?;
                    report.shortened += 1;
                    ("shortened", &[], Some(*end))
                }
                Verdict::NotPermitted(reasons) if review => {
                    if open_finding.is_none() {
                        self.flag_in(&mut tx, grant, now).await?;
                    }
                    report.flagged += 1;
                    ("review", reasons.as_slice(), None)
                }
                Verdict::NotPermitted(reasons) => {
                    self.begin_revoke_in(
                        &mut tx,
                        grant,
                        &POLICY_ACTOR,
                        RevokeReason::NoLongerPermitted,
                        now,
                    )
                    .await?;
                    revoking = true;
                    report.revoked += 1;
                    ("no_longer_permitted", reasons.as_slice(), None)
                }
            };
            if !matches!(verdict, Verdict::NotPermitted(_) if review)
                && let Some(finding) = open_finding
            {
                let resolution = if matches!(verdict, Verdict::NotPermitted(_)) {
                    "revoked"
                } else {
                    "permitted"
                };
                self.resolve_not_permitted_in(&mut tx, finding, resolution, now)
                    .await?;
            }
            outcomes.push(Outcome {
                grant_id: grant.id,
                subject: grant.subject.as_str(),
                entitlement: grant.entitlement.as_str(),
                outcome,
                policies,
                reasons,
                expires_at,
            });
        }
        let data = json!({
            "occasion": occasion.as_str(),
            "identity": subject,
            "policy_hash": policy.policy_hash(),
            "grants": outcomes,
        });
        tx.append(now, &POLICY_ACTOR, EventKind::GrantsRedecided, &data)
            .await?;
        tx.commit().await?;
        metrics::counter!(metrics_names::GRANTS_REDECIDED).increment(verdicts.len() as u64);
        if revoking {
            self.evidence_committed();
            self.hint_due(now);
        }
        Ok(())
    }

    /// The grant decided as if requested now for the time it has left: the verdict and
    /// the determining policies.
    fn verdict(
        &self,
        policy: &PolicyEngine,
        grant: &Grant,
        request: &Request,
        now: Timestamp,
    ) -> (Verdict, Vec<String>) {
        let left_seconds = grant.expires_at.millis_since(now).div_euclid(1000).max(1);
        let evaluation = policy.decide_request(&RequestFacts {
            requester: request.requester.as_str(),
            subject: grant.subject.as_str(),
            entitlement: grant.entitlement.as_str(),
            // A lease without an end is decided again as what it is.
            duration_seconds: if grant.permanent {
                writ_domain::PERMANENT_SECONDS
            } else {
                left_seconds
            },
            justification: &request.justification,
            ticket: request.ticket.as_ref(),
            on_behalf_of: request.on_behalf_of.as_ref().map(|u| u.as_str()),
            actors: request.acting_agents(),
            holds: &request.holds,
            on_behalf_of_holds: &request.on_behalf_of_holds,
            effective: None,
            now,
        });
        self.report_policy_errors("redecide", &evaluation.errors);
        let decision = evaluation.value;
        let given = u32::try_from(request.approvals.len()).unwrap_or(u32::MAX);
        let verdict = match decision.outcome {
            DecisionOutcome::Deny => Verdict::NotPermitted(decision.reasons),
            DecisionOutcome::Approval if given < decision.approvals_required => {
                Verdict::NotPermitted(vec![format!(
                    "policy now requires {} approval(s); the grant was given {given}",
                    decision.approvals_required
                )])
            }
            DecisionOutcome::Auto | DecisionOutcome::Approval => {
                // A lease without an end is not held to the entitlement's maximum.
                let entitlement_max = self
                    .config
                    .entitlement(grant.entitlement.as_str())
                    .map(|e| e.max_duration_seconds)
                    .filter(|_| !grant.permanent);
                let allowed = [decision.max_duration_seconds, entitlement_max]
                    .into_iter()
                    .flatten()
                    .min();
                let subject_end = self
                    .identity(grant.subject.as_str())
                    .and_then(|identity| identity.valid_until);
                let end = [allowed.map(|s| now.plus_seconds(s)), subject_end]
                    .into_iter()
                    .flatten()
                    .min();
                match end {
                    Some(end) if end < grant.expires_at => Verdict::Shortened(end),
                    _ => Verdict::Kept,
                }
            }
        };
        (verdict, decision.policies)
    }

    async fn reschedule_in(
        &self,
        tx: &mut WriteTx<'_>,
        grant: &Grant,
        end: Timestamp,
        now: Timestamp,
    ) -> Result<(), EngineError> {
        let mut grant = grant.clone();
        grant.expires_at = end.max(now);
        tx.update_grant(&grant).await?;
        tx.append(
            now,
            &POLICY_ACTOR,
            EventKind::GrantRescheduled,
            &json!({ "grant": grant, "scheduled_revocation_at": grant.expires_at }),
        )
        .await?;
        // A pending grant's job applies it, and the apply schedules the end it reads
        // then; an active grant's job is its end.
        if grant.state == GrantState::Active {
            tx.set_job(
                &grant.id.to_string(),
                JobKind::RevokeGrant,
                grant.expires_at,
            )
            .await?;
        }
        self.lookahead.note_new_lease(&grant);
        self.hint_due(grant.expires_at);
        Ok(())
    }

    async fn flag_in(
        &self,
        tx: &mut WriteTx<'_>,
        grant: &Grant,
        now: Timestamp,
    ) -> Result<(), EngineError> {
        let finding = Finding {
            id: FindingId::generate_at(now),
            target: self
                .config
                .entitlement(grant.entitlement.as_str())
                .map(|e| e.target.clone())
                .unwrap_or_default(),
            entitlement: grant.entitlement.clone(),
            account: grant.account.clone(),
            kind: FindingKind::NotPermitted,
            state: FindingState::Open,
            action: DriftAction::Report,
            grant_id: Some(grant.id),
            first_seen_at: now,
            exception: None,
            resolved_at: None,
            resolution: None,
            change: None,
        };
        tx.insert_finding(&finding).await?;
        tx.append(
            now,
            &POLICY_ACTOR,
            EventKind::FindingOpened,
            &json!({ "finding": finding }),
        )
        .await?;
        metrics::counter!(metrics_names::FINDINGS_OPENED, "kind" => FindingKind::NotPermitted.as_str())
            .increment(1);
        tracing::warn!(finding = %finding.id, grant = %grant.id, entitlement = %grant.entitlement, "grant no longer permitted; flagged for its owners");
        Ok(())
    }

    async fn resolve_not_permitted(
        &self,
        finding: Finding,
        resolution: &str,
    ) -> Result<(), EngineError> {
        let mut tx = self.store.begin().await?;
        self.resolve_not_permitted_in(&mut tx, finding, resolution, self.clock.now())
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn resolve_not_permitted_in(
        &self,
        tx: &mut WriteTx<'_>,
        mut finding: Finding,
        resolution: &str,
        now: Timestamp,
    ) -> Result<(), EngineError> {
        finding.state =
            crate::reconcile::transition(finding.state, writ_domain::FindingEvent::Resolve)?;
        finding.resolved_at = Some(now);
        finding.resolution = Some(resolution.to_string());
        tx.update_finding(&finding).await?;
        tx.delete_job(&finding.id.to_string()).await?;
        tx.append(
            now,
            &POLICY_ACTOR,
            EventKind::FindingResolved,
            &json!({ "finding": finding }),
        )
        .await?;
        Ok(())
    }
}

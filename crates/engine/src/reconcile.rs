//! Reconciliation: read what each managed entitlement really holds on its target,
//! compare it with the grants, and record each difference as a finding; then do what
//! the entitlement's configuration says (report, revoke, reapply).
//!
//! A pass reads the target and the grants at slightly different moments, so a grant
//! applied or revoked in between could look like drift. Every difference is therefore
//! confirmed before it is acted on or recorded: under the same per-account lock that
//! applies and revokes take, writ re-reads the account's grants and asks the target
//! about that one account. Only what survives that check is a finding.

use std::collections::{HashMap, HashSet};

use serde::Serialize;
use writ_config::Entitlement;
use writ_connectors::{Access, Connector};
use writ_domain::finding::FindingEvent;
use writ_domain::ledger::{Actor, EventKind, SystemActor};
use writ_domain::lifecycle::GrantState;
use writ_domain::{
    DriftAction, Finding, FindingId, FindingKind, FindingReport, FindingState, GrantId,
};
use writ_store::{FindingFilter, Page};

use crate::target_guard::TargetGuard;

mod changed;
use crate::{Caller, Engine, EngineError, ErrorCode, metrics_names};

/// The actor of every change reconciliation makes.
pub(crate) const RECONCILE_ACTOR: Actor = Actor::System(SystemActor::Reconciler);

/// What one pass over one target found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReconcileReport {
    pub target: String,
    pub entitlements: usize,
    /// Accounts found holding a managed role on the target.
    pub memberships: usize,
    pub opened: usize,
    pub resolved: usize,
    /// Findings still open or accepted after the pass.
    pub unresolved: usize,
    /// Entitlements that could not be read, and actions that failed (retried next pass).
    pub errors: Vec<String>,
}

/// A difference between the target and the grants, for one account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Drift {
    kind: FindingKind,
    grant: Option<GrantId>,
}

type FindingKey = (String, String, FindingKind);

impl Engine {
    pub async fn finding(&self, id: FindingId) -> Result<FindingReport, EngineError> {
        self.store
            .finding(id)
            .await?
            .ok_or_else(|| EngineError::not_found("finding", id))
    }

    pub async fn findings(
        &self,
        filter: FindingFilter,
    ) -> Result<Page<FindingReport>, EngineError> {
        Ok(self.store.findings(&filter).await?)
    }

    /// A finding the caller may read (see `access`; 404 otherwise).
    pub async fn visible_finding(
        &self,
        caller: &Caller,
        id: FindingId,
    ) -> Result<FindingReport, EngineError> {
        let report = self.finding(id).await?;
        if self.may_see_finding(caller, report.finding.entitlement.as_str()) {
            Ok(report)
        } else {
            Err(EngineError::not_found("finding", id))
        }
    }

    /// Findings the caller may read that match `filter`.
    pub async fn visible_findings(
        &self,
        caller: &Caller,
        mut filter: FindingFilter,
    ) -> Result<Page<FindingReport>, EngineError> {
        if !self.is_auditor(caller) {
            filter.entitlements = Some(
                self.config
                    .entitlements
                    .keys()
                    .filter(|id| self.may_see_finding(caller, id.as_str()))
                    .map(|id| id.to_string())
                    .collect(),
            );
        }
        self.findings(filter).await
    }

    /// Reconciles every target, or the one named; in name order.
    pub async fn reconcile_targets(
        &self,
        target: Option<&str>,
    ) -> Result<Vec<ReconcileReport>, EngineError> {
        let names: Vec<String> = match target {
            Some(name) => vec![name.to_string()],
            None => self.config.targets.keys().cloned().collect(),
        };
        let mut reports = Vec::with_capacity(names.len());
        for name in names {
            reports.push(self.reconcile(&name).await?);
        }
        Ok(reports)
    }

    /// Reconciles every entitlement of `target` once.
    pub async fn reconcile(&self, target: &str) -> Result<ReconcileReport, EngineError> {
        let connector = self.targets.connector(target).cloned().ok_or_else(|| {
            EngineError::new(
                ErrorCode::UnknownTarget,
                format!("no target {target:?} is configured"),
            )
        })?;
        // One pass per target at a time.
        let _pass = self
            .lock_named(
                writ_store::LockSpace::Task,
                format!("reconcile\u{0}{target}"),
            )
            .await?;
        let mut report = ReconcileReport {
            target: target.to_string(),
            ..ReconcileReport::default()
        };
        if self
            .config
            .targets
            .get(target)
            .is_some_and(|t| t.connector.enforced_by_writ())
        {
            // Its enforcement points ask writ: the leases are the access, no drift.
            return Ok(report);
        }
        let mut unresolved: HashMap<FindingKey, FindingReport> = self
            .store
            .unresolved_findings(target)
            .await?
            .into_iter()
            // A grant policy no longer permits is the owners' to review, not drift.
            .filter(|report| report.finding.kind.is_drift())
            .map(|report| {
                let f = &report.finding;
                (
                    (f.entitlement.to_string(), f.account.clone(), f.kind),
                    report,
                )
            })
            .collect();
        let mut seen: Vec<(FindingId, Option<String>)> = Vec::new();
        let entitlements: Vec<&Entitlement> = self
            .config
            .entitlements
            .values()
            .filter(|entitlement| entitlement.target == target)
            .collect();
        report.entitlements = entitlements.len();
        let mut unreadable: HashSet<String> = HashSet::new();
        for entitlement in entitlements {
            let drifts = match self.observe(entitlement, connector.as_ref()).await {
                Ok((held, drifts)) => {
                    report.memberships += held;
                    drifts
                }
                Err(message) => {
                    report.errors.push(format!("{}: {message}", entitlement.id));
                    unreadable.insert(entitlement.id.to_string());
                    continue;
                }
            };
            for (account, drift) in drifts {
                let key = (entitlement.id.to_string(), account.clone(), drift.kind);
                let existing = unresolved.remove(&key).map(|r| r.finding);
                match self
                    .settle(entitlement, connector.as_ref(), &account, drift, existing)
                    .await
                {
                    Ok(Settled::Seen(id, error)) => {
                        if let Some(error) = &error {
                            report.errors.push(format!("{}: {error}", entitlement.id));
                        }
                        seen.push((id, error));
                    }
                    Ok(Settled::Opened(id, error)) => {
                        report.opened += 1;
                        if let Some(error) = &error {
                            report.errors.push(format!("{}: {error}", entitlement.id));
                        }
                        seen.push((id, error));
                    }
                    Ok(Settled::OpenedAndResolved) => {
                        report.opened += 1;
                        report.resolved += 1;
                    }
                    Ok(Settled::Resolved) => report.resolved += 1,
                    Ok(Settled::Nothing) => {}
                    Err(error) => report.errors.push(format!("{}: {error}", entitlement.id)),
                }
            }
        }
        // Findings the pass did not see again: gone, once confirmed.
        for ((entitlement_id, account, _), stale) in unresolved {
            if unreadable.contains(&entitlement_id) {
                continue;
            }
            let Some(entitlement) = self.config.entitlement(&entitlement_id) else {
                continue;
            };
            let _held = self
                .lock_account(crate::holder_key(&entitlement_id, &account))
                .await?;
            match self
                .confirm(entitlement, connector.as_ref(), &account)
                .await
            {
                Ok(Some(drift)) if drift.kind == stale.finding.kind => {
                    seen.push((stale.finding.id, None));
                }
                Ok(_) => {
                    self.resolve(stale.finding, "gone").await?;
                    report.resolved += 1;
                }
                Err(error) => report.errors.push(format!("{entitlement_id}: {error}")),
            }
        }
        if !seen.is_empty() {
            let now = self.clock.now();
            let mut tx = self.store.begin().await?;
            for (id, error) in &seen {
                tx.finding_seen(*id, now, error.as_deref()).await?;
            }
            tx.commit().await?;
        }
        report.unresolved = seen.len();
        self.reconcile_changes(target, &mut report).await?;
        if !report.errors.is_empty() {
            tracing::warn!(target, errors = ?report.errors, "reconciliation pass had errors");
        }
        Ok(report)
    }

    /// Reads the target and the grants of one entitlement; returns how many accounts
    /// hold it and the candidate differences (not yet confirmed).
    async fn observe(
        &self,
        entitlement: &Entitlement,
        connector: &dyn Connector,
    ) -> Result<(usize, Vec<(String, Drift)>), String> {
        let guard = self.targets.guard(&entitlement.target);
        let held: HashSet<String> = guard
            .call(self.clock.now(), connector.members(&entitlement.role))
            .await
            .map_err(|e| format!("cannot list the members of {}: {e}", entitlement.role))?
            .into_iter()
            .collect();
        let live = self
            .store
            .live_grants(entitlement.id.as_str())
            .await
            .map_err(|e| e.to_string())?;
        // Per account with a live grant: its active grant, if it has one.
        let mut by_account: HashMap<&str, Option<GrantId>> = HashMap::with_capacity(live.len());
        for grant in &live {
            let active = by_account.entry(grant.account.as_str()).or_default();
            if grant.state == GrantState::Active && active.is_none() {
                *active = Some(grant.id);
            }
        }
        let mut drifts = Vec::new();
        for account in &held {
            if !by_account.contains_key(account.as_str()) {
                let drift = self.unexplained(entitlement, account).await?;
                drifts.push((account.clone(), drift));
            }
        }
        for (account, active) in &by_account {
            if let Some(id) = active
                && !held.contains(*account)
            {
                let drift = Drift {
                    kind: FindingKind::Missing,
                    grant: Some(*id),
                };
                drifts.push(((*account).to_string(), drift));
            }
        }
        Ok((held.len(), drifts))
    }

    /// Access held with no live grant: lingering if a grant for it was revoked,
    /// unmanaged otherwise.
    async fn unexplained(&self, entitlement: &Entitlement, account: &str) -> Result<Drift, String> {
        let revoked = self
            .store
            .last_revoked_grant(entitlement.id.as_str(), account)
            .await
            .map_err(|e| e.to_string())?;
        Ok(Drift {
            kind: if revoked.is_some() {
                FindingKind::Lingering
            } else {
                FindingKind::Unmanaged
            },
            grant: revoked,
        })
    }

    /// The difference for one account right now, read under its lock: the grants from
    /// the store, the access from the target.
    async fn confirm(
        &self,
        entitlement: &Entitlement,
        connector: &dyn Connector,
        account: &str,
    ) -> Result<Option<Drift>, String> {
        let live = self
            .store
            .live_grants_of(entitlement.id.as_str(), account)
            .await
            .map_err(|e| e.to_string())?;
        let access = Access {
            role: &entitlement.role,
            account,
        };
        let held = self
            .targets
            .guard(&entitlement.target)
            .call(self.clock.now(), connector.holds(access))
            .await
            .map_err(|e| e.to_string())?;
        if held && live.is_empty() {
            return self.unexplained(entitlement, account).await.map(Some);
        }
        if !held && let Some(grant) = live.iter().find(|g| g.state == GrantState::Active) {
            return Ok(Some(Drift {
                kind: FindingKind::Missing,
                grant: Some(grant.id),
            }));
        }
        Ok(None)
    }

    /// Confirms one candidate difference and records and acts on it.
    async fn settle(
        &self,
        entitlement: &Entitlement,
        connector: &dyn Connector,
        account: &str,
        candidate: Drift,
        existing: Option<Finding>,
    ) -> Result<Settled, EngineError> {
        let _held = self
            .lock_account(crate::holder_key(entitlement.id.as_str(), account))
            .await?;
        let confirmed = self
            .confirm(entitlement, connector, account)
            .await
            .map_err(|e| EngineError::new(ErrorCode::TargetUnavailable, e))?;
        let drift = match confirmed {
            Some(drift) if drift.kind == candidate.kind => drift,
            // It changed while we looked: an existing finding is gone, a new one is not one.
            _ => {
                return match existing {
                    Some(finding) => {
                        self.resolve(finding, "gone").await?;
                        Ok(Settled::Resolved)
                    }
                    None => Ok(Settled::Nothing),
                };
            }
        };
        let (finding, opened) = match existing {
            Some(finding) => (finding, false),
            None => (self.open_finding(entitlement, account, drift).await?, true),
        };
        if finding.state != FindingState::Open || finding.action == DriftAction::Report {
            return Ok(if opened {
                Settled::Opened(finding.id, None)
            } else {
                Settled::Seen(finding.id, None)
            });
        }
        let guard = self.targets.guard(&entitlement.target);
        let calls = TargetCalls {
            connector,
            guard: &guard,
            now: self.clock.now(),
        };
        match act(calls, entitlement, account, finding.action).await {
            Ok(()) => {
                let resolution = match finding.action {
                    DriftAction::Reapply => "reapplied",
                    _ => "revoked",
                };
                self.resolve(finding, resolution).await?;
                Ok(if opened {
                    Settled::OpenedAndResolved
                } else {
                    Settled::Resolved
                })
            }
            Err(error) => {
                metrics::counter!(metrics_names::FINDING_ACTION_FAILURES, "action" => finding.action.as_str()).increment(1);
                Ok(if opened {
                    Settled::Opened(finding.id, Some(error))
                } else {
                    Settled::Seen(finding.id, Some(error))
                })
            }
        }
    }

    /// Removes the access a withdrawn exception covered (a review revoked it): confirmed
    /// and acted on as a pass would, resolved once the target no longer holds it. If
    /// the target fails, the open finding's `revoke` action has the next pass retry.
    pub(crate) async fn remove_reviewed_access(&self, finding: Finding) -> Result<(), EngineError> {
        let entitlement = self
            .config
            .entitlement(finding.entitlement.as_str())
            .ok_or_else(|| {
                EngineError::new(
                    ErrorCode::EntitlementRemoved,
                    format!(
                        "entitlement {} is no longer configured",
                        finding.entitlement
                    ),
                )
            })?;
        let connector = self
            .targets
            .connector(&entitlement.target)
            .cloned()
            .ok_or_else(|| {
                EngineError::new(
                    ErrorCode::TargetRemoved,
                    format!("target {} is no longer configured", entitlement.target),
                )
            })?;
        let drift = Drift {
            kind: finding.kind,
            grant: finding.grant_id,
        };
        let account = finding.account.clone();
        self.settle(
            entitlement,
            connector.as_ref(),
            &account,
            drift,
            Some(finding),
        )
        .await
        .map(|_| ())
    }

    /// Records a new finding. Committed before writ acts on it, so the ledger says
    /// what writ is about to change on the target (fail closed).
    async fn open_finding(
        &self,
        entitlement: &Entitlement,
        account: &str,
        drift: Drift,
    ) -> Result<Finding, EngineError> {
        self.open_finding_with(entitlement, account, drift, None)
            .await
    }

    async fn open_finding_with(
        &self,
        entitlement: &Entitlement,
        account: &str,
        drift: Drift,
        change: Option<writ_domain::EffectiveChange>,
    ) -> Result<Finding, EngineError> {
        let now = self.clock.now();
        let finding = Finding {
            id: FindingId::generate_at(now),
            target: entitlement.target.clone(),
            entitlement: entitlement.id.clone(),
            account: account.to_string(),
            kind: drift.kind,
            state: FindingState::Open,
            action: entitlement.drift.action(drift.kind),
            grant_id: drift.grant,
            first_seen_at: now,
            exception: None,
            resolved_at: None,
            resolution: None,
            change,
        };
        let mut tx = self.store.begin().await?;
        tx.insert_finding(&finding).await?;
        tx.append(
            now,
            &RECONCILE_ACTOR,
            EventKind::FindingOpened,
            &serde_json::json!({ "finding": finding }),
        )
        .await?;
        tx.commit().await?;
        metrics::counter!(metrics_names::FINDINGS_OPENED, "kind" => drift.kind.as_str())
            .increment(1);
        tracing::warn!(finding = %finding.id, kind = %finding.kind, entitlement = %finding.entitlement, account, action = %finding.action, "drift found");
        Ok(finding)
    }

    async fn resolve(&self, finding: Finding, resolution: &str) -> Result<(), EngineError> {
        let now = self.clock.now();
        let mut finding = finding;
        finding.state = transition(finding.state, FindingEvent::Resolve)?;
        finding.resolved_at = Some(now);
        finding.resolution = Some(resolution.to_string());
        let mut tx = self.store.begin().await?;
        tx.update_finding(&finding).await?;
        tx.delete_job(&finding.id.to_string()).await?;
        tx.append(
            now,
            &RECONCILE_ACTOR,
            EventKind::FindingResolved,
            &serde_json::json!({ "finding": finding }),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// What settling one difference came to.
enum Settled {
    /// An existing finding still stands (with the error if writ's action failed).
    Seen(FindingId, Option<String>),
    Opened(FindingId, Option<String>),
    /// Found, and writ's action removed the difference at once.
    OpenedAndResolved,
    Resolved,
    /// A candidate that was not a difference after all.
    Nothing,
}

pub(crate) fn transition(
    state: FindingState,
    event: FindingEvent,
) -> Result<FindingState, EngineError> {
    state
        .transition(event)
        .map_err(|e| EngineError::new(ErrorCode::IllegalTransition, e.to_string()))
}

fn is_credential_username(account: &str) -> bool {
    account
        .strip_prefix("writ_")
        .is_some_and(|hex| hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// A connector behind its target's guard (limits and circuit breaker).
struct TargetCalls<'a> {
    connector: &'a dyn Connector,
    guard: &'a TargetGuard,
    now: writ_domain::Timestamp,
}

/// Revokes or reapplies the access, then reads it back.
async fn act(
    target: TargetCalls<'_>,
    entitlement: &Entitlement,
    account: &str,
    action: DriftAction,
) -> Result<(), String> {
    let TargetCalls {
        connector,
        guard,
        now,
    } = target;
    let access = Access {
        role: &entitlement.role,
        account,
    };
    // A login writ made for a credential grant goes entirely, not just its role.
    let writ_login = entitlement.credential && is_credential_username(account);
    let want_held = match action {
        DriftAction::Report => return Ok(()),
        DriftAction::Revoke if writ_login => {
            guard
                .call(now, connector.drop_credential(account))
                .await
                .map_err(|e| e.to_string())?;
            false
        }
        DriftAction::Revoke => {
            guard
                .call(now, connector.revoke(access))
                .await
                .map_err(|e| e.to_string())?;
            false
        }
        DriftAction::Reapply => {
            guard
                .call(now, connector.grant(access))
                .await
                .map_err(|e| e.to_string())?;
            true
        }
    };
    match guard.call(now, connector.holds(access)).await {
        Ok(held) if held == want_held => Ok(()),
        Ok(_) => Err(format!(
            "{} of {} for {account} reported success but the target reads back otherwise",
            action, entitlement.role
        )),
        Err(error) => Err(error.to_string()),
    }
}

/// The periodic pass inside `writ serve`: each target with a `reconcile_every` is
/// reconciled at that interval, the first time shortly after start-up.
pub struct Reconciler {
    engine: std::sync::Arc<Engine>,
}

/// How long after start-up the first periodic pass runs (unless the interval is shorter).
const FIRST_PASS_DELAY: std::time::Duration = std::time::Duration::from_secs(30);

impl Reconciler {
    pub fn new(engine: std::sync::Arc<Engine>) -> Self {
        Self { engine }
    }

    /// Runs until `shutdown` changes.
    pub async fn run(self, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        use tokio::time::Instant;
        let start = Instant::now();
        let mut schedule: Vec<(String, std::time::Duration, Instant)> = self
            .engine
            .config
            .targets
            .values()
            .filter_map(|target| {
                let every = std::time::Duration::from_secs(
                    u64::try_from(target.reconcile_every_seconds?).ok()?,
                );
                Some((
                    target.name.clone(),
                    every,
                    start + every.min(FIRST_PASS_DELAY),
                ))
            })
            .collect();
        loop {
            let Some(next) = schedule.iter_mut().min_by_key(|(_, _, at)| *at) else {
                let _ = shutdown.changed().await;
                return;
            };
            tokio::select! {
                () = tokio::time::sleep_until(next.2) => {}
                _ = shutdown.changed() => return,
            }
            // One node reconciles for all; the others look again at the next interval.
            if !self
                .engine
                .leads(crate::metrics_names::RECONCILER_TASK_NAME)
                .await
            {
                next.2 = Instant::now() + next.1.min(crate::cluster::LEADERSHIP_RETRY);
                continue;
            }
            match self.engine.reconcile(&next.0).await {
                Ok(report) => tracing::info!(
                    target = %report.target,
                    memberships = report.memberships,
                    opened = report.opened,
                    resolved = report.resolved,
                    unresolved = report.unresolved,
                    errors = report.errors.len(),
                    "reconciliation pass"
                ),
                Err(error) => {
                    tracing::error!(target = %next.0, %error, "reconciliation pass failed")
                }
            }
            next.2 = Instant::now() + next.1;
        }
    }
}

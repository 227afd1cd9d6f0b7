//! Revocations in batches: what the scheduler finds due is revoked together, in three
//! steps, so a burst of expiries costs two database commits per batch instead of two
//! per grant:
//!
//! 1. one transaction records every due lease as `revoking` (`grant.revoke_started`);
//!    nothing is touched on a target until it commits (fail closed);
//! 2. the targets are called concurrently, each within its own limits (concurrency,
//!    rate, circuit breaker, call deadline: `TargetGuard`), each account under its lock;
//! 3. per target, as soon as that target has answered, one transaction records its
//!    outcomes: `revoked` (verified or retained by an overlapping lease) or `failed`
//!    with its retry. A slow target holds back only its own grants.
//!
//! Every grant still gets its own ledger events, exactly as one at a time would.

use std::collections::{HashMap, HashSet};

use futures_util::StreamExt;
use writ_domain::lifecycle::GrantState;
use writ_domain::{Grant, GrantId, RevokeReason};
use writ_store::{Job, JobTask};

use crate::revocation::{RevokeOutcome, SCHEDULER_ACTOR};
use crate::{Engine, EngineError};

/// The most target calls in flight for one target's share of a batch (each target
/// also has its own `max_concurrency`).
const BATCH_CONCURRENCY: usize = 64;

impl Engine {
    /// Revokes the grants of these due revocation jobs. Returns the jobs whose grant
    /// needed nothing (gone, already revoked, not yet expired), for the scheduler to
    /// put off, and how many were left due because another node holds their account.
    pub(crate) async fn revoke_due_batch<'j>(
        &self,
        jobs: &'j [Job],
    ) -> Result<(Vec<&'j Job>, usize), EngineError> {
        let mut ids = Vec::with_capacity(jobs.len());
        for job in jobs {
            // An unreadable one moves nothing: it is returned untouched and put off.
            match job.task() {
                Ok(JobTask::RevokeGrant(id)) => ids.push(id),
                Ok(_) => {}
                Err(unreadable) => self.unreadable_job(&unreadable),
            }
        }
        let now = self.clock.now();
        let mut to_begin = Vec::new();
        let mut to_execute = Vec::new();
        let mut holders = HashSet::new();
        let mut moved = HashSet::new();
        for grant in self.store.grants_by_ids(&ids).await? {
            let due = match grant.state {
                GrantState::Active | GrantState::Pending => grant.expires_at <= now,
                GrantState::Revoking | GrantState::Failed => true,
                GrantState::Revoked => false,
            };
            if !due {
                continue;
            }
            moved.insert(grant.id.to_string());
            // One lease per account per batch: each account's lock is held until the
            // batch is recorded, and a batch must not wait for itself. The others stay
            // due and go in the next batch.
            if !holders.insert(Self::holder_key(&grant)) {
                continue;
            }
            if grant.state.may_hold_access() {
                to_begin.push(grant);
            } else {
                to_execute.push(grant);
            }
        }
        let untouched = jobs
            .iter()
            .filter(|job| !moved.contains(&job.object_id))
            .collect();
        if !to_begin.is_empty() {
            let mut tx = self.store.begin().await?;
            // Read again inside the writer: an early revocation may have recorded
            // `revoking` since the read above, and must not be recorded twice.
            let ids: Vec<_> = to_begin.iter().map(|g| g.id).collect();
            let still_live = tx.grants_by_ids(&ids).await?;
            for grant in still_live.iter().filter(|g| g.state.may_hold_access()) {
                to_execute.push(
                    self.begin_revoke_in(
                        &mut tx,
                        grant,
                        &SCHEDULER_ACTOR,
                        RevokeReason::Expired,
                        now,
                    )
                    .await?,
                );
            }
            tx.commit().await?;
            self.evidence_committed();
        }
        if to_execute.is_empty() {
            return Ok((untouched, 0));
        }

        // Every account's lock (one lease per account here, so the batch never waits for
        // itself), held until the outcome is on the record, as for one at a time.
        // An account another node is changing is left for a later batch.
        let mut by_account = self
            .try_lock_accounts(to_execute.iter().map(Self::holder_key).collect())
            .await?;
        let mut locks = HashMap::with_capacity(to_execute.len());
        let wanted = to_execute.len();
        let to_execute: Vec<Grant> = to_execute
            .into_iter()
            .filter_map(|grant| {
                let lock = by_account.remove(&Self::holder_key(&grant))?;
                locks.insert(grant.id, lock);
                Some(grant)
            })
            .collect();
        let busy = wanted - to_execute.len();
        // Under the locks, in two queries for the whole batch: which are still being
        // revoked (another path may have finished one), and which accounts another live
        // lease keeps.
        let ids: Vec<_> = to_execute.iter().map(|g| g.id).collect();
        let current: HashMap<_, _> = self
            .store
            .grants_by_ids(&ids)
            .await?
            .into_iter()
            .map(|g| (g.id, g))
            .collect();
        let to_execute: Vec<Grant> = to_execute
            .into_iter()
            .filter_map(|g| current.get(&g.id).cloned())
            .filter(|g| matches!(g.state, GrantState::Revoking | GrantState::Failed))
            .collect();
        let holders: Vec<(&str, &str)> = to_execute
            .iter()
            .map(|g| (g.entitlement.as_str(), g.account.as_str()))
            .collect();
        let mut keeping: HashMap<(String, String), GrantId> = HashMap::new();
        for lease in self.store.live_leases_of(&holders).await? {
            keeping.insert((lease.entitlement, lease.account), lease.id);
        }

        // Each target's revocations are recorded as soon as that target has answered
        // them all: a target that is slow (up to its call deadline) holds back only its
        // own grants, never another target's.
        let mut by_target: HashMap<String, Vec<Grant>> = HashMap::new();
        for grant in to_execute {
            by_target
                .entry(grant.entitlement.target().to_string())
                .or_default()
                .push(grant);
        }
        let jobs_by_id: HashMap<&str, &Job> = jobs
            .iter()
            .map(|job| (job.object_id.as_str(), job))
            .collect();
        let (keeping, jobs_by_id) = (&keeping, &jobs_by_id);
        let groups = by_target.into_values().map(|grants| {
            let group_locks: Vec<_> = grants.iter().filter_map(|g| locks.remove(&g.id)).collect();
            async move {
                let outcomes = self.revoke_batch_on_target(grants, keeping).await;
                let recorded = self.record_outcomes(outcomes, jobs_by_id).await;
                drop(group_locks);
                recorded
            }
        });
        let recorded = futures_util::future::join_all(groups.collect::<Vec<_>>()).await;
        drop(locks);
        recorded.into_iter().collect::<Result<Vec<()>, _>>()?;
        Ok((untouched, busy))
    }

    /// Takes these grants (all on one target) off it, concurrently within its limits.
    async fn revoke_batch_on_target(
        &self,
        grants: Vec<Grant>,
        keeping: &HashMap<(String, String), GrantId>,
    ) -> Vec<(Grant, Result<RevokeOutcome, EngineError>)> {
        futures_util::stream::iter(grants)
            .map(|grant| {
                let kept = keeping
                    .get(&(grant.entitlement.to_string(), grant.account.clone()))
                    .copied();
                async move {
                    let outcome = match kept {
                        Some(other) if !grant.credential => Ok(RevokeOutcome::Retained(other)),
                        _ => match self.target_of(&grant) {
                            Ok((role, connector)) => Ok(self
                                .remove_on_target(&grant, &role, connector.as_ref())
                                .await),
                            Err(error) => Err(error),
                        },
                    };
                    (grant, outcome)
                }
            })
            .buffer_unordered(BATCH_CONCURRENCY)
            .collect()
            .await
    }

    /// One transaction for these outcomes: `revoked` (verified, or retained by an
    /// overlapping lease) or `failed` with its retry.
    async fn record_outcomes(
        &self,
        outcomes: Vec<(Grant, Result<RevokeOutcome, EngineError>)>,
        jobs_by_id: &HashMap<&str, &Job>,
    ) -> Result<(), EngineError> {
        let now = self.clock.now();
        let mut tx = self.store.begin().await?;
        // Read again in the writer: each ending is recorded once, even when a node that
        // was thought dead finished the same revocation meanwhile.
        let ids: Vec<GrantId> = outcomes.iter().map(|(grant, _)| grant.id).collect();
        let still_revoking: HashSet<GrantId> = tx
            .grants_by_ids(&ids)
            .await?
            .into_iter()
            .filter(|g| matches!(g.state, GrantState::Revoking | GrantState::Failed))
            .map(|g| g.id)
            .collect();
        let mut revoked = Vec::new();
        let mut failed = Vec::new();
        for (grant, outcome) in outcomes {
            if !still_revoking.contains(&grant.id) {
                continue;
            }
            match outcome {
                Ok(RevokeOutcome::Removed) => {
                    revoked.push(self.record_revoked_in(&mut tx, &grant, None, now).await?);
                }
                Ok(RevokeOutcome::Retained(other)) => {
                    revoked.push(
                        self.record_revoked_in(&mut tx, &grant, Some(other), now)
                            .await?,
                    );
                }
                // A refusal from the target, or no target to ask (its entitlement is no
                // longer configured): `failed`, retried with backoff, never dropped.
                Ok(RevokeOutcome::Failed(error)) | Err(EngineError { message: error, .. }) => {
                    let job = jobs_by_id
                        .get(grant.id.to_string().as_str())
                        .map(|job| (*job).clone())
                        .unwrap_or_else(|| Job {
                            object_id: grant.id.to_string(),
                            kind: writ_store::JobKind::RevokeGrant,
                            due_at: now,
                            attempts: 0,
                            last_error: None,
                            escalated_at: None,
                        });
                    let recorded = self
                        .record_failure_in(&mut tx, &grant, &job, &error, now)
                        .await?;
                    failed.push((grant, recorded, error));
                }
            }
        }
        tx.commit().await?;
        for done in &revoked {
            self.revoked_committed(done, now);
        }
        for (grant, recorded, error) in &failed {
            self.failure_committed(grant, recorded, error);
        }
        tracing::debug!(
            revoked = revoked.len(),
            failed = failed.len(),
            "revocation batch"
        );
        Ok(())
    }
}

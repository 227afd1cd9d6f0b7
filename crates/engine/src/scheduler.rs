//! The expiry scheduler: sleeps until the next deadline or until woken, then runs what
//! is due. Overdue work (after a restart) is simply due at once.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::watch;
use writ_store::{JobKind, JobTask};

use crate::Engine;

/// The most jobs run per pass before deadlines are looked at again.
pub const BATCH_SIZE_MAX: i64 = 512;
/// After a storage error, wait this long before trying again.
const STORAGE_RETRY: Duration = Duration::from_secs(1);
/// Sleep at most this long even with nothing scheduled: a safety net for work another
/// process (e.g. `writ token issue`) added without waking us.
const IDLE_SLEEP_MAX: Duration = Duration::from_secs(60);
/// With several nodes on one database, each looks for due work at least this often: a
/// job another node scheduled (and will run, unless it dies) is never waited on longer.
const SHARED_POLL_MAX: Duration = Duration::from_secs(1);
/// How long to wait when every due job is claimed by another node.
const CLAIMED_ELSEWHERE_PAUSE: Duration = Duration::from_millis(250);
/// How often the scheduler looks for expired grants that lost their job.
const JOBLESS_SWEEP_INTERVAL: Duration = Duration::from_secs(60);
/// The leaver and jobless-grant sweeps, which one node runs for all.
const SWEEPS_TASK: &str = "scheduler sweeps";
/// The scheduler's name for supervision and `/healthz`.
pub const TASK_NAME: &str = "scheduler";
/// The scheduler ticks at least this often unless it is stuck: its longest sleep and
/// a long batch of work.
pub const TICK_DEADLINE: Duration = Duration::from_secs(IDLE_SLEEP_MAX.as_secs() + 600);

/// How a pass over due work ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    /// Nothing due is left.
    Done,
    /// Due work would not move.
    Stalled,
    /// The database failed a write.
    StorageFailed,
    /// Every due job is being worked on by another node.
    ClaimedElsewhere,
}

pub struct Scheduler {
    engine: Arc<Engine>,
}

impl Scheduler {
    pub fn new(engine: Arc<Engine>) -> Self {
        Self { engine }
    }

    /// Runs every job due now; returns how many ran.
    pub async fn run_due(&self) -> Result<usize, crate::EngineError> {
        self.run_due_pass().await.map(|(ran, _)| ran)
    }

    /// As `run_due`, and how it ended.
    async fn run_due_pass(&self) -> Result<(usize, Ended), crate::EngineError> {
        let engine = &self.engine;
        let mut ran = 0;
        // With several nodes, look past the jobs others have claimed.
        let window = if engine.store.locks().shared() {
            4 * BATCH_SIZE_MAX
        } else {
            BATCH_SIZE_MAX
        };
        loop {
            let due = engine.store.due_jobs(engine.clock.now(), window).await?;
            if due.is_empty() {
                return Ok((ran, Ended::Done));
            }
            let (jobs, claims) = engine
                .claim_jobs(due, usize::try_from(BATCH_SIZE_MAX).unwrap_or(512))
                .await?;
            if jobs.is_empty() {
                return Ok((ran, Ended::ClaimedElsewhere));
            }
            let mut progressed = false;
            let (revocations, others): (Vec<_>, Vec<_>) = jobs
                .into_iter()
                .partition(|job| job.kind == JobKind::RevokeGrant);
            if !revocations.is_empty() {
                ran += revocations.len();
                match engine.revoke_due_batch(&revocations).await {
                    Ok((untouched, busy)) => {
                        progressed |= untouched.len() + busy < revocations.len();
                        // Nothing to do for these (say, already revoked): put them off
                        // so they cannot make the scheduler spin.
                        for job in untouched {
                            engine.defer_job(job).await;
                        }
                    }
                    Err(error) => {
                        tracing::error!(%error, "revocation batch failed; will retry");
                        if error.kind() == crate::ErrorKind::Internal {
                            engine.health.database_failed(&error.message);
                            return Ok((ran, Ended::StorageFailed));
                        }
                    }
                }
            }
            for job in &others {
                let before = (job.due_at, job.attempts);
                let result = match job.task() {
                    Ok(JobTask::ApplyGrant(id)) => {
                        engine.apply_grant(id).await;
                        Ok(())
                    }
                    Ok(JobTask::ExpireRequest(id)) => engine.expire_request(id).await,
                    Ok(JobTask::ExpireException(id)) => engine.expire_exception(id).await,
                    Ok(JobTask::BreakGlassReviewDue(id)) => engine.review_due(id).await,
                    Ok(JobTask::ReviewCampaignDue(id)) => engine.campaign_due(id).await,
                    // Revocations were taken out above, in batches.
                    Ok(JobTask::RevokeGrant(_)) => Ok(()),
                    Err(unreadable) => {
                        engine.unreadable_job(&unreadable);
                        Ok(())
                    }
                };
                if let Err(error) = result {
                    tracing::error!(job = %job.object_id, kind = job.kind.as_str(), %error, "scheduled work failed; will retry");
                }
                let after = engine
                    .store
                    .job(&job.object_id)
                    .await?
                    .map(|j| (j.due_at, j.attempts));
                if after == Some(before) {
                    // The job is still due exactly as before: put it off, so a job that
                    // cannot move (say, its grant was already revoked) never makes the
                    // scheduler spin. Its last error says why.
                    engine.defer_job(job).await;
                } else {
                    progressed = true;
                }
                ran += 1;
            }
            claims.release().await;
            if !progressed {
                // Nothing moved: let the caller back off.
                return Ok((ran, Ended::Stalled));
            }
        }
    }

    /// Runs until `shutdown` changes.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let wake = self.engine.signals.wake.clone();
        let mut last_sweep: Option<tokio::time::Instant> = None;
        let mut last_leaver_sweep: Option<tokio::time::Instant> = None;
        // When this node last checked its lock sessions and other nodes' directory changes.
        let mut last_follow: Option<tokio::time::Instant> = None;
        let mut redecided_since_start = false;
        // When an identity ends or an orphan's grace runs out next.
        let mut leaver_due: Option<writ_domain::Timestamp> = None;
        loop {
            self.engine.health.tick(TASK_NAME);
            self.engine.flush_rejected_deliveries().await;
            if last_follow.is_none_or(|at| at.elapsed() >= SHARED_POLL_MAX) {
                // A lock session that died took its locks with it: find out now, not
                // when this node next acts as if it held them.
                if let Err(error) = self.engine.store.locks().check().await {
                    tracing::warn!(%error, "a cluster lock session was lost; its locks are taken again as needed");
                }
                if let Err(error) = self.engine.follow_directory().await {
                    tracing::warn!(%error, "cannot follow directory changes made on other nodes; trying again");
                }
                last_follow = Some(tokio::time::Instant::now());
            }
            // The sweeps are once-for-all work: the node that runs them for every node.
            let sweeps = self.engine.leads(SWEEPS_TASK).await;
            if sweeps
                && last_leaver_sweep
                    .is_none_or(|at| at.elapsed() >= crate::leavers::LEAVER_SWEEP_INTERVAL)
            {
                leaver_due = match self.engine.sweep_leavers().await {
                    Ok(due) => due,
                    Err(error) => {
                        tracing::error!(%error, "the leaver sweep failed; it runs again shortly");
                        None
                    }
                };
                last_leaver_sweep = Some(tokio::time::Instant::now());
            }
            // Policies or identities may have changed while writ was stopped.
            if !redecided_since_start {
                match self.engine.redecide_at_start().await {
                    Ok(_) => redecided_since_start = true,
                    Err(error) => {
                        tracing::error!(%error, "deciding the live grants again at start failed; retrying");
                    }
                }
            }
            if sweeps && last_sweep.is_none_or(|at| at.elapsed() >= JOBLESS_SWEEP_INTERVAL) {
                self.engine.sweep_jobless_grants().await;
                last_sweep = Some(tokio::time::Instant::now());
            }
            // While working, any new job wakes us again (a stored permit), so one added
            // between our last look and the sleep below is not missed.
            self.engine
                .signals
                .next_wake_at_us
                .store(i64::MAX, Ordering::SeqCst);
            let pass = self.run_due_pass().await;
            if matches!(
                pass,
                Ok((_, Ended::Done | Ended::Stalled | Ended::ClaimedElsewhere))
            ) {
                self.engine.health.database_answered();
            }
            let pause = match pass {
                Ok((_, Ended::Done)) => {
                    let owed = self.engine.refresh_lookahead().await;
                    let next = self.until_next_deadline().await;
                    owed.map_or(next, |owed| owed.min(next))
                }
                Ok((_, Ended::Stalled)) => STORAGE_RETRY,
                Ok((_, Ended::ClaimedElsewhere)) => CLAIMED_ELSEWHERE_PAUSE,
                // The database refuses writes, or cannot be reached: leases due now are
                // still taken off their targets (see `outage`), recorded once it is back.
                Ok((_, Ended::StorageFailed)) => {
                    self.engine.revoke_during_outage().await;
                    STORAGE_RETRY
                }
                Err(error) => {
                    tracing::error!(%error, "scheduler cannot read its work; retrying");
                    self.engine.health.database_failed(&error.message);
                    self.engine.revoke_during_outage().await;
                    STORAGE_RETRY
                }
            };
            // A leaver is acted on when it leaves, not at the idle pace (but no sooner
            // than the next sweep may run).
            let pause = match leaver_due {
                Some(due) => {
                    let until = due.millis_since(self.engine.clock.now()).max(0);
                    let until = Duration::from_millis(u64::try_from(until).unwrap_or(0));
                    pause.min(until.max(crate::leavers::LEAVER_SWEEP_INTERVAL))
                }
                None => pause,
            };
            let wake_at = self
                .engine
                .clock
                .now()
                .plus_millis(i64::try_from(pause.as_millis()).unwrap_or(i64::MAX));
            self.engine
                .signals
                .next_wake_at_us
                .store(wake_at.unix_micros(), Ordering::SeqCst);
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                () = wake.notified() => {}
                _ = shutdown.changed() => return,
            }
        }
    }

    async fn until_next_deadline(&self) -> Duration {
        let longest = if self.engine.store.locks().shared() {
            SHARED_POLL_MAX
        } else {
            IDLE_SLEEP_MAX
        };
        match self.engine.store.next_due().await {
            Ok(Some(due)) => {
                let millis = due.millis_since(self.engine.clock.now()).max(0);
                Duration::from_millis(u64::try_from(millis).unwrap_or(0)).min(longest)
            }
            Ok(None) => longest,
            Err(_) => STORAGE_RETRY,
        }
    }
}

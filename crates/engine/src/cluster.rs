//! Several writ nodes on one database: who changes an account, who works on a job, who
//! runs a task that must run once for all. Each is a lock every node respects
//! (`writ_store::ClusterLocks`: PostgreSQL advisory locks, released the moment a node
//! dies or loses its database), taken without waiting inside the database: a node
//! skips what another holds and comes back to it.
//!
//! Within a node the in-process lock is taken first (advisory locks are re-entrant per
//! session, so they alone would not keep two tasks of one node apart).

use std::collections::HashMap;
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use tokio::sync::OwnedMutexGuard;
use writ_store::{ClusterLocks, HeldLock, Job, LockKey, LockSpace};

use crate::{Engine, EngineError, ErrorCode};

/// How long a node waits for an account another node is changing before it gives up
/// (the change is retried later). Longer than any target call may take.
const ACCOUNT_WAIT_MAX: Duration = Duration::from_secs(120);
/// The first pause between tries for a lock another node holds; doubled up to the next.
const RETRY_FIRST: Duration = Duration::from_millis(5);
const RETRY_MAX: Duration = Duration::from_millis(200);
/// How often a node that does not run a once-for-all task tries to take it over.
pub(crate) const LEADERSHIP_RETRY: Duration = Duration::from_secs(2);

/// One account's lock (or a named one, e.g. a target's reconciliation pass), held in
/// this process and across nodes until dropped.
pub(crate) struct ClusterGuard {
    _local: OwnedMutexGuard<()>,
    shared: Option<(Arc<ClusterLocks>, HeldLock)>,
}

impl Drop for ClusterGuard {
    fn drop(&mut self) {
        // Released after the in-process lock: re-entrant within this node's session, a
        // task of this node that takes it meanwhile only adds a hold of its own.
        if let Some((locks, held)) = self.shared.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(async move { locks.unlock(&[held]).await });
        }
    }
}

/// Jobs this node has claimed, released when dropped (after their work is recorded).
pub(crate) struct JobClaims {
    shared: Option<(Arc<ClusterLocks>, Vec<HeldLock>)>,
}

impl JobClaims {
    /// Releases the claims now.
    pub(crate) async fn release(mut self) {
        if let Some((locks, held)) = self.shared.take() {
            locks.unlock(&held).await;
        }
    }
}

impl Drop for JobClaims {
    fn drop(&mut self) {
        if let Some((locks, held)) = self.shared.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(async move { locks.unlock(&held).await });
        }
    }
}

/// Which once-for-all tasks this node runs now.
#[derive(Default)]
pub(crate) struct Leadership {
    held: StdMutex<HashMap<&'static str, HeldLock>>,
}

fn key_of(space: LockSpace, name: &str) -> LockKey {
    LockKey::new(space, name)
}

impl Engine {
    /// Waits for an account's lock (`holder_key`), in this process and across nodes.
    pub(crate) async fn lock_account(&self, key: String) -> Result<ClusterGuard, EngineError> {
        self.lock_named(LockSpace::Account, key).await
    }

    /// Waits for the lock called `name` in `space`, in this process and across nodes;
    /// fails if another node holds it for longer than any target call may take.
    pub(crate) async fn lock_named(
        &self,
        space: LockSpace,
        name: String,
    ) -> Result<ClusterGuard, EngineError> {
        let key = key_of(space, &name);
        let local = self.targets.holder_lock(name.clone()).lock_owned().await;
        let locks = self.store.locks().clone();
        if !locks.shared() {
            return Ok(ClusterGuard {
                _local: local,
                shared: None,
            });
        }
        let started = tokio::time::Instant::now();
        let mut pause = RETRY_FIRST;
        loop {
            if let Some(held) = locks.try_lock(&[key]).await?.pop() {
                return Ok(ClusterGuard {
                    _local: local,
                    shared: Some((locks, held)),
                });
            }
            if started.elapsed() > ACCOUNT_WAIT_MAX {
                return Err(EngineError::new(
                    ErrorCode::Overloaded,
                    format!(
                        "another writ node has held {name:?} for over {ACCOUNT_WAIT_MAX:?}; try again"
                    ),
                ));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(RETRY_MAX);
        }
    }

    /// Takes each of these accounts' locks that is free now, in this process and across
    /// nodes; the rest are left for a later try.
    pub(crate) async fn try_lock_accounts(
        &self,
        keys: Vec<String>,
    ) -> Result<HashMap<String, ClusterGuard>, EngineError> {
        let mut local = Vec::with_capacity(keys.len());
        for name in keys {
            let guard = self.targets.holder_lock(name.clone()).lock_owned().await;
            local.push((name, guard));
        }
        let locks = self.store.locks().clone();
        if !locks.shared() {
            return Ok(local
                .into_iter()
                .map(|(name, guard)| {
                    (
                        name,
                        ClusterGuard {
                            _local: guard,
                            shared: None,
                        },
                    )
                })
                .collect());
        }
        let wanted: Vec<LockKey> = local
            .iter()
            .map(|(name, _)| key_of(LockSpace::Account, name))
            .collect();
        let taken: HashMap<LockKey, HeldLock> = locks
            .try_lock(&wanted)
            .await?
            .into_iter()
            .map(|held| (held.key, held))
            .collect();
        Ok(local
            .into_iter()
            .filter_map(|(name, guard)| {
                let held = *taken.get(&key_of(LockSpace::Account, &name))?;
                Some((
                    name,
                    ClusterGuard {
                        _local: guard,
                        shared: Some((locks.clone(), held)),
                    },
                ))
            })
            .collect())
    }

    /// Claims up to `limit` of these due jobs for this node: those no other node is
    /// working on. Held until the returned claims are released.
    pub(crate) async fn claim_jobs(
        &self,
        jobs: Vec<Job>,
        limit: usize,
    ) -> Result<(Vec<Job>, JobClaims), EngineError> {
        let locks = self.store.locks().clone();
        if !locks.shared() {
            let mut jobs = jobs;
            jobs.truncate(limit);
            return Ok((jobs, JobClaims { shared: None }));
        }
        let keys: Vec<LockKey> = jobs
            .iter()
            .map(|job| key_of(LockSpace::Job, &job.object_id))
            .collect();
        let mut held: HashMap<LockKey, HeldLock> = locks
            .try_lock(&keys)
            .await?
            .into_iter()
            .map(|h| (h.key, h))
            .collect();
        let mut claimed = Vec::new();
        let mut kept = Vec::new();
        for (job, key) in jobs.into_iter().zip(keys) {
            if claimed.len() < limit
                && let Some(lock) = held.remove(&key)
            {
                claimed.push(job);
                kept.push(lock);
            }
        }
        // Taken beyond the limit: let another node have them.
        let surplus: Vec<HeldLock> = held.into_values().collect();
        locks.unlock(&surplus).await;
        Ok((
            claimed,
            JobClaims {
                shared: Some((locks, kept)),
            },
        ))
    }

    /// Whether this node runs the once-for-all task `task` now: it does while it holds
    /// the task's lock, which it tries to take when it does not (so when the node
    /// running it dies, another takes over at its next try).
    pub(crate) async fn leads(&self, task: &'static str) -> bool {
        let locks = self.store.locks();
        if !locks.shared() {
            return true;
        }
        let current = self
            .leadership
            .held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(task)
            .copied();
        if let Some(held) = current {
            if locks.still_held(&held).await {
                return true;
            }
            tracing::warn!(
                task,
                "lost the database session that made this node run this task"
            );
        }
        match locks.try_lock(&[key_of(LockSpace::Task, task)]).await {
            Ok(mut taken) => match taken.pop() {
                Some(held) => {
                    tracing::info!(task, "this node now runs this task for every node");
                    self.leadership
                        .held
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .insert(task, held);
                    true
                }
                None => {
                    self.leadership
                        .held
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .remove(task);
                    false
                }
            },
            Err(error) => {
                tracing::warn!(task, %error, "cannot tell whether this node runs this task; it does not for now");
                false
            }
        }
    }
}

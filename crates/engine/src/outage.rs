//! Revocation while the ledger cannot be written.
//!
//! writ never grants without recording first (fail closed), so an unwritable database
//! stops every new grant. Ending access is the safe direction, and a lease's end was
//! recorded when it was granted (`grant.created` carries `scheduled_revocation_at`): so
//! a lease that expires during an outage is still taken off its target, on time, and
//! recorded as soon as the database takes writes again.
//!
//! For that the scheduler keeps a **lookahead** in memory: the grants whose revocation
//! is due within the next 10 minutes (at most 10,000, nearest first), each with how
//! long another live lease of the same account keeps the access (`covered_until`).
//! It is refreshed from the database every 30 s, and within a second after a grant was
//! made (at most once a second, so a busy writ does not reload it per request).
//! When the database fails, due entries are revoked on their targets (under the
//! account's lock and the target's guard) unless another lease still covers them, and
//! remembered; once the database is back the normal path records them — the target
//! reads back without the access, so `grant.revoked` follows, with the time of the
//! removal as `removed_while_ledger_unavailable_at`.
//!
//! Limits, on purpose: grants due further ahead than the lookahead, or beyond its size,
//! wait for the database; a lease ended early just before the outage may still count as
//! covering another (so that one waits too). Both err towards not removing access some
//! lease may still justify; neither loses a revocation.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use writ_domain::{Grant, GrantId, Timestamp};

use crate::Engine;
use crate::revocation::RevokeOutcome;

/// How far ahead the lookahead looks.
const LOOKAHEAD_SECONDS: i64 = 600;
/// The most grants it holds.
const LOOKAHEAD_MAX: i64 = 10_000;
/// How stale it may get before a pass refreshes it.
const REFRESH_SECONDS: i64 = 30;
/// After a grant was made, how soon a pass may reload it again.
const DIRTY_REFRESH_MS: i64 = 1_000;

#[derive(Debug, Default)]
pub(crate) struct Lookahead {
    state: Mutex<LookaheadState>,
}

#[derive(Debug, Default)]
struct LookaheadState {
    refreshed_at: Option<Timestamp>,
    /// Accounts (entitlement, account) granted since the last refresh: their coverage
    /// is unknown, so none of their leases is removed during an outage until a refresh.
    dirty: HashSet<(String, String)>,
    /// How many times a lease was noted: a load that saw none noted meanwhile may
    /// clear `dirty`; one that did not, may not (it may have read before the lease).
    noted: u64,
    upcoming: Vec<Upcoming>,
    /// Removed from their targets while the ledger was unavailable, not yet recorded.
    removed: HashMap<GrantId, Timestamp>,
}

#[derive(Debug, Clone)]
struct Upcoming {
    grant: Grant,
    /// Until when another live lease of the same account keeps the access.
    covered_until: Option<Timestamp>,
}

impl Lookahead {
    fn state(&self) -> std::sync::MutexGuard<'_, LookaheadState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A grant was recorded or activated: its account's coverage may have changed, and
    /// its revocation may be due soon.
    pub(crate) fn note_new_lease(&self, grant: &Grant) {
        let mut state = self.state();
        state
            .dirty
            .insert((grant.entitlement.to_string(), grant.account.clone()));
        state.noted += 1;
    }

    /// When the grant was taken off its target during an outage, if it was.
    pub(crate) fn removed_at(&self, id: GrantId) -> Option<Timestamp> {
        self.state().removed.get(&id).copied()
    }

    /// Its revocation is on the record now.
    pub(crate) fn forget_removed(&self, id: GrantId) {
        self.state().removed.remove(&id);
    }
}

impl Engine {
    /// Reloads the lookahead if it is stale, or a grant was made since and the last load
    /// is at least a second old (so a busy writ reloads it at most once a second).
    /// Returns how soon to call again when a reload is owed but was put off.
    pub(crate) async fn refresh_lookahead(&self) -> Option<std::time::Duration> {
        let now = self.clock.now();
        {
            let state = self.lookahead.state();
            let age_ms = state.refreshed_at.map(|at| now.millis_since(at));
            let fresh = age_ms.is_some_and(|age| age < REFRESH_SECONDS * 1000);
            if fresh && state.dirty.is_empty() {
                return None;
            }
            if let Some(age) = age_ms.filter(|age| fresh && *age < DIRTY_REFRESH_MS) {
                let wait = u64::try_from(DIRTY_REFRESH_MS - age).unwrap_or(0);
                return Some(std::time::Duration::from_millis(wait));
            }
        }
        let noted_before = self.lookahead.state().noted;
        let upcoming = match self.load_upcoming(now).await {
            Ok(upcoming) => upcoming,
            Err(error) => {
                tracing::warn!(%error, "cannot refresh the revocation lookahead");
                return None;
            }
        };
        let mut state = self.lookahead.state();
        state.upcoming = upcoming;
        state.refreshed_at = Some(now);
        if state.noted == noted_before {
            state.dirty.clear();
            None
        } else {
            // A lease was noted while loading: the load may have missed it.
            Some(std::time::Duration::from_millis(
                u64::try_from(DIRTY_REFRESH_MS).unwrap_or(1_000),
            ))
        }
    }

    async fn load_upcoming(&self, now: Timestamp) -> Result<Vec<Upcoming>, writ_store::StoreError> {
        let grants = self
            .store
            .upcoming_revocations(now.plus_seconds(LOOKAHEAD_SECONDS), LOOKAHEAD_MAX)
            .await?;
        let mut covered: HashMap<(String, String), Vec<(GrantId, Timestamp)>> = HashMap::new();
        for chunk in grants.chunks(500) {
            let holders: Vec<(&str, &str)> = chunk
                .iter()
                .map(|g| (g.entitlement.as_str(), g.account.as_str()))
                .collect();
            for lease in self.store.live_leases_of(&holders).await? {
                covered
                    .entry((lease.entitlement, lease.account))
                    .or_default()
                    .push((lease.id, lease.expires_at));
            }
        }
        Ok(grants
            .into_iter()
            .map(|grant| {
                let covered_until = covered
                    .get(&(grant.entitlement.to_string(), grant.account.clone()))
                    .and_then(|leases| {
                        leases
                            .iter()
                            .filter(|(id, _)| *id != grant.id)
                            .map(|(_, until)| *until)
                            .max()
                    });
                Upcoming {
                    grant,
                    covered_until,
                }
            })
            .collect())
    }

    /// The database cannot be used: takes every due lease in the lookahead off its
    /// target, unless another lease still covers it. Returns how many were removed.
    pub(crate) async fn revoke_during_outage(&self) -> usize {
        let now = self.clock.now();
        let due: Vec<Upcoming> = {
            let state = self.lookahead.state();
            state
                .upcoming
                .iter()
                .filter(|u| u.grant.expires_at <= now && !state.removed.contains_key(&u.grant.id))
                .filter(|u| u.covered_until.is_none_or(|until| until <= now))
                .filter(|u| {
                    !state
                        .dirty
                        .contains(&(u.grant.entitlement.to_string(), u.grant.account.clone()))
                })
                .cloned()
                .collect()
        };
        let mut removed = 0;
        for upcoming in due {
            let grant = &upcoming.grant;
            let Ok((role, connector)) = self.target_of(grant) else {
                continue;
            };
            let lock = self.targets.holder_lock(Self::holder_key(grant));
            let _held = lock.lock().await;
            match self
                .remove_on_target(grant, &role, connector.as_ref())
                .await
            {
                RevokeOutcome::Removed => {
                    self.lookahead.state().removed.insert(grant.id, now);
                    removed += 1;
                    tracing::warn!(grant = %grant.id, account = %grant.account, entitlement = %grant.entitlement,
                        "lease expired while the ledger is unavailable: removed from the target; it is recorded when the ledger is back");
                }
                RevokeOutcome::Failed(error) => {
                    tracing::warn!(grant = %grant.id, %error, "lease expired while the ledger is unavailable and the target refused; retrying");
                }
                RevokeOutcome::Retained(_) => {}
            }
        }
        removed
    }
}

//! Leavers: an identity disabled in the configuration, past its `valid_until`, or an
//! orphan writ disabled (`orphans`), keeps nothing. Every lease it
//! holds is revoked through the usual verified path (reason `leaver`, by
//! `writ:scheduler`), its requests still waiting for approval are cancelled, and its
//! tokens and browser sessions are revoked on the ledger, approvals it gave on requests
//! still pending are voided (`request.approval_voided`),
//! so none of them works again even if the identity is enabled later. The scheduler
//! sweeps when it starts — a writ started with a newly disabled identity acts on it at
//! once — and again on each of its passes at least `LEAVER_SWEEP_INTERVAL` apart.

use std::time::Duration;

use serde_json::json;
use writ_domain::ledger::EventKind;
use writ_domain::lifecycle::{GrantState, RequestState};
use writ_domain::{RevokeReason, Timestamp};
use writ_store::{GrantFilter, RequestFilter};

use crate::{Engine, EngineError};

/// The least time between two sweeps.
pub const LEAVER_SWEEP_INTERVAL: Duration = Duration::from_secs(5);
/// The most leases of one leaver started on in one sweep (the next sweep takes more).
const LEASES_PER_SWEEP_MAX: i64 = 1000;
use crate::SCHEDULER;

impl Engine {
    /// One sweep over the leavers. Returns when the next sweep is owed: the next end
    /// date or orphan deadline, if any.
    pub async fn sweep_leavers(&self) -> Result<Option<Timestamp>, EngineError> {
        let now = self.clock.now();
        let mut leavers: Vec<String> = self
            .identities()
            .iter()
            .filter(|identity| identity.has_left(now))
            .map(|identity| identity.name.to_string())
            .collect();
        let (disabled_orphans, next_orphan_due) = self.sweep_orphans().await?;
        leavers.extend(disabled_orphans);
        let next_due = self
            .identities()
            .iter()
            .filter_map(|identity| identity.valid_until)
            .filter(|end| *end > now)
            .chain(next_orphan_due)
            .min();
        // People no longer known at all (deleted from the directory, removed from
        // writ.toml) who still hold something.
        for subject in self.store.live_grant_subjects().await? {
            if self.identity(&subject).is_none() && !leavers.contains(&subject) {
                leavers.push(subject);
            }
        }
        for name in &leavers {
            self.revoke_leases_of(name).await?;
            self.revoke_tokens_of(name).await?;
            self.cancel_requests_of(name).await?;
        }
        self.void_approvals_of(&leavers).await?;
        Ok(next_due)
    }

    /// One person leaves now (made inactive or deleted by the identity provider): all
    /// a leaver sweep does for them, without waiting for it.
    pub(crate) async fn depart(&self, name: &str) -> Result<(), EngineError> {
        self.revoke_leases_of(name).await?;
        self.revoke_tokens_of(name).await?;
        self.cancel_requests_of(name).await?;
        self.void_approvals_of(&[name.to_string()]).await
    }

    async fn revoke_leases_of(&self, subject: &str) -> Result<usize, EngineError> {
        // By state, so a long history of ended grants cannot hide a live one.
        let mut holding = Vec::new();
        for state in [GrantState::Pending, GrantState::Active] {
            let filter = GrantFilter {
                state: Some(state),
                subject: Some(subject.to_string()),
                entitlement: None,
                involving: None,
                limit: Some(LEASES_PER_SWEEP_MAX),
                after: None,
            };
            holding.extend(self.store.grants(&filter).await?.items);
        }
        let mut started = 0;
        for grant in holding {
            let now = self.clock.now();
            let mut tx = self.store.begin().await?;
            // Read again in the transaction: another path may have ended it meanwhile.
            let Some(grant) = tx
                .grant(grant.id)
                .await?
                .filter(|g| g.state.may_hold_access())
            else {
                continue;
            };
            self.begin_revoke_in(&mut tx, &grant, &SCHEDULER, RevokeReason::Leaver, now)
                .await?;
            tx.commit().await?;
            started += 1;
            tracing::info!(grant = %grant.id, %subject, "revoking a leaver's lease");
            self.evidence_committed();
            if let Err(error) = self.execute_revoke(grant.id).await {
                tracing::error!(grant = %grant.id, %error, "revocation will be retried");
            }
        }
        Ok(started)
    }

    /// Requests still waiting for approval that the leaver made or would receive.
    async fn cancel_requests_of(&self, identity: &str) -> Result<(), EngineError> {
        let filter = RequestFilter {
            state: Some(RequestState::PendingApproval),
            requester: None,
            subject: None,
            involving: Some(vec![identity.to_string()]),
            limit: Some(LEASES_PER_SWEEP_MAX),
            after: None,
        };
        for request in self.store.requests(&filter).await?.items {
            let reason = format!("leaver: {identity} left");
            if self.cancel_pending(request.id, &SCHEDULER, reason).await? {
                tracing::info!(request = %request.id, %identity, "cancelled a leaver's pending request");
            }
        }
        Ok(())
    }

    /// Approvals the leaver gave on requests still pending stop counting: someone who
    /// left cannot vouch for access any more. (Approvals that already granted access
    /// stand; the grants are decided again only if policy or their subject changes.)
    async fn void_approvals_of(&self, leavers: &[String]) -> Result<(), EngineError> {
        if leavers.is_empty() {
            return Ok(());
        }
        let left = |approver: &str| leavers.iter().any(|name| name == approver);
        let mut after = None;
        loop {
            let filter = RequestFilter {
                state: Some(RequestState::PendingApproval),
                requester: None,
                subject: None,
                involving: None,
                limit: Some(LEASES_PER_SWEEP_MAX),
                after,
            };
            let page = self.store.requests(&filter).await?;
            let touched = page
                .items
                .iter()
                .filter(|r| r.approvals.iter().any(|a| left(a.approver.as_str())));
            for request in touched {
                let now = self.clock.now();
                let mut tx = self.store.begin().await?;
                let Some(mut request) = tx
                    .request(request.id)
                    .await?
                    .filter(|r| r.state == RequestState::PendingApproval)
                else {
                    continue;
                };
                let (voided, kept): (Vec<_>, Vec<_>) = request
                    .approvals
                    .into_iter()
                    .partition(|approval| left(approval.approver.as_str()));
                request.approvals = kept;
                if voided.is_empty() {
                    continue;
                }
                tx.update_request(&request).await?;
                let data = json!({ "request": request, "voided": &voided, "reason": "leaver" });
                tx.append(now, &SCHEDULER, EventKind::RequestApprovalVoided, &data)
                    .await?;
                tx.commit().await?;
                for approval in &voided {
                    tracing::info!(request = %request.id, approver = %approval.approver, "voided a leaver's approval");
                }
            }
            match page.next {
                Some(next) => after = Some(next),
                None => return Ok(()),
            }
        }
    }

    async fn revoke_tokens_of(&self, identity: &str) -> Result<(), EngineError> {
        let now = self.clock.now();
        let live: Vec<String> = self
            .store
            .tokens(Some(identity))
            .await?
            .into_iter()
            .filter(|token| token.revoked_at.is_none() && token.expires_at > now)
            .map(|token| token.id)
            .collect();
        for id in live {
            let mut tx = self.store.begin().await?;
            for (hash, holder) in tx.live_tokens_by_id(&id).await? {
                if holder != identity {
                    continue;
                }
                tx.revoke_token(&hash, now).await?;
                let data = json!({ "identity": identity, "token_id": id, "revoked_by": SCHEDULER.as_str(), "reason": "leaver" });
                tx.append(now, &SCHEDULER, EventKind::TokenRevoked, &data)
                    .await?;
                self.forget_token(&hash);
            }
            tx.commit().await?;
        }
        Ok(())
    }
}

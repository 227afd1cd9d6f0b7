//! What auditors and operators read about writ itself: the audit log, the ledger's
//! verification, the evidence outbox, and the gauges `/metrics` shows (read from the
//! store at scrape time, so they are right after a restart too).

use writ_domain::ledger::{Event, LedgerError};
use writ_domain::lifecycle::GrantState;
use writ_domain::{FindingKind, FindingState, Grant, GrantId};
use writ_store::{LIST_LIMIT_MAX, NotifyCursor, OutboxEntry, VerifyError};

use crate::{Caller, Engine, EngineError, metrics_names};

/// The evidence outbox and the notification sinks' progress.
#[derive(Debug, Clone)]
pub struct OutboxStatus {
    /// The ledger's last sequence number.
    pub head: i64,
    /// Evidence waiting for delivery.
    pub backlog: i64,
    /// The oldest undelivered entries (at most 1,000).
    pub entries: Vec<OutboxEntry>,
    pub sinks: Vec<NotifyCursor>,
}

/// What verifying the ledger found.
#[derive(Debug, Clone)]
pub enum LedgerVerdict {
    Intact {
        events: i64,
        head: String,
    },
    Broken {
        events: i64,
        head: String,
        error: LedgerError,
    },
}

/// The most events one grant's history shows: a grant's life is a dozen events, a
/// few dozen with extensions and approvals (retries live in `jobs`, not the ledger).
pub const GRANT_HISTORY_EVENTS_MAX: i64 = 1000;

impl Engine {
    /// One grant's story as the ledger tells it: the events about its request and
    /// about the grant, oldest first, for whoever may read the grant.
    pub async fn grant_history(
        &self,
        caller: &Caller,
        id: GrantId,
    ) -> Result<(Grant, Vec<Event>), EngineError> {
        let grant = self.visible_grant(caller, id).await?;
        let records = [grant.id.to_string(), grant.request_id.to_string()];
        let events = self
            .store
            .events_about(&records, GRANT_HISTORY_EVENTS_MAX)
            .await?
            .iter()
            .map(|stored| stored.to_event().map_err(EngineError::from))
            .collect::<Result<_, _>>()?;
        Ok((grant, events))
    }

    /// Up to `limit` ledger events after `after`, oldest first (auditors only). An event
    /// whose data is not JSON is an error (`data_corrupt`), never shown as `null`.
    pub async fn audit_events(
        &self,
        caller: &Caller,
        after: i64,
        limit: i64,
    ) -> Result<Vec<Event>, EngineError> {
        self.require_auditor(caller, "read the audit log")?;
        self.store
            .events(after.max(0), limit)
            .await?
            .iter()
            .map(|stored| stored.to_event().map_err(EngineError::from))
            .collect()
    }

    /// Verifies the whole ledger (auditors only): chain, replay and tables.
    pub async fn verify_ledger(&self, caller: &Caller) -> Result<LedgerVerdict, EngineError> {
        self.require_auditor(caller, "verify the ledger")?;
        match self.store.verify().await {
            Ok(report) => Ok(LedgerVerdict::Intact {
                events: report.events,
                head: report.head,
            }),
            Err(VerifyError::Ledger(error)) => {
                let (events, head) = self.store.head().await?;
                Ok(LedgerVerdict::Broken {
                    events,
                    head,
                    error,
                })
            }
            Err(VerifyError::Store(error)) => Err(error.into()),
        }
    }

    /// The evidence outbox and how far each notification sink is (auditors only).
    pub async fn outbox_status(&self, caller: &Caller) -> Result<OutboxStatus, EngineError> {
        self.require_auditor(caller, "read the evidence outbox")?;
        Ok(OutboxStatus {
            head: self.store.last_event_seq().await?,
            backlog: self.store.outbox_backlog().await?,
            entries: self.store.undelivered_outbox(LIST_LIMIT_MAX).await?,
            sinks: self.store.notify_cursors().await?,
        })
    }

    /// Sets the gauges that describe stored state (grants by state, the outbox, findings,
    /// escalations) and the write counters, for a scrape.
    pub async fn publish_gauges(&self) -> Result<(), EngineError> {
        let counts = self.store.grant_counts().await?;
        let count_of = |state: GrantState| {
            counts
                .iter()
                .find(|(s, _)| s == state.as_str())
                .map_or(0, |(_, n)| *n)
        };
        for state in [
            GrantState::Pending,
            GrantState::Active,
            GrantState::Revoking,
            GrantState::Revoked,
            GrantState::Failed,
        ] {
            metrics::gauge!(metrics_names::GRANTS, "state" => state.as_str())
                .set(count_of(state) as f64);
        }
        metrics::gauge!(metrics_names::FAILED_REVOCATIONS).set(count_of(GrantState::Failed) as f64);
        metrics::gauge!(metrics_names::OUTBOX_BACKLOG)
            .set(self.store.outbox_backlog().await? as f64);
        let findings = self.store.finding_counts().await?;
        for kind in FindingKind::ALL {
            for state in FindingState::ALL {
                let count = findings
                    .iter()
                    .find(|(k, s, _)| k == kind.as_str() && s == state.as_str())
                    .map_or(0, |(_, _, n)| *n);
                metrics::gauge!(metrics_names::FINDINGS, "kind" => kind.as_str(), "state" => state.as_str())
                    .set(count as f64);
            }
        }
        let reviews = self.store.activation_counts().await?;
        for profile in self.config.break_glass.keys() {
            for state in writ_domain::ReviewState::ALL {
                let count = reviews
                    .iter()
                    .find(|(p, s, _)| p == profile && s == state.as_str())
                    .map_or(0, |(_, _, n)| *n);
                metrics::gauge!(metrics_names::BREAK_GLASS_REVIEWS, "profile" => profile.clone(), "state" => state.as_str())
                    .set(count as f64);
            }
        }
        metrics::gauge!(metrics_names::ESCALATED_REVOCATIONS)
            .set(self.store.escalated_jobs().await? as f64);
        let (writes, commits) = self.store.commit_counts();
        metrics::counter!(metrics_names::WRITE_TRANSACTIONS).absolute(writes);
        metrics::counter!(metrics_names::DATABASE_COMMITS).absolute(commits);
        Ok(())
    }
}

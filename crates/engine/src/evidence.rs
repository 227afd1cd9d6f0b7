//! Evidence on tickets: each lifecycle change of a request that cites a checked ticket
//! queues a note in the outbox, in the same transaction as its ledger event; the
//! `EvidenceCourier` delivers them in order per ticket, retrying while the ticketing
//! system is down. After the verified revocation the note closes the ticket.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, watch};
use writ_domain::ledger::{Actor, EventKind, StoredEvent, SystemActor};
use writ_domain::{Grant, Request, RevokeReason, Timestamp};
use writ_itsm::notify::Notifier;
use writ_store::{NewOutboxEntry, OutboxAction, OutboxEntry, WriteTx};

use crate::{Engine, EngineError, metrics_names};

/// First retry after a failed delivery; doubles up to `DELIVERY_BACKOFF_MAX_SECONDS`.
const DELIVERY_BACKOFF_FIRST_SECONDS: i64 = 1;
const DELIVERY_BACKOFF_MAX_SECONDS: i64 = 300;
/// Entries looked at per pass.
const DELIVERY_BATCH: i64 = 256;
/// Look again at least this often (entries written by another process, retries).
const IDLE_SLEEP: Duration = Duration::from_secs(5);
/// The courier's name for supervision and `/healthz`.
pub const COURIER_TASK_NAME: &str = "evidence courier";
/// The courier ticks at least this often unless it is stuck (its pause, plus time for
/// slow ticketing systems, each call of which has its own timeout).
pub const COURIER_TICK_DEADLINE: Duration = Duration::from_secs(600);

fn short(hash: &str) -> &str {
    hash.get(..16).unwrap_or(hash)
}

/// Why a lease ended, as a ticket note says it.
fn why_ended(grant: &Grant) -> &str {
    grant
        .revoke_reason
        .as_ref()
        .map_or("expired", RevokeReason::as_str)
}

/// Who ended a lease: the identity, or writ itself.
fn who_ended(grant: &Grant) -> &str {
    grant.revoked_by.as_ref().map_or("writ", |who| who.as_str())
}

fn request_note(kind: EventKind, request: &Request, event: &StoredEvent) -> Option<String> {
    let decision = &request.decision;
    let head = format!(
        "[writ] request {} — {} for {} ({} s)",
        request.id, request.entitlement, request.subject, request.duration_seconds
    );
    let text = match kind {
        EventKind::RequestCreated => {
            let outcome = match decision.outcome {
                writ_domain::DecisionOutcome::Deny => {
                    format!("DENIED: {}", decision.reasons.join("; "))
                }
                writ_domain::DecisionOutcome::Auto => {
                    "approved automatically by policy".to_string()
                }
                writ_domain::DecisionOutcome::Approval => {
                    format!("needs {} approval(s)", decision.approvals_required)
                }
            };
            format!(
                "{head}\nRequested by {} with justification: {}\nDecision: {outcome}\nPolicies: {}; policy set {}",
                request.requester,
                request.justification,
                if decision.policies.is_empty() {
                    "none (default deny)".to_string()
                } else {
                    decision.policies.join(", ")
                },
                decision.policy_hash
            )
        }
        EventKind::RequestApprovalRecorded | EventKind::RequestApproved => {
            let approvers: Vec<String> = request
                .approvals
                .iter()
                .map(|a| format!("{} at {} ({})", a.approver, a.at, a.comment))
                .collect();
            let state = if kind == EventKind::RequestApproved {
                "APPROVED"
            } else {
                "approval recorded"
            };
            format!("{head}\n{state}: {}", approvers.join("; "))
        }
        EventKind::RequestRejected | EventKind::RequestCancelled | EventKind::RequestExpired => {
            format!(
                "{head}\n{} by {}: {}",
                request.state.as_str().to_uppercase(),
                request
                    .closed_by
                    .as_ref()
                    .map_or("writ", |who| who.as_str()),
                request.close_comment.as_deref().unwrap_or("")
            )
        }
        _ => return None,
    };
    Some(format!(
        "{text}\nLedger event {} ({})",
        event.seq,
        short(&event.hash)
    ))
}

fn grant_note(
    kind: EventKind,
    grant: &Grant,
    event: &StoredEvent,
) -> Option<(OutboxAction, String)> {
    let head = format!(
        "[writ] grant {} — {} for {} (account {})",
        grant.id, grant.entitlement, grant.subject, grant.account
    );
    let (action, text) = match kind {
        EventKind::GrantActivated => (
            OutboxAction::Note,
            format!(
                "{head}\nACTIVE: verified on the target at {}; revocation scheduled at {}",
                grant.granted_at.map(|t| t.to_string()).unwrap_or_default(),
                grant.expires_at
            ),
        ),
        EventKind::GrantRevokeStarted => (
            OutboxAction::Note,
            format!(
                "{head}\nREVOKING since {} ({}), by {}",
                grant.revoked_at.map(|t| t.to_string()).unwrap_or_default(),
                why_ended(grant),
                who_ended(grant),
            ),
        ),
        EventKind::GrantRevokeFailed => {
            let error = serde_json::from_str::<serde_json::Value>(&event.data)
                .ok()
                .and_then(|data| data["error"].as_str().map(str::to_string))
                .unwrap_or_default();
            (
                OutboxAction::Note,
                format!(
                    "{head}\nREVOCATION FAILING on the target: {error}\nwrit keeps retrying until the access is verified gone."
                ),
            )
        }
        EventKind::GrantRevoked => (
            OutboxAction::Close,
            format!(
                "{head}\nREVOKED at {} ({}), by {}; verified gone from the target at {}{}\nThe access this ticket asked for has ended.",
                grant.revoked_at.map(|t| t.to_string()).unwrap_or_default(),
                why_ended(grant),
                who_ended(grant),
                grant.verified_at.map(|t| t.to_string()).unwrap_or_default(),
                grant
                    .retained_by
                    .map(|other| format!(
                        " (the account keeps the role through overlapping grant {other})"
                    ))
                    .unwrap_or_default(),
            ),
        ),
        _ => return None,
    };
    Some((
        action,
        format!(
            "{text}\nLedger event {} ({})",
            event.seq,
            short(&event.hash)
        ),
    ))
}

impl Engine {
    async fn queue_evidence(
        &self,
        tx: &mut WriteTx<'_>,
        request: &Request,
        event: &StoredEvent,
        action: OutboxAction,
        body: &str,
    ) -> Result<(), EngineError> {
        let Some(ticket) = &request.ticket else {
            return Ok(());
        };
        let Some(check) = &ticket.verified else {
            return Ok(());
        };
        if self.itsm.systems.get(&ticket.system).is_none() {
            return Ok(());
        }
        // Only the request a ticket backs may close it (a ledger from before one ticket
        // backed one request may hold others citing it).
        let action = match action {
            OutboxAction::Close
                if tx.ticket_request(&ticket.system, &ticket.key).await? != Some(request.id) =>
            {
                OutboxAction::Note
            }
            action => action,
        };
        let entry = NewOutboxEntry {
            seq: event.seq,
            system: &ticket.system,
            ticket_key: &ticket.key,
            ticket_id: &check.id,
            action,
            body,
        };
        tx.queue_outbox(entry, event.at).await?;
        Ok(())
    }

    /// Appends a request event (the whole record as data) and, for a request that cites
    /// a checked ticket, queues its note in the same transaction: every request event
    /// goes through here, so none can miss its evidence.
    pub(crate) async fn append_request_event(
        &self,
        tx: &mut WriteTx<'_>,
        now: Timestamp,
        actor: &Actor,
        kind: EventKind,
        request: &Request,
    ) -> Result<StoredEvent, EngineError> {
        let event = tx
            .append(now, actor, kind, &serde_json::json!({ "request": request }))
            .await?;
        let checked = request
            .ticket
            .as_ref()
            .is_some_and(|t| t.verified.is_some());
        if checked && let Some(text) = request_note(kind, request, &event) {
            self.queue_evidence(tx, request, &event, OutboxAction::Note, &text)
                .await?;
        }
        Ok(event)
    }

    /// Evidence for a grant event (access granted; access removed, which closes the ticket).
    pub(crate) async fn grant_evidence(
        &self,
        tx: &mut WriteTx<'_>,
        grant: &Grant,
        event: &StoredEvent,
    ) -> Result<(), EngineError> {
        if self.itsm.systems.is_empty() {
            return Ok(());
        }
        let Some((action, text)) = grant_note(event.kind, grant, event) else {
            return Ok(());
        };
        let Some(request) = tx.request(grant.request_id).await? else {
            return Ok(());
        };
        self.queue_evidence(tx, &request, event, action, &text)
            .await
    }

    /// Delivers what is due, oldest first; an entry waits while an older one for the
    /// same ticket is undelivered, so notes arrive in order. Returns the next retry time.
    pub async fn deliver_evidence(&self) -> Result<Option<Timestamp>, EngineError> {
        let now = self.clock.now();
        let entries = self.store.undelivered_outbox(DELIVERY_BATCH).await?;
        let mut blocked: HashSet<(String, String)> = HashSet::new();
        let mut next_retry: Option<Timestamp> = None;
        for entry in entries {
            let ticket = (entry.system.clone(), entry.ticket_key.clone());
            if blocked.contains(&ticket) {
                continue;
            }
            if entry.next_attempt_at > now {
                blocked.insert(ticket);
                next_retry = Some(
                    next_retry.map_or(entry.next_attempt_at, |t| t.min(entry.next_attempt_at)),
                );
                continue;
            }
            if let Err(retry_at) = self.deliver_one(&entry, now).await? {
                blocked.insert(ticket);
                next_retry = Some(next_retry.map_or(retry_at, |t| t.min(retry_at)));
            }
        }
        Ok(next_retry)
    }

    /// `Ok(Ok(()))` delivered, `Ok(Err(retry_at))` failed and rescheduled.
    async fn deliver_one(
        &self,
        entry: &OutboxEntry,
        now: Timestamp,
    ) -> Result<Result<(), Timestamp>, EngineError> {
        let result = match self.itsm.systems.get(&entry.system) {
            None => Err((
                format!(
                    "no ticketing system {:?} is configured any more",
                    entry.system
                ),
                0,
                "not_configured",
            )),
            Some((_, system)) => match entry.action {
                OutboxAction::Note => system
                    .add_note(&entry.ticket_key, &entry.ticket_id, &entry.body)
                    .await
                    .map(|()| None),
                OutboxAction::Close => system
                    .close(&entry.ticket_key, &entry.ticket_id, &entry.body)
                    .await
                    .map(|()| None),
                OutboxAction::OpenIncident => match serde_json::from_str(&entry.body) {
                    Ok(incident) => system.open_incident(&incident).await.map(Some),
                    Err(e) => Err(writ_itsm::ItsmError::Malformed {
                        system: entry.system.clone(),
                        problem: format!("outbox entry {} is not an incident: {e}", entry.seq),
                    }),
                },
            }
            .map_err(|e| {
                // A system limiting writ says when to come back: no sooner than that.
                let wait = match &e {
                    writ_itsm::ItsmError::RateLimited {
                        retry_after_seconds,
                        ..
                    } => i64::try_from(*retry_after_seconds).unwrap_or(i64::MAX),
                    _ => 0,
                };
                (e.to_string(), wait, e.kind())
            }),
        };
        let mut tx = self.store.begin().await?;
        let outcome = match result {
            Ok(opened) => {
                tx.outbox_delivered(entry.seq, now).await?;
                if let Some(incident) = opened {
                    // Which incident an activation opened is part of its record.
                    tx.append(
                        now,
                        &Actor::System(SystemActor::Itsm),
                        EventKind::BreakGlassIncidentOpened,
                        &serde_json::json!({
                            "activation_id": entry.ticket_key,
                            "system": entry.system,
                            "incident": incident,
                        }),
                    )
                    .await?;
                    tracing::warn!(system = %entry.system, incident = %incident, activation = %entry.ticket_key, "break-glass incident opened");
                }
                metrics::counter!(metrics_names::EVIDENCE_DELIVERED, "action" => entry.action.as_str()).increment(1);
                tracing::info!(system = %entry.system, ticket = %entry.ticket_key, seq = entry.seq, action = entry.action.as_str(), "evidence delivered");
                Ok(())
            }
            Err((error, asked_to_wait, reason)) => {
                let retry_at = now.plus_seconds(backoff_seconds(entry.attempts).max(asked_to_wait));
                tx.outbox_failed(entry.seq, retry_at, &error).await?;
                metrics::counter!(metrics_names::EVIDENCE_FAILURES, "itsm" => entry.system.clone(), "reason" => reason).increment(1);
                tracing::warn!(system = %entry.system, ticket = %entry.ticket_key, seq = entry.seq, %error, "evidence not delivered; will retry");
                Err(retry_at)
            }
        };
        tx.commit().await?;
        Ok(outcome)
    }
}

/// Events read per page when catching a notification sink up.
const NOTIFY_PAGE: i64 = 100;

fn backoff_seconds(attempts: i64) -> i64 {
    let exponent = u32::try_from(attempts.clamp(0, 20)).unwrap_or(20);
    DELIVERY_BACKOFF_FIRST_SECONDS
        .saturating_mul(2_i64.saturating_pow(exponent))
        .min(DELIVERY_BACKOFF_MAX_SECONDS)
}

impl Engine {
    /// The CloudEvents `source` of this deployment.
    fn event_source(&self) -> String {
        format!("urn:writ:{}", self.config.listen)
    }

    /// Sends each sink the events after its cursor, in ledger order, as CloudEvents.
    /// Returns when a failed sink should be tried again.
    pub async fn deliver_notifications(&self) -> Result<Option<Timestamp>, EngineError> {
        let notifiers = self.itsm.systems.notifiers();
        if notifiers.is_empty() {
            return Ok(None);
        }
        let now = self.clock.now();
        let mut cursors = self.store.notify_cursors().await?;
        let missing: Vec<&Arc<Notifier>> = notifiers
            .iter()
            .filter(|n| !cursors.iter().any(|c| c.sink == n.config().name))
            .collect();
        if !missing.is_empty() {
            let head = self.store.last_event_seq().await?;
            let mut tx = self.store.begin().await?;
            for notifier in missing {
                let start = if notifier.config().from_start {
                    0
                } else {
                    head
                };
                tx.start_cursor(&notifier.config().name, start, now).await?;
            }
            tx.commit().await?;
            cursors = self.store.notify_cursors().await?;
        }
        let mut next_retry: Option<Timestamp> = None;
        for notifier in notifiers {
            let name = &notifier.config().name;
            let Some(cursor) = cursors.iter().find(|c| &c.sink == name) else {
                continue;
            };
            if cursor.attempts > 0 && cursor.next_attempt_at > now {
                next_retry = Some(
                    next_retry.map_or(cursor.next_attempt_at, |t| t.min(cursor.next_attempt_at)),
                );
                continue;
            }
            if let Err(retry_at) = self
                .catch_up(notifier, cursor.last_seq, cursor.attempts, now)
                .await?
            {
                next_retry = Some(next_retry.map_or(retry_at, |t| t.min(retry_at)));
            }
        }
        Ok(next_retry)
    }

    /// Sends everything after `last_seq`; `Ok(Err(retry_at))` when a send failed.
    async fn catch_up(
        &self,
        notifier: &Notifier,
        mut last_seq: i64,
        attempts: i64,
        now: Timestamp,
    ) -> Result<Result<(), Timestamp>, EngineError> {
        let name = &notifier.config().name;
        let source = self.event_source();
        loop {
            let events = self.store.events(last_seq, NOTIFY_PAGE).await?;
            if events.is_empty() {
                return Ok(Ok(()));
            }
            let mut skipped_to = None;
            for stored in events {
                if !notifier.config().wants(stored.kind.as_str()) {
                    skipped_to = Some(stored.seq);
                    last_seq = stored.seq;
                    continue;
                }
                // An event whose data is not JSON stops this sink here (and is logged and
                // retried) rather than going out as `null`.
                let envelope =
                    writ_export::cloudevents::to_cloudevent(&stored.to_event()?, &source);
                let body = serde_json::to_vec(&envelope).unwrap_or_default();
                let sent = notifier
                    .send(body, writ_export::cloudevents::CONTENT_TYPE)
                    .await;
                let mut tx = self.store.begin().await?;
                if let Some(seq) = skipped_to.take() {
                    tx.advance_cursor(name, seq).await?;
                }
                match sent {
                    Ok(()) => {
                        tx.advance_cursor(name, stored.seq).await?;
                        tx.commit().await?;
                        metrics::counter!(metrics_names::NOTIFICATIONS_SENT, "sink" => name.clone()).increment(1);
                        last_seq = stored.seq;
                    }
                    Err(error) => {
                        let retry_at = now.plus_seconds(backoff_seconds(attempts));
                        tx.cursor_failed(name, retry_at, &error.to_string()).await?;
                        tx.commit().await?;
                        metrics::counter!(metrics_names::NOTIFICATION_FAILURES, "sink" => name.clone()).increment(1);
                        tracing::warn!(sink = %name, seq = stored.seq, %error, "notification not delivered; will retry");
                        return Ok(Err(retry_at));
                    }
                }
            }
            if let Some(seq) = skipped_to {
                let mut tx = self.store.begin().await?;
                tx.advance_cursor(name, seq).await?;
                tx.commit().await?;
            }
        }
    }
}

/// Delivers the outbox until shutdown: wakes when evidence is queued, when a retry is
/// due, and every few seconds regardless.
pub struct EvidenceCourier {
    engine: Arc<Engine>,
}

impl EvidenceCourier {
    pub fn new(engine: Arc<Engine>) -> Self {
        Self { engine }
    }

    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        if self.engine.itsm.systems.is_empty() && self.engine.itsm.systems.notifiers().is_empty() {
            // Nothing to deliver to: no ticketing system and no sink is configured.
            loop {
                self.engine.health.tick(COURIER_TASK_NAME);
                tokio::select! {
                    () = tokio::time::sleep(IDLE_SLEEP) => {}
                    _ = shutdown.changed() => return,
                }
            }
        }
        let queued: Arc<Notify> = self.engine.signals.evidence_queued.clone();
        loop {
            self.engine.health.tick(COURIER_TASK_NAME);
            // One node delivers for all, so each note and notification goes out once.
            if !self.engine.leads(COURIER_TASK_NAME).await {
                tokio::select! {
                    () = tokio::time::sleep(crate::cluster::LEADERSHIP_RETRY) => {}
                    _ = shutdown.changed() => return,
                }
                continue;
            }
            let evidence = self.engine.deliver_evidence().await;
            let notifications = self.engine.deliver_notifications().await;
            let next = match (evidence, notifications) {
                (Ok(a), Ok(b)) => Ok(a.into_iter().chain(b).min()),
                (Err(error), _) | (_, Err(error)) => Err(error),
            };
            let pause = match next {
                Ok(Some(retry_at)) => {
                    let millis = retry_at.millis_since(self.engine.clock.now()).max(0);
                    Duration::from_millis(u64::try_from(millis).unwrap_or(0)).min(IDLE_SLEEP)
                }
                Ok(None) => IDLE_SLEEP,
                Err(error) => {
                    tracing::error!(%error, "cannot read the outbox or the ledger; retrying");
                    IDLE_SLEEP
                }
            };
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                () = queued.notified() => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}

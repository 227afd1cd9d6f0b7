//! Tickets found by asking: ServiceNow never retries a Business Rule's outbound call,
//! and Jira retries a webhook for only about 30 minutes, so a delivery lost to a restart,
//! a 503 or the network would lose the request. Every `poll_every`, writ asks each
//! ticketing system for tickets in its request states updated since it last asked, and
//! takes each through exactly the webhook's path (`take_ticket`), deduplicated the same
//! way: by delivery id (`poll:<key>:<version>`) and by ticket.

use std::collections::HashMap;
use std::time::Duration;

use writ_domain::Timestamp;

use crate::intake::WebhookAction;
use crate::tickets::itsm_error;
use crate::{Engine, EngineError, ErrorKind};

/// The name of the poller task, for supervision and `/healthz`.
pub const POLLER_TASK_NAME: &str = "ticket poller";
/// How far back the first poll after start-up looks.
const FIRST_LOOKBACK_MINUTES: i64 = 24 * 60;
/// Margin added to each look-back for clocks and slow indexing.
const LOOKBACK_MARGIN_MINUTES: i64 = 2;
/// The most tickets one poll takes in.
const POLL_LIMIT: usize = 500;

/// When each system was last asked successfully.
#[derive(Debug, Default)]
pub(crate) struct PollState {
    last_ok: std::sync::Mutex<HashMap<String, Timestamp>>,
}

impl Engine {
    /// Asks `system` for tickets it may not have told writ about, and takes each.
    /// Returns how many became requests.
    pub async fn poll_tickets(&self, system: &str) -> Result<usize, EngineError> {
        let Some((config, tickets)) = self.itsm.systems.get(system) else {
            return Err(EngineError::not_found("ticketing system", system));
        };
        let now = self.clock.now();
        let last_ok = self
            .itsm
            .polls
            .last_ok
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(system)
            .copied();
        let minutes = last_ok.map_or(FIRST_LOOKBACK_MINUTES, |at| {
            now.millis_since(at).div_euclid(60_000) + 1 + LOOKBACK_MARGIN_MINUTES
        });
        let found = tickets
            .updated_within(minutes, &config.request_states, POLL_LIMIT)
            .await
            .map_err(itsm_error)?;
        let mut created = 0;
        // A ticket that could not be taken for a passing reason (the system or the
        // database unavailable) must be looked at again: the look-back then stays put.
        let mut retry = false;
        for (key, version) in found {
            let delivery = format!("poll:{key}:{version}");
            match self.take_ticket(system, &delivery, &key).await {
                Ok(outcome) if matches!(outcome.action, WebhookAction::Created) => {
                    tracing::info!(system, ticket = %key, "a ticket no delivery announced became a request");
                    created += 1;
                }
                Ok(_) => {}
                Err(error) => {
                    retry |= matches!(error.kind(), ErrorKind::Unavailable);
                    tracing::warn!(system, ticket = %key, %error, "polled ticket not taken");
                }
            }
        }
        if retry {
            return Ok(created);
        }
        self.itsm
            .polls
            .last_ok
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(system.to_string(), now);
        Ok(created)
    }

    /// `writ serve`'s poller: each ticketing system every its `poll_every`. Runs until
    /// `shutdown` changes.
    pub async fn run_ticket_polls(&self, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let mut due: Vec<(String, Duration, tokio::time::Instant)> = self
            .config
            .itsms
            .values()
            .filter_map(|itsm| {
                let every = Duration::from_secs(u64::try_from(itsm.poll_every_seconds?).ok()?);
                // The first poll after one interval: what was lost while writ was down is
                // found then, with the first look-back (a day).
                Some((
                    itsm.name.clone(),
                    every,
                    tokio::time::Instant::now() + every,
                ))
            })
            .collect();
        loop {
            self.health.tick(POLLER_TASK_NAME);
            let Some(next) = due.iter_mut().min_by_key(|(_, _, at)| *at) else {
                let _ = shutdown.changed().await;
                return;
            };
            tokio::select! {
                () = tokio::time::sleep_until(next.2) => {}
                _ = shutdown.changed() => return,
            }
            // One node polls for all; the others look again at the next interval.
            if !self.leads(POLLER_TASK_NAME).await {
                next.2 = tokio::time::Instant::now() + next.1.min(crate::cluster::LEADERSHIP_RETRY);
                continue;
            }
            if let Err(error) = self.poll_tickets(&next.0).await {
                tracing::warn!(system = %next.0, %error, "ticket poll failed; trying again next time");
            }
            next.2 = tokio::time::Instant::now() + next.1;
        }
    }

    /// How long the poller may go without ticking before `/healthz` worries.
    pub fn poller_tick_deadline(&self) -> Option<Duration> {
        self.config
            .itsms
            .values()
            .filter_map(|itsm| itsm.poll_every_seconds)
            .max()
            .map(|every| Duration::from_secs(u64::try_from(every).unwrap_or(300) + 600))
    }
}

//! Rejected webhook deliveries on the record, bounded. Anyone can send writ an unsigned
//! delivery, so each one cannot cost a ledger event: every rejection is counted in a
//! metric, and the ledger gets at most one `itsm.webhook_rejected` per ticketing system
//! per `REJECTIONS_LEDGER_INTERVAL_SECONDS`, carrying how many were rejected since the
//! last one. What the sender chose (its claimed delivery id, text in the reason) is cut
//! short and stripped of control characters before it is stored.

use std::collections::HashMap;

use serde_json::json;
use writ_domain::Timestamp;
use writ_domain::ledger::{Actor, EventKind, SystemActor};

use crate::{Engine, EngineError, metrics_names};

/// The least time between two `itsm.webhook_rejected` events of one ticketing system.
pub const REJECTIONS_LEDGER_INTERVAL_SECONDS: i64 = 60;
/// The most of a sender's claimed delivery id that is stored.
const CLAIMED_ID_CHARS_MAX: usize = 64;
/// The most of a rejection's reason that is stored.
const REASON_CHARS_MAX: usize = 200;
/// The actor of ledger events about deliveries nobody authenticated.
const WEBHOOK_ACTOR: Actor = Actor::System(SystemActor::Webhook);

/// Per ticketing system: when its last rejection event was written, and the
/// rejections since then that are not on the ledger yet.
#[derive(Debug, Default)]
pub(crate) struct Rejections {
    by_system: std::sync::Mutex<HashMap<String, Window>>,
}

#[derive(Debug, Clone)]
struct Window {
    ledgered_at: Timestamp,
    unrecorded: u64,
    first_unrecorded_at: Option<Timestamp>,
}

/// Printable, and at most `chars` characters: what an outsider wrote, made safe to keep.
fn tame(text: &str, chars: usize) -> String {
    text.chars()
        .filter(|c| !c.is_control())
        .take(chars)
        .collect()
}

impl Engine {
    /// Counts a rejected delivery and, if the system's interval has passed, puts it on
    /// the ledger with the count of those not recorded since the last event.
    pub(crate) async fn record_rejected_delivery(
        &self,
        system: &str,
        claimed_delivery: &str,
        reason: &str,
    ) -> Result<(), EngineError> {
        metrics::counter!(metrics_names::WEBHOOKS_REJECTED, "itsm" => system.to_string())
            .increment(1);
        let now = self.clock.now();
        let due = {
            let mut windows = self
                .itsm
                .rejections
                .by_system
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match windows.get_mut(system) {
                Some(window)
                    if now.millis_since(window.ledgered_at)
                        < REJECTIONS_LEDGER_INTERVAL_SECONDS * 1000 =>
                {
                    window.unrecorded += 1;
                    window.first_unrecorded_at.get_or_insert(now);
                    None
                }
                other => {
                    let carried = other.map(|w| (w.unrecorded, w.first_unrecorded_at));
                    Some(carried.unwrap_or((0, None)))
                }
            }
        };
        let Some((earlier, since)) = due else {
            return Ok(());
        };
        self.append_rejection(
            system,
            json!({
                "itsm": system,
                "delivery": tame(claimed_delivery, CLAIMED_ID_CHARS_MAX),
                "reason": tame(reason, REASON_CHARS_MAX),
                "rejected": earlier + 1,
                "since": since.unwrap_or(now),
            }),
            now,
        )
        .await
    }

    /// Puts rejections counted but not yet on the ledger there, once their system's
    /// interval has passed (the scheduler calls this; nothing waits for a next one).
    pub async fn flush_rejected_deliveries(&self) {
        let now = self.clock.now();
        let due: Vec<(String, Window)> = {
            let windows = self
                .itsm
                .rejections
                .by_system
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            windows
                .iter()
                .filter(|(_, w)| {
                    w.unrecorded > 0
                        && now.millis_since(w.ledgered_at)
                            >= REJECTIONS_LEDGER_INTERVAL_SECONDS * 1000
                })
                .map(|(system, w)| (system.clone(), w.clone()))
                .collect()
        };
        for (system, window) in due {
            let data = json!({
                "itsm": system,
                "delivery": "",
                "reason": "rejected deliveries since the last record",
                "rejected": window.unrecorded,
                "since": window.first_unrecorded_at.unwrap_or(now),
            });
            if let Err(error) = self.append_rejection(&system, data, now).await {
                tracing::error!(%error, "cannot record rejected webhook deliveries");
            }
        }
    }

    async fn append_rejection(
        &self,
        system: &str,
        data: serde_json::Value,
        now: Timestamp,
    ) -> Result<(), EngineError> {
        let mut tx = self.store.begin().await?;
        tx.append(now, &WEBHOOK_ACTOR, EventKind::ItsmWebhookRejected, &data)
            .await?;
        tx.commit().await?;
        self.itsm
            .rejections
            .by_system
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(
                system.to_string(),
                Window {
                    ledgered_at: now,
                    unrecorded: 0,
                    first_unrecorded_at: None,
                },
            );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn outsider_text_is_cut_and_stripped() {
        assert_eq!(super::tame("d-1\n\u{1b}[31mred", 64), "d-1[31mred");
        assert_eq!(super::tame(&"x".repeat(500), 64).len(), 64);
    }
}

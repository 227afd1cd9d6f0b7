//! What the web UI's operations pages show auditors: the ledger's state (head, the
//! latest signed checkpoint and whether its signature holds), and pictures of the
//! last weeks — grants made per day, requests by outcome, time to revoke. Every read is
//! bounded (an index range, a fixed number of rows), so a page costs the same with a
//! million events as with a hundred.

use writ_domain::{RevokeReason, Timestamp};

use crate::checkpoint::Checkpoint;
use crate::{Caller, Engine, EngineError};

/// How many of the latest revocations the time-to-revoke picture is drawn from.
pub const TIME_TO_REVOKE_SAMPLE: i64 = 1_000;
const DAY_SECONDS: i64 = 86_400;

#[derive(Debug, Clone)]
pub struct LedgerStatus {
    pub head_seq: i64,
    pub head_hash: String,
    /// The latest `ledger.checkpoint`, with the sequence number of its own event.
    pub checkpoint: Option<(i64, Checkpoint)>,
    /// Whether the checkpoint's signature holds under this writ's ledger key.
    pub checkpoint_signed_by_this_writ: Option<bool>,
    pub public_key: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Insights {
    pub days: i64,
    /// (start of the day, grants made that day), oldest first.
    pub grants_per_day: Vec<(Timestamp, i64)>,
    /// Requests made in the period, by state.
    pub requests_by_state: Vec<(String, i64)>,
    /// Seconds from each of the latest revocations' due time (its term, or the
    /// decision to end it early) to the target verified without it.
    pub revoke_seconds: Vec<i64>,
}

impl Engine {
    /// The ledger's head and latest signed checkpoint (auditors and admins).
    pub async fn ledger_status(&self, caller: &Caller) -> Result<LedgerStatus, EngineError> {
        self.require_auditor(caller, "read the ledger's status")?;
        let (head_seq, head_hash) = self.store.head().await?;
        let checkpoint = self.store.last_checkpoint_event().await?.and_then(|event| {
            serde_json::from_str::<Checkpoint>(&event.data)
                .ok()
                .map(|checkpoint| (event.seq, checkpoint))
        });
        let public_key = self.ledger_key.as_ref().map(|key| key.public_hex());
        let checkpoint_signed_by_this_writ = match (&checkpoint, &public_key) {
            (Some((_, checkpoint)), Some(key)) => Some(
                crate::checkpoint::parse_public_key(key)
                    .is_ok_and(|key| checkpoint.verify_signature(&key).is_ok()),
            ),
            _ => None,
        };
        Ok(LedgerStatus {
            head_seq,
            head_hash,
            checkpoint,
            checkpoint_signed_by_this_writ,
            public_key,
        })
    }

    /// The last `days` days in numbers (auditors and admins).
    pub async fn insights(&self, caller: &Caller, days: i64) -> Result<Insights, EngineError> {
        self.require_auditor(caller, "read insights")?;
        let now = self.clock.now();
        let today = Timestamp::from_unix_micros(
            now.unix_micros() - now.unix_micros().rem_euclid(DAY_SECONDS * 1_000_000),
        );
        let bounds: Vec<Timestamp> = (0..=days)
            .map(|back| today.plus_seconds(-(days - 1 - back) * DAY_SECONDS))
            .collect();
        let counts = self.store.grants_made_between(&bounds).await?;
        let grants_per_day = bounds.iter().copied().zip(counts).collect();
        let since = bounds.first().copied().unwrap_or(today);
        let requests_by_state = self.store.requests_by_state_since(since).await?;
        let mut revoke_seconds = Vec::new();
        for lease in self
            .store
            .recent_ended_leases(TIME_TO_REVOKE_SAMPLE)
            .await?
        {
            let expiry = lease
                .revoke_reason
                .as_ref()
                .is_none_or(RevokeReason::is_expiry);
            let due = if expiry {
                Some(lease.expires_at)
            } else {
                lease.revoked_at
            };
            if let (Some(due), Some(verified)) = (due, lease.verified_at) {
                revoke_seconds.push(verified.millis_since(due).max(0) / 1000);
            }
        }
        Ok(Insights {
            days,
            grants_per_day,
            requests_by_state,
            revoke_seconds,
        })
    }
}

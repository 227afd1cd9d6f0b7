//! Bounded reads for the web UI's operations pages: each answers from an index in
//! time that does not grow with the ledger or the grants table.

use sqlx::Row;
use writ_domain::Timestamp;
use writ_domain::ledger::StoredEvent;

use crate::reports::EndedLease;
use crate::{Store, StoreError};

/// The smallest UUIDv7 (as writ stores ids: lowercase, hyphenated) made at `at` or
/// later: ids sort by creation time, so a time range is an id range.
pub fn first_id_at(at: Timestamp) -> String {
    let millis = u64::try_from(at.unix_micros().max(0) / 1000).unwrap_or(0) & 0xFFFF_FFFF_FFFF;
    format!(
        "{:08x}-{:04x}-0000-0000-000000000000",
        millis >> 16,
        millis & 0xFFFF
    )
}

impl Store {
    /// How many grants were made in each of the spans between consecutive `bounds`
    /// (oldest first): one range count on the primary key each.
    pub async fn grants_made_between(&self, bounds: &[Timestamp]) -> Result<Vec<i64>, StoreError> {
        let mut counts = Vec::new();
        for span in bounds.windows(2) {
            let row = sqlx::query("SELECT COUNT(*) AS n FROM grants WHERE id >= $1 AND id < $2")
                .bind(first_id_at(span[0]))
                .bind(first_id_at(span[1]))
                .fetch_one(&self.pool)
                .await?;
            counts.push(row.try_get("n")?);
        }
        Ok(counts)
    }

    /// Requests made since `since`, counted by state.
    pub async fn requests_by_state_since(
        &self,
        since: Timestamp,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT state, COUNT(*) AS n FROM requests WHERE created_at_us >= $1 GROUP BY state ORDER BY state",
        )
        .bind(since.unix_micros())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| Ok((row.try_get("state")?, row.try_get("n")?)))
            .collect()
    }

    /// The ends of the `limit` most recently made revoked leases.
    pub async fn recent_ended_leases(&self, limit: i64) -> Result<Vec<EndedLease>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, doc FROM grants WHERE state = 'revoked' ORDER BY id DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| crate::decode_doc("grant", row))
            .collect()
    }

    /// The latest `ledger.checkpoint` event, if there is one (by index: checkpoints are
    /// about the ledger itself, `LEDGER_RECORD`).
    pub async fn last_checkpoint_event(&self) -> Result<Option<StoredEvent>, StoreError> {
        let row = sqlx::query(
            "SELECT seq, at_us, actor, kind, data, prev_hash, hash FROM events \
             WHERE record = $1 ORDER BY seq DESC LIMIT 1",
        )
        .bind(writ_domain::ledger::LEDGER_RECORD)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| crate::read::stored_event_of(&row))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::first_id_at;
    use writ_domain::{GrantId, Timestamp};

    /// Ids made at a time sort at or after that time's bound, and before the next
    /// millisecond's.
    #[test]
    fn an_id_sorts_within_its_millisecond() {
        let at = Timestamp::from_unix_micros(1_795_000_000_123_456);
        let id = GrantId::generate_at(at).to_string();
        assert!(first_id_at(at) <= id, "{id}");
        assert!(id < first_id_at(at.plus_millis(1)), "{id}");
        assert!(first_id_at(at.plus_millis(-1)) < first_id_at(at));
    }
}

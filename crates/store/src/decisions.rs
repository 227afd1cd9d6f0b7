//! The decisions of record: `request.created` events, read from the ledger to explain a
//! past decision or to replay recorded requests under other policies.

use sqlx::Row;
use sqlx::any::AnyRow;
use writ_domain::ledger::{EventFields, StoredEvent};
use writ_domain::{RequestId, Timestamp};

use crate::{Store, StoreError};

const COLUMNS: &str = "seq, at_us, actor, kind, data, prev_hash, hash";

fn stored(row: &AnyRow) -> Result<StoredEvent, StoreError> {
    let (actor, kind, data, prev_hash, hash): (String, String, String, String, String) = (
        row.try_get("actor")?,
        row.try_get("kind")?,
        row.try_get("data")?,
        row.try_get("prev_hash")?,
        row.try_get("hash")?,
    );
    let seq: i64 = row.try_get("seq")?;
    EventFields {
        seq,
        at: Timestamp::from_unix_micros(row.try_get("at_us")?),
        actor: &actor,
        kind: &kind,
        data: &data,
        prev_hash: &prev_hash,
        hash: &hash,
    }
    .to_stored()
    .map_err(|error| StoreError::Corrupt {
        what: "event",
        id: seq.to_string(),
        problem: error.to_string(),
    })
}

impl Store {
    /// The `request.created` event of a request: its decision of record.
    pub async fn request_created_event(
        &self,
        id: RequestId,
    ) -> Result<Option<StoredEvent>, StoreError> {
        // The request's own id, as its snapshot writes it; ids are unique, so one event.
        let pattern = format!("%\"id\":\"{id}\"%");
        let sql = format!(
            "SELECT {COLUMNS} FROM events WHERE kind = 'request.created' AND data LIKE $1 ORDER BY seq LIMIT 2"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(pattern)
            .fetch_all(&self.pool)
            .await?;
        for row in &rows {
            let event = stored(row)?;
            let named = serde_json::from_str::<serde_json::Value>(&event.data)
                .ok()
                .is_some_and(|data| data["request"]["id"] == id.to_string());
            if named {
                return Ok(Some(event));
            }
        }
        Ok(None)
    }

    /// `request.created` events after `after` (a sequence number) recorded at or after
    /// `since`, oldest first, at most `limit`.
    pub async fn request_created_events(
        &self,
        after: i64,
        since: Timestamp,
        limit: i64,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM events WHERE seq > $1 AND kind = 'request.created' AND at_us >= $2 ORDER BY seq LIMIT $3"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(after)
            .bind(since.unix_micros())
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(stored).collect()
    }
}

//! The decisions of record: `request.created` events, read from the ledger to explain a
//! past decision or to replay recorded requests under other policies.

use sqlx::Row;
use sqlx::any::AnyRow;
use writ_domain::ledger::{EventFields, StoredEvent};
use writ_domain::{EntitlementId, RequestId, Timestamp};

use crate::{Store, StoreError, WriteTx};

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
    /// Events with `seq > after`, oldest first, at most `limit`, handed to `read` as
    /// borrowed fields (no copy of their data): for passes over the whole ledger.
    pub async fn with_event_page<T>(
        &self,
        after: i64,
        limit: i64,
        read: impl FnOnce(&[EventFields<'_>]) -> T,
    ) -> Result<T, StoreError> {
        let page = self.event_page(after, limit).await?;
        let events =
            crate::read::parse_event_page(page.text()?).map_err(|problem| StoreError::Corrupt {
                what: "event page",
                id: format!("after {after}"),
                problem,
            })?;
        Ok(read(&events))
    }

    /// The sequence number just before the first event recorded at or after `since`
    /// (where a pass over the events since then starts).
    pub async fn seq_before(&self, since: Timestamp) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COALESCE(MIN(seq), (SELECT COALESCE(MAX(seq), 0) + 1 FROM events)) AS first FROM events WHERE at_us >= $1")
            .bind(since.unix_micros())
            .fetch_one(&self.pool)
            .await?;
        let first: i64 = row.try_get("first")?;
        Ok((first - 1).max(0))
    }

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
}

/// The entitlements a subject holds or has asked for: its pending and active grants,
/// and its requests waiting for approval (policy's `context.holds`).
const HELD_SQL: &str = "SELECT entitlement FROM grants WHERE subject = $1 AND state IN ('pending', 'active') \
     UNION SELECT entitlement FROM requests WHERE subject = $1 AND state = 'pending_approval' \
     ORDER BY entitlement";

fn entitlement_id(text: String) -> Result<EntitlementId, StoreError> {
    text.parse()
        .map_err(|e: writ_domain::InvalidId| StoreError::Corrupt {
            what: "entitlement id",
            id: text.clone(),
            problem: e.to_string(),
        })
}

impl Store {
    /// What `subject` holds or has asked for, sorted, each once.
    pub async fn held_entitlements(&self, subject: &str) -> Result<Vec<EntitlementId>, StoreError> {
        let rows = sqlx::query(HELD_SQL)
            .bind(subject)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| entitlement_id(row.try_get("entitlement")?))
            .collect()
    }
}

impl WriteTx<'_> {
    /// As `Store::held_entitlements`, as of this transaction: what a decision about to
    /// be recorded must have seen.
    pub async fn held_entitlements(
        &mut self,
        subject: &str,
    ) -> Result<Vec<EntitlementId>, StoreError> {
        let rows = self
            .read_texts(
                HELD_SQL.to_string(),
                vec![crate::write::Arg::Text(subject.to_string())],
                1,
            )
            .await?;
        rows.into_iter()
            .map(|row| entitlement_id(row.into_iter().next().flatten().unwrap_or_default()))
            .collect()
    }
}

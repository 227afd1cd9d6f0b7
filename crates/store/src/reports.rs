//! The reads reports are made of: whole sets of state rows, never the ledger (the
//! tables say what the ledger says; `audit verify` checks that they do).

use sqlx::Row;
use writ_domain::lifecycle::GrantState;
use writ_domain::{Finding, FindingState, Grant, Timestamp};

use crate::{Store, StoreError, finding_from_row, grant_from_row};

/// A grant whose removal keeps failing, with its job's bookkeeping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailingRevocation {
    pub grant: Grant,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub escalated_at: Option<Timestamp>,
}

/// When a revoked lease should have ended and when it was verified gone: what time to
/// revoke is made of (read without the rest of the grant).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct EndedLease {
    pub expires_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
    pub verified_at: Option<Timestamp>,
    #[serde(default)]
    pub revoke_reason: Option<writ_domain::RevokeReason>,
}

impl Store {
    /// Every revoked lease's ends.
    pub async fn ended_leases(&self) -> Result<Vec<EndedLease>, StoreError> {
        let rows = sqlx::query("SELECT id, doc FROM grants WHERE state = 'revoked'")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| crate::decode_doc("grant", row))
            .collect()
    }

    /// Every grant in `state`.
    pub async fn grants_in(&self, state: GrantState) -> Result<Vec<Grant>, StoreError> {
        let rows = sqlx::query("SELECT id, doc FROM grants WHERE state = $1")
            .bind(state.as_str())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(grant_from_row).collect()
    }

    /// Grants being revoked or failed whose revocation has failed at least once.
    pub async fn failing_revocations(&self) -> Result<Vec<FailingRevocation>, StoreError> {
        let rows = sqlx::query(
            "SELECT g.id, g.doc, j.attempts, j.last_error, j.escalated_at_us FROM grants g \
             JOIN jobs j ON j.object_id = g.id \
             WHERE g.state IN ('revoking', 'failed') AND j.attempts > 0 ORDER BY g.id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(FailingRevocation {
                    grant: grant_from_row(row)?,
                    attempts: row.try_get("attempts")?,
                    last_error: row.try_get("last_error")?,
                    escalated_at: row
                        .try_get::<Option<i64>, _>("escalated_at_us")?
                        .map(Timestamp::from_unix_micros),
                })
            })
            .collect()
    }

    /// Every finding in `state`.
    pub async fn findings_in(&self, state: FindingState) -> Result<Vec<Finding>, StoreError> {
        let rows = sqlx::query("SELECT id, doc FROM findings WHERE state = $1")
            .bind(state.as_str())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(finding_from_row).collect()
    }

    /// Requests made since `since`, counted by (entitlement, state).
    pub async fn request_outcomes(
        &self,
        since: Timestamp,
    ) -> Result<Vec<(String, String, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT entitlement, state, COUNT(*) AS n FROM requests WHERE created_at_us >= $1 \
             GROUP BY entitlement, state ORDER BY entitlement, state",
        )
        .bind(since.unix_micros())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    row.try_get("entitlement")?,
                    row.try_get("state")?,
                    row.try_get("n")?,
                ))
            })
            .collect()
    }

    /// Grants of these subjects that end at or after `since` (every grant made since
    /// then among them), in any state.
    pub async fn grants_of_since(
        &self,
        subjects: &[String],
        since: Timestamp,
    ) -> Result<Vec<Grant>, StoreError> {
        if subjects.is_empty() {
            return Ok(Vec::new());
        }
        let (mut clause, mut values) = (String::new(), Vec::new());
        crate::read::involving_clause(&mut clause, &mut values, &["subject"], subjects);
        clause.push_str(&format!(" AND expires_at_us >= ${}", values.len() + 1));
        // Only a column name writ chose and numbered placeholders are interpolated.
        let sql = format!("SELECT id, doc FROM grants {clause}");
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for value in values {
            query = query.bind(value);
        }
        let query = query.bind(since.unix_micros());
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter().map(grant_from_row).collect()
    }

    /// Ledger events since `since`, by kind: how many, and the first and last sequence
    /// numbers among them (the range an auditor checks them against).
    pub async fn event_counts_since(&self, since: Timestamp) -> Result<Vec<KindCount>, StoreError> {
        let rows = sqlx::query(
            "SELECT kind, COUNT(*) AS n, MIN(seq) AS first, MAX(seq) AS last FROM events \
             WHERE at_us >= $1 GROUP BY kind ORDER BY kind",
        )
        .bind(since.unix_micros())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(KindCount {
                    kind: row.try_get("kind")?,
                    count: row.try_get("n")?,
                    first_seq: row.try_get("first")?,
                    last_seq: row.try_get("last")?,
                })
            })
            .collect()
    }
}

/// How many events of one kind a period holds, and where they lie on the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindCount {
    pub kind: String,
    pub count: i64,
    pub first_seq: i64,
    pub last_seq: i64,
}

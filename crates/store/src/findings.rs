//! Findings of reconciliation, and the reads a reconciliation pass needs.

use sqlx::Row;
use sqlx::any::AnyRow;
use writ_domain::lifecycle::GrantState;
use writ_domain::{
    Finding, FindingId, FindingKind, FindingReport, FindingState, Grant, GrantId, Timestamp,
};

use crate::page::{Bind, Page, PageCursor, SortKey};
use crate::read::{involving_clause, page_of, page_size, where_clause};
use crate::write::{Arg, doc};
use crate::{Store, StoreError, WriteTx, finding_from_row, parse_grant_id};

#[derive(Debug, Clone, Default)]
pub struct FindingFilter {
    pub state: Option<FindingState>,
    pub target: Option<String>,
    pub kind: Option<FindingKind>,
    /// Only findings on these entitlements.
    pub entitlements: Option<Vec<String>>,
    pub limit: Option<i64>,
    /// Continue after this cursor (a previous page's `next`).
    pub after: Option<PageCursor>,
}

/// How the finding list is ordered (and so how its cursors read).
pub const FINDING_ORDER: SortKey = SortKey::TimeThenId("first_seen_at_us");

/// A grant that may still hold or be about to hold access: what reconciliation
/// compares with the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveGrant {
    pub id: GrantId,
    pub account: String,
    pub state: GrantState,
}

const FINDING_COLUMNS: &str = "id, doc, last_seen_at_us, last_error, first_seen_at_us";

fn report_from_row(row: &AnyRow) -> Result<FindingReport, StoreError> {
    Ok(FindingReport {
        finding: finding_from_row(row)?,
        last_seen_at: Timestamp::from_unix_micros(row.try_get("last_seen_at_us")?),
        last_error: row.try_get("last_error")?,
    })
}

impl Store {
    pub async fn finding(&self, id: FindingId) -> Result<Option<FindingReport>, StoreError> {
        let sql = format!("SELECT {FINDING_COLUMNS} FROM findings WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(report_from_row).transpose()
    }

    /// Findings, newest first, a page at a time.
    pub async fn findings(
        &self,
        filter: &FindingFilter,
    ) -> Result<Page<FindingReport>, StoreError> {
        let (mut clause, mut values) = where_clause(&[
            ("state", filter.state.map(|s| s.as_str().to_string())),
            ("target", filter.target.clone()),
            ("kind", filter.kind.map(|k| k.as_str().to_string())),
        ]);
        if let Some(entitlements) = &filter.entitlements {
            involving_clause(&mut clause, &mut values, &["entitlement"], entitlements);
        }
        let binds = filter.after.as_ref().map_or_else(Vec::new, |cursor| {
            cursor.after_clause(&mut clause, values.len() + 1, FINDING_ORDER)
        });
        let fetch = page_size(filter.limit) + 1;
        let order = FINDING_ORDER.order();
        // Only column names writ chose and numbered placeholders are interpolated.
        let sql = format!(
            "SELECT {FINDING_COLUMNS} FROM findings {clause} ORDER BY {order} LIMIT {fetch}"
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for value in values {
            query = query.bind(value);
        }
        for bind in binds {
            query = match bind {
                Bind::Int(n) => query.bind(n),
                Bind::Text(text) => query.bind(text),
            };
        }
        let rows = query.fetch_all(&self.pool).await?;
        page_of(rows, filter.limit, FINDING_ORDER, report_from_row)
    }

    /// Every open or accepted finding on a target: what a pass compares against.
    pub async fn unresolved_findings(
        &self,
        target: &str,
    ) -> Result<Vec<FindingReport>, StoreError> {
        let sql = format!(
            "SELECT {FINDING_COLUMNS} FROM findings WHERE target = $1 AND state IN ($2, $3)"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(target)
            .bind(FindingState::Open.as_str())
            .bind(FindingState::Accepted.as_str())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(report_from_row).collect()
    }

    /// Every open or accepted finding of one kind, on any target.
    pub async fn unresolved_findings_of_kind(
        &self,
        kind: FindingKind,
    ) -> Result<Vec<Finding>, StoreError> {
        let sql =
            format!("SELECT {FINDING_COLUMNS} FROM findings WHERE kind = $1 AND state IN ($2, $3)");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(kind.as_str())
            .bind(FindingState::Open.as_str())
            .bind(FindingState::Accepted.as_str())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(finding_from_row).collect()
    }

    /// Number of findings by (kind, state), for metrics.
    pub async fn finding_counts(&self) -> Result<Vec<(String, String, i64)>, StoreError> {
        let rows =
            sqlx::query("SELECT kind, state, COUNT(*) AS n FROM findings GROUP BY kind, state")
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    row.try_get("kind")?,
                    row.try_get("state")?,
                    row.try_get("n")?,
                ))
            })
            .collect()
    }

    /// The grants of an entitlement that may hold access now or soon (pending, active)
    /// or are being taken away (revoking, failed).
    pub async fn live_grants(&self, entitlement: &str) -> Result<Vec<LiveGrant>, StoreError> {
        self.live_grants_where(entitlement, None).await
    }

    /// The active grants of an entitlement, whole (what each was approved with).
    pub async fn active_grants(&self, entitlement: &str) -> Result<Vec<Grant>, StoreError> {
        let rows = sqlx::query("SELECT id, doc FROM grants WHERE entitlement = $1 AND state = $2")
            .bind(entitlement)
            .bind(GrantState::Active.as_str())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(crate::grant_from_row).collect()
    }

    /// As `live_grants`, for one account.
    pub async fn live_grants_of(
        &self,
        entitlement: &str,
        account: &str,
    ) -> Result<Vec<LiveGrant>, StoreError> {
        self.live_grants_where(entitlement, Some(account)).await
    }

    async fn live_grants_where(
        &self,
        entitlement: &str,
        account: Option<&str>,
    ) -> Result<Vec<LiveGrant>, StoreError> {
        let sql = if account.is_some() {
            "SELECT id, account, state FROM grants WHERE entitlement = $1 AND state IN ($2, $3, $4, $5) AND account = $6"
        } else {
            "SELECT id, account, state FROM grants WHERE entitlement = $1 AND state IN ($2, $3, $4, $5)"
        };
        let mut query = sqlx::query(sql)
            .bind(entitlement)
            .bind(GrantState::Pending.as_str())
            .bind(GrantState::Active.as_str())
            .bind(GrantState::Revoking.as_str())
            .bind(GrantState::Failed.as_str());
        if let Some(account) = account {
            query = query.bind(account);
        }
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter()
            .map(|row| {
                let state: String = row.try_get("state")?;
                Ok(LiveGrant {
                    id: parse_grant_id(row.try_get("id")?)?,
                    account: row.try_get("account")?,
                    state: GrantState::parse(&state).ok_or_else(|| StoreError::Corrupt {
                        what: "grant",
                        id: row.try_get("id").unwrap_or_default(),
                        problem: format!("unknown state {state:?}"),
                    })?,
                })
            })
            .collect()
    }

    /// The latest revoked grant of this entitlement to this account, if any.
    pub async fn last_revoked_grant(
        &self,
        entitlement: &str,
        account: &str,
    ) -> Result<Option<GrantId>, StoreError> {
        let row = sqlx::query(
            "SELECT id FROM grants WHERE entitlement = $1 AND account = $2 AND state = $3 ORDER BY id DESC LIMIT 1",
        )
        .bind(entitlement)
        .bind(account)
        .bind(GrantState::Revoked.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| parse_grant_id(row.try_get("id")?))
            .transpose()
    }
}

impl WriteTx<'_> {
    /// The finding as of this transaction (writers are serialised, so this is the latest).
    pub async fn finding(&mut self, id: FindingId) -> Result<Option<Finding>, StoreError> {
        let sql = "SELECT id, doc FROM findings WHERE id = $1";
        let mut found = self
            .read_docs("finding", sql.into(), vec![Arg::Text(id.to_string())])
            .await?;
        Ok(found.pop())
    }

    pub async fn insert_finding(&mut self, finding: &Finding) -> Result<(), StoreError> {
        self.buffer_statement(
            "INSERT INTO findings (id, target, entitlement, account, kind, state, first_seen_at_us, doc, last_seen_at_us, last_error) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $7, NULL)",
            vec![
                Arg::Text(finding.id.to_string()),
                Arg::Text(finding.target.clone()),
                Arg::Text(finding.entitlement.to_string()),
                Arg::Text(finding.account.clone()),
                Arg::Text(finding.kind.as_str().to_string()),
                Arg::Text(finding.state.as_str().to_string()),
                Arg::Int(finding.first_seen_at.unix_micros()),
                Arg::Text(doc(finding)?),
            ],
        );
        Ok(())
    }

    pub async fn update_finding(&mut self, finding: &Finding) -> Result<(), StoreError> {
        self.buffer_statement(
            "UPDATE findings SET state = $2, doc = $3, last_error = NULL WHERE id = $1",
            vec![
                Arg::Text(finding.id.to_string()),
                Arg::Text(finding.state.as_str().to_string()),
                Arg::Text(doc(finding)?),
            ],
        );
        Ok(())
    }

    /// Bookkeeping of a pass (not ledgered): when the difference was last seen, and
    /// why writ's action on it failed, if it did.
    pub async fn finding_seen(
        &mut self,
        id: FindingId,
        at: Timestamp,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        self.buffer_statement(
            "UPDATE findings SET last_seen_at_us = $2, last_error = $3 WHERE id = $1",
            vec![
                Arg::Text(id.to_string()),
                Arg::Int(at.unix_micros()),
                Arg::OptionalText(error.map(str::to_string)),
            ],
        );
        Ok(())
    }
}

//! What the AuthZEN policy decision point reads: the lease that allows an evaluation.

use writ_domain::{Grant, Timestamp};

use crate::{Store, StoreError, grant_from_row};

impl Store {
    /// `subject`'s active lease on one of `entitlements` that has not reached its end at
    /// `now` — the one ending last, when several do. A lease past its end allows
    /// nothing, revoked yet or not. One index range per entitlement
    /// (`grants_held_by_subject`), whatever else the subject holds.
    pub async fn active_lease_covering(
        &self,
        subject: &str,
        entitlements: &[&str],
        now: Timestamp,
    ) -> Result<Option<Grant>, StoreError> {
        if entitlements.is_empty() {
            return Ok(None);
        }
        let listed: Vec<String> = (0..entitlements.len())
            .map(|i| format!("${}", i + 3))
            .collect();
        let sql = format!(
            "SELECT id, doc FROM grants WHERE subject = $1 AND state = 'active' AND entitlement IN ({}) AND expires_at_us > $2 ORDER BY expires_at_us DESC LIMIT 1",
            listed.join(", ")
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(subject)
            .bind(now.unix_micros());
        for entitlement in entitlements {
            query = query.bind(*entitlement);
        }
        query
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(grant_from_row)
            .transpose()
    }
}

//! What the AuthZEN policy decision point reads: the leases one subject holds now.

use writ_domain::{Grant, Timestamp};

use crate::{Store, StoreError, grant_from_row};

impl Store {
    /// `subject`'s grants that are active and have not reached their end at `now`,
    /// latest end first. A lease past its end allows nothing, revoked yet or not.
    pub async fn active_grants_of(
        &self,
        subject: &str,
        now: Timestamp,
    ) -> Result<Vec<Grant>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, doc FROM grants WHERE subject = $1 AND state = 'active' AND expires_at_us > $2 ORDER BY expires_at_us DESC",
        )
        .bind(subject)
        .bind(now.unix_micros())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(grant_from_row).collect()
    }
}

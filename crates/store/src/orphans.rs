//! Services and agents whose owner left: when writ noticed, and when it disabled them.

use sqlx::Row;
use writ_domain::Timestamp;

use crate::write::Arg;
use crate::{Store, StoreError, WriteTx};

/// A service or agent without an owner, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Orphan {
    pub identity: String,
    /// The owner who left.
    pub owner: String,
    pub orphaned_at: Timestamp,
    /// Set once `identities.orphan_grace` passed without a new owner.
    pub disabled_at: Option<Timestamp>,
}

impl Store {
    pub async fn orphans(&self) -> Result<Vec<Orphan>, StoreError> {
        let rows = sqlx::query(
            "SELECT identity, owner, orphaned_at_us, disabled_at_us FROM orphans ORDER BY identity",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(Orphan {
                    identity: row.try_get("identity")?,
                    owner: row.try_get("owner")?,
                    orphaned_at: Timestamp::from_unix_micros(row.try_get("orphaned_at_us")?),
                    disabled_at: row
                        .try_get::<Option<i64>, _>("disabled_at_us")?
                        .map(Timestamp::from_unix_micros),
                })
            })
            .collect()
    }
}

impl WriteTx<'_> {
    pub async fn insert_orphan(&mut self, orphan: &Orphan) -> Result<(), StoreError> {
        self.buffer_statement(
            "INSERT INTO orphans (identity, owner, orphaned_at_us, disabled_at_us) VALUES ($1, $2, $3, $4)",
            vec![
                Arg::Text(orphan.identity.clone()),
                Arg::Text(orphan.owner.clone()),
                Arg::Int(orphan.orphaned_at.unix_micros()),
                Arg::OptionalInt(orphan.disabled_at.map(Timestamp::unix_micros)),
            ],
        );
        Ok(())
    }

    pub async fn disable_orphan(
        &mut self,
        identity: &str,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        self.buffer_statement(
            "UPDATE orphans SET disabled_at_us = $2 WHERE identity = $1",
            vec![Arg::Text(identity.to_string()), Arg::Int(at.unix_micros())],
        );
        Ok(())
    }

    /// It has an owner again.
    pub async fn delete_orphan(&mut self, identity: &str) -> Result<(), StoreError> {
        self.buffer_statement(
            "DELETE FROM orphans WHERE identity = $1",
            vec![Arg::Text(identity.to_string())],
        );
        Ok(())
    }
}

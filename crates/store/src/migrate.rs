//! Schema migrations, embedded in the binary and applied in order at start-up.

use sqlx::{AnyPool, Row};

use crate::StoreError;

const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/0001_initial.sql")),
    (2, include_str!("../migrations/0002_tickets.sql")),
    (3, include_str!("../migrations/0003_findings.sql")),
    (4, include_str!("../migrations/0004_escalation.sql")),
    (
        5,
        include_str!("../migrations/0005_one_ticket_one_request.sql"),
    ),
    (6, include_str!("../migrations/0006_token_revocation.sql")),
    (7, include_str!("../migrations/0007_grants_by_state.sql")),
    (8, include_str!("../migrations/0008_orphans.sql")),
    (9, include_str!("../migrations/0009_directory.sql")),
];

/// The newest schema version this build knows.
pub const SCHEMA_VERSION: i64 = MIGRATIONS[MIGRATIONS.len() - 1].0;

pub async fn run(pool: &AnyPool) -> Result<(), StoreError> {
    sqlx::query("CREATE TABLE IF NOT EXISTS writ_schema (version BIGINT PRIMARY KEY)")
        .execute(pool)
        .await?;
    // A database a newer writ has upgraded may hold what this one would misread or
    // overwrite: refuse it rather than guess.
    let newest = sqlx::query("SELECT COALESCE(MAX(version), 0) AS v FROM writ_schema")
        .fetch_one(pool)
        .await?
        .try_get::<i64, _>("v")?;
    if newest > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            found: newest,
            known: SCHEMA_VERSION,
        });
    }
    for &(version, sql) in MIGRATIONS {
        let mut tx = pool.begin().await?;
        let applied = sqlx::query("SELECT COUNT(*) AS n FROM writ_schema WHERE version = $1")
            .bind(version)
            .fetch_one(&mut *tx)
            .await?;
        if applied.try_get::<i64, _>("n")? > 0 {
            continue;
        }
        sqlx::raw_sql(sql).execute(&mut *tx).await?;
        sqlx::query("INSERT INTO writ_schema (version) VALUES ($1)")
            .bind(version)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::SCHEMA_VERSION;
    use crate::{Store, StoreError};

    /// A database upgraded by a newer writ is refused, naming both versions, and left
    /// as it was.
    #[tokio::test]
    async fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let store = Store::open(&url).await.expect("store");
        let newer = SCHEMA_VERSION + 1;
        sqlx::query("INSERT INTO writ_schema (version) VALUES ($1)")
            .bind(newer)
            .execute(&store.pool)
            .await
            .expect("newer version");
        store.close().await;
        let refused = Store::open(&url).await.expect_err("refused");
        assert!(
            matches!(refused, StoreError::SchemaTooNew { found, known } if found == newer && known == SCHEMA_VERSION),
            "{refused}"
        );
        let message = refused.to_string();
        assert!(message.contains(&format!("version {newer}")), "{message}");
        assert!(
            message.contains(&format!("up to {SCHEMA_VERSION}")),
            "{message}"
        );
        // An older writ reopening it does not write to it either.
        let _ = Store::open(&url).await.expect_err("still refused");
    }
}

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

pub async fn run(pool: &AnyPool) -> Result<(), StoreError> {
    sqlx::query("CREATE TABLE IF NOT EXISTS writ_schema (version BIGINT PRIMARY KEY)")
        .execute(pool)
        .await?;
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

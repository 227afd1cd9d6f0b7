//! PostgreSQL: an entitlement is a role; granting is `GRANT role TO account`.
//!
//! "Revoked" here means the account is no longer a member of the role, as read back
//! from `pg_auth_members`. (Open sessions that already use the role keep it until
//! they reconnect; ending them is part of deep revocation, a later issue.)

use std::time::Duration;

use async_trait::async_trait;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

use crate::{Access, Connector, ConnectorError};

/// How long writ waits for a connection to the target before calling it down.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug)]
pub struct PostgresConnector {
    pool: PgPool,
}

/// Quotes a PostgreSQL identifier: wrapped in double quotes, inner quotes doubled.
/// NUL cannot appear in an identifier at all, so it is refused.
pub fn quote_identifier(name: &str) -> Result<String, ConnectorError> {
    if name.contains('\0') {
        return Err(ConnectorError::Failed(format!(
            "{name:?} contains a NUL byte and cannot be a PostgreSQL role name"
        )));
    }
    Ok(format!("\"{}\"", name.replace('"', "\"\"")))
}

fn classify(error: sqlx::Error) -> ConnectorError {
    match error {
        // The statement reached the server and was refused: nothing happened.
        sqlx::Error::Database(db) => ConnectorError::Failed(db.to_string()),
        // Could not connect: nothing happened either.
        sqlx::Error::PoolTimedOut | sqlx::Error::Configuration(_) => {
            ConnectorError::Failed(format!("cannot reach the target: {error}"))
        }
        // Lost mid-call: it may have been applied.
        other => ConnectorError::Unknown(other.to_string()),
    }
}

impl PostgresConnector {
    pub fn new(url: &str) -> Result<Self, ConnectorError> {
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(CONNECT_TIMEOUT)
            .connect_lazy(url)
            .map_err(|e| ConnectorError::Failed(format!("invalid target URL: {e}")))?;
        Ok(Self { pool })
    }

    async fn execute(&self, sql: String) -> Result<(), ConnectorError> {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(classify)
    }
}

#[async_trait]
impl Connector for PostgresConnector {
    async fn grant(&self, access: Access<'_>) -> Result<(), ConnectorError> {
        // Identifiers cannot be bound as parameters; they are quoted instead.
        self.execute(format!(
            "GRANT {} TO {}",
            quote_identifier(access.role)?,
            quote_identifier(access.account)?
        ))
        .await
    }

    async fn revoke(&self, access: Access<'_>) -> Result<(), ConnectorError> {
        let result = self
            .execute(format!(
                "REVOKE {} FROM {}",
                quote_identifier(access.role)?,
                quote_identifier(access.account)?
            ))
            .await;
        match result {
            // A dropped account or role holds nothing: the read-back decides.
            Err(ConnectorError::Failed(message)) if message.contains("does not exist") => Ok(()),
            other => other,
        }
    }

    async fn holds(&self, access: Access<'_>) -> Result<bool, ConnectorError> {
        sqlx::query_scalar::<_, bool>(
            "SELECT EXISTS (SELECT 1 FROM pg_auth_members m \
             JOIN pg_roles r ON r.oid = m.roleid JOIN pg_roles a ON a.oid = m.member \
             WHERE r.rolname = $1 AND a.rolname = $2)",
        )
        .bind(access.role)
        .bind(access.account)
        .fetch_one(&self.pool)
        .await
        .map_err(classify)
    }
}

//! PostgreSQL: an entitlement is a role; granting is `GRANT role TO account`.
//!
//! "Revoked" here means: the account is no longer a member of the role (read back from
//! `pg_auth_members`), **and** every session the account had open when the role was
//! revoked has ended. PostgreSQL checks membership at each statement, but a session
//! that ran `SET ROLE <role>` keeps acting as the role after the membership is gone, and
//! `pg_stat_activity` cannot tell which sessions did; so writ ends them all with
//! `pg_terminate_backend` and waits until they are gone. This needs writ's connection
//! to be a superuser or a member of `pg_signal_backend`; without it the revocation fails
//! with that message and is retried, never silently skipped.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::PgPool;
use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::{Access, Connector, ConnectorError, Credential};

mod check;
mod effective;

/// How long writ waits for a connection to the target before calling it down.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one statement on the target, or a wait for one of its locks, may take
/// unless the target's `call_timeout` says otherwise.
const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug)]
pub struct PostgresConnector {
    pool: PgPool,
    /// Takes over whatever a credential's login created (see `drop_credential`).
    orphan_owner: String,
}

/// The orphan owner unless the configuration names another.
const DEFAULT_ORPHAN_OWNER: &str = "writ_orphaned";

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

/// Quotes a PostgreSQL string literal as an escape string (`E'...'`: backslashes and
/// quotes doubled), which means the same whatever the target's
/// `standard_conforming_strings` says; a plain `'...'` would let a backslash escape
/// the closing quote on a server where it is off.
fn quote_literal(text: &str) -> Result<String, ConnectorError> {
    if text.contains('\0') {
        return Err(ConnectorError::Failed(
            "a NUL byte cannot be sent to PostgreSQL".into(),
        ));
    }
    Ok(format!(
        "E'{}'",
        text.replace('\\', "\\\\").replace('\'', "''")
    ))
}

/// Iterations PostgreSQL itself uses for SCRAM-SHA-256 (`scram_iterations`' default).
const SCRAM_ITERATIONS: u32 = 4096;

/// The SCRAM-SHA-256 verifier PostgreSQL stores for a password (RFC 5803 form, as
/// `pg_authid.rolpassword` holds it). Sending this instead of the password means the
/// clear password never reaches the server, its logs or `pg_stat_statements`.
pub fn scram_sha256_verifier(password: &str, salt: &[u8]) -> String {
    use base64::Engine as _;
    use hmac::{KeyInit, Mac};
    use sha2::{Digest, Sha256};
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut salted = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), salt, SCRAM_ITERATIONS, &mut salted);
    let hmac = |message: &[u8]| -> Vec<u8> {
        let mut mac = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(&salted)
            .expect("HMAC takes a key of any length");
        mac.update(message);
        mac.finalize().into_bytes().to_vec()
    };
    let stored_key = Sha256::digest(hmac(b"Client Key"));
    let server_key = hmac(b"Server Key");
    format!(
        "SCRAM-SHA-256${SCRAM_ITERATIONS}:{}${}:{}",
        b64.encode(salt),
        b64.encode(stored_key),
        b64.encode(server_key)
    )
}

/// SQLSTATE 42704: a role (or another object) that does not exist.
const UNDEFINED_OBJECT: &str = "42704";

use crate::classify_sql as classify;

impl PostgresConnector {
    /// A connector whose statements give up after `DEFAULT_STATEMENT_TIMEOUT`.
    pub fn new(url: &str) -> Result<Self, ConnectorError> {
        Self::with_statement_timeout(url, DEFAULT_STATEMENT_TIMEOUT)
    }

    /// Every session of this connector sets `lock_timeout` and `statement_timeout`: a
    /// `REVOKE` waiting on a lock someone else holds (a DBA's open transaction) gives
    /// up instead of waiting for ever, and is retried.
    pub fn with_statement_timeout(url: &str, timeout: Duration) -> Result<Self, ConnectorError> {
        let millis = timeout.as_millis().to_string();
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| ConnectorError::Failed(format!("invalid target URL: {e}")))?
            .options([
                ("lock_timeout", millis.as_str()),
                ("statement_timeout", millis.as_str()),
            ]);
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(CONNECT_TIMEOUT)
            .connect_lazy_with(options);
        Ok(Self {
            pool,
            orphan_owner: DEFAULT_ORPHAN_OWNER.into(),
        })
    }

    pub fn with_orphan_owner(mut self, role: &str) -> Self {
        self.orphan_owner = role.to_string();
        self
    }

    /// Makes sure the orphan owner exists and can do nothing: `NOLOGIN`, no
    /// attributes, a member of no role. A role of that name with any of those is
    /// refused rather than handed objects (the login is already shut out by then).
    async fn safe_orphan_owner(&self) -> Result<String, ConnectorError> {
        let owner = quote_identifier(&self.orphan_owner)?;
        if !self.role_exists(&self.orphan_owner).await? {
            let created = self
                .execute(format!(
                    "CREATE ROLE {owner} NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION NOBYPASSRLS"
                ))
                .await;
            // Another writ (or an earlier try) made it meanwhile: checked below like any.
            if let Err(error) = created
                && !self.role_exists(&self.orphan_owner).await?
            {
                return Err(error);
            }
        }
        let unsafe_because: Option<String> = sqlx::query_scalar(
            "SELECT concat_ws(', ', \
                CASE WHEN rolcanlogin THEN 'can log in' END, \
                CASE WHEN rolsuper THEN 'is a superuser' END, \
                CASE WHEN rolcreaterole THEN 'has CREATEROLE' END, \
                CASE WHEN rolcreatedb THEN 'has CREATEDB' END, \
                CASE WHEN rolreplication THEN 'has REPLICATION' END, \
                CASE WHEN rolbypassrls THEN 'has BYPASSRLS' END, \
                CASE WHEN EXISTS (SELECT 1 FROM pg_auth_members m WHERE m.member = r.oid) \
                     THEN 'is a member of other roles' END) \
             FROM pg_roles r WHERE rolname = $1",
        )
        .bind(&self.orphan_owner)
        .fetch_optional(&self.pool)
        .await
        .map_err(classify)?;
        match unsafe_because.as_deref() {
            None => Err(ConnectorError::Failed(format!(
                "the orphan owner role {} does not exist and could not be created",
                self.orphan_owner
            ))),
            Some("") => Ok(owner),
            Some(reasons) => Err(ConnectorError::Failed(format!(
                "refusing to hand a credential's objects to {}: it {reasons} (it must be NOLOGIN with no privileges; see docs/credentials.md)",
                self.orphan_owner
            ))),
        }
    }

    /// Ends every open session of `account` and waits until they have exited.
    async fn end_sessions(&self, account: &str) -> Result<(), ConnectorError> {
        // The sessions are chosen first (a materialised CTE): in one WHERE clause the
        // planner may call pg_terminate_backend on rows before the account filter.
        let pids: Vec<i32> = sqlx::query_scalar(
            "WITH sessions AS MATERIALIZED ( \
                SELECT pid FROM pg_stat_activity WHERE usename = $1 AND pid <> pg_backend_pid()) \
             SELECT pid FROM sessions WHERE pg_terminate_backend(pid)",
        )
        .bind(account)
        .fetch_all(&self.pool)
        .await
        .map_err(|error| match classify(error) {
            ConnectorError::Failed(message) => ConnectorError::Failed(format!(
                "cannot end the open sessions of {account}: {message} (writ's connection needs superuser or pg_signal_backend)"
            )),
            other => other,
        })?;
        if pids.is_empty() {
            return Ok(());
        }
        let pool = &self.pool;
        let pids = &pids;
        crate::sessions::wait_until_gone(
            || async move {
                sqlx::query_scalar("SELECT COUNT(*) FROM pg_stat_activity WHERE pid = ANY($1)")
                    .bind(pids)
                    .fetch_one(pool)
                    .await
                    .map_err(classify)
            },
            |alive| {
                format!(
                    "{alive} session(s) of {account} still open {} s after pg_terminate_backend",
                    crate::sessions::SESSION_EXIT_WAIT.as_secs()
                )
            },
        )
        .await
    }

    async fn role_exists(&self, name: &str) -> Result<bool, ConnectorError> {
        sqlx::query_scalar::<_, bool>("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)")
            .bind(name)
            .fetch_one(&self.pool)
            .await
            .map_err(classify)
    }

    async fn execute(&self, sql: String) -> Result<(), ConnectorError> {
        self.execute_raw(sql).await.map_err(classify)
    }

    async fn execute_raw(&self, sql: String) -> Result<(), sqlx::Error> {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&self.pool)
            .await
            .map(|_| ())
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
            .execute_raw(format!(
                "REVOKE {} FROM {}",
                quote_identifier(access.role)?,
                quote_identifier(access.account)?
            ))
            .await;
        match result {
            // A dropped account or role holds nothing: the read-back decides.
            Err(sqlx::Error::Database(db)) if db.code().as_deref() == Some(UNDEFINED_OBJECT) => {
                Ok(())
            }
            Err(error) => Err(classify(error)),
            // Sessions that took the role on (SET ROLE) must not outlive the lease.
            Ok(()) => self.end_sessions(access.account).await,
        }
    }

    async fn holds(&self, access: Access<'_>) -> Result<bool, ConnectorError> {
        // No role can be named with a NUL byte (and PostgreSQL refuses to be asked).
        if access.role.contains('\0') || access.account.contains('\0') {
            return Ok(false);
        }
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

    async fn issue_credential(&self, credential: Credential<'_>) -> Result<(), ConnectorError> {
        let mut salt = [0u8; 16];
        getrandom::fill(&mut salt)
            .map_err(|e| ConnectorError::Failed(format!("no randomness for a salt: {e}")))?;
        let user = quote_identifier(credential.username)?;
        let login = format!(
            "LOGIN PASSWORD {} VALID UNTIL {}",
            quote_literal(&scram_sha256_verifier(credential.password, &salt))?,
            quote_literal(&credential.valid_until.to_rfc3339())?
        );
        // One statement each, so a retry after an unknown outcome converges: the login
        // is created or, if an earlier attempt made it, given this password instead.
        let create = if self.role_exists(credential.username).await? {
            format!("ALTER ROLE {user} {login}")
        } else {
            format!("CREATE ROLE {user} {login}")
        };
        self.execute(create).await?;
        self.execute(format!(
            "GRANT {} TO {user}",
            quote_identifier(credential.role)?
        ))
        .await?;
        self.execute(format!(
            "COMMENT ON ROLE {user} IS {}",
            quote_literal(credential.comment)?
        ))
        .await
    }

    async fn drop_credential(&self, username: &str) -> Result<(), ConnectorError> {
        if !self.role_exists(username).await? {
            return Ok(());
        }
        let user = quote_identifier(username)?;
        // No new sessions, then none left, then what it created goes to the orphan
        // owner (never to writ's own role, which could then be made to run a
        // SECURITY DEFINER function the login wrote), then the login.
        self.execute(format!("ALTER ROLE {user} NOLOGIN")).await?;
        self.end_sessions(username).await?;
        let orphan_owner = self.safe_orphan_owner().await?;
        self.execute(format!("REASSIGN OWNED BY {user} TO {orphan_owner}"))
            .await?;
        self.execute(format!("DROP OWNED BY {user}")).await?;
        match self.execute(format!("DROP ROLE IF EXISTS {user}")).await {
            Err(ConnectorError::Failed(message)) => Err(ConnectorError::Failed(format!(
                "cannot drop login {username}: {message} (it may own objects in another database)"
            ))),
            other => other,
        }
    }

    async fn credential_exists(&self, username: &str) -> Result<bool, ConnectorError> {
        self.role_exists(username).await
    }

    async fn effective_access(
        &self,
        role: &str,
    ) -> Result<Option<writ_domain::EffectiveAccess>, ConnectorError> {
        effective::read(&self.pool, role).await
    }

    /// Direct members of the role (what `GRANT role TO account` creates).
    async fn check(&self, plan: &crate::CheckPlan) -> Vec<crate::CheckItem> {
        check::run(&self.pool, plan, &self.orphan_owner).await
    }

    async fn members(&self, role: &str) -> Result<Vec<String>, ConnectorError> {
        sqlx::query_scalar::<_, String>(
            "SELECT a.rolname::text FROM pg_auth_members m \
             JOIN pg_roles r ON r.oid = m.roleid JOIN pg_roles a ON a.oid = m.member \
             WHERE r.rolname = $1",
        )
        .bind(role)
        .fetch_all(&self.pool)
        .await
        .map_err(classify)
    }
}

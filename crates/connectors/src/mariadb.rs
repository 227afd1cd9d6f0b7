//! MariaDB and MySQL: an entitlement is a role; granting is `GRANT role TO account`.
//!
//! An account is `user@host` as MariaDB names it (`'app'@'10.0.%'`), written
//! `user@host` in writ, or just `user` for the target's `account_host` (default `%`).
//!
//! "Revoked" means what it means for PostgreSQL: the account is no longer granted the
//! role (read back from `mysql.roles_mapping` on MariaDB, `mysql.role_edges` on MySQL)
//! **and** every connection the user had open has been killed — a session that ran
//! `SET ROLE` keeps the role's privileges until it ends.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::mysql::{MySqlConnectOptions, MySqlDatabaseError, MySqlPool, MySqlPoolOptions};
use sqlx::{Executor, Row};
use tokio::sync::OnceCell;

use crate::{Access, Connector, ConnectorError, Credential};

mod check;
mod effective;

/// How long writ waits for a connection to the target before calling it down.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Server error numbers writ tells apart.
mod error_number {
    /// `Cannot revoke role ... from ...`: it was not granted.
    pub const CANNOT_REVOKE_ROLE: u16 = 1962;
    /// `Invalid role specification`: no such role.
    pub const INVALID_ROLE: u16 = 1959;
    /// `Can't find any matching row in the user table`: no such account.
    pub const NO_SUCH_ACCOUNT: u16 = 1133;
    /// MySQL's `ER_UNKNOWN_AUTHID` (role or account unknown).
    pub const UNKNOWN_AUTHID: u16 = 3523;
    /// `Unknown thread id`: the connection ended before it could be killed.
    pub const NO_SUCH_THREAD: u16 = 1094;
}

/// Which server writ is talking to: they keep role grants in different tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flavour {
    MariaDb,
    MySql,
}

#[derive(Debug)]
pub struct MariadbConnector {
    pool: MySqlPool,
    account_host: String,
    /// Make each granted role the account's default role (active at login without
    /// `SET ROLE`); needs UPDATE on the `mysql` schema, so it is off unless configured.
    default_role: bool,
    flavour: OnceCell<Flavour>,
}

/// One MariaDB account: the user name and the host pattern it connects from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub user: String,
    pub host: String,
}

impl Account {
    /// `user@host`, split at the last `@` (user names may contain `@`, host patterns
    /// may not); a name without `@` takes `default_host`.
    pub fn parse(account: &str, default_host: &str) -> Self {
        match account.rsplit_once('@') {
            Some((user, host)) if !user.is_empty() => Self {
                user: user.to_string(),
                host: host.to_string(),
            },
            _ => Self {
                user: account.to_string(),
                host: default_host.to_string(),
            },
        }
    }

    /// How writ names the account: the bare user where the host is the default.
    fn display(&self, default_host: &str) -> String {
        if self.host == default_host {
            self.user.clone()
        } else {
            format!("{}@{}", self.user, self.host)
        }
    }

    fn quoted(&self) -> Result<String, ConnectorError> {
        Ok(format!(
            "{}@{}",
            quote_identifier(&self.user)?,
            quote_identifier(&self.host)?
        ))
    }
}

/// Quotes a MariaDB identifier (a role, user or host name) in backticks, inner
/// backticks doubled. Unlike a string literal, a quoted identifier gives a backslash
/// no meaning whatever the server's `sql_mode`. NUL cannot appear in a name at all.
pub fn quote_mariadb_identifier(name: &str) -> Result<String, ConnectorError> {
    if name.contains('\0') {
        return Err(ConnectorError::Failed(format!(
            "{name:?} contains a NUL byte and cannot be a MariaDB name"
        )));
    }
    Ok(format!("`{}`", name.replace('`', "``")))
}

use quote_mariadb_identifier as quote_identifier;

/// The `mysql_native_password` hash of a password (`*` and the upper-case hex of
/// SHA1(SHA1(password))): `IDENTIFIED BY PASSWORD` takes it, so the clear password
/// never reaches the server, its logs or its processlist.
pub fn native_password_hash(password: &str) -> String {
    use sha1::{Digest, Sha1};
    let stage1 = Sha1::digest(password.as_bytes());
    let stage2 = Sha1::digest(stage1);
    format!("*{}", hex::encode_upper(stage2))
}

fn server_number(error: &sqlx::Error) -> Option<u16> {
    match error {
        sqlx::Error::Database(db) => db
            .try_downcast_ref::<MySqlDatabaseError>()
            .map(MySqlDatabaseError::number),
        _ => None,
    }
}

use crate::classify_sql as classify;

impl MariadbConnector {
    /// A connector for `url` (`mysql://` or `mariadb://`); each session's metadata
    /// lock waits give up after `timeout`, so a `REVOKE` stuck behind someone's open
    /// transaction fails and is retried instead of waiting for ever.
    pub fn new(url: &str, account_host: &str, timeout: Duration) -> Result<Self, ConnectorError> {
        let url = url
            .strip_prefix("mariadb://")
            .map_or_else(|| url.to_string(), |rest| format!("mysql://{rest}"));
        let options = MySqlConnectOptions::from_str(&url)
            .map_err(|e| ConnectorError::Failed(format!("invalid target URL: {e}")))?;
        let seconds = timeout.as_secs().max(1);
        let pool = MySqlPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(CONNECT_TIMEOUT)
            .after_connect(move |connection, _| {
                Box::pin(async move {
                    connection
                        .execute(sqlx::AssertSqlSafe(format!(
                            "SET SESSION lock_wait_timeout = {seconds}"
                        )))
                        .await
                        .map(|_| ())
                })
            })
            .connect_lazy_with(options);
        Ok(Self {
            pool,
            account_host: account_host.to_string(),
            default_role: false,
            flavour: OnceCell::new(),
        })
    }

    /// Makes granted roles active at login (`SET DEFAULT ROLE`).
    pub fn with_default_role(mut self, default_role: bool) -> Self {
        self.default_role = default_role;
        self
    }

    fn account(&self, account: &str) -> Account {
        Account::parse(account, &self.account_host)
    }

    async fn flavour(&self) -> Result<Flavour, ConnectorError> {
        self.flavour
            .get_or_try_init(|| async {
                let version: String = sqlx::query_scalar("SELECT VERSION()")
                    .fetch_one(&self.pool)
                    .await
                    .map_err(classify)?;
                Ok(if version.contains("MariaDB") {
                    Flavour::MariaDb
                } else {
                    Flavour::MySql
                })
            })
            .await
            .copied()
    }

    async fn execute_raw(&self, sql: String) -> Result<(), sqlx::Error> {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&self.pool)
            .await
            .map(|_| ())
    }

    async fn execute(&self, sql: String) -> Result<(), ConnectorError> {
        self.execute_raw(sql).await.map_err(classify)
    }

    async fn account_exists(&self, account: &Account) -> Result<bool, ConnectorError> {
        sqlx::query_scalar::<_, bool>(
            "SELECT EXISTS (SELECT 1 FROM mysql.user WHERE User = ? AND Host = ?)",
        )
        .bind(&account.user)
        .bind(&account.host)
        .fetch_one(&self.pool)
        .await
        .map_err(classify)
    }

    async fn grant_role(&self, role: &str, account: &Account) -> Result<(), ConnectorError> {
        let sql = format!("GRANT {} TO {}", quote_identifier(role)?, account.quoted()?);
        match self.execute_raw(sql).await {
            Err(error) if server_number(&error) == Some(error_number::NO_SUCH_ACCOUNT) => {
                Err(ConnectorError::Failed(format!(
                    "account {}@{} does not exist on the target",
                    account.user, account.host
                )))
            }
            Err(error) if server_number(&error) == Some(error_number::INVALID_ROLE) => Err(
                ConnectorError::Failed(format!("role {role} does not exist on the target")),
            ),
            other => other.map_err(classify),
        }
    }

    /// The account's default roles (the ones active at login without `SET ROLE`).
    async fn default_roles(&self, account: &Account) -> Result<Vec<String>, ConnectorError> {
        let sql = match self.flavour().await? {
            Flavour::MariaDb => {
                "SELECT default_role FROM mysql.user WHERE User = ? AND Host = ? AND default_role <> ''"
            }
            Flavour::MySql => {
                "SELECT DEFAULT_ROLE_USER FROM mysql.default_roles WHERE USER = ? AND HOST = ?"
            }
        };
        sqlx::query_scalar::<_, String>(sql)
            .bind(&account.user)
            .bind(&account.host)
            .fetch_all(&self.pool)
            .await
            .map_err(classify)
    }

    /// Makes the granted role active at login. MariaDB holds one default role per
    /// account: it is set only where the account has none, never replacing one the
    /// DBA chose. MySQL holds a list: the role is added to it.
    async fn add_default_role(&self, role: &str, account: &Account) -> Result<(), ConnectorError> {
        if !self.default_role {
            return Ok(());
        }
        let current = self.default_roles(account).await?;
        if current.iter().any(|held| held == role) {
            return Ok(());
        }
        match self.flavour().await? {
            Flavour::MariaDb if current.is_empty() => {
                self.execute(format!(
                    "SET DEFAULT ROLE {} FOR {}",
                    quote_identifier(role)?,
                    account.quoted()?
                ))
                .await
            }
            Flavour::MariaDb => Ok(()),
            Flavour::MySql => {
                let mut roles = Vec::with_capacity(current.len() + 1);
                for held in current.iter().map(String::as_str).chain([role]) {
                    roles.push(quote_identifier(held)?);
                }
                self.execute(format!(
                    "SET DEFAULT ROLE {} TO {}",
                    roles.join(", "),
                    account.quoted()?
                ))
                .await
            }
        }
    }

    /// Takes the role out of the account's default roles (before revoking it: MariaDB
    /// would otherwise keep a default role the account no longer holds).
    async fn remove_default_role(
        &self,
        role: &str,
        account: &Account,
    ) -> Result<(), ConnectorError> {
        if !self.default_role {
            return Ok(());
        }
        let current = self.default_roles(account).await?;
        if !current.iter().any(|held| held == role) {
            return Ok(());
        }
        let remaining: Vec<&String> = current.iter().filter(|held| *held != role).collect();
        let list = if remaining.is_empty() {
            "NONE".to_string()
        } else {
            let mut quoted = Vec::with_capacity(remaining.len());
            for held in remaining {
                quoted.push(quote_identifier(held)?);
            }
            quoted.join(", ")
        };
        let sql = match self.flavour().await? {
            Flavour::MariaDb => format!("SET DEFAULT ROLE {list} FOR {}", account.quoted()?),
            Flavour::MySql => format!("SET DEFAULT ROLE {list} TO {}", account.quoted()?),
        };
        self.execute(sql).await
    }

    /// Kills every connection of the user (whatever host it came from) and waits
    /// until they are gone. Needs `CONNECTION ADMIN` (MariaDB 10.5+) or `SUPER`.
    async fn end_sessions(&self, user: &str) -> Result<(), ConnectorError> {
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT ID FROM information_schema.PROCESSLIST WHERE USER = ? AND ID <> CONNECTION_ID()",
        )
        .bind(user)
        .fetch_all(&self.pool)
        .await
        .map_err(classify)?;
        for id in &ids {
            match self.execute_raw(format!("KILL CONNECTION {id}")).await {
                Err(error) if server_number(&error) == Some(error_number::NO_SUCH_THREAD) => {}
                Err(error) => {
                    return Err(match classify(error) {
                        ConnectorError::Failed(message) => ConnectorError::Failed(format!(
                            "cannot end the open connections of {user}: {message} (writ's login needs CONNECTION ADMIN or SUPER)"
                        )),
                        other => other,
                    });
                }
                Ok(()) => {}
            }
        }
        if ids.is_empty() {
            return Ok(());
        }
        let pool = &self.pool;
        crate::sessions::wait_until_gone(
            || async move {
                sqlx::query_scalar(
                    "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = ? AND ID <> CONNECTION_ID()",
                )
                .bind(user)
                .fetch_one(pool)
                .await
                .map_err(classify)
            },
            |alive| {
                format!(
                    "{alive} connection(s) of {user} still open {} s after KILL CONNECTION",
                    crate::sessions::SESSION_EXIT_WAIT.as_secs()
                )
            },
        )
        .await
    }
}

#[async_trait]
impl Connector for MariadbConnector {
    async fn grant(&self, access: Access<'_>) -> Result<(), ConnectorError> {
        let account = self.account(access.account);
        self.grant_role(access.role, &account).await?;
        self.add_default_role(access.role, &account).await
    }

    async fn revoke(&self, access: Access<'_>) -> Result<(), ConnectorError> {
        let account = self.account(access.account);
        let role = quote_identifier(access.role)?;
        if self.account_exists(&account).await? {
            self.remove_default_role(access.role, &account).await?;
        }
        let result = self
            .execute_raw(format!("REVOKE {role} FROM {}", account.quoted()?))
            .await;
        match result {
            // Not granted, no such role or no such account: nothing held, and the
            // read-back decides.
            Err(error)
                if matches!(
                    server_number(&error),
                    Some(
                        error_number::CANNOT_REVOKE_ROLE
                            | error_number::INVALID_ROLE
                            | error_number::NO_SUCH_ACCOUNT
                            | error_number::UNKNOWN_AUTHID
                    )
                ) =>
            {
                Ok(())
            }
            Err(error) => Err(classify(error)),
            // A connection that ran SET ROLE keeps the role until it ends.
            Ok(()) => self.end_sessions(&account.user).await,
        }
    }

    async fn holds(&self, access: Access<'_>) -> Result<bool, ConnectorError> {
        let account = self.account(access.account);
        let sql = match self.flavour().await? {
            Flavour::MariaDb => {
                "SELECT EXISTS (SELECT 1 FROM mysql.roles_mapping WHERE Role = ? AND User = ? AND Host = ?)"
            }
            Flavour::MySql => {
                "SELECT EXISTS (SELECT 1 FROM mysql.role_edges WHERE FROM_USER = ? AND TO_USER = ? AND TO_HOST = ?)"
            }
        };
        sqlx::query_scalar::<_, bool>(sql)
            .bind(access.role)
            .bind(&account.user)
            .bind(&account.host)
            .fetch_one(&self.pool)
            .await
            .map_err(classify)
    }

    /// The accounts granted the role, but not roles granted it (those are part of
    /// what the role gives, not accounts holding it) and not writ's own login, which
    /// MariaDB makes the administrator of every role it creates.
    async fn members(&self, role: &str) -> Result<Vec<String>, ConnectorError> {
        let sql = match self.flavour().await? {
            Flavour::MariaDb => {
                "SELECT User, Host FROM mysql.roles_mapping WHERE Role = ? AND Host <> '' \
                 AND NOT (Admin_option = 'Y' AND CONCAT(User, '@', Host) = CURRENT_USER())"
            }
            Flavour::MySql => {
                "SELECT TO_USER, TO_HOST FROM mysql.role_edges WHERE FROM_USER = ? AND TO_HOST <> '' \
                 AND NOT (WITH_ADMIN_OPTION = 'Y' AND CONCAT(TO_USER, '@', TO_HOST) = CURRENT_USER())"
            }
        };
        let rows = sqlx::query(sql)
            .bind(role)
            .fetch_all(&self.pool)
            .await
            .map_err(classify)?;
        let mut members = Vec::with_capacity(rows.len());
        for row in rows {
            let account = Account {
                user: row.try_get::<String, _>(0).map_err(classify)?,
                host: row.try_get::<String, _>(1).map_err(classify)?,
            };
            members.push(account.display(&self.account_host));
        }
        Ok(members)
    }

    async fn issue_credential(&self, credential: Credential<'_>) -> Result<(), ConnectorError> {
        if self.flavour().await? == Flavour::MySql {
            return Err(ConnectorError::Failed(
                "MySQL limits user names to 32 characters, shorter than writ's credential logins: issue credentials on MariaDB".into(),
            ));
        }
        let account = self.account(credential.username);
        let login = account.quoted()?;
        let hash = native_password_hash(credential.password);
        // One statement each, so a retry after an unknown outcome converges. The hash
        // is hex and '*': it needs no escaping.
        let identified = format!("IDENTIFIED BY PASSWORD '{hash}'");
        if self.account_exists(&account).await? {
            self.execute(format!("ALTER USER {login} {identified} ACCOUNT UNLOCK"))
                .await?;
        } else {
            self.execute(format!("CREATE USER {login} {identified}"))
                .await?;
        }
        self.grant_role(credential.role, &account).await?;
        self.add_default_role(credential.role, &account).await
    }

    async fn drop_credential(&self, username: &str) -> Result<(), ConnectorError> {
        let account = self.account(username);
        if !self.account_exists(&account).await? {
            return Ok(());
        }
        // No new connections, then none left, then the login.
        self.execute(format!("ALTER USER {} ACCOUNT LOCK", account.quoted()?))
            .await?;
        self.end_sessions(&account.user).await?;
        self.execute(format!("DROP USER IF EXISTS {}", account.quoted()?))
            .await
    }

    async fn credential_exists(&self, username: &str) -> Result<bool, ConnectorError> {
        self.account_exists(&self.account(username)).await
    }

    async fn check(&self, plan: &crate::CheckPlan) -> Vec<crate::CheckItem> {
        check::run(self, plan).await
    }

    async fn effective_access(
        &self,
        role: &str,
    ) -> Result<Option<writ_domain::EffectiveAccess>, ConnectorError> {
        effective::read(self, role).await.map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_split_at_the_last_at_sign() {
        assert_eq!(
            Account::parse("app@10.0.%", "%"),
            Account {
                user: "app".into(),
                host: "10.0.%".into()
            }
        );
        assert_eq!(
            Account::parse("alice@example.org@localhost", "%"),
            Account {
                user: "alice@example.org".into(),
                host: "localhost".into()
            }
        );
        assert_eq!(
            Account::parse("alice", "%"),
            Account {
                user: "alice".into(),
                host: "%".into()
            }
        );
        assert_eq!(Account::parse("alice", "%").display("%"), "alice");
        assert_eq!(Account::parse("app@h", "%").display("%"), "app@h");
    }

    #[test]
    fn identifiers_are_backtick_quoted() {
        assert_eq!(
            quote_mariadb_identifier("a`b\\'c").expect("quotable"),
            "`a``b\\'c`"
        );
        assert!(quote_mariadb_identifier("a\0b").is_err());
    }

    #[test]
    fn native_password_hash_matches_the_server() {
        // SELECT PASSWORD('secret') on MariaDB 10.11.
        assert_eq!(
            native_password_hash("secret"),
            "*14E65567ABDB5135D0CFD9A70B3032C179A49EE7"
        );
    }
}

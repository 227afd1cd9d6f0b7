//! `writ check` on PostgreSQL: can writ connect, do the roles and accounts exist, and
//! may writ's login do what grants, revocations and credentials need. Reads only.
//!
//! What writ's login needs (docs/connectors.md): to grant and revoke a role, be a
//! superuser or hold it WITH ADMIN OPTION (on PostgreSQL 15 and older CREATEROLE is
//! enough); to end the sessions of an account whose role was revoked, be a superuser or
//! a member of `pg_signal_backend`; to issue credentials, CREATEROLE.

use sqlx::{PgPool, Row};

use crate::{CheckItem, CheckPlan};

/// The server version from which CREATEROLE no longer lets a login grant any role.
const ADMIN_OPTION_REQUIRED_FROM: i32 = 160_000;

pub(super) async fn run(pool: &PgPool, plan: &CheckPlan, orphan_owner: &str) -> Vec<CheckItem> {
    let mut items = Vec::new();
    let me = match sqlx::query(
        "SELECT current_user::text AS name, r.rolsuper, r.rolcreaterole, \
         current_setting('server_version_num')::int AS version, \
         pg_has_role(current_user, 'pg_signal_backend', 'MEMBER') AS can_signal \
         FROM pg_roles r WHERE r.rolname = current_user",
    )
    .fetch_one(pool)
    .await
    {
        Ok(row) => row,
        Err(error) => {
            items.push(CheckItem::problem("connection", error.to_string()));
            return items;
        }
    };
    let name: String = me.try_get("name").unwrap_or_default();
    let superuser: bool = me.try_get("rolsuper").unwrap_or(false);
    let createrole: bool = me.try_get("rolcreaterole").unwrap_or(false);
    let version: i32 = me.try_get("version").unwrap_or(0);
    let can_signal: bool = me.try_get("can_signal").unwrap_or(false);
    items.push(CheckItem::ok(
        "connection",
        format!(
            "connected as {name}{}",
            if superuser { " (superuser)" } else { "" }
        ),
    ));
    items.push(if superuser || can_signal {
        CheckItem::ok("privilege pg_signal_backend", "can end the sessions of revoked accounts")
    } else {
        CheckItem::problem(
            "privilege pg_signal_backend",
            format!("{name} cannot end sessions: revocations will fail until it is GRANTed pg_signal_backend"),
        )
    });
    if plan.credentials {
        items.push(if superuser || createrole {
            CheckItem::ok(
                "privilege CREATEROLE",
                "can create and drop credential logins",
            )
        } else {
            CheckItem::problem(
                "privilege CREATEROLE",
                format!("{name} lacks CREATEROLE: credentials cannot be issued"),
            )
        });
    }
    if plan.credentials {
        items.push(orphan_owner_item(pool, orphan_owner).await);
    }
    for role in &plan.roles {
        let row = sqlx::query(
            "SELECT pg_has_role(current_user, oid, 'MEMBER WITH ADMIN OPTION') AS admin \
             FROM pg_roles WHERE rolname = $1",
        )
        .bind(role)
        .fetch_optional(pool)
        .await;
        let subject = format!("role {role}");
        items.push(match row {
            Err(error) => CheckItem::problem(subject, error.to_string()),
            Ok(None) => CheckItem::problem(
                subject,
                "does not exist: grants of it will stay pending (CREATE ROLE it, or fix the entitlement's role)",
            ),
            Ok(Some(row)) => {
                let admin: bool = row.try_get("admin").unwrap_or(false);
                if superuser || admin || (createrole && version < ADMIN_OPTION_REQUIRED_FROM) {
                    CheckItem::ok(subject, "exists; writ may grant it")
                } else {
                    CheckItem::problem(
                        subject,
                        format!("exists, but {name} may not grant it: GRANT {role} TO {name} WITH ADMIN OPTION"),
                    )
                }
            }
        });
    }
    for account in &plan.accounts {
        let exists = sqlx::query_scalar::<_, i32>("SELECT 1 FROM pg_roles WHERE rolname = $1")
            .bind(account)
            .fetch_optional(pool)
            .await;
        let subject = format!("account {account}");
        items.push(match exists {
            Err(error) => CheckItem::problem(subject, error.to_string()),
            Ok(None) => {
                CheckItem::problem(subject, "does not exist: grants to it will stay pending")
            }
            Ok(Some(_)) => CheckItem::ok(subject, "exists"),
        });
    }
    items
}

/// The role that takes over what credential logins created must be powerless.
async fn orphan_owner_item(pool: &PgPool, orphan_owner: &str) -> CheckItem {
    let subject = format!("orphan owner {orphan_owner}");
    let row = sqlx::query(
        "SELECT rolcanlogin OR rolsuper OR rolcreaterole OR rolcreatedb OR rolreplication OR rolbypassrls \
         OR EXISTS (SELECT 1 FROM pg_auth_members m WHERE m.member = r.oid) AS powerful \
         FROM pg_roles r WHERE rolname = $1",
    )
    .bind(orphan_owner)
    .fetch_optional(pool)
    .await;
    match row {
        Err(error) => CheckItem::problem(subject, error.to_string()),
        Ok(None) => CheckItem::ok(
            subject,
            "will be created NOLOGIN with no privileges when first needed",
        ),
        Ok(Some(row)) if row.try_get::<bool, _>("powerful").unwrap_or(true) => CheckItem::problem(
            subject,
            "can log in, has privileges or is a member of a role: dropping credentials will fail until it is NOLOGIN with none",
        ),
        Ok(Some(_)) => CheckItem::ok(subject, "exists, NOLOGIN with no privileges"),
    }
}

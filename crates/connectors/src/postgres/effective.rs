//! What a PostgreSQL role really gives: every role it reaches through memberships
//! (whether inherited or taken on with `SET ROLE`), superuser and the role attributes
//! that act like it, the predefined `pg_*` roles it reaches, and the object privileges
//! of it and those roles in the target's database (tables, views, sequences, schemas,
//! the database itself, and what they own).

use sqlx::{PgPool, Row};
use writ_domain::EffectiveAccess;

use super::classify;
use crate::ConnectorError;

pub(super) async fn read(
    pool: &PgPool,
    role: &str,
) -> Result<Option<EffectiveAccess>, ConnectorError> {
    let rows = sqlx::query(
        "WITH RECURSIVE reached(oid) AS ( \
             SELECT oid FROM pg_roles WHERE rolname = $1 \
             UNION \
             SELECT m.roleid FROM pg_auth_members m JOIN reached r ON m.member = r.oid) \
         SELECT rolname::text AS name, rolsuper, rolcreaterole, rolcreatedb, rolbypassrls, rolreplication \
         FROM pg_roles WHERE oid IN (SELECT oid FROM reached)",
    )
    .bind(role)
    .fetch_all(pool)
    .await
    .map_err(classify)?;
    if rows.is_empty() {
        return Err(ConnectorError::Failed(format!(
            "role {role} does not exist"
        )));
    }
    let mut access = EffectiveAccess::default();
    let mut names = Vec::with_capacity(rows.len());
    for row in &rows {
        let name: String = row.try_get("name").map_err(classify)?;
        let flag = |column: &str| row.try_get::<bool, _>(column).unwrap_or(false);
        access.superuser |= flag("rolsuper");
        for (column, power) in [
            ("rolcreaterole", "createrole"),
            ("rolcreatedb", "createdb"),
            ("rolbypassrls", "bypassrls"),
            ("rolreplication", "replication"),
        ] {
            if flag(column) {
                access.powers.insert(power.to_string());
            }
        }
        if name.starts_with("pg_") {
            access.powers.insert(name.clone());
        } else if name != role {
            access.roles.insert(name.clone());
        }
        names.push(name);
    }
    let privileges: Vec<String> = sqlx::query_scalar(
        "WITH holders AS (SELECT oid FROM pg_roles WHERE rolname = ANY($1)), \
         relations AS ( \
             SELECT c.oid, c.relacl, c.relowner, \
                    CASE c.relkind WHEN 'r' THEN 'TABLE' WHEN 'p' THEN 'TABLE' WHEN 'v' THEN 'VIEW' \
                         WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'S' THEN 'SEQUENCE' \
                         WHEN 'f' THEN 'FOREIGN TABLE' END AS kind, \
                    quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS name \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') \
               AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%') \
         SELECT a.privilege_type || ' ON ' || r.kind || ' ' || r.name \
             FROM relations r, aclexplode(r.relacl) a WHERE a.grantee IN (SELECT oid FROM holders) \
         UNION SELECT 'OWNER OF ' || r.kind || ' ' || r.name FROM relations r \
             WHERE r.relowner IN (SELECT oid FROM holders) \
         UNION SELECT a.privilege_type || ' ON SCHEMA ' || quote_ident(n.nspname) \
             FROM pg_namespace n, aclexplode(n.nspacl) a WHERE a.grantee IN (SELECT oid FROM holders) \
         UNION SELECT 'OWNER OF SCHEMA ' || quote_ident(n.nspname) FROM pg_namespace n \
             WHERE n.nspowner IN (SELECT oid FROM holders) \
         UNION SELECT a.privilege_type || ' ON DATABASE ' || quote_ident(d.datname) \
             FROM pg_database d, aclexplode(d.datacl) a \
             WHERE d.datname = current_database() AND a.grantee IN (SELECT oid FROM holders)",
    )
    .bind(&names)
    .fetch_all(pool)
    .await
    .map_err(classify)?;
    access.privileges = privileges.into_iter().collect();
    Ok(Some(access))
}

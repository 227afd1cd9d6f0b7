//! What a MariaDB role really gives: the roles granted to it (transitively, from
//! `mysql.roles_mapping`), and the privileges of it and those roles (`SHOW GRANTS
//! FOR`, which needs SELECT on the `mysql` schema); `ALL PRIVILEGES` or `SUPER` on
//! `*.*` is superuser.

use std::collections::BTreeSet;

use writ_domain::EffectiveAccess;

use super::{MariadbConnector, classify, quote_identifier};
use crate::ConnectorError;

/// One `SHOW GRANTS` line as (privileges, object); `None` for role grants and the
/// `USAGE` every account has.
fn parse_grant(line: &str) -> Option<(Vec<String>, String)> {
    let rest = line.strip_prefix("GRANT ")?;
    let (privileges, rest) = rest.split_once(" ON ")?;
    let object = rest.split(" TO ").next()?.trim().to_string();
    let privileges: Vec<String> = privileges
        .split(", ")
        .map(|p| p.trim().to_string())
        .filter(|p| p != "USAGE")
        .collect();
    (!privileges.is_empty()).then_some((privileges, object))
}

pub(super) async fn read(
    connector: &MariadbConnector,
    role: &str,
) -> Result<EffectiveAccess, ConnectorError> {
    let exists: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM mysql.user WHERE User = ? AND is_role = 'Y')",
    )
    .bind(role)
    .fetch_one(&connector.pool)
    .await
    .map_err(classify)?;
    if !exists {
        return Err(ConnectorError::Failed(format!(
            "role {role} does not exist"
        )));
    }
    let mut access = EffectiveAccess::default();
    let mut seen = BTreeSet::from([role.to_string()]);
    let mut frontier = vec![role.to_string()];
    while let Some(current) = frontier.pop() {
        let granted: Vec<String> =
            sqlx::query_scalar("SELECT Role FROM mysql.roles_mapping WHERE User = ? AND Host = ''")
                .bind(&current)
                .fetch_all(&connector.pool)
                .await
                .map_err(classify)?;
        for inner in granted {
            if seen.insert(inner.clone()) {
                access.roles.insert(inner.clone());
                frontier.push(inner);
            }
        }
    }
    for holder in &seen {
        let lines: Vec<String> =
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SHOW GRANTS FOR {}", quote_identifier(holder)?)))
                .fetch_all(&connector.pool)
                .await
                .map_err(|e| match classify(e) {
                    ConnectorError::Failed(message) => ConnectorError::Failed(format!(
                        "cannot read what role {holder} gives: {message} (writ's login needs SELECT ON mysql.* for effective access)"
                    )),
                    other => other,
                })?;
        for (privileges, object) in lines.iter().filter_map(|line| parse_grant(line)) {
            for privilege in privileges {
                if object == "*.*" && (privilege == "ALL PRIVILEGES" || privilege == "SUPER") {
                    access.superuser = true;
                }
                access.privileges.insert(format!("{privilege} ON {object}"));
            }
        }
    }
    Ok(access)
}

#[cfg(test)]
mod tests {
    use super::parse_grant;

    #[test]
    fn reads_show_grants_lines() {
        assert_eq!(
            parse_grant("GRANT SELECT, INSERT ON `shop`.`orders` TO `clerk`"),
            Some((
                vec!["SELECT".into(), "INSERT".into()],
                "`shop`.`orders`".into()
            ))
        );
        assert_eq!(parse_grant("GRANT USAGE ON *.* TO `clerk`"), None);
        assert_eq!(parse_grant("GRANT `inner` TO `clerk`"), None);
    }
}

//! `writ check` on MariaDB: can writ connect, do the roles and accounts exist, and may
//! writ's login do what grants, revocations and credentials need. Reads only.
//!
//! What writ's login needs (docs/connectors.md): each managed role WITH ADMIN OPTION;
//! SELECT on `mysql.roles_mapping` and `mysql.user`; CONNECTION ADMIN and PROCESS to
//! kill the connections of an account whose role was revoked; CREATE USER for
//! credentials; UPDATE on the `mysql` schema only where `default_role = true`.

use sqlx::MySqlPool;

use super::{Account, MariadbConnector};
use crate::{CheckItem, CheckPlan};

/// What writ's login holds on `*.*` (and on the `mysql` schema), read from SHOW GRANTS.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Privileges {
    all: bool,
    global: Vec<String>,
    mysql_update: bool,
}

impl Privileges {
    /// Parses the lines of `SHOW GRANTS`.
    pub(super) fn parse(lines: &[String]) -> Self {
        let mut privileges = Self::default();
        for line in lines {
            let Some(rest) = line.strip_prefix("GRANT ") else {
                continue;
            };
            let Some((list, on)) = rest.split_once(" ON ") else {
                continue;
            };
            let names: Vec<String> = list.split(", ").map(|p| p.trim().to_uppercase()).collect();
            let all = names.iter().any(|p| p == "ALL PRIVILEGES");
            if on.starts_with("*.* ") {
                privileges.all |= all;
                privileges.global.extend(names);
            } else if on.starts_with("`mysql`.* ") && (all || names.iter().any(|p| p == "UPDATE")) {
                privileges.mysql_update = true;
            }
        }
        privileges
    }

    fn has(&self, privilege: &str) -> bool {
        self.all || self.global.iter().any(|p| p == privilege || p == "SUPER")
    }

    fn can_update_mysql(&self) -> bool {
        self.mysql_update || self.all || self.global.iter().any(|p| p == "UPDATE")
    }
}

pub(super) async fn run(connector: &MariadbConnector, plan: &CheckPlan) -> Vec<CheckItem> {
    let pool = &connector.pool;
    let mut items = Vec::new();
    let me: Result<(String, String), _> = sqlx::query_as("SELECT CURRENT_USER(), VERSION()")
        .fetch_one(pool)
        .await;
    let name = match me {
        Ok((name, version)) => {
            items.push(CheckItem::ok(
                "connection",
                format!("connected as {name} ({version})"),
            ));
            name
        }
        Err(error) => {
            items.push(CheckItem::problem("connection", error.to_string()));
            return items;
        }
    };
    let grants: Vec<String> = match sqlx::query_scalar("SHOW GRANTS").fetch_all(pool).await {
        Ok(lines) => lines,
        Err(error) => {
            items.push(CheckItem::problem("privileges", error.to_string()));
            return items;
        }
    };
    let privileges = Privileges::parse(&grants);
    items.push(
        if privileges.has("CONNECTION ADMIN") && privileges.has("PROCESS") {
            CheckItem::ok(
                "privilege CONNECTION ADMIN",
                "can kill the connections of revoked accounts",
            )
        } else {
            CheckItem::problem(
                "privilege CONNECTION ADMIN",
                format!("{name} cannot see and kill other accounts' connections: revocations will fail until it is GRANTed CONNECTION ADMIN, PROCESS ON *.*"),
            )
        },
    );
    if plan.credentials {
        items.push(if privileges.has("CREATE USER") {
            CheckItem::ok(
                "privilege CREATE USER",
                "can create and drop credential logins",
            )
        } else {
            CheckItem::problem(
                "privilege CREATE USER",
                format!("{name} lacks CREATE USER: credentials cannot be issued"),
            )
        });
    }
    if connector.default_role {
        items.push(if privileges.can_update_mysql() {
            CheckItem::ok("privilege UPDATE ON mysql.*", "can set default roles")
        } else {
            CheckItem::problem(
                "privilege UPDATE ON mysql.*",
                format!("{name} cannot SET DEFAULT ROLE for others: set default_role = false, or GRANT UPDATE ON mysql.*"),
            )
        });
    }
    for role in &plan.roles {
        items.push(role_item(pool, role, &privileges).await);
    }
    for account in &plan.accounts {
        let subject = format!("account {account}");
        let parsed = Account::parse(account, &connector.account_host);
        items.push(match connector.account_exists(&parsed).await {
            Err(error) => CheckItem::problem(subject, error.to_string()),
            Ok(false) => CheckItem::problem(
                subject,
                format!(
                    "{}@{} does not exist: grants to it will stay pending",
                    parsed.user, parsed.host
                ),
            ),
            Ok(true) => CheckItem::ok(subject, "exists"),
        });
    }
    items
}

async fn role_item(pool: &MySqlPool, role: &str, privileges: &Privileges) -> CheckItem {
    let subject = format!("role {role}");
    let row: Result<Option<(bool,)>, _> = sqlx::query_as(
        "SELECT EXISTS (SELECT 1 FROM mysql.roles_mapping WHERE Role = r.User \
             AND CONCAT(User, '@', Host) = CURRENT_USER() AND Admin_option = 'Y') \
         FROM mysql.user r WHERE r.User = ? AND r.is_role = 'Y'",
    )
    .bind(role)
    .fetch_optional(pool)
    .await;
    match row {
        Err(error) => CheckItem::problem(
            subject,
            format!("{error} (writ's login needs SELECT on mysql.user and mysql.roles_mapping)"),
        ),
        Ok(None) => CheckItem::problem(
            subject,
            "does not exist: grants of it will stay pending (CREATE ROLE it, or fix the entitlement's role)",
        ),
        Ok(Some((admin,))) if admin || privileges.has("ALL PRIVILEGES") => {
            CheckItem::ok(subject, "exists; writ may grant it")
        }
        Ok(Some(_)) => CheckItem::problem(
            subject,
            format!(
                "exists, but writ's login may not grant it: GRANT {role} TO <writ's login> WITH ADMIN OPTION"
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_show_grants() {
        let root = Privileges::parse(&[
            "GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost` WITH GRANT OPTION".into(),
        ]);
        assert!(root.has("CONNECTION ADMIN") && root.has("CREATE USER") && root.can_update_mysql());
        let least = Privileges::parse(&[
            "GRANT PROCESS, CONNECTION ADMIN ON *.* TO `writ`@`%` IDENTIFIED BY PASSWORD '*AB'"
                .into(),
            "GRANT SELECT ON `mysql`.`user` TO `writ`@`%`".into(),
            "GRANT `reports` TO `writ`@`%` WITH ADMIN OPTION".into(),
        ]);
        assert!(least.has("CONNECTION ADMIN") && least.has("PROCESS"));
        assert!(!least.has("CREATE USER") && !least.can_update_mysql());
        let updater = Privileges::parse(&["GRANT UPDATE ON `mysql`.* TO `writ`@`%`".into()]);
        assert!(updater.can_update_mysql());
    }
}

//! What the MariaDB connector does beyond the contract, against the real MariaDB at
//! 127.0.0.1:3306: default roles, open connections killed on revoke, and short-lived
//! logins whose password never reaches the server.

use std::time::Duration;

use sqlx::mysql::{MySqlConnectOptions, MySqlPool};
use sqlx::{ConnectOptions, Connection};
use writ_connectors::{Access, Connector, Credential, MariadbConnector, native_password_hash};

const ADMIN_URL: &str = "mysql://root@127.0.0.1:3306/mysql";

fn suffix() -> String {
    uuid::Uuid::now_v7().simple().to_string()[24..].to_string()
}

async fn admin() -> MySqlPool {
    MySqlPool::connect(ADMIN_URL)
        .await
        .expect("MariaDB at 127.0.0.1:3306 (root, no password)")
}

async fn run(admin: &MySqlPool, sql: &str) {
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
        .execute(admin)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

async fn default_role(admin: &MySqlPool, user: &str) -> String {
    sqlx::query_scalar("SELECT default_role FROM mysql.user WHERE User = ? AND Host = '%'")
        .bind(user)
        .fetch_one(admin)
        .await
        .expect("default role")
}

fn connector() -> MariadbConnector {
    MariadbConnector::new(ADMIN_URL, "%", Duration::from_secs(30)).expect("connector")
}

/// A connector that also sets default roles (`default_role = true`).
fn defaulting_connector() -> MariadbConnector {
    connector().with_default_role(true)
}

async fn login(user: &str, password: &str) -> Result<sqlx::MySqlConnection, sqlx::Error> {
    MySqlConnectOptions::new()
        .host("127.0.0.1")
        .port(3306)
        .username(user)
        .password(password)
        .connect()
        .await
}

#[tokio::test]
async fn the_granted_role_is_active_at_login_without_replacing_a_chosen_one() {
    let admin = admin().await;
    let s = suffix();
    let (role, other, fresh, chosen) = (
        format!("dr_role_{s}"),
        format!("dr_other_{s}"),
        format!("dr_fresh_{s}"),
        format!("dr_chosen_{s}"),
    );
    run(&admin, &format!("CREATE ROLE {role}")).await;
    run(&admin, &format!("CREATE ROLE {other}")).await;
    run(&admin, &format!("CREATE USER {fresh}@'%'")).await;
    run(&admin, &format!("CREATE USER {chosen}@'%'")).await;
    run(&admin, &format!("GRANT {other} TO {chosen}@'%'")).await;
    run(
        &admin,
        &format!("SET DEFAULT ROLE {other} FOR {chosen}@'%'"),
    )
    .await;
    let plain = Access {
        role: &other,
        account: &fresh,
    };
    connector().grant(plain).await.expect("grant");
    assert_eq!(
        default_role(&admin, &fresh).await,
        "",
        "off unless configured"
    );
    connector().revoke(plain).await.expect("revoke");
    let connector = defaulting_connector();

    connector
        .grant(Access {
            role: &role,
            account: &fresh,
        })
        .await
        .expect("grant");
    assert_eq!(
        default_role(&admin, &fresh).await,
        role,
        "no default yet: the grant is it"
    );
    connector
        .grant(Access {
            role: &role,
            account: &chosen,
        })
        .await
        .expect("grant");
    assert_eq!(
        default_role(&admin, &chosen).await,
        other,
        "the DBA's choice stays"
    );

    connector
        .revoke(Access {
            role: &role,
            account: &fresh,
        })
        .await
        .expect("revoke");
    assert_eq!(
        default_role(&admin, &fresh).await,
        "",
        "no default role left dangling"
    );
    connector
        .revoke(Access {
            role: &role,
            account: &chosen,
        })
        .await
        .expect("revoke");
    assert_eq!(default_role(&admin, &chosen).await, other);
}

#[tokio::test]
async fn revoking_kills_the_accounts_open_connections() {
    let admin = admin().await;
    let s = suffix();
    let (role, user) = (format!("kill_role_{s}"), format!("kill_user_{s}"));
    run(&admin, &format!("CREATE ROLE {role}")).await;
    run(
        &admin,
        &format!("CREATE USER {user}@'%' IDENTIFIED BY 'pw-{s}'"),
    )
    .await;
    let connector = connector();
    let access = Access {
        role: &role,
        account: &user,
    };
    connector.grant(access).await.expect("grant");
    let mut session = login(&user, &format!("pw-{s}")).await.expect("log in");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("SET ROLE {role}")))
        .execute(&mut session)
        .await
        .expect("the session takes the role on");

    connector.revoke(access).await.expect("revoke");
    assert!(!connector.holds(access).await.expect("check"));
    assert!(
        session.ping().await.is_err(),
        "the session that held the role must be gone"
    );
    let mut again = login(&user, &format!("pw-{s}"))
        .await
        .expect("log in again");
    let active: Option<String> = sqlx::query_scalar("SELECT CURRENT_ROLE()")
        .fetch_one(&mut again)
        .await
        .expect("current role");
    assert_eq!(active, None, "a new session has no role");
    let set_role = sqlx::raw_sql(sqlx::AssertSqlSafe(format!("SET ROLE {role}")))
        .execute(&mut again)
        .await;
    assert!(set_role.is_err(), "the role can no longer be taken on");
}

#[tokio::test]
async fn a_short_lived_login_works_until_dropped_and_its_password_is_stored_nowhere() {
    let admin = admin().await;
    let s = suffix();
    let role = format!("cred_role_{s}");
    let username = format!("writ_{s}");
    run(&admin, &format!("CREATE ROLE {role}")).await;
    run(&admin, &format!("GRANT SELECT ON mysql.db TO {role}")).await;
    let connector = defaulting_connector();
    let password = format!("p'\\\"{s}");
    let credential = Credential {
        role: &role,
        username: &username,
        password: &password,
        valid_until: writ_domain::Timestamp::from_unix_micros(4_102_444_800_000_000),
        comment: "grant test",
    };
    connector.issue_credential(credential).await.expect("issue");
    connector
        .issue_credential(credential)
        .await
        .expect("issuing again converges");
    assert!(
        connector
            .credential_exists(&username)
            .await
            .expect("exists")
    );

    let stored: String =
        sqlx::query_scalar("SELECT authentication_string FROM mysql.user WHERE User = ?")
            .bind(&username)
            .fetch_one(&admin)
            .await
            .expect("stored");
    assert_eq!(
        stored,
        native_password_hash(&password),
        "only the hash is stored"
    );
    let mut session = login(&username, &password).await.expect("the login works");
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM mysql.db")
        .fetch_one(&mut session)
        .await
        .expect("the role's privilege is active at login");
    assert!(rows >= 0);

    connector.drop_credential(&username).await.expect("drop");
    connector
        .drop_credential(&username)
        .await
        .expect("dropping twice is harmless");
    assert!(
        !connector
            .credential_exists(&username)
            .await
            .expect("exists")
    );
    assert!(session.ping().await.is_err(), "its session ended");
    assert!(
        login(&username, &password).await.is_err(),
        "it can no longer log in"
    );
}

#[tokio::test]
async fn accounts_with_a_host_and_unknown_names_are_exact() {
    let admin = admin().await;
    let s = suffix();
    let (role, user) = (format!("host_role_{s}"), format!("host_user_{s}"));
    run(&admin, &format!("CREATE ROLE {role}")).await;
    run(&admin, &format!("CREATE USER {user}@'10.0.%'")).await;
    run(&admin, &format!("CREATE USER {user}@'%'")).await;
    let connector = connector();
    let scoped = format!("{user}@10.0.%");
    connector
        .grant(Access {
            role: &role,
            account: &scoped,
        })
        .await
        .expect("grant");
    assert!(
        connector
            .holds(Access {
                role: &role,
                account: &scoped
            })
            .await
            .expect("check")
    );
    assert!(
        !connector
            .holds(Access {
                role: &role,
                account: &user
            })
            .await
            .expect("check"),
        "'{user}'@'%' is another account"
    );
    assert_eq!(connector.members(&role).await.expect("members"), [scoped]);

    let missing = connector
        .grant(Access {
            role: &role,
            account: "no_such_account_for_writ",
        })
        .await
        .expect_err("no such account");
    assert!(missing.to_string().contains("does not exist"), "{missing}");
    let missing = connector
        .grant(Access {
            role: "no_such_role_for_writ",
            account: &user,
        })
        .await
        .expect_err("no such role");
    assert!(missing.to_string().contains("does not exist"), "{missing}");
}

/// The privileges docs/connectors.md lists are enough: grant, revoke (ending
/// sessions), read back and list members as a login that is not root.
#[tokio::test]
async fn the_documented_least_privileges_suffice() {
    let admin = admin().await;
    let s = suffix();
    let (writ, role, user) = (
        format!("lp_writ_{s}"),
        format!("lp_role_{s}"),
        format!("lp_user_{s}"),
    );
    run(
        &admin,
        &format!("CREATE USER {writ}@'%' IDENTIFIED BY 'writ-{s}'"),
    )
    .await;
    run(
        &admin,
        &format!("CREATE USER {user}@'%' IDENTIFIED BY 'pw-{s}'"),
    )
    .await;
    // As docs/connectors.md advises: writ's login administers the role, its creator does not.
    run(&admin, &format!("CREATE ROLE {role} WITH ADMIN {writ}@'%'")).await;
    for grant in [
        format!("GRANT SELECT ON mysql.roles_mapping TO {writ}@'%'"),
        format!("GRANT SELECT ON mysql.user TO {writ}@'%'"),
        format!("GRANT CONNECTION ADMIN, PROCESS ON *.* TO {writ}@'%'"),
    ] {
        run(&admin, &grant).await;
    }
    let connector = MariadbConnector::new(
        &format!("mysql://{writ}:writ-{s}@127.0.0.1:3306/"),
        "%",
        Duration::from_secs(30),
    )
    .expect("connector");
    let access = Access {
        role: &role,
        account: &user,
    };
    connector.grant(access).await.expect("grant");
    assert!(connector.holds(access).await.expect("check"));
    assert_eq!(
        connector.members(&role).await.expect("members"),
        std::slice::from_ref(&user),
        "writ's own ADMIN OPTION on the role is not a member"
    );
    let mut session = login(&user, &format!("pw-{s}")).await.expect("log in");
    connector.revoke(access).await.expect("revoke");
    assert!(!connector.holds(access).await.expect("check"));
    assert!(session.ping().await.is_err(), "its session was killed");
}

/// `writ check` names what writ's login lacks, and passes the documented privileges.
#[tokio::test]
async fn check_names_missing_privileges() {
    let admin = admin().await;
    let s = suffix();
    let (writ, role) = (format!("ck_writ_{s}"), format!("ck_role_{s}"));
    run(
        &admin,
        &format!("CREATE USER {writ}@'%' IDENTIFIED BY 'writ-{s}'"),
    )
    .await;
    run(&admin, &format!("CREATE ROLE {role}")).await;
    run(
        &admin,
        &format!("GRANT SELECT ON mysql.roles_mapping TO {writ}@'%'"),
    )
    .await;
    run(&admin, &format!("GRANT SELECT ON mysql.user TO {writ}@'%'")).await;
    let connector = MariadbConnector::new(
        &format!("mysql://{writ}:writ-{s}@127.0.0.1:3306/"),
        "%",
        Duration::from_secs(30),
    )
    .expect("connector");
    let plan = writ_connectors::CheckPlan {
        roles: vec![role.clone(), "no_such_role_for_writ".into()],
        accounts: vec!["no_such_account_for_writ".into()],
        credentials: true,
    };
    let problems = |items: Vec<writ_connectors::CheckItem>| -> Vec<String> {
        items
            .into_iter()
            .filter(|i| !i.ok)
            .map(|i| i.subject)
            .collect()
    };
    assert_eq!(
        problems(connector.check(&plan).await),
        [
            "privilege CONNECTION ADMIN".to_string(),
            "privilege CREATE USER".to_string(),
            format!("role {role}"),
            "role no_such_role_for_writ".to_string(),
            "account no_such_account_for_writ".to_string(),
        ]
    );
    run(
        &admin,
        &format!("GRANT {role} TO {writ}@'%' WITH ADMIN OPTION"),
    )
    .await;
    run(
        &admin,
        &format!("GRANT CONNECTION ADMIN, PROCESS, CREATE USER ON *.* TO {writ}@'%'"),
    )
    .await;
    let plan = writ_connectors::CheckPlan {
        roles: vec![role.clone()],
        accounts: vec![writ.clone()],
        credentials: true,
    };
    // A new connection sees the new grants.
    let connector = MariadbConnector::new(
        &format!("mysql://{writ}:writ-{s}@127.0.0.1:3306/"),
        "%",
        Duration::from_secs(30),
    )
    .expect("connector");
    assert_eq!(problems(connector.check(&plan).await), Vec::<String>::new());
}

#[tokio::test]
async fn effective_access_follows_nested_roles_to_superuser() {
    let admin = admin().await;
    let s = suffix();
    let (role, inner) = (format!("eff_role_{s}"), format!("eff_inner_{s}"));
    run(&admin, &format!("CREATE ROLE {role}")).await;
    run(&admin, &format!("CREATE ROLE {inner}")).await;
    run(&admin, &format!("GRANT SELECT ON mysql.db TO {inner}")).await;
    run(&admin, &format!("GRANT {inner} TO {role}")).await;
    let connector = connector();
    let approved = connector
        .effective_access(&role)
        .await
        .expect("read")
        .expect("mariadb tells");
    assert_eq!(approved.roles.iter().collect::<Vec<_>>(), [&inner]);
    assert!(
        approved.privileges.contains("SELECT ON `mysql`.`db`"),
        "{approved:?}"
    );
    assert!(!approved.superuser);
    run(&admin, &format!("GRANT ALL PRIVILEGES ON *.* TO {inner}")).await;
    let now = connector
        .effective_access(&role)
        .await
        .expect("read")
        .expect("mariadb tells");
    assert!(now.superuser && now.is_critical(), "{now:?}");
}

//! A MariaDB target end to end: the real binary grants a role on the local MariaDB,
//! revokes it early and at expiry (killing the account's connections), issues a
//! short-lived login that is dropped at expiry, and `writ check` reads the target.

mod support;

use std::time::Duration;

use serde_json::json;
use sqlx::mysql::{MySqlConnectOptions, MySqlPool};
use sqlx::{ConnectOptions, Connection};
use support::Writ;
use writ_domain::lifecycle::GrantState;

const POLICY: &str = r#"
@id("anyone-reads-reports")
permit (principal, action == Action::"request", resource == Entitlement::"maria/reports");

@id("owners-ask-for-their-services")
permit (principal, action == Action::"request", resource == Entitlement::"maria/report_login")
when { context.subject has owner && context.subject.owner == principal };
"#;

async fn admin() -> MySqlPool {
    MySqlPool::connect("mysql://root@127.0.0.1:3306/mysql")
        .await
        .expect("MariaDB at 127.0.0.1:3306")
}

async fn run(admin: &MySqlPool, sql: &str) {
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
        .execute(admin)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

async fn holds(admin: &MySqlPool, role: &str, user: &str) -> bool {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM mysql.roles_mapping WHERE Role = ? AND User = ? AND Host = '%')",
    )
    .bind(role)
    .bind(user)
    .fetch_one(admin)
    .await
    .expect("roles_mapping")
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
async fn roles_and_short_lived_logins_on_mariadb() {
    let admin = admin().await;
    let s = format!("{}{}", std::process::id(), support::now_ms() % 1_000_000);
    let (role, login_role, account) = (
        format!("reports_{s}"),
        format!("report_login_{s}"),
        format!("alice_{s}"),
    );
    run(&admin, &format!("CREATE ROLE {role}")).await;
    run(&admin, &format!("CREATE ROLE {login_role}")).await;
    run(&admin, &format!("GRANT SELECT ON mysql.db TO {login_role}")).await;
    run(
        &admin,
        &format!("CREATE USER {account}@'%' IDENTIFIED BY 'pw-{s}'"),
    )
    .await;
    let config = format!(
        r#"
[[target]]
name = "maria"
kind = "mariadb"
url = "mysql://root@127.0.0.1:3306/"
default_role = true
reconcile_every = "off"

[[entitlement]]
id = "maria/reports"
target = "maria"
role = "{role}"
sensitivity = "low"
max_duration = "1h"

[[entitlement]]
id = "maria/report_login"
target = "maria"
role = "{login_role}"
sensitivity = "low"
max_duration = "1h"
credential = true

[[user]]
name = "alice"
accounts = {{ maria = "{account}" }}

[[service]]
name = "svc-report"
owner = "alice"
"#
    );
    let mut writ = Writ::new(&config, &[("policy.cedar", POLICY)]);
    let alice = writ.token("alice");
    // `writ check` reads the target: the roles exist and may be granted, alice's
    // account exists (identities without an account there are listed as problems).
    let check = writ.run(&["check"]);
    let report = support::stdout(&check);
    for line in [
        format!("ok       role {role}: exists; writ may grant it"),
        format!("ok       role {login_role}: exists; writ may grant it"),
        format!("ok       account {account}: exists"),
        "ok       privilege CONNECTION ADMIN".to_string(),
    ] {
        assert!(report.contains(&line), "{line} in\n{report}");
    }
    writ.start().await;

    // Granted at once, held on MariaDB, active at login; revoked early, its
    // connection killed.
    let request = writ
        .request_access(
            &alice,
            json!({ "entitlement": "maria/reports", "justification": "quarterly numbers", "duration_seconds": 600 }),
        )
        .await;
    let grant_id = request.grant_id.expect("granted at once");
    writ.wait_for_grant_state(
        grant_id,
        &alice,
        Duration::from_secs(15),
        GrantState::Active,
    )
    .await;
    assert!(holds(&admin, &role, &account).await);
    let mut session = login(&account, &format!("pw-{s}")).await.expect("log in");
    let active: Option<String> = sqlx::query_scalar("SELECT CURRENT_ROLE()")
        .fetch_one(&mut session)
        .await
        .expect("current role");
    assert_eq!(active.as_deref(), Some(role.as_str()), "the default role");
    let (status, body) = writ
        .post(
            &format!("/v1/grants/{grant_id}/revoke"),
            &alice,
            json!({ "reason": "done early" }),
        )
        .await;
    assert!(status == 200 || status == 202, "{status} {body}");
    let revoked = writ
        .wait_for_grant_state(
            grant_id,
            &alice,
            Duration::from_secs(15),
            GrantState::Revoked,
        )
        .await;
    assert!(revoked.grant.verified_at.is_some(), "{revoked:?}");
    assert!(!holds(&admin, &role, &account).await);
    assert!(
        session.ping().await.is_err(),
        "the open connection was killed"
    );

    // A short-lived login for a service: shown once, works, dropped at expiry.
    let (status, created) = writ
        .post(
            "/v1/requests",
            &alice,
            json!({ "entitlement": "maria/report_login", "subject": "svc-report", "justification": "nightly report", "duration_seconds": 3 }),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let username = created["credential"]["username"]
        .as_str()
        .expect("username")
        .to_string();
    let password = created["credential"]["password"]
        .as_str()
        .expect("password")
        .to_string();
    let mut service = login(&username, &password)
        .await
        .expect("the credential logs in");
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM mysql.db")
        .fetch_one(&mut service)
        .await
        .expect("the role's privileges are active at login");
    assert!(rows >= 0);
    let grant: writ_domain::GrantId = created["grant_id"]
        .as_str()
        .expect("grant")
        .parse()
        .expect("grant id");
    let expired = writ
        .wait_for_grant_state(grant, &alice, Duration::from_secs(20), GrantState::Revoked)
        .await;
    assert!(expired.grant.verified_at.is_some(), "{expired:?}");
    assert!(
        login(&username, &password).await.is_err(),
        "the login is gone"
    );
    assert!(service.ping().await.is_err(), "its connection was killed");
}

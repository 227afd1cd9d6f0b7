//! Short-lived credentials end to end: the real binary issues a PostgreSQL login bound
//! to a grant, shows its password once, never records it, and drops the login (and
//! its sessions) at expiry. A service asks for itself where policy lets it.

mod support;

use writ_domain::lifecycle::GrantState;

use std::time::Duration;

use serde_json::{Value, json};
use sqlx::Connection;
use support::{TestRoles, Writ};

const POLICY: &str = r#"
@id("owners-ask-for-their-services")
permit (principal, action == Action::"request", resource == Entitlement::"pg/report_db")
when { context.subject has owner && context.subject.owner == principal };

@id("report-service-asks-for-itself")
permit (principal == Service::"svc-report", action == Action::"request", resource == Entitlement::"pg/report_db");

@id("approved-credentials")
@approvals("1")
permit (principal, action == Action::"request", resource == Entitlement::"pg/admin_db")
when { context.subject_kind == "service" };

@id("dba-approves")
permit (principal in Group::"dba", action == Action::"approve", resource);
"#;

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

async fn login_exists(admin: &sqlx::PgPool, name: &str) -> bool {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)")
        .bind(name)
        .fetch_one(admin)
        .await
        .expect("pg_roles")
}

#[tokio::test]
async fn a_credential_is_shown_once_kept_nowhere_and_dropped_at_expiry() {
    let mut roles = TestRoles::new().await;
    let report_role = roles.create("report").await;
    let admin_role = roles.create("admin").await;
    let config = format!(
        r#"
[[target]]
name = "pg"
kind = "postgres"
url = "postgres://postgres@127.0.0.1:5432/test"
reconcile_every = "off"

[[entitlement]]
id = "pg/report_db"
target = "pg"
role = "{report_role}"
sensitivity = "low"
max_duration = "1h"
credential = true

[[entitlement]]
id = "pg/admin_db"
target = "pg"
role = "{admin_role}"
sensitivity = "high"
max_duration = "1h"
credential = true

[[user]]
name = "alice"

[[user]]
name = "dora"
groups = ["dba"]

[[service]]
name = "svc-report"
owner = "alice"
"#
    );
    let mut writ = Writ::new(&config, &[("policy.cedar", POLICY)]);
    let (alice, dora, service) = (
        writ.token("alice"),
        writ.token("dora"),
        writ.token("svc-report"),
    );
    writ.start().await;
    let admin = sqlx::PgPool::connect("postgres://postgres@127.0.0.1:5432/test")
        .await
        .expect("PostgreSQL");

    // The owner asks for the service; granted at once, the credential comes back once.
    let (status, created) = writ
        .post(
            "/v1/requests",
            &alice,
            json!({ "entitlement": "pg/report_db", "subject": "svc-report", "justification": "nightly report", "duration_seconds": 3,
                    "ticket": { "system": "jira", "key": "OPS-77" } }),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let credential = created["credential"].clone();
    let username = credential["username"]
        .as_str()
        .expect("username")
        .to_string();
    let password = credential["password"]
        .as_str()
        .expect("password")
        .to_string();
    let grant_id = created["grant_id"].as_str().expect("grant").to_string();
    assert_eq!(
        username,
        format!("writ_{}", grant_id.replace('-', "")),
        "traceable to its grant"
    );
    assert!(password.len() >= 40, "{password}");
    let (_, grant) = writ.get(&format!("/v1/grants/{grant_id}"), &alice).await;
    assert_eq!(grant["state"], "active", "{grant}");
    assert_eq!(grant["credential"], true);
    assert!(roles.holds(&report_role, &username).await);
    let mut session =
        sqlx::PgConnection::connect(&format!("postgres://{username}@127.0.0.1:5432/test"))
            .await
            .expect("the credential logs in");

    // Collecting it again shows nothing: the password was shown once.
    let (status, again) = writ
        .post(
            &format!("/v1/grants/{grant_id}/credential"),
            &alice,
            json!({}),
        )
        .await;
    assert_eq!(
        (status, code(&again)),
        (409, "credential_already_issued"),
        "{again}"
    );

    // At expiry the login goes, with its session, and that is verified.
    let revoked = writ
        .wait_for_grant_state(
            grant_id.parse().expect("grant id"),
            &alice,
            Duration::from_secs(15),
            GrantState::Revoked,
        )
        .await;
    assert!(revoked.grant.verified_at.is_some(), "{revoked:?}");
    assert!(
        !login_exists(&admin, &username).await,
        "the login was dropped"
    );
    assert!(
        sqlx::query_scalar::<_, i32>("SELECT 1")
            .fetch_one(&mut session)
            .await
            .is_err(),
        "its open session was ended"
    );
    // Its evidence: the login of its own, removed at expiry and verified gone; the
    // password is in no event, so in no document.
    let document = writ.evidence(&grant_id);
    assert!(
        support::statement(&document, "subject").ends_with("(a login of its own, issued once)"),
        "{document:#}"
    );
    assert!(support::statement(&document, "revocation").ends_with(": expired"));
    assert!(
        support::statement(&document, "verification")
            .ends_with("read back from the target without the access")
    );

    // A user gets no credential; the service may ask for itself where policy says so.
    let (status, refused) = writ
        .post(
            "/v1/requests",
            &alice,
            json!({ "entitlement": "pg/report_db", "justification": "me", "duration_seconds": 60 }),
        )
        .await;
    assert_eq!(
        (status, code(&refused)),
        (422, "credential_for_services_only"),
        "{refused}"
    );
    let (status, own) = writ
        .post(
            "/v1/requests",
            &service,
            json!({ "entitlement": "pg/report_db", "justification": "self-service run", "duration_seconds": 60 }),
        )
        .await;
    assert_eq!(status, 201, "{own}");
    assert_eq!(own["requester"], "svc-report");
    assert!(own["credential"]["password"].is_string(), "{own}");
    let (_, denied) = writ
        .post(
            "/v1/requests",
            &service,
            json!({ "entitlement": "pg/admin_db", "justification": "more", "duration_seconds": 60 }),
        )
        .await;
    assert_eq!(denied["state"], "pending_approval", "{denied}");
    assert!(
        denied.get("credential").is_none(),
        "nothing to show before approval"
    );

    // After approval the requester collects it (the CLI), once.
    let request_id = denied["id"].as_str().expect("id").to_string();
    let (status, approved) = writ
        .post(
            &format!("/v1/requests/{request_id}/approve"),
            &dora,
            json!({ "comment": "ok" }),
        )
        .await;
    assert_eq!(status, 200, "{approved}");
    let pending_grant = approved["grant_id"].as_str().expect("grant").to_string();
    let (_, waiting) = writ
        .get(&format!("/v1/grants/{pending_grant}"), &alice)
        .await;
    assert_eq!(
        waiting["state"], "pending",
        "waits to be collected: {waiting}"
    );
    let (status, not_yours) = writ
        .post(
            &format!("/v1/grants/{pending_grant}/credential"),
            &dora,
            json!({}),
        )
        .await;
    assert_eq!(
        (status, code(&not_yours)),
        (403, "not_the_requester"),
        "{not_yours}"
    );
    let output = writ.run(&["credential", &pending_grant, "--token", &service, "--json"]);
    assert!(output.status.success(), "{}", support::stderr(&output));
    let collected: Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(collected["grant"]["state"], "active", "{collected}");
    let admin_login = collected["credential"]["username"]
        .as_str()
        .expect("username")
        .to_string();
    let admin_password = collected["credential"]["password"]
        .as_str()
        .expect("password")
        .to_string();
    assert!(roles.holds(&admin_role, &admin_login).await);

    // The passwords are nowhere writ keeps anything: ledger, database file, log.
    let export = writ.run(&["audit", "export"]);
    let ledger = support::stdout(&export);
    assert!(ledger.contains(&username), "the ledger names the login");
    let database = std::fs::read(writ.path("writ.db")).unwrap_or_default();
    let wal = std::fs::read(writ.path("writ.db-wal")).unwrap_or_default();
    assert!(!database.is_empty(), "the database is next to writ.toml");
    for secret in [&password, &admin_password] {
        assert!(!ledger.contains(secret.as_str()), "password in the ledger");
        assert!(!writ.log().contains(secret.as_str()), "password in the log");
        for bytes in [&database, &wal] {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "password in the database"
            );
        }
    }

    // Ending a credential grant early drops the login too.
    let (status, ended) = writ
        .post(
            &format!("/v1/grants/{pending_grant}/revoke"),
            &alice,
            json!({ "reason": "done" }),
        )
        .await;
    assert_eq!(status, 200, "{ended}");
    assert_eq!(ended["state"], "revoked", "{ended}");
    assert!(!login_exists(&admin, &admin_login).await);

    writ.stop();
    let verify = writ.run(&["audit", "verify"]);
    assert!(verify.status.success(), "{}", support::stderr(&verify));
    // The service's own credential is still live; end it so no login is left behind.
    let own_login = own["credential"]["username"].as_str().unwrap_or_default();
    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP ROLE IF EXISTS \"{own_login}\""
    )))
    .execute(&admin)
    .await;
    roles.cleanup().await;
}

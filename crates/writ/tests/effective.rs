//! What a grant really gives, end to end on a real PostgreSQL target: a role nested
//! behind writ's back in a superuser role is shown by `writ entitlements show`, warned
//! about by `writ policy check` (the entitlement is not marked critical), refused by a
//! policy that reads `context.effective`, and reported by reconciliation as
//! `entitlement_changed` for the grant approved before the change.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::{TestRoles, Writ};
use writ_domain::lifecycle::GrantState;

const POLICY: &str = r#"
@id("reports-auto") @max_duration("1h")
permit (principal, action == Action::"request", resource == Entitlement::"pg/reports");

@id("never-superuser")
@reason("this role reaches superuser on its target")
forbid (principal, action == Action::"request", resource)
when { context has effective && context.effective.superuser };
"#;

async fn run(sql: &str) {
    let admin = sqlx::PgPool::connect("postgres://postgres@127.0.0.1:5432/test")
        .await
        .expect("PostgreSQL");
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
        .execute(&admin)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

#[tokio::test]
async fn what_a_role_really_gives_is_shown_decided_on_and_watched() {
    let mut roles = TestRoles::new().await;
    let reports = roles.create("reports").await;
    let power = roles.create("power").await;
    let alice = roles.create("alice").await;
    let config = format!(
        r#"
[[target]]
name = "pg"
kind = "postgres"
url = "postgres://postgres@127.0.0.1:5432/test"
reconcile_every = "off"

[[entitlement]]
id = "pg/reports"
target = "pg"
role = "{reports}"
sensitivity = "low"
max_duration = "1h"

[[user]]
name = "alice"
accounts = {{ pg = "{alice}" }}
"#
    );
    let mut writ = Writ::new(&config, &[("policy.cedar", POLICY)]);
    let token = writ.token("alice");
    let check = writ.run(&["policy", "check"]);
    assert!(check.status.success(), "{}", support::stderr(&check));
    assert!(!support::stdout(&check).contains("mark it critical"));
    writ.start().await;

    // Approved while the role gives nothing special: the grant records that.
    let request = writ
        .request_access(
            &token,
            json!({ "entitlement": "pg/reports", "justification": "month end", "duration_seconds": 600 }),
        )
        .await;
    let grant_id = request.grant_id.expect("granted");
    let grant = writ
        .wait_for_grant_state(
            grant_id,
            &token,
            Duration::from_secs(15),
            GrantState::Active,
        )
        .await;
    let approved = grant.grant.effective.expect("what was approved");
    assert!(
        !approved.superuser && approved.roles.is_empty(),
        "{approved:?}"
    );

    // Behind writ's back, the role is nested in a superuser role.
    run(&format!("ALTER ROLE \"{power}\" SUPERUSER")).await;
    roles.set_by_hand(&power, &reports, true).await;

    let (status, detail) = writ.get("/v1/entitlements/pg/reports", &token).await;
    assert_eq!(status, 200, "{detail}");
    assert_eq!(detail["effective"]["superuser"], true, "{detail}");
    assert_eq!(detail["effective"]["roles"], json!([power]));
    assert!(
        detail["warning"]
            .as_str()
            .unwrap_or_default()
            .contains("mark it critical"),
        "{detail}"
    );
    let shown = writ.run(&["entitlements", "show", "pg/reports", "--token", &token]);
    let text = support::stdout(&shown);
    assert!(shown.status.success(), "{}", support::stderr(&shown));
    assert!(
        text.contains("superuser   YES") && text.contains(&power),
        "{text}"
    );
    assert!(text.contains("WARNING"), "{text}");
    let check = writ.run(&["policy", "check"]);
    assert!(
        support::stdout(&check).contains("warning: pg/reports reaches superuser"),
        "{}",
        support::stdout(&check)
    );

    // A new request is refused by policy; the live grant's change is a finding.
    let (status, refused) = writ
        .post(
            "/v1/requests",
            &token,
            json!({ "entitlement": "pg/reports", "justification": "again", "duration_seconds": 600 }),
        )
        .await;
    assert_eq!(status, 201, "{refused}");
    assert_eq!(refused["state"], "denied", "{refused}");
    assert_eq!(
        refused["decision"]["reasons"],
        json!(["this role reaches superuser on its target"])
    );
    let admin = writ.admin_token();
    let (status, _) = writ.post("/v1/reconcile", &admin, json!({})).await;
    assert_eq!(status, 200);
    let (_, findings) = writ
        .get("/v1/findings?kind=entitlement_changed", &admin)
        .await;
    let found: Vec<&Value> = findings["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .collect();
    assert_eq!(found.len(), 1, "{findings}");
    assert_eq!(found[0]["grant_id"], json!(grant_id.to_string()));
    assert_eq!(found[0]["change"]["roles_added"], json!([power]));
    assert_eq!(found[0]["change"]["superuser"], true);

    roles.set_by_hand(&power, &reports, false).await;
    roles.cleanup().await;
}

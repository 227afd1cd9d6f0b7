//! End to end: a toxic combination refused through the API against a real PostgreSQL
//! target — policy sees what the subject holds (`context.holds`) — and allowed again
//! once the other side is verified gone; the ledger replays it all.

mod support;

use std::time::Duration;

use serde_json::json;
use support::{PG_URL, TestRoles, Writ, stderr, stdout};
use writ_domain::lifecycle::GrantState;

const POLICIES: &[(&str, &str)] = &[(
    "payments.cedar",
    r#"
@id("finance") @max_duration("1h")
permit (principal in Group::"finance", action == Action::"request", resource);

@id("no-approve-with-create")
@reason("whoever can create payments cannot approve them")
forbid (principal, action == Action::"request", resource == Entitlement::"payments/approve")
when { context.holds.contains(Entitlement::"payments/create") };

@id("no-create-with-approve")
@reason("whoever can approve payments cannot create them")
forbid (principal, action == Action::"request", resource == Entitlement::"payments/create")
when { context.holds.contains(Entitlement::"payments/approve") };
"#,
)];

#[tokio::test]
async fn one_side_of_a_toxic_combination_is_refused_to_whoever_holds_the_other() {
    let mut roles = TestRoles::new().await;
    let create_role = roles.create("create").await;
    let approve_role = roles.create("approve").await;
    let alice_account = roles.create("alice").await;
    let config = format!(
        r#"
[[target]]
name = "payments"
kind = "postgres"
url = "{PG_URL}"

[[entitlement]]
id = "payments/create"
target = "payments"
role = "{create_role}"
sensitivity = "high"
max_duration = "1h"

[[entitlement]]
id = "payments/approve"
target = "payments"
role = "{approve_role}"
sensitivity = "high"
max_duration = "1h"

[[user]]
name = "alice"
groups = ["finance"]
accounts = {{ payments = "{alice_account}" }}
"#
    );
    let mut writ = Writ::new(&config, POLICIES);
    writ.start().await;
    let alice = writ.token("alice");
    let ask =
        |entitlement: &str| json!({ "entitlement": entitlement, "justification": "month end" });

    let (status, create) = writ
        .post("/v1/requests", &alice, ask("payments/create"))
        .await;
    assert_eq!(
        (status, create["state"].as_str()),
        (201, Some("approved")),
        "{create}"
    );
    let grant: writ_domain::GrantId = create["grant_id"]
        .as_str()
        .expect("grant")
        .parse()
        .expect("id");
    writ.wait_for_grant_state(grant, &alice, Duration::from_secs(10), GrantState::Active)
        .await;
    assert!(roles.holds(&create_role, &alice_account).await);

    // The preview and the request both refuse the other side, saying why.
    let (_, preview) = writ
        .post("/v1/requests/preview", &alice, ask("payments/approve"))
        .await;
    assert_eq!(preview["state"], "denied", "{preview}");
    let (status, refused) = writ
        .post("/v1/requests", &alice, ask("payments/approve"))
        .await;
    assert_eq!(
        (status, refused["state"].as_str()),
        (201, Some("denied")),
        "{refused}"
    );
    assert_eq!(
        refused["decision"]["reasons"],
        json!(["whoever can create payments cannot approve them"])
    );
    assert_eq!(refused["holds"], json!(["payments/create"]));
    assert!(!roles.holds(&approve_role, &alice_account).await);

    // Given back and verified gone: now the other side may be had.
    let (status, _) = writ
        .post(
            &format!("/v1/grants/{grant}/revoke"),
            &alice,
            json!({ "reason": "done" }),
        )
        .await;
    assert_eq!(status, 200);
    writ.wait_for_grant_state(grant, &alice, Duration::from_secs(10), GrantState::Revoked)
        .await;
    let (_, approve) = writ
        .post("/v1/requests", &alice, ask("payments/approve"))
        .await;
    assert_eq!(approve["state"], "approved", "{approve}");

    writ.stop();
    let verify = writ.run(&["audit", "verify"]);
    assert!(
        verify.status.success(),
        "{}{}",
        stdout(&verify),
        stderr(&verify)
    );
    roles.cleanup().await;
}

//! End to end: an access review through the CLI and the API against a real PostgreSQL
//! target, on PostgreSQL storage. An admin starts it; an owner revokes one grant and
//! writ takes the role off the target; nobody may decide their own access or an item
//! they are not a reviewer of; reviewers are reminded through a notify sink; at the
//! deadline the default revokes what nobody decided; `writ audit verify` replays it all
//! and catches a reviewer slipped into the database.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::sink::Sink;
use support::{PG_URL, TestDatabase, TestRoles, Writ, eventually, stderr, stdout};
use writ_domain::GrantId;
use writ_domain::lifecycle::GrantState;

const POLICIES: &[(&str, &str)] = &[(
    "reviews.cedar",
    r#"
@id("engineers-read")
permit (principal in Group::"engineers", action == Action::"request", resource);
"#,
)];

fn config(storage: &str, sink: &str, roles: &TestRoles, read_role: &str) -> String {
    let p = &roles.prefix;
    format!(
        r#"
[storage]
url = "{storage}"

[access]
admins = ["admins"]

[[target]]
name = "pg"
kind = "postgres"
url = "{PG_URL}"

[[entitlement]]
id = "pg/read"
target = "pg"
role = "{read_role}"
sensitivity = "high"
max_duration = "30d"
owners = "dba"

[[notify]]
name = "reviewers"
url = "{sink}"
events = ["review.*"]

[[user]]
name = "alice"
groups = ["engineers"]
accounts = {{ pg = "{p}_alice" }}

[[user]]
name = "bob"
groups = ["engineers"]
accounts = {{ pg = "{p}_bob" }}

[[user]]
name = "dora"
groups = ["dba", "engineers"]
accounts = {{ pg = "{p}_dora" }}

[[user]]
name = "erin"
groups = ["admins"]
"#
    )
}

#[tokio::test]
async fn a_review_revokes_on_the_target_reminds_and_applies_its_default() {
    let (sink, sink_url) = Sink::start().await;
    let mut roles = TestRoles::new().await;
    let read_role = roles.create("read").await;
    let alice_account = roles.create("alice").await;
    let bob_account = roles.create("bob").await;
    let dora_account = roles.create("dora").await;
    let database = TestDatabase::create().await;
    let mut writ = Writ::new(
        &config(&database.url, &sink_url, &roles, &read_role),
        POLICIES,
    );
    writ.start().await;
    let (alice, bob, dora, erin) = (
        writ.token("alice"),
        writ.token("bob"),
        writ.token("dora"),
        writ.token("erin"),
    );
    let mut grants = Vec::new();
    for token in [&alice, &bob, &dora] {
        let (status, request) = writ
            .post(
                "/v1/requests",
                token,
                json!({ "entitlement": "pg/read", "justification": "reports", "duration_seconds": 86400 }),
            )
            .await;
        assert_eq!(status, 201, "{request}");
        let grant: GrantId = request["grant_id"]
            .as_str()
            .and_then(|g| g.parse().ok())
            .expect("granted at once");
        writ.wait_for_grant_state(grant, &erin, Duration::from_secs(10), GrantState::Active)
            .await;
        grants.push(grant);
    }
    for account in [&alice_account, &bob_account, &dora_account] {
        assert!(
            roles.holds(&read_role, account).await,
            "{account} holds the role"
        );
    }

    // Only an admin starts a review.
    let refused = writ.run(&["review", "start", "q1", "--token", &dora]);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("not_an_admin"),
        "{}",
        stderr(&refused)
    );
    let started = writ.run(&[
        "review",
        "start",
        "q1 read access",
        "--entitlement",
        "pg/read",
        "--due",
        "6s",
        "--remind-every",
        "2s",
        "--json",
        "--token",
        &erin,
    ]);
    assert!(started.status.success(), "{}", stderr(&started));
    let started: Value = serde_json::from_str(&stdout(&started)).expect("json");
    let campaign = started["campaign"]["id"].as_str().expect("id").to_string();
    assert_eq!(started["progress"]["pending"], 3);
    let (status, items) = writ
        .get(&format!("/v1/reviews/{campaign}/items"), &erin)
        .await;
    assert_eq!(status, 200, "{items}");
    let item_of = |subject: &str| {
        items["items"]
            .as_array()
            .and_then(|all| all.iter().find(|i| i["subject"] == subject))
            .and_then(|i| i["id"].as_str())
            .expect("an item")
            .to_string()
    };
    let (alice_item, dora_item) = (item_of("alice"), item_of("dora"));

    // dora owns pg/read but does not review her own grant; alice is no reviewer.
    let decide = |decision: &str| json!({ "decision": decision, "comment": "looked" });
    let (status, refused) = writ
        .post(
            &format!("/v1/review-items/{dora_item}/decide"),
            &dora,
            decide("keep"),
        )
        .await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (403, Some("self_review"))
    );
    let (status, refused) = writ
        .post(
            &format!("/v1/review-items/{alice_item}/decide"),
            &alice,
            decide("keep"),
        )
        .await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (403, Some("self_review"))
    );
    let (status, refused) = writ
        .post(
            &format!("/v1/review-items/{alice_item}/decide"),
            &bob,
            decide("keep"),
        )
        .await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (403, Some("not_a_reviewer"))
    );

    // dora revokes alice's from the CLI: the role is off the target when it answers.
    let inbox = writ.run(&["review", "items", "--inbox", "--token", &dora]);
    assert!(stdout(&inbox).contains("alice"), "{}", stdout(&inbox));
    let revoked = writ.run(&[
        "review",
        "revoke",
        &format!("rvi_{}", &alice_item[alice_item.len() - 8..]),
        "-m",
        "left the reporting team",
        "--token",
        &dora,
    ]);
    assert!(revoked.status.success(), "{}", stderr(&revoked));
    assert!(stdout(&revoked).contains("revoked"), "{}", stdout(&revoked));
    assert!(!roles.holds(&read_role, &alice_account).await);

    // Reminded through the sink, then the deadline revokes bob's and dora's (nobody
    // decided them) through the same verified revocation.
    for grant in &grants[1..] {
        writ.wait_for_grant_state(*grant, &erin, Duration::from_secs(30), GrantState::Revoked)
            .await;
    }
    let gone = !roles.holds(&read_role, &bob_account).await
        && !roles.holds(&read_role, &dora_account).await;
    assert!(gone, "the default revoked what nobody decided");
    assert!(
        eventually(Duration::from_secs(15), || {
            let types = sink.types();
            types.contains(&"dev.writ.review.reminder.v1".to_string())
                && types.contains(&"dev.writ.review.campaign_closed.v1".to_string())
        })
        .await,
        "{:?}",
        sink.types()
    );
    let shown = writ.run(&["review", "show", &campaign, "--token", &erin]);
    assert!(
        stdout(&shown).contains("closed") && stdout(&shown).contains("(2 by default)"),
        "{}",
        stdout(&shown)
    );

    let verify = writ.run(&["audit", "verify"]);
    assert!(
        verify.status.success() && stdout(&verify).contains("3 review items"),
        "{}{}",
        stdout(&verify),
        stderr(&verify)
    );
    // Someone with database access makes bob a reviewer of dora's item: caught.
    writ.stop();
    let db = sqlx::PgPool::connect(&database.url)
        .await
        .expect("writ's database");
    sqlx::query("INSERT INTO review_assignments (reviewer, item, campaign) VALUES ('bob', $1, $2)")
        .bind(&dora_item)
        .bind(&campaign)
        .execute(&db)
        .await
        .expect("tamper");
    db.close().await;
    let verify = writ.run(&["audit", "verify"]);
    assert!(!verify.status.success());
    assert!(
        stderr(&verify).contains("review_assignments"),
        "{}",
        stderr(&verify)
    );
    roles.cleanup().await;
    database.drop_now().await;
}

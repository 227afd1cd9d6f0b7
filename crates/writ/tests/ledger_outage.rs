//! The ledger unavailable: writ's own PostgreSQL database is reached through a TCP
//! proxy the test cuts. No new grant is made (fail closed); a lease that expires
//! meanwhile is still taken off its target on time, and recorded — with when it was
//! removed — as soon as the database is back.

mod support;

use writ_domain::lifecycle::GrantState;

use std::time::{Duration, Instant};

use serde_json::json;
use support::{Proxy, TestDatabase, TestRoles, Writ};

// Multi-threaded: `writ token issue` and `audit verify` run as blocking child processes
// that reach the database through the proxy, which runs on this runtime.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_end_on_time_while_the_ledger_is_down_and_are_recorded_once_it_is_back() {
    let proxy = Proxy::start().await;
    let database = TestDatabase::create().await;
    let mut roles = TestRoles::new().await;
    let role = roles.create("read").await;
    let alice_account = roles.create("alice").await;
    let bob_account = roles.create("bob").await;
    let config = format!(
        r#"
[storage]
url = "postgres://postgres@127.0.0.1:{port}/{db}"

[[target]]
name = "pg"
kind = "postgres"
url = "postgres://postgres@127.0.0.1:5432/test"
reconcile_every = "off"

[[entitlement]]
id = "pg/read"
target = "pg"
role = "{role}"
sensitivity = "low"
max_duration = "1h"

[[user]]
name = "alice"
groups = ["engineers"]
accounts = {{ pg = "{alice_account}" }}

[[user]]
name = "bob"
groups = ["engineers"]
accounts = {{ pg = "{bob_account}" }}
"#,
        port = proxy.port,
        db = database.name
    );
    let policy =
        r#"permit (principal in Group::"engineers", action == Action::"request", resource);"#;
    let mut writ = Writ::new(&config, &[("request.cedar", policy)]);
    let (alice, bob) = (writ.token("alice"), writ.token("bob"));
    writ.start().await;

    let (status, request) = writ
        .post(
            "/v1/requests",
            &alice,
            json!({ "entitlement": "pg/read", "justification": "j", "duration_seconds": 3 }),
        )
        .await;
    assert_eq!(status, 201, "{request}");
    let grant_id = request["grant_id"].as_str().expect("grant").to_string();
    writ.wait_for_grant_state(
        grant_id.parse().expect("grant id"),
        &alice,
        Duration::from_secs(10),
        GrantState::Active,
    )
    .await;
    assert!(roles.holds(&role, &alice_account).await);
    // Let the scheduler take the new lease into its lookahead before the outage (it
    // reloads at most once a second while grants are being made).
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // The database goes away.
    proxy.set_up(false);
    let (status, refused) = writ
        .post(
            "/v1/requests",
            &bob,
            json!({ "entitlement": "pg/read", "justification": "j", "duration_seconds": 60 }),
        )
        .await;
    assert_eq!(status, 503, "{refused}");
    assert_eq!(refused["error"]["code"], "storage_unavailable", "{refused}");
    assert!(
        !roles.holds(&role, &bob_account).await,
        "fail closed: nothing granted that is not on the record"
    );

    // Alice's lease ends during the outage: the role goes anyway, within seconds.
    let expires_at = Instant::now() + Duration::from_secs(3);
    let deadline = expires_at + Duration::from_secs(10);
    while roles.holds(&role, &alice_account).await && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        !roles.holds(&role, &alice_account).await,
        "the expired lease was removed while the ledger was down: {}",
        writ.log()
    );

    // The node says it has lost its database, so a load balancer sends its calls
    // elsewhere and an operator sees why.
    let (health_status, health) = healthz(&writ).await;
    assert_eq!(health_status, 503, "{health}");
    assert!(health.contains("database unavailable"), "{health}");

    // The database returns: the revocation is recorded, verified, with when it happened.
    proxy.set_up(true);
    let revoked = writ
        .wait_for_grant_state(
            grant_id.parse().expect("grant id"),
            &alice,
            Duration::from_secs(20),
            GrantState::Revoked,
        )
        .await;
    assert_eq!(revoked.grant.state, GrantState::Revoked, "{revoked:?}");
    assert!(revoked.grant.verified_at.is_some(), "{revoked:?}");
    let (_, audit) = writ.get("/v1/audit?limit=1000", &writ.admin_token()).await;
    let events = audit["events"].as_array().cloned().unwrap_or_default();
    let revoked_event = events
        .iter()
        .find(|e| e["kind"] == "grant.revoked" && e["data"]["grant"]["id"] == grant_id.as_str())
        .expect("a grant.revoked event");
    assert!(
        revoked_event["data"]["removed_while_ledger_unavailable_at"].is_string(),
        "{revoked_event}"
    );
    assert_eq!(
        events
            .iter()
            .filter(|e| e["kind"] == "grant.created")
            .count(),
        1,
        "bob's refused request left nothing behind"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while healthz(&writ).await.0 != 200 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (health_status, health) = healthz(&writ).await;
    assert_eq!(
        health_status, 200,
        "healthy again once the database answers: {health}"
    );
    writ.stop();
    let verify = writ.run(&["audit", "verify"]);
    assert!(verify.status.success(), "{}", support::stderr(&verify));
    roles.cleanup().await;
    database.drop_now().await;
}

/// `GET /healthz`: status and body.
async fn healthz(writ: &Writ) -> (u16, String) {
    let response = writ
        .http
        .get(format!("{}/healthz", writ.base()))
        .send()
        .await
        .expect("healthz");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

//! Faults end to end: the PostgreSQL target is reached through a TCP proxy the test
//! controls, and cut around a grant's expiry.

mod support;

use writ_domain::lifecycle::GrantState;

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use support::{Proxy, TestRoles, Writ};
use tokio::net::TcpListener;

/// Collects the `type` of every CloudEvent posted to it: the on-call webhook.
async fn start_pager() -> (String, Arc<std::sync::Mutex<Vec<String>>>) {
    let received: Arc<std::sync::Mutex<Vec<String>>> = Arc::default();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/page", listener.local_addr().expect("addr"));
    let sink = received.clone();
    let app = axum::Router::new().route(
        "/page",
        axum::routing::post(move |body: axum::Json<serde_json::Value>| async move {
            if let Ok(mut types) = sink.lock() {
                types.push(body["type"].as_str().unwrap_or_default().to_string());
            }
            axum::http::StatusCode::ACCEPTED
        }),
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, received)
}

#[tokio::test]
async fn a_target_down_at_expiry_leaves_the_grant_failed_then_revoked_once_it_returns() {
    let proxy = Proxy::start().await;
    let (pager_url, paged) = start_pager().await;
    let mut roles = TestRoles::new().await;
    let role = roles.create("read").await;
    let account = roles.create("alice").await;
    let config = format!(
        r#"
[revocation]
retry_backoff_max = "1s"
escalate_after = "2s"

[[notify]]
name = "on-call"
url = "{pager_url}"
events = ["grant.revoke_escalated"]

[[target]]
name = "pg"
kind = "postgres"
url = "postgres://postgres@127.0.0.1:{port}/test"
circuit_cooldown = "2s"

[[entitlement]]
id = "pg/read"
target = "pg"
role = "{role}"
sensitivity = "low"
max_duration = "1h"

[[user]]
name = "alice"
groups = ["engineers"]
accounts = {{ pg = "{account}" }}
"#,
        port = proxy.port
    );
    let policy =
        r#"permit (principal in Group::"engineers", action == Action::"request", resource);"#;
    let mut writ = Writ::new(&config, &[("request.cedar", policy)]);
    writ.start().await;
    let alice = writ.token("alice");

    let (status, request) = writ
        .post(
            "/v1/requests",
            &alice,
            json!({ "entitlement": "pg/read", "justification": "j", "duration_seconds": 2 }),
        )
        .await;
    assert_eq!(status, 201, "{request}");
    let grant_id = request["grant_id"].as_str().expect("grant").to_string();
    let grant = writ
        .wait_for_grant_state(
            grant_id.parse().expect("grant id"),
            &alice,
            Duration::from_secs(10),
            GrantState::Active,
        )
        .await;
    assert_eq!(grant.grant.state, GrantState::Active, "{grant:?}");
    assert!(roles.holds(&role, &account).await);

    // The network to the target goes away before the lease expires.
    proxy.set_up(false);
    let failed = writ
        .wait_for_grant_state(
            grant_id.parse().expect("grant id"),
            &alice,
            Duration::from_secs(15),
            GrantState::Failed,
        )
        .await;
    assert_eq!(failed.grant.state, GrantState::Failed, "{failed:?}");
    assert!(
        failed.last_error.as_deref().is_some_and(|e| !e.is_empty()),
        "the error is shown: {failed:?}"
    );
    let first_attempts = failed.attempts;
    assert!(
        roles.holds(&role, &account).await,
        "the target could not be reached, so it still holds the role"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (_, still) = writ.get(&format!("/v1/grants/{grant_id}"), &alice).await;
    assert!(
        still["attempts"].as_i64().unwrap_or(0) > first_attempts,
        "retries continue: {still}"
    );
    // Failing for longer than escalate_after: escalated once, and the on-call webhook told.
    assert!(still["escalated_at"].is_string(), "{still}");
    for _ in 0..50 {
        if paged.lock().map(|p| !p.is_empty()).unwrap_or(false) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        paged.lock().map(|p| p.clone()).unwrap_or_default(),
        ["dev.writ.grant.revoke_escalated.v1"]
    );
    let (_, metrics) = writ
        .call(reqwest::Method::GET, "/metrics", Some(&alice), None)
        .await;
    assert!(
        metrics
            .as_str()
            .is_some_and(|m| m.contains("writ_failed_revocations 1")
                && m.contains("writ_escalated_revocations 1")),
        "{metrics}"
    );

    // The target returns: within seconds the grant is revoked and verified gone.
    proxy.set_up(true);
    let revoked = writ
        .wait_for_grant_state(
            grant_id.parse().expect("grant id"),
            &alice,
            Duration::from_secs(10),
            GrantState::Revoked,
        )
        .await;
    assert_eq!(revoked.grant.state, GrantState::Revoked, "{revoked:?}");
    assert!(revoked.grant.verified_at.is_some(), "{revoked:?}");
    assert!(
        !roles.holds(&role, &account).await,
        "the role is gone from PostgreSQL"
    );

    let (_, audit) = writ.get("/v1/audit?limit=1000", &writ.admin_token()).await;
    let kinds: Vec<&str> = audit["events"]
        .as_array()
        .map(|events| events.iter().filter_map(|e| e["kind"].as_str()).collect())
        .unwrap_or_default();
    let count = |kind: &str| kinds.iter().filter(|k| **k == kind).count();
    assert_eq!(
        (
            count("grant.revoke_failed"),
            count("grant.revoke_escalated"),
            count("grant.revoked")
        ),
        (1, 1, 1),
        "{kinds:?}"
    );
    let verify = writ.run(&["audit", "verify"]);
    assert!(verify.status.success(), "{}", support::stderr(&verify));
    writ.stop();
    roles.cleanup().await;
}

/// A revocation stuck behind someone else's lock (a DBA's open transaction on the
/// very membership) waits only until its target's call_timeout, and holds back nothing
/// on another target; once the lock is gone, it completes.
#[tokio::test]
async fn a_target_stuck_on_a_lock_delays_no_other_target() {
    let mut roles = TestRoles::new().await;
    let stuck_role = roles.create("stuck").await;
    let free_role = roles.create("free").await;
    let account = roles.create("alice").await;
    let config = format!(
        r#"
[revocation]
retry_backoff_max = "1s"

[[target]]
name = "slow"
kind = "postgres"
url = "postgres://postgres@127.0.0.1:5432/test"
call_timeout = "3s"

[[target]]
name = "fast"
kind = "postgres"
url = "postgres://postgres@127.0.0.1:5432/test"

[[entitlement]]
id = "slow/role"
target = "slow"
role = "{stuck_role}"
sensitivity = "low"
max_duration = "1h"

[[entitlement]]
id = "fast/role"
target = "fast"
role = "{free_role}"
sensitivity = "low"
max_duration = "1h"

[[user]]
name = "alice"
groups = ["engineers"]
accounts = {{ slow = "{account}", fast = "{account}" }}
"#
    );
    let policy =
        r#"permit (principal in Group::"engineers", action == Action::"request", resource);"#;
    let mut writ = Writ::new(&config, &[("request.cedar", policy)]);
    writ.start().await;
    let alice = writ.token("alice");
    let mut grants = Vec::new();
    for entitlement in ["slow/role", "fast/role"] {
        let (status, request) = writ
            .post(
                "/v1/requests",
                &alice,
                json!({ "entitlement": entitlement, "justification": "j", "duration_seconds": 3 }),
            )
            .await;
        assert_eq!(status, 201, "{request}");
        grants.push(request["grant_id"].as_str().expect("grant").to_string());
    }
    for grant in &grants {
        let active = writ
            .wait_for_grant_state(
                grant.parse().expect("grant id"),
                &alice,
                Duration::from_secs(10),
                GrantState::Active,
            )
            .await;
        assert_eq!(active.grant.state, GrantState::Active, "{active:?}");
    }

    // A DBA's transaction takes the same membership away and stays open: writ's own
    // REVOKE of it must wait for that row.
    let mut dba = <sqlx::PgConnection as sqlx::Connection>::connect(support::PG_URL)
        .await
        .expect("dba");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "BEGIN; REVOKE \"{stuck_role}\" FROM \"{account}\""
    )))
    .execute(&mut dba)
    .await
    .expect("open transaction holding the row");

    let fast = writ
        .wait_for_grant_state(
            grants[1].parse().expect("grant id"),
            &alice,
            Duration::from_secs(15),
            GrantState::Revoked,
        )
        .await;
    assert_eq!(fast.grant.state, GrantState::Revoked, "{fast:?}");
    let lag_ms = |view: &writ_api::GrantView| {
        let verified_at = view.grant.verified_at.expect("verified");
        verified_at.millis_since(view.grant.expires_at)
    };
    // At most the stuck target's deadline (3 s) plus a little: without a deadline it
    // would wait for as long as the DBA's transaction stays open.
    assert!(
        lag_ms(&fast) < 4500,
        "the other target was held back: revoked {} ms after expiry",
        lag_ms(&fast)
    );

    let stuck = writ
        .wait_for_grant_state(
            grants[0].parse().expect("grant id"),
            &alice,
            Duration::from_secs(15),
            GrantState::Failed,
        )
        .await;
    assert_eq!(stuck.grant.state, GrantState::Failed, "{stuck:?}");
    assert!(
        roles.holds(&stuck_role, &account).await,
        "the DBA has not committed"
    );

    sqlx::raw_sql("ROLLBACK")
        .execute(&mut dba)
        .await
        .expect("rollback");
    let done = writ
        .wait_for_grant_state(
            grants[0].parse().expect("grant id"),
            &alice,
            Duration::from_secs(20),
            GrantState::Revoked,
        )
        .await;
    assert_eq!(done.grant.state, GrantState::Revoked, "{done:?}");
    assert!(!roles.holds(&stuck_role, &account).await);
    writ.stop();
    roles.cleanup().await;
}

//! Faults end to end: the PostgreSQL target is reached through a TCP proxy the test
//! controls, and cut around a grant's expiry.

mod support;

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
        .wait_for_grant(&grant_id, &alice, Duration::from_secs(10), |g| {
            g["state"] == "active"
        })
        .await;
    assert_eq!(grant["state"], "active", "{grant}");
    assert!(roles.holds(&role, &account).await);

    // The network to the target goes away before the lease expires.
    proxy.set_up(false);
    let failed = writ
        .wait_for_grant(&grant_id, &alice, Duration::from_secs(15), |g| {
            g["state"] == "failed"
        })
        .await;
    assert_eq!(failed["state"], "failed", "{failed}");
    assert!(
        failed["last_error"].as_str().is_some_and(|e| !e.is_empty()),
        "the error is shown: {failed}"
    );
    let first_attempts = failed["attempts"].as_i64().unwrap_or(0);
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
        .wait_for_grant(&grant_id, &alice, Duration::from_secs(10), |g| {
            g["state"] == "revoked"
        })
        .await;
    assert_eq!(revoked["state"], "revoked", "{revoked}");
    assert!(revoked["verified_at"].is_string(), "{revoked}");
    assert!(
        !roles.holds(&role, &account).await,
        "the role is gone from PostgreSQL"
    );

    let (_, audit) = writ.get("/v1/audit?limit=1000", &alice).await;
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

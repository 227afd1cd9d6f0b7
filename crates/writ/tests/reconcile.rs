//! Reconciliation end to end: the real binary, a real PostgreSQL target changed by
//! hand behind writ's back, the periodic pass, the CLI, and an exception that expires.

mod support;

use writ_domain::lifecycle::GrantState;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{TestRoles, Writ};

async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting until {what}");
}

fn open_finding_for(findings: &Value, account: &str) -> Option<Value> {
    findings["findings"]
        .as_array()?
        .iter()
        .find(|f| f["account"] == account)
        .cloned()
}

#[tokio::test]
async fn drift_made_by_hand_is_found_acted_on_and_excepted() {
    let mut roles = TestRoles::new().await;
    let role = roles.create("read").await;
    let alice_account = roles.create("alice").await;
    let stray = roles.create("stray").await;
    let config = format!(
        r#"
[[target]]
name = "pg"
kind = "postgres"
url = "postgres://postgres@127.0.0.1:5432/test"
reconcile_every = "1s"

[[entitlement]]
id = "pg/read"
target = "pg"
role = "{role}"
sensitivity = "low"
max_duration = "1h"
owners = "dba"

[[user]]
name = "alice"
groups = ["engineers"]
accounts = {{ pg = "{alice_account}" }}

[[user]]
name = "erin"
groups = ["dba"]
"#
    );
    let policy =
        r#"permit (principal in Group::"engineers", action == Action::"request", resource);"#;
    let mut writ = Writ::new(&config, &[("request.cedar", policy)]);
    writ.start().await;
    let alice = writ.token("alice");
    let erin = writ.token("erin");

    let (status, request) = writ
        .post(
            "/v1/requests",
            &alice,
            json!({ "entitlement": "pg/read", "justification": "j", "duration_seconds": 600 }),
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

    // By hand: the role given to an account writ never granted, and taken from alice.
    roles.set_by_hand(&role, &stray, true).await;
    roles.set_by_hand(&role, &alice_account, false).await;

    // The periodic pass puts alice's role back (missing → reapply) and reports the stray.
    wait_until(
        "alice holds the role again",
        Duration::from_secs(10),
        || roles.holds(&role, &alice_account),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let stray_finding = loop {
        let (_, open) = writ.get("/v1/findings?state=open", &erin).await;
        if let Some(finding) = open_finding_for(&open, &stray) {
            break finding;
        }
        assert!(
            Instant::now() < deadline,
            "the stray account never became a finding: {open}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(stray_finding["kind"], "unmanaged", "{stray_finding}");
    assert_eq!(stray_finding["action"], "report");
    assert!(
        roles.holds(&role, &stray).await,
        "unmanaged access is reported, not removed"
    );
    let (_, resolved) = writ
        .get("/v1/findings?state=resolved&kind=missing", &erin)
        .await;
    let missing = open_finding_for(&resolved, &alice_account).expect("the missing finding");
    assert_eq!(missing["resolution"], "reapplied", "{missing}");
    assert_eq!(missing["grant_id"], grant_id.as_str());

    // The CLI: a pass on demand and the list.
    // Starting a pass is for auditors and admins; the entitlement's owner reads the findings.
    let output = writ.run(&["reconcile", "--token", &writ.admin_token(), "--json"]);
    assert!(output.status.success(), "{}", support::stderr(&output));
    let reports: Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(reports["reports"][0]["target"], "pg", "{reports}");
    assert_eq!(reports["reports"][0]["unresolved"], 1, "{reports}");
    let output = writ.run(&["findings", "--token", &erin]);
    let listed = support::stdout(&output);
    assert!(
        listed.contains(&stray) && listed.contains("unmanaged"),
        "{listed}"
    );

    // Bad input: a malformed filter and an expiry that is not one.
    let (status, body) = writ.get("/v1/findings?state=closed", &alice).await;
    assert_eq!(status, 400, "{body}");
    let id = stray_finding["id"].as_str().expect("id").to_string();
    let output = writ.run(&[
        "findings",
        "accept",
        &id,
        "--owner",
        "erin",
        "--reason",
        "r",
        "--expires",
        "soon",
        "--token",
        &erin,
    ]);
    assert_eq!(
        output.status.code(),
        Some(2),
        "{}",
        support::stderr(&output)
    );

    // Alice does not own the entitlement; erin (dba) does. The exception runs out in 2 s.
    let (status, body) = writ
        .post(
            &format!("/v1/findings/{id}/accept"),
            &alice,
            json!({ "owner": "alice", "reason": "mine", "expires_at": "2099-01-01T00:00:00Z" }),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    let output = writ.run(&[
        "findings",
        "accept",
        &id,
        "--owner",
        "erin",
        "--reason",
        "legacy report job, OPS-12",
        "--expires",
        "2s",
        "--token",
        &erin,
    ]);
    assert!(output.status.success(), "{}", support::stderr(&output));
    assert!(support::stdout(&output).contains("legacy report job"));
    let (_, accepted) = writ.get(&format!("/v1/findings/{id}"), &erin).await;
    assert_eq!(accepted["state"], "accepted", "{accepted}");
    wait_until(
        "the exception expires and the finding reopens",
        Duration::from_secs(10),
        || async {
            let (_, finding) = writ.get(&format!("/v1/findings/{id}"), &erin).await;
            finding["state"] == "open"
        },
    )
    .await;

    let (_, metrics) = writ
        .call(reqwest::Method::GET, "/metrics", Some(&alice), None)
        .await;
    let metrics = metrics.as_str().unwrap_or_default().to_string();
    assert!(
        metrics.lines().any(|l| l.starts_with("writ_findings{")
            && l.contains("kind=\"unmanaged\"")
            && l.contains("state=\"open\"")
            && l.ends_with(" 1")),
        "{metrics}"
    );
    let (_, audit) = writ.get("/v1/audit?limit=1000", &writ.admin_token()).await;
    let kinds: Vec<&str> = audit["events"]
        .as_array()
        .map(|events| events.iter().filter_map(|e| e["kind"].as_str()).collect())
        .unwrap_or_default();
    for kind in [
        "finding.opened",
        "finding.resolved",
        "finding.accepted",
        "finding.reopened",
    ] {
        assert!(kinds.contains(&kind), "{kind} in {kinds:?}");
    }
    writ.stop();
    let verify = writ.run(&["audit", "verify"]);
    assert!(verify.status.success(), "{}", support::stderr(&verify));

    // The findings table is checked against the ledger like the others.
    let db = sqlx::SqlitePool::connect(&format!("sqlite://{}", writ.path("writ.db").display()))
        .await
        .expect("writ's database");
    sqlx::query("UPDATE findings SET state = 'resolved' WHERE id = $1")
        .bind(&id)
        .execute(&db)
        .await
        .expect("tamper");
    db.close().await;
    let verify = writ.run(&["audit", "verify"]);
    assert!(!verify.status.success());
    let problem = support::stderr(&verify);
    assert!(
        problem.contains("findings row") && problem.contains(&id),
        "{problem}"
    );
    roles.cleanup().await;
}

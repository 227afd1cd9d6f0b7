//! Policies replaced while writ runs: `writ policy reload` (admins) and SIGHUP put the
//! folder's set in force at once and record it on the ledger; a set that does not load
//! is refused and the one in force kept.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::{NOOP_CONFIG, Writ, stderr, stdout};

const PERMIT: &str =
    r#"@id("anyone-reads") permit (principal, action == Action::"request", resource);"#;
const FORBID: &str =
    r#"@id("nobody-reads") forbid (principal, action == Action::"request", resource);"#;

/// Asks for t/read as alice: the request's state and the policy-set hash it was
/// decided under.
async fn ask(writ: &Writ, alice: &str) -> (String, String) {
    let (status, request) = writ
        .post(
            "/v1/requests",
            alice,
            json!({"entitlement": "t/read", "justification": "reading", "duration_seconds": 60}),
        )
        .await;
    assert_eq!(status, 201, "{request}");
    (
        request["state"].as_str().unwrap_or_default().to_string(),
        request["decision"]["policy_hash"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}

fn policy_file(writ: &Writ, text: &str) {
    std::fs::write(writ.path("policies/p.cedar"), text).expect("policy");
}

#[tokio::test]
async fn a_reloaded_policy_set_decides_from_then_on_and_is_on_the_ledger() {
    let mut writ = Writ::new(NOOP_CONFIG, &[("p.cedar", PERMIT)]);
    writ.start().await;
    let (alice, admin) = (writ.token("alice"), writ.admin_token());
    let (state, permit_hash) = ask(&writ, &alice).await;
    assert_eq!(state, "approved");

    // An admin reloads a set that forbids it: the next request is denied under it.
    policy_file(&writ, FORBID);
    let output = writ.run(&["policy", "reload", "--token", &admin]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).starts_with("policies reloaded"),
        "{}",
        stdout(&output)
    );
    let (state, forbid_hash) = ask(&writ, &alice).await;
    assert_eq!(state, "denied");
    assert_ne!(forbid_hash, permit_hash);

    // Reloading the same set changes nothing and records nothing.
    let output = writ.run(&["policy", "reload", "--token", &admin]);
    assert!(stdout(&output).contains("already"), "{}", stdout(&output));

    // A set that does not load is refused, and the one in force stays.
    policy_file(
        &writ,
        "permit (principal, action == Action::\"request\", resource",
    );
    let output = writ.run(&["policy", "reload", "--token", &admin]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("invalid_policy"),
        "{}",
        stderr(&output)
    );
    assert_eq!(
        ask(&writ, &alice).await,
        ("denied".into(), forbid_hash.clone())
    );

    // Only admins reload.
    policy_file(&writ, PERMIT);
    let output = writ.run(&["policy", "reload", "--token", &alice]);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert_eq!(ask(&writ, &alice).await.0, "denied");

    // SIGHUP does what `writ policy reload` does.
    writ.signal("HUP");
    let mut reloaded = false;
    for _ in 0..50 {
        if ask(&writ, &alice).await == ("approved".into(), permit_hash.clone()) {
            reloaded = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        reloaded,
        "SIGHUP did not reload the policies: {}",
        writ.log()
    );

    let (_, audit) = writ.get("/v1/audit", &admin).await;
    let reloads: Vec<(String, String, String)> = audit["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["kind"] == "policy.reloaded")
        .map(|e| {
            let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
            (
                text(&e["actor"]),
                text(&e["data"]["previous_hash"]),
                text(&e["data"]["policy_hash"]),
            )
        })
        .collect();
    assert_eq!(
        reloads,
        [
            (
                support::ADMIN.to_string(),
                permit_hash.clone(),
                forbid_hash.clone()
            ),
            ("writ:signal".to_string(), forbid_hash, permit_hash),
        ]
    );
    let verify = writ.run(&["audit", "verify"]);
    assert!(verify.status.success(), "{}", stderr(&verify));
}

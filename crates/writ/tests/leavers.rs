//! A leaver keeps nothing: an identity disabled in the configuration has every lease
//! revoked and verified (reason `leaver`), and its tokens revoked on the ledger — so
//! none works again, even if it is enabled later.

mod support;

use std::time::Duration;

use serde_json::json;
use support::{NOOP_CONFIG, Writ, stderr};
use writ_domain::lifecycle::GrantState;

const POLICY: &str = r#"permit (principal, action == Action::"request", resource);"#;

#[tokio::test]
async fn a_disabled_identity_loses_its_leases_and_its_tokens() {
    let mut writ = Writ::new(NOOP_CONFIG, &[("p.cedar", POLICY)]);
    let alice = writ.token("alice");
    writ.start().await;
    let request = writ
        .request_access(
            &alice,
            json!({"entitlement": "t/read", "justification": "work", "duration_seconds": 3600}),
        )
        .await;
    let grant = request.grant_id.expect("granted at once");
    let admin = writ.admin_token();
    writ.wait_for_grant_state(grant, &admin, Duration::from_secs(10), GrantState::Active)
        .await;

    // Alice leaves: disabled in the configuration, effective when writ starts with it.
    writ.stop();
    writ.replace_in_config("name = \"alice\"\n", "name = \"alice\"\ndisabled = true\n");
    writ.start().await;
    let view = writ
        .wait_for_grant_state(grant, &admin, Duration::from_secs(15), GrantState::Revoked)
        .await;
    assert_eq!(
        view.grant.revoke_reason.as_ref().map(|r| r.as_str()),
        Some("leaver")
    );
    assert!(view.grant.verified_at.is_some(), "{view:?}");

    // Her token is revoked on the ledger, so enabling her again does not revive it.
    let revoked_tokens = || async {
        let (_, audit) = writ.get("/v1/audit", &admin).await;
        audit["events"]
            .as_array()
            .expect("events")
            .iter()
            .filter(|e| e["kind"] == "token.revoked" && e["data"]["identity"] == "alice")
            .map(|e| (e["actor"].clone(), e["data"]["reason"].clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        revoked_tokens().await,
        [(json!("writ:scheduler"), json!("leaver"))]
    );
    writ.stop();
    writ.replace_in_config("disabled = true\n", "");
    writ.start().await;
    let (status, body) = writ.get("/v1/whoami", &alice).await;
    assert_eq!(status, 401, "{body}");
    let verify = writ.run(&["audit", "verify"]);
    assert!(verify.status.success(), "{}", stderr(&verify));
}

//! A leaver keeps nothing: an identity disabled in the configuration has every lease
//! revoked and verified (reason `leaver`), and its tokens revoked on the ledger — so
//! none works again, even if it is enabled later.

mod support;

use std::time::Duration;

use serde_json::json;
use support::{NOOP_CONFIG, Writ, stderr};
use writ_domain::lifecycle::GrantState;

const POLICY: &str = r#"
permit (principal, action == Action::"request", resource == Entitlement::"t/read");
@approvals("1")
permit (principal, action == Action::"request", resource == Entitlement::"t/admin");
"#;

/// NOOP_CONFIG and an entitlement that needs an approval.
fn config() -> String {
    format!(
        "{NOOP_CONFIG}\n[[entitlement]]\nid = \"t/admin\"\ntarget = \"t\"\nrole = \"admin\"\n\
         sensitivity = \"high\"\nmax_duration = \"1h\"\n"
    )
}

#[tokio::test]
async fn a_disabled_identity_loses_its_leases_and_its_tokens() {
    let mut writ = Writ::new(&config(), &[("p.cedar", POLICY)]);
    let alice = writ.token("alice");
    writ.start().await;
    let pending = writ
        .request_access(
            &alice,
            json!({"entitlement": "t/admin", "justification": "needs a yes"}),
        )
        .await;
    assert_eq!(pending.state.as_str(), "pending_approval");
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
    // Her request still waiting for approval is cancelled, by writ, saying why.
    let (_, cancelled) = writ
        .get(&format!("/v1/requests/{}", pending.id), &admin)
        .await;
    assert_eq!(
        (
            cancelled["state"].as_str(),
            cancelled["close_comment"].as_str()
        ),
        (Some("cancelled"), Some("leaver: alice left")),
        "{cancelled}"
    );

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

#[tokio::test]
async fn no_grant_runs_past_an_identitys_end_date_and_then_it_is_a_leaver() {
    let ends = time::OffsetDateTime::now_utc() + time::Duration::seconds(4);
    let ends_text = ends
        .format(&time::format_description::well_known::Rfc3339)
        .expect("RFC 3339");
    let mut writ = Writ::new(
        &config().replace(
            "name = \"alice\"\n",
            &format!("name = \"alice\"\nvalid_until = \"{ends_text}\"\n"),
        ),
        &[("p.cedar", POLICY)],
    );
    let alice = writ.token("alice");
    writ.start().await;
    let request = writ
        .request_access(
            &alice,
            json!({"entitlement": "t/read", "justification": "last day", "duration_seconds": 3600}),
        )
        .await;
    assert!(request.duration_seconds <= 4, "{request:?}");
    let grant = request.grant_id.expect("granted at once");
    let admin = writ.admin_token();
    let view = writ.grant(grant, &admin).await;
    assert!(
        view.grant.expires_at.unix_micros() <= ends.unix_timestamp() * 1_000_000 + 1_000_000,
        "{view:?}"
    );
    let view = writ
        .wait_for_grant_state(grant, &admin, Duration::from_secs(20), GrantState::Revoked)
        .await;
    assert!(view.grant.verified_at.is_some(), "{view:?}");
    // The lease ended (within the last second before the end date); now the end date
    // itself passes.
    let left = ends - time::OffsetDateTime::now_utc() + time::Duration::milliseconds(200);
    if left.is_positive() {
        tokio::time::sleep(Duration::from_millis(left.whole_milliseconds() as u64)).await;
    }
    let (status, body) = writ.get("/v1/whoami", &alice).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("token_identity_disabled")),
        "{body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("ended at")
    );
    // `writ identities` says so, and where writ knows her from.
    let listing = writ.run(&["identities", "--token", &admin]);
    let line = support::stdout(&listing)
        .lines()
        .find(|l| l.starts_with("alice "))
        .map(str::to_string)
        .unwrap_or_default();
    assert!(line.contains("config") && line.contains("ended"), "{line}");

    // An end date that is not a time is a configuration error, named.
    writ.stop();
    writ.replace_in_config(&ends_text, "next friday");
    let output = writ.run(&["policy", "check"]);
    assert!(
        stderr(&output).contains("user[0].valid_until: \"next friday\" is not an RFC 3339 time"),
        "{}",
        stderr(&output)
    );
}

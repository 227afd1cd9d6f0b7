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
    // Her request still waiting for approval is cancelled, by writ, saying why (in the
    // same sweep, after her leases).
    let mut cancelled = json!(null);
    for _ in 0..50 {
        cancelled = writ
            .get(&format!("/v1/requests/{}", pending.id), &admin)
            .await
            .1;
        if cancelled["state"] != "pending_approval" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
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

/// An approval given by someone who has since left stops counting on requests still
/// pending: the request needs its approvals from people who are still here.
#[tokio::test]
async fn a_leavers_approvals_on_pending_requests_are_voided() {
    let policy = r#"
@approvals("2")
permit (principal, action == Action::"request", resource == Entitlement::"t/admin");
permit (principal in Group::"approvers", action == Action::"approve", resource);
"#;
    let config = config()
        + "\n[[user]]\nname = \"carol\"\ngroups = [\"approvers\"]\n\
           \n[[user]]\nname = \"bob\"\ngroups = [\"approvers\"]\n";
    let mut writ = Writ::new(&config, &[("p.cedar", policy)]);
    let (alice, carol, bob) = (writ.token("alice"), writ.token("carol"), writ.token("bob"));
    writ.start().await;
    let request = writ
        .request_access(
            &alice,
            json!({"entitlement": "t/admin", "justification": "needs two"}),
        )
        .await;
    let approve = format!("/v1/requests/{}/approve", request.id);
    let (status, body) = writ.post(&approve, &carol, json!({"comment": "ok"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["approvals"].as_array().map(Vec::len), Some(1));

    // Carol leaves.
    writ.stop();
    writ.replace_in_config("name = \"carol\"\n", "name = \"carol\"\ndisabled = true\n");
    writ.start().await;
    let admin = writ.admin_token();
    let path = format!("/v1/requests/{}", request.id);
    let mut voided = false;
    for _ in 0..100 {
        let (_, now) = writ.get(&path, &admin).await;
        if now["approvals"].as_array().is_some_and(Vec::is_empty) {
            assert_eq!(now["state"], "pending_approval");
            voided = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(voided, "carol's approval still counts: {}", writ.log());

    // Bob's approval alone is one of two: still pending.
    let (status, body) = writ.post(&approve, &bob, json!({"comment": "ok"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], "pending_approval", "{body}");

    let (_, audit) = writ.get("/v1/audit", &admin).await;
    let events: Vec<_> = audit["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["kind"] == "request.approval_voided")
        .collect();
    assert_eq!(events.len(), 1, "{audit}");
    assert_eq!(events[0]["actor"], "writ:scheduler");
    assert_eq!(events[0]["data"]["voided"][0]["approver"], "carol");
    assert_eq!(events[0]["data"]["reason"], "leaver");
    let verify = writ.run(&["audit", "verify"]);
    assert!(verify.status.success(), "{}", stderr(&verify));
}

/// A service whose owner left answers to nobody: writ records it at once (naming whom
/// to tell), gives it nothing new, and disables it after `identities.orphan_grace`
/// without a new owner — revoking what it holds — until someone takes it on.
#[tokio::test]
async fn an_orphaned_service_is_disabled_after_the_grace_period() {
    let policy =
        r#"permit (principal, action == Action::"request", resource == Entitlement::"t/svc");"#;
    let config = config()
        + "\n[[entitlement]]\nid = \"t/svc\"\ntarget = \"t\"\nrole = \"svc\"\nsensitivity = \"low\"\n\
           max_duration = \"1h\"\nowners = \"platform\"\n\
           \n[[user]]\nname = \"dave\"\n\
           \n[[service]]\nname = \"svc\"\nowner = \"alice\"\n";
    let config = config.replace(
        "name = \"alice\"\n",
        "name = \"alice\"\nmanager = \"dave\"\n",
    );
    let mut writ = Writ::new(&config, &[("p.cedar", policy)]);
    let svc = writ.token("svc");
    writ.start().await;
    let ask =
        json!({"entitlement": "t/svc", "justification": "nightly job", "duration_seconds": 3600});
    let grant = writ
        .request_access(&svc, ask.clone())
        .await
        .grant_id
        .expect("granted");
    let admin = writ.admin_token();
    writ.wait_for_grant_state(grant, &admin, Duration::from_secs(10), GrantState::Active)
        .await;

    // Alice, its owner, leaves; the grace period is three seconds.
    writ.stop();
    writ.replace_in_config("name = \"alice\"\n", "name = \"alice\"\ndisabled = true\n");
    let text = std::fs::read_to_string(writ.path("writ.toml")).expect("config");
    std::fs::write(
        writ.path("writ.toml"),
        format!("{text}\n[identities]\norphan_grace = \"3s\"\n"),
    )
    .expect("config");
    writ.start().await;
    let admin = writ.admin_token();
    let orphaned = first_events(&writ, &admin, "identity.orphaned").await;
    assert_eq!(orphaned.len(), 1, "{}", writ.log());
    let data = &orphaned[0]["data"];
    assert_eq!(
        (&data["identity"], &data["owner"], &data["notify"]),
        (
            &json!("svc"),
            &json!("alice"),
            &json!({"manager": "dave", "entitlement_owners": ["platform"]})
        ),
        "{data}"
    );
    // Nobody answers for it: nothing new, though it still holds what it had.
    let (status, body) = writ.post("/v1/requests", &svc, ask.clone()).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("subject_orphaned")),
        "{body}"
    );

    // The grace passes without a new owner: disabled, and a leaver.
    let view = writ
        .wait_for_grant_state(grant, &admin, Duration::from_secs(20), GrantState::Revoked)
        .await;
    assert_eq!(
        view.grant.revoke_reason.as_ref().map(|r| r.as_str()),
        Some("leaver")
    );
    assert_eq!(
        first_events(&writ, &admin, "identity.orphan_disabled")
            .await
            .len(),
        1
    );
    // Its tokens are revoked, and a new one does not authenticate it either.
    let (status, body) = writ.get("/v1/whoami", &svc).await;
    assert_eq!(status, 401, "{body}");
    let (status, body) = writ.get("/v1/whoami", &writ.token("svc")).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("token_identity_disabled")),
        "{body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("its owner left"),
        "{body}"
    );
    let (_, listing) = writ.get("/v1/identities?orphaned=true", &admin).await;
    let svc_view = &listing["identities"][0];
    assert_eq!(
        (
            &svc_view["name"],
            &svc_view["disabled"],
            &svc_view["orphaned"]
        ),
        (&json!("svc"), &json!(true), &json!(true)),
        "{listing}"
    );

    // Dave takes it on: adopted, and no longer disabled.
    writ.stop();
    writ.replace_in_config("owner = \"alice\"", "owner = \"dave\"");
    writ.start().await;
    let adopted = first_events(&writ, &admin, "identity.adopted").await;
    assert_eq!(adopted.len(), 1, "{}", writ.log());
    assert_eq!(adopted[0]["data"]["owner"], "dave");
    let fresh = writ.token("svc");
    let (status, body) = writ.get("/v1/whoami", &fresh).await;
    assert_eq!(status, 200, "{body}");
    let verify = writ.run(&["audit", "verify"]);
    assert!(verify.status.success(), "{}", stderr(&verify));
}

/// The ledger's events of `kind`, once there is at least one (or after 5 s).
async fn first_events(writ: &Writ, admin: &str, kind: &str) -> Vec<serde_json::Value> {
    let mut found = Vec::new();
    for _ in 0..50 {
        let (_, audit) = writ.get("/v1/audit?limit=1000", admin).await;
        found = audit["events"]
            .as_array()
            .expect("events")
            .iter()
            .filter(|e| e["kind"] == kind)
            .cloned()
            .collect();
        if !found.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    found
}

//! A realistic ledger exported as OCSF passes a strict SIEM's checks: every event
//! validates against the official OCSF 1.8.0 JSON schema of its class with the profiles
//! it declares, and its ids, captions and `type_uid` agree with the schema
//! (`tests/ocsf_check.py`, with `ocsf-json-schema` and `jsonschema` from PyPI).
//!
//! `.ci/run` installs them (pinned) and sets `WRIT_OCSF_PYTHON` to a Python that has
//! them; elsewhere the test runs if `python3` has them and says it skipped otherwise.

mod support;

use std::process::Command;

use serde_json::json;
use support::Writ;

const CONFIG: &str = r#"
[storage]
url = "sqlite://writ.db"

[[target]]
name = "t"
kind = "noop"

[[entitlement]]
id = "t/read"
target = "t"
role = "read"
sensitivity = "low"
max_duration = "1h"

[[entitlement]]
id = "t/admin"
target = "t"
role = "admin"
sensitivity = "high"
max_duration = "1h"

[[entitlement]]
id = "t/root"
target = "t"
role = "root"
sensitivity = "critical"
max_duration = "1h"

[[itsm]]
name = "jira"
kind = "jira"
url = "http://127.0.0.1:9"
user = "writ@acme.example"
password = "api-token"
webhook_secret = "a-webhook-secret-of-some-length"
request_states = ["Approved"]
poll_every = "off"
fields = { entitlement = "customfield_10050" }

[[break_glass]]
name = "outage"
entitlements = ["t/root"]
max_duration = "30m"

[[user]]
name = "alice"
groups = ["engineers"]

[[user]]
name = "bob"
groups = ["leads"]
"#;

const POLICY: &str = r#"
@id("read-auto") permit (principal, action == Action::"request", resource) when { resource.sensitivity == "low" };
@id("admin-approved") @approvals("1") permit (principal in Group::"engineers", action == Action::"request", resource) when { resource.sensitivity == "high" };
@id("leads-approve") permit (principal in Group::"leads", action == Action::"approve", resource);
@id("engineers-break-glass") permit (principal in Group::"engineers", action == Action::"break_glass", resource);
"#;

#[tokio::test]
async fn every_exported_event_passes_the_ocsf_schema() {
    let Some(python) = support::external_tool(
        "WRIT_OCSF_PYTHON",
        "python3",
        &["-c", "import ocsf_json_schema, jsonschema"],
    ) else {
        eprintln!(
            "ocsf: skipped, no python3 with ocsf-json-schema==1.2.0 and jsonschema (run .ci/run)"
        );
        return;
    };
    let mut writ = Writ::new(CONFIG, &[("policy.cedar", POLICY)]);
    writ.start().await;
    let (alice, bob) = (writ.token("alice"), writ.token("bob"));
    let ask =
        |entitlement: &str| json!({ "entitlement": entitlement, "justification": "incident 42" });

    // Granted at once, then ended early: activated, revocation started, revoked.
    let (status, granted) = writ.post("/v1/requests", &alice, ask("t/read")).await;
    assert_eq!(status, 201, "{granted}");
    let grant_id = granted["grant_id"].as_str().expect("grant").to_string();
    writ.wait_for_grant(&grant_id, &alice, std::time::Duration::from_secs(10), |g| {
        g["state"] == "active"
    })
    .await;
    let (status, _) = writ
        .post(
            &format!("/v1/grants/{grant_id}/revoke"),
            &alice,
            json!({ "reason": "done" }),
        )
        .await;
    assert_eq!(status, 200);
    writ.wait_for_grant(&grant_id, &alice, std::time::Duration::from_secs(10), |g| {
        g["state"] == "revoked"
    })
    .await;
    // Denied by default (no policy permits critical access).
    let (status, denied) = writ.post("/v1/requests", &alice, ask("t/root")).await;
    assert_eq!((status, denied["state"].as_str()), (201, Some("denied")));
    // Approved, rejected and cancelled requests.
    for answer in ["approve", "reject", "cancel"] {
        let (status, pending) = writ.post("/v1/requests", &alice, ask("t/admin")).await;
        assert_eq!(status, 201, "{pending}");
        let id = pending["id"].as_str().expect("id");
        let (token, body) = match answer {
            "cancel" => (&alice, json!({})),
            _ => (&bob, json!({ "comment": "checked" })),
        };
        let (status, after) = writ
            .post(&format!("/v1/requests/{id}/{answer}"), token, body)
            .await;
        assert_eq!(status, 200, "{answer}: {after}");
    }
    // Break-glass, and its review signed off by someone else.
    let (status, activated) = writ
        .post(
            "/v1/break-glass/outage",
            &alice,
            json!({ "justification": "outage" }),
        )
        .await;
    assert_eq!(status, 201, "{activated}");
    let activation = activated["activation"]["id"].as_str().expect("id");
    let (status, signed) = writ
        .post(
            &format!("/v1/break-glass/activations/{activation}/sign-off"),
            &bob,
            json!({ "comment": "looked at the session" }),
        )
        .await;
    assert_eq!(status, 200, "{signed}");
    // A forged webhook delivery, a token issued and revoked, a checkpoint.
    let forged = writ
        .http
        .post(format!("{}/v1/itsm/jira/webhook", writ.base()))
        .header("content-type", "application/json")
        .header("x-hub-signature", "sha256=00")
        .header("x-atlassian-webhook-identifier", "forged-1")
        .body(r#"{"timestamp": 1, "issue": {"key": "OPS-1"}}"#)
        .send()
        .await
        .expect("webhook");
    assert_eq!(forged.status(), 401);
    let (_, tokens) = writ.get("/v1/tokens", &writ.admin_token()).await;
    let bobs = tokens["tokens"]
        .as_array()
        .and_then(|all| all.iter().find(|t| t["identity"] == "bob"))
        .and_then(|t| t["id"].as_str())
        .expect("bob's token")
        .to_string();
    let (status, _) = writ
        .post(
            &format!("/v1/tokens/{bobs}/revoke"),
            &writ.admin_token(),
            json!({}),
        )
        .await;
    assert_eq!(status, 200);
    writ.stop();
    let checkpoint = writ.run(&["audit", "checkpoint"]);
    assert!(
        checkpoint.status.success(),
        "{}",
        support::stderr(&checkpoint)
    );

    let export = writ.run(&["audit", "export", "--format", "ocsf"]);
    assert!(export.status.success(), "{}", support::stderr(&export));
    let events = support::stdout(&export);
    for kind in [
        "request.created",
        "request.approved",
        "request.rejected",
        "request.cancelled",
        "grant.activated",
        "grant.revoked",
        "itsm.webhook_rejected",
        "token.revoked",
        "ledger.checkpoint",
        "break_glass.activated",
        "break_glass.review_signed_off",
    ] {
        assert!(
            events.contains(&format!("\"kind\":\"{kind}\"")),
            "the ledger has no {kind}"
        );
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/ocsf_check.py");
    let mut check = Command::new(python);
    check.arg(script);
    let (ok, report) = support::run_with_input(check, events.as_bytes());
    assert!(ok, "{report}");
    assert!(report.contains(" 0 problems"), "{report}");
}

//! Agents end to end: an agent says which user it acts for, policy sees it, the ledger
//! keeps the chain agent → human → approver, and that human never approves it.

mod support;

use serde_json::{Value, json};
use support::Writ;

const CONFIG: &str = r#"
[[target]]
name = "noop"
kind = "noop"

[[entitlement]]
id = "noop/admin"
target = "noop"
role = "admin"
sensitivity = "high"
max_duration = "1h"

[[user]]
name = "alice"
groups = ["engineers", "managers"]

[[user]]
name = "eve"
groups = ["managers"]

[[service]]
name = "svc-report"
owner = "alice"

[[agent]]
name = "bot"
owner = "alice"
groups = ["agents"]
"#;

const POLICY: &str = r#"
@id("agents-for-their-owner")
@approvals("1")
permit (principal is Agent, action == Action::"request", resource)
when { context has on_behalf_of && principal.owner == context.on_behalf_of };

@id("engineers-for-themselves")
permit (principal in Group::"engineers", action == Action::"request", resource)
when { context.subject in principal };

@id("managers-approve")
permit (principal in Group::"managers", action == Action::"approve", resource);
"#;

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn an_agent_acts_for_a_user_who_then_cannot_approve() {
    let mut writ = Writ::new(CONFIG, &[("policy.cedar", POLICY)]);
    let (bot, alice, eve) = (writ.token("bot"), writ.token("alice"), writ.token("eve"));
    writ.start().await;
    let ask = |on_behalf_of: Option<&str>| {
        let mut body = json!({ "entitlement": "noop/admin", "justification": "triage incident 7", "duration_seconds": 600 });
        if let Some(user) = on_behalf_of {
            body["on_behalf_of"] = json!(user);
        }
        body
    };

    let (status, error) = writ.post("/v1/requests", &bot, ask(None)).await;
    assert_eq!(
        (status, code(&error)),
        (422, "on_behalf_of_required"),
        "{error}"
    );
    let (status, error) = writ
        .post("/v1/requests", &bot, ask(Some("svc-report")))
        .await;
    assert_eq!((status, code(&error)), (422, "unknown_identity"), "{error}");
    let (status, error) = writ.post("/v1/requests", &alice, ask(Some("eve"))).await;
    assert_eq!(
        (status, code(&error)),
        (422, "on_behalf_of_not_agent"),
        "{error}"
    );
    // Built in, before any policy: an agent acts only for its owner or its delegates.
    let (status, refused) = writ.post("/v1/requests", &bot, ask(Some("eve"))).await;
    assert_eq!(
        (status, code(&refused)),
        (403, "not_a_delegate"),
        "{refused}"
    );

    // Policy permits the agent, and alice asking for herself: an agent never gets more
    // than the user it acts for would.
    let (status, request) = writ.post("/v1/requests", &bot, ask(Some("alice"))).await;
    assert_eq!(status, 201, "{request}");
    assert_eq!(request["state"], "pending_approval", "{request}");
    assert_eq!(
        (
            request["requester"].as_str(),
            request["on_behalf_of"].as_str()
        ),
        (Some("bot"), Some("alice"))
    );
    let id = request["id"].as_str().expect("id").to_string();

    // Alice is a manager, but the agent acts for her: she cannot approve its request.
    let (status, error) = writ
        .post(
            &format!("/v1/requests/{id}/approve"),
            &alice,
            json!({ "comment": "mine" }),
        )
        .await;
    assert_eq!((status, code(&error)), (403, "self_approval"), "{error}");
    let (status, approved) = writ
        .post(
            &format!("/v1/requests/{id}/approve"),
            &eve,
            json!({ "comment": "ok" }),
        )
        .await;
    assert_eq!(
        (status, approved["state"].as_str()),
        (200, Some("approved")),
        "{approved}"
    );

    // The ledger keeps the chain: agent → human → approver.
    let (_, audit) = writ.get("/v1/audit?limit=100", &writ.admin_token()).await;
    let approved_event = audit["events"]
        .as_array()
        .and_then(|events| events.iter().find(|e| e["kind"] == "request.approved"))
        .cloned()
        .unwrap_or_default();
    let recorded = &approved_event["data"]["request"];
    assert_eq!(recorded["requester"], "bot");
    assert_eq!(recorded["on_behalf_of"], "alice");
    assert_eq!(recorded["approvals"][0]["approver"], "eve");
    assert_eq!(approved_event["actor"], "eve");
    let verify = writ.run(&["audit", "verify"]);
    assert!(verify.status.success(), "{}", support::stderr(&verify));
    writ.stop();
}

#[tokio::test]
async fn services_and_agents_of_a_disabled_owner_are_orphaned() {
    let config = CONFIG.replace(
        "[[user]]\nname = \"eve\"\ngroups = [\"managers\"]\n",
        "[[user]]\nname = \"eve\"\ngroups = [\"managers\"]\n\n[[user]]\nname = \"mallory\"\ndisabled = true\n\n[[agent]]\nname = \"old-bot\"\nowner = \"mallory\"\n",
    );
    let mut writ = Writ::new(&config, &[("policy.cedar", POLICY)]);
    let refused = writ.run(&["token", "issue", "mallory"]);
    assert!(
        !refused.status.success(),
        "no tokens for a disabled identity"
    );
    assert!(
        support::stderr(&refused).contains("disabled"),
        "{}",
        support::stderr(&refused)
    );
    writ.start().await;

    let admin = writ.admin_token();
    let (status, list) = writ.get("/v1/identities?orphaned=true", &admin).await;
    assert_eq!(status, 200, "{list}");
    let names: Vec<&str> = list["identities"]
        .as_array()
        .map(|ids| ids.iter().filter_map(|i| i["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names, ["old-bot"], "{list}");
    let (_, all) = writ.get("/v1/identities", &admin).await;
    // The six configured here and the test kit's admin.
    assert_eq!(all["identities"].as_array().map(Vec::len), Some(7), "{all}");

    let output = writ.run(&["identities", "--orphaned", "--token", &admin]);
    assert!(output.status.success(), "{}", support::stderr(&output));
    let text = support::stdout(&output);
    assert!(
        text.contains("old-bot") && text.contains("ORPHANED") && !text.contains("svc-report"),
        "{text}"
    );
    writ.stop();
}

//! Agents acting for people under delegation chains (RFC 8693 `act`): a real OpenID
//! provider issues the tokens a token exchange gives an agent — `sub` (here
//! preferred_username) names the person, `act` the agent and any agents it acts
//! through. writ takes the person as whom the agent acts for, shows policy and the
//! approver the whole chain, keeps it on the ledger, never gives the agent more than
//! the person would get, and refuses every chain with a party it cannot hold to account.

mod support;

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use support::Writ;
use support::jwt::Signer;
use support::oidc_provider::{AUDIENCE, Provider, provider_dir};
use support::ui::UiClient;

const GITHUB: &str = "https://token.actions.githubusercontent.com";

fn config(issuer: &str) -> String {
    format!(
        r#"
[[oidc]]
issuer = "{issuer}"
audience = "{AUDIENCE}"

[[workload_issuer]]
name = "github"
issuer = "{GITHUB}"
audience = "writ"
jwks_file = "github-jwks.json"

[[target]]
name = "files"
kind = "noop"

[[entitlement]]
id = "files/read"
target = "files"
role = "read"
sensitivity = "low"
max_duration = "8h"

[[entitlement]]
id = "files/admin"
target = "files"
role = "admin"
sensitivity = "high"
max_duration = "8h"

[[entitlement]]
id = "files/root"
target = "files"
role = "root"
sensitivity = "critical"
max_duration = "1h"

# An API its gateway enforces by asking writ (AuthZEN).
[[target]]
name = "api"
kind = "authzen"

[[entitlement]]
id = "api/orders_refund"
target = "api"
role = "orders_refund"
sensitivity = "high"
max_duration = "1h"
authzen = {{ resource_type = "api", resource_id = "orders", actions = ["refund"] }}

[[user]]
name = "alice"
groups = ["engineers"]

[[user]]
name = "carol"
groups = ["engineers"]

[[user]]
name = "dave"
groups = ["managers"]

[[user]]
name = "eve"
groups = ["managers"]

# alice's assistant.
[[agent]]
name = "helper"
owner = "alice"

# carol's planner, which alice may also use.
[[agent]]
name = "planner"
owner = "carol"
delegates = ["alice"]

# eve's agent: it acts for nobody else.
[[agent]]
name = "eve-bot"
owner = "eve"

[[agent]]
name = "retired-bot"
owner = "alice"
disabled = true

# A CI job that may act for alice, proven by GitHub's workload token.
[[agent]]
name = "ci-bot"
owner = "carol"
delegates = ["alice"]
workload = [{{ issuer = "github", subject = "repo:acme/infra:environment:prod" }}]
"#
    )
}

const POLICY: &str = r#"
@id("engineers-read-for-an-hour")
@max_duration("1h")
permit (principal in Group::"engineers", action == Action::"request", resource == Entitlement::"files/read")
when { context.subject in principal || (context.subject has owner && context.subject.owner == principal) };

@id("engineers-admin-with-approval")
@approvals("1")
permit (principal in Group::"engineers", action == Action::"request", resource == Entitlement::"files/admin");

@id("engineers-refund-with-approval")
@approvals("1")
permit (principal in Group::"engineers", action == Action::"request", resource == Entitlement::"api/orders_refund");

@id("agents-for-the-people-they-act-for")
@max_duration("8h")
permit (principal is Agent, action == Action::"request", resource)
when { context has on_behalf_of };

@id("no-chains-longer-than-two")
@reason("nothing is given through more than two agents")
forbid (principal, action == Action::"request", resource)
when { context.delegation_depth > 2 };

@id("managers-approve")
permit (principal in Group::"managers", action == Action::"approve", resource);
"#;

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

struct Setup {
    provider: Provider,
    writ: Writ,
}

async fn start() -> Option<Setup> {
    let dir = provider_dir()?;
    let provider = Provider::start_with_chains(
        dir,
        "k1",
        &[
            "alice~helper",
            "alice~helper~planner",
            "alice~eve-bot",
            "alice~ghost",
            "alice~dave",
            "alice~retired-bot",
            "dave~helper",
        ],
    )
    .await;
    let mut writ = Writ::new(&config(&provider.issuer()), &[("policy.cedar", POLICY)]);
    std::fs::write(
        writ.path("github-jwks.json"),
        Signer::new("gh1").jwks().to_string(),
    )
    .expect("jwks");
    writ.start().await;
    Some(Setup { provider, writ })
}

fn ask(entitlement: &str, seconds: i64) -> Value {
    json!({ "entitlement": entitlement, "justification": "incident 7", "duration_seconds": seconds })
}

#[tokio::test]
async fn an_agent_under_a_token_chain_acts_for_its_person_and_never_gets_more() {
    let Some(Setup { provider, writ }) = start().await else {
        return;
    };
    let helper = provider.token_for("alice~helper").await;

    // The token says who the caller is and whom it acts for.
    let (status, me) = writ.get("/v1/whoami", &helper).await;
    assert_eq!(status, 200, "{me}\n{}", writ.log());
    assert_eq!(
        (me["name"].as_str(), me["kind"].as_str()),
        (Some("helper"), Some("agent")),
        "{me}"
    );
    assert_eq!(me["acting_for"], "alice", "{me}");
    assert_eq!(me["actors"], json!(["helper"]), "{me}");

    // No on_behalf_of needed: the chain says it. The agent's own policy would give it
    // 8h, but alice asking herself would get 1h, so the agent gets 1h.
    let (status, read) = writ
        .post("/v1/requests", &helper, ask("files/read", 4 * 3600))
        .await;
    assert_eq!(status, 201, "{read}");
    assert_eq!(read["state"], "approved", "{read}");
    assert_eq!(
        (read["requester"].as_str(), read["on_behalf_of"].as_str()),
        (Some("helper"), Some("alice")),
        "{read}"
    );
    assert_eq!(read["actors"], json!(["helper"]), "{read}");
    assert_eq!(read["duration_seconds"], 3600, "{read}");
    assert_eq!(
        read["decision"]["policies"],
        json!([
            "agents-for-the-people-they-act-for",
            "engineers-read-for-an-hour"
        ]),
        "{read}"
    );

    // Nothing permits alice files/root herself, so her agent does not get it either,
    // though agents' own policy permits it.
    let (status, root) = writ
        .post("/v1/requests", &helper, ask("files/root", 600))
        .await;
    assert_eq!(
        (status, root["state"].as_str()),
        (201, Some("denied")),
        "{root}"
    );
    assert_eq!(
        root["decision"]["reasons"],
        json!(["alice could not get this themselves: no policy permits this request"]),
        "{root}"
    );

    // Saying on_behalf_of for someone else than the token's person is refused; saying
    // the same person is allowed.
    let mut other = ask("files/read", 600);
    other["on_behalf_of"] = json!("carol");
    let (status, refused) = writ.post("/v1/requests", &helper, other).await;
    assert_eq!(
        (status, code(&refused)),
        (403, "not_a_delegate"),
        "{refused}"
    );

    // An agent acts only for its owner or its delegates: helper is alice's, so a token
    // saying it acts for dave proves nothing.
    let dave_helper = provider.token_for("dave~helper").await;
    let (status, refused) = writ.get("/v1/whoami", &dave_helper).await;
    assert_eq!(
        (status, code(&refused)),
        (403, "not_a_delegate"),
        "{refused}"
    );

    // Through two agents: the chain is the approver's to see.
    let chain = provider.token_for("alice~helper~planner").await;
    let (status, me) = writ.get("/v1/whoami", &chain).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["actors"], json!(["helper", "planner"]), "{me}");
    let (status, admin) = writ
        .post("/v1/requests", &chain, ask("files/admin", 600))
        .await;
    assert_eq!(status, 201, "{admin}");
    assert_eq!(admin["state"], "pending_approval", "{admin}");
    assert_eq!(admin["actors"], json!(["helper", "planner"]), "{admin}");
    let id = admin["id"].as_str().expect("id").to_string();

    // Nobody in the chain, nor the person, nor an owner of an agent in it, approves.
    let carol = writ.token("carol");
    let alice = writ.token("alice");
    for (who, token) in [("alice", &alice), ("carol", &carol)] {
        let (status, refused) = writ
            .post(
                &format!("/v1/requests/{id}/approve"),
                token,
                json!({ "comment": "mine" }),
            )
            .await;
        assert_eq!(
            (status, code(&refused)),
            (403, "self_approval"),
            "{who}: {refused}"
        );
    }

    // The approver sees the chain.
    let dave = writ.token("dave");
    let ui = UiClient::new(&writ.base());
    ui.sign_in_with_token(&dave).await;
    let inbox = ui.get("/ui/approvals").await;
    assert_eq!(inbox.status, 200, "{}", inbox.body);
    assert!(
        inbox.body.contains("helper → planner → alice"),
        "the approver sees the whole chain: {}",
        inbox.body
    );
    let (status, approved) = writ
        .post(
            &format!("/v1/requests/{id}/approve"),
            &dave,
            json!({ "comment": "ok" }),
        )
        .await;
    assert_eq!(
        (status, approved["state"].as_str()),
        (200, Some("approved"))
    );

    // The ledger keeps the chain with the request, and verifies.
    let (_, audit) = writ.get("/v1/audit?limit=200", &writ.admin_token()).await;
    let created = audit["events"]
        .as_array()
        .and_then(|events| {
            events.iter().find(|e| {
                e["kind"] == "request.created" && e["data"]["request"]["id"] == id.as_str()
            })
        })
        .cloned()
        .unwrap_or_default();
    assert_eq!(created["actor"], "helper", "{created}");
    assert_eq!(
        created["data"]["request"]["actors"],
        json!(["helper", "planner"]),
        "{created}"
    );
    assert_eq!(created["data"]["request"]["on_behalf_of"], "alice");
    let verify = writ.run(&["audit", "verify"]);
    assert!(verify.status.success(), "{}", support::stderr(&verify));
}

#[tokio::test]
async fn chains_with_a_party_writ_cannot_hold_to_account_are_refused() {
    let Some(Setup { provider, writ }) = start().await else {
        return;
    };
    let refusal = |token: String| {
        let writ = &writ;
        async move {
            let (status, body) = writ.get("/v1/whoami", &token).await;
            (status, code(&body).to_string(), body.to_string())
        }
    };
    let cases = [
        ("alice~eve-bot", 403, "not_a_delegate", "eve-bot"),
        ("alice~ghost", 401, "delegation_refused", "ghost"),
        ("alice~dave", 401, "delegation_refused", "only agents"),
        ("alice~retired-bot", 401, "delegation_refused", "disabled"),
    ];
    for (chain, status, expected, says) in cases {
        let (got, code, body) = refusal(provider.token_for(chain).await).await;
        assert_eq!((got, code.as_str()), (status, expected), "{chain}: {body}");
        assert!(body.contains(says), "{chain}: {body}");
    }

    // Signed by the provider, but with act chains its token exchange would not make.
    let claims = |act: Value| {
        json!({
            "iss": provider.issuer(), "aud": AUDIENCE, "exp": now() + 300, "iat": now(),
            "preferred_username": "alice", "act": act,
        })
    };
    let header = json!({ "alg": "RS256", "kid": "k1" });
    let crafted = [
        (json!("helper"), "not a JSON object"),
        (json!({ "iss": provider.issuer() }), "without a sub"),
        (
            json!({ "sub": "helper", "iss": "https://sts.elsewhere.test" }),
            "not a configured identity provider",
        ),
        (
            json!({ "sub": "helper", "act": { "sub": "h2", "act": { "sub": "h3", "act": { "sub": "h4", "act": { "sub": "h5", "act": { "sub": "h6", "act": { "sub": "h7", "act": { "sub": "h8", "act": { "sub": "h9" } } } } } } } } }),
            "more than 8 actors",
        ),
        // A GitHub job no agent is bound to.
        (
            json!({ "sub": "repo:acme/other:environment:prod", "iss": GITHUB }),
            "unknown actor",
        ),
    ];
    for (act, says) in crafted {
        let token = provider.crafted(header.clone(), claims(act.clone()));
        let (status, code, body) = refusal(token).await;
        assert_eq!(status, 401, "{act}: {body}");
        assert!(
            code == "unauthenticated" || code == "delegation_refused",
            "{act}: {body}"
        );
        assert!(body.contains(says), "{act}: {body}");
    }

    // An actor named by a workload issuer writ trusts is that issuer's agent.
    let token = provider.crafted(
        header,
        claims(json!({ "sub": "repo:acme/infra:environment:prod", "iss": GITHUB })),
    );
    let (status, me) = writ.get("/v1/whoami", &token).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(
        (me["name"].as_str(), me["acting_for"].as_str()),
        (Some("ci-bot"), Some("alice")),
        "{me}"
    );
}

#[tokio::test]
async fn an_agent_under_a_chain_asks_through_authzen_for_the_access_it_was_denied() {
    let Some(Setup { provider, writ }) = start().await else {
        return;
    };
    let helper = provider.token_for("alice~helper").await;
    let http = reqwest::Client::new();
    let post = |url: String, body: Value| {
        let (http, helper) = (&http, &helper);
        async move {
            let answer = http
                .post(url)
                .bearer_auth(helper)
                .json(&body)
                .send()
                .await
                .expect("call");
            let status = answer.status().as_u16();
            (status, answer.json::<Value>().await.unwrap_or_default())
        }
    };
    // The agent asks about itself, as its own enforcement point would.
    let asked = json!({
        "subject": { "type": "agent", "id": "helper" },
        "resource": { "type": "api", "id": "orders" },
        "action": { "name": "refund" },
    });
    let evaluation = format!("{}/access/v1/evaluation", writ.base());
    let (status, denied) = post(evaluation.clone(), asked.clone()).await;
    assert_eq!(
        (status, &denied["decision"]),
        (200, &json!(false)),
        "{denied}"
    );
    // Requestable: policy, asked as the agent acting for alice, would grant it after
    // an approval.
    let access_request = &denied["context"]["access_request"];
    assert!(access_request["binding_token"].is_string(), "{denied}");

    let (status, submitted) = post(
        format!("{}/access/v1/requests", writ.base()),
        json!({
            "subject": asked["subject"], "resource": asked["resource"], "action": asked["action"],
            "context": { "business_justification": "refunds for incident 7" },
            "denial": {
                "evaluation_id": denied["context"]["evaluation_id"],
                "expires_at": access_request["expires_at"],
                "binding_token": access_request["binding_token"],
            },
        }),
    )
    .await;
    assert_eq!(status, 202, "{submitted}");
    let task = submitted["task"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();

    // The request is the agent's, for alice, with its chain; dave approves it.
    let (_, pending) = writ
        .get("/v1/requests?state=pending_approval", &writ.admin_token())
        .await;
    let request = pending["requests"]
        .as_array()
        .and_then(|items| items.iter().find(|r| r["authzen"]["task"] == task.as_str()))
        .cloned()
        .unwrap_or_else(|| panic!("task {task} in {pending}"));
    assert_eq!(
        (
            request["requester"].as_str(),
            request["on_behalf_of"].as_str()
        ),
        (Some("helper"), Some("alice")),
        "{request}"
    );
    assert_eq!(request["actors"], json!(["helper"]), "{request}");
    let id = request["id"].as_str().unwrap_or_default();
    let (status, approved) = writ
        .post(
            &format!("/v1/requests/{id}/approve"),
            &writ.token("dave"),
            json!({ "comment": "ok" }),
        )
        .await;
    assert_eq!(status, 200, "{approved}");

    // The lease decides: allowed now.
    let mut allowed = json!(null);
    for _ in 0..50 {
        allowed = post(evaluation.clone(), asked.clone()).await.1;
        if allowed["decision"] == true {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(allowed["decision"], true, "{allowed}");
}

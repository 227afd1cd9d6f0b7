//! An AI agent asks writ for access through the Model Context Protocol: the official
//! MCP Python SDK (PyPI `mcp`, pinned by `.ci/run`) calls `/mcp` with the agent's
//! workload token, and every tool is bound by the same policy, delegation and
//! segregation-of-duties rules as the REST API.

mod support;

use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use support::jwt::Signer;
use support::{NOOP_CONFIG, Writ, external_tool};

/// Besides the test kit's NOOP_CONFIG (target `t`, `t/read`, alice).
const CONFIG: &str = r#"
[[workload_issuer]]
name = "k8s"
issuer = "https://kubernetes.default.svc.cluster.local"
audience = "writ"
jwks_file = "k8s-jwks.json"

[[entitlement]]
id = "t/admin"
target = "t"
role = "admin"
sensitivity = "high"
max_duration = "1h"

[[user]]
name = "bob"

[[agent]]
name = "triage-bot"
owner = "alice"
workload = [{ issuer = "k8s", subject = "system:serviceaccount:agents:triage-bot" }]
"#;

fn config() -> String {
    format!("{NOOP_CONFIG}\n{CONFIG}")
}

const POLICY: &str = r#"
@id("agents-read-for-their-owner")
permit (principal is Agent, action == Action::"request", resource == Entitlement::"t/read")
when { context has on_behalf_of && principal.owner == context.on_behalf_of };

// An agent gets no more than the user it acts for would get themselves.
@id("people-read-for-themselves")
permit (principal is User, action == Action::"request", resource == Entitlement::"t/read")
when { context.subject in principal };
"#;

/// Python with the MCP SDK: `.ci/run` installs it and sets WRIT_MCP_PYTHON.
fn python() -> Option<String> {
    let python = external_tool("WRIT_MCP_PYTHON", "python3", &["-c", "import mcp"]);
    if python.is_none() {
        eprintln!("mcp: no Python with the `mcp` package (set WRIT_MCP_PYTHON): skipped");
    }
    python
}

/// Runs the SDK client against writ's `/mcp` with `token` and `calls`.
fn agent(python: &str, writ: &Writ, token: &str, calls: Value) -> Result<Value, String> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/mcp_client.py");
    let output = Command::new(python)
        .arg(script)
        .arg(format!("{}/mcp", writ.base()))
        .arg(token)
        .arg(calls.to_string())
        .output()
        .expect("run the MCP client");
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).to_string());
    }
    serde_json::from_slice(&output.stdout)
        .map_err(|e| format!("{e}: {}", String::from_utf8_lossy(&output.stdout)))
}

fn workload_token(signer: &Signer) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    signer.sign(&json!({
        "iss": "https://kubernetes.default.svc.cluster.local", "aud": "writ",
        "sub": "system:serviceaccount:agents:triage-bot", "iat": now, "exp": now + 600,
    }))
}

/// The error code of a refused tool call.
fn refusal(result: &Value) -> String {
    assert_eq!(result["is_error"], true, "{result}");
    let text = result["text"][0].as_str().expect("the refusal's text");
    let body: Value = serde_json::from_str(text).expect("JSON");
    body["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn an_agent_asks_checks_and_releases_through_mcp_under_the_same_rules() {
    let Some(python) = python() else { return };
    let mut writ = Writ::new(&config(), &[("p.cedar", POLICY)]);
    let signer = Signer::new("k8s-1");
    std::fs::write(writ.path("k8s-jwks.json"), signer.jwks().to_string()).expect("jwks");
    writ.start().await;
    let token = workload_token(&signer);

    let answer = agent(
        &python,
        &writ,
        &token,
        json!([
            ["request_access", {"entitlement": "t/read", "justification": "triage incident 7", "on_behalf_of": "alice", "duration_seconds": 600}],
            ["request_access", {"entitlement": "t/read", "justification": "no one to act for"}],
            ["request_access", {"entitlement": "t/read", "justification": "for someone else", "on_behalf_of": "bob"}],
            ["request_access", {"entitlement": "t/admin", "justification": "more than policy allows", "on_behalf_of": "alice"}],
            ["list_my_grants", {"state": "active"}],
        ]),
    )
    .expect("the agent's session");
    assert_eq!(
        answer["tools"],
        json!([
            "check_request",
            "list_my_grants",
            "release_grant",
            "request_access"
        ])
    );
    let results = answer["results"].as_array().expect("results");
    let granted = &results[0]["structured"];
    assert_eq!(results[0]["is_error"], false, "{}", results[0]);
    assert_eq!(
        (
            granted["requester"].as_str(),
            granted["on_behalf_of"].as_str()
        ),
        (Some("triage-bot"), Some("alice")),
        "{granted}"
    );
    assert_eq!(granted["state"], "approved", "{granted}");
    let request_id = granted["id"].as_str().expect("request id").to_string();
    let grant_id = granted["grant_id"].as_str().expect("grant id").to_string();
    // The REST API's rules, refused the same way.
    assert_eq!(refusal(&results[1]), "on_behalf_of_required");
    assert_eq!(refusal(&results[2]), "not_a_delegate");
    assert_eq!(
        results[3]["structured"]["state"], "denied",
        "{}",
        results[3]
    );
    let grants = results[4]["structured"]["grants"]
        .as_array()
        .expect("grants");
    assert_eq!(grants.len(), 1, "{grants:?}");
    assert_eq!(grants[0]["id"], grant_id.as_str());

    let answer = agent(
        &python,
        &writ,
        &token,
        json!([
            ["check_request", {"id": request_id}],
            ["release_grant", {"id": grant_id, "reason": "incident closed"}],
        ]),
    )
    .expect("the agent's second session");
    let results = answer["results"].as_array().expect("results");
    assert_eq!(results[0]["structured"]["grant_id"], grant_id.as_str());
    assert_eq!(results[1]["is_error"], false, "{}", results[1]);
    let (_, grant) = writ
        .get(&format!("/v1/grants/{grant_id}"), &writ.admin_token())
        .await;
    assert!(
        matches!(grant["state"].as_str(), Some("revoking" | "revoked")),
        "{grant}"
    );
    assert_eq!(grant["revoke_reason"], "incident closed", "{grant}");

    // Without a token, or with only a cookie, nothing is served.
    assert!(agent(&python, &writ, "", json!([])).is_err());
    let response = reqwest::Client::new()
        .post(format!("{}/mcp", writ.base()))
        .header("accept", "application/json, text/event-stream")
        .header("cookie", "writ-session=writs_anything")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
        .send()
        .await
        .expect("post");
    assert_eq!(response.status().as_u16(), 401);
    let verify = writ.run(&["audit", "verify"]);
    assert!(verify.status.success(), "{}", support::stderr(&verify));
}

//! The identity provider pushes people and groups over SCIM 2.0 (`/scim/v2`): kept in
//! writ's database and on the ledger, refused where they cannot be what they claim,
//! and — joiner, mover, leaver — acted on at once: a person made inactive loses every
//! grant, a person leaving a group loses what policy no longer permits, verified on the
//! real PostgreSQL target. And scim2-tester, a checker of servers against the RFCs,
//! finds nothing wrong (`.ci/run` installs it, pinned, and sets `WRIT_SCIM_PYTHON`;
//! elsewhere that test runs if `python3` has it and says it skipped otherwise).

mod support;

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use support::{NOOP_CONFIG, TestRoles, Writ, stderr, stdout};
use writ_domain::lifecycle::GrantState;

const SECRET: &str = "scim-secret-0123456789abcdef0123456789";
const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const PATCH: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const ERROR: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

fn scim_client() -> String {
    format!("\n[[scim]]\nname = \"okta\"\ntoken = \"{SECRET}\"\n")
}

async fn scim(writ: &Writ, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    writ.call(method, &format!("/scim/v2{path}"), Some(SECRET), body)
        .await
}

async fn create_user(writ: &Writ, user_name: &str) -> String {
    let (status, user) = scim(
        writ,
        Method::POST,
        "/Users",
        Some(json!({"schemas": [USER], "userName": user_name, "active": true})),
    )
    .await;
    assert_eq!(status, 201, "{user}");
    user["id"].as_str().expect("id").to_string()
}

async fn create_group(writ: &Writ, name: &str, members: &[&str]) -> String {
    let members: Vec<Value> = members.iter().map(|id| json!({"value": id})).collect();
    let (status, group) = scim(
        writ,
        Method::POST,
        "/Groups",
        Some(json!({"schemas": [GROUP], "displayName": name, "members": members})),
    )
    .await;
    assert_eq!(status, 201, "{group}");
    group["id"].as_str().expect("id").to_string()
}

fn patch(operations: Value) -> Option<Value> {
    Some(json!({"schemas": [PATCH], "Operations": operations}))
}

fn assert_scim_error(status: u16, body: &Value, expected: u16, scim_type: Option<&str>) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(body["schemas"], json!([ERROR]), "{body}");
    assert_eq!(body["status"], expected.to_string(), "{body}");
    assert_eq!(body["scimType"].as_str(), scim_type, "{body}");
}

#[tokio::test]
async fn people_and_groups_are_kept_on_the_ledger_and_refused_when_they_cannot_be() {
    let config = format!(
        "{NOOP_CONFIG}\n[[user]]\nname = \"erin\"\ngroups = [\"admins\"]\n{}",
        scim_client()
    );
    let mut writ = Writ::new(&config, &[("p.cedar", "")]);
    writ.start().await;
    let erin = writ.token("erin");

    // Only a [[scim]] client's secret opens /scim/v2: not writ's tokens, not a guess.
    for token in [
        None,
        Some(erin.as_str()),
        Some("scim-secret-0123456789abcdef012345678X"),
    ] {
        let (status, body) = writ.call(Method::GET, "/scim/v2/Users", token, None).await;
        assert_scim_error(status, &body, 401, None);
    }

    let (status, config) = scim(&writ, Method::GET, "/ServiceProviderConfig", None).await;
    assert_eq!((status, &config["patch"]["supported"]), (200, &json!(true)));
    let (_, types) = scim(&writ, Method::GET, "/ResourceTypes", None).await;
    assert_eq!(types["totalResults"], 2);
    let (_, schemas) = scim(&writ, Method::GET, "/Schemas", None).await;
    assert_eq!(schemas["totalResults"], 4);

    // A person: what was sent reads back, with writ's id and meta; no password is kept.
    let (status, alice) = scim(
        &writ,
        Method::POST,
        "/Users",
        Some(json!({
            "schemas": [USER], "userName": "alice.s", "externalId": "00u1",
            "name": {"givenName": "Alice"}, "password": "hunter2", "active": true
        })),
    )
    .await;
    assert_eq!(status, 201, "{alice}");
    let alice_id = alice["id"].as_str().expect("id").to_string();
    assert_eq!(alice["name"]["givenName"], "Alice");
    assert_eq!(alice["meta"]["version"], "W/\"1\"");
    assert!(alice.get("password").is_none(), "{alice}");

    // Refused: a taken userName (SCIM compares without case), a name writ.toml has,
    // one that cannot name an identity.
    for (user_name, expected, scim_type) in [
        ("ALICE.S", 409, "uniqueness"),
        ("erin", 409, "uniqueness"),
        ("has space", 400, "invalidValue"),
    ] {
        let (status, body) = scim(
            &writ,
            Method::POST,
            "/Users",
            Some(json!({"schemas": [USER], "userName": user_name})),
        )
        .await;
        assert_scim_error(status, &body, expected, Some(scim_type));
    }

    // writ's extension carries an end date: past it, the person is a leaver.
    const WRIT_EXTENSION: &str = "urn:ietf:params:scim:schemas:extension:writ:2.0:User";
    let (status, body) = scim(
        &writ,
        Method::POST,
        "/Users",
        Some(json!({"schemas": [USER, WRIT_EXTENSION], "userName": "carl", WRIT_EXTENSION: {"validUntil": "soon"}})),
    )
    .await;
    assert_scim_error(status, &body, 400, Some("invalidValue"));
    let (status, carl) = scim(
        &writ,
        Method::POST,
        "/Users",
        Some(json!({"schemas": [USER, WRIT_EXTENSION], "userName": "carl", WRIT_EXTENSION: {"validUntil": "2001-01-01T00:00:00Z"}})),
    )
    .await;
    assert_eq!(status, 201, "{carl}");
    let (status, body) = writ.get("/v1/whoami", &writ.token("carl")).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("token_identity_disabled")),
        "{body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("ended at"),
        "{body}"
    );

    // Lookups as providers make them.
    let (_, found) = scim(
        &writ,
        Method::GET,
        "/Users?filter=userName%20eq%20%22Alice.S%22",
        None,
    )
    .await;
    assert_eq!(found["totalResults"], 1, "{found}");
    let (_, found) = scim(
        &writ,
        Method::GET,
        "/Users?filter=externalId%20eq%20%22nobody%22",
        None,
    )
    .await;
    assert_eq!(found["totalResults"], 0, "{found}");
    let (status, body) = scim(&writ, Method::GET, "/Users?filter=userName%20eq", None).await;
    assert_scim_error(status, &body, 400, Some("invalidFilter"));

    // A group, its members users here by id; the user reads back in it.
    let group_id = create_group(&writ, "dba", &[&alice_id]).await;
    let (_, alice) = scim(&writ, Method::GET, &format!("/Users/{alice_id}"), None).await;
    assert_eq!(alice["groups"][0]["display"], "dba", "{alice}");
    let (status, body) = scim(
        &writ,
        Method::POST,
        "/Groups",
        Some(json!({"schemas": [GROUP], "displayName": "ghosts", "members": [{"value": "not-an-id"}]})),
    )
    .await;
    assert_scim_error(status, &body, 400, Some("invalidValue"));

    // `writ identities` knows her, and where from.
    let listing = writ.run(&["identities", "--token", &erin]);
    let line = stdout(&listing)
        .lines()
        .find(|l| l.starts_with("alice.s "))
        .map(str::to_string)
        .unwrap_or_default();
    assert!(line.contains("scim"), "{}", stdout(&listing));

    // Member removed the RFC way; then she is made inactive, the way Okta does it.
    let (status, group) = scim(
        &writ,
        Method::PATCH,
        &format!("/Groups/{group_id}"),
        patch(json!([{"op": "remove", "path": format!("members[value eq \"{alice_id}\"]")}])),
    )
    .await;
    assert_eq!((status, &group["members"]), (200, &json!([])), "{group}");
    let (status, alice) = scim(
        &writ,
        Method::PATCH,
        &format!("/Users/{alice_id}"),
        patch(json!([{"op": "replace", "value": {"active": false}}])),
    )
    .await;
    assert_eq!((status, &alice["active"]), (200, &json!(false)), "{alice}");

    // She holds nothing, so she may be renamed (a PUT replaces the whole resource); a
    // change made against a stale version is refused.
    let (status, body) = scim(
        &writ,
        Method::PUT,
        &format!("/Users/{alice_id}"),
        Some(json!({"schemas": [USER], "userName": "alice.t", "active": false})),
    )
    .await;
    assert_eq!(
        (status, &body["userName"]),
        (200, &json!("alice.t")),
        "{body}"
    );
    let stale = writ
        .http
        .put(format!("{}/scim/v2/Users/{alice_id}", writ.base()))
        .bearer_auth(SECRET)
        .header("If-Match", "W/\"1\"")
        .json(&json!({"schemas": [USER], "userName": "alice.t"}))
        .send()
        .await
        .expect("put");
    assert_eq!(stale.status().as_u16(), 412);

    let (status, _) = scim(&writ, Method::DELETE, &format!("/Users/{alice_id}"), None).await;
    assert_eq!(status, 204);
    let (status, body) = scim(&writ, Method::GET, &format!("/Users/{alice_id}"), None).await;
    assert_scim_error(status, &body, 404, None);
    let (status, body) = scim(&writ, Method::GET, "/Nothing", None).await;
    assert_scim_error(status, &body, 404, None);

    // Every change is on the ledger, and audit verify replays it against the tables.
    let (_, audit) = writ.get("/v1/audit?limit=1000", &erin).await;
    let kinds: Vec<&str> = audit["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .filter(|k| k.starts_with("directory."))
        .collect();
    assert_eq!(
        kinds,
        [
            "directory.user_created",
            "directory.user_created",
            "directory.group_created",
            "directory.group_updated",
            "directory.user_updated",
            "directory.user_updated",
            "directory.user_deleted",
        ]
    );
    let verify = writ.run(&["audit", "verify"]);
    assert!(verify.status.success(), "{}", stderr(&verify));
}

const POLICY: &str = r#"
@id("engineers-read")
permit (principal in Group::"engineers", action == Action::"request", resource == Entitlement::"pg/read");
"#;

/// Joiner, mover, leaver on the real PostgreSQL target.
#[tokio::test]
async fn joiners_movers_and_leavers_pushed_over_scim_change_access_on_postgres() {
    let mut roles = TestRoles::new().await;
    let read = roles.create("read").await;
    let alice = roles.create("alice").await;
    let bob = roles.create("bob").await;
    let config = format!(
        r#"
[storage]
url = "sqlite://writ.db"

[[target]]
name = "pg"
kind = "postgres"
url = "{url}"

[[entitlement]]
id = "pg/read"
target = "pg"
role = "{read}"
sensitivity = "low"
max_duration = "1h"

[[user]]
name = "erin"
groups = ["admins"]
{scim}"#,
        url = support::PG_URL,
        scim = scim_client(),
    );
    let mut writ = Writ::new(&config, &[("p.cedar", POLICY)]);
    writ.start().await;
    let erin = writ.token("erin");

    // Joiners: two people, both engineers.
    let alice_id = create_user(&writ, &alice).await;
    let bob_id = create_user(&writ, &bob).await;
    let engineers = create_group(&writ, "engineers", &[&alice_id, &bob_id]).await;
    let ask =
        json!({"entitlement": "pg/read", "justification": "reports", "duration_seconds": 3600});
    let granted = |who: &str| {
        let token = writ.token(who);
        let writ = &writ;
        let ask = ask.clone();
        let erin = erin.clone();
        async move {
            let request = writ.request_access(&token, ask).await;
            let grant = request.grant_id.expect("granted at once");
            writ.wait_for_grant_state(grant, &erin, Duration::from_secs(15), GrantState::Active)
                .await;
            grant
        }
    };
    let alice_grant = granted(&alice).await;
    let bob_grant = granted(&bob).await;
    assert!(roles.holds(&read, &alice).await && roles.holds(&read, &bob).await);
    // Grants name people by their userName: someone holding one is not renamed.
    let (status, body) = scim(
        &writ,
        Method::PATCH,
        &format!("/Users/{bob_id}"),
        patch(json!([{"op": "replace", "path": "userName", "value": "robert"}])),
    )
    .await;
    assert_scim_error(status, &body, 400, Some("invalidValue"));

    // A mover: alice leaves engineers; policy no longer permits her grant.
    let (status, body) = scim(
        &writ,
        Method::PATCH,
        &format!("/Groups/{engineers}"),
        patch(json!([{"op": "Remove", "path": "members", "value": [{"value": alice_id}]}])),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let view = writ
        .wait_for_grant_state(
            alice_grant,
            &erin,
            Duration::from_secs(15),
            GrantState::Revoked,
        )
        .await;
    assert_eq!(
        view.grant.revoke_reason.as_ref().map(|r| r.as_str()),
        Some("no_longer_permitted")
    );
    assert!(view.grant.verified_at.is_some());
    assert!(!roles.holds(&read, &alice).await, "revoked on PostgreSQL");
    assert!(roles.holds(&read, &bob).await, "bob is still an engineer");

    // Back in the group she may ask again; then a leaver: made inactive, she keeps
    // nothing, and her token no longer works.
    let (status, body) = scim(
        &writ,
        Method::PATCH,
        &format!("/Groups/{engineers}"),
        patch(json!([{"op": "add", "path": "members", "value": [{"value": alice_id}]}])),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let alice_token = writ.token(&alice);
    let again = writ.request_access(&alice_token, ask.clone()).await;
    let again = again.grant_id.expect("granted again");
    writ.wait_for_grant_state(again, &erin, Duration::from_secs(15), GrantState::Active)
        .await;
    let (status, body) = scim(
        &writ,
        Method::PATCH,
        &format!("/Users/{alice_id}"),
        patch(json!([{"op": "replace", "path": "active", "value": false}])),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let view = writ
        .wait_for_grant_state(again, &erin, Duration::from_secs(15), GrantState::Revoked)
        .await;
    assert_eq!(
        view.grant.revoke_reason.as_ref().map(|r| r.as_str()),
        Some("leaver")
    );
    assert!(!roles.holds(&read, &alice).await);
    let (status, _) = writ.get("/v1/whoami", &alice_token).await;
    assert_eq!(status, 401);

    // A policy change: nobody may read any more; bob's grant goes too.
    std::fs::write(writ.path("policies/p.cedar"), "").expect("policy");
    let output = writ.run(&["policy", "reload", "--token", &erin]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("revoked 1 (no_longer_permitted)"),
        "{}",
        stdout(&output)
    );
    let view = writ
        .wait_for_grant_state(
            bob_grant,
            &erin,
            Duration::from_secs(15),
            GrantState::Revoked,
        )
        .await;
    assert_eq!(
        view.grant.revoke_reason.as_ref().map(|r| r.as_str()),
        Some("no_longer_permitted")
    );
    assert!(!roles.holds(&read, &bob).await);

    let verify = writ.run(&["audit", "verify"]);
    assert!(verify.status.success(), "{}", stderr(&verify));
    writ.stop();
    roles.cleanup().await;
}

/// scim2-tester creates, reads, lists, filters, replaces, patches (add, replace,
/// remove on every attribute of the published schemas) and deletes users and groups,
/// and checks the discovery endpoints: every check passes.
#[tokio::test]
async fn scim2_tester_finds_nothing_wrong() {
    let Some(python) = support::external_tool(
        "WRIT_SCIM_PYTHON",
        "python3",
        &["-c", "import scim2_tester, httpx2"],
    ) else {
        eprintln!(
            "scim: skipped scim2-tester, no python3 with scim2-tester[httpx2]==0.5.2 (run .ci/run)"
        );
        return;
    };
    let mut writ = Writ::new(
        &format!("{NOOP_CONFIG}{}", scim_client()),
        &[("p.cedar", "")],
    );
    writ.start().await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/scim_check.py");
    let output = std::process::Command::new(python)
        .arg(script)
        .arg(format!("{}/scim/v2", writ.base()))
        .arg(SECRET)
        .output()
        .expect("scim2-tester runs");
    assert!(output.status.success(), "{}", stderr(&output));
    let results: Vec<Value> = stdout(&output)
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect();
    assert!(results.len() > 100, "only {} checks ran", results.len());
    let failed: Vec<&Value> = results
        .iter()
        .filter(|r| {
            !["SUCCESS", "COMPLIANT", "ACCEPTABLE"].contains(&r["status"].as_str().unwrap_or(""))
        })
        .collect();
    assert!(failed.is_empty(), "{failed:#?}");
}

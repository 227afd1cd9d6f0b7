//! Access without an end: refused with a clear reason unless a policy marked
//! `@permanent("true")` permits it; granted, it has no scheduled end, still ends early
//! like any lease, and the `permanent-access` report flags it.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::{NOOP_CONFIG, Writ};
use writ_domain::lifecycle::GrantState;

const CONFIG: &str = r#"
[[entitlement]]
id = "t/write"
target = "t"
role = "write"
sensitivity = "high"
max_duration = "1h"

[[user]]
name = "erin"
groups = ["admins"]
"#;

const POLICY: &str = r#"
@id("alice-keeps-read")
@permanent("true")
permit (principal == User::"alice", action == Action::"request", resource == Entitlement::"t/read");

@id("alice-writes-for-an-hour")
permit (principal == User::"alice", action == Action::"request", resource == Entitlement::"t/write");
"#;

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn access_without_an_end_only_where_policy_says_and_reports_flag_it() {
    let mut writ = Writ::new(
        &format!("{NOOP_CONFIG}{CONFIG}\n[access]\nadmins = [\"admins\"]\n"),
        &[("policy.cedar", POLICY)],
    );
    let (alice, erin) = (writ.token("alice"), writ.token("erin"));
    writ.start().await;
    let ask = |entitlement: &str| json!({ "entitlement": entitlement, "permanent": true, "justification": "service account of record" });

    // A duration and no end at once is a contradiction.
    let mut both = ask("t/read");
    both["duration_seconds"] = json!(600);
    let (status, refused) = writ.post("/v1/requests", &alice, both).await;
    assert_eq!(
        (status, code(&refused)),
        (422, "invalid_duration"),
        "{refused}"
    );

    // A permit without @permanent does not give access without an end.
    let (status, denied) = writ.post("/v1/requests", &alice, ask("t/write")).await;
    assert_eq!(
        (status, denied["state"].as_str()),
        (201, Some("denied")),
        "{denied}"
    );
    assert_eq!(
        denied["decision"]["reasons"],
        json!([
            "access without an end is refused unless a policy marked @permanent(\"true\") permits it: ask for a duration"
        ]),
        "{denied}"
    );

    // The @permanent permit does: a lease with no scheduled end in this century.
    let (status, granted) = writ.post("/v1/requests", &alice, ask("t/read")).await;
    assert_eq!(
        (status, granted["state"].as_str()),
        (201, Some("approved")),
        "{granted}"
    );
    let grant_id = granted["grant_id"]
        .as_str()
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("grant_id in {granted}"));
    let view = writ
        .wait_for_grant_state(grant_id, &alice, Duration::from_secs(5), GrantState::Active)
        .await;
    assert!(view.grant.permanent, "{:?}", view.grant);
    assert!(
        view.grant.expires_at.to_string().as_str() > "2120",
        "{}",
        view.grant.expires_at
    );

    // The report flags it, for auditors and admins.
    let (status, report) = writ.get("/v1/reports/permanent-access", &erin).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["summary"]["grants"], "1", "{report}");
    assert_eq!(report["rows"][0][0], grant_id.to_string(), "{report}");
    let (status, _) = writ.get("/v1/reports/permanent-access", &alice).await;
    assert_eq!(status, 403);

    // It ends early like any lease, and then is no longer reported.
    let (status, revoked) = writ
        .post(
            &format!("/v1/grants/{grant_id}/revoke"),
            &alice,
            json!({ "reason": "moved to a workload identity" }),
        )
        .await;
    assert_eq!(status, 200, "{revoked}");
    writ.wait_for_grant_state(
        grant_id,
        &alice,
        Duration::from_secs(5),
        GrantState::Revoked,
    )
    .await;
    let (_, report) = writ.get("/v1/reports/permanent-access", &erin).await;
    assert_eq!(report["summary"]["grants"], "0", "{report}");

    // The command line asks for it as a duration of `permanent`.
    let output = writ.run(&[
        "request",
        "t/read",
        "--duration",
        "permanent",
        "-j",
        "again",
        "--json",
        "--token",
        &alice,
    ]);
    let answer: Value = serde_json::from_slice(&output.stdout).unwrap_or_default();
    assert!(output.status.success(), "{}", support::stderr(&output));
    assert_eq!(answer["state"], "approved", "{answer}");
    assert_eq!(
        answer["requested_duration_seconds"],
        writ_domain::PERMANENT_SECONDS
    );
    // The web UI says it has no end, rather than counting down a century.
    let ui = support::ui::UiClient::new(&writ.base());
    ui.sign_in_with_token(&alice).await;
    let home = ui.get("/ui").await;
    assert!(home.body.contains("no end"), "{}", home.body);
    let page = ui
        .get(&format!(
            "/ui/grants/{}",
            answer["grant_id"].as_str().unwrap_or_default()
        ))
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("no end"), "{}", page.body);
    assert!(page.body.contains("without an end"), "{}", page.body);

    let verify = writ.run(&["audit", "verify"]);
    assert!(verify.status.success(), "{}", support::stderr(&verify));
}

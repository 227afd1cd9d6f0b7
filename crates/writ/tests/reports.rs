//! End to end: the auditors' reports through the API and the CLI (table, CSV, JSON),
//! against a real PostgreSQL target, and only for auditors.

mod support;

use std::time::Duration;

use serde_json::json;
use support::{PG_URL, TestRoles, Writ, stderr, stdout};
use writ_domain::lifecycle::GrantState;

const POLICIES: &[(&str, &str)] = &[(
    "p.cedar",
    r#"
@id("engineers") @max_duration("1h")
permit (principal in Group::"engineers", action == Action::"request", resource)
when { resource.sensitivity == "low" };

@id("agents-for-their-owner") @max_duration("1h")
permit (principal, action == Action::"request", resource)
when { context.subject_kind == "agent" && context has on_behalf_of };

@id("oncall") permit (principal in Group::"engineers", action == Action::"break_glass", resource);
"#,
)];

#[tokio::test]
async fn reports_answer_auditors_in_a_table_csv_and_json() {
    let mut roles = TestRoles::new().await;
    let read = roles.create("read").await;
    let alice_account = roles.create("alice").await;
    let bot_account = roles.create("bot").await;
    let config = format!(
        r#"
[[target]]
name = "pg"
kind = "postgres"
url = "{PG_URL}"

[[entitlement]]
id = "pg/read"
target = "pg"
role = "{read}"
sensitivity = "low"
max_duration = "8h"
shared_role = true

[[entitlement]]
id = "pg/secret"
target = "pg"
role = "{read}"
sensitivity = "critical"
max_duration = "1h"
shared_role = true

[[break_glass]]
name = "outage"
entitlements = ["pg/read"]
max_duration = "30m"

[[user]]
name = "alice"
groups = ["engineers"]
accounts = {{ pg = "{alice_account}" }}

[[user]]
name = "dave"
groups = ["auditors"]

[[agent]]
name = "bot"
owner = "alice"
accounts = {{ pg = "{bot_account}" }}

[access]
auditors = ["auditors"]
"#
    );
    let mut writ = Writ::new(&config, POLICIES);
    writ.start().await;
    let (alice, dave, bot) = (writ.token("alice"), writ.token("dave"), writ.token("bot"));
    let ask = |entitlement: &str| json!({ "entitlement": entitlement, "justification": "work", "duration_seconds": 2 });
    // Granted and ended (time to revoke), denied (requests by outcome), an agent's
    // grant (agent access), a break-glass use.
    let (_, short) = writ.post("/v1/requests", &alice, ask("pg/read")).await;
    let short: writ_domain::GrantId = short["grant_id"]
        .as_str()
        .expect("grant")
        .parse()
        .expect("id");
    writ.post("/v1/requests", &alice, ask("pg/secret")).await;
    let (status, agent) = writ
        .post(
            "/v1/requests",
            &bot,
            json!({ "entitlement": "pg/read", "justification": "nightly", "on_behalf_of": "alice" }),
        )
        .await;
    assert_eq!(status, 201, "{agent}");
    let (status, _) = writ
        .post(
            "/v1/break-glass/outage",
            &alice,
            json!({ "justification": "down" }),
        )
        .await;
    assert_eq!(status, 201);
    writ.wait_for_grant_state(short, &alice, Duration::from_secs(15), GrantState::Revoked)
        .await;

    // Only auditors.
    let (status, refused) = writ.get("/v1/reports/time-to-revoke", &alice).await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (403, Some("not_an_auditor"))
    );
    let (status, _) = writ.get("/v1/reports/nope", &dave).await;
    assert_eq!(status, 404);
    let (status, _) = writ.get("/v1/reports/standing-access?days=0", &dave).await;
    assert_eq!(status, 422);

    let (status, ttr) = writ.get("/v1/reports/time-to-revoke", &dave).await;
    assert_eq!(status, 200, "{ttr}");
    assert_eq!(ttr["rows"][0][0], "at expiry");
    assert_eq!(ttr["rows"][0][1], "1", "{ttr}");
    let (_, outcomes) = writ.get("/v1/reports/requests-by-outcome", &dave).await;
    let secret = outcomes["rows"]
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r[0] == "pg/secret"))
        .expect("pg/secret row");
    assert_eq!(secret[3], "1", "one denied: {outcomes}");
    let (_, agents) = writ.get("/v1/reports/agent-access", &dave).await;
    assert_eq!(agents["rows"][0][0], "alice", "{agents}");
    assert_eq!(agents["rows"][0][1], "bot", "{agents}");
    assert_eq!(agents["summary"]["grants_of_alice"], "1");
    let (_, glass) = writ.get("/v1/reports/break-glass", &dave).await;
    assert_eq!(glass["summary"]["uses"], "1", "{glass}");
    for name in [
        "standing-access",
        "exceptions",
        "failed-revocations",
        "orphans",
    ] {
        let (status, report) = writ.get(&format!("/v1/reports/{name}"), &dave).await;
        assert_eq!(status, 200, "{name}: {report}");
        assert!(
            report["rows"].as_array().is_some_and(Vec::is_empty),
            "{name}: {report}"
        );
    }

    // The controls report: evidence per control over the period, with where it lies
    // on the ledger.
    let (status, controls) = writ.get("/v1/reports/controls", &dave).await;
    assert_eq!(status, 200, "{controls}");
    let rows = controls["rows"].as_array().cloned().unwrap_or_default();
    let ids: Vec<&str> = rows.iter().filter_map(|r| r[1].as_str()).collect();
    assert_eq!(
        ids,
        ["PR.AA-01", "PR.AA-03", "PR.AA-05", "NHI1", "NHI5", "NHI7"]
    );
    let control = |id: &str| {
        rows.iter()
            .find(|r| r[1] == id)
            .cloned()
            .unwrap_or_default()
    };
    let access = control("PR.AA-05");
    let evidence = access[4].as_str().unwrap_or_default();
    assert!(
        evidence.starts_with("4 requests (3 approved, 1 denied"),
        "{evidence}"
    );
    assert!(
        evidence.contains("1 revoked and verified gone"),
        "{evidence}"
    );
    assert!(
        access[5]
            .as_str()
            .is_some_and(|e| e.contains("1 break-glass activations")),
        "{access:?}"
    );
    let (first, last) = access[7]
        .as_str()
        .and_then(|range| range.split_once('-'))
        .and_then(|(a, b)| Some((a.parse::<i64>().ok()?, b.parse::<i64>().ok()?)))
        .expect("a ledger range");
    assert!(0 < first && first < last, "{access:?}");
    assert_eq!(
        control("NHI5")[4],
        "1 grants to services and agents: 0 ended and verified gone, 1 live"
    );
    assert!(
        controls["summary"]["ledger_seq"]
            .as_str()
            .is_some_and(|r| r.contains('-'))
    );
    let csv = writ.run(&[
        "report", "controls", "--days", "7", "--csv", "--token", &dave,
    ]);
    assert!(csv.status.success(), "{}", stderr(&csv));
    assert!(
        stdout(&csv).starts_with(
            "framework,control,title,writ_feature,evidence,exceptions,failures,ledger_seq"
        ),
        "{}",
        stdout(&csv)
    );

    // The CLI: a table, and CSV a spreadsheet reads.
    let table = writ.run(&["report", "agent-access", "--token", &dave]);
    assert!(table.status.success(), "{}", stderr(&table));
    assert!(
        stdout(&table).contains("OWNER  AGENT  ENTITLEMENT"),
        "{}",
        stdout(&table)
    );
    let csv = writ.run(&["report", "requests-by-outcome", "--csv", "--token", &dave]);
    assert!(csv.status.success(), "{}", stderr(&csv));
    let text = stdout(&csv);
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("entitlement,approved,pending_approval,denied,rejected,cancelled,expired,total")
    );
    assert!(text.contains("pg/secret,0,0,1,0,0,0,1"), "{text}");
    writ.stop();
    roles.cleanup().await;
}

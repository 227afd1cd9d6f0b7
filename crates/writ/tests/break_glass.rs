//! End to end: break-glass through the API and the CLI against a real PostgreSQL
//! target, on PostgreSQL storage. Granted at once and seen on the target; the profile's
//! sink told at once as a CloudEvent; the metric raised; the review refused to the
//! activator and their subordinate, recorded overdue by the scheduler, blocking the
//! next activation until someone else signs it off; `writ audit verify` replays it all.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::sink::Sink;
use support::{PG_URL, TestDatabase, TestRoles, Writ, eventually, stderr, stdout};

const POLICIES: &[(&str, &str)] = &[(
    "break_glass.cedar",
    r#"
@id("oncall-breaks-glass")
permit (principal in Group::"oncall", action == Action::"break_glass", resource);

@id("dba-approve")
permit (principal in Group::"dba", action == Action::"approve", resource);
"#,
)];

fn config(storage: &str, sink: &str, roles: &TestRoles, root_role: &str) -> String {
    let p = &roles.prefix;
    format!(
        r#"
[storage]
url = "{storage}"

[[target]]
name = "pg"
kind = "postgres"
url = "{PG_URL}"

[[entitlement]]
id = "pg/root"
target = "pg"
role = "{root_role}"
sensitivity = "critical"
max_duration = "4h"

[[notify]]
name = "pager"
url = "{sink}"
events = ["grant.revoked"]

[[break_glass]]
name = "db-outage"
entitlements = ["pg/root"]
max_duration = "1h"
notify = ["pager"]
review_within = "3s"

[[user]]
name = "olive"
groups = ["oncall"]
accounts = {{ pg = "{p}_olive" }}

[[user]]
name = "sam"
groups = ["dba"]
manager = "olive"

[[user]]
name = "erin"
groups = ["dba"]
"#
    )
}

#[tokio::test]
async fn break_glass_is_granted_at_once_told_and_reviewed_by_someone_else() {
    let (sink, sink_url) = Sink::start().await;
    let mut roles = TestRoles::new().await;
    let root_role = roles.create("root").await;
    let olive_account = roles.create("olive").await;
    let database = TestDatabase::create().await;
    let mut writ = Writ::new(
        &config(&database.url, &sink_url, &roles, &root_role),
        POLICIES,
    );
    writ.start().await;
    let (olive, sam, erin) = (writ.token("olive"), writ.token("sam"), writ.token("erin"));

    // Granted at once through the API, and on the target.
    let (status, activated) = writ
        .post(
            "/v1/break-glass/db-outage",
            &olive,
            json!({ "justification": "primary down, INC-7" }),
        )
        .await;
    assert_eq!(status, 201, "{activated}");
    let id = activated["activation"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    assert_eq!(activated["activation"]["review_state"], "open");
    assert_eq!(activated["requests"][0]["state"], "approved");
    assert_eq!(
        activated["requests"][0]["break_glass"]["activation"],
        id.as_str()
    );
    let holds = roles.holds(&root_role, &olive_account).await;
    assert!(holds, "the role is on the target when the answer comes");

    // Told at once: the pager (filtered to grant.revoked) receives the activation.
    assert!(
        eventually(Duration::from_secs(15), || sink
            .types()
            .contains(&"dev.writ.break_glass.activated.v1".to_string()))
        .await,
        "{:?}",
        sink.types()
    );
    let (_, metrics) = writ.get("/metrics", &olive).await;
    let metrics = metrics.as_str().unwrap_or_default();
    assert!(
        metrics.contains("writ_break_glass_activations_total{profile=\"db-outage\"} 1"),
        "{metrics}"
    );

    // The activator and their subordinate may not sign off.
    let sign_off = |comment: &str| json!({ "comment": comment });
    let path = format!("/v1/break-glass/activations/{id}/sign-off");
    let (status, refused) = writ.post(&path, &olive, sign_off("all fine")).await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (403, Some("self_review"))
    );
    let (status, refused) = writ.post(&path, &sam, sign_off("all fine")).await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (403, Some("subordinate_review")),
        "{refused}"
    );

    // Past the deadline the scheduler records the review overdue, the pager hears of
    // it, and olive cannot break the glass again.
    assert!(
        eventually(Duration::from_secs(20), || sink
            .types()
            .contains(&"dev.writ.break_glass.review_overdue.v1".to_string()))
        .await,
        "{:?}",
        sink.types()
    );
    let again = writ.run(&[
        "break-glass",
        "db-outage",
        "--justification",
        "still down",
        "--token",
        &olive,
    ]);
    assert!(!again.status.success(), "{}", stdout(&again));
    assert!(
        stderr(&again).contains("break_glass_review_overdue"),
        "{}",
        stderr(&again)
    );

    // Erin finds it in her inbox and signs it off from the CLI; olive may go again.
    let inbox = writ.run(&["activations", "--inbox", "--token", &erin]);
    assert!(stdout(&inbox).contains("overdue"), "{}", stdout(&inbox));
    let short = &id[..12];
    let signed = writ.run(&[
        "activations",
        "sign-off",
        short,
        "-m",
        "read the session log: read-only queries",
        "--token",
        &erin,
    ]);
    assert!(
        signed.status.success(),
        "{}{}",
        stdout(&signed),
        stderr(&signed)
    );
    assert!(
        stdout(&signed).contains("signed off     by erin"),
        "{}",
        stdout(&signed)
    );
    let again = writ.run(&[
        "break-glass",
        "db-outage",
        "-j",
        "second outage",
        "--duration",
        "10m",
        "--token",
        &olive,
    ]);
    assert!(
        again.status.success(),
        "{}{}",
        stdout(&again),
        stderr(&again)
    );
    assert!(stdout(&again).contains("BREAK-GLASS"), "{}", stdout(&again));

    // Who is not concerned sees nothing of it.
    let (status, _) = writ
        .get(&format!("/v1/break-glass/activations/{id}"), &sam)
        .await;
    assert_eq!(status, 404);

    let verify = writ.run(&["audit", "verify"]);
    assert!(
        verify.status.success() && stdout(&verify).contains("2 break-glass activations"),
        "{}{}",
        stdout(&verify),
        stderr(&verify)
    );
    writ.stop();
    roles.cleanup().await;
    database.drop_now().await;
}

/// An activation opens an incident in the profile's ticketing system — Jira (in its
/// project, of type Incident) or ServiceNow (its incident table) — retried while the
/// system refuses, and the key it got is on the ledger.
#[tokio::test]
async fn an_activation_opens_an_incident_in_jira_or_servicenow() {
    use support::{fake_jira, fake_servicenow};
    let jira = fake_jira::FakeJira::start().await;
    jira.put_project("OPS");
    let snow = fake_servicenow::FakeServiceNow::start().await;
    let config = format!(
        r#"
[[target]]
name = "t"
kind = "noop"

[[entitlement]]
id = "t/root"
target = "t"
role = "root"
sensitivity = "critical"
max_duration = "1h"

[[itsm]]
name = "jira"
kind = "jira"
url = "{jira_url}"
user = "{jira_user}"
password = "{jira_token}"
webhook_secret = "{jira_secret}"
request_states = ["Approved"]
poll_every = "off"
fields = {{ entitlement = "customfield_10050" }}

[[itsm]]
name = "snow"
kind = "servicenow"
url = "{snow_url}"
user = "{snow_user}"
password = "{snow_password}"
webhook_secret = "{snow_secret}"
request_states = ["2"]
poll_every = "off"
fields = {{ entitlement = "variables.entitlement" }}

[[break_glass]]
name = "jira-outage"
entitlements = ["t/root"]
max_duration = "30m"
incident = {{ system = "jira", project = "OPS" }}

[[break_glass]]
name = "snow-outage"
entitlements = ["t/root"]
max_duration = "30m"
incident = {{ system = "snow" }}

[[user]]
name = "olive"
groups = ["oncall"]
"#,
        jira_url = jira.url,
        jira_user = fake_jira::USER,
        jira_token = fake_jira::API_TOKEN,
        jira_secret = fake_jira::WEBHOOK_SECRET,
        snow_url = snow.url,
        snow_user = fake_servicenow::USER,
        snow_password = fake_servicenow::PASSWORD,
        snow_secret = fake_servicenow::WEBHOOK_SECRET,
    );
    let mut writ = Writ::new(&config, POLICIES);
    writ.start().await;
    let olive = writ.token("olive");
    let admin = writ.admin_token();

    // Jira refuses writes for now: the activation is granted all the same, and its
    // incident waits in the outbox.
    jira.set_failing_writes(Some(503));
    for profile in ["jira-outage", "snow-outage"] {
        let (status, activated) = writ
            .post(
                &format!("/v1/break-glass/{profile}"),
                &olive,
                json!({ "justification": "INC from the pager" }),
            )
            .await;
        assert_eq!(status, 201, "{activated}");
    }
    let incidents = snow.records("incident");
    assert!(
        eventually(Duration::from_secs(15), || !snow
            .records("incident")
            .is_empty())
        .await,
        "{incidents:?}"
    );
    let incident = &snow.records("incident")[0];
    assert_eq!(incident["urgency"], "1");
    assert!(
        incident["short_description"]
            .as_str()
            .is_some_and(|s| s.starts_with("BREAK-GLASS: olive activated snow-outage")),
        "{incident:?}"
    );
    assert!(jira.issue_as_held("OPS-1").is_none(), "Jira was refusing");
    // ServiceNow's entry leaves the outbox once its answer is recorded, just after
    // the fake has the record: Jira's alone stays.
    let mut outbox = Value::Null;
    for _ in 0..50 {
        outbox = writ.get("/v1/itsm/outbox", &admin).await.1;
        if outbox["backlog"] == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(outbox["backlog"], 1, "{outbox}");

    // Jira takes writes again: the incident is opened on the courier's next try.
    jira.set_failing_writes(None);
    assert!(
        eventually(Duration::from_secs(20), || jira
            .issue_as_held("OPS-1")
            .is_some())
        .await,
        "{:?}",
        jira.calls()
    );
    let issue = jira.issue_as_held("OPS-1").expect("issue");
    assert_eq!(issue["fields"]["issuetype"]["name"], "Incident");
    assert_eq!(issue["fields"]["labels"], json!(["writ-break-glass"]));

    // Both keys are on the ledger (Jira's once writ has recorded its answer, just
    // after the fake holds the issue), and the ledger verifies.
    let mut opened: Vec<String> = Vec::new();
    for _ in 0..100 {
        let (_, events) = writ.get("/v1/audit?limit=1000", &admin).await;
        opened = events["events"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["kind"] == "break_glass.incident_opened")
            .map(|e| {
                e["data"]["incident"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            })
            .collect();
        if opened.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(opened.len(), 2, "{opened:?}");
    assert!(opened.contains(&"OPS-1".to_string()), "{opened:?}");
    assert!(
        opened.iter().any(|key| key.starts_with("INC")),
        "{opened:?}"
    );
    writ.stop();
    let verify = writ.run(&["audit", "verify"]);
    assert!(
        verify.status.success(),
        "{}{}",
        stdout(&verify),
        stderr(&verify)
    );
}

//! End to end with a ticketing system: the real `writ` binary, a fake Jira shaped like
//! Jira Cloud's REST v3, signed webhooks, and a real PostgreSQL target.

mod support;

use writ_domain::lifecycle::GrantState;

use std::time::Duration;

use serde_json::{Value, json};
use support::fake_jira::{self, FakeJira, issue};
use support::{PG_URL, TestRoles, Writ, eventually, now_ms};
use writ_config::ItsmKind;
use writ_itsm::webhook::{JIRA_DELIVERY, JIRA_SIGNATURE, sign};

const ALICE_JIRA: &str = "5b10ac8d82e05b22cc7d4ef5";
const BOB_JIRA: &str = "5b10ac8d82e05b22cc7d4ef6";
const CAROL_JIRA: &str = "5b10ac8d82e05b22cc7d4ef7";

const POLICIES: &[(&str, &str)] = &[(
    "request.cedar",
    r#"
@id("read-auto")
permit (principal in Group::"engineers", action == Action::"request", resource)
when { resource.sensitivity == "low" };

// Critical access only with a ticket writ checked and found approved.
@id("admin-with-approved-ticket")
permit (principal in Group::"engineers", action == Action::"request", resource)
when { resource.sensitivity == "critical" && context.ticket_verified && context.ticket_state == "Approved" };

@id("high-one-approval")
@approvals("1")
permit (principal in Group::"engineers", action == Action::"request", resource)
when { resource.sensitivity == "high" };

@id("managers-approve")
permit (principal in Group::"managers", action == Action::"approve", resource);
"#,
)];

fn config(jira: &FakeJira, roles: &TestRoles, read_role: &str, admin_role: &str) -> String {
    let p = &roles.prefix;
    format!(
        r#"
[storage]
url = "sqlite://writ.db"

[[target]]
name = "pg"
kind = "postgres"
url = "{PG_URL}"

[[itsm]]
name = "jira"
kind = "jira"
url = "{url}"
user = "{user}"
password = "{token}"
webhook_secret = "{secret}"
request_states = ["Approved"]
close_fields = {{ resolution = {{ name = "Done" }} }}
fields = {{ entitlement = "customfield_10050", duration = "customfield_10052", window_end = "customfield_10053", beneficiary = "customfield_10060" }}

[[entitlement]]
id = "pg/read"
target = "pg"
role = "{read_role}"
sensitivity = "low"
max_duration = "8h"
shared_role = true

[[entitlement]]
id = "pg/admin"
target = "pg"
role = "{admin_role}"
sensitivity = "critical"
max_duration = "2h"
ticket_required = true

[[user]]
name = "alice"
groups = ["engineers"]
accounts = {{ pg = "{p}_alice", jira = "{ALICE_JIRA}" }}

[[user]]
name = "bob"
groups = ["engineers"]
accounts = {{ pg = "{p}_bob", jira = "{BOB_JIRA}" }}

[[user]]
name = "carol"
groups = ["managers", "engineers"]
accounts = {{ jira = "{CAROL_JIRA}" }}

[[entitlement]]
id = "pg/ops"
target = "pg"
role = "{read_role}"
sensitivity = "high"
max_duration = "1h"
shared_role = true
"#,
        url = jira.url,
        user = fake_jira::USER,
        token = fake_jira::API_TOKEN,
        secret = fake_jira::WEBHOOK_SECRET,
    )
}

struct Setup {
    writ: Writ,
    jira: FakeJira,
    roles: TestRoles,
    read_role: String,
    admin_role: String,
    alice_account: String,
}

async fn setup() -> Setup {
    let jira = FakeJira::start().await;
    let mut roles = TestRoles::new().await;
    let read_role = roles.create("read").await;
    let admin_role = roles.create("admin").await;
    let alice_account = roles.create("alice").await;
    roles.create("bob").await;
    let mut writ = Writ::new(&config(&jira, &roles, &read_role, &admin_role), POLICIES);
    writ.start().await;
    Setup {
        writ,
        jira,
        roles,
        read_role,
        admin_role,
        alice_account,
    }
}

/// Jira's date-time format, `minutes` from now.
fn jira_time(minutes: i64) -> String {
    let at = time::OffsetDateTime::now_utc() + time::Duration::minutes(minutes);
    at.format(time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]+0000"
    ))
    .unwrap_or_default()
}

impl Setup {
    /// POSTs a webhook body with the given signature and delivery id.
    async fn deliver(&self, body: &[u8], signature: Option<&str>, delivery: &str) -> (u16, Value) {
        let mut request = self
            .writ
            .http
            .post(format!("{}/v1/itsm/jira/webhook", self.writ.base()))
            .header("content-type", "application/json")
            .header(JIRA_DELIVERY, delivery)
            .body(body.to_vec());
        if let Some(signature) = signature {
            request = request.header(JIRA_SIGNATURE, signature);
        }
        support::answer_of(request).await
    }

    /// A correctly signed, fresh delivery about `key`.
    async fn deliver_signed(&self, key: &str, delivery: &str) -> (u16, Value) {
        let body = self.jira.webhook_body(key, now_ms());
        let signature = sign(ItsmKind::Jira, fake_jira::WEBHOOK_SECRET, &body, 0);
        self.deliver(&body, Some(&signature), delivery).await
    }

    async fn requests(&self, token: &str) -> Vec<Value> {
        let (status, list) = self.writ.get("/v1/requests", token).await;
        assert_eq!(status, 200, "{list}");
        list["requests"].as_array().cloned().unwrap_or_default()
    }

    async fn events_of_kind(&self, kind: &str) -> Vec<Value> {
        let (_, audit) = self
            .writ
            .get("/v1/audit?limit=1000", &self.writ.admin_token())
            .await;
        audit["events"]
            .as_array()
            .map(|events| {
                events
                    .iter()
                    .filter(|e| e["kind"] == kind)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    async fn finish(mut self) {
        let verify = self.writ.run(&["audit", "verify"]);
        assert!(
            verify.status.success(),
            "audit verify: {}",
            support::stderr(&verify)
        );
        self.writ.stop();
        self.roles.cleanup().await;
    }
}

#[tokio::test]
async fn a_signed_webhook_for_an_approved_ticket_becomes_one_request_and_a_lease() {
    let s = setup().await;
    let alice = s.writ.token("alice");
    // Approved, asks for 4h of pg/read, inside a change window that ends in 30 minutes.
    s.jira.put_issue(issue(
        "OPS-1",
        "Approved",
        ALICE_JIRA,
        json!({
            "customfield_10050": { "self": "x", "value": "pg/read", "id": "10100" },
            "customfield_10052": 14400,
            "customfield_10053": jira_time(30),
            // A large field: webhook bodies may exceed the API's 64 KiB limit.
            "description": "x".repeat(70 * 1024),
        }),
    ));

    let (status, outcome) = s.deliver_signed("OPS-1", "delivery-1").await;
    assert_eq!(status, 201, "{outcome}");
    assert_eq!(outcome["action"], "created");
    let request = &outcome["request"];
    assert_eq!(request["state"], "approved");
    assert_eq!(request["requester"], "alice");
    assert_eq!(request["ticket"]["key"], "OPS-1");
    assert_eq!(request["ticket"]["verified"]["state"], "Approved");
    assert_eq!(
        request["ticket"]["verified"]["ticket_type"],
        "Service Request"
    );
    let duration = request["duration_seconds"].as_i64().expect("duration");
    assert!(
        (1700..=1800).contains(&duration),
        "capped by the change window: {duration}"
    );
    assert!(
        s.jira
            .calls()
            .contains(&"GET /rest/api/3/issue/OPS-1".to_string()),
        "the ticket is re-read from Jira, not taken from the body"
    );

    let grant_id = request["grant_id"].as_str().expect("grant").to_string();
    let grant = s
        .writ
        .wait_for_grant_state(
            grant_id.parse().expect("grant id"),
            &alice,
            Duration::from_secs(10),
            GrantState::Active,
        )
        .await;
    assert_eq!(grant.grant.state, GrantState::Active, "{grant:?}");
    assert!(s.roles.holds(&s.read_role, &s.alice_account).await);

    // The same delivery retried, and a second delivery about the same ticket: one request.
    let (status, again) = s.deliver_signed("OPS-1", "delivery-1").await;
    assert_eq!(
        (status, again["action"].as_str()),
        (200, Some("duplicate")),
        "{again}"
    );
    let (status, other) = s.deliver_signed("OPS-1", "delivery-2").await;
    assert_eq!(
        (status, other["action"].as_str()),
        (200, Some("duplicate")),
        "{other}"
    );
    assert_eq!(other["request_id"], request["id"]);
    assert_eq!(s.requests(&alice).await.len(), 1);
    s.finish().await;
}

#[tokio::test]
async fn forged_unsigned_and_stale_deliveries_are_refused_and_recorded() {
    let s = setup().await;
    let alice = s.writ.token("alice");
    s.jira.put_issue(issue(
        "OPS-2",
        "Approved",
        ALICE_JIRA,
        json!({ "customfield_10050": "pg/read" }),
    ));
    let body = s.jira.webhook_body("OPS-2", now_ms());

    let forged = sign(ItsmKind::Jira, "not-the-secret-at-all", &body, 0);
    let (status, error) = s.deliver(&body, Some(&forged), "d-forged").await;
    assert_eq!(
        (status, error["error"]["code"].as_str()),
        (401, Some("bad_webhook")),
        "{error}"
    );

    let (status, error) = s.deliver(&body, None, "d-unsigned").await;
    assert_eq!(status, 401, "{error}");
    assert!(
        error["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("not signed")),
        "{error}"
    );

    let mut tampered = body.clone();
    let signature = sign(ItsmKind::Jira, fake_jira::WEBHOOK_SECRET, &body, 0);
    tampered.extend(b"\n");
    let (status, _) = s.deliver(&tampered, Some(&signature), "d-tampered").await;
    assert_eq!(status, 401);

    let stale = s.jira.webhook_body("OPS-2", now_ms() - 45 * 60 * 1000);
    let signature = sign(ItsmKind::Jira, fake_jira::WEBHOOK_SECRET, &stale, 0);
    let (status, error) = s.deliver(&stale, Some(&signature), "d-stale").await;
    assert_eq!(status, 401, "{error}");
    assert!(
        error["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("stale")),
        "{error}"
    );

    assert!(s.requests(&alice).await.is_empty(), "nothing was requested");
    assert!(
        s.jira.calls().is_empty(),
        "an unauthenticated delivery never reaches Jira"
    );
    // Each rejection is counted; the ledger gets one event per minute per ITSM (an
    // outsider must not be able to grow it at will), the first one at once.
    let rejections = s.events_of_kind("itsm.webhook_rejected").await;
    assert_eq!(rejections.len(), 1, "{rejections:?}");
    assert_eq!(rejections[0]["data"]["delivery"], "d-forged");
    assert_eq!(rejections[0]["data"]["rejected"], 1);
    let (_, metrics) = s
        .writ
        .call(reqwest::Method::GET, "/metrics", Some(&alice), None)
        .await;
    assert!(
        metrics
            .as_str()
            .is_some_and(|m| m.contains("writ_webhooks_rejected_total{itsm=\"jira\"} 4")),
        "{metrics}"
    );
    assert!(!s.roles.holds(&s.read_role, &s.alice_account).await);
    s.finish().await;
}

#[tokio::test]
async fn tickets_in_the_wrong_state_window_or_hands_make_no_request() {
    let s = setup().await;
    let alice = s.writ.token("alice");
    let bob = s.writ.token("bob");
    s.jira.put_issue(issue(
        "OPS-3",
        "Waiting for approval",
        ALICE_JIRA,
        json!({ "customfield_10050": "pg/read" }),
    ));
    s.jira.put_issue(issue(
        "OPS-4",
        "Approved",
        ALICE_JIRA,
        json!({ "customfield_10050": "pg/read", "customfield_10053": jira_time(-5) }),
    ));
    s.jira.put_issue(issue(
        "OPS-5",
        "Approved",
        "557058:stranger",
        json!({ "customfield_10050": "pg/read" }),
    ));

    let (status, outcome) = s.deliver_signed("OPS-3", "d-3").await;
    assert_eq!(
        (status, outcome["action"].as_str()),
        (200, Some("ignored")),
        "{outcome}"
    );
    let (status, error) = s.deliver_signed("OPS-4", "d-4").await;
    assert_eq!(
        (status, error["error"]["code"].as_str()),
        (422, Some("change_window_ended")),
        "{error}"
    );
    let (status, error) = s.deliver_signed("OPS-5", "d-5").await;
    assert_eq!(
        (status, error["error"]["code"].as_str()),
        (422, Some("unknown_requester")),
        "{error}"
    );

    // Once the ticket is approved in Jira, the next delivery makes the request.
    s.jira.put_issue(issue(
        "OPS-3",
        "Approved",
        ALICE_JIRA,
        json!({ "customfield_10050": "pg/read" }),
    ));
    let (status, outcome) = s.deliver_signed("OPS-3", "d-3b").await;
    assert_eq!(
        (status, outcome["action"].as_str()),
        (201, Some("created")),
        "{outcome}"
    );

    // Through the API: the ticket must be one the caller asked for or is assigned.
    let body = |key: &str| json!({ "entitlement": "pg/read", "justification": "j", "ticket": { "system": "jira", "key": key } });
    let (status, error) = s.writ.post("/v1/requests", &bob, body("OPS-3")).await;
    assert_eq!(
        (status, error["error"]["code"].as_str()),
        (422, Some("ticket_mismatch")),
        "{error}"
    );
    let (status, error) = s.writ.post("/v1/requests", &alice, body("OPS-404")).await;
    assert_eq!(
        (status, error["error"]["code"].as_str()),
        (422, Some("unknown_ticket")),
        "{error}"
    );
    let (status, error) = s
        .writ
        .post("/v1/requests", &alice, body("OPS-1 OR 1=1"))
        .await;
    assert_eq!(
        (status, error["error"]["code"].as_str()),
        (422, Some("bad_ticket_key")),
        "{error}"
    );
    // A caller cannot vouch for its own ticket.
    let forged = json!({ "entitlement": "pg/admin", "justification": "j",
        "ticket": { "system": "jira", "key": "OPS-3", "verified": { "state": "Approved" } } });
    let (status, _) = s.writ.post("/v1/requests", &alice, forged).await;
    assert_eq!(status, 400, "unknown fields in a ticket are refused");

    assert_eq!(
        s.requests(&alice).await.len(),
        1,
        "only OPS-3, once approved"
    );
    s.finish().await;
}

#[tokio::test]
async fn policy_sees_the_checked_ticket_and_jira_down_changes_nothing() {
    let s = setup().await;
    let alice = s.writ.token("alice");
    s.jira.put_issue(issue(
        "OPS-6",
        "Approved",
        ALICE_JIRA,
        json!({ "customfield_10050": "pg/admin" }),
    ));
    s.jira.put_issue(issue(
        "OPS-7",
        "In Progress",
        ALICE_JIRA,
        json!({ "customfield_10050": "pg/admin" }),
    ));
    let body = |key: Option<&str>| {
        let mut body = json!({ "entitlement": "pg/admin", "justification": "incident 7", "duration_seconds": 600 });
        if let Some(key) = key {
            body["ticket"] = json!({ "system": "jira", "key": key });
        }
        body
    };

    let (status, error) = s.writ.post("/v1/requests", &alice, body(None)).await;
    assert_eq!(
        (status, error["error"]["code"].as_str()),
        (422, Some("ticket_required")),
        "{error}"
    );

    s.jira.set_failing(Some(503));
    let (status, error) = s
        .writ
        .post("/v1/requests", &alice, body(Some("OPS-6")))
        .await;
    assert_eq!(
        (status, error["error"]["code"].as_str()),
        (503, Some("itsm_unavailable")),
        "{error}"
    );
    assert!(
        s.requests(&alice).await.is_empty(),
        "nothing recorded while Jira is down"
    );
    s.jira.set_failing(None);

    // OPS-7 is a real ticket but not approved: writ's config refuses it before policy.
    let (status, error) = s
        .writ
        .post("/v1/requests", &alice, body(Some("OPS-7")))
        .await;
    assert_eq!(
        (status, error["error"]["code"].as_str()),
        (422, Some("ticket_state")),
        "{error}"
    );

    let (status, request) = s
        .writ
        .post("/v1/requests", &alice, body(Some("OPS-6")))
        .await;
    assert_eq!(status, 201, "{request}");
    assert_eq!(request["state"], "approved", "{request}");
    assert_eq!(
        request["decision"]["policies"],
        json!(["admin-with-approved-ticket"])
    );
    let grant_id = request["grant_id"].as_str().expect("grant").to_string();
    let grant = s
        .writ
        .wait_for_grant_state(
            grant_id.parse().expect("grant id"),
            &alice,
            Duration::from_secs(10),
            GrantState::Active,
        )
        .await;
    assert_eq!(grant.grant.state, GrantState::Active, "{grant:?}");
    assert!(s.roles.holds(&s.admin_role, &s.alice_account).await);
    s.finish().await;
}

/// Polls until `done` holds or `timeout` passes.
#[tokio::test]
async fn the_ticket_gets_the_evidence_and_closes_only_after_verified_revocation() {
    let s = setup().await;
    // As many Jira workflows do, "Done" requires a resolution (writ sets close_fields).
    s.jira.set_resolution_required(true);
    let alice = s.writ.token("alice");
    s.jira.put_issue(issue(
        "OPS-8",
        "Approved",
        ALICE_JIRA,
        json!({ "customfield_10050": "pg/read", "customfield_10052": "3s" }),
    ));
    let (status, outcome) = s.deliver_signed("OPS-8", "d-8").await;
    assert_eq!(status, 201, "{outcome}");
    let request_id = outcome["request_id"].as_str().expect("request").to_string();
    let grant_id = outcome["request"]["grant_id"]
        .as_str()
        .expect("grant")
        .to_string();

    // While the lease runs: the decision and the activation are on the ticket, not closed.
    assert!(
        eventually(Duration::from_secs(10), || s.jira.comments("OPS-8").len()
            >= 2)
        .await,
        "{:?}",
        s.jira.comments("OPS-8")
    );
    let comments = s.jira.comments("OPS-8");
    assert!(
        comments[0].contains(&request_id)
            && comments[0].contains("approved automatically by policy"),
        "{}",
        comments[0]
    );
    assert!(
        comments[0].contains("read-auto") && comments[0].contains("policy set"),
        "{}",
        comments[0]
    );
    assert!(
        comments[1].contains("ACTIVE") && comments[1].contains(&grant_id),
        "{}",
        comments[1]
    );
    assert_eq!(
        s.jira.status("OPS-8"),
        "Approved",
        "open while access is held"
    );

    // After expiry: revoked on PostgreSQL, verified, and only then the ticket is closed.
    let grant = s
        .writ
        .wait_for_grant_state(
            grant_id.parse().expect("grant id"),
            &alice,
            Duration::from_secs(15),
            GrantState::Revoked,
        )
        .await;
    assert!(grant.grant.verified_at.is_some(), "{grant:?}");
    assert!(!s.roles.holds(&s.read_role, &s.alice_account).await);
    // The issue is moved to Done, then the same text added as its last comment.
    assert!(
        eventually(Duration::from_secs(10), || {
            s.jira.status("OPS-8") == "Done" && s.jira.comments("OPS-8").len() >= 4
        })
        .await,
        "closed after revocation"
    );
    let comments = s.jira.comments("OPS-8");
    assert_eq!(comments.len(), 4, "{comments:?}");
    assert!(
        comments[2].contains("REVOKING") && comments[2].contains("expired"),
        "{}",
        comments[2]
    );
    assert!(
        comments[3].contains("REVOKED") && comments[3].contains("verified gone"),
        "{}",
        comments[3]
    );
    assert!(
        comments[3].contains(&grant.grant.verified_at.expect("verified").to_rfc3339()),
        "{}",
        comments[3]
    );
    // Delivery is recorded right after Jira answers.
    let mut outbox = Value::Null;
    for _ in 0..50 {
        outbox = s.writ.get("/v1/itsm/outbox", &s.writ.admin_token()).await.1;
        if outbox["backlog"] == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(outbox["backlog"], 0, "{outbox}");
    // Closed with the resolution its screen requires, and nothing said to the customer:
    // every note, the closing one included, is an internal comment.
    assert_eq!(s.jira.status("OPS-8"), "Done");
    assert_eq!(s.jira.resolution("OPS-8").as_deref(), Some("Done"));
    assert!(
        s.jira.public_comments("OPS-8").is_empty(),
        "{:?}",
        s.jira.public_comments("OPS-8")
    );
    s.finish().await;
}

/// Jira's admin webhook fires on writ's own comments and its closing transition. Those
/// deliveries are about a ticket writ already acted on: each is a duplicate, and none
/// makes a request, a note or a change.
#[tokio::test]
async fn webhooks_jira_sends_about_writs_own_writes_change_nothing() {
    let s = setup().await;
    s.jira
        .register_webhook(&format!("{}/v1/itsm/jira/webhook", s.writ.base()));
    let alice = s.writ.token("alice");
    s.jira.put_issue(issue(
        "OPS-18",
        "Approved",
        ALICE_JIRA,
        json!({ "customfield_10050": "pg/read", "customfield_10052": "3s" }),
    ));
    let (status, outcome) = s.deliver_signed("OPS-18", "d-18").await;
    assert_eq!(status, 201, "{outcome}");
    let grant_id = outcome["request"]["grant_id"]
        .as_str()
        .expect("grant")
        .to_string();
    s.writ
        .wait_for_grant_state(
            grant_id.parse().expect("grant id"),
            &alice,
            Duration::from_secs(15),
            GrantState::Revoked,
        )
        .await;
    // Four comments and the transition: five deliveries back to writ.
    assert!(
        eventually(Duration::from_secs(15), || s.jira.webhook_answers().len()
            == 5)
        .await,
        "{:?}",
        s.jira.webhook_answers()
    );
    for (status, answer) in s.jira.webhook_answers() {
        assert_eq!(
            (status, answer["action"].as_str()),
            (200, Some("duplicate")),
            "{answer}"
        );
    }
    assert_eq!(s.jira.status("OPS-18"), "Done");
    assert_eq!(s.jira.comments("OPS-18").len(), 4);
    assert_eq!(s.requests(&alice).await.len(), 1);
    s.finish().await;
}

#[tokio::test]
async fn evidence_waits_out_a_jira_outage_and_arrives_in_order_once() {
    let s = setup().await;
    let alice = s.writ.token("alice");
    s.jira.put_issue(issue(
        "OPS-9",
        "Approved",
        ALICE_JIRA,
        json!({ "customfield_10050": "pg/read" }),
    ));
    let body = json!({ "entitlement": "pg/read", "justification": "report", "duration_seconds": 3600, "ticket": { "system": "jira", "key": "OPS-9" } });
    let (status, request) = s.writ.post("/v1/requests", &alice, body).await;
    assert_eq!(status, 201, "{request}");
    let grant_id = request["grant_id"].as_str().expect("grant").to_string();
    s.writ
        .wait_for_grant_state(
            grant_id.parse().expect("grant id"),
            &alice,
            Duration::from_secs(10),
            GrantState::Active,
        )
        .await;
    assert!(
        eventually(Duration::from_secs(10), || s.jira.comments("OPS-9").len()
            == 2)
        .await
    );

    // Jira goes down; the lease is ended early; writ revokes regardless and keeps the notes.
    s.jira.set_failing(Some(503));
    let (status, grant) = s
        .writ
        .post(
            &format!("/v1/grants/{grant_id}/revoke"),
            &alice,
            json!({ "reason": "done early" }),
        )
        .await;
    assert_eq!(status, 200, "{grant:?}");
    s.writ
        .wait_for_grant_state(
            grant_id.parse().expect("grant id"),
            &alice,
            Duration::from_secs(10),
            GrantState::Revoked,
        )
        .await;
    assert!(
        !s.roles.holds(&s.read_role, &s.alice_account).await,
        "revocation does not wait for Jira"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (_, outbox) = s.writ.get("/v1/itsm/outbox", &s.writ.admin_token()).await;
    assert_eq!(
        outbox["backlog"], 2,
        "revocation started and done: {outbox}"
    );
    assert!(
        outbox["entries"][0]["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("503")),
        "{outbox}"
    );
    assert!(
        outbox["entries"][0]["attempts"]
            .as_i64()
            .is_some_and(|n| n >= 1),
        "{outbox}"
    );
    let (_, metrics) = s
        .writ
        .call(reqwest::Method::GET, "/metrics", Some(&alice), None)
        .await;
    assert!(
        metrics
            .as_str()
            .is_some_and(|m| m.contains("writ_outbox_backlog 2")),
        "{metrics}"
    );

    s.jira.set_failing(None);
    assert!(
        eventually(Duration::from_secs(15), || s.jira.status("OPS-9") == "Done").await,
        "delivered once Jira is back"
    );
    let comments = s.jira.comments("OPS-9");
    assert_eq!(comments.len(), 4, "each note once: {comments:?}");
    assert!(
        comments[2].contains("REVOKING") && comments[2].contains("done early"),
        "in order: {}",
        comments[2]
    );
    assert!(
        comments[3].contains("REVOKED") && comments[3].contains("done early"),
        "{}",
        comments[3]
    );
    s.finish().await;
}

#[tokio::test]
async fn a_ticket_closed_while_access_is_active_is_a_revoke() {
    let s = setup().await;
    let alice = s.writ.token("alice");
    s.jira.put_issue(issue(
        "OPS-10",
        "Approved",
        ALICE_JIRA,
        json!({ "customfield_10050": "pg/read" }),
    ));
    let (status, outcome) = s.deliver_signed("OPS-10", "d-10").await;
    assert_eq!(status, 201, "{outcome}");
    let grant_id = outcome["request"]["grant_id"]
        .as_str()
        .expect("grant")
        .to_string();
    s.writ
        .wait_for_grant_state(
            grant_id.parse().expect("grant id"),
            &alice,
            Duration::from_secs(10),
            GrantState::Active,
        )
        .await;
    assert!(s.roles.holds(&s.read_role, &s.alice_account).await);

    // Someone resolves the ticket in Jira while the lease still has hours to run.
    s.jira.put_issue(issue(
        "OPS-10",
        "Done",
        ALICE_JIRA,
        json!({ "customfield_10050": "pg/read" }),
    ));
    let (status, outcome) = s.deliver_signed("OPS-10", "d-10-closed").await;
    assert_eq!(
        (status, outcome["action"].as_str()),
        (200, Some("revoked")),
        "{outcome}"
    );
    let grant = s
        .writ
        .wait_for_grant_state(
            grant_id.parse().expect("grant id"),
            &alice,
            Duration::from_secs(10),
            GrantState::Revoked,
        )
        .await;
    assert!(grant.grant.verified_at.is_some(), "{grant:?}");
    let started = s.events_of_kind("grant.revoke_started").await;
    assert_eq!(started.len(), 1, "{started:?}");
    assert_eq!(
        started[0]["actor"], "writ:itsm",
        "the ledger says the ticket's closing ended it"
    );
    assert!(
        grant
            .grant
            .revoke_reason
            .as_ref()
            .is_some_and(|r| r.as_str().contains("closed in jira")),
        "{grant:?}"
    );
    assert!(
        !s.roles.holds(&s.read_role, &s.alice_account).await,
        "access is gone from PostgreSQL"
    );

    // The ticket gets the evidence of the early close, and is not transitioned again.
    assert!(
        eventually(Duration::from_secs(10), || s.jira.comments("OPS-10").len()
            == 4)
        .await,
        "{:?}",
        s.jira.comments("OPS-10")
    );
    let last = s.jira.comments("OPS-10").pop().unwrap_or_default();
    assert!(
        last.contains("REVOKED") && last.contains("closed in jira"),
        "{last}"
    );
    assert!(
        !s.jira
            .calls()
            .iter()
            .any(|c| c.starts_with("POST /rest/api/3/issue/OPS-10/transitions"))
    );

    // A replay of the closing delivery changes nothing more.
    let (status, again) = s.deliver_signed("OPS-10", "d-10-closed-2").await;
    assert_eq!(
        (status, again["action"].as_str()),
        (200, Some("duplicate")),
        "{again}"
    );
    s.finish().await;
}

#[tokio::test]
async fn approvals_in_jira_count_only_for_eligible_approvers() {
    let s = setup().await;
    let alice = s.writ.token("alice");
    s.jira.put_issue(issue(
        "OPS-11",
        "Approved",
        ALICE_JIRA,
        json!({ "customfield_10050": "pg/ops" }),
    ));
    let (status, outcome) = s.deliver_signed("OPS-11", "d-11").await;
    assert_eq!(status, 201, "{outcome}");
    assert_eq!(outcome["request"]["state"], "pending_approval", "{outcome}");
    let request_id = outcome["request_id"].as_str().expect("request").to_string();

    // The requester herself, a non-manager and someone unknown to writ approve in Jira: none counts.
    s.jira.set_approvers(
        "OPS-11",
        &[
            (ALICE_JIRA, "approved"),
            (BOB_JIRA, "approved"),
            ("557058:nobody", "approved"),
            (CAROL_JIRA, "pending"),
        ],
    );
    let (status, outcome) = s.deliver_signed("OPS-11", "d-11-a").await;
    assert_eq!(
        (status, outcome["action"].as_str()),
        (200, Some("approvals")),
        "{outcome}"
    );
    let reason = outcome["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("alice (self_approval)")
            && reason.contains("bob (not_an_approver)")
            && reason.contains("557058:nobody"),
        "{reason}"
    );
    let (_, request) = s
        .writ
        .get(&format!("/v1/requests/{request_id}"), &alice)
        .await;
    assert_eq!(request["state"], "pending_approval", "{request}");
    assert!(
        request["approvals"].as_array().is_some_and(Vec::is_empty),
        "{request}"
    );

    // A manager approves in Jira: that counts, once, and the lease starts.
    s.jira.set_approvers(
        "OPS-11",
        &[(BOB_JIRA, "approved"), (CAROL_JIRA, "approved")],
    );
    let (status, outcome) = s.deliver_signed("OPS-11", "d-11-b").await;
    assert_eq!(
        (status, outcome["action"].as_str()),
        (200, Some("approvals")),
        "{outcome}"
    );
    let (_, request) = s
        .writ
        .get(&format!("/v1/requests/{request_id}"), &alice)
        .await;
    assert_eq!(request["state"], "approved", "{request}");
    assert_eq!(request["approvals"][0]["approver"], "carol");
    assert!(
        request["approvals"][0]["comment"]
            .as_str()
            .is_some_and(|c| c.contains("approved in jira on ticket OPS-11")),
        "{request}"
    );
    let grant_id = request["grant_id"].as_str().expect("grant").to_string();
    let grant = s
        .writ
        .wait_for_grant_state(
            grant_id.parse().expect("grant id"),
            &alice,
            Duration::from_secs(10),
            GrantState::Active,
        )
        .await;
    assert_eq!(grant.grant.state, GrantState::Active, "{grant:?}");
    assert!(s.roles.holds(&s.read_role, &s.alice_account).await);

    // Another delivery once approved changes nothing.
    let (status, again) = s.deliver_signed("OPS-11", "d-11-c").await;
    assert_eq!(
        (status, again["action"].as_str()),
        (200, Some("duplicate")),
        "{again}"
    );
    assert_eq!(s.events_of_kind("request.approved").await.len(), 1);
    s.finish().await;
}

/// Jira limiting writ (429 with Retry-After) is waited out for as long as it asks, not
/// hammered with writ's own shorter backoff; the evidence still arrives afterwards.
#[tokio::test]
async fn a_rate_limited_jira_is_not_called_again_before_it_asks() {
    let s = setup().await;
    let alice = s.writ.token("alice");
    s.jira.put_issue(issue(
        "OPS-14",
        "Approved",
        ALICE_JIRA,
        json!({ "customfield_10050": "pg/read" }),
    ));
    // Jira limits writes: the ticket is read, the notes are refused.
    s.jira.set_failing_writes(Some(429));
    let body = json!({ "entitlement": "pg/read", "justification": "report", "duration_seconds": 3600, "ticket": { "system": "jira", "key": "OPS-14" } });
    let (status, request) = s.writ.post("/v1/requests", &alice, body).await;
    assert_eq!(status, 201, "{request}");
    let mut outbox = serde_json::Value::Null;
    for _ in 0..100 {
        let (_, answer) = s.writ.get("/v1/itsm/outbox", &s.writ.admin_token()).await;
        outbox = answer;
        if outbox["entries"][0]["attempts"].as_i64() >= Some(1) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let entry = &outbox["entries"][0];
    assert!(
        entry["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("wait 120s")),
        "{outbox}"
    );
    let next = time::OffsetDateTime::parse(
        entry["next_attempt_at"].as_str().expect("next attempt"),
        &time::format_description::well_known::Rfc3339,
    )
    .expect("RFC 3339");
    let waits = next - time::OffsetDateTime::now_utc();
    assert!(
        waits > time::Duration::seconds(100),
        "retried after {waits}, not after the 120 s Jira asked for"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (_, again) = s.writ.get("/v1/itsm/outbox", &s.writ.admin_token()).await;
    assert_eq!(
        again["entries"][0]["attempts"], 1,
        "not called again: {again}"
    );
    s.jira.set_failing_writes(None);
    s.finish().await;
}

/// A ticket backs the request it describes: cited for another entitlement it is refused,
/// and the duration it asks for caps the grant.
#[tokio::test]
async fn a_cited_ticket_must_describe_the_request() {
    let s = setup().await;
    let alice = s.writ.token("alice");
    s.jira.put_issue(issue(
        "OPS-15",
        "Approved",
        ALICE_JIRA,
        json!({ "customfield_10050": "pg/read", "customfield_10052": "30m" }),
    ));
    let ask = |entitlement: &str| {
        json!({ "entitlement": entitlement, "justification": "deploy", "duration_seconds": 7200,
                "ticket": { "system": "jira", "key": "OPS-15" } })
    };
    let (status, refused) = s.writ.post("/v1/requests", &alice, ask("pg/admin")).await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(refused["error"]["code"], "ticket_mismatch", "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("entitlement \"pg/read\", not \"pg/admin\"")),
        "{refused}"
    );
    let (status, request) = s.writ.post("/v1/requests", &alice, ask("pg/read")).await;
    assert_eq!(status, 201, "{request}");
    assert_eq!(request["requested_duration_seconds"], 7200);
    assert_eq!(
        request["duration_seconds"], 1800,
        "capped by the ticket: {request}"
    );
    s.finish().await;
}

/// One ticket backs one request, however it is cited; closing the ticket before its
/// request is approved cancels the request.
#[tokio::test]
async fn a_ticket_backs_one_request_and_closing_it_ends_that_request() {
    let s = setup().await;
    let alice = s.writ.token("alice");
    s.jira.put_issue(issue(
        "OPS-16",
        "Approved",
        ALICE_JIRA,
        json!({ "customfield_10050": "pg/read" }),
    ));
    let ask = json!({ "entitlement": "pg/read", "justification": "deploy",
                      "ticket": { "system": "jira", "key": "OPS-16" } });
    let (status, first) = s.writ.post("/v1/requests", &alice, ask.clone()).await;
    assert_eq!(status, 201, "{first}");
    let (status, second) = s.writ.post("/v1/requests", &alice, ask).await;
    assert_eq!(status, 409, "{second}");
    assert_eq!(second["error"]["code"], "ticket_taken", "{second}");
    assert!(
        second["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains(first["id"].as_str().unwrap_or("?"))),
        "the refusal names the request the ticket backs: {second}"
    );
    // A webhook about the same ticket makes no second request either.
    let (status, outcome) = s.deliver_signed("OPS-16", "d-16").await;
    assert_eq!(
        (status, outcome["action"].as_str()),
        (200, Some("duplicate")),
        "{outcome}"
    );
    assert_eq!(outcome["request_id"], first["id"], "{outcome}");

    // A ticket whose request waits for approval, closed in Jira: the request is cancelled.
    s.jira.put_issue(issue(
        "OPS-17",
        "Approved",
        ALICE_JIRA,
        json!({ "customfield_10050": "pg/ops" }),
    ));
    let (status, outcome) = s.deliver_signed("OPS-17", "d-17").await;
    assert_eq!(status, 201, "{outcome}");
    assert_eq!(outcome["request"]["state"], "pending_approval", "{outcome}");
    let pending = outcome["request_id"].as_str().expect("request").to_string();
    let (status, refused) = s
        .writ
        .post(
            "/v1/requests",
            &alice,
            json!({ "entitlement": "pg/ops", "justification": "again",
                    "ticket": { "system": "jira", "key": "OPS-17" } }),
        )
        .await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (409, Some("ticket_taken")),
        "{refused}"
    );
    s.jira.put_issue(issue(
        "OPS-17",
        "Done",
        ALICE_JIRA,
        json!({ "customfield_10050": "pg/ops" }),
    ));
    let (status, outcome) = s.deliver_signed("OPS-17", "d-17-closed").await;
    assert_eq!(
        (status, outcome["action"].as_str()),
        (200, Some("cancelled")),
        "{outcome}"
    );
    let (_, request) = s.writ.get(&format!("/v1/requests/{pending}"), &alice).await;
    assert_eq!(request["state"], "cancelled", "{request}");
    assert!(
        request["close_comment"]
            .as_str()
            .is_some_and(|c| c.contains("closed in jira")),
        "{request}"
    );
    // Approving it afterwards in Jira changes nothing.
    s.jira.set_approvers("OPS-17", &[(CAROL_JIRA, "approved")]);
    let (status, again) = s.deliver_signed("OPS-17", "d-17-late").await;
    assert_eq!(
        (status, again["action"].as_str()),
        (200, Some("duplicate")),
        "{again}"
    );
    assert!(s.events_of_kind("request.approved").await.is_empty());
    s.finish().await;
}

/// A Jira ticket reported by one person for another (a user picker, `fields.beneficiary`):
/// the person it is for gets the access; the reporter cannot use it for themselves.
#[tokio::test]
async fn a_ticket_reported_for_someone_else_gives_them_the_access() {
    let s = setup().await;
    s.jira.put_issue(issue(
        "OPS-20",
        "Approved",
        BOB_JIRA,
        json!({ "customfield_10050": "pg/read", "customfield_10060": { "accountId": ALICE_JIRA, "displayName": "Alice" } }),
    ));
    let bob = s.writ.token("bob");
    let (status, refused) = s
        .writ
        .post(
            "/v1/requests",
            &bob,
            json!({ "entitlement": "pg/read", "justification": "me",
                    "ticket": { "system": "jira", "key": "OPS-20" } }),
        )
        .await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (422, Some("ticket_mismatch")),
        "{refused}"
    );
    let (status, outcome) = s.deliver_signed("OPS-20", "d-20").await;
    assert_eq!(status, 201, "{outcome}");
    assert_eq!(
        (
            outcome["request"]["requester"].as_str(),
            outcome["request"]["subject"].as_str()
        ),
        (Some("bob"), Some("alice")),
        "{outcome}"
    );
    let grant_id = outcome["request"]["grant_id"]
        .as_str()
        .expect("granted")
        .to_string();
    let admin = s.writ.admin_token();
    s.writ
        .wait_for_grant_state(
            grant_id.parse().expect("grant id"),
            &admin,
            Duration::from_secs(10),
            GrantState::Active,
        )
        .await;
    assert!(s.roles.holds(&s.read_role, &s.alice_account).await);
    s.finish().await;
}

/// Jira retries a webhook for about 30 minutes only: a ticket whose deliveries were all
/// lost is found by polling (JQL on status and `updated`).
#[tokio::test]
async fn a_ticket_whose_deliveries_were_lost_is_found_by_polling() {
    let mut s = setup().await;
    s.writ.stop();
    s.writ.replace_in_config(
        "request_states = [\"Approved\"]",
        "request_states = [\"Approved\"]\npoll_every = \"1s\"",
    );
    s.jira.put_issue(issue(
        "OPS-30",
        "Approved",
        ALICE_JIRA,
        json!({ "customfield_10050": "pg/read" }),
    ));
    s.writ.start().await;
    let admin = s.writ.admin_token();
    assert!(
        eventually(Duration::from_secs(15), || s
            .jira
            .calls()
            .iter()
            .any(|c| c.starts_with(
                "GET /rest/api/3/search/jql status in (\"Approved\")"
            )))
        .await,
        "{:?}",
        s.jira.calls()
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let (_, list) = s.writ.get("/v1/requests", &admin).await;
        if list["requests"]
            .as_array()
            .is_some_and(|all| all.iter().any(|r| r["ticket"]["key"] == "OPS-30"))
        {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{}", s.writ.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    s.finish().await;
}

/// `requests.ticket_max_total` caps what one ticket backs: the request citing it, and
/// any extension of its grant (which cites the same ticket, checked again).
#[tokio::test]
async fn one_ticket_backs_at_most_ticket_max_total_extensions_included() {
    let mut s = setup().await;
    s.writ.stop();
    s.writ.replace_in_config(
        "[storage]",
        "[requests]\nticket_max_total = \"1h\"\n\n[storage]",
    );
    s.writ.start().await;
    let alice = s.writ.token("alice");
    s.jira.put_issue(issue(
        "OPS-31",
        "Approved",
        ALICE_JIRA,
        json!({ "customfield_10050": "pg/read" }),
    ));
    let (status, request) = s
        .writ
        .post(
            "/v1/requests",
            &alice,
            json!({ "entitlement": "pg/read", "justification": "deploy", "duration_seconds": 3 * 3600,
                    "ticket": { "system": "jira", "key": "OPS-31" } }),
        )
        .await;
    assert_eq!(status, 201, "{request}");
    assert_eq!(
        request["duration_seconds"], 3600,
        "capped by ticket_max_total: {request}"
    );
    let grant: writ_domain::GrantId = request["grant_id"]
        .as_str()
        .expect("grant")
        .parse()
        .expect("id");
    s.writ
        .wait_for_grant_state(
            grant,
            &alice,
            std::time::Duration::from_secs(10),
            GrantState::Active,
        )
        .await;
    // The ticket has backed all it may: no extension.
    let (status, refused) = s
        .writ
        .post(
            &format!("/v1/grants/{grant}/extend"),
            &alice,
            json!({ "duration_seconds": 1800, "justification": "overran" }),
        )
        .await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (409, Some("not_extendable")),
        "{refused}"
    );
    // A ticket no longer in an approved state backs no extension either.
    s.jira.put_issue(issue(
        "OPS-31",
        "Done",
        ALICE_JIRA,
        json!({ "customfield_10050": "pg/read" }),
    ));
    let (status, refused) = s
        .writ
        .post(
            &format!("/v1/grants/{grant}/extend"),
            &alice,
            json!({ "duration_seconds": 60, "justification": "overran" }),
        )
        .await;
    assert_eq!(status, 422, "{refused}");
    s.finish().await;
}

//! End to end with ServiceNow: the Business Rule's signed webhook (base64 HMAC over
//! timestamp + body), the Table API on `sc_req_item`, work notes and closing.

mod support;

use writ_domain::lifecycle::GrantState;

use std::time::Duration;

use serde_json::Value;
use support::fake_servicenow::{self, FakeServiceNow, item};
use support::{PG_URL, TestRoles, Writ, now_ms};
use writ_config::ItsmKind;
use writ_itsm::webhook::{SERVICENOW_SIGNATURE, SERVICENOW_TIMESTAMP, sign};

const ALICE_SYS_ID: &str = "62826bf03710200044e0bfc8bcbe5df1";

async fn deliver(writ: &Writ, body: &[u8], sent_ms: i64, secret: &str) -> (u16, Value) {
    let signature = sign(ItsmKind::ServiceNow, secret, body, sent_ms);
    support::answer_of(
        writ.http
            .post(format!("{}/v1/itsm/snow/webhook", writ.base()))
            .header("content-type", "application/json")
            .header(SERVICENOW_TIMESTAMP, sent_ms.to_string())
            .header(SERVICENOW_SIGNATURE, signature)
            .body(body.to_vec()),
    )
    .await
}

const CAROL_SYS_ID: &str = "62826bf03710200044e0bfc8bcbe5df2";
const DAVE_SYS_ID: &str = "62826bf03710200044e0bfc8bcbe5df3";

const POLICY: &str = r#"
@id("auto")
permit (principal in Group::"engineers", action == Action::"request", resource)
when { resource.sensitivity == "low" };

@id("one-approval")
@approvals("1")
permit (principal in Group::"engineers", action == Action::"request", resource)
when { resource.sensitivity == "high" };

// Submitted on someone's behalf: what counts is whom it is for.
@id("for-an-engineer")
@approvals("1")
permit (principal, action == Action::"request", resource)
when { resource.sensitivity == "high" && context.subject in Group::"engineers" };

@id("managers-approve")
permit (principal in Group::"managers", action == Action::"approve", resource);
"#;

struct Setup {
    snow: FakeServiceNow,
    roles: TestRoles,
    read_role: String,
    alice_account: String,
    writ: Writ,
}

/// A fresh, correctly signed delivery about the item `sys_id`, as the Business Rule sends.
async fn deliver_item(writ: &Writ, snow: &FakeServiceNow, sys_id: &str) -> (u16, Value) {
    deliver(
        writ,
        &snow.webhook_body(sys_id),
        now_ms(),
        fake_servicenow::WEBHOOK_SECRET,
    )
    .await
}

async fn setup() -> Setup {
    let snow = FakeServiceNow::start().await;
    let mut roles = TestRoles::new().await;
    let read_role = roles.create("read").await;
    let alice_account = roles.create("alice").await;
    let config = format!(
        r#"
[storage]
url = "sqlite://writ.db"

[[target]]
name = "pg"
kind = "postgres"
url = "{PG_URL}"

[[itsm]]
name = "snow"
kind = "servicenow"
url = "{url}"
user = "{user}"
password = "{password}"
webhook_secret = "{secret}"
request_states = ["2"]
approval_required = true
fields = {{ entitlement = "variables.entitlement", duration = "variables.duration" }}

[[entitlement]]
id = "pg/read"
target = "pg"
role = "{read_role}"
sensitivity = "low"
max_duration = "8h"
shared_role = true

[[entitlement]]
id = "pg/ops"
target = "pg"
role = "{read_role}"
sensitivity = "high"
max_duration = "8h"
shared_role = true

[[user]]
name = "alice"
groups = ["engineers"]
accounts = {{ pg = "{alice_account}", snow = "{ALICE_SYS_ID}" }}

[[user]]
name = "carol"
groups = ["managers"]
accounts = {{ snow = "{CAROL_SYS_ID}" }}

[[user]]
name = "dave"
groups = ["managers"]
accounts = {{ snow = "{DAVE_SYS_ID}" }}
"#,
        url = snow.url,
        user = fake_servicenow::USER,
        password = fake_servicenow::PASSWORD,
        secret = fake_servicenow::WEBHOOK_SECRET,
    );
    let mut writ = Writ::new(&config, &[("request.cedar", POLICY)]);
    writ.start().await;
    Setup {
        snow,
        roles,
        read_role,
        alice_account,
        writ,
    }
}

/// The ledger still verifies; then the server stops and its roles go.
async fn finish(mut writ: Writ, roles: TestRoles) {
    let verify = writ.run(&["audit", "verify"]);
    assert!(verify.status.success(), "{}", support::stderr(&verify));
    writ.stop();
    roles.cleanup().await;
}

#[tokio::test]
async fn a_requested_item_becomes_a_lease_with_work_notes_and_closes_after_revocation() {
    let Setup {
        snow,
        roles,
        read_role,
        alice_account,
        writ,
    } = setup().await;
    let alice = writ.token("alice");
    let sys_id = "aeed229047801200e0ef563dbb9a71c2";
    snow.put_item(item(
        "RITM0010001",
        sys_id,
        "2",
        ALICE_SYS_ID,
        &[
            ("variables.entitlement", "pg/read"),
            ("variables.duration", "3"),
        ],
    ));

    // Forged and stale deliveries are refused before ServiceNow is asked anything.
    let body = snow.webhook_body(sys_id);
    let (status, _) = deliver(&writ, &body, now_ms(), "not-the-servicenow-secret").await;
    assert_eq!(status, 401);
    let (status, error) = deliver(
        &writ,
        &body,
        now_ms() - 45 * 60 * 1000,
        fake_servicenow::WEBHOOK_SECRET,
    )
    .await;
    assert_eq!(status, 401, "{error}");
    assert!(snow.calls().is_empty(), "{:?}", snow.calls());
    // On the record under the delivery id the sender claimed: the item and its version.
    let (_, audit) = writ.get("/v1/audit?limit=1000", &writ.admin_token()).await;
    let rejected: Vec<&Value> = audit["events"]
        .as_array()
        .map(|all| {
            all.iter()
                .filter(|e| e["kind"] == "itsm.webhook_rejected")
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        rejected.first().map(|e| e["data"]["delivery"].clone()),
        Some(Value::String(format!("{sys_id}:2"))),
        "{rejected:?}"
    );

    let (status, outcome) = deliver(&writ, &body, now_ms(), fake_servicenow::WEBHOOK_SECRET).await;
    assert_eq!(status, 201, "{outcome}");
    assert_eq!(
        outcome["request"]["ticket"]["verified"]["ticket_type"],
        "sc_req_item"
    );
    assert_eq!(outcome["request"]["ticket"]["verified"]["id"], sys_id);
    assert!(
        snow.calls()
            .iter()
            .any(|c| c == "GET sc_req_item?number=RITM0010001"),
        "{:?}",
        snow.calls()
    );
    let grant_id = outcome["request"]["grant_id"]
        .as_str()
        .expect("grant")
        .to_string();

    let grant = writ
        .wait_for_grant_state(
            grant_id.parse().expect("grant id"),
            &alice,
            Duration::from_secs(15),
            GrantState::Revoked,
        )
        .await;
    assert!(grant.grant.verified_at.is_some(), "{grant:?}");
    assert!(!roles.holds(&read_role, &alice_account).await);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    // The item is closed, then the same text added as its last work note: wait for both.
    while (snow.field(sys_id, "state") != "3" || snow.work_notes(sys_id).len() < 4)
        && std::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        snow.field(sys_id, "state"),
        "3",
        "Closed Complete after the verified revocation"
    );
    assert!(
        snow.field(sys_id, "close_notes").contains("verified gone"),
        "{}",
        snow.field(sys_id, "close_notes")
    );
    let notes = snow.work_notes(sys_id);
    assert_eq!(
        notes.len(),
        4,
        "decision, activation, revocation started and done: {notes:?}"
    );
    assert!(
        notes[0].contains("approved automatically")
            && notes[1].contains("ACTIVE")
            && notes[2].contains("REVOKING")
            && notes[3].contains("REVOKED"),
        "{notes:?}"
    );
    // The evidence of a lease that came from a webhook: the item as writ read it.
    let document = writ.evidence(&grant_id);
    let ticket = support::statement(&document, "ticket");
    assert!(
        ticket.starts_with(&format!(
            "snow:RITM0010001 (id {sys_id}), read from snow at "
        )) && ticket.contains("sc_req_item"),
        "{ticket}"
    );
    // And every grant of that ticket, selected by it.
    let folder = writ.path("by-ticket");
    let output = writ.run(&[
        "evidence",
        "--ticket",
        "snow:RITM0010001",
        "--out",
        folder.to_str().expect("path"),
    ]);
    assert!(output.status.success(), "{}", support::stderr(&output));
    let index = std::fs::read_to_string(folder.join("index.md")).expect("index");
    assert!(index.contains(&format!("[{grant_id}.md]")), "{index}");

    finish(writ, roles).await;
}

#[tokio::test]
async fn approvals_in_servicenow_count_for_eligible_approvers_and_closing_the_item_revokes() {
    let Setup {
        snow,
        roles,
        read_role,
        alice_account,
        writ,
    } = setup().await;
    let alice = writ.token("alice");
    let sys_id = "beed229047801200e0ef563dbb9a71c3";
    snow.put_item(item(
        "RITM0010002",
        sys_id,
        "2",
        ALICE_SYS_ID,
        &[("variables.entitlement", "pg/ops")],
    ));
    let (status, outcome) = deliver_item(&writ, &snow, sys_id).await;
    assert_eq!(status, 201, "{outcome}");
    assert_eq!(outcome["request"]["state"], "pending_approval", "{outcome}");
    let request_id = outcome["request_id"].as_str().expect("request").to_string();

    // The requester's own approval record does not count; the manager's does.
    snow.add_approval(sys_id, ALICE_SYS_ID, "approved");
    snow.add_approval(sys_id, CAROL_SYS_ID, "requested");
    // Each update of the item bumps sys_mod_count, which names the delivery.
    snow.put_item(item(
        "RITM0010002",
        sys_id,
        "2",
        ALICE_SYS_ID,
        &[("variables.entitlement", "pg/ops"), ("sys_mod_count", "3")],
    ));
    let (status, outcome) = deliver_item(&writ, &snow, sys_id).await;
    assert_eq!(
        (status, outcome["action"].as_str()),
        (200, Some("approvals")),
        "{outcome}"
    );
    assert!(
        outcome["reason"]
            .as_str()
            .is_some_and(|r| r.contains("alice (self_approval)")),
        "{outcome}"
    );
    snow.add_approval(sys_id, CAROL_SYS_ID, "approved");
    snow.put_item(item(
        "RITM0010002",
        sys_id,
        "2",
        ALICE_SYS_ID,
        &[("variables.entitlement", "pg/ops"), ("sys_mod_count", "4")],
    ));
    let (status, outcome) = deliver_item(&writ, &snow, sys_id).await;
    assert_eq!(
        (status, outcome["action"].as_str()),
        (200, Some("approvals")),
        "{outcome}"
    );
    let (_, request) = writ
        .get(&format!("/v1/requests/{request_id}"), &alice)
        .await;
    assert_eq!(request["state"], "approved", "{request}");
    assert_eq!(request["approvals"][0]["approver"], "carol");
    let grant_id = request["grant_id"].as_str().expect("grant").to_string();
    writ.wait_for_grant_state(
        grant_id.parse().expect("grant id"),
        &alice,
        Duration::from_secs(10),
        GrantState::Active,
    )
    .await;
    assert!(roles.holds(&read_role, &alice_account).await);

    // Someone closes the item in ServiceNow: writ revokes and verifies.
    snow.put_item(item(
        "RITM0010002",
        sys_id,
        "3",
        ALICE_SYS_ID,
        &[("variables.entitlement", "pg/ops"), ("sys_mod_count", "5")],
    ));
    let (status, outcome) = deliver_item(&writ, &snow, sys_id).await;
    assert_eq!(
        (status, outcome["action"].as_str()),
        (200, Some("revoked")),
        "{outcome}"
    );
    let grant = writ
        .wait_for_grant_state(
            grant_id.parse().expect("grant id"),
            &alice,
            Duration::from_secs(10),
            GrantState::Revoked,
        )
        .await;
    assert!(grant.grant.verified_at.is_some(), "{grant:?}");
    assert!(!roles.holds(&read_role, &alice_account).await);
    // The evidence names where the approval was given: on the item, in ServiceNow.
    let document = writ.evidence(&grant_id);
    let approvals = support::statement(&document, "approvals");
    assert!(
        approvals.starts_with("carol at ")
            && approvals
                .contains(" on the ticket in snow: “approved in snow on ticket RITM0010002”"),
        "{approvals}"
    );

    finish(writ, roles).await;
}

/// A service desk agent submits an item for someone else: the person it is for gets the
/// access, the submitter does not, and the submitter cannot approve it.
#[tokio::test]
async fn an_item_submitted_for_someone_else_gives_them_the_access() {
    let Setup {
        snow,
        roles,
        read_role,
        alice_account,
        writ,
    } = setup().await;
    let sys_id = "beed229047801200e0ef563dbb9a71c9";
    // carol (a manager, not an engineer) submits pg/ops for alice.
    let mut record = item(
        "RITM0010009",
        sys_id,
        "2",
        CAROL_SYS_ID,
        &[("variables.entitlement", "pg/ops")],
    );
    record.insert("requested_for".into(), ALICE_SYS_ID.into());
    snow.put_item(record.clone());
    let (status, outcome) = deliver_item(&writ, &snow, sys_id).await;
    assert_eq!(status, 201, "{outcome}");
    let request = &outcome["request"];
    assert_eq!(
        (request["requester"].as_str(), request["subject"].as_str()),
        (Some("carol"), Some("alice")),
        "{outcome}"
    );
    assert_eq!(request["state"], "pending_approval", "{outcome}");

    // carol approves it in ServiceNow: she submitted it, so it does not count.
    snow.add_approval(sys_id, CAROL_SYS_ID, "approved");
    record.insert("sys_mod_count".into(), "3".into());
    snow.put_item(record.clone());
    let (status, outcome) = deliver_item(&writ, &snow, sys_id).await;
    assert_eq!(
        (status, outcome["action"].as_str()),
        (200, Some("approvals")),
        "{outcome}"
    );
    assert!(
        outcome["reason"]
            .as_str()
            .is_some_and(|r| r.contains("carol (self_approval)")),
        "{outcome}"
    );
    // Nor through the API.
    let carol = writ.token("carol");
    let id = outcome["request_id"].as_str().expect("request").to_string();
    let (status, body) = writ
        .post(
            &format!("/v1/requests/{id}/approve"),
            &carol,
            serde_json::json!({ "comment": "mine" }),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("self_approval")),
        "{body}"
    );

    // alice cannot use the ticket for herself through the API either way: it backs this
    // request already; and the item's submitter cannot cite it for himself.
    let (status, body) = writ
        .post(
            "/v1/requests",
            &carol,
            serde_json::json!({ "entitlement": "pg/ops", "justification": "me",
                                "ticket": { "system": "snow", "key": "RITM0010009" } }),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "ticket_mismatch", "{body}");
    assert!(!roles.holds(&read_role, &alice_account).await);

    // Another manager approves: alice, whom the item is for, gets the access.
    snow.add_approval(sys_id, DAVE_SYS_ID, "approved");
    record.insert("sys_mod_count".into(), "4".into());
    snow.put_item(record);
    let (status, outcome) = deliver_item(&writ, &snow, sys_id).await;
    assert_eq!(status, 200, "{outcome}");
    let admin = writ.admin_token();
    let (_, request) = writ.get(&format!("/v1/requests/{id}"), &admin).await;
    let grant_id = request["grant_id"].as_str().expect("granted").to_string();
    let grant = writ
        .wait_for_grant_state(
            grant_id.parse().expect("grant id"),
            &admin,
            Duration::from_secs(10),
            GrantState::Active,
        )
        .await;
    assert_eq!(grant.grant.subject.as_str(), "alice", "{grant:?}");
    assert!(roles.holds(&read_role, &alice_account).await);
    finish(writ, roles).await;
}

/// An item approved in ServiceNow before it reached the state that makes a request (the
/// Business Rule does not fire again): the approvals count from the start.
#[tokio::test]
async fn approvals_given_before_the_request_count() {
    let Setup {
        snow,
        roles,
        read_role,
        alice_account,
        writ,
    } = setup().await;
    let sys_id = "beed229047801200e0ef563dbb9a71d1";
    snow.put_item(item(
        "RITM0010011",
        sys_id,
        "2",
        ALICE_SYS_ID,
        &[("variables.entitlement", "pg/ops")],
    ));
    // Approved by the requester herself (never counts) and by a manager, already.
    snow.add_approval(sys_id, ALICE_SYS_ID, "approved");
    snow.add_approval(sys_id, CAROL_SYS_ID, "approved");
    let (status, outcome) = deliver_item(&writ, &snow, sys_id).await;
    assert_eq!(status, 201, "{outcome}");
    assert_eq!(outcome["request"]["state"], "approved", "{outcome}");
    assert_eq!(
        outcome["request"]["approvals"][0]["approver"], "carol",
        "{outcome}"
    );
    assert!(
        outcome["reason"]
            .as_str()
            .is_some_and(|r| r.contains("alice (self_approval)")),
        "{outcome}"
    );
    let grant_id = outcome["request"]["grant_id"]
        .as_str()
        .expect("granted")
        .to_string();
    let admin = writ.admin_token();
    writ.wait_for_grant_state(
        grant_id.parse().expect("grant id"),
        &admin,
        Duration::from_secs(10),
        GrantState::Active,
    )
    .await;
    assert!(roles.holds(&read_role, &alice_account).await);
    finish(writ, roles).await;
}

/// With `approval_required`, an item backs a request only once ServiceNow says it is
/// approved; policy sees that status as `context.ticket_approval`.
#[tokio::test]
async fn an_item_not_yet_approved_in_servicenow_backs_nothing() {
    let Setup {
        snow, roles, writ, ..
    } = setup().await;
    let sys_id = "beed229047801200e0ef563dbb9a71d2";
    let mut record = item(
        "RITM0010012",
        sys_id,
        "2",
        ALICE_SYS_ID,
        &[("variables.entitlement", "pg/read")],
    );
    record.insert("approval".into(), "requested".into());
    snow.put_item(record.clone());
    let (status, outcome) = deliver_item(&writ, &snow, sys_id).await;
    assert_eq!(
        (status, outcome["action"].as_str()),
        (200, Some("ignored")),
        "{outcome}"
    );
    let alice = writ.token("alice");
    let (status, body) = writ
        .post(
            "/v1/requests",
            &alice,
            serde_json::json!({ "entitlement": "pg/read", "justification": "report",
                                "ticket": { "system": "snow", "key": "RITM0010012" } }),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("ticket_not_approved")),
        "{body}"
    );
    // Approved in ServiceNow: the next delivery makes the request.
    record.insert("approval".into(), "approved".into());
    record.insert("sys_mod_count".into(), "3".into());
    snow.put_item(record);
    let (status, outcome) = deliver_item(&writ, &snow, sys_id).await;
    assert_eq!(status, 201, "{outcome}");
    assert_eq!(
        outcome["request"]["ticket"]["verified"]["approval"], "approved",
        "{outcome}"
    );
    finish(writ, roles).await;
}

/// ServiceNow never retries the Business Rule's call: an item whose delivery was lost is
/// found by polling and becomes a request once, like a delivered one.
#[tokio::test]
async fn an_item_whose_delivery_was_lost_is_found_by_polling() {
    let Setup {
        snow,
        roles,
        read_role,
        alice_account,
        mut writ,
    } = setup().await;
    writ.stop();
    writ.replace_in_config(
        "approval_required = true",
        "approval_required = true\npoll_every = \"1s\"",
    );
    let sys_id = "beed229047801200e0ef563dbb9a71d3";
    snow.put_item(item(
        "RITM0010013",
        sys_id,
        "2",
        ALICE_SYS_ID,
        &[("variables.entitlement", "pg/read")],
    ));
    writ.start().await;
    let admin = writ.admin_token();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let request = loop {
        let (_, list) = writ.get("/v1/requests", &admin).await;
        if let Some(found) = list["requests"]
            .as_array()
            .and_then(|all| all.first().cloned())
        {
            break found;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never found: {}",
            writ.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(request["ticket"]["key"], "RITM0010013", "{request}");
    let grant_id = request["grant_id"].as_str().expect("granted").to_string();
    writ.wait_for_grant_state(
        grant_id.parse().expect("grant id"),
        &admin,
        Duration::from_secs(10),
        GrantState::Active,
    )
    .await;
    assert!(roles.holds(&read_role, &alice_account).await);
    // Later polls, and the delivery arriving after all, make no second request.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (status, outcome) = deliver_item(&writ, &snow, sys_id).await;
    assert_eq!(
        (status, outcome["action"].as_str()),
        (200, Some("duplicate")),
        "{outcome}"
    );
    let (_, list) = writ.get("/v1/requests", &admin).await;
    assert_eq!(list["requests"].as_array().map(Vec::len), Some(1), "{list}");
    finish(writ, roles).await;
}

/// Policy sees the item's own approval status: without `approval_required`, a rule on
/// `context.ticket_approval` decides instead.
#[tokio::test]
async fn policy_sees_the_items_approval_status() {
    let Setup {
        snow,
        roles,
        mut writ,
        ..
    } = setup().await;
    writ.stop();
    writ.replace_in_config("approval_required = true\n", "");
    std::fs::write(
        writ.path("policies/approval.cedar"),
        r#"@id("approved-items-only")
forbid (principal, action == Action::"request", resource)
when { context.ticket_verified && context.ticket_approval != "approved" };
"#,
    )
    .expect("policy");
    writ.start().await;
    let sys_id = "beed229047801200e0ef563dbb9a71d4";
    let mut record = item(
        "RITM0010014",
        sys_id,
        "2",
        ALICE_SYS_ID,
        &[("variables.entitlement", "pg/read")],
    );
    record.insert("approval".into(), "requested".into());
    snow.put_item(record);
    let (status, outcome) = deliver_item(&writ, &snow, sys_id).await;
    assert_eq!(status, 201, "{outcome}");
    assert_eq!(outcome["request"]["state"], "denied", "{outcome}");
    assert_eq!(
        outcome["request"]["decision"]["policies"][0], "approved-items-only",
        "{outcome}"
    );
    finish(writ, roles).await;
}

/// Starts the item `sys_id` (RITM `number`, alice's, for `pg/read` for 3 seconds) through
/// a delivery; the grant's id.
async fn short_lease_from_item(
    writ: &Writ,
    snow: &FakeServiceNow,
    number: &str,
    sys_id: &str,
) -> String {
    snow.put_item(item(
        number,
        sys_id,
        "2",
        ALICE_SYS_ID,
        &[
            ("variables.entitlement", "pg/read"),
            ("variables.duration", "3"),
        ],
    ));
    let (status, outcome) = deliver_item(writ, snow, sys_id).await;
    assert_eq!(status, 201, "{outcome}");
    outcome["request"]["grant_id"]
        .as_str()
        .expect("granted")
        .to_string()
}

/// The Table API answers 200 while dropping a field the API user may not write. A work
/// note that never landed is a delivery failure with a clear error — in the outbox,
/// counted, retried — and is delivered once the role is fixed, exactly once.
#[tokio::test]
async fn a_work_note_the_instance_drops_is_not_delivered_until_it_lands() {
    let Setup {
        snow, roles, writ, ..
    } = setup().await;
    let sys_id = "ceed229047801200e0ef563dbb9a71e1";
    snow.deny_writes("sc_req_item", "work_notes");
    let grant_id = short_lease_from_item(&writ, &snow, "RITM0010021", sys_id).await;
    let admin = writ.admin_token();
    let outbox = writ
        .wait_for_outbox(Duration::from_secs(10), |outbox| {
            outbox["entries"][0]["attempts"]
                .as_i64()
                .is_some_and(|n| n >= 1)
        })
        .await;
    let error = outbox["entries"][0]["last_error"]
        .as_str()
        .unwrap_or_default();
    assert!(
        error.contains("accepted writ's write to RITM0010021 but did not apply it")
            && error.contains("sys_journal_field"),
        "{outbox}"
    );
    assert!(snow.work_notes(sys_id).is_empty());
    let (_, metrics) = writ.get("/metrics", &admin).await;
    let metrics = metrics.as_str().unwrap_or_default().to_string();
    assert!(
        metrics.contains(
            "writ_evidence_delivery_failures_total{itsm=\"snow\",reason=\"write_ignored\"}"
        ),
        "{metrics}"
    );

    // The administrator grants the role: every note arrives, in order, once.
    snow.allow_writes("sc_req_item", "work_notes");
    writ.wait_for_grant_state(
        grant_id.parse().expect("grant id"),
        &admin,
        Duration::from_secs(15),
        GrantState::Revoked,
    )
    .await;
    assert!(
        support::eventually(Duration::from_secs(20), || snow.field(sys_id, "state")
            == "3")
        .await,
        "closed: {:?}",
        snow.work_notes(sys_id)
    );
    let outbox = writ.wait_for_outbox_drained(Duration::from_secs(20)).await;
    assert_eq!(outbox["backlog"], 0, "{outbox}");
    let notes = snow.work_notes(sys_id);
    assert_eq!(notes.len(), 4, "each note once: {notes:?}");
    finish(writ, roles).await;
}

/// An item whose state writ may not set (an ACL, or a flow that owns it) is not closed
/// for want of trying: the failure says why and what to configure instead.
#[tokio::test]
async fn closing_an_item_whose_state_the_instance_drops_says_what_to_configure() {
    let Setup {
        snow, roles, writ, ..
    } = setup().await;
    let sys_id = "ceed229047801200e0ef563dbb9a71e2";
    snow.deny_writes("sc_req_item", "state");
    let grant_id = short_lease_from_item(&writ, &snow, "RITM0010022", sys_id).await;
    let admin = writ.admin_token();
    writ.wait_for_grant_state(
        grant_id.parse().expect("grant id"),
        &admin,
        Duration::from_secs(15),
        GrantState::Revoked,
    )
    .await;
    let outbox = writ
        .wait_for_outbox(Duration::from_secs(15), |outbox| {
            outbox["entries"][0]["action"] == "close"
                && outbox["entries"][0]["attempts"]
                    .as_i64()
                    .is_some_and(|n| n >= 1)
        })
        .await;
    let error = outbox["entries"][0]["last_error"]
        .as_str()
        .unwrap_or_default();
    assert!(
        error.contains("did not take state (asked \"3\", the record shows \"2\")")
            && error.contains("closure = \"tasks\" or \"flow\""),
        "{outbox}"
    );
    assert_eq!(snow.field(sys_id, "active"), "true");
    finish(writ, roles).await;
}

/// Where a flow owns the item, `closure = "tasks"` closes its open catalog tasks (the
/// flow closes the item), and `closure = "flow"` leaves everything to the flow: in both
/// the evidence is a work note on the item.
#[tokio::test]
async fn closure_by_catalog_tasks_or_by_the_flow() {
    let Setup {
        snow,
        roles,
        mut writ,
        ..
    } = setup().await;
    writ.stop();
    writ.replace_in_config(
        "approval_required = true",
        "approval_required = true\nclosure = \"tasks\"",
    );
    writ.start().await;
    let admin = writ.admin_token();
    let sys_id = "ceed229047801200e0ef563dbb9a71e3";
    let task = "deed229047801200e0ef563dbb9a71e3";
    snow.put_task(sys_id, task);
    let grant_id = short_lease_from_item(&writ, &snow, "RITM0010023", sys_id).await;
    writ.wait_for_grant_state(
        grant_id.parse().expect("grant id"),
        &admin,
        Duration::from_secs(15),
        GrantState::Revoked,
    )
    .await;
    let outbox = writ.wait_for_outbox_drained(Duration::from_secs(15)).await;
    assert_eq!(outbox["backlog"], 0, "{outbox}");
    assert_eq!(snow.field_of("sc_task", task, "state"), "3");
    assert!(
        snow.field_of("sc_task", task, "close_notes")
            .contains("verified gone")
    );
    assert_eq!(
        (snow.field(sys_id, "state"), snow.field(sys_id, "active")),
        ("2".to_string(), "true".to_string()),
        "the item is the flow's to close"
    );
    let notes = snow.work_notes(sys_id);
    assert!(
        notes.len() == 4 && notes[3].contains("REVOKED"),
        "{notes:?}"
    );

    writ.stop();
    writ.replace_in_config("closure = \"tasks\"", "closure = \"flow\"");
    writ.start().await;
    let sys_id = "ceed229047801200e0ef563dbb9a71e4";
    let task = "deed229047801200e0ef563dbb9a71e4";
    snow.put_task(sys_id, task);
    let grant_id = short_lease_from_item(&writ, &snow, "RITM0010024", sys_id).await;
    writ.wait_for_grant_state(
        grant_id.parse().expect("grant id"),
        &admin,
        Duration::from_secs(15),
        GrantState::Revoked,
    )
    .await;
    let outbox = writ.wait_for_outbox_drained(Duration::from_secs(15)).await;
    assert_eq!(outbox["backlog"], 0, "{outbox}");
    assert_eq!(snow.field_of("sc_task", task, "state"), "1", "untouched");
    assert_eq!(snow.field(sys_id, "state"), "2", "untouched");
    assert!(
        snow.work_notes(sys_id)
            .last()
            .is_some_and(|n| n.contains("REVOKED")),
        "{:?}",
        snow.work_notes(sys_id)
    );
    assert!(
        !snow
            .calls()
            .iter()
            .any(|c| c.starts_with(&format!("PATCH sc_task/{task}"))),
        "{:?}",
        snow.calls()
    );
    finish(writ, roles).await;
}

/// The Business Rule fires on writ's own writes too (closing the item changes its state).
/// Those deliveries are about a ticket writ already acted on: they change nothing.
#[tokio::test]
async fn the_business_rule_firing_on_writs_own_close_changes_nothing() {
    let Setup {
        snow, roles, writ, ..
    } = setup().await;
    snow.install_business_rule(&format!("{}/v1/itsm/snow/webhook", writ.base()));
    let sys_id = "ceed229047801200e0ef563dbb9a71e5";
    let grant_id = short_lease_from_item(&writ, &snow, "RITM0010025", sys_id).await;
    let admin = writ.admin_token();
    writ.wait_for_grant_state(
        grant_id.parse().expect("grant id"),
        &admin,
        Duration::from_secs(15),
        GrantState::Revoked,
    )
    .await;
    assert!(
        support::eventually(Duration::from_secs(15), || !snow.rule_answers().is_empty()).await,
        "the rule fired on writ's close"
    );
    let outbox = writ.wait_for_outbox_drained(Duration::from_secs(15)).await;
    assert_eq!(outbox["backlog"], 0, "{outbox}");
    let answers = snow.rule_answers();
    assert_eq!(
        answers.len(),
        1,
        "only the state change fires it: {answers:?}"
    );
    let (status, answer) = &answers[0];
    assert_eq!(*status, 200, "{answer}");
    assert_eq!(answer["action"], "duplicate", "{answer}");
    let (_, list) = writ.get("/v1/requests", &admin).await;
    assert_eq!(list["requests"].as_array().map(Vec::len), Some(1), "{list}");
    assert_eq!(snow.work_notes(sys_id).len(), 4, "no note about the echo");
    finish(writ, roles).await;
}

/// OAuth client credentials: a token is fetched once and reused, a new one is fetched
/// before the old one expires (no call is refused for an expired token), and a revoked
/// token costs one refused call and one new token, not an outage.
#[tokio::test]
async fn oauth_tokens_are_renewed_before_expiry_and_once_after_a_refusal() {
    let Setup {
        snow,
        roles,
        mut writ,
        ..
    } = setup().await;
    writ.stop();
    snow.require_oauth(5);
    writ.replace_in_config(
        &format!(
            "user = \"{}\"\npassword = \"{}\"",
            fake_servicenow::USER,
            fake_servicenow::PASSWORD
        ),
        &format!(
            "oauth = {{ token_url = \"{}/oauth_token.do\", client_id = \"{}\", client_secret = \"{}\" }}",
            snow.url,
            fake_servicenow::CLIENT_ID,
            fake_servicenow::CLIENT_SECRET
        ),
    );
    writ.replace_in_config(
        "approval_required = true",
        "approval_required = true\npoll_every = \"off\"",
    );
    writ.start().await;
    let admin = writ.admin_token();
    let items = [
        ("RITM0010031", "eeed229047801200e0ef563dbb9a71f1"),
        ("RITM0010032", "eeed229047801200e0ef563dbb9a71f2"),
        ("RITM0010033", "eeed229047801200e0ef563dbb9a71f3"),
    ];
    for (number, sys_id) in items {
        snow.put_item(item(
            number,
            sys_id,
            "2",
            ALICE_SYS_ID,
            &[("variables.entitlement", "pg/read")],
        ));
    }

    let (status, outcome) = deliver_item(&writ, &snow, items[0].1).await;
    assert_eq!(status, 201, "{outcome}");
    writ.wait_for_outbox_drained(Duration::from_secs(10)).await;
    assert_eq!(snow.tokens_issued(), 1, "one token for every call");

    // Past 80% of its 5 s life, writ asks for a new token before using it again.
    tokio::time::sleep(Duration::from_millis(4200)).await;
    let (status, outcome) = deliver_item(&writ, &snow, items[1].1).await;
    assert_eq!(status, 201, "{outcome}");
    writ.wait_for_outbox_drained(Duration::from_secs(10)).await;
    assert!(snow.tokens_issued() >= 2);
    assert_eq!(snow.calls_refused(), 0, "never sent an expired token");

    // Revoked by the instance: one refusal, one new token, and the call goes through.
    let issued = snow.tokens_issued();
    snow.revoke_tokens();
    let (status, outcome) = deliver_item(&writ, &snow, items[2].1).await;
    assert_eq!(status, 201, "{outcome}");
    assert_eq!(snow.tokens_issued(), issued + 1);
    assert_eq!(snow.calls_refused(), 1);
    let (_, list) = writ.get("/v1/requests", &admin).await;
    assert_eq!(list["requests"].as_array().map(Vec::len), Some(3), "{list}");
    writ.stop();

    // Wrong client credentials: a clear, retryable refusal and nothing recorded.
    writ.replace_in_config(fake_servicenow::CLIENT_SECRET, "not-the-client-secret");
    writ.start().await;
    snow.put_item(item(
        "RITM0010034",
        "eeed229047801200e0ef563dbb9a71f4",
        "2",
        ALICE_SYS_ID,
        &[("variables.entitlement", "pg/read")],
    ));
    let (status, error) = deliver_item(&writ, &snow, "eeed229047801200e0ef563dbb9a71f4").await;
    assert_eq!(
        (status, error["error"]["code"].as_str()),
        (503, Some("itsm_unavailable")),
        "{error}"
    );
    assert!(
        error["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("the token endpoint refused writ's client credentials")),
        "{error}"
    );
    finish(writ, roles).await;
}

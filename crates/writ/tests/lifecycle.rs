//! End to end: the real `writ` binary, real HTTP, a real PostgreSQL target, and the
//! ledger checked by `writ audit verify` after every scenario.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::{PG_URL, TestDatabase, TestRoles, Writ, stderr, stdout};
use writ_domain::RevokeReason;
use writ_domain::lifecycle::GrantState;

const POLICIES: &[(&str, &str)] = &[
    (
        "request.cedar",
        r#"
@id("low-auto")
@max_duration("1h")
permit (principal in Group::"engineers", action == Action::"request", resource)
when { resource.sensitivity == "low" };

@id("high-one-approval")
@approvals("1")
permit (principal in Group::"engineers", action == Action::"request", resource)
when { resource.sensitivity == "high" };
"#,
    ),
    (
        "approve.cedar",
        r#"
@id("manager-approves")
permit (principal, action == Action::"approve", resource)
when { resource.subject has manager && principal == resource.subject.manager };
"#,
    ),
];

fn config(storage_url: &str, roles: &TestRoles, read_role: &str, admin_role: &str) -> String {
    let p = &roles.prefix;
    format!(
        r#"
[storage]
url = "{storage_url}"

[[target]]
name = "pg"
kind = "postgres"
url = "{PG_URL}"

[[entitlement]]
id = "pg/read"
target = "pg"
role = "{read_role}"
sensitivity = "low"
max_duration = "8h"

[[entitlement]]
id = "pg/admin"
target = "pg"
role = "{admin_role}"
sensitivity = "high"
max_duration = "2h"

[[user]]
name = "alice"
groups = ["engineers"]
manager = "dave"
accounts = {{ pg = "{p}_alice" }}

[[user]]
name = "bob"
groups = ["engineers"]
accounts = {{ pg = "{p}_bob" }}

[[user]]
name = "dave"
groups = ["managers"]
"#
    )
}

struct Setup {
    writ: Writ,
    roles: TestRoles,
    read_role: String,
    admin_role: String,
    alice_account: String,
    database: Option<TestDatabase>,
}

async fn setup(on_postgres_storage: bool) -> Setup {
    let mut roles = TestRoles::new().await;
    let read_role = roles.create("read").await;
    let admin_role = roles.create("admin").await;
    let alice_account = roles.create("alice").await;
    roles.create("bob").await;
    let database = if on_postgres_storage {
        Some(TestDatabase::create().await)
    } else {
        None
    };
    let storage = database
        .as_ref()
        .map_or("sqlite://writ.db".to_string(), |db| db.url.clone());
    let writ = Writ::new(&config(&storage, &roles, &read_role, &admin_role), POLICIES);
    Setup {
        writ,
        roles,
        read_role,
        admin_role,
        alice_account,
        database,
    }
}

impl Setup {
    async fn finish(mut self) {
        let verify = self.writ.run(&["audit", "verify"]);
        assert!(
            verify.status.success(),
            "audit verify: {}{}",
            stdout(&verify),
            stderr(&verify)
        );
        self.writ.stop();
        self.roles.cleanup().await;
        if let Some(db) = &self.database {
            db.drop_now().await;
        }
    }
}

async fn automatic_grant_is_applied_and_removed_at_expiry(on_postgres_storage: bool) {
    let mut s = setup(on_postgres_storage).await;
    s.writ.start().await;
    let alice = s.writ.token("alice");

    let (status, request) = s
        .writ
        .post("/v1/requests", &alice, json!({"entitlement": "pg/read", "duration_seconds": 2, "justification": "quarterly numbers", "ticket": {"system": "jira", "key": "OPS-42"}}))
        .await;
    assert_eq!(status, 201, "{request}");
    assert_eq!(request["state"], "approved");
    assert_eq!(request["decision"]["outcome"], "auto");
    assert_eq!(request["decision"]["policies"], json!(["low-auto"]));
    let grant_id = request["grant_id"].as_str().expect("grant id").to_string();

    let grant = s
        .writ
        .wait_for_grant_state(
            grant_id.parse().expect("grant id"),
            &alice,
            Duration::from_secs(5),
            GrantState::Active,
        )
        .await
        .grant;
    assert_eq!(grant.state, GrantState::Active);
    assert!(
        s.roles.holds(&s.read_role, &s.alice_account).await,
        "PostgreSQL should hold the grant while it is active"
    );

    let grant = s
        .writ
        .wait_for_grant_state(
            grant_id.parse().expect("grant id"),
            &alice,
            Duration::from_secs(15),
            GrantState::Revoked,
        )
        .await
        .grant;
    assert_eq!(grant.state, GrantState::Revoked);
    assert!(grant.verified_at.is_some(), "{grant:?}");
    assert_eq!(grant.revoke_reason, Some(RevokeReason::Expired));
    let (_, metrics) = s.writ.get("/metrics", &alice).await;
    let metrics = metrics.as_str().unwrap_or_default().to_string();
    assert!(
        metrics.contains("writ_revocation_lag_seconds_count 1"),
        "the expiry's lag is measured:\n{metrics}"
    );
    assert!(
        metrics.contains("writ_grants{state=\"revoked\"} 1"),
        "{metrics}"
    );
    assert!(
        !s.roles.holds(&s.read_role, &s.alice_account).await,
        "PostgreSQL must not hold the grant after expiry"
    );

    // The events of the grant tell the whole story.
    let (_, audit) = s
        .writ
        .get("/v1/audit?limit=1000", &s.writ.admin_token())
        .await;
    let kinds: Vec<&str> = audit["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    for kind in [
        "request.created",
        "grant.created",
        "grant.activated",
        "grant.revoke_started",
        "grant.revoked",
    ] {
        assert_eq!(
            kinds.iter().filter(|k| **k == kind).count(),
            1,
            "{kind} in {kinds:?}"
        );
    }
    let created = audit["events"]
        .as_array()
        .and_then(|e| e.iter().find(|e| e["kind"] == "request.created"))
        .expect("request.created");
    assert_eq!(created["data"]["request"]["ticket"]["key"], "OPS-42");
    assert!(
        created["data"]["request"]["decision"]["policy_hash"]
            .as_str()
            .is_some_and(|h| h.len() == 64)
    );
    check_exports(&s, &audit["events"]);
    s.finish().await;
}

/// `writ audit export` in both formats, from the start and incrementally, matches the API.
fn check_exports(s: &Setup, events: &Value) {
    let events = events.as_array().expect("events");
    let lines = |args: &[&str]| -> Vec<Value> {
        let output = s.writ.run(args);
        assert!(output.status.success(), "{args:?}: {}", stderr(&output));
        stdout(&output)
            .lines()
            .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
            .collect()
    };
    let jsonl = lines(&["audit", "export", "--format", "jsonl"]);
    assert_eq!(
        &jsonl, events,
        "jsonl export is the ledger as the API shows it"
    );

    let after = events[1]["seq"].as_i64().expect("seq").to_string();
    let ocsf = lines(&["audit", "export", "--format", "ocsf", "--after", &after]);
    assert_eq!(
        ocsf.len(),
        events.len() - 2,
        "--after skips what was shipped"
    );
    for (exported, event) in ocsf.iter().zip(&events[2..]) {
        assert_eq!(exported["metadata"]["sequence"], event["seq"]);
        assert_eq!(exported["metadata"]["uid"], event["hash"]);
        assert_eq!(exported["category_uid"], 3);
    }
    let revoked = ocsf
        .iter()
        .find(|e| e["unmapped"]["writ"]["kind"] == "grant.revoked")
        .expect("the revocation is exported");
    assert_eq!(
        (
            revoked["class_uid"].as_i64(),
            revoked["activity_id"].as_i64()
        ),
        (Some(3005), Some(2)),
        "User Access Management: Revoke Privileges"
    );
    assert_eq!(revoked["user"]["name"], "alice");
}

#[tokio::test]
async fn automatic_grant_on_postgres_target_with_sqlite_storage() {
    automatic_grant_is_applied_and_removed_at_expiry(false).await;
}

#[tokio::test]
async fn automatic_grant_on_postgres_target_with_postgres_storage() {
    automatic_grant_is_applied_and_removed_at_expiry(true).await;
}

#[tokio::test]
async fn approval_flow_refuses_self_approval_and_non_approvers() {
    let mut s = setup(false).await;
    s.writ.start().await;
    let (alice, bob, dave) = (
        s.writ.token("alice"),
        s.writ.token("bob"),
        s.writ.token("dave"),
    );

    let (status, request) =
        s.writ.post("/v1/requests", &alice, json!({"entitlement": "pg/admin", "duration_seconds": 600, "justification": "incident 7"})).await;
    assert_eq!(status, 201, "{request}");
    assert_eq!(request["state"], "pending_approval");
    assert_eq!(request["decision"]["approvals_required"], 1);
    let id = request["id"].as_str().expect("id").to_string();

    let (status, inbox) = s
        .writ
        .get(
            "/v1/requests?state=pending_approval&approvable_by_me=true",
            &dave,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        inbox["requests"].as_array().map(Vec::len),
        Some(1),
        "{inbox}"
    );
    let (_, bob_inbox) = s
        .writ
        .get(
            "/v1/requests?state=pending_approval&approvable_by_me=true",
            &bob,
        )
        .await;
    assert_eq!(
        bob_inbox["requests"].as_array().map(Vec::len),
        Some(0),
        "{bob_inbox}"
    );

    let (status, error) = s
        .writ
        .post(
            &format!("/v1/requests/{id}/approve"),
            &alice,
            json!({"comment": "me"}),
        )
        .await;
    assert_eq!(
        (status, error["error"]["code"].as_str()),
        (403, Some("self_approval"))
    );
    let (status, error) = s
        .writ
        .post(&format!("/v1/requests/{id}/approve"), &bob, json!({}))
        .await;
    assert_eq!(
        (status, error["error"]["code"].as_str()),
        (403, Some("not_an_approver"))
    );
    assert!(!s.roles.holds(&s.admin_role, &s.alice_account).await);

    let (status, approved) = s
        .writ
        .post(
            &format!("/v1/requests/{id}/approve"),
            &dave,
            json!({"comment": "go"}),
        )
        .await;
    assert_eq!(status, 200, "{approved}");
    assert_eq!(approved["state"], "approved");
    assert_eq!(approved["approvals"][0]["approver"], "dave");
    let grant_id = approved["grant_id"].as_str().expect("grant").to_string();
    let grant = s
        .writ
        .wait_for_grant_state(
            grant_id.parse().expect("grant id"),
            &alice,
            Duration::from_secs(5),
            GrantState::Active,
        )
        .await
        .grant;
    assert_eq!(grant.state, GrantState::Active);
    assert!(s.roles.holds(&s.admin_role, &s.alice_account).await);

    let (status, error) = s
        .writ
        .post(&format!("/v1/requests/{id}/approve"), &dave, json!({}))
        .await;
    assert_eq!(
        (status, error["error"]["code"].as_str()),
        (409, Some("not_pending"))
    );

    // Early revocation by the subject, verified on the target.
    let (status, revoked) = s
        .writ
        .post(
            &format!("/v1/grants/{grant_id}/revoke"),
            &alice,
            json!({"reason": "done"}),
        )
        .await;
    assert_eq!(status, 200, "{revoked}");
    let grant = s
        .writ
        .wait_for_grant_state(
            grant_id.parse().expect("grant id"),
            &alice,
            Duration::from_secs(5),
            GrantState::Revoked,
        )
        .await
        .grant;
    assert_eq!(
        grant.revoke_reason,
        Some(RevokeReason::Stated("done".into()))
    );
    assert!(!s.roles.holds(&s.admin_role, &s.alice_account).await);
    let (status, _) = s
        .writ
        .post(&format!("/v1/grants/{grant_id}/revoke"), &alice, json!({}))
        .await;
    assert_eq!(status, 409);
    s.finish().await;
}

#[tokio::test]
async fn overlapping_grants_are_independent_leases() {
    let mut s = setup(false).await;
    s.writ.start().await;
    let alice = s.writ.token("alice");
    let mut grants = Vec::new();
    for _ in 0..2 {
        let (status, request) = s.writ.post("/v1/requests", &alice, json!({"entitlement": "pg/read", "duration_seconds": 600, "justification": "two tasks"})).await;
        assert_eq!(status, 201);
        let id = request["grant_id"].as_str().expect("grant").to_string();
        s.writ
            .wait_for_grant_state(
                id.parse().expect("grant id"),
                &alice,
                Duration::from_secs(5),
                GrantState::Active,
            )
            .await;
        grants.push(id);
    }
    let (status, _) = s
        .writ
        .post(
            &format!("/v1/grants/{}/revoke", grants[0]),
            &alice,
            json!({}),
        )
        .await;
    assert_eq!(status, 200);
    let first = s
        .writ
        .wait_for_grant_state(
            grants[0].parse().expect("grant id"),
            &alice,
            Duration::from_secs(5),
            GrantState::Revoked,
        )
        .await
        .grant;
    assert_eq!(
        first.retained_by.map(|id| id.to_string()),
        Some(grants[1].clone()),
        "{first:?}"
    );
    assert!(
        s.roles.holds(&s.read_role, &s.alice_account).await,
        "the second lease still covers the access"
    );

    let (status, _) = s
        .writ
        .post(
            &format!("/v1/grants/{}/revoke", grants[1]),
            &alice,
            json!({}),
        )
        .await;
    assert_eq!(status, 200);
    s.writ
        .wait_for_grant_state(
            grants[1].parse().expect("grant id"),
            &alice,
            Duration::from_secs(5),
            GrantState::Revoked,
        )
        .await;
    assert!(
        !s.roles.holds(&s.read_role, &s.alice_account).await,
        "no lease left: the access is gone"
    );
    s.finish().await;
}

#[tokio::test]
async fn a_grant_that_expires_while_writ_is_down_is_revoked_at_restart() {
    let mut s = setup(false).await;
    s.writ.start().await;
    let alice = s.writ.token("alice");
    let (_, request) = s
        .writ
        .post(
            "/v1/requests",
            &alice,
            json!({"entitlement": "pg/read", "duration_seconds": 2, "justification": "short"}),
        )
        .await;
    let grant_id = request["grant_id"].as_str().expect("grant").to_string();
    s.writ
        .wait_for_grant_state(
            grant_id.parse().expect("grant id"),
            &alice,
            Duration::from_secs(5),
            GrantState::Active,
        )
        .await;
    assert!(s.roles.holds(&s.read_role, &s.alice_account).await);

    s.writ.kill9();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        s.roles.holds(&s.read_role, &s.alice_account).await,
        "nobody revoked it while writ was down"
    );

    let restarted = std::time::Instant::now();
    s.writ.start().await;
    let grant = s
        .writ
        .wait_for_grant_state(
            grant_id.parse().expect("grant id"),
            &alice,
            Duration::from_secs(10),
            GrantState::Revoked,
        )
        .await
        .grant;
    assert_eq!(grant.state, GrantState::Revoked);
    assert!(restarted.elapsed() < Duration::from_secs(10));
    assert!(!s.roles.holds(&s.read_role, &s.alice_account).await);
    s.finish().await;
}

#[tokio::test]
async fn when_the_ledger_refuses_writes_no_access_is_granted() {
    let mut s = setup(true).await;
    s.writ.start().await;
    let alice = s.writ.token("alice");
    let database = s
        .database
        .as_ref()
        .map(|db| db.url.clone())
        .expect("postgres storage");
    let storage = sqlx::PgPool::connect(&database)
        .await
        .expect("storage database");
    // From now on every ledger append fails, as a full disk or a revoked privilege would.
    sqlx::query("ALTER TABLE events ADD CONSTRAINT refuse_new_events CHECK (seq < 0) NOT VALID")
        .execute(&storage)
        .await
        .expect("constraint");

    let (status, answer) = s
        .writ
        .post(
            "/v1/requests",
            &alice,
            json!({"entitlement": "pg/read", "justification": "during an outage"}),
        )
        .await;
    assert_eq!(status, 503, "{answer}");
    assert_eq!(answer["error"]["code"], "storage_unavailable");
    assert!(
        answer["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("changed nothing")),
        "{answer}"
    );
    assert!(
        !s.roles.holds(&s.read_role, &s.alice_account).await,
        "fail closed: nothing reached the target"
    );
    let requests: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM requests")
        .fetch_one(&storage)
        .await
        .expect("count");
    assert_eq!(requests, 0, "no half-applied request row");

    sqlx::query("ALTER TABLE events DROP CONSTRAINT refuse_new_events")
        .execute(&storage)
        .await
        .expect("drop constraint");
    let (status, answer) = s
        .writ
        .post(
            "/v1/requests",
            &alice,
            json!({"entitlement": "pg/read", "justification": "after the outage"}),
        )
        .await;
    assert_eq!(status, 201, "{answer}");
    storage.close().await;
    s.finish().await;
}

#[tokio::test]
async fn operational_endpoints_metrics_openapi_request_ids_and_graceful_shutdown() {
    let mut s = setup(false).await;
    s.writ.start().await;
    let alice = s.writ.token("alice");
    let (status, _) = s
        .writ
        .post(
            "/v1/requests",
            &alice,
            json!({"entitlement": "pg/read", "duration_seconds": 60, "justification": "metrics"}),
        )
        .await;
    assert_eq!(status, 201);

    let (status, metrics) = s.writ.get("/metrics", &alice).await;
    assert_eq!(status, 200);
    let metrics = metrics.as_str().unwrap_or_default().to_string();
    for expected in [
        "writ_requests_total{outcome=\"approved\"} 1",
        "writ_grants{state=\"active\"} 1",
        "writ_failed_revocations 0",
    ] {
        assert!(
            metrics.contains(expected),
            "{expected} missing from:\n{metrics}"
        );
    }
    let (status, _) = s
        .writ
        .call(reqwest::Method::GET, "/metrics", None, None)
        .await;
    assert_eq!(
        status, 401,
        "metrics need a token like every call but /healthz"
    );

    let (status, openapi) = s.writ.get("/openapi.json", &alice).await;
    assert_eq!(status, 200);
    for path in [
        "/v1/requests",
        "/v1/requests/{id}/approve",
        "/v1/grants/{id}/revoke",
        "/v1/audit/verify",
    ] {
        assert!(
            openapi["paths"][path].is_object(),
            "{path} missing from /openapi.json"
        );
    }
    assert!(openapi["components"]["schemas"]["Request"].is_object());

    let response = s
        .writ
        .http
        .get(format!("{}/healthz", s.writ.base()))
        .send()
        .await
        .expect("healthz");
    assert!(
        response
            .headers()
            .get("x-request-id")
            .is_some_and(|id| id.len() >= 32),
        "responses carry a request id"
    );

    let (status, missing) = s.writ.get("/v1/nothing-here", &alice).await;
    assert_eq!(
        (status, missing["error"]["code"].as_str()),
        (404, Some("not_found"))
    );

    let exit = s.writ.stop_and_wait();
    assert_eq!(
        exit,
        Some(0),
        "SIGTERM shuts down cleanly: {}",
        s.writ.log()
    );
    assert!(s.writ.log().contains("writ stopped"));
    s.finish().await;
}

/// `POST /v1/requests/preview` and `writ request --dry-run` tell the decision writ would
/// make — automatic for how long, approvals from whom, denied and why — and it is the
/// one a real request then gets; a preview records nothing and touches no target.
#[tokio::test]
async fn a_preview_tells_the_decision_and_records_nothing() {
    let mut s = setup(true).await;
    s.writ.start().await;
    // Tokens first: issuing one is on the ledger.
    let (alice, dave, admin) = (
        s.writ.token("alice"),
        s.writ.token("dave"),
        s.writ.admin_token(),
    );
    async fn events(writ: &Writ, admin: &str) -> usize {
        let (_, events) = writ.get("/v1/audit?limit=1000", admin).await;
        events["events"].as_array().map_or(0, Vec::len)
    }
    let before = events(&s.writ, &admin).await;
    let ask = |entitlement: &str, duration: i64| json!({"entitlement": entitlement, "duration_seconds": duration, "justification": "month end"});

    // Automatic, capped by policy's @max_duration (1h) below the asked-for 3h.
    let (status, auto) = s
        .writ
        .post("/v1/requests/preview", &alice, ask("pg/read", 3 * 3600))
        .await;
    assert_eq!(status, 200, "{auto}");
    assert_eq!(
        (auto["state"].as_str(), auto["duration_seconds"].as_i64()),
        (Some("approved"), Some(3600)),
        "{auto}"
    );
    assert_eq!(auto["decision"]["policies"], json!(["low-auto"]));
    // Needs one approval, from alice's manager.
    let (_, pending) = s
        .writ
        .post("/v1/requests/preview", &alice, ask("pg/admin", 600))
        .await;
    assert_eq!(pending["decision"]["approvals_required"], 1, "{pending}");
    assert_eq!(pending["approvers"], json!(["dave"]), "{pending}");
    // dave is no engineer: denied, with the reason.
    let (_, denied) = s
        .writ
        .post("/v1/requests/preview", &dave, ask("pg/read", 600))
        .await;
    assert_eq!(denied["state"], "denied", "{denied}");
    assert_eq!(
        denied["decision"]["reasons"],
        json!(["no policy permits this request"])
    );
    // Refusals are the request's own.
    let (status, refused) = s
        .writ
        .post("/v1/requests/preview", &alice, ask("pg/nope", 600))
        .await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (422, Some("unknown_entitlement"))
    );

    // Nothing recorded, nothing granted.
    assert_eq!(events(&s.writ, &admin).await, before);
    assert!(!s.roles.holds(&s.read_role, &s.alice_account).await);
    let (_, requests) = s.writ.get("/v1/requests", &alice).await;
    assert_eq!(requests["requests"], json!([]));

    // The CLI says it in a line, and a real request then gets exactly that decision.
    let dry = s.writ.run(&[
        "request",
        "pg/admin",
        "-j",
        "month end",
        "--duration",
        "10m",
        "--dry-run",
        "--token",
        &alice,
    ]);
    assert!(dry.status.success(), "{}", stderr(&dry));
    assert!(
        stdout(&dry).contains("would be needs 1 approval from dave, for at most 10m"),
        "{}",
        stdout(&dry)
    );
    let denied = s.writ.run(&[
        "request",
        "pg/read",
        "-j",
        "x",
        "--dry-run",
        "--token",
        &dave,
    ]);
    assert!(
        !denied.status.success(),
        "a denied preview exits as a denied request"
    );
    assert!(
        stdout(&denied).contains("would be denied: no policy permits this request"),
        "{}",
        stdout(&denied)
    );
    let (_, made) = s
        .writ
        .post("/v1/requests", &alice, ask("pg/read", 3 * 3600))
        .await;
    assert_eq!(made["decision"], auto["decision"]);
    assert_eq!(made["duration_seconds"], auto["duration_seconds"]);
    s.finish().await;
}

/// `writ policy explain` tells a past decision from the ledger, and each policy's part
/// while the set at hand is the one that decided; after a policy change it says so, and
/// explains with the old set given as `--policies`.
#[tokio::test]
async fn a_past_decision_is_explained_from_the_ledger() {
    let mut s = setup(true).await;
    s.writ.start().await;
    let alice = s.writ.token("alice");
    let ask = |entitlement: &str| json!({"entitlement": entitlement, "duration_seconds": 600, "justification": "month end"});
    let (_, pending) = s.writ.post("/v1/requests", &alice, ask("pg/admin")).await;
    let id = pending["id"].as_str().expect("id").to_string();
    s.writ.stop();

    let explain = s.writ.run(&["policy", "explain", &id[..12]]);
    assert!(explain.status.success(), "{}", stderr(&explain));
    let out = stdout(&explain);
    assert!(
        out.contains("decided: 1 approval(s) needed by high-one-approval"),
        "{out}"
    );
    assert!(
        out.contains("permit high-one-approval @approvals(\"1\")\n         SET THE OUTCOME"),
        "{out}"
    );
    assert!(
        out.contains("permit low-auto @max_duration(\"1h\")\n         did not apply: its scope matches, its conditions were not met"),
        "{out}"
    );
    assert!(
        out.contains("permit manager-approves\n         did not apply: its scope (principal, action, resource) does not match"),
        "{out}"
    );

    // The policies change: the record stands, and the old set explains it.
    let old = tempfile::tempdir().expect("dir");
    for (name, text) in POLICIES {
        std::fs::write(old.path().join(name), text).expect("write");
    }
    std::fs::write(
        s.writ.path("policies/request.cedar"),
        "@id(\"everything-auto\") @max_duration(\"1h\")\npermit (principal, action == Action::\"request\", resource);\n",
    )
    .expect("write");
    let explain = s.writ.run(&["policy", "explain", &id]);
    let out = stdout(&explain);
    assert!(out.contains("is not the one that decided"), "{out}");
    assert!(!out.contains("SET THE OUTCOME"), "{out}");
    let old_dir = old.path().to_string_lossy().to_string();
    let explain = s
        .writ
        .run(&["policy", "explain", &id, "--policies", &old_dir]);
    assert!(
        stdout(&explain).contains("SET THE OUTCOME"),
        "{}",
        stdout(&explain)
    );
    let missing = s.writ.run(&["policy", "explain", "req_00000000"]);
    assert_eq!(missing.status.code(), Some(4), "{}", stderr(&missing));
    s.writ.start().await;
    s.finish().await;
}

/// `writ policy replay` decides the recorded requests again under a proposed set and
/// lists the decisions that change; the ledger is untouched.
#[tokio::test]
async fn a_proposed_policy_set_is_replayed_over_the_recorded_requests() {
    let mut s = setup(true).await;
    s.writ.start().await;
    let (alice, dave) = (s.writ.token("alice"), s.writ.token("dave"));
    let ask = |entitlement: &str| json!({"entitlement": entitlement, "duration_seconds": 600, "justification": "month end"});
    for (token, entitlement) in [
        (&alice, "pg/read"),
        (&alice, "pg/admin"),
        (&dave, "pg/read"),
    ] {
        let (status, body) = s.writ.post("/v1/requests", token, ask(entitlement)).await;
        assert_eq!(status, 201, "{body}");
    }
    s.writ.stop();
    let ledger = |writ: &Writ| {
        let verify = writ.run(&["audit", "verify"]);
        stdout(&verify)
            .split(';')
            .next()
            .unwrap_or_default()
            .to_string()
    };
    let ledger_before = ledger(&s.writ);
    assert!(
        ledger_before.starts_with("ledger intact"),
        "{ledger_before}"
    );

    // Unchanged policies: nothing changes.
    let same = s.writ.path("policies").to_string_lossy().to_string();
    let replay = s.writ.run(&["policy", "replay", "--policies", &same]);
    assert!(replay.status.success(), "{}", stderr(&replay));
    assert!(
        stdout(&replay).contains("replayed 3 recorded requests under policy set"),
        "{}",
        stdout(&replay)
    );
    assert!(
        stdout(&replay).contains(": 0 decision(s) change"),
        "{}",
        stdout(&replay)
    );

    // Proposed: admin access automatic for engineers, and read access for everyone.
    let proposed = tempfile::tempdir().expect("dir");
    std::fs::write(
        proposed.path().join("p.cedar"),
        "@id(\"admin-auto\") @max_duration(\"30m\")\npermit (principal in Group::\"engineers\", action == Action::\"request\", resource == Entitlement::\"pg/admin\");\n\
         @id(\"read-for-all\") @max_duration(\"1h\")\npermit (principal, action == Action::\"request\", resource == Entitlement::\"pg/read\");\n",
    )
    .expect("write");
    let dir = proposed.path().to_string_lossy().to_string();
    let replay = s
        .writ
        .run(&["policy", "replay", "--policies", &dir, "--since", "1h"]);
    assert!(replay.status.success(), "{}", stderr(&replay));
    let out = stdout(&replay);
    assert!(out.contains(": 2 decision(s) change"), "{out}");
    let row = |who: &str, entitlement: &str| {
        out.lines()
            .find(|line| line.contains(&format!("  {who}")) && line.contains(entitlement))
            .map(|line| {
                line.split_whitespace()
                    .skip(5)
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default()
    };
    assert_eq!(
        row("alice", "pg/admin"),
        "1 approval(s) needed automatic, at most 30m",
        "{out}"
    );
    assert_eq!(
        row("dave", "pg/read"),
        "denied automatic, at most 1h",
        "{out}"
    );
    // Nothing was written: the same events, the same head.
    assert_eq!(ledger(&s.writ), ledger_before);
    s.writ.start().await;
    s.finish().await;
}

/// More time on a grant through the API and the CLI: a new decision under the policy in
/// force that moves the same lease's end, on the real target; someone else's grant
/// answers 404.
#[tokio::test]
async fn a_grant_is_extended_by_a_decision_of_its_own() {
    let mut s = setup(true).await;
    s.writ.start().await;
    let (alice, bob) = (s.writ.token("alice"), s.writ.token("bob"));
    let (_, made) = s
        .writ
        .post(
            "/v1/requests",
            &alice,
            json!({"entitlement": "pg/read", "duration_seconds": 3, "justification": "numbers"}),
        )
        .await;
    let grant: writ_domain::GrantId = made["grant_id"]
        .as_str()
        .expect("grant")
        .parse()
        .expect("id");
    s.writ
        .wait_for_grant_state(grant, &alice, Duration::from_secs(10), GrantState::Active)
        .await;
    let before = s.writ.grant(grant, &alice).await.grant.expires_at;

    let (status, refused) = s
        .writ
        .post(
            &format!("/v1/grants/{grant}/extend"),
            &bob,
            json!({"duration_seconds": 5, "justification": "mine now"}),
        )
        .await;
    assert_eq!(status, 404, "{refused}");
    let extended = s.writ.run(&[
        "extend",
        &grant.to_string(),
        "--duration",
        "5s",
        "-j",
        "the numbers are late",
        "--token",
        &alice,
    ]);
    assert!(extended.status.success(), "{}", stderr(&extended));
    let after = s.writ.grant(grant, &alice).await.grant.expires_at;
    assert_eq!(after, before.plus_seconds(5));
    let (_, requests) = s.writ.get("/v1/requests", &alice).await;
    let extension = requests["requests"]
        .as_array()
        .and_then(|all| all.iter().find(|r| r["extends"] == grant.to_string()))
        .expect("the extension is a request of its own");
    assert_eq!(extension["state"], "approved");
    assert_eq!(extension["grant_id"], grant.to_string());

    // Past the original end the role is still held; at the new end it is verified gone.
    tokio::time::sleep(Duration::from_millis(
        u64::try_from(
            before
                .millis_since(writ_domain::Clock::now(&writ_engine::SystemClock))
                .max(0),
        )
        .unwrap_or(0)
            + 1000,
    ))
    .await;
    assert!(
        s.roles.holds(&s.read_role, &s.alice_account).await,
        "extended, not ended"
    );
    s.writ
        .wait_for_grant_state(grant, &alice, Duration::from_secs(15), GrantState::Revoked)
        .await;
    assert!(!s.roles.holds(&s.read_role, &s.alice_account).await);
    s.finish().await;
}

//! Bad input gets a precise error and changes nothing: not the target, not the ledger.
//! Tampering with the stored record is caught and located by `writ audit verify`.

mod support;

use writ_domain::lifecycle::GrantState;

use std::time::Duration;

use serde_json::{Value, json};
use support::{Writ, stderr, stdout};

const CONFIG: &str = r#"
[storage]
url = "sqlite://writ.db"

[[target]]
name = "files"
kind = "command"
command = "./memberships.sh"

[[entitlement]]
id = "files/read"
target = "files"
role = "read"
sensitivity = "low"
max_duration = "1h"

[[entitlement]]
id = "files/admin"
target = "files"
role = "admin"
sensitivity = "high"
max_duration = "1h"

[[user]]
name = "alice"
groups = ["engineers"]
manager = "dave"

[[user]]
name = "dave"

[[service]]
name = "svc-report"
owner = "dave"
"#;

const POLICY: &str = r#"
@id("low-auto")
permit (principal in Group::"engineers", action == Action::"request", resource)
when { resource.sensitivity == "low" };

@id("high-approval")
@approvals("1")
permit (principal in Group::"engineers", action == Action::"request", resource)
when { resource.sensitivity == "high" };

@id("manager-approves")
permit (principal, action == Action::"approve", resource)
when { resource.subject has manager && principal == resource.subject.manager };
"#;

const SCRIPT: &str = include_str!("../../../examples/quickstart/memberships.sh");

fn writ() -> Writ {
    let writ = Writ::new(CONFIG, &[("policy.cedar", POLICY)]);
    let script = writ.path("memberships.sh");
    std::fs::write(&script, SCRIPT).expect("script");
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    writ
}

fn memberships(writ: &Writ) -> String {
    std::fs::read_to_string(writ.path("state/memberships.txt")).unwrap_or_default()
}

async fn event_count(writ: &Writ, admin: &str) -> usize {
    let (_, audit) = writ.get("/v1/audit?limit=1000", admin).await;
    audit["events"].as_array().map_or(0, Vec::len)
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("<no code>")
}

#[tokio::test]
async fn bad_requests_are_refused_precisely_and_change_nothing() {
    let mut writ = writ();
    writ.start().await;
    let alice = writ.token("alice");
    let admin = writ.admin_token();
    let before = event_count(&writ, &admin).await;

    let raw = |body: &'static str| {
        let writ = &writ;
        let alice = alice.clone();
        async move {
            let response = writ
                .http
                .post(format!("{}/v1/requests", writ.base()))
                .bearer_auth(alice)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .expect("send");
            let status = response.status().as_u16();
            (
                status,
                response.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    let (status, body) = raw("{\"entitlement\": ").await;
    assert_eq!((status, code(&body)), (400, "malformed_request"), "{body}");
    let (status, body) = raw("{\"entitlement\": 5}").await;
    assert_eq!((status, code(&body)), (400, "malformed_request"), "{body}");
    let (status, body) =
        raw("{\"entitlement\": \"files/read\", \"justification\": \"x\", \"surprise\": 1}").await;
    assert_eq!(
        (status, code(&body)),
        (400, "malformed_request"),
        "unknown fields are refused: {body}"
    );

    let cases = [
        (
            json!({"entitlement": "files/nope", "justification": "x"}),
            422,
            "unknown_entitlement",
        ),
        (
            json!({"entitlement": "files/read", "subject": "mallory", "justification": "x"}),
            422,
            "unknown_identity",
        ),
        (
            json!({"entitlement": "files/read", "duration_seconds": 0, "justification": "x"}),
            422,
            "invalid_duration",
        ),
        (
            json!({"entitlement": "files/read", "duration_seconds": -5, "justification": "x"}),
            422,
            "invalid_duration",
        ),
        (
            json!({"entitlement": "files/read", "justification": "   "}),
            422,
            "missing_justification",
        ),
        (
            json!({"entitlement": "files/read", "subject": "svc-report", "justification": "x"}),
            403,
            "not_subject_owner",
        ),
    ];
    for (body, expected_status, expected_code) in cases {
        let (status, answer) = writ.post("/v1/requests", &alice, body.clone()).await;
        assert_eq!(
            (status, code(&answer)),
            (expected_status, expected_code),
            "{body} → {answer}"
        );
    }

    let huge = "x".repeat(70 * 1024);
    let (status, answer) = writ
        .post(
            "/v1/requests",
            &alice,
            json!({"entitlement": "files/read", "justification": huge}),
        )
        .await;
    assert_eq!((status, code(&answer)), (413, "body_too_large"));

    for token in [
        None,
        Some("writ_forged0000000000000000000000000000000000000"),
        Some("not-even-a-writ-token"),
    ] {
        let (status, answer) = writ
            .call(reqwest::Method::GET, "/v1/grants", token, None)
            .await;
        assert_eq!(
            (status, code(&answer)),
            (401, "unauthenticated"),
            "{token:?}"
        );
    }
    let short_lived = {
        let output = writ.run(&["token", "issue", "alice", "--ttl", "1s"]);
        assert!(output.status.success());
        stdout(&output).trim().to_string()
    };
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (status, answer) = writ.get("/v1/grants", &short_lived).await;
    assert_eq!(status, 401, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("expired"))
    );

    let (status, answer) = writ
        .post("/v1/requests/not-a-uuid/approve", &alice, json!({}))
        .await;
    assert_eq!((status, code(&answer)), (404, "not_found"));
    let (status, _) = writ
        .get("/v1/requests/01a22634-7402-70a7-8637-6c4f5d9df060", &alice)
        .await;
    assert_eq!(status, 404);
    let (status, _) = writ.get("/v1/grants?state=bogus", &alice).await;
    assert_eq!(status, 400);

    // Nothing above reached the target or the ledger (one event: the short-lived token).
    assert_eq!(memberships(&writ), "");
    assert_eq!(event_count(&writ, &admin).await, before + 1);
    let (_, grants) = writ.get("/v1/grants", &alice).await;
    assert_eq!(grants["grants"].as_array().map(Vec::len), Some(0));

    // A denied request is still recorded, with its reasons.
    let (status, denied) = writ
        .post(
            "/v1/requests",
            &alice,
            json!({"entitlement": "files/read", "subject": "dave", "justification": "x"}),
        )
        .await;
    assert_eq!((status, code(&denied)), (403, "not_subject_owner"));
    let dave = writ.token("dave");
    let (status, denied) = writ
        .post(
            "/v1/requests",
            &dave,
            json!({"entitlement": "files/read", "justification": "x"}),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(denied["state"], "denied");
    assert_eq!(
        denied["decision"]["reasons"],
        json!(["no policy permits this request"])
    );
    assert!(denied["grant_id"].is_null());
    assert_eq!(memberships(&writ), "");

    // Approving something not pending is a conflict.
    let (_, approved) = writ
        .post(
            "/v1/requests",
            &alice,
            json!({"entitlement": "files/read", "justification": "x"}),
        )
        .await;
    let (status, answer) = writ
        .post(
            &format!(
                "/v1/requests/{}/approve",
                approved["id"].as_str().unwrap_or_default()
            ),
            &dave,
            json!({}),
        )
        .await;
    assert_eq!((status, code(&answer)), (409, "not_pending"));
    writ.stop();
    let verify = writ.run(&["audit", "verify"]);
    assert!(verify.status.success(), "{}", stderr(&verify));
}

/// Runs a scenario, stops writ, and returns the database file's bytes (to restore between tamperings).
async fn recorded_history(writ: &mut Writ) -> Vec<u8> {
    writ.start().await;
    let alice = writ.token("alice");
    let dave = writ.token("dave");
    let (_, request) = writ
        .post(
            "/v1/requests",
            &alice,
            json!({"entitlement": "files/admin", "justification": "fix"}),
        )
        .await;
    let id = request["id"].as_str().expect("id").to_string();
    let (status, _) = writ
        .post(&format!("/v1/requests/{id}/approve"), &dave, json!({}))
        .await;
    assert_eq!(status, 200);
    let (_, request) = writ.get(&format!("/v1/requests/{id}"), &alice).await;
    let grant = request["grant_id"].as_str().expect("grant").to_string();
    writ.wait_for_grant_state(
        grant.parse().expect("grant id"),
        &alice,
        Duration::from_secs(5),
        GrantState::Active,
    )
    .await;
    writ.post(
        &format!("/v1/grants/{grant}/revoke"),
        &alice,
        json!({"reason": "done"}),
    )
    .await;
    writ.wait_for_grant_state(
        grant.parse().expect("grant id"),
        &alice,
        Duration::from_secs(5),
        GrantState::Revoked,
    )
    .await;
    writ.stop();
    let verify = writ.run(&["audit", "verify"]);
    assert!(verify.status.success(), "{}", stderr(&verify));
    // Fold the WAL into the main file so one copy holds everything.
    sql(writ, "PRAGMA wal_checkpoint(TRUNCATE)").await;
    std::fs::read(writ.path("writ.db")).expect("database file")
}

async fn sql(writ: &Writ, statement: &str) {
    let url = format!("sqlite://{}", writ.path("writ.db").display());
    let pool = sqlx::SqlitePool::connect(&url)
        .await
        .expect("open database");
    sqlx::raw_sql(sqlx::AssertSqlSafe(statement.to_string()))
        .execute(&pool)
        .await
        .expect("tamper");
    pool.close().await;
}

#[tokio::test]
async fn tampering_is_caught_and_located() {
    let mut writ = writ();
    let pristine = recorded_history(&mut writ).await;
    // (statement, expected in the error, whether it touches the ledger itself: only
    // those are the chain check's to find; the table ones need the replay)
    let tamperings = [
        (
            "UPDATE events SET data = replace(data, '\"fix\"', '\"routine\"') WHERE kind = 'request.created'",
            "event 3:",
            true,
        ),
        (
            "UPDATE events SET actor = 'carol' WHERE seq = 5",
            "event 5:",
            true,
        ),
        ("DELETE FROM events WHERE seq = 4", "event 5:", true),
        (
            "DELETE FROM events WHERE seq = (SELECT MAX(seq) FROM events)",
            "removed from the end",
            true,
        ),
        (
            "UPDATE events SET seq = -seq WHERE seq IN (6, 7); UPDATE events SET seq = 13 + seq WHERE seq IN (-6, -7)",
            "event 6:",
            true,
        ),
        ("UPDATE grants SET state = 'active'", "grants row", false),
        (
            "UPDATE grants SET doc = replace(doc, '\"revoked\"', '\"active\"')",
            "grants row",
            false,
        ),
        (
            "UPDATE requests SET subject = 'dave'",
            "requests row",
            false,
        ),
        ("DELETE FROM grants", "missing from the table", false),
    ];
    for (statement, expected, in_ledger) in tamperings {
        std::fs::write(writ.path("writ.db"), &pristine).expect("restore");
        let _ = std::fs::remove_file(writ.path("writ.db-wal"));
        let _ = std::fs::remove_file(writ.path("writ.db-shm"));
        sql(&writ, statement).await;
        let verify = writ.run(&["audit", "verify"]);
        assert!(
            !verify.status.success(),
            "{statement} went unnoticed: {}",
            stdout(&verify)
        );
        assert!(
            stderr(&verify).contains(expected),
            "{statement}: expected {expected:?} in {}",
            stderr(&verify)
        );
        let chain = writ.run(&["audit", "verify", "--chain-only"]);
        if in_ledger {
            assert!(
                !chain.status.success() && stderr(&chain).contains(expected),
                "{statement}: the chain check should fail with {expected:?}: {}{}",
                stdout(&chain),
                stderr(&chain)
            );
        } else {
            assert!(
                chain.status.success() && stdout(&chain).contains("ledger chain intact"),
                "{statement} leaves the chain intact: {}",
                stderr(&chain)
            );
        }
    }
}

/// An event whose data is no longer JSON is never shown or sent as `null`: the export
/// fails naming it, and the audit log answers 500 data_corrupt (not a retryable 503).
#[tokio::test]
async fn an_event_whose_data_is_not_json_is_an_error_everywhere() {
    let mut writ = writ();
    recorded_history(&mut writ).await;
    sql(&writ, "UPDATE events SET data = '{not json' WHERE seq = 3").await;
    let export = writ.run(&["audit", "export", "--format", "ocsf"]);
    assert!(!export.status.success());
    assert!(
        stderr(&export).contains("the ledger is corrupt: event 3: its data is not JSON"),
        "{}",
        stderr(&export)
    );
    writ.start().await;
    let admin = writ.admin_token();
    let (status, body) = writ.get("/v1/audit", &admin).await;
    assert_eq!((status, code(&body)), (500, "data_corrupt"), "{body}");
    assert!(
        writ.log().contains("event 3: its data is not JSON"),
        "the detail is in the server log"
    );
    writ.stop();
}

#[tokio::test]
async fn config_and_policy_errors_refuse_to_start_and_name_the_place() {
    let writ = writ();
    std::fs::write(
        &writ.config,
        std::fs::read_to_string(&writ.config)
            .expect("config")
            .replace("sensitivity = \"high\"", "sensitivity = \"huge\""),
    )
    .expect("write");
    let output = writ.run(&["serve"]);
    assert_eq!(output.status.code(), Some(2));
    let message = stderr(&output);
    assert!(
        message.contains("writ.toml: entitlement[1].sensitivity"),
        "{message}"
    );

    let writ = self::writ();
    std::fs::write(
        writ.path("policies/broken.cedar"),
        "permit (principal, action, resource)\nwhen { resource.sensitivity == };\n",
    )
    .expect("write");
    let output = writ.run(&["policy", "check"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("broken.cedar:2:"),
        "{}",
        stderr(&output)
    );
    let output = writ.run(&["serve"]);
    assert_eq!(output.status.code(), Some(2));

    let writ = self::writ();
    std::fs::write(writ.path("policies/typo.cedar"), "permit (principal, action == Action::\"request\", resource)\nwhen { resource.sensitivty == \"low\" };\n")
        .expect("write");
    let output = writ.run(&["policy", "check"]);
    assert_eq!(
        output.status.code(),
        Some(2),
        "strict validation must catch the attribute typo"
    );
    assert!(
        stderr(&output).contains("typo.cedar:2:"),
        "{}",
        stderr(&output)
    );

    let writ = self::writ();
    std::fs::write(
        &writ.config,
        format!(
            "{}\n[unknown_table]\nx = 1\n",
            std::fs::read_to_string(&writ.config).expect("config")
        ),
    )
    .expect("write");
    let output = writ.run(&["token", "issue", "alice"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("unknown field `unknown_table`"),
        "{}",
        stderr(&output)
    );
}

#[tokio::test]
async fn policy_check_shows_evaluation_errors_from_a_dry_run() {
    let writ = writ();
    std::fs::write(
        writ.path("policies/overflow.cedar"),
        "@id(\"overflowing\")\npermit (principal, action == Action::\"request\", resource)\nwhen { context.duration_seconds * 10000000000000000 > 0 };\n",
    )
    .expect("write");
    let output = writ.run(&["policy", "check"]);
    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
    assert!(
        stderr(&output).contains("integer overflow"),
        "{}",
        stderr(&output)
    );
    assert!(
        stderr(&output).contains("`overflowing`"),
        "{}",
        stderr(&output)
    );
}

#[tokio::test]
async fn unreachable_storage_is_reported_at_once_with_its_reason() {
    let writ = writ();
    let config = std::fs::read_to_string(&writ.config)
        .expect("config")
        .replace("sqlite://writ.db", "postgres://postgres@127.0.0.1:1/writ");
    std::fs::write(&writ.config, config).expect("write");
    let started = std::time::Instant::now();
    let output = writ.run(&["serve"]);
    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    assert!(
        message.contains("storage.url") && message.contains("Connection refused"),
        "{message}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
}

/// A lease is only as temporary as its revocation job, which is bookkeeping, not
/// ledger: `audit verify` checks every live grant has one due by its expiry, and the
/// scheduler's sweep gives an expired grant that lost its job a new one and revokes it.
#[tokio::test]
async fn a_lease_that_lost_its_job_is_caught_by_verify_and_revoked_by_the_sweep() {
    let mut writ = writ();
    writ.start().await;
    let alice = writ.token("alice");
    let (status, request) = writ
        .post(
            "/v1/requests",
            &alice,
            json!({"entitlement": "files/read", "justification": "j", "duration_seconds": 3}),
        )
        .await;
    assert_eq!(status, 201, "{request}");
    let grant = request["grant_id"].as_str().expect("grant").to_string();
    writ.wait_for_grant_state(
        grant.parse().expect("grant id"),
        &alice,
        Duration::from_secs(5),
        GrantState::Active,
    )
    .await;
    writ.stop();
    assert!(writ.run(&["audit", "verify"]).status.success());

    // Its revocation put off to tomorrow: caught.
    sql(
        &writ,
        &format!("UPDATE jobs SET due_at_us = due_at_us + 86400000000 WHERE object_id = '{grant}'"),
    )
    .await;
    let verify = writ.run(&["audit", "verify"]);
    assert!(!verify.status.success(), "{}", stdout(&verify));
    assert!(
        stderr(&verify).contains(&grant) && stderr(&verify).contains("after its expiry"),
        "{}",
        stderr(&verify)
    );
    // Its job gone: caught.
    sql(
        &writ,
        &format!("DELETE FROM jobs WHERE object_id = '{grant}'"),
    )
    .await;
    let verify = writ.run(&["audit", "verify"]);
    assert!(!verify.status.success(), "{}", stdout(&verify));
    assert!(
        stderr(&verify).contains(&grant) && stderr(&verify).contains("has no job"),
        "{}",
        stderr(&verify)
    );
    assert!(memberships(&writ).contains("read alice"), "still held");

    // And a job row writ never wrote, naming no grant: logged, counted, put off.
    sql(
        &writ,
        "INSERT INTO jobs (object_id, kind, due_at_us, attempts) VALUES ('forged', 'grant.revoke', 0, 0)",
    )
    .await;

    // Past its expiry, writ starts: the sweep finds it and it is revoked as usual.
    tokio::time::sleep(Duration::from_secs(3)).await;
    writ.start().await;
    let revoked = writ
        .wait_for_grant_state(
            grant.parse().expect("grant id"),
            &alice,
            Duration::from_secs(15),
            GrantState::Revoked,
        )
        .await;
    assert_eq!(
        revoked.grant.state,
        GrantState::Revoked,
        "{revoked:?}\n{}",
        writ.log()
    );
    assert!(!memberships(&writ).contains("read alice"));
    let (_, metrics) = writ
        .call(reqwest::Method::GET, "/metrics", Some(&alice), None)
        .await;
    let text = metrics.as_str().unwrap_or_default().to_string();
    assert!(text.contains("writ_jobless_grants_total 1"), "{text}");
    assert!(
        !text.contains("writ_jobs_unreadable_total 0")
            && text.contains("writ_jobs_unreadable_total "),
        "{text}"
    );
    assert!(
        writ.log().contains("forged"),
        "the unreadable job is named in the log"
    );
    writ.stop();
    sql(&writ, "DELETE FROM jobs WHERE object_id = 'forged'").await;
    let verify = writ.run(&["audit", "verify"]);
    assert!(verify.status.success(), "{}", stderr(&verify));
}

/// An honest ledger verifies while writ writes as fast as it can: verification reads the
/// head and the state tables at one moment and replays the chain up to that head.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_on_a_busy_server_never_reports_tampering() {
    let mut writ = Writ::new(CONFIG, &[("policy.cedar", POLICY)]);
    let text = std::fs::read_to_string(&writ.config).expect("config");
    std::fs::write(
        &writ.config,
        text.replacen("[server]\n", "[server]\nrate_limit = \"off\"\n", 1),
    )
    .expect("config");
    let script = writ.path("memberships.sh");
    std::fs::write(&script, SCRIPT).expect("script");
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    writ.start().await;
    let alice = writ.token("alice");
    let admin = writ.admin_token();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = Vec::new();
    for _ in 0..4 {
        let (http, base, token, stop) =
            (writ.http.clone(), writ.base(), alice.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            let mut written = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let response = http
                    .post(format!("{base}/v1/requests"))
                    .bearer_auth(&token)
                    .json(&json!({"entitlement": "files/read", "justification": "busy", "duration_seconds": 60}))
                    .send()
                    .await
                    .expect("request");
                assert_eq!(response.status(), 201);
                written += 1;
            }
            written
        }));
    }
    let mut verified = 0;
    let until = std::time::Instant::now() + Duration::from_secs(6);
    while std::time::Instant::now() < until {
        let (status, result) = writ.get("/v1/audit/verify", &admin).await;
        assert_eq!(status, 200, "{result}");
        assert_eq!(
            result["ok"], true,
            "an honest ledger reported as tampered: {result}"
        );
        let cli = writ.run(&["audit", "verify"]);
        assert!(cli.status.success(), "{}", stderr(&cli));
        verified += 1;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut written = 0;
    for writer in writers {
        written += writer.await.expect("writer");
    }
    assert!(
        verified >= 3 && written >= 50,
        "{verified} verifications, {written} requests"
    );
}

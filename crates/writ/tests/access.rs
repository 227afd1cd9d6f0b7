//! Who may see and do what, route by route and caller by caller: one table, run against
//! the real binary. Identities read what concerns them (their own requests and grants,
//! those of services and agents they own, requests they may approve, findings on
//! entitlements they own); auditors and admins read everything; the rest answers as if
//! it did not exist, and nobody without a live token gets anything.

mod support;

use writ_domain::lifecycle::GrantState;

use std::time::Duration;

use serde_json::{Value, json};
use support::{TestRoles, Writ};

const POLICIES: &[(&str, &str)] = &[(
    "policy.cedar",
    r#"
@id("low-auto")
permit (principal, action == Action::"request", resource)
when { resource.sensitivity == "low" };

@id("high-one-approval")
@approvals("1")
permit (principal in Group::"engineers", action == Action::"request", resource)
when { resource.sensitivity == "high" };

@id("managers-approve")
permit (principal in Group::"managers", action == Action::"approve", resource);

@id("engineers-break-glass")
permit (principal in Group::"engineers", action == Action::"break_glass", resource);
"#,
)];

fn config(roles: &TestRoles, read: &str, ops: &str) -> String {
    let p = &roles.prefix;
    format!(
        r#"
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
owners = "dba"

[[entitlement]]
id = "pg/ops"
target = "pg"
role = "{ops}"
sensitivity = "high"
max_duration = "1h"

[[break_glass]]
name = "outage"
entitlements = ["pg/read"]
max_duration = "30m"

[[user]]
name = "alice"
groups = ["engineers"]
accounts = {{ pg = "{p}_alice" }}

[[user]]
name = "bob"
groups = ["engineers"]

[[user]]
name = "carol"
groups = ["managers", "dba"]

[[user]]
name = "olivia"
groups = ["engineers"]

[[service]]
name = "svc-a"
owner = "olivia"
accounts = {{ pg = "{p}_svc" }}

[[agent]]
name = "agent-b"
owner = "bob"

[[user]]
name = "dave"
groups = ["auditors"]

[[user]]
name = "erin"
groups = ["admins"]

[[user]]
name = "frank"
groups = ["engineers"]
disabled = false
"#,
        url = support::PG_URL,
    )
}

/// Who calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    /// alice: requester and subject of R1 and R2.
    Own,
    /// bob: another engineer.
    Other,
    /// carol: may approve R1; owns pg/read (its findings).
    Approver,
    /// olivia: owner of svc-a, which made R3.
    Owner,
    Service,
    Agent,
    Auditor,
    Admin,
    Disabled,
    NoToken,
    Expired,
}

const EVERYONE: [Who; 11] = [
    Who::Own,
    Who::Other,
    Who::Approver,
    Who::Owner,
    Who::Service,
    Who::Agent,
    Who::Auditor,
    Who::Admin,
    Who::Disabled,
    Who::NoToken,
    Who::Expired,
];

/// What a caller gets: a status, and for a list how many items of the given key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Status(u16),
    List(&'static str, usize),
}

use Expect::{List, Status};

struct Case {
    method: reqwest::Method,
    path: String,
    body: Option<Value>,
    expect: fn(Who) -> Expect,
    /// Answers without a token too (what a client needs before it has one).
    public: bool,
}

#[tokio::test]
async fn every_route_answers_each_caller_as_its_role_allows() {
    let mut roles = TestRoles::new().await;
    let read = roles.create("read").await;
    let ops = roles.create("ops").await;
    roles.create("alice").await;
    roles.create("svc").await;
    let stray = roles.create("stray").await;
    let mut writ = Writ::new(&config(&roles, &read, &ops), POLICIES);
    writ.start().await;

    let tokens: Vec<(Who, Option<String>)> = {
        let frank = writ.token("frank");
        let expired = {
            let output = writ.run(&["token", "issue", "alice", "--ttl", "1s"]);
            assert!(output.status.success(), "{}", support::stderr(&output));
            support::stdout(&output).trim().to_string()
        };
        vec![
            (Who::Own, Some(writ.token("alice"))),
            (Who::Other, Some(writ.token("bob"))),
            (Who::Approver, Some(writ.token("carol"))),
            (Who::Owner, Some(writ.token("olivia"))),
            (Who::Service, Some(writ.token("svc-a"))),
            (Who::Agent, Some(writ.token("agent-b"))),
            (Who::Auditor, Some(writ.token("dave"))),
            (Who::Admin, Some(writ.token("erin"))),
            (Who::Disabled, Some(frank)),
            (Who::NoToken, None),
            (Who::Expired, Some(expired)),
        ]
    };
    let token = |who: Who| {
        tokens
            .iter()
            .find(|(w, _)| *w == who)
            .and_then(|(_, t)| t.clone())
    };
    let alice = token(Who::Own).expect("alice");
    let svc = token(Who::Service).expect("svc");
    let erin = token(Who::Admin).expect("erin");

    // R1: alice asks for high access (pending carol). R2: alice, low access (granted).
    // R3: the service svc-a, low access for itself (granted).
    let ask = |entitlement: &str| json!({ "entitlement": entitlement, "justification": "work" });
    let (status, r1) = writ.post("/v1/requests", &alice, ask("pg/ops")).await;
    assert_eq!(
        (status, r1["state"].as_str()),
        (201, Some("pending_approval")),
        "{r1}"
    );
    let (status, r2) = writ.post("/v1/requests", &alice, ask("pg/read")).await;
    assert_eq!(status, 201, "{r2}");
    let (status, r3) = writ.post("/v1/requests", &svc, ask("pg/read")).await;
    assert_eq!(status, 201, "{r3}");
    let id = |v: &Value, key: &str| v[key].as_str().expect(key).to_string();
    let (r1, r2, r3, g2, g3) = (
        id(&r1, "id"),
        id(&r2, "id"),
        id(&r3, "id"),
        id(&r2, "grant_id"),
        id(&r3, "grant_id"),
    );
    for grant in [&g2, &g3] {
        writ.wait_for_grant_state(
            grant.parse().expect("grant id"),
            &erin,
            Duration::from_secs(10),
            GrantState::Active,
        )
        .await;
    }
    // A1: alice breaks the glass (pg/read, granted at once; carol may review it).
    let (status, a1) = writ
        .post(
            "/v1/break-glass/outage",
            &alice,
            json!({ "justification": "down" }),
        )
        .await;
    assert_eq!(status, 201, "{a1}");
    let a1 = a1["activation"]["id"]
        .as_str()
        .expect("activation")
        .to_string();
    // A finding on pg/read (owned by dba: carol): access given by hand.
    roles.set_by_hand(&read, &stray, true).await;
    let (status, pass) = writ
        .post("/v1/reconcile", &erin, json!({ "target": "pg" }))
        .await;
    assert_eq!(status, 200, "{pass}");
    let (_, findings) = writ.get("/v1/findings", &erin).await;
    let finding = findings["findings"]
        .as_array()
        .and_then(|all| all.iter().find(|f| f["account"] == stray.as_str()))
        .map(|f| id(f, "id"))
        .expect("the stray account is a finding");

    // C1: an access review of pg/read by its owners (carol): alice's grant and her
    // break-glass grant, and svc-a's.
    let (status, c1) = writ
        .post(
            "/v1/reviews",
            &erin,
            json!({ "name": "read review", "entitlement": "pg/read", "due_in_seconds": 86400 }),
        )
        .await;
    assert_eq!(status, 201, "{c1}");
    let c1 = id(&c1["campaign"], "id");
    let (_, items) = writ.get(&format!("/v1/reviews/{c1}/items"), &erin).await;
    let i_alice = items["items"]
        .as_array()
        .and_then(|all| all.iter().find(|i| i["access"]["grant"] == g2.as_str()))
        .map(|i| id(i, "id"))
        .expect("alice's grant is under review");

    // The disabled identity: its token was issued while it was enabled.
    writ.stop();
    writ.replace_in_config("disabled = false", "disabled = true");
    writ.start().await;
    tokio::time::sleep(Duration::from_millis(1100)).await; // the 1 s token expires

    let unauthenticated = |who: Who| matches!(who, Who::Disabled | Who::NoToken | Who::Expired);
    let get = |path: String, expect: fn(Who) -> Expect| Case {
        method: reqwest::Method::GET,
        path,
        body: None,
        expect,
        public: false,
    };
    let public_get = |path: &str| Case {
        method: reqwest::Method::GET,
        path: path.to_string(),
        body: None,
        expect: |_| Status(200),
        public: true,
    };
    let post = |path: String, body: Value, expect: fn(Who) -> Expect| Case {
        method: reqwest::Method::POST,
        path,
        body: Some(body),
        expect,
        public: false,
    };
    let cases = vec![
        get(format!("/v1/requests/{r1}"), |w| match w {
            Who::Own | Who::Approver | Who::Auditor | Who::Admin => Status(200),
            _ => Status(404),
        }),
        get(format!("/v1/requests/{r3}"), |w| match w {
            Who::Owner | Who::Service | Who::Auditor | Who::Admin => Status(200),
            _ => Status(404),
        }),
        get(format!("/v1/grants/{g2}"), |w| match w {
            Who::Own | Who::Auditor | Who::Admin => Status(200),
            _ => Status(404),
        }),
        get(format!("/v1/grants/{g3}"), |w| match w {
            Who::Owner | Who::Service | Who::Auditor | Who::Admin => Status(200),
            _ => Status(404),
        }),
        get("/v1/requests".into(), |w| match w {
            Who::Own => List("requests", 3),
            Who::Owner | Who::Service => List("requests", 1),
            Who::Auditor | Who::Admin => List("requests", 4),
            _ => List("requests", 0),
        }),
        get("/v1/requests?approvable_by_me=true".into(), |w| match w {
            Who::Approver => List("requests", 1),
            _ => List("requests", 0),
        }),
        get("/v1/grants".into(), |w| match w {
            Who::Own => List("grants", 2),
            Who::Owner | Who::Service => List("grants", 1),
            Who::Auditor | Who::Admin => List("grants", 3),
            _ => List("grants", 0),
        }),
        get("/v1/findings".into(), |w| match w {
            Who::Approver | Who::Auditor | Who::Admin => List("findings", 1),
            _ => List("findings", 0),
        }),
        get(format!("/v1/findings/{finding}"), |w| match w {
            Who::Approver | Who::Auditor | Who::Admin => Status(200),
            _ => Status(404),
        }),
        get(format!("/v1/break-glass/activations/{a1}"), |w| match w {
            Who::Own | Who::Approver | Who::Auditor | Who::Admin => Status(200),
            _ => Status(404),
        }),
        get("/v1/break-glass/activations".into(), |w| match w {
            Who::Own | Who::Auditor | Who::Admin => List("activations", 1),
            _ => List("activations", 0),
        }),
        get(
            "/v1/break-glass/activations?reviewable_by_me=true".into(),
            |w| match w {
                Who::Approver => List("activations", 1),
                _ => List("activations", 0),
            },
        ),
        get("/v1/reviews".into(), |w| match w {
            Who::Approver | Who::Auditor | Who::Admin => List("campaigns", 1),
            _ => List("campaigns", 0),
        }),
        get(format!("/v1/reviews/{c1}"), |w| match w {
            Who::Approver | Who::Auditor | Who::Admin => Status(200),
            _ => Status(404),
        }),
        get(format!("/v1/reviews/{c1}/items"), |w| match w {
            Who::Approver | Who::Auditor | Who::Admin => List("items", 3),
            _ => Status(404),
        }),
        get(
            "/v1/review-items?reviewable_by_me=true".into(),
            |w| match w {
                Who::Approver => List("items", 3),
                _ => List("items", 0),
            },
        ),
        get(format!("/v1/review-items/{i_alice}"), |w| match w {
            Who::Own | Who::Approver | Who::Auditor | Who::Admin => Status(200),
            _ => Status(404),
        }),
        get("/v1/identities".into(), |w| match w {
            // olivia owns svc-a, bob owns agent-b.
            Who::Owner | Who::Other => List("identities", 2),
            // Everyone configured, the test kit's admin included.
            Who::Auditor | Who::Admin => List("identities", 10),
            _ => List("identities", 1),
        }),
        get("/v1/whoami".into(), |_| Status(200)),
        get("/v1/audit".into(), |w| match w {
            Who::Auditor | Who::Admin => Status(200),
            _ => Status(403),
        }),
        get("/v1/audit/verify".into(), |w| match w {
            Who::Auditor | Who::Admin => Status(200),
            _ => Status(403),
        }),
        get("/v1/reports/standing-access".into(), |w| match w {
            Who::Auditor | Who::Admin => Status(200),
            _ => Status(403),
        }),
        get("/v1/itsm/outbox".into(), |w| match w {
            Who::Auditor | Who::Admin => Status(200),
            _ => Status(403),
        }),
        // The folder holds the set in force: an admin's reload changes nothing.
        post("/v1/policy/reload".into(), json!({}), |w| match w {
            Who::Admin => Status(200),
            _ => Status(403),
        }),
        post("/v1/reconcile".into(), json!({}), |w| match w {
            Who::Auditor | Who::Admin => Status(200),
            _ => Status(403),
        }),
        get("/v1/tokens".into(), |w| match w {
            // erin sees every token issued here; the others their own (alice has two).
            Who::Admin => List("tokens", 10),
            Who::Own => List("tokens", 2),
            _ => List("tokens", 1),
        }),
        get("/v1/tokens?identity=alice".into(), |w| match w {
            Who::Own | Who::Admin => List("tokens", 2),
            _ => Status(403),
        }),
        get("/v1/entitlements".into(), |_| List("entitlements", 2)),
        get("/v1/entitlements/pg/read".into(), |_| Status(200)),
        get("/openapi.json".into(), |_| Status(200)),
        public_get("/v1/auth/providers"),
        // Changes: every caller here is refused (the permitted ones are tested elsewhere).
        post(
            format!("/v1/requests/{r1}/approve"),
            json!({ "comment": "ok" }),
            |w| {
                match w {
                    Who::Approver => Status(0), // not tried here: it would approve
                    _ => Status(403),
                }
            },
        ),
        post(
            format!("/v1/requests/{r1}/reject"),
            json!({ "comment": "no" }),
            |w| match w {
                Who::Approver => Status(0),
                _ => Status(403),
            },
        ),
        post(
            format!("/v1/requests/{r1}/cancel"),
            json!({}),
            |w| match w {
                Who::Own => Status(0),
                _ => Status(403),
            },
        ),
        post(
            format!("/v1/grants/{g3}/revoke"),
            json!({ "reason": "r" }),
            |w| match w {
                Who::Owner | Who::Service => Status(0),
                // Those who may read it are refused; to the rest it does not exist,
                // as for GET.
                Who::Auditor | Who::Admin => Status(403),
                _ => Status(404),
            },
        ),
        post(
            "/v1/requests/preview".into(),
            json!({ "entitlement": "pg/read", "justification": "j" }),
            |w| match w {
                // An agent says whom it acts for, even to preview.
                Who::Agent => Status(422),
                _ => Status(200),
            },
        ),
        post(
            format!("/v1/grants/{g2}/extend"),
            json!({ "duration_seconds": 60, "justification": "j" }),
            |w| match w {
                Who::Own => Status(0),
                // They read it, but it is not theirs to extend.
                Who::Auditor | Who::Admin => Status(403),
                _ => Status(404),
            },
        ),
        post(
            "/v1/break-glass/outage".into(),
            json!({ "justification": "j" }),
            |w| match w {
                // Engineers may: not tried here, it would grant.
                Who::Own | Who::Other | Who::Owner => Status(0),
                Who::Agent => Status(422),
                _ => Status(403),
            },
        ),
        post(
            format!("/v1/break-glass/activations/{a1}/sign-off"),
            json!({ "comment": "looked" }),
            |w| match w {
                Who::Approver => Status(0),
                _ => Status(403),
            },
        ),
        post(
            "/v1/reviews".into(),
            json!({ "name": "again", "entitlement": "pg/read" }),
            |w| match w {
                Who::Admin => Status(0), // not tried here: it would start one
                _ => Status(403),
            },
        ),
        post(
            format!("/v1/review-items/{i_alice}/decide"),
            json!({ "decision": "revoke", "comment": "no" }),
            |w| match w {
                Who::Approver => Status(0),
                // alice's own access (self_review); everyone else is no reviewer.
                _ => Status(403),
            },
        ),
        post(
            format!("/v1/findings/{finding}/accept"),
            json!({ "owner": "carol", "reason": "r", "expires_at": "2099-01-01T00:00:00Z" }),
            |w| match w {
                Who::Approver => Status(0),
                _ => Status(403),
            },
        ),
    ];

    let mut wrong = Vec::new();
    for case in &cases {
        for who in EVERYONE {
            let expected = if unauthenticated(who) && !case.public {
                Status(401)
            } else {
                (case.expect)(who)
            };
            if expected == Status(0) {
                continue;
            }
            let (status, body) = writ
                .call(
                    case.method.clone(),
                    &case.path,
                    token(who).as_deref(),
                    case.body.clone(),
                )
                .await;
            let got = match expected {
                List(key, _) if status == 200 => {
                    List(key, body[key].as_array().map_or(usize::MAX, Vec::len))
                }
                _ => Status(status),
            };
            if got != expected {
                wrong.push(format!(
                    "{} {} as {who:?}: expected {expected:?}, got {got:?}: {body}",
                    case.method, case.path
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    let _ = (&r2, &roles);
    writ.stop();
    roles.cleanup().await;
}

/// Tokens: stored keyed with a secret outside the database, revocable at once by their
/// owner or an admin, and checked by `audit verify` against the ledger.
#[tokio::test]
async fn tokens_are_keyed_revocable_and_checked_against_the_ledger() {
    let config = r#"
[[user]]
name = "alice"
groups = ["engineers"]

[[user]]
name = "bob"
groups = ["engineers"]
"#;
    let mut writ = Writ::new(config, &[]);
    writ.start().await;
    let alice = writ.token("alice");
    let bob = writ.token("bob");
    let admin = writ.admin_token();
    let (status, _) = writ.get("/v1/requests", &alice).await;
    assert_eq!(status, 200);
    let key_file = writ.path("keys/token.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&key_file)
            .expect("key file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the key file is private");
    }
    let key = std::fs::read_to_string(&key_file).expect("key");
    assert!(!writ.log().contains(key.trim()), "the key is never logged");

    // Someone with the database writes a token of their own: its plain SHA-256, as
    // stored before hashes were keyed. It authenticates nobody, and verify names it.
    let db = sqlx::SqlitePool::connect(&format!("sqlite://{}", writ.path("writ.db").display()))
        .await
        .expect("the database");
    let forged = "writ_forgedforgedforgedforgedforgedforgedforg";
    let forged_hash = {
        use sha2::Digest as _;
        hex::encode(sha2::Sha256::digest(forged.as_bytes()))
    };
    sqlx::query(
        "INSERT INTO tokens (hash, identity, created_at_us, expires_at_us, keyed) VALUES ($1, 'alice', 0, 4102444800000000, 1)",
    )
    .bind(&forged_hash)
    .execute(&db)
    .await
    .expect("insert");
    let (status, body) = writ.get("/v1/requests", forged).await;
    assert_eq!(status, 401, "a token written into the database: {body}");
    let verify = writ.run(&["audit", "verify"]);
    assert!(!verify.status.success(), "verify must catch the row");
    assert!(
        support::stderr(&verify).contains(&format!(
            "tokens row {}: was never issued",
            &forged_hash[..16]
        )),
        "{}",
        support::stderr(&verify)
    );
    sqlx::query("DELETE FROM tokens WHERE hash = $1")
        .bind(&forged_hash)
        .execute(&db)
        .await
        .expect("delete");

    // alice finds her token by id and revokes it: it stops working at once.
    let (_, listed) = writ.get("/v1/tokens", &alice).await;
    let ids: Vec<String> = listed["tokens"]
        .as_array()
        .map(|all| {
            all.iter()
                .filter_map(|t| t["id"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(ids.len(), 1, "{listed}");
    let id = &ids[0];
    let (status, body) = writ
        .post(&format!("/v1/tokens/{id}/revoke"), &bob, json!({}))
        .await;
    assert_eq!(status, 404, "bob cannot revoke alice's token: {body}");
    let output = writ.run(&["token", "revoke", id, "--token", &alice]);
    assert!(output.status.success(), "{}", support::stderr(&output));
    let (status, body) = writ.get("/v1/requests", &alice).await;
    assert_eq!(status, 401, "revoked at once: {body}");
    let (status, _) = writ
        .post(&format!("/v1/tokens/{id}/revoke"), &admin, json!({}))
        .await;
    assert_eq!(status, 404, "a revoked token is not revoked twice");
    // An admin revokes bob's; the ledger has both.
    let (_, bobs) = writ.get("/v1/tokens?identity=bob", &admin).await;
    let bob_id = bobs["tokens"][0]["id"]
        .as_str()
        .expect("bob's token")
        .to_string();
    let (status, body) = writ
        .post(&format!("/v1/tokens/{bob_id}/revoke"), &admin, json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = writ.get("/v1/requests", &bob).await;
    assert_eq!(status, 401);
    let (_, audit) = writ.get("/v1/audit?limit=1000", &admin).await;
    let revoked: Vec<&Value> = audit["events"]
        .as_array()
        .map(|all| {
            all.iter()
                .filter(|e| e["kind"] == "token.revoked")
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(revoked.len(), 2, "{audit}");
    assert_eq!(revoked[0]["data"]["token_id"], id.as_str());
    assert_eq!(revoked[1]["actor"], support::ADMIN);
    let verify = writ.run(&["audit", "verify"]);
    assert!(verify.status.success(), "{}", support::stderr(&verify));

    // Undoing a revocation in the database is caught.
    sqlx::query("UPDATE tokens SET revoked_at_us = NULL WHERE substr(hash, 1, 16) = $1")
        .bind(id)
        .execute(&db)
        .await
        .expect("undo");
    let verify = writ.run(&["audit", "verify"]);
    assert!(!verify.status.success());
    assert!(
        support::stderr(&verify).contains("revoked on the ledger but is not revoked in the table"),
        "{}",
        support::stderr(&verify)
    );
    // A malformed id is a clear error.
    let (status, body) = writ
        .post("/v1/tokens/not-an-id/revoke", &admin, json!({}))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("bad_token_id")),
        "{body}"
    );
    db.close().await;
    writ.stop();
}

//! writ as an OpenID AuthZEN PDP, end to end: a PEP written from the Authorization API
//! 1.0 finds the endpoints in the PDP metadata, asks, and is allowed exactly while the
//! subject holds an active lease — approved by someone else, revoked early, expired.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::Writ;
use support::authzen::{CONFIG, ORDERS, POLICY, question};
use writ_domain::lifecycle::GrantState;

/// An enforcement point as the specification describes one: it discovers the PDP's
/// endpoints, then asks with its own credentials.
#[derive(Clone)]
struct Pep {
    http: reqwest::Client,
    token: String,
    evaluation: String,
    evaluations: String,
}

impl Pep {
    async fn discover(writ: &Writ, token: String) -> Self {
        let metadata = support::authzen::metadata(writ).await;
        // The identifier must be where the metadata was fetched from (mix-up defence).
        assert_eq!(metadata["policy_decision_point"], writ.base(), "{metadata}");
        let endpoint = |name: &str| {
            metadata[name]
                .as_str()
                .unwrap_or_else(|| panic!("{name} in {metadata}"))
                .to_string()
        };
        Self {
            http: writ.http.clone(),
            token,
            evaluation: endpoint("access_evaluation_endpoint"),
            evaluations: endpoint("access_evaluations_endpoint"),
        }
    }

    async fn post(&self, url: &str, body: &Value) -> (u16, Value) {
        let response = self
            .http
            .post(url)
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await
            .expect("evaluation");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// One evaluation, which must be answered (200): the Decision.
    async fn decide(&self, subject: &str, resource: (&str, &str), action: &str) -> Value {
        let (status, decision) = self
            .post(&self.evaluation, &question(subject, resource, action))
            .await;
        assert_eq!(status, 200, "{decision}");
        decision
    }
}

/// `requester` asks for `entitlement`, `approver` approves: the lease once active.
async fn approved_lease(
    writ: &Writ,
    (requester, approver): (&str, &str),
    entitlement: &str,
    duration_seconds: i64,
) -> writ_domain::GrantId {
    let request = writ
        .request_access(
            requester,
            json!({"entitlement": entitlement, "duration_seconds": duration_seconds, "justification": "work for ticket 12"}),
        )
        .await;
    let (status, approved) = writ
        .post(
            &format!("/v1/requests/{}/approve", request.id),
            approver,
            json!({ "comment": "ok" }),
        )
        .await;
    assert_eq!(status, 200, "{approved}");
    let grant = approved["grant_id"]
        .as_str()
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("grant_id in {approved}"));
    writ.wait_for_grant_state(grant, requester, Duration::from_secs(5), GrantState::Active)
        .await;
    grant
}

#[tokio::test]
async fn a_pep_is_allowed_exactly_while_the_subject_holds_a_lease() {
    let mut writ = Writ::new(CONFIG, &[("policy.cedar", POLICY)]);
    let (alice, bob) = (writ.token("alice"), writ.token("bob"));
    let pep = Pep::discover_later(&mut writ).await;

    // Nothing held: denied, and the reason names what would allow it.
    let denied = pep.decide("alice", ORDERS, "refund").await;
    assert_eq!(denied["decision"], false, "{denied}");
    assert_eq!(denied["context"]["reason"], "no_active_lease", "{denied}");
    assert_eq!(
        denied["context"]["entitlements"],
        json!(["api/orders_refund"])
    );
    let unmanaged = pep.decide("alice", ("api", "payments"), "refund").await;
    assert_eq!(
        (&unmanaged["decision"], &unmanaged["context"]["reason"]),
        (&json!(false), &json!("not_managed"))
    );
    let stranger = pep.decide("mallory", ORDERS, "refund").await;
    assert_eq!(
        stranger["context"]["reason"], "unknown_subject",
        "{stranger}"
    );

    // Requested, approved by someone else: the lease is the access, at once.
    let request = writ
        .request_access(
            &alice,
            json!({"entitlement": "api/orders_refund", "duration_seconds": 600, "justification": "refund run for ticket 12"}),
        )
        .await;
    let still_denied = pep.decide("alice", ORDERS, "refund").await;
    assert_eq!(still_denied["decision"], false, "pending is not allowed");
    let (status, approved) = writ
        .post(
            &format!("/v1/requests/{}/approve", request.id),
            &bob,
            json!({ "comment": "ok" }),
        )
        .await;
    assert_eq!(status, 200, "{approved}");
    let grant_id: writ_domain::GrantId = approved["grant_id"]
        .as_str()
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("grant_id in {approved}"));
    let active = writ
        .wait_for_grant_state(grant_id, &alice, Duration::from_secs(5), GrantState::Active)
        .await;
    assert!(active.grant.granted_at.is_some());

    let allowed = pep.decide("alice", ORDERS, "refund").await;
    assert_eq!(allowed["decision"], true, "{allowed}");
    assert_eq!(allowed["context"]["grant"]["id"], grant_id.to_string());
    assert_eq!(
        allowed["context"]["grant"]["entitlement"],
        "api/orders_refund"
    );
    assert_eq!(
        allowed["context"]["grant"]["expires_at"],
        json!(active.grant.expires_at)
    );
    // Only what the entitlement covers, only for its holder.
    assert_eq!(pep.decide("alice", ORDERS, "read").await["decision"], true);
    assert_eq!(
        pep.decide("alice", ORDERS, "delete").await["decision"],
        false
    );
    assert_eq!(
        pep.decide("alice", ("api", "orders-archive"), "refund")
            .await["decision"],
        false
    );
    assert_eq!(pep.decide("bob", ORDERS, "refund").await["decision"], false);
    // A subject type that is not the identity's kind is not that identity.
    let (_, as_agent) = pep
        .post(&pep.evaluation, &{
            let mut q = question("alice", ORDERS, "refund");
            q["subject"]["type"] = json!("agent");
            q
        })
        .await;
    assert_eq!(
        as_agent["context"]["reason"], "unknown_subject",
        "{as_agent}"
    );

    // Revoked early: the next evaluation is denied, and the revocation verified.
    let (status, revoked) = writ
        .post(
            &format!("/v1/grants/{grant_id}/revoke"),
            &alice,
            json!({ "reason": "refunds done" }),
        )
        .await;
    assert_eq!(status, 200, "{revoked}");
    assert_eq!(
        pep.decide("alice", ORDERS, "refund").await["decision"],
        false
    );
    let ended = writ
        .wait_for_grant_state(
            grant_id,
            &alice,
            Duration::from_secs(5),
            GrantState::Revoked,
        )
        .await;
    assert!(ended.grant.verified_at.is_some(), "{:?}", ended.grant);

    // A short lease: allowed, then denied once it ends.
    let short = approved_lease(&writ, (&alice, &bob), "api/reports_any", 2).await;
    assert_eq!(
        pep.decide("alice", ("report", "q4-revenue"), "read").await["decision"],
        true,
        "any id of the type"
    );
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let expired = pep.decide("alice", ("report", "q4-revenue"), "read").await;
    assert_eq!(expired["decision"], false, "{expired}");
    writ.wait_for_grant_state(short, &alice, Duration::from_secs(10), GrantState::Revoked)
        .await;

    // Nothing to reconcile on a target writ is the truth of.
    let (status, reports) = writ
        .post(
            "/v1/reconcile",
            &writ.admin_token(),
            json!({ "target": "api" }),
        )
        .await;
    assert_eq!(status, 200, "{reports}");
    assert_eq!(reports["reports"][0]["errors"], json!([]), "{reports}");
    let (_, findings) = writ.get("/v1/findings", &writ.admin_token()).await;
    assert_eq!(findings["findings"], json!([]), "{findings}");
}

impl Pep {
    /// Starts writ, then discovers it as the gateway service.
    async fn discover_later(writ: &mut Writ) -> Self {
        let token = writ.token("gateway");
        writ.start().await;
        Self::discover(writ, token).await
    }
}

#[tokio::test]
async fn batches_take_defaults_and_stop_as_their_semantic_says() {
    let mut writ = Writ::new(CONFIG, &[("policy.cedar", POLICY)]);
    let (alice, bob) = (writ.token("alice"), writ.token("bob"));
    let pep = Pep::discover_later(&mut writ).await;
    approved_lease(&writ, (&alice, &bob), "api/orders_refund", 600).await;

    let batch = |semantic: Option<&str>| {
        let mut body = json!({
            "subject": { "type": "user", "id": "alice" },
            "action": { "name": "refund" },
            "evaluations": [
                { "resource": { "type": "api", "id": "orders" } },
                { "resource": { "type": "api", "id": "payments" } },
                { "resource": { "type": "api", "id": "orders" }, "action": { "name": "read" } },
            ],
        });
        if let Some(semantic) = semantic {
            body["options"] = json!({ "evaluations_semantic": semantic });
        }
        body
    };
    let decisions = |body: &Value| -> Vec<bool> {
        body["evaluations"]
            .as_array()
            .unwrap_or_else(|| panic!("evaluations in {body}"))
            .iter()
            .map(|d| d["decision"] == true)
            .collect()
    };
    let (status, all) = pep.post(&pep.evaluations, &batch(None)).await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(decisions(&all), [true, false, true], "{all}");
    let (_, all) = pep
        .post(&pep.evaluations, &batch(Some("execute_all")))
        .await;
    assert_eq!(decisions(&all), [true, false, true], "{all}");
    let (_, first_deny) = pep
        .post(&pep.evaluations, &batch(Some("deny_on_first_deny")))
        .await;
    assert_eq!(decisions(&first_deny), [true, false], "{first_deny}");
    let (_, first_permit) = pep
        .post(&pep.evaluations, &batch(Some("permit_on_first_permit")))
        .await;
    assert_eq!(decisions(&first_permit), [true], "{first_permit}");

    // Without evaluations, the top level is one evaluation.
    let (status, single) = pep
        .post(&pep.evaluations, &question("alice", ORDERS, "refund"))
        .await;
    assert_eq!(status, 200, "{single}");
    assert_eq!(single["decision"], true, "{single}");

    // A key neither an item nor the defaults give is the whole call's 400.
    let (status, message) = pep
        .post(
            &pep.evaluations,
            &json!({ "subject": { "type": "user", "id": "alice" }, "evaluations": [ { "resource": { "type": "api", "id": "orders" } } ] }),
        )
        .await;
    assert_eq!(status, 400, "{message}");
    assert_eq!(message, json!("evaluations[0]: action is required"));
    let (status, message) = pep.post(&pep.evaluations, &batch(Some("first_come"))).await;
    assert_eq!(status, 400, "{message}");
}

#[tokio::test]
async fn only_enforcement_points_ask_about_others_and_errors_are_the_specifications() {
    let mut writ = Writ::new(CONFIG, &[("policy.cedar", POLICY)]);
    let (alice, other) = (writ.token("alice"), writ.token("other-service"));
    let pep = Pep::discover_later(&mut writ).await;
    let url = pep.evaluation.clone();
    let post = |token: Option<String>, body: String, content_type: &'static str| {
        let mut request = writ
            .http
            .post(&url)
            .header("content-type", content_type)
            .header("x-request-id", "pep-req-7")
            .body(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        async move {
            let response = request.send().await.expect("call");
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let text = response.text().await.unwrap_or_default();
            (status, headers, text)
        }
    };
    let body = question("alice", ORDERS, "refund").to_string();

    // No credentials: 401 with a challenge and a message string; the request id echoed.
    let (status, headers, text) = post(None, body.clone(), "application/json").await;
    assert_eq!(status, 401, "{text}");
    assert!(headers.contains_key("www-authenticate"));
    assert_eq!(headers["x-request-id"], "pep-req-7");
    assert!(
        headers["content-type"]
            .to_str()
            .is_ok_and(|t| t.starts_with("text/plain")),
        "{headers:?}"
    );
    assert!(text.contains("Authorization"), "{text}");
    let (status, _, _) = post(
        Some("writ_not-a-token".into()),
        body.clone(),
        "application/json",
    )
    .await;
    assert_eq!(status, 401);

    // Anyone may ask about themselves; only [authzen].clients (and auditors) about others.
    let (status, _, text) = post(Some(alice.clone()), body.clone(), "application/json").await;
    assert_eq!(status, 200, "{text}");
    let about_bob = question("bob", ORDERS, "refund").to_string();
    let (status, _, text) = post(Some(alice.clone()), about_bob.clone(), "application/json").await;
    assert_eq!(status, 403, "{text}");
    assert!(text.contains("[authzen].clients"), "{text}");
    let (status, _, _) = post(Some(other.clone()), about_bob.clone(), "application/json").await;
    assert_eq!(status, 403, "a service not listed is not a PEP");
    let (status, _, _) = post(Some(writ.admin_token()), about_bob, "application/json").await;
    assert_eq!(status, 200, "admins read everything");
    // In a batch, a refused item is denied with its error; the others are answered.
    let (status, batch) = writ
        .post(
            "/access/v1/evaluations",
            &alice,
            json!({ "action": { "name": "refund" }, "resource": { "type": "api", "id": "orders" }, "evaluations": [
                { "subject": { "type": "user", "id": "alice" } },
                { "subject": { "type": "user", "id": "bob" } },
            ] }),
        )
        .await;
    assert_eq!(status, 200, "{batch}");
    assert_eq!(batch["evaluations"][0]["decision"], false);
    assert_eq!(
        batch["evaluations"][0]["context"]["reason"],
        "no_active_lease"
    );
    assert_eq!(batch["evaluations"][1]["decision"], false);
    assert_eq!(
        batch["evaluations"][1]["context"]["error"]["status"], 403,
        "{batch}"
    );

    // Malformed: 400 naming what is wrong; not JSON: 415.
    let token = Some(pep.token.clone());
    for (body, expected) in [
        (json!({ "resource": { "type": "api", "id": "orders" }, "action": { "name": "refund" } }).to_string(), "subject is required"),
        (json!({ "subject": { "type": "user" }, "resource": { "type": "api", "id": "orders" }, "action": { "name": "refund" } }).to_string(), "subject.id is required"),
        (json!({ "subject": { "type": "user", "id": 7 }, "resource": { "type": "api", "id": "orders" }, "action": { "name": "refund" } }).to_string(), "subject.id must be a string"),
        (json!({ "subject": { "type": "user", "id": "alice" }, "resource": { "type": "api", "id": "orders" }, "action": "refund" }).to_string(), "action must be an object"),
        ("[1, 2]".to_string(), "the body must be a JSON object"),
        ("{\"subject\":".to_string(), "the body is not valid JSON"),
    ] {
        let (status, _, text) = post(token.clone(), body.clone(), "application/json").await;
        assert_eq!(status, 400, "{body}: {text}");
        assert!(text.starts_with(expected), "{body}: {text}");
    }
    let (status, _, _) = post(token, body, "text/plain").await;
    assert_eq!(status, 415);
}

/// Two entitlements whose leases end after a number of allowed evaluations: a deploy
/// allowed twice, and a break-glass style action allowed once.
const COUNTED: &str = r#"
[[entitlement]]
id = "api/deploy_twice"
target = "api"
role = "deploy"
sensitivity = "high"
max_duration = "1h"
authzen = { resource_type = "deploy", resource_id = "prod", actions = ["run"], max_uses = 2 }

[[entitlement]]
id = "api/wipe_once"
target = "api"
role = "wipe"
sensitivity = "critical"
max_duration = "1h"
authzen = { resource_type = "cache", resource_id = "prod", actions = ["wipe"], max_uses = 1 }
"#;

#[tokio::test]
async fn a_counted_lease_allows_its_uses_then_ends_even_under_concurrent_asks() {
    let mut writ = Writ::new(&format!("{CONFIG}{COUNTED}"), &[("policy.cedar", POLICY)]);
    let (alice, bob) = (writ.token("alice"), writ.token("bob"));
    let pep = Pep::discover_later(&mut writ).await;
    let grant = approved_lease(&writ, (&alice, &bob), "api/deploy_twice", 600).await;

    // An auditor asking only looks: no use is counted.
    let auditor = Pep::discover(&writ, writ.admin_token()).await;
    for _ in 0..3 {
        let looked = auditor.decide("alice", ("deploy", "prod"), "run").await;
        assert_eq!(looked["decision"], true, "{looked}");
        assert_eq!(looked["context"]["grant"]["uses_left"], 2, "{looked}");
    }

    // Each allow the enforcement point gets is a use, and says how many are left; the
    // third ask is denied.
    for left in [1, 0] {
        let allowed = pep.decide("alice", ("deploy", "prod"), "run").await;
        assert_eq!(allowed["decision"], true, "{allowed}");
        assert_eq!(allowed["context"]["grant"]["uses_left"], left, "{allowed}");
    }
    let used_up = pep.decide("alice", ("deploy", "prod"), "run").await;
    assert_eq!(
        (&used_up["decision"], &used_up["context"]["reason"]),
        (&json!(false), &json!("no_active_lease")),
        "{used_up}"
    );
    // The last use ended the lease, and said why.
    let ended = writ
        .wait_for_grant_state(grant, &alice, Duration::from_secs(5), GrantState::Revoked)
        .await;
    assert_eq!(
        ended.grant.revoke_reason.as_ref().map(|r| r.as_str()),
        Some("used_up")
    );

    // Every use is on the ledger, by the enforcement point that asked, before the
    // revocation; and the ledger verifies.
    let (_, audit) = writ.get("/v1/audit?limit=500", &writ.admin_token()).await;
    let events = audit["events"].as_array().cloned().unwrap_or_default();
    let uses: Vec<(i64, String)> = events
        .iter()
        .filter(|e| e["kind"] == "grant.used" && e["data"]["grant"]["id"] == grant.to_string())
        .map(|e| {
            (
                e["data"]["use"].as_i64().unwrap_or_default(),
                e["actor"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert_eq!(uses, [(1, "gateway".into()), (2, "gateway".into())]);
    let verify = writ.run(&["audit", "verify"]);
    assert!(verify.status.success(), "{}", support::stderr(&verify));

    // A single-use lease asked about sixteen times at once allows exactly once.
    approved_lease(&writ, (&alice, &bob), "api/wipe_once", 600).await;
    let mut asks = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let pep = pep.clone();
        asks.spawn(async move { pep.decide("alice", ("cache", "prod"), "wipe").await });
    }
    let answers: Vec<Value> = asks.join_all().await;
    let allowed = answers.iter().filter(|a| a["decision"] == true).count();
    assert_eq!(allowed, 1, "{answers:?}");
}

//! The AuthZEN Access Request and Approval Profile, end to end, as a PEP written from
//! the profile walks it: a requestable denial → an access request bound to it → a task
//! → approval by someone else → a fresh evaluation allows, naming the lease → the lease
//! ends → denied (and requestable) again. And every way around it: a forged, altered,
//! stale or replayed binding, a submission for someone else or by someone else, the
//! requester approving, a reused Idempotency-Key with another body.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::Writ;
use support::authzen::{CONFIG, ORDERS, POLICY, question};

/// A PEP of the profile: evaluates as the `gateway` client, and submits and polls with
/// the subject's own token (which the gateway holds for the person it serves).
struct Pep {
    http: reqwest::Client,
    client_token: String,
    evaluation: String,
    requests: String,
    jwks: String,
}

/// An HTTP answer: status, content type, Location and JSON body.
struct Answer {
    status: u16,
    content_type: String,
    location: Option<String>,
    body: Value,
}

impl Pep {
    async fn discover(writ: &Writ, client_token: String) -> Self {
        let metadata = support::authzen::metadata(writ).await;
        assert_eq!(
            metadata["capabilities"],
            json!(["urn:openid:authzen:capability:access-request"]),
            "{metadata}"
        );
        let endpoint = |name: &str| {
            metadata[name]
                .as_str()
                .unwrap_or_else(|| panic!("{name} in {metadata}"))
                .to_string()
        };
        Self {
            http: writ.http.clone(),
            client_token,
            evaluation: endpoint("access_evaluation_endpoint"),
            requests: endpoint("access_request_endpoint"),
            jwks: endpoint("jwks_uri"),
        }
    }

    async fn send(request: reqwest::RequestBuilder) -> Answer {
        let response = request.send().await.expect("call");
        let status = response.status().as_u16();
        let header = |name: reqwest::header::HeaderName| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let content_type = header(reqwest::header::CONTENT_TYPE).unwrap_or_default();
        let location = header(reqwest::header::LOCATION);
        let text = response.text().await.unwrap_or_default();
        Answer {
            status,
            content_type,
            location,
            body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
        }
    }

    async fn evaluate(&self, body: &Value) -> Value {
        let answer = Self::send(
            self.http
                .post(&self.evaluation)
                .bearer_auth(&self.client_token)
                .json(body),
        )
        .await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        answer.body
    }

    async fn submit(&self, token: &str, key: Option<&str>, body: &Value) -> Answer {
        let mut request = self.http.post(&self.requests).bearer_auth(token).json(body);
        if let Some(key) = key {
            request = request.header("idempotency-key", format!("\"{key}\""));
        }
        Self::send(request).await
    }

    async fn poll(&self, token: &str, status_endpoint: &str) -> Answer {
        Self::send(self.http.get(status_endpoint).bearer_auth(token)).await
    }
}

/// The submission a PEP builds from a requestable denial of `asked`, as the profile
/// says: the same subject, resource and action, the denial's binding echoed unchanged.
fn submission(asked: &Value, denial: &Value, justification: &str, until: Option<&str>) -> Value {
    let context = &denial["context"];
    let access_request = &context["access_request"];
    let mut body = json!({
        "subject": asked["subject"],
        "resource": asked["resource"],
        "action": asked["action"],
        "context": { "business_justification": justification },
        "denial": {
            "evaluation_id": context["evaluation_id"],
            "evaluated_at": context["evaluated_at"],
            "expires_at": access_request["expires_at"],
            "reason": context["reason"],
            "binding_token": access_request["binding_token"],
            "template": access_request["template"],
        },
        "client": { "id": "gateway", "name": "the API gateway" },
    });
    if let Some(until) = until {
        body["requested_access"] = json!({ "requested_until": until });
    }
    body
}

fn problem(answer: &Answer, status: u16, error: &str) {
    assert_eq!(answer.status, status, "{}", answer.body);
    assert!(
        answer.content_type.starts_with("application/problem+json"),
        "{}",
        answer.content_type
    );
    assert_eq!(
        answer.body["type"],
        format!("urn:openid:authzen:access-request:error:{error}"),
        "{}",
        answer.body
    );
    assert_eq!(answer.body["status"], status);
}

/// An RFC 3339 time `seconds` from now.
fn in_seconds(seconds: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or_default();
    writ_domain::Timestamp::from_unix_micros(now)
        .plus_seconds(seconds)
        .to_rfc3339()
}

async fn started(window: Option<&str>) -> (Writ, Pep) {
    started_with(window, "").await
}

/// As `started`, with more configuration (a `[[notify]]` sink, say).
async fn started_with(window: Option<&str>, more: &str) -> (Writ, Pep) {
    let config = match window {
        Some(window) => CONFIG.replace(
            "[authzen]\n",
            &format!("[authzen]\nrequest_window = \"{window}\"\n"),
        ),
        None => CONFIG.to_string(),
    } + more;
    let mut writ = Writ::new(&config, &[("policy.cedar", POLICY)]);
    let client = writ.token("gateway");
    writ.start().await;
    let pep = Pep::discover(&writ, client).await;
    (writ, pep)
}

#[tokio::test]
async fn deny_request_approve_allow_expire_deny() {
    // The deployment subscribes to request events: the profile's completion
    // notification through a deployment-level subscription (a signed CloudEvent).
    let (sink, sink_url) = support::sink::Sink::start().await;
    let (writ, pep) = started_with(
        None,
        &format!(
            "\n[[notify]]\nname = \"pep-events\"\nurl = \"{sink_url}\"\nsecret = \"a-shared-secret-of-16+\"\nevents = [\"request.*\"]\n"
        ),
    )
    .await;
    let (alice, bob) = (writ.token("alice"), writ.token("bob"));
    let asked = question("alice", ORDERS, "refund");

    // A requestable denial: still a denial, with what the PEP needs to ask.
    let denied = pep.evaluate(&asked).await;
    assert_eq!(denied["decision"], false, "{denied}");
    let access_request = &denied["context"]["access_request"];
    assert_eq!(access_request["endpoint"], json!(pep.requests), "{denied}");
    assert_eq!(access_request["template"], "api/orders_refund");
    assert!(denied["context"]["evaluation_id"].is_string(), "{denied}");
    // Its binding token is a JWS that verifies with the key at jwks_uri.
    let jwks: jsonwebtoken::jwk::JwkSet = pep
        .http
        .get(&pep.jwks)
        .send()
        .await
        .expect("jwks")
        .json()
        .await
        .expect("a JWK Set");
    let token = access_request["binding_token"].as_str().expect("a token");
    let kid = jsonwebtoken::decode_header(token)
        .expect("a JWS header")
        .kid
        .expect("a kid");
    let jwk = jwks.find(&kid).expect("the token's key is published");
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.set_audience(&[pep.requests.as_str()]);
    let claims = jsonwebtoken::decode::<Value>(
        token,
        &jsonwebtoken::DecodingKey::from_jwk(jwk).expect("an EdDSA key"),
        &validation,
    )
    .expect("the binding token verifies")
    .claims;
    assert_eq!(claims["subject"]["id"], "alice", "{claims}");
    assert_eq!(
        claims["denial_expires_at"], access_request["expires_at"],
        "{claims}"
    );
    // Bob may not ask for this access (policy lets only engineers): not requestable.
    let not_requestable = pep.evaluate(&question("bob", ORDERS, "refund")).await;
    assert!(
        not_requestable["context"].get("access_request").is_none(),
        "{not_requestable}"
    );

    // Submitted with the subject's own token: a writ request, waiting for approval.
    let body = submission(
        &asked,
        &denied,
        "refund run for ticket 12",
        Some(&in_seconds(5)),
    );
    let submitted = pep.submit(&alice, Some("k-1"), &body).await;
    assert_eq!(submitted.status, 202, "{}", submitted.body);
    let task = &submitted.body["task"];
    assert_eq!(task["status"], "pending", "{task}");
    let status_endpoint = task["status_endpoint"].as_str().expect("status_endpoint");
    assert_eq!(submitted.location.as_deref(), Some(status_endpoint));
    assert!(task["links"]["cancel"].is_string(), "{task}");
    assert!(submitted.body.get("result").is_none());
    // A retry under the same key is the same task; another body under it is refused;
    // the same denial again without the key is a replay.
    let retried = pep.submit(&alice, Some("k-1"), &body).await;
    assert_eq!(
        (retried.status, &retried.body["task"]["id"]),
        (202, &task["id"]),
        "{}",
        retried.body
    );
    let other_body = submission(&asked, &denied, "something else", None);
    problem(
        &pep.submit(&alice, Some("k-1"), &other_body).await,
        409,
        "duplicate_request",
    );
    problem(
        &pep.submit(&alice, None, &body).await,
        400,
        "invalid_denial_binding",
    );

    // Still denied while it waits: approval is what makes a lease, not the request.
    assert_eq!(pep.evaluate(&asked).await["decision"], false);
    let polled = pep.poll(&alice, status_endpoint).await;
    assert_eq!(polled.body["task"]["status"], "pending", "{}", polled.body);
    // Someone who may not read the request does not learn the task exists.
    let stranger = pep
        .poll(&writ.token("other-service"), status_endpoint)
        .await;
    problem(&stranger, 404, "unknown_task");

    // It is an ordinary writ request: alice may not approve it, bob may.
    let (_, requests) = writ.get("/v1/requests", &alice).await;
    let request = requests["requests"][0].clone();
    assert_eq!(request["authzen"]["task"], task["id"], "{request}");
    assert_eq!(
        request["authzen"]["evaluation_id"],
        denied["context"]["evaluation_id"]
    );
    let approve = format!(
        "/v1/requests/{}/approve",
        request["id"].as_str().unwrap_or_default()
    );
    let (status, refused) = writ
        .post(&approve, &alice, json!({"comment": "mine"}))
        .await;
    assert_eq!(status, 403, "{refused}");
    assert_eq!(refused["error"]["code"], "self_approval");
    let (status, approved) = writ.post(&approve, &bob, json!({"comment": "ok"})).await;
    assert_eq!(status, 200, "{approved}");

    // The subscription is told the task is done, naming its handle.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let notified = loop {
        let found = sink.events().into_iter().find(|event| {
            event["type"]
                .as_str()
                .is_some_and(|t| t == "dev.writ.request.approved.v1")
                && event["data"]["data"]["request"]["authzen"]["task"] == task["id"]
        });
        if found.is_some() || std::time::Instant::now() > deadline {
            break found;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        notified.is_some(),
        "no request.approved naming task {} in {:?}",
        task["id"],
        sink.types()
    );

    // Approved: the result says re-evaluate, until the lease's end.
    let done = pep.poll(&alice, status_endpoint).await;
    assert_eq!(done.body["task"]["status"], "approved", "{}", done.body);
    let result = &done.body["result"];
    assert_eq!(result["mode"], "reevaluate", "{result}");
    let (_, grant) = writ
        .get(
            &format!(
                "/v1/grants/{}",
                approved["grant_id"].as_str().unwrap_or_default()
            ),
            &alice,
        )
        .await;
    assert_eq!(result["approval"]["approved_until"], grant["expires_at"]);
    assert_eq!(result["approval"]["id"], grant["id"]);

    // The PEP evaluates again with the approval: allowed, naming the lease.
    let mut again = asked.clone();
    again["context"]["approval"] = result["approval"].clone();
    let allowed = pep.evaluate(&again).await;
    assert_eq!(allowed["decision"], true, "{allowed}");
    assert_eq!(allowed["context"]["grant"]["id"], grant["id"]);
    // The same approval does not allow another action or another subject.
    let mut other_action = again.clone();
    other_action["action"]["name"] = json!("delete");
    assert_eq!(pep.evaluate(&other_action).await["decision"], false);

    // The lease ends: denied again, and the PEP is told it may ask anew.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let after = loop {
        let decision = pep.evaluate(&again).await;
        if decision["decision"] == false || std::time::Instant::now() > deadline {
            break decision;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(after["decision"], false, "{after}");
    assert_eq!(after["context"]["next_action"], "request", "{after}");
    assert!(after["context"]["access_request"]["binding_token"].is_string());
}

#[tokio::test]
async fn forged_altered_stale_and_borrowed_bindings_are_refused() {
    let (writ, pep) = started(Some("1s")).await;
    let (alice, bob) = (writ.token("alice"), writ.token("bob"));
    let asked = question("alice", ORDERS, "refund");
    let denied = pep.evaluate(&asked).await;
    let body = submission(&asked, &denied, "refunds", None);

    // A signature changed by one character.
    let mut forged = body.clone();
    let token = body["denial"]["binding_token"].as_str().unwrap_or_default();
    let (head, signature) = token.rsplit_once('.').unwrap_or_default();
    let flipped = if signature.starts_with('A') { 'B' } else { 'A' };
    forged["denial"]["binding_token"] = json!(format!("{head}.{flipped}{}", &signature[1..]));
    problem(
        &pep.submit(&alice, None, &forged).await,
        400,
        "invalid_denial_binding",
    );
    // No binding at all; a made-up one.
    let mut unbound = body.clone();
    unbound["denial"] =
        json!({ "expires_at": body["denial"]["expires_at"], "evaluation_id": "eval_guess" });
    problem(
        &pep.submit(&alice, None, &unbound).await,
        400,
        "invalid_denial_binding",
    );
    // Another subject, resource or action than the denial's; another deadline.
    for (pointer, value) in [
        ("/subject/id", json!("bob")),
        ("/resource/id", json!("payments")),
        ("/action/name", json!("read")),
        ("/denial/expires_at", json!("2099-01-01T00:00:00Z")),
        ("/denial/evaluation_id", json!("eval_another")),
    ] {
        let mut altered = body.clone();
        if let Some(slot) = altered.pointer_mut(pointer) {
            *slot = value;
        }
        problem(
            &pep.submit(&alice, None, &altered).await,
            400,
            "invalid_denial_binding",
        );
    }
    // Someone else submitting alice's denial: writ's own rule, you ask for yourself.
    let borrowed = pep.submit(&bob, None, &body).await;
    assert_eq!(borrowed.status, 403, "{}", borrowed.body);
    assert_eq!(
        borrowed.body["code"], "not_subject_owner",
        "{}",
        borrowed.body
    );
    // Without a justification: writ's request needs one.
    let mut silent = body.clone();
    silent["context"] = json!({});
    let refused = pep.submit(&alice, None, &silent).await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert_eq!(refused.body["code"], "missing_justification");
    // A bundle is not taken.
    let mut bundle = body.clone();
    bundle["items"] = json!([{ "resource": asked["resource"], "action": asked["action"] }]);
    problem(
        &pep.submit(&alice, None, &bundle).await,
        400,
        "not_requestable",
    );
    // Nothing above made a request.
    let (_, requests) = writ.get("/v1/requests", &writ.admin_token()).await;
    assert_eq!(requests["requests"], json!([]), "{requests}");

    // Past the window (1s, and a second of skew), the genuine submission is stale.
    tokio::time::sleep(Duration::from_millis(3_200)).await;
    problem(
        &pep.submit(&alice, None, &body).await,
        410,
        "expired_denial",
    );
}

#[tokio::test]
async fn a_waiting_task_is_cancelled_by_its_requester_once() {
    let (writ, pep) = started(None).await;
    let (alice, bob) = (writ.token("alice"), writ.token("bob"));
    let asked = question("alice", ORDERS, "refund");
    let denied = pep.evaluate(&asked).await;
    let submitted = pep
        .submit(&alice, None, &submission(&asked, &denied, "refunds", None))
        .await;
    assert_eq!(submitted.status, 202, "{}", submitted.body);
    let cancel = submitted.body["task"]["links"]["cancel"]
        .as_str()
        .expect("a cancel link")
        .to_string();
    // The approver may read the task, not cancel it.
    let by_bob = Pep::send(pep.http.post(&cancel).bearer_auth(&bob)).await;
    assert_eq!(by_bob.status, 403, "{}", by_bob.body);
    let cancelled = Pep::send(pep.http.delete(&cancel).bearer_auth(&alice)).await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.body);
    assert_eq!(cancelled.body["task"]["status"], "cancelled");
    problem(
        &Pep::send(pep.http.post(&cancel).bearer_auth(&alice)).await,
        409,
        "invalid_task_state",
    );
    // Unknown tasks are unknown.
    let unknown = pep
        .poll(
            &alice,
            &format!("{}/arq_00000000000000000000000000000000", pep.requests),
        )
        .await;
    problem(&unknown, 404, "unknown_task");
}

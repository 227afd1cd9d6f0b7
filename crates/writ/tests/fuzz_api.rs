//! Fuzzing the HTTP API of a running `writ`: bodies, paths and queries of any shape, to
//! every route, as an authenticated caller. Every answer is a success or a 4xx with a
//! JSON error that has a code: never a 5xx, never a dropped connection. Cases:
//! `WRIT_FUZZ_CASES` (default 400; see SECURITY.md).

mod support;

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Value, json};
use support::Writ;

const CONFIG: &str = r#"
[[target]]
name = "t"
kind = "noop"

[[entitlement]]
id = "t/read"
target = "t"
role = "read"
sensitivity = "low"
max_duration = "1h"

[[user]]
name = "alice"
groups = ["engineers"]
"#;

const POLICY: &str =
    r#"permit (principal in Group::"engineers", action == Action::"request", resource);"#;

fn cases() -> u32 {
    std::env::var("WRIT_FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .map_or(400, |n: u32| n / 5)
        .max(50)
}

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,30}".prop_map(Value::String),
        "\\PC{0,600}".prop_map(Value::String),
    ];
    leaf.prop_recursive(2, 16, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,15}", inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A request body close to a real one, each field anything.
fn near_request() -> impl Strategy<Value = Value> {
    let field = prop_oneof![any_json(), Just(json!("t/read")), Just(json!("alice"))];
    (
        field.clone(),
        field.clone(),
        field.clone(),
        field.clone(),
        field,
        any::<bool>(),
    )
        .prop_map(
            |(entitlement, subject, duration, justification, ticket, drop)| {
                let mut body = json!({ "entitlement": entitlement, "subject": subject,
                "duration_seconds": duration, "justification": justification, "ticket": ticket });
                if drop {
                    body.as_object_mut().map(|o| o.remove("subject"));
                }
                body
            },
        )
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..256),
        any_json().prop_map(|v| v.to_string().into_bytes()),
        near_request().prop_map(|v| v.to_string().into_bytes()),
    ]
}

fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9a-f-]{0,40}",
        "[a-zA-Z0-9%._~-]{0,30}",
        Just("01a23326-b662-704b-8b15-5359b00c1001".to_string()),
    ]
}

fn query() -> impl Strategy<Value = String> {
    prop::collection::vec(
        (
            prop_oneof![
                Just("state"),
                Just("limit"),
                Just("after"),
                Just("subject"),
                Just("requester"),
                Just("approvable_by_me"),
                Just("orphaned"),
                Just("kind"),
                Just("target"),
                Just("identity"),
                Just("x")
            ],
            "[a-zA-Z0-9%_-]{0,12}",
        ),
        0..4,
    )
    .prop_map(|pairs| {
        pairs
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&")
    })
}

#[derive(Debug, Clone)]
struct Call {
    post: bool,
    path: String,
    body: Vec<u8>,
    json_type: bool,
}

fn call() -> impl Strategy<Value = Call> {
    let post_path = prop_oneof![
        Just("/v1/requests".to_string()),
        Just("/v1/reconcile".to_string()),
        Just("/v1/requests/preview".to_string()),
        segment().prop_map(|id| format!("/v1/requests/{id}/approve")),
        segment().prop_map(|id| format!("/v1/requests/{id}/reject")),
        segment().prop_map(|id| format!("/v1/requests/{id}/cancel")),
        segment().prop_map(|id| format!("/v1/grants/{id}/revoke")),
        segment().prop_map(|id| format!("/v1/grants/{id}/credential")),
        segment().prop_map(|id| format!("/v1/grants/{id}/extend")),
        segment().prop_map(|id| format!("/v1/findings/{id}/accept")),
        segment().prop_map(|id| format!("/v1/tokens/{id}/revoke")),
        segment().prop_map(|name| format!("/v1/itsm/{name}/webhook")),
        segment().prop_map(|name| format!("/v1/break-glass/{name}")),
        segment().prop_map(|id| format!("/v1/break-glass/activations/{id}/sign-off")),
        Just("/v1/reviews".to_string()),
        segment().prop_map(|id| format!("/v1/review-items/{id}/decide")),
    ];
    let get_path = prop_oneof![
        query().prop_map(|q| format!("/v1/requests?{q}")),
        query().prop_map(|q| format!("/v1/grants?{q}")),
        query().prop_map(|q| format!("/v1/findings?{q}")),
        query().prop_map(|q| format!("/v1/identities?{q}")),
        query().prop_map(|q| format!("/v1/audit?{q}")),
        query().prop_map(|q| format!("/v1/tokens?{q}")),
        segment().prop_map(|id| format!("/v1/requests/{id}")),
        segment().prop_map(|id| format!("/v1/grants/{id}")),
        segment().prop_map(|id| format!("/v1/findings/{id}")),
        segment().prop_map(|name| format!("/v1/reports/{name}")),
        query().prop_map(|q| format!("/v1/break-glass/activations?{q}")),
        segment().prop_map(|id| format!("/v1/break-glass/activations/{id}")),
        query().prop_map(|q| format!("/v1/reviews?{q}")),
        segment().prop_map(|id| format!("/v1/reviews/{id}")),
        segment().prop_map(|id| format!("/v1/reviews/{id}/items")),
        query().prop_map(|q| format!("/v1/review-items?{q}")),
        segment().prop_map(|id| format!("/v1/review-items/{id}")),
        (segment(), segment()).prop_map(|(t, n)| format!("/v1/entitlements/{t}/{n}")),
    ];
    prop_oneof![
        (post_path, body(), any::<bool>()).prop_map(|(path, body, json_type)| Call {
            post: true,
            path,
            body,
            json_type
        }),
        get_path.prop_map(|path| Call {
            post: false,
            path,
            body: Vec::new(),
            json_type: false
        }),
    ]
}

#[tokio::test]
async fn any_call_gets_an_answer_or_a_precise_refusal_never_a_server_error() {
    let mut writ = Writ::new(CONFIG, &[("policy.cedar", POLICY)]);
    writ.set_server("rate_limit = \"off\"");
    writ.start().await;
    let tokens = [writ.token("alice"), writ.admin_token()];
    let mut runner = TestRunner::new(Config::with_cases(cases()));
    let strategy = call();
    let mut wrong = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for n in 0..cases() {
        let call = strategy.new_tree(&mut runner).expect("a case").current();
        let token = &tokens[n as usize % tokens.len()];
        let mut request = if call.post {
            writ.http
                .post(format!("{}{}", writ.base(), call.path))
                .body(call.body.clone())
        } else {
            writ.http.get(format!("{}{}", writ.base(), call.path))
        };
        if call.json_type {
            request = request.header("content-type", "application/json");
        }
        let response = match request.bearer_auth(token).send().await {
            Ok(response) => response,
            Err(error) => {
                wrong.push(format!("{call:?}: no answer: {error}"));
                continue;
            }
        };
        let status = response.status().as_u16();
        seen.insert(status);
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let text = response.text().await.unwrap_or_default();
        let error_code = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v["error"]["code"].as_str().map(String::from));
        let fine = match status {
            200..=299 => content_type.starts_with("application/json"),
            400..=499 => error_code.is_some() && content_type.starts_with("application/json"),
            _ => false,
        };
        if !fine {
            wrong.push(format!(
                "{} {} ({} bytes) → {status} {content_type}: {}",
                if call.post { "POST" } else { "GET" },
                call.path,
                call.body.len(),
                text.chars().take(300).collect::<String>()
            ));
        }
    }
    let log = writ.log();
    writ.stop();
    assert!(
        wrong.is_empty(),
        "{}\n\nserver log:\n{log}",
        wrong.join("\n")
    );
    // The calls reached the handlers, not only the door.
    for status in [200, 400, 404] {
        assert!(seen.contains(&status), "no {status} among {seen:?}");
    }
    assert!(!log.contains("panicked"), "{log}");
}

/// What the fuzzers found, kept fixed: each answers a JSON error, not plain text.
#[tokio::test]
async fn what_fuzzing_found_stays_fixed() {
    let mut writ = Writ::new(CONFIG, &[("policy.cedar", POLICY)]);
    writ.start().await;
    let alice = writ.token("alice");
    // An id that does not decode to UTF-8.
    let (status, body) = writ.get("/v1/requests/%ff", &alice).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("malformed_request")),
        "{body}"
    );
    // A method a route does not take.
    let (status, body) = writ
        .call(reqwest::Method::DELETE, "/v1/requests", Some(&alice), None)
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (405, Some("method_not_allowed")),
        "{body}"
    );
    // A whole number written as a decimal (schemathesis).
    let (status, body) = writ
        .post(
            "/v1/requests",
            &alice,
            json!({ "entitlement": "t/read", "justification": "j", "duration_seconds": 600.0 }),
        )
        .await;
    assert_eq!(
        (status, body["duration_seconds"].as_i64()),
        (201, Some(600)),
        "{body}"
    );
    writ.stop();
}

//! End to end: ledger events sent as signed CloudEvents to a configured URL, in order,
//! each once, and caught up after the receiver was down.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use support::Writ;
use writ_itsm::notify::{SIGNATURE_HEADER, signature};

const SECRET: &str = "notification-secret-0123";

/// One delivery: content type, signature header, the body parsed, the raw body.
type Delivery = (String, String, Value, Vec<u8>);

#[derive(Clone, Default)]
struct Receiver {
    received: Arc<Mutex<Vec<Delivery>>>,
    down: Arc<Mutex<bool>>,
}

async fn receive(State(receiver): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    if *receiver
        .down
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
    {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    receiver
        .received
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push((
            header("content-type"),
            header(SIGNATURE_HEADER),
            json,
            body.to_vec(),
        ));
    StatusCode::ACCEPTED
}

impl Receiver {
    fn types(&self) -> Vec<String> {
        self.received
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .map(|(_, _, event, _)| event["type"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    async fn wait_for(&self, count: usize) -> Vec<String> {
        for _ in 0..150 {
            if self.types().len() >= count {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.types()
    }
}

#[tokio::test]
async fn lifecycle_events_reach_the_sink_as_signed_cloudevents_in_order_once() {
    let receiver = Receiver::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/events", listener.local_addr().expect("addr"));
    let app = axum::Router::new()
        .route("/events", axum::routing::post(receive))
        .with_state(receiver.clone());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });

    let config = format!(
        r#"
[[target]]
name = "noop"
kind = "noop"

[[entitlement]]
id = "noop/read"
target = "noop"
role = "read"
sensitivity = "low"
max_duration = "8h"

[[user]]
name = "alice"
groups = ["engineers"]

[[notify]]
name = "siem"
url = "{url}"
secret = "{SECRET}"
events = ["request.created", "grant.*"]
"#
    );
    let policy =
        r#"permit (principal in Group::"engineers", action == Action::"request", resource);"#;
    let mut writ = Writ::new(&config, &[("request.cedar", policy)]);
    let alice = writ.token("alice");
    writ.start().await;

    let (status, request) = writ
        .post("/v1/requests", &alice, json!({ "entitlement": "noop/read", "justification": "report", "duration_seconds": 3600 }))
        .await;
    assert_eq!(status, 201, "{request}");
    let grant_id = request["grant_id"].as_str().expect("grant").to_string();
    let types = receiver.wait_for(3).await;
    assert_eq!(
        types,
        [
            "dev.writ.request.created.v1",
            "dev.writ.grant.created.v1",
            "dev.writ.grant.activated.v1"
        ],
        "token.issued happened before the sink existed; filtered kinds are not sent"
    );
    {
        let received = receiver
            .received
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (content_type, signed, event, body) = &received[0];
        assert_eq!(content_type, "application/cloudevents+json");
        assert_eq!(
            signed,
            &signature(SECRET, body),
            "signed over the exact body"
        );
        assert_eq!(event["specversion"], "1.0");
        assert!(
            event["source"]
                .as_str()
                .is_some_and(|s| s.starts_with("urn:writ:")),
            "{event}"
        );
        assert_eq!(
            event["subject"],
            format!("request/{}", request["id"].as_str().unwrap_or_default())
        );
        assert_eq!(event["data"]["data"]["request"]["id"], request["id"]);
        assert!(
            event["id"].as_str().is_some_and(|id| id.len() == 64),
            "the event hash: {event}"
        );
    }

    // The receiver goes down; the lease ends; nothing is lost.
    *receiver
        .down
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = true;
    let (status, grant) = writ
        .post(
            &format!("/v1/grants/{grant_id}/revoke"),
            &alice,
            json!({ "reason": "done" }),
        )
        .await;
    assert_eq!(status, 200, "{grant}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (_, outbox) = writ.get("/v1/itsm/outbox", &writ.admin_token()).await;
    assert_eq!(outbox["sinks"][0]["sink"], "siem", "{outbox}");
    assert!(
        outbox["sinks"][0]["behind"]
            .as_i64()
            .is_some_and(|n| n >= 2),
        "{outbox}"
    );
    assert!(
        outbox["sinks"][0]["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("503")),
        "{outbox}"
    );

    *receiver
        .down
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = false;
    let types = receiver.wait_for(5).await;
    assert_eq!(
        &types[3..],
        [
            "dev.writ.grant.revoke_started.v1",
            "dev.writ.grant.revoked.v1"
        ],
        "{types:?}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.types().len(), 5, "each event once");
    let sequences: Vec<i64> = receiver
        .received
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .iter()
        .filter_map(|(_, _, e, _)| e["sequence"].as_str().and_then(|s| s.parse().ok()))
        .collect();
    assert!(
        sequences.windows(2).all(|w| w[0] < w[1]),
        "in ledger order: {sequences:?}"
    );
    writ.stop();
}

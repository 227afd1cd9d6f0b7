//! What one HTTP client can make writ do is bounded: requests per identity, webhook
//! deliveries per source address (before any work), requests at once, how long a
//! request may take (body included), and how long a client may take to send its
//! request head (slowloris).

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::Writ;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const POLICY: &str = r#"permit (principal, action == Action::"request", resource);"#;

fn writ(server: &str) -> Writ {
    let writ = Writ::new(
        &format!("{}\n[[user]]\nname = \"bob\"\n", support::NOOP_CONFIG),
        &[("p.cedar", POLICY)],
    );
    writ.set_server(server);
    writ
}

/// Reads what the server sends until it closes or `wait` passes; `None` if still open.
async fn read_until_closed(stream: &mut TcpStream, wait: Duration) -> Option<String> {
    let mut received = Vec::new();
    let deadline = Instant::now() + wait;
    let mut buffer = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Some(String::from_utf8_lossy(&received).into_owned()),
            Ok(Ok(n)) => received.extend_from_slice(&buffer[..n]),
            Err(_) => return None,
        }
    }
}

#[tokio::test]
async fn each_identity_has_its_own_request_rate() {
    let mut writ = writ("rate_limit = 2");
    writ.start().await;
    let (alice, bob) = (writ.token("alice"), writ.token("bob"));
    let mut limited = None;
    for _ in 0..20 {
        let response = writ
            .http
            .get(format!("{}/v1/grants", writ.base()))
            .bearer_auth(&alice)
            .send()
            .await
            .expect("answer");
        if response.status() == 429 {
            limited = Some(response);
            break;
        }
    }
    let limited = limited.expect("alice is limited after her burst (4)");
    let retry_after: u64 = limited.headers()["retry-after"]
        .to_str()
        .expect("text")
        .parse()
        .expect("seconds");
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    let body: serde_json::Value = limited.json().await.expect("JSON");
    assert_eq!(body["error"]["code"], "rate_limited");
    // bob is not held back by alice.
    let (status, _) = writ.get("/v1/grants", &bob).await;
    assert_eq!(status, 200);
    // and alice gets through again once she waits.
    tokio::time::sleep(Duration::from_secs(retry_after)).await;
    let (status, _) = writ.get("/v1/grants", &alice).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn webhooks_are_limited_per_source_before_any_work() {
    let mut writ = writ("webhook_rate_limit = 1");
    writ.start().await;
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let response = writ
            .http
            .post(format!("{}/v1/itsm/jira/webhook", writ.base()))
            .body("{}")
            .send()
            .await
            .expect("answer");
        statuses.push(response.status().as_u16());
    }
    // No such ticketing system (404) while within the burst of 2, then refused unread.
    assert_eq!(&statuses[..2], &[404, 404], "{statuses:?}");
    assert!(statuses[2..].iter().all(|s| *s == 429), "{statuses:?}");
}

#[tokio::test]
async fn a_client_that_never_finishes_its_request_head_is_cut_off() {
    let mut writ = writ("header_read_timeout = \"1s\"");
    writ.start().await;
    let mut stream = TcpStream::connect(("127.0.0.1", writ.port))
        .await
        .expect("connect");
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: writ\r\nX-Slow: ")
        .await
        .expect("send part of a head");
    let closed = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    assert!(closed.is_some(), "the connection was still open after 5 s");
}

#[tokio::test]
async fn a_slow_body_times_out_and_requests_beyond_the_limit_are_refused_at_once() {
    let mut writ = writ("request_timeout = \"2s\"\nconcurrency_limit = 1");
    writ.start().await;
    let alice = writ.token("alice");
    let mut slow = TcpStream::connect(("127.0.0.1", writ.port))
        .await
        .expect("connect");
    let head = format!(
        "POST /v1/requests HTTP/1.1\r\nHost: writ\r\nAuthorization: Bearer {alice}\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{{\"entitlement\""
    );
    slow.write_all(head.as_bytes())
        .await
        .expect("send a head and part of a body");
    tokio::time::sleep(Duration::from_millis(300)).await;

    // The one slot is taken: another request is refused at once, not queued.
    let started = Instant::now();
    let response = writ
        .http
        .post(format!("{}/v1/requests", writ.base()))
        .bearer_auth(&alice)
        .json(&json!({"entitlement": "t/read", "justification": "j"}))
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );

    // The slow one ends with 408 at its deadline.
    let answer = read_until_closed(&mut slow, Duration::from_secs(5))
        .await
        .unwrap_or_default();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
}

/// One answer of the audit log is bounded in bytes, not only in events.
#[tokio::test]
async fn an_audit_page_is_bounded_in_bytes() {
    let mut writ = writ("rate_limit = \"off\"");
    writ.start().await;
    let alice = writ.token("alice");
    let admin = writ.admin_token();
    let justification = "j".repeat(4000);
    for _ in 0..300 {
        let (status, _) = writ
            .post(
                "/v1/requests",
                &alice,
                json!({"entitlement": "t/read", "justification": justification, "duration_seconds": 600}),
            )
            .await;
        assert_eq!(status, 201);
    }
    let response = writ
        .http
        .get(format!("{}/v1/audit?limit=1000", writ.base()))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("answer");
    let text = response.text().await.expect("text");
    let events: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    let count = events["events"].as_array().map_or(0, Vec::len);
    assert!(
        text.len() <= 1024 * 1024 + 64 * 1024,
        "{} bytes",
        text.len()
    );
    assert!(
        count > 10 && count < 800,
        "{count} events in {} bytes",
        text.len()
    );
    // The rest follows from the last one.
    let last = events["events"][count - 1]["seq"].as_i64().expect("seq");
    let (status, next) = writ
        .get(&format!("/v1/audit?after={last}&limit=1000"), &admin)
        .await;
    assert_eq!(status, 200);
    assert!(
        next["events"].as_array().is_some_and(|e| !e.is_empty()),
        "{count} events, {} bytes, then {next}",
        text.len()
    );
}

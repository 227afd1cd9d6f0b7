//! Rejected webhook deliveries on the ledger, bounded: the first of an interval at once,
//! the rest counted and recorded together once the interval has passed, even when no
//! other rejection comes to carry them.

mod harness;

use std::collections::HashMap;

use harness::{Harness, Storage};
use writ_domain::ledger::EventKind;
use writ_engine::ErrorCode;

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

[[itsm]]
name = "jira"
kind = "jira"
url = "http://127.0.0.1:9"
user = "writ@example.com"
password = "token"
webhook_secret = "0123456789abcdef0123"
request_states = ["Approved"]
fields = { entitlement = "customfield_10050" }
"#;

async fn rejection_events(h: &Harness) -> Vec<serde_json::Value> {
    h.store
        .events(0, 1000)
        .await
        .expect("events")
        .into_iter()
        .map(|e| e.to_event().expect("event data is JSON"))
        .filter(|e| e.kind == EventKind::ItsmWebhookRejected)
        .map(|e| e.data)
        .collect()
}

#[tokio::test]
async fn rejections_within_the_interval_are_recorded_once_it_has_passed() {
    let h = Harness::with(Storage::Sqlite, CONFIG, "").await;
    let unsigned = HashMap::new();
    for _ in 0..3 {
        let error = h
            .engine
            .take_webhook("jira", &unsigned, b"{}")
            .await
            .expect_err("unsigned");
        assert_eq!(error.code, ErrorCode::BadWebhook);
    }
    let recorded = rejection_events(&h).await;
    assert_eq!(recorded.len(), 1, "only the first at once: {recorded:?}");
    assert_eq!(recorded[0]["rejected"], 1);

    // Within the interval, nothing more is written.
    h.clock.advance_seconds(30);
    h.engine.flush_rejected_deliveries().await;
    assert_eq!(rejection_events(&h).await.len(), 1);

    // Once it has passed, the two held back are recorded, with when they began.
    h.clock.advance_seconds(31);
    h.engine.flush_rejected_deliveries().await;
    let recorded = rejection_events(&h).await;
    assert_eq!(recorded.len(), 2, "{recorded:?}");
    assert_eq!(recorded[1]["rejected"], 2, "{recorded:?}");
    assert!(recorded[1]["since"].is_string(), "{recorded:?}");
    // And nothing is recorded twice.
    h.clock.advance_seconds(120);
    h.engine.flush_rejected_deliveries().await;
    assert_eq!(rejection_events(&h).await.len(), 2);
    h.finish().await;
}

//! Fuzzing what an outsider sends: webhook deliveries of any shape, signed or not. Each
//! is refused or taken, never a panic, and only a correct signature over the exact body
//! is taken. Cases: `WRIT_FUZZ_CASES` (default 2,000 per property; see SECURITY.md).

use std::collections::HashMap;

use proptest::prelude::*;
use writ_config::ItsmKind;
use writ_domain::Timestamp;
use writ_itsm::webhook::{
    JIRA_DELIVERY, JIRA_SIGNATURE, SERVICENOW_SIGNATURE, SERVICENOW_TIMESTAMP, sign, verify,
};

const SECRET: &str = "fuzz-secret";
const MAX_AGE_SECONDS: i64 = 2400;
const NOW_MS: i64 = 1_800_000_000_000;

fn cases() -> u32 {
    std::env::var("WRIT_FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2_000)
}

fn kind() -> impl Strategy<Value = ItsmKind> {
    prop_oneof![Just(ItsmKind::Jira), Just(ItsmKind::ServiceNow)]
}

/// Header values as a sender might write them: anything, or near-correct shapes.
fn header_value() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,80}",
        "sha256=[0-9a-f]{0,70}",
        "[A-Za-z0-9+/=]{0,60}",
        any::<i64>().prop_map(|n| n.to_string()),
    ]
}

fn headers() -> impl Strategy<Value = HashMap<String, String>> {
    let name = prop_oneof![
        Just(JIRA_SIGNATURE.to_string()),
        Just(JIRA_DELIVERY.to_string()),
        Just(SERVICENOW_SIGNATURE.to_string()),
        Just(SERVICENOW_TIMESTAMP.to_string()),
        "[a-z-]{1,20}",
    ];
    prop::collection::hash_map(name, header_value(), 0..6)
}

/// Bodies: bytes, JSON of any shape, and deliveries that look right but for one field.
fn body() -> impl Strategy<Value = Vec<u8>> {
    let number = prop_oneof![
        any::<i64>(),
        Just(i64::MIN),
        Just(i64::MAX),
        (NOW_MS - 10_000_000..NOW_MS + 10_000_000)
    ];
    let text = prop_oneof![".{0,40}", "[A-Z]{2,5}-[0-9]{1,6}", Just(String::new())];
    let jira = (number.clone(), text.clone(), text.clone()).prop_map(|(timestamp, key, event)| {
        serde_json::json!({ "timestamp": timestamp, "webhookEvent": event, "issue": { "key": key } })
            .to_string()
            .into_bytes()
    });
    let servicenow = (text.clone(), text.clone(), text).prop_map(|(number, sys_id, count)| {
        serde_json::json!({ "number": number, "sys_id": sys_id, "sys_mod_count": count, "operation": "update" })
            .to_string()
            .into_bytes()
    });
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..512),
        ".{0,200}".prop_map(String::into_bytes),
        jira,
        servicenow,
    ]
}

fn now() -> Timestamp {
    Timestamp::from_unix_micros(NOW_MS * 1000)
}

/// A correctly signed delivery of `body`, sent at `sent_ms`.
fn signed(kind: ItsmKind, body: &[u8], sent_ms: i64) -> HashMap<String, String> {
    let mut headers = HashMap::new();
    match kind {
        ItsmKind::Jira => {
            headers.insert(
                JIRA_SIGNATURE.to_string(),
                sign(kind, SECRET, body, sent_ms),
            );
        }
        ItsmKind::ServiceNow => {
            headers.insert(
                SERVICENOW_SIGNATURE.to_string(),
                sign(kind, SECRET, body, sent_ms),
            );
            headers.insert(SERVICENOW_TIMESTAMP.to_string(), sent_ms.to_string());
        }
    }
    headers
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn unsigned_or_forged_deliveries_are_refused(kind in kind(), headers in headers(), body in body()) {
        // Without the secret, nothing an outsider writes is taken.
        prop_assert!(verify(kind, SECRET, MAX_AGE_SECONDS, &headers, &body, now()).is_err());
    }

    #[test]
    fn signed_deliveries_of_any_shape_are_taken_or_refused(
        kind in kind(),
        body in body(),
        sent_ms in prop_oneof![any::<i64>(), Just(i64::MIN), Just(i64::MAX), (NOW_MS - 5_000_000..NOW_MS + 5_000_000)],
    ) {
        let headers = signed(kind, &body, sent_ms);
        if let Ok(delivery) = verify(kind, SECRET, MAX_AGE_SECONDS, &headers, &body, now()) {
            let json: serde_json::Value = serde_json::from_slice(&body).expect("only JSON is taken");
            let key = match kind {
                ItsmKind::Jira => &json["issue"]["key"],
                ItsmKind::ServiceNow => &json["number"],
            };
            prop_assert_eq!(key.as_str(), Some(delivery.ticket_key.as_str()));
        }
    }

    #[test]
    fn a_signature_covers_exactly_its_body(kind in kind(), body in body(), other in body()) {
        prop_assume!(body != other);
        let headers = signed(kind, &body, NOW_MS);
        prop_assert!(verify(kind, SECRET, MAX_AGE_SECONDS, &headers, &other, now()).is_err());
        prop_assert!(verify(kind, "another-secret", MAX_AGE_SECONDS, &headers, &body, now()).is_err());
    }
}

//! Fuzzing the ledger's decoder and replay: events of any kind carrying any data,
//! correctly hashed so that only the replay can object. Each chain verifies or fails at
//! an event, never a panic. Cases: `WRIT_FUZZ_CASES` (default 1,000; see SECURITY.md).

use proptest::prelude::*;
use serde_json::{Value, json};
use writ_domain::Timestamp;
use writ_domain::ledger::{Actor, ChainVerifier, EventKind, GENESIS_HASH, StoredEvent, seal};

fn cases() -> u32 {
    std::env::var("WRIT_FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000)
}

/// JSON of any shape, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        ".{0,20}".prop_map(Value::String),
        Just(json!("2026-12-01T00:00:00Z")),
        Just(json!("01a23326-b662-704b-8b15-5359b00c1001")),
    ];
    leaf.prop_recursive(3, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("id".to_string()),
                    Just("state".to_string()),
                    Just("requester".to_string()),
                    Just("subject".to_string()),
                    "[a-z_]{1,12}"
                ],
                inner,
                0..6
            )
            .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

/// An event's data: what writ writes (a record under `request`, `grant`, `finding`, or
/// token fields), with anything in it.
fn data() -> impl Strategy<Value = Value> {
    prop_oneof![
        any_json(),
        any_json().prop_map(|v| json!({ "request": v })),
        any_json().prop_map(|v| json!({ "grant": v })),
        any_json().prop_map(|v| json!({ "finding": v })),
        (any_json(), any_json(), any_json()).prop_map(
            |(id, who, until)| json!({ "token_id": id, "identity": who, "expires_at": until })
        ),
    ]
}

fn fuzz_actor() -> Actor {
    "fuzz".parse().expect("an identity name")
}

fn kind() -> impl Strategy<Value = EventKind> {
    (0..EventKind::ALL.len()).prop_map(|i| EventKind::ALL[i])
}

fn chain(events: &[(EventKind, Value)]) -> Vec<StoredEvent> {
    let mut chain: Vec<StoredEvent> = Vec::new();
    for (i, (kind, data)) in events.iter().enumerate() {
        let (seq, prev) = chain
            .last()
            .map_or((0, GENESIS_HASH.to_string()), |e| (e.seq, e.hash.clone()));
        let at = Timestamp::from_unix_micros(1_800_000_000_000_000 + i as i64);
        chain.push(seal(seq, &prev, at, &fuzz_actor(), *kind, data));
    }
    chain
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn any_sealed_events_replay_or_fail_at_an_event(events in prop::collection::vec((kind(), data()), 1..12)) {
        let chain = chain(&events);
        let mut verifier = ChainVerifier::default();
        for event in &chain {
            if let Err(error) = verifier.push(event.fields()) {
                prop_assert_eq!(error.seq(), Some(event.seq), "{}", error);
                break;
            }
        }
    }

    #[test]
    fn events_of_unknown_kinds_or_non_json_data_fail_at_that_event(
        kind in "[a-z._]{0,20}",
        data in ".{0,60}",
    ) {
        prop_assume!(EventKind::parse(&kind).is_none() || serde_json::from_str::<Value>(&data).is_err());
        let at = Timestamp::from_unix_micros(1_800_000_000_000_000);
        let mut event = seal(0, GENESIS_HASH, at, &fuzz_actor(), EventKind::TokenIssued, &json!({})).to_raw();
        event.kind = kind;
        event.data = data;
        event.hash = writ_domain::ledger::event_hash(1, at, &event.actor, &event.kind, &event.data, GENESIS_HASH);
        let error = ChainVerifier::default().push(event.fields()).expect_err("refused");
        prop_assert_eq!(error.seq(), Some(1));
    }
}

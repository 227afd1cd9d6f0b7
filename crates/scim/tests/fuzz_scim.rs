//! Fuzzing what an identity provider (or whoever holds a SCIM secret) sends: filters and
//! PATCH bodies, as arbitrary text and as near-valid ones built from the pieces
//! providers use. Parsing answers with a value or an error, never a panic; evaluating
//! and applying never panic; a PATCH that fails leaves the resource as it was. Cases:
//! `WRIT_FUZZ_CASES` (default 1,000 per property; see SECURITY.md).

use proptest::prelude::*;
use serde_json::{Value, json};
use writ_scim::{PatchOp, filter, parse_filter, patch};

fn cases() -> u32 {
    std::env::var("WRIT_FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000)
}

fn resource() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "alice@example.org",
        "active": true,
        "name": {"givenName": "Alice"},
        "emails": [{"value": "alice@example.org", "type": "work", "primary": true}],
        "members": [{"value": "a"}, {"value": "b"}],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"manager": {"value": "m"}}
    })
}

fn attribute() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("userName".to_string()),
        Just("active".to_string()),
        Just("emails".to_string()),
        Just("emails.value".to_string()),
        Just("name.givenName".to_string()),
        Just("members".to_string()),
        Just("id".to_string()),
        Just("meta.version".to_string()),
        Just("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User".to_string()),
        Just("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager".to_string()),
        "[a-zA-Z][a-zA-Z0-9._:-]{0,20}",
    ]
}

fn operator() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le", "pr", "and", "or", "not", "[", "]",
        "(", ")",
    ])
}

fn literal() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("\"alice@example.org\"".to_string()),
        Just("true".to_string()),
        Just("null".to_string()),
        Just("42".to_string()),
        "\"[^\"]{0,10}\"",
        ".{0,6}",
    ]
}

/// Filters made of the pieces of real ones, in any order.
fn near_filter() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![attribute(), operator().prop_map(str::to_string), literal()],
        1..10,
    )
    .prop_map(|pieces| pieces.join(" "))
}

fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        ".{0,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-zA-Z$]{1,8}", inner, 0..4)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

fn operation() -> impl Strategy<Value = Value> {
    (
        prop::sample::select(vec![
            "add", "Add", "replace", "Replace", "remove", "Remove", "move",
        ]),
        prop::option::of(prop_oneof![
            attribute(),
            (attribute(), near_filter()).prop_map(|(a, f)| format!("{a}[{f}]")),
            (attribute(), near_filter(), attribute()).prop_map(|(a, f, s)| format!("{a}[{f}].{s}")),
        ]),
        prop::option::of(value()),
    )
        .prop_map(|(op, path, value)| {
            let mut operation = json!({"op": op});
            if let Some(path) = path {
                operation["path"] = json!(path);
            }
            if let Some(value) = value {
                operation["value"] = value;
            }
            operation
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn any_filter_text_parses_or_is_refused(text in ".{0,80}") {
        if let Ok(parsed) = parse_filter(&text) {
            filter::matches(&parsed, &resource());
        }
    }

    #[test]
    fn near_valid_filters_evaluate_without_panicking(text in near_filter(), target in value()) {
        if let Ok(parsed) = parse_filter(&text) {
            filter::matches(&parsed, &resource());
            filter::matches(&parsed, &target);
        }
    }

    #[test]
    fn patches_apply_or_fail_without_touching_the_resource(
        operations in prop::collection::vec(operation(), 1..5),
        target in prop_oneof![Just(resource()), value()],
    ) {
        let body = json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": operations,
        });
        if let Ok(op) = serde_json::from_value::<PatchOp>(body) {
            let before = target.clone();
            let _ = patch::apply(&target, &op.operations);
            prop_assert_eq!(before, target);
        }
    }
}

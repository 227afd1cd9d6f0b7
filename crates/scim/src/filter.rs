//! Evaluating a SCIM filter (RFC 7644 §3.4.2.2, parsed by `scim_v2`) against a
//! resource held as JSON. Attribute names compare without regard to case (RFC 7643
//! §2.1); string values compare without regard to case except for `id`, `externalId`
//! and `meta.version` — the attributes RFC 7643 marks `caseExact`.

use scim_v2::filter::{AttrExp, AttrPath, CompValue, CompareOp, Filter, ValFilter};
use serde_json::Value;

/// Whether `resource` matches `filter`.
pub fn matches(filter: &Filter, resource: &Value) -> bool {
    match filter {
        Filter::Attr(expression) => attr_matches(expression, resource),
        Filter::ValuePath(path) => values_of(resource, &path.attr)
            .iter()
            .any(|element| val_matches(&path.filter, element)),
        Filter::Not(inner) => !matches(inner, resource),
        Filter::And(items) => items.as_slice().iter().all(|f| matches(f, resource)),
        Filter::Or(items) => items.as_slice().iter().any(|f| matches(f, resource)),
    }
}

/// Whether one element of a multi-valued attribute matches a value filter
/// (`emails[type eq "work"]`, `members[value eq "…"]`).
pub fn val_matches(filter: &ValFilter, element: &Value) -> bool {
    match filter {
        ValFilter::Attr(expression) => attr_matches(expression, element),
        ValFilter::Not(inner) => !val_matches(inner, element),
        ValFilter::And(items) => items.as_slice().iter().all(|f| val_matches(f, element)),
        ValFilter::Or(items) => items.as_slice().iter().any(|f| val_matches(f, element)),
    }
}

fn attr_matches(expression: &AttrExp, resource: &Value) -> bool {
    match expression {
        AttrExp::Present(path) => values_of(resource, path).iter().any(|v| present(v)),
        AttrExp::Comparison(path, op, expected) => {
            let exact = is_case_exact(path);
            values_of(resource, path)
                .iter()
                .any(|actual| compare(actual, op, expected, exact))
        }
    }
}

fn present(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::String(text) => !text.is_empty(),
        Value::Array(items) => !items.is_empty(),
        Value::Object(map) => !map.is_empty(),
        _ => true,
    }
}

fn is_case_exact(path: &AttrPath) -> bool {
    let name = path.name.to_ascii_lowercase();
    match path.sub_attr.as_deref().map(str::to_ascii_lowercase) {
        None => name == "id" || name == "externalid",
        Some(sub) => name == "meta" && sub == "version",
    }
}

/// The values `path` names in `resource`: a multi-valued attribute gives each element
/// (or each element's sub-attribute).
pub fn values_of<'a>(resource: &'a Value, path: &AttrPath) -> Vec<&'a Value> {
    let base = match &path.uri {
        // An extension's attributes live under its URN.
        Some(uri) => match field(resource, uri) {
            Some(extension) => extension,
            // The core schema's URN names the resource itself.
            None if uri.starts_with("urn:ietf:params:scim:schemas:core:") => resource,
            None => return Vec::new(),
        },
        None => resource,
    };
    let Some(value) = field(base, &path.name) else {
        return Vec::new();
    };
    let elements: Vec<&Value> = match value {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    };
    match &path.sub_attr {
        None => elements,
        Some(sub) => elements
            .into_iter()
            .filter_map(|element| field(element, sub))
            .collect(),
    }
}

/// A member of a JSON object, its name compared without regard to case.
pub fn field<'a>(value: &'a Value, name: &str) -> Option<&'a Value> {
    value
        .as_object()?
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| value)
}

fn compare(actual: &Value, op: &CompareOp, expected: &CompValue, case_exact: bool) -> bool {
    use std::cmp::Ordering;
    let ordering: Option<Ordering> = match (actual, expected) {
        (Value::String(a), CompValue::Str(e)) => {
            let (a, e) = if case_exact {
                (a.clone(), e.clone())
            } else {
                (a.to_lowercase(), e.to_lowercase())
            };
            return match op {
                CompareOp::Eq => a == e,
                CompareOp::Ne => a != e,
                CompareOp::Co => a.contains(&e),
                CompareOp::Sw => a.starts_with(&e),
                CompareOp::Ew => a.ends_with(&e),
                CompareOp::Gt => a > e,
                CompareOp::Ge => a >= e,
                CompareOp::Lt => a < e,
                CompareOp::Le => a <= e,
            };
        }
        (Value::Bool(a), CompValue::True) => Some(a.cmp(&true)),
        (Value::Bool(a), CompValue::False) => Some(a.cmp(&false)),
        (Value::Number(a), CompValue::Number(e)) => a
            .as_f64()
            .zip(e.as_f64())
            .and_then(|(a, e)| a.partial_cmp(&e)),
        (Value::Null, CompValue::Null) => Some(Ordering::Equal),
        _ => None,
    };
    match (op, ordering) {
        (CompareOp::Eq, Some(o)) => o == Ordering::Equal,
        (CompareOp::Ne, Some(o)) => o != Ordering::Equal,
        (CompareOp::Ne, None) => true,
        // Booleans have no order (RFC 7644 §3.4.2.2): only eq and ne apply.
        (CompareOp::Gt, Some(o)) if !actual.is_boolean() => o == Ordering::Greater,
        (CompareOp::Ge, Some(o)) if !actual.is_boolean() => o != Ordering::Less,
        (CompareOp::Lt, Some(o)) if !actual.is_boolean() => o == Ordering::Less,
        (CompareOp::Le, Some(o)) if !actual.is_boolean() => o != Ordering::Greater,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(text: &str) -> Filter {
        text.parse().expect("filter")
    }

    #[test]
    fn the_lookups_identity_providers_make() {
        let alice = json!({
            "userName": "Alice@Example.org",
            "externalId": "00u1ABC",
            "active": true,
            "emails": [{"value": "alice@example.org", "type": "work"}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"manager": {"value": "m1"}},
            "meta": {"version": "W/\"3\""}
        });
        for (filter, expected) in [
            (r#"userName eq "alice@example.org""#, true),
            (r#"USERNAME eq "ALICE@EXAMPLE.ORG""#, true),
            (r#"externalId eq "00u1abc""#, false),
            (r#"externalId eq "00u1ABC""#, true),
            (
                r#"emails[type eq "work" and value co "@example.org"]"#,
                true,
            ),
            (r#"emails.value sw "alice""#, true),
            ("active eq true", true),
            ("active eq false", false),
            ("title pr", false),
            (r#"not (userName eq "bob")"#, true),
            (r#"userName eq "bob" or active eq true"#, true),
            (
                r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "m1""#,
                true,
            ),
            (
                r#"urn:ietf:params:scim:schemas:core:2.0:User:userName ew "example.org""#,
                true,
            ),
            (r#"meta.version eq "w/\"3\"""#, false),
            ("active gt false", false),
        ] {
            assert_eq!(matches(&parse(filter), &alice), expected, "{filter}");
        }
    }
}

//! Request contexts built as values, without Cedar's public constructors' detours.
//!
//! `Context::from_pairs` takes expressions and evaluates them into values, and
//! `RestrictedExpression::new_datetime` parses the name `datetime` with Cedar's whole
//! policy parser (a lexer built per call) every time: together more than half of a
//! decision at small policy sets. A context here is made of its values directly,
//! through the conversions `cedar-policy` keeps for its own core types; the workspace
//! pins both crates to one exact version, and tests check that every context is equal
//! to the one Cedar's public constructors make.

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};

use cedar_policy::{Context, EntityUid};
use cedar_policy_core::ast::{self, ExtensionFunction, Name, PartialValue, Value};
use cedar_policy_core::extensions::Extensions;

/// One value of a request context.
#[derive(Debug, Clone)]
pub(crate) enum Field {
    Bool(bool),
    Long(i64),
    Text(String),
    Entity(EntityUid),
    /// A set of entities (e.g. the entitlements a subject holds).
    EntitySet(Vec<EntityUid>),
    /// RFC 3339 text, as Cedar's `datetime("…")` takes it.
    Datetime(String),
    /// A set of strings.
    TextSet(Vec<String>),
    /// A record of named fields.
    Record(Vec<(&'static str, Field)>),
}

static DATETIME: LazyLock<Option<&'static ExtensionFunction>> = LazyLock::new(|| {
    let name = Name::parse_unqualified_name("datetime").ok()?;
    Extensions::all_available().func(&name).ok()
});

fn value(field: Field) -> Result<Value, String> {
    Ok(match field {
        Field::Bool(b) => Value::from(b),
        Field::Long(n) => Value::from(n),
        Field::Text(text) => Value::from(text),
        Field::Entity(uid) => Value::from(ast::EntityUID::from(uid)),
        Field::EntitySet(uids) => Value::set(
            uids.into_iter()
                .map(|uid| Value::from(ast::EntityUID::from(uid))),
            None,
        ),
        Field::TextSet(texts) => Value::set(texts.into_iter().map(Value::from), None),
        Field::Record(fields) => {
            let mut pairs = Vec::with_capacity(fields.len());
            for (key, field) in fields {
                pairs.push((key, value(field)?));
            }
            Value::record(pairs, None)
        }
        Field::Datetime(text) => {
            let datetime = DATETIME.ok_or("Cedar's datetime extension is not available")?;
            match datetime.call(&[Value::from(text)]) {
                Ok(PartialValue::Value(value)) => value,
                Ok(PartialValue::Residual(_)) => return Err("datetime is unknown".into()),
                Err(error) => return Err(error.to_string()),
            }
        }
    })
}

/// The context with these fields, equal to `Context::from_pairs` of the same fields.
pub(crate) fn context(
    fields: impl IntoIterator<Item = (&'static str, Field)>,
) -> Result<Context, String> {
    let mut record = BTreeMap::new();
    for (key, field) in fields {
        if record.insert(key.into(), value(field)?).is_some() {
            return Err(format!("duplicate context key {key}"));
        }
    }
    Ok(Context::from(ast::Context::Value(Arc::new(record))))
}

#[cfg(test)]
pub(crate) mod tests {
    use cedar_policy::RestrictedExpression;
    use proptest::prelude::*;

    use super::*;

    /// The same context through Cedar's public constructors.
    pub(crate) fn public_context(
        fields: impl IntoIterator<Item = (&'static str, Field)>,
    ) -> Result<Context, String> {
        Context::from_pairs(
            fields
                .into_iter()
                .map(|(key, field)| (key.to_string(), expression(field))),
        )
        .map_err(|e| e.to_string())
    }

    fn expression(field: Field) -> RestrictedExpression {
        match field {
            Field::Bool(b) => RestrictedExpression::new_bool(b),
            Field::Long(n) => RestrictedExpression::new_long(n),
            Field::Text(text) => RestrictedExpression::new_string(text),
            Field::Entity(uid) => RestrictedExpression::new_entity_uid(uid),
            Field::EntitySet(uids) => RestrictedExpression::new_set(
                uids.into_iter().map(RestrictedExpression::new_entity_uid),
            ),
            Field::TextSet(texts) => RestrictedExpression::new_set(
                texts.into_iter().map(RestrictedExpression::new_string),
            ),
            Field::Record(fields) => RestrictedExpression::new_record(
                fields
                    .into_iter()
                    .map(|(key, field)| (key.to_string(), expression(field))),
            )
            .expect("distinct keys"),
            Field::Datetime(text) => RestrictedExpression::new_datetime(text),
        }
    }

    fn field() -> impl Strategy<Value = Field> {
        prop_oneof![
            any::<bool>().prop_map(Field::Bool),
            any::<i64>().prop_map(Field::Long),
            ".{0,12}".prop_map(Field::Text),
            ("[A-Z][a-z]{0,6}", ".{0,8}").prop_map(|(kind, id)| Field::Entity(
                EntityUid::from_type_name_and_id(
                    kind.parse().expect("type name"),
                    cedar_policy::EntityId::new(id)
                )
            )),
            prop::collection::vec(".{0,6}", 0..4).prop_map(|ids| Field::EntitySet(
                ids.into_iter()
                    .map(|id| EntityUid::from_type_name_and_id(
                        "Entitlement".parse().expect("type name"),
                        cedar_policy::EntityId::new(id)
                    ))
                    .collect()
            )),
            prop::collection::vec(".{0,6}", 0..4).prop_map(Field::TextSet),
            (any::<bool>(), prop::collection::vec(".{0,6}", 0..3)).prop_map(|(flag, texts)| {
                Field::Record(vec![
                    ("superuser", Field::Bool(flag)),
                    ("roles", Field::TextSet(texts)),
                ])
            }),
            (0i64..4_000_000_000_000, any::<bool>()).prop_map(|(ms, valid)| {
                if valid {
                    let at = writ_domain::Timestamp::from_unix_micros(ms * 1000);
                    Field::Datetime(at.to_cedar_datetime())
                } else {
                    Field::Datetime(format!("{ms}"))
                }
            }),
        ]
    }

    const KEYS: [&str; 6] = ["now", "subject", "a", "b", "ticket_key", "window_end"];

    proptest! {
        #[test]
        fn equal_to_cedars_own_construction(fields in prop::collection::vec(field(), 0..KEYS.len())) {
            let fields: Vec<(&'static str, Field)> = KEYS.iter().copied().zip(fields).collect();
            let ours = context(fields.clone());
            let cedars = public_context(fields);
            prop_assert_eq!(ours.is_ok(), cedars.is_ok(), "{:?}", ours);
            if let (Ok(ours), Ok(cedars)) = (ours, cedars) {
                prop_assert_eq!(ours, cedars);
            }
        }
    }

    #[test]
    fn a_repeated_key_is_refused() {
        let twice = [("a", Field::Bool(true)), ("a", Field::Bool(false))];
        assert!(context(twice.clone()).is_err());
        assert!(public_context(twice).is_err());
    }
}

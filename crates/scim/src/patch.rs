//! PATCH (RFC 7644 §3.5.2) applied to a resource held as JSON: `add`, `replace` and
//! `remove`, with or without a path, on attributes, sub-attributes, extension
//! attributes (`urn:…:User:manager`) and elements picked by a value filter
//! (`members[value eq "…"]`). Besides the RFC's form, the form Microsoft Entra ID
//! sends to remove members (`path: members` with the members as `value`) is accepted.

use scim_v2::filter::{AttrPath, PatchPath, PatchValuePath};
use scim_v2::models::others::{OperationTarget, PatchOperation};
use serde_json::{Map, Value};

use crate::filter::val_matches;
use crate::{ScimError, ScimType};

/// Applies `operations` in order; on an error the resource is left as it was.
pub fn apply(resource: &Value, operations: &[PatchOperation]) -> Result<Value, ScimError> {
    let mut patched = resource.clone();
    for operation in operations {
        apply_one(&mut patched, operation)?;
    }
    Ok(patched)
}

/// A path naming a whole extension (`urn:…:enterprise:2.0:User`) parses as the
/// attribute `User` of the URN `urn:…:enterprise:2.0`; it names the extension's object,
/// an attribute of the resource whose name is the whole URN.
fn whole_extension(path: &AttrPath) -> AttrPath {
    match &path.uri {
        Some(uri)
            if path.sub_attr.is_none()
                && path.name.chars().next().is_some_and(char::is_uppercase)
                && uri.starts_with("urn:")
                && !uri.starts_with("urn:ietf:params:scim:schemas:core:") =>
        {
            AttrPath {
                uri: None,
                name: format!("{uri}:{}", path.name),
                sub_attr: None,
            }
        }
        _ => path.clone(),
    }
}

fn apply_one(resource: &mut Value, operation: &PatchOperation) -> Result<(), ScimError> {
    match operation {
        PatchOperation::Add(OperationTarget::WithoutPath { value })
        | PatchOperation::Replace(OperationTarget::WithoutPath { value }) => {
            let add = matches!(operation, PatchOperation::Add(_));
            for (name, value) in value {
                refuse_read_only(name)?;
                let object = as_object(resource)?;
                if name.starts_with("urn:") && value.is_object() {
                    // An extension's attributes, each set as if named on its own.
                    let extension =
                        entry(object, name).or_insert_with(|| Value::Object(Map::new()));
                    let extension = as_object(extension)?;
                    for (inner, inner_value) in value.as_object().into_iter().flatten() {
                        set(extension, inner, inner_value.clone(), add);
                    }
                } else {
                    set(object, name, value.clone(), add);
                }
            }
            Ok(())
        }
        PatchOperation::Add(OperationTarget::WithPath { path, value })
        | PatchOperation::Replace(OperationTarget::WithPath { path, value }) => {
            let add = matches!(operation, PatchOperation::Add(_));
            let value = match value {
                Some(value) if !value.is_null() => value.clone(),
                _ => {
                    return Err(ScimError::bad(
                        ScimType::InvalidValue,
                        "add and replace need a value",
                    ));
                }
            };
            match path {
                PatchPath::Attr(path) => set_path(resource, &whole_extension(path), value, add),
                PatchPath::Value(path) => replace_matching(resource, path, value),
            }
        }
        PatchOperation::Remove { path, value } => match path {
            PatchPath::Attr(path) => remove_path(resource, &whole_extension(path), value.as_ref()),
            PatchPath::Value(path) => remove_matching(resource, path),
        },
    }
}

fn refuse_read_only(name: &str) -> Result<(), ScimError> {
    if ["id", "meta"].iter().any(|n| n.eq_ignore_ascii_case(name)) {
        return Err(ScimError::bad(
            ScimType::Mutability,
            format!("{name} is set by the service provider and cannot be changed"),
        ));
    }
    Ok(())
}

fn as_object(value: &mut Value) -> Result<&mut Map<String, Value>, ScimError> {
    if !value.is_object() {
        *value = Value::Object(Map::new());
    }
    value
        .as_object_mut()
        .ok_or_else(|| ScimError::bad(ScimType::InvalidPath, "the path does not lead to an object"))
}

/// The member named `name` (compared without regard to case), made if missing.
fn entry<'a>(object: &'a mut Map<String, Value>, name: &str) -> serde_json::map::Entry<'a> {
    let key = object
        .keys()
        .find(|key| key.eq_ignore_ascii_case(name))
        .cloned()
        .unwrap_or_else(|| name.to_string());
    object.entry(key)
}

/// Sets `name`: `add` to a multi-valued attribute appends (leaving out values it holds
/// already); anything else replaces.
fn set(object: &mut Map<String, Value>, name: &str, value: Value, add: bool) {
    match entry(object, name) {
        serde_json::map::Entry::Occupied(mut slot) => {
            if add && let (Value::Array(held), new) = (slot.get_mut(), value.clone()) {
                let new = match new {
                    Value::Array(items) => items,
                    single => vec![single],
                };
                for item in new {
                    if !held.contains(&item) {
                        held.push(item);
                    }
                }
            } else if add
                && let (Value::Object(held), Value::Object(new)) = (slot.get_mut(), &value)
            {
                for (key, inner) in new {
                    set(held, key, inner.clone(), true);
                }
            } else {
                slot.insert(value);
            }
        }
        serde_json::map::Entry::Vacant(slot) => {
            slot.insert(value);
        }
    }
}

/// The object that holds `path`'s attribute: the resource, or its extension's object.
fn holder<'a>(
    resource: &'a mut Value,
    path: &AttrPath,
    create: bool,
) -> Result<Option<&'a mut Map<String, Value>>, ScimError> {
    refuse_read_only(&path.name)?;
    let object = as_object(resource)?;
    match &path.uri {
        Some(uri) if !uri.starts_with("urn:ietf:params:scim:schemas:core:") => {
            if !create && !object.keys().any(|k| k.eq_ignore_ascii_case(uri)) {
                return Ok(None);
            }
            let extension = entry(object, uri).or_insert_with(|| Value::Object(Map::new()));
            Ok(Some(as_object(extension)?))
        }
        _ => Ok(Some(object)),
    }
}

fn set_path(
    resource: &mut Value,
    path: &AttrPath,
    value: Value,
    add: bool,
) -> Result<(), ScimError> {
    let Some(object) = holder(resource, path, true)? else {
        return Ok(());
    };
    match &path.sub_attr {
        None => set(object, &path.name, value, add),
        Some(sub) => {
            let parent = entry(object, &path.name).or_insert_with(|| Value::Object(Map::new()));
            match parent {
                // `emails.value` on a multi-valued attribute: every element.
                Value::Array(elements) => {
                    for element in elements {
                        set(as_object(element)?, sub, value.clone(), add);
                    }
                }
                other => set(as_object(other)?, sub, value, add),
            }
        }
    }
    Ok(())
}

fn replace_matching(
    resource: &mut Value,
    path: &PatchValuePath,
    value: Value,
) -> Result<(), ScimError> {
    let Some(object) = holder(resource, &path.attr, false)? else {
        return Err(no_target(&path.attr));
    };
    let Some(Value::Array(elements)) = object
        .iter_mut()
        .find(|(key, _)| key.eq_ignore_ascii_case(&path.attr.name))
        .map(|(_, value)| value)
    else {
        return Err(no_target(&path.attr));
    };
    let mut matched = false;
    for element in elements.iter_mut().filter(|e| val_matches(&path.filter, e)) {
        matched = true;
        match &path.sub_attr {
            Some(sub) => set(as_object(element)?, sub, value.clone(), false),
            None => *element = value.clone(),
        }
    }
    if matched {
        Ok(())
    } else {
        Err(no_target(&path.attr))
    }
}

fn remove_path(
    resource: &mut Value,
    path: &AttrPath,
    value: Option<&Value>,
) -> Result<(), ScimError> {
    let Some(object) = holder(resource, path, false)? else {
        return Ok(());
    };
    let Some(key) = object
        .keys()
        .find(|key| key.eq_ignore_ascii_case(&path.name))
        .cloned()
    else {
        return Ok(());
    };
    match (&path.sub_attr, value) {
        // Entra ID: `{"op":"Remove","path":"members","value":[{"value":"…"}]}`.
        (None, Some(Value::Array(gone))) => {
            if let Some(Value::Array(elements)) = object.get_mut(&key) {
                let ids: Vec<&Value> = gone
                    .iter()
                    .map(|item| crate::filter::field(item, "value").unwrap_or(item))
                    .collect();
                elements.retain(|element| {
                    let id = crate::filter::field(element, "value").unwrap_or(element);
                    !ids.contains(&id)
                });
            }
        }
        (None, _) => {
            object.remove(&key);
        }
        (Some(sub), _) => match object.get_mut(&key) {
            Some(Value::Array(elements)) => {
                for element in elements {
                    remove_key(element, sub);
                }
            }
            Some(other) => remove_key(other, sub),
            None => {}
        },
    }
    Ok(())
}

fn remove_matching(resource: &mut Value, path: &PatchValuePath) -> Result<(), ScimError> {
    let Some(object) = holder(resource, &path.attr, false)? else {
        return Ok(());
    };
    let Some(Value::Array(elements)) = object
        .iter_mut()
        .find(|(key, _)| key.eq_ignore_ascii_case(&path.attr.name))
        .map(|(_, value)| value)
    else {
        return Ok(());
    };
    match &path.sub_attr {
        Some(sub) => {
            for element in elements.iter_mut().filter(|e| val_matches(&path.filter, e)) {
                remove_key(element, sub);
            }
        }
        None => elements.retain(|element| !val_matches(&path.filter, element)),
    }
    Ok(())
}

fn remove_key(value: &mut Value, name: &str) {
    if let Some(object) = value.as_object_mut()
        && let Some(key) = object
            .keys()
            .find(|k| k.eq_ignore_ascii_case(name))
            .cloned()
    {
        object.remove(&key);
    }
}

fn no_target(path: &AttrPath) -> ScimError {
    ScimError::bad(
        ScimType::NoTarget,
        format!("no value of {} matches the path's filter", path.name),
    )
}

#[cfg(test)]
mod tests {
    use scim_v2::models::others::PatchOp;
    use serde_json::json;

    use super::*;

    fn patch(resource: Value, body: Value) -> Result<Value, ScimError> {
        let op: PatchOp = serde_json::from_value(body).expect("patch op");
        apply(&resource, &op.operations)
    }

    fn ops(operations: Value) -> Value {
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": operations})
    }

    #[test]
    fn members_are_added_and_removed_in_the_forms_okta_and_entra_send() {
        let group = json!({"displayName": "dba", "members": [{"value": "a"}]});
        let added = patch(
            group,
            ops(json!([{"op": "add", "path": "members", "value": [{"value": "b"}, {"value": "a"}]}])),
        )
        .expect("add");
        assert_eq!(added["members"], json!([{"value": "a"}, {"value": "b"}]));
        let removed = patch(
            added.clone(),
            ops(json!([{"op": "remove", "path": "members[value eq \"a\"]"}])),
        )
        .expect("remove");
        assert_eq!(removed["members"], json!([{"value": "b"}]));
        let entra = patch(
            added,
            ops(json!([{"op": "Remove", "path": "members", "value": [{"$ref": null, "value": "b"}]}])),
        )
        .expect("entra remove");
        assert_eq!(entra["members"], json!([{"value": "a"}]));
    }

    #[test]
    fn users_are_deactivated_and_changed_as_providers_do() {
        let user = json!({"userName": "alice", "active": true, "emails": [{"type": "work", "value": "a@x"}]});
        let okta = patch(
            user.clone(),
            ops(json!([{"op": "replace", "value": {"active": false}}])),
        )
        .expect("okta");
        assert_eq!(okta["active"], false);
        let entra = patch(
            user.clone(),
            ops(json!([
                {"op": "Replace", "path": "active", "value": false},
                {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "b@x"},
                {"op": "Add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "value": {"value": "m1"}},
                {"op": "Add", "path": "name.givenName", "value": "Alice"}
            ])),
        )
        .expect("entra");
        assert_eq!(entra["active"], false);
        assert_eq!(entra["emails"][0]["value"], "b@x");
        assert_eq!(
            entra["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["manager"]["value"],
            "m1"
        );
        assert_eq!(entra["name"]["givenName"], "Alice");
    }

    #[test]
    fn a_whole_extension_is_added_and_removed_by_its_urn() {
        let urn = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
        let user = json!({"userName": "alice"});
        let added = patch(
            user,
            ops(json!([{"op": "add", "path": urn, "value": {"employeeNumber": "7"}}])),
        )
        .expect("add");
        assert_eq!(added[urn]["employeeNumber"], "7", "{added}");
        let removed = patch(added, ops(json!([{"op": "remove", "path": urn}]))).expect("remove");
        assert!(removed.get(urn).is_none(), "{removed}");
    }

    #[test]
    fn bad_patches_are_refused_and_change_nothing() {
        let user = json!({"userName": "alice", "emails": [{"type": "work", "value": "a@x"}]});
        for (body, scim_type) in [
            (
                json!([{"op": "replace", "path": "id", "value": "x"}]),
                ScimType::Mutability,
            ),
            (
                json!([{"op": "add", "path": "title"}]),
                ScimType::InvalidValue,
            ),
            (
                json!([{"op": "replace", "path": "emails[type eq \"home\"].value", "value": "h@x"}]),
                ScimType::NoTarget,
            ),
        ] {
            let error = patch(user.clone(), ops(body.clone())).expect_err("refused");
            assert_eq!(error.scim_type, Some(scim_type), "{body}");
        }
    }
}

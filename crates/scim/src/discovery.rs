//! What the service provider says about itself (RFC 7644 §4): `ServiceProviderConfig`,
//! `ResourceTypes` and `Schemas`, with their locations under `base` (the URL of
//! `/scim/v2`).

use scim_v2::models::scim_schema::get_schemas;
use serde_json::{Value, json};

use crate::{
    ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA, MAX_RESULTS, ScimError, USER_SCHEMA, WRIT_USER_SCHEMA,
};

pub fn service_provider_config(base: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
        "patch": {"supported": true},
        "bulk": {"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": true, "maxResults": MAX_RESULTS},
        "changePassword": {"supported": false},
        "sort": {"supported": false},
        "etag": {"supported": true},
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "Bearer token",
            "description": "The secret of a [[scim]] client in writ.toml, as a bearer token",
            "primary": true
        }],
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": format!("{base}/ServiceProviderConfig"),
        }
    })
}

pub fn resource_types(base: &str) -> Vec<Value> {
    vec![
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
            "id": "User",
            "name": "User",
            "endpoint": "/Users",
            "description": "People; each is a writ user named by its userName",
            "schema": USER_SCHEMA,
            "schemaExtensions": [
                {"schema": ENTERPRISE_USER_SCHEMA, "required": false},
                {"schema": WRIT_USER_SCHEMA, "required": false}
            ],
            "meta": {"resourceType": "ResourceType", "location": format!("{base}/ResourceTypes/User")}
        }),
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
            "id": "Group",
            "name": "Group",
            "endpoint": "/Groups",
            "description": "Groups; policy sees each as Group::\"<displayName>\"",
            "schema": GROUP_SCHEMA,
            "meta": {"resourceType": "ResourceType", "location": format!("{base}/ResourceTypes/Group")}
        }),
    ]
}

/// writ's extension of User (RFC 7643 §7 form).
fn writ_user_schema() -> Value {
    json!({
        "id": WRIT_USER_SCHEMA,
        "name": "WritUser",
        "description": "What writ needs to know of a person beyond the core schema",
        "attributes": [{
            "name": "validUntil",
            "type": "dateTime",
            "multiValued": false,
            "description": "When the person ends (a contractor's last day): from then on a leaver, and no grant runs past it",
            "required": false,
            "caseExact": false,
            "mutability": "readWrite",
            "returned": "default",
            "uniqueness": "none"
        }]
    })
}

/// The schemas of User, Group, the enterprise extension (RFC 7643 §8.7) and writ's own.
pub fn schemas(base: &str) -> Result<Vec<Value>, ScimError> {
    let schemas = get_schemas(vec!["user", "group", "enterprise_user"])
        .map_err(|error| ScimError::new(500, None, format!("the schemas do not load: {error}")))?;
    let schemas = schemas
        .into_iter()
        .map(|schema| {
            serde_json::to_value(schema).map_err(|error| {
                ScimError::new(500, None, format!("a schema does not serialise: {error}"))
            })
        })
        .chain(std::iter::once(Ok(writ_user_schema())))
        .collect::<Result<Vec<Value>, ScimError>>()?;
    schemas
        .into_iter()
        .map(|mut value| {
            let id = value["id"].as_str().unwrap_or_default().to_string();
            value["schemas"] = json!(["urn:ietf:params:scim:schemas:core:2.0:Schema"]);
            value["meta"] =
                json!({"resourceType": "Schema", "location": format!("{base}/Schemas/{id}")});
            Ok(value)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_schemas_are_published() {
        let schemas = schemas("https://writ.test/scim/v2").expect("schemas");
        let ids: Vec<&str> = schemas.iter().filter_map(|s| s["id"].as_str()).collect();
        assert_eq!(
            ids,
            [
                USER_SCHEMA,
                GROUP_SCHEMA,
                ENTERPRISE_USER_SCHEMA,
                WRIT_USER_SCHEMA
            ]
        );
        assert!(
            schemas[0]["attributes"]
                .as_array()
                .is_some_and(|a| a.len() > 10)
        );
    }
}

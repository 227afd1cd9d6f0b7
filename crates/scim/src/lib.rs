//! SCIM 2.0 (RFC 7643 / RFC 7644) as writ serves it: resources held as JSON, filters
//! evaluated against them (`filter`), PATCH applied to them (`patch`), the discovery
//! documents (`discovery`), list and error messages. Pure: no I/O; the API serves it
//! and the engine keeps the records. Filters and PATCH paths are parsed by `scim_v2`.

pub mod discovery;
pub mod filter;
pub mod patch;

use serde_json::{Value, json};

pub use scim_v2::filter::Filter;
pub use scim_v2::models::others::{PatchOp, PatchOperation};

pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub const ENTERPRISE_USER_SCHEMA: &str =
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
/// writ's own extension of User: `validUntil`, when the person ends.
pub const WRIT_USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:extension:writ:2.0:User";
pub const LIST_RESPONSE_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
pub const PATCH_OP_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
pub const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
pub const MEDIA_TYPE: &str = "application/scim+json";
/// The most resources one list answers with (`count` is capped to it).
pub const MAX_RESULTS: usize = 1000;

/// RFC 7644 §3.12 `scimType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScimType {
    InvalidFilter,
    TooMany,
    Uniqueness,
    Mutability,
    InvalidSyntax,
    InvalidPath,
    NoTarget,
    InvalidValue,
    InvalidVers,
}

impl ScimType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidFilter => "invalidFilter",
            Self::TooMany => "tooMany",
            Self::Uniqueness => "uniqueness",
            Self::Mutability => "mutability",
            Self::InvalidSyntax => "invalidSyntax",
            Self::InvalidPath => "invalidPath",
            Self::NoTarget => "noTarget",
            Self::InvalidValue => "invalidValue",
            Self::InvalidVers => "invalidVers",
        }
    }
}

/// A SCIM error: its HTTP status, `scimType` and what went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScimError {
    pub status: u16,
    pub scim_type: Option<ScimType>,
    pub detail: String,
}

impl ScimError {
    pub fn new(status: u16, scim_type: Option<ScimType>, detail: impl Into<String>) -> Self {
        Self {
            status,
            scim_type,
            detail: detail.into(),
        }
    }

    /// 400 with a `scimType`.
    pub fn bad(scim_type: ScimType, detail: impl Into<String>) -> Self {
        Self::new(400, Some(scim_type), detail)
    }

    pub fn not_found(what: &str, id: &str) -> Self {
        Self::new(404, None, format!("no {what} {id}"))
    }

    /// The error body (RFC 7644 §3.12: `status` is a string).
    pub fn body(&self) -> Value {
        let mut body = json!({
            "schemas": [ERROR_SCHEMA],
            "status": self.status.to_string(),
            "detail": self.detail,
        });
        if let Some(scim_type) = self.scim_type {
            body["scimType"] = json!(scim_type.as_str());
        }
        body
    }
}

impl std::fmt::Display for ScimError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.scim_type {
            Some(scim_type) => write!(
                f,
                "{} ({}): {}",
                self.status,
                scim_type.as_str(),
                self.detail
            ),
            None => write!(f, "{}: {}", self.status, self.detail),
        }
    }
}

impl std::error::Error for ScimError {}

/// Parses a `filter` query parameter; a bad one is a 400 `invalidFilter`.
pub fn parse_filter(text: &str) -> Result<Filter, ScimError> {
    text.parse()
        .map_err(|error| ScimError::bad(ScimType::InvalidFilter, format!("{text:?}: {error}")))
}

/// A page of a list: `startIndex` is 1-based (values below 1 count as 1), `count`
/// at most `MAX_RESULTS` (absent: that many; 0: none, only the total).
pub fn list_response(resources: &[Value], start_index: Option<i64>, count: Option<i64>) -> Value {
    let total = resources.len();
    let start = usize::try_from(start_index.unwrap_or(1).max(1)).unwrap_or(1);
    let count = usize::try_from(count.unwrap_or(MAX_RESULTS as i64).max(0))
        .unwrap_or(0)
        .min(MAX_RESULTS);
    let page: Vec<&Value> = resources.iter().skip(start - 1).take(count).collect();
    json!({
        "schemas": [LIST_RESPONSE_SCHEMA],
        "totalResults": total,
        "startIndex": start,
        "itemsPerPage": page.len(),
        "Resources": page,
    })
}

/// The resource without the attributes `excluded` names (`excludedAttributes`), and,
/// when `attributes` is given, only those (and `id`, `schemas`, `meta`, always returned).
pub fn project(mut resource: Value, attributes: Option<&str>, excluded: Option<&str>) -> Value {
    let names = |list: &str| -> Vec<String> {
        list.split(',')
            .map(|name| {
                let name = name.trim();
                // `urn:…:User:userName` names `userName`.
                let short = name.rsplit(':').next().unwrap_or(name);
                short
                    .split('.')
                    .next()
                    .unwrap_or(short)
                    .to_ascii_lowercase()
            })
            .filter(|name| !name.is_empty())
            .collect()
    };
    let Some(object) = resource.as_object_mut() else {
        return resource;
    };
    if let Some(excluded) = excluded {
        let excluded = names(excluded);
        object.retain(|key, _| {
            let key = key.to_ascii_lowercase();
            key == "id" || key == "schemas" || !excluded.contains(&key)
        });
    }
    if let Some(attributes) = attributes {
        let wanted = names(attributes);
        object.retain(|key, _| {
            let key = key.to_ascii_lowercase();
            ["id", "schemas", "meta"].contains(&key.as_str()) || wanted.contains(&key)
        });
    }
    resource
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn pages_are_one_based_and_capped() {
        let resources: Vec<Value> = (0..5).map(|i| json!({"id": i})).collect();
        let page = list_response(&resources, Some(2), Some(2));
        assert_eq!(page["totalResults"], 5);
        assert_eq!(page["startIndex"], 2);
        assert_eq!(page["itemsPerPage"], 2);
        assert_eq!(page["Resources"], json!([{"id": 1}, {"id": 2}]));
        assert_eq!(
            list_response(&resources, Some(0), Some(0))["itemsPerPage"],
            0
        );
        assert_eq!(list_response(&resources, Some(9), None)["itemsPerPage"], 0);
    }

    #[test]
    fn errors_have_the_rfc_shape() {
        let body = ScimError::bad(ScimType::Uniqueness, "taken").body();
        assert_eq!(
            body,
            json!({"schemas": [ERROR_SCHEMA], "status": "400", "scimType": "uniqueness", "detail": "taken"})
        );
    }

    #[test]
    fn members_can_be_left_out() {
        let group =
            json!({"id": "g", "schemas": [GROUP_SCHEMA], "displayName": "dba", "members": []});
        let projected = project(group, None, Some("members"));
        assert!(projected.get("members").is_none());
        assert_eq!(projected["displayName"], "dba");
    }
}

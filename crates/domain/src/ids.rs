use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} {value:?} is invalid: {problem}")]
pub struct InvalidId {
    pub what: &'static str,
    pub value: String,
    pub problem: &'static str,
}

macro_rules! uuid_id {
    ($name:ident, $what:literal) => {
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A new time-ordered id (UUIDv7), so ids sort by creation.
            pub fn generate() -> Self {
                Self(Uuid::now_v7())
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                use utoipa::openapi::schema::{ObjectBuilder, SchemaFormat, Type};
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .format(Some(SchemaFormat::Custom("uuid".into())))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = InvalidId;
            fn from_str(text: &str) -> Result<Self, InvalidId> {
                Uuid::parse_str(text).map(Self).map_err(|_| InvalidId {
                    what: $what,
                    value: text.to_string(),
                    problem: "not a UUID",
                })
            }
        }
    };
}

uuid_id!(RequestId, "request id");
uuid_id!(GrantId, "grant id");
uuid_id!(FindingId, "finding id");

/// The longest name writ accepts for an identity, group, target or entitlement part.
pub const NAME_LENGTH_MAX: usize = 128;

fn check_name(what: &'static str, text: &str, extra: &[char]) -> Result<(), InvalidId> {
    let invalid = |problem| InvalidId {
        what,
        value: text.to_string(),
        problem,
    };
    if text.is_empty() {
        return Err(invalid("must not be empty"));
    }
    if text.len() > NAME_LENGTH_MAX {
        return Err(invalid("is longer than 128 bytes"));
    }
    let allowed = |c: char| {
        c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '@') || extra.contains(&c)
    };
    if !text.chars().all(allowed) {
        return Err(invalid("may contain only letters, digits and _ - . @"));
    }
    Ok(())
}

/// The name of a user, service or agent, unique across all three kinds.
#[derive(
    utoipa::ToSchema, Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(try_from = "String", into = "String")]
#[schema(value_type = String)]
pub struct IdentityName(String);

impl IdentityName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for IdentityName {
    type Err = InvalidId;
    fn from_str(text: &str) -> Result<Self, InvalidId> {
        check_name("identity name", text, &[])?;
        Ok(Self(text.to_string()))
    }
}

impl TryFrom<String> for IdentityName {
    type Error = InvalidId;
    fn try_from(text: String) -> Result<Self, InvalidId> {
        text.parse()
    }
}

impl From<IdentityName> for String {
    fn from(name: IdentityName) -> String {
        name.0
    }
}

impl fmt::Display for IdentityName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

/// `"<target>/<name>"`, e.g. `pg/analytics_read`.
#[derive(
    utoipa::ToSchema, Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(try_from = "String", into = "String")]
#[schema(value_type = String)]
pub struct EntitlementId(String);

impl EntitlementId {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn target(&self) -> &str {
        self.0.split_once('/').map_or("", |(target, _)| target)
    }
}

impl FromStr for EntitlementId {
    type Err = InvalidId;
    fn from_str(text: &str) -> Result<Self, InvalidId> {
        let Some((target, name)) = text.split_once('/') else {
            return Err(InvalidId {
                what: "entitlement id",
                value: text.to_string(),
                problem: "must be \"<target>/<name>\"",
            });
        };
        check_name("entitlement id", target, &[])?;
        check_name("entitlement id", name, &['/'])?;
        Ok(Self(text.to_string()))
    }
}

impl TryFrom<String> for EntitlementId {
    type Error = InvalidId;
    fn try_from(text: String) -> Result<Self, InvalidId> {
        text.parse()
    }
}

impl From<EntitlementId> for String {
    fn from(id: EntitlementId) -> String {
        id.0
    }
}

impl fmt::Display for EntitlementId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentityKind {
    User,
    Service,
    Agent,
}

impl IdentityKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Service => "service",
            Self::Agent => "agent",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sensitivity {
    Low,
    Medium,
    High,
    Critical,
}

impl Sensitivity {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }
}

impl FromStr for Sensitivity {
    type Err = InvalidId;
    fn from_str(text: &str) -> Result<Self, InvalidId> {
        match text {
            "low" => Ok(Self::Low),
            "medium" => Ok(Self::Medium),
            "high" => Ok(Self::High),
            "critical" => Ok(Self::Critical),
            _ => Err(InvalidId {
                what: "sensitivity",
                value: text.to_string(),
                problem: "must be one of low, medium, high, critical",
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entitlement_ids_need_a_target_and_a_name() {
        let id: EntitlementId = "pg/analytics_read".parse().expect("valid");
        assert_eq!(id.target(), "pg");
        assert!("pg".parse::<EntitlementId>().is_err());
        assert!("/x".parse::<EntitlementId>().is_err());
        assert!("pg/".parse::<EntitlementId>().is_err());
        assert!("pg/a b".parse::<EntitlementId>().is_err());
    }

    #[test]
    fn identity_names_reject_quotes_and_spaces() {
        assert!("alice".parse::<IdentityName>().is_ok());
        assert!("svc-report.v2@corp".parse::<IdentityName>().is_ok());
        assert!("x\"; DROP ROLE y; --".parse::<IdentityName>().is_err());
        assert!("".parse::<IdentityName>().is_err());
    }
}

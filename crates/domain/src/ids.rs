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

/// Keeps ids made in the same millisecond in the order they were made (a counter in
/// the bits below the time), as the system clock's `Uuid::now_v7` does.
static V7_CONTEXT: std::sync::Mutex<uuid::ContextV7> =
    std::sync::Mutex::new(uuid::ContextV7::new());

/// A UUIDv7 whose time is `at` (whole milliseconds; before 1970 counts as 1970), after
/// every id made before it in this process, with random bits below.
fn uuid_v7_at(at: crate::Timestamp) -> Uuid {
    let micros = u64::try_from(at.unix_micros()).unwrap_or(0);
    let nanos = u32::try_from((micros % 1_000_000) * 1_000).unwrap_or(0);
    let context = V7_CONTEXT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    Uuid::new_v7(uuid::Timestamp::from_unix(
        &*context,
        micros / 1_000_000,
        nanos,
    ))
}

macro_rules! uuid_id {
    ($name:ident, $what:literal, $tag:literal) => {
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A new time-ordered id (UUIDv7) stamped with `at` (the injected clock's
            /// time, never the system's), so ids sort by creation.
            pub fn generate_at(at: crate::Timestamp) -> Self {
                Self(uuid_v7_at(at))
            }

            /// What the short form starts with, so a request and a grant never look alike.
            pub const TAG: &'static str = $tag;

            /// The short form shown in tables: the tag and the id's last
            /// `SHORT_ID_HEX_LEN` hex digits (the random end of a UUIDv7; its start is
            /// the creation time, shared by ids made in the same minute).
            pub fn short(&self) -> String {
                short_form(Self::TAG, &self.0)
            }

            /// Reads what a person typed for an id of this kind: see [`IdRef`].
            pub fn reference(text: &str) -> Result<IdRef<Self>, InvalidId> {
                IdRef::parse(text, Self::TAG, $what)
            }
        }

        impl From<Uuid> for $name {
            fn from(uuid: Uuid) -> Self {
                Self(uuid)
            }
        }

        #[cfg(feature = "openapi")]
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                use utoipa::openapi::schema::{ObjectBuilder, SchemaFormat, Type};
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .format(Some(SchemaFormat::Custom("uuid".into())))
                    .into()
            }
        }

        #[cfg(feature = "openapi")]
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

uuid_id!(RequestId, "request id", "req_");
uuid_id!(GrantId, "grant id", "grt_");
uuid_id!(FindingId, "finding id", "fnd_");
uuid_id!(DirectoryId, "directory id", "dir_");
uuid_id!(ActivationId, "break-glass activation id", "bgl_");
uuid_id!(CampaignId, "review campaign id", "rvc_");
uuid_id!(ReviewItemId, "review item id", "rvi_");

/// Hex digits of an id shown in its short form.
pub const SHORT_ID_HEX_LEN: usize = 8;
/// The fewest hex digits accepted as an abbreviated id.
pub const ID_FRAGMENT_LEN_MIN: usize = 4;

fn short_form(tag: &str, uuid: &Uuid) -> String {
    let simple = uuid.simple().to_string();
    format!("{tag}{}", &simple[simple.len() - SHORT_ID_HEX_LEN..])
}

/// An id as a person may type it, like git's abbreviated hashes: the whole UUID, or a
/// fragment of at least `ID_FRAGMENT_LEN_MIN` hex digits that starts or ends exactly
/// one id (the short form `req_4f2a9c1b` is such an end). The kind's tag is optional
/// but, when given, must be the right one, so a grant's id is never taken for a request's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdRef<T> {
    Full(T),
    /// Lower-case hex digits and dashes only, so it is safe in a `LIKE` pattern.
    Fragment(String),
}

impl<T: From<Uuid>> IdRef<T> {
    fn parse(text: &str, tag: &str, what: &'static str) -> Result<Self, InvalidId> {
        let invalid = |problem| InvalidId {
            what,
            value: text.to_string(),
            problem,
        };
        let trimmed = text.trim();
        let bare = match trimmed.split_once('_') {
            Some((given, rest)) if format!("{given}_") == tag => rest,
            Some(_) => {
                return Err(invalid(
                    "has the tag of another kind of id (req_ requests, grt_ grants, fnd_ findings)",
                ));
            }
            None => trimmed,
        };
        if let Ok(uuid) = Uuid::parse_str(bare) {
            return Ok(Self::Full(T::from(uuid)));
        }
        let fragment = bare.to_ascii_lowercase();
        if !fragment.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
            return Err(invalid(
                "is neither a UUID nor an abbreviation of one (hex digits)",
            ));
        }
        if fragment.chars().filter(char::is_ascii_hexdigit).count() < ID_FRAGMENT_LEN_MIN {
            return Err(invalid("is too short: give at least 4 hex digits"));
        }
        Ok(Self::Fragment(fragment))
    }
}

#[cfg(test)]
mod id_ref_tests {
    use super::*;

    const AT: crate::Timestamp = crate::Timestamp::from_unix_micros(1_795_000_000_123_456);

    #[test]
    fn ids_carry_the_injected_time_and_sort_by_it() {
        let earlier = RequestId::generate_at(AT);
        let later = RequestId::generate_at(AT.plus_seconds(1));
        assert!(earlier < later);
        let (seconds, nanos) = earlier.0.get_timestamp().expect("v7").to_unix();
        assert_eq!(
            (seconds, nanos / 1_000_000),
            (1_795_000_000, 123),
            "milliseconds of AT"
        );
        assert_ne!(
            RequestId::generate_at(AT),
            RequestId::generate_at(AT),
            "random below the time"
        );
    }

    #[test]
    fn short_forms_are_tagged_by_kind_and_read_back() {
        let request = RequestId::generate_at(AT);
        let grant = GrantId::from(request.0);
        assert!(request.short().starts_with("req_"));
        assert!(grant.short().starts_with("grt_"));
        assert_ne!(request.short(), grant.short());
        assert_eq!(request.short().len(), 4 + SHORT_ID_HEX_LEN);
        let end = &request.short()[4..];
        assert!(request.to_string().ends_with(end));
        assert_eq!(
            RequestId::reference(&request.short()),
            Ok(IdRef::Fragment(end.to_string()))
        );
    }

    #[test]
    fn full_ids_with_or_without_their_tag() {
        let id = GrantId::generate_at(AT);
        assert_eq!(GrantId::reference(&id.to_string()), Ok(IdRef::Full(id)));
        assert_eq!(
            GrantId::reference(&format!("grt_{id}")),
            Ok(IdRef::Full(id))
        );
        assert_eq!(
            GrantId::reference(&id.to_string().to_uppercase()),
            Ok(IdRef::Full(id))
        );
    }

    #[test]
    fn wrong_tags_wildcards_and_short_fragments_are_refused() {
        let id = GrantId::generate_at(AT);
        let problem = |text: &str| RequestId::reference(text).map_err(|e| e.problem);
        assert!(problem(&id.short()).is_err(), "a grant tag for a request");
        assert!(problem("abc").is_err(), "3 hex digits");
        assert!(problem("%").is_err());
        assert!(problem("ab%cd").is_err());
        assert!(problem("ab_cd").is_err());
        assert!(problem("zzzzzz").is_err());
        assert_eq!(
            RequestId::reference("019A-3F"),
            Ok(IdRef::Fragment("019a-3f".into()))
        );
    }
}

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
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(try_from = "String", into = "String")]
#[cfg_attr(feature = "openapi", schema(value_type = String))]
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
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(try_from = "String", into = "String")]
#[cfg_attr(feature = "openapi", schema(value_type = String))]
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

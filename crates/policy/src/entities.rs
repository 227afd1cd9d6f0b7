//! Cedar entities for the configured identities, entitlements and targets, built once
//! at load time. A decision clones only the handful it needs.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::sync::LazyLock;

use cedar_policy::{Entities, Entity, EntityId, EntityTypeName, EntityUid, RestrictedExpression};
use writ_config::{Config, Entitlement, Identity};
use writ_domain::IdentityKind;

/// The entity types of writ's schema, parsed once: parsing a name runs Cedar's parser,
/// several microseconds that every decision would otherwise pay for each uid it builds.
static TYPE_NAMES: LazyLock<HashMap<&'static str, EntityTypeName>> = LazyLock::new(|| {
    [
        "User",
        "Service",
        "Agent",
        "Subject",
        "Group",
        "Entitlement",
        "Target",
        "Action",
        "Request",
    ]
    .into_iter()
    .filter_map(|name| Some((name, EntityTypeName::from_str(name).ok()?)))
    .collect()
});

pub(crate) fn uid(type_name: &str, id: &str) -> EntityUid {
    // Type names are writ's own constants, so parsing cannot fail; fall back defensively.
    let type_name = TYPE_NAMES
        .get(type_name)
        .cloned()
        .or_else(|| EntityTypeName::from_str(type_name).ok())
        .or_else(|| EntityTypeName::from_str("Unknown").ok())
        .unwrap_or_else(|| unreachable!("\"Unknown\" is a valid type name"));
    EntityUid::from_type_name_and_id(type_name, EntityId::new(id))
}

pub(crate) fn identity_type(kind: IdentityKind) -> &'static str {
    match kind {
        IdentityKind::User => "User",
        IdentityKind::Service => "Service",
        IdentityKind::Agent => "Agent",
    }
}

/// An identity as Cedar sees it: its principal entity and its `Subject` twin.
#[derive(Debug)]
pub(crate) struct IdentityEntities {
    pub principal: Entity,
    pub subject: Entity,
    pub kind: IdentityKind,
}

#[derive(Debug)]
pub(crate) struct EntityCatalog {
    pub identities: HashMap<String, IdentityEntities>,
    pub entitlements: HashMap<String, Entity>,
    /// Every entity above in one store, its transitive closure computed once at load,
    /// so a `request` decision builds no entities at all.
    pub all: Entities,
}

fn identity_entities(identity: &Identity) -> Result<IdentityEntities, String> {
    let groups: HashSet<EntityUid> = identity.groups.iter().map(|g| uid("Group", g)).collect();
    let principal_uid = uid(identity_type(identity.kind), identity.name.as_str());
    let mut attrs = HashMap::new();
    if let Some(manager) = &identity.manager {
        attrs.insert(
            "manager".to_string(),
            RestrictedExpression::new_entity_uid(uid("User", manager.as_str())),
        );
    }
    if let Some(owner) = &identity.owner {
        attrs.insert(
            "owner".to_string(),
            RestrictedExpression::new_entity_uid(uid("User", owner.as_str())),
        );
    }
    let built =
        |e: cedar_policy::EntityAttrEvaluationError| format!("identity {}: {e}", identity.name);
    let principal =
        Entity::new(principal_uid.clone(), attrs.clone(), groups.clone()).map_err(built)?;

    attrs.insert(
        "kind".to_string(),
        RestrictedExpression::new_string(identity.kind.as_str().to_string()),
    );
    attrs.insert(
        "name".to_string(),
        RestrictedExpression::new_string(identity.name.to_string()),
    );
    let mut subject_parents = groups;
    subject_parents.insert(principal_uid);
    let subject_uid = uid("Subject", identity.name.as_str());
    let subject = Entity::new(subject_uid, attrs, subject_parents).map_err(built)?;
    Ok(IdentityEntities {
        principal,
        subject,
        kind: identity.kind,
    })
}

fn entitlement_entity(entitlement: &Entitlement) -> Result<Entity, String> {
    let target = uid("Target", &entitlement.target);
    let mut attrs = HashMap::from([
        (
            "sensitivity".to_string(),
            RestrictedExpression::new_string(entitlement.sensitivity.as_str().to_string()),
        ),
        (
            "max_duration_seconds".to_string(),
            RestrictedExpression::new_long(entitlement.max_duration_seconds),
        ),
        (
            "target".to_string(),
            RestrictedExpression::new_entity_uid(target.clone()),
        ),
    ]);
    if let Some(owners) = &entitlement.owners {
        attrs.insert(
            "owners".to_string(),
            RestrictedExpression::new_entity_uid(uid("Group", owners)),
        );
    }
    let this = uid("Entitlement", entitlement.id.as_str());
    let parents = HashSet::from([target]);
    Entity::new(this, attrs, parents).map_err(|e| format!("entitlement {}: {e}", entitlement.id))
}

impl EntityCatalog {
    pub fn build<'a>(
        config: &Config,
        identities: impl IntoIterator<Item = &'a Identity>,
    ) -> Result<Self, String> {
        let identities: HashMap<String, IdentityEntities> = identities
            .into_iter()
            .map(|i| Ok((i.name.to_string(), identity_entities(i)?)))
            .collect::<Result<_, String>>()?;
        let entitlements: HashMap<String, Entity> = config
            .entitlements
            .values()
            .map(|e| Ok((e.id.to_string(), entitlement_entity(e)?)))
            .collect::<Result<_, String>>()?;
        let every = identities
            .values()
            .flat_map(|i| [i.principal.clone(), i.subject.clone()])
            .chain(entitlements.values().cloned());
        let all = Entities::from_entities(every, None).map_err(|e| e.to_string())?;
        Ok(Self {
            identities,
            entitlements,
            all,
        })
    }
}

#[cfg(test)]
mod tests {
    use cedar_policy::Schema;

    use super::TYPE_NAMES;

    /// Every entity type of the shipped schema is parsed once, so no decision parses one.
    #[test]
    fn every_schema_entity_type_is_prebuilt() {
        let (schema, _) =
            Schema::from_cedarschema_str(crate::load::SCHEMA_TEXT).expect("shipped schema");
        let mut missing: Vec<String> = schema
            .entity_types()
            .map(ToString::to_string)
            .filter(|name| !TYPE_NAMES.contains_key(name.as_str()))
            .collect();
        missing.sort();
        assert!(missing.is_empty(), "not prebuilt: {missing:?}");
        for (name, type_name) in TYPE_NAMES.iter() {
            assert_eq!(type_name.to_string(), *name);
        }
    }
}

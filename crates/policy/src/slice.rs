//! A policy set indexed by scope, so a decision evaluates only the policies that can
//! apply to its principal, action and resource.
//!
//! The index is a superset filter: a policy is skipped only when its scope cannot
//! match, and Cedar would skip it for the same reason, so the decision, the
//! determining policies and the erroring policies are exactly those of the whole set.
//! `tests/cedar_conformance.rs` checks that on Cedar's own conformance suite.

use std::collections::HashMap;

use cedar_policy::{
    ActionConstraint, Authorizer, Entities, EntityTypeName, EntityUid, Policy, PolicySet,
    PrincipalConstraint, Request, ResourceConstraint, Response,
};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum ScopeKey {
    Any,
    Entity(EntityUid),
    Type(EntityTypeName),
}

/// action key → principal key → resource key → policy indices. Nested so a lookup
/// borrows its keys instead of building tuples.
type Buckets = HashMap<ScopeKey, HashMap<ScopeKey, HashMap<ScopeKey, Vec<usize>>>>;

#[derive(Debug)]
pub struct SlicedPolicySet {
    whole: PolicySet,
    policies: Vec<Policy>,
    buckets: Buckets,
    /// Template-linked policies are not indexed; a set with any is evaluated whole.
    has_templates: bool,
    authorizer: Authorizer,
}

fn principal_key(constraint: PrincipalConstraint) -> ScopeKey {
    match constraint {
        PrincipalConstraint::Any => ScopeKey::Any,
        PrincipalConstraint::In(uid)
        | PrincipalConstraint::Eq(uid)
        | PrincipalConstraint::IsIn(_, uid) => ScopeKey::Entity(uid),
        PrincipalConstraint::Is(type_name) => ScopeKey::Type(type_name),
    }
}

fn resource_key(constraint: ResourceConstraint) -> ScopeKey {
    match constraint {
        ResourceConstraint::Any => ScopeKey::Any,
        ResourceConstraint::In(uid)
        | ResourceConstraint::Eq(uid)
        | ResourceConstraint::IsIn(_, uid) => ScopeKey::Entity(uid),
        ResourceConstraint::Is(type_name) => ScopeKey::Type(type_name),
    }
}

fn action_keys(constraint: ActionConstraint) -> Vec<ScopeKey> {
    match constraint {
        ActionConstraint::Any => vec![ScopeKey::Any],
        ActionConstraint::Eq(uid) => vec![ScopeKey::Entity(uid)],
        ActionConstraint::In(uids) => uids.into_iter().map(ScopeKey::Entity).collect(),
    }
}

/// The keys under which a policy that can match `uid` may be filed.
fn lookup_keys(uid: &EntityUid, entities: &Entities, with_type: bool) -> Vec<ScopeKey> {
    let mut keys = vec![ScopeKey::Any, ScopeKey::Entity(uid.clone())];
    if with_type {
        keys.push(ScopeKey::Type(uid.type_name().clone()));
    }
    if let Some(ancestors) = entities.ancestors(uid) {
        keys.extend(ancestors.cloned().map(ScopeKey::Entity));
    }
    keys
}

impl SlicedPolicySet {
    pub fn new(whole: PolicySet) -> Self {
        let has_templates = whole.templates().next().is_some();
        let policies: Vec<Policy> = whole.policies().cloned().collect();
        let mut buckets: Buckets = HashMap::new();
        for (index, policy) in policies.iter().enumerate() {
            let principal = principal_key(policy.principal_constraint());
            let resource = resource_key(policy.resource_constraint());
            for action in action_keys(policy.action_constraint()) {
                let bucket = buckets
                    .entry(action)
                    .or_default()
                    .entry(principal.clone())
                    .or_default()
                    .entry(resource.clone())
                    .or_default();
                // `action in [A, A]` must not file the same policy twice.
                if bucket.last() != Some(&index) {
                    bucket.push(index);
                }
            }
        }
        Self {
            whole,
            policies,
            buckets,
            has_templates,
            authorizer: Authorizer::new(),
        }
    }

    pub fn whole(&self) -> &PolicySet {
        &self.whole
    }

    /// Indices of the policies whose scope may match the request.
    pub fn candidates(&self, request: &Request, entities: &Entities) -> Option<Vec<usize>> {
        let (principal, action, resource) =
            (request.principal()?, request.action()?, request.resource()?);
        let principal_keys = lookup_keys(principal, entities, true);
        let action_keys = lookup_keys(action, entities, false);
        let resource_keys = lookup_keys(resource, entities, true);
        let mut found = Vec::new();
        for by_principal in action_keys.iter().filter_map(|key| self.buckets.get(key)) {
            for by_resource in principal_keys
                .iter()
                .filter_map(|key| by_principal.get(key))
            {
                for bucket in resource_keys.iter().filter_map(|key| by_resource.get(key)) {
                    found.extend_from_slice(bucket);
                }
            }
        }
        found.sort_unstable();
        found.dedup();
        Some(found)
    }

    /// Cedar's answer for `request`, evaluating only the policies that can apply.
    pub fn is_authorized(&self, request: &Request, entities: &Entities) -> Response {
        if self.has_templates {
            return self
                .authorizer
                .is_authorized(request, &self.whole, entities);
        }
        let Some(candidates) = self.candidates(request, entities) else {
            return self
                .authorizer
                .is_authorized(request, &self.whole, entities);
        };
        match PolicySet::from_policies(
            candidates
                .into_iter()
                .map(|index| self.policies[index].clone()),
        ) {
            Ok(slice) => self.authorizer.is_authorized(request, &slice, entities),
            // Cannot happen (the policies came from one valid set); stay correct anyway.
            Err(_) => self
                .authorizer
                .is_authorized(request, &self.whole, entities),
        }
    }

    pub fn len(&self) -> usize {
        self.policies.len()
    }

    pub fn is_empty(&self) -> bool {
        self.policies.is_empty()
    }
}

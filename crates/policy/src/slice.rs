//! A policy set indexed by scope, so a decision evaluates only the policies that can
//! apply to its principal, action and resource.
//!
//! The index is a superset filter: a policy is skipped only when its scope cannot
//! match, and Cedar would skip it for the same reason, so the decision, the
//! determining policies and the erroring policies are exactly those of the whole set.
//! `tests/cedar_conformance.rs` checks that on Cedar's own conformance suite.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use cedar_policy::{
    ActionConstraint, Authorizer, Entities, EntityTypeName, EntityUid, Policy, PolicySet,
    PrincipalConstraint, Request, ResourceConstraint, Response,
};

/// What one scope constraint (principal, action or resource) was filed under: any
/// entity, one entity or its descendants, or one type. Looked up by reference, so a
/// decision clones no uid to find its candidates.
#[derive(Debug)]
struct Scope<T> {
    any: Option<T>,
    entity: HashMap<EntityUid, T>,
    of_type: HashMap<EntityTypeName, T>,
}

impl<T> Default for Scope<T> {
    fn default() -> Self {
        Self {
            any: None,
            entity: HashMap::new(),
            of_type: HashMap::new(),
        }
    }
}

#[derive(Debug, Clone)]
enum ScopeKey {
    Any,
    Entity(EntityUid),
    Type(EntityTypeName),
}

impl<T: Default> Scope<T> {
    fn entry(&mut self, key: ScopeKey) -> &mut T {
        match key {
            ScopeKey::Any => self.any.get_or_insert_with(T::default),
            ScopeKey::Entity(uid) => self.entity.entry(uid).or_default(),
            ScopeKey::Type(name) => self.of_type.entry(name).or_default(),
        }
    }
}

impl<T> Scope<T> {
    /// Every entry a policy that can match `uid` may be filed under: any, the entity
    /// itself, its ancestors and (with `with_type`) its type.
    fn matching<'a>(
        &'a self,
        uid: &'a EntityUid,
        entities: &'a Entities,
        with_type: bool,
    ) -> impl Iterator<Item = &'a T> + 'a {
        let ancestors = entities.ancestors(uid).into_iter().flatten();
        self.any
            .iter()
            .chain(self.entity.get(uid))
            .chain(
                with_type
                    .then(|| self.of_type.get(uid.type_name()))
                    .flatten(),
            )
            .chain(ancestors.filter_map(|ancestor| self.entity.get(ancestor)))
    }
}

/// action → principal → resource → policy indices.
type Buckets = Scope<Scope<Scope<Vec<usize>>>>;

/// The most distinct slices kept built; past it the cache starts again empty.
const SLICES_KEPT: usize = 4096;

#[derive(Debug)]
pub struct SlicedPolicySet {
    whole: PolicySet,
    policies: Vec<Policy>,
    buckets: Buckets,
    /// Template-linked policies are not indexed; a set with any is evaluated whole.
    has_templates: bool,
    authorizer: Authorizer,
    /// Slices already built, by their policies' indices: requests alike (same groups,
    /// same entitlement) evaluate the same few policies.
    slices: RwLock<HashMap<Vec<usize>, Arc<PolicySet>>>,
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

impl SlicedPolicySet {
    pub fn new(whole: PolicySet) -> Self {
        let has_templates = whole.templates().next().is_some();
        let policies: Vec<Policy> = whole.policies().cloned().collect();
        let mut buckets = Buckets::default();
        for (index, policy) in policies.iter().enumerate() {
            let principal = principal_key(policy.principal_constraint());
            let resource = resource_key(policy.resource_constraint());
            for action in action_keys(policy.action_constraint()) {
                let bucket = buckets
                    .entry(action)
                    .entry(principal.clone())
                    .entry(resource.clone());
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
            slices: RwLock::new(HashMap::new()),
        }
    }

    pub fn whole(&self) -> &PolicySet {
        &self.whole
    }

    /// Indices of the policies whose scope may match the request.
    pub fn candidates(&self, request: &Request, entities: &Entities) -> Option<Vec<usize>> {
        let (principal, action, resource) =
            (request.principal()?, request.action()?, request.resource()?);
        let mut found = Vec::new();
        for by_principal in self.buckets.matching(action, entities, false) {
            for by_resource in by_principal.matching(principal, entities, true) {
                for bucket in by_resource.matching(resource, entities, true) {
                    found.extend_from_slice(bucket);
                }
            }
        }
        found.sort_unstable();
        found.dedup();
        Some(found)
    }

    /// The policy set of these candidates, built once and kept.
    fn slice(&self, candidates: Vec<usize>) -> Option<Arc<PolicySet>> {
        // A poisoned lock only means another thread panicked mid-insert: rebuild.
        if let Some(slice) = self
            .slices
            .read()
            .ok()
            .and_then(|slices| slices.get(&candidates).cloned())
        {
            return Some(slice);
        }
        let slice = Arc::new(
            PolicySet::from_policies(candidates.iter().map(|&index| self.policies[index].clone()))
                .ok()?,
        );
        if let Ok(mut slices) = self.slices.write() {
            if slices.len() >= SLICES_KEPT {
                slices.clear();
            }
            slices.insert(candidates, slice.clone());
        }
        Some(slice)
    }

    /// Cedar's answer for `request`, evaluating only the policies that can apply.
    pub fn is_authorized(&self, request: &Request, entities: &Entities) -> Response {
        let slice = if self.has_templates {
            None
        } else {
            self.candidates(request, entities)
                .and_then(|candidates| self.slice(candidates))
        };
        match slice {
            Some(slice) => self.authorizer.is_authorized(request, &slice, entities),
            // With templates, a request without a principal, action or resource, or a
            // slice that cannot be built (the policies came from one valid set, so it
            // cannot happen): the whole set, which is always correct.
            None => self
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

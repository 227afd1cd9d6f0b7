//! Differential test that needs nothing outside the repository: generated policy sets,
//! entity hierarchies and requests, evaluated by writ's sliced set and by Cedar's own
//! `Authorizer::is_authorized` over the whole set. The two must agree on the decision,
//! the determining policies and the erroring policies, every time.
//!
//! The generator aims at what the slice index reasons about: every scope form
//! (`==`, `in`, `is`, `is … in`, action lists), hierarchies several levels deep for
//! principals, resources and actions, policies whose scope names entities that do not
//! exist, and conditions that error (a missing attribute) so erroring policies are
//! compared too. `cedar_conformance.rs` runs Cedar's own suite where it is present.

mod common;

use std::io::Write;
use std::str::FromStr;

use cedar_policy::{Authorizer, Context, Decision, Entities, EntityUid, PolicySet, Request};
use common::summary;
use proptest::prelude::*;
use writ_policy::SlicedPolicySet;

const USERS: usize = 4;
const GROUPS: usize = 3;
const RESOURCES: usize = 4;
const FOLDERS: usize = 3;
const ACTIONS: usize = 3;
const ACTION_GROUPS: usize = 2;

/// One generated world: who is in what, and which users carry a `level`.
#[derive(Debug, Clone)]
struct World {
    /// For each user, the groups it is directly in.
    user_groups: Vec<Vec<usize>>,
    /// For each group, the higher-numbered groups it is in (acyclic by construction).
    group_parents: Vec<Vec<usize>>,
    resource_folders: Vec<Vec<usize>>,
    folder_parents: Vec<Vec<usize>>,
    action_groups: Vec<Vec<usize>>,
    /// `None`: the user has no `level` attribute, so conditions reading it error.
    user_levels: Vec<Option<i64>>,
    resource_owners: Vec<usize>,
}

fn subset(upper: usize) -> impl Strategy<Value = Vec<usize>> {
    proptest::collection::btree_set(0..upper, 0..=upper).prop_map(|s| s.into_iter().collect())
}

/// Parents drawn only from higher indices, so the hierarchy has no cycles.
fn acyclic_parents(count: usize) -> impl Strategy<Value = Vec<Vec<usize>>> {
    proptest::collection::vec(subset(count), count).prop_map(move |sets| {
        sets.into_iter()
            .enumerate()
            .map(|(i, parents)| parents.into_iter().filter(|p| *p > i).collect())
            .collect()
    })
}

fn world() -> impl Strategy<Value = World> {
    (
        proptest::collection::vec(subset(GROUPS), USERS),
        acyclic_parents(GROUPS),
        proptest::collection::vec(subset(FOLDERS), RESOURCES),
        acyclic_parents(FOLDERS),
        proptest::collection::vec(subset(ACTION_GROUPS), ACTIONS),
        proptest::collection::vec(proptest::option::of(0i64..5), USERS),
        proptest::collection::vec(0..USERS, RESOURCES),
    )
        .prop_map(
            |(
                user_groups,
                group_parents,
                resource_folders,
                folder_parents,
                action_groups,
                user_levels,
                resource_owners,
            )| World {
                user_groups,
                group_parents,
                resource_folders,
                folder_parents,
                action_groups,
                user_levels,
                resource_owners,
            },
        )
}

fn uid_json(kind: &str, id: String) -> serde_json::Value {
    serde_json::json!({ "type": kind, "id": id })
}

fn entities_json(world: &World) -> serde_json::Value {
    let mut all = Vec::new();
    let parents = |kind: &str, prefix: &str, of: &[usize]| -> Vec<serde_json::Value> {
        of.iter()
            .map(|p| uid_json(kind, format!("{prefix}{p}")))
            .collect()
    };
    for (u, groups) in world.user_groups.iter().enumerate() {
        let mut attrs = serde_json::Map::new();
        if let Some(level) = world.user_levels[u] {
            attrs.insert("level".into(), level.into());
        }
        all.push(serde_json::json!({
            "uid": uid_json("User", format!("u{u}")),
            "attrs": attrs,
            "parents": parents("Group", "g", groups),
        }));
    }
    for (g, up) in world.group_parents.iter().enumerate() {
        all.push(serde_json::json!({
            "uid": uid_json("Group", format!("g{g}")),
            "attrs": {},
            "parents": parents("Group", "g", up),
        }));
    }
    for (r, folders) in world.resource_folders.iter().enumerate() {
        all.push(serde_json::json!({
            "uid": uid_json("Resource", format!("r{r}")),
            "attrs": { "owner": { "__entity": { "type": "User", "id": format!("u{}", world.resource_owners[r]) } } },
            "parents": parents("Folder", "f", folders),
        }));
    }
    for (f, up) in world.folder_parents.iter().enumerate() {
        all.push(serde_json::json!({
            "uid": uid_json("Folder", format!("f{f}")),
            "attrs": {},
            "parents": parents("Folder", "f", up),
        }));
    }
    for (a, groups) in world.action_groups.iter().enumerate() {
        all.push(serde_json::json!({
            "uid": uid_json("Action", format!("a{a}")),
            "attrs": {},
            "parents": parents("Action", "ag", groups),
        }));
    }
    for g in 0..ACTION_GROUPS {
        all.push(serde_json::json!({
            "uid": uid_json("Action", format!("ag{g}")),
            "attrs": {},
            "parents": [],
        }));
    }
    serde_json::Value::Array(all)
}

/// Scope text for the principal: every form Cedar has, including entities that do
/// not exist (`u9`, `g9`) and a type that never matches (`Folder`).
fn principal_scope() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("principal".to_string()),
        (0..USERS + 1)
            .prop_map(|u| format!("principal == User::\"u{}\"", if u == USERS { 9 } else { u })),
        (0..GROUPS + 1).prop_map(|g| format!(
            "principal in Group::\"g{}\"",
            if g == GROUPS { 9 } else { g }
        )),
        (0..USERS).prop_map(|u| format!("principal in User::\"u{u}\"")),
        Just("principal is User".to_string()),
        Just("principal is Folder".to_string()),
        (0..GROUPS).prop_map(|g| format!("principal is User in Group::\"g{g}\"")),
        (0..GROUPS).prop_map(|g| format!("principal is Group in Group::\"g{g}\"")),
    ]
}

fn action_scope() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("action".to_string()),
        (0..ACTIONS).prop_map(|a| format!("action == Action::\"a{a}\"")),
        (0..ACTION_GROUPS).prop_map(|g| format!("action in Action::\"ag{g}\"")),
        (0..ACTIONS).prop_map(|a| format!("action in Action::\"a{a}\"")),
        (subset(ACTIONS), subset(ACTION_GROUPS)).prop_map(|(actions, groups)| {
            let mut uids: Vec<String> = actions
                .iter()
                .map(|a| format!("Action::\"a{a}\""))
                .chain(groups.iter().map(|g| format!("Action::\"ag{g}\"")))
                .collect();
            // `in [A, A]` must work too.
            if let Some(first) = uids.first().cloned() {
                uids.push(first);
            }
            format!("action in [{}]", uids.join(", "))
        }),
    ]
}

fn resource_scope() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("resource".to_string()),
        (0..RESOURCES).prop_map(|r| format!("resource == Resource::\"r{r}\"")),
        (0..FOLDERS + 1).prop_map(|f| format!(
            "resource in Folder::\"f{}\"",
            if f == FOLDERS { 9 } else { f }
        )),
        Just("resource is Resource".to_string()),
        Just("resource is Group".to_string()),
        (0..FOLDERS).prop_map(|f| format!("resource is Resource in Folder::\"f{f}\"")),
    ]
}

/// Conditions, some of which error when the principal has no `level` (or is not a
/// user at all), so policies end up determining, not applying, and erroring.
fn condition() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        (0i64..5).prop_map(|n| format!(" when {{ principal.level >= {n} }}")),
        Just(" when { resource.owner == principal }".to_string()),
        (0i64..24).prop_map(|h| format!(" when {{ context.hour < {h} }}")),
        (0i64..5).prop_map(|n| format!(" unless {{ principal.level < {n} }}")),
        (0..GROUPS).prop_map(|g| format!(" when {{ principal in Group::\"g{g}\" }}")),
        Just(" when { context has ticket }".to_string()),
    ]
}

fn policy() -> impl Strategy<Value = String> {
    (
        // Mostly permits: with as many forbids as permits, allows become rare.
        proptest::bool::weighted(0.8),
        principal_scope(),
        action_scope(),
        resource_scope(),
        condition(),
    )
        .prop_map(|(permit, principal, action, resource, when)| {
            let effect = if permit { "permit" } else { "forbid" };
            format!("{effect}({principal}, {action}, {resource}){when};")
        })
}

#[derive(Debug, Clone)]
struct Ask {
    /// Principals include groups, so `is Group` scopes get exercised.
    principal: (bool, usize),
    action: usize,
    resource: (bool, usize),
    hour: i64,
    ticket: bool,
}

fn ask() -> impl Strategy<Value = Ask> {
    (
        (any::<bool>(), 0..USERS.max(GROUPS)),
        0..ACTIONS,
        (any::<bool>(), 0..RESOURCES.max(FOLDERS)),
        0i64..24,
        any::<bool>(),
    )
        .prop_map(|(principal, action, resource, hour, ticket)| Ask {
            principal,
            action,
            resource,
            hour,
            ticket,
        })
}

fn request_for(ask: &Ask) -> Request {
    let principal = match ask.principal {
        (true, n) => format!("Group::\"g{}\"", n % GROUPS),
        (false, n) => format!("User::\"u{}\"", n % USERS),
    };
    let resource = match ask.resource {
        (true, n) => format!("Folder::\"f{}\"", n % FOLDERS),
        (false, n) => format!("Resource::\"r{}\"", n % RESOURCES),
    };
    let uid = |text: &str| EntityUid::from_str(text).expect("generated uids parse");
    let mut context = serde_json::json!({ "hour": ask.hour });
    if ask.ticket {
        context["ticket"] = "OPS-1".into();
    }
    Request::new(
        uid(&principal),
        uid(&format!("Action::\"a{}\"", ask.action)),
        uid(&resource),
        Context::from_json_value(context, None).expect("generated context"),
        None,
    )
    .expect("a request without a schema always builds")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn sliced_evaluation_matches_the_whole_set(
        world in world(),
        policies in proptest::collection::vec(policy(), 0..24),
        asks in proptest::collection::vec(ask(), 1..12),
    ) {
        let text = policies.join("\n");
        let whole = PolicySet::from_str(&text).expect("generated policies parse");
        let entities = Entities::from_json_value(entities_json(&world), None)
            .expect("generated entities load");
        let sliced = SlicedPolicySet::new(whole.clone());
        let authorizer = Authorizer::new();
        for ask in &asks {
            let request = request_for(ask);
            let raw = summary(&authorizer.is_authorized(&request, &whole, &entities));
            let writ = summary(&sliced.is_authorized(&request, &entities));
            prop_assert_eq!(&writ, &raw, "request {:?} on policies:\n{}", ask, text);
        }
    }
}

/// The generator must reach every interesting outcome, or the comparison above proves
/// little: allows and denies, determining policies, and erroring policies.
#[test]
fn the_generator_reaches_allow_deny_and_errors() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    let mut runner = TestRunner::deterministic();
    let (mut allows, mut denies, mut with_errors, mut forbids_determining) = (0, 0, 0, 0);
    for _ in 0..200 {
        let world = world().new_tree(&mut runner).expect("tree").current();
        let policies = proptest::collection::vec(policy(), 1..24)
            .new_tree(&mut runner)
            .expect("tree")
            .current();
        let ask = ask().new_tree(&mut runner).expect("tree").current();
        let whole = PolicySet::from_str(&policies.join("\n")).expect("parse");
        let entities = Entities::from_json_value(entities_json(&world), None).expect("entities");
        let response = Authorizer::new().is_authorized(&request_for(&ask), &whole, &entities);
        let (decision, reason, errors) = summary(&response);
        match decision {
            Decision::Allow => allows += 1,
            Decision::Deny => denies += 1,
        }
        if !errors.is_empty() {
            with_errors += 1;
        }
        if decision == Decision::Deny && !reason.is_empty() {
            forbids_determining += 1;
        }
    }
    let _ = writeln!(
        std::io::stderr(),
        "sliced_differential: generated sets reach {allows} allow, {denies} deny ({forbids_determining} by a forbid), {with_errors} with erroring policies, of 200"
    );
    assert!(allows >= 20, "allows: {allows}");
    assert!(denies >= 20, "denies: {denies}");
    assert!(with_errors >= 20, "with errors: {with_errors}");
    assert!(forbids_determining >= 10, "forbids: {forbids_determining}");
}

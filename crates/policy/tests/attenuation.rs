//! Whatever is asked, an agent acting for a user never gets more than that user would
//! asking for the same access for themselves: never allowed where they are denied,
//! never fewer approvals, never a longer cap. A property test over the corpus's
//! identities with policies that cap, demand approvals, refuse toxic combinations and
//! look at the chain.

use std::path::PathBuf;

use proptest::prelude::*;
use writ_config::Config;
use writ_domain::{
    Decision, DecisionOutcome, EntitlementId, IdentityName, PERMANENT_SECONDS, Timestamp,
};
use writ_policy::{PolicyEngine, RequestFacts};

const POLICIES: &str = r#"
@id("engineers-read")
@max_duration("1h")
permit (principal in Group::"engineers", action == Action::"request", resource == Entitlement::"pg/read");

@id("engineers-admin")
@approvals("1")
@max_duration("4h")
permit (principal in Group::"engineers", action == Action::"request", resource == Entitlement::"pg/admin");

@id("dba-root-for-good")
@permanent("true")
@approvals("2")
permit (principal in Group::"dba", action == Action::"request", resource == Entitlement::"pg/root");

@id("agents-anything")
@max_duration("8h")
permit (principal is Agent, action == Action::"request", resource)
when { context has on_behalf_of };

@id("agents-forever")
@permanent("true")
permit (principal is Agent, action == Action::"request", resource == Entitlement::"pg/read");

@id("admin-not-beside-root")
@reason("pg/admin and pg/root are a toxic combination")
forbid (principal, action == Action::"request", resource == Entitlement::"pg/admin")
when { context.holds.contains(Entitlement::"pg/root") };

@id("no-deep-chains")
@reason("not through more than one agent")
forbid (principal, action == Action::"request", resource == Entitlement::"pg/root")
when { context.delegation_depth > 1 };
"#;

fn engine() -> &'static PolicyEngine {
    static ENGINE: std::sync::OnceLock<PolicyEngine> = std::sync::OnceLock::new();
    ENGINE.get_or_init(load)
}

fn load() -> PolicyEngine {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/common.toml");
    let text = std::fs::read_to_string(&path).expect("common.toml");
    let config = Config::from_toml(&path, &text).expect("config");
    PolicyEngine::from_sources(&[("p.cedar".into(), POLICIES.into())], &config)
        .expect("policies load")
}

const ENTITLEMENTS: [&str; 3] = ["pg/read", "pg/admin", "pg/root"];

fn held(mask: u8) -> Vec<EntitlementId> {
    ENTITLEMENTS
        .iter()
        .enumerate()
        .filter(|(i, _)| mask & (1 << i) != 0)
        .map(|(_, id)| id.parse().expect("id"))
        .collect()
}

fn names(list: &[&str]) -> Vec<IdentityName> {
    list.iter().map(|n| n.parse().expect("name")).collect()
}

fn never_more(agent: &Decision, own: &Decision) -> Result<(), String> {
    if own.outcome == DecisionOutcome::Deny {
        return (agent.outcome == DecisionOutcome::Deny)
            .then_some(())
            .ok_or_else(|| format!("the user is denied, the agent is not: {agent:?}"));
    }
    if agent.outcome == DecisionOutcome::Deny {
        return Ok(());
    }
    if agent.approvals_required < own.approvals_required {
        return Err(format!("fewer approvals: {agent:?} against {own:?}"));
    }
    match (agent.max_duration_seconds, own.max_duration_seconds) {
        (None, Some(cap)) => Err(format!("uncapped where the user has {cap}")),
        (Some(a), Some(o)) if a > o => Err(format!("a cap of {a} where the user has {o}")),
        _ => Ok(()),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn an_agent_never_gets_more_than_its_user(
        entitlement in 0..3usize,
        duration in prop_oneof![1..50_000i64, Just(PERMANENT_SECONDS)],
        agent_holds in 0..8u8,
        user_holds in 0..8u8,
        user in prop_oneof![Just("bob"), Just("alice"), Just("dave")],
        deep in any::<bool>(),
    ) {
        let engine = engine();
        let now = Timestamp::from_unix_micros(1_795_000_000_000_000);
        let (agent_held, user_held) = (held(agent_holds), held(user_holds));
        let chain = if deep {
            names(&["agent-triage", "agent-planner"])
        } else {
            names(&["agent-triage"])
        };
        let asked = RequestFacts {
            requester: "agent-triage",
            subject: "agent-triage",
            entitlement: ENTITLEMENTS[entitlement],
            duration_seconds: duration,
            justification: "property",
            ticket: None,
            on_behalf_of: Some(user),
            actors: &chain,
            holds: &agent_held,
            on_behalf_of_holds: &user_held,
            effective: None,
            now,
        };
        let agent = engine.decide_request(&asked).value;
        let own = engine
            .decide_request(&RequestFacts {
                requester: user,
                subject: user,
                on_behalf_of: None,
                actors: &[],
                holds: &user_held,
                on_behalf_of_holds: &[],
                ..asked.clone()
            })
            .value;
        prop_assert!(never_more(&agent, &own).is_ok(), "{:?}", never_more(&agent, &own));
    }
}

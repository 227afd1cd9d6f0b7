//! The policy corpus: each folder under `tests/corpus/` holds policies, and either
//! `cases.json` (requests with the decision expected) or `expect.json` (the load error
//! expected). Identities and entitlements come from `tests/corpus/common.toml`.

use std::path::PathBuf;

use serde::Deserialize;
use writ_config::Config;
use writ_domain::{DecisionOutcome, Request, RequestId, Ticket, Timestamp};
use writ_policy::{ApproveFacts, PolicyEngine, RequestFacts};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    description: String,
    #[serde(default = "request_action")]
    action: String,
    approver: Option<String>,
    requester: String,
    subject: Option<String>,
    entitlement: String,
    duration_seconds: i64,
    #[serde(default = "justification")]
    justification: String,
    ticket: Option<Ticket>,
    on_behalf_of: Option<String>,
    /// The agents of a token's act chain, the requester first.
    #[serde(default)]
    actors: Vec<String>,
    /// Entitlements the subject already holds (`context.holds`).
    #[serde(default)]
    holds: Vec<String>,
    /// Entitlements the user an agent acts for already holds.
    #[serde(default)]
    on_behalf_of_holds: Vec<String>,
    now: Option<String>,
    expect: Expect,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    outcome: Option<DecisionOutcome>,
    approvals_required: Option<u32>,
    policies: Option<Vec<String>>,
    reasons: Option<Vec<String>>,
    max_duration_seconds: Option<i64>,
    errors: Option<Vec<String>>,
    permitted: Option<bool>,
}

#[derive(Deserialize)]
struct LoadExpect {
    load_error: String,
}

fn request_action() -> String {
    "request".into()
}

fn justification() -> String {
    "corpus".into()
}

fn corpus() -> PathBuf {
    manifest_dir().join("tests/corpus")
}

fn run_case(engine: &PolicyEngine, case: &Case) -> Vec<String> {
    let mut failures = Vec::new();
    let subject = case.subject.as_deref().unwrap_or(&case.requester);
    let now = case
        .now
        .as_deref()
        .map_or(Timestamp::from_unix_micros(1_795_000_000_000_000), |t| {
            Timestamp::parse_rfc3339(t).expect("now")
        });
    let holds: Vec<writ_domain::EntitlementId> = case
        .holds
        .iter()
        .map(|id| id.parse().expect("held entitlement"))
        .collect();
    let requester: writ_domain::IdentityName = case.requester.parse().expect("requester");
    let on_behalf_of: Option<writ_domain::IdentityName> = case
        .on_behalf_of
        .as_ref()
        .map(|u| u.parse().expect("on_behalf_of"));
    let actors: Vec<writ_domain::IdentityName> = case
        .actors
        .iter()
        .map(|a| a.parse().expect("actor"))
        .collect();
    let on_behalf_of_holds: Vec<writ_domain::EntitlementId> = case
        .on_behalf_of_holds
        .iter()
        .map(|id| id.parse().expect("held entitlement"))
        .collect();
    let facts = RequestFacts {
        requester: &case.requester,
        subject,
        entitlement: &case.entitlement,
        duration_seconds: case.duration_seconds,
        justification: &case.justification,
        ticket: case.ticket.as_ref(),
        on_behalf_of: case.on_behalf_of.as_deref(),
        actors: writ_domain::acting_agents(&requester, on_behalf_of.as_ref(), &actors),
        holds: &holds,
        on_behalf_of_holds: &on_behalf_of_holds,
        effective: None,
        now,
    };
    let mut check = |what: &str, ok: bool, detail: String| {
        if !ok {
            failures.push(format!("{}: {what}: {detail}", case.description));
        }
    };
    if case.action == "approve" {
        let decision = engine.decide_request(&facts).value;
        let request = Request {
            id: RequestId::generate_at(writ_domain::Timestamp::from_unix_micros(
                1_795_000_000_000_000,
            )),
            state: writ_domain::lifecycle::RequestState::PendingApproval,
            requester: case.requester.parse().expect("requester"),
            subject: subject.parse().expect("subject"),
            entitlement: case.entitlement.parse().expect("entitlement"),
            justification: case.justification.clone(),
            ticket: case.ticket.clone(),
            on_behalf_of: on_behalf_of.clone(),
            actors: actors.clone(),
            on_behalf_of_holds: on_behalf_of_holds.clone(),
            requested_duration_seconds: case.duration_seconds,
            duration_seconds: case.duration_seconds,
            decision,
            approvals: Vec::new(),
            grant_id: None,
            created_at: now,
            pending_expires_at: None,
            closed_by: None,
            close_comment: None,
            holds: holds.clone(),
            extends: None,
            break_glass: None,
            authzen: None,
            entitlement_facts: None,
            effective: None,
        };
        let approver = case
            .approver
            .as_deref()
            .expect("approve cases name an approver");
        let evaluation = engine.may_approve(&ApproveFacts {
            actor: approver,
            request: &request,
            now,
        });
        check(
            "permitted",
            Some(evaluation.value) == case.expect.permitted,
            format!("got {}", evaluation.value),
        );
        match &case.expect.errors {
            // Each expected policy is named in an error, and there are no others.
            Some(expected) => check(
                "errors",
                evaluation.errors.len() == expected.len()
                    && expected.iter().all(|id| {
                        evaluation
                            .errors
                            .iter()
                            .any(|e| e.contains(&format!("`{id}`")))
                    }),
                format!("{:?}", evaluation.errors),
            ),
            None => check(
                "no errors",
                evaluation.errors.is_empty(),
                format!("{:?}", evaluation.errors),
            ),
        }
        return failures;
    }
    let evaluation = match case.action.as_str() {
        "request" => engine.decide_request(&facts),
        "break_glass" => engine.decide_break_glass(&facts),
        other => panic!("{}: unknown action {other:?}", case.description),
    };
    let decision = &evaluation.value;
    let expect = &case.expect;
    if let Some(outcome) = expect.outcome {
        check(
            "outcome",
            decision.outcome == outcome,
            format!("got {:?} ({:?})", decision.outcome, decision.reasons),
        );
    }
    if let Some(n) = expect.approvals_required {
        check(
            "approvals_required",
            decision.approvals_required == n,
            format!("got {}", decision.approvals_required),
        );
    }
    if let Some(policies) = &expect.policies {
        check(
            "policies",
            &decision.policies == policies,
            format!("got {:?}", decision.policies),
        );
    }
    if let Some(reasons) = &expect.reasons {
        check(
            "reasons",
            &decision.reasons == reasons,
            format!("got {:?}", decision.reasons),
        );
    }
    if expect.max_duration_seconds.is_some() {
        check(
            "max_duration_seconds",
            decision.max_duration_seconds == expect.max_duration_seconds,
            format!("got {:?}", decision.max_duration_seconds),
        );
    }
    if let Some(errors) = &expect.errors {
        let erroring: Vec<bool> = errors
            .iter()
            .map(|id| {
                evaluation
                    .errors
                    .iter()
                    .any(|e| e.contains(&format!("`{id}`")))
            })
            .collect();
        check(
            "errors",
            erroring.iter().all(|b| *b) && evaluation.errors.len() == errors.len(),
            format!("got {:?}", evaluation.errors),
        );
    }
    check(
        "policy hash",
        decision.policy_hash == engine.policy_hash(),
        decision.policy_hash.clone(),
    );
    failures
}

#[test]
fn every_corpus_case_decides_as_expected() {
    let root = corpus();
    let config_text = std::fs::read_to_string(root.join("common.toml")).expect("common.toml");
    let config = Config::from_toml(&root.join("common.toml"), &config_text).expect("common config");
    let mut folders: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("corpus")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    folders.sort();
    let mut failures = Vec::new();
    let mut cases_run = 0;
    for folder in &folders {
        let name = folder
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let loaded = PolicyEngine::load(folder, &config);
        if let Ok(text) = std::fs::read_to_string(folder.join("expect.json")) {
            let expect: LoadExpect = serde_json::from_str(&text).expect("expect.json");
            match loaded {
                Ok(_) => failures.push(format!(
                    "{name}: loaded, but should fail with {:?}",
                    expect.load_error
                )),
                Err(error) => {
                    let message = error
                        .to_string()
                        .replace(&format!("{}/", folder.display()), "");
                    if !message.contains(&expect.load_error) {
                        failures.push(format!(
                            "{name}: expected {:?} in {message:?}",
                            expect.load_error
                        ));
                    }
                }
            }
            cases_run += 1;
            continue;
        }
        let engine = match loaded {
            Ok(engine) => engine,
            Err(error) => {
                failures.push(format!("{name}: does not load: {error}"));
                continue;
            }
        };
        let cases: Vec<Case> = serde_json::from_str(
            &std::fs::read_to_string(folder.join("cases.json")).expect("cases.json"),
        )
        .expect("cases JSON");
        for case in &cases {
            failures.extend(
                run_case(&engine, case)
                    .into_iter()
                    .map(|f| format!("{name}: {f}")),
            );
            cases_run += 1;
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    assert!(cases_run >= 20, "only {cases_run} cases ran");
}

/// Read at run time, not baked in at build time: a build shared between two checkouts
/// (one target directory) must read the files of the checkout under test.
fn manifest_dir() -> std::path::PathBuf {
    std::path::PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR"),
    )
}

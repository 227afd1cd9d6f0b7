//! Offline policy tools beyond `policy check`: `policy lint`, `policy explain`,
//! `policy replay`.

use std::path::Path;

use writ_domain::{Clock as _, DecisionOutcome, Request, RequestId};
use writ_engine::SystemClock;
use writ_policy::{LintFinding, PolicyEngine, PolicyVerdict, RequestFacts};
use writ_store::IdTable;

use crate::offline::{load_config, load_policy};
use crate::stdout::outln;
use crate::{EXIT_FAILED, EXIT_NOT_FOUND, Failure};

/// Requests a lint's dry run evaluates at most (each is a few policy evaluations).
const LINT_EVALUATIONS_MAX: usize = 50_000;

/// The lint findings of a loaded policy set.
pub fn findings(policy: &PolicyEngine, config: &writ_config::Config) -> Vec<LintFinding> {
    policy.lint(config, SystemClock.now(), LINT_EVALUATIONS_MAX)
}

/// One line per finding: `policy  rule  message`.
pub fn print(findings: &[LintFinding], prefix: &str) {
    for finding in findings {
        outln!(
            "{prefix}{}: {} — {}",
            finding.policy,
            finding.rule.as_str(),
            finding.message
        );
    }
}

/// `writ policy lint`: exits 1 when it finds something.
pub fn policy_lint(config_path: &Path) -> Result<(), Failure> {
    let config = load_config(config_path)?;
    let policy = load_policy(&config)?;
    let found = findings(&policy, &config);
    if found.is_empty() {
        outln!(
            "lint: nothing to say about {} policies (policy set {})",
            policy.policy_count(),
            policy.policy_hash()
        );
        return Ok(());
    }
    print(&found, "");
    Err(Failure::with_code(
        EXIT_FAILED,
        format!(
            "lint: {} finding(s); fix them, or add @lint_allow(\"RULE\") to a policy that means it",
            found.len()
        ),
    ))
}

fn verdict_text(verdict: &PolicyVerdict) -> String {
    match verdict {
        PolicyVerdict::Determined => "SET THE OUTCOME".into(),
        PolicyVerdict::Applied => "applied, but did not set the outcome".into(),
        PolicyVerdict::ScopeDoesNotMatch => {
            "did not apply: its scope (principal, action, resource) does not match".into()
        }
        PolicyVerdict::ConditionsFalse => {
            "did not apply: its scope matches, its conditions were not met".into()
        }
        PolicyVerdict::Errored(error) => {
            format!("could not be evaluated (counted as not satisfied; a forbid denies): {error}")
        }
    }
}

/// `writ policy explain REQUEST_ID`: the decision of record, from the ledger, and each
/// policy's part in it when the policy set at hand is the one that decided.
pub async fn policy_explain(
    config_path: &Path,
    id: &str,
    policies: Option<&Path>,
) -> Result<(), Failure> {
    let config = load_config(config_path)?;
    let policy = match policies {
        Some(dir) => PolicyEngine::load(dir, &config)
            .map_err(|e| Failure::usage(format!("{}: {e}", dir.display())))?,
        None => load_policy(&config)?,
    };
    let store = crate::offline::open_store(&config).await?;
    let id = crate::offline::resolve_id(
        &store,
        id,
        RequestId::reference,
        IdTable::Requests,
        "request",
    )
    .await?;
    let event = store
        .request_created_event(id)
        .await
        .map_err(|e| Failure::failed(e.to_string()))?;
    store.close().await;
    let event = event.ok_or_else(|| {
        Failure::with_code(EXIT_NOT_FOUND, format!("no request.created event for {id}"))
    })?;
    let data: serde_json::Value =
        serde_json::from_str(&event.data).map_err(|e| Failure::failed(e.to_string()))?;
    let request: Request = serde_json::from_value(data["request"].clone())
        .map_err(|e| Failure::failed(format!("event {}: {e}", event.seq)))?;
    let recorded = &request.decision;
    outln!(
        "request {} — {} asked for {} for {}, {} s, at {}",
        request.id.short(),
        request.requester,
        request.entitlement,
        request.subject,
        request.requested_duration_seconds,
        request.created_at
    );
    outln!("  ledger event {} ({})", event.seq, event.hash);
    outln!(
        "  decided: {}{}; policy set {}",
        outcome_text(recorded),
        if recorded.policies.is_empty() {
            " (no policy permitted it: default deny)".to_string()
        } else {
            format!(" by {}", recorded.policies.join(", "))
        },
        recorded.policy_hash
    );
    for reason in &recorded.reasons {
        outln!("    reason: {reason}");
    }
    if policy.policy_hash() != recorded.policy_hash {
        outln!(
            "the policy set at hand ({}) is not the one that decided ({}): the decision above is the record. Give --policies DIR with that set (git history of the policy folder) to see each policy's part.",
            policy.policy_hash(),
            recorded.policy_hash
        );
        return Ok(());
    }
    let action = if request.break_glass.is_some() {
        "break_glass"
    } else {
        "request"
    };
    let facts = RequestFacts::of_request(
        &request,
        request.requested_duration_seconds,
        request.created_at,
    );
    let explained = policy
        .explain(action, &facts)
        .map_err(|problem| Failure::failed(format!("cannot evaluate it again: {problem}")))?;
    outln!(
        "the same policy set decides it again ({action}, at {}, with the identities and entitlements configured now):",
        request.created_at
    );
    for part in &explained.parts {
        let annotations: Vec<String> = part
            .annotations
            .iter()
            .map(|(key, value)| format!("@{key}({value:?})"))
            .collect();
        let annotations = if annotations.is_empty() {
            String::new()
        } else {
            format!(" {}", annotations.join(" "))
        };
        outln!(
            "  {:<6} {}{annotations}\n         {}",
            part.effect,
            part.id,
            verdict_text(&part.verdict)
        );
    }
    let again = &explained.decision;
    if again.outcome != recorded.outcome
        || again.approvals_required != recorded.approvals_required
        || again.policies != recorded.policies
    {
        outln!(
            "note: decided again it comes out {} — identities, groups or entitlements have changed since; the record stands",
            outcome_text(again)
        );
    }
    Ok(())
}

fn outcome_text(decision: &writ_domain::Decision) -> String {
    summary_text(&writ_engine::replay::DecisionSummary::from(
        decision.clone(),
    ))
}

fn summary_text(decision: &writ_engine::replay::DecisionSummary) -> String {
    let cap = decision
        .max_duration_seconds
        .map(|s| format!(", at most {}", writ_domain::format_duration_seconds(s)))
        .unwrap_or_default();
    match decision.outcome {
        DecisionOutcome::Deny => "denied".to_string(),
        DecisionOutcome::Auto => format!("automatic{cap}"),
        DecisionOutcome::Approval => {
            format!("{} approval(s) needed{cap}", decision.approvals_required)
        }
    }
}

/// `writ policy replay --policies DIR [--since 30d]`.
pub async fn policy_replay(
    config_path: &Path,
    dir: &Path,
    since: Option<&str>,
    limit: usize,
) -> Result<(), Failure> {
    let config = load_config(config_path)?;
    let proposed = PolicyEngine::load(dir, &config)
        .map_err(|e| Failure::usage(format!("{}: {e}", dir.display())))?;
    let since = match since {
        None => writ_domain::Timestamp::from_unix_micros(0),
        Some(text) => {
            let seconds = writ_domain::parse_duration_seconds(text)
                .map_err(|problem| Failure::usage(format!("--since {text:?}: {problem}")))?;
            SystemClock.now().plus_seconds(-seconds)
        }
    };
    let store = crate::offline::open_store(&config).await?;
    let report = writ_engine::replay::replay(&store, &proposed, since).await;
    store.close().await;
    let report = report.map_err(|e| Failure::failed(e.to_string()))?;
    outln!(
        "replayed {} recorded requests under policy set {}: {} decision(s) change{}",
        report.replayed,
        proposed.policy_hash(),
        report.changes.len(),
        if report.skipped > 0 {
            format!(
                " ({} skipped: their identity or entitlement is no longer configured)",
                report.skipped
            )
        } else {
            String::new()
        }
    );
    if report.changes.is_empty() {
        return Ok(());
    }
    outln!(
        "{:<12}  {:<20}  {:<12}  {:<12}  {:<24}  {:<28}  WOULD BE",
        "REQUEST",
        "MADE",
        "REQUESTER",
        "SUBJECT",
        "ENTITLEMENT",
        "WAS"
    );
    for change in report.changes.iter().take(limit) {
        outln!(
            "{:<12}  {:<20}  {:<12}  {:<12}  {:<24}  {:<28}  {}",
            change.request.short(),
            change.at.to_string().get(..19).unwrap_or_default(),
            change.requester,
            change.subject,
            change.entitlement,
            summary_text(&change.was),
            summary_text(&change.would_be)
        );
    }
    if report.changes.len() > limit {
        outln!("… and {} more (--limit)", report.changes.len() - limit);
    }
    Ok(())
}

//! Offline policy tools beyond `policy check`: `policy lint`.

use std::path::Path;

use writ_domain::Clock as _;
use writ_engine::SystemClock;
use writ_policy::{LintFinding, PolicyEngine};

use crate::offline::{load_config, load_policy};
use crate::stdout::outln;
use crate::{EXIT_FAILED, Failure};

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

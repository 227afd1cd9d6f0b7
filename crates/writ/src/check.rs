//! `writ check`: what each target will need, asked of the target itself (server
//! stopped or running), so a missing role or privilege shows before a grant sticks.

use std::path::Path;

use writ_connectors::Connectors;
use writ_engine::TargetCheck;

use crate::Failure;
use crate::offline::load_config;
use crate::stdout::outln;

pub async fn run(config_path: &Path) -> Result<(), Failure> {
    let config = load_config(config_path)?;
    let connectors = Connectors::from_config(&config)
        .map_err(|e| Failure::usage(format!("{}: {e}", config.path.display())))?;
    let checks = writ_engine::check_targets(&config, &connectors).await;
    let problems: usize = checks.iter().map(|c| c.problems().count()).sum();
    for check in &checks {
        outln!("target {}", check.target);
        for item in &check.items {
            outln!(
                "  {}  {}: {}",
                if item.ok { "ok     " } else { "PROBLEM" },
                item.subject,
                item.detail
            );
        }
    }
    if problems == 0 {
        outln!("all {} targets ready", checks.len());
        Ok(())
    } else {
        Err(Failure::failed(format!(
            "{problems} problem(s) on the targets: grants that meet them will stay pending or fail"
        )))
    }
}

/// At `serve` start-up: problems become warnings in the log, never a refusal to start
/// (a target that is down now may be up by the time it is needed).
pub fn log_problems(checks: &[TargetCheck]) {
    for check in checks {
        for item in check.problems() {
            tracing::warn!(target_name = %check.target, subject = %item.subject, "writ check: {}", item.detail);
        }
    }
}

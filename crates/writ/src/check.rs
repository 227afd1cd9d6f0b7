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

/// How long `writ policy check` waits for one target to say what its roles give.
const EFFECTIVE_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// For `writ policy check`: entitlements whose role reaches superuser or reads/writes
/// all data on its target but that are not marked critical, and the targets that
/// could not be asked (each read at most once per target when it fails).
pub async fn critical_warnings(config: &writ_config::Config) -> Vec<String> {
    let Ok(connectors) = Connectors::from_config(config) else {
        return Vec::new();
    };
    let mut reads = tokio::task::JoinSet::new();
    for target in config.targets.keys() {
        let Some(connector) = connectors.get(target).cloned() else {
            continue;
        };
        let entitlements: Vec<writ_config::Entitlement> = config
            .entitlements
            .values()
            .filter(|e| &e.target == target)
            .cloned()
            .collect();
        let target = target.clone();
        reads.spawn(async move {
            let mut warnings = Vec::new();
            for entitlement in entitlements {
                let read = tokio::time::timeout(
                    EFFECTIVE_READ_TIMEOUT,
                    connector.effective_access(&entitlement.role),
                )
                .await;
                match read {
                    Ok(Ok(Some(effective)))
                        if effective.is_critical()
                            && entitlement.sensitivity != writ_domain::Sensitivity::Critical =>
                    {
                        warnings.push(writ_engine::effective::critical_warning(&entitlement));
                    }
                    Ok(Ok(_)) => {}
                    Ok(Err(error)) => {
                        warnings.push(format!(
                            "could not read what {} gives on {target}: {error}",
                            entitlement.id
                        ));
                        break;
                    }
                    Err(_) => {
                        warnings.push(format!(
                            "could not read what entitlements on {target} give: no answer within {} s",
                            EFFECTIVE_READ_TIMEOUT.as_secs()
                        ));
                        break;
                    }
                }
            }
            warnings
        });
    }
    let mut warnings = Vec::new();
    while let Some(done) = reads.join_next().await {
        warnings.extend(done.unwrap_or_default());
    }
    warnings.sort();
    warnings
}

//! `entitlement_changed`: what an entitlement's role gives on its target, compared
//! with what each active grant of it was approved with (the effective access recorded
//! when it was decided). A difference is a finding per grant, carrying the change; it
//! resolves when the role gives again what was approved or the grant ends.

use std::collections::HashMap;

use writ_config::Entitlement;
use writ_domain::{Finding, FindingKind, FindingState, GrantId};

use super::{Drift, ReconcileReport};
use crate::{Engine, EngineError};

impl Engine {
    /// One pass over the entitlements of `target` whose grants recorded what they
    /// were approved with.
    pub(super) async fn reconcile_changes(
        &self,
        target: &str,
        report: &mut ReconcileReport,
    ) -> Result<(), EngineError> {
        let mut unresolved: HashMap<GrantId, Finding> = self
            .store
            .unresolved_findings(target)
            .await?
            .into_iter()
            .map(|report| report.finding)
            .filter(|finding| finding.kind == FindingKind::EntitlementChanged)
            .filter_map(|finding| finding.grant_id.map(|id| (id, finding)))
            .collect();
        let mut unreadable = Vec::new();
        let entitlements: Vec<&Entitlement> = self
            .config
            .entitlements
            .values()
            .filter(|entitlement| entitlement.target == target)
            .collect();
        for entitlement in entitlements {
            let grants = self.store.active_grants(entitlement.id.as_str()).await?;
            if grants.iter().all(|grant| grant.effective.is_none()) {
                continue;
            }
            let now = match self.read_effective(entitlement).await {
                Ok(Some(now)) => now,
                Ok(None) => continue,
                Err(error) => {
                    report.errors.push(format!(
                        "{}: cannot read what it gives: {error}",
                        entitlement.id
                    ));
                    unreadable.push(entitlement.id.clone());
                    continue;
                }
            };
            for grant in grants {
                let Some(change) = grant
                    .effective
                    .as_ref()
                    .and_then(|approved| approved.change_to(&now))
                else {
                    continue;
                };
                if let Some(existing) = unresolved.remove(&grant.id) {
                    if existing.change.as_ref() == Some(&change) {
                        continue;
                    }
                    // Changed again: the finding says what differs now.
                    self.resolve(existing, "superseded").await?;
                    report.resolved += 1;
                }
                let drift = Drift {
                    kind: FindingKind::EntitlementChanged,
                    grant: Some(grant.id),
                };
                self.open_finding_with(entitlement, &grant.account, drift, Some(change))
                    .await?;
                report.opened += 1;
            }
        }
        // Gone: the role gives what was approved again, or the grant ended.
        for (_, finding) in unresolved {
            if finding.state == FindingState::Resolved || unreadable.contains(&finding.entitlement)
            {
                continue;
            }
            self.resolve(finding, "gone").await?;
            report.resolved += 1;
        }
        Ok(())
    }
}

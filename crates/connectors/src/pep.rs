use async_trait::async_trait;

use crate::{Access, CheckItem, CheckPlan, Connector, ConnectorError};

/// A target of kind `authzen`: policy enforcement points ask writ's AuthZEN API, so a
/// lease recorded active is the access and there is nothing to call. The engine never
/// calls it to change or read access; were it asked, it refuses rather than pretend.
#[derive(Debug, Default)]
pub struct PepEnforced;

fn not_a_target() -> ConnectorError {
    ConnectorError::Failed(
        "an authzen target is enforced by the PEPs that ask writ; there is no target to call"
            .into(),
    )
}

#[async_trait]
impl Connector for PepEnforced {
    async fn grant(&self, _access: Access<'_>) -> Result<(), ConnectorError> {
        Err(not_a_target())
    }

    async fn revoke(&self, _access: Access<'_>) -> Result<(), ConnectorError> {
        Err(not_a_target())
    }

    async fn holds(&self, _access: Access<'_>) -> Result<bool, ConnectorError> {
        Err(not_a_target())
    }

    async fn members(&self, _role: &str) -> Result<Vec<String>, ConnectorError> {
        Err(not_a_target())
    }

    async fn check(&self, plan: &CheckPlan) -> Vec<CheckItem> {
        plan.roles
            .iter()
            .map(|role| {
                CheckItem::ok(
                    format!("role {role}"),
                    "enforced by AuthZEN clients asking writ; writ's leases are the access",
                )
            })
            .collect()
    }
}

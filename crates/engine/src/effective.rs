//! What an entitlement really gives: read from its target when a request is decided
//! (policy's `context.effective`, and the grant's record of what was approved), shown
//! by `GET /v1/entitlements/{id}`, and compared by reconciliation.

use serde::Serialize;
use writ_config::Entitlement;
use writ_domain::{EffectiveAccess, Sensitivity};

use crate::{Engine, EngineError, ErrorCode};

/// One entitlement and what its role really gives on its target now.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EntitlementDetail {
    pub id: String,
    pub target: String,
    /// The role or group it names on the target.
    pub role: String,
    pub sensitivity: String,
    pub max_duration_seconds: i64,
    pub owners: Option<String>,
    /// Read from the target now; absent where the target cannot tell or did not answer.
    pub effective: Option<EffectiveAccess>,
    /// Why it could not be read.
    pub effective_error: Option<String>,
    /// Set when the role reaches superuser or all data but the entitlement is not
    /// `critical`.
    pub warning: Option<String>,
}

/// What `writ policy check` and `GET /v1/entitlements/{id}` say of a role that
/// reaches superuser or all data on an entitlement not marked critical.
pub fn critical_warning(entitlement: &Entitlement) -> String {
    format!(
        "{} reaches superuser or reads/writes all data on {} but its sensitivity is {}: mark it critical",
        entitlement.id,
        entitlement.target,
        entitlement.sensitivity.as_str()
    )
}

impl Engine {
    /// What the entitlement's role gives on its target now, through the target's
    /// guard. `Ok(None)` where this kind of target cannot tell.
    pub(crate) async fn read_effective(
        &self,
        entitlement: &Entitlement,
    ) -> Result<Option<EffectiveAccess>, writ_connectors::ConnectorError> {
        let Some(connector) = self.targets.connector(&entitlement.target) else {
            return Ok(None);
        };
        self.targets
            .guard(&entitlement.target)
            .call(
                self.clock.now(),
                connector.effective_access(&entitlement.role),
            )
            .await
    }

    /// As `read_effective` for a decision: a target that cannot answer leaves it
    /// absent (policies test `context has effective`), and says why in the log.
    pub(crate) async fn observe_effective(
        &self,
        entitlement: &Entitlement,
    ) -> Option<EffectiveAccess> {
        match self.read_effective(entitlement).await {
            Ok(effective) => effective,
            Err(error) => {
                tracing::warn!(
                    entitlement = %entitlement.id,
                    %error,
                    "could not read what the entitlement gives on its target; deciding without context.effective"
                );
                None
            }
        }
    }

    /// `GET /v1/entitlements/{id}`: the entitlement and what it really gives now,
    /// read from its target. A target that cannot answer is said so, not an error:
    /// the entitlement is still shown.
    pub async fn entitlement_detail(&self, id: &str) -> Result<EntitlementDetail, EngineError> {
        // A resource that is not there: 404, not a refused request.
        let entitlement = self.config.entitlement(id).ok_or_else(|| {
            EngineError::new(
                ErrorCode::NotFound,
                format!("no entitlement {id:?} is configured; `writ entitlements` lists them"),
            )
        })?;
        let (effective, effective_error) = match self.read_effective(entitlement).await {
            Ok(effective) => (effective, None),
            Err(error) => (None, Some(error.to_string())),
        };
        let warning = effective
            .as_ref()
            .filter(|e| e.is_critical() && entitlement.sensitivity != Sensitivity::Critical)
            .map(|_| critical_warning(entitlement));
        Ok(EntitlementDetail {
            id: entitlement.id.to_string(),
            target: entitlement.target.clone(),
            role: entitlement.role.clone(),
            sensitivity: entitlement.sensitivity.as_str().to_string(),
            max_duration_seconds: entitlement.max_duration_seconds,
            owners: entitlement.owners.clone(),
            effective,
            effective_error,
            warning,
        })
    }
}

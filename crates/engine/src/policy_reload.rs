//! The policy set in force, and replacing it while writ runs (`writ policy reload`,
//! `POST /v1/policy/reload`, SIGHUP): the new set is loaded and validated whole; a set
//! that does not load is refused and the one in force kept; one that loads is recorded
//! on the ledger (`policy.reloaded`, with both hashes) and only then put in force, in
//! one swap — every decision is made under exactly one of the two sets. Then every
//! live grant is decided again under the new set (`redecide`).

use std::sync::{Arc, RwLock};

use serde_json::json;
use writ_domain::ledger::{Actor, EventKind};
use writ_policy::{PolicyEngine, PolicyLoadError};

use crate::redecide::{Occasion, Redecided};
use crate::{Engine, EngineError, ErrorCode};

/// The policy set in force.
pub(crate) struct PolicySlot {
    current: RwLock<Arc<PolicyEngine>>,
    /// One change at a time (a reload, new directory identities), so the ledger's order
    /// is the order they took effect and neither undoes the other.
    pub(crate) reloading: tokio::sync::Mutex<()>,
}

impl PolicySlot {
    pub(crate) fn new(policy: Arc<PolicyEngine>) -> Self {
        Self {
            current: RwLock::new(policy),
            reloading: tokio::sync::Mutex::new(()),
        }
    }

    pub(crate) fn current(&self) -> Arc<PolicyEngine> {
        match self.current.read() {
            Ok(current) => current.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub(crate) fn replace(&self, policy: Arc<PolicyEngine>) {
        let mut current = match self.current.write() {
            Ok(current) => current,
            Err(poisoned) => poisoned.into_inner(),
        };
        *current = policy;
    }
}

/// What a reload did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PolicyReloaded {
    pub previous_hash: String,
    pub policy_hash: String,
    pub policies: usize,
    /// False when the files hold the set already in force (nothing recorded).
    pub changed: bool,
    /// The live grants decided again under the new set (when it changed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redecided: Option<Redecided>,
}

impl Engine {
    /// The policy set in force now.
    pub fn policy(&self) -> Arc<PolicyEngine> {
        self.policy.current()
    }

    /// Loads the policy folder again and puts it in force; see the module's doc.
    pub async fn reload_policy(&self, by: &Actor) -> Result<PolicyReloaded, EngineError> {
        let _one_at_a_time = self.policy.reloading.lock().await;
        let previous = self.policy.current();
        let loaded =
            PolicyEngine::load(&self.config.policy_dir, &self.config).map_err(|error| {
                let problem = match error {
                    PolicyLoadError::Invalid(diagnostics) => diagnostics
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("\n"),
                    other => other.to_string(),
                };
                EngineError::new(
                    ErrorCode::InvalidPolicy,
                    format!("the policies were not reloaded; the ones in force stay: {problem}"),
                )
            })?;
        // Deciding for the directory's people too, not only writ.toml's.
        let loaded = loaded
            .with_identities(
                &self.config,
                self.directory.view().identities.values().map(Arc::as_ref),
            )
            .map_err(|problem| {
                EngineError::new(
                    ErrorCode::PolicyEntities,
                    format!("the policies were not reloaded: {problem}"),
                )
            })?;
        let reloaded = PolicyReloaded {
            previous_hash: previous.policy_hash().to_string(),
            policy_hash: loaded.policy_hash().to_string(),
            policies: loaded.policy_count(),
            changed: previous.policy_hash() != loaded.policy_hash(),
            redecided: None,
        };
        if !reloaded.changed {
            return Ok(reloaded);
        }
        // On the ledger first: a set in force that the ledger does not name would make
        // decisions nobody can trace (fail closed).
        let mut tx = self.store.begin().await?;
        let data = json!({
            "previous_hash": reloaded.previous_hash,
            "policy_hash": reloaded.policy_hash,
            "policies": reloaded.policies,
        });
        tx.append(self.clock.now(), by, EventKind::PolicyReloaded, &data)
            .await?;
        tx.commit().await?;
        self.policy.replace(Arc::new(loaded));
        tracing::info!(
            previous = %reloaded.previous_hash,
            policy_hash = %reloaded.policy_hash,
            policies = reloaded.policies,
            by = %by.as_str(),
            "policies reloaded"
        );
        // Under the new set, every live grant is decided again. Should this fail part
        // way, the rest are decided when writ next starts (it decides all then).
        let redecided = self
            .redecide_grants(Occasion::PolicyReloaded, None)
            .await
            .map_err(|error| {
                EngineError::new(
                    error.code,
                    format!(
                        "the policies {} are in force, but deciding the live grants again failed part way ({}); the rest are decided again when writ next starts, or at the next reload",
                        reloaded.policy_hash, error.message
                    ),
                )
            })?;
        Ok(PolicyReloaded {
            redecided: Some(redecided),
            ..reloaded
        })
    }
}

//! writ as an OpenID AuthZEN policy decision point for entitlements whose target is
//! enforced by the PEPs that ask (`kind = "authzen"`): an evaluation is allowed exactly
//! while its subject holds an active lease on an entitlement covering the resource and
//! action, so a revocation takes effect on the PEP's next evaluation.

use serde_json::json;
use writ_domain::ledger::EventKind;
use writ_domain::lifecycle::GrantState;
use writ_domain::{EntitlementId, Grant, IdentityKind, IdentityName, RevokeReason};

use crate::{Caller, Engine, EngineError, ErrorCode, SCHEDULER};

/// One AuthZEN evaluation: may `subject` do `action` on `resource`?
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessQuestion {
    pub subject_type: String,
    pub subject_id: String,
    pub resource_type: String,
    pub resource_id: String,
    pub action: String,
}

/// The PDP's answer.
#[derive(Debug, Clone, PartialEq)]
pub enum PdpAnswer {
    /// The lease that allows it (the one ending last, when several do), and for a lease
    /// with `max_uses` how many uses it has left after this one.
    Allow(Box<Grant>, Option<u32>),
    Deny(DenyReason),
}

/// Why an evaluation was denied, as the machine-readable `context.reason`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DenyReason {
    /// writ knows no such identity, or not of that type.
    UnknownSubject,
    /// The identity is disabled (a leaver): nothing is allowed.
    SubjectDisabled,
    /// No entitlement covers this resource and action: writ does not decide it.
    NotManaged,
    /// Entitlements cover it, and the subject holds no active lease on any of them.
    NoActiveLease(Vec<EntitlementId>),
}

impl DenyReason {
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnknownSubject => "unknown_subject",
            Self::SubjectDisabled => "subject_disabled",
            Self::NotManaged => "not_managed",
            Self::NoActiveLease(_) => "no_active_lease",
        }
    }
}

/// The AuthZEN subject types writ accepts: its identity kinds, or `identity` for any.
fn kind_matches(subject_type: &str, kind: IdentityKind) -> bool {
    subject_type == "identity" || subject_type == kind.as_str()
}

impl Engine {
    /// Refuses a caller who may not ask about `subject`: an enforcement point listed in
    /// `[authzen].clients`, auditors and admins ask about anyone; anyone else only
    /// about itself (what it may read anyway).
    pub fn may_evaluate(&self, caller: &Caller, subject_id: &str) -> Result<(), EngineError> {
        if caller.name.as_str() == subject_id
            || self.config.authzen.clients.contains(&caller.name)
            || self.is_auditor(caller)
        {
            return Ok(());
        }
        Err(EngineError::new(
            ErrorCode::NotAPdpClient,
            format!(
                "{} may ask only about itself; enforcement points asking about others are listed in [authzen].clients",
                caller.name
            ),
        ))
    }

    /// Decides one evaluation from the leases recorded now, for enforcement point
    /// `pep` (checked with [`Engine::may_evaluate`]). Reads only, except that an allow
    /// on a lease with `max_uses` is a use, counted and recorded first.
    pub async fn evaluate_access(
        &self,
        pep: &Caller,
        question: &AccessQuestion,
    ) -> Result<PdpAnswer, EngineError> {
        let covering: Vec<&EntitlementId> = self
            .config
            .entitlements
            .values()
            .filter(|entitlement| {
                entitlement.pep.as_ref().is_some_and(|pep| {
                    pep.covers(
                        &question.resource_type,
                        &question.resource_id,
                        &question.action,
                    )
                })
            })
            .map(|entitlement| &entitlement.id)
            .collect();
        let Some(identity) = question
            .subject_id
            .parse::<IdentityName>()
            .ok()
            .and_then(|name| self.identity(name.as_str()))
            .filter(|identity| kind_matches(&question.subject_type, identity.kind))
        else {
            return Ok(PdpAnswer::Deny(DenyReason::UnknownSubject));
        };
        if identity.disabled {
            return Ok(PdpAnswer::Deny(DenyReason::SubjectDisabled));
        }
        if covering.is_empty() {
            return Ok(PdpAnswer::Deny(DenyReason::NotManaged));
        }
        let now = self.clock.now();
        let names: Vec<&str> = covering.iter().map(|id| id.as_str()).collect();
        match self
            .store
            .active_lease_covering(identity.name.as_str(), &names, now)
            .await?
        {
            Some(grant) => match grant.max_uses {
                None => Ok(PdpAnswer::Allow(Box::new(grant), None)),
                Some(max_uses) => {
                    // An enforcement point (or the subject, about itself) is about to act
                    // on the answer: a use. An auditor asking about someone only looks.
                    let enforcing = self.config.authzen.clients.contains(&pep.name)
                        || pep.name == identity.name;
                    let left = if enforcing {
                        self.use_lease(pep, &grant, max_uses).await?
                    } else {
                        let used = self.store.lease_uses(grant.id).await?;
                        max_uses.checked_sub(used).filter(|left| *left > 0)
                    };
                    match left {
                        Some(left) => Ok(PdpAnswer::Allow(Box::new(grant), Some(left))),
                        None => Ok(PdpAnswer::Deny(DenyReason::NoActiveLease(
                            covering.into_iter().cloned().collect(),
                        ))),
                    }
                }
            },
            None => Ok(PdpAnswer::Deny(DenyReason::NoActiveLease(
                covering.into_iter().cloned().collect(),
            ))),
        }
    }

    /// One use of a lease that ends after `max_uses`: counted, and recorded on the
    /// ledger as `grant.used`, in one transaction (no use is allowed that the ledger
    /// does not hold); the last use also begins the lease's revocation there. The uses
    /// left, or `None` when there are none (or the lease ended meanwhile).
    async fn use_lease(
        &self,
        pep: &Caller,
        grant: &Grant,
        max_uses: u32,
    ) -> Result<Option<u32>, EngineError> {
        let now = self.clock.now();
        let mut tx = self.store.begin().await?;
        let Some(grant) = tx
            .grant(grant.id)
            .await?
            .filter(|g| g.state == GrantState::Active && g.expires_at > now)
        else {
            return Ok(None);
        };
        let Some(used) = tx.count_lease_use(grant.id, max_uses).await? else {
            return Ok(None);
        };
        let left = max_uses.saturating_sub(used);
        tx.append(
            now,
            &pep.actor(),
            EventKind::GrantUsed,
            &json!({ "grant": grant, "use": used, "max_uses": max_uses, "uses_left": left }),
        )
        .await?;
        if left == 0 {
            self.begin_revoke_in(&mut tx, &grant, &SCHEDULER, RevokeReason::UsedUp, now)
                .await?;
        }
        tx.commit().await?;
        self.evidence_committed();
        if left == 0 {
            // Denied from the commit on; the target (the PEPs) holds nothing to remove.
            if let Err(error) = self.execute_revoke(grant.id).await {
                tracing::error!(grant = %grant.id, %error, "revocation will be retried");
            }
        }
        Ok(Some(left))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_types_are_identity_kinds_or_identity() {
        assert!(kind_matches("user", IdentityKind::User));
        assert!(kind_matches("agent", IdentityKind::Agent));
        assert!(kind_matches("identity", IdentityKind::Service));
        assert!(!kind_matches("user", IdentityKind::Agent));
        assert!(!kind_matches("User", IdentityKind::User));
    }
}
